/*
 * jentry.c - open journal entries by stream id (see jentry.h).
 *
 * A chained hash table on the stream id (FNV-1a: ids come from Redis, not
 * from clients), grown by doubling.
 */
#include "broker/jentry.h"

#include <stdlib.h>
#include <string.h>

struct jentries {
    jentry_t **buckets;
    size_t nbuckets; /* power of two */
    size_t count;
};

static uint32_t sid_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

jentries_t *jentries_new(void)
{
    jentries_t *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->nbuckets = 64;
    t->buckets = calloc(t->nbuckets, sizeof *t->buckets);
    if (!t->buckets) {
        free(t);
        return NULL;
    }
    return t;
}

void jentries_destroy(jentries_t **self_p)
{
    jentries_t *t = *self_p;
    if (!t)
        return;
    for (size_t i = 0; i < t->nbuckets; i++) {
        jentry_t *e = t->buckets[i];
        while (e) {
            jentry_t *next = e->next;
            free(e);
            e = next;
        }
    }
    free(t->buckets);
    free(t);
    *self_p = NULL;
}

static void jentries_grow(jentries_t *t)
{
    size_t n = t->nbuckets * 2;
    jentry_t **b = calloc(n, sizeof *b);
    if (!b)
        return; /* keep the longer chains */
    for (size_t i = 0; i < t->nbuckets; i++) {
        jentry_t *e = t->buckets[i];
        while (e) {
            jentry_t *next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
            e = next;
        }
    }
    free(t->buckets);
    t->buckets = b;
    t->nbuckets = n;
}

jentry_t *jentries_find(const jentries_t *t, const char *sid)
{
    uint32_t h = sid_hash(sid);
    for (jentry_t *e = t->buckets[h & (t->nbuckets - 1)]; e; e = e->next)
        if (e->hash == h && strcmp(e->sid, sid) == 0)
            return e;
    return NULL;
}

jentry_t *jentries_add(jentries_t *t, const char *sid, uint32_t open)
{
    size_t len = strlen(sid);
    if (len == 0 || len >= JENTRY_SID)
        return NULL;
    jentry_t *e = jentries_find(t, sid);
    if (e) {
        e->open += open;
        return e;
    }
    if (t->count >= t->nbuckets)
        jentries_grow(t);
    e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    memcpy(e->sid, sid, len + 1);
    e->open = open;
    e->hash = sid_hash(sid);
    e->next = t->buckets[e->hash & (t->nbuckets - 1)];
    t->buckets[e->hash & (t->nbuckets - 1)] = e;
    t->count++;
    return e;
}

void jentries_hold(jentry_t *e)
{
    e->open++;
}

int jentries_release(jentries_t *t, jentry_t *e, char sid_out[JENTRY_SID])
{
    if (e->open > 0)
        e->open--;
    if (e->open > 0)
        return 0;
    jentry_t **pp = &t->buckets[e->hash & (t->nbuckets - 1)];
    while (*pp && *pp != e)
        pp = &(*pp)->next;
    if (*pp)
        *pp = e->next;
    t->count--;
    memcpy(sid_out, e->sid, JENTRY_SID);
    free(e);
    return 1;
}

size_t jentries_count(const jentries_t *t)
{
    return t->count;
}
