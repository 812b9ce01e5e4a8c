/*
 * Unit tests for src/core/session.c: session tokens (session.h's byte table) and a
 * connection's session state.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "base/crc32c.h"
#include "core/session.h"

#define CLUSTER 0x1234abcdu

/* A token decodes to what was encoded, on the cluster it names, in either case. */
static void test_session_token_round_trips(void **state) {
    (void)state;
    uint64_t indexes[] = {0, 1, 42, 1ull << 40, UINT64_MAX};
    for (size_t i = 0; i < sizeof(indexes) / sizeof(indexes[0]); i++) {
        struct session_token t = {.cluster_id = CLUSTER, .cp_index = indexes[i]};
        char text[SESSION_TOKEN_HEX_BYTES + 1];
        session_token_encode(&t, text);
        assert_int_equal(strlen(text), SESSION_TOKEN_HEX_BYTES);
        struct session_token back = {0};
        struct errmsg msg;
        assert_int_equal(session_token_decode(text, strlen(text), CLUSTER, &back, &msg), 0);
        assert_int_equal(back.cp_index, indexes[i]);
        assert_int_equal(back.cluster_id, CLUSTER);
        for (char *p = text; *p; p++)
            if (*p >= 'a' && *p <= 'f') *p = (char)(*p - 'a' + 'A');
        assert_int_equal(session_token_decode(text, strlen(text), CLUSTER, &back, &msg), 0);
        assert_int_equal(back.cp_index, indexes[i]);
    }
}

/* The byte table of session.h and docs/formats.md, field by field. */
static void test_session_token_layout_is_the_documented_one(void **state) {
    (void)state;
    struct session_token t = {.cluster_id = 0x04030201u, .cp_index = 0x0102};
    char text[SESSION_TOKEN_HEX_BYTES + 1];
    session_token_encode(&t, text);
    assert_memory_equal(text,
                        "01"
                        "00"
                        "01020304"
                        "0201000000000000"
                        "00",
                        30);
    uint8_t raw[15] = {1, 0, 1, 2, 3, 4, 2, 1, 0, 0, 0, 0, 0, 0, 0};
    uint32_t crc = crc32c_extend(0, raw, sizeof(raw));
    char want[9];
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 4; i++) {
        uint8_t b = (uint8_t)(crc >> (8 * i));
        want[2 * i] = digits[b >> 4];
        want[2 * i + 1] = digits[b & 15];
    }
    assert_memory_equal(text + 30, want, 8);
}

/* Any flipped digit is caught (by the CRC, or as a non-hex digit), and so is a cut one. */
static void test_session_token_refuses_a_corrupt_token(void **state) {
    (void)state;
    struct session_token t = {.cluster_id = CLUSTER, .cp_index = 77};
    char text[SESSION_TOKEN_HEX_BYTES + 1];
    session_token_encode(&t, text);
    struct session_token back;
    struct errmsg msg;
    for (size_t i = 0; i < SESSION_TOKEN_HEX_BYTES; i++) {
        char saved = text[i];
        text[i] = saved == '0' ? '1' : '0';
        int rc = session_token_decode(text, SESSION_TOKEN_HEX_BYTES, CLUSTER, &back, &msg);
        assert_int_equal(rc, ERR_CORRUPT);
        text[i] = saved;
    }
    assert_int_equal(session_token_decode(text, SESSION_TOKEN_HEX_BYTES - 2, CLUSTER, &back, &msg),
                     ERR_CORRUPT);
    assert_non_null(strstr(msg.text, "hex digits"));
    text[3] = 'g';
    assert_int_equal(session_token_decode(text, SESSION_TOKEN_HEX_BYTES, CLUSTER, &back, &msg),
                     ERR_CORRUPT);
    assert_non_null(strstr(msg.text, "offset 3"));
    assert_int_equal(session_token_decode("", 0, CLUSTER, &back, &msg), ERR_CORRUPT);
}

/* A token of another cluster names both clusters; one of another version is refused as such
 * even with a valid CRC. */
static void test_session_token_refuses_another_cluster_or_version(void **state) {
    (void)state;
    struct session_token t = {.cluster_id = CLUSTER, .cp_index = 5};
    char text[SESSION_TOKEN_HEX_BYTES + 1];
    session_token_encode(&t, text);
    struct session_token back;
    struct errmsg msg;
    assert_int_equal(session_token_decode(text, strlen(text), CLUSTER + 1, &back, &msg),
                     ERR_INVALID);
    assert_non_null(strstr(msg.text, "1234abcd"));
    assert_non_null(strstr(msg.text, "1234abce"));
    uint8_t raw[15] = {2, 0, 0xcd, 0xab, 0x34, 0x12, 5, 0, 0, 0, 0, 0, 0, 0, 0};
    uint32_t crc = crc32c_extend(0, raw, sizeof(raw));
    char v2[SESSION_TOKEN_HEX_BYTES + 1];
    memcpy(v2, text, sizeof(v2));
    v2[1] = '2';
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 4; i++) {
        uint8_t b = (uint8_t)(crc >> (8 * i));
        v2[30 + 2 * i] = digits[b >> 4];
        v2[30 + 2 * i + 1] = digits[b & 15];
    }
    assert_int_equal(session_token_decode(v2, strlen(v2), CLUSTER, &back, &msg), ERR_VERSION);
}

/* The derived id is the same for one peers list in any order, differs for another. */
static void test_session_cluster_id_follows_the_voters_not_their_order(void **state) {
    (void)state;
    struct node_peer a[3] = {{1, "127.0.0.1:8001"}, {2, "127.0.0.1:8002"}, {3, "127.0.0.1:8003"}};
    struct node_peer b[3] = {a[2], a[0], a[1]};
    struct node_peer c[3] = {a[0], a[1], {3, "127.0.0.1:9003"}};
    uint32_t id = session_cluster_id(0, a, 3);
    assert_int_not_equal(id, 0);
    assert_int_equal(session_cluster_id(0, b, 3), id);
    assert_int_not_equal(session_cluster_id(0, c, 3), id);
    assert_int_equal(session_cluster_id(99, a, 3), 99);
    assert_int_not_equal(session_cluster_id(0, NULL, 0), 0);
}

/* Only a resumed session waits; its token covers what it resumed and what it saw. */
static void test_session_state_waits_only_when_resumed_and_chains(void **state) {
    (void)state;
    struct session s;
    session_reset(&s);
    session_observe(&s, 10);
    session_observe(&s, 4);
    assert_int_equal(s.cp_seen, 10);
    assert_int_equal(session_wait_index(&s), 0);
    assert_int_equal(session_token_index(&s), 10);
    s.resumed = true;
    s.cp_floor = 30;
    assert_int_equal(session_wait_index(&s), 30);
    assert_int_equal(session_token_index(&s), 30);
    session_observe(&s, 31);
    assert_int_equal(session_wait_index(&s), 31);
    session_reset(&s);
    assert_int_equal(session_token_index(&s), 0);
    assert_false(s.resumed);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_session_token_round_trips),
        cmocka_unit_test(test_session_token_layout_is_the_documented_one),
        cmocka_unit_test(test_session_token_refuses_a_corrupt_token),
        cmocka_unit_test(test_session_token_refuses_another_cluster_or_version),
        cmocka_unit_test(test_session_cluster_id_follows_the_voters_not_their_order),
        cmocka_unit_test(test_session_state_waits_only_when_resumed_and_chains),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
