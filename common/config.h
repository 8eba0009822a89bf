/*
 * config.h - flags and environment variables for the daemons and the CLI.
 *
 * Every flag has a matching environment variable (SCORELINE_REDIS_URL for
 * --redis, ...). Precedence: flag, then environment, then default.
 */
#ifndef SCORELINE_CONFIG_H
#define SCORELINE_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#define CONFIG_DEFAULT_REDIS "redis://127.0.0.1:6379/0"
#define CONFIG_DEFAULT_SUBMIT "tcp://127.0.0.1:5555"
#define CONFIG_DEFAULT_WORK "tcp://127.0.0.1:5556"
#define CONFIG_DEFAULT_EVENTS "tcp://127.0.0.1:5557"
#define CONFIG_DEFAULT_PREFIX "scoreline:"

/* The value of environment variable name, or fallback when unset or empty. */
const char *config_env(const char *name, const char *fallback);

/* Parse a decimal unsigned integer in [min, max]. Returns 0 on success, -1
 * (and a sentence in err) when s is not a number or out of range. */
int config_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out, char *err,
                     size_t errlen);

/* Parse "HOST:PORT" (for --metrics). Returns 0 or -1 with err. */
int config_parse_hostport(const char *s, char *host, size_t hostcap, int *port, char *err,
                          size_t errlen);

#endif
