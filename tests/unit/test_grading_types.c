/*
 * test_grading_types.c - date, entity, pick and rating items.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_grading_util.h"

static const char *RUBRIC =
    "{\"id\":\"types\",\"version\":\"1\",\"sections\":[{\"id\":\"s\"},{\"id\":\"i\"}],"
    "\"entities\":[{\"id\":\"acme\",\"name\":\"ACME Inc\",\"aliases\":[\"Acme Incorporated\","
    "\"ACME\"]},{\"id\":\"apex\",\"name\":\"Apex Corp\",\"aliases\":[\"Apex Corporation\","
    "\"Apex\"]}],"
    "\"items\":["
    "{\"id\":\"one\",\"type\":\"date\",\"section\":\"s\",\"answers\":[\"2025-07-15\"]},"
    "{\"id\":\"eu\",\"type\":\"date\",\"section\":\"s\",\"policy\":\"eu\",\"answers\":["
    "\"2025-07-05\"]},"
    "{\"id\":\"both\",\"type\":\"date\",\"section\":\"s\",\"points\":2,\"mode\":\"all\","
    "\"default_year\":2025,\"answers\":[\"2025-07-15\",\"2025-08-15\"]},"
    "{\"id\":\"slip\",\"type\":\"entity\",\"section\":\"s\",\"points\":2,\"expect\":[\"apex\","
    "\"acme\"]},"
    "{\"id\":\"reply\",\"type\":\"entity\",\"section\":\"s\",\"expect\":[\"acme\"],\"forbid\":"
    "[\"apex\"]},"
    "{\"id\":\"risk\",\"type\":\"pick\",\"section\":\"s\",\"points\":4,\"pick_points\":2,"
    "\"cite_points\":\"0.5\",\"cite_max\":2,\"columns\":[\"customer\",\"usage\",\"nps\"],"
    "\"cite_columns\":[\"usage\",\"nps\"],\"rows\":["
    "{\"id\":\"betainc\",\"names\":[\"BetaInc\",\"Beta Inc\"],\"cells\":{\"customer\":"
    "\"BetaInc\",\"usage\":\"40%\",\"nps\":\"5\"}},"
    "{\"id\":\"deltacorp\",\"names\":[\"DeltaCorp\",\"Delta Corp\"],\"cells\":{\"customer\":"
    "\"DeltaCorp\",\"usage\":\"50%\",\"nps\":\"2\"}},"
    "{\"id\":\"sigma\",\"names\":[\"Sigma Ltd\"],\"cells\":{\"customer\":\"Sigma Ltd\","
    "\"usage\":\"110%\",\"nps\":\"8\"}}],\"answers\":[\"deltacorp\"],"
    "\"elements\":[{\"id\":\"churn\",\"points\":1,\"phrases\":[\"churn\",\"detractor\"]}]},"
    "{\"id\":\"interview\",\"type\":\"rating\",\"section\":\"i\",\"points\":4,\"scale\":{"
    "\"min\":1,\"max\":5},\"anchors\":[{\"value\":1,\"label\":\"tone-deaf about customers\"},"
    "{\"value\":5,\"label\":\"customer-centric, specific examples\"}],\"raters_required\":2,"
    "\"aggregate\":\"median\",\"disagreement_gap\":1},"
    "{\"id\":\"trim\",\"type\":\"rating\",\"section\":\"i\",\"scale\":{\"min\":0,\"max\":4},"
    "\"raters_required\":3,\"aggregate\":\"trimmed_mean\",\"trim\":1}],"
    "\"red_flags\":[{\"id\":\"split\",\"when\":\"disagreement(interview)\",\"reason\":\"raters "
    "disagree\",\"effect\":\"review\"}]}";

static void test_dates_in_every_written_form(void **state)
{
    grading_rubric_t *r = tg_load(RUBRIC);
    assert_non_null(r);
    const char *yes[] = {"\"July 15, 2025\"",
                         "\"15 Jul 2025\"",
                         "\"2025-07-15\"",
                         "\"7/15/2025\"",
                         "\"15/7/2025\"",
                         "\"Jul. 15th 2025\"",
                         "\"the 15th of July, 2025\"",
                         "\"renewal is on July 15 2025.\"",
                         "\"07/15/25\""};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        if (tg_grade_one(r, "one", yes[i]) != 1000)
            fail_msg("not read as 2025-07-15: %s", yes[i]);
    assert_int_equal(tg_grade_one(r, "one", "\"July 16, 2025\""), 0);
    assert_int_equal(tg_grade_one(r, "one", "\"2/30/2025 or July 15\""), 0); /* no year */
    assert_int_equal(tg_grade_one(r, "one", "\"It is not July 15, 2025; it is August 15, 2025\""),
                     0);
    /* policy: 5/7/2025 is 5 July in the EU reading, 7 May in the US one */
    assert_int_equal(tg_grade_one(r, "eu", "\"5/7/2025\""), 1000);
    assert_int_equal(tg_grade_one(r, "eu", "\"05.07.2025\""), 1000);
    assert_int_equal(tg_grade_one(r, "one", "\"5/7/2025\""), 0);
    /* both sides of a discrepancy, with the default year */
    assert_int_equal(tg_grade_one(r, "both", "\"CRM says July 15, invoice says Aug 15\""), 2000);
    assert_int_equal(tg_grade_one(r, "both", "\"the renewal date is July 15\""), 1000);
    assert_int_equal(tg_grade_one(r, "both", "\"\""), 0);
    grading_rubric_destroy(&r);
}

static void test_entities_with_aliases_and_wrong_names(void **state)
{
    grading_rubric_t *r = tg_load(RUBRIC);
    assert_int_equal(tg_grade_one(r, "slip", "\"It says Apex Corp; the client is ACME Inc.\""),
                     2000);
    assert_int_equal(tg_grade_one(r, "slip", "\"wrong company name: apex corporation vs acme\""),
                     2000);
    assert_int_equal(tg_grade_one(r, "slip", "\"The company name is wrong\""), 0);
    assert_int_equal(tg_grade_one(r, "slip", "\"Apex.\""), 1000);
    /* the reply must address ACME and must not slip into Apex */
    assert_int_equal(tg_grade_one(r, "reply", "\"Hi ACME Incorporated team,\""), 1000);
    assert_int_equal(tg_grade_one(r, "reply", "\"Hi ACME team, great to meet you at Apex Corp\""),
                     0);
    assert_int_equal(tg_grade_one(r, "reply", "\"Hi ACME team (not Apex Corp, sorry!)\""), 1000);
    grading_rubric_destroy(&r);
}

static void test_pick_rewards_grounded_reasoning(void **state)
{
    grading_rubric_t *r = tg_load(RUBRIC);
    /* right pick, generic reasoning */
    assert_int_equal(tg_grade_one(r, "risk",
                                  "{\"pick\":\"deltacorp\",\"reasoning\":\"They "
                                  "might churn.\"}"),
                     3000);
    /* right pick, reasoning citing the row's own figures */
    assert_int_equal(tg_grade_one(r, "risk",
                                  "{\"pick\":\"DeltaCorp\",\"reasoning\":\"Usage is "
                                  "only 50% and NPS is 2, a detractor likely to "
                                  "churn.\"}"),
                     4000);
    /* wrong pick citing its own figures earns no grounding */
    assert_int_equal(tg_grade_one(r, "risk",
                                  "{\"pick\":\"betainc\",\"reasoning\":\"40% usage, "
                                  "NPS 5.\"}"),
                     0);
    /* one text: the first row named and not denied is the pick */
    assert_int_equal(tg_grade_one(r, "risk", "\"Not BetaInc: Delta Corp, with 50% usage.\""), 2500);
    assert_int_equal(tg_grade_one(r, "risk", "{\"pick\":\"nobody\"}"), -1);
    grading_rubric_destroy(&r);
}

static grading_err_t grade_json(const grading_rubric_t *r, const char *json, tg_result_t *tr,
                                grading_result_t *res)
{
    tg_msg_t m;
    const msgpack_object *o = tg_msg_from_json(&m, json);
    grading_error_t e;
    grading_err_t rc = grading_grade(r, o, res, &e);
    if (rc == GRADING_OK)
        tg_result_open(tr, res);
    tg_msg_free(&m);
    return rc;
}

static void test_ratings_aggregate_flag_and_pend(void **state)
{
    grading_rubric_t *r = tg_load(RUBRIC);
    /* median of 4 and 5 = 4.5 on 1..5 -> 3.5/4 of 4 points */
    assert_int_equal(tg_grade_one(r, "interview", "{\"ana\":4,\"ben\":5}"), 3500);
    assert_int_equal(tg_grade_one(r, "interview", "[3,3,5]"), 2000);
    /* trimmed mean of 0,3,4 -> 3 on 0..4 */
    assert_int_equal(tg_grade_one(r, "trim", "[4,0,3]"), 750);
    assert_int_equal(tg_grade_one(r, "interview", "[7,3]"), -1);
    assert_int_equal(tg_grade_one(r, "interview", "[\"4\",3]"), -1);

    tg_result_t tr;
    grading_result_t res;
    /* a missing rating leaves the item, the section and the decision pending */
    assert_int_equal(
        grade_json(r, "{\"interview\":{\"ana\":4,\"ben\":null},\"trim\":[1,2,3]}", &tr, &res),
        GRADING_OK);
    assert_true(tg_streq(tg_get(tg_item(&tr, "interview"), "status"), "pending"));
    assert_true(tg_streq(tg_get(tr.root, "decision"), "pending"));
    assert_true(tg_streq(tg_get(tr.root, "status"), "pending"));
    tg_result_close(&tr);
    grading_result_free(&res);
    /* raters 2 apart with a gap of 1: disagreement, and the red flag reads it */
    assert_int_equal(
        grade_json(r, "{\"interview\":{\"ana\":2,\"ben\":4},\"trim\":[1,2,3]}", &tr, &res),
        GRADING_OK);
    const msgpack_object *fl = &tg_get(tr.root, "red_flags")->via.array.ptr[0];
    assert_true(tg_get(fl, "fired")->via.boolean);
    tg_result_close(&tr);
    grading_result_free(&res);
    grading_rubric_destroy(&r);
}

/* Responses no client should send: deep nesting, binary, huge arrays. */
static void test_hostile_responses(void **state)
{
    grading_rubric_t *r = tg_load(RUBRIC);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    msgpack_pack_str(&pk, 3);
    msgpack_pack_str_body(&pk, "one", 3);
    for (int i = 0; i < 30; i++) /* msgpack-c unpacks at most 32 levels */
        msgpack_pack_array(&pk, 1);
    msgpack_pack_nil(&pk);
    msgpack_pack_str(&pk, 5);
    msgpack_pack_str_body(&pk, "reply", 5);
    msgpack_pack_bin(&pk, 4);
    msgpack_pack_bin_body(&pk, "ACME", 4);
    msgpack_pack_str(&pk, 9);
    msgpack_pack_str_body(&pk, "interview", 9);
    msgpack_pack_array(&pk, 5000);
    for (int i = 0; i < 5000; i++)
        msgpack_pack_int(&pk, 3);
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    assert_int_equal(msgpack_unpack_next(&up, sb.data, sb.size, &off), MSGPACK_UNPACK_SUCCESS);
    grading_result_t res;
    grading_error_t e;
    grading_err_t rc = grading_grade(r, &up.data, &res, &e);
    assert_true(rc == GRADING_ERR_INVALID_RESPONSE || rc == GRADING_ERR_LIMIT);
    assert_true(strncmp(e.path, "responses.", 10) == 0);
    assert_null(res.data);
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
    /* a map key that is not a string */
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    msgpack_pack_int(&pk, 7);
    msgpack_pack_int(&pk, 7);
    msgpack_unpacked_init(&up);
    off = 0;
    msgpack_unpack_next(&up, sb.data, sb.size, &off);
    assert_int_equal(grading_grade(r, &up.data, &res, &e), GRADING_ERR_INVALID_RESPONSE);
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&sb);
    /* emoji, right-to-left and control bytes where numbers and dates are expected */
    assert_int_equal(tg_grade_one(r, "one", "\"\\ud83d\\ude00 \\u05d9\\u05d5\\u05dc\\u05d9 15\""),
                     0);
    assert_int_equal(tg_grade_one(r, "both", "\"\\u202eJuly 15\\u202c and \\ud83d\\udcc5 Aug 15\""),
                     2000);
    grading_rubric_destroy(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dates_in_every_written_form),
        cmocka_unit_test(test_entities_with_aliases_and_wrong_names),
        cmocka_unit_test(test_pick_rewards_grounded_reasoning),
        cmocka_unit_test(test_ratings_aggregate_flag_and_pend),
        cmocka_unit_test(test_hostile_responses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
