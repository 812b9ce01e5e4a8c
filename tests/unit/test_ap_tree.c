/*
 * Unit tests of the anti-entropy buckets (src/ap/tree.c): replicas holding the same
 * objects agree whatever the order of their writes; k differing keys make at most k
 * differing buckets (the traffic of an exchange grows with the differences); a key's arc
 * is where the ring's walk for it starts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "ap/tree.h"

#define TEST_KEYS 20000

static uint64_t test_hash(uint32_t i) {
    char key[32];
    int n = snprintf(key, sizeof(key), "feed:%u", i);
    return ap_ring_key_hash((const uint8_t *)key, (size_t)n);
}

static uint64_t test_digest(uint32_t i, uint32_t version) {
    uint8_t b[8];
    memcpy(b, &i, 4);
    memcpy(b + 4, &version, 4);
    return ap_tree_digest(b, sizeof(b));
}

/* Every arc's buckets of two trees, the differing ones counted. */
static uint32_t test_diff_all(const struct ap_tree *a, const struct ap_tree *b) {
    uint32_t total = 0, out[AP_TREE_BUCKETS];
    for (uint32_t arc = 0; arc < a->arc_count; arc++)
        total += ap_tree_diff(a, arc, ap_tree_arc_buckets(b, arc), out);
    return total;
}

static void test_ap_tree_agrees_on_equal_data_and_finds_each_difference(void **state) {
    (void)state;
    static struct ap_ring ring;
    const uint32_t members[] = {1, 2, 3};
    assert_int_equal(ap_ring_build(&ring, members, 3), 0);
    struct ap_tree a, b;
    ap_tree_init(&a, &ring);
    ap_tree_init(&b, &ring);
    /* The same 20,000 objects, written in opposite orders, b's through an older version. */
    for (uint32_t i = 0; i < TEST_KEYS; i++) {
        uint64_t h = test_hash(i);
        ap_tree_update(&a, ap_ring_arc(&ring, h), h, 0, test_digest(i, 1));
        uint32_t j = TEST_KEYS - 1 - i;
        uint64_t hj = test_hash(j);
        ap_tree_update(&b, ap_ring_arc(&ring, hj), hj, 0, test_digest(j, 0));
        ap_tree_update(&b, ap_ring_arc(&ring, hj), hj, test_digest(j, 0), test_digest(j, 1));
    }
    assert_int_equal(test_diff_all(&a, &b), 0);
    /* 37 scattered keys change on b: at most 37 buckets differ, at least one. */
    for (uint32_t k = 0; k < 37; k++) {
        uint32_t i = k * 541 + 3; /* distinct keys, spread over the ring */
        uint64_t h = test_hash(i);
        ap_tree_update(&b, ap_ring_arc(&ring, h), h, test_digest(i, 1), test_digest(i, 2 + k));
        ap_tree_update(&a, ap_ring_arc(&ring, h), h, test_digest(i, 1), test_digest(i, 2 + k));
        ap_tree_update(&a, ap_ring_arc(&ring, h), h, test_digest(i, 2 + k), test_digest(i, 1));
    }
    uint32_t differ = test_diff_all(&a, &b);
    assert_true(differ >= 1 && differ <= 37);
    /* A key only one side has (a new write) and its removal again. */
    uint64_t h = test_hash(TEST_KEYS + 1);
    uint32_t arc = ap_ring_arc(&ring, h), out[AP_TREE_BUCKETS];
    ap_tree_update(&a, arc, h, 0, test_digest(TEST_KEYS + 1, 1));
    uint32_t n = ap_tree_diff(&a, arc, ap_tree_arc_buckets(&b, arc), out);
    assert_true(n >= 1);
    bool found = false;
    for (uint32_t i = 0; i < n; i++) found |= out[i] == ap_tree_bucket(h);
    assert_true(found);
    ap_tree_update(&a, arc, h, test_digest(TEST_KEYS + 1, 1), 0);
    assert_int_equal(test_diff_all(&a, &b), differ);
    ap_tree_deinit(&a);
    ap_tree_deinit(&b);
}

/* A key's arc is the point where its ring walk starts: its replica set. */
static void test_ap_tree_arc_is_where_the_walk_starts(void **state) {
    (void)state;
    static struct ap_ring ring;
    const uint32_t members[] = {4, 9, 2, 6};
    assert_int_equal(ap_ring_build(&ring, members, 4), 0);
    for (uint32_t i = 0; i < 2000; i++) {
        uint64_t h = test_hash(i);
        uint32_t arc = ap_ring_arc(&ring, h), walk[NODE_PEERS_MAX];
        assert_int_equal(ap_ring_walk(&ring, h, walk), 4);
        assert_int_equal(ring.points[arc].node, walk[0]);
        uint64_t before = arc == 0 ? 0 : ring.points[arc - 1].at;
        assert_true(h <= ring.points[arc].at || arc == 0);
        assert_true(arc == 0 || h > before);
    }
    assert_true(ap_tree_digest(NULL, 0) != 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ap_tree_agrees_on_equal_data_and_finds_each_difference),
        cmocka_unit_test(test_ap_tree_arc_is_where_the_walk_starts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
