/*
 * internal.h - the engine's private model, shared by the files of grading/.
 *
 * Nothing here is installed or used outside grading/. The pieces:
 *
 *   arena     bump allocator; a rubric and each grading call own one, so a
 *             compiled rubric is one allocation tree and a grade call frees
 *             everything at once.
 *   tree      a small msgpack-shaped value tree (nil/bool/int/str/array/map)
 *             built in an arena; map keys are kept sorted bytewise.
 *             It carries the canonical rubric and the result.
 *   dec       exact decimals (int64 mantissa, base-10 exponent).
 *   model     the compiled rubric: sections, items and their type specs.
 *   grading   per-call context and per-item results handed to aggregation.
 */
#ifndef SCORELINE_GRADING_INTERNAL_H
#define SCORELINE_GRADING_INTERNAL_H

#include "grading.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- limits (documented in RUBRIC.md "Limits") ---- */
#define GRADING_RUBRIC_MAX_BYTES (4u << 20) /* rubric JSON or msgpack */
#define GRADING_TEXT_MAX_BYTES (1u << 20)   /* one string response */
#define GRADING_ITEMS_MAX 1000              /* items in a rubric */
#define GRADING_LIST_MAX 1000               /* entries in a response array */
#define GRADING_PATTERN_MATCH_LIMIT 1000000 /* pattern items tried at one start position */
#define GRADING_PATTERN_DEPTH_LIMIT 1000    /* PCRE2 depth limit */
#define GRADING_RESPONSES_MAX 1000          /* entries in a responses map */

/* Rubric complexity, checked by limits_check (limits.c) before a rubric is
 * compiled; going past one is GRADING_ERR_LIMIT at the field's path. */
#define GRADING_SECTIONS_MAX 100
#define GRADING_ENTITIES_MAX 1000
#define GRADING_ALIASES_MAX 100         /* aliases of one entity */
#define GRADING_NAME_MAX_BYTES 256      /* entity name or alias, pick row name, synonym */
#define GRADING_SYNONYM_SETS_MAX 1000
#define GRADING_SYNONYM_WORDS_MAX 100   /* words in one set */
#define GRADING_BANDS_MAX 100
#define GRADING_RED_FLAGS_MAX 200
#define GRADING_EXPR_MAX_BYTES 4096     /* one red-flag expression */
#define GRADING_EXPR_PARENS_MAX 32      /* parentheses nesting in an expression */
#define GRADING_ELEMENTS_MAX 200        /* elements of a text or pick item */
#define GRADING_RULES_MAX 50            /* structure rules of a text or pick item */
#define GRADING_PHRASES_MAX 1000        /* phrases of one element or ordering step */
#define GRADING_RUBRIC_PHRASES_MAX 20000
#define GRADING_PHRASE_MAX_BYTES 512
#define GRADING_PATTERNS_MAX 50         /* patterns of one element */
#define GRADING_RUBRIC_PATTERNS_MAX 500
#define GRADING_PATTERN_MAX_BYTES 2048
#define GRADING_PATTERN_PARENS_MAX 32   /* pcre2_set_parens_nest_limit */
#define GRADING_OPTIONS_MAX 100         /* options of a choice item */
#define GRADING_LABEL_MAX_BYTES 1024    /* option and step text, table cell */
#define GRADING_STEPS_MAX 32            /* steps of an ordering item */
#define GRADING_CONSTRAINTS_MAX 64      /* constraints of an ordering item */
#define GRADING_QUANTITY_ANSWERS_MAX 50
#define GRADING_DATE_ANSWERS_MAX 32
#define GRADING_ROWS_MAX 200            /* rows of a pick table */
#define GRADING_COLUMNS_MAX 50          /* columns of a pick table */
#define GRADING_ROW_NAMES_MAX 20        /* names of one row */
#define GRADING_ENTITY_REFS_MAX 100     /* expect + forbid of an entity item */
#define GRADING_ANCHORS_MAX 100         /* anchors of a rating item */
/* Match work of a rubric: phrase words + GRADING_PATTERN_WORK per pattern +
 * entity name and pick row name words (limits.c). */
#define GRADING_PATTERN_WORK 100
#define GRADING_MATCH_WORK_MAX 200000

/* Grading work budget: matching steps one grading call may take (a phrase
 * tried at a word counts its words times its words plus its window, a name compared at a
 * word counts 1, a PCRE2 match call GRADING_PATTERN_CALL_STEPS plus
 * GRADING_PATTERN_BYTE_STEPS per byte of text it moved over plus one per
 * GRADING_PATTERN_CHECK_BYTES bytes from its start to the end of the text,
 * which PCRE2 checks as UTF-8 on every call). A step is roughly 10 ns of
 * matching. Past the budget the call fails with GRADING_ERR_LIMIT. */
#define GRADING_WORK_BUDGET 20000000u
#define GRADING_PATTERN_CALL_STEPS 100u
#define GRADING_PATTERN_BYTE_STEPS 16u
/* A pattern scans at most this many start positions per PCRE2 call, so the
 * budget is checked at least that often in a long text. */
#define GRADING_PATTERN_WINDOW 262144u
#define GRADING_PATTERN_CHECK_BYTES 8u
/* Backtracking: patterns are compiled with automatic callouts, so PCRE2 calls
 * back before every item it tries (the same calls, in the same order, in the
 * JIT and in the interpreter). Each costs GRADING_PATTERN_ITEM_STEPS, and the
 * match position moving between two of them, as well as the minimum of a
 * counted repeat the item may scan before it fails, one step per
 * GRADING_PATTERN_CHECK_BYTES bytes; past the budget the match stops there.
 * More than GRADING_PATTERN_MATCH_LIMIT items at one start position abandon
 * the pattern ("match limit exceeded"); PCRE2's own match limit is set
 * GRADING_PATTERN_NATIVE_LIMIT high so that it never decides first. */
#define GRADING_PATTERN_ITEM_STEPS 1u
#define GRADING_PATTERN_NATIVE_LIMIT (10u * GRADING_PATTERN_MATCH_LIMIT)

/* ---- arena ---- */
typedef struct arena_block arena_block_t;
struct arena_block {
    arena_block_t *next;
    size_t cap;
    _Alignas(16) unsigned char data[];
};
typedef struct arena {
    arena_block_t *head;
    unsigned char *cur, *end; /* the free bytes of the head block (none once oom) */
    size_t total;             /* bytes reserved from malloc */
    bool oom;                 /* an allocation failed; the owner reports GRADING_ERR_NOMEM */
} arena_t;

/* Zeroed, 16-byte aligned memory living until arena_free; NULL (and a->oom) on failure. */
void *arena_alloc(arena_t *a, size_t n);
/* The same, not zeroed: for memory the caller fills at once. Inline: the
 * result tree of one grading call is thousands of small allocations. */
void *arena_alloc_slow(arena_t *a, size_t n);
static inline void *arena_alloc_raw(arena_t *a, size_t n)
{
    size_t r = (n + 15) & ~(size_t)15;
    /* r - 1 < free: r is not 0 (n is not 0 and did not wrap) and fits */
    if (r - 1 < (size_t)(a->end - a->cur)) {
        void *p = a->cur;
        a->cur += r;
        return p;
    }
    return arena_alloc_slow(a, n);
}
/* s[0..n) to o, n <= 32, in loads and stores of fixed size (overlapping
 * when n is not one of them) rather than a byte at a time or a call. */
static inline void copy_short(void *o, const void *s, size_t n)
{
    unsigned char *d = o;
    const unsigned char *p = s;
    if (n >= 16) {
        __builtin_memcpy(d, p, 16);
        __builtin_memcpy(d + n - 16, p + n - 16, 16);
    } else if (n >= 8) {
        __builtin_memcpy(d, p, 8);
        __builtin_memcpy(d + n - 8, p + n - 8, 8);
    } else if (n >= 4) {
        __builtin_memcpy(d, p, 4);
        __builtin_memcpy(d + n - 4, p + n - 4, 4);
    } else if (n) {
        d[0] = p[0];
        d[n / 2] = p[n / 2];
        d[n - 1] = p[n - 1];
    }
}
/* Copy of s[0..n) with a terminating NUL. */
char *arena_strndup(arena_t *a, const char *s, size_t n);
char *arena_strdup(arena_t *a, const char *s);
char *arena_printf(arena_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void arena_free(arena_t *a);

/* ---- value tree ---- */
typedef enum tkind { T_NIL, T_BOOL, T_INT, T_STR, T_ARR, T_MAP } tkind_t;
typedef struct tnode tnode_t;
/* A map key: NUL-terminated, no NUL inside, with its length. */
typedef struct tkey {
    const char *s;
    size_t len;
} tkey_t;
struct tnode {
    tkind_t kind;
    int64_t i;      /* T_BOOL (0/1), T_INT */
    const char *s;  /* T_STR (may contain NUL; len is authoritative) */
    size_t len;     /* T_STR length */
    tnode_t **kids; /* T_ARR elements, T_MAP values */
    tkey_t *keys;   /* T_MAP keys, kept in bytewise order as they are added */
    size_t n, cap;
};

/* A scalar (nil, bool, int, str) is allocated without the container fields
 * (kids onwards), which are never read for one: half a container node. The
 * constructors are inline: a result holds a couple of thousand scalars. */
#define T_SCALAR_SIZE offsetof(tnode_t, kids)
static inline tnode_t *t_scalar(arena_t *a, tkind_t k, int64_t i, const char *s, size_t len)
{
    tnode_t *n = arena_alloc_raw(a, T_SCALAR_SIZE);
    if (n) {
        n->kind = k;
        n->i = i;
        n->s = s;
        n->len = len;
    }
    return n;
}
static inline tnode_t *t_nil(arena_t *a)
{
    return t_scalar(a, T_NIL, 0, NULL, 0);
}
static inline tnode_t *t_bool(arena_t *a, bool v)
{
    return t_scalar(a, T_BOOL, v, NULL, 0);
}
static inline tnode_t *t_int(arena_t *a, int64_t v)
{
    return t_scalar(a, T_INT, v, NULL, 0);
}
/* A copy of s[0..len) (NULL: ""). */
tnode_t *t_str(arena_t *a, const char *s, size_t len);
tnode_t *t_strz(arena_t *a, const char *s);
/* String node referring to s[0..len) (not copied): s must outlive the tree. */
static inline tnode_t *t_refn(arena_t *a, const char *s, size_t len)
{
    return t_scalar(a, T_STR, 0, s, len);
}
/* The same for a NUL-terminated s (NULL: ""); inline, so that the length of
 * a literal is known when the program is compiled. */
static inline tnode_t *t_ref(arena_t *a, const char *s)
{
    return s ? t_refn(a, s, __builtin_strlen(s)) : t_refn(a, "", 0);
}
tnode_t *t_arr(arena_t *a);
tnode_t *t_map(arena_t *a);
/* A map with room for cap keys before it grows. */
tnode_t *t_map_n(arena_t *a, size_t cap);
/* Append to an array. NULL nodes (failed allocations) are ignored; a->oom
 * tells. Inline when the array has room; t_push_slow grows it. */
void t_push_slow(arena_t *a, tnode_t *arr, tnode_t *v);
static inline void t_push(arena_t *a, tnode_t *arr, tnode_t *v)
{
    if (arr && v && arr->kind == T_ARR && arr->n < arr->cap)
        arr->kids[arr->n++] = v;
    else
        t_push_slow(a, arr, v);
}
/* Set key in a map (key copied). A key set twice keeps the last value. */
void t_set(arena_t *a, tnode_t *map, const char *key, tnode_t *v);
/* Add key[0..klen) (no NUL inside), known to be new; the key is not copied
 * (use literals). Inline: appending a key that sorts after the last one
 * (a different first byte) to a map with room is the common case; the rest
 * is t_put_slow's. */
void t_put_slow(arena_t *a, tnode_t *map, const char *key, size_t klen, tnode_t *v);
static inline void t_put_n(arena_t *a, tnode_t *map, const char *key, size_t klen, tnode_t *v)
{
    size_t n;
    if (map && v && map->kind == T_MAP && (n = map->n) < map->cap &&
        (n == 0 || (unsigned char)map->keys[n - 1].s[0] < (unsigned char)key[0])) {
        map->keys[n] = (tkey_t){key, klen};
        map->kids[n] = v;
        map->n = n + 1;
    } else {
        t_put_slow(a, map, key, klen, v);
    }
}
/* t_put_n for a NUL-terminated key; inline, so that the length of a literal
 * is known when the program is compiled. */
static inline void t_put(arena_t *a, tnode_t *map, const char *key, tnode_t *v)
{
    t_put_n(a, map, key, __builtin_strlen(key), v);
}
tnode_t *t_get(const tnode_t *map, const char *key);

/* A growing byte buffer (malloc'd; data may be handed to a caller to free).
 * The tbuf_pack_* writers produce msgpack-c's smallest encodings. A failed
 * allocation sets oom and turns later writes into no-ops. */
typedef struct tbuf {
    uint8_t *data;
    size_t len, cap;
    bool oom;
} tbuf_t;
bool tbuf_reserve(tbuf_t *b, size_t n);
void tbuf_write(tbuf_t *b, const void *p, size_t n);
void tbuf_free(tbuf_t *b);
void tbuf_pack_array(tbuf_t *b, size_t n);
void tbuf_pack_map(tbuf_t *b, size_t n);
void tbuf_pack_str(tbuf_t *b, const char *s, size_t n);
void tbuf_pack_int(tbuf_t *b, int64_t v);
/* Pack (map keys are in bytewise order). Returns false on allocation failure. */
bool t_pack(const tnode_t *n, tbuf_t *b);

/* ---- SHA-256 (sha256.c) ---- */
/* OpenSSL's libcrypto, which uses the CPU's SHA extensions where there are
 * some. A context is made per use. */
typedef struct sha256 sha256_t;
sha256_t *sha256_begin(void);
void sha256_update(sha256_t *h, const void *p, size_t n);
/* Finish, write 64 lowercase hex digits and a NUL to hex, free h. False on
 * failure (h freed all the same). */
bool sha256_end(sha256_t *h, char hex[65]);
/* SHA-256 of p[0..n) in hex. */
bool sha256_hex(const void *p, size_t n, char hex[65]);

/* ---- exact decimals ---- */
/* value = m * 10^e, normalised: m has no trailing zero digits, m == 0 => e == 0,
 * |m| < 10^18. */
typedef struct dec {
    int64_t m;
    int32_t e;
} dec_t;

#define DEC_MAX_DIGITS 18
#define DEC_MAX_EXP 40

/* Parse [+-]digits[.digits][e[+-]digits] exactly; false if malformed or out of range. */
bool dec_parse(const char *s, size_t len, dec_t *out);
/* Plain notation without exponent ("8.3", "-0.05", "450000"); returns strlen. buf >= 64. */
size_t dec_format(dec_t d, char *buf, size_t cap);
/* The %.15g rule: a binary double becomes the decimal its 15-significant-digit
 * rendering spells, independent of the C locale. */
bool dec_from_double(double v, dec_t *out);
dec_t dec_from_int(int64_t v);
int dec_cmp(dec_t a, dec_t b);
int dec_sign(dec_t a);
dec_t dec_abs(dec_t a);
dec_t dec_neg(dec_t a);
bool dec_add(dec_t a, dec_t b, dec_t *out);
bool dec_sub(dec_t a, dec_t b, dec_t *out);
bool dec_mul(dec_t a, dec_t b, dec_t *out);
/* Multiply by 10^k. */
dec_t dec_shift(dec_t a, int k);
/* Round half away from zero to `places` decimal places (may be negative). */
bool dec_round_places(dec_t a, int places, dec_t *out);
/* Round half away from zero to `sig` significant digits. */
bool dec_round_sig(dec_t a, int sig, dec_t *out);
/* Number of decimal places needed to write a (0 for integers). */
int dec_places(dec_t a);
/* a * 10^scale as an int64 when that is an integer; false otherwise. */
bool dec_to_scaled(dec_t a, int scale, int64_t *out);

/* ---- fixed point ---- */
/* The engine's single rounding rule: num/den rounded half up (den > 0, num >= 0).
 * Negative numerators round half away from zero, symmetrically. */
int64_t fx_div_round(__int128 num, __int128 den);

/* ---- errors ---- */
void err_set(grading_error_t *err, grading_err_t code, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void err_clear(grading_error_t *err);

/* ---- text normalisation (textnorm.c) ---- */
/* One word of candidate or rubric text: normalised form, its Snowball stem and
 * its byte span in the original text. */
typedef struct token {
    const char *norm; /* NFKC + case fold, NUL-terminated */
    const char *stem; /* Snowball English stem of norm */
    uint32_t norm_len, stem_len;
    uint32_t start, end; /* byte offsets into the original text */
    uint32_t sentence;   /* sentence index (split on . ! ? and newlines) */
    uint32_t clause;     /* clause index (also split on , ; : and "but") */
    uint32_t line;       /* line index */
    uint16_t flags;      /* TOK_* */
} token_t;

#define TOK_NUMBER 0x01 /* starts with a digit */
#define TOK_NEGATOR 0x02
#define TOK_HEDGE 0x04
#define TOK_PARA_START 0x08 /* first token of a paragraph */

typedef struct tokens {
    token_t *v;
    size_t n;
    uint32_t paragraphs;
    uint32_t sentences;
    /* The rubric phrase words each token can match (lexicon_match_tokens):
     * match[match_at[i] .. match_at[i + 1]) for token i, each entry
     * word << 8 | typo, typo 0 for an exact match (stem, normalised form or
     * synonym) and otherwise the largest typo_min_length that admits it as a
     * misspelling. NULL until computed. */
    uint32_t *match_at;
    uint32_t *match;
    const struct lexicon *match_lx; /* the lexicon the lists refer to */
} tokens_t;

typedef struct stemmer_box stemmer_box_t;
/* A Snowball English stemmer, owned by one thread at a time. */
stemmer_box_t *stemmer_box_new(void);
void stemmer_box_free(stemmer_box_t *s);

/* Stems of the rubric's own words, computed at load time and then only read
 * (threads share it): a box given one looks words up there first. */
typedef struct stem_table stem_table_t;
stem_table_t *stem_table_new(void);
/* Add the words of text, stemmed with st. */
bool stem_table_add_text(stem_table_t *t, stemmer_box_t *st, const char *text, size_t len);
void stem_table_free(stem_table_t *t);
size_t stem_table_memory(const stem_table_t *t);
/* Let st look words up in known (which must outlive the stems it hands out). */
void stemmer_box_use(stemmer_box_t *st, const stem_table_t *known);

/* Split text into words, each normalised and stemmed, keeping original spans.
 * Invalid UTF-8 bytes separate words. Allocates in a. */
bool text_tokenize(arena_t *a, stemmer_box_t *st, const char *text, size_t len, tokens_t *out);
/* The span is denied in its clause ("not Apex Corp", "July 15 is wrong"). */
bool text_span_negated(const tokens_t *tk, size_t start, size_t end);
/* NFKC + case fold + whitespace folded, for short labels (names, option texts). */
char *text_fold(arena_t *a, const char *s, size_t len);
/* Damerau-Levenshtein distance is at most 1. */
bool text_within_one_edit(const char *a, size_t alen, const char *b, size_t blen);

/* ---- phrase lexicon (lexicon.c): an item's phrase words, indexed ---- */
typedef struct lexicon lexicon_t;
/* Load time. *lxp is created on first use. Word id of a phrase word (norm,
 * stem, synonym set), added when new; -1 when out of memory. */
int32_t lexicon_intern(lexicon_t **lxp, const char *norm, uint32_t norm_len, const char *stem,
                       uint32_t stem_len, int32_t syn);
/* Phrases of the lexicon are matched with typos from typo_min letters. */
bool lexicon_typo_min(lexicon_t **lxp, int64_t typo_min);
/* Index the interned words once the rubric is compiled (synonyms included). */
bool lexicon_finish(lexicon_t *lx, const grading_rubric_t *r);
void lexicon_free(lexicon_t *lx);
size_t lexicon_memory(const lexicon_t *lx);
/* Fill tk->match_at / tk->match for every token (allocated in a); lx may be
 * NULL (an item without phrases: every list is empty). */
bool lexicon_match_tokens(const lexicon_t *lx, arena_t *a, tokens_t *tk);

/* ---- text shapes (shape.c): is a written answer a keyword list? ---- */
/* The parameters of a "keyword_list" shape (RUBRIC.md); a count or length of
 * 0 turns its test off. */
typedef struct shape {
    int64_t fragments, fragment_chars; /* comma-separated fragments in a row */
    int64_t sentences, sentence_chars; /* very short sentences in a row */
    int64_t lines, line_words;         /* short lines in a row */
    int64_t run_chars;                 /* characters without a sentence end */
    int64_t content_words;             /* words in a row without a stop word */
    int64_t answer_chars;              /* a whole answer without a sentence end */
} shape_t;

typedef enum shape_test {
    SHAPE_FRAGMENTS,
    SHAPE_SENTENCES,
    SHAPE_LINES,
    SHAPE_RUN,
    SHAPE_CONTENT_WORDS,
    SHAPE_ANSWER,
    SHAPE_TESTS
} shape_test_t;

/* One run found: the test and its byte span in the text. */
typedef struct shape_hit {
    shape_test_t test;
    size_t start, end;
} shape_hit_t;

#define SHAPE_HITS_MAX 8 /* runs shape_find hands back at most */
/* Grading work of a shape: GRADING_SHAPE_CALL_STEPS, plus one step per byte
 * of text for each test that is on. */
#define GRADING_SHAPE_CALL_STEPS 100u

/* Every run of text[0..len) that one of the shape's tests finds: the first
 * min(max, SHAPE_HITS_MAX) by start offset go to out; returns how many runs
 * there are. One pass over the text for all the tests. */
size_t shape_find(const shape_t *sh, const char *text, size_t len, shape_hit_t *out, size_t max);
/* The tests that are on. */
size_t shape_tests_on(const shape_t *sh);
/* "fragments", "sentences", "lines", "run", "content_words", "answer". */
const char *shape_test_name(shape_test_t t);

/* ---- compiled rubric model ---- */
typedef enum item_type {
    IT_CHOICE,
    IT_QUANTITY,
    IT_TEXT,
    IT_DATE,
    IT_ENTITY,
    IT_ORDERING,
    IT_PICK,
    IT_RATING,
    IT_COUNT
} item_type_t;

const char *item_type_name(item_type_t t);

typedef struct section {
    const char *id;
    const char *title;
    int64_t weight_milli;
} section_t;

typedef struct band {
    const char *id;
    int64_t min_bp; /* minimum total percent, basis points */
    const char *decision;
} band_t;

typedef struct expr expr_t;

typedef struct red_flag {
    const char *id;
    const char *reason;
    const char *effect; /* "disqualify" | "review" */
    const char *when;
    expr_t *expr;
} red_flag_t;

typedef struct item item_t;

/* Named things inside an item that red flags can refer to (text elements,
 * choice options, ordering constraints ...). */
typedef struct element_ref {
    const char *id;
} element_ref_t;

struct item {
    const char *id;
    const char *title;
    const char *prompt;
    item_type_t type;
    size_t section; /* index into rubric sections */
    int64_t points_milli;
    int64_t weight_milli;
    element_ref_t *elements;
    size_t n_elements;
    void *spec;         /* type-specific compiled spec */
    lexicon_t *lexicon; /* the words of the item's phrases (lexicon.c), or NULL */
};

typedef struct alias_group {
    const char *id;
    const char *canonical; /* display name */
    char **folded;         /* folded alias names */
    size_t n;
} alias_group_t;

typedef struct synonym_set {
    char **stems; /* stems of the words in the set */
    size_t n;
} synonym_set_t;

struct grading_rubric {
    arena_t arena;
    const char *id;
    const char *version;
    const char *title;
    section_t *sections;
    size_t n_sections;
    item_t *items;
    size_t n_items;
    band_t *bands;
    size_t n_bands;
    red_flag_t *flags;
    size_t n_flags;
    alias_group_t *aliases;
    size_t n_aliases;
    synonym_set_t *synonyms;
    size_t n_synonyms;
    uint8_t *canonical;
    size_t canonical_len;
    char hash[65];
    stem_table_t *known_stems; /* the stems of the rubric's own words */
    void *pcre_mctx;           /* pcre2_match_context_8 with limits; read-only once built */
    void **patterns;           /* compiled pcre2_code_8, freed with the rubric */
    size_t n_patterns, cap_patterns;
};

/* Register a compiled PCRE2 pattern so that destroy frees it. */
bool rubric_keep_pattern(grading_rubric_t *r, void *code);

const item_t *rubric_find_item(const grading_rubric_t *r, const char *id, size_t len);
/* Index of an element id within an item, or -1. */
int item_find_element(const item_t *it, const char *id, size_t len);
/* Synonym set index containing stem, or -1. */
int rubric_synonym_of(const grading_rubric_t *r, const char *stem, size_t len);

/* ---- loader helpers (loader.c) ---- */
typedef struct json_t json_t;
typedef struct loader {
    grading_rubric_t *r; /* model being compiled (allocations go to r->arena) */
    arena_t *ta;         /* scratch arena: canonical tree */
    grading_error_t *errs;
    size_t n_errs, max_errs, total_errs;
    void *stemmer;       /* stemmer_box_t, for stemming rubric phrases */
    lexicon_t **lexicon; /* the item being compiled: where its phrase words go */
} loader_t;

void ld_error(loader_t *L, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* ld_error with another code (limits.c: GRADING_ERR_LIMIT). */
void ld_verror(loader_t *L, grading_err_t code, const char *path, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
/* Child paths: "items[3]", "items[3].phrases". Result lives in L->ta. */
const char *ld_path_key(loader_t *L, const char *path, const char *key);
const char *ld_path_idx(loader_t *L, const char *path, size_t idx);
/* Report keys of obj that are not in allowed (NULL-terminated). */
void ld_check_keys(loader_t *L, json_t *obj, const char *path, const char *const *allowed);

/* Field readers: read obj[key], validate, write the canonical value (default made
 * explicit) into canon[key], and return the value (copied into the rubric arena).
 * A missing required field or a wrong type is reported with its path. */
const char *ld_str(loader_t *L, json_t *obj, tnode_t *canon, const char *path, const char *key,
                   const char *def, bool required);
/* An identifier: [A-Za-z0-9_-]{1,64}. */
const char *ld_ident(loader_t *L, json_t *obj, tnode_t *canon, const char *path, const char *key);
bool ld_bool(loader_t *L, json_t *obj, tnode_t *canon, const char *path, const char *key, bool def);
int64_t ld_int(loader_t *L, json_t *obj, tnode_t *canon, const char *path, const char *key,
               int64_t def, int64_t min, int64_t max);
/* Decimal written as a JSON string or number; canonical form is its plain
 * decimal string. def NULL = required. */
dec_t ld_dec(loader_t *L, json_t *obj, tnode_t *canon, const char *path, const char *key,
             const char *def);
/* Optional decimal: canonical nil when absent; *present says which. */
dec_t ld_dec_opt(loader_t *L, json_t *obj, tnode_t *canon, const char *path, const char *key,
                 bool *present);
/* A decimal with at most `scale` places, returned scaled (points -> milli). */
int64_t ld_scaled(loader_t *L, json_t *obj, tnode_t *canon, const char *path, const char *key,
                  const char *def, int scale, int64_t min, int64_t max);
const char *ld_enum(loader_t *L, json_t *obj, tnode_t *canon, const char *path, const char *key,
                    const char *const *choices, const char *def);
/* Array field; returns NULL (and reports) when required and absent or not an array. */
json_t *ld_array(loader_t *L, json_t *obj, const char *path, const char *key, bool required);
json_t *ld_object(loader_t *L, json_t *obj, const char *path, const char *key, bool required);
/* Array of strings (copied into the rubric arena); canonical is the same array. */
char **ld_strings(loader_t *L, json_t *obj, tnode_t *canon, const char *path, const char *key,
                  size_t *n, bool required);
/* Strict decimal from a JSON value (string, integer or real). */
bool ld_dec_value(json_t *v, dec_t *out);

/* ---- limits.c ---- */
/* Check the rubric's complexity limits on its JSON form, before it is
 * compiled; each limit passed is reported (GRADING_ERR_LIMIT) through L.
 * False when one was. */
bool limits_check(loader_t *L, json_t *root);
/* Deepest parentheses nesting of a PCRE2 pattern (escapes, \Q..\E and
 * character classes skipped). */
size_t limits_pattern_parens(const char *s, size_t len);

/* ---- canonical.c ---- */
json_t *mp_to_json(const msgpack_object *o, int depth, char *why, size_t whylen);
tnode_t *responses_normalize(arena_t *a, const msgpack_object *o, int depth);

/* ---- grading context and per-item results ---- */
typedef enum item_status { ST_SCORED, ST_UNANSWERED, ST_PENDING } item_status_t;

typedef struct grade_ctx {
    const grading_rubric_t *r;
    arena_t *a;
    stemmer_box_t *stemmer; /* created on first use */
    void *match_data;       /* pcre2_match_data_8, created on first use */
    void *match_ctx;        /* pcre2_match_context_8: the rubric's limits and a per-call
                               offset limit (text.c), created on first use */
    uint64_t steps;         /* matching work done so far (GRADING_WORK_BUDGET) */
    uint64_t jit_waste;     /* steps of JIT runs redone in the interpreter (text.c) */
    bool no_jit;            /* the interpreter only, for the rest of this grading */
    const char *budget_pattern; /* the pattern that was matching when the budget ran out */
} grade_ctx_t;

/* The call has used up its work budget: matchers stop, grade.c reports it. */
static inline bool ctx_over_budget(const grade_ctx_t *c)
{
    return c->steps > GRADING_WORK_BUDGET;
}

stemmer_box_t *ctx_stemmer(grade_ctx_t *c);

typedef struct item_result {
    item_status_t status;
    int64_t earned_milli; /* clamped to [0, points] */
    tnode_t *trace;       /* array of rule maps */
    tnode_t *detail;      /* map of item-specific figures (may stay empty) */
    bool *elem_matched;   /* per element_ref */
    int64_t *elem_points; /* per element_ref, milli-points */
    tnode_t **elem_evidence;
    bool disagreement; /* rating items */
    /* Rating items: the ratings given, their lowest and highest, and the
     * aggregate in thousandths (red flags' rating(), min_rating(),
     * max_rating()). With no ratings lo is the scale's top and hi its
     * bottom, so neither can fire a "low" or "high" test. */
    size_t n_ratings;
    int64_t rating_lo, rating_hi, rating_agg_milli;
} item_result_t;

/* A trace rule: {"rule": name, "matched": m, "points_milli": p, "detail": text}. */
tnode_t *trace_rule(grade_ctx_t *c, tnode_t *trace, const char *rule, bool matched,
                    int64_t points_milli, const char *detail);
/* Add an evidence span [start, end) of text to a rule map. The span is
 * referred to, not copied: text (the response, or a copy in the call's arena)
 * must outlive the result tree. */
void trace_evidence(grade_ctx_t *c, tnode_t *rule, const char *text, size_t start, size_t end);
/* A msgpack string (or NULL when obj is not a string). */
bool mp_str(const msgpack_object *o, const char **s, size_t *len);

/* Item type hooks. compile: validate obj (path) and fill it->spec/elements,
 * writing canonical fields into canon. grade: resp is NULL when unanswered. */
typedef struct item_ops {
    const char *name;
    const char *const *keys; /* type-specific keys allowed besides the common ones */
    void (*compile)(loader_t *L, item_t *it, json_t *obj, tnode_t *canon, const char *path);
    grading_err_t (*grade)(grade_ctx_t *c, const item_t *it, const msgpack_object *resp,
                           const char *path, item_result_t *out, grading_error_t *err);
} item_ops_t;

extern const item_ops_t choice_ops, quantity_ops, text_ops, date_ops, entity_ops, ordering_ops,
    pick_ops, rating_ops;
const item_ops_t *item_ops_for(item_type_t t);

/* Shared by items that score free text by elements (text, pick reasoning). */
typedef struct text_spec text_spec_t;
void text_compile_elements(loader_t *L, item_t *it, text_spec_t **out, json_t *obj, tnode_t *canon,
                           const char *path, size_t elem_base);
/* The same with "elements" optional (ordering items: written plans). */
void text_compile_optional_elements(loader_t *L, item_t *it, text_spec_t **out, json_t *obj,
                                    tnode_t *canon, const char *path, size_t elem_base);
grading_err_t text_score_elements(grade_ctx_t *c, const item_t *it, const text_spec_t *ts,
                                  const char *text, size_t len, const tokens_t *toks,
                                  const char *path, item_result_t *out, size_t elem_base,
                                  int64_t *earned, grading_error_t *err);

/* Phrase sets matched like text elements (text.c), for ordering steps and
 * pick rows. */
typedef struct phrase_set phrase_set_t;
phrase_set_t *text_phrases_compile(loader_t *L, char **src, size_t n, const char *path);
bool text_phrases_first(grade_ctx_t *c, const phrase_set_t *ps, const tokens_t *toks, size_t *start,
                        size_t *end);

/* A string response within the size limit; *s NULL when unanswered (text.c). */
grading_err_t text_response(const msgpack_object *resp, const char *path, const char **s,
                            size_t *len, grading_error_t *err);

/* Number recognition in free text (numbers.c). */
typedef enum qkind { QK_NONE, QK_NUMBER, QK_PERCENT, QK_CURRENCY, QK_COUNT } qkind_t;
typedef struct qnum {
    dec_t value;      /* scaled value: "$0.45M" -> 450000 */
    qkind_t kind;     /* from the written unit; QK_NUMBER when bare */
    char currency[4]; /* "USD", "EUR", "GBP" or "" */
    size_t start, end;
    bool negated; /* preceded in its clause by a negator ("not 10%") */
    bool hedged;
    /* The number's part in a contrast or correction with its neighbour
     * ("8.3% instead of 10%", "10% should be 8.3%"): a sentence for the
     * trace, or NULL. */
    const char *contrast;
} qnum_t;
/* All numbers in text, in order. decimal_comma: "8,3" may be 8.3. */
size_t numbers_find(arena_t *a, const char *text, size_t len, bool decimal_comma, qnum_t **out);
const char *qkind_name(qkind_t k);

/* Aggregation (aggregate.c). */
typedef struct aggregate {
    int64_t *section_bp, *section_points, *section_max;
    bool *section_pending, *section_counted;
    int64_t total_bp, total_points, total_max;
    bool pending;
    const band_t *band;
} aggregate_t;
int64_t item_percent_bp(const item_t *it, const item_result_t *ir);
bool aggregate_compute(grade_ctx_t *c, const item_result_t *res, aggregate_t *ag);

/* Red-flag expressions (redflag.c). */
expr_t *redflag_compile(loader_t *L, const char *src, const char *path);
/* Evaluate a flag over the graded state. Evidence entries (maps) are
 * appended to evidence; *pending is set when the outcome depends on an item
 * still waiting for human ratings. */
bool redflag_eval(grade_ctx_t *c, const expr_t *e, const item_result_t *items,
                  const aggregate_t *ag, tnode_t *evidence, bool *pending);

#endif
