/*
 * The AP engine's anti-entropy summary (docs/engines.md, "Anti-entropy"): for each arc of
 * the ring (the keys between one point and the next: one replica set), AP_TREE_BUCKETS
 * bucket hashes, each the XOR of mix(key hash, object digest) over the arc's keys in that
 * bucket. XOR makes an update O(1) (take the old pair out, put the new one in) and the
 * summary independent of the order keys were written in, so two replicas holding the same
 * objects have equal buckets, and every bucket that differs holds at least one key that
 * differs. Two replicas of an arc exchange its buckets (AP_TREE_BUCKETS × 8 bytes), then
 * the keys of the differing buckets only: the traffic grows with the differences, not the
 * data. Pure: no I/O; the engine keeps one tree per ring and rebuilds it when the ring
 * changes.
 */
#ifndef CAPKV_AP_TREE_H
#define CAPKV_AP_TREE_H

#include <stddef.h>
#include <stdint.h>

#include "ap/ring.h"

#define AP_TREE_BUCKETS 256

struct ap_tree {
    uint32_t arc_count; /* the ring's points */
    uint64_t *buckets;  /* owned: arc_count × AP_TREE_BUCKETS */
};

/* A tree for ring (borrowed; its points are the arcs), every bucket empty. */
void ap_tree_init(struct ap_tree *t, const struct ap_ring *ring);
void ap_tree_deinit(struct ap_tree *t);
/* The bucket within its arc. */
uint32_t ap_tree_bucket(uint64_t key_hash);
/* A key's object changed from old_digest to new_digest (0: no object). */
void ap_tree_update(struct ap_tree *t, uint32_t arc, uint64_t key_hash, uint64_t old_digest,
                    uint64_t new_digest);
/* An arc's buckets (returns borrowed, AP_TREE_BUCKETS of them, valid until deinit). */
const uint64_t *ap_tree_arc_buckets(const struct ap_tree *t, uint32_t arc);
/* The buckets of arc that differ from other (AP_TREE_BUCKETS hashes, borrowed), written
 * to out (room for AP_TREE_BUCKETS); returns how many. */
uint32_t ap_tree_diff(const struct ap_tree *t, uint32_t arc, const uint64_t *other, uint32_t *out);
/* An object's digest for the tree: never 0. */
uint64_t ap_tree_digest(const uint8_t *encoded, size_t bytes);

#endif
