/*
 * Unit tests of the hinted-handoff store (src/ap/hints.c): one hint per replica and key,
 * merged (Dynamo §4.6); bounded in bytes (refused past it) and in age (dropped); removed
 * only once the replica acknowledged what was sent.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "ap/hints.h"
#include "ap/object.h"
#include "ap/tree.h"

#define S(str) (const uint8_t *)(str), strlen(str)

/* An encoded set object with one more element added by actor. */
static void test_set_object(struct ap_object *o, uint32_t node, const char *elem, struct buf *out) {
    (void)orset_add(&ap_object_use(o, AP_TYPE_SET, 1)->u.set, crdt_actor(node, 1), S(elem));
    buf_clear(out);
    ap_object_encode(o, out);
}

struct test_seen {
    uint32_t count;
    uint64_t digest;
    size_t object_bytes;
    uint8_t object[256];
};

static void test_collect(void *ctx, struct ap_hint *hint) {
    struct test_seen *s = ctx;
    s->count++;
    s->digest = hint->digest;
    s->object_bytes = hint->object_bytes;
    memcpy(s->object, hint->data + hint->key_bytes, hint->object_bytes);
}

static struct test_seen test_scan(struct ap_hints *h, uint32_t target) {
    struct test_seen s = {0};
    uint64_t cursor = 0;
    do {
        cursor = ap_hints_scan(h, target, cursor, test_collect, &s);
    } while (cursor != 0);
    return s;
}

/* Two writes for one replica and key become one hint holding both (merged); a delivery
 * acknowledged for an older digest leaves the newer hint; the right digest removes it. */
static void test_ap_hints_merge_per_replica_and_key_until_delivered(void **state) {
    (void)state;
    struct ap_hints h;
    ap_hints_init(&h, AP_HINTS_BYTES_DEFAULT, AP_HINTS_AGE_MS_DEFAULT, 7);
    struct ap_object x, y;
    ap_object_init(&x);
    ap_object_init(&y);
    struct buf bx, by;
    buf_init(&bx);
    buf_init(&by);
    test_set_object(&x, 1, "book", &bx);
    test_set_object(&y, 2, "pen", &by);
    assert_int_equal(ap_hints_add(&h, 3, S("cart"), bx.data, bx.len, 100), 0);
    assert_int_equal(ap_hints_add(&h, 4, S("cart"), bx.data, bx.len, 100), 0);
    struct test_seen first = test_scan(&h, 3);
    assert_int_equal(ap_hints_add(&h, 3, S("cart"), by.data, by.len, 200), 0);
    assert_int_equal(ap_hints_count(&h), 2);
    assert_int_equal(h.stats.merged, 1);
    struct test_seen s = test_scan(&h, 3);
    assert_int_equal(s.count, 1);
    struct ap_object m;
    ap_object_init(&m);
    assert_int_equal(ap_object_decode(s.object, s.object_bytes, &m), 0);
    assert_int_equal(m.parts[AP_TYPE_SET].u.set.count, 2);            /* book and pen */
    assert_false(ap_hints_delivered(&h, 3, S("cart"), first.digest)); /* sent before the merge */
    assert_true(ap_hints_delivered(&h, 3, S("cart"), s.digest));
    assert_int_equal(test_scan(&h, 3).count, 0);
    assert_int_equal(test_scan(&h, 4).count, 1);
    ap_object_deinit(&m);
    ap_object_deinit(&x);
    ap_object_deinit(&y);
    buf_deinit(&bx);
    buf_deinit(&by);
    ap_hints_deinit(&h);
}

/* Past bytes_max a hint is refused (counted), and older hints than age_ms_max go. */
static void test_ap_hints_are_bounded_in_bytes_and_age(void **state) {
    (void)state;
    struct ap_hints h;
    ap_hints_init(&h, 1000, 60000, 7);
    struct ap_object x;
    ap_object_init(&x);
    struct buf b;
    buf_init(&b);
    test_set_object(&x, 1, "e", &b);
    char key[16];
    int stored = 0;
    for (int i = 0; i < 100; i++) {
        size_t n = (size_t)snprintf(key, sizeof(key), "k%d", i);
        if (ap_hints_add(&h, 2, (const uint8_t *)key, n, b.data, b.len, (uint64_t)i * 1000) == 0)
            stored++;
        else
            assert_int_equal(ap_hints_add(&h, 2, (const uint8_t *)key, n, b.data, b.len, 0),
                             ERR_LIMIT);
    }
    assert_true(stored > 0 && stored < 100);
    assert_true(h.bytes <= 1000);
    assert_true(h.stats.refused_full >= (uint64_t)(100 - stored));
    ap_hints_expire(&h, 60000 + 2500); /* written at 0, 1000 and 2000 ms: three go */
    assert_int_equal(h.stats.expired, 3);
    assert_int_equal(ap_hints_count(&h), (size_t)stored - 3);
    ap_hints_expire(&h, UINT64_MAX / 2);
    assert_int_equal(ap_hints_count(&h), 0);
    assert_true(h.bytes == 0);
    ap_object_deinit(&x);
    buf_deinit(&b);
    ap_hints_deinit(&h);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ap_hints_merge_per_replica_and_key_until_delivered),
        cmocka_unit_test(test_ap_hints_are_bounded_in_bytes_and_age),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
