/* The anti-entropy buckets of tree.h. */
#include "ap/tree.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "base/assert.h"

#define AP_TREE_DIGEST_SEED 0x61702d6469676573ull /* "ap-diges" */

void ap_tree_init(struct ap_tree *t, const struct ap_ring *ring) {
    t->arc_count = ring->point_count;
    size_t n = (size_t)t->arc_count * AP_TREE_BUCKETS;
    t->buckets = n > 0 ? base_calloc(n, sizeof(uint64_t)) : NULL;
}

void ap_tree_deinit(struct ap_tree *t) {
    free(t->buckets);
    memset(t, 0, sizeof(*t));
}

uint32_t ap_tree_bucket(uint64_t key_hash) {
    /* The low bits: the arc is chosen by the whole hash's position, so within an arc the
     * low bits are still spread evenly. */
    return (uint32_t)(key_hash & (AP_TREE_BUCKETS - 1));
}

/* One key's contribution: a 64-bit mix of the pair (splitmix64's finalizer). */
static uint64_t ap_tree_mix(uint64_t key_hash, uint64_t digest) {
    uint64_t z = key_hash ^ (digest * 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void ap_tree_update(struct ap_tree *t, uint32_t arc, uint64_t key_hash, uint64_t old_digest,
                    uint64_t new_digest) {
    ASSERT(arc < t->arc_count);
    if (old_digest == new_digest) return;
    uint64_t *b = &t->buckets[(size_t)arc * AP_TREE_BUCKETS + ap_tree_bucket(key_hash)];
    if (old_digest != 0) *b ^= ap_tree_mix(key_hash, old_digest);
    if (new_digest != 0) *b ^= ap_tree_mix(key_hash, new_digest);
}

const uint64_t *ap_tree_arc_buckets(const struct ap_tree *t, uint32_t arc) {
    ASSERT(arc < t->arc_count);
    return &t->buckets[(size_t)arc * AP_TREE_BUCKETS];
}

uint32_t ap_tree_diff(const struct ap_tree *t, uint32_t arc, const uint64_t *other, uint32_t *out) {
    const uint64_t *mine = ap_tree_arc_buckets(t, arc);
    uint32_t n = 0;
    for (uint32_t i = 0; i < AP_TREE_BUCKETS; i++)
        if (mine[i] != other[i]) out[n++] = i;
    return n;
}

uint64_t ap_tree_digest(const uint8_t *encoded, size_t bytes) {
    uint64_t d = XXH3_64bits_withSeed(encoded, bytes, AP_TREE_DIGEST_SEED);
    return d != 0 ? d : 1; /* 0 means "no object" */
}
