/*
 * test_grading_ordering.c - ordering items: Moodle Ordering's grading types
 * on the cases of Moodle's own question_test.php (items Modular, Object,
 * Oriented, Dynamic, Learning, Environment), PrairieLearn's DAG and LCS
 * partial credit, Kendall tau, weighted precedence with a critical cap, the
 * untouched-order rule, and steps recognised in free text.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_grading_util.h"

static grading_rubric_t *moodle_rubric(const char *scheme)
{
    char j[2048];
    snprintf(j, sizeof j,
             "{\"id\":\"o\",\"version\":\"1\",\"sections\":[{\"id\":\"s\"}],\"items\":[{\"id\":"
             "\"q\",\"type\":\"ordering\",\"section\":\"s\",\"points\":1000,\"scheme\":\"%s\","
             "\"steps\":[{\"id\":\"Modular\"},{\"id\":\"Object\"},{\"id\":\"Oriented\"},"
             "{\"id\":\"Dynamic\"},{\"id\":\"Learning\"},{\"id\":\"Environment\"}]}]}",
             scheme);
    return tg_load(j);
}

#define CORRECT "[\"Modular\",\"Object\",\"Oriented\",\"Dynamic\",\"Learning\",\"Environment\"]"
#define REVERSE "[\"Environment\",\"Learning\",\"Dynamic\",\"Oriented\",\"Object\",\"Modular\"]"
#define EOODLM "[\"Environment\",\"Object\",\"Oriented\",\"Dynamic\",\"Learning\",\"Modular\"]"
#define OOLDLEM "[\"Oriented\",\"Object\",\"Dynamic\",\"Learning\",\"Environment\",\"Modular\"]"
#define OODLEM "[\"Object\",\"Oriented\",\"Dynamic\",\"Learning\",\"Environment\",\"Modular\"]"

/* Earned thousandths of 1000 points = Moodle's fraction x 1000, rounded. */
static int64_t frac(const char *scheme, const char *resp)
{
    grading_rubric_t *r = moodle_rubric(scheme);
    assert_non_null(r);
    int64_t got = (tg_grade_one(r, "q", resp) + 500) / 1000;
    grading_rubric_destroy(&r);
    return got;
}

static void test_moodle_ordering_grading_types(void **state)
{
    assert_int_equal(frac("all_or_nothing", CORRECT), 1000);
    assert_int_equal(frac("all_or_nothing", REVERSE), 0);
    assert_int_equal(frac("all_or_nothing", OOLDLEM), 0);

    assert_int_equal(frac("absolute_position", CORRECT), 1000);
    assert_int_equal(frac("absolute_position", REVERSE), 0);
    assert_int_equal(frac("absolute_position", EOODLM), 667);  /* 4/6 */
    assert_int_equal(frac("absolute_position", OOLDLEM), 167); /* 1/6 */

    assert_int_equal(frac("relative_next_exclude_last", CORRECT), 1000);
    assert_int_equal(frac("relative_next_exclude_last", REVERSE), 0);
    assert_int_equal(frac("relative_next_exclude_last", EOODLM), 600);
    assert_int_equal(frac("relative_next_exclude_last", OOLDLEM), 400);

    assert_int_equal(frac("relative_next_include_last", CORRECT), 1000);
    assert_int_equal(frac("relative_next_include_last", REVERSE), 0);
    assert_int_equal(frac("relative_next_include_last", EOODLM), 500);

    assert_int_equal(frac("relative_one_previous_and_next", CORRECT), 1000);
    assert_int_equal(frac("relative_one_previous_and_next", REVERSE), 0);
    assert_int_equal(frac("relative_one_previous_and_next", OOLDLEM), 333);

    assert_int_equal(frac("relative_all_previous_and_next", CORRECT), 1000);
    assert_int_equal(frac("relative_all_previous_and_next", REVERSE), 0);
    assert_int_equal(frac("relative_all_previous_and_next", OOLDLEM), 600);
    assert_int_equal(frac("relative_all_previous_and_next", OODLEM), 667);

    assert_int_equal(frac("longest_ordered_subset", CORRECT), 1000);
    assert_int_equal(frac("longest_ordered_subset", REVERSE), 0);
    assert_int_equal(frac("longest_ordered_subset", OODLEM), 833);

    assert_int_equal(frac("longest_contiguous_subset", CORRECT), 1000);
    assert_int_equal(frac("longest_contiguous_subset", REVERSE), 0);
    assert_int_equal(frac("longest_contiguous_subset", OODLEM), 833);

    assert_int_equal(frac("relative_to_correct", CORRECT), 1000);
    assert_int_equal(frac("relative_to_correct", REVERSE), 400);
    assert_int_equal(frac("relative_to_correct", OODLEM), 667);
}

static void test_prairielearn_dag_and_lcs(void **state)
{
    /* A before B and C; B and C in any order; D last (PrairieLearn depends). */
    const char *j = "{\"id\":\"o\",\"version\":\"1\",\"sections\":[{\"id\":\"s\"}],\"items\":["
                    "{\"id\":\"dag\",\"type\":\"ordering\",\"section\":\"s\",\"points\":1000,"
                    "\"scheme\":\"dag\","
                    "\"steps\":[{\"id\":\"A\"},{\"id\":\"B\"},{\"id\":\"C\"},{\"id\":\"D\"}],"
                    "\"depends\":{\"B\":[\"A\"],\"C\":[\"A\"],\"D\":[\"B\",\"C\"]}},"
                    "{\"id\":\"lcs\",\"type\":\"ordering\",\"section\":\"s\",\"points\":1000,"
                    "\"scheme\":\"lcs\","
                    "\"steps\":[{\"id\":\"A\"},{\"id\":\"B\"},{\"id\":\"C\"},{\"id\":\"D\"}],"
                    "\"depends\":{\"B\":[\"A\"],\"C\":[\"A\"],\"D\":[\"B\",\"C\"]}}]}";
    grading_rubric_t *r = tg_load(j);
    assert_non_null(r);
    assert_int_equal(tg_grade_one(r, "dag", "[\"A\",\"C\",\"B\",\"D\"]"), 1000000);
    assert_int_equal(tg_grade_one(r, "dag", "[\"A\",\"B\",\"C\",\"D\"]"), 1000000);
    assert_int_equal(tg_grade_one(r, "dag", "[\"B\",\"A\",\"C\",\"D\"]"), 0);
    assert_int_equal(tg_grade_one(r, "lcs", "[\"A\",\"C\",\"B\",\"D\"]"), 1000000);
    /* one deletion + one insertion: (4 - 2) / 4 */
    assert_int_equal(tg_grade_one(r, "lcs", "[\"B\",\"A\",\"C\",\"D\"]"), 500000);
    /* D first: D conflicts with A, B, C -> delete D, reinsert: 0.5 */
    assert_int_equal(tg_grade_one(r, "lcs", "[\"D\",\"A\",\"B\",\"C\"]"), 500000);
    /* a missing block is one insertion: (4 - 1) / 4 */
    assert_int_equal(tg_grade_one(r, "lcs", "[\"A\",\"B\",\"D\"]"), 750000);
    /* reversed: keep one, 3 deletions + 3 insertions -> 0 */
    assert_int_equal(tg_grade_one(r, "lcs", "[\"D\",\"C\",\"B\",\"A\"]"), 0);
    grading_rubric_destroy(&r);
}

/* PrairieLearn's own dag_checker_test.py, problem 1: edit distances 0, 0, 2
 * and 4 on a 10-block DAG, so lcs scores 10, 10, 8 and 6 of 10, and only the
 * first two are valid orders for dag. */
static void test_prairielearn_published_cases(void **state)
{
    const char *steps = "\"steps\":[{\"id\":\"1\"},{\"id\":\"2\"},{\"id\":\"3\"},{\"id\":\"4\"},"
                        "{\"id\":\"5\"},{\"id\":\"6\"},{\"id\":\"7\"},{\"id\":\"8\"},"
                        "{\"id\":\"9\"},{\"id\":\"10\"}],\"depends\":{\"2\":[\"1\"],\"3\":[\"1\"],"
                        "\"4\":[\"2\",\"3\"],\"5\":[\"1\"],\"6\":[\"2\"],\"7\":[\"4\",\"5\",\"6\"],"
                        "\"9\":[\"7\",\"8\"],\"10\":[\"9\"]}";
    char j[4096];
    snprintf(j, sizeof j,
             "{\"id\":\"o\",\"version\":\"1\",\"sections\":[{\"id\":\"s\"}],\"items\":["
             "{\"id\":\"lcs\",\"type\":\"ordering\",\"section\":\"s\",\"points\":10,"
             "\"scheme\":\"lcs\",%s},{\"id\":\"dag\",\"type\":\"ordering\",\"section\":\"s\","
             "\"points\":10,\"scheme\":\"dag\",%s}]}",
             steps, steps);
    grading_rubric_t *r = tg_load(j);
    assert_non_null(r);
    const char *subs[] = {"[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\",\"9\",\"10\"]",
                          "[\"8\",\"1\",\"3\",\"2\",\"6\",\"4\",\"5\",\"7\",\"9\",\"10\"]",
                          "[\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"9\",\"8\",\"10\"]",
                          "[\"1\",\"2\",\"6\",\"3\",\"4\",\"5\"]"};
    const int64_t edit[] = {0, 0, 2, 4};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(tg_grade_one(r, "lcs", subs[i]), (10 - edit[i]) * 1000);
        assert_int_equal(tg_grade_one(r, "dag", subs[i]), i < 2 ? 10000 : 0);
    }
    grading_rubric_destroy(&r);
}

static void test_kendall_precedence_and_untouched_order(void **state)
{
    const char *j =
        "{\"id\":\"o\",\"version\":\"1\",\"sections\":[{\"id\":\"s\"}],\"items\":["
        "{\"id\":\"k\",\"type\":\"ordering\",\"section\":\"s\",\"points\":1,"
        "\"scheme\":\"kendall_tau\",\"steps\":[{\"id\":\"a\"},{\"id\":\"b\"},{\"id\":\"c\"},"
        "{\"id\":\"d\"}],\"presented\":[\"b\",\"a\",\"d\",\"c\"]},"
        "{\"id\":\"p\",\"type\":\"ordering\",\"section\":\"s\",\"points\":10,"
        "\"scheme\":\"precedence\",\"steps\":[{\"id\":\"ack\"},{\"id\":\"facts\"},"
        "{\"id\":\"update\"},{\"id\":\"rca\"}],\"constraints\":["
        "{\"id\":\"ack_first\",\"before\":\"ack\",\"after\":\"rca\",\"weight\":2,"
        "\"critical\":true,\"cap\":\"0.3\"},"
        "{\"id\":\"facts_then_update\",\"before\":\"facts\",\"after\":\"update\"},"
        "{\"id\":\"ack_then_facts\",\"before\":\"ack\",\"after\":\"facts\"}]}],"
        "\"red_flags\":[{\"id\":\"rca_first\",\"when\":\"missing(p.ack_first)\",\"reason\":\"r\","
        "\"effect\":\"review\"}]}";
    grading_rubric_t *r = tg_load(j);
    assert_non_null(r);
    /* 6 pairs: b<a discordant, others concordant -> (5 - 1) / 6 */
    assert_int_equal(tg_grade_one(r, "k", "[\"b\",\"a\",\"c\",\"d\"]"), 667);
    assert_int_equal(tg_grade_one(r, "k", "[\"d\",\"c\",\"b\",\"a\"]"), 0);
    /* the untouched presented order earns nothing, whatever it would score */
    assert_int_equal(tg_grade_one(r, "k", "[\"b\",\"a\",\"d\",\"c\"]"), 0);
    /* all constraints kept */
    assert_int_equal(tg_grade_one(r, "p", "[\"ack\",\"facts\",\"update\",\"rca\"]"), 10000);
    /* critical violated: 2 of 4 weight kept = 5, capped at 0.3 x 10 = 3 */
    assert_int_equal(tg_grade_one(r, "p", "[\"rca\",\"ack\",\"facts\",\"update\"]"), 3000);
    /* a non-critical one violated: 3 of 4 */
    assert_int_equal(tg_grade_one(r, "p", "[\"ack\",\"update\",\"facts\",\"rca\"]"), 7500);
    /* repeated steps count once; unknown ones are invalid */
    assert_int_equal(tg_grade_one(r, "p", "[\"ack\",\"ack\",\"facts\",\"update\",\"rca\"]"), 10000);
    assert_int_equal(tg_grade_one(r, "p", "[\"ack\",\"nope\"]"), -1);
    grading_rubric_destroy(&r);
}

static void test_steps_recognised_in_free_text(void **state)
{
    const char *j = "{\"id\":\"o\",\"version\":\"1\",\"sections\":[{\"id\":\"s\"}],\"items\":["
                    "{\"id\":\"p\",\"type\":\"ordering\",\"section\":\"s\",\"points\":4,"
                    "\"scheme\":\"absolute_position\",\"steps\":["
                    "{\"id\":\"ack\",\"phrases\":[\"acknowledge\",\"contact the customer\"]},"
                    "{\"id\":\"facts\",\"phrases\":[\"engineering\",\"gather facts\"]},"
                    "{\"id\":\"update\",\"phrases\":[\"regular updates\",\"update the customer\"]},"
                    "{\"id\":\"rca\",\"phrases\":[\"root cause\",\"post-mortem\"]}]}]}";
    grading_rubric_t *r = tg_load(j);
    assert_non_null(r);
    assert_int_equal(
        tg_grade_one(r, "p",
                     "\"1. Contact the customer right away. 2. Pull in engineering. 3. Send "
                     "regular updates. 4. Share the root cause analysis.\""),
        4000);
    /* root cause first: every position off */
    assert_int_equal(tg_grade_one(r, "p",
                                  "\"Find the root cause, then involve engineering, then "
                                  "acknowledge, and send regular updates.\""),
                     1000);
    /* a negated mention is not the step */
    assert_int_equal(tg_grade_one(r, "p",
                                  "\"Do not contact the customer yet. Gather facts with "
                                  "engineering. Send regular updates. Root cause.\""),
                     0);
    grading_rubric_destroy(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_moodle_ordering_grading_types),
        cmocka_unit_test(test_prairielearn_dag_and_lcs),
        cmocka_unit_test(test_prairielearn_published_cases),
        cmocka_unit_test(test_kendall_precedence_and_untouched_order),
        cmocka_unit_test(test_steps_recognised_in_free_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
