/*
 * fuzz_proto.c - libFuzzer harness for the SCL1 body decoders (proto/).
 *
 * Every input is fed to every decoder. A body that decodes is re-encoded and
 * decoded again, which must succeed: the encoders and decoders agree on what
 * a valid message is. Crashes, sanitizer reports and broken round trips are
 * findings. Build and run by hand (see tests/fuzz/README.md):
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. tests/fuzz/fuzz_proto.c \
 *       proto/proto.c $(pkg-config --cflags --libs msgpack) -o /tmp/fuzz_proto
 *   /tmp/fuzz_proto -max_total_time=30 tests/fuzz/corpus/proto
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "proto/proto.h"

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

static proto_decoder_t *dec, *redec;

/* Pack a decoded object on its own, for splicing. */
static void pack_object(msgpack_sbuffer *sb, const msgpack_object *o)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, sb, msgpack_sbuffer_write);
    CHECK(msgpack_pack_object(&pk, *o) == 0);
}

static void check_submit(const uint8_t *data, size_t size)
{
    proto_submit_t m;
    proto_error_t err;
    if (proto_decode_submit(dec, data, size, &m, &err) != PROTO_OK) {
        CHECK(err.code != PROTO_OK && err.message[0] != '\0');
        return;
    }
    CHECK(m.njobs >= 1 && m.njobs <= PROTO_MAX_BATCH);
    msgpack_sbuffer *maps[8];
    size_t n = 0;
    for (uint32_t i = 0; i < m.njobs && n < 8; i++) {
        if (m.jobs[i].err.code != PROTO_OK) {
            CHECK(m.jobs[i].err.message[0] != '\0');
            continue;
        }
        CHECK(m.jobs[i].job_id.len >= 1 && m.jobs[i].job_id.len <= PROTO_MAX_JOB_ID);
        maps[n] = msgpack_sbuffer_new();
        CHECK(proto_encode_job_record(maps[n], &m.jobs[i]) == 0);
        n++;
    }
    if (n == 0)
        return;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    CHECK(proto_encode_submit(&sb, m.seq, (const msgpack_sbuffer *const *)maps, n) == 0);
    proto_submit_t again;
    CHECK(proto_decode_submit(redec, sb.data, sb.size, &again, &err) == PROTO_OK);
    CHECK(again.njobs == n && again.seq == m.seq);
    for (uint32_t i = 0; i < again.njobs; i++)
        CHECK(again.jobs[i].err.code == PROTO_OK);
    msgpack_sbuffer_destroy(&sb);
    for (size_t i = 0; i < n; i++)
        msgpack_sbuffer_free(maps[i]);
}

static void check_accepted(const uint8_t *data, size_t size)
{
    proto_accepted_t m, again;
    proto_error_t err;
    if (proto_decode_accepted(dec, data, size, &m, &err) != PROTO_OK)
        return;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    CHECK(proto_encode_accepted(&sb, &m) == 0);
    CHECK(proto_decode_accepted(redec, sb.data, sb.size, &again, &err) == PROTO_OK);
    CHECK(again.njobs == m.njobs && again.seq == m.seq);
    msgpack_sbuffer_destroy(&sb);
}

static void check_rejected(const uint8_t *data, size_t size)
{
    proto_rejected_t m, again;
    proto_error_t err;
    if (proto_decode_rejected(dec, data, size, &m, &err) != PROTO_OK)
        return;
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    CHECK(proto_encode_rejected(&sb, &m) == 0);
    CHECK(proto_decode_rejected(redec, sb.data, sb.size, &again, &err) == PROTO_OK);
    CHECK(again.njobs == m.njobs && again.message.len == m.message.len);
    msgpack_sbuffer_destroy(&sb);
}

static void check_ready(const uint8_t *data, size_t size)
{
    proto_ready_t m, again;
    proto_error_t err;
    if (proto_decode_ready(dec, data, size, &m, &err) != PROTO_OK)
        return;
    CHECK(m.credit >= 1 && m.credit <= PROTO_MAX_CREDIT);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    CHECK(proto_encode_ready(&sb, &m) == 0);
    CHECK(proto_decode_ready(redec, sb.data, sb.size, &again, &err) == PROTO_OK);
    CHECK(again.credit == m.credit && again.worker.len == m.worker.len);
    msgpack_sbuffer_destroy(&sb);
}

static void check_job(const uint8_t *data, size_t size)
{
    proto_jobmsg_t m, again;
    proto_error_t err;
    if (proto_decode_job(dec, data, size, &m, &err) != PROTO_OK)
        return;
    msgpack_sbuffer job, sb;
    msgpack_sbuffer_init(&job);
    msgpack_sbuffer_init(&sb);
    pack_object(&job, m.job.raw);
    CHECK(proto_encode_job(&sb, m.attempt, m.accepted_us, m.ttr_ms, m.rubric_hash, job.data,
                           job.size) == 0);
    CHECK(proto_decode_job(redec, sb.data, sb.size, &again, &err) == PROTO_OK);
    CHECK(again.attempt == m.attempt && again.job.job_id.len == m.job.job_id.len);
    msgpack_sbuffer_destroy(&sb);
    msgpack_sbuffer_destroy(&job);
}

static void check_result(const uint8_t *data, size_t size)
{
    proto_result_t m, again, head;
    proto_error_t err, herr;
    proto_err_t rc = proto_decode_result(dec, data, size, &m, &err);
    /* The shallow decode the broker uses agrees with the full one. */
    CHECK(proto_decode_result_head(data, size, 1024 * 1024, &head, &herr) == rc);
    CHECK(herr.code == err.code && strcmp(herr.message, err.message) == 0);
    CHECK(head.result == NULL);
    if (rc != PROTO_OK)
        return;
    CHECK(head.attempt == m.attempt && head.job_id.len == m.job_id.len &&
          memcmp(head.job_id.ptr, m.job_id.ptr, m.job_id.len) == 0 &&
          head.accepted_us == m.accepted_us && head.duration_us == m.duration_us &&
          head.status.len == m.status.len && head.error_code.len == m.error_code.len);
    msgpack_sbuffer res, sb;
    msgpack_sbuffer_init(&res);
    msgpack_sbuffer_init(&sb);
    if (m.result && proto_str_eq(m.status, "ok"))
        pack_object(&res, m.result);
    CHECK(proto_encode_result(&sb, &m, res.size ? res.data : NULL, res.size) == 0);
    CHECK(proto_decode_result(redec, sb.data, sb.size, &again, &err) == PROTO_OK);
    CHECK(again.duration_us == m.duration_us && again.status.len == m.status.len);
    msgpack_sbuffer_destroy(&sb);
    msgpack_sbuffer_destroy(&res);
}

/* proto_decode_results_each: each element's outcome is that of the head
 * decode of the element alone (a non-map element: its own error), and the
 * elements lie back to back. */
typedef struct each_state {
    const uint8_t *next;
    uint32_t n;
} each_state_t;

static void each_agrees(void *arg, proto_bytes_t elem, proto_err_t rc, const proto_result_t *head,
                        const proto_error_t *eerr)
{
    each_state_t *st = arg;
    proto_result_t alone;
    proto_error_t aerr;
    CHECK(!st->next || elem.ptr == st->next);
    st->next = elem.ptr + elem.len;
    st->n++;
    proto_err_t arc = proto_decode_result_head(elem.ptr, elem.len, 0, &alone, &aerr);
    if (rc == PROTO_ERR_NOT_MAP && arc == PROTO_ERR_NOT_MAP)
        return; /* the sentences differ: "results[i]" vs "body" */
    CHECK(arc == rc);
    CHECK(aerr.code == eerr->code && strcmp(aerr.message, eerr->message) == 0);
    CHECK(rc != PROTO_OK ||
          (alone.attempt == head->attempt && alone.job_id.ptr == head->job_id.ptr));
}

/* JOBS / RESULTS: the elements lie inside the body, back to back, and
 * re-encoded they give the same elements again. */
static void check_batch(const uint8_t *data, size_t size, int results)
{
    static proto_bytes_t items[PROTO_MAX_BATCH_ITEMS], again[PROTO_MAX_BATCH_ITEMS];
    uint32_t n = 0, n2 = 0;
    proto_error_t err;
    proto_err_t rc =
        results
            ? proto_decode_results(data, size, 1024 * 1024, items, PROTO_MAX_BATCH_ITEMS, &n, &err)
            : proto_decode_jobs(data, size, 1024 * 1024, items, PROTO_MAX_BATCH_ITEMS, &n, &err);
    if (rc != PROTO_OK) {
        CHECK(n == 0 && err.code != PROTO_OK && err.message[0] != '\0');
        if (results) {
            /* _each refuses the same messages, except for elements that are
             * not maps, which it reports one by one. */
            each_state_t st = {NULL, 0};
            proto_error_t eerr;
            proto_err_t erc = proto_decode_results_each(
                data, size, 1024 * 1024, PROTO_MAX_BATCH_ITEMS, each_agrees, &st, &eerr);
            CHECK(erc == rc || (rc == PROTO_ERR_NOT_MAP && erc == PROTO_OK && st.n > 0));
            if (erc == rc)
                CHECK(strcmp(eerr.message, err.message) == 0 && st.n == 0);
        }
        return;
    }
    CHECK(n >= 1 && n <= PROTO_MAX_BATCH_ITEMS);
    if (results) {
        each_state_t st = {NULL, 0};
        CHECK(proto_decode_results_each(data, size, 1024 * 1024, PROTO_MAX_BATCH_ITEMS, each_agrees,
                                        &st, &err) == PROTO_OK);
        CHECK(st.n == n && st.next == items[n - 1].ptr + items[n - 1].len);
    }
    for (uint32_t i = 0; i < n; i++) {
        CHECK(items[i].ptr >= data && items[i].ptr + items[i].len <= data + size);
        CHECK(i == 0 || items[i].ptr == items[i - 1].ptr + items[i - 1].len);
    }
    size_t span = (size_t)(items[n - 1].ptr + items[n - 1].len - items[0].ptr);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    CHECK((results ? proto_encode_results(&sb, items[0].ptr, span, n)
                   : proto_encode_jobs(&sb, items[0].ptr, span, n)) == 0);
    CHECK((results
               ? proto_decode_results(sb.data, sb.size, 0, again, PROTO_MAX_BATCH_ITEMS, &n2, &err)
               : proto_decode_jobs(sb.data, sb.size, 0, again, PROTO_MAX_BATCH_ITEMS, &n2, &err)) ==
          PROTO_OK);
    CHECK(n2 == n);
    for (uint32_t i = 0; i < n; i++)
        CHECK(again[i].len == items[i].len &&
              memcmp(again[i].ptr, items[i].ptr, items[i].len) == 0);
    msgpack_sbuffer_destroy(&sb);
}

static void check_small(const uint8_t *data, size_t size)
{
    proto_heartbeat_t hb, hb2;
    proto_disconnect_t dc, dc2;
    proto_error_t err;
    msgpack_sbuffer sb;
    if (proto_decode_heartbeat(dec, data, size, &hb, &err) == PROTO_OK) {
        msgpack_sbuffer_init(&sb);
        CHECK(proto_encode_heartbeat(&sb, &hb) == 0);
        CHECK(proto_decode_heartbeat(redec, sb.data, sb.size, &hb2, &err) == PROTO_OK);
        CHECK(hb2.inflight == hb.inflight);
        msgpack_sbuffer_destroy(&sb);
    }
    if (proto_decode_disconnect(dec, data, size, &dc, &err) == PROTO_OK) {
        msgpack_sbuffer_init(&sb);
        CHECK(proto_encode_disconnect(&sb, &dc) == 0);
        CHECK(proto_decode_disconnect(redec, sb.data, sb.size, &dc2, &err) == PROTO_OK);
        msgpack_sbuffer_destroy(&sb);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dec) {
        dec = proto_decoder_new(1024 * 1024);
        redec = proto_decoder_new(0);
        CHECK(dec && redec);
    }
    proto_cmd_t cmd;
    (void)proto_cmd_parse(data, size < 16 ? size : 16, &cmd);
    (void)proto_signature_ok(data, size);
    check_submit(data, size);
    check_accepted(data, size);
    check_rejected(data, size);
    check_ready(data, size);
    check_job(data, size);
    check_result(data, size);
    check_batch(data, size, 0);
    check_batch(data, size, 1);
    check_small(data, size);
    return 0;
}
