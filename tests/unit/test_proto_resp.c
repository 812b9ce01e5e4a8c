/*
 * Unit tests for src/proto/resp.c: the request parser (multibulk and inline, every limit,
 * incremental feeding), the value scanner and the encoder's exact bytes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/resp.h"

#define S(lit) (const uint8_t *)(lit), (sizeof(lit) - 1)

struct fixture {
    struct resp_parser p;
    struct resp_request req;
    size_t consumed;
    size_t hint;
};

static struct fixture *fixture_new(uint64_t bulk_max, uint32_t args_max, uint32_t inline_max) {
    struct fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    struct resp_limits limits;
    resp_limits_default(&limits);
    if (bulk_max) limits.bulk_bytes_max = bulk_max;
    if (args_max) limits.args_max = args_max;
    if (inline_max) limits.inline_bytes_max = inline_max;
    resp_parser_init(&f->p, &limits);
    return f;
}

static void fixture_free(struct fixture *f) {
    resp_parser_deinit(&f->p);
    free(f);
}

static int parse(struct fixture *f, const uint8_t *data, size_t bytes) {
    return resp_parse(&f->p, data, bytes, &f->req, &f->consumed, &f->hint);
}

static void assert_arg(const struct fixture *f, uint32_t i, const char *data, size_t bytes) {
    assert_true(i < f->req.argc);
    assert_int_equal(f->req.argv[i].bytes, bytes);
    assert_memory_equal(f->req.argv[i].data, data, bytes);
}

/* Feeds data one more byte at a time from the same start, as a socket might. */
static int parse_byte_by_byte(struct fixture *f, const uint8_t *data, size_t bytes) {
    for (size_t n = 1; n <= bytes; n++) {
        int rc = parse(f, data, n);
        if (rc != 0) return rc;
        assert_true(f->hint > n);
    }
    return 0;
}

/* Redis's error for a failed parser, and that it stays failed until reset. */
static void assert_fails(struct fixture *f, const uint8_t *data, size_t bytes, int code,
                         const char *text) {
    assert_int_equal(parse(f, data, bytes), code);
    assert_string_equal(f->p.error_msg.text, text);
    assert_int_equal(parse(f, S("PING\r\n")), code);
    assert_string_equal(f->p.error_msg.text, text);
    resp_parser_reset(&f->p);
    assert_int_equal(parse(f, S("PING\r\n")), 6);
    assert_int_equal(f->req.argc, 1);
}

static void test_resp_parse_reads_multibulk_request(void **state) {
    (void)state;
    struct fixture *f = fixture_new(0, 0, 0);
    const uint8_t *in = (const uint8_t *)"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nvalue\r\n";
    assert_int_equal(parse(f, in, strlen((const char *)in)), 31);
    assert_int_equal(f->consumed, 31);
    assert_int_equal(f->req.argc, 3);
    assert_false(f->req.is_inline);
    assert_arg(f, 0, "SET", 3);
    assert_arg(f, 1, "k", 1);
    assert_arg(f, 2, "value", 5);
    assert_ptr_equal(f->req.argv[2].data, in + 24); /* zero-copy */
    fixture_free(f);
}

static void test_resp_parse_byte_by_byte_gives_same_request_as_whole(void **state) {
    (void)state;
    struct fixture *f = fixture_new(0, 0, 0);
    const uint8_t in[] = "*3\r\n$3\r\nSET\r\n$4\r\nk\r\nk\r\n$0\r\n\r\n";
    size_t n = sizeof(in) - 1;
    assert_int_equal(parse_byte_by_byte(f, in, n), (int)n);
    assert_int_equal(f->consumed, n);
    assert_int_equal(f->req.argc, 3);
    assert_arg(f, 1, "k\r\nk", 4);
    assert_arg(f, 2, "", 0);
    /* The same bytes for an inline command with quotes. */
    const uint8_t line[] = "set \"a b\" 'c'\r\n";
    assert_int_equal(parse_byte_by_byte(f, line, sizeof(line) - 1), (int)sizeof(line) - 1);
    assert_int_equal(f->req.argc, 3);
    assert_arg(f, 1, "a b", 3);
    fixture_free(f);
}

static void test_resp_parse_survives_buffer_moving_between_calls(void **state) {
    (void)state;
    struct fixture *f = fixture_new(0, 0, 0);
    const char *in = "*2\r\n$4\r\nECHO\r\n$5\r\nhello\r\n";
    size_t n = strlen(in);
    uint8_t *first = malloc(n);
    memcpy(first, in, 16);
    assert_int_equal(parse(f, first, 16), 0);
    uint8_t *second = malloc(n); /* the caller grew its buffer elsewhere */
    memcpy(second, first, 16);
    memset(first, 'X', 16);
    memcpy(second + 16, in + 16, n - 16);
    assert_int_equal(parse(f, second, n), (int)n);
    assert_arg(f, 0, "ECHO", 4);
    assert_arg(f, 1, "hello", 5);
    assert_ptr_equal(f->req.argv[0].data, second + 8);
    free(first);
    free(second);
    fixture_free(f);
}

static void test_resp_parse_hint_covers_the_bulk_being_read(void **state) {
    (void)state;
    struct fixture *f = fixture_new(0, 0, 0);
    assert_int_equal(parse(f, S("*2\r\n$3\r\nGET\r\n$100\r\nab")), 0);
    assert_int_equal(f->hint, 19u + 100u + 2u);
    resp_parser_reset(&f->p);
    assert_int_equal(parse(f, S("*2\r\n$3\r\nGET\r\n$10")), 0);
    assert_int_equal(f->hint, 17u);
    fixture_free(f);
}

static void test_resp_parse_reads_pipelined_requests_back_to_back(void **state) {
    (void)state;
    struct fixture *f = fixture_new(0, 0, 0);
    const char *in = "*1\r\n$4\r\nPING\r\nPING\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*0\r\n";
    size_t n = strlen(in);
    size_t pos = 0;
    const char *names[] = {"PING", "PING", "GET", NULL};
    for (int i = 0; i < 4; i++) {
        int rc = parse(f, (const uint8_t *)in + pos, n - pos);
        assert_true(rc > 0);
        if (names[i] == NULL) {
            assert_int_equal(f->req.argc, 0);
        } else {
            assert_arg(f, 0, names[i], strlen(names[i]));
        }
        assert_int_equal(f->req.is_inline, i == 1);
        pos += f->consumed;
    }
    assert_int_equal(pos, n);
    assert_int_equal(parse(f, (const uint8_t *)in + pos, 0), 0);
    fixture_free(f);
}

/* Redis: *0 and *-1 are nothing; processMultibulkBuffer returns without a command. */
static void test_resp_parse_treats_star_zero_and_minus_one_as_empty_request(void **state) {
    (void)state;
    struct fixture *f = fixture_new(0, 0, 0);
    assert_int_equal(parse(f, S("*0\r\n")), 4);
    assert_int_equal(f->req.argc, 0);
    assert_int_equal(parse(f, S("*-1\r\n*1\r\n")), 5);
    assert_int_equal(f->req.argc, 0);
    fixture_free(f);
}

static void test_resp_parse_keeps_binary_bulk_with_crlf_inside(void **state) {
    (void)state;
    struct fixture *f = fixture_new(0, 0, 0);
    assert_int_equal(parse(f, S("*1\r\n$5\r\n\r\n\0\r\n\r\n")), 15);
    assert_arg(f, 0, "\r\n\0\r\n", 5);
    fixture_free(f);
}

static void test_resp_parse_rejects_argument_that_is_not_bulk(void **state) {
    (void)state;
    struct fixture *f = fixture_new(0, 0, 0);
    assert_fails(f, S("*1\r\n:3\r\n"), ERR_PROTOCOL, "Protocol error: expected '$', got ':'");
    fixture_free(f);
}

static void test_resp_parse_rejects_bad_lengths(void **state) {
    (void)state;
    struct fixture *f = fixture_new(0, 0, 0);
    const char *mb = "Protocol error: invalid multibulk length";
    const char *bl = "Protocol error: invalid bulk length";
    assert_fails(f, S("*x\r\n"), ERR_PROTOCOL, mb);
    assert_fails(f, S("*\r\n"), ERR_PROTOCOL, mb);
    assert_fails(f, S("*01\r\n"), ERR_PROTOCOL, mb);
    assert_fails(f, S("*3000000000\r\n"), ERR_PROTOCOL, mb);
    assert_fails(f, S("*1\r\n$-1\r\n"), ERR_PROTOCOL, bl);
    assert_fails(f, S("*1\r\n$+1\r\n"), ERR_PROTOCOL, bl);
    assert_fails(f, S("*1\r\n$1x\r\n"), ERR_PROTOCOL, bl);
    fixture_free(f);
}

static void test_resp_parse_rejects_bulk_not_followed_by_crlf(void **state) {
    (void)state;
    struct fixture *f = fixture_new(0, 0, 0);
    assert_int_equal(parse(f, S("*1\r\n$3\r\nGETxx")), ERR_PROTOCOL);
    assert_int_equal(parse(f, S("*1\r\n$3\r\nGET\r\n")), ERR_PROTOCOL);
    fixture_free(f);
}

static void test_resp_parse_rejects_more_args_than_limit(void **state) {
    (void)state;
    struct fixture *f = fixture_new(0, 2, 0);
    assert_int_equal(parse(f, S("*2\r\n$1\r\na\r\n$1\r\nb\r\n")), 18);
    assert_fails(f, S("*3\r\n"), ERR_LIMIT, "Protocol error: invalid multibulk length");
    assert_fails(f, S("a b c\n"), ERR_LIMIT, "Protocol error: invalid multibulk length");
    fixture_free(f);
}

static void test_resp_parse_rejects_bulk_longer_than_limit(void **state) {
    (void)state;
    struct fixture *f = fixture_new(4, 0, 0);
    assert_int_equal(parse(f, S("*1\r\n$4\r\nabcd\r\n")), 14);
    assert_fails(f, S("*1\r\n$5\r\n"), ERR_LIMIT, "Protocol error: invalid bulk length");
    fixture_free(f);
}

static void test_resp_parse_rejects_header_without_crlf_within_inline_limit(void **state) {
    (void)state;
    struct fixture *f = fixture_new(0, 0, 8);
    assert_int_equal(parse(f, S("*1234567")), 0); /* 8 bytes: could still end */
    assert_fails(f, S("*12345678"), ERR_LIMIT, "Protocol error: too big mbulk count string");
    assert_int_equal(parse(f, S("*1\r\n$1234567")), 0);
    assert_fails(f, S("*1\r\n$12345678"), ERR_LIMIT, "Protocol error: too big bulk count string");
    fixture_free(f);
}

static void test_resp_parse_rejects_inline_line_longer_than_limit(void **state) {
    (void)state;
    struct fixture *f = fixture_new(0, 0, 8);
    assert_int_equal(parse(f, S("12345678\r\n")), 10);
    assert_int_equal(parse(f, S("12345678\r")), 0);
    resp_parser_reset(&f->p);
    assert_fails(f, S("123456789"), ERR_LIMIT, "Protocol error: too big inline request");
    assert_fails(f, S("123456789\r\n"), ERR_LIMIT, "Protocol error: too big inline request");
    /* Byte by byte meets the same limit. */
    assert_int_equal(parse_byte_by_byte(f, S("1234567890\n")), ERR_LIMIT);
    fixture_free(f);
}

static void test_resp_parse_splits_inline_like_sdssplitargs(void **state) {
    (void)state;
    struct fixture *f = fixture_new(0, 0, 0);
    assert_int_equal(parse(f, S("  set\t k  \"a\\x41\\n\\\"\" 'it\\'s' \"\"\r\n")), 34);
    assert_true(f->req.is_inline);
    assert_int_equal(f->req.argc, 5);
    assert_arg(f, 0, "set", 3);
    assert_arg(f, 1, "k", 1);
    assert_arg(f, 2, "aA\n\"", 4);
    assert_arg(f, 3, "it's", 4);
    assert_arg(f, 4, "", 0);
    assert_int_equal(parse(f, S("a\"b c\"d\n")), ERR_PROTOCOL);
    resp_parser_reset(&f->p);
    assert_int_equal(parse(f, S("a\"b c\" d\n")), 9);
    assert_arg(f, 0, "ab c", 4);
    assert_int_equal(parse(f, S("get 'x\\ny'\n")), 11);
    assert_arg(f, 1, "x\\ny", 4);
    fixture_free(f);
}

static void test_resp_parse_rejects_unbalanced_quotes(void **state) {
    (void)state;
    struct fixture *f = fixture_new(0, 0, 0);
    const char *text = "Protocol error: unbalanced quotes in request";
    assert_fails(f, S("set \"abc\n"), ERR_PROTOCOL, text);
    assert_fails(f, S("set 'abc\r\n"), ERR_PROTOCOL, text);
    assert_fails(f, S("set \"a\"b\n"), ERR_PROTOCOL, text);
    fixture_free(f);
}

static void test_resp_parse_returns_empty_request_for_empty_lines(void **state) {
    (void)state;
    struct fixture *f = fixture_new(0, 0, 0);
    assert_int_equal(parse(f, S("\r\n")), 2);
    assert_int_equal(f->req.argc, 0);
    assert_int_equal(parse(f, S("\n")), 1);
    assert_int_equal(f->req.argc, 0);
    assert_int_equal(parse(f, S(" \t \r\nPING\r\n")), 5);
    assert_int_equal(f->req.argc, 0);
    assert_int_equal(parse(f, S("")), 0);
    fixture_free(f);
}

static void test_resp_parse_reuses_arrays_after_many_arguments(void **state) {
    (void)state;
    struct fixture *f = fixture_new(0, 0, 0);
    char in[4096];
    size_t n = (size_t)snprintf(in, sizeof(in), "*100\r\n");
    for (int i = 0; i < 100; i++) {
        n += (size_t)snprintf(in + n, sizeof(in) - n, "$2\r\n%02d\r\n", i);
    }
    assert_int_equal(parse(f, (const uint8_t *)in, n), (int)n);
    assert_int_equal(f->req.argc, 100);
    assert_arg(f, 99, "99", 2);
    uint32_t cap = f->p.arg_cap;
    assert_int_equal(parse(f, S("*1\r\n$1\r\nx\r\n")), 11);
    assert_int_equal(f->p.arg_cap, cap);
    fixture_free(f);
}

/* ---- resp_scan_value ---- */

static int scan(const char *in, size_t bytes, size_t *value_bytes, uint32_t nesting) {
    struct resp_limits limits;
    resp_limits_default(&limits);
    if (nesting) limits.nesting_max = nesting;
    struct errmsg msg;
    return resp_scan_value(&limits, (const uint8_t *)in, bytes, value_bytes, &msg);
}

static void test_resp_scan_value_accepts_every_type(void **state) {
    (void)state;
    const char *values[] = {
        "+OK\r\n",
        "-ERR x\r\n",
        ":-12\r\n",
        "$3\r\na\r\n\r\n",
        "$-1\r\n",
        "*-1\r\n",
        "*2\r\n$1\r\na\r\n:1\r\n",
        "_\r\n",
        ",1.5\r\n",
        "#t\r\n",
        "(-123456789012345678901\r\n",
        "!3\r\nerr\r\n",
        "=7\r\ntxt:abc\r\n",
        "%1\r\n+k\r\n*0\r\n",
        "~1\r\n:1\r\n",
        ">2\r\n+message\r\n$1\r\nx\r\n",
        "|1\r\n+ttl\r\n:3\r\n+real\r\n",
        "$0\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        size_t n = strlen(values[i]);
        char twice[128];
        memcpy(twice, values[i], n);
        memcpy(twice + n, values[i], n);
        size_t got = 0;
        assert_int_equal(scan(twice, 2 * n, &got, 0), 1);
        assert_int_equal(got, n);
        /* Every proper prefix is incomplete. */
        for (size_t k = 0; k < n; k++) {
            assert_int_equal(scan(values[i], k, &got, 0), 0);
            assert_int_equal(got, 0);
        }
    }
}

static void test_resp_scan_value_rejects_malformed_values(void **state) {
    (void)state;
    const char *bad[] = {"?\r\n",        ":x\r\n", "#x\r\n", "_x\r\n",    "$-2\r\n", "$1\r\nab\r\n",
                         "=2\r\nab\r\n", "*?\r\n", "$?\r\n", "+a\rb\r\n", "(\r\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t got = 0;
        assert_int_equal(scan(bad[i], strlen(bad[i]), &got, 0), ERR_PROTOCOL);
    }
}

static void test_resp_scan_value_rejects_nesting_over_limit(void **state) {
    (void)state;
    size_t got = 0;
    assert_int_equal(scan("*1\r\n*1\r\n:1\r\n", 12, &got, 2), 1);
    assert_int_equal(scan("*1\r\n*1\r\n*1\r\n:1\r\n", 16, &got, 2), ERR_LIMIT);
    assert_int_equal(scan("%1\r\n~1\r\n>1\r\n:1\r\n", 16, &got, 2), ERR_LIMIT);
    /* A chain of attributes loops instead of recursing; each map is one level. */
    assert_int_equal(scan("|0\r\n|0\r\n|0\r\n:1\r\n", 16, &got, 1), 1);
    assert_int_equal(got, 16);
}

/* ---- Encoder ---- */

static void assert_buf(struct buf *b, const char *want) {
    assert_int_equal(b->len, strlen(want));
    assert_memory_equal(b->data, want, b->len);
    buf_clear(b);
}

static void test_resp_put_writes_exact_resp2_bytes(void **state) {
    (void)state;
    struct buf b;
    buf_init(&b);
    resp_put_simple(&b, "OK");
    resp_put_error(&b, "ERR bad\r\nthing");
    resp_put_errorf(&b, "ERR %s %d", "x\ny", 7);
    assert_buf(&b, "+OK\r\n-ERR bad  thing\r\n-ERR x y 7\r\n");
    resp_put_int(&b, -42);
    resp_put_int(&b, INT64_MIN);
    resp_put_bulk(&b, "a\r\nb", 4);
    resp_put_bulk(&b, "", 0);
    resp_put_bulk_str(&b, "hi");
    resp_put_bulk_i64(&b, 123);
    assert_buf(&b, ":-42\r\n:-9223372036854775808\r\n$4\r\na\r\nb\r\n$0\r\n\r\n$2\r\nhi\r\n"
                   "$3\r\n123\r\n");
    resp_put_null(&b, 2);
    resp_put_null_array(&b, 2);
    resp_put_array(&b, 3);
    resp_put_map(&b, 2, 2);
    resp_put_set(&b, 2, 1);
    resp_put_bool(&b, 2, true);
    resp_put_bool(&b, 2, false);
    assert_buf(&b, "$-1\r\n*-1\r\n*3\r\n*4\r\n*1\r\n:1\r\n:0\r\n");
    resp_put_double(&b, 2, 1.5);
    resp_put_double(&b, 2, 0.1);
    resp_put_double(&b, 2, 1.0 / 3.0);
    resp_put_double(&b, 2, INFINITY);
    resp_put_double(&b, 2, -INFINITY);
    resp_put_verbatim(&b, 2, "abc", 3);
    assert_buf(&b, "$3\r\n1.5\r\n$3\r\n0.1\r\n$18\r\n0.3333333333333333\r\n$3\r\ninf\r\n"
                   "$4\r\n-inf\r\n$3\r\nabc\r\n");
    buf_deinit(&b);
}

static void test_resp_put_writes_exact_resp3_bytes(void **state) {
    (void)state;
    struct buf b;
    buf_init(&b);
    resp_put_null(&b, 3);
    resp_put_null_array(&b, 3);
    resp_put_map(&b, 3, 2);
    resp_put_set(&b, 3, 1);
    resp_put_bool(&b, 3, true);
    resp_put_bool(&b, 3, false);
    assert_buf(&b, "_\r\n_\r\n%2\r\n~1\r\n#t\r\n#f\r\n");
    resp_put_double(&b, 3, 1.5);
    resp_put_double(&b, 3, 1e300);
    resp_put_double(&b, 3, INFINITY);
    resp_put_double(&b, 3, -INFINITY);
    resp_put_double(&b, 3, NAN);
    resp_put_verbatim(&b, 3, "abc", 3);
    assert_buf(&b, ",1.5\r\n,1e+300\r\n,inf\r\n,-inf\r\n,nan\r\n=7\r\ntxt:abc\r\n");
    buf_deinit(&b);
}

/* What the encoder writes, the scanner accepts whole. */
static void test_resp_put_output_scans_as_one_value(void **state) {
    (void)state;
    struct buf b;
    buf_init(&b);
    resp_put_map(&b, 3, 2);
    resp_put_bulk_str(&b, "k");
    resp_put_double(&b, 3, 2.5);
    resp_put_verbatim(&b, 3, "v", 1);
    resp_put_set(&b, 3, 1);
    resp_put_bool(&b, 3, true);
    size_t got = 0;
    assert_int_equal(scan((const char *)b.data, b.len, &got, 0), 1);
    assert_int_equal(got, b.len);
    buf_deinit(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resp_parse_reads_multibulk_request),
        cmocka_unit_test(test_resp_parse_byte_by_byte_gives_same_request_as_whole),
        cmocka_unit_test(test_resp_parse_survives_buffer_moving_between_calls),
        cmocka_unit_test(test_resp_parse_hint_covers_the_bulk_being_read),
        cmocka_unit_test(test_resp_parse_reads_pipelined_requests_back_to_back),
        cmocka_unit_test(test_resp_parse_treats_star_zero_and_minus_one_as_empty_request),
        cmocka_unit_test(test_resp_parse_keeps_binary_bulk_with_crlf_inside),
        cmocka_unit_test(test_resp_parse_rejects_argument_that_is_not_bulk),
        cmocka_unit_test(test_resp_parse_rejects_bad_lengths),
        cmocka_unit_test(test_resp_parse_rejects_bulk_not_followed_by_crlf),
        cmocka_unit_test(test_resp_parse_rejects_more_args_than_limit),
        cmocka_unit_test(test_resp_parse_rejects_bulk_longer_than_limit),
        cmocka_unit_test(test_resp_parse_rejects_header_without_crlf_within_inline_limit),
        cmocka_unit_test(test_resp_parse_rejects_inline_line_longer_than_limit),
        cmocka_unit_test(test_resp_parse_splits_inline_like_sdssplitargs),
        cmocka_unit_test(test_resp_parse_rejects_unbalanced_quotes),
        cmocka_unit_test(test_resp_parse_returns_empty_request_for_empty_lines),
        cmocka_unit_test(test_resp_parse_reuses_arrays_after_many_arguments),
        cmocka_unit_test(test_resp_scan_value_accepts_every_type),
        cmocka_unit_test(test_resp_scan_value_rejects_malformed_values),
        cmocka_unit_test(test_resp_scan_value_rejects_nesting_over_limit),
        cmocka_unit_test(test_resp_put_writes_exact_resp2_bytes),
        cmocka_unit_test(test_resp_put_writes_exact_resp3_bytes),
        cmocka_unit_test(test_resp_put_output_scans_as_one_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
