/* config.c - flag/environment helpers (see config.h). */
#include "common/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *config_env(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return (v && *v) ? v : fallback;
}

int config_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out, char *err,
                     size_t errlen)
{
    if (!s || !*s || *s == '-' || *s == '+' || *s == ' ') {
        snprintf(err, errlen, "'%s' is not a whole number", s ? s : "");
        return -1;
    }
    errno = 0;
    char *end = NULL;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || !end || *end) {
        snprintf(err, errlen, "'%s' is not a whole number", s);
        return -1;
    }
    if (v < min || v > max) {
        snprintf(err, errlen, "%llu is out of range (%llu..%llu)", v, (unsigned long long)min,
                 (unsigned long long)max);
        return -1;
    }
    *out = v;
    return 0;
}

int config_parse_hostport(const char *s, char *host, size_t hostcap, int *port, char *err,
                          size_t errlen)
{
    const char *colon = s ? strrchr(s, ':') : NULL;
    if (!colon || colon == s || (size_t)(colon - s) >= hostcap) {
        snprintf(err, errlen, "'%s' is not HOST:PORT", s ? s : "");
        return -1;
    }
    uint64_t p;
    if (config_parse_u64(colon + 1, 1, 65535, &p, err, errlen) != 0)
        return -1;
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    *port = (int)p;
    return 0;
}
