/*
 * sha256.c - SHA-256 for rubric hashes and result digests.
 *
 * OpenSSL's libcrypto picks the CPU's SHA extensions (SHA-NI) when there are
 * some and optimised assembly otherwise; the digest input of a full attempt
 * is some 17 KB, and libsodium's portable SHA-256 made hashing it about a
 * quarter of the cost of grading. Same function, same bytes.
 *
 * The calls are libcrypto's own SHA256_Init/Update/Final, not EVP: EVP loads
 * OpenSSL's provider machinery on first use, which costs every worker about
 * 2 MB of resident memory for the same assembly. They are deprecated in
 * OpenSSL 3 in favour of EVP but kept and tested there.
 */
#define OPENSSL_SUPPRESS_DEPRECATED
#include "internal.h"

#include <openssl/sha.h>
#include <stdlib.h>

struct sha256 {
    SHA256_CTX ctx;
};

static const char HEX[] = "0123456789abcdef";

sha256_t *sha256_begin(void)
{
    sha256_t *h = malloc(sizeof *h);
    if (h && !SHA256_Init(&h->ctx)) {
        free(h);
        return NULL;
    }
    return h;
}

void sha256_update(sha256_t *h, const void *p, size_t n)
{
    if (h && n)
        SHA256_Update(&h->ctx, p, n);
}

bool sha256_end(sha256_t *h, char hex[65])
{
    unsigned char d[SHA256_DIGEST_LENGTH];
    bool ok = h && SHA256_Final(d, &h->ctx);
    free(h);
    for (unsigned i = 0; i < 32; i++) {
        hex[2 * i] = ok ? HEX[d[i] >> 4] : '0';
        hex[2 * i + 1] = ok ? HEX[d[i] & 15] : '0';
    }
    hex[64] = '\0';
    return ok;
}

bool sha256_hex(const void *p, size_t n, char hex[65])
{
    sha256_t *h = sha256_begin();
    sha256_update(h, p, n);
    return sha256_end(h, hex);
}
