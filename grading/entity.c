/*
 * entity.c - names of organisations and people, through the rubric's shared
 * alias table ("entities": ACME Inc = Acme Incorporated = ACME).
 *
 * A mention is a run of words equal, after NFKC + case fold with punctuation
 * dropped, to one of an entity's names (the longest name wins at a
 * position). "expect" lists the entities the answer must name, each earning
 * its share; "forbid" lists wrong ones (the Apex Corp slip): a forbidden
 * entity asserted in the response - not denied in its clause, as in "ACME
 * Inc, not Apex Corp" - costs forbid_penalty of the points.
 */
#include "internal.h"

#include <jansson.h>
#include <string.h>

typedef struct name_toks {
    char **w; /* folded words */
    size_t n;
} name_toks_t;

typedef struct entity_ref {
    size_t group; /* index into rubric aliases */
    name_toks_t *names;
    size_t n_names;
} entity_ref_t;

typedef struct entity_spec {
    entity_ref_t *expect, *forbid;
    size_t n_expect, n_forbid;
    int64_t forbid_penalty_milli; /* thousandths of the points */
} entity_spec_t;

static const char *const ENTITY_KEYS[] = {"expect", "forbid", "forbid_penalty", NULL};

static bool compile_refs(loader_t *L, item_t *it, json_t *obj, tnode_t *canon, const char *path,
                         const char *key, entity_ref_t **out, size_t *n, bool required,
                         const char *prefix)
{
    grading_rubric_t *r = L->r;
    size_t cnt = 0;
    char **ids = ld_strings(L, obj, canon, path, key, &cnt, required);
    *n = 0;
    *out = arena_alloc(&r->arena, (cnt + 1) * sizeof **out);
    if (!*out || !ids)
        return false;
    for (size_t i = 0; i < cnt; i++) {
        int g = -1;
        for (size_t k = 0; k < r->n_aliases; k++)
            if (strcmp(r->aliases[k].id, ids[i]) == 0)
                g = (int)k;
        if (g < 0) {
            ld_error(L, ld_path_idx(L, ld_path_key(L, path, key), i),
                     "no entity \"%s\" in the rubric's entities", ids[i]);
            continue;
        }
        entity_ref_t *e = &(*out)[(*n)++];
        e->group = (size_t)g;
        const alias_group_t *ag = &r->aliases[g];
        e->names = arena_alloc(&r->arena, ag->n * sizeof *e->names);
        for (size_t k = 0; e->names && k < ag->n; k++) {
            /* split the folded name on spaces */
            const char *f = ag->folded[k];
            name_toks_t *nt = &e->names[e->n_names];
            size_t words = 1;
            for (const char *p = f; *p; p++)
                words += *p == ' ';
            nt->w = arena_alloc(&r->arena, words * sizeof *nt->w);
            const char *s = f;
            while (nt->w && *s) {
                const char *sp = strchr(s, ' ');
                size_t l = sp ? (size_t)(sp - s) : strlen(s);
                nt->w[nt->n++] = arena_strndup(&r->arena, s, l);
                s += l + (sp ? 1 : 0);
            }
            if (nt->n)
                e->n_names++;
        }
        it->elements[it->n_elements++].id = arena_printf(&r->arena, "%s%s", prefix, ag->id);
    }
    return true;
}

static void entity_compile(loader_t *L, item_t *it, json_t *obj, tnode_t *canon, const char *path)
{
    grading_rubric_t *r = L->r;
    entity_spec_t *es = arena_alloc(&r->arena, sizeof *es);
    if (!es)
        return;
    it->spec = es;
    json_t *ex = json_object_get(obj, "expect"), *fb = json_object_get(obj, "forbid");
    size_t cap = (json_is_array(ex) ? json_array_size(ex) : 0) +
                 (json_is_array(fb) ? json_array_size(fb) : 0) + 1;
    it->elements = arena_alloc(&r->arena, cap * sizeof *it->elements);
    if (!it->elements)
        return;
    compile_refs(L, it, obj, canon, path, "expect", &es->expect, &es->n_expect, true, "");
    compile_refs(L, it, obj, canon, path, "forbid", &es->forbid, &es->n_forbid, false,
                 "forbidden_");
    es->forbid_penalty_milli = ld_scaled(L, obj, canon, path, "forbid_penalty", "1", 3, 0, 1000);
}

/* Folded words of the response with their spans (punctuation dropped). */
typedef struct fword {
    const char *w;
    size_t start, end;
} fword_t;

/* First mention of ref (longest name at each position); false if none. With
 * asserted_only, a mention denied in its clause is skipped. */
static bool find_mention(const entity_ref_t *e, const tokens_t *tk, const fword_t *fw,
                         bool asserted_only, size_t *s, size_t *en, bool *denied_seen)
{
    for (size_t i = 0; i < tk->n; i++) {
        size_t best = 0;
        for (size_t k = 0; k < e->n_names; k++) {
            const name_toks_t *nt = &e->names[k];
            if (nt->n <= best || i + nt->n > tk->n)
                continue;
            bool ok = true;
            for (size_t w = 0; ok && w < nt->n; w++)
                ok = strcmp(fw[i + w].w, nt->w[w]) == 0;
            if (ok)
                best = nt->n;
        }
        if (!best)
            continue;
        size_t a = fw[i].start, b = fw[i + best - 1].end;
        if (asserted_only && text_span_negated(tk, a, b)) {
            *denied_seen = true;
            continue;
        }
        *s = a;
        *en = b;
        return true;
    }
    return false;
}

static grading_err_t entity_grade(grade_ctx_t *c, const item_t *it, const msgpack_object *resp,
                                  const char *path, item_result_t *out, grading_error_t *err)
{
    const entity_spec_t *es = it->spec;
    const char *text;
    size_t len;
    grading_err_t rc = text_response(resp, path, &text, &len, err);
    if (rc != GRADING_OK)
        return rc;
    tokens_t tk = {0};
    if (text && !text_tokenize(c->a, NULL, text, len, &tk))
        return GRADING_ERR_NOMEM;
    if (!text || tk.n == 0) {
        out->status = ST_UNANSWERED;
        trace_rule(c, out->trace, "answer", false, 0, "no answer");
        return GRADING_OK;
    }
    out->status = ST_SCORED;
    fword_t *fw = arena_alloc(c->a, tk.n * sizeof *fw);
    if (!fw)
        return GRADING_ERR_NOMEM;
    for (size_t i = 0; i < tk.n; i++) {
        fw[i].w = text_fold(c->a, tk.v[i].norm, tk.v[i].norm_len);
        if (!fw[i].w)
            return GRADING_ERR_NOMEM;
        fw[i].start = tk.v[i].start;
        fw[i].end = tk.v[i].end;
    }
    /* Work budget: at most every name compared at every word. */
    for (size_t k = 0; k < es->n_expect + es->n_forbid; k++) {
        const entity_ref_t *ref = k < es->n_expect ? &es->expect[k] : &es->forbid[k - es->n_expect];
        c->steps += (uint64_t)tk.n * ref->n_names;
    }
    if (ctx_over_budget(c))
        return GRADING_OK; /* grade.c reports the budget */
    size_t found = 0, ei = 0;
    for (size_t k = 0; k < es->n_expect; k++, ei++) {
        size_t s = 0, e = 0;
        bool denied = false;
        bool hit = find_mention(&es->expect[k], &tk, fw, false, &s, &e, &denied);
        const alias_group_t *ag = &c->r->aliases[es->expect[k].group];
        tnode_t *rule = trace_rule(c, out->trace, it->elements[ei].id, hit, 0,
                                   hit ? arena_printf(c->a, "names %s", ag->canonical)
                                       : arena_printf(c->a, "%s not named", ag->canonical));
        if (hit)
            trace_evidence(c, rule, text, s, e);
        out->elem_matched[ei] = hit;
        found += hit;
    }
    int64_t earned = es->n_expect
                         ? fx_div_round((__int128)it->points_milli * found, (int64_t)es->n_expect)
                         : it->points_milli;
    trace_rule(c, out->trace, "expect", found > 0, earned,
               arena_printf(c->a, "%zu of %zu expected names", found, es->n_expect));
    for (size_t k = 0; k < es->n_forbid; k++, ei++) {
        size_t s = 0, e = 0;
        bool denied = false;
        bool hit = find_mention(&es->forbid[k], &tk, fw, true, &s, &e, &denied);
        const alias_group_t *ag = &c->r->aliases[es->forbid[k].group];
        int64_t pen =
            hit ? fx_div_round((__int128)it->points_milli * es->forbid_penalty_milli, 1000) : 0;
        tnode_t *rule =
            trace_rule(c, out->trace, it->elements[ei].id, hit, -pen,
                       hit      ? arena_printf(c->a, "the wrong name %s is used", ag->canonical)
                       : denied ? arena_printf(c->a, "%s is only named to deny it", ag->canonical)
                                : arena_printf(c->a, "%s not used", ag->canonical));
        if (hit)
            trace_evidence(c, rule, text, s, e);
        out->elem_matched[ei] = hit;
        out->elem_points[ei] = -pen;
        earned -= pen;
    }
    if (earned < 0)
        earned = 0;
    out->earned_milli = earned;
    return GRADING_OK;
}

const item_ops_t entity_ops = {"entity", ENTITY_KEYS, entity_compile, entity_grade};
