/*
 * An add-wins observed-remove set without tombstones (ORSWOT; Bieniusa et al., "An
 * optimized conflict-free replicated set", 2012): AP `conflict = crdt` SADD/SREM/SMEMBERS.
 *
 * One version vector for the whole set (`clock`: every add this replica has seen) and, per
 * element, the dots of the adds that put it there. An add mints a dot and makes it the
 * element's only one (the older ones are in the clock). A remove drops the element and
 * keeps nothing: the clock remembers that its dots were seen. Merging keeps a dot that
 * both sides hold, or that one side holds and the other's clock has not seen (a concurrent
 * add: add wins); a dot one side holds and the other has seen and dropped was removed.
 * Invariants: elements sorted by crdt_bytes_compare and distinct, each with 1 to
 * VV_ACTORS_MAX dots sorted by dot_compare, every dot covered by the clock.
 */
#ifndef CAPKV_CRDT_ORSET_H
#define CAPKV_CRDT_ORSET_H

#include <stdbool.h>
#include <stdint.h>

#include "crdt/vv.h"

struct orset_elem {
    struct crdt_bytes value;
    struct dot *dots; /* owned */
    uint32_t dot_count;
};

struct orset {
    struct vv clock;
    struct orset_elem *elems; /* owned; sorted by value */
    uint32_t count;
    uint32_t cap;
};

void orset_init(struct orset *s);
void orset_deinit(struct orset *s);
/* SADD of one element as actor; returns whether it was new here. */
bool orset_add(struct orset *s, uint64_t actor, const uint8_t *value, size_t bytes);
/* SREM of one element: removes the adds this replica has seen; returns whether it was here. */
bool orset_remove(struct orset *s, const uint8_t *value, size_t bytes);
/* DEL: removes every element this replica has seen (the clock stays). */
void orset_clear(struct orset *s);
bool orset_contains(const struct orset *s, const uint8_t *value, size_t bytes);
/* s becomes the merge of s and other (borrowed). */
void orset_merge(struct orset *s, const struct orset *other);

void orset_encode(const struct orset *s, struct buf *out);
void orset_decode(struct crdt_reader *r, struct orset *out);

#endif
