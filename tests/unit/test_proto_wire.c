/*
 * Unit tests for src/proto/wire.c: exact frame bytes, incremental decoding, every way a
 * frame can be bad (and that the decoder then stays failed), the limits, and HELLO.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "base/crc32c.h"
#include "proto/wire.h"

static void frame(struct buf *out, const char *payload) {
    wire_encode(out, (const uint8_t *)payload, strlen(payload));
}

/* docs/formats.md: magic "CK", version 1, flags 0, length, CRC-32C of the payload. */
static void test_wire_encode_writes_documented_bytes(void **state) {
    (void)state;
    struct buf b;
    buf_init(&b);
    frame(&b, "hello");
    assert_int_equal(b.len, WIRE_HEADER_BYTES + 5);
    const uint8_t want[8] = {'C', 'K', 1, 0, 5, 0, 0, 0};
    assert_memory_equal(b.data, want, sizeof(want));
    uint32_t crc = crc32c_extend(0, "hello", 5);
    assert_int_equal(base_load_u32le(b.data + 8), crc);
    assert_memory_equal(b.data + 12, "hello", 5);
    buf_deinit(&b);
}

static void test_wire_decoder_returns_frames_fed_byte_by_byte(void **state) {
    (void)state;
    struct buf b;
    buf_init(&b);
    frame(&b, "first");
    frame(&b, "");
    frame(&b, "third payload");
    struct wire_decoder d;
    wire_decoder_init(&d, 1024);
    const char *want[] = {"first", "", "third payload"};
    size_t got = 0;
    for (size_t i = 0; i < b.len; i++) {
        assert_int_equal(wire_decoder_feed(&d, b.data + i, 1), 0);
        const uint8_t *p;
        size_t n;
        int rc;
        while ((rc = wire_decoder_next(&d, &p, &n)) == 1) {
            assert_true(got < 3);
            assert_int_equal(n, strlen(want[got]));
            if (n > 0) assert_memory_equal(p, want[got], n);
            got++;
        }
        assert_int_equal(rc, 0);
    }
    assert_int_equal(got, 3);
    wire_decoder_deinit(&d);
    buf_deinit(&b);
}

static void test_wire_decoder_returns_many_frames_from_one_feed(void **state) {
    (void)state;
    struct buf b;
    buf_init(&b);
    for (int i = 0; i < 100; i++) frame(&b, "x");
    struct wire_decoder d;
    wire_decoder_init(&d, 16);
    assert_int_equal(wire_decoder_feed(&d, b.data, b.len), 0);
    const uint8_t *p;
    size_t n;
    int count = 0;
    while (wire_decoder_next(&d, &p, &n) == 1) count++;
    assert_int_equal(count, 100);
    assert_int_equal(wire_decoder_next(&d, &p, &n), 0);
    wire_decoder_deinit(&d);
    buf_deinit(&b);
}

/* Feeds one corrupted frame; expects rc from feed or next, then checks stickiness. */
static void assert_bad_frame(struct buf *b, int want) {
    struct wire_decoder d;
    wire_decoder_init(&d, 64);
    const uint8_t *p;
    size_t n;
    int rc = wire_decoder_feed(&d, b->data, b->len);
    if (rc == 0) rc = wire_decoder_next(&d, &p, &n);
    assert_int_equal(rc, want);
    assert_true(d.error_msg.text[0] != '\0');
    /* Stays failed: even a good frame afterwards is refused with the same error. */
    struct buf good;
    buf_init(&good);
    frame(&good, "ok");
    assert_int_equal(wire_decoder_feed(&d, good.data, good.len), want);
    assert_int_equal(wire_decoder_next(&d, &p, &n), want);
    buf_deinit(&good);
    wire_decoder_deinit(&d);
}

static void test_wire_decoder_fails_and_stays_failed_on_bad_frames(void **state) {
    (void)state;
    struct buf b;
    buf_init(&b);
    frame(&b, "payload");
    b.data[0] = 'X';
    assert_bad_frame(&b, ERR_PROTOCOL);
    b.data[0] = 'C';
    b.data[2] = 2;
    assert_bad_frame(&b, ERR_PROTOCOL);
    b.data[2] = 1;
    b.data[3] = 0x80;
    assert_bad_frame(&b, ERR_PROTOCOL);
    b.data[3] = 0;
    b.data[12] ^= 1;
    assert_bad_frame(&b, ERR_CORRUPT);
    b.data[12] ^= 1;
    b.data[8] ^= 1;
    assert_bad_frame(&b, ERR_CORRUPT);
    buf_deinit(&b);
}

/* The length is checked when the header arrives, before any payload is buffered. */
static void test_wire_decoder_refuses_length_over_limit_from_header_alone(void **state) {
    (void)state;
    struct wire_decoder d;
    wire_decoder_init(&d, 64);
    uint8_t h[WIRE_HEADER_BYTES] = {'C', 'K', 1, 0, 65, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(wire_decoder_feed(&d, h, sizeof(h)), ERR_LIMIT);
    wire_decoder_deinit(&d);
    wire_decoder_init(&d, WIRE_PAYLOAD_BYTES_MAX);
    base_store_u32le(h + 4, 0xffffffffu);
    assert_int_equal(wire_decoder_feed(&d, h, sizeof(h)), ERR_LIMIT);
    wire_decoder_deinit(&d);
}

static void test_wire_decoder_accepts_payload_at_the_limit(void **state) {
    (void)state;
    uint8_t payload[64];
    memset(payload, 7, sizeof(payload));
    struct buf b;
    buf_init(&b);
    wire_encode(&b, payload, sizeof(payload));
    struct wire_decoder d;
    wire_decoder_init(&d, 64);
    assert_int_equal(wire_decoder_feed(&d, b.data, b.len), 0);
    const uint8_t *p;
    size_t n;
    assert_int_equal(wire_decoder_next(&d, &p, &n), 1);
    assert_int_equal(n, 64);
    assert_memory_equal(p, payload, 64);
    wire_decoder_deinit(&d);
    buf_deinit(&b);
}

/* Input that is never drained is refused once it exceeds one frame plus the slack. */
static void test_wire_decoder_refuses_undrained_input_over_limit(void **state) {
    (void)state;
    struct wire_decoder d;
    wire_decoder_init(&d, 16);
    size_t chunk = 64 * 1024;
    struct buf b;
    buf_init(&b);
    while (b.len < WIRE_FEED_BYTES_MAX + chunk) frame(&b, "0123456789abcdef");
    int rc = 0;
    for (size_t off = 0; rc == 0 && off < b.len; off += chunk) {
        size_t n = b.len - off < chunk ? b.len - off : chunk;
        rc = wire_decoder_feed(&d, b.data + off, n);
    }
    assert_int_equal(rc, ERR_LIMIT);
    buf_deinit(&b);
    wire_decoder_deinit(&d);
}

static void test_wire_hello_round_trips(void **state) {
    (void)state;
    uint8_t h[WIRE_HELLO_BYTES];
    wire_hello_encode(h, 7);
    const uint8_t want[WIRE_HELLO_BYTES] = {0, 2, 0, 0, 7, 0, 0, 0};
    assert_memory_equal(h, want, sizeof(want));
    uint32_t id = 0;
    assert_int_equal(wire_hello_decode(h, sizeof(h), &id, NULL), 0);
    assert_int_equal(id, 7);
}

static void test_wire_hello_refuses_bad_payloads(void **state) {
    (void)state;
    uint8_t h[WIRE_HELLO_BYTES];
    uint32_t id = 99;
    struct errmsg msg;
    wire_hello_encode(h, 3);
    assert_int_equal(wire_hello_decode(h, sizeof(h) - 1, &id, &msg), ERR_PROTOCOL);
    assert_int_equal(wire_hello_decode(h, 0, &id, &msg), ERR_PROTOCOL);
    h[0] = 1; /* a raft message where the HELLO should be */
    assert_int_equal(wire_hello_decode(h, sizeof(h), &id, &msg), ERR_PROTOCOL);
    h[0] = 0;
    h[1] = 1; /* the release before engines: its payloads have no engine byte */
    assert_int_equal(wire_hello_decode(h, sizeof(h), &id, &msg), ERR_VERSION);
    assert_string_equal(msg.text, "peer speaks cluster protocol 1, this node 2");
    h[1] = 3;
    assert_int_equal(wire_hello_decode(h, sizeof(h), &id, &msg), ERR_VERSION);
    h[1] = 2;
    h[2] = 1;
    assert_int_equal(wire_hello_decode(h, sizeof(h), &id, &msg), ERR_PROTOCOL);
    wire_hello_encode(h, 3);
    base_store_u32le(h + 4, 0);
    assert_int_equal(wire_hello_decode(h, sizeof(h), &id, &msg), ERR_PROTOCOL);
    assert_int_equal(id, 99);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wire_encode_writes_documented_bytes),
        cmocka_unit_test(test_wire_decoder_returns_frames_fed_byte_by_byte),
        cmocka_unit_test(test_wire_decoder_returns_many_frames_from_one_feed),
        cmocka_unit_test(test_wire_decoder_fails_and_stays_failed_on_bad_frames),
        cmocka_unit_test(test_wire_decoder_refuses_length_over_limit_from_header_alone),
        cmocka_unit_test(test_wire_decoder_accepts_payload_at_the_limit),
        cmocka_unit_test(test_wire_decoder_refuses_undrained_input_over_limit),
        cmocka_unit_test(test_wire_hello_round_trips),
        cmocka_unit_test(test_wire_hello_refuses_bad_payloads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
