/*
 * numbers.c - numbers as candidates write them, found inside free text.
 *
 * "8.3%", "8.33 %", "+8.3 percent", "0.083", "$450k", "450,000", "450 000",
 * "$0.45M", "8,3" (decimal comma where it cannot be a thousands separator),
 * "1.234,5" (European grouping). Each number keeps its byte span, its kind
 * (percent, currency or bare), its scaled exact value, and whether its clause
 * denies it ("should be 8.3%, not 10%": the 10% is negated).
 *
 * Contrasts and corrections between two numbers of one sentence, with at
 * most four words between them, are read as such (RUBRIC.md "quantity"):
 *   X not Y, X and not Y, X instead of Y, X rather than Y   X asserted, Y denied
 *   Y should be X (should/must/needs to/ought to be/read/say)  Y denied, X asserted
 * so the "not" or "instead" after X belongs to Y, not to X. A number
 * preceded by "instead of" or "rather than" is denied on its own too.
 *
 * Separator rules, in order (documented in RUBRIC.md "quantity"):
 *   one '.'                         decimal point               1.234 = 1.234
 *   ',' groups of 3, optional '.'   US grouping                 1,234.5
 *   '.' or space groups of 3, ','   European grouping           1.234,5
 *   space/NBSP groups of 3          grouping                    450 000
 *   one ',' not followed by 3       decimal comma               8,3 = 8.3
 *   anything else                   the leading digits only
 */
#include "internal.h"

#include <string.h>

const char *qkind_name(qkind_t k)
{
    switch (k) {
    case QK_PERCENT:
        return "percent";
    case QK_CURRENCY:
        return "currency";
    case QK_COUNT:
        return "count";
    case QK_NUMBER:
        return "number";
    default:
        return "none";
    }
}

static bool dig(const char *s, size_t len, size_t i)
{
    return i < len && s[i] >= '0' && s[i] <= '9';
}

static bool alpha(const char *s, size_t len, size_t i)
{
    return i < len && ((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z'));
}

/* Length of a grouping-space separator at s[i] (space, NBSP, thin and narrow
 * no-break spaces), 0 if none. */
static size_t space_sep(const char *s, size_t len, size_t i)
{
    if (i < len && s[i] == ' ')
        return 1;
    if (i + 1 < len && (unsigned char)s[i] == 0xc2 && (unsigned char)s[i + 1] == 0xa0)
        return 2;
    if (i + 2 < len && (unsigned char)s[i] == 0xe2 && (unsigned char)s[i + 1] == 0x80 &&
        ((unsigned char)s[i + 2] == 0x89 || (unsigned char)s[i + 2] == 0xaf))
        return 3;
    return 0;
}

/* Case-insensitive word match at s[i] followed by a non-letter. */
static size_t word_at(const char *s, size_t len, size_t i, const char *w)
{
    size_t n = strlen(w);
    if (i + n > len)
        return 0;
    for (size_t k = 0; k < n; k++) {
        char c = s[i + k];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c + 32);
        if (c != w[k])
            return 0;
    }
    if (alpha(s, len, i + n))
        return 0;
    return n;
}

typedef struct group {
    size_t start, ndig;
    char sep; /* separator before this group: 0, ',', '.', ' ' */
} group_t;

/* Read digits and separators at s[i]; fill the digit string and the decimal
 * point position. Returns bytes consumed (0 = no number). */
static size_t read_number(const char *s, size_t len, size_t i, bool decimal_comma, char *digits,
                          size_t *nd, int *frac)
{
    group_t g[32];
    size_t ng = 0, p = i;
    g[0].start = p;
    g[0].sep = 0;
    while (dig(s, len, p))
        p++;
    g[0].ndig = p - g[0].start;
    ng = 1;
    while (ng < 32) {
        char sep = 0;
        size_t sl = 0;
        if (p < len && (s[p] == ',' || s[p] == '.')) {
            sep = s[p];
            sl = 1;
        } else if ((sl = space_sep(s, len, p)) > 0) {
            sep = ' ';
        }
        if (!sep || !dig(s, len, p + sl))
            break;
        size_t q = p + sl;
        while (dig(s, len, q))
            q++;
        g[ng].start = p + sl;
        g[ng].ndig = q - (p + sl);
        g[ng].sep = sep;
        if (sep == ' ' && g[ng].ndig != 3)
            break; /* "in 2024 100 users": a space only groups threes */
        ng++;
        p = q;
    }
    /* decide which separator, if any, is the decimal point */
    int point = -1; /* index of the group that starts the fraction */
    size_t use = ng;
    char last = ng > 1 ? g[ng - 1].sep : 0;
    bool threes = true;
    for (size_t k = 1; k + 1 < ng; k++)
        if (g[k].ndig != 3)
            threes = false;
    if (ng == 1) {
        /* plain digits */
    } else if (ng == 2 && last == '.') {
        point = 1;
    } else if (last == '.' && threes) {
        bool grp_ok = true;
        for (size_t k = 1; k + 1 < ng; k++)
            if (g[k].sep != ',' && g[k].sep != ' ')
                grp_ok = false;
        if (grp_ok && g[0].ndig <= 3)
            point = (int)ng - 1;
        else if (grp_ok)
            use = 1;
        else {
            /* 1.234.567: European thousands */
            bool all_dots = true;
            for (size_t k = 1; k < ng; k++)
                if (g[k].sep != '.' || g[k].ndig != 3)
                    all_dots = false;
            if (!all_dots || g[0].ndig > 3)
                use = 1;
        }
    } else if (last == ',' && threes) {
        bool dots = false, commas = true;
        for (size_t k = 1; k + 1 < ng; k++) {
            if (g[k].sep == '.' || g[k].sep == ' ')
                dots = true;
            if (g[k].sep != ',')
                commas = false;
        }
        if (g[ng - 1].ndig == 3 && commas && g[0].ndig <= 3) {
            /* 450,000 and 1,234,567: thousands */
        } else if (dots && decimal_comma && g[0].ndig <= 3) {
            point = (int)ng - 1; /* 1.234,5 */
        } else if (ng == 2 && g[1].ndig != 3 && decimal_comma) {
            point = 1; /* 8,3 */
        } else {
            use = 1;
        }
    } else if (last == ' ' && threes && g[0].ndig <= 3) {
        bool spaces = true;
        for (size_t k = 1; k < ng; k++)
            if (g[k].sep != ' ')
                spaces = false;
        if (!spaces)
            use = 1;
    } else {
        use = 1;
    }
    size_t o = 0;
    *frac = 0;
    for (size_t k = 0; k < use; k++) {
        if ((int)k == point)
            *frac = (int)g[k].ndig;
        for (size_t d = 0; d < g[k].ndig && o < 40; d++)
            digits[o++] = s[g[k].start + d];
    }
    *nd = o;
    return g[use - 1].start + g[use - 1].ndig - i;
}

static bool is_negator_word(const token_t *t)
{
    return (t->flags & TOK_NEGATOR) != 0;
}

static bool is_wrongness(const token_t *t)
{
    static const char *const W[] = {"wrong",         "incorrect",  "mistake", "error",
                                    "miscalculated", "inaccurate", "typo",    NULL};
    for (size_t i = 0; W[i]; i++)
        if (t->norm_len == strlen(W[i]) && memcmp(t->norm, W[i], t->norm_len) == 0)
            return true;
    return (t->flags & TOK_NEGATOR) != 0;
}

static bool tok_is(const token_t *t, const char *w)
{
    size_t n = strlen(w);
    return t->norm_len == n && memcmp(t->norm, w, n) == 0;
}

/* "instead of" or "rather than" at tokens i, i + 1. */
static bool alternative_at(const tokens_t *tk, size_t i)
{
    if (i + 1 >= tk->n || tk->v[i].clause != tk->v[i + 1].clause)
        return false;
    return (tok_is(&tk->v[i], "instead") && tok_is(&tk->v[i + 1], "of")) ||
           (tok_is(&tk->v[i], "rather") && tok_is(&tk->v[i + 1], "than"));
}

typedef enum { LINK_NONE, LINK_CONTRAST, LINK_CORRECTION } link_t;

/* How the words tk[from, to) join the number before them to the number
 * after: a contrast ("not", "and not", "instead of", "rather than") or a
 * correction ("should be", "must read", "needs to be", "ought to say"). */
static link_t link_between(const tokens_t *tk, size_t from, size_t to)
{
    if (to <= from || to - from > 4 || to > tk->n)
        return LINK_NONE;
    for (size_t k = from; k < to; k++)
        if (tk->v[k].sentence != tk->v[from].sentence)
            return LINK_NONE;
    for (size_t k = from; k < to; k++)
        if ((tk->v[k].flags & TOK_NEGATOR) || (k + 1 < to && alternative_at(tk, k)))
            return LINK_CONTRAST;
    for (size_t k = from; k + 1 < to; k++) {
        const token_t *t = &tk->v[k];
        if (!tok_is(t, "should") && !tok_is(t, "must") && !tok_is(t, "needs") &&
            !tok_is(t, "need") && !tok_is(t, "ought"))
            continue;
        for (size_t q = k + 1; q < to; q++)
            if (tok_is(&tk->v[q], "be") || tok_is(&tk->v[q], "been") || tok_is(&tk->v[q], "read") ||
                tok_is(&tk->v[q], "say"))
                return LINK_CORRECTION;
    }
    return LINK_NONE;
}

/* All numbers in text, in order. */
size_t numbers_find(arena_t *a, const char *s, size_t len, bool decimal_comma, qnum_t **out)
{
    size_t cap = 8, n = 0;
    qnum_t *v = arena_alloc(a, cap * sizeof *v);
    *out = v;
    if (!v)
        return 0;
    tokens_t toks;
    if (!text_tokenize(a, NULL, s, len, &toks))
        return 0;
    size_t i = 0, tk = 0, prev_after = SIZE_MAX;
    bool prev_neg_before = false;
    while (i < len) {
        bool start_digit =
            dig(s, len, i) && !(i > 0 && (alpha(s, len, i - 1) || dig(s, len, i - 1)));
        bool start_point = s[i] == '.' && dig(s, len, i + 1) && !(i > 0 && dig(s, len, i - 1));
        if (!start_digit && !start_point) {
            i++;
            continue;
        }
        qnum_t q;
        memset(&q, 0, sizeof q);
        q.kind = QK_NUMBER;
        size_t st = i;
        /* prefix: [+-][currency] or [currency][+-] */
        size_t b = i;
        bool neg = false;
        for (int round = 0; round < 3 && b > 0; round++) {
            unsigned char c = (unsigned char)s[b - 1];
            if (c == '$') {
                q.kind = QK_CURRENCY;
                memcpy(q.currency, "USD", 4);
                b--;
            } else if (c == 0xa3 && b >= 2 && (unsigned char)s[b - 2] == 0xc2) {
                q.kind = QK_CURRENCY;
                memcpy(q.currency, "GBP", 4);
                b -= 2;
            } else if (c == 0xac && b >= 3 && (unsigned char)s[b - 2] == 0x82 &&
                       (unsigned char)s[b - 3] == 0xe2) {
                q.kind = QK_CURRENCY;
                memcpy(q.currency, "EUR", 4);
                b -= 3;
            } else if ((c == '+' || c == '-') && (b == 1 || !alpha(s, len, b - 2))) {
                if (b >= 2 && dig(s, len, b - 2))
                    break; /* "120-130" is a range, not a sign */
                neg = c == '-';
                b--;
            } else {
                break;
            }
        }
        st = b;
        char digits[48];
        size_t nd = 0;
        int frac = 0;
        size_t used;
        if (start_point) {
            size_t p = i + 1;
            while (dig(s, len, p) && nd < 40)
                digits[nd++] = s[p++];
            frac = (int)nd;
            used = p - i;
        } else {
            used = read_number(s, len, i, decimal_comma, digits, &nd, &frac);
        }
        size_t e = i + used;
        /* digit string -> exact decimal */
        size_t lead = 0;
        while (lead + 1 < nd - (size_t)frac && digits[lead] == '0')
            lead++;
        dec_t val;
        if (nd == 0 || !dec_parse(digits + lead, nd - lead, &val)) {
            i = e > i ? e : i + 1;
            continue;
        }
        val = dec_shift(val, -frac);
        /* suffix: scale words, percent, currency words */
        size_t p = e, sp = 0;
        while (p + sp < len && s[p + sp] == ' ')
            sp++;
        size_t w;
        int scale = 0;
        if (sp == 0 && p < len && (s[p] == 'k' || s[p] == 'K') && !alpha(s, len, p + 1)) {
            scale = 3;
            p += 1;
        } else if (sp == 0 && (w = word_at(s, len, p, "mm")) > 0) {
            scale = 6;
            p += w;
        } else if (sp == 0 && p < len && (s[p] == 'm' || s[p] == 'M') && !alpha(s, len, p + 1)) {
            scale = 6;
            p += 1;
        } else if (sp == 0 && (w = word_at(s, len, p, "bn")) > 0) {
            scale = 9;
            p += w;
        } else if (sp == 0 && p < len && (s[p] == 'b' || s[p] == 'B') && !alpha(s, len, p + 1) &&
                   q.kind == QK_CURRENCY) {
            scale = 9;
            p += 1;
        } else if ((w = word_at(s, len, p + sp, "thousand")) > 0) {
            scale = 3;
            p += sp + w;
        } else if ((w = word_at(s, len, p + sp, "million")) > 0) {
            scale = 6;
            p += sp + w;
        } else if ((w = word_at(s, len, p + sp, "billion")) > 0) {
            scale = 9;
            p += sp + w;
        }
        if (scale)
            val = dec_shift(val, scale);
        sp = 0;
        while (p + sp < len && s[p + sp] == ' ')
            sp++;
        if (p + sp < len && s[p + sp] == '%') {
            q.kind = QK_PERCENT;
            p += sp + 1;
        } else if ((w = word_at(s, len, p + sp, "percent")) > 0 ||
                   (w = word_at(s, len, p + sp, "pct")) > 0) {
            q.kind = QK_PERCENT;
            p += sp + w;
        } else if ((w = word_at(s, len, p + sp, "per cent")) > 0) {
            q.kind = QK_PERCENT;
            p += sp + w;
        } else if ((w = word_at(s, len, p + sp, "usd")) > 0 ||
                   (w = word_at(s, len, p + sp, "dollars")) > 0) {
            q.kind = QK_CURRENCY;
            memcpy(q.currency, "USD", 4);
            p += sp + w;
        } else if ((w = word_at(s, len, p + sp, "eur")) > 0 ||
                   (w = word_at(s, len, p + sp, "euros")) > 0) {
            q.kind = QK_CURRENCY;
            memcpy(q.currency, "EUR", 4);
            p += sp + w;
        } else if ((w = word_at(s, len, p + sp, "gbp")) > 0 ||
                   (w = word_at(s, len, p + sp, "pounds")) > 0) {
            q.kind = QK_CURRENCY;
            memcpy(q.currency, "GBP", 4);
            p += sp + w;
        }
        if (neg)
            val = dec_neg(val);
        q.value = val;
        q.start = st;
        q.end = p;
        /* negation: a negator up to 3 words before in the clause, or a
         * "wrong"/"not" word up to 4 words after */
        while (tk < toks.n && toks.v[tk].end <= i)
            tk++;
        bool neg_before = false, neg_after = false;
        size_t after = tk;
        if (tk < toks.n) {
            const token_t *t = &toks.v[tk];
            for (size_t k = 1; k <= 3 && k <= tk; k++) {
                const token_t *pt = &toks.v[tk - k];
                if (pt->clause != t->clause)
                    break;
                if (is_negator_word(pt))
                    neg_before = true;
            }
            if (tk >= 2 && toks.v[tk - 2].clause == t->clause && alternative_at(&toks, tk - 2))
                neg_before = true; /* "instead of 10%", "rather than 10%" */
            while (after < toks.n && toks.v[after].start < p)
                after++;
            for (size_t k = 0; k < 4 && after + k < toks.n; k++) {
                const token_t *nt = &toks.v[after + k];
                if (nt->clause != t->clause || (nt->flags & TOK_NUMBER))
                    break;
                if (is_wrongness(nt))
                    neg_after = true;
            }
        }
        /* A contrast or correction with the previous number ("8.3% not
         * 10%", "10% should be 8.3%") decides both. */
        if (n > 0 && tk < toks.n && prev_after <= tk) {
            link_t lk = link_between(&toks, prev_after, tk);
            qnum_t *pq = &v[n - 1];
            char pb[80];
            if (lk != LINK_NONE)
                dec_format(pq->value, pb, sizeof pb);
            if (lk == LINK_CONTRAST) {
                bool gap_wrong = false; /* "10% is wrong, not ..." stays denied */
                for (size_t k = prev_after; k < tk; k++)
                    gap_wrong |= is_wrongness(&toks.v[k]) && !is_negator_word(&toks.v[k]);
                pq->negated = prev_neg_before || gap_wrong;
                pq->contrast = arena_printf(a, "contrasted with the number after it; the "
                                               "denial belongs to that one");
                neg_before = true;
                q.contrast = arena_printf(a, "the alternative rejected in favour of %s", pb);
            } else if (lk == LINK_CORRECTION) {
                pq->negated = true;
                pq->contrast =
                    arena_printf(a, "the value being corrected (\"should be\" the next number)");
                if (!neg_before)
                    q.contrast = arena_printf(a, "the correction of %s", pb);
            }
        }
        q.negated = neg_before || neg_after;
        prev_neg_before = neg_before;
        prev_after = after;
        if (n == cap) {
            qnum_t *nv = arena_alloc(a, cap * 2 * sizeof *nv);
            if (!nv)
                return n;
            memcpy(nv, v, cap * sizeof *v);
            v = nv;
            cap *= 2;
            *out = v;
        }
        v[n++] = q;
        i = p > i ? p : i + 1;
    }
    return n;
}
