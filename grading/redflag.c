/*
 * redflag.c - the red-flag expression language.
 *
 *   expr   := or
 *   or     := and ("or" and)*
 *   and    := unary ("and" unary)*
 *   unary  := "not" unary | cmp
 *   cmp    := value [("<" | "<=" | ">" | ">=" | "==" | "!=") value]
 *   value  := number | "true" | "false" | "(" expr ")" | call
 *   call   := name "(" [item ["." element] | section] ")"
 *           | "count" "(" expr ("," expr)* ")"
 *
 * Boolean functions: missing(item.element), matched(item.element),
 * missing(item) (earned nothing), answered(item), unanswered(item),
 * disagreement(item) (raters differ by more than the item's gap).
 * Numeric functions: points(item[.element]) in points, percent(item),
 * section(id) and total() in percent; count(cond, ...) the number of
 * conditions that hold; for rating items rating(item) (the aggregate, to 3
 * places), min_rating(item) and max_rating(item) (the lowest and highest
 * single rating: "a rater gave 1" is min_rating(q1) <= 1 whatever the
 * median). Numbers are exact decimals.
 *
 * Expressions are parsed and type-checked when the rubric loads (an unknown
 * item or element is a rubric error with its path); evaluation never fails.
 * Every call evaluated leaves a line of evidence ({"term", "value"} plus the
 * element's text spans when it matched), so a disqualification shows why.
 */
#include "internal.h"

#include <string.h>

typedef enum {
    E_OR,
    E_AND,
    E_NOT,
    E_CMP,
    E_NUM,
    E_BOOL,
    E_CALL,
} ekind_t;

typedef enum {
    F_MISSING,
    F_MATCHED,
    F_ANSWERED,
    F_UNANSWERED,
    F_DISAGREEMENT,
    F_POINTS,
    F_PERCENT,
    F_SECTION,
    F_TOTAL,
    F_COUNT,
    F_RATING,
    F_MIN_RATING,
    F_MAX_RATING,
} fn_t;

#define COUNT_MAX_ARGS 64

static const struct {
    const char *name;
    fn_t fn;
    bool numeric;
    int arg; /* 0 none, 1 item[.element], 2 item, 3 section, 4 conditions, 5 rating item */
} FUNCS[] = {
    {"missing", F_MISSING, false, 1},
    {"matched", F_MATCHED, false, 1},
    {"answered", F_ANSWERED, false, 2},
    {"unanswered", F_UNANSWERED, false, 2},
    {"disagreement", F_DISAGREEMENT, false, 2},
    {"points", F_POINTS, true, 1},
    {"percent", F_PERCENT, true, 2},
    {"section", F_SECTION, true, 3},
    {"total", F_TOTAL, true, 0},
    {"count", F_COUNT, true, 4},
    {"rating", F_RATING, true, 5},
    {"min_rating", F_MIN_RATING, true, 5},
    {"max_rating", F_MAX_RATING, true, 5},
};

struct expr {
    ekind_t kind;
    bool numeric;
    expr_t *l, *r;
    char cmp[3];
    dec_t num;
    fn_t fn;
    size_t item, section;
    int elem; /* -1 = the whole item */
    const char *text;
    expr_t **args; /* count() */
    size_t n_args;
};

typedef struct parser {
    loader_t *L;
    const char *s, *path;
    size_t pos, len;
    bool failed;
} parser_t;

static void perr(parser_t *p, const char *msg)
{
    if (!p->failed)
        ld_error(p->L, p->path, "%s at column %zu", msg, p->pos + 1);
    p->failed = true;
}

static void skip_ws(parser_t *p)
{
    while (p->pos < p->len && (p->s[p->pos] == ' ' || p->s[p->pos] == '\t' || p->s[p->pos] == '\n'))
        p->pos++;
}

static bool is_id(char c, bool first)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
           (!first && ((c >= '0' && c <= '9') || c == '-'));
}

/* Read an identifier; returns its length (0 if none). */
static size_t ident(parser_t *p, const char **start)
{
    skip_ws(p);
    size_t b = p->pos;
    if (p->pos < p->len && is_id(p->s[p->pos], true)) {
        p->pos++;
        while (p->pos < p->len && is_id(p->s[p->pos], false))
            p->pos++;
    }
    *start = p->s + b;
    return p->pos - b;
}

static bool keyword(parser_t *p, const char *kw)
{
    skip_ws(p);
    size_t n = strlen(kw);
    if (p->pos + n <= p->len && memcmp(p->s + p->pos, kw, n) == 0 &&
        (p->pos + n == p->len || !is_id(p->s[p->pos + n], false))) {
        p->pos += n;
        return true;
    }
    return false;
}

static bool punct(parser_t *p, char c)
{
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == c) {
        p->pos++;
        return true;
    }
    return false;
}

static expr_t *node(parser_t *p, ekind_t k)
{
    expr_t *e = arena_alloc(&p->L->r->arena, sizeof *e);
    if (!e) {
        p->failed = true;
        return NULL;
    }
    e->kind = k;
    e->elem = -1;
    return e;
}

static expr_t *parse_or(parser_t *p, int depth);

static expr_t *parse_call(parser_t *p, const char *name, size_t nlen)
{
    const grading_rubric_t *r = p->L->r;
    int f = -1;
    for (size_t i = 0; i < sizeof FUNCS / sizeof FUNCS[0]; i++)
        if (strlen(FUNCS[i].name) == nlen && memcmp(FUNCS[i].name, name, nlen) == 0)
            f = (int)i;
    if (f < 0) {
        perr(p, arena_printf(p->L->ta, "unknown function \"%.*s\"", (int)nlen, name));
        return NULL;
    }
    expr_t *e = node(p, E_CALL);
    if (!e)
        return NULL;
    e->fn = FUNCS[f].fn;
    e->numeric = FUNCS[f].numeric;
    size_t arg_start = p->pos;
    if (FUNCS[f].arg == 0) {
        if (!punct(p, ')'))
            perr(p, "expected )");
    } else if (FUNCS[f].arg == 4) {
        e->args = arena_alloc(&p->L->r->arena, COUNT_MAX_ARGS * sizeof *e->args);
        if (!e->args) {
            p->failed = true;
            return NULL;
        }
        do {
            if (e->n_args == COUNT_MAX_ARGS) {
                perr(p, "count() takes at most 64 conditions");
                return NULL;
            }
            expr_t *a = parse_or(p, 1);
            if (!a || p->failed)
                return NULL;
            if (a->numeric) {
                perr(p, "count() counts conditions, found a number");
                return NULL;
            }
            e->args[e->n_args++] = a;
        } while (punct(p, ','));
        if (!punct(p, ')'))
            perr(p, "expected , or )");
    } else {
        const char *a;
        size_t alen = ident(p, &a);
        if (!alen) {
            perr(p, "expected an item or section id");
            return NULL;
        }
        if (FUNCS[f].arg == 3) {
            bool found = false;
            for (size_t s = 0; s < r->n_sections; s++)
                if (strlen(r->sections[s].id) == alen && memcmp(r->sections[s].id, a, alen) == 0) {
                    e->section = s;
                    found = true;
                }
            if (!found)
                perr(p, arena_printf(p->L->ta, "no section \"%.*s\"", (int)alen, a));
        } else {
            const item_t *it = rubric_find_item(r, a, alen);
            if (!it) {
                perr(p, arena_printf(p->L->ta, "no item \"%.*s\"", (int)alen, a));
                return NULL;
            }
            e->item = (size_t)(it - r->items);
            if (FUNCS[f].arg == 5 && it->type != IT_RATING) {
                perr(p, arena_printf(p->L->ta, "%s() needs a rating item; \"%s\" is a %s item",
                                     FUNCS[f].name, it->id, item_type_name(it->type)));
                return NULL;
            }
            if (punct(p, '.')) {
                if (FUNCS[f].arg != 1) {
                    perr(p, arena_printf(p->L->ta, "%s() takes an item, not an element",
                                         FUNCS[f].name));
                    return NULL;
                }
                const char *el;
                size_t ellen = ident(p, &el);
                e->elem = ellen ? item_find_element(it, el, ellen) : -1;
                if (e->elem < 0) {
                    perr(p, arena_printf(p->L->ta, "item \"%s\" has no element \"%.*s\"", it->id,
                                         (int)ellen, el));
                    return NULL;
                }
            }
        }
        if (!punct(p, ')'))
            perr(p, "expected )");
    }
    e->text = arena_printf(&p->L->r->arena, "%.*s(%.*s)", (int)nlen, name,
                           (int)(p->pos - arg_start - 1), p->s + arg_start);
    return e;
}

static expr_t *parse_value(parser_t *p, int depth)
{
    skip_ws(p);
    if (p->failed)
        return NULL;
    if (punct(p, '(')) {
        expr_t *e = parse_or(p, depth + 1);
        if (!punct(p, ')'))
            perr(p, "expected )");
        return e;
    }
    if (p->pos < p->len && ((p->s[p->pos] >= '0' && p->s[p->pos] <= '9') || p->s[p->pos] == '-')) {
        size_t b = p->pos++;
        while (p->pos < p->len &&
               ((p->s[p->pos] >= '0' && p->s[p->pos] <= '9') || p->s[p->pos] == '.'))
            p->pos++;
        expr_t *e = node(p, E_NUM);
        if (e && !dec_parse(p->s + b, p->pos - b, &e->num))
            perr(p, "malformed number");
        if (e)
            e->numeric = true;
        return e;
    }
    if (keyword(p, "true") || keyword(p, "false")) {
        expr_t *e = node(p, E_BOOL);
        if (e)
            e->num.m = p->s[p->pos - 1] == 'e' && p->s[p->pos - 2] == 'u';
        return e;
    }
    const char *name;
    size_t nlen = ident(p, &name);
    if (!nlen) {
        perr(p, "expected a value");
        return NULL;
    }
    if (!punct(p, '(')) {
        perr(p, arena_printf(p->L->ta, "expected ( after \"%.*s\"", (int)nlen, name));
        return NULL;
    }
    return parse_call(p, name, nlen);
}

static expr_t *parse_cmp(parser_t *p, int depth)
{
    expr_t *l = parse_value(p, depth);
    skip_ws(p);
    static const char *const ops[] = {"<=", ">=", "==", "!=", "<", ">", NULL};
    for (size_t i = 0; ops[i]; i++) {
        size_t n = strlen(ops[i]);
        if (p->pos + n <= p->len && memcmp(p->s + p->pos, ops[i], n) == 0) {
            p->pos += n;
            expr_t *r = parse_value(p, depth);
            expr_t *e = node(p, E_CMP);
            if (!e || !l || !r)
                return NULL;
            if (!l->numeric || !r->numeric)
                perr(p, "a comparison needs numbers on both sides");
            memcpy(e->cmp, ops[i], n);
            e->l = l;
            e->r = r;
            return e;
        }
    }
    return l;
}

static expr_t *parse_unary(parser_t *p, int depth)
{
    if (depth > 32) {
        perr(p, "expression nested too deeply");
        return NULL;
    }
    if (keyword(p, "not")) {
        expr_t *e = node(p, E_NOT);
        if (!e)
            return NULL;
        e->l = parse_unary(p, depth + 1);
        if (e->l && e->l->numeric)
            perr(p, "not needs a condition, found a number");
        return e;
    }
    return parse_cmp(p, depth);
}

static expr_t *parse_and(parser_t *p, int depth)
{
    expr_t *l = parse_unary(p, depth);
    while (!p->failed && keyword(p, "and")) {
        expr_t *e = node(p, E_AND);
        if (!e)
            return NULL;
        e->l = l;
        e->r = parse_unary(p, depth);
        if ((l && l->numeric) || (e->r && e->r->numeric))
            perr(p, "and needs conditions, found a number");
        l = e;
    }
    return l;
}

static expr_t *parse_or(parser_t *p, int depth)
{
    if (depth > 32) {
        perr(p, "expression nested too deeply");
        return NULL;
    }
    expr_t *l = parse_and(p, depth);
    while (!p->failed && keyword(p, "or")) {
        expr_t *e = node(p, E_OR);
        if (!e)
            return NULL;
        e->l = l;
        e->r = parse_and(p, depth);
        if ((l && l->numeric) || (e->r && e->r->numeric))
            perr(p, "or needs conditions, found a number");
        l = e;
    }
    return l;
}

/* Parse and type-check src; errors are reported at path. */
expr_t *redflag_compile(loader_t *L, const char *src, const char *path)
{
    parser_t p = {.L = L, .s = src, .len = strlen(src), .path = path};
    expr_t *e = parse_or(&p, 0);
    skip_ws(&p);
    if (!p.failed && p.pos != p.len)
        perr(&p, "unexpected text");
    if (!p.failed && e && e->numeric)
        perr(&p, "a red flag is a condition, not a number");
    return p.failed ? NULL : e;
}

/* ---- evaluation ---- */

typedef struct val {
    bool b;
    dec_t n;
} val_t;

/* {"term", "value"} and the spans: the term's text lives in the rubric,
 * value is a literal or vlen bytes the caller formatted (copied here). */
static void evidence(grade_ctx_t *c, tnode_t *ev, const expr_t *e, const char *value, size_t vlen,
                     bool copy, tnode_t *spans)
{
    tnode_t *m = t_map(c->a);
    /* keys in sorted order: each goes after the last */
    if (spans)
        t_put(c->a, m, "evidence", spans);
    t_put(c->a, m, "term", t_ref(c->a, e->text));
    t_put(c->a, m, "value", copy ? t_str(c->a, value, vlen) : t_refn(c->a, value, vlen));
    t_push(c->a, ev, m);
}

static void evidence_bool(grade_ctx_t *c, tnode_t *ev, const expr_t *e, bool b, tnode_t *spans)
{
    evidence(c, ev, e, b ? "true" : "false", b ? 4 : 5, false, spans);
}

static val_t eval(grade_ctx_t *c, const expr_t *e, const item_result_t *items,
                  const aggregate_t *ag, tnode_t *ev, bool *pending)
{
    val_t v = {false, {0, 0}};
    if (!e)
        return v;
    switch (e->kind) {
    case E_OR: {
        val_t a = eval(c, e->l, items, ag, ev, pending), b = eval(c, e->r, items, ag, ev, pending);
        v.b = a.b || b.b;
        return v;
    }
    case E_AND: {
        val_t a = eval(c, e->l, items, ag, ev, pending), b = eval(c, e->r, items, ag, ev, pending);
        v.b = a.b && b.b;
        return v;
    }
    case E_NOT:
        v.b = !eval(c, e->l, items, ag, ev, pending).b;
        return v;
    case E_NUM:
        v.n = e->num;
        return v;
    case E_BOOL:
        v.b = e->num.m != 0;
        return v;
    case E_CMP: {
        val_t a = eval(c, e->l, items, ag, ev, pending), b = eval(c, e->r, items, ag, ev, pending);
        int k = dec_cmp(a.n, b.n);
        v.b = e->cmp[0] == '<'   ? (e->cmp[1] == '=' ? k <= 0 : k < 0)
              : e->cmp[0] == '>' ? (e->cmp[1] == '=' ? k >= 0 : k > 0)
              : e->cmp[0] == '=' ? k == 0
                                 : k != 0;
        return v;
    }
    case E_CALL:
        break;
    }
    const grading_rubric_t *r = c->r;
    const item_result_t *ir = NULL;
    if (e->fn == F_COUNT) {
        int64_t n = 0;
        for (size_t k = 0; k < e->n_args; k++)
            n += eval(c, e->args[k], items, ag, ev, pending).b;
        v.n = dec_from_int(n);
        char cb[32];
        size_t cl = dec_format(v.n, cb, sizeof cb);
        evidence(c, ev, e, cb, cl < sizeof cb ? cl : sizeof cb - 1, true, NULL);
        return v;
    }
    if (e->fn != F_SECTION && e->fn != F_TOTAL) {
        ir = &items[e->item];
        if (ir->status == ST_PENDING)
            *pending = true;
    }
    char buf[80];
    tnode_t *spans = NULL;
    switch (e->fn) {
    case F_MISSING:
    case F_MATCHED: {
        bool m;
        if (e->elem >= 0) {
            m = ir->status == ST_SCORED && ir->elem_matched[e->elem];
            if (m && ir->elem_evidence[e->elem])
                spans = ir->elem_evidence[e->elem];
        } else {
            m = ir->status == ST_SCORED && ir->earned_milli > 0;
        }
        v.b = e->fn == F_MATCHED ? m : !m;
        evidence_bool(c, ev, e, v.b, spans);
        return v;
    }
    case F_ANSWERED:
    case F_UNANSWERED:
        v.b = (ir->status != ST_UNANSWERED) == (e->fn == F_ANSWERED);
        evidence_bool(c, ev, e, v.b, NULL);
        return v;
    case F_DISAGREEMENT:
        v.b = ir->disagreement;
        evidence_bool(c, ev, e, v.b, NULL);
        return v;
    case F_POINTS: {
        int64_t pm = e->elem >= 0 ? ir->elem_points[e->elem] : ir->earned_milli;
        v.n = dec_shift(dec_from_int(pm), -3);
        break;
    }
    case F_PERCENT:
        v.n = dec_shift(dec_from_int(item_percent_bp(&r->items[e->item], ir)), -2);
        break;
    case F_SECTION:
        v.n = dec_shift(dec_from_int(ag->section_bp[e->section]), -2);
        if (ag->section_pending[e->section])
            *pending = true;
        break;
    case F_TOTAL:
        v.n = dec_shift(dec_from_int(ag->total_bp), -2);
        if (ag->pending)
            *pending = true;
        break;
    case F_RATING:
        v.n = dec_shift(dec_from_int(ir->rating_agg_milli), -3);
        break;
    case F_MIN_RATING:
        v.n = dec_from_int(ir->rating_lo);
        break;
    case F_MAX_RATING:
        v.n = dec_from_int(ir->rating_hi);
        break;
    case F_COUNT:
        break;
    }
    size_t bl = dec_format(v.n, buf, sizeof buf);
    evidence(c, ev, e, buf, bl < sizeof buf ? bl : sizeof buf - 1, true, NULL);
    return v;
}

bool redflag_eval(grade_ctx_t *c, const expr_t *e, const item_result_t *items,
                  const aggregate_t *ag, tnode_t *ev, bool *pending)
{
    *pending = false;
    return eval(c, e, items, ag, ev, pending).b;
}
