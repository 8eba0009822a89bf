/*
 * attempt.h - candidate attempt files (JSON) and the job records built from
 * them. Pure: no sockets, no Redis, no printing. Part of scoreline_cli_core so
 * the unit tests can exercise it.
 *
 * An attempt file (format: proto/ATTEMPT.md) is a JSON object:
 *
 *     {"job_id": "opt", "tenant": "acme", "candidate": "opt", "rubric": "csm-smb",
 *      "rubric_hash": "opt 64 hex", "responses": {"item": ...}, "expected": ignored}
 *
 * Unknown keys are ignored; a key whose value is null counts as absent.
 */
#ifndef SCORELINE_CLI_ATTEMPT_H
#define SCORELINE_CLI_ATTEMPT_H

#include <jansson.h>
#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

typedef enum attempt_err {
    ATTEMPT_OK = 0,
    ATTEMPT_ERR_JSON,    /* the text is not valid JSON */
    ATTEMPT_ERR_INVALID, /* valid JSON, but not a valid attempt */
    ATTEMPT_ERR_NOMEM,
    ATTEMPT_ERR_COUNT
} attempt_err_t;

/* Error detail: path is the JSON path of the offending field ("responses",
 * "tenant"), or "line 3, column 7" for JSON syntax errors, empty when the
 * error concerns the whole file. */
typedef struct attempt_error {
    attempt_err_t code;
    char path[96];
    char message[256];
} attempt_error_t;

/* Human sentence for an error code. */
const char *attempt_strerror(attempt_err_t err);
/* Stable code printed in brackets: "invalid_json", "invalid_attempt", "out_of_memory". */
const char *attempt_err_code(attempt_err_t err);

/* A parsed attempt. The string fields point into root and are NULL when the
 * file does not have them. */
typedef struct attempt {
    json_t *root;
    const char *job_id;
    const char *tenant;
    const char *candidate;
    const char *rubric;
    const char *rubric_hash;
    json_t *responses; /* always an object after a successful parse */
} attempt_t;

/* Parse and validate an attempt. On success the caller releases out with
 * attempt_clear; on failure out is empty and err says what and where.
 * Duplicate keys anywhere in the file are an error (they make the
 * responses ambiguous). */
attempt_err_t attempt_parse(const char *text, size_t len, attempt_t *out, attempt_error_t *err);
/* Release what attempt_parse allocated; safe on a cleared attempt. */
void attempt_clear(attempt_t *a);

/* Append the responses as a msgpack map with keys sorted bytewise (the
 * bytes do not depend on the file's key order). */
attempt_err_t attempt_pack_responses(const attempt_t *a, msgpack_sbuffer *out,
                                     attempt_error_t *err);

/* What a job record takes from outside the attempt file. */
typedef struct attempt_job_opts {
    const char *job_id;        /* used when the attempt has none */
    const char *tenant;        /* used when the attempt has none */
    const char *rubric;        /* used when the attempt has none */
    const char *rubric_inline; /* rubric JSON text to carry inline, or NULL */
    size_t rubric_inline_len;
    uint32_t ttr_ms; /* 0: the broker's default */
} attempt_job_opts_t;

/* Append one packed job map (proto_encode_job_record) for the attempt.
 * ATTEMPT_ERR_INVALID when neither the attempt nor opts supply a job id,
 * a tenant or a rubric id. */
attempt_err_t attempt_to_job_record(const attempt_t *a, const attempt_job_opts_t *opts,
                                    msgpack_sbuffer *out, attempt_error_t *err);

/* "job-" followed by 32 random lowercase hex digits (libsodium; call
 * sodium_init() first). */
#define ATTEMPT_JOB_ID_LEN 36
void attempt_generate_job_id(char out[ATTEMPT_JOB_ID_LEN + 1]);

#endif
