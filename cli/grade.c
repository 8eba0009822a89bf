/*
 * grade.c - `scoreline grade RUBRIC ATTEMPT`: grade one attempt offline with
 * the same engine a worker runs, no broker and no Redis. The responses go
 * through the same conversion as `scoreline submit` (JSON -> msgpack with
 * keys sorted), so `--msgpack` prints exactly the bytes a worker puts under
 * "result" in its RESULT for the same rubric version.
 */
#include "cli/attempt.h"
#include "cli/cli.h"
#include "cli/explain.h"
#include "cli/rubric_file.h"

#include "common/jsonmp.h"
#include "grading/grading.h"

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char grade_usage[] =
    "Usage: scoreline grade RUBRIC_FILE ATTEMPT_FILE [--explain | --msgpack]\n"
    "\n"
    "Grade one attempt against a rubric JSON file, offline (no broker, no Redis).\n"
    "The attempt file (proto/ATTEMPT.md) is a JSON object: job_id (optional), tenant,\n"
    "candidate (optional), rubric (the rubric id), rubric_hash (optional, pins a version),\n"
    "responses (object: item id -> response), expected (optional, ignored).\n"
    "\n"
    "Output (stdout):\n"
    "  default      the result map as one line of compact JSON, keys in the engine's order:\n"
    "               the same bytes for the same rubric, responses and engine version\n"
    "  --msgpack    the raw result bytes exactly as the engine returns them (what a worker\n"
    "               puts under \"result\" in its RESULT)\n"
    "  --explain    a readable report: total, decision, per item points/max and the trace\n"
    "\n"
    "Errors (exit 1): [invalid_rubric] / [invalid_json] with the rubric's JSON path,\n"
    "[invalid_attempt] with the attempt's field, [invalid_response] / [limit_exceeded]\n"
    "with the response path, [rubric_mismatch] when the attempt names another rubric id\n"
    "(or pins another rubric_hash) than the rubric file. Unreadable file: exit 2.\n";

/* Write the result in the requested form. Returns an exit code. */
static int grade_print(const grading_rubric_t *r, const grading_result_t *res, int as_msgpack,
                       int explain)
{
    if (as_msgpack) {
        if (fwrite(res->data, 1, res->len, stdout) != res->len) {
            cli_error("write_failed", "cannot write the result to standard output");
            return CLI_EXIT_FAILED;
        }
        return CLI_EXIT_OK;
    }
    msgpack_zone zone;
    if (!msgpack_zone_init(&zone, 8192)) {
        cli_error("out_of_memory", "cannot allocate memory for the result");
        return CLI_EXIT_FAILED;
    }
    msgpack_object o;
    size_t off = 0;
    int rc = CLI_EXIT_FAILED;
    if (msgpack_unpack((const char *)res->data, res->len, &off, &zone, &o) !=
        MSGPACK_UNPACK_SUCCESS) {
        cli_error("internal_error", "the engine returned a result that is not one msgpack value");
    } else if (explain) {
        /* the engine's own report; the generic rendering when it has none */
        char *text = grading_explain(r, res->data, res->len);
        if (!text)
            text = explain_render(&o);
        if (text) {
            fputs(text, stdout);
            rc = CLI_EXIT_OK;
        } else {
            cli_error("out_of_memory", "cannot render the explanation");
        }
        free(text);
    } else {
        json_t *j = jsonmp_to_json(&o);
        if (j && cli_print_json_line(j) == 0)
            rc = CLI_EXIT_OK;
        else
            cli_error("out_of_memory", "cannot convert the result to JSON");
        json_decref(j);
    }
    msgpack_zone_destroy(&zone);
    return rc;
}

/* Load the attempt file and check it names this rubric. Returns an exit code. */
static int grade_load_attempt(const char *path, const grading_rubric_t *r, attempt_t *a)
{
    char *text;
    size_t len;
    if (cli_read_file(path, &text, &len) != 0)
        return CLI_EXIT_USAGE;
    attempt_error_t e;
    attempt_err_t rc = attempt_parse(text, len, a, &e);
    free(text);
    if (rc != ATTEMPT_OK) {
        if (e.path[0])
            cli_error(attempt_err_code(rc), "%s: %s: %s", path, e.path, e.message);
        else
            cli_error(attempt_err_code(rc), "%s: %s", path, e.message);
        return CLI_EXIT_FAILED;
    }
    if (a->rubric && strcmp(a->rubric, grading_rubric_id(r)) != 0) {
        cli_error("rubric_mismatch", "%s names rubric '%s' but the rubric file is '%s'", path,
                  a->rubric, grading_rubric_id(r));
        attempt_clear(a);
        return CLI_EXIT_FAILED;
    }
    if (a->rubric_hash && strcmp(a->rubric_hash, grading_rubric_hash(r)) != 0) {
        cli_error("rubric_mismatch", "%s pins rubric version %.12s but the rubric file is %.12s",
                  path, a->rubric_hash, grading_rubric_hash(r));
        attempt_clear(a);
        return CLI_EXIT_FAILED;
    }
    return CLI_EXIT_OK;
}

int cmd_grade(const cli_globals_t *g, int argc, char **argv)
{
    int help = 0, explain = 0, as_msgpack = 0, npos = 0;
    const cli_flag_t flags[] = {
        {"explain", 0, NULL, &explain},
        {"msgpack", 0, NULL, &as_msgpack},
        {NULL, 0, NULL, NULL},
    };
    const char **pos = calloc((size_t)argc + 1, sizeof *pos);
    if (!pos)
        return CLI_EXIT_FAILED;
    grading_rubric_t *r = NULL;
    attempt_t a = {0};
    msgpack_sbuffer resp;
    msgpack_sbuffer_init(&resp);
    msgpack_zone zone;
    msgpack_zone_init(&zone, 4096);
    int rc = CLI_EXIT_USAGE;
    if (cli_parse_flags("grade", argc, argv, flags, pos, &npos, &help) != 0)
        goto done;
    if (help) {
        fputs(grade_usage, stdout);
        rc = CLI_EXIT_OK;
        goto done;
    }
    if (npos != 2) {
        cli_error("usage", "grade needs RUBRIC_FILE and ATTEMPT_FILE (see scoreline grade --help)");
        goto done;
    }
    if (explain && as_msgpack) {
        cli_error("usage", "grade: choose one of --explain and --msgpack");
        goto done;
    }
    rc = cli_rubric_load_file(pos[0], &r, NULL, NULL);
    if (rc != CLI_EXIT_OK)
        goto done;
    rc = grade_load_attempt(pos[1], r, &a);
    if (rc != CLI_EXIT_OK)
        goto done;

    attempt_error_t ae;
    msgpack_object responses;
    size_t off = 0;
    rc = CLI_EXIT_FAILED;
    if (attempt_pack_responses(&a, &resp, &ae) != ATTEMPT_OK) {
        cli_error(attempt_err_code(ae.code), "%s: %s: %s", pos[1], ae.path, ae.message);
        goto done;
    }
    if (msgpack_unpack(resp.data, resp.size, &off, &zone, &responses) != MSGPACK_UNPACK_SUCCESS) {
        cli_error("internal_error", "%s: the responses could not be re-read as msgpack", pos[1]);
        goto done;
    }
    grading_result_t res;
    grading_error_t ge;
    memset(&res, 0, sizeof res);
    memset(&ge, 0, sizeof ge);
    grading_err_t gr = grading_grade(r, &responses, &res, &ge);
    if (gr != GRADING_OK) {
        if (ge.code == GRADING_OK)
            ge.code = gr;
        cli_grading_error(pos[1], &ge);
        goto done;
    }
    rc = grade_print(r, &res, as_msgpack, explain);
    grading_result_free(&res);
done:
    (void)g;
    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&resp);
    attempt_clear(&a);
    grading_rubric_destroy(&r);
    free(pos);
    return rc;
}
