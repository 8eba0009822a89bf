/*
 * text.c - free-text items scored by elements (the communication tasks).
 *
 * An element is a set of phrases (and optional PCRE2 patterns). A phrase
 * matches when all its words occur, in any order, within a window of
 * (words + window) consecutive words of one sentence. Words are compared
 * after normalisation (NFKC + case fold) by Snowball stem, by synonym set
 * (the rubric's "synonyms"), or - for words of typo_min_length letters or
 * more - within one edit (one wrong, missing, extra or swapped letter).
 *
 * A match whose clause has a negator before it ("I'm not sorry", "we can't
 * confirm") does not count, nor a hedged one ("we might fix it") when the
 * element rejects hedging. Negative points make an element a penalty (blame,
 * defensiveness, the wrong customer name); negation protects those too ("I'm
 * not blaming you"). Structure rules (greeting, sign-off, word, sentence and
 * paragraph bounds) award points when satisfied and subtract their penalty
 * when not. The item's points are clamped to [0, points].
 *
 * Patterns run on the original text, JIT-compiled where libpcre2 has a JIT
 * (SCORELINE_PCRE2_JIT=0 at rubric load keeps them in the interpreter). Their
 * backtracking is counted in the work budget through automatic callouts, which
 * both engines make alike; a pattern that tries too many items at one start
 * position is abandoned and the trace says so. A match the JIT gives up on for
 * a reason of its own runs again in the interpreter, whose depth and heap
 * limits then decide.
 */
#include "internal.h"

#include <jansson.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

typedef struct ptoken {
    uint32_t word; /* lexicon word id: tokens carry the ids they match */
    bool negator;
} ptoken_t;

typedef struct phrase {
    const char *src;
    ptoken_t *t;
    size_t n;
    bool has_negator; /* a word of the phrase is a negator ("not late") */
    uint64_t words;   /* bit (id & 63) for each word id (match_ctx_t.words) */
} phrase_t;

/* Which phrases of a list hold each word, so that the scanner tries at a
 * token only the phrases one of whose words the token matches (any other
 * phrase cannot start there). */
typedef struct phrase_index {
    uint64_t *by_word; /* by word id: bit p set when phrase p holds the word;
                          NULL when there are more than 64 phrases (try all) */
    uint32_t n_words;
    uint64_t words; /* bit (id & 63) for each word id of the phrases */
} phrase_index_t;

typedef enum el_kind {
    EK_PHRASES,
    EK_GREETING,
    EK_SIGN_OFF,
    EK_WORDS,
    EK_SENTENCES,
    EK_PARAGRAPHS,
} el_kind_t;

typedef struct element {
    const char *id;
    el_kind_t kind;
    int64_t points_milli;  /* negative: a penalty element */
    int64_t penalty_milli; /* rules: subtracted when not satisfied */
    phrase_t *phrases;
    size_t n_phrases;
    phrase_index_t index;
    pcre2_code **patterns;
    const char **pattern_src;
    uint16_t **pattern_reach; /* item_reach of the item after each callout, by its
                                 pattern_position */
    size_t n_patterns;
    const shape_t *shape; /* a keyword-list shape (shape.c), or NULL */
    int64_t window, min_matches, max_count;
    bool negatable, reject_hedged;
    int64_t min, max; /* rules: bounds (0 = none for max) */
} element_t;

struct text_spec {
    element_t *el;
    size_t n;
    int64_t typo_min;
    lexicon_t *const *lexicon; /* the item's (item_t.lexicon) */
};

static const char *const TEXT_KEYS[] = {"elements", "rules", "typo_min_length", NULL};

/* Compile phrase text into stemmed tokens. */
static bool compile_phrase(loader_t *L, phrase_t *ph, const char *src, const char *path)
{
    tokens_t tk;
    if (!text_tokenize(L->ta, L->stemmer, src, strlen(src), &tk))
        return false;
    if (tk.n == 0 || tk.n > 12) {
        ld_error(L, path, "a phrase has 1 to 12 words");
        return false;
    }
    ph->src = src;
    ph->n = tk.n;
    ph->t = arena_alloc(&L->r->arena, tk.n * sizeof *ph->t);
    if (!ph->t)
        return false;
    for (size_t i = 0; i < tk.n; i++) {
        ptoken_t *p = &ph->t[i];
        const token_t *t = &tk.v[i];
        const char *norm = arena_strndup(&L->r->arena, t->norm, t->norm_len);
        const char *stem = arena_strndup(&L->r->arena, t->stem, t->stem_len);
        if (!norm || !stem)
            return false;
        int32_t w = L->lexicon ? lexicon_intern(L->lexicon, norm, t->norm_len, stem, t->stem_len,
                                                rubric_synonym_of(L->r, stem, t->stem_len))
                               : -1;
        if (w < 0) {
            L->r->arena.oom = true;
            return false;
        }
        p->word = (uint32_t)w;
        ph->words |= 1ull << (p->word & 63);
        p->negator = (t->flags & TOK_NEGATOR) != 0;
        ph->has_negator |= p->negator;
    }
    return true;
}

static void phrase_index_build(loader_t *L, phrase_index_t *ix, const phrase_t *ph, size_t n)
{
    for (size_t p = 0; p < n; p++)
        for (size_t w = 0; w < ph[p].n; w++)
            ix->words |= 1ull << (ph[p].t[w].word & 63);
    if (n > 64)
        return;
    uint32_t nw = 0;
    for (size_t p = 0; p < n; p++)
        for (size_t w = 0; w < ph[p].n; w++)
            if (ph[p].t[w].word >= nw)
                nw = ph[p].t[w].word + 1;
    ix->by_word = arena_alloc(&L->r->arena, (nw + 1) * sizeof *ix->by_word);
    if (!ix->by_word)
        return;
    ix->n_words = nw;
    for (size_t p = 0; p < n; p++)
        for (size_t w = 0; w < ph[p].n; w++)
            ix->by_word[ph[p].t[w].word] |= 1ull << p;
}

/* The bytes the pattern item at src[pos..pos+len) may look at and still fail
 * with no callout after it: a counted repeat ("[^.]{400,}", "a{60000}") scans
 * up to its minimum before it can fail. Groups have callouts inside, and
 * "\x{2022}" and its kind are not repeats. */
static size_t item_reach(const char *src, size_t pos, size_t len)
{
    const char *it = src + pos;
    if (len < 4 || it[0] == '(' || it[0] == ')')
        return 0;
    size_t e = len;
    if (it[e - 1] == '+' || it[e - 1] == '?')
        e--;
    if (it[e - 1] != '}')
        return 0;
    size_t b = e - 1;
    while (b > 0 && it[b - 1] != '{')
        b--;
    if (b < 2 || it[b - 2] == '\\')
        return 0; /* no '{', or an escaped one */
    if (b >= 3 && it[b - 3] == '\\' && strchr("xopPNgk", it[b - 2]))
        return 0; /* \x{...}, \p{...}, \g{...}: not a quantifier */
    size_t n = 0, i = b;
    for (; i < e - 1 && it[i] >= '0' && it[i] <= '9'; i++)
        n = n * 10 + (size_t)(it[i] - '0');
    if (i == b || (it[i] != ',' && it[i] != '}'))
        return 0;
    return n;
}

/* pcre2_callout_enumerate: the reach of the item after each callout. */
typedef struct reach_table {
    const char *src;
    uint16_t *reach;
    size_t len;
} reach_table_t;

static int note_reach(pcre2_callout_enumerate_block *b, void *data)
{
    reach_table_t *t = data;
    if (b->pattern_position < t->len) {
        size_t n = item_reach(t->src, b->pattern_position, b->next_item_length);
        t->reach[b->pattern_position] = (uint16_t)(n > UINT16_MAX ? UINT16_MAX : n);
    }
    return 0;
}

static void compile_patterns(loader_t *L, element_t *e, json_t *o, tnode_t *c, const char *p)
{
    size_t n = 0;
    char **src = ld_strings(L, o, c, p, "patterns", &n, false);
    if (!src || n == 0)
        return;
    e->patterns = arena_alloc(&L->r->arena, n * sizeof *e->patterns);
    e->pattern_reach = arena_alloc(&L->r->arena, n * sizeof *e->pattern_reach);
    e->pattern_src = (const char **)src;
    if (!e->patterns || !e->pattern_reach)
        return;
    if (!L->r->pcre_mctx) {
        pcre2_match_context *mc = pcre2_match_context_create(NULL);
        if (!mc)
            return;
        pcre2_set_match_limit(mc, GRADING_PATTERN_NATIVE_LIMIT);
        pcre2_set_depth_limit(mc, GRADING_PATTERN_DEPTH_LIMIT);
        pcre2_set_heap_limit(mc, 4096); /* KiB */
        L->r->pcre_mctx = mc;
    }
    /* Compile cost: limits.c has bounded length and nesting already; PCRE2
     * enforces the same bounds should its reading of a pattern differ. */
    pcre2_compile_context *cc = pcre2_compile_context_create(NULL);
    if (!cc) {
        L->r->arena.oom = true;
        return;
    }
    pcre2_set_parens_nest_limit(cc, GRADING_PATTERN_PARENS_MAX);
    pcre2_set_max_pattern_length(cc, GRADING_PATTERN_MAX_BYTES);
    const char *jit_env = getenv("SCORELINE_PCRE2_JIT");
    bool jit = !(jit_env && strcmp(jit_env, "0") == 0);
    for (size_t i = 0; i < n; i++) {
        int ec;
        PCRE2_SIZE eo;
        /* PCRE2_AUTO_CALLOUT: a call before every item, the work budget's count */
        pcre2_code *code = pcre2_compile(
            (PCRE2_SPTR)src[i], PCRE2_ZERO_TERMINATED,
            PCRE2_UTF | PCRE2_UCP | PCRE2_CASELESS | PCRE2_MATCH_INVALID_UTF |
                PCRE2_USE_OFFSET_LIMIT | PCRE2_AUTO_CALLOUT,
            &ec, &eo, cc);
        if (!code) {
            PCRE2_UCHAR msg[160];
            pcre2_get_error_message(ec, msg, sizeof msg);
            ld_error(L, ld_path_idx(L, ld_path_key(L, p, "patterns"), i),
                     "pattern does not compile at offset %zu: %s", (size_t)eo, (char *)msg);
            continue;
        }
        if (!rubric_keep_pattern(L->r, code)) {
            pcre2_code_free(code);
            continue;
        }
        /* Machine code for the matcher where libpcre2 has a JIT: five to ten
         * times faster on the rubric's guard patterns. A pattern the JIT does
         * not take runs in the interpreter, and so does any match the JIT gives
         * up on (see pattern_match). */
        if (jit)
            (void)pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
        size_t slen = strlen(src[i]) + 1;
        reach_table_t t = {src[i], arena_alloc(&L->r->arena, slen * sizeof(uint16_t)), slen};
        if (!t.reach)
            continue;
        (void)pcre2_callout_enumerate(code, note_reach, &t);
        e->pattern_reach[e->n_patterns] = t.reach;
        e->patterns[e->n_patterns++] = code;
    }
    pcre2_compile_context_free(cc);
}

/* A count of a shape: 0 (the test is off) or 2 to 1000. */
static int64_t shape_count(loader_t *L, json_t *o, tnode_t *c, const char *p, const char *key,
                           int64_t def)
{
    int64_t v = ld_int(L, o, c, p, key, def, 0, 1000);
    if (v == 1) {
        ld_error(L, ld_path_key(L, p, key), "expected 0 (off) or an integer from 2 to 1000");
        v = def;
    }
    return v;
}

/* "shape": {"kind": "keyword_list", ...}. Written to the canonical form only
 * when present (with every parameter), so that rubrics without it keep their
 * hash. */
static const shape_t *compile_shape(loader_t *L, json_t *o, tnode_t *c, const char *p)
{
    json_t *v = ld_object(L, o, p, "shape", false);
    if (!v)
        return NULL;
    const char *sp = ld_path_key(L, p, "shape");
    static const char *const keys[] = {
        "kind",  "fragments",  "fragment_chars", "sentences",     "sentence_chars",
        "lines", "line_words", "run_chars",      "content_words", "answer_chars",
        NULL};
    static const char *const kinds[] = {"keyword_list", NULL};
    ld_check_keys(L, v, sp, keys);
    tnode_t *cs = t_map(L->ta);
    t_set(L->ta, c, "shape", cs);
    ld_enum(L, v, cs, sp, "kind", kinds, NULL);
    shape_t *sh = arena_alloc(&L->r->arena, sizeof *sh);
    if (!sh)
        return NULL;
    sh->fragments = shape_count(L, v, cs, sp, "fragments", 8);
    sh->fragment_chars = ld_int(L, v, cs, sp, "fragment_chars", 32, 1, 100000);
    sh->sentences = shape_count(L, v, cs, sp, "sentences", 8);
    sh->sentence_chars = ld_int(L, v, cs, sp, "sentence_chars", 20, 1, 100000);
    sh->lines = shape_count(L, v, cs, sp, "lines", 8);
    sh->line_words = ld_int(L, v, cs, sp, "line_words", 4, 1, 1000);
    sh->run_chars = ld_int(L, v, cs, sp, "run_chars", 400, 0, GRADING_TEXT_MAX_BYTES);
    sh->content_words = shape_count(L, v, cs, sp, "content_words", 8);
    sh->answer_chars = ld_int(L, v, cs, sp, "answer_chars", 0, 0, GRADING_TEXT_MAX_BYTES);
    if (shape_tests_on(sh) == 0)
        ld_error(L, sp, "every test of the shape is off");
    return sh;
}

/* Compile "elements" and "rules" of obj into *out; element refs are written
 * to it->elements from index elem_base on. */
static void compile_elements(loader_t *L, item_t *it, text_spec_t **out, json_t *obj,
                             tnode_t *canon, const char *path, size_t elem_base, bool optional);

void text_compile_elements(loader_t *L, item_t *it, text_spec_t **out, json_t *obj, tnode_t *canon,
                           const char *path, size_t elem_base)
{
    compile_elements(L, it, out, obj, canon, path, elem_base, false);
}

void text_compile_optional_elements(loader_t *L, item_t *it, text_spec_t **out, json_t *obj,
                                    tnode_t *canon, const char *path, size_t elem_base)
{
    compile_elements(L, it, out, obj, canon, path, elem_base, true);
}

static void compile_elements(loader_t *L, item_t *it, text_spec_t **out, json_t *obj,
                             tnode_t *canon, const char *path, size_t elem_base, bool optional)
{
    grading_rubric_t *r = L->r;
    text_spec_t *ts = arena_alloc(&r->arena, sizeof *ts);
    *out = ts;
    if (!ts)
        return;
    ts->typo_min = ld_int(L, obj, canon, path, "typo_min_length", 6, 3, 100);
    ts->lexicon = L->lexicon;
    if (L->lexicon && !lexicon_typo_min(L->lexicon, ts->typo_min))
        r->arena.oom = true;
    json_t *els = ld_array(L, obj, path, "elements", !optional);
    json_t *rules = ld_array(L, obj, path, "rules", false);
    size_t ne = els ? json_array_size(els) : 0, nr = rules ? json_array_size(rules) : 0;
    tnode_t *cels = t_arr(L->ta), *crules = t_arr(L->ta);
    t_set(L->ta, canon, "elements", cels);
    t_set(L->ta, canon, "rules", crules);
    if (els && ne == 0 && !optional)
        ld_error(L, ld_path_key(L, path, "elements"), "expected at least one element");
    ts->n = ne + nr;
    ts->el = arena_alloc(&r->arena, (ts->n + 1) * sizeof *ts->el);
    element_ref_t *refs = arena_alloc(&r->arena, (elem_base + ts->n + 1) * sizeof *refs);
    if (!ts->el || !refs)
        return;
    for (size_t i = 0; i < elem_base && i < it->n_elements; i++)
        refs[i] = it->elements[i];
    it->elements = refs;
    it->n_elements = elem_base + ts->n;
    static const char *const ekeys[] = {"id",          "points",    "phrases",   "patterns",
                                        "shape",       "window",    "negatable", "reject_hedged",
                                        "min_matches", "max_count", NULL};
    const char *ep = ld_path_key(L, path, "elements");
    for (size_t i = 0; i < ne; i++) {
        json_t *o = json_array_get(els, i);
        const char *p = ld_path_idx(L, ep, i);
        tnode_t *c = t_map(L->ta);
        t_push(L->ta, cels, c);
        element_t *e = &ts->el[i];
        e->id = "";
        refs[elem_base + i].id = "";
        if (!json_is_object(o)) {
            ld_error(L, p, "expected an object");
            continue;
        }
        ld_check_keys(L, o, p, ekeys);
        e->kind = EK_PHRASES;
        e->id = ld_ident(L, o, c, p, "id");
        refs[elem_base + i].id = e->id;
        e->points_milli = ld_scaled(L, o, c, p, "points", "1", 3, -1000000000, 1000000000);
        e->window = ld_int(L, o, c, p, "window", 2, 0, 20);
        e->negatable = ld_bool(L, o, c, p, "negatable", true);
        e->reject_hedged = ld_bool(L, o, c, p, "reject_hedged", false);
        e->min_matches = ld_int(L, o, c, p, "min_matches", 1, 1, 100);
        e->max_count = ld_int(L, o, c, p, "max_count", 1, 1, 100);
        size_t np = 0;
        char **ph = ld_strings(L, o, c, p, "phrases", &np, false);
        compile_patterns(L, e, o, c, p);
        e->shape = compile_shape(L, o, c, p);
        if (np == 0 && e->n_patterns == 0 && !json_object_get(o, "patterns") &&
            !json_object_get(o, "shape"))
            ld_error(L, ld_path_key(L, p, "phrases"),
                     "expected an array of strings (an element needs phrases, patterns or a "
                     "shape)");
        e->phrases = arena_alloc(&r->arena, (np + 1) * sizeof *e->phrases);
        for (size_t k = 0; e->phrases && k < np; k++)
            if (compile_phrase(L, &e->phrases[e->n_phrases], ph[k],
                               ld_path_idx(L, ld_path_key(L, p, "phrases"), k)))
                e->n_phrases++;
        phrase_index_build(L, &e->index, e->phrases, e->n_phrases);
    }
    static const char *const rkeys[] = {"id", "kind", "min", "max", "points", "penalty", NULL};
    static const char *const kinds[] = {"greeting",  "sign_off",   "words",
                                        "sentences", "paragraphs", NULL};
    const char *rp = ld_path_key(L, path, "rules");
    for (size_t i = 0; i < nr; i++) {
        json_t *o = json_array_get(rules, i);
        const char *p = ld_path_idx(L, rp, i);
        tnode_t *c = t_map(L->ta);
        t_push(L->ta, crules, c);
        element_t *e = &ts->el[ne + i];
        e->id = "";
        refs[elem_base + ne + i].id = "";
        if (!json_is_object(o)) {
            ld_error(L, p, "expected an object");
            continue;
        }
        ld_check_keys(L, o, p, rkeys);
        e->id = ld_ident(L, o, c, p, "id");
        refs[elem_base + ne + i].id = e->id;
        const char *k = ld_enum(L, o, c, p, "kind", kinds, NULL);
        e->kind = strcmp(k, "greeting") == 0    ? EK_GREETING
                  : strcmp(k, "sign_off") == 0  ? EK_SIGN_OFF
                  : strcmp(k, "words") == 0     ? EK_WORDS
                  : strcmp(k, "sentences") == 0 ? EK_SENTENCES
                                                : EK_PARAGRAPHS;
        e->min = ld_int(L, o, c, p, "min", 0, 0, 1000000);
        e->max = ld_int(L, o, c, p, "max", 0, 0, 1000000);
        if (e->max && e->max < e->min)
            ld_error(L, ld_path_key(L, p, "max"), "max is below min (0 means no maximum)");
        e->points_milli = ld_scaled(L, o, c, p, "points", "0", 3, 0, 1000000000);
        e->penalty_milli = ld_scaled(L, o, c, p, "penalty", "0", 3, 0, 1000000000);
    }
}

static void text_compile(loader_t *L, item_t *it, json_t *obj, tnode_t *canon, const char *path)
{
    text_spec_t *ts = NULL;
    text_compile_elements(L, it, &ts, obj, canon, path, 0);
    it->spec = ts;
}

/* ---- matching ---- */

typedef struct match_ctx {
    const tokens_t *toks; /* with match lists (lexicon_match_tokens) */
    int64_t typo_min;
    const uint64_t *words; /* by token: bit (id & 63) for each word id its list
                              admits under typo_min (token_words); or NULL */
} match_ctx_t;

/* m->words for m->toks, in a; false when out of memory. A phrase list whose
 * index (phrase_index_t.words) shares no bit with a token's has no candidate
 * there. */
static bool token_words(arena_t *a, match_ctx_t *m)
{
    const tokens_t *tk = m->toks;
    uint64_t *v = arena_alloc_raw(a, (tk->n + 1) * sizeof *v);
    if (!v)
        return false;
    for (size_t i = 0; i < tk->n; i++) {
        uint64_t b = 0;
        for (uint32_t k = tk->match_at[i]; k < tk->match_at[i + 1]; k++) {
            uint32_t typo = tk->match[k] & 255;
            if (typo == 0 || m->typo_min <= (int64_t)typo)
                b |= 1ull << ((tk->match[k] >> 8) & 63);
        }
        v[i] = b;
    }
    m->words = v;
    return true;
}

/* 0 no match, 1 stem, normalised form or synonym, 2 within one edit: the
 * word comparison of the top of the file, read from token i's match list. */
static inline int token_match(const match_ctx_t *m, size_t i, const ptoken_t *p)
{
    const tokens_t *tk = m->toks;
    for (uint32_t k = tk->match_at[i]; k < tk->match_at[i + 1]; k++)
        if (tk->match[k] >> 8 == p->word) {
            uint32_t typo = tk->match[k] & 255;
            return typo == 0 ? 1 : m->typo_min <= (int64_t)typo ? 2 : 0;
        }
    return 0;
}

/* toks with match lists for lx: toks itself when it has them, else a copy in
 * *tmp given its lists; NULL when out of memory. */
static const tokens_t *with_matches(grade_ctx_t *c, const lexicon_t *lx, const tokens_t *toks,
                                    tokens_t *tmp)
{
    if (toks->match_at && toks->match_lx == lx)
        return toks;
    *tmp = *toks;
    return lexicon_match_tokens(lx, c->a, tmp) ? tmp : NULL;
}

/* The phrases of ix that may start at token i: bit p for phrase p. */
static inline uint64_t phrase_candidates(const match_ctx_t *m, const phrase_index_t *ix, size_t i)
{
    const tokens_t *tk = m->toks;
    uint64_t cand = 0;
    for (uint32_t k = tk->match_at[i]; ix->by_word && k < tk->match_at[i + 1]; k++) {
        uint32_t w = tk->match[k] >> 8, typo = tk->match[k] & 255;
        if (w < ix->n_words && (typo == 0 || m->typo_min <= (int64_t)typo))
            cand |= ix->by_word[w];
    }
    return cand;
}

/* The next phrase to try from phrase `from` on: the next candidate, or simply
 * the next phrase when the list is not indexed; n when there is none. */
static inline size_t next_phrase(const phrase_index_t *ix, uint64_t cand, size_t from, size_t n)
{
    if (!ix->by_word)
        return from;
    if (from >= 64)
        return n;
    uint64_t rest = cand >> from;
    return rest ? from + (size_t)__builtin_ctzll(rest) : n;
}

/* Token i matches no phrase word of the item. */
static inline bool token_unmatched(const tokens_t *tk, size_t i)
{
    return tk->match_at[i] == tk->match_at[i + 1];
}

typedef struct span {
    size_t first, last; /* token indexes */
    bool typo;
} span_t;

/* Find the phrase at start token i: all words within the window, any order,
 * one sentence. */
static bool phrase_at(const match_ctx_t *m, const phrase_t *ph, int64_t window, size_t i,
                      span_t *out)
{
    const tokens_t *tk = m->toks;
    bool used[12] = {false};
    size_t pos[12];
    bool typo = false;
    int q = 0;
    /* token i must match some phrase word */
    for (size_t w = 0; w < ph->n; w++) {
        int r = token_match(m, i, &ph->t[w]);
        if (r) {
            used[w] = true;
            pos[w] = i;
            typo |= r == 2;
            q = 1;
            break;
        }
    }
    if (!q)
        return false;
    size_t need = ph->n - 1;
    size_t limit = i + ph->n + (size_t)window;
    size_t last = i;
    for (size_t j = i + 1; need > 0 && j < tk->n && j < limit; j++) {
        if (tk->v[j].sentence != tk->v[i].sentence)
            break;
        if (m->words ? !(m->words[j] & ph->words) : token_unmatched(tk, j))
            continue; /* matches no word of the phrase */
        for (size_t w = 0; w < ph->n; w++) {
            if (used[w])
                continue;
            int r = token_match(m, j, &ph->t[w]);
            if (r) {
                used[w] = true;
                pos[w] = j;
                typo |= r == 2;
                need--;
                last = j;
                break;
            }
        }
    }
    if (need)
        return false;
    (void)pos;
    out->first = i;
    out->last = last;
    out->typo = typo;
    return true;
}

/* A negator (or hedge) in the clause before the match, within 5 words, or
 * inside the match when the phrase has no negator of its own. */
static bool scoped_flag(const tokens_t *tk, size_t first, size_t last, uint16_t flag,
                        bool phrase_has_flag)
{
    uint32_t clause = tk->v[first].clause;
    for (size_t k = 1; k <= 5 && k <= first; k++) {
        const token_t *t = &tk->v[first - k];
        if (t->clause != clause)
            break;
        if (t->flags & flag)
            return true;
    }
    if (!phrase_has_flag)
        for (size_t j = first; j <= last; j++)
            if (tk->v[j].flags & flag)
                return true;
    return false;
}

/* The count of one pcre2_match, kept by its callouts. */
typedef struct pattern_run {
    const uint16_t *reach; /* item_reach by pattern_position (compile_patterns) */
    size_t reach_len;      /* entries of reach */
    size_t start;          /* start_match of the last callout; SIZE_MAX before the first */
    size_t pos;            /* current_position of the last callout */
    uint64_t at_start;     /* callouts at this start position */
    uint64_t moved;        /* bytes the match position moved between callouts, and
                              the counted repeats the items could scan (item_reach) */
    uint64_t items;        /* callouts */
    uint64_t base;         /* c->steps before the call */
    int stop;              /* the error a callout ended the match with, or 0 */
} pattern_run_t;

static uint64_t run_steps(const pattern_run_t *run)
{
    return run->items * GRADING_PATTERN_ITEM_STEPS + run->moved / GRADING_PATTERN_CHECK_BYTES;
}

/* Called by PCRE2 before every item of the pattern it tries, with the same
 * positions in the JIT and the interpreter: the work budget and the match
 * limit count these calls, so they stop a match at the same item in both. */
static int pattern_callout(pcre2_callout_block *b, void *data)
{
    pattern_run_t *run = data;
    if (b->start_match != run->start) {
        run->start = b->start_match;
        run->pos = b->start_match;
        run->at_start = 0;
    }
    size_t p = b->current_position;
    run->moved += p > run->pos ? p - run->pos : run->pos - p;
    if (b->pattern_position < run->reach_len)
        run->moved += run->reach[b->pattern_position];
    run->pos = p;
    run->items++;
    if (run->base + run_steps(run) > GRADING_WORK_BUDGET)
        return run->stop = PCRE2_ERROR_CALLOUT;
    if (++run->at_start > GRADING_PATTERN_MATCH_LIMIT)
        return run->stop = PCRE2_ERROR_MATCHLIMIT;
    return 0;
}

/* One pcre2_match from off, its callouts charged to the work budget. The JIT
 * stops where the interpreter would on the callouts' count; when it gives up
 * for a reason of its own (its stack, its own match count), the interpreter
 * runs the same match with its depth and heap limits and only its count is
 * charged, so a pattern is abandoned only when the interpreter gives up too,
 * with the interpreter's message. JIT runs redone that way are bounded: past
 * a budget's worth of them the grading keeps to the interpreter. *stop is the
 * callout's error when a callout ended the match. */
static int pattern_match(grade_ctx_t *c, const element_t *e, size_t p, const char *text, size_t len,
                         size_t off, pcre2_match_data *md, pcre2_match_context *mctx, int *stop)
{
    const pcre2_code *code = e->patterns[p];
    const pattern_run_t fresh = {e->pattern_reach[p], strlen(e->pattern_src[p]) + 1,
                                 SIZE_MAX, off, 0, 0, 0, c->steps, 0};
    pattern_run_t run = fresh;
    pcre2_set_callout(mctx, pattern_callout, &run);
    int rc = pcre2_match(code, (PCRE2_SPTR)text, len, off, c->no_jit ? PCRE2_NO_JIT : 0, md, mctx);
    if (rc < 0 && rc != PCRE2_ERROR_NOMATCH && !run.stop && !c->no_jit) {
        size_t jit = 0;
        if (pcre2_pattern_info(code, PCRE2_INFO_JITSIZE, &jit) == 0 && jit > 0) {
            c->jit_waste += run_steps(&run);
            if (c->jit_waste > GRADING_WORK_BUDGET)
                c->no_jit = true;
            run = fresh;
            rc = pcre2_match(code, (PCRE2_SPTR)text, len, off, PCRE2_NO_JIT, md, mctx);
        }
    }
    c->steps += run_steps(&run);
    *stop = run.stop;
    return rc;
}

static size_t token_at_offset(const tokens_t *tk, size_t off)
{
    size_t lo = 0, hi = tk->n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (tk->v[mid].end <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

#define MAX_EVIDENCE 5

static int64_t score_phrases(grade_ctx_t *c, match_ctx_t *m, const element_t *e, const char *text,
                             size_t text_len, tnode_t *rule, tnode_t *elem_ev, tnode_t *rejected,
                             bool *abandoned)
{
    const tokens_t *tk = m->toks;
    int64_t count = 0;
    size_t shown = 0, shown_rej = 0;
    /* phrases: scan token starts; matches do not overlap within an element */
    size_t next_free = 0;
    for (size_t i = 0; i < tk->n; i++) {
        if (e->index.by_word) {
            /* on to the next token matching a word of the element's phrases
             * (no other has a candidate; skipping one changes no count, so
             * the budget is checked where the scan stops) */
            if (i < next_free)
                i = next_free;
            while (i < tk->n && !(m->words[i] & e->index.words))
                i++;
            if (i == tk->n)
                break;
        }
        if (ctx_over_budget(c))
            break;
        if (i < next_free || token_unmatched(tk, i))
            continue;
        uint64_t cand = phrase_candidates(m, &e->index, i);
        for (size_t p = next_phrase(&e->index, cand, 0, e->n_phrases); p < e->n_phrases;
             p = next_phrase(&e->index, cand, p + 1, e->n_phrases)) {
            span_t sp;
            /* words it may look at, each against the phrase's words */
            c->steps += e->phrases[p].n * (e->phrases[p].n + (uint64_t)e->window);
            if (!phrase_at(m, &e->phrases[p], e->window, i, &sp))
                continue;
            bool neg = e->negatable &&
                       scoped_flag(tk, sp.first, sp.last, TOK_NEGATOR, e->phrases[p].has_negator);
            bool hedge = e->reject_hedged && scoped_flag(tk, sp.first, sp.last, TOK_HEDGE, false);
            size_t s = tk->v[sp.first].start, en = tk->v[sp.last].end;
            if (neg || hedge) {
                if (shown_rej++ < MAX_EVIDENCE) {
                    tnode_t *rj = t_map(c->a); /* fresh maps: t_put */
                    t_put(c->a, rj, "phrase", t_ref(c->a, e->phrases[p].src));
                    t_put(c->a, rj, "why", t_ref(c->a, neg ? "negated" : "hedged"));
                    t_put(c->a, rj, "start", t_int(c->a, (int64_t)s));
                    t_put(c->a, rj, "end", t_int(c->a, (int64_t)en));
                    t_push(c->a, rejected, rj);
                }
            } else {
                count++;
                if (shown++ < MAX_EVIDENCE) {
                    trace_evidence(c, rule, text, s, en);
                    tnode_t *evs = t_get(rule, "evidence");
                    tnode_t *last_ev = evs ? evs->kids[evs->n - 1] : NULL;
                    t_put(c->a, last_ev, "phrase", t_ref(c->a, e->phrases[p].src));
                    if (sp.typo)
                        t_put(c->a, last_ev, "typo", t_bool(c->a, true));
                    tnode_t *copy = t_map(c->a);
                    t_put(c->a, copy, "start", t_int(c->a, (int64_t)s));
                    t_put(c->a, copy, "end", t_int(c->a, (int64_t)en));
                    t_push(c->a, elem_ev, copy);
                }
            }
            next_free = sp.last + 1;
            break;
        }
    }
    /* patterns on the original text */
    if (e->n_patterns) {
        if (!c->match_data)
            c->match_data = pcre2_match_data_create(4, NULL);
        if (!c->match_ctx)
            c->match_ctx = pcre2_match_context_copy(c->r->pcre_mctx);
        pcre2_match_data *md = c->match_data;
        pcre2_match_context *mc = c->match_ctx;
        size_t len = strlen(text);
        for (size_t p = 0; md && mc && p < e->n_patterns; p++) {
            PCRE2_SIZE off = 0;
            int guard = 0;
            /* \G names the start offset: such a pattern scans in one call */
            bool whole = strstr(e->pattern_src[p], "\\G") != NULL;
            while (off <= len && guard < 10000 && !ctx_over_budget(c)) {
                /* Matches may start up to lim (the text is whole for
                 * lookarounds): a window of start positions per call finds
                 * the same leftmost match as one call over the rest. */
                size_t lim = whole || len - off <= GRADING_PATTERN_WINDOW
                                 ? len
                                 : off + GRADING_PATTERN_WINDOW;
                pcre2_set_offset_limit(mc, lim);
                int stop = 0;
                int rc = pattern_match(c, e, p, text, len, off, md, mc, &stop);
                if (stop == PCRE2_ERROR_CALLOUT) {
                    c->budget_pattern = e->pattern_src[p]; /* grade.c reports it */
                    break;
                }
                /* Work budget: the call, the bytes it moved over (to the
                 * match's end, or to the end of its window), and the UTF-8
                 * check of the rest of the text PCRE2 makes on every call
                 * (PCRE2_MATCH_INVALID_UTF ignores PCRE2_NO_UTF_CHECK). */
                size_t reached = rc >= 0 ? pcre2_get_ovector_pointer(md)[1] : lim;
                c->steps += GRADING_PATTERN_CALL_STEPS +
                            GRADING_PATTERN_BYTE_STEPS * (reached > off ? reached - off : 0) +
                            (len - off) / GRADING_PATTERN_CHECK_BYTES;
                if (rc == PCRE2_ERROR_NOMATCH && lim < len) {
                    off = lim + 1;
                    while (off < len && ((unsigned char)text[off] & 0xc0) == 0x80)
                        off++;
                    continue;
                }
                if (rc == PCRE2_ERROR_NOMATCH)
                    break;
                guard++;
                if (rc < 0) {
                    *abandoned = true;
                    PCRE2_UCHAR msg[120];
                    pcre2_get_error_message(rc, msg, sizeof msg);
                    t_set(c->a, rule, "abandoned",
                          t_strz(c->a, arena_printf(c->a, "pattern %s: %s", e->pattern_src[p],
                                                    (char *)msg)));
                    break;
                }
                PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
                size_t s = ov[0], en = ov[1];
                size_t ft = token_at_offset(tk, s), lt = en > s ? token_at_offset(tk, en - 1) : ft;
                bool neg = ft < tk->n && e->negatable &&
                           scoped_flag(tk, ft, lt < tk->n ? lt : ft, TOK_NEGATOR, false);
                if (neg) {
                    if (shown_rej++ < MAX_EVIDENCE) {
                        tnode_t *rj = t_map(c->a);
                        t_put(c->a, rj, "pattern", t_ref(c->a, e->pattern_src[p]));
                        t_put(c->a, rj, "why", t_ref(c->a, "negated"));
                        t_put(c->a, rj, "start", t_int(c->a, (int64_t)s));
                        t_put(c->a, rj, "end", t_int(c->a, (int64_t)en));
                        t_push(c->a, rejected, rj);
                    }
                } else {
                    count++;
                    if (shown++ < MAX_EVIDENCE) {
                        trace_evidence(c, rule, text, s, en);
                        tnode_t *copy = t_map(c->a);
                        t_put(c->a, copy, "start", t_int(c->a, (int64_t)s));
                        t_put(c->a, copy, "end", t_int(c->a, (int64_t)en));
                        t_push(c->a, elem_ev, copy);
                    }
                }
                off = en > s ? en : s + 1;
                while (off < len && ((unsigned char)text[off] & 0xc0) == 0x80)
                    off++;
            }
        }
    }
    /* the shape of the whole text: linear, never negated (a form, not a
     * statement) */
    if (e->shape && !ctx_over_budget(c)) {
        shape_hit_t hits[MAX_EVIDENCE];
        size_t found = shape_find(e->shape, text, text_len, hits, MAX_EVIDENCE);
        c->steps += GRADING_SHAPE_CALL_STEPS + (uint64_t)text_len * shape_tests_on(e->shape);
        for (size_t h = 0; h < found && h < MAX_EVIDENCE && shown < MAX_EVIDENCE; h++, shown++) {
            trace_evidence(c, rule, text, hits[h].start, hits[h].end);
            tnode_t *evs = t_get(rule, "evidence");
            t_put(c->a, evs->kids[evs->n - 1], "shape", t_ref(c->a, shape_test_name(hits[h].test)));
            tnode_t *copy = t_map(c->a);
            t_put(c->a, copy, "start", t_int(c->a, (int64_t)hits[h].start));
            t_put(c->a, copy, "end", t_int(c->a, (int64_t)hits[h].end));
            t_push(c->a, elem_ev, copy);
        }
        count += (int64_t)found;
    }
    return count;
}

static const char *const GREETINGS[] = {"hi",   "hello",   "dear",      "hey",     "greetings",
                                        "good", "morning", "afternoon", "evening", NULL};
static const char *const SIGN_OFFS[] = {"regards", "sincerely", "cheers", "best",  "thanks",
                                        "thank",   "warmly",    "talk",   "speak", NULL};

static bool word_in(const token_t *t, const char *const *list)
{
    for (size_t i = 0; list[i]; i++)
        if (t->norm_len == strlen(list[i]) && memcmp(t->norm, list[i], t->norm_len) == 0)
            return true;
    return false;
}

/* Append the decimal form of v to buf at *n (as printf's %lld). */
static void put_int(char *buf, size_t *n, int64_t v)
{
    char d[24];
    size_t k = 0;
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        d[k++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        buf[(*n)++] = '-';
    while (k)
        buf[(*n)++] = d[--k];
}

static void put_str(char *buf, size_t *n, const char *s, size_t len)
{
    memcpy(buf + *n, s, len);
    *n += len;
}

/* "%lld match%s (needs %lld)%s%s": an element's detail, written without
 * printf (one per element of every graded text). */
static const char *match_detail(arena_t *a, int64_t count, int64_t needs, bool penalty, bool capped)
{
    char buf[128];
    size_t n = 0;
    put_int(buf, &n, count);
    put_str(buf, &n, count == 1 ? " match" : " matches", count == 1 ? 6 : 8);
    put_str(buf, &n, " (needs ", 8);
    put_int(buf, &n, needs);
    put_str(buf, &n, ")", 1);
    if (penalty)
        put_str(buf, &n, "; penalty", 9);
    if (capped)
        put_str(buf, &n, "; capped", 8);
    return arena_strndup(a, buf, n);
}

/* Score elements and rules; element results go to out from elem_base on. */
grading_err_t text_score_elements(grade_ctx_t *c, const item_t *it, const text_spec_t *ts,
                                  const char *text, size_t len, const tokens_t *toks,
                                  const char *path, item_result_t *out, size_t elem_base,
                                  int64_t *earned, grading_error_t *err)
{
    tokens_t matched_toks;
    toks = with_matches(c, ts->lexicon ? *ts->lexicon : NULL, toks, &matched_toks);
    if (!toks)
        return GRADING_ERR_NOMEM;
    match_ctx_t m = {.toks = toks, .typo_min = ts->typo_min};
    if (!token_words(c->a, &m))
        return GRADING_ERR_NOMEM;
    int64_t sum = 0;
    uint32_t last_line = toks->n ? toks->v[toks->n - 1].line : 0;
    for (size_t k = 0; k < ts->n; k++) {
        const element_t *e = &ts->el[k];
        size_t ei = elem_base + k;
        tnode_t *rule = trace_rule(c, out->trace, e->id, false, 0, "");
        tnode_t *elem_ev = t_arr(c->a);
        bool matched = false;
        int64_t pts = 0;
        const char *detail = "";
        if (e->kind == EK_PHRASES) {
            tnode_t *rejected = t_arr(c->a);
            bool abandoned = false;
            int64_t count = score_phrases(c, &m, e, text, len, rule, elem_ev, rejected, &abandoned);
            matched = count >= e->min_matches;
            if (matched) {
                int64_t times = count < e->max_count ? count : e->max_count;
                pts = e->points_milli * (e->min_matches > 1 ? 1 : times);
            }
            if (rejected->n)
                t_set(c->a, rule, "rejected", rejected);
            detail = match_detail(c->a, count, e->min_matches, e->points_milli < 0,
                                  count > e->max_count && matched);
        } else {
            int64_t v = 0;
            if (e->kind == EK_GREETING) {
                matched = toks->n > 0 && word_in(&toks->v[0], GREETINGS);
                if (matched)
                    trace_evidence(c, rule, text, toks->v[0].start, toks->v[0].end);
                detail = matched ? "opens with a greeting" : "no greeting at the start";
            } else if (e->kind == EK_SIGN_OFF) {
                for (size_t i = toks->n; i-- > 0;) {
                    if (last_line - toks->v[i].line > 2)
                        break;
                    if (word_in(&toks->v[i], SIGN_OFFS)) {
                        matched = true;
                        trace_evidence(c, rule, text, toks->v[i].start, toks->v[i].end);
                        break;
                    }
                }
                detail = matched ? "closes with a sign-off" : "no sign-off in the last lines";
            } else {
                v = e->kind == EK_WORDS       ? (int64_t)toks->n
                    : e->kind == EK_SENTENCES ? (int64_t)toks->sentences
                                              : (int64_t)toks->paragraphs;
                matched = v >= e->min && (e->max == 0 || v <= e->max);
                detail =
                    arena_printf(c->a, "%lld %s (bounds %lld..%s)", (long long)v,
                                 e->kind == EK_WORDS       ? "words"
                                 : e->kind == EK_SENTENCES ? "sentences"
                                                           : "paragraphs",
                                 (long long)e->min,
                                 e->max ? arena_printf(c->a, "%lld", (long long)e->max) : "none");
            }
            pts = matched ? e->points_milli : -e->penalty_milli;
        }
        sum += pts;
        out->elem_matched[ei] = matched;
        out->elem_points[ei] = pts;
        out->elem_evidence[ei] = elem_ev->n ? elem_ev : NULL;
        t_set(c->a, rule, "matched", t_bool(c->a, matched));
        t_set(c->a, rule, "points_milli", t_int(c->a, pts));
        t_set(c->a, rule, "detail", t_ref(c->a, detail));
    }
    (void)path;
    (void)err;
    (void)it;
    *earned = sum;
    return GRADING_OK;
}

/* A string response, checked against the size limit; NULL/blank = unanswered. */
grading_err_t text_response(const msgpack_object *resp, const char *path, const char **s,
                            size_t *len, grading_error_t *err)
{
    *s = NULL;
    *len = 0;
    if (!resp || resp->type == MSGPACK_OBJECT_NIL)
        return GRADING_OK;
    if (!mp_str(resp, s, len)) {
        err_set(err, GRADING_ERR_INVALID_RESPONSE, path, "a text response is a string");
        return GRADING_ERR_INVALID_RESPONSE;
    }
    if (*len > GRADING_TEXT_MAX_BYTES) {
        err_set(err, GRADING_ERR_LIMIT, path, "the response is %zu bytes; the limit is %u", *len,
                GRADING_TEXT_MAX_BYTES);
        return GRADING_ERR_LIMIT;
    }
    return GRADING_OK;
}

static grading_err_t text_grade(grade_ctx_t *c, const item_t *it, const msgpack_object *resp,
                                const char *path, item_result_t *out, grading_error_t *err)
{
    const text_spec_t *ts = it->spec;
    const char *s;
    size_t len;
    grading_err_t rc = text_response(resp, path, &s, &len, err);
    if (rc != GRADING_OK)
        return rc;
    /* the text is copied NUL-terminated: PCRE2 and the scanners read it whole */
    char *text = s ? arena_strndup(c->a, s, len) : NULL;
    tokens_t toks = {0};
    if (s && (!text || !text_tokenize(c->a, ctx_stemmer(c), text, len, &toks) ||
              !lexicon_match_tokens(it->lexicon, c->a, &toks)))
        return GRADING_ERR_NOMEM;
    if (toks.n == 0) {
        out->status = ST_UNANSWERED;
        trace_rule(c, out->trace, "answer", false, 0, "no words in the response");
        return GRADING_OK;
    }
    int64_t earned = 0;
    rc = text_score_elements(c, it, ts, text, len, &toks, path, out, 0, &earned, err);
    if (rc != GRADING_OK)
        return rc;
    t_set(c->a, out->detail, "words", t_int(c->a, (int64_t)toks.n));
    t_set(c->a, out->detail, "sentences", t_int(c->a, (int64_t)toks.sentences));
    t_set(c->a, out->detail, "paragraphs", t_int(c->a, (int64_t)toks.paragraphs));
    if (earned < 0 || earned > it->points_milli) {
        int64_t cl = earned < 0 ? 0 : it->points_milli;
        trace_rule(c, out->trace, "clamp", true, cl - earned,
                   arena_printf(c->a, "element total %lld clamped to %lld", (long long)earned,
                                (long long)cl));
        earned = cl;
    }
    out->status = ST_SCORED;
    out->earned_milli = earned;
    return GRADING_OK;
}

const item_ops_t text_ops = {"text", TEXT_KEYS, text_compile, text_grade};

/* ---- phrase sets for other item types (ordering steps, pick rows) ---- */

struct phrase_set {
    phrase_t *v;
    size_t n;
    phrase_index_t index;
    lexicon_t *const *lexicon; /* the item's (item_t.lexicon) */
};

#define PHRASE_SET_TYPO_MIN 6

/* Compile phrases (src[0..n)) reported under path ("steps[2].phrases"). */
phrase_set_t *text_phrases_compile(loader_t *L, char **src, size_t n, const char *path)
{
    phrase_set_t *ps = arena_alloc(&L->r->arena, sizeof *ps);
    if (!ps)
        return NULL;
    ps->lexicon = L->lexicon;
    if (L->lexicon && !lexicon_typo_min(L->lexicon, PHRASE_SET_TYPO_MIN))
        return NULL;
    ps->v = arena_alloc(&L->r->arena, (n + 1) * sizeof *ps->v);
    for (size_t k = 0; ps->v && k < n; k++)
        if (compile_phrase(L, &ps->v[ps->n], src[k], ld_path_idx(L, path, k)))
            ps->n++;
    phrase_index_build(L, &ps->index, ps->v, ps->n);
    return ps;
}

/* The first match of any phrase that is not negated in its clause; false
 * when there is none. Window 2, typos from 6 letters, as for elements. */
bool text_phrases_first(grade_ctx_t *c, const phrase_set_t *ps, const tokens_t *toks, size_t *start,
                        size_t *end)
{
    if (!ps || ps->n == 0 || toks->n == 0)
        return false;
    tokens_t matched_toks;
    toks = with_matches(c, ps->lexicon ? *ps->lexicon : NULL, toks, &matched_toks);
    if (!toks)
        return false;
    match_ctx_t m = {.toks = toks, .typo_min = PHRASE_SET_TYPO_MIN};
    for (size_t i = 0; i < toks->n && !ctx_over_budget(c); i++) {
        if (token_unmatched(toks, i))
            continue;
        uint64_t cand = phrase_candidates(&m, &ps->index, i);
        for (size_t p = next_phrase(&ps->index, cand, 0, ps->n); p < ps->n;
             p = next_phrase(&ps->index, cand, p + 1, ps->n)) {
            span_t sp;
            c->steps += ps->v[p].n * (ps->v[p].n + 2);
            if (!phrase_at(&m, &ps->v[p], 2, i, &sp))
                continue;
            if (scoped_flag(toks, sp.first, sp.last, TOK_NEGATOR, ps->v[p].has_negator))
                continue;
            *start = toks->v[sp.first].start;
            *end = toks->v[sp.last].end;
            return true;
        }
    }
    return false;
}
