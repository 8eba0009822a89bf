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
    uint32_t pins;            /* holders that may still read it */
} entry_t;

struct rubric_cache {
    entry_t *entries;
    size_t slots;    /* allocated entries */
    size_t capacity; /* most unpinned entries kept */
    size_t size;
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
    c->capacity = c->slots = capacity;
    return c;
}

void rubric_cache_destroy(rubric_cache_t **self_p)
{
    rubric_cache_t *c = *self_p;
    if (!c)
        return;
    for (size_t i = 0; i < c->slots; i++)
        grading_rubric_destroy(&c->entries[i].rubric);
    free(c->entries);
    free(c);
    *self_p = NULL;
}

static entry_t *find(rubric_cache_t *c, const char *hash, size_t len)
{
    if (len != 64)
        return NULL;
    for (size_t i = 0; i < c->slots; i++)
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
    e->pins++;
    return e->rubric;
}

void rubric_cache_release(rubric_cache_t *c, const grading_rubric_t *r)
{
    for (size_t i = 0; i < c->slots; i++)
        if (c->entries[i].rubric == r) {
            if (c->entries[i].pins)
                c->entries[i].pins--;
            return;
        }
}

const grading_rubric_t *rubric_cache_put(rubric_cache_t *c, grading_rubric_t **rubric_p)
{
    grading_rubric_t *r = *rubric_p;
    *rubric_p = NULL;
    entry_t *e = find(c, grading_rubric_hash(r), 64);
    if (e) {
        grading_rubric_destroy(&r);
        e->used = ++c->clock;
        e->pins++;
        return e->rubric;
    }
    /* Make room: evict the least recently used unpinned entries. */
    while (c->size >= c->capacity) {
        entry_t *victim = NULL;
        for (size_t i = 0; i < c->slots; i++) {
            entry_t *x = &c->entries[i];
            if (x->rubric && x->pins == 0 && (!victim || x->used < victim->used))
                victim = x;
        }
        if (!victim)
            break; /* everything is pinned: grow */
        grading_rubric_destroy(&victim->rubric);
        c->size--;
    }
    entry_t *slot = NULL;
    for (size_t i = 0; i < c->slots && !slot; i++)
        if (!c->entries[i].rubric)
            slot = &c->entries[i];
    if (!slot) {
        entry_t *n = realloc(c->entries, (c->slots * 2) * sizeof *n);
        if (!n) {
            /* Out of memory: the caller answers internal_error. */
            grading_rubric_destroy(&r);
            return NULL;
        }
        memset(n + c->slots, 0, c->slots * sizeof *n);
        slot = n + c->slots;
        c->entries = n;
        c->slots *= 2;
    }
    slot->rubric = r;
    slot->used = ++c->clock;
    slot->pins = 1;
    c->size++;
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
