/*
 * rating.c - human-rated items (the interview scorecard).
 *
 * A scale (min..max) with behavioural anchors, one or more raters, and a
 * fixed aggregation: median (the mean of the two middle ratings when their
 * number is even), mean, or trimmed_mean (drop `trim` lowest and highest,
 * then the mean). The aggregate maps linearly onto the points:
 * points x (aggregate - min) / (max - min), rounded once.
 *
 * The response is a map rater id -> integer rating, or an array of ratings.
 * Fewer ratings than raters_required (or none) leave the item "pending",
 * which makes the decision "pending" until they arrive. Raters whose ratings
 * differ by more than disagreement_gap raise the disagreement flag, which a
 * red flag can read (disagreement(item)).
 */
#include "internal.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

typedef struct rating_spec {
    int64_t min, max;
    int64_t required;
    int aggregate; /* 0 median, 1 mean, 2 trimmed_mean */
    int64_t trim;
    int64_t gap;
} rating_spec_t;

static const char *const RATING_KEYS[] = {
    "scale", "anchors", "raters_required", "aggregate", "trim", "disagreement_gap", NULL};

static void rating_compile(loader_t *L, item_t *it, json_t *obj, tnode_t *canon, const char *path)
{
    grading_rubric_t *r = L->r;
    rating_spec_t *rs = arena_alloc(&r->arena, sizeof *rs);
    if (!rs)
        return;
    it->spec = rs;
    json_t *scale = ld_object(L, obj, path, "scale", true);
    tnode_t *cs = t_map(L->ta);
    t_set(L->ta, canon, "scale", cs);
    const char *sp = ld_path_key(L, path, "scale");
    if (scale) {
        static const char *const skeys[] = {"min", "max", NULL};
        ld_check_keys(L, scale, sp, skeys);
        rs->min = ld_int(L, scale, cs, sp, "min", 1, -1000, 1000);
        rs->max = ld_int(L, scale, cs, sp, "max", 5, -1000, 1000);
        if (rs->max <= rs->min)
            ld_error(L, sp, "max must be above min");
    }
    json_t *anchors = ld_array(L, obj, path, "anchors", false);
    tnode_t *ca = t_arr(L->ta);
    t_set(L->ta, canon, "anchors", ca);
    for (size_t i = 0; anchors && i < json_array_size(anchors); i++) {
        json_t *o = json_array_get(anchors, i);
        const char *p = ld_path_idx(L, ld_path_key(L, path, "anchors"), i);
        tnode_t *c = t_map(L->ta);
        t_push(L->ta, ca, c);
        if (!json_is_object(o)) {
            ld_error(L, p, "expected an object");
            continue;
        }
        static const char *const akeys[] = {"value", "label", NULL};
        ld_check_keys(L, o, p, akeys);
        int64_t v = ld_int(L, o, c, p, "value", rs->min, rs->min, rs->max);
        (void)v;
        ld_str(L, o, c, p, "label", NULL, true);
    }
    static const char *const aggs[] = {"median", "mean", "trimmed_mean", NULL};
    const char *ag = ld_enum(L, obj, canon, path, "aggregate", aggs, "median");
    rs->aggregate = strcmp(ag, "mean") == 0 ? 1 : strcmp(ag, "trimmed_mean") == 0 ? 2 : 0;
    rs->trim = ld_int(L, obj, canon, path, "trim", rs->aggregate == 2 ? 1 : 0, 0, 10);
    rs->required = ld_int(L, obj, canon, path, "raters_required", 1, 1, 50);
    if (rs->aggregate == 2 && rs->required <= 2 * rs->trim)
        ld_error(L, ld_path_key(L, path, "raters_required"),
                 "a trimmed mean needs more than 2 x trim raters");
    rs->gap = ld_int(L, obj, canon, path, "disagreement_gap", 2, 0, 2000);
    it->elements = arena_alloc(&r->arena, sizeof *it->elements);
    if (it->elements) {
        it->elements[0].id = "disagreement";
        it->n_elements = 1;
    }
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static grading_err_t rating_grade(grade_ctx_t *c, const item_t *it, const msgpack_object *resp,
                                  const char *path, item_result_t *out, grading_error_t *err)
{
    const rating_spec_t *rs = it->spec;
    int64_t v[64];
    size_t n = 0;
    uint32_t cnt = 0;
    const msgpack_object *vals = NULL;
    const msgpack_object_kv *kvs = NULL;
    if (resp && resp->type == MSGPACK_OBJECT_MAP) {
        cnt = resp->via.map.size;
        kvs = resp->via.map.ptr;
    } else if (resp && resp->type == MSGPACK_OBJECT_ARRAY) {
        cnt = resp->via.array.size;
        vals = resp->via.array.ptr;
    } else if (resp && resp->type != MSGPACK_OBJECT_NIL) {
        err_set(err, GRADING_ERR_INVALID_RESPONSE, path,
                "a rating response is a map from rater to rating, or an array of ratings");
        return GRADING_ERR_INVALID_RESPONSE;
    }
    if (cnt > 64) {
        err_set(err, GRADING_ERR_LIMIT, path, "more than 64 ratings");
        return GRADING_ERR_LIMIT;
    }
    tnode_t *ratings = t_arr(c->a);
    for (uint32_t k = 0; k < cnt; k++) {
        const msgpack_object *o = kvs ? &kvs[k].val : &vals[k];
        int64_t x;
        if (o->type == MSGPACK_OBJECT_NIL)
            continue; /* a rater who has not rated yet */
        if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= 1000)
            x = (int64_t)o->via.u64;
        else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && o->via.i64 >= -1000)
            x = o->via.i64;
        else {
            err_set(err, GRADING_ERR_INVALID_RESPONSE, path, "ratings are integers on the scale");
            return GRADING_ERR_INVALID_RESPONSE;
        }
        if (x < rs->min || x > rs->max) {
            err_set(err, GRADING_ERR_INVALID_RESPONSE, path, "rating %lld is outside %lld..%lld",
                    (long long)x, (long long)rs->min, (long long)rs->max);
            return GRADING_ERR_INVALID_RESPONSE;
        }
        v[n++] = x;
        tnode_t *m = t_map(c->a);
        if (kvs && kvs[k].key.type == MSGPACK_OBJECT_STR)
            t_put(c->a, m, "rater",
                  t_str(c->a, kvs[k].key.via.str.ptr,
                        kvs[k].key.via.str.size > 64 ? 64 : kvs[k].key.via.str.size));
        t_put(c->a, m, "rating", t_int(c->a, x));
        t_push(c->a, ratings, m);
    }
    /* out->detail is this item's own, fresh: its keys are new */
    t_put(c->a, out->detail, "raters_required", t_int(c->a, rs->required));
    t_put(c->a, out->detail, "ratings", ratings);
    qsort(v, n, sizeof v[0], cmp_i64);
    out->n_ratings = n;
    out->rating_lo = n ? v[0] : rs->max;
    out->rating_hi = n ? v[n - 1] : rs->min;
    out->rating_agg_milli = rs->min * 1000;
    if ((int64_t)n < rs->required) {
        out->status = ST_PENDING;
        trace_rule(c, out->trace, "ratings", false, 0,
                   arena_printf(c->a, "%zu of %lld required ratings; pending", n,
                                (long long)rs->required));
        return GRADING_OK;
    }
    int64_t spread = v[n - 1] - v[0];
    out->disagreement = spread > rs->gap;
    out->elem_matched[0] = out->disagreement;
    trace_rule(c, out->trace, "disagreement", out->disagreement, 0,
               arena_printf(c->a, "ratings span %lld..%lld (gap %lld, allowed %lld)",
                            (long long)v[0], (long long)v[n - 1], (long long)spread,
                            (long long)rs->gap));
    /* aggregate as a fraction num/den */
    int64_t num = 0, den = 1;
    const char *how, *rule;
    if (rs->aggregate == 0) {
        if (n % 2) {
            num = v[n / 2];
        } else {
            num = v[n / 2 - 1] + v[n / 2];
            den = 2;
        }
        how = "median";
        rule = "aggregate:median";
    } else {
        size_t lo = rs->aggregate == 2 ? (size_t)rs->trim : 0;
        size_t hi = n - lo;
        for (size_t i = lo; i < hi; i++)
            num += v[i];
        den = (int64_t)(hi - lo);
        how = rs->aggregate == 2 ? "trimmed mean" : "mean";
        rule = rs->aggregate == 2 ? "aggregate:trimmed mean" : "aggregate:mean";
    }
    /* the aggregate for display, rounded to 3 places by the one rounding rule */
    char ab[80];
    out->rating_agg_milli = fx_div_round((__int128)num * 1000, den);
    size_t al = dec_format(dec_shift(dec_from_int(out->rating_agg_milli), -3), ab, sizeof ab);
    t_put(c->a, out->detail, "aggregate", t_str(c->a, ab, al < sizeof ab ? al : sizeof ab - 1));
    int64_t earned = fx_div_round((__int128)it->points_milli * (num - rs->min * den),
                                  (__int128)den * (rs->max - rs->min));
    trace_rule(c, out->trace, rule, earned > 0, earned,
               arena_printf(c->a, "%s of %zu ratings = %s on %lld..%lld", how, n, ab,
                            (long long)rs->min, (long long)rs->max));
    out->status = ST_SCORED;
    out->earned_milli = earned;
    return GRADING_OK;
}

const item_ops_t rating_ops = {"rating", RATING_KEYS, rating_compile, rating_grade};
