/*
 * Dots and version vectors: the causal metadata under every AP value (src/crdt).
 *
 * An actor is one incarnation of a node: its id in the low 32 bits and its epoch in the
 * high 32. A node that lost its data directory comes back with a new epoch, so it never
 * mints a dot it minted before (Riak's "kv679": reused counters made new writes look old).
 * A dot (actor, counter) names one event of one actor; counters start at 1.
 *
 * A version vector maps actors to the highest counter seen from each, for a contiguous
 * history 1..counter (every value here is updated only by its own replicas, in order).
 * Invariants: entries sorted by actor, no duplicate actor, no zero counter (an absent
 * actor means 0), at most VV_ACTORS_MAX entries. The encoding is canonical: two equal
 * vectors encode to the same bytes. Pure values: no I/O, no clock.
 */
#ifndef CAPKV_CRDT_VV_H
#define CAPKV_CRDT_VV_H

#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "crdt/codec.h"

/* Actors one vector may name: every node and epoch a key's replicas ever had. */
#define VV_ACTORS_MAX 4096u

struct dot {
    uint64_t actor;
    uint64_t counter;
};

struct vv {
    struct dot *entries; /* owned; sorted by actor */
    uint32_t count;
    uint32_t cap;
};

enum vv_order {
    VV_EQUAL = 0,
    VV_BEFORE,    /* a < b: b has seen everything a has, and more */
    VV_AFTER,     /* a > b */
    VV_CONCURRENT /* each has seen something the other has not */
};

static inline uint64_t crdt_actor(uint32_t node_id, uint32_t epoch) {
    return (uint64_t)epoch << 32 | node_id;
}
static inline uint32_t crdt_actor_node(uint64_t actor) {
    return (uint32_t)actor;
}
/* Orders dots by actor, then counter (-1, 0, 1). */
int dot_compare(struct dot a, struct dot b);

void vv_init(struct vv *vv);
void vv_deinit(struct vv *vv);
void vv_clear(struct vv *vv);
/* Makes dst equal to src (both caller-owned, initialized). */
void vv_copy(struct vv *dst, const struct vv *src);
uint64_t vv_get(const struct vv *vv, uint64_t actor);
/* Whether the vector has seen the dot. */
bool vv_covers(const struct vv *vv, struct dot d);
/* Raises actor's counter to at least counter (never lowers it). */
void vv_raise(struct vv *vv, uint64_t actor, uint64_t counter);
/* The actor's next event: its counter plus one, recorded in the vector. */
struct dot vv_next(struct vv *vv, uint64_t actor);
/* Pointwise maximum: vv becomes the join of vv and other (borrowed). */
void vv_merge(struct vv *vv, const struct vv *other);
enum vv_order vv_compare(const struct vv *a, const struct vv *b);
/* Whether a has seen everything b has (a >= b). */
bool vv_descends(const struct vv *a, const struct vv *b);
bool vv_equal(const struct vv *a, const struct vv *b);

void vv_encode(const struct vv *vv, struct buf *out);
/* Decodes into out (initialized; replaced). A vector that breaks an invariant fails r. */
void vv_decode(struct crdt_reader *r, struct vv *out);

#endif
