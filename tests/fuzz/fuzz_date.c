/*
 * fuzz_date.c - libFuzzer harness for date recognition in free text
 * ("July 15, 2025", "7/15/2025", "15/7/2025", "2025-07-15", "the 15th of
 * July", "05.07.2025"), reached through the public API: the date parser is
 * private to grading/date.c, so the input is graded as the answer to date
 * items of every policy (US and EU order, one or all answers, a default year,
 * a one-date limit). Invariants: fuzz_grade_common.h.
 */
#include "tests/fuzz/fuzz_grade_common.h"

static const char RUBRIC[] =
    "{\"id\":\"fuzz-date\",\"version\":\"1\",\"sections\":[{\"id\":\"s\"}],\"items\":["
    "{\"id\":\"us\",\"type\":\"date\",\"section\":\"s\",\"answers\":[\"2025-07-15\"]},"
    "{\"id\":\"eu\",\"type\":\"date\",\"section\":\"s\",\"policy\":\"eu\",\"answers\":["
    "\"2025-07-05\"]},"
    "{\"id\":\"all\",\"type\":\"date\",\"section\":\"s\",\"points\":2,\"mode\":\"all\","
    "\"default_year\":2025,\"answers\":[\"2025-07-15\",\"2025-08-15\"]},"
    "{\"id\":\"leap\",\"type\":\"date\",\"section\":\"s\",\"policy\":\"eu\",\"max_dates\":1,"
    "\"default_year\":2024,\"answers\":[\"2024-02-29\",\"0001-01-01\",\"9999-12-31\"]}]}";

static fuzz_grader_t grader;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_grader_init(&grader, RUBRIC, sizeof RUBRIC - 1);
    CHECK(grader.n_text_items == 4);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_grader_run(&grader, data, size);
    return 0;
}
