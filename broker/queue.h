/*
 * queue.h - the broker's in-memory state: jobs by id, the FIFO of queued
 * jobs, the workers and their credit. No sockets and no Redis here, so the
 * dispatch and requeue rules can be tested alone.
 *
 * Life of a job: queue_job_add (QUEUED, tail) -> queue_dispatch (RUNNING on a
 * worker that has credit) -> queue_job_finish (gone). A worker that dies or a
 * job that outlives its time-to-run sends the job back to the head of the
 * FIFO with its attempt count raised (queue_job_requeue).
 *
 * Bounded: at most max_jobs jobs (queued + running) are held; queue_job_add
 * refuses more with QUEUE_ERR_FULL.
 */
#ifndef SCORELINE_BROKER_QUEUE_H
#define SCORELINE_BROKER_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#define QUEUE_MAX_IDENTITY 255

typedef enum queue_err {
    QUEUE_OK = 0,
    QUEUE_ERR_FULL,      /* max_jobs reached */
    QUEUE_ERR_DUPLICATE, /* a job with that id is already held */
    QUEUE_ERR_NOMEM,
} queue_err_t;

const char *queue_strerror(queue_err_t err);

typedef enum queue_job_state {
    QUEUE_JOB_QUEUED = 0,
    QUEUE_JOB_RUNNING,
    QUEUE_JOB_DONE, /* off its worker, still held until Redis has stored its outcome */
} queue_job_state_t;

typedef struct queue_worker queue_worker_t;
struct jentry;

/* One job held by the broker. Plain data: the broker fills and reads it. */
typedef struct queue_job {
    char *id;          /* NUL-terminated job id (in the same allocation) */
    uint8_t *body;     /* packed job map, as journaled and delivered (same allocation) */
    size_t body_len;
    uint32_t id_len;
    uint32_t hash_code; /* bucket hash of id */
    char hash[65];                        /* resolved rubric hash, "" when inline only */
    struct jentry *entry;                 /* journal entry recording it (broker-owned) */
    uint64_t accepted_us;                 /* wall clock at acceptance */
    uint32_t attempt;                     /* deliveries so far */
    uint32_t failures;                    /* deliveries charged to the job itself */
    uint32_t ttr_ms;                      /* time-to-run */
    queue_job_state_t state;
    int64_t deadline_ms;                  /* RUNNING: monotonic ms when TTR expires */
    queue_worker_t *worker;               /* RUNNING: who holds it */
    uint8_t reply_to[QUEUE_MAX_IDENTITY]; /* submitter's ROUTER identity, len 0 = none */
    uint8_t reply_to_len;
    uint8_t batch_results; /* the submitter takes score events in RESULTS messages */
    char last_reason[160]; /* why the last delivery failed, "" if none did */
    /* intrusive links (owned by queue.c) */
    struct queue_job *hash_next;
    struct queue_job *run_prev, *run_next;
} queue_job_t;

/* One connected worker. */
struct queue_worker {
    uint8_t identity[QUEUE_MAX_IDENTITY];
    uint8_t identity_len;
    char name[129];     /* worker id it announced */
    uint32_t credit;    /* window announced in READY */
    uint32_t threads;   /* jobs it grades at once (READY), at least 1 */
    uint32_t batch;     /* most jobs per JOBS message (READY), 0 = JOB messages only */
    uint32_t inflight;  /* jobs it holds now */
    int draining;       /* sent DISCONNECT: no new jobs */
    int64_t last_seen_ms;  /* monotonic ms of its last message */
    int heard;             /* said something after the READY that announced it */
    int64_t last_sent_ms;  /* monotonic ms of our last message to it */
    queue_job_t *running;  /* list of jobs it holds */
    uint64_t jobs_done;
    queue_worker_t *next;
};

typedef struct queue queue_t;

/* A queue holding at most max_jobs jobs. */
queue_t *queue_new(size_t max_jobs);
/* Frees every job and worker. */
void queue_destroy(queue_t **self_p);

/* Counts. */
size_t queue_jobs(const queue_t *q);    /* queued + running */
size_t queue_waiting(const queue_t *q); /* queued only */
size_t queue_running(const queue_t *q);
size_t queue_workers(const queue_t *q);
size_t queue_capacity(const queue_t *q);

/* A new job record with copies of id and body, not yet in the queue. */
queue_job_t *queue_job_new(const char *id, size_t id_len, const void *body, size_t body_len);
void queue_job_free(queue_job_t *job);
/* The job with this id, or NULL. */
queue_job_t *queue_job_find(const queue_t *q, const char *id, size_t id_len);
/* Take ownership of job and put it at the tail (QUEUED). Fails when full or
 * when the id is held already (the caller keeps ownership then). */
queue_err_t queue_job_add(queue_t *q, queue_job_t *job);
/* Whether one more job fits. */
int queue_has_room(const queue_t *q);
/* Put a RUNNING (its worker loses it) or DONE job back at the head of the FIFO. */
void queue_job_requeue(queue_t *q, queue_job_t *job);
/* A RUNNING job's worker is done with it (its credit is free again), or a
 * QUEUED job leaves the FIFO; the job stays held, DONE, until
 * queue_job_finish. queue_job_requeue puts a
 * DONE job back at the head of the FIFO. */
void queue_job_done(queue_t *q, queue_job_t *job);
/* Remove the job (any state) and free it. */
void queue_job_finish(queue_t *q, queue_job_t *job);

/* Register or refresh a worker by ROUTER identity; returns it (NULL on OOM). */
queue_worker_t *queue_worker_upsert(queue_t *q, const void *identity, size_t len);
queue_worker_t *queue_worker_find(const queue_t *q, const void *identity, size_t len);
/* Drop a worker; its jobs go back to the head of the queue, attempt order
 * preserved. Returns how many were requeued. */
size_t queue_worker_remove(queue_t *q, queue_worker_t *w);
/* First worker in the list (iterate with ->next). */
queue_worker_t *queue_worker_first(const queue_t *q);

/* Pick the next queued job and a worker with free credit (round robin among
 * those with the most free slots); mark the job RUNNING on it with
 * deadline now_ms + ttr_ms and attempt raised. Returns NULL when no job is
 * waiting or no worker has credit. */
queue_job_t *queue_dispatch(queue_t *q, int64_t now_ms);

/* Requeue RUNNING jobs whose deadline is past. Calls on_expired (may be NULL)
 * for each before requeueing. Returns how many. */
size_t queue_expire(queue_t *q, int64_t now_ms,
                    void (*on_expired)(queue_job_t *job, void *arg), void *arg);

#endif
