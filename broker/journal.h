/*
 * journal.h - the broker's Redis side: the job journal, the done-set that
 * dedupes results, the events stream, and recovery after a restart.
 *
 * Every call that touches Redis works on a batch and costs one round trip
 * (one EVALSHA of a small Lua script), so the broker journals thousands of
 * jobs per loop turn. A batch is all-or-nothing from the broker's point of
 * view: when Redis cannot be reached the call returns -1 and nothing in the
 * batch counts as journaled or emitted; the broker retries or refuses.
 *
 * Keys (prefix P, broker name N): P journal:N (stream: one entry per accepted
 * job), P done:<job_id> (the job's event, SET NX with a TTL: first result
 * wins), P events (stream of score events, MAXLEN ~), P rubric:id:<id> and
 * P rubric:hash:<hash> (read to resolve a job's rubric at submit time), P dead
 * (stream of jobs given up after too many deliveries).
 */
#ifndef SCORELINE_BROKER_JOURNAL_H
#define SCORELINE_BROKER_JOURNAL_H

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
} journal_config_t;

/* One job to journal. in: the fields; out: outcome and its data. */
typedef enum journal_outcome {
    JOURNAL_ACCEPTED = 0,   /* journaled: stream_id and hash are set */
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
    char stream_id[48];
    char resolved_hash[65];
    char *event; /* JOURNAL_DONE: the stored event, caller frees */
    size_t event_len;
} journal_submit_item_t;

/* One score event to emit. */
typedef struct journal_result_item {
    const char *job_id;
    size_t job_id_len;
    const char *stream_id; /* journal entry to delete, or "" */
    const void *event;     /* RESULT body */
    size_t event_len;
    int first; /* out: 1 when this event won (was stored and emitted) */
} journal_result_item_t;

/* One journal entry: a job accepted and not yet scored. */
typedef struct journal_entry {
    const char *stream_id;
    const char *job_id;
    size_t job_id_len;
    const char *hash;
    const void *body; /* packed job map */
    size_t body_len;
    uint64_t accepted_us;
    uint32_t attempts; /* deliveries that ended without a result */
} journal_entry_t;

/* Called for each journal entry during recovery, oldest first. */
typedef void (*journal_recover_fn)(void *arg, const journal_entry_t *e);

journal_t *journal_new(const journal_config_t *cfg);
void journal_destroy(journal_t **self_p);

/* Connect now (used at start: failure is fatal there). 0 or -1 with err. */
int journal_connect(journal_t *j, char *err, size_t errlen);
/* Whether the connection is believed up. */
int journal_is_up(const journal_t *j);
/* When down, try to reconnect if the back-off delay has passed. Returns 1
 * when up afterwards. now_ms is monotonic. */
int journal_ensure(journal_t *j, int64_t now_ms);
/* The last error sentence. */
const char *journal_error(const journal_t *j);

/* Journal a batch. 0 on success (each item's outcome set), -1 when Redis is
 * unavailable (nothing journaled). */
int journal_submit(journal_t *j, uint64_t accepted_us, journal_submit_item_t *items, size_t n);
/* Dedupe and emit a batch of events. 0 (each item's first set) or -1. */
int journal_complete(journal_t *j, journal_result_item_t *items, size_t n);
/* Record a failed delivery: the job is journaled again with its attempts
 * count (so a restarted broker still knows it) and its old entry deleted.
 * The new entry id is written to new_sid. 0 or -1. */
int journal_requeued(journal_t *j, const journal_entry_t *e, char *new_sid, size_t cap);
/* Move a job out of the journal into the dead-letter stream <prefix>dead
 * with the reason it was given up. 0 or -1. */
int journal_dead(journal_t *j, const journal_entry_t *e, const char *reason, uint64_t dead_us);
/* Delete one journal entry (a redundant copy). Best effort. */
void journal_forget(journal_t *j, const char *stream_id);
/* Read up to count journal entries after *cursor (a stream id; "" = from
 * the start), deleting those whose job is already done and calling fn for
 * the rest. The cursor advances; *at_end is set (and the cursor reset) when
 * the end was reached. Returns the entries passed to fn, or -1. */
long journal_scan(journal_t *j, char *cursor, size_t cap, size_t count, journal_recover_fn fn,
                  void *arg, int *at_end);
/* Replay the whole journal (journal_scan from the start to the end).
 * Returns entries replayed, or -1. */
long journal_recover(journal_t *j, journal_recover_fn fn, void *arg);

#endif
