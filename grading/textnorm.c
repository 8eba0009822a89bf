/*
 * textnorm.c - words of candidate text, normalised once, spans kept.
 *
 * Text is cut into words on the original bytes, so every word keeps its byte
 * span for evidence; each word is then normalised (utf8proc NFKC + case fold;
 * ASCII words take a fast path that gives the same result) and stemmed with
 * the Snowball English stemmer. Sentence, clause, line and paragraph indexes
 * are recorded for negation scope and structure rules. Invalid UTF-8 bytes
 * separate words and never stop the scan.
 */
#include "internal.h"

#include <libstemmer.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* Stems of recent words: a response repeats its words ("the", "we", the
 * customer's name), and a Snowball stem costs far more than a lookup. The
 * cache lives as long as its box: a thread keeps its box from one grading
 * call to the next (stemmer_box_free). */
#define STEM_CACHE_SLOTS 512
#define STEM_CACHE_WORD 32

typedef struct stem_slot {
    uint8_t norm_len, stem_len;
    bool same; /* the stem is the word itself */
    char norm[STEM_CACHE_WORD], stem[STEM_CACHE_WORD];
} stem_slot_t;

/* Stems known in advance: every word of the rubric's own text (prompts,
 * titles, phrases, options ...), stemmed at load time. Candidates answer in
 * the rubric's vocabulary, so many of their words are found here instead of
 * being stemmed again. Read-only once built. */
typedef struct known_stem {
    const char *norm, *stem;
    uint32_t norm_len, stem_len; /* norm_len 0: empty */
} known_stem_t;

struct stem_table {
    arena_t arena;
    known_stem_t *v;
    size_t n, cap; /* cap: a power of two, at most half full */
};

struct stemmer_box {
    struct sb_stemmer *sb;
    const stem_table_t *known;            /* may be NULL */
    stem_slot_t *cache;                   /* STEM_CACHE_SLOTS, direct-mapped; NULL until used */
    uint64_t used[STEM_CACHE_SLOTS / 64]; /* which slots hold a word (the
                                             cache itself is not zeroed) */
};

static void box_destroy(void *p)
{
    stemmer_box_t *s = p;
    sb_stemmer_delete(s->sb);
    free(s->cache);
    free(s);
}

/* A thread keeps the box of its last grading call for its next one: a stem
 * depends on the word alone, so the stemmer and its cache of stems can
 * outlive a call, and a worker grading attempt after attempt stems a word
 * its candidates keep using once instead of once per attempt. The spare box
 * is freed when the thread ends. */
static pthread_key_t spare_key;
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;
static bool spare_ok;

static void spare_init(void)
{
    spare_ok = pthread_key_create(&spare_key, box_destroy) == 0;
}

stemmer_box_t *stemmer_box_new(void)
{
    pthread_once(&spare_once, spare_init);
    stemmer_box_t *s = spare_ok ? pthread_getspecific(spare_key) : NULL;
    if (s) {
        pthread_setspecific(spare_key, NULL);
        s->known = NULL;
        return s;
    }
    s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->sb = sb_stemmer_new("english", "UTF_8");
    if (!s->sb) {
        free(s);
        return NULL;
    }
    return s;
}

void stemmer_box_free(stemmer_box_t *s)
{
    if (!s)
        return;
    pthread_once(&spare_once, spare_init);
    if (spare_ok && !pthread_getspecific(spare_key) && pthread_setspecific(spare_key, s) == 0)
        return;
    box_destroy(s);
}

/* ASCII letters and digits, by byte */
static const bool ASCII_WORD[128] = {
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
    ['8'] = 1, ['9'] = 1, ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1,
    ['G'] = 1, ['H'] = 1, ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1,
    ['O'] = 1, ['P'] = 1, ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1,
    ['W'] = 1, ['X'] = 1, ['Y'] = 1, ['Z'] = 1, ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1,
    ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1, ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1,
    ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1, ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1,
    ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1, ['y'] = 1, ['z'] = 1,
};

static inline bool is_word_cp(utf8proc_int32_t cp)
{
    if (cp < 128)
        return cp >= 0 && ASCII_WORD[cp];
    utf8proc_category_t c = utf8proc_category(cp);
    return (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_NO);
}

static bool is_digit_byte(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* Decode one code point at s[i]; invalid bytes decode as -1 with length 1. */
static inline utf8proc_ssize_t decode(const char *s, size_t len, size_t i, utf8proc_int32_t *cp)
{
    if ((unsigned char)s[i] < 0x80) { /* what utf8proc_iterate gives ASCII */
        *cp = (unsigned char)s[i];
        return 1;
    }
    utf8proc_ssize_t n =
        utf8proc_iterate((const utf8proc_uint8_t *)s + i, (utf8proc_ssize_t)(len - i), cp);
    if (n <= 0) {
        *cp = -1;
        return 1;
    }
    return n;
}

/* Negators, hedges and clause words ("but", "however"), grouped by length:
 * every word of every response is looked up here, and a word is compared
 * only with the listed words of its length. */
#define LW_NEGATOR 1
#define LW_HEDGE 2
#define LW_CLAUSE 4

typedef struct listed_word {
    const char *w;
    int flags;
} listed_word_t;

static const listed_word_t LISTED_2[] = {{"no", LW_NEGATOR}, {NULL, 0}};
static const listed_word_t LISTED_3[] = {
    {"not", LW_NEGATOR}, {"nor", LW_NEGATOR}, {"but", LW_CLAUSE}, {"yet", LW_CLAUSE}, {NULL, 0}};
static const listed_word_t LISTED_4[] = {{"dont", LW_NEGATOR}, {"cant", LW_NEGATOR},
                                         {"wont", LW_NEGATOR}, {"isnt", LW_NEGATOR},
                                         {"none", LW_NEGATOR}, {NULL, 0}};
static const listed_word_t LISTED_5[] = {{"never", LW_NEGATOR}, {"can't", LW_NEGATOR},
                                         {"don't", LW_NEGATOR}, {"won't", LW_NEGATOR},
                                         {"isn't", LW_NEGATOR}, {"didnt", LW_NEGATOR},
                                         {"maybe", LW_HEDGE},   {"might", LW_HEDGE},
                                         {"guess", LW_HEDGE},   {NULL, 0}};
static const listed_word_t LISTED_6[] = {
    {"cannot", LW_NEGATOR}, {"aren't", LW_NEGATOR}, {"wasn't", LW_NEGATOR}, {"didn't", LW_NEGATOR},
    {"hasn't", LW_NEGATOR}, {"hadn't", LW_NEGATOR}, {"nobody", LW_NEGATOR}, {"unable", LW_NEGATOR},
    {"doesnt", LW_NEGATOR}, {"unsure", LW_HEDGE},   {"though", LW_CLAUSE},  {NULL, 0}};
static const listed_word_t LISTED_7[] = {{"weren't", LW_NEGATOR}, {"doesn't", LW_NEGATOR},
                                         {"haven't", LW_NEGATOR}, {"neither", LW_NEGATOR},
                                         {"nothing", LW_NEGATOR}, {"without", LW_NEGATOR},
                                         {"perhaps", LW_HEDGE},   {"however", LW_CLAUSE},
                                         {"whereas", LW_CLAUSE},  {NULL, 0}};
static const listed_word_t LISTED_8[] = {{"wouldn't", LW_NEGATOR},
                                         {"couldn't", LW_NEGATOR},
                                         {"possibly", LW_HEDGE},
                                         {"probably", LW_HEDGE},
                                         {"somewhat", LW_HEDGE},
                                         {"although", LW_CLAUSE},
                                         {NULL, 0}};
static const listed_word_t LISTED_9[] = {
    {"shouldn't", LW_NEGATOR}, {"hopefully", LW_HEDGE}, {NULL, 0}};

static const listed_word_t *const LISTED_BY_LEN[10] = {
    [2] = LISTED_2, [3] = LISTED_3, [4] = LISTED_4, [5] = LISTED_5,
    [6] = LISTED_6, [7] = LISTED_7, [8] = LISTED_8, [9] = LISTED_9,
};

/* LW_* flags of the word w[0..n). */
/* memcmp(a, b, n) == 0 for the short strings of words: a loop is cheaper
 * than the call. */
static inline bool bytes_equal(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return false;
    return true;
}

/* The first letters of the listed words, by length (bit c - 'a'), made
 * once from the lists (whose words all start with a letter a-z): most words
 * are turned away by their first letter. */
static uint32_t listed_first[sizeof LISTED_BY_LEN / sizeof LISTED_BY_LEN[0]];
static pthread_once_t listed_once = PTHREAD_ONCE_INIT;

static void listed_first_init(void)
{
    for (size_t n = 0; n < sizeof LISTED_BY_LEN / sizeof LISTED_BY_LEN[0]; n++)
        for (const listed_word_t *l = LISTED_BY_LEN[n]; l && l->w; l++) {
            unsigned f = (unsigned)(unsigned char)l->w[0] - 'a';
            listed_first[n] |= f < 26 ? 1u << f : 0;
        }
}

static int listed_flags(const char *w, size_t n)
{
    if (n >= sizeof LISTED_BY_LEN / sizeof LISTED_BY_LEN[0] || !LISTED_BY_LEN[n])
        return 0;
    pthread_once(&listed_once, listed_first_init);
    unsigned f = (unsigned)(unsigned char)w[0] - 'a';
    if (f >= 26 || !(listed_first[n] >> f & 1))
        return 0;
    for (const listed_word_t *l = LISTED_BY_LEN[n]; l->w; l++)
        if (l->w[0] == w[0] && bytes_equal(l->w, w, n))
            return l->flags;
    return 0;
}

static uint32_t word_hash(const char *s, size_t n)
{
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 16777619u;
    return h ^ (h >> 15);
}

/* NFKC + case fold of s[0..len); ASCII takes the lowercase fast path. The
 * typographic apostrophe becomes '. *hash, when asked for, is word_hash of
 * the result (made while copying on the fast path). */
static char *normalize_word_hash(arena_t *a, const char *s, size_t len, size_t *out_len,
                                 uint32_t *hash);

static char *normalize_word(arena_t *a, const char *s, size_t len, size_t *out_len)
{
    return normalize_word_hash(a, s, len, out_len, NULL);
}

static char *normalize_word_hash(arena_t *a, const char *s, size_t len, size_t *out_len,
                                 uint32_t *hash)
{
    /* ASCII: lowercase while copying; a byte >= 128 sends the word to
     * utf8proc instead (the copy is then left unused in the arena) */
    char *o = arena_alloc_raw(a, len + 1);
    if (!o)
        return NULL;
    size_t j = 0;
    uint32_t h = 2166136261u;
    for (; j < len; j++) {
        unsigned char ch = (unsigned char)s[j];
        if (ch >= 128)
            break;
        ch = (unsigned char)(ch >= 'A' && ch <= 'Z' ? ch + 32 : ch);
        o[j] = (char)ch;
        h = (h ^ ch) * 16777619u;
    }
    if (j == len) {
        o[len] = '\0';
        *out_len = len;
        if (hash)
            *hash = h ^ (h >> 15);
        return o;
    }
    utf8proc_uint8_t *dst = NULL;
    utf8proc_ssize_t n = utf8proc_map((const utf8proc_uint8_t *)s, (utf8proc_ssize_t)len, &dst,
                                      UTF8PROC_STABLE | UTF8PROC_COMPOSE | UTF8PROC_COMPAT |
                                          UTF8PROC_CASEFOLD | UTF8PROC_IGNORE);
    if (n < 0) {
        free(dst);
        *out_len = 0;
        return arena_strdup(a, "");
    }
    /* U+2019 RIGHT SINGLE QUOTATION MARK (e2 80 99) -> ' */
    o = arena_alloc(a, (size_t)n + 1);
    size_t k = 0;
    for (utf8proc_ssize_t i = 0; o && i < n; i++) {
        if (i + 2 < n && dst[i] == 0xe2 && dst[i + 1] == 0x80 && dst[i + 2] == 0x99) {
            o[k++] = '\'';
            i += 2;
        } else {
            o[k++] = (char)dst[i];
        }
    }
    free(dst);
    *out_len = k;
    if (hash && o)
        *hash = word_hash(o, k);
    return o;
}

static const known_stem_t *known_find(const stem_table_t *t, const char *norm, size_t nl,
                                      uint32_t h)
{
    if (!t || !t->cap)
        return NULL;
    size_t mask = t->cap - 1;
    for (size_t k = h & mask; t->v[k].norm_len; k = (k + 1) & mask)
        if (t->v[k].norm_len == nl && bytes_equal(t->v[k].norm, norm, nl))
            return &t->v[k];
    return NULL;
}

stem_table_t *stem_table_new(void)
{
    return calloc(1, sizeof(stem_table_t));
}

void stem_table_free(stem_table_t *t)
{
    if (!t)
        return;
    free(t->v);
    arena_free(&t->arena);
    free(t);
}

size_t stem_table_memory(const stem_table_t *t)
{
    return t ? sizeof *t + t->arena.total + t->cap * sizeof *t->v : 0;
}

static bool known_put(stem_table_t *t, const known_stem_t *e, uint32_t h)
{
    size_t mask = t->cap - 1, k = h & mask;
    while (t->v[k].norm_len)
        k = (k + 1) & mask;
    t->v[k] = *e;
    return true;
}

bool stem_table_add_text(stem_table_t *t, stemmer_box_t *st, const char *text, size_t len)
{
    arena_t scratch = {0};
    tokens_t tk;
    const stem_table_t *was = st->known;
    st->known = NULL; /* stem for real: this is where known stems come from */
    bool ok = text_tokenize(&scratch, st, text, len, &tk);
    st->known = was;
    for (size_t i = 0; ok && i < tk.n; i++) {
        const token_t *w = &tk.v[i];
        if (w->flags & TOK_NUMBER || w->norm_len == 0)
            continue; /* numbers are not stemmed */
        uint32_t h = word_hash(w->norm, w->norm_len);
        if (known_find(t, w->norm, w->norm_len, h))
            continue;
        if ((t->n + 1) * 2 > t->cap) {
            size_t cap = t->cap ? t->cap * 2 : 256;
            known_stem_t *old = t->v;
            size_t old_cap = t->cap;
            t->v = calloc(cap, sizeof *t->v);
            if (!t->v) {
                t->v = old;
                ok = false;
                break;
            }
            t->cap = cap;
            for (size_t k = 0; k < old_cap; k++)
                if (old[k].norm_len)
                    known_put(t, &old[k], word_hash(old[k].norm, old[k].norm_len));
            free(old);
        }
        known_stem_t e = {arena_strndup(&t->arena, w->norm, w->norm_len),
                          arena_strndup(&t->arena, w->stem, w->stem_len), w->norm_len, w->stem_len};
        if (!e.norm || !e.stem) {
            ok = false;
            break;
        }
        known_put(t, &e, h);
        t->n++;
    }
    arena_free(&scratch);
    return ok;
}

void stemmer_box_use(stemmer_box_t *st, const stem_table_t *known)
{
    if (st)
        st->known = known;
}

/* The Snowball stem of norm[0..nl), copied into a: from the rubric's known
 * stems, else through the cache for short words, else the stemmer. */
static bool stem_word(arena_t *a, stemmer_box_t *st, const char *norm, size_t nl, uint32_t h,
                      const char **stem, uint32_t *stem_len)
{
    stem_slot_t *slot = NULL; /* h: word_hash(norm, nl) */
    const known_stem_t *ks = known_find(st->known, norm, nl, h);
    if (ks) {
        *stem = ks->stem; /* lives as long as the rubric */
        *stem_len = ks->stem_len;
        return true;
    }
    if (nl > 0 && nl < STEM_CACHE_WORD) {
        if (!st->cache)
            st->cache = malloc(STEM_CACHE_SLOTS * sizeof *st->cache);
        if (st->cache) {
            uint32_t k = h & (STEM_CACHE_SLOTS - 1);
            slot = &st->cache[k];
            bool used = st->used[k / 64] >> (k % 64) & 1;
            st->used[k / 64] |= 1ull << (k % 64);
            if (!used)
                slot->norm_len = 0; /* empty; filled below */
            else if (slot->norm_len == nl && bytes_equal(slot->norm, norm, nl)) {
                /* a stem equal to the word is the word's own copy */
                *stem = slot->same ? norm : arena_strndup(a, slot->stem, slot->stem_len);
                *stem_len = slot->stem_len;
                return *stem != NULL;
            }
        }
    }
    const sb_symbol *s = sb_stemmer_stem(st->sb, (const sb_symbol *)norm, (int)nl);
    int sl = s ? sb_stemmer_length(st->sb) : 0;
    if (!s) {
        *stem = norm;
        *stem_len = (uint32_t)nl;
        return true;
    }
    bool same = (size_t)sl == nl && bytes_equal((const char *)s, norm, nl);
    *stem = same ? norm : arena_strndup(a, (const char *)s, (size_t)sl);
    *stem_len = (uint32_t)sl;
    if (slot && sl >= 0 && sl < STEM_CACHE_WORD) {
        slot->same = same;
        slot->norm_len = (uint8_t)nl;
        memcpy(slot->norm, norm, nl);
        slot->stem_len = (uint8_t)sl;
        memcpy(slot->stem, s, (size_t)sl);
    } else if (slot) {
        slot->norm_len = 0; /* keeps no word */
    }
    return *stem != NULL;
}

/* Split text into normalised, stemmed words with their original spans. */
bool text_tokenize(arena_t *a, stemmer_box_t *st, const char *text, size_t len, tokens_t *out)
{
    memset(out, 0, sizeof *out);
    /* about one word per six bytes of prose; tokens are written in full, so
     * the array needs no zeroing */
    size_t cap = len / 6 + 16;
    token_t *v = arena_alloc_raw(a, cap * sizeof *v);
    if (!v)
        return false;
    uint32_t sentence = 0, clause = 0, line = 0;
    bool para_pending = true, sentence_open = false, clause_open = false;
    int newlines = 0;
    size_t i = 0;
    while (i < len) {
        if (text[i] == ' ') {
            i++; /* a space separates words and nothing else */
            continue;
        }
        utf8proc_int32_t cp;
        utf8proc_ssize_t n = decode(text, len, i, &cp);
        if (!is_word_cp(cp)) {
            /* separators: sentence and clause punctuation, lines, paragraphs */
            if (cp == '\n') {
                line++;
                if (++newlines >= 2)
                    para_pending = true;
                if (sentence_open) {
                    sentence++;
                    clause++;
                    sentence_open = clause_open = false;
                }
            } else if (cp == '.' || cp == '!' || cp == '?' || cp == 0x2026) {
                if (sentence_open) {
                    sentence++;
                    clause++;
                    sentence_open = clause_open = false;
                }
            } else if (cp == ',' || cp == ';' || cp == ':' || cp == 0x2014 || cp == 0x2013 ||
                       cp == '(' || cp == ')') {
                if (clause_open) {
                    clause++;
                    clause_open = false;
                }
            } else if (cp != ' ' && cp != '\t' && cp != '\r') {
                /* other punctuation and symbols: no structure */
            }
            if (cp != '\n' && cp != ' ' && cp != '\t' && cp != '\r')
                newlines = 0;
            i += (size_t)n;
            continue;
        }
        /* a word: letters/digits/marks, with ' or ’ between letters and . or ,
         * between digits kept inside */
        size_t start = i;
        bool digit_start = is_digit_byte((unsigned char)text[i]);
        while (i < len) {
            if ((unsigned char)text[i] < 0x80 && ASCII_WORD[(unsigned char)text[i]]) {
                i++; /* an ASCII letter or digit: what decode and is_word_cp say */
                continue;
            }
            n = decode(text, len, i, &cp);
            if (is_word_cp(cp)) {
                i += (size_t)n;
                continue;
            }
            if ((cp == '\'' || cp == 0x2019) && i + (size_t)n < len) {
                utf8proc_int32_t nx;
                decode(text, len, i + (size_t)n, &nx);
                if (is_word_cp(nx) && !is_digit_byte((unsigned char)text[i - 1])) {
                    i += (size_t)n;
                    continue;
                }
            }
            if ((cp == '.' || cp == ',') && i + 1 < len &&
                is_digit_byte((unsigned char)text[i - 1]) &&
                is_digit_byte((unsigned char)text[i + 1])) {
                i += 1;
                continue;
            }
            break;
        }
        newlines = 0;
        if (out->n == cap) {
            token_t *nv = arena_alloc_raw(a, cap * 2 * sizeof *nv);
            if (!nv)
                return false;
            memcpy(nv, v, cap * sizeof *v);
            v = nv;
            cap *= 2;
        }
        token_t *t = &v[out->n];
        size_t nl = 0;
        uint32_t h = 0;
        char *norm = normalize_word_hash(a, text + start, i - start, &nl, &h);
        if (!norm)
            return false;
        int listed = listed_flags(norm, nl);
        if ((listed & LW_CLAUSE) && clause_open) {
            clause++;
            clause_open = false;
        }
        t->flags = 0;
        t->norm = norm;
        t->norm_len = (uint32_t)nl;
        t->start = (uint32_t)start;
        t->end = (uint32_t)i;
        t->sentence = sentence;
        t->clause = clause;
        t->line = line;
        if (digit_start)
            t->flags |= TOK_NUMBER;
        if ((listed & LW_NEGATOR) || (nl > 3 && bytes_equal(norm + nl - 3, "n't", 3)))
            t->flags |= TOK_NEGATOR;
        if (listed & LW_HEDGE)
            t->flags |= TOK_HEDGE;
        if (para_pending) {
            t->flags |= TOK_PARA_START;
            out->paragraphs++;
            para_pending = false;
        }
        if (st && !digit_start) {
            if (!stem_word(a, st, norm, nl, h, &t->stem, &t->stem_len))
                return false;
        } else {
            t->stem = norm;
            t->stem_len = (uint32_t)nl;
        }
        if (!t->stem)
            return false;
        sentence_open = clause_open = true;
        out->n++;
    }
    out->v = v;
    out->sentences = sentence + (sentence_open ? 1 : 0);
    return true;
}

/* NFKC + case fold, without apostrophes; punctuation and whitespace runs
 * become one space; trimmed. Folding a folded label changes nothing. */
char *text_fold(arena_t *a, const char *s, size_t len)
{
    size_t nl = 0;
    char *norm = normalize_word(a, s, len, &nl);
    /* The apostrophes go after normalising (it makes them of U+2019 and
     * U+FF07), and what is left is normalised again: an apostrophe blocks
     * composition, so "a'" + U+0301 is NFKC while "a" + U+0301 is not. A
     * second round finds none left; the bound is for safety. */
    for (int round = 0; norm && round < 4 && memchr(norm, '\'', nl); round++) {
        size_t k = 0;
        for (size_t i = 0; i < nl; i++)
            if (norm[i] != '\'')
                norm[k++] = norm[i];
        norm = normalize_word(a, norm, k, &nl);
    }
    if (!norm)
        return NULL;
    char *o = arena_alloc(a, nl + 1);
    if (!o)
        return NULL;
    size_t k = 0;
    bool space = false;
    for (size_t i = 0; i < nl;) {
        utf8proc_int32_t cp;
        utf8proc_ssize_t n = decode(norm, nl, i, &cp);
        if (cp == '\'') {
            i += (size_t)n;
            continue;
        }
        if (is_word_cp(cp)) {
            if (space && k)
                o[k++] = ' ';
            space = false;
            memcpy(o + k, norm + i, (size_t)n);
            k += (size_t)n;
        } else {
            space = true;
        }
        i += (size_t)n;
    }
    o[k] = '\0';
    return o;
}

/* Damerau-Levenshtein distance <= 1 (one substitution, insertion, deletion or
 * adjacent transposition), on bytes. */
bool text_within_one_edit(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen > blen)
        return text_within_one_edit(b, blen, a, alen);
    if (blen - alen > 1)
        return false;
    size_t i = 0;
    while (i < alen && a[i] == b[i])
        i++;
    if (i == alen)
        return true; /* equal, or b has one extra byte at the end */
    if (alen == blen) {
        if (bytes_equal(a + i + 1, b + i + 1, alen - i - 1))
            return true; /* substitution */
        return i + 1 < alen && a[i] == b[i + 1] && a[i + 1] == b[i] &&
               bytes_equal(a + i + 2, b + i + 2, alen - i - 2); /* transposition */
    }
    return bytes_equal(a + i, b + i + 1, alen - i); /* insertion */
}

/* Is the text span [start, end) denied in its clause: a negator up to three
 * words before it, or a "wrong"/"not"/"instead" word up to four words after
 * it ("July 15 is wrong", "not Apex Corp")? */
bool text_span_negated(const tokens_t *tk, size_t start, size_t end)
{
    static const char *const WRONG[] = {"wrong",      "incorrect", "mistake", "error",
                                        "inaccurate", "typo",      "instead", NULL};
    size_t i = 0;
    while (i < tk->n && tk->v[i].end <= start)
        i++;
    if (i >= tk->n)
        return false;
    uint32_t clause = tk->v[i].clause;
    for (size_t k = 1; k <= 3 && k <= i; k++) {
        const token_t *t = &tk->v[i - k];
        if (t->clause != clause)
            break;
        if (t->flags & TOK_NEGATOR)
            return true;
    }
    size_t j = i;
    while (j < tk->n && tk->v[j].start < end)
        j++;
    for (size_t k = 0; k < 4 && j + k < tk->n; k++) {
        const token_t *t = &tk->v[j + k];
        if (t->clause != clause)
            break;
        if (t->flags & TOK_NEGATOR)
            return true;
        for (size_t w = 0; WRONG[w]; w++)
            if (t->norm_len == strlen(WRONG[w]) && memcmp(t->norm, WRONG[w], t->norm_len) == 0)
                return true;
    }
    return false;
}
