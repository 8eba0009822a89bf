/*
 * cli.h - what the daemons' main() share: refusing bad flags with exit
 * status 2 and a hint, numeric flag values, getopt's errors, and the signals
 * that stop a daemon.
 */
#ifndef SCORELINE_CLI_H
#define SCORELINE_CLI_H

#include <stdint.h>

/* The program name the messages below start with ("scoreline-broker"). */
void cli_init(const char *prog);

/* Print "<prog>: msg" and "Try '<prog> --help'." to stderr; returns 2, the
 * exit status for bad flags or configuration. */
int cli_fail(const char *msg);

/* Parse a numeric option value (flag text or environment) in [min, max]
 * into *out. Returns 0, or -1 after cli_fail("<flag>: <why>"). */
int cli_number(const char *flag, const char *text, uint64_t min, uint64_t max, uint64_t *out);

/* getopt_long (with a leading ':' in its option string) returned c, ':' or
 * '?', for argv[optind - 1]: cli_fail with "option 'X' needs a value" or
 * "unknown option 'X'". */
int cli_bad_option(int c, char **argv);

/* 0 when getopt left no operands, else cli_fail("unexpected argument 'X'"). */
int cli_no_operands(int argc, char **argv);

/* SIGTERM and SIGINT call stop (which must be async-signal-safe); SIGPIPE is
 * ignored. */
void cli_stop_on_signals(void (*stop)(void));

#endif
