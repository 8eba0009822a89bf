/*
 * proto.h - the scoreline wire protocol (SCL1): framing, commands and the
 * msgpack codecs for every message body.
 *
 * Every message is a ZeroMQ multipart message of exactly three frames after
 * any routing envelope:
 *
 *     [ "SCL1" ] [ COMMAND ] [ msgpack body ]
 *
 * The body is always a msgpack map with string keys. Decoders ignore unknown
 * keys and reject missing required keys or wrongly typed values with a
 * specific error (code + sentence naming the field path). PROTOCOL.md beside
 * this file is the normative specification; this header is its C binding.
 *
 * Decoded structures never own memory: strings and objects point into the
 * decoder's private copy of the body and its msgpack zone, and stay valid
 * until the next decode on the same decoder or until it is destroyed. The
 * caller may release the body buffer (zmq_msg_close) right after decoding.
 * Decoded strings are not NUL-terminated; an absent optional string has
 * len 0 and ptr "" (never NULL).
 */
#ifndef SCORELINE_PROTO_H
#define SCORELINE_PROTO_H

#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_SIGNATURE "SCL1"
#define PROTO_SIGNATURE_LEN 4
#define PROTO_VERSION 1

/* Limits (PROTOCOL.md "Limits"). Callers may configure a smaller max body. */
#define PROTO_DEFAULT_MAX_BODY (4u * 1024u * 1024u) /* 4 MiB per message body */
#define PROTO_MAX_JOB_ID 128                        /* bytes */
#define PROTO_MAX_NAME 128        /* tenant, candidate ref, rubric id, worker id: bytes */
#define PROTO_MAX_BATCH 10000     /* jobs in one SUBMIT */
#define PROTO_MAX_CREDIT 10000    /* credit window announced by a worker */
#define PROTO_HASH_HEX 64         /* SHA-256 as lowercase hex */
#define PROTO_MAX_MESSAGE 1024    /* error message sentences: bytes */
#define PROTO_MAX_DEPTH 32        /* nested arrays/maps in a body, the body map included */
#define PROTO_MAX_TTR_MS 3600000u /* time-to-run: 1 hour */
/* JOBS / RESULTS: most elements in one message, and the most bytes of
 * elements a sender puts in one message unless it carries a single one. */
#define PROTO_MAX_BATCH_ITEMS 10000
#define PROTO_BATCH_BYTES (1u << 20)

typedef enum proto_cmd {
    PROTO_CMD_SUBMIT = 0, /* submitter -> broker */
    PROTO_CMD_ACCEPTED,   /* broker -> submitter */
    PROTO_CMD_REJECTED,   /* broker -> submitter */
    PROTO_CMD_RESULT,     /* worker -> broker -> submitter, PUB, stream */
    PROTO_CMD_READY,      /* worker -> broker: hello + credit window */
    PROTO_CMD_JOB,        /* broker -> worker */
    PROTO_CMD_HEARTBEAT,  /* both ways, broker <-> worker */
    PROTO_CMD_DISCONNECT, /* both ways, broker <-> worker */
    PROTO_CMD_CANCEL,     /* broker -> worker: drop a job (time-to-run passed) */
    PROTO_CMD_JOBS,       /* broker -> worker: several JOB bodies (worker said READY batch) */
    PROTO_CMD_RESULTS,    /* worker -> broker, broker -> submitter: several RESULT bodies */
    PROTO_CMD_COUNT
} proto_cmd_t;

typedef enum proto_err {
    PROTO_OK = 0,
    PROTO_ERR_FRAMES,        /* wrong number of frames */
    PROTO_ERR_SIGNATURE,     /* first frame is not "SCL1" */
    PROTO_ERR_COMMAND,       /* unknown command */
    PROTO_ERR_TOO_LARGE,     /* body larger than the configured maximum */
    PROTO_ERR_MALFORMED,     /* not msgpack, truncated, or trailing bytes */
    PROTO_ERR_NOT_MAP,       /* body (or a nested record) is not a map */
    PROTO_ERR_MISSING_FIELD, /* a required key is absent */
    PROTO_ERR_WRONG_TYPE,    /* a key has a value of the wrong type */
    PROTO_ERR_BAD_VALUE,     /* right type, value out of range / too long / empty */
    PROTO_ERR_BATCH_TOO_LARGE,
    PROTO_ERR_NOMEM,
    PROTO_ERR_COUNT
} proto_err_t;

/* Error detail: the code and a sentence that names the field, e.g.
 * "jobs[3].job_id: expected a string, got an integer". */
typedef struct proto_error {
    proto_err_t code;
    char message[256];
} proto_error_t;

/* Human sentence for an error code ("body is not valid msgpack"). */
const char *proto_strerror(proto_err_t err);
/* Stable wire code for an error ("malformed_message", "missing_field", ...). */
const char *proto_err_code(proto_err_t err);

/* "SUBMIT" -> PROTO_CMD_SUBMIT; PROTO_ERR_COMMAND when unknown. */
proto_err_t proto_cmd_parse(const void *data, size_t len, proto_cmd_t *out);
/* PROTO_CMD_SUBMIT -> "SUBMIT". */
const char *proto_cmd_name(proto_cmd_t cmd);
/* 1 when the frame is exactly "SCL1". */
int proto_signature_ok(const void *data, size_t len);

/* A string that points into decoded data; not NUL-terminated. len 0 = absent. */
typedef struct proto_str {
    const char *ptr;
    uint32_t len;
} proto_str_t;

/* ---- Records --------------------------------------------------------- */

/* One job, as submitted (SUBMIT.jobs[i]) and as delivered (JOB.job). */
typedef struct proto_job {
    proto_str_t job_id;              /* required, 1..128 bytes, the idempotency key */
    proto_str_t tenant;              /* required, 1..128 bytes */
    proto_str_t candidate;           /* optional */
    proto_str_t rubric;              /* required rubric id */
    proto_str_t rubric_hash;         /* optional, 64 lowercase hex: pins a version */
    proto_str_t rubric_inline;       /* optional rubric JSON text */
    const msgpack_object *responses; /* required map: item id -> response */
    uint32_t ttr_ms;                 /* optional time-to-run, 0 = broker default */
    const msgpack_object *raw;       /* the whole job map as decoded */
    /* Per-job validation outcome inside a SUBMIT batch: PROTO_OK or the
     * reason this one job is rejected (the rest of the batch still counts). */
    proto_error_t err;
    const msgpack_object *meta; /* optional opaque map, passed through; NULL = absent */
} proto_job_t;

typedef struct proto_submit {
    uint64_t seq;          /* optional client correlation number, echoed back */
    uint8_t batch_results; /* the submitter takes its score events in RESULTS messages */
    uint32_t njobs;
    proto_job_t *jobs; /* in the decoder's zone */
} proto_submit_t;

/* Job state as reported in ACCEPTED. */
typedef enum proto_job_state {
    PROTO_STATE_QUEUED = 0, /* newly accepted, or already waiting */
    PROTO_STATE_RUNNING,    /* duplicate of a job a worker holds now */
    PROTO_STATE_DONE,       /* duplicate of a finished job: its RESULT follows */
    PROTO_STATE_COUNT
} proto_job_state_t;

const char *proto_state_name(proto_job_state_t st);

typedef struct proto_accepted_job {
    proto_str_t job_id;
    proto_job_state_t state;
    uint8_t duplicate; /* 1 when the id was already known */
} proto_accepted_job_t;

typedef struct proto_accepted {
    uint64_t seq;
    uint32_t njobs;
    proto_accepted_job_t *jobs;
} proto_accepted_t;

typedef struct proto_rejected_job {
    proto_str_t job_id; /* may be empty when the job had no readable id */
    proto_str_t code;   /* wire error code, e.g. "queue_full" */
    proto_str_t message;
} proto_rejected_job_t;

typedef struct proto_rejected {
    uint64_t seq;
    proto_str_t code;    /* message-level code; "job_errors" when only jobs failed */
    proto_str_t message; /* sentence */
    uint32_t njobs;
    proto_rejected_job_t *jobs;
} proto_rejected_t;

typedef struct proto_ready {
    proto_str_t worker; /* worker id (host:pid:nonce), 1..128 bytes */
    uint32_t credit;    /* window: max jobs held at once, 1..PROTO_MAX_CREDIT */
    proto_str_t engine; /* grading engine version string */
    uint32_t threads;   /* jobs it grades at the same time, 0 = not said (one) */
    uint32_t batch;     /* most jobs it takes in one JOBS message, 0 = JOB messages only */
} proto_ready_t;

typedef struct proto_jobmsg {
    uint32_t attempt;        /* 1 on first delivery */
    uint64_t accepted_us;    /* broker wall clock when ACCEPTED, unix microseconds */
    uint32_t ttr_ms;         /* effective time-to-run */
    proto_str_t rubric_hash; /* resolved hash, or empty when only inline is known */
    proto_job_t job;
} proto_jobmsg_t;

typedef struct proto_heartbeat {
    uint32_t inflight; /* jobs the sender holds (worker) or has outstanding (broker) */
} proto_heartbeat_t;

typedef struct proto_disconnect {
    proto_str_t reason;
} proto_disconnect_t;

/* CANCEL: the broker took the job back (its time-to-run passed); the worker
 * drops it, abandoning the grading if it is running. */
typedef struct proto_cancel {
    proto_str_t job_id;
    uint32_t attempt; /* the delivery being cancelled, 0 = any */
    proto_str_t reason;
} proto_cancel_t;

/* RESULT: the score event. status is "ok" or "error". */
typedef struct proto_result {
    proto_str_t job_id;
    proto_str_t tenant;
    proto_str_t candidate;
    proto_str_t rubric;
    proto_str_t rubric_hash;
    proto_str_t engine;
    proto_str_t worker;
    uint32_t attempt;
    uint64_t accepted_us;
    uint64_t started_us;
    uint64_t finished_us;
    uint64_t duration_us;
    proto_str_t status;           /* "ok" | "error" */
    proto_str_t error_code;       /* when status is "error" */
    proto_str_t error_message;    /* when status is "error" */
    proto_str_t digest;           /* 64 hex when status is "ok" */
    const msgpack_object *result; /* grading result map, when status is "ok" */
} proto_result_t;

/* ---- Decoding -------------------------------------------------------- */

typedef struct proto_decoder proto_decoder_t;

/* A decoder owns the memory of what it decodes; reuse it for every message
 * on a socket. max_body of 0 means PROTO_DEFAULT_MAX_BODY. NULL when out of
 * memory.
 *
 * Every proto_decode_* copies the body, checks size, msgpack well-formedness
 * (bounded pre-scan: declared lengths must fit, depth <= PROTO_MAX_DEPTH) and
 * the fields, and returns PROTO_OK or the error also stored in *err (err may
 * be NULL). On failure *out is zeroed or partly filled and must not be used,
 * except proto_decode_job, which leaves out->job.job_id set when readable.
 * Results stay valid until the next decode on the same decoder.
 *
 * proto_decode_submit fails only for message-level problems. Each job is
 * validated on its own: check out->jobs[i].err.code (PROTO_OK or the reason,
 * with a message naming "jobs[i].field"); a refused job still has job_id set
 * when its id was readable, else job_id.len == 0. */
proto_decoder_t *proto_decoder_new(size_t max_body);
void proto_decoder_destroy(proto_decoder_t **self_p);
/* Release the decoder's memory when its last body was larger than keep
 * bytes (after a big batch), invalidating what it decoded. */
void proto_decoder_trim(proto_decoder_t *d, size_t keep);

proto_err_t proto_decode_submit(proto_decoder_t *d, const void *body, size_t len,
                                proto_submit_t *out, proto_error_t *err);
proto_err_t proto_decode_accepted(proto_decoder_t *d, const void *body, size_t len,
                                  proto_accepted_t *out, proto_error_t *err);
proto_err_t proto_decode_rejected(proto_decoder_t *d, const void *body, size_t len,
                                  proto_rejected_t *out, proto_error_t *err);
proto_err_t proto_decode_result(proto_decoder_t *d, const void *body, size_t len,
                                proto_result_t *out, proto_error_t *err);
/* Shallow RESULT decode, for a reader that forwards the bytes (the broker):
 * the same checks and error sentences as proto_decode_result (body size,
 * well-formed msgpack within the depth and length limits, every top-level
 * field and the error map), but the grading result map is only checked to
 * be a map, never unpacked. Fills every field of out except out->result
 * (always NULL); strings point into body, which must outlive them. Needs no
 * decoder and allocates nothing. max_body 0 = PROTO_DEFAULT_MAX_BODY. */
proto_err_t proto_decode_result_head(const void *body, size_t len, size_t max_body,
                                     proto_result_t *out, proto_error_t *err);
proto_err_t proto_decode_ready(proto_decoder_t *d, const void *body, size_t len, proto_ready_t *out,
                               proto_error_t *err);
proto_err_t proto_decode_job(proto_decoder_t *d, const void *body, size_t len, proto_jobmsg_t *out,
                             proto_error_t *err);
proto_err_t proto_decode_heartbeat(proto_decoder_t *d, const void *body, size_t len,
                                   proto_heartbeat_t *out, proto_error_t *err);
proto_err_t proto_decode_disconnect(proto_decoder_t *d, const void *body, size_t len,
                                    proto_disconnect_t *out, proto_error_t *err);
proto_err_t proto_decode_cancel(proto_decoder_t *d, const void *body, size_t len,
                                proto_cancel_t *out, proto_error_t *err);

/* A run of bytes inside a decoded body (an element of JOBS or RESULTS). */
typedef struct proto_bytes {
    const uint8_t *ptr;
    size_t len;
} proto_bytes_t;

/* JOBS and RESULTS: check the body (size, the bounded msgpack scan, a map
 * whose "jobs" / "results" key is an array of 1..max_items maps) and slice
 * it: items[i] gets the exact bytes of element i, a JOB / RESULT body to be
 * decoded (or forwarded) on its own; *n gets the count. Elements point into
 * body; nothing is copied or allocated. items must hold max_items entries
 * (1..PROTO_MAX_BATCH_ITEMS). A message with more elements is
 * PROTO_ERR_BATCH_TOO_LARGE. max_body 0 = PROTO_DEFAULT_MAX_BODY. */
proto_err_t proto_decode_jobs(const void *body, size_t len, size_t max_body, proto_bytes_t *items,
                              uint32_t max_items, uint32_t *n, proto_error_t *err);
proto_err_t proto_decode_results(const void *body, size_t len, size_t max_body,
                                 proto_bytes_t *items, uint32_t max_items, uint32_t *n,
                                 proto_error_t *err);

/* RESULTS read in one go, the way a reader that forwards each event wants
 * it: the message is checked as by proto_decode_results except that an
 * element that is not a map is that element's error, not the message's;
 * then each element is read as by proto_decode_result_head (without a
 * second scan of its bytes, which the first proved well-formed) and handed
 * to fn in order: its bytes, its outcome (PROTO_OK, or the element's own
 * error, with the sentence in *eerr) and its fields. fn is not called when
 * the message itself is refused; a bad element does not stop the others. */
typedef void (*proto_result_fn)(void *arg, proto_bytes_t elem, proto_err_t rc,
                                const proto_result_t *head, const proto_error_t *eerr);
proto_err_t proto_decode_results_each(const void *body, size_t len, size_t max_body,
                                      uint32_t max_items, proto_result_fn fn, void *arg,
                                      proto_error_t *err);

/* Validate one job map (as found in SUBMIT.jobs or JOB.job) into out.
 * path prefixes error messages ("jobs[3]" gives "jobs[3].tenant: ..."), NULL
 * or "" for none. out->err gets the outcome too; out->raw is o; strings point
 * into o's storage. Usable without a decoder (e.g. on a journaled job). */
proto_err_t proto_job_from_object(const msgpack_object *o, const char *path, proto_job_t *out,
                                  proto_error_t *err);

/* ---- Encoding -------------------------------------------------------- */
/* Encoders append one msgpack body to buf (callers clear it first). Keys are
 * written in a fixed order (PROTOCOL.md tables), absent optional fields are
 * left out, sentences are cut to PROTO_MAX_MESSAGE bytes on a UTF-8 boundary.
 * They return 0, or -1 on allocation failure or when the arguments break the
 * contract (NULL pointers, spliced bytes that are not exactly one msgpack
 * map, status "ok" without a result map or digest). */

/* Pack one job map from its fields (responses and meta packed with
 * msgpack_pack_object; keys this version does not know are not kept: to
 * forward a received job unchanged, pack job->raw instead). */
int proto_encode_job_record(msgpack_sbuffer *buf, const proto_job_t *job);
/* SUBMIT: job_maps are already-packed job maps (proto_encode_job_record), spliced. */
int proto_encode_submit(msgpack_sbuffer *buf, uint64_t seq, const msgpack_sbuffer *const *job_maps,
                        size_t njobs);
/* The same, asking for the score events in RESULTS messages when
 * batch_results is set (the key is left out otherwise). */
int proto_encode_submit_opt(msgpack_sbuffer *buf, uint64_t seq, int batch_results,
                            const msgpack_sbuffer *const *job_maps, size_t njobs);
int proto_encode_accepted(msgpack_sbuffer *buf, const proto_accepted_t *m);
int proto_encode_rejected(msgpack_sbuffer *buf, const proto_rejected_t *m);
int proto_encode_ready(msgpack_sbuffer *buf, const proto_ready_t *m);
/* JOB: job_map/job_len are the packed job map, spliced unchanged. */
int proto_encode_job(msgpack_sbuffer *buf, uint32_t attempt, uint64_t accepted_us, uint32_t ttr_ms,
                     proto_str_t rubric_hash, const void *job_map, size_t job_len);
/* JOBS / RESULTS: elems holds n (1..PROTO_MAX_BATCH_ITEMS) JOB / RESULT
 * bodies back to back, as the encoders wrote them or proto_decode_* sliced
 * them; they are spliced unchanged (the caller vouches for them: they are
 * not scanned again). */
int proto_encode_jobs(msgpack_sbuffer *buf, const void *elems, size_t elems_len, uint32_t n);
int proto_encode_results(msgpack_sbuffer *buf, const void *elems, size_t elems_len, uint32_t n);
int proto_encode_heartbeat(msgpack_sbuffer *buf, const proto_heartbeat_t *m);
int proto_encode_disconnect(msgpack_sbuffer *buf, const proto_disconnect_t *m);
int proto_encode_cancel(msgpack_sbuffer *buf, const proto_cancel_t *m);
/* RESULT: m->result is ignored; result_map/result_len (a packed grading result
 * map, or NULL for an error result) are spliced unchanged under "result".
 * status "ok"/"error" comes from m->status, or when empty from whether
 * result_map is given; an error result writes error {code, message}. */
int proto_encode_result(msgpack_sbuffer *buf, const proto_result_t *m, const void *result_map,
                        size_t result_len);

/* 1 when s is exactly PROTO_HASH_HEX lowercase hex digits. */
int proto_is_hash_hex(proto_str_t s);

/* Helpers for proto_str_t. */
proto_str_t proto_str(const char *cstr);
proto_str_t proto_strn(const char *p, size_t n);
int proto_str_eq(proto_str_t s, const char *cstr);
/* Copy into dst (NUL-terminated, truncated to cap-1). Returns dst. */
char *proto_str_copy(proto_str_t s, char *dst, size_t cap);

#endif
