/*
 * journal.c - the broker's Redis batches (see journal.h).
 *
 * What Redis does per job is kept small, since at tens of thousands of jobs
 * per second Redis's CPU is a large share of the machine:
 *  - submit: the done keys of the batch and its rubric ids are read with one
 *    MGET (keys built here, not in Lua), pinned rubric hashes checked with
 *    EXISTS, then the accepted jobs are appended as one journal entry with
 *    one XADD. No script: nothing else writes this broker's journal, and a
 *    job that became done between the two steps is one this broker does
 *    not hold, which the emission dedupe covers anyway;
 *  - complete: one script claims each job id with SET NX EX (first result
 *    wins) and appends the winners to the events stream in the same atomic
 *    step, then trims the stream once; journal entries are deleted by the
 *    broker when the last job of an entry is gone (one XDEL per turn).
 * The event is kept twice: in done:<id> for as long as the dedupe TTL (so a
 * resubmission of a finished job gets its original RESULT bytes) and in the
 * events stream, which is capped by count (--events-maxlen) and can be
 * trimmed long before the TTL.
 *
 * The connection is non-blocking: commands are appended to hiredis's output
 * buffer and each waits in a FIFO of calls for its reply (Redis answers in
 * order), so the broker keeps receiving and dispatching while Redis works.
 * Journal entry ids are chosen here (<ms>-<seq>, above the stream's last
 * generated id, this broker being the journal's only writer), so an entry is
 * counted from the moment its XADD is sent. The script is loaded at connect;
 * a NOSCRIPT reply (Redis restarted behind the connection) counts as a lost
 * connection, and reconnecting loads it again.
 */
#include "broker/journal.h"

#include "common/log.h"

#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <msgpack.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* KEYS: events, done:<id>...; ARGV: ttl, maxlen, job ids..., events...
 * Per event: 1 stored and streamed (first for its id), 2 this very event
 * was stored before (a try whose reply was lost), 0 another one was. */
static const char COMPLETE_LUA[] =
    "local events, ttl, n = KEYS[1], ARGV[1], #KEYS - 1\n"
    "local out = {}\n"
    "for i = 1, n do\n"
    "  local ev = ARGV[n + 2 + i]\n"
    "  if redis.call('SET', KEYS[i + 1], ev, 'NX', 'EX', ttl) then\n"
    "    redis.call('XADD', events, '*', 'job_id', ARGV[2 + i], 'event', ev)\n"
    "    out[i] = 1\n"
    "  elseif redis.call('GET', KEYS[i + 1]) == ev then\n"
    "    out[i] = 2\n"
    "  else\n"
    "    out[i] = 0\n"
    "  end\n"
    "end\n"
    "redis.call('XTRIM', events, 'MAXLEN', '~', ARGV[2])\n"
    "return out\n";

/* Dead-lettering claims the job id in the done-set ("DEAD:" + reason, which
 * no score event starts with) so that a late result for it is dropped and a
 * resubmission is answered dead_letter until `scoreline dead retry`. */
static const char DEAD_LUA[] =
    "local journal, dead = ARGV[1], ARGV[2]\n"
    "redis.call('SET', ARGV[11] .. 'done:' .. ARGV[4], 'DEAD:' .. ARGV[8], 'EX', ARGV[12])\n"
    "redis.call('XADD', dead, '*', 'job_id', ARGV[4], 'hash', ARGV[5], 'accepted_us', ARGV[6],\n"
    "           'attempts', ARGV[7], 'reason', ARGV[8], 'dead_us', ARGV[9], 'journal', journal,\n"
    "           'job', ARGV[10])\n"
    "return 1\n";

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A call waiting for one reply. fn gets the reply, or NULL when the
 * connection was lost; it returns 1 when it keeps the reply (and frees it
 * later), 0 to let it be freed. */
typedef int (*op_fn)(journal_t *j, void *ctx, redisReply *r);

typedef struct jop {
    op_fn fn;
    void *ctx;
    int64_t sent_ms;
} jop_t;

struct journal {
    journal_config_t cfg;
    char prefix[128];
    size_t prefix_len;
    char journal_key[300];
    char events_key[160];
    char dead_key[160];
    redisContext *c;
    char complete_sha[41];
    char err[512];
    int64_t next_try_ms;
    int backoff_ms;
    int wants_write;
    int64_t last_rx_ms; /* when Redis last sent something */
    unsigned epoch;     /* connections made so far */
    /* last journal entry id given: ours are <ms>-<seq>, always increasing */
    uint64_t last_ms, last_seq;
    jentries_t *entries;
    char (*xdel)[JENTRY_SID]; /* released entries to delete */
    size_t nxdel, cap_xdel;
    jop_t *ops; /* ring of calls waiting for a reply, oldest at head */
    size_t ops_head, nops, cap_ops;
    /* reused buffers */
    const char **argv;
    size_t *argvlen;
    size_t cap_argv;
    char *keys;
    size_t cap_keys;
    msgpack_sbuffer blob;
};

journal_t *journal_new(const journal_config_t *cfg)
{
    journal_t *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->cfg = *cfg;
    snprintf(j->prefix, sizeof j->prefix, "%s", cfg->prefix);
    j->prefix_len = strlen(j->prefix);
    j->cfg.prefix = j->prefix;
    snprintf(j->journal_key, sizeof j->journal_key, "%sjournal:%s", cfg->prefix, cfg->name);
    snprintf(j->events_key, sizeof j->events_key, "%sevents", cfg->prefix);
    snprintf(j->dead_key, sizeof j->dead_key, "%sdead", cfg->prefix);
    j->cfg.name = NULL;
    j->backoff_ms = 100;
    j->entries = jentries_new();
    msgpack_sbuffer_init(&j->blob);
    if (!j->entries) {
        free(j);
        return NULL;
    }
    return j;
}

static void journal_fail_all(journal_t *j);

void journal_destroy(journal_t **self_p)
{
    journal_t *j = *self_p;
    if (!j)
        return;
    journal_fail_all(j);
    if (j->c)
        redisFree(j->c);
    jentries_destroy(&j->entries);
    free(j->xdel);
    free(j->ops);
    free(j->argv);
    free(j->argvlen);
    free(j->keys);
    msgpack_sbuffer_destroy(&j->blob);
    free(j);
    *self_p = NULL;
}

const char *journal_error(const journal_t *j)
{
    return j->err;
}

int journal_is_up(const journal_t *j)
{
    return j->c != NULL;
}

int journal_enabled(const journal_t *j)
{
    return !j->cfg.no_journal;
}

unsigned journal_epoch(const journal_t *j)
{
    return j->epoch;
}

int journal_fd(const journal_t *j)
{
    return j->c ? j->c->fd : -1;
}

int journal_wants_write(const journal_t *j)
{
    return j->c && j->wants_write;
}

size_t journal_outstanding(const journal_t *j)
{
    return j->nops;
}

static int journal_load_script(journal_t *j, const char *text, char sha[41])
{
    redisReply *r = redisCommand(j->c, "SCRIPT LOAD %s", text);
    if (!r || r->type != REDIS_REPLY_STRING || r->len != 40) {
        snprintf(j->err, sizeof j->err, "Redis refused SCRIPT LOAD: %s",
                 r && r->type == REDIS_REPLY_ERROR ? r->str : j->c->errstr);
        if (r)
            freeReplyObject(r);
        return -1;
    }
    memcpy(sha, r->str, 40);
    sha[40] = '\0';
    freeReplyObject(r);
    return 0;
}

/* The journal's last generated id (deleted entries included), so that the
 * ids this broker gives its entries keep increasing. */
static int journal_load_last_id(journal_t *j)
{
    redisReply *r = redisCommand(j->c, "XINFO STREAM %s", j->journal_key);
    if (!r) {
        snprintf(j->err, sizeof j->err, "Redis did not answer XINFO: %s", j->c->errstr);
        return -1;
    }
    unsigned long long ms = 0, seq = 0;
    if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t k = 0; k + 1 < r->elements; k += 2)
            if (r->element[k]->type == REDIS_REPLY_STRING &&
                strcmp(r->element[k]->str, "last-generated-id") == 0 &&
                r->element[k + 1]->type == REDIS_REPLY_STRING)
                sscanf(r->element[k + 1]->str, "%llu-%llu", &ms, &seq);
    } /* an error reply: no journal yet */
    freeReplyObject(r);
    if (ms > j->last_ms || (ms == j->last_ms && seq > j->last_seq)) {
        j->last_ms = ms;
        j->last_seq = seq;
    }
    return 0;
}

/* The next entry id: <wall ms>-0, or <last ms>-<last seq + 1> when the
 * clock has not moved past the last id. */
static void journal_next_id(journal_t *j, char sid[JENTRY_SID])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    if (ms > j->last_ms) {
        j->last_ms = ms;
        j->last_seq = 0;
    } else {
        j->last_seq++;
    }
    snprintf(sid, JENTRY_SID, "%llu-%llu", (unsigned long long)j->last_ms,
             (unsigned long long)j->last_seq);
}

int journal_connect(journal_t *j, char *err, size_t errlen)
{
    if (j->c) {
        journal_fail_all(j);
        redisFree(j->c);
        j->c = NULL;
    }
    j->c = redis_url_connect(&j->cfg.url, j->cfg.timeout_ms, j->err, sizeof j->err);
    if (j->c && !j->cfg.no_journal &&
        (journal_load_script(j, COMPLETE_LUA, j->complete_sha) || journal_load_last_id(j))) {
        redisFree(j->c);
        j->c = NULL;
    }
    if (j->c) {
        /* From here on: non-blocking, pipelined (journal_io). */
        int fl = fcntl(j->c->fd, F_GETFL);
        if (fl < 0 || fcntl(j->c->fd, F_SETFL, fl | O_NONBLOCK) < 0) {
            snprintf(j->err, sizeof j->err, "cannot make the Redis socket non-blocking");
            redisFree(j->c);
            j->c = NULL;
        } else {
            j->c->flags &= ~REDIS_BLOCK;
            j->wants_write = 0;
            j->epoch++;
        }
    }
    if (!j->c) {
        if (err)
            snprintf(err, errlen, "%s", j->err);
        return -1;
    }
    j->backoff_ms = 100;
    return 0;
}

/* End every waiting call (done with ok 0), oldest first. */
static void journal_fail_all(journal_t *j)
{
    while (j->nops) {
        jop_t op = j->ops[j->ops_head];
        j->ops_head = (j->ops_head + 1) % j->cap_ops;
        j->nops--;
        op.fn(j, op.ctx, NULL);
    }
}

/* Forget a broken connection; the next journal_ensure reconnects. Every
 * waiting call fails. */
static void journal_lost(journal_t *j)
{
    if (j->c) {
        if (j->c->err) /* else the caller said what went wrong */
            snprintf(j->err, sizeof j->err, "lost Redis: %s", j->c->errstr);
        log_warn("redis.lost", "error=\"%s\" waiting=%zu", j->err, j->nops);
        redisFree(j->c);
        j->c = NULL;
    }
    j->next_try_ms = mono_ms() + j->backoff_ms;
    journal_fail_all(j);
}

void journal_close(journal_t *j)
{
    if (j->c) {
        redisFree(j->c);
        j->c = NULL;
    }
    journal_fail_all(j);
}

int journal_ensure(journal_t *j, int64_t now_ms)
{
    if (j->c)
        return 1;
    if (now_ms < j->next_try_ms)
        return 0;
    if (journal_connect(j, NULL, 0) == 0) {
        log_info("redis.up", "journal=%s", j->cfg.no_journal ? "off" : j->journal_key);
        return 1;
    }
    j->backoff_ms = j->backoff_ms * 2 > 2000 ? 2000 : j->backoff_ms * 2;
    j->next_try_ms = now_ms + j->backoff_ms;
    log_warn("redis.retry", "error=\"%s\" retry_in_ms=%d", j->err, j->backoff_ms);
    return 0;
}

/* ---- the pipeline ----------------------------------------------------- */

static int ops_push(journal_t *j, op_fn fn, void *ctx)
{
    if (j->nops == j->cap_ops) {
        size_t cap = j->cap_ops ? j->cap_ops * 2 : 64;
        jop_t *o = malloc(cap * sizeof *o);
        if (!o)
            return -1;
        for (size_t i = 0; i < j->nops; i++)
            o[i] = j->ops[(j->ops_head + i) % j->cap_ops];
        free(j->ops);
        j->ops = o;
        j->ops_head = 0;
        j->cap_ops = cap;
    }
    j->ops[(j->ops_head + j->nops) % j->cap_ops] = (jop_t){fn, ctx, mono_ms()};
    j->nops++;
    return 0;
}

/* Append one command whose reply goes to fn(ctx). -1 when it could not be
 * appended (fn is not called). */
static int journal_send(journal_t *j, int argc, const char **argv, const size_t *argvlen,
                        op_fn fn, void *ctx)
{
    if (!j->c)
        return -1;
    if (redisAppendCommandArgv(j->c, argc, argv, argvlen) != REDIS_OK)
        return -1;
    if (ops_push(j, fn, ctx)) {
        /* Out of memory with a command already in the buffer: the replies
         * would no longer match their calls. */
        snprintf(j->err, sizeof j->err, "out of memory");
        journal_lost(j);
        return -1;
    }
    j->wants_write = 1;
    return 0;
}

void journal_io(journal_t *j, int64_t now_ms, int readable)
{
    if (!j->c)
        return;
    if (j->wants_write) {
        int done = 0;
        if (redisBufferWrite(j->c, &done) != REDIS_OK) {
            journal_lost(j);
            return;
        }
        j->wants_write = !done;
    }
    if (!j->nops)
        return;
    /* A reply may be large (a scan page): read until the socket is empty,
     * up to 1 MB per call (hiredis reads 16 KB at a time). */
    for (int k = 0; readable && k < 64; k++) {
        size_t before = j->c->reader->len - j->c->reader->pos;
        if (redisBufferRead(j->c) != REDIS_OK) {
            journal_lost(j);
            return;
        }
        if (j->c->reader->len - j->c->reader->pos == before)
            break; /* nothing more for now */
        j->last_rx_ms = now_ms;
    }
    while (readable && j->c && j->nops) {
        void *r = NULL;
        if (redisGetReplyFromReader(j->c, &r) != REDIS_OK) {
            snprintf(j->err, sizeof j->err, "lost Redis: unreadable reply");
            journal_lost(j);
            return;
        }
        if (!r)
            break;
        jop_t op = j->ops[j->ops_head];
        j->ops_head = (j->ops_head + 1) % j->cap_ops;
        j->nops--;
        if (!op.fn(j, op.ctx, r))
            freeReplyObject(r);
    }
    if (j->c && j->nops && now_ms - j->ops[j->ops_head].sent_ms > j->cfg.timeout_ms &&
        now_ms - j->last_rx_ms > j->cfg.timeout_ms) {
        snprintf(j->err, sizeof j->err, "lost Redis: no reply within %d ms", j->cfg.timeout_ms);
        journal_lost(j);
        return;
    }
    /* Done functions may have appended commands: send them now. */
    if (j->c && j->wants_write) {
        int done = 0;
        if (redisBufferWrite(j->c, &done) != REDIS_OK) {
            journal_lost(j);
            return;
        }
        j->wants_write = !done;
    }
}

int journal_wait(journal_t *j, int timeout_ms)
{
    int64_t end = mono_ms() + timeout_ms;
    journal_io(j, mono_ms(), 0);
    while (j->c && j->nops) {
        int64_t now = mono_ms();
        if (now >= end)
            return -1;
        struct pollfd p = {.fd = j->c->fd, .events = POLLIN | (j->wants_write ? POLLOUT : 0)};
        int n = poll(&p, 1, (int)(end - now));
        journal_io(j, mono_ms(), n > 0 && (p.revents & (POLLIN | POLLERR | POLLHUP)));
    }
    return j->nops ? -1 : 0;
}

/* ---- argument vectors and key buffer ---------------------------------- */

static int args_reserve(journal_t *j, size_t n)
{
    if (n <= j->cap_argv)
        return 0;
    size_t cap = j->cap_argv ? j->cap_argv : 64;
    while (cap < n)
        cap *= 2;
    const char **v = realloc(j->argv, cap * sizeof *v);
    if (!v)
        return -1;
    j->argv = v;
    size_t *l = realloc(j->argvlen, cap * sizeof *l);
    if (!l)
        return -1;
    j->argvlen = l;
    j->cap_argv = cap;
    return 0;
}

static int keys_reserve(journal_t *j, size_t n)
{
    if (n <= j->cap_keys)
        return 0;
    size_t cap = j->cap_keys ? j->cap_keys : 4096;
    while (cap < n)
        cap *= 2;
    char *k = realloc(j->keys, cap);
    if (!k)
        return -1;
    j->keys = k;
    j->cap_keys = cap;
    return 0;
}

/* Write <prefix><mid><s> at *off in the key buffer (reserved by the caller);
 * returns its start and length through p/len. */
static void key_put(journal_t *j, size_t *off, const char *mid, size_t midlen, const char *s,
                    size_t slen, const char **p, size_t *len)
{
    char *k = j->keys + *off;
    memcpy(k, j->prefix, j->prefix_len);
    memcpy(k + j->prefix_len, mid, midlen);
    memcpy(k + j->prefix_len + midlen, s, slen);
    *p = k;
    *len = j->prefix_len + midlen + slen;
    *off += *len;
}

/* ---- deleting released entries ---------------------------------------- */

static void xdel_queue(journal_t *j, const char *sid);

void journal_release(journal_t *j, jentry_t *e)
{
    if (!e)
        return;
    jentry_t *also = e->also;
    char sid[JENTRY_SID];
    if (!jentries_release(j->entries, e, sid))
        return;
    xdel_queue(j, sid);
    journal_release(j, also);
}

/* The ids of an XDEL: put back for the next one when it was lost. */
typedef struct xdel_op {
    size_t n;
    char sid[][JENTRY_SID];
} xdel_op_t;

static void xdel_queue(journal_t *j, const char *sid)
{
    if (j->nxdel == j->cap_xdel) {
        size_t cap = j->cap_xdel ? j->cap_xdel * 2 : 64;
        void *p = realloc(j->xdel, cap * sizeof *j->xdel);
        if (!p)
            return; /* left for a sweep */
        j->xdel = p;
        j->cap_xdel = cap;
    }
    memcpy(j->xdel[j->nxdel++], sid, JENTRY_SID);
}

static int xdel_reply(journal_t *j, void *ctx, redisReply *r)
{
    xdel_op_t *op = ctx;
    if (!r)
        for (size_t i = 0; i < op->n; i++)
            xdel_queue(j, op->sid[i]);
    free(op);
    return 0;
}

size_t journal_unflushed(const journal_t *j)
{
    return j->nxdel;
}

void journal_flush(journal_t *j)
{
    if (!j->c || !j->nxdel || args_reserve(j, j->nxdel + 2))
        return;
    xdel_op_t *op = malloc(sizeof *op + j->nxdel * JENTRY_SID);
    if (!op)
        return;
    op->n = j->nxdel;
    memcpy(op->sid, j->xdel, j->nxdel * JENTRY_SID);
    j->nxdel = 0;
    j->argv[0] = "XDEL";
    j->argvlen[0] = 4;
    j->argv[1] = j->journal_key;
    j->argvlen[1] = strlen(j->journal_key);
    for (size_t i = 0; i < op->n; i++) {
        j->argv[2 + i] = op->sid[i];
        j->argvlen[2 + i] = strlen(op->sid[i]);
    }
    if (journal_send(j, (int)op->n + 2, j->argv, j->argvlen, xdel_reply, op)) {
        for (size_t i = 0; i < op->n; i++)
            xdel_queue(j, op->sid[i]);
        free(op);
    }
}

/* ---- journal records -------------------------------------------------- */

/* Append one record [job_id, hash, body, attempts] to j->blob. */
static int record_pack(journal_t *j, const char *id, size_t id_len, const char *hash,
                       size_t hash_len, const void *body, size_t body_len, uint32_t attempts)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, &j->blob, msgpack_sbuffer_write);
    return msgpack_pack_array(&pk, 4) || msgpack_pack_str_with_body(&pk, id, id_len) ||
           msgpack_pack_str_with_body(&pk, hash, hash_len) ||
           msgpack_pack_bin_with_body(&pk, body, body_len) || msgpack_pack_uint32(&pk, attempts);
}

/* Append XADD <journal> <sid> a <accepted_us> j <blob>, sid chosen here. */
static int journal_xadd_blob(journal_t *j, uint64_t accepted_us, char sid[JENTRY_SID], op_fn fn,
                             void *ctx)
{
    char acc[24];
    snprintf(acc, sizeof acc, "%llu", (unsigned long long)accepted_us);
    journal_next_id(j, sid);
    const char *argv[] = {"XADD", j->journal_key, sid, "a", acc, "j", j->blob.data};
    size_t argvlen[] = {4, strlen(j->journal_key), strlen(sid), 1, strlen(acc), 1, j->blob.size};
    return journal_send(j, 7, argv, argvlen, fn, ctx);
}

/* Whether r is the id XADD was given. */
static int xadd_ok(journal_t *j, const redisReply *r, const char *sid)
{
    if (r && r->type == REDIS_REPLY_STRING && strcmp(r->str, sid) == 0)
        return 1;
    if (r && r->type == REDIS_REPLY_ERROR)
        snprintf(j->err, sizeof j->err, "journal append failed: %s", r->str);
    return 0;
}

/* ---- submit ----------------------------------------------------------- */

/* A rubric reference to resolve once per batch. */
typedef struct rubric_ref {
    const char *s;
    size_t len;
    int by_hash; /* 1: EXISTS rubric:hash:<s>; 0: GET rubric:id:<s> */
    int known;
    char hash[65]; /* by id: the current hash */
    size_t hash_len;
} rubric_ref_t;

typedef struct submit_op {
    journal_submit_item_t *items;
    size_t n;
    uint64_t accepted_us;
    rubric_ref_t *refs;
    int *slot;
    size_t nrefs;
    size_t waiting;    /* replies of the first step still to come */
    size_t next_check; /* next pinned hash whose EXISTS reply comes */
    redisReply *mget;
    int failed;
    char sid[JENTRY_SID];
    journal_done_fn done;
    void *arg;
} submit_op_t;

static void submit_end(journal_t *j, submit_op_t *op, int ok)
{
    if (!ok)
        for (size_t i = 0; i < op->n; i++) {
            free(op->items[i].event);
            op->items[i].event = NULL;
            if (op->items[i].entry) {
                /* counted under an entry Redis may or may not have: delete it */
                jentry_t *e = op->items[i].entry;
                for (size_t k = i; k < op->n; k++)
                    if (op->items[k].entry == e)
                        op->items[k].entry = NULL;
                e->open = 0;
                journal_release(j, e);
            }
        }
    if (op->mget)
        freeReplyObject(op->mget);
    journal_done_fn done = op->done;
    void *arg = op->arg;
    free(op->refs);
    free(op->slot);
    free(op);
    done(arg, ok);
}

static int submit_xadd_reply(journal_t *j, void *ctx, redisReply *r)
{
    submit_op_t *op = ctx;
    int ok = xadd_ok(j, r, op->sid);
    if (r && !ok)
        journal_lost(j);
    submit_end(j, op, ok);
    return 0;
}

/* Every reply of the first step is in: outcomes, then the accepted jobs as
 * one journal entry. */
static void submit_decide(journal_t *j, submit_op_t *op)
{
    if (op->failed) {
        submit_end(j, op, 0);
        return;
    }
    int journaled = !j->cfg.no_journal;
    msgpack_sbuffer_clear(&j->blob);
    uint32_t accepted = 0;
    for (size_t i = 0; i < op->n; i++) {
        journal_submit_item_t *it = &op->items[i];
        redisReply *done = journaled ? op->mget->element[i] : NULL;
        if (done && done->type == REDIS_REPLY_STRING) {
            int dead = done->len >= 5 && memcmp(done->str, "DEAD:", 5) == 0;
            size_t skip = dead ? 5 : 0;
            it->outcome = dead ? JOURNAL_DEAD : JOURNAL_DONE;
            it->event = malloc(done->len - skip + 1);
            if (it->event) {
                memcpy(it->event, done->str + skip, done->len - skip);
                it->event[done->len - skip] = '\0';
                it->event_len = done->len - skip;
            }
            continue;
        }
        int s = op->slot[i];
        if (s >= 0 && !op->refs[s].known) {
            it->outcome = JOURNAL_UNKNOWN_RUBRIC;
            continue;
        }
        it->outcome = JOURNAL_ACCEPTED;
        const char *h = it->hash;
        size_t hl = it->hash_len;
        if (s >= 0 && !op->refs[s].by_hash) {
            h = op->refs[s].hash;
            hl = op->refs[s].hash_len;
        }
        if (hl >= sizeof it->resolved_hash)
            hl = sizeof it->resolved_hash - 1;
        memcpy(it->resolved_hash, h, hl);
        it->resolved_hash[hl] = '\0';
        if (journaled && record_pack(j, it->job_id, it->job_id_len, it->resolved_hash, hl,
                                     it->body, it->body_len, 0)) {
            submit_end(j, op, 0);
            return;
        }
        accepted++;
    }
    if (!journaled || !accepted) {
        submit_end(j, op, 1);
        return;
    }
    journal_flush(j);
    if (journal_xadd_blob(j, op->accepted_us, op->sid, submit_xadd_reply, op)) {
        submit_end(j, op, 0);
        return;
    }
    jentry_t *e = jentries_add(j->entries, op->sid, accepted);
    for (size_t i = 0; i < op->n; i++)
        if (op->items[i].outcome == JOURNAL_ACCEPTED)
            op->items[i].entry = e; /* NULL on OOM: the sweep adopts the entry */
}

static void submit_step(journal_t *j, submit_op_t *op)
{
    if (--op->waiting == 0)
        submit_decide(j, op);
}

static int submit_mget_reply(journal_t *j, void *ctx, redisReply *r)
{
    submit_op_t *op = ctx;
    size_t want = j->cfg.no_journal ? 0 : op->n;
    for (size_t k = 0; k < op->nrefs; k++)
        want += !op->refs[k].by_hash;
    int kept = 0;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != want) {
        if (r && r->type == REDIS_REPLY_ERROR)
            snprintf(j->err, sizeof j->err, "journal read failed: %s", r->str);
        op->failed = 1;
    } else {
        size_t e = j->cfg.no_journal ? 0 : op->n;
        for (size_t k = 0; k < op->nrefs; k++)
            if (!op->refs[k].by_hash) {
                redisReply *v = r->element[e++];
                op->refs[k].known = v->type == REDIS_REPLY_STRING && v->len > 0 && v->len < 65;
                if (op->refs[k].known) {
                    memcpy(op->refs[k].hash, v->str, v->len);
                    op->refs[k].hash[v->len] = '\0';
                    op->refs[k].hash_len = v->len;
                }
            }
        op->mget = r;
        kept = 1;
    }
    if (r && op->failed)
        journal_lost(j); /* fails the calls after this one, then we end */
    submit_step(j, op);
    return kept;
}

static int submit_exists_reply(journal_t *j, void *ctx, redisReply *r)
{
    submit_op_t *op = ctx;
    while (op->next_check < op->nrefs && !op->refs[op->next_check].by_hash)
        op->next_check++;
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        op->failed = 1;
    } else if (op->next_check < op->nrefs) {
        op->refs[op->next_check].known = r->integer == 1;
    }
    op->next_check++;
    if (r && op->failed) {
        snprintf(j->err, sizeof j->err, "lost Redis: unexpected reply to EXISTS");
        journal_lost(j);
    }
    submit_step(j, op);
    return 0;
}

int journal_submit(journal_t *j, uint64_t accepted_us, journal_submit_item_t *items, size_t n,
                   journal_done_fn done, void *arg)
{
    if (!j->c)
        return -1;
    int journaled = !j->cfg.no_journal;
    submit_op_t *op = calloc(1, sizeof *op);
    rubric_ref_t *refs = malloc((n ? n : 1) * sizeof *refs);
    int *slot = malloc((n ? n : 1) * sizeof *slot);
    if (!op || !refs || !slot) {
        free(op);
        free(refs);
        free(slot);
        return -1;
    }
    *op = (submit_op_t){.items = items, .n = n, .accepted_us = accepted_us, .refs = refs,
                        .slot = slot, .done = done, .arg = arg};
    size_t nrefs = 0, keybytes = 0;
    for (size_t i = 0; i < n; i++) {
        journal_submit_item_t *it = &items[i];
        it->event = NULL;
        it->event_len = 0;
        it->entry = NULL;
        it->resolved_hash[0] = '\0';
        slot[i] = -1;
        if (journaled)
            keybytes += j->prefix_len + 5 + it->job_id_len;
        if (it->has_inline)
            continue;
        int by_hash = it->hash_len > 0;
        const char *s = by_hash ? it->hash : it->rubric;
        size_t len = by_hash ? it->hash_len : it->rubric_len;
        size_t r = 0;
        while (r < nrefs && !(refs[r].by_hash == by_hash && refs[r].len == len &&
                              memcmp(refs[r].s, s, len) == 0))
            r++;
        if (r == nrefs) {
            memset(&refs[nrefs], 0, sizeof refs[nrefs]);
            refs[nrefs].s = s;
            refs[nrefs].len = len;
            refs[nrefs].by_hash = by_hash;
            nrefs++;
            keybytes += j->prefix_len + 12 + len;
        }
        slot[i] = (int)r;
    }
    op->nrefs = nrefs;
    size_t nmget = journaled ? n : 0;
    for (size_t r = 0; r < nrefs; r++)
        nmget += !refs[r].by_hash;
    if (keys_reserve(j, keybytes + 1) || args_reserve(j, nmget + 2)) {
        free(refs);
        free(slot);
        free(op);
        return -1;
    }
    journal_flush(j);
    /* one MGET of the done keys and rubric ids, one EXISTS per pinned hash */
    size_t off = 0, a = 1;
    j->argv[0] = "MGET";
    j->argvlen[0] = 4;
    if (journaled)
        for (size_t i = 0; i < n; i++, a++)
            key_put(j, &off, "done:", 5, items[i].job_id, items[i].job_id_len, &j->argv[a],
                    &j->argvlen[a]);
    for (size_t r = 0; r < nrefs; r++)
        if (!refs[r].by_hash) {
            key_put(j, &off, "rubric:id:", 10, refs[r].s, refs[r].len, &j->argv[a],
                    &j->argvlen[a]);
            a++;
        }
    op->waiting = 1; /* held until every command is appended */
    int sent = 0;
    if (a > 1) {
        if (journal_send(j, (int)a, j->argv, j->argvlen, submit_mget_reply, op))
            goto fail;
        op->waiting++;
        sent++;
    }
    for (size_t r = 0; r < nrefs; r++)
        if (refs[r].by_hash) {
            const char *kv[2] = {"EXISTS", NULL};
            size_t kl[2] = {6, 0};
            key_put(j, &off, "rubric:hash:", 12, refs[r].s, refs[r].len, &kv[1], &kl[1]);
            if (journal_send(j, 2, kv, kl, submit_exists_reply, op))
                goto fail;
            op->waiting++;
            sent++;
        }
    submit_step(j, op);
    return 0;
fail:
    if (!sent) {
        free(refs);
        free(slot);
        free(op);
        return -1;
    }
    /* some commands are out: their replies (or the loss) end the call */
    op->failed = 1;
    snprintf(j->err, sizeof j->err, "out of memory");
    journal_lost(j);
    submit_step(j, op);
    return 0;
}

/* ---- complete --------------------------------------------------------- */

typedef struct complete_op {
    journal_result_item_t *items;
    size_t n;
    size_t waiting; /* without a journal: XADD replies still to come */
    int failed;
    journal_done_fn done;
    void *arg;
} complete_op_t;

static void complete_end(complete_op_t *op, int ok)
{
    journal_done_fn done = op->done;
    void *arg = op->arg;
    free(op);
    done(arg, ok);
}

static int complete_reply(journal_t *j, void *ctx, redisReply *r)
{
    complete_op_t *op = ctx;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != op->n) {
        if (r) {
            snprintf(j->err, sizeof j->err, "emit script failed: %s",
                     r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
            /* NOSCRIPT included: reconnecting loads the script again */
            journal_lost(j);
        }
        complete_end(op, 0);
        return 0;
    }
    for (size_t i = 0; i < op->n; i++) {
        op->items[i].first = r->element[i]->type == REDIS_REPLY_INTEGER
                                 ? (int)r->element[i]->integer
                                 : 0;
        journal_release(j, op->items[i].entry);
        op->items[i].entry = NULL;
    }
    complete_end(op, 1);
    return 0;
}

static int complete_plain_reply(journal_t *j, void *ctx, redisReply *r)
{
    complete_op_t *op = ctx;
    if (!r || r->type == REDIS_REPLY_ERROR) {
        if (r) {
            snprintf(j->err, sizeof j->err, "events append failed: %s", r->str);
            op->failed = 1;
            journal_lost(j);
        }
        op->failed = 1;
    }
    if (--op->waiting == 0)
        complete_end(op, !op->failed);
    return 0;
}

int journal_complete(journal_t *j, journal_result_item_t *items, size_t n, journal_done_fn done,
                     void *arg)
{
    if (!j->c)
        return -1;
    complete_op_t *op = calloc(1, sizeof *op);
    if (!op)
        return -1;
    *op = (complete_op_t){.items = items, .n = n, .done = done, .arg = arg};
    journal_flush(j);
    if (j->cfg.no_journal) {
        /* Every event of a job the broker held goes to the events stream
         * (pipelined XADDs, no script); the others were dropped by the
         * broker's own dedupe. */
        char maxlen[24];
        snprintf(maxlen, sizeof maxlen, "%llu", (unsigned long long)j->cfg.events_maxlen);
        op->waiting = 1;
        for (size_t i = 0; i < n; i++) {
            items[i].first = items[i].held;
            if (!items[i].held)
                continue;
            const char *argv[] = {"XADD", j->events_key, "MAXLEN", "~",    maxlen,
                                  "*",    "job_id",      items[i].job_id, "event", items[i].event};
            size_t argvlen[] = {4, strlen(j->events_key), 6, 1, strlen(maxlen),
                                1, 6, items[i].job_id_len, 5, items[i].event_len};
            if (journal_send(j, 10, argv, argvlen, complete_plain_reply, op)) {
                op->failed = 1;
                break;
            }
            op->waiting++;
        }
        if (--op->waiting == 0)
            complete_end(op, !op->failed);
        return 0;
    }
    size_t keybytes = 0;
    for (size_t i = 0; i < n; i++)
        keybytes += j->prefix_len + 5 + items[i].job_id_len;
    size_t argc = 6 + 3 * n;
    if (keys_reserve(j, keybytes + 1) || args_reserve(j, argc)) {
        free(op);
        return -1;
    }
    char ttl[24], maxlen[24], numkeys[24];
    snprintf(ttl, sizeof ttl, "%llu", (unsigned long long)j->cfg.dedupe_ttl_s);
    snprintf(maxlen, sizeof maxlen, "%llu", (unsigned long long)j->cfg.events_maxlen);
    snprintf(numkeys, sizeof numkeys, "%zu", n + 1);
    j->argv[0] = "EVALSHA";
    j->argvlen[0] = 7;
    j->argv[1] = j->complete_sha;
    j->argvlen[1] = 40;
    j->argv[2] = numkeys;
    j->argvlen[2] = strlen(numkeys);
    j->argv[3] = j->events_key;
    j->argvlen[3] = strlen(j->events_key);
    size_t off = 0;
    for (size_t i = 0; i < n; i++)
        key_put(j, &off, "done:", 5, items[i].job_id, items[i].job_id_len, &j->argv[4 + i],
                &j->argvlen[4 + i]);
    size_t b = 4 + n;
    j->argv[b] = ttl;
    j->argvlen[b] = strlen(ttl);
    j->argv[b + 1] = maxlen;
    j->argvlen[b + 1] = strlen(maxlen);
    for (size_t i = 0; i < n; i++) {
        j->argv[b + 2 + i] = items[i].job_id;
        j->argvlen[b + 2 + i] = items[i].job_id_len;
        j->argv[b + 2 + n + i] = items[i].event;
        j->argvlen[b + 2 + n + i] = items[i].event_len;
    }
    if (journal_send(j, (int)argc, j->argv, j->argvlen, complete_reply, op)) {
        free(op);
        return -1;
    }
    return 0;
}

/* ---- requeue and dead letters ----------------------------------------- */

typedef struct requeue_op {
    jentry_t *old;
    char sid[JENTRY_SID];
} requeue_op_t;

static int requeue_reply(journal_t *j, void *ctx, redisReply *r)
{
    requeue_op_t *op = ctx;
    if (xadd_ok(j, r, op->sid)) {
        journal_release(j, op->old);
    } else {
        if (r)
            journal_lost(j);
        /* Maybe not stored: the job stays counted under its old entry too,
         * released with the new one. */
        jentry_t *ne = op->old ? jentries_find(j->entries, op->sid) : NULL;
        if (ne && !ne->also)
            ne->also = op->old;
        else
            journal_release(j, op->old); /* the job is gone already */
    }
    free(op);
    return 0;
}

int journal_requeued(journal_t *j, const journal_entry_t *e, jentry_t **entry)
{
    if (j->cfg.no_journal)
        return 0;
    if (!j->c)
        return -1;
    requeue_op_t *op = calloc(1, sizeof *op);
    if (!op)
        return -1;
    msgpack_sbuffer_clear(&j->blob);
    if (record_pack(j, e->job_id, e->job_id_len, e->hash, strlen(e->hash), e->body, e->body_len,
                    e->attempts) ||
        journal_xadd_blob(j, e->accepted_us, op->sid, requeue_reply, op)) {
        free(op);
        return -1;
    }
    jentry_t *ne = jentries_add(j->entries, op->sid, 1);
    if (!ne) {
        op->old = NULL; /* keep the old entry; the sweep adopts the new one */
        return 0;
    }
    op->old = *entry;
    *entry = ne;
    return 0;
}

typedef struct dead_op {
    jentry_t *entry;
    journal_done_fn done;
    void *arg;
} dead_op_t;

static int dead_reply(journal_t *j, void *ctx, redisReply *r)
{
    dead_op_t *op = ctx;
    int ok = r && r->type != REDIS_REPLY_ERROR;
    if (r && !ok) {
        snprintf(j->err, sizeof j->err, "dead-letter failed: %s", r->str);
        journal_lost(j);
    }
    if (ok)
        journal_release(j, op->entry);
    journal_done_fn done = op->done;
    void *arg = op->arg;
    free(op);
    done(arg, ok);
    return 0;
}

int journal_dead(journal_t *j, const journal_entry_t *e, const char *reason, uint64_t dead_us,
                 journal_done_fn done, void *arg)
{
    if (!j->c)
        return -1;
    dead_op_t *op = calloc(1, sizeof *op);
    if (!op)
        return -1;
    *op = (dead_op_t){.entry = e->entry, .done = done, .arg = arg};
    char acc[24], att[16], when[24], ttl[24];
    snprintf(acc, sizeof acc, "%llu", (unsigned long long)e->accepted_us);
    snprintf(att, sizeof att, "%u", e->attempts);
    snprintf(when, sizeof when, "%llu", (unsigned long long)dead_us);
    snprintf(ttl, sizeof ttl, "%llu", (unsigned long long)j->cfg.dedupe_ttl_s);
    int rc;
    if (j->cfg.no_journal) {
        /* No done-set to claim: the dead-letter stream only. */
        const char *argv[] = {"XADD", j->dead_key, "*", "job_id", e->job_id, "hash", e->hash,
                              "accepted_us", acc, "attempts", att, "reason", reason, "dead_us",
                              when, "job", e->body};
        size_t argvlen[] = {4, strlen(j->dead_key), 1, 6, e->job_id_len, 4, strlen(e->hash), 11,
                            strlen(acc), 8, strlen(att), 6, strlen(reason), 7, strlen(when), 3,
                            e->body_len};
        rc = journal_send(j, 17, argv, argvlen, dead_reply, op);
    } else {
        const char *argv[] = {"EVAL", DEAD_LUA, "0", j->journal_key, j->dead_key, "",
                              e->job_id, e->hash, acc, att, reason, when, e->body, j->prefix, ttl};
        size_t argvlen[] = {4,           strlen(DEAD_LUA),   1,           strlen(j->journal_key),
                            strlen(j->dead_key), 0, e->job_id_len, strlen(e->hash),
                            strlen(acc), strlen(att), strlen(reason), strlen(when), e->body_len,
                            strlen(j->prefix), strlen(ttl)};
        rc = journal_send(j, 15, argv, argvlen, dead_reply, op);
    }
    if (rc) {
        free(op);
        return -1;
    }
    return 0;
}
/* ---- scan and recovery ------------------------------------------------ */

/* Field value of a stream entry's field list, or NULL. */
static const redisReply *entry_field(const redisReply *fields, const char *name)
{
    for (size_t k = 0; k + 1 < fields->elements; k += 2)
        if (strcmp(fields->element[k]->str, name) == 0)
            return fields->element[k + 1];
    return NULL;
}

/* One job read from an entry during a scan. */
typedef struct scan_job {
    size_t entry; /* index of its entry in the page */
    journal_entry_t e;
    char hash[65];
} scan_job_t;

static int obj_str(const msgpack_object *o, const char **p, size_t *len)
{
    if (o->type == MSGPACK_OBJECT_STR) {
        *p = o->via.str.ptr;
        *len = o->via.str.size;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_BIN) {
        *p = o->via.bin.ptr;
        *len = o->via.bin.size;
        return 0;
    }
    return -1;
}

/* A zeroed slot for one more job of entry `index` in *jobs, or NULL when
 * memory runs out. */
static scan_job_t *scan_job_add(scan_job_t **jobs, size_t *njobs, size_t *cap, size_t index)
{
    if (*njobs == *cap) {
        size_t nc = *cap ? *cap * 2 : 256;
        scan_job_t *p = realloc(*jobs, nc * sizeof *p);
        if (!p)
            return NULL;
        *jobs = p;
        *cap = nc;
    }
    scan_job_t *s = &(*jobs)[(*njobs)++];
    memset(s, 0, sizeof *s);
    s->entry = index;
    return s;
}

/* The jobs of one entry (either form) appended to *jobs. Returns how many,
 * or -1 when the entry cannot be read. */
static long entry_jobs(const redisReply *fields, size_t index, msgpack_zone *zone,
                       scan_job_t **jobs, size_t *njobs, size_t *cap)
{
    const redisReply *blob = entry_field(fields, "j");
    const redisReply *acc = entry_field(fields, "a");
    long added = 0;
    if (!blob) {
        /* the older form: one job per entry */
        const redisReply *id = entry_field(fields, "job_id");
        const redisReply *hash = entry_field(fields, "hash");
        const redisReply *ac = entry_field(fields, "accepted_us");
        const redisReply *job = entry_field(fields, "job");
        const redisReply *att = entry_field(fields, "attempts");
        if (!id || !hash || !ac || !job)
            return -1;
        scan_job_t *s = scan_job_add(jobs, njobs, cap, index);
        if (!s)
            return -1;
        snprintf(s->hash, sizeof s->hash, "%.*s", (int)hash->len, hash->str);
        s->e = (journal_entry_t){.job_id = id->str,
                                 .job_id_len = id->len,
                                 .body = job->str,
                                 .body_len = job->len,
                                 .accepted_us = strtoull(ac->str, NULL, 10),
                                 .attempts = att ? (uint32_t)strtoul(att->str, NULL, 10) : 0};
        return 1;
    }
    if (!acc)
        return -1;
    uint64_t accepted_us = strtoull(acc->str, NULL, 10);
    size_t off = 0;
    while (off < blob->len) {
        msgpack_object o;
        msgpack_unpack_return ur = msgpack_unpack(blob->str, blob->len, &off, zone, &o);
        if (ur != MSGPACK_UNPACK_SUCCESS && ur != MSGPACK_UNPACK_EXTRA_BYTES)
            return added ? added : -1;
        if (o.type != MSGPACK_OBJECT_ARRAY || o.via.array.size < 4)
            return -1;
        const msgpack_object *f = o.via.array.ptr;
        const char *id, *hash, *body;
        size_t id_len, hash_len, body_len;
        if (obj_str(&f[0], &id, &id_len) || obj_str(&f[1], &hash, &hash_len) ||
            obj_str(&f[2], &body, &body_len) || f[3].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
            hash_len >= 65)
            return -1;
        scan_job_t *s = scan_job_add(jobs, njobs, cap, index);
        if (!s)
            return -1;
        memcpy(s->hash, hash, hash_len);
        s->hash[hash_len] = '\0';
        s->e = (journal_entry_t){.job_id = id,
                                 .job_id_len = id_len,
                                 .body = body,
                                 .body_len = body_len,
                                 .accepted_us = accepted_us,
                                 .attempts = (uint32_t)f[3].via.u64};
        added++;
    }
    return added;
}


typedef struct scan_op {
    char *cursor;
    size_t cap, count;
    journal_recover_fn fn;
    void *arg;
    journal_scan_done_fn done;
    void *done_arg;
    redisReply *range;
    msgpack_zone zone;
    scan_job_t *jobs;
    size_t njobs, capj;
    unsigned char *unknown;
} scan_op_t;

static void scan_end(scan_op_t *op, long total, int at_end)
{
    if (op->range)
        freeReplyObject(op->range);
    msgpack_zone_destroy(&op->zone);
    free(op->jobs);
    free(op->unknown);
    journal_scan_done_fn done = op->done;
    void *arg = op->done_arg;
    free(op);
    done(arg, total, at_end);
}

/* The done keys of the page's jobs are in (mget NULL: no job to check). */
static void scan_finish(journal_t *j, scan_op_t *op, const redisReply *mget)
{
    const redisReply *r = op->range;
    long total = 0;
    size_t k = 0;
    for (size_t i = 0; i < r->elements; i++) {
        if (!op->unknown[i])
            continue;
        const char *sid = r->element[i]->element[0]->str;
        jentry_t *en = jentries_add(j->entries, sid, 0);
        int keep = 0;
        for (; k < op->njobs && op->jobs[k].entry == i; k++) {
            if (mget->element[k]->type == REDIS_REPLY_STRING || !en)
                continue; /* scored or dead-lettered */
            scan_job_t *s = &op->jobs[k];
            s->e.entry = en;
            s->e.stream_id = sid;
            s->e.hash = s->hash;
            int held = op->fn(op->arg, &s->e);
            if (held > 0)
                jentries_hold(en);
            else if (held < 0)
                keep = 1;
            total++;
        }
        if (en && en->open == 0) {
            if (keep) { /* not held, yet not to be deleted: left for a later scan */
                char sid_unused[JENTRY_SID];
                jentries_release(j->entries, en, sid_unused);
            } else {
                journal_release(j, en); /* nothing held under it: delete */
            }
        }
    }
    journal_flush(j);
    int at_end = 0;
    if (r->elements)
        snprintf(op->cursor, op->cap, "%s", r->element[r->elements - 1]->element[0]->str);
    if (r->elements < op->count) {
        at_end = 1;
        op->cursor[0] = '\0';
    }
    scan_end(op, total, at_end);
}

static int scan_mget_reply(journal_t *j, void *ctx, redisReply *r)
{
    scan_op_t *op = ctx;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != op->njobs) {
        if (r) {
            snprintf(j->err, sizeof j->err, "journal scan failed: unexpected reply");
            journal_lost(j);
        }
        scan_end(op, -1, 0);
        return 0;
    }
    scan_finish(j, op, r);
    return 0;
}

static int scan_range_reply(journal_t *j, void *ctx, redisReply *r)
{
    scan_op_t *op = ctx;
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r) {
            snprintf(j->err, sizeof j->err, "journal scan failed: %s",
                     r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
            journal_lost(j);
        }
        scan_end(op, -1, 0);
        return 0;
    }
    op->range = r;
    op->unknown = calloc(r->elements ? r->elements : 1, 1);
    if (!op->unknown) {
        scan_end(op, -1, 0);
        return 1;
    }
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        if (e->type != REDIS_REPLY_ARRAY || e->elements != 2)
            continue;
        const char *sid = e->element[0]->str;
        if (jentries_find(j->entries, sid))
            continue; /* the broker holds jobs under it */
        op->unknown[i] = 1;
        if (entry_jobs(e->element[1], i, &op->zone, &op->jobs, &op->njobs, &op->capj) < 0) {
            log_warn("journal.skip", "stream_id=%s reason=\"the entry cannot be read\"", sid);
            op->unknown[i] = 0;
        }
    }
    if (!op->njobs) {
        static const redisReply none = {.type = REDIS_REPLY_ARRAY};
        scan_finish(j, op, &none);
        return 1;
    }
    /* which of them are done already */
    size_t keybytes = 0;
    for (size_t k = 0; k < op->njobs; k++)
        keybytes += j->prefix_len + 5 + op->jobs[k].e.job_id_len;
    if (keys_reserve(j, keybytes + 1) || args_reserve(j, op->njobs + 1)) {
        scan_end(op, -1, 0);
        return 1;
    }
    size_t off = 0;
    j->argv[0] = "MGET";
    j->argvlen[0] = 4;
    for (size_t k = 0; k < op->njobs; k++)
        key_put(j, &off, "done:", 5, op->jobs[k].e.job_id, op->jobs[k].e.job_id_len,
                &j->argv[1 + k], &j->argvlen[1 + k]);
    if (journal_send(j, (int)op->njobs + 1, j->argv, j->argvlen, scan_mget_reply, op))
        scan_end(op, -1, 0);
    return 1;
}

int journal_scan(journal_t *j, char *cursor, size_t cap, size_t count, journal_recover_fn fn,
                 void *arg, journal_scan_done_fn done, void *done_arg)
{
    if (j->cfg.no_journal) {
        cursor[0] = '\0';
        done(done_arg, 0, 1);
        return 0;
    }
    if (!j->c)
        return -1;
    scan_op_t *op = calloc(1, sizeof *op);
    if (!op)
        return -1;
    *op = (scan_op_t){.cursor = cursor, .cap = cap, .count = count, .fn = fn, .arg = arg,
                      .done = done, .done_arg = done_arg};
    msgpack_zone_init(&op->zone, 8192);
    char start[64], cnt[24];
    if (cursor[0])
        snprintf(start, sizeof start, "(%s", cursor);
    else
        snprintf(start, sizeof start, "-");
    snprintf(cnt, sizeof cnt, "%zu", count);
    const char *xr[] = {"XRANGE", j->journal_key, start, "+", "COUNT", cnt};
    size_t xrl[] = {6, strlen(j->journal_key), strlen(start), 1, 5, strlen(cnt)};
    if (journal_send(j, 6, xr, xrl, scan_range_reply, op)) {
        msgpack_zone_destroy(&op->zone);
        free(op);
        return -1;
    }
    return 0;
}

typedef struct recover_state {
    long total;
    int over, at_end;
} recover_state_t;

static void recover_page(void *arg, long jobs, int at_end)
{
    recover_state_t *st = arg;
    st->over = 1;
    st->at_end = at_end;
    st->total = jobs < 0 ? -1 : st->total + jobs;
}

long journal_recover(journal_t *j, journal_recover_fn fn, void *arg)
{
    char cursor[64] = "";
    recover_state_t st = {0};
    while (!st.at_end) {
        st.over = 0;
        if (journal_scan(j, cursor, sizeof cursor, 256, fn, arg, recover_page, &st))
            return -1;
        while (!st.over && j->c)
            journal_wait(j, j->cfg.timeout_ms);
        if (!st.over || st.total < 0)
            return -1;
    }
    return st.total;
}
