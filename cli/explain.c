/*
 * explain.c - human rendering of a grading result (see explain.h). This is a
 * display aid only: the normative result is the msgpack map itself, and
 * nothing here affects scores or digests.
 *
 * The renderer knows a few conventions of grading/RUBRIC.md results (fixed
 * point fields named *_milli and *_bp, records with an "id", rule traces)
 * but walks the map generically, so fields it does not know still show.
 */
#include "cli/explain.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* How an integer field is scaled, from its name's suffix. */
typedef enum explain_scale {
    SCALE_NONE = 0,
    SCALE_MILLI, /* *_milli: thousandths, 1500 -> 1.5 */
    SCALE_BP     /* *_bp: basis points, 8333 -> 83.33% */
} explain_scale_t;

/* Top-level keys shown first, in this order; the rest follow in map order. */
static const char *const explain_first[] = {"decision", "band",  "status",    "total",
                                            "sections", "items", "red_flags", NULL};

static const char *const explain_points_keys[] = {
    "points_milli", "earned_milli", "score_milli", "points", "earned", "score", NULL};
static const char *const explain_max_keys[] = {"max_milli", "max_points_milli", "max", "max_points",
                                               NULL};

static int key_is(const msgpack_object *k, const char *name)
{
    size_t n = strlen(name);
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
           memcmp(k->via.str.ptr, name, n) == 0;
}

static int key_ends_with(const msgpack_object *k, const char *suffix)
{
    size_t n = strlen(suffix);
    return k->type == MSGPACK_OBJECT_STR && k->via.str.size >= n &&
           memcmp(k->via.str.ptr + k->via.str.size - n, suffix, n) == 0;
}

static explain_scale_t key_scale(const msgpack_object *k)
{
    if (key_ends_with(k, "_milli"))
        return SCALE_MILLI;
    if (key_ends_with(k, "_bp"))
        return SCALE_BP;
    return SCALE_NONE;
}

static explain_scale_t name_scale(const char *name)
{
    size_t n = strlen(name);
    if (n >= 6 && strcmp(name + n - 6, "_milli") == 0)
        return SCALE_MILLI;
    if (n >= 3 && strcmp(name + n - 3, "_bp") == 0)
        return SCALE_BP;
    return SCALE_NONE;
}

static const msgpack_object *map_get(const msgpack_object *m, const char *name)
{
    if (m->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < m->via.map.size; i++)
        if (key_is(&m->via.map.ptr[i].key, name))
            return &m->via.map.ptr[i].val;
    return NULL;
}

static int is_scalar(const msgpack_object *o)
{
    return o->type != MSGPACK_OBJECT_MAP && o->type != MSGPACK_OBJECT_ARRAY;
}

/* The first of names present in m with a scalar value; *which names it. */
static const msgpack_object *map_get_scalar(const msgpack_object *m, const char *const *names,
                                            const char **which)
{
    for (size_t i = 0; names[i]; i++) {
        const msgpack_object *v = map_get(m, names[i]);
        if (v && is_scalar(v)) {
            *which = names[i];
            return v;
        }
    }
    return NULL;
}

static int is_int(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER || o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER;
}

static int64_t int_value(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER ? o->via.i64 : (int64_t)o->via.u64;
}

/* v / 10^digits with trailing zeros of the fraction dropped ("1.5", "-0.25", "3"). */
static void print_fixed(FILE *f, int64_t v, int digits)
{
    uint64_t div = digits == 3 ? 1000 : 100;
    uint64_t a = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    char frac[8];
    snprintf(frac, sizeof frac, "%0*u", digits, (unsigned)(a % div));
    for (int i = digits - 1; i >= 0 && frac[i] == '0'; i--)
        frac[i] = '\0';
    fprintf(f, "%s%" PRIu64 "%s%s", v < 0 ? "-" : "", a / div, frac[0] ? "." : "", frac);
}

/* An integer in thousandths. */
static void print_milli(FILE *f, int64_t v)
{
    print_fixed(f, v, 3);
}

/* A scalar; integers are shown with their field's scale. Strings are
 * printed bare unless they span lines or hold quotes, then JSON-quoted. */
static void print_scalar(FILE *f, const msgpack_object *o, explain_scale_t scale)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        fputs("null", f);
        break;
    case MSGPACK_OBJECT_BOOLEAN:
        fputs(o->via.boolean ? "yes" : "no", f);
        break;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        if (scale == SCALE_MILLI) {
            print_milli(f, int_value(o));
        } else if (scale == SCALE_BP) {
            print_fixed(f, int_value(o), 2);
            fputc('%', f);
        } else if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            fprintf(f, "%" PRIu64, o->via.u64);
        } else {
            fprintf(f, "%" PRId64, o->via.i64);
        }
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        fprintf(f, "%.17g", o->via.f64);
        break;
    case MSGPACK_OBJECT_STR: {
        const char *p = o->via.str.ptr;
        uint32_t n = o->via.str.size;
        if (!memchr(p, '\n', n) && !memchr(p, '"', n)) {
            fwrite(p, 1, n, f);
            break;
        }
        fputc('"', f);
        for (uint32_t i = 0; i < n; i++) {
            if (p[i] == '\n')
                fputs("\\n", f);
            else if (p[i] == '"' || p[i] == '\\')
                fprintf(f, "\\%c", p[i]);
            else
                fputc(p[i], f);
        }
        fputc('"', f);
        break;
    }
    case MSGPACK_OBJECT_BIN:
        fprintf(f, "<%" PRIu32 " bytes>", o->via.bin.size);
        break;
    default:
        fputs("?", f);
        break;
    }
}

/* A key without its scale suffix: "points_milli" -> "points",
 * "percent_bp" -> "percent". */
static void print_key(FILE *f, const msgpack_object *k)
{
    if (k->type != MSGPACK_OBJECT_STR) {
        print_scalar(f, k, SCALE_NONE);
        return;
    }
    size_t n = k->via.str.size;
    explain_scale_t s = key_scale(k);
    if (s == SCALE_MILLI)
        n -= 6;
    else if (s == SCALE_BP)
        n -= 3;
    fwrite(k->via.str.ptr, 1, n, f);
}

/* "P/M" from a map's points and max fields (and " (pct)" when it has
 * percent_bp). Returns 1 when it printed, recording the keys it used. */
static int print_points(FILE *f, const msgpack_object *m, const char **pk, const char **mk)
{
    const msgpack_object *pts = map_get_scalar(m, explain_points_keys, pk);
    if (!pts)
        return 0;
    print_scalar(f, pts, name_scale(*pk));
    const msgpack_object *max = map_get_scalar(m, explain_max_keys, mk);
    if (max) {
        fputc('/', f);
        print_scalar(f, max, name_scale(*mk));
    }
    const msgpack_object *pct = map_get(m, "percent_bp");
    if (pct && is_int(pct)) {
        fputs("  ", f);
        print_scalar(f, pct, SCALE_BP);
    }
    return 1;
}

/* 1 when every element of array a is a map carrying key. */
static int array_of_maps_with(const msgpack_object *a, const char *key)
{
    if (a->type != MSGPACK_OBJECT_ARRAY || a->via.array.size == 0)
        return 0;
    for (uint32_t i = 0; i < a->via.array.size; i++)
        if (!map_get(&a->via.array.ptr[i], key))
            return 0;
    return 1;
}

static void render_map(FILE *f, const msgpack_object *m, int indent, const char *const *skip);

/* Evidence: a list of spans ({text,start,end,...} maps or strings). */
static void render_evidence(FILE *f, const msgpack_object *ev, int indent)
{
    if (ev->type != MSGPACK_OBJECT_ARRAY) {
        fprintf(f, "%*sevidence: ", indent, "");
        print_scalar(f, ev, SCALE_NONE);
        fputc('\n', f);
        return;
    }
    for (uint32_t i = 0; i < ev->via.array.size; i++) {
        const msgpack_object *e = &ev->via.array.ptr[i];
        fprintf(f, "%*sevidence: ", indent, "");
        if (is_scalar(e) || e->type != MSGPACK_OBJECT_MAP) {
            print_scalar(f, e, SCALE_NONE);
            fputc('\n', f);
            continue;
        }
        const msgpack_object *text = map_get(e, "text");
        const msgpack_object *start = map_get(e, "start");
        const msgpack_object *end = map_get(e, "end");
        int first = 1;
        if (text && text->type == MSGPACK_OBJECT_STR) {
            fputc('"', f);
            fwrite(text->via.str.ptr, 1, text->via.str.size, f);
            fputc('"', f);
            first = 0;
        }
        if (start && end && is_int(start) && is_int(end)) {
            fprintf(f, "%s[%" PRId64 "..%" PRId64 ")", first ? "" : " ", int_value(start),
                    int_value(end));
            first = 0;
        }
        for (uint32_t j = 0; j < e->via.map.size; j++) {
            const msgpack_object *k = &e->via.map.ptr[j].key;
            if (key_is(k, "text") || key_is(k, "start") || key_is(k, "end"))
                continue;
            if (!first)
                fputc(' ', f);
            first = 0;
            print_key(f, k);
            fputc('=', f);
            if (is_scalar(&e->via.map.ptr[j].val))
                print_scalar(f, &e->via.map.ptr[j].val, key_scale(k));
            else
                fputs("{..}", f);
        }
        fputc('\n', f);
    }
}

/* One trace rule: "[x] rule (+1.5): detail", then its evidence and other fields. */
static void render_rule(FILE *f, const msgpack_object *rule, int indent)
{
    static const char *const used[] = {"rule",     "matched", "points_milli", "points", "detail",
                                       "evidence", NULL};
    const msgpack_object *name = map_get(rule, "rule");
    const msgpack_object *matched = map_get(rule, "matched");
    const msgpack_object *pm = map_get(rule, "points_milli");
    const msgpack_object *p = map_get(rule, "points");
    const msgpack_object *detail = map_get(rule, "detail");
    const msgpack_object *evidence = map_get(rule, "evidence");
    int hit = matched && matched->type == MSGPACK_OBJECT_BOOLEAN && matched->via.boolean;
    fprintf(f, "%*s[%c] ", indent, "", matched ? (hit ? 'x' : ' ') : '-');
    if (name)
        print_scalar(f, name, SCALE_NONE);
    if (pm && is_int(pm)) {
        fputs(" (", f);
        if (int_value(pm) >= 0)
            fputc('+', f);
        print_milli(f, int_value(pm));
        fputc(')', f);
    } else if (p && is_scalar(p)) {
        fputs(" (", f);
        print_scalar(f, p, SCALE_NONE);
        fputc(')', f);
    }
    if (detail && is_scalar(detail)) {
        fputs(": ", f);
        print_scalar(f, detail, SCALE_NONE);
    }
    fputc('\n', f);
    if (evidence)
        render_evidence(f, evidence, indent + 4);
    render_map(f, rule, indent + 4, used);
}

/* One record with an id: heading "id  points/max  pct  status", then the rest. */
static void render_record(FILE *f, const msgpack_object *rec, int indent)
{
    const char *pk = NULL, *mk = NULL;
    const msgpack_object *status = map_get(rec, "status");
    fprintf(f, "%*s", indent, "");
    print_scalar(f, map_get(rec, "id"), SCALE_NONE);
    if (map_get_scalar(rec, explain_points_keys, &pk))
        fputs("  ", f);
    int had_points = print_points(f, rec, &pk, &mk);
    if (status && is_scalar(status)) {
        fputs("  ", f);
        print_scalar(f, status, SCALE_NONE);
    }
    fputc('\n', f);
    const char *skip[8] = {"id", "status", NULL};
    size_t ns = 2;
    if (had_points) {
        skip[ns++] = pk;
        if (mk)
            skip[ns++] = mk;
        skip[ns++] = "percent_bp";
    }
    skip[ns] = NULL;
    render_map(f, rec, indent + 4, skip);
}

static void render_array(FILE *f, const msgpack_object *k, const msgpack_object *a, int indent)
{
    if (key_is(k, "trace") || array_of_maps_with(a, "rule")) {
        for (uint32_t i = 0; i < a->via.array.size; i++) {
            if (a->via.array.ptr[i].type == MSGPACK_OBJECT_MAP) {
                render_rule(f, &a->via.array.ptr[i], indent);
            } else {
                fprintf(f, "%*s- ", indent, "");
                print_scalar(f, &a->via.array.ptr[i], SCALE_NONE);
                fputc('\n', f);
            }
        }
        return;
    }
    if (array_of_maps_with(a, "id")) {
        for (uint32_t i = 0; i < a->via.array.size; i++)
            render_record(f, &a->via.array.ptr[i], indent);
        return;
    }
    if (key_is(k, "evidence")) {
        render_evidence(f, a, indent);
        return;
    }
    for (uint32_t i = 0; i < a->via.array.size; i++) {
        const msgpack_object *e = &a->via.array.ptr[i];
        fprintf(f, "%*s- ", indent, "");
        if (is_scalar(e)) {
            print_scalar(f, e, key_scale(k));
            fputc('\n', f);
        } else if (e->type == MSGPACK_OBJECT_MAP) {
            fputc('\n', f);
            render_map(f, e, indent + 2, NULL);
        } else {
            fputc('\n', f);
            render_array(f, k, e, indent + 2);
        }
    }
}

/* key: value, or key: then the nested value indented. */
static void render_entry(FILE *f, const msgpack_object *k, const msgpack_object *v, int indent)
{
    fprintf(f, "%*s", indent, "");
    print_key(f, k);
    fputc(':', f);
    if (is_scalar(v)) {
        fputc(' ', f);
        print_scalar(f, v, key_scale(k));
        fputc('\n', f);
        return;
    }
    if (v->type == MSGPACK_OBJECT_ARRAY) {
        int all_scalar = 1;
        for (uint32_t i = 0; i < v->via.array.size; i++)
            all_scalar = all_scalar && is_scalar(&v->via.array.ptr[i]);
        if (all_scalar) {
            fputs(v->via.array.size ? " " : " (none)", f);
            for (uint32_t i = 0; i < v->via.array.size; i++) {
                if (i)
                    fputs(", ", f);
                print_scalar(f, &v->via.array.ptr[i], key_scale(k));
            }
            fputc('\n', f);
            return;
        }
        fputc('\n', f);
        render_array(f, k, v, indent + 2);
        return;
    }
    if (v->via.map.size == 0) {
        fputs(" (none)\n", f);
        return;
    }
    /* a score map ({points, max, percent}) reads best on one line */
    const char *pk = NULL, *mk = NULL;
    if (map_get_scalar(v, explain_points_keys, &pk)) {
        fputc(' ', f);
        print_points(f, v, &pk, &mk);
        fputc('\n', f);
        const char *skip[] = {pk, mk ? mk : "percent_bp", "percent_bp", NULL};
        render_map(f, v, indent + 2, skip);
        return;
    }
    fputc('\n', f);
    render_map(f, v, indent + 2, NULL);
}

static int in_list(const msgpack_object *k, const char *const *names)
{
    for (size_t s = 0; names && names[s]; s++)
        if (key_is(k, names[s]))
            return 1;
    return 0;
}

/* Every entry of m except the keys in skip. */
static void render_map(FILE *f, const msgpack_object *m, int indent, const char *const *skip)
{
    if (m->type != MSGPACK_OBJECT_MAP)
        return;
    for (uint32_t i = 0; i < m->via.map.size; i++) {
        const msgpack_object *k = &m->via.map.ptr[i].key;
        if (!in_list(k, skip))
            render_entry(f, k, &m->via.map.ptr[i].val, indent);
    }
}

char *explain_render(const msgpack_object *result)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    if (result->type == MSGPACK_OBJECT_MAP) {
        /* the verdict first, then the detail, then whatever else the map has */
        for (size_t i = 0; explain_first[i]; i++) {
            const msgpack_object *v = map_get(result, explain_first[i]);
            if (v) {
                msgpack_object k = {.type = MSGPACK_OBJECT_STR};
                k.via.str.ptr = explain_first[i];
                k.via.str.size = (uint32_t)strlen(explain_first[i]);
                render_entry(f, &k, v, 0);
            }
        }
        render_map(f, result, 0, explain_first);
    } else {
        print_scalar(f, result, SCALE_NONE);
        fputc('\n', f);
    }
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    return buf;
}
