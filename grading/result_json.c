/*
 * result_json.c - a packed result as JSON text (the CLI's default output).
 *
 * The result map holds only maps with string keys, arrays, strings,
 * integers, booleans and nil, so the conversion is exact; keys stay in the
 * result's (sorted) order, so equal results give equal JSON.
 */
#include "internal.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

static json_t *to_json(const msgpack_object *o, int depth)
{
    if (depth > 64)
        return NULL;
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return o->via.u64 > INT64_MAX ? NULL : json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer(o->via.i64);
    case MSGPACK_OBJECT_STR:
        /* evidence text is cut on character boundaries; invalid UTF-8 (and NUL)
         * from the candidate becomes U+FFFD, byte by byte */
        {
            json_t *s = json_stringn(o->via.str.ptr, o->via.str.size);
            if (s)
                return s;
            char *fixed = malloc(o->via.str.size * 3 + 1);
            size_t k = 0;
            if (!fixed)
                return NULL;
            for (uint32_t i = 0; i < o->via.str.size;) {
                utf8proc_int32_t cp;
                utf8proc_ssize_t n = utf8proc_iterate((const utf8proc_uint8_t *)o->via.str.ptr + i,
                                                      (utf8proc_ssize_t)(o->via.str.size - i), &cp);
                if (n > 0 && cp != 0) {
                    memcpy(fixed + k, o->via.str.ptr + i, (size_t)n);
                    k += (size_t)n;
                    i += (uint32_t)n;
                } else {
                    fixed[k++] = (char)0xef; /* U+FFFD */
                    fixed[k++] = (char)0xbf;
                    fixed[k++] = (char)0xbd;
                    i += 1;
                }
            }
            s = json_stringn(fixed, k);
            free(fixed);
            return s;
        }
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; a && i < o->via.array.size; i++) {
            json_t *v = to_json(&o->via.array.ptr[i], depth + 1);
            if (!v || json_array_append_new(a, v)) {
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
            json_t *v = kv->key.type == MSGPACK_OBJECT_STR ? to_json(&kv->val, depth + 1) : NULL;
            if (!v || json_object_setn_new(m, kv->key.via.str.ptr, kv->key.via.str.size, v)) {
                json_decref(m);
                return NULL;
            }
        }
        return m;
    }
    default:
        return NULL;
    }
}

/* The result as JSON (indent 0: one line); malloc'd, NULL when the bytes are
 * not a result. */
char *grading_result_json(const void *result, size_t len, int indent)
{
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    char *out = NULL;
    if (result && msgpack_unpack_next(&up, result, len, &off) == MSGPACK_UNPACK_SUCCESS &&
        up.data.type == MSGPACK_OBJECT_MAP) {
        json_t *j = to_json(&up.data, 0);
        if (j) {
            size_t flags = JSON_PRESERVE_ORDER | JSON_ENSURE_ASCII;
            flags |= indent > 0 ? JSON_INDENT(indent > 31 ? 31 : indent) : JSON_COMPACT;
            out = json_dumps(j, flags);
            json_decref(j);
        }
    }
    msgpack_unpacked_destroy(&up);
    return out;
}
