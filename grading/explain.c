/*
 * explain.c - a result rendered as text for a person (`scoreline grade
 * --explain`): decision and why, red flags with their evidence, sections,
 * then every item with each rule of its trace (+ matched, - not matched),
 * points, clamps, tie-breaks and evidence quoted with byte offsets.
 *
 * It reads only the packed result (and, when given, the rubric for titles),
 * so an auditor can explain a stored result without grading again.
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf_t;

static void sb_printf(sbuf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(sbuf_t *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
        if (k < 0)
            return;
        if ((size_t)k < b->cap - b->n) {
            b->n += (size_t)k;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)k + 1;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
}

static const msgpack_object *get(const msgpack_object *m, const char *key)
{
    if (!m || m->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t kl = strlen(key);
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == kl &&
            memcmp(k->via.str.ptr, key, kl) == 0)
            return &m->via.map.ptr[i].val;
    }
    return NULL;
}

static int64_t num(const msgpack_object *o)
{
    if (!o)
        return 0;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        return (int64_t)o->via.u64;
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return o->via.i64;
    return 0;
}

static bool truthy(const msgpack_object *o)
{
    return o && o->type == MSGPACK_OBJECT_BOOLEAN && o->via.boolean;
}

/* String value as "%.*s" arguments. */
#define STR(o)                                                                                     \
    (int)((o) && (o)->type == MSGPACK_OBJECT_STR ? (o)->via.str.size : 0),                         \
        ((o) && (o)->type == MSGPACK_OBJECT_STR ? (o)->via.str.ptr : "")

static void fixed(sbuf_t *b, int64_t v, int places)
{
    char buf[80];
    dec_format(dec_shift(dec_from_int(v), -places), buf, sizeof buf);
    sb_printf(b, "%s", buf);
}

static void quote(sbuf_t *b, const msgpack_object *s)
{
    sb_printf(b, "\"");
    if (s && s->type == MSGPACK_OBJECT_STR)
        for (uint32_t i = 0; i < s->via.str.size; i++) {
            unsigned char c = (unsigned char)s->via.str.ptr[i];
            if (c == '\n')
                sb_printf(b, "\\n");
            else if (c < 0x20)
                sb_printf(b, " ");
            else
                sb_printf(b, "%c", c);
        }
    sb_printf(b, "\"");
}

static void evidence(sbuf_t *b, const msgpack_object *ev, const char *indent)
{
    for (uint32_t i = 0; ev && ev->type == MSGPACK_OBJECT_ARRAY && i < ev->via.array.size; i++) {
        const msgpack_object *e = &ev->via.array.ptr[i];
        sb_printf(b, "%sevidence [%lld, %lld) ", indent, (long long)num(get(e, "start")),
                  (long long)num(get(e, "end")));
        if (get(e, "text"))
            quote(b, get(e, "text"));
        if (get(e, "phrase"))
            sb_printf(b, " ~ phrase \"%.*s\"", STR(get(e, "phrase")));
        if (get(e, "shape"))
            sb_printf(b, " ~ keyword-list shape: %.*s", STR(get(e, "shape")));
        if (truthy(get(e, "typo")))
            sb_printf(b, " (one misspelled letter tolerated)");
        sb_printf(b, "\n");
    }
}

/* Render a result for a person; malloc'd text, NULL when not a result. */
char *grading_explain(const grading_rubric_t *r, const void *result, size_t len)
{
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    if (!result || msgpack_unpack_next(&up, result, len, &off) != MSGPACK_UNPACK_SUCCESS ||
        up.data.type != MSGPACK_OBJECT_MAP || !get(&up.data, "items")) {
        msgpack_unpacked_destroy(&up);
        return NULL;
    }
    const msgpack_object *root = &up.data;
    sbuf_t b = {.p = malloc(4096), .cap = 4096};
    if (!b.p) {
        msgpack_unpacked_destroy(&up);
        return NULL;
    }
    b.p[0] = '\0';
    const msgpack_object *rub = get(root, "rubric"), *tot = get(root, "total");
    sb_printf(&b, "%.*s - rubric %.*s version %.*s\nrubric hash %.*s\n", STR(get(root, "engine")),
              STR(get(rub, "id")), STR(get(rub, "version")), STR(get(rub, "hash")));
    sb_printf(&b, "\nDecision: %.*s (band %.*s, status %.*s)\nTotal: ", STR(get(root, "decision")),
              STR(get(root, "band")), STR(get(root, "status")));
    fixed(&b, num(get(tot, "percent_bp")), 2);
    sb_printf(&b, "%% weighted; ");
    fixed(&b, num(get(tot, "points_milli")), 3);
    sb_printf(&b, " of ");
    fixed(&b, num(get(tot, "max_milli")), 3);
    sb_printf(&b, " points\n");

    const msgpack_object *flags = get(root, "red_flags");
    if (flags && flags->via.array.size) {
        sb_printf(&b, "\nRed flags:\n");
        for (uint32_t i = 0; i < flags->via.array.size; i++) {
            const msgpack_object *f = &flags->via.array.ptr[i];
            sb_printf(&b, "  [%.*s] %.*s (%.*s): %.*s\n    when %.*s\n", STR(get(f, "state")),
                      STR(get(f, "id")), STR(get(f, "effect")), STR(get(f, "reason")),
                      STR(get(f, "when")));
            const msgpack_object *ev = get(f, "evidence");
            for (uint32_t k = 0; ev && k < ev->via.array.size; k++) {
                const msgpack_object *t = &ev->via.array.ptr[k];
                sb_printf(&b, "      %.*s = %.*s\n", STR(get(t, "term")), STR(get(t, "value")));
                evidence(&b, get(t, "evidence"), "        ");
            }
        }
    }
    const msgpack_object *secs = get(root, "sections");
    sb_printf(&b, "\nSections:\n");
    for (uint32_t i = 0; secs && i < secs->via.array.size; i++) {
        const msgpack_object *s = &secs->via.array.ptr[i];
        sb_printf(&b, "  %-16.*s ", STR(get(s, "id")));
        fixed(&b, num(get(s, "percent_bp")), 2);
        sb_printf(&b, "%%  (weight ");
        fixed(&b, num(get(s, "weight_milli")), 3);
        sb_printf(&b, ", ");
        fixed(&b, num(get(s, "points_milli")), 3);
        sb_printf(&b, " of ");
        fixed(&b, num(get(s, "max_milli")), 3);
        sb_printf(&b, " points, %.*s)\n", STR(get(s, "status")));
    }
    const msgpack_object *items = get(root, "items");
    sb_printf(&b, "\nItems:\n");
    for (uint32_t i = 0; i < items->via.array.size; i++) {
        const msgpack_object *it = &items->via.array.ptr[i];
        const msgpack_object *id = get(it, "id");
        const item_t *ri = r && id && id->type == MSGPACK_OBJECT_STR
                               ? rubric_find_item(r, id->via.str.ptr, id->via.str.size)
                               : NULL;
        sb_printf(&b, "\n  %.*s (%.*s, section %.*s)%s%s\n", STR(id), STR(get(it, "type")),
                  STR(get(it, "section")), ri && *ri->title ? ": " : "", ri ? ri->title : "");
        sb_printf(&b, "    ");
        fixed(&b, num(get(it, "points_milli")), 3);
        sb_printf(&b, " of ");
        fixed(&b, num(get(it, "max_milli")), 3);
        sb_printf(&b, " points (");
        fixed(&b, num(get(it, "percent_bp")), 2);
        sb_printf(&b, "%%), %.*s\n", STR(get(it, "status")));
        const msgpack_object *tr = get(it, "trace");
        for (uint32_t k = 0; tr && k < tr->via.array.size; k++) {
            const msgpack_object *rule = &tr->via.array.ptr[k];
            int64_t p = num(get(rule, "points_milli"));
            sb_printf(&b, "    %c %.*s", truthy(get(rule, "matched")) ? '+' : '-',
                      STR(get(rule, "rule")));
            if (p) {
                sb_printf(&b, " [%s", p > 0 ? "+" : "");
                fixed(&b, p, 3);
                sb_printf(&b, "]");
            }
            sb_printf(&b, ": %.*s\n", STR(get(rule, "detail")));
            if (get(rule, "clamp"))
                sb_printf(&b, "        clamp: %.*s\n", STR(get(rule, "clamp")));
            if (get(rule, "tie_break"))
                sb_printf(&b, "        tie-break: %.*s\n", STR(get(rule, "tie_break")));
            if (get(rule, "abandoned"))
                sb_printf(&b, "        abandoned: %.*s\n", STR(get(rule, "abandoned")));
            if (get(rule, "contrast"))
                sb_printf(&b, "        contrast: %.*s\n", STR(get(rule, "contrast")));
            if (get(rule, "role"))
                sb_printf(&b, "        role: %.*s\n", STR(get(rule, "role")));
            evidence(&b, get(rule, "evidence"), "        ");
            const msgpack_object *rej = get(rule, "rejected");
            for (uint32_t q = 0; rej && q < rej->via.array.size; q++) {
                const msgpack_object *x = &rej->via.array.ptr[q];
                sb_printf(&b, "        not counted [%lld, %lld): %.*s\n",
                          (long long)num(get(x, "start")), (long long)num(get(x, "end")),
                          STR(get(x, "why")));
            }
        }
    }
    sb_printf(&b, "\ndigest %.*s\n", STR(get(root, "digest")));
    msgpack_unpacked_destroy(&up);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}
