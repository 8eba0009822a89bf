/*
 * broker.c - the broker's loop and message handlers (see broker.h).
 *
 * Reliability rules carried out here (DESIGN.md section 3):
 *  - a job is ACCEPTED only after journal_submit has stored it in Redis;
 *  - a job id the broker holds (queued or running) or Redis knows as done is
 *    never graded again: the submitter gets its state, or its stored event;
 *  - the broker is the single emission point: a RESULT is stored, streamed,
 *    published and forwarded only when journal_complete says it is the first
 *    for its job id, and the worker's bytes are forwarded unchanged;
 *  - a worker silent for liveness x heartbeat, or a job past its
 *    time-to-run, sends the job back to the head of the queue;
 *  - while Redis is away, new jobs are refused (journal_unavailable) and
 *    received results wait in memory until they can be stored.
 */
#include "broker/broker.h"

#include "broker/journal.h"
#include "broker/metrics.h"
#include "broker/queue.h"
#include "common/clock.h"
#include "common/log.h"
#include "proto/proto.h"

#include <errno.h>
#include <malloc.h>
#include <stdarg.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define BROKER_MAX_FRAMES 8
#define BROKER_READ_BURST 256    /* messages read per socket per turn */
#define BROKER_PENDING_MAX 65536 /* results waiting for Redis before we stop reading */
/* Released journal entries whose XDEL is sent at the end of a turn rather
 * than with the next Redis call or the next tick (see the main loop). */
#define BROKER_XDEL_BATCH 256
#define BROKER_TURN_BYTES (2u << 20) /* SUBMIT bytes handled in one turn */
#define BROKER_SWEEP_MS 60000          /* a journal sweep pass at least this often */
#define BROKER_SWEEP_PAGE 16           /* journal entries read per sweep step */
#define BROKER_STORE_BATCH 2048       /* results per batch handed to Redis */
#define BROKER_STORE_BYTES (4u << 20)  /* event bytes per batch handed to Redis */
#define BROKER_STORING_MAX 2           /* result batches waiting for Redis at a time */
/* Deliveries, charged or not, per --max-attempts before a job is given up:
 * bounds a job that kills every worker before it says anything (never
 * charged, see worker_charge_lost). */
#define BROKER_DELIVERIES_PER_ATTEMPT 4
#define BROKER_BOXES 64                /* JOBS / RESULTS being filled at once */

static volatile sig_atomic_t broker_stopping = 0;

void broker_stop(void)
{
    broker_stopping = 1;
}

/* A result received from a worker, waiting to be stored and emitted. */
/* Several JOB or RESULT bodies on their way to one peer in one JOBS or
 * RESULTS message. */
typedef struct outbox {
    uint8_t identity[QUEUE_MAX_IDENTITY];
    uint8_t identity_len;
    queue_worker_t *worker; /* JOBS: the worker, NULL for a submitter's RESULTS */
    msgpack_sbuffer elems;  /* the bodies, back to back */
    uint32_t n;
    queue_job_t **jobs; /* JOBS: the jobs sent, to take back if the send fails */
    size_t cap_jobs;
} outbox_t;

typedef struct pending_result {
    char job_id[PROTO_MAX_JOB_ID + 1];
    jentry_t *entry; /* journal entry recording the job, or NULL */
    uint8_t held;    /* the broker held the job when the result came */
    uint8_t retried; /* an earlier try to store it got no answer */
    uint8_t reply_to[QUEUE_MAX_IDENTITY];
    uint8_t reply_to_len;
    uint8_t batch_results; /* the submitter takes RESULTS messages */
    uint8_t is_error;
    uint64_t accepted_us, started_us, duration_us;
    uint8_t *event;
    size_t event_len;
} pending_result_t;

struct broker {
    broker_config_t cfg;
    void *ctx;
    void *submit; /* ROUTER */
    void *work;   /* ROUTER */
    void *events; /* PUB */
    queue_t *queue;
    journal_t *journal;
    metrics_http_t *http;
    metrics_t m;
    proto_decoder_t *dec;
    msgpack_sbuffer out;  /* body being encoded */
    msgpack_sbuffer jobs; /* packed job maps of the SUBMITs being handled */
    pending_result_t *pending;
    size_t npending, cap_pending;
    outbox_t job_boxes[BROKER_BOXES], reply_boxes[BROKER_BOXES];
    size_t njob_boxes, nreply_boxes;
    size_t pending_head; /* pending[pending_head..npending) wait; those before went to Redis */
    struct submit_turn *turn; /* the SUBMITs being journaled, when submit_busy */
    int submit_busy;          /* a journal_submit is waiting for Redis */
    size_t storing;           /* journal_complete batches waiting for Redis */
    int sweeping;             /* a journal_scan page is waiting for Redis */
    int64_t next_tick_ms;
    int64_t next_sweep_ms;
    char sweep_cursor[64];
    unsigned swept_epoch; /* the Redis connection the last sweep pass began on */
    int64_t stop_deadline_ms;
    int draining;
};

/* ---- sending ---------------------------------------------------------- */

/* Send [identity][""?]["SCL1"][cmd][body] on a ROUTER. */
/* Returns 0, or -1 with errno when the message could not be queued: on the
 * work socket (ZMQ_ROUTER_MANDATORY) EHOSTUNREACH means the worker's
 * connection is gone, EAGAIN that its pipe is full. */
static int send_routed(void *sock, const void *identity, size_t id_len, int delimiter,
                       proto_cmd_t cmd, const void *body, size_t body_len)
{
    const char *name = proto_cmd_name(cmd);
    if (zmq_send(sock, identity, id_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return -1;
    if (delimiter)
        zmq_send(sock, "", 0, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(sock, PROTO_SIGNATURE, PROTO_SIGNATURE_LEN, ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(sock, name, strlen(name), ZMQ_SNDMORE | ZMQ_DONTWAIT);
    zmq_send(sock, body, body_len, ZMQ_DONTWAIT);
    return 0;
}

static int send_to_worker(broker_t *b, queue_worker_t *w, proto_cmd_t cmd, const void *body,
                          size_t len)
{
    w->last_sent_ms = clock_mono_ms();
    return send_routed(b->work, w->identity, w->identity_len, 0, cmd, body, len);
}

static void worker_charge_lost(broker_t *b, queue_worker_t *w, const char *why);

/* Count refused jobs by their wire code. */
static void count_rejection(broker_t *b, const char *code)
{
    if (strcmp(code, "queue_full") == 0)
        b->m.rejected_queue_full++;
    else if (strcmp(code, "unknown_rubric") == 0)
        b->m.rejected_unknown_rubric++;
    else if (strcmp(code, "journal_unavailable") == 0 || strcmp(code, "shutting_down") == 0)
        b->m.rejected_unavailable++;
    else
        b->m.rejected_invalid++;
}

/* Message-level rejection: the whole SUBMIT is refused. */
static void reject_message(broker_t *b, const void *identity, size_t id_len, int delimiter,
                           uint64_t seq, const char *code, const char *message)
{
    proto_rejected_t rj = {.seq = seq, .code = proto_str(code), .message = proto_str(message)};
    msgpack_sbuffer_clear(&b->out);
    if (proto_encode_rejected(&b->out, &rj) == 0)
        send_routed(b->submit, identity, id_len, delimiter, PROTO_CMD_REJECTED, b->out.data,
                    b->out.size);
    count_rejection(b, code);
    log_info("submit.rejected", "code=%s message=\"%s\"", code, message);
}

/* ---- receiving -------------------------------------------------------- */

typedef struct frames {
    zmq_msg_t f[BROKER_MAX_FRAMES];
    int n;        /* frames kept */
    int overflow; /* more frames than BROKER_MAX_FRAMES */
} frames_t;

/* Read one whole multipart message without blocking. 0 on success, -1 when
 * nothing is waiting. */
static int frames_recv(void *sock, frames_t *fr)
{
    fr->n = 0;
    fr->overflow = 0;
    int more = 1;
    while (more) {
        zmq_msg_t tmp;
        zmq_msg_t *m = fr->n < BROKER_MAX_FRAMES ? &fr->f[fr->n] : &tmp;
        zmq_msg_init(m);
        if (zmq_msg_recv(m, sock, fr->n == 0 && !fr->overflow ? ZMQ_DONTWAIT : 0) < 0) {
            zmq_msg_close(m);
            return fr->n ? 0 : -1;
        }
        more = zmq_msg_more(m);
        if (m == &tmp) {
            fr->overflow = 1;
            zmq_msg_close(m);
        } else {
            fr->n++;
        }
    }
    return 0;
}

static void frames_close(frames_t *fr)
{
    for (int i = 0; i < fr->n; i++)
        zmq_msg_close(&fr->f[i]);
    fr->n = 0;
}

static const void *fdata(frames_t *fr, int i)
{
    return zmq_msg_data(&fr->f[i]);
}

static size_t fsize(frames_t *fr, int i)
{
    return zmq_msg_size(&fr->f[i]);
}

/* Check [identity][""?][sig][cmd][body]; sets *first to the index of the
 * signature frame and *cmd. Returns NULL or the reason for a rejection
 * (and its wire code in *code). */
static const char *frames_check(frames_t *fr, int *first, proto_cmd_t *cmd, const char **code)
{
    int i = 1;
    if (fr->n > i && fsize(fr, i) == 0)
        i++; /* REQ-style empty delimiter */
    *first = i;
    if (fr->overflow || fr->n - i != 3) {
        *code = proto_err_code(PROTO_ERR_FRAMES);
        return "expected exactly three frames: \"SCL1\", a command and a msgpack body";
    }
    if (!proto_signature_ok(fdata(fr, i), fsize(fr, i))) {
        *code = proto_err_code(PROTO_ERR_SIGNATURE);
        return "the first frame must be the protocol signature \"SCL1\"";
    }
    if (proto_cmd_parse(fdata(fr, i + 1), fsize(fr, i + 1), cmd) != PROTO_OK) {
        *code = proto_err_code(PROTO_ERR_COMMAND);
        return "unknown command";
    }
    return NULL;
}

/* ---- submit side ------------------------------------------------------ */

/* One job of a SUBMIT being handled this turn. */
typedef struct staged_job {
    int msg;          /* index of its SUBMIT in the turn */
    int rejected;     /* 1: refused before journaling (code/message set) */
    const char *code; /* wire code when rejected */
    char message[PROTO_MAX_MESSAGE];
    proto_str_t job_id;
    proto_job_state_t state;
    int duplicate;
    size_t body_off, body_len; /* in b->jobs */
    uint32_t ttr_ms;
    int journal_index; /* index into the journal batch, -1 if not journaled */
} staged_job_t;

/* One SUBMIT message of this turn. */
typedef struct staged_msg {
    uint8_t identity[QUEUE_MAX_IDENTITY];
    size_t identity_len;
    int delimiter;
    int batch_results;
    uint64_t seq;
    size_t first_job, njobs;
} staged_msg_t;

typedef struct submit_turn {
    uint64_t now_us; /* acceptance time of the turn's jobs */
    staged_msg_t *msgs;
    size_t nmsgs, cap_msgs;
    staged_job_t *jobs;
    size_t njobs, cap_jobs;
    journal_submit_item_t *items;
    size_t nitems, cap_items;
    /* decoded strings point into these frames until the turn ends */
    frames_t *frames;
    size_t nframes, cap_frames;
    proto_decoder_t **decoders;
    size_t ndecoders;
} submit_turn_t;

static void *grow(void *p, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return p;
    size_t n = *cap ? *cap : 16;
    while (n < need)
        n *= 2;
    void *q = realloc(p, n * elem);
    if (!q)
        return NULL;
    *cap = n;
    return q;
}

static void stage_reject(staged_job_t *sj, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void stage_reject(staged_job_t *sj, const char *code, const char *fmt, ...)
{
    sj->rejected = 1;
    sj->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(sj->message, sizeof sj->message, fmt, ap);
    va_end(ap);
}

/* Decode one SUBMIT and stage its jobs. The frames stay open until the end
 * of the turn because staged strings point into them. */
static void submit_stage(broker_t *b, submit_turn_t *t, frames_t *fr, int first)
{
    const void *identity = fdata(fr, 0);
    size_t id_len = fsize(fr, 0);
    int delimiter = first == 2;
    if (id_len > QUEUE_MAX_IDENTITY)
        return;
    b->m.submits++;
    /* Each SUBMIT needs its own decoder: its jobs are referenced until the
     * turn is answered. */
    if (t->ndecoders >= BROKER_READ_BURST)
        return;
    proto_decoder_t *d = t->decoders[t->ndecoders];
    proto_submit_t sub;
    proto_error_t perr;
    if (b->draining) {
        reject_message(b, identity, id_len, delimiter, 0, "shutting_down",
                       "the broker is shutting down: submit again shortly (to another broker)");
        return;
    }
    if (proto_decode_submit(d, fdata(fr, first + 2), fsize(fr, first + 2), &sub, &perr) !=
        PROTO_OK) {
        reject_message(b, identity, id_len, delimiter, 0, proto_err_code(perr.code),
                       perr.message);
        return;
    }
    t->ndecoders++;
    t->msgs = grow(t->msgs, &t->cap_msgs, t->nmsgs + 1, sizeof *t->msgs);
    t->jobs = grow(t->jobs, &t->cap_jobs, t->njobs + sub.njobs, sizeof *t->jobs);
    if (!t->msgs || !t->jobs)
        return;
    staged_msg_t *sm = &t->msgs[t->nmsgs++];
    memcpy(sm->identity, identity, id_len);
    sm->identity_len = id_len;
    sm->delimiter = delimiter;
    sm->seq = sub.seq;
    sm->batch_results = sub.batch_results;
    sm->first_job = t->njobs;
    sm->njobs = sub.njobs;
    for (uint32_t i = 0; i < sub.njobs; i++) {
        proto_job_t *pj = &sub.jobs[i];
        staged_job_t *sj = &t->jobs[t->njobs++];
        memset(sj, 0, sizeof *sj);
        sj->msg = (int)(t->nmsgs - 1);
        sj->journal_index = -1;
        sj->job_id = pj->job_id;
        if (pj->err.code != PROTO_OK) {
            stage_reject(sj, proto_err_code(pj->err.code), "%s", pj->err.message);
            continue;
        }
        queue_job_t *held = queue_job_find(b->queue, pj->job_id.ptr, pj->job_id.len);
        if (held) {
            sj->duplicate = 1;
            sj->state = held->state == QUEUE_JOB_QUEUED ? PROTO_STATE_QUEUED : PROTO_STATE_RUNNING;
            /* The newest submitter is the one waiting: results go there. */
            memcpy(held->reply_to, identity, id_len);
            held->reply_to_len = (uint8_t)id_len;
            held->batch_results = sub.batch_results;
            continue;
        }
        if (!journal_is_up(b->journal)) {
            stage_reject(sj, "journal_unavailable",
                         "the broker cannot reach Redis to journal the job: retry shortly");
            continue;
        }
        if (queue_jobs(b->queue) + t->nitems >= queue_capacity(b->queue)) {
            stage_reject(sj, "queue_full",
                         "the queue holds its maximum of %zu jobs: retry later",
                         queue_capacity(b->queue));
            continue;
        }
        sj->body_off = b->jobs.size;
        msgpack_packer pk;
        msgpack_packer_init(&pk, &b->jobs, msgpack_sbuffer_write);
        if (msgpack_pack_object(&pk, *pj->raw)) {
            stage_reject(sj, "internal_error", "out of memory while journaling the job");
            continue;
        }
        sj->body_len = b->jobs.size - sj->body_off;
        sj->ttr_ms = pj->ttr_ms ? pj->ttr_ms : (uint32_t)b->cfg.ttr_ms;
        t->items = grow(t->items, &t->cap_items, t->nitems + 1, sizeof *t->items);
        if (!t->items)
            return;
        journal_submit_item_t *it = &t->items[t->nitems];
        memset(it, 0, sizeof *it);
        it->job_id = pj->job_id.ptr;
        it->job_id_len = pj->job_id.len;
        it->rubric = pj->rubric.ptr;
        it->rubric_len = pj->rubric.len;
        it->hash = pj->rubric_hash.len ? pj->rubric_hash.ptr : "";
        it->hash_len = pj->rubric_hash.len;
        it->has_inline = pj->rubric_inline.len > 0;
        sj->journal_index = (int)t->nitems++;
    }
}

/* Journal what was staged, then answer every SUBMIT of the turn: one
 * ACCEPTED listing its accepted jobs in order, one REJECTED listing the
 * refused ones, then the stored RESULT of every job that was already done. */
static void submit_answer(broker_t *b, submit_turn_t *t, int journaled);
static void submit_turn_end(broker_t *b, submit_turn_t *t);

static void submit_journaled(void *arg, int ok)
{
    broker_t *b = arg;
    b->submit_busy = 0;
    submit_answer(b, b->turn, ok);
    submit_turn_end(b, b->turn);
}

/* Journal what was staged (asynchronously: submit_journaled answers when
 * Redis has), or answer now when nothing needs Redis. */
static void submit_finish(broker_t *b, submit_turn_t *t)
{
    t->now_us = clock_wall_us();
    for (size_t i = 0; i < t->njobs; i++) {
        staged_job_t *sj = &t->jobs[i];
        if (sj->journal_index >= 0) {
            t->items[sj->journal_index].body = b->jobs.data + sj->body_off;
            t->items[sj->journal_index].body_len = sj->body_len;
        }
    }
    if (t->nitems) {
        b->submit_busy = 1;
        if (journal_submit(b->journal, t->now_us, t->items, t->nitems, submit_journaled, b) == 0)
            return;
        b->submit_busy = 0;
    }
    submit_answer(b, t, t->nitems == 0);
    submit_turn_end(b, t);
}

/* Answer every SUBMIT of the turn once its jobs are journaled (or not). */
static void submit_answer(broker_t *b, submit_turn_t *t, int journaled)
{
    uint64_t now_us = t->now_us;
    if (!journaled)
        log_warn("submit.unjournaled", "jobs=%zu error=\"%s\"", t->nitems,
                 journal_error(b->journal));
    for (size_t i = 0; i < t->njobs; i++) {
        staged_job_t *sj = &t->jobs[i];
        if (sj->journal_index < 0)
            continue;
        journal_submit_item_t *it = &t->items[sj->journal_index];
        if (!journaled) {
            stage_reject(sj, "journal_unavailable",
                         "the broker lost Redis while journaling the job: retry shortly");
            continue;
        }
        if (it->outcome == JOURNAL_DONE) {
            sj->duplicate = 1;
            sj->state = PROTO_STATE_DONE;
            continue;
        }
        if (it->outcome == JOURNAL_DEAD) {
            stage_reject(sj, "dead_letter",
                         "the job was given up earlier (%s); 'scoreline dead retry' submits it "
                         "again",
                         it->event ? it->event : "see scoreline dead show");
            continue;
        }
        if (it->outcome == JOURNAL_UNKNOWN_RUBRIC) {
            char rubric[PROTO_MAX_NAME + 1];
            proto_str_copy(proto_strn(it->rubric, it->rubric_len), rubric, sizeof rubric);
            if (it->hash_len)
                stage_reject(sj, "unknown_rubric",
                             "rubric '%s' version %.*s is not stored: push it with "
                             "'scoreline rubric push' or send it inline",
                             rubric, (int)it->hash_len, it->hash);
            else
                stage_reject(sj, "unknown_rubric",
                             "rubric '%s' is not stored: push it with 'scoreline rubric push' "
                             "or send it inline",
                             rubric);
            continue;
        }
        queue_job_t *job = queue_job_new(it->job_id, it->job_id_len, it->body, it->body_len);
        if (!job) {
            stage_reject(sj, "internal_error", "out of memory");
            continue;
        }
        memcpy(job->hash, it->resolved_hash, sizeof job->hash);
        job->entry = it->entry;
        job->accepted_us = now_us;
        job->ttr_ms = sj->ttr_ms;
        staged_msg_t *sm = &t->msgs[sj->msg];
        memcpy(job->reply_to, sm->identity, sm->identity_len);
        job->reply_to_len = (uint8_t)sm->identity_len;
        job->batch_results = (uint8_t)sm->batch_results;
        queue_err_t qe = queue_job_add(b->queue, job);
        if (qe == QUEUE_OK) {
            sj->state = PROTO_STATE_QUEUED;
            b->m.accepted++;
        } else {
            /* The same id twice in one turn: the second entry is redundant. */
            queue_job_free(job);
            if (qe == QUEUE_ERR_DUPLICATE) {
                sj->duplicate = 1;
                sj->state = PROTO_STATE_QUEUED;
            } else {
                stage_reject(sj, "queue_full", "the queue is full: retry later");
            }
            journal_release(b->journal, it->entry);
        }
    }

    for (size_t mi = 0; mi < t->nmsgs; mi++) {
        staged_msg_t *sm = &t->msgs[mi];
        proto_accepted_job_t *acc = calloc(sm->njobs ? sm->njobs : 1, sizeof *acc);
        proto_rejected_job_t *rej = calloc(sm->njobs ? sm->njobs : 1, sizeof *rej);
        if (!acc || !rej) {
            free(acc);
            free(rej);
            continue;
        }
        uint32_t na = 0, nr = 0;
        for (size_t k = 0; k < sm->njobs; k++) {
            staged_job_t *sj = &t->jobs[sm->first_job + k];
            if (sj->rejected) {
                rej[nr].job_id = sj->job_id;
                rej[nr].code = proto_str(sj->code);
                rej[nr].message = proto_str(sj->message);
                nr++;
                count_rejection(b, sj->code);
            } else {
                acc[na].job_id = sj->job_id;
                acc[na].state = sj->state;
                acc[na].duplicate = (uint8_t)sj->duplicate;
                if (sj->duplicate)
                    b->m.duplicates++;
                na++;
            }
        }
        if (na) {
            proto_accepted_t a = {.seq = sm->seq, .njobs = na, .jobs = acc};
            msgpack_sbuffer_clear(&b->out);
            if (proto_encode_accepted(&b->out, &a) == 0)
                send_routed(b->submit, sm->identity, sm->identity_len, sm->delimiter,
                            PROTO_CMD_ACCEPTED, b->out.data, b->out.size);
        }
        if (nr) {
            proto_rejected_t r = {.seq = sm->seq,
                                  .code = proto_str("job_errors"),
                                  .message = proto_str("some jobs were refused: see jobs[]"),
                                  .njobs = nr,
                                  .jobs = rej};
            msgpack_sbuffer_clear(&b->out);
            if (proto_encode_rejected(&b->out, &r) == 0)
                send_routed(b->submit, sm->identity, sm->identity_len, sm->delimiter,
                            PROTO_CMD_REJECTED, b->out.data, b->out.size);
            log_info("submit.rejected", "jobs=%u first_code=%.*s", nr, (int)rej[0].code.len,
                     rej[0].code.ptr);
        }
        /* Jobs already done: their stored event follows the ACCEPTED. */
        for (size_t k = 0; k < sm->njobs; k++) {
            staged_job_t *sj = &t->jobs[sm->first_job + k];
            if (!sj->rejected && sj->state == PROTO_STATE_DONE && sj->journal_index >= 0) {
                journal_submit_item_t *it = &t->items[sj->journal_index];
                if (it->event)
                    send_routed(b->submit, sm->identity, sm->identity_len, sm->delimiter,
                                PROTO_CMD_RESULT, it->event, it->event_len);
            }
        }
        free(acc);
        free(rej);
    }
    for (size_t i = 0; i < t->nitems; i++)
        free(t->items[i].event);
}

/* Read and answer every waiting SUBMIT (bounded per turn). */
static void submit_drain(broker_t *b, submit_turn_t *t)
{
    t->nmsgs = t->njobs = t->nitems = t->ndecoders = 0;
    msgpack_sbuffer_clear(&b->jobs);
    size_t nframes = 0, turn_bytes = 0;
    for (int k = 0; k < BROKER_READ_BURST; k++) {
        frames_t *fr = &t->frames[nframes];
        if (frames_recv(b->submit, fr) != 0)
            break;
        nframes++;
        turn_bytes += fsize(fr, fr->n - 1);
        int first;
        proto_cmd_t cmd;
        const char *code = NULL;
        const char *why = frames_check(fr, &first, &cmd, &code);
        if (!why && cmd != PROTO_CMD_SUBMIT) {
            why = "submitters may only send SUBMIT on this endpoint";
            code = proto_err_code(PROTO_ERR_COMMAND);
        }
        if (!why && fsize(fr, first + 2) > b->cfg.max_message) {
            why = "the message body is larger than the broker's --max-message";
            code = proto_err_code(PROTO_ERR_TOO_LARGE);
        }
        if (why) {
            if (fsize(fr, 0) <= QUEUE_MAX_IDENTITY)
                reject_message(b, fdata(fr, 0), fsize(fr, 0), fr->n > 1 && fsize(fr, 1) == 0, 0,
                               code, why);
            continue;
        }
        submit_stage(b, t, fr, first);
        if (turn_bytes > BROKER_TURN_BYTES)
            break;
    }
    t->nframes = nframes;
    if (t->nmsgs)
        submit_finish(b, t); /* ends the turn, now or when Redis answers */
    else
        submit_turn_end(b, t);
}

/* The turn's SUBMITs are answered: close their frames. */
static void submit_turn_end(broker_t *b, submit_turn_t *t)
{
    for (size_t i = 0; i < t->nframes; i++)
        frames_close(&t->frames[i]);
    t->nframes = 0;
    /* Big batches leave big buffers behind: give them back. */
    for (size_t i = 0; i < t->ndecoders; i++)
        proto_decoder_trim(t->decoders[i], 256 * 1024);
    if (b->jobs.alloc > 4u << 20) {
        msgpack_sbuffer_destroy(&b->jobs);
        msgpack_sbuffer_init(&b->jobs);
    }
}

/* ---- work side -------------------------------------------------------- */

/* Keep a received RESULT until it is stored; the job is DONE now, which
 * frees its worker's credit, and stays held (a resubmission is a duplicate)
 * until Redis has stored the result. */
static void result_accept(broker_t *b, const void *body, size_t len, const proto_result_t *r)
{
    b->pending = grow(b->pending, &b->cap_pending, b->npending + 1, sizeof *b->pending);
    if (!b->pending)
        return;
    pending_result_t *p = &b->pending[b->npending];
    memset(p, 0, sizeof *p);
    p->event = malloc(len);
    if (!p->event)
        return;
    memcpy(p->event, body, len);
    p->event_len = len;
    proto_str_copy(r->job_id, p->job_id, sizeof p->job_id);
    p->is_error = !proto_str_eq(r->status, "ok");
    p->accepted_us = r->accepted_us;
    p->started_us = r->started_us;
    p->duration_us = r->duration_us;
    queue_job_t *job = queue_job_find(b->queue, r->job_id.ptr, r->job_id.len);
    if (job && job->state != QUEUE_JOB_DONE) {
        p->entry = job->entry;
        p->held = 1;
        memcpy(p->reply_to, job->reply_to, job->reply_to_len);
        p->reply_to_len = job->reply_to_len;
        p->batch_results = job->batch_results;
        queue_job_done(b->queue, job);
    }
    b->npending++;
}

/* ---- batches: JOBS to workers, RESULTS to submitters ---------------------- */

/* The box filling for this peer, or a new one (NULL when every box is in
 * use: the caller sends on its own). */
static outbox_t *outbox_for(outbox_t *boxes, size_t *nboxes, queue_worker_t *w,
                            const uint8_t *identity, size_t id_len)
{
    for (size_t i = *nboxes; i-- > 0;) {
        outbox_t *o = &boxes[i];
        if (o->worker == w && o->identity_len == id_len &&
            memcmp(o->identity, identity, id_len) == 0)
            return o;
    }
    if (*nboxes >= BROKER_BOXES)
        return NULL;
    outbox_t *o = &boxes[(*nboxes)++]; /* zeroed at start: an empty buffer */
    msgpack_sbuffer_clear(&o->elems);
    o->n = 0;
    o->worker = w;
    memcpy(o->identity, identity, id_len);
    o->identity_len = (uint8_t)id_len;
    return o;
}

static void outbox_release(outbox_t *o)
{
    /* A big batch leaves a big buffer behind: give it back. */
    if (o->elems.alloc > 4 * PROTO_BATCH_BYTES) {
        msgpack_sbuffer_destroy(&o->elems);
        msgpack_sbuffer_init(&o->elems);
    }
    msgpack_sbuffer_clear(&o->elems);
    o->n = 0;
}

static void outboxes_free(outbox_t *boxes)
{
    for (size_t i = 0; i < BROKER_BOXES; i++) {
        msgpack_sbuffer_destroy(&boxes[i].elems);
        free(boxes[i].jobs);
    }
}

/* Send a submitter's collected events as one RESULTS. */
static void reply_box_send(broker_t *b, outbox_t *o)
{
    msgpack_sbuffer_clear(&b->out);
    if (o->n && proto_encode_results(&b->out, o->elems.data, o->elems.size, o->n) == 0)
        send_routed(b->submit, o->identity, o->identity_len, 0, PROTO_CMD_RESULTS, b->out.data,
                    b->out.size);
    outbox_release(o);
}

/* Forward a stored event to its submitter: in a RESULTS being filled when
 * it asked for them (sent by replies_flush), else as a RESULT now. */
static void reply_result(broker_t *b, const pending_result_t *p)
{
    outbox_t *o = NULL;
    if (p->batch_results)
        o = outbox_for(b->reply_boxes, &b->nreply_boxes, NULL, p->reply_to, p->reply_to_len);
    if (!o) {
        send_routed(b->submit, p->reply_to, p->reply_to_len, 0, PROTO_CMD_RESULT, p->event,
                    p->event_len);
        return;
    }
    if (o->n && (o->n >= PROTO_MAX_BATCH_ITEMS || o->elems.size + p->event_len > PROTO_BATCH_BYTES))
        reply_box_send(b, o);
    if (msgpack_sbuffer_write(&o->elems, (const char *)p->event, p->event_len) != 0) {
        send_routed(b->submit, p->reply_to, p->reply_to_len, 0, PROTO_CMD_RESULT, p->event,
                    p->event_len);
        return;
    }
    o->n++;
}

/* One RESULTS per submitter for the results stored this turn. */
static void replies_flush(broker_t *b)
{
    for (size_t i = 0; i < b->nreply_boxes; i++)
        reply_box_send(b, &b->reply_boxes[i]);
    b->nreply_boxes = 0;
}

/* Results handed to Redis together (journal_complete). */
typedef struct store_batch {
    broker_t *b;
    pending_result_t *p;
    journal_result_item_t *items;
    size_t n;
} store_batch_t;

/* Redis answered a batch: emit the winners, finish their jobs; or, when
 * Redis was lost, keep the results to store them again. */
static void results_stored(void *arg, int ok)
{
    store_batch_t *sb = arg;
    broker_t *b = sb->b;
    b->storing--;
    if (!ok) {
        log_warn("results.unstored", "results=%zu error=\"%s\"", sb->n,
                 journal_error(b->journal));
        pending_result_t *np = grow(b->pending, &b->cap_pending, b->npending + sb->n,
                                    sizeof *b->pending);
        if (np) {
            b->pending = np;
            for (size_t i = 0; i < sb->n; i++)
                sb->p[i].retried = 1;
            memcpy(b->pending + b->npending, sb->p, sb->n * sizeof *sb->p);
            b->npending += sb->n;
        } else {
            for (size_t i = 0; i < sb->n; i++)
                free(sb->p[i].event);
        }
        free(sb->p);
        free(sb->items);
        free(sb);
        return;
    }
    uint64_t now_us = clock_wall_us();
    for (size_t i = 0; i < sb->n; i++) {
        pending_result_t *p = &sb->p[i];
        queue_job_t *job = NULL;
        if (p->held) {
            job = queue_job_find(b->queue, p->job_id, strlen(p->job_id));
            if (job && job->state != QUEUE_JOB_DONE)
                job = NULL;
            if (job) { /* the newest submitter of the id is the one waiting */
                memcpy(p->reply_to, job->reply_to, job->reply_to_len);
                p->reply_to_len = job->reply_to_len;
                p->batch_results = job->batch_results;
            }
        }
        /* 2: stored by a try whose answer was lost, so never emitted yet */
        if (sb->items[i].first == 1 || (sb->items[i].first == 2 && p->retried)) {
            if (p->reply_to_len)
                reply_result(b, p);
            zmq_send(b->events, PROTO_SIGNATURE, PROTO_SIGNATURE_LEN, ZMQ_SNDMORE | ZMQ_DONTWAIT);
            zmq_send(b->events, "RESULT", 6, ZMQ_SNDMORE | ZMQ_DONTWAIT);
            zmq_send(b->events, p->event, p->event_len, ZMQ_DONTWAIT);
            if (p->is_error)
                b->m.completed_error++;
            else
                b->m.completed_ok++;
            metrics_observe(&b->m.grading, p->duration_us);
            if (p->started_us >= p->accepted_us && p->accepted_us)
                metrics_observe(&b->m.queue_wait, p->started_us - p->accepted_us);
            if (now_us >= p->accepted_us && p->accepted_us)
                metrics_observe(&b->m.end_to_end, now_us - p->accepted_us);
        } else {
            b->m.results_duplicate++;
            log_debug("result.duplicate", "job_id=%s outcome=%d retried=%d", p->job_id,
                      sb->items[i].first, p->retried);
        }
        if (job)
            queue_job_finish(b->queue, job);
        free(p->event);
    }
    replies_flush(b);
    free(sb->p);
    free(sb->items);
    free(sb);
}

/* Hand the oldest pending results to Redis as one batch of at most
 * BROKER_STORE_BATCH results or about BROKER_STORE_BYTES (a bigger one would
 * keep Redis busy past the command timeout); at most BROKER_STORING_MAX
 * batches wait for Redis at a time. */
static void results_flush(broker_t *b)
{
    size_t head = b->pending_head;
    if (b->npending == head || !journal_is_up(b->journal) || b->storing >= BROKER_STORING_MAX)
        return;
    size_t n = 0, bytes = 0;
    while (head + n < b->npending && n < BROKER_STORE_BATCH &&
           (n == 0 || bytes < BROKER_STORE_BYTES))
        bytes += b->pending[head + n++].event_len;
    store_batch_t *sb = calloc(1, sizeof *sb);
    journal_result_item_t *items = calloc(n, sizeof *items);
    pending_result_t *p = malloc(n * sizeof *p);
    if (!sb || !items || !p) {
        free(sb);
        free(items);
        free(p);
        return;
    }
    memcpy(p, b->pending + head, n * sizeof *p);
    for (size_t i = 0; i < n; i++) {
        items[i].job_id = p[i].job_id;
        items[i].job_id_len = strlen(p[i].job_id);
        items[i].entry = p[i].entry;
        items[i].held = p[i].held;
        items[i].event = p[i].event;
        items[i].event_len = p[i].event_len;
    }
    *sb = (store_batch_t){.b = b, .p = p, .items = items, .n = n};
    b->storing++;
    if (journal_complete(b->journal, items, n, results_stored, sb) != 0) {
        b->storing--;
        log_warn("results.unstored", "pending=%zu error=\"%s\"", b->npending - head,
                 journal_error(b->journal));
        free(items);
        free(p);
        free(sb);
        return;
    }
    /* the batch owns them now */
    head += n;
    if (head == b->npending) {
        b->npending = head = 0;
    } else if (head > b->npending / 2) {
        memmove(b->pending, b->pending + head, (b->npending - head) * sizeof *b->pending);
        b->npending -= head;
        head = 0;
    }
    b->pending_head = head;
}

/* Returns send_to_worker's result (0 when the body could not be encoded). */
static int worker_send_simple(broker_t *b, queue_worker_t *w, proto_cmd_t cmd, const char *reason)
{
    msgpack_sbuffer_clear(&b->out);
    int rc;
    if (cmd == PROTO_CMD_HEARTBEAT) {
        proto_heartbeat_t hb = {.inflight = w->inflight};
        rc = proto_encode_heartbeat(&b->out, &hb);
    } else {
        proto_disconnect_t d = {.reason = proto_str(reason)};
        rc = proto_encode_disconnect(&b->out, &d);
    }
    return rc == 0 ? send_to_worker(b, w, cmd, b->out.data, b->out.size) : 0;
}

/* DISCONNECT to an identity the broker does not know: it must say READY. */
static void worker_unknown(broker_t *b, const void *identity, size_t len)
{
    proto_disconnect_t d = {.reason = proto_str("unknown_worker")};
    msgpack_sbuffer_clear(&b->out);
    if (proto_encode_disconnect(&b->out, &d) == 0)
        send_routed(b->work, identity, len, 0, PROTO_CMD_DISCONNECT, b->out.data, b->out.size);
}

static void worker_drop(broker_t *b, queue_worker_t *w, const char *why)
{
    size_t n = queue_worker_remove(b->queue, w);
    log_info("worker.removed", "reason=%s requeued=%zu", why, n);
}

/* One RESULT body from a worker (alone, or an element of RESULTS): read
 * its top-level fields and keep it for storing. -1 when it is refused. */
static int worker_result(broker_t *b, const void *body, size_t len)
{
    proto_result_t r;
    proto_error_t perr;
    /* The bytes are forwarded as they are: the grading result map is
     * checked to be well-formed, not unpacked. */
    if (proto_decode_result_head(body, len, b->cfg.max_message, &r, &perr) != PROTO_OK) {
        b->m.bad_messages++;
        log_warn("worker.bad_result", "code=%s reason=\"%s\"", proto_err_code(perr.code),
                 perr.message);
        return -1;
    }
    result_accept(b, body, len, &r);
    return 0;
}

typedef struct results_turn {
    broker_t *b;
    uint32_t ok; /* elements kept */
} results_turn_t;

/* One element of a worker's RESULTS, already read. */
static void results_element(void *arg, proto_bytes_t elem, proto_err_t rc,
                            const proto_result_t *head, const proto_error_t *eerr)
{
    results_turn_t *rt = arg;
    if (rc != PROTO_OK) {
        rt->b->m.bad_messages++;
        log_warn("worker.bad_result", "code=%s reason=\"%s\"", proto_err_code(eerr->code),
                 eerr->message);
        return;
    }
    result_accept(rt->b, elem.ptr, elem.len, head);
    rt->ok++;
}

static void work_message(broker_t *b, frames_t *fr)
{
    int first;
    proto_cmd_t cmd;
    const char *code;
    const void *identity = fdata(fr, 0);
    size_t id_len = fsize(fr, 0);
    if (id_len > QUEUE_MAX_IDENTITY)
        return;
    const char *why = frames_check(fr, &first, &cmd, &code);
    if (why) {
        b->m.bad_messages++;
        log_warn("worker.bad_message", "code=%s reason=\"%s\"", code, why);
        return;
    }
    const void *body = fdata(fr, first + 2);
    size_t len = fsize(fr, first + 2);
    proto_error_t perr;
    queue_worker_t *w = queue_worker_find(b->queue, identity, id_len);
    int64_t now = clock_mono_ms();
    if (w) {
        w->last_seen_ms = now;
        w->heard = 1;
    }
    switch (cmd) {
    case PROTO_CMD_READY: {
        proto_ready_t rd;
        if (proto_decode_ready(b->dec, body, len, &rd, &perr) != PROTO_OK) {
            b->m.bad_messages++;
            log_warn("worker.bad_ready", "code=%s reason=\"%s\"", proto_err_code(perr.code),
                     perr.message);
            return;
        }
        int is_new = w == NULL;
        w = queue_worker_upsert(b->queue, identity, id_len);
        if (!w)
            return;
        w->credit = rd.credit;
        w->threads = rd.threads ? rd.threads : 1;
        w->batch = rd.batch;
        w->last_seen_ms = now;
        w->draining = 0;
        proto_str_copy(rd.worker, w->name, sizeof w->name);
        if (is_new) {
            w->last_sent_ms = now;
            log_info("worker.ready", "worker=%s credit=%u workers=%zu", w->name, w->credit,
                     queue_workers(b->queue));
        }
        if (b->draining)
            worker_send_simple(b, w, PROTO_CMD_DISCONNECT, "shutting_down");
        return;
    }
    case PROTO_CMD_HEARTBEAT:
        if (!w)
            worker_unknown(b, identity, id_len);
        return;
    case PROTO_CMD_DISCONNECT:
        if (!w)
            return;
        w->draining = 1;
        log_info("worker.draining", "worker=%s inflight=%u", w->name, w->inflight);
        worker_send_simple(b, w, PROTO_CMD_DISCONNECT, "ack");
        if (w->inflight == 0)
            worker_drop(b, w, "disconnect");
        return;
    case PROTO_CMD_RESULT:
    case PROTO_CMD_RESULTS: {
        if (cmd == PROTO_CMD_RESULT) {
            if (worker_result(b, body, len) != 0)
                return;
        } else {
            /* Each element is one RESULT, forwarded with its own bytes. */
            results_turn_t rt = {b, 0};
            if (proto_decode_results_each(body, len, b->cfg.max_message, PROTO_MAX_BATCH_ITEMS,
                                          results_element, &rt, &perr) != PROTO_OK) {
                b->m.bad_messages++;
                log_warn("worker.bad_results", "code=%s reason=\"%s\"", proto_err_code(perr.code),
                         perr.message);
                return;
            }
            if (rt.ok == 0)
                return;
        }
        if (!w) {
            worker_unknown(b, identity, id_len);
        } else if (w->draining && w->inflight == 0) {
            worker_drop(b, w, "drained");
        }
        return;
    }
    default:
        b->m.bad_messages++;
        log_warn("worker.bad_command", "command=%s", proto_cmd_name(cmd));
        return;
    }
}

static void work_drain(broker_t *b)
{
    frames_t fr;
    for (int k = 0; k < BROKER_READ_BURST * 4; k++) {
        if (frames_recv(b->work, &fr) != 0)
            break;
        work_message(b, &fr);
        frames_close(&fr);
    }
}

static journal_entry_t job_entry(const queue_job_t *j)
{
    return (journal_entry_t){.entry = j->entry,
                             .stream_id = j->entry ? j->entry->sid : "",
                             .job_id = j->id,
                             .job_id_len = j->id_len,
                             .hash = j->hash,
                             .body = j->body,
                             .body_len = j->body_len,
                             .accepted_us = j->accepted_us,
                             .attempts = j->failures};
}

/* A delivery of j ended without a result (worker lost, time-to-run): note
 * why, and journal its attempts so a restarted broker still counts them. */
static void delivery_failed(broker_t *b, queue_job_t *j, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void delivery_failed(broker_t *b, queue_job_t *j, const char *fmt, ...)
{
    j->failures++;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(j->last_reason, sizeof j->last_reason, fmt, ap);
    va_end(ap);
    journal_entry_t e = job_entry(j);
    journal_requeued(b->journal, &e, &j->entry);
}

/* Give up on j after too many deliveries: dead-letter stream, and a
 * REJECTED dead_letter to its submitter. No score event is emitted. */
/* A dead-lettering waiting for Redis; the job is held DONE meanwhile. */
typedef struct dead_call {
    broker_t *b;
    queue_job_t *job;
    char reason[300];
} dead_call_t;

static void dead_lettered(void *arg, int ok)
{
    dead_call_t *dc = arg;
    broker_t *b = dc->b;
    queue_job_t *j = dc->job;
    if (!ok) {
        /* Not stored: keep the job; it is retried when Redis is back. */
        queue_job_requeue(b->queue, j);
        free(dc);
        return;
    }
    b->m.dead_letters++;
    log_warn("job.dead_letter", "job_id=%s failures=%u reason=\"%s\"", j->id, j->failures,
             dc->reason);
    if (j->reply_to_len) {
        proto_rejected_job_t rj = {.job_id = proto_str(j->id),
                                   .code = proto_str("dead_letter"),
                                   .message = proto_str(dc->reason)};
        proto_rejected_t r = {.code = proto_str("job_errors"),
                              .message = proto_str("a job was given up: see jobs[]"),
                              .njobs = 1,
                              .jobs = &rj};
        msgpack_sbuffer_clear(&b->out);
        if (proto_encode_rejected(&b->out, &r) == 0)
            send_routed(b->submit, j->reply_to, j->reply_to_len, 0, PROTO_CMD_REJECTED,
                        b->out.data, b->out.size);
    }
    queue_job_finish(b->queue, j);
    free(dc);
}

static void dead_letter(broker_t *b, queue_job_t *j)
{
    /* queue_dispatch counted a delivery that does not happen */
    j->attempt--;
    dead_call_t *dc = calloc(1, sizeof *dc);
    if (!dc) {
        queue_job_requeue(b->queue, j);
        return;
    }
    dc->b = b;
    dc->job = j;
    if (j->failures >= b->cfg.max_attempts)
        snprintf(dc->reason, sizeof dc->reason, "%u deliveries failed; last: %s", j->failures,
                 j->last_reason[0] ? j->last_reason : "unknown");
    else
        snprintf(dc->reason, sizeof dc->reason, "delivered %u times without a result; last: %s",
                 j->attempt, j->last_reason[0] ? j->last_reason : "unknown");
    journal_entry_t e = job_entry(j);
    if (journal_dead(b->journal, &e, dc->reason, clock_wall_us(), dead_lettered, dc) != 0) {
        queue_job_requeue(b->queue, j);
        free(dc);
        return;
    }
    queue_job_done(b->queue, j);
}

/* A send to worker w failed: 1 when its connection is gone (it is removed,
 * its jobs go back), 0 when its pipe is only full (try next turn). Jobs of
 * the failed delivery must already be back in the queue. */
static int worker_send_failed(broker_t *b, queue_worker_t *w, int err)
{
    if (err != EHOSTUNREACH)
        return 0;
    b->m.workers_lost++;
    log_warn("worker.gone", "worker=%s inflight=%u reason=\"connection closed\"", w->name,
             w->inflight);
    worker_charge_lost(b, w, "closed its connection");
    queue_worker_remove(b->queue, w);
    return 1;
}

/* Send a worker's boxed jobs as one JOBS. On failure the jobs (and `also`,
 * a job dispatched to the same worker after them) go back to the head of
 * the queue in their order, as deliveries that did not happen. Returns 0,
 * 1 when the worker's pipe is full, 2 when the worker is gone. */
static int job_box_send(broker_t *b, outbox_t *o, queue_job_t *also)
{
    queue_worker_t *w = o->worker;
    int rc = 0;
    msgpack_sbuffer_clear(&b->out);
    if (o->n && (proto_encode_jobs(&b->out, o->elems.data, o->elems.size, o->n) != 0 ||
                 send_to_worker(b, w, PROTO_CMD_JOBS, b->out.data, b->out.size) != 0)) {
        int err = errno;
        if (also) {
            also->attempt--;
            queue_job_requeue(b->queue, also);
        }
        for (uint32_t i = o->n; i-- > 0;) {
            o->jobs[i]->attempt--;
            queue_job_requeue(b->queue, o->jobs[i]);
        }
        o->n = 0;
        rc = worker_send_failed(b, w, err) ? 2 : 1;
    }
    outbox_release(o);
    return rc;
}

/* Put job j (dispatched to a worker that takes JOBS) in its worker's box,
 * sending the box first when j would not fit. Returns 0 when boxed, -1
 * when j must be sent on its own, 1 or 2 when j went back to the queue
 * with the box (the worker's pipe is full, or it is gone). */
static int job_box_add(broker_t *b, queue_job_t *j)
{
    queue_worker_t *w = j->worker;
    outbox_t *o = outbox_for(b->job_boxes, &b->njob_boxes, w, w->identity, w->identity_len);
    if (!o)
        return -1;
    uint32_t most = w->batch < PROTO_MAX_BATCH_ITEMS ? w->batch : PROTO_MAX_BATCH_ITEMS;
    if (o->n && (o->n >= most || o->elems.size + j->body_len + 128 > PROTO_BATCH_BYTES)) {
        int rc = job_box_send(b, o, j);
        if (rc)
            return rc;
    }
    if (o->n >= o->cap_jobs) {
        size_t cap = o->cap_jobs ? o->cap_jobs * 2 : 64;
        queue_job_t **nj = realloc(o->jobs, cap * sizeof *nj);
        if (!nj)
            return -1;
        o->jobs = nj;
        o->cap_jobs = cap;
    }
    size_t before = o->elems.size;
    if (proto_encode_job(&o->elems, j->attempt, j->accepted_us, j->ttr_ms, proto_str(j->hash),
                         j->body, j->body_len) != 0) {
        o->elems.size = before;
        return -1;
    }
    o->jobs[o->n++] = j;
    return 0;
}

/* Send queued jobs to workers with free credit: one JOBS per worker that
 * takes them (several when a box fills), one JOB per job to the others. */
static void dispatch(broker_t *b)
{
    int64_t now = clock_mono_ms();
    queue_job_t *j;
    b->njob_boxes = 0;
    while ((j = queue_dispatch(b->queue, now)) != NULL) {
        if (j->failures >= b->cfg.max_attempts ||
            j->attempt > b->cfg.max_attempts * BROKER_DELIVERIES_PER_ATTEMPT) {
            dead_letter(b, j);
            if (!journal_is_up(b->journal))
                break;
            continue;
        }
        if (j->attempt > 1)
            b->m.redeliveries++;
        queue_worker_t *w = j->worker;
        if (w->batch > 0) {
            int rc = job_box_add(b, j);
            if (rc == 0 || rc == 2)
                continue;
            if (rc == 1)
                break; /* its pipe is full: try again next turn */
        }
        msgpack_sbuffer_clear(&b->out);
        if (proto_encode_job(&b->out, j->attempt, j->accepted_us, j->ttr_ms, proto_str(j->hash),
                             j->body, j->body_len) != 0) {
            queue_job_requeue(b->queue, j);
            break;
        }
        if (send_to_worker(b, w, PROTO_CMD_JOB, b->out.data, b->out.size) != 0) {
            int err = errno;
            /* Not sent: this delivery did not happen. */
            j->attempt--;
            queue_job_requeue(b->queue, j);
            if (!worker_send_failed(b, w, err))
                break; /* its pipe is full: try again next turn */
        }
    }
    for (size_t i = 0; i < b->njob_boxes; i++)
        (void)job_box_send(b, &b->job_boxes[i], NULL);
    b->njob_boxes = 0;
}

/* Worker w is gone with jobs in hand. It grades its jobs in the order it
 * got them, `threads` at a time, so the oldest `threads` are the ones it
 * was most likely grading when it died: only those are charged a failed
 * delivery (a job that kills its worker is among them every time and
 * reaches the dead-letter limit); the rest were waiting in its queue and go
 * back without a charge. The running list is newest first.
 *
 * A worker that never said anything after its READY (no HEARTBEAT, no
 * RESULT) died at once: the JOBs sent in answer to that READY went into a
 * connection whose end had not reached us yet, and ZeroMQ dropped them
 * unread. It could not have started any of them, so none is charged. */
static void worker_charge_lost(broker_t *b, queue_worker_t *w, const char *why)
{
    if (!w->heard) {
        for (queue_job_t *j = w->running; j; j = j->run_next)
            snprintf(j->last_reason, sizeof j->last_reason,
                     "worker %.64s %.40s before saying anything after READY", w->name, why);
        if (w->inflight)
            log_info("worker.died_at_once", "worker=%s requeued_uncharged=%u", w->name,
                     w->inflight);
        return;
    }
    uint32_t threads = w->threads ? w->threads : 1;
    uint32_t i = 0;
    for (queue_job_t *j = w->running; j; j = j->run_next, i++)
        if (i + threads >= w->inflight)
            delivery_failed(b, j, "worker %s %s", w->name, why);
}

static void on_ttr_expired(queue_job_t *job, void *arg)
{
    broker_t *b = arg;
    b->m.ttr_expired++;
    log_warn("job.ttr_expired", "job_id=%s worker=%s attempt=%u ttr_ms=%u", job->id,
             job->worker->name, job->attempt, job->ttr_ms);
    /* Tell the worker to drop it: a late RESULT would be a wasted grading. */
    proto_cancel_t c = {.job_id = proto_str(job->id),
                        .attempt = job->attempt,
                        .reason = proto_str("time-to-run passed")};
    msgpack_sbuffer_clear(&b->out);
    if (proto_encode_cancel(&b->out, &c) == 0)
        send_to_worker(b, job->worker, PROTO_CMD_CANCEL, b->out.data, b->out.size);
    delivery_failed(b, job, "time-to-run of %u ms passed on worker %s", job->ttr_ms,
                    job->worker->name);
}

static void journal_sweep(broker_t *b, int64_t now);

/* Once per heartbeat interval: liveness, heartbeats, time-to-run, Redis. */
static void tick(broker_t *b)
{
    int64_t now = clock_mono_ms();
    if (now < b->next_tick_ms)
        return;
    b->next_tick_ms = now + (int64_t)b->cfg.heartbeat_ms;
    /* Read what workers sent while this turn was busy before judging their
     * silence: a slow turn of ours is not a dead worker. */
    work_drain(b);
    now = clock_mono_ms();
    int64_t dead_after = (int64_t)(b->cfg.heartbeat_ms * b->cfg.liveness);
    queue_worker_t *w = queue_worker_first(b->queue);
    while (w) {
        queue_worker_t *next = w->next;
        if (now - w->last_seen_ms > dead_after) {
            b->m.workers_lost++;
            log_warn("worker.lost", "worker=%s silent_ms=%lld inflight=%u", w->name,
                     (long long)(now - w->last_seen_ms), w->inflight);
            worker_charge_lost(b, w, "stopped answering heartbeats");
            queue_worker_remove(b->queue, w); /* its jobs go back to the head */
        } else if (now - w->last_sent_ms >= (int64_t)b->cfg.heartbeat_ms) {
            /* A closed connection shows here within one interval. */
            if (worker_send_simple(b, w, PROTO_CMD_HEARTBEAT, NULL) != 0)
                (void)worker_send_failed(b, w, errno);
        }
        w = next;
    }
    queue_expire(b->queue, now, on_ttr_expired, b);
    journal_ensure(b->journal, now);
    journal_sweep(b, now);
    journal_flush(b->journal);
}

static void gauges(broker_t *b, metrics_gauges_t *g)
{
    g->queued = queue_waiting(b->queue);
    g->running = queue_running(b->queue);
    g->workers = queue_workers(b->queue);
    g->capacity = queue_capacity(b->queue);
    g->pending_emit = b->npending - b->pending_head;
    g->redis_up = journal_is_up(b->journal);
}

/* ---- life cycle ------------------------------------------------------- */

static int recover_job(void *arg, const journal_entry_t *e);

/* During a sweep: an entry the broker holds no job under was journaled
 * without the broker hearing of it (a reply lost with Redis), or outlived
 * its jobs (an XDEL lost). Its jobs the broker holds under another entry
 * are redundant copies; the others are adopted. */
static int sweep_entry(void *arg, const journal_entry_t *e)
{
    broker_t *b = arg;
    if (queue_job_find(b->queue, e->job_id, e->job_id_len)) {
        log_info("journal.orphan_removed", "job_id=%.*s stream_id=%s", (int)e->job_id_len,
                 e->job_id, e->stream_id);
        return 0;
    }
    if (!queue_has_room(b->queue))
        return -1;
    log_warn("journal.orphan_adopted", "job_id=%.*s stream_id=%s", (int)e->job_id_len, e->job_id,
             e->stream_id);
    return recover_job(arg, e);
}

static void sweep_done(void *arg, long jobs, int at_end)
{
    broker_t *b = arg;
    (void)jobs;
    b->sweeping = 0;
    if (at_end) /* the pass is over; the next one in BROKER_SWEEP_MS */
        b->next_sweep_ms = clock_mono_ms() + BROKER_SWEEP_MS;
}

/* Walk the journal a page per tick, in a pass after every reconnect to
 * Redis (a reply lost with the connection may have left an entry the broker
 * does not know) and at least every BROKER_SWEEP_MS, so that entries the
 * broker holds no job under are deleted or their jobs adopted. Entries the
 * broker knows are skipped without being judged. */
static void journal_sweep(broker_t *b, int64_t now)
{
    if (!journal_is_up(b->journal) || b->sweeping)
        return;
    unsigned epoch = journal_epoch(b->journal);
    int in_pass = b->sweep_cursor[0] != '\0';
    if (!in_pass && epoch == b->swept_epoch && now < b->next_sweep_ms)
        return;
    if (!in_pass)
        b->swept_epoch = epoch;
    b->sweeping = 1;
    if (journal_scan(b->journal, b->sweep_cursor, sizeof b->sweep_cursor, BROKER_SWEEP_PAGE,
                     sweep_entry, b, sweep_done, b) != 0)
        b->sweeping = 0;
}

/* Hold a journaled job (recovery, or adoption by a sweep). A job found in
 * two entries (accepted in a batch, then journaled again with its attempts
 * after a failed delivery) is held under the later one. */
static int recover_job(void *arg, const journal_entry_t *e)
{
    broker_t *b = arg;
    queue_job_t *held = queue_job_find(b->queue, e->job_id, e->job_id_len);
    if (held) {
        if (held->entry == e->entry || held->state != QUEUE_JOB_QUEUED ||
            e->attempts < held->failures)
            return 0;
        journal_release(b->journal, held->entry);
        held->entry = e->entry;
        held->attempt = held->failures = e->attempts;
        if (e->attempts)
            snprintf(held->last_reason, sizeof held->last_reason,
                     "%u deliveries failed before a broker restart", e->attempts);
        return 1;
    }
    queue_job_t *job = queue_job_new(e->job_id, e->job_id_len, e->body, e->body_len);
    if (!job)
        return -1;
    snprintf(job->hash, sizeof job->hash, "%s", e->hash);
    job->entry = e->entry;
    job->accepted_us = e->accepted_us;
    job->attempt = e->attempts;
    job->failures = e->attempts;
    if (e->attempts)
        snprintf(job->last_reason, sizeof job->last_reason,
                 "%u deliveries failed before a broker restart", e->attempts);
    job->ttr_ms = (uint32_t)b->cfg.ttr_ms;
    /* The job's own time-to-run, if it set one, lives in its record. */
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    if (msgpack_unpack_next(&u, e->body, e->body_len, &off) == MSGPACK_UNPACK_SUCCESS) {
        proto_job_t pj;
        proto_error_t perr;
        if (proto_job_from_object(&u.data, "job", &pj, &perr) == PROTO_OK && pj.ttr_ms)
            job->ttr_ms = pj.ttr_ms;
    }
    msgpack_unpacked_destroy(&u);
    if (queue_job_add(b->queue, job) != QUEUE_OK) {
        queue_job_free(job);
        return -1;
    }
    return 1;
}

static void *bind_socket(broker_t *b, int type, int mandatory, char *ep, size_t epcap, char *err,
                         size_t errlen)
{
    void *s = zmq_socket(b->ctx, type);
    if (!s) {
        snprintf(err, errlen, "cannot create a ZeroMQ socket: %s", zmq_strerror(errno));
        return NULL;
    }
    int linger = 0, hwm = 100000;
    int64_t maxmsg = (int64_t)b->cfg.max_message * 4 + 65536;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (type == ZMQ_ROUTER)
        zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    if (mandatory) {
        /* Tell us when a worker's connection is gone instead of dropping
         * its JOBs silently: the job then goes back uncharged. */
        int one = 1;
        zmq_setsockopt(s, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    }
    if (zmq_bind(s, ep) != 0) {
        snprintf(err, errlen, "cannot bind %s: %s", ep, zmq_strerror(errno));
        zmq_close(s);
        return NULL;
    }
    char bound[256];
    size_t len = sizeof bound;
    if (zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, bound, &len) == 0 && len > 1)
        snprintf(ep, epcap, "%s", bound);
    return s;
}

/* Score events of real attempts are tens of KB, and a batch of them bound
 * for Redis or a submitter a few MB. With glibc's defaults such buffers are
 * mapped fresh and returned to the kernel at every use, and zeroing and
 * faulting their pages in was half of the broker's CPU when grading full
 * CSM attempts. Buffers up to 8 MB come from the heap instead, and up to
 * 16 MB of free heap is kept for the next batch. MALLOC_MMAP_THRESHOLD_ or
 * MALLOC_TRIM_THRESHOLD_, when set, win. */
static void malloc_reuse(void)
{
    if (getenv("MALLOC_MMAP_THRESHOLD_") || getenv("MALLOC_TRIM_THRESHOLD_"))
        return;
    mallopt(M_MMAP_THRESHOLD, 8 << 20);
    mallopt(M_TRIM_THRESHOLD, 16 << 20);
}

broker_t *broker_new(const broker_config_t *cfg, char *err, size_t errlen, int *exit_code)
{
    malloc_reuse();
    *exit_code = 2;
    broker_t *b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    b->cfg = *cfg;
    msgpack_sbuffer_init(&b->out);
    msgpack_sbuffer_init(&b->jobs);
    b->queue = queue_new(cfg->max_queue);
    b->dec = proto_decoder_new(cfg->max_message);
    journal_config_t jc = {.url = cfg->redis,
                           .prefix = cfg->prefix,
                           .name = cfg->name,
                           .events_maxlen = cfg->events_maxlen,
                           .dedupe_ttl_s = cfg->dedupe_ttl_s,
                           .timeout_ms = (int)cfg->redis_timeout_ms,
                           .no_journal = cfg->no_journal};
    b->journal = journal_new(&jc);
    b->ctx = zmq_ctx_new();
    if (!b->queue || !b->dec || !b->journal || !b->ctx) {
        snprintf(err, errlen, "out of memory");
        broker_destroy(&b);
        return NULL;
    }
    char jerr[512];
    if (journal_connect(b->journal, jerr, sizeof jerr) != 0) {
        snprintf(err, errlen, "%s (is redis-server running? set --redis or SCORELINE_REDIS_URL)",
                 jerr);
        *exit_code = 3;
        broker_destroy(&b);
        return NULL;
    }
    long n = journal_recover(b->journal, recover_job, b);
    if (n < 0) {
        snprintf(err, errlen, "cannot read the journal: %s", journal_error(b->journal));
        *exit_code = 3;
        broker_destroy(&b);
        return NULL;
    }
    if (n > 0)
        log_info("journal.recovered", "jobs=%ld", n);
    b->swept_epoch = journal_epoch(b->journal); /* recovery read it all */
    b->next_sweep_ms = clock_mono_ms() + BROKER_SWEEP_MS;
    if (!(b->submit = bind_socket(b, ZMQ_ROUTER, 0, b->cfg.submit_ep, sizeof b->cfg.submit_ep,
                                  err, errlen)) ||
        !(b->work = bind_socket(b, ZMQ_ROUTER, 1, b->cfg.work_ep, sizeof b->cfg.work_ep, err,
                                errlen)) ||
        !(b->events = bind_socket(b, ZMQ_PUB, 0, b->cfg.events_ep, sizeof b->cfg.events_ep, err,
                                  errlen))) {
        broker_destroy(&b);
        return NULL;
    }
    if (cfg->metrics_port &&
        !(b->http = metrics_http_new(cfg->metrics_host, cfg->metrics_port, err, errlen))) {
        broker_destroy(&b);
        return NULL;
    }
    *exit_code = 0;
    return b;
}

void broker_destroy(broker_t **self_p)
{
    broker_t *b = *self_p;
    if (!b)
        return;
    if (b->submit)
        zmq_close(b->submit);
    if (b->work)
        zmq_close(b->work);
    if (b->events)
        zmq_close(b->events);
    if (b->ctx)
        zmq_ctx_term(b->ctx);
    metrics_http_destroy(&b->http);
    journal_destroy(&b->journal);
    queue_destroy(&b->queue);
    proto_decoder_destroy(&b->dec);
    outboxes_free(b->job_boxes);
    outboxes_free(b->reply_boxes);
    for (size_t i = b->pending_head; i < b->npending; i++)
        free(b->pending[i].event);
    free(b->pending);
    msgpack_sbuffer_destroy(&b->out);
    msgpack_sbuffer_destroy(&b->jobs);
    free(b);
    *self_p = NULL;
}

static void submit_turn_free(submit_turn_t *t)
{
    for (size_t i = 0; i < BROKER_READ_BURST; i++)
        proto_decoder_destroy(&t->decoders[i]);
    free(t->decoders);
    free(t->frames);
    free(t->msgs);
    free(t->jobs);
    free(t->items);
}

int broker_run(broker_t *b)
{
    submit_turn_t t = {0};
    t.frames = calloc(BROKER_READ_BURST, sizeof *t.frames);
    t.decoders = calloc(BROKER_READ_BURST, sizeof *t.decoders);
    if (!t.frames || !t.decoders) {
        submit_turn_free(&t);
        return 1;
    }
    for (size_t i = 0; i < BROKER_READ_BURST; i++)
        if (!(t.decoders[i] = proto_decoder_new(b->cfg.max_message))) {
            submit_turn_free(&t);
            return 1;
        }
    b->turn = &t;
    log_info("broker.ready",
             "submit=%s work=%s events=%s redis=%s prefix=%s max_queue=%llu queued=%zu journal=%s",
             b->cfg.submit_ep, b->cfg.work_ep, b->cfg.events_ep, b->cfg.redis_text, b->cfg.prefix,
             (unsigned long long)b->cfg.max_queue, queue_jobs(b->queue),
             journal_enabled(b->journal) ? "on" : "off");
    for (;;) {
        if (broker_stopping && !b->draining) {
            b->draining = 1;
            b->stop_deadline_ms = clock_mono_ms() + (int64_t)b->cfg.grace_ms;
            log_info("broker.draining", "running=%zu grace_ms=%llu", queue_running(b->queue),
                     (unsigned long long)b->cfg.grace_ms);
            for (queue_worker_t *w = queue_worker_first(b->queue); w; w = w->next) {
                w->draining = 1;
                worker_send_simple(b, w, PROTO_CMD_DISCONNECT, "shutting_down");
            }
        }
        if (b->draining && ((queue_running(b->queue) == 0 && b->npending == 0 &&
                             b->storing == 0 && !b->submit_busy) ||
                            clock_mono_ms() >= b->stop_deadline_ms))
            break;
        zmq_pollitem_t items[4] = {{b->submit, 0, ZMQ_POLLIN, 0}, {b->work, 0, ZMQ_POLLIN, 0}};
        int nitems = 2, jidx = -1, hidx = -1;
        int jfd = journal_fd(b->journal);
        if (jfd >= 0) {
            short ev = ZMQ_POLLIN | (journal_wants_write(b->journal) ? ZMQ_POLLOUT : 0);
            items[nitems] = (zmq_pollitem_t){NULL, jfd, ev, 0};
            jidx = nitems++;
        }
        if (b->http) {
            items[nitems] = (zmq_pollitem_t){NULL, metrics_http_fd(b->http), ZMQ_POLLIN, 0};
            hidx = nitems++;
        }
        /* Stop reading new submissions while too many results wait for
         * Redis, and while the last turn's SUBMITs are being journaled. */
        if (b->npending > BROKER_PENDING_MAX || b->submit_busy)
            items[0].events = 0;
        long timeout = (long)b->cfg.heartbeat_ms / 4;
        if (b->npending && journal_is_up(b->journal) && b->storing < BROKER_STORING_MAX)
            timeout = 0;
        int rc = zmq_poll(items, nitems, timeout);
        if (rc < 0 && errno != EINTR) {
            log_error("broker.poll", "error=\"%s\"", zmq_strerror(errno));
            break;
        }
        /* Redis's replies first: they answer submitters and free results. */
        journal_io(b->journal, clock_mono_ms(),
                   jidx >= 0 && (items[jidx].revents & (ZMQ_POLLIN | ZMQ_POLLERR)));
        if (items[1].revents & ZMQ_POLLIN)
            work_drain(b);
        if ((items[0].revents & ZMQ_POLLIN) && !b->submit_busy)
            submit_drain(b, &t);
        results_flush(b);
        if (!b->draining)
            dispatch(b);
        if (hidx >= 0 && (items[hidx].revents & ZMQ_POLLIN)) {
            metrics_gauges_t g;
            gauges(b, &g);
            metrics_http_serve(b->http, &b->m, &g);
        }
        tick(b);
        /* Deleting the entries of finished jobs is housekeeping: their XDEL
         * goes out with the next SUBMIT's or RESULT's commands, or at the
         * next tick, rather than costing Redis and this loop a round trip of
         * its own per job when jobs come one at a time. A crash before it
         * leaves entries whose jobs are all done, which recovery deletes. */
        if (journal_unflushed(b->journal) >= BROKER_XDEL_BATCH)
            journal_flush(b->journal);
        /* Send what this turn appended without waiting for the next poll. */
        journal_io(b->journal, clock_mono_ms(), 0);
    }
    /* Store what is left, within the Redis timeout. */
    int64_t end = clock_mono_ms() + (int64_t)b->cfg.redis_timeout_ms;
    while ((b->npending || b->storing || b->submit_busy) && journal_is_up(b->journal) &&
           clock_mono_ms() < end) {
        results_flush(b);
        journal_wait(b->journal, 100);
    }
    if (journal_is_up(b->journal) && journal_unflushed(b->journal)) {
        journal_flush(b->journal);
        journal_wait(b->journal, (int)b->cfg.redis_timeout_ms);
    }
    journal_close(b->journal); /* ends anything still waiting */
    log_info("broker.stopped", "queued=%zu running=%zu unstored=%zu", queue_waiting(b->queue),
             queue_running(b->queue), b->npending);
    b->turn = NULL;
    submit_turn_free(&t);
    return 0;
}
