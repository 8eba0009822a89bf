/*
 * grading_bench.c - throughput and latency of the scoring engine, for the
 * bench harness (not a test: numbers depend on the machine).
 *
 *   scoreline_grading_bench RUBRIC.json ATTEMPTS_DIR [seconds]
 *
 * Grades every attempt of ATTEMPTS_DIR round-robin on one thread for the
 * given time and prints full attempts graded per second of this thread's CPU
 * time (and of wall time, which other load on the machine lowers), then the
 * median and 99th percentile latency of one attempt and of each item alone. Output is
 * one "key value" per line so scripts can read it.
 */
#include "grading.h"

#include <dirent.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of this thread: the rate per core, unaffected by other load. */
static double cpu_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int key_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void pack_json(msgpack_packer *pk, json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        size_t n = json_object_size(v), i = 0;
        const char **keys = malloc((n + 1) * sizeof *keys);
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) keys[i++] = k;
        qsort(keys, n, sizeof *keys, key_cmp);
        msgpack_pack_map(pk, n);
        for (i = 0; i < n; i++) {
            msgpack_pack_str(pk, strlen(keys[i]));
            msgpack_pack_str_body(pk, keys[i], strlen(keys[i]));
            pack_json(pk, json_object_get(v, keys[i]));
        }
        free(keys);
        break;
    }
    case JSON_ARRAY:
        msgpack_pack_array(pk, json_array_size(v));
        for (size_t i = 0; i < json_array_size(v); i++)
            pack_json(pk, json_array_get(v, i));
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

static int dbl_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

#define MAXA 256

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s RUBRIC.json ATTEMPTS_DIR [seconds]\n", argv[0]);
        return 2;
    }
    double secs = argc > 3 ? atof(argv[3]) : 3.0;
    json_error_t je;
    json_t *rj = json_load_file(argv[1], 0, &je);
    if (!rj) {
        fprintf(stderr, "%s: %s\n", argv[1], je.text);
        return 1;
    }
    char *text = json_dumps(rj, JSON_COMPACT);
    grading_rubric_t *r;
    grading_error_t e;
    if (grading_rubric_load_json(text, strlen(text), &r, &e) != GRADING_OK) {
        fprintf(stderr, "%s: %s: %s\n", argv[1], e.path, e.message);
        return 1;
    }
    msgpack_unpacked up[MAXA];
    msgpack_sbuffer sb[MAXA];
    size_t n = 0;
    DIR *d = opendir(argv[2]);
    struct dirent *de;
    while (d && (de = readdir(d)) && n < MAXA) {
        size_t l = strlen(de->d_name);
        if (l < 6 || strcmp(de->d_name + l - 5, ".json") != 0)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", argv[2], de->d_name);
        json_t *a = json_load_file(path, 0, NULL);
        if (!a)
            continue;
        msgpack_sbuffer_init(&sb[n]);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb[n], msgpack_sbuffer_write);
        pack_json(&pk, json_object_get(a, "responses"));
        msgpack_unpacked_init(&up[n]);
        size_t off = 0;
        msgpack_unpack_next(&up[n], sb[n].data, sb[n].size, &off);
        json_decref(a);
        n++;
    }
    if (d)
        closedir(d);
    if (n == 0) {
        fprintf(stderr, "no attempts in %s\n", argv[2]);
        return 1;
    }
    /* throughput */
    size_t done = 0;
    double t0 = now(), t, c0 = cpu_now();
    size_t cap = 1 << 20;
    double *lat = malloc(cap * sizeof *lat);
    size_t nl = 0;
    do {
        for (size_t i = 0; i < n; i++) {
            double a = now();
            grading_result_t res;
            if (grading_grade(r, &up[i].data, &res, &e) != GRADING_OK) {
                fprintf(stderr, "grading failed: %s: %s\n", e.path, e.message);
                return 1;
            }
            grading_result_free(&res);
            if (nl < cap)
                lat[nl++] = now() - a;
            done++;
        }
        t = now();
    } while (t - t0 < secs);
    double cpu = cpu_now() - c0;
    qsort(lat, nl, sizeof *lat, dbl_cmp);
    printf("rubric %s %s\n", grading_rubric_id(r), grading_rubric_hash(r));
    printf("attempts_in_set %zu\n", n);
    printf("attempts_graded %zu\n", done);
    printf("attempts_per_second_one_core %.0f\n", (double)done / cpu);
    printf("attempts_per_second_wall %.0f\n", (double)done / (t - t0));
    printf("attempt_latency_p50_us %.1f\n", lat[nl / 2] * 1e6);
    printf("attempt_latency_p99_us %.1f\n", lat[nl * 99 / 100] * 1e6);
    /* single-item latency: each item of the first attempt graded alone */
    const msgpack_object *m = &up[0].data;
    for (uint32_t k = 0; m->type == MSGPACK_OBJECT_MAP && k < m->via.map.size; k++) {
        msgpack_object one;
        one.type = MSGPACK_OBJECT_MAP;
        one.via.map.size = 1;
        one.via.map.ptr = &m->via.map.ptr[k];
        size_t reps = 2000;
        double a = now();
        for (size_t i = 0; i < reps; i++) {
            grading_result_t res;
            grading_grade(r, &one, &res, &e);
            grading_result_free(&res);
        }
        printf("item_latency_us %.*s %.1f\n", (int)m->via.map.ptr[k].key.via.str.size,
               m->via.map.ptr[k].key.via.str.ptr, (now() - a) / (double)reps * 1e6);
    }
    free(lat);
    for (size_t i = 0; i < n; i++) {
        msgpack_unpacked_destroy(&up[i]);
        msgpack_sbuffer_destroy(&sb[i]);
    }
    grading_rubric_destroy(&r);
    json_decref(rj);
    free(text);
    return 0;
}
