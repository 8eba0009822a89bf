/*
 * task.c - grading one task and packing its RESULT (see task.h). Runs on a
 * grading thread, or on the main thread for errors found before grading.
 */
#include "worker/task.h"

#include "common/clock.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void task_free(task_t *t)
{
    if (!t)
        return;
    free(t->body);
    free(t->result);
    free(t);
}

void task_pack_result(task_t *t, const worker_config_t *cfg, const proto_jobmsg_t *jm,
                      const grading_result_t *res, msgpack_sbuffer *buf)
{
    const proto_job_t *job = &jm->job;
    proto_result_t r;
    memset(&r, 0, sizeof r);
    r.job_id = job->job_id;
    r.tenant = job->tenant;
    r.candidate = job->candidate;
    r.rubric = job->rubric;
    r.rubric_hash = t->rubric ? proto_str(grading_rubric_hash(t->rubric))
                              : (jm->rubric_hash.len ? jm->rubric_hash : job->rubric_hash);
    r.engine = proto_str(GRADING_ENGINE);
    r.worker = proto_str(cfg->id);
    r.attempt = jm->attempt;
    r.accepted_us = jm->accepted_us;
    r.started_us = t->received_us;
    r.finished_us = clock_wall_us();
    r.duration_us = clock_mono_us() - t->t0_us;
    if (t->err_code) {
        r.status = proto_str("error");
        r.error_code = proto_str(t->err_code);
        r.error_message = proto_str(t->err_message);
    } else {
        r.status = proto_str("ok");
        r.digest = proto_str(res->digest);
    }
    msgpack_sbuffer_clear(buf);
    free(t->result);
    t->result = NULL;
    if (proto_encode_result(buf, &r, t->err_code ? NULL : res->data, t->err_code ? 0 : res->len) ==
        0) {
        t->result = malloc(buf->size);
        if (t->result) {
            memcpy(t->result, buf->data, buf->size);
            t->result_len = buf->size;
        }
    }
    t->ok = t->err_code == NULL;
}

void task_grade(task_t *t, const worker_config_t *cfg, proto_decoder_t *dec, msgpack_sbuffer *buf)
{
    proto_jobmsg_t jm;
    proto_error_t perr;
    if (proto_decode_job(dec, t->body, t->len, &jm, &perr) != PROTO_OK)
        return; /* decoded on receipt already: cannot fail here */
    if (cfg->fault_match && cfg->fault_delay_ms && strstr(t->job_id, cfg->fault_match)) {
        struct timespec ts = {(time_t)(cfg->fault_delay_ms / 1000),
                              (long)(cfg->fault_delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    grading_result_t res = {0};
    if (!t->err_code) {
        grading_error_t gerr;
        if (grading_grade(t->rubric, jm.job.responses, &res, &gerr) != GRADING_OK) {
            t->err_code = grading_err_code(gerr.code);
            snprintf(t->err_message, sizeof t->err_message, "%s%s%s", gerr.path,
                     gerr.path[0] ? ": " : "", gerr.message);
        }
    }
    task_pack_result(t, cfg, &jm, &res, buf);
    grading_result_free(&res);
}
