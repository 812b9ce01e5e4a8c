/*
 * A PN-counter (Shapiro et al., "A comprehensive study of CRDTs", 2011) that a DEL can
 * reset: AP `conflict = crdt` INCR/DECR/INCRBY/DECRBY, and HINCRBY's fields. Each actor
 * keeps the sums of its own increments (p) and decrements (n); the value is the sum over
 * actors of p - n. A G-counter is the same with n always 0 (`type = gcounter`: the caller
 * refuses decrements).
 *
 * A DEL removes what it observed, as Redis Active-Active does: it records, per actor, the
 * p and n it saw (p_rm, n_rm), and those no longer count. An increment concurrent with the
 * DEL is not observed, so it survives the merge: DEL on one side and INCR 3 on the other
 * give 3. Every field merges by maximum (a join semilattice), and p_rm <= p, n_rm <= n
 * always hold. The value is computed modulo 2^64 (as int64), the same on every replica;
 * a command refuses an increment that would overflow what this replica sees.
 * Invariants: entries sorted by actor, no duplicates, at most VV_ACTORS_MAX.
 */
#ifndef CAPKV_CRDT_PNCOUNTER_H
#define CAPKV_CRDT_PNCOUNTER_H

#include <stdbool.h>
#include <stdint.h>

#include "crdt/codec.h"

struct pncounter_entry {
    uint64_t actor;
    uint64_t p, n;       /* sums of this actor's increments and decrements */
    uint64_t p_rm, n_rm; /* the parts of p and n a DEL observed */
};

struct pncounter {
    struct pncounter_entry *entries; /* owned; sorted by actor */
    uint32_t count;
    uint32_t cap;
};

void pncounter_init(struct pncounter *c);
void pncounter_deinit(struct pncounter *c);
/* Adds delta as actor. Returns 0, or ERR_LIMIT when the actor's sums would pass 2^64 - 1
 * (or the vector its actor limit): nothing changes then. */
int pncounter_add(struct pncounter *c, uint64_t actor, int64_t delta);
/* The observed-remove reset of a DEL: everything counted so far stops counting. */
void pncounter_reset(struct pncounter *c);
int64_t pncounter_value(const struct pncounter *c);
/* Whether any increment or decrement counts (a DEL observed none of). */
bool pncounter_present(const struct pncounter *c);
/* c becomes the join of c and other (borrowed). */
void pncounter_merge(struct pncounter *c, const struct pncounter *other);

void pncounter_encode(const struct pncounter *c, struct buf *out);
void pncounter_decode(struct crdt_reader *r, struct pncounter *out);

#endif
