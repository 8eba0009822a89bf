/*
 * test_cli.c - unit tests for the pure parts of the `scoreline` CLI: attempt
 * files (parsing, validation errors and their paths), generated job ids, job
 * records built from attempts (decoded back with proto_decode_submit), score
 * events rendered as JSON, and the --explain rendering.
 *
 * tests/CMakeLists.txt links the project libraries only, so the CLI's pure
 * sources are compiled into this test directly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "cli/attempt.c"
#include "cli/event_json.c"
#include "cli/explain.c"

#include <ctype.h>

static const char full_attempt[] =
    "{\"job_id\": \"j-1\", \"tenant\": \"acme\", \"candidate\": \"cand-7\",\n"
    " \"rubric\": \"csm-smb\",\n"
    " \"rubric_hash\": \"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\",\n"
    " \"responses\": {\"zeta\": \"last\", \"alpha\": 3, \"mid\": [1, {\"b\": 2, \"a\": 1}]},\n"
    " \"expected\": {\"total\": 42}, \"future_key\": true}";

static attempt_err_t parse(const char *text, attempt_t *a, attempt_error_t *e)
{
    return attempt_parse(text, strlen(text), a, e);
}

/* ---- attempt files --------------------------------------------------- */

static void test_attempt_parse_reads_every_field(void **state)
{
    attempt_t a;
    attempt_error_t e;
    assert_int_equal(parse(full_attempt, &a, &e), ATTEMPT_OK);
    assert_string_equal(a.job_id, "j-1");
    assert_string_equal(a.tenant, "acme");
    assert_string_equal(a.candidate, "cand-7");
    assert_string_equal(a.rubric, "csm-smb");
    assert_string_equal(a.rubric_hash,
                        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
    assert_true(json_is_object(a.responses));
    assert_int_equal(json_object_size(a.responses), 3);
    attempt_clear(&a);
    assert_null(a.root);
    attempt_clear(&a); /* twice is harmless */
}

static void test_attempt_optional_fields_may_be_absent_or_null(void **state)
{
    attempt_t a;
    attempt_error_t e;
    assert_int_equal(parse("{\"responses\": {}, \"candidate\": null, \"job_id\": null}", &a, &e),
                     ATTEMPT_OK);
    assert_null(a.job_id);
    assert_null(a.tenant);
    assert_null(a.candidate);
    assert_null(a.rubric);
    assert_null(a.rubric_hash);
    attempt_clear(&a);
}

static void test_attempt_invalid_json_names_line_and_column(void **state)
{
    attempt_t a;
    attempt_error_t e;
    assert_int_equal(parse("{\"responses\": {\n  \"x\": }", &a, &e), ATTEMPT_ERR_JSON);
    assert_int_equal(e.code, ATTEMPT_ERR_JSON);
    assert_non_null(strstr(e.path, "line 2"));
    assert_string_equal(attempt_err_code(e.code), "invalid_json");
    assert_null(a.root);
}

static void test_attempt_must_be_an_object(void **state)
{
    attempt_t a;
    attempt_error_t e;
    assert_int_equal(parse("[1, 2]", &a, &e), ATTEMPT_ERR_INVALID);
    assert_string_equal(e.path, "");
    assert_non_null(strstr(e.message, "an array"));
    assert_string_equal(attempt_err_code(e.code), "invalid_attempt");
}

static void test_attempt_requires_responses_object(void **state)
{
    attempt_t a;
    attempt_error_t e;
    assert_int_equal(parse("{\"tenant\": \"t\"}", &a, &e), ATTEMPT_ERR_INVALID);
    assert_string_equal(e.path, "responses");
    assert_non_null(strstr(e.message, "missing"));
    assert_int_equal(parse("{\"responses\": [\"a\"]}", &a, &e), ATTEMPT_ERR_INVALID);
    assert_string_equal(e.path, "responses");
    assert_non_null(strstr(e.message, "expected an object"));
}

static void test_attempt_field_errors_name_the_field(void **state)
{
    attempt_t a;
    attempt_error_t e;
    assert_int_equal(parse("{\"tenant\": 5, \"responses\": {}}", &a, &e), ATTEMPT_ERR_INVALID);
    assert_string_equal(e.path, "tenant");
    assert_string_equal(e.message, "expected a string, got an integer");

    assert_int_equal(parse("{\"job_id\": \"\", \"responses\": {}}", &a, &e), ATTEMPT_ERR_INVALID);
    assert_string_equal(e.path, "job_id");

    assert_int_equal(parse("{\"rubric_hash\": \"ABC\", \"responses\": {}}", &a, &e),
                     ATTEMPT_ERR_INVALID);
    assert_string_equal(e.path, "rubric_hash");
}

static void test_attempt_rejects_job_id_over_the_protocol_limit(void **state)
{
    char text[512];
    char id[PROTO_MAX_JOB_ID + 2];
    memset(id, 'x', sizeof id - 1);
    id[sizeof id - 1] = '\0';
    snprintf(text, sizeof text, "{\"job_id\": \"%s\", \"responses\": {}}", id);
    attempt_t a;
    attempt_error_t e;
    assert_int_equal(parse(text, &a, &e), ATTEMPT_ERR_INVALID);
    assert_string_equal(e.path, "job_id");
    id[PROTO_MAX_JOB_ID] = '\0'; /* exactly the limit is fine */
    snprintf(text, sizeof text, "{\"job_id\": \"%s\", \"responses\": {}}", id);
    assert_int_equal(parse(text, &a, &e), ATTEMPT_OK);
    attempt_clear(&a);
}

static void test_attempt_rejects_control_characters_in_identifiers(void **state)
{
    attempt_t a;
    attempt_error_t e;
    assert_int_equal(parse("{\"tenant\": \"ac\\u0007me\", \"responses\": {}}", &a, &e),
                     ATTEMPT_ERR_INVALID);
    assert_string_equal(e.path, "tenant");
    assert_non_null(strstr(e.message, "control"));
    assert_int_equal(parse("{\"job_id\": \"a\\u001fb\", \"responses\": {}}", &a, &e),
                     ATTEMPT_ERR_INVALID);
    assert_string_equal(e.path, "job_id");
    /* NUL is refused by the JSON reader itself */
    assert_int_equal(parse("{\"job_id\": \"a\\u0000b\", \"responses\": {}}", &a, &e),
                     ATTEMPT_ERR_JSON);
}

static void test_attempt_empty_candidate_counts_as_absent(void **state)
{
    attempt_t a;
    attempt_error_t e;
    assert_int_equal(parse("{\"candidate\": \"\", \"responses\": {}}", &a, &e), ATTEMPT_OK);
    assert_null(a.candidate);
    attempt_clear(&a);
}

static void test_attempt_checks_item_ids_and_nesting(void **state)
{
    attempt_t a;
    attempt_error_t e;
    assert_int_equal(parse("{\"responses\": {\"\": 1}}", &a, &e), ATTEMPT_ERR_INVALID);
    assert_string_equal(e.path, "responses.");

    /* 29 levels fit in a SUBMIT (32 minus body, jobs array, job map); 30 do not */
    char text[256];
    int n = snprintf(text, sizeof text, "{\"responses\": {\"q\": ");
    for (int i = 0; i < 28; i++)
        text[n++] = '[';
    for (int i = 0; i < 28; i++)
        text[n++] = ']';
    snprintf(text + n, sizeof text - (size_t)n, "}}");
    assert_int_equal(parse(text, &a, &e), ATTEMPT_OK);
    attempt_clear(&a);
    n = snprintf(text, sizeof text, "{\"responses\": {\"q\": ");
    for (int i = 0; i < 29; i++)
        text[n++] = '[';
    for (int i = 0; i < 29; i++)
        text[n++] = ']';
    snprintf(text + n, sizeof text - (size_t)n, "}}");
    assert_int_equal(parse(text, &a, &e), ATTEMPT_ERR_INVALID);
    assert_string_equal(e.path, "responses");
    assert_non_null(strstr(e.message, "deeper"));
}

static void test_attempt_rejects_duplicate_keys(void **state)
{
    attempt_t a;
    attempt_error_t e;
    assert_int_equal(parse("{\"responses\": {\"q1\": \"a\", \"q1\": \"b\"}}", &a, &e),
                     ATTEMPT_ERR_JSON);
    assert_non_null(strstr(e.message, "duplicate"));
}

static void test_responses_bytes_do_not_depend_on_key_order(void **state)
{
    attempt_t a, b;
    attempt_error_t e;
    assert_int_equal(parse("{\"responses\": {\"b\": 1, \"a\": {\"y\": 2, \"x\": 3}}}", &a, &e),
                     ATTEMPT_OK);
    assert_int_equal(parse("{\"responses\": {\"a\": {\"x\": 3, \"y\": 2}, \"b\": 1}}", &b, &e),
                     ATTEMPT_OK);
    msgpack_sbuffer sa, sb;
    msgpack_sbuffer_init(&sa);
    msgpack_sbuffer_init(&sb);
    assert_int_equal(attempt_pack_responses(&a, &sa, &e), ATTEMPT_OK);
    assert_int_equal(attempt_pack_responses(&b, &sb, &e), ATTEMPT_OK);
    assert_int_equal(sa.size, sb.size);
    assert_memory_equal(sa.data, sb.data, sa.size);
    /* {"a": {"x": 3, "y": 2}, "b": 1} */
    static const unsigned char want[] = {0x82, 0xa1, 'a',  0x82, 0xa1, 'x', 0x03,
                                         0xa1, 'y',  0x02, 0xa1, 'b',  0x01};
    assert_int_equal(sa.size, sizeof want);
    assert_memory_equal(sa.data, want, sizeof want);
    msgpack_sbuffer_destroy(&sa);
    msgpack_sbuffer_destroy(&sb);
    attempt_clear(&a);
    attempt_clear(&b);
}

static void test_empty_responses_pack_as_an_empty_map(void **state)
{
    attempt_t a;
    attempt_error_t e;
    assert_int_equal(parse("{\"responses\": {}}", &a, &e), ATTEMPT_OK);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    assert_int_equal(attempt_pack_responses(&a, &sb, &e), ATTEMPT_OK);
    assert_int_equal(sb.size, 1);
    assert_int_equal((unsigned char)sb.data[0], 0x80);
    msgpack_sbuffer_destroy(&sb);
    attempt_clear(&a);
}

/* ---- job ids ----------------------------------------------------------- */

static void test_generated_job_id_is_job_dash_32_lowercase_hex(void **state)
{
    char a[ATTEMPT_JOB_ID_LEN + 1], b[ATTEMPT_JOB_ID_LEN + 1];
    attempt_generate_job_id(a);
    attempt_generate_job_id(b);
    assert_int_equal(strlen(a), 36);
    assert_memory_equal(a, "job-", 4);
    for (int i = 4; i < 36; i++)
        assert_true(isdigit((unsigned char)a[i]) || (a[i] >= 'a' && a[i] <= 'f'));
    assert_string_not_equal(a, b);
}

/* ---- job records --------------------------------------------------------- */

static int str_is(proto_str_t s, const char *want)
{
    return s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0;
}

/* Build a SUBMIT with the one record and decode it. */
static void decode_one(const msgpack_sbuffer *record, proto_decoder_t *d, proto_submit_t *out)
{
    msgpack_sbuffer body;
    msgpack_sbuffer_init(&body);
    const msgpack_sbuffer *maps[1] = {record};
    assert_int_equal(proto_encode_submit(&body, 7, maps, 1), 0);
    proto_error_t pe;
    assert_int_equal(proto_decode_submit(d, body.data, body.size, out, &pe), PROTO_OK);
    msgpack_sbuffer_destroy(&body);
    assert_int_equal(out->seq, 7);
    assert_int_equal(out->njobs, 1);
    assert_int_equal(out->jobs[0].err.code, PROTO_OK);
}

static void test_job_record_from_attempt_decodes_with_proto_decode_submit(void **state)
{
    attempt_t a;
    attempt_error_t e;
    assert_int_equal(parse(full_attempt, &a, &e), ATTEMPT_OK);
    attempt_job_opts_t o = {.tenant = "default", .job_id = "ignored", .rubric = "ignored"};
    msgpack_sbuffer rec;
    msgpack_sbuffer_init(&rec);
    assert_int_equal(attempt_to_job_record(&a, &o, &rec, &e), ATTEMPT_OK);

    proto_decoder_t *d = proto_decoder_new(0);
    proto_submit_t s;
    decode_one(&rec, d, &s);
    const proto_job_t *j = &s.jobs[0];
    assert_true(str_is(j->job_id, "j-1"));
    assert_true(str_is(j->tenant, "acme"));
    assert_true(str_is(j->candidate, "cand-7"));
    assert_true(str_is(j->rubric, "csm-smb"));
    assert_true(
        str_is(j->rubric_hash, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"));
    assert_int_equal(j->rubric_inline.len, 0);
    assert_non_null(j->responses);
    assert_int_equal(j->responses->type, MSGPACK_OBJECT_MAP);
    assert_int_equal(j->responses->via.map.size, 3);
    /* keys sorted bytewise: alpha, mid, zeta */
    const msgpack_object_kv *kv = j->responses->via.map.ptr;
    assert_memory_equal(kv[0].key.via.str.ptr, "alpha", 5);
    assert_memory_equal(kv[1].key.via.str.ptr, "mid", 3);
    assert_memory_equal(kv[2].key.via.str.ptr, "zeta", 4);
    assert_int_equal(kv[0].val.via.u64, 3);
    proto_decoder_destroy(&d);
    assert_null(d);
    msgpack_sbuffer_destroy(&rec);
    attempt_clear(&a);
}

static void test_job_record_takes_defaults_when_the_attempt_has_none(void **state)
{
    attempt_t a;
    attempt_error_t e;
    assert_int_equal(parse("{\"responses\": {\"q\": \"text\"}}", &a, &e), ATTEMPT_OK);
    char id[ATTEMPT_JOB_ID_LEN + 1];
    attempt_generate_job_id(id);
    static const char rubric_json[] = "{\"id\": \"csm-smb\"}";
    attempt_job_opts_t o = {.tenant = "default",
                            .job_id = id,
                            .rubric = "csm-smb",
                            .rubric_inline = rubric_json,
                            .rubric_inline_len = strlen(rubric_json),
                            .ttr_ms = 2500};
    msgpack_sbuffer rec;
    msgpack_sbuffer_init(&rec);
    assert_int_equal(attempt_to_job_record(&a, &o, &rec, &e), ATTEMPT_OK);
    proto_decoder_t *d = proto_decoder_new(0);
    proto_submit_t s;
    decode_one(&rec, d, &s);
    const proto_job_t *j = &s.jobs[0];
    assert_true(str_is(j->job_id, id));
    assert_true(str_is(j->tenant, "default"));
    assert_true(str_is(j->rubric, "csm-smb"));
    assert_int_equal(j->candidate.len, 0);
    assert_int_equal(j->rubric_hash.len, 0);
    assert_true(str_is(j->rubric_inline, rubric_json));
    assert_int_equal(j->ttr_ms, 2500);
    proto_decoder_destroy(&d);
    msgpack_sbuffer_destroy(&rec);
    attempt_clear(&a);
}

static void test_job_record_needs_job_id_tenant_and_rubric(void **state)
{
    attempt_t a;
    attempt_error_t e;
    assert_int_equal(parse("{\"responses\": {}}", &a, &e), ATTEMPT_OK);
    msgpack_sbuffer rec;
    msgpack_sbuffer_init(&rec);
    attempt_job_opts_t o = {.tenant = "t", .rubric = "r"};
    assert_int_equal(attempt_to_job_record(&a, &o, &rec, &e), ATTEMPT_ERR_INVALID);
    assert_string_equal(e.path, "job_id");
    o = (attempt_job_opts_t){.job_id = "j", .rubric = "r"};
    assert_int_equal(attempt_to_job_record(&a, &o, &rec, &e), ATTEMPT_ERR_INVALID);
    assert_string_equal(e.path, "tenant");
    o = (attempt_job_opts_t){.job_id = "j", .tenant = "t"};
    assert_int_equal(attempt_to_job_record(&a, &o, &rec, &e), ATTEMPT_ERR_INVALID);
    assert_string_equal(e.path, "rubric");
    assert_int_equal(rec.size, 0); /* nothing written on failure */
    msgpack_sbuffer_destroy(&rec);
    attempt_clear(&a);
}

/* ---- events as JSON -------------------------------------------------------- */

static void pack_event(msgpack_sbuffer *buf)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 4);
    msgpack_pack_str_with_body(&pk, "v", 1);
    msgpack_pack_uint8(&pk, 1);
    msgpack_pack_str_with_body(&pk, "job_id", 6);
    msgpack_pack_str_with_body(&pk, "j-9", 3);
    msgpack_pack_str_with_body(&pk, "tenant", 6);
    msgpack_pack_str_with_body(&pk, "acme", 4);
    msgpack_pack_str_with_body(&pk, "status", 6);
    msgpack_pack_str_with_body(&pk, "ok", 2);
}

static void test_event_json_keeps_wire_order_and_puts_stream_id_first(void **state)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    pack_event(&buf);
    json_t *ev = event_json_from_body(buf.data, buf.size, "1700000000000-3");
    assert_non_null(ev);
    char *s = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_string_equal(s, "{\"stream_id\":\"1700000000000-3\",\"v\":1,\"job_id\":\"j-9\","
                           "\"tenant\":\"acme\",\"status\":\"ok\"}");
    assert_string_equal(event_json_string(ev, "tenant"), "acme");
    assert_null(event_json_string(ev, "v"));
    free(s);
    json_decref(ev);

    ev = event_json_from_body(buf.data, buf.size, NULL);
    s = json_dumps(ev, JSON_COMPACT | JSON_PRESERVE_ORDER);
    assert_string_equal(s, "{\"v\":1,\"job_id\":\"j-9\",\"tenant\":\"acme\",\"status\":\"ok\"}");
    free(s);
    json_decref(ev);
    msgpack_sbuffer_destroy(&buf);
}

static void test_event_json_refuses_what_is_not_one_map(void **state)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    pack_event(&buf);
    msgpack_sbuffer_write(&buf, "\x01", 1); /* trailing byte */
    assert_null(event_json_from_body(buf.data, buf.size, NULL));
    assert_null(event_json_from_body(buf.data, buf.size - 3, NULL)); /* truncated */
    assert_null(event_json_from_body("\x93\x01\x02\x03", 4, NULL));  /* an array */
    assert_null(event_json_from_body("", 0, NULL));
    msgpack_sbuffer_destroy(&buf);
}

/* ---- --explain ---------------------------------------------------------- */

static void test_explain_renders_items_points_and_trace(void **state)
{
    static const char result_json[] =
        "{\"total_milli\": 7500, \"decision\": \"advance\","
        " \"items\": [{\"id\": \"q1\", \"points_milli\": 1500, \"max_milli\": 2000,"
        "   \"status\": \"scored\", \"trace\": [{\"rule\": \"element:empathy\", \"matched\": true,"
        "   \"points_milli\": 1500, \"detail\": \"acknowledges the delay\","
        "   \"evidence\": [{\"start\": 4, \"end\": 9, \"text\": \"sorry\"}]},"
        "   {\"rule\": \"element:next_step\", \"matched\": false, \"points_milli\": 0}]}],"
        " \"red_flags\": []}";
    json_error_t je;
    json_t *j = json_loads(result_json, 0, &je);
    assert_non_null(j);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    assert_int_equal(jsonmp_pack(&pk, j), 0);
    msgpack_zone zone;
    msgpack_zone_init(&zone, 1024);
    msgpack_object o;
    size_t off = 0;
    assert_int_equal(msgpack_unpack(buf.data, buf.size, &off, &zone, &o), MSGPACK_UNPACK_SUCCESS);
    char *text = explain_render(&o);
    assert_non_null(text);
    assert_non_null(strstr(text, "decision: advance\n"));
    assert_non_null(strstr(text, "total: 7.5\n"));
    assert_non_null(strstr(text, "q1  1.5/2  scored\n"));
    assert_non_null(strstr(text, "[x] element:empathy (+1.5): acknowledges the delay\n"));
    assert_non_null(strstr(text, "evidence: \"sorry\" [4..9)\n"));
    assert_non_null(strstr(text, "[ ] element:next_step (+0)\n"));
    assert_non_null(strstr(text, "red_flags: (none)\n"));
    free(text);
    msgpack_zone_destroy(&zone);
    msgpack_sbuffer_destroy(&buf);
    json_decref(j);
}

static void test_explain_formats_thousandths_exactly(void **state)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    print_milli(f, 0);
    fputc(' ', f);
    print_milli(f, 1050);
    fputc(' ', f);
    print_milli(f, -250);
    fputc(' ', f);
    print_milli(f, 12345);
    fclose(f);
    assert_string_equal(buf, "0 1.05 -0.25 12.345");
    free(buf);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_attempt_parse_reads_every_field),
        cmocka_unit_test(test_attempt_optional_fields_may_be_absent_or_null),
        cmocka_unit_test(test_attempt_invalid_json_names_line_and_column),
        cmocka_unit_test(test_attempt_must_be_an_object),
        cmocka_unit_test(test_attempt_requires_responses_object),
        cmocka_unit_test(test_attempt_field_errors_name_the_field),
        cmocka_unit_test(test_attempt_rejects_job_id_over_the_protocol_limit),
        cmocka_unit_test(test_attempt_rejects_control_characters_in_identifiers),
        cmocka_unit_test(test_attempt_empty_candidate_counts_as_absent),
        cmocka_unit_test(test_attempt_checks_item_ids_and_nesting),
        cmocka_unit_test(test_attempt_rejects_duplicate_keys),
        cmocka_unit_test(test_responses_bytes_do_not_depend_on_key_order),
        cmocka_unit_test(test_empty_responses_pack_as_an_empty_map),
        cmocka_unit_test(test_generated_job_id_is_job_dash_32_lowercase_hex),
        cmocka_unit_test(test_job_record_from_attempt_decodes_with_proto_decode_submit),
        cmocka_unit_test(test_job_record_takes_defaults_when_the_attempt_has_none),
        cmocka_unit_test(test_job_record_needs_job_id_tenant_and_rubric),
        cmocka_unit_test(test_event_json_keeps_wire_order_and_puts_stream_id_first),
        cmocka_unit_test(test_event_json_refuses_what_is_not_one_map),
        cmocka_unit_test(test_explain_renders_items_points_and_trace),
        cmocka_unit_test(test_explain_formats_thousandths_exactly),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
