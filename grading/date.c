/*
 * date.c - calendar dates as candidates write them.
 *
 * Recognised anywhere in a text: "2025-07-15", "July 15, 2025", "Jul 15th
 * 2025", "15 July 2025", "15th of July, 2025", "7/15/2025", "15.07.2025",
 * "7/15/25". A numeric date with both parts <= 12 is read by the item's
 * policy ("us": month first, "eu": day first); one whose first part is over
 * 12 can only be day first, and is read so under either policy. A date
 * without a year takes the item's default_year when it has one: written
 * months ("July 15") and numeric day and month joined by '/' ("7/15", read
 * by the policy; "15/7" is day first under either). Impossible
 * dates (February 30) are not dates. Every date is compared in its canonical
 * ISO form.
 *
 * mode "one": any asserted date equal to an answer earns the points; mode
 * "all": each answer found earns its share (both sides of a discrepancy).
 * A date denied in its clause ("not July 15") is not asserted. More than
 * max_dates different asserted dates is a shotgun answer and earns nothing.
 */
#include "internal.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

typedef struct date_spec {
    int32_t *answers; /* yyyymmdd */
    size_t n;
    bool all;
    bool us;
    int32_t default_year;
    int64_t max_dates;
} date_spec_t;

static const char *const DATE_KEYS[] = {"answers",      "mode",      "policy",
                                        "default_year", "max_dates", NULL};

static bool leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static bool valid(int y, int m, int d)
{
    static const int dim[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1 || y > 9999 || m < 1 || m > 12 || d < 1)
        return false;
    return d <= dim[m - 1] + (m == 2 && leap(y));
}

static void iso(int32_t v, char *buf, size_t n)
{
    snprintf(buf, n, "%04d-%02d-%02d", (int)(v / 10000), (int)(v / 100 % 100), (int)(v % 100));
}

static bool dig(const char *s, size_t len, size_t i)
{
    return i < len && s[i] >= '0' && s[i] <= '9';
}

static bool alpha(const char *s, size_t len, size_t i)
{
    return i < len && ((s[i] | 32) >= 'a' && (s[i] | 32) <= 'z');
}

/* Read up to maxd digits; returns count. */
static size_t num(const char *s, size_t len, size_t i, int maxd, int *v)
{
    size_t k = 0;
    *v = 0;
    while (dig(s, len, i + k) && (int)k < maxd) {
        *v = *v * 10 + (s[i + k] - '0');
        k++;
    }
    if (dig(s, len, i + k))
        return 0; /* too many digits */
    return k;
}

static const char *const MONTHS[] = {"january",   "february", "march",    "april",
                                     "may",       "june",     "july",     "august",
                                     "september", "october",  "november", "december"};

/* A month name (full, or 3-4 letter abbreviation with an optional '.') at i. */
static size_t month_at(const char *s, size_t len, size_t i, int *m)
{
    if (i > 0 && alpha(s, len, i - 1))
        return 0;
    size_t k = 0;
    char w[16];
    while (alpha(s, len, i + k) && k < 15) {
        w[k] = (char)(s[i + k] | 32);
        k++;
    }
    if (alpha(s, len, i + k) || k < 3)
        return 0;
    w[k] = 0;
    for (int x = 0; x < 12; x++) {
        size_t ml = strlen(MONTHS[x]);
        if ((k == ml && memcmp(w, MONTHS[x], k) == 0) ||
            ((k == 3 || (k == 4 && x == 8)) && memcmp(w, MONTHS[x], k) == 0)) {
            *m = x + 1;
            if (i + k < len && s[i + k] == '.')
                k++;
            return k;
        }
    }
    return 0;
}

static size_t skip(const char *s, size_t len, size_t i, const char *chars)
{
    while (i < len && strchr(chars, s[i]) && s[i])
        i++;
    return i;
}

/* Ordinal suffix after a day number. */
static size_t ordinal(const char *s, size_t len, size_t i)
{
    static const char *const suf[] = {"st", "nd", "rd", "th"};
    for (int k = 0; k < 4; k++)
        if (i + 2 <= len && (s[i] | 32) == suf[k][0] && (s[i + 1] | 32) == suf[k][1] &&
            !alpha(s, len, i + 2))
            return i + 2;
    return i;
}

typedef struct found_date {
    int32_t v;
    size_t start, end;
} found_date_t;

/* Try to read a date starting at i; *end past it. */
static bool date_at(const date_spec_t *ds, const char *s, size_t len, size_t i, int32_t *out,
                    size_t *end)
{
    int a, b, c, m;
    if (dig(s, len, i) && !(i > 0 && (dig(s, len, i - 1) || alpha(s, len, i - 1)))) {
        /* ISO yyyy-mm-dd */
        if (num(s, len, i, 4, &a) == 4 && i + 4 < len && s[i + 4] == '-' &&
            num(s, len, i + 5, 2, &b) == 2 && i + 7 < len && s[i + 7] == '-' &&
            num(s, len, i + 8, 2, &c) == 2 && valid(a, b, c)) {
            *out = a * 10000 + b * 100 + c;
            *end = i + 10;
            return true;
        }
        /* numeric d/m/y or m/d/y with / . - */
        size_t k1 = num(s, len, i, 2, &a);
        if (k1 && i + k1 < len && strchr("/.-", s[i + k1])) {
            char sep = s[i + k1];
            size_t p = i + k1 + 1;
            size_t k2 = num(s, len, p, 2, &b);
            if (k2 && p + k2 < len && s[p + k2] == sep) {
                size_t q = p + k2 + 1;
                size_t k3 = num(s, len, q, 4, &c);
                if (k3 == 2)
                    c += 2000;
                if (k3 == 2 || k3 == 4) {
                    int mo, da;
                    if (a > 12)
                        mo = b, da = a;
                    else if (b > 12)
                        mo = a, da = b;
                    else if (ds->us && sep == '/')
                        mo = a, da = b;
                    else
                        mo = b, da = a;
                    if (valid(c, mo, da)) {
                        *out = c * 10000 + mo * 100 + da;
                        *end = q + k3;
                        return true;
                    }
                }
            } else if (k2 && sep == '/' && ds->default_year && !(i > 0 && s[i - 1] == '/') &&
                       !(p + k2 < len && strchr("/%", s[p + k2])) &&
                       !(p + k2 + 1 < len && s[p + k2] == '.' && dig(s, len, p + k2 + 1))) {
                /* m/d or d/m without a year: the default year, by the policy */
                int mo, da;
                if (a > 12)
                    mo = b, da = a;
                else if (b > 12)
                    mo = a, da = b;
                else if (ds->us)
                    mo = a, da = b;
                else
                    mo = b, da = a;
                if (valid(ds->default_year, mo, da)) {
                    *out = ds->default_year * 10000 + mo * 100 + da;
                    *end = p + k2;
                    return true;
                }
            }
        }
        /* d[th] [of] Month[,] [yyyy] */
        size_t kd = num(s, len, i, 2, &a);
        if (kd) {
            size_t p = ordinal(s, len, i + kd);
            p = skip(s, len, p, " ");
            if (p + 3 <= len && (s[p] | 32) == 'o' && (s[p + 1] | 32) == 'f' && s[p + 2] == ' ')
                p = skip(s, len, p + 2, " ");
            size_t km = month_at(s, len, p, &m);
            if (km && p > i + kd) {
                size_t q = skip(s, len, p + km, " ,");
                int y = 0;
                size_t ky = num(s, len, q, 4, &y);
                if (ky == 4 && valid(y, m, a)) {
                    *out = y * 10000 + m * 100 + a;
                    *end = q + 4;
                    return true;
                }
                if (ds->default_year && valid(ds->default_year, m, a)) {
                    *out = ds->default_year * 10000 + m * 100 + a;
                    *end = p + km;
                    return true;
                }
            }
        }
        return false;
    }
    /* Month d[th][,] [yyyy] */
    size_t km = month_at(s, len, i, &m);
    if (km) {
        size_t p = skip(s, len, i + km, " ");
        size_t kd = p > i + km ? num(s, len, p, 2, &a) : 0;
        if (kd) {
            size_t q0 = ordinal(s, len, p + kd);
            size_t q = skip(s, len, q0, " ,");
            int y = 0;
            size_t ky = num(s, len, q, 4, &y);
            if (ky == 4 && valid(y, m, a)) {
                *out = y * 10000 + m * 100 + a;
                *end = q + 4;
                return true;
            }
            if (ds->default_year && valid(ds->default_year, m, a)) {
                *out = ds->default_year * 10000 + m * 100 + a;
                *end = q0;
                return true;
            }
        }
    }
    return false;
}

/* All dates in text, in order. */
static size_t dates_find(arena_t *a, const date_spec_t *ds, const char *s, size_t len,
                         found_date_t **out)
{
    size_t cap = 8, n = 0;
    found_date_t *v = arena_alloc(a, cap * sizeof *v);
    for (size_t i = 0; v && i < len;) {
        int32_t d;
        size_t e;
        if (date_at(ds, s, len, i, &d, &e)) {
            if (n == cap) {
                found_date_t *nv = arena_alloc(a, cap * 2 * sizeof *nv);
                if (!nv)
                    break;
                memcpy(nv, v, n * sizeof *v);
                v = nv;
                cap *= 2;
            }
            v[n].v = d;
            v[n].start = i;
            v[n].end = e;
            n++;
            i = e;
        } else {
            i++;
        }
    }
    *out = v;
    return v ? n : 0;
}

static void date_compile(loader_t *L, item_t *it, json_t *obj, tnode_t *canon, const char *path)
{
    grading_rubric_t *r = L->r;
    date_spec_t *ds = arena_alloc(&r->arena, sizeof *ds);
    if (!ds)
        return;
    it->spec = ds;
    static const char *const modes[] = {"one", "all", NULL};
    static const char *const policies[] = {"us", "eu", NULL};
    ds->all = strcmp(ld_enum(L, obj, canon, path, "mode", modes, "one"), "all") == 0;
    ds->us = strcmp(ld_enum(L, obj, canon, path, "policy", policies, "us"), "us") == 0;
    ds->default_year = (int32_t)ld_int(L, obj, canon, path, "default_year", 0, 0, 9999);
    ds->max_dates = ld_int(L, obj, canon, path, "max_dates", 4, 1, 100);
    json_t *arr = ld_array(L, obj, path, "answers", true);
    tnode_t *carr = t_arr(L->ta);
    t_set(L->ta, canon, "answers", carr);
    if (!arr)
        return;
    const char *ap = ld_path_key(L, path, "answers");
    ds->n = json_array_size(arr);
    if (ds->n == 0 || ds->n > 32) {
        ld_error(L, ap, "a date item has 1 to 32 answers");
        return;
    }
    ds->answers = arena_alloc(&r->arena, ds->n * sizeof *ds->answers);
    it->elements = arena_alloc(&r->arena, ds->n * sizeof *it->elements);
    if (!ds->answers || !it->elements)
        return;
    it->n_elements = ds->n;
    date_spec_t iso_only = {.us = false};
    for (size_t i = 0; i < ds->n; i++) {
        json_t *v = json_array_get(arr, i);
        const char *s = json_is_string(v) ? json_string_value(v) : "";
        size_t e = 0;
        int32_t d = 0;
        if (!json_is_string(v) || strlen(s) != 10 || !date_at(&iso_only, s, 10, 0, &d, &e) ||
            e != 10) {
            ld_error(L, ld_path_idx(L, ap, i), "expected an ISO date \"YYYY-MM-DD\"");
            it->elements[i].id = "";
            continue;
        }
        ds->answers[i] = d;
        char buf[16];
        iso(d, buf, sizeof buf);
        t_push(L->ta, carr, t_strz(L->ta, buf));
        it->elements[i].id = arena_printf(&r->arena, "d%s", buf);
    }
}

static grading_err_t date_grade(grade_ctx_t *c, const item_t *it, const msgpack_object *resp,
                                const char *path, item_result_t *out, grading_error_t *err)
{
    const date_spec_t *ds = it->spec;
    const char *text;
    size_t len;
    grading_err_t rc = text_response(resp, path, &text, &len, err);
    if (rc != GRADING_OK)
        return rc;
    found_date_t *dates = NULL;
    size_t n = text ? dates_find(c->a, ds, text, len, &dates) : 0;
    tokens_t toks = {0};
    if (text && !text_tokenize(c->a, NULL, text, len, &toks))
        return GRADING_ERR_NOMEM;
    if (!text || toks.n == 0) {
        out->status = ST_UNANSWERED;
        trace_rule(c, out->trace, "answer", false, 0, "no answer");
        return GRADING_OK;
    }
    out->status = ST_SCORED;
    size_t distinct = 0, found = 0;
    bool *asserted = arena_alloc(c->a, (n + 1) * sizeof *asserted);
    if (!asserted)
        return GRADING_ERR_NOMEM;
    for (size_t i = 0; i < n; i++) {
        char buf[16];
        iso(dates[i].v, buf, sizeof buf);
        bool neg = text_span_negated(&toks, dates[i].start, dates[i].end);
        asserted[i] = !neg;
        tnode_t *rule = trace_rule(c, out->trace, "date", !neg, 0,
                                   neg ? arena_printf(c->a, "%s: denied in its clause", buf)
                                       : arena_printf(c->a, "%s", buf));
        trace_evidence(c, rule, text, dates[i].start, dates[i].end);
        if (!neg) {
            bool seen = false;
            for (size_t j = 0; j < i; j++)
                if (asserted[j] && dates[j].v == dates[i].v)
                    seen = true;
            distinct += !seen;
        }
    }
    if ((int64_t)distinct > ds->max_dates) {
        trace_rule(c, out->trace, "max_dates", false, 0,
                   arena_printf(c->a, "%zu different dates asserted; more than %lld earns nothing",
                                distinct, (long long)ds->max_dates));
        return GRADING_OK;
    }
    for (size_t a = 0; a < ds->n; a++) {
        char buf[16];
        iso(ds->answers[a], buf, sizeof buf);
        bool hit = false;
        for (size_t i = 0; i < n && !hit; i++)
            if (asserted[i] && dates[i].v == ds->answers[a]) {
                hit = true;
                tnode_t *rule = trace_rule(c, out->trace, it->elements[a].id, true, 0,
                                           arena_printf(c->a, "answer %s found", buf));
                trace_evidence(c, rule, text, dates[i].start, dates[i].end);
            }
        if (!hit)
            trace_rule(c, out->trace, it->elements[a].id, false, 0,
                       arena_printf(c->a, "answer %s not found", buf));
        out->elem_matched[a] = hit;
        found += hit;
    }
    int64_t earned;
    if (ds->all)
        earned = fx_div_round((__int128)it->points_milli * found, (int64_t)ds->n);
    else
        earned = found ? it->points_milli : 0;
    trace_rule(c, out->trace, ds->all ? "mode:all" : "mode:one", earned > 0, earned,
               arena_printf(c->a, "%zu of %zu answer dates found", found, ds->n));
    out->earned_milli = earned;
    return GRADING_OK;
}

const item_ops_t date_ops = {"date", DATE_KEYS, date_compile, date_grade};
