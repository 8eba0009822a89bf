/*
 * cli.c - flag errors, numeric flags and stop signals for the daemons' main().
 */
#include "common/cli.h"

#include "common/config.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static const char *cli_prog = "scoreline";
static void (*cli_stop)(void);

void cli_init(const char *prog)
{
    cli_prog = prog;
}

int cli_fail(const char *msg)
{
    fprintf(stderr, "%s: %s\n", cli_prog, msg);
    fprintf(stderr, "Try '%s --help'.\n", cli_prog);
    return 2;
}

int cli_number(const char *flag, const char *text, uint64_t min, uint64_t max, uint64_t *out)
{
    char err[160], msg[256];
    if (config_parse_u64(text, min, max, out, err, sizeof err) != 0) {
        snprintf(msg, sizeof msg, "%s: %s", flag, err);
        cli_fail(msg);
        return -1;
    }
    return 0;
}

int cli_bad_option(int c, char **argv)
{
    char msg[128];
    if (c == ':')
        snprintf(msg, sizeof msg, "option '%s' needs a value", argv[optind - 1]);
    else
        snprintf(msg, sizeof msg, "unknown option '%s'", argv[optind - 1]);
    return cli_fail(msg);
}

int cli_no_operands(int argc, char **argv)
{
    if (optind >= argc)
        return 0;
    char msg[160];
    snprintf(msg, sizeof msg, "unexpected argument '%s'", argv[optind]);
    return cli_fail(msg);
}

static void on_signal(int sig)
{
    (void)sig;
    cli_stop();
}

void cli_stop_on_signals(void (*stop)(void))
{
    cli_stop = stop;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}
