/*
 * A multi-value register with dotted version vectors: AP `conflict = siblings` (Preguiça
 * et al., "Dotted Version Vectors", 2010; Riak's dvvset). Concurrent writes are all kept
 * as siblings, each tagged with the dot of its write; `clock` is every write this replica
 * has seen. A write with a context (the clock a VGET returned, from any node) replaces
 * exactly the siblings that context has seen; without one (a plain SET) it adds a sibling
 * and replaces none. Merge keeps a sibling both sides hold, or one that one side holds and
 * the other's clock has not seen; a sibling one side has seen but no longer holds was
 * replaced. A DEL is a write of no value with the replica's own clock as context: no
 * sibling is left, and the clock stays as the tombstone.
 *
 * Riak's limits: a warning at MVREG_SIBLINGS_WARN siblings, and a write that would leave
 * more than MVREG_SIBLINGS_MAX is refused (merges cannot refuse: the reader sees more).
 * Invariants: siblings sorted by dot, distinct, each covered by the clock.
 */
#ifndef CAPKV_CRDT_MVREG_H
#define CAPKV_CRDT_MVREG_H

#include <stdbool.h>
#include <stdint.h>

#include "crdt/vv.h"

#define MVREG_SIBLINGS_WARN 25
#define MVREG_SIBLINGS_MAX 100

struct mvreg_sibling {
    struct dot dot;
    struct crdt_bytes value;
};

struct mvreg {
    struct vv clock;
    struct mvreg_sibling *sibs; /* owned; sorted by dot */
    uint32_t count;
    uint32_t cap;
};

void mvreg_init(struct mvreg *m);
void mvreg_deinit(struct mvreg *m);
/* A write as actor. context (borrowed, NULL for none) names the siblings it replaces;
 * value NULL writes none (a DEL). Returns 0, or ERR_LIMIT when more than
 * MVREG_SIBLINGS_MAX siblings would be left (nothing changes then). */
int mvreg_write(struct mvreg *m, uint64_t actor, const struct vv *context, const uint8_t *value,
                size_t bytes);
/* m becomes the merge of m and other (borrowed). */
void mvreg_merge(struct mvreg *m, const struct mvreg *other);

void mvreg_encode(const struct mvreg *m, struct buf *out);
void mvreg_decode(struct crdt_reader *r, struct mvreg *out);

#endif
