/*
 * task.h - one job inside a worker, from the JOB message to its RESULT.
 *
 * The main thread creates a task, resolves its rubric and hands it to the
 * grading pool; a grading thread grades it and packs its RESULT; the main
 * thread sends that RESULT and frees the task. Plain data.
 */
#ifndef SCORELINE_WORKER_TASK_H
#define SCORELINE_WORKER_TASK_H

#include "grading/grading.h"
#include "proto/proto.h"
#include "worker/worker.h"

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

typedef struct task {
    size_t broker;        /* index of the connection the JOB came on */
    uint8_t *body;        /* the JOB body (owned) */
    size_t len;
    uint64_t received_us; /* wall clock at receipt: the event's started_us */
    uint64_t t0_us;       /* monotonic at receipt: duration_us counts from here */
    char job_id[PROTO_MAX_JOB_ID + 1];
    uint32_t attempt;
    uint32_t ttr_ms;
    const grading_rubric_t *rubric; /* pinned in the rubric cache while set */
    const char *err_code;           /* a final error found before grading, NULL = none */
    char err_message[PROTO_MAX_MESSAGE];
    uint8_t *result; /* the packed RESULT body (owned), NULL if packing failed */
    size_t result_len;
    int ok; /* the RESULT says status "ok" */
    struct task *next;
} task_t;

void task_free(task_t *t);
/* Pack t's RESULT (an error when t->err_code is set, else res) into
 * t->result. jm is t's decoded JOB; buf is scratch space. */
void task_pack_result(task_t *t, const worker_config_t *cfg, const proto_jobmsg_t *jm,
                      const grading_result_t *res, msgpack_sbuffer *buf);
/* Grade t (rubric resolved) and pack its RESULT. Thread-safe given its own
 * dec and buf. */
void task_grade(task_t *t, const worker_config_t *cfg, proto_decoder_t *dec, msgpack_sbuffer *buf);

#endif
