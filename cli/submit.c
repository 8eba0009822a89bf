/*
 * submit.c - `scoreline submit FILE...`: turn attempt files into job records,
 * send them to the broker in SUBMIT batches over a ZeroMQ DEALER, and print
 * one JSON line per job as the broker answers (ACCEPTED / REJECTED) and the
 * workers' RESULTs come back on the same connection.
 *
 * Everything is validated locally before the first byte is sent, so a typo
 * in one file never leaves half a run submitted. Job ids are idempotency
 * keys, which makes resending an unanswered batch safe: the broker answers a
 * job it already holds as a duplicate. Jobs refused for a passing reason
 * (queue_full, journal_unavailable, shutting_down) are sent again with
 * back-off. At most SUBMIT_WINDOW SUBMITs are unanswered at a time, so a
 * large run cannot flood the broker.
 */
#include "cli/attempt.h"
#include "cli/cli.h"
#include "cli/event_json.h"
#include "cli/rubric_file.h"

#include "common/clock.h"
#include "common/log.h"
#include "grading/grading.h"
#include "proto/proto.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#define SUBMIT_WINDOW 8             /* SUBMIT messages awaiting an answer at once */
#define SUBMIT_RESEND_MS 5000       /* resend a batch unanswered for this long */
#define SUBMIT_REASK_MS 5000        /* ask again for results after this much silence */
#define SUBMIT_BODY_SLACK 1024      /* room for the SUBMIT map around the job records */
#define SUBMIT_PROGRESS_MIN_JOBS 20 /* show the progress line above this many jobs */
#define SUBMIT_PROGRESS_EVERY_MS 100
#define SUBMIT_RETRY_FIRST_MS 250 /* back-off after queue_full & co, doubling */
#define SUBMIT_RETRY_MAX_MS 5000
#define SUBMIT_DRAIN_MAX 256 /* messages handled between two looks at the clock */

static const char submit_usage[] =
    "Usage: scoreline submit FILE... [--no-wait] [--timeout SECONDS] [--tenant T]\n"
    "                        [--batch N] [--rubric FILE [--inline]]\n"
    "\n"
    "Submit attempt files (proto/ATTEMPT.md; \"-\" reads one from stdin) to the broker at\n"
    "--broker (env SCORELINE_SUBMIT, default tcp://127.0.0.1:5555) and print one JSON line\n"
    "per job on stdout as the answers arrive. Every file is validated before anything is\n"
    "sent; an invalid file stops the run (exit 1) with nothing submitted.\n"
    "\n"
    "  --no-wait          stop once every job is accepted; print\n"
    "                     {\"job_id\":..,\"status\":\"accepted\",\"state\":..,\"duplicate\":..}\n"
    "                     (state: queued | running | done)\n"
    "  --timeout SECONDS  give up when the broker has sent nothing for this long (default 60)\n"
    "  --tenant T         tenant for attempts that have none (default \"default\")\n"
    "  --batch N          jobs per SUBMIT message (default 500, at most 10000); batches are\n"
    "                     also cut to stay under the 4 MiB message limit\n"
    "  --rubric FILE      a rubric JSON file: validated, its id fills attempts that name no\n"
    "                     rubric, and an attempt naming another id is an error\n"
    "  --inline           carry the --rubric JSON in every job (rubric_inline), for rubrics\n"
    "                     not pushed to Redis\n"
    "\n"
    "A job without job_id gets `job-` + 32 random hex digits, reported on stderr.\n"
    "Jobs refused for a passing reason (queue_full, journal_unavailable, shutting_down,\n"
    "internal_error) are sent again with back-off (0.25 s doubling to 5 s) for up to\n"
    "--timeout seconds; a SUBMIT left unanswered for 5 s is sent again (same job ids, so\n"
    "nothing is graded twice). When accepted jobs wait for their results and the broker\n"
    "has been silent for 5 s, they are submitted again too: the broker answers with their\n"
    "state and routes their results here (or re-sends a stored one), which is how results\n"
    "still arrive after a broker restart.\n"
    "\n"
    "stdout, one line per job, in the order answers arrive:\n"
    "  a RESULT: the score event as JSON, all its fields in wire order (v, job_id, tenant,\n"
    "    candidate, rubric, rubric_hash, engine, worker, attempt, accepted_us, started_us,\n"
    "    finished_us, duration_us, status, then result + digest or error {code, message})\n"
    "  a rejected job: "
    "{\"job_id\":..,\"status\":\"rejected\",\"error\":{\"code\":..,\"message\":..}}\n"
    "    (also for an accepted job the broker gave up on: code dead_letter)\n"
    "  after a timeout, each job still without a result:\n"
    "    "
    "{\"job_id\":..,\"status\":\"pending\",\"state\":\"unanswered\"|\"queued\"|\"running\"|"
    "\"done\"}\n"
    "\n"
    "stderr: a progress line when stderr is a terminal and there are more than 20 jobs,\n"
    "and always a final summary `scoreline: N jobs: A ok, B failed, C rejected` (with\n"
    "--no-wait: `scoreline: N jobs: A accepted, C rejected`).\n"
    "\n"
    "Exit: 0 every job ok (--no-wait: accepted); 1 a job failed or was rejected, or a\n"
    "file is invalid; 2 usage or unreadable file; 3 the broker did not answer in time\n"
    "([broker_unavailable] when nothing was accepted, [timeout] when results are missing);\n"
    "130 interrupted by SIGINT/SIGTERM (the summary is still printed).\n";

/* Where a job is in its life. */
typedef enum submit_phase {
    PHASE_PENDING = 0, /* to send (first time, resend or retry after back-off) */
    PHASE_SENT,        /* in a SUBMIT awaiting its answer */
    PHASE_ACCEPTED,    /* journaled by the broker; waiting for the RESULT */
    PHASE_DONE         /* RESULT received, or rejected for good */
} submit_phase_t;

/* One job of the run. */
typedef struct submit_job {
    char *job_id;
    const char *file;
    msgpack_sbuffer record; /* packed job map, released once the job is accepted */
    uint8_t phase;
    uint8_t sent_once;
    uint8_t rejected; /* final rejection */
    uint8_t ok;       /* RESULT with status "ok" */
    uint8_t state;    /* proto_job_state_t from ACCEPTED */
    uint8_t accepted_once;
    uint32_t msg;     /* seq of the SUBMIT that carries it now */
    uint32_t retries;
    int64_t not_before_ms;  /* retry back-off */
    int64_t retry_since_ms; /* first retryable rejection, 0 = none */
} submit_job_t;

/* One SUBMIT message sent (index seq - 1). */
typedef struct submit_msg {
    uint32_t *jobs;
    uint32_t count;
    uint32_t unanswered; /* jobs still waiting for an answer to this message */
    int64_t sent_ms;
} submit_msg_t;

typedef struct submit_run {
    const cli_globals_t *g;
    submit_job_t *jobs;
    uint32_t njobs;
    uint32_t *by_id;   /* job indices sorted by job_id, for lookups */
    uint32_t next_new; /* first job never sent */
    uint32_t *retry;   /* jobs waiting to be sent again */
    uint32_t nretry;
    submit_msg_t *msgs;
    uint32_t nmsgs, capmsgs;
    uint32_t inflight; /* messages with unanswered jobs */
    uint32_t per_batch;
    uint32_t sent, accepted, rejected, results, ok, failed;
    int64_t timeout_ms;
    int no_wait;
    int progress;
    int64_t last_progress_ms;
    proto_decoder_t *dec;
    void *sock;
} submit_run_t;

static volatile sig_atomic_t submit_stop;

static void submit_on_signal(int sig)
{
    submit_stop = sig;
}

/* ---- job table ------------------------------------------------------- */

static const submit_job_t *submit_sort_jobs;

static int submit_cmp_index(const void *a, const void *b)
{
    return strcmp(submit_sort_jobs[*(const uint32_t *)a].job_id,
                  submit_sort_jobs[*(const uint32_t *)b].job_id);
}

/* Sort the id index; report duplicate job ids. Returns 0 or an exit code. */
static int submit_index_jobs(submit_run_t *run)
{
    run->by_id = malloc(((size_t)run->njobs + 1) * sizeof *run->by_id);
    run->retry = malloc(((size_t)run->njobs + 1) * sizeof *run->retry);
    if (!run->by_id || !run->retry) {
        cli_error("out_of_memory", "cannot index the jobs");
        return CLI_EXIT_FAILED;
    }
    for (uint32_t i = 0; i < run->njobs; i++)
        run->by_id[i] = i;
    submit_sort_jobs = run->jobs;
    qsort(run->by_id, run->njobs, sizeof *run->by_id, submit_cmp_index);
    for (uint32_t i = 1; i < run->njobs; i++) {
        const submit_job_t *a = &run->jobs[run->by_id[i - 1]], *b = &run->jobs[run->by_id[i]];
        if (strcmp(a->job_id, b->job_id) == 0) {
            cli_error("duplicate_job_id", "%s and %s both have job id %s", a->file, b->file,
                      a->job_id);
            return CLI_EXIT_FAILED;
        }
    }
    return CLI_EXIT_OK;
}

/* The job with this id, or NULL. */
static submit_job_t *submit_find(submit_run_t *run, proto_str_t id)
{
    uint32_t lo = 0, hi = run->njobs;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        submit_job_t *j = &run->jobs[run->by_id[mid]];
        size_t jl = strlen(j->job_id);
        size_t n = jl < id.len ? jl : id.len;
        int c = n ? memcmp(j->job_id, id.ptr, n) : 0;
        if (c == 0)
            c = jl < id.len ? -1 : jl > id.len ? 1 : 0;
        if (c == 0)
            return j;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* ---- loading --------------------------------------------------------- */

typedef struct submit_opts {
    const char *tenant; /* for attempts without one */
    int inline_rubric;  /* carry the rubric text in each job */
} submit_opts_t;

/* Read one attempt file into job j. Returns an exit code. */
static int submit_load_job(const char *file, const submit_opts_t *o, const grading_rubric_t *r,
                           const char *rubric_text, size_t rubric_len, submit_job_t *j)
{
    char *text;
    size_t len;
    j->file = file;
    msgpack_sbuffer_init(&j->record);
    if (cli_read_file(file, &text, &len) != 0)
        return CLI_EXIT_USAGE;
    attempt_t a;
    attempt_error_t e;
    attempt_err_t ar = attempt_parse(text, len, &a, &e);
    free(text);
    if (ar != ATTEMPT_OK) {
        if (e.path[0])
            cli_error(attempt_err_code(ar), "%s: %s: %s", file, e.path, e.message);
        else
            cli_error(attempt_err_code(ar), "%s: %s", file, e.message);
        return CLI_EXIT_FAILED;
    }
    int rc = CLI_EXIT_OK;
    if (r && a.rubric && strcmp(a.rubric, grading_rubric_id(r)) != 0) {
        cli_error("rubric_mismatch", "%s names rubric '%s' but --rubric is '%s'", file, a.rubric,
                  grading_rubric_id(r));
        attempt_clear(&a);
        return CLI_EXIT_FAILED;
    }
    char generated[ATTEMPT_JOB_ID_LEN + 1];
    if (!a.job_id) {
        attempt_generate_job_id(generated);
        cli_note("generated job id %s for %s", generated, file);
    }
    attempt_job_opts_t jo = {
        .job_id = a.job_id ? NULL : generated,
        .tenant = o->tenant,
        .rubric = r ? grading_rubric_id(r) : NULL,
        .rubric_inline = o->inline_rubric ? rubric_text : NULL,
        .rubric_inline_len = o->inline_rubric ? rubric_len : 0,
    };
    j->job_id = strdup(a.job_id ? a.job_id : generated);
    if (!j->job_id) {
        cli_error("out_of_memory", "cannot load %s", file);
        rc = CLI_EXIT_FAILED;
    } else if (attempt_to_job_record(&a, &jo, &j->record, &e) != ATTEMPT_OK) {
        cli_error(attempt_err_code(e.code), "%s: %s: %s", file, e.path, e.message);
        rc = CLI_EXIT_FAILED;
    } else if (j->record.size + SUBMIT_BODY_SLACK > PROTO_DEFAULT_MAX_BODY) {
        cli_error("job_too_large", "%s: the job is %zu bytes, above the %u byte message limit",
                  file, j->record.size, PROTO_DEFAULT_MAX_BODY - SUBMIT_BODY_SLACK);
        rc = CLI_EXIT_FAILED;
    }
    attempt_clear(&a);
    return rc;
}

/* ---- output ---------------------------------------------------------- */

static void submit_progress(submit_run_t *run, int final)
{
    if (!run->progress)
        return;
    int64_t now = clock_mono_ms();
    if (!final && now - run->last_progress_ms < SUBMIT_PROGRESS_EVERY_MS)
        return;
    run->last_progress_ms = now;
    char line[160];
    int n;
    if (final)
        n = snprintf(line, sizeof line, "\r\033[K");
    else
        n = snprintf(line, sizeof line, "\r\033[Ksubmitted %u/%u accepted %u results %u", run->sent,
                     run->njobs, run->accepted, run->results);
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}

static void submit_print_rejected(const char *job_id, proto_str_t code, proto_str_t message)
{
    json_t *o = json_pack("{s:s, s:s, s:{s:s%, s:s%}}", "job_id", job_id, "status", "rejected",
                          "error", "code", code.len ? code.ptr : "", (size_t)code.len, "message",
                          message.len ? message.ptr : "", (size_t)message.len);
    if (o)
        cli_print_json_line(o);
    json_decref(o);
}

/* ---- job life ---------------------------------------------------------- */

/* Job j got an answer (ACCEPTED, REJECTED or RESULT) while it was in a
 * SUBMIT: one fewer unanswered job in that message. */
static void submit_answered(submit_run_t *run, submit_job_t *j)
{
    if (j->phase != PHASE_SENT)
        return;
    submit_msg_t *m = &run->msgs[j->msg - 1];
    if (m->unanswered && --m->unanswered == 0) {
        run->inflight--;
        free(m->jobs);
        m->jobs = NULL;
    }
}

/* Put job j back in line to be sent again at not_before_ms. */
static void submit_requeue(submit_run_t *run, submit_job_t *j, int64_t not_before_ms)
{
    submit_answered(run, j);
    j->phase = PHASE_PENDING;
    j->not_before_ms = not_before_ms;
    run->retry[run->nretry++] = (uint32_t)(j - run->jobs);
}

static void submit_accept(submit_run_t *run, submit_job_t *j, proto_job_state_t state,
                          int duplicate, int print)
{
    if (j->phase >= PHASE_ACCEPTED)
        return; /* a resent job may be answered twice: the first answer stands */
    submit_answered(run, j);
    j->phase = PHASE_ACCEPTED;
    j->state = (uint8_t)state;
    if (j->accepted_once)
        return; /* asked again for its result: counted and printed already */
    j->accepted_once = 1;
    run->accepted++;
    if (print && run->no_wait) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:b}", "job_id", j->job_id, "status", "accepted",
                              "state", proto_state_name(state), "duplicate", duplicate);
        if (o)
            cli_print_json_line(o);
        json_decref(o);
    }
}

/* Codes worth another try (PROTOCOL.md 8.1 and 8.2, "Retry? yes"). */
static int submit_retryable(proto_str_t code)
{
    return proto_str_eq(code, "queue_full") || proto_str_eq(code, "journal_unavailable") ||
           proto_str_eq(code, "shutting_down") || proto_str_eq(code, "internal_error");
}

/* A rejection of job j: retried with back-off when the code allows and the
 * job has not been retrying for longer than --timeout, else final. */
static void submit_reject(submit_run_t *run, submit_job_t *j, proto_str_t code, proto_str_t message)
{
    if (j->phase >= PHASE_ACCEPTED || (j->phase == PHASE_PENDING && j->sent_once))
        return; /* already accepted, or already waiting for a retry */
    int64_t now = clock_mono_ms();
    if (submit_retryable(code)) {
        if (!j->retry_since_ms)
            j->retry_since_ms = now;
        if (now - j->retry_since_ms < run->timeout_ms) {
            int64_t backoff = SUBMIT_RETRY_FIRST_MS << (j->retries < 5 ? j->retries : 5);
            if (backoff > SUBMIT_RETRY_MAX_MS)
                backoff = SUBMIT_RETRY_MAX_MS;
            j->retries++;
            log_info("submit.retry", "job_id=%s code=%.*s in_ms=%lld", j->job_id, (int)code.len,
                     code.ptr, (long long)backoff);
            submit_requeue(run, j, now + backoff);
            return;
        }
    }
    submit_answered(run, j);
    j->phase = PHASE_DONE;
    j->rejected = 1;
    run->rejected++;
    msgpack_sbuffer_destroy(&j->record);
    msgpack_sbuffer_init(&j->record);
    submit_print_rejected(j->job_id, code, message);
}

/* The broker gave up on an accepted job (dead_letter): final, no result. */
static void submit_given_up(submit_run_t *run, submit_job_t *j, proto_str_t code,
                            proto_str_t message)
{
    submit_answered(run, j);
    j->phase = PHASE_DONE;
    j->rejected = 1;
    run->rejected++;
    submit_print_rejected(j->job_id, code, message);
}

/* After SUBMIT_REASK_MS of silence, submit accepted jobs without a result
 * again: a restarted broker no longer knows where to send their results. */
static void submit_reask(submit_run_t *run, int64_t now)
{
    if (run->no_wait)
        return;
    /* Drop stale entries first so the list never outgrows its njobs slots. */
    uint32_t keep = 0;
    for (uint32_t i = 0; i < run->nretry; i++)
        if (run->jobs[run->retry[i]].phase == PHASE_PENDING)
            run->retry[keep++] = run->retry[i];
    run->nretry = keep;
    uint32_t n = 0;
    for (uint32_t i = 0; i < run->njobs; i++) {
        submit_job_t *j = &run->jobs[i];
        if (j->phase != PHASE_ACCEPTED || j->record.size == 0)
            continue;
        j->phase = PHASE_PENDING;
        j->not_before_ms = now;
        run->retry[run->nretry++] = i;
        n++;
    }
    if (n)
        log_info("submit.reask", "jobs=%u", n);
}

/* ---- sending --------------------------------------------------------- */

/* Send one SUBMIT with the given jobs. Returns 0, or -1 when it could not
 * be queued (the jobs stay pending). */
static int submit_send(submit_run_t *run, const uint32_t *idx, uint32_t count)
{
    if (run->nmsgs == run->capmsgs) {
        uint32_t cap = run->capmsgs ? run->capmsgs * 2 : 64;
        submit_msg_t *bigger = realloc(run->msgs, cap * sizeof *bigger);
        if (!bigger)
            return -1;
        run->msgs = bigger;
        run->capmsgs = cap;
    }
    const msgpack_sbuffer **maps = malloc(count * sizeof *maps);
    uint32_t *copy = malloc(count * sizeof *copy);
    msgpack_sbuffer body;
    msgpack_sbuffer_init(&body);
    int rc = (maps && copy) ? 0 : -1;
    for (uint32_t i = 0; rc == 0 && i < count; i++)
        maps[i] = &run->jobs[idx[i]].record;
    uint32_t seq = run->nmsgs + 1;
    if (rc == 0)
        rc = proto_encode_submit(&body, seq, maps, count);
    free(maps);
    if (rc == 0) {
        const char *cmd = proto_cmd_name(PROTO_CMD_SUBMIT);
        if (zmq_send(run->sock, PROTO_SIGNATURE, PROTO_SIGNATURE_LEN, ZMQ_SNDMORE | ZMQ_DONTWAIT) <
                0 ||
            zmq_send(run->sock, cmd, strlen(cmd), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
            zmq_send(run->sock, body.data, body.size, ZMQ_DONTWAIT) < 0)
            rc = -1; /* the DEALER sends all frames or none */
    }
    msgpack_sbuffer_destroy(&body);
    if (rc != 0) {
        free(copy);
        return -1;
    }
    memcpy(copy, idx, count * sizeof *copy);
    run->msgs[run->nmsgs++] = (submit_msg_t){copy, count, count, clock_mono_ms()};
    run->inflight++;
    for (uint32_t i = 0; i < count; i++) {
        submit_job_t *j = &run->jobs[idx[i]];
        if (!j->sent_once)
            run->sent++;
        j->sent_once = 1;
        j->phase = PHASE_SENT;
        j->msg = seq;
    }
    log_debug("submit.sent", "seq=%u jobs=%u", seq, count);
    return 0;
}

/* Declare messages unanswered for SUBMIT_RESEND_MS lost: their jobs go back
 * in line (resending is safe: job ids are idempotency keys). */
static void submit_expire(submit_run_t *run, int64_t now)
{
    for (uint32_t s = 0; s < run->nmsgs; s++) {
        submit_msg_t *m = &run->msgs[s];
        if (!m->unanswered || now - m->sent_ms < SUBMIT_RESEND_MS)
            continue;
        log_info("submit.resend", "seq=%u unanswered=%u", s + 1, m->unanswered);
        for (uint32_t i = 0; i < m->count; i++) {
            submit_job_t *j = &run->jobs[m->jobs[i]];
            if (j->phase == PHASE_SENT && j->msg == s + 1) {
                j->phase = PHASE_PENDING;
                j->not_before_ms = now;
                run->retry[run->nretry++] = m->jobs[i];
            }
        }
        m->unanswered = 0;
        free(m->jobs);
        m->jobs = NULL;
        run->inflight--;
    }
}

/* Send what is due while the window has room: retries first, then new jobs,
 * at most --batch jobs and the body limit per SUBMIT. */
static void submit_pump(submit_run_t *run)
{
    int64_t now = clock_mono_ms();
    submit_expire(run, now);
    uint32_t *batch = malloc(run->per_batch * sizeof *batch);
    if (!batch)
        return;
    while (run->inflight < SUBMIT_WINDOW) {
        uint32_t n = 0;
        size_t bytes = 0;
        /* due retries (the list is compacted as it is read) */
        uint32_t keep = 0;
        for (uint32_t i = 0; i < run->nretry; i++) {
            uint32_t k = run->retry[i];
            submit_job_t *j = &run->jobs[k];
            if (j->phase != PHASE_PENDING)
                continue; /* answered meanwhile */
            size_t sz = j->record.size;
            if (n < run->per_batch && j->not_before_ms <= now &&
                bytes + sz + SUBMIT_BODY_SLACK <= PROTO_DEFAULT_MAX_BODY) {
                batch[n++] = k;
                bytes += sz;
            } else {
                run->retry[keep++] = k;
            }
        }
        run->nretry = keep;
        uint32_t from_new = run->next_new;
        while (n < run->per_batch && run->next_new < run->njobs) {
            size_t sz = run->jobs[run->next_new].record.size;
            if (n && bytes + sz + SUBMIT_BODY_SLACK > PROTO_DEFAULT_MAX_BODY)
                break;
            batch[n++] = run->next_new++;
            bytes += sz;
        }
        if (n == 0)
            break;
        if (submit_send(run, batch, n) != 0) {
            /* could not queue it now: put everything back and try later */
            for (uint32_t i = 0; i < n; i++)
                if (batch[i] < from_new)
                    run->retry[run->nretry++] = batch[i];
            run->next_new = from_new;
            break;
        }
    }
    free(batch);
}

/* ---- receiving ------------------------------------------------------- */

static void submit_on_accepted(submit_run_t *run, const void *body, size_t len)
{
    proto_accepted_t m;
    proto_error_t e;
    if (proto_decode_accepted(run->dec, body, len, &m, &e) != PROTO_OK) {
        cli_error("bad_message", "ignoring an invalid ACCEPTED from the broker: %s", e.message);
        return;
    }
    for (uint32_t i = 0; i < m.njobs; i++) {
        submit_job_t *j = submit_find(run, m.jobs[i].job_id);
        if (j)
            submit_accept(run, j, m.jobs[i].state, m.jobs[i].duplicate, 1);
    }
}

static void submit_on_rejected(submit_run_t *run, const void *body, size_t len)
{
    proto_rejected_t m;
    proto_error_t e;
    if (proto_decode_rejected(run->dec, body, len, &m, &e) != PROTO_OK) {
        cli_error("bad_message", "ignoring an invalid REJECTED from the broker: %s", e.message);
        return;
    }
    for (uint32_t i = 0; i < m.njobs; i++) {
        submit_job_t *j = submit_find(run, m.jobs[i].job_id);
        if (j && proto_str_eq(m.jobs[i].code, "dead_letter") && j->phase != PHASE_DONE)
            submit_given_up(run, j, m.jobs[i].code, m.jobs[i].message);
        else if (j && j->phase == PHASE_SENT && j->msg == m.seq)
            submit_reject(run, j, m.jobs[i].code, m.jobs[i].message);
    }
    if (m.njobs)
        return;
    /* A rejection of the whole message (too large, shutting down, ...) names
     * no jobs: it applies to every job that message still carries. */
    if (m.seq >= 1 && m.seq <= run->nmsgs && run->msgs[m.seq - 1].jobs) {
        submit_msg_t *msg = &run->msgs[m.seq - 1];
        uint32_t count = msg->count;
        uint32_t *idx = malloc(count * sizeof *idx);
        if (!idx)
            return;
        memcpy(idx, msg->jobs, count * sizeof *idx); /* msg->jobs is freed on the last answer */
        for (uint32_t i = 0; i < count; i++) {
            submit_job_t *j = &run->jobs[idx[i]];
            if (j->phase == PHASE_SENT && j->msg == m.seq)
                submit_reject(run, j, m.code, m.message);
        }
        free(idx);
    } else if (m.seq < 1 || m.seq > run->nmsgs) {
        cli_error("broker_rejected", "the broker rejected a message (seq %llu): %.*s: %.*s",
                  (unsigned long long)m.seq, (int)m.code.len, m.code.ptr, (int)m.message.len,
                  m.message.ptr);
    }
}

static void submit_on_result(submit_run_t *run, const void *body, size_t len)
{
    proto_result_t m;
    proto_error_t e;
    if (proto_decode_result(run->dec, body, len, &m, &e) != PROTO_OK) {
        cli_error("bad_message", "ignoring an invalid RESULT from the broker: %s", e.message);
        return;
    }
    submit_job_t *j = submit_find(run, m.job_id);
    if (!j || j->phase == PHASE_DONE)
        return; /* not ours, or a second copy */
    /* a RESULT before (or instead of) its ACCEPTED still settles the job */
    submit_accept(run, j, PROTO_STATE_DONE, 1, 0);
    j->phase = PHASE_DONE;
    j->ok = proto_str_eq(m.status, "ok");
    run->results++;
    if (j->ok)
        run->ok++;
    else
        run->failed++;
    if (run->no_wait)
        return; /* --no-wait prints acceptances only */
    json_t *o = event_json_from_body(body, len, NULL);
    if (o)
        cli_print_json_line(o);
    json_decref(o);
}

/* Read the messages waiting on the socket, at most SUBMIT_DRAIN_MAX so the
 * progress line and the sending side get their turn. Returns how many. */
static int submit_drain(submit_run_t *run)
{
    int count = 0;
    while (count < SUBMIT_DRAIN_MAX) {
        zmq_msg_t frames[3];
        int nframes = 0, more = 1, failed = 0;
        while (more) {
            zmq_msg_t tmp;
            zmq_msg_init(&tmp);
            if (zmq_msg_recv(&tmp, run->sock, nframes == 0 ? ZMQ_DONTWAIT : 0) < 0) {
                zmq_msg_close(&tmp);
                failed = 1;
                break;
            }
            more = zmq_msg_more(&tmp);
            if (nframes < 3)
                frames[nframes] = tmp;
            else
                zmq_msg_close(&tmp);
            nframes++;
        }
        if (failed && nframes == 0)
            return count;
        count++;
        int kept = nframes < 3 ? nframes : 3;
        proto_cmd_t cmd;
        if (failed || nframes != 3) {
            cli_error("bad_message", "ignoring a broker message of %d frames (expected 3)",
                      nframes);
        } else if (!proto_signature_ok(zmq_msg_data(&frames[0]), zmq_msg_size(&frames[0]))) {
            cli_error("bad_message", "ignoring a message without the SCL1 signature");
        } else if (proto_cmd_parse(zmq_msg_data(&frames[1]), zmq_msg_size(&frames[1]), &cmd) !=
                   PROTO_OK) {
            log_warn("submit.unknown_command", "size=%zu", zmq_msg_size(&frames[1]));
        } else {
            const void *body = zmq_msg_data(&frames[2]);
            size_t len = zmq_msg_size(&frames[2]);
            if (cmd == PROTO_CMD_ACCEPTED)
                submit_on_accepted(run, body, len);
            else if (cmd == PROTO_CMD_REJECTED)
                submit_on_rejected(run, body, len);
            else if (cmd == PROTO_CMD_RESULT)
                submit_on_result(run, body, len);
            else
                log_debug("submit.ignored", "command=%s", proto_cmd_name(cmd));
        }
        for (int i = 0; i < kept; i++)
            zmq_msg_close(&frames[i]);
    }
    return count;
}

/* 1 when there is nothing left to wait for. */
static int submit_finished(const submit_run_t *run)
{
    if (run->no_wait)
        return run->accepted + run->rejected >= run->njobs;
    return run->results + run->rejected >= run->njobs;
}

/* On timeout: one "pending" line per job still without a final answer. */
static void submit_print_pending(const submit_run_t *run)
{
    for (uint32_t i = 0; i < run->njobs; i++) {
        const submit_job_t *j = &run->jobs[i];
        if (j->phase == PHASE_DONE || (run->no_wait && j->phase == PHASE_ACCEPTED))
            continue;
        const char *state = j->phase == PHASE_ACCEPTED
                                ? proto_state_name((proto_job_state_t)j->state)
                                : "unanswered";
        json_t *o =
            json_pack("{s:s, s:s, s:s}", "job_id", j->job_id, "status", "pending", "state", state);
        if (o)
            cli_print_json_line(o);
        json_decref(o);
    }
}

/* The exchange with the broker. Returns the exit code. */
static int submit_exchange(submit_run_t *run)
{
    int64_t last_heard = clock_mono_ms(), last_reask = last_heard;
    while (!submit_finished(run)) {
        if (submit_stop)
            return CLI_EXIT_INTERRUPTED;
        submit_pump(run);
        zmq_pollitem_t item = {.socket = run->sock, .events = ZMQ_POLLIN};
        int n = zmq_poll(&item, 1, 100);
        if (n < 0 && errno != EINTR) {
            cli_error("internal_error", "polling the broker socket failed: %s",
                      zmq_strerror(errno));
            return CLI_EXIT_FAILED;
        }
        if (n > 0 && submit_drain(run) > 0)
            last_heard = clock_mono_ms();
        fflush(stdout);
        submit_progress(run, 0);
        int64_t now = clock_mono_ms();
        if (now - last_heard >= SUBMIT_REASK_MS && now - last_reask >= SUBMIT_REASK_MS) {
            last_reask = now;
            submit_reask(run, now);
        }
        if (clock_mono_ms() - last_heard >= run->timeout_ms && !submit_finished(run)) {
            long long secs = (long long)(run->timeout_ms / 1000);
            submit_progress(run, 1);
            if (run->accepted == 0 && run->rejected == 0) {
                cli_error("broker_unavailable", "no answer from %s within %lld s", run->g->broker,
                          secs);
            } else {
                uint32_t missing =
                    run->njobs - run->rejected - (run->no_wait ? run->accepted : run->results);
                cli_error("timeout",
                          "%u job%s still without %s after %lld s of silence from %s "
                          "(accepted jobs are kept: see scoreline events)",
                          missing, missing == 1 ? "" : "s", run->no_wait ? "an answer" : "a result",
                          secs, run->g->broker);
            }
            submit_print_pending(run);
            return CLI_EXIT_UNAVAILABLE;
        }
    }
    return CLI_EXIT_OK;
}

/* Open the DEALER. Returns 0, or an exit code after printing the error. */
static int submit_connect(submit_run_t *run, void *ctx)
{
    run->sock = zmq_socket(ctx, ZMQ_DEALER);
    if (!run->sock) {
        cli_error("internal_error", "cannot create a ZeroMQ socket: %s", zmq_strerror(errno));
        return CLI_EXIT_FAILED;
    }
    int linger = 0;
    /* The broker's ROUTER drops what a full peer cannot take, so the receive
     * queue must hold every answer this run can get: at worst, per job one
     * ACCEPTED, one REJECTED and one RESULT message. */
    int rcvhwm = (int)(run->njobs * 3 + 1000);
    int sndhwm = SUBMIT_WINDOW * 2 + 16;
    zmq_setsockopt(run->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(run->sock, ZMQ_RCVHWM, &rcvhwm, sizeof rcvhwm);
    zmq_setsockopt(run->sock, ZMQ_SNDHWM, &sndhwm, sizeof sndhwm);
    if (zmq_connect(run->sock, run->g->broker) != 0) {
        cli_error("usage", "--broker: cannot use endpoint '%s': %s", run->g->broker,
                  zmq_strerror(errno));
        return CLI_EXIT_USAGE;
    }
    return CLI_EXIT_OK;
}

static void submit_summary(const submit_run_t *run)
{
    if (run->no_wait)
        cli_note("%u jobs: %u accepted, %u rejected", run->njobs, run->accepted, run->rejected);
    else
        cli_note("%u jobs: %u ok, %u failed, %u rejected", run->njobs, run->ok, run->failed,
                 run->rejected);
}

int cmd_submit(const cli_globals_t *g, int argc, char **argv)
{
    int help = 0, no_wait = 0, inline_rubric = 0, npos = 0;
    const char *timeout_s = "60", *tenant = "default", *batch_s = "500", *rubric_file = NULL;
    const cli_flag_t flags[] = {
        {"no-wait", 0, NULL, &no_wait},
        {"timeout", 1, &timeout_s, NULL},
        {"tenant", 1, &tenant, NULL},
        {"batch", 1, &batch_s, NULL},
        {"inline", 0, NULL, &inline_rubric},
        {"rubric", 1, &rubric_file, NULL},
        {NULL, 0, NULL, NULL},
    };
    const char **pos = calloc((size_t)argc + 1, sizeof *pos);
    if (!pos)
        return CLI_EXIT_FAILED;
    submit_run_t run;
    memset(&run, 0, sizeof run);
    run.g = g;
    grading_rubric_t *r = NULL;
    char *rubric_text = NULL;
    size_t rubric_len = 0;
    void *ctx = NULL;
    uint64_t timeout = 0, per_batch = 0;
    int rc = CLI_EXIT_USAGE;

    if (cli_parse_flags("submit", argc, argv, flags, pos, &npos, &help) != 0)
        goto done;
    if (help) {
        fputs(submit_usage, stdout);
        rc = CLI_EXIT_OK;
        goto done;
    }
    if (npos < 1) {
        cli_error("usage", "submit needs at least one attempt FILE (see scoreline submit --help)");
        goto done;
    }
    if (cli_parse_uint("timeout", timeout_s, 1, 86400, &timeout) != 0 ||
        cli_parse_uint("batch", batch_s, 1, PROTO_MAX_BATCH, &per_batch) != 0)
        goto done;
    if (!*tenant || strlen(tenant) > PROTO_MAX_NAME) {
        cli_error("usage", "--tenant must be 1 to %d bytes", PROTO_MAX_NAME);
        goto done;
    }
    if (inline_rubric && !rubric_file) {
        cli_error("usage", "--inline needs --rubric FILE (the rubric to carry in each job)");
        goto done;
    }
    if (rubric_file) {
        rc = cli_rubric_load_file(rubric_file, &r, &rubric_text, &rubric_len);
        if (rc != CLI_EXIT_OK)
            goto done;
    }

    /* Load and validate everything before sending anything. */
    run.no_wait = no_wait;
    run.njobs = (uint32_t)npos;
    run.jobs = calloc((size_t)npos, sizeof *run.jobs);
    if (!run.jobs) {
        cli_error("out_of_memory", "cannot allocate %d jobs", npos);
        rc = CLI_EXIT_FAILED;
        goto done;
    }
    submit_opts_t o = {tenant, inline_rubric};
    rc = CLI_EXIT_OK;
    for (int i = 0; i < npos; i++)
        rc = cli_exit_worst(rc,
                            submit_load_job(pos[i], &o, r, rubric_text, rubric_len, &run.jobs[i]));
    if (rc != CLI_EXIT_OK) {
        cli_note("nothing submitted: fix the file%s above first", npos > 1 ? "s" : "");
        goto done;
    }
    rc = submit_index_jobs(&run);
    if (rc != CLI_EXIT_OK)
        goto done;

    run.dec = proto_decoder_new(0);
    ctx = zmq_ctx_new();
    if (!run.dec || !ctx) {
        cli_error("internal_error", "cannot set up the ZeroMQ context or decoder");
        rc = CLI_EXIT_FAILED;
        goto done;
    }
    rc = submit_connect(&run, ctx);
    if (rc != CLI_EXIT_OK)
        goto done;

    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = submit_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    run.progress = isatty(STDERR_FILENO) && run.njobs > SUBMIT_PROGRESS_MIN_JOBS;
    run.per_batch = (uint32_t)per_batch;
    run.timeout_ms = (int64_t)timeout * 1000;
    log_debug("submit.start", "jobs=%u batch=%u broker=%s", run.njobs, run.per_batch, g->broker);

    rc = submit_exchange(&run);
    fflush(stdout);
    submit_progress(&run, 1);
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    submit_summary(&run);
    if (rc == CLI_EXIT_OK && (run.rejected || run.failed))
        rc = CLI_EXIT_FAILED;

done:
    if (run.sock)
        zmq_close(run.sock);
    if (ctx)
        zmq_ctx_term(ctx);
    proto_decoder_destroy(&run.dec);
    for (uint32_t i = 0; run.jobs && i < run.njobs; i++) {
        free(run.jobs[i].job_id);
        msgpack_sbuffer_destroy(&run.jobs[i].record);
    }
    free(run.jobs);
    free(run.by_id);
    for (uint32_t i = 0; i < run.nmsgs; i++)
        free(run.msgs[i].jobs);
    free(run.msgs);
    free(run.retry);
    free(rubric_text);
    grading_rubric_destroy(&r);
    free(pos);
    return rc;
}
