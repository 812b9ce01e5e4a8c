/* State shared by the files of src/core; nothing outside the core includes this. */
#ifndef CAPKV_CORE_INTERNAL_H
#define CAPKV_CORE_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "cmd/cmd.h"
#include "core/node.h"
#include "core/session.h"
#include "data/db.h"
#include "engine/cmdlist.h"
#include "engine/disk_view.h"
#include "engine/engine.h"
#include "proto/errcode.h"
#include "proto/resp.h"
#include "base/prng.h"

#define NODE_CLIENT_NAME_BYTES_MAX 128
#define NODE_CLIENT_ADDR_BYTES_MAX 64
#define NODE_LIB_FIELD_BYTES_MAX 64
/* Held reply ranges per client. When full, the newest range absorbs the next reply and
 * waits for its (later) lsn: a release may come a sync later, never early. */
#define NODE_HOLDS_MAX 16
#define NODE_TICK_MS 100 /* Redis's hz 10 */
#define NODE_WATCH_KEYS_MAX CMDLIST_WATCH_KEYS_MAX
#define NODE_MULTI_COMMANDS_MAX 100000
#define NODE_BACKPRESSURE_BYTES (4ull * 1024 * 1024)

#define NODE_FAULT_DELAYED_BYTES_MAX (256ull << 20) /* payloads held back by FAULT DELAY */

/* A range of a client's output that may not be sent before `lsn` is durable. */
/* A node holds an engine per mode it serves: cp (the single-node engine alone, the CP
 * engine in a cluster) and, once it exists, ap. */
#define NODE_ENGINES_MAX 2

/* For each of the node's engines, an lsn of its group commit (release_lsn, durable_lsn). */
struct node_lsns {
    uint64_t lsn[NODE_ENGINES_MAX];
};

struct node_hold {
    uint64_t end;          /* absolute output offset */
    struct node_lsns need; /* sent once every engine is durable up to these */
};

/* One engine of the node, and its part of the data directory. */
struct node_engine {
    struct node *node; /* the node it belongs to (its tracer's context) */
    const struct engine_ops *ops;
    struct engine *engine;
    struct disk_view disk;
    struct disk_file *sync_file; /* a sync it asked for, not handed to the shell yet */
    uint64_t sync_token;
    bool sync_inline;
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
    uint32_t watch_pending; /* the last keys of watched, their WATCH not answered yet */
    uint64_t watch_index;   /* ENGINE_WATCH_CONDITIONS: the index the keys were watched at */
    bool watch_touched;
    struct client *watch_next; /* list of clients with watch_count > 0 */
    struct client *watch_prev;
    uint64_t pending;          /* the request an engine answers later (input paused), or 0 */
    uint8_t pending_engine;    /* which engine (node->engines) answers it */
    uint32_t pending_count;    /* the replies it owes: a pipeline's commands, else 1 */
    int8_t multi_engine;       /* the engine the queued transaction's keys are in; -1: none */
    int8_t watch_engine;       /* the engine the watched keys are in; -1: none */
    uint32_t request_seq;      /* numbers this client's requests (engine request ids) */
    int consistency;           /* CONSISTENCY override for reads; 0: the keyspace's */
    int quorum_w, quorum_r;    /* QUORUM overrides of AP keys' w and r; 0: the keyspace's */
    struct session session;    /* SESSION: what it observed, the token it resumed */
    bool resume_listed;        /* in node->resume_list: parse buffered input at FLUSH */
    uint64_t last_write_token; /* the engine's token of this client's last write (WAIT) */
    struct client *held_next;  /* list of clients with holds */
    bool in_held_list;
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
    uint64_t pause_until; /* monotonic: engines get no ticks and no peer traffic until then */
    struct prng prng;     /* drops */
    struct buf delayed;   /* FAULT DELAY: due:u64 to:u32 len:u32 bytes */
    struct buf released;  /* delayed payloads now due: to:u32 len:u32 bytes, sent at FLUSH */
    struct buf sends;     /* struct node_peer_send[]: the FLUSH's sends after the faults */
};

struct node_stats {
    uint64_t commands;
    uint64_t pipelines;          /* runs of pipelined commands submitted as one request */
    uint64_t pipelined_commands; /* the commands in them */
    uint64_t connections;
    uint64_t rejected_connections;
    uint64_t protocol_errors;
    uint64_t output_limit_closes;
};

struct node {
    struct node_config config;
    char requirepass[NODE_REQUIREPASS_BYTES_MAX];
    char listen[NODE_CLIENT_ADDR_BYTES_MAX];
    char dir[256];
    struct disk *disk;
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
    struct buf scratch;
    struct buf pipeline;      /* a connection's pipelined commands being gathered (node.c) */
    struct buf pipeline_args; /* scratch struct resp_arg[] over it */
    bool lists_handed_out;    /* write/close lists were returned by the last FLUSH */
    uint64_t next_tick_ms;
    int fatal;
    char fatal_text[ERRMSG_BYTES_MAX];
    struct node_stats stats;
    /* The engines that keep this node's data (engine.h), one per mode served, found by
     * mode through mode_engine. engines[0] is the one of mode cp (the single-node engine when
     * the node runs alone, the CP engine in a cluster), which also serves keyless commands
     * and the engine commands (CLUSTER, WAIT, SAVE). */
    struct node_engine engines[NODE_ENGINES_MAX];
    uint32_t engine_count;
    uint8_t mode_engine[KEYSPACE_MODE_COUNT + 1];
    bool keyspaces_agreed;   /* the table routing uses is the cluster's (or this node is alone) */
    uint32_t member_ids[NODE_PEERS_MAX]; /* the members an engine last reported (0: none yet) */
    uint32_t member_id_count;
    int sync_engine;         /* the engine whose sync the shell runs now; -1: none */
    struct buf engine_sends; /* struct node_peer_send[] of every engine, at FLUSH */
    struct buf watch_reply;  /* a WATCH's reply from the engine, before it becomes +OK */
    uint64_t mono_ms;        /* monotonic time from the shell (never goes back) */
    struct node_fault fault;
    struct buf resume_list; /* client ids whose engine request ended: resume their input */
    uint32_t cluster_id;    /* session tokens carry it (session_cluster_id) */
};

/* node.c */
void node_trace(struct node *node, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
struct client *node_client_find(struct node *node, uint64_t id);
void node_client_mark_close(struct node *node, struct client *c);
/* Runs one parsed request for c (dispatch, MULTI queueing, auth, arity). */
void node_run_request(struct node *node, struct client *c, uint32_t argc,
                      const struct resp_arg *argv);
/* Releases c's replies and parses the input it buffered while waiting. */
void node_client_resume(struct node *node, struct client *c);

/* conn.c: connection and server commands */
void conn_run(struct node *node, struct client *c, const struct cmd_spec *spec, uint32_t argc,
              const struct resp_arg *argv);
void conn_reset_client(struct node *node, struct client *c);

/* tx.c: MULTI EXEC DISCARD WATCH UNWATCH */
void tx_queue(struct node *node, struct client *c, uint32_t argc, const struct resp_arg *argv);
void tx_run(struct node *node, struct client *c, const struct cmd_spec *spec, uint32_t argc,
            const struct resp_arg *argv);
void tx_unwatch(struct node *node, struct client *c);
void tx_discard(struct client *c);
/* Marks clients watching any key in ops as touched. */
void tx_touch_ops(struct node *node, const uint8_t *ops, size_t bytes);
/* c's pending WATCH got its engine's reply (RESP, borrowed): ":index" watches its keys at
 * index and answers +OK; anything else is passed on and drops the keys. */
void tx_watch_reply(struct node *node, struct client *c, const uint8_t *reply, size_t bytes);

/* engines.c: the node's side of the engine seam */
int node_engines_open(struct node *node, struct errmsg *msg);
void node_engines_close(struct node *node);
/* The engine (index in node->engines) serving a command's keys, 0 (mode cp) for a keyless
 * one; -1 after replying -CROSSSLOT to c when they are in keyspaces of different engines. */
int node_engine_route(struct node *node, struct client *c, const struct cmd_spec *spec,
                      uint32_t argc, const struct resp_arg *argv);
/* c's data command, transaction (EXEC of its queue) or WATCH (its last watch_pending keys),
 * and engine commands (CLUSTER, WAIT, SAVE, BGSAVE: the cp engine's), through an engine. A
 * reply given at once goes to c->out; otherwise c's input is paused until it comes. */
void node_engine_data(struct node *node, uint32_t slot, struct client *c,
                      const struct cmd_spec *spec, uint32_t argc, const struct resp_arg *argv);
void node_engine_exec(struct node *node, struct client *c);
/* A connection's pipelined data commands (a command list without EXEC), as one request. */
void node_engine_pipeline(struct node *node, uint32_t slot, struct client *c, const uint8_t *list,
                          size_t bytes, uint32_t count);
void node_engine_watch(struct node *node, uint32_t slot, struct client *c, uint32_t argc,
                       const struct resp_arg *argv);
void node_engine_admin(struct node *node, struct client *c, uint32_t argc,
                       const struct resp_arg *argv);
/* An event for engine slot (GONE), or of a kind for all of them (TICK, SENT), with the
 * node's clocks filled in; a peer's payload to the engine it names; the shell's sync done. */
void node_engine_event(struct node *node, uint32_t slot, struct engine_event *ev);
void node_engine_event_all(struct node *node, enum engine_event_kind kind);
void node_engine_peer(struct node *node, uint32_t from, const uint8_t *data, size_t bytes);
void node_engine_synced(struct node *node, uint64_t token, int error);
/* FLUSH: every engine's batch, its replies delivered and their clients resumed; at most one
 * sync handed to the shell. */
void node_engine_flush(struct node *node, struct node_effects *out);
/* When an engine wants a TICK, in the shell's wall clock; UINT64_MAX: none. */
uint64_t node_engine_wake_at(const struct node *node);
/* Every engine's lines of an INFO section. */
void node_engine_info(struct node *node, const char *section, struct buf *out);
/* Group commit across engines: what a reply produced now waits for, and whether that is
 * durable. */
void node_engine_need(const struct node *node, struct node_lsns *out);
bool node_engine_durable(const struct node *node, const struct node_lsns *need);
void node_engine_durable_now(const struct node *node, struct node_lsns *out);
static inline bool node_lsns_covered(const struct node_lsns *need, const struct node_lsns *have) {
    for (uint32_t i = 0; i < NODE_ENGINES_MAX; i++)
        if (need->lsn[i] > have->lsn[i]) return false;
    return true;
}

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
/* FAULT PARTITION | HEAL | DROP | DELAY | CLOCK | PAUSE (needs enable_faults). */
void fault_command(struct node *node, struct client *c, uint32_t argc, const struct resp_arg *argv);
/* The cluster's members changed (an engine's effect): FAULT's peer positions follow. */
void fault_learn_members(struct node *node, const struct node_peer *members, size_t count);

/* info.c: INFO, COMMAND, CONFIG GET */
void info_reply(struct node *node, struct client *c, uint32_t argc, const struct resp_arg *argv);
void info_command(struct node *node, struct client *c, uint32_t argc, const struct resp_arg *argv);
void info_config(struct node *node, struct client *c, uint32_t argc, const struct resp_arg *argv);
void info_client_line(struct node *node, struct client *c, struct buf *out);
void info_cluster(struct node *node, struct client *c);

#endif
