/*
 * fuzz_quantity.c - libFuzzer harness for number recognition: the exact
 * decimal parser (dec_parse), the number finder of free text (numbers_find,
 * "8.3%", "$0.45M", "450 000", "8,3") and quantity items graded through the
 * public API.
 *
 * Invariants:
 *  - dec_parse accepts only normalised values (no trailing zero digits in the
 *    mantissa, zero has exponent 0, fewer than 19 digits), and what it
 *    accepts formats (dec_format) to text that parses back to the same value;
 *  - numbers_find returns spans inside the text, in order, with normalised
 *    values, the same list twice;
 *  - grading quantity items (percent, currency, count, number, decimal comma
 *    on and off, rounding) with the input as the answer is deterministic and
 *    never refused (fuzz_grade_common.h).
 */
#include "grading/internal.h"
#include "tests/fuzz/fuzz_grade_common.h"

static const char RUBRIC[] =
    "{\"id\":\"fuzz-quantity\",\"version\":\"1\",\"sections\":[{\"id\":\"s\"}],\"items\":["
    "{\"id\":\"pct\",\"type\":\"quantity\",\"section\":\"s\",\"kind\":\"percent\","
    "\"answers\":[{\"value\":\"8.3\",\"tolerance\":\"0.05\"}]},"
    "{\"id\":\"usd\",\"type\":\"quantity\",\"section\":\"s\",\"kind\":\"currency\","
    "\"unit\":\"required\",\"answers\":[{\"value\":\"450000\",\"tolerance\":\"0.01\","
    "\"tolerance_mode\":\"relative\"},{\"value\":\"45000\",\"fraction\":\"0.5\"}]},"
    "{\"id\":\"eur\",\"type\":\"quantity\",\"section\":\"s\",\"kind\":\"currency\","
    "\"currency\":\"EUR\",\"decimal_comma\":false,\"answers\":[{\"value\":\"-1.5\"}]},"
    "{\"id\":\"cnt\",\"type\":\"quantity\",\"section\":\"s\",\"kind\":\"count\","
    "\"unit\":\"ignore\",\"max_numbers\":1,\"answers\":[{\"value\":\"450000\"}]},"
    "{\"id\":\"sig\",\"type\":\"quantity\",\"section\":\"s\",\"rounding\":{\"mode\":\"sig_figs\","
    "\"digits\":2},\"answers\":[{\"value\":\"0.0123456\"}]},"
    "{\"id\":\"dp\",\"type\":\"quantity\",\"section\":\"s\",\"percent_fraction\":false,"
    "\"rounding\":{\"mode\":\"decimals\",\"digits\":0},\"answers\":[{\"value\":\"1e20\"}]}]}";

static fuzz_grader_t grader;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_grader_init(&grader, RUBRIC, sizeof RUBRIC - 1);
    CHECK(grader.n_text_items == 6);
    return 0;
}

static void check_dec_normalised(dec_t d)
{
    if (d.m == 0) {
        CHECK(d.e == 0);
        return;
    }
    CHECK(d.m % 10 != 0);
    CHECK(d.m < 1000000000000000000LL && d.m > -1000000000000000000LL);
}

static void check_dec_parse(const char *s, size_t len)
{
    dec_t d;
    if (!dec_parse(s, len, &d))
        return;
    check_dec_normalised(d);
    char buf[128];
    size_t n = dec_format(d, buf, sizeof buf);
    CHECK(n > 0 && n < sizeof buf && strlen(buf) == n);
    dec_t back;
    CHECK(dec_parse(buf, n, &back));
    CHECK(back.m == d.m && back.e == d.e);
}

static void check_numbers(const char *s, size_t len, bool decimal_comma)
{
    arena_t a = {0}, b = {0};
    qnum_t *v = NULL, *w = NULL;
    size_t n = numbers_find(&a, s, len, decimal_comma, &v);
    size_t m = numbers_find(&b, s, len, decimal_comma, &w);
    if (!a.oom && !b.oom) {
        CHECK(n == m);
        for (size_t i = 0; i < n; i++) {
            CHECK(v[i].start < v[i].end && v[i].end <= len);
            if (i)
                CHECK(v[i - 1].start <= v[i].start);
            CHECK(v[i].kind != QK_NONE && qkind_name(v[i].kind) != NULL);
            check_dec_normalised(v[i].value);
            CHECK(v[i].value.m == w[i].value.m && v[i].value.e == w[i].value.e);
            CHECK(v[i].start == w[i].start && v[i].end == w[i].end && v[i].kind == w[i].kind);
            CHECK(strcmp(v[i].currency, w[i].currency) == 0);
        }
    }
    arena_free(&a);
    arena_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *s = (const char *)data;
    check_dec_parse(s, size);
    check_numbers(s, size, true);
    check_numbers(s, size, false);
    fuzz_grader_run(&grader, data, size);
    return 0;
}
