/*
 * jentry.h - the broker's open journal entries and how many jobs each holds.
 *
 * One journal entry (a Redis stream entry) holds every job accepted in one
 * broker turn, or a single job journaled again after a failed delivery. The
 * broker counts, per entry, the jobs it holds that the entry still records;
 * when the count drops to zero the entry is no longer needed and is deleted
 * (one XDEL for all entries released in a turn). Pure bookkeeping: no Redis
 * here, so the rules can be tested alone.
 */
#ifndef SCORELINE_BROKER_JENTRY_H
#define SCORELINE_BROKER_JENTRY_H

#include <stddef.h>
#include <stdint.h>

#define JENTRY_SID 48 /* a stream id "<ms>-<seq>" with its NUL */

typedef struct jentry {
    char sid[JENTRY_SID];
    uint32_t open; /* jobs held under this entry */
    uint32_t hash;
    struct jentry *also; /* released with this one (set by the journal) */
    struct jentry *next; /* bucket chain (owned by jentry.c) */
} jentry_t;

typedef struct jentries jentries_t;

jentries_t *jentries_new(void);
/* Frees every entry record (not the Redis entries). */
void jentries_destroy(jentries_t **self_p);

/* Register entry sid holding `open` jobs; returns the record, or the one
 * already registered under sid (its count raised by open), NULL on OOM or
 * a sid that does not fit. */
jentry_t *jentries_add(jentries_t *t, const char *sid, uint32_t open);
/* The record of sid, or NULL when the broker holds no job under it. */
jentry_t *jentries_find(const jentries_t *t, const char *sid);
/* One more job held under e. */
void jentries_hold(jentry_t *e);
/* A job held under e is gone from it (scored, dead-lettered, journaled
 * again elsewhere, or a redundant copy). When none is left, the record is
 * removed and freed, its sid copied to sid_out and 1 returned: the caller
 * deletes the stream entry. Otherwise 0. */
int jentries_release(jentries_t *t, jentry_t *e, char sid_out[JENTRY_SID]);
/* Entries registered. */
size_t jentries_count(const jentries_t *t);

#endif
