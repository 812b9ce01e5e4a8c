/*
 * The engine seam. A node holds several engines, each serving the keyspaces of one mode:
 * the single-node engine (src/local: its own log, no replication) or the CP engine (Raft,
 * src/cp), and later the AP engine beside CP. An engine never sees a client connection:
 * requests go in with an id, replies come back with that id, either at once (into the
 * buffer the node passes) or later, in the effects of a step. Each engine owns its db and
 * its files (a view of the data directory that places them, disk_view.h); faults sit at
 * node level, under every engine's peer traffic and clock.
 *
 * Effects of a step must be carried out in this order: (1) replies go to their clients (a
 * reply answered at once may be sent when durable_lsn reaches the release_lsn the engine
 * had then; one given later may be sent at once), (2) sends go to peers, (3) the sync
 * asked for is started and reported with ENGINE_EVENT_SYNCED, (4) the engine is ticked at
 * its wake_at. Pointers in effects are borrowed from the engine and valid until its next
 * call.
 *
 * Peer payload layout (inside a wire.c frame): engine:u8, then the engine's own bytes.
 * Engine id 0 is the link's HELLO (wire.h), never an engine.
 */
#ifndef CAPKV_ENGINE_ENGINE_H
#define CAPKV_ENGINE_ENGINE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "engine/keyspace.h"
#include "proto/resp.h"
#include "storage/disk.h"

enum engine_id {
    ENGINE_LOCAL = 1, /* one node alone: its own log, no replication */
    ENGINE_CP = 2,    /* Raft */
    ENGINE_AP = 3,    /* leaderless: src/ap */
};
#define ENGINE_ID_MAX 3

#define NODE_PEERS_MAX 9 /* cluster members, this node included (RAFT_NODES_MAX) */
#define NODE_ADDR_BYTES_MAX 64
#define ENGINE_SESSION_WAIT_MS_DEFAULT 1000 /* session-wait's default */
#define ENGINE_AP_TOMBSTONE_MS_DEFAULT (3ull * 3600 * 1000) /* ap-tombstone-age's */

/* A cluster member: the node's id and its peer-protocol address HOST:PORT. */
struct node_peer {
    uint32_t id;
    char addr[NODE_ADDR_BYTES_MAX];
};

enum engine_fsync { ENGINE_FSYNC_ALWAYS, ENGINE_FSYNC_EVERYSEC, ENGINE_FSYNC_NEVER };

typedef void engine_trace_fn(void *ctx, const char *line);
/* Runs, for the client of request id, a command that is neither a data command nor an
 * engine command (PING, CLIENT, INFO ... queued in a transaction); its reply goes to that
 * client's output, which is where the node has the EXEC's reply built. It never submits to
 * the engine that called it. */
typedef void engine_host_fn(void *ctx, uint64_t request_id, uint32_t argc,
                            const struct resp_arg *argv);

/* What an engine is opened with; the node fills it from its own configuration. */
struct engine_config {
    uint32_t id; /* this node's */
    enum engine_fsync fsync;
    uint64_t string_bytes_max; /* largest string value (Redis's proto-max-bulk-len) */
    uint64_t snapshot_log_bytes;
    uint64_t wal_segment_bytes;
    uint64_t hash_seed;
    engine_trace_fn *trace; /* lines start with node id and time (the engine adds them) */
    void *trace_ctx;
    engine_host_fn *host; /* for engines that run a transaction's other commands in it */
    void *host_ctx;
    /* Replicated engines: the cluster's members (this node included), timers, and the
     * keyspace table this node was configured with (the cluster agrees on one). */
    uint32_t peer_count;
    struct node_peer peers[NODE_PEERS_MAX];
    uint64_t election_timeout_ms_min;
    uint64_t election_timeout_ms_max;
    uint64_t heartbeat_ms;
    uint64_t request_timeout_ms;
    uint64_t session_wait_ms; /* a resumed session's read waits this long at most */
    /* AP: a key deleted (or expired) this long ago is collected once every replica holds
     * the same tombstone; hints older are dropped; 0: ENGINE_AP_TOMBSTONE_MS_DEFAULT */
    uint64_t ap_tombstone_ms;
    uint64_t snapshot_entries;
    uint32_t snapshot_scans_per_step; /* db scans (~10 keys) a snapshot slice makes; 0: 50 */
    uint32_t snapshot_chunk_bytes;    /* InstallSnapshot chunk; 0: 256 KiB */
    uint64_t seed;
    bool join;
    /* AP engine: this node was a member before (the engine of mode cp held a cluster's
     * state at open), so a new AP data directory is a lost one, refilled before it counts. */
    bool member_before;
    uint32_t keyspace_count;
    struct keyspace keyspaces[KEYSPACES_MAX];
};

/* How an engine decides WATCH: by the ops each request and tick reports (the node marks
 * the clients watching their keys, as Redis does), or by conditions the node appends to
 * EXEC (the keys and the index the WATCH reply named), which the engine checks against its
 * log. */
enum engine_watch { ENGINE_WATCH_TOUCHED = 1, ENGINE_WATCH_CONDITIONS };

struct cmd_spec;

enum engine_request_kind {
    ENGINE_REQUEST_DATA = 1, /* a command list (cmdlist.h): one command, EXEC or WATCH */
    ENGINE_REQUEST_ADMIN,    /* argv is an engine command: CLUSTER, WAIT, SAVE, BGSAVE */
};

/* One client request. Everything is borrowed for the call. */
struct engine_request {
    uint64_t id; /* the node's; unique among its pending requests */
    enum engine_request_kind kind;
    uint64_t now_ms; /* as in struct engine_event: the node's clocks when it arrived */
    uint64_t mono_ms;
    int proto;           /* 2 or 3 */
    int level;           /* enum keyspace_consistency asked for; 0: the keyspace's */
    int w, r;            /* AP: enum keyspace_quorum asked for (QUORUM); 0: the keyspace's */
    uint64_t last_write; /* WAIT: the write_token of the client's last write */
    /* SESSION RESUME: a read served from this node's replica waits until it has applied
     * this index (CP; bounded by session_wait_ms, then -TIMEOUT); 0: no wait. */
    uint64_t session_index;
    /* SESSION RESUME: what the session saw of AP keys (engine/seen.h entries; NULL: not
     * resumed): a command on one of them waits until the replica that serves it holds
     * that (bounded by session_wait_ms, then -TIMEOUT). */
    const uint8_t *session_ap;
    size_t session_ap_bytes;
    const uint8_t *list; /* DATA: the command list */
    size_t bytes;
    /* DATA of one command: that command parsed (spec NULL for a transaction or WATCH), and
     * list may be NULL (an engine that needs one builds it); ADMIN: the command. A list
     * without EXEC or WATCH is a connection's pipeline (engine_ops.pipelines): its
     * commands run in order as if one by one, each with its own reply, all in one go. */
    const struct cmd_spec *spec;
    uint32_t argc;
    const struct resp_arg *argv;
};

struct engine_reply;

/* What a submit did. Pointers borrowed from the engine until its next call. */
struct engine_answer {
    bool pending;         /* the reply comes later, by id; nothing was put in out */
    uint64_t write_token; /* a write's position, for WAIT (0: not a write) */
    /* The replicated index the reply reflects (CP: the write's entry, or the applied index
     * a read was served at), for sessions; 0: none. */
    uint64_t observed_index;
    /* AP: the keys the reply reflects (engine/seen.h entries), for sessions; NULL: none. */
    const uint8_t *seen;
    size_t seen_bytes;
    const uint8_t *ops;   /* ENGINE_WATCH_TOUCHED: what the request changed (op.h) */
    size_t ops_bytes;
    const struct engine_reply *replies; /* other requests answered meanwhile */
    size_t reply_count;
};

/* A reply given later: for request id, data (borrowed, RESP). */
struct engine_reply {
    uint64_t id;
    uint64_t write_token;
    uint64_t observed_index; /* as in struct engine_answer */
    const uint8_t *seen;     /* as in struct engine_answer */
    size_t seen_bytes;
    const uint8_t *data;
    size_t bytes;
};

/* A payload for a peer; data borrowed until the engine's next call. */
struct node_peer_send {
    uint32_t to;
    const uint8_t *data;
    size_t bytes;
};

enum engine_event_kind {
    ENGINE_EVENT_TICK = 1,
    ENGINE_EVENT_SYNCED, /* token, error: the sync an effect asked for is done */
    ENGINE_EVENT_FLUSH,  /* end of a batch: write the log, build the sends */
    ENGINE_EVENT_PEER,   /* from, data, bytes (the engine's bytes, its id stripped) */
    ENGINE_EVENT_GONE,   /* request id: its client went away; drop the reply */
    ENGINE_EVENT_SENT,   /* the previous FLUSH's sends were carried out */
};

struct engine_event {
    enum engine_event_kind kind;
    uint64_t now_ms;  /* this node's wall clock (FAULT CLOCK applied: may step back), Unix ms */
    uint64_t mono_ms; /* monotonic ms (never goes back) */
    uint64_t token;
    int error;
    uint32_t from;
    uint64_t request_id;
    const uint8_t *data;
    size_t bytes;
};

struct engine_effects {
    const struct engine_reply *replies; /* requests answered in this step, in order */
    size_t reply_count;
    const struct node_peer_send *sends; /* FLUSH: payloads, in order, each led by the id */
    size_t send_count;
    struct disk_file *sync_file; /* non-NULL: run disk->sync on it, then SYNCED(token) */
    uint64_t sync_token;
    bool sync_inline;   /* the sync is short and nothing waits on this node's loop meanwhile */
    const uint8_t *ops; /* ENGINE_WATCH_TOUCHED: what the step changed (expiry; op.h) */
    size_t ops_bytes;
    /* FLUSH, non-NULL when the cluster's members changed: link to exactly these. */
    const struct node_peer *members;
    size_t member_count;
    /* FLUSH, non-NULL when the committed configuration's servers changed (an entry that
     * may still be undone is not in it): what engines that place keys on members follow. */
    const uint32_t *committed_ids;
    uint32_t committed_id_count;
    /* Non-NULL when the cluster agreed on a (new) keyspace table: every engine and the
     * node's routing follow it. */
    const struct keyspace *keyspaces;
    uint32_t keyspace_count;
    int fatal; /* non-zero: stop the process; fatal_text says why */
    const char *fatal_text;
};

/* Every engine's state begins with this; the node reaches the engine only through ops. */
struct engine {
    const struct engine_ops *ops;
};

struct engine_ops {
    const char *name; /* "local", "cp" */
    enum engine_id id;
    enum engine_watch watch;
    /* The node may hand it a connection's pipelined data commands as one request (a list
     * without EXEC), rather than one at a time: for an engine whose replies wait (on Raft)
     * that is one round for them all, and a read after a write sees it. */
    bool pipelines;
    /* Opens the engine over its view of the disk (kept; outlives the engine). */
    int (*open)(const struct engine_config *config, struct disk *disk, uint64_t now_ms,
                struct engine **out, struct errmsg *msg);
    void (*free)(struct engine *engine);
    /* Runs or starts a request; a reply given now goes into out (answer->pending false).
     * Replies to other requests given meanwhile are in answer->replies. */
    void (*submit)(struct engine *engine, const struct engine_request *req, struct buf *out,
                   struct engine_answer *answer);
    void (*step)(struct engine *engine, const struct engine_event *ev, struct engine_effects *out);
    /* Appends the engine's INFO section lines for section ("persistence", "replication",
     * "keyspace"); nothing for a section it has none of. */
    void (*info)(struct engine *engine, const char *section, struct buf *out);
    /* Keys and memory of its db, for INFO and DBSIZE-like questions. */
    uint64_t (*key_count)(struct engine *engine);
    uint64_t (*memory_bytes)(struct engine *engine);
    uint64_t (*last_save_ms)(struct engine *engine);
    /* The index a read served here observes now (WATCH bookkeeping); 0 if none. */
    uint64_t (*observed_index)(struct engine *engine);
    /* Whether its data directory held a cluster's state at open (a term, a log or a
     * snapshot); NULL for an engine that keeps none. */
    bool (*member_before)(struct engine *engine);
    /* When the engine wants its next TICK, in the monotonic clock its events carry. */
    uint64_t (*wake_at)(struct engine *engine);
    /* Group commit: a reply answered now may be sent once durable_lsn() reaches the
     * release_lsn() of that moment (both 0 for an engine that answers only what is
     * durable). */
    uint64_t (*release_lsn)(struct engine *engine);
    uint64_t (*durable_lsn)(struct engine *engine);
    /* The cluster agreed on a keyspace table (another engine's effects said so): this
     * engine routes and configures keys by it from now on. NULL for an engine that keeps
     * none (the table is borrowed for the call). */
    void (*keyspaces)(struct engine *engine, const struct keyspace *table, uint32_t count);
    /* The cluster's members changed (another engine's FLUSH effects said so; ids borrowed
     * for the call, this node included): an engine that places keys on members follows
     * them. NULL for an engine that does not. */
    void (*members)(struct engine *engine, const uint32_t *ids, uint32_t count);
};

#endif
