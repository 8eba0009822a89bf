/*
 * rubric_file.h - loading rubric JSON files for the commands (rubric.c), and
 * printing grading errors as `scoreline: [code] FILE: PATH: problem`.
 */
#ifndef SCORELINE_CLI_RUBRIC_FILE_H
#define SCORELINE_CLI_RUBRIC_FILE_H

#include "grading/grading.h"

#include <stddef.h>

/* Read and validate a rubric JSON file. Returns 0 with *out owned by the
 * caller (and, when text is not NULL, the file's text in *text and *len, to
 * free), or an exit code after printing the error: 2 unreadable file, 1
 * invalid rubric (with its JSON path). */
int cli_rubric_load_file(const char *path, grading_rubric_t **out, char **text, size_t *len);

/* Print a grading error about file as one `scoreline: [code] ...` sentence. */
void cli_grading_error(const char *file, const grading_error_t *e);

#endif
