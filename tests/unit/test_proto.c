/*
 * test_proto.c - unit tests for the SCL1 wire protocol codecs (proto/).
 *
 * Every message type is round-tripped through its encoder and decoder; every
 * way a body can be wrong (size, msgpack syntax, nesting, shape, types,
 * ranges) is checked against the specific error code it must produce.
 */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proto/proto.h"

static const char HASH_A[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
static const char HASH_B[] = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";

/* ---- A tiny msgpack body builder ---------------------------------------- */

typedef struct body {
    msgpack_sbuffer sb;
    msgpack_packer pk;
} body_t;

static body_t *b_new(void)
{
    body_t *b = calloc(1, sizeof *b);
    assert_non_null(b);
    msgpack_sbuffer_init(&b->sb);
    msgpack_packer_init(&b->pk, &b->sb, msgpack_sbuffer_write);
    return b;
}

static void b_free(body_t *b)
{
    msgpack_sbuffer_destroy(&b->sb);
    free(b);
}

static void b_map(body_t *b, uint32_t n)
{
    msgpack_pack_map(&b->pk, n);
}
static void b_arr(body_t *b, uint32_t n)
{
    msgpack_pack_array(&b->pk, n);
}
static void b_strn(body_t *b, const char *s, size_t n)
{
    msgpack_pack_str_with_body(&b->pk, s, n);
}
static void b_str(body_t *b, const char *s)
{
    b_strn(b, s, strlen(s));
}
static void b_uint(body_t *b, uint64_t u)
{
    msgpack_pack_uint64(&b->pk, u);
}
static void b_int(body_t *b, int64_t i)
{
    msgpack_pack_int64(&b->pk, i);
}
static void b_nil(body_t *b)
{
    msgpack_pack_nil(&b->pk);
}
static void b_raw(body_t *b, const void *p, size_t n)
{
    msgpack_sbuffer_write(&b->sb, p, n);
}
/* key + string value */
static void b_kv(body_t *b, const char *k, const char *v)
{
    b_str(b, k);
    b_str(b, v);
}
static void b_ku(body_t *b, const char *k, uint64_t v)
{
    b_str(b, k);
    b_uint(b, v);
}

/* A minimal valid job record: 4 required keys plus `extra` caller-packed
 * key/value pairs appended after them. */
static void b_job(body_t *b, const char *id, uint32_t extra)
{
    b_map(b, 4 + extra);
    b_kv(b, "job_id", id);
    b_kv(b, "tenant", "acme");
    b_kv(b, "rubric", "csm-smb");
    b_str(b, "responses");
    b_map(b, 2);
    b_kv(b, "q1", "I would listen first.");
    b_str(b, "q2");
    b_arr(b, 3);
    b_uint(b, 2);
    b_uint(b, 0);
    b_uint(b, 1);
}

/* SUBMIT with `n` minimal jobs. */
static body_t *submit_body(uint32_t n)
{
    body_t *b = b_new();
    b_map(b, 2);
    b_ku(b, "seq", 7);
    b_str(b, "jobs");
    b_arr(b, n);
    for (uint32_t i = 0; i < n; i++) {
        char id[32];
        snprintf(id, sizeof id, "job-%u", i);
        b_job(b, id, 0);
    }
    return b;
}

/* SUBMIT {"jobs": [ one job with the given extra key/values ]}: the caller
 * packs `extra` pairs after calling this. */
static body_t *submit_one_job_start(uint32_t extra)
{
    body_t *b = b_new();
    b_map(b, 1);
    b_str(b, "jobs");
    b_arr(b, 1);
    b_job(b, "j1", extra);
    return b;
}

static proto_decoder_t *dec;

static int setup(void **state)
{
    dec = proto_decoder_new(0);
    return dec ? 0 : -1;
}

static int teardown(void **state)
{
    proto_decoder_destroy(&dec);
    return 0;
}

static proto_str_t S(const char *s)
{
    return proto_str(s);
}

/* Decode a SUBMIT with exactly one job and return that job's error code. */
static proto_err_t single_job_error(body_t *b, proto_submit_t *out)
{
    proto_error_t err;
    proto_err_t rc = proto_decode_submit(dec, b->sb.data, b->sb.size, out, &err);
    assert_int_equal(rc, PROTO_OK);
    assert_int_equal(out->njobs, 1);
    return out->jobs[0].err.code;
}

/* ---- Names --------------------------------------------------------------- */

static void test_commands_parse_and_print(void **state)
{
    for (int i = 0; i < PROTO_CMD_COUNT; i++) {
        const char *name = proto_cmd_name((proto_cmd_t)i);
        proto_cmd_t c;
        assert_int_equal(proto_cmd_parse(name, strlen(name), &c), PROTO_OK);
        assert_int_equal(c, i);
    }
    proto_cmd_t c;
    assert_int_equal(proto_cmd_parse("SUBMITX", 7, &c), PROTO_ERR_COMMAND);
    assert_int_equal(proto_cmd_parse("SUBMI", 5, &c), PROTO_ERR_COMMAND);
    assert_int_equal(proto_cmd_parse("submit", 6, &c), PROTO_ERR_COMMAND);
    assert_int_equal(proto_cmd_parse("", 0, &c), PROTO_ERR_COMMAND);
    assert_string_equal(proto_cmd_name(PROTO_CMD_HEARTBEAT), "HEARTBEAT");
    assert_string_equal(proto_cmd_name(PROTO_CMD_COUNT), "UNKNOWN");
}

static void test_signature_is_exactly_scl1(void **state)
{
    assert_true(proto_signature_ok("SCL1", 4));
    assert_false(proto_signature_ok("SCL2", 4));
    assert_false(proto_signature_ok("SCL1\0", 5));
    assert_false(proto_signature_ok("SCL", 3));
    assert_false(proto_signature_ok(NULL, 0));
}

static void test_every_error_has_a_sentence_and_a_wire_code(void **state)
{
    for (int i = 0; i < PROTO_ERR_COUNT; i++) {
        assert_true(strlen(proto_strerror((proto_err_t)i)) > 0);
        assert_true(strlen(proto_err_code((proto_err_t)i)) > 0);
    }
    assert_string_equal(proto_err_code(PROTO_ERR_MALFORMED), "malformed_message");
    assert_string_equal(proto_err_code(PROTO_ERR_MISSING_FIELD), "missing_field");
    assert_string_equal(proto_err_code(PROTO_ERR_WRONG_TYPE), "wrong_type");
    assert_string_equal(proto_err_code(PROTO_ERR_BAD_VALUE), "bad_value");
    assert_string_equal(proto_err_code(PROTO_ERR_SIGNATURE), "bad_signature");
    assert_string_equal(proto_state_name(PROTO_STATE_DONE), "done");
}

static void test_str_helpers(void **state)
{
    char buf[4];
    assert_true(proto_str_eq(S("abc"), "abc"));
    assert_false(proto_str_eq(S("abc"), "abcd"));
    assert_true(proto_str_eq(proto_str(NULL), ""));
    assert_string_equal(proto_str_copy(S("abcdef"), buf, sizeof buf), "abc");
    assert_true(proto_is_hash_hex(S(HASH_A)));
    assert_false(proto_is_hash_hex(S("0123")));
    assert_int_equal(proto_strn("xy", 0).len, 0);
}

/* ---- Round trips --------------------------------------------------------- */

static void test_submit_round_trip_keeps_every_field(void **state)
{
    /* Source job: decode a hand-built record to get msgpack objects. */
    body_t *src = b_new();
    b_map(src, 2);
    b_str(src, "responses");
    b_map(src, 2);
    b_kv(src, "q1", "Hello");
    b_str(src, "q2");
    b_map(src, 1);
    b_ku(src, "order", 3);
    b_str(src, "meta");
    b_map(src, 1);
    b_kv(src, "source", "ats");
    msgpack_zone z;
    msgpack_zone_init(&z, 1024);
    msgpack_object so;
    size_t off = 0;
    assert_int_equal(msgpack_unpack(src->sb.data, src->sb.size, &off, &z, &so),
                     MSGPACK_UNPACK_SUCCESS);

    proto_job_t job = {0};
    job.job_id = S("a-1");
    job.tenant = S("acme");
    job.candidate = S("cand-9");
    job.rubric = S("csm-smb");
    job.rubric_hash = S(HASH_A);
    job.rubric_inline = S("{\"id\":\"csm-smb\"}");
    job.responses = &so.via.map.ptr[0].val;
    job.ttr_ms = 30000;
    job.meta = &so.via.map.ptr[1].val;

    msgpack_sbuffer j1, j2, out;
    msgpack_sbuffer_init(&j1);
    msgpack_sbuffer_init(&j2);
    msgpack_sbuffer_init(&out);
    assert_int_equal(proto_encode_job_record(&j1, &job), 0);
    job.job_id = S("a-2");
    job.candidate = proto_str(NULL);
    job.rubric_hash = proto_str(NULL);
    job.rubric_inline = proto_str(NULL);
    job.ttr_ms = 0;
    job.meta = NULL;
    assert_int_equal(proto_encode_job_record(&j2, &job), 0);
    const msgpack_sbuffer *maps[] = {&j1, &j2};
    assert_int_equal(proto_encode_submit(&out, 42, maps, 2), 0);

    proto_submit_t m;
    proto_error_t err;
    assert_int_equal(proto_decode_submit(dec, out.data, out.size, &m, &err), PROTO_OK);
    assert_int_equal(err.code, PROTO_OK);
    assert_int_equal(m.seq, 42);
    assert_int_equal(m.njobs, 2);
    const proto_job_t *a = &m.jobs[0], *b = &m.jobs[1];
    assert_int_equal(a->err.code, PROTO_OK);
    assert_true(proto_str_eq(a->job_id, "a-1"));
    assert_true(proto_str_eq(a->tenant, "acme"));
    assert_true(proto_str_eq(a->candidate, "cand-9"));
    assert_true(proto_str_eq(a->rubric, "csm-smb"));
    assert_true(proto_str_eq(a->rubric_hash, HASH_A));
    assert_true(proto_str_eq(a->rubric_inline, "{\"id\":\"csm-smb\"}"));
    assert_int_equal(a->ttr_ms, 30000);
    assert_non_null(a->responses);
    assert_int_equal(a->responses->type, MSGPACK_OBJECT_MAP);
    assert_int_equal(a->responses->via.map.size, 2);
    assert_non_null(a->meta);
    assert_int_equal(a->meta->via.map.size, 1);
    assert_non_null(a->raw);
    assert_int_equal(b->err.code, PROTO_OK);
    assert_true(proto_str_eq(b->job_id, "a-2"));
    assert_int_equal(b->candidate.len, 0);
    assert_non_null(b->candidate.ptr);
    assert_int_equal(b->rubric_hash.len, 0);
    assert_int_equal(b->ttr_ms, 0);
    assert_null(b->meta);

    /* Re-encoding a decoded job gives the same bytes (deterministic). */
    msgpack_sbuffer again;
    msgpack_sbuffer_init(&again);
    assert_int_equal(proto_encode_job_record(&again, a), 0);
    assert_int_equal(again.size, j1.size);
    assert_memory_equal(again.data, j1.data, j1.size);

    msgpack_sbuffer_destroy(&again);
    msgpack_sbuffer_destroy(&j1);
    msgpack_sbuffer_destroy(&j2);
    msgpack_sbuffer_destroy(&out);
    msgpack_zone_destroy(&z);
    b_free(src);
}

/* The worked example of PROTOCOL.md: these exact bytes. */
static void test_minimal_submit_matches_the_documented_bytes(void **state)
{
    static const unsigned char expected[] = {
        0x82, 0xa3, 's',  'e', 'q',  0x01, 0xa4, 'j',  'o',  'b',  's', 0x91, 0x84, 0xa6,
        'j',  'o',  'b',  '_', 'i',  'd',  0xa2, 'a',  '1',  0xa6, 't', 'e',  'n',  'a',
        'n',  't',  0xa4, 'a', 'c',  'm',  'e',  0xa6, 'r',  'u',  'b', 'r',  'i',  'c',
        0xa7, 'c',  's',  'm', '-',  's',  'm',  'b',  0xa9, 'r',  'e', 's',  'p',  'o',
        'n',  's',  'e',  's', 0x81, 0xa2, 'q',  '1',  0xa5, 'H',  'e', 'l',  'l',  'o',
    };
    body_t *r = b_new();
    b_map(r, 1);
    b_kv(r, "q1", "Hello");
    msgpack_zone z;
    msgpack_zone_init(&z, 256);
    msgpack_object ro;
    size_t off = 0;
    assert_int_equal(msgpack_unpack(r->sb.data, r->sb.size, &off, &z, &ro), MSGPACK_UNPACK_SUCCESS);
    proto_job_t job = {0};
    job.job_id = S("a1");
    job.tenant = S("acme");
    job.rubric = S("csm-smb");
    job.responses = &ro;
    msgpack_sbuffer jm, out;
    msgpack_sbuffer_init(&jm);
    msgpack_sbuffer_init(&out);
    assert_int_equal(proto_encode_job_record(&jm, &job), 0);
    const msgpack_sbuffer *maps[] = {&jm};
    assert_int_equal(proto_encode_submit(&out, 1, maps, 1), 0);
    assert_int_equal(out.size, sizeof expected);
    assert_memory_equal(out.data, expected, sizeof expected);
    msgpack_sbuffer_destroy(&jm);
    msgpack_sbuffer_destroy(&out);
    msgpack_zone_destroy(&z);
    b_free(r);
}

static void test_accepted_round_trip(void **state)
{
    proto_accepted_job_t js[3] = {
        {S("a"), PROTO_STATE_QUEUED, 0},
        {S("b"), PROTO_STATE_RUNNING, 1},
        {S("c"), PROTO_STATE_DONE, 1},
    };
    proto_accepted_t m = {.seq = 9, .njobs = 3, .jobs = js};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(proto_encode_accepted(&sb, &m), 0);
    proto_accepted_t d;
    proto_error_t err;
    assert_int_equal(proto_decode_accepted(dec, sb.data, sb.size, &d, &err), PROTO_OK);
    assert_int_equal(d.seq, 9);
    assert_int_equal(d.njobs, 3);
    for (int i = 0; i < 3; i++) {
        assert_true(proto_str_eq(d.jobs[i].job_id, (const char[]){(char)('a' + i), 0}));
        assert_int_equal(d.jobs[i].state, js[i].state);
        assert_int_equal(d.jobs[i].duplicate, js[i].duplicate);
    }
    msgpack_sbuffer_destroy(&sb);
}

static void test_rejected_round_trip(void **state)
{
    proto_rejected_job_t js[2] = {
        {S("a"), S("queue_full"), S("the queue holds 100000 jobs; retry later")},
        {proto_str(NULL), S("missing_field"), S("jobs[1].job_id: required field is missing")},
    };
    proto_rejected_t m = {
        .seq = 3, .code = S("job_errors"), .message = S("2 jobs refused"), .njobs = 2, .jobs = js};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(proto_encode_rejected(&sb, &m), 0);
    proto_rejected_t d;
    proto_error_t err;
    assert_int_equal(proto_decode_rejected(dec, sb.data, sb.size, &d, &err), PROTO_OK);
    assert_int_equal(d.seq, 3);
    assert_true(proto_str_eq(d.code, "job_errors"));
    assert_true(proto_str_eq(d.message, "2 jobs refused"));
    assert_int_equal(d.njobs, 2);
    assert_true(proto_str_eq(d.jobs[0].job_id, "a"));
    assert_true(proto_str_eq(d.jobs[0].code, "queue_full"));
    assert_int_equal(d.jobs[1].job_id.len, 0);
    assert_true(proto_str_eq(d.jobs[1].message, "jobs[1].job_id: required field is missing"));
    msgpack_sbuffer_destroy(&sb);

    /* Message-level rejection: no jobs. */
    proto_rejected_t ml = {.seq = 0, .code = S("malformed_message"), .message = S("bad")};
    msgpack_sbuffer_init(&sb);
    assert_int_equal(proto_encode_rejected(&sb, &ml), 0);
    assert_int_equal(proto_decode_rejected(dec, sb.data, sb.size, &d, &err), PROTO_OK);
    assert_int_equal(d.njobs, 0);
    assert_true(proto_str_eq(d.code, "malformed_message"));
    msgpack_sbuffer_destroy(&sb);
}

static void test_rejected_long_message_is_cut_on_a_utf8_boundary(void **state)
{
    char *msg = malloc(2000);
    assert_non_null(msg);
    /* "é" is 2 bytes: 1000 of them cross the 1024-byte cap mid-character
     * unless the encoder backs up. Start with one ASCII byte to misalign. */
    msg[0] = 'x';
    for (int i = 0; i < 999; i++) {
        msg[1 + 2 * i] = (char)0xc3;
        msg[2 + 2 * i] = (char)0xa9;
    }
    proto_rejected_t m = {.code = S("bad_value"), .message = proto_strn(msg, 1999)};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(proto_encode_rejected(&sb, &m), 0);
    proto_rejected_t d;
    proto_error_t err;
    assert_int_equal(proto_decode_rejected(dec, sb.data, sb.size, &d, &err), PROTO_OK);
    assert_int_equal(d.message.len, 1023);
    assert_int_equal((unsigned char)d.message.ptr[1022], 0xa9);
    msgpack_sbuffer_destroy(&sb);
    free(msg);
}

static void test_ready_round_trip(void **state)
{
    proto_ready_t m = {S("host:42:abcd"), 64, S("scoreline-grading/0.1.0"), 4, 32};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(proto_encode_ready(&sb, &m), 0);
    proto_ready_t d;
    proto_error_t err;
    assert_int_equal(proto_decode_ready(dec, sb.data, sb.size, &d, &err), PROTO_OK);
    assert_true(proto_str_eq(d.worker, "host:42:abcd"));
    assert_int_equal(d.credit, 64);
    assert_true(proto_str_eq(d.engine, "scoreline-grading/0.1.0"));
    assert_int_equal(d.threads, 4);
    assert_int_equal(d.batch, 32);
    msgpack_sbuffer_destroy(&sb);
    /* threads and batch are optional: absent reads as 0 */
    msgpack_sbuffer_init(&sb);
    m.threads = 0;
    m.batch = 0;
    assert_int_equal(proto_encode_ready(&sb, &m), 0);
    assert_null(memmem(sb.data, sb.size, "batch", 5));
    assert_int_equal(proto_decode_ready(dec, sb.data, sb.size, &d, &err), PROTO_OK);
    assert_int_equal(d.threads, 0);
    assert_int_equal(d.batch, 0);
    msgpack_sbuffer_destroy(&sb);
}

static void test_job_round_trip_splices_the_job_map_unchanged(void **state)
{
    /* A job map with an unknown key: it must survive the splice verbatim. */
    body_t *jm = b_new();
    b_job(jm, "j-77", 1);
    b_kv(jm, "x_future", "kept");
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(
        proto_encode_job(&sb, 2, 1700000000123456ull, 60000, S(HASH_B), jm->sb.data, jm->sb.size),
        0);
    assert_true(sb.size > jm->sb.size);
    assert_memory_equal(sb.data + sb.size - jm->sb.size, jm->sb.data, jm->sb.size);
    proto_jobmsg_t d;
    proto_error_t err;
    assert_int_equal(proto_decode_job(dec, sb.data, sb.size, &d, &err), PROTO_OK);
    assert_int_equal(d.attempt, 2);
    assert_int_equal(d.accepted_us, 1700000000123456ull);
    assert_int_equal(d.ttr_ms, 60000);
    assert_true(proto_str_eq(d.rubric_hash, HASH_B));
    assert_true(proto_str_eq(d.job.job_id, "j-77"));
    assert_true(proto_str_eq(d.job.rubric, "csm-smb"));
    assert_int_equal(d.job.err.code, PROTO_OK);
    msgpack_sbuffer_destroy(&sb);

    /* Without a resolved hash the key is left out. */
    msgpack_sbuffer_init(&sb);
    assert_int_equal(proto_encode_job(&sb, 1, 5, 1000, proto_str(NULL), jm->sb.data, jm->sb.size),
                     0);
    assert_int_equal(proto_decode_job(dec, sb.data, sb.size, &d, &err), PROTO_OK);
    assert_int_equal(d.rubric_hash.len, 0);
    msgpack_sbuffer_destroy(&sb);
    b_free(jm);
}

static void test_cancel_round_trip_and_requires_job_id(void **state)
{
    msgpack_sbuffer sb;
    proto_error_t err;
    msgpack_sbuffer_init(&sb);
    proto_cancel_t c = {S("job-7"), 3, S("time-to-run passed")};
    assert_int_equal(proto_encode_cancel(&sb, &c), 0);
    proto_cancel_t d;
    assert_int_equal(proto_decode_cancel(dec, sb.data, sb.size, &d, &err), PROTO_OK);
    assert_true(proto_str_eq(d.job_id, "job-7"));
    assert_int_equal(d.attempt, 3);
    assert_true(proto_str_eq(d.reason, "time-to-run passed"));
    msgpack_sbuffer_destroy(&sb);
    /* a CANCEL without job_id cannot be encoded, and is refused when decoded */
    msgpack_sbuffer_init(&sb);
    proto_cancel_t none = {proto_str(NULL), 1, proto_str(NULL)};
    assert_int_equal(proto_encode_cancel(&sb, &none), -1);
    msgpack_sbuffer_destroy(&sb);
    assert_int_equal(proto_decode_cancel(dec, "\x81\xa7" "attempt" "\x01", 10, &d, &err),
                     PROTO_ERR_MISSING_FIELD);
    (void)state;
}

static void test_heartbeat_and_disconnect_round_trip(void **state)
{
    msgpack_sbuffer sb;
    proto_error_t err;
    msgpack_sbuffer_init(&sb);
    proto_heartbeat_t hb = {17};
    assert_int_equal(proto_encode_heartbeat(&sb, &hb), 0);
    proto_heartbeat_t hd;
    assert_int_equal(proto_decode_heartbeat(dec, sb.data, sb.size, &hd, &err), PROTO_OK);
    assert_int_equal(hd.inflight, 17);
    msgpack_sbuffer_destroy(&sb);

    /* An empty map is a valid HEARTBEAT. */
    assert_int_equal(proto_decode_heartbeat(dec, "\x80", 1, &hd, &err), PROTO_OK);
    assert_int_equal(hd.inflight, 0);

    msgpack_sbuffer_init(&sb);
    proto_disconnect_t dc = {S("unknown_worker")};
    assert_int_equal(proto_encode_disconnect(&sb, &dc), 0);
    proto_disconnect_t dd;
    assert_int_equal(proto_decode_disconnect(dec, sb.data, sb.size, &dd, &err), PROTO_OK);
    assert_true(proto_str_eq(dd.reason, "unknown_worker"));
    msgpack_sbuffer_destroy(&sb);

    msgpack_sbuffer_init(&sb);
    proto_disconnect_t none = {proto_str(NULL)};
    assert_int_equal(proto_encode_disconnect(&sb, &none), 0);
    assert_int_equal(sb.size, 1); /* {} */
    assert_int_equal(proto_decode_disconnect(dec, sb.data, sb.size, &dd, &err), PROTO_OK);
    assert_int_equal(dd.reason.len, 0);
    msgpack_sbuffer_destroy(&sb);
}

static proto_result_t sample_result(void)
{
    proto_result_t m = {0};
    m.job_id = S("j-1");
    m.tenant = S("acme");
    m.candidate = S("c-3");
    m.rubric = S("csm-smb");
    m.rubric_hash = S(HASH_A);
    m.engine = S("scoreline-grading/0.1.0");
    m.worker = S("w1:100:ff");
    m.attempt = 1;
    m.accepted_us = 1000;
    m.started_us = 2000;
    m.finished_us = 2500;
    m.duration_us = 500;
    return m;
}

static void test_result_ok_round_trip_splices_result_map(void **state)
{
    body_t *rm = b_new();
    b_map(rm, 2);
    b_ku(rm, "score", 8750);
    b_kv(rm, "decision", "advance");
    proto_result_t m = sample_result();
    m.status = S("ok");
    m.digest = S(HASH_B);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(proto_encode_result(&sb, &m, rm->sb.data, rm->sb.size), 0);
    assert_non_null(memmem(sb.data, sb.size, rm->sb.data, rm->sb.size));
    proto_result_t d;
    proto_error_t err;
    assert_int_equal(proto_decode_result(dec, sb.data, sb.size, &d, &err), PROTO_OK);
    assert_true(proto_str_eq(d.job_id, "j-1"));
    assert_true(proto_str_eq(d.tenant, "acme"));
    assert_true(proto_str_eq(d.candidate, "c-3"));
    assert_true(proto_str_eq(d.rubric, "csm-smb"));
    assert_true(proto_str_eq(d.rubric_hash, HASH_A));
    assert_true(proto_str_eq(d.engine, "scoreline-grading/0.1.0"));
    assert_true(proto_str_eq(d.worker, "w1:100:ff"));
    assert_int_equal(d.attempt, 1);
    assert_int_equal(d.accepted_us, 1000);
    assert_int_equal(d.started_us, 2000);
    assert_int_equal(d.finished_us, 2500);
    assert_int_equal(d.duration_us, 500);
    assert_true(proto_str_eq(d.status, "ok"));
    assert_true(proto_str_eq(d.digest, HASH_B));
    assert_non_null(d.result);
    assert_int_equal(d.result->via.map.size, 2);
    assert_int_equal(d.error_code.len, 0);

    /* Same input, same bytes. */
    msgpack_sbuffer sb2;
    msgpack_sbuffer_init(&sb2);
    assert_int_equal(proto_encode_result(&sb2, &m, rm->sb.data, rm->sb.size), 0);
    assert_int_equal(sb2.size, sb.size);
    assert_memory_equal(sb2.data, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb2);
    msgpack_sbuffer_destroy(&sb);
    b_free(rm);
}

static void test_result_error_round_trip(void **state)
{
    proto_result_t m = sample_result();
    m.rubric_hash = proto_str(NULL);
    m.candidate = proto_str(NULL);
    m.status = S("error");
    m.error_code = S("unknown_rubric");
    m.error_message = S("rubric \"csm-smb\" is not in Redis and no rubric_inline was given");
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(proto_encode_result(&sb, &m, NULL, 0), 0);
    proto_result_t d;
    proto_error_t err;
    assert_int_equal(proto_decode_result(dec, sb.data, sb.size, &d, &err), PROTO_OK);
    assert_true(proto_str_eq(d.status, "error"));
    assert_true(proto_str_eq(d.error_code, "unknown_rubric"));
    assert_true(proto_str_eq(d.error_message, m.error_message.ptr));
    assert_int_equal(d.rubric_hash.len, 0);
    assert_null(d.result);
    msgpack_sbuffer_destroy(&sb);
}

static void test_encoders_refuse_to_splice_what_is_not_one_map(void **state)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(proto_encode_job(&sb, 1, 1, 1, proto_str(NULL), "\x91\x01", 2), -1);
    assert_int_equal(proto_encode_job(&sb, 1, 1, 1, proto_str(NULL), "\x81\xa1x", 3), -1);
    assert_int_equal(proto_encode_job(&sb, 1, 1, 1, proto_str(NULL), "\x80\x80", 2), -1);
    assert_int_equal(proto_encode_job(&sb, 1, 1, 1, proto_str(NULL), NULL, 0), -1);
    proto_result_t m = sample_result();
    m.status = S("ok");
    m.digest = S(HASH_A);
    assert_int_equal(proto_encode_result(&sb, &m, NULL, 0), -1);
    m.status = S("maybe");
    assert_int_equal(proto_encode_result(&sb, &m, "\x80", 1), -1);
    proto_job_t job = {0};
    assert_int_equal(proto_encode_job_record(&sb, &job), -1); /* no responses */
    assert_int_equal(sb.size, 0);
    msgpack_sbuffer_destroy(&sb);
}

/* ---- Message-level rejections -------------------------------------------- */

static void test_rejects_body_over_max_body_before_unpacking(void **state)
{
    proto_decoder_t *small = proto_decoder_new(64);
    assert_non_null(small);
    body_t *b = submit_body(2);
    assert_true(b->sb.size > 64);
    proto_submit_t m;
    proto_error_t err;
    assert_int_equal(proto_decode_submit(small, b->sb.data, b->sb.size, &m, &err),
                     PROTO_ERR_TOO_LARGE);
    assert_int_equal(err.code, PROTO_ERR_TOO_LARGE);
    assert_non_null(strstr(err.message, "limit is 64"));
    /* Garbage over the limit is TOO_LARGE, not MALFORMED: size comes first. */
    char junk[65];
    memset(junk, 0xc1, sizeof junk);
    assert_int_equal(
        proto_decode_heartbeat(small, junk, sizeof junk, &(proto_heartbeat_t){0}, &err),
        PROTO_ERR_TOO_LARGE);
    proto_decoder_destroy(&small);
    assert_null(small);
    b_free(b);
}

static void test_rejects_bytes_that_are_not_msgpack(void **state)
{
    proto_heartbeat_t hb;
    proto_error_t err;
    assert_int_equal(proto_decode_heartbeat(dec, "\xc1", 1, &hb, &err), PROTO_ERR_MALFORMED);
    assert_int_equal(proto_decode_heartbeat(dec, "", 0, &hb, &err), PROTO_ERR_MALFORMED);
    /* JSON text: '{' is a fixint followed by trailing bytes. */
    assert_int_equal(proto_decode_heartbeat(dec, "{\"a\":1}", 7, &hb, &err), PROTO_ERR_MALFORMED);
    assert_int_equal(proto_decode_heartbeat(dec, "\x81\xc1\x01", 3, &hb, &err),
                     PROTO_ERR_MALFORMED);
}

static void test_rejects_every_truncated_prefix_of_a_submit(void **state)
{
    body_t *b = submit_body(3);
    proto_submit_t m;
    proto_error_t err;
    assert_int_equal(proto_decode_submit(dec, b->sb.data, b->sb.size, &m, &err), PROTO_OK);
    for (size_t n = 0; n < b->sb.size; n++) {
        proto_err_t rc = proto_decode_submit(dec, b->sb.data, n, &m, &err);
        if (rc != PROTO_ERR_MALFORMED)
            fail_msg("prefix of %zu bytes gave %s (%s)", n, proto_err_code(rc), err.message);
    }
    b_free(b);
}

static void test_rejects_trailing_bytes_after_the_body(void **state)
{
    body_t *b = submit_body(1);
    b_uint(b, 0);
    proto_submit_t m;
    proto_error_t err;
    assert_int_equal(proto_decode_submit(dec, b->sb.data, b->sb.size, &m, &err),
                     PROTO_ERR_MALFORMED);
    assert_non_null(strstr(err.message, "trailing"));
    /* Two maps back to back are also one too many. */
    assert_int_equal(proto_decode_heartbeat(dec, "\x80\x80", 2, &(proto_heartbeat_t){0}, &err),
                     PROTO_ERR_MALFORMED);
    b_free(b);
}

static void test_rejects_a_body_that_is_not_a_map(void **state)
{
    proto_submit_t m;
    proto_error_t err;
    assert_int_equal(proto_decode_submit(dec, "\x91\x80", 2, &m, &err), PROTO_ERR_NOT_MAP);
    assert_string_equal(err.message, "body: expected a map, got an array");
    assert_int_equal(proto_decode_submit(dec,
                                         "\xa3"
                                         "abc",
                                         4, &m, &err),
                     PROTO_ERR_NOT_MAP);
    assert_int_equal(proto_decode_submit(dec, "\x05", 1, &m, &err), PROTO_ERR_NOT_MAP);
    assert_int_equal(proto_decode_submit(dec, "\xc0", 1, &m, &err), PROTO_ERR_NOT_MAP);
}

static void test_rejects_non_string_and_duplicate_keys(void **state)
{
    proto_heartbeat_t hb;
    proto_error_t err;
    /* {1: 2} */
    assert_int_equal(proto_decode_heartbeat(dec, "\x81\x01\x02", 3, &hb, &err),
                     PROTO_ERR_MALFORMED);
    assert_non_null(strstr(err.message, "keys must be strings"));
    /* {"inflight": 1, "inflight": 2} */
    body_t *b = b_new();
    b_map(b, 2);
    b_ku(b, "inflight", 1);
    b_ku(b, "inflight", 2);
    assert_int_equal(proto_decode_heartbeat(dec, b->sb.data, b->sb.size, &hb, &err),
                     PROTO_ERR_MALFORMED);
    assert_non_null(strstr(err.message, "duplicate key \"inflight\""));
    b_free(b);
}

static void test_submit_without_jobs_array_fails_the_message(void **state)
{
    proto_submit_t m;
    proto_error_t err;
    body_t *b = b_new();
    b_map(b, 1);
    b_ku(b, "seq", 1);
    assert_int_equal(proto_decode_submit(dec, b->sb.data, b->sb.size, &m, &err),
                     PROTO_ERR_MISSING_FIELD);
    assert_string_equal(err.message, "jobs: required field is missing");
    b_free(b);

    b = b_new();
    b_map(b, 1);
    b_kv(b, "jobs", "all of them");
    assert_int_equal(proto_decode_submit(dec, b->sb.data, b->sb.size, &m, &err),
                     PROTO_ERR_WRONG_TYPE);
    assert_string_equal(err.message, "jobs: expected an array, got a string");
    b_free(b);

    b = b_new();
    b_map(b, 2);
    b_str(b, "seq");
    b_int(b, -1);
    b_str(b, "jobs");
    b_arr(b, 0);
    assert_int_equal(proto_decode_submit(dec, b->sb.data, b->sb.size, &m, &err),
                     PROTO_ERR_BAD_VALUE);
    assert_non_null(strstr(err.message, "seq:"));
    b_free(b);
}

static void test_submit_with_empty_batch_is_rejected(void **state)
{
    body_t *b = submit_body(0);
    proto_submit_t m;
    proto_error_t err;
    assert_int_equal(proto_decode_submit(dec, b->sb.data, b->sb.size, &m, &err),
                     PROTO_ERR_BAD_VALUE);
    assert_non_null(strstr(err.message, "jobs:"));
    b_free(b);
}

static void test_submit_with_too_many_jobs_is_rejected(void **state)
{
    proto_submit_t m;
    proto_error_t err;
    /* 10001 nils: the count is checked before any job is looked at. */
    body_t *b = b_new();
    b_map(b, 1);
    b_str(b, "jobs");
    b_arr(b, PROTO_MAX_BATCH + 1);
    for (int i = 0; i < PROTO_MAX_BATCH + 1; i++)
        b_nil(b);
    assert_int_equal(proto_decode_submit(dec, b->sb.data, b->sb.size, &m, &err),
                     PROTO_ERR_BATCH_TOO_LARGE);
    b_free(b);

    /* Exactly the limit is fine. */
    b = submit_body(PROTO_MAX_BATCH);
    assert_int_equal(proto_decode_submit(dec, b->sb.data, b->sb.size, &m, &err), PROTO_OK);
    assert_int_equal(m.njobs, PROTO_MAX_BATCH);
    assert_true(proto_str_eq(m.jobs[PROTO_MAX_BATCH - 1].job_id, "job-9999"));
    b_free(b);
}

static void test_memory_bomb_headers_are_refused_without_allocating(void **state)
{
    static const struct {
        const char *bytes;
        size_t len;
    } bombs[] = {
        {"\xdd\xff\xff\xff\xff", 5},                  /* array32 of 4G */
        {"\xdf\xff\xff\xff\xff", 5},                  /* map32 of 4G */
        {"\xdd\x0f\xff\xff\xff\xc0", 6},              /* array32 of 268M, one nil */
        {"\xdc\xff\xff", 3},                          /* array16 */
        {"\xde\xff\xff\x01", 4},                      /* map16 */
        {"\xdb\xff\xff\xff\xff", 5},                  /* str32 */
        {"\xc6\xff\xff\xff\xff", 5},                  /* bin32 */
        {"\xc9\xff\xff\xff\xff\x01", 6},              /* ext32 */
        {"\x81\xa4jobs\xdd\xff\xff\xff\xff", 11},     /* nested in a map */
        {"\x81\xa4jobs\x91\xdf\x7f\xff\xff\xff", 12}, /* nested twice */
    };
    proto_submit_t m;
    proto_error_t err;
    for (size_t i = 0; i < sizeof bombs / sizeof bombs[0]; i++) {
        proto_err_t rc = proto_decode_submit(dec, bombs[i].bytes, bombs[i].len, &m, &err);
        if (rc != PROTO_ERR_MALFORMED)
            fail_msg("bomb %zu gave %s (%s)", i, proto_err_code(rc), err.message);
    }
}

/* A HEARTBEAT whose unknown key "x" holds `levels` nested arrays. */
static body_t *nested_body(int levels)
{
    body_t *b = b_new();
    b_map(b, 1);
    b_str(b, "x");
    for (int i = 0; i < levels - 1; i++)
        b_arr(b, 1);
    b_arr(b, 0);
    return b;
}

static void test_nesting_deeper_than_the_limit_is_refused(void **state)
{
    proto_heartbeat_t hb;
    proto_error_t err;
    /* The body map plus 31 arrays: exactly PROTO_MAX_DEPTH levels. */
    body_t *b = nested_body(PROTO_MAX_DEPTH - 1);
    assert_int_equal(proto_decode_heartbeat(dec, b->sb.data, b->sb.size, &hb, &err), PROTO_OK);
    b_free(b);
    b = nested_body(PROTO_MAX_DEPTH);
    assert_int_equal(proto_decode_heartbeat(dec, b->sb.data, b->sb.size, &hb, &err),
                     PROTO_ERR_TOO_LARGE);
    assert_non_null(strstr(err.message, "nested deeper than 32"));
    b_free(b);
    b = nested_body(1000);
    assert_int_equal(proto_decode_heartbeat(dec, b->sb.data, b->sb.size, &hb, &err),
                     PROTO_ERR_TOO_LARGE);
    b_free(b);
}

/* ---- Per-job validation -------------------------------------------------- */

static void test_bad_jobs_in_a_batch_leave_valid_jobs_intact(void **state)
{
    body_t *b = b_new();
    b_map(b, 2);
    b_ku(b, "seq", 5);
    b_str(b, "jobs");
    b_arr(b, 5);
    b_job(b, "ok-0", 0);
    /* 1: no tenant */
    b_map(b, 3);
    b_kv(b, "job_id", "no-tenant");
    b_kv(b, "rubric", "r");
    b_str(b, "responses");
    b_map(b, 0);
    /* 2: integer job id */
    b_map(b, 4);
    b_str(b, "job_id");
    b_uint(b, 12);
    b_kv(b, "tenant", "t");
    b_kv(b, "rubric", "r");
    b_str(b, "responses");
    b_map(b, 0);
    /* 3: not a map */
    b_str(b, "job");
    b_job(b, "ok-4", 0);

    proto_submit_t m;
    proto_error_t err;
    assert_int_equal(proto_decode_submit(dec, b->sb.data, b->sb.size, &m, &err), PROTO_OK);
    assert_int_equal(err.code, PROTO_OK);
    assert_int_equal(m.seq, 5);
    assert_int_equal(m.njobs, 5);
    assert_int_equal(m.jobs[0].err.code, PROTO_OK);
    assert_true(proto_str_eq(m.jobs[0].job_id, "ok-0"));
    assert_int_equal(m.jobs[1].err.code, PROTO_ERR_MISSING_FIELD);
    assert_string_equal(m.jobs[1].err.message, "jobs[1].tenant: required field is missing");
    assert_true(proto_str_eq(m.jobs[1].job_id, "no-tenant")); /* still named */
    assert_int_equal(m.jobs[2].err.code, PROTO_ERR_WRONG_TYPE);
    assert_string_equal(m.jobs[2].err.message, "jobs[2].job_id: expected a string, got an integer");
    assert_int_equal(m.jobs[2].job_id.len, 0);
    assert_int_equal(m.jobs[3].err.code, PROTO_ERR_NOT_MAP);
    assert_string_equal(m.jobs[3].err.message, "jobs[3]: expected a map, got a string");
    assert_int_equal(m.jobs[4].err.code, PROTO_OK);
    assert_true(proto_str_eq(m.jobs[4].job_id, "ok-4"));
    assert_true(proto_str_eq(m.jobs[4].tenant, "acme"));
    assert_int_equal(m.jobs[4].responses->via.map.size, 2);
    b_free(b);
}

static void test_rubric_hash_must_be_64_lowercase_hex(void **state)
{
    static const char *bad[] = {
        "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",  /* upper */
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",   /* 63 */
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0", /* 65 */
        "g123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",  /* g */
    };
    proto_submit_t m;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        body_t *b = submit_one_job_start(1);
        b_kv(b, "rubric_hash", bad[i]);
        assert_int_equal(single_job_error(b, &m), PROTO_ERR_BAD_VALUE);
        assert_non_null(strstr(m.jobs[0].err.message, "jobs[0].rubric_hash:"));
        b_free(b);
    }
    body_t *b = submit_one_job_start(1);
    b_kv(b, "rubric_hash", HASH_A);
    assert_int_equal(single_job_error(b, &m), PROTO_OK);
    assert_true(proto_str_eq(m.jobs[0].rubric_hash, HASH_A));
    b_free(b);
    /* "" means absent. */
    b = submit_one_job_start(1);
    b_kv(b, "rubric_hash", "");
    assert_int_equal(single_job_error(b, &m), PROTO_OK);
    assert_int_equal(m.jobs[0].rubric_hash.len, 0);
    b_free(b);
}

static void test_ids_and_names_are_length_checked(void **state)
{
    char id[PROTO_MAX_JOB_ID + 2];
    memset(id, 'x', sizeof id);
    id[PROTO_MAX_JOB_ID] = '\0';
    proto_submit_t m;

    body_t *b = b_new();
    b_map(b, 1);
    b_str(b, "jobs");
    b_arr(b, 3);
    b_job(b, id, 0); /* 128 bytes: fine */
    id[PROTO_MAX_JOB_ID] = 'x';
    id[PROTO_MAX_JOB_ID + 1] = '\0';
    b_job(b, id, 0); /* 129 bytes */
    b_job(b, "", 0); /* empty */
    proto_error_t err;
    assert_int_equal(proto_decode_submit(dec, b->sb.data, b->sb.size, &m, &err), PROTO_OK);
    assert_int_equal(m.jobs[0].err.code, PROTO_OK);
    assert_int_equal(m.jobs[0].job_id.len, PROTO_MAX_JOB_ID);
    assert_int_equal(m.jobs[1].err.code, PROTO_ERR_BAD_VALUE);
    assert_string_equal(m.jobs[1].err.message, "jobs[1].job_id: 129 bytes, the limit is 128");
    assert_int_equal(m.jobs[2].err.code, PROTO_ERR_BAD_VALUE);
    assert_string_equal(m.jobs[2].err.message, "jobs[2].job_id: must not be empty");
    b_free(b);

    b = submit_one_job_start(1);
    b_kv(b, "candidate", id);
    assert_int_equal(single_job_error(b, &m), PROTO_ERR_BAD_VALUE);
    b_free(b);
}

static void test_ids_must_be_utf8_without_control_characters(void **state)
{
    proto_submit_t m;
    const char *bad[] = {"a\nb", "a\x7f", "\xc3\x28", "\xed\xa0\x80" /* surrogate */,
                         "\xc0\xaf" /* overlong */};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        body_t *b = b_new();
        b_map(b, 1);
        b_str(b, "jobs");
        b_arr(b, 1);
        b_job(b, bad[i], 0);
        assert_int_equal(single_job_error(b, &m), PROTO_ERR_BAD_VALUE);
        b_free(b);
    }
    body_t *b = b_new();
    b_map(b, 1);
    b_str(b, "jobs");
    b_arr(b, 1);
    b_job(b, "r\xc3\xa9sum\xc3\xa9-\xf0\x9f\x93\x9d", 0);
    assert_int_equal(single_job_error(b, &m), PROTO_OK);
    b_free(b);
}

static void test_ttr_ms_is_range_checked(void **state)
{
    proto_submit_t m;
    body_t *b = submit_one_job_start(1);
    b_ku(b, "ttr_ms", PROTO_MAX_TTR_MS + 1);
    assert_int_equal(single_job_error(b, &m), PROTO_ERR_BAD_VALUE);
    b_free(b);
    b = submit_one_job_start(1);
    b_str(b, "ttr_ms");
    msgpack_pack_double(&b->pk, 1.5);
    assert_int_equal(single_job_error(b, &m), PROTO_ERR_WRONG_TYPE);
    assert_string_equal(m.jobs[0].err.message,
                        "jobs[0].ttr_ms: expected an unsigned integer, got a float");
    b_free(b);
    b = submit_one_job_start(1);
    b_ku(b, "ttr_ms", PROTO_MAX_TTR_MS);
    assert_int_equal(single_job_error(b, &m), PROTO_OK);
    assert_int_equal(m.jobs[0].ttr_ms, PROTO_MAX_TTR_MS);
    b_free(b);
}

static void test_responses_are_checked(void **state)
{
    proto_submit_t m;
    proto_error_t err;
    /* responses missing */
    body_t *b = b_new();
    b_map(b, 1);
    b_str(b, "jobs");
    b_arr(b, 1);
    b_map(b, 3);
    b_kv(b, "job_id", "j");
    b_kv(b, "tenant", "t");
    b_kv(b, "rubric", "r");
    assert_int_equal(single_job_error(b, &m), PROTO_ERR_MISSING_FIELD);
    assert_string_equal(m.jobs[0].err.message, "jobs[0].responses: required field is missing");
    b_free(b);

    /* Build jobs whose responses are given raw. */
    static const struct {
        const char *raw;
        size_t len;
        proto_err_t want;
    } cases[] = {
        {"\x92\x01\x02", 3, PROTO_ERR_WRONG_TYPE},               /* array */
        {"\x81\x01\x02", 3, PROTO_ERR_WRONG_TYPE},               /* int item id */
        {"\x81\xa0\x02", 3, PROTO_ERR_BAD_VALUE},                /* empty item id */
        {"\x82\xa2q1\x01\xa2q1\x02", 9, PROTO_ERR_BAD_VALUE},    /* duplicate */
        {"\x81\xa2q1\xc4\x01\x00", 7, PROTO_ERR_WRONG_TYPE},     /* bin value */
        {"\x81\xa2q1\x91\xd4\x01\x00", 8, PROTO_ERR_WRONG_TYPE}, /* ext nested */
        {"\x81\xa2q1\x81\x01\x01", 7, PROTO_ERR_WRONG_TYPE},     /* nested int key */
        {"\x80", 1, PROTO_OK},                                   /* no answers */
        {"\x83\xa2q1\xc0\xa2q2\xc3\xa2q3\xcb\x3f\xf8\0\0\0\0\0\0", 21, PROTO_OK},
        {"\x81\xa2q1\x82\xa1"
         "a\x91\x01\xa1"
         "b\x80",
         12, PROTO_OK},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        b = b_new();
        b_map(b, 1);
        b_str(b, "jobs");
        b_arr(b, 1);
        b_map(b, 4);
        b_kv(b, "job_id", "j");
        b_kv(b, "tenant", "t");
        b_kv(b, "rubric", "r");
        b_str(b, "responses");
        b_raw(b, cases[i].raw, cases[i].len);
        assert_int_equal(proto_decode_submit(dec, b->sb.data, b->sb.size, &m, &err), PROTO_OK);
        if (m.jobs[0].err.code != cases[i].want)
            fail_msg("case %zu: got %s (%s)", i, proto_err_code(m.jobs[0].err.code),
                     m.jobs[0].err.message);
        if (cases[i].want != PROTO_OK)
            assert_non_null(strstr(m.jobs[0].err.message, "jobs[0].responses"));
        b_free(b);
    }
}

/* Error sentences name the field exactly: these are part of the wire contract
 * (REJECTED messages) and must not change with how the decoder builds them. */
static void test_error_sentences_name_the_field_exactly(void **state)
{
    proto_submit_t m;
    proto_error_t err;
    /* Job 12 of 13 has a bad tenant; the others are fine. */
    body_t *b = b_new();
    b_map(b, 1);
    b_str(b, "jobs");
    b_arr(b, 13);
    for (int i = 0; i < 12; i++)
        b_job(b, "ok", 0);
    b_map(b, 4);
    b_kv(b, "job_id", "bad");
    b_ku(b, "tenant", 3);
    b_kv(b, "rubric", "r");
    b_str(b, "responses");
    b_map(b, 0);
    assert_int_equal(proto_decode_submit(dec, b->sb.data, b->sb.size, &m, &err), PROTO_OK);
    assert_int_equal(m.jobs[11].err.code, PROTO_OK);
    assert_string_equal(m.jobs[12].err.message,
                        "jobs[12].tenant: expected a string, got an integer");
    b_free(b);

    /* Duplicate item ids: the smallest duplicated id is named, whether the
     * map is short (compared pairwise) or long (sorted). */
    for (int big = 0; big < 2; big++) {
        b = b_new();
        b_map(b, 1);
        b_str(b, "jobs");
        b_arr(b, 1);
        b_map(b, 4);
        b_kv(b, "job_id", "j");
        b_kv(b, "tenant", "t");
        b_kv(b, "rubric", "r");
        b_str(b, "responses");
        uint32_t n = big ? 40 : 6;
        b_map(b, n);
        for (uint32_t i = 0; i < n - 4; i++) {
            char id[16];
            snprintf(id, sizeof id, "q%02u", i);
            b_kv(b, id, "x");
        }
        b_kv(b, "zz", "x");
        b_kv(b, "q01", "y");
        b_kv(b, "zz", "y");
        b_kv(b, "q00", "y");
        assert_int_equal(proto_decode_submit(dec, b->sb.data, b->sb.size, &m, &err), PROTO_OK);
        assert_int_equal(m.jobs[0].err.code, PROTO_ERR_BAD_VALUE);
        assert_string_equal(m.jobs[0].err.message, "jobs[0].responses: duplicate item id \"q00\"");
        b_free(b);
    }

    /* A bad value deep in a response names the item. */
    b = b_new();
    b_map(b, 1);
    b_str(b, "jobs");
    b_arr(b, 1);
    b_map(b, 4);
    b_kv(b, "job_id", "j");
    b_kv(b, "tenant", "t");
    b_kv(b, "rubric", "r");
    b_str(b, "responses");
    b_map(b, 2);
    b_kv(b, "q1", "fine");
    b_str(b, "q2");
    b_arr(b, 2);
    b_uint(b, 1);
    b_raw(b, "\xc4\x01\x00", 3);
    assert_int_equal(proto_decode_submit(dec, b->sb.data, b->sb.size, &m, &err), PROTO_OK);
    assert_string_equal(m.jobs[0].err.message,
                        "jobs[0].responses.q2: contains binary data; responses hold only nil, "
                        "booleans, numbers, strings, arrays and maps");
    b_free(b);

    /* Message-level fields have no path prefix. */
    b = b_new();
    b_map(b, 2);
    b_str(b, "worker");
    b_str(b, "w");
    b_ku(b, "credit", 0);
    proto_ready_t rd;
    assert_int_equal(proto_decode_ready(dec, b->sb.data, b->sb.size, &rd, &err),
                     PROTO_ERR_BAD_VALUE);
    assert_string_equal(err.message, "credit: 0 is out of range 1..10000");
    b_free(b);
}

static void test_non_string_key_in_a_job_fails_only_that_job(void **state)
{
    proto_submit_t m;
    body_t *b = submit_one_job_start(1);
    b_uint(b, 1);
    b_uint(b, 2);
    assert_int_equal(single_job_error(b, &m), PROTO_ERR_MALFORMED);
    assert_true(proto_str_eq(m.jobs[0].job_id, "j1"));
    b_free(b);
}

static void test_unknown_keys_are_ignored(void **state)
{
    body_t *b = b_new();
    b_map(b, 3);
    b_str(b, "x_batch_tag");
    b_map(b, 1);
    b_str(b, "deep");
    b_arr(b, 2);
    b_nil(b);
    b_raw(b, "\xc4\x02\x00\x01", 4); /* bin is fine where nobody looks */
    b_str(b, "jobs");
    b_arr(b, 1);
    b_job(b, "j", 2);
    b_ku(b, "x_priority", 5);
    b_kv(b, "x_note", "hello");
    b_ku(b, "seq", 11);
    proto_submit_t m;
    proto_error_t err;
    assert_int_equal(proto_decode_submit(dec, b->sb.data, b->sb.size, &m, &err), PROTO_OK);
    assert_int_equal(m.seq, 11);
    assert_int_equal(m.jobs[0].err.code, PROTO_OK);
    b_free(b);
}

static void test_nil_optional_fields_count_as_absent(void **state)
{
    proto_submit_t m;
    body_t *b = submit_one_job_start(3);
    b_str(b, "candidate");
    b_nil(b);
    b_str(b, "rubric_hash");
    b_nil(b);
    b_str(b, "ttr_ms");
    b_nil(b);
    assert_int_equal(single_job_error(b, &m), PROTO_OK);
    assert_int_equal(m.jobs[0].candidate.len, 0);
    b_free(b);

    /* ...but nil for a required field is a missing field. */
    b = b_new();
    b_map(b, 1);
    b_str(b, "jobs");
    b_arr(b, 1);
    b_map(b, 4);
    b_kv(b, "job_id", "j");
    b_str(b, "tenant");
    b_nil(b);
    b_kv(b, "rubric", "r");
    b_str(b, "responses");
    b_map(b, 0);
    assert_int_equal(single_job_error(b, &m), PROTO_ERR_MISSING_FIELD);
    b_free(b);
}

static void test_job_from_object_works_without_a_path(void **state)
{
    body_t *b = b_new();
    b_map(b, 0);
    msgpack_zone z;
    msgpack_zone_init(&z, 256);
    msgpack_object o;
    size_t off = 0;
    assert_int_equal(msgpack_unpack(b->sb.data, b->sb.size, &off, &z, &o), MSGPACK_UNPACK_SUCCESS);
    proto_job_t job;
    proto_error_t err;
    assert_int_equal(proto_job_from_object(&o, NULL, &job, &err), PROTO_ERR_MISSING_FIELD);
    assert_string_equal(err.message, "job_id: required field is missing");
    assert_int_equal(job.err.code, PROTO_ERR_MISSING_FIELD);
    msgpack_zone_destroy(&z);
    b_free(b);
}

/* ---- Other messages' validation ------------------------------------------ */

static void test_ready_is_validated(void **state)
{
    proto_ready_t r;
    proto_error_t err;
    body_t *b = b_new();
    b_map(b, 2);
    b_kv(b, "worker", "w");
    b_ku(b, "credit", 0);
    assert_int_equal(proto_decode_ready(dec, b->sb.data, b->sb.size, &r, &err),
                     PROTO_ERR_BAD_VALUE);
    assert_string_equal(err.message, "credit: 0 is out of range 1..10000");
    b_free(b);
    b = b_new();
    b_map(b, 2);
    b_kv(b, "worker", "w");
    b_ku(b, "credit", PROTO_MAX_CREDIT + 1);
    assert_int_equal(proto_decode_ready(dec, b->sb.data, b->sb.size, &r, &err),
                     PROTO_ERR_BAD_VALUE);
    b_free(b);
    b = b_new();
    b_map(b, 1);
    b_ku(b, "credit", 4);
    assert_int_equal(proto_decode_ready(dec, b->sb.data, b->sb.size, &r, &err),
                     PROTO_ERR_MISSING_FIELD);
    assert_string_equal(err.message, "worker: required field is missing");
    b_free(b);
}

static void test_job_message_is_validated(void **state)
{
    proto_jobmsg_t j;
    proto_error_t err;
    body_t *b = b_new();
    b_map(b, 4);
    b_ku(b, "attempt", 0);
    b_ku(b, "accepted_us", 1);
    b_ku(b, "ttr_ms", 1000);
    b_str(b, "job");
    b_job(b, "j", 0);
    assert_int_equal(proto_decode_job(dec, b->sb.data, b->sb.size, &j, &err), PROTO_ERR_BAD_VALUE);
    assert_non_null(strstr(err.message, "attempt:"));
    b_free(b);

    b = b_new();
    b_map(b, 3);
    b_ku(b, "attempt", 1);
    b_ku(b, "accepted_us", 1);
    b_ku(b, "ttr_ms", 1000);
    assert_int_equal(proto_decode_job(dec, b->sb.data, b->sb.size, &j, &err),
                     PROTO_ERR_MISSING_FIELD);
    assert_string_equal(err.message, "job: required field is missing");
    b_free(b);

    /* A bad job record fails the JOB, naming the path; the id is kept. */
    b = b_new();
    b_map(b, 4);
    b_ku(b, "attempt", 1);
    b_ku(b, "accepted_us", 1);
    b_ku(b, "ttr_ms", 1000);
    b_str(b, "job");
    b_map(b, 3);
    b_kv(b, "job_id", "jj");
    b_kv(b, "rubric", "r");
    b_str(b, "responses");
    b_map(b, 0);
    assert_int_equal(proto_decode_job(dec, b->sb.data, b->sb.size, &j, &err),
                     PROTO_ERR_MISSING_FIELD);
    assert_string_equal(err.message, "job.tenant: required field is missing");
    assert_true(proto_str_eq(j.job.job_id, "jj"));
    b_free(b);
}

static void test_result_is_validated(void **state)
{
    proto_result_t m = sample_result();
    m.status = S("ok");
    m.digest = S(HASH_A);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(proto_encode_result(&sb, &m, "\x80", 1), 0);
    proto_result_t d;
    proto_error_t err;
    assert_int_equal(proto_decode_result(dec, sb.data, sb.size, &d, &err), PROTO_OK);

    /* Flip bytes in the encoded body to break one field at a time. */
    char *p = memmem(sb.data, sb.size, "\xa2ok", 3);
    assert_non_null(p);
    memcpy(p, "\xa2no", 3);
    assert_int_equal(proto_decode_result(dec, sb.data, sb.size, &d, &err), PROTO_ERR_BAD_VALUE);
    assert_non_null(strstr(err.message, "status:"));
    memcpy(p, "\xa2ok", 3);
    p = memmem(sb.data, sb.size, "\xa1v\x01", 3);
    assert_non_null(p);
    p[2] = 2;
    assert_int_equal(proto_decode_result(dec, sb.data, sb.size, &d, &err), PROTO_ERR_BAD_VALUE);
    p[2] = 1;
    p = memmem(sb.data, sb.size,
               "\xa6"
               "digest",
               7);
    assert_non_null(p);
    p[1] = 'D'; /* now an unknown key: digest is missing */
    assert_int_equal(proto_decode_result(dec, sb.data, sb.size, &d, &err), PROTO_ERR_MISSING_FIELD);
    assert_string_equal(err.message, "digest: required field is missing");
    msgpack_sbuffer_destroy(&sb);

    /* status error without an error map */
    m.status = S("error");
    m.error_code = S("internal_error");
    m.error_message = S("x");
    msgpack_sbuffer_init(&sb);
    assert_int_equal(proto_encode_result(&sb, &m, NULL, 0), 0);
    p = memmem(sb.data, sb.size,
               "\xa5"
               "error\x82",
               7);
    assert_non_null(p);
    p[1] = 'E';
    assert_int_equal(proto_decode_result(dec, sb.data, sb.size, &d, &err), PROTO_ERR_MISSING_FIELD);
    assert_string_equal(err.message, "error: required field is missing");
    msgpack_sbuffer_destroy(&sb);
}

/* Both decodes of one body: same outcome, same sentence, same fields. */
static proto_err_t both_result_decodes(const void *body, size_t len, proto_result_t *head,
                                       proto_error_t *err)
{
    proto_result_t full;
    proto_error_t ferr;
    proto_err_t rc = proto_decode_result(dec, body, len, &full, &ferr);
    assert_int_equal(proto_decode_result_head(body, len, 0, head, err), rc);
    assert_int_equal(err->code, ferr.code);
    assert_string_equal(err->message, ferr.message);
    assert_null(head->result);
    if (rc == PROTO_OK) {
        assert_int_equal(head->job_id.len, full.job_id.len);
        assert_memory_equal(head->job_id.ptr, full.job_id.ptr, full.job_id.len);
        assert_int_equal(head->attempt, full.attempt);
        assert_int_equal(head->accepted_us, full.accepted_us);
        assert_int_equal(head->started_us, full.started_us);
        assert_int_equal(head->duration_us, full.duration_us);
        assert_int_equal(head->status.len, full.status.len);
        assert_int_equal(head->error_code.len, full.error_code.len);
        assert_int_equal(head->digest.len, full.digest.len);
    }
    return rc;
}

static void test_result_head_reads_the_top_level_without_the_result_map(void **state)
{
    /* A result map with nesting, floats, bin and ext deep inside. */
    body_t *rm = b_new();
    b_map(rm, 3);
    b_ku(rm, "score", 8750);
    b_str(rm, "items");
    b_arr(rm, 2);
    b_map(rm, 1);
    b_str(rm, "trace");
    b_raw(rm,
          "\x93\xcb\x3f\xf8\0\0\0\0\0\0\xc4\x02zz\xd6\x01"
          "abcd",
          20);
    b_nil(rm);
    b_str(rm, "big");
    b_raw(rm, "\xdc\x00\x03\xd3\xff\xff\xff\xff\xff\xff\xff\xff\x01\xcf\0\0\0\0\0\0\0\x02", 22);
    proto_result_t m = sample_result();
    m.status = S("ok");
    m.digest = S(HASH_B);
    m.attempt = 7;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(proto_encode_result(&sb, &m, rm->sb.data, rm->sb.size), 0);
    proto_result_t h;
    proto_error_t err;
    assert_int_equal(both_result_decodes(sb.data, sb.size, &h, &err), PROTO_OK);
    assert_true(proto_str_eq(h.job_id, "j-1"));
    assert_true(proto_str_eq(h.status, "ok"));
    assert_true(proto_str_eq(h.digest, HASH_B));
    assert_int_equal(h.attempt, 7);
    assert_int_equal(h.accepted_us, 1000);
    assert_int_equal(h.started_us, 2000);
    assert_int_equal(h.duration_us, 500);
    /* strings point into the caller's bytes */
    assert_true(h.job_id.ptr >= sb.data && h.job_id.ptr < sb.data + sb.size);

    /* Every truncation, and every single-byte change, gets the full decode's
     * answer (hostile bytes in the skipped result map included). */
    for (size_t cut = 0; cut < sb.size; cut++)
        assert_int_not_equal(both_result_decodes(sb.data, cut, &h, &err), PROTO_OK);
    for (size_t i = 0; i < sb.size; i++) {
        for (int v = 0; v < 256; v += 17) {
            char keep = sb.data[i];
            sb.data[i] = (char)v;
            (void)both_result_decodes(sb.data, sb.size, &h, &err);
            sb.data[i] = keep;
        }
    }
    /* Too large for the limit given. */
    assert_int_equal(proto_decode_result_head(sb.data, sb.size, 16, &h, &err), PROTO_ERR_TOO_LARGE);
    msgpack_sbuffer_destroy(&sb);
    b_free(rm);

    /* An error result: the error map is read (and checked) too. */
    m.status = S("error");
    m.error_code = S("invalid_response");
    m.error_message = S("q1: not a choice");
    msgpack_sbuffer_init(&sb);
    assert_int_equal(proto_encode_result(&sb, &m, NULL, 0), 0);
    assert_int_equal(both_result_decodes(sb.data, sb.size, &h, &err), PROTO_OK);
    assert_true(proto_str_eq(h.error_code, "invalid_response"));
    assert_true(proto_str_eq(h.error_message, "q1: not a choice"));
    char *p = memmem(sb.data, sb.size,
                     "\xa4"
                     "code",
                     5);
    assert_non_null(p);
    memcpy(p + 1, "message", 4); /* "mess": an unknown key, so code is missing */
    p[1] = 'x';
    assert_int_equal(both_result_decodes(sb.data, sb.size, &h, &err), PROTO_ERR_MISSING_FIELD);
    assert_string_equal(err.message, "error.code: required field is missing");
    msgpack_sbuffer_destroy(&sb);

    /* Hostile headers: a memory bomb, a non-map body, nesting too deep. */
    assert_int_equal(both_result_decodes("\xdd\xff\xff\xff\xff", 5, &h, &err), PROTO_ERR_MALFORMED);
    assert_int_equal(both_result_decodes("\x91\x01", 2, &h, &err), PROTO_ERR_NOT_MAP);
    char deep[40];
    deep[0] = (char)0x81;
    deep[1] = (char)0xa1;
    deep[2] = 'x';
    memset(deep + 3, 0x91, 36);
    deep[39] = 0x01;
    assert_int_equal(both_result_decodes(deep, sizeof deep, &h, &err), PROTO_ERR_TOO_LARGE);
    assert_int_equal(both_result_decodes("\x82\xa1v\x01\xa1v\x01", 7, &h, &err),
                     PROTO_ERR_MALFORMED);
    assert_string_equal(err.message, "body: duplicate key \"v\"");
    assert_int_equal(both_result_decodes("\x81\x01\x01", 3, &h, &err), PROTO_ERR_MALFORMED);
}

/* ---- JOBS and RESULTS ---------------------------------------------------- */

static void test_jobs_and_results_slice_the_elements_unchanged(void **state)
{
    /* Three JOB bodies of different sizes, back to back. */
    msgpack_sbuffer elems, sb;
    msgpack_sbuffer_init(&elems);
    size_t offs[4] = {0};
    for (int i = 0; i < 3; i++) {
        body_t *job = b_new();
        char id[16];
        snprintf(id, sizeof id, "job-%d", i);
        b_job(job, id, 0);
        assert_int_equal(proto_encode_job(&elems, (uint32_t)i + 1, 1000, 60000,
                                          i == 1 ? S(HASH_A) : proto_str(NULL), job->sb.data,
                                          job->sb.size),
                         0);
        offs[i + 1] = elems.size;
        b_free(job);
    }
    msgpack_sbuffer_init(&sb);
    assert_int_equal(proto_encode_jobs(&sb, elems.data, elems.size, 3), 0);
    proto_bytes_t items[4];
    uint32_t n = 0;
    proto_error_t err;
    assert_int_equal(proto_decode_jobs(sb.data, sb.size, 0, items, 4, &n, &err), PROTO_OK);
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(items[i].len, offs[i + 1] - offs[i]);
        assert_memory_equal(items[i].ptr, elems.data + offs[i], items[i].len);
        proto_jobmsg_t jm;
        assert_int_equal(proto_decode_job(dec, items[i].ptr, items[i].len, &jm, &err), PROTO_OK);
        assert_int_equal(jm.attempt, (uint32_t)i + 1);
    }
    /* More elements than the reader takes. */
    assert_int_equal(proto_decode_jobs(sb.data, sb.size, 0, items, 2, &n, &err),
                     PROTO_ERR_BATCH_TOO_LARGE);
    assert_string_equal(err.message, "jobs: 3 elements, the limit is 2");
    /* A JOBS is not a RESULTS. */
    assert_int_equal(proto_decode_results(sb.data, sb.size, 0, items, 4, &n, &err),
                     PROTO_ERR_MISSING_FIELD);
    assert_string_equal(err.message, "results: required field is missing");
    msgpack_sbuffer_destroy(&sb);

    /* RESULTS of two events: each element decodes as a RESULT. */
    proto_result_t m = sample_result();
    m.status = S("error");
    m.error_code = S("invalid_rubric");
    m.error_message = S("x");
    msgpack_sbuffer_clear(&elems);
    assert_int_equal(proto_encode_result(&elems, &m, NULL, 0), 0);
    size_t first = elems.size;
    m.status = S("ok");
    m.digest = S(HASH_B);
    assert_int_equal(proto_encode_result(&elems, &m, "\x81\xa1k\x01", 4), 0);
    msgpack_sbuffer_init(&sb);
    assert_int_equal(proto_encode_results(&sb, elems.data, elems.size, 2), 0);
    assert_int_equal(proto_decode_results(sb.data, sb.size, 0, items, 4, &n, &err), PROTO_OK);
    assert_int_equal(n, 2);
    assert_int_equal(items[0].len, first);
    assert_int_equal(items[1].len, elems.size - first);
    proto_result_t r;
    assert_int_equal(proto_decode_result_head(items[1].ptr, items[1].len, 0, &r, &err), PROTO_OK);
    assert_true(proto_str_eq(r.status, "ok"));
    assert_int_equal(proto_decode_result_head(items[0].ptr, items[0].len, 0, &r, &err), PROTO_OK);
    assert_true(proto_str_eq(r.error_code, "invalid_rubric"));
    msgpack_sbuffer_destroy(&sb);

    /* Encoders refuse what cannot be a batch. */
    msgpack_sbuffer_init(&sb);
    assert_int_equal(proto_encode_jobs(&sb, elems.data, elems.size, 0), -1);
    assert_int_equal(proto_encode_results(&sb, "\x91\x01", 2, 1), -1);
    assert_int_equal(proto_encode_results(&sb, elems.data, elems.size, PROTO_MAX_BATCH_ITEMS + 1),
                     -1);
    assert_int_equal(sb.size, 0);
    msgpack_sbuffer_destroy(&sb);
    msgpack_sbuffer_destroy(&elems);
}

typedef struct each_seen {
    uint32_t n, bad;
    proto_bytes_t elems[4];
    proto_result_t heads[4];
    char first_error[256];
} each_seen_t;

static void each_record(void *arg, proto_bytes_t elem, proto_err_t rc, const proto_result_t *head,
                        const proto_error_t *eerr)
{
    each_seen_t *s = arg;
    assert_true(s->n < 4);
    s->elems[s->n] = elem;
    if (rc == PROTO_OK) {
        s->heads[s->n] = *head;
    } else {
        if (!s->bad)
            snprintf(s->first_error, sizeof s->first_error, "%s", eerr->message);
        s->bad++;
    }
    s->n++;
}

static void test_results_each_reads_every_element_like_the_head_decode(void **state)
{
    proto_result_t m = sample_result();
    m.status = S("ok");
    m.digest = S(HASH_B);
    msgpack_sbuffer elems, sb;
    msgpack_sbuffer_init(&elems);
    assert_int_equal(proto_encode_result(&elems, &m, "\x81\xa1k\x92\x01\xa1x", 7), 0);
    size_t one = elems.size;
    /* a map that is not a valid RESULT: only this element is refused */
    msgpack_sbuffer_write(&elems, "\x81\xa1v\x02", 4);
    m.attempt = 5;
    assert_int_equal(proto_encode_result(&elems, &m, "\x80", 1), 0);
    msgpack_sbuffer_init(&sb);
    assert_int_equal(proto_encode_results(&sb, elems.data, elems.size, 3), 0);
    proto_error_t err;
    each_seen_t seen = {0};
    assert_int_equal(proto_decode_results_each(sb.data, sb.size, 0, 8, each_record, &seen, &err),
                     PROTO_OK);
    assert_int_equal(seen.n, 3);
    assert_int_equal(seen.bad, 1);
    assert_string_equal(seen.first_error, "v: 2 is not a known version (1)");
    assert_int_equal(seen.elems[0].len, one);
    assert_memory_equal(seen.elems[0].ptr, elems.data, one);
    assert_int_equal(seen.heads[0].attempt, 1);
    assert_int_equal(seen.heads[2].attempt, 5);
    /* the same as the head decode of each element on its own */
    for (uint32_t i = 0; i < 3; i += 2) {
        proto_result_t h;
        assert_int_equal(proto_decode_result_head(seen.elems[i].ptr, seen.elems[i].len, 0, &h, &err),
                         PROTO_OK);
        assert_int_equal(h.attempt, seen.heads[i].attempt);
        assert_true(h.job_id.ptr == seen.heads[i].job_id.ptr);
    }
    /* a refused message calls nobody */
    memset(&seen, 0, sizeof seen);
    assert_int_equal(proto_decode_results_each(sb.data, sb.size - 1, 0, 8, each_record, &seen,
                                               &err),
                     PROTO_ERR_MALFORMED);
    assert_int_equal(proto_decode_results_each(sb.data, sb.size, 0, 2, each_record, &seen, &err),
                     PROTO_ERR_BATCH_TOO_LARGE);
    assert_int_equal(seen.n, 0);
    msgpack_sbuffer_destroy(&sb);

    /* An element that is not a map is that element's error; the ones after
     * it are still read, each with its exact bytes. */
    msgpack_sbuffer_clear(&elems);
    msgpack_sbuffer_write(&elems, "\x92\x01\xa1x", 4);
    m.attempt = 9;
    assert_int_equal(proto_encode_result(&elems, &m, "\x81\xa1k\x01", 4), 0);
    msgpack_sbuffer_init(&sb);
    /* the proto_encode_results contract wants a map first: build by hand */
    msgpack_sbuffer_write(&sb, "\x81\xa7results\x92", 10);
    msgpack_sbuffer_write(&sb, elems.data, elems.size);
    memset(&seen, 0, sizeof seen);
    proto_bytes_t items[4];
    uint32_t n;
    assert_int_equal(proto_decode_results(sb.data, sb.size, 0, items, 4, &n, &err),
                     PROTO_ERR_NOT_MAP);
    assert_int_equal(proto_decode_results_each(sb.data, sb.size, 0, 8, each_record, &seen, &err),
                     PROTO_OK);
    assert_int_equal(seen.n, 2);
    assert_int_equal(seen.bad, 1);
    assert_string_equal(seen.first_error, "results[0]: expected a map, got an array");
    assert_int_equal(seen.elems[0].len, 4);
    assert_int_equal(seen.elems[1].len, elems.size - 4);
    assert_memory_equal(seen.elems[1].ptr, elems.data + 4, elems.size - 4);
    assert_int_equal(seen.heads[1].attempt, 9);
    msgpack_sbuffer_destroy(&sb);
    msgpack_sbuffer_destroy(&elems);
}

static void test_batches_are_validated(void **state)
{
    proto_bytes_t items[8];
    uint32_t n = 7;
    proto_error_t err;
    static const struct {
        const char *raw;
        size_t len;
        proto_err_t want;
        const char *message;
    } cases[] = {
        {"\x81\xa4jobs\x90", 7, PROTO_ERR_BAD_VALUE, "jobs: empty, a JOBS carries 1..10000"},
        {"\x81\xa4jobs\x80", 7, PROTO_ERR_WRONG_TYPE, "jobs: expected an array, got a map"},
        {"\x81\xa4jobs\x92\x80\x01", 9, PROTO_ERR_NOT_MAP,
         "jobs[1]: expected a map, got an integer"},
        {"\x81\xa4jobs\xc0", 7, PROTO_ERR_MISSING_FIELD, "jobs: required field is missing"},
        {"\x82\xa4jobs\x91\x80\xa4jobs\x91\x80", 15, PROTO_ERR_MALFORMED,
         "body: duplicate key \"jobs\""},
        {"\x81\x01\x91\x80", 4, PROTO_ERR_MALFORMED,
         "body: key #0 is an integer; keys must be strings"},
        {"\x91\x80", 2, PROTO_ERR_NOT_MAP, "body: expected a map, got an array"},
        {"\x81\xa4jobs\xdd\xff\xff\xff\xff", 11, PROTO_ERR_MALFORMED, NULL}, /* bomb */
        {"\x81\xa4jobs\x91\x81", 8, PROTO_ERR_MALFORMED, NULL},              /* truncated */
        {"\x81\xa4jobs\x91\x80\x00", 9, PROTO_ERR_MALFORMED, NULL},          /* trailing */
        {"", 0, PROTO_ERR_MALFORMED, NULL},
        /* unknown keys are ignored; an element's own fields are not checked here */
        {"\x82\xa1x\xc4\x00\xa4jobs\x91\x81\xa1z\x01", 15, PROTO_OK, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        proto_err_t rc = proto_decode_jobs(cases[i].raw, cases[i].len, 0, items, 8, &n, &err);
        if (rc != cases[i].want)
            fail_msg("case %zu: got %s (%s)", i, proto_err_code(rc), err.message);
        if (cases[i].message)
            assert_string_equal(err.message, cases[i].message);
        if (rc != PROTO_OK)
            assert_int_equal(n, 0);
    }
    assert_int_equal(n, 1);
    assert_int_equal(items[0].len, 4);
    /* Nesting past the limit inside an element. */
    char deep[48];
    memcpy(deep, "\x81\xa4jobs\x91", 7);
    memset(deep + 7, 0x91, 40);
    deep[47] = 0x01;
    assert_int_equal(proto_decode_jobs(deep, sizeof deep, 0, items, 8, &n, &err),
                     PROTO_ERR_TOO_LARGE);
    /* The size limit is checked first. */
    assert_int_equal(proto_decode_results("\x81\xa7results\x91\x80", 11, 4, items, 8, &n, &err),
                     PROTO_ERR_TOO_LARGE);
    /* Every truncation of a valid RESULTS fails without reading past it. */
    const char ok[] = "\x81\xa7results\x92\x81\xa1v\x01\x80";
    for (size_t cut = 0; cut < sizeof ok - 1; cut++)
        assert_int_not_equal(proto_decode_results(ok, cut, 0, items, 8, &n, &err), PROTO_OK);
    assert_int_equal(proto_decode_results(ok, sizeof ok - 1, 0, items, 8, &n, &err), PROTO_OK);
    assert_int_equal(n, 2);
}

static void test_submit_batch_results_flag(void **state)
{
    body_t *job = b_new();
    b_job(job, "j1", 0);
    const msgpack_sbuffer *maps[1] = {&job->sb};
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    proto_submit_t m;
    proto_error_t err;
    /* Without it: the bytes of proto_encode_submit, and the flag reads 0. */
    assert_int_equal(proto_encode_submit(&sb, 3, maps, 1), 0);
    msgpack_sbuffer plain;
    msgpack_sbuffer_init(&plain);
    assert_int_equal(proto_encode_submit_opt(&plain, 3, 0, maps, 1), 0);
    assert_int_equal(plain.size, sb.size);
    assert_memory_equal(plain.data, sb.data, sb.size);
    assert_int_equal(proto_decode_submit(dec, sb.data, sb.size, &m, &err), PROTO_OK);
    assert_int_equal(m.batch_results, 0);
    msgpack_sbuffer_destroy(&plain);
    msgpack_sbuffer_clear(&sb);
    assert_int_equal(proto_encode_submit_opt(&sb, 3, 1, maps, 1), 0);
    assert_int_equal(proto_decode_submit(dec, sb.data, sb.size, &m, &err), PROTO_OK);
    assert_int_equal(m.batch_results, 1);
    assert_int_equal(m.njobs, 1);
    msgpack_sbuffer_destroy(&sb);
    b_free(job);
    /* Not a boolean: the whole SUBMIT is refused. */
    body_t *b = submit_one_job_start(0);
    msgpack_sbuffer_clear(&b->sb);
    b_map(b, 2);
    b_str(b, "jobs");
    b_arr(b, 1);
    b_job(b, "j1", 0);
    b_ku(b, "batch_results", 1);
    assert_int_equal(proto_decode_submit(dec, b->sb.data, b->sb.size, &m, &err),
                     PROTO_ERR_WRONG_TYPE);
    assert_string_equal(err.message, "batch_results: expected a boolean, got an integer");
    b_free(b);
}

static void test_accepted_state_must_be_known(void **state)
{
    body_t *b = b_new();
    b_map(b, 2);
    b_ku(b, "seq", 1);
    b_str(b, "jobs");
    b_arr(b, 1);
    b_map(b, 3);
    b_kv(b, "job_id", "a");
    b_kv(b, "state", "lost");
    b_str(b, "duplicate");
    msgpack_pack_false(&b->pk);
    proto_accepted_t d;
    proto_error_t err;
    assert_int_equal(proto_decode_accepted(dec, b->sb.data, b->sb.size, &d, &err),
                     PROTO_ERR_BAD_VALUE);
    assert_string_equal(err.message, "jobs[0].state: \"lost\" is not one of queued, running, done");
    b_free(b);
}

/* ---- Decoder memory ------------------------------------------------------ */

static void test_decoded_strings_outlive_the_callers_buffer(void **state)
{
    body_t *b = submit_body(2);
    char *copy = malloc(b->sb.size);
    assert_non_null(copy);
    memcpy(copy, b->sb.data, b->sb.size);
    proto_submit_t m;
    proto_error_t err;
    assert_int_equal(proto_decode_submit(dec, copy, b->sb.size, &m, &err), PROTO_OK);
    memset(copy, 0, b->sb.size);
    free(copy);
    assert_true(proto_str_eq(m.jobs[1].job_id, "job-1"));
    assert_true(proto_str_eq(m.jobs[1].tenant, "acme"));
    b_free(b);
}

static void test_decoder_is_reusable_across_sizes(void **state)
{
    proto_submit_t m;
    proto_error_t err;
    for (int round = 0; round < 3; round++) {
        body_t *big = submit_body(500);
        assert_int_equal(proto_decode_submit(dec, big->sb.data, big->sb.size, &m, &err), PROTO_OK);
        assert_int_equal(m.njobs, 500);
        b_free(big);
        body_t *small = submit_body(1);
        assert_int_equal(proto_decode_submit(dec, small->sb.data, small->sb.size, &m, &err),
                         PROTO_OK);
        assert_int_equal(m.njobs, 1);
        assert_true(proto_str_eq(m.jobs[0].job_id, "job-0"));
        b_free(small);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commands_parse_and_print),
        cmocka_unit_test(test_signature_is_exactly_scl1),
        cmocka_unit_test(test_every_error_has_a_sentence_and_a_wire_code),
        cmocka_unit_test(test_str_helpers),
        cmocka_unit_test(test_submit_round_trip_keeps_every_field),
        cmocka_unit_test(test_minimal_submit_matches_the_documented_bytes),
        cmocka_unit_test(test_accepted_round_trip),
        cmocka_unit_test(test_rejected_round_trip),
        cmocka_unit_test(test_rejected_long_message_is_cut_on_a_utf8_boundary),
        cmocka_unit_test(test_ready_round_trip),
        cmocka_unit_test(test_job_round_trip_splices_the_job_map_unchanged),
        cmocka_unit_test(test_heartbeat_and_disconnect_round_trip),
        cmocka_unit_test(test_cancel_round_trip_and_requires_job_id),
        cmocka_unit_test(test_result_ok_round_trip_splices_result_map),
        cmocka_unit_test(test_result_error_round_trip),
        cmocka_unit_test(test_encoders_refuse_to_splice_what_is_not_one_map),
        cmocka_unit_test(test_rejects_body_over_max_body_before_unpacking),
        cmocka_unit_test(test_rejects_bytes_that_are_not_msgpack),
        cmocka_unit_test(test_rejects_every_truncated_prefix_of_a_submit),
        cmocka_unit_test(test_rejects_trailing_bytes_after_the_body),
        cmocka_unit_test(test_rejects_a_body_that_is_not_a_map),
        cmocka_unit_test(test_rejects_non_string_and_duplicate_keys),
        cmocka_unit_test(test_submit_without_jobs_array_fails_the_message),
        cmocka_unit_test(test_submit_with_empty_batch_is_rejected),
        cmocka_unit_test(test_submit_with_too_many_jobs_is_rejected),
        cmocka_unit_test(test_memory_bomb_headers_are_refused_without_allocating),
        cmocka_unit_test(test_nesting_deeper_than_the_limit_is_refused),
        cmocka_unit_test(test_bad_jobs_in_a_batch_leave_valid_jobs_intact),
        cmocka_unit_test(test_rubric_hash_must_be_64_lowercase_hex),
        cmocka_unit_test(test_ids_and_names_are_length_checked),
        cmocka_unit_test(test_ids_must_be_utf8_without_control_characters),
        cmocka_unit_test(test_ttr_ms_is_range_checked),
        cmocka_unit_test(test_responses_are_checked),
        cmocka_unit_test(test_error_sentences_name_the_field_exactly),
        cmocka_unit_test(test_non_string_key_in_a_job_fails_only_that_job),
        cmocka_unit_test(test_unknown_keys_are_ignored),
        cmocka_unit_test(test_nil_optional_fields_count_as_absent),
        cmocka_unit_test(test_job_from_object_works_without_a_path),
        cmocka_unit_test(test_ready_is_validated),
        cmocka_unit_test(test_job_message_is_validated),
        cmocka_unit_test(test_result_is_validated),
        cmocka_unit_test(test_result_head_reads_the_top_level_without_the_result_map),
        cmocka_unit_test(test_jobs_and_results_slice_the_elements_unchanged),
        cmocka_unit_test(test_batches_are_validated),
        cmocka_unit_test(test_results_each_reads_every_element_like_the_head_decode),
        cmocka_unit_test(test_submit_batch_results_flag),
        cmocka_unit_test(test_accepted_state_must_be_known),
        cmocka_unit_test(test_decoded_strings_outlive_the_callers_buffer),
        cmocka_unit_test(test_decoder_is_reusable_across_sizes),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
