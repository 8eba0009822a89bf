/*
 * fuzz_rubric_msgpack.c - libFuzzer harness for the rubric loader's msgpack
 * path (grading_rubric_load_msgpack: what a worker runs on a rubric read from
 * Redis).
 *
 * Invariants: a refused input carries its code and a sentence; a loaded one
 * has a 64-hex hash, its canonical form loads again to the same hash and the
 * same canonical bytes (canonicalisation is idempotent), and when the input
 * was already canonical the hash is that of the input bytes, i.e. the
 * canonical bytes equal the input. An input that grading_msgpack_well_formed
 * refuses (a declared size larger than the bytes that follow: msgpack-c
 * would allocate it before noticing) is refused by the loader too.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "grading/grading.h"
#include "tests/fuzz/fuzz_rubric_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    grading_rubric_t *r = NULL;
    grading_error_t e;
    grading_err_t rc = grading_rubric_load_msgpack(data, size, &r, &e);
    if (rc != GRADING_OK) {
        fuzz_check_refused(rc, r, &e);
        return 0;
    }
    CHECK(grading_msgpack_well_formed(data, size));
    CHECK(r != NULL);
    const char *hash = grading_rubric_hash(r);
    CHECK(strlen(hash) == 64);
    size_t clen = 0;
    const void *canon = grading_rubric_canonical(r, &clen);
    CHECK(canon && clen > 0);
    if (clen == size && memcmp(canon, data, size) == 0) {
        /* already canonical: nothing more to learn from a reload */
        grading_rubric_destroy(&r);
        return 0;
    }
    grading_rubric_t *m = fuzz_check_canonical_reload(r, canon, clen);
    grading_rubric_destroy(&m);
    grading_rubric_destroy(&r);
    return 0;
}
