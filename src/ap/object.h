/*
 * An AP key's object: what one replica holds for one key, merged with what others hold.
 *
 * An object is up to one state per type (a component), each with the newest timestamp of
 * the writes it took, and the key's expiry. A keyspace's conflict policy decides which
 * components its commands use: `lww` and `lww-wallclock` a PLAIN component (an LWW
 * register over a whole Redis value, ap_plain.h); `siblings` a SIBLINGS one (mvreg.h);
 * `crdt` STRING (strval.h), SET (orset.h) and HASH (ormap.h).
 *
 * Merge is the join of each component, and of the expiry, so it is commutative,
 * associative and idempotent. Which type a key has is read from the components: the
 * present one (not a tombstone) with the newest timestamp, ties to the lower tag. So a key
 * written as a set on one side of a partition and as a string on the other is, on every
 * replica after the heal, whichever was written last; the other component stays, hidden,
 * and a DEL removes both.
 *
 * Expiry, as Redis Active-Active: (epoch, at). Every EXPIRE, PERSIST or SET moves to the
 * next epoch; concurrent ones share an epoch and the greater `at` wins, so the longer TTL
 * wins and PERSIST (at = AP_EXPIRY_NEVER) beats them all. A key is absent once now >= at.
 */
#ifndef CAPKV_AP_OBJECT_H
#define CAPKV_AP_OBJECT_H

#include <stdbool.h>
#include <stdint.h>

#include "base/err.h"
#include "crdt/mvreg.h"
#include "crdt/ormap.h"
#include "crdt/orset.h"
#include "crdt/strval.h"
#include "crdt/vv.h"

#define AP_OBJECT_FORMAT 3 /* 1: without the writes vector and lives; 2: without lives */
#define AP_EXPIRY_NEVER UINT64_MAX

enum ap_type {
    AP_TYPE_PLAIN = 0,    /* lww, lww-wallclock */
    AP_TYPE_SIBLINGS = 1, /* siblings */
    AP_TYPE_STRING = 2,   /* crdt */
    AP_TYPE_SET = 3,      /* crdt */
    AP_TYPE_HASH = 4,     /* crdt */
};
#define AP_TYPE_COUNT 5
#define AP_TYPE_NONE AP_TYPE_COUNT /* ap_object_type of an absent key */

struct ap_component {
    bool used;   /* the object has this component */
    uint64_t ts; /* the newest timestamp of a write it took */
    union {
        struct lwwreg plain;
        struct mvreg siblings;
        struct strval string;
        struct orset set;
        struct ormap hash;
    } u;
};

struct ap_expiry {
    uint64_t epoch;
    uint64_t at_ms; /* Unix ms; AP_EXPIRY_NEVER: no TTL */
};

struct ap_object {
    struct ap_expiry expiry;
    /* Per actor, the writes of this key it coordinated (a client's command that changed
     * it, counted on the coordinator's own replica before it is sent): what sessions
     * compare (engine/seen.h). Merge takes the greater count per actor. */
    struct vv writes;
    /* Per node incarnation (its actor), the life it writes this key in (a counter of the
     * vv: a value the actor never gives twice, see ap_store). A write names its writer as
     * ap_object_actor(actor, life) in dots, counter parts and the writes vector; a copy
     * with no life of this start for this node's actor (new here, collected or handed off
     * here before, or written before a restart that may have lost its last writes) gets a
     * new one, so a write is never taken for one a copy elsewhere (a tombstone, or a write
     * this node lost in a crash) already holds. Merge keeps the later life. */
    struct vv lives;
    struct ap_component parts[AP_TYPE_COUNT];
};

void ap_object_init(struct ap_object *o);
void ap_object_deinit(struct ap_object *o);
/* The component of type t, made (empty) if the object had none; its ts is raised to ts. */
struct ap_component *ap_object_use(struct ap_object *o, enum ap_type t, uint64_t ts);
/* Whether a component holds something that reads as present. */
bool ap_component_present(enum ap_type t, const struct ap_component *c);
/* The key's type as read at now_ms, or AP_TYPE_NONE when absent (or expired). */
enum ap_type ap_object_type(const struct ap_object *o, uint64_t now_ms);
/* The newest timestamp of any write in the object (clock checks on arrival). */
uint64_t ap_object_newest_ts(const struct ap_object *o);
/* DEL at (ts, actor): every component removes what this replica has seen (an LWW one by
 * a tombstone written at ts; siblings by a write of none). */
void ap_object_delete(struct ap_object *o, uint64_t ts, uint64_t actor);
/* EXPIRE / PEXPIRE / PERSIST (at_ms = AP_EXPIRY_NEVER) / SET's TTL reset. */
void ap_object_set_expiry(struct ap_object *o, uint64_t at_ms);
/* The actor this node's writes of o are named by: its actor in o's life for it, minted
 * (*next_life, then counted up) when o has none at or above life_floor (the first life of
 * this node's current start: a start after a crash may have lost its last writes of o,
 * which other replicas may hold, so it never counts on from them). */
uint64_t ap_object_actor(struct ap_object *o, uint64_t actor, uint64_t life_floor,
                         uint64_t *next_life);
/* An encoded object's header alone into out (initialized; replaced): its writes vector,
 * lives and expiry, no component (what sessions and collection look at, without decoding
 * a large state). 0, or as decode. */
int ap_object_peek(const uint8_t *data, size_t bytes, struct ap_object *out);
/* Whether a tombstone: nothing in it reads as present, at any time. */
bool ap_object_is_tombstone(const struct ap_object *o);
/* A write coordinated by actor: its count of writes of the key goes up by one. */
void ap_object_count_write(struct ap_object *o, uint64_t actor);
/* o becomes the merge of o and other (borrowed). */
void ap_object_merge(struct ap_object *o, const struct ap_object *other);

void ap_object_encode(const struct ap_object *o, struct buf *out);
/* Decodes (into an initialized object, replaced). Returns 0, ERR_VERSION for an unknown
 * format, or ERR_CORRUPT. */
int ap_object_decode(const uint8_t *data, size_t bytes, struct ap_object *out);

#endif
