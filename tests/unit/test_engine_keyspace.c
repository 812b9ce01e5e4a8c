/*
 * Unit tests for src/engine/keyspace.c: matching (first keyspace wins), the modes of a
 * command's keys (a command never spans engines), and the table's encoding: both versions,
 * every truncation and corruption refused, an unknown version named.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/cmd.h"
#include "engine/keyspace.h"

static void ks_set(struct keyspace *ks, const char *name, const char *glob,
                   enum keyspace_mode mode) {
    memset(ks, 0, sizeof(*ks));
    snprintf(ks->name, sizeof(ks->name), "%s", name);
    ks->match_count = 1;
    snprintf(ks->match[0], sizeof(ks->match[0]), "%s", glob);
    ks->mode = mode;
}

static void ks_argv(struct resp_arg *argv, uint32_t argc, const char *const *words) {
    for (uint32_t i = 0; i < argc; i++)
        argv[i] = (struct resp_arg){.data = (const uint8_t *)words[i], .bytes = strlen(words[i])};
}

/* DESIGN.md: the first keyspace in order whose glob matches wins; none: NULL. */
static void test_keyspace_find_takes_the_first_match_in_table_order(void **state) {
    (void)state;
    struct keyspace t[3];
    ks_set(&t[0], "pay", "pay:*", KEYSPACE_MODE_CP);
    ks_set(&t[1], "payish", "pa*", KEYSPACE_MODE_AP);
    ks_set(&t[2], "other", "x*", KEYSPACE_MODE_CP);
    assert_ptr_equal(keyspace_find(t, 3, (const uint8_t *)"pay:1", 5), &t[0]);
    assert_ptr_equal(keyspace_find(t, 3, (const uint8_t *)"pad", 3), &t[1]);
    assert_null(keyspace_find(t, 3, (const uint8_t *)"zz", 2));
    assert_int_equal(keyspace_mode_of(NULL), KEYSPACE_MODE_CP); /* unmatched: cp */
}

/* Redis Cluster's CROSSSLOT, by engine: MSET across a cp and an ap keyspace is refused,
 * naming both keys; keys of one mode pass whatever their keyspace. */
static void test_keyspace_command_mode_refuses_keys_of_two_engines(void **state) {
    (void)state;
    struct keyspace t[3];
    ks_set(&t[0], "pay", "pay:*", KEYSPACE_MODE_CP);
    ks_set(&t[1], "cart", "cart:*", KEYSPACE_MODE_AP);
    ks_set(&t[2], "default", "*", KEYSPACE_MODE_CP);
    const struct cmd_spec *mset = cmd_lookup((const uint8_t *)"MSET", 4);
    assert_non_null(mset);
    struct resp_arg argv[5];
    const char *cross[] = {"MSET", "pay:1", "a", "cart:1", "b"};
    ks_argv(argv, 5, cross);
    enum keyspace_mode mode = 0;
    struct errmsg msg;
    assert_int_equal(keyspace_command_mode(t, 3, mset, 5, argv, &mode, &msg), ERR_INVALID);
    assert_non_null(strstr(msg.text, "'pay:1' is in cp keyspace pay"));
    assert_non_null(strstr(msg.text, "'cart:1' in ap keyspace cart"));
    const char *same[] = {"MSET", "pay:1", "a", "k", "b"};
    ks_argv(argv, 5, same);
    assert_int_equal(keyspace_command_mode(t, 3, mset, 5, argv, &mode, &msg), 0);
    assert_int_equal(mode, KEYSPACE_MODE_CP);
    const char *ap[] = {"MSET", "cart:1", "a", "cart:2", "b"};
    ks_argv(argv, 5, ap);
    assert_int_equal(keyspace_command_mode(t, 3, mset, 5, argv, &mode, &msg), 0);
    assert_int_equal(mode, KEYSPACE_MODE_AP);
    const struct cmd_spec *dbsize = cmd_lookup((const uint8_t *)"DBSIZE", 6);
    mode = KEYSPACE_MODE_AP; /* keyless: left as the caller set it */
    assert_int_equal(keyspace_command_mode(t, 3, dbsize, 1, argv, &mode, &msg), 0);
    assert_int_equal(mode, KEYSPACE_MODE_AP);
}

static void ks_assert_refuses_every_cut_and_survives_every_byte(const struct buf *b) {
    static struct keyspace out[KEYSPACES_MAX];
    uint32_t count = 0;
    struct errmsg msg;
    for (size_t cut = 0; cut < b->len; cut++) /* every truncation */
        assert_int_not_equal(keyspace_table_decode(b->data, cut, out, &count, &msg), 0);
    uint8_t copy[512];
    assert_true(b->len < sizeof(copy));
    for (size_t i = 0; i < b->len; i++) { /* every byte set to values that break it or not */
        for (int v = 0; v < 256; v += 51) {
            memcpy(copy, b->data, b->len);
            copy[i] = (uint8_t)v;
            uint32_t n = 99;
            out[0].match_count = 77; /* refused: out and n unchanged */
            if (keyspace_table_decode(copy, b->len, out, &n, &msg) != 0) {
                assert_int_equal(n, 99);
                assert_int_equal(out[0].match_count, 77);
                continue;
            }
            /* Accepted: a valid table, which round trips through its own encoding. */
            static struct keyspace again[KEYSPACES_MAX];
            uint32_t m = 0;
            struct buf re;
            buf_init(&re);
            keyspace_table_encode(out, n, &re);
            assert_int_equal(keyspace_table_decode(re.data, re.len, again, &m, &msg), 0);
            assert_true(keyspace_table_equal(out, n, again, m));
            buf_deinit(&re);
        }
    }
}

/* A table of cp keyspaces is written as version 1, byte for byte what the release before
 * modes wrote, so its nodes still read it; defaults fill zero fields. */
static void test_keyspace_table_of_cp_keyspaces_is_version_1_and_round_trips(void **state) {
    (void)state;
    struct keyspace in[2];
    ks_set(&in[0], "ledger", "ledger:*", 0);
    in[0].match_count = 2;
    snprintf(in[0].match[1], sizeof(in[0].match[1]), "acct:*");
    in[0].replication = KEYSPACE_REPLICATION_ALL;
    in[0].consistency = KEYSPACE_CONSISTENCY_STALE;
    ks_set(&in[1], "rest", "*", KEYSPACE_MODE_CP);
    struct buf b;
    buf_init(&b);
    keyspace_table_encode(in, 2, &b);
    const uint8_t want[] = {1,   2,   6,   'l', 'e', 'd', 'g', 'e', 'r', 2,   8,   'l', 'e',
                            'd', 'g', 'e', 'r', ':', '*', 6,   'a', 'c', 'c', 't', ':', '*',
                            2,   3,   4,   'r', 'e', 's', 't', 1,   1,   '*', 1,   1};
    assert_int_equal(b.len, sizeof(want));
    assert_memory_equal(b.data, want, sizeof(want));
    static struct keyspace out[KEYSPACES_MAX];
    uint32_t count = 0;
    struct errmsg msg;
    assert_int_equal(keyspace_table_decode(b.data, b.len, out, &count, &msg), 0);
    assert_int_equal(count, 2);
    assert_string_equal(out[0].match[1], "acct:*");
    assert_int_equal(out[0].replication, KEYSPACE_REPLICATION_ALL);
    assert_int_equal(out[0].mode, KEYSPACE_MODE_CP);
    assert_int_equal(out[1].replication, KEYSPACE_REPLICATION_MAJORITY);
    assert_int_equal(out[1].consistency, KEYSPACE_CONSISTENCY_LINEARIZABLE);
    assert_true(keyspace_table_equal(in, 2, out, 2));
    ks_assert_refuses_every_cut_and_survives_every_byte(&b);
    buf_deinit(&b);
}

/* An ap keyspace needs version 3: each keyspace's mode, and an ap keyspace's settings
 * (conflict, n, r, w, counter type, hinted handoff), defaults written out. */
static void test_keyspace_table_with_an_ap_keyspace_is_version_3_and_round_trips(void **state) {
    (void)state;
    struct keyspace in[3];
    ks_set(&in[0], "cart", "cart:*", KEYSPACE_MODE_AP);
    in[0].conflict = KEYSPACE_CONFLICT_CRDT;
    in[0].n = 5;
    in[0].w = KEYSPACE_QUORUM_ONE;
    in[0].counter = KEYSPACE_COUNTER_G;
    ks_set(&in[1], "feed", "feed:*", KEYSPACE_MODE_AP);
    ks_set(&in[2], "default", "*", KEYSPACE_MODE_CP);
    struct buf b;
    buf_init(&b);
    keyspace_table_encode(in, 3, &b);
    assert_int_equal(b.data[0], 3);
    static struct keyspace out[KEYSPACES_MAX];
    uint32_t count = 0;
    struct errmsg msg;
    assert_int_equal(keyspace_table_decode(b.data, b.len, out, &count, &msg), 0);
    assert_int_equal(count, 3);
    assert_int_equal(out[0].mode, KEYSPACE_MODE_AP);
    assert_int_equal(out[0].conflict, KEYSPACE_CONFLICT_CRDT);
    assert_int_equal(out[0].n, 5);
    assert_int_equal(out[0].r, KEYSPACE_QUORUM_QUORUM);
    assert_int_equal(out[0].w, KEYSPACE_QUORUM_ONE);
    assert_int_equal(out[0].counter, KEYSPACE_COUNTER_G);
    assert_int_equal(out[0].handoff, KEYSPACE_HANDOFF_ON);
    assert_int_equal(out[1].conflict, KEYSPACE_CONFLICT_LWW); /* the defaults */
    assert_int_equal(out[1].n, KEYSPACE_N_DEFAULT);
    assert_int_equal(out[2].mode, KEYSPACE_MODE_CP);
    assert_true(keyspace_table_equal(in, 3, out, 3));
    assert_int_equal(keyspace_quorum_count(KEYSPACE_QUORUM_QUORUM, 5), 3);
    assert_int_equal(keyspace_quorum_count(KEYSPACE_QUORUM_QUORUM, 2), 2);
    assert_int_equal(keyspace_quorum_count(KEYSPACE_QUORUM_ALL, 3), 3);
    assert_int_equal(keyspace_quorum_count(KEYSPACE_QUORUM_ONE, 3), 1);
    ks_assert_refuses_every_cut_and_survives_every_byte(&b);
    b.data[b.len - 1] = 3; /* no mode 3 */
    assert_int_equal(keyspace_table_decode(b.data, b.len, out, &count, &msg), ERR_CORRUPT);
    assert_non_null(strstr(msg.text, "keyspace 2 of the table is malformed at byte"));
    b.data[b.len - 1] = KEYSPACE_MODE_CP;
    b.data[b.len - 19] = 7; /* feed's n: its 6 settings end 14 bytes before the end */
    assert_int_equal(keyspace_table_decode(b.data, b.len, out, &count, &msg), 0);
    assert_int_equal(out[1].n, 7);
    b.data[b.len - 19] = KEYSPACE_N_MAX + 1;
    assert_int_equal(keyspace_table_decode(b.data, b.len, out, &count, &msg), ERR_CORRUPT);
    assert_non_null(strstr(msg.text, "keyspace 1 of the table is malformed at byte"));
    buf_deinit(&b);
}

/* A version 2 table (a mode byte, no ap settings) still reads: its ap keyspaces take the
 * defaults. */
static void test_keyspace_table_version_2_still_reads(void **state) {
    (void)state;
    const uint8_t v2[] = {2,   1,   4,   'c', 'a', 'r', 't', 1, 6,
                          'c', 'a', 'r', 't', ':', '*', 1,   1, KEYSPACE_MODE_AP};
    static struct keyspace out[KEYSPACES_MAX];
    uint32_t count = 0;
    struct errmsg msg;
    assert_int_equal(keyspace_table_decode(v2, sizeof(v2), out, &count, &msg), 0);
    assert_int_equal(count, 1);
    assert_int_equal(out[0].mode, KEYSPACE_MODE_AP);
    struct keyspace k = keyspace_ap_of(&out[0]);
    assert_int_equal(k.conflict, KEYSPACE_CONFLICT_LWW);
    assert_int_equal(k.n, KEYSPACE_N_DEFAULT);
    assert_int_equal(k.w, KEYSPACE_QUORUM_QUORUM);
}

static void test_keyspace_table_decode_names_an_unknown_version(void **state) {
    (void)state;
    const uint8_t table[] = {4, 0};
    static struct keyspace out[KEYSPACES_MAX];
    uint32_t count = 7;
    struct errmsg msg;
    assert_int_equal(keyspace_table_decode(table, sizeof(table), out, &count, &msg), ERR_VERSION);
    assert_string_equal(msg.text, "keyspace table version 4; this build knows versions 1 to 3");
    assert_int_equal(count, 7); /* unchanged */
    const uint8_t trailing[] = {1, 0, 0};
    assert_int_equal(keyspace_table_decode(trailing, sizeof(trailing), out, &count, &msg),
                     ERR_CORRUPT);
    assert_string_equal(msg.text, "1 bytes after the keyspace table's end at byte 2");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keyspace_find_takes_the_first_match_in_table_order),
        cmocka_unit_test(test_keyspace_command_mode_refuses_keys_of_two_engines),
        cmocka_unit_test(test_keyspace_table_of_cp_keyspaces_is_version_1_and_round_trips),
        cmocka_unit_test(test_keyspace_table_with_an_ap_keyspace_is_version_3_and_round_trips),
        cmocka_unit_test(test_keyspace_table_version_2_still_reads),
        cmocka_unit_test(test_keyspace_table_decode_names_an_unknown_version),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
