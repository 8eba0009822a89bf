/*
 * ordering.c - putting steps in order.
 *
 * The response is an array of step ids (or step texts), or free text in
 * which each step is recognised by its phrases: its position is its first
 * mention that is not negated. The steps as listed in the rubric are the
 * correct order; "depends" may relax it into a DAG (PrairieLearn).
 *
 * Schemes. Those named after Moodle's Ordering question grading types give
 * Moodle's fraction on a complete response (a permutation):
 *   all_or_nothing, absolute_position, relative_to_correct,
 *   relative_next_exclude_last, relative_next_include_last,
 *   relative_one_previous_and_next, relative_all_previous_and_next,
 *   longest_ordered_subset, longest_contiguous_subset
 * PrairieLearn order blocks: dag (all or nothing, any topological order of
 * "depends") and lcs (1 - edit distance / steps, the edit distance being
 * deletions + insertions to reach a topological order).
 * Beyond both: kendall_tau (max(0, concordant - discordant) / pairs) and
 * precedence (weighted "before" constraints; a violated critical constraint
 * caps the item at its cap).
 *
 * Rules for imperfect responses (RUBRIC.md "ordering"): unknown ids are an
 * invalid response; a repeated step counts at its first position; missing
 * steps earn nothing and, for the subset schemes, the denominator stays the
 * number of steps; in text, two steps first mentioned at the same offset are
 * ordered against the rubric order (the tie never helps); a response equal to
 * the "presented" (shuffled) order earns nothing.
 *
 * A written answer (text) may also be scored by text elements and rules, as
 * for a text item ("elements", "rules": a keyword-list penalty, a minimum
 * number of sentences): their points are added to the scheme's and the sum
 * is clamped to [0, points]. A list of step ids is not text; they do not
 * apply to it. A blank text is unanswered.
 */
#include "internal.h"

#include <jansson.h>
#include <string.h>

#define MAX_STEPS 32

typedef enum oscheme {
    OS_ALL_OR_NOTHING,
    OS_ABSOLUTE_POSITION,
    OS_RELATIVE_TO_CORRECT,
    OS_NEXT_EXCLUDE_LAST,
    OS_NEXT_INCLUDE_LAST,
    OS_ONE_PREV_NEXT,
    OS_ALL_PREV_NEXT,
    OS_LONGEST_ORDERED,
    OS_LONGEST_CONTIGUOUS,
    OS_DAG,
    OS_LCS,
    OS_KENDALL,
    OS_PRECEDENCE,
} oscheme_t;

static const char *const SCHEMES[] = {"all_or_nothing",
                                      "absolute_position",
                                      "relative_to_correct",
                                      "relative_next_exclude_last",
                                      "relative_next_include_last",
                                      "relative_one_previous_and_next",
                                      "relative_all_previous_and_next",
                                      "longest_ordered_subset",
                                      "longest_contiguous_subset",
                                      "dag",
                                      "lcs",
                                      "kendall_tau",
                                      "precedence",
                                      NULL};

/* The scheme's trace rule, in SCHEMES order. */
static const char *const SCHEME_RULES[] = {"scheme:all_or_nothing",
                                           "scheme:absolute_position",
                                           "scheme:relative_to_correct",
                                           "scheme:relative_next_exclude_last",
                                           "scheme:relative_next_include_last",
                                           "scheme:relative_one_previous_and_next",
                                           "scheme:relative_all_previous_and_next",
                                           "scheme:longest_ordered_subset",
                                           "scheme:longest_contiguous_subset",
                                           "scheme:dag",
                                           "scheme:lcs",
                                           "scheme:kendall_tau",
                                           "scheme:precedence"};
_Static_assert(sizeof SCHEME_RULES / sizeof *SCHEME_RULES == sizeof SCHEMES / sizeof *SCHEMES - 1,
               "a trace rule per scheme");

typedef struct constraint {
    int before, after;
    int64_t weight_milli;
    bool critical;
    int64_t cap_milli; /* fraction of points, thousandths */
} constraint_t;

typedef struct step {
    const char *id, *text, *folded_id, *folded_text;
    const char *rule; /* "step:<id>", the step's trace rule */
    phrase_set_t *phrases;
    uint32_t depends; /* bitmask of steps that must come before */
} step_t;

typedef struct ordering_spec {
    step_t *steps;
    int n;
    oscheme_t scheme;
    constraint_t *cons;
    size_t n_cons;
    int presented[MAX_STEPS];
    int n_presented;
    uint32_t closure[MAX_STEPS]; /* transitive "must come before" */
    text_spec_t *ts;             /* elements and rules for written answers */
    size_t elem_base;            /* index of the first text element */
} ordering_spec_t;

static const char *const ORDERING_KEYS[] = {"steps",       "scheme",          "depends",
                                            "constraints", "presented",       "elements",
                                            "rules",       "typo_min_length", NULL};

static int step_index(const ordering_spec_t *os, const char *id)
{
    for (int i = 0; i < os->n; i++)
        if (strcmp(os->steps[i].id, id) == 0)
            return i;
    return -1;
}

static void ordering_compile(loader_t *L, item_t *it, json_t *obj, tnode_t *canon, const char *path)
{
    grading_rubric_t *r = L->r;
    ordering_spec_t *os = arena_alloc(&r->arena, sizeof *os);
    if (!os)
        return;
    it->spec = os;
    const char *sc = ld_enum(L, obj, canon, path, "scheme", SCHEMES, "relative_to_correct");
    for (int i = 0; SCHEMES[i]; i++)
        if (strcmp(SCHEMES[i], sc) == 0)
            os->scheme = (oscheme_t)i;
    json_t *arr = ld_array(L, obj, path, "steps", true);
    tnode_t *carr = t_arr(L->ta);
    t_set(L->ta, canon, "steps", carr);
    if (!arr)
        return;
    const char *sp = ld_path_key(L, path, "steps");
    if (json_array_size(arr) < 2 || json_array_size(arr) > MAX_STEPS) {
        ld_error(L, sp, "an ordering item has 2 to %d steps", MAX_STEPS);
        return;
    }
    os->n = (int)json_array_size(arr);
    os->steps = arena_alloc(&r->arena, (size_t)os->n * sizeof *os->steps);
    it->elements = arena_alloc(&r->arena, ((size_t)os->n + 64) * sizeof *it->elements);
    if (!os->steps || !it->elements)
        return;
    static const char *const skeys[] = {"id", "text", "phrases", NULL};
    for (int i = 0; i < os->n; i++) {
        json_t *o = json_array_get(arr, (size_t)i);
        const char *p = ld_path_idx(L, sp, (size_t)i);
        tnode_t *c = t_map(L->ta);
        t_push(L->ta, carr, c);
        step_t *s = &os->steps[i];
        s->id = s->text = s->folded_id = s->folded_text = s->rule = "";
        if (!json_is_object(o)) {
            ld_error(L, p, "expected an object");
            continue;
        }
        ld_check_keys(L, o, p, skeys);
        s->id = ld_ident(L, o, c, p, "id");
        s->rule = arena_printf(&r->arena, "step:%s", s->id);
        s->text = ld_str(L, o, c, p, "text", "", false);
        s->folded_id = text_fold(&r->arena, s->id, strlen(s->id));
        s->folded_text = text_fold(&r->arena, s->text, strlen(s->text));
        size_t np = 0;
        char **ph = ld_strings(L, o, c, p, "phrases", &np, false);
        s->phrases = text_phrases_compile(L, ph, np, ld_path_key(L, p, "phrases"));
        it->elements[it->n_elements++].id = s->id;
        for (int j = 0; j < i; j++)
            if (strcmp(os->steps[j].id, s->id) == 0)
                ld_error(L, ld_path_key(L, p, "id"), "duplicate step id \"%s\"", s->id);
    }
    /* depends: {"step": ["steps before it"]}; default: the listed order */
    json_t *dep = ld_object(L, obj, path, "depends", false);
    tnode_t *cdep = t_map(L->ta);
    t_set(L->ta, canon, "depends", cdep);
    if (dep) {
        const char *dp = ld_path_key(L, path, "depends");
        const char *key;
        json_t *v;
        json_object_foreach(dep, key, v)
        {
            const char *kp = ld_path_key(L, dp, key);
            int to = step_index(os, key);
            if (to < 0) {
                ld_error(L, kp, "no step \"%s\"", key);
                continue;
            }
            tnode_t *list = t_arr(L->ta);
            t_set(L->ta, cdep, key, list);
            if (!json_is_array(v)) {
                ld_error(L, kp, "expected an array of step ids");
                continue;
            }
            for (size_t k = 0; k < json_array_size(v); k++) {
                json_t *x = json_array_get(v, k);
                int from = json_is_string(x) ? step_index(os, json_string_value(x)) : -1;
                if (from < 0 || from == to) {
                    ld_error(L, ld_path_idx(L, kp, k), "expected the id of another step");
                    continue;
                }
                os->steps[to].depends |= 1u << from;
                t_push(L->ta, list, t_strz(L->ta, json_string_value(x)));
            }
        }
    } else {
        for (int i = 1; i < os->n; i++) {
            os->steps[i].depends = 1u << (i - 1);
            tnode_t *list = t_arr(L->ta);
            t_push(L->ta, list, t_strz(L->ta, os->steps[i - 1].id));
            t_set(L->ta, cdep, os->steps[i].id, list);
        }
    }
    /* transitive closure; a cycle is an error */
    for (int i = 0; i < os->n; i++)
        os->closure[i] = os->steps[i].depends;
    for (int round = 0; round < os->n; round++)
        for (int i = 0; i < os->n; i++)
            for (int j = 0; j < os->n; j++)
                if (os->closure[i] & (1u << j))
                    os->closure[i] |= os->closure[j];
    for (int i = 0; i < os->n; i++)
        if (os->closure[i] & (1u << i))
            ld_error(L, ld_path_key(L, path, "depends"), "the dependencies form a cycle");
    /* precedence constraints */
    json_t *cons = ld_array(L, obj, path, "constraints", os->scheme == OS_PRECEDENCE);
    tnode_t *ccons = t_arr(L->ta);
    t_set(L->ta, canon, "constraints", ccons);
    if (cons) {
        const char *cp = ld_path_key(L, path, "constraints");
        os->n_cons = json_array_size(cons);
        os->cons = arena_alloc(&r->arena, (os->n_cons + 1) * sizeof *os->cons);
        static const char *const ckeys[] = {"id",       "before", "after", "weight",
                                            "critical", "cap",    NULL};
        for (size_t i = 0; os->cons && i < os->n_cons; i++) {
            json_t *o = json_array_get(cons, i);
            const char *p = ld_path_idx(L, cp, i);
            tnode_t *c = t_map(L->ta);
            t_push(L->ta, ccons, c);
            constraint_t *k = &os->cons[i];
            if (!json_is_object(o)) {
                ld_error(L, p, "expected an object");
                continue;
            }
            ld_check_keys(L, o, p, ckeys);
            const char *cid = ld_ident(L, o, c, p, "id");
            k->before = step_index(os, ld_str(L, o, c, p, "before", NULL, true));
            k->after = step_index(os, ld_str(L, o, c, p, "after", NULL, true));
            if (k->before < 0 || k->after < 0 || k->before == k->after)
                ld_error(L, p, "before and after name two different steps");
            k->weight_milli = ld_scaled(L, o, c, p, "weight", "1", 3, 0, 1000000);
            k->critical = ld_bool(L, o, c, p, "critical", false);
            k->cap_milli = ld_scaled(L, o, c, p, "cap", "0", 3, 0, 1000);
            it->elements[it->n_elements++].id = cid;
            if (it->n_elements > (size_t)os->n + 64) {
                ld_error(L, cp, "at most 64 constraints");
                break;
            }
        }
    }
    size_t np = 0;
    char **pres = ld_strings(L, obj, canon, path, "presented", &np, false);
    if (pres && np > 0) { /* [] (the canonical default) means none */
        if ((int)np != os->n)
            ld_error(L, ld_path_key(L, path, "presented"), "list every step once");
        for (size_t i = 0; i < np && i < MAX_STEPS; i++) {
            int k = step_index(os, pres[i]);
            if (k < 0)
                ld_error(L, ld_path_idx(L, ld_path_key(L, path, "presented"), i), "no step \"%s\"",
                         pres[i]);
            os->presented[os->n_presented++] = k;
        }
    }
    /* elements and rules for written answers, after the steps and constraints */
    os->elem_base = it->n_elements;
    /* later fields: in the canonical form only when used, so that rubrics
     * without them keep their hash */
    tnode_t *later = t_map(L->ta);
    text_compile_optional_elements(L, it, &os->ts, obj, later, path, os->elem_base);
    static const char *const lkeys[] = {"elements", "rules", NULL};
    for (size_t k = 0; lkeys[k]; k++) {
        tnode_t *v = t_get(later, lkeys[k]);
        if (v && v->n)
            t_set(L->ta, canon, lkeys[k], v);
    }
    tnode_t *typo = t_get(later, "typo_min_length");
    if (typo && typo->kind == T_INT && typo->i != 6)
        t_set(L->ta, canon, "typo_min_length", typo);
}

/* ---- scoring helpers on a response R (distinct step indexes) ---- */

static int pos_in(const int *R, int nr, int step)
{
    for (int i = 0; i < nr; i++)
        if (R[i] == step)
            return i;
    return -1;
}

/* Longest increasing subsequence of correct positions (Moodle's longest
 * ordered subset); 0 when it is a single item, as Moodle ignores those. */
static int longest_ordered(const int *R, int nr)
{
    int L[MAX_STEPS], best = 0;
    for (int i = 0; i < nr; i++) {
        L[i] = 1;
        for (int j = 0; j < i; j++)
            if (R[j] < R[i] && L[j] + 1 > L[i])
                L[i] = L[j] + 1;
        if (L[i] > best)
            best = L[i];
    }
    return best > 1 ? best : 0;
}

/* Longest run of consecutive correct positions k, k+1, ... appearing in
 * increasing response order (Moodle's longest contiguous subset). */
static int longest_contiguous(const int *R, int nr, int n)
{
    int best = 0, run = 0, prev_pos = -1;
    for (int v = 0; v < n; v++) {
        int p = pos_in(R, nr, v);
        if (p < 0) {
            run = 0;
            prev_pos = -1;
            continue;
        }
        run = (run > 0 && p > prev_pos) ? run + 1 : 1;
        prev_pos = p;
        if (run > best)
            best = run;
    }
    return best > 1 ? best : 0;
}

/* Maximum independent set size of the "problematic" graph over present
 * nodes (bitmask adjacency), by branching. */
static int max_independent(uint32_t nodes, const uint32_t *adj)
{
    if (!nodes)
        return 0;
    int v = -1, deg = -1;
    for (int i = 0; i < MAX_STEPS; i++)
        if (nodes & (1u << i)) {
            int d = __builtin_popcount(adj[i] & nodes);
            if (d > deg) {
                deg = d;
                v = i;
            }
        }
    if (deg == 0)
        return __builtin_popcount(nodes);
    uint32_t without = nodes & ~(1u << v);
    int a = max_independent(without, adj);
    int b = 1 + max_independent(without & ~adj[v], adj);
    return a > b ? a : b;
}

typedef struct oscore {
    int64_t num, den;
    const char *how;
} oscore_t;

static oscore_t score_moodle(arena_t *a, const ordering_spec_t *os, const int *R, int nr)
{
    int n = os->n;
    oscore_t s = {0, 1, ""};
    switch (os->scheme) {
    case OS_ALL_OR_NOTHING:
    case OS_ABSOLUTE_POSITION: {
        int right = 0;
        for (int i = 0; i < n; i++)
            if (i < nr && R[i] == i)
                right++;
        if (os->scheme == OS_ALL_OR_NOTHING && right < n)
            right = 0;
        s.num = right;
        s.den = n;
        s.how = arena_printf(a, "%d of %d steps in their correct position", right, n);
        break;
    }
    case OS_RELATIVE_TO_CORRECT: {
        for (int i = 0; i < n; i++) {
            int p = pos_in(R, nr, i);
            if (p < 0)
                continue;
            int d = p > i ? p - i : i - p;
            if (n - 1 - d > 0)
                s.num += n - 1 - d;
        }
        s.den = (int64_t)n * (n - 1);
        s.how = arena_printf(a,
                             "sum over steps of (n-1 - distance from correct position) = "
                             "%lld of %lld",
                             (long long)s.num, (long long)s.den);
        break;
    }
    case OS_NEXT_EXCLUDE_LAST:
    case OS_NEXT_INCLUDE_LAST: {
        bool last = os->scheme == OS_NEXT_INCLUDE_LAST;
        for (int i = 0; i < n; i++) {
            if (!last && i == n - 1)
                continue;
            int want = i + 1 < n ? i + 1 : -1;
            int p = pos_in(R, nr, i);
            if (p < 0 || (!last && p == nr - 1))
                continue;
            int got = p + 1 < nr ? R[p + 1] : -1;
            if (got == want)
                s.num++;
        }
        s.den = last ? n : n - 1;
        s.how = arena_printf(a, "%lld of %lld steps followed by their correct next step",
                             (long long)s.num, (long long)s.den);
        break;
    }
    case OS_ONE_PREV_NEXT: {
        for (int i = 0; i < n; i++) {
            int p = pos_in(R, nr, i);
            if (p < 0)
                continue;
            int cp = i > 0 ? i - 1 : -1, cn = i + 1 < n ? i + 1 : -1;
            int rp = p > 0 ? R[p - 1] : -1, rn = p + 1 < nr ? R[p + 1] : -1;
            s.num += (cp == rp) + (cn == rn);
        }
        s.den = 2LL * n;
        s.how = arena_printf(a, "%lld of %lld previous/next neighbours right", (long long)s.num,
                             (long long)s.den);
        break;
    }
    case OS_ALL_PREV_NEXT: {
        for (int i = 0; i < n; i++) {
            int p = pos_in(R, nr, i);
            if (p < 0)
                continue;
            for (int j = 0; j < n; j++) {
                int q = pos_in(R, nr, j);
                if (j == i || q < 0)
                    continue;
                if ((j < i && q < p) || (j > i && q > p))
                    s.num++;
            }
        }
        s.den = (int64_t)n * (n - 1);
        s.how = arena_printf(a, "%lld of %lld before/after relations right", (long long)s.num,
                             (long long)s.den);
        break;
    }
    case OS_LONGEST_ORDERED:
        s.num = longest_ordered(R, nr);
        s.den = n;
        s.how = arena_printf(a, "longest ordered subset: %lld of %d steps", (long long)s.num, n);
        break;
    case OS_LONGEST_CONTIGUOUS:
        s.num = longest_contiguous(R, nr, n);
        s.den = n;
        s.how = arena_printf(a, "longest contiguous subset: %lld of %d steps", (long long)s.num, n);
        break;
    default:
        break;
    }
    return s;
}

static grading_err_t read_list(grade_ctx_t *c, const ordering_spec_t *os,
                               const msgpack_object *resp, const char *path, int *R, int *nr,
                               tnode_t *trace, grading_error_t *err)
{
    uint32_t seen = 0;
    *nr = 0;
    if (resp->via.array.size > GRADING_LIST_MAX) {
        err_set(err, GRADING_ERR_LIMIT, path, "more than %d entries", GRADING_LIST_MAX);
        return GRADING_ERR_LIMIT;
    }
    for (uint32_t k = 0; k < resp->via.array.size; k++) {
        const char *s;
        size_t len;
        if (!mp_str(&resp->via.array.ptr[k], &s, &len)) {
            err_set(err, GRADING_ERR_INVALID_RESPONSE, path,
                    "an ordering response is an array of step ids or a text");
            return GRADING_ERR_INVALID_RESPONSE;
        }
        int idx = -1;
        for (int i = 0; i < os->n && idx < 0; i++)
            if (strlen(os->steps[i].id) == len && memcmp(os->steps[i].id, s, len) == 0)
                idx = i;
        if (idx < 0) {
            const char *f = text_fold(c->a, s, len);
            for (int i = 0; f && i < os->n && idx < 0; i++)
                if (strcmp(os->steps[i].folded_id, f) == 0 ||
                    (*os->steps[i].folded_text && strcmp(os->steps[i].folded_text, f) == 0))
                    idx = i;
        }
        if (idx < 0) {
            err_set(err, GRADING_ERR_INVALID_RESPONSE, path, "\"%.*s\" is not a step",
                    (int)(len > 64 ? 64 : len), s);
            return GRADING_ERR_INVALID_RESPONSE;
        }
        if (seen & (1u << idx)) {
            trace_rule(c, trace, "repeat", false, 0,
                       arena_printf(c->a, "step %s repeated; its first position counts",
                                    os->steps[idx].id));
            continue;
        }
        seen |= 1u << idx;
        R[(*nr)++] = idx;
    }
    return GRADING_OK;
}

/* The scheme's points plus the written answer's elements and rules,
 * clamped to [0, points] (the clamp is traced). */
static int64_t with_elements(grade_ctx_t *c, const item_t *it, item_result_t *out, int64_t scheme,
                             int64_t elems)
{
    int64_t sum = scheme + elems;
    int64_t cl = sum < 0 ? 0 : sum > it->points_milli ? it->points_milli : sum;
    tnode_t *rule =
        trace_rule(c, out->trace, "elements", elems != 0, elems,
                   arena_printf(c->a, "scheme %lld %s elements and rules %lld = %lld milli-points",
                                (long long)scheme, elems < 0 ? "-" : "+",
                                (long long)(elems < 0 ? -elems : elems), (long long)sum));
    if (cl != sum)
        t_set(c->a, rule, "clamp",
              t_strz(c->a, arena_printf(c->a, "total %lld clamped to %lld", (long long)sum,
                                        (long long)cl)));
    return cl;
}

static grading_err_t ordering_grade(grade_ctx_t *c, const item_t *it, const msgpack_object *resp,
                                    const char *path, item_result_t *out, grading_error_t *err)
{
    const ordering_spec_t *os = it->spec;
    int R[MAX_STEPS], nr = 0;
    size_t where[MAX_STEPS], where_end[MAX_STEPS];
    const char *text = NULL;
    int64_t elems = 0; /* text elements and rules, written answers only */
    bool has_elems = false;
    if (!resp || resp->type == MSGPACK_OBJECT_NIL) {
        out->status = ST_UNANSWERED;
        trace_rule(c, out->trace, "answer", false, 0, "no answer");
        return GRADING_OK;
    }
    if (resp->type == MSGPACK_OBJECT_ARRAY) {
        grading_err_t rc = read_list(c, os, resp, path, R, &nr, out->trace, err);
        if (rc != GRADING_OK)
            return rc;
    } else {
        size_t len;
        grading_err_t rc = text_response(resp, path, &text, &len, err);
        if (rc != GRADING_OK)
            return rc;
        tokens_t toks;
        if (text && (!text_tokenize(c->a, ctx_stemmer(c), text, len, &toks) ||
                     !lexicon_match_tokens(it->lexicon, c->a, &toks)))
            return GRADING_ERR_NOMEM;
        if (!text || toks.n == 0) {
            /* blank text ("", spaces, punctuation only) is no answer */
            out->status = ST_UNANSWERED;
            trace_rule(c, out->trace, "answer", false, 0, "no words in the response");
            return GRADING_OK;
        }
        if (os->ts && it->n_elements > os->elem_base) {
            /* PCRE2 reads the text whole: score elements on a NUL-terminated copy */
            char *copy = arena_strndup(c->a, text, len);
            if (!copy)
                return GRADING_ERR_NOMEM;
            grading_err_t er = text_score_elements(c, it, os->ts, copy, len, &toks, path, out,
                                                   os->elem_base, &elems, err);
            if (er != GRADING_OK)
                return er;
            has_elems = true;
        }
        for (int i = 0; i < os->n; i++) {
            size_t s, e;
            if (text_phrases_first(c, os->steps[i].phrases, &toks, &s, &e)) {
                /* insert by offset; equal offsets go against the rubric order */
                int k = nr;
                while (k > 0 && where[k - 1] >= s) {
                    if (where[k - 1] == s)
                        trace_rule(c, out->trace, "tie_break", true, 0,
                                   arena_printf(c->a,
                                                "steps %s and %s are first mentioned at the same "
                                                "place; ordered against the rubric order",
                                                os->steps[R[k - 1]].id, os->steps[i].id));
                    R[k] = R[k - 1];
                    where[k] = where[k - 1];
                    where_end[k] = where_end[k - 1];
                    k--;
                }
                R[k] = i;
                where[k] = s;
                where_end[k] = e;
                nr++;
            }
        }
    }
    if (nr == 0) {
        out->status = text ? ST_SCORED : ST_UNANSWERED;
        trace_rule(c, out->trace, "steps", false, 0, "no step recognised");
        if (has_elems)
            out->earned_milli = with_elements(c, it, out, 0, elems);
        return GRADING_OK;
    }
    out->status = ST_SCORED;
    /* recognised order, with evidence */
    for (int k = 0; k < nr; k++) {
        int i = R[k];
        out->elem_matched[i] = true;
        tnode_t *rule =
            trace_rule(c, out->trace, os->steps[i].rule, true, 0,
                       arena_printf(c->a, "position %d (correct position %d)", k + 1, i + 1));
        if (text)
            trace_evidence(c, rule, text, where[k], where_end[k]);
    }
    for (int i = 0; i < os->n; i++)
        if (pos_in(R, nr, i) < 0)
            trace_rule(c, out->trace, os->steps[i].rule, false, 0, "missing; earns nothing");
    /* untouched presented order */
    if (os->n_presented == os->n && nr == os->n) {
        bool same = true;
        for (int k = 0; k < nr; k++)
            if (R[k] != os->presented[k])
                same = false;
        if (same) {
            trace_rule(c, out->trace, "untouched", true, 0,
                       "the response is the order as presented; it earns nothing");
            out->earned_milli = 0;
            return GRADING_OK;
        }
    }
    int64_t pts = it->points_milli;
    oscore_t s = {0, 1, ""};
    int64_t cap = -1;
    switch (os->scheme) {
    case OS_DAG:
    case OS_LCS: {
        /* problematic pairs: u before v in R while v must come before u */
        uint32_t adj[MAX_STEPS] = {0}, nodes = 0;
        for (int a = 0; a < nr; a++) {
            nodes |= 1u << R[a];
            for (int b = a + 1; b < nr; b++)
                if (os->closure[R[a]] & (1u << R[b])) {
                    adj[R[a]] |= 1u << R[b];
                    adj[R[b]] |= 1u << R[a];
                }
        }
        int keep = max_independent(nodes, adj);
        int deletions = nr - keep, insertions = os->n - keep;
        int edit = deletions + insertions;
        if (os->scheme == OS_DAG) {
            s.num = edit == 0;
            s.den = 1;
            s.how = edit == 0 ? "a valid order of the dependency graph"
                              : arena_printf(c->a, "not a valid order (%d edits away)", edit);
        } else {
            s.num = os->n - edit > 0 ? os->n - edit : 0;
            s.den = os->n;
            s.how = arena_printf(c->a,
                                 "edit distance %d (%d deletions + %d insertions) to a valid "
                                 "order: (%d - %d) / %d",
                                 edit, deletions, insertions, os->n, edit, os->n);
        }
        break;
    }
    case OS_KENDALL: {
        int64_t conc = 0, disc = 0;
        for (int a = 0; a < nr; a++)
            for (int b = a + 1; b < nr; b++) {
                if (R[a] < R[b])
                    conc++;
                else
                    disc++;
            }
        s.num = conc > disc ? conc - disc : 0;
        s.den = (int64_t)os->n * (os->n - 1) / 2;
        s.how = arena_printf(c->a, "Kendall tau: (%lld concordant - %lld discordant) / %lld pairs",
                             (long long)conc, (long long)disc, (long long)s.den);
        break;
    }
    case OS_PRECEDENCE: {
        int64_t got = 0, total = 0;
        for (size_t k = 0; k < os->n_cons; k++) {
            const constraint_t *cn = &os->cons[k];
            int pb = pos_in(R, nr, cn->before), pa = pos_in(R, nr, cn->after);
            bool ok = pb >= 0 && pa >= 0 && pb < pa;
            total += cn->weight_milli;
            if (ok)
                got += cn->weight_milli;
            size_t ei = (size_t)os->n + k;
            out->elem_matched[ei] = ok;
            out->elem_points[ei] = ok ? cn->weight_milli : 0;
            const char *d = arena_printf(c->a, "%s before %s: %s%s", os->steps[cn->before].id,
                                         os->steps[cn->after].id,
                                         ok                   ? "kept"
                                         : (pb < 0 || pa < 0) ? "a step is missing"
                                                              : "violated",
                                         cn->critical ? " (critical)" : "");
            trace_rule(c, out->trace, it->elements[ei].id, ok, 0, d);
            if (!ok && cn->critical && (cap < 0 || cn->cap_milli < cap))
                cap = cn->cap_milli;
        }
        s.num = got;
        s.den = total > 0 ? total : 1;
        s.how = arena_printf(c->a, "constraint weight kept: %lld of %lld", (long long)got,
                             (long long)total);
        break;
    }
    default:
        s = score_moodle(c->a, os, R, nr);
        break;
    }
    int64_t earned = s.den > 0 ? fx_div_round((__int128)pts * s.num, s.den) : 0;
    tnode_t *rule = trace_rule(c, out->trace, SCHEME_RULES[os->scheme], earned > 0, earned, s.how);
    if (cap >= 0) {
        int64_t lim = fx_div_round((__int128)pts * cap, 1000);
        if (earned > lim) {
            t_set(c->a, rule, "clamp",
                  t_strz(c->a, arena_printf(c->a,
                                            "a critical constraint is violated: capped at "
                                            "%lld/1000 of the points",
                                            (long long)cap)));
            earned = lim;
        }
    }
    if (has_elems)
        earned = with_elements(c, it, out, earned, elems);
    out->earned_milli = earned;
    return GRADING_OK;
}

const item_ops_t ordering_ops = {"ordering", ORDERING_KEYS, ordering_compile, ordering_grade};
