/*
 * Unit tests of src/data/db.c and collections.c: the keyspace (every value type, binary and
 * empty keys, growth and shrink, SCAN, expiry, active expiry, clear, memory accounting) and
 * the set and hash objects. Every test frees its db (ASan checks for leaks).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/db.h"

#define TEST_SEED 0xc0ffee
#define TEST_BIG_COUNT 100000
#define TEST_KEY_BYTES 16

static const uint8_t *test_bytes(const char *s) {
    return (const uint8_t *)s;
}

/* "key:%012d": 16 bytes, like the benchmark's keys. */
static void test_key(char out[TEST_KEY_BYTES + 1], size_t i) {
    snprintf(out, TEST_KEY_BYTES + 1, "key:%012zu", i);
}

static void test_put(struct db *db, const char *key, const char *value, uint64_t expire_ms) {
    db_put_string(db, test_bytes(key), strlen(key), test_bytes(value), strlen(value), expire_ms);
}

static void assert_string_value(struct db *db, const char *key, const char *value) {
    struct db_entry *e = db_find(db, test_bytes(key), strlen(key));
    assert_non_null(e);
    assert_int_equal(db_entry_type(e), VALUE_STRING);
    size_t n;
    const uint8_t *v = db_entry_string(e, &n);
    assert_int_equal(n, strlen(value));
    assert_memory_equal(v, value, n);
}

/* Memory of an empty db that has had keys (one table, one spare expiry block): the
 * accounting baseline that deleting everything must return to. */
static size_t test_empty_bytes(struct db *db) {
    test_put(db, "warmup", "v", 1);
    assert_true(db_delete(db, test_bytes("warmup"), 6));
    assert_int_equal(db_count(db), 0);
    return db_memory_bytes(db);
}

static void test_db_put_string_then_find_returns_key_and_value(void **state) {
    (void)state;
    struct db *db = db_new(TEST_SEED);
    assert_null(db_find(db, test_bytes("a"), 1));
    test_put(db, "a", "hello", DB_NO_EXPIRE);
    assert_string_value(db, "a", "hello");
    struct db_entry *e = db_find(db, test_bytes("a"), 1);
    size_t n;
    assert_memory_equal(db_entry_key(e, &n), "a", 1);
    assert_int_equal(n, 1);
    assert_int_equal(db_entry_expire_ms(e), DB_NO_EXPIRE);
    assert_false(db_entry_expired(e, UINT64_MAX));
    assert_null(db_find(db, test_bytes("b"), 1));
    assert_int_equal(db_count(db), 1);
    db_free(db);
}

static void test_db_put_string_replaces_a_string_of_any_size(void **state) {
    (void)state;
    struct db *db = db_new(TEST_SEED);
    test_put(db, "k", "12345", DB_NO_EXPIRE);
    test_put(db, "k", "abcde", DB_NO_EXPIRE); /* same size: in place */
    assert_string_value(db, "k", "abcde");
    test_put(db, "k", "a much longer value than before", DB_NO_EXPIRE);
    assert_string_value(db, "k", "a much longer value than before");
    test_put(db, "k", "x", DB_NO_EXPIRE);
    assert_string_value(db, "k", "x");
    assert_int_equal(db_count(db), 1);
    db_free(db);
}

static void test_db_put_string_accepts_a_value_borrowed_from_the_replaced_entry(void **state) {
    (void)state;
    /* SET k (GET k)[1..]: the value points into the entry being replaced. */
    struct db *db = db_new(TEST_SEED);
    test_put(db, "k", "0123456789", DB_NO_EXPIRE);
    size_t n;
    const uint8_t *v = db_entry_string(db_find(db, test_bytes("k"), 1), &n);
    db_put_string(db, test_bytes("k"), 1, v + 1, n - 1, DB_NO_EXPIRE);
    assert_string_value(db, "k", "123456789");
    v = db_entry_string(db_find(db, test_bytes("k"), 1), &n);
    db_put_string(db, test_bytes("k"), 1, v, n, DB_NO_EXPIRE);
    assert_string_value(db, "k", "123456789");
    db_free(db);
}

static void test_db_put_string_replaces_a_set_and_a_hash(void **state) {
    (void)state;
    struct db *db = db_new(TEST_SEED);
    struct db_entry *e = db_put_set(db, test_bytes("s"), 1);
    assert_true(set_add(db_entry_set(e), test_bytes("m"), 1));
    e = db_put_hash(db, test_bytes("h"), 1);
    assert_true(hash_put(db_entry_hash(e), test_bytes("f"), 1, test_bytes("v"), 1));
    test_put(db, "s", "now a string", DB_NO_EXPIRE);
    test_put(db, "h", "also", DB_NO_EXPIRE);
    assert_string_value(db, "s", "now a string");
    assert_string_value(db, "h", "also");
    assert_int_equal(db_count(db), 2);
    db_free(db); /* ASan: the set and hash were freed on replace */
}

static void test_db_delete_removes_every_type_and_reports_whether_it_existed(void **state) {
    (void)state;
    struct db *db = db_new(TEST_SEED);
    size_t empty_bytes = test_empty_bytes(db);
    test_put(db, "str", "v", DB_NO_EXPIRE);
    set_add(db_entry_set(db_put_set(db, test_bytes("set"), 3)), test_bytes("m"), 1);
    hash_put(db_entry_hash(db_put_hash(db, test_bytes("hash"), 4)), test_bytes("f"), 1,
             test_bytes("v"), 1);
    assert_int_equal(db_count(db), 3);
    assert_true(db_delete(db, test_bytes("str"), 3));
    assert_true(db_delete(db, test_bytes("set"), 3));
    assert_true(db_delete(db, test_bytes("hash"), 4));
    assert_false(db_delete(db, test_bytes("str"), 3));
    assert_false(db_delete(db, test_bytes("never"), 5));
    assert_int_equal(db_count(db), 0);
    assert_int_equal(db_memory_bytes(db), empty_bytes);
    db_free(db);
}

static void test_db_keys_are_binary_and_nul_bytes_distinguish_them(void **state) {
    (void)state;
    struct db *db = db_new(TEST_SEED);
    const uint8_t k1[] = {'a', 0, 'b'};
    const uint8_t k2[] = {'a', 0, 'c'};
    const uint8_t v[] = {0, 0xff, 0};
    db_put_string(db, k1, 3, v, 3, DB_NO_EXPIRE);
    db_put_string(db, k2, 3, v, 2, DB_NO_EXPIRE);
    db_put_string(db, k1, 1, v, 1, DB_NO_EXPIRE); /* "a" */
    assert_int_equal(db_count(db), 3);
    size_t n;
    assert_memory_equal(db_entry_string(db_find(db, k1, 3), &n), v, 3);
    assert_int_equal(n, 3);
    db_entry_string(db_find(db, k2, 3), &n);
    assert_int_equal(n, 2);
    db_entry_string(db_find(db, k1, 1), &n);
    assert_int_equal(n, 1);
    assert_null(db_find(db, k1, 2)); /* "a\0" */
    db_free(db);
}

static void test_db_empty_key_and_empty_value_are_valid(void **state) {
    (void)state;
    struct db *db = db_new(TEST_SEED);
    db_put_string(db, NULL, 0, NULL, 0, DB_NO_EXPIRE);
    test_put(db, "k", "", DB_NO_EXPIRE);
    struct db_entry *e = db_find(db, test_bytes(""), 0);
    assert_non_null(e);
    size_t n = 99;
    db_entry_key(e, &n);
    assert_int_equal(n, 0);
    db_entry_string(e, &n);
    assert_int_equal(n, 0);
    assert_string_value(db, "k", "");
    assert_int_equal(db_count(db), 2);
    assert_true(db_delete(db, NULL, 0));
    assert_null(db_find(db, test_bytes(""), 0));
    db_free(db);
}

static void test_db_grows_and_shrinks_with_100k_keys_finding_them_during_rehash(void **state) {
    (void)state;
    struct db *db = db_new(TEST_SEED);
    char key[TEST_KEY_BYTES + 1];
    char probe[TEST_KEY_BYTES + 1];
    for (size_t i = 0; i < TEST_BIG_COUNT; i++) {
        test_key(key, i);
        test_put(db, key, key, DB_NO_EXPIRE);
        test_key(probe, (i * 7919) % (i + 1));
        assert_string_value(db, probe, probe);
    }
    assert_int_equal(db_count(db), TEST_BIG_COUNT);
    size_t big_bytes = db_memory_bytes(db);
    for (size_t i = 0; i < TEST_BIG_COUNT - 5; i++) {
        test_key(key, i);
        assert_true(db_delete(db, test_bytes(key), TEST_KEY_BYTES));
        assert_null(db_find(db, test_bytes(key), TEST_KEY_BYTES));
        test_key(probe, TEST_BIG_COUNT - 1 - i % 5);
        assert_string_value(db, probe, probe);
    }
    assert_int_equal(db_count(db), 5);
    /* Idle cycles finish the shrink: the table no longer holds 100k buckets. */
    for (int i = 0; i < 100; i++) db_expire_cycle(db, 0, 10, NULL, NULL);
    assert_true(db_memory_bytes(db) < big_bytes / 1000);
    db_free(db);
}

struct test_seen {
    unsigned *visits; /* by key number */
    size_t entries;
};

static void test_scan_count(void *ctx, struct db_entry *e) {
    struct test_seen *seen = ctx;
    size_t n;
    const uint8_t *key = db_entry_key(e, &n);
    assert_int_equal(n, TEST_KEY_BYTES);
    char copy[TEST_KEY_BYTES + 1] = {0};
    memcpy(copy, key, n);
    seen->visits[strtoul(copy + 4, NULL, 10)]++;
    seen->entries++;
}

/* Scans db to the end, applying one mutation step between calls; returns the calls made. */
static size_t test_scan_all(struct db *db, struct test_seen *seen,
                            void (*mutate)(struct db *, size_t), size_t *step) {
    uint64_t cursor = 0;
    size_t calls = 0;
    do {
        cursor = db_scan(db, cursor, test_scan_count, seen);
        calls++;
        if (mutate != NULL) mutate(db, (*step)++);
    } while (cursor != 0);
    return calls;
}

static void test_grow_step(struct db *db, size_t step) {
    char key[TEST_KEY_BYTES + 1];
    for (size_t i = 0; i < 50; i++) {
        size_t k = 1000 + step * 50 + i;
        if (k >= TEST_BIG_COUNT) return;
        test_key(key, k);
        test_put(db, key, "v", DB_NO_EXPIRE);
    }
}

static void test_db_scan_returns_every_key_present_for_the_whole_scan_during_growth(void **state) {
    (void)state;
    struct db *db = db_new(TEST_SEED);
    struct test_seen seen = {calloc(TEST_BIG_COUNT, sizeof(unsigned)), 0};
    char key[TEST_KEY_BYTES + 1];
    for (size_t i = 0; i < 1000; i++) {
        test_key(key, i);
        test_put(db, key, "v", DB_NO_EXPIRE);
    }
    size_t step = 0;
    size_t calls = test_scan_all(db, &seen, test_grow_step, &step);
    assert_true(calls > 10);
    assert_true(db_count(db) > 8 * 1000); /* the table doubled at least 3 times under us */
    for (size_t i = 0; i < 1000; i++) assert_true(seen.visits[i] >= 1);
    free(seen.visits);
    db_free(db);
}

static void test_shrink_step(struct db *db, size_t step) {
    char key[TEST_KEY_BYTES + 1];
    for (size_t i = 0; i < 500; i++) {
        size_t k = 100 + step * 500 + i;
        if (k >= 40000) return;
        test_key(key, k);
        assert_true(db_delete(db, test_bytes(key), TEST_KEY_BYTES));
    }
}

static void test_db_scan_returns_every_key_present_for_the_whole_scan_during_shrink(void **state) {
    (void)state;
    struct db *db = db_new(TEST_SEED);
    struct test_seen seen = {calloc(40000, sizeof(unsigned)), 0};
    char key[TEST_KEY_BYTES + 1];
    for (size_t i = 0; i < 40000; i++) {
        test_key(key, i);
        test_put(db, key, "v", DB_NO_EXPIRE);
    }
    size_t step = 0;
    test_scan_all(db, &seen, test_shrink_step, &step);
    assert_int_equal(db_count(db), 100);
    for (size_t i = 0; i < 100; i++) assert_true(seen.visits[i] >= 1);
    free(seen.visits);
    db_free(db);
}

static void test_db_scan_without_changes_returns_every_key_once_a_few_per_call(void **state) {
    (void)state;
    struct db *db = db_new(TEST_SEED);
    struct test_seen seen = {calloc(3000, sizeof(unsigned)), 0};
    char key[TEST_KEY_BYTES + 1];
    for (size_t i = 0; i < 3000; i++) {
        test_key(key, i);
        test_put(db, key, "v", DB_NO_EXPIRE);
    }
    for (int i = 0; i < 100; i++) db_expire_cycle(db, 0, 0, NULL, NULL); /* finish rehash */
    size_t calls = test_scan_all(db, &seen, NULL, NULL);
    assert_true(calls > 3000 / 100);
    assert_int_equal(seen.entries, 3000);
    for (size_t i = 0; i < 3000; i++) assert_int_equal(seen.visits[i], 1);
    free(seen.visits);
    db_clear(db);
    assert_int_equal(db_scan(db, 0, test_scan_count, NULL), 0);
    db_free(db);
}

static void test_db_entry_set_expire_sets_changes_and_clears_the_expiry(void **state) {
    (void)state;
    struct db *db = db_new(TEST_SEED);
    test_put(db, "k", "v", DB_NO_EXPIRE);
    struct db_entry *e = db_find(db, test_bytes("k"), 1);
    db_entry_set_expire(db, e, 1000);
    assert_ptr_equal(db_find(db, test_bytes("k"), 1), e); /* in place */
    assert_int_equal(db_entry_expire_ms(e), 1000);
    assert_int_equal(db_expires_count(db), 1);
    assert_false(db_entry_expired(e, 999));
    assert_true(db_entry_expired(e, 1000)); /* expire_ms <= now_ms */
    db_entry_set_expire(db, e, 2000);
    assert_int_equal(db_entry_expire_ms(e), 2000);
    assert_int_equal(db_expires_count(db), 1);
    db_entry_set_expire(db, e, DB_NO_EXPIRE); /* PERSIST */
    assert_int_equal(db_entry_expire_ms(e), DB_NO_EXPIRE);
    assert_int_equal(db_expires_count(db), 0);
    assert_false(db_entry_expired(e, UINT64_MAX));
    db_free(db);
}

static void test_db_put_string_sets_or_clears_the_expiry_like_set(void **state) {
    (void)state;
    struct db *db = db_new(TEST_SEED);
    test_put(db, "k", "v", 500);
    assert_int_equal(db_entry_expire_ms(db_find(db, test_bytes("k"), 1)), 500);
    test_put(db, "k", "longer value", 700); /* replaced by a new allocation */
    assert_int_equal(db_entry_expire_ms(db_find(db, test_bytes("k"), 1)), 700);
    assert_int_equal(db_expires_count(db), 1);
    test_put(db, "k", "w", DB_NO_EXPIRE);
    assert_int_equal(db_entry_expire_ms(db_find(db, test_bytes("k"), 1)), DB_NO_EXPIRE);
    assert_int_equal(db_expires_count(db), 0);
    test_put(db, "k", "w", 900);
    assert_true(db_delete(db, test_bytes("k"), 1));
    assert_int_equal(db_expires_count(db), 0);
    db_free(db);
}

static void test_db_expiries_of_other_keys_survive_deletes_and_replaces(void **state) {
    (void)state;
    /* Removing a record moves another into its place: every key keeps its own expiry. */
    struct db *db = db_new(TEST_SEED);
    char key[TEST_KEY_BYTES + 1];
    for (size_t i = 0; i < 3000; i++) {
        test_key(key, i);
        test_put(db, key, "v", 10000 + i);
    }
    for (size_t i = 0; i < 3000; i += 3) {
        test_key(key, i);
        assert_true(db_delete(db, test_bytes(key), TEST_KEY_BYTES));
        test_key(key, i + 1);
        db_entry_set_expire(db, db_find(db, test_bytes(key), TEST_KEY_BYTES), DB_NO_EXPIRE);
        test_key(key, i + 2);
        test_put(db, key, "a longer value", 20000 + i + 2);
    }
    assert_int_equal(db_count(db), 2000);
    assert_int_equal(db_expires_count(db), 1000);
    for (size_t i = 0; i < 3000; i += 3) {
        test_key(key, i + 1);
        assert_int_equal(db_entry_expire_ms(db_find(db, test_bytes(key), TEST_KEY_BYTES)), 0);
        test_key(key, i + 2);
        assert_int_equal(db_entry_expire_ms(db_find(db, test_bytes(key), TEST_KEY_BYTES)),
                         20000 + i + 2);
    }
    db_free(db);
}

struct test_expired {
    char keys[64][TEST_KEY_BYTES + 1];
    size_t count;
    struct db *db;
};

static void test_on_expired(void *ctx, const uint8_t *key, size_t key_bytes) {
    struct test_expired *expired = ctx;
    assert_int_equal(key_bytes, TEST_KEY_BYTES);
    /* Called before the delete: the key is still there. */
    assert_non_null(db_find(expired->db, key, key_bytes));
    assert_true(expired->count < 64);
    memcpy(expired->keys[expired->count++], key, key_bytes);
}

static void test_db_expire_cycle_deletes_only_expired_keys_and_calls_fn_for_each(void **state) {
    (void)state;
    struct db *db = db_new(TEST_SEED);
    char key[TEST_KEY_BYTES + 1];
    for (size_t i = 0; i < 40; i++) {
        test_key(key, i);
        /* Even keys expire at 100, odd ones at 300; keys 40.. have no expiry. */
        test_put(db, key, "v", i % 2 == 0 ? 100 : 300);
        test_key(key, 40 + i);
        test_put(db, key, "v", DB_NO_EXPIRE);
    }
    struct test_expired expired = {.db = db};
    assert_int_equal(db_expire_cycle(db, 99, 1000, test_on_expired, &expired), 0);
    assert_int_equal(db_expire_cycle(db, 100, 1000, test_on_expired, &expired), 20);
    assert_int_equal(expired.count, 20);
    for (size_t i = 0; i < 20; i++) {
        size_t k = strtoul(expired.keys[i] + 4, NULL, 10);
        assert_int_equal(k % 2, 0);
        assert_true(k < 40);
        assert_null(db_find(db, test_bytes(expired.keys[i]), TEST_KEY_BYTES));
    }
    assert_int_equal(db_count(db), 60);
    assert_int_equal(db_expires_count(db), 20);
    for (size_t i = 1; i < 40; i += 2) {
        test_key(key, i);
        assert_non_null(db_find(db, test_bytes(key), TEST_KEY_BYTES));
    }
    db_free(db);
}

static void test_db_expire_cycle_examines_at_most_checks_max_and_resumes(void **state) {
    (void)state;
    struct db *db = db_new(TEST_SEED);
    char key[TEST_KEY_BYTES + 1];
    for (size_t i = 0; i < 100; i++) {
        test_key(key, i);
        test_put(db, key, "v", 50);
    }
    size_t total = 0;
    size_t cycles = 0;
    while (db_expires_count(db) > 0) {
        size_t deleted = db_expire_cycle(db, 50, 7, NULL, NULL);
        assert_true(deleted <= 7);
        total += deleted;
        cycles++;
        assert_true(cycles <= 100);
    }
    assert_int_equal(total, 100);
    assert_int_equal(db_count(db), 0);
    assert_int_equal(db_expire_cycle(db, 50, 7, NULL, NULL), 0);
    db_free(db);
}

static void test_db_expire_cycle_reaches_expired_keys_among_many_live_ones(void **state) {
    (void)state;
    /* The persistent cursor walks every expiring key over successive cycles. */
    struct db *db = db_new(TEST_SEED);
    char key[TEST_KEY_BYTES + 1];
    for (size_t i = 0; i < 5000; i++) {
        test_key(key, i);
        test_put(db, key, "v", i % 100 == 0 ? 10 : 1000000);
    }
    size_t total = 0;
    for (int cycle = 0; cycle < 5000 / 20 + 1; cycle++) {
        total += db_expire_cycle(db, 20, 20, NULL, NULL);
    }
    assert_int_equal(total, 50);
    assert_int_equal(db_count(db), 4950);
    assert_int_equal(db_expires_count(db), 4950);
    db_free(db);
}

static void test_db_clear_removes_every_key_and_expiry_and_stays_usable(void **state) {
    (void)state;
    struct db *db = db_new(TEST_SEED);
    char key[TEST_KEY_BYTES + 1];
    for (size_t i = 0; i < 5000; i++) {
        test_key(key, i);
        test_put(db, key, "value", i % 2 ? 100 : DB_NO_EXPIRE);
    }
    set_add(db_entry_set(db_put_set(db, test_bytes("s"), 1)), test_bytes("m"), 1);
    hash_put(db_entry_hash(db_put_hash(db, test_bytes("h"), 1)), test_bytes("f"), 1,
             test_bytes("v"), 1);
    assert_int_equal(db_count(db), 5002);
    assert_int_equal(db_expires_count(db), 2500);
    db_clear(db);
    assert_int_equal(db_count(db), 0);
    assert_int_equal(db_expires_count(db), 0);
    assert_int_equal(db_memory_bytes(db), 0);
    test_key(key, 3);
    assert_null(db_find(db, test_bytes(key), TEST_KEY_BYTES));
    test_put(db, "again", "yes", 5);
    assert_string_value(db, "again", "yes");
    assert_int_equal(db_expires_count(db), 1);
    db_free(db);
}

static void test_db_memory_bytes_grows_with_data_and_returns_to_zero(void **state) {
    (void)state;
    struct db *db = db_new(TEST_SEED);
    assert_int_equal(db_memory_bytes(db), 0);
    size_t empty_bytes = test_empty_bytes(db);
    test_put(db, "k", "v", DB_NO_EXPIRE);
    size_t one = db_memory_bytes(db);
    assert_true(one >= empty_bytes + 2);
    test_put(db, "k", "a longer value", DB_NO_EXPIRE);
    assert_int_equal(db_memory_bytes(db), one + 13);
    struct set *s = db_entry_set(db_put_set(db, test_bytes("s"), 1));
    size_t before = db_memory_bytes(db);
    set_add(s, test_bytes("member"), 6);
    assert_true(db_memory_bytes(db) >= before + 6);
    test_put(db, "e", "v", 10);
    assert_true(db_delete(db, test_bytes("k"), 1));
    assert_true(db_delete(db, test_bytes("s"), 1));
    assert_true(db_delete(db, test_bytes("e"), 1));
    assert_int_equal(db_memory_bytes(db), empty_bytes);
    db_free(db);
}

static void test_db_same_seed_and_operations_give_the_same_scan_order(void **state) {
    (void)state;
    /* Determinism: replicas that apply the same commands visit keys in the same order. */
    struct db *a = db_new(TEST_SEED);
    struct db *b = db_new(TEST_SEED);
    char key[TEST_KEY_BYTES + 1];
    for (size_t i = 0; i < 2000; i++) {
        test_key(key, i);
        test_put(a, key, "v", DB_NO_EXPIRE);
        test_put(b, key, "v", DB_NO_EXPIRE);
    }
    struct test_seen sa = {calloc(2000, sizeof(unsigned)), 0};
    struct test_seen sb = {calloc(2000, sizeof(unsigned)), 0};
    uint64_t ca = 0;
    uint64_t cb = 0;
    do {
        ca = db_scan(a, ca, test_scan_count, &sa);
        cb = db_scan(b, cb, test_scan_count, &sb);
        assert_int_equal(ca, cb);
        assert_int_equal(sa.entries, sb.entries);
    } while (ca != 0);
    free(sa.visits);
    free(sb.visits);
    db_free(a);
    db_free(b);
}

static void test_member_count(void *ctx, const uint8_t *member, size_t bytes) {
    unsigned *visits = ctx;
    if (bytes == 0) {
        visits[0]++;
        return;
    }
    char copy[16] = {0};
    assert_true(bytes < sizeof(copy));
    memcpy(copy, member, bytes);
    visits[strtoul(copy + 1, NULL, 10)]++;
}

static void test_set_add_remove_contains_count_and_each(void **state) {
    (void)state;
    struct db *db = db_new(TEST_SEED);
    struct set *s = db_entry_set(db_put_set(db, test_bytes("s"), 1));
    assert_int_equal(set_count(s), 0);
    char m[16];
    for (size_t i = 1; i <= 10000; i++) {
        snprintf(m, sizeof(m), "m%zu", i);
        assert_true(set_add(s, test_bytes(m), strlen(m)));
        assert_false(set_add(s, test_bytes(m), strlen(m)));
    }
    assert_true(set_add(s, NULL, 0)); /* the empty member */
    assert_int_equal(set_count(s), 10001);
    assert_true(set_contains(s, test_bytes("m5000"), 5));
    assert_false(set_contains(s, test_bytes("m10001"), 6));
    assert_true(set_remove(s, test_bytes("m5000"), 5));
    assert_false(set_remove(s, test_bytes("m5000"), 5));
    assert_false(set_contains(s, test_bytes("m5000"), 5));
    unsigned *visits = calloc(10001, sizeof(unsigned));
    set_each(s, test_member_count, visits);
    for (size_t i = 0; i <= 10000; i++) assert_int_equal(visits[i], i == 5000 ? 0 : 1);
    free(visits);
    assert_int_equal(set_count(s), 10000);
    db_free(db);
}

static void test_set_members_are_binary(void **state) {
    (void)state;
    struct db *db = db_new(TEST_SEED);
    struct set *s = db_entry_set(db_put_set(db, test_bytes("s"), 1));
    const uint8_t a[] = {0, 1};
    const uint8_t b[] = {0, 2};
    assert_true(set_add(s, a, 2));
    assert_true(set_add(s, b, 2));
    assert_true(set_add(s, a, 1));
    assert_false(set_add(s, b, 1)); /* {0} already there */
    assert_int_equal(set_count(s), 3);
    db_free(db);
}

struct test_hash_seen {
    size_t count;
    size_t value_bytes_total;
};

static void test_hash_count(void *ctx, const uint8_t *field, size_t field_bytes,
                            const uint8_t *value, size_t value_bytes) {
    struct test_hash_seen *seen = ctx;
    assert_true(field_bytes > 0);
    assert_int_equal(field[0], 'f');
    if (value_bytes > 0) assert_int_equal(value[0], 'v');
    seen->count++;
    seen->value_bytes_total += value_bytes;
}

static void test_hash_put_get_remove_count_and_each(void **state) {
    (void)state;
    struct db *db = db_new(TEST_SEED);
    struct hash *h = db_entry_hash(db_put_hash(db, test_bytes("h"), 1));
    char f[16];
    for (size_t i = 0; i < 5000; i++) {
        snprintf(f, sizeof(f), "f%zu", i);
        assert_true(hash_put(h, test_bytes(f), strlen(f), test_bytes("v1"), 2));
    }
    assert_false(hash_put(h, test_bytes("f7"), 2, test_bytes("v2"), 2));    /* same size */
    assert_false(hash_put(h, test_bytes("f8"), 2, test_bytes("vlong"), 5)); /* new size */
    assert_false(hash_put(h, test_bytes("f9"), 2, NULL, 0));                /* empty */
    size_t n;
    const uint8_t *v = hash_get(h, test_bytes("f7"), 2, &n);
    assert_int_equal(n, 2);
    assert_memory_equal(v, "v2", 2);
    v = hash_get(h, test_bytes("f8"), 2, &n);
    assert_int_equal(n, 5);
    assert_memory_equal(v, "vlong", 5);
    assert_non_null(hash_get(h, test_bytes("f9"), 2, &n));
    assert_int_equal(n, 0);
    assert_null(hash_get(h, test_bytes("f5000"), 5, &n));
    assert_true(hash_remove(h, test_bytes("f0"), 2));
    assert_false(hash_remove(h, test_bytes("f0"), 2));
    assert_int_equal(hash_count(h), 4999);
    struct test_hash_seen seen = {0};
    hash_each(h, test_hash_count, &seen);
    assert_int_equal(seen.count, 4999);
    assert_int_equal(seen.value_bytes_total, 4996 * 2 + 2 + 5 + 0);
    db_free(db);
}

static void test_hash_put_accepts_a_value_borrowed_from_the_replaced_field(void **state) {
    (void)state;
    struct db *db = db_new(TEST_SEED);
    struct hash *h = db_entry_hash(db_put_hash(db, test_bytes("h"), 1));
    hash_put(h, test_bytes("f"), 1, test_bytes("abcdef"), 6);
    size_t n;
    const uint8_t *v = hash_get(h, test_bytes("f"), 1, &n);
    assert_false(hash_put(h, test_bytes("f"), 1, v + 2, n - 2));
    v = hash_get(h, test_bytes("f"), 1, &n);
    assert_int_equal(n, 4);
    assert_memory_equal(v, "cdef", 4);
    db_free(db);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_db_put_string_then_find_returns_key_and_value),
        cmocka_unit_test(test_db_put_string_replaces_a_string_of_any_size),
        cmocka_unit_test(test_db_put_string_accepts_a_value_borrowed_from_the_replaced_entry),
        cmocka_unit_test(test_db_put_string_replaces_a_set_and_a_hash),
        cmocka_unit_test(test_db_delete_removes_every_type_and_reports_whether_it_existed),
        cmocka_unit_test(test_db_keys_are_binary_and_nul_bytes_distinguish_them),
        cmocka_unit_test(test_db_empty_key_and_empty_value_are_valid),
        cmocka_unit_test(test_db_grows_and_shrinks_with_100k_keys_finding_them_during_rehash),
        cmocka_unit_test(test_db_scan_returns_every_key_present_for_the_whole_scan_during_growth),
        cmocka_unit_test(test_db_scan_returns_every_key_present_for_the_whole_scan_during_shrink),
        cmocka_unit_test(test_db_scan_without_changes_returns_every_key_once_a_few_per_call),
        cmocka_unit_test(test_db_entry_set_expire_sets_changes_and_clears_the_expiry),
        cmocka_unit_test(test_db_put_string_sets_or_clears_the_expiry_like_set),
        cmocka_unit_test(test_db_expiries_of_other_keys_survive_deletes_and_replaces),
        cmocka_unit_test(test_db_expire_cycle_deletes_only_expired_keys_and_calls_fn_for_each),
        cmocka_unit_test(test_db_expire_cycle_examines_at_most_checks_max_and_resumes),
        cmocka_unit_test(test_db_expire_cycle_reaches_expired_keys_among_many_live_ones),
        cmocka_unit_test(test_db_clear_removes_every_key_and_expiry_and_stays_usable),
        cmocka_unit_test(test_db_memory_bytes_grows_with_data_and_returns_to_zero),
        cmocka_unit_test(test_db_same_seed_and_operations_give_the_same_scan_order),
        cmocka_unit_test(test_set_add_remove_contains_count_and_each),
        cmocka_unit_test(test_set_members_are_binary),
        cmocka_unit_test(test_hash_put_get_remove_count_and_each),
        cmocka_unit_test(test_hash_put_accepts_a_value_borrowed_from_the_replaced_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
