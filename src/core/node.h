/*
 * A capkv node's core: a deterministic state machine. Events come in (a client connected,
 * sent bytes or went away; a tick with the time; the log was synced); effects go out
 * (which clients have output to send or must be closed, which file to sync, when to tick
 * next). The core does no I/O of its own: it reaches its files only through the injected
 * struct disk, never reads a clock and never prints (lines go to the injected tracer).
 *
 * Durability: every write command's ops become one WAL record. With fsync = always a reply
 * is released only when a sync covers the last record it could have observed (so no
 * client, the writer or a reader, ever sees data a crash could take back); one sync covers
 * every record appended meanwhile (group commit). With everysec/never, replies are
 * released once their record is written to the file.
 *
 * Events are handled in batches: any number of events, then NODE_EVENT_FLUSH, which
 * writes the log once for the whole batch (and asks for at most one sync) and is the only
 * step that returns clients to write to or close; other steps return only wake_at_ms and
 * fatal. A shell sends FLUSH once per turn of its event loop; the simulator after each
 * event. Effects must be carried out in this order: (1) send each listed client's released
 * output, (2) close the listed clients after that output, (3) start the sync if asked and
 * report it with NODE_EVENT_SYNCED, (4) tick at wake_at_ms.
 */
#ifndef CAPKV_CORE_NODE_H
#define CAPKV_CORE_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "engine/engine.h"
#include "engine/keyspace.h"
#include "proto/resp.h"
#include "storage/disk.h"

enum node_fsync { NODE_FSYNC_ALWAYS, NODE_FSYNC_EVERYSEC, NODE_FSYNC_NEVER };

/* What the shell knows about its process, for INFO (the core cannot ask the OS). */
struct node_host_stats {
    uint64_t rss_bytes;
    uint64_t cpu_user_us;
    uint64_t cpu_sys_us;
    /* The shell's peer links (0 alone): payloads sent, dropped for a link that is down or
     * a queue that is full, refused over the frame limit, received; links closed for bad
     * frames. */
    uint64_t peer_sent;
    uint64_t peer_dropped_down;
    uint64_t peer_dropped_full;
    uint64_t peer_dropped_too_big;
    uint64_t peer_received;
    uint64_t peer_links_closed_bad;
    /* Steps of the core (one event and its effects) that held the loop past the shell's
     * slow-step mark, and the longest one, in ms. */
    uint64_t slow_steps;
    uint64_t slowest_step_ms;
};

typedef void node_host_stats_fn(void *ctx, struct node_host_stats *out);
typedef void node_trace_fn(void *ctx, const char *line);

struct node_config {
    uint32_t id;
    enum node_fsync fsync;
    const char *requirepass; /* NULL or "" for none; copied */
    struct resp_limits limits;
    uint64_t output_bytes_max;   /* a client whose unsent replies exceed this is closed */
    uint64_t query_bytes_max;    /* most unparsed input kept for one client */
    uint64_t snapshot_log_bytes; /* start a snapshot when the log grew by this much */
    uint64_t wal_segment_bytes;
    uint64_t hash_seed;
    uint32_t clients_max;
    /* Shown by INFO / CONFIG GET only; copied. */
    const char *listen;
    const char *dir;
    uint64_t pid;
    node_host_stats_fn *host_stats; /* may be NULL */
    void *host_ctx;
    node_trace_fn *trace; /* may be NULL */
    void *trace_ctx;
    /* Cluster: with peer_count == 0 the node runs alone (its own log, no Raft). Otherwise
     * peers lists every voter, this node included, and CP data goes through Raft. */
    uint32_t peer_count;
    struct node_peer peers[NODE_PEERS_MAX];
    uint64_t election_timeout_ms_min;
    uint64_t election_timeout_ms_max;
    uint64_t heartbeat_ms;
    uint64_t request_timeout_ms;      /* a write not committed by then answers -TIMEOUT */
    uint64_t session_wait_ms;         /* a resumed session's read waits this long; 0: 1000 */
    uint64_t ap_tombstone_ms;         /* AP deletes are collected this old; 0: 3 h */
    uint32_t cluster_id;              /* in session tokens; 0: derived from peers */
    uint64_t snapshot_entries;        /* cluster: entries between two snapshots; 0: 100000 */
    uint32_t snapshot_scans_per_step; /* cluster: db scans (about 10 keys each) a snapshot
                                       * makes per slice (one per 2 ms); 0: 50 (tests and
                                       * the simulator make it small: writes land in the
                                       * middle of one) */
    uint32_t snapshot_chunk_bytes;    /* cluster: InstallSnapshot chunk; 0: 256 KiB */
    uint64_t seed;                    /* randomized election timeouts */
    bool enable_faults;               /* accept FAULT commands */
    bool join; /* a new node for a running cluster: no configuration until CLUSTER ADD */
    uint32_t keyspace_count; /* 0: one keyspace "default" matching "*" */
    /* The engine that serves mode = ap keyspaces; NULL: the AP engine (src/ap). Tests plug
     * a stand-in here. */
    const struct engine_ops *ap_engine;
    struct keyspace keyspaces[KEYSPACES_MAX];
};

#define NODE_OUTPUT_BYTES_MAX_DEFAULT (256ull * 1024 * 1024)
#define NODE_QUERY_BYTES_MAX_DEFAULT (1024ull * 1024 * 1024)
#define NODE_SNAPSHOT_LOG_BYTES_DEFAULT (256ull * 1024 * 1024)
#define NODE_CLIENTS_MAX_DEFAULT 10000u
#define NODE_REQUIREPASS_BYTES_MAX 512

/* Fills config with defaults (fsync always, no password, Redis's limits). */
void node_config_default(struct node_config *config);

struct node;

/* Recovers the data from disk (snapshot, then the log) and returns a ready node.
 * disk is kept and must outlive the node. On ERR_CORRUPT msg names file and offset. */
int node_new(const struct node_config *config, struct disk *disk, uint64_t now_ms,
             struct node **out, struct errmsg *msg);
/* No sync asked for by an effect may still be running (report it with SYNCED first). */
void node_free(struct node *node);

enum node_event_kind {
    NODE_EVENT_CLIENT_OPEN,   /* client_id (new, unique), peer_addr */
    NODE_EVENT_CLIENT_INPUT,  /* client_id, data, bytes */
    NODE_EVENT_CLIENT_CLOSED, /* client_id: the connection is gone */
    NODE_EVENT_TICK,
    NODE_EVENT_SYNCED,       /* lsn: the sync asked for by an effect finished */
    NODE_EVENT_FLUSH,        /* end of a batch of events: write the log, release replies */
    NODE_EVENT_PEER_MESSAGE, /* peer_id, data, bytes: one frame's payload from a peer */
};

struct node_event {
    enum node_event_kind kind;
    uint64_t now_ms;  /* wall clock, Unix milliseconds (expiry compares with it) */
    uint64_t mono_ms; /* monotonic milliseconds, for Raft's timeouts; 0: use now_ms */
    uint32_t peer_id; /* PEER_MESSAGE: the sender, as the shell's link handshake named it */
    uint64_t client_id;
    const uint8_t *data; /* borrowed for the call */
    size_t bytes;
    const char *peer_addr; /* borrowed; copied */
    uint64_t lsn;
    int sync_error; /* non-zero: the sync failed; the node stops accepting writes */
};

struct node_effects {
    /* FLUSH only: clients with output to send; valid until the next step. */
    const uint64_t *write_clients;
    size_t write_count;
    const uint64_t *close_clients; /* to close once their output is sent */
    size_t close_count;
    const struct node_peer_send *peer_sends; /* FLUSH only: payloads to send, in order */
    size_t peer_send_count;
    struct disk_file *sync_file; /* non-NULL: run disk->sync on it, then SYNCED(sync_lsn) */
    uint64_t sync_lsn;
    /* The engine's hint: a short sync (a follower's log) that may block the loop, since
     * no client's reply waits on this node's other work meanwhile (fsync-thread = auto). */
    bool sync_inline;
    uint64_t wake_at_ms; /* send a TICK at or after this time */
    /* FLUSH only, non-NULL when the cluster's members changed: link to exactly these
     * (this node included; addresses from the replicated configuration). */
    const struct node_peer *members;
    size_t member_count;
    int fatal; /* non-zero: stop the process; node_fatal_text says why */
};

void node_step(struct node *node, const struct node_event *event, struct node_effects *out);

/* The client's released output: borrowed, valid until the next node call. */
const uint8_t *node_client_output(struct node *node, uint64_t client_id, size_t *bytes);
/* The shell sent `bytes` of it. */
void node_client_sent(struct node *node, uint64_t client_id, size_t bytes);
const char *node_fatal_text(const struct node *node);
/* The node's engine of mode cp (engine.h): the CP engine in a cluster (cp/cp.h's views
 * look into it), the single-node engine alone. Returns borrowed, valid while the node
 * lives. For the simulator and tests. */
struct engine *node_engine(const struct node *node);
/* The node's engine of mode ap (src/ap), NULL when it has none open. */
struct engine *node_engine_ap(const struct node *node);
/* Whether a client should stop being read (it has too much unsent output). */
bool node_client_backpressured(const struct node *node, uint64_t client_id);

#endif
