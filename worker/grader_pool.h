/*
 * grader_pool.h - the worker's grading threads.
 *
 * The main thread pushes resolved tasks; N threads take them in order, grade
 * them and put them on a done list, and an eventfd (for zmq_poll) says the
 * done list is not empty. A mutex and a condition variable guard the lists,
 * so a batch of tasks costs a handful of system calls, not several per task.
 *
 * A grading that runs too long (or whose job the broker cancels) is
 * abandoned: its thread is left to finish on its own and then exits,
 * freeing the task without reporting it; a fresh thread takes its place.
 */
#ifndef SCORELINE_WORKER_GRADER_POOL_H
#define SCORELINE_WORKER_GRADER_POOL_H

#include "worker/task.h"

#include <stddef.h>
#include <stdint.h>

typedef struct grader_pool grader_pool_t;

/* Start `threads` grading threads. NULL with a sentence in err. */
grader_pool_t *grader_pool_new(size_t threads, const worker_config_t *cfg, char *err,
                               size_t errlen);
/* Stop idle threads and free the pool. Threads still grading an abandoned
 * job are left to exit by themselves; then the pool's memory is kept. */
void grader_pool_destroy(grader_pool_t **self_p);

/* File descriptor that becomes readable when finished tasks should be taken
 * (poll it with ZMQ_POLLIN): when the queue has run dry, when several
 * results wait, or after a slow grading. Results finished while the queue
 * still holds fast work may wait without it: while the pool holds tasks the
 * caller also takes what is done every millisecond or so. */
int grader_pool_fd(const grader_pool_t *p);
/* Queue a task for grading (the pool owns it until it comes back done). */
void grader_pool_push(grader_pool_t *p, task_t *t);
/* Queue a list of tasks (linked by ->next) with one lock and one wake-up. */
void grader_pool_push_list(grader_pool_t *p, task_t *list);
/* Take every finished task, oldest first (a list linked by ->next); NULL
 * when none is done. Cheap when nothing is: no system call. */
task_t *grader_pool_take_done(grader_pool_t *p);

/* Drop the task for job_id (attempt 0 = any): a queued one is returned in
 * *dropped (the caller frees it); a running one is abandoned. Returns 1
 * when something was dropped or abandoned, 0 when the job is not here. */
int grader_pool_cancel(grader_pool_t *p, const char *job_id, uint32_t attempt, task_t **dropped);
/* Abandon gradings running longer than their task's ttr_ms. Calls on_abandon
 * (may be NULL) for each, under the pool's lock. Returns how many. */
size_t grader_pool_abandon_runaways(grader_pool_t *p, int64_t now_ms,
                                    void (*on_abandon)(const task_t *t, int64_t ran_ms, void *arg),
                                    void *arg);
/* Tasks queued or being graded, and gradings abandoned so far. */
size_t grader_pool_busy(grader_pool_t *p);
uint64_t grader_pool_abandoned(const grader_pool_t *p);
/* Abandoned threads still grading (they may still read their rubric). */
size_t grader_pool_stranded(grader_pool_t *p);

#endif
