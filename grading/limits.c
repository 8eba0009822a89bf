/*
 * limits.c - the rubric's complexity limits, checked before it is compiled.
 *
 * The 4 MiB size limit bounds a rubric's bytes, not the work it makes: one
 * text item with tens of thousands of phrases or patterns fits in 4 MiB, and
 * every answer to it would then be matched against all of them. This pass
 * walks the rubric's JSON form (both loaders compile from it) and bounds
 * each list that grading iterates over, the length of each string that is
 * compiled or compared, and the rubric's total match work. Every limit
 * passed is reported as GRADING_ERR_LIMIT (`limit_exceeded`) at the path of
 * the field, with the count and the limit:
 *
 *     items[3].elements[1].phrases: 1001 phrases; the limit is 1000
 *
 * Shapes this pass does not expect (a string where an array should be) are
 * skipped: the compiler reports them. The values are in internal.h and
 * documented in docs/LIMITS.md and grading/RUBRIC.md "Limits".
 */
#include "internal.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct lim {
    loader_t *L;
    uint64_t work;     /* match work units (GRADING_MATCH_WORK_MAX) */
    size_t patterns;   /* patterns in the rubric */
    size_t phrases;    /* phrases in the rubric */
    bool over;
} lim_t;

static void over(lim_t *m, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void over(lim_t *m, const char *path, const char *fmt, ...)
{
    m->over = true;
    va_list ap;
    va_start(ap, fmt);
    ld_verror(m->L, GRADING_ERR_LIMIT, path, fmt, ap);
    va_end(ap);
}

/* obj[key] when it is an array of at most max entries (what: "phrases");
 * NULL when absent or not an array. An array over the limit is reported
 * and returned all the same, so its entries are still checked. */
static json_t *list(lim_t *m, json_t *obj, const char *path, const char *key, size_t max,
                    const char *what)
{
    json_t *a = json_is_object(obj) ? json_object_get(obj, key) : NULL;
    if (!json_is_array(a))
        return NULL;
    size_t n = json_array_size(a);
    if (n > max)
        over(m, ld_path_key(m->L, path, key), "%zu %s; the limit is %zu", n, what, max);
    return a;
}

/* A string of at most max bytes (what: "a phrase"); false when v is not a
 * string. */
static bool string_ok(lim_t *m, json_t *v, const char *path, size_t max, const char *what)
{
    if (!json_is_string(v))
        return false;
    size_t n = json_string_length(v);
    if (n > max) {
        over(m, path, "%s of %zu bytes; the limit is %zu", what, n, max);
        return false;
    }
    return true;
}

/* Every string of array a at most max bytes. */
static void strings(lim_t *m, json_t *a, const char *path, size_t max, const char *what)
{
    for (size_t i = 0; a && i < json_array_size(a); i++)
        string_ok(m, json_array_get(a, i), ld_path_idx(m->L, path, i), max, what);
}

/* Words of a phrase or name: runs of bytes other than spaces and tabs. */
static size_t words(const char *s, size_t n)
{
    size_t w = 0;
    for (size_t i = 0; i < n; i++)
        if (s[i] != ' ' && s[i] != '\t' && (i == 0 || s[i - 1] == ' ' || s[i - 1] == '\t'))
            w++;
    return w;
}

size_t limits_pattern_parens(const char *s, size_t len)
{
    size_t depth = 0, deepest = 0;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == '\\') {
            if (i + 1 < len && s[i + 1] == 'Q') {
                /* \Q...\E: literal */
                i += 2;
                while (i + 1 < len && !(s[i] == '\\' && s[i + 1] == 'E'))
                    i++;
                i++;
            } else {
                i++;
            }
        } else if (ch == '[') {
            /* a character class: ']' first (after '^') is a literal */
            i++;
            if (i < len && s[i] == '^')
                i++;
            if (i < len && s[i] == ']')
                i++;
            for (; i < len && s[i] != ']'; i++) {
                if (s[i] == '\\')
                    i++;
                else if (s[i] == '[' && i + 1 < len && s[i + 1] == ':') {
                    const char *end = strstr(s + i + 2, ":]");
                    if (end && (size_t)(end - s) < len)
                        i = (size_t)(end - s) + 1;
                }
            }
        } else if (ch == '(') {
            if (++depth > deepest)
                deepest = depth;
        } else if (ch == ')') {
            if (depth)
                depth--;
        }
    }
    return deepest;
}

/* Deepest grouping parentheses of a red-flag expression; a call's own
 * parentheses ("total()", "missing(a.b)") hold no others and do not count. */
static size_t expr_parens(const char *s, size_t len)
{
    size_t depth = 0, deepest = 0;
    char prev = ' ';
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        if (ch == '(' && ((prev >= 'a' && prev <= 'z') || (prev >= 'A' && prev <= 'Z') ||
                          (prev >= '0' && prev <= '9') || prev == '_')) {
            while (i + 1 < len && s[i + 1] != ')')
                i++;
            i++;
            ch = ')';
        } else if (ch == '(' && ++depth > deepest) {
            deepest = depth;
        } else if (ch == ')' && depth) {
            depth--;
        }
        if (ch != ' ' && ch != '\t' && ch != '\n')
            prev = ch;
    }
    return deepest;
}

/* Each string of array a (at path ap) within max bytes, its words added to
 * the match work: phrases and row names are matched word by word. */
static void word_strings(lim_t *m, json_t *a, const char *ap, size_t max, const char *what)
{
    for (size_t i = 0; a && i < json_array_size(a); i++) {
        json_t *v = json_array_get(a, i);
        if (string_ok(m, v, ld_path_idx(m->L, ap, i), max, what))
            m->work += words(json_string_value(v), json_string_length(v));
    }
}

/* Phrases of obj (an element or a step): count, length, match work. */
static void phrases(lim_t *m, json_t *obj, const char *path)
{
    json_t *a = list(m, obj, path, "phrases", GRADING_PHRASES_MAX, "phrases");
    word_strings(m, a, ld_path_key(m->L, path, "phrases"), GRADING_PHRASE_MAX_BYTES, "a phrase");
    m->phrases += a ? json_array_size(a) : 0;
}

static void patterns(lim_t *m, json_t *obj, const char *path)
{
    json_t *a = list(m, obj, path, "patterns", GRADING_PATTERNS_MAX, "patterns");
    const char *ap = ld_path_key(m->L, path, "patterns");
    for (size_t i = 0; a && i < json_array_size(a); i++) {
        json_t *v = json_array_get(a, i);
        const char *p = ld_path_idx(m->L, ap, i);
        if (!string_ok(m, v, p, GRADING_PATTERN_MAX_BYTES, "a pattern"))
            continue;
        size_t nest = limits_pattern_parens(json_string_value(v), json_string_length(v));
        if (nest > GRADING_PATTERN_PARENS_MAX)
            over(m, p, "parentheses nested %zu deep; the limit is %d", nest,
                 GRADING_PATTERN_PARENS_MAX);
    }
    size_t n = a ? json_array_size(a) : 0;
    m->patterns += n;
    m->work += (uint64_t)n * GRADING_PATTERN_WORK;
}

/* "elements" and "rules" of a text or pick item. */
static void text_like(lim_t *m, json_t *it, const char *path)
{
    json_t *els = list(m, it, path, "elements", GRADING_ELEMENTS_MAX, "elements");
    list(m, it, path, "rules", GRADING_RULES_MAX, "rules");
    const char *ep = ld_path_key(m->L, path, "elements");
    for (size_t i = 0; els && i < json_array_size(els); i++) {
        json_t *e = json_array_get(els, i);
        const char *p = ld_path_idx(m->L, ep, i);
        phrases(m, e, p);
        patterns(m, e, p);
        /* a shape is one linear pass per test: counted as a pattern */
        json_t *sh = json_is_object(e) ? json_object_get(e, "shape") : NULL;
        if (sh && !json_is_null(sh))
            m->work += GRADING_PATTERN_WORK;
    }
}

static void choice(lim_t *m, json_t *it, const char *path)
{
    json_t *opts = list(m, it, path, "options", GRADING_OPTIONS_MAX, "options");
    const char *op = ld_path_key(m->L, path, "options");
    for (size_t i = 0; opts && i < json_array_size(opts); i++) {
        json_t *o = json_array_get(opts, i);
        if (json_is_object(o))
            string_ok(m, json_object_get(o, "text"),
                      ld_path_key(m->L, ld_path_idx(m->L, op, i), "text"),
                      GRADING_LABEL_MAX_BYTES, "an option text");
    }
}

static void ordering(lim_t *m, json_t *it, const char *path)
{
    json_t *steps = list(m, it, path, "steps", GRADING_STEPS_MAX, "steps");
    list(m, it, path, "constraints", GRADING_CONSTRAINTS_MAX, "constraints");
    list(m, it, path, "presented", GRADING_STEPS_MAX, "presented steps");
    const char *sp = ld_path_key(m->L, path, "steps");
    for (size_t i = 0; steps && i < json_array_size(steps); i++) {
        json_t *s = json_array_get(steps, i);
        const char *p = ld_path_idx(m->L, sp, i);
        if (!json_is_object(s))
            continue;
        string_ok(m, json_object_get(s, "text"), ld_path_key(m->L, p, "text"),
                  GRADING_LABEL_MAX_BYTES, "a step text");
        phrases(m, s, p);
    }
}

static void pick(lim_t *m, json_t *it, const char *path)
{
    json_t *rows = list(m, it, path, "rows", GRADING_ROWS_MAX, "rows");
    json_t *cols = list(m, it, path, "columns", GRADING_COLUMNS_MAX, "columns");
    list(m, it, path, "cite_columns", GRADING_COLUMNS_MAX, "cite columns");
    list(m, it, path, "answers", GRADING_ROWS_MAX, "answers");
    strings(m, cols, ld_path_key(m->L, path, "columns"), GRADING_NAME_MAX_BYTES, "a column name");
    const char *rp = ld_path_key(m->L, path, "rows");
    for (size_t i = 0; rows && i < json_array_size(rows); i++) {
        json_t *r = json_array_get(rows, i);
        const char *p = ld_path_idx(m->L, rp, i);
        json_t *names = list(m, r, p, "names", GRADING_ROW_NAMES_MAX, "names");
        word_strings(m, names, ld_path_key(m->L, p, "names"), GRADING_NAME_MAX_BYTES, "a name");
        json_t *cells = json_is_object(r) ? json_object_get(r, "cells") : NULL;
        const char *cp = ld_path_key(m->L, p, "cells");
        const char *key;
        json_t *v;
        if (json_is_object(cells) && json_object_size(cells) > GRADING_COLUMNS_MAX) {
            over(m, cp, "%zu cells; the limit is %d", json_object_size(cells),
                 GRADING_COLUMNS_MAX);
        } else if (json_is_object(cells)) {
            json_object_foreach(cells, key, v) {
                string_ok(m, v, ld_path_key(m->L, cp, key), GRADING_LABEL_MAX_BYTES, "a cell");
            }
        }
    }
    text_like(m, it, path);
}

static void item(lim_t *m, json_t *it, const char *path)
{
    if (!json_is_object(it))
        return;
    const char *type = json_string_value(json_object_get(it, "type"));
    if (!type)
        return;
    if (strcmp(type, "text") == 0) {
        text_like(m, it, path);
    } else if (strcmp(type, "pick") == 0) {
        pick(m, it, path);
    } else if (strcmp(type, "choice") == 0) {
        choice(m, it, path);
    } else if (strcmp(type, "ordering") == 0) {
        ordering(m, it, path);
    } else if (strcmp(type, "quantity") == 0) {
        list(m, it, path, "answers", GRADING_QUANTITY_ANSWERS_MAX, "answers");
    } else if (strcmp(type, "date") == 0) {
        list(m, it, path, "answers", GRADING_DATE_ANSWERS_MAX, "answers");
    } else if (strcmp(type, "entity") == 0) {
        json_t *ex = list(m, it, path, "expect", GRADING_ENTITY_REFS_MAX, "expected entities");
        json_t *fb = list(m, it, path, "forbid", GRADING_ENTITY_REFS_MAX, "forbidden entities");
        size_t ne = ex ? json_array_size(ex) : 0, nf = fb ? json_array_size(fb) : 0;
        if (ne <= GRADING_ENTITY_REFS_MAX && nf <= GRADING_ENTITY_REFS_MAX &&
            ne + nf > GRADING_ENTITY_REFS_MAX)
            over(m, path, "%zu expected and forbidden entities; the limit is %d", ne + nf,
                 GRADING_ENTITY_REFS_MAX);
    } else if (strcmp(type, "rating") == 0) {
        list(m, it, path, "anchors", GRADING_ANCHORS_MAX, "anchors");
    }
}

bool limits_check(loader_t *L, json_t *root)
{
    lim_t m = {.L = L};
    if (!json_is_object(root))
        return true;
    list(&m, root, "", "sections", GRADING_SECTIONS_MAX, "sections");
    list(&m, root, "", "bands", GRADING_BANDS_MAX, "bands");

    json_t *ents = list(&m, root, "", "entities", GRADING_ENTITIES_MAX, "entities");
    for (size_t i = 0; ents && i < json_array_size(ents); i++) {
        json_t *e = json_array_get(ents, i);
        const char *p = ld_path_idx(L, "entities", i);
        if (!json_is_object(e))
            continue;
        json_t *name = json_object_get(e, "name");
        if (string_ok(&m, name, ld_path_key(L, p, "name"), GRADING_NAME_MAX_BYTES, "a name"))
            m.work += words(json_string_value(name), json_string_length(name));
        json_t *al = list(&m, e, p, "aliases", GRADING_ALIASES_MAX, "aliases");
        const char *ap = ld_path_key(L, p, "aliases");
        for (size_t k = 0; al && k < json_array_size(al); k++) {
            json_t *v = json_array_get(al, k);
            if (string_ok(&m, v, ld_path_idx(L, ap, k), GRADING_NAME_MAX_BYTES, "an alias"))
                m.work += words(json_string_value(v), json_string_length(v));
        }
    }

    json_t *syn = list(&m, root, "", "synonyms", GRADING_SYNONYM_SETS_MAX, "synonym sets");
    for (size_t i = 0; syn && i < json_array_size(syn); i++) {
        json_t *set = json_array_get(syn, i);
        const char *p = ld_path_idx(L, "synonyms", i);
        if (!json_is_array(set))
            continue;
        if (json_array_size(set) > GRADING_SYNONYM_WORDS_MAX)
            over(&m, p, "%zu words; the limit is %d", json_array_size(set),
                 GRADING_SYNONYM_WORDS_MAX);
        strings(&m, set, p, GRADING_NAME_MAX_BYTES, "a word");
    }

    json_t *flags = list(&m, root, "", "red_flags", GRADING_RED_FLAGS_MAX, "red flags");
    for (size_t i = 0; flags && i < json_array_size(flags); i++) {
        json_t *f = json_array_get(flags, i);
        if (!json_is_object(f))
            continue;
        json_t *when = json_object_get(f, "when");
        const char *p = ld_path_key(L, ld_path_idx(L, "red_flags", i), "when");
        if (!string_ok(&m, when, p, GRADING_EXPR_MAX_BYTES, "an expression"))
            continue;
        size_t nest = expr_parens(json_string_value(when), json_string_length(when));
        if (nest > GRADING_EXPR_PARENS_MAX)
            over(&m, p, "parentheses nested %zu deep; the limit is %d", nest,
                 GRADING_EXPR_PARENS_MAX);
    }

    json_t *items = list(&m, root, "", "items", GRADING_ITEMS_MAX, "items");
    for (size_t i = 0; items && i < json_array_size(items); i++)
        item(&m, json_array_get(items, i), ld_path_idx(L, "items", i));

    if (m.patterns > GRADING_RUBRIC_PATTERNS_MAX)
        over(&m, "items", "%zu patterns in the rubric; the limit is %d", m.patterns,
             GRADING_RUBRIC_PATTERNS_MAX);
    if (m.phrases > GRADING_RUBRIC_PHRASES_MAX)
        over(&m, "items", "%zu phrases in the rubric; the limit is %d", m.phrases,
             GRADING_RUBRIC_PHRASES_MAX);
    if (m.work > GRADING_MATCH_WORK_MAX)
        over(&m, "items",
             "match work of %llu (phrase and name words, %d per pattern or shape); the limit is %d",
             (unsigned long long)m.work, GRADING_PATTERN_WORK, GRADING_MATCH_WORK_MAX);
    return !m.over;
}
