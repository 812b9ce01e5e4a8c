/*
 * The AP engine's peer payloads (after the engine byte ENGINE_AP; docs/formats.md, "AP
 * peer payloads"). Integers are varints (crdt/codec.h), byte strings a varint length then
 * the bytes. A payload that does not decode whole is dropped and counted by the engine,
 * never trusted. Decoded messages borrow their byte strings from the payload.
 *
 *   PING          seq                                  reachability, every 100 ms
 *   PONG          seq
 *   PUT           req flags hint_for key object        a replica's new state, or a hint
 *   PUT_ACK       req status digest
 *   GET           req key
 *   GET_REPLY     req status object (empty: none)
 *   FORWARD       req proto level w r argc argv... session   a command for a key's replica
 *   FORWARD_REPLY req reply session                    its RESP reply, byte for byte
 *
 * FORWARD's session: what a resumed session saw of the key (one entry of engine/seen.h, or
 * empty); FORWARD_REPLY's: the keys the reply reflects (entries), for the client's session.
 *   AE_BUCKETS    arc ring flags [buckets[AP_TREE_BUCKETS]]  u64 le each; none if SAME
 *   AE_KEYS       arc ring bucket flags count (key digest)*
 *   AE_PULL       count key*                           also the answer to one AE_KEYS
 *   REAP_ASK      req key digest                       collecting a tombstone: do you hold it?
 *   REAP_STATE    req status                           OK (the same), NONE, or DIFFERENT
 *   REAP          req key digest                       remove it if it is still the same
 */
#ifndef CAPKV_AP_AP_MSG_H
#define CAPKV_AP_AP_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ap/tree.h"
#include "base/buf.h"
#include "proto/resp.h"

#define AP_MSG_ARGS_MAX 1024 /* arguments of a forwarded command */
#define AP_MSG_KEYS_MAX 4096 /* keys of one AE_KEYS or AE_PULL */

enum ap_msg_kind {
    AP_MSG_PING = 1,
    AP_MSG_PONG,
    AP_MSG_PUT,
    AP_MSG_PUT_ACK,
    AP_MSG_GET,
    AP_MSG_GET_REPLY,
    AP_MSG_FORWARD,
    AP_MSG_FORWARD_REPLY,
    AP_MSG_AE_BUCKETS,
    AP_MSG_AE_KEYS,
    AP_MSG_AE_PULL,
    AP_MSG_REAP_ASK,
    AP_MSG_REAP_STATE,
    AP_MSG_REAP,
};
#define AP_MSG_KIND_MAX AP_MSG_REAP

#define AP_PUT_HINT 1u /* flags: a hint handed over (hint_for names the replica meant) */
#define AP_PUT_ACK_WANTED 2u
#define AP_PUT_AE 4u /* flags: sent by anti-entropy (counted as a repair if it changes the key) */
#define AP_PUT_FLAGS_ALL (AP_PUT_HINT | AP_PUT_ACK_WANTED | AP_PUT_AE)

/* AE_BUCKETS flags: REPLY answers an exchange's first AE_BUCKETS; SAME (with REPLY) says
 * the arc's buckets are equal, and no buckets follow. AE_KEYS flags: TRUNCATED, the
 * sender listed only part of the bucket (more than AP_MSG_KEYS_MAX keys). */
#define AP_AE_REPLY 1u
#define AP_AE_SAME 2u
#define AP_AE_BUCKETS_FLAGS_ALL (AP_AE_REPLY | AP_AE_SAME)
#define AP_AE_TRUNCATED 1u

enum ap_msg_status {
    AP_STATUS_OK = 0,
    AP_STATUS_CLOCK = 1,     /* refused: the object's clock is past max-clock-offset */
    AP_STATUS_DISKFULL = 2,  /* refused: no log space */
    AP_STATUS_BAD = 3,       /* refused: the object did not decode */
    AP_STATUS_NONE = 4,      /* GET_REPLY: no object */
    AP_STATUS_FILLING = 5,   /* GET_REPLY: this replica is still filling the key's arc after a
                              * ring change: its object (if any) to merge, not to count */
    AP_STATUS_DIFFERENT = 6, /* REAP_STATE: this replica holds another state of the key */
};
#define AP_STATUS_MAX AP_STATUS_DIFFERENT

struct ap_bytes {
    const uint8_t *data; /* borrowed */
    size_t bytes;
};

struct ap_msg {
    enum ap_msg_kind kind;
    uint64_t seq; /* PING, PONG */
    uint64_t req; /* PUT ... FORWARD_REPLY */
    uint32_t flags; /* PUT: AP_PUT_*; AE_BUCKETS, AE_KEYS: AP_AE_* */
    uint32_t hint_for;
    uint8_t status;
    uint64_t digest;
    uint8_t proto, level, w, r; /* FORWARD: the client's protocol, read level, quorums */
    uint32_t arc;
    uint64_t ring; /* the sender's ring version: AE between equal rings only */
    uint32_t bucket;
    struct ap_bytes key, object, reply;
    struct ap_bytes session; /* FORWARD, FORWARD_REPLY: entries of engine/seen.h */
    /* FORWARD: argc arguments; AE_KEYS: count keys with digests; AE_PULL: count keys. */
    uint32_t count;
    struct resp_arg *args;             /* caller's room for AP_MSG_ARGS_MAX (FORWARD) or KEYS_MAX */
    uint64_t *digests;                 /* AE_KEYS: caller's room for AP_MSG_KEYS_MAX */
    uint64_t buckets[AP_TREE_BUCKETS]; /* AE_BUCKETS (all 0 when SAME) */
};

/* Appends m's payload (without the engine byte). */
void ap_msg_encode(const struct ap_msg *m, struct buf *out);
/* Decodes a payload into m (args and digests: the caller's room, set before the call;
 * NULL refuses those kinds). Returns 0 or ERR_CORRUPT. */
int ap_msg_decode(const uint8_t *p, size_t bytes, struct ap_msg *m);

#endif
