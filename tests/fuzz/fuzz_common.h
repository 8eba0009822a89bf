/*
 * fuzz_common.h - small helpers shared by the libFuzzer harnesses in this
 * folder: an assertion that survives -O1/NDEBUG, reading a file of the
 * source tree (the harnesses are built with SCORELINE_SOURCE_DIR set to the
 * repository root; the environment variable of the same name overrides it),
 * and cutting a rubric down to the items of some types.
 */
#ifndef SCORELINE_FUZZ_COMMON_H
#define SCORELINE_FUZZ_COMMON_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SCORELINE_SOURCE_DIR
#define SCORELINE_SOURCE_DIR "."
#endif

/* A broken invariant is a finding: stop with a crash libFuzzer records. */
#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond);           \
            __builtin_trap();                                                                      \
        }                                                                                          \
    } while (0)

/* Contents of SOURCE_DIR/rel, NUL-terminated; aborts when unreadable (a
 * harness without its fixture would fuzz nothing). */
static inline char *fuzz_read_source_file(const char *rel, size_t *len)
{
    const char *root = getenv("SCORELINE_SOURCE_DIR");
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", root && *root ? root : SCORELINE_SOURCE_DIR, rel);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fuzz: cannot open %s\n", path);
        abort();
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    CHECK(buf && fread(buf, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

/* Walk one msgpack value at p[*off..len) and tell whether every declared
 * length fits in the bytes that remain (an array of n needs n bytes at
 * least, a map 2n). msgpack-c allocates
 * a container's element array from its declared count before reading the
 * elements, so a 6-byte "array of 4 billion" asks for 96 GiB: proto_decode_*
 * refuse such bodies with a bounded pre-scan (PROTOCOL.md "Limits"); inputs
 * handed to msgpack_unpack without that scan are filtered with this. */
static inline bool fuzz_msgpack_fits_at(const uint8_t *p, size_t len, size_t *off, int depth)
{
    if (depth > 200 || *off >= len)
        return true; /* too deep or truncated: msgpack refuses it without a big allocation */
    uint8_t b = p[(*off)++];
    size_t rem = len - *off;
    uint64_t n = 0, kids = 0, skip = 0;
#define FUZZ_BE(k)                                                                                 \
    do {                                                                                           \
        if (rem < (k))                                                                             \
            return true;                                                                           \
        for (int i_ = 0; i_ < (k); i_++)                                                           \
            n = n << 8 | p[*off + i_];                                                             \
        *off += (k);                                                                               \
        rem -= (k);                                                                                \
    } while (0)
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
        return true;
    if ((b & 0xf0) == 0x80)
        kids = 2u * (b & 0x0f);
    else if ((b & 0xf0) == 0x90)
        kids = b & 0x0f;
    else if ((b & 0xe0) == 0xa0)
        skip = b & 0x1f;
    else
        switch (b) {
        case 0xc4: case 0xd9: FUZZ_BE(1); skip = n; break;
        case 0xc5: case 0xda: FUZZ_BE(2); skip = n; break;
        case 0xc6: case 0xdb: FUZZ_BE(4); skip = n; break;
        case 0xc7: FUZZ_BE(1); skip = n + 1; break;
        case 0xc8: FUZZ_BE(2); skip = n + 1; break;
        case 0xc9: FUZZ_BE(4); skip = n + 1; break;
        case 0xcc: case 0xd0: skip = 1; break;
        case 0xcd: case 0xd1: skip = 2; break;
        case 0xca: case 0xce: case 0xd2: skip = 4; break;
        case 0xcb: case 0xcf: case 0xd3: skip = 8; break;
        case 0xd4: skip = 2; break;
        case 0xd5: skip = 3; break;
        case 0xd6: skip = 5; break;
        case 0xd7: skip = 9; break;
        case 0xd8: skip = 17; break;
        case 0xdc: FUZZ_BE(2); kids = n; break;
        case 0xdd: FUZZ_BE(4); kids = n; break;
        case 0xde: FUZZ_BE(2); kids = 2 * n; break;
        case 0xdf: FUZZ_BE(4); kids = 2 * n; break;
        default: return true; /* 0xc1: never used; msgpack refuses it */
        }
#undef FUZZ_BE
    if (skip) {
        /* strings and the like point into the input: too long is just truncated */
        *off += skip < rem ? skip : rem;
        return true;
    }
    if (kids > rem)
        return false;
    for (uint64_t i = 0; i < kids; i++) {
        if (*off >= len)
            return true; /* truncated: msgpack reports it */
        if (!fuzz_msgpack_fits_at(p, len, off, depth + 1))
            return false;
    }
    return true;
}

static inline bool fuzz_msgpack_fits(const uint8_t *p, size_t len)
{
    size_t off = 0;
    if (getenv("FUZZ_NO_MSGPACK_PRESCAN"))
        return true;
    return fuzz_msgpack_fits_at(p, len, &off, 0);
}

/* The rubric text with only the items whose "type" is in types (a
 * NULL-terminated list) and no red flags (they may name dropped items).
 * Returns a malloc'd JSON text, or NULL when no item is left. */
static inline char *fuzz_rubric_subset(const char *text, size_t len, const char *const *types)
{
    json_error_t je;
    json_t *root = json_loadb(text, len, 0, &je);
    CHECK(root && json_is_object(root));
    json_t *items = json_object_get(root, "items"), *kept = json_array();
    size_t i;
    json_t *it;
    json_array_foreach(items, i, it)
    {
        const char *t = json_string_value(json_object_get(it, "type"));
        for (const char *const *w = types; t && *w; w++)
            if (strcmp(t, *w) == 0)
                json_array_append(kept, it);
    }
    char *out = NULL;
    if (json_array_size(kept)) {
        json_object_set(root, "items", kept);
        json_object_del(root, "red_flags");
        out = json_dumps(root, JSON_COMPACT);
    }
    json_decref(kept);
    json_decref(root);
    return out;
}

#endif
