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
