/*
 * events.c - `scoreline events`: print the score events of the Redis stream
 * <prefix>events as JSON lines, and with --follow keep tailing it. Each
 * stream entry carries `job_id` and `event` (the RESULT body, msgpack); the
 * line printed is that body as JSON with "stream_id" as its first key.
 *
 * --follow is meant to run for days: when Redis goes away it reconnects with
 * back-off and resumes after the last entry it printed, so nothing is
 * skipped or printed twice.
 */
#include "cli/cli.h"
#include "cli/event_json.h"

#include "common/keys.h"
#include "common/log.h"
#include "common/redis_url.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EVENTS_PAGE 1000       /* entries per XRANGE / XREAD */
#define EVENTS_BLOCK_MS 1000   /* XREAD BLOCK */
#define EVENTS_TIMEOUT_MS 5000 /* connect and command timeout (> EVENTS_BLOCK_MS) */
#define EVENTS_BACKOFF_MAX_MS 10000

static const char events_usage[] =
    "Usage: scoreline events [--follow] [--from ID] [--count N] [--tenant T]\n"
    "\n"
    "Print score events from the Redis stream <prefix>events (--redis, --prefix), one\n"
    "JSON line each: the event (the RESULT body) with \"stream_id\" as its first key:\n"
    "  "
    "{\"stream_id\":\"1732527000123-0\",\"v\":1,\"job_id\":..,\"tenant\":..,...,\"status\":\"ok\","
    "\n"
    "   \"result\":{..},\"digest\":\"..\"}\n"
    "\n"
    "  --from ID    start at this stream id, inclusive (default \"-\": the oldest kept);\n"
    "               \"$\" skips the backlog (only new events, with --follow)\n"
    "  --count N    stop after printing N events (default: no limit)\n"
    "  --tenant T   only events of tenant T\n"
    "  --follow     after the backlog, wait for new events until SIGINT/SIGTERM (exit 0);\n"
    "               if Redis goes away, retry with back-off (up to 10 s) and resume after\n"
    "               the last event printed\n"
    "\n"
    "Entries that are not valid events are reported on stderr ([bad_event]) and skipped.\n"
    "Exit: 0 ok; 2 usage; 3 Redis unavailable (at start, or during the backlog without\n"
    "--follow).\n";

static volatile sig_atomic_t events_stop;

static void events_on_signal(int sig)
{
    events_stop = sig;
}

typedef struct events_run {
    const cli_globals_t *g;
    char *key;
    const char *tenant;
    uint64_t limit; /* 0 = no limit */
    uint64_t printed;
    char last_id[64]; /* last entry seen, "" before the first */
} events_run_t;

/* Print one stream entry ([id, [field, value, ...]]) if it passes the filter. */
static void events_print_entry(events_run_t *run, const redisReply *entry)
{
    if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2 ||
        entry->element[0]->type != REDIS_REPLY_STRING)
        return;
    const redisReply *id = entry->element[0], *fields = entry->element[1];
    snprintf(run->last_id, sizeof run->last_id, "%.*s", (int)id->len, id->str);
    const redisReply *body = NULL;
    for (size_t i = 0; fields->type == REDIS_REPLY_ARRAY && i + 1 < fields->elements; i += 2) {
        const redisReply *f = fields->element[i];
        if (f->type == REDIS_REPLY_STRING && f->len == 5 && memcmp(f->str, "event", 5) == 0)
            body = fields->element[i + 1];
    }
    json_t *ev = body && body->type == REDIS_REPLY_STRING
                     ? event_json_from_body(body->str, body->len, run->last_id)
                     : NULL;
    if (!ev) {
        cli_error("bad_event", "stream entry %s has no readable \"event\" field; skipped",
                  run->last_id);
        return;
    }
    const char *tenant = event_json_string(ev, "tenant");
    if (!run->tenant || (tenant && strcmp(tenant, run->tenant) == 0)) {
        if (!run->limit || run->printed < run->limit) {
            cli_print_json_line(ev);
            run->printed++;
        }
    }
    json_decref(ev);
}

static int events_done(const events_run_t *run)
{
    return run->limit && run->printed >= run->limit;
}

/* Print entries of an XRANGE reply. Returns how many entries it had. */
static size_t events_print_range(events_run_t *run, const redisReply *r)
{
    for (size_t i = 0; i < r->elements && !events_done(run); i++)
        events_print_entry(run, r->element[i]);
    fflush(stdout);
    return r->elements;
}

/* The backlog from `from` (inclusive) to the end, in pages. Returns an exit
 * code; on a lost connection, 3 with the error printed. */
static int events_backlog(events_run_t *run, redisContext *c, const char *from)
{
    char start[80];
    snprintf(start, sizeof start, "%s", from);
    while (!events_done(run) && !events_stop) {
        redisReply *r = redisCommand(c, "XRANGE %s %s + COUNT %d", run->key, start, EVENTS_PAGE);
        if (!r) {
            cli_error("redis_unavailable", "lost Redis while reading %s: %s", run->key, c->errstr);
            return CLI_EXIT_UNAVAILABLE;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            int usage = strstr(r->str, "Invalid stream ID") != NULL;
            cli_error(usage ? "usage" : "redis_error", "XRANGE %s from %s: %s", run->key, start,
                      r->str);
            freeReplyObject(r);
            return usage ? CLI_EXIT_USAGE : CLI_EXIT_FAILED;
        }
        size_t n = r->type == REDIS_REPLY_ARRAY ? events_print_range(run, r) : 0;
        freeReplyObject(r);
        if (n < EVENTS_PAGE)
            break;
        snprintf(start, sizeof start, "(%s", run->last_id);
    }
    return CLI_EXIT_OK;
}

/* Connect without printing; NULL with err filled. */
static redisContext *events_connect(const redis_url_t *u, char *err, size_t errlen)
{
    return redis_url_connect(u, EVENTS_TIMEOUT_MS, err, errlen);
}

/* Tail the stream after run->last_id (or "$") until a signal or the count. */
static int events_follow(events_run_t *run, redisContext **cp, const redis_url_t *u)
{
    const char *from = run->last_id[0] ? run->last_id : "$";
    char cursor[64];
    snprintf(cursor, sizeof cursor, "%s", from);
    int backoff_ms = 0;
    while (!events_stop && !events_done(run)) {
        redisContext *c = *cp;
        if (!c) {
            char err[512];
            c = events_connect(u, err, sizeof err);
            if (!c) {
                backoff_ms = backoff_ms ? backoff_ms * 2 : 500;
                if (backoff_ms > EVENTS_BACKOFF_MAX_MS)
                    backoff_ms = EVENTS_BACKOFF_MAX_MS;
                cli_error("redis_unavailable", "%s; retrying in %.1f s", err, backoff_ms / 1000.0);
                for (int waited = 0; waited < backoff_ms && !events_stop; waited += 100)
                    usleep(100 * 1000);
                continue;
            }
            if (backoff_ms)
                cli_note("reconnected to Redis; resuming after %s", cursor);
            backoff_ms = 0;
            *cp = c;
        }
        redisReply *r = redisCommand(c, "XREAD COUNT %d BLOCK %d STREAMS %s %s", EVENTS_PAGE,
                                     EVENTS_BLOCK_MS, run->key, cursor);
        if (!r) {
            if (events_stop)
                break;
            cli_error("redis_unavailable", "lost Redis while following %s: %s", run->key,
                      c->errstr);
            redisFree(c);
            *cp = NULL;
            continue;
        }
        if (r->type == REDIS_REPLY_ERROR) {
            /* LOADING after a restart, or a failover in progress: wait and retry */
            cli_error("redis_error", "XREAD %s: %s; retrying", run->key, r->str);
            freeReplyObject(r);
            for (int waited = 0; waited < 1000 && !events_stop; waited += 100)
                usleep(100 * 1000);
            continue;
        }
        /* [[key, [entries...]]] or nil on timeout */
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
            r->element[0]->type == REDIS_REPLY_ARRAY && r->element[0]->elements == 2) {
            events_print_range(run, r->element[0]->element[1]);
            if (run->last_id[0])
                snprintf(cursor, sizeof cursor, "%s", run->last_id);
        }
        freeReplyObject(r);
    }
    return CLI_EXIT_OK;
}

int cmd_events(const cli_globals_t *g, int argc, char **argv)
{
    int help = 0, follow = 0, npos = 0;
    const char *from = "-", *count_s = NULL, *tenant = NULL;
    const cli_flag_t flags[] = {
        {"follow", 0, NULL, &follow}, {"from", 1, &from, NULL}, {"count", 1, &count_s, NULL},
        {"tenant", 1, &tenant, NULL}, {NULL, 0, NULL, NULL},
    };
    const char **pos = calloc((size_t)argc + 1, sizeof *pos);
    if (!pos)
        return CLI_EXIT_FAILED;
    events_run_t run;
    memset(&run, 0, sizeof run);
    run.g = g;
    run.tenant = tenant;
    redisContext *c = NULL;
    int rc = CLI_EXIT_USAGE;
    if (cli_parse_flags("events", argc, argv, flags, pos, &npos, &help) != 0)
        goto done;
    run.tenant = tenant;
    if (help) {
        fputs(events_usage, stdout);
        rc = CLI_EXIT_OK;
        goto done;
    }
    if (npos) {
        cli_error("usage", "events takes no arguments, got '%s' (see scoreline events --help)",
                  pos[0]);
        goto done;
    }
    if (count_s && cli_parse_uint("count", count_s, 1, UINT64_MAX, &run.limit) != 0)
        goto done;
    if (!*from || strlen(from) > 40 || (from[0] == '(')) {
        cli_error("usage", "--from: '%s' is not a stream id (ms-seq, ms, \"-\" or \"$\")", from);
        goto done;
    }
    redis_url_t u;
    char err[512];
    if (redis_url_parse(g->redis_url, &u, err, sizeof err) != 0) {
        cli_error("bad_redis_url", "--redis: %s", err);
        goto done;
    }
    run.key = cli_key(g, KEY_EVENTS, "");
    c = events_connect(&u, err, sizeof err);
    if (!run.key || !c) {
        cli_error("redis_unavailable", "%s", run.key ? err : "out of memory");
        rc = CLI_EXIT_UNAVAILABLE;
        goto done;
    }
    struct sigaction sa, old_int, old_term;
    if (follow) {
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = events_on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGINT, &sa, &old_int);
        sigaction(SIGTERM, &sa, &old_term);
    }
    rc = CLI_EXIT_OK;
    if (strcmp(from, "$") != 0)
        rc = events_backlog(&run, c, from);
    if (follow && (rc == CLI_EXIT_OK || rc == CLI_EXIT_UNAVAILABLE)) {
        /* Resume after the last entry seen; with none, from the start point
         * ("-" is every entry, i.e. after 0-0). */
        if (!run.last_id[0] && strcmp(from, "$") != 0)
            snprintf(run.last_id, sizeof run.last_id, "%s", strcmp(from, "-") == 0 ? "0-0" : from);
        if (rc == CLI_EXIT_UNAVAILABLE) {
            redisFree(c);
            c = NULL;
        }
        rc = events_follow(&run, &c, &u);
    }
    if (follow) {
        sigaction(SIGINT, &old_int, NULL);
        sigaction(SIGTERM, &old_term, NULL);
    }
done:
    fflush(stdout);
    if (c)
        redisFree(c);
    free(run.key);
    free(pos);
    return rc;
}
