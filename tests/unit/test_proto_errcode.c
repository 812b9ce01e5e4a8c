/*
 * Unit tests for src/proto/errcode.c: the table's columns, the reply's exact bytes, and
 * that docs/errors.md lists every code with its applied column (the contract for clients).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proto/errcode.h"

static void test_errcode_reply_starts_with_the_code_word_and_ends_the_line(void **state) {
    (void)state;
    struct buf b;
    buf_init(&b);
    errcode_reply(&b, ERRCODE_NOQUORUM, "node %u\r\ncut off", 3u);
    const char want[] = "-NOQUORUM node 3  cut off\r\n";
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, strlen(want));
    assert_true(errcode_is(b.data, b.len, ERRCODE_NOQUORUM));
    assert_false(errcode_is(b.data, b.len, ERRCODE_NOREPLICAS));
    buf_deinit(&b);
}

static void test_errcode_reply_cuts_a_long_detail_but_keeps_the_word(void **state) {
    (void)state;
    char detail[4000];
    memset(detail, 'x', sizeof(detail) - 1);
    detail[sizeof(detail) - 1] = '\0';
    struct buf b;
    buf_init(&b);
    errcode_reply(&b, ERRCODE_TIMEOUT, "%s", detail);
    assert_true(b.len < 1100);
    assert_true(errcode_is(b.data, b.len, ERRCODE_TIMEOUT));
    assert_memory_equal(b.data + b.len - 2, "\r\n", 2);
    buf_deinit(&b);
}

/* A write that timed out may have been applied; every other code says it was not. */
static void test_errcode_only_timeout_may_have_applied(void **state) {
    (void)state;
    for (int c = 0; c < ERRCODE_COUNT; c++) {
        enum errcode code = (enum errcode)c;
        enum errcode_applied want =
            code == ERRCODE_TIMEOUT ? ERRCODE_MAYBE_APPLIED : ERRCODE_NOT_APPLIED;
        assert_int_equal(errcode_applied(code), want);
        assert_true(strlen(errcode_meaning(code)) > 20);
    }
}

static void test_errcode_is_refuses_a_longer_word_and_plain_replies(void **state) {
    (void)state;
    const char *longer = "-TIMEOUTS x\r\n";
    assert_false(errcode_is((const uint8_t *)longer, strlen(longer), ERRCODE_TIMEOUT));
    const char *plain = "+TIMEOUT\r\n";
    assert_false(errcode_is((const uint8_t *)plain, strlen(plain), ERRCODE_TIMEOUT));
    const char *bare = "-TRYAGAIN\r\n";
    assert_true(errcode_is((const uint8_t *)bare, strlen(bare), ERRCODE_TRYAGAIN));
}

/* docs/errors.md has a row "| `WORD` | applied |" for each code, so it cannot drift. */
static void test_errcode_every_code_is_documented(void **state) {
    (void)state;
    FILE *f = fopen("docs/errors.md", "r");
    assert_non_null(f);
    static char text[65536];
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    for (int c = 0; c < ERRCODE_COUNT; c++) {
        enum errcode code = (enum errcode)c;
        char row[128];
        snprintf(row, sizeof(row), "| `%s` | %s |", errcode_word(code),
                 errcode_applied(code) == ERRCODE_MAYBE_APPLIED ? "maybe" : "no");
        if (strstr(text, row) == NULL) fail_msg("docs/errors.md lacks the row %s", row);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errcode_reply_starts_with_the_code_word_and_ends_the_line),
        cmocka_unit_test(test_errcode_reply_cuts_a_long_detail_but_keeps_the_word),
        cmocka_unit_test(test_errcode_only_timeout_may_have_applied),
        cmocka_unit_test(test_errcode_is_refuses_a_longer_word_and_plain_replies),
        cmocka_unit_test(test_errcode_every_code_is_documented),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
