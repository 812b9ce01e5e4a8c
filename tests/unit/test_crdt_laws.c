/*
 * The laws of src/crdt's merges, as randomized property tests with seeds (issue 9, item
 * 5): for every value type, merge is commutative, associative and idempotent, encoding
 * round-trips, and every delivery order of the same updates, with duplicates and stale
 * copies, ends in the same state. Equality is byte equality of the canonical encoding.
 * A failing seed is printed and replays exactly (prng.h).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/prng.h"
#include "crdt/lwwreg.h"
#include "crdt/mvreg.h"
#include "crdt/ormap.h"
#include "crdt/orset.h"
#include "crdt/pncounter.h"
#include "crdt/strval.h"

#define LAW_SEEDS 300
#define LAW_REPLICAS 4
#define LAW_STEPS 80
#define LAW_INFLIGHT_MAX 24

/* One value type, seen through what the laws need. */
struct law_type {
    const char *name;
    size_t size;
    void (*init)(void *v);
    void (*deinit)(void *v);
    void (*op)(void *v, uint64_t actor, struct prng *p); /* one random local update */
    void (*merge)(void *v, const void *other);
    void (*encode)(const void *v, struct buf *out);
    void (*decode)(struct crdt_reader *r, void *v);
};

static const uint8_t *law_word(struct prng *p, size_t *bytes) {
    static const char *const words[] = {"a", "b", "cart:1", "cart:2", "", "longer value"};
    const char *w = words[prng_range(p, 0, 6)];
    *bytes = strlen(w);
    return (const uint8_t *)w;
}

static void law_lww_init(void *v) {
    lwwreg_init(v);
}
static void law_lww_deinit(void *v) {
    lwwreg_deinit(v);
}
static void law_lww_op(void *v, uint64_t actor, struct prng *p) {
    size_t bytes;
    const uint8_t *w = law_word(p, &bytes);
    /* Few distinct timestamps: ties between actors are common. */
    (void)lwwreg_write(v, prng_range(p, 1, 8), actor, prng_range(p, 0, 5) == 0, w, bytes);
}
static void law_lww_merge(void *v, const void *o) {
    (void)lwwreg_merge(v, o);
}
static void law_lww_encode(const void *v, struct buf *out) {
    lwwreg_encode(v, out);
}
static void law_lww_decode(struct crdt_reader *r, void *v) {
    lwwreg_decode(r, v);
}

static void law_pn_init(void *v) {
    pncounter_init(v);
}
static void law_pn_deinit(void *v) {
    pncounter_deinit(v);
}
static void law_pn_op(void *v, uint64_t actor, struct prng *p) {
    if (prng_range(p, 0, 10) == 0)
        pncounter_reset(v);
    else
        assert_int_equal(pncounter_add(v, actor, (int64_t)prng_range(p, 0, 11) - 5), 0);
}
static void law_pn_merge(void *v, const void *o) {
    pncounter_merge(v, o);
}
static void law_pn_encode(const void *v, struct buf *out) {
    pncounter_encode(v, out);
}
static void law_pn_decode(struct crdt_reader *r, void *v) {
    pncounter_decode(r, v);
}

static void law_set_init(void *v) {
    orset_init(v);
}
static void law_set_deinit(void *v) {
    orset_deinit(v);
}
static void law_set_op(void *v, uint64_t actor, struct prng *p) {
    size_t bytes;
    const uint8_t *w = law_word(p, &bytes);
    uint64_t k = prng_range(p, 0, 12);
    if (k == 0)
        orset_clear(v);
    else if (k < 5)
        (void)orset_remove(v, w, bytes);
    else
        (void)orset_add(v, actor, w, bytes);
}
static void law_set_merge(void *v, const void *o) {
    orset_merge(v, o);
}
static void law_set_encode(const void *v, struct buf *out) {
    orset_encode(v, out);
}
static void law_set_decode(struct crdt_reader *r, void *v) {
    orset_decode(r, v);
}

static void law_mv_init(void *v) {
    mvreg_init(v);
}
static void law_mv_deinit(void *v) {
    mvreg_deinit(v);
}
static void law_mv_op(void *v, uint64_t actor, struct prng *p) {
    struct mvreg *m = v;
    size_t bytes;
    const uint8_t *w = law_word(p, &bytes);
    uint64_t k = prng_range(p, 0, 8);
    struct vv ctx; /* a context read earlier: this replica's clock, or part of it */
    vv_init(&ctx);
    vv_copy(&ctx, &m->clock);
    if (k == 0 && ctx.count > 0) ctx.entries[0].counter /= 2;
    /* A refused write (the sibling limit) changes nothing: still a valid history. */
    if (k < 2)
        (void)mvreg_write(m, actor, &ctx, NULL, 0);
    else if (k < 5)
        (void)mvreg_write(m, actor, &ctx, w, bytes);
    else
        (void)mvreg_write(m, actor, NULL, w, bytes);
    vv_deinit(&ctx);
}
static void law_mv_merge(void *v, const void *o) {
    mvreg_merge(v, o);
}
static void law_mv_encode(const void *v, struct buf *out) {
    mvreg_encode(v, out);
}
static void law_mv_decode(struct crdt_reader *r, void *v) {
    mvreg_decode(r, v);
}

/* SET at a few timestamps, INCRBY, DEL. */
static void law_str_apply(struct strval *v, uint64_t actor, struct prng *p) {
    size_t bytes;
    const uint8_t *w = law_word(p, &bytes);
    uint64_t k = prng_range(p, 0, 10);
    int64_t r;
    if (k == 0)
        strval_del(v);
    else if (k < 4)
        (void)strval_set(v, prng_range(p, 1, 8), actor, k == 1 ? w : (const uint8_t *)"12",
                         k == 1 ? bytes : 2);
    else
        (void)strval_incr(v, actor, (int64_t)prng_range(p, 0, 7) - 3, &r); /* may refuse */
}

static void law_str_init(void *v) {
    strval_init(v);
}
static void law_str_deinit(void *v) {
    strval_deinit(v);
}
static void law_str_op(void *v, uint64_t actor, struct prng *p) {
    law_str_apply(v, actor, p);
}
static void law_str_merge(void *v, const void *o) {
    strval_merge(v, o);
}
static void law_str_encode(const void *v, struct buf *out) {
    strval_encode(v, out);
}
static void law_str_decode(struct crdt_reader *r, void *v) {
    strval_decode(r, v);
}

static void law_map_init(void *v) {
    ormap_init(v);
}
static void law_map_deinit(void *v) {
    ormap_deinit(v);
}
static void law_map_op(void *v, uint64_t actor, struct prng *p) {
    static const char *const fields[] = {"f1", "f2", "f3", "name"};
    const char *f = fields[prng_range(p, 0, 4)];
    uint64_t k = prng_range(p, 0, 12);
    if (k == 0)
        ormap_clear(v);
    else if (k < 4)
        (void)ormap_remove(v, (const uint8_t *)f, strlen(f));
    else
        law_str_apply(ormap_field(v, (const uint8_t *)f, strlen(f)), actor, p);
}
static void law_map_merge(void *v, const void *o) {
    ormap_merge(v, o);
}
static void law_map_encode(const void *v, struct buf *out) {
    ormap_encode(v, out);
}
static void law_map_decode(struct crdt_reader *r, void *v) {
    ormap_decode(r, v);
}

static const struct law_type law_types[] = {
    {"lwwreg", sizeof(struct lwwreg), law_lww_init, law_lww_deinit, law_lww_op, law_lww_merge,
     law_lww_encode, law_lww_decode},
    {"pncounter", sizeof(struct pncounter), law_pn_init, law_pn_deinit, law_pn_op, law_pn_merge,
     law_pn_encode, law_pn_decode},
    {"orset", sizeof(struct orset), law_set_init, law_set_deinit, law_set_op, law_set_merge,
     law_set_encode, law_set_decode},
    {"mvreg", sizeof(struct mvreg), law_mv_init, law_mv_deinit, law_mv_op, law_mv_merge,
     law_mv_encode, law_mv_decode},
    {"strval", sizeof(struct strval), law_str_init, law_str_deinit, law_str_op, law_str_merge,
     law_str_encode, law_str_decode},
    {"ormap", sizeof(struct ormap), law_map_init, law_map_deinit, law_map_op, law_map_merge,
     law_map_encode, law_map_decode},
};

static void *law_new(const struct law_type *t) {
    void *v = malloc(t->size);
    assert_non_null(v);
    t->init(v);
    return v;
}

static void law_free(const struct law_type *t, void *v) {
    t->deinit(v);
    free(v);
}

/* A copy through the encoding: also checks that decoding accepts what encoding wrote. */
static void *law_copy(const struct law_type *t, const void *v) {
    struct buf b;
    buf_init(&b);
    t->encode(v, &b);
    void *c = law_new(t);
    struct crdt_reader r;
    crdt_reader_init(&r, b.data, b.len);
    t->decode(&r, c);
    assert_int_equal(r.err, 0);
    assert_int_equal(r.left, 0);
    buf_deinit(&b);
    return c;
}

static bool law_equal(const struct law_type *t, const void *a, const void *b) {
    struct buf x, y;
    buf_init(&x);
    buf_init(&y);
    t->encode(a, &x);
    t->encode(b, &y);
    bool eq = x.len == y.len && (x.len == 0 || memcmp(x.data, y.data, x.len) == 0);
    buf_deinit(&x);
    buf_deinit(&y);
    return eq;
}

/* A merge of copies: the inputs stay as they were. */
static void *law_merged(const struct law_type *t, const void *a, const void *b) {
    void *m = law_copy(t, a);
    t->merge(m, b);
    return m;
}

/* Commutative, associative, idempotent; the encoding round-trips. */
static void law_check_algebra(const struct law_type *t, uint64_t seed) {
    struct prng p;
    prng_init(&p, seed);
    void *base = law_new(t);
    for (int i = 0; i < 6; i++) t->op(base, crdt_actor((uint32_t)prng_range(&p, 1, 5), 1), &p);
    /* Three replicas with distinct actors, each from the shared base. */
    void *s[3];
    for (int i = 0; i < 3; i++) {
        s[i] = law_copy(t, base);
        uint64_t steps = prng_range(&p, 0, 10);
        for (uint64_t k = 0; k < steps; k++) t->op(s[i], crdt_actor((uint32_t)i + 10, 1), &p);
    }
    void *ab = law_merged(t, s[0], s[1]), *ba = law_merged(t, s[1], s[0]);
    void *bc = law_merged(t, s[1], s[2]);
    void *ab_c = law_merged(t, ab, s[2]), *a_bc = law_merged(t, s[0], bc);
    void *aa = law_merged(t, s[0], s[0]), *a_ab = law_merged(t, ab, s[0]);
    void *copy = law_copy(t, s[0]);
    if (!law_equal(t, ab, ba))
        fail_msg("%s seed %llu: not commutative", t->name, (unsigned long long)seed);
    if (!law_equal(t, ab_c, a_bc))
        fail_msg("%s seed %llu: not associative", t->name, (unsigned long long)seed);
    if (!law_equal(t, aa, s[0]) || !law_equal(t, a_ab, ab))
        fail_msg("%s seed %llu: not idempotent", t->name, (unsigned long long)seed);
    assert_true(law_equal(t, copy, s[0]));
    void *all[] = {base, s[0], s[1], s[2], ab, ba, bc, ab_c, a_bc, aa, a_ab, copy};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) law_free(t, all[i]);
}

struct law_message {
    void *state; /* a copy of a replica's state when it was sent */
    uint32_t to;
};

/* Replicas update and send copies of their state; copies arrive late, out of order and
 * twice; after every copy is in and every replica has merged every other, all are equal,
 * and equal to the merge of the final states in another order. */
static void law_check_delivery(const struct law_type *t, uint64_t seed) {
    struct prng p;
    prng_init(&p, seed);
    void *r[LAW_REPLICAS];
    for (int i = 0; i < LAW_REPLICAS; i++) r[i] = law_new(t);
    struct law_message flight[LAW_INFLIGHT_MAX];
    size_t count = 0;
    for (int step = 0; step < LAW_STEPS; step++) {
        uint32_t i = (uint32_t)prng_range(&p, 0, LAW_REPLICAS);
        uint64_t k = prng_range(&p, 0, 10);
        if (k < 5) {
            t->op(r[i], crdt_actor(i + 1, 1), &p);
        } else if (k < 8 && count < LAW_INFLIGHT_MAX) {
            flight[count].state = law_copy(t, r[i]);
            flight[count++].to = (uint32_t)prng_range(&p, 0, LAW_REPLICAS);
        } else if (count > 0) {
            size_t m = (size_t)prng_range(&p, 0, count);
            t->merge(r[flight[m].to], flight[m].state);
            if (prng_range(&p, 0, 3) != 0) { /* else it stays: delivered again later */
                law_free(t, flight[m].state);
                flight[m] = flight[--count];
            }
        }
    }
    while (count > 0) {
        size_t m = (size_t)prng_range(&p, 0, count);
        t->merge(r[flight[m].to], flight[m].state);
        law_free(t, flight[m].state);
        flight[m] = flight[--count];
    }
    void *reference = law_new(t); /* the final states merged from the last one down */
    for (int i = LAW_REPLICAS - 1; i >= 0; i--) t->merge(reference, r[i]);
    for (int round = 0; round < 2; round++)
        for (int i = 0; i < LAW_REPLICAS; i++)
            for (int j = 0; j < LAW_REPLICAS; j++)
                if (i != j) t->merge(r[i], r[j]);
    for (int i = 0; i < LAW_REPLICAS; i++)
        if (!law_equal(t, r[i], reference))
            fail_msg("%s seed %llu: replica %d did not converge", t->name, (unsigned long long)seed,
                     i);
    law_free(t, reference);
    for (int i = 0; i < LAW_REPLICAS; i++) law_free(t, r[i]);
}

static void law_run(const struct law_type *t, void (*check)(const struct law_type *, uint64_t)) {
    for (uint64_t seed = 1; seed <= LAW_SEEDS; seed++) check(t, seed * 7919);
}

static void test_crdt_laws_merge_is_commutative_associative_idempotent(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof(law_types) / sizeof(law_types[0]); i++)
        law_run(&law_types[i], law_check_algebra);
}

static void test_crdt_laws_every_delivery_order_converges(void **state) {
    (void)state;
    for (size_t i = 0; i < sizeof(law_types) / sizeof(law_types[0]); i++)
        law_run(&law_types[i], law_check_delivery);
}

/* Counters without a DEL: once converged, the value is the sum of every increment. */
static void test_crdt_laws_counter_converges_to_the_sum(void **state) {
    (void)state;
    for (uint64_t seed = 1; seed <= LAW_SEEDS; seed++) {
        struct prng p;
        prng_init(&p, seed);
        struct pncounter r[LAW_REPLICAS];
        for (int i = 0; i < LAW_REPLICAS; i++) pncounter_init(&r[i]);
        int64_t sum = 0;
        for (int step = 0; step < LAW_STEPS; step++) {
            uint32_t i = (uint32_t)prng_range(&p, 0, LAW_REPLICAS);
            uint32_t j = (uint32_t)prng_range(&p, 0, LAW_REPLICAS);
            int64_t d = (int64_t)prng_range(&p, 0, 201) - 100;
            assert_int_equal(pncounter_add(&r[i], crdt_actor(i + 1, 1), d), 0);
            sum += d;
            if (i != j && prng_range(&p, 0, 2) == 0) pncounter_merge(&r[j], &r[i]);
        }
        for (int i = 0; i < LAW_REPLICAS; i++)
            for (int j = 0; j < LAW_REPLICAS; j++)
                if (i != j) pncounter_merge(&r[i], &r[j]);
        for (int i = 0; i < LAW_REPLICAS; i++) {
            if (pncounter_value(&r[i]) != sum)
                fail_msg("seed %llu: replica %d has %lld, not %lld", (unsigned long long)seed, i,
                         (long long)pncounter_value(&r[i]), (long long)sum);
            pncounter_deinit(&r[i]);
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crdt_laws_merge_is_commutative_associative_idempotent),
        cmocka_unit_test(test_crdt_laws_every_delivery_order_converges),
        cmocka_unit_test(test_crdt_laws_counter_converges_to_the_sum),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
