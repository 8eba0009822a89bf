/*
 * tree.c - msgpack-shaped value trees built in an arena.
 *
 * The canonical rubric and every result are built as trees and packed once.
 * Maps are packed with their keys sorted bytewise, so no output ever depends
 * on insertion or hash-table order.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static tnode_t *t_new(arena_t *a, tkind_t k)
{
    tnode_t *n = arena_alloc(a, sizeof *n);
    if (n)
        n->kind = k;
    return n;
}

tnode_t *t_nil(arena_t *a)
{
    return t_new(a, T_NIL);
}

tnode_t *t_bool(arena_t *a, bool v)
{
    tnode_t *n = t_new(a, T_BOOL);
    if (n)
        n->i = v;
    return n;
}

tnode_t *t_int(arena_t *a, int64_t v)
{
    tnode_t *n = t_new(a, T_INT);
    if (n)
        n->i = v;
    return n;
}

tnode_t *t_str(arena_t *a, const char *s, size_t len)
{
    tnode_t *n = t_new(a, T_STR);
    if (n) {
        n->s = arena_strndup(a, s ? s : "", s ? len : 0);
        n->len = s ? len : 0;
    }
    return n;
}

/* A string node that refers to s without copying it: s must outlive the
 * tree (a literal, the rubric, or this arena). */
tnode_t *t_ref(arena_t *a, const char *s)
{
    tnode_t *n = t_new(a, T_STR);
    if (n) {
        n->s = s ? s : "";
        n->len = s ? strlen(s) : 0;
    }
    return n;
}

tnode_t *t_strz(arena_t *a, const char *s)
{
    return t_str(a, s, s ? strlen(s) : 0);
}

tnode_t *t_arr(arena_t *a)
{
    return t_new(a, T_ARR);
}

tnode_t *t_map(arena_t *a)
{
    return t_new(a, T_MAP);
}

static bool t_grow(arena_t *a, tnode_t *n)
{
    if (n->n < n->cap)
        return true;
    size_t cap = n->cap ? n->cap * 2 : 8;
    tnode_t **kids = arena_alloc(a, cap * sizeof *kids);
    const char **keys = n->kind == T_MAP ? arena_alloc(a, cap * sizeof *keys) : NULL;
    if (!kids || (n->kind == T_MAP && !keys))
        return false;
    if (n->n) {
        memcpy(kids, n->kids, n->n * sizeof *kids);
        if (keys)
            memcpy(keys, n->keys, n->n * sizeof *keys);
    }
    n->kids = kids;
    n->keys = keys;
    n->cap = cap;
    return true;
}

/* Append to an array; NULL nodes are ignored (a->oom tells). */
void t_push(arena_t *a, tnode_t *arr, tnode_t *v)
{
    if (!arr || !v || arr->kind != T_ARR || !t_grow(a, arr))
        return;
    arr->kids[arr->n++] = v;
}

/* Set key in a map; a key set twice keeps the last value. */
void t_set(arena_t *a, tnode_t *map, const char *key, tnode_t *v)
{
    if (!map || !v || map->kind != T_MAP)
        return;
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->keys[i], key) == 0) {
            map->kids[i] = v;
            return;
        }
    if (!t_grow(a, map))
        return;
    const char *k = arena_strdup(a, key);
    if (!k)
        return;
    map->keys[map->n] = k;
    map->kids[map->n++] = v;
}

/* Append key (a string literal or otherwise outliving the tree; not copied)
 * to a map known not to hold it yet: the hot path of traces and results. */
void t_put(arena_t *a, tnode_t *map, const char *key, tnode_t *v)
{
    if (!map || !v || map->kind != T_MAP || !t_grow(a, map))
        return;
    map->keys[map->n] = key;
    map->kids[map->n++] = v;
}

tnode_t *t_get(const tnode_t *map, const char *key)
{
    if (!map || map->kind != T_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (strcmp(map->keys[i], key) == 0)
            return map->kids[i];
    return NULL;
}

/* Keys hold no NUL, so strcmp is the bytewise order of the packed keys. */
void t_sort_keys(tnode_t *m)
{
    for (size_t i = 1; i < m->n; i++) {
        const char *k = m->keys[i];
        tnode_t *v = m->kids[i];
        size_t j = i;
        while (j > 0 && strcmp(m->keys[j - 1], k) > 0) {
            m->keys[j] = m->keys[j - 1];
            m->kids[j] = m->kids[j - 1];
            j--;
        }
        m->keys[j] = k;
        m->kids[j] = v;
    }
}

/* Pack with map keys sorted bytewise. */
bool t_pack(tnode_t *n, msgpack_packer *pk)
{
    int rc = 0;
    switch (n->kind) {
    case T_NIL:
        rc = msgpack_pack_nil(pk);
        break;
    case T_BOOL:
        rc = n->i ? msgpack_pack_true(pk) : msgpack_pack_false(pk);
        break;
    case T_INT:
        rc = msgpack_pack_int64(pk, n->i);
        break;
    case T_STR:
        rc = msgpack_pack_str(pk, n->len);
        if (rc == 0)
            rc = msgpack_pack_str_body(pk, n->s, n->len);
        break;
    case T_ARR:
        rc = msgpack_pack_array(pk, n->n);
        for (size_t i = 0; rc == 0 && i < n->n; i++)
            if (!t_pack(n->kids[i], pk))
                return false;
        break;
    case T_MAP:
        t_sort_keys(n);
        rc = msgpack_pack_map(pk, n->n);
        for (size_t i = 0; rc == 0 && i < n->n; i++) {
            size_t kl = strlen(n->keys[i]);
            rc = msgpack_pack_str(pk, kl);
            if (rc == 0)
                rc = msgpack_pack_str_body(pk, n->keys[i], kl);
            if (rc == 0 && !t_pack(n->kids[i], pk))
                return false;
        }
        break;
    }
    return rc == 0;
}
