/*
 * test_grading_text.c - free-text items: normalisation, stems, synonyms,
 * word order, misspellings, negation and hedging, penalties, structure
 * rules, PCRE2 patterns with limits, evidence spans, and hostile input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <time.h>

#include "grading/internal.h"
#include "test_grading_util.h"

static const char *RUBRIC =
    "{\"id\":\"txt\",\"version\":\"1\",\"sections\":[{\"id\":\"s\"}],"
    "\"synonyms\":[[\"sorry\",\"apologise\",\"apologize\",\"apology\",\"apologies\",\"regret\"]],"
    "\"items\":[{\"id\":\"reply\",\"type\":\"text\",\"section\":\"s\",\"points\":10,"
    "\"elements\":["
    "{\"id\":\"apology\",\"points\":2,\"phrases\":[\"sorry\"]},"
    "{\"id\":\"acknowledge\",\"points\":2,\"phrases\":[\"understand your frustration\","
    "\"frustrating\"]},"
    "{\"id\":\"inconvenience\",\"points\":1,\"phrases\":[\"inconvenience\"]},"
    "{\"id\":\"confirm\",\"points\":1,\"phrases\":[\"confirm the date\"]},"
    "{\"id\":\"commit\",\"points\":1,\"reject_hedged\":true,\"phrases\":[\"fix it by\"]},"
    "{\"id\":\"workaround\",\"points\":1,\"patterns\":[\"\\\\bwork-?arounds?\\\\b\"]},"
    "{\"id\":\"delay\",\"points\":1,\"phrases\":[\"feature delay\"]},"
    "{\"id\":\"blame\",\"points\":-3,\"phrases\":[\"your fault\",\"blame you\"]}],"
    "\"rules\":["
    "{\"id\":\"greeting\",\"kind\":\"greeting\",\"points\":\"0.5\"},"
    "{\"id\":\"sign_off\",\"kind\":\"sign_off\",\"points\":\"0.5\"},"
    "{\"id\":\"length\",\"kind\":\"words\",\"min\":3,\"max\":400,\"penalty\":1}]},"
    "{\"id\":\"bomb\",\"type\":\"text\",\"section\":\"s\",\"elements\":["
    "{\"id\":\"evil\",\"patterns\":[\"^(a+)+$\"]}]}]}";

/* Grade text for an item; returns the result opened in tr (caller closes). */
static int grade_text(const grading_rubric_t *r, const char *item, const char *text, size_t len,
                      grading_result_t *res, tg_result_t *tr, grading_error_t *e)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_str(&pk, strlen(item));
    msgpack_pack_str_body(&pk, item, strlen(item));
    msgpack_pack_str(&pk, len);
    msgpack_pack_str_body(&pk, text, len);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    msgpack_unpack_next(&up, sb.data, sb.size, &off);
    grading_err_t rc = grading_grade(r, &up.data, res, e);
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
    if (rc == GRADING_OK)
        tg_result_open(tr, res);
    return rc;
}

/* The trace rule of an element. */
static const msgpack_object *rule_of(const tg_result_t *tr, const char *item, const char *id)
{
    const msgpack_object *trace = tg_get(tg_item(tr, item), "trace");
    for (uint32_t i = 0; trace && i < trace->via.array.size; i++)
        if (tg_streq(tg_get(&trace->via.array.ptr[i], "rule"), id))
            return &trace->via.array.ptr[i];
    return NULL;
}

static int matched(const grading_rubric_t *r, const char *text, const char *element)
{
    grading_result_t res;
    tg_result_t tr;
    grading_error_t e;
    if (grade_text(r, "reply", text, strlen(text), &res, &tr, &e) != GRADING_OK)
        return -1;
    const msgpack_object *m = tg_get(rule_of(&tr, "reply", element), "matched");
    int out = m && m->type == MSGPACK_OBJECT_BOOLEAN && m->via.boolean;
    tg_result_close(&tr);
    grading_result_free(&res);
    return out;
}

static void test_phrases_match_after_normalisation_and_stemming(void **state)
{
    grading_rubric_t *r = tg_load(RUBRIC);
    assert_non_null(r);
    assert_int_equal(matched(r, "I am SO SORRY about this.", "apology"), 1);
    /* full-width letters fold under NFKC */
    assert_int_equal(matched(r,
                             "\xef\xbc\xb3\xef\xbd\x8f\xef\xbd\x92\xef\xbd\x92\xef\xbd\x99 "
                             "for this.",
                             "apology"),
                     1);
    assert_int_equal(matched(r, "I understand how frustrating this is.", "acknowledge"), 1);
    assert_int_equal(matched(r, "I understand the frustration you feel", "acknowledge"), 1);
    assert_int_equal(matched(r, "Nothing to see here.", "apology"), 0);
    grading_rubric_destroy(&r);
}

static void test_synonyms_count_as_the_phrase(void **state)
{
    grading_rubric_t *r = tg_load(RUBRIC);
    assert_int_equal(matched(r, "We regret the delay.", "apology"), 1);
    assert_int_equal(matched(r, "Please accept my apologies.", "apology"), 1);
    assert_int_equal(matched(r, "I apologize for the delay.", "apology"), 1);
    grading_rubric_destroy(&r);
}

static void test_word_order_within_window(void **state)
{
    grading_rubric_t *r = tg_load(RUBRIC);
    assert_int_equal(matched(r, "The delay of the feature is on us.", "delay"), 1);
    assert_int_equal(matched(r, "The feature delay is on us.", "delay"), 1);
    /* too far apart */
    assert_int_equal(matched(r, "The feature you asked about last spring had a delay.", "delay"),
                     0);
    /* not across sentences */
    assert_int_equal(matched(r, "The feature. Delay.", "delay"), 0);
    grading_rubric_destroy(&r);
}

static void test_one_misspelled_letter_in_longer_words(void **state)
{
    grading_rubric_t *r = tg_load(RUBRIC);
    assert_int_equal(matched(r, "Sorry for the inconvenence.", "inconvenience"), 1);
    assert_int_equal(matched(r, "Sorry for the inconveneince.", "inconvenience"), 1);
    assert_int_equal(matched(r, "Sorry for the incnvnience.", "inconvenience"), 0);
    /* short words are not fuzzy: "sorr" is not "sorry" */
    assert_int_equal(matched(r, "I am sorr", "apology"), 0);
    grading_rubric_destroy(&r);
}

static void test_negated_and_hedged_matches_do_not_count(void **state)
{
    grading_rubric_t *r = tg_load(RUBRIC);
    assert_int_equal(matched(r, "I'm not sorry.", "apology"), 0);
    assert_int_equal(matched(r, "I\xe2\x80\x99m not sorry.", "apology"), 0);
    assert_int_equal(matched(r, "We can't confirm the date yet.", "confirm"), 0);
    assert_int_equal(matched(r, "We can confirm the date: July 15.", "confirm"), 1);
    /* negation is clause-scoped */
    assert_int_equal(matched(r, "No worries, I'm sorry for the wait.", "apology"), 1);
    assert_int_equal(matched(r, "It is not ideal, but I am sorry.", "apology"), 1);
    /* hedging is rejected only where the element says so */
    assert_int_equal(matched(r, "We might fix it by Friday.", "commit"), 0);
    assert_int_equal(matched(r, "We will fix it by Friday.", "commit"), 1);
    assert_int_equal(matched(r, "Maybe I am sorry.", "apology"), 1);
    grading_rubric_destroy(&r);
}

static void test_penalties_subtract_and_clamp_at_zero(void **state)
{
    grading_rubric_t *r = tg_load(RUBRIC);
    assert_int_equal(tg_grade_one(r, "reply", "\"Hi Sam, I am sorry. It is your fault. Best, Jo\""),
                     0); /* 0.5 + 2 - 3 + 0.5 = 0, length ok */
    assert_int_equal(tg_grade_one(r, "reply", "\"Hi Sam, I am sorry. I do not blame you. Best\""),
                     3000);
    assert_int_equal(tg_grade_one(r, "reply", "\"It is your fault.\""), 0);
    grading_rubric_destroy(&r);
}

static void test_structure_rules(void **state)
{
    grading_rubric_t *r = tg_load(RUBRIC);
    assert_int_equal(
        matched(r, "Hello Dana,\n\nThanks for writing.\n\nBest regards,\nJo", "greeting"), 1);
    assert_int_equal(
        matched(r, "Hello Dana,\n\nThanks for writing.\n\nBest regards,\nJo", "sign_off"), 1);
    assert_int_equal(matched(r, "Dana, the update is below and it is long enough.", "greeting"), 0);
    assert_int_equal(matched(r, "ok", "length"), 0);
    /* a too-short reply loses the length penalty: 2 (apology) - 1 = 1 */
    assert_int_equal(tg_grade_one(r, "reply", "\"sorry\""), 1000);
    grading_rubric_destroy(&r);
}

static void test_patterns_and_evidence_spans(void **state)
{
    grading_rubric_t *r = tg_load(RUBRIC);
    const char *text = "Dear Ana, h\xc3\xa9 - here is a work-around until then.";
    grading_result_t res;
    tg_result_t tr;
    grading_error_t e;
    assert_int_equal(grade_text(r, "reply", text, strlen(text), &res, &tr, &e), GRADING_OK);
    const msgpack_object *rule = rule_of(&tr, "reply", "workaround");
    assert_true(tg_get(rule, "matched")->via.boolean);
    const msgpack_object *ev = &tg_get(rule, "evidence")->via.array.ptr[0];
    int64_t s = tg_int(tg_get(ev, "start")), en = tg_int(tg_get(ev, "end"));
    assert_memory_equal(text + s, "work-around", 11);
    assert_int_equal(en - s, 11);
    assert_true(tg_streq(tg_get(ev, "text"), "work-around"));
    tg_result_close(&tr);
    grading_result_free(&res);
    grading_rubric_destroy(&r);
}

static void test_runaway_pattern_is_abandoned_quickly(void **state)
{
    grading_rubric_t *r = tg_load(RUBRIC);
    size_t n = 20000;
    char *text = malloc(n + 2);
    memset(text, 'a', n);
    text[n] = '!';
    text[n + 1] = 0;
    grading_result_t res;
    tg_result_t tr;
    grading_error_t e;
    clock_t t0 = clock();
    assert_int_equal(grade_text(r, "bomb", text, n + 1, &res, &tr, &e), GRADING_OK);
    double secs = (double)(clock() - t0) / CLOCKS_PER_SEC;
    assert_true(secs < 5.0);
    const msgpack_object *rule = rule_of(&tr, "bomb", "evil");
    assert_false(tg_get(rule, "matched")->via.boolean);
    assert_non_null(tg_get(rule, "abandoned"));
    tg_result_close(&tr);
    grading_result_free(&res);
    free(text);
    grading_rubric_destroy(&r);
}

static void test_hostile_text_inputs(void **state)
{
    grading_rubric_t *r = tg_load(RUBRIC);
    grading_result_t res;
    tg_result_t tr;
    grading_error_t e;
    /* empty and blank: unanswered */
    assert_int_equal(grade_text(r, "reply", "", 0, &res, &tr, &e), GRADING_OK);
    assert_true(tg_streq(tg_get(tg_item(&tr, "reply"), "status"), "unanswered"));
    tg_result_close(&tr);
    grading_result_free(&res);
    assert_int_equal(grade_text(r, "reply", " \n\t ", 4, &res, &tr, &e), GRADING_OK);
    assert_true(tg_streq(tg_get(tg_item(&tr, "reply"), "status"), "unanswered"));
    tg_result_close(&tr);
    grading_result_free(&res);
    /* invalid UTF-8, NUL bytes, emoji, right-to-left text */
    const char bad[] = "sorry \xff\xfe\xc3 \x00 frustrating \xf0\x9f\x98\xa1 \xd7\xa9\xd7\x9c"
                       "\xd7\x95\xd7\x9d \xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7 \xe2\x80\x8f end";
    assert_int_equal(grade_text(r, "reply", bad, sizeof bad - 1, &res, &tr, &e), GRADING_OK);
    assert_true(tg_get(rule_of(&tr, "reply", "apology"), "matched")->via.boolean);
    assert_true(tg_get(rule_of(&tr, "reply", "acknowledge"), "matched")->via.boolean);
    char *json = grading_result_json(res.data, res.len, 0); /* invalid UTF-8 in evidence */
    assert_non_null(json);
    free(json);
    tg_result_close(&tr);
    grading_result_free(&res);
    /* 1 MiB of text grades; one byte more is a limit error */
    size_t n = 1u << 20;
    char *big = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        big[i] = "sorry for the delay, we will fix it by friday. "[i % 47];
    assert_int_equal(grade_text(r, "reply", big, n, &res, &tr, &e), GRADING_OK);
    assert_true(tg_streq(tg_get(tg_item(&tr, "reply"), "status"), "scored"));
    tg_result_close(&tr);
    grading_result_free(&res);
    assert_int_equal(grade_text(r, "reply", big, n + 1, &res, &tr, &e), GRADING_ERR_LIMIT);
    assert_string_equal(e.path, "responses.reply");
    free(big);
    /* a non-string response is invalid */
    assert_int_equal(tg_grade_one(r, "reply", "42"), -1);
    grading_rubric_destroy(&r);
}

static void test_bad_pattern_is_rubric_error(void **state)
{
    const char *j = "{\"id\":\"p\",\"version\":\"1\",\"sections\":[{\"id\":\"s\"}],\"items\":["
                    "{\"id\":\"t\",\"type\":\"text\",\"section\":\"s\",\"elements\":["
                    "{\"id\":\"e\",\"patterns\":[\"(unclosed\"]},{\"id\":\"f\",\"phrases\":3}]}]}";
    grading_error_t errs[8];
    size_t n = 0;
    assert_int_equal(grading_rubric_lint_json(j, strlen(j), errs, 8, &n),
                     GRADING_ERR_INVALID_RUBRIC);
    int seen_pattern = 0, seen_phrases = 0;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(errs[i].path, "items[0].elements[0].patterns[0]") == 0)
            seen_pattern = 1;
        if (strcmp(errs[i].path, "items[0].elements[1].phrases") == 0 &&
            strstr(errs[i].message, "expected an array of"))
            seen_phrases = 1;
    }
    assert_true(seen_pattern);
    assert_true(seen_phrases);
}

/* Labels (entity names and aliases, option and step texts) fold to NFKC +
 * case fold without apostrophes. Dropping an apostrophe lets the letter
 * before it compose with a following combining mark, so the fold normalises
 * again: "a'" + U+0301 folds as "a" + U+0301 does, to U+00E1, and folding
 * the fold changes nothing. The first input is fuzz_textnorm's reproducer. */
static void test_fold_is_idempotent_around_apostrophes(void **state)
{
    (void)state;
    static const struct {
        const char *with, *without;
        size_t with_len, without_len;
    } cases[] = {
        {"$un\0\0a'\xcc\x81ndM", "$un\0\0a\xcc\x81ndM", 12, 11},
        {"a'\xcc\x81", "a\xcc\x81", 4, 3},
        {"a\xe2\x80\x99\xcc\x81", "a\xcc\x81", 6, 3},     /* U+2019 */
        {"a\xef\xbc\x87\xcc\x81", "a\xcc\x81", 6, 3},     /* U+FF07 fullwidth */
        {"O'Bri\xc3\xa9n", "OBrie\xcc\x81n", 9, 8},         /* composed vs decomposed */
    };
    arena_t a = {0};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *f = text_fold(&a, cases[i].with, cases[i].with_len);
        char *w = text_fold(&a, cases[i].without, cases[i].without_len);
        assert_non_null(f);
        assert_non_null(w);
        char *g = text_fold(&a, f, strlen(f));
        assert_non_null(g);
        assert_string_equal(f, g);
        assert_string_equal(f, w);
        assert_null(strchr(f, '\''));
    }
    assert_string_equal(text_fold(&a, "a'\xcc\x81", 4), "\xc3\xa1");
    arena_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_phrases_match_after_normalisation_and_stemming),
        cmocka_unit_test(test_synonyms_count_as_the_phrase),
        cmocka_unit_test(test_word_order_within_window),
        cmocka_unit_test(test_one_misspelled_letter_in_longer_words),
        cmocka_unit_test(test_negated_and_hedged_matches_do_not_count),
        cmocka_unit_test(test_penalties_subtract_and_clamp_at_zero),
        cmocka_unit_test(test_structure_rules),
        cmocka_unit_test(test_patterns_and_evidence_spans),
        cmocka_unit_test(test_runaway_pattern_is_abandoned_quickly),
        cmocka_unit_test(test_hostile_text_inputs),
        cmocka_unit_test(test_bad_pattern_is_rubric_error),
        cmocka_unit_test(test_fold_is_idempotent_around_apostrophes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
