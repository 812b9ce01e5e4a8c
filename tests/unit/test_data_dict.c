/*
 * Unit tests of src/data/dict.c: lookups, incremental growth and shrink (Redis's two-table
 * rehash), and SCAN's guarantee that an element present for the whole scan is returned.
 * Elements are test_items keyed by a u64; every test frees what it allocates.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "data/dict.h"

#define TEST_SEED 0x5eed
#define TEST_BIG_COUNT 100000

struct test_item {
    struct dict_link link;
    uint64_t key;
    unsigned visits;
};

static uint64_t test_hash_key(uint64_t key, uint64_t seed) {
    /* splitmix64 finalizer: a good, seeded, cheap hash. */
    uint64_t z = key + seed + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t test_link_hash(const struct dict_link *link, uint64_t seed) {
    return test_hash_key(((const struct test_item *)(const void *)link)->key, seed);
}

static bool test_link_match(const struct dict_link *link, const void *key) {
    return ((const struct test_item *)(const void *)link)->key == *(const uint64_t *)key;
}

struct test_fixture {
    struct dict d;
    size_t memory_bytes;
    struct test_item *items; /* items[i].key == i */
    size_t item_count;
};

static struct test_fixture *test_fixture_new(size_t item_count) {
    struct test_fixture *f = calloc(1, sizeof(*f));
    f->items = calloc(item_count, sizeof(*f->items));
    f->item_count = item_count;
    for (size_t i = 0; i < item_count; i++) f->items[i].key = i;
    dict_init(&f->d, test_link_hash, TEST_SEED, &f->memory_bytes);
    return f;
}

static void test_fixture_free(struct test_fixture *f) {
    dict_clear(&f->d, NULL, NULL);
    assert_int_equal(f->memory_bytes, 0);
    free(f->items);
    free(f);
}

static void test_add(struct test_fixture *f, uint64_t key) {
    dict_add(&f->d, test_hash_key(key, TEST_SEED), &f->items[key].link);
}

static struct test_item *test_find(struct test_fixture *f, uint64_t key) {
    return (struct test_item *)(void *)dict_find(&f->d, test_hash_key(key, TEST_SEED),
                                                 test_link_match, &key);
}

static bool test_remove(struct test_fixture *f, uint64_t key) {
    struct dict_slot slot;
    if (!dict_find_slot(&f->d, test_hash_key(key, TEST_SEED), test_link_match, &key, &slot)) {
        return false;
    }
    struct dict_link *link = dict_unlink_slot(&f->d, &slot);
    assert_ptr_equal(link, &f->items[key].link);
    return true;
}

static uint64_t test_size(const struct dict *d) {
    return d->tables[0].mask + 1;
}

static void test_dict_finds_added_elements_and_nothing_else(void **state) {
    (void)state;
    struct test_fixture *f = test_fixture_new(100);
    assert_null(test_find(f, 1));
    for (uint64_t k = 0; k < 50; k++) test_add(f, k);
    assert_int_equal(dict_count(&f->d), 50);
    for (uint64_t k = 0; k < 100; k++) {
        if (k < 50)
            assert_ptr_equal(test_find(f, k), &f->items[k]);
        else
            assert_null(test_find(f, k));
    }
    assert_true(dict_valid(&f->d));
    test_fixture_free(f);
}

static void test_dict_removes_only_the_matching_element(void **state) {
    (void)state;
    struct test_fixture *f = test_fixture_new(10);
    for (uint64_t k = 0; k < 10; k++) test_add(f, k);
    assert_true(test_remove(f, 3));
    assert_false(test_remove(f, 3));
    assert_null(test_find(f, 3));
    for (uint64_t k = 0; k < 10; k++) {
        if (k != 3) assert_ptr_equal(test_find(f, k), &f->items[k]);
    }
    assert_int_equal(dict_count(&f->d), 9);
    test_fixture_free(f);
}

static void test_dict_replace_slot_keeps_the_rest_of_the_chain(void **state) {
    (void)state;
    /* A table of DICT_SIZE_MIN buckets and 4 elements: chains exist; replace each element
     * by a twin with the same key and check every other element is still found. */
    struct test_fixture *f = test_fixture_new(4);
    struct test_item twins[4];
    for (uint64_t k = 0; k < 4; k++) test_add(f, k);
    for (uint64_t k = 0; k < 4; k++) {
        twins[k] = (struct test_item){.key = k};
        struct dict_slot slot;
        assert_true(dict_find_slot(&f->d, test_hash_key(k, TEST_SEED), test_link_match, &k, &slot));
        dict_replace_slot(&slot, &twins[k].link);
    }
    for (uint64_t k = 0; k < 4; k++) {
        assert_ptr_equal(dict_find(&f->d, test_hash_key(k, TEST_SEED), test_link_match, &k),
                         &twins[k].link);
    }
    assert_int_equal(dict_count(&f->d), 4);
    assert_true(dict_valid(&f->d));
    dict_clear(&f->d, NULL, NULL);
    test_fixture_free(f);
}

static void test_dict_grows_incrementally_and_finds_every_element_during_rehash(void **state) {
    (void)state;
    struct test_fixture *f = test_fixture_new(TEST_BIG_COUNT);
    size_t rehashing_seen = 0;
    for (uint64_t k = 0; k < TEST_BIG_COUNT; k++) {
        uint64_t index_before = f->d.rehash_index;
        bool was_rehashing = dict_rehashing(&f->d);
        test_add(f, k);
        if (was_rehashing && dict_rehashing(&f->d) && f->d.rehash_index >= index_before) {
            /* Bounded work per operation: never a whole-table pause. (A smaller index means
             * the rehash finished and the next one started.) */
            assert_true(f->d.rehash_index - index_before <=
                        DICT_REHASH_BUCKETS_PER_OP * (1 + DICT_REHASH_EMPTY_VISITS));
        }
        if (dict_rehashing(&f->d)) {
            rehashing_seen++;
            uint64_t probe = (k * 7919) % (k + 1);
            assert_ptr_equal(test_find(f, probe), &f->items[probe]);
            assert_ptr_equal(test_find(f, k), &f->items[k]);
        }
        assert_true(test_size(&f->d) >= DICT_SIZE_MIN);
        if (k % 9973 == 0) assert_true(dict_valid(&f->d));
    }
    assert_true(rehashing_seen > 1000);
    assert_int_equal(dict_count(&f->d), TEST_BIG_COUNT);
    for (uint64_t k = 0; k < TEST_BIG_COUNT; k++) assert_ptr_equal(test_find(f, k), &f->items[k]);
    while (dict_rehash_steps(&f->d, 1000)) continue;
    /* Load factor at most 1 after growth, table at most 2x the elements. */
    assert_true(test_size(&f->d) >= TEST_BIG_COUNT);
    assert_true(test_size(&f->d) <= 2 * TEST_BIG_COUNT);
    assert_true(dict_valid(&f->d));
    test_fixture_free(f);
}

static void test_dict_shrinks_when_sparse_and_finds_the_rest_during_rehash(void **state) {
    (void)state;
    struct test_fixture *f = test_fixture_new(TEST_BIG_COUNT);
    for (uint64_t k = 0; k < TEST_BIG_COUNT; k++) test_add(f, k);
    while (dict_rehash_steps(&f->d, 1000)) continue;
    uint64_t big = test_size(&f->d);
    size_t rehashing_seen = 0;
    for (uint64_t k = 0; k < TEST_BIG_COUNT - 10; k++) {
        assert_true(test_remove(f, k));
        if (dict_rehashing(&f->d)) rehashing_seen++;
        uint64_t probe = TEST_BIG_COUNT - 1 - (k % 10);
        assert_ptr_equal(test_find(f, probe), &f->items[probe]);
        assert_null(test_find(f, k));
        if (k % 9973 == 0) assert_true(dict_valid(&f->d));
    }
    assert_true(rehashing_seen > 0);
    while (dict_rehash_steps(&f->d, 1000)) continue;
    assert_int_equal(dict_count(&f->d), 10);
    assert_true(test_size(&f->d) < big / 1000);
    for (uint64_t k = TEST_BIG_COUNT - 10; k < TEST_BIG_COUNT; k++) {
        assert_ptr_equal(test_find(f, k), &f->items[k]);
    }
    assert_true(dict_valid(&f->d));
    test_fixture_free(f);
}

static void test_scan_visit(void *ctx, struct dict_link *link) {
    (void)ctx;
    ((struct test_item *)(void *)link)->visits++;
}

static void test_dict_scan_of_an_empty_dict_returns_zero(void **state) {
    (void)state;
    struct test_fixture *f = test_fixture_new(1);
    assert_int_equal(dict_scan(&f->d, 0, test_scan_visit, NULL), 0);
    test_add(f, 0);
    assert_true(test_remove(f, 0));
    assert_int_equal(dict_scan(&f->d, 0, test_scan_visit, NULL), 0);
    assert_int_equal(f->items[0].visits, 0);
    test_fixture_free(f);
}

static void test_dict_scan_without_changes_returns_every_element_exactly_once(void **state) {
    (void)state;
    struct test_fixture *f = test_fixture_new(5000);
    for (uint64_t k = 0; k < 5000; k++) test_add(f, k);
    while (dict_rehash_steps(&f->d, 1000)) continue;
    uint64_t cursor = 0;
    do cursor = dict_scan(&f->d, cursor, test_scan_visit, NULL);
    while (cursor != 0);
    for (size_t k = 0; k < 5000; k++) assert_int_equal(f->items[k].visits, 1);
    test_fixture_free(f);
}

static void
test_dict_scan_returns_every_element_present_for_the_whole_scan_during_growth(void **state) {
    (void)state;
    /* Redis dictScan: elements 0..999 stay; 1000.. are added between calls, so the table
     * doubles several times (and is rehashing) while the cursor advances. */
    struct test_fixture *f = test_fixture_new(TEST_BIG_COUNT);
    for (uint64_t k = 0; k < 1000; k++) test_add(f, k);
    uint64_t next = 1000;
    uint64_t cursor = 0;
    size_t calls_while_rehashing = 0;
    do {
        cursor = dict_scan(&f->d, cursor, test_scan_visit, NULL);
        for (int i = 0; i < 40 && next < TEST_BIG_COUNT; i++) test_add(f, next++);
        if (dict_rehashing(&f->d)) calls_while_rehashing++;
    } while (cursor != 0);
    assert_true(calls_while_rehashing > 0);
    assert_true(test_size(&f->d) > 1024 * 8);
    for (size_t k = 0; k < 1000; k++) assert_true(f->items[k].visits >= 1);
    test_fixture_free(f);
}

static void
test_dict_scan_returns_every_element_present_for_the_whole_scan_during_shrink(void **state) {
    (void)state;
    /* Elements 0..99 stay; the other 49,900 are removed between calls, so the table shrinks
     * (and rehashes) under the cursor. */
    struct test_fixture *f = test_fixture_new(50000);
    for (uint64_t k = 0; k < 50000; k++) test_add(f, k);
    while (dict_rehash_steps(&f->d, 1000)) continue;
    uint64_t big = test_size(&f->d);
    uint64_t next = 100;
    uint64_t cursor = 0;
    size_t calls_while_rehashing = 0;
    do {
        cursor = dict_scan(&f->d, cursor, test_scan_visit, NULL);
        for (int i = 0; i < 400 && next < 50000; i++) assert_true(test_remove(f, next++));
        if (dict_rehashing(&f->d)) calls_while_rehashing++;
    } while (cursor != 0);
    assert_true(calls_while_rehashing > 0);
    while (dict_rehash_steps(&f->d, 1000)) continue;
    assert_true(test_size(&f->d) < big);
    for (size_t k = 0; k < 100; k++) assert_true(f->items[k].visits >= 1);
    test_fixture_free(f);
}

static void test_count_free(void *ctx, struct dict_link *link) {
    (void)link;
    (*(size_t *)ctx)++;
}

static void test_dict_clear_frees_every_element_and_leaves_the_dict_usable(void **state) {
    (void)state;
    struct test_fixture *f = test_fixture_new(3000);
    for (uint64_t k = 0; k < 3000; k++) test_add(f, k);
    assert_true(f->memory_bytes >= 3000 * sizeof(void *) / 2);
    size_t freed = 0;
    dict_clear(&f->d, test_count_free, &freed);
    assert_int_equal(freed, 3000);
    assert_int_equal(dict_count(&f->d), 0);
    assert_int_equal(f->memory_bytes, 0);
    assert_null(test_find(f, 5));
    test_add(f, 5);
    assert_ptr_equal(test_find(f, 5), &f->items[5]);
    test_fixture_free(f);
}

static void test_dict_each_visits_both_tables_during_rehash(void **state) {
    (void)state;
    struct test_fixture *f = test_fixture_new(1000);
    uint64_t k = 0;
    while (k < 1000 && !(dict_rehashing(&f->d) && k > 100)) test_add(f, k++);
    assert_true(dict_rehashing(&f->d));
    assert_true(f->d.tables[0].count > 0);
    assert_true(f->d.tables[1].count > 0);
    dict_each(&f->d, test_scan_visit, NULL);
    for (uint64_t i = 0; i < 1000; i++) assert_int_equal(f->items[i].visits, i < k ? 1 : 0);
    test_fixture_free(f);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dict_finds_added_elements_and_nothing_else),
        cmocka_unit_test(test_dict_removes_only_the_matching_element),
        cmocka_unit_test(test_dict_replace_slot_keeps_the_rest_of_the_chain),
        cmocka_unit_test(test_dict_grows_incrementally_and_finds_every_element_during_rehash),
        cmocka_unit_test(test_dict_shrinks_when_sparse_and_finds_the_rest_during_rehash),
        cmocka_unit_test(test_dict_scan_of_an_empty_dict_returns_zero),
        cmocka_unit_test(test_dict_scan_without_changes_returns_every_element_exactly_once),
        cmocka_unit_test(
            test_dict_scan_returns_every_element_present_for_the_whole_scan_during_growth),
        cmocka_unit_test(
            test_dict_scan_returns_every_element_present_for_the_whole_scan_during_shrink),
        cmocka_unit_test(test_dict_clear_frees_every_element_and_leaves_the_dict_usable),
        cmocka_unit_test(test_dict_each_visits_both_tables_during_rehash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
