/*
 * sha256.c - SHA-256 for rubric hashes and result digests.
 *
 * OpenSSL's libcrypto picks the CPU's SHA extensions (SHA-NI) when there are
 * some and optimised assembly otherwise; the digest input of a full attempt
 * is some 17 KB, and libsodium's portable SHA-256 made hashing it about a
 * quarter of the cost of grading. Same function, same bytes.
 *
 * The rubric fetches the SHA-256 implementation once (sha256_md_fetch) and
 * keeps it read-only: fetching per call costs a lookup in OpenSSL's method
 * store. A fetched EVP_MD may be used by several threads at once.
 */
#include "internal.h"

#include <openssl/evp.h>

static const char HEX[] = "0123456789abcdef";

void *sha256_md_fetch(void)
{
    return EVP_MD_fetch(NULL, "SHA2-256", NULL);
}

void sha256_md_free(void *md)
{
    EVP_MD_free(md);
}

sha256_t *sha256_begin(const void *md)
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx)
        return NULL;
    if (!EVP_DigestInit_ex2(ctx, md ? (const EVP_MD *)md : EVP_sha256(), NULL)) {
        EVP_MD_CTX_free(ctx);
        return NULL;
    }
    return (sha256_t *)ctx;
}

void sha256_update(sha256_t *h, const void *p, size_t n)
{
    if (h && n)
        EVP_DigestUpdate((EVP_MD_CTX *)h, p, n);
}

bool sha256_end(sha256_t *h, char hex[65])
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int dl = 0;
    bool ok = h && EVP_DigestFinal_ex((EVP_MD_CTX *)h, d, &dl) && dl == 32;
    EVP_MD_CTX_free((EVP_MD_CTX *)h);
    for (unsigned i = 0; i < 32; i++) {
        hex[2 * i] = ok ? HEX[d[i] >> 4] : '0';
        hex[2 * i + 1] = ok ? HEX[d[i] & 15] : '0';
    }
    hex[64] = '\0';
    return ok;
}

bool sha256_hex(const void *md, const void *p, size_t n, char hex[65])
{
    sha256_t *h = sha256_begin(md);
    sha256_update(h, p, n);
    return sha256_end(h, hex);
}
