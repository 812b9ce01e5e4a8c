/*
 * Hinted handoff's store (Dynamo §4.6): the writes a node holds for a replica it could not
 * reach, to hand over once it can. One hint per (replica, key): a second write for the same
 * pair is merged into the first (object merge), so a replica that was away gets each key
 * once. Bounded, as Cassandra bounds its hints: at most bytes_max bytes (a hint past it is
 * refused: the caller counts it, and anti-entropy repairs that key later) and at most
 * age_ms_max old (older ones are dropped by ap_hints_expire, counted). A hint is removed
 * when the replica acknowledged exactly what was sent (ap_hints_delivered with its digest);
 * one merged since stays for the next round. In memory: a restart of the node holding
 * hints loses them, and anti-entropy repairs what they carried.
 */
#ifndef CAPKV_AP_HINTS_H
#define CAPKV_AP_HINTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "data/dict.h"

#define AP_HINTS_BYTES_DEFAULT (64ull * 1024 * 1024)
#define AP_HINTS_AGE_MS_DEFAULT (3ull * 3600 * 1000) /* Cassandra's max_hint_window */

struct ap_hint {
    struct dict_link link;
    struct ap_hint *older, *newer; /* by last write: expiry goes oldest first */
    uint32_t target;
    uint64_t written_ms;
    uint64_t digest; /* ap_tree_digest of the object */
    bool inflight;   /* handed over and not answered yet: scans skip it */
    uint32_t key_bytes;
    uint32_t object_bytes;
    uint8_t data[]; /* key, then the encoded object */
};

struct ap_hints_stats {
    uint64_t stored, merged, refused_full, expired, delivered;
};

struct ap_hints {
    struct dict dict;
    struct ap_hint *oldest, *newest;
    uint64_t bytes, bytes_max, age_ms_max;
    size_t memory_bytes; /* the dict's tables */
    struct ap_hints_stats stats;
};

void ap_hints_init(struct ap_hints *h, uint64_t bytes_max, uint64_t age_ms_max, uint64_t seed);
void ap_hints_deinit(struct ap_hints *h);
/* Stores (or merges into the one held) a hint of object (encoded, borrowed) for target.
 * Returns 0, ERR_LIMIT when full (nothing stored), or ERR_CORRUPT if an object does not
 * decode (our own encodings: a bug, reported rather than merged wrongly). */
int ap_hints_add(struct ap_hints *h, uint32_t target, const uint8_t *key, size_t key_bytes,
                 const uint8_t *object, size_t object_bytes, uint64_t now_ms);
/* Drops hints written more than age_ms_max before now_ms. */
void ap_hints_expire(struct ap_hints *h, uint64_t now_ms);
/* Drops the hints held for any node not among targets (members no longer), except those
 * handed over and not answered yet (their answer finds them); returns how many. */
size_t ap_hints_drop_others(struct ap_hints *h, const uint32_t *targets, uint32_t count);
/* Visits one cursor position's hints for target that are not in flight (fn may set
 * hint->inflight when it hands one over, and must not change h otherwise); returns the next
 * cursor, 0 when the scan is done (dict_scan's guarantee: none held throughout is missed). */
uint64_t ap_hints_scan(struct ap_hints *h, uint32_t target, uint64_t cursor,
                       void (*fn)(void *ctx, struct ap_hint *hint), void *ctx);
/* target acknowledged the hint for key with this digest: removed unless merged since (then
 * it is no longer in flight, and the next scan hands it again). */
bool ap_hints_delivered(struct ap_hints *h, uint32_t target, const uint8_t *key, size_t key_bytes,
                        uint64_t digest);
/* The hint for key handed to target went unanswered: the next scan hands it again. */
void ap_hints_unanswered(struct ap_hints *h, uint32_t target, const uint8_t *key, size_t key_bytes);
static inline size_t ap_hints_count(const struct ap_hints *h) {
    return dict_count(&h->dict);
}

#endif
