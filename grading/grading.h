/*
 * grading.h - the scoring engine's public interface.
 *
 * The engine is a pure library: no sockets, no Redis, no clock, no global
 * mutable state, no locale. Given the same rubric (identified by the SHA-256
 * of its canonical form), the same responses and the same engine version, it
 * produces the same result bytes and the same digest on any machine.
 *
 * The worker, the CLI's offline `grade` and the audit verifier all call it:
 *
 *     grading_rubric_t *r;
 *     grading_error_t e;
 *     if (grading_rubric_load_json(text, len, &r, &e) != GRADING_OK) ... e.path, e.message
 *     grading_result_t res;
 *     if (grading_grade(r, responses_map, &res, &e) == GRADING_OK) ... res.data/res.len
 *     grading_result_free(&res);
 *     grading_rubric_destroy(&r);
 *
 * Rubric format: RUBRIC.md beside this file.
 */
#ifndef SCORELINE_GRADING_H
#define SCORELINE_GRADING_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GRADING_ENGINE_NAME "scoreline-grading"
#define GRADING_ENGINE_VERSION "0.1.0"
/* "scoreline-grading/0.1.0": what results and events carry as "engine". */
#define GRADING_ENGINE GRADING_ENGINE_NAME "/" GRADING_ENGINE_VERSION

typedef enum grading_err {
    GRADING_OK = 0,
    GRADING_ERR_JSON,             /* rubric text is not valid JSON */
    GRADING_ERR_INVALID_RUBRIC,   /* valid JSON/msgpack, but not a valid rubric */
    GRADING_ERR_INVALID_RESPONSE, /* responses do not match the rubric */
    GRADING_ERR_LIMIT,            /* an input exceeds a documented limit */
    GRADING_ERR_NOMEM,
    GRADING_ERR_COUNT
} grading_err_t;

/* Error detail. path is a JSON path into the rubric or the responses
 * ("items[3].elements[1].phrases", "responses.growth_fix"), empty when the
 * error concerns the whole input. */
typedef struct grading_error {
    grading_err_t code;
    char path[256];
    char message[512];
} grading_error_t;

const char *grading_strerror(grading_err_t err);
/* Stable wire code: "invalid_rubric", "invalid_response", "limit_exceeded", ... */
const char *grading_err_code(grading_err_t err);

typedef struct grading_rubric grading_rubric_t;

/* Parse and validate a rubric written as JSON. On success *out owns the rubric;
 * on failure err says what and where. */
grading_err_t grading_rubric_load_json(const char *text, size_t len, grading_rubric_t **out,
                                       grading_error_t *err);
/* Load a rubric from its canonical msgpack form (as stored in Redis). The hash
 * of the result equals the SHA-256 of buf when buf is canonical. */
grading_err_t grading_rubric_load_msgpack(const void *buf, size_t len, grading_rubric_t **out,
                                          grading_error_t *err);
void grading_rubric_destroy(grading_rubric_t **self_p);
/* Validate a rubric written as JSON and list its errors: up to max_errs are
 * written to errs, *n_errs says how many. GRADING_OK when the rubric is valid.
 * (`scoreline rubric lint` uses it to report every problem at once.) */
grading_err_t grading_rubric_lint_json(const char *text, size_t len, grading_error_t *errs,
                                       size_t max_errs, size_t *n_errs);

const char *grading_rubric_id(const grading_rubric_t *r);
/* SHA-256 of the canonical form, 64 lowercase hex digits. */
const char *grading_rubric_hash(const grading_rubric_t *r);
/* Canonical msgpack form: map keys sorted bytewise, defaults made explicit,
 * numbers normalised. Same meaning => same bytes. */
const void *grading_rubric_canonical(const grading_rubric_t *r, size_t *len);
/* Approximate heap bytes held by the rubric (for cache accounting). */
size_t grading_rubric_memory(const grading_rubric_t *r);

/* A graded result: data is a packed msgpack map (see RUBRIC.md "Result"),
 * digest the SHA-256 hex the map also carries under "digest". */
typedef struct grading_result {
    uint8_t *data;
    size_t len;
    char digest[65];
} grading_result_t;

/* Grade responses (a msgpack map: item id -> response) against rubric.
 * Missing responses are scored as unanswered, never an error. A response
 * for an unknown item, or of a type the item cannot take, is
 * GRADING_ERR_INVALID_RESPONSE. On success the caller frees out with
 * grading_result_free. */
grading_err_t grading_grade(const grading_rubric_t *r, const msgpack_object *responses,
                            grading_result_t *out, grading_error_t *err);
void grading_result_free(grading_result_t *res);

/* Render a result (the bytes grading_grade produced, for this rubric) as text
 * for a person: decision, totals, sections, then each item's trace with its
 * evidence. Returns a NUL-terminated malloc'd string the caller frees, or NULL
 * when the bytes are not a result. (`scoreline grade --explain`.) */
char *grading_explain(const grading_rubric_t *r, const void *result, size_t len);

/* True when buf is exactly one well-formed msgpack value whose declared
 * array, map, string and binary sizes fit in len. msgpack-c allocates what a
 * header declares before reading the elements, so check untrusted bytes
 * (responses off the wire) with this before msgpack_unpack_next; the rubric
 * loader does. */
bool grading_msgpack_well_formed(const void *buf, size_t len);

/* The result bytes as JSON text, keys in the result's sorted order (indent 0:
 * compact). Returns a NUL-terminated malloc'd string the caller frees, or
 * NULL when the bytes are not a result. (`scoreline grade` default output.) */
char *grading_result_json(const void *result, size_t len, int indent);

#endif
