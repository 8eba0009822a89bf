/*
 * test_common_cli.c - common/cli: the flag errors, numeric flags and stop
 * signals the broker's and the worker's main() share.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cli.h"

/* What went to stderr between capture_begin and capture_end. */
static char captured[1024];

static void capture_begin(FILE **tmp, int *saved)
{
    fflush(stderr);
    *tmp = tmpfile();
    assert_non_null(*tmp);
    *saved = dup(STDERR_FILENO);
    assert_true(*saved >= 0);
    assert_true(dup2(fileno(*tmp), STDERR_FILENO) >= 0);
}

static const char *capture_end(FILE *tmp, int saved)
{
    fflush(stderr);
    assert_true(dup2(saved, STDERR_FILENO) >= 0);
    close(saved);
    rewind(tmp);
    size_t n = fread(captured, 1, sizeof captured - 1, tmp);
    captured[n] = '\0';
    fclose(tmp);
    return captured;
}

static void test_fail_names_the_program_and_returns_2(void **state)
{
    (void)state;
    cli_init("scoreline-test");
    FILE *tmp;
    int saved;
    capture_begin(&tmp, &saved);
    int rc = cli_fail("--prefix: must be 1..127 bytes");
    assert_string_equal(capture_end(tmp, saved), "scoreline-test: --prefix: must be 1..127 bytes\n"
                                                 "Try 'scoreline-test --help'.\n");
    assert_int_equal(rc, 2);
}

static void test_number_in_range_or_a_sentence(void **state)
{
    (void)state;
    cli_init("scoreline-test");
    uint64_t v = 0;
    assert_int_equal(cli_number("--credit", "16", 1, 10000, &v), 0);
    assert_int_equal(v, 16);
    FILE *tmp;
    int saved;
    capture_begin(&tmp, &saved);
    assert_int_equal(cli_number("--credit", "0", 1, 10000, &v), -1);
    assert_string_equal(capture_end(tmp, saved),
                        "scoreline-test: --credit: 0 is out of range (1..10000)\n"
                        "Try 'scoreline-test --help'.\n");
    capture_begin(&tmp, &saved);
    assert_int_equal(cli_number("--credit", "many", 1, 10000, &v), -1);
    assert_non_null(strstr(capture_end(tmp, saved), "scoreline-test: --credit: 'many'"));
    assert_int_equal(v, 16);
}

static void test_bad_options_and_operands(void **state)
{
    (void)state;
    cli_init("scoreline-test");
    static const struct option opts[] = {{"credit", required_argument, 0, 'c'}, {0, 0, 0, 0}};
    char a0[] = "prog", a1[] = "--bogus", a2[] = "--credit", a3[] = "extra";
    char *argv1[] = {a0, a1, NULL};
    char *argv2[] = {a0, a2, NULL};
    char *argv3[] = {a0, a3, NULL};
    FILE *tmp;
    int saved;

    optind = 0; /* a fresh getopt scan */
    opterr = 0;
    int c = getopt_long(2, argv1, ":", opts, NULL);
    capture_begin(&tmp, &saved);
    assert_int_equal(cli_bad_option(c, argv1), 2);
    assert_string_equal(capture_end(tmp, saved), "scoreline-test: unknown option '--bogus'\n"
                                                 "Try 'scoreline-test --help'.\n");

    optind = 0;
    c = getopt_long(2, argv2, ":", opts, NULL);
    assert_int_equal(c, ':');
    capture_begin(&tmp, &saved);
    assert_int_equal(cli_bad_option(c, argv2), 2);
    assert_string_equal(capture_end(tmp, saved),
                        "scoreline-test: option '--credit' needs a value\n"
                        "Try 'scoreline-test --help'.\n");

    optind = 0;
    assert_int_equal(getopt_long(2, argv3, ":", opts, NULL), -1);
    capture_begin(&tmp, &saved);
    assert_int_equal(cli_no_operands(2, argv3), 2);
    assert_string_equal(capture_end(tmp, saved), "scoreline-test: unexpected argument 'extra'\n"
                                                 "Try 'scoreline-test --help'.\n");
    optind = 2;
    assert_int_equal(cli_no_operands(2, argv3), 0);
}

static volatile sig_atomic_t stops;

static void count_stop(void)
{
    stops++;
}

static void test_term_and_int_stop_and_pipe_is_ignored(void **state)
{
    (void)state;
    cli_stop_on_signals(count_stop);
    assert_int_equal(raise(SIGTERM), 0);
    assert_int_equal(raise(SIGINT), 0);
    assert_int_equal(stops, 2);
    assert_int_equal(raise(SIGPIPE), 0); /* ignored: the process lives on */
    assert_int_equal(stops, 2);
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fail_names_the_program_and_returns_2),
        cmocka_unit_test(test_number_in_range_or_a_sentence),
        cmocka_unit_test(test_bad_options_and_operands),
        cmocka_unit_test(test_term_and_int_stop_and_pipe_is_ignored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
