/*
 * fuzz_grade_common.h - grading a fuzz input through the public API, shared
 * by fuzz_grade, fuzz_date and fuzz_quantity (each with its own rubric).
 *
 * fuzz_grader_init loads a rubric once and finds the items that take a
 * string response (it grades {"item": "sample"} for each item and keeps those
 * that accept it). fuzz_grader_run then grades two responses maps per input:
 *
 *   1. every string-taking item answered with the input bytes as its text
 *      (this reaches the quantity and date parsers, entity matching and the
 *      text normaliser the way a candidate's answer does);
 *   2. the input itself as the msgpack responses value of a JOB, decoded
 *      the way a worker decodes it (proto_decode_job, with its bounded
 *      pre-scan), when the JOB decodes.
 *
 * Invariants: (1) always grades (any bytes are a valid text answer up to the
 * 1 MiB limit, invalid UTF-8 included); a refusal carries a code, a path or
 * sentence, and only the documented codes; every success grades again to
 * the same bytes and digest (determinism), and its explanation renders.
 */
#ifndef SCORELINE_FUZZ_GRADE_COMMON_H
#define SCORELINE_FUZZ_GRADE_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grading/grading.h"
#include "proto/proto.h"
#include "tests/fuzz/fuzz_common.h"

typedef struct fuzz_grader {
    proto_decoder_t *dec;
    grading_rubric_t *rubric;
    char **text_items; /* ids of items that take a string */
    size_t n_text_items;
} fuzz_grader_t;

static inline void fuzz_pack_str(msgpack_packer *pk, const void *s, size_t n)
{
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

/* Grade a packed responses map; rc and result out. */
static inline grading_err_t fuzz_grade_packed(const grading_rubric_t *r, const char *buf,
                                              size_t len, grading_result_t *res, grading_error_t *e)
{
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    CHECK(msgpack_unpack_next(&up, buf, len, &off) == MSGPACK_UNPACK_SUCCESS);
    grading_err_t rc = grading_grade(r, &up.data, res, e);
    msgpack_unpacked_destroy(&up);
    return rc;
}

static inline void fuzz_grader_init(fuzz_grader_t *g, const char *rubric_json, size_t len)
{
    memset(g, 0, sizeof *g);
    g->dec = proto_decoder_new(0);
    CHECK(g->dec);
    grading_error_t e;
    if (grading_rubric_load_json(rubric_json, len, &g->rubric, &e) != GRADING_OK) {
        fprintf(stderr, "fuzz: rubric refused: %s: %s\n", e.path, e.message);
        abort();
    }
    json_error_t je;
    json_t *root = json_loadb(rubric_json, len, 0, &je);
    CHECK(root);
    json_t *items = json_object_get(root, "items");
    g->text_items = calloc(json_array_size(items) + 1, sizeof *g->text_items);
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        const char *id = json_string_value(json_object_get(it, "id"));
        msgpack_sbuffer sb;
        msgpack_sbuffer_init(&sb);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 1);
        fuzz_pack_str(&pk, id, strlen(id));
        fuzz_pack_str(&pk, "sample answer 42", 16);
        grading_result_t res;
        if (fuzz_grade_packed(g->rubric, sb.data, sb.size, &res, &e) == GRADING_OK) {
            g->text_items[g->n_text_items++] = strdup(id);
            grading_result_free(&res);
        }
        msgpack_sbuffer_destroy(&sb);
    }
    json_decref(root);
    CHECK(g->n_text_items > 0);
}

/* Grade twice; the two runs must agree. Returns the code. */
static inline grading_err_t fuzz_grade_twice(const fuzz_grader_t *g, const char *buf, size_t len)
{
    grading_result_t a, b;
    grading_error_t ea, eb;
    grading_err_t rc = fuzz_grade_packed(g->rubric, buf, len, &a, &ea);
    grading_err_t rc2 = fuzz_grade_packed(g->rubric, buf, len, &b, &eb);
    CHECK(rc == rc2);
    if (rc == GRADING_OK) {
        CHECK(a.data && a.len > 0 && strlen(a.digest) == 64);
        CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
        CHECK(strcmp(a.digest, b.digest) == 0);
        /* the result is one msgpack map carrying the digest */
        msgpack_unpacked up;
        msgpack_unpacked_init(&up);
        size_t off = 0;
        CHECK(msgpack_unpack_next(&up, (const char *)a.data, a.len, &off) ==
                  MSGPACK_UNPACK_SUCCESS &&
              off == a.len && up.data.type == MSGPACK_OBJECT_MAP);
        msgpack_unpacked_destroy(&up);
        char *txt = grading_explain(g->rubric, a.data, a.len);
        CHECK(txt != NULL);
        free(txt);
    } else {
        CHECK(rc == GRADING_ERR_INVALID_RESPONSE || rc == GRADING_ERR_LIMIT ||
              rc == GRADING_ERR_NOMEM);
        CHECK(ea.code == rc && ea.message[0] != '\0');
        CHECK(strcmp(ea.message, eb.message) == 0 && strcmp(ea.path, eb.path) == 0);
        CHECK(a.data == NULL);
    }
    grading_result_free(&a);
    grading_result_free(&b);
    return rc;
}

static inline void fuzz_grader_run(const fuzz_grader_t *g, const uint8_t *data, size_t size)
{
    /* 1. the input as every text answer */
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, g->n_text_items);
    for (size_t i = 0; i < g->n_text_items; i++) {
        fuzz_pack_str(&pk, g->text_items[i], strlen(g->text_items[i]));
        fuzz_pack_str(&pk, data, size);
    }
    grading_err_t rc = fuzz_grade_twice(g, sb.data, sb.size);
    CHECK(rc == GRADING_OK || rc == GRADING_ERR_NOMEM);
    msgpack_sbuffer_destroy(&sb);

    /* 2. the input as the responses of a JOB, as a worker receives it */
    msgpack_sbuffer job;
    msgpack_sbuffer_init(&job);
    msgpack_packer_init(&pk, &job, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 4);
    fuzz_pack_str(&pk, "job_id", 6);
    fuzz_pack_str(&pk, "fuzz-job", 8);
    fuzz_pack_str(&pk, "tenant", 6);
    fuzz_pack_str(&pk, "fuzz", 4);
    fuzz_pack_str(&pk, "rubric", 6);
    fuzz_pack_str(&pk, "fuzz-rubric", 11);
    fuzz_pack_str(&pk, "responses", 9);
    msgpack_sbuffer_write(&job, (const char *)data, size);
    msgpack_sbuffer body;
    msgpack_sbuffer_init(&body);
    proto_str_t nohash = {"", 0};
    /* the encoder refuses a job map that is not exactly one msgpack map */
    int spliced = proto_encode_job(&body, 1, 0, 0, nohash, job.data, job.size) == 0;
    proto_jobmsg_t m;
    proto_error_t pe;
    if (spliced && proto_decode_job(g->dec, body.data, body.size, &m, &pe) == PROTO_OK) {
        msgpack_sbuffer one;
        msgpack_sbuffer_init(&one);
        msgpack_packer p1;
        msgpack_packer_init(&p1, &one, msgpack_sbuffer_write);
        CHECK(msgpack_pack_object(&p1, *m.job.responses) == 0);
        rc = fuzz_grade_twice(g, one.data, one.size);
        if (m.job.responses->type != MSGPACK_OBJECT_MAP &&
            m.job.responses->type != MSGPACK_OBJECT_NIL)
            CHECK(rc == GRADING_ERR_INVALID_RESPONSE);
        msgpack_sbuffer_destroy(&one);
    }
    msgpack_sbuffer_destroy(&body);
    msgpack_sbuffer_destroy(&job);
}

#endif
