/*
 * canonical.c - conversions between msgpack, JSON and the canonical tree.
 *
 * Two jobs: (1) a rubric stored as canonical msgpack is turned back into a
 * jansson tree so that it goes through exactly the same loader as JSON text,
 * which is what makes "load(canonical(r))" reproduce r's hash; (2) the
 * responses of a grading call are normalised (maps sorted, float64 written
 * as decimal strings by the %.15g rule) for the digest.
 */
#include "internal.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#define MP_MAX_DEPTH 64

/* msgpack -> jansson; NULL with a sentence in why on anything JSON cannot hold. */
json_t *mp_to_json(const msgpack_object *o, int depth, char *why, size_t whylen)
{
    if (depth > MP_MAX_DEPTH) {
        snprintf(why, whylen, "nesting deeper than %d levels", MP_MAX_DEPTH);
        return NULL;
    }
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > (uint64_t)INT64_MAX) {
            snprintf(why, whylen, "integer out of range");
            return NULL;
        }
        return json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR: {
        json_t *s = json_stringn(o->via.str.ptr, o->via.str.size);
        if (!s)
            snprintf(why, whylen, "string is not valid UTF-8");
        return s;
    }
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; a && i < o->via.array.size; i++) {
            json_t *v = mp_to_json(&o->via.array.ptr[i], depth + 1, why, whylen);
            if (!v || json_array_append_new(a, v) != 0) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *m = json_object();
        for (uint32_t i = 0; m && i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            /* an empty string's ptr may be NULL: no memchr or memcpy on it */
            if (kv->key.type != MSGPACK_OBJECT_STR ||
                (kv->key.via.str.size && memchr(kv->key.via.str.ptr, 0, kv->key.via.str.size))) {
                snprintf(why, whylen, "map keys must be strings");
                json_decref(m);
                return NULL;
            }
            char key[256];
            if (kv->key.via.str.size >= sizeof key) {
                snprintf(why, whylen, "map key longer than 255 bytes");
                json_decref(m);
                return NULL;
            }
            if (kv->key.via.str.size)
                memcpy(key, kv->key.via.str.ptr, kv->key.via.str.size);
            key[kv->key.via.str.size] = '\0';
            if (json_object_get(m, key)) {
                snprintf(why, whylen, "duplicate key \"%s\"", key);
                json_decref(m);
                return NULL;
            }
            json_t *v = mp_to_json(&kv->val, depth + 1, why, whylen);
            if (!v || json_object_set_new(m, key, v) != 0) {
                json_decref(m);
                return NULL;
            }
        }
        return m;
    }
    default:
        snprintf(why, whylen, "binary and extension values are not allowed");
        return NULL;
    }
}

static tnode_t *dec_str(arena_t *a, dec_t d)
{
    char buf[80];
    size_t n = dec_format(d, buf, sizeof buf);
    return t_str(a, buf, n);
}

/* Normalised copy of a response value: maps sorted by key at pack time,
 * float64 as the decimal string of its %.15g rendering. */
tnode_t *responses_normalize(arena_t *a, const msgpack_object *o, int depth)
{
    if (depth > MP_MAX_DEPTH)
        return t_nil(a);
    switch (o->type) {
    case MSGPACK_OBJECT_BOOLEAN:
        return t_bool(a, o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > (uint64_t)INT64_MAX) {
            char buf[32];
            int n = snprintf(buf, sizeof buf, "%llu", (unsigned long long)o->via.u64);
            return t_str(a, buf, (size_t)n);
        }
        return t_int(a, (int64_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return t_int(a, o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: {
        dec_t d;
        if (dec_from_double(o->via.f64, &d))
            return dec_str(a, d);
        return t_nil(a);
    }
    case MSGPACK_OBJECT_STR:
    case MSGPACK_OBJECT_BIN:
        return t_str(a, o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_ARRAY: {
        tnode_t *arr = t_arr(a);
        for (uint32_t i = 0; i < o->via.array.size; i++)
            t_push(a, arr, responses_normalize(a, &o->via.array.ptr[i], depth + 1));
        return arr;
    }
    case MSGPACK_OBJECT_MAP: {
        tnode_t *m = t_map(a);
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            if (kv->key.type != MSGPACK_OBJECT_STR)
                continue;
            char *k = arena_strndup(a, kv->key.via.str.ptr, kv->key.via.str.size);
            if (k && strlen(k) == kv->key.via.str.size)
                t_set(a, m, k, responses_normalize(a, &kv->val, depth + 1));
        }
        return m;
    }
    default:
        return t_nil(a);
    }
}

/* Read a big-endian unsigned of n bytes. */
static uint64_t be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* True when buf is exactly one well-formed msgpack value whose declared
 * array and map sizes fit in the bytes that follow. msgpack-c allocates what
 * a header declares before reading the elements, so a 5-byte header claiming
 * four billion elements would otherwise cost gigabytes; this scan bounds the
 * work by the input size. */
bool grading_msgpack_well_formed(const void *buf, size_t len)
{
    const uint8_t *p = buf;
    size_t pos = 0;
    uint64_t pending = 1;
    while (pending > 0) {
        if (pos >= len)
            return false;
        uint8_t b = p[pos++];
        pending--;
        uint64_t skip = 0, kids = 0;
        int hl = 0; /* bytes of length field */
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
            /* fixint, nil, bool */
        } else if (b >= 0x80 && b <= 0x8f) {
            kids = 2ull * (b & 0x0f);
        } else if (b >= 0x90 && b <= 0x9f) {
            kids = b & 0x0f;
        } else if (b >= 0xa0 && b <= 0xbf) {
            skip = b & 0x1f;
        } else {
            switch (b) {
            case 0xc4:
            case 0xd9:
                hl = 1;
                break; /* bin8, str8 */
            case 0xc5:
            case 0xda:
                hl = 2;
                break;
            case 0xc6:
            case 0xdb:
                hl = 4;
                break;
            case 0xc7:
                hl = 1;
                skip = 1;
                break; /* ext8: length, type */
            case 0xc8:
                hl = 2;
                skip = 1;
                break;
            case 0xc9:
                hl = 4;
                skip = 1;
                break;
            case 0xca:
                skip = 4;
                break;
            case 0xcb:
                skip = 8;
                break;
            case 0xcc:
            case 0xd0:
                skip = 1;
                break;
            case 0xcd:
            case 0xd1:
                skip = 2;
                break;
            case 0xce:
            case 0xd2:
                skip = 4;
                break;
            case 0xcf:
            case 0xd3:
                skip = 8;
                break;
            case 0xd4:
                skip = 2;
                break; /* fixext: type + data */
            case 0xd5:
                skip = 3;
                break;
            case 0xd6:
                skip = 5;
                break;
            case 0xd7:
                skip = 9;
                break;
            case 0xd8:
                skip = 17;
                break;
            case 0xdc:
            case 0xdd:
            case 0xde:
            case 0xdf: {
                int n = (b == 0xdc || b == 0xde) ? 2 : 4;
                if (len - pos < (size_t)n)
                    return false;
                uint64_t c = be(p + pos, n);
                pos += (size_t)n;
                kids = b >= 0xde ? 2 * c : c;
                break;
            }
            default:
                return false; /* 0xc1 is never used */
            }
            if (hl) {
                if (len - pos < (size_t)hl)
                    return false;
                skip += be(p + pos, hl);
                pos += (size_t)hl;
            }
        }
        if (skip > len - pos)
            return false;
        pos += (size_t)skip;
        pending += kids;
        if (pending > len - pos)
            return false; /* every value takes at least one byte */
    }
    return pos == len;
}
