/* The consistent-hash ring of ring.h: sorted points, a binary search, a walk. */
#include "ap/ring.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "base/assert.h"
#include "base/buf.h"

#define AP_RING_POINT_SEED 0x61702d72696e6731ull /* "ap-ring1": part of the format */
#define AP_RING_KEY_SEED 0x61702d6b65797331ull   /* "ap-keys1" */

static int ap_ring_point_order(const void *a, const void *b) {
    const struct ap_ring_point *x = a, *y = b;
    if (x->at != y->at) return x->at < y->at ? -1 : 1;
    if (x->node != y->node) return x->node < y->node ? -1 : 1;
    return 0;
}

static int ap_ring_node_order(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int ap_ring_build(struct ap_ring *ring, const uint32_t *nodes, uint32_t count) {
    if (count > NODE_PEERS_MAX) return ERR_INVALID;
    uint32_t sorted[NODE_PEERS_MAX]; /* checked before the ring changes */
    memcpy(sorted, nodes, count * sizeof(uint32_t));
    qsort(sorted, count, sizeof(uint32_t), ap_ring_node_order);
    for (uint32_t i = 0; i < count; i++)
        if (sorted[i] == 0 || (i > 0 && sorted[i] == sorted[i - 1])) return ERR_INVALID;
    memcpy(ring->nodes, sorted, count * sizeof(uint32_t));
    ring->node_count = count;
    /* The points are a fixed function of the members, so the members name the ring (as
     * little-endian bytes: the same version on every machine). */
    uint8_t ids[NODE_PEERS_MAX * 4];
    for (uint32_t i = 0; i < count; i++) base_store_u32le(ids + i * 4, sorted[i]);
    ring->version = XXH3_64bits_withSeed(ids, count * 4, AP_RING_POINT_SEED);
    ring->point_count = 0;
    for (uint32_t i = 0; i < count; i++) {
        for (uint32_t v = 0; v < AP_RING_VNODES; v++) {
            uint8_t name[8];
            base_store_u32le(name, ring->nodes[i]);
            base_store_u32le(name + 4, v);
            struct ap_ring_point *p = &ring->points[ring->point_count++];
            p->at = XXH3_64bits_withSeed(name, sizeof(name), AP_RING_POINT_SEED);
            p->node = ring->nodes[i];
        }
    }
    qsort(ring->points, ring->point_count, sizeof(ring->points[0]), ap_ring_point_order);
    ASSERT(ring->point_count == count * AP_RING_VNODES);
    return 0;
}

uint64_t ap_ring_key_hash(const uint8_t *key, size_t bytes) {
    return XXH3_64bits_withSeed(key, bytes, AP_RING_KEY_SEED);
}

uint32_t ap_ring_arc(const struct ap_ring *ring, uint64_t h) {
    ASSERT(ring->point_count > 0);
    uint32_t lo = 0, hi = ring->point_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (ring->points[mid].at < h)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == ring->point_count ? 0 : lo;
}

uint32_t ap_ring_walk(const struct ap_ring *ring, uint64_t key_hash, uint32_t *out) {
    if (ring->point_count == 0) return 0;
    uint32_t found = 0;
    uint32_t start = ap_ring_arc(ring, key_hash);
    for (uint32_t k = 0; k < ring->point_count && found < ring->node_count; k++) {
        uint32_t node = ring->points[(start + k) % ring->point_count].node;
        bool seen = false;
        for (uint32_t j = 0; j < found && !seen; j++) seen = out[j] == node;
        if (!seen) out[found++] = node;
    }
    ASSERT(found == ring->node_count); /* every member has points: the walk meets them all */
    return found;
}
