/*
 * metrics.c - Prometheus text rendering and the /metrics listener (see
 * metrics.h). The listener is a plain non-blocking TCP socket polled by the
 * broker's loop; each request is answered and the connection closed.
 */
#define _GNU_SOURCE
#include "broker/metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* Bucket upper bounds in microseconds: 50 us .. 10 s. */
static const uint64_t bucket_us[METRICS_BUCKETS] = {50,    100,    250,    500,     1000,
                                                    2500,  5000,   10000,  25000,   50000,
                                                    100000, 500000, 1000000, 10000000};

void metrics_observe(metrics_histogram_t *h, uint64_t us)
{
    for (int i = 0; i < METRICS_BUCKETS; i++)
        if (us <= bucket_us[i]) {
            h->buckets[i]++;
            break;
        }
    h->count++;
    h->sum_us += us;
}

typedef struct text {
    char *buf;
    size_t len, cap;
} text_t;

static void text_printf(text_t *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void text_printf(text_t *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf + t->len, t->cap - t->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < t->cap - t->len) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = (t->cap + (size_t)n) * 2;
        char *b = realloc(t->buf, cap);
        if (!b)
            return;
        t->buf = b;
        t->cap = cap;
    }
}

static void metric(text_t *t, const char *name, const char *type, const char *help, uint64_t v)
{
    text_printf(t, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", name, help, name, type, name,
                (unsigned long long)v);
}

static void histogram(text_t *t, const char *name, const char *help, const metrics_histogram_t *h)
{
    text_printf(t, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    uint64_t cum = 0;
    for (int i = 0; i < METRICS_BUCKETS; i++) {
        cum += h->buckets[i];
        text_printf(t, "%s_bucket{le=\"%llu.%06llu\"} %llu\n", name,
                    (unsigned long long)(bucket_us[i] / 1000000),
                    (unsigned long long)(bucket_us[i] % 1000000), (unsigned long long)cum);
    }
    text_printf(t, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)h->count);
    text_printf(t, "%s_sum %llu.%06llu\n%s_count %llu\n", name,
                (unsigned long long)(h->sum_us / 1000000), (unsigned long long)(h->sum_us % 1000000),
                name, (unsigned long long)h->count);
}

char *metrics_render(const metrics_t *m, const metrics_gauges_t *g)
{
    text_t t = {malloc(8192), 0, 8192};
    if (!t.buf)
        return NULL;
    t.buf[0] = '\0';
    metric(&t, "scoreline_queue_depth", "gauge", "Jobs waiting for a worker.", g->queued);
    metric(&t, "scoreline_jobs_in_flight", "gauge", "Jobs held by workers.", g->running);
    metric(&t, "scoreline_queue_capacity", "gauge", "Most jobs the broker holds (--max-queue).",
           g->capacity);
    metric(&t, "scoreline_workers", "gauge", "Connected workers.", g->workers);
    metric(&t, "scoreline_results_pending_emit", "gauge",
           "Results received but not yet stored (Redis unavailable).", g->pending_emit);
    metric(&t, "scoreline_redis_up", "gauge", "1 when the broker's Redis connection is up.",
           (uint64_t)g->redis_up);
    metric(&t, "scoreline_submit_messages_total", "counter", "SUBMIT messages received.",
           m->submits);
    metric(&t, "scoreline_jobs_accepted_total", "counter", "Jobs journaled and accepted.",
           m->accepted);
    metric(&t, "scoreline_jobs_duplicate_total", "counter",
           "Submissions of a job id already queued, running or done.", m->duplicates);
    text_printf(&t, "# HELP scoreline_jobs_rejected_total Jobs refused, by reason.\n"
                    "# TYPE scoreline_jobs_rejected_total counter\n");
    text_printf(&t, "scoreline_jobs_rejected_total{code=\"queue_full\"} %llu\n",
                (unsigned long long)m->rejected_queue_full);
    text_printf(&t, "scoreline_jobs_rejected_total{code=\"unknown_rubric\"} %llu\n",
                (unsigned long long)m->rejected_unknown_rubric);
    text_printf(&t, "scoreline_jobs_rejected_total{code=\"invalid\"} %llu\n",
                (unsigned long long)m->rejected_invalid);
    text_printf(&t, "scoreline_jobs_rejected_total{code=\"unavailable\"} %llu\n",
                (unsigned long long)m->rejected_unavailable);
    text_printf(&t, "# HELP scoreline_jobs_completed_total Score events emitted, by status.\n"
                    "# TYPE scoreline_jobs_completed_total counter\n");
    text_printf(&t, "scoreline_jobs_completed_total{status=\"ok\"} %llu\n",
                (unsigned long long)m->completed_ok);
    text_printf(&t, "scoreline_jobs_completed_total{status=\"error\"} %llu\n",
                (unsigned long long)m->completed_error);
    metric(&t, "scoreline_results_duplicate_total", "counter",
           "Results dropped because the job already had its score event.", m->results_duplicate);
    metric(&t, "scoreline_redeliveries_total", "counter",
           "Jobs sent back to the queue after a worker was lost or a time-to-run passed.",
           m->redeliveries);
    metric(&t, "scoreline_ttr_expired_total", "counter", "Jobs whose time-to-run passed.",
           m->ttr_expired);
    metric(&t, "scoreline_dead_letters_total", "counter",
           "Jobs moved to the dead-letter stream after too many deliveries.", m->dead_letters);
    metric(&t, "scoreline_workers_lost_total", "counter", "Workers declared dead (no heartbeat).",
           m->workers_lost);
    metric(&t, "scoreline_bad_messages_total", "counter",
           "Undecodable messages received from workers.", m->bad_messages);
    histogram(&t, "scoreline_grading_duration_seconds", "Grading time reported by workers.",
              &m->grading);
    histogram(&t, "scoreline_queue_wait_seconds", "From acceptance to a worker starting the job.",
              &m->queue_wait);
    histogram(&t, "scoreline_end_to_end_seconds", "From acceptance to the score event.",
              &m->end_to_end);
    return t.buf;
}

struct metrics_http {
    int fd;
};

metrics_http_t *metrics_http_new(const char *host, int port, char *err, size_t errlen)
{
    struct sockaddr_in sa = {0};
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        snprintf(err, errlen, "--metrics: '%s' is not an IPv4 address", host);
        return NULL;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) || listen(fd, 64)) {
        snprintf(err, errlen, "--metrics: cannot listen on %s:%d: %s", host, port,
                 strerror(errno));
        if (fd >= 0)
            close(fd);
        return NULL;
    }
    metrics_http_t *h = calloc(1, sizeof *h);
    if (!h) {
        close(fd);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->fd = fd;
    return h;
}

void metrics_http_destroy(metrics_http_t **self_p)
{
    metrics_http_t *h = *self_p;
    if (!h)
        return;
    close(h->fd);
    free(h);
    *self_p = NULL;
}

int metrics_http_fd(const metrics_http_t *h)
{
    return h->fd;
}

static void http_reply(int fd, const char *status, const char *ctype, const char *body)
{
    char head[256];
    size_t blen = strlen(body);
    int n = snprintf(head, sizeof head,
                     "HTTP/1.1 %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n",
                     status, ctype, blen);
    if (send(fd, head, (size_t)n, MSG_NOSIGNAL) == n)
        (void)!send(fd, body, blen, MSG_NOSIGNAL);
}

void metrics_http_serve(metrics_http_t *h, const metrics_t *m, const metrics_gauges_t *g)
{
    for (int k = 0; k < 16; k++) {
        int c = accept4(h->fd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0)
            return;
        /* A slow client may hold the loop at most 200 ms. */
        struct timeval tv = {0, 200000};
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        setsockopt(c, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        char req[2048];
        ssize_t got = recv(c, req, sizeof req - 1, 0);
        if (got > 0) {
            req[got] = '\0';
            if (strncmp(req, "GET /metrics", 12) == 0) {
                char *body = metrics_render(m, g);
                http_reply(c, "200 OK", "text/plain; version=0.0.4", body ? body : "");
                free(body);
            } else if (strncmp(req, "GET /healthz", 12) == 0) {
                if (g->redis_up)
                    http_reply(c, "200 OK", "text/plain", "ok\n");
                else
                    http_reply(c, "503 Service Unavailable", "text/plain",
                               "degraded: Redis is unreachable\n");
            } else {
                http_reply(c, "404 Not Found", "text/plain",
                           "not found: try /metrics or /healthz\n");
            }
        }
        close(c);
    }
}
