/*
 * test_broker_queue.c - the broker's queue and credit rules, without sockets.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "broker/queue.h"

static queue_job_t *make_job(const char *id)
{
    queue_job_t *j = queue_job_new(id, strlen(id), "\x80", 1);
    assert_non_null(j);
    j->ttr_ms = 1000;
    return j;
}

static queue_worker_t *make_worker(queue_t *q, const char *identity, uint32_t credit)
{
    queue_worker_t *w = queue_worker_upsert(q, identity, strlen(identity));
    assert_non_null(w);
    w->credit = credit;
    return w;
}

static void test_jobs_are_dispatched_in_fifo_order(void **state)
{
    (void)state;
    queue_t *q = queue_new(100);
    make_worker(q, "w1", 10);
    assert_int_equal(queue_job_add(q, make_job("a")), QUEUE_OK);
    assert_int_equal(queue_job_add(q, make_job("b")), QUEUE_OK);
    assert_int_equal(queue_job_add(q, make_job("c")), QUEUE_OK);
    assert_string_equal(queue_dispatch(q, 0)->id, "a");
    assert_string_equal(queue_dispatch(q, 0)->id, "b");
    assert_string_equal(queue_dispatch(q, 0)->id, "c");
    assert_null(queue_dispatch(q, 0));
    queue_destroy(&q);
    assert_null(q);
}

static void test_worker_never_holds_more_than_its_credit(void **state)
{
    (void)state;
    queue_t *q = queue_new(100);
    queue_worker_t *w = make_worker(q, "w1", 3);
    char id[16];
    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof id, "j%d", i);
        assert_int_equal(queue_job_add(q, make_job(id)), QUEUE_OK);
    }
    int sent = 0;
    while (queue_dispatch(q, 0))
        sent++;
    assert_int_equal(sent, 3);
    assert_int_equal(w->inflight, 3);
    assert_int_equal(queue_waiting(q), 7);
    /* a result frees exactly one slot */
    queue_job_finish(q, w->running);
    assert_int_equal(w->inflight, 2);
    assert_non_null(queue_dispatch(q, 0));
    assert_null(queue_dispatch(q, 0));
    assert_int_equal(w->inflight, 3);
    queue_destroy(&q);
}

static void test_draining_worker_gets_no_jobs(void **state)
{
    (void)state;
    queue_t *q = queue_new(100);
    queue_worker_t *w = make_worker(q, "w1", 5);
    w->draining = 1;
    assert_int_equal(queue_job_add(q, make_job("a")), QUEUE_OK);
    assert_null(queue_dispatch(q, 0));
    queue_destroy(&q);
}

static void test_dispatch_round_robins_between_workers(void **state)
{
    (void)state;
    queue_t *q = queue_new(100);
    queue_worker_t *w1 = make_worker(q, "w1", 10);
    queue_worker_t *w2 = make_worker(q, "w2", 10);
    char id[16];
    for (int i = 0; i < 10; i++) {
        snprintf(id, sizeof id, "j%d", i);
        queue_job_add(q, make_job(id));
    }
    while (queue_dispatch(q, 0))
        ;
    assert_int_equal(w1->inflight, 5);
    assert_int_equal(w2->inflight, 5);
    queue_destroy(&q);
}

static void test_queue_full_is_refused(void **state)
{
    (void)state;
    queue_t *q = queue_new(2);
    assert_int_equal(queue_job_add(q, make_job("a")), QUEUE_OK);
    assert_int_equal(queue_job_add(q, make_job("b")), QUEUE_OK);
    assert_false(queue_has_room(q));
    queue_job_t *c = make_job("c");
    assert_int_equal(queue_job_add(q, c), QUEUE_ERR_FULL);
    queue_job_free(c);
    assert_int_equal(queue_jobs(q), 2);
    queue_destroy(&q);
}

static void test_duplicate_id_is_refused(void **state)
{
    (void)state;
    queue_t *q = queue_new(10);
    assert_int_equal(queue_job_add(q, make_job("same")), QUEUE_OK);
    queue_job_t *again = make_job("same");
    assert_int_equal(queue_job_add(q, again), QUEUE_ERR_DUPLICATE);
    queue_job_free(again);
    assert_non_null(queue_job_find(q, "same", 4));
    assert_null(queue_job_find(q, "sam", 3));
    queue_destroy(&q);
}

static void test_requeues_jobs_of_removed_worker_at_head_in_order(void **state)
{
    (void)state;
    queue_t *q = queue_new(100);
    queue_worker_t *w = make_worker(q, "w1", 2);
    queue_job_add(q, make_job("first"));
    queue_job_add(q, make_job("second"));
    queue_job_add(q, make_job("third"));
    queue_dispatch(q, 0);
    queue_dispatch(q, 0);
    assert_int_equal(queue_waiting(q), 1);
    assert_int_equal(queue_worker_remove(q, w), 2);
    assert_int_equal(queue_workers(q), 0);
    assert_int_equal(queue_waiting(q), 3);
    queue_worker_t *w2 = make_worker(q, "w2", 10);
    queue_job_t *j = queue_dispatch(q, 0);
    assert_string_equal(j->id, "first");
    assert_int_equal(j->attempt, 2);
    j = queue_dispatch(q, 0);
    assert_string_equal(j->id, "second");
    assert_int_equal(j->attempt, 2);
    j = queue_dispatch(q, 0);
    assert_string_equal(j->id, "third");
    assert_int_equal(j->attempt, 1);
    assert_int_equal(w2->inflight, 3);
    queue_destroy(&q);
}

static void on_expired(queue_job_t *job, void *arg)
{
    (void)job;
    (*(int *)arg)++;
}

static void test_requeues_job_past_its_time_to_run(void **state)
{
    (void)state;
    queue_t *q = queue_new(10);
    queue_worker_t *w = make_worker(q, "w1", 5);
    queue_job_add(q, make_job("slow"));
    queue_job_t *j = queue_dispatch(q, 1000); /* deadline 2000 */
    assert_int_equal(j->deadline_ms, 2000);
    int called = 0;
    assert_int_equal(queue_expire(q, 1999, on_expired, &called), 0);
    assert_int_equal(queue_expire(q, 2000, on_expired, &called), 1);
    assert_int_equal(called, 1);
    assert_int_equal(w->inflight, 0);
    assert_int_equal(queue_waiting(q), 1);
    assert_int_equal(j->state, QUEUE_JOB_QUEUED);
    queue_destroy(&q);
}

static void test_finishing_a_queued_job_removes_it(void **state)
{
    (void)state;
    queue_t *q = queue_new(10);
    queue_job_add(q, make_job("a"));
    queue_job_add(q, make_job("b"));
    queue_job_add(q, make_job("c"));
    queue_job_finish(q, queue_job_find(q, "b", 1));
    assert_int_equal(queue_jobs(q), 2);
    assert_null(queue_job_find(q, "b", 1));
    make_worker(q, "w", 10);
    assert_string_equal(queue_dispatch(q, 0)->id, "a");
    assert_string_equal(queue_dispatch(q, 0)->id, "c");
    queue_destroy(&q);
}

static void test_table_grows_and_finds_every_job(void **state)
{
    (void)state;
    queue_t *q = queue_new(100000);
    char id[32];
    for (int i = 0; i < 20000; i++) {
        snprintf(id, sizeof id, "job-%d", i);
        assert_int_equal(queue_job_add(q, make_job(id)), QUEUE_OK);
    }
    for (int i = 0; i < 20000; i++) {
        snprintf(id, sizeof id, "job-%d", i);
        queue_job_t *j = queue_job_find(q, id, strlen(id));
        assert_non_null(j);
        assert_string_equal(j->id, id);
    }
    assert_int_equal(queue_jobs(q), 20000);
    queue_destroy(&q);
}

static void test_done_job_frees_credit_and_stays_held_until_finished(void **state)
{
    (void)state;
    queue_t *q = queue_new(100);
    queue_worker_t *w = make_worker(q, "w1", 1);
    assert_int_equal(queue_job_add(q, make_job("a")), QUEUE_OK);
    assert_int_equal(queue_job_add(q, make_job("b")), QUEUE_OK);
    queue_job_t *a = queue_dispatch(q, 0);
    assert_string_equal(a->id, "a");
    assert_null(queue_dispatch(q, 0)); /* credit 1, used */
    queue_job_done(q, a);
    assert_int_equal(a->state, QUEUE_JOB_DONE);
    assert_int_equal(w->inflight, 0);
    assert_int_equal(queue_running(q), 0);
    assert_int_equal(queue_jobs(q), 2);
    assert_ptr_equal(queue_job_find(q, "a", 1), a); /* still held: a resubmission is a duplicate */
    queue_job_t *again = make_job("a");
    assert_int_equal(queue_job_add(q, again), QUEUE_ERR_DUPLICATE);
    queue_job_free(again);
    queue_job_t *b = queue_dispatch(q, 0); /* the credit is free again */
    assert_string_equal(b->id, "b");
    /* a worker lost now does not take the DONE job back */
    assert_int_equal(queue_worker_remove(q, w), 1);
    assert_int_equal(queue_waiting(q), 1);
    queue_job_finish(q, a);
    assert_null(queue_job_find(q, "a", 1));
    assert_int_equal(queue_jobs(q), 1);
    queue_destroy(&q);
}

static void test_done_job_requeued_goes_to_the_head(void **state)
{
    (void)state;
    queue_t *q = queue_new(100);
    make_worker(q, "w1", 1);
    assert_int_equal(queue_job_add(q, make_job("a")), QUEUE_OK);
    assert_int_equal(queue_job_add(q, make_job("b")), QUEUE_OK);
    queue_job_t *a = queue_dispatch(q, 0);
    queue_job_done(q, a); /* e.g. being dead-lettered when Redis goes away */
    queue_job_requeue(q, a);
    assert_int_equal(a->state, QUEUE_JOB_QUEUED);
    assert_int_equal(queue_waiting(q), 2);
    assert_string_equal(queue_dispatch(q, 0)->id, "a");
    /* a QUEUED job can be made DONE too (a late result) and leaves the FIFO */
    queue_job_t *b = queue_job_find(q, "b", 1);
    queue_job_done(q, b);
    assert_int_equal(queue_waiting(q), 0);
    queue_job_finish(q, b);
    assert_int_equal(queue_jobs(q), 1);
    queue_destroy(&q);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_done_job_frees_credit_and_stays_held_until_finished),
        cmocka_unit_test(test_done_job_requeued_goes_to_the_head),
        cmocka_unit_test(test_jobs_are_dispatched_in_fifo_order),
        cmocka_unit_test(test_worker_never_holds_more_than_its_credit),
        cmocka_unit_test(test_draining_worker_gets_no_jobs),
        cmocka_unit_test(test_dispatch_round_robins_between_workers),
        cmocka_unit_test(test_queue_full_is_refused),
        cmocka_unit_test(test_duplicate_id_is_refused),
        cmocka_unit_test(test_requeues_jobs_of_removed_worker_at_head_in_order),
        cmocka_unit_test(test_requeues_job_past_its_time_to_run),
        cmocka_unit_test(test_finishing_a_queued_job_removes_it),
        cmocka_unit_test(test_table_grows_and_finds_every_job),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
