/*
 * test_grading_util.h - helpers shared by the grading tests: reading files,
 * turning attempt JSON into the msgpack responses map the worker hands the
 * engine (objects -> maps with keys sorted bytewise, integers -> int, other
 * numbers -> float64), and reading fields back out of a packed result.
 */
#ifndef SCORELINE_TEST_GRADING_UTIL_H
#define SCORELINE_TEST_GRADING_UTIL_H

#include <jansson.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grading/grading.h"

static inline char *tg_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

static inline int tg_key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static inline void tg_pack_json(msgpack_packer *pk, json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        size_t n = json_object_size(v), i = 0;
        const char **keys = malloc((n + 1) * sizeof *keys);
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) keys[i++] = k;
        qsort(keys, n, sizeof *keys, tg_key_cmp);
        msgpack_pack_map(pk, n);
        for (i = 0; i < n; i++) {
            msgpack_pack_str(pk, strlen(keys[i]));
            msgpack_pack_str_body(pk, keys[i], strlen(keys[i]));
            tg_pack_json(pk, json_object_get(v, keys[i]));
        }
        free(keys);
        break;
    }
    case JSON_ARRAY:
        msgpack_pack_array(pk, json_array_size(v));
        for (size_t i = 0; i < json_array_size(v); i++)
            tg_pack_json(pk, json_array_get(v, i));
        break;
    case JSON_STRING:
        msgpack_pack_str(pk, json_string_length(v));
        msgpack_pack_str_body(pk, json_string_value(v), json_string_length(v));
        break;
    case JSON_INTEGER:
        msgpack_pack_int64(pk, json_integer_value(v));
        break;
    case JSON_REAL:
        msgpack_pack_double(pk, json_real_value(v));
        break;
    case JSON_TRUE:
        msgpack_pack_true(pk);
        break;
    case JSON_FALSE:
        msgpack_pack_false(pk);
        break;
    default:
        msgpack_pack_nil(pk);
    }
}

/* A msgpack object for a JSON text; free with tg_msg_free. */
typedef struct tg_msg {
    msgpack_sbuffer sb;
    msgpack_unpacked up;
} tg_msg_t;

static inline const msgpack_object *tg_msg_from_json_value(tg_msg_t *m, json_t *v)
{
    msgpack_sbuffer_init(&m->sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &m->sb, msgpack_sbuffer_write);
    tg_pack_json(&pk, v);
    msgpack_unpacked_init(&m->up);
    size_t off = 0;
    if (msgpack_unpack_next(&m->up, m->sb.data, m->sb.size, &off) != MSGPACK_UNPACK_SUCCESS)
        return NULL;
    return &m->up.data;
}

static inline const msgpack_object *tg_msg_from_json(tg_msg_t *m, const char *json)
{
    json_error_t je;
    json_t *v = json_loads(json, 0, &je);
    if (!v) {
        fprintf(stderr, "bad test JSON: %s\n", je.text);
        return NULL;
    }
    const msgpack_object *o = tg_msg_from_json_value(m, v);
    json_decref(v);
    return o;
}

static inline void tg_msg_free(tg_msg_t *m)
{
    msgpack_unpacked_destroy(&m->up);
    msgpack_sbuffer_destroy(&m->sb);
}

/* A packed result unpacked for inspection. */
typedef struct tg_result {
    msgpack_unpacked up;
    const msgpack_object *root;
} tg_result_t;

static inline void tg_result_open(tg_result_t *r, const grading_result_t *res)
{
    msgpack_unpacked_init(&r->up);
    size_t off = 0;
    msgpack_unpack_next(&r->up, (const char *)res->data, res->len, &off);
    r->root = &r->up.data;
}

static inline void tg_result_close(tg_result_t *r)
{
    msgpack_unpacked_destroy(&r->up);
}

static inline const msgpack_object *tg_get(const msgpack_object *m, const char *key)
{
    if (!m || m->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t kl = strlen(key);
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == kl &&
            memcmp(k->via.str.ptr, key, kl) == 0)
            return &m->via.map.ptr[i].val;
    }
    return NULL;
}

static inline int64_t tg_int(const msgpack_object *o)
{
    if (!o)
        return -999999;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        return (int64_t)o->via.u64;
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return o->via.i64;
    return -999999;
}

static inline int tg_streq(const msgpack_object *o, const char *s)
{
    return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == strlen(s) &&
           memcmp(o->via.str.ptr, s, o->via.str.size) == 0;
}

/* The result map of the item with this id. */
static inline const msgpack_object *tg_item(const tg_result_t *r, const char *id)
{
    const msgpack_object *items = tg_get(r->root, "items");
    for (uint32_t i = 0; items && i < items->via.array.size; i++)
        if (tg_streq(tg_get(&items->via.array.ptr[i], "id"), id))
            return &items->via.array.ptr[i];
    return NULL;
}

static inline grading_rubric_t *tg_load(const char *json)
{
    grading_rubric_t *r = NULL;
    grading_error_t e;
    if (grading_rubric_load_json(json, strlen(json), &r, &e) != GRADING_OK)
        fprintf(stderr, "rubric error: %s: %s\n", e.path, e.message);
    return r;
}

static inline grading_rubric_t *tg_load_file(const char *rel)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", SCORELINE_SOURCE_DIR, rel);
    size_t len;
    char *text = tg_read_file(path, &len);
    if (!text)
        return NULL;
    grading_rubric_t *r = NULL;
    grading_error_t e;
    if (grading_rubric_load_json(text, len, &r, &e) != GRADING_OK)
        fprintf(stderr, "%s: %s: %s\n", rel, e.path, e.message);
    free(text);
    return r;
}

/* Grade one item's response given as JSON (e.g. "\"8.3%\""); returns earned
 * milli-points, or -1 on a grading error. */
static inline int64_t tg_grade_one(const grading_rubric_t *r, const char *item,
                                   const char *resp_json)
{
    char buf[4096];
    snprintf(buf, sizeof buf, "{\"%s\": %s}", item, resp_json);
    tg_msg_t m;
    memset(&m, 0, sizeof m);
    msgpack_unpacked_init(&m.up);
    const msgpack_object *o = tg_msg_from_json(&m, buf);
    grading_result_t res;
    grading_error_t e;
    int64_t out = -1;
    if (o && grading_grade(r, o, &res, &e) == GRADING_OK) {
        tg_result_t tr;
        tg_result_open(&tr, &res);
        out = tg_int(tg_get(tg_item(&tr, item), "points_milli"));
        tg_result_close(&tr);
        grading_result_free(&res);
    } else if (o) {
        fprintf(stderr, "grade error: %s: %s\n", e.path, e.message);
    }
    tg_msg_free(&m);
    return out;
}

#endif
