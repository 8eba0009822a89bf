/*
 * test_grading.c - the scoring engine's core: rubric loading and errors,
 * canonical form and hash, choice and quantity items, aggregation, bands,
 * decisions, red flags, the digest, and the csm-smb sample attempts.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <dirent.h>
#include <sodium.h>

#include "test_grading_util.h"

/* ---------------------------------------------------------------- rubric */

static const char *MINI =
    "{\"id\":\"mini\",\"version\":\"1\",\"sections\":[{\"id\":\"s\",\"weight\":1}],"
    "\"items\":[{\"id\":\"q\",\"type\":\"quantity\",\"section\":\"s\",\"points\":2,"
    "\"kind\":\"percent\",\"answers\":[{\"value\":\"8.3\",\"tolerance\":\"0.05\"}]},"
    "{\"id\":\"c\",\"type\":\"choice\",\"section\":\"s\",\"options\":["
    "{\"id\":\"a\",\"correct\":true},{\"id\":\"b\"}]}]}";

static void test_csm_rubric_loads(void **state)
{
    grading_rubric_t *r = tg_load_file("rubrics/csm-smb/csm-smb.json");
    assert_non_null(r);
    assert_string_equal(grading_rubric_id(r), "csm-smb");
    assert_int_equal(strlen(grading_rubric_hash(r)), 64);
    assert_true(grading_rubric_memory(r) > 0);
    grading_rubric_destroy(&r);
    assert_null(r);
}

static void test_invalid_json_is_json_error(void **state)
{
    grading_rubric_t *r = NULL;
    grading_error_t e;
    assert_int_equal(grading_rubric_load_json("{\"id\":", 6, &r, &e), GRADING_ERR_JSON);
    assert_null(r);
    assert_string_equal(grading_err_code(GRADING_ERR_JSON), "invalid_json");
    assert_true(strstr(e.message, "line 1") != NULL);
}

static void test_rubric_errors_carry_json_paths(void **state)
{
    const char *bad =
        "{\"id\":\"x\",\"version\":\"1\",\"sections\":[{\"id\":\"s\"}],\"items\":["
        "{\"id\":\"a\",\"type\":\"choice\",\"section\":\"s\",\"options\":[{\"id\":\"o1\"},"
        "{\"id\":\"o2\",\"correct\":\"yes\"}]},"
        "{\"id\":\"b\",\"type\":\"quantity\",\"section\":\"nope\",\"answers\":[{\"value\":\"x1\"}],"
        "\"tolerence\":1}]}";
    grading_rubric_t *r = NULL;
    grading_error_t e;
    assert_int_equal(grading_rubric_load_json(bad, strlen(bad), &r, &e),
                     GRADING_ERR_INVALID_RUBRIC);
    assert_null(r);
    assert_string_equal(e.path, "items[0].options[1].correct");
    assert_string_equal(e.message, "expected a boolean, found a string");

    grading_error_t errs[16];
    size_t n = 0;
    assert_int_equal(grading_rubric_lint_json(bad, strlen(bad), errs, 16, &n),
                     GRADING_ERR_INVALID_RUBRIC);
    const char *want[] = {"items[0].options[1].correct", "items[0].options", "items[1].section",
                          "items[1].tolerence", "items[1].answers[0].value"};
    for (size_t w = 0; w < sizeof want / sizeof want[0]; w++) {
        int found = 0;
        for (size_t i = 0; i < n; i++)
            if (strcmp(errs[i].path, want[w]) == 0)
                found = 1;
        if (!found)
            fail_msg("no error reported at %s", want[w]);
    }
}

static void test_same_meaning_hashes_the_same(void **state)
{
    const char *a = "{\"id\":\"h\",\"version\":\"1\",\"sections\":[{\"id\":\"s\"}],"
                    "\"items\":[{\"id\":\"q\",\"type\":\"quantity\",\"section\":\"s\","
                    "\"answers\":[{\"value\":8.30,\"tolerance\":\"0.050\"}]}]}";
    const char *b = "{ \"items\" : [ { \"answers\": [ {\"tolerance\": 0.05, \"value\": \"8.3\"} ],"
                    " \"section\": \"s\", \"type\": \"quantity\", \"id\": \"q\", \"points\": 1,"
                    " \"weight\": \"1.000\" } ],\n \"sections\": [{\"weight\": 1, \"id\": \"s\"}],"
                    " \"version\": \"1\", \"id\": \"h\" }";
    grading_rubric_t *ra = tg_load(a), *rb = tg_load(b);
    assert_non_null(ra);
    assert_non_null(rb);
    assert_string_equal(grading_rubric_hash(ra), grading_rubric_hash(rb));
    size_t la, lb;
    const void *ca = grading_rubric_canonical(ra, &la), *cb = grading_rubric_canonical(rb, &lb);
    assert_int_equal(la, lb);
    assert_memory_equal(ca, cb, la);
    /* a change of meaning changes the hash */
    const char *c = "{\"id\":\"h\",\"version\":\"1\",\"sections\":[{\"id\":\"s\"}],"
                    "\"items\":[{\"id\":\"q\",\"type\":\"quantity\",\"section\":\"s\","
                    "\"answers\":[{\"value\":8.31,\"tolerance\":\"0.05\"}]}]}";
    grading_rubric_t *rc = tg_load(c);
    assert_string_not_equal(grading_rubric_hash(ra), grading_rubric_hash(rc));
    grading_rubric_destroy(&ra);
    grading_rubric_destroy(&rb);
    grading_rubric_destroy(&rc);
}

static void test_canonical_msgpack_reloads_to_same_hash(void **state)
{
    grading_rubric_t *r = tg_load_file("rubrics/csm-smb/csm-smb.json");
    assert_non_null(r);
    size_t len;
    const void *buf = grading_rubric_canonical(r, &len);
    unsigned char h[32];
    char hex[65];
    crypto_hash_sha256(h, buf, len);
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    assert_string_equal(hex, grading_rubric_hash(r));
    grading_rubric_t *r2 = NULL;
    grading_error_t e;
    assert_int_equal(grading_rubric_load_msgpack(buf, len, &r2, &e), GRADING_OK);
    assert_string_equal(grading_rubric_hash(r2), grading_rubric_hash(r));
    size_t len2;
    const void *buf2 = grading_rubric_canonical(r2, &len2);
    assert_int_equal(len, len2);
    assert_memory_equal(buf, buf2, len);
    /* truncated msgpack is an error, not a crash */
    grading_rubric_t *r3 = NULL;
    assert_int_equal(grading_rubric_load_msgpack(buf, len / 2, &r3, &e),
                     GRADING_ERR_INVALID_RUBRIC);
    assert_null(r3);
    grading_rubric_destroy(&r);
    grading_rubric_destroy(&r2);
}

static void test_oversized_rubric_is_limit_error(void **state)
{
    size_t n = (4u << 20) + 10;
    char *big = malloc(n);
    memset(big, ' ', n);
    grading_rubric_t *r = NULL;
    grading_error_t e;
    assert_int_equal(grading_rubric_load_json(big, n, &r, &e), GRADING_ERR_LIMIT);
    assert_string_equal(grading_err_code(e.code), "limit_exceeded");
    free(big);
}

/* ------------------------------------------------------------- quantity */

static void test_quantity_reads_numbers_as_candidates_write_them(void **state)
{
    grading_rubric_t *r = tg_load_file("rubrics/csm-smb/csm-smb.json");
    assert_non_null(r);
    static const struct {
        const char *item, *resp;
        int64_t want;
    } cases[] = {
        {"growth_fix", "\"8.3%\"", 2000},
        {"growth_fix", "\"8.33 %\"", 2000},
        {"growth_fix", "\"+8.3 percent\"", 2000},
        {"growth_fix", "\"8,3 %\"", 2000},
        {"growth_fix", "\"0.083\"", 2000},
        {"growth_fix", "0.0833", 2000},
        {"growth_fix", "\"8.3\"", 2000},
        {"growth_fix", "\"8.29%\"", 2000},
        {"growth_fix", "\"8.25%\"", 2000}, /* rounds to 8.3 at one decimal */
        {"growth_fix", "\"8.2%\"", 0},
        {"growth_fix", "\"8%\"", 1000},
        {"growth_fix", "\"10%\"", 0},
        {"growth_fix", "\"$8.3\"", 0}, /* a currency is not a percent */
        {"growth_fix", "\"the March growth should be about 8.3%, not 10%\"", 2000},
        {"growth_fix", "\"It is not 8.3%, it is 10%\"", 0},
        {"growth_fix", "\"10% is wrong; the right figure is 8.33%\"", 2000},
        {"growth_fix", "\"no idea\"", 0},
        {"growth_fix", "\"1% 2% 3% 4% 8.3%\"", 0}, /* shotgun */
        {"roi_supported", "\"$450k\"", 2000},
        {"roi_supported", "\"450,000\"", 2000},
        {"roi_supported", "\"450 000\"", 2000},
        {"roi_supported", "\"$0.45M\"", 2000},
        {"roi_supported", "\"$450,000.00\"", 2000},
        {"roi_supported", "\"450 thousand dollars\"", 2000},
        {"roi_supported", "450000", 2000},
        {"roi_supported", "\"450000 EUR\"", 0},
        {"roi_supported", "\"45%\"", 0},
        {"roi_supported", "\"$500k\"", 0},
        {"roi_supported", "\"the slide claims $500k but the table supports only $450k\"", 2000},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t got = tg_grade_one(r, cases[i].item, cases[i].resp);
        if (got != cases[i].want)
            fail_msg("%s %s: got %lld, want %lld", cases[i].item, cases[i].resp, (long long)got,
                     (long long)cases[i].want);
    }
    grading_rubric_destroy(&r);
}

static void test_quantity_relative_tolerance_and_sig_figs(void **state)
{
    const char *j =
        "{\"id\":\"t\",\"version\":\"1\",\"sections\":[{\"id\":\"s\"}],\"items\":["
        "{\"id\":\"rel\",\"type\":\"quantity\",\"section\":\"s\",\"answers\":[{\"value\":\"200\","
        "\"tolerance\":\"0.05\",\"tolerance_mode\":\"relative\"}]},"
        "{\"id\":\"sig\",\"type\":\"quantity\",\"section\":\"s\",\"rounding\":{\"mode\":\"sig_"
        "figs\","
        "\"digits\":2},\"answers\":[{\"value\":\"0.0123456\"}]}]}";
    grading_rubric_t *r = tg_load(j);
    assert_non_null(r);
    assert_int_equal(tg_grade_one(r, "rel", "\"210\""), 1000);
    assert_int_equal(tg_grade_one(r, "rel", "\"190\""), 1000);
    assert_int_equal(tg_grade_one(r, "rel", "\"210.01\""), 0);
    assert_int_equal(tg_grade_one(r, "sig", "\"0.012\""), 1000);
    assert_int_equal(tg_grade_one(r, "sig", "\"0.0125\""), 0);
    assert_int_equal(tg_grade_one(r, "sig", "0.01234"), 1000);
    grading_rubric_destroy(&r);
}

static void test_quantity_non_number_response_is_invalid(void **state)
{
    grading_rubric_t *r = tg_load(MINI);
    assert_int_equal(tg_grade_one(r, "q", "[1,2]"), -1);
    assert_int_equal(tg_grade_one(r, "q", "{\"x\":1}"), -1);
    grading_rubric_destroy(&r);
}

/* --------------------------------------------------------------- choice */

static const char *CHOICES =
    "{\"id\":\"ch\",\"version\":\"1\",\"sections\":[{\"id\":\"s\"}],\"items\":["
    "{\"id\":\"aon\",\"type\":\"choice\",\"section\":\"s\",\"points\":4,\"multiple\":true,"
    "\"options\":[{\"id\":\"a\",\"correct\":true},{\"id\":\"b\",\"correct\":true},{\"id\":\"c\"},"
    "{\"id\":\"d\"}]},"
    "{\"id\":\"edc\",\"type\":\"choice\",\"section\":\"s\",\"points\":4,\"multiple\":true,"
    "\"scheme\":\"every_decision\",\"options\":[{\"id\":\"a\",\"correct\":true},{\"id\":\"b\","
    "\"correct\":true},{\"id\":\"c\"},{\"id\":\"d\"}]},"
    "{\"id\":\"cov\",\"type\":\"choice\",\"section\":\"s\",\"points\":4,\"multiple\":true,"
    "\"scheme\":\"coverage\",\"options\":[{\"id\":\"a\",\"correct\":true},{\"id\":\"b\","
    "\"correct\":true},{\"id\":\"c\"},{\"id\":\"d\"}]},"
    "{\"id\":\"net\",\"type\":\"choice\",\"section\":\"s\",\"points\":4,\"multiple\":true,"
    "\"scheme\":\"net_correct\",\"options\":[{\"id\":\"a\",\"correct\":true},{\"id\":\"b\","
    "\"correct\":true},{\"id\":\"c\"},{\"id\":\"d\"}]},"
    "{\"id\":\"val\",\"type\":\"choice\",\"section\":\"s\",\"points\":3,\"multiple\":true,"
    "\"scheme\":\"values\",\"min_points\":0,\"max_points\":3,\"options\":[{\"id\":\"a\","
    "\"value\":2},{\"id\":\"b\",\"value\":\"1.5\"},{\"id\":\"c\",\"value\":-1},{\"id\":\"d\","
    "\"value\":\"-2.5\"}]},"
    "{\"id\":\"one\",\"type\":\"choice\",\"section\":\"s\",\"options\":[{\"id\":\"x\","
    "\"text\":\"Delta Corp.\",\"correct\":true},{\"id\":\"y\",\"text\":\"Sigma Ltd\"}]}]}";

static void test_choice_partial_credit_schemes(void **state)
{
    grading_rubric_t *r = tg_load(CHOICES);
    assert_non_null(r);
    /* all or nothing */
    assert_int_equal(tg_grade_one(r, "aon", "[\"a\",\"b\"]"), 4000);
    assert_int_equal(tg_grade_one(r, "aon", "[\"b\",\"a\",\"a\"]"), 4000);
    assert_int_equal(tg_grade_one(r, "aon", "[\"a\"]"), 0);
    assert_int_equal(tg_grade_one(r, "aon", "[\"a\",\"b\",\"c\"]"), 0);
    /* every decision counts: a right, b missed, c wrong, d right => 2/4 */
    assert_int_equal(tg_grade_one(r, "edc", "[\"a\",\"c\"]"), 2000);
    assert_int_equal(tg_grade_one(r, "edc", "[\"a\"]"), 3000);
    assert_int_equal(tg_grade_one(r, "edc", "[\"a\",\"b\",\"c\",\"d\"]"), 2000);
    /* coverage: (1/2) x (1/2) */
    assert_int_equal(tg_grade_one(r, "cov", "[\"a\",\"c\"]"), 1000);
    assert_int_equal(tg_grade_one(r, "cov", "[\"a\",\"b\",\"c\"]"), 2667);
    /* net correct: (2 - 1) / 2 */
    assert_int_equal(tg_grade_one(r, "net", "[\"a\",\"b\",\"c\"]"), 2000);
    assert_int_equal(tg_grade_one(r, "net", "[\"a\",\"c\",\"d\"]"), 0);
    /* values with bounds: negative marking is clamped at 0, the sum at max */
    assert_int_equal(tg_grade_one(r, "val", "[\"a\",\"b\"]"), 3000);
    assert_int_equal(tg_grade_one(r, "val", "[\"a\",\"c\"]"), 1000);
    assert_int_equal(tg_grade_one(r, "val", "[\"c\",\"d\"]"), 0);
    /* single answer by id or by folded option text */
    assert_int_equal(tg_grade_one(r, "one", "\"x\""), 1000);
    assert_int_equal(tg_grade_one(r, "one", "\"delta corp\""), 1000);
    assert_int_equal(tg_grade_one(r, "one", "[\"y\"]"), 0);
    /* empty selection is unanswered, not an error */
    assert_int_equal(tg_grade_one(r, "aon", "[]"), 0);
    assert_int_equal(tg_grade_one(r, "one", "\"\""), 0);
    /* unknown option or two answers to a single-answer item: invalid */
    assert_int_equal(tg_grade_one(r, "one", "\"z\""), -1);
    assert_int_equal(tg_grade_one(r, "one", "[\"x\",\"y\"]"), -1);
    assert_int_equal(tg_grade_one(r, "aon", "3"), -1);
    grading_rubric_destroy(&r);
}

/* ---------------------------------------------------- responses, results */

static void test_unknown_item_is_invalid_response(void **state)
{
    grading_rubric_t *r = tg_load(MINI);
    tg_msg_t m;
    const msgpack_object *o = tg_msg_from_json(&m, "{\"q\":\"8.3%\",\"nope\":1}");
    grading_result_t res;
    grading_error_t e;
    assert_int_equal(grading_grade(r, o, &res, &e), GRADING_ERR_INVALID_RESPONSE);
    assert_string_equal(e.path, "responses.nope");
    assert_string_equal(grading_err_code(e.code), "invalid_response");
    assert_null(res.data);
    tg_msg_free(&m);
    /* responses that are not a map */
    o = tg_msg_from_json(&m, "[1,2]");
    assert_int_equal(grading_grade(r, o, &res, &e), GRADING_ERR_INVALID_RESPONSE);
    assert_string_equal(e.path, "responses");
    tg_msg_free(&m);
    grading_rubric_destroy(&r);
}

static void test_missing_response_is_unanswered(void **state)
{
    grading_rubric_t *r = tg_load(MINI);
    tg_msg_t m;
    const msgpack_object *o = tg_msg_from_json(&m, "{\"c\":\"a\"}");
    grading_result_t res;
    grading_error_t e;
    assert_int_equal(grading_grade(r, o, &res, &e), GRADING_OK);
    tg_result_t tr;
    tg_result_open(&tr, &res);
    assert_true(tg_streq(tg_get(tg_item(&tr, "q"), "status"), "unanswered"));
    assert_int_equal(tg_int(tg_get(tg_item(&tr, "q"), "points_milli")), 0);
    assert_true(tg_streq(tg_get(tg_item(&tr, "c"), "status"), "scored"));
    /* 1 of 3 points: 3333 basis points */
    assert_int_equal(tg_int(tg_get(tg_get(tr.root, "total"), "percent_bp")), 3333);
    tg_result_close(&tr);
    grading_result_free(&res);
    tg_msg_free(&m);
    /* NULL responses: everything unanswered */
    assert_int_equal(grading_grade(r, NULL, &res, &e), GRADING_OK);
    grading_result_free(&res);
    grading_rubric_destroy(&r);
}

static void test_result_keys_are_sorted_and_complete(void **state)
{
    grading_rubric_t *r = tg_load(MINI);
    tg_msg_t m;
    const msgpack_object *o = tg_msg_from_json(&m, "{\"q\":\"8.3%\",\"c\":\"a\"}");
    grading_result_t res;
    grading_error_t e;
    assert_int_equal(grading_grade(r, o, &res, &e), GRADING_OK);
    tg_result_t tr;
    tg_result_open(&tr, &res);
    const char *keys[] = {"band",      "decision", "digest",   "engine", "items",
                          "red_flags", "rubric",   "sections", "status", "total"};
    assert_int_equal(tr.root->via.map.size, sizeof keys / sizeof keys[0]);
    for (uint32_t i = 0; i < tr.root->via.map.size; i++)
        assert_true(tg_streq(&tr.root->via.map.ptr[i].key, keys[i]));
    assert_true(tg_streq(tg_get(tr.root, "engine"), GRADING_ENGINE));
    assert_true(tg_streq(tg_get(tr.root, "digest"), res.digest));
    assert_true(tg_streq(tg_get(tg_get(tr.root, "rubric"), "hash"), grading_rubric_hash(r)));
    assert_int_equal(tg_int(tg_get(tg_get(tr.root, "total"), "percent_bp")), 10000);
    assert_true(tg_streq(tg_get(tr.root, "decision"), "advance"));
    tg_result_close(&tr);
    grading_result_free(&res);
    tg_msg_free(&m);
    grading_rubric_destroy(&r);
}

/* digest = SHA-256(msgpack [engine, rubric hash, normalised responses,
 * result without "digest"]) - recomputed here from the published definition. */
static void test_digest_is_recomputable(void **state)
{
    grading_rubric_t *r = tg_load(MINI);
    tg_msg_t m;
    const msgpack_object *o = tg_msg_from_json(&m, "{\"q\":0.083,\"c\":[\"a\"]}");
    grading_result_t res;
    grading_error_t e;
    assert_int_equal(grading_grade(r, o, &res, &e), GRADING_OK);
    tg_result_t tr;
    tg_result_open(&tr, &res);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&pk, 4);
    msgpack_pack_str(&pk, strlen(GRADING_ENGINE));
    msgpack_pack_str_body(&pk, GRADING_ENGINE, strlen(GRADING_ENGINE));
    msgpack_pack_str(&pk, 64);
    msgpack_pack_str_body(&pk, grading_rubric_hash(r), 64);
    /* normalised responses: keys sorted ("c" < "q"), 0.083 as "0.083" */
    msgpack_pack_map(&pk, 2);
    msgpack_pack_str(&pk, 1);
    msgpack_pack_str_body(&pk, "c", 1);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_str(&pk, 1);
    msgpack_pack_str_body(&pk, "a", 1);
    msgpack_pack_str(&pk, 1);
    msgpack_pack_str_body(&pk, "q", 1);
    msgpack_pack_str(&pk, 5);
    msgpack_pack_str_body(&pk, "0.083", 5);
    /* the result map minus "digest", same order */
    const msgpack_object *root = tr.root;
    msgpack_pack_map(&pk, root->via.map.size - 1);
    for (uint32_t i = 0; i < root->via.map.size; i++) {
        if (tg_streq(&root->via.map.ptr[i].key, "digest"))
            continue;
        msgpack_pack_object(&pk, root->via.map.ptr[i].key);
        msgpack_pack_object(&pk, root->via.map.ptr[i].val);
    }
    unsigned char h[32];
    char hex[65];
    crypto_hash_sha256(h, (unsigned char *)sb.data, sb.size);
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    assert_string_equal(hex, res.digest);
    msgpack_sbuffer_destroy(&sb);
    tg_result_close(&tr);
    grading_result_free(&res);
    tg_msg_free(&m);
    grading_rubric_destroy(&r);
}

static void test_weights_bands_and_rounding(void **state)
{
    /* section a (weight 3): items 1pt w1 and 2pt w2; section b (weight 1): 1 item.
     * a: earned x (w1) = 1, y 2/3 via every_decision of 3 options... */
    const char *j =
        "{\"id\":\"w\",\"version\":\"1\",\"sections\":[{\"id\":\"a\",\"weight\":3},{\"id\":\"b\","
        "\"weight\":1}],\"items\":["
        "{\"id\":\"x\",\"type\":\"choice\",\"section\":\"a\",\"options\":[{\"id\":\"p\","
        "\"correct\":true},{\"id\":\"q\"}]},"
        "{\"id\":\"y\",\"type\":\"choice\",\"section\":\"a\",\"points\":2,\"weight\":2,"
        "\"multiple\":true,\"scheme\":\"every_decision\",\"options\":[{\"id\":\"p\",\"correct\":"
        "true},{\"id\":\"q\"},{\"id\":\"r\"}]},"
        "{\"id\":\"z\",\"type\":\"choice\",\"section\":\"b\",\"options\":[{\"id\":\"p\","
        "\"correct\":true},{\"id\":\"q\"}]}],"
        "\"bands\":[{\"id\":\"hi\",\"min_percent\":\"66.67\",\"decision\":\"advance\"},"
        "{\"id\":\"lo\",\"min_percent\":0,\"decision\":\"reject\"}]}";
    grading_rubric_t *r = tg_load(j);
    assert_non_null(r);
    tg_msg_t m;
    /* y: p and q picked -> decisions p right, q wrong, r right = 2/3 -> 1333 */
    const msgpack_object *o = tg_msg_from_json(&m, "{\"x\":\"p\",\"y\":[\"p\",\"q\"],\"z\":\"q\"}");
    grading_result_t res;
    grading_error_t e;
    assert_int_equal(grading_grade(r, o, &res, &e), GRADING_OK);
    tg_result_t tr;
    tg_result_open(&tr, &res);
    assert_int_equal(tg_int(tg_get(tg_item(&tr, "y"), "points_milli")), 1333);
    assert_int_equal(tg_int(tg_get(tg_item(&tr, "y"), "percent_bp")), 6665);
    /* section a = (1*1000 + 2*1333) / (1*1000 + 2*2000) = 3666/5000 = 73.32% */
    const msgpack_object *secs = tg_get(tr.root, "sections");
    assert_int_equal(tg_int(tg_get(&secs->via.array.ptr[0], "percent_bp")), 7332);
    assert_int_equal(tg_int(tg_get(&secs->via.array.ptr[1], "percent_bp")), 0);
    /* total = (3 * 7332 + 1 * 0) / 4 = 5499 */
    assert_int_equal(tg_int(tg_get(tg_get(tr.root, "total"), "percent_bp")), 5499);
    assert_true(tg_streq(tg_get(tr.root, "band"), "lo"));
    assert_true(tg_streq(tg_get(tr.root, "decision"), "reject"));
    tg_result_close(&tr);
    grading_result_free(&res);
    tg_msg_free(&m);
    grading_rubric_destroy(&r);
}

static void test_bands_must_descend_to_zero(void **state)
{
    const char *j = "{\"id\":\"b\",\"version\":\"1\",\"sections\":[{\"id\":\"s\"}],\"items\":["
                    "{\"id\":\"x\",\"type\":\"choice\",\"section\":\"s\",\"options\":[{\"id\":"
                    "\"p\",\"correct\":true},{\"id\":\"q\"}]}],\"bands\":[{\"id\":\"a\","
                    "\"min_percent\":50,\"decision\":\"advance\"}]}";
    grading_rubric_t *r = NULL;
    grading_error_t e;
    assert_int_equal(grading_rubric_load_json(j, strlen(j), &r, &e), GRADING_ERR_INVALID_RUBRIC);
    assert_string_equal(e.path, "bands");
}

/* -------------------------------------------------------------- red flags */

static void test_red_flag_disqualifies_whatever_the_total(void **state)
{
    const char *j =
        "{\"id\":\"rf\",\"version\":\"1\",\"sections\":[{\"id\":\"s\"},{\"id\":\"t\"}],\"items\":["
        "{\"id\":\"x\",\"type\":\"choice\",\"section\":\"s\",\"points\":9,\"options\":[{\"id\":"
        "\"p\",\"correct\":true},{\"id\":\"q\"}]},"
        "{\"id\":\"y\",\"type\":\"choice\",\"section\":\"t\",\"options\":[{\"id\":\"p\","
        "\"correct\":true},{\"id\":\"q\"}]}],"
        "\"bands\":[{\"id\":\"hi\",\"min_percent\":40,\"decision\":\"advance\"},{\"id\":\"lo\","
        "\"min_percent\":0,\"decision\":\"reject\"}],"
        "\"red_flags\":[{\"id\":\"no_t\",\"when\":\"missing(y) and (section(t) < 40 or "
        "not answered(y))\",\"reason\":\"t is a must-have\"}]}";
    grading_rubric_t *r = tg_load(j);
    assert_non_null(r);
    tg_msg_t m;
    const msgpack_object *o = tg_msg_from_json(&m, "{\"x\":\"p\",\"y\":\"q\"}");
    grading_result_t res;
    grading_error_t e;
    assert_int_equal(grading_grade(r, o, &res, &e), GRADING_OK);
    tg_result_t tr;
    tg_result_open(&tr, &res);
    assert_int_equal(tg_int(tg_get(tg_get(tr.root, "total"), "percent_bp")), 5000);
    assert_true(tg_streq(tg_get(tr.root, "band"), "hi"));
    assert_true(tg_streq(tg_get(tr.root, "decision"), "reject"));
    const msgpack_object *fl = &tg_get(tr.root, "red_flags")->via.array.ptr[0];
    assert_true(tg_get(fl, "fired")->via.boolean);
    assert_true(tg_streq(tg_get(fl, "reason"), "t is a must-have"));
    assert_true(tg_get(fl, "evidence")->via.array.size >= 2);
    tg_result_close(&tr);
    grading_result_free(&res);
    tg_msg_free(&m);
    grading_rubric_destroy(&r);
}

static void test_red_flag_expression_errors_are_rubric_errors(void **state)
{
    const char *bad[] = {"missing(nope)",   "section(s) <",     "missing(x) and 3", "frobnicate(x)",
                         "missing(x.nope)", "points(x) > 1 or", "((missing(x))"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char j[1024];
        snprintf(j, sizeof j,
                 "{\"id\":\"rf\",\"version\":\"1\",\"sections\":[{\"id\":\"s\"}],\"items\":["
                 "{\"id\":\"x\",\"type\":\"choice\",\"section\":\"s\",\"options\":[{\"id\":\"p\","
                 "\"correct\":true},{\"id\":\"q\"}]}],\"red_flags\":[{\"id\":\"f\",\"when\":\"%s\","
                 "\"reason\":\"r\"}]}",
                 bad[i]);
        grading_rubric_t *r = NULL;
        grading_error_t e;
        if (grading_rubric_load_json(j, strlen(j), &r, &e) != GRADING_ERR_INVALID_RUBRIC)
            fail_msg("expression accepted: %s", bad[i]);
        assert_string_equal(e.path, "red_flags[0].when");
    }
}

/* ------------------------------------------------------- sample attempts */

static void grade_attempt_file(const grading_rubric_t *r, const char *path)
{
    size_t len;
    char *text = tg_read_file(path, &len);
    assert_non_null(text);
    json_error_t je;
    json_t *att = json_loads(text, 0, &je);
    free(text);
    assert_non_null(att);
    tg_msg_t m;
    const msgpack_object *o = tg_msg_from_json_value(&m, json_object_get(att, "responses"));
    grading_result_t res;
    grading_error_t e;
    if (grading_grade(r, o, &res, &e) != GRADING_OK)
        fail_msg("%s: %s: %s", path, e.path, e.message);
    tg_result_t tr;
    tg_result_open(&tr, &res);
    json_t *exp = json_object_get(att, "expected");
    json_t *dec = json_object_get(exp, "decision");
    json_t *bp = json_object_get(exp, "percent_bp");
    if (dec && !tg_streq(tg_get(tr.root, "decision"), json_string_value(dec)))
        fail_msg("%s: decision %.*s, expected %s", path,
                 (int)tg_get(tr.root, "decision")->via.str.size,
                 tg_get(tr.root, "decision")->via.str.ptr, json_string_value(dec));
    if (bp && tg_int(tg_get(tg_get(tr.root, "total"), "percent_bp")) != json_integer_value(bp))
        fail_msg("%s: percent_bp %lld, expected %lld", path,
                 (long long)tg_int(tg_get(tg_get(tr.root, "total"), "percent_bp")),
                 (long long)json_integer_value(bp));
    tg_result_close(&tr);
    grading_result_free(&res);
    tg_msg_free(&m);
    json_decref(att);
}

static void test_csm_sample_attempts_grade_as_expected(void **state)
{
    grading_rubric_t *r = tg_load_file("rubrics/csm-smb/csm-smb.json");
    assert_non_null(r);
    char dir[512];
    snprintf(dir, sizeof dir, "%s/rubrics/csm-smb/attempts", SCORELINE_SOURCE_DIR);
    DIR *d = opendir(dir);
    assert_non_null(d);
    struct dirent *de;
    int n = 0;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 6 || strcmp(de->d_name + l - 5, ".json") != 0)
            continue;
        char path[1024];
        snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
        grade_attempt_file(r, path);
        n++;
    }
    closedir(d);
    assert_true(n >= 4);
    grading_rubric_destroy(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csm_rubric_loads),
        cmocka_unit_test(test_invalid_json_is_json_error),
        cmocka_unit_test(test_rubric_errors_carry_json_paths),
        cmocka_unit_test(test_same_meaning_hashes_the_same),
        cmocka_unit_test(test_canonical_msgpack_reloads_to_same_hash),
        cmocka_unit_test(test_oversized_rubric_is_limit_error),
        cmocka_unit_test(test_quantity_reads_numbers_as_candidates_write_them),
        cmocka_unit_test(test_quantity_relative_tolerance_and_sig_figs),
        cmocka_unit_test(test_quantity_non_number_response_is_invalid),
        cmocka_unit_test(test_choice_partial_credit_schemes),
        cmocka_unit_test(test_unknown_item_is_invalid_response),
        cmocka_unit_test(test_missing_response_is_unanswered),
        cmocka_unit_test(test_result_keys_are_sorted_and_complete),
        cmocka_unit_test(test_digest_is_recomputable),
        cmocka_unit_test(test_weights_bands_and_rounding),
        cmocka_unit_test(test_bands_must_descend_to_zero),
        cmocka_unit_test(test_red_flag_disqualifies_whatever_the_total),
        cmocka_unit_test(test_red_flag_expression_errors_are_rubric_errors),
        cmocka_unit_test(test_csm_sample_attempts_grade_as_expected),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
