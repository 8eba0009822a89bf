/*
 * grader_pool.c - grading threads fed through a mutex-guarded FIFO (see
 * grader_pool.h).
 *
 * Each thread owns a slot (allocated per thread). Abandoning a thread marks
 * its slot; the thread notices when its grading returns, frees the task and
 * its slot, and exits. The pool itself is freed only when no abandoned
 * thread can still touch it.
 */
#include "worker/grader_pool.h"

#include "common/clock.h"
#include "common/log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define POOL_MAX_THREADS 64
/* A grading thread wakes the main thread when the queue runs dry, when
 * this many results wait, or after a grading this slow; otherwise results
 * wait for the main thread's next look (at most a millisecond: see
 * grader_pool.h). One wake-up then carries many results. */
#define POOL_DONE_BATCH 16
#define POOL_SLOW_US 200

typedef struct slot {
    grader_pool_t *pool;
    task_t *task;       /* being graded, NULL when idle */
    int64_t started_ms; /* monotonic, when task was taken */
    int abandoned;      /* the main thread gave up on this thread */
    int exited;
} slot_t;

struct grader_pool {
    pthread_mutex_t mu;
    pthread_cond_t work;   /* tasks queued, or stopping */
    pthread_cond_t exited; /* a thread exited */
    task_t *head, *tail;   /* queued */
    task_t *done_head, *done_tail;
    size_t ndone;  /* tasks on the done list */
    int signalled; /* done_fd was written since the last take */
    int done_fd;
    int stopping;
    size_t queued;
    slot_t *slots[POOL_MAX_THREADS];
    size_t nslots;
    size_t running_abandoned; /* abandoned threads not yet exited */
    uint64_t abandoned;
    const worker_config_t *cfg;
};

static void *grader_thread(void *arg)
{
    slot_t *s = arg;
    grader_pool_t *p = s->pool;
    proto_decoder_t *dec = proto_decoder_new(WORKER_MAX_JOB_BODY);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    pthread_mutex_lock(&p->mu);
    for (;;) {
        while (!p->stopping && !s->abandoned && !p->head)
            pthread_cond_wait(&p->work, &p->mu);
        if (p->stopping || s->abandoned || !dec)
            break;
        task_t *t = p->head;
        p->head = t->next;
        if (!p->head)
            p->tail = NULL;
        p->queued--;
        t->next = NULL;
        s->task = t;
        s->started_ms = clock_mono_ms();
        pthread_mutex_unlock(&p->mu);

        uint64_t t0 = clock_mono_us();
        task_grade(t, p->cfg, dec, &buf);
        int slow = clock_mono_us() - t0 >= POOL_SLOW_US;
        proto_decoder_trim(dec, 1u << 20); /* a huge job leaves no huge buffer behind */

        pthread_mutex_lock(&p->mu);
        if (s->abandoned) {
            task_free(t);
            break;
        }
        s->task = NULL;
        if (p->done_tail)
            p->done_tail->next = t;
        else
            p->done_head = t;
        p->done_tail = t;
        p->ndone++;
        if (!p->signalled && (!p->head || p->ndone >= POOL_DONE_BATCH || slow)) {
            uint64_t one = 1;
            ssize_t w = write(p->done_fd, &one, sizeof one);
            (void)w;
            p->signalled = 1;
        }
    }
    int free_slot = s->abandoned;
    if (s->abandoned)
        p->running_abandoned--;
    s->exited = 1;
    pthread_cond_broadcast(&p->exited);
    pthread_mutex_unlock(&p->mu);
    if (free_slot)
        free(s);
    msgpack_sbuffer_destroy(&buf);
    proto_decoder_destroy(&dec);
    return NULL;
}

/* Start one thread in a new slot. Called with the lock held or before any
 * thread runs. */
static int pool_spawn(grader_pool_t *p, size_t index)
{
    slot_t *s = calloc(1, sizeof *s);
    if (!s)
        return -1;
    s->pool = p;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_t tid;
    int rc = pthread_create(&tid, &attr, grader_thread, s);
    pthread_attr_destroy(&attr);
    if (rc != 0) {
        free(s);
        return -1;
    }
    p->slots[index] = s;
    return 0;
}

grader_pool_t *grader_pool_new(size_t threads, const worker_config_t *cfg, char *err,
                               size_t errlen)
{
    if (threads < 1 || threads > POOL_MAX_THREADS) {
        snprintf(err, errlen, "--threads: expected 1..%d", POOL_MAX_THREADS);
        return NULL;
    }
    grader_pool_t *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->exited, NULL);
    p->cfg = cfg;
    p->done_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (p->done_fd < 0) {
        snprintf(err, errlen, "cannot create an eventfd: %s", strerror(errno));
        free(p);
        return NULL;
    }
    p->nslots = threads;
    for (size_t i = 0; i < threads; i++)
        if (pool_spawn(p, i) != 0) {
            snprintf(err, errlen, "cannot start grading thread %zu", i + 1);
            grader_pool_destroy(&p);
            return NULL;
        }
    return p;
}

static void task_list_free(task_t *t)
{
    while (t) {
        task_t *next = t->next;
        task_free(t);
        t = next;
    }
}

void grader_pool_destroy(grader_pool_t **self_p)
{
    grader_pool_t *p = *self_p;
    if (!p)
        return;
    *self_p = NULL;
    pthread_mutex_lock(&p->mu);
    p->stopping = 1;
    pthread_cond_broadcast(&p->work);
    /* Wait for every thread that is not abandoned (an idle one exits at
     * once; a busy one after its grading). */
    for (;;) {
        int live = 0;
        for (size_t i = 0; i < p->nslots; i++)
            if (p->slots[i] && !p->slots[i]->exited)
                live = 1;
        if (!live)
            break;
        pthread_cond_wait(&p->exited, &p->mu);
    }
    for (size_t i = 0; i < p->nslots; i++)
        free(p->slots[i]);
    int keep = p->running_abandoned > 0;
    pthread_mutex_unlock(&p->mu);
    task_list_free(p->head);
    task_list_free(p->done_head);
    p->head = p->done_head = NULL;
    if (keep)
        return; /* an abandoned thread still holds a pointer to the pool */
    close(p->done_fd);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->exited);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

int grader_pool_fd(const grader_pool_t *p)
{
    return p->done_fd;
}

void grader_pool_push(grader_pool_t *p, task_t *t)
{
    t->next = NULL;
    grader_pool_push_list(p, t);
}

void grader_pool_push_list(grader_pool_t *p, task_t *list)
{
    if (!list)
        return;
    size_t n = 1;
    task_t *last = list;
    while (last->next) {
        last = last->next;
        n++;
    }
    pthread_mutex_lock(&p->mu);
    if (p->tail)
        p->tail->next = list;
    else
        p->head = list;
    p->tail = last;
    p->queued += n;
    if (n > 1)
        pthread_cond_broadcast(&p->work);
    else
        pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->mu);
}

task_t *grader_pool_take_done(grader_pool_t *p)
{
    pthread_mutex_lock(&p->mu);
    if (p->signalled) {
        uint64_t n;
        ssize_t r = read(p->done_fd, &n, sizeof n);
        (void)r;
        p->signalled = 0;
    }
    task_t *list = p->done_head;
    p->done_head = p->done_tail = NULL;
    p->ndone = 0;
    pthread_mutex_unlock(&p->mu);
    return list;
}

/* Abandon slot i (lock held) and start a replacement thread. */
static void pool_abandon(grader_pool_t *p, size_t i)
{
    slot_t *s = p->slots[i];
    s->abandoned = 1;
    p->slots[i] = NULL;
    p->running_abandoned++;
    p->abandoned++;
    if (pool_spawn(p, i) != 0)
        log_error("grader.start_failed", "slot=%zu", i);
}

int grader_pool_cancel(grader_pool_t *p, const char *job_id, uint32_t attempt, task_t **dropped)
{
    *dropped = NULL;
    int found = 0;
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->nslots && !found; i++) {
        slot_t *s = p->slots[i];
        if (s && s->task && strcmp(s->task->job_id, job_id) == 0 &&
            (attempt == 0 || s->task->attempt == attempt)) {
            pool_abandon(p, i);
            found = 1;
        }
    }
    task_t *prev = NULL;
    for (task_t *t = p->head; !found && t; prev = t, t = t->next) {
        if (strcmp(t->job_id, job_id) != 0 || (attempt != 0 && t->attempt != attempt))
            continue;
        if (prev)
            prev->next = t->next;
        else
            p->head = t->next;
        if (p->tail == t)
            p->tail = prev;
        p->queued--;
        t->next = NULL;
        *dropped = t;
        found = 1;
        break;
    }
    pthread_mutex_unlock(&p->mu);
    return found;
}

size_t grader_pool_abandon_runaways(grader_pool_t *p, int64_t now_ms,
                                    void (*on_abandon)(const task_t *t, int64_t ran_ms, void *arg),
                                    void *arg)
{
    size_t n = 0;
    pthread_mutex_lock(&p->mu);
    for (size_t i = 0; i < p->nslots; i++) {
        slot_t *s = p->slots[i];
        if (!s || !s->task || !s->task->ttr_ms ||
            now_ms - s->started_ms <= (int64_t)s->task->ttr_ms)
            continue;
        if (on_abandon)
            on_abandon(s->task, now_ms - s->started_ms, arg);
        pool_abandon(p, i);
        n++;
    }
    pthread_mutex_unlock(&p->mu);
    return n;
}

size_t grader_pool_busy(grader_pool_t *p)
{
    pthread_mutex_lock(&p->mu);
    size_t n = p->queued;
    for (size_t i = 0; i < p->nslots; i++)
        if (p->slots[i] && p->slots[i]->task)
            n++;
    pthread_mutex_unlock(&p->mu);
    return n;
}

uint64_t grader_pool_abandoned(const grader_pool_t *p)
{
    return p->abandoned;
}

size_t grader_pool_stranded(grader_pool_t *p)
{
    pthread_mutex_lock(&p->mu);
    size_t n = p->running_abandoned;
    pthread_mutex_unlock(&p->mu);
    return n;
}
