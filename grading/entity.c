/*
 * entity.c - names of organisations and people, through the rubric's shared
 * alias table ("entities": ACME Inc = Acme Incorporated = ACME).
 *
 * A mention is a run of words equal, after NFKC + case fold with punctuation
 * dropped, to one of an entity's names (the longest name wins at a
 * position). "expect" lists the entities the answer must name, each earning
 * its share; "forbid" lists wrong ones (the Apex Corp slip): a forbidden
 * entity asserted in the response - not denied in its clause, as in "ACME
 * Inc, not Apex Corp" - costs forbid_penalty of the points.
 *
 * Direction (a correction names the wrong name and the right one): "wrong"
 * and "right" list entities whose role the response must state. Each
 * mention gets a role from the words around it (RUBRIC.md "entity"):
 *   A should be / must read / needs to say B     A wrong, B right
 *   replace / change / swap / correct A with / to / by / for B
 *   A -> B, A => B, A (arrow) B
 *   B, not A; B and not A; B instead of A; B rather than A
 *   A is wrong / incorrect / a mistake / an error / a typo, wrong name A
 *   (it) should be B; the right / correct name is B; the client is B
 * wrong_points are shared by the "wrong" entities stated wrong, right_points
 * by the "right" entities stated right, the rest of the points by "expect";
 * a "wrong" entity stated right or a "right" one stated wrong (the reversed
 * correction) costs reversed_penalty of the points. bare_name gives a
 * response that is only a name that role ("What should it be?" "ACME").
 */
#include "internal.h"

#include <jansson.h>
#include <string.h>

typedef struct name_toks {
    char **w; /* folded words */
    size_t n;
} name_toks_t;

typedef struct entity_ref {
    size_t group; /* index into rubric aliases */
    name_toks_t *names;
    size_t n_names;
} entity_ref_t;

typedef enum { ROLE_NONE = 0, ROLE_WRONG = 1, ROLE_RIGHT = 2 } role_t;

typedef struct entity_spec {
    entity_ref_t *expect, *forbid, *wrong, *right;
    size_t n_expect, n_forbid, n_wrong, n_right;
    int64_t forbid_penalty_milli; /* thousandths of the points */
    int64_t expect_milli, wrong_milli, right_milli;
    int64_t reversed_penalty_milli; /* thousandths of the points */
    role_t bare;
    bool directed; /* wrong or right given */
} entity_spec_t;

static const char *const ENTITY_KEYS[] = {
    "expect",       "forbid",       "forbid_penalty",   "wrong",     "right",
    "wrong_points", "right_points", "reversed_penalty", "bare_name", NULL};

static bool compile_refs(loader_t *L, item_t *it, json_t *obj, tnode_t *canon, const char *path,
                         const char *key, entity_ref_t **out, size_t *n, bool required,
                         const char *prefix)
{
    grading_rubric_t *r = L->r;
    size_t cnt = 0;
    char **ids = ld_strings(L, obj, canon, path, key, &cnt, required);
    *n = 0;
    *out = arena_alloc(&r->arena, (cnt + 1) * sizeof **out);
    if (!*out || !ids)
        return false;
    for (size_t i = 0; i < cnt; i++) {
        int g = -1;
        for (size_t k = 0; k < r->n_aliases; k++)
            if (strcmp(r->aliases[k].id, ids[i]) == 0)
                g = (int)k;
        if (g < 0) {
            ld_error(L, ld_path_idx(L, ld_path_key(L, path, key), i),
                     "no entity \"%s\" in the rubric's entities", ids[i]);
            continue;
        }
        entity_ref_t *e = &(*out)[(*n)++];
        e->group = (size_t)g;
        const alias_group_t *ag = &r->aliases[g];
        e->names = arena_alloc(&r->arena, ag->n * sizeof *e->names);
        for (size_t k = 0; e->names && k < ag->n; k++) {
            /* split the folded name on spaces */
            const char *f = ag->folded[k];
            name_toks_t *nt = &e->names[e->n_names];
            size_t words = 1;
            for (const char *p = f; *p; p++)
                words += *p == ' ';
            nt->w = arena_alloc(&r->arena, words * sizeof *nt->w);
            const char *s = f;
            while (nt->w && *s) {
                const char *sp = strchr(s, ' ');
                size_t l = sp ? (size_t)(sp - s) : strlen(s);
                nt->w[nt->n++] = arena_strndup(&r->arena, s, l);
                s += l + (sp ? 1 : 0);
            }
            if (nt->n)
                e->n_names++;
        }
        it->elements[it->n_elements++].id = arena_printf(&r->arena, "%s%s", prefix, ag->id);
    }
    return true;
}

/* Copy dir[key] into canon when the field differs from its default. */
static void keep_if(loader_t *L, tnode_t *canon, tnode_t *dir, const char *key, bool keep)
{
    tnode_t *v = t_get(dir, key);
    if (keep && v)
        t_set(L->ta, canon, key, v);
}

static void entity_compile(loader_t *L, item_t *it, json_t *obj, tnode_t *canon, const char *path)
{
    grading_rubric_t *r = L->r;
    entity_spec_t *es = arena_alloc(&r->arena, sizeof *es);
    if (!es)
        return;
    it->spec = es;
    json_t *ex = json_object_get(obj, "expect"), *fb = json_object_get(obj, "forbid");
    json_t *wr = json_object_get(obj, "wrong"), *rt = json_object_get(obj, "right");
    es->directed = (json_is_array(wr) && json_array_size(wr) > 0) ||
                   (json_is_array(rt) && json_array_size(rt) > 0);
    size_t cap = (json_is_array(ex) ? json_array_size(ex) : 0) +
                 (json_is_array(fb) ? json_array_size(fb) : 0) +
                 (json_is_array(wr) ? json_array_size(wr) : 0) +
                 (json_is_array(rt) ? json_array_size(rt) : 0) + 2;
    it->elements = arena_alloc(&r->arena, cap * sizeof *it->elements);
    if (!it->elements)
        return;
    compile_refs(L, it, obj, canon, path, "expect", &es->expect, &es->n_expect, !es->directed, "");
    compile_refs(L, it, obj, canon, path, "forbid", &es->forbid, &es->n_forbid, false,
                 "forbidden_");
    es->forbid_penalty_milli = ld_scaled(L, obj, canon, path, "forbid_penalty", "1", 3, 0, 1000);
    /* The direction fields came after the first rubrics were stored: they
     * enter the canonical form only when they differ from their defaults, so
     * that rubrics without them keep their hash. */
    tnode_t *dir = t_map(L->ta);
    compile_refs(L, it, obj, dir, path, "wrong", &es->wrong, &es->n_wrong, false, "wrong_");
    compile_refs(L, it, obj, dir, path, "right", &es->right, &es->n_right, false, "right_");
    if (es->directed)
        it->elements[it->n_elements++].id = "reversed";
    es->wrong_milli = ld_scaled(L, obj, dir, path, "wrong_points", "0", 3, 0, it->points_milli);
    es->right_milli = ld_scaled(L, obj, dir, path, "right_points", "0", 3, 0, it->points_milli);
    es->reversed_penalty_milli = ld_scaled(L, obj, dir, path, "reversed_penalty", "1", 3, 0, 1000);
    static const char *const bares[] = {"none", "wrong", "right", NULL};
    const char *b = ld_enum(L, obj, dir, path, "bare_name", bares, "none");
    keep_if(L, canon, dir, "wrong", es->n_wrong > 0);
    keep_if(L, canon, dir, "right", es->n_right > 0);
    keep_if(L, canon, dir, "wrong_points", es->wrong_milli != 0);
    keep_if(L, canon, dir, "right_points", es->right_milli != 0);
    keep_if(L, canon, dir, "reversed_penalty", es->reversed_penalty_milli != 1000);
    keep_if(L, canon, dir, "bare_name", strcmp(b, "none") != 0);
    es->bare = strcmp(b, "wrong") == 0   ? ROLE_WRONG
               : strcmp(b, "right") == 0 ? ROLE_RIGHT
                                         : ROLE_NONE;
    es->expect_milli = it->points_milli - es->wrong_milli - es->right_milli;
    if (es->expect_milli < 0)
        ld_error(L, ld_path_key(L, path, "wrong_points"),
                 "wrong_points + right_points exceed the item's points");
    else if (es->expect_milli > 0 && es->n_expect == 0 && es->directed)
        ld_error(L, ld_path_key(L, path, "expect"),
                 "the points left after wrong_points and right_points need expected names");
    if (es->wrong_milli > 0 && es->n_wrong == 0)
        ld_error(L, ld_path_key(L, path, "wrong"), "wrong_points need wrong entities");
    if (es->right_milli > 0 && es->n_right == 0)
        ld_error(L, ld_path_key(L, path, "right"), "right_points need right entities");
}

/* Folded words of the response with their spans (punctuation dropped). */
typedef struct fword {
    const char *w;
    size_t start, end;
} fword_t;

/* First mention of ref (longest name at each position); false if none. With
 * asserted_only, a mention denied in its clause is skipped. */
static bool find_mention(const entity_ref_t *e, const tokens_t *tk, const fword_t *fw,
                         bool asserted_only, size_t *s, size_t *en, bool *denied_seen)
{
    for (size_t i = 0; i < tk->n; i++) {
        size_t best = 0;
        for (size_t k = 0; k < e->n_names; k++) {
            const name_toks_t *nt = &e->names[k];
            if (nt->n <= best || i + nt->n > tk->n)
                continue;
            bool ok = true;
            for (size_t w = 0; ok && w < nt->n; w++)
                ok = strcmp(fw[i + w].w, nt->w[w]) == 0;
            if (ok)
                best = nt->n;
        }
        if (!best)
            continue;
        size_t a = fw[i].start, b = fw[i + best - 1].end;
        if (asserted_only && text_span_negated(tk, a, b)) {
            *denied_seen = true;
            continue;
        }
        *s = a;
        *en = b;
        return true;
    }
    return false;
}

/* ---- direction: which name a response states is wrong, which right ---- */

typedef struct mention {
    size_t group;  /* rubric alias group */
    size_t ti, tj; /* tokens [ti, tj) */
    role_t role;
    const char *why;
} mention_t;

static bool w_is(const token_t *t, const char *w)
{
    size_t n = strlen(w);
    return t->norm_len == n && memcmp(t->norm, w, n) == 0;
}

static bool w_in(const token_t *t, const char *const *list)
{
    for (size_t i = 0; list[i]; i++)
        if (w_is(t, list[i]))
            return true;
    return false;
}

static const char *const MODALS[] = {"should", "must", "needs", "need", "ought", "has", NULL};
static const char *const BE_SAY[] = {"be", "been", "say", "read", "become", NULL};
static const char *const REPLACE[] = {"replace",  "replaced", "replacing", "change",  "changed",
                                      "changing", "swap",     "swapped",   "correct", "corrected",
                                      "fix",      "fixed",    "update",    "updated", NULL};
static const char *const WITH_TO[] = {"with", "to", "by", "for", "into", NULL};
static const char *const WRONGNESS[] = {"wrong", "incorrect",  "mistake",  "mistaken", "error",
                                        "typo",  "misspelled", "misnamed", NULL};
static const char *const RIGHTNESS[] = {"right", "correct", "proper", NULL};

/* "should be", "must read", "needs to say", "ought to have been" starting at
 * token i (within 4 tokens); returns the token after the cue, or 0. */
static size_t modal_cue(const tokens_t *tk, size_t i, size_t limit)
{
    if (i >= limit || !w_in(&tk->v[i], MODALS))
        return 0;
    for (size_t k = i + 1; k < limit && k <= i + 3; k++) {
        if (tk->v[k].sentence != tk->v[i].sentence)
            return 0;
        if (w_in(&tk->v[k], BE_SAY))
            return k + 1;
        if (tk->v[k].flags & TOK_NEGATOR)
            return 0; /* "should not be" */
    }
    return 0;
}

static void set_role(mention_t *m, role_t r, const char *why)
{
    if (m->role == ROLE_NONE) {
        m->role = r;
        m->why = why;
    }
}

/* Only spaces, quotes and an arrow between bytes a and b. */
static bool arrow_between(const char *text, size_t a, size_t b)
{
    bool arrow = false;
    for (size_t i = a; i < b; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (ch == ' ' || ch == '"' || ch == '\'' || ch == '\t')
            continue;
        if ((ch == '-' || ch == '=') && i + 1 < b && text[i + 1] == '>') {
            arrow = true;
            i++;
            continue;
        }
        if (ch == 0xe2 && i + 2 < b && (unsigned char)text[i + 1] == 0x86 &&
            (unsigned char)text[i + 2] == 0x92) { /* U+2192 */
            arrow = true;
            i += 2;
            continue;
        }
        if (ch == 0xe2 && i + 2 < b && (unsigned char)text[i + 1] == 0x80 &&
            ((unsigned char)text[i + 2] >= 0x98 && (unsigned char)text[i + 2] <= 0x9d)) {
            i += 2; /* typographic quotes */
            continue;
        }
        return false;
    }
    return arrow;
}

/* Give each mention its role from the words around it. */
static void assign_roles(const char *text, const tokens_t *tk, mention_t *mv, size_t nm,
                         role_t bare)
{
    if (nm == 1 && mv[0].ti == 0 && mv[0].tj == tk->n && bare != ROLE_NONE) {
        set_role(&mv[0], bare, "the whole answer is this name");
        return;
    }
    for (size_t m = 0; m < nm; m++) {
        mention_t *a = &mv[m];
        mention_t *b = m + 1 < nm ? &mv[m + 1] : NULL;
        uint32_t sent = tk->v[a->ti].sentence;
        /* "Apex Corp. is wrong": the period of an abbreviation followed by a
         * lower-case word does not end the sentence for the words after */
        uint32_t sent_after = sent;
        size_t e = tk->v[a->tj - 1].end;
        if (a->tj < tk->n && tk->v[a->tj].sentence != sent && text[e] == '.' &&
            text[tk->v[a->tj].start] >= 'a' && text[tk->v[a->tj].start] <= 'z')
            sent_after = tk->v[a->tj].sentence;
        bool b_same = b && tk->v[b->ti].sentence == sent_after;
        size_t lim = b_same ? b->ti : tk->n;
        /* A should be B / A is wrong */
        for (size_t k = a->tj; k < lim && k < a->tj + 6; k++) {
            if (tk->v[k].sentence != sent_after)
                break;
            size_t after = modal_cue(tk, k, tk->n);
            if (after) {
                if (b_same && b->ti >= after) {
                    set_role(a, ROLE_WRONG, "corrected: \"should be\" the next name");
                    set_role(b, ROLE_RIGHT, "the correction (\"should be\")");
                } else if (after < tk->n && tk->v[after].sentence == sent_after &&
                           w_in(&tk->v[after], REPLACE)) {
                    set_role(a, ROLE_WRONG, "\"should be corrected\"");
                }
                break;
            }
            if (tk->v[k].clause == tk->v[a->tj - 1].clause && (tk->v[k].flags & TOK_NEGATOR) &&
                k + 1 < lim && w_in(&tk->v[k + 1], RIGHTNESS)) {
                set_role(a, ROLE_WRONG, "stated not right");
                break;
            }
            if (w_in(&tk->v[k], WRONGNESS)) {
                set_role(a, ROLE_WRONG, "called wrong");
                break;
            }
            if (w_in(&tk->v[k], RIGHTNESS) && k < a->tj + 3 &&
                tk->v[k].clause == tk->v[a->tj - 1].clause &&
                !(k > a->tj && (tk->v[k - 1].flags & TOK_NEGATOR))) {
                set_role(a, ROLE_RIGHT, "called right");
                break;
            }
        }
        /* replace A with B */
        bool repl = false;
        for (size_t k = a->ti; k-- > 0 && k + 4 >= a->ti;) {
            if (tk->v[k].sentence != sent || (m > 0 && k < mv[m - 1].tj))
                break;
            if (w_in(&tk->v[k], REPLACE))
                repl = true;
        }
        if (repl && b_same && b->ti - a->tj <= 4) {
            for (size_t k = a->tj; k < b->ti; k++)
                if (w_in(&tk->v[k], WITH_TO)) {
                    set_role(a, ROLE_WRONG, "replaced by the next name");
                    set_role(b, ROLE_RIGHT, "the replacement");
                    break;
                }
        }
        /* A -> B */
        if (b && arrow_between(text, tk->v[a->tj - 1].end, tk->v[b->ti].start)) {
            set_role(a, ROLE_WRONG, "corrected by an arrow");
            set_role(b, ROLE_RIGHT, "the correction (after an arrow)");
        }
        /* B, not A; B instead of A; B rather than A */
        bool denied = false;
        for (size_t k = a->ti; k-- > 0 && k + 3 >= a->ti;) {
            if (tk->v[k].clause != tk->v[a->ti].clause || (m > 0 && k < mv[m - 1].tj))
                break;
            if (tk->v[k].flags & TOK_NEGATOR)
                denied = true;
        }
        if (a->ti >= 2 && ((w_is(&tk->v[a->ti - 2], "instead") && w_is(&tk->v[a->ti - 1], "of")) ||
                           (w_is(&tk->v[a->ti - 2], "rather") && w_is(&tk->v[a->ti - 1], "than"))))
            denied = true;
        if (denied) {
            mention_t *p = m > 0 ? &mv[m - 1] : NULL;
            if (p && tk->v[p->ti].sentence == sent && a->ti - p->tj <= 3)
                set_role(p, ROLE_RIGHT, "preferred to the name after it (\"not\", \"instead of\")");
            set_role(a, ROLE_WRONG, "denied (\"not\", \"instead of\", \"rather than\")");
        }
        /* wrong name A; should be B; the right name is B; the client is B */
        for (size_t k = a->ti; k-- > 0 && k + 4 >= a->ti;) {
            if (tk->v[k].sentence != sent || (m > 0 && k < mv[m - 1].tj))
                break;
            if (w_in(&tk->v[k], WRONGNESS)) {
                set_role(a, ROLE_WRONG, "named as the wrong name");
                break;
            }
            if (w_in(&tk->v[k], RIGHTNESS) && !(k > 0 && (tk->v[k - 1].flags & TOK_NEGATOR))) {
                set_role(a, ROLE_RIGHT, "named as the right name");
                break;
            }
            if (w_in(&tk->v[k], BE_SAY) && k > 0 &&
                (w_in(&tk->v[k - 1], MODALS) ||
                 (k > 1 && w_in(&tk->v[k - 2], MODALS) && !(tk->v[k - 1].flags & TOK_NEGATOR)))) {
                set_role(a, ROLE_RIGHT, "\"should be\" this name");
                break;
            }
            if ((w_is(&tk->v[k], "is") || w_is(&tk->v[k], "was")) && k == a->ti - 1 && k > 0 &&
                (w_is(&tk->v[k - 1], "client") || w_is(&tk->v[k - 1], "customer"))) {
                set_role(a, ROLE_RIGHT, "named as the client");
                break;
            }
        }
    }
}

static grading_err_t entity_grade(grade_ctx_t *c, const item_t *it, const msgpack_object *resp,
                                  const char *path, item_result_t *out, grading_error_t *err)
{
    const entity_spec_t *es = it->spec;
    const char *text;
    size_t len;
    grading_err_t rc = text_response(resp, path, &text, &len, err);
    if (rc != GRADING_OK)
        return rc;
    tokens_t tk = {0};
    if (text && !text_tokenize(c->a, NULL, text, len, &tk))
        return GRADING_ERR_NOMEM;
    if (!text || tk.n == 0) {
        out->status = ST_UNANSWERED;
        trace_rule(c, out->trace, "answer", false, 0, "no answer");
        return GRADING_OK;
    }
    out->status = ST_SCORED;
    fword_t *fw = arena_alloc(c->a, tk.n * sizeof *fw);
    if (!fw)
        return GRADING_ERR_NOMEM;
    for (size_t i = 0; i < tk.n; i++) {
        fw[i].w = text_fold(c->a, tk.v[i].norm, tk.v[i].norm_len);
        if (!fw[i].w)
            return GRADING_ERR_NOMEM;
        fw[i].start = tk.v[i].start;
        fw[i].end = tk.v[i].end;
    }
    /* Work budget: at most every name compared at every word. */
    for (size_t k = 0; k < es->n_expect + es->n_forbid; k++) {
        const entity_ref_t *ref = k < es->n_expect ? &es->expect[k] : &es->forbid[k - es->n_expect];
        c->steps += (uint64_t)tk.n * ref->n_names;
    }
    if (ctx_over_budget(c))
        return GRADING_OK; /* grade.c reports the budget */
    size_t found = 0, ei = 0;
    for (size_t k = 0; k < es->n_expect; k++, ei++) {
        size_t s = 0, e = 0;
        bool denied = false;
        bool hit = find_mention(&es->expect[k], &tk, fw, false, &s, &e, &denied);
        const alias_group_t *ag = &c->r->aliases[es->expect[k].group];
        tnode_t *rule = trace_rule(c, out->trace, it->elements[ei].id, hit, 0,
                                   hit ? arena_printf(c->a, "names %s", ag->canonical)
                                       : arena_printf(c->a, "%s not named", ag->canonical));
        if (hit)
            trace_evidence(c, rule, text, s, e);
        out->elem_matched[ei] = hit;
        found += hit;
    }
    int64_t share = es->directed ? es->expect_milli : it->points_milli;
    int64_t earned =
        es->n_expect ? fx_div_round((__int128)share * found, (int64_t)es->n_expect) : share;
    if (es->n_expect || !es->directed)
        trace_rule(c, out->trace, "expect", found > 0, earned,
                   arena_printf(c->a, "%zu of %zu expected names", found, es->n_expect));
    for (size_t k = 0; k < es->n_forbid; k++, ei++) {
        size_t s = 0, e = 0;
        bool denied = false;
        bool hit = find_mention(&es->forbid[k], &tk, fw, true, &s, &e, &denied);
        const alias_group_t *ag = &c->r->aliases[es->forbid[k].group];
        int64_t pen =
            hit ? fx_div_round((__int128)it->points_milli * es->forbid_penalty_milli, 1000) : 0;
        tnode_t *rule =
            trace_rule(c, out->trace, it->elements[ei].id, hit, -pen,
                       hit      ? arena_printf(c->a, "the wrong name %s is used", ag->canonical)
                       : denied ? arena_printf(c->a, "%s is only named to deny it", ag->canonical)
                                : arena_printf(c->a, "%s not used", ag->canonical));
        if (hit)
            trace_evidence(c, rule, text, s, e);
        out->elem_matched[ei] = hit;
        out->elem_points[ei] = -pen;
        earned -= pen;
    }
    if (es->directed) {
        /* every mention of an entity the item names, in order */
        size_t cap = 8, nm = 0;
        mention_t *mv = arena_alloc(c->a, cap * sizeof *mv);
        const entity_ref_t *lists[4] = {es->expect, es->forbid, es->wrong, es->right};
        size_t counts[4] = {es->n_expect, es->n_forbid, es->n_wrong, es->n_right};
        for (size_t i = 0; mv && i < tk.n;) {
            size_t best = 0, group = 0;
            for (int l = 0; l < 4; l++)
                for (size_t k = 0; k < counts[l]; k++) {
                    const entity_ref_t *e = &lists[l][k];
                    for (size_t q = 0; q < e->n_names; q++) {
                        const name_toks_t *nt = &e->names[q];
                        if (nt->n <= best || i + nt->n > tk.n)
                            continue;
                        bool ok = true;
                        for (size_t w = 0; ok && w < nt->n; w++)
                            ok = strcmp(fw[i + w].w, nt->w[w]) == 0;
                        if (ok) {
                            best = nt->n;
                            group = e->group;
                        }
                    }
                }
            if (!best) {
                i++;
                continue;
            }
            if (nm == cap) {
                mention_t *nv = arena_alloc(c->a, cap * 2 * sizeof *nv);
                if (!nv)
                    return GRADING_ERR_NOMEM;
                memcpy(nv, mv, nm * sizeof *mv);
                mv = nv;
                cap *= 2;
            }
            mv[nm++] = (mention_t){.group = group, .ti = i, .tj = i + best};
            i += best;
        }
        if (!mv)
            return GRADING_ERR_NOMEM;
        assign_roles(text, &tk, mv, nm, es->bare);
        for (size_t m = 0; m < nm; m++) {
            if (mv[m].role == ROLE_NONE)
                continue;
            tnode_t *rule =
                trace_rule(c, out->trace, "mention", true, 0,
                           arena_printf(c->a, "%s stated %s", c->r->aliases[mv[m].group].canonical,
                                        mv[m].role == ROLE_WRONG ? "wrong" : "right"));
            t_set(c->a, rule, "role", t_strz(c->a, mv[m].why));
            trace_evidence(c, rule, text, tk.v[mv[m].ti].start, tk.v[mv[m].tj - 1].end);
        }
        bool reversed = false;
        tnode_t *rev_ev = t_arr(c->a);
        for (int pass = 0; pass < 2; pass++) {
            const entity_ref_t *list = pass == 0 ? es->wrong : es->right;
            size_t n = pass == 0 ? es->n_wrong : es->n_right;
            role_t want = pass == 0 ? ROLE_WRONG : ROLE_RIGHT;
            int64_t pts = pass == 0 ? es->wrong_milli : es->right_milli;
            size_t stated = 0;
            for (size_t k = 0; k < n; k++, ei++) {
                const alias_group_t *ag = &c->r->aliases[list[k].group];
                size_t hit = SIZE_MAX, flip = SIZE_MAX;
                for (size_t m = 0; m < nm; m++) {
                    if (mv[m].group != list[k].group)
                        continue;
                    if (mv[m].role == want && hit == SIZE_MAX)
                        hit = m;
                    if (mv[m].role != ROLE_NONE && mv[m].role != want && flip == SIZE_MAX)
                        flip = m;
                }
                bool ok = hit != SIZE_MAX;
                stated += ok;
                tnode_t *rule = trace_rule(
                    c, out->trace, it->elements[ei].id, ok, 0,
                    ok ? arena_printf(c->a, "%s is stated to be the %s name", ag->canonical,
                                      want == ROLE_WRONG ? "wrong" : "right")
                       : arena_printf(c->a, "%s is not stated to be the %s name", ag->canonical,
                                      want == ROLE_WRONG ? "wrong" : "right"));
                if (ok)
                    trace_evidence(c, rule, text, tk.v[mv[hit].ti].start, tk.v[mv[hit].tj - 1].end);
                out->elem_matched[ei] = ok;
                if (flip != SIZE_MAX) {
                    reversed = true;
                    tnode_t *sp = t_map(c->a);
                    t_set(c->a, sp, "start", t_int(c->a, (int64_t)tk.v[mv[flip].ti].start));
                    t_set(c->a, sp, "end", t_int(c->a, (int64_t)tk.v[mv[flip].tj - 1].end));
                    t_push(c->a, rev_ev, sp);
                }
            }
            if (n) {
                int64_t got = fx_div_round((__int128)pts * stated, (int64_t)n);
                trace_rule(
                    c, out->trace, pass == 0 ? "wrong_named" : "right_named", stated > 0, got,
                    arena_printf(c->a, "%zu of %zu %s names stated %s", stated, n,
                                 pass == 0 ? "wrong" : "right", pass == 0 ? "wrong" : "right"));
                earned += got;
            }
        }
        int64_t pen =
            reversed ? fx_div_round((__int128)it->points_milli * es->reversed_penalty_milli, 1000)
                     : 0;
        trace_rule(c, out->trace, "reversed", reversed, -pen,
                   reversed ? "the correction is reversed: a wrong name is stated right or the "
                              "right name wrong"
                            : "no name is given the opposite role");
        out->elem_matched[ei] = reversed;
        out->elem_points[ei] = -pen;
        out->elem_evidence[ei] = rev_ev->n ? rev_ev : NULL;
        earned -= pen;
    }
    if (earned < 0)
        earned = 0;
    if (earned > it->points_milli)
        earned = it->points_milli;
    out->earned_milli = earned;
    return GRADING_OK;
}

const item_ops_t entity_ops = {"entity", ENTITY_KEYS, entity_compile, entity_grade};
