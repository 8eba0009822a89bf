/*
 * util.c - the pieces every command uses: error sentences on stderr, the
 * long-flag parser, whole-file reads, the Redis connection and key names,
 * and JSON lines on stdout (see cli.h).
 */
#include "cli/cli.h"

#include "common/config.h"
#include "common/redis_url.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Write prefix + formatted sentence + newline to stderr in one write(). */
static void cli_vprint(const char *prefix, const char *fmt, va_list ap)
{
    char line[2048];
    int n = snprintf(line, sizeof line, "%s", prefix);
    if (n < 0)
        return;
    int m = vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    if (m < 0)
        return;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    fflush(stderr);
    ssize_t w = write(STDERR_FILENO, line, len);
    (void)w;
}

void cli_error(const char *code, const char *fmt, ...)
{
    char prefix[96];
    snprintf(prefix, sizeof prefix, "scoreline: [%s] ", code);
    va_list ap;
    va_start(ap, fmt);
    cli_vprint(prefix, fmt, ap);
    va_end(ap);
}

void cli_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cli_vprint("scoreline: ", fmt, ap);
    va_end(ap);
}

static int cli_exit_rank(int code)
{
    switch (code) {
    case CLI_EXIT_INTERRUPTED:
        return 4;
    case CLI_EXIT_UNAVAILABLE:
        return 3;
    case CLI_EXIT_USAGE:
        return 2;
    case CLI_EXIT_OK:
        return 0;
    default:
        return 1;
    }
}

int cli_exit_worst(int a, int b)
{
    return cli_exit_rank(b) > cli_exit_rank(a) ? b : a;
}

int cli_parse_flags(const char *command, int argc, char **argv, const cli_flag_t *flags,
                    const char **pos, int *npos, int *help)
{
    *npos = 0;
    int only_positional = 0;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (only_positional || arg[0] != '-' || strcmp(arg, "-") == 0) {
            pos[(*npos)++] = arg;
            continue;
        }
        if (strcmp(arg, "--") == 0) {
            only_positional = 1;
            continue;
        }
        if (strcmp(arg, "-h") == 0 || strcmp(arg, "--help") == 0) {
            *help = 1;
            continue;
        }
        if (arg[1] != '-') {
            cli_error("usage", "%s: unknown flag %s (flags are long: --name; see --help)", command,
                      arg);
            return -1;
        }
        const char *name = arg + 2;
        const char *eq = strchr(name, '=');
        size_t namelen = eq ? (size_t)(eq - name) : strlen(name);
        const cli_flag_t *f = flags;
        while (f && f->name && !(strlen(f->name) == namelen && !strncmp(f->name, name, namelen)))
            f++;
        if (!f || !f->name) {
            cli_error("usage", "%s: unknown flag --%.*s (see scoreline %s --help)", command,
                      (int)namelen, name, command);
            return -1;
        }
        if (!f->takes_value) {
            if (eq) {
                cli_error("usage", "%s: --%s takes no value", command, f->name);
                return -1;
            }
            *f->set = 1;
            continue;
        }
        if (eq) {
            *f->value = eq + 1;
        } else if (i + 1 < argc) {
            *f->value = argv[++i];
        } else {
            cli_error("usage", "%s: --%s needs a value", command, f->name);
            return -1;
        }
    }
    return 0;
}

int cli_parse_uint(const char *flag, const char *value, uint64_t min, uint64_t max, uint64_t *out)
{
    char err[160];
    if (config_parse_u64(value, min, max, out, err, sizeof err) != 0) {
        cli_error("usage", "--%s: %s", flag, err);
        return -1;
    }
    return 0;
}

int cli_read_file(const char *path, char **data, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f) {
        cli_error("unreadable_file", "cannot open %s: %s", path, strerror(errno));
        return -1;
    }
    size_t cap = 0, n = 0;
    char *buf = NULL;
    const char *problem = NULL;
    for (;;) {
        if (n + 1 >= cap) {
            size_t bigger = cap ? cap * 2 : 65536;
            char *p = realloc(buf, bigger);
            if (!p) {
                problem = "out of memory";
                break;
            }
            buf = p;
            cap = bigger;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0) {
            if (ferror(f))
                problem = strerror(errno);
            break;
        }
    }
    if (f != stdin)
        fclose(f);
    if (problem) {
        cli_error("unreadable_file", "cannot read %s: %s", path, problem);
        free(buf);
        return -1;
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
}

redisContext *cli_redis_connect(const cli_globals_t *g, int timeout_ms, int *exit_code)
{
    redis_url_t u;
    char err[512];
    if (redis_url_parse(g->redis_url, &u, err, sizeof err) != 0) {
        cli_error("bad_redis_url", "--redis: %s", err);
        *exit_code = CLI_EXIT_USAGE;
        return NULL;
    }
    redisContext *c = redis_url_connect(&u, timeout_ms, err, sizeof err);
    if (!c) {
        cli_error("redis_unavailable", "%s", err);
        *exit_code = CLI_EXIT_UNAVAILABLE;
        return NULL;
    }
    return c;
}

char *cli_key(const cli_globals_t *g, const char *suffix, const char *name)
{
    size_t n = strlen(g->prefix) + strlen(suffix) + strlen(name) + 1;
    char *k = malloc(n);
    if (k)
        snprintf(k, n, "%s%s%s", g->prefix, suffix, name);
    return k;
}

int cli_print_json_line(const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
    if (!s)
        return -1;
    int rc = (fputs(s, stdout) < 0 || fputc('\n', stdout) == EOF) ? -1 : 0;
    free(s);
    return rc;
}
