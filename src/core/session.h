/*
 * Sessions (SESSION TOKEN | RESUME | END): read-your-writes and monotonic reads that follow
 * a client from one connection, or one node, to another, instead of "route reads to the
 * primary for a while". A connection records the highest CP Raft index it has observed
 * (each write's entry, the applied index each read was served at); SESSION TOKEN hands that
 * out, and SESSION RESUME on any node of the same cluster makes that connection's locally
 * served CP reads wait until the node has applied it (bounded by session-wait, then
 * -TIMEOUT). Linearizable reads see everything already and never wait.
 *
 * AP keys are not covered yet (issue 9): on a resumed connection AP commands are refused,
 * and SESSION TOKEN after AP use refuses too, rather than promise what it does not keep.
 *
 * Token: the hex of the bytes below (lowercase on output, either case on input); the same
 * table is in docs/formats.md.
 *
 *   offset size field
 *   0      1    version (SESSION_TOKEN_VERSION)
 *   1      1    flags (none defined in version 1: must be 0)
 *   2      4    cluster id, u32 little-endian (session_cluster_id)
 *   6      8    CP index, u64 little-endian (Raft index, 1-based; 0: nothing observed)
 *   14     1    AP key count (reserved: 0 in version 1)
 *   15     4    CRC-32C of bytes 0..14, u32 little-endian
 *
 * The core never trusts a token: a wrong length, a bad hex digit, a CRC mismatch, another
 * version or another cluster is refused with an error that says which.
 */
#ifndef CAPKV_CORE_SESSION_H
#define CAPKV_CORE_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "engine/engine.h"

#define SESSION_TOKEN_VERSION 1
#define SESSION_TOKEN_BYTES 19
#define SESSION_TOKEN_HEX_BYTES (2 * SESSION_TOKEN_BYTES)
#define SESSION_WAIT_MS_DEFAULT ENGINE_SESSION_WAIT_MS_DEFAULT

struct session_token {
    uint32_t cluster_id;
    uint64_t cp_index; /* Raft index, 1-based; 0: nothing observed */
};

/* A connection's session state; all zero is a fresh connection. */
struct session {
    uint64_t cp_seen;  /* highest CP index this connection observed */
    uint64_t cp_floor; /* SESSION RESUME's token index (0: not resumed) */
    bool resumed;
    bool ap_used; /* an AP command ran here: a token could not cover it */
};

/* Writes the token's hex and a NUL into out (SESSION_TOKEN_HEX_BYTES + 1 bytes). */
void session_token_encode(const struct session_token *t, char *out);
/* Parses text (borrowed, bytes long) into out. ERR_CORRUPT (length, hex, CRC, reserved
 * fields) or ERR_VERSION, with why in msg; ERR_INVALID when the token is of another
 * cluster than cluster_id. */
int session_token_decode(const char *text, size_t bytes, uint32_t cluster_id,
                         struct session_token *out, struct errmsg *msg);
/* The cluster's id: configured if non-zero, else derived from the voters (peers borrowed)
 * as the configuration names them; never 0. */
uint32_t session_cluster_id(uint32_t configured, const struct node_peer *peers, uint32_t count);

void session_reset(struct session *s);
/* The connection observed CP index (a reply's observed index). */
void session_observe(struct session *s, uint64_t index);
/* The index a locally served CP read must wait for: 0 unless resumed. */
uint64_t session_wait_index(const struct session *s);
/* What SESSION TOKEN hands out. */
uint64_t session_token_index(const struct session *s);

#endif
