/*
 * test_grading_content.c - what the assessment content needs from the
 * engine: contrasts and corrections around numbers, the direction of a name
 * correction, elements and rules on written ordering answers, blank ordering
 * answers, pick reasoning tied to the pick, count() and per-rater red-flag
 * terms, and numeric dates without a year.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_grading_util.h"

static const char *RUBRIC =
    "{\"id\":\"content\",\"version\":\"1\",\"sections\":[{\"id\":\"s\"},{\"id\":\"i\"}],"
    "\"entities\":[{\"id\":\"acme\",\"name\":\"ACME Inc\",\"aliases\":[\"Acme Incorporated\","
    "\"ACME\"]},{\"id\":\"apex\",\"name\":\"Apex Corp\",\"aliases\":[\"Apex Corporation\","
    "\"Apex\"]}],"
    "\"items\":["
    "{\"id\":\"growth\",\"type\":\"quantity\",\"section\":\"s\",\"kind\":\"percent\","
    "\"answers\":[{\"value\":\"8.33\",\"tolerance\":\"0.04\"},{\"value\":\"8.3\"}]},"
    "{\"id\":\"ten\",\"type\":\"quantity\",\"section\":\"s\",\"kind\":\"percent\","
    "\"answers\":[{\"value\":\"10\"}]},"
    "{\"id\":\"finding\",\"type\":\"entity\",\"section\":\"s\",\"points\":2,\"expect\":[\"apex\"],"
    "\"wrong\":[\"apex\"],\"right\":[\"acme\"],\"wrong_points\":1},"
    "{\"id\":\"fix\",\"type\":\"entity\",\"section\":\"s\",\"points\":2,\"wrong\":[\"apex\"],"
    "\"right\":[\"acme\"],\"right_points\":2,\"bare_name\":\"right\"},"
    "{\"id\":\"plan\",\"type\":\"ordering\",\"section\":\"s\",\"points\":4,"
    "\"scheme\":\"longest_ordered_subset\",\"steps\":["
    "{\"id\":\"kickoff\",\"phrases\":[\"kickoff\"]},{\"id\":\"setup\",\"phrases\":[\"setup\"]},"
    "{\"id\":\"training\",\"phrases\":[\"training\"]},{\"id\":\"review\",\"phrases\":"
    "[\"review\"]}],"
    "\"elements\":[{\"id\":\"keyword_list\",\"points\":-2,\"negatable\":false,\"patterns\":"
    "[\"^[^.!?]*$\"]}],"
    "\"rules\":[{\"id\":\"sentences\",\"kind\":\"sentences\",\"min\":3,\"penalty\":1}]},"
    "{\"id\":\"order\",\"type\":\"ordering\",\"section\":\"s\",\"steps\":["
    "{\"id\":\"a\",\"phrases\":[\"alpha\"]},{\"id\":\"b\",\"phrases\":[\"beta\"]}]},"
    "{\"id\":\"risk\",\"type\":\"pick\",\"section\":\"s\",\"points\":4,\"pick_points\":2,"
    "\"cite_points\":\"0.5\",\"cite_max\":2,\"reasoning_requires_pick\":true,"
    "\"columns\":[\"customer\",\"usage\",\"nps\"],\"cite_columns\":[\"usage\",\"nps\"],\"rows\":["
    "{\"id\":\"betainc\",\"names\":[\"BetaInc\"],\"cells\":{\"customer\":\"BetaInc\","
    "\"usage\":\"40%\",\"nps\":\"5\"}},"
    "{\"id\":\"deltacorp\",\"names\":[\"DeltaCorp\"],\"cells\":{\"customer\":\"DeltaCorp\","
    "\"usage\":\"50%\",\"nps\":\"2\"}}],\"answers\":[\"deltacorp\"],"
    "\"elements\":[{\"id\":\"churn\",\"points\":1,\"phrases\":[\"churn\"]},"
    "{\"id\":\"blame\",\"points\":-1,\"phrases\":[\"their fault\"]}]},"
    "{\"id\":\"dates\",\"type\":\"date\",\"section\":\"s\",\"points\":2,\"mode\":\"all\","
    "\"default_year\":2025,\"answers\":[\"2025-07-15\",\"2025-08-15\"]},"
    "{\"id\":\"eudates\",\"type\":\"date\",\"section\":\"s\",\"policy\":\"eu\","
    "\"default_year\":2025,\"answers\":[\"2025-07-05\"]},"
    "{\"id\":\"noyear\",\"type\":\"date\",\"section\":\"s\",\"answers\":[\"2025-07-15\"]},"
    "{\"id\":\"reply\",\"type\":\"text\",\"section\":\"s\",\"elements\":["
    "{\"id\":\"apology\",\"phrases\":[\"sorry\"]},{\"id\":\"ack\",\"phrases\":[\"I understand\"]}"
    "]},"
    "{\"id\":\"q1\",\"type\":\"rating\",\"section\":\"i\",\"points\":4,\"scale\":{\"min\":1,"
    "\"max\":5},\"raters_required\":3}],"
    "\"red_flags\":["
    "{\"id\":\"two_of_three\",\"when\":\"count(missing(reply.apology), missing(reply.ack), "
    "rating(q1) <= 2) >= 2\",\"reason\":\"two of three\"},"
    "{\"id\":\"one_rater\",\"when\":\"min_rating(q1) <= 1\",\"reason\":\"a rater gave 1\"},"
    "{\"id\":\"all_high\",\"effect\":\"review\",\"when\":\"max_rating(q1) >= 5 and "
    "rating(q1) > 4.3\",\"reason\":\"high\"}]}";

static void test_contrast_and_correction_around_numbers(void **state)
{
    grading_rubric_t *r = tg_load(RUBRIC);
    assert_non_null(r);
    const char *credit[] = {"\"8.3% instead of 10%\"",
                            "\"it is 8.3% and not 10%\"",
                            "\"should be 8.3% not 10%\"",
                            "\"8.3% rather than 10%\"",
                            "\"10% should be 8.3%\"",
                            "\"8.3%, not 10%\"",
                            "\"The label 10% should read 8.3%.\"",
                            "\"Use 8.3% instead.\"",
                            "\"instead of 10%, it is 8.3%\""};
    for (size_t i = 0; i < sizeof credit / sizeof credit[0]; i++) {
        if (tg_grade_one(r, "growth", credit[i]) != 1000)
            fail_msg("8.3 not credited in %s", credit[i]);
        /* ... and the rejected alternative is not taken as an answer */
        if (tg_grade_one(r, "ten", credit[i]) != 0)
            fail_msg("10 credited in %s", credit[i]);
    }
    /* genuine denials still deny */
    const char *denied[] = {"\"it is not 8.3%\"", "\"8.3% is wrong\"", "\"8.3% is not right\"",
                            "\"8.3% is wrong, not 10%\""};
    for (size_t i = 0; i < sizeof denied / sizeof denied[0]; i++)
        if (tg_grade_one(r, "growth", denied[i]) != 0)
            fail_msg("8.3 credited in %s", denied[i]);
    /* the reverse contrast credits the other number */
    assert_int_equal(tg_grade_one(r, "ten", "\"10% instead of 8.3%\""), 1000);
    assert_int_equal(tg_grade_one(r, "growth", "\"10% instead of 8.3%\""), 0);
    grading_rubric_destroy(&r);
}

static void test_entity_correction_direction(void **state)
{
    grading_rubric_t *r = tg_load(RUBRIC);
    assert_non_null(r);
    const char *right_way[] = {
        "\"Apex Corp should be ACME Inc\"",    "\"replace Apex Corp with ACME Inc\"",
        "\"ACME Inc, not Apex Corp\"",         "\"Apex Corp -> ACME Inc\"",
        "\"Apex Corp \xe2\x86\x92 ACME Inc\"", "\"ACME instead of Apex\"",
        "\"change apex corporation to acme\""};
    for (size_t i = 0; i < sizeof right_way / sizeof right_way[0]; i++) {
        if (tg_grade_one(r, "fix", right_way[i]) != 2000)
            fail_msg("correction not credited: %s", right_way[i]);
        if (tg_grade_one(r, "finding", right_way[i]) != 2000)
            fail_msg("finding not credited: %s", right_way[i]);
    }
    const char *reversed[] = {"\"ACME Inc should be Apex Corp\"",
                              "\"replace ACME Inc with Apex Corp\"", "\"Apex Corp, not ACME Inc\"",
                              "\"It should say Apex Corp.\"",
                              "\"ACME Inc is the wrong name, the team is at Apex Corp.\""};
    for (size_t i = 0; i < sizeof reversed / sizeof reversed[0]; i++) {
        if (tg_grade_one(r, "fix", reversed[i]) != 0)
            fail_msg("reversed correction credited: %s", reversed[i]);
        if (tg_grade_one(r, "finding", reversed[i]) != 0)
            fail_msg("reversed finding credited: %s", reversed[i]);
    }
    /* the finding: naming Apex earns half, saying it is the wrong one the rest */
    assert_int_equal(tg_grade_one(r, "finding", "\"Apex Corp vs ACME Inc\""), 1000);
    assert_int_equal(
        tg_grade_one(r, "finding",
                     "\"It greets ACME Inc but then says 'your team at Apex Corp' - wrong "
                     "company name.\""),
        2000);
    assert_int_equal(tg_grade_one(r, "finding", "\"wrong company name: apex corporation\""), 2000);
    /* an abbreviation's period does not cut the name off from what follows */
    assert_int_equal(tg_grade_one(r, "finding", "\"apex corp. is wrong - should be acme\""), 2000);
    assert_int_equal(tg_grade_one(r, "finding", "\"It says Apex Corp. Wrong name.\""), 1000);
    /* the correction alone: the right name */
    assert_int_equal(tg_grade_one(r, "fix", "\"It should say Acme Inc.\""), 2000);
    assert_int_equal(tg_grade_one(r, "fix", "\"acme\""), 2000);
    assert_int_equal(tg_grade_one(r, "fix", "\"Apex Corp vs ACME Inc\""), 0);
    assert_int_equal(tg_grade_one(r, "finding", "\"acme\""), 0);
    /* a rubric without expected names needs the points accounted for */
    grading_rubric_t *bad = NULL;
    grading_error_t e;
    const char *b =
        "{\"id\":\"b\",\"version\":\"1\",\"sections\":[{\"id\":\"s\"}],\"entities\":[{\"id\":"
        "\"acme\",\"name\":\"ACME\"}],\"items\":[{\"id\":\"x\",\"type\":\"entity\",\"section\":"
        "\"s\",\"points\":2,\"right\":[\"acme\"],\"right_points\":1}]}";
    assert_int_not_equal(grading_rubric_load_json(b, strlen(b), &bad, &e), GRADING_OK);
    assert_string_equal(e.path, "items[0].expect");
    grading_rubric_destroy(&r);
}

static void test_written_plan_elements_and_blank_answers(void **state)
{
    grading_rubric_t *r = tg_load(RUBRIC);
    assert_non_null(r);
    /* sentences: full marks */
    assert_int_equal(tg_grade_one(r, "plan",
                                  "\"First a kickoff call with the team. Then we do the setup "
                                  "together. Next, training for all users. Finally a review at "
                                  "day 30.\""),
                     4000);
    /* the same steps as a keyword list: both the element and the rule cost */
    assert_int_equal(tg_grade_one(r, "plan", "\"kickoff, setup, training, review\""), 1000);
    /* a list of step ids is not text: elements and rules do not apply */
    assert_int_equal(tg_grade_one(r, "plan", "[\"kickoff\",\"setup\",\"training\",\"review\"]"),
                     4000);
    /* blank answers are unanswered, with or without elements */
    const char *blank[] = {"\"\"", "\"   \"", "\" \\n\\t \"", "\"...\"", "[]", "null"};
    for (size_t i = 0; i < sizeof blank / sizeof blank[0]; i++) {
        for (int k = 0; k < 2; k++) {
            const char *item = k ? "order" : "plan";
            char buf[128];
            snprintf(buf, sizeof buf, "{\"%s\": %s}", item, blank[i]);
            tg_msg_t m;
            const msgpack_object *o = tg_msg_from_json(&m, buf);
            assert_non_null(o);
            grading_result_t res;
            grading_error_t e;
            assert_int_equal(grading_grade(r, o, &res, &e), GRADING_OK);
            tg_result_t tr;
            tg_result_open(&tr, &res);
            const msgpack_object *it = tg_item(&tr, item);
            if (!tg_streq(tg_get(it, "status"), "unanswered"))
                fail_msg("%s: blank answer %s is not unanswered", item, blank[i]);
            assert_int_equal(tg_int(tg_get(it, "points_milli")), 0);
            tg_result_close(&tr);
            grading_result_free(&res);
            tg_msg_free(&m);
        }
    }
    grading_rubric_destroy(&r);
}

static void test_pick_reasoning_tied_to_pick(void **state)
{
    grading_rubric_t *r = tg_load(RUBRIC);
    assert_non_null(r);
    /* right pick, own figures, reasoning: everything */
    assert_int_equal(tg_grade_one(r, "risk",
                                  "{\"pick\":\"deltacorp\",\"reasoning\":\"50% usage and NPS "
                                  "2: likely to churn.\"}"),
                     4000);
    /* wrong pick quoting the right row's figures: nothing */
    assert_int_equal(tg_grade_one(r, "risk",
                                  "{\"pick\":\"betainc\",\"reasoning\":\"50% usage and NPS 2: "
                                  "likely to churn.\"}"),
                     0);
    /* one text naming the wrong row first */
    assert_int_equal(tg_grade_one(r, "risk", "\"BetaInc: usage 50%, NPS 2, they will churn.\""), 0);
    /* the right pick quoting another row's figures earns no grounding */
    assert_int_equal(tg_grade_one(r, "risk",
                                  "{\"pick\":\"deltacorp\",\"reasoning\":\"40% usage and NPS "
                                  "5.\"}"),
                     2000);
    grading_rubric_destroy(&r);
}

static const msgpack_object *flag(const tg_result_t *tr, const char *id)
{
    const msgpack_object *f = tg_get(tr->root, "red_flags");
    for (uint32_t i = 0; f && i < f->via.array.size; i++)
        if (tg_streq(tg_get(&f->via.array.ptr[i], "id"), id))
            return &f->via.array.ptr[i];
    return NULL;
}

static void flags_for(const grading_rubric_t *r, const char *json, const char *want_two,
                      const char *want_one, const char *want_high)
{
    tg_msg_t m;
    const msgpack_object *o = tg_msg_from_json(&m, json);
    assert_non_null(o);
    grading_result_t res;
    grading_error_t e;
    assert_int_equal(grading_grade(r, o, &res, &e), GRADING_OK);
    tg_result_t tr;
    tg_result_open(&tr, &res);
    if (!tg_streq(tg_get(flag(&tr, "two_of_three"), "state"), want_two) ||
        !tg_streq(tg_get(flag(&tr, "one_rater"), "state"), want_one) ||
        !tg_streq(tg_get(flag(&tr, "all_high"), "state"), want_high))
        fail_msg("flags for %s: want %s/%s/%s", json, want_two, want_one, want_high);
    tg_result_close(&tr);
    grading_result_free(&res);
    tg_msg_free(&m);
}

static void test_count_and_per_rater_terms(void **state)
{
    grading_rubric_t *r = tg_load(RUBRIC);
    assert_non_null(r);
    /* one missing element and a fine median: one of three */
    flags_for(r, "{\"reply\":\"I understand.\",\"q1\":[4,4,5]}", "clear", "clear", "clear");
    /* both missing: two of three */
    flags_for(r, "{\"reply\":\"Noted.\",\"q1\":[4,4,4]}", "fired", "clear", "clear");
    /* one missing and a low median */
    flags_for(r, "{\"reply\":\"Sorry.\",\"q1\":[2,2,3]}", "fired", "clear", "clear");
    /* a single rater's 1 fires although the median is 4 */
    flags_for(r, "{\"reply\":\"Sorry, I understand.\",\"q1\":[1,4,5]}", "clear", "fired", "clear");
    flags_for(r, "{\"reply\":\"Sorry, I understand.\",\"q1\":[5,5,4]}", "clear", "clear", "fired");
    /* a missing rating leaves the per-rater flag pending */
    flags_for(r, "{\"reply\":\"Sorry, I understand.\",\"q1\":[1,4]}", "pending", "pending",
              "pending");
    /* the language is checked at load */
    const char *bad[] = {"count()", "count(points(q1)) > 1", "min_rating(reply) <= 1",
                         "count(missing(reply.apology)", "min_rating(q1)"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char buf[1024];
        snprintf(buf, sizeof buf,
                 "{\"id\":\"b\",\"version\":\"1\",\"sections\":[{\"id\":\"s\"}],\"items\":["
                 "{\"id\":\"reply\",\"type\":\"text\",\"section\":\"s\",\"elements\":[{\"id\":"
                 "\"apology\",\"phrases\":[\"sorry\"]}]},{\"id\":\"q1\",\"type\":\"rating\","
                 "\"section\":\"s\",\"scale\":{\"min\":1,\"max\":5}}],\"red_flags\":[{\"id\":"
                 "\"f\",\"when\":\"%s\",\"reason\":\"r\"}]}",
                 bad[i]);
        grading_rubric_t *x = NULL;
        grading_error_t e;
        if (grading_rubric_load_json(buf, strlen(buf), &x, &e) == GRADING_OK) {
            grading_rubric_destroy(&x);
            fail_msg("accepted: %s", bad[i]);
        }
        assert_string_equal(e.path, "red_flags[0].when");
    }
    grading_rubric_destroy(&r);
}

static void test_numeric_dates_without_a_year(void **state)
{
    grading_rubric_t *r = tg_load(RUBRIC);
    assert_non_null(r);
    assert_int_equal(tg_grade_one(r, "dates", "\"7/15 and 8/15\""), 2000);
    assert_int_equal(tg_grade_one(r, "dates", "\"CRM 07/15, invoice 08/15\""), 2000);
    assert_int_equal(tg_grade_one(r, "dates", "\"15/7 vs 15/8\""), 2000); /* day first */
    assert_int_equal(tg_grade_one(r, "dates", "\"not 7/15, it is 8/15\""), 1000);
    /* EU policy reads 5/7 as 5 July */
    assert_int_equal(tg_grade_one(r, "eudates", "\"5/7\""), 1000);
    assert_int_equal(tg_grade_one(r, "eudates", "\"7/5\""), 0);
    /* no default year: not a date */
    assert_int_equal(tg_grade_one(r, "noyear", "\"7/15\""), 0);
    /* not dates: decimals, percents, a third part, impossible days */
    assert_int_equal(tg_grade_one(r, "dates", "\"7/15% and 8/15.5\""), 0);
    assert_int_equal(tg_grade_one(r, "dates", "\"2/30 and 7/15/20255\""), 0);
    grading_rubric_destroy(&r);
}

/* The canonical map of item i of a loaded rubric. */
static const msgpack_object *canonical_item(const grading_rubric_t *r, msgpack_unpacked *up,
                                            size_t i)
{
    size_t len;
    const void *buf = grading_rubric_canonical(r, &len);
    size_t off = 0;
    msgpack_unpacked_init(up);
    if (msgpack_unpack_next(up, buf, len, &off) != MSGPACK_UNPACK_SUCCESS)
        return NULL;
    const msgpack_object *items = tg_get(&up->data, "items");
    return items && i < items->via.array.size ? &items->via.array.ptr[i] : NULL;
}

static void test_later_fields_keep_old_hashes(void **state)
{
    /* A rubric that does not use the direction, written-plan or pick-tie
     * fields has no trace of them in its canonical form (so its hash is the
     * one it had before they existed); one that uses them keeps them. */
    const char *plain =
        "{\"id\":\"p\",\"version\":\"1\",\"sections\":[{\"id\":\"s\"}],\"entities\":[{\"id\":"
        "\"acme\",\"name\":\"ACME\"}],\"items\":[{\"id\":\"e\",\"type\":\"entity\",\"section\":"
        "\"s\",\"expect\":[\"acme\"],\"bare_name\":\"none\",\"reversed_penalty\":1},"
        "{\"id\":\"o\",\"type\":\"ordering\",\"section\":\"s\",\"rules\":[],\"steps\":[{\"id\":"
        "\"a\"},{\"id\":\"b\"}]},{\"id\":\"k\",\"type\":\"pick\",\"section\":\"s\","
        "\"reasoning_requires_pick\":false,\"columns\":[\"c\"],\"rows\":[{\"id\":\"x\",\"cells\":"
        "{\"c\":\"1\"}},{\"id\":\"y\",\"cells\":{\"c\":\"2\"}}],\"answers\":[\"x\"],"
        "\"elements\":[{\"id\":\"w\",\"phrases\":[\"why\"]}]}]}";
    grading_rubric_t *r = tg_load(plain);
    assert_non_null(r);
    const char *later[3][6] = {
        {"wrong", "right", "wrong_points", "right_points", "reversed_penalty", "bare_name"},
        {"elements", "rules", "typo_min_length", NULL, NULL, NULL},
        {"reasoning_requires_pick", NULL, NULL, NULL, NULL, NULL}};
    for (size_t i = 0; i < 3; i++) {
        msgpack_unpacked up;
        const msgpack_object *it = canonical_item(r, &up, i);
        assert_non_null(it);
        for (size_t k = 0; k < 6 && later[i][k]; k++)
            if (tg_get(it, later[i][k]))
                fail_msg("item %zu: %s in the canonical form", i, later[i][k]);
        msgpack_unpacked_destroy(&up);
    }
    grading_rubric_destroy(&r);
    /* used, they are kept, and the canonical bytes reload to the same hash */
    r = tg_load(RUBRIC);
    assert_non_null(r);
    msgpack_unpacked up;
    const msgpack_object *fix = canonical_item(r, &up, 3);
    assert_true(tg_streq(tg_get(fix, "id"), "fix"));
    assert_true(tg_streq(tg_get(fix, "bare_name"), "right"));
    assert_non_null(tg_get(fix, "wrong"));
    assert_null(tg_get(fix, "reversed_penalty"));
    msgpack_unpacked_destroy(&up);
    const msgpack_object *plan = canonical_item(r, &up, 4);
    assert_non_null(tg_get(plan, "elements"));
    assert_null(tg_get(plan, "typo_min_length"));
    msgpack_unpacked_destroy(&up);
    size_t len;
    const void *buf = grading_rubric_canonical(r, &len);
    grading_rubric_t *r2 = NULL;
    grading_error_t e;
    assert_int_equal(grading_rubric_load_msgpack(buf, len, &r2, &e), GRADING_OK);
    assert_string_equal(grading_rubric_hash(r), grading_rubric_hash(r2));
    grading_rubric_destroy(&r2);
    grading_rubric_destroy(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_contrast_and_correction_around_numbers),
        cmocka_unit_test(test_entity_correction_direction),
        cmocka_unit_test(test_written_plan_elements_and_blank_answers),
        cmocka_unit_test(test_pick_reasoning_tied_to_pick),
        cmocka_unit_test(test_count_and_per_rater_terms),
        cmocka_unit_test(test_numeric_dates_without_a_year),
        cmocka_unit_test(test_later_fields_keep_old_hashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
