/*
 * test_grading_shape.c - the keyword-list shape of text elements: each of
 * its tests at its threshold and one under, evidence spans and the trace,
 * parameters and their JSON-path errors, the canonical form (present only
 * when used), the work budget, and hostile input (invalid UTF-8, 1 MiB,
 * emoji, right-to-left text).
 */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <time.h>

#include "grading/internal.h"
#include "test_grading_util.h"

/* One text item whose only element is a keyword-list shape with the given
 * parameters (a JSON fragment after "kind", may be empty). */
static grading_rubric_t *load_shape(const char *params)
{
    char j[2048];
    snprintf(j, sizeof j,
             "{\"id\":\"shp\",\"version\":\"1\",\"sections\":[{\"id\":\"s\"}],"
             "\"items\":[{\"id\":\"t\",\"type\":\"text\",\"section\":\"s\",\"points\":4,"
             "\"elements\":[{\"id\":\"body\",\"points\":4,\"phrases\":[\"renewal\"]},"
             "{\"id\":\"keyword_list\",\"points\":-8,\"negatable\":false,"
             "\"shape\":{\"kind\":\"keyword_list\"%s}}]}]}",
             params);
    return tg_load(j);
}

typedef struct graded {
    grading_result_t res;
    tg_result_t tr;
    const msgpack_object *rule; /* the keyword_list trace rule */
} graded_t;

static void grade(const grading_rubric_t *r, const char *text, size_t len, graded_t *g)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str(&pk, 1);
    msgpack_pack_str_body(&pk, "t", 1);
    msgpack_pack_str(&pk, len);
    msgpack_pack_str_body(&pk, text, len);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&up, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
    grading_error_t e;
    assert_int_equal(grading_grade(r, &up.data, &g->res, &e), GRADING_OK);
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
    tg_result_open(&g->tr, &g->res);
    const msgpack_object *trace = tg_get(tg_item(&g->tr, "t"), "trace");
    g->rule = NULL;
    for (uint32_t i = 0; trace && i < trace->via.array.size; i++)
        if (tg_streq(tg_get(&trace->via.array.ptr[i], "rule"), "keyword_list"))
            g->rule = &trace->via.array.ptr[i];
    assert_non_null(g->rule);
}

static void release(graded_t *g)
{
    tg_result_close(&g->tr);
    grading_result_free(&g->res);
}

/* The shape's verdict on text: 1 matched (and the first evidence names the
 * test `test`, when given), 0 not. */
static int verdict(const grading_rubric_t *r, const char *text, const char *test)
{
    graded_t g;
    grade(r, text, strlen(text), &g);
    int m = tg_get(g.rule, "matched")->via.boolean;
    if (m && test) {
        const msgpack_object *ev = tg_get(g.rule, "evidence");
        assert_non_null(ev);
        assert_true(tg_streq(tg_get(&ev->via.array.ptr[0], "shape"), test));
    }
    release(&g);
    return m;
}

/* Every test but one off: the test alone. */
#define ONLY_FRAGMENTS ",\"sentences\":0,\"lines\":0,\"run_chars\":0,\"content_words\":0"
#define ONLY_SENTENCES ",\"fragments\":0,\"lines\":0,\"run_chars\":0,\"content_words\":0"
#define ONLY_LINES ",\"fragments\":0,\"sentences\":0,\"run_chars\":0,\"content_words\":0"
#define ONLY_RUN ",\"fragments\":0,\"sentences\":0,\"lines\":0,\"content_words\":0"
#define ONLY_CONTENT ",\"fragments\":0,\"sentences\":0,\"lines\":0,\"run_chars\":0"

static void test_fragments_at_threshold_and_one_under(void **state)
{
    (void)state;
    grading_rubric_t *r = load_shape(ONLY_FRAGMENTS);
    assert_non_null(r);
    /* eight fragments match, seven do not */
    assert_int_equal(
        verdict(r, "kickoff, setup, training, review, QBR, NPS, churn, upsell", "fragments"), 1);
    assert_int_equal(verdict(r, "kickoff, setup, training, review, QBR, NPS, churn", NULL), 0);
    /* an inner fragment of 32 characters counts, one of 33 breaks the run */
    assert_int_equal(verdict(r, "a, b, c, 12345678901234567890123456789012, e, f, g, h", NULL), 1);
    assert_int_equal(verdict(r, "a, b, c, 123456789012345678901234567890123, e, f, g, h", NULL), 0);
    /* leading spaces do not count towards a fragment's length */
    assert_int_equal(verdict(r, "a, b, c,      12345678901234567890123456789012, e, f, g, h", NULL),
                     1);
    /* the first and the last fragment may be long: the run starts and ends inside them */
    assert_int_equal(verdict(r,
                             "We looked at many things before we decided, b, c, d, e, f, g, and "
                             "then a long closing part that goes on",
                             NULL),
                     1);
    /* a full stop or a line break ends the run */
    assert_int_equal(verdict(r, "a, b, c, d. e, f, g, h", NULL), 0);
    assert_int_equal(verdict(r, "a, b, c, d\ne, f, g, h", NULL), 0);
    /* an empty fragment (",,") ends it too */
    assert_int_equal(verdict(r, "a, b, c, d,, e, f, g, h", NULL), 0);
    grading_rubric_destroy(&r);
    /* the parameters move the thresholds */
    r = load_shape(ONLY_FRAGMENTS ",\"fragments\":3,\"fragment_chars\":5");
    assert_non_null(r);
    assert_int_equal(verdict(r, "x, abcde, y", NULL), 1);
    assert_int_equal(verdict(r, "x, abcdef, y", NULL), 0);
    assert_int_equal(verdict(r, "x, y", NULL), 0);
    grading_rubric_destroy(&r);
}

static void test_sentences_at_threshold_and_one_under(void **state)
{
    (void)state;
    grading_rubric_t *r = load_shape(ONLY_SENTENCES);
    assert_non_null(r);
    assert_int_equal(
        verdict(r, "Kickoff. Setup. Training! Review? QBR. NPS. Churn. Upsell.", "sentences"), 1);
    assert_int_equal(verdict(r, "Kickoff. Setup. Training! Review? QBR. NPS. Churn.", NULL), 0);
    /* 20 characters after the leading space count, 21 break the run */
    assert_int_equal(verdict(r, "A. B. C. 12345678901234567890. E. F. G. H.", NULL), 1);
    assert_int_equal(verdict(r, "A. B. C. 123456789012345678901. E. F. G. H.", NULL), 0);
    /* a line break between sentences ends the run */
    assert_int_equal(verdict(r, "A. B. C. D.\nE. F. G. H.", NULL), 0);
    grading_rubric_destroy(&r);
}

static void test_lines_at_threshold_and_one_under(void **state)
{
    (void)state;
    grading_rubric_t *r = load_shape(ONLY_LINES);
    assert_non_null(r);
    assert_int_equal(
        verdict(r, "kickoff\nsetup\ntraining call\nreview\nQBR\nNPS\nchurn risk\nupsell", "lines"),
        1);
    assert_int_equal(
        verdict(r, "kickoff\nsetup\ntraining call\nreview\nQBR\nNPS\nchurn risk", NULL), 0);
    /* four words to a line, or a bullet and four words; five words are a sentence */
    assert_int_equal(verdict(r, "a b c d\n- a b c d\n\xe2\x80\xa2 a\n* b\nc\nd\ne\nf", NULL), 1);
    assert_int_equal(verdict(r, "a b c d e\nb\nc\nd\ne\nf\ng\nh", NULL), 0);
    assert_int_equal(verdict(r, "a\nb\nc\nd\ne\nf\ng\nh i j k l", NULL), 0);
    /* a full stop on a line, or a blank line, ends the run */
    assert_int_equal(verdict(r, "a\nb\nc\nd.\ne\nf\ng\nh", NULL), 0);
    assert_int_equal(verdict(r, "a\nb\nc\nd\n\ne\nf\ng\nh", NULL), 0);
    grading_rubric_destroy(&r);
}

static void test_run_at_threshold_and_one_under(void **state)
{
    (void)state;
    grading_rubric_t *r = load_shape(ONLY_RUN);
    assert_non_null(r);
    char text[512];
    memset(text, 'x', 400);
    text[400] = 0;
    assert_int_equal(verdict(r, text, "run"), 1);
    text[399] = 0;
    assert_int_equal(verdict(r, text, NULL), 0);
    /* characters, not bytes: 399 two-byte letters are one under */
    char wide[1024];
    for (size_t i = 0; i < 399; i++)
        memcpy(wide + 2 * i, "\xc3\xa9", 2);
    wide[798] = 0;
    assert_int_equal(verdict(r, wide, NULL), 0);
    memcpy(wide + 798, "\xc3\xa9", 3);
    assert_int_equal(verdict(r, wide, "run"), 1);
    grading_rubric_destroy(&r);
}

static void test_content_words_at_threshold_and_one_under(void **state)
{
    (void)state;
    grading_rubric_t *r = load_shape(ONLY_CONTENT);
    assert_non_null(r);
    assert_int_equal(
        verdict(r, "churn risk NPS usage renewal upsell onboarding health", "content_words"), 1);
    assert_int_equal(verdict(r, "churn risk NPS usage renewal upsell onboarding", NULL), 0);
    /* a stop word among the first seven breaks the run; the eighth may be one */
    assert_int_equal(verdict(r, "churn risk NPS the usage renewal upsell onboarding health", NULL),
                     0);
    assert_int_equal(verdict(r, "churn risk NPS usage renewal upsell onboarding the", NULL), 1);
    /* stop words are compared without case, with their apostrophes */
    assert_int_equal(verdict(r, "churn risk NPS THE usage renewal upsell onboarding health", NULL),
                     0);
    assert_int_equal(verdict(r, "churn risk NPS it's usage renewal upsell onboarding", NULL), 0);
    /* punctuation after a word ends the run */
    assert_int_equal(verdict(r, "churn risk NPS usage, renewal upsell onboarding health", NULL), 0);
    grading_rubric_destroy(&r);
}

static void test_answer_chars_is_off_by_default(void **state)
{
    (void)state;
    char text[128];
    memset(text, 'a', 80);
    for (size_t i = 4; i < 80; i += 5)
        text[i] = '\n'; /* no run, no words in a row: only the answer test can see it */
    text[80] = 0;
    grading_rubric_t *r = load_shape(ONLY_RUN);
    assert_non_null(r);
    assert_int_equal(verdict(r, text, NULL), 0);
    grading_rubric_destroy(&r);
    r = load_shape(ONLY_RUN ",\"answer_chars\":80");
    assert_non_null(r);
    assert_int_equal(verdict(r, text, "answer"), 1);
    text[79] = 0;
    assert_int_equal(verdict(r, text, NULL), 0);
    text[79] = 'a';
    text[40] = '.';
    assert_int_equal(verdict(r, text, NULL), 0);
    grading_rubric_destroy(&r);
}

/* The trace: points, a count in the detail, evidence spans that are byte
 * offsets into the original text, the test's name, and --explain. */
static void test_evidence_spans_and_explain(void **state)
{
    (void)state;
    grading_rubric_t *r = load_shape("");
    assert_non_null(r);
    const char *text = "Notes: \xc3\xa9t\xc3\xa9, renewal, setup, training, review, QBR, NPS, "
                       "churn. Then a sentence.";
    graded_t g;
    grade(r, text, strlen(text), &g);
    assert_true(tg_get(g.rule, "matched")->via.boolean);
    assert_int_equal(tg_int(tg_get(g.rule, "points_milli")), -8000);
    assert_int_equal(tg_int(tg_get(tg_item(&g.tr, "t"), "points_milli")), 0);
    const msgpack_object *ev = tg_get(g.rule, "evidence");
    assert_int_equal(ev->via.array.size, 1);
    int64_t s = tg_int(tg_get(&ev->via.array.ptr[0], "start"));
    int64_t e = tg_int(tg_get(&ev->via.array.ptr[0], "end"));
    assert_int_equal(s, 0); /* the first fragment, "Notes: été" */
    assert_memory_equal(text + e - 5, "churn", 5);
    assert_true(tg_streq(tg_get(&ev->via.array.ptr[0], "shape"), "fragments"));
    char *x = grading_explain(r, g.res.data, g.res.len);
    assert_non_null(x);
    assert_non_null(strstr(x, "keyword-list shape: fragments"));
    free(x);
    release(&g);
    /* prose does not match, and says so */
    text = "Thanks for flagging the renewal. I will send the new dates by Friday.";
    grade(r, text, strlen(text), &g);
    assert_false(tg_get(g.rule, "matched")->via.boolean);
    assert_null(tg_get(g.rule, "evidence"));
    assert_int_equal(tg_int(tg_get(tg_item(&g.tr, "t"), "points_milli")), 4000);
    release(&g);
    grading_rubric_destroy(&r);
}

static void expect_error(const char *params, const char *path, const char *words)
{
    char j[2048];
    snprintf(j, sizeof j,
             "{\"id\":\"shp\",\"version\":\"1\",\"sections\":[{\"id\":\"s\"}],"
             "\"items\":[{\"id\":\"t\",\"type\":\"text\",\"section\":\"s\","
             "\"elements\":[{\"id\":\"k\",\"points\":-1,\"shape\":%s}]}]}",
             params);
    grading_error_t errs[8];
    size_t n = 0;
    assert_int_equal(grading_rubric_lint_json(j, strlen(j), errs, 8, &n),
                     GRADING_ERR_INVALID_RUBRIC);
    bool seen = false;
    for (size_t i = 0; i < n; i++)
        if (strcmp(errs[i].path, path) == 0 && strstr(errs[i].message, words))
            seen = true;
    if (!seen)
        for (size_t i = 0; i < n; i++)
            fprintf(stderr, "  got %s: %s\n", errs[i].path, errs[i].message);
    assert_true(seen);
}

static void test_parameters_are_checked_with_paths(void **state)
{
    (void)state;
    expect_error("\"keyword_list\"", "items[0].elements[0].shape", "expected an object");
    expect_error("{}", "items[0].elements[0].shape.kind", "required");
    expect_error("{\"kind\":\"bullet_list\"}", "items[0].elements[0].shape.kind",
                 "expected one of: keyword_list");
    expect_error("{\"kind\":\"keyword_list\",\"fragments\":1}",
                 "items[0].elements[0].shape.fragments", "0 (off) or an integer from 2");
    expect_error("{\"kind\":\"keyword_list\",\"lines\":1001}", "items[0].elements[0].shape.lines",
                 "from 0 to 1000");
    expect_error("{\"kind\":\"keyword_list\",\"fragment_chars\":0}",
                 "items[0].elements[0].shape.fragment_chars", "from 1 to");
    expect_error("{\"kind\":\"keyword_list\",\"sentence_chars\":\"20\"}",
                 "items[0].elements[0].shape.sentence_chars", "expected an integer");
    expect_error("{\"kind\":\"keyword_list\",\"run_chars\":-1}",
                 "items[0].elements[0].shape.run_chars", "from 0 to");
    expect_error("{\"kind\":\"keyword_list\",\"words\":3}", "items[0].elements[0].shape.words",
                 "unknown");
    expect_error("{\"kind\":\"keyword_list\",\"fragments\":0,\"sentences\":0,\"lines\":0,"
                 "\"run_chars\":0,\"content_words\":0}",
                 "items[0].elements[0].shape", "every test of the shape is off");
}

/* The canonical form has the shape (with every parameter) only when an
 * element uses one: the defaults written out hash the same, and a rubric
 * without a shape has no "shape" key, so rubrics stored before the field
 * existed keep their hash. The msgpack form reloads to the same hash. */
static void test_canonical_form_only_when_used(void **state)
{
    (void)state;
    grading_rubric_t *a = load_shape("");
    grading_rubric_t *b = load_shape(
        ",\"fragments\":8,\"fragment_chars\":32,\"sentences\":8,\"sentence_chars\":20,"
        "\"lines\":8,\"line_words\":4,\"run_chars\":400,\"content_words\":8,\"answer_chars\":0");
    grading_rubric_t *c = load_shape(",\"run_chars\":401");
    assert_non_null(a);
    assert_non_null(b);
    assert_non_null(c);
    assert_string_equal(grading_rubric_hash(a), grading_rubric_hash(b));
    assert_string_not_equal(grading_rubric_hash(a), grading_rubric_hash(c));
    size_t len;
    const void *canon = grading_rubric_canonical(a, &len);
    assert_non_null(memmem(canon, len, "\xa5shape", 6));
    assert_non_null(memmem(canon, len,
                           "\xad"
                           "content_words",
                           14));
    grading_rubric_t *m = NULL;
    grading_error_t e;
    assert_int_equal(grading_rubric_load_msgpack(canon, len, &m, &e), GRADING_OK);
    assert_string_equal(grading_rubric_hash(m), grading_rubric_hash(a));
    grading_rubric_destroy(&m);
    grading_rubric_destroy(&a);
    grading_rubric_destroy(&b);
    grading_rubric_destroy(&c);
    const char *plain = "{\"id\":\"p\",\"version\":\"1\",\"sections\":[{\"id\":\"s\"}],\"items\":["
                        "{\"id\":\"t\",\"type\":\"text\",\"section\":\"s\",\"elements\":["
                        "{\"id\":\"e\",\"phrases\":[\"renewal\"]}]}]}";
    grading_rubric_t *p = tg_load(plain);
    assert_non_null(p);
    canon = grading_rubric_canonical(p, &len);
    assert_null(memmem(canon, len, "shape", 5));
    grading_rubric_destroy(&p);
}

/* Invalid UTF-8 matches nothing and so breaks a run; an emoji is one
 * character that is not a letter; right-to-left letters are letters. */
static void test_hostile_input(void **state)
{
    (void)state;
    grading_rubric_t *r = load_shape(ONLY_CONTENT);
    assert_non_null(r);
    /* Hebrew and Arabic words, eight in a row */
    assert_int_equal(verdict(r,
                             "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d \xd7\x97\xd7\x93\xd7\xa9 "
                             "\xd7\x9c\xd7\xa7\xd7\x95\xd7\x97 \xd7\x97\xd7\x99\xd7\x93\xd7\x95"
                             "\xd7\xa9 \xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7 \xd8\xb9\xd9\x85"
                             "\xd9\x8a\xd9\x84 \xd8\xaa\xd8\xac\xd8\xaf\xd9\x8a\xd8\xaf \xd9\x81"
                             "\xd8\xb1\xd9\x8a\xd9\x82",
                             "content_words"),
                     1);
    /* an invalid byte inside the fourth word: it is not a word, the run breaks */
    assert_int_equal(verdict(r, "churn risk NPS us\xffge renewal upsell onboarding health", NULL),
                     0);
    /* an emoji word is not a word (not a letter or digit) */
    assert_int_equal(
        verdict(r, "churn risk NPS \xf0\x9f\x98\x80 renewal upsell onboarding health", NULL), 0);
    grading_rubric_destroy(&r);
    r = load_shape(ONLY_FRAGMENTS);
    assert_non_null(r);
    /* fragments with emoji are fragments, an emoji one character of 32 */
    assert_int_equal(verdict(r,
                             "ok \xf0\x9f\x98\x80, \xf0\x9f\x98\x81, \xf0\x9f\x98\x82, \xf0\x9f"
                             "\x98\x83, \xf0\x9f\x98\x84, \xf0\x9f\x98\x85, \xf0\x9f\x98\x86, ok",
                             "fragments"),
                     1);
    char emoji[256] = "a, b, c, ";
    for (size_t i = 0; i < 32; i++)
        strcat(emoji, "\xf0\x9f\x98\x80");
    strcat(emoji, ", e, f, g, h");
    assert_int_equal(verdict(r, emoji, "fragments"), 1);
    /* a truncated sequence, a surrogate and an overlong form each break the run */
    assert_int_equal(verdict(r, "a, b, c, d\xe2\x82, e, f, g, h", NULL), 0);
    assert_int_equal(verdict(r, "a, b, c, d\xed\xa0\x80, e, f, g, h", NULL), 0);
    assert_int_equal(verdict(r, "a, b, c, d\xc0\xaf, e, f, g, h", NULL), 0);
    grading_rubric_destroy(&r);
}

/* 1 MiB of keyword list and of prose: linear, inside the work budget, with
 * at most five evidence spans. */
static void test_one_mebibyte_is_linear_and_in_budget(void **state)
{
    (void)state;
    grading_rubric_t *r = load_shape(",\"answer_chars\":80");
    assert_non_null(r);
    size_t n = 1u << 20;
    char *big = malloc(n);
    static const char *const fills[] = {"churn, NPS, usage, ", "Kickoff. ", "a b\n",
                                        "We will call you on Monday to plan the renewal. "};
    for (size_t f = 0; f < 4; f++) {
        size_t fl = strlen(fills[f]);
        for (size_t i = 0; i < n; i++)
            big[i] = fills[f][i % fl];
        clock_t t0 = clock();
        graded_t g;
        grade(r, big, n, &g);
        assert_true((double)(clock() - t0) / CLOCKS_PER_SEC < 10.0);
        const msgpack_object *ev = tg_get(g.rule, "evidence");
        if (f < 3) {
            assert_true(tg_get(g.rule, "matched")->via.boolean);
            assert_true(ev->via.array.size >= 1 && ev->via.array.size <= 5);
        } else {
            assert_false(tg_get(g.rule, "matched")->via.boolean);
        }
        release(&g);
    }
    free(big);
    grading_rubric_destroy(&r);
}

/* shape_find on its own: runs are counted, evidence is the first ones by
 * offset, and a test that is off finds nothing. */
static void test_shape_find_counts_runs(void **state)
{
    (void)state;
    shape_t sh = {.fragments = 3, .fragment_chars = 32, .sentences = 0, .sentence_chars = 20};
    shape_hit_t hits[SHAPE_HITS_MAX];
    const char *t = "a, b, c. d, e, f. g, h";
    assert_int_equal(shape_find(&sh, t, strlen(t), hits, 8), 2);
    assert_int_equal(hits[0].start, 0);
    assert_int_equal(hits[0].end, 7);
    assert_int_equal(hits[1].start, 9);
    assert_int_equal(hits[1].end, 16);
    assert_int_equal(shape_find(&sh, t, strlen(t), hits, 1), 2);
    sh.fragments = 0;
    sh.sentences = 2;
    assert_int_equal(shape_find(&sh, t, strlen(t), hits, 8), 1);
    assert_int_equal(hits[0].test, SHAPE_SENTENCES);
    assert_int_equal(shape_tests_on(&sh), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fragments_at_threshold_and_one_under),
        cmocka_unit_test(test_sentences_at_threshold_and_one_under),
        cmocka_unit_test(test_lines_at_threshold_and_one_under),
        cmocka_unit_test(test_run_at_threshold_and_one_under),
        cmocka_unit_test(test_content_words_at_threshold_and_one_under),
        cmocka_unit_test(test_answer_chars_is_off_by_default),
        cmocka_unit_test(test_evidence_spans_and_explain),
        cmocka_unit_test(test_parameters_are_checked_with_paths),
        cmocka_unit_test(test_canonical_form_only_when_used),
        cmocka_unit_test(test_hostile_input),
        cmocka_unit_test(test_one_mebibyte_is_linear_and_in_budget),
        cmocka_unit_test(test_shape_find_counts_runs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
