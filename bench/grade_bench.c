/*
 * grade_bench.c - scoreline-grade-bench: what the grading engine costs, with
 * no broker, no worker and no Redis in the way.
 *
 *     scoreline-grade-bench RUBRIC.json (ATTEMPT.json or DIR)... [--seconds S]
 *                           [--rounds N]
 *
 * Loads the rubric and every attempt (a directory means every *.json in it),
 * converts each attempt's responses exactly as `scoreline submit` does
 * (common/jsonmp: JSON -> msgpack, keys sorted), then on one thread:
 *
 *  1. grades the attempts round robin for S seconds: full attempts per
 *     second (per wall-clock second, and per second of the thread's CPU
 *     time, which other load on the machine disturbs less), and the latency
 *     of one attempt (p50/p99/p99.9) in an HDR-style histogram;
 *  2. grades each attempt alone: mean cost per attempt file;
 *  3. grades each item alone (a responses map holding only that item's answer
 *     from the first attempt that answers it) and an empty responses map:
 *     the latency of a single item, and what it adds over the empty map
 *     (the fixed cost of aggregation, red flags and the digest).
 *
 * --rounds N grades exactly N rounds of the attempts (after one warm-up round)
 * and stops after step 1: a fixed amount of work, for instruction counts
 * (valgrind --tool=callgrind --toggle-collect=grading_grade), where a
 * time limit would give a different mix on every run.
 *
 * Output: readable tables on stderr, and "key value" lines on stdout for
 * bench/run. The engine is pure, so the numbers depend only on the CPU.
 */
#include "bench/hist.h"
#include "common/jsonmp.h"
#include "grading/grading.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BENCH_MAX_ATTEMPTS 256
#define BENCH_MAX_ITEMS 256

typedef struct attempt_input {
    char name[128];
    json_t *responses;
    msgpack_zone zone;
    msgpack_object obj;
    size_t bytes;
} attempt_input_t;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* CPU time of this thread: what the gradings cost while other processes
 * share the cores (wall time then includes waiting for one). */
static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n + 65536 > cap) {
            cap = cap ? cap * 2 : 65536;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    fclose(f);
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Pack responses (a JSON object) and unpack them into in->obj. */
static int attempt_prepare(attempt_input_t *in, json_t *responses)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (jsonmp_pack(&pk, responses) != 0) {
        msgpack_sbuffer_destroy(&sb);
        return -1;
    }
    msgpack_zone_init(&in->zone, 4096);
    char *copy = msgpack_zone_malloc(&in->zone, sb.size ? sb.size : 1);
    memcpy(copy, sb.data, sb.size);
    size_t off = 0;
    int rc = msgpack_unpack(copy, sb.size, &off, &in->zone, &in->obj);
    in->bytes = sb.size;
    msgpack_sbuffer_destroy(&sb);
    return rc == MSGPACK_UNPACK_SUCCESS ? 0 : -1;
}

static int attempt_load(attempt_input_t *in, const char *path)
{
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        fprintf(stderr, "scoreline-grade-bench: %s: %s (line %d)\n", path, je.text, je.line);
        return -1;
    }
    json_t *resp = json_object_get(root, "responses");
    if (!json_is_object(resp)) {
        fprintf(stderr, "scoreline-grade-bench: %s: no \"responses\" object\n", path);
        json_decref(root);
        return -1;
    }
    const char *base = strrchr(path, '/');
    snprintf(in->name, sizeof in->name, "%s", base ? base + 1 : path);
    in->responses = json_incref(resp);
    json_decref(root);
    return attempt_prepare(in, in->responses);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Add every *.json of dir (sorted) to the list. */
static int load_dir(const char *dir, attempt_input_t *list, int *n)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    char *names[BENCH_MAX_ATTEMPTS];
    int k = 0;
    struct dirent *e;
    while ((e = readdir(d)) && k < BENCH_MAX_ATTEMPTS) {
        size_t l = strlen(e->d_name);
        if (l > 5 && strcmp(e->d_name + l - 5, ".json") == 0)
            names[k++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)k, sizeof *names, name_cmp);
    int rc = 0;
    for (int i = 0; i < k; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (rc == 0 && *n < BENCH_MAX_ATTEMPTS && attempt_load(&list[*n], path) == 0)
            (*n)++;
        else
            rc = -1;
        free(names[i]);
    }
    return rc;
}

/* Grade one responses map; returns elapsed ns, or 0 on error (printed once). */
static uint64_t grade_once(const grading_rubric_t *r, const msgpack_object *resp, const char *what)
{
    grading_result_t res;
    grading_error_t err;
    uint64_t t = now_ns();
    grading_err_t rc = grading_grade(r, resp, &res, &err);
    uint64_t dt = now_ns() - t;
    if (rc != GRADING_OK) {
        fprintf(stderr, "scoreline-grade-bench: %s: %s%s%s\n", what, err.path,
                err.path[0] ? ": " : "", err.message);
        return 0;
    }
    grading_result_free(&res);
    return dt ? dt : 1;
}

/* Grade resp repeatedly for about seconds; mean, p50 and p99 in ns. */
static int grade_loop(const grading_rubric_t *r, const msgpack_object *resp, const char *what,
                      double seconds, double *mean, uint64_t *p50, uint64_t *p99)
{
    static hist_t h;
    hist_init(&h);
    uint64_t end = now_ns() + (uint64_t)(seconds * 1e9);
    do {
        for (int k = 0; k < 16; k++) {
            uint64_t dt = grade_once(r, resp, what);
            if (!dt)
                return -1;
            hist_record(&h, dt);
        }
    } while (now_ns() < end);
    *mean = hist_mean(&h);
    *p50 = hist_percentile(&h, 50);
    *p99 = hist_percentile(&h, 99);
    return 0;
}

int main(int argc, char **argv)
{
    double seconds = 3.0;
    long rounds = 0;
    const char *rubric_path = NULL;
    static attempt_input_t attempts[BENCH_MAX_ATTEMPTS];
    int nattempts = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs("Usage: scoreline-grade-bench RUBRIC.json ATTEMPT.json|DIR... [--seconds S]\n"
                  "                             [--rounds N]\n"
                  "Grades the attempts on one thread for S seconds (default 3) and prints\n"
                  "attempts/s, latency per attempt and per item. --rounds N grades exactly\n"
                  "N rounds of the attempts and stops there (for instruction counts).\n",
                  stdout);
            return 0;
        }
        if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            seconds = strtod(argv[++i], NULL);
            if (seconds <= 0) {
                fprintf(stderr, "scoreline-grade-bench: --seconds must be > 0\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            rounds = strtol(argv[++i], NULL, 10);
            if (rounds <= 0) {
                fprintf(stderr, "scoreline-grade-bench: --rounds must be > 0\n");
                return 2;
            }
        } else if (!rubric_path) {
            rubric_path = argv[i];
        } else {
            size_t l = strlen(argv[i]);
            int rc = (l > 5 && strcmp(argv[i] + l - 5, ".json") == 0)
                         ? attempt_load(&attempts[nattempts], argv[i]) == 0 ? (nattempts++, 0) : -1
                         : load_dir(argv[i], attempts, &nattempts);
            if (rc != 0) {
                fprintf(stderr, "scoreline-grade-bench: cannot load %s\n", argv[i]);
                return 2;
            }
        }
    }
    if (!rubric_path || nattempts == 0) {
        fprintf(stderr, "Usage: scoreline-grade-bench RUBRIC.json ATTEMPT.json|DIR... "
                        "[--seconds S] [--rounds N]\n");
        return 2;
    }
    size_t len;
    char *text = read_file(rubric_path, &len);
    if (!text) {
        fprintf(stderr, "scoreline-grade-bench: cannot read %s: %s\n", rubric_path,
                strerror(errno));
        return 2;
    }
    grading_rubric_t *r;
    grading_error_t gerr;
    uint64_t tl = now_ns();
    if (grading_rubric_load_json(text, len, &r, &gerr) != GRADING_OK) {
        fprintf(stderr, "scoreline-grade-bench: %s: %s: %s\n", rubric_path, gerr.path,
                gerr.message);
        return 1;
    }
    double load_us = (double)(now_ns() - tl) / 1e3;
    free(text);

    /* Warm up: every attempt once (and check they grade). */
    for (int i = 0; i < nattempts; i++)
        if (!grade_once(r, &attempts[i].obj, attempts[i].name))
            return 1;

    /* 1. Round robin over every attempt: throughput and latency. */
    static hist_t all;
    hist_init(&all);
    uint64_t c0 = cpu_ns();
    uint64_t count = 0, t0 = now_ns(), end = t0 + (uint64_t)(seconds * 1e9), t1;
    size_t bytes = 0;
    long round = 0;
    do {
        for (int i = 0; i < nattempts; i++) {
            uint64_t dt = grade_once(r, &attempts[i].obj, attempts[i].name);
            if (!dt)
                return 1;
            hist_record(&all, dt);
            bytes += attempts[i].bytes;
            count++;
        }
        round++;
    } while ((t1 = now_ns()), rounds ? round < rounds : t1 < end);
    double wall = (double)(t1 - t0) / 1e9;
    double per_s = (double)count / wall;
    double cpu = (double)(cpu_ns() - c0) / 1e9;
    double per_cpu_s = cpu > 0 ? (double)count / cpu : 0;

    fprintf(stderr, "rubric %s (%s), loaded in %.0f us; %d attempts, %.1f s on one thread\n",
            grading_rubric_id(r), rubric_path, load_us, nattempts, wall);
    fprintf(stderr, "  %.0f full attempts/s (%.1f us each); latency p50 %.1f us, p99 %.1f us, "
                    "p99.9 %.1f us, max %.1f us\n",
            per_s, 1e6 / per_s, (double)hist_percentile(&all, 50) / 1e3,
            (double)hist_percentile(&all, 99) / 1e3, (double)hist_percentile(&all, 99.9) / 1e3,
            (double)all.max / 1e3);
    fprintf(stderr, "  %.0f full attempts per CPU second (%.1f us of CPU each)\n", per_cpu_s,
            per_cpu_s > 0 ? 1e6 / per_cpu_s : 0);
    printf("rubric %s\nattempts %d\nseconds %.2f\nrubric_load_us %.1f\n", grading_rubric_id(r),
           nattempts, wall, load_us);
    printf("attempts_per_cpu_s %.0f\nattempt_cpu_us %.2f\n", per_cpu_s,
           per_cpu_s > 0 ? 1e6 / per_cpu_s : 0);
    printf("attempts_per_s %.0f\nattempt_mean_us %.2f\nattempt_p50_us %.2f\nattempt_p99_us "
           "%.2f\nattempt_p999_us %.2f\nresponse_bytes_mean %.0f\n",
           per_s, hist_mean(&all) / 1e3, (double)hist_percentile(&all, 50) / 1e3,
           (double)hist_percentile(&all, 99) / 1e3, (double)hist_percentile(&all, 99.9) / 1e3,
           (double)bytes / (double)count);

    if (rounds)
        goto done;

    /* 2. Each attempt alone. */
    double per = seconds / 4 / nattempts;
    if (per < 0.05)
        per = 0.05;
    fprintf(stderr, "\n  %-28s %8s %10s %10s\n", "attempt", "bytes", "mean us", "p99 us");
    for (int i = 0; i < nattempts; i++) {
        double mean;
        uint64_t p50, p99;
        if (grade_loop(r, &attempts[i].obj, attempts[i].name, per, &mean, &p50, &p99))
            return 1;
        fprintf(stderr, "  %-28s %8zu %10.1f %10.1f\n", attempts[i].name, attempts[i].bytes,
                mean / 1e3, (double)p99 / 1e3);
        printf("attempt %s bytes %zu mean_us %.2f p99_us %.2f\n", attempts[i].name,
               attempts[i].bytes, mean / 1e3, (double)p99 / 1e3);
    }

    /* 3. Each item alone, and the empty map. */
    attempt_input_t empty;
    json_t *none = json_object();
    attempt_prepare(&empty, none);
    double empty_mean;
    uint64_t p50, p99;
    if (grade_loop(r, &empty.obj, "empty responses", per, &empty_mean, &p50, &p99))
        return 1;
    fprintf(stderr, "\n  %-22s %-10s %10s %10s %10s\n", "item (alone)", "type", "mean us",
            "p99 us", "adds us");
    fprintf(stderr, "  %-22s %-10s %10.1f %10.1f %10s\n", "(no responses)", "-", empty_mean / 1e3,
            (double)p99 / 1e3, "-");
    printf("empty mean_us %.2f p99_us %.2f\n", empty_mean / 1e3, (double)p99 / 1e3);
    /* Item ids in the order the attempts first answer them. */
    const char *seen[BENCH_MAX_ITEMS];
    int nseen = 0;
    for (int i = 0; i < nattempts; i++) {
        const char *key;
        json_t *val;
        json_object_foreach(attempts[i].responses, key, val)
        {
            int dup = 0;
            for (int k = 0; k < nseen; k++)
                dup |= strcmp(seen[k], key) == 0;
            if (dup || json_is_null(val) || nseen >= BENCH_MAX_ITEMS)
                continue;
            seen[nseen++] = key;
            json_t *one = json_object();
            json_object_set(one, key, val);
            attempt_input_t in;
            if (attempt_prepare(&in, one) != 0)
                return 1;
            double mean;
            char what[200];
            snprintf(what, sizeof what, "item %s", key);
            if (grade_loop(r, &in.obj, what, per, &mean, &p50, &p99))
                return 1;
            /* the type comes from the result: grade once and look it up */
            const char *type = "?";
            grading_result_t res;
            grading_error_t e2;
            char typebuf[32] = "?";
            if (grading_grade(r, &in.obj, &res, &e2) == GRADING_OK) {
                msgpack_zone z;
                msgpack_zone_init(&z, 4096);
                msgpack_object o;
                size_t off = 0;
                if (msgpack_unpack((const char *)res.data, res.len, &off, &z, &o) ==
                        MSGPACK_UNPACK_SUCCESS &&
                    o.type == MSGPACK_OBJECT_MAP) {
                    for (uint32_t a = 0; a < o.via.map.size; a++) {
                        msgpack_object_kv *kv = &o.via.map.ptr[a];
                        if (kv->key.type != MSGPACK_OBJECT_STR || kv->key.via.str.size != 5 ||
                            memcmp(kv->key.via.str.ptr, "items", 5) ||
                            kv->val.type != MSGPACK_OBJECT_ARRAY)
                            continue;
                        for (uint32_t it = 0; it < kv->val.via.array.size; it++) {
                            msgpack_object *im = &kv->val.via.array.ptr[it];
                            const char *id = NULL, *ty = NULL;
                            uint32_t idl = 0, tyl = 0;
                            for (uint32_t f = 0; im->type == MSGPACK_OBJECT_MAP &&
                                                 f < im->via.map.size;
                                 f++) {
                                msgpack_object_kv *fk = &im->via.map.ptr[f];
                                if (fk->key.type != MSGPACK_OBJECT_STR ||
                                    fk->val.type != MSGPACK_OBJECT_STR)
                                    continue;
                                if (fk->key.via.str.size == 2 &&
                                    !memcmp(fk->key.via.str.ptr, "id", 2)) {
                                    id = fk->val.via.str.ptr;
                                    idl = fk->val.via.str.size;
                                } else if (fk->key.via.str.size == 4 &&
                                           !memcmp(fk->key.via.str.ptr, "type", 4)) {
                                    ty = fk->val.via.str.ptr;
                                    tyl = fk->val.via.str.size;
                                }
                            }
                            if (id && ty && idl == strlen(key) && !memcmp(id, key, idl)) {
                                snprintf(typebuf, sizeof typebuf, "%.*s", (int)tyl, ty);
                                type = typebuf;
                            }
                        }
                    }
                }
                msgpack_zone_destroy(&z);
                grading_result_free(&res);
            }
            fprintf(stderr, "  %-22s %-10s %10.1f %10.1f %10.1f\n", key, type, mean / 1e3,
                    (double)p99 / 1e3, (mean - empty_mean) / 1e3);
            printf("item %s type %s mean_us %.2f p99_us %.2f adds_us %.2f\n", key, type,
                   mean / 1e3, (double)p99 / 1e3, (mean - empty_mean) / 1e3);
            msgpack_zone_destroy(&in.zone);
            json_decref(one);
        }
    }
    msgpack_zone_destroy(&empty.zone);
    json_decref(none);
done:
    for (int i = 0; i < nattempts; i++) {
        msgpack_zone_destroy(&attempts[i].zone);
        json_decref(attempts[i].responses);
    }
    grading_rubric_destroy(&r);
    return 0;
}
