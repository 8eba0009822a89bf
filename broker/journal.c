/*
 * journal.c - the broker's Redis batches (see journal.h).
 *
 * Two Lua scripts do the work so that each batch is atomic and costs one
 * round trip: SUBMIT_LUA resolves each job's rubric, checks the done-set and
 * appends the job to the journal stream; COMPLETE_LUA claims each job id in
 * the done-set with SET NX EX (first result wins), appends the winners to the
 * events stream and deletes the journal entries. Scripts are called with
 * EVALSHA and re-sent with EVAL when Redis has forgotten them (restart).
 */
#include "broker/journal.h"

#include "common/log.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char SUBMIT_LUA[] =
    "local prefix, journal, now = ARGV[1], ARGV[2], ARGV[3]\n"
    "local out, ids, known = {}, {}, {}\n"
    "for b = 4, #ARGV, 5 do\n"
    "  local id, hash, rubric, inline, job = ARGV[b], ARGV[b+1], ARGV[b+2], ARGV[b+3], ARGV[b+4]\n"
    "  local done = redis.call('GET', prefix .. 'done:' .. id)\n"
    "  if done and string.sub(done, 1, 5) == 'DEAD:' then\n"
    "    out[#out+1] = {'dead', string.sub(done, 6)}\n"
    "  elseif done then\n"
    "    out[#out+1] = {'done', done}\n"
    "  else\n"
    "    local ok = true\n"
    "    if hash == '' then\n"
    "      if inline ~= '1' then\n"
    "        local h = ids[rubric]\n"
    "        if h == nil then\n"
    "          h = redis.call('GET', prefix .. 'rubric:id:' .. rubric) or false\n"
    "          ids[rubric] = h\n"
    "        end\n"
    "        if h then hash = h else ok = false end\n"
    "      end\n"
    "    elseif inline ~= '1' then\n"
    "      local k = known[hash]\n"
    "      if k == nil then\n"
    "        k = redis.call('EXISTS', prefix .. 'rubric:hash:' .. hash) == 1\n"
    "        known[hash] = k\n"
    "      end\n"
    "      ok = k\n"
    "    end\n"
    "    if ok then\n"
    "      local sid = redis.call('XADD', journal, '*', 'job_id', id, 'hash', hash,\n"
    "                             'accepted_us', now, 'job', job)\n"
    "      out[#out+1] = {'ok', sid, hash}\n"
    "    else\n"
    "      out[#out+1] = {'unknown_rubric', hash}\n"
    "    end\n"
    "  end\n"
    "end\n"
    "return out\n";

static const char COMPLETE_LUA[] =
    "local prefix, journal, ttl, maxlen = ARGV[1], ARGV[2], ARGV[3], ARGV[4]\n"
    "local out = {}\n"
    "for b = 5, #ARGV, 3 do\n"
    "  local id, sid, ev = ARGV[b], ARGV[b+1], ARGV[b+2]\n"
    "  if redis.call('SET', prefix .. 'done:' .. id, ev, 'NX', 'EX', ttl) then\n"
    "    redis.call('XADD', prefix .. 'events', 'MAXLEN', '~', maxlen, '*', 'job_id', id,\n"
    "               'event', ev)\n"
    "    out[#out+1] = 1\n"
    "  else\n"
    "    out[#out+1] = 0\n"
    "  end\n"
    "  if sid ~= '' then redis.call('XDEL', journal, sid) end\n"
    "end\n"
    "return out\n";

static const char REQUEUED_LUA[] =
    "local journal, old = ARGV[1], ARGV[2]\n"
    "local sid = redis.call('XADD', journal, '*', 'job_id', ARGV[3], 'hash', ARGV[4],\n"
    "                       'accepted_us', ARGV[5], 'job', ARGV[6], 'attempts', ARGV[7])\n"
    "if old ~= '' then redis.call('XDEL', journal, old) end\n"
    "return sid\n";

/* Dead-lettering claims the job id in the done-set ("DEAD:" + reason, which
 * no score event starts with) so that a late result for it is dropped and a
 * resubmission is answered dead_letter until `scoreline dead retry`. */
static const char DEAD_LUA[] =
    "local journal, dead, old = ARGV[1], ARGV[2], ARGV[3]\n"
    "redis.call('SET', ARGV[11] .. 'done:' .. ARGV[4], 'DEAD:' .. ARGV[8], 'EX', ARGV[12])\n"
    "redis.call('XADD', dead, '*', 'job_id', ARGV[4], 'hash', ARGV[5], 'accepted_us', ARGV[6],\n"
    "           'attempts', ARGV[7], 'reason', ARGV[8], 'dead_us', ARGV[9], 'journal', journal,\n"
    "           'job', ARGV[10])\n"
    "if old ~= '' then redis.call('XDEL', journal, old) end\n"
    "return 1\n";

struct journal {
    journal_config_t cfg;
    char prefix[128];
    char journal_key[300];
    redisContext *c;
    char submit_sha[41];
    char complete_sha[41];
    char err[512];
    int64_t next_try_ms;
    int backoff_ms;
};

journal_t *journal_new(const journal_config_t *cfg)
{
    journal_t *j = calloc(1, sizeof *j);
    if (!j)
        return NULL;
    j->cfg = *cfg;
    snprintf(j->prefix, sizeof j->prefix, "%s", cfg->prefix);
    j->cfg.prefix = j->prefix;
    snprintf(j->journal_key, sizeof j->journal_key, "%sjournal:%s", cfg->prefix, cfg->name);
    j->cfg.name = NULL;
    j->backoff_ms = 100;
    return j;
}

void journal_destroy(journal_t **self_p)
{
    journal_t *j = *self_p;
    if (!j)
        return;
    if (j->c)
        redisFree(j->c);
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
    if (j->c && (journal_load_script(j, SUBMIT_LUA, j->submit_sha) ||
                 journal_load_script(j, COMPLETE_LUA, j->complete_sha))) {
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
        log_info("redis.up", "journal=%s", j->journal_key);
        return 1;
    }
    j->backoff_ms = j->backoff_ms * 2 > 2000 ? 2000 : j->backoff_ms * 2;
    j->next_try_ms = now_ms + j->backoff_ms;
    log_warn("redis.retry", "error=\"%s\" retry_in_ms=%d", j->err, j->backoff_ms);
    return 0;
}

/* EVALSHA sha 0 argv...; falls back to EVAL when the script is unknown. */
static redisReply *journal_eval(journal_t *j, const char *sha, const char *script, int argc,
                                const char **argv, size_t *argvlen)
{
    argv[0] = "EVALSHA";
    argvlen[0] = 7;
    argv[1] = sha;
    argvlen[1] = 40;
    argv[2] = "0";
    argvlen[2] = 1;
    redisReply *r = redisCommandArgv(j->c, argc, argv, argvlen);
    if (r && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "NOSCRIPT", 8) == 0) {
        freeReplyObject(r);
        argv[0] = "EVAL";
        argvlen[0] = 4;
        argv[1] = script;
        argvlen[1] = strlen(script);
        r = redisCommandArgv(j->c, argc, argv, argvlen);
    }
    return r;
}

/* Copy a string reply into dst (truncated to cap - 1), without printf. */
static void reply_copy(char *dst, size_t cap, const redisReply *r)
{
    size_t n = r->len < cap - 1 ? r->len : cap - 1;
    memcpy(dst, r->str, n);
    dst[n] = '\0';
}

int journal_submit(journal_t *j, uint64_t accepted_us, journal_submit_item_t *items, size_t n)
{
    if (!j->c)
        return -1;
    if (n == 0)
        return 0;
    int argc = 6 + (int)n * 5;
    const char **argv = malloc((size_t)argc * sizeof *argv);
    size_t *argvlen = malloc((size_t)argc * sizeof *argvlen);
    if (!argv || !argvlen) {
        free(argv);
        free(argvlen);
        return -1;
    }
    char now[24];
    snprintf(now, sizeof now, "%llu", (unsigned long long)accepted_us);
    argv[3] = j->prefix;
    argvlen[3] = strlen(j->prefix);
    argv[4] = j->journal_key;
    argvlen[4] = strlen(j->journal_key);
    argv[5] = now;
    argvlen[5] = strlen(now);
    for (size_t i = 0; i < n; i++) {
        int b = 6 + (int)i * 5;
        argv[b] = items[i].job_id;
        argvlen[b] = items[i].job_id_len;
        argv[b + 1] = items[i].hash;
        argvlen[b + 1] = items[i].hash_len;
        argv[b + 2] = items[i].rubric;
        argvlen[b + 2] = items[i].rubric_len;
        argv[b + 3] = items[i].has_inline ? "1" : "0";
        argvlen[b + 3] = 1;
        argv[b + 4] = items[i].body;
        argvlen[b + 4] = items[i].body_len;
    }
    redisReply *r = journal_eval(j, j->submit_sha, SUBMIT_LUA, argc, argv, argvlen);
    free(argv);
    free(argvlen);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != n) {
        if (r && r->type == REDIS_REPLY_ERROR)
            snprintf(j->err, sizeof j->err, "journal script failed: %s", r->str);
        if (r)
            freeReplyObject(r);
        journal_lost(j, 0);
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        redisReply *e = r->element[i];
        journal_submit_item_t *it = &items[i];
        it->event = NULL;
        it->event_len = 0;
        it->stream_id[0] = it->resolved_hash[0] = '\0';
        const char *kind = e->element[0]->str;
        if (strcmp(kind, "ok") == 0) {
            it->outcome = JOURNAL_ACCEPTED;
            reply_copy(it->stream_id, sizeof it->stream_id, e->element[1]);
            reply_copy(it->resolved_hash, sizeof it->resolved_hash, e->element[2]);
        } else if (strcmp(kind, "dead") == 0) {
            it->outcome = JOURNAL_DEAD;
            it->event = malloc(e->element[1]->len + 1);
            if (it->event) {
                memcpy(it->event, e->element[1]->str, e->element[1]->len);
                it->event[e->element[1]->len] = '\0';
                it->event_len = e->element[1]->len;
            }
        } else if (strcmp(kind, "done") == 0) {
            it->outcome = JOURNAL_DONE;
            it->event = malloc(e->element[1]->len ? e->element[1]->len : 1);
            if (it->event) {
                memcpy(it->event, e->element[1]->str, e->element[1]->len);
                it->event_len = e->element[1]->len;
            }
        } else {
            it->outcome = JOURNAL_UNKNOWN_RUBRIC;
        }
    }
    freeReplyObject(r);
    return 0;
}

int journal_complete(journal_t *j, journal_result_item_t *items, size_t n)
{
    if (!j->c)
        return -1;
    if (n == 0)
        return 0;
    int argc = 7 + (int)n * 3;
    const char **argv = malloc((size_t)argc * sizeof *argv);
    size_t *argvlen = malloc((size_t)argc * sizeof *argvlen);
    if (!argv || !argvlen) {
        free(argv);
        free(argvlen);
        return -1;
    }
    char ttl[24], maxlen[24];
    snprintf(ttl, sizeof ttl, "%llu", (unsigned long long)j->cfg.dedupe_ttl_s);
    snprintf(maxlen, sizeof maxlen, "%llu", (unsigned long long)j->cfg.events_maxlen);
    argv[3] = j->prefix;
    argvlen[3] = strlen(j->prefix);
    argv[4] = j->journal_key;
    argvlen[4] = strlen(j->journal_key);
    argv[5] = ttl;
    argvlen[5] = strlen(ttl);
    argv[6] = maxlen;
    argvlen[6] = strlen(maxlen);
    for (size_t i = 0; i < n; i++) {
        int b = 7 + (int)i * 3;
        argv[b] = items[i].job_id;
        argvlen[b] = items[i].job_id_len;
        argv[b + 1] = items[i].stream_id;
        argvlen[b + 1] = strlen(items[i].stream_id);
        argv[b + 2] = items[i].event;
        argvlen[b + 2] = items[i].event_len;
    }
    redisReply *r = journal_eval(j, j->complete_sha, COMPLETE_LUA, argc, argv, argvlen);
    free(argv);
    free(argvlen);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != n) {
        if (r && r->type == REDIS_REPLY_ERROR)
            snprintf(j->err, sizeof j->err, "emit script failed: %s", r->str);
        if (r)
            freeReplyObject(r);
        journal_lost(j, 0);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        items[i].first = r->element[i]->type == REDIS_REPLY_INTEGER && r->element[i]->integer == 1;
    freeReplyObject(r);
    return 0;
}

int journal_requeued(journal_t *j, const journal_entry_t *e, char *new_sid, size_t cap)
{
    if (!j->c)
        return -1;
    char acc[24], att[16];
    snprintf(acc, sizeof acc, "%llu", (unsigned long long)e->accepted_us);
    snprintf(att, sizeof att, "%u", e->attempts);
    const char *argv[] = {"EVAL", REQUEUED_LUA, "0", j->journal_key, e->stream_id, e->job_id,
                          e->hash, acc, e->body, att};
    size_t argvlen[] = {4, strlen(REQUEUED_LUA), 1, strlen(j->journal_key), strlen(e->stream_id),
                        e->job_id_len, strlen(e->hash), strlen(acc), e->body_len, strlen(att)};
    redisReply *r = redisCommandArgv(j->c, 10, argv, argvlen);
    if (!r || r->type != REDIS_REPLY_STRING) {
        if (r)
            freeReplyObject(r);
        journal_lost(j, 0);
        return -1;
    }
    snprintf(new_sid, cap, "%s", r->str);
    freeReplyObject(r);
    return 0;
}

int journal_dead(journal_t *j, const journal_entry_t *e, const char *reason, uint64_t dead_us)
{
    if (!j->c)
        return -1;
    char dead_key[300], acc[24], att[16], when[24], ttl[24];
    snprintf(dead_key, sizeof dead_key, "%sdead", j->prefix);
    snprintf(acc, sizeof acc, "%llu", (unsigned long long)e->accepted_us);
    snprintf(att, sizeof att, "%u", e->attempts);
    snprintf(when, sizeof when, "%llu", (unsigned long long)dead_us);
    snprintf(ttl, sizeof ttl, "%llu", (unsigned long long)j->cfg.dedupe_ttl_s);
    const char *argv[] = {"EVAL", DEAD_LUA, "0", j->journal_key, dead_key, e->stream_id,
                          e->job_id, e->hash, acc, att, reason, when, e->body, j->prefix, ttl};
    size_t argvlen[] = {4,          strlen(DEAD_LUA), 1,           strlen(j->journal_key),
                        strlen(dead_key), strlen(e->stream_id), e->job_id_len, strlen(e->hash),
                        strlen(acc), strlen(att), strlen(reason), strlen(when), e->body_len,
                        strlen(j->prefix), strlen(ttl)};
    redisReply *r = redisCommandArgv(j->c, 15, argv, argvlen);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        if (r)
            freeReplyObject(r);
        journal_lost(j, 0);
        return -1;
    }
    freeReplyObject(r);
    return 0;
}

void journal_forget(journal_t *j, const char *stream_id)
{
    if (!j->c || !stream_id[0])
        return;
    redisReply *r = redisCommand(j->c, "XDEL %s %s", j->journal_key, stream_id);
    if (!r)
        journal_lost(j, 0);
    else
        freeReplyObject(r);
}

/* Field value of a stream entry's field list, or NULL. */
static const redisReply *entry_field(const redisReply *fields, const char *name)
{
    for (size_t k = 0; k + 1 < fields->elements; k += 2)
        if (strcmp(fields->element[k]->str, name) == 0)
            return fields->element[k + 1];
    return NULL;
}

/* One page of the journal from an exclusive start: entries whose job is
 * already done (a journal entry orphaned by a lost reply, or by a crash
 * between emission and cleanup) are deleted on the spot; the others are
 * returned with the id of the last entry read. */
static const char SCAN_LUA[] =
    "local journal, prefix, start, count = ARGV[1], ARGV[2], ARGV[3], ARGV[4]\n"
    "local entries = redis.call('XRANGE', journal, start, '+', 'COUNT', count)\n"
    "local out, last = {}, ''\n"
    "for _, e in ipairs(entries) do\n"
    "  last = e[1]\n"
    "  local id\n"
    "  for i = 1, #e[2], 2 do if e[2][i] == 'job_id' then id = e[2][i+1] end end\n"
    "  if id and redis.call('EXISTS', prefix .. 'done:' .. id) == 1 then\n"
    "    redis.call('XDEL', journal, e[1])\n"
    "  else\n"
    "    out[#out+1] = e\n"
    "  end\n"
    "end\n"
    "return {last, #entries, out}\n";

long journal_scan(journal_t *j, char *cursor, size_t cap, size_t count, journal_recover_fn fn,
                  void *arg, int *at_end)
{
    *at_end = 0;
    if (!j->c)
        return -1;
    char start[64], cnt[24];
    if (cursor[0])
        snprintf(start, sizeof start, "(%s", cursor);
    else
        snprintf(start, sizeof start, "-");
    snprintf(cnt, sizeof cnt, "%zu", count);
    const char *argv[] = {"EVAL", SCAN_LUA, "0", j->journal_key, j->prefix, start, cnt};
    size_t argvlen[] = {4, strlen(SCAN_LUA), 1, strlen(j->journal_key), strlen(j->prefix),
                        strlen(start), strlen(cnt)};
    redisReply *r = redisCommandArgv(j->c, 7, argv, argvlen);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 3) {
        if (r && r->type == REDIS_REPLY_ERROR)
            snprintf(j->err, sizeof j->err, "journal scan failed: %s", r->str);
        if (r)
            freeReplyObject(r);
        journal_lost(j, 0);
        return -1;
    }
    long total = 0;
    const redisReply *list = r->element[2];
    for (size_t i = 0; i < list->elements; i++) {
        const redisReply *e = list->element[i];
        const char *sid = e->element[0]->str;
        const redisReply *fields = e->element[1];
        const redisReply *id = entry_field(fields, "job_id");
        const redisReply *hash = entry_field(fields, "hash");
        const redisReply *acc = entry_field(fields, "accepted_us");
        const redisReply *job = entry_field(fields, "job");
        const redisReply *att = entry_field(fields, "attempts");
        if (id && hash && acc && job) {
            journal_entry_t en = {.stream_id = sid,
                                  .job_id = id->str,
                                  .job_id_len = id->len,
                                  .hash = hash->str,
                                  .body = job->str,
                                  .body_len = job->len,
                                  .accepted_us = strtoull(acc->str, NULL, 10),
                                  .attempts = att ? (uint32_t)strtoul(att->str, NULL, 10) : 0};
            fn(arg, &en);
            total++;
        } else {
            log_warn("journal.skip", "stream_id=%s reason=\"entry lacks a field\"", sid);
        }
    }
    if (r->element[0]->len && r->element[0]->len < cap)
        memcpy(cursor, r->element[0]->str, r->element[0]->len + 1);
    if (r->element[1]->integer < (long long)count) {
        *at_end = 1;
        cursor[0] = '\0';
    }
    freeReplyObject(r);
    return total;
}

long journal_recover(journal_t *j, journal_recover_fn fn, void *arg)
{
    char cursor[64] = "";
    long total = 0;
    int at_end = 0;
    while (!at_end) {
        long n = journal_scan(j, cursor, sizeof cursor, 1000, fn, arg, &at_end);
        if (n < 0)
            return -1;
        total += n;
    }
    return total;
}
