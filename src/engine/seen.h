/*
 * What a session saw of AP keys (SESSION, for AP keyspaces). Per key: the key's hash
 * (SEEN_KEY_SEED, the same on every node) and its object's writes vector as a reply
 * reflected it: for each actor (a node's incarnation) that coordinated writes of the key,
 * how many. A replica whose object's writes vector is at least that, actor by actor, holds
 * every write the session saw of the key: an actor coordinates on its own replica, which
 * holds its earlier writes of the key, so each actor's writes reach any replica as a
 * prefix (the object travels whole, and merge is a join).
 *
 * One encoding serves the engine seam (a reply's seen keys, a request's floor), the AP
 * peer payloads (FORWARD, FORWARD_REPLY) and session tokens (docs/formats.md):
 *
 *   key_hash u64 le, count u8 (0..SEEN_ACTORS_MAX), count × (actor u64 le, counter u64 le)
 *
 * count 0 says the key had more writers than an entry holds: a session that saw it cannot
 * promise it (seen_merge refuses). A map (a session's) has each key once, sorted by hash,
 * and each key's actors sorted, no counter 0. Pure: no I/O.
 */
#ifndef CAPKV_ENGINE_SEEN_H
#define CAPKV_ENGINE_SEEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define SEEN_ACTORS_MAX 16 /* writers of one key an entry names */
#define SEEN_KEYS_MAX 128  /* keys one session (and token) holds */
#define SEEN_KEY_SEED 0x63617073657373ull

struct seen_key {
    uint64_t hash;
    uint32_t count; /* 0: more writers than SEEN_ACTORS_MAX */
    uint64_t actor[SEEN_ACTORS_MAX];
    uint64_t counter[SEEN_ACTORS_MAX];
};

/* A session's keys, sorted by hash. */
struct seen_map {
    struct seen_key *keys; /* owned */
    uint32_t count, cap;
    bool full; /* a key could not be kept (too many, or too many writers): sticky */
};

/* The hash a key is named by. */
uint64_t seen_key_hash(const uint8_t *key, size_t bytes);
void seen_put(struct buf *out, const struct seen_key *k);
/* The entry at *pos into k, pos moved past it: 1, or 0 at the end, or -1 when the bytes
 * there are not an entry. */
int seen_next(const uint8_t *data, size_t bytes, size_t *pos, struct seen_key *k);
/* The entry of hash in a list (the first), into out; false when it has none. */
bool seen_find(const uint8_t *data, size_t bytes, uint64_t hash, struct seen_key *out);

void seen_map_init(struct seen_map *m);
void seen_map_deinit(struct seen_map *m); /* and empty again */
/* The map joins k (each counter, actor by actor, the greater). False when it cannot (k's
 * count is 0, or the join would hold more than SEEN_KEYS_MAX keys or a key more than
 * SEEN_ACTORS_MAX actors): the map is full from then on. */
bool seen_map_add(struct seen_map *m, const struct seen_key *k);
/* Every entry of a list (bytes): 1; 0 when one could not be added (full, as above); -1,
 * nothing added, when the list is malformed. */
int seen_map_add_list(struct seen_map *m, const uint8_t *data, size_t bytes);
void seen_map_encode(const struct seen_map *m, struct buf *out);

#endif
