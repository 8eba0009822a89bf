/*
 * hist.h - a small HDR-style latency histogram for the benchmark tools.
 *
 * Log-linear buckets: values below 128 get a bucket each; above, every
 * power-of-two range is split into 64 equal buckets, so any recorded value
 * is known to within 1/64 (1.6%) and the whole range up to 2^40 (about 18
 * minutes in nanoseconds) fits in 2,304 counters. Recording is one
 * count-leading-zeros and an increment; percentiles walk the counters.
 * Header-only: the load generator and the grading benchmark both use it.
 */
#ifndef SCORELINE_BENCH_HIST_H
#define SCORELINE_BENCH_HIST_H

#include <stdint.h>
#include <string.h>

#define HIST_SUB_BITS 7 /* 2^7 = 128 linear buckets, then 64 per octave */
#define HIST_HALF (1u << (HIST_SUB_BITS - 1))
#define HIST_MAX_SHIFT 34
#define HIST_BUCKETS ((HIST_MAX_SHIFT + 2) * HIST_HALF)

typedef struct hist {
    uint64_t counts[HIST_BUCKETS];
    uint64_t total;
    uint64_t min, max;
    double sum;
} hist_t;

static inline void hist_init(hist_t *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

static inline unsigned hist_index(uint64_t v)
{
    if (v < (1u << HIST_SUB_BITS))
        return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - (HIST_SUB_BITS - 1);
    if (shift > HIST_MAX_SHIFT) {
        shift = HIST_MAX_SHIFT;
        v = ((uint64_t)(1u << HIST_SUB_BITS) << shift) - 1;
    }
    return shift * HIST_HALF + (unsigned)(v >> shift);
}

/* The middle of bucket idx: what a percentile reports. */
static inline uint64_t hist_value(unsigned idx)
{
    if (idx < (1u << HIST_SUB_BITS))
        return idx;
    unsigned shift = idx / HIST_HALF - 1;
    uint64_t top = idx - shift * HIST_HALF;
    return (top << shift) + ((1ull << shift) >> 1);
}

static inline void hist_record(hist_t *h, uint64_t v)
{
    h->counts[hist_index(v)]++;
    h->total++;
    h->sum += (double)v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

/* Value at percentile p (0..100): the smallest bucket holding at least p%
 * of the recorded values. 0 when empty. */
static inline uint64_t hist_percentile(const hist_t *h, double p)
{
    if (h->total == 0)
        return 0;
    uint64_t want = (uint64_t)((double)h->total * p / 100.0 + 0.5);
    if (want < 1)
        want = 1;
    if (want > h->total)
        want = h->total;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= want) {
            uint64_t v = hist_value(i);
            return v > h->max ? h->max : v < h->min ? h->min : v;
        }
    }
    return h->max;
}

static inline double hist_mean(const hist_t *h)
{
    return h->total ? h->sum / (double)h->total : 0.0;
}

#endif
