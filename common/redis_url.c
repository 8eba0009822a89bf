/* redis_url.c - parse Redis URLs and connect with them (see redis_url.h). */
#include "common/redis_url.h"

#include "common/config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Split "[[user]:password@]rest" into credentials and rest. */
static const char *redis_url_credentials(const char *s, redis_url_t *out, char *err, size_t errlen)
{
    const char *at = strrchr(s, '@');
    if (!at)
        return s;
    const char *colon = memchr(s, ':', (size_t)(at - s));
    size_t ulen = colon ? (size_t)(colon - s) : 0;
    const char *pw = colon ? colon + 1 : s;
    size_t plen = (size_t)(at - pw);
    if (ulen >= sizeof out->user || plen >= sizeof out->password) {
        snprintf(err, errlen, "Redis URL credentials are too long");
        return NULL;
    }
    memcpy(out->user, s, ulen);
    out->user[ulen] = '\0';
    memcpy(out->password, pw, plen);
    out->password[plen] = '\0';
    return at + 1;
}

int redis_url_parse(const char *url, redis_url_t *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    out->port = 6379;
    char msg[160];
    if (!url) {
        snprintf(err, errlen, "no Redis URL given");
        return -1;
    }
    if (strncmp(url, "unix://", 7) == 0) {
        const char *rest = redis_url_credentials(url + 7, out, err, errlen);
        if (!rest)
            return -1;
        const char *q = strchr(rest, '?');
        size_t n = q ? (size_t)(q - rest) : strlen(rest);
        if (n == 0 || n >= sizeof out->unix_path) {
            snprintf(err, errlen, "'%s': unix:// needs a socket path", url);
            return -1;
        }
        memcpy(out->unix_path, rest, n);
        out->unix_path[n] = '\0';
        if (q) {
            uint64_t db;
            if (strncmp(q, "?db=", 4) != 0 || config_parse_u64(q + 4, 0, 15, &db, msg, sizeof msg)) {
                snprintf(err, errlen, "'%s': expected ?db=N (0..15) after the socket path", url);
                return -1;
            }
            out->db = (int)db;
        }
    } else if (strncmp(url, "redis://", 8) == 0) {
        const char *rest = redis_url_credentials(url + 8, out, err, errlen);
        if (!rest)
            return -1;
        const char *slash = strchr(rest, '/');
        size_t hplen = slash ? (size_t)(slash - rest) : strlen(rest);
        char hostport[300];
        if (hplen == 0 || hplen >= sizeof hostport) {
            snprintf(err, errlen, "'%s': missing host", url);
            return -1;
        }
        memcpy(hostport, rest, hplen);
        hostport[hplen] = '\0';
        /* [v6addr]:port, host:port, or host alone */
        char *h = hostport;
        char *colon = NULL;
        if (h[0] == '[') {
            char *close = strchr(h, ']');
            if (!close) {
                snprintf(err, errlen, "'%s': unterminated [address]", url);
                return -1;
            }
            *close = '\0';
            colon = close[1] == ':' ? close + 1 : NULL;
            h++;
        } else {
            colon = strrchr(h, ':');
        }
        if (colon) {
            uint64_t port;
            if (config_parse_u64(colon + 1, 1, 65535, &port, msg, sizeof msg)) {
                snprintf(err, errlen, "'%s': bad port: %s", url, msg);
                return -1;
            }
            out->port = (int)port;
            *colon = '\0';
        }
        if (!*h || strlen(h) >= sizeof out->host) {
            snprintf(err, errlen, "'%s': missing host", url);
            return -1;
        }
        strcpy(out->host, h);
        if (slash && slash[1]) {
            uint64_t db;
            if (config_parse_u64(slash + 1, 0, 15, &db, msg, sizeof msg)) {
                snprintf(err, errlen, "'%s': bad database number: %s", url, msg);
                return -1;
            }
            out->db = (int)db;
        }
    } else {
        snprintf(err, errlen, "'%s' is not a Redis URL (expected redis://HOST:PORT/DB or unix:///PATH)",
                 url);
        return -1;
    }
    const char *envpw = getenv("SCORELINE_REDIS_PASSWORD");
    if (envpw && *envpw) {
        if (strlen(envpw) >= sizeof out->password) {
            snprintf(err, errlen, "SCORELINE_REDIS_PASSWORD is too long");
            return -1;
        }
        strcpy(out->password, envpw);
    }
    return 0;
}

void redis_url_describe(const redis_url_t *u, char *out, size_t cap)
{
    if (u->unix_path[0])
        snprintf(out, cap, "unix:%s/%d", u->unix_path, u->db);
    else
        snprintf(out, cap, "%s:%d/%d", u->host, u->port, u->db);
}

redisContext *redis_url_connect(const redis_url_t *u, int timeout_ms, char *err, size_t errlen)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    char where[300];
    redis_url_describe(u, where, sizeof where);
    redisContext *c = u->unix_path[0] ? redisConnectUnixWithTimeout(u->unix_path, tv)
                                      : redisConnectWithTimeout(u->host, u->port, tv);
    if (!c) {
        snprintf(err, errlen, "cannot allocate a Redis connection");
        return NULL;
    }
    if (c->err) {
        snprintf(err, errlen, "cannot connect to Redis at %s: %s", where, c->errstr);
        redisFree(c);
        return NULL;
    }
    redisSetTimeout(c, tv);
    redisReply *r = NULL;
    if (u->password[0]) {
        r = u->user[0] ? redisCommand(c, "AUTH %s %s", u->user, u->password)
                       : redisCommand(c, "AUTH %s", u->password);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            snprintf(err, errlen, "Redis at %s refused AUTH: %s", where,
                     r ? r->str : c->errstr);
            if (r)
                freeReplyObject(r);
            redisFree(c);
            return NULL;
        }
        freeReplyObject(r);
    }
    if (u->db) {
        r = redisCommand(c, "SELECT %d", u->db);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            snprintf(err, errlen, "Redis at %s refused SELECT %d: %s", where, u->db,
                     r ? r->str : c->errstr);
            if (r)
                freeReplyObject(r);
            redisFree(c);
            return NULL;
        }
        freeReplyObject(r);
    }
    r = redisCommand(c, "PING");
    if (!r || r->type == REDIS_REPLY_ERROR) {
        snprintf(err, errlen, "Redis at %s does not answer PING: %s", where,
                 r ? r->str : c->errstr);
        if (r)
            freeReplyObject(r);
        redisFree(c);
        return NULL;
    }
    freeReplyObject(r);
    return c;
}
