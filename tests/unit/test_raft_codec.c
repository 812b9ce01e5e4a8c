/* Unit tests of the raft message codec (src/raft/msg_codec.c): round trips of every
 * message type, and rejection of truncated, corrupted and over-limit bytes. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "base/buf.h"
#include "base/prng.h"
#include "raft/msg_codec.h"

static struct raft_message sample_append(struct raft_entry *entries) {
    static const uint8_t data[] = "hello";
    uint8_t config[RAFT_CONFIG_BYTES_MAX];
    static uint8_t config_copy[RAFT_CONFIG_BYTES_MAX];
    struct raft_config c = {.count = 2, .servers = {{1, true}, {4, false}}};
    size_t n = raft_config_encode(&c, config);
    memcpy(config_copy, config, n);
    entries[0] = (struct raft_entry){.term = 3, .index = 11, .type = RAFT_ENTRY_NORMAL,
                                     .data_bytes = 5, .data = data};
    entries[1] = (struct raft_entry){.term = 4, .index = 12, .type = RAFT_ENTRY_NOOP};
    entries[2] = (struct raft_entry){.term = 4, .index = 13, .type = RAFT_ENTRY_CONFIG,
                                     .data_bytes = (uint32_t)n, .data = config_copy};
    return (struct raft_message){.type = RAFT_MSG_APPEND, .from = 1, .to = 2, .term = 4,
                                 .index = 10, .log_term = 3, .commit = 9, .entry_count = 3,
                                 .entries = entries};
}

/* The codec is lossless for every field it carries. */
static void test_raft_codec_round_trips_every_type(void **state) {
    (void)state;
    struct raft_entry in_entries[3], out_entries[RAFT_MSG_ENTRIES_MAX];
    struct raft_message m = sample_append(in_entries);
    struct buf b;
    buf_init(&b);
    assert_int_equal(raft_msg_encode(&m, &b), 0);
    struct raft_message out;
    assert_int_equal(raft_msg_decode(b.data, b.len, &out, out_entries), 0);
    assert_int_equal(out.type, RAFT_MSG_APPEND);
    assert_int_equal(out.term, 4);
    assert_int_equal(out.index, 10);
    assert_int_equal(out.log_term, 3);
    assert_int_equal(out.commit, 9);
    assert_int_equal(out.entry_count, 3);
    assert_int_equal(out.entries[0].index, 11);
    assert_memory_equal(out.entries[0].data, "hello", 5);
    assert_int_equal(out.entries[2].type, RAFT_ENTRY_CONFIG);
    struct raft_config config;
    assert_int_equal(
        raft_config_decode(out.entries[2].data, out.entries[2].data_bytes, &config), 0);
    assert_int_equal(config.count, 2);
    assert_false(config.servers[1].voter);
    for (uint8_t t = RAFT_MSG_APPEND_RESP; t <= RAFT_MSG_TYPE_LAST; t++) {
        static const uint8_t snap[] = {1, 2, 3};
        struct raft_message x = {.type = t, .from = 3, .to = 1, .term = 7, .index = 5,
                                 .log_term = 6, .reject = true, .transfer = true,
                                 .hint_index = 2, .hint_term = 1, .round = 99, .sent_ms = 12345};
        if (t == RAFT_MSG_INSTALL_SNAPSHOT) {
            x.config = (struct raft_config){.count = 1, .servers = {{3, true}}};
            x.snapshot_data = snap;
            x.snapshot_bytes = 3;
        }
        buf_clear(&b);
        assert_int_equal(raft_msg_encode(&x, &b), 0);
        assert_int_equal(raft_msg_decode(b.data, b.len, &out, out_entries), 0);
        assert_int_equal(out.type, t);
        assert_true(out.reject && out.transfer);
        assert_int_equal(out.hint_index, 2);
        assert_int_equal(out.hint_term, 1);
        assert_int_equal(out.round, 99);
        assert_int_equal(out.sent_ms, 12345);
        if (t == RAFT_MSG_INSTALL_SNAPSHOT) {
            assert_int_equal(out.snapshot_bytes, 3);
            assert_memory_equal(out.snapshot_data, snap, 3);
            assert_int_equal(out.config.servers[0].id, 3);
        }
    }
    buf_deinit(&b);
}

/* Every prefix of a valid message is refused, and so is a trailing byte. */
static void test_raft_codec_rejects_truncated_and_trailing_bytes(void **state) {
    (void)state;
    struct raft_entry in_entries[3], out_entries[RAFT_MSG_ENTRIES_MAX];
    struct raft_message m = sample_append(in_entries), out;
    struct buf b;
    buf_init(&b);
    assert_int_equal(raft_msg_encode(&m, &b), 0);
    for (size_t len = 0; len < b.len; len++)
        assert_int_equal(raft_msg_decode(b.data, len, &out, out_entries), ERR_PROTOCOL);
    buf_append_byte(&b, 0);
    assert_int_equal(raft_msg_decode(b.data, b.len, &out, out_entries), ERR_PROTOCOL);
    buf_deinit(&b);
}

/* Bad fields are refused with an error, never a crash: version, type, flags, ids,
 * counts over the limits, entries on a type without entries, bad configurations. */
static void test_raft_codec_rejects_corrupt_fields(void **state) {
    (void)state;
    struct raft_entry in_entries[3], out_entries[RAFT_MSG_ENTRIES_MAX];
    struct raft_message m = sample_append(in_entries), out;
    struct buf b;
    buf_init(&b);
    assert_int_equal(raft_msg_encode(&m, &b), 0);
    struct {
        size_t offset;
        uint8_t value;
        int rc;
    } cases[] = {
        {0, 2, ERR_VERSION},   {1, 0, ERR_PROTOCOL},  {1, 11, ERR_PROTOCOL},
        {1, RAFT_MSG_HEARTBEAT, ERR_PROTOCOL}, /* entries on a heartbeat */
        {2, 4, ERR_PROTOCOL},  {3, 1, ERR_PROTOCOL},  {4, 0, ERR_PROTOCOL},
        {8, 1, ERR_PROTOCOL},  /* to == from */
        {77, 1, ERR_PROTOCOL}, /* entry_count over RAFT_MSG_ENTRIES_MAX */
        {88, 9, ERR_PROTOCOL}, /* entry type */
        {80, 9, ERR_PROTOCOL}, /* entry term above the message's */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        uint8_t copy[512];
        assert_true(b.len <= sizeof(copy));
        memcpy(copy, b.data, b.len);
        copy[cases[i].offset] = cases[i].value;
        assert_int_equal(raft_msg_decode(copy, b.len, &out, out_entries), cases[i].rc);
    }
    /* A configuration with a duplicate or zero id is refused. */
    uint8_t config[RAFT_CONFIG_BYTES_MAX];
    struct raft_config c = {.count = 2, .servers = {{5, true}, {5, false}}}, back;
    assert_int_equal(raft_config_decode(config, raft_config_encode(&c, config), &back),
                     ERR_PROTOCOL);
    c.servers[1].id = 0;
    assert_int_equal(raft_config_decode(config, raft_config_encode(&c, config), &back),
                     ERR_PROTOCOL);
    /* Addresses and the promote flag round trip; the first format (no addresses) is read. */
    struct raft_config a = {.count = 2}, got;
    a.servers[0] = (struct raft_server){.id = 1, .voter = true, .addr = "127.0.0.1:8001"};
    a.servers[1] = (struct raft_server){.id = 9, .promote = true, .addr = "10.0.0.9:8009"};
    size_t n = raft_config_encode(&a, config);
    assert_int_equal(raft_config_decode(config, n, &got), 0);
    assert_memory_equal(&a, &got, sizeof(a));
    static const uint8_t v1[] = {2, 0, 0, 0, 1, 0, 0, 0, 1, 4, 0, 0, 0, 0};
    assert_int_equal(raft_config_decode(v1, sizeof(v1), &got), 0);
    assert_int_equal(got.count, 2);
    assert_true(got.servers[0].voter && !got.servers[1].voter);
    assert_string_equal(got.servers[1].addr, "");
    /* A voter that is also to be promoted, an address with a space, a cut address. */
    a.servers[0].promote = true;
    assert_int_equal(raft_config_decode(config, raft_config_encode(&a, config), &got),
                     ERR_PROTOCOL);
    a.servers[0].promote = false;
    a.servers[1].addr[2] = ' ';
    assert_int_equal(raft_config_decode(config, raft_config_encode(&a, config), &got),
                     ERR_PROTOCOL);
    a.servers[1].addr[2] = '0';
    n = raft_config_encode(&a, config);
    assert_int_equal(raft_config_decode(config, n - 1, &got), ERR_PROTOCOL);
    /* Limits refuse on encoding too. */
    m.entry_count = RAFT_MSG_ENTRIES_MAX + 1;
    assert_int_equal(raft_msg_encode(&m, &b), ERR_LIMIT);
    buf_deinit(&b);
}

/* Random garbage and random bit flips never crash the decoder (ASan watches). */
static void test_raft_codec_survives_random_garbage(void **state) {
    (void)state;
    struct raft_entry in_entries[3], out_entries[RAFT_MSG_ENTRIES_MAX];
    struct raft_message m = sample_append(in_entries), out;
    struct buf b;
    buf_init(&b);
    assert_int_equal(raft_msg_encode(&m, &b), 0);
    struct prng prng;
    prng_init(&prng, 42);
    uint8_t copy[512];
    int accepted = 0;
    for (int k = 0; k < 20000; k++) {
        memcpy(copy, b.data, b.len);
        size_t len = b.len;
        if (k % 2 == 0) {
            copy[prng_range(&prng, 0, len)] ^= (uint8_t)(1u << prng_range(&prng, 0, 8));
        } else {
            len = (size_t)prng_range(&prng, 0, sizeof(copy));
            for (size_t i = 0; i < len; i++) copy[i] = (uint8_t)prng_next(&prng);
            copy[0] = RAFT_MSG_VERSION;
        }
        int rc = raft_msg_decode(copy, len, &out, out_entries);
        assert_true(rc == 0 || rc == ERR_PROTOCOL || rc == ERR_VERSION);
        if (rc == 0) {
            accepted++;
            assert_true(out.entry_count <= RAFT_MSG_ENTRIES_MAX);
        }
    }
    assert_true(accepted < 20000);
    buf_deinit(&b);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raft_codec_round_trips_every_type),
        cmocka_unit_test(test_raft_codec_rejects_truncated_and_trailing_bytes),
        cmocka_unit_test(test_raft_codec_rejects_corrupt_fields),
        cmocka_unit_test(test_raft_codec_survives_random_garbage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
