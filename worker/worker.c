/*
 * worker.c - the worker's loop (see worker.h).
 *
 * The main thread polls every broker connection and the grading pool's
 * eventfd. A JOB becomes a task: the main thread decodes it, resolves its
 * rubric (cache, Redis, inline) and queues it in the grading pool, whose
 * threads grade it and pack the RESULT; back on the main thread the RESULT
 * goes out on the connection the job came from. A task whose rubric cannot be
 * fetched yet (Redis away) waits and is retried; nothing is answered for it
 * until it can be graded, and the broker's time-to-run covers the worst case.
 *
 * SIGTERM: DISCONNECT to every broker (no new jobs), finish what is here,
 * wait for each broker's DISCONNECT "ack" (ordered after any JOB it sent
 * before), flush the results and exit 0.
 */
#include "worker/worker.h"

#include "common/clock.h"
#include "common/keys.h"
#include "common/log.h"
#include "grading/grading.h"
#include "proto/proto.h"
#include "worker/grader_pool.h"
#include "worker/rubric_cache.h"
#include "worker/task.h"

#include <errno.h>
#include <hiredis/hiredis.h>
#include <malloc.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define WORKER_READ_BURST 256
/* A RESULTS is sent once its score events pass this many bytes (or --batch
 * events): a few real attempts' events already make the message cost
 * little per event, and the buffers that build it stay small, which keeps
 * the worker's resident memory down. */
#define WORKER_RESULTS_BYTES (256u << 10)

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
    int acked;  /* DISCONNECT ack received while draining */
    int silent; /* nothing heard for liveness x heartbeat (logged once) */
    int batch_ok;            /* it sent JOBS since our READY: it takes RESULTS too */
    msgpack_sbuffer results; /* RESULT bodies waiting to go out in one RESULTS */
    uint32_t nresults;
} broker_conn_t;

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
    proto_bytes_t *items; /* elements of a JOBS being read */
    grader_pool_t *pool;
    task_t *waiting; /* waiting for Redis to resolve the rubric */
    task_t *to_pool, *to_pool_tail; /* resolved this turn, handed to the pool together */
    size_t held;     /* tasks held in any state (abandoned ones excluded) */
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
        log_warn("redis.retry", "error=\"%s\" retry_in_ms=%d", err, w->redis_backoff_ms);
        redis_drop(w, err);
        return 0;
    }
    w->redis_backoff_ms = 100;
    log_info("redis.up", "redis=%s", w->cfg.redis_text);
    return 1;
}

typedef enum fetch { FETCH_FOUND, FETCH_ABSENT, FETCH_UNAVAILABLE } fetch_t;

/* GET <prefix>rubric:hash:<hash> into a loaded rubric. */
static fetch_t redis_fetch_rubric(worker_t *w, proto_str_t hash, grading_rubric_t **out)
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
    grading_error_t gerr;
    if (r->type == REDIS_REPLY_STRING) {
        if (grading_rubric_load_msgpack(r->str, r->len, out, &gerr) == GRADING_OK)
            f = FETCH_FOUND;
        else
            log_warn("rubric.unloadable", "hash=%.*s error=\"%s: %s\"", (int)hash.len, hash.ptr,
                     gerr.path, gerr.message);
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

static void task_fail(task_t *t, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void task_fail(task_t *t, const char *code, const char *fmt, ...)
{
    t->err_code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t->err_message, sizeof t->err_message, fmt, ap);
    va_end(ap);
}

/* Resolve t's rubric into t->rubric (pinned), or set a final error on t.
 * Returns 1 when Redis must be reached first. */
static int task_resolve(worker_t *w, task_t *t, const proto_jobmsg_t *jm)
{
    const proto_job_t *job = &jm->job;
    proto_str_t hash = jm->rubric_hash.len ? jm->rubric_hash : job->rubric_hash;
    grading_rubric_t *loaded = NULL;
    grading_error_t gerr;
    if (hash.len) {
        t->rubric = rubric_cache_get(w->cache, hash.ptr, hash.len);
        if (t->rubric)
            goto check_id;
        fetch_t f = redis_fetch_rubric(w, hash, &loaded);
        if (f == FETCH_FOUND && memcmp(grading_rubric_hash(loaded), hash.ptr, 64) == 0) {
            t->rubric = rubric_cache_put(w->cache, &loaded);
            goto check_id;
        }
        grading_rubric_destroy(&loaded);
        if (!job->rubric_inline.len) {
            if (f == FETCH_UNAVAILABLE)
                return 1;
            task_fail(t, "unknown_rubric",
                      "rubric version %.*s is not stored in Redis and the job carries no inline "
                      "rubric",
                      (int)hash.len, hash.ptr);
            return 0;
        }
    }
    if (!job->rubric_inline.len) {
        task_fail(t, "unknown_rubric",
                  "rubric '%.*s' could not be resolved to a stored version and the job carries "
                  "no inline rubric",
                  (int)job->rubric.len, job->rubric.ptr);
        return 0;
    }
    if (grading_rubric_load_json(job->rubric_inline.ptr, job->rubric_inline.len, &loaded, &gerr) !=
        GRADING_OK) {
        task_fail(t, grading_err_code(gerr.code), "inline rubric: %s%s%s", gerr.path,
                  gerr.path[0] ? ": " : "", gerr.message);
        return 0;
    }
    if (hash.len && memcmp(grading_rubric_hash(loaded), hash.ptr, 64) != 0) {
        task_fail(t, "rubric_hash_mismatch",
                  "the inline rubric hashes to %s, not to the pinned %.*s",
                  grading_rubric_hash(loaded), (int)hash.len, hash.ptr);
        grading_rubric_destroy(&loaded);
        return 0;
    }
    t->rubric = rubric_cache_put(w->cache, &loaded);
    if (t->rubric)
        redis_store_rubric(w, t->rubric);
check_id:
    if (!t->rubric) {
        task_fail(t, "internal_error", "out of memory while caching the rubric");
        return 0;
    }
    const char *id = grading_rubric_id(t->rubric);
    if (strlen(id) != job->rubric.len || memcmp(id, job->rubric.ptr, job->rubric.len) != 0) {
        task_fail(t, "rubric_hash_mismatch",
                  "the job names rubric '%.*s' but version %s belongs to rubric '%s'",
                  (int)job->rubric.len, job->rubric.ptr, grading_rubric_hash(t->rubric), id);
        rubric_cache_release(w->cache, t->rubric);
        t->rubric = NULL;
    }
    return 0;
}

/* ---- moving tasks ----------------------------------------------------- */

static void send_frames(broker_conn_t *bc, const char *cmd, const void *body, size_t len)
{
    zmq_send(bc->sock, PROTO_SIGNATURE, PROTO_SIGNATURE_LEN, ZMQ_SNDMORE);
    zmq_send(bc->sock, cmd, strlen(cmd), ZMQ_SNDMORE);
    zmq_send(bc->sock, body, len, 0);
    bc->last_sent_ms = clock_mono_ms();
}

/* Send broker bi's waiting results as one RESULTS. */
static void results_send(worker_t *w, size_t bi)
{
    broker_conn_t *bc = &w->brokers[bi];
    if (bc->nresults == 0)
        return;
    msgpack_sbuffer_clear(&w->out);
    if (proto_encode_results(&w->out, bc->results.data, bc->results.size, bc->nresults) == 0)
        send_frames(bc, "RESULTS", w->out.data, w->out.size);
    bc->nresults = 0;
    /* a result bigger than the batch alone leaves no big buffer behind */
    if (bc->results.alloc > 2 * WORKER_RESULTS_BYTES) {
        msgpack_sbuffer_destroy(&bc->results);
        msgpack_sbuffer_init(&bc->results);
    }
    if (w->out.alloc > 2 * WORKER_RESULTS_BYTES) {
        msgpack_sbuffer_destroy(&w->out);
        msgpack_sbuffer_init(&w->out);
    }
    msgpack_sbuffer_clear(&bc->results);
}

/* Send every waiting result: called once per turn of the loop, so a result
 * waits at most for the other results finished in the same turn. */
static void results_flush(worker_t *w)
{
    for (size_t i = 0; i < w->cfg.nbrokers; i++)
        results_send(w, i);
}

/* A RESULT body out to broker bi: into its RESULTS when it takes them
 * (sent when the batch is full or at the end of the turn), else alone. */
static void result_out(worker_t *w, size_t bi, const void *body, size_t len)
{
    broker_conn_t *bc = &w->brokers[bi];
    if (!bc->batch_ok || w->cfg.batch == 0) {
        send_frames(bc, "RESULT", body, len);
        return;
    }
    if (bc->nresults && bc->results.size + len > WORKER_RESULTS_BYTES)
        results_send(w, bi);
    if (msgpack_sbuffer_write(&bc->results, body, len) != 0) {
        send_frames(bc, "RESULT", body, len);
        return;
    }
    if (++bc->nresults >= w->cfg.batch)
        results_send(w, bi);
}

/* Send t's RESULT and forget t. */
static void task_finish(worker_t *w, task_t *t)
{
    if (t->result) {
        result_out(w, t->broker, t->result, t->result_len);
        if (t->ok) {
            w->graded++;
            log_debug("job.graded", "job_id=%s attempt=%u", t->job_id, t->attempt);
        } else {
            w->errors++;
            log_info("job.failed", "job_id=%s attempt=%u code=%s message=\"%s\"", t->job_id,
                     t->attempt, t->err_code ? t->err_code : "internal_error", t->err_message);
        }
    } else {
        log_error("job.unpacked", "job_id=%s reason=\"could not pack the RESULT\"", t->job_id);
    }
    if (t->rubric)
        rubric_cache_release(w->cache, t->rubric);
    w->held--;
    task_free(t);
}

/* Answer a task that failed before grading, on the main thread. */
static void task_finish_error(worker_t *w, task_t *t)
{
    proto_jobmsg_t jm;
    proto_error_t perr;
    if (proto_decode_job(w->dec, t->body, t->len, &jm, &perr) == PROTO_OK) {
        grading_result_t none = {0};
        task_pack_result(t, &w->cfg, &jm, &none, &w->out);
    }
    task_finish(w, t);
}

/* Resolve and route one new or waiting task (jm: its decoded JOB, or NULL
 * to decode it again). Returns 1 when it must keep waiting for Redis. */
static int task_route(worker_t *w, task_t *t, const proto_jobmsg_t *jm)
{
    proto_jobmsg_t again;
    proto_error_t perr;
    if (!jm) {
        if (proto_decode_job(w->dec, t->body, t->len, &again, &perr) != PROTO_OK)
            return 0;
        jm = &again;
    }
    if (task_resolve(w, t, jm))
        return 1;
    if (t->err_code) {
        task_finish_error(w, t);
    } else {
        t->next = NULL;
        if (w->to_pool_tail)
            w->to_pool_tail->next = t;
        else
            w->to_pool = t;
        w->to_pool_tail = t;
    }
    return 0;
}

static void job_received(worker_t *w, size_t bi, const void *body, size_t len)
{
    proto_jobmsg_t jm;
    proto_error_t perr;
    if (proto_decode_job(w->dec, body, len, &jm, &perr) != PROTO_OK ||
        jm.job.err.code != PROTO_OK) {
        /* Without a readable job there is nobody to answer; the broker's
         * time-to-run requeues it and its delivery limit ends it. */
        log_warn("job.undecodable", "code=%s reason=\"%s\"",
                 proto_err_code(perr.code ? perr.code : jm.job.err.code),
                 perr.code ? perr.message : jm.job.err.message);
        return;
    }
    task_t *t = calloc(1, sizeof *t);
    if (!t || !(t->body = malloc(len))) {
        free(t);
        log_error("job.dropped", "reason=\"out of memory\"");
        return;
    }
    memcpy(t->body, body, len);
    t->len = len;
    t->broker = bi;
    t->received_us = clock_wall_us();
    t->t0_us = clock_mono_us();
    proto_str_copy(jm.job.job_id, t->job_id, sizeof t->job_id);
    t->attempt = jm.attempt;
    t->ttr_ms = jm.ttr_ms;
    w->held++;
    if (task_route(w, t, &jm)) {
        t->next = w->waiting;
        w->waiting = t;
    }
}

/* Hand the tasks resolved this turn to the grading threads at once. */
static void pool_flush(worker_t *w)
{
    grader_pool_push_list(w->pool, w->to_pool);
    w->to_pool = w->to_pool_tail = NULL;
}

/* Retry tasks that waited for Redis. */
static void retry_waiting(worker_t *w)
{
    task_t *list = w->waiting;
    w->waiting = NULL;
    while (list) {
        task_t *t = list;
        list = t->next;
        if (task_route(w, t, NULL)) {
            t->next = w->waiting;
            w->waiting = t;
        }
    }
}

/* Send the RESULTs of every task the grading threads finished. */
static void tasks_done(worker_t *w)
{
    task_t *t = grader_pool_take_done(w->pool);
    while (t) {
        task_t *next = t->next;
        task_finish(w, t);
        t = next;
    }
}

/* Drop a job the broker took back: wherever it is, it gets no RESULT. */
static void job_cancel(worker_t *w, const proto_cancel_t *c)
{
    char id[PROTO_MAX_JOB_ID + 1];
    proto_str_copy(c->job_id, id, sizeof id);
    task_t *dropped = NULL;
    if (!grader_pool_cancel(w->pool, id, c->attempt, &dropped))
        return;
    w->held--;
    if (dropped) {
        log_info("job.cancelled", "job_id=%s attempt=%u", dropped->job_id, dropped->attempt);
        if (dropped->rubric)
            rubric_cache_release(w->cache, dropped->rubric);
        task_free(dropped);
    } else {
        /* Its rubric stays pinned: the abandoned thread may still read it. */
        log_warn("job.abandoned", "job_id=%s attempt=%u reason=\"cancelled by the broker\"", id,
                 c->attempt);
    }
}

static void on_runaway(const task_t *t, int64_t ran_ms, void *arg)
{
    worker_t *w = arg;
    w->held--;
    log_warn("job.abandoned", "job_id=%s attempt=%u reason=\"time-to-run passed\" running_ms=%lld",
             t->job_id, t->attempt, (long long)ran_ms);
}

/* ---- broker connections ----------------------------------------------- */

static void send_simple(worker_t *w, size_t bi, proto_cmd_t cmd)
{
    if (cmd == PROTO_CMD_READY) {
        /* Results waiting go out first; the broker answering this READY may
         * be a new one that has not said it takes RESULTS. */
        results_send(w, bi);
        w->brokers[bi].batch_ok = 0;
    }
    msgpack_sbuffer_clear(&w->out);
    int rc;
    if (cmd == PROTO_CMD_READY) {
        proto_ready_t rd = {.worker = proto_str(w->cfg.id),
                            .credit = (uint32_t)w->cfg.credit,
                            .engine = proto_str(GRADING_ENGINE),
                            .threads = (uint32_t)w->cfg.threads,
                            .batch = (uint32_t)w->cfg.batch};
        rc = proto_encode_ready(&w->out, &rd);
    } else if (cmd == PROTO_CMD_HEARTBEAT) {
        proto_heartbeat_t hb = {.inflight = (uint32_t)w->held};
        rc = proto_encode_heartbeat(&w->out, &hb);
    } else {
        proto_disconnect_t d = {.reason = proto_str("drain")};
        rc = proto_encode_disconnect(&w->out, &d);
    }
    if (rc == 0)
        send_frames(&w->brokers[bi], proto_cmd_name(cmd), w->out.data, w->out.size);
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
    if (bc->silent) {
        bc->silent = 0;
        log_info("broker.back", "broker=%s", bc->endpoint);
    }
    proto_cmd_t cmd;
    if (n != 3 || !proto_signature_ok(zmq_msg_data(&frames[0]), zmq_msg_size(&frames[0])) ||
        proto_cmd_parse(zmq_msg_data(&frames[1]), zmq_msg_size(&frames[1]), &cmd) != PROTO_OK) {
        log_warn("broker.bad_message", "broker=%s frames=%d", bc->endpoint, n);
        return;
    }
    const void *body = zmq_msg_data(&frames[2]);
    size_t len = zmq_msg_size(&frames[2]);
    proto_error_t perr;
    switch (cmd) {
    case PROTO_CMD_JOB:
        job_received(w, bi, body, len);
        proto_decoder_trim(w->dec, 1u << 20);
        return;
    case PROTO_CMD_JOBS: {
        uint32_t count = 0;
        if (proto_decode_jobs(body, len, WORKER_MAX_JOB_BODY, w->items, PROTO_MAX_BATCH_ITEMS,
                              &count, &perr) != PROTO_OK) {
            /* Nobody to answer: the broker's time-to-run takes the jobs back. */
            log_warn("jobs.undecodable", "code=%s reason=\"%s\"", proto_err_code(perr.code),
                     perr.message);
            return;
        }
        bc->batch_ok = w->cfg.batch > 0;
        for (uint32_t i = 0; i < count; i++)
            job_received(w, bi, w->items[i].ptr, w->items[i].len);
        proto_decoder_trim(w->dec, 1u << 20);
        return;
    }
    case PROTO_CMD_HEARTBEAT:
        return;
    case PROTO_CMD_CANCEL: {
        proto_cancel_t c;
        pool_flush(w); /* a job received this turn is found in the pool */
        if (proto_decode_cancel(w->dec, body, len, &c, &perr) == PROTO_OK)
            job_cancel(w, &c);
        return;
    }
    case PROTO_CMD_DISCONNECT: {
        proto_disconnect_t d;
        if (proto_decode_disconnect(w->dec, body, len, &d, &perr) != PROTO_OK)
            return;
        if (proto_str_eq(d.reason, "ack")) {
            bc->acked = 1;
        } else if (w->draining) {
            bc->acked = 1; /* the broker is leaving too: nothing more will come */
        } else if (proto_str_eq(d.reason, "shutting_down")) {
            /* Results still go out on this socket while it lasts; liveness
             * then remakes the connection to the broker's successor. */
            log_info("broker.leaving", "broker=%s", bc->endpoint);
        } else {
            log_info("broker.rejoin", "broker=%s reason=%.*s", bc->endpoint, (int)d.reason.len,
                     d.reason.ptr);
            send_simple(w, bi, PROTO_CMD_READY);
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

/* Heartbeats out; note a broker that has gone silent. The socket is kept:
 * ZeroMQ reconnects TCP by itself, a restarted broker answers our next
 * heartbeat with DISCONNECT unknown_worker (we then say READY), and a new
 * socket would change our identity and make a merely slow broker requeue
 * every job we hold. */
static void heartbeats(worker_t *w)
{
    int64_t now = clock_mono_ms();
    int64_t dead_after = (int64_t)(w->cfg.heartbeat_ms * w->cfg.liveness);
    for (size_t i = 0; i < w->cfg.nbrokers; i++) {
        broker_conn_t *bc = &w->brokers[i];
        if (now - bc->last_recv_ms > dead_after) {
            broker_drain(w, i); /* judge silence only after reading what waits */
            if (now - bc->last_recv_ms > dead_after) {
                if (w->draining) {
                    bc->acked = 1; /* nobody left to hand jobs back to */
                    continue;
                }
                if (!bc->silent) {
                    bc->silent = 1;
                    log_warn("broker.silent", "broker=%s silent_ms=%lld", bc->endpoint,
                             (long long)(now - bc->last_recv_ms));
                }
            }
        }
        if (now - bc->last_sent_ms >= (int64_t)w->cfg.heartbeat_ms)
            send_simple(w, i, PROTO_CMD_HEARTBEAT);
    }
}

/* ---- life cycle ------------------------------------------------------- */

/* glibc gives each thread that allocates its own malloc arena, which holds
 * on to the memory it freed: with one grading thread, the main thread's
 * arena and the grader's together kept about 2 MB more resident than one
 * shared arena. A grader per arena keeps graders from contending; the main
 * thread allocates little and shares. MALLOC_ARENA_MAX, when set, wins. */
static void malloc_arenas(size_t threads)
{
    if (!getenv("MALLOC_ARENA_MAX"))
        mallopt(M_ARENA_MAX, (int)threads);
}

worker_t *worker_new(const worker_config_t *cfg, char *err, size_t errlen, int *exit_code)
{
    *exit_code = 2;
    malloc_arenas(cfg->threads);
    worker_t *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    w->cfg = *cfg;
    w->redis_backoff_ms = 100;
    msgpack_sbuffer_init(&w->out);
    w->cache = rubric_cache_new(cfg->cache_size);
    w->dec = proto_decoder_new(WORKER_MAX_JOB_BODY);
    w->items = calloc(PROTO_MAX_BATCH_ITEMS, sizeof *w->items);
    w->ctx = zmq_ctx_new();
    if (!w->cache || !w->dec || !w->items || !w->ctx) {
        snprintf(err, errlen, "out of memory");
        worker_destroy(&w);
        return NULL;
    }
    w->redis = redis_url_connect(&cfg->redis, (int)cfg->redis_timeout_ms, err, errlen);
    if (!w->redis) {
        size_t n = strlen(err);
        snprintf(err + n, errlen - n,
                 " (is redis-server running? set --redis or SCORELINE_REDIS_URL)");
        *exit_code = 3;
        worker_destroy(&w);
        return NULL;
    }
    w->pool = grader_pool_new(cfg->threads, &w->cfg, err, errlen);
    if (!w->pool) {
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

static void task_list_free(task_t *t)
{
    while (t) {
        task_t *next = t->next;
        task_free(t);
        t = next;
    }
}

void worker_destroy(worker_t **self_p)
{
    worker_t *w = *self_p;
    if (!w)
        return;
    for (size_t i = 0; i < WORKER_MAX_BROKERS; i++) {
        if (w->brokers[i].sock)
            zmq_close(w->brokers[i].sock);
        msgpack_sbuffer_destroy(&w->brokers[i].results);
    }
    grader_pool_destroy(&w->pool);
    if (w->ctx)
        zmq_ctx_term(w->ctx);
    if (w->redis)
        redisFree(w->redis);
    task_list_free(w->waiting);
    task_list_free(w->to_pool);
    rubric_cache_destroy(&w->cache);
    proto_decoder_destroy(&w->dec);
    free(w->items);
    msgpack_sbuffer_destroy(&w->out);
    free(w);
    *self_p = NULL;
}

int worker_stranded(worker_t *w)
{
    return w->pool && grader_pool_stranded(w->pool) > 0;
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
    log_info("worker.ready", "worker=%s brokers=%s credit=%llu threads=%llu redis=%s engine=%s",
             w->cfg.id, brokers, (unsigned long long)w->cfg.credit,
             (unsigned long long)w->cfg.threads, w->cfg.redis_text, GRADING_ENGINE);
    int rc = 0;
    for (;;) {
        if (worker_stopping && !w->draining) {
            w->draining = 1;
            w->drain_deadline_ms = clock_mono_ms() + (int64_t)w->cfg.grace_ms;
            log_info("worker.draining", "held=%zu", w->held);
            for (size_t i = 0; i < w->cfg.nbrokers; i++)
                send_simple(w, i, PROTO_CMD_DISCONNECT);
        }
        if (w->draining &&
            ((all_acked(w) && w->held == 0) || clock_mono_ms() >= w->drain_deadline_ms))
            break;
        uint64_t abandoned = grader_pool_abandoned(w->pool);
        if (abandoned > w->cfg.max_abandoned) {
            log_error("worker.runaways", "abandoned=%llu limit=%llu reason=\"too many gradings "
                      "outlived their time-to-run; exiting so a supervisor restarts the process\"",
                      (unsigned long long)abandoned, (unsigned long long)w->cfg.max_abandoned);
            rc = 4;
            break;
        }
        zmq_pollitem_t items[WORKER_MAX_BROKERS + 1];
        size_t nb = w->cfg.nbrokers, n = 0;
        for (size_t i = 0; i < nb; i++)
            items[n++] = (zmq_pollitem_t){w->brokers[i].sock, 0, ZMQ_POLLIN, 0};
        items[n++] = (zmq_pollitem_t){NULL, grader_pool_fd(w->pool), ZMQ_POLLIN, 0};
        long timeout = (long)w->cfg.heartbeat_ms / 4;
        if (w->waiting && timeout > 100)
            timeout = 100;
        /* The pool wakes us for batches of results; look every millisecond
         * while it holds work, so no result waits longer. */
        if (w->held > 0 && grader_pool_busy(w->pool) > 0)
            timeout = 1;
        if (zmq_poll(items, (int)n, timeout) < 0 && errno != EINTR) {
            log_error("worker.poll", "error=\"%s\"", zmq_strerror(errno));
            rc = 1;
            break;
        }
        tasks_done(w);
        for (size_t i = 0; i < nb; i++)
            if (items[i].revents & ZMQ_POLLIN)
                broker_drain(w, i);
        if (w->waiting)
            retry_waiting(w);
        pool_flush(w);
        results_flush(w);
        grader_pool_abandon_runaways(w->pool, clock_mono_ms(), on_runaway, w);
        heartbeats(w);
    }
    results_flush(w);
    log_info("worker.stopped",
             "graded=%llu errors=%llu abandoned=%llu unfinished=%zu cache_hits=%llu "
             "cache_misses=%llu",
             (unsigned long long)w->graded, (unsigned long long)w->errors,
             (unsigned long long)grader_pool_abandoned(w->pool), w->held,
             (unsigned long long)rubric_cache_hits(w->cache),
             (unsigned long long)rubric_cache_misses(w->cache));
    return rc;
}
