/*
 * The raft target's world (see sim.h), shared by raftsim.c (the target's table: setup, the
 * leader, convergence, membership changes, durability), raftsim_node.c (a node: the
 * caller's contract of raft.h) and raftsim_client.c (the register workload's clients and
 * their history). Internal.
 */
#ifndef CAPKV_SIM_RAFTSIM_INTERNAL_H
#define CAPKV_SIM_RAFTSIM_INTERNAL_H

#include "base/buf.h"
#include "base/prng.h"
#include "raft/raft.h"
#include "sim_world.h"
#include "storage/disk.h"
#include "storage/raftstore.h"

#define RAFTSIM_KEYS 3         /* keys "k0".."k2": few, so operations conflict */
#define RAFTSIM_VALUES 5       /* values 0..4: small, so cas often fails or succeeds */
#define RAFTSIM_CLIENTS 5      /* concurrent clients */
#define RAFTSIM_PENDING_MAX 32 /* client operations a node holds at once */
#define RAFTSIM_CLIENT_TIMEOUT_MS 1000
#define RAFTSIM_CLIENT_LINK_MS_MAX                                                                 \
    3 /* client <-> node one-way latency (client links never cut)                                  \
       */
#define RAFTSIM_THINK_MS_MAX 30
#define RAFTSIM_ELECTION_MS_MIN 150
#define RAFTSIM_ELECTION_MS_MAX 300
#define RAFTSIM_HEARTBEAT_MS 30
/* Above the 2 % two drifting clocks may disagree on an election timeout (sim_world.h). */
#define RAFTSIM_LEASE_DRIFT_MS 15
#define RAFTSIM_FSYNC_MS_MAX 12       /* async persistence: sync latency 1..max */
#define RAFTSIM_SNAPSHOT_EVERY_MIN 20 /* applied entries between a node's snapshots */
#define RAFTSIM_SNAPSHOT_EVERY_MAX 120
#define RAFTSIM_SAME_TIME_TICKS_MAX 64 /* ticks of one node at one instant before forcing +1 ms */
#define RAFTSIM_OP_BYTES 27            /* encoded write: see raftsim_node_encode_op */

struct raftsim_kv {
    uint64_t applied_index;
    bool present[RAFTSIM_KEYS];
    int64_t value[RAFTSIM_KEYS];
};
#define RAFTSIM_KV_BLOB_BYTES (8 + RAFTSIM_KEYS * 9)

enum raftsim_op_kind { RAFTSIM_OP_GET = 0, RAFTSIM_OP_PUT = 1, RAFTSIM_OP_CAS = 2 };

/* One client operation as the node sees it. */
struct raftsim_request {
    uint32_t client;
    uint64_t op_id;
    enum raftsim_op_kind kind;
    uint8_t key;
    bool expect_nil; /* cas: expected value is nil */
    int64_t arg;     /* put: value; cas: expected */
    int64_t arg2;    /* cas: new value */
};

struct raftsim_pending {
    bool used;
    bool read_ready; /* read: ReadIndex confirmed, waiting for apply >= index */
    bool applied;    /* replication = all: applied here, waiting for the others */
    struct raftsim_request req;
    uint64_t index; /* write: proposed index; read: read index */
    uint64_t term;
    bool swapped; /* cas result once applied */
};

/* One step's effects held until the store is durable up to position (raft.h's FIFO). */
struct raftsim_held {
    uint64_t position;
    struct buf wire;            /* encoded messages, each prefixed by to (u32) and length (u32) */
    struct raft_entry *applies; /* data copied into apply_data */
    size_t apply_count;
    struct buf apply_data;
    struct raft_read_state *reads;
    size_t read_count;
    uint64_t *failed;
    size_t failed_count;
    bool restore;
    uint64_t restore_index;
    uint64_t restore_term;
    struct buf restore_data;
    struct raftsim_held *next;
};

struct raftsim_node {
    uint32_t id;
    struct sim_host *host; /* &w->sim.hosts[id]: up, next tick, sync, restart, clock */
    uint64_t incarnation;
    struct prng prng;
    struct disk disk;
    struct raftstore *store;
    struct raft *raft;
    uint64_t same_time_ticks;
    bool async;
    struct raftsim_held *held_head;
    struct raftsim_held *held_tail;
    bool draining;
    uint64_t reported_index; /* last RAFT_EVENT_PERSISTED */
    uint64_t reported_term;
    uint64_t commit_seen; /* invariant: never decreases within an incarnation */
    enum raft_role role_seen;
    uint64_t term_seen;
    struct raftsim_kv kv;
    uint64_t snapshot_every;
    struct raftsim_pending pending[RAFTSIM_PENDING_MAX];
};

enum raftsim_client_state {
    RAFTSIM_CLIENT_IDLE,
    RAFTSIM_CLIENT_SENDING,
    RAFTSIM_CLIENT_WAITING,
    RAFTSIM_CLIENT_REPLIED
};

struct raftsim_client {
    uint32_t id;
    struct prng prng;
    enum raftsim_client_state state;
    uint64_t next_at_ms; /* IDLE: when to invoke; SENDING: request arrives; REPLIED: reply */
    uint64_t deadline_ms;
    uint32_t leader_guess;
    uint32_t target;
    struct raftsim_request req;
    uint64_t invoke_ms;
    /* the reply in flight (REPLIED) */
    enum lincheck_outcome outcome;
    bool got_nil;
    int64_t got;
    bool swapped;
};

struct raftsim_acked_write {
    uint64_t index;
    uint64_t term;
    uint64_t op_id;
};

struct raftsim_world {
    struct sim_world sim; /* first: the tables' callbacks get &sim */
    struct raft_config config;
    struct raftsim_node nodes[SIM_NODES_MAX + 1]; /* 1-based */
    struct raftsim_client clients[RAFTSIM_CLIENTS];
    struct raftsim_acked_write *acked;
    size_t acked_count;
    size_t acked_capacity;
    struct buf scratch;
    struct raft_entry *decode_entries; /* RAFT_MSG_ENTRIES_MAX, for raft_msg_decode */
};

/* raftsim_node.c */
void raftsim_node_init(struct raftsim_world *w, struct raftsim_node *n, uint32_t id);
void raftsim_node_deinit(struct raftsim_world *w, struct raftsim_node *n);
int raftsim_node_start(struct raftsim_world *w,
                       struct raftsim_node *n); /* (re)open store and raft */
void raftsim_node_crash(struct raftsim_world *w, struct raftsim_node *n, bool tear);
void raftsim_node_tick(struct raftsim_world *w, struct raftsim_node *n);
void raftsim_node_sync_done(struct raftsim_world *w, struct raftsim_node *n);
void raftsim_node_receive(struct raftsim_world *w, struct raftsim_node *n,
                          const struct sim_packet *p);
void raftsim_node_request(struct raftsim_world *w, struct raftsim_node *n,
                          const struct raftsim_request *req);
/* A membership change asked of node n (the leader, normally); returns raft's code. */
int raftsim_node_change(struct raftsim_world *w, struct raftsim_node *n, enum raft_change_kind kind,
                        uint32_t id);
/* What node n's clock reads at global_ms (the world's clock model). */
uint64_t raftsim_node_local_ms(const struct raftsim_node *n, uint64_t global_ms);
void raftsim_node_kv_blob(const struct raftsim_kv *kv, uint8_t *out);
bool raftsim_node_kv_unblob(const uint8_t *blob, uint64_t bytes, struct raftsim_kv *kv);

/* raftsim_client.c */
void raftsim_client_init(struct raftsim_world *w, struct raftsim_client *c, uint32_t id);
void raftsim_client_event(struct raftsim_world *w, struct raftsim_client *c);
/* A node answers client c's operation op_id (ignored when c moved on). */
struct raftsim_reply {
    enum lincheck_outcome outcome;
    uint32_t leader_hint;
    bool got_nil;
    int64_t got;
    bool swapped;
};
void raftsim_client_reply(struct raftsim_world *w, uint32_t client, uint64_t op_id,
                          const struct raftsim_reply *reply);
void raftsim_client_finish_all(struct raftsim_world *w); /* end of run: outstanding ops are INFO */

/* raftsim.c: a write answered OK at (index, term), for the durability check at the end. */
void raftsim_acked(struct raftsim_world *w, uint64_t index, uint64_t term, uint64_t op_id);

#endif
