/* State shared by the files of src/cp, the CP engine; nothing outside src/cp includes it
 * (the rest of the program sees cp/cp.h). */
#ifndef CAPKV_CP_INTERNAL_H
#define CAPKV_CP_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/prng.h"
#include "cmd/cmd.h"
#include "cp/cp.h"
#include "data/db.h"
#include "engine/cmdlist.h"
#include "engine/engine.h"
#include "proto/errcode.h"
#include "proto/resp.h"
#include "raft/raft.h"
#include "storage/raftstore.h"

#define CP_SNAPSHOT_ENTRIES                                                                        \
    100000 /* applied entries between two snapshots; a tenth of                                    \
            * that is kept before one for followers a bit behind */
/* A snapshot is due after this much log at most (unless snapshot-log-bytes says else). */
#define CP_SNAPSHOT_LOG_BYTES (256ull << 20)
/* ...and after a quarter of the last snapshot's size, or at least this much: Raft holds
 * every entry since the snapshot in memory, so this bounds the memory a small db's log
 * takes beside it. */
#define CP_SNAPSHOT_LOG_BYTES_MIN (16ull << 20)
#define CP_SWEEP_MS 100                /* leader: how often expired keys are swept */
#define CP_COLLECT_SLICE_MS 5          /* at most one step of old files per this many ms */
#define CP_LOG_RELEASE_BLOCKS 8        /* compacted log blocks (1 MiB) unmapped per loop turn */
#define CP_EXPIRE_CHECKS_PER_SWEEP 200 /* keys an applied sweep looks at (Redis's per cycle) */
/* Leader mode: how long a deposed leader keeps an early-answered write to learn its fate. */
#define CP_ACKED_KEEP_MS 60000
#define CP_WAITS_MAX 100000 /* requests waiting on Raft at once */
/* WATCH: slots of the table of changed keys (8 bytes each); keys share a slot by hash, so
 * an unrelated write aborts a watch with odds of about writes-meanwhile / slots. */
#define CP_WATCH_SLOTS (1u << 17)

/* Raft entry data: kind:u8 ts:u64 (the leader's wall clock), then for COMMANDS a command
 * list (cp_req.c). */
enum cp_entry_kind {
    CP_ENTRY_COMMANDS = 1,
    CP_ENTRY_SWEEP = 2,
    CP_ENTRY_KEYSPACES = 3, /* the agreed keyspace table (cp_keyspaces.c) */
};
#define CP_BLOB_KEYSPACES 0xFFFFFFFFu /* a snapshot blob's leading keyspace table */

enum cp_wait_kind {
    CP_WAIT_PROPOSAL = 1,
    CP_WAIT_READ,
    CP_WAIT_FORWARD,
    CP_WAIT_REPLICAS, /* WAIT n timeout: index = the write, term = n replicas wanted */
    CP_WAIT_SAVE,     /* SAVE: answered when the snapshot is on disk */
    CP_WAIT_ALL,      /* replication = all: applied, reply in request, until every
                       * voter holds index */
};

/* Who asked: one of this node's requests (by the node's id), or a peer that forwarded its
 * client's request. */
struct cp_origin {
    uint64_t request_id; /* the node's request; 0: remote, or its client went away */
    uint32_t peer;       /* remote: the peer, and its own request id */
    uint64_t request;
    int proto;
    struct buf *out; /* local: where its reply is built (the submit's, or the wait's) */
};

/* A request waiting on Raft: a proposed write, a ReadIndex read, or a request forwarded
 * to the leader. */
struct cp_wait {
    uint64_t id; /* READ: the ReadIndex ctx; FORWARD: the request id */
    enum cp_wait_kind kind;
    struct cp_origin origin;
    uint64_t index; /* PROPOSAL: the entry; READ: the read index once known */
    uint64_t term;
    bool read_ready;
    bool writes;           /* the request changes data (its timeout means "unknown") */
    uint32_t forwarded_to; /* FORWARD: the leader it went to */
    uint64_t deadline_ms;  /* monotonic */
    struct buf request;    /* READ: the command list to run once the index is applied;
                            * PROPOSAL in leader mode, ALL: the reply to give */
    uint64_t min_applied;  /* READ: also wait until applied reaches this (leader mode) */
    uint8_t repl;          /* PROPOSAL: enum keyspace_replication of the write */
    bool spec_ready;       /* PROPOSAL: request holds the early (leader-mode) reply */
    bool spec_acked;       /* PROPOSAL: answered early; apply only checks the reply */
    struct buf reply;      /* a local origin's reply, given when the wait is answered */
    uint64_t observed;     /* FORWARD: the index the leader's reply reflects */
    bool session;          /* READ: a resumed session's local read waiting for index */
    struct cp_wait *next;  /* every wait, newest first (cp->waits) */
    struct cp_wait *prev;
    struct cp_wait *id_next;    /* the chain of its id's bucket (cp->wait_ids) */
    struct cp_wait *index_next; /* PROPOSAL: the chain of its index's bucket */
    bool indexed;               /* in cp->wait_indexes */
};

/* Leader-mode writes (cp_repl.c). */
struct cp_spec {
    struct db *overlay;     /* leader-mode keys as the entries in flight leave them */
    struct buf inflight;    /* records of entries in flight, in index order */
    uint64_t term;          /* the leader term the overlay belongs to */
    uint64_t blocked_until; /* entries up to here did not run on the overlay */
    uint64_t acked_index;   /* highest entry answered early: reads wait for its apply */
    uint32_t awaiting;      /* waits holding an early reply not yet given */
    uint64_t acked_early;   /* stats: writes answered after the leader's fsync alone */
    uint64_t acked_lost;    /* stats: of those, seen replaced by another leader's entry */
    uint64_t mismatches;    /* stats: early reply differed from the applied one */
    struct buf check;       /* scratch: replies at apply, compared with the early ones */
    struct buf copy;        /* scratch: a key copied into the overlay */
    struct buf keys;        /* scratch: a proposal's leader-mode keys */
};

/* What a command list asks of replication (cp_list_mode). */
struct cp_list_mode {
    enum keyspace_replication mode; /* the strongest of its written keys' keyspaces */
    bool writes;
    bool any_key;
    bool keyless;     /* a write naming no keys (FLUSHALL) */
    bool leader_keys; /* names a leader-mode key (or writes keyless while leader mode exists) */
    bool speculable;  /* writes, and names only leader-mode keys: it may run on the overlay */
};

struct cp_stats {
    uint64_t syncs;
    uint64_t expired_keys; /* removed by applied sweeps */
    uint64_t disk_full_refusals;
    uint64_t snapshots;             /* taken (streamed) by this node */
    uint64_t snapshot_last_bytes;   /* the last one's blob */
    uint64_t snapshot_last_ms;      /* from its start to its commit */
    uint64_t snapshot_ops_streamed; /* applied entries' ops written into scans under way */
    uint64_t role_changes;          /* raft role or term changes seen by this node */
    uint64_t terms_led;             /* terms in which this node became the leader */
    uint64_t xfer_started;          /* snapshot transfers (cp_xfer.c) this leader began */
    uint64_t xfer_done;             /* ...that the follower installed */
    uint64_t xfer_resumed;          /* ...that went on from bytes the follower held */
    uint64_t xfer_chunks_sent;
    uint64_t xfer_bytes_sent;
    uint64_t xfer_resends; /* windows sent again (lost chunks or acks) */
    uint64_t xfer_bytes_received;
    uint64_t xfer_installed;  /* received snapshots this node installed */
    uint64_t xfer_bad_chunks; /* CRC mismatches */
    uint64_t xfer_bad_files;  /* received files that failed the whole-file check */
};

/* The leader sending a follower its snapshot's data file (cp_xfer.c). */
struct cp_xfer {
    uint32_t to;
    uint64_t index; /* the snapshot sent: its index, term, configuration */
    uint64_t term;
    struct raft_config config;
    uint64_t id; /* its data file, pinned while sent */
    struct disk_file *file;
    uint64_t total;       /* the file's bytes */
    uint64_t sent;        /* next offset to send */
    uint64_t acked;       /* the follower holds this much */
    uint64_t resend_mark; /* gap acks for chunks before this were sent before a rewind */
    bool offered;         /* the follower answered the offer */
    bool install_sent;
    uint64_t start_ms, offer_ms, send_ms, ack_ms, install_ms; /* monotonic */
};

/* The follower receiving one (cp_xfer.c). */
struct cp_xrecv {
    bool active; /* a file is being received (raftstore_recv_*) */
    uint32_t from;
    uint64_t index, term, id, total; /* what the offer named (id, total 0: not yet known) */
    uint64_t have;                   /* bytes written */
    uint64_t acked;                  /* told the leader */
    uint64_t synced;
    uint64_t syncing_bytes;
    bool syncing; /* the engine's sync in flight is this file's */
    bool last_sync_data;
    bool ready; /* all in, synced, checked */
};

/* A snapshot being taken (cp_snap.c). */
struct cp_snap_job {
    bool active;
    bool scan_done;         /* sealed: index, term, config set; the data file waits for its sync */
    bool syncing;           /* a sync of the data file is the one in flight */
    bool sync_final;        /* ...the one after the seal, which commits */
    bool committing;        /* the data file is durable: the commit's steps run */
    bool last_sync_data;    /* the engine's last sync was the data file's: the log goes next */
    uint64_t synced_bytes;  /* of the data file, durable */
    uint64_t syncing_bytes; /* covered by the sync in flight */
    uint64_t cursor;
    uint64_t start_applied;
    uint64_t start_mono_ms;
    uint64_t sealed_mono_ms;
    uint64_t next_slice_ms; /* the scan's next slice, not before (monotonic) */
    uint64_t keys;
    uint64_t scanned_bytes; /* of the scan's records (CP_SNAP_SLICE_BYTES per slice) */
    struct buf piece;       /* records not yet handed to the stream */
    struct buf del;         /* scratch: one delete's ops */
    uint64_t index;
    uint64_t term;
    uint64_t applied_bytes; /* cp->applied_bytes at index */
    struct raft_config config;
};

/* The CP engine. base comes first: engine functions get &cp->base. */
struct cp {
    struct engine base;
    struct engine_config config;
    bool member_before; /* the data directory held a term, a log or a snapshot at open */
    struct disk *disk;
    struct db *db;
    uint64_t now_ms;    /* this node's wall clock as the node gives it (faults applied) */
    struct buf ops;     /* the ops of the commands being run (op.h) */
    struct buf scratch; /* replies nobody will read */
    struct buf list;    /* a submitted command as a command list */
    struct cp_stats stats;
    char disk_full_text[ERRMSG_BYTES_MAX];
    int fatal;
    char fatal_text[ERRMSG_BYTES_MAX];
    uint64_t last_save_ms;
    /* Replies given since the engine's last call: id:u64 token:u64 len:u32 bytes, and the
     * struct engine_reply[] over them handed out in the effects. */
    struct buf replies;
    struct buf reply_list;
    /* The request being submitted: its reply goes straight to submit_out if it is given
     * before submit returns. */
    uint64_t submit_id;
    struct buf *submit_out;
    bool submit_waits;     /* a wait was made for it */
    bool submit_answered;  /* and answered before submit returned */
    uint64_t submit_token; /* its write token then */
    uint64_t submit_observed; /* and the index it reflects */
    uint64_t submit_session;  /* its session index (engine_request.session_index) */
    struct raft *raft;
    struct raftstore *store;
    uint64_t mono_ms; /* the node's monotonic time, frozen while FAULT PAUSE lasts */
    struct buf held;  /* FIFO of effects waiting for their persist: kind:u8 lsn:u64 len:u32 */
    size_t held_head;
    struct buf peer_out;   /* this batch's payloads: to:u32 len:u32 bytes */
    struct buf peer_sends; /* struct node_peer_send[] over peer_out, built at FLUSH */
    struct buf fwd_reply;  /* reply being built for a remote origin */
    struct buf encode;     /* scratch for encoding */
    struct buf args;       /* scratch struct resp_arg[] */
    struct cp_wait *waits;
    uint32_t wait_count;
    uint64_t next_wait_id;
    /* Waits found in O(1): by id (READ's ctx, FORWARD's request) and, for proposals, by
     * entry index; chained hash tables of wait_buckets (a power of two, >= wait_count). */
    struct cp_wait **wait_ids;
    struct cp_wait **wait_indexes;
    size_t wait_buckets;
    uint32_t replica_waits;   /* REPLICAS and ALL waits (cp_check_replica_waits) */
    uint32_t reads_ready;     /* READ waits with read_ready (cp_after_apply) */
    uint64_t deadline_min_ms; /* no wait's deadline is earlier (may be stale early) */
    uint64_t applied;
    uint64_t snapshot_index;
    /* Entry data applied since recovery or the last restore, and its value at
     * snapshot_index (0 then): the log Raft holds beyond the snapshot (cp_snap_due). */
    uint64_t applied_bytes;
    uint64_t snapshot_applied_bytes;
    uint64_t last_sweep_ms;
    uint64_t last_entry_ms; /* the newest time stamped on an entry this node proposed */
    bool sync_in_flight;
    bool dir_syncing;         /* the sync in flight is the directory's (raftstore_collect) */
    bool dir_sync_last;       /* the last sync begun was the directory's: the log's turn */
    uint64_t next_collect_ms; /* the next step of raftstore_collect, at the earliest */
    /* An InstallSnapshot (its raft payload, owned) that arrived while sync_in_flight, for
     * cp_synced to hand to raft; empty: none. At most one, the newest (its size bounded by
     * RAFT_SNAPSHOT_BYTES_MAX, which decoding checked). */
    struct buf install_held;
    bool save_requested;     /* SAVE / BGSAVE: snapshot at the next chance */
    bool proposals_deferred; /* proposals appended this batch, not yet sent */
    bool step_reserved;      /* the next persist was reserved by cp_propose */
    uint64_t raft_wake_ms;   /* when raft asked to be ticked next (monotonic) */
    uint64_t sync_token;
    uint64_t persisted_reported;
    struct cp_watch *watch; /* WATCH: the entry that last changed each key */
    uint64_t applying;      /* the entry cp_apply runs (its ops go to watch), or 0 */
    struct cp_spec spec;
    uint64_t keyspaces_index; /* entry of the agreed keyspace table; 0: none yet */
    /* The newest table known committed (applied, or in a snapshot) and its index: what a
     * node goes back to when the table it took from its recovered log is truncated away. */
    struct buf keyspaces_committed;
    uint64_t keyspaces_committed_index;
    uint64_t keyspaces_proposed_term;             /* term in which this leader proposed its table */
    bool keyspaces_changed;                       /* an agreed table was applied: tell the node */
    struct keyspace ini_keyspaces[KEYSPACES_MAX]; /* this node's own config */
    uint32_t ini_keyspace_count;
    struct raft_config members_committed;     /* the newest configuration seen committed */
    struct node_peer members[NODE_PEERS_MAX]; /* the FLUSH effect `members` */
    size_t member_count;
    uint32_t committed_ids[NODE_PEERS_MAX]; /* the FLUSH effect `committed_ids` */
    uint32_t committed_id_count;
    struct cp_snap_job snap;
    struct cp_xfer xfers[RAFT_NODES_MAX];
    size_t xfer_count;
    bool xfer_retain_lifted; /* the log outgrew what raft keeps for a transfer */
    struct cp_xrecv xrecv;
    struct raft_entry decoded[RAFT_MSG_ENTRIES_MAX];
};

/* cp.c: Raft, the store, applying entries, snapshots */
int cp_open(struct cp *cp, struct errmsg *msg);
void cp_close(struct cp *cp);
void cp_tick(struct cp *cp);
/* End of a batch: send deferred proposals, write the log, ask for a sync, build sends. */
void cp_flush(struct cp *cp, struct engine_effects *out);
void cp_synced(struct cp *cp, int error);
void cp_peer_message(struct cp *cp, uint32_t from, const uint8_t *data, size_t bytes);
uint64_t cp_wake_at(const struct cp *cp);
void cp_info(struct cp *cp, struct buf *out);
void cp_trace(const struct cp *cp, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Stops the node (effects' fatal): what failed, and the detail. */
void cp_fatal(struct cp *cp, int code, const char *what, const char *text);
uint64_t cp_wall_ms(const struct cp *cp); /* this node's clock (FAULT CLOCK skews) */
uint64_t cp_entry_ms(struct cp *cp);      /* an entry's stamp: never goes back */
/* raft_step, then the caller's contract: persist now, hold messages and applies. */
int cp_raft_step(struct cp *cp, struct raft_event *ev, struct raft_effects *e);
void cp_sends_done(struct cp *cp);
void cp_send(struct cp *cp, uint32_t to, const uint8_t *data, size_t bytes);
int cp_propose(struct cp *cp, const uint8_t *data, size_t bytes, uint64_t *index, uint64_t *term);
void cp_save_command(struct cp *cp, struct cp_origin *o, bool background);
/* A snapshot at index was committed (rc 0), or one failed: SAVE's waits covered hear. */
void cp_save_done(struct cp *cp, int rc, uint64_t index);

/* cp_snap.c: snapshots taken in steps while the node goes on */
void cp_snap_init(struct cp *cp);
void cp_snap_deinit(struct cp *cp);
void cp_snap_progress(struct cp *cp); /* after each batch and tick: start or scan */
/* The ops an applied entry's commands left (borrowed), and a key a sweep expired. */
void cp_snap_ops(struct cp *cp, const uint8_t *ops, size_t bytes);
void cp_snap_deleted(struct cp *cp, const uint8_t *key, size_t key_bytes);
void cp_snap_restored(struct cp *cp); /* the state was replaced: the scan is void */
/* The engine's sync, for the data file (then true, *file borrowed): the sealed one, or
 * CP_SNAP_SYNC_BYTES more of it while the scan goes on, taking turns with the log's
 * (log_waiting: the log has records to sync). */
bool cp_snap_sync_begin(struct cp *cp, bool log_waiting, struct disk_file **file);
void cp_snap_log_synced(struct cp *cp); /* the log's sync was handed out */
bool cp_snap_syncing(const struct cp *cp);
int cp_snap_synced(struct cp *cp, int error); /* the final one commits; 0 or why not */
uint64_t cp_snap_wake_at(const struct cp *cp);

/* cp_xfer.c: InstallSnapshot in chunks */
void cp_xfer_open(struct cp *cp);  /* after recovery: a partial file a restart left */
void cp_xfer_close(struct cp *cp); /* before the store closes */
void cp_xfer_message(struct cp *cp, uint32_t from, uint8_t kind, const uint8_t *p, size_t bytes);
void cp_xfer_want(struct cp *cp, const struct raft_message *m); /* raft's InstallSnapshot */
void cp_xfer_pump(struct cp *cp);                               /* on ticks */
/* The engine's sync, for the file being received (true, *file borrowed), in turns with
 * the log's; and its end. */
bool cp_xfer_sync_begin(struct cp *cp, bool log_waiting, struct disk_file **file);
void cp_xfer_log_synced(struct cp *cp);
bool cp_xfer_syncing(const struct cp *cp);
void cp_xfer_synced(struct cp *cp, int error);
/* A held INSTALL (raft message) after the sync that held it: steps it if it still fits. */
void cp_xfer_release(struct cp *cp, const struct raft_message *m);
/* Raft restores (effects.restore): the received file becomes the store's snapshot. */
int cp_xfer_restore(struct cp *cp, const struct raft_snapshot_meta *meta, struct errmsg *msg);
void cp_xfer_info(const struct cp *cp, struct buf *out);

/* cp_req.c: requests (routing by role and read level, waits, forwarding) */
/* A node's request (engine.h's submit). */
void cp_submit(struct cp *cp, const struct engine_request *req, struct buf *out,
               struct engine_answer *answer);
/* The node's client of request id went away: its reply has nowhere to go. */
void cp_request_gone(struct cp *cp, uint64_t id);
/* The replies given since the last call, for the effects (built over cp->replies). */
void cp_take_replies(struct cp *cp, const struct engine_reply **out, size_t *count);
void cp_run_commands(struct cp *cp, struct buf *out, int proto, const uint8_t *cmds, size_t bytes,
                     bool readonly);
struct cp_wait *cp_wait_start(struct cp *cp, enum cp_wait_kind kind, const struct cp_origin *o);
void cp_wait_finish(struct cp *cp, struct cp_wait *w);
/* Sets a proposal's entry index (found again by cp_wait_proposal). */
void cp_wait_index(struct cp *cp, struct cp_wait *w, uint64_t index);
/* The oldest PROPOSAL wait for entry index, or NULL. */
struct cp_wait *cp_wait_proposal(const struct cp *cp, uint64_t index);
/* The wait with this id and kind, or NULL. */
struct cp_wait *cp_wait_find(const struct cp *cp, uint64_t id, enum cp_wait_kind kind);
void cp_waits_deinit(struct cp *cp);
struct buf *cp_origin_out(struct cp *cp, struct cp_origin *o);
void cp_after_apply(struct cp *cp);
void cp_read_ready(struct cp *cp, uint64_t ctx, uint64_t index, bool failed);
void cp_forward_reply(struct cp *cp, const uint8_t *data, size_t bytes);
void cp_forward_request(struct cp *cp, uint32_t from, const uint8_t *data, size_t bytes);
void cp_wait_detach(struct cp *cp, struct cp_wait *w);

/* cp_cmd.c: CLUSTER, WAIT (engine commands) */
void cp_command(struct cp *cp, struct cp_origin *o, uint32_t argc, const struct resp_arg *argv);
void cp_wait_command(struct cp *cp, struct cp_origin *o, uint64_t last_write, uint32_t argc,
                     const struct resp_arg *argv);
/* WAIT: answers the waits whose replica count is reached (or, at_deadline, all due). */
void cp_check_replica_waits(struct cp *cp);
bool cp_cmd_on_leader(struct cp *cp, struct cp_origin *o, const char *what);

/* cp_repl.c: replication modes (majority, all, leader) */
bool cp_list_mode(struct cp *cp, const uint8_t *list, size_t bytes, struct cp_list_mode *out,
                  struct buf *keys);
bool cp_spec_enabled(const struct cp *cp);
bool cp_all_unreachable(struct cp *cp, char *text, size_t text_bytes);
bool cp_all_hold(struct cp *cp, uint64_t index);
void cp_spec_init(struct cp_spec *s);
void cp_spec_deinit(struct cp_spec *s);
bool cp_spec_proposed(struct cp *cp, uint64_t index, uint64_t ts, int proto, const uint8_t *list,
                      size_t bytes, const struct cp_list_mode *lm, const struct buf *keys,
                      struct buf *out);
void cp_spec_applied(struct cp *cp, uint64_t index);
void cp_spec_release(struct cp *cp);
void cp_repl_info(struct cp *cp, struct buf *out);

/* cp_keyspaces.c: keyspaces agreed as cluster metadata */
void cp_keyspaces_apply(struct cp *cp, const uint8_t *p, size_t bytes, uint64_t index);
void cp_keyspaces_apply_committed(struct cp *cp, const uint8_t *p, size_t bytes, uint64_t index);
void cp_keyspaces_truncated(struct cp *cp, uint64_t from);
int cp_keyspaces_propose(struct cp *cp, uint64_t *index);
void cp_keyspaces_tick(struct cp *cp);
void cp_keyspaces_recovered(struct cp *cp, const struct raft_entry *entries, size_t count);
void cp_keyspaces_command(struct cp *cp, struct cp_origin *o, uint32_t argc,
                          const struct resp_arg *argv);

/* cp_members.c: CLUSTER ADD | PROMOTE | REMOVE | MEMBERS and the shell's address book */
void cp_members_effect(struct cp *cp, struct engine_effects *out);
void cp_members_command(struct cp *cp, struct cp_origin *o, uint32_t argc,
                        const struct resp_arg *argv);

/* cp_watch.c: WATCH on replicated data */
enum cp_watch_verdict { CP_WATCH_PASS, CP_WATCH_ABORT, CP_WATCH_MALFORMED };
struct cp_watch *cp_watch_new(uint64_t hash_seed);
void cp_watch_free(struct cp_watch *w);
/* Forgets every key: all count as changed at floor (boot, snapshot restore). */
void cp_watch_reset(struct cp_watch *w, uint64_t floor);
/* Entry index changed what ops (op.h, valid) name. ops borrowed. */
void cp_watch_note_ops(struct cp_watch *w, uint64_t index, const uint8_t *ops, size_t bytes);
/* A db_expired_fn for an applied sweep; ctx is the engine. */
void cp_watch_expired(void *ctx, const uint8_t *key, size_t key_bytes);
/* The leader proposed entry data (borrowed) at index. */
void cp_watch_proposed(struct cp *cp, const uint8_t *data, size_t bytes, uint64_t index);
/* Leader: whether a CMDLIST_IF list may be proposed; on PASS, *list_bytes is the
 * length of the list without its conditions. list borrowed. */
enum cp_watch_verdict cp_watch_check(struct cp *cp, const uint8_t *list, size_t bytes,
                                     size_t *list_bytes);

#endif
