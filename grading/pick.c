/*
 * pick.c - data tasks: choose rows of a table, and say why.
 *
 * The rubric carries the table (rows with an id, names and cells). The
 * response is {"pick": row id(s) or name(s), "reasoning": text}, or one text
 * in which the pick is the first row named and not denied ("DeltaCorp, not
 * BetaInc"). Points come from three parts:
 *   pick       pick_points when the picked rows are the answer rows (with
 *              several answer rows: right picks minus wrong ones, over the
 *              answer rows, never below zero);
 *   reasoning  text elements and rules, as for a text item;
 *   grounding  cite_points for each figure of an answer row the reasoning
 *              cites (its cells in cite_columns, compared as exact numbers
 *              with their unit: "usage 50%", "NPS of 2", "110% of licences"),
 *              up to cite_max figures.
 * Generic reasoning therefore earns less than reasoning grounded in the
 * chosen row's own data. With reasoning_requires_pick the reasoning is tied
 * to the pick: only figures of rows that are both picked and answer rows
 * count as grounding, and without a right pick the reasoning's elements and
 * rules earn nothing (their penalties still count), so quoting the right
 * row's figures while picking another earns nothing. The total is clamped
 * to [0, points].
 */
#include "internal.h"

#include <jansson.h>
#include <string.h>

typedef struct cell_num {
    dec_t value;
    qkind_t kind;
    const char *column;
} cell_num_t;

typedef struct row {
    const char *id;
    const char *rule;    /* "row:<id>", the row's trace rule */
    char **folded_names; /* folded id + names */
    size_t n_names;
    cell_num_t *cites; /* numbers in citeable columns */
    size_t n_cites;
} row_t;

typedef struct pick_spec {
    row_t *rows;
    size_t n;
    bool *answer;
    size_t n_answers;
    int64_t pick_milli, cite_milli, cite_max;
    bool requires_pick; /* reasoning counts only for a right pick */
    text_spec_t *ts;
} pick_spec_t;

static const char *const PICK_KEYS[] = {"columns",
                                        "rows",
                                        "answers",
                                        "pick_points",
                                        "cite_columns",
                                        "cite_points",
                                        "cite_max",
                                        "elements",
                                        "rules",
                                        "typo_min_length",
                                        "reasoning_requires_pick",
                                        NULL};

static void pick_compile(loader_t *L, item_t *it, json_t *obj, tnode_t *canon, const char *path)
{
    grading_rubric_t *r = L->r;
    pick_spec_t *ps = arena_alloc(&r->arena, sizeof *ps);
    if (!ps)
        return;
    it->spec = ps;
    size_t ncols = 0, ncite = 0;
    char **cols = ld_strings(L, obj, canon, path, "columns", &ncols, true);
    char **cite = ld_strings(L, obj, canon, path, "cite_columns", &ncite, false);
    for (size_t i = 0; cite && i < ncite; i++) {
        bool ok = false;
        for (size_t k = 0; cols && k < ncols; k++)
            ok |= strcmp(cols[k], cite[i]) == 0;
        if (!ok)
            ld_error(L, ld_path_idx(L, ld_path_key(L, path, "cite_columns"), i), "no column \"%s\"",
                     cite[i]);
    }
    json_t *rows = ld_array(L, obj, path, "rows", true);
    tnode_t *crows = t_arr(L->ta);
    t_set(L->ta, canon, "rows", crows);
    const char *rp = ld_path_key(L, path, "rows");
    if (rows && (json_array_size(rows) < 2 || json_array_size(rows) > 200))
        ld_error(L, rp, "a table has 2 to 200 rows");
    ps->n = rows ? json_array_size(rows) : 0;
    ps->rows = arena_alloc(&r->arena, (ps->n + 1) * sizeof *ps->rows);
    ps->answer = arena_alloc(&r->arena, (ps->n + 1) * sizeof *ps->answer);
    if (!ps->rows || !ps->answer)
        return;
    static const char *const rkeys[] = {"id", "names", "cells", NULL};
    for (size_t i = 0; i < ps->n; i++) {
        json_t *o = json_array_get(rows, i);
        const char *p = ld_path_idx(L, rp, i);
        tnode_t *c = t_map(L->ta);
        t_push(L->ta, crows, c);
        row_t *rw = &ps->rows[i];
        rw->id = rw->rule = "";
        if (!json_is_object(o)) {
            ld_error(L, p, "expected an object");
            continue;
        }
        ld_check_keys(L, o, p, rkeys);
        rw->id = ld_ident(L, o, c, p, "id");
        rw->rule = arena_printf(&r->arena, "row:%s", rw->id);
        size_t nn = 0;
        char **names = ld_strings(L, o, c, p, "names", &nn, false);
        rw->folded_names = arena_alloc(&r->arena, (nn + 1) * sizeof *rw->folded_names);
        if (!rw->folded_names)
            return;
        rw->folded_names[rw->n_names++] = text_fold(&r->arena, rw->id, strlen(rw->id));
        for (size_t k = 0; k < nn; k++)
            rw->folded_names[rw->n_names++] = text_fold(&r->arena, names[k], strlen(names[k]));
        json_t *cells = ld_object(L, o, p, "cells", true);
        tnode_t *cc = t_map(L->ta);
        t_set(L->ta, c, "cells", cc);
        rw->cites = arena_alloc(&r->arena, (ncite + 1) * sizeof *rw->cites);
        for (size_t k = 0; cells && cols && k < ncols; k++) {
            json_t *v = json_object_get(cells, cols[k]);
            const char *cp = ld_path_key(L, ld_path_key(L, p, "cells"), cols[k]);
            if (!v || !json_is_string(v)) {
                ld_error(L, cp, "expected a string for every column");
                continue;
            }
            t_set(L->ta, cc, cols[k], t_strz(L->ta, json_string_value(v)));
            bool citeable = false;
            for (size_t q = 0; cite && q < ncite; q++)
                citeable |= strcmp(cite[q], cols[k]) == 0;
            if (!citeable || !rw->cites)
                continue;
            qnum_t *nums = NULL;
            size_t n =
                numbers_find(L->ta, json_string_value(v), json_string_length(v), true, &nums);
            if (n == 0) {
                ld_error(L, cp, "a citeable cell holds a number");
                continue;
            }
            rw->cites[rw->n_cites].value = nums[0].value;
            rw->cites[rw->n_cites].kind = nums[0].kind;
            rw->cites[rw->n_cites].column = cols[k];
            rw->n_cites++;
        }
        if (cells) {
            const char *key;
            json_t *v;
            json_object_foreach(cells, key, v)
            {
                bool known = false;
                for (size_t k = 0; cols && k < ncols; k++)
                    known |= strcmp(cols[k], key) == 0;
                if (!known)
                    ld_error(L, ld_path_key(L, ld_path_key(L, p, "cells"), key), "unknown column");
            }
        }
    }
    size_t na = 0;
    char **ans = ld_strings(L, obj, canon, path, "answers", &na, true);
    for (size_t i = 0; ans && i < na; i++) {
        bool found = false;
        for (size_t k = 0; k < ps->n; k++)
            if (strcmp(ps->rows[k].id, ans[i]) == 0) {
                if (!ps->answer[k])
                    ps->n_answers++;
                ps->answer[k] = true;
                found = true;
            }
        if (!found)
            ld_error(L, ld_path_idx(L, ld_path_key(L, path, "answers"), i), "no row \"%s\"",
                     ans[i]);
    }
    char half[64];
    dec_format(dec_shift(dec_from_int(it->points_milli / 2), -3), half, sizeof half);
    ps->pick_milli = ld_scaled(L, obj, canon, path, "pick_points", half, 3, 0, it->points_milli);
    ps->cite_milli = ld_scaled(L, obj, canon, path, "cite_points", "0", 3, 0, it->points_milli);
    ps->cite_max = ld_int(L, obj, canon, path, "cite_max", 2, 0, 50);
    /* a later field: in the canonical form only when set, so that rubrics
     * without it keep their hash */
    tnode_t *later = t_map(L->ta);
    ps->requires_pick = ld_bool(L, obj, later, path, "reasoning_requires_pick", false);
    if (ps->requires_pick)
        t_set(L->ta, canon, "reasoning_requires_pick", t_get(later, "reasoning_requires_pick"));
    /* elements: "pick", "grounded", then the reasoning elements and rules */
    it->elements = arena_alloc(&r->arena, 2 * sizeof *it->elements);
    if (!it->elements)
        return;
    it->elements[0].id = "pick";
    it->elements[1].id = "grounded";
    it->n_elements = 2;
    text_compile_elements(L, it, &ps->ts, obj, canon, path, 2);
}

static int row_named(const pick_spec_t *ps, arena_t *a, const char *s, size_t len)
{
    for (size_t k = 0; k < ps->n; k++)
        if (strlen(ps->rows[k].id) == len && memcmp(ps->rows[k].id, s, len) == 0)
            return (int)k;
    const char *f = text_fold(a, s, len);
    for (size_t k = 0; f && k < ps->n; k++)
        for (size_t q = 0; q < ps->rows[k].n_names; q++)
            if (strcmp(ps->rows[k].folded_names[q], f) == 0)
                return (int)k;
    return -1;
}

/* First row named in text and not denied. */
static int row_in_text(const pick_spec_t *ps, arena_t *a, const char *text, const tokens_t *tk,
                       size_t *s, size_t *e)
{
    for (size_t i = 0; i < tk->n; i++)
        for (size_t w = 3; w-- > 0;) {
            if (i + w >= tk->n)
                continue;
            size_t a0 = tk->v[i].start, b0 = tk->v[i + w].end;
            int k = row_named(ps, a, text + a0, b0 - a0);
            if (k >= 0 && !text_span_negated(tk, a0, b0)) {
                *s = a0;
                *e = b0;
                return k;
            }
        }
    return -1;
}

static grading_err_t pick_grade(grade_ctx_t *c, const item_t *it, const msgpack_object *resp,
                                const char *path, item_result_t *out, grading_error_t *err)
{
    const pick_spec_t *ps = it->spec;
    const msgpack_object *pick = NULL, *reason = NULL;
    if (resp && resp->type == MSGPACK_OBJECT_MAP) {
        for (uint32_t k = 0; k < resp->via.map.size; k++) {
            const char *key;
            size_t kl;
            if (!mp_str(&resp->via.map.ptr[k].key, &key, &kl))
                continue;
            if (kl == 4 && memcmp(key, "pick", 4) == 0)
                pick = &resp->via.map.ptr[k].val;
            else if (kl == 9 && memcmp(key, "reasoning", 9) == 0)
                reason = &resp->via.map.ptr[k].val;
            else {
                err_set(err, GRADING_ERR_INVALID_RESPONSE, path,
                        "a pick response has the keys \"pick\" and \"reasoning\"");
                return GRADING_ERR_INVALID_RESPONSE;
            }
        }
    } else if (resp && resp->type == MSGPACK_OBJECT_STR) {
        reason = resp;
    } else if (resp && resp->type != MSGPACK_OBJECT_NIL) {
        err_set(err, GRADING_ERR_INVALID_RESPONSE, path,
                "a pick response is {\"pick\": ..., \"reasoning\": ...} or a text");
        return GRADING_ERR_INVALID_RESPONSE;
    }
    const char *text = NULL;
    size_t len = 0;
    grading_err_t rc = text_response(reason, path, &text, &len, err);
    if (rc != GRADING_OK)
        return rc;
    char *tcopy = text ? arena_strndup(c->a, text, len) : arena_strdup(c->a, "");
    tokens_t tk = {0};
    if (!tcopy || !text_tokenize(c->a, ctx_stemmer(c), tcopy, len, &tk) ||
        !lexicon_match_tokens(it->lexicon, c->a, &tk))
        return GRADING_ERR_NOMEM;
    /* the picked rows */
    bool *picked = arena_alloc(c->a, (ps->n + 1) * sizeof *picked);
    if (!picked)
        return GRADING_ERR_NOMEM;
    size_t n_picked = 0;
    if (pick && pick->type != MSGPACK_OBJECT_NIL) {
        const msgpack_object *list = pick;
        uint32_t cnt = 1;
        if (pick->type == MSGPACK_OBJECT_ARRAY) {
            list = pick->via.array.ptr;
            cnt = pick->via.array.size;
        }
        if (cnt > GRADING_LIST_MAX) {
            err_set(err, GRADING_ERR_LIMIT, path, "more than %d picks", GRADING_LIST_MAX);
            return GRADING_ERR_LIMIT;
        }
        for (uint32_t k = 0; k < cnt; k++) {
            const char *s;
            size_t sl;
            if (!mp_str(&list[k], &s, &sl)) {
                err_set(err, GRADING_ERR_INVALID_RESPONSE, path, "a pick is a row id or name");
                return GRADING_ERR_INVALID_RESPONSE;
            }
            if (sl == 0)
                continue;
            int row = row_named(ps, c->a, s, sl);
            if (row < 0) {
                err_set(err, GRADING_ERR_INVALID_RESPONSE, path, "\"%.*s\" is not a row",
                        (int)(sl > 64 ? 64 : sl), s);
                return GRADING_ERR_INVALID_RESPONSE;
            }
            if (!picked[row])
                n_picked++;
            picked[row] = true;
        }
        for (size_t k = 0; k < ps->n; k++)
            if (picked[k])
                trace_rule(c, out->trace, ps->rows[k].rule, true, 0,
                           ps->answer[k] ? "picked; an answer row" : "picked; not an answer row");
    } else if (text) {
        /* Work budget: at most three word runs per word, each against every row name. */
        size_t names = 0;
        for (size_t k = 0; k < ps->n; k++)
            names += 1 + ps->rows[k].n_names;
        c->steps += (uint64_t)tk.n * 3 * names;
        if (ctx_over_budget(c))
            return GRADING_OK; /* grade.c reports the budget */
        size_t s, e;
        int row = row_in_text(ps, c->a, tcopy, &tk, &s, &e);
        if (row >= 0) {
            picked[row] = true;
            n_picked = 1;
            tnode_t *rule = trace_rule(c, out->trace, ps->rows[row].rule, true, 0,
                                       ps->answer[row] ? "first row named; an answer row"
                                                       : "first row named; not an answer row");
            trace_evidence(c, rule, tcopy, s, e);
        }
    }
    if (n_picked == 0 && tk.n == 0) {
        out->status = ST_UNANSWERED;
        trace_rule(c, out->trace, "answer", false, 0, "no pick and no reasoning");
        return GRADING_OK;
    }
    out->status = ST_SCORED;
    size_t right = 0, wrong = 0;
    for (size_t k = 0; k < ps->n; k++) {
        if (picked[k] && ps->answer[k])
            right++;
        if (picked[k] && !ps->answer[k])
            wrong++;
    }
    size_t net = right > wrong ? right - wrong : 0;
    int64_t pick_pts = fx_div_round((__int128)ps->pick_milli * net, (int64_t)ps->n_answers);
    out->elem_matched[0] = right == ps->n_answers && wrong == 0;
    out->elem_points[0] = pick_pts;
    trace_rule(c, out->trace, "pick", out->elem_matched[0], pick_pts,
               arena_printf(c->a, "%zu right and %zu wrong of %zu answer rows", right, wrong,
                            ps->n_answers));
    /* grounding: figures of answer rows cited in the reasoning */
    int64_t cited = 0;
    tnode_t *grule = trace_rule(c, out->trace, "grounded", false, 0, "");
    tnode_t *gev = t_arr(c->a);
    if (text && ps->cite_max > 0) {
        qnum_t *nums = NULL;
        size_t n = numbers_find(c->a, tcopy, len, true, &nums);
        for (size_t k = 0; k < ps->n; k++) {
            if (!ps->answer[k] || (ps->requires_pick && !picked[k]))
                continue;
            const row_t *rw = &ps->rows[k];
            for (size_t q = 0; q < rw->n_cites && cited < ps->cite_max; q++) {
                for (size_t i = 0; i < n; i++) {
                    bool unit_ok = nums[i].kind == rw->cites[q].kind || nums[i].kind == QK_NUMBER;
                    if (!nums[i].negated && unit_ok &&
                        dec_cmp(nums[i].value, rw->cites[q].value) == 0) {
                        cited++;
                        trace_evidence(c, grule, tcopy, nums[i].start, nums[i].end);
                        tnode_t *sp = t_map(c->a);
                        t_set(c->a, sp, "start", t_int(c->a, (int64_t)nums[i].start));
                        t_set(c->a, sp, "end", t_int(c->a, (int64_t)nums[i].end));
                        t_push(c->a, gev, sp);
                        break;
                    }
                }
            }
        }
    }
    int64_t cite_pts = ps->cite_milli * cited;
    out->elem_matched[1] = cited > 0;
    out->elem_points[1] = cite_pts;
    out->elem_evidence[1] = gev->n ? gev : NULL;
    t_set(c->a, grule, "matched", t_bool(c->a, cited > 0));
    t_set(c->a, grule, "points_milli", t_int(c->a, cite_pts));
    t_set(c->a, grule, "detail",
          t_strz(c->a, arena_printf(c->a, "%lld figure%s of %s cited (up to %lld)",
                                    (long long)cited, cited == 1 ? "" : "s",
                                    ps->requires_pick ? "a picked answer row" : "the answer row",
                                    (long long)ps->cite_max)));
    int64_t elems = 0;
    if (tk.n) {
        rc = text_score_elements(c, it, ps->ts, tcopy, len, &tk, path, out, 2, &elems, err);
        if (rc != GRADING_OK)
            return rc;
    }
    if (ps->requires_pick && right == 0 && tk.n) {
        /* reasoning for the wrong row (or for none) earns nothing; its
         * penalties stand */
        int64_t dropped = 0;
        for (size_t k = 2; k < it->n_elements; k++)
            if (out->elem_points[k] > 0) {
                dropped += out->elem_points[k];
                out->elem_points[k] = 0;
            }
        elems -= dropped;
        trace_rule(c, out->trace, "requires_pick", false, -dropped,
                   arena_printf(c->a,
                                "no answer row picked: the reasoning earns nothing (%lld "
                                "milli-points of reasoning not counted; penalties stand)",
                                (long long)dropped));
    }
    int64_t earned = pick_pts + cite_pts + elems;
    if (earned < 0 || earned > it->points_milli) {
        int64_t cl = earned < 0 ? 0 : it->points_milli;
        trace_rule(
            c, out->trace, "clamp", true, cl - earned,
            arena_printf(c->a, "total %lld clamped to %lld", (long long)earned, (long long)cl));
        earned = cl;
    }
    out->earned_milli = earned;
    return GRADING_OK;
}

const item_ops_t pick_ops = {"pick", PICK_KEYS, pick_compile, pick_grade};
