/*
 * attempt.c - parse and validate attempt files, build job records from them
 * (see attempt.h). The validation mirrors what the broker checks in a
 * SUBMIT (proto/proto.h limits) so that a bad file is refused here, with the
 * file's own field path, rather than by the broker.
 */
#include "cli/attempt.h"

#include "common/digest.h"
#include "common/jsonmp.h"
#include "proto/proto.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* Levels the responses object may use, itself included. */
#define ATTEMPT_MAX_DEPTH (PROTO_MAX_DEPTH - 3)

static const char *const attempt_messages[ATTEMPT_ERR_COUNT] = {
    [ATTEMPT_OK] = "no error",
    [ATTEMPT_ERR_JSON] = "the attempt is not valid JSON",
    [ATTEMPT_ERR_INVALID] = "the attempt is not valid",
    [ATTEMPT_ERR_NOMEM] = "out of memory",
};

static const char *const attempt_codes[ATTEMPT_ERR_COUNT] = {
    [ATTEMPT_OK] = "ok",
    [ATTEMPT_ERR_JSON] = "invalid_json",
    [ATTEMPT_ERR_INVALID] = "invalid_attempt",
    [ATTEMPT_ERR_NOMEM] = "out_of_memory",
};

const char *attempt_strerror(attempt_err_t err)
{
    return (unsigned)err < ATTEMPT_ERR_COUNT ? attempt_messages[err] : "unknown error";
}

const char *attempt_err_code(attempt_err_t err)
{
    return (unsigned)err < ATTEMPT_ERR_COUNT ? attempt_codes[err] : "internal_error";
}

/* Fill err and return its code. */
static attempt_err_t attempt_fail(attempt_error_t *err, attempt_err_t code, const char *path,
                                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static attempt_err_t attempt_fail(attempt_error_t *err, attempt_err_t code, const char *path,
                                  const char *fmt, ...)
{
    err->code = code;
    snprintf(err->path, sizeof err->path, "%s", path);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return code;
}

static const char *json_type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "a value";
}

/* Validate optional string field key of root into *out (NULL when absent or
 * null). max is the byte limit; hash requires 64 lowercase hex digits;
 * empty_is_absent lets "" mean absent (candidate) instead of an error. */
static attempt_err_t attempt_string_field(json_t *root, const char *key, size_t max, int hash,
                                          int empty_is_absent, const char **out,
                                          attempt_error_t *err)
{
    json_t *v = json_object_get(root, key);
    *out = NULL;
    if (!v || json_is_null(v))
        return ATTEMPT_OK;
    if (!json_is_string(v))
        return attempt_fail(err, ATTEMPT_ERR_INVALID, key, "expected a string, got %s",
                            json_type_name(v));
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n == 0 && empty_is_absent)
        return ATTEMPT_OK;
    if (n == 0)
        return attempt_fail(err, ATTEMPT_ERR_INVALID, key, "must not be empty");
    if (n > max)
        return attempt_fail(err, ATTEMPT_ERR_INVALID, key, "is %zu bytes long, the limit is %zu", n,
                            max);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return attempt_fail(err, ATTEMPT_ERR_INVALID, key,
                                "must not contain control characters");
    if (hash && !digest_is_hex64(s, n))
        return attempt_fail(err, ATTEMPT_ERR_INVALID, key,
                            "expected 64 lowercase hexadecimal digits (a SHA-256)");
    *out = s;
    return ATTEMPT_OK;
}

/* Nesting depth of v: 0 for a scalar, 1 for a flat array/object. Stops
 * counting past limit + 1. */
static int json_depth(const json_t *v, int limit)
{
    if (limit < 0 || (!json_is_object(v) && !json_is_array(v)))
        return 0;
    int deepest = 0;
    if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach((json_t *)v, k, x)
        {
            int d = json_depth(x, limit - 1);
            if (d > deepest)
                deepest = d;
        }
    } else {
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x)
        {
            int d = json_depth(x, limit - 1);
            if (d > deepest)
                deepest = d;
        }
    }
    return deepest + 1;
}

/* Item ids are 1..128 bytes, and the responses must nest within what a
 * SUBMIT may carry (PROTOCOL.md 3.8: the SUBMIT body, jobs array and job map
 * take the first three of its 32 levels). */
static attempt_err_t attempt_check_responses(json_t *responses, attempt_error_t *err)
{
    const char *k;
    json_t *v;
    json_object_foreach(responses, k, v)
    {
        size_t n = strlen(k);
        if (n == 0 || n > PROTO_MAX_NAME) {
            char where[96];
            snprintf(where, sizeof where, "responses.%.40s%s", k, n > 40 ? "..." : "");
            return attempt_fail(err, ATTEMPT_ERR_INVALID, where,
                                "item ids must be 1 to %d bytes long", PROTO_MAX_NAME);
        }
    }
    if (json_depth(responses, ATTEMPT_MAX_DEPTH) > ATTEMPT_MAX_DEPTH)
        return attempt_fail(err, ATTEMPT_ERR_INVALID, "responses", "nests deeper than %d levels",
                            ATTEMPT_MAX_DEPTH);
    return ATTEMPT_OK;
}

attempt_err_t attempt_parse(const char *text, size_t len, attempt_t *out, attempt_error_t *err)
{
    memset(out, 0, sizeof *out);
    memset(err, 0, sizeof *err);
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        char where[96];
        snprintf(where, sizeof where, "line %d, column %d", je.line, je.column);
        return attempt_fail(err, ATTEMPT_ERR_JSON, where, "%s", je.text);
    }
    if (!json_is_object(root)) {
        attempt_fail(err, ATTEMPT_ERR_INVALID, "", "expected a JSON object, got %s",
                     json_type_name(root));
        json_decref(root);
        return ATTEMPT_ERR_INVALID;
    }
    attempt_t a = {.root = root};
    attempt_err_t rc = attempt_string_field(root, "job_id", PROTO_MAX_JOB_ID, 0, 0, &a.job_id, err);
    if (rc == ATTEMPT_OK)
        rc = attempt_string_field(root, "tenant", PROTO_MAX_NAME, 0, 0, &a.tenant, err);
    if (rc == ATTEMPT_OK)
        rc = attempt_string_field(root, "candidate", PROTO_MAX_NAME, 0, 1, &a.candidate, err);
    if (rc == ATTEMPT_OK)
        rc = attempt_string_field(root, "rubric", PROTO_MAX_NAME, 0, 0, &a.rubric, err);
    if (rc == ATTEMPT_OK)
        rc = attempt_string_field(root, "rubric_hash", PROTO_HASH_HEX, 1, 0, &a.rubric_hash, err);
    if (rc == ATTEMPT_OK) {
        a.responses = json_object_get(root, "responses");
        if (!a.responses)
            rc = attempt_fail(err, ATTEMPT_ERR_INVALID, "responses",
                              "is missing (an object: item id -> response)");
        else if (!json_is_object(a.responses))
            rc = attempt_fail(err, ATTEMPT_ERR_INVALID, "responses",
                              "expected an object (item id -> response), got %s",
                              json_type_name(a.responses));
        else
            rc = attempt_check_responses(a.responses, err);
    }
    if (rc != ATTEMPT_OK) {
        json_decref(root);
        return rc;
    }
    *out = a;
    return ATTEMPT_OK;
}

void attempt_clear(attempt_t *a)
{
    if (!a)
        return;
    json_decref(a->root);
    memset(a, 0, sizeof *a);
}

attempt_err_t attempt_pack_responses(const attempt_t *a, msgpack_sbuffer *out, attempt_error_t *err)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    /* An unanswered attempt is common (a blank submission): pack it here so
     * the empty case never reaches a zero-length sort in the converter. */
    if (json_object_size(a->responses) == 0)
        return msgpack_pack_map(&pk, 0) == 0
                   ? ATTEMPT_OK
                   : attempt_fail(err, ATTEMPT_ERR_NOMEM, "responses", "out of memory");
    if (jsonmp_pack(&pk, a->responses) != 0)
        return attempt_fail(err, ATTEMPT_ERR_INVALID, "responses",
                            "cannot be converted to msgpack (nested deeper than 64 levels?)");
    return ATTEMPT_OK;
}

attempt_err_t attempt_to_job_record(const attempt_t *a, const attempt_job_opts_t *opts,
                                    msgpack_sbuffer *out, attempt_error_t *err)
{
    const char *job_id = a->job_id ? a->job_id : opts->job_id;
    const char *tenant = a->tenant ? a->tenant : opts->tenant;
    const char *rubric = a->rubric ? a->rubric : opts->rubric;
    if (!job_id || !*job_id)
        return attempt_fail(err, ATTEMPT_ERR_INVALID, "job_id", "is missing");
    if (!tenant || !*tenant)
        return attempt_fail(err, ATTEMPT_ERR_INVALID, "tenant", "is missing");
    if (!rubric || !*rubric)
        return attempt_fail(err, ATTEMPT_ERR_INVALID, "rubric", "is missing (a rubric id)");

    msgpack_sbuffer resp;
    msgpack_sbuffer_init(&resp);
    attempt_err_t rc = attempt_pack_responses(a, &resp, err);
    if (rc != ATTEMPT_OK) {
        msgpack_sbuffer_destroy(&resp);
        return rc;
    }
    msgpack_zone zone;
    if (!msgpack_zone_init(&zone, 4096)) {
        msgpack_sbuffer_destroy(&resp);
        return attempt_fail(err, ATTEMPT_ERR_NOMEM, "", "out of memory");
    }
    msgpack_object responses;
    size_t off = 0;
    if (msgpack_unpack(resp.data, resp.size, &off, &zone, &responses) != MSGPACK_UNPACK_SUCCESS) {
        rc = attempt_fail(err, ATTEMPT_ERR_NOMEM, "responses", "cannot be re-read as msgpack");
    } else {
        proto_job_t job;
        memset(&job, 0, sizeof job);
        job.job_id = proto_str(job_id);
        job.tenant = proto_str(tenant);
        if (a->candidate)
            job.candidate = proto_str(a->candidate);
        job.rubric = proto_str(rubric);
        if (a->rubric_hash)
            job.rubric_hash = proto_str(a->rubric_hash);
        if (opts->rubric_inline)
            job.rubric_inline = proto_strn(opts->rubric_inline, opts->rubric_inline_len);
        job.responses = &responses;
        job.ttr_ms = opts->ttr_ms;
        if (proto_encode_job_record(out, &job) != 0)
            rc = attempt_fail(err, ATTEMPT_ERR_NOMEM, "", "out of memory");
    }
    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&resp);
    return rc;
}

void attempt_generate_job_id(char out[ATTEMPT_JOB_ID_LEN + 1])
{
    unsigned char raw[16];
    randombytes_buf(raw, sizeof raw);
    memcpy(out, "job-", 4);
    sodium_bin2hex(out + 4, 33, raw, sizeof raw);
}
