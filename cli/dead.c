/*
 * dead.c - `scoreline dead list|show|retry|purge`: the dead-letter stream.
 *
 * A broker moves a job to <prefix>dead when it was delivered --max-attempts
 * times without a result (its workers died or its time-to-run kept passing).
 * Each entry keeps the job as submitted, the rubric version it was accepted
 * with, the attempts and the reason. `retry` submits the jobs again through
 * a broker (pinned to that rubric version unless --latest) and removes each
 * entry once the broker has ACCEPTED it; `purge` removes entries for good.
 * Dead-lettering also parks the job id in the done-set (so a late result is
 * dropped and a resubmission is answered dead_letter); `retry` releases it.
 */
#include "cli/cli.h"

#include "common/clock.h"
#include "common/jsonmp.h"
#include "common/keys.h"
#include "proto/proto.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

static const char dead_usage[] =
    "Usage: scoreline dead list [--count N]\n"
    "       scoreline dead show ID\n"
    "       scoreline dead retry (ID... | --all) [--latest] [--timeout SECONDS]\n"
    "       scoreline dead purge (ID... | --all)\n"
    "\n"
    "The dead-letter stream <prefix>dead: jobs a broker gave up on after --max-attempts\n"
    "deliveries without a result. ID is a job id or a stream entry id.\n"
    "\n"
    "  list      one JSON line per entry: stream_id, job_id, attempts, reason, dead_us,\n"
    "            accepted_us, hash (oldest first; --count N: the first N)\n"
    "  show      the whole entry as JSON, the job record included\n"
    "  retry     submit the jobs again through --broker; an entry is removed once the\n"
    "            broker has ACCEPTED its job. The job keeps the rubric version it was\n"
    "            accepted with; --latest lets the broker use the rubric id's current\n"
    "            version. Prints one JSON line per job: status \"requeued\" or \"rejected\".\n"
    "  purge     remove entries for good; prints how many\n"
    "\n"
    "Exit codes: 0 success; 1 an ID is unknown or a retry was rejected; 2 usage;\n"
    "3 Redis or the broker is unavailable.\n";

/* One dead-letter entry, pointing into a hiredis reply. */
typedef struct dead_entry {
    const char *stream_id;
    const redisReply *job_id, *hash, *accepted_us, *attempts, *reason, *dead_us, *job;
} dead_entry_t;

static const redisReply *dead_field(const redisReply *fields, const char *name)
{
    for (size_t k = 0; k + 1 < fields->elements; k += 2)
        if (fields->element[k]->type == REDIS_REPLY_STRING &&
            strcmp(fields->element[k]->str, name) == 0)
            return fields->element[k + 1];
    return NULL;
}

static int dead_entry_read(const redisReply *e, dead_entry_t *out)
{
    if (e->type != REDIS_REPLY_ARRAY || e->elements != 2)
        return -1;
    const redisReply *f = e->element[1];
    *out = (dead_entry_t){.stream_id = e->element[0]->str,
                          .job_id = dead_field(f, "job_id"),
                          .hash = dead_field(f, "hash"),
                          .accepted_us = dead_field(f, "accepted_us"),
                          .attempts = dead_field(f, "attempts"),
                          .reason = dead_field(f, "reason"),
                          .dead_us = dead_field(f, "dead_us"),
                          .job = dead_field(f, "job")};
    return out->job_id && out->job ? 0 : -1;
}

static json_t *dead_json(const dead_entry_t *d, int with_job)
{
    json_t *o = json_object();
    json_object_set_new(o, "stream_id", json_string(d->stream_id));
    json_object_set_new(o, "job_id", json_stringn(d->job_id->str, d->job_id->len));
    if (d->attempts)
        json_object_set_new(o, "attempts", json_integer(strtoll(d->attempts->str, NULL, 10)));
    if (d->reason)
        json_object_set_new(o, "reason", json_stringn(d->reason->str, d->reason->len));
    if (d->dead_us)
        json_object_set_new(o, "dead_us", json_integer(strtoll(d->dead_us->str, NULL, 10)));
    if (d->accepted_us)
        json_object_set_new(o, "accepted_us",
                            json_integer(strtoll(d->accepted_us->str, NULL, 10)));
    if (d->hash)
        json_object_set_new(o, "hash", json_stringn(d->hash->str, d->hash->len));
    if (with_job) {
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        size_t off = 0;
        if (msgpack_unpack_next(&u, d->job->str, d->job->len, &off) == MSGPACK_UNPACK_SUCCESS) {
            json_t *j = jsonmp_to_json(&u.data);
            if (j)
                json_object_set_new(o, "job", j);
        }
        msgpack_unpacked_destroy(&u);
    }
    return o;
}

/* Every entry, oldest first (the stream holds what operators have not
 * handled yet: small). NULL after printing the error. */
static redisReply *dead_all(redisContext *c, const char *key, const char *count)
{
    redisReply *r = count ? redisCommand(c, "XRANGE %s - + COUNT %s", key, count)
                          : redisCommand(c, "XRANGE %s - +", key);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        cli_error("redis_unavailable", "cannot read %s: %s", key,
                  r && r->type == REDIS_REPLY_ERROR ? r->str : c->errstr);
        if (r)
            freeReplyObject(r);
        return NULL;
    }
    return r;
}

/* Does entry d match ID (a stream id or a job id)? */
static int dead_matches(const dead_entry_t *d, const char *id)
{
    return strcmp(d->stream_id, id) == 0 ||
           (d->job_id->len == strlen(id) && memcmp(d->job_id->str, id, d->job_id->len) == 0);
}

/* The job record to submit again: the dead job's map with rubric_hash set to
 * the version it was accepted with (unless latest or unknown). */
static int dead_job_record(const dead_entry_t *d, int latest, msgpack_sbuffer *out)
{
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    int rc = -1;
    if (msgpack_unpack_next(&u, d->job->str, d->job->len, &off) == MSGPACK_UNPACK_SUCCESS &&
        u.data.type == MSGPACK_OBJECT_MAP) {
        int pin = !latest && d->hash && d->hash->len == 64;
        const msgpack_object_map *m = &u.data.via.map;
        uint32_t n = 0;
        for (uint32_t i = 0; i < m->size; i++) {
            const msgpack_object *k = &m->ptr[i].key;
            if (!(k->type == MSGPACK_OBJECT_STR && k->via.str.size == 11 &&
                  memcmp(k->via.str.ptr, "rubric_hash", 11) == 0))
                n++;
        }
        msgpack_packer pk;
        msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
        rc = msgpack_pack_map(&pk, n + (pin ? 1 : 0));
        for (uint32_t i = 0; rc == 0 && i < m->size; i++) {
            const msgpack_object *k = &m->ptr[i].key;
            if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == 11 &&
                memcmp(k->via.str.ptr, "rubric_hash", 11) == 0)
                continue;
            rc = msgpack_pack_object(&pk, *k) || msgpack_pack_object(&pk, m->ptr[i].val);
        }
        if (rc == 0 && pin)
            rc = msgpack_pack_str_with_body(&pk, "rubric_hash", 11) ||
                 msgpack_pack_str_with_body(&pk, d->hash->str, d->hash->len);
    }
    msgpack_unpacked_destroy(&u);
    return rc ? -1 : 0;
}

/* Submit the chosen entries and wait for the broker's answers; remove the
 * accepted ones from the stream. Returns the exit code. */
static int dead_retry(const cli_globals_t *g, redisContext *c, const char *key, dead_entry_t *sel,
                      size_t n, int latest, int64_t timeout_ms)
{
    msgpack_sbuffer *maps = calloc(n, sizeof *maps);
    const msgpack_sbuffer **ptrs = calloc(n, sizeof *ptrs);
    int *answered = calloc(n, sizeof *answered);
    int rc = CLI_EXIT_OK;
    void *ctx = zmq_ctx_new(), *sock = NULL;
    msgpack_sbuffer body;
    msgpack_sbuffer_init(&body);
    proto_decoder_t *dec = proto_decoder_new(0);
    if (!maps || !ptrs || !answered || !ctx || !dec) {
        cli_error("internal_error", "out of memory");
        rc = CLI_EXIT_FAILED;
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        msgpack_sbuffer_init(&maps[i]);
        if (dead_job_record(&sel[i], latest, &maps[i]) != 0) {
            cli_error("invalid_entry", "dead entry %s holds no readable job", sel[i].stream_id);
            rc = CLI_EXIT_FAILED;
            goto out;
        }
        ptrs[i] = &maps[i];
    }
    /* Release each job id from the done-set, where dead-lettering parked it
     * (a "DEAD:" marker that turns resubmissions away): only the marker,
     * never a real score event. */
    for (size_t i = 0; i < n; i++) {
        char *done = cli_key(g, KEY_DONE, "");
        redisReply *r = done ? redisCommand(c,
                                            "EVAL %s 1 %s%b",
                                            "local v = redis.call('GET', KEYS[1]) "
                                            "if v and string.sub(v, 1, 5) == 'DEAD:' then "
                                            "return redis.call('DEL', KEYS[1]) end return 0",
                                            done, sel[i].job_id->str, (size_t)sel[i].job_id->len)
                             : NULL;
        free(done);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            cli_error("redis_unavailable", "cannot release job %.*s for a retry: %s",
                      (int)sel[i].job_id->len, sel[i].job_id->str,
                      r ? r->str : c->errstr);
            if (r)
                freeReplyObject(r);
            rc = CLI_EXIT_UNAVAILABLE;
            goto out;
        }
        freeReplyObject(r);
    }
    sock = zmq_socket(ctx, ZMQ_DEALER);
    int linger = 0;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    if (!sock || zmq_connect(sock, g->broker) != 0) {
        cli_error("usage", "--broker: cannot connect to '%s': %s", g->broker, zmq_strerror(errno));
        rc = CLI_EXIT_USAGE;
        goto out;
    }
    if (proto_encode_submit(&body, 1, ptrs, n) != 0 ||
        zmq_send(sock, PROTO_SIGNATURE, PROTO_SIGNATURE_LEN, ZMQ_SNDMORE) < 0 ||
        zmq_send(sock, "SUBMIT", 6, ZMQ_SNDMORE) < 0 || zmq_send(sock, body.data, body.size, 0) < 0) {
        cli_error("internal_error", "cannot send the SUBMIT");
        rc = CLI_EXIT_FAILED;
        goto out;
    }
    size_t left = n;
    int64_t deadline = clock_mono_ms() + timeout_ms;
    while (left && clock_mono_ms() < deadline) {
        zmq_pollitem_t item = {sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 100) <= 0)
            continue;
        zmq_msg_t f[3];
        int nf = 0, more = 1;
        while (more) {
            zmq_msg_t m;
            zmq_msg_init(&m);
            if (zmq_msg_recv(&m, sock, 0) < 0) {
                zmq_msg_close(&m);
                break;
            }
            more = zmq_msg_more(&m);
            if (nf < 3) {
                zmq_msg_init(&f[nf]);
                zmq_msg_move(&f[nf++], &m);
            }
            zmq_msg_close(&m);
        }
        proto_cmd_t cmd;
        if (nf == 3 && proto_cmd_parse(zmq_msg_data(&f[1]), zmq_msg_size(&f[1]), &cmd) == PROTO_OK) {
            proto_error_t e;
            if (cmd == PROTO_CMD_ACCEPTED) {
                proto_accepted_t a;
                if (proto_decode_accepted(dec, zmq_msg_data(&f[2]), zmq_msg_size(&f[2]), &a, &e) ==
                    PROTO_OK)
                    for (uint32_t k = 0; k < a.njobs; k++)
                        for (size_t i = 0; i < n; i++)
                            if (!answered[i] && a.jobs[k].job_id.len == sel[i].job_id->len &&
                                memcmp(a.jobs[k].job_id.ptr, sel[i].job_id->str,
                                       sel[i].job_id->len) == 0) {
                                answered[i] = 1;
                                left--;
                                redisReply *r =
                                    redisCommand(c, "XDEL %s %s", key, sel[i].stream_id);
                                if (r)
                                    freeReplyObject(r);
                                json_t *o = json_pack(
                                    "{s:s%, s:s, s:s, s:b}", "job_id", sel[i].job_id->str,
                                    (size_t)sel[i].job_id->len, "status", "requeued", "state",
                                    proto_state_name(a.jobs[k].state), "duplicate",
                                    a.jobs[k].duplicate);
                                cli_print_json_line(o);
                                json_decref(o);
                            }
            } else if (cmd == PROTO_CMD_REJECTED) {
                proto_rejected_t rj;
                if (proto_decode_rejected(dec, zmq_msg_data(&f[2]), zmq_msg_size(&f[2]), &rj,
                                          &e) == PROTO_OK) {
                    for (size_t i = 0; i < n; i++) {
                        if (answered[i])
                            continue;
                        proto_str_t code = rj.code, msg = rj.message;
                        int hit = rj.njobs == 0;
                        for (uint32_t k = 0; k < rj.njobs && !hit; k++)
                            if (rj.jobs[k].job_id.len == sel[i].job_id->len &&
                                memcmp(rj.jobs[k].job_id.ptr, sel[i].job_id->str,
                                       sel[i].job_id->len) == 0) {
                                hit = 1;
                                code = rj.jobs[k].code;
                                msg = rj.jobs[k].message;
                            }
                        if (!hit)
                            continue;
                        answered[i] = 1;
                        left--;
                        rc = cli_exit_worst(rc, CLI_EXIT_FAILED);
                        json_t *o = json_pack("{s:s%, s:s, s:{s:s%, s:s%}}", "job_id",
                                              sel[i].job_id->str, (size_t)sel[i].job_id->len,
                                              "status", "rejected", "error", "code", code.ptr,
                                              (size_t)code.len, "message", msg.ptr,
                                              (size_t)msg.len);
                        cli_print_json_line(o);
                        json_decref(o);
                    }
                }
            }
        }
        for (int i = 0; i < nf; i++)
            zmq_msg_close(&f[i]);
    }
    if (left) {
        cli_error("broker_unavailable", "%zu job%s without an answer from %s within %lld s; their "
                  "entries are kept",
                  left, left == 1 ? "" : "s", g->broker, (long long)(timeout_ms / 1000));
        rc = cli_exit_worst(rc, CLI_EXIT_UNAVAILABLE);
    }
out:
    if (maps)
        for (size_t i = 0; i < n; i++)
            msgpack_sbuffer_destroy(&maps[i]);
    free(maps);
    free(ptrs);
    free(answered);
    msgpack_sbuffer_destroy(&body);
    proto_decoder_destroy(&dec);
    if (sock)
        zmq_close(sock);
    if (ctx)
        zmq_ctx_term(ctx);
    return rc;
}

int cmd_dead(const cli_globals_t *g, int argc, char **argv)
{
    int help = 0, all = 0, latest = 0, npos = 0;
    const char *count_s = NULL, *timeout_s = NULL;
    const cli_flag_t flags[] = {{"count", 1, &count_s, NULL},  {"all", 0, NULL, &all},
                                {"latest", 0, NULL, &latest},  {"timeout", 1, &timeout_s, NULL},
                                {NULL, 0, NULL, NULL}};
    const char **pos = calloc((size_t)argc + 1, sizeof *pos);
    if (!pos)
        return CLI_EXIT_FAILED;
    int rc = CLI_EXIT_USAGE;
    redisContext *c = NULL;
    redisReply *r = NULL;
    char *key = NULL;
    dead_entry_t *sel = NULL;
    uint64_t count = 0, timeout = 10;
    if (cli_parse_flags("dead", argc, argv, flags, pos, &npos, &help) != 0)
        goto out;
    if (help) {
        fputs(dead_usage, stdout);
        rc = CLI_EXIT_OK;
        goto out;
    }
    if (npos == 0) {
        cli_error("usage", "dead needs a subcommand: list, show, retry or purge "
                           "(see scoreline dead --help)");
        goto out;
    }
    const char *sub = pos[0];
    int is_list = strcmp(sub, "list") == 0, is_show = strcmp(sub, "show") == 0;
    int is_retry = strcmp(sub, "retry") == 0, is_purge = strcmp(sub, "purge") == 0;
    if (!is_list && !is_show && !is_retry && !is_purge) {
        cli_error("usage", "unknown dead subcommand '%s' (list, show, retry, purge)", sub);
        goto out;
    }
    if (count_s && cli_parse_uint("count", count_s, 1, 1000000, &count) != 0)
        goto out;
    if (timeout_s && cli_parse_uint("timeout", timeout_s, 1, 86400, &timeout) != 0)
        goto out;
    if (is_list && npos != 1) {
        cli_error("usage", "dead list takes no arguments");
        goto out;
    }
    if (is_show && npos != 2) {
        cli_error("usage", "dead show takes exactly one ID");
        goto out;
    }
    if ((is_retry || is_purge) && (npos == 1) == !all) {
        cli_error("usage", "dead %s takes IDs or --all (not both)", sub);
        goto out;
    }
    c = cli_redis_connect(g, 2000, &rc);
    if (!c)
        goto out;
    key = cli_key(g, KEY_DEAD, "");
    if (!key) {
        rc = CLI_EXIT_FAILED;
        goto out;
    }
    r = dead_all(c, key, is_list ? count_s : NULL);
    if (!r) {
        rc = CLI_EXIT_UNAVAILABLE;
        goto out;
    }
    rc = CLI_EXIT_OK;
    sel = calloc(r->elements ? r->elements : 1, sizeof *sel);
    size_t nsel = 0;
    for (size_t i = 0; i < r->elements; i++) {
        dead_entry_t d;
        if (dead_entry_read(r->element[i], &d) != 0)
            continue;
        if (is_list) {
            json_t *o = dead_json(&d, 0);
            cli_print_json_line(o);
            json_decref(o);
            continue;
        }
        int want = all;
        for (int k = 1; k < npos && !want; k++)
            want = dead_matches(&d, pos[k]);
        if (want)
            sel[nsel++] = d;
    }
    if (is_list)
        goto out;
    /* Every ID named must exist. */
    for (int k = 1; k < npos; k++) {
        int found = 0;
        for (size_t i = 0; i < nsel && !found; i++)
            found = dead_matches(&sel[i], pos[k]);
        if (!found) {
            cli_error("unknown_entry", "no dead-letter entry for '%s'", pos[k]);
            rc = CLI_EXIT_FAILED;
        }
    }
    if (is_show) {
        for (size_t i = 0; i < nsel; i++) {
            json_t *o = dead_json(&sel[i], 1);
            cli_print_json_line(o);
            json_decref(o);
        }
    } else if (is_purge) {
        size_t purged = 0;
        for (size_t i = 0; i < nsel; i++) {
            redisReply *d = redisCommand(c, "XDEL %s %s", key, sel[i].stream_id);
            if (d && d->type == REDIS_REPLY_INTEGER)
                purged += (size_t)d->integer;
            if (d)
                freeReplyObject(d);
        }
        printf("%zu\n", purged);
        cli_note("purged %zu dead-letter entr%s", purged, purged == 1 ? "y" : "ies");
    } else if (nsel) {
        rc = cli_exit_worst(rc, dead_retry(g, c, key, sel, nsel, latest,
                                           (int64_t)timeout * 1000));
    }
out:
    free(sel);
    if (r)
        freeReplyObject(r);
    free(key);
    if (c)
        redisFree(c);
    free(pos);
    return rc;
}
