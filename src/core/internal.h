/* State shared by the files of src/core; nothing outside the core includes this. */
#ifndef CAPKV_CORE_INTERNAL_H
#define CAPKV_CORE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "cmd/cmd.h"
#include "core/node.h"
#include "data/db.h"
#include "engine/engine.h"
#include "proto/errcode.h"
#include "proto/resp.h"
#include "base/prng.h"
#include "raft/raft.h"
#include "storage/raftstore.h"
#include "storage/snapshot.h"
#include "storage/wal.h"

#define NODE_CLIENT_NAME_BYTES_MAX 128
#define NODE_CLIENT_ADDR_BYTES_MAX 64
#define NODE_LIB_FIELD_BYTES_MAX 64
/* Held reply ranges per client. When full, the newest range absorbs the next reply and
 * waits for its (later) lsn: a release may come a sync later, never early. */
#define NODE_HOLDS_MAX 16
#define NODE_TICK_MS 100 /* Redis's hz 10 */
#define NODE_EXPIRE_CHECKS_PER_TICK 200
#define NODE_SNAPSHOT_BUCKETS_PER_STEP 64
#define NODE_WATCH_KEYS_MAX 10000
#define NODE_MULTI_COMMANDS_MAX 100000
#define NODE_BACKPRESSURE_BYTES (4ull * 1024 * 1024)
#define NODE_WAL_RESERVE_SLACK 4096

#define CLUSTER_SNAPSHOT_ENTRIES                                                                   \
    100000                   /* applied entries between two snapshots; a tenth of                  \
                              * that is kept before one for followers a bit behind */
#define CLUSTER_SWEEP_MS 100 /* leader: how often expired keys are swept */
/* Leader mode: how long a deposed leader keeps an early-answered write to learn its fate. */
#define CLUSTER_ACKED_KEEP_MS 60000
#define CLUSTER_WAITS_MAX 100000   /* requests waiting on Raft at once */
#define NODE_FAULT_DELAYED_MAX 100000 /* peer payloads held back by FAULT DELAY */
/* WATCH: slots of the table of changed keys (8 bytes each); keys share a slot by hash, so
 * an unrelated write aborts a watch with odds of about writes-meanwhile / slots. */
#define CLUSTER_WATCH_SLOTS (1u << 17)

/* Raft entry data: kind:u8 ts:u64 (the leader's wall clock), then for COMMANDS a command
 * list (cluster_req.c). */
enum cluster_entry_kind {
    CLUSTER_ENTRY_COMMANDS = 1,
    CLUSTER_ENTRY_SWEEP = 2,
    CLUSTER_ENTRY_KEYSPACES = 3, /* the agreed keyspace table (cluster_keyspaces.c) */
};
#define CLUSTER_BLOB_KEYSPACES 0xFFFFFFFFu /* a snapshot blob's leading keyspace table */
/* Command list flags (formats in cluster_req.c). */
#define CLUSTER_LIST_EXEC 1  /* a transaction: reply as one array */
#define CLUSTER_LIST_WATCH 2 /* a WATCH: served as a read, replies the applied index */
#define CLUSTER_LIST_IF 4    /* ends with WATCH conditions: checked by the leader, stripped */

enum cluster_wait_kind {
    CLUSTER_WAIT_PROPOSAL = 1,
    CLUSTER_WAIT_READ,
    CLUSTER_WAIT_FORWARD,
    CLUSTER_WAIT_REPLICAS, /* WAIT n timeout: index = the write, term = n replicas wanted */
    CLUSTER_WAIT_SAVE,     /* SAVE: answered when the snapshot is on disk */
    CLUSTER_WAIT_ALL,      /* replication = all: applied, reply in request, until every
                            * voter holds index */
};

/* Who asked: a local client, or a peer that forwarded its client's request. */
struct cluster_origin {
    uint64_t client_id; /* 0: remote, or a local client that went away */
    uint32_t peer;
    uint64_t request;
    int proto;
    bool watch; /* a local client's WATCH: the reply is its index (cluster_watch_answered) */
};

/* A request waiting on Raft: a proposed write, a ReadIndex read, or a request forwarded
 * to the leader. */
struct cluster_wait {
    uint64_t id; /* READ: the ReadIndex ctx; FORWARD: the request id */
    enum cluster_wait_kind kind;
    struct cluster_origin origin;
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
    struct cluster_wait *next;
};

/* Injected faults (FAULT commands; only with enable_faults), at node level: they apply to
 * every engine's peer traffic and to the clock every engine is given (fault.c). */
struct node_fault {
    uint32_t group_of[NODE_PEERS_MAX + 1]; /* by position in config.peers: partition group */
    bool partitioned;
    bool any; /* some fault is set: sends and receives are filtered */
    uint32_t drop_pct[NODE_PEERS_MAX];
    uint64_t delay_ms[NODE_PEERS_MAX];
    int64_t clock_ms;     /* added to this node's wall clock */
    uint64_t pause_until; /* monotonic: engines get no time and no peer traffic until then */
    struct prng prng;     /* drops */
    struct buf delayed;   /* FAULT DELAY: due:u64 to:u32 len:u32 bytes */
    struct buf released;  /* delayed payloads now due: to:u32 len:u32 bytes, sent at FLUSH */
    struct buf sends;     /* struct node_peer_send[]: the FLUSH's sends after the faults */
};

/* Leader-mode writes (cluster_repl.c). */
struct cluster_spec {
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

/* What a command list asks of replication (cluster_list_mode). */
struct cluster_list_mode {
    enum keyspace_replication mode; /* the strongest of its written keys' keyspaces */
    bool writes;
    bool any_key;
    bool keyless;     /* a write naming no keys (FLUSHALL) */
    bool leader_keys; /* names a leader-mode key (or writes keyless while leader mode exists) */
    bool speculable;  /* writes, and names only leader-mode keys: it may run on the overlay */
};

struct cluster {
    struct raft *raft;
    struct raftstore *store;
    uint64_t mono_ms; /* the node's monotonic time, frozen while FAULT PAUSE lasts */
    struct buf held; /* FIFO of effects waiting for their persist: kind:u8 lsn:u64 len:u32 */
    size_t held_head;
    struct buf peer_out;   /* this batch's payloads: to:u32 len:u32 bytes */
    struct buf peer_sends; /* struct node_peer_send[] over peer_out, built at FLUSH */
    struct buf fwd_reply;  /* reply being built for a remote origin */
    struct buf encode;     /* scratch for encoding */
    struct buf args;       /* scratch struct resp_arg[] */
    struct cluster_wait *waits;
    uint32_t wait_count;
    uint64_t next_wait_id;
    uint64_t applied;
    uint64_t snapshot_index;
    uint64_t last_sweep_ms;
    uint64_t last_entry_ms; /* the newest time stamped on an entry this node proposed */
    bool sync_in_flight;
    bool save_requested;     /* SAVE / BGSAVE: snapshot at the next chance */
    bool proposals_deferred; /* proposals appended this batch, not yet sent */
    bool step_reserved;      /* the next persist was reserved by cluster_propose */
    uint64_t raft_wake_ms;   /* when raft asked to be ticked next (monotonic) */
    uint64_t sync_token;
    uint64_t persisted_reported;
    struct cluster_watch *watch; /* WATCH: the entry that last changed each key */
    uint64_t applying;           /* the entry cluster_apply runs (its ops go to watch), or 0 */
    struct cluster_spec spec;
    uint64_t keyspaces_index;         /* entry of the agreed keyspace table; 0: none yet */
    uint64_t keyspaces_proposed_term; /* term in which this leader proposed its table */
    struct keyspace ini_keyspaces[KEYSPACES_MAX]; /* this node's own config */
    uint32_t ini_keyspace_count;
    struct raft_config members_committed;     /* the newest configuration seen committed */
    struct node_peer members[NODE_PEERS_MAX]; /* the FLUSH effect `members` */
    size_t member_count;
    struct raft_entry decoded[RAFT_MSG_ENTRIES_MAX];
};

/* A range of a client's output that may not be sent before `lsn` is durable. */
struct node_hold {
    uint64_t end; /* absolute output offset */
    uint64_t lsn;
};

struct client {
    uint64_t id;
    char addr[NODE_CLIENT_ADDR_BYTES_MAX];
    char name[NODE_CLIENT_NAME_BYTES_MAX];
    char lib_name[NODE_LIB_FIELD_BYTES_MAX];
    char lib_ver[NODE_LIB_FIELD_BYTES_MAX];
    const char *last_cmd; /* static name of the last command, for CLIENT LIST */
    int proto;
    bool authed;
    bool close_after_output; /* QUIT, protocol error, or a limit: close when sent */
    bool listed_for_write;   /* already in this step's write list */
    bool listed_for_close;
    uint64_t created_ms;
    uint64_t last_active_ms;
    struct resp_parser parser;
    struct buf query;      /* unparsed input that spans reads */
    struct buf out;        /* replies; bytes up to released_end may be sent */
    uint64_t out_sent;     /* bytes of output ever sent: out.data[read_pos] is at this */
    uint64_t released_end; /* absolute */
    struct node_hold holds[NODE_HOLDS_MAX]; /* ring */
    uint32_t hold_head;
    uint32_t hold_count;
    /* MULTI / WATCH */
    bool in_multi;
    bool multi_dirty;       /* a command was refused while queueing: EXECABORT */
    struct buf multi_queue; /* queued commands: argc:u32 (len:u32 bytes)* */
    uint32_t multi_count;
    struct buf watched; /* watched keys: (len:u32 bytes)* */
    uint32_t watch_count;
    uint32_t watch_pending; /* cluster: the last keys of watched, their WATCH unanswered */
    uint64_t watch_index;   /* cluster: the applied index the keys were watched at */
    bool watch_touched;
    struct client *watch_next; /* list of clients with watch_count > 0 */
    struct client *watch_prev;
    struct cluster_wait *wait; /* cluster: the request this client waits for (input paused) */
    int consistency;           /* CONSISTENCY override for reads; 0: the keyspace's */
    bool resume_listed;        /* in node->resume_list: parse buffered input at FLUSH */
    uint64_t last_write_index; /* cluster: the entry of this client's last write (WAIT) */
    struct client *held_next;  /* list of clients with holds */
    bool in_held_list;
};

struct node_stats {
    uint64_t commands;
    uint64_t connections;
    uint64_t rejected_connections;
    uint64_t expired_keys;
    uint64_t disk_full_refusals;
    uint64_t syncs;
    uint64_t protocol_errors;
    uint64_t output_limit_closes;
};

struct node_snapshot_job {
    bool active;
    bool scan_done;
    struct snapshot_writer *writer;
    uint64_t cursor;
    uint64_t start_lsn; /* first lsn to replay over this snapshot */
    uint64_t end_lsn;   /* last lsn the scan may have observed */
    uint64_t keys;
    int error; /* first error while writing; the job is abandoned */
};

struct node {
    struct node_config config;
    char requirepass[NODE_REQUIREPASS_BYTES_MAX];
    char listen[NODE_CLIENT_ADDR_BYTES_MAX];
    char dir[256];
    struct disk *disk;
    struct db *db;
    struct wal *wal;
    uint64_t now_ms;
    uint64_t started_ms;
    /* Clients by id: open addressing, linear probing, slots hold pointers or NULL. */
    struct client **client_slots;
    uint32_t client_slot_count; /* power of two */
    uint32_t client_count;
    struct client *watchers;
    struct client *held;
    /* Effects being built in this step. */
    struct buf write_list; /* uint64_t ids */
    struct buf close_list;
    struct buf ops; /* the current command's ops */
    struct buf scratch;
    bool lists_handed_out; /* write/close lists were returned by the last FLUSH */
    bool sync_in_flight;
    bool sync_due; /* everysec: a sync is due */
    uint64_t next_tick_ms;
    uint64_t last_everysec_ms;
    bool disk_full; /* last reserve failed: writes refused until one succeeds */
    char disk_full_text[ERRMSG_BYTES_MAX];
    int fatal;
    char fatal_text[ERRMSG_BYTES_MAX];
    struct node_snapshot_job snap;
    uint64_t snapshot_lsn; /* start lsn of the newest complete snapshot */
    uint64_t last_save_ms;
    struct node_stats stats;
    struct cluster *cluster; /* NULL when the node runs alone */
    uint64_t mono_ms;        /* monotonic time from the shell (never goes back) */
    struct node_fault fault;
    struct buf resume_list;  /* client ids whose Raft wait ended: resume their input */
};

/* node.c */
void node_trace(struct node *node, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
struct client *node_client_find(struct node *node, uint64_t id);
void node_client_mark_close(struct node *node, struct client *c);
/* Runs one parsed request for c (dispatch, MULTI queueing, auth, arity). */
void node_run_request(struct node *node, struct client *c, uint32_t argc,
                      const struct resp_arg *argv);
/* Runs a data command (fn) with the node's ops buffer; logs its ops. Returns false when
 * it was refused before running (disk full). */
bool node_run_data(struct node *node, struct client *c, const struct cmd_spec *spec, uint32_t argc,
                   const struct resp_arg *argv);
void node_log_ops(struct node *node);
/* Releases c's replies and parses the input it buffered while waiting. */
void node_client_resume(struct node *node, struct client *c);

/* conn.c: connection and server commands */
void conn_run(struct node *node, struct client *c, const struct cmd_spec *spec, uint32_t argc,
              const struct resp_arg *argv);
void conn_reset_client(struct node *node, struct client *c);

/* A subcommand and its arity as Redis counts it (the command's name included). */
struct conn_sub {
    const char *name;
    int arity;
};

/* Finds argv[1] among subs; on an unknown name or a wrong argument count replies Redis 7's
 * error ("unknown subcommand 'x'. Try CLIENT HELP." / "wrong number of arguments for
 * 'client|setname' command") and returns -1. */
int conn_subcommand(struct client *c, const char *command, const struct conn_sub *subs,
                    size_t count, uint32_t argc, const struct resp_arg *argv);

/* tx.c: MULTI EXEC DISCARD WATCH UNWATCH */
void tx_queue(struct node *node, struct client *c, uint32_t argc, const struct resp_arg *argv);
void tx_run(struct node *node, struct client *c, const struct cmd_spec *spec, uint32_t argc,
            const struct resp_arg *argv);
void tx_unwatch(struct node *node, struct client *c);
void tx_discard(struct client *c);
/* Marks clients watching any key in ops as touched. */
void tx_touch_ops(struct node *node, const uint8_t *ops, size_t bytes);
/* Cluster: c's pending WATCH was answered; ok: its keys were watched at index (replies
 * +OK), else they are dropped (the caller replied the error). */
void tx_watch_answered(struct node *node, struct client *c, bool ok, uint64_t index);

/* persist.c: recovery, group commit, snapshots */
int persist_open(struct node *node, struct errmsg *msg);
void persist_close(struct node *node);
/* Makes room for a write of about `bytes`; false (node->disk_full set) when the disk is
 * full. */
bool persist_reserve(struct node *node, size_t bytes);
void persist_flush(struct node *node, struct node_effects *out);
void persist_synced(struct node *node, uint64_t lsn, int error);
/* The lsn a reply produced now must wait for before release. */
uint64_t persist_release_lsn(const struct node *node);
uint64_t persist_durable_lsn(const struct node *node);
void persist_tick(struct node *node);
/* SAVE (synchronous) and BGSAVE: start or run a snapshot. */
int persist_snapshot_start(struct node *node, struct errmsg *msg);
int persist_snapshot_run(struct node *node, bool to_completion);

/* cluster.c, cluster_req.c: the CP engine (Raft) */
int cluster_open(struct node *node, struct errmsg *msg);
void cluster_close(struct node *node);
void cluster_tick(struct node *node);
void cluster_flush(struct node *node, struct node_effects *out);
void cluster_synced(struct node *node, int error);
void cluster_peer_message(struct node *node, uint32_t from, const uint8_t *data, size_t bytes);
uint64_t cluster_wake_at(const struct node *node);
/* Runs a data command (or, with multi, the client's queued transaction) through Raft. */
void cluster_client_request(struct node *node, struct client *c, const struct cmd_spec *spec,
                            uint32_t argc, const struct resp_arg *argv);
void cluster_client_exec(struct node *node, struct client *c);
/* WATCH in a cluster: c's keys are in c->watched, the last c->watch_pending of them new. */
void cluster_client_watch(struct node *node, struct client *c, const struct cmd_spec *spec,
                          uint32_t argc, const struct resp_arg *argv);
void cluster_client_closed(struct node *node, struct client *c);
void cluster_info(struct node *node, struct buf *out);
void cluster_command(struct node *node, struct client *c, uint32_t argc,
                     const struct resp_arg *argv);
void cluster_wait_command(struct node *node, struct client *c, int64_t replicas, int64_t timeout);
/* WAIT: answers the waits whose replica count is reached (or, at_deadline, all due). */
void cluster_check_replica_waits(struct node *node);
/* Used by cluster_cmd.c. */
struct cluster_wait *cluster_wait_start(struct node *node, enum cluster_wait_kind kind,
                                        struct client *c);
void cluster_consistency_command(struct node *node, struct client *c, uint32_t argc,
                                 const struct resp_arg *argv);
/* Internal to cluster*.c */
/* Stops the node (effects' fatal): what failed, and the detail. */
void cluster_fatal(struct node *node, int code, const char *what, const char *text);
uint64_t cluster_wall_ms(const struct node *node); /* this node's clock (FAULT CLOCK skews) */
uint64_t cluster_entry_ms(struct node *node);      /* an entry's stamp: never goes back */
/* raft_step, then the caller's contract: persist now, hold messages and applies. */
int cluster_raft_step(struct node *node, struct raft_event *ev, struct raft_effects *e);
void cluster_sends_done(struct node *node);
void cluster_resume_clients(struct node *node);
void cluster_send(struct node *node, uint32_t to, const uint8_t *data, size_t bytes);
void cluster_run_commands(struct node *node, struct buf *out, int proto, const uint8_t *cmds,
                          size_t bytes, bool readonly);
int cluster_propose(struct node *node, const uint8_t *data, size_t bytes, uint64_t *index,
                    uint64_t *term);
void cluster_wait_finish(struct node *node, struct cluster_wait *w);
struct buf *cluster_origin_out(struct node *node, struct cluster_origin *o);
void cluster_after_apply(struct node *node);
void cluster_read_ready(struct node *node, uint64_t ctx, uint64_t index, bool failed);
void cluster_forward_reply(struct node *node, const uint8_t *data, size_t bytes);
void cluster_forward_request(struct node *node, uint32_t from, const uint8_t *data, size_t bytes);
void cluster_wait_detach(struct node *node, struct cluster_wait *w);
bool cluster_list_next(const uint8_t *list, size_t bytes, size_t *pos, struct buf *args,
                       uint32_t *argc);
/* cluster_repl.c: replication modes (majority, all, leader) */
bool cluster_list_mode(struct node *node, const uint8_t *list, size_t bytes,
                       struct cluster_list_mode *out, struct buf *keys);
bool cluster_spec_enabled(const struct node *node);
bool cluster_all_unreachable(struct node *node, char *text, size_t text_bytes);
bool cluster_all_hold(struct node *node, uint64_t index);
void cluster_spec_init(struct cluster_spec *s);
void cluster_spec_deinit(struct cluster_spec *s);
bool cluster_spec_proposed(struct node *node, uint64_t index, uint64_t ts, int proto,
                           const uint8_t *list, size_t bytes, const struct cluster_list_mode *lm,
                           const struct buf *keys, struct buf *out);
void cluster_spec_applied(struct node *node, uint64_t index);
void cluster_spec_release(struct node *node);
void cluster_repl_info(struct node *node, struct buf *out);
/* cluster_keyspaces.c: keyspaces agreed as cluster metadata */
void cluster_keyspaces_apply(struct node *node, const uint8_t *p, size_t bytes, uint64_t index);
int cluster_keyspaces_propose(struct node *node, uint64_t *index);
void cluster_keyspaces_tick(struct node *node);
void cluster_keyspaces_recovered(struct node *node, const struct raft_entry *entries, size_t count);
void cluster_save_command(struct node *node, struct client *c, bool background);
bool cluster_cmd_on_leader(struct node *node, struct client *c, const char *what);
void cluster_keyspaces_command(struct node *node, struct client *c, uint32_t argc,
                               const struct resp_arg *argv);
/* cluster_members.c: CLUSTER ADD | PROMOTE | REMOVE | MEMBERS and the shell's address book */
void cluster_members_effect(struct node *node, struct node_effects *out);
void cluster_members_command(struct node *node, struct client *c, uint32_t argc,
                             const struct resp_arg *argv);
void fault_command(struct node *node, struct client *c, uint32_t argc, const struct resp_arg *argv);
/* cluster_watch.c: WATCH on replicated data */
enum cluster_watch_verdict { CLUSTER_WATCH_PASS, CLUSTER_WATCH_ABORT, CLUSTER_WATCH_MALFORMED };
struct cluster_watch *cluster_watch_new(uint64_t hash_seed);
void cluster_watch_free(struct cluster_watch *w);
/* Forgets every key: all count as changed at floor (boot, snapshot restore). */
void cluster_watch_reset(struct cluster_watch *w, uint64_t floor);
/* Entry index changed what ops (op.h, valid) name. ops borrowed. */
void cluster_watch_note_ops(struct cluster_watch *w, uint64_t index, const uint8_t *ops,
                            size_t bytes);
/* A db_expired_fn for an applied sweep; ctx is the node. */
void cluster_watch_expired(void *ctx, const uint8_t *key, size_t key_bytes);
/* The leader proposed entry data (borrowed) at index. */
void cluster_watch_proposed(struct node *node, const uint8_t *data, size_t bytes, uint64_t index);
/* Appends c's watch conditions to list and flags it CLUSTER_LIST_IF. */
void cluster_watch_put_conditions(struct buf *list, const struct client *c);
/* Leader: whether a CLUSTER_LIST_IF list may be proposed; on PASS, *list_bytes is the
 * length of the list without its conditions. list borrowed. */
enum cluster_watch_verdict cluster_watch_check(struct node *node, const uint8_t *list, size_t bytes,
                                               size_t *list_bytes);
/* Returns borrowed: the buffer a local client's WATCH reply is built in. */
struct buf *cluster_watch_reply(struct node *node);
/* Turns the WATCH reply built for c into c's watch (or its error); no-op if none pending. */
void cluster_watch_answered(struct node *node, struct client *c);
/* fault.c: faults at node level */
void fault_init(struct node *node);
void fault_deinit(struct node *node);
/* The wall clock this node's engines are given: the shell's, skewed by FAULT CLOCK. */
uint64_t fault_wall_ms(const struct node *node);
bool fault_paused(const struct node *node);
/* A peer's payload is dropped on arrival (pause, partition, drop). */
bool fault_drops_incoming(struct node *node, uint32_t from);
/* Applies the faults to a FLUSH's sends (partition, drop, delay) and adds the delayed ones
 * now due; out->peer_sends then points at the result, valid until the next step. */
void fault_filter_sends(struct node *node, struct node_effects *out);
/* TICK: moves delayed payloads that are due to the next FLUSH. */
void fault_release_delayed(struct node *node);
/* The previous FLUSH's sends were carried out. */
void fault_sends_done(struct node *node);
/* When the node must be woken for the faults (a delayed payload, a pause's end), or
 * UINT64_MAX; in the shell's wall-clock time. */
uint64_t fault_wake_at(const struct node *node);
/* A peer slot was (re)assigned: it inherits no fault. */
void fault_peer_slot_reset(struct node *node, uint32_t slot);

/* info.c: INFO, COMMAND, CONFIG GET */
void info_reply(struct node *node, struct client *c, uint32_t argc, const struct resp_arg *argv);
void info_command(struct node *node, struct client *c, uint32_t argc, const struct resp_arg *argv);
void info_config(struct node *node, struct client *c, uint32_t argc, const struct resp_arg *argv);
void info_client_line(struct node *node, struct client *c, struct buf *out);

#endif
