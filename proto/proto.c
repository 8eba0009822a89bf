/*
 * proto.c - codecs for the scoreline wire protocol (SCL1), see PROTOCOL.md.
 *
 * Decoding runs in three steps, each of which bounds the next:
 *
 *   1. size check against the decoder's max_body (PROTO_ERR_TOO_LARGE);
 *   2. a bounded structural scan of the raw bytes (body_scan) that proves the
 *      body is exactly one well-formed msgpack object, no deeper than
 *      PROTO_MAX_DEPTH. msgpack-c allocates an array's or map's element
 *      storage as soon as it reads the header, before it knows whether the
 *      elements exist, so a 5-byte body "dd ff ff ff ff" would ask the zone
 *      for ~100 GB. After the scan every declared element is known to be
 *      present, so msgpack_unpack allocates at most ~24 bytes per body byte;
 *   3. msgpack_unpack into the decoder's zone, then field validation that
 *      names the offending path in the error sentence.
 *
 * The decoder copies each body into a buffer it owns, so decoded strings and
 * objects stay valid until the next decode on the same decoder (or until it
 * is destroyed) whatever the caller does with the original frame.
 *
 * Encoders write keys in a fixed order, so the same message always has the
 * same bytes.
 */
#include "proto/proto.h"

#include <assert.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct proto_decoder {
    size_t max_body;
    msgpack_zone zone;
    char *buf; /* private copy of the body being decoded */
    size_t cap;
};

/* ---- Names and codes --------------------------------------------------- */

static const char *const cmd_names[PROTO_CMD_COUNT] = {
    "SUBMIT",    "ACCEPTED",   "REJECTED", "RESULT", "READY",   "JOB",
    "HEARTBEAT", "DISCONNECT", "CANCEL",   "JOBS",   "RESULTS",
};

static const char *const state_names[PROTO_STATE_COUNT] = {"queued", "running", "done"};

const char *proto_strerror(proto_err_t err)
{
    switch (err) {
    case PROTO_OK:
        return "success";
    case PROTO_ERR_FRAMES:
        return "message does not have the expected frames";
    case PROTO_ERR_SIGNATURE:
        return "first frame is not the protocol signature SCL1";
    case PROTO_ERR_COMMAND:
        return "unknown command";
    case PROTO_ERR_TOO_LARGE:
        return "message exceeds a size or nesting limit";
    case PROTO_ERR_MALFORMED:
        return "body is not valid msgpack";
    case PROTO_ERR_NOT_MAP:
        return "body is not a msgpack map";
    case PROTO_ERR_MISSING_FIELD:
        return "a required field is missing";
    case PROTO_ERR_WRONG_TYPE:
        return "a field has the wrong type";
    case PROTO_ERR_BAD_VALUE:
        return "a field has an invalid value";
    case PROTO_ERR_BATCH_TOO_LARGE:
        return "too many jobs in one SUBMIT";
    case PROTO_ERR_NOMEM:
        return "out of memory";
    case PROTO_ERR_COUNT:
        break;
    }
    return "unknown error";
}

const char *proto_err_code(proto_err_t err)
{
    switch (err) {
    case PROTO_OK:
        return "ok";
    case PROTO_ERR_FRAMES:
        return "bad_frames";
    case PROTO_ERR_SIGNATURE:
        return "bad_signature";
    case PROTO_ERR_COMMAND:
        return "unknown_command";
    case PROTO_ERR_TOO_LARGE:
        return "too_large";
    case PROTO_ERR_MALFORMED:
        return "malformed_message";
    case PROTO_ERR_NOT_MAP:
        return "not_a_map";
    case PROTO_ERR_MISSING_FIELD:
        return "missing_field";
    case PROTO_ERR_WRONG_TYPE:
        return "wrong_type";
    case PROTO_ERR_BAD_VALUE:
        return "bad_value";
    case PROTO_ERR_BATCH_TOO_LARGE:
        return "batch_too_large";
    case PROTO_ERR_NOMEM:
    case PROTO_ERR_COUNT:
        break;
    }
    return "internal_error";
}

proto_err_t proto_cmd_parse(const void *data, size_t len, proto_cmd_t *out)
{
    for (int i = 0; i < PROTO_CMD_COUNT; i++) {
        if (len == strlen(cmd_names[i]) && memcmp(data, cmd_names[i], len) == 0) {
            if (out)
                *out = (proto_cmd_t)i;
            return PROTO_OK;
        }
    }
    return PROTO_ERR_COMMAND;
}

const char *proto_cmd_name(proto_cmd_t cmd)
{
    if ((int)cmd < 0 || cmd >= PROTO_CMD_COUNT)
        return "UNKNOWN";
    return cmd_names[cmd];
}

int proto_signature_ok(const void *data, size_t len)
{
    return data && len == PROTO_SIGNATURE_LEN && memcmp(data, PROTO_SIGNATURE, len) == 0;
}

const char *proto_state_name(proto_job_state_t st)
{
    if ((int)st < 0 || st >= PROTO_STATE_COUNT)
        return "unknown";
    return state_names[st];
}

/* ---- proto_str_t helpers ------------------------------------------------ */

proto_str_t proto_str(const char *cstr)
{
    proto_str_t s = {"", 0};
    if (cstr) {
        s.ptr = cstr;
        s.len = (uint32_t)strlen(cstr);
    }
    return s;
}

proto_str_t proto_strn(const char *p, size_t n)
{
    proto_str_t s = {"", 0};
    if (p && n) {
        s.ptr = p;
        s.len = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
    }
    return s;
}

int proto_str_eq(proto_str_t s, const char *cstr)
{
    size_t n = cstr ? strlen(cstr) : 0;
    return s.len == n && (n == 0 || memcmp(s.ptr, cstr, n) == 0);
}

char *proto_str_copy(proto_str_t s, char *dst, size_t cap)
{
    if (!dst || cap == 0)
        return dst;
    size_t n = s.len < cap - 1 ? s.len : cap - 1;
    if (n)
        memcpy(dst, s.ptr, n);
    dst[n] = '\0';
    return dst;
}

int proto_is_hash_hex(proto_str_t s)
{
    if (s.len != PROTO_HASH_HEX)
        return 0;
    for (uint32_t i = 0; i < s.len; i++) {
        char c = s.ptr[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
    }
    return 1;
}

/* ---- Errors ------------------------------------------------------------- */

__attribute__((format(printf, 3, 4))) static proto_err_t fail(proto_error_t *err, proto_err_t code,
                                                              const char *fmt, ...)
{
    if (err) {
        err->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return code;
}

static void set_ok(proto_error_t *err)
{
    if (err) {
        err->code = PROTO_OK;
        err->message[0] = '\0';
    }
}

/* "jobs[3]" + "job_id" -> "jobs[3].job_id"; an empty path gives the name. */
static void join_path(char *dst, size_t cap, const char *path, const char *name)
{
    if (path && *path)
        snprintf(dst, cap, "%s.%s", path, name);
    else
        snprintf(dst, cap, "%s", name);
}

/* The field's full name for an error sentence (path and name in scope). */
#define FIELD (join_path(field, sizeof field, path, name), field)

static const char *type_name(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return "nil";
    case MSGPACK_OBJECT_BOOLEAN:
        return "a boolean";
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return "an integer";
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return "a float";
    case MSGPACK_OBJECT_STR:
        return "a string";
    case MSGPACK_OBJECT_ARRAY:
        return "an array";
    case MSGPACK_OBJECT_MAP:
        return "a map";
    case MSGPACK_OBJECT_BIN:
        return "binary data";
    case MSGPACK_OBJECT_EXT:
        return "an extension value";
    }
    return "an unknown type";
}

/* ---- Bounded structural scan ------------------------------------------- */

static uint64_t load_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

/* What follows each first byte of a msgpack value (body_scan, raw_skip). skip_kind: 0 a scalar
 * whose payload is skip_arg bytes; 1 fixmap; 2 fixarray; 3 str/bin/ext with a length of skip_arg &
 * 7 bytes (| 8: ext, one type byte more); 4 array16/32 and 5 map16/32 with a count of skip_arg
 * bytes. */
static const uint8_t skip_kind[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 3, 3, 3, 3, 3, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 3, 3, 4, 4, 5, 5,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
};
static const uint8_t skip_arg[256] = {
    0,  0, 0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
    0,  0, 0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
    0,  0, 0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
    0,  0, 0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
    0,  0, 0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
    0,  0, 0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
    0,  0, 0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  1,  2,  3,  4,  5,  6,  7,
    8,  9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31,
    0,  0, 0,  0,  1,  2,  4,  9,  10, 12, 4,  8,  1,  2,  4,  8,  1,  2,  4,  8,  2,  3,  5,  9,
    17, 1, 2,  4,  2,  4,  2,  4,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
    0,  0, 0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,
};

/*
 * Prove that p[0..len) is exactly one msgpack object whose declared lengths
 * all fit in the buffer and whose containers nest at most PROTO_MAX_DEPTH
 * deep (an empty container counts, as it does for msgpack-c's own stack).
 * Never allocates; O(len) time.
 */
static proto_err_t body_scan(const uint8_t *p, size_t len, const char *what, proto_error_t *err)
{
    uint64_t remaining[PROTO_MAX_DEPTH]; /* elements still expected per open container */
    int depth = 0;
    size_t pos = 0;

    if (len == 0)
        return fail(err, PROTO_ERR_MALFORMED, "%s: empty, expected a msgpack map", what);
    for (;;) {
        if (pos >= len)
            return fail(err, PROTO_ERR_MALFORMED, "%s: truncated at offset %zu", what, pos);
        size_t at = pos;
        uint8_t b = p[pos++];
        size_t avail = len - pos;
        int lenbytes = 0;     /* size of a length field that follows b */
        uint64_t payload = 0; /* bytes of data after the header */
        uint64_t children = 0;
        int container = 0;

        unsigned a = skip_arg[b];
        switch (skip_kind[b]) {
        case 0:            /* fixint, nil, bool, fixstr, numbers, fixext */
            if (b == 0xc1) /* never used */
                return fail(err, PROTO_ERR_MALFORMED,
                            "%s: invalid msgpack byte 0x%02x at offset %zu", what, b, at);
            payload = a;
            break;
        case 1:
            container = 1, children = 2u * (b & 0x0fu);
            break;
        case 2:
            container = 1, children = b & 0x0fu;
            break;
        case 3: /* str, bin, ext: a length field */
            lenbytes = (int)(a & 7u);
            break;
        default: /* array16/32, map16/32 */
            container = 1;
            lenbytes = (int)a;
            break;
        }
        if (lenbytes) {
            if (avail < (size_t)lenbytes)
                return fail(err, PROTO_ERR_MALFORMED, "%s: truncated at offset %zu", what, pos);
            uint64_t n = load_be(p + pos, lenbytes);
            pos += (size_t)lenbytes;
            avail -= (size_t)lenbytes;
            if (container)
                children = (b == 0xde || b == 0xdf) ? 2 * n : n;
            else
                payload = n + ((a & 8u) ? 1 : 0); /* ext: its type byte */
        }

        if (container) {
            if (depth >= PROTO_MAX_DEPTH)
                return fail(err, PROTO_ERR_TOO_LARGE,
                            "%s: nested deeper than %d arrays/maps at offset %zu", what,
                            PROTO_MAX_DEPTH, at);
            /* Every element takes at least one byte: refuse a declared count
             * the rest of the buffer cannot hold before anyone allocates. */
            if (children > avail)
                return fail(err, PROTO_ERR_MALFORMED,
                            "%s: truncated: %s at offset %zu declares %" PRIu64
                            " elements but only %zu bytes remain",
                            what, (b & 0xf0) == 0x80 || b >= 0xde ? "a map" : "an array", at,
                            (b & 0xf0) == 0x80 || b >= 0xde ? children / 2 : children, avail);
            if (children > 0) {
                remaining[depth++] = children;
                continue;
            }
        } else if (payload > avail) {
            return fail(err, PROTO_ERR_MALFORMED,
                        "%s: truncated: value at offset %zu needs %" PRIu64
                        " bytes but only %zu remain",
                        what, at, payload, avail);
        } else {
            pos += (size_t)payload;
        }

        /* One element is complete: close every container it completes. */
        while (depth > 0 && --remaining[depth - 1] == 0)
            depth--;
        if (depth == 0)
            break;
    }
    if (pos != len)
        return fail(err, PROTO_ERR_MALFORMED,
                    "%s: %zu trailing bytes after the object at offset %zu", what, len - pos, pos);
    return PROTO_OK;
}

static int is_map_header(const void *data, size_t len)
{
    if (!data || len == 0)
        return 0;
    uint8_t b = *(const uint8_t *)data;
    return (b & 0xf0) == 0x80 || b == 0xde || b == 0xdf;
}

/* ---- Decoder ------------------------------------------------------------ */

proto_decoder_t *proto_decoder_new(size_t max_body)
{
    proto_decoder_t *d = calloc(1, sizeof *d);
    if (!d)
        return NULL;
    d->max_body = max_body ? max_body : PROTO_DEFAULT_MAX_BODY;
    if (!msgpack_zone_init(&d->zone, 16 * 1024)) {
        free(d);
        return NULL;
    }
    return d;
}

void proto_decoder_destroy(proto_decoder_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    proto_decoder_t *d = *self_p;
    msgpack_zone_destroy(&d->zone);
    free(d->buf);
    free(d);
    *self_p = NULL;
}

void proto_decoder_trim(proto_decoder_t *d, size_t keep)
{
    if (!d || d->cap <= keep)
        return;
    /* Drop the private copy and the zone's chunks; both regrow on demand. */
    free(d->buf);
    d->buf = NULL;
    d->cap = 0;
    msgpack_zone_destroy(&d->zone);
    msgpack_zone_init(&d->zone, 16 * 1024);
}

/* Size check, private copy, scan, unpack; leaves the body map in *root. */
static proto_err_t decode_body(proto_decoder_t *d, const void *body, size_t len,
                               msgpack_object *root, proto_error_t *err)
{
    assert(d);
    msgpack_zone_clear(&d->zone);
    if (len > d->max_body)
        return fail(err, PROTO_ERR_TOO_LARGE, "body: %zu bytes, the limit is %zu", len,
                    d->max_body);
    if (len > 0 && !body)
        return fail(err, PROTO_ERR_MALFORMED, "body: missing");
    if (len > d->cap) {
        char *nb = realloc(d->buf, len);
        if (!nb)
            return fail(err, PROTO_ERR_NOMEM, "body: cannot allocate %zu bytes", len);
        d->buf = nb;
        d->cap = len;
    }
    if (len)
        memcpy(d->buf, body, len);
    proto_err_t rc = body_scan((const uint8_t *)d->buf, len, "body", err);
    if (rc != PROTO_OK)
        return rc;
    size_t off = 0;
    msgpack_unpack_return ur = msgpack_unpack(d->buf, len, &off, &d->zone, root);
    if (ur == MSGPACK_UNPACK_NOMEM_ERROR)
        return fail(err, PROTO_ERR_NOMEM, "body: out of memory while unpacking");
    if (ur != MSGPACK_UNPACK_SUCCESS || off != len)
        return fail(err, PROTO_ERR_MALFORMED, "body: msgpack rejected the body");
    if (root->type != MSGPACK_OBJECT_MAP)
        return fail(err, PROTO_ERR_NOT_MAP, "body: expected a map, got %s", type_name(root));
    return PROTO_OK;
}

static void *zone_alloc(proto_decoder_t *d, size_t n, size_t size)
{
    if (n == 0)
        return NULL;
    void *p = msgpack_zone_malloc(&d->zone, n * size);
    if (p)
        memset(p, 0, n * size);
    return p;
}

/* ---- Field access ------------------------------------------------------- */

/*
 * Walk a protocol map once and pick out the values of the known keys.
 * Keys must be strings and a known key may appear only once (two values for
 * one key would let different readers see different messages); unknown keys
 * are skipped. A nil value counts as absent.
 */
static proto_err_t map_collect(const msgpack_object *map, const char *path,
                               const char *const *names, size_t n, const msgpack_object **vals,
                               proto_error_t *err)
{
    const char *where = (path && *path) ? path : "body";
    for (size_t j = 0; j < n; j++)
        vals[j] = NULL;
    const msgpack_object_map *m = &map->via.map;
    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object *k = &m->ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR)
            return fail(err, PROTO_ERR_MALFORMED,
                        "%s: key #%" PRIu32 " is %s; keys must be strings", where, i, type_name(k));
        if (k->via.str.size == 0)
            continue; /* no protocol key is empty */
        for (size_t j = 0; j < n; j++) {
            if (names[j][0] == k->via.str.ptr[0] && k->via.str.size == strlen(names[j]) &&
                memcmp(k->via.str.ptr, names[j], k->via.str.size) == 0) {
                if (vals[j])
                    return fail(err, PROTO_ERR_MALFORMED, "%s: duplicate key \"%s\"", where,
                                names[j]);
                vals[j] = &m->ptr[i].val;
                break;
            }
        }
    }
    for (size_t j = 0; j < n; j++)
        if (vals[j] && vals[j]->type == MSGPACK_OBJECT_NIL)
            vals[j] = NULL;
    return PROTO_OK;
}

/* Reject text that is not UTF-8 (overlongs, surrogates and > U+10FFFF too). */
static int utf8_valid(const unsigned char *s, size_t n, size_t *bad)
{
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t need;
        uint32_t cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            need = 1, cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            need = 2, cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            need = 3, cp = c & 0x07;
        } else {
            *bad = i;
            return 0;
        }
        if (n - i <= need) {
            *bad = i;
            return 0;
        }
        for (size_t k = 1; k <= need; k++) {
            if ((s[i + k] & 0xc0) != 0x80) {
                *bad = i;
                return 0;
            }
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff)) {
            *bad = i;
            return 0;
        }
        i += need + 1;
    }
    return 1;
}

enum {
    STR_TEXT = 0,  /* any bytes */
    STR_IDENT = 1, /* UTF-8 without control characters: ids, names, codes */
    STR_HEX = 2,   /* absent/empty, or exactly 64 lowercase hex digits */
};

static proto_err_t get_str(const msgpack_object *v, const char *path, const char *name,
                           int required, uint32_t minlen, uint32_t maxlen, int kind,
                           proto_str_t *out, proto_error_t *err)
{
    char field[128]; /* "path.name", built only for an error message */
    out->ptr = "";
    out->len = 0;
    if (!v) {
        if (required)
            return fail(err, PROTO_ERR_MISSING_FIELD, "%s: required field is missing", FIELD);
        return PROTO_OK;
    }
    if (v->type != MSGPACK_OBJECT_STR)
        return fail(err, PROTO_ERR_WRONG_TYPE, "%s: expected a string, got %s", FIELD,
                    type_name(v));
    uint32_t n = v->via.str.size;
    const char *p = v->via.str.ptr;
    if (kind == STR_HEX) {
        if (n != 0 && !proto_is_hash_hex(proto_strn(p, n)))
            return fail(err, PROTO_ERR_BAD_VALUE,
                        "%s: expected %d lowercase hex digits (a SHA-256), got %" PRIu32
                        " bytes that are not",
                        FIELD, PROTO_HASH_HEX, n);
    } else {
        if (n < minlen)
            return fail(err, PROTO_ERR_BAD_VALUE, "%s: must not be empty", FIELD);
        if (n > maxlen)
            return fail(err, PROTO_ERR_BAD_VALUE, "%s: %" PRIu32 " bytes, the limit is %" PRIu32,
                        FIELD, n, maxlen);
        if (kind == STR_IDENT) {
            /* Printable ASCII, the usual case, needs one look per byte. */
            uint32_t i = 0;
            while (i < n && (unsigned char)p[i] >= 0x20 && (unsigned char)p[i] < 0x7f)
                i++;
            if (i < n) {
                size_t bad = 0;
                if (!utf8_valid((const unsigned char *)p, n, &bad))
                    return fail(err, PROTO_ERR_BAD_VALUE, "%s: not valid UTF-8 at byte %zu", FIELD,
                                bad);
                for (; i < n; i++)
                    if ((unsigned char)p[i] < 0x20 || p[i] == 0x7f)
                        return fail(err, PROTO_ERR_BAD_VALUE,
                                    "%s: control character at byte %" PRIu32, FIELD, i);
            }
        }
    }
    if (n) {
        out->ptr = p;
        out->len = n;
    }
    return PROTO_OK;
}

static proto_err_t get_uint(const msgpack_object *v, const char *path, const char *name,
                            int required, uint64_t min, uint64_t max, uint64_t *out,
                            proto_error_t *err)
{
    char field[128]; /* "path.name", built only for an error message */
    *out = 0;
    if (!v) {
        if (required)
            return fail(err, PROTO_ERR_MISSING_FIELD, "%s: required field is missing", FIELD);
        return PROTO_OK;
    }
    if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return fail(err, PROTO_ERR_BAD_VALUE,
                    "%s: %" PRId64 " is out of range %" PRIu64 "..%" PRIu64, FIELD, v->via.i64, min,
                    max);
    if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return fail(err, PROTO_ERR_WRONG_TYPE, "%s: expected an unsigned integer, got %s", FIELD,
                    type_name(v));
    if (v->via.u64 < min || v->via.u64 > max)
        return fail(err, PROTO_ERR_BAD_VALUE,
                    "%s: %" PRIu64 " is out of range %" PRIu64 "..%" PRIu64, FIELD, v->via.u64, min,
                    max);
    *out = v->via.u64;
    return PROTO_OK;
}

static proto_err_t get_typed(const msgpack_object *v, const char *path, const char *name,
                             int required, msgpack_object_type type, const char *what,
                             const msgpack_object **out, proto_error_t *err)
{
    char field[128]; /* "path.name", built only for an error message */
    *out = NULL;
    if (!v) {
        if (required)
            return fail(err, PROTO_ERR_MISSING_FIELD, "%s: required field is missing", FIELD);
        return PROTO_OK;
    }
    if (v->type != type)
        return fail(err, PROTO_ERR_WRONG_TYPE, "%s: expected %s, got %s", FIELD, what,
                    type_name(v));
    *out = v;
    return PROTO_OK;
}

static proto_err_t get_bool(const msgpack_object *v, const char *path, const char *name,
                            uint8_t *out, proto_error_t *err)
{
    const msgpack_object *o;
    proto_err_t rc = get_typed(v, path, name, 1, MSGPACK_OBJECT_BOOLEAN, "a boolean", &o, err);
    if (rc == PROTO_OK)
        *out = o->via.boolean ? 1 : 0;
    return rc;
}

/* A record nested in a message (a job, an ACCEPTED/REJECTED entry). */
static proto_err_t expect_record(const msgpack_object *o, const char *path, proto_error_t *err)
{
    if (!o || o->type != MSGPACK_OBJECT_MAP)
        return fail(err, PROTO_ERR_NOT_MAP, "%s: expected a map, got %s", *path ? path : "record",
                    o ? type_name(o) : "nothing");
    return PROTO_OK;
}

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        proto_err_t rc_ = (expr);                                                                  \
        if (rc_ != PROTO_OK)                                                                       \
            return rc_;                                                                            \
    } while (0)

/* ---- Responses ---------------------------------------------------------- */

/* Where a bad response value sits, for an error sentence: the responses
 * field and the item id, joined only when a sentence is written. */
typedef struct resp_where {
    const char *path;               /* the job's path, "" for none */
    const msgpack_object_str *item; /* the item id */
} resp_where_t;

static const char *resp_field(char *dst, size_t cap, const resp_where_t *w)
{
    char field[128];
    join_path(field, sizeof field, w->path, "responses");
    snprintf(dst, cap, "%s.%.*s", field, (int)w->item->size, w->item->ptr);
    return dst;
}

/* Responses are JSON-shaped: nil, bool, numbers, strings, arrays, and maps
 * with string keys. bin and ext have no JSON meaning and are refused. */
static proto_err_t check_json_value(const msgpack_object *o, const resp_where_t *w,
                                    proto_error_t *err)
{
    char item[160];
    switch (o->type) {
    case MSGPACK_OBJECT_BIN:
    case MSGPACK_OBJECT_EXT:
        return fail(err, PROTO_ERR_WRONG_TYPE,
                    "%s: contains %s; responses hold only nil, booleans, numbers, strings, "
                    "arrays and maps",
                    resp_field(item, sizeof item, w), type_name(o));
    case MSGPACK_OBJECT_ARRAY:
        for (uint32_t i = 0; i < o->via.array.size; i++)
            TRY(check_json_value(&o->via.array.ptr[i], w, err));
        return PROTO_OK;
    case MSGPACK_OBJECT_MAP:
        for (uint32_t i = 0; i < o->via.map.size; i++) {
            if (o->via.map.ptr[i].key.type != MSGPACK_OBJECT_STR)
                return fail(err, PROTO_ERR_WRONG_TYPE,
                            "%s: contains a map key that is %s; keys must be strings",
                            resp_field(item, sizeof item, w), type_name(&o->via.map.ptr[i].key));
            TRY(check_json_value(&o->via.map.ptr[i].val, w, err));
        }
        return PROTO_OK;
    default:
        return PROTO_OK;
    }
}

static int cmp_keys(const void *a, const void *b)
{
    const msgpack_object_str *x = *(const msgpack_object_str *const *)a;
    const msgpack_object_str *y = *(const msgpack_object_str *const *)b;
    uint32_t n = x->size < y->size ? x->size : y->size;
    int c = n ? memcmp(x->ptr, y->ptr, n) : 0;
    if (c)
        return c;
    return (x->size > y->size) - (x->size < y->size);
}

static proto_err_t check_responses(const msgpack_object *r, const char *path, proto_error_t *err)
{
    char field[128]; /* "path.responses", built only for an error message */
    const char *name = "responses";
    const msgpack_object_map *m = &r->via.map;
    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object *k = &m->ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR)
            return fail(err, PROTO_ERR_WRONG_TYPE,
                        "%s: item id #%" PRIu32 " is %s; item ids must be strings", FIELD, i,
                        type_name(k));
        if (k->via.str.size == 0)
            return fail(err, PROTO_ERR_BAD_VALUE, "%s: an item id is empty", FIELD);
        if (k->via.str.size > PROTO_MAX_NAME)
            return fail(err, PROTO_ERR_BAD_VALUE,
                        "%s: item id #%" PRIu32 " is %" PRIu32 " bytes, the limit is %d", FIELD, i,
                        k->via.str.size, PROTO_MAX_NAME);
        resp_where_t where = {path, &k->via.str};
        TRY(check_json_value(&m->ptr[i].val, &where, err));
    }
    if (m->size < 2)
        return PROTO_OK;
    /* Duplicate item ids would make the answer depend on the reader. A few
     * ids are compared pairwise (reporting the smallest duplicated id, as the
     * sort below does); more are sorted. */
    if (m->size <= 16) {
        const msgpack_object_str *dup = NULL;
        for (uint32_t i = 0; i < m->size; i++) {
            const msgpack_object_str *a = &m->ptr[i].key.via.str;
            for (uint32_t j = i + 1; j < m->size; j++) {
                const msgpack_object_str *b = &m->ptr[j].key.via.str;
                if (a->size == b->size && memcmp(a->ptr, b->ptr, a->size) == 0 &&
                    (!dup || cmp_keys(&a, &dup) < 0))
                    dup = a;
            }
        }
        if (dup)
            return fail(err, PROTO_ERR_BAD_VALUE, "%s: duplicate item id \"%.*s\"", FIELD,
                        (int)(dup->size > 64 ? 64 : dup->size), dup->ptr);
        return PROTO_OK;
    }
    const msgpack_object_str **keys = malloc(m->size * sizeof *keys);
    if (!keys)
        return fail(err, PROTO_ERR_NOMEM, "%s: out of memory", FIELD);
    for (uint32_t i = 0; i < m->size; i++)
        keys[i] = &m->ptr[i].key.via.str;
    qsort(keys, m->size, sizeof *keys, cmp_keys);
    proto_err_t rc = PROTO_OK;
    for (uint32_t i = 1; i < m->size; i++) {
        if (cmp_keys(&keys[i - 1], &keys[i]) == 0) {
            rc = fail(err, PROTO_ERR_BAD_VALUE, "%s: duplicate item id \"%.*s\"", FIELD,
                      (int)(keys[i]->size > 64 ? 64 : keys[i]->size), keys[i]->ptr);
            break;
        }
    }
    free(keys);
    return rc;
}

/* ---- Job record --------------------------------------------------------- */

enum {
    JF_JOB_ID,
    JF_TENANT,
    JF_CANDIDATE,
    JF_RUBRIC,
    JF_RUBRIC_HASH,
    JF_RUBRIC_INLINE,
    JF_RESPONSES,
    JF_TTR_MS,
    JF_META,
    JF_COUNT
};
static const char *const job_fields[JF_COUNT] = {
    "job_id",        "tenant",    "candidate", "rubric", "rubric_hash",
    "rubric_inline", "responses", "ttr_ms",    "meta",
};

static proto_err_t job_validate(const msgpack_object *o, const char *path, proto_job_t *out,
                                proto_error_t *err)
{
    const msgpack_object *v[JF_COUNT];
    TRY(expect_record(o, path, err));
    proto_err_t collected = map_collect(o, path, job_fields, JF_COUNT, v, err);
    if (collected != PROTO_OK) {
        /* Best effort: a refused job is easier to report when it has an id. */
        proto_error_t scratch;
        (void)get_str(v[JF_JOB_ID], path, "job_id", 1, 1, PROTO_MAX_JOB_ID, STR_IDENT, &out->job_id,
                      &scratch);
        return collected;
    }
    TRY(get_str(v[JF_JOB_ID], path, "job_id", 1, 1, PROTO_MAX_JOB_ID, STR_IDENT, &out->job_id,
                err));
    TRY(get_str(v[JF_TENANT], path, "tenant", 1, 1, PROTO_MAX_NAME, STR_IDENT, &out->tenant, err));
    TRY(get_str(v[JF_CANDIDATE], path, "candidate", 0, 0, PROTO_MAX_NAME, STR_IDENT,
                &out->candidate, err));
    TRY(get_str(v[JF_RUBRIC], path, "rubric", 1, 1, PROTO_MAX_NAME, STR_IDENT, &out->rubric, err));
    TRY(get_str(v[JF_RUBRIC_HASH], path, "rubric_hash", 0, 0, PROTO_HASH_HEX, STR_HEX,
                &out->rubric_hash, err));
    TRY(get_str(v[JF_RUBRIC_INLINE], path, "rubric_inline", 0, 0, UINT32_MAX, STR_TEXT,
                &out->rubric_inline, err));
    TRY(get_typed(v[JF_RESPONSES], path, "responses", 1, MSGPACK_OBJECT_MAP, "a map",
                  &out->responses, err));
    TRY(check_responses(out->responses, path, err));
    uint64_t ttr;
    TRY(get_uint(v[JF_TTR_MS], path, "ttr_ms", 0, 0, PROTO_MAX_TTR_MS, &ttr, err));
    out->ttr_ms = (uint32_t)ttr;
    TRY(get_typed(v[JF_META], path, "meta", 0, MSGPACK_OBJECT_MAP, "a map", &out->meta, err));
    return PROTO_OK;
}

proto_err_t proto_job_from_object(const msgpack_object *o, const char *path, proto_job_t *out,
                                  proto_error_t *err)
{
    proto_error_t e;
    assert(out);
    memset(out, 0, sizeof *out);
    out->job_id = out->tenant = out->candidate = out->rubric = proto_str(NULL);
    out->rubric_hash = out->rubric_inline = proto_str(NULL);
    out->raw = o;
    set_ok(&e);
    proto_err_t rc = job_validate(o, path ? path : "", out, &e);
    out->err = e;
    if (err)
        *err = e;
    return rc;
}

/* ---- Message decoders --------------------------------------------------- */

/* "jobs" + 3 -> "jobs[3]" (dst holds at least 32 bytes), without printf. */
static const char *index_path(char *dst, const char *base, uint32_t i)
{
    size_t n = strlen(base);
    memcpy(dst, base, n);
    dst[n++] = '[';
    char digits[10];
    int k = 0;
    do {
        digits[k++] = (char)('0' + i % 10);
        i /= 10;
    } while (i);
    while (k)
        dst[n++] = digits[--k];
    dst[n++] = ']';
    dst[n] = '\0';
    return dst;
}

proto_err_t proto_decode_submit(proto_decoder_t *d, const void *body, size_t len,
                                proto_submit_t *out, proto_error_t *err)
{
    static const char *const names[] = {"seq", "jobs", "batch_results"};
    const msgpack_object *v[3], *jobs;
    msgpack_object root;
    memset(out, 0, sizeof *out);
    set_ok(err);
    TRY(decode_body(d, body, len, &root, err));
    TRY(map_collect(&root, "", names, 3, v, err));
    TRY(get_uint(v[0], "", "seq", 0, 0, UINT64_MAX, &out->seq, err));
    TRY(get_typed(v[1], "", "jobs", 1, MSGPACK_OBJECT_ARRAY, "an array", &jobs, err));
    if (v[2])
        TRY(get_bool(v[2], "", "batch_results", &out->batch_results, err));
    uint32_t n = jobs->via.array.size;
    if (n == 0)
        return fail(err, PROTO_ERR_BAD_VALUE, "jobs: empty, a SUBMIT carries 1..%d jobs",
                    PROTO_MAX_BATCH);
    if (n > PROTO_MAX_BATCH)
        return fail(err, PROTO_ERR_BATCH_TOO_LARGE, "jobs: %" PRIu32 " jobs, the limit is %d", n,
                    PROTO_MAX_BATCH);
    out->jobs = zone_alloc(d, n, sizeof *out->jobs);
    if (!out->jobs)
        return fail(err, PROTO_ERR_NOMEM, "jobs: out of memory");
    out->njobs = n;
    for (uint32_t i = 0; i < n; i++) {
        char path[32];
        index_path(path, "jobs", i);
        proto_err_t rc = proto_job_from_object(&jobs->via.array.ptr[i], path, &out->jobs[i], NULL);
        if (rc == PROTO_ERR_NOMEM) {
            out->njobs = 0;
            return fail(err, PROTO_ERR_NOMEM, "%s", out->jobs[i].err.message);
        }
    }
    return PROTO_OK;
}

proto_err_t proto_decode_accepted(proto_decoder_t *d, const void *body, size_t len,
                                  proto_accepted_t *out, proto_error_t *err)
{
    static const char *const names[] = {"seq", "jobs"};
    static const char *const entry_names[] = {"job_id", "state", "duplicate"};
    const msgpack_object *v[3], *jobs;
    msgpack_object root;
    memset(out, 0, sizeof *out);
    set_ok(err);
    TRY(decode_body(d, body, len, &root, err));
    TRY(map_collect(&root, "", names, 2, v, err));
    TRY(get_uint(v[0], "", "seq", 1, 0, UINT64_MAX, &out->seq, err));
    TRY(get_typed(v[1], "", "jobs", 1, MSGPACK_OBJECT_ARRAY, "an array", &jobs, err));
    uint32_t n = jobs->via.array.size;
    if (n > PROTO_MAX_BATCH)
        return fail(err, PROTO_ERR_BATCH_TOO_LARGE, "jobs: %" PRIu32 " entries, the limit is %d", n,
                    PROTO_MAX_BATCH);
    proto_accepted_job_t *js = zone_alloc(d, n, sizeof *js);
    if (n && !js)
        return fail(err, PROTO_ERR_NOMEM, "jobs: out of memory");
    for (uint32_t i = 0; i < n; i++) {
        char path[32];
        proto_str_t state;
        index_path(path, "jobs", i);
        const msgpack_object *e = &jobs->via.array.ptr[i];
        TRY(expect_record(e, path, err));
        TRY(map_collect(e, path, entry_names, 3, v, err));
        TRY(get_str(v[0], path, "job_id", 1, 1, PROTO_MAX_JOB_ID, STR_IDENT, &js[i].job_id, err));
        TRY(get_str(v[1], path, "state", 1, 1, 16, STR_IDENT, &state, err));
        int st = -1;
        for (int k = 0; k < PROTO_STATE_COUNT; k++)
            if (proto_str_eq(state, state_names[k]))
                st = k;
        if (st < 0)
            return fail(err, PROTO_ERR_BAD_VALUE,
                        "%s.state: \"%.*s\" is not one of queued, running, done", path,
                        (int)state.len, state.ptr);
        js[i].state = (proto_job_state_t)st;
        TRY(get_bool(v[2], path, "duplicate", &js[i].duplicate, err));
    }
    out->njobs = n;
    out->jobs = js;
    return PROTO_OK;
}

proto_err_t proto_decode_rejected(proto_decoder_t *d, const void *body, size_t len,
                                  proto_rejected_t *out, proto_error_t *err)
{
    static const char *const names[] = {"seq", "code", "message", "jobs"};
    static const char *const entry_names[] = {"job_id", "code", "message"};
    const msgpack_object *v[4], *jobs;
    msgpack_object root;
    memset(out, 0, sizeof *out);
    out->code = out->message = proto_str(NULL);
    set_ok(err);
    TRY(decode_body(d, body, len, &root, err));
    TRY(map_collect(&root, "", names, 4, v, err));
    TRY(get_uint(v[0], "", "seq", 1, 0, UINT64_MAX, &out->seq, err));
    TRY(get_str(v[1], "", "code", 1, 1, PROTO_MAX_NAME, STR_IDENT, &out->code, err));
    TRY(get_str(v[2], "", "message", 1, 0, PROTO_MAX_MESSAGE, STR_TEXT, &out->message, err));
    TRY(get_typed(v[3], "", "jobs", 1, MSGPACK_OBJECT_ARRAY, "an array", &jobs, err));
    uint32_t n = jobs->via.array.size;
    if (n > PROTO_MAX_BATCH)
        return fail(err, PROTO_ERR_BATCH_TOO_LARGE, "jobs: %" PRIu32 " entries, the limit is %d", n,
                    PROTO_MAX_BATCH);
    proto_rejected_job_t *js = zone_alloc(d, n, sizeof *js);
    if (n && !js)
        return fail(err, PROTO_ERR_NOMEM, "jobs: out of memory");
    for (uint32_t i = 0; i < n; i++) {
        char path[32];
        index_path(path, "jobs", i);
        const msgpack_object *e = &jobs->via.array.ptr[i];
        TRY(expect_record(e, path, err));
        TRY(map_collect(e, path, entry_names, 3, v, err));
        TRY(get_str(v[0], path, "job_id", 1, 0, PROTO_MAX_JOB_ID, STR_IDENT, &js[i].job_id, err));
        TRY(get_str(v[1], path, "code", 1, 1, PROTO_MAX_NAME, STR_IDENT, &js[i].code, err));
        TRY(get_str(v[2], path, "message", 1, 0, PROTO_MAX_MESSAGE, STR_TEXT, &js[i].message, err));
    }
    out->njobs = n;
    out->jobs = js;
    return PROTO_OK;
}

proto_err_t proto_decode_ready(proto_decoder_t *d, const void *body, size_t len, proto_ready_t *out,
                               proto_error_t *err)
{
    static const char *const names[] = {"worker", "credit", "engine", "threads", "batch"};
    const msgpack_object *v[5];
    msgpack_object root;
    uint64_t credit, threads, batch;
    memset(out, 0, sizeof *out);
    out->worker = out->engine = proto_str(NULL);
    set_ok(err);
    TRY(decode_body(d, body, len, &root, err));
    TRY(map_collect(&root, "", names, 5, v, err));
    TRY(get_str(v[0], "", "worker", 1, 1, PROTO_MAX_NAME, STR_IDENT, &out->worker, err));
    TRY(get_uint(v[1], "", "credit", 1, 1, PROTO_MAX_CREDIT, &credit, err));
    out->credit = (uint32_t)credit;
    TRY(get_str(v[2], "", "engine", 0, 0, PROTO_MAX_NAME, STR_IDENT, &out->engine, err));
    TRY(get_uint(v[3], "", "threads", 0, 0, PROTO_MAX_CREDIT, &threads, err));
    out->threads = (uint32_t)threads;
    TRY(get_uint(v[4], "", "batch", 0, 0, PROTO_MAX_BATCH_ITEMS, &batch, err));
    out->batch = (uint32_t)batch;
    return PROTO_OK;
}

proto_err_t proto_decode_job(proto_decoder_t *d, const void *body, size_t len, proto_jobmsg_t *out,
                             proto_error_t *err)
{
    static const char *const names[] = {"attempt", "accepted_us", "ttr_ms", "rubric_hash", "job"};
    const msgpack_object *v[5];
    msgpack_object root;
    uint64_t attempt, ttr;
    memset(out, 0, sizeof *out);
    out->rubric_hash = proto_str(NULL);
    set_ok(err);
    TRY(decode_body(d, body, len, &root, err));
    TRY(map_collect(&root, "", names, 5, v, err));
    TRY(get_uint(v[0], "", "attempt", 1, 1, UINT32_MAX, &attempt, err));
    out->attempt = (uint32_t)attempt;
    TRY(get_uint(v[1], "", "accepted_us", 1, 0, UINT64_MAX, &out->accepted_us, err));
    TRY(get_uint(v[2], "", "ttr_ms", 1, 1, PROTO_MAX_TTR_MS, &ttr, err));
    out->ttr_ms = (uint32_t)ttr;
    TRY(get_str(v[3], "", "rubric_hash", 0, 0, PROTO_HASH_HEX, STR_HEX, &out->rubric_hash, err));
    if (!v[4])
        return fail(err, PROTO_ERR_MISSING_FIELD, "job: required field is missing");
    return proto_job_from_object(v[4], "job", &out->job, err);
}

proto_err_t proto_decode_heartbeat(proto_decoder_t *d, const void *body, size_t len,
                                   proto_heartbeat_t *out, proto_error_t *err)
{
    static const char *const names[] = {"inflight"};
    const msgpack_object *v[1];
    msgpack_object root;
    uint64_t inflight;
    memset(out, 0, sizeof *out);
    set_ok(err);
    TRY(decode_body(d, body, len, &root, err));
    TRY(map_collect(&root, "", names, 1, v, err));
    TRY(get_uint(v[0], "", "inflight", 0, 0, UINT32_MAX, &inflight, err));
    out->inflight = (uint32_t)inflight;
    return PROTO_OK;
}

proto_err_t proto_decode_disconnect(proto_decoder_t *d, const void *body, size_t len,
                                    proto_disconnect_t *out, proto_error_t *err)
{
    static const char *const names[] = {"reason"};
    const msgpack_object *v[1];
    msgpack_object root;
    memset(out, 0, sizeof *out);
    out->reason = proto_str(NULL);
    set_ok(err);
    TRY(decode_body(d, body, len, &root, err));
    TRY(map_collect(&root, "", names, 1, v, err));
    TRY(get_str(v[0], "", "reason", 0, 0, PROTO_MAX_MESSAGE, STR_TEXT, &out->reason, err));
    return PROTO_OK;
}

proto_err_t proto_decode_cancel(proto_decoder_t *d, const void *body, size_t len,
                                proto_cancel_t *out, proto_error_t *err)
{
    static const char *const names[] = {"job_id", "attempt", "reason"};
    const msgpack_object *v[3];
    msgpack_object root;
    uint64_t attempt;
    memset(out, 0, sizeof *out);
    out->job_id = proto_str(NULL);
    out->reason = proto_str(NULL);
    set_ok(err);
    TRY(decode_body(d, body, len, &root, err));
    TRY(map_collect(&root, "", names, 3, v, err));
    TRY(get_str(v[0], "", "job_id", 1, 1, PROTO_MAX_JOB_ID, STR_IDENT, &out->job_id, err));
    TRY(get_uint(v[1], "", "attempt", 0, 0, UINT32_MAX, &attempt, err));
    out->attempt = (uint32_t)attempt;
    TRY(get_str(v[2], "", "reason", 0, 0, PROTO_MAX_MESSAGE, STR_TEXT, &out->reason, err));
    return PROTO_OK;
}

enum {
    RF_V,
    RF_JOB_ID,
    RF_TENANT,
    RF_CANDIDATE,
    RF_RUBRIC,
    RF_RUBRIC_HASH,
    RF_ENGINE,
    RF_WORKER,
    RF_ATTEMPT,
    RF_ACCEPTED_US,
    RF_STARTED_US,
    RF_FINISHED_US,
    RF_DURATION_US,
    RF_STATUS,
    RF_RESULT,
    RF_DIGEST,
    RF_ERROR,
    RF_COUNT
};
static const char *const result_fields[RF_COUNT] = {
    "v",           "job_id", "tenant",  "candidate",   "rubric",     "rubric_hash",
    "engine",      "worker", "attempt", "accepted_us", "started_us", "finished_us",
    "duration_us", "status", "result",  "digest",      "error",
};

/* Collects the two keys of a RESULT's error map (the decoder's unpacked
 * map, or raw bytes for the shallow decode). */
typedef proto_err_t (*error_collect_fn)(void *ctx, const msgpack_object *emap,
                                        const msgpack_object **ev, proto_error_t *err);

/* The checks of a RESULT's fields, in table order, shared by the full and
 * the shallow decode so both report the same first problem. */
static proto_err_t result_check(const msgpack_object *const *v, error_collect_fn collect, void *ctx,
                                proto_result_t *out, proto_error_t *err)
{
    const msgpack_object *ev[2], *emap;
    uint64_t u;
    TRY(get_uint(v[RF_V], "", "v", 1, 0, UINT64_MAX, &u, err));
    if (u != PROTO_VERSION)
        return fail(err, PROTO_ERR_BAD_VALUE, "v: %" PRIu64 " is not a known version (%d)", u,
                    PROTO_VERSION);
    TRY(get_str(v[RF_JOB_ID], "", "job_id", 1, 1, PROTO_MAX_JOB_ID, STR_IDENT, &out->job_id, err));
    TRY(get_str(v[RF_TENANT], "", "tenant", 1, 1, PROTO_MAX_NAME, STR_IDENT, &out->tenant, err));
    TRY(get_str(v[RF_CANDIDATE], "", "candidate", 0, 0, PROTO_MAX_NAME, STR_IDENT, &out->candidate,
                err));
    TRY(get_str(v[RF_RUBRIC], "", "rubric", 1, 1, PROTO_MAX_NAME, STR_IDENT, &out->rubric, err));
    TRY(get_str(v[RF_RUBRIC_HASH], "", "rubric_hash", 0, 0, PROTO_HASH_HEX, STR_HEX,
                &out->rubric_hash, err));
    TRY(get_str(v[RF_ENGINE], "", "engine", 1, 1, PROTO_MAX_NAME, STR_IDENT, &out->engine, err));
    TRY(get_str(v[RF_WORKER], "", "worker", 1, 1, PROTO_MAX_NAME, STR_IDENT, &out->worker, err));
    TRY(get_uint(v[RF_ATTEMPT], "", "attempt", 1, 1, UINT32_MAX, &u, err));
    out->attempt = (uint32_t)u;
    TRY(get_uint(v[RF_ACCEPTED_US], "", "accepted_us", 1, 0, UINT64_MAX, &out->accepted_us, err));
    TRY(get_uint(v[RF_STARTED_US], "", "started_us", 1, 0, UINT64_MAX, &out->started_us, err));
    TRY(get_uint(v[RF_FINISHED_US], "", "finished_us", 1, 0, UINT64_MAX, &out->finished_us, err));
    TRY(get_uint(v[RF_DURATION_US], "", "duration_us", 1, 0, UINT64_MAX, &out->duration_us, err));
    TRY(get_str(v[RF_STATUS], "", "status", 1, 1, 16, STR_IDENT, &out->status, err));
    if (proto_str_eq(out->status, "ok")) {
        TRY(get_typed(v[RF_RESULT], "", "result", 1, MSGPACK_OBJECT_MAP, "a map", &out->result,
                      err));
        TRY(get_str(v[RF_DIGEST], "", "digest", 1, 1, PROTO_HASH_HEX, STR_HEX, &out->digest, err));
        if (out->digest.len == 0)
            return fail(err, PROTO_ERR_BAD_VALUE,
                        "digest: expected %d lowercase hex digits (a SHA-256), got an empty string",
                        PROTO_HASH_HEX);
    } else if (proto_str_eq(out->status, "error")) {
        TRY(get_typed(v[RF_ERROR], "", "error", 1, MSGPACK_OBJECT_MAP, "a map", &emap, err));
        TRY(collect(ctx, emap, ev, err));
        TRY(get_str(ev[0], "error", "code", 1, 1, PROTO_MAX_NAME, STR_IDENT, &out->error_code,
                    err));
        TRY(get_str(ev[1], "error", "message", 1, 0, PROTO_MAX_MESSAGE, STR_TEXT,
                    &out->error_message, err));
    } else {
        return fail(err, PROTO_ERR_BAD_VALUE, "status: \"%.*s\" is neither \"ok\" nor \"error\"",
                    (int)out->status.len, out->status.ptr);
    }
    return PROTO_OK;
}

static const char *const result_error_fields[] = {"code", "message"};

static proto_err_t collect_unpacked_error(void *ctx, const msgpack_object *emap,
                                          const msgpack_object **ev, proto_error_t *err)
{
    (void)ctx;
    return map_collect(emap, "error", result_error_fields, 2, ev, err);
}

static void result_init(proto_result_t *out)
{
    memset(out, 0, sizeof *out);
    out->job_id = out->tenant = out->candidate = out->rubric = out->rubric_hash = proto_str(NULL);
    out->engine = out->worker = out->status = out->error_code = out->error_message = out->digest =
        proto_str(NULL);
}

proto_err_t proto_decode_result(proto_decoder_t *d, const void *body, size_t len,
                                proto_result_t *out, proto_error_t *err)
{
    const msgpack_object *v[RF_COUNT];
    msgpack_object root;
    result_init(out);
    set_ok(err);
    TRY(decode_body(d, body, len, &root, err));
    TRY(map_collect(&root, "", result_fields, RF_COUNT, v, err));
    return result_check(v, collect_unpacked_error, NULL, out, err);
}

/* ---- Shallow reading of raw msgpack ------------------------------------ */
/*
 * For bytes body_scan has accepted: every header is complete and every
 * declared length fits, so these readers need no bounds checks of their own
 * beyond what the scan proved.
 */

/* Read the value at *pos into o. Scalars are filled in full (strings point
 * into p); for an array or map only the type and element count are set (ptr
 * NULL) and *first gets the offset of its first element. *pos moves past
 * the header and, for scalars, the payload. */
static void raw_header(const uint8_t *p, size_t *pos, msgpack_object *o, size_t *first)
{
    uint8_t b = p[(*pos)++];
    memset(o, 0, sizeof *o);
    if (b <= 0x7f) {
        o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
        o->via.u64 = b;
    } else if (b >= 0xe0) {
        o->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
        o->via.i64 = (int8_t)b;
    } else if (b <= 0x8f) {
        o->type = MSGPACK_OBJECT_MAP;
        o->via.map.size = b & 0x0fu;
    } else if (b <= 0x9f) {
        o->type = MSGPACK_OBJECT_ARRAY;
        o->via.array.size = b & 0x0fu;
    } else if (b <= 0xbf) {
        o->type = MSGPACK_OBJECT_STR;
        o->via.str.size = b & 0x1fu;
        o->via.str.ptr = (const char *)p + *pos;
        *pos += o->via.str.size;
    } else {
        uint64_t n;
        int64_t i;
        switch (b) {
        case 0xc0:
            o->type = MSGPACK_OBJECT_NIL;
            break;
        case 0xc2:
        case 0xc3:
            o->type = MSGPACK_OBJECT_BOOLEAN;
            o->via.boolean = b == 0xc3;
            break;
        case 0xc4:
        case 0xc5:
        case 0xc6:
        case 0xd9:
        case 0xda:
        case 0xdb: {
            int lb = (b == 0xc4 || b == 0xd9) ? 1 : (b == 0xc5 || b == 0xda) ? 2 : 4;
            n = load_be(p + *pos, lb);
            *pos += (size_t)lb;
            o->type = b >= 0xd9 ? MSGPACK_OBJECT_STR : MSGPACK_OBJECT_BIN;
            o->via.str.size = (uint32_t)n; /* str and bin share the layout */
            o->via.str.ptr = (const char *)p + *pos;
            *pos += (size_t)n;
            break;
        }
        case 0xc7:
        case 0xc8:
        case 0xc9: {
            int lb = b == 0xc7 ? 1 : b == 0xc8 ? 2 : 4;
            n = load_be(p + *pos, lb);
            *pos += (size_t)lb;
            o->type = MSGPACK_OBJECT_EXT;
            o->via.ext.type = (int8_t)p[*pos];
            o->via.ext.size = (uint32_t)n;
            o->via.ext.ptr = (const char *)p + *pos + 1;
            *pos += 1 + (size_t)n;
            break;
        }
        case 0xd4:
        case 0xd5:
        case 0xd6:
        case 0xd7:
        case 0xd8:
            o->type = MSGPACK_OBJECT_EXT;
            o->via.ext.type = (int8_t)p[*pos];
            o->via.ext.size = 1u << (b - 0xd4);
            o->via.ext.ptr = (const char *)p + *pos + 1;
            *pos += 1 + o->via.ext.size;
            break;
        case 0xca: {
            uint32_t bits = (uint32_t)load_be(p + *pos, 4);
            float f;
            memcpy(&f, &bits, sizeof f);
            o->type = MSGPACK_OBJECT_FLOAT32;
            o->via.f64 = f;
            *pos += 4;
            break;
        }
        case 0xcb: {
            uint64_t bits = load_be(p + *pos, 8);
            memcpy(&o->via.f64, &bits, sizeof o->via.f64);
            o->type = MSGPACK_OBJECT_FLOAT64;
            *pos += 8;
            break;
        }
        case 0xcc:
        case 0xcd:
        case 0xce:
        case 0xcf: {
            int nb = 1 << (b - 0xcc);
            o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
            o->via.u64 = load_be(p + *pos, nb);
            *pos += (size_t)nb;
            break;
        }
        case 0xd0:
        case 0xd1:
        case 0xd2:
        case 0xd3: {
            int nb = 1 << (b - 0xd0);
            n = load_be(p + *pos, nb);
            *pos += (size_t)nb;
            if (nb < 8 && (n >> (8 * nb - 1)))
                n |= ~0ull << (8 * nb); /* sign-extend */
            memcpy(&i, &n, sizeof i);
            if (i >= 0) {
                o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
                o->via.u64 = (uint64_t)i;
            } else {
                o->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
                o->via.i64 = i;
            }
            break;
        }
        case 0xdc:
        case 0xdd:
        case 0xde:
        case 0xdf: {
            int lb = (b == 0xdc || b == 0xde) ? 2 : 4;
            n = load_be(p + *pos, lb);
            *pos += (size_t)lb;
            if (b >= 0xde) {
                o->type = MSGPACK_OBJECT_MAP;
                o->via.map.size = (uint32_t)n;
            } else {
                o->type = MSGPACK_OBJECT_ARRAY;
                o->via.array.size = (uint32_t)n;
            }
            break;
        }
        default: /* 0xc1: body_scan refuses it */
            o->type = MSGPACK_OBJECT_NIL;
            break;
        }
    }
    if (first)
        *first = *pos;
}

/* Move *pos past the whole value that starts there (headers only: nothing
 * is decoded). */
static void raw_skip(const uint8_t *p, size_t *pos)
{
    uint64_t left = 1;
    size_t at = *pos;
    while (left) {
        uint8_t b = p[at++];
        left--;
        unsigned a = skip_arg[b];
        switch (skip_kind[b]) {
        case 0:
            at += a;
            break;
        case 1:
            left += 2u * (b & 0x0fu);
            break;
        case 2:
            left += b & 0x0fu;
            break;
        case 3:
            at += (a & 7u) + ((a & 8u) ? 1u : 0u) + (size_t)load_be(p + at, (int)(a & 7u));
            break;
        case 4:
            left += load_be(p + at, (int)a);
            at += a;
            break;
        default:
            left += 2 * load_be(p + at, (int)a);
            at += a;
            break;
        }
    }
    *pos = at;
}

/* map_collect over raw bytes: the map's elements start at *pos. Values of
 * known keys go to store[j] (containers shallow, their first element's
 * offset in firsts[j]) and vals[j] points at them, nil counting as absent.
 * Same rules and sentences as map_collect. Unless walk_last, the value of
 * the last pair is not walked (nothing after it is read) and *pos is not
 * meaningful after; with it, *pos ends past the map on success. */
static proto_err_t raw_map_collect(const uint8_t *p, size_t *pos, uint32_t size, const char *path,
                                   const char *const *names, size_t n, msgpack_object *store,
                                   size_t *firsts, const msgpack_object **vals, int walk_last,
                                   proto_error_t *err)
{
    const char *where = (path && *path) ? path : "body";
    for (size_t j = 0; j < n; j++)
        vals[j] = NULL;
    for (uint32_t i = 0; i < size; i++) {
        msgpack_object k;
        raw_header(p, pos, &k, NULL);
        if (k.type != MSGPACK_OBJECT_STR)
            return fail(err, PROTO_ERR_MALFORMED,
                        "%s: key #%" PRIu32 " is %s; keys must be strings", where, i,
                        type_name(&k));
        size_t j = n;
        if (k.via.str.size)
            for (j = 0; j < n; j++)
                if (names[j][0] == k.via.str.ptr[0] && k.via.str.size == strlen(names[j]) &&
                    memcmp(k.via.str.ptr, names[j], k.via.str.size) == 0)
                    break;
        int last = i + 1 == size && !walk_last; /* nothing is read after it: no need to skip it */
        if (j == n) {
            if (!last)
                raw_skip(p, pos);
            continue;
        }
        if (vals[j])
            return fail(err, PROTO_ERR_MALFORMED, "%s: duplicate key \"%s\"", where, names[j]);
        size_t at = *pos;
        raw_header(p, pos, &store[j], &firsts[j]);
        if (!last &&
            (store[j].type == MSGPACK_OBJECT_MAP || store[j].type == MSGPACK_OBJECT_ARRAY)) {
            *pos = at;
            raw_skip(p, pos);
        }
        vals[j] = &store[j];
    }
    for (size_t j = 0; j < n; j++)
        if (vals[j] && vals[j]->type == MSGPACK_OBJECT_NIL)
            vals[j] = NULL;
    return PROTO_OK;
}

typedef struct raw_error_ctx {
    const uint8_t *p;
    size_t first; /* offset of the error map's first element */
    msgpack_object store[2];
} raw_error_ctx_t;

static proto_err_t collect_raw_error(void *ctx, const msgpack_object *emap,
                                     const msgpack_object **ev, proto_error_t *err)
{
    raw_error_ctx_t *c = ctx;
    size_t pos = c->first, firsts[2];
    return raw_map_collect(c->p, &pos, emap->via.map.size, "error", result_error_fields, 2,
                           c->store, firsts, ev, 0, err);
}

/* The shallow RESULT decode of bytes body_scan has accepted. With end,
 * *end gets the element's length when its map could be walked (0 when not). */
static proto_err_t result_head_scanned(const uint8_t *p, proto_result_t *out, proto_error_t *err,
                                       size_t *end)
{
    const msgpack_object *v[RF_COUNT];
    msgpack_object store[RF_COUNT], root;
    size_t firsts[RF_COUNT], pos = 0, first;
    result_init(out);
    set_ok(err);
    raw_header(p, &pos, &root, &first);
    if (root.type != MSGPACK_OBJECT_MAP)
        return fail(err, PROTO_ERR_NOT_MAP, "body: expected a map, got %s", type_name(&root));
    pos = first;
    if (end)
        *end = 0;
    TRY(raw_map_collect(p, &pos, root.via.map.size, "", result_fields, RF_COUNT, store, firsts, v,
                        end != NULL, err));
    if (end)
        *end = pos;
    raw_error_ctx_t ctx = {.p = p, .first = firsts[RF_ERROR]};
    proto_err_t rc = result_check(v, collect_raw_error, &ctx, out, err);
    out->result = NULL; /* shallow: the result map is not unpacked */
    return rc;
}

proto_err_t proto_decode_result_head(const void *body, size_t len, size_t max_body,
                                     proto_result_t *out, proto_error_t *err)
{
    result_init(out);
    set_ok(err);
    if (!max_body)
        max_body = PROTO_DEFAULT_MAX_BODY;
    if (len > max_body)
        return fail(err, PROTO_ERR_TOO_LARGE, "body: %zu bytes, the limit is %zu", len, max_body);
    if (len > 0 && !body)
        return fail(err, PROTO_ERR_MALFORMED, "body: missing");
    TRY(body_scan(body, len, "body", err));
    return result_head_scanned(body, out, err, NULL);
}

/* The message-level checks of a JOBS / RESULTS body: *first gets the
 * offset of the first element and *count their number. */
static proto_err_t batch_open(const char *key, const char *cmd, const void *body, size_t len,
                              size_t max_body, uint32_t max_items, size_t *at, uint32_t *count,
                              proto_error_t *err)
{
    const char *const names[] = {key};
    const msgpack_object *v[1];
    msgpack_object store[1], root;
    size_t firsts[1], pos = 0, first;
    const uint8_t *p = body;
    set_ok(err);
    if (!max_body)
        max_body = PROTO_DEFAULT_MAX_BODY;
    if (len > max_body)
        return fail(err, PROTO_ERR_TOO_LARGE, "body: %zu bytes, the limit is %zu", len, max_body);
    if (len > 0 && !body)
        return fail(err, PROTO_ERR_MALFORMED, "body: missing");
    if (max_items == 0 || max_items > PROTO_MAX_BATCH_ITEMS)
        return fail(err, PROTO_ERR_NOMEM, "%s: no room for the elements", key);
    TRY(body_scan(p, len, "body", err));
    raw_header(p, &pos, &root, &first);
    if (root.type != MSGPACK_OBJECT_MAP)
        return fail(err, PROTO_ERR_NOT_MAP, "body: expected a map, got %s", type_name(&root));
    pos = first;
    TRY(raw_map_collect(p, &pos, root.via.map.size, "", names, 1, store, firsts, v, 0, err));
    const msgpack_object *arr;
    const char *path = "", *name = key;
    char field[128];
    TRY(get_typed(v[0], path, name, 1, MSGPACK_OBJECT_ARRAY, "an array", &arr, err));
    *count = arr->via.array.size;
    if (*count == 0)
        return fail(err, PROTO_ERR_BAD_VALUE, "%s: empty, a %s carries 1..%d", FIELD, cmd,
                    PROTO_MAX_BATCH_ITEMS);
    if (*count > max_items)
        return fail(err, PROTO_ERR_BATCH_TOO_LARGE,
                    "%s: %" PRIu32 " elements, the limit is %" PRIu32, FIELD, *count, max_items);
    *at = firsts[0];
    return PROTO_OK;
}

/* JOBS / RESULTS: {key: [map, ...]}, sliced into the elements' bytes. */
static proto_err_t decode_batch(const char *key, const char *cmd, const void *body, size_t len,
                                size_t max_body, proto_bytes_t *items, uint32_t max_items,
                                uint32_t *n, proto_error_t *err)
{
    const uint8_t *p = body;
    size_t pos;
    uint32_t count;
    *n = 0;
    if (!items)
        return fail(err, PROTO_ERR_NOMEM, "%s: no room for the elements", key);
    TRY(batch_open(key, cmd, body, len, max_body, max_items, &pos, &count, err));
    for (uint32_t i = 0; i < count; i++) {
        size_t at = pos;
        msgpack_object e;
        raw_header(p, &pos, &e, NULL);
        if (e.type != MSGPACK_OBJECT_MAP) {
            char ipath[48];
            return fail(err, PROTO_ERR_NOT_MAP, "%s: expected a map, got %s",
                        index_path(ipath, key, i), type_name(&e));
        }
        pos = at;
        raw_skip(p, &pos);
        items[i].ptr = p + at;
        items[i].len = pos - at;
    }
    *n = count;
    return PROTO_OK;
}

proto_err_t proto_decode_jobs(const void *body, size_t len, size_t max_body, proto_bytes_t *items,
                              uint32_t max_items, uint32_t *n, proto_error_t *err)
{
    return decode_batch("jobs", "JOBS", body, len, max_body, items, max_items, n, err);
}

proto_err_t proto_decode_results(const void *body, size_t len, size_t max_body,
                                 proto_bytes_t *items, uint32_t max_items, uint32_t *n,
                                 proto_error_t *err)
{
    return decode_batch("results", "RESULTS", body, len, max_body, items, max_items, n, err);
}

proto_err_t proto_decode_results_each(const void *body, size_t len, size_t max_body,
                                      uint32_t max_items, proto_result_fn fn, void *arg,
                                      proto_error_t *err)
{
    const uint8_t *p = body;
    size_t pos;
    uint32_t count;
    TRY(batch_open("results", "RESULTS", body, len, max_body, max_items, &pos, &count, err));
    /* The whole body was scanned: each element is read in one walk that
     * also finds where it ends. */
    for (uint32_t i = 0; i < count; i++) {
        size_t at = pos, end = 0;
        proto_result_t head;
        proto_error_t eerr;
        proto_err_t rc;
        msgpack_object e;
        raw_header(p, &pos, &e, NULL);
        if (e.type != MSGPACK_OBJECT_MAP) {
            char ipath[48];
            result_init(&head);
            rc = fail(&eerr, PROTO_ERR_NOT_MAP, "%s: expected a map, got %s",
                      index_path(ipath, "results", i), type_name(&e));
        } else {
            rc = result_head_scanned(p + at, &head, &eerr, &end);
        }
        if (end) {
            pos = at + end;
        } else {
            pos = at;
            raw_skip(p, &pos);
        }
        fn(arg, (proto_bytes_t){p + at, pos - at}, rc, &head, &eerr);
    }
    return PROTO_OK;
}

/* ---- Encoders ----------------------------------------------------------- */

#define PACK(expr)                                                                                 \
    do {                                                                                           \
        if ((expr) != 0)                                                                           \
            return -1;                                                                             \
    } while (0)

static int pack_cstr(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    if (msgpack_pack_str(pk, n) != 0)
        return -1;
    return msgpack_pack_str_body(pk, s, n);
}

static int pack_pstr(msgpack_packer *pk, proto_str_t s)
{
    if (msgpack_pack_str(pk, s.len) != 0)
        return -1;
    return s.len ? msgpack_pack_str_body(pk, s.ptr, s.len) : 0;
}

/* Sentences are capped at PROTO_MAX_MESSAGE bytes, cut on a UTF-8 boundary. */
static int pack_sentence(msgpack_packer *pk, proto_str_t s)
{
    if (s.len > PROTO_MAX_MESSAGE) {
        uint32_t n = PROTO_MAX_MESSAGE;
        while (n > 0 && ((unsigned char)s.ptr[n] & 0xc0) == 0x80)
            n--;
        s.len = n;
    }
    return pack_pstr(pk, s);
}

/* Bytes to splice must be exactly one well-formed msgpack map. */
static int splice_ok(const void *data, size_t len)
{
    return is_map_header(data, len) && body_scan(data, len, "splice", NULL) == PROTO_OK;
}

int proto_encode_job_record(msgpack_sbuffer *buf, const proto_job_t *job)
{
    msgpack_packer pk;
    if (!buf || !job || !job->responses || job->responses->type != MSGPACK_OBJECT_MAP)
        return -1;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    uint32_t n = 4 + (job->candidate.len > 0) + (job->rubric_hash.len > 0) +
                 (job->rubric_inline.len > 0) + (job->ttr_ms > 0) + (job->meta != NULL);
    PACK(msgpack_pack_map(&pk, n));
    PACK(pack_cstr(&pk, "job_id"));
    PACK(pack_pstr(&pk, job->job_id));
    PACK(pack_cstr(&pk, "tenant"));
    PACK(pack_pstr(&pk, job->tenant));
    if (job->candidate.len) {
        PACK(pack_cstr(&pk, "candidate"));
        PACK(pack_pstr(&pk, job->candidate));
    }
    PACK(pack_cstr(&pk, "rubric"));
    PACK(pack_pstr(&pk, job->rubric));
    if (job->rubric_hash.len) {
        PACK(pack_cstr(&pk, "rubric_hash"));
        PACK(pack_pstr(&pk, job->rubric_hash));
    }
    if (job->rubric_inline.len) {
        PACK(pack_cstr(&pk, "rubric_inline"));
        PACK(pack_pstr(&pk, job->rubric_inline));
    }
    PACK(pack_cstr(&pk, "responses"));
    PACK(msgpack_pack_object(&pk, *job->responses));
    if (job->ttr_ms) {
        PACK(pack_cstr(&pk, "ttr_ms"));
        PACK(msgpack_pack_uint32(&pk, job->ttr_ms));
    }
    if (job->meta) {
        PACK(pack_cstr(&pk, "meta"));
        PACK(msgpack_pack_object(&pk, *job->meta));
    }
    return 0;
}

int proto_encode_submit(msgpack_sbuffer *buf, uint64_t seq, const msgpack_sbuffer *const *job_maps,
                        size_t njobs)
{
    return proto_encode_submit_opt(buf, seq, 0, job_maps, njobs);
}

int proto_encode_submit_opt(msgpack_sbuffer *buf, uint64_t seq, int batch_results,
                            const msgpack_sbuffer *const *job_maps, size_t njobs)
{
    msgpack_packer pk;
    if (!buf || (njobs && !job_maps) || njobs > UINT32_MAX)
        return -1;
    for (size_t i = 0; i < njobs; i++)
        if (!job_maps[i] || !splice_ok(job_maps[i]->data, job_maps[i]->size))
            return -1;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    PACK(msgpack_pack_map(&pk, batch_results ? 3 : 2));
    PACK(pack_cstr(&pk, "seq"));
    PACK(msgpack_pack_uint64(&pk, seq));
    PACK(pack_cstr(&pk, "jobs"));
    PACK(msgpack_pack_array(&pk, njobs));
    for (size_t i = 0; i < njobs; i++)
        PACK(msgpack_sbuffer_write(buf, job_maps[i]->data, job_maps[i]->size));
    if (batch_results) {
        PACK(pack_cstr(&pk, "batch_results"));
        PACK(msgpack_pack_true(&pk));
    }
    return 0;
}

int proto_encode_accepted(msgpack_sbuffer *buf, const proto_accepted_t *m)
{
    msgpack_packer pk;
    if (!buf || !m || (m->njobs && !m->jobs))
        return -1;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    PACK(msgpack_pack_map(&pk, 2));
    PACK(pack_cstr(&pk, "seq"));
    PACK(msgpack_pack_uint64(&pk, m->seq));
    PACK(pack_cstr(&pk, "jobs"));
    PACK(msgpack_pack_array(&pk, m->njobs));
    for (uint32_t i = 0; i < m->njobs; i++) {
        const proto_accepted_job_t *j = &m->jobs[i];
        PACK(msgpack_pack_map(&pk, 3));
        PACK(pack_cstr(&pk, "job_id"));
        PACK(pack_pstr(&pk, j->job_id));
        PACK(pack_cstr(&pk, "state"));
        PACK(pack_cstr(&pk, proto_state_name(j->state)));
        PACK(pack_cstr(&pk, "duplicate"));
        PACK(j->duplicate ? msgpack_pack_true(&pk) : msgpack_pack_false(&pk));
    }
    return 0;
}

int proto_encode_rejected(msgpack_sbuffer *buf, const proto_rejected_t *m)
{
    msgpack_packer pk;
    if (!buf || !m || (m->njobs && !m->jobs))
        return -1;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    PACK(msgpack_pack_map(&pk, 4));
    PACK(pack_cstr(&pk, "seq"));
    PACK(msgpack_pack_uint64(&pk, m->seq));
    PACK(pack_cstr(&pk, "code"));
    PACK(pack_pstr(&pk, m->code));
    PACK(pack_cstr(&pk, "message"));
    PACK(pack_sentence(&pk, m->message));
    PACK(pack_cstr(&pk, "jobs"));
    PACK(msgpack_pack_array(&pk, m->njobs));
    for (uint32_t i = 0; i < m->njobs; i++) {
        const proto_rejected_job_t *j = &m->jobs[i];
        PACK(msgpack_pack_map(&pk, 3));
        PACK(pack_cstr(&pk, "job_id"));
        PACK(pack_pstr(&pk, j->job_id));
        PACK(pack_cstr(&pk, "code"));
        PACK(pack_pstr(&pk, j->code));
        PACK(pack_cstr(&pk, "message"));
        PACK(pack_sentence(&pk, j->message));
    }
    return 0;
}

int proto_encode_ready(msgpack_sbuffer *buf, const proto_ready_t *m)
{
    msgpack_packer pk;
    if (!buf || !m)
        return -1;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    PACK(msgpack_pack_map(&pk, 2 + (m->engine.len > 0) + (m->threads > 0) + (m->batch > 0)));
    PACK(pack_cstr(&pk, "worker"));
    PACK(pack_pstr(&pk, m->worker));
    PACK(pack_cstr(&pk, "credit"));
    PACK(msgpack_pack_uint32(&pk, m->credit));
    if (m->engine.len) {
        PACK(pack_cstr(&pk, "engine"));
        PACK(pack_pstr(&pk, m->engine));
    }
    if (m->threads) {
        PACK(pack_cstr(&pk, "threads"));
        PACK(msgpack_pack_uint32(&pk, m->threads));
    }
    if (m->batch) {
        PACK(pack_cstr(&pk, "batch"));
        PACK(msgpack_pack_uint32(&pk, m->batch));
    }
    return 0;
}

int proto_encode_job(msgpack_sbuffer *buf, uint32_t attempt, uint64_t accepted_us, uint32_t ttr_ms,
                     proto_str_t rubric_hash, const void *job_map, size_t job_len)
{
    msgpack_packer pk;
    if (!buf || !splice_ok(job_map, job_len))
        return -1;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    PACK(msgpack_pack_map(&pk, rubric_hash.len ? 5 : 4));
    PACK(pack_cstr(&pk, "attempt"));
    PACK(msgpack_pack_uint32(&pk, attempt));
    PACK(pack_cstr(&pk, "accepted_us"));
    PACK(msgpack_pack_uint64(&pk, accepted_us));
    PACK(pack_cstr(&pk, "ttr_ms"));
    PACK(msgpack_pack_uint32(&pk, ttr_ms));
    if (rubric_hash.len) {
        PACK(pack_cstr(&pk, "rubric_hash"));
        PACK(pack_pstr(&pk, rubric_hash));
    }
    PACK(pack_cstr(&pk, "job"));
    PACK(msgpack_sbuffer_write(buf, job_map, job_len));
    return 0;
}

static int encode_batch(msgpack_sbuffer *buf, const char *key, const void *elems, size_t elems_len,
                        uint32_t n)
{
    msgpack_packer pk;
    if (!buf || n == 0 || n > PROTO_MAX_BATCH_ITEMS || !is_map_header(elems, elems_len) ||
        elems_len < n)
        return -1;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    PACK(msgpack_pack_map(&pk, 1));
    PACK(pack_cstr(&pk, key));
    PACK(msgpack_pack_array(&pk, n));
    PACK(msgpack_sbuffer_write(buf, elems, elems_len));
    return 0;
}

int proto_encode_jobs(msgpack_sbuffer *buf, const void *elems, size_t elems_len, uint32_t n)
{
    return encode_batch(buf, "jobs", elems, elems_len, n);
}

int proto_encode_results(msgpack_sbuffer *buf, const void *elems, size_t elems_len, uint32_t n)
{
    return encode_batch(buf, "results", elems, elems_len, n);
}

int proto_encode_heartbeat(msgpack_sbuffer *buf, const proto_heartbeat_t *m)
{
    msgpack_packer pk;
    if (!buf || !m)
        return -1;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    PACK(msgpack_pack_map(&pk, 1));
    PACK(pack_cstr(&pk, "inflight"));
    PACK(msgpack_pack_uint32(&pk, m->inflight));
    return 0;
}

int proto_encode_disconnect(msgpack_sbuffer *buf, const proto_disconnect_t *m)
{
    msgpack_packer pk;
    if (!buf || !m)
        return -1;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    PACK(msgpack_pack_map(&pk, m->reason.len ? 1 : 0));
    if (m->reason.len) {
        PACK(pack_cstr(&pk, "reason"));
        PACK(pack_sentence(&pk, m->reason));
    }
    return 0;
}

int proto_encode_cancel(msgpack_sbuffer *buf, const proto_cancel_t *m)
{
    msgpack_packer pk;
    if (!buf || !m || m->job_id.len == 0)
        return -1;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    PACK(msgpack_pack_map(&pk, 2 + (m->reason.len > 0)));
    PACK(pack_cstr(&pk, "job_id"));
    PACK(pack_pstr(&pk, m->job_id));
    PACK(pack_cstr(&pk, "attempt"));
    PACK(msgpack_pack_uint32(&pk, m->attempt));
    if (m->reason.len) {
        PACK(pack_cstr(&pk, "reason"));
        PACK(pack_sentence(&pk, m->reason));
    }
    return 0;
}

int proto_encode_result(msgpack_sbuffer *buf, const proto_result_t *m, const void *result_map,
                        size_t result_len)
{
    msgpack_packer pk;
    if (!buf || !m)
        return -1;
    /* status defaults from what is given: a result map means "ok". */
    int ok = m->status.len ? proto_str_eq(m->status, "ok") : result_map != NULL;
    if (m->status.len && !ok && !proto_str_eq(m->status, "error"))
        return -1;
    if (ok && (!splice_ok(result_map, result_len) || m->digest.len == 0))
        return -1;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    uint32_t n = 12 + (m->candidate.len > 0) + (m->rubric_hash.len > 0) + (ok ? 2 : 1);
    PACK(msgpack_pack_map(&pk, n));
    PACK(pack_cstr(&pk, "v"));
    PACK(msgpack_pack_uint32(&pk, PROTO_VERSION));
    PACK(pack_cstr(&pk, "job_id"));
    PACK(pack_pstr(&pk, m->job_id));
    PACK(pack_cstr(&pk, "tenant"));
    PACK(pack_pstr(&pk, m->tenant));
    if (m->candidate.len) {
        PACK(pack_cstr(&pk, "candidate"));
        PACK(pack_pstr(&pk, m->candidate));
    }
    PACK(pack_cstr(&pk, "rubric"));
    PACK(pack_pstr(&pk, m->rubric));
    if (m->rubric_hash.len) {
        PACK(pack_cstr(&pk, "rubric_hash"));
        PACK(pack_pstr(&pk, m->rubric_hash));
    }
    PACK(pack_cstr(&pk, "engine"));
    PACK(pack_pstr(&pk, m->engine));
    PACK(pack_cstr(&pk, "worker"));
    PACK(pack_pstr(&pk, m->worker));
    PACK(pack_cstr(&pk, "attempt"));
    PACK(msgpack_pack_uint32(&pk, m->attempt));
    PACK(pack_cstr(&pk, "accepted_us"));
    PACK(msgpack_pack_uint64(&pk, m->accepted_us));
    PACK(pack_cstr(&pk, "started_us"));
    PACK(msgpack_pack_uint64(&pk, m->started_us));
    PACK(pack_cstr(&pk, "finished_us"));
    PACK(msgpack_pack_uint64(&pk, m->finished_us));
    PACK(pack_cstr(&pk, "duration_us"));
    PACK(msgpack_pack_uint64(&pk, m->duration_us));
    PACK(pack_cstr(&pk, "status"));
    PACK(pack_cstr(&pk, ok ? "ok" : "error"));
    if (ok) {
        PACK(pack_cstr(&pk, "result"));
        PACK(msgpack_sbuffer_write(buf, result_map, result_len));
        PACK(pack_cstr(&pk, "digest"));
        PACK(pack_pstr(&pk, m->digest));
    } else {
        PACK(pack_cstr(&pk, "error"));
        PACK(msgpack_pack_map(&pk, 2));
        PACK(pack_cstr(&pk, "code"));
        PACK(pack_pstr(&pk, m->error_code));
        PACK(pack_cstr(&pk, "message"));
        PACK(pack_sentence(&pk, m->error_message));
    }
    return 0;
}
