/*
 * fuzz_attempt.c - libFuzzer harness for the CLI's attempt loader
 * (cli/attempt.c: attempt file JSON -> job record, proto/ATTEMPT.md).
 *
 * Invariants:
 *  - a refused file has a code and a sentence;
 *  - an accepted file always becomes a job record, and that record, sent in a
 *    SUBMIT, is accepted by the broker's decoder (the CLI validates what the
 *    broker validates, so a bad file is refused with the file's own path and
 *    never by the broker) with the same job id, tenant, candidate, rubric and
 *    hash;
 *  - the responses are packed deterministically (twice the same bytes, map
 *    keys sorted bytewise) and read back as the same JSON values.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cli/attempt.h"
#include "common/jsonmp.h"
#include "proto/proto.h"
#include "tests/fuzz/fuzz_common.h"

static proto_decoder_t *dec;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    dec = proto_decoder_new(0);
    CHECK(dec);
    return 0;
}

static int str_is(proto_str_t s, const char *c)
{
    return c ? s.len == strlen(c) && memcmp(s.ptr, c, s.len) == 0 : s.len == 0;
}

/* Map keys sorted bytewise (shorter prefix first), at every level. */
static void check_sorted(const msgpack_object *o)
{
    if (o->type == MSGPACK_OBJECT_ARRAY) {
        for (uint32_t i = 0; i < o->via.array.size; i++)
            check_sorted(&o->via.array.ptr[i]);
    } else if (o->type == MSGPACK_OBJECT_MAP) {
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            CHECK(kv->key.type == MSGPACK_OBJECT_STR);
            if (i) {
                const msgpack_object_str *p = &o->via.map.ptr[i - 1].key.via.str,
                                         *k = &kv->key.via.str;
                uint32_t n = p->size < k->size ? p->size : k->size;
                int c = memcmp(p->ptr, k->ptr, n);
                CHECK(c < 0 || (c == 0 && p->size < k->size));
            }
            check_sorted(&kv->val);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    attempt_t a;
    attempt_error_t e;
    attempt_err_t rc = attempt_parse((const char *)data, size, &a, &e);
    if (rc != ATTEMPT_OK) {
        CHECK(e.code == rc && e.message[0] != '\0');
        CHECK(a.root == NULL);
        return 0;
    }
    CHECK(a.responses && json_is_object(a.responses));

    /* responses: packed twice, same bytes */
    msgpack_sbuffer r1, r2;
    msgpack_sbuffer_init(&r1);
    msgpack_sbuffer_init(&r2);
    CHECK(attempt_pack_responses(&a, &r1, &e) == ATTEMPT_OK);
    CHECK(attempt_pack_responses(&a, &r2, &e) == ATTEMPT_OK);
    CHECK(r1.size == r2.size && memcmp(r1.data, r2.data, r1.size) == 0);
    msgpack_sbuffer_destroy(&r2);

    /* job record -> SUBMIT -> the broker's decoder */
    attempt_job_opts_t opts = {.job_id = "fuzz-job", .tenant = "fuzz", .rubric = "fuzz-rubric"};
    msgpack_sbuffer job;
    msgpack_sbuffer_init(&job);
    rc = attempt_to_job_record(&a, &opts, &job, &e);
    if (rc != ATTEMPT_OK) {
        fprintf(stderr, "accepted attempt without a job record: %s: %s\n", e.path, e.message);
        CHECK(rc == ATTEMPT_OK);
    }
    msgpack_sbuffer body;
    msgpack_sbuffer_init(&body);
    const msgpack_sbuffer *maps[1] = {&job};
    CHECK(proto_encode_submit(&body, 7, maps, 1) == 0);
    proto_submit_t m;
    proto_error_t pe;
    proto_err_t prc = proto_decode_submit(dec, body.data, body.size, &m, &pe);
    if (prc == PROTO_OK && m.jobs[0].err.code != PROTO_OK) {
        prc = m.jobs[0].err.code;
        pe = m.jobs[0].err;
    }
    if (prc != PROTO_OK) {
        fprintf(stderr, "the CLI accepts an attempt the broker refuses: %s: %s\n",
                proto_err_code(prc), pe.message);
        CHECK(prc == PROTO_OK);
    }
    CHECK(m.njobs == 1 && m.seq == 7);
    const proto_job_t *j = &m.jobs[0];
    CHECK(str_is(j->job_id, a.job_id ? a.job_id : opts.job_id));
    CHECK(str_is(j->tenant, a.tenant ? a.tenant : opts.tenant));
    CHECK(str_is(j->rubric, a.rubric ? a.rubric : opts.rubric));
    CHECK(str_is(j->candidate, a.candidate));
    CHECK(str_is(j->rubric_hash, a.rubric_hash));
    CHECK(j->responses && j->responses->type == MSGPACK_OBJECT_MAP);
    check_sorted(j->responses);

    /* the same responses bytes in the record, and the same JSON values back */
    msgpack_sbuffer again;
    msgpack_sbuffer_init(&again);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &again, msgpack_sbuffer_write);
    CHECK(msgpack_pack_object(&pk, *j->responses) == 0);
    CHECK(again.size == r1.size && memcmp(again.data, r1.data, r1.size) == 0);
    json_t *back = jsonmp_to_json(j->responses);
    CHECK(back);
    if (!json_equal(back, a.responses)) {
        char *x = json_dumps(back, JSON_COMPACT | JSON_ENCODE_ANY);
        fprintf(stderr, "responses changed on the way: %s\n", x ? x : "?");
        free(x);
        CHECK(0);
    }
    json_decref(back);

    msgpack_sbuffer_destroy(&again);
    msgpack_sbuffer_destroy(&body);
    msgpack_sbuffer_destroy(&job);
    msgpack_sbuffer_destroy(&r1);
    attempt_clear(&a);
    CHECK(a.root == NULL);
    return 0;
}
