/*
 * fuzz_rubric_common.h - the checks the two rubric loader harnesses share
 * (fuzz_rubric for JSON, fuzz_rubric_msgpack for msgpack): what a refusal
 * carries, and the canonical form's round trip.
 */
#ifndef SCORELINE_FUZZ_RUBRIC_COMMON_H
#define SCORELINE_FUZZ_RUBRIC_COMMON_H

#include <stdio.h>
#include <string.h>

#include "grading/grading.h"
#include "tests/fuzz/fuzz_common.h"

/* A refused load: no rubric, and the error has the code and a sentence. */
static inline void fuzz_check_refused(grading_err_t rc, const grading_rubric_t *r,
                                      const grading_error_t *e)
{
    CHECK(r == NULL);
    CHECK(e->code == rc && e->message[0] != '\0');
}

/* The canonical form of r (canon, clen bytes) loads again with the same hash
 * and the same canonical bytes. Returns the reloaded rubric. */
static inline grading_rubric_t *fuzz_check_canonical_reload(const grading_rubric_t *r,
                                                            const void *canon, size_t clen)
{
    grading_rubric_t *m = NULL;
    grading_error_t e;
    grading_err_t rc = grading_rubric_load_msgpack(canon, clen, &m, &e);
    if (rc != GRADING_OK) {
        fprintf(stderr, "canonical form refused: %s: %s: %s\n", grading_err_code(rc), e.path,
                e.message);
        CHECK(rc == GRADING_OK);
    }
    CHECK(strcmp(grading_rubric_hash(m), grading_rubric_hash(r)) == 0);
    size_t clen2 = 0;
    const void *canon2 = grading_rubric_canonical(m, &clen2);
    CHECK(clen2 == clen && memcmp(canon2, canon, clen) == 0);
    return m;
}

#endif
