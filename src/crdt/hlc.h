/*
 * A hybrid logical clock (Kulkarni et al., "Logical Physical Clocks", 2014), the order of
 * AP `conflict = lww` writes. A timestamp is one u64: wall milliseconds in the high 48
 * bits, a logical counter in the low 16 (a counter that overflows carries into the
 * milliseconds, which keeps every timestamp unique and increasing). Every timestamp this
 * clock gives is greater than every one it gave or observed before, so a write made on a
 * node that has seen value A is ordered after A whatever the wall clocks say.
 *
 * A remote timestamp more than max_offset_ms ahead of this node's wall clock is refused
 * and never adopted (CockroachDB's rule: one node with a bad clock must not drag every
 * other clock forward); the caller logs it and counts it. The clock reads no time itself:
 * the wall clock comes in as an argument (the node's, with any FAULT CLOCK offset).
 */
#ifndef CAPKV_CRDT_HLC_H
#define CAPKV_CRDT_HLC_H

#include <stdint.h>

#define HLC_LOGICAL_BITS 16
#define HLC_OFFSET_MS_DEFAULT 500

struct hlc {
    uint64_t last; /* the greatest timestamp given or observed */
};

static inline uint64_t hlc_wall_ms(uint64_t ts) {
    return ts >> HLC_LOGICAL_BITS;
}
static inline uint64_t hlc_from_wall_ms(uint64_t wall_ms) {
    return wall_ms << HLC_LOGICAL_BITS;
}

void hlc_init(struct hlc *h);
/* A timestamp for a local event (a write): greater than any before, at least wall_ms. */
uint64_t hlc_now(struct hlc *h, uint64_t wall_ms);
/* Takes a timestamp seen in a message or a replica's value. Returns 0, or ERR_LIMIT when
 * remote is more than max_offset_ms ahead of wall_ms: then the clock is left unchanged. */
int hlc_observe(struct hlc *h, uint64_t remote, uint64_t wall_ms, uint64_t max_offset_ms);

#endif
