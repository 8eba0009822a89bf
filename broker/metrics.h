/*
 * metrics.h - the broker's counters and histograms, rendered as Prometheus
 * text, and the tiny HTTP listener that serves them on --metrics HOST:PORT
 * (/metrics, and /healthz for liveness probes).
 */
#ifndef SCORELINE_BROKER_METRICS_H
#define SCORELINE_BROKER_METRICS_H

#include <stddef.h>
#include <stdint.h>

#define METRICS_BUCKETS 14

typedef struct metrics_histogram {
    uint64_t buckets[METRICS_BUCKETS]; /* cumulative at render time, plain counts here */
    uint64_t count;
    uint64_t sum_us;
} metrics_histogram_t;

/* Plain data: the broker increments fields directly. */
typedef struct metrics {
    uint64_t submits;              /* SUBMIT messages */
    uint64_t accepted;             /* jobs newly journaled */
    uint64_t duplicates;           /* submissions of an id already known */
    uint64_t rejected_queue_full;
    uint64_t rejected_unknown_rubric;
    uint64_t rejected_invalid;     /* malformed messages and bad job records */
    uint64_t rejected_unavailable; /* Redis down / shutting down */
    uint64_t completed_ok;
    uint64_t completed_error;
    uint64_t results_duplicate;    /* results that lost the first-wins race */
    uint64_t redeliveries;         /* requeues after worker loss or TTR */
    uint64_t ttr_expired;
    uint64_t dead_letters;         /* jobs given up after --max-attempts deliveries */
    uint64_t workers_lost;
    uint64_t bad_messages;         /* undecodable messages from workers */
    metrics_histogram_t grading;    /* duration_us reported in events */
    metrics_histogram_t queue_wait; /* started_us - accepted_us */
    metrics_histogram_t end_to_end; /* accepted -> emitted, broker clock */
} metrics_t;

/* Gauges sampled at render time. */
typedef struct metrics_gauges {
    size_t queued, running, workers, capacity, pending_emit;
    int redis_up;
} metrics_gauges_t;

void metrics_observe(metrics_histogram_t *h, uint64_t us);

/* Render Prometheus text exposition into a malloc'd string. */
char *metrics_render(const metrics_t *m, const metrics_gauges_t *g);

typedef struct metrics_http metrics_http_t;
/* Listen on host:port. NULL with err on failure. */
metrics_http_t *metrics_http_new(const char *host, int port, char *err, size_t errlen);
void metrics_http_destroy(metrics_http_t **self_p);
/* The listening file descriptor, for zmq_poll. */
int metrics_http_fd(const metrics_http_t *h);
/* Accept and answer pending requests without blocking the loop for long. */
void metrics_http_serve(metrics_http_t *h, const metrics_t *m, const metrics_gauges_t *g);

#endif
