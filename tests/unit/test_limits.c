/*
 * test_limits.c - every documented input limit, hit on purpose through the
 * public APIs, with the exact error code a client gets (docs/LIMITS.md).
 *
 *   wire (proto/)      body size, nesting depth, declared-length bombs, jobs
 *                      per SUBMIT, id and name lengths, UTF-8, credit,
 *                      time-to-run, responses shape;
 *   grading (grading/) rubric size, items per rubric and other rubric shape
 *                      limits, JSON/msgpack nesting, text length, list
 *                      lengths, red-flag expression depth, PCRE2 match and
 *                      depth limits (a pattern that would backtrack forever
 *                      ends, abandoned, within the budget);
 *   CLI (cli/attempt)  the same limits checked on attempt files.
 *
 * The CLI's attempt loader is not in the libraries tests/CMakeLists.txt
 * links, so its source is compiled in, as test_cli.c does.
 */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli/attempt.c"

#include "grading/grading.h"
#include "proto/proto.h"
#include "common/jsonmp.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------ helpers */

static void pack_cstr(msgpack_packer *pk, const char *s)
{
    msgpack_pack_str(pk, strlen(s));
    msgpack_pack_str_body(pk, s, strlen(s));
}

static void pack_strn(msgpack_packer *pk, const char *s, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

/* A job map {job_id, tenant, rubric, responses: {"q": "a"}}. */
static void pack_job(msgpack_packer *pk, const char *job_id, size_t id_len, const char *tenant)
{
    msgpack_pack_map(pk, 4);
    pack_cstr(pk, "job_id");
    pack_strn(pk, job_id, id_len);
    pack_cstr(pk, "tenant");
    pack_cstr(pk, tenant);
    pack_cstr(pk, "rubric");
    pack_cstr(pk, "csm-smb");
    pack_cstr(pk, "responses");
    msgpack_pack_map(pk, 1);
    pack_cstr(pk, "q");
    pack_cstr(pk, "a");
}

/* SUBMIT {seq: 1, jobs: [n jobs "j<i>"]}. */
static void pack_submit(msgpack_sbuffer *sb, size_t n)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    pack_cstr(&pk, "seq");
    msgpack_pack_uint64(&pk, 1);
    pack_cstr(&pk, "jobs");
    msgpack_pack_array(&pk, n);
    for (size_t i = 0; i < n; i++) {
        char id[32];
        int len = snprintf(id, sizeof id, "j%zu", i);
        pack_job(&pk, id, (size_t)len, "acme");
    }
}

/* Decode a SUBMIT carrying one job; the job's own outcome is returned when
 * the message itself decodes. */
static proto_err_t submit_one_job(const msgpack_sbuffer *job, proto_error_t *err)
{
    msgpack_sbuffer body;
    msgpack_sbuffer_init(&body);
    const msgpack_sbuffer *maps[1] = {job};
    assert_int_equal(proto_encode_submit(&body, 1, maps, 1), 0);
    proto_decoder_t *d = proto_decoder_new(0);
    proto_submit_t m;
    proto_err_t rc = proto_decode_submit(d, body.data, body.size, &m, err);
    if (rc == PROTO_OK) {
        assert_int_equal(m.njobs, 1);
        rc = m.jobs[0].err.code;
        *err = m.jobs[0].err;
    }
    proto_decoder_destroy(&d);
    msgpack_sbuffer_destroy(&body);
    return rc;
}

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------ wire */

static void test_body_over_the_decoder_limit_is_too_large(void **state)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    pack_submit(&sb, 1);
    proto_decoder_t *d = proto_decoder_new(sb.size - 1);
    proto_submit_t m;
    proto_error_t e;
    assert_int_equal(proto_decode_submit(d, sb.data, sb.size, &m, &e), PROTO_ERR_TOO_LARGE);
    assert_string_equal(proto_err_code(e.code), "too_large");
    proto_decoder_destroy(&d);
    /* exactly at the limit decodes */
    d = proto_decoder_new(sb.size);
    assert_int_equal(proto_decode_submit(d, sb.data, sb.size, &m, &e), PROTO_OK);
    proto_decoder_destroy(&d);
    msgpack_sbuffer_destroy(&sb);
}

static void test_body_over_the_default_4_mib_is_too_large(void **state)
{
    /* a 4 MiB + 1 byte SUBMIT: one job whose answer fills the rest */
    size_t target = PROTO_DEFAULT_MAX_BODY + 1;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    pack_cstr(&pk, "jobs");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 4);
    pack_cstr(&pk, "job_id");
    pack_cstr(&pk, "j");
    pack_cstr(&pk, "tenant");
    pack_cstr(&pk, "t");
    pack_cstr(&pk, "rubric");
    pack_cstr(&pk, "r");
    pack_cstr(&pk, "responses");
    msgpack_pack_map(&pk, 1);
    pack_cstr(&pk, "q");
    size_t fill = target - sb.size - 5; /* str32 header */
    char *text = repeat('a', fill);
    pack_strn(&pk, text, fill);
    free(text);
    assert_int_equal(sb.size, target);
    proto_decoder_t *d = proto_decoder_new(0);
    proto_submit_t m;
    proto_error_t e;
    assert_int_equal(proto_decode_submit(d, sb.data, sb.size, &m, &e), PROTO_ERR_TOO_LARGE);
    assert_non_null(strstr(e.message, "4194304"));
    /* one byte less fits */
    assert_int_equal(proto_decode_submit(d, sb.data, sb.size - 1, &m, &e),
                     PROTO_ERR_MALFORMED); /* (truncated, but not too large) */
    proto_decoder_destroy(&d);
    msgpack_sbuffer_destroy(&sb);
}

static void test_submit_of_10001_jobs_is_batch_too_large(void **state)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    pack_submit(&sb, PROTO_MAX_BATCH + 1);
    proto_decoder_t *d = proto_decoder_new(0);
    proto_submit_t m;
    proto_error_t e;
    assert_int_equal(proto_decode_submit(d, sb.data, sb.size, &m, &e), PROTO_ERR_BATCH_TOO_LARGE);
    assert_string_equal(proto_err_code(e.code), "batch_too_large");
    msgpack_sbuffer_clear(&sb);
    pack_submit(&sb, PROTO_MAX_BATCH);
    assert_int_equal(proto_decode_submit(d, sb.data, sb.size, &m, &e), PROTO_OK);
    assert_int_equal(m.njobs, PROTO_MAX_BATCH);
    for (uint32_t i = 0; i < m.njobs; i++)
        assert_int_equal(m.jobs[i].err.code, PROTO_OK);
    /* and an empty batch is a bad value */
    msgpack_sbuffer_clear(&sb);
    pack_submit(&sb, 0);
    assert_int_equal(proto_decode_submit(d, sb.data, sb.size, &m, &e), PROTO_ERR_BAD_VALUE);
    proto_decoder_destroy(&d);
    msgpack_sbuffer_destroy(&sb);
}

static void test_job_id_of_129_bytes_is_bad_value(void **state)
{
    char id[PROTO_MAX_JOB_ID + 2];
    memset(id, 'x', sizeof id);
    msgpack_sbuffer job;
    msgpack_sbuffer_init(&job);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &job, msgpack_sbuffer_write);
    pack_job(&pk, id, PROTO_MAX_JOB_ID + 1, "acme");
    proto_error_t e;
    assert_int_equal(submit_one_job(&job, &e), PROTO_ERR_BAD_VALUE);
    assert_string_equal(proto_err_code(e.code), "bad_value");
    assert_non_null(strstr(e.message, "jobs[0].job_id"));
    msgpack_sbuffer_clear(&job);
    pack_job(&pk, id, PROTO_MAX_JOB_ID, "acme");
    assert_int_equal(submit_one_job(&job, &e), PROTO_OK);
    msgpack_sbuffer_clear(&job);
    pack_job(&pk, id, 0, "acme"); /* empty */
    assert_int_equal(submit_one_job(&job, &e), PROTO_ERR_BAD_VALUE);
    msgpack_sbuffer_destroy(&job);
}

static void test_tenant_of_129_bytes_and_invalid_utf8_are_bad_value(void **state)
{
    char *tenant = repeat('t', PROTO_MAX_NAME + 1);
    msgpack_sbuffer job;
    msgpack_sbuffer_init(&job);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &job, msgpack_sbuffer_write);
    pack_job(&pk, "j", 1, tenant);
    proto_error_t e;
    assert_int_equal(submit_one_job(&job, &e), PROTO_ERR_BAD_VALUE);
    assert_non_null(strstr(e.message, "tenant"));
    free(tenant);
    /* a job id that is not UTF-8: overlong '/', a surrogate, a lone continuation */
    const char *bad[] = {"a\xc0\xaf", "\xed\xa0\x80", "\x80", "\xff"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        msgpack_sbuffer_clear(&job);
        pack_job(&pk, bad[i], strlen(bad[i]), "acme");
        assert_int_equal(submit_one_job(&job, &e), PROTO_ERR_BAD_VALUE);
        assert_non_null(strstr(e.message, "UTF-8"));
    }
    /* a control character in an identifier */
    msgpack_sbuffer_clear(&job);
    pack_job(&pk, "a\nb", 3, "acme");
    assert_int_equal(submit_one_job(&job, &e), PROTO_ERR_BAD_VALUE);
    msgpack_sbuffer_destroy(&job);
}

/* A job whose responses are {"q": [[[...]]]} with `levels` arrays. */
static void pack_deep_job(msgpack_sbuffer *job, int levels)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, job, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 4);
    pack_cstr(&pk, "job_id");
    pack_cstr(&pk, "deep");
    pack_cstr(&pk, "tenant");
    pack_cstr(&pk, "acme");
    pack_cstr(&pk, "rubric");
    pack_cstr(&pk, "r");
    pack_cstr(&pk, "responses");
    msgpack_pack_map(&pk, 1);
    pack_cstr(&pk, "q");
    for (int i = 0; i < levels; i++)
        msgpack_pack_array(&pk, i + 1 < levels ? 1 : 0);
}

static void test_nesting_deeper_than_32_is_refused(void **state)
{
    /* SUBMIT map (1) > jobs array (2) > job map (3) > responses (4) > arrays */
    msgpack_sbuffer job;
    msgpack_sbuffer_init(&job);
    pack_deep_job(&job, PROTO_MAX_DEPTH - 4);
    proto_error_t e;
    assert_int_equal(submit_one_job(&job, &e), PROTO_OK); /* exactly 32 levels */
    msgpack_sbuffer_clear(&job);
    pack_deep_job(&job, PROTO_MAX_DEPTH - 3);
    assert_int_equal(submit_one_job(&job, &e), PROTO_ERR_TOO_LARGE); /* 33 */
    assert_string_equal(proto_err_code(e.code), "too_large");
    assert_non_null(strstr(e.message, "nested deeper than 32"));
    msgpack_sbuffer_destroy(&job);
}

static void test_declared_length_bombs_are_malformed_without_allocating(void **state)
{
    proto_decoder_t *d = proto_decoder_new(0);
    proto_submit_t m;
    proto_error_t e;
    /* {"jobs": array32 of 4294967295} and a bare array32 / str32 / map32 header */
    static const uint8_t bombs[][12] = {
        {0x81, 0xa4, 'j', 'o', 'b', 's', 0xdd, 0xff, 0xff, 0xff, 0xff},
        {0xdd, 0xff, 0xff, 0xff, 0xff},
        {0x81, 0xa4, 'j', 'o', 'b', 's', 0xdb, 0xff, 0xff, 0xff, 0xff},
        {0x81, 0xa4, 'j', 'o', 'b', 's', 0xdf, 0xff, 0xff, 0xff, 0xff},
    };
    static const size_t lens[] = {11, 5, 11, 11};
    for (size_t i = 0; i < 4; i++) {
        proto_err_t rc = proto_decode_submit(d, bombs[i], lens[i], &m, &e);
        assert_true(rc == PROTO_ERR_MALFORMED || rc == PROTO_ERR_NOT_MAP);
    }
    proto_decoder_destroy(&d);
}

static void test_credit_and_ttr_ranges(void **state)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    proto_decoder_t *d = proto_decoder_new(0);
    proto_error_t e;
    uint32_t credits[] = {0, PROTO_MAX_CREDIT + 1};
    for (size_t i = 0; i < 2; i++) {
        msgpack_sbuffer_clear(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 3);
        pack_cstr(&pk, "worker");
        pack_cstr(&pk, "w1");
        pack_cstr(&pk, "credit");
        msgpack_pack_uint32(&pk, credits[i]);
        pack_cstr(&pk, "engine");
        pack_cstr(&pk, GRADING_ENGINE);
        proto_ready_t r;
        assert_int_equal(proto_decode_ready(d, sb.data, sb.size, &r, &e), PROTO_ERR_BAD_VALUE);
    }
    /* a job's ttr_ms above one hour */
    msgpack_sbuffer_clear(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 5);
    pack_cstr(&pk, "job_id");
    pack_cstr(&pk, "j");
    pack_cstr(&pk, "tenant");
    pack_cstr(&pk, "t");
    pack_cstr(&pk, "rubric");
    pack_cstr(&pk, "r");
    pack_cstr(&pk, "responses");
    msgpack_pack_map(&pk, 0);
    pack_cstr(&pk, "ttr_ms");
    msgpack_pack_uint32(&pk, PROTO_MAX_TTR_MS + 1);
    assert_int_equal(submit_one_job(&sb, &e), PROTO_ERR_BAD_VALUE);
    assert_non_null(strstr(e.message, "ttr_ms"));
    proto_decoder_destroy(&d);
    msgpack_sbuffer_destroy(&sb);
}

static void test_responses_shape_limits(void **state)
{
    msgpack_sbuffer job;
    msgpack_sbuffer_init(&job);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &job, msgpack_sbuffer_write);
    proto_error_t e;
    char *long_id = repeat('i', PROTO_MAX_NAME + 1);
    /* item id of 129 bytes; duplicate item id; bin value; non-string key */
    for (int kase = 0; kase < 4; kase++) {
        msgpack_sbuffer_clear(&job);
        msgpack_pack_map(&pk, 4);
        pack_cstr(&pk, "job_id");
        pack_cstr(&pk, "j");
        pack_cstr(&pk, "tenant");
        pack_cstr(&pk, "t");
        pack_cstr(&pk, "rubric");
        pack_cstr(&pk, "r");
        pack_cstr(&pk, "responses");
        if (kase == 0) {
            msgpack_pack_map(&pk, 1);
            pack_cstr(&pk, long_id);
            msgpack_pack_nil(&pk);
        } else if (kase == 1) {
            msgpack_pack_map(&pk, 2);
            pack_cstr(&pk, "q");
            msgpack_pack_int(&pk, 1);
            pack_cstr(&pk, "q");
            msgpack_pack_int(&pk, 2);
        } else if (kase == 2) {
            msgpack_pack_map(&pk, 1);
            pack_cstr(&pk, "q");
            msgpack_pack_bin(&pk, 1);
            msgpack_pack_bin_body(&pk, "x", 1);
        } else {
            msgpack_pack_map(&pk, 1);
            msgpack_pack_int(&pk, 7);
            msgpack_pack_int(&pk, 1);
        }
        proto_err_t want = kase <= 1 ? PROTO_ERR_BAD_VALUE : PROTO_ERR_WRONG_TYPE;
        assert_int_equal(submit_one_job(&job, &e), want);
    }
    free(long_id);
    msgpack_sbuffer_destroy(&job);
}

/* ------------------------------------------------------------ grading */

static char *read_source_file(const char *rel, size_t *len)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", SCORELINE_SOURCE_DIR, rel);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

static grading_rubric_t *load_ok(const char *json)
{
    grading_rubric_t *r = NULL;
    grading_error_t e;
    grading_err_t rc = grading_rubric_load_json(json, strlen(json), &r, &e);
    if (rc != GRADING_OK)
        fail_msg("rubric refused: %s: %s: %s", grading_err_code(rc), e.path, e.message);
    return r;
}

static grading_err_t load_err(const char *json, size_t len, grading_error_t *e)
{
    grading_rubric_t *r = NULL;
    grading_err_t rc = grading_rubric_load_json(json, len, &r, e);
    assert_true(rc != GRADING_OK);
    assert_null(r);
    return rc;
}

/* Grade {item: <value packed by fn>}. */
typedef void (*pack_fn)(msgpack_packer *pk, const void *arg);

static grading_err_t grade_one(const grading_rubric_t *r, const char *item, pack_fn fn,
                               const void *arg, grading_result_t *res, grading_error_t *e)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    pack_cstr(&pk, item);
    fn(&pk, arg);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&up, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
    grading_err_t rc = grading_grade(r, &up.data, res, e);
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

typedef struct text_arg {
    const char *s;
    size_t n;
} text_arg_t;

static void pack_text(msgpack_packer *pk, const void *arg)
{
    const text_arg_t *t = arg;
    pack_strn(pk, t->s, t->n);
}

static void pack_n_strings(msgpack_packer *pk, const void *arg)
{
    size_t n = *(const size_t *)arg;
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++)
        pack_cstr(pk, i % 2 ? "a" : "b");
}

static void pack_n_ints(msgpack_packer *pk, const void *arg)
{
    size_t n = *(const size_t *)arg;
    msgpack_pack_array(pk, n);
    for (size_t i = 0; i < n; i++)
        msgpack_pack_int(pk, 3);
}

static const char *LIMITS_RUBRIC =
    "{\"id\":\"limits\",\"version\":\"1\",\"sections\":[{\"id\":\"s\"}],\"items\":["
    "{\"id\":\"c\",\"type\":\"choice\",\"section\":\"s\",\"multiple\":true,\"options\":["
    "{\"id\":\"a\",\"correct\":true},{\"id\":\"b\"}]},"
    "{\"id\":\"q\",\"type\":\"quantity\",\"section\":\"s\",\"kind\":\"percent\","
    "\"answers\":[{\"value\":\"8.3\"}]},"
    "{\"id\":\"t\",\"type\":\"text\",\"section\":\"s\",\"elements\":["
    "{\"id\":\"sorry\",\"phrases\":[\"sorry\"]}]},"
    "{\"id\":\"d\",\"type\":\"date\",\"section\":\"s\",\"answers\":[\"2025-07-15\"]},"
    "{\"id\":\"o\",\"type\":\"ordering\",\"section\":\"s\",\"steps\":[{\"id\":\"a\"},"
    "{\"id\":\"b\"}]},"
    "{\"id\":\"r\",\"type\":\"rating\",\"section\":\"s\",\"scale\":{\"min\":1,\"max\":5}}]}";

static void test_rubric_over_4_mib_is_limit_exceeded(void **state)
{
    size_t n = (4u << 20) + 1;
    char *big = repeat(' ', n);
    big[0] = '{';
    big[n - 1] = '}';
    grading_error_t e;
    assert_int_equal(load_err(big, n, &e), GRADING_ERR_LIMIT);
    assert_string_equal(grading_err_code(e.code), "limit_exceeded");
    assert_non_null(strstr(e.message, "4194304"));
    grading_error_t errs[2];
    size_t ne = 0;
    assert_int_equal(grading_rubric_lint_json(big, n, errs, 2, &ne), GRADING_ERR_LIMIT);
    grading_rubric_t *r = NULL;
    assert_int_equal(grading_rubric_load_msgpack(big, n, &r, &e), GRADING_ERR_LIMIT);
    assert_null(r);
    /* exactly 4 MiB passes the size check (and fails later, as JSON that is no rubric) */
    big[n - 2] = '}';
    assert_int_equal(load_err(big, n - 1, &e), GRADING_ERR_INVALID_RUBRIC);
    free(big);
}

/* A rubric with n choice items. */
static char *rubric_with_items(size_t n)
{
    size_t cap = 200 + n * 120;
    char *s = malloc(cap);
    size_t k = (size_t)snprintf(s, cap,
                                "{\"id\":\"many\",\"version\":\"1\",\"sections\":"
                                "[{\"id\":\"s\"}],\"items\":[");
    for (size_t i = 0; i < n; i++)
        k += (size_t)snprintf(s + k, cap - k,
                              "%s{\"id\":\"i%zu\",\"type\":\"choice\",\"section\":\"s\","
                              "\"options\":[{\"id\":\"a\",\"correct\":true},{\"id\":\"b\"}]}",
                              i ? "," : "", i);
    snprintf(s + k, cap - k, "]}");
    return s;
}

static void test_more_than_1000_items_is_limit_exceeded(void **state)
{
    char *s = rubric_with_items(1001);
    grading_error_t e;
    assert_int_equal(load_err(s, strlen(s), &e), GRADING_ERR_LIMIT);
    assert_string_equal(e.path, "items");
    assert_string_equal(e.message, "1001 items; the limit is 1000");
    free(s);
    s = rubric_with_items(1000);
    grading_rubric_t *r = load_ok(s);
    grading_rubric_destroy(&r);
    free(s);
}

static void test_rubric_shape_limits_are_invalid_rubric(void **state)
{
    struct {
        const char *json;
        const char *path;
    } cases[] = {
        /* a phrase of 13 words (1..12) */
        {"{\"id\":\"x\",\"version\":\"1\",\"sections\":[{\"id\":\"s\"}],\"items\":[{\"id\":\"t\","
         "\"type\":\"text\",\"section\":\"s\",\"elements\":[{\"id\":\"e\",\"phrases\":[\"a b c d e "
         "f g h i j k l m\"]}]}]}",
         "items[0].elements[0].phrases"},
        /* an identifier of 65 characters */
        {"{\"id\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\","
         "\"version\":\"1\",\"sections\":[{\"id\":\"s\"}],\"items\":[{\"id\":\"c\",\"type\":"
         "\"choice\",\"section\":\"s\",\"options\":[{\"id\":\"a\",\"correct\":true},{\"id\":\"b\"}]"
         "}"
         "]}",
         "id"},
        /* a pattern that does not compile */
        {"{\"id\":\"x\",\"version\":\"1\",\"sections\":[{\"id\":\"s\"}],\"items\":[{\"id\":\"t\","
         "\"type\":\"text\",\"section\":\"s\",\"elements\":[{\"id\":\"e\",\"patterns\":[\"(a\"]}]}"
         "]}",
         "items[0].elements[0].patterns[0]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        grading_error_t e;
        assert_int_equal(load_err(cases[i].json, strlen(cases[i].json), &e),
                         GRADING_ERR_INVALID_RUBRIC);
        if (strncmp(e.path, cases[i].path, strlen(cases[i].path)) != 0)
            fail_msg("case %zu: path %s, expected %s (%s)", i, e.path, cases[i].path, e.message);
    }
}

static void red_flag_rubric(char *json, size_t cap, const char *when)
{
    snprintf(
        json, cap,
        "{\"id\":\"x\",\"version\":\"1\",\"sections\":[{\"id\":\"s\"}],\"items\":[{\"id\":"
        "\"c\",\"type\":\"choice\",\"section\":\"s\",\"options\":[{\"id\":\"a\",\"correct\":"
        "true},{\"id\":\"b\"}]}],\"red_flags\":[{\"id\":\"f\",\"when\":\"%s\",\"reason\":\"r\","
        "\"effect\":\"review\"}]}",
        when);
}

static void test_red_flag_nesting_deeper_than_32_is_limit_exceeded(void **state)
{
    char when[512], json[1024];
    for (int depth = 32; depth <= 40; depth += 8) {
        size_t k = 0;
        for (int i = 0; i < depth; i++)
            when[k++] = '(';
        k += (size_t)snprintf(when + k, sizeof when - k, "total() < 10");
        for (int i = 0; i < depth; i++)
            when[k++] = ')';
        when[k] = '\0';
        red_flag_rubric(json, sizeof json, when);
        if (depth == 32) {
            grading_rubric_t *r = load_ok(json);
            grading_rubric_destroy(&r);
            continue;
        }
        grading_error_t e;
        assert_int_equal(load_err(json, strlen(json), &e), GRADING_ERR_LIMIT);
        assert_string_equal(e.path, "red_flags[0].when");
        assert_string_equal(e.message, "parentheses nested 40 deep; the limit is 32");
    }
    /* "not" chains nest in the parser too: past 32 they stay an invalid_rubric */
    size_t k = 0;
    for (int i = 0; i < 40; i++)
        k += (size_t)snprintf(when + k, sizeof when - k, "not ");
    snprintf(when + k, sizeof when - k, "total() < 10");
    red_flag_rubric(json, sizeof json, when);
    grading_error_t e;
    assert_int_equal(load_err(json, strlen(json), &e), GRADING_ERR_INVALID_RUBRIC);
    assert_non_null(strstr(e.message, "nested too deeply"));
}

static void test_deeply_nested_rubric_json_and_msgpack_are_refused(void **state)
{
    /* JSON: jansson stops at 2048 levels */
    size_t n = 5000;
    char *s = malloc(2 * n + 1);
    memset(s, '[', n);
    memset(s + n, ']', n);
    s[2 * n] = '\0';
    grading_error_t e;
    assert_int_equal(load_err(s, 2 * n, &e), GRADING_ERR_JSON);
    assert_string_equal(grading_err_code(e.code), "invalid_json");
    free(s);
    /* msgpack: the converter stops past 64 levels (msgpack-c itself at 32) */
    uint8_t mp[100];
    memset(mp, 0x91, 99);
    mp[99] = 0xc0;
    grading_rubric_t *r = NULL;
    assert_int_equal(grading_rubric_load_msgpack(mp, sizeof mp, &r, &e),
                     GRADING_ERR_INVALID_RUBRIC);
    assert_null(r);
}

static void test_msgpack_rubric_declaring_more_than_it_holds_is_refused(void **state)
{
    /* {"items": array32 of 4294967295}: msgpack-c would ask for 96 GiB */
    static const uint8_t bomb[] = {0x81, 0xa5, 'i',  't',  'e',  'm',
                                   's',  0xdd, 0xff, 0xff, 0xff, 0xff};
    assert_false(grading_msgpack_well_formed(bomb, sizeof bomb));
    grading_rubric_t *r = NULL;
    grading_error_t e;
    assert_int_equal(grading_rubric_load_msgpack(bomb, sizeof bomb, &r, &e),
                     GRADING_ERR_INVALID_RUBRIC);
    assert_null(r);
    assert_string_equal(grading_err_code(e.code), "invalid_rubric");
}

/* An empty map key: msgpack-c hands it over with a NULL pointer, which the
 * converter must not pass to memchr or memcpy (fuzz_rubric_msgpack found it
 * under UBSan). It is refused like any key the rubric does not know. */
static void test_msgpack_rubric_with_an_empty_key_is_refused_cleanly(void **state)
{
    (void)state;
    static const uint8_t empty_key[] = {0x81, 0xa0, 0x01}; /* {"": 1} */
    grading_rubric_t *r = NULL;
    grading_error_t e;
    grading_err_t rc = grading_rubric_load_msgpack(empty_key, sizeof empty_key, &r, &e);
    assert_int_equal(rc, GRADING_ERR_INVALID_RUBRIC);
    assert_null(r);
    assert_true(e.message[0] != '\0');
}

static void test_text_of_1_mib_plus_1_is_limit_exceeded(void **state)
{
    grading_rubric_t *r = load_ok(LIMITS_RUBRIC);
    size_t n = (1u << 20) + 1;
    char *text = repeat('x', n);
    grading_result_t res;
    grading_error_t e;
    const char *items[] = {"t", "q", "d"};
    for (size_t i = 0; i < 3; i++) {
        text_arg_t arg = {text, n};
        assert_int_equal(grade_one(r, items[i], pack_text, &arg, &res, &e), GRADING_ERR_LIMIT);
        assert_string_equal(grading_err_code(e.code), "limit_exceeded");
        char path[32];
        snprintf(path, sizeof path, "responses.%s", items[i]);
        assert_string_equal(e.path, path);
        assert_null(res.data);
    }
    /* exactly 1 MiB (words, so the tokenizer works for it) is graded */
    for (size_t i = 0; i + 6 <= n - 1; i += 6)
        memcpy(text + i, "sorry ", 6);
    text_arg_t arg = {text, n - 1};
    double t0 = now_s();
    assert_int_equal(grade_one(r, "t", pack_text, &arg, &res, &e), GRADING_OK);
    print_message("      1 MiB text answer graded in %.2f s\n", now_s() - t0);
    grading_result_free(&res);
    free(text);
    grading_rubric_destroy(&r);
}

static void test_lists_longer_than_their_limit_are_limit_exceeded(void **state)
{
    grading_rubric_t *r = load_ok(LIMITS_RUBRIC);
    grading_result_t res;
    grading_error_t e;
    size_t n = 1001;
    assert_int_equal(grade_one(r, "c", pack_n_strings, &n, &res, &e), GRADING_ERR_LIMIT);
    assert_string_equal(e.path, "responses.c");
    assert_int_equal(grade_one(r, "o", pack_n_strings, &n, &res, &e), GRADING_ERR_LIMIT);
    assert_string_equal(e.path, "responses.o");
    size_t ratings = 65;
    assert_int_equal(grade_one(r, "r", pack_n_ints, &ratings, &res, &e), GRADING_ERR_LIMIT);
    assert_string_equal(e.path, "responses.r");
    ratings = 64;
    assert_int_equal(grade_one(r, "r", pack_n_ints, &ratings, &res, &e), GRADING_OK);
    grading_result_free(&res);
    grading_rubric_destroy(&r);
}

static void test_responses_beyond_the_rubric_items_are_invalid_response(void **state)
{
    /* Below the 1000-response limit, every key must be a distinct item of
     * the rubric: one more response than items is an unknown or a repeated
     * item. */
    grading_rubric_t *r = load_ok(LIMITS_RUBRIC);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 7);
    const char *ids[] = {"c", "q", "t", "d", "o", "r", "t"};
    for (int i = 0; i < 7; i++) {
        pack_cstr(&pk, ids[i]);
        msgpack_pack_nil(&pk);
    }
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&up, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
    grading_result_t res;
    grading_error_t e;
    assert_int_equal(grading_grade(r, &up.data, &res, &e), GRADING_ERR_INVALID_RESPONSE);
    assert_string_equal(grading_err_code(e.code), "invalid_response");
    assert_string_equal(e.path, "responses.t");
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
    text_arg_t arg = {"x", 1};
    assert_int_equal(grade_one(r, "nope", pack_text, &arg, &res, &e), GRADING_ERR_INVALID_RESPONSE);
    assert_string_equal(e.path, "responses.nope");
    grading_rubric_destroy(&r);
}

static void test_invalid_utf8_text_is_graded_deterministically(void **state)
{
    size_t len;
    char *json = read_source_file("rubrics/csm-smb/csm-smb.json", &len);
    grading_rubric_t *r = NULL;
    grading_error_t e;
    assert_int_equal(grading_rubric_load_json(json, len, &r, &e), GRADING_OK);
    free(json);
    static const char bad[] = "I'm sorry \xff\xfe about \xc0\xaf the \xed\xa0\x80 delay \xe2\x82";
    const char *items[] = {"angry_reply", "growth_fix", "renewal_dates", "email_wrong_name"};
    for (size_t i = 0; i < 4; i++) {
        text_arg_t arg = {bad, sizeof bad - 1};
        grading_result_t a, b;
        assert_int_equal(grade_one(r, items[i], pack_text, &arg, &a, &e), GRADING_OK);
        assert_int_equal(grade_one(r, items[i], pack_text, &arg, &b, &e), GRADING_OK);
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.data, b.data, a.len);
        assert_string_equal(a.digest, b.digest);
        grading_result_free(&a);
        grading_result_free(&b);
    }
    grading_rubric_destroy(&r);
}

/* result["total"]["points_milli"] */
static int64_t result_total_points_milli(const grading_result_t *res)
{
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&up, (const char *)res->data, res->len, &off),
                     MSGPACK_UNPACK_SUCCESS);
    int64_t v = -1;
    const msgpack_object_map *m = &up.data.via.map;
    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object *k = &m->ptr[i].key;
        if (k->via.str.size != 5 || memcmp(k->via.str.ptr, "total", 5) != 0)
            continue;
        const msgpack_object_map *t = &m->ptr[i].val.via.map;
        for (uint32_t j = 0; j < t->size; j++)
            if (t->ptr[j].key.via.str.size == 12 &&
                memcmp(t->ptr[j].key.via.str.ptr, "points_milli", 12) == 0)
                v = t->ptr[j].val.via.i64;
    }
    msgpack_unpacked_destroy(&up);
    return v;
}

/* A text item whose patterns backtrack exponentially on the answer. */
static const char *REGEX_RUBRIC =
    "{\"id\":\"regex\",\"version\":\"1\",\"sections\":[{\"id\":\"s\"}],\"items\":[{\"id\":\"t\","
    "\"type\":\"text\",\"section\":\"s\",\"elements\":["
    "{\"id\":\"nested\",\"patterns\":[\"^(a+)+$\"]},"
    "{\"id\":\"alt\",\"patterns\":[\"^(a|aa)+$\"]},"
    "{\"id\":\"deep\",\"patterns\":[\"^(?:(a)|b)*c$\"]}]}]}";

static void test_catastrophic_pattern_ends_abandoned_within_the_match_limit(void **state)
{
    grading_rubric_t *r = load_ok(REGEX_RUBRIC);
    /* 40 a's and a b: ^(a+)+$ alone would need ~2^40 steps */
    char text[64];
    memset(text, 'a', 40);
    text[40] = 'b';
    text_arg_t arg = {text, 41};
    grading_result_t res;
    grading_error_t e;
    double t0 = now_s();
    assert_int_equal(grade_one(r, "t", pack_text, &arg, &res, &e), GRADING_OK);
    double took = now_s() - t0;
    print_message("      catastrophic patterns abandoned in %.3f s\n", took);
    assert_true(took < 10.0);
    /* scored, nothing matched, and the trace says which pattern gave up */
    char *txt = grading_explain(r, res.data, res.len);
    assert_non_null(txt);
    const char *hit = memmem(res.data, res.len, "abandoned", 9);
    assert_non_null(hit);
    assert_non_null(memmem(res.data, res.len, "match limit", 11));
    if (result_total_points_milli(&res) != 0)
        fail_msg("earned points:\n%s", txt);
    free(txt);
    grading_result_free(&res);

    /* a long answer hits the depth limit: a group repeated per character nests that deep */
    size_t n = 200000;
    char *deep = repeat('a', n);
    deep[n - 1] = 'b';
    text_arg_t darg = {deep, n};
    t0 = now_s();
    assert_int_equal(grade_one(r, "t", pack_text, &darg, &res, &e), GRADING_OK);
    print_message("      200 kB answer against the same patterns in %.3f s\n", now_s() - t0);
    assert_non_null(memmem(res.data, res.len, "depth limit", 11));
    assert_int_equal(result_total_points_milli(&res), 0);
    grading_result_free(&res);
    free(deep);
    grading_rubric_destroy(&r);
}

/* A keyword-list guard pattern (csm-smb's up to v5, which now uses the
 * keyword_list shape) on a list of 600 tiny sentences:
 * the interpreter nests one backtracking frame per sentence and gives up at
 * the depth limit (1,000), which left such a list unpenalised. Where libpcre2
 * has a JIT the match runs there and finds the list; the interpreter is only
 * asked when the JIT gives up, as the catastrophic patterns above show. */
static const char *GUARD_RUBRIC =
    "{\"id\":\"guard\",\"version\":\"1\",\"sections\":[{\"id\":\"s\"}],\"items\":[{\"id\":\"t\","
    "\"type\":\"text\",\"section\":\"s\",\"elements\":["
    "{\"id\":\"list\",\"points\":1,\"patterns\":[\"(?:[^.!?\\\\n]{1,20}[.!?][ \\\\t]*){8,}\"]}]}]}";

static void test_pattern_past_the_interpreters_depth_limit_matches_under_the_jit(void **state)
{
    (void)state;
    uint32_t jit = 0;
    pcre2_config(PCRE2_CONFIG_JIT, &jit);
    if (!jit)
        skip();
    grading_rubric_t *r = load_ok(GUARD_RUBRIC);
    const char *unit = "Ok sure. ";
    size_t n = 600, ul = strlen(unit);
    char *list = malloc(n * ul + 1);
    assert_non_null(list);
    for (size_t i = 0; i < n; i++)
        memcpy(list + i * ul, unit, ul);
    list[n * ul] = '\0';
    text_arg_t arg = {list, n * ul};
    grading_result_t res;
    grading_error_t e;
    assert_int_equal(grade_one(r, "t", pack_text, &arg, &res, &e), GRADING_OK);
    assert_null(memmem(res.data, res.len, "abandoned", 9));
    assert_int_equal(result_total_points_milli(&res), 1000);
    grading_result_free(&res);
    free(list);
    grading_rubric_destroy(&r);
}

/* Backtracking is in the work budget. (?:a|aa)*c tries every way of
 * splitting each run of a's before it finds no c, at every start position:
 * thousands of pattern items per position, far below the per-position match
 * limit, so only the budget can stop it. Every item PCRE2 tries is a callout,
 * the same ones in the JIT and in the interpreter, so both stop at the same
 * size with the same error. */
static const char *BACKTRACK_RUBRIC =
    "{\"id\":\"bt\",\"version\":\"1\",\"sections\":[{\"id\":\"s\"}],\"items\":[{\"id\":\"t\","
    "\"type\":\"text\",\"section\":\"s\",\"elements\":["
    "{\"id\":\"runs\",\"points\":1,\"patterns\":[\"(?:a|aa)*c\"]}]},"
    "{\"id\":\"u\",\"type\":\"text\",\"section\":\"s\",\"elements\":["
    "{\"id\":\"scan\",\"points\":1,\"patterns\":[\"a*+(?:b|c)\"]}]},"
    "{\"id\":\"v\",\"type\":\"text\",\"section\":\"s\",\"elements\":["
    "{\"id\":\"long\",\"points\":1,\"patterns\":[\"a{60000}\"]}]}]}";

/* units x ("a" x 20 + " "), then "c". */
static char *runs_then_c(size_t units, size_t *len)
{
    *len = units * 21 + 1;
    char *s = malloc(*len + 1);
    assert_non_null(s);
    for (size_t i = 0; i < units; i++) {
        memset(s + i * 21, 'a', 20);
        s[i * 21 + 20] = ' ';
    }
    s[*len - 1] = 'c';
    s[*len] = '\0';
    return s;
}

static const char *BUDGET_MSG = "grading needs more than 20000000 matching steps; the limit is "
                                "20000000";

static void test_pattern_backtracking_is_counted_in_the_work_budget(void **state)
{
    (void)state;
    const char *engines[] = {"jit", "interpreter"};
    for (int interp = 0; interp < 2; interp++) {
        /* SCORELINE_PCRE2_JIT=0 at load: the patterns stay in the interpreter */
        if (interp)
            assert_int_equal(setenv("SCORELINE_PCRE2_JIT", "0", 1), 0);
        grading_rubric_t *r = load_ok(BACKTRACK_RUBRIC);
        grading_rubric_t *guard = load_ok(GUARD_RUBRIC);
        unsetenv("SCORELINE_PCRE2_JIT");
        /* the interpreter really runs: the keyword-list guard gives up at its
         * depth limit on 600 tiny sentences where the JIT finds the list */
        uint32_t has_jit = 0;
        pcre2_config(PCRE2_CONFIG_JIT, &has_jit);
        if (has_jit) {
            char *list = malloc(600 * 9 + 1);
            assert_non_null(list);
            for (size_t i = 0; i < 600; i++)
                memcpy(list + i * 9, "Ok sure. ", 9);
            text_arg_t garg = {list, 600 * 9};
            grading_result_t gres;
            grading_error_t ge;
            assert_int_equal(grade_one(guard, "t", pack_text, &garg, &gres, &ge), GRADING_OK);
            assert_int_equal(memmem(gres.data, gres.len, "depth limit", 11) != NULL, interp);
            grading_result_free(&gres);
            free(list);
        }
        grading_rubric_destroy(&guard);

        /* 53 runs fit in the budget and the c is found; 54 do not */
        for (size_t units = 53; units <= 54; units++) {
            size_t n;
            char *text = runs_then_c(units, &n);
            text_arg_t arg = {text, n};
            grading_result_t res;
            grading_error_t e;
            grading_err_t rc = grade_one(r, "t", pack_text, &arg, &res, &e);
            if (units == 53) {
                if (rc != GRADING_OK)
                    fail_msg("%s, %zu runs: %s: %s: %s", engines[interp], units,
                             grading_err_code(rc), e.path, e.message);
                assert_int_equal(result_total_points_milli(&res), 1000);
                assert_null(memmem(res.data, res.len, "abandoned", 9));
                grading_result_free(&res);
            } else {
                assert_int_equal(rc, GRADING_ERR_LIMIT);
                assert_string_equal(grading_err_code(rc), "limit_exceeded");
                assert_string_equal(e.path, "responses.t");
                char want[256];
                snprintf(want, sizeof want,
                         "%s (pattern (?:a|aa)*c was matching when they ran out)", BUDGET_MSG);
                assert_string_equal(e.message, want);
                assert_null(res.data);
            }
            free(text);
        }

        /* 210 kB of runs (67 s in the interpreter before backtracking was
         * counted, all of it charged 210,201 steps): stopped at the budget */
        size_t n;
        char *big = runs_then_c(10000, &n);
        text_arg_t barg = {big, n};
        grading_result_t res;
        grading_error_t e;
        double t0 = now_s();
        assert_int_equal(grade_one(r, "t", pack_text, &barg, &res, &e), GRADING_ERR_LIMIT);
        double took = now_s() - t0;
        print_message("      210 kB of runs against (?:a|aa)*c (%s): limit_exceeded in %.2f s\n",
                      engines[interp], took);
        assert_true(took < 10.0);
        assert_string_equal(e.path, "responses.t");
        assert_non_null(strstr(e.message, "(?:a|aa)*c"));
        free(big);

        /* A scan that starts again at every position: a*+ takes the rest of
         * the text, (?:b|c) fails there. Few items, but the match position
         * moves over the whole rest each time, and that is charged too. */
        char *as = repeat('a', 100000);
        text_arg_t sarg = {as, 100000};
        t0 = now_s();
        assert_int_equal(grade_one(r, "u", pack_text, &sarg, &res, &e), GRADING_ERR_LIMIT);
        print_message("      100 kB of a against a*+(?:b|c) (%s): limit_exceeded in %.2f s\n",
                      engines[interp], now_s() - t0);
        assert_string_equal(e.path, "responses.u");
        assert_non_null(strstr(e.message, "a*+(?:b|c)"));
        /* a short one is graded: no b or c, no points */
        sarg.n = 2000;
        assert_int_equal(grade_one(r, "u", pack_text, &sarg, &res, &e), GRADING_OK);
        assert_int_equal(result_total_points_milli(&res), 0);
        grading_result_free(&res);
        free(as);

        /* One item that scans up to 60,000 bytes before it fails, at every
         * start position of runs of 59,999 a's: charged its minimum each time
         * (12 s of matching, graded, before it was). */
        size_t rl = 17 * 60000;
        char *runs = repeat('a', rl);
        for (size_t i = 59999; i < rl; i += 60000)
            runs[i] = 'b';
        text_arg_t rarg = {runs, rl};
        t0 = now_s();
        assert_int_equal(grade_one(r, "v", pack_text, &rarg, &res, &e), GRADING_ERR_LIMIT);
        print_message("      1 MB of 59,999-byte runs against a{60000} (%s): limit_exceeded in "
                      "%.2f s\n",
                      engines[interp], now_s() - t0);
        assert_string_equal(e.path, "responses.v");
        assert_non_null(strstr(e.message, "(pattern a{60000} was matching"));
        /* one run of 60,000 matches */
        runs[59999] = 'a';
        rarg.n = 60001;
        assert_int_equal(grade_one(r, "v", pack_text, &rarg, &res, &e), GRADING_OK);
        assert_int_equal(result_total_points_milli(&res), 1000);
        grading_result_free(&res);
        free(runs);
        grading_rubric_destroy(&r);
    }
}

/* ------------------------------------------------------------ rubric complexity */

#define RUBRIC_HEAD "{\"id\":\"x\",\"version\":\"1\",\"sections\":[{\"id\":\"s\"}],"
#define CHOICE_ITEM                                                                        \
    "{\"id\":\"c\",\"type\":\"choice\",\"section\":\"s\",\"options\":[{\"id\":\"a\","     \
    "\"correct\":true},{\"id\":\"b\"}]}"

typedef void (*rubric_writer)(FILE *f, size_t n);

/* The JSON text writer w makes for n (malloc'd). */
static char *write_rubric(rubric_writer w, size_t n)
{
    char *s = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&s, &len);
    assert_non_null(f);
    w(f, n);
    fclose(f);
    return s;
}

/* n comma-separated copies of fmt, each given the index (twice: fmt may use
 * one or two %zu). */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
static void list_of(FILE *f, size_t n, const char *fmt)
{
    for (size_t i = 0; i < n; i++) {
        fputs(i ? "," : "", f);
        fprintf(f, fmt, i, i);
    }
}
#pragma GCC diagnostic pop

static void w_sections(FILE *f, size_t n)
{
    fputs("{\"id\":\"x\",\"version\":\"1\",\"sections\":[", f);
    list_of(f, n, "{\"id\":\"s%zu\"}");
    fputs("],\"items\":[", f);
    list_of(f, n,
            "{\"id\":\"i%zu\",\"type\":\"choice\",\"section\":\"s%zu\",\"options\":"
            "[{\"id\":\"a\",\"correct\":true},{\"id\":\"b\"}]}");
    fputs("]}", f);
}

static void w_entities(FILE *f, size_t n)
{
    fputs(RUBRIC_HEAD "\"entities\":[", f);
    list_of(f, n, "{\"id\":\"e%zu\",\"name\":\"Name %zu\"}");
    fputs("],\"items\":[" CHOICE_ITEM "]}", f);
}

static void w_aliases(FILE *f, size_t n)
{
    fputs(RUBRIC_HEAD "\"entities\":[{\"id\":\"e\",\"name\":\"Acme\",\"aliases\":[", f);
    list_of(f, n, "\"Alias %zu x%zu\"");
    fputs("]}],\"items\":[" CHOICE_ITEM "]}", f);
}

static void w_synonym_sets(FILE *f, size_t n)
{
    fputs(RUBRIC_HEAD "\"synonyms\":[", f);
    list_of(f, n, "[\"qa%zux\",\"qb%zux\"]");
    fputs("],\"items\":[" CHOICE_ITEM "]}", f);
}

static void w_synonym_words(FILE *f, size_t n)
{
    fputs(RUBRIC_HEAD "\"synonyms\":[[", f);
    list_of(f, n, "\"qa%zux%zu\"");
    fputs("]],\"items\":[" CHOICE_ITEM "]}", f);
}

static void w_bands(FILE *f, size_t n)
{
    fputs(RUBRIC_HEAD "\"items\":[" CHOICE_ITEM "],\"bands\":[", f);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s{\"id\":\"b%zu\",\"min_percent\":\"%zu\",\"decision\":\"review\"}",
                i ? "," : "", i, n - 1 - i);
    fputs("]}", f);
}

static void w_red_flags(FILE *f, size_t n)
{
    fputs(RUBRIC_HEAD "\"items\":[" CHOICE_ITEM "],\"red_flags\":[", f);
    list_of(f, n, "{\"id\":\"f%zu\",\"when\":\"total() < %zu\",\"reason\":\"r\"}");
    fputs("]}", f);
}

#define TEXT_ITEM_HEAD "\"items\":[{\"id\":\"t\",\"type\":\"text\",\"section\":\"s\","

static void w_elements(FILE *f, size_t n)
{
    fputs(RUBRIC_HEAD TEXT_ITEM_HEAD "\"elements\":[", f);
    list_of(f, n, "{\"id\":\"e%zu\",\"phrases\":[\"sorry %zu\"]}");
    fputs("]}]}", f);
}

static void w_rules(FILE *f, size_t n)
{
    fputs(RUBRIC_HEAD TEXT_ITEM_HEAD "\"elements\":[{\"id\":\"e\",\"phrases\":[\"sorry\"]}],"
          "\"rules\":[", f);
    list_of(f, n, "{\"id\":\"r%zu\",\"kind\":\"words\",\"min\":%zu}");
    fputs("]}]}", f);
}

static void w_phrases(FILE *f, size_t n)
{
    fputs(RUBRIC_HEAD TEXT_ITEM_HEAD "\"elements\":[{\"id\":\"e\",\"phrases\":[", f);
    list_of(f, n, "\"word%zu x%zu\"");
    fputs("]}]}]}", f);
}

static void w_patterns(FILE *f, size_t n)
{
    fputs(RUBRIC_HEAD TEXT_ITEM_HEAD "\"elements\":[{\"id\":\"e\",\"patterns\":[", f);
    list_of(f, n, "\"p%zu\\\\b%zu\"");
    fputs("]}]}]}", f);
}

static void w_options(FILE *f, size_t n)
{
    fputs(RUBRIC_HEAD "\"items\":[{\"id\":\"c\",\"type\":\"choice\",\"section\":\"s\","
          "\"options\":[{\"id\":\"ok\",\"correct\":true}", f);
    for (size_t i = 1; i < n; i++)
        fprintf(f, ",{\"id\":\"o%zu\"}", i);
    fputs("]}]}", f);
}

static void w_steps(FILE *f, size_t n)
{
    fputs(RUBRIC_HEAD "\"items\":[{\"id\":\"o\",\"type\":\"ordering\",\"section\":\"s\","
          "\"steps\":[", f);
    list_of(f, n, "{\"id\":\"s%zu\",\"phrases\":[\"step %zu\"]}");
    fputs("]}]}", f);
}

static void w_step_phrases(FILE *f, size_t n)
{
    fputs(RUBRIC_HEAD "\"items\":[{\"id\":\"o\",\"type\":\"ordering\",\"section\":\"s\","
          "\"steps\":[{\"id\":\"a\",\"phrases\":[", f);
    list_of(f, n, "\"word%zu x%zu\"");
    fputs("]},{\"id\":\"b\"}]}]}", f);
}

static void w_constraints(FILE *f, size_t n)
{
    fputs(RUBRIC_HEAD "\"items\":[{\"id\":\"o\",\"type\":\"ordering\",\"section\":\"s\","
          "\"scheme\":\"precedence\",\"steps\":[{\"id\":\"a\"},{\"id\":\"b\"}],"
          "\"constraints\":[", f);
    list_of(f, n, "{\"id\":\"k%zu\",\"before\":\"a\",\"after\":\"b\",\"weight\":%zu}");
    fputs("]}]}", f);
}

#define PICK_TAIL                                                                          \
    ",\"answers\":[\"r0\"],\"elements\":[{\"id\":\"e\",\"phrases\":[\"churn\"]}]}]}"

static void w_rows(FILE *f, size_t n)
{
    fputs(RUBRIC_HEAD "\"items\":[{\"id\":\"p\",\"type\":\"pick\",\"section\":\"s\","
          "\"columns\":[\"c\"],\"rows\":[", f);
    list_of(f, n, "{\"id\":\"r%zu\",\"cells\":{\"c\":\"%zu\"}}");
    fputs("]" PICK_TAIL, f);
}

static void w_columns(FILE *f, size_t n)
{
    fputs(RUBRIC_HEAD "\"items\":[{\"id\":\"p\",\"type\":\"pick\",\"section\":\"s\","
          "\"columns\":[", f);
    list_of(f, n, "\"c%zu_%zu\"");
    fputs("],\"rows\":[", f);
    for (int r = 0; r < 2; r++) {
        fprintf(f, "%s{\"id\":\"r%d\",\"cells\":{", r ? "," : "", r);
        list_of(f, n, "\"c%zu_%zu\":\"1\"");
        fputs("}}", f);
    }
    fputs("]" PICK_TAIL, f);
}

static void w_row_names(FILE *f, size_t n)
{
    fputs(RUBRIC_HEAD "\"items\":[{\"id\":\"p\",\"type\":\"pick\",\"section\":\"s\","
          "\"columns\":[\"c\"],\"rows\":[{\"id\":\"r0\",\"cells\":{\"c\":\"1\"},\"names\":[", f);
    list_of(f, n, "\"Row %zu n%zu\"");
    fputs("]},{\"id\":\"r1\",\"cells\":{\"c\":\"2\"}}]" PICK_TAIL, f);
}

static void w_anchors(FILE *f, size_t n)
{
    fputs(RUBRIC_HEAD "\"items\":[{\"id\":\"r\",\"type\":\"rating\",\"section\":\"s\","
          "\"scale\":{\"min\":1,\"max\":5},\"anchors\":[", f);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s{\"value\":%zu,\"label\":\"l\"}", i ? "," : "", 1 + i % 5);
    fputs("]}]}", f);
}

static void w_expect(FILE *f, size_t n)
{
    fputs(RUBRIC_HEAD "\"entities\":[", f);
    list_of(f, n, "{\"id\":\"e%zu\",\"name\":\"Name %zu\"}");
    fputs("],\"items\":[{\"id\":\"n\",\"type\":\"entity\",\"section\":\"s\",\"expect\":[", f);
    list_of(f, n, "\"e%zu\"");
    fputs("]}]}", f);
}

static void w_quantity_answers(FILE *f, size_t n)
{
    fputs(RUBRIC_HEAD "\"items\":[{\"id\":\"q\",\"type\":\"quantity\",\"section\":\"s\","
          "\"answers\":[", f);
    list_of(f, n, "{\"value\":\"%zu.%zu\"}");
    fputs("]}]}", f);
}

static void w_date_answers(FILE *f, size_t n)
{
    fputs(RUBRIC_HEAD "\"items\":[{\"id\":\"d\",\"type\":\"date\",\"section\":\"s\","
          "\"answers\":[", f);
    for (size_t i = 0; i < n; i++)
        fprintf(f, "%s\"2025-%02zu-%02zu\"", i ? "," : "", 1 + i / 28, 1 + i % 28);
    fputs("]}]}", f);
}

static void test_rubric_complexity_limits_are_limit_exceeded(void **state)
{
    static const struct {
        rubric_writer w;
        size_t limit;
        const char *path, *what;
    } cases[] = {
        {w_sections, 100, "sections", "sections"},
        {w_entities, 1000, "entities", "entities"},
        {w_aliases, 100, "entities[0].aliases", "aliases"},
        {w_synonym_sets, 1000, "synonyms", "synonym sets"},
        {w_synonym_words, 100, "synonyms[0]", "words"},
        {w_bands, 100, "bands", "bands"},
        {w_red_flags, 200, "red_flags", "red flags"},
        {w_elements, 200, "items[0].elements", "elements"},
        {w_rules, 50, "items[0].rules", "rules"},
        {w_phrases, 1000, "items[0].elements[0].phrases", "phrases"},
        {w_patterns, 50, "items[0].elements[0].patterns", "patterns"},
        {w_options, 100, "items[0].options", "options"},
        {w_steps, 32, "items[0].steps", "steps"},
        {w_step_phrases, 1000, "items[0].steps[0].phrases", "phrases"},
        {w_constraints, 64, "items[0].constraints", "constraints"},
        {w_rows, 200, "items[0].rows", "rows"},
        {w_columns, 50, "items[0].columns", "columns"},
        {w_row_names, 20, "items[0].rows[0].names", "names"},
        {w_anchors, 100, "items[0].anchors", "anchors"},
        {w_expect, 100, "items[0].expect", "expected entities"},
        {w_quantity_answers, 50, "items[0].answers", "answers"},
        {w_date_answers, 32, "items[0].answers", "answers"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        /* at the limit: loads */
        char *s = write_rubric(cases[i].w, cases[i].limit);
        grading_rubric_t *r = NULL;
        grading_error_t e;
        grading_err_t rc = grading_rubric_load_json(s, strlen(s), &r, &e);
        if (rc != GRADING_OK)
            fail_msg("%s at its limit %zu: %s: %s: %s", cases[i].path, cases[i].limit,
                     grading_err_code(rc), e.path, e.message);
        grading_rubric_destroy(&r);
        free(s);
        /* one over: limit_exceeded at the list, with the count and the limit */
        s = write_rubric(cases[i].w, cases[i].limit + 1);
        rc = grading_rubric_load_json(s, strlen(s), &r, &e);
        char want[160];
        snprintf(want, sizeof want, "%zu %s; the limit is %zu", cases[i].limit + 1,
                 cases[i].what, cases[i].limit);
        if (rc != GRADING_ERR_LIMIT || strcmp(e.path, cases[i].path) != 0 ||
            strcmp(e.message, want) != 0)
            fail_msg("%s over its limit: %s: %s: %s (expected limit_exceeded: %s: %s)",
                     cases[i].path, grading_err_code(rc), e.path, e.message, cases[i].path, want);
        assert_null(r);
        /* lint reports the same */
        grading_error_t errs[4];
        size_t n = 0;
        assert_int_equal(grading_rubric_lint_json(s, strlen(s), errs, 4, &n), GRADING_ERR_LIMIT);
        assert_true(n >= 1);
        assert_string_equal(errs[0].path, cases[i].path);
        free(s);
    }
}

/* The msgpack loader applies the same pass (workers load rubrics from Redis
 * and from inline msgpack). */
static void test_msgpack_rubric_over_a_complexity_limit_is_limit_exceeded(void **state)
{
    for (size_t n = 100; n <= 101; n++) {
        char *s = write_rubric(w_options, n);
        json_error_t je;
        json_t *j = json_loads(s, 0, &je);
        assert_non_null(j);
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        assert_int_equal(jsonmp_pack(&pk, j), 0);
        grading_rubric_t *r = NULL;
        grading_error_t e;
        grading_err_t rc = grading_rubric_load_msgpack(sb.data, sb.size, &r, &e);
        if (n == 100) {
            assert_int_equal(rc, GRADING_OK);
            grading_rubric_destroy(&r);
        } else {
            assert_int_equal(rc, GRADING_ERR_LIMIT);
            assert_string_equal(e.path, "items[0].options");
            assert_string_equal(e.message, "101 options; the limit is 100");
        }
        msgpack_sbuffer_destroy(&sb);
        json_decref(j);
        free(s);
    }
}

/* One text item: `elements` elements of `phrases` phrases of `words` words,
 * one phrase of which has `extra` more words, and `patterns` patterns. */
static char *text_rubric(size_t elements, size_t phrases, size_t words, size_t extra,
                         const char *pattern, size_t patterns)
{
    char *s = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&s, &len);
    fputs(RUBRIC_HEAD TEXT_ITEM_HEAD "\"elements\":[", f);
    for (size_t e = 0; e < elements; e++) {
        fprintf(f, "%s{\"id\":\"e%zu\",\"phrases\":[", e ? "," : "", e);
        for (size_t p = 0; p < phrases; p++) {
            fputs(p ? ",\"" : "\"", f);
            size_t nw = words + (e == 0 && p == 0 ? extra : 0);
            for (size_t w = 0; w < nw; w++)
                fprintf(f, "%sw%zu", w ? " " : "", (p * 7 + w) % 50);
            fputs("\"", f);
        }
        fputs("],\"patterns\":[", f);
        for (size_t p = 0; p < patterns; p++)
            fprintf(f, "%s\"%s\"", p ? "," : "", pattern);
        fputs("]}", f);
    }
    fputs("]}]}", f);
    fclose(f);
    return s;
}

static void expect_limit(const char *json, const char *path, const char *message)
{
    grading_rubric_t *r = NULL;
    grading_error_t e;
    grading_err_t rc = grading_rubric_load_json(json, strlen(json), &r, &e);
    if (rc != GRADING_ERR_LIMIT || strcmp(e.path, path) != 0 || strcmp(e.message, message) != 0)
        fail_msg("%s: %s: %s (expected limit_exceeded: %s: %s)", grading_err_code(rc), e.path,
                 e.message, path, message);
    assert_null(r);
}

static void test_rubric_totals_and_match_work_are_limit_exceeded(void **state)
{
    /* patterns in the rubric: 10 x 50 load, 11 x 50 do not */
    char *s = text_rubric(10, 1, 1, 0, "x\\\\d", 50);
    grading_rubric_t *r = load_ok(s);
    grading_rubric_destroy(&r);
    free(s);
    s = text_rubric(11, 1, 1, 0, "x\\\\d", 50);
    expect_limit(s, "items", "550 patterns in the rubric; the limit is 500");
    free(s);
    /* match work: 20 elements x 1000 phrases x 10 words = 200,000, the limit */
    s = text_rubric(20, 1000, 10, 0, "", 0);
    r = load_ok(s);
    grading_rubric_destroy(&r);
    free(s);
    s = text_rubric(20, 1000, 10, 1, "", 0);
    expect_limit(s, "items",
                 "match work of 200001 (phrase and name words, 100 per pattern or shape); the "
                 "limit is 200000");
    free(s);
    /* a keyword-list shape counts as a pattern: 200,000 + 100 */
    s = text_rubric(20, 1000, 10, 0, "", 0);
    size_t n = strlen(s);
    static const char shape[] =
        ",{\"id\":\"k\",\"points\":-1,\"shape\":{\"kind\":\"keyword_list\"}}]}]}";
    char *t = malloc(n - 4 + sizeof shape);
    memcpy(t, s, n - 4); /* without the closing "]}]}" */
    memcpy(t + n - 4, shape, sizeof shape);
    expect_limit(t, "items",
                 "match work of 200100 (phrase and name words, 100 per pattern or shape); the "
                 "limit is 200000");
    free(t);
    free(s);
    /* phrases in the rubric: 20,000 load (above), 20,001 do not */
    s = text_rubric(21, 1000, 1, 0, "", 0);
    expect_limit(s, "items", "21000 phrases in the rubric; the limit is 20000");
    free(s);
}

/* A text element whose `field` holds one string of `limit` bytes loads, and
 * one of limit + 1 is limit_exceeded at path with message. */
static void element_string_at_and_over(const char *field, size_t limit, const char *path,
                                       const char *message)
{
    char json[8192], str[4200];
    assert_true(limit + 1 < sizeof str);
    for (size_t n = limit; n <= limit + 1; n++) {
        memset(str, 'a', n);
        str[n] = '\0';
        snprintf(json, sizeof json,
                 RUBRIC_HEAD TEXT_ITEM_HEAD "\"elements\":[{\"id\":\"e\",\"%s\":[\"%s\"]}]}]}",
                 field, str);
        if (n == limit) {
            grading_rubric_t *r = load_ok(json);
            grading_rubric_destroy(&r);
        } else {
            expect_limit(json, path, message);
        }
    }
}

static void test_string_lengths_and_pattern_nesting_are_limit_exceeded(void **state)
{
    char json[8192], str[4200];
    /* a phrase of 512 bytes (one word) loads; 513 do not */
    element_string_at_and_over("phrases", 512, "items[0].elements[0].phrases[0]",
                               "a phrase of 513 bytes; the limit is 512");
    /* a pattern of 2048 bytes loads; 2049 do not */
    element_string_at_and_over("patterns", 2048, "items[0].elements[0].patterns[0]",
                               "a pattern of 2049 bytes; the limit is 2048");
    /* parentheses nested 32 deep load; 33 do not (PCRE2's own default is 250) */
    for (size_t d = 32; d <= 33; d++) {
        size_t k = 0;
        for (size_t i = 0; i < d; i++)
            str[k++] = '(';
        str[k++] = 'a';
        for (size_t i = 0; i < d; i++)
            str[k++] = ')';
        str[k] = '\0';
        snprintf(json, sizeof json,
                 RUBRIC_HEAD TEXT_ITEM_HEAD "\"elements\":[{\"id\":\"e\",\"patterns\":[\"%s\"]}]}]}",
                 str);
        if (d == 32) {
            grading_rubric_t *r = load_ok(json);
            grading_rubric_destroy(&r);
        } else {
            expect_limit(json, "items[0].elements[0].patterns[0]",
                         "parentheses nested 33 deep; the limit is 32");
        }
    }
    /* escaped parentheses, \Q..\E and classes are not nesting: 40 of each */
    size_t k = 0;
    for (int i = 0; i < 40; i++)
        k += (size_t)snprintf(str + k, sizeof str - k, "\\\\(");
    k += (size_t)snprintf(str + k, sizeof str - k, "\\\\Q");
    for (int i = 0; i < 40; i++)
        str[k++] = '(';
    k += (size_t)snprintf(str + k, sizeof str - k, "\\\\E[");
    for (int i = 0; i < 40; i++)
        str[k++] = '(';
    snprintf(str + k, sizeof str - k, "]x");
    snprintf(json, sizeof json,
             RUBRIC_HEAD TEXT_ITEM_HEAD "\"elements\":[{\"id\":\"e\",\"patterns\":[\"%s\"]}]}]}",
             str);
    grading_rubric_t *r = load_ok(json);
    grading_rubric_destroy(&r);
    /* a name of 257 bytes, an option text of 1025, an expression of 4097 */
    memset(str, 'a', 257);
    str[257] = '\0';
    snprintf(json, sizeof json,
             RUBRIC_HEAD "\"entities\":[{\"id\":\"e\",\"name\":\"%s\"}],\"items\":[" CHOICE_ITEM
                         "]}",
             str);
    expect_limit(json, "entities[0].name", "a name of 257 bytes; the limit is 256");
    memset(str, 'a', 1025);
    str[1025] = '\0';
    snprintf(json, sizeof json,
             RUBRIC_HEAD "\"items\":[{\"id\":\"c\",\"type\":\"choice\",\"section\":\"s\","
                         "\"options\":[{\"id\":\"a\",\"correct\":true,\"text\":\"%s\"},"
                         "{\"id\":\"b\"}]}]}",
             str);
    expect_limit(json, "items[0].options[0].text", "an option text of 1025 bytes; the limit is 1024");
    memset(str, ' ', 4097);
    memcpy(str, "total() < 10", 12);
    str[4097] = '\0';
    red_flag_rubric(json, sizeof json, str);
    expect_limit(json, "red_flags[0].when", "an expression of 4097 bytes; the limit is 4096");
}

/* responses with n entries: "i0" .. for the first `items` of them, nil values. */
static grading_err_t grade_n_responses(const grading_rubric_t *r, size_t n, grading_error_t *e)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, n);
    for (size_t i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "i%zu", i);
        pack_cstr(&pk, id);
        msgpack_pack_nil(&pk);
    }
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&up, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
    grading_result_t res;
    grading_err_t rc = grading_grade(r, &up.data, &res, e);
    if (rc == GRADING_OK)
        grading_result_free(&res);
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
    return rc;
}

static void test_more_than_1000_responses_is_limit_exceeded(void **state)
{
    char *s = rubric_with_items(1000);
    grading_rubric_t *r = load_ok(s);
    free(s);
    grading_error_t e;
    assert_int_equal(grade_n_responses(r, 1000, &e), GRADING_OK);
    assert_int_equal(grade_n_responses(r, 1001, &e), GRADING_ERR_LIMIT);
    assert_string_equal(e.path, "responses");
    assert_string_equal(e.message, "1001 responses; the limit is 1000");
    grading_rubric_destroy(&r);
}

static void test_grading_past_its_work_budget_is_limit_exceeded(void **state)
{
    /* Within every load limit: 100 phrases of 12 words over 12 letters,
     * window 20, so no phrase index (more than 64) and each word of the
     * answer starts 100 attempts of 12 x 32 steps each. */
    char *s = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&s, &len);
    fputs(RUBRIC_HEAD TEXT_ITEM_HEAD "\"elements\":[{\"id\":\"e\",\"window\":20,\"phrases\":[", f);
    for (size_t p = 0; p < 100; p++) {
        fputs(p ? ",\"" : "\"", f);
        for (size_t w = 0; w < 12; w++)
            fprintf(f, "%s%c", w ? " " : "", (char)('a' + (p + w) % 12));
        fputs("z\"", f);
    }
    fputs("]}]}]}", f);
    fclose(f);
    grading_rubric_t *r = load_ok(s);
    free(s);
    /* 520 words x 100 phrases x 384 = 19,968,000 steps: within the budget;
     * 521 words go past it. The words never complete a phrase. */
    for (size_t words = 520; words <= 521; words++) {
        size_t n = words * 2;
        char *text = malloc(n);
        for (size_t i = 0; i < n; i += 2) {
            text[i] = (char)('a' + (i / 2) % 11);
            text[i + 1] = ' ';
        }
        text_arg_t arg = {text, n};
        grading_result_t res;
        grading_error_t e;
        double t0 = now_s();
        grading_err_t rc = grade_one(r, "t", pack_text, &arg, &res, &e);
        double took = now_s() - t0;
        if (words == 520) {
            if (rc != GRADING_OK)
                fail_msg("%s: %s: %s", grading_err_code(rc), e.path, e.message);
            grading_result_free(&res);
        } else {
            assert_int_equal(rc, GRADING_ERR_LIMIT);
            assert_string_equal(e.path, "responses.t");
            assert_string_equal(e.message,
                                "grading needs more than 20000000 matching steps; the limit is "
                                "20000000");
            assert_null(res.data);
            /* deterministic: a step count, not a clock */
            grading_error_t e2;
            assert_int_equal(grade_one(r, "t", pack_text, &arg, &res, &e2), GRADING_ERR_LIMIT);
            assert_string_equal(e2.message, e.message);
        }
        print_message("      %zu words against 100 phrases: %s in %.2f s\n", words,
                      grading_err_code(rc), took);
        free(text);
    }
    grading_rubric_destroy(&r);
}

/* ------------------------------------------------------------ CLI attempts */

static attempt_err_t parse_attempt(const char *text, attempt_error_t *e)
{
    attempt_t a;
    attempt_err_t rc = attempt_parse(text, strlen(text), &a, e);
    attempt_clear(&a);
    return rc;
}

static void test_attempt_limits_are_invalid_attempt(void **state)
{
    attempt_error_t e;
    char buf[1024];
    char *id = repeat('j', 129);
    snprintf(buf, sizeof buf, "{\"job_id\":\"%s\",\"rubric\":\"r\",\"responses\":{}}", id);
    assert_int_equal(parse_attempt(buf, &e), ATTEMPT_ERR_INVALID);
    assert_string_equal(attempt_err_code(e.code), "invalid_attempt");
    assert_string_equal(e.path, "job_id");
    id[128] = '\0';
    snprintf(buf, sizeof buf, "{\"job_id\":\"%s\",\"rubric\":\"r\",\"responses\":{}}", id);
    assert_int_equal(parse_attempt(buf, &e), ATTEMPT_OK);
    free(id);
    /* tenant 129, item id 129, control character, bad hash */
    char *name = repeat('n', 129);
    snprintf(buf, sizeof buf, "{\"tenant\":\"%s\",\"rubric\":\"r\",\"responses\":{}}", name);
    assert_int_equal(parse_attempt(buf, &e), ATTEMPT_ERR_INVALID);
    assert_string_equal(e.path, "tenant");
    snprintf(buf, sizeof buf, "{\"rubric\":\"r\",\"responses\":{\"%s\":1}}", name);
    assert_int_equal(parse_attempt(buf, &e), ATTEMPT_ERR_INVALID);
    assert_non_null(strstr(e.path, "responses."));
    free(name);
    assert_int_equal(
        parse_attempt("{\"job_id\":\"a\\u0001\",\"rubric\":\"r\",\"responses\":{}}", &e),
        ATTEMPT_ERR_INVALID);
    assert_int_equal(
        parse_attempt("{\"rubric\":\"r\",\"rubric_hash\":\"ABC\",\"responses\":{}}", &e),
        ATTEMPT_ERR_INVALID);
    assert_string_equal(e.path, "rubric_hash");
    /* duplicate keys anywhere: invalid JSON for the loader */
    assert_int_equal(
        parse_attempt("{\"rubric\":\"r\",\"responses\":{\"a\":{\"x\":1,\"x\":2}}}", &e),
        ATTEMPT_ERR_JSON);
    assert_string_equal(attempt_err_code(e.code), "invalid_json");
}

static void test_attempt_nesting_is_bounded_by_the_wire_depth(void **state)
{
    /* responses may use 29 levels (32 minus SUBMIT map, jobs array, job map) */
    char buf[512];
    attempt_error_t e;
    for (int levels = 29; levels <= 30; levels++) {
        size_t k = (size_t)snprintf(buf, sizeof buf, "{\"rubric\":\"r\",\"responses\":");
        for (int i = 0; i < levels - 1; i++)
            k += (size_t)snprintf(buf + k, sizeof buf - k, "{\"a\":");
        k += (size_t)snprintf(buf + k, sizeof buf - k, "{}");
        for (int i = 0; i < levels - 1; i++)
            buf[k++] = '}';
        snprintf(buf + k, sizeof buf - k, "}");
        attempt_t a;
        attempt_err_t rc = attempt_parse(buf, strlen(buf), &a, &e);
        if (levels == 29) {
            assert_int_equal(rc, ATTEMPT_OK);
            /* and the broker takes the job built from it */
            attempt_job_opts_t opts = {.job_id = "j", .tenant = "t"};
            msgpack_sbuffer job;
            msgpack_sbuffer_init(&job);
            assert_int_equal(attempt_to_job_record(&a, &opts, &job, &e), ATTEMPT_OK);
            proto_error_t pe;
            assert_int_equal(submit_one_job(&job, &pe), PROTO_OK);
            msgpack_sbuffer_destroy(&job);
        } else {
            assert_int_equal(rc, ATTEMPT_ERR_INVALID);
            assert_string_equal(e.path, "responses");
        }
        attempt_clear(&a);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_body_over_the_decoder_limit_is_too_large),
        cmocka_unit_test(test_body_over_the_default_4_mib_is_too_large),
        cmocka_unit_test(test_submit_of_10001_jobs_is_batch_too_large),
        cmocka_unit_test(test_job_id_of_129_bytes_is_bad_value),
        cmocka_unit_test(test_tenant_of_129_bytes_and_invalid_utf8_are_bad_value),
        cmocka_unit_test(test_nesting_deeper_than_32_is_refused),
        cmocka_unit_test(test_declared_length_bombs_are_malformed_without_allocating),
        cmocka_unit_test(test_credit_and_ttr_ranges),
        cmocka_unit_test(test_responses_shape_limits),
        cmocka_unit_test(test_rubric_over_4_mib_is_limit_exceeded),
        cmocka_unit_test(test_more_than_1000_items_is_limit_exceeded),
        cmocka_unit_test(test_rubric_shape_limits_are_invalid_rubric),
        cmocka_unit_test(test_red_flag_nesting_deeper_than_32_is_limit_exceeded),
        cmocka_unit_test(test_deeply_nested_rubric_json_and_msgpack_are_refused),
        cmocka_unit_test(test_msgpack_rubric_declaring_more_than_it_holds_is_refused),
        cmocka_unit_test(test_msgpack_rubric_with_an_empty_key_is_refused_cleanly),
        cmocka_unit_test(test_text_of_1_mib_plus_1_is_limit_exceeded),
        cmocka_unit_test(test_lists_longer_than_their_limit_are_limit_exceeded),
        cmocka_unit_test(test_responses_beyond_the_rubric_items_are_invalid_response),
        cmocka_unit_test(test_rubric_complexity_limits_are_limit_exceeded),
        cmocka_unit_test(test_msgpack_rubric_over_a_complexity_limit_is_limit_exceeded),
        cmocka_unit_test(test_rubric_totals_and_match_work_are_limit_exceeded),
        cmocka_unit_test(test_string_lengths_and_pattern_nesting_are_limit_exceeded),
        cmocka_unit_test(test_more_than_1000_responses_is_limit_exceeded),
        cmocka_unit_test(test_grading_past_its_work_budget_is_limit_exceeded),
        cmocka_unit_test(test_invalid_utf8_text_is_graded_deterministically),
        cmocka_unit_test(test_catastrophic_pattern_ends_abandoned_within_the_match_limit),
        cmocka_unit_test(test_pattern_backtracking_is_counted_in_the_work_budget),
        cmocka_unit_test(test_pattern_past_the_interpreters_depth_limit_matches_under_the_jit),
        cmocka_unit_test(test_attempt_limits_are_invalid_attempt),
        cmocka_unit_test(test_attempt_nesting_is_bounded_by_the_wire_depth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
