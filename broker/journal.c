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
 * trimmed long before the TTL. Scripts are called with EVALSHA and re-sent
 * with EVAL when Redis has forgotten them (restart).
 */
#include "broker/journal.h"

#include "common/log.h"

#include <hiredis/hiredis.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* KEYS: events, done:<id>...; ARGV: ttl, maxlen, job ids..., events... */
static const char COMPLETE_LUA[] =
    "local events, ttl, n = KEYS[1], ARGV[1], #KEYS - 1\n"
    "local out = {}\n"
    "for i = 1, n do\n"
    "  local ev = ARGV[n + 2 + i]\n"
    "  if redis.call('SET', KEYS[i + 1], ev, 'NX', 'EX', ttl) then\n"
    "    redis.call('XADD', events, '*', 'job_id', ARGV[2 + i], 'event', ev)\n"
    "    out[i] = 1\n"
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
    jentries_t *entries;
    char (*xdel)[JENTRY_SID]; /* released entries to delete */
    size_t nxdel, cap_xdel;
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

void journal_destroy(journal_t **self_p)
{
    journal_t *j = *self_p;
    if (!j)
        return;
    if (j->c)
        redisFree(j->c);
    jentries_destroy(&j->entries);
    free(j->xdel);
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

int journal_connect(journal_t *j, char *err, size_t errlen)
{
    if (j->c) {
        redisFree(j->c);
        j->c = NULL;
    }
    j->c = redis_url_connect(&j->cfg.url, j->cfg.timeout_ms, j->err, sizeof j->err);
    if (j->c && !j->cfg.no_journal && journal_load_script(j, COMPLETE_LUA, j->complete_sha)) {
        redisFree(j->c);
        j->c = NULL;
    }
    if (!j->c) {
        if (err)
            snprintf(err, errlen, "%s", j->err);
        return -1;
    }
    j->backoff_ms = 100;
    return 0;
}

/* Forget a broken connection; the next journal_ensure reconnects. */
static void journal_lost(journal_t *j, int64_t now_ms)
{
    if (j->c) {
        snprintf(j->err, sizeof j->err, "lost Redis: %s",
                 j->c->err ? j->c->errstr : "unexpected reply");
        log_warn("redis.lost", "error=\"%s\"", j->err);
        redisFree(j->c);
        j->c = NULL;
    }
    j->next_try_ms = now_ms + j->backoff_ms;
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

void journal_release(journal_t *j, jentry_t *e)
{
    if (!e)
        return;
    char sid[JENTRY_SID];
    if (!jentries_release(j->entries, e, sid))
        return;
    if (j->nxdel == j->cap_xdel) {
        size_t cap = j->cap_xdel ? j->cap_xdel * 2 : 64;
        void *p = realloc(j->xdel, cap * sizeof *j->xdel);
        if (!p)
            return; /* left for the sweep */
        j->xdel = p;
        j->cap_xdel = cap;
    }
    memcpy(j->xdel[j->nxdel++], sid, JENTRY_SID);
}

/* Append XDEL <journal> <released ids> to the output buffer. 1 when
 * appended (its reply comes first), 0 when nothing was released. */
static int journal_append_xdel(journal_t *j)
{
    if (!j->nxdel || args_reserve(j, j->nxdel + 2))
        return 0;
    j->argv[0] = "XDEL";
    j->argvlen[0] = 4;
    j->argv[1] = j->journal_key;
    j->argvlen[1] = strlen(j->journal_key);
    for (size_t i = 0; i < j->nxdel; i++) {
        j->argv[2 + i] = j->xdel[i];
        j->argvlen[2 + i] = strlen(j->xdel[i]);
    }
    int rc = redisAppendCommandArgv(j->c, (int)j->nxdel + 2, j->argv, j->argvlen) == REDIS_OK;
    j->nxdel = 0; /* on failure the entries are left for the sweep */
    return rc;
}

/* Read one reply of a pipeline; NULL marks the connection lost. */
static redisReply *journal_reply(journal_t *j)
{
    void *r = NULL;
    if (redisGetReply(j->c, &r) != REDIS_OK || !r) {
        if (r)
            freeReplyObject(r);
        journal_lost(j, 0);
        return NULL;
    }
    return r;
}

void journal_flush(journal_t *j)
{
    if (!j->c || !j->nxdel)
        return;
    if (journal_append_xdel(j)) {
        redisReply *r = journal_reply(j);
        if (r)
            freeReplyObject(r);
    }
}

/* Read and drop the reply of an XDEL appended first. -1 when lost. */
static int journal_skip_xdel(journal_t *j, int appended)
{
    if (!appended)
        return 0;
    redisReply *r = journal_reply(j);
    if (!r)
        return -1;
    freeReplyObject(r);
    return 0;
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

/* XADD <journal> * a <accepted_us> j <blob>; the new entry's id into sid.
 * xdel: an XDEL was appended before (its reply is read first). 0 or -1. */
static int journal_xadd_blob(journal_t *j, uint64_t accepted_us, int xdel, char sid[JENTRY_SID])
{
    char acc[24];
    snprintf(acc, sizeof acc, "%llu", (unsigned long long)accepted_us);
    const char *argv[] = {"XADD", j->journal_key, "*", "a", acc, "j", j->blob.data};
    size_t argvlen[] = {4, strlen(j->journal_key), 1, 1, strlen(acc), 1, j->blob.size};
    if (redisAppendCommandArgv(j->c, 7, argv, argvlen) != REDIS_OK) {
        journal_lost(j, 0);
        return -1;
    }
    if (journal_skip_xdel(j, xdel))
        return -1;
    redisReply *r = journal_reply(j);
    if (!r)
        return -1;
    if (r->type != REDIS_REPLY_STRING || r->len == 0 || r->len >= JENTRY_SID) {
        if (r->type == REDIS_REPLY_ERROR)
            snprintf(j->err, sizeof j->err, "journal append failed: %s", r->str);
        freeReplyObject(r);
        journal_lost(j, 0);
        return -1;
    }
    memcpy(sid, r->str, r->len + 1);
    freeReplyObject(r);
    return 0;
}

/* ---- submit ----------------------------------------------------------- */

/* A rubric reference to resolve once per batch. */
typedef struct rubric_ref {
    const char *s;
    size_t len;
    int by_hash; /* 1: EXISTS rubric:hash:<s>; 0: GET rubric:id:<s> */
    int known;
    const char *hash; /* by id: the current hash (points into the reply) */
    size_t hash_len;
} rubric_ref_t;

int journal_submit(journal_t *j, uint64_t accepted_us, journal_submit_item_t *items, size_t n)
{
    if (!j->c)
        return -1;
    if (n == 0)
        return 0;
    int journaled = !j->cfg.no_journal;
    rubric_ref_t *refs = malloc(n * sizeof *refs);
    int *slot = malloc(n * sizeof *slot);
    if (!refs || !slot) {
        free(refs);
        free(slot);
        return -1;
    }
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
            refs[nrefs++] = (rubric_ref_t){.s = s, .len = len, .by_hash = by_hash};
            keybytes += j->prefix_len + 12 + len;
        }
        slot[i] = (int)r;
    }
    size_t nmget = (journaled ? n : 0);
    for (size_t r = 0; r < nrefs; r++)
        nmget += !refs[r].by_hash;
    int rc = -1;
    redisReply *mget = NULL;
    if (keys_reserve(j, keybytes + 1) || args_reserve(j, (nmget > nrefs ? nmget : nrefs) + 4))
        goto out;
    /* one pipeline: [XDEL], MGET done keys + rubric ids, EXISTS per pinned hash */
    int xdel = journal_append_xdel(j);
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
    if (a > 1 && redisAppendCommandArgv(j->c, (int)a, j->argv, j->argvlen) != REDIS_OK)
        goto lost;
    size_t nexists = 0;
    for (size_t r = 0; r < nrefs; r++)
        if (refs[r].by_hash) {
            const char *kv[2] = {"EXISTS", NULL};
            size_t kl[2] = {6, 0};
            key_put(j, &off, "rubric:hash:", 12, refs[r].s, refs[r].len, &kv[1], &kl[1]);
            if (redisAppendCommandArgv(j->c, 2, kv, kl) != REDIS_OK)
                goto lost;
            nexists++;
        }
    if (journal_skip_xdel(j, xdel))
        goto out;
    if (a > 1) {
        mget = journal_reply(j);
        if (!mget)
            goto out;
        if (mget->type != REDIS_REPLY_ARRAY || mget->elements != a - 1) {
            if (mget->type == REDIS_REPLY_ERROR)
                snprintf(j->err, sizeof j->err, "journal read failed: %s", mget->str);
            goto lost;
        }
        size_t e = journaled ? n : 0;
        for (size_t r = 0; r < nrefs; r++)
            if (!refs[r].by_hash) {
                redisReply *v = mget->element[e++];
                refs[r].known = v->type == REDIS_REPLY_STRING && v->len > 0 && v->len < 65;
                refs[r].hash = refs[r].known ? v->str : "";
                refs[r].hash_len = refs[r].known ? v->len : 0;
            }
    }
    for (size_t r = 0; r < nrefs; r++)
        if (refs[r].by_hash) {
            redisReply *v = journal_reply(j);
            if (!v)
                goto out;
            refs[r].known = v->type == REDIS_REPLY_INTEGER && v->integer == 1;
            freeReplyObject(v);
        }
    (void)nexists;
    /* outcomes, and the accepted jobs into one record blob */
    msgpack_sbuffer_clear(&j->blob);
    uint32_t accepted = 0;
    for (size_t i = 0; i < n; i++) {
        journal_submit_item_t *it = &items[i];
        redisReply *done = journaled ? mget->element[i] : NULL;
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
        if (slot[i] >= 0 && !refs[slot[i]].known) {
            it->outcome = JOURNAL_UNKNOWN_RUBRIC;
            continue;
        }
        it->outcome = JOURNAL_ACCEPTED;
        const char *h = it->hash;
        size_t hl = it->hash_len;
        if (slot[i] >= 0 && !refs[slot[i]].by_hash) {
            h = refs[slot[i]].hash;
            hl = refs[slot[i]].hash_len;
        }
        if (hl >= sizeof it->resolved_hash)
            hl = sizeof it->resolved_hash - 1;
        memcpy(it->resolved_hash, h, hl);
        it->resolved_hash[hl] = '\0';
        if (journaled && record_pack(j, it->job_id, it->job_id_len, it->resolved_hash, hl,
                                     it->body, it->body_len, 0))
            goto out;
        accepted++;
    }
    if (journaled && accepted) {
        char sid[JENTRY_SID];
        if (journal_xadd_blob(j, accepted_us, 0, sid))
            goto out;
        jentry_t *e = jentries_add(j->entries, sid, accepted);
        if (!e) {
            snprintf(j->err, sizeof j->err, "out of memory");
            goto out;
        }
        for (size_t i = 0; i < n; i++)
            if (items[i].outcome == JOURNAL_ACCEPTED)
                items[i].entry = e;
    }
    rc = 0;
    goto out;
lost:
    journal_lost(j, 0);
out:
    if (rc != 0)
        for (size_t i = 0; i < n; i++) {
            free(items[i].event);
            items[i].event = NULL;
        }
    if (mget)
        freeReplyObject(mget);
    free(refs);
    free(slot);
    return rc;
}

/* ---- complete --------------------------------------------------------- */

/* Without a journal: every event of a job the broker held goes to the
 * events stream (pipelined XADDs, no script); the others were dropped by
 * the broker's own dedupe. */
static int journal_complete_plain(journal_t *j, journal_result_item_t *items, size_t n)
{
    char maxlen[24];
    snprintf(maxlen, sizeof maxlen, "%llu", (unsigned long long)j->cfg.events_maxlen);
    size_t sent = 0;
    for (size_t i = 0; i < n; i++) {
        items[i].first = items[i].held;
        if (!items[i].held)
            continue;
        const char *argv[] = {"XADD", j->events_key, "MAXLEN", "~",    maxlen,
                              "*",    "job_id",      items[i].job_id, "event", items[i].event};
        size_t argvlen[] = {4, strlen(j->events_key), 6, 1, strlen(maxlen),
                            1, 6, items[i].job_id_len, 5, items[i].event_len};
        if (redisAppendCommandArgv(j->c, 10, argv, argvlen) != REDIS_OK) {
            journal_lost(j, 0);
            return -1;
        }
        sent++;
    }
    int rc = 0;
    for (size_t i = 0; i < sent; i++) {
        redisReply *r = journal_reply(j);
        if (!r)
            return -1;
        if (r->type == REDIS_REPLY_ERROR) {
            snprintf(j->err, sizeof j->err, "events append failed: %s", r->str);
            rc = -1;
        }
        freeReplyObject(r);
    }
    if (rc)
        journal_lost(j, 0);
    return rc;
}

int journal_complete(journal_t *j, journal_result_item_t *items, size_t n)
{
    if (!j->c)
        return -1;
    if (n == 0)
        return 0;
    if (j->cfg.no_journal)
        return journal_complete_plain(j, items, n);
    size_t keybytes = 0;
    for (size_t i = 0; i < n; i++)
        keybytes += j->prefix_len + 5 + items[i].job_id_len;
    size_t argc = 6 + 3 * n;
    if (keys_reserve(j, keybytes + 1) || args_reserve(j, argc))
        return -1;
    int xdel = journal_append_xdel(j);
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
    if (redisAppendCommandArgv(j->c, (int)argc, j->argv, j->argvlen) != REDIS_OK) {
        journal_lost(j, 0);
        return -1;
    }
    if (journal_skip_xdel(j, xdel))
        return -1;
    redisReply *r = journal_reply(j);
    if (!r)
        return -1;
    if (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
        /* Redis restarted behind the connection: load the script again. */
        freeReplyObject(r);
        if (journal_load_script(j, COMPLETE_LUA, j->complete_sha)) {
            journal_lost(j, 0);
            return -1;
        }
        j->argv[1] = j->complete_sha;
        r = redisCommandArgv(j->c, (int)argc, j->argv, j->argvlen);
        if (!r) {
            journal_lost(j, 0);
            return -1;
        }
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != n) {
        if (r->type == REDIS_REPLY_ERROR)
            snprintf(j->err, sizeof j->err, "emit script failed: %s", r->str);
        freeReplyObject(r);
        journal_lost(j, 0);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        items[i].first = r->element[i]->type == REDIS_REPLY_INTEGER && r->element[i]->integer == 1;
        journal_release(j, items[i].entry);
        items[i].entry = NULL;
    }
    freeReplyObject(r);
    return 0;
}

/* ---- requeue and dead letters ----------------------------------------- */

int journal_requeued(journal_t *j, const journal_entry_t *e, jentry_t **entry)
{
    if (j->cfg.no_journal)
        return 0;
    if (!j->c)
        return -1;
    msgpack_sbuffer_clear(&j->blob);
    if (record_pack(j, e->job_id, e->job_id_len, e->hash, strlen(e->hash), e->body, e->body_len,
                    e->attempts))
        return -1;
    int xdel = journal_append_xdel(j);
    char sid[JENTRY_SID];
    if (journal_xadd_blob(j, e->accepted_us, xdel, sid))
        return -1;
    jentry_t *ne = jentries_add(j->entries, sid, 1);
    if (!ne)
        return -1; /* the new entry is adopted by the sweep */
    journal_release(j, *entry);
    *entry = ne;
    return 0;
}

int journal_dead(journal_t *j, const journal_entry_t *e, const char *reason, uint64_t dead_us)
{
    if (!j->c)
        return -1;
    char acc[24], att[16], when[24], ttl[24];
    snprintf(acc, sizeof acc, "%llu", (unsigned long long)e->accepted_us);
    snprintf(att, sizeof att, "%u", e->attempts);
    snprintf(when, sizeof when, "%llu", (unsigned long long)dead_us);
    snprintf(ttl, sizeof ttl, "%llu", (unsigned long long)j->cfg.dedupe_ttl_s);
    redisReply *r;
    if (j->cfg.no_journal) {
        /* No done-set to claim: the dead-letter stream only. */
        const char *argv[] = {"XADD", j->dead_key, "*", "job_id", e->job_id, "hash", e->hash,
                              "accepted_us", acc, "attempts", att, "reason", reason, "dead_us",
                              when, "job", e->body};
        size_t argvlen[] = {4, strlen(j->dead_key), 1, 6, e->job_id_len, 4, strlen(e->hash), 11,
                            strlen(acc), 8, strlen(att), 6, strlen(reason), 7, strlen(when), 3,
                            e->body_len};
        r = redisCommandArgv(j->c, 17, argv, argvlen);
    } else {
        const char *argv[] = {"EVAL", DEAD_LUA, "0", j->journal_key, j->dead_key, "",
                              e->job_id, e->hash, acc, att, reason, when, e->body, j->prefix, ttl};
        size_t argvlen[] = {4,           strlen(DEAD_LUA),   1,           strlen(j->journal_key),
                            strlen(j->dead_key), 0, e->job_id_len, strlen(e->hash),
                            strlen(acc), strlen(att), strlen(reason), strlen(when), e->body_len,
                            strlen(j->prefix), strlen(ttl)};
        r = redisCommandArgv(j->c, 15, argv, argvlen);
    }
    if (!r || r->type == REDIS_REPLY_ERROR) {
        if (r)
            freeReplyObject(r);
        journal_lost(j, 0);
        return -1;
    }
    freeReplyObject(r);
    journal_release(j, e->entry);
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
        if (*njobs == *cap) {
            size_t nc = *cap ? *cap * 2 : 256;
            scan_job_t *p = realloc(*jobs, nc * sizeof *p);
            if (!p)
                return -1;
            *jobs = p;
            *cap = nc;
        }
        scan_job_t *s = &(*jobs)[(*njobs)++];
        memset(s, 0, sizeof *s);
        s->entry = index;
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
        if (*njobs == *cap) {
            size_t nc = *cap ? *cap * 2 : 256;
            scan_job_t *p = realloc(*jobs, nc * sizeof *p);
            if (!p)
                return -1;
            *jobs = p;
            *cap = nc;
        }
        scan_job_t *s = &(*jobs)[(*njobs)++];
        memset(s, 0, sizeof *s);
        s->entry = index;
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

long journal_scan(journal_t *j, char *cursor, size_t cap, size_t count, journal_recover_fn fn,
                  void *arg, int *at_end)
{
    *at_end = 0;
    if (j->cfg.no_journal) {
        *at_end = 1;
        cursor[0] = '\0';
        return 0;
    }
    if (!j->c)
        return -1;
    char start[64], cnt[24];
    if (cursor[0])
        snprintf(start, sizeof start, "(%s", cursor);
    else
        snprintf(start, sizeof start, "-");
    snprintf(cnt, sizeof cnt, "%zu", count);
    const char *xr[] = {"XRANGE", j->journal_key, start, "+", "COUNT", cnt};
    size_t xrl[] = {6, strlen(j->journal_key), strlen(start), 1, 5, strlen(cnt)};
    redisReply *r = redisCommandArgv(j->c, 6, xr, xrl);
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        if (r && r->type == REDIS_REPLY_ERROR)
            snprintf(j->err, sizeof j->err, "journal scan failed: %s", r->str);
        if (r)
            freeReplyObject(r);
        journal_lost(j, 0);
        return -1;
    }
    msgpack_zone zone;
    msgpack_zone_init(&zone, 8192);
    scan_job_t *jobs = NULL;
    size_t njobs = 0, capj = 0;
    unsigned char *unknown = calloc(r->elements ? r->elements : 1, 1);
    redisReply *mget = NULL;
    long total = -1;
    if (!unknown)
        goto out;
    for (size_t i = 0; i < r->elements; i++) {
        const redisReply *e = r->element[i];
        const char *sid = e->element[0]->str;
        if (jentries_find(j->entries, sid))
            continue; /* the broker holds jobs under it */
        unknown[i] = 1;
        if (entry_jobs(e->element[1], i, &zone, &jobs, &njobs, &capj) < 0) {
            log_warn("journal.skip", "stream_id=%s reason=\"the entry cannot be read\"", sid);
            unknown[i] = 0;
        }
    }
    if (njobs) {
        /* which of them are done already */
        size_t keybytes = 0;
        for (size_t k = 0; k < njobs; k++)
            keybytes += j->prefix_len + 5 + jobs[k].e.job_id_len;
        if (keys_reserve(j, keybytes + 1) || args_reserve(j, njobs + 1))
            goto out;
        size_t off = 0;
        j->argv[0] = "MGET";
        j->argvlen[0] = 4;
        for (size_t k = 0; k < njobs; k++)
            key_put(j, &off, "done:", 5, jobs[k].e.job_id, jobs[k].e.job_id_len,
                    &j->argv[1 + k], &j->argvlen[1 + k]);
        mget = redisCommandArgv(j->c, (int)njobs + 1, j->argv, j->argvlen);
        if (!mget || mget->type != REDIS_REPLY_ARRAY || mget->elements != njobs) {
            journal_lost(j, 0);
            goto out;
        }
    }
    total = 0;
    size_t k = 0;
    for (size_t i = 0; i < r->elements; i++) {
        if (!unknown[i])
            continue;
        const char *sid = r->element[i]->element[0]->str;
        jentry_t *en = jentries_add(j->entries, sid, 0);
        int keep = 0;
        for (; k < njobs && jobs[k].entry == i; k++) {
            if (mget->element[k]->type == REDIS_REPLY_STRING)
                continue; /* scored or dead-lettered */
            if (!en)
                continue;
            jobs[k].e.entry = en;
            jobs[k].e.stream_id = sid;
            jobs[k].e.hash = jobs[k].hash;
            int held = fn(arg, &jobs[k].e);
            if (held > 0)
                jentries_hold(en);
            else if (held < 0)
                keep = 1;
            total++;
        }
        if (en && en->open == 0) {
            if (keep) { /* not held, yet not to be deleted: left for a later sweep */
                char sid_unused[JENTRY_SID];
                jentries_release(j->entries, en, sid_unused);
            } else {
                journal_release(j, en); /* nothing held under it: delete */
            }
        }
    }
    journal_flush(j);
    if (r->elements)
        snprintf(cursor, cap, "%s", r->element[r->elements - 1]->element[0]->str);
    if (r->elements < count) {
        *at_end = 1;
        cursor[0] = '\0';
    }
out:
    if (mget)
        freeReplyObject(mget);
    freeReplyObject(r);
    free(unknown);
    free(jobs);
    msgpack_zone_destroy(&zone);
    return total;
}

long journal_recover(journal_t *j, journal_recover_fn fn, void *arg)
{
    char cursor[64] = "";
    long total = 0;
    int at_end = 0;
    while (!at_end) {
        long n = journal_scan(j, cursor, sizeof cursor, 256, fn, arg, &at_end);
        if (n < 0)
            return -1;
        total += n;
    }
    return total;
}
