/*
 * tree.c - msgpack-shaped value trees built in an arena.
 *
 * The canonical rubric and every result are built as trees and packed once.
 * A map keeps its keys in bytewise order as they are added (nearly always
 * after the last one), so it is packed as it stands, and no output ever
 * depends on insertion or hash-table order.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

/* Bytewise order of two keys (as strcmp orders them: keys hold no NUL),
 * deciding most pairs by their first byte. */
static inline int key_cmp(const tkey_t *a, const tkey_t *b)
{
    if (a->s[0] != b->s[0])
        return (unsigned char)a->s[0] - (unsigned char)b->s[0];
    int c = memcmp(a->s, b->s, a->len < b->len ? a->len : b->len);
    return c ? c : (a->len > b->len) - (a->len < b->len);
}

/* a[0..n) == b[0..n) for w <= n <= 2w (w = 4 or 8): the first and the last
 * w bytes of each, two overlapping loads; w is a constant once inlined. */
static inline bool ends_eq(const char *a, const char *b, size_t n, size_t w)
{
    uint64_t a0 = 0, a1 = 0, b0 = 0, b1 = 0;
    memcpy(&a0, a, w);
    memcpy(&a1, a + n - w, w);
    memcpy(&b0, b, w);
    memcpy(&b1, b + n - w, w);
    return a0 == b0 && a1 == b1;
}

/* a[0..n) == b[0..n): keys of 4 to 16 bytes (nearly all) without a call. */
static inline bool bytes_eq(const char *a, const char *b, size_t n)
{
    if (n >= 8 && n <= 16)
        return ends_eq(a, b, n, 8);
    if (n >= 4 && n < 8)
        return ends_eq(a, b, n, 4);
    return memcmp(a, b, n) == 0;
}

static inline bool key_eq(const tkey_t *a, const char *s, size_t len)
{
    return a->len == len && bytes_eq(a->s, s, len);
}

/* The node and its copy of the bytes in one allocation. */
tnode_t *t_str(arena_t *a, const char *s, size_t len)
{
    if (!s)
        len = 0;
    tnode_t *n = arena_alloc_raw(a, T_SCALAR_SIZE + len + 1);
    if (n) {
        char *p = (char *)n + T_SCALAR_SIZE;
        if (len)
            memcpy(p, s, len);
        p[len] = '\0';
        n->kind = T_STR;
        n->i = 0;
        n->s = p;
        n->len = len;
    }
    return n;
}

tnode_t *t_strz(arena_t *a, const char *s)
{
    return t_str(a, s, s ? strlen(s) : 0);
}

#define ARR_CAP0 4

/* An array with room for ARR_CAP0 elements, node and slots in one
 * allocation: most arrays of a result (evidence, ratings) are short. */
tnode_t *t_arr(arena_t *a)
{
    tnode_t *n = arena_alloc_raw(a, sizeof *n + ARR_CAP0 * sizeof(tnode_t *));
    if (n)
        *n = (tnode_t){.kind = T_ARR, .kids = (tnode_t **)(n + 1), .cap = ARR_CAP0};
    return n;
}

/* A map with room for cap keys: node and slots in one allocation. */
tnode_t *t_map_n(arena_t *a, size_t cap)
{
    tnode_t *n = arena_alloc_raw(a, sizeof *n + cap * (sizeof(tkey_t) + sizeof(tnode_t *)));
    if (n) {
        tkey_t *keys = (tkey_t *)(n + 1);
        *n = (tnode_t){.kind = T_MAP, .keys = keys, .kids = (tnode_t **)(keys + cap), .cap = cap};
    }
    return n;
}

/* Most maps of a result hold 2 to 8 keys. */
tnode_t *t_map(arena_t *a)
{
    return t_map_n(a, 8);
}

static bool t_grow(arena_t *a, tnode_t *n)
{
    if (n->n < n->cap)
        return true;
    size_t cap = n->cap ? n->cap * 2 : 8;
    /* slots past n are never read: no need to zero them; a map's keys share
     * the allocation of its values */
    size_t ksize = n->kind == T_MAP ? cap * sizeof *n->keys : 0;
    tnode_t **kids = arena_alloc_raw(a, ksize + cap * sizeof *kids);
    if (!kids)
        return false;
    tkey_t *keys = ksize ? (tkey_t *)kids : NULL;
    if (keys)
        kids = (tnode_t **)(keys + cap);
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

/* t_push when the array is full (internal.h has the fast path). */
void t_push_slow(arena_t *a, tnode_t *arr, tnode_t *v)
{
    if (!arr || !v || arr->kind != T_ARR || !t_grow(a, arr))
        return;
    arr->kids[arr->n++] = v;
}

/* Add key (not copied) at its place in the bytewise order: after the last
 * key nearly always, as callers add keys in that order. A key equal to one
 * already there goes after it. */
static void t_insert(arena_t *a, tnode_t *map, const char *key, size_t klen, tnode_t *v)
{
    if (!t_grow(a, map))
        return;
    tkey_t k = {key, klen};
    size_t j = map->n;
    while (j > 0 && key_cmp(&map->keys[j - 1], &k) > 0) {
        map->keys[j] = map->keys[j - 1];
        map->kids[j] = map->kids[j - 1];
        j--;
    }
    map->keys[j] = k;
    map->kids[j] = v;
    map->n++;
}

/* Set key in a map; a key set twice keeps the last value. */
void t_set(arena_t *a, tnode_t *map, const char *key, tnode_t *v)
{
    if (!map || !v || map->kind != T_MAP)
        return;
    size_t klen = strlen(key);
    for (size_t i = 0; i < map->n; i++)
        if (key_eq(&map->keys[i], key, klen)) {
            map->kids[i] = v;
            return;
        }
    const char *k = arena_strndup(a, key, klen);
    if (k)
        t_insert(a, map, k, klen, v);
}

/* t_put_n when the key does not simply go after the last one (internal.h
 * has the fast path). */
void t_put_slow(arena_t *a, tnode_t *map, const char *key, size_t klen, tnode_t *v)
{
    if (!map || !v || map->kind != T_MAP)
        return;
    size_t n = map->n;
    if (n < map->cap && n > 0 && map->keys[n - 1].s[0] == key[0] &&
        key_cmp(&map->keys[n - 1], &(tkey_t){key, klen}) <= 0) {
        /* same first byte as the last key, sorting after it: append */
        map->keys[n] = (tkey_t){key, klen};
        map->kids[n] = v;
        map->n = n + 1;
        return;
    }
    t_insert(a, map, key, klen, v);
}

tnode_t *t_get(const tnode_t *map, const char *key)
{
    if (!map || map->kind != T_MAP)
        return NULL;
    size_t klen = strlen(key);
    for (size_t i = 0; i < map->n; i++)
        if (key_eq(&map->keys[i], key, klen))
            return map->kids[i];
    return NULL;
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

/* A fixstr (n <= 31) at o; returns its length. */
static inline size_t fixstr_at(uint8_t *o, const char *s, size_t n)
{
    o[0] = (uint8_t)(0xa0 | n);
    copy_short(o + 1, s, n);
    return 1 + n;
}

/* A header at o (room for 5 bytes): fixed form when v fits in fix_max,
 * else tag16/tag32 (tag8 too for strings); returns its length. */
static inline size_t len_at(uint8_t *o, uint8_t fix, uint32_t fix_max, int tag8, uint8_t tag16,
                            size_t v)
{
    if (v <= fix_max) {
        o[0] = (uint8_t)(fix | v);
        return 1;
    }
    if (tag8 >= 0 && v < 256) {
        o[0] = (uint8_t)tag8;
        o[1] = (uint8_t)v;
        return 2;
    }
    if (v < 65536) {
        o[0] = tag16;
        put_be(o + 1, v, 2);
        return 3;
    }
    o[0] = (uint8_t)(tag16 + 1);
    put_be(o + 1, v, 4);
    return 5;
}

static inline void pack_len(tbuf_t *b, uint8_t fix, uint32_t fix_max, int tag8, uint8_t tag16,
                            size_t v)
{
    if (tbuf_room(b, 5))
        b->len += len_at(b->data + b->len, fix, fix_max, tag8, tag16, v);
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
        if (tbuf_room(b, 1 + 31))
            b->len += fixstr_at(b->data + b->len, s, n);
        return;
    }
    pack_len(b, 0xa0, 31, 0xd9, 0xda, n);
    tbuf_write(b, s, n);
}

/* The smallest encoding of d at o (room for 9 bytes); returns its length. */
static inline size_t int_at(uint8_t *o, int64_t d)
{
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
        return 1;
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
    put_be(o + 1, (uint64_t)d, (int)n);
    return 1 + n;
}

void tbuf_pack_int(tbuf_t *b, int64_t d)
{
    if (tbuf_room(b, 9))
        b->len += int_at(b->data + b->len, d);
}

/* ---- packing a tree ----
 *
 * The write position and the end of the buffer travel in locals (a wpos_t
 * passed and returned by value), so that storing a byte does not make the
 * compiler reload them from the tbuf; b->len is brought up to date only
 * around a reserve. */
typedef struct wpos {
    uint8_t *p, *end; /* p NULL: out of memory */
} wpos_t;

static wpos_t wroom_slow(tbuf_t *b, wpos_t w, size_t need)
{
    b->len = (size_t)(w.p - b->data);
    if (!tbuf_reserve(b, need))
        return (wpos_t){NULL, NULL};
    return (wpos_t){b->data + b->len, b->data + b->cap};
}

/* Room for need bytes at w.p. */
static inline wpos_t wroom(tbuf_t *b, wpos_t w, size_t need)
{
    return (size_t)(w.end - w.p) >= need ? w : wroom_slow(b, w, need);
}

/* Most values of a result take at most 32 bytes (nil, bool, an integer, a
 * string of up to 31 bytes): with room for 32 bytes at o, pack one of those
 * and return the end of it; NULL for anything else. */
#define SMALL_MAX 32

static inline uint8_t *small_at(uint8_t *o, const tnode_t *v)
{
    switch (v->kind) {
    case T_NIL:
        o[0] = 0xc0;
        return o + 1;
    case T_BOOL:
        o[0] = v->i ? 0xc3 : 0xc2;
        return o + 1;
    case T_INT:
        return o + int_at(o, v->i);
    case T_STR:
        return v->len <= 31 ? o + fixstr_at(o, v->s, v->len) : NULL;
    default:
        return NULL;
    }
}

/* A string of any length. */
static wpos_t str_at(tbuf_t *b, wpos_t w, const char *s, size_t n)
{
    if (n > SIZE_MAX - 5)
        return wroom_slow(b, w, SIZE_MAX);
    w = wroom(b, w, 5 + n);
    if (!w.p)
        return w;
    w.p += len_at(w.p, 0xa0, 31, 0xd9, 0xda, n);
    memcpy(w.p, s, n);
    w.p += n;
    return w;
}

static wpos_t pack_rest_at(tbuf_t *b, wpos_t w, const tnode_t *n);

/* Pack a value: small ones inline at the call site, the rest below. */
static inline wpos_t pack_at(tbuf_t *b, wpos_t w, const tnode_t *n)
{
    w = wroom(b, w, SMALL_MAX);
    if (!w.p)
        return w;
    uint8_t *q = small_at(w.p, n);
    if (q) {
        w.p = q;
        return w;
    }
    return pack_rest_at(b, w, n);
}

/* A value small_at did not take, with SMALL_MAX bytes of room at w. */
static wpos_t pack_rest_at(tbuf_t *b, wpos_t w, const tnode_t *n)
{
    switch (n->kind) {
    case T_STR:
        return str_at(b, w, n->s, n->len);
    case T_ARR:
        w.p += len_at(w.p, 0x90, 15, -1, 0xdc, n->n);
        for (size_t i = 0; i < n->n && w.p; i++)
            w = pack_at(b, w, n->kids[i]);
        return w;
    case T_MAP:
        w.p += len_at(w.p, 0x80, 15, -1, 0xde, n->n);
        for (size_t i = 0; i < n->n && w.p; i++) {
            const tkey_t *k = &n->keys[i];
            /* a short key and a small value in one reservation */
            w = wroom(b, w, 1 + 31 + SMALL_MAX);
            if (!w.p)
                return w;
            if (k->len <= 31) {
                w.p += fixstr_at(w.p, k->s, k->len);
                uint8_t *v = small_at(w.p, n->kids[i]);
                if (v) {
                    w.p = v;
                    continue;
                }
            } else {
                w = str_at(b, w, k->s, k->len);
                if (!w.p)
                    return w;
            }
            w = pack_at(b, w, n->kids[i]);
        }
        return w;
    default:
        return w;
    }
}

/* Pack a tree; map keys are already in bytewise order. */
bool t_pack(const tnode_t *n, tbuf_t *b)
{
    if (!tbuf_reserve(b, SMALL_MAX))
        return false;
    wpos_t w = pack_at(b, (wpos_t){b->data + b->len, b->data + b->cap}, n);
    if (!w.p)
        return false;
    b->len = (size_t)(w.p - b->data);
    return true;
}
