/*
 * shape.c - the shape of a written answer: is it a keyword list?
 *
 * A candidate who pastes keywords instead of sentences ("onboarding, kickoff,
 * training, QBR, ...") would collect the phrase points of a text item without
 * writing anything. A `keyword_list` shape (an element's "shape" field, see
 * RUBRIC.md) recognises such an answer by its form, with six tests run side
 * by side in a single left-to-right pass over the characters of the original
 * text:
 *
 *   fragments      N comma-separated fragments in a row, the inner ones short
 *   lines          N lines in a row of a few words each (a bullet list)
 *   sentences      N very short sentences in a row ("Kickoff. Training. ...")
 *   run            a long run of characters with no sentence end
 *   content_words  N words in a row, separated by spaces only, none of the
 *                  first N - 1 a stop word ("churn risk NPS usage renewal ...")
 *   answer         the whole answer long and without a sentence end
 *
 * Each test is the linear-time reading of a PCRE2 guard pattern the csm-smb
 * rubric used before (quoted at each test): it finds a run where the pattern
 * finds a match (the same verdicts on the csm-smb attempts and on random text
 * aimed at the edge cases), so a rubric moving from the patterns to the shape
 * keeps its scores. Characters are Unicode code points of valid UTF-8; a byte
 * that is not part of a valid sequence matches nothing (as PCRE2 treats it
 * with PCRE2_MATCH_INVALID_UTF), so it breaks every run.
 */
#include "internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

/* Character classes (bits). */
enum {
    C_LN = 1 << 0,     /* \p{L} or \p{N} */
    C_APOS = 1 << 1,   /* ' */
    C_WORD = 1 << 2,   /* inside a content word: \p{L} \p{N} ' U+2019 @ # & / - */
    C_HSPACE = 1 << 3, /* space or tab */
    C_SPACE = 1 << 4,  /* white space: PCRE2's \s with Unicode properties */
    C_STOP = 1 << 5,   /* . ! ? */
    C_NL = 1 << 6,     /* \n */
    C_COMMA = 1 << 7,
    C_BULLET = 1 << 8, /* - * U+2022 */
    C_BAD = 1 << 9,    /* a byte outside valid UTF-8 */
};

/* The classes of the ASCII characters. */
#define LW (C_LN | C_WORD)
#define AW (C_APOS | C_WORD)
#define HY (C_WORD | C_BULLET)
#define WD C_WORD
#define BU C_BULLET
#define HS (C_HSPACE | C_SPACE)
#define NL (C_NL | C_SPACE)
#define SP C_SPACE
#define ST C_STOP
#define CO C_COMMA
/* clang-format off */
static const uint16_t ASCII_CLASS[128] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, HS, NL, SP, SP, SP, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    HS, ST, 0, WD, 0, 0, WD, AW, 0, 0, BU, 0, CO, HY, ST, WD,
    LW, LW, LW, LW, LW, LW, LW, LW, LW, LW, 0, 0, 0, 0, 0, ST,
    WD, LW, LW, LW, LW, LW, LW, LW, LW, LW, LW, LW, LW, LW, LW, LW,
    LW, LW, LW, LW, LW, LW, LW, LW, LW, LW, LW, 0, 0, 0, 0, 0,
    0, LW, LW, LW, LW, LW, LW, LW, LW, LW, LW, LW, LW, LW, LW, LW,
    LW, LW, LW, LW, LW, LW, LW, LW, LW, LW, LW, 0, 0, 0, 0, 0,
};
/* clang-format on */
#undef LW
#undef AW
#undef HY
#undef WD
#undef BU
#undef HS
#undef NL
#undef SP
#undef ST
#undef CO

static unsigned class_of(int32_t cp)
{
    if (cp < 0)
        return C_BAD;
    if (cp < 0x80)
        return ASCII_CLASS[cp];
    switch (cp) {
    case 0x2019:
        return C_WORD;
    case 0x2022:
        return C_BULLET;
    case 0x85:   /* next line */
    case 0xa0:   /* no-break space */
    case 0x1680: /* ogham space mark */
    case 0x180e: /* mongolian vowel separator (in PCRE2's \h) */
    case 0x2028: /* line separator */
    case 0x2029: /* paragraph separator */
    case 0x202f: /* narrow no-break space */
    case 0x205f: /* medium mathematical space */
    case 0x3000: /* ideographic space */
        return C_SPACE;
    default:
        break;
    }
    if (cp >= 0x2000 && cp <= 0x200a)
        return C_SPACE;
    utf8proc_category_t k = utf8proc_category(cp);
    if (k >= UTF8PROC_CATEGORY_LU && k <= UTF8PROC_CATEGORY_NO && k != UTF8PROC_CATEGORY_MN &&
        k != UTF8PROC_CATEGORY_MC && k != UTF8PROC_CATEGORY_ME)
        return C_LN | C_WORD;
    if (k == UTF8PROC_CATEGORY_ZS || k == UTF8PROC_CATEGORY_ZL || k == UTF8PROC_CATEGORY_ZP)
        return C_SPACE;
    return 0;
}

/* The code point at s[*i], advancing *i; -1 for a byte that does not start a
 * valid UTF-8 sequence (it is consumed alone). Strict like PCRE2: no overlong
 * forms, surrogates or values past U+10FFFF. */
static inline int32_t next_cp(const unsigned char *s, size_t len, size_t *i)
{
    unsigned c = s[*i];
    if (c < 0x80) {
        (*i)++;
        return (int32_t)c;
    }
    size_t n;
    int32_t cp, min;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 1, cp = (int32_t)(c & 0x1f), min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 2, cp = (int32_t)(c & 0x0f), min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 3, cp = (int32_t)(c & 0x07), min = 0x10000;
    } else {
        (*i)++;
        return -1;
    }
    if (len - *i <= n) {
        (*i)++;
        return -1;
    }
    for (size_t k = 1; k <= n; k++) {
        unsigned d = s[*i + k];
        if ((d & 0xc0) != 0x80) {
            (*i)++;
            return -1;
        }
        cp = cp << 6 | (int32_t)(d & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        (*i)++;
        return -1;
    }
    *i += n + 1;
    return cp;
}

/* ---- the stop words of the content-word test ---- */

/* The stop words by length: STOP_WORDS[n] holds the words of n characters,
 * run together ("an" "or" "to" ...). */
static const char *const STOP_WORDS[] = {
    "",
    "ai",
    "anortoofinonatbyasifsonoisbeamdoitweusmymeheup",
    "theandbutfornotarewashashaddiditsouri'mi'dyoushehishercanmaywhohowallanytooout",
    "withfromwerebeenhavedoesit'sthisthatheretheythemi'llyourwillwhenwhatjustveryalsothantheninto",
    "thesethosetheretheircouldwouldsincewhichabout",
    "you'reshouldplease",
};

#define STOP_WORD_MAX 6 /* letters of the longest ("should", "please", "you're") */

/* The stop words as keys (stop_key) in an open-addressing table, built once
 * (shape_find sees to it): stop_word_at runs at the start of most words of a
 * text. */
#define STOP_SLOTS 256
static uint64_t stop_table[STOP_SLOTS]; /* 0: empty */
static pthread_once_t stop_once = PTHREAD_ONCE_INIT;

/* w[0..n) (1 to 8 nonzero bytes) as a number: distinct words, distinct keys */
static inline uint64_t stop_key(const char *w, size_t n)
{
    uint64_t k = 0;
    for (size_t i = 0; i < n; i++)
        k |= (uint64_t)(unsigned char)w[i] << (8 * i);
    return k;
}

static inline size_t stop_slot(uint64_t key)
{
    return (size_t)((key * 0x9e3779b97f4a7c15ull) >> 56) & (STOP_SLOTS - 1);
}

static void stop_table_build(void)
{
    for (size_t n = 1; n < sizeof STOP_WORDS / sizeof STOP_WORDS[0]; n++)
        for (const char *l = STOP_WORDS[n]; *l; l += n) {
            uint64_t key = stop_key(l, n);
            size_t h = stop_slot(key);
            while (stop_table[h] && stop_table[h] != key)
                h = (h + 1) & (STOP_SLOTS - 1);
            stop_table[h] = key;
        }
}

/* The word starting at s[i] is a stop word: the run of letters, digits and
 * apostrophes starting there, compared without case, is one of the list. (A
 * stop word followed by a letter, digit or apostrophe is part of a longer
 * word; followed by anything else it ends there: "to-do" starts with "to".)
 * The long s and the Kelvin sign fold to s and k, as in PCRE2's caseless
 * matching. */
static bool stop_word_at(const unsigned char *s, size_t len, size_t i)
{
    char w[STOP_WORD_MAX + 1];
    size_t n = 0;
    while (i < len) {
        if (s[i] < 0x80) { /* ASCII: what next_cp and class_of give, at once */
            unsigned c = s[i++];
            if (!(ASCII_CLASS[c] & (C_LN | C_APOS)))
                break;
            if (n == STOP_WORD_MAX)
                return false;
            w[n++] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
            continue;
        }
        int32_t cp = next_cp(s, len, &i);
        if (!(class_of(cp) & (C_LN | C_APOS)))
            break;
        if (n == STOP_WORD_MAX)
            return false;
        if (cp == 0x17f)
            w[n++] = 's';
        else if (cp == 0x212a)
            w[n++] = 'k';
        else
            return false;
    }
    if (n == 0)
        return false;
    uint64_t key = stop_key(w, n);
    for (size_t h = stop_slot(key); stop_table[h]; h = (h + 1) & (STOP_SLOTS - 1))
        if (stop_table[h] == key)
            return true;
    return false;
}

/* ---- the tests ----
 *
 * Each test is a state machine fed one character at a time (its class, its
 * byte offset `at` and the offset `next` after it), then a line break at the
 * end of the text, standing for the end; shape_find runs them side by side
 * in one pass. */

typedef struct hits {
    shape_hit_t *v;
    size_t n, cap, found;
} hits_t;

static void hit(hits_t *h, shape_test_t test, size_t start, size_t end)
{
    if (h->n < h->cap)
        h->v[h->n++] = (shape_hit_t){test, start, end};
    h->found++;
}

/* A segment of text between separators: its characters, the spaces and tabs
 * that lead it, and where it and its first other character start. */
typedef struct segment {
    int64_t chars, lead;
    size_t start, body;
    bool in_lead;
} segment_t;

static inline void segment_add(segment_t *g, unsigned k, size_t at)
{
    if (g->in_lead && (k & C_HSPACE)) {
        g->lead++;
    } else if (g->in_lead) {
        g->in_lead = false;
        g->body = at;
    }
    g->chars++;
}

static inline void segment_reset(segment_t *g, size_t next)
{
    *g = (segment_t){0, 0, next, next, true};
}

/* fragments: the pattern (?:[^,.!?\n]{1,C},[ \t]*){N-1,}[^,.!?\n]{1,C}.
 * Text is cut into segments at , . ! ? line breaks and invalid bytes. A run
 * starts with any non-empty segment ended by a comma (the pattern may start
 * inside it), goes on through segments that are at most C characters once
 * their leading spaces and tabs are dropped and that end with a comma, and
 * ends at the first segment that does not; it is a match when it has N
 * fragments, counting that last segment when it is not empty. */
typedef struct fragments {
    segment_t seg;
    size_t chain, chain_start, last_comma;
} fragments_t;

static inline void fragments_step(const shape_t *sh, fragments_t *f, unsigned k, size_t at,
                                  size_t next, hits_t *h)
{
    if (!(k & (C_COMMA | C_STOP | C_NL | C_BAD))) {
        segment_add(&f->seg, k, at);
        return;
    }
    const segment_t *g = &f->seg; /* [g->start, at), ended by k */
    bool comma = (k & C_COMMA) != 0;
    if (f->chain > 0 && g->chars >= 1 && comma && g->chars - g->lead <= sh->fragment_chars) {
        f->chain++;
    } else {
        if (f->chain > 0 && f->chain + (g->chars >= 1) >= (size_t)sh->fragments)
            hit(h, SHAPE_FRAGMENTS, f->chain_start, g->chars >= 1 ? at : f->last_comma);
        f->chain = 0;
        if (comma && g->chars >= 1)
            f->chain = 1, f->chain_start = g->in_lead ? g->start : g->body;
    }
    if (comma)
        f->last_comma = at;
    segment_reset(&f->seg, next);
}

/* sentences: the pattern (?:[^.!?\n]{1,C}[.!?][ \t]*){N,}. Segments end at
 * . ! ? (a sentence), a line break or an invalid byte (neither). A run starts
 * with any non-empty sentence (the pattern may start inside it) and goes on
 * through sentences of 1 to C characters once their leading spaces and tabs
 * are dropped; N sentences are a match. */
typedef struct sentences {
    segment_t seg;
    size_t chain, chain_start, chain_end;
} sentences_t;

static inline void sentences_step(const shape_t *sh, sentences_t *t, unsigned k, size_t at,
                                  size_t next, hits_t *h)
{
    if (!(k & (C_STOP | C_NL | C_BAD))) {
        segment_add(&t->seg, k, at);
        return;
    }
    const segment_t *g = &t->seg;
    bool stop = (k & C_STOP) != 0;
    if (t->chain > 0 && stop && g->chars >= 1 && g->chars - g->lead <= sh->sentence_chars) {
        t->chain++;
        t->chain_end = at + 1;
    } else {
        if (t->chain >= (size_t)sh->sentences)
            hit(h, SHAPE_SENTENCES, t->chain_start, t->chain_end);
        t->chain = 0;
        if (stop && g->chars >= 1)
            t->chain = 1, t->chain_start = g->in_lead ? g->start : g->body, t->chain_end = at + 1;
    }
    segment_reset(&t->seg, next);
}

/* lines: the pattern
 *   (?m)(?:^[ \t]*(?:[-*\x{2022}][ \t]*)?(?:[^\s.!?]+[ \t]+){0,W-1}[^\s.!?]+[ \t]*(?:\n|$)){N,}
 * A line (up to a \n) is short when, split at runs of spaces and tabs, it is
 * 1 to W words of characters that are neither white space nor . ! ? (nor
 * invalid bytes), or W + 1 such words the first of which is a lone bullet.
 * N short lines in a row are a match. */
typedef struct lines {
    size_t run, run_start, run_end, line_start, line_end;
    int64_t words, first_chars;
    bool bad, in_word, first_bullet;
} lines_t;

static inline void lines_step(const shape_t *sh, lines_t *l, unsigned k, size_t next, hits_t *h)
{
    if (!(k & C_NL)) {
        if (k & C_HSPACE) {
            l->in_word = false;
        } else if (k & (C_SPACE | C_STOP | C_BAD)) {
            l->bad = true;
        } else {
            if (!l->in_word)
                l->words++, l->in_word = true;
            if (l->words == 1) {
                l->first_chars++;
                l->first_bullet = (k & C_BULLET) != 0;
            }
            l->line_end = next;
        }
        return;
    }
    bool short_line = !l->bad && l->words >= 1 &&
                      (l->words <= sh->line_words ||
                       (l->words == sh->line_words + 1 && l->first_chars == 1 && l->first_bullet));
    if (short_line) {
        if (l->run++ == 0)
            l->run_start = l->line_start;
        l->run_end = l->line_end;
    } else {
        if (l->run >= (size_t)sh->lines)
            hit(h, SHAPE_LINES, l->run_start, l->run_end);
        l->run = 0;
    }
    l->line_start = l->line_end = next;
    l->words = l->first_chars = 0;
    l->bad = l->in_word = l->first_bullet = false;
}

static void lines_finish(const shape_t *sh, const lines_t *l, hits_t *h)
{
    if (l->run >= (size_t)sh->lines)
        hit(h, SHAPE_LINES, l->run_start, l->run_end);
}

/* run: the pattern [^.!?\n]{C,}: C characters in a row with no . ! ?, line
 * break or invalid byte. */
typedef struct run {
    int64_t chars;
    size_t start;
} run_t;

static inline void run_step(const shape_t *sh, run_t *r, unsigned k, size_t at, hits_t *h)
{
    if (!(k & (C_STOP | C_NL | C_BAD))) {
        if (r->chars++ == 0)
            r->start = at;
        return;
    }
    if (r->chars >= sh->run_chars)
        hit(h, SHAPE_RUN, r->start, at);
    r->chars = 0;
}

/* answer: the pattern \A[^.!?]{C,}\z: the whole text, at least C characters,
 * with no . ! ? and no invalid byte (the line break standing for the end is
 * not counted). */
typedef struct answer {
    int64_t chars;
    bool broken;
} answer_t;

static inline void answer_step(answer_t *a, unsigned k)
{
    a->broken |= (k & (C_STOP | C_BAD)) != 0;
    a->chars++;
}

static void answer_finish(const shape_t *sh, const answer_t *a, size_t len, hits_t *h)
{
    if (!a->broken && a->chars - 1 >= sh->answer_chars)
        hit(h, SHAPE_ANSWER, 0, len);
}

/* clang-format off */
/* content_words: the pattern
 *   (?:(?<![\p{L}\p{N}'])(?!STOP(?![\p{L}\p{N}']))[\p{L}\p{N}][\p{L}\p{N}'\x{2019}@#&/-]*[ \t]+){N-1,}[\p{L}\p{N}]
 * The text is cut into items at runs of spaces and tabs. A word after spaces
 * is a whole item: word characters only, starting with a letter or digit, not
 * a stop word, followed by a space or tab. The first word of a run may also be
 * the tail of an item (from a letter or digit not preceded by a letter, digit
 * or apostrophe: "(churn", "a/b"). N - 1 such words followed by an item that
 * starts with a letter or digit are a match. */
/* clang-format on */
typedef struct content_words {
    size_t chain, chain_start, match_end;
    bool matched;
    /* the item being read; prev 0: none (a space or tab, or the start) */
    unsigned prev;
    size_t item, first_end, tail_at;
    bool initial, all_word, tail;
} content_words_t;

/* The item that ended at end, followed by a space or tab when spaced. */
static void content_words_item(const shape_t *sh, content_words_t *w, size_t end, bool spaced,
                               hits_t *h)
{
    bool full = spaced && w->all_word && w->initial && w->tail && w->tail_at == w->item;
    bool first = spaced && w->tail;
    if (w->chain >= (size_t)sh->content_words - 1 && w->initial) {
        w->matched = true;
        w->match_end = full ? end : w->first_end;
    }
    if (w->chain > 0 && full) {
        w->chain++;
        return;
    }
    if (w->matched)
        hit(h, SHAPE_CONTENT_WORDS, w->chain_start, w->match_end);
    w->matched = false;
    w->chain = first ? 1 : 0;
    w->chain_start = w->tail_at;
}

static inline void content_words_step(const shape_t *sh, content_words_t *w, const unsigned char *s,
                                      size_t len, unsigned k, size_t at, size_t next, hits_t *h)
{
    if (k & C_HSPACE) {
        if (w->prev)
            content_words_item(sh, w, at, true, h);
        w->prev = 0;
        return;
    }
    if (!w->prev) { /* an item starts */
        w->item = at;
        w->first_end = next;
        w->initial = (k & C_LN) != 0;
        w->all_word = true;
        w->tail = false;
    }
    if ((k & C_LN) && !(w->prev & (C_LN | C_APOS)) && !w->tail && !stop_word_at(s, len, at))
        w->tail = true, w->tail_at = at;
    if (!(k & C_WORD))
        w->tail = false, w->all_word = false;
    w->prev = k | C_BAD; /* never 0 inside an item */
}

static void content_words_finish(const shape_t *sh, content_words_t *w, size_t len, hits_t *h)
{
    if (w->prev)
        content_words_item(sh, w, len, false, h);
    if (w->matched)
        hit(h, SHAPE_CONTENT_WORDS, w->chain_start, w->match_end);
}

/* ---- the shape ---- */

static const char *const TEST_NAMES[SHAPE_TESTS] = {"fragments", "sentences",     "lines",
                                                    "run",       "content_words", "answer"};

const char *shape_test_name(shape_test_t t)
{
    return t < SHAPE_TESTS ? TEST_NAMES[t] : "";
}

size_t shape_tests_on(const shape_t *sh)
{
    return (sh->fragments > 0) + (sh->sentences > 0) + (sh->lines > 0) + (sh->run_chars > 0) +
           (sh->content_words > 0) + (sh->answer_chars > 0);
}

static int hit_cmp(const void *a, const void *b)
{
    const shape_hit_t *x = a, *y = b;
    if (x->start != y->start)
        return x->start < y->start ? -1 : 1;
    return x->test < y->test ? -1 : x->test > y->test;
}

size_t shape_find(const shape_t *sh, const char *text, size_t len, shape_hit_t *out, size_t max)
{
    const unsigned char *s = (const unsigned char *)text;
    pthread_once(&stop_once, stop_table_build); /* for stop_word_at */
    if (max > SHAPE_HITS_MAX)
        max = SHAPE_HITS_MAX;
    shape_hit_t buf[SHAPE_TESTS * SHAPE_HITS_MAX];
    hits_t h[SHAPE_TESTS];
    for (int k = 0; k < SHAPE_TESTS; k++)
        h[k] = (hits_t){buf + k * max, 0, max, 0};
    fragments_t fr = {.seg = {0, 0, 0, 0, true}};
    sentences_t se = {.seg = {0, 0, 0, 0, true}};
    lines_t li = {0};
    run_t ru = {0};
    answer_t an = {0};
    content_words_t cw = {0};
    bool on_fr = sh->fragments > 0, on_se = sh->sentences > 0, on_li = sh->lines > 0;
    bool on_ru = sh->run_chars > 0, on_cw = sh->content_words > 0, on_an = sh->answer_chars > 0;
    for (size_t i = 0; i <= len;) {
        size_t at = i;
        unsigned k = C_NL; /* the end of the text */
        if (i < len)
            k = class_of(next_cp(s, len, &i));
        else
            i++;
        size_t next = i <= len ? i : len;
        if (on_fr)
            fragments_step(sh, &fr, k, at, next, &h[SHAPE_FRAGMENTS]);
        if (on_se)
            sentences_step(sh, &se, k, at, next, &h[SHAPE_SENTENCES]);
        if (on_li)
            lines_step(sh, &li, k, next, &h[SHAPE_LINES]);
        if (on_ru)
            run_step(sh, &ru, k, at, &h[SHAPE_RUN]);
        if (on_an)
            answer_step(&an, k);
        if (on_cw && at < len)
            content_words_step(sh, &cw, s, len, k, at, next, &h[SHAPE_CONTENT_WORDS]);
        if (k == (C_LN | C_WORD) && i < len) {
            /* The rest of a run of ASCII letters and digits, at once: after a
             * letter or digit, another one only lengthens the segments, the
             * runs, the answer and the first word of a line; no test starts,
             * ends or finds anything there. */
            size_t j = i;
            while (j < len && s[j] < 0x80 && ASCII_CLASS[s[j]] == (C_LN | C_WORD))
                j++;
            if (j > i) {
                int64_t m = (int64_t)(j - i);
                fr.seg.chars += m;
                se.seg.chars += m;
                if (li.words == 1) {
                    li.first_chars += m;
                    li.first_bullet = false;
                }
                li.line_end = j;
                ru.chars += m;
                an.chars += m;
                i = j;
            }
        }
    }
    if (on_li)
        lines_finish(sh, &li, &h[SHAPE_LINES]);
    if (on_an)
        answer_finish(sh, &an, len, &h[SHAPE_ANSWER]);
    if (on_cw)
        content_words_finish(sh, &cw, len, &h[SHAPE_CONTENT_WORDS]);
    size_t found = 0, n = 0;
    for (int k = 0; k < SHAPE_TESTS; k++) {
        memmove(buf + n, h[k].v, h[k].n * sizeof *buf);
        n += h[k].n;
        found += h[k].found;
    }
    qsort(buf, n, sizeof *buf, hit_cmp);
    if (n > max)
        n = max;
    memcpy(out, buf, n * sizeof *out);
    return found;
}
