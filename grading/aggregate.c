/*
 * aggregate.c - from item results to sections, total, band and decision.
 *
 * Units: points in thousandths (milli-points, int64); percentages in basis
 * points (1/100 of a percent: 8325 = 83.25%); weights in thousandths.
 *
 * One rounding rule, round half up (fx_div_round), applied wherever a
 * division produces a reported figure:
 *   item percent_bp    = round(10000 * earned / max)
 *   section percent_bp = round(10000 * sum(w_i * earned_i) / sum(w_i * max_i))
 *   total percent_bp   = round(sum(W_s * section_bp_s) / sum(W_s))
 * over sections with a non-zero weighted maximum. Item points themselves are
 * rounded once by their scorer (e.g. 2 points x 2/3 = 1333 milli-points).
 *
 * Decision: a fired "disqualify" red flag -> reject; otherwise any pending
 * item (missing human ratings) -> pending; otherwise the band's decision,
 * lowered from advance to review by a fired "review" red flag.
 */
#include "internal.h"

#include <string.h>

int64_t item_percent_bp(const item_t *it, const item_result_t *ir)
{
    if (it->points_milli <= 0)
        return 0;
    return fx_div_round((__int128)ir->earned_milli * 10000, it->points_milli);
}

/* Section and total figures; false on allocation failure. */
bool aggregate_compute(grade_ctx_t *c, const item_result_t *res, aggregate_t *ag)
{
    const grading_rubric_t *r = c->r;
    size_t ns = r->n_sections;
    memset(ag, 0, sizeof *ag);
    ag->section_bp = arena_alloc(c->a, ns * sizeof(int64_t));
    ag->section_points = arena_alloc(c->a, ns * sizeof(int64_t));
    ag->section_max = arena_alloc(c->a, ns * sizeof(int64_t));
    ag->section_pending = arena_alloc(c->a, ns * sizeof(bool));
    ag->section_counted = arena_alloc(c->a, ns * sizeof(bool));
    __int128 *num = arena_alloc(c->a, ns * sizeof(__int128));
    __int128 *den = arena_alloc(c->a, ns * sizeof(__int128));
    if (!ag->section_bp || !ag->section_points || !ag->section_max || !ag->section_pending ||
        !ag->section_counted || !num || !den)
        return false;
    for (size_t i = 0; i < r->n_items; i++) {
        const item_t *it = &r->items[i];
        size_t s = it->section;
        num[s] += (__int128)it->weight_milli * res[i].earned_milli;
        den[s] += (__int128)it->weight_milli * it->points_milli;
        ag->section_points[s] += res[i].earned_milli;
        ag->section_max[s] += it->points_milli;
        if (res[i].status == ST_PENDING) {
            ag->section_pending[s] = true;
            ag->pending = true;
        }
        ag->total_points += res[i].earned_milli;
        ag->total_max += it->points_milli;
    }
    __int128 tnum = 0, tden = 0;
    for (size_t s = 0; s < ns; s++) {
        ag->section_bp[s] = den[s] > 0 ? fx_div_round(num[s] * 10000, den[s]) : 0;
        ag->section_counted[s] = den[s] > 0;
        if (den[s] > 0) {
            tnum += (__int128)r->sections[s].weight_milli * ag->section_bp[s];
            tden += r->sections[s].weight_milli;
        }
    }
    ag->total_bp = tden > 0 ? fx_div_round(tnum, tden) : 0;
    ag->band = &r->bands[r->n_bands - 1];
    for (size_t b = 0; b < r->n_bands; b++)
        if (ag->total_bp >= r->bands[b].min_bp) {
            ag->band = &r->bands[b];
            break;
        }
    return true;
}
