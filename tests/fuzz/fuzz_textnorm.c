/*
 * fuzz_textnorm.c - libFuzzer harness for the text normaliser (grading/
 * textnorm.c): word splitting with NFKC + case fold + Snowball stems
 * (text_tokenize), label folding (text_fold), negation scope
 * (text_span_negated) and the one-edit comparison (text_within_one_edit).
 *
 * Invariants:
 *  - tokens have spans inside the text, in order and non-overlapping, and
 *    normalised forms and stems that are NUL-terminated at their length;
 *    sentence, clause and line indexes never go down; two runs agree;
 *  - a folded label has no leading, trailing or doubled space and no
 *    apostrophe, and folding it again changes nothing (the seeds
 *    corpus/textnorm/fold_* once broke this: "a'" + U+0301);
 *  - text_within_one_edit is reflexive and symmetric.
 */
#include "grading/internal.h"
#include "tests/fuzz/fuzz_common.h"

#include <string.h>

static stemmer_box_t *stemmer;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    stemmer = stemmer_box_new();
    CHECK(stemmer);
    return 0;
}

static void check_tokens(const char *s, size_t len)
{
    arena_t a = {0}, b = {0};
    tokens_t t, u;
    bool ok = text_tokenize(&a, stemmer, s, len, &t);
    bool ok2 = text_tokenize(&b, stemmer, s, len, &u);
    if (ok && ok2 && !a.oom && !b.oom) {
        CHECK(t.n == u.n && t.sentences == u.sentences && t.paragraphs == u.paragraphs);
        for (size_t i = 0; i < t.n; i++) {
            const token_t *k = &t.v[i], *l = &u.v[i];
            CHECK(k->start < k->end && k->end <= len);
            if (i) {
                const token_t *p = &t.v[i - 1];
                CHECK(p->end <= k->start);
                CHECK(p->sentence <= k->sentence && p->clause <= k->clause && p->line <= k->line);
            }
            CHECK(k->norm && k->norm[k->norm_len] == '\0');
            CHECK(k->stem && k->stem[k->stem_len] == '\0');
            CHECK(k->norm_len == l->norm_len && memcmp(k->norm, l->norm, k->norm_len) == 0);
            CHECK(k->stem_len == l->stem_len && memcmp(k->stem, l->stem, k->stem_len) == 0);
            CHECK(k->start == l->start && k->end == l->end && k->flags == l->flags);
        }
        /* negation scope over the first words and the whole text */
        for (size_t i = 0; i < t.n && i < 16; i++)
            (void)text_span_negated(&t, t.v[i].start, t.v[i].end);
        (void)text_span_negated(&t, 0, len);
    }
    arena_free(&a);
    arena_free(&b);
}

static void check_fold(const char *s, size_t len)
{
    arena_t a = {0};
    char *f = text_fold(&a, s, len);
    if (f) {
        size_t n = strlen(f);
        if (n) {
            CHECK(f[0] != ' ' && f[n - 1] != ' ');
            CHECK(strstr(f, "  ") == NULL);
            CHECK(strchr(f, '\'') == NULL);
        }
        char *g = text_fold(&a, f, n);
        CHECK(g != NULL || a.oom);
        if (g && strcmp(f, g) != 0) {
            fprintf(stderr, "fold not idempotent: \"%s\" -> \"%s\"\n", f, g);
            CHECK(0);
        }
    }
    arena_free(&a);
}

static void check_one_edit(const char *s, size_t len)
{
    CHECK(text_within_one_edit(s, len, s, len));
    size_t h = len / 2;
    bool ab = text_within_one_edit(s, h, s + h, len - h);
    bool ba = text_within_one_edit(s + h, len - h, s, h);
    CHECK(ab == ba);
    if (len)
        CHECK(text_within_one_edit(s, len, s, len - 1)); /* one deletion */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    check_tokens(s, size);
    check_fold(s, size);
    check_one_edit(s, size);
    return 0;
}
