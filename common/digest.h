/* digest.h - SHA-256 (libsodium) as lowercase hex. */
#ifndef SCORELINE_DIGEST_H
#define SCORELINE_DIGEST_H

#include <stddef.h>

/* out receives 64 lowercase hex digits and a NUL. */
void digest_sha256_hex(const void *data, size_t len, char out[65]);
/* 1 when s is exactly 64 lowercase hex digits. */
int digest_is_hex64(const char *s, size_t len);

#endif
