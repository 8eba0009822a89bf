/*
 * main.c - `scoreline`, the command-line tool: global flags, help, version
 * and dispatch to the commands (rubric.c, grade.c, submit.c, events.c,
 * dead.c).
 *
 * Global flags (--broker, --redis, --prefix, --log-level) are accepted before
 * or after the command name; they are taken out of argv here and the rest is
 * handed to the command, which parses its own flags.
 */
#include "cli/cli.h"

#include "common/config.h"
#include "common/log.h"
#include "grading/grading.h"

#include <sodium.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef SCORELINE_VERSION
#define SCORELINE_VERSION "0.0.0"
#endif

static const char cli_usage[] =
    "Usage: scoreline [GLOBAL FLAGS] COMMAND [ARGS] [FLAGS]\n"
    "\n"
    "Deterministic scoring for hiring assessments: push rubrics, grade attempts offline,\n"
    "submit jobs to a scoreline broker and read score events.\n"
    "\n"
    "Commands:\n"
    "  rubric push FILE...        validate rubrics and store them in Redis\n"
    "  rubric show ID|HASH        print a stored rubric as JSON (--canonical: msgpack)\n"
    "  rubric lint FILE...        validate rubrics offline\n"
    "  grade RUBRIC ATTEMPT       grade one attempt offline (no broker, no Redis)\n"
    "  submit FILE...             submit attempts to the broker and print their results\n"
    "  events                     print score events from the Redis stream (--follow to tail)\n"
    "  dead list|show|retry|purge the dead-letter stream: jobs given up after too many tries\n"
    "  help [COMMAND]             show help for a command\n"
    "\n"
    "Global flags (also accepted after the command name):\n"
    "  --broker EP        broker submit endpoint     env SCORELINE_SUBMIT     "
    "default " CONFIG_DEFAULT_SUBMIT "\n"
    "  --redis URL        Redis URL                  env SCORELINE_REDIS_URL  "
    "default " CONFIG_DEFAULT_REDIS "\n"
    "                     redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] or unix://[..@]/PATH[?db=N];\n"
    "                     SCORELINE_REDIS_PASSWORD supplies the password out of argv\n"
    "  --prefix P         Redis key prefix           env SCORELINE_PREFIX     "
    "default " CONFIG_DEFAULT_PREFIX "\n"
    "  --log-level L      debug|info|warn|error|off  env SCORELINE_LOG_LEVEL  default warn\n"
    "  -h, --help         this help (`scoreline COMMAND --help` for a command)\n"
    "  --version          print the tool and grading engine versions\n"
    "\n"
    "Exit codes (all commands):\n"
    "  0    success\n"
    "  1    the operation failed: a job failed or was rejected, a rubric or attempt is\n"
    "       invalid, a grading error, an unknown rubric\n"
    "  2    usage error: bad flags or arguments, unreadable file, bad --redis URL\n"
    "  3    a service is unavailable: Redis unreachable, or the broker did not answer\n"
    "       before the timeout\n"
    "  130  interrupted (SIGINT/SIGTERM) during submit\n"
    "\n"
    "Errors are one sentence on stderr: `scoreline: [code] what went wrong`, where code is\n"
    "stable (usage, unreadable_file, invalid_json, invalid_rubric, invalid_attempt,\n"
    "invalid_response, rubric_mismatch, unknown_rubric, redis_unavailable,\n"
    "broker_unavailable, ...). Results go to stdout.\n";

static int cli_help_command(const cli_globals_t *g, const char *command)
{
    char *argv[3] = {(char *)command, "--help", NULL};
    if (strcmp(command, "rubric") == 0)
        return cmd_rubric(g, 2, argv);
    if (strcmp(command, "grade") == 0)
        return cmd_grade(g, 2, argv);
    if (strcmp(command, "submit") == 0)
        return cmd_submit(g, 2, argv);
    if (strcmp(command, "events") == 0)
        return cmd_events(g, 2, argv);
    if (strcmp(command, "dead") == 0)
        return cmd_dead(g, 2, argv);
    cli_error("usage", "unknown command '%s' (see scoreline --help)", command);
    return CLI_EXIT_USAGE;
}

/* If argv[*i] is a global flag, store its value and return 1 (advancing *i
 * past a separate value); 0 when it is not one; -1 on a missing value. */
static int cli_take_global(int argc, char **argv, int *i, cli_globals_t *g)
{
    static const struct {
        const char *name;
        size_t offset;
    } globals[] = {
        {"broker", offsetof(cli_globals_t, broker)},
        {"redis", offsetof(cli_globals_t, redis_url)},
        {"prefix", offsetof(cli_globals_t, prefix)},
        {"log-level", offsetof(cli_globals_t, log_level)},
    };
    const char *arg = argv[*i];
    if (strncmp(arg, "--", 2) != 0)
        return 0;
    for (size_t k = 0; k < sizeof globals / sizeof globals[0]; k++) {
        size_t n = strlen(globals[k].name);
        if (strncmp(arg + 2, globals[k].name, n) != 0)
            continue;
        const char **slot = (const char **)((char *)g + globals[k].offset);
        if (arg[2 + n] == '=') {
            *slot = arg + 3 + n;
            return 1;
        }
        if (arg[2 + n] != '\0')
            continue;
        if (*i + 1 >= argc) {
            cli_error("usage", "--%s needs a value", globals[k].name);
            return -1;
        }
        *slot = argv[++*i];
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    cli_globals_t g = {
        .broker = config_env("SCORELINE_SUBMIT", CONFIG_DEFAULT_SUBMIT),
        .redis_url = config_env("SCORELINE_REDIS_URL", CONFIG_DEFAULT_REDIS),
        .prefix = config_env("SCORELINE_PREFIX", CONFIG_DEFAULT_PREFIX),
        .log_level = config_env("SCORELINE_LOG_LEVEL", "warn"),
    };
    if (sodium_init() < 0) {
        cli_error("internal_error", "libsodium failed to initialise");
        return CLI_EXIT_FAILED;
    }

    /* Take the global flags out; keep everything else in order. */
    char **rest = calloc((size_t)argc + 1, sizeof *rest);
    if (!rest) {
        cli_error("out_of_memory", "cannot allocate the argument list");
        return CLI_EXIT_FAILED;
    }
    int nrest = 0, want_help = 0, want_version = 0, seen_dashdash = 0;
    for (int i = 1; i < argc; i++) {
        if (!seen_dashdash) {
            if (strcmp(argv[i], "--") == 0)
                seen_dashdash = 1;
            int took = cli_take_global(argc, argv, &i, &g);
            if (took < 0) {
                free(rest);
                return CLI_EXIT_USAGE;
            }
            if (took)
                continue;
            if (nrest == 0 && (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)) {
                want_help = 1;
                continue;
            }
            if (strcmp(argv[i], "--version") == 0) {
                want_version = 1;
                continue;
            }
        }
        rest[nrest++] = argv[i];
    }

    int level = log_level_parse(g.log_level);
    if (level < 0) {
        cli_error("usage", "--log-level: '%s' is not one of debug, info, warn, error, off",
                  g.log_level);
        free(rest);
        return CLI_EXIT_USAGE;
    }
    log_init("cli", (log_level_t)level);

    int rc;
    if (want_version) {
        printf("scoreline %s\nengine %s\n", SCORELINE_VERSION, GRADING_ENGINE);
        rc = CLI_EXIT_OK;
    } else if (want_help || nrest == 0) {
        fputs(cli_usage, nrest == 0 && !want_help ? stderr : stdout);
        rc = want_help ? CLI_EXIT_OK : CLI_EXIT_USAGE;
    } else if (strcmp(rest[0], "help") == 0) {
        if (nrest < 2) {
            fputs(cli_usage, stdout);
            rc = CLI_EXIT_OK;
        } else {
            rc = cli_help_command(&g, rest[1]);
        }
    } else if (strcmp(rest[0], "rubric") == 0) {
        rc = cmd_rubric(&g, nrest, rest);
    } else if (strcmp(rest[0], "grade") == 0) {
        rc = cmd_grade(&g, nrest, rest);
    } else if (strcmp(rest[0], "submit") == 0) {
        rc = cmd_submit(&g, nrest, rest);
    } else if (strcmp(rest[0], "events") == 0) {
        rc = cmd_events(&g, nrest, rest);
    } else if (strcmp(rest[0], "dead") == 0) {
        rc = cmd_dead(&g, nrest, rest);
    } else if (rest[0][0] == '-') {
        cli_error("usage", "unknown flag %s (see scoreline --help)", rest[0]);
        rc = CLI_EXIT_USAGE;
    } else {
        cli_error("usage", "unknown command '%s' (see scoreline --help)", rest[0]);
        rc = CLI_EXIT_USAGE;
    }
    if (fflush(stdout) != 0 && rc == CLI_EXIT_OK) {
        cli_error("write_failed", "cannot write to standard output");
        rc = CLI_EXIT_FAILED;
    }
    free(rest);
    return rc;
}
