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

/* strcmp, deciding most pairs of keys by their first byte without a call. */
static inline int key_cmp(const char *a, const char *b)
{
    if (a[0] != b[0])
        return (unsigned char)a[0] - (unsigned char)b[0];
    return strcmp(a, b);
}

static tnode_t *t_new(arena_t *a, tkind_t k)
{
    tnode_t *n = arena_alloc_raw(a, sizeof *n);
    if (n)
        *n = (tnode_t){.kind = k};
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
    /* slots past n are never read: no need to zero them */
    tnode_t **kids = arena_alloc_raw(a, cap * sizeof *kids);
    const char **keys = n->kind == T_MAP ? arena_alloc_raw(a, cap * sizeof *keys) : NULL;
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
        if (key_cmp(map->keys[i], key) == 0) {
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
        if (key_cmp(map->keys[i], key) == 0)
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
        while (j > 0 && key_cmp(m->keys[j - 1], k) > 0) {
            m->keys[j] = m->keys[j - 1];
            m->kids[j] = m->kids[j - 1];
            j--;
        }
        m->keys[j] = k;
        m->kids[j] = v;
    }
}

/* ---- packing ----
 *
 * The writer below emits exactly what msgpack-c's msgpack_pack_* functions
 * write (the smallest encoding of every integer, str8 for 32..255-byte
 * strings), straight into one growing buffer: results are packed on every
 * grading call, and a call through msgpack_sbuffer_write per token cost more
 * than the encoding itself. */

bool tbuf_reserve(tbuf_t *b, size_t n)
{
    if (b->oom)
        return false;
    if (b->cap - b->len >= n)
        return true;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < n) {
        if (cap > SIZE_MAX / 2) {
            b->oom = true;
            return false;
        }
        cap *= 2;
    }
    uint8_t *d = realloc(b->data, cap);
    if (!d) {
        b->oom = true;
        return false;
    }
    b->data = d;
    b->cap = cap;
    return true;
}

void tbuf_write(tbuf_t *b, const void *p, size_t n)
{
    if (n && tbuf_reserve(b, n)) {
        memcpy(b->data + b->len, p, n);
        b->len += n;
    }
}

void tbuf_free(tbuf_t *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* Room for n more bytes: the inline test, tbuf_reserve when it fails. */
static inline bool tbuf_room(tbuf_t *b, size_t n)
{
    return b->cap - b->len >= n || tbuf_reserve(b, n);
}

static inline void put_be(uint8_t *o, uint64_t v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        o[i] = (uint8_t)v;
        v >>= 8;
    }
}

/* A header: fixed form when v fits in fix_max, else tag16/tag32 (tag8 too
 * for strings). */
static inline void pack_len(tbuf_t *b, uint8_t fix, uint32_t fix_max, int tag8, uint8_t tag16,
                            size_t v)
{
    if (!tbuf_room(b, 5))
        return;
    uint8_t *o = b->data + b->len;
    if (v <= fix_max) {
        o[0] = (uint8_t)(fix | v);
        b->len += 1;
    } else if (tag8 >= 0 && v < 256) {
        o[0] = (uint8_t)tag8;
        o[1] = (uint8_t)v;
        b->len += 2;
    } else if (v < 65536) {
        o[0] = tag16;
        put_be(o + 1, v, 2);
        b->len += 3;
    } else {
        o[0] = (uint8_t)(tag16 + 1);
        put_be(o + 1, v, 4);
        b->len += 5;
    }
}

void tbuf_pack_array(tbuf_t *b, size_t n)
{
    pack_len(b, 0x90, 15, -1, 0xdc, n);
}

void tbuf_pack_map(tbuf_t *b, size_t n)
{
    pack_len(b, 0x80, 15, -1, 0xde, n);
}

void tbuf_pack_str(tbuf_t *b, const char *s, size_t n)
{
    if (n <= 31) {
        /* fixstr, most strings of a result: header and bytes in one go */
        if (!tbuf_room(b, 1 + n))
            return;
        uint8_t *o = b->data + b->len;
        o[0] = (uint8_t)(0xa0 | n);
        for (size_t k = 0; k < n; k++)
            o[1 + k] = (uint8_t)s[k];
        b->len += 1 + n;
        return;
    }
    pack_len(b, 0xa0, 31, 0xd9, 0xda, n);
    tbuf_write(b, s, n);
}

/* A map key (NUL-terminated): its length is found while it is copied. */
static void tbuf_pack_key(tbuf_t *b, const char *key)
{
    if (!tbuf_room(b, 32))
        return;
    uint8_t *o = b->data + b->len;
    size_t n = 0;
    while (n < 31 && key[n]) {
        o[1 + n] = (uint8_t)key[n];
        n++;
    }
    if (key[n]) { /* 31 bytes or more */
        tbuf_pack_str(b, key, strlen(key));
        return;
    }
    o[0] = (uint8_t)(0xa0 | n);
    b->len += 1 + n;
}

void tbuf_pack_int(tbuf_t *b, int64_t d)
{
    if (!tbuf_room(b, 9))
        return;
    uint8_t *o = b->data + b->len;
    size_t n;
    if (d < -(1LL << 5)) {
        if (d < -(1LL << 15)) {
            if (d < -(1LL << 31)) {
                o[0] = 0xd3;
                n = 8;
            } else {
                o[0] = 0xd2;
                n = 4;
            }
        } else if (d < -(1LL << 7)) {
            o[0] = 0xd1;
            n = 2;
        } else {
            o[0] = 0xd0;
            n = 1;
        }
    } else if (d < (1LL << 7)) {
        o[0] = (uint8_t)d; /* positive or negative fixint */
        n = 0;
    } else if (d < (1LL << 16)) {
        if (d < (1LL << 8)) {
            o[0] = 0xcc;
            n = 1;
        } else {
            o[0] = 0xcd;
            n = 2;
        }
    } else if (d < (1LL << 32)) {
        o[0] = 0xce;
        n = 4;
    } else {
        o[0] = 0xcf;
        n = 8;
    }
    if (n)
        put_be(o + 1, (uint64_t)d, (int)n);
    b->len += 1 + n;
}

/* Pack with map keys sorted bytewise. */
bool t_pack(tnode_t *n, tbuf_t *b)
{
    switch (n->kind) {
    case T_NIL:
    case T_BOOL:
        if (tbuf_room(b, 1))
            b->data[b->len++] = n->kind == T_NIL ? 0xc0 : n->i ? 0xc3 : 0xc2;
        break;
    case T_INT:
        tbuf_pack_int(b, n->i);
        break;
    case T_STR:
        tbuf_pack_str(b, n->s, n->len);
        break;
    case T_ARR:
        tbuf_pack_array(b, n->n);
        for (size_t i = 0; i < n->n && !b->oom; i++)
            t_pack(n->kids[i], b);
        break;
    case T_MAP:
        t_sort_keys(n);
        tbuf_pack_map(b, n->n);
        for (size_t i = 0; i < n->n && !b->oom; i++) {
            tbuf_pack_key(b, n->keys[i]);
            t_pack(n->kids[i], b);
        }
        break;
    }
    return !b->oom;
}
