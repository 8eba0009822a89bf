/*
 * broker.h - scoreline-broker: the queue between submitters and workers.
 *
 *   submitters --DEALER--> [ROUTER submit]            [ROUTER work] <--DEALER-- workers
 *                                \                      /
 *                                 journal (Redis), queue, credit
 *                                          |
 *                          [PUB events] + Redis streams
 *
 * One thread, one zmq_poll loop. Each turn reads every waiting message (up
 * to a bound), journals all new jobs in one Redis round trip, emits all new
 * results in another, then dispatches jobs to workers with free credit.
 */
#ifndef SCORELINE_BROKER_H
#define SCORELINE_BROKER_H

#include "common/redis_url.h"

#include <stddef.h>
#include <stdint.h>

typedef struct broker_config {
    redis_url_t redis;
    char redis_text[512];
    char prefix[128];
    char name[64];
    char submit_ep[256];
    char work_ep[256];
    char events_ep[256];
    char metrics_host[64];
    int metrics_port; /* 0 = no metrics listener */
    uint64_t max_queue;
    uint64_t max_message;
    uint64_t heartbeat_ms;
    uint64_t liveness;
    uint64_t ttr_ms;
    uint64_t max_attempts;
    uint64_t events_maxlen;
    uint64_t dedupe_ttl_s;
    uint64_t grace_ms;
    uint64_t redis_timeout_ms;
    int no_journal; /* 1: no journal and no done-set (--no-journal) */
} broker_config_t;

typedef struct broker broker_t;

/* Bind the sockets and connect to Redis (replaying the journal). NULL with a
 * sentence in err, and *exit_code set (2 config, 3 Redis unavailable). */
broker_t *broker_new(const broker_config_t *cfg, char *err, size_t errlen, int *exit_code);
/* Run until broker_stop (signal). Returns the process exit code. */
int broker_run(broker_t *b);
/* Ask the loop to drain and stop (async-signal-safe). */
void broker_stop(void);
void broker_destroy(broker_t **self_p);

#endif
