/*
 * loader.c - reading rubric JSON field by field.
 *
 * Every field of a rubric is read through one of these helpers. A helper
 * validates the value, reports a problem with its JSON path
 * ("items[3].elements[1].phrases: expected an array of strings") and keeps
 * going, so one pass lists every error. It also writes the field's canonical
 * value, with the default made explicit, into the canonical tree: the
 * canonical form is exactly the set of fields the loader understood.
 */
#include "internal.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void ld_verror(loader_t *L, grading_err_t code, const char *path, const char *fmt, va_list ap)
{
    L->total_errs++;
    if (L->n_errs >= L->max_errs)
        return;
    grading_error_t *e = &L->errs[L->n_errs++];
    e->code = code;
    snprintf(e->path, sizeof e->path, "%s", path);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
}

void ld_error(loader_t *L, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ld_verror(L, GRADING_ERR_INVALID_RUBRIC, path, fmt, ap);
    va_end(ap);
}

const char *ld_path_key(loader_t *L, const char *path, const char *key)
{
    if (!path || !*path)
        return arena_strdup(L->ta, key);
    return arena_printf(L->ta, "%s.%s", path, key);
}

const char *ld_path_idx(loader_t *L, const char *path, size_t idx)
{
    return arena_printf(L->ta, "%s[%zu]", path ? path : "", idx);
}

void ld_check_keys(loader_t *L, json_t *obj, const char *path, const char *const *allowed)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        bool ok = false;
        for (size_t i = 0; allowed[i]; i++)
            if (strcmp(allowed[i], key) == 0) {
                ok = true;
                break;
            }
        if (!ok)
            ld_error(L, ld_path_key(L, path, key), "unknown field");
    }
}

static const char *jtype(json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
        return "an integer";
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    default:
        return "null";
    }
}

const char *ld_str(loader_t *L, json_t *obj, tnode_t *canon, const char *path, const char *key,
                   const char *def, bool required)
{
    json_t *v = json_object_get(obj, key);
    const char *p = ld_path_key(L, path, key);
    if (!v || json_is_null(v)) {
        if (required)
            ld_error(L, p, "required field is missing");
        t_set(L->ta, canon, key, t_strz(L->ta, def ? def : ""));
        return arena_strdup(&L->r->arena, def ? def : "");
    }
    if (!json_is_string(v)) {
        ld_error(L, p, "expected a string, found %s", jtype(v));
        return arena_strdup(&L->r->arena, def ? def : "");
    }
    size_t n = json_string_length(v);
    if (memchr(json_string_value(v), 0, n))
        ld_error(L, p, "a string may not contain NUL");
    t_set(L->ta, canon, key, t_str(L->ta, json_string_value(v), n));
    return arena_strndup(&L->r->arena, json_string_value(v), n);
}

static bool ident_ok(const char *s, size_t n)
{
    if (n == 0 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-'))
            return false;
    }
    return true;
}

const char *ld_ident(loader_t *L, json_t *obj, tnode_t *canon, const char *path, const char *key)
{
    const char *s = ld_str(L, obj, canon, path, key, NULL, true);
    if (s && *s && !ident_ok(s, strlen(s)))
        ld_error(L, ld_path_key(L, path, key),
                 "expected an identifier (1-64 of A-Z a-z 0-9 _ -), found \"%.64s\"", s);
    return s;
}

bool ld_bool(loader_t *L, json_t *obj, tnode_t *canon, const char *path, const char *key, bool def)
{
    json_t *v = json_object_get(obj, key);
    bool out = def;
    if (v && !json_is_null(v)) {
        if (json_is_boolean(v))
            out = json_is_true(v);
        else
            ld_error(L, ld_path_key(L, path, key), "expected a boolean, found %s", jtype(v));
    }
    t_set(L->ta, canon, key, t_bool(L->ta, out));
    return out;
}

int64_t ld_int(loader_t *L, json_t *obj, tnode_t *canon, const char *path, const char *key,
               int64_t def, int64_t min, int64_t max)
{
    json_t *v = json_object_get(obj, key);
    int64_t out = def;
    if (v && !json_is_null(v)) {
        dec_t d;
        if (json_is_integer(v)) {
            out = json_integer_value(v);
        } else if (json_is_real(v) && dec_from_double(json_real_value(v), &d) &&
                   dec_to_scaled(d, 0, &out)) {
            /* 3.0 is the integer 3 */
        } else {
            ld_error(L, ld_path_key(L, path, key), "expected an integer, found %s", jtype(v));
            out = def;
        }
        if (out < min || out > max) {
            ld_error(L, ld_path_key(L, path, key), "expected an integer from %lld to %lld",
                     (long long)min, (long long)max);
            out = def;
        }
    }
    t_set(L->ta, canon, key, t_int(L->ta, out));
    return out;
}

bool ld_dec_value(json_t *v, dec_t *out)
{
    if (json_is_string(v))
        return dec_parse(json_string_value(v), json_string_length(v), out);
    if (json_is_integer(v)) {
        *out = dec_from_int(json_integer_value(v));
        return true;
    }
    if (json_is_real(v))
        return dec_from_double(json_real_value(v), out);
    return false;
}

static tnode_t *dec_node(arena_t *a, dec_t d)
{
    char buf[80];
    size_t n = dec_format(d, buf, sizeof buf);
    return t_str(a, buf, n);
}

dec_t ld_dec_opt(loader_t *L, json_t *obj, tnode_t *canon, const char *path, const char *key,
                 bool *present)
{
    json_t *v = json_object_get(obj, key);
    dec_t d = {0, 0};
    *present = false;
    if (!v || json_is_null(v)) {
        t_set(L->ta, canon, key, t_nil(L->ta));
        return d;
    }
    if (!ld_dec_value(v, &d)) {
        ld_error(L, ld_path_key(L, path, key),
                 "expected a decimal number (a JSON number or a string such as \"8.3\")");
        d.m = 0;
        d.e = 0;
        t_set(L->ta, canon, key, t_nil(L->ta));
        return d;
    }
    *present = true;
    t_set(L->ta, canon, key, dec_node(L->ta, d));
    return d;
}

dec_t ld_dec(loader_t *L, json_t *obj, tnode_t *canon, const char *path, const char *key,
             const char *def)
{
    json_t *v = json_object_get(obj, key);
    dec_t d = {0, 0};
    if (!v || json_is_null(v)) {
        if (!def)
            ld_error(L, ld_path_key(L, path, key), "required field is missing");
        else
            dec_parse(def, strlen(def), &d);
        t_set(L->ta, canon, key, dec_node(L->ta, d));
        return d;
    }
    if (!ld_dec_value(v, &d)) {
        ld_error(L, ld_path_key(L, path, key),
                 "expected a decimal number (a JSON number or a string such as \"8.3\")");
        d.m = 0;
        d.e = 0;
    }
    t_set(L->ta, canon, key, dec_node(L->ta, d));
    return d;
}

int64_t ld_scaled(loader_t *L, json_t *obj, tnode_t *canon, const char *path, const char *key,
                  const char *def, int scale, int64_t min, int64_t max)
{
    size_t before = L->total_errs;
    dec_t d = ld_dec(L, obj, canon, path, key, def);
    int64_t out = 0;
    if (L->total_errs != before)
        return 0;
    if (!dec_to_scaled(d, scale, &out)) {
        ld_error(L, ld_path_key(L, path, key), "expected at most %d decimal places", scale);
        return 0;
    }
    if (out < min || out > max) {
        char lo[80], hi[80];
        dec_format(dec_shift(dec_from_int(min), -scale), lo, sizeof lo);
        dec_format(dec_shift(dec_from_int(max), -scale), hi, sizeof hi);
        ld_error(L, ld_path_key(L, path, key), "expected a value from %s to %s", lo, hi);
        return 0;
    }
    return out;
}

const char *ld_enum(loader_t *L, json_t *obj, tnode_t *canon, const char *path, const char *key,
                    const char *const *choices, const char *def)
{
    const char *s = ld_str(L, obj, canon, path, key, def, def == NULL);
    for (size_t i = 0; choices[i]; i++)
        if (strcmp(choices[i], s) == 0)
            return choices[i];
    if (*s || def) {
        char list[256] = "";
        size_t o = 0;
        for (size_t i = 0; choices[i] && o < sizeof list; i++)
            o += (size_t)snprintf(list + o, sizeof list - o, "%s%s", i ? ", " : "", choices[i]);
        ld_error(L, ld_path_key(L, path, key), "expected one of: %s", list);
    }
    return def ? def : choices[0];
}

json_t *ld_array(loader_t *L, json_t *obj, const char *path, const char *key, bool required)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (required)
            ld_error(L, ld_path_key(L, path, key), "required field is missing");
        return NULL;
    }
    if (!json_is_array(v)) {
        ld_error(L, ld_path_key(L, path, key), "expected an array, found %s", jtype(v));
        return NULL;
    }
    return v;
}

json_t *ld_object(loader_t *L, json_t *obj, const char *path, const char *key, bool required)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (required)
            ld_error(L, ld_path_key(L, path, key), "required field is missing");
        return NULL;
    }
    if (!json_is_object(v)) {
        ld_error(L, ld_path_key(L, path, key), "expected an object, found %s", jtype(v));
        return NULL;
    }
    return v;
}

char **ld_strings(loader_t *L, json_t *obj, tnode_t *canon, const char *path, const char *key,
                  size_t *n, bool required)
{
    *n = 0;
    json_t *v = json_object_get(obj, key);
    tnode_t *arr = t_arr(L->ta);
    t_set(L->ta, canon, key, arr);
    if (!v || json_is_null(v)) {
        if (required)
            ld_error(L, ld_path_key(L, path, key), "required field is missing");
        return NULL;
    }
    size_t cnt = json_is_array(v) ? json_array_size(v) : 0;
    bool ok = json_is_array(v);
    for (size_t i = 0; ok && i < cnt; i++)
        if (!json_is_string(json_array_get(v, i)) || json_string_length(json_array_get(v, i)) == 0)
            ok = false;
    if (!ok) {
        ld_error(L, ld_path_key(L, path, key), "expected an array of non-empty strings");
        return NULL;
    }
    if (required && cnt == 0) {
        ld_error(L, ld_path_key(L, path, key), "expected at least one string");
        return NULL;
    }
    char **out = arena_alloc(&L->r->arena, (cnt + 1) * sizeof *out);
    if (!out)
        return NULL;
    for (size_t i = 0; i < cnt; i++) {
        json_t *s = json_array_get(v, i);
        out[i] = arena_strndup(&L->r->arena, json_string_value(s), json_string_length(s));
        t_push(L->ta, arr, t_str(L->ta, json_string_value(s), json_string_length(s)));
    }
    *n = cnt;
    return out;
}
