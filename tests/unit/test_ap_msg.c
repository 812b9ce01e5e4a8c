/*
 * Unit tests of the AP peer payloads (src/ap/ap_msg.c): every kind round-trips byte for
 * byte, and a cut, a trailing byte, an unknown kind or an out-of-range field is refused.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "ap/ap_msg.h"
#include "engine/seen.h"

#define S(str)                                                                                     \
    { (const uint8_t *)(str), strlen(str) }

static struct resp_arg test_args[AP_MSG_ARGS_MAX];
static uint64_t test_digests[AP_MSG_KEYS_MAX];

/* Encodes m, decodes it, re-encodes: the same bytes; then every cut and a trailing byte
 * are refused. */
static void test_round_trip(const struct ap_msg *m) {
    struct buf a, b;
    buf_init(&a);
    buf_init(&b);
    ap_msg_encode(m, &a);
    static struct resp_arg args[AP_MSG_ARGS_MAX];
    static uint64_t digests[AP_MSG_KEYS_MAX];
    static struct ap_msg d;
    d.args = args;
    d.digests = digests;
    assert_int_equal(ap_msg_decode(a.data, a.len, &d), 0);
    assert_int_equal(d.kind, m->kind);
    ap_msg_encode(&d, &b);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    for (size_t cut = 0; cut < a.len; cut++)
        assert_int_equal(ap_msg_decode(a.data, cut, &d), ERR_CORRUPT);
    buf_append_byte(&a, 0);
    assert_int_equal(ap_msg_decode(a.data, a.len, &d), ERR_CORRUPT);
    buf_deinit(&a);
    buf_deinit(&b);
}

static void test_ap_msg_every_kind_round_trips(void **state) {
    (void)state;
    static struct ap_msg m;
    memset(&m, 0, sizeof(m));
    m.kind = AP_MSG_PING;
    m.seq = 1234567;
    test_round_trip(&m);
    m.kind = AP_MSG_PUT;
    m.req = 99;
    m.flags = AP_PUT_HINT | AP_PUT_ACK_WANTED;
    m.hint_for = 3;
    m.key = (struct ap_bytes)S("cart:1");
    m.object = (struct ap_bytes)S("\x01\x00\x00\x00");
    test_round_trip(&m);
    m.kind = AP_MSG_PUT_ACK;
    m.status = AP_STATUS_CLOCK;
    m.digest = UINT64_MAX;
    test_round_trip(&m);
    m.kind = AP_MSG_GET_REPLY;
    m.status = AP_STATUS_NONE;
    m.object = (struct ap_bytes){NULL, 0};
    test_round_trip(&m);
    m.kind = AP_MSG_FORWARD;
    m.proto = 3;
    m.level = 2;
    m.count = 3;
    m.args = test_args;
    test_args[0] = (struct resp_arg){(const uint8_t *)"SADD", 4};
    test_args[1] = (struct resp_arg){(const uint8_t *)"cart", 4};
    test_args[2] = (struct resp_arg){(const uint8_t *)"", 0};
    test_round_trip(&m);
    m.kind = AP_MSG_FORWARD_REPLY;
    m.reply = (struct ap_bytes)S(":1\r\n");
    test_round_trip(&m);
    struct buf entry;
    buf_init(&entry);
    struct seen_key k = {.hash = 9, .count = 1, .actor = {3}, .counter = {2}};
    seen_put(&entry, &k);
    m.session = (struct ap_bytes){entry.data, entry.len};
    test_round_trip(&m); /* the keys a reply reflects */
    m.kind = AP_MSG_REAP_ASK;
    m.key = (struct ap_bytes)S("gone");
    m.digest = 77;
    test_round_trip(&m);
    m.kind = AP_MSG_REAP;
    test_round_trip(&m);
    m.kind = AP_MSG_REAP_STATE;
    m.status = AP_STATUS_DIFFERENT;
    test_round_trip(&m);
    m.session = (struct ap_bytes){NULL, 0};
    buf_deinit(&entry);
    m.kind = AP_MSG_AE_BUCKETS;
    m.arc = 191;
    m.ring = 7;
    for (uint32_t i = 0; i < AP_TREE_BUCKETS; i++) m.buckets[i] = i * 0x0101010101010101ull;
    m.flags = AP_AE_REPLY;
    test_round_trip(&m);
    memset(m.buckets, 0, sizeof(m.buckets)); /* SAME: no buckets travel */
    m.flags = AP_AE_REPLY | AP_AE_SAME;
    test_round_trip(&m);
    m.kind = AP_MSG_AE_KEYS;
    m.flags = AP_AE_TRUNCATED;
    m.bucket = 255;
    m.count = 2;
    m.digests = test_digests;
    test_digests[0] = 5;
    test_digests[1] = 1ull << 63;
    test_round_trip(&m);
    m.kind = AP_MSG_AE_PULL;
    test_round_trip(&m);
}

/* What a peer speaking garbage may send: refused, never trusted. */
static void test_ap_msg_refuses_what_no_node_sends(void **state) {
    (void)state;
    static struct ap_msg d;
    d.args = NULL;
    d.digests = NULL;
    const uint8_t kind0[] = {0, 1}, kind99[] = {99, 1};
    const uint8_t bad_status[] = {AP_MSG_PUT_ACK, 1, AP_STATUS_MAX + 1, 0};
    const uint8_t bad_flags[] = {AP_MSG_PUT, 1, 8, 0, 0, 0};
    const uint8_t bad_proto[] = {AP_MSG_FORWARD, 1, 1, 0, 1, 0};
    const uint8_t no_room[] = {AP_MSG_AE_PULL, 1, 1, 'k'};
    const uint8_t bad_bucket[] = {AP_MSG_AE_KEYS, 0, 0, 0x80, 0x02, 0, 0};
    const uint8_t bad_ae_flags[] = {AP_MSG_AE_BUCKETS, 0, 0, 4};
    assert_int_equal(ap_msg_decode(kind0, sizeof(kind0), &d), ERR_CORRUPT);
    assert_int_equal(ap_msg_decode(kind99, sizeof(kind99), &d), ERR_CORRUPT);
    assert_int_equal(ap_msg_decode(bad_status, sizeof(bad_status), &d), ERR_CORRUPT);
    assert_int_equal(ap_msg_decode(bad_flags, sizeof(bad_flags), &d), ERR_CORRUPT);
    assert_int_equal(ap_msg_decode(bad_proto, sizeof(bad_proto), &d), ERR_CORRUPT);
    assert_int_equal(ap_msg_decode(no_room, sizeof(no_room), &d), ERR_CORRUPT);
    assert_int_equal(ap_msg_decode(bad_bucket, sizeof(bad_bucket), &d), ERR_CORRUPT);
    assert_int_equal(ap_msg_decode(bad_ae_flags, sizeof(bad_ae_flags), &d), ERR_CORRUPT);
    assert_int_equal(ap_msg_decode(NULL, 0, &d), ERR_CORRUPT);
    d.args = test_args;
    assert_int_equal(ap_msg_decode(no_room, sizeof(no_room), &d), 0); /* with room, it reads */
    assert_int_equal(d.count, 1);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ap_msg_every_kind_round_trips),
        cmocka_unit_test(test_ap_msg_refuses_what_no_node_sends),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
