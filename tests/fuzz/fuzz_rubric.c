/*
 * fuzz_rubric.c - libFuzzer harness for the rubric loader (JSON).
 *
 * Every input goes to grading_rubric_load_json. Invariants:
 *  - a refused rubric carries its code and a sentence, and lint agrees on
 *    the code;
 *  - a loaded rubric loads again from its canonical msgpack form with the
 *    same hash and the same canonical bytes, and its hash is the SHA-256 hex
 *    of those bytes;
 *  - loading the same text twice gives the same hash (no hidden state);
 *  - grading no responses at all succeeds (everything unanswered) and gives
 *    the same bytes and digest twice, under both rubric copies.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grading/grading.h"
#include <sodium.h>
#include "tests/fuzz/fuzz_rubric_common.h"

static int is_hex64(const char *s)
{
    for (int i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return s[64] == '\0';
}

static void grade_nothing(const grading_rubric_t *r, grading_result_t *res)
{
    msgpack_object empty = {.type = MSGPACK_OBJECT_MAP};
    grading_error_t e;
    grading_err_t rc = grading_grade(r, &empty, res, &e);
    if (rc == GRADING_ERR_NOMEM) {
        res->data = NULL;
        return;
    }
    CHECK(rc == GRADING_OK);
    CHECK(res->data && res->len > 0 && is_hex64(res->digest));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    grading_rubric_t *r = NULL;
    grading_error_t e;
    grading_err_t rc = grading_rubric_load_json(text, size, &r, &e);
    if (rc != GRADING_OK) {
        fuzz_check_refused(rc, r, &e);
        CHECK(grading_err_code(rc) != NULL);
        grading_error_t errs[4];
        size_t n = 0;
        CHECK(grading_rubric_lint_json(text, size, errs, 4, &n) == rc);
        CHECK(n >= 1 && n <= 4);
        return 0;
    }
    CHECK(r != NULL);
    const char *hash = grading_rubric_hash(r);
    CHECK(is_hex64(hash));
    CHECK(grading_rubric_id(r) && grading_rubric_id(r)[0] != '\0');
    CHECK(grading_rubric_memory(r) > 0);

    size_t clen = 0;
    const void *canon = grading_rubric_canonical(r, &clen);
    CHECK(canon && clen > 0);
    unsigned char h[crypto_hash_sha256_BYTES];
    char hex[65];
    crypto_hash_sha256(h, canon, clen);
    sodium_bin2hex(hex, sizeof hex, h, sizeof h);
    CHECK(strcmp(hex, hash) == 0);

    /* canonical msgpack -> the same rubric */
    grading_rubric_t *m = fuzz_check_canonical_reload(r, canon, clen);

    /* the same text again -> the same hash */
    grading_rubric_t *again = NULL;
    CHECK(grading_rubric_load_json(text, size, &again, &e) == GRADING_OK);
    CHECK(strcmp(grading_rubric_hash(again), hash) == 0);
    grading_rubric_destroy(&again);
    CHECK(again == NULL);

    size_t nlint = 7;
    CHECK(grading_rubric_lint_json(text, size, NULL, 0, &nlint) == GRADING_OK && nlint == 0);

    /* grading nothing: deterministic, identical under both copies */
    grading_result_t a, b;
    grade_nothing(r, &a);
    grade_nothing(m, &b);
    if (a.data && b.data) {
        CHECK(a.len == b.len && memcmp(a.data, b.data, a.len) == 0);
        CHECK(strcmp(a.digest, b.digest) == 0);
        char *txt = grading_explain(r, a.data, a.len);
        CHECK(txt != NULL);
        free(txt);
    }
    grading_result_free(&a);
    grading_result_free(&b);
    grading_rubric_destroy(&m);
    grading_rubric_destroy(&r);
    CHECK(r == NULL);
    return 0;
}
