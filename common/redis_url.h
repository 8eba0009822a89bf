/*
 * redis_url.h - Redis connection settings from a URL, and connecting with them.
 *
 *     redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]
 *     unix://[[USER]:PASSWORD@]/PATH/TO/SOCKET[?db=N]
 *
 * A password given in the URL is sent with AUTH (AUTH USER PASSWORD for a
 * Redis 6+ ACL user) right after connecting; SCORELINE_REDIS_PASSWORD, when
 * set, supplies the password instead so it stays out of process listings.
 */
#ifndef SCORELINE_REDIS_URL_H
#define SCORELINE_REDIS_URL_H

#include <hiredis/hiredis.h>
#include <stddef.h>

typedef struct redis_url {
    char host[256];
    int port;
    char unix_path[256]; /* non-empty for unix:// */
    char user[128];
    char password[256];
    int db;
} redis_url_t;

/* Parse url into out. Returns 0, or -1 with a sentence in err. */
int redis_url_parse(const char *url, redis_url_t *out, char *err, size_t errlen);

/* Connect, AUTH and SELECT. timeout_ms bounds connect and each command.
 * Returns a context, or NULL with a sentence in err. */
redisContext *redis_url_connect(const redis_url_t *u, int timeout_ms, char *err, size_t errlen);

/* "host:port/db" or the socket path, without the password, for log lines. */
void redis_url_describe(const redis_url_t *u, char *out, size_t cap);

#endif
