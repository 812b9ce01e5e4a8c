/*
 * The AP engine's consistent-hash ring (Karger et al. 1997; Dynamo's preference lists).
 * Every member owns AP_RING_VNODES points ("virtual nodes") on a 64-bit ring; a key's
 * hash falls between two points, and walking clockwise from there, the first n distinct
 * members are its replicas, in order; the members after them are where a write goes when
 * a replica is unreachable (sloppy quorum: the fallbacks hold hints for it).
 *
 * Every node builds the same ring from the same member list: the points and the key hash
 * are fixed functions (XXH3 with constant seeds, never the node's db seed), so any node can
 * coordinate any request. Adding a member moves only the keys whose replica set gains it
 * (each loses at most its last replica to the newcomer); removing one moves only the keys
 * it was a replica of. Pure: no I/O.
 */
#ifndef CAPKV_AP_RING_H
#define CAPKV_AP_RING_H

#include <stddef.h>
#include <stdint.h>

#include "engine/engine.h"

#define AP_RING_VNODES 64
#define AP_RING_POINTS_MAX (NODE_PEERS_MAX * AP_RING_VNODES)

struct ap_ring_point {
    uint64_t at;
    uint32_t node;
};

struct ap_ring {
    uint64_t version; /* a hash of the member list: equal rings have equal versions */
    uint32_t node_count;
    uint32_t nodes[NODE_PEERS_MAX]; /* ascending */
    uint32_t point_count;
    struct ap_ring_point points[AP_RING_POINTS_MAX]; /* ascending by at, then node */
};

/* Builds the ring of these members (borrowed; any order, no duplicates, ids > 0).
 * Returns 0, or ERR_INVALID for a duplicate or zero id or more than NODE_PEERS_MAX. */
int ap_ring_build(struct ap_ring *ring, const uint32_t *nodes, uint32_t count);
/* Where a key sits on the ring (the same on every node). */
uint64_t ap_ring_key_hash(const uint8_t *key, size_t bytes);
/* The arc a key hash falls in: the index of the first point at or after it (wrapping to
 * 0). The walk starts there; anti-entropy buckets are kept per arc (tree.h). */
uint32_t ap_ring_arc(const struct ap_ring *ring, uint64_t key_hash);
/* Every member, in the key's preference order: out[0..n) are its replicas, the rest its
 * fallbacks. out has room for NODE_PEERS_MAX; returns the member count. */
uint32_t ap_ring_walk(const struct ap_ring *ring, uint64_t key_hash, uint32_t *out);

#endif
