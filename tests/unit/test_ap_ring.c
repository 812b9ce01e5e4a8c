/*
 * Unit tests of the AP engine's consistent-hash ring (src/ap/ring.c): every node builds
 * the same ring from the same members, a new member only inserts itself into each key's
 * preference order (so only keys whose replicas gain it move), and virtual nodes spread
 * keys evenly.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "ap/ring.h"

#define TEST_KEYS 20000

static uint64_t test_key_hash(uint32_t i) {
    char key[32];
    int n = snprintf(key, sizeof(key), "cart:%u", i);
    return ap_ring_key_hash((const uint8_t *)key, (size_t)n);
}

/* The ring is a function of the member set: any order of the list gives the same walks. */
static void test_ap_ring_is_the_same_from_any_member_order(void **state) {
    (void)state;
    static struct ap_ring a, b;
    const uint32_t one[] = {1, 2, 3, 7}, other[] = {7, 3, 1, 2};
    assert_int_equal(ap_ring_build(&a, one, 4), 0);
    assert_int_equal(ap_ring_build(&b, other, 4), 0);
    assert_true(a.version == b.version); /* anti-entropy compares rings by version */
    for (uint32_t i = 0; i < 1000; i++) {
        uint32_t wa[NODE_PEERS_MAX], wb[NODE_PEERS_MAX];
        assert_int_equal(ap_ring_walk(&a, test_key_hash(i), wa), 4);
        assert_int_equal(ap_ring_walk(&b, test_key_hash(i), wb), 4);
        assert_memory_equal(wa, wb, sizeof(uint32_t) * 4);
    }
}

/* Dynamo's property: adding member 4 to {1,2,3} leaves every key's order of 1, 2, 3 as it
 * was; with n = 3, a key moves only if 4 becomes one of its replicas (and then loses only
 * its third), about three keys in four. Removing 4 again restores the old walks. */
static void test_ap_ring_new_member_only_inserts_itself(void **state) {
    (void)state;
    static struct ap_ring small, big;
    const uint32_t three[] = {1, 2, 3}, four[] = {1, 2, 3, 4};
    assert_int_equal(ap_ring_build(&small, three, 3), 0);
    assert_int_equal(ap_ring_build(&big, four, 4), 0);
    assert_true(small.version != big.version); /* other members: another ring */
    uint32_t moved = 0;
    for (uint32_t i = 0; i < TEST_KEYS; i++) {
        uint32_t before[NODE_PEERS_MAX], after[NODE_PEERS_MAX], rest[NODE_PEERS_MAX];
        assert_int_equal(ap_ring_walk(&small, test_key_hash(i), before), 3);
        assert_int_equal(ap_ring_walk(&big, test_key_hash(i), after), 4);
        uint32_t k = 0;
        bool gained = false;
        for (uint32_t j = 0; j < 4; j++) {
            if (after[j] == 4)
                gained = j < 3;
            else
                rest[k++] = after[j];
        }
        assert_int_equal(k, 3);
        assert_memory_equal(rest, before, sizeof(uint32_t) * 3);
        moved += gained;
    }
    assert_true(moved > TEST_KEYS * 65 / 100 && moved < TEST_KEYS * 85 / 100);
}

/* With 64 points each, 9 members each come first for 1/9 of the keys, within a third. */
static void test_ap_ring_spreads_keys_evenly(void **state) {
    (void)state;
    static struct ap_ring ring;
    const uint32_t nine[] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
    assert_int_equal(ap_ring_build(&ring, nine, 9), 0);
    uint32_t first[10] = {0};
    for (uint32_t i = 0; i < TEST_KEYS * 5; i++) {
        uint32_t walk[NODE_PEERS_MAX];
        assert_int_equal(ap_ring_walk(&ring, test_key_hash(i), walk), 9);
        first[walk[0]]++;
    }
    uint32_t mean = TEST_KEYS * 5 / 9;
    for (uint32_t id = 1; id <= 9; id++) {
        assert_true(first[id] > mean * 2 / 3);
        assert_true(first[id] < mean * 4 / 3);
    }
}

/* Member lists that cannot be a cluster are refused. */
static void test_ap_ring_refuses_bad_member_lists(void **state) {
    (void)state;
    static struct ap_ring ring;
    const uint32_t dup[] = {1, 2, 1}, zero[] = {0, 1}, many[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};
    assert_int_equal(ap_ring_build(&ring, dup, 3), ERR_INVALID);
    assert_int_equal(ap_ring_build(&ring, zero, 2), ERR_INVALID);
    assert_int_equal(ap_ring_build(&ring, many, 10), ERR_INVALID);
    assert_int_equal(ap_ring_build(&ring, many, 0), 0);
    uint32_t walk[NODE_PEERS_MAX];
    assert_int_equal(ap_ring_walk(&ring, 42, walk), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ap_ring_is_the_same_from_any_member_order),
        cmocka_unit_test(test_ap_ring_new_member_only_inserts_itself),
        cmocka_unit_test(test_ap_ring_spreads_keys_evenly),
        cmocka_unit_test(test_ap_ring_refuses_bad_member_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
