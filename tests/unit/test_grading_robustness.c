/*
 * test_grading_robustness.c - nothing crashes, whatever the bytes.
 *
 * A fixed-seed generator mutates the csm-smb rubric (its JSON text and its
 * canonical msgpack) and the sample attempts' responses, thousands of times:
 * every call must return a code (success or a documented error), never crash
 * or trip the sanitizers, and a success must pack a readable result.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "test_grading_util.h"

static uint64_t rng = 0x5c0e11e5eedULL;

static uint32_t next_rand(void)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rng >> 33);
}

static void mutate(unsigned char *buf, size_t len)
{
    int edits = 1 + (int)(next_rand() % 4);
    for (int k = 0; k < edits && len; k++) {
        size_t at = next_rand() % len;
        switch (next_rand() % 4) {
        case 0:
            buf[at] = (unsigned char)next_rand();
            break;
        case 1:
            buf[at] ^= (unsigned char)(1u << (next_rand() % 8));
            break;
        case 2:
            buf[at] = "0123456789{}[]\",:-.e"[next_rand() % 20];
            break;
        default:
            buf[at] = 0xff;
            break;
        }
    }
}

static void test_mutated_rubrics_load_or_fail_cleanly(void **state)
{
    size_t len;
    char path[512];
    snprintf(path, sizeof path, "%s/rubrics/csm-smb/csm-smb.json", SCORELINE_SOURCE_DIR);
    char *text = tg_read_file(path, &len);
    assert_non_null(text);
    grading_rubric_t *base = tg_load(text);
    size_t clen;
    const unsigned char *canon = grading_rubric_canonical(base, &clen);
    unsigned char *buf = malloc(len > clen ? len : clen);
    int ok = 0;
    for (int i = 0; i < 300; i++) {
        memcpy(buf, text, len);
        mutate(buf, len);
        grading_rubric_t *r = NULL;
        grading_error_t e;
        grading_err_t rc = grading_rubric_load_json((char *)buf, len, &r, &e);
        assert_true(rc == GRADING_OK || rc == GRADING_ERR_JSON || rc == GRADING_ERR_INVALID_RUBRIC);
        if (rc != GRADING_OK)
            assert_true(e.message[0] != '\0');
        ok += rc == GRADING_OK;
        grading_rubric_destroy(&r);

        memcpy(buf, canon, clen);
        mutate(buf, clen);
        rc = grading_rubric_load_msgpack(buf, clen, &r, &e);
        assert_true(rc == GRADING_OK || rc == GRADING_ERR_INVALID_RUBRIC ||
                    rc == GRADING_ERR_LIMIT);
        grading_rubric_destroy(&r);
    }
    (void)ok;
    free(buf);
    free(text);
    grading_rubric_destroy(&base);
}

static void test_msgpack_size_check(void **state)
{
    /* an array header claiming 2^32 - 1 elements, then nothing */
    const unsigned char huge[] = {0xdd, 0xff, 0xff, 0xff, 0xff};
    assert_false(grading_msgpack_well_formed(huge, sizeof huge));
    const unsigned char map2[] = {0x82, 0xa1, 'a', 0x01, 0xa1, 'b', 0xc0};
    assert_true(grading_msgpack_well_formed(map2, sizeof map2));
    assert_false(grading_msgpack_well_formed(map2, sizeof map2 - 1)); /* truncated */
    const unsigned char two[] = {0x01, 0x02};
    assert_false(grading_msgpack_well_formed(two, sizeof two)); /* trailing bytes */
    const unsigned char str[] = {0xdb, 0x7f, 0xff, 0xff, 0xff, 'x'};
    assert_false(grading_msgpack_well_formed(str, sizeof str));
    const unsigned char never[] = {0xc1};
    assert_false(grading_msgpack_well_formed(never, 1));
    grading_rubric_t *r = NULL;
    grading_error_t e;
    assert_int_equal(grading_rubric_load_msgpack(huge, sizeof huge, &r, &e),
                     GRADING_ERR_INVALID_RUBRIC);
}

static void test_mutated_responses_grade_or_fail_cleanly(void **state)
{
    grading_rubric_t *r = tg_load_file("rubrics/csm-smb/csm-smb.json");
    assert_non_null(r);
    char path[512];
    snprintf(path, sizeof path, "%s/rubrics/csm-smb/attempts/a01-strong.json",
             SCORELINE_SOURCE_DIR);
    json_t *a = json_load_file(path, 0, NULL);
    assert_non_null(a);
    tg_msg_t m;
    tg_msg_from_json_value(&m, json_object_get(a, "responses"));
    unsigned char *buf = malloc(m.sb.size);
    for (int i = 0; i < 1500; i++) {
        memcpy(buf, m.sb.data, m.sb.size);
        mutate(buf, m.sb.size);
        msgpack_unpacked up;
        msgpack_unpacked_init(&up);
        size_t off = 0;
        /* (a worker checks declared sizes before unpacking, as the rubric
         * loader does: msgpack-c allocates what a header claims) */
        if (!grading_msgpack_well_formed(buf, m.sb.size)) {
            msgpack_unpacked_destroy(&up);
            continue;
        }
        if (msgpack_unpack_next(&up, (const char *)buf, m.sb.size, &off) ==
            MSGPACK_UNPACK_SUCCESS) {
            grading_result_t res;
            grading_error_t e;
            grading_err_t rc = grading_grade(r, &up.data, &res, &e);
            assert_true(rc == GRADING_OK || rc == GRADING_ERR_INVALID_RESPONSE ||
                        rc == GRADING_ERR_LIMIT);
            if (rc == GRADING_OK) {
                tg_result_t tr;
                tg_result_open(&tr, &res);
                assert_non_null(tg_get(tr.root, "decision"));
                tg_result_close(&tr);
                char *x = grading_explain(r, res.data, res.len);
                assert_non_null(x);
                free(x);
                x = grading_result_json(res.data, res.len, 0);
                assert_non_null(x);
                free(x);
            } else {
                assert_true(strncmp(e.path, "responses", 9) == 0);
            }
            grading_result_free(&res);
        }
        msgpack_unpacked_destroy(&up);
    }
    free(buf);
    tg_msg_free(&m);
    json_decref(a);
    grading_rubric_destroy(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mutated_rubrics_load_or_fail_cleanly),
        cmocka_unit_test(test_msgpack_size_check),
        cmocka_unit_test(test_mutated_responses_grade_or_fail_cleanly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
