/*
 * Convergence of the node-core simulator's replicas (see nodesim.c): once two nodes
 * applied the same log they must hold the same keys, each with the same type, the same
 * expiry and the same contents (a string's bytes, a set's members, a hash's fields and
 * values), whatever the workload wrote. Every key of one db is looked up in the other and
 * the key counts must match, so neither may hold a key the other lacks.
 */
#include <stdio.h>
#include <string.h>

#include "base/assert.h"
#include "nodesim_internal.h"

#define NODESIM_DATA_SCAN_CALLS_MAX (1u << 24) /* db_scan calls over one db: far more */
#define NODESIM_DATA_KEY_SHOWN_MAX 40

struct nodesim_data_cmp {
    struct db *other;
    bool differ;
    const char *what;
    char key[NODESIM_DATA_KEY_SHOWN_MAX + 1];
};

struct nodesim_data_members {
    const struct set *other;
    bool missing;
};

static void nodesim_data_member(void *ctx, const uint8_t *member, size_t bytes) {
    struct nodesim_data_members *m = ctx;
    if (!set_contains(m->other, member, bytes)) m->missing = true;
}

struct nodesim_data_fields {
    const struct hash *other;
    bool differ;
};

static void nodesim_data_field(void *ctx, const uint8_t *field, size_t field_bytes,
                               const uint8_t *value, size_t value_bytes) {
    struct nodesim_data_fields *f = ctx;
    size_t other_bytes = 0;
    const uint8_t *other = hash_get(f->other, field, field_bytes, &other_bytes);
    if (other == NULL || other_bytes != value_bytes || memcmp(other, value, value_bytes) != 0)
        f->differ = true;
}

/* Why a and b (the same key, both present) differ, or NULL when they do not. */
static const char *nodesim_data_entry_differs(struct db_entry *a, struct db_entry *b) {
    if (db_entry_type(a) != db_entry_type(b)) return "type";
    if (db_entry_expire_ms(a) != db_entry_expire_ms(b)) return "expiry";
    if (db_entry_type(a) == VALUE_STRING) {
        size_t la = 0, lb = 0;
        const uint8_t *va = db_entry_string(a, &la), *vb = db_entry_string(b, &lb);
        return la == lb && memcmp(va, vb, la) == 0 ? NULL : "string value";
    }
    if (db_entry_type(a) == VALUE_SET) {
        const struct set *sa = db_entry_set(a), *sb = db_entry_set(b);
        struct nodesim_data_members m = {.other = sb};
        if (set_count(sa) != set_count(sb)) return "set size";
        set_each(sa, nodesim_data_member, &m);
        return m.missing ? "set members" : NULL;
    }
    ASSERT(db_entry_type(a) == VALUE_HASH);
    const struct hash *ha = db_entry_hash(a), *hb = db_entry_hash(b);
    struct nodesim_data_fields f = {.other = hb};
    if (hash_count(ha) != hash_count(hb)) return "hash size";
    hash_each(ha, nodesim_data_field, &f);
    return f.differ ? "hash fields" : NULL;
}

static void nodesim_data_visit(void *ctx, struct db_entry *e) {
    struct nodesim_data_cmp *cmp = ctx;
    if (cmp->differ) return;
    size_t key_bytes = 0;
    const uint8_t *key = db_entry_key(e, &key_bytes);
    struct db_entry *o = db_find(cmp->other, key, key_bytes);
    const char *why = o == NULL ? "presence" : nodesim_data_entry_differs(e, o);
    if (why == NULL) return;
    cmp->differ = true;
    cmp->what = why;
    size_t shown = key_bytes < NODESIM_DATA_KEY_SHOWN_MAX ? key_bytes : NODESIM_DATA_KEY_SHOWN_MAX;
    for (size_t i = 0; i < shown; i++)
        cmp->key[i] = key[i] >= 32 && key[i] < 127 ? (char)key[i] : '.';
    cmp->key[shown] = '\0';
}

bool nodesim_data_same(struct nodesim_world *w, uint32_t i, uint32_t l) {
    struct db *a = cp_engine_db(node_engine(w->nodes[i].node));
    struct db *b = cp_engine_db(node_engine(w->nodes[l].node));
    struct nodesim_data_cmp cmp = {.other = b};
    uint64_t cursor = 0;
    uint32_t calls = 0;
    do {
        ASSERT(calls < NODESIM_DATA_SCAN_CALLS_MAX);
        cursor = db_scan(a, cursor, nodesim_data_visit, &cmp);
        calls++;
    } while (cursor != 0);
    if (cmp.differ)
        return sim_check_fail(&w->sim.check,
                              "convergence: node %u and leader %u differ on key %s (%s) after "
                              "applying the same log",
                              i, l, cmp.key, cmp.what) == 0;
    if (db_count(a) != db_count(b))
        return sim_check_fail(&w->sim.check, "convergence: node %u holds %zu keys, leader %u %zu",
                              i, db_count(a), l, db_count(b)) == 0;
    return true;
}
