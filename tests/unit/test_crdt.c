/*
 * Unit tests of src/crdt: the byte codec, version vectors, the hybrid logical clock, and
 * the semantics of each value (LWW register, resettable PN-counter, ORSWOT, multi-value
 * register). The laws every merge must obey (commutative, associative, idempotent, any
 * delivery order with duplicates) are in test_crdt_laws.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "base/err.h"
#include "crdt/codec.h"
#include "crdt/hlc.h"
#include "crdt/lwwreg.h"
#include "crdt/mvreg.h"
#include "crdt/ormap.h"
#include "crdt/orset.h"
#include "crdt/pncounter.h"
#include "crdt/strval.h"
#include "crdt/vv.h"

#define A crdt_actor(1, 1)
#define B crdt_actor(2, 1)
#define C crdt_actor(3, 1)
#define S(str) (const uint8_t *)(str), strlen(str)

/* Varints round-trip at their edges; a truncated, overlong or non-shortest one fails the
 * reader, and the reader stays failed (hiredis's rule). */
static void test_crdt_codec_varints_round_trip_and_refuse_bad_forms(void **state) {
    (void)state;
    const uint64_t values[] = {0,         1, 127, 128, 16383, 16384, UINT32_MAX, UINT64_MAX - 1,
                               UINT64_MAX};
    struct buf b;
    buf_init(&b);
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) crdt_put_varint(&b, values[i]);
    struct crdt_reader r;
    crdt_reader_init(&r, b.data, b.len);
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++)
        assert_true(crdt_get_varint(&r) == values[i]);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.left, 0);
    (void)crdt_get_varint(&r); /* past the end */
    assert_int_equal(r.err, ERR_CORRUPT);
    const uint8_t not_shortest[] = {0x81, 0x00};
    crdt_reader_init(&r, not_shortest, sizeof(not_shortest));
    (void)crdt_get_varint(&r);
    assert_int_equal(r.err, ERR_CORRUPT);
    const uint8_t too_long[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    crdt_reader_init(&r, too_long, sizeof(too_long));
    (void)crdt_get_varint(&r);
    assert_int_equal(r.err, ERR_CORRUPT);
    const uint8_t one[] = {0x05};
    crdt_reader_init(&r, one, 1);
    crdt_reader_fail(&r);
    assert_true(crdt_get_varint(&r) == 0); /* sticky: the good byte is not read */
    assert_null(crdt_get_bytes(&r, 0));
    buf_deinit(&b);
}

/* Version vectors: the four orders, merge as pointwise maximum, dots minted in order. */
static void test_crdt_vv_orders_and_merges_pointwise(void **state) {
    (void)state;
    struct vv a, b;
    vv_init(&a);
    vv_init(&b);
    assert_int_equal(vv_compare(&a, &b), VV_EQUAL);
    struct dot d = vv_next(&a, A);
    assert_true(d.actor == A && d.counter == 1);
    assert_int_equal(vv_compare(&a, &b), VV_AFTER);
    assert_int_equal(vv_compare(&b, &a), VV_BEFORE);
    vv_raise(&b, C, 5);
    vv_raise(&b, B, 2);
    assert_int_equal(vv_compare(&a, &b), VV_CONCURRENT);
    assert_false(vv_descends(&a, &b));
    vv_merge(&a, &b);
    assert_true(vv_get(&a, A) == 1 && vv_get(&a, B) == 2 && vv_get(&a, C) == 5);
    assert_true(vv_descends(&a, &b));
    vv_raise(&a, C, 3); /* never lowers */
    assert_true(vv_get(&a, C) == 5);
    assert_true(vv_covers(&a, (struct dot){C, 5}));
    assert_false(vv_covers(&a, (struct dot){C, 6}));
    assert_true(vv_next(&a, B).counter == 3);
    vv_deinit(&a);
    vv_deinit(&b);
}

/* Decoding refuses what the invariants forbid: unsorted actors, a zero counter. */
static void test_crdt_vv_decode_refuses_unsorted_or_zero(void **state) {
    (void)state;
    struct vv v;
    vv_init(&v);
    const uint8_t unsorted[] = {2, 5, 1, 3, 1};
    const uint8_t zero[] = {1, 5, 0};
    const uint8_t good[] = {2, 3, 1, 5, 7};
    struct crdt_reader r;
    crdt_reader_init(&r, unsorted, sizeof(unsorted));
    vv_decode(&r, &v);
    assert_int_equal(r.err, ERR_CORRUPT);
    assert_int_equal(v.count, 0);
    crdt_reader_init(&r, zero, sizeof(zero));
    vv_decode(&r, &v);
    assert_int_equal(r.err, ERR_CORRUPT);
    crdt_reader_init(&r, good, sizeof(good));
    vv_decode(&r, &v);
    assert_int_equal(r.err, 0);
    assert_true(vv_get(&v, 3) == 1 && vv_get(&v, 5) == 7);
    vv_deinit(&v);
}

/* HLC: timestamps only grow; a remote one within the offset is adopted, so the next local
 * one is after it even with a wall clock far behind; one beyond the offset is refused and
 * leaves the clock as it was (Kulkarni et al.; CockroachDB's max offset). */
static void test_crdt_hlc_orders_after_what_it_saw_and_refuses_far_clocks(void **state) {
    (void)state;
    struct hlc h;
    hlc_init(&h);
    uint64_t t1 = hlc_now(&h, 1000);
    uint64_t t2 = hlc_now(&h, 1000); /* same millisecond: the logical part moves */
    uint64_t t3 = hlc_now(&h, 999);  /* the wall clock went back: still after */
    assert_true(t1 == hlc_from_wall_ms(1000));
    assert_true(t2 == t1 + 1 && t3 == t2 + 1);
    uint64_t remote = hlc_from_wall_ms(1400) + 7;
    assert_int_equal(hlc_observe(&h, remote, 1000, HLC_OFFSET_MS_DEFAULT), 0);
    assert_true(hlc_now(&h, 1001) == remote + 1);
    uint64_t before = h.last;
    uint64_t far = hlc_from_wall_ms(2000);
    assert_int_equal(hlc_observe(&h, far, 1001, HLC_OFFSET_MS_DEFAULT), ERR_LIMIT);
    assert_true(h.last == before);
    assert_true(hlc_now(&h, 1002) < far);
}

/* LWW: the later write wins in any order; a DEL is a write, so an older value arriving
 * after it does not bring the key back; under raw wall clocks a node whose clock is behind
 * loses its later write (the lesson), and under the HLC it does not. */
static void test_crdt_lwwreg_later_wins_and_tombstones_hold(void **state) {
    (void)state;
    struct lwwreg x, y;
    lwwreg_init(&x);
    lwwreg_init(&y);
    assert_false(lwwreg_present(&x));
    assert_true(lwwreg_write(&x, 10, A, false, S("old")));
    assert_true(lwwreg_write(&y, 20, B, true, NULL, 0)); /* a DEL, later */
    assert_true(lwwreg_merge(&x, &y));
    assert_false(lwwreg_present(&x));
    assert_false(lwwreg_write(&x, 15, C, false, S("late"))); /* older than the DEL */
    assert_false(lwwreg_present(&x));
    /* Wall clocks: B's clock is 100 ms behind; B writes after seeing A's value, and loses. */
    struct lwwreg wall;
    lwwreg_init(&wall);
    assert_true(lwwreg_write(&wall, hlc_from_wall_ms(5000), A, false, S("A")));
    assert_false(lwwreg_write(&wall, hlc_from_wall_ms(4900), B, false, S("B after A")));
    assert_memory_equal(wall.value.data, "A", 1);
    /* HLC: B observed A's timestamp before writing, so its write is later. */
    struct hlc hb;
    hlc_init(&hb);
    assert_int_equal(hlc_observe(&hb, wall.ts, 4900, HLC_OFFSET_MS_DEFAULT), 0);
    assert_true(lwwreg_write(&wall, hlc_now(&hb, 4900), B, false, S("B after A")));
    assert_memory_equal(wall.value.data, "B after A", 9);
    lwwreg_deinit(&x);
    lwwreg_deinit(&y);
    lwwreg_deinit(&wall);
}

/* Counters: concurrent +7 and +3 give 10 (Redis Active-Active); a DEL removes what it
 * observed, so a concurrent INCR 3 survives it; sums that would pass 2^64 are refused. */
static void test_crdt_pncounter_sums_and_resets_what_it_observed(void **state) {
    (void)state;
    struct pncounter x, y;
    pncounter_init(&x);
    pncounter_init(&y);
    assert_int_equal(pncounter_add(&x, A, 7), 0);
    assert_int_equal(pncounter_add(&y, B, 3), 0);
    pncounter_merge(&x, &y);
    pncounter_merge(&y, &x);
    assert_true(pncounter_value(&x) == 10 && pncounter_value(&y) == 10);
    assert_int_equal(pncounter_add(&y, B, -4), 0);
    pncounter_reset(&x);                          /* DEL on x, having seen 10 */
    assert_int_equal(pncounter_add(&y, C, 3), 0); /* concurrent, on y */
    assert_false(pncounter_present(&x));
    pncounter_merge(&x, &y);
    assert_true(pncounter_value(&x) == -1); /* -4 and +3, neither observed by the DEL */
    assert_true(pncounter_present(&x));
    assert_int_equal(pncounter_add(&x, A, INT64_MIN), 0);
    assert_int_equal(pncounter_add(&x, A, INT64_MIN + 1), 0); /* n = 2^64 - 1 */
    assert_int_equal(pncounter_add(&x, A, -1), ERR_LIMIT);    /* n would pass 2^64 - 1 */
    pncounter_deinit(&x);
    pncounter_deinit(&y);
}

/* ORSWOT: a remove takes only the adds it saw (a concurrent add wins); the same element
 * added on both sides is there once (the two-tabs cart); a seen-and-removed add stays gone. */
static void test_crdt_orset_add_wins_and_removes_what_it_saw(void **state) {
    (void)state;
    struct orset x, y;
    orset_init(&x);
    orset_init(&y);
    assert_true(orset_add(&x, A, S("book")));
    orset_merge(&y, &x);
    assert_true(orset_contains(&y, S("book")));
    assert_true(orset_remove(&y, S("book")));  /* y removes the add it saw */
    assert_false(orset_add(&x, A, S("book"))); /* x adds it again, concurrently */
    orset_merge(&y, &x);
    assert_true(orset_contains(&y, S("book"))); /* add wins */
    assert_true(orset_remove(&y, S("book")));
    orset_merge(&x, &y);
    assert_false(orset_contains(&x, S("book"))); /* this time the remove saw every add */
    assert_true(orset_add(&x, A, S("pen")));
    assert_true(orset_add(&y, B, S("pen")));
    orset_merge(&x, &y);
    assert_int_equal(x.count, 1);
    assert_int_equal(x.elems[0].dot_count, 2);
    orset_clear(&x); /* DEL */
    orset_merge(&x, &y);
    assert_int_equal(x.count, 0);
    orset_deinit(&x);
    orset_deinit(&y);
}

/* Siblings (DVV): concurrent writes are all kept; a write with a context replaces exactly
 * what that context saw, including siblings that reach this replica only later; a write
 * without one replaces none; a DEL leaves no sibling; the limit refuses a write. */
static void test_crdt_mvreg_keeps_concurrent_writes_and_replaces_what_context_saw(void **state) {
    (void)state;
    struct mvreg x, y, z;
    mvreg_init(&x);
    mvreg_init(&y);
    mvreg_init(&z);
    assert_int_equal(mvreg_write(&x, A, NULL, S("tab 1")), 0);
    assert_int_equal(mvreg_write(&y, B, NULL, S("tab 2")), 0);
    mvreg_merge(&x, &y);
    assert_int_equal(x.count, 2);
    struct vv ctx;
    vv_init(&ctx);
    vv_copy(&ctx, &x.clock);                                   /* a VGET on x */
    assert_int_equal(mvreg_write(&y, B, NULL, S("tab 3")), 0); /* unseen by ctx */
    /* The context is used on z, a replica that has seen none of it yet. */
    assert_int_equal(mvreg_write(&z, C, &ctx, S("resolved")), 0);
    mvreg_merge(&z, &x);
    mvreg_merge(&z, &y);
    assert_int_equal(z.count, 2); /* "resolved" and the unseen "tab 3" */
    assert_true(z.sibs[0].value.bytes + z.sibs[1].value.bytes == 8 + 5);
    assert_int_equal(mvreg_write(&z, A, NULL, S("plain set")), 0);
    assert_int_equal(z.count, 3);
    vv_copy(&ctx, &z.clock);
    assert_int_equal(mvreg_write(&z, A, &ctx, NULL, 0), 0); /* DEL */
    assert_int_equal(z.count, 0);
    mvreg_merge(&z, &y);
    assert_int_equal(z.count, 0);
    while (x.count < MVREG_SIBLINGS_MAX) assert_int_equal(mvreg_write(&x, B, NULL, S("v")), 0);
    assert_int_equal(mvreg_write(&x, B, NULL, S("v")), ERR_LIMIT);
    assert_int_equal(mvreg_write(&x, B, &x.clock, S("v")), 0); /* replaces them all */
    assert_int_equal(x.count, 1);
    vv_deinit(&ctx);
    mvreg_deinit(&x);
    mvreg_deinit(&y);
    mvreg_deinit(&z);
}

static void test_get_is(const struct strval *v, const char *want) {
    struct buf b;
    buf_init(&b);
    bool present = strval_get(v, &b);
    if (want == NULL) {
        assert_false(present);
    } else {
        assert_true(present);
        assert_int_equal(b.len, strlen(want));
        assert_memory_equal(b.data, want, b.len);
    }
    buf_deinit(&b);
}

/* Strings under crdt: INCR on both sides adds up; SET 10 on one side and INCR 5 on the
 * other give 15 (the SET did not see the increment); a DEL removes what it saw, so a
 * concurrent INCR survives it alone; INCR of a non-integer is refused. */
static void test_crdt_strval_composes_set_incr_and_del(void **state) {
    (void)state;
    struct strval x, y;
    strval_init(&x);
    strval_init(&y);
    int64_t r;
    test_get_is(&x, NULL);
    assert_int_equal(strval_incr(&x, A, 7, &r), 0);
    assert_int_equal(strval_incr(&y, B, 3, &r), 0);
    strval_merge(&x, &y);
    test_get_is(&x, "10");
    strval_merge(&y, &x);
    assert_true(strval_set(&x, 100, A, S("10")));
    assert_int_equal(strval_incr(&y, B, 5, &r), 0);
    assert_true(r == 15);
    strval_merge(&x, &y);
    strval_merge(&y, &x);
    test_get_is(&x, "15");
    test_get_is(&y, "15");
    strval_del(&x);
    assert_int_equal(strval_incr(&y, B, 2, &r), 0);
    test_get_is(&x, NULL);
    strval_merge(&x, &y);
    test_get_is(&x, "2");
    assert_true(strval_set(&x, 200, A, S("abc")));
    assert_int_equal(strval_incr(&x, A, 1, &r), ERR_INVALID);
    test_get_is(&x, "abc");
    assert_true(strval_set(&x, 201, A, S("9223372036854775807")));
    assert_int_equal(strval_incr(&x, A, 1, &r), ERR_LIMIT);
    strval_deinit(&x);
    strval_deinit(&y);
}

/* Hashes: HSET of different fields on both sides unions them; an HDEL removes what it
 * saw, so a concurrent HSET or HINCRBY of that field wins; HINCRBY on both adds up. */
static void test_crdt_ormap_fields_add_win_and_count_up(void **state) {
    (void)state;
    struct ormap x, y;
    ormap_init(&x);
    ormap_init(&y);
    int64_t r;
    assert_true(strval_set(ormap_field(&x, S("name")), 10, A, S("ann")));
    assert_int_equal(strval_incr(ormap_field(&y, S("visits")), B, 2, &r), 0);
    ormap_merge(&x, &y);
    ormap_merge(&y, &x);
    assert_int_equal(ormap_present_count(&x), 2);
    assert_true(ormap_remove(&x, S("name")));
    assert_false(ormap_remove(&x, S("name")));
    assert_true(strval_set(ormap_field(&y, S("name")), 20, B, S("bob"))); /* concurrent */
    assert_int_equal(strval_incr(ormap_field(&x, S("visits")), A, 5, &r), 0);
    assert_int_equal(strval_incr(ormap_field(&y, S("visits")), B, 1, &r), 0);
    ormap_merge(&x, &y);
    test_get_is(ormap_find(&x, S("name")), "bob");
    test_get_is(ormap_find(&x, S("visits")), "8");
    ormap_clear(&y); /* DEL on y, having seen name=bob and visits 3 */
    ormap_merge(&y, &x);
    test_get_is(ormap_find(&y, S("name")), NULL);
    test_get_is(ormap_find(&y, S("visits")), "5"); /* x's +5, unseen by the DEL */
    assert_null(ormap_find(&y, S("never")));
    ormap_deinit(&x);
    ormap_deinit(&y);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crdt_codec_varints_round_trip_and_refuse_bad_forms),
        cmocka_unit_test(test_crdt_vv_orders_and_merges_pointwise),
        cmocka_unit_test(test_crdt_vv_decode_refuses_unsorted_or_zero),
        cmocka_unit_test(test_crdt_hlc_orders_after_what_it_saw_and_refuses_far_clocks),
        cmocka_unit_test(test_crdt_lwwreg_later_wins_and_tombstones_hold),
        cmocka_unit_test(test_crdt_pncounter_sums_and_resets_what_it_observed),
        cmocka_unit_test(test_crdt_orset_add_wins_and_removes_what_it_saw),
        cmocka_unit_test(test_crdt_mvreg_keeps_concurrent_writes_and_replaces_what_context_saw),
        cmocka_unit_test(test_crdt_strval_composes_set_incr_and_del),
        cmocka_unit_test(test_crdt_ormap_fields_add_win_and_count_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
