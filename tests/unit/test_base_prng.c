/* Unit tests of the seeded generator (src/base/prng.c): determinism and ranges. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "base/prng.h"

/* The same seed gives the same sequence; another seed another one (deterministic core). */
static void test_prng_same_seed_same_sequence(void **state) {
    (void)state;
    struct prng a, b, c;
    prng_init(&a, 7);
    prng_init(&b, 7);
    prng_init(&c, 8);
    int differ = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = prng_next(&a);
        assert_true(x == prng_next(&b));
        differ += x != prng_next(&c);
    }
    assert_true(differ > 990);
    prng_init(&a, 0); /* seed 0 is valid: the state is never all zero */
    assert_true(prng_next(&a) != 0 || prng_next(&a) != 0);
}

/* prng_range stays in [lo, hi) and reaches both ends. */
static void test_prng_range_is_half_open_and_covers(void **state) {
    (void)state;
    struct prng p;
    prng_init(&p, 99);
    int seen[10] = {0};
    for (int i = 0; i < 10000; i++) {
        uint64_t v = prng_range(&p, 100, 110);
        assert_true(v >= 100 && v < 110);
        seen[v - 100]++;
    }
    for (int i = 0; i < 10; i++) assert_true(seen[i] > 800 && seen[i] < 1200);
    assert_int_equal(prng_range(&p, 5, 6), 5);
    uint64_t big = prng_range(&p, 0, UINT64_MAX);
    assert_true(big < UINT64_MAX);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prng_same_seed_same_sequence),
        cmocka_unit_test(test_prng_range_is_half_open_and_covers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
