/*
 * rubric.c - `scoreline rubric push|show|lint`: validate rubric JSON files
 * with the grading engine's loader and store/read their canonical msgpack
 * form in Redis under the key layout of common/keys.h:
 *
 *   <prefix>rubric:hash:<sha256>   canonical msgpack (a hash never changes meaning)
 *   <prefix>rubric:id:<id>         the current hash of <id>
 *   <prefix>rubric:versions:<id>   every hash <id> pointed to, newest first
 */
#include "cli/cli.h"
#include "cli/rubric_file.h"

#include "common/digest.h"
#include "common/jsonmp.h"
#include "common/keys.h"
#include "grading/grading.h"

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RUBRIC_REDIS_TIMEOUT_MS 5000
#define RUBRIC_PUSH_RETRIES 16 /* WATCH conflicts with concurrent pushes of one id */

static const char rubric_usage[] =
    "Usage: scoreline rubric push FILE...\n"
    "       scoreline rubric show ID|HASH [--canonical]\n"
    "       scoreline rubric lint FILE...\n"
    "\n"
    "push   Validate each rubric JSON file with the grading engine and store it in Redis:\n"
    "       <prefix>rubric:hash:<hash> = canonical msgpack, <prefix>rubric:id:<id> = <hash>,\n"
    "       and <hash> is pushed on <prefix>rubric:versions:<id> when the id's current\n"
    "       version changes (one MULTI/EXEC per file). All files are validated first:\n"
    "       if any is invalid, nothing is stored.\n"
    "       stdout: one line per file, `<hash> <id>`; stderr: stored / unchanged.\n"
    "show   Print a stored rubric as indented JSON (canonical key order). The argument\n"
    "       is a hash when it is 64 lowercase hex digits, otherwise a rubric id resolved\n"
    "       through <prefix>rubric:id:<id>.\n"
    "         --canonical   write the raw canonical msgpack bytes instead\n"
    "lint   Validate rubric files offline (no Redis). stdout: `ok <id> <hash>` per valid\n"
    "       file; each invalid file gets `scoreline: [code] FILE: PATH: problem` on stderr.\n"
    "\n"
    "Global flags: --redis URL, --prefix P, --log-level L (see scoreline --help).\n"
    "Exit: 0 ok; 1 invalid rubric or unknown rubric; 2 usage or unreadable file;\n"
    "3 Redis unavailable.\n";

void cli_grading_error(const char *file, const grading_error_t *e)
{
    const char *code = grading_err_code(e->code);
    size_t plen = strlen(e->path);
    if (plen && strncmp(e->message, e->path, plen) != 0)
        cli_error(code, "%s: %s: %s", file, e->path, e->message);
    else
        cli_error(code, "%s: %s", file, e->message[0] ? e->message : grading_strerror(e->code));
}

int cli_rubric_load_file(const char *path, grading_rubric_t **out, char **text, size_t *len)
{
    char *data;
    size_t n;
    *out = NULL;
    if (cli_read_file(path, &data, &n) != 0)
        return CLI_EXIT_USAGE;
    grading_error_t e;
    memset(&e, 0, sizeof e);
    grading_err_t rc = grading_rubric_load_json(data, n, out, &e);
    if (rc != GRADING_OK) {
        if (e.code == GRADING_OK)
            e.code = rc;
        cli_grading_error(path, &e);
        free(data);
        *out = NULL;
        return CLI_EXIT_FAILED;
    }
    if (text) {
        *text = data;
        *len = n;
    } else {
        free(data);
    }
    return CLI_EXIT_OK;
}

/* Report a failed Redis exchange; returns the exit code (3 for I/O). */
static int rubric_redis_failure(redisContext *c, redisReply *r, const char *what)
{
    if (!r) {
        cli_error("redis_unavailable", "Redis failed while %s: %s", what,
                  c->errstr[0] ? c->errstr : "connection lost");
        return CLI_EXIT_UNAVAILABLE;
    }
    cli_error("redis_error", "Redis refused %s: %.*s", what, (int)r->len, r->str);
    return CLI_EXIT_FAILED;
}

/* Store one loaded rubric. Returns an exit code; *changed says whether the
 * id now points to a new hash, old receives the previous hash ("" if none). */
static int rubric_store(redisContext *c, const cli_globals_t *g, const grading_rubric_t *r,
                        int *changed, char old[65])
{
    const char *id = grading_rubric_id(r);
    const char *hash = grading_rubric_hash(r);
    size_t clen;
    const void *canon = grading_rubric_canonical(r, &clen);
    char *hkey = cli_key(g, KEY_RUBRIC_HASH, hash);
    char *ikey = cli_key(g, KEY_RUBRIC_ID, id);
    char *vkey = cli_key(g, KEY_RUBRIC_VERSIONS, id);
    int rc = CLI_EXIT_FAILED;
    if (!hkey || !ikey || !vkey) {
        cli_error("out_of_memory", "cannot build Redis key names");
        goto done;
    }
    for (int attempt = 0; attempt < RUBRIC_PUSH_RETRIES; attempt++) {
        redisReply *r1 = redisCommand(c, "WATCH %s", ikey);
        if (!r1 || r1->type == REDIS_REPLY_ERROR) {
            rc = rubric_redis_failure(c, r1, "WATCH");
            freeReplyObject(r1);
            goto done;
        }
        freeReplyObject(r1);
        redisReply *cur = redisCommand(c, "GET %s", ikey);
        if (!cur || (cur->type != REDIS_REPLY_STRING && cur->type != REDIS_REPLY_NIL)) {
            rc = rubric_redis_failure(c, cur, "GET of the rubric pointer");
            freeReplyObject(cur);
            goto done;
        }
        old[0] = '\0';
        if (cur->type == REDIS_REPLY_STRING)
            snprintf(old, 65, "%.*s", (int)cur->len, cur->str);
        freeReplyObject(cur);
        *changed = strcmp(old, hash) != 0;

        /* One transaction: the pointer and its history move together. */
        int ncmd = 0;
        redisAppendCommand(c, "MULTI");
        ncmd++;
        redisAppendCommand(c, "SET %s %b", hkey, canon, clen);
        ncmd++;
        if (*changed) {
            redisAppendCommand(c, "SET %s %s", ikey, hash);
            redisAppendCommand(c, "LPUSH %s %s", vkey, hash);
            ncmd += 2;
        }
        redisAppendCommand(c, "EXEC");
        ncmd++;
        redisReply *exec = NULL;
        int failed = 0;
        for (int k = 0; k < ncmd; k++) {
            redisReply *rep = NULL;
            if (redisGetReply(c, (void **)&rep) != REDIS_OK || !rep) {
                rc = rubric_redis_failure(c, NULL, "storing the rubric");
                goto done;
            }
            if (k == ncmd - 1) {
                exec = rep;
            } else {
                if (rep->type == REDIS_REPLY_ERROR && !failed) {
                    failed = 1;
                    rc = rubric_redis_failure(c, rep, "storing the rubric");
                }
                freeReplyObject(rep);
            }
        }
        if (failed || exec->type == REDIS_REPLY_ERROR) {
            if (!failed)
                rc = rubric_redis_failure(c, exec, "storing the rubric (EXEC)");
            freeReplyObject(exec);
            goto done;
        }
        int aborted = exec->type == REDIS_REPLY_NIL;
        freeReplyObject(exec);
        if (!aborted) {
            rc = CLI_EXIT_OK;
            goto done;
        }
        /* another client moved the pointer between GET and EXEC: read it again */
    }
    cli_error("redis_conflict", "rubric %s kept changing under concurrent pushes; try again", id);
done:
    free(hkey);
    free(ikey);
    free(vkey);
    return rc;
}

static int rubric_push(const cli_globals_t *g, int nfiles, const char **files)
{
    grading_rubric_t **rubrics = calloc((size_t)nfiles, sizeof *rubrics);
    if (!rubrics) {
        cli_error("out_of_memory", "cannot allocate the rubric list");
        return CLI_EXIT_FAILED;
    }
    int rc = CLI_EXIT_OK;
    for (int i = 0; i < nfiles; i++)
        rc = cli_exit_worst(rc, cli_rubric_load_file(files[i], &rubrics[i], NULL, NULL));
    if (rc != CLI_EXIT_OK) {
        cli_note("nothing stored: fix the rubric file%s above first", nfiles > 1 ? "s" : "");
        goto done;
    }
    redisContext *c = cli_redis_connect(g, RUBRIC_REDIS_TIMEOUT_MS, &rc);
    if (!c)
        goto done;
    for (int i = 0; i < nfiles; i++) {
        int changed = 0;
        char old[65];
        int one = rubric_store(c, g, rubrics[i], &changed, old);
        if (one != CLI_EXIT_OK) {
            rc = one;
            break;
        }
        const char *id = grading_rubric_id(rubrics[i]);
        const char *hash = grading_rubric_hash(rubrics[i]);
        printf("%s %s\n", hash, id);
        fflush(stdout);
        if (!changed)
            cli_note("%s: rubric %s unchanged (version %.12s)", files[i], id, hash);
        else if (old[0])
            cli_note("%s: stored rubric %s version %.12s (was %.12s)", files[i], id, hash, old);
        else
            cli_note("%s: stored rubric %s version %.12s (new id)", files[i], id, hash);
    }
    redisFree(c);
done:
    for (int i = 0; i < nfiles; i++)
        grading_rubric_destroy(&rubrics[i]);
    free(rubrics);
    return rc;
}

static int rubric_show(const cli_globals_t *g, const char *arg, int canonical)
{
    int rc = CLI_EXIT_OK;
    redisContext *c = cli_redis_connect(g, RUBRIC_REDIS_TIMEOUT_MS, &rc);
    if (!c)
        return rc;
    char hash[65];
    redisReply *r = NULL;
    char *key = NULL;
    if (digest_is_hex64(arg, strlen(arg))) {
        snprintf(hash, sizeof hash, "%s", arg);
    } else {
        key = cli_key(g, KEY_RUBRIC_ID, arg);
        r = key ? redisCommand(c, "GET %s", key) : NULL;
        if (!r || r->type == REDIS_REPLY_ERROR) {
            rc = rubric_redis_failure(c, r, "GET of the rubric pointer");
            goto done;
        }
        if (r->type != REDIS_REPLY_STRING) {
            cli_error("unknown_rubric", "no rubric with id '%s' in Redis (key %s)", arg, key);
            rc = CLI_EXIT_FAILED;
            goto done;
        }
        snprintf(hash, sizeof hash, "%.*s", (int)r->len, r->str);
        freeReplyObject(r);
        r = NULL;
        free(key);
    }
    key = cli_key(g, KEY_RUBRIC_HASH, hash);
    r = key ? redisCommand(c, "GET %s", key) : NULL;
    if (!r || r->type == REDIS_REPLY_ERROR) {
        rc = rubric_redis_failure(c, r, "GET of the rubric");
        goto done;
    }
    if (r->type != REDIS_REPLY_STRING) {
        cli_error("unknown_rubric", "no rubric with hash %s in Redis (key %s)", hash, key);
        rc = CLI_EXIT_FAILED;
        goto done;
    }
    if (canonical) {
        if (fwrite(r->str, 1, r->len, stdout) != r->len) {
            cli_error("write_failed", "cannot write the rubric to standard output");
            rc = CLI_EXIT_FAILED;
        }
        goto done;
    }
    msgpack_zone zone;
    msgpack_zone_init(&zone, 4096);
    msgpack_object o;
    size_t off = 0;
    json_t *j = NULL;
    if (msgpack_unpack(r->str, r->len, &off, &zone, &o) == MSGPACK_UNPACK_SUCCESS)
        j = jsonmp_to_json(&o);
    char *text = j ? json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
    if (text) {
        puts(text);
    } else {
        cli_error("corrupt_rubric", "the value under %s is not a msgpack rubric", key);
        rc = CLI_EXIT_FAILED;
    }
    free(text);
    json_decref(j);
    msgpack_zone_destroy(&zone);
done:
    freeReplyObject(r);
    free(key);
    redisFree(c);
    return rc;
}

static int rubric_lint(int nfiles, const char **files)
{
    int rc = CLI_EXIT_OK;
    for (int i = 0; i < nfiles; i++) {
        grading_rubric_t *r;
        int one = cli_rubric_load_file(files[i], &r, NULL, NULL);
        if (one == CLI_EXIT_OK) {
            printf("ok %s %s\n", grading_rubric_id(r), grading_rubric_hash(r));
            grading_rubric_destroy(&r);
        }
        rc = cli_exit_worst(rc, one);
    }
    return rc;
}

int cmd_rubric(const cli_globals_t *g, int argc, char **argv)
{
    int help = 0, canonical = 0;
    const char **pos = calloc((size_t)argc + 1, sizeof *pos);
    int npos = 0;
    const cli_flag_t flags[] = {{"canonical", 0, NULL, &canonical}, {NULL, 0, NULL, NULL}};
    if (!pos)
        return CLI_EXIT_FAILED;
    int rc = CLI_EXIT_USAGE;
    if (cli_parse_flags("rubric", argc, argv, flags, pos, &npos, &help) != 0)
        goto done;
    if (help) {
        fputs(rubric_usage, stdout);
        rc = CLI_EXIT_OK;
        goto done;
    }
    const char *sub = npos ? pos[0] : "";
    if (canonical && strcmp(sub, "show") != 0) {
        cli_error("usage", "rubric %s: --canonical applies to rubric show only", sub);
    } else if (strcmp(sub, "push") == 0 || strcmp(sub, "lint") == 0) {
        if (npos < 2)
            cli_error("usage", "rubric %s needs at least one FILE (see scoreline rubric --help)",
                      sub);
        else
            rc = sub[0] == 'p' ? rubric_push(g, npos - 1, pos + 1) : rubric_lint(npos - 1, pos + 1);
    } else if (strcmp(sub, "show") == 0) {
        if (npos != 2)
            cli_error("usage", "rubric show needs exactly one ID or HASH");
        else
            rc = rubric_show(g, pos[1], canonical);
    } else if (npos == 0) {
        cli_error("usage", "rubric needs a subcommand: push, show or lint (see scoreline rubric "
                           "--help)");
    } else {
        cli_error("usage", "unknown rubric subcommand '%s': use push, show or lint", sub);
    }
done:
    free(pos);
    return rc;
}
