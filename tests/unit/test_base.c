/* Unit tests for src/base: integer parsing as Redis's string2ll, glob matching as Redis's
 * stringmatchlen, the byte buffer, CRC-32C and the error table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "base/buf.h"
#include "base/crc32c.h"
#include "base/err.h"
#include "base/util.h"

static bool parse(const char *s, int64_t *v) {
    return util_parse_i64((const uint8_t *)s, strlen(s), v);
}

/* Redis string2ll: canonical decimal only. */
static void test_util_parse_i64_accepts_only_canonical_decimal(void **state) {
    (void)state;
    int64_t v;
    assert_true(parse("0", &v) && v == 0);
    assert_true(parse("-42", &v) && v == -42);
    assert_true(parse("9223372036854775807", &v) && v == INT64_MAX);
    assert_true(parse("-9223372036854775808", &v) && v == INT64_MIN);
    assert_false(parse("9223372036854775808", &v));
    assert_false(parse("-9223372036854775809", &v));
    assert_false(parse("", &v));
    assert_false(parse("-", &v));
    assert_false(parse("+1", &v));
    assert_false(parse("01", &v));
    assert_false(parse("-0", &v));
    assert_false(parse(" 1", &v));
    assert_false(parse("1 ", &v));
    assert_false(parse("1.5", &v));
    assert_false(parse("99999999999999999999", &v));
}

static void test_util_format_i64_round_trips_extremes(void **state) {
    (void)state;
    char out[UTIL_I64_DIGITS_MAX];
    int64_t cases[] = {0, 1, -1, INT64_MAX, INT64_MIN, 1234567890};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        size_t n = util_format_i64(cases[i], out);
        int64_t back;
        assert_int_equal(n, strlen(out));
        assert_true(util_parse_i64((const uint8_t *)out, n, &back));
        assert_true(back == cases[i]);
    }
}

static bool glob(const char *p, const char *s) {
    return util_glob_match((const uint8_t *)p, strlen(p), (const uint8_t *)s, strlen(s));
}

/* Redis KEYS/SCAN MATCH semantics. */
static void test_util_glob_match_follows_redis_patterns(void **state) {
    (void)state;
    assert_true(glob("*", ""));
    assert_true(glob("*", "anything"));
    assert_true(glob("h?llo", "hello"));
    assert_false(glob("h?llo", "hllo"));
    assert_true(glob("h*llo", "heeeello"));
    assert_true(glob("h[ae]llo", "hallo"));
    assert_false(glob("h[ae]llo", "hillo"));
    assert_true(glob("h[^e]llo", "hallo"));
    assert_false(glob("h[^e]llo", "hello"));
    assert_true(glob("h[a-b]llo", "hbllo"));
    assert_true(glob("h\\*llo", "h*llo"));
    assert_false(glob("h\\*llo", "hello"));
    assert_true(glob("user:*:cart", "user:42:cart"));
    assert_false(glob("user:*:cart", "user:42:carts"));
    assert_true(glob("a*b*c", "aXbYc"));
    assert_false(glob("a*b*c", "aXbY"));
}

static void test_buf_keeps_order_across_growth_and_consume(void **state) {
    (void)state;
    struct buf b;
    buf_init(&b);
    for (int i = 0; i < 10000; i++) buf_appendf(&b, "%d,", i);
    size_t total = b.len;
    buf_consume(&b, 2);
    assert_memory_equal(buf_head(&b), "1,2,", 4);
    assert_int_equal(buf_pending(&b), total - 2);
    buf_consume(&b, buf_pending(&b));
    assert_int_equal(b.len, 0);
    assert_int_equal(b.read_pos, 0);
    buf_append_u32le(&b, 0x01020304);
    assert_int_equal(base_load_u32le(buf_head(&b)), 0x01020304);
    buf_deinit(&b);
}

/* RFC 3720 B.4: CRC-32C of "123456789" is 0xE3069283. */
static void test_crc32c_matches_the_standard_check_value(void **state) {
    (void)state;
    assert_int_equal(crc32c_extend(0, "123456789", 9), 0xE3069283u);
    uint32_t split = crc32c_extend(crc32c_extend(0, "1234", 4), "56789", 5);
    assert_int_equal(split, 0xE3069283u);
    uint8_t zeros[32] = {0};
    assert_int_equal(crc32c_extend(0, zeros, 32), 0x8A9136AAu);
    /* The hardware and table paths agree on every length and alignment. */
    uint8_t bytes[300];
    for (size_t i = 0; i < sizeof(bytes); i++) bytes[i] = (uint8_t)(i * 131 + 7);
    for (size_t off = 0; off < 9; off++) {
        for (size_t len = 0; len + off <= sizeof(bytes); len += 37) {
            assert_int_equal(crc32c_extend(5, bytes + off, len), crc32c_soft(5, bytes + off, len));
        }
    }
}

static void test_err_table_names_every_code(void **state) {
    (void)state;
    assert_string_equal(err_name(ERR_CORRUPT), "ERR_CORRUPT");
    assert_string_equal(err_text(ERR_NOSPACE), "no space left on device");
    assert_string_equal(err_name(-1000), "ERR_UNKNOWN");
    struct errmsg msg;
    assert_int_equal(errmsg_set(&msg, ERR_IO, "file %s at %d", "x", 7), ERR_IO);
    assert_string_equal(msg.text, "file x at 7");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_util_parse_i64_accepts_only_canonical_decimal),
        cmocka_unit_test(test_util_format_i64_round_trips_extremes),
        cmocka_unit_test(test_util_glob_match_follows_redis_patterns),
        cmocka_unit_test(test_buf_keeps_order_across_growth_and_consume),
        cmocka_unit_test(test_crc32c_matches_the_standard_check_value),
        cmocka_unit_test(test_err_table_names_every_code),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
