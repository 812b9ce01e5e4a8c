/*
 * Unit tests of the AP object (src/ap/object.c): which type a key has after two sides
 * wrote it as different types, Redis Active-Active's expiry rules, the encoding, and the
 * laws of its merge (commutative, associative, idempotent, any delivery order) on random
 * histories with seeds.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "ap/object.h"
#include "base/prng.h"

#define A crdt_actor(1, 1)
#define B crdt_actor(2, 1)
#define S(str) (const uint8_t *)(str), strlen(str)
#define TEST_SEEDS 400
#define TEST_REPLICAS 3

static bool test_same(const struct ap_object *a, const struct ap_object *b) {
    struct buf x, y;
    buf_init(&x);
    buf_init(&y);
    ap_object_encode(a, &x);
    ap_object_encode(b, &y);
    bool same = x.len == y.len && memcmp(x.data, y.data, x.len) == 0;
    buf_deinit(&x);
    buf_deinit(&y);
    return same;
}

static void test_copy(const struct ap_object *from, struct ap_object *to) {
    struct buf b;
    buf_init(&b);
    ap_object_encode(from, &b);
    assert_int_equal(ap_object_decode(b.data, b.len, to), 0);
    buf_deinit(&b);
}

/* A key written as a set on one side and as a string on the other is, after the merge,
 * whichever was written last, on both; a DEL that saw both removes both. */
static void test_ap_object_type_conflict_goes_to_the_newest_write(void **state) {
    (void)state;
    struct ap_object x, y;
    ap_object_init(&x);
    ap_object_init(&y);
    assert_int_equal(ap_object_type(&x, 0), AP_TYPE_NONE);
    (void)orset_add(&ap_object_use(&x, AP_TYPE_SET, 100)->u.set, A, S("a"));
    (void)strval_set(&ap_object_use(&y, AP_TYPE_STRING, 200)->u.string, 200, B, S("s"));
    assert_int_equal(ap_object_type(&x, 0), AP_TYPE_SET);
    ap_object_merge(&x, &y);
    ap_object_merge(&y, &x);
    assert_int_equal(ap_object_type(&x, 0), AP_TYPE_STRING);
    assert_true(test_same(&x, &y));
    ap_object_delete(&x, 300, A);
    assert_int_equal(ap_object_type(&x, 0), AP_TYPE_NONE);
    (void)orset_add(&ap_object_use(&x, AP_TYPE_SET, 301)->u.set, A, S("b"));
    assert_int_equal(ap_object_type(&x, 0), AP_TYPE_SET);
    assert_int_equal(x.parts[AP_TYPE_SET].u.set.count, 1); /* "a" was deleted */
    ap_object_deinit(&x);
    ap_object_deinit(&y);
}

/* Concurrent EXPIREs: the longer TTL wins; PERSIST beats both; a later EXPIRE (next epoch)
 * shortens it again; past `at` the key reads as absent. */
static void test_ap_object_expiry_follows_active_active(void **state) {
    (void)state;
    struct ap_object x, y, z;
    ap_object_init(&x);
    ap_object_init(&y);
    ap_object_init(&z);
    (void)strval_set(&ap_object_use(&x, AP_TYPE_STRING, 10)->u.string, 10, A, S("v"));
    test_copy(&x, &y);
    test_copy(&x, &z);
    ap_object_set_expiry(&x, 5000);
    ap_object_set_expiry(&y, 9000);
    ap_object_merge(&x, &y);
    assert_true(x.expiry.at_ms == 9000);
    ap_object_set_expiry(&z, AP_EXPIRY_NEVER); /* PERSIST, concurrent */
    ap_object_merge(&x, &z);
    assert_true(x.expiry.at_ms == AP_EXPIRY_NEVER);
    ap_object_set_expiry(&x, 1000); /* after seeing them all */
    ap_object_merge(&x, &y);
    ap_object_merge(&x, &z);
    assert_true(x.expiry.at_ms == 1000);
    assert_int_equal(ap_object_type(&x, 999), AP_TYPE_STRING);
    assert_int_equal(ap_object_type(&x, 1000), AP_TYPE_NONE);
    ap_object_deinit(&x);
    ap_object_deinit(&y);
    ap_object_deinit(&z);
}

/* Decoding refuses an unknown format, an unknown component, trailing bytes, truncation. */
static void test_ap_object_decode_refuses_what_it_cannot_trust(void **state) {
    (void)state;
    struct ap_object x, y;
    ap_object_init(&x);
    ap_object_init(&y);
    (void)orset_add(&ap_object_use(&x, AP_TYPE_SET, 7)->u.set, A, S("a"));
    struct buf b;
    buf_init(&b);
    ap_object_encode(&x, &b);
    assert_int_equal(ap_object_decode(b.data, b.len, &y), 0);
    assert_true(test_same(&x, &y));
    for (size_t cut = 0; cut < b.len; cut++)
        assert_int_equal(ap_object_decode(b.data, cut, &y), ERR_CORRUPT);
    buf_append_byte(&b, 0);
    assert_int_equal(ap_object_decode(b.data, b.len, &y), ERR_CORRUPT);
    b.data[0] = 9;
    assert_int_equal(ap_object_decode(b.data, b.len, &y), ERR_VERSION);
    const uint8_t bad_mask[] = {AP_OBJECT_FORMAT, 0, 0, 0x40};
    assert_int_equal(ap_object_decode(bad_mask, sizeof(bad_mask), &y), ERR_CORRUPT);
    assert_int_equal(ap_object_type(&y, 0), AP_TYPE_NONE);
    buf_deinit(&b);
    ap_object_deinit(&x);
    ap_object_deinit(&y);
}

/* One random write of any kind, as actor, at timestamp ts. */
static void test_random_write(struct ap_object *o, uint64_t actor, uint64_t ts, struct prng *p) {
    static const char *const words[] = {"a", "b", "12", ""};
    const char *w = words[prng_range(p, 0, 4)];
    int64_t r;
    switch (prng_range(p, 0, 9)) {
    case 0:
        (void)lwwreg_write(&ap_object_use(o, AP_TYPE_PLAIN, ts)->u.plain, ts, actor, false, S(w));
        break;
    case 1:
        (void)mvreg_write(&ap_object_use(o, AP_TYPE_SIBLINGS, ts)->u.siblings, actor, NULL, S(w));
        break;
    case 2:
        (void)strval_set(&ap_object_use(o, AP_TYPE_STRING, ts)->u.string, ts, actor, S(w));
        break;
    case 3:
        (void)strval_incr(&ap_object_use(o, AP_TYPE_STRING, ts)->u.string, actor, 2, &r);
        break;
    case 4:
        (void)orset_add(&ap_object_use(o, AP_TYPE_SET, ts)->u.set, actor, S(w));
        break;
    case 5:
        (void)orset_remove(&ap_object_use(o, AP_TYPE_SET, ts)->u.set, S(w));
        break;
    case 6:
        (void)strval_set(ormap_field(&ap_object_use(o, AP_TYPE_HASH, ts)->u.hash, S(w)), ts, actor,
                         S("v"));
        break;
    case 7:
        ap_object_delete(o, ts, actor);
        break;
    default:
        ap_object_set_expiry(o, prng_range(p, 0, 3) == 0 ? AP_EXPIRY_NEVER : 1000 + ts);
        break;
    }
}

/* Random histories on three replicas with stale copies delivered late and twice: every
 * replica ends equal, whatever the order, and merge obeys its three laws. */
static void test_ap_object_merge_laws_hold_on_random_histories(void **state) {
    (void)state;
    for (uint64_t seed = 1; seed <= TEST_SEEDS; seed++) {
        struct prng p;
        prng_init(&p, seed);
        struct ap_object r[TEST_REPLICAS], copy, ab, ba, abc, bca;
        for (int i = 0; i < TEST_REPLICAS; i++) ap_object_init(&r[i]);
        uint64_t ts[TEST_REPLICAS] = {0};
        for (int step = 0; step < 40; step++) {
            uint32_t i = (uint32_t)prng_range(&p, 0, TEST_REPLICAS);
            uint32_t j = (uint32_t)prng_range(&p, 0, TEST_REPLICAS);
            ts[i] += prng_range(&p, 1, 4);
            test_random_write(&r[i], crdt_actor(i + 1, 1), ts[i], &p);
            if (i != j && prng_range(&p, 0, 3) == 0) ap_object_merge(&r[j], &r[i]);
        }
        ap_object_init(&copy);
        ap_object_init(&ab);
        ap_object_init(&ba);
        ap_object_init(&abc);
        ap_object_init(&bca);
        test_copy(&r[0], &ab);
        ap_object_merge(&ab, &r[1]);
        test_copy(&r[1], &ba);
        ap_object_merge(&ba, &r[0]);
        if (!test_same(&ab, &ba)) fail_msg("seed %llu: not commutative", (unsigned long long)seed);
        test_copy(&ab, &abc);
        ap_object_merge(&abc, &r[2]);
        test_copy(&r[2], &bca);
        ap_object_merge(&bca, &r[1]);
        ap_object_merge(&bca, &r[0]);
        if (!test_same(&abc, &bca))
            fail_msg("seed %llu: not associative", (unsigned long long)seed);
        test_copy(&abc, &copy);
        ap_object_merge(&copy, &r[1]);
        if (!test_same(&abc, &copy))
            fail_msg("seed %llu: not idempotent", (unsigned long long)seed);
        for (int i = 0; i < TEST_REPLICAS; i++) {
            for (int j = 0; j < TEST_REPLICAS; j++)
                if (i != j) ap_object_merge(&r[i], &r[j]);
        }
        for (int i = 0; i < TEST_REPLICAS; i++) {
            if (!test_same(&r[i], &abc))
                fail_msg("seed %llu: replica %d did not converge", (unsigned long long)seed, i);
            ap_object_deinit(&r[i]);
        }
        ap_object_deinit(&copy);
        ap_object_deinit(&ab);
        ap_object_deinit(&ba);
        ap_object_deinit(&abc);
        ap_object_deinit(&bca);
    }
}

/* Why lives: a set's copy is collected at replica 2 while replica 1 still holds its
 * tombstone. A's next add on a fresh copy, named in the old life, would mint the dot the
 * tombstone's clock covers, and the merge would drop it; in a new life it survives. */
static void test_ap_object_a_fresh_copy_writes_in_a_new_life(void **state) {
    (void)state;
    uint64_t next_life = 7;
    struct ap_object old, fresh, reused;
    ap_object_init(&old);
    ap_object_init(&fresh);
    ap_object_init(&reused);
    uint64_t named = ap_object_actor(&old, A, 1, &next_life);
    assert_int_equal(next_life, 8);
    assert_int_equal(ap_object_actor(&old, A, 1, &next_life), named); /* the same life */
    uint64_t later = 20; /* a later start's first life */
    struct ap_object copy;
    ap_object_init(&copy);
    ap_object_merge(&copy, &old);
    assert_int_not_equal(ap_object_actor(&copy, A, 20, &later), named);
    assert_int_equal(vv_get(&copy.lives, A), 20);
    ap_object_deinit(&copy);
    (void)orset_add(&ap_object_use(&old, AP_TYPE_SET, 100)->u.set, named, S("a"));
    ap_object_delete(&old, 200, named);
    assert_true(ap_object_is_tombstone(&old));
    uint64_t again = ap_object_actor(&fresh, A, 1, &next_life); /* collected here: a new life */
    assert_int_not_equal(again, named);
    (void)orset_add(&ap_object_use(&fresh, AP_TYPE_SET, 300)->u.set, again, S("b"));
    ap_object_merge(&fresh, &old);
    assert_true(orset_contains(&fresh.parts[AP_TYPE_SET].u.set, S("b")));
    assert_int_equal(vv_get(&fresh.lives, A), 8); /* the later life stays */
    /* What the old naming would have done: the add is taken for the one the DEL saw. */
    (void)orset_add(&ap_object_use(&reused, AP_TYPE_SET, 300)->u.set, named, S("b"));
    ap_object_merge(&reused, &old);
    assert_false(orset_contains(&reused.parts[AP_TYPE_SET].u.set, S("b")));
    ap_object_deinit(&old);
    ap_object_deinit(&fresh);
    ap_object_deinit(&reused);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ap_object_type_conflict_goes_to_the_newest_write),
        cmocka_unit_test(test_ap_object_expiry_follows_active_active),
        cmocka_unit_test(test_ap_object_decode_refuses_what_it_cannot_trust),
        cmocka_unit_test(test_ap_object_merge_laws_hold_on_random_histories),
        cmocka_unit_test(test_ap_object_a_fresh_copy_writes_in_a_new_life),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
