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
#include "base/util.h"
#include "core/session.h"

#define CLUSTER 0x1234abcdu

#define HEX_MIN (2 * SESSION_TOKEN_BYTES_MIN)

/* t (and ap, or none) as a token's text, NUL-ended in out (room for 2 KB). */
static void token_text(const struct session_token *t, const struct seen_map *ap, char *out) {
    struct seen_map none;
    seen_map_init(&none);
    struct buf b;
    buf_init(&b);
    session_token_encode(t, ap != NULL ? ap : &none, &b);
    assert_true(b.len < 2048);
    memcpy(out, b.data, b.len);
    out[b.len] = '\0';
    buf_deinit(&b);
}

static int token_decode(const char *text, size_t bytes, uint32_t cluster, struct session_token *t,
                        struct errmsg *msg) {
    struct seen_map ap;
    seen_map_init(&ap);
    int rc = session_token_decode(text, bytes, cluster, t, &ap, msg);
    seen_map_deinit(&ap);
    return rc;
}

/* A token decodes to what was encoded, on the cluster it names, in either case. */
static void test_session_token_round_trips(void **state) {
    (void)state;
    uint64_t indexes[] = {0, 1, 42, 1ull << 40, UINT64_MAX};
    for (size_t i = 0; i < sizeof(indexes) / sizeof(indexes[0]); i++) {
        struct session_token t = {.cluster_id = CLUSTER, .cp_index = indexes[i]};
        char text[2048];
        token_text(&t, NULL, text);
        assert_int_equal(strlen(text), HEX_MIN);
        struct session_token back = {0};
        struct errmsg msg;
        assert_int_equal(token_decode(text, strlen(text), CLUSTER, &back, &msg), 0);
        assert_int_equal(back.cp_index, indexes[i]);
        assert_int_equal(back.cluster_id, CLUSTER);
        for (char *p = text; *p; p++)
            if (*p >= 'a' && *p <= 'f') *p = (char)(*p - 'a' + 'A');
        assert_int_equal(token_decode(text, strlen(text), CLUSTER, &back, &msg), 0);
        assert_int_equal(back.cp_index, indexes[i]);
    }
}

/* The CRC of raw (n bytes) as the token's last 8 hex digits. */
static void crc_hex(const uint8_t *raw, size_t n, char *out) {
    uint8_t le[4];
    base_store_u32le(le, crc32c_extend(0, raw, n));
    util_hex_encode(le, 4, out);
}

/* The byte table of session.h and docs/formats.md, field by field. */
static void test_session_token_layout_is_the_documented_one(void **state) {
    (void)state;
    struct session_token t = {.cluster_id = 0x04030201u, .cp_index = 0x0102};
    char text[2048];
    token_text(&t, NULL, text);
    assert_memory_equal(text,
                        "02"
                        "00"
                        "01020304"
                        "0201000000000000"
                        "00",
                        30);
    uint8_t raw[15] = {2, 0, 1, 2, 3, 4, 2, 1, 0, 0, 0, 0, 0, 0, 0};
    char want[9];
    crc_hex(raw, sizeof(raw), want);
    assert_memory_equal(text + 30, want, 8);
    /* A version 1 token (no AP keys) is still read. */
    raw[0] = 1;
    char v1[HEX_MIN + 1];
    util_hex_encode(raw, sizeof(raw), v1);
    crc_hex(raw, sizeof(raw), v1 + 30);
    struct session_token back;
    struct errmsg msg;
    assert_int_equal(token_decode(v1, HEX_MIN, 0x04030201u, &back, &msg), 0);
    assert_int_equal(back.cp_index, 0x0102);
}

/* Any flipped digit is caught (by the CRC, or as a non-hex digit), and so is a cut one. */
static void test_session_token_refuses_a_corrupt_token(void **state) {
    (void)state;
    struct session_token t = {.cluster_id = CLUSTER, .cp_index = 77};
    struct seen_map ap;
    seen_map_init(&ap);
    struct seen_key k = {.hash = 5, .count = 2, .actor = {1, 2}, .counter = {3, 4}};
    assert_true(seen_map_add(&ap, &k));
    char text[2048];
    token_text(&t, &ap, text);
    seen_map_deinit(&ap);
    size_t n = strlen(text);
    assert_int_equal(n, HEX_MIN + 2 * (9 + 2 * 16));
    struct session_token back;
    struct errmsg msg;
    for (size_t i = 0; i < n; i++) {
        char saved = text[i];
        text[i] = saved == '0' ? '1' : '0';
        assert_int_equal(token_decode(text, n, CLUSTER, &back, &msg), ERR_CORRUPT);
        text[i] = saved;
    }
    assert_int_equal(token_decode(text, n, CLUSTER, &back, &msg), 0);
    assert_int_equal(token_decode(text, n - 2, CLUSTER, &back, &msg), ERR_CORRUPT);
    assert_int_equal(token_decode(text, HEX_MIN - 2, CLUSTER, &back, &msg), ERR_CORRUPT);
    assert_non_null(strstr(msg.text, "hex digits"));
    text[3] = 'g';
    assert_int_equal(token_decode(text, n, CLUSTER, &back, &msg), ERR_CORRUPT);
    assert_non_null(strstr(msg.text, "offset 3"));
    assert_int_equal(token_decode("", 0, CLUSTER, &back, &msg), ERR_CORRUPT);
}

/* A token whose AP key count or entries disagree is refused even with a valid CRC. */
static void test_session_token_refuses_bad_ap_keys(void **state) {
    (void)state;
    /* header, count 1, then an entry whose counter is 0 (never given out) */
    uint8_t raw[15 + 9 + 16 + 4] = {2, 0, 0xcd, 0xab, 0x34, 0x12, 5, 0, 0, 0, 0, 0, 0, 0, 1};
    base_store_u64le(raw + 15, 7);
    raw[23] = 1;
    base_store_u64le(raw + 24, 9);
    base_store_u64le(raw + 32, 0);
    char text[2 * sizeof(raw) + 1];
    for (int good = 0; good < 3; good++) {
        if (good == 1) base_store_u64le(raw + 32, 3);
        if (good == 2) raw[14] = 2; /* the count says 2, one follows */
        base_store_u32le(raw + 40, crc32c_extend(0, raw, 40));
        util_hex_encode(raw, sizeof(raw), text);
        struct session_token back;
        struct seen_map ap;
        seen_map_init(&ap);
        struct errmsg msg;
        int rc = session_token_decode(text, sizeof(text) - 1, CLUSTER, &back, &ap, &msg);
        assert_int_equal(rc, good == 1 ? 0 : ERR_CORRUPT);
        assert_int_equal(ap.count, good == 1 ? 1 : 0);
        if (good == 1) assert_int_equal(ap.keys[0].counter[0], 3);
        seen_map_deinit(&ap);
    }
}

/* A token of another cluster names both clusters; one of another version is refused as such
 * even with a valid CRC. */
static void test_session_token_refuses_another_cluster_or_version(void **state) {
    (void)state;
    struct session_token t = {.cluster_id = CLUSTER, .cp_index = 5};
    char text[2048];
    token_text(&t, NULL, text);
    struct session_token back;
    struct errmsg msg;
    assert_int_equal(token_decode(text, strlen(text), CLUSTER + 1, &back, &msg), ERR_INVALID);
    assert_non_null(strstr(msg.text, "1234abcd"));
    assert_non_null(strstr(msg.text, "1234abce"));
    uint8_t raw[15] = {3, 0, 0xcd, 0xab, 0x34, 0x12, 5, 0, 0, 0, 0, 0, 0, 0, 0};
    char v3[HEX_MIN + 1];
    util_hex_encode(raw, sizeof(raw), v3);
    crc_hex(raw, sizeof(raw), v3 + 30);
    v3[HEX_MIN] = '\0';
    assert_int_equal(token_decode(v3, HEX_MIN, CLUSTER, &back, &msg), ERR_VERSION);
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
    struct session s = {0};
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

/* A session's AP keys: observations join per actor, a resumed token's too; the floor is
 * given only while resumed; past SEEN_KEYS_MAX keys the map is full and stays so. */
static void test_session_ap_keys_join_and_bound(void **state) {
    (void)state;
    struct session s = {0};
    struct buf seen;
    buf_init(&seen);
    struct seen_key a = {.hash = 10, .count = 2, .actor = {1, 2}, .counter = {5, 1}};
    struct seen_key b = {.hash = 10, .count = 2, .actor = {2, 3}, .counter = {4, 2}};
    seen_put(&seen, &a);
    seen_put(&seen, &b);
    session_observe_ap(&s, seen.data, seen.len);
    assert_int_equal(s.ap.count, 1);
    const struct seen_key *k = &s.ap.keys[0];
    assert_int_equal(k->count, 3);
    assert_int_equal(k->counter[0], 5);
    assert_int_equal(k->counter[1], 4);
    assert_int_equal(k->counter[2], 2);
    size_t bytes = 0;
    assert_null(session_ap_floor(&s, &bytes));
    struct seen_map token;
    seen_map_init(&token);
    struct seen_key c = {.hash = 3, .count = 1, .actor = {7}, .counter = {1}};
    assert_true(seen_map_add(&token, &c));
    assert_true(session_resume_ap(&s, &token));
    s.resumed = true;
    const uint8_t *floor = session_ap_floor(&s, &bytes);
    assert_non_null(floor);
    struct seen_key got;
    assert_true(seen_find(floor, bytes, 3, &got));
    assert_true(seen_find(floor, bytes, 10, &got) && got.count == 3);
    assert_false(seen_find(floor, bytes, 4, &got));
    /* More writers than an entry names: the session cannot promise that key. */
    struct seen_key many = {.hash = 99, .count = 0};
    buf_clear(&seen);
    seen_put(&seen, &many);
    session_observe_ap(&s, seen.data, seen.len);
    assert_true(s.ap.full);
    session_reset(&s);
    assert_false(s.ap.full);
    for (uint32_t i = 0; i < SEEN_KEYS_MAX + 1; i++) {
        struct seen_key one = {.hash = 1000 + i, .count = 1, .actor = {1}, .counter = {1}};
        buf_clear(&seen);
        seen_put(&seen, &one);
        session_observe_ap(&s, seen.data, seen.len);
        assert_int_equal(s.ap.full, i == SEEN_KEYS_MAX);
    }
    assert_false(session_resume_ap(&s, &token)); /* unchanged: still full, still 128 */
    assert_int_equal(s.ap.count, SEEN_KEYS_MAX);
    seen_map_deinit(&token);
    session_reset(&s);
    buf_deinit(&seen);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_session_token_round_trips),
        cmocka_unit_test(test_session_token_layout_is_the_documented_one),
        cmocka_unit_test(test_session_token_refuses_a_corrupt_token),
        cmocka_unit_test(test_session_token_refuses_bad_ap_keys),
        cmocka_unit_test(test_session_token_refuses_another_cluster_or_version),
        cmocka_unit_test(test_session_cluster_id_follows_the_voters_not_their_order),
        cmocka_unit_test(test_session_state_waits_only_when_resumed_and_chains),
        cmocka_unit_test(test_session_ap_keys_join_and_bound),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
