/*
 * Sessions (SESSION TOKEN | RESUME | END): read-your-writes, monotonic reads and writes
 * that follow a client from one connection, or one node, to another, instead of "route
 * reads to the primary for a while".
 *
 * CP keys: a connection records the highest CP Raft index it has observed (each write's
 * entry, the applied index each read was served at); SESSION RESUME on any node of the same
 * cluster makes that connection's locally served CP reads wait until the node has applied
 * it (bounded by session-wait, then -TIMEOUT). Linearizable reads never wait.
 *
 * AP keys (no order across keys to name by one number): per key, what the replies showed
 * of its writes (engine/seen.h), at most SEEN_KEYS_MAX keys; a resumed connection's
 * command on one of them waits until the replica serving it holds as much (the AP
 * engine). A session that saw more keys than that cannot give a token (an error says so,
 * and SESSION END starts a new one) rather than promise what it does not keep.
 *
 * Token: the hex of the bytes below (lowercase on output, either case on input); the same
 * table is in docs/formats.md.
 *
 *   offset size field
 *   0      1    version (SESSION_TOKEN_VERSION; version 1 is read too: no AP keys)
 *   1      1    flags (none defined: must be 0)
 *   2      4    cluster id, u32 little-endian (session_cluster_id)
 *   6      8    CP index, u64 little-endian (Raft index, 1-based; 0: nothing observed)
 *   14     1    AP key count k (0 in version 1; at most SEEN_KEYS_MAX)
 *   15     ...  k AP key entries (engine/seen.h), sorted by key hash
 *   end-4  4    CRC-32C of every byte before, u32 little-endian
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
#include "base/buf.h"
#include "engine/engine.h"
#include "engine/seen.h"

#define SESSION_TOKEN_VERSION 2
#define SESSION_TOKEN_BYTES_MIN 19 /* no AP keys */
#define SESSION_TOKEN_BYTES_MAX                                                                    \
    (SESSION_TOKEN_BYTES_MIN + SEEN_KEYS_MAX * (9 + 16 * SEEN_ACTORS_MAX))
#define SESSION_WAIT_MS_DEFAULT ENGINE_SESSION_WAIT_MS_DEFAULT

struct session_token {
    uint32_t cluster_id;
    uint64_t cp_index; /* Raft index, 1-based; 0: nothing observed */
};

/* A connection's session state; all zero is a fresh connection (session_reset frees). */
struct session {
    uint64_t cp_seen;  /* highest CP index this connection observed */
    uint64_t cp_floor; /* SESSION RESUME's token index (0: not resumed) */
    bool resumed;
    /* AP keys this connection saw, and those of the tokens it resumed (sessions chain) */
    struct seen_map ap;
    struct buf ap_floor; /* ap encoded, for requests while resumed */
    bool ap_floor_stale; /* ap changed since ap_floor was encoded */
};

/* Appends the token's hex (t's CP index, ap's keys) to out. */
void session_token_encode(const struct session_token *t, const struct seen_map *ap,
                          struct buf *out);
/* Parses text (borrowed, bytes long) into out, and its AP keys into ap (an empty map).
 * ERR_CORRUPT (length, hex, CRC, reserved fields, AP keys) or ERR_VERSION, with why in
 * msg; ERR_INVALID when the token is of another cluster than cluster_id. */
int session_token_decode(const char *text, size_t bytes, uint32_t cluster_id,
                         struct session_token *out, struct seen_map *ap, struct errmsg *msg);
/* The cluster's id: configured if non-zero, else derived from the voters (peers borrowed)
 * as the configuration names them; never 0. */
uint32_t session_cluster_id(uint32_t configured, const struct node_peer *peers, uint32_t count);

void session_reset(struct session *s); /* and frees what it held */
/* The connection observed CP index (a reply's observed index). */
void session_observe(struct session *s, uint64_t index);
/* The connection observed AP keys (a reply's seen entries). */
void session_observe_ap(struct session *s, const uint8_t *seen, size_t bytes);
/* SESSION RESUME of a token's AP keys: false (nothing changed) when they and this
 * session's would be more than SEEN_KEYS_MAX keys. */
bool session_resume_ap(struct session *s, const struct seen_map *token);
/* What an AP request carries while resumed (entries, borrowed until the next change); NULL
 * and 0 when not resumed. */
const uint8_t *session_ap_floor(struct session *s, size_t *bytes);
/* The index a locally served CP read must wait for: 0 unless resumed. */
uint64_t session_wait_index(const struct session *s);
/* What SESSION TOKEN hands out. */
uint64_t session_token_index(const struct session *s);

#endif
