/*
 * choice.c - single and multiple answer items.
 *
 * Schemes (RUBRIC.md "choice"):
 *   all_or_nothing  full points when the selection is exactly the correct set
 *   every_decision  each option is a decision, right or wrong (PrairieLearn EDC)
 *   coverage        (right picked / right total) x (right picked / picked) (PrairieLearn COV)
 *   net_correct     max(0, right picked - wrong picked) / right total (PrairieLearn PC)
 *   values          sum of the picked options' values, clamped to [min_points,
 *                   max_points] (QTI mapResponse with bounds; negative marking)
 * An empty selection is unanswered. Options are named by id; an option's text
 * (case and punctuation folded) is accepted too.
 */
#include "internal.h"

#include <jansson.h>
#include <string.h>

typedef struct choice_option {
    const char *id;
    const char *rule; /* "option:<id>", the option's trace rule */
    const char *text;
    const char *folded_id, *folded_text;
    bool correct;
    int64_t value_milli;
} choice_option_t;

typedef struct choice_spec {
    choice_option_t *opts;
    size_t n;
    bool multiple;
    const char *scheme;
    const char *scheme_rule; /* "scheme:<scheme>" */
    int64_t min_milli, max_milli;
} choice_spec_t;

static const char *const CHOICE_KEYS[] = {"options",    "multiple",   "scheme",
                                          "min_points", "max_points", NULL};

static void choice_compile(loader_t *L, item_t *it, json_t *obj, tnode_t *canon, const char *path)
{
    grading_rubric_t *r = L->r;
    choice_spec_t *cs = arena_alloc(&r->arena, sizeof *cs);
    if (!cs)
        return;
    it->spec = cs;
    static const char *const schemes[] = {"all_or_nothing", "every_decision", "coverage",
                                          "net_correct",    "values",         NULL};
    cs->multiple = ld_bool(L, obj, canon, path, "multiple", false);
    cs->scheme = ld_enum(L, obj, canon, path, "scheme", schemes, "all_or_nothing");
    cs->scheme_rule = arena_printf(&r->arena, "scheme:%s", cs->scheme);
    cs->min_milli = ld_scaled(L, obj, canon, path, "min_points", "0", 3, -1000000000, 1000000000);
    char maxdef[64];
    dec_format(dec_shift(dec_from_int(it->points_milli), -3), maxdef, sizeof maxdef);
    cs->max_milli =
        ld_scaled(L, obj, canon, path, "max_points", maxdef, 3, -1000000000, 1000000000);
    if (cs->max_milli > it->points_milli)
        ld_error(L, ld_path_key(L, path, "max_points"), "max_points cannot exceed points");
    json_t *arr = ld_array(L, obj, path, "options", true);
    tnode_t *carr = t_arr(L->ta);
    t_set(L->ta, canon, "options", carr);
    if (!arr)
        return;
    const char *ap = ld_path_key(L, path, "options");
    if (json_array_size(arr) < 2 || json_array_size(arr) > 100) {
        ld_error(L, ap, "a choice item has 2 to 100 options");
        return;
    }
    cs->n = json_array_size(arr);
    cs->opts = arena_alloc(&r->arena, cs->n * sizeof *cs->opts);
    it->elements = arena_alloc(&r->arena, cs->n * sizeof *it->elements);
    if (!cs->opts || !it->elements)
        return;
    it->n_elements = cs->n;
    static const char *const okeys[] = {"id", "text", "correct", "value", NULL};
    size_t n_correct = 0;
    for (size_t i = 0; i < cs->n; i++) {
        json_t *o = json_array_get(arr, i);
        const char *p = ld_path_idx(L, ap, i);
        tnode_t *c = t_map(L->ta);
        t_push(L->ta, carr, c);
        choice_option_t *op = &cs->opts[i];
        op->id = op->text = op->folded_id = op->folded_text = op->rule = "";
        it->elements[i].id = "";
        if (!json_is_object(o)) {
            ld_error(L, p, "expected an object");
            continue;
        }
        ld_check_keys(L, o, p, okeys);
        op->id = ld_ident(L, o, c, p, "id");
        op->rule = arena_printf(&r->arena, "option:%s", op->id);
        op->text = ld_str(L, o, c, p, "text", "", false);
        op->correct = ld_bool(L, o, c, p, "correct", false);
        op->value_milli =
            ld_scaled(L, o, c, p, "value", op->correct ? maxdef : "0", 3, -1000000000, 1000000000);
        op->folded_id = text_fold(&r->arena, op->id, strlen(op->id));
        op->folded_text = text_fold(&r->arena, op->text, strlen(op->text));
        it->elements[i].id = op->id;
        n_correct += op->correct;
    }
    if (n_correct == 0 && strcmp(cs->scheme, "values") != 0)
        ld_error(L, ap, "at least one option must be correct");
    if (!cs->multiple && strcmp(cs->scheme, "all_or_nothing") != 0 &&
        strcmp(cs->scheme, "values") != 0)
        ld_error(L, ld_path_key(L, path, "scheme"),
                 "a single-answer item is scored all_or_nothing or by values");
}

static int find_option(const choice_spec_t *cs, arena_t *a, const char *s, size_t len)
{
    for (size_t i = 0; i < cs->n; i++)
        if (strlen(cs->opts[i].id) == len && memcmp(cs->opts[i].id, s, len) == 0)
            return (int)i;
    const char *f = text_fold(a, s, len);
    if (!f || !*f)
        return -1;
    for (size_t i = 0; i < cs->n; i++)
        if (strcmp(cs->opts[i].folded_id, f) == 0 ||
            (*cs->opts[i].folded_text && strcmp(cs->opts[i].folded_text, f) == 0))
            return (int)i;
    return -1;
}

static grading_err_t choice_grade(grade_ctx_t *c, const item_t *it, const msgpack_object *resp,
                                  const char *path, item_result_t *out, grading_error_t *err)
{
    const choice_spec_t *cs = it->spec;
    bool *sel = arena_alloc(c->a, cs->n * sizeof *sel);
    if (!sel)
        return GRADING_ERR_NOMEM;
    size_t n_sel = 0;
    if (resp) {
        const msgpack_object *list = resp;
        uint32_t cnt = 1;
        if (resp->type == MSGPACK_OBJECT_ARRAY) {
            cnt = resp->via.array.size;
            list = resp->via.array.ptr;
        } else if (resp->type != MSGPACK_OBJECT_STR && resp->type != MSGPACK_OBJECT_NIL) {
            err_set(err, GRADING_ERR_INVALID_RESPONSE, path,
                    "a choice response is an option id or an array of option ids");
            return GRADING_ERR_INVALID_RESPONSE;
        } else if (resp->type == MSGPACK_OBJECT_NIL) {
            cnt = 0;
        }
        if (cnt > GRADING_LIST_MAX) {
            err_set(err, GRADING_ERR_LIMIT, path, "more than %d selections", GRADING_LIST_MAX);
            return GRADING_ERR_LIMIT;
        }
        for (uint32_t k = 0; k < cnt; k++) {
            const char *s;
            size_t len;
            if (!mp_str(&list[k], &s, &len)) {
                err_set(err, GRADING_ERR_INVALID_RESPONSE, path,
                        "a choice response is an option id or an array of option ids");
                return GRADING_ERR_INVALID_RESPONSE;
            }
            if (len == 0)
                continue;
            int o = find_option(cs, c->a, s, len);
            if (o < 0) {
                err_set(err, GRADING_ERR_INVALID_RESPONSE, path, "\"%.*s\" is not an option",
                        (int)(len > 64 ? 64 : len), s);
                return GRADING_ERR_INVALID_RESPONSE;
            }
            if (!sel[o]) {
                sel[o] = true;
                n_sel++;
            }
        }
    }
    if (n_sel == 0) {
        out->status = ST_UNANSWERED;
        trace_rule(c, out->trace, "selection", false, 0, "no option selected");
        return GRADING_OK;
    }
    if (!cs->multiple && n_sel > 1) {
        err_set(err, GRADING_ERR_INVALID_RESPONSE, path,
                "this item takes one answer; %zu options were selected", n_sel);
        return GRADING_ERR_INVALID_RESPONSE;
    }
    size_t right_picked = 0, wrong_picked = 0, n_correct = 0, decisions = 0;
    int64_t value_sum = 0;
    for (size_t i = 0; i < cs->n; i++) {
        const choice_option_t *op = &cs->opts[i];
        n_correct += op->correct;
        if (sel[i] && op->correct)
            right_picked++;
        if (sel[i] && !op->correct)
            wrong_picked++;
        if (sel[i] == op->correct)
            decisions++;
        if (sel[i])
            value_sum += op->value_milli;
        out->elem_matched[i] = sel[i];
        bool values = strcmp(cs->scheme, "values") == 0;
        out->elem_points[i] = sel[i] && values ? op->value_milli : 0;
        const char *d =
            sel[i] ? (op->correct ? "selected; a correct option" : "selected; not a correct option")
                   : (op->correct ? "not selected; a correct option"
                                  : "not selected; not a correct option");
        tnode_t *rule = trace_rule(c, out->trace, op->rule, sel[i], out->elem_points[i], d);
        (void)rule;
    }
    int64_t pts = it->points_milli, earned = 0;
    const char *how = "";
    if (strcmp(cs->scheme, "all_or_nothing") == 0) {
        bool all =
            cs->multiple ? (right_picked == n_correct && wrong_picked == 0) : right_picked == 1;
        earned = all ? pts : 0;
        how = all ? "the selection is correct" : "the selection is not exactly the correct set";
    } else if (strcmp(cs->scheme, "every_decision") == 0) {
        earned = fx_div_round((__int128)pts * decisions, cs->n);
        how = arena_printf(c->a, "%zu of %zu decisions right", decisions, cs->n);
    } else if (strcmp(cs->scheme, "coverage") == 0) {
        earned =
            fx_div_round((__int128)pts * right_picked * right_picked, (__int128)n_correct * n_sel);
        how = arena_printf(c->a, "(%zu/%zu right options found) x (%zu/%zu picks right)",
                           right_picked, n_correct, right_picked, n_sel);
    } else if (strcmp(cs->scheme, "net_correct") == 0) {
        size_t net = right_picked > wrong_picked ? right_picked - wrong_picked : 0;
        earned = fx_div_round((__int128)pts * net, n_correct);
        how = arena_printf(c->a, "max(0, %zu right - %zu wrong) / %zu", right_picked, wrong_picked,
                           n_correct);
    } else {
        earned = value_sum;
        how = "sum of the selected options' values";
    }
    tnode_t *rule = trace_rule(c, out->trace, cs->scheme_rule, earned > 0, earned, how);
    int64_t lo = strcmp(cs->scheme, "values") == 0 ? cs->min_milli : 0;
    int64_t hi = strcmp(cs->scheme, "values") == 0 ? cs->max_milli : pts;
    if (lo < 0)
        lo = 0; /* negative marking never takes points from other items */
    if (earned < lo || earned > hi) {
        int64_t clamped = earned < lo ? lo : hi;
        t_set(c->a, rule, "clamp",
              t_strz(c->a, arena_printf(c->a, "%lld clamped to %lld", (long long)earned,
                                        (long long)clamped)));
        earned = clamped;
    }
    out->earned_milli = earned;
    out->status = ST_SCORED;
    return GRADING_OK;
}

const item_ops_t choice_ops = {"choice", CHOICE_KEYS, choice_compile, choice_grade};
