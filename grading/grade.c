/*
 * grade.c - grading_grade: responses in, result map and digest out.
 *
 * The call owns one arena; every item scorer writes its points, status and
 * trace into an item_result_t; aggregate.c turns those into sections, total,
 * band; redflag.c evaluates the red flags; then the result tree is packed
 * (map keys sorted bytewise, arrays in rubric order) and digested:
 *
 *   digest = SHA-256( msgpack [ engine, rubric_hash, responses, result ] )
 *
 * where responses is the normalised responses map (keys sorted, float64 as
 * its %.15g decimal string) and result is the result map without "digest".
 * The digest is then added to the map. Nothing here reads a clock, the
 * locale or global state, so two processes produce the same bytes.
 */
#include "internal.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

stemmer_box_t *ctx_stemmer(grade_ctx_t *c)
{
    if (!c->stemmer) {
        c->stemmer = stemmer_box_new();
        stemmer_box_use(c->stemmer, c->r->known_stems);
    }
    return c->stemmer;
}

bool mp_str(const msgpack_object *o, const char **s, size_t *len)
{
    if (!o || o->type != MSGPACK_OBJECT_STR)
        return false;
    *s = o->via.str.ptr;
    *len = o->via.str.size;
    return true;
}

tnode_t *trace_rule(grade_ctx_t *c, tnode_t *trace, const char *rule, bool matched,
                    int64_t points_milli, const char *detail)
{
    tnode_t *m = t_map(c->a);
    /* keys in sorted order: each goes after the last */
    t_put(c->a, m, "detail", t_ref(c->a, detail));
    t_put(c->a, m, "matched", t_bool(c->a, matched));
    t_put(c->a, m, "points_milli", t_int(c->a, points_milli));
    t_put(c->a, m, "rule", t_ref(c->a, rule));
    t_push(c->a, trace, m);
    return m;
}

/* Evidence: {"start": byte offset, "end": byte offset, "text": original bytes}
 * (text cut at 200 bytes on a UTF-8 boundary). */
void trace_evidence(grade_ctx_t *c, tnode_t *rule, const char *text, size_t start, size_t end)
{
    if (!rule)
        return;
    tnode_t *ev = t_get(rule, "evidence");
    if (!ev) {
        ev = t_arr(c->a);
        t_put(c->a, rule, "evidence", ev);
    }
    tnode_t *e = t_map(c->a);
    t_put(c->a, e, "end", t_int(c->a, (int64_t)end));
    t_put(c->a, e, "start", t_int(c->a, (int64_t)start));
    size_t n = end - start;
    if (n > 200) {
        n = 200;
        while (n > 0 && ((unsigned char)text[start + n] & 0xc0) == 0x80)
            n--;
    }
    t_put(c->a, e, "text", t_refn(c->a, text + start, n));
    t_push(c->a, ev, e);
}

/* rubric_find_item without measuring every item id: every response is
 * looked up on every call. Item ids are non-empty and hold no NUL, so an id
 * that is empty or holds one names no item, and for any other strncmp stops
 * within both strings. */
static const item_t *find_item(const grading_rubric_t *r, const char *id, size_t len)
{
    if (len == 0 || memchr(id, '\0', len))
        return NULL;
    for (size_t i = 0; i < r->n_items; i++) {
        const char *s = r->items[i].id;
        if (s[0] == id[0] && strncmp(s, id, len) == 0 && s[len] == '\0')
            return &r->items[i];
    }
    return NULL;
}

static const char *status_name(item_status_t s)
{
    return s == ST_SCORED ? "scored" : s == ST_UNANSWERED ? "unanswered" : "pending";
}

static grading_err_t grade_items(grade_ctx_t *c, const msgpack_object **resp_for,
                                 item_result_t *res, grading_error_t *err)
{
    const grading_rubric_t *r = c->r;
    for (size_t i = 0; i < r->n_items; i++) {
        const item_t *it = &r->items[i];
        item_result_t *ir = &res[i];
        ir->trace = t_arr(c->a);
        ir->detail = t_map(c->a);
        size_t ne = it->n_elements ? it->n_elements : 1;
        ir->elem_matched = arena_alloc(c->a, ne * sizeof *ir->elem_matched);
        ir->elem_points = arena_alloc(c->a, ne * sizeof *ir->elem_points);
        ir->elem_evidence = arena_alloc(c->a, ne * sizeof *ir->elem_evidence);
        if (c->a->oom)
            return GRADING_ERR_NOMEM;
        const char *path = arena_printf(c->a, "responses.%s", it->id);
        grading_err_t rc = item_ops_for(it->type)->grade(c, it, resp_for[i], path, ir, err);
        if (rc != GRADING_OK)
            return rc;
        if (ctx_over_budget(c)) {
            if (c->budget_pattern)
                err_set(err, GRADING_ERR_LIMIT, path,
                        "grading needs more than %u matching steps; the limit is %u (pattern %s "
                        "was matching when they ran out)",
                        GRADING_WORK_BUDGET, GRADING_WORK_BUDGET, c->budget_pattern);
            else
                err_set(err, GRADING_ERR_LIMIT, path,
                        "grading needs more than %u matching steps; the limit is %u",
                        GRADING_WORK_BUDGET, GRADING_WORK_BUDGET);
            return GRADING_ERR_LIMIT;
        }
        if (ir->status == ST_UNANSWERED || ir->status == ST_PENDING)
            ir->earned_milli = ir->status == ST_UNANSWERED ? 0 : ir->earned_milli;
        if (ir->earned_milli < 0)
            ir->earned_milli = 0;
        if (ir->earned_milli > it->points_milli)
            ir->earned_milli = it->points_milli;
        if (c->a->oom)
            return GRADING_ERR_NOMEM;
    }
    return GRADING_OK;
}

static tnode_t *build_result(grade_ctx_t *c, const item_result_t *res, const aggregate_t *ag,
                             tnode_t *flags, const char *decision)
{
    const grading_rubric_t *r = c->r;
    arena_t *a = c->a;
    /* keys in sorted order: each goes after the last */
    tnode_t *m = t_map_n(a, 9);
    t_put(a, m, "band", t_ref(a, ag->band->id));
    t_put(a, m, "decision", t_ref(a, decision));
    t_put(a, m, "engine", t_ref(a, GRADING_ENGINE));
    tnode_t *items = t_arr(a);
    for (size_t i = 0; i < r->n_items; i++) {
        const item_t *it = &r->items[i];
        tnode_t *im = t_map_n(a, 10);
        t_put(a, im, "detail", res[i].detail);
        t_put(a, im, "id", t_ref(a, it->id));
        t_put(a, im, "max_milli", t_int(a, it->points_milli));
        t_put(a, im, "percent_bp", t_int(a, item_percent_bp(it, &res[i])));
        t_put(a, im, "points_milli", t_int(a, res[i].earned_milli));
        t_put(a, im, "section", t_ref(a, r->sections[it->section].id));
        t_put(a, im, "status", t_ref(a, status_name(res[i].status)));
        t_put(a, im, "trace", res[i].trace);
        t_put(a, im, "type", t_ref(a, item_type_name(it->type)));
        t_put(a, im, "weight_milli", t_int(a, it->weight_milli));
        t_push(a, items, im);
    }
    t_put(a, m, "items", items);
    t_put(a, m, "red_flags", flags);
    tnode_t *rub = t_map(a);
    t_put(a, rub, "hash", t_ref(a, r->hash));
    t_put(a, rub, "id", t_ref(a, r->id));
    t_put(a, rub, "version", t_ref(a, r->version));
    t_put(a, m, "rubric", rub);
    tnode_t *secs = t_arr(a);
    for (size_t s = 0; s < r->n_sections; s++) {
        tnode_t *sm = t_map(a);
        t_put(a, sm, "id", t_ref(a, r->sections[s].id));
        t_put(a, sm, "max_milli", t_int(a, ag->section_max[s]));
        t_put(a, sm, "percent_bp", t_int(a, ag->section_bp[s]));
        t_put(a, sm, "points_milli", t_int(a, ag->section_points[s]));
        t_put(a, sm, "status", t_ref(a, ag->section_pending[s] ? "pending" : "complete"));
        t_put(a, sm, "weight_milli", t_int(a, r->sections[s].weight_milli));
        t_push(a, secs, sm);
    }
    t_put(a, m, "sections", secs);
    t_put(a, m, "status", t_ref(a, ag->pending ? "pending" : "complete"));
    tnode_t *tot = t_map(a);
    t_put(a, tot, "max_milli", t_int(a, ag->total_max));
    t_put(a, tot, "percent_bp", t_int(a, ag->total_bp));
    t_put(a, tot, "points_milli", t_int(a, ag->total_points));
    t_put(a, m, "total", tot);
    return m;
}

/* Pack result (a map) once, with "digest" in its sorted place, and digest it.
 *
 * The digest input is [engine, rubric hash, responses, result-without-digest]:
 * its head (up to the result's map header) is packed on its own; the result's
 * entries are packed straight into out->data around a 73-byte hole where the
 * "digest" entry goes, and the hash streams head, the entries before the hole
 * and the entries after it, so nothing is packed or copied twice. */
static grading_err_t pack_and_digest(grade_ctx_t *c, const msgpack_object *responses,
                                     tnode_t *result, grading_result_t *out)
{
    grading_err_t rc = GRADING_ERR_NOMEM;
    tbuf_t head = {0}, body = {0};
    tnode_t *resp = responses && responses->type == MSGPACK_OBJECT_MAP
                        ? responses_normalize(c->a, responses, 0)
                        : t_map(c->a);
    if (c->a->oom || !resp)
        goto out;
    tbuf_reserve(&head, 4096);
    tbuf_pack_array(&head, 4);
    tbuf_pack_str(&head, GRADING_ENGINE, strlen(GRADING_ENGINE));
    tbuf_pack_str(&head, c->r->hash, 64);
    t_pack(resp, &head);
    tbuf_pack_map(&head, result->n);
    /* out->data: map header (n + 1), entries sorting before "digest", the
     * digest entry, the rest */
    tbuf_reserve(&body, 65536);
    tbuf_pack_map(&body, result->n + 1);
    size_t first = body.len, i = 0;
    for (; i < result->n && strcmp(result->keys[i].s, "digest") < 0; i++) {
        tbuf_pack_str(&body, result->keys[i].s, result->keys[i].len);
        t_pack(result->kids[i], &body);
    }
    size_t hole = body.len;
    static const char ZEROS[64];
    tbuf_pack_str(&body, "digest", 6);
    size_t hex_at = body.len + 2; /* after the str8 header of 64 digits */
    tbuf_pack_str(&body, ZEROS, 64);
    size_t rest = body.len;
    for (; i < result->n; i++) {
        tbuf_pack_str(&body, result->keys[i].s, result->keys[i].len);
        t_pack(result->kids[i], &body);
    }
    if (head.oom || body.oom)
        goto out;
    sha256_t *h = sha256_begin();
    if (!h)
        goto out;
    sha256_update(h, head.data, head.len);
    sha256_update(h, body.data + first, hole - first);
    sha256_update(h, body.data + rest, body.len - rest);
    if (!sha256_end(h, out->digest))
        goto out;
    memcpy(body.data + hex_at, out->digest, 64);
    out->data = body.data;
    out->len = body.len;
    body.data = NULL;
    rc = GRADING_OK;
out:
    tbuf_free(&head);
    tbuf_free(&body);
    return rc;
}

/* Grade responses against rubric (see grading.h). */
grading_err_t grading_grade(const grading_rubric_t *r, const msgpack_object *responses,
                            grading_result_t *out, grading_error_t *err)
{
    err_clear(err);
    memset(out, 0, sizeof *out);
    if (!r) {
        err_set(err, GRADING_ERR_INVALID_RUBRIC, "", "no rubric");
        return GRADING_ERR_INVALID_RUBRIC;
    }
    if (responses && responses->type != MSGPACK_OBJECT_MAP &&
        responses->type != MSGPACK_OBJECT_NIL) {
        err_set(err, GRADING_ERR_INVALID_RESPONSE, "responses",
                "responses are a map from item id to response");
        return GRADING_ERR_INVALID_RESPONSE;
    }
    arena_t arena = {0};
    grade_ctx_t c = {.r = r, .a = &arena};
    grading_err_t rc = GRADING_OK;
    const msgpack_object **resp_for = arena_alloc(&arena, r->n_items * sizeof *resp_for);
    item_result_t *res = arena_alloc(&arena, r->n_items * sizeof *res);
    if (!resp_for || !res) {
        rc = GRADING_ERR_NOMEM;
        goto done;
    }
    uint32_t nresp =
        responses && responses->type == MSGPACK_OBJECT_MAP ? responses->via.map.size : 0;
    if (nresp > GRADING_RESPONSES_MAX) {
        err_set(err, GRADING_ERR_LIMIT, "responses", "%u responses; the limit is %d", nresp,
                GRADING_RESPONSES_MAX);
        rc = GRADING_ERR_LIMIT;
        goto done;
    }
    for (uint32_t k = 0; k < nresp; k++) {
        const msgpack_object_kv *kv = &responses->via.map.ptr[k];
        const char *key;
        size_t klen;
        if (!mp_str(&kv->key, &key, &klen)) {
            err_set(err, GRADING_ERR_INVALID_RESPONSE, "responses",
                    "response keys are item ids (strings)");
            rc = GRADING_ERR_INVALID_RESPONSE;
            goto done;
        }
        const item_t *it = find_item(r, key, klen);
        if (!it) {
            char path[160];
            snprintf(path, sizeof path, "responses.%.*s", (int)(klen > 128 ? 128 : klen), key);
            err_set(err, GRADING_ERR_INVALID_RESPONSE, path, "rubric %s has no item \"%.*s\"",
                    r->id, (int)(klen > 128 ? 128 : klen), key);
            rc = GRADING_ERR_INVALID_RESPONSE;
            goto done;
        }
        size_t idx = (size_t)(it - r->items);
        if (resp_for[idx]) {
            err_set(err, GRADING_ERR_INVALID_RESPONSE, arena_printf(&arena, "responses.%s", it->id),
                    "the item is answered twice");
            rc = GRADING_ERR_INVALID_RESPONSE;
            goto done;
        }
        resp_for[idx] = &kv->val;
    }
    rc = grade_items(&c, resp_for, res, err);
    if (rc != GRADING_OK)
        goto done;
    aggregate_t ag;
    if (!aggregate_compute(&c, res, &ag)) {
        rc = GRADING_ERR_NOMEM;
        goto done;
    }
    /* red flags */
    tnode_t *flags = t_arr(&arena);
    bool disqualified = false, review = false;
    for (size_t f = 0; f < r->n_flags; f++) {
        const red_flag_t *fl = &r->flags[f];
        tnode_t *fm = t_map(&arena);
        tnode_t *ev = t_arr(&arena);
        bool pending = false;
        bool fired = redflag_eval(&c, fl->expr, res, &ag, ev, &pending);
        const char *state = pending ? "pending" : fired ? "fired" : "clear";
        if (pending)
            fired = false;
        /* keys in sorted order: each goes after the last */
        t_put(&arena, fm, "effect", t_ref(&arena, fl->effect));
        t_put(&arena, fm, "evidence", ev);
        t_put(&arena, fm, "fired", t_bool(&arena, fired));
        t_put(&arena, fm, "id", t_ref(&arena, fl->id));
        t_put(&arena, fm, "reason", t_ref(&arena, fl->reason));
        t_put(&arena, fm, "state", t_ref(&arena, state));
        t_put(&arena, fm, "when", t_ref(&arena, fl->when));
        t_push(&arena, flags, fm);
        if (fired && strcmp(fl->effect, "disqualify") == 0)
            disqualified = true;
        if (fired && strcmp(fl->effect, "review") == 0)
            review = true;
    }
    const char *decision = ag.band->decision;
    if (disqualified)
        decision = "reject";
    else if (ag.pending)
        decision = "pending";
    else if (review && strcmp(decision, "advance") == 0)
        decision = "review";
    tnode_t *result = build_result(&c, res, &ag, flags, decision);
    /* The result is packed once, without "digest": its entries (keys sorted)
     * go to body, and split marks where "digest" sorts among them. The
     * digest input is [engine, rubric hash, responses, result-without-digest]
     * and the final bytes splice "digest" in at split. */
    rc = pack_and_digest(&c, responses, result, out);
    if (rc != GRADING_OK)
        goto done;
done:
    if (rc == GRADING_ERR_NOMEM)
        err_set(err, rc, "", "out of memory while grading");
    if (c.match_data)
        pcre2_match_data_free(c.match_data);
    if (c.match_ctx)
        pcre2_match_context_free(c.match_ctx);
    stemmer_box_free(c.stemmer);
    arena_free(&arena);
    if (rc != GRADING_OK)
        memset(out->digest, 0, sizeof out->digest);
    return rc;
}

void grading_result_free(grading_result_t *res)
{
    if (!res)
        return;
    free(res->data);
    res->data = NULL;
    res->len = 0;
}
