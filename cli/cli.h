/*
 * cli.h - what the commands of the `scoreline` tool share: exit codes, the
 * global settings (--broker, --redis, --prefix, --log-level), a small flag
 * parser, error sentences and file/Redis helpers.
 *
 * main.c parses the global flags (anywhere on the command line), then hands
 * the rest to one command function:
 *
 *     int cmd_grade(const cli_globals_t *g, int argc, char **argv);
 *
 * argv[0] is the command name ("grade", or "push" for "rubric push"); the
 * function returns the process exit code. Commands print their results on
 * stdout and every error as one sentence on stderr through cli_error().
 */
#ifndef SCORELINE_CLI_H
#define SCORELINE_CLI_H

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* Exit codes, the same for every command (documented in --help and README). */
typedef enum cli_exit {
    CLI_EXIT_OK = 0,           /* success */
    CLI_EXIT_FAILED = 1,       /* the operation failed: a job failed/rejected, invalid input */
    CLI_EXIT_USAGE = 2,        /* bad flags, unreadable file */
    CLI_EXIT_UNAVAILABLE = 3,  /* Redis unreachable, broker silent until the timeout */
    CLI_EXIT_INTERRUPTED = 130 /* SIGINT/SIGTERM during submit */
} cli_exit_t;

/* The global settings, after flags > environment > defaults. */
typedef struct cli_globals {
    const char *broker;    /* SCORELINE_SUBMIT, the broker's submit endpoint */
    const char *redis_url; /* SCORELINE_REDIS_URL */
    const char *prefix;    /* SCORELINE_PREFIX */
    const char *log_level; /* SCORELINE_LOG_LEVEL */
} cli_globals_t;

/* ---- Errors ---------------------------------------------------------- */

/* Print "scoreline: [code] <sentence>\n" on stderr as one write. */
void cli_error(const char *code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Print "scoreline: <sentence>\n" on stderr (notes, summaries). */
void cli_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* The more serious of two exit codes: 130 > 3 > 2 > 1 > 0. */
int cli_exit_worst(int a, int b);

/* ---- Flags ----------------------------------------------------------- */

/* One command flag. Flags are long ("--timeout 5" or "--timeout=5"). */
typedef struct cli_flag {
    const char *name;   /* without the dashes: "timeout" */
    int takes_value;    /* 1: needs a value; 0: a switch */
    const char **value; /* where the value goes (takes_value) */
    int *set;           /* set to 1 when the switch is present (!takes_value) */
} cli_flag_t;

/* Parse argv[1..argc) against flags: flags may come anywhere, "--" ends
 * them, everything else lands in pos (in order, *npos of them; pos has room
 * for argc entries). "-h"/"--help" set *help. Returns 0, or -1 after
 * printing a usage error naming the command. */
int cli_parse_flags(const char *command, int argc, char **argv, const cli_flag_t *flags,
                    const char **pos, int *npos, int *help);

/* Parse a whole number flag value in [min, max]; -1 after a usage error. */
int cli_parse_uint(const char *flag, const char *value, uint64_t min, uint64_t max, uint64_t *out);

/* ---- Files ----------------------------------------------------------- */

/* Read a whole file ("-" is stdin) into a new NUL-terminated buffer.
 * Returns 0, or -1 after a [unreadable_file] error (exit code 2). */
int cli_read_file(const char *path, char **data, size_t *len);

/* ---- Redis ----------------------------------------------------------- */

/* Connect to g->redis_url. Returns a context, or NULL after printing the
 * error; *exit_code gets 2 (bad URL) or 3 (unreachable). */
redisContext *cli_redis_connect(const cli_globals_t *g, int timeout_ms, int *exit_code);
/* "<prefix><suffix><name>" in a new string (free it). */
char *cli_key(const cli_globals_t *g, const char *suffix, const char *name);

/* ---- Output ---------------------------------------------------------- */

/* Write a JSON value as one compact line (keys in their order) on stdout.
 * Returns 0, or -1 on a write/allocation failure. */
int cli_print_json_line(const json_t *v);

/* ---- Commands -------------------------------------------------------- */

int cmd_rubric(const cli_globals_t *g, int argc, char **argv);
int cmd_grade(const cli_globals_t *g, int argc, char **argv);
int cmd_submit(const cli_globals_t *g, int argc, char **argv);
int cmd_events(const cli_globals_t *g, int argc, char **argv);
int cmd_dead(const cli_globals_t *g, int argc, char **argv);

#endif
