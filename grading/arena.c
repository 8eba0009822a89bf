/*
 * arena.c - bump allocator.
 *
 * A compiled rubric and each grading call own one arena: everything they
 * allocate is freed at once, and an allocation failure is recorded (a->oom)
 * instead of being checked at every call site, so the caller reports
 * GRADING_ERR_NOMEM once at the end.
 */
#define _GNU_SOURCE /* strchrnul */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ARENA_BLOCK_MIN 32768

/* arena_alloc_raw when the head block has no room (internal.h has the fast
 * path). */
void *arena_alloc_slow(arena_t *a, size_t n)
{
    if (a->oom)
        return NULL;
    if (n > SIZE_MAX - sizeof(arena_block_t) - 15) {
        a->oom = true;
        a->cur = a->end = NULL;
        return NULL;
    }
    n = (n + 15) & ~(size_t)15;
    if (n == 0)
        n = 16;
    if ((size_t)(a->end - a->cur) < n) {
        arena_block_t *h = a->head;
        size_t cap = n > ARENA_BLOCK_MIN ? n : ARENA_BLOCK_MIN;
        if (h && cap < h->cap * 2 && h->cap * 2 <= (1u << 17))
            cap = h->cap * 2;
        arena_block_t *b = malloc(sizeof *b + cap);
        if (!b) {
            a->oom = true;
            a->cur = a->end = NULL;
            return NULL;
        }
        b->cap = cap;
        b->next = h;
        a->head = b;
        a->cur = b->data;
        a->end = b->data + cap;
        a->total += sizeof *b + cap;
    }
    void *p = a->cur;
    a->cur += n;
    return p;
}

/* Zeroed, 16-byte aligned memory living until arena_free. */
void *arena_alloc(arena_t *a, size_t n)
{
    void *p = arena_alloc_raw(a, n);
    if (p)
        memset(p, 0, n);
    return p;
}

/* Copy of s[0..n) with a terminating NUL. */
char *arena_strndup(arena_t *a, const char *s, size_t n)
{
    char *p = arena_alloc_raw(a, n + 1);
    if (p) {
        if (n)
            memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

char *arena_strdup(arena_t *a, const char *s)
{
    return arena_strndup(a, s, strlen(s));
}

/* Digits of v (negative values with their sign) at the end of buf[0..24). */
static char *fmt_int(char buf[24], long long v)
{
    char *p = buf + 24;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do
        *--p = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0)
        *--p = '-';
    return p;
}

/* The conversions the engine's messages use (%s %.*s %d %lld %zu %%) into
 * out[0..cap), as printf writes them; false when fmt holds anything else or
 * the text does not fit (the caller then asks vsnprintf). Traces are full of
 * these short sentences, and vsnprintf's set-up cost more than the text. */
static bool fmt_simple(char *out, size_t cap, size_t *len, const char *fmt, va_list ap)
{
    size_t n = 0;
    for (const char *f = fmt; *f; f++) {
        const char *piece;
        size_t pl;
        char num[24];
        if (*f != '%') {
            /* the literal run up to the next conversion, in one piece */
            piece = f;
            f = strchrnul(f, '%') - 1;
            pl = (size_t)(f - piece) + 1;
        } else if (f[1] == '%') {
            piece = f++;
            pl = 1;
        } else if (f[1] == 's') {
            f++;
            piece = va_arg(ap, const char *);
            if (!piece)
                piece = "(null)";
            pl = strlen(piece);
        } else if (f[1] == '.' && f[2] == '*' && f[3] == 's') {
            f += 3;
            int prec = va_arg(ap, int);
            piece = va_arg(ap, const char *);
            if (!piece)
                piece = "(null)";
            pl = prec < 0 ? strlen(piece) : strnlen(piece, (size_t)prec);
        } else if (f[1] == 'd') {
            f++;
            piece = fmt_int(num, va_arg(ap, int));
            pl = (size_t)(num + 24 - piece);
        } else if (f[1] == 'l' && f[2] == 'l' && f[3] == 'd') {
            f += 3;
            piece = fmt_int(num, va_arg(ap, long long));
            pl = (size_t)(num + 24 - piece);
        } else if (f[1] == 'z' && f[2] == 'u') {
            f += 2;
            size_t z = va_arg(ap, size_t);
            char *p = num + 24;
            do
                *--p = (char)('0' + z % 10);
            while (z /= 10);
            piece = p;
            pl = (size_t)(num + 24 - p);
        } else {
            return false;
        }
        if (pl >= cap - n)
            return false;
        if (pl <= 32) /* most pieces: cheaper than a call */
            copy_short(out + n, piece, pl);
        else
            memcpy(out + n, piece, pl);
        n += pl;
    }
    out[n] = '\0';
    *len = n;
    return true;
}

char *arena_printf(arena_t *a, const char *fmt, ...)
{
    char small[256];
    size_t len;
    va_list ap;
    if ((size_t)(a->end - a->cur) >= sizeof small) {
        /* straight into the head block's free space, then claim what it
         * took (rounded as arena_alloc_raw rounds) */
        char *dst = (char *)a->cur;
        va_start(ap, fmt);
        bool done = fmt_simple(dst, sizeof small, &len, fmt, ap);
        va_end(ap);
        if (done) {
            a->cur += (len + 1 + 15) & ~(size_t)15;
            return dst;
        }
    }
    va_start(ap, fmt);
    bool done = fmt_simple(small, sizeof small, &len, fmt, ap);
    va_end(ap);
    if (done)
        return arena_strndup(a, small, len);
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return arena_strdup(a, "");
    if ((size_t)n < sizeof small)
        return arena_strndup(a, small, (size_t)n);
    char *p = arena_alloc(a, (size_t)n + 1);
    if (!p)
        return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

void arena_free(arena_t *a)
{
    arena_block_t *b = a->head;
    while (b) {
        arena_block_t *next = b->next;
        free(b);
        b = next;
    }
    a->head = NULL;
    a->cur = a->end = NULL;
    a->total = 0;
    a->oom = false;
}
