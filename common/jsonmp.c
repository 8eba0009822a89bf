/* jsonmp.c - JSON <-> msgpack conversion (see jsonmp.h). */
#include "common/jsonmp.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define JSONMP_MAX_DEPTH 64

static int key_cmp(const void *a, const void *b)
{
    const char *ka = *(const char *const *)a, *kb = *(const char *const *)b;
    return strcmp(ka, kb);
}

static int jsonmp_pack_depth(msgpack_packer *pk, const json_t *v, int depth)
{
    if (depth > JSONMP_MAX_DEPTH)
        return -1;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        size_t n = json_object_size(v);
        const char **keys = n ? malloc(n * sizeof *keys) : NULL;
        if (n && !keys)
            return -1;
        size_t i = 0;
        const char *k;
        json_t *val;
        json_object_foreach((json_t *)v, k, val) keys[i++] = k;
        if (n > 1)
            qsort(keys, n, sizeof *keys, key_cmp);
        int rc = msgpack_pack_map(pk, n);
        for (i = 0; i < n && rc == 0; i++) {
            size_t kl = strlen(keys[i]);
            rc = msgpack_pack_str_with_body(pk, keys[i], kl);
            if (rc == 0)
                rc = jsonmp_pack_depth(pk, json_object_get(v, keys[i]), depth + 1);
        }
        free(keys);
        return rc ? -1 : 0;
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        if (msgpack_pack_array(pk, n))
            return -1;
        for (size_t i = 0; i < n; i++)
            if (jsonmp_pack_depth(pk, json_array_get(v, i), depth + 1))
                return -1;
        return 0;
    }
    case JSON_STRING:
        return msgpack_pack_str_with_body(pk, json_string_value(v), json_string_length(v)) ? -1 : 0;
    case JSON_INTEGER:
        return msgpack_pack_int64(pk, (int64_t)json_integer_value(v)) ? -1 : 0;
    case JSON_REAL:
        return msgpack_pack_double(pk, json_real_value(v)) ? -1 : 0;
    case JSON_TRUE:
        return msgpack_pack_true(pk) ? -1 : 0;
    case JSON_FALSE:
        return msgpack_pack_false(pk) ? -1 : 0;
    case JSON_NULL:
        return msgpack_pack_nil(pk) ? -1 : 0;
    }
    return -1;
}

int jsonmp_pack(msgpack_packer *pk, const json_t *v)
{
    return jsonmp_pack_depth(pk, v, 0);
}

static json_t *jsonmp_bytes(const void *p, size_t n)
{
    size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
    char *b = malloc(cap);
    if (!b)
        return NULL;
    sodium_bin2base64(b, cap, p, n, sodium_base64_VARIANT_ORIGINAL);
    json_t *o = json_pack("{s:s}", "$base64", b);
    free(b);
    return o;
}

static json_t *jsonmp_str(const char *p, size_t n)
{
    json_t *s = json_stringn(p, n); /* NULL when not valid UTF-8 */
    return s ? s : jsonmp_bytes(p, n);
}

json_t *jsonmp_to_json(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > (uint64_t)INT64_MAX)
            return json_real((double)o->via.u64);
        return json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR:
        return jsonmp_str(o->via.str.ptr, o->via.str.size);
    case MSGPACK_OBJECT_BIN:
        return jsonmp_bytes(o->via.bin.ptr, o->via.bin.size);
    case MSGPACK_OBJECT_EXT:
        return jsonmp_bytes(o->via.ext.ptr, o->via.ext.size);
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; a && i < o->via.array.size; i++) {
            json_t *e = jsonmp_to_json(&o->via.array.ptr[i]);
            if (!e || json_array_append_new(a, e)) {
                json_decref(a);
                return NULL;
            }
        }
        return a;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *m = json_object();
        for (uint32_t i = 0; m && i < o->via.map.size; i++) {
            const msgpack_object *k = &o->via.map.ptr[i].key;
            char keybuf[] = "?";
            char *key = NULL;
            if (k->type == MSGPACK_OBJECT_STR) {
                key = strndup(k->via.str.ptr, k->via.str.size);
            } else {
                json_t *kj = jsonmp_to_json(k);
                char *txt = kj ? json_dumps(kj, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
                json_decref(kj);
                key = txt ? txt : strdup(keybuf);
            }
            json_t *v = key ? jsonmp_to_json(&o->via.map.ptr[i].val) : NULL;
            /* json_object_setn_new refuses keys that are not valid UTF-8 */
            if (!v || json_object_setn_new(m, key, strlen(key), v)) {
                free(key);
                json_decref(m);
                return NULL;
            }
            free(key);
        }
        return m;
    }
    }
    return NULL;
}
