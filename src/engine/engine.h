/*
 * The engine seam: a node holds several engines, each serving the keyspaces of one mode.
 * This header names them; their peer payloads carry the engine's id in their first byte,
 * so the node hands each payload to the engine it belongs to and every engine's traffic
 * passes the node's faults alike.
 *
 * Peer payload layout (inside a wire.c frame): engine:u8, then the engine's own bytes.
 * Engine 0 is the link's HELLO (wire.h), never an engine.
 */
#ifndef CAPKV_ENGINE_ENGINE_H
#define CAPKV_ENGINE_ENGINE_H

enum engine_id {
    ENGINE_LOCAL = 1, /* one node alone: its own log, no replication */
    ENGINE_CP = 2,    /* Raft */
    ENGINE_AP = 3,    /* leaderless (issue 9): no payload of it exists yet */
};
#define ENGINE_ID_MAX 3

#endif
