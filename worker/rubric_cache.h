/*
 * rubric_cache.h - the worker's in-process LRU of loaded rubrics, keyed by
 * content hash. A hash never changes meaning, so entries are never
 * invalidated, only evicted when the cache is full. A pinned rubric (in use
 * by a grading thread) is never evicted; the cache may exceed its capacity
 * while every entry is pinned. Used by the worker's main thread only.
 */
#ifndef SCORELINE_WORKER_RUBRIC_CACHE_H
#define SCORELINE_WORKER_RUBRIC_CACHE_H

#include "grading/grading.h"

#include <stddef.h>
#include <stdint.h>

typedef struct rubric_cache rubric_cache_t;

/* A cache of at most capacity rubrics (capacity >= 1). */
rubric_cache_t *rubric_cache_new(size_t capacity);
/* Destroys every cached rubric. */
void rubric_cache_destroy(rubric_cache_t **self_p);
/* The rubric with this hash (64 hex), or NULL. Marks it most recently used
 * and pins it: it stays loaded until rubric_cache_release. */
const grading_rubric_t *rubric_cache_get(rubric_cache_t *c, const char *hash, size_t len);
/* Take ownership of *rubric_p (NULLed) and return the cached instance,
 * pinned: an equal rubric already cached wins and the new one is destroyed.
 * Evicts least recently used unpinned entries beyond the capacity. */
const grading_rubric_t *rubric_cache_put(rubric_cache_t *c, grading_rubric_t **rubric_p);
/* Unpin a rubric returned by get or put. */
void rubric_cache_release(rubric_cache_t *c, const grading_rubric_t *r);
size_t rubric_cache_size(const rubric_cache_t *c);
uint64_t rubric_cache_hits(const rubric_cache_t *c);
uint64_t rubric_cache_misses(const rubric_cache_t *c);

#endif
