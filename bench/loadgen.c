/*
 * loadgen.c - scoreline-loadgen: the benchmark's submitter.
 *
 * Submits jobs to a broker's submit endpoint over N DEALER connections,
 * flat out (closed loop: at most --window jobs submitted and not yet scored)
 * or at a fixed offered rate (open loop), and measures what a SaaS backend
 * sees: jobs per second from first SUBMIT to last score event, and the
 * latency from submission to the job's score event (RESULT) in an HDR-style
 * histogram (bench/hist.h), plus the latency to ACCEPTED.
 *
 * At a fixed rate a batch's latency is counted from the moment it was due,
 * not from when it could be sent, so a generator that falls behind shows up
 * as latency instead of hiding it (no coordinated omission).
 *
 * One thread, one zmq_poll loop. Every job of a run has the id
 * "<run>-<n>", n its number in the run, so a RESULT finds its send time in
 * an array without a hash table. Messages are built and read with the
 * proto/ codecs, like any other client.
 *
 * Output: a progress line on stderr every --progress ms, then one line on
 * stdout of key=value pairs that bench/run reads.
 */
#define _GNU_SOURCE /* ppoll */
#include "bench/hist.h"
#include "common/jsonmp.h"
#include "proto/proto.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#define LOADGEN_MAX_CONN 256
#define LOADGEN_MAX_ATTEMPTS 256

enum job_state { JOB_UNSENT = 0, JOB_SENT, JOB_ACCEPTED, JOB_DONE, JOB_REJECTED };

typedef struct payload {
    msgpack_zone zone;
    msgpack_object responses; /* the attempt's responses, unpacked once */
    size_t bytes;             /* packed size of responses */
} payload_t;

typedef struct options {
    const char *broker;
    int connections;
    uint64_t jobs;
    double rate;     /* jobs/s; 0 = flat out */
    double duration; /* seconds of submission at --rate; 0 = until --jobs */
    uint32_t batch;
    uint64_t window; /* 0 = unlimited */
    const char *rubric;
    const char *tenant;
    const char *attempts[LOADGEN_MAX_ATTEMPTS];
    int nattempts;
    char run_id[40];
    int no_wait;
    int window_accepted; /* the window counts jobs not yet ACCEPTED (not yet scored) */
    int single_results;  /* do not ask for RESULTS messages (one RESULT per job) */
    double timeout;
    int progress_ms;
} options_t;

typedef struct loadgen {
    options_t o;
    void *ctx;
    void *socks[LOADGEN_MAX_CONN];
    proto_decoder_t *dec;
    payload_t payloads[LOADGEN_MAX_ATTEMPTS];
    msgpack_sbuffer *job_bufs; /* one per job of a batch, reused */
    msgpack_sbuffer body;
    /* per job */
    uint64_t *t_start; /* ns: when the job was due (rate) or sent (flat out) */
    uint8_t *state;
    /* per SUBMIT (seq): which jobs it carried */
    uint64_t *batch_first;
    uint32_t *batch_n;
    uint64_t nbatches;
    /* counters */
    uint64_t sent, accepted, duplicates, rejected, done, errors, send_blocked;
    uint64_t submit_msgs, result_msgs, results_msgs, stray;
    char first_reject[160];
    char first_error[240];
    hist_t e2e, acc;
    uint64_t t0, t_last_sent, t_first_done, t_last_done, t_all_accepted;
    int conn_next;
} loadgen_t;

static volatile sig_atomic_t interrupted = 0;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static const char usage[] =
    "Usage: scoreline-loadgen --broker EP [options]\n"
    "\n"
    "Submit jobs to a scoreline broker and measure end-to-end throughput and the\n"
    "latency from submission to score event.\n"
    "\n"
    "  --broker EP        the broker's submit endpoint (e.g. tcp://127.0.0.1:5555)\n"
    "  --connections N    submitter connections, jobs spread round robin (default 1)\n"
    "  --jobs N           jobs to submit (default 100000)\n"
    "  --rate R           offered load in jobs/s; 0 = flat out (default 0)\n"
    "  --duration S       with --rate: submit for S seconds (jobs = R x S)\n"
    "  --batch B          jobs per SUBMIT message, 1..10000 (default 100)\n"
    "  --window W         flat out: most jobs submitted and not yet scored\n"
    "                     (default 20000; 0 = no limit)\n"
    "  --window-accepted  the window counts jobs not yet ACCEPTED instead (fill a\n"
    "                     queue with no workers, then wait for the score events)\n"
    "  --rubric ID        rubric id of every job (default: the attempt's, else bench-noop)\n"
    "  --tenant T         tenant of every job (default bench)\n"
    "  --attempt FILE     attempt JSON (proto/ATTEMPT.md) whose responses every job\n"
    "                     carries; repeat to cycle through several. Default: the\n"
    "                     no-op rubric's one answer {\"q1\": \"yes\"}\n"
    "  --run-id ID        job id prefix (default: random); ids are ID-<n>\n"
    "  --no-wait          stop once every job is ACCEPTED (fill a queue)\n"
    "  --single-results   take one RESULT message per job instead of asking for\n"
    "                     RESULTS messages (several score events in one)\n"
    "  --timeout S        give up waiting for score events after S seconds (default 120)\n"
    "  --progress MS      progress line interval on stderr, 0 = none (default 1000)\n"
    "\n"
    "Prints one line of key=value pairs on stdout at the end. Exit status: 0 when\n"
    "every job was scored (or accepted with --no-wait), 1 otherwise, 2 on bad usage.\n";

/* ---- payloads ---------------------------------------------------------- */

static int payload_from_json(payload_t *p, json_t *responses)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (jsonmp_pack(&pk, responses) != 0) {
        msgpack_sbuffer_destroy(&sb);
        return -1;
    }
    msgpack_zone_init(&p->zone, 4096);
    /* The zone keeps the bytes the object points into. */
    char *copy = msgpack_zone_malloc(&p->zone, sb.size);
    memcpy(copy, sb.data, sb.size);
    size_t off = 0;
    int rc = msgpack_unpack(copy, sb.size, &off, &p->zone, &p->responses);
    p->bytes = sb.size;
    msgpack_sbuffer_destroy(&sb);
    return rc == MSGPACK_UNPACK_SUCCESS ? 0 : -1;
}

/* Load the responses (and, when no --rubric was given, the rubric id) of an
 * attempt file. */
static int payload_load(payload_t *p, const char *path, const char **rubric)
{
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        fprintf(stderr, "scoreline-loadgen: %s: %s (line %d)\n", path, je.text, je.line);
        return -1;
    }
    json_t *resp = json_object_get(root, "responses");
    if (!json_is_object(resp)) {
        fprintf(stderr, "scoreline-loadgen: %s: no \"responses\" object\n", path);
        json_decref(root);
        return -1;
    }
    if (!*rubric && json_is_string(json_object_get(root, "rubric")))
        *rubric = strdup(json_string_value(json_object_get(root, "rubric")));
    int rc = payload_from_json(p, resp);
    json_decref(root);
    return rc;
}

/* ---- sending ----------------------------------------------------------- */

/* "<run>-<idx>" into id (80 bytes); returns its length. */
static int job_id(const loadgen_t *g, uint64_t idx, char *id)
{
    size_t n = strlen(g->o.run_id);
    memcpy(id, g->o.run_id, n);
    id[n++] = '-';
    char digits[20];
    int k = 0;
    do {
        digits[k++] = (char)('0' + idx % 10);
        idx /= 10;
    } while (idx);
    while (k)
        id[n++] = digits[--k];
    id[n] = '\0';
    return (int)n;
}

/* Build and send one SUBMIT with jobs [first, first+n). 0 sent, 1 the
 * socket would block (try again later), -1 error. */
static int send_batch(loadgen_t *g, uint64_t first, uint32_t n, uint64_t t_start)
{
    const msgpack_sbuffer *maps[PROTO_MAX_BATCH];
    for (uint32_t i = 0; i < n; i++) {
        uint64_t idx = first + i;
        char id[80];
        int idlen = job_id(g, idx, id);
        const payload_t *p = &g->payloads[idx % (uint64_t)g->o.nattempts];
        proto_job_t job;
        memset(&job, 0, sizeof job);
        job.job_id = proto_strn(id, (size_t)idlen);
        job.tenant = proto_str(g->o.tenant);
        job.rubric = proto_str(g->o.rubric);
        job.responses = &p->responses;
        msgpack_sbuffer_clear(&g->job_bufs[i]);
        if (proto_encode_job_record(&g->job_bufs[i], &job) != 0)
            return -1;
        maps[i] = &g->job_bufs[i];
    }
    uint64_t seq = g->nbatches;
    msgpack_sbuffer_clear(&g->body);
    if (proto_encode_submit_opt(&g->body, seq, !g->o.single_results, maps, n) != 0)
        return -1;
    void *s = g->socks[g->conn_next];
    if (zmq_send(s, PROTO_SIGNATURE, PROTO_SIGNATURE_LEN, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        if (errno == EAGAIN) {
            g->send_blocked++;
            return 1;
        }
        return -1;
    }
    /* The first frame is queued: the rest of the message goes out with it. */
    zmq_send(s, "SUBMIT", 6, ZMQ_SNDMORE);
    zmq_send(s, g->body.data, g->body.size, 0);
    g->conn_next = (g->conn_next + 1) % g->o.connections;
    g->batch_first[seq] = first;
    g->batch_n[seq] = n;
    g->nbatches++;
    g->submit_msgs++;
    for (uint32_t i = 0; i < n; i++) {
        g->t_start[first + i] = t_start;
        g->state[first + i] = JOB_SENT;
    }
    g->sent += n;
    g->t_last_sent = now_ns();
    return 0;
}

/* ---- receiving --------------------------------------------------------- */

/* The job number of an id of this run, or UINT64_MAX. */
static uint64_t job_index(const loadgen_t *g, proto_str_t id)
{
    size_t rl = strlen(g->o.run_id);
    if (id.len <= rl + 1 || memcmp(id.ptr, g->o.run_id, rl) != 0 || id.ptr[rl] != '-')
        return UINT64_MAX;
    uint64_t n = 0;
    for (size_t i = rl + 1; i < id.len; i++) {
        if (id.ptr[i] < '0' || id.ptr[i] > '9')
            return UINT64_MAX;
        n = n * 10 + (uint64_t)(id.ptr[i] - '0');
    }
    return n < g->o.jobs ? n : UINT64_MAX;
}

static void on_accepted(loadgen_t *g, const void *body, size_t len, uint64_t now)
{
    proto_accepted_t a;
    proto_error_t e;
    if (proto_decode_accepted(g->dec, body, len, &a, &e) != PROTO_OK) {
        g->stray++;
        return;
    }
    for (uint32_t i = 0; i < a.njobs; i++) {
        uint64_t idx = job_index(g, a.jobs[i].job_id);
        if (idx == UINT64_MAX || g->state[idx] != JOB_SENT) {
            g->stray++;
            continue;
        }
        g->state[idx] = JOB_ACCEPTED;
        g->accepted++;
        if (a.jobs[i].duplicate)
            g->duplicates++;
        hist_record(&g->acc, now - g->t_start[idx]);
    }
    if (g->accepted + g->rejected >= g->o.jobs && !g->t_all_accepted)
        g->t_all_accepted = now;
}

static void on_rejected(loadgen_t *g, const void *body, size_t len)
{
    proto_rejected_t r;
    proto_error_t e;
    if (proto_decode_rejected(g->dec, body, len, &r, &e) != PROTO_OK) {
        g->stray++;
        return;
    }
    if (!g->first_reject[0])
        snprintf(g->first_reject, sizeof g->first_reject, "%.*s: %.*s",
                 r.njobs ? (int)r.jobs[0].code.len : (int)r.code.len,
                 r.njobs ? r.jobs[0].code.ptr : r.code.ptr,
                 r.njobs ? (int)r.jobs[0].message.len : (int)r.message.len,
                 r.njobs ? r.jobs[0].message.ptr : r.message.ptr);
    if (r.njobs == 0) {
        /* The whole SUBMIT was refused: every job it carried. */
        if (r.seq < g->nbatches)
            for (uint32_t i = 0; i < g->batch_n[r.seq]; i++) {
                uint64_t idx = g->batch_first[r.seq] + i;
                if (g->state[idx] == JOB_SENT) {
                    g->state[idx] = JOB_REJECTED;
                    g->rejected++;
                }
            }
        return;
    }
    for (uint32_t i = 0; i < r.njobs; i++) {
        uint64_t idx = job_index(g, r.jobs[i].job_id);
        if (idx != UINT64_MAX && g->state[idx] == JOB_SENT) {
            g->state[idx] = JOB_REJECTED;
            g->rejected++;
        }
    }
}

/* One score event, its top-level fields read (the result map stays packed). */
static void on_event(loadgen_t *g, const proto_result_t *r, uint64_t now)
{
    uint64_t idx = job_index(g, r->job_id);
    if (idx == UINT64_MAX || g->state[idx] == JOB_DONE || g->state[idx] == JOB_UNSENT ||
        g->state[idx] == JOB_REJECTED) {
        g->stray++;
        return;
    }
    if (g->state[idx] == JOB_SENT) /* RESULT before ACCEPTED cannot happen; count it anyway */
        g->accepted++;
    g->state[idx] = JOB_DONE;
    g->done++;
    if (!proto_str_eq(r->status, "ok")) {
        g->errors++;
        if (!g->first_error[0])
            snprintf(g->first_error, sizeof g->first_error, "%.*s: %.*s", (int)r->error_code.len,
                     r->error_code.ptr, (int)r->error_message.len, r->error_message.ptr);
    }
    hist_record(&g->e2e, now - g->t_start[idx]);
    if (!g->t_first_done)
        g->t_first_done = now;
    g->t_last_done = now;
}

static void on_result(loadgen_t *g, const void *body, size_t len, uint64_t now)
{
    proto_result_t r;
    proto_error_t e;
    if (proto_decode_result_head(body, len, 0, &r, &e) != PROTO_OK) {
        g->stray++;
        return;
    }
    on_event(g, &r, now);
}

typedef struct results_ctx {
    loadgen_t *g;
    uint64_t now;
} results_ctx_t;

static void on_results_element(void *arg, proto_bytes_t elem, proto_err_t rc,
                               const proto_result_t *head, const proto_error_t *eerr)
{
    results_ctx_t *c = arg;
    (void)elem;
    (void)eerr;
    if (rc != PROTO_OK)
        c->g->stray++;
    else
        on_event(c->g, head, c->now);
}

static void on_results(loadgen_t *g, const void *body, size_t len, uint64_t now)
{
    proto_error_t e;
    results_ctx_t c = {g, now};
    g->results_msgs++;
    if (proto_decode_results_each(body, len, 0, PROTO_MAX_BATCH_ITEMS, on_results_element, &c,
                                  &e) != PROTO_OK)
        g->stray++;
}

/* Read every waiting message on every connection. */
static void drain(loadgen_t *g)
{
    for (int c = 0; c < g->o.connections; c++) {
        for (int k = 0; k < 4096; k++) {
            zmq_msg_t f[3];
            int n = 0, more = 1, bad = 0;
            while (more) {
                zmq_msg_t m;
                zmq_msg_init(&m);
                if (zmq_msg_recv(&m, g->socks[c], n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
                    zmq_msg_close(&m);
                    break;
                }
                more = zmq_msg_more(&m);
                if (n < 3)
                    f[n] = m;
                else {
                    zmq_msg_close(&m);
                    bad = 1;
                }
                n++;
            }
            if (n == 0)
                break;
            int kept = n < 3 ? n : 3;
            uint64_t now = now_ns();
            if (!bad && n == 3 && proto_signature_ok(zmq_msg_data(&f[0]), zmq_msg_size(&f[0]))) {
                proto_cmd_t cmd;
                const void *body = zmq_msg_data(&f[2]);
                size_t len = zmq_msg_size(&f[2]);
                if (proto_cmd_parse(zmq_msg_data(&f[1]), zmq_msg_size(&f[1]), &cmd) != PROTO_OK)
                    g->stray++;
                else if (cmd == PROTO_CMD_RESULT) {
                    g->result_msgs++;
                    on_result(g, body, len, now);
                } else if (cmd == PROTO_CMD_RESULTS)
                    on_results(g, body, len, now);
                else if (cmd == PROTO_CMD_ACCEPTED)
                    on_accepted(g, body, len, now);
                else if (cmd == PROTO_CMD_REJECTED)
                    on_rejected(g, body, len);
                else
                    g->stray++;
            } else {
                g->stray++;
            }
            for (int i = 0; i < kept; i++)
                zmq_msg_close(&f[i]);
        }
    }
}

/* ---- the run ----------------------------------------------------------- */

/* Sleep until a connection has input or timeout_ns passes. zmq_poll counts in
 * milliseconds, which at a fixed rate either spins (timeout 0) or sends late;
 * ppoll on the sockets' ZMQ_FD waits to the nanosecond. ZMQ_FD is edge
 * triggered: ZMQ_EVENTS is checked first (which also resets the fd), and the
 * caller drains every socket after each wake-up. */
static void wait_input(loadgen_t *g, uint64_t timeout_ns)
{
    struct pollfd pfd[LOADGEN_MAX_CONN];
    for (int c = 0; c < g->o.connections; c++) {
        int ev = 0;
        size_t sz = sizeof ev;
        zmq_getsockopt(g->socks[c], ZMQ_EVENTS, &ev, &sz);
        if (ev & ZMQ_POLLIN)
            return;
        int fd = -1;
        sz = sizeof fd;
        zmq_getsockopt(g->socks[c], ZMQ_FD, &fd, &sz);
        pfd[c] = (struct pollfd){fd, POLLIN, 0};
    }
    struct timespec ts = {(time_t)(timeout_ns / 1000000000ull), (long)(timeout_ns % 1000000000ull)};
    ppoll(pfd, (nfds_t)g->o.connections, &ts, NULL);
}

static void progress(loadgen_t *g, uint64_t now, uint64_t *last_done, uint64_t *last_t)
{
    double el = (double)(now - g->t0) / 1e9;
    double dt = (double)(now - *last_t) / 1e9;
    double inst = dt > 0 ? (double)(g->done - *last_done) / dt : 0;
    fprintf(stderr,
            "[%6.1fs] sent %llu accepted %llu scored %llu rejected %llu | %.0f jobs/s now, "
            "%.0f avg | p50 %.2f ms p99 %.2f ms | in flight %llu\n",
            el, (unsigned long long)g->sent, (unsigned long long)g->accepted,
            (unsigned long long)g->done, (unsigned long long)g->rejected, inst,
            el > 0 ? (double)g->done / el : 0, (double)hist_percentile(&g->e2e, 50) / 1e6,
            (double)hist_percentile(&g->e2e, 99) / 1e6,
            (unsigned long long)(g->sent - g->done - g->rejected));
    *last_done = g->done;
    *last_t = now;
}

static int finished(const loadgen_t *g)
{
    if (g->sent < g->o.jobs)
        return 0;
    if (g->o.no_wait)
        return g->accepted + g->rejected >= g->o.jobs;
    return g->done + g->rejected >= g->o.jobs;
}

static void run(loadgen_t *g)
{
    const options_t *o = &g->o;
    g->t0 = now_ns();
    uint64_t next_progress = g->t0 + (uint64_t)o->progress_ms * 1000000ull;
    uint64_t last_done = 0, last_t = g->t0;
    uint64_t deadline = 0; /* set when everything is sent */
    double ns_per_job = o->rate > 0 ? 1e9 / o->rate : 0;
    while (!interrupted) {
        uint64_t now = now_ns();
        uint64_t timeout_ns = 100000000ull;
        /* Submit what is due (rate) or what the window allows (flat out). */
        while (g->sent < o->jobs) {
            uint32_t n = o->batch;
            if (o->jobs - g->sent < n)
                n = (uint32_t)(o->jobs - g->sent);
            uint64_t t_start;
            if (o->rate > 0) {
                /* A batch is due when its last job is. */
                uint64_t due = g->t0 + (uint64_t)((double)(g->sent + n - 1) * ns_per_job);
                if (due > now) {
                    if (due - now < timeout_ns)
                        timeout_ns = due - now;
                    break;
                }
                t_start = due;
            } else {
                uint64_t out = g->sent - g->done - g->rejected;
                if (o->no_wait || o->window_accepted)
                    out = g->sent - g->accepted - g->rejected;
                if (o->window && out + n > o->window)
                    break;
                t_start = now;
            }
            int rc = send_batch(g, g->sent, n, t_start);
            if (rc < 0) {
                fprintf(stderr, "scoreline-loadgen: cannot send a SUBMIT: %s\n",
                        zmq_strerror(errno));
                return;
            }
            if (rc > 0) {
                timeout_ns = 1000000ull;
                break;
            }
            now = now_ns();
        }
        if (g->sent >= o->jobs && !deadline)
            deadline = now + (uint64_t)(o->timeout * 1e9);
        if (finished(g))
            break;
        if (deadline && now > deadline) {
            fprintf(stderr, "scoreline-loadgen: timed out waiting for %llu score events\n",
                    (unsigned long long)(o->jobs - g->done - g->rejected));
            break;
        }
        if (o->progress_ms && now >= next_progress) {
            progress(g, now, &last_done, &last_t);
            next_progress += (uint64_t)o->progress_ms * 1000000ull;
        }
        if (o->progress_ms && next_progress > now && next_progress - now < timeout_ns)
            timeout_ns = next_progress - now;
        int was_all_accepted = g->t_all_accepted != 0;
        wait_input(g, timeout_ns);
        drain(g);
        if (!was_all_accepted && g->t_all_accepted && o->progress_ms) {
            fprintf(stderr, "loadgen.all_accepted after %.3f s\n",
                    (double)(g->t_all_accepted - g->t0) / 1e9);
        }
    }
    if (o->progress_ms)
        progress(g, now_ns(), &last_done, &last_t);
}

static void report(const loadgen_t *g, uint64_t t_end)
{
    const options_t *o = &g->o;
    double elapsed = (double)(t_end - g->t0) / 1e9;
    /* Throughput: jobs scored between the first SUBMIT and the last event. */
    double span = g->t_last_done > g->t0 ? (double)(g->t_last_done - g->t0) / 1e9 : elapsed;
    double drain = g->t_last_done > g->t_first_done
                       ? (double)(g->t_last_done - g->t_first_done) / 1e9
                       : 0;
    double accept_span = g->t_all_accepted ? (double)(g->t_all_accepted - g->t0) / 1e9 : 0;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
    printf("loadgen jobs=%llu sent=%llu accepted=%llu duplicates=%llu rejected=%llu "
           "scored=%llu errors=%llu submits=%llu batch=%u connections=%d window=%llu "
           "rate_offered=%.0f payload_bytes=%zu elapsed_s=%.3f scored_per_s=%.0f "
           "accepted_per_s=%.0f drain_s=%.3f drain_per_s=%.0f "
           "e2e_p50_us=%.1f e2e_p90_us=%.1f e2e_p99_us=%.1f e2e_p999_us=%.1f e2e_max_us=%.1f "
           "e2e_mean_us=%.1f acc_p50_us=%.1f acc_p99_us=%.1f loadgen_cpu_s=%.2f stray=%llu "
           "send_blocked=%llu result_msgs=%llu results_msgs=%llu\n",
           (unsigned long long)o->jobs, (unsigned long long)g->sent,
           (unsigned long long)g->accepted, (unsigned long long)g->duplicates,
           (unsigned long long)g->rejected, (unsigned long long)g->done,
           (unsigned long long)g->errors, (unsigned long long)g->submit_msgs, o->batch,
           o->connections, (unsigned long long)o->window, o->rate, g->payloads[0].bytes, elapsed,
           span > 0 ? (double)g->done / span : 0,
           accept_span > 0 ? (double)(g->accepted) / accept_span : 0, drain,
           drain > 0 ? (double)(g->done - 1) / drain : 0,
           (double)hist_percentile(&g->e2e, 50) / 1e3, (double)hist_percentile(&g->e2e, 90) / 1e3,
           (double)hist_percentile(&g->e2e, 99) / 1e3,
           (double)hist_percentile(&g->e2e, 99.9) / 1e3,
           g->e2e.total ? (double)g->e2e.max / 1e3 : 0, hist_mean(&g->e2e) / 1e3,
           (double)hist_percentile(&g->acc, 50) / 1e3, (double)hist_percentile(&g->acc, 99) / 1e3,
           cpu, (unsigned long long)g->stray, (unsigned long long)g->send_blocked,
           (unsigned long long)g->result_msgs, (unsigned long long)g->results_msgs);
    fflush(stdout);
    if (g->first_reject[0])
        fprintf(stderr, "scoreline-loadgen: first rejection: %s\n", g->first_reject);
    if (g->first_error[0])
        fprintf(stderr, "scoreline-loadgen: first error result: %s\n", g->first_error);
}

static int parse_u64(const char *flag, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || end == s || v < min || v > max || s[0] == '-') {
        fprintf(stderr, "scoreline-loadgen: %s: expected an integer in %llu..%llu, got '%s'\n",
                flag, (unsigned long long)min, (unsigned long long)max, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_double(const char *flag, const char *s, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (*end || end == s || v < 0) {
        fprintf(stderr, "scoreline-loadgen: %s: expected a number >= 0, got '%s'\n", flag, s);
        return -1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    static loadgen_t g; /* large: two histograms */
    options_t *o = &g.o;
    o->connections = 1;
    o->jobs = 100000;
    o->batch = 100;
    o->window = 20000;
    o->tenant = "bench";
    o->timeout = 120;
    o->progress_ms = 1000;
    int jobs_given = 0;
    static const struct option longopts[] = {
        {"broker", required_argument, 0, 'b'},   {"connections", required_argument, 0, 'c'},
        {"jobs", required_argument, 0, 'n'},     {"rate", required_argument, 0, 'r'},
        {"duration", required_argument, 0, 'd'}, {"batch", required_argument, 0, 'B'},
        {"window", required_argument, 0, 'w'},   {"rubric", required_argument, 0, 'R'},
        {"tenant", required_argument, 0, 't'},   {"attempt", required_argument, 0, 'a'},
        {"run-id", required_argument, 0, 'i'},   {"no-wait", no_argument, 0, 'N'},
        {"timeout", required_argument, 0, 'T'},  {"progress", required_argument, 0, 'p'},
        {"window-accepted", no_argument, 0, 'A'}, {"single-results", no_argument, 0, 'S'},
        {"help", no_argument, 0, 'h'},           {0, 0, 0, 0}};
    uint64_t v;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'b': o->broker = optarg; break;
        case 'c':
            if (parse_u64("--connections", optarg, 1, LOADGEN_MAX_CONN, &v))
                return 2;
            o->connections = (int)v;
            break;
        case 'n':
            if (parse_u64("--jobs", optarg, 1, 100000000, &o->jobs))
                return 2;
            jobs_given = 1;
            break;
        case 'r':
            if (parse_double("--rate", optarg, &o->rate))
                return 2;
            break;
        case 'd':
            if (parse_double("--duration", optarg, &o->duration))
                return 2;
            break;
        case 'B':
            if (parse_u64("--batch", optarg, 1, PROTO_MAX_BATCH, &v))
                return 2;
            o->batch = (uint32_t)v;
            break;
        case 'w':
            if (parse_u64("--window", optarg, 0, 100000000, &o->window))
                return 2;
            break;
        case 'R': o->rubric = optarg; break;
        case 't': o->tenant = optarg; break;
        case 'a':
            if (o->nattempts >= LOADGEN_MAX_ATTEMPTS) {
                fprintf(stderr, "scoreline-loadgen: at most %d --attempt files\n",
                        LOADGEN_MAX_ATTEMPTS);
                return 2;
            }
            o->attempts[o->nattempts++] = optarg;
            break;
        case 'i': snprintf(o->run_id, sizeof o->run_id, "%s", optarg); break;
        case 'N': o->no_wait = 1; break;
        case 'A': o->window_accepted = 1; break;
        case 'S': o->single_results = 1; break;
        case 'T':
            if (parse_double("--timeout", optarg, &o->timeout))
                return 2;
            break;
        case 'p':
            if (parse_u64("--progress", optarg, 0, 3600000, &v))
                return 2;
            o->progress_ms = (int)v;
            break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (!o->broker || optind != argc) {
        fputs(usage, stderr);
        return 2;
    }
    if (o->duration > 0) {
        if (o->rate <= 0) {
            fprintf(stderr, "scoreline-loadgen: --duration needs --rate\n");
            return 2;
        }
        if (!jobs_given)
            o->jobs = (uint64_t)(o->rate * o->duration + 0.5);
        if (o->jobs < 1)
            o->jobs = 1;
    }
    if (o->window && o->window < o->batch)
        o->window = o->batch;
    if (!o->run_id[0]) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        snprintf(o->run_id, sizeof o->run_id, "lg%lx%05x", (unsigned long)ts.tv_sec,
                 (unsigned)((ts.tv_nsec / 1000) ^ getpid()) & 0xfffff);
    }
    for (int i = 0; i < o->nattempts; i++)
        if (payload_load(&g.payloads[i], o->attempts[i], &o->rubric) != 0)
            return 2;
    if (o->nattempts == 0) {
        json_t *resp = json_pack("{s:s}", "q1", "yes");
        if (payload_from_json(&g.payloads[0], resp) != 0)
            return 1;
        json_decref(resp);
        o->nattempts = 1;
    }
    if (!o->rubric)
        o->rubric = "bench-noop";

    g.t_start = calloc(o->jobs, sizeof *g.t_start);
    g.state = calloc(o->jobs, 1);
    g.batch_first = calloc(o->jobs, sizeof *g.batch_first);
    g.batch_n = calloc(o->jobs, sizeof *g.batch_n);
    g.job_bufs = calloc(o->batch, sizeof *g.job_bufs);
    g.dec = proto_decoder_new(0);
    g.ctx = zmq_ctx_new();
    if (!g.t_start || !g.state || !g.batch_first || !g.batch_n || !g.job_bufs || !g.dec ||
        !g.ctx) {
        fprintf(stderr, "scoreline-loadgen: out of memory\n");
        return 1;
    }
    for (uint32_t i = 0; i < o->batch; i++)
        msgpack_sbuffer_init(&g.job_bufs[i]);
    msgpack_sbuffer_init(&g.body);
    hist_init(&g.e2e);
    hist_init(&g.acc);
    for (int c = 0; c < o->connections; c++) {
        void *s = zmq_socket(g.ctx, ZMQ_DEALER);
        int linger = 0, hwm = 1000000;
        zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
        zmq_setsockopt(s, ZMQ_RCVHWM, &hwm, sizeof hwm);
        if (zmq_connect(s, o->broker) != 0) {
            fprintf(stderr, "scoreline-loadgen: cannot connect to %s: %s\n", o->broker,
                    zmq_strerror(errno));
            return 2;
        }
        g.socks[c] = s;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    /* Let the connections come up before the clock starts. */
    usleep(100000);
    run(&g);
    report(&g, now_ns());
    for (int c = 0; c < o->connections; c++)
        zmq_close(g.socks[c]);
    zmq_ctx_term(g.ctx);
    int ok = o->no_wait ? g.accepted >= o->jobs : g.done >= o->jobs;
    return ok && !interrupted ? 0 : 1;
}
