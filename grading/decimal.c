/*
 * decimal.c - exact decimal numbers for rubric values and candidate answers.
 *
 * A value is m * 10^e with an int64 mantissa of at most 18 significant digits.
 * Arithmetic runs in __int128 and fails (returns false) rather than losing a
 * digit, so "8.3" is exactly 83e-1 and tolerance checks never meet binary
 * floating point. Doubles enter only through dec_from_double (the %.15g rule).
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>

static const int64_t POW10[19] = {1LL,
                                  10LL,
                                  100LL,
                                  1000LL,
                                  10000LL,
                                  100000LL,
                                  1000000LL,
                                  10000000LL,
                                  100000000LL,
                                  1000000000LL,
                                  10000000000LL,
                                  100000000000LL,
                                  1000000000000LL,
                                  10000000000000LL,
                                  100000000000000LL,
                                  1000000000000000LL,
                                  10000000000000000LL,
                                  100000000000000000LL,
                                  1000000000000000000LL};

#define DEC_RANGE_EXP (DEC_MAX_EXP + 24) /* exponents reachable by arithmetic */

static __int128 pow10_128(int k)
{
    __int128 p = 1;
    while (k-- > 0)
        p *= 10;
    return p;
}

static int ndigits(__int128 v)
{
    if (v < 0)
        v = -v;
    int n = 1;
    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

/* Normalise m*10^e into a dec_t; false when it needs more than 18 digits. */
static bool dec_make(__int128 m, int32_t e, dec_t *out)
{
    if (m == 0) {
        out->m = 0;
        out->e = 0;
        return true;
    }
    while (m % 10 == 0) {
        m /= 10;
        e++;
    }
    __int128 lim = POW10[18];
    if (m >= lim || m <= -lim || e > DEC_RANGE_EXP || e < -DEC_RANGE_EXP)
        return false;
    out->m = (int64_t)m;
    out->e = e;
    return true;
}

/* Parse [+-]digits[.digits][e[+-]digits] exactly. */
bool dec_parse(const char *s, size_t len, dec_t *out)
{
    size_t i = 0;
    bool neg = false;
    if (i < len && (s[i] == '+' || s[i] == '-'))
        neg = s[i++] == '-';
    int64_t m = 0;
    int32_t e = 0;
    int nd = 0, pend = 0, digits = 0;
    bool point = false;
    for (; i < len; i++) {
        char ch = s[i];
        if (ch == '.' && !point) {
            point = true;
            continue;
        }
        if (ch < '0' || ch > '9')
            break;
        digits++;
        if (point)
            e--;
        if (ch == '0') {
            if (m != 0)
                pend++;
            continue;
        }
        if (nd + pend + 1 > DEC_MAX_DIGITS)
            return false;
        m = m * POW10[pend + 1] + (ch - '0');
        nd += pend + 1;
        pend = 0;
    }
    if (digits == 0)
        return false;
    e += pend;
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        bool eneg = false;
        if (i < len && (s[i] == '+' || s[i] == '-'))
            eneg = s[i++] == '-';
        int x = 0, xd = 0;
        for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
            if (++xd > 3)
                return false;
            x = x * 10 + (s[i] - '0');
        }
        if (xd == 0)
            return false;
        e += eneg ? -x : x;
    }
    if (i != len)
        return false;
    dec_t d;
    if (!dec_make(neg ? -(__int128)m : m, e, &d))
        return false;
    if (d.m != 0 && (d.e + ndigits(d.m) > DEC_MAX_EXP || d.e < -DEC_MAX_EXP))
        return false;
    *out = d;
    return true;
}

/* Plain notation without exponent; returns strlen. */
size_t dec_format(dec_t d, char *buf, size_t cap)
{
    char digits[24];
    int64_t am = d.m < 0 ? -d.m : d.m;
    int nd = snprintf(digits, sizeof digits, "%lld", (long long)am);
    size_t o = 0;
#define PUT(c)                                                                                     \
    do {                                                                                           \
        if (o + 1 < cap)                                                                           \
            buf[o] = (c);                                                                          \
        o++;                                                                                       \
    } while (0)
    if (d.m < 0)
        PUT('-');
    if (d.e >= 0) {
        for (int i = 0; i < nd; i++)
            PUT(digits[i]);
        if (d.m != 0)
            for (int i = 0; i < d.e; i++)
                PUT('0');
    } else {
        int frac = -d.e;
        if (nd <= frac) {
            PUT('0');
            PUT('.');
            for (int i = 0; i < frac - nd; i++)
                PUT('0');
            for (int i = 0; i < nd; i++)
                PUT(digits[i]);
        } else {
            for (int i = 0; i < nd - frac; i++)
                PUT(digits[i]);
            PUT('.');
            for (int i = nd - frac; i < nd; i++)
                PUT(digits[i]);
        }
    }
#undef PUT
    if (cap)
        buf[o < cap ? o : cap - 1] = '\0';
    return o;
}

/* The %.15g rule, independent of LC_NUMERIC: whatever the C library writes
 * between the digits (a '.' or a locale's decimal separator) is read as the
 * decimal point. */
bool dec_from_double(double v, dec_t *out)
{
    if (v != v || v > 1e300 || v < -1e300)
        return false;
    char raw[64], clean[64];
    int n = snprintf(raw, sizeof raw, "%.15g", v);
    if (n <= 0 || (size_t)n >= sizeof raw)
        return false;
    size_t o = 0;
    bool sep = false;
    for (int i = 0; i < n; i++) {
        char ch = raw[i];
        if ((ch >= '0' && ch <= '9') || ch == '-' || ch == '+' || ch == 'e' || ch == 'E') {
            clean[o++] = ch;
            sep = false;
        } else if (!sep) {
            clean[o++] = '.';
            sep = true;
        }
    }
    return dec_parse(clean, o, out);
}

dec_t dec_from_int(int64_t v)
{
    dec_t d = {0, 0};
    if (!dec_make(v, 0, &d)) {
        /* |v| >= 10^18 with 19 significant digits: keep the top 18 (exact for
         * the integers rubrics and responses use). */
        dec_make(v / 10, 1, &d);
    }
    return d;
}

int dec_sign(dec_t a)
{
    return (a.m > 0) - (a.m < 0);
}

dec_t dec_abs(dec_t a)
{
    if (a.m < 0)
        a.m = -a.m;
    return a;
}

dec_t dec_neg(dec_t a)
{
    a.m = -a.m;
    return a;
}

int dec_cmp(dec_t a, dec_t b)
{
    int sa = dec_sign(a), sb = dec_sign(b);
    if (sa != sb)
        return sa < sb ? -1 : 1;
    if (sa == 0)
        return 0;
    __int128 ma = a.m < 0 ? -(__int128)a.m : a.m;
    __int128 mb = b.m < 0 ? -(__int128)b.m : b.m;
    int maga = ndigits(ma) + a.e, magb = ndigits(mb) + b.e;
    int c;
    if (maga != magb) {
        c = maga < magb ? -1 : 1;
    } else {
        int lo = a.e < b.e ? a.e : b.e;
        ma *= pow10_128(a.e - lo);
        mb *= pow10_128(b.e - lo);
        c = (ma > mb) - (ma < mb);
    }
    return sa > 0 ? c : -c;
}

bool dec_add(dec_t a, dec_t b, dec_t *out)
{
    if (a.m == 0) {
        *out = b;
        return true;
    }
    if (b.m == 0) {
        *out = a;
        return true;
    }
    int lo = a.e < b.e ? a.e : b.e;
    int da = a.e - lo, db = b.e - lo;
    if (da > 19 || db > 19)
        return false;
    __int128 s = (__int128)a.m * pow10_128(da) + (__int128)b.m * pow10_128(db);
    return dec_make(s, lo, out);
}

bool dec_sub(dec_t a, dec_t b, dec_t *out)
{
    return dec_add(a, dec_neg(b), out);
}

bool dec_mul(dec_t a, dec_t b, dec_t *out)
{
    return dec_make((__int128)a.m * b.m, a.e + b.e, out);
}

dec_t dec_shift(dec_t a, int k)
{
    if (a.m != 0)
        a.e += k;
    return a;
}

static bool round_drop(dec_t a, int k, dec_t *out)
{
    if (k <= 0) {
        *out = a;
        return true;
    }
    if (k > 18) {
        out->m = 0;
        out->e = 0;
        return true;
    }
    int64_t am = a.m < 0 ? -a.m : a.m;
    int64_t q = am / POW10[k], r = am % POW10[k];
    if ((__int128)r * 2 >= POW10[k])
        q++;
    return dec_make(a.m < 0 ? -(__int128)q : q, a.e + k, out);
}

/* Round half away from zero to `places` decimal places. */
bool dec_round_places(dec_t a, int places, dec_t *out)
{
    return round_drop(a, -a.e - places, out);
}

/* Round half away from zero to `sig` significant digits. */
bool dec_round_sig(dec_t a, int sig, dec_t *out)
{
    if (a.m == 0 || sig <= 0) {
        *out = a;
        return true;
    }
    return round_drop(a, ndigits(a.m) - sig, out);
}

int dec_places(dec_t a)
{
    return a.e < 0 ? -a.e : 0;
}

/* a * 10^scale as an int64 when that is an integer. */
bool dec_to_scaled(dec_t a, int scale, int64_t *out)
{
    int k = a.e + scale;
    if (a.m == 0) {
        *out = 0;
        return true;
    }
    if (k < 0 || k > 18)
        return false;
    __int128 v = (__int128)a.m * POW10[k];
    if (v > INT64_MAX || v < -INT64_MAX)
        return false;
    *out = (int64_t)v;
    return true;
}

/* The single rounding rule: round half up (half away from zero for negatives). */
int64_t fx_div_round(__int128 num, __int128 den)
{
    if (den <= 0)
        return 0;
    if (num >= 0)
        return (int64_t)((2 * num + den) / (2 * den));
    return -(int64_t)((2 * -num + den) / (2 * den));
}
