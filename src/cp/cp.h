/*
 * The CP engine: keyspaces replicated by Raft (src/raft) and stored by raftstore, behind
 * the engine interface (engine.h). Linearizable: writes are answered once a majority holds
 * them (or as the keyspace's replication mode says), reads at the level asked for; the
 * minority side of a partition refuses with -NOQUORUM. Any node takes any request and
 * forwards what its leader must do.
 *
 * The functions below besides cp_engine_ops are for the simulator and tests: they look at
 * the engine's state and never change it (cp_engine_propose aside, which tests use to put
 * crafted entries in the log).
 */
#ifndef CAPKV_CP_CP_H
#define CAPKV_CP_CP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "data/db.h"
#include "engine/engine.h"
#include "raft/raft.h"

extern const struct engine_ops cp_engine_ops;

/* Peer payload kinds, after the engine byte (docs/formats.md). */
enum cp_peer_kind {
    CP_PEER_RAFT = 1,          /* a raft message (raft_msg_encode) */
    CP_PEER_FORWARD = 2,       /* a client request for the leader: request id:u64, proto:u8,
                                * level:u8, then a command list */
    CP_PEER_FORWARD_REPLY = 3, /* request id:u64, observed index:u64 (what the reply
                                * reflects, for sessions), then the RESP reply bytes */
    CP_PEER_SNAP_OFFER = 4,    /* InstallSnapshot in chunks (cp_xfer.c) */
    CP_PEER_SNAP_CHUNK = 5,
    CP_PEER_SNAP_ACK = 6,
    CP_PEER_SNAP_INSTALL = 7,
};

/* Returns borrowed, valid while the engine lives; the caller only looks. */
struct raft *cp_engine_raft(const struct engine *e);
struct db *cp_engine_db(const struct engine *e);
uint64_t cp_engine_applied(const struct engine *e);
bool cp_engine_sync_in_flight(const struct engine *e);
/* The keyspace table in force (the agreed one, or this node's own until one is agreed):
 * its entry count, *table set to it. */
uint32_t cp_engine_keyspaces(const struct engine *e, const struct keyspace **table);
/* Leader mode: early replies that differed from the applied ones, and acknowledged writes
 * seen lost (both should be 0 and small). */
uint64_t cp_engine_leader_mismatches(const struct engine *e);
uint64_t cp_engine_leader_acked_lost(const struct engine *e);
/* Calls fn for every leader-mode write this node answered early (after its own fsync)
 * whose entry is not applied yet: its entry's index and term. */
typedef void cp_engine_early_fn(void *ctx, uint64_t index, uint64_t term);
void cp_engine_each_early_answer(const struct engine *e, cp_engine_early_fn *fn, void *ctx);
/* Proposes raw entry data (borrowed) on the leader. */
int cp_engine_propose(struct engine *e, const uint8_t *data, size_t bytes, uint64_t *index,
                      uint64_t *term);

#endif
