/*
 * queue.c - jobs by id, the FIFO of waiting jobs, and worker credit (see
 * queue.h).
 *
 * Jobs are found through a chained hash table keyed with SipHash
 * (libsodium's crypto_shorthash, random key per process) so that hostile job
 * ids cannot degrade lookups. A job is on exactly one intrusive list at a
 * time: the FIFO while QUEUED, its worker's running list while RUNNING; both
 * use run_prev/run_next, which makes requeue-at-head and removal from the
 * middle O(1).
 */
#include "broker/queue.h"

#include <assert.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

struct queue {
    size_t max_jobs;
    size_t njobs, nwaiting, nrunning, nworkers;
    queue_job_t **buckets;
    size_t nbuckets; /* power of two */
    unsigned char hash_key[crypto_shorthash_KEYBYTES];
    queue_job_t *head, *tail; /* FIFO of QUEUED jobs */
    queue_worker_t *workers;
    queue_worker_t *cursor; /* round-robin position */
};

const char *queue_strerror(queue_err_t err)
{
    switch (err) {
    case QUEUE_OK:
        return "ok";
    case QUEUE_ERR_FULL:
        return "the queue is full";
    case QUEUE_ERR_DUPLICATE:
        return "a job with this id is already held";
    case QUEUE_ERR_NOMEM:
        return "out of memory";
    }
    return "unknown error";
}

queue_t *queue_new(size_t max_jobs)
{
    if (sodium_init() < 0)
        return NULL;
    queue_t *q = calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->max_jobs = max_jobs;
    q->nbuckets = 1024;
    q->buckets = calloc(q->nbuckets, sizeof *q->buckets);
    if (!q->buckets) {
        free(q);
        return NULL;
    }
    crypto_shorthash_keygen(q->hash_key);
    return q;
}

void queue_destroy(queue_t **self_p)
{
    queue_t *q = *self_p;
    if (!q)
        return;
    for (size_t i = 0; i < q->nbuckets; i++) {
        queue_job_t *j = q->buckets[i];
        while (j) {
            queue_job_t *next = j->hash_next;
            queue_job_free(j);
            j = next;
        }
    }
    queue_worker_t *w = q->workers;
    while (w) {
        queue_worker_t *next = w->next;
        free(w);
        w = next;
    }
    free(q->buckets);
    free(q);
    *self_p = NULL;
}

size_t queue_jobs(const queue_t *q)
{
    return q->njobs;
}
size_t queue_waiting(const queue_t *q)
{
    return q->nwaiting;
}
size_t queue_running(const queue_t *q)
{
    return q->nrunning;
}
size_t queue_workers(const queue_t *q)
{
    return q->nworkers;
}
size_t queue_capacity(const queue_t *q)
{
    return q->max_jobs;
}
int queue_has_room(const queue_t *q)
{
    return q->njobs < q->max_jobs;
}

queue_job_t *queue_job_new(const char *id, size_t id_len, const void *body, size_t body_len)
{
    /* One allocation: the record, then the id, then the body. */
    queue_job_t *j = malloc(sizeof *j + id_len + 1 + body_len);
    if (!j)
        return NULL;
    memset(j, 0, sizeof *j);
    j->id = (char *)(j + 1);
    j->body = (uint8_t *)j->id + id_len + 1;
    memcpy(j->id, id, id_len);
    j->id[id_len] = '\0';
    j->id_len = (uint32_t)id_len;
    if (body_len)
        memcpy(j->body, body, body_len);
    j->body_len = body_len;
    return j;
}

void queue_job_free(queue_job_t *job)
{
    free(job);
}

static uint32_t queue_hash(const queue_t *q, const char *id, size_t len)
{
    unsigned char h[crypto_shorthash_BYTES];
    crypto_shorthash(h, (const unsigned char *)id, len, q->hash_key);
    uint32_t v;
    memcpy(&v, h, sizeof v);
    return v;
}

queue_job_t *queue_job_find(const queue_t *q, const char *id, size_t id_len)
{
    uint32_t hc = queue_hash(q, id, id_len);
    for (queue_job_t *j = q->buckets[hc & (q->nbuckets - 1)]; j; j = j->hash_next)
        if (j->hash_code == hc && j->id_len == id_len && memcmp(j->id, id, id_len) == 0)
            return j;
    return NULL;
}

/* Double the bucket array when the table is fuller than one job per bucket. */
static void queue_grow(queue_t *q)
{
    size_t n = q->nbuckets * 2;
    queue_job_t **b = calloc(n, sizeof *b);
    if (!b)
        return; /* keep working with longer chains */
    size_t old_n = q->nbuckets;
    queue_job_t **old = q->buckets;
    q->buckets = b;
    q->nbuckets = n;
    for (size_t i = 0; i < old_n; i++) {
        queue_job_t *j = old[i];
        while (j) {
            queue_job_t *next = j->hash_next;
            size_t k = j->hash_code & (n - 1);
            j->hash_next = b[k];
            b[k] = j;
            j = next;
        }
    }
    free(old);
}

static void fifo_push_tail(queue_t *q, queue_job_t *j)
{
    j->run_next = NULL;
    j->run_prev = q->tail;
    if (q->tail)
        q->tail->run_next = j;
    else
        q->head = j;
    q->tail = j;
    q->nwaiting++;
}

static void fifo_push_head(queue_t *q, queue_job_t *j)
{
    j->run_prev = NULL;
    j->run_next = q->head;
    if (q->head)
        q->head->run_prev = j;
    else
        q->tail = j;
    q->head = j;
    q->nwaiting++;
}

static void fifo_unlink(queue_t *q, queue_job_t *j)
{
    if (j->run_prev)
        j->run_prev->run_next = j->run_next;
    else
        q->head = j->run_next;
    if (j->run_next)
        j->run_next->run_prev = j->run_prev;
    else
        q->tail = j->run_prev;
    j->run_prev = j->run_next = NULL;
    q->nwaiting--;
}

static void running_link(queue_worker_t *w, queue_job_t *j)
{
    j->run_prev = NULL;
    j->run_next = w->running;
    if (w->running)
        w->running->run_prev = j;
    w->running = j;
    w->inflight++;
}

static void running_unlink(queue_worker_t *w, queue_job_t *j)
{
    if (j->run_prev)
        j->run_prev->run_next = j->run_next;
    else
        w->running = j->run_next;
    if (j->run_next)
        j->run_next->run_prev = j->run_prev;
    j->run_prev = j->run_next = NULL;
    assert(w->inflight > 0);
    w->inflight--;
}

queue_err_t queue_job_add(queue_t *q, queue_job_t *job)
{
    if (q->njobs >= q->max_jobs)
        return QUEUE_ERR_FULL;
    if (queue_job_find(q, job->id, job->id_len))
        return QUEUE_ERR_DUPLICATE;
    if (q->njobs >= q->nbuckets)
        queue_grow(q);
    job->hash_code = queue_hash(q, job->id, job->id_len);
    size_t k = job->hash_code & (q->nbuckets - 1);
    job->hash_next = q->buckets[k];
    q->buckets[k] = job;
    job->state = QUEUE_JOB_QUEUED;
    job->worker = NULL;
    q->njobs++;
    fifo_push_tail(q, job);
    return QUEUE_OK;
}

void queue_job_requeue(queue_t *q, queue_job_t *job)
{
    if (job->state == QUEUE_JOB_DONE) {
        job->state = QUEUE_JOB_QUEUED;
        fifo_push_head(q, job);
        return;
    }
    if (job->state != QUEUE_JOB_RUNNING)
        return;
    running_unlink(job->worker, job);
    q->nrunning--;
    job->worker = NULL;
    job->state = QUEUE_JOB_QUEUED;
    fifo_push_head(q, job);
}

/* Take job off the FIFO or its worker's running list, whichever holds it. */
static void job_detach(queue_t *q, queue_job_t *job)
{
    if (job->state == QUEUE_JOB_RUNNING) {
        running_unlink(job->worker, job);
        job->worker->jobs_done++;
        q->nrunning--;
    } else if (job->state == QUEUE_JOB_QUEUED) {
        fifo_unlink(q, job);
    }
}

void queue_job_done(queue_t *q, queue_job_t *job)
{
    job_detach(q, job);
    job->worker = NULL;
    job->state = QUEUE_JOB_DONE;
}

void queue_job_finish(queue_t *q, queue_job_t *job)
{
    job_detach(q, job);
    queue_job_t **pp = &q->buckets[job->hash_code & (q->nbuckets - 1)];
    while (*pp && *pp != job)
        pp = &(*pp)->hash_next;
    assert(*pp == job);
    *pp = job->hash_next;
    q->njobs--;
    queue_job_free(job);
}

queue_worker_t *queue_worker_find(const queue_t *q, const void *identity, size_t len)
{
    for (queue_worker_t *w = q->workers; w; w = w->next)
        if (w->identity_len == len && memcmp(w->identity, identity, len) == 0)
            return w;
    return NULL;
}

queue_worker_t *queue_worker_upsert(queue_t *q, const void *identity, size_t len)
{
    if (len > QUEUE_MAX_IDENTITY)
        return NULL;
    queue_worker_t *w = queue_worker_find(q, identity, len);
    if (w)
        return w;
    w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    memcpy(w->identity, identity, len);
    w->identity_len = (uint8_t)len;
    w->next = q->workers;
    q->workers = w;
    q->nworkers++;
    return w;
}

queue_worker_t *queue_worker_first(const queue_t *q)
{
    return q->workers;
}

size_t queue_worker_remove(queue_t *q, queue_worker_t *w)
{
    /* The running list is newest first; pushing each to the head of the
     * FIFO in that order leaves the oldest delivery at the very front. */
    size_t n = 0;
    while (w->running) {
        queue_job_t *j = w->running; /* newest */
        queue_job_requeue(q, j);
        n++;
    }
    queue_worker_t **pp = &q->workers;
    while (*pp && *pp != w)
        pp = &(*pp)->next;
    if (*pp) {
        *pp = w->next;
        q->nworkers--;
    }
    if (q->cursor == w)
        q->cursor = NULL;
    free(w);
    return n;
}

static int worker_has_credit(const queue_worker_t *w)
{
    return !w->draining && w->credit > w->inflight;
}

queue_job_t *queue_dispatch(queue_t *q, int64_t now_ms)
{
    if (!q->head || !q->workers)
        return NULL;
    /* Round robin: start after the last worker served. */
    queue_worker_t *start = q->cursor && q->cursor->next ? q->cursor->next : q->workers;
    queue_worker_t *w = start;
    do {
        if (worker_has_credit(w))
            break;
        w = w->next ? w->next : q->workers;
    } while (w != start);
    if (!worker_has_credit(w))
        return NULL;
    q->cursor = w;
    queue_job_t *j = q->head;
    fifo_unlink(q, j);
    j->state = QUEUE_JOB_RUNNING;
    j->worker = w;
    j->attempt++;
    j->deadline_ms = now_ms + (int64_t)j->ttr_ms;
    running_link(w, j);
    q->nrunning++;
    return j;
}

size_t queue_expire(queue_t *q, int64_t now_ms,
                    void (*on_expired)(queue_job_t *job, void *arg), void *arg)
{
    size_t n = 0;
    for (queue_worker_t *w = q->workers; w; w = w->next) {
        queue_job_t *j = w->running;
        while (j) {
            queue_job_t *next = j->run_next;
            if (j->deadline_ms <= now_ms) {
                if (on_expired)
                    on_expired(j, arg);
                queue_job_requeue(q, j);
                n++;
            }
            j = next;
        }
    }
    return n;
}
