/*
 * rubric.c - loading a rubric: JSON or canonical msgpack in, compiled model,
 * canonical form and content hash out.
 *
 * Both entry points end in compile(): msgpack is first turned into the same
 * jansson tree JSON text would give, so the two paths cannot drift apart.
 * compile() walks the rubric once through the loader.c field readers, which
 * validate, collect every error with its path, and write the canonical tree
 * (keys sorted bytewise when packed, defaults explicit, decimals as plain
 * decimal strings). The SHA-256 of the packed canonical tree is the rubric's
 * identity: the same meaning written with other whitespace, key order or
 * number spelling ("8.30", 8.3, "8.3") gives the same bytes and the same hash.
 *
 * A loaded rubric is immutable: the worker shares one instance read-only
 * between threads.
 */
#include "internal.h"

#include <jansson.h>
#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const TYPE_NAMES[IT_COUNT] = {
    [IT_CHOICE] = "choice", [IT_QUANTITY] = "quantity", [IT_TEXT] = "text", [IT_DATE] = "date",
    [IT_ENTITY] = "entity", [IT_ORDERING] = "ordering", [IT_PICK] = "pick", [IT_RATING] = "rating",
};

const char *item_type_name(item_type_t t)
{
    return (unsigned)t < IT_COUNT ? TYPE_NAMES[t] : "unknown";
}

const item_ops_t *item_ops_for(item_type_t t)
{
    switch (t) {
    case IT_CHOICE:
        return &choice_ops;
    case IT_QUANTITY:
        return &quantity_ops;
    case IT_TEXT:
        return &text_ops;
    case IT_DATE:
        return &date_ops;
    case IT_ENTITY:
        return &entity_ops;
    case IT_ORDERING:
        return &ordering_ops;
    case IT_PICK:
        return &pick_ops;
    case IT_RATING:
        return &rating_ops;
    default:
        return NULL;
    }
}

const item_t *rubric_find_item(const grading_rubric_t *r, const char *id, size_t len)
{
    for (size_t i = 0; i < r->n_items; i++)
        if (strlen(r->items[i].id) == len && memcmp(r->items[i].id, id, len) == 0)
            return &r->items[i];
    return NULL;
}

int item_find_element(const item_t *it, const char *id, size_t len)
{
    for (size_t i = 0; i < it->n_elements; i++)
        if (strlen(it->elements[i].id) == len && memcmp(it->elements[i].id, id, len) == 0)
            return (int)i;
    return -1;
}

int rubric_synonym_of(const grading_rubric_t *r, const char *stem, size_t len)
{
    for (size_t i = 0; i < r->n_synonyms; i++)
        for (size_t j = 0; j < r->synonyms[i].n; j++)
            if (strlen(r->synonyms[i].stems[j]) == len &&
                memcmp(r->synonyms[i].stems[j], stem, len) == 0)
                return (int)i;
    return -1;
}

/* Register a compiled PCRE2 pattern so that destroy frees it. */
bool rubric_keep_pattern(grading_rubric_t *r, void *code)
{
    if (r->n_patterns == r->cap_patterns) {
        size_t cap = r->cap_patterns ? r->cap_patterns * 2 : 8;
        void **v = realloc(r->patterns, cap * sizeof *v);
        if (!v)
            return false;
        r->patterns = v;
        r->cap_patterns = cap;
    }
    r->patterns[r->n_patterns++] = code;
    return true;
}

/* ---- sections ---- */

static void compile_sections(loader_t *L, json_t *root, tnode_t *canon)
{
    grading_rubric_t *r = L->r;
    json_t *arr = ld_array(L, root, "", "sections", true);
    tnode_t *carr = t_arr(L->ta);
    t_set(L->ta, canon, "sections", carr);
    if (!arr)
        return;
    if (json_array_size(arr) == 0) {
        ld_error(L, "sections", "a rubric needs at least one section");
        return;
    }
    r->n_sections = json_array_size(arr);
    r->sections = arena_alloc(&r->arena, r->n_sections * sizeof *r->sections);
    if (!r->sections)
        return;
    static const char *const keys[] = {"id", "title", "weight", NULL};
    for (size_t i = 0; i < r->n_sections; i++) {
        json_t *o = json_array_get(arr, i);
        const char *p = ld_path_idx(L, "sections", i);
        tnode_t *c = t_map(L->ta);
        t_push(L->ta, carr, c);
        if (!json_is_object(o)) {
            ld_error(L, p, "expected an object");
            r->sections[i].id = "";
            continue;
        }
        ld_check_keys(L, o, p, keys);
        section_t *s = &r->sections[i];
        s->id = ld_ident(L, o, c, p, "id");
        s->title = ld_str(L, o, c, p, "title", "", false);
        s->weight_milli = ld_scaled(L, o, c, p, "weight", "1", 3, 0, 1000000000);
        for (size_t j = 0; j < i; j++)
            if (strcmp(r->sections[j].id, s->id) == 0)
                ld_error(L, ld_path_key(L, p, "id"), "duplicate section id \"%s\"", s->id);
    }
}

/* ---- shared tables: entities (aliases) and synonyms ---- */

static void compile_entities(loader_t *L, json_t *root, tnode_t *canon)
{
    grading_rubric_t *r = L->r;
    json_t *arr = ld_array(L, root, "", "entities", false);
    tnode_t *carr = t_arr(L->ta);
    t_set(L->ta, canon, "entities", carr);
    if (!arr)
        return;
    r->n_aliases = json_array_size(arr);
    r->aliases = arena_alloc(&r->arena, (r->n_aliases + 1) * sizeof *r->aliases);
    if (!r->aliases)
        return;
    static const char *const keys[] = {"id", "name", "aliases", NULL};
    for (size_t i = 0; i < r->n_aliases; i++) {
        json_t *o = json_array_get(arr, i);
        const char *p = ld_path_idx(L, "entities", i);
        tnode_t *c = t_map(L->ta);
        t_push(L->ta, carr, c);
        alias_group_t *g = &r->aliases[i];
        g->id = "";
        if (!json_is_object(o)) {
            ld_error(L, p, "expected an object");
            continue;
        }
        ld_check_keys(L, o, p, keys);
        g->id = ld_ident(L, o, c, p, "id");
        g->canonical = ld_str(L, o, c, p, "name", NULL, true);
        size_t n = 0;
        char **names = ld_strings(L, o, c, p, "aliases", &n, false);
        g->folded = arena_alloc(&r->arena, (n + 1) * sizeof *g->folded);
        if (!g->folded)
            continue;
        g->folded[g->n++] = text_fold(&r->arena, g->canonical, strlen(g->canonical));
        for (size_t j = 0; j < n; j++)
            g->folded[g->n++] = text_fold(&r->arena, names[j], strlen(names[j]));
        for (size_t j = 0; j < i; j++)
            if (strcmp(r->aliases[j].id, g->id) == 0)
                ld_error(L, ld_path_key(L, p, "id"), "duplicate entity id \"%s\"", g->id);
    }
}

static void compile_synonyms(loader_t *L, json_t *root, tnode_t *canon)
{
    grading_rubric_t *r = L->r;
    json_t *arr = ld_array(L, root, "", "synonyms", false);
    tnode_t *carr = t_arr(L->ta);
    t_set(L->ta, canon, "synonyms", carr);
    if (!arr)
        return;
    r->n_synonyms = json_array_size(arr);
    r->synonyms = arena_alloc(&r->arena, (r->n_synonyms + 1) * sizeof *r->synonyms);
    if (!r->synonyms)
        return;
    for (size_t i = 0; i < r->n_synonyms; i++) {
        json_t *set = json_array_get(arr, i);
        const char *p = ld_path_idx(L, "synonyms", i);
        tnode_t *cset = t_arr(L->ta);
        t_push(L->ta, carr, cset);
        if (!json_is_array(set) || json_array_size(set) < 2) {
            ld_error(L, p, "expected an array of at least two words");
            continue;
        }
        synonym_set_t *s = &r->synonyms[i];
        s->stems = arena_alloc(&r->arena, json_array_size(set) * sizeof *s->stems);
        for (size_t j = 0; s->stems && j < json_array_size(set); j++) {
            json_t *w = json_array_get(set, j);
            const char *wp = ld_path_idx(L, p, j);
            if (!json_is_string(w)) {
                ld_error(L, wp, "expected a string");
                continue;
            }
            t_push(L->ta, cset, t_str(L->ta, json_string_value(w), json_string_length(w)));
            tokens_t tk;
            if (!text_tokenize(L->ta, L->stemmer, json_string_value(w), json_string_length(w), &tk))
                continue;
            if (tk.n != 1) {
                ld_error(L, wp, "a synonym is one word; use a phrase list for several words");
                continue;
            }
            s->stems[s->n++] = arena_strndup(&r->arena, tk.v[0].stem, tk.v[0].stem_len);
        }
    }
}

/* ---- items ---- */

static const char *const COMMON_ITEM_KEYS[] = {"id",     "type",   "section", "title",
                                               "prompt", "points", "weight",  NULL};

static void compile_items(loader_t *L, json_t *root, tnode_t *canon)
{
    grading_rubric_t *r = L->r;
    json_t *arr = ld_array(L, root, "", "items", true);
    tnode_t *carr = t_arr(L->ta);
    t_set(L->ta, canon, "items", carr);
    if (!arr)
        return;
    if (json_array_size(arr) == 0 || json_array_size(arr) > GRADING_ITEMS_MAX) {
        ld_error(L, "items", "a rubric has 1 to %d items", GRADING_ITEMS_MAX);
        return;
    }
    r->n_items = json_array_size(arr);
    r->items = arena_alloc(&r->arena, r->n_items * sizeof *r->items);
    if (!r->items)
        return;
    static const char *const type_choices[] = {"choice",   "quantity", "text",   "date", "entity",
                                               "ordering", "pick",     "rating", NULL};
    for (size_t i = 0; i < r->n_items; i++) {
        json_t *o = json_array_get(arr, i);
        const char *p = ld_path_idx(L, "items", i);
        tnode_t *c = t_map(L->ta);
        t_push(L->ta, carr, c);
        item_t *it = &r->items[i];
        it->id = "";
        if (!json_is_object(o)) {
            ld_error(L, p, "expected an object");
            continue;
        }
        it->id = ld_ident(L, o, c, p, "id");
        for (size_t j = 0; j < i; j++)
            if (strcmp(r->items[j].id, it->id) == 0)
                ld_error(L, ld_path_key(L, p, "id"), "duplicate item id \"%s\"", it->id);
        const char *type = ld_enum(L, o, c, p, "type", type_choices, NULL);
        it->type = IT_CHOICE;
        for (int t = 0; t < IT_COUNT; t++)
            if (strcmp(TYPE_NAMES[t], type) == 0)
                it->type = (item_type_t)t;
        const char *sec = ld_str(L, o, c, p, "section", NULL, true);
        it->section = 0;
        bool found = false;
        for (size_t s = 0; s < r->n_sections; s++)
            if (strcmp(r->sections[s].id, sec) == 0) {
                it->section = s;
                found = true;
            }
        if (!found && *sec)
            ld_error(L, ld_path_key(L, p, "section"), "no section has the id \"%s\"", sec);
        it->title = ld_str(L, o, c, p, "title", "", false);
        it->prompt = ld_str(L, o, c, p, "prompt", "", false);
        it->points_milli = ld_scaled(L, o, c, p, "points", "1", 3, 0, 1000000000);
        it->weight_milli = ld_scaled(L, o, c, p, "weight", "1", 3, 0, 1000000000);
        const item_ops_t *ops = item_ops_for(it->type);
        /* allowed keys: the common ones plus the type's own */
        const char *allowed[64];
        size_t na = 0;
        for (size_t k = 0; COMMON_ITEM_KEYS[k]; k++)
            allowed[na++] = COMMON_ITEM_KEYS[k];
        for (size_t k = 0; ops->keys[k] && na < 63; k++)
            allowed[na++] = ops->keys[k];
        allowed[na] = NULL;
        ld_check_keys(L, o, p, allowed);
        L->lexicon = &it->lexicon;
        ops->compile(L, it, o, c, p);
        L->lexicon = NULL;
        for (size_t a = 0; a < it->n_elements; a++)
            for (size_t b = 0; b < a; b++)
                if (strcmp(it->elements[a].id, it->elements[b].id) == 0)
                    ld_error(L, p, "duplicate element id \"%s\"", it->elements[a].id);
    }
    for (size_t s = 0; s < r->n_sections; s++) {
        bool used = false;
        for (size_t i = 0; i < r->n_items; i++)
            if (r->items[i].section == s)
                used = true;
        if (!used)
            ld_error(L, ld_path_idx(L, "sections", s), "section \"%s\" has no items",
                     r->sections[s].id);
    }
}

/* ---- bands and red flags ---- */

static const char *const DEFAULT_BANDS =
    "[{\"id\":\"strong\",\"min_percent\":\"70\",\"decision\":\"advance\"},"
    "{\"id\":\"borderline\",\"min_percent\":\"50\",\"decision\":\"review\"},"
    "{\"id\":\"weak\",\"min_percent\":\"0\",\"decision\":\"reject\"}]";

static void compile_bands(loader_t *L, json_t *root, tnode_t *canon)
{
    grading_rubric_t *r = L->r;
    json_t *arr = ld_array(L, root, "", "bands", false);
    json_t *def = NULL;
    if (!arr && !json_object_get(root, "bands"))
        arr = def = json_loads(DEFAULT_BANDS, 0, NULL);
    tnode_t *carr = t_arr(L->ta);
    t_set(L->ta, canon, "bands", carr);
    if (!arr)
        return;
    r->n_bands = json_array_size(arr);
    r->bands = arena_alloc(&r->arena, (r->n_bands + 1) * sizeof *r->bands);
    static const char *const keys[] = {"id", "min_percent", "decision", NULL};
    static const char *const decisions[] = {"advance", "review", "reject", NULL};
    for (size_t i = 0; r->bands && i < r->n_bands; i++) {
        json_t *o = json_array_get(arr, i);
        const char *p = ld_path_idx(L, "bands", i);
        tnode_t *c = t_map(L->ta);
        t_push(L->ta, carr, c);
        band_t *b = &r->bands[i];
        b->id = "";
        b->decision = "reject";
        if (!json_is_object(o)) {
            ld_error(L, p, "expected an object");
            continue;
        }
        ld_check_keys(L, o, p, keys);
        b->id = ld_ident(L, o, c, p, "id");
        b->min_bp = ld_scaled(L, o, c, p, "min_percent", NULL, 2, 0, 10000);
        b->decision = ld_enum(L, o, c, p, "decision", decisions, NULL);
        if (i > 0 && b->min_bp >= r->bands[i - 1].min_bp)
            ld_error(L, ld_path_key(L, p, "min_percent"),
                     "bands are listed from the highest min_percent down, strictly decreasing");
    }
    if (r->bands && (r->n_bands == 0 || r->bands[r->n_bands - 1].min_bp != 0))
        ld_error(L, "bands", "the last band must have min_percent 0 so every total has a band");
    json_decref(def);
}

static void compile_flags(loader_t *L, json_t *root, tnode_t *canon)
{
    grading_rubric_t *r = L->r;
    json_t *arr = ld_array(L, root, "", "red_flags", false);
    tnode_t *carr = t_arr(L->ta);
    t_set(L->ta, canon, "red_flags", carr);
    if (!arr)
        return;
    r->n_flags = json_array_size(arr);
    r->flags = arena_alloc(&r->arena, (r->n_flags + 1) * sizeof *r->flags);
    static const char *const keys[] = {"id", "when", "reason", "effect", NULL};
    static const char *const effects[] = {"disqualify", "review", NULL};
    for (size_t i = 0; r->flags && i < r->n_flags; i++) {
        json_t *o = json_array_get(arr, i);
        const char *p = ld_path_idx(L, "red_flags", i);
        tnode_t *c = t_map(L->ta);
        t_push(L->ta, carr, c);
        red_flag_t *f = &r->flags[i];
        f->id = "";
        f->effect = "disqualify";
        if (!json_is_object(o)) {
            ld_error(L, p, "expected an object");
            continue;
        }
        ld_check_keys(L, o, p, keys);
        f->id = ld_ident(L, o, c, p, "id");
        f->when = ld_str(L, o, c, p, "when", NULL, true);
        f->reason = ld_str(L, o, c, p, "reason", NULL, true);
        f->effect = ld_enum(L, o, c, p, "effect", effects, "disqualify");
        if (*f->when)
            f->expr = redflag_compile(L, f->when, ld_path_key(L, p, "when"));
        for (size_t j = 0; j < i; j++)
            if (strcmp(r->flags[j].id, f->id) == 0)
                ld_error(L, ld_path_key(L, p, "id"), "duplicate red flag id \"%s\"", f->id);
    }
}

/* ---- the whole rubric ---- */

static const char *const ROOT_KEYS[] = {"id",       "version",   "title",    "description",
                                        "sections", "entities",  "synonyms", "items",
                                        "bands",    "red_flags", NULL};

/* Every string of the rubric (prompts, titles, phrases, options ...) into
 * the table of known stems. */
static bool add_known_stems(stem_table_t *t, stemmer_box_t *st, json_t *v, int depth)
{
    if (depth > 64)
        return true;
    if (json_is_string(v))
        return stem_table_add_text(t, st, json_string_value(v), json_string_length(v));
    if (json_is_array(v)) {
        for (size_t i = 0; i < json_array_size(v); i++)
            if (!add_known_stems(t, st, json_array_get(v, i), depth + 1))
                return false;
    } else if (json_is_object(v)) {
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x)
        {
            if (!add_known_stems(t, st, x, depth + 1))
                return false;
        }
    }
    return true;
}

/* Compile root into a new rubric. Errors go to errs (up to max); returns
 * GRADING_OK or the first error's code. *out is NULL on failure. */
static grading_err_t compile(json_t *root, grading_rubric_t **out, grading_error_t *errs,
                             size_t max_errs, size_t *n_errs)
{
    *out = NULL;
    grading_rubric_t *r = calloc(1, sizeof *r);
    if (!r)
        return GRADING_ERR_NOMEM;
    arena_t ta = {0};
    stemmer_box_t *st = stemmer_box_new();
    loader_t L = {.r = r, .ta = &ta, .errs = errs, .max_errs = max_errs, .stemmer = st};
    grading_err_t rc = GRADING_OK;
    if (!st) {
        rc = GRADING_ERR_NOMEM;
        goto done;
    }
    tnode_t *canon = t_map(&ta);
    if (!limits_check(&L, root)) {
        rc = GRADING_ERR_LIMIT;
        goto done;
    }
    if (!json_is_object(root)) {
        ld_error(&L, "", "a rubric is a JSON object");
    } else {
        ld_check_keys(&L, root, "", ROOT_KEYS);
        r->id = ld_ident(&L, root, canon, "", "id");
        r->version = ld_str(&L, root, canon, "", "version", NULL, true);
        r->title = ld_str(&L, root, canon, "", "title", "", false);
        ld_str(&L, root, canon, "", "description", "", false);
        compile_sections(&L, root, canon);
        compile_entities(&L, root, canon);
        compile_synonyms(&L, root, canon);
        compile_items(&L, root, canon); /* reported even when sections have errors */
        compile_bands(&L, root, canon);
        if (L.total_errs == 0) /* expressions name items: check them on sound items */
            compile_flags(&L, root, canon);
    }
    if (r->arena.oom || ta.oom) {
        rc = GRADING_ERR_NOMEM;
        goto done;
    }
    if (L.total_errs) {
        rc = GRADING_ERR_INVALID_RUBRIC;
        goto done;
    }
    for (size_t i = 0; i < r->n_items; i++)
        if (!lexicon_finish(r->items[i].lexicon, r)) {
            rc = GRADING_ERR_NOMEM;
            goto done;
        }
    r->known_stems = stem_table_new();
    if (!r->known_stems || !add_known_stems(r->known_stems, st, root, 0)) {
        rc = GRADING_ERR_NOMEM;
        goto done;
    }
    tbuf_t cb = {0};
    if (!t_pack(canon, &cb)) {
        tbuf_free(&cb);
        rc = GRADING_ERR_NOMEM;
        goto done;
    }
    r->canonical = cb.data;
    r->canonical_len = cb.len;
    if (!sha256_hex(r->canonical, r->canonical_len, r->hash)) {
        rc = GRADING_ERR_NOMEM;
        goto done;
    }
done:
    if (n_errs)
        *n_errs = L.n_errs;
    stemmer_box_free(st);
    arena_free(&ta);
    if (rc != GRADING_OK) {
        grading_rubric_destroy(&r);
        return rc;
    }
    *out = r;
    return GRADING_OK;
}

static grading_err_t load_json(const char *text, size_t len, grading_rubric_t **out,
                               grading_error_t *errs, size_t max_errs, size_t *n_errs)
{
    *n_errs = 0;
    if (len > GRADING_RUBRIC_MAX_BYTES) {
        err_set(&errs[0], GRADING_ERR_LIMIT, "", "the rubric is %zu bytes; the limit is %u", len,
                GRADING_RUBRIC_MAX_BYTES);
        *n_errs = 1;
        return GRADING_ERR_LIMIT;
    }
    json_error_t je;
    json_t *root = json_loadb(text ? text : "", len, JSON_REJECT_DUPLICATES, &je);
    if (!root) {
        err_set(&errs[0], GRADING_ERR_JSON, "", "line %d, column %d: %s", je.line, je.column,
                je.text);
        *n_errs = 1;
        return GRADING_ERR_JSON;
    }
    grading_err_t rc = compile(root, out, errs, max_errs, n_errs);
    json_decref(root);
    return rc;
}

/* Parse and validate a rubric written as JSON. */
grading_err_t grading_rubric_load_json(const char *text, size_t len, grading_rubric_t **out,
                                       grading_error_t *err)
{
    grading_error_t errs[1];
    size_t n = 0;
    err_clear(err);
    memset(errs, 0, sizeof errs);
    grading_err_t rc = load_json(text, len, out, errs, 1, &n);
    if (rc != GRADING_OK && err) {
        if (n)
            *err = errs[0];
        else
            err_set(err, rc, "", "%s", grading_strerror(rc));
    }
    return rc;
}

/* Validate a rubric and list up to max_errs errors (all of them when they fit). */
grading_err_t grading_rubric_lint_json(const char *text, size_t len, grading_error_t *errs,
                                       size_t max_errs, size_t *n_errs)
{
    grading_rubric_t *r = NULL;
    size_t n = 0;
    grading_error_t one;
    if (max_errs == 0) {
        errs = &one;
        max_errs = 1;
    }
    grading_err_t rc = load_json(text, len, &r, errs, max_errs, &n);
    grading_rubric_destroy(&r);
    if (n_errs)
        *n_errs = n;
    return rc;
}

/* Load a rubric from its canonical msgpack form. */
grading_err_t grading_rubric_load_msgpack(const void *buf, size_t len, grading_rubric_t **out,
                                          grading_error_t *err)
{
    err_clear(err);
    *out = NULL;
    if (len > GRADING_RUBRIC_MAX_BYTES) {
        err_set(err, GRADING_ERR_LIMIT, "", "the rubric is %zu bytes; the limit is %u", len,
                GRADING_RUBRIC_MAX_BYTES);
        return GRADING_ERR_LIMIT;
    }
    if (!buf || !grading_msgpack_well_formed(buf, len)) {
        err_set(err, GRADING_ERR_INVALID_RUBRIC, "",
                "the rubric is not one complete msgpack value");
        return GRADING_ERR_INVALID_RUBRIC;
    }
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    msgpack_unpack_return ur = msgpack_unpack_next(&up, buf, len, &off);
    if (ur != MSGPACK_UNPACK_SUCCESS || off != len) {
        msgpack_unpacked_destroy(&up);
        err_set(err, GRADING_ERR_INVALID_RUBRIC, "",
                "the rubric is not one complete msgpack value");
        return GRADING_ERR_INVALID_RUBRIC;
    }
    char why[128] = "";
    json_t *root = mp_to_json(&up.data, 0, why, sizeof why);
    msgpack_unpacked_destroy(&up);
    if (!root) {
        err_set(err, GRADING_ERR_INVALID_RUBRIC, "", "the rubric cannot be read: %s", why);
        return GRADING_ERR_INVALID_RUBRIC;
    }
    grading_error_t errs[1];
    memset(errs, 0, sizeof errs);
    size_t n = 0;
    grading_err_t rc = compile(root, out, errs, 1, &n);
    json_decref(root);
    if (rc != GRADING_OK && err) {
        if (n)
            *err = errs[0];
        else
            err_set(err, rc, "", "%s", grading_strerror(rc));
    }
    return rc;
}

void grading_rubric_destroy(grading_rubric_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    grading_rubric_t *r = *self_p;
    for (size_t i = 0; i < r->n_patterns; i++)
        pcre2_code_free(r->patterns[i]);
    free(r->patterns);
    pcre2_match_context_free(r->pcre_mctx);
    free(r->canonical);
    stem_table_free(r->known_stems);
    for (size_t i = 0; r->items && i < r->n_items; i++)
        lexicon_free(r->items[i].lexicon);
    arena_free(&r->arena);
    free(r);
    *self_p = NULL;
}

const char *grading_rubric_id(const grading_rubric_t *r)
{
    return r->id;
}

const char *grading_rubric_hash(const grading_rubric_t *r)
{
    return r->hash;
}

const void *grading_rubric_canonical(const grading_rubric_t *r, size_t *len)
{
    if (len)
        *len = r->canonical_len;
    return r->canonical;
}

size_t grading_rubric_memory(const grading_rubric_t *r)
{
    size_t n = sizeof *r + r->arena.total + r->canonical_len + stem_table_memory(r->known_stems);
    for (size_t i = 0; i < r->n_items; i++)
        n += lexicon_memory(r->items[i].lexicon);
    for (size_t i = 0; i < r->n_patterns; i++) {
        size_t sz = 0;
        pcre2_pattern_info(r->patterns[i], PCRE2_INFO_SIZE, &sz);
        n += sz;
        if (pcre2_pattern_info(r->patterns[i], PCRE2_INFO_JITSIZE, &sz) == 0)
            n += sz; /* the JIT's machine code */
    }
    return n;
}
