/*
 * test_grading_determinism.c - the same inputs give the same bytes.
 *
 * Each check grades every csm-smb sample attempt in a separate process (this
 * test binary re-executed in "child" mode) and compares the result bytes
 * with the parent's: graded in reverse order, with the rubric's keys
 * reversed and re-indented, with another jansson hash seed, under a German
 * locale (decimal comma in printf), and a second later. The golden digests
 * in tests/golden/csm-smb/digests.txt pin the bytes across engine changes:
 * a change that moves them must be deliberate (SCORELINE_UPDATE_GOLDEN=1
 * rewrites the file).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <locale.h>
#include <pthread.h>
#include <unistd.h>

#include "test_grading_util.h"

static const char *self_path;

#define MAX_ATTEMPTS 128

typedef struct attempts {
    char *names[MAX_ATTEMPTS];
    json_t *responses[MAX_ATTEMPTS];
    size_t n;
} attempts_t;

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void attempts_load(attempts_t *at)
{
    char dir[512];
    snprintf(dir, sizeof dir, "%s/rubrics/csm-smb/attempts", SCORELINE_SOURCE_DIR);
    DIR *d = opendir(dir);
    struct dirent *de;
    at->n = 0;
    while (d && (de = readdir(d)) && at->n < MAX_ATTEMPTS) {
        size_t l = strlen(de->d_name);
        if (l > 5 && strcmp(de->d_name + l - 5, ".json") == 0)
            at->names[at->n++] = strdup(de->d_name);
    }
    if (d)
        closedir(d);
    qsort(at->names, at->n, sizeof at->names[0], name_cmp);
    for (size_t i = 0; i < at->n; i++) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, at->names[i]);
        json_t *a = json_load_file(path, 0, NULL);
        at->responses[i] = json_incref(json_object_get(a, "responses"));
        json_decref(a);
    }
}

static void attempts_free(attempts_t *at)
{
    for (size_t i = 0; i < at->n; i++) {
        free(at->names[i]);
        json_decref(at->responses[i]);
    }
}

/* A copy of v with every object's keys inserted in reverse order. */
static json_t *reverse_keys(json_t *v)
{
    if (json_is_array(v)) {
        json_t *a = json_array();
        for (size_t i = 0; i < json_array_size(v); i++)
            json_array_append_new(a, reverse_keys(json_array_get(v, i)));
        return a;
    }
    if (!json_is_object(v))
        return json_deep_copy(v);
    const char *keys[256];
    size_t n = 0;
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x)
    {
        if (n < 256)
            keys[n++] = k;
    }
    json_t *o = json_object();
    while (n-- > 0)
        json_object_set_new(o, keys[n], reverse_keys(json_object_get(v, keys[n])));
    return o;
}

/* Grade every attempt; return one line per attempt (name, digest, hex of the
 * result bytes) in file order, whatever the grading order. */
static char *grade_all(bool reversed_keys, bool reverse_order)
{
    char path[512];
    snprintf(path, sizeof path, "%s/rubrics/csm-smb/csm-smb.json", SCORELINE_SOURCE_DIR);
    json_t *rj = json_load_file(path, 0, NULL);
    if (!rj)
        return NULL;
    char *text;
    if (reversed_keys) {
        json_t *rev = reverse_keys(rj);
        text = json_dumps(rev, JSON_INDENT(7));
        json_decref(rev);
    } else {
        text = json_dumps(rj, JSON_COMPACT);
    }
    json_decref(rj);
    grading_rubric_t *r = tg_load(text);
    free(text);
    if (!r)
        return NULL;
    attempts_t at;
    attempts_load(&at);
    char **lines = calloc(at.n, sizeof *lines);
    for (size_t k = 0; k < at.n; k++) {
        size_t i = reverse_order ? at.n - 1 - k : k;
        tg_msg_t m;
        const msgpack_object *o = tg_msg_from_json_value(&m, at.responses[i]);
        grading_result_t res;
        grading_error_t e;
        if (grading_grade(r, o, &res, &e) != GRADING_OK) {
            lines[i] = strdup("error\n");
        } else {
            size_t cap = strlen(at.names[i]) + 70 + res.len * 2 + 2;
            char *l = malloc(cap);
            size_t off = (size_t)snprintf(l, cap, "%s %s ", at.names[i], res.digest);
            for (size_t b = 0; b < res.len; b++)
                off += (size_t)snprintf(l + off, cap - off, "%02x", res.data[b]);
            snprintf(l + off, cap - off, "\n");
            lines[i] = l;
            grading_result_free(&res);
        }
        tg_msg_free(&m);
    }
    size_t total = 1;
    for (size_t i = 0; i < at.n; i++)
        total += strlen(lines[i]);
    char *out = malloc(total);
    out[0] = 0;
    for (size_t i = 0; i < at.n; i++) {
        strcat(out, lines[i]);
        free(lines[i]);
    }
    free(lines);
    attempts_free(&at);
    grading_rubric_destroy(&r);
    return out;
}

/* Run this binary in child mode with the given options; its stdout. */
static char *run_child(const char *opts)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "ASAN_OPTIONS=detect_leaks=0 '%s' child %s", self_path, opts);
    FILE *p = popen(cmd, "r");
    if (!p)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *buf = malloc(cap);
    size_t k;
    while ((k = fread(buf + n, 1, cap - n - 1, p)) > 0) {
        n += k;
        if (cap - n < 2) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    buf[n] = 0;
    pclose(p);
    return buf;
}

static int child_main(int argc, char **argv)
{
    bool rev_keys = false, rev_order = false;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "reverse-order") == 0)
            rev_order = true;
        else if (strcmp(argv[i], "reverse-keys") == 0)
            rev_keys = true;
        else if (strncmp(argv[i], "seed=", 5) == 0)
            json_object_seed((size_t)strtoull(argv[i] + 5, NULL, 10));
        else if (strncmp(argv[i], "locale=", 7) == 0) {
            setenv("LOCPATH", argv[i] + 7, 1);
            if (!setlocale(LC_ALL, "de_DE.UTF-8")) {
                printf("no-locale\n");
                return 0;
            }
        }
    }
    char *out = grade_all(rev_keys, rev_order);
    fputs(out ? out : "error\n", stdout);
    free(out);
    return 0;
}

static void test_two_processes_any_order_same_bytes(void **state)
{
    char *here = grade_all(false, false);
    assert_non_null(here);
    char *other = run_child("reverse-order seed=12345");
    assert_string_equal(other, here);
    free(other);
    other = run_child("reverse-keys seed=777");
    assert_string_equal(other, here);
    free(other);
    free(here);
}

static void test_locale_does_not_change_results(void **state)
{
    char dir[] = "/tmp/scoreline-locale-XXXXXX";
    if (!mkdtemp(dir))
        skip();
    char cmd[512];
    snprintf(cmd, sizeof cmd, "localedef -i de_DE -f UTF-8 %s/de_DE.UTF-8 >/dev/null 2>&1", dir);
    if (system(cmd) != 0) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        (void)system(cmd);
        skip(); /* no locale sources on this machine */
    }
    char opt[600];
    snprintf(opt, sizeof opt, "locale=%s", dir);
    char *other = run_child(opt);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    (void)system(cmd);
    if (strcmp(other, "no-locale\n") == 0) {
        free(other);
        skip();
    }
    char *here = grade_all(false, false);
    assert_string_equal(other, here);
    free(here);
    free(other);
}

static void test_time_does_not_change_results(void **state)
{
    char *a = grade_all(false, false);
    sleep(1);
    char *b = grade_all(true, true);
    assert_string_equal(a, b);
    free(a);
    free(b);
}

static void test_golden_digests(void **state)
{
    char *here = grade_all(false, false);
    assert_non_null(here);
    /* "name digest hex" lines -> "name digest" lines */
    size_t cap = strlen(here) + 1, o = 0;
    char *want = malloc(cap);
    for (char *line = here; *line;) {
        char *nl = strchr(line, '\n');
        char *sp2 = strchr(strchr(line, ' ') + 1, ' ');
        memcpy(want + o, line, (size_t)(sp2 - line));
        o += (size_t)(sp2 - line);
        want[o++] = '\n';
        line = nl + 1;
    }
    want[o] = 0;
    char path[512];
    snprintf(path, sizeof path, "%s/tests/golden/csm-smb/digests.txt", SCORELINE_SOURCE_DIR);
    if (getenv("SCORELINE_UPDATE_GOLDEN")) {
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fputs(want, f);
        fclose(f);
    }
    size_t len;
    char *golden = tg_read_file(path, &len);
    assert_non_null(golden);
    assert_string_equal(golden, want);
    free(golden);
    free(want);
    free(here);
}

/* Every sample attempt graded by r and by r2 gives the same bytes. */
static void assert_same_bytes_for_every_attempt(const grading_rubric_t *r,
                                                const grading_rubric_t *r2)
{
    attempts_t at;
    attempts_load(&at);
    for (size_t i = 0; i < at.n; i++) {
        tg_msg_t m;
        const msgpack_object *o = tg_msg_from_json_value(&m, at.responses[i]);
        grading_result_t a, b;
        grading_error_t e;
        assert_int_equal(grading_grade(r, o, &a, &e), GRADING_OK);
        assert_int_equal(grading_grade(r2, o, &b, &e), GRADING_OK);
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.data, b.data, a.len);
        grading_result_free(&a);
        grading_result_free(&b);
        tg_msg_free(&m);
    }
    attempts_free(&at);
}

static void test_every_item_type_round_trips_canonical_form(void **state)
{
    grading_rubric_t *r = tg_load_file("rubrics/csm-smb/csm-smb.json");
    assert_non_null(r);
    size_t len;
    const void *buf = grading_rubric_canonical(r, &len);
    grading_rubric_t *r2 = NULL;
    grading_error_t e;
    if (grading_rubric_load_msgpack(buf, len, &r2, &e) != GRADING_OK)
        fail_msg("%s: %s", e.path, e.message);
    assert_string_equal(grading_rubric_hash(r), grading_rubric_hash(r2));
    /* and the reloaded rubric grades to the same bytes */
    assert_same_bytes_for_every_attempt(r, r2);
    grading_rubric_destroy(&r);
    grading_rubric_destroy(&r2);
}

/* Patterns JIT-compiled or left to the interpreter (SCORELINE_PCRE2_JIT=0 at
 * load): the same bytes for every attempt. Both engines make the same
 * callouts, which the work budget counts. */
static void test_interpreter_and_jit_grade_the_same_bytes(void **state)
{
    grading_rubric_t *jit = tg_load_file("rubrics/csm-smb/csm-smb.json");
    assert_int_equal(setenv("SCORELINE_PCRE2_JIT", "0", 1), 0);
    grading_rubric_t *interp = tg_load_file("rubrics/csm-smb/csm-smb.json");
    unsetenv("SCORELINE_PCRE2_JIT");
    assert_non_null(jit);
    assert_non_null(interp);
    assert_same_bytes_for_every_attempt(jit, interp);
    grading_rubric_destroy(&jit);
    grading_rubric_destroy(&interp);
}

static void test_explain_renders_every_result(void **state)
{
    grading_rubric_t *r = tg_load_file("rubrics/csm-smb/csm-smb.json");
    attempts_t at;
    attempts_load(&at);
    for (size_t i = 0; i < at.n; i++) {
        tg_msg_t m;
        const msgpack_object *o = tg_msg_from_json_value(&m, at.responses[i]);
        grading_result_t res;
        grading_error_t e;
        assert_int_equal(grading_grade(r, o, &res, &e), GRADING_OK);
        char *text = grading_explain(r, res.data, res.len);
        assert_non_null(text);
        assert_non_null(strstr(text, "Decision: "));
        assert_non_null(strstr(text, res.digest));
        free(text);
        char *json = grading_result_json(res.data, res.len, 2);
        assert_non_null(json);
        json_t *parsed = json_loads(json, 0, NULL);
        assert_non_null(parsed);
        assert_string_equal(json_string_value(json_object_get(parsed, "digest")), res.digest);
        json_decref(parsed);
        free(json);
        assert_null(grading_explain(r, "\x01\x02", 2));
        assert_null(grading_result_json("\x01\x02", 2, 0));
        grading_result_free(&res);
        tg_msg_free(&m);
    }
    attempts_free(&at);
    grading_rubric_destroy(&r);
}

typedef struct thread_job {
    const grading_rubric_t *r;
    attempts_t *at;
    char *want[MAX_ATTEMPTS]; /* digests graded on the main thread */
    int mismatches;
} thread_job_t;

static void *grade_in_thread(void *arg)
{
    thread_job_t *job = arg;
    for (int round = 0; round < 10; round++)
        for (size_t i = 0; i < job->at->n; i++) {
            tg_msg_t m;
            const msgpack_object *o = tg_msg_from_json_value(&m, job->at->responses[i]);
            grading_result_t res;
            grading_error_t e;
            if (grading_grade(job->r, o, &res, &e) != GRADING_OK ||
                strcmp(res.digest, job->want[i]) != 0)
                __atomic_add_fetch(&job->mismatches, 1, __ATOMIC_RELAXED);
            grading_result_free(&res);
            tg_msg_free(&m);
        }
    return NULL;
}

/* One rubric shared read-only by four threads grading at once. */
static void test_rubric_shared_between_threads(void **state)
{
    grading_rubric_t *r = tg_load_file("rubrics/csm-smb/csm-smb.json");
    attempts_t at;
    attempts_load(&at);
    thread_job_t job = {.r = r, .at = &at};
    for (size_t i = 0; i < at.n; i++) {
        tg_msg_t m;
        const msgpack_object *o = tg_msg_from_json_value(&m, at.responses[i]);
        grading_result_t res;
        grading_error_t e;
        assert_int_equal(grading_grade(r, o, &res, &e), GRADING_OK);
        job.want[i] = strdup(res.digest);
        grading_result_free(&res);
        tg_msg_free(&m);
    }
    pthread_t th[4];
    for (int k = 0; k < 4; k++)
        assert_int_equal(pthread_create(&th[k], NULL, grade_in_thread, &job), 0);
    for (int k = 0; k < 4; k++)
        pthread_join(th[k], NULL);
    assert_int_equal(job.mismatches, 0);
    for (size_t i = 0; i < at.n; i++)
        free(job.want[i]);
    attempts_free(&at);
    grading_rubric_destroy(&r);
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "child") == 0)
        return child_main(argc, argv);
    self_path = argv[0];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_processes_any_order_same_bytes),
        cmocka_unit_test(test_locale_does_not_change_results),
        cmocka_unit_test(test_time_does_not_change_results),
        cmocka_unit_test(test_golden_digests),
        cmocka_unit_test(test_every_item_type_round_trips_canonical_form),
        cmocka_unit_test(test_interpreter_and_jit_grade_the_same_bytes),
        cmocka_unit_test(test_explain_renders_every_result),
        cmocka_unit_test(test_rubric_shared_between_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
