/*
 * lexicon.c - every word of the rubric's phrases, indexed for matching.
 *
 * A phrase word matches a candidate's word by stem, by normalised form, by
 * synonym set, or within one edit (text.c, "Words are compared ..."). Asking
 * that of every word of every phrase at every position of a response was most
 * of the cost of grading free text; yet almost every candidate word matches
 * no phrase word at all. So the loader interns each distinct phrase word
 * (lexicon_intern) and, once the rubric is compiled, lexicon_finish indexes
 * them: by stem and by normalised form (exact lookups), by synonym set, and
 * by length and first or second byte (the only words a typo rule can admit).
 * Grading then lists, once per response, which phrase words each candidate
 * word can match (lexicon_match_tokens), and the phrase scanner reads those
 * short lists instead of comparing strings.
 *
 * Each item has its own lexicon (a response is only ever matched against
 * its item's phrases). A typo match depends on typo_min_length, so a typo
 * entry keeps the largest typo_min_length that still admits it: the same
 * outcome as comparing the words. The tables are built once at load time and
 * only read afterwards, so threads share them.
 */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct lex_word {
    const char *norm, *stem;
    uint32_t norm_len, stem_len;
    int32_t syn;
    unsigned char b0, b1; /* norm[0], norm[1]: the typo filters read them without
                             following norm */
    uint64_t norm_bytes, stem_bytes; /* byte_set of norm and of stem */
} lex_word_t;

/* A string that is some word's stem or normalised form, or a synonym. */
typedef struct lex_str {
    const char *s;
    uint32_t len;
    int32_t syn;              /* first synonym set holding it as a stem, or -1 */
    uint32_t stem_at, n_stem; /* words whose stem is s: post[stem_at ..] */
    uint32_t norm_at, n_norm; /* words whose normalised form is s */
} lex_str_t;

typedef struct lex_bucket {
    uint32_t key; /* norm_len << 8 | byte; 0 = empty slot */
    uint32_t at, n;
} lex_bucket_t;

struct lexicon {
    int64_t typo_min; /* the smallest typo_min_length of the item's phrases */
    lex_word_t *w;
    size_t n, cap;
    uint32_t *pairs; /* load time: (norm, stem) -> word index + 1 */
    size_t pairs_cap;
    lex_str_t *str;
    size_t n_str;
    uint32_t *str_tab; /* string -> str index + 1 */
    size_t str_cap;
    uint32_t *syn_at;             /* set s: post[syn_at[s] .. syn_at[s + 1]) */
    lex_bucket_t *first, *second; /* by length and first / second byte */
    size_t bucket_cap;
    /* Which buckets exist: bit (length & 63) of lens_first[byte] is set when
     * some word of that length starts with byte (lens_second: has it second).
     * Most candidate words have no bucket to look in; the bit says so without
     * probing the tables. */
    uint64_t lens_first[256], lens_second[256];
    uint32_t *post;
    size_t n_post;
};

static uint64_t hash_bytes(const char *s, size_t n, uint64_t h)
{
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ull;
    return h;
}

static uint64_t hash_str(const char *s, size_t n)
{
    return hash_bytes(s, n, 0xcbf29ce484222325ull);
}

/* Equal strings; a loop, as words are short and a memcmp call costs more. */
static bool same(const char *a, size_t an, const char *b, size_t bn)
{
    if (an != bn)
        return false;
    for (size_t i = 0; i < an; i++)
        if (a[i] != b[i])
            return false;
    return true;
}

/* The bytes of s[0..n) as a set: bit (byte & 63) for each. Words within one
 * edit of each other differ in at most one bit each way (one_edit_possible),
 * which most pairs of words fail at once. */
static uint64_t byte_set(const char *s, size_t n)
{
    uint64_t m = 0;
    for (size_t i = 0; i < n; i++)
        m |= 1ull << ((unsigned char)s[i] & 63);
    return m;
}

/* A necessary condition for text_within_one_edit on words with byte sets a
 * and b: a substitution, insertion, deletion or transposition brings at most
 * one byte the other word lacks into each. */
static inline bool one_edit_possible(uint64_t a, uint64_t b)
{
    uint64_t x = a & ~b, y = b & ~a;
    return !(x & (x - 1)) && !(y & (y - 1));
}

static size_t pow2_at_least(size_t n)
{
    size_t c = 16;
    while (c < n)
        c *= 2;
    return c;
}

void lexicon_free(lexicon_t *lx)
{
    if (!lx)
        return;
    free(lx->w);
    free(lx->pairs);
    free(lx->str);
    free(lx->str_tab);
    free(lx->syn_at);
    free(lx->first);
    free(lx->second);
    free(lx->post);
    free(lx);
}

size_t lexicon_memory(const lexicon_t *lx)
{
    if (!lx)
        return 0;
    return sizeof *lx + lx->cap * sizeof *lx->w + lx->pairs_cap * sizeof *lx->pairs +
           lx->n_str * sizeof *lx->str + lx->str_cap * sizeof *lx->str_tab +
           2 * lx->bucket_cap * sizeof *lx->first + lx->n_post * sizeof *lx->post;
}

static uint64_t pair_hash(const lex_word_t *w)
{
    return hash_bytes(w->stem, w->stem_len, hash_str(w->norm, w->norm_len) ^ 0xff);
}

static bool pairs_insert(lexicon_t *lx, uint32_t idx)
{
    size_t mask = lx->pairs_cap - 1;
    for (size_t h = pair_hash(&lx->w[idx]) & mask;; h = (h + 1) & mask)
        if (!lx->pairs[h]) {
            lx->pairs[h] = idx + 1;
            return true;
        }
}

static lexicon_t *lexicon_get(lexicon_t **lxp)
{
    if (!*lxp) {
        *lxp = calloc(1, sizeof **lxp);
        if (*lxp)
            (*lxp)->typo_min = INT64_MAX;
    }
    return *lxp;
}

bool lexicon_typo_min(lexicon_t **lxp, int64_t typo_min)
{
    lexicon_t *lx = lexicon_get(lxp);
    if (!lx)
        return false;
    if (typo_min < lx->typo_min)
        lx->typo_min = typo_min;
    return true;
}

int32_t lexicon_intern(lexicon_t **lxp, const char *norm, uint32_t norm_len, const char *stem,
                       uint32_t stem_len, int32_t syn)
{
    lexicon_t *lx = lexicon_get(lxp);
    if (!lx)
        return -1;
    lex_word_t key = {norm, stem, norm_len, stem_len, syn, 0, 0, 0, 0}; /* the rest: lexicon_finish */
    if (lx->pairs_cap) {
        size_t mask = lx->pairs_cap - 1;
        for (size_t h = pair_hash(&key) & mask; lx->pairs[h]; h = (h + 1) & mask) {
            const lex_word_t *w = &lx->w[lx->pairs[h] - 1];
            if (same(w->norm, w->norm_len, norm, norm_len) &&
                same(w->stem, w->stem_len, stem, stem_len))
                return (int32_t)(lx->pairs[h] - 1);
        }
    }
    if (lx->n >= (1u << 23))
        return -1;
    if (lx->n == lx->cap) {
        size_t cap = lx->cap ? lx->cap * 2 : 64;
        lex_word_t *v = realloc(lx->w, cap * sizeof *v);
        if (!v)
            return -1;
        lx->w = v;
        lx->cap = cap;
    }
    if ((lx->n + 1) * 2 > lx->pairs_cap) {
        size_t cap = pow2_at_least((lx->n + 1) * 4);
        uint32_t *t = calloc(cap, sizeof *t);
        if (!t)
            return -1;
        free(lx->pairs);
        lx->pairs = t;
        lx->pairs_cap = cap;
        for (size_t i = 0; i < lx->n; i++)
            pairs_insert(lx, (uint32_t)i);
    }
    lx->w[lx->n] = key;
    pairs_insert(lx, (uint32_t)lx->n);
    return (int32_t)lx->n++;
}

static const lex_str_t *str_find(const lexicon_t *lx, const char *s, size_t n)
{
    if (!lx->str_cap)
        return NULL;
    size_t mask = lx->str_cap - 1;
    for (size_t h = hash_str(s, n) & mask; lx->str_tab[h]; h = (h + 1) & mask) {
        const lex_str_t *e = &lx->str[lx->str_tab[h] - 1];
        if (same(e->s, e->len, s, n))
            return e;
    }
    return NULL;
}

/* Add s to the string table (it is sized for every string up front). */
static lex_str_t *str_add(lexicon_t *lx, const grading_rubric_t *r, const char *s, size_t n)
{
    size_t mask = lx->str_cap - 1;
    size_t h = hash_str(s, n) & mask;
    for (; lx->str_tab[h]; h = (h + 1) & mask) {
        lex_str_t *e = &lx->str[lx->str_tab[h] - 1];
        if (same(e->s, e->len, s, n))
            return e;
    }
    lex_str_t *e = &lx->str[lx->n_str];
    e->s = s;
    e->len = (uint32_t)n;
    e->syn = rubric_synonym_of(r, s, n);
    lx->str_tab[h] = (uint32_t)++lx->n_str;
    return e;
}

static lex_bucket_t *bucket_get(lex_bucket_t *tab, size_t cap, uint32_t key, bool add)
{
    size_t mask = cap - 1;
    for (size_t h = (key * 0x9e3779b1u) & mask;; h = (h + 1) & mask) {
        if (tab[h].key == key)
            return &tab[h];
        if (!tab[h].key) {
            if (!add)
                return NULL;
            tab[h].key = key;
            return &tab[h];
        }
    }
}

static uint32_t bucket_key(uint32_t len, unsigned char byte)
{
    return len << 8 | byte;
}

/* Index the interned words (see the top of the file). */
bool lexicon_finish(lexicon_t *lx, const grading_rubric_t *r)
{
    if (!lx)
        return true;
    free(lx->pairs); /* interning is over */
    lx->pairs = NULL;
    lx->pairs_cap = 0;
    size_t n_syn_words = 0;
    for (size_t s = 0; s < r->n_synonyms; s++)
        n_syn_words += r->synonyms[s].n;
    size_t max_str = 2 * lx->n + n_syn_words;
    lx->str_cap = pow2_at_least(max_str * 2);
    lx->bucket_cap = pow2_at_least(lx->n * 4);
    lx->str = calloc(max_str + 1, sizeof *lx->str);
    lx->str_tab = calloc(lx->str_cap, sizeof *lx->str_tab);
    lx->syn_at = calloc(r->n_synonyms + 1, sizeof *lx->syn_at);
    lx->first = calloc(lx->bucket_cap, sizeof *lx->first);
    lx->second = calloc(lx->bucket_cap, sizeof *lx->second);
    /* postings: each word once by stem, once by norm, at most once by synonym
     * set and at most twice in the byte buckets */
    lx->post = calloc(5 * lx->n + 1, sizeof *lx->post);
    if (!lx->str || !lx->str_tab || !lx->syn_at || !lx->first || !lx->second || !lx->post)
        return false;
    /* strings, and how many words each one heads */
    for (size_t i = 0; i < lx->n; i++) {
        const lex_word_t *w = &lx->w[i];
        str_add(lx, r, w->stem, w->stem_len)->n_stem++;
        str_add(lx, r, w->norm, w->norm_len)->n_norm++;
        if (w->syn >= 0 && (size_t)w->syn < r->n_synonyms)
            lx->syn_at[w->syn + 1]++;
        lx->w[i].norm_bytes = byte_set(w->norm, w->norm_len);
        lx->w[i].stem_bytes = byte_set(w->stem, w->stem_len);
        lx->w[i].b0 = (unsigned char)w->norm[0];
        lx->w[i].b1 = w->norm_len > 0 ? (unsigned char)w->norm[1] : 0;
        if (w->norm_len >= lx->typo_min) {
            unsigned char b0 = (unsigned char)w->norm[0], b1 = (unsigned char)w->norm[1];
            bucket_get(lx->first, lx->bucket_cap, bucket_key(w->norm_len, b0), true)->n++;
            bucket_get(lx->second, lx->bucket_cap, bucket_key(w->norm_len, b1), true)->n++;
            lx->lens_first[b0] |= 1ull << (w->norm_len & 63);
            lx->lens_second[b1] |= 1ull << (w->norm_len & 63);
        }
    }
    for (size_t s = 0; s < r->n_synonyms; s++)
        for (size_t j = 0; j < r->synonyms[s].n; j++)
            str_add(lx, r, r->synonyms[s].stems[j], strlen(r->synonyms[s].stems[j]));
    /* lay the postings out: synonym sets, strings, buckets (syn_at[s + 1]
     * holds set s's count so far) */
    for (size_t s = 0; s < r->n_synonyms; s++)
        lx->syn_at[s + 1] += lx->syn_at[s];
    uint32_t at = lx->syn_at[r->n_synonyms];
    for (size_t k = 0; k < lx->n_str; k++) {
        lx->str[k].stem_at = at;
        at += lx->str[k].n_stem;
        lx->str[k].norm_at = at;
        at += lx->str[k].n_norm;
        lx->str[k].n_stem = lx->str[k].n_norm = 0;
    }
    lex_bucket_t *tabs[2] = {lx->first, lx->second};
    for (int t = 0; t < 2; t++)
        for (size_t k = 0; k < lx->bucket_cap; k++)
            if (tabs[t][k].key) {
                tabs[t][k].at = at;
                at += tabs[t][k].n;
                tabs[t][k].n = 0;
            }
    lx->n_post = at;
    /* fill */
    uint32_t *syn_fill = calloc(r->n_synonyms + 1, sizeof *syn_fill);
    if (!syn_fill)
        return false;
    for (uint32_t i = 0; i < (uint32_t)lx->n; i++) {
        const lex_word_t *w = &lx->w[i];
        lex_str_t *e = (lex_str_t *)str_find(lx, w->stem, w->stem_len);
        lx->post[e->stem_at + e->n_stem++] = i;
        e = (lex_str_t *)str_find(lx, w->norm, w->norm_len);
        lx->post[e->norm_at + e->n_norm++] = i;
        if (w->syn >= 0 && (size_t)w->syn < r->n_synonyms)
            lx->post[lx->syn_at[w->syn] + syn_fill[w->syn]++] = i;
        if (w->norm_len >= lx->typo_min) {
            unsigned char b0 = (unsigned char)w->norm[0], b1 = (unsigned char)w->norm[1];
            lex_bucket_t *b =
                bucket_get(lx->first, lx->bucket_cap, bucket_key(w->norm_len, b0), false);
            lx->post[b->at + b->n++] = i;
            b = bucket_get(lx->second, lx->bucket_cap, bucket_key(w->norm_len, b1), false);
            lx->post[b->at + b->n++] = i;
        }
    }
    free(syn_fill);
    return true;
}

/* ---- per response ---- */

typedef struct match_list {
    arena_t *a;
    uint32_t *v;
    size_t n, cap;
} match_list_t;

static bool list_has(const match_list_t *l, size_t from, uint32_t word)
{
    for (size_t k = from; k < l->n; k++)
        if (l->v[k] >> 8 == word)
            return true;
    return false;
}

static bool list_add(match_list_t *l, uint32_t word, uint32_t typo_max)
{
    if (l->n == l->cap) {
        size_t cap = l->cap * 2;
        uint32_t *v = arena_alloc(l->a, cap * sizeof *v);
        if (!v)
            return false;
        memcpy(v, l->v, l->n * sizeof *v);
        l->v = v;
        l->cap = cap;
    }
    l->v[l->n++] = word << 8 | (typo_max > 255 ? 255 : typo_max);
    return true;
}

static bool add_all(match_list_t *l, size_t from, const uint32_t *post, uint32_t n)
{
    for (uint32_t k = 0; k < n; k++)
        if (!list_has(l, from, post[k]) && !list_add(l, post[k], 0))
            return false;
    return true;
}

/* The largest typo_min_length under which candidate word t is phrase word w
 * within one edit (text.c token_match), or 0 when none is. */
static uint32_t typo_max(const token_t *t, uint64_t t_bytes[2], const lex_word_t *w)
{
    unsigned char t0 = (unsigned char)t->norm[0], t1 = (unsigned char)t->norm[1];
    if (t0 != w->b0 && t1 != w->b1 && t1 != w->b0 && t0 != w->b1)
        return 0;
    if (!t_bytes[0]) { /* the token's byte sets, on first need */
        t_bytes[0] = byte_set(t->norm, t->norm_len);
        t_bytes[1] = byte_set(t->stem, t->stem_len);
    }
    if (one_edit_possible(t_bytes[0], w->norm_bytes) &&
        text_within_one_edit(t->norm, t->norm_len, w->norm, w->norm_len))
        return w->norm_len;
    if (one_edit_possible(t_bytes[1], w->stem_bytes) &&
        text_within_one_edit(t->stem, t->stem_len, w->stem, w->stem_len))
        return w->norm_len < w->stem_len ? w->norm_len : w->stem_len;
    return 0;
}

/* Typo candidates from one bucket table; skip_first: words whose first byte
 * is one of bytes were already seen through the first-byte table. */
static bool add_typos(match_list_t *l, size_t from, const lexicon_t *lx, const lex_bucket_t *tab,
                      const uint64_t *lens, const token_t *t, uint64_t t_bytes[2],
                      const unsigned char *bytes, int nb, bool skip_first)
{
    uint32_t len = t->norm_len;
    uint32_t pl = len > 1 ? len - 1 : 1;
    if ((int64_t)pl < lx->typo_min)
        pl = (uint32_t)lx->typo_min; /* at most len + 1: the caller checks */
    for (; pl <= len + 1; pl++) {
        for (int k = 0; k < nb; k++) {
            if (!(lens[bytes[k]] >> (pl & 63) & 1))
                continue; /* no such bucket */
            const lex_bucket_t *b =
                bucket_get((lex_bucket_t *)tab, lx->bucket_cap, bucket_key(pl, bytes[k]), false);
            for (uint32_t q = 0; b && q < b->n; q++) {
                uint32_t wi = lx->post[b->at + q];
                const lex_word_t *w = &lx->w[wi];
                if (skip_first && (w->b0 == bytes[0] || w->b0 == bytes[nb - 1]))
                    continue;
                if (list_has(l, from, wi))
                    continue;
                uint32_t tm = typo_max(t, t_bytes, w);
                if (tm >= lx->typo_min && !list_add(l, wi, tm))
                    return false;
            }
        }
    }
    return true;
}

/* For each token of tk, the phrase words of lx it can match (see internal.h). */
bool lexicon_match_tokens(const lexicon_t *lx, arena_t *a, tokens_t *tk)
{
    tk->match_lx = lx;
    tk->match_at = arena_alloc(a, (tk->n + 1) * sizeof *tk->match_at);
    match_list_t l = {.a = a, .cap = 64};
    l.v = arena_alloc(a, l.cap * sizeof *l.v);
    if (!tk->match_at || !l.v)
        return false;
    for (size_t i = 0; lx && i < tk->n; i++) {
        const token_t *t = &tk->v[i];
        size_t from = l.n;
        tk->match_at[i] = (uint32_t)from;
        const lex_str_t *e = str_find(lx, t->stem, t->stem_len);
        if (e && !add_all(&l, from, lx->post + e->stem_at, e->n_stem))
            return false;
        /* most short words are their own stem: one lookup serves both */
        const lex_str_t *f = t->stem == t->norm || same(t->stem, t->stem_len, t->norm, t->norm_len)
                                 ? e
                                 : str_find(lx, t->norm, t->norm_len);
        if (f && !add_all(&l, from, lx->post + f->norm_at, f->n_norm))
            return false;
        int32_t syn = e ? e->syn : -1;
        if (syn >= 0 &&
            !add_all(&l, from, lx->post + lx->syn_at[syn], lx->syn_at[syn + 1] - lx->syn_at[syn]))
            return false;
        if (!(t->flags & TOK_NUMBER) && t->norm_len + 1 >= lx->typo_min && t->norm_len >= 2) {
            unsigned char bytes[2] = {(unsigned char)t->norm[0], (unsigned char)t->norm[1]};
            int nb = bytes[0] == bytes[1] ? 1 : 2;
            uint64_t t_bytes[2] = {0, 0}; /* typo_max fills them */
            if (!add_typos(&l, from, lx, lx->first, lx->lens_first, t, t_bytes, bytes, nb,
                           false) ||
                !add_typos(&l, from, lx, lx->second, lx->lens_second, t, t_bytes, bytes, nb, true))
                return false;
        }
    }
    tk->match_at[tk->n] = (uint32_t)l.n;
    if (!lx)
        memset(tk->match_at, 0, (tk->n + 1) * sizeof *tk->match_at);
    tk->match = l.v;
    return true;
}
