/*
 * fuzz_grade.c - libFuzzer harness for grading with the shipped rubric
 * (rubrics/csm-smb/csm-smb.json): every item that takes a string is answered
 * with the input bytes, and the input is also graded as a msgpack responses
 * map. See fuzz_grade_common.h for the invariants.
 */
#include "tests/fuzz/fuzz_grade_common.h"

static fuzz_grader_t grader;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    size_t len;
    char *text = fuzz_read_source_file("rubrics/csm-smb/csm-smb.json", &len);
    fuzz_grader_init(&grader, text, len);
    free(text);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_grader_run(&grader, data, size);
    return 0;
}
