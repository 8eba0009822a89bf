/*
 * shape.c - the shape of a written answer: is it a keyword list?
 *
 * A candidate who pastes keywords instead of sentences ("onboarding, kickoff,
 * training, QBR, ...") would collect the phrase points of a text item without
 * writing anything. A `keyword_list` shape (an element's "shape" field, see
 * RUBRIC.md) recognises such an answer by its form, with six tests, each a
 * single left-to-right pass over the characters of the original text:
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
 * rubric used before (quoted at each test): it finds a run exactly when the
 * pattern finds a match, so a rubric moving from the patterns to the shape
 * keeps its scores. Characters are Unicode code points of valid UTF-8; a byte
 * that is not part of a valid sequence matches nothing (as PCRE2 treats it
 * with PCRE2_MATCH_INVALID_UTF), so it breaks every run.
 */
#include "internal.h"

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
        int32_t cp = next_cp(s, len, &i);
        if (!(class_of(cp) & (C_LN | C_APOS)))
            break;
        if (n == STOP_WORD_MAX)
            return false;
        if (cp < 0x80)
            w[n++] = (char)((cp >= 'A' && cp <= 'Z') ? cp + 32 : cp);
        else if (cp == 0x17f)
            w[n++] = 's';
        else if (cp == 0x212a)
            w[n++] = 'k';
        else
            return false;
    }
    if (n == 0)
        return false;
    for (const char *l = STOP_WORDS[n]; *l; l += n)
        if (l[0] == w[0] && memcmp(l, w, n) == 0)
            return true;
    return false;
}

/* ---- the tests ---- */

/* The text decoded once: the class of each character and its byte offset;
 * cls[n] is a line break standing for the end of the text, off[n] and
 * off[n + 1] are its length. */
typedef struct chars {
    const unsigned char *s;
    size_t len, n;
    uint16_t *cls;
    uint32_t *off;
} chars_t;

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

/* fragments: the pattern (?:[^,.!?\n]{1,C},[ \t]*){N-1,}[^,.!?\n]{1,C}.
 * Text is cut into segments at , . ! ? line breaks and invalid bytes. A run
 * starts with any non-empty segment ended by a comma (the pattern may start
 * inside it), goes on through segments that are at most C characters once
 * their leading spaces and tabs are dropped and that end with a comma, and
 * ends at the first segment that does not; it is a match when it has N
 * fragments, counting that last segment when it is not empty. */
static void test_fragments(const shape_t *sh, const chars_t *t, hits_t *h)
{
    size_t chain = 0, chain_start = 0, seg_start = 0, seg_body = 0, last_comma = 0;
    int64_t chars = 0, lead = 0;
    bool in_lead = true;
    for (size_t j = 0; j <= t->n; j++) {
        unsigned k = t->cls[j];
        size_t at = t->off[j];
        if (!(k & (C_COMMA | C_STOP | C_NL | C_BAD))) {
            if (in_lead && (k & C_HSPACE)) {
                lead++;
            } else if (in_lead) {
                in_lead = false;
                seg_body = at;
            }
            chars++;
            continue;
        }
        /* a segment [seg_start, at) ends with k */
        bool comma = (k & C_COMMA) != 0;
        if (chain > 0 && chars >= 1 && comma && chars - lead <= sh->fragment_chars) {
            chain++;
        } else {
            if (chain > 0 && chain + (chars >= 1) >= (size_t)sh->fragments)
                hit(h, SHAPE_FRAGMENTS, chain_start, chars >= 1 ? at : last_comma);
            chain = 0;
            if (comma && chars >= 1)
                chain = 1, chain_start = in_lead ? seg_start : seg_body;
        }
        if (comma)
            last_comma = at;
        seg_start = t->off[j + 1];
        chars = lead = 0;
        in_lead = true;
    }
}

/* sentences: the pattern (?:[^.!?\n]{1,C}[.!?][ \t]*){N,}. Segments end at
 * . ! ? (a sentence), a line break or an invalid byte (neither). A run starts
 * with any non-empty sentence (the pattern may start inside it) and goes on
 * through sentences of 1 to C characters once their leading spaces and tabs
 * are dropped; N sentences are a match. */
static void test_sentences(const shape_t *sh, const chars_t *t, hits_t *h)
{
    size_t chain = 0, chain_start = 0, chain_end = 0, seg_start = 0, seg_body = 0;
    int64_t chars = 0, lead = 0;
    bool in_lead = true;
    for (size_t j = 0; j <= t->n; j++) {
        unsigned k = t->cls[j];
        size_t at = t->off[j];
        if (!(k & (C_STOP | C_NL | C_BAD))) {
            if (in_lead && (k & C_HSPACE)) {
                lead++;
            } else if (in_lead) {
                in_lead = false;
                seg_body = at;
            }
            chars++;
            continue;
        }
        bool stop = (k & C_STOP) != 0;
        if (chain > 0 && stop && chars >= 1 && chars - lead <= sh->sentence_chars) {
            chain++;
            chain_end = at + 1;
        } else {
            if (chain >= (size_t)sh->sentences)
                hit(h, SHAPE_SENTENCES, chain_start, chain_end);
            chain = 0;
            if (stop && chars >= 1)
                chain = 1, chain_start = in_lead ? seg_start : seg_body, chain_end = at + 1;
        }
        seg_start = t->off[j + 1];
        chars = lead = 0;
        in_lead = true;
    }
}

/* lines: the pattern
 *   (?m)(?:^[ \t]*(?:[-*\x{2022}][ \t]*)?(?:[^\s.!?]+[ \t]+){0,W-1}[^\s.!?]+[ \t]*(?:\n|$)){N,}
 * A line (up to a \n) is short when, split at runs of spaces and tabs, it is
 * 1 to W words of characters that are neither white space nor . ! ? (nor
 * invalid bytes), or W + 1 such words the first of which is a lone bullet.
 * N short lines in a row are a match. */
static void test_lines(const shape_t *sh, const chars_t *t, hits_t *h)
{
    size_t run = 0, run_start = 0, run_end = 0, line_start = 0, line_end = 0;
    int64_t words = 0, first_chars = 0;
    bool ok = true, in_word = false, first_bullet = false;
    for (size_t j = 0; j <= t->n; j++) {
        unsigned k = t->cls[j];
        if (!(k & C_NL)) {
            if (k & C_HSPACE) {
                in_word = false;
            } else if (k & (C_SPACE | C_STOP | C_BAD)) {
                ok = false;
            } else {
                if (!in_word)
                    words++, in_word = true;
                if (words == 1) {
                    first_chars++;
                    first_bullet = (k & C_BULLET) != 0;
                }
                line_end = t->off[j + 1];
            }
            continue;
        }
        bool short_line = ok && words >= 1 &&
                          (words <= sh->line_words ||
                           (words == sh->line_words + 1 && first_chars == 1 && first_bullet));
        if (short_line) {
            if (run++ == 0)
                run_start = line_start;
            run_end = line_end;
        } else {
            if (run >= (size_t)sh->lines)
                hit(h, SHAPE_LINES, run_start, run_end);
            run = 0;
        }
        line_start = line_end = t->off[j + 1];
        words = first_chars = 0;
        ok = true;
        in_word = first_bullet = false;
    }
    if (run >= (size_t)sh->lines)
        hit(h, SHAPE_LINES, run_start, run_end);
}

/* run: the pattern [^.!?\n]{C,}: C characters in a row with no . ! ?, line
 * break or invalid byte. */
static void test_run(const shape_t *sh, const chars_t *t, hits_t *h)
{
    int64_t chars = 0;
    size_t start = 0;
    for (size_t j = 0; j <= t->n; j++) {
        if (!(t->cls[j] & (C_STOP | C_NL | C_BAD))) {
            if (chars++ == 0)
                start = t->off[j];
            continue;
        }
        if (chars >= sh->run_chars)
            hit(h, SHAPE_RUN, start, t->off[j]);
        chars = 0;
    }
}

/* answer: the pattern \A[^.!?]{C,}\z: the whole text, at least C characters,
 * with no . ! ? and no invalid byte. */
static void test_answer(const shape_t *sh, const chars_t *t, hits_t *h)
{
    for (size_t j = 0; j < t->n; j++)
        if (t->cls[j] & (C_STOP | C_BAD))
            return;
    if ((int64_t)t->n >= sh->answer_chars)
        hit(h, SHAPE_ANSWER, 0, t->len);
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
static void test_content_words(const shape_t *sh, const chars_t *t, hits_t *h)
{
    size_t need = (size_t)sh->content_words - 1;
    size_t chain = 0, chain_start = 0, match_end = 0;
    bool matched = false;
    size_t j = 0;
    while (j < t->n) {
        if (t->cls[j] & C_HSPACE) {
            j++;
            continue;
        }
        /* an item: characters j0 .. j - 1 */
        size_t j0 = j;
        bool initial = (t->cls[j0] & C_LN) != 0;
        bool all_word = true;
        bool tail = false; /* a valid first-word start since the last non-word character */
        size_t tail_at = 0;
        unsigned prev = 0; /* class of the previous character; 0: a space or the start */
        for (; j < t->n && !(t->cls[j] & C_HSPACE); j++) {
            unsigned k = t->cls[j];
            if ((k & C_LN) && !(prev & (C_LN | C_APOS)) && !tail &&
                !stop_word_at(t->s, t->len, t->off[j]))
                tail = true, tail_at = t->off[j];
            if (!(k & C_WORD))
                tail = false, all_word = false;
            prev = k;
        }
        size_t item = t->off[j0], end = t->off[j];
        bool spaced = j < t->n; /* followed by a space or tab */
        bool full = spaced && all_word && initial && tail && tail_at == item;
        bool first = spaced && tail;
        if (chain >= need && initial) {
            matched = true;
            match_end = full ? end : t->off[j0 + 1];
        }
        if (chain > 0 && full) {
            chain++;
            continue;
        }
        if (matched)
            hit(h, SHAPE_CONTENT_WORDS, chain_start, match_end);
        matched = false;
        chain = first ? 1 : 0;
        chain_start = tail_at;
    }
    if (matched)
        hit(h, SHAPE_CONTENT_WORDS, chain_start, match_end);
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

size_t shape_find(arena_t *a, const shape_t *sh, const char *text, size_t len, shape_hit_t *out,
                  size_t max)
{
    const unsigned char *s = (const unsigned char *)text;
    chars_t t = {s, len, 0, arena_alloc_raw(a, (len + 1) * sizeof *t.cls),
                 arena_alloc_raw(a, (len + 2) * sizeof *t.off)};
    if (!t.cls || !t.off)
        return 0;
    for (size_t i = 0; i < len;) {
        t.off[t.n] = (uint32_t)i;
        t.cls[t.n++] = (uint16_t)class_of(next_cp(s, len, &i));
    }
    t.cls[t.n] = C_NL;
    t.off[t.n] = t.off[t.n + 1] = (uint32_t)len;
    shape_hit_t buf[SHAPE_TESTS * SHAPE_HITS_MAX];
    if (max > SHAPE_HITS_MAX)
        max = SHAPE_HITS_MAX;
    size_t found = 0, n = 0;
    for (int k = 0; k < SHAPE_TESTS; k++) {
        hits_t h = {buf + n, 0, max, 0};
        switch ((shape_test_t)k) {
        case SHAPE_FRAGMENTS:
            if (sh->fragments > 0)
                test_fragments(sh, &t, &h);
            break;
        case SHAPE_SENTENCES:
            if (sh->sentences > 0)
                test_sentences(sh, &t, &h);
            break;
        case SHAPE_LINES:
            if (sh->lines > 0)
                test_lines(sh, &t, &h);
            break;
        case SHAPE_RUN:
            if (sh->run_chars > 0)
                test_run(sh, &t, &h);
            break;
        case SHAPE_CONTENT_WORDS:
            if (sh->content_words > 0)
                test_content_words(sh, &t, &h);
            break;
        case SHAPE_ANSWER:
            if (sh->answer_chars > 0)
                test_answer(sh, &t, &h);
            break;
        default:
            break;
        }
        n += h.n;
        found += h.found;
    }
    qsort(buf, n, sizeof *buf, hit_cmp);
    if (n > max)
        n = max;
    memcpy(out, buf, n * sizeof *out);
    return found;
}
