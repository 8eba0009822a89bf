/*
 * quantity.c - numeric answers, checked exactly.
 *
 * The response is a number (msgpack int or float64, the latter read by the
 * %.15g rule) or text in which numbers are found (numbers.c). Each number the
 * candidate asserts (not negated in its clause) is tried against each answer:
 *   tolerance  |x - value| <= tolerance (absolute) or <= tolerance x |value|
 *              (relative), in exact decimal arithmetic;
 *   rounding   x and value rounded half away from zero to the same decimal
 *              places or significant figures are equal (QTI equalRounded);
 * and the best answer fraction wins (the earliest number on a tie). A written
 * unit must be of the item's kind (a percent is not a currency); for a percent
 * item, a bare fraction 0.083 is also read as 8.3%. More than max_numbers
 * different asserted values of the expected kind is a shotgun answer and
 * earns nothing.
 */
#include "internal.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

typedef struct q_answer {
    dec_t value;
    dec_t tolerance;
    bool relative;
    int64_t fraction_milli; /* share of the item's points, thousandths */
    const char *feedback;
} q_answer_t;

typedef struct quantity_spec {
    q_answer_t *answers;
    size_t n;
    qkind_t kind;
    const char *currency;
    const char *unit; /* optional | required | ignore */
    int round_mode;   /* 0 none, 1 decimal places, 2 significant figures */
    int round_digits;
    bool percent_fraction;
    bool decimal_comma;
    int64_t max_numbers;
} quantity_spec_t;

static const char *const QUANTITY_KEYS[] = {"answers",       "kind",        "currency",
                                            "unit",          "rounding",    "percent_fraction",
                                            "decimal_comma", "max_numbers", NULL};

static void quantity_compile(loader_t *L, item_t *it, json_t *obj, tnode_t *canon, const char *path)
{
    grading_rubric_t *r = L->r;
    quantity_spec_t *qs = arena_alloc(&r->arena, sizeof *qs);
    if (!qs)
        return;
    it->spec = qs;
    static const char *const kinds[] = {"number", "percent", "currency", "count", NULL};
    static const char *const units[] = {"optional", "required", "ignore", NULL};
    const char *k = ld_enum(L, obj, canon, path, "kind", kinds, "number");
    qs->kind = strcmp(k, "percent") == 0    ? QK_PERCENT
               : strcmp(k, "currency") == 0 ? QK_CURRENCY
               : strcmp(k, "count") == 0    ? QK_COUNT
                                            : QK_NUMBER;
    qs->currency =
        ld_str(L, obj, canon, path, "currency", qs->kind == QK_CURRENCY ? "USD" : "", false);
    if (qs->kind == QK_CURRENCY && strcmp(qs->currency, "USD") && strcmp(qs->currency, "EUR") &&
        strcmp(qs->currency, "GBP"))
        ld_error(L, ld_path_key(L, path, "currency"), "expected one of: USD, EUR, GBP");
    qs->unit = ld_enum(L, obj, canon, path, "unit", units, "optional");
    qs->percent_fraction = ld_bool(L, obj, canon, path, "percent_fraction", true);
    qs->decimal_comma = ld_bool(L, obj, canon, path, "decimal_comma", true);
    qs->max_numbers = ld_int(L, obj, canon, path, "max_numbers", 4, 1, 100);
    json_t *ro = ld_object(L, obj, path, "rounding", false);
    if (ro) {
        const char *rp = ld_path_key(L, path, "rounding");
        tnode_t *rc = t_map(L->ta);
        t_set(L->ta, canon, "rounding", rc);
        static const char *const rkeys[] = {"mode", "digits", NULL};
        static const char *const modes[] = {"decimals", "sig_figs", NULL};
        ld_check_keys(L, ro, rp, rkeys);
        const char *m = ld_enum(L, ro, rc, rp, "mode", modes, NULL);
        qs->round_mode = strcmp(m, "sig_figs") == 0 ? 2 : 1;
        qs->round_digits = (int)ld_int(L, ro, rc, rp, "digits", 0, qs->round_mode == 2 ? 1 : 0, 18);
    } else {
        t_set(L->ta, canon, "rounding", t_nil(L->ta));
    }
    json_t *arr = ld_array(L, obj, path, "answers", true);
    tnode_t *carr = t_arr(L->ta);
    t_set(L->ta, canon, "answers", carr);
    if (!arr)
        return;
    const char *ap = ld_path_key(L, path, "answers");
    if (json_array_size(arr) < 1 || json_array_size(arr) > 50) {
        ld_error(L, ap, "a quantity item has 1 to 50 answers");
        return;
    }
    qs->n = json_array_size(arr);
    qs->answers = arena_alloc(&r->arena, qs->n * sizeof *qs->answers);
    if (!qs->answers)
        return;
    static const char *const akeys[] = {"value",    "tolerance", "tolerance_mode",
                                        "fraction", "feedback",  NULL};
    static const char *const tmodes[] = {"absolute", "relative", NULL};
    bool full = false;
    for (size_t i = 0; i < qs->n; i++) {
        json_t *o = json_array_get(arr, i);
        const char *p = ld_path_idx(L, ap, i);
        tnode_t *c = t_map(L->ta);
        t_push(L->ta, carr, c);
        q_answer_t *a = &qs->answers[i];
        if (!json_is_object(o)) {
            ld_error(L, p, "expected an object");
            continue;
        }
        ld_check_keys(L, o, p, akeys);
        a->value = ld_dec(L, o, c, p, "value", NULL);
        a->tolerance = ld_dec(L, o, c, p, "tolerance", "0");
        if (dec_sign(a->tolerance) < 0)
            ld_error(L, ld_path_key(L, p, "tolerance"), "a tolerance cannot be negative");
        a->relative =
            strcmp(ld_enum(L, o, c, p, "tolerance_mode", tmodes, "absolute"), "relative") == 0;
        a->fraction_milli = ld_scaled(L, o, c, p, "fraction", "1", 3, 0, 1000);
        a->feedback = ld_str(L, o, c, p, "feedback", "", false);
        if (a->fraction_milli == 1000)
            full = true;
    }
    if (!full)
        ld_error(L, ap, "at least one answer must have fraction 1");
}

typedef struct q_try {
    dec_t x;
    const char *how;
} q_try_t;

/* Does x match answer a? Writes how into *why. */
static bool answer_matches(const quantity_spec_t *qs, const q_answer_t *a, dec_t x,
                           const char **why)
{
    dec_t diff, tol = a->tolerance;
    if (a->relative && !dec_mul(a->tolerance, dec_abs(a->value), &tol))
        return false;
    if (dec_sub(x, a->value, &diff) && dec_cmp(dec_abs(diff), tol) <= 0) {
        *why = dec_sign(tol) == 0 ? "equal" : "within tolerance";
        return true;
    }
    if (qs->round_mode) {
        dec_t rx, rv;
        bool ok = qs->round_mode == 1 ? dec_round_places(x, qs->round_digits, &rx) &&
                                            dec_round_places(a->value, qs->round_digits, &rv)
                                      : dec_round_sig(x, qs->round_digits, &rx) &&
                                            dec_round_sig(a->value, qs->round_digits, &rv);
        if (ok && dec_cmp(rx, rv) == 0) {
            *why = qs->round_mode == 1 ? "equal when rounded to the accepted decimal places"
                                       : "equal when rounded to the accepted significant figures";
            return true;
        }
    }
    return false;
}

static grading_err_t quantity_grade(grade_ctx_t *c, const item_t *it, const msgpack_object *resp,
                                    const char *path, item_result_t *out, grading_error_t *err)
{
    const quantity_spec_t *qs = it->spec;
    qnum_t *nums = NULL;
    size_t n = 0;
    const char *text = NULL;
    size_t tlen = 0;
    qnum_t one;
    if (!resp || resp->type == MSGPACK_OBJECT_NIL) {
        out->status = ST_UNANSWERED;
        trace_rule(c, out->trace, "answer", false, 0, "no answer");
        return GRADING_OK;
    }
    if (resp->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
        resp->type == MSGPACK_OBJECT_NEGATIVE_INTEGER || resp->type == MSGPACK_OBJECT_FLOAT64 ||
        resp->type == MSGPACK_OBJECT_FLOAT32) {
        memset(&one, 0, sizeof one);
        one.kind = QK_NUMBER;
        bool ok = true;
        if (resp->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            one.value =
                dec_from_int(resp->via.u64 > INT64_MAX ? INT64_MAX : (int64_t)resp->via.u64);
        else if (resp->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
            one.value = dec_from_int(resp->via.i64);
        else
            ok = dec_from_double(resp->via.f64, &one.value);
        if (ok) {
            nums = &one;
            n = 1;
        }
    } else if (mp_str(resp, &text, &tlen)) {
        if (tlen > GRADING_TEXT_MAX_BYTES) {
            err_set(err, GRADING_ERR_LIMIT, path, "the response is %zu bytes; the limit is %u",
                    tlen, GRADING_TEXT_MAX_BYTES);
            return GRADING_ERR_LIMIT;
        }
        n = numbers_find(c->a, text, tlen, qs->decimal_comma, &nums);
    } else {
        err_set(err, GRADING_ERR_INVALID_RESPONSE, path,
                "a quantity response is a number or a string");
        return GRADING_ERR_INVALID_RESPONSE;
    }
    if (n == 0) {
        bool blank = true;
        for (size_t i = 0; i < tlen; i++)
            if (text[i] != ' ' && text[i] != '\n' && text[i] != '\t' && text[i] != '\r')
                blank = false;
        out->status = blank ? ST_UNANSWERED : ST_SCORED;
        trace_rule(c, out->trace, "number", false, 0,
                   blank ? "no answer" : "no number found in the response");
        return GRADING_OK;
    }
    out->status = ST_SCORED;
    /* Pass 1: which numbers are asserted and of an acceptable kind. */
    bool *usable = arena_alloc(c->a, n * sizeof *usable);
    if (!usable)
        return GRADING_ERR_NOMEM;
    size_t distinct = 0;
    for (size_t i = 0; i < n; i++) {
        qnum_t *q = &nums[i];
        char vb[80];
        dec_format(q->value, vb, sizeof vb);
        const char *why = NULL;
        bool unit_written = q->kind == QK_PERCENT || q->kind == QK_CURRENCY;
        if (q->negated) {
            why = "negated in its clause; not taken as the answer";
        } else if (strcmp(qs->unit, "ignore") != 0 && unit_written &&
                   (qs->kind == QK_NUMBER || qs->kind == QK_COUNT ? true : q->kind != qs->kind)) {
            why = arena_printf(c->a, "written as %s, the item expects %s", qkind_name(q->kind),
                               qkind_name(qs->kind));
        } else if (qs->kind == QK_CURRENCY && unit_written && *q->currency &&
                   strcmp(q->currency, qs->currency) != 0 && strcmp(qs->unit, "ignore") != 0) {
            why = arena_printf(c->a, "currency %s, the item expects %s", q->currency, qs->currency);
        } else if (strcmp(qs->unit, "required") == 0 && !unit_written &&
                   (qs->kind == QK_PERCENT || qs->kind == QK_CURRENCY)) {
            why = arena_printf(c->a, "the unit (%s) is required and missing", qkind_name(qs->kind));
        }
        usable[i] = why == NULL;
        tnode_t *rule = trace_rule(c, out->trace, "number", usable[i], 0,
                                   why ? arena_printf(c->a, "%s: %s", vb, why)
                                       : arena_printf(c->a, "%s (%s)", vb, qkind_name(q->kind)));
        if (q->contrast)
            t_set(c->a, rule, "contrast", t_strz(c->a, q->contrast));
        if (text)
            trace_evidence(c, rule, text, q->start, q->end);
        if (usable[i] && (q->kind == qs->kind || !text)) {
            bool seen = false;
            for (size_t j = 0; j < i; j++)
                if (usable[j] && dec_cmp(nums[j].value, q->value) == 0 && nums[j].kind == q->kind)
                    seen = true;
            distinct += !seen;
        }
    }
    if ((int64_t)distinct > qs->max_numbers) {
        trace_rule(c, out->trace, "max_numbers", false, 0,
                   arena_printf(c->a,
                                "%zu different %s values asserted; more than %lld is a shotgun "
                                "answer and earns nothing",
                                distinct, qkind_name(qs->kind), (long long)qs->max_numbers));
        out->earned_milli = 0;
        return GRADING_OK;
    }
    /* Pass 2: best answer fraction over usable numbers. */
    int64_t best = -1;
    size_t best_num = 0, best_ans = 0;
    const char *best_how = "";
    bool best_scaled = false;
    for (size_t i = 0; i < n; i++) {
        if (!usable[i])
            continue;
        for (int pass = 0; pass < 2; pass++) {
            dec_t x = nums[i].value;
            if (pass == 1) {
                if (!(qs->kind == QK_PERCENT && qs->percent_fraction && nums[i].kind == QK_NUMBER))
                    break;
                x = dec_shift(x, 2);
            }
            for (size_t a = 0; a < qs->n; a++) {
                const char *how = NULL;
                if (answer_matches(qs, &qs->answers[a], x, &how) &&
                    qs->answers[a].fraction_milli > best) {
                    best = qs->answers[a].fraction_milli;
                    best_num = i;
                    best_ans = a;
                    best_how = how;
                    best_scaled = pass == 1;
                }
            }
        }
    }
    if (best < 0) {
        trace_rule(c, out->trace, "answer", false, 0, "no asserted number matches an answer");
        out->earned_milli = 0;
        return GRADING_OK;
    }
    const q_answer_t *a = &qs->answers[best_ans];
    int64_t earned = fx_div_round((__int128)it->points_milli * best, 1000);
    char vb[80], tb[80];
    dec_format(a->value, vb, sizeof vb);
    dec_format(a->tolerance, tb, sizeof tb);
    const char *detail =
        arena_printf(c->a, "matches answer %s (%s, tolerance %s%s) at fraction %lld/1000%s%s%s", vb,
                     best_how, tb, a->relative ? " relative" : "", (long long)best,
                     best_scaled ? "; read the bare fraction as a percent" : "",
                     *a->feedback ? ": " : "", a->feedback);
    tnode_t *rule = trace_rule(c, out->trace, arena_printf(c->a, "answers[%zu]", best_ans), true,
                               earned, detail);
    if (text)
        trace_evidence(c, rule, text, nums[best_num].start, nums[best_num].end);
    for (size_t i = 0; i < best_num; i++)
        if (usable[i]) {
            t_set(c->a, rule, "tie_break", t_strz(c->a, "the best-scoring number is used"));
            break;
        }
    out->earned_milli = earned;
    return GRADING_OK;
}

const item_ops_t quantity_ops = {"quantity", QUANTITY_KEYS, quantity_compile, quantity_grade};
