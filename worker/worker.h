/*
 * worker.h - scoreline-worker: connects a DEALER to each broker, announces
 * its credit window, grades every JOB with the pure engine in grading/, and
 * sends each RESULT back on the connection the job came from.
 *
 * Rubrics are looked up by content hash: the in-process LRU first, then
 * Redis (<prefix>rubric:hash:<hash>), then the rubric sent inline with the
 * job, which is then stored in Redis for the next worker.
 *
 * Threads: the main thread owns every socket, Redis and the rubric cache;
 * --threads grading threads run the pure engine on one job at a time each.
 * A grading that outlives its time-to-run (or that the broker CANCELs) is
 * abandoned: its thread is left to finish on its own, its result is
 * dropped, and a fresh thread takes its place. The engine is pure, so
 * abandoning it is safe.
 */
#ifndef SCORELINE_WORKER_H
#define SCORELINE_WORKER_H

#include "common/redis_url.h"

#include <stddef.h>
#include <stdint.h>

#define WORKER_MAX_BROKERS 16
/* Largest JOB body a worker decodes: the broker's largest --max-message
 * (256 MiB) plus the JOB envelope. The broker has validated the job
 * already; a smaller limit here would drop jobs the broker accepted. */
#define WORKER_MAX_JOB_BODY ((256u << 20) + (1u << 20))

typedef struct worker_config {
    redis_url_t redis;
    char redis_text[512];
    char prefix[128];
    char id[129];
    const char *brokers[WORKER_MAX_BROKERS];
    size_t nbrokers;
    uint64_t credit;
    uint64_t heartbeat_ms;
    uint64_t liveness;
    uint64_t cache_size;
    uint64_t grace_ms;
    uint64_t redis_timeout_ms;
    uint64_t threads;       /* grading threads */
    uint64_t batch;         /* most jobs per JOBS and results per RESULTS, 0 = single messages */
    uint64_t max_abandoned; /* runaway gradings tolerated before the worker exits */
    /* Fault injection for reliability tests (never set in production): jobs
     * whose id contains fault_match sleep fault_delay_ms before grading. */
    const char *fault_match;
    uint64_t fault_delay_ms;
} worker_config_t;

typedef struct worker worker_t;

/* Connect to Redis and the brokers. NULL with a sentence in err and
 * *exit_code (2 config, 3 Redis unavailable). */
worker_t *worker_new(const worker_config_t *cfg, char *err, size_t errlen, int *exit_code);
/* Run until worker_stop; drains and returns the exit code (0, or 4 when
 * more than max_abandoned gradings ran away). */
int worker_run(worker_t *w);
/* Ask the loop to drain and stop (async-signal-safe). */
void worker_stop(void);
void worker_destroy(worker_t **self_p);
/* Whether a thread is still grading an abandoned job. Such a thread may
 * read its rubric until the process ends, so the process must end without
 * worker_destroy (and without exit handlers racing the thread): _exit. */
int worker_stranded(worker_t *w);

#endif
