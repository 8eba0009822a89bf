/*
 * test_worker_pool.c - the worker's grading pool: order, cancelling queued
 * and running tasks, abandoning runaways, and the done notification.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <poll.h>

#include "common/clock.h"
#include "worker/grader_pool.h"

static worker_config_t cfg;

/* A task whose grading is an error RESULT (no rubric needed). Ids
 * containing "slow" sleep cfg.fault_delay_ms first. */
static task_t *make_task(const char *id)
{
    proto_job_t job = {0};
    job.job_id = proto_str(id);
    job.tenant = proto_str("t");
    job.rubric = proto_str("r");
    msgpack_sbuffer rec, body;
    msgpack_sbuffer_init(&rec);
    msgpack_sbuffer_init(&body);
    msgpack_zone z;
    msgpack_zone_init(&z, 256);
    msgpack_object empty = {.type = MSGPACK_OBJECT_MAP};
    job.responses = &empty;
    assert_int_equal(proto_encode_job_record(&rec, &job), 0);
    assert_int_equal(proto_encode_job(&body, 1, 1, 1000, proto_str(NULL), rec.data, rec.size), 0);
    task_t *t = calloc(1, sizeof *t);
    t->body = malloc(body.size);
    memcpy(t->body, body.data, body.size);
    t->len = body.size;
    snprintf(t->job_id, sizeof t->job_id, "%s", id);
    t->attempt = 1;
    t->err_code = "unknown_rubric";
    t->t0_us = clock_mono_us();
    msgpack_sbuffer_destroy(&rec);
    msgpack_sbuffer_destroy(&body);
    msgpack_zone_destroy(&z);
    return t;
}

static task_t *wait_done(grader_pool_t *p, int timeout_ms)
{
    struct pollfd pfd = {grader_pool_fd(p), POLLIN, 0};
    if (poll(&pfd, 1, timeout_ms) <= 0)
        return NULL;
    return grader_pool_take_done(p);
}

static void free_list(task_t *t)
{
    while (t) {
        task_t *n = t->next;
        task_free(t);
        t = n;
    }
}

static void test_tasks_come_back_in_order_with_a_result(void **state)
{
    (void)state;
    char err[128];
    grader_pool_t *p = grader_pool_new(1, &cfg, err, sizeof err);
    assert_non_null(p);
    grader_pool_push(p, make_task("a"));
    grader_pool_push(p, make_task("b"));
    grader_pool_push(p, make_task("c"));
    const char *want[] = {"a", "b", "c"};
    int got = 0;
    int64_t deadline = clock_mono_ms() + 5000;
    while (got < 3 && clock_mono_ms() < deadline) {
        task_t *list = wait_done(p, 1000);
        for (task_t *t = list; t; t = t->next) {
            assert_string_equal(t->job_id, want[got++]);
            assert_non_null(t->result);
            assert_false(t->ok);
        }
        free_list(list);
    }
    assert_int_equal(got, 3);
    assert_int_equal(grader_pool_busy(p), 0);
    grader_pool_destroy(&p);
    assert_null(p);
}

static void test_cancel_drops_queued_tasks_anywhere_in_the_queue(void **state)
{
    (void)state;
    char err[128];
    cfg.fault_match = "slow";
    cfg.fault_delay_ms = 300;
    grader_pool_t *p = grader_pool_new(1, &cfg, err, sizeof err);
    grader_pool_push(p, make_task("slow-0")); /* keeps the only thread busy */
    grader_pool_push(p, make_task("q1"));
    grader_pool_push(p, make_task("q2"));
    grader_pool_push(p, make_task("q3"));
    task_t *dropped = NULL;
    /* middle, then tail, then head of the queue */
    assert_int_equal(grader_pool_cancel(p, "q2", 0, &dropped), 1);
    assert_string_equal(dropped->job_id, "q2");
    task_free(dropped);
    assert_int_equal(grader_pool_cancel(p, "q3", 1, &dropped), 1);
    assert_string_equal(dropped->job_id, "q3");
    task_free(dropped);
    assert_int_equal(grader_pool_cancel(p, "q3", 0, &dropped), 0);
    assert_null(dropped);
    /* attempt must match when given */
    assert_int_equal(grader_pool_cancel(p, "q1", 7, &dropped), 0);
    grader_pool_push(p, make_task("q4"));
    /* q1 and q4 (pushed after the tail was removed) still come back */
    int seen = 0;
    int64_t deadline = clock_mono_ms() + 5000;
    while (seen < 3 && clock_mono_ms() < deadline) {
        task_t *list = wait_done(p, 1000);
        for (task_t *t = list; t; t = t->next)
            seen++;
        free_list(list);
    }
    assert_int_equal(seen, 3); /* slow-0, q1, q4 */
    grader_pool_destroy(&p);
    cfg.fault_match = NULL;
    cfg.fault_delay_ms = 0;
}

static void test_runaway_is_abandoned_and_replaced(void **state)
{
    (void)state;
    char err[128];
    cfg.fault_match = "slow";
    cfg.fault_delay_ms = 400;
    grader_pool_t *p = grader_pool_new(1, &cfg, err, sizeof err);
    task_t *t = make_task("slow-runaway");
    t->ttr_ms = 50;
    grader_pool_push(p, t);
    struct timespec ts = {0, 150 * 1000000L};
    nanosleep(&ts, NULL);
    assert_int_equal(grader_pool_abandon_runaways(p, clock_mono_ms(), NULL, NULL), 1);
    assert_int_equal(grader_pool_abandoned(p), 1);
    /* the replacement thread grades new work while the runaway sleeps */
    grader_pool_push(p, make_task("fresh"));
    task_t *list = wait_done(p, 1000);
    assert_non_null(list);
    assert_string_equal(list->job_id, "fresh");
    free_list(list);
    /* the abandoned task never comes back */
    assert_null(wait_done(p, 600));
    grader_pool_destroy(&p);
    cfg.fault_match = NULL;
    cfg.fault_delay_ms = 0;
}

static void test_cancel_abandons_the_running_task(void **state)
{
    (void)state;
    char err[128];
    cfg.fault_match = "slow";
    cfg.fault_delay_ms = 300;
    grader_pool_t *p = grader_pool_new(2, &cfg, err, sizeof err);
    grader_pool_push(p, make_task("slow-x"));
    struct timespec ts = {0, 100 * 1000000L};
    nanosleep(&ts, NULL);
    task_t *dropped = NULL;
    assert_int_equal(grader_pool_cancel(p, "slow-x", 1, &dropped), 1);
    assert_null(dropped);
    assert_int_equal(grader_pool_abandoned(p), 1);
    assert_null(wait_done(p, 500));
    grader_pool_destroy(&p);
    cfg.fault_match = NULL;
    cfg.fault_delay_ms = 0;
}

int main(void)
{
    snprintf(cfg.id, sizeof cfg.id, "test-worker");
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tasks_come_back_in_order_with_a_result),
        cmocka_unit_test(test_cancel_drops_queued_tasks_anywhere_in_the_queue),
        cmocka_unit_test(test_runaway_is_abandoned_and_replaced),
        cmocka_unit_test(test_cancel_abandons_the_running_task),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
