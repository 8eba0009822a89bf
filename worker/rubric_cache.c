/*
 * rubric_cache.c - LRU of rubrics by hash (see rubric_cache.h). Capacities
 * are small (tens of rubrics), so a linear scan with a use stamp beats a
 * hash table and keeps the code obvious.
 */
#include "worker/rubric_cache.h"

#include <stdlib.h>
#include <string.h>

typedef struct entry {
    grading_rubric_t *rubric; /* NULL = free slot */
    uint64_t used;            /* use stamp: larger is more recent */
} entry_t;

struct rubric_cache {
    entry_t *entries;
    size_t capacity, size;
    uint64_t clock, hits, misses;
};

rubric_cache_t *rubric_cache_new(size_t capacity)
{
    if (capacity == 0)
        return NULL;
    rubric_cache_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->entries = calloc(capacity, sizeof *c->entries);
    if (!c->entries) {
        free(c);
        return NULL;
    }
    c->capacity = capacity;
    return c;
}

void rubric_cache_destroy(rubric_cache_t **self_p)
{
    rubric_cache_t *c = *self_p;
    if (!c)
        return;
    for (size_t i = 0; i < c->capacity; i++)
        grading_rubric_destroy(&c->entries[i].rubric);
    free(c->entries);
    free(c);
    *self_p = NULL;
}

static entry_t *find(rubric_cache_t *c, const char *hash, size_t len)
{
    if (len != 64)
        return NULL;
    for (size_t i = 0; i < c->capacity; i++)
        if (c->entries[i].rubric && memcmp(grading_rubric_hash(c->entries[i].rubric), hash, 64) == 0)
            return &c->entries[i];
    return NULL;
}

const grading_rubric_t *rubric_cache_get(rubric_cache_t *c, const char *hash, size_t len)
{
    entry_t *e = find(c, hash, len);
    if (!e) {
        c->misses++;
        return NULL;
    }
    c->hits++;
    e->used = ++c->clock;
    return e->rubric;
}

const grading_rubric_t *rubric_cache_put(rubric_cache_t *c, grading_rubric_t **rubric_p)
{
    grading_rubric_t *r = *rubric_p;
    *rubric_p = NULL;
    entry_t *e = find(c, grading_rubric_hash(r), 64);
    if (e) {
        grading_rubric_destroy(&r);
        e->used = ++c->clock;
        return e->rubric;
    }
    entry_t *slot = NULL;
    for (size_t i = 0; i < c->capacity; i++) {
        entry_t *x = &c->entries[i];
        if (!x->rubric) {
            slot = x;
            break;
        }
        if (!slot || x->used < slot->used)
            slot = x;
    }
    if (slot->rubric)
        grading_rubric_destroy(&slot->rubric);
    else
        c->size++;
    slot->rubric = r;
    slot->used = ++c->clock;
    return r;
}

size_t rubric_cache_size(const rubric_cache_t *c)
{
    return c->size;
}
uint64_t rubric_cache_hits(const rubric_cache_t *c)
{
    return c->hits;
}
uint64_t rubric_cache_misses(const rubric_cache_t *c)
{
    return c->misses;
}
