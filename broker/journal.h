/*
 * journal.h - the broker's Redis side: the job journal, the done-set that
 * dedupes results, the events stream, and recovery after a restart.
 *
 * Every call that touches Redis works on a batch and costs one or two round
 * trips of pipelined commands, so the broker journals thousands of jobs per
 * loop turn; calls do not block (see journal_io). A batch is all-or-nothing
 * from the broker's point of view: when Redis cannot be reached the call
 * fails and nothing in the batch counts as journaled or emitted; the broker
 * retries or refuses.
 *
 * Keys (prefix P, broker name N):
 *  - P journal:N, a stream. One entry per journal_submit batch, fields
 *    `a` (accepted_us) and `j` (the jobs: msgpack arrays [job_id, rubric
 *    hash or "", packed job map as bin, attempts], one after the other); a
 *    job journaled again after a failed delivery gets an entry of its own in
 *    the same form with its attempts. The broker counts the jobs it holds
 *    under each entry (jentry.h) and deletes an entry when none is left.
 *    Entries of the older form (fields job_id, hash, accepted_us, job,
 *    attempts: one job each) are still read.
 *  - P done:<job_id>: the job's winning event (SET NX with a TTL: first
 *    result wins), or "DEAD:" + reason for a dead-lettered job.
 *  - P events: stream of score events (MAXLEN ~), fields job_id and event.
 *  - P rubric:id:<id>, P rubric:hash:<hash>: read to resolve a job's rubric
 *    at submit time.
 *  - P dead: stream of jobs given up after too many deliveries.
 *
 * With journaling off (journal_config_t.no_journal) there is no journal and
 * no done-set: submit only resolves rubrics, complete appends each event to
 * P events, requeue records nothing, recovery finds nothing.
 */
#ifndef SCORELINE_BROKER_JOURNAL_H
#define SCORELINE_BROKER_JOURNAL_H

#include "broker/jentry.h"
#include "common/redis_url.h"

#include <stddef.h>
#include <stdint.h>

typedef struct journal journal_t;

typedef struct journal_config {
    redis_url_t url;
    const char *prefix;      /* key prefix, e.g. "scoreline:" */
    const char *name;        /* broker name: its journal is <prefix>journal:<name> */
    uint64_t events_maxlen;  /* approximate cap of <prefix>events */
    uint64_t dedupe_ttl_s;   /* lifetime of <prefix>done:<id> */
    int timeout_ms;          /* connect and command timeout */
    int no_journal;          /* 1: no journal, no done-set (see above) */
} journal_config_t;

/* One job to journal. in: the fields; out: outcome and its data. */
typedef enum journal_outcome {
    JOURNAL_ACCEPTED = 0,   /* journaled: entry (NULL without a journal) and resolved_hash set */
    JOURNAL_DONE,           /* already scored: event/event_len hold its event (malloc'd) */
    JOURNAL_UNKNOWN_RUBRIC, /* no such rubric id / hash in Redis and nothing inline */
    JOURNAL_DEAD,           /* dead-lettered: event holds the reason (malloc'd, NUL-ended) */
} journal_outcome_t;

typedef struct journal_submit_item {
    const char *job_id;
    size_t job_id_len;
    const char *rubric;
    size_t rubric_len;
    const char *hash; /* pinned hash or "" */
    size_t hash_len;
    int has_inline;
    const void *body; /* packed job map */
    size_t body_len;
    /* out */
    journal_outcome_t outcome;
    jentry_t *entry; /* JOURNAL_ACCEPTED: the batch's entry, which counts this job */
    char resolved_hash[65];
    char *event; /* JOURNAL_DONE: the stored event, caller frees */
    size_t event_len;
} journal_submit_item_t;

/* One score event to emit. */
typedef struct journal_result_item {
    const char *job_id;
    size_t job_id_len;
    jentry_t *entry;   /* the journal entry holding the job, or NULL */
    int held;          /* the broker held the job when its result came */
    const void *event; /* RESULT body */
    size_t event_len;
    int first; /* out: 1 when this event won (stored and streamed now), 2 when
                  this very event was stored by an earlier try whose reply was
                  lost, 0 when another event won */
} journal_result_item_t;

/* One job of the journal: a job to hold, or held, under an entry. */
typedef struct journal_entry {
    jentry_t *entry;       /* the entry recording it (NULL without a journal) */
    const char *stream_id; /* that entry's id, for logs */
    const char *job_id;
    size_t job_id_len;
    const char *hash;
    const void *body; /* packed job map */
    size_t body_len;
    uint64_t accepted_us;
    uint32_t attempts; /* deliveries that ended without a result */
} journal_entry_t;

/* Called for each not-yet-scored job of the journal during recovery,
 * oldest entry first. Returns 1 when the broker now holds the job under
 * e->entry (the entry's count is raised), 0 when it does not (an entry
 * under which no job is held is deleted), -1 when it does not but the job
 * must stay journaled (no room: the entry is kept for a later scan). */
typedef int (*journal_recover_fn)(void *arg, const journal_entry_t *e);

/* Called when an asynchronous call is over: ok 1 when Redis answered as
 * expected, 0 when the connection was lost (or Redis refused) before. */
typedef void (*journal_done_fn)(void *arg, int ok);

journal_t *journal_new(const journal_config_t *cfg);
/* Calls that are still waiting are ended first (done with ok 0). */
void journal_destroy(journal_t **self_p);

/* Connect now (used at start: failure is fatal there). 0 or -1 with err. */
int journal_connect(journal_t *j, char *err, size_t errlen);
/* Whether the connection is believed up. */
int journal_is_up(const journal_t *j);
/* Whether jobs are journaled and results deduped (not --no-journal). */
int journal_enabled(const journal_t *j);
/* Drop the connection now; calls still waiting end with ok 0. */
void journal_close(journal_t *j);
/* When down, try to reconnect if the back-off delay has passed. Returns 1
 * when up afterwards. now_ms is monotonic. */
int journal_ensure(journal_t *j, int64_t now_ms);
/* Connections made so far (raised by every reconnect). */
unsigned journal_epoch(const journal_t *j);
/* The last error sentence. */
const char *journal_error(const journal_t *j);

/*
 * The connection is non-blocking and pipelined: each call below appends its
 * commands and returns; Redis's replies come back in order and are handled
 * by journal_io, which calls each call's done function. The caller polls
 * journal_fd (readable; writable too while journal_wants_write) and calls
 * journal_io every loop turn. A call waiting longer than the command
 * timeout, or a lost connection, ends every waiting call with ok 0.
 */
/* The socket to poll, or -1 when down. */
int journal_fd(const journal_t *j);
/* Whether commands wait to be written (poll for writable). */
int journal_wants_write(const journal_t *j);
/* Write what waits; when readable (poll said so), read what came and run
 * the done functions; enforce the command timeout. */
void journal_io(journal_t *j, int64_t now_ms, int readable);
/* Calls waiting for Redis. */
size_t journal_outstanding(const journal_t *j);
/* Block until no call waits (or timeout_ms passed, or the connection is
 * lost). 0 when none waits. */
int journal_wait(journal_t *j, int timeout_ms);

/* Journal a batch: one pipeline checks the done-set and resolves rubrics,
 * then one XADD journals the accepted jobs as one entry. items must stay
 * valid until done is called; on ok each item's outcome is set. Returns 0
 * (done will be called, maybe before this returns), or -1 when Redis is
 * unavailable (done is not called, nothing journaled). */
int journal_submit(journal_t *j, uint64_t accepted_us, journal_submit_item_t *items, size_t n,
                   journal_done_fn done, void *arg);
/* Dedupe and emit a batch of events (one script: SET NX + XADD per event).
 * items stay valid until done; on ok each item's first is set and its
 * entry released. 0, or -1 when unavailable (done not called). */
int journal_complete(journal_t *j, journal_result_item_t *items, size_t n, journal_done_fn done,
                     void *arg);
/* Record a failed delivery: the job is journaled again with its attempts
 * count (so a restarted broker still knows it) in an entry of its own;
 * *entry is switched to it now, and the old entry released once Redis has
 * stored the new one. 0, or -1 when unavailable. */
int journal_requeued(journal_t *j, const journal_entry_t *e, jentry_t **entry);
/* Move a job out of the journal into the dead-letter stream <prefix>dead
 * with the reason it was given up; on ok its entry is released. 0, or -1
 * when unavailable (done not called). */
int journal_dead(journal_t *j, const journal_entry_t *e, const char *reason, uint64_t dead_us,
                 journal_done_fn done, void *arg);
/* The broker no longer holds a job under e (NULL: nothing). An entry left
 * with no job is deleted (an XDEL sent with the next call, or by
 * journal_flush). */
void journal_release(journal_t *j, jentry_t *e);
/* Send the XDEL of the entries released since the last call. The broker
 * need not call it after every release: journal_submit, journal_complete and
 * the other calls send the waiting XDEL with their own commands. */
void journal_flush(journal_t *j);
/* Entries released and not yet deleted (their XDEL not sent). */
size_t journal_unflushed(const journal_t *j);
/* Called when a scan page is over: the jobs passed to fn (-1: failed) and
 * whether the end of the journal was reached. */
typedef void (*journal_scan_done_fn)(void *arg, long jobs, int at_end);
/* Read up to count journal entries after cursor (a stream id; "" = from
 * the start; the buffer stays valid and is advanced), skipping entries the
 * broker holds jobs under, deleting entries whose jobs are all done, and
 * calling fn for each job of the others that is not done. An entry under
 * which fn took no job is deleted (unless fn said -1). At the end the
 * cursor is reset. 0 (done will be called), or -1 when unavailable. */
int journal_scan(journal_t *j, char *cursor, size_t cap, size_t count, journal_recover_fn fn,
                 void *arg, journal_scan_done_fn done, void *done_arg);
/* Replay the whole journal (scan pages, waiting for each). Returns jobs
 * replayed, or -1. */
long journal_recover(journal_t *j, journal_recover_fn fn, void *arg);

#endif
