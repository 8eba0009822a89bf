/*
 * errors.c - error codes, their sentences and stable wire names.
 */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const MESSAGES[GRADING_ERR_COUNT] = {
    [GRADING_OK] = "success",
    [GRADING_ERR_JSON] = "the rubric is not valid JSON",
    [GRADING_ERR_INVALID_RUBRIC] = "the rubric is not valid",
    [GRADING_ERR_INVALID_RESPONSE] = "the responses do not match the rubric",
    [GRADING_ERR_LIMIT] = "an input exceeds a documented limit",
    [GRADING_ERR_NOMEM] = "out of memory",
};

static const char *const CODES[GRADING_ERR_COUNT] = {
    [GRADING_OK] = "ok",
    [GRADING_ERR_JSON] = "invalid_json",
    [GRADING_ERR_INVALID_RUBRIC] = "invalid_rubric",
    [GRADING_ERR_INVALID_RESPONSE] = "invalid_response",
    [GRADING_ERR_LIMIT] = "limit_exceeded",
    [GRADING_ERR_NOMEM] = "out_of_memory",
};

const char *grading_strerror(grading_err_t err)
{
    if ((unsigned)err >= GRADING_ERR_COUNT)
        return "unknown error";
    return MESSAGES[err];
}

const char *grading_err_code(grading_err_t err)
{
    if ((unsigned)err >= GRADING_ERR_COUNT)
        return "unknown";
    return CODES[err];
}

/* Fill err (when not NULL) with code, path and a formatted sentence. */
void err_set(grading_error_t *err, grading_err_t code, const char *path, const char *fmt, ...)
{
    if (!err)
        return;
    err->code = code;
    snprintf(err->path, sizeof err->path, "%s", path ? path : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
}

void err_clear(grading_error_t *err)
{
    if (!err)
        return;
    memset(err, 0, sizeof *err);
}
