/*
 * A last-writer-wins register: AP `conflict = lww` (timestamps from the hybrid logical
 * clock, hlc.h) and `conflict = lww-wallclock` (raw wall-clock milliseconds, so a node
 * whose clock is behind loses its writes: the lesson's lost write), and the value of a
 * plain SET/GET key under `conflict = crdt`. A delete is a write too (a tombstone that
 * keeps its timestamp), so an older write that arrives later cannot bring the key back.
 *
 * Order: the greater (ts, actor) wins; equal pairs (one actor never mints one twice)
 * fall back to the tombstone flag and the bytes, so merge is a total order and
 * commutative, associative and idempotent on any input.
 */
#ifndef CAPKV_CRDT_LWWREG_H
#define CAPKV_CRDT_LWWREG_H

#include <stdbool.h>
#include <stdint.h>

#include "crdt/codec.h"

struct lwwreg {
    uint64_t ts;    /* 0: never written */
    uint64_t actor; /* who wrote it */
    bool deleted;
    struct crdt_bytes value; /* empty when deleted */
};

void lwwreg_init(struct lwwreg *r);
void lwwreg_deinit(struct lwwreg *r);
/* A write (deleted: a DEL) at (ts, actor) with value (borrowed). Returns whether it won:
 * false when the register already holds a later write, which then stays. */
bool lwwreg_write(struct lwwreg *r, uint64_t ts, uint64_t actor, bool deleted, const uint8_t *value,
                  size_t bytes);
/* r becomes the winner of r and other (borrowed); returns whether r changed. */
bool lwwreg_merge(struct lwwreg *r, const struct lwwreg *other);
/* Whether the register holds a value (written, and the last write was not a DEL). */
bool lwwreg_present(const struct lwwreg *r);

void lwwreg_encode(const struct lwwreg *r, struct buf *out);
void lwwreg_decode(struct crdt_reader *r, struct lwwreg *out);

#endif
