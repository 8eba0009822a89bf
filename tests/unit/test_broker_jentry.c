/*
 * test_broker_jentry.c - the count of jobs held under each journal entry:
 * an entry is given back for deletion exactly when its last job is gone.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "broker/jentry.h"

static void test_entry_is_released_when_its_last_job_goes(void **state)
{
    (void)state;
    jentries_t *t = jentries_new();
    assert_non_null(t);
    jentry_t *e = jentries_add(t, "1700000000000-0", 3);
    assert_non_null(e);
    assert_ptr_equal(jentries_find(t, "1700000000000-0"), e);
    char sid[JENTRY_SID] = "";
    assert_int_equal(jentries_release(t, e, sid), 0);
    assert_int_equal(jentries_release(t, e, sid), 0);
    assert_string_equal(sid, "");
    assert_int_equal(jentries_count(t), 1);
    assert_int_equal(jentries_release(t, e, sid), 1);
    assert_string_equal(sid, "1700000000000-0");
    assert_null(jentries_find(t, "1700000000000-0"));
    assert_int_equal(jentries_count(t), 0);
    jentries_destroy(&t);
    assert_null(t);
}

static void test_hold_and_add_again_raise_the_count(void **state)
{
    (void)state;
    jentries_t *t = jentries_new();
    jentry_t *e = jentries_add(t, "5-1", 1);
    jentries_hold(e);
    assert_ptr_equal(jentries_add(t, "5-1", 2), e); /* same sid: same record */
    assert_int_equal(e->open, 4);
    assert_int_equal(jentries_count(t), 1);
    char sid[JENTRY_SID];
    for (int i = 0; i < 3; i++)
        assert_int_equal(jentries_release(t, e, sid), 0);
    assert_int_equal(jentries_release(t, e, sid), 1);
    assert_string_equal(sid, "5-1");
    jentries_destroy(&t);
}

static void test_entry_with_no_job_is_released_at_once(void **state)
{
    (void)state;
    /* A scanned entry under which the broker took no job. */
    jentries_t *t = jentries_new();
    jentry_t *e = jentries_add(t, "9-0", 0);
    assert_non_null(e);
    char sid[JENTRY_SID];
    assert_int_equal(jentries_release(t, e, sid), 1);
    assert_string_equal(sid, "9-0");
    assert_int_equal(jentries_count(t), 0);
    jentries_destroy(&t);
}

static void test_many_entries_survive_growth_and_bad_sids_are_refused(void **state)
{
    (void)state;
    jentries_t *t = jentries_new();
    char sid[JENTRY_SID];
    jentry_t *keep[5000];
    for (int i = 0; i < 5000; i++) {
        snprintf(sid, sizeof sid, "%d-%d", 1000 + i, i % 7);
        keep[i] = jentries_add(t, sid, (uint32_t)(i % 3 + 1));
        assert_non_null(keep[i]);
    }
    assert_int_equal(jentries_count(t), 5000);
    for (int i = 0; i < 5000; i++) {
        snprintf(sid, sizeof sid, "%d-%d", 1000 + i, i % 7);
        assert_ptr_equal(jentries_find(t, sid), keep[i]);
    }
    /* release every job of the even entries */
    int released = 0;
    for (int i = 0; i < 5000; i += 2)
        for (int k = 0; k < i % 3 + 1; k++)
            released += jentries_release(t, keep[i], sid);
    assert_int_equal(released, 2500);
    assert_int_equal(jentries_count(t), 2500);
    assert_null(jentries_find(t, "1000-0"));
    assert_non_null(jentries_find(t, "1001-1"));
    assert_null(jentries_add(t, "", 1));
    char longsid[JENTRY_SID + 8];
    memset(longsid, '7', sizeof longsid - 1);
    longsid[sizeof longsid - 1] = '\0';
    assert_null(jentries_add(t, longsid, 1));
    jentries_destroy(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_entry_is_released_when_its_last_job_goes),
        cmocka_unit_test(test_hold_and_add_again_raise_the_count),
        cmocka_unit_test(test_entry_with_no_job_is_released_at_once),
        cmocka_unit_test(test_many_entries_survive_growth_and_bad_sids_are_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
