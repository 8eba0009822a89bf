/*
 * worker.c - the worker's loop (see worker.h).
 *
 * One thread. Each turn polls every broker connection, grades the JOBs that
 * arrived, and keeps the heartbeats going both ways. Grading is a pure
 * function, so a job whose rubric cannot be fetched yet (Redis away) simply
 * waits in a short list and is retried; nothing is answered for it until it
 * can be graded, and the broker's time-to-run covers the worst case.
 *
 * SIGTERM: DISCONNECT to every broker (no new jobs), grade what is already
 * here, wait for each broker's DISCONNECT "ack" (ordered after any JOB it
 * sent before), flush the results and exit 0.
 */
#include "worker/worker.h"

#include "common/clock.h"
#include "common/keys.h"
#include "common/log.h"
#include "grading/grading.h"
#include "proto/proto.h"
#include "worker/rubric_cache.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define WORKER_READ_BURST 256
#define WORKER_MAX_WAITING 10000

static volatile sig_atomic_t worker_stopping = 0;

void worker_stop(void)
{
    worker_stopping = 1;
}

typedef struct broker_conn {
    const char *endpoint;
    void *sock;
    int64_t last_recv_ms;
    int64_t last_sent_ms;
    int acked; /* DISCONNECT ack received while draining */
    uint64_t jobs;
} broker_conn_t;

/* A JOB that cannot be graded yet (its rubric is not reachable). */
typedef struct waiting_job {
    size_t broker;
    uint8_t *body;
    size_t len;
    uint64_t received_us;
} waiting_job_t;

struct worker {
    worker_config_t cfg;
    void *ctx;
    broker_conn_t brokers[WORKER_MAX_BROKERS];
    redisContext *redis;
    int64_t redis_retry_ms;
    int redis_backoff_ms;
    rubric_cache_t *cache;
    proto_decoder_t *dec;
    msgpack_sbuffer out;
    waiting_job_t *waiting;
    size_t nwaiting;
    int draining;
    int64_t drain_deadline_ms;
    uint64_t graded, errors;
};

/* ---- Redis ------------------------------------------------------------ */

static void redis_drop(worker_t *w, const char *why)
{
    if (w->redis) {
        log_warn("redis.lost", "error=\"%s\"", why);
        redisFree(w->redis);
        w->redis = NULL;
    }
    w->redis_retry_ms = clock_mono_ms() + w->redis_backoff_ms;
    w->redis_backoff_ms = w->redis_backoff_ms * 2 > 2000 ? 2000 : w->redis_backoff_ms * 2;
}

/* 1 when connected (reconnecting if the back-off allows). */
static int redis_ensure(worker_t *w)
{
    if (w->redis)
        return 1;
    if (clock_mono_ms() < w->redis_retry_ms)
        return 0;
    char err[512];
    w->redis = redis_url_connect(&w->cfg.redis, (int)w->cfg.redis_timeout_ms, err, sizeof err);
    if (!w->redis) {
        log_warn("redis.retry", "error=\"%s\"", err);
        redis_drop(w, err);
        return 0;
    }
    w->redis_backoff_ms = 100;
    log_info("redis.up", "redis=%s", w->cfg.redis_text);
    return 1;
}

typedef enum fetch {
    FETCH_FOUND,
    FETCH_ABSENT,
    FETCH_UNAVAILABLE
} fetch_t;

/* GET <prefix>rubric:hash:<hash> into a loaded rubric. */
static fetch_t redis_fetch_rubric(worker_t *w, proto_str_t hash, grading_rubric_t **out,
                                  grading_error_t *gerr)
{
    if (!redis_ensure(w))
        return FETCH_UNAVAILABLE;
    redisReply *r = redisCommand(w->redis, "GET %s" KEY_RUBRIC_HASH "%b", w->cfg.prefix, hash.ptr,
                                 (size_t)hash.len);
    if (!r) {
        redis_drop(w, w->redis->errstr);
        return FETCH_UNAVAILABLE;
    }
    fetch_t f = FETCH_ABSENT;
    if (r->type == REDIS_REPLY_STRING) {
        if (grading_rubric_load_msgpack(r->str, r->len, out, gerr) == GRADING_OK)
            f = FETCH_FOUND;
        else
            log_warn("rubric.unloadable", "hash=%.*s error=\"%s\"", (int)hash.len, hash.ptr,
                     gerr->message);
    }
    freeReplyObject(r);
    return f;
}

/* Store a rubric that came inline so other workers find it by hash. */
static void redis_store_rubric(worker_t *w, const grading_rubric_t *r)
{
    if (!redis_ensure(w))
        return;
    size_t len;
    const void *canon = grading_rubric_canonical(r, &len);
    redisReply *rep = redisCommand(w->redis, "SET %s" KEY_RUBRIC_HASH "%s %b NX", w->cfg.prefix,
                                   grading_rubric_hash(r), canon, len);
    if (!rep)
        redis_drop(w, w->redis->errstr);
    else
        freeReplyObject(rep);
}

/* ---- grading a job ---------------------------------------------------- */

typedef struct outcome {
    const char *code; /* NULL = graded */
    char message[PROTO_MAX_MESSAGE];
} outcome_t;

/* Find the job's rubric. Returns NULL with o->code set on a final error, or
 * NULL with *retry = 1 when Redis must be reached first. */
static const grading_rubric_t *resolve_rubric(worker_t *w, const proto_jobmsg_t *jm, outcome_t *o,
                                              int *retry)
{
    const proto_job_t *job = &jm->job;
    proto_str_t hash = jm->rubric_hash.len ? jm->rubric_hash : job->rubric_hash;
    grading_error_t gerr;
    grading_rubric_t *loaded = NULL;
    *retry = 0;
    if (hash.len) {
        const grading_rubric_t *r = rubric_cache_get(w->cache, hash.ptr, hash.len);
        if (r)
            return r;
        fetch_t f = redis_fetch_rubric(w, hash, &loaded, &gerr);
        if (f == FETCH_FOUND && memcmp(grading_rubric_hash(loaded), hash.ptr, 64) == 0)
            return rubric_cache_put(w->cache, &loaded);
        grading_rubric_destroy(&loaded);
        if (!job->rubric_inline.len) {
            if (f == FETCH_UNAVAILABLE) {
                *retry = 1;
                return NULL;
            }
            o->code = "unknown_rubric";
            snprintf(o->message, sizeof o->message,
                     "rubric version %.*s is not stored in Redis and the job carries no inline "
                     "rubric",
                     (int)hash.len, hash.ptr);
            return NULL;
        }
    }
    if (!job->rubric_inline.len) {
        o->code = "unknown_rubric";
        snprintf(o->message, sizeof o->message,
                 "rubric '%.*s' could not be resolved to a stored version and the job carries "
                 "no inline rubric",
                 (int)job->rubric.len, job->rubric.ptr);
        return NULL;
    }
    if (grading_rubric_load_json(job->rubric_inline.ptr, job->rubric_inline.len, &loaded, &gerr) !=
        GRADING_OK) {
        o->code = grading_err_code(gerr.code);
        snprintf(o->message, sizeof o->message, "inline rubric: %s%s%s", gerr.path,
                 gerr.path[0] ? ": " : "", gerr.message);
        return NULL;
    }
    if (hash.len && memcmp(grading_rubric_hash(loaded), hash.ptr, 64) != 0) {
        o->code = "rubric_hash_mismatch";
        snprintf(o->message, sizeof o->message,
                 "the inline rubric hashes to %s, not to the pinned %.*s",
                 grading_rubric_hash(loaded), (int)hash.len, hash.ptr);
        grading_rubric_destroy(&loaded);
        return NULL;
    }
    const grading_rubric_t *r = rubric_cache_put(w->cache, &loaded);
    redis_store_rubric(w, r);
    return r;
}

/* Pack and send the RESULT for one job on broker connection bi. */
static void send_result(worker_t *w, size_t bi, const proto_jobmsg_t *jm,
                        const grading_rubric_t *rubric, const grading_result_t *res,
                        const outcome_t *o, uint64_t started_us, uint64_t t0_us)
{
    const proto_job_t *job = &jm->job;
    uint64_t finished_us = clock_wall_us();
    proto_result_t r;
    memset(&r, 0, sizeof r);
    r.job_id = job->job_id;
    r.tenant = job->tenant;
    r.candidate = job->candidate;
    r.rubric = job->rubric;
    r.rubric_hash = rubric ? proto_str(grading_rubric_hash(rubric))
                           : (jm->rubric_hash.len ? jm->rubric_hash : job->rubric_hash);
    r.engine = proto_str(GRADING_ENGINE);
    r.worker = proto_str(w->cfg.id);
    r.attempt = jm->attempt;
    r.accepted_us = jm->accepted_us;
    r.started_us = started_us;
    r.finished_us = finished_us;
    r.duration_us = clock_mono_us() - t0_us;
    if (o->code) {
        r.status = proto_str("error");
        r.error_code = proto_str(o->code);
        r.error_message = proto_str(o->message);
    } else {
        r.status = proto_str("ok");
        r.digest = proto_str(res->digest);
    }
    msgpack_sbuffer_clear(&w->out);
    if (proto_encode_result(&w->out, &r, o->code ? NULL : res->data, o->code ? 0 : res->len) != 0)
        return;
    broker_conn_t *bc = &w->brokers[bi];
    zmq_send(bc->sock, PROTO_SIGNATURE, PROTO_SIGNATURE_LEN, ZMQ_SNDMORE);
    zmq_send(bc->sock, "RESULT", 6, ZMQ_SNDMORE);
    zmq_send(bc->sock, w->out.data, w->out.size, 0);
    bc->last_sent_ms = clock_mono_ms();
    bc->jobs++;
    if (o->code) {
        w->errors++;
        log_info("job.failed", "job_id=%.*s attempt=%u code=%s message=\"%s\"",
                 (int)job->job_id.len, job->job_id.ptr, jm->attempt, o->code, o->message);
    } else {
        w->graded++;
        log_debug("job.graded", "job_id=%.*s attempt=%u duration_us=%llu", (int)job->job_id.len,
                  job->job_id.ptr, jm->attempt, (unsigned long long)r.duration_us);
    }
}

/* Grade one JOB body. Returns 1 when it must wait for Redis, else 0. */
static int grade_job(worker_t *w, size_t bi, const void *body, size_t len, uint64_t received_us)
{
    uint64_t t0 = clock_mono_us();
    proto_jobmsg_t jm;
    proto_error_t perr;
    if (proto_decode_job(w->dec, body, len, &jm, &perr) != PROTO_OK ||
        jm.job.err.code != PROTO_OK) {
        /* Without a job id there is nobody to answer; the broker's
         * time-to-run will requeue it and the dead-letter limit ends it. */
        log_warn("job.undecodable", "code=%s reason=\"%s\"", proto_err_code(perr.code),
                 perr.message);
        return 0;
    }
    outcome_t o = {0};
    int retry = 0;
    const grading_rubric_t *rubric = resolve_rubric(w, &jm, &o, &retry);
    if (retry)
        return 1;
    grading_result_t res = {0};
    if (rubric) {
        if (grading_rubric_id(rubric) &&
            (strlen(grading_rubric_id(rubric)) != jm.job.rubric.len ||
             memcmp(grading_rubric_id(rubric), jm.job.rubric.ptr, jm.job.rubric.len) != 0)) {
            o.code = "rubric_hash_mismatch";
            snprintf(o.message, sizeof o.message,
                     "the job names rubric '%.*s' but version %s belongs to rubric '%s'",
                     (int)jm.job.rubric.len, jm.job.rubric.ptr, grading_rubric_hash(rubric),
                     grading_rubric_id(rubric));
        } else {
            grading_error_t gerr;
            if (grading_grade(rubric, jm.job.responses, &res, &gerr) != GRADING_OK) {
                o.code = grading_err_code(gerr.code);
                snprintf(o.message, sizeof o.message, "%s%s%s", gerr.path,
                         gerr.path[0] ? ": " : "", gerr.message);
            }
        }
    }
    send_result(w, bi, &jm, rubric, &res, &o, received_us, t0);
    grading_result_free(&res);
    return 0;
}

static void wait_job(worker_t *w, size_t bi, const void *body, size_t len, uint64_t received_us)
{
    if (w->nwaiting >= WORKER_MAX_WAITING)
        return; /* the broker's time-to-run brings it back */
    waiting_job_t *n = realloc(w->waiting, (w->nwaiting + 1) * sizeof *n);
    if (!n)
        return;
    w->waiting = n;
    uint8_t *copy = malloc(len);
    if (!copy)
        return;
    memcpy(copy, body, len);
    w->waiting[w->nwaiting++] = (waiting_job_t){bi, copy, len, received_us};
}

/* Retry jobs that waited for Redis, oldest first. */
static void retry_waiting(worker_t *w)
{
    size_t kept = 0;
    for (size_t i = 0; i < w->nwaiting; i++) {
        waiting_job_t *j = &w->waiting[i];
        if (grade_job(w, j->broker, j->body, j->len, j->received_us)) {
            w->waiting[kept++] = *j;
        } else {
            free(j->body);
        }
    }
    w->nwaiting = kept;
}

/* ---- broker connections ----------------------------------------------- */

static void send_simple(worker_t *w, size_t bi, proto_cmd_t cmd)
{
    broker_conn_t *bc = &w->brokers[bi];
    msgpack_sbuffer_clear(&w->out);
    int rc;
    if (cmd == PROTO_CMD_READY) {
        proto_ready_t rd = {.worker = proto_str(w->cfg.id),
                            .credit = (uint32_t)w->cfg.credit,
                            .engine = proto_str(GRADING_ENGINE)};
        rc = proto_encode_ready(&w->out, &rd);
    } else if (cmd == PROTO_CMD_HEARTBEAT) {
        proto_heartbeat_t hb = {.inflight = (uint32_t)w->nwaiting};
        rc = proto_encode_heartbeat(&w->out, &hb);
    } else {
        proto_disconnect_t d = {.reason = proto_str("draining")};
        rc = proto_encode_disconnect(&w->out, &d);
    }
    if (rc != 0)
        return;
    const char *name = proto_cmd_name(cmd);
    zmq_send(bc->sock, PROTO_SIGNATURE, PROTO_SIGNATURE_LEN, ZMQ_SNDMORE);
    zmq_send(bc->sock, name, strlen(name), ZMQ_SNDMORE);
    zmq_send(bc->sock, w->out.data, w->out.size, 0);
    bc->last_sent_ms = clock_mono_ms();
}

/* (Re)open the DEALER to broker bi and announce ourselves. */
static int broker_open(worker_t *w, size_t bi)
{
    broker_conn_t *bc = &w->brokers[bi];
    if (bc->sock)
        zmq_close(bc->sock);
    bc->sock = zmq_socket(w->ctx, ZMQ_DEALER);
    if (!bc->sock)
        return -1;
    int linger = (int)w->cfg.grace_ms, hwm = 100000, ivl = 100, ivl_max = 2000;
    zmq_setsockopt(bc->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(bc->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(bc->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(bc->sock, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt(bc->sock, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max);
    if (zmq_connect(bc->sock, bc->endpoint) != 0)
        return -1;
    bc->last_recv_ms = clock_mono_ms();
    bc->acked = 0;
    send_simple(w, bi, PROTO_CMD_READY);
    return 0;
}

static void broker_message(worker_t *w, size_t bi, zmq_msg_t *frames, int n)
{
    broker_conn_t *bc = &w->brokers[bi];
    bc->last_recv_ms = clock_mono_ms();
    proto_cmd_t cmd;
    if (n != 3 || !proto_signature_ok(zmq_msg_data(&frames[0]), zmq_msg_size(&frames[0])) ||
        proto_cmd_parse(zmq_msg_data(&frames[1]), zmq_msg_size(&frames[1]), &cmd) != PROTO_OK) {
        log_warn("broker.bad_message", "broker=%s frames=%d", bc->endpoint, n);
        return;
    }
    const void *body = zmq_msg_data(&frames[2]);
    size_t len = zmq_msg_size(&frames[2]);
    switch (cmd) {
    case PROTO_CMD_JOB: {
        uint64_t received_us = clock_wall_us();
        if (grade_job(w, bi, body, len, received_us))
            wait_job(w, bi, body, len, received_us);
        return;
    }
    case PROTO_CMD_HEARTBEAT:
        return;
    case PROTO_CMD_DISCONNECT: {
        proto_disconnect_t d;
        proto_error_t perr;
        if (proto_decode_disconnect(w->dec, body, len, &d, &perr) != PROTO_OK)
            return;
        if (proto_str_eq(d.reason, "ack")) {
            bc->acked = 1;
        } else if (proto_str_eq(d.reason, "unknown_worker") && !w->draining) {
            log_info("broker.rejoin", "broker=%s", bc->endpoint);
            send_simple(w, bi, PROTO_CMD_READY);
        } else {
            /* The broker is going away; heartbeats will find its successor. */
            log_info("broker.leaving", "broker=%s reason=%.*s", bc->endpoint, (int)d.reason.len,
                     d.reason.ptr);
            if (w->draining)
                bc->acked = 1;
        }
        return;
    }
    default:
        log_warn("broker.bad_command", "broker=%s command=%s", bc->endpoint, proto_cmd_name(cmd));
        return;
    }
}

static void broker_drain(worker_t *w, size_t bi)
{
    broker_conn_t *bc = &w->brokers[bi];
    for (int k = 0; k < WORKER_READ_BURST; k++) {
        zmq_msg_t frames[3];
        int n = 0, extra = 0;
        for (;;) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, bc->sock, n + extra == 0 ? ZMQ_DONTWAIT : 0) < 0) {
                zmq_msg_close(&m);
                break;
            }
            int more = zmq_msg_more(&m);
            if (n < 3) {
                zmq_msg_init(&frames[n]);
                zmq_msg_move(&frames[n++], &m);
            } else {
                extra++;
            }
            zmq_msg_close(&m);
            if (!more)
                break;
        }
        if (n == 0)
            return;
        broker_message(w, bi, frames, n + extra);
        for (int i = 0; i < n; i++)
            zmq_msg_close(&frames[i]);
    }
}

/* Heartbeats out, and a reconnect for a broker silent too long. */
static void heartbeats(worker_t *w)
{
    int64_t now = clock_mono_ms();
    int64_t dead_after = (int64_t)(w->cfg.heartbeat_ms * w->cfg.liveness);
    for (size_t i = 0; i < w->cfg.nbrokers; i++) {
        broker_conn_t *bc = &w->brokers[i];
        if (now - bc->last_recv_ms > dead_after) {
            if (w->draining) {
                bc->acked = 1; /* nobody left to hand jobs back to */
                continue;
            }
            log_warn("broker.lost", "broker=%s silent_ms=%lld", bc->endpoint,
                     (long long)(now - bc->last_recv_ms));
            broker_open(w, i);
        } else if (now - bc->last_sent_ms >= (int64_t)w->cfg.heartbeat_ms) {
            send_simple(w, i, PROTO_CMD_HEARTBEAT);
        }
    }
}

/* ---- life cycle ------------------------------------------------------- */

worker_t *worker_new(const worker_config_t *cfg, char *err, size_t errlen, int *exit_code)
{
    *exit_code = 2;
    worker_t *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->cfg = *cfg;
    w->redis_backoff_ms = 100;
    msgpack_sbuffer_init(&w->out);
    w->cache = rubric_cache_new(cfg->cache_size);
    w->dec = proto_decoder_new(0);
    w->ctx = zmq_ctx_new();
    if (!w->cache || !w->dec || !w->ctx) {
        snprintf(err, errlen, "out of memory");
        worker_destroy(&w);
        return NULL;
    }
    w->redis = redis_url_connect(&cfg->redis, (int)cfg->redis_timeout_ms, err, errlen);
    if (!w->redis) {
        size_t n = strlen(err);
        snprintf(err + n, errlen - n, " (is redis-server running? set --redis or "
                                      "SCORELINE_REDIS_URL)");
        *exit_code = 3;
        worker_destroy(&w);
        return NULL;
    }
    for (size_t i = 0; i < cfg->nbrokers; i++) {
        w->brokers[i].endpoint = cfg->brokers[i];
        if (broker_open(w, i) != 0) {
            snprintf(err, errlen, "cannot connect to broker %s: %s", cfg->brokers[i],
                     zmq_strerror(errno));
            worker_destroy(&w);
            return NULL;
        }
    }
    *exit_code = 0;
    return w;
}

void worker_destroy(worker_t **self_p)
{
    worker_t *w = *self_p;
    if (!w)
        return;
    for (size_t i = 0; i < WORKER_MAX_BROKERS; i++)
        if (w->brokers[i].sock)
            zmq_close(w->brokers[i].sock);
    if (w->ctx)
        zmq_ctx_term(w->ctx);
    if (w->redis)
        redisFree(w->redis);
    for (size_t i = 0; i < w->nwaiting; i++)
        free(w->waiting[i].body);
    free(w->waiting);
    rubric_cache_destroy(&w->cache);
    proto_decoder_destroy(&w->dec);
    msgpack_sbuffer_destroy(&w->out);
    free(w);
    *self_p = NULL;
}

static int all_acked(const worker_t *w)
{
    for (size_t i = 0; i < w->cfg.nbrokers; i++)
        if (!w->brokers[i].acked)
            return 0;
    return 1;
}

int worker_run(worker_t *w)
{
    char brokers[1024] = "";
    for (size_t i = 0; i < w->cfg.nbrokers; i++) {
        size_t n = strlen(brokers);
        snprintf(brokers + n, sizeof brokers - n, "%s%s", i ? "," : "", w->cfg.brokers[i]);
    }
    log_info("worker.ready", "worker=%s brokers=%s credit=%llu redis=%s engine=%s", w->cfg.id,
             brokers, (unsigned long long)w->cfg.credit, w->cfg.redis_text, GRADING_ENGINE);
    for (;;) {
        if (worker_stopping && !w->draining) {
            w->draining = 1;
            w->drain_deadline_ms = clock_mono_ms() + (int64_t)w->cfg.grace_ms;
            log_info("worker.draining", "waiting=%zu", w->nwaiting);
            for (size_t i = 0; i < w->cfg.nbrokers; i++)
                send_simple(w, i, PROTO_CMD_DISCONNECT);
        }
        if (w->draining && ((all_acked(w) && w->nwaiting == 0) ||
                            clock_mono_ms() >= w->drain_deadline_ms))
            break;
        zmq_pollitem_t items[WORKER_MAX_BROKERS];
        for (size_t i = 0; i < w->cfg.nbrokers; i++)
            items[i] = (zmq_pollitem_t){w->brokers[i].sock, 0, ZMQ_POLLIN, 0};
        long timeout = (long)w->cfg.heartbeat_ms / 4;
        if (w->nwaiting)
            timeout = 100;
        int rc = zmq_poll(items, (int)w->cfg.nbrokers, timeout);
        if (rc < 0 && errno != EINTR) {
            log_error("worker.poll", "error=\"%s\"", zmq_strerror(errno));
            break;
        }
        for (size_t i = 0; i < w->cfg.nbrokers; i++)
            if (items[i].revents & ZMQ_POLLIN)
                broker_drain(w, i);
        if (w->nwaiting)
            retry_waiting(w);
        heartbeats(w);
    }
    log_info("worker.stopped", "graded=%llu errors=%llu unfinished=%zu cache_hits=%llu "
             "cache_misses=%llu",
             (unsigned long long)w->graded, (unsigned long long)w->errors, w->nwaiting,
             (unsigned long long)rubric_cache_hits(w->cache),
             (unsigned long long)rubric_cache_misses(w->cache));
    return 0;
}
