/*
 * The simulator's world, shared by sim.c (the loop and the faults), sim_node.c (a node: the
 * caller's contract of raft.h) and sim_client.c (clients and the history). Internal.
 */
#ifndef CAPKV_SIM_SIM_INTERNAL_H
#define CAPKV_SIM_SIM_INTERNAL_H

#include "base/buf.h"
#include "base/prng.h"
#include "raft/raft.h"
#include "sim.h"
#include "sim_net.h"
#include "sim_trace.h"
#include "storage/disk.h"
#include "storage/raftstore.h"

#define SIM_KEYS 3         /* keys "k0".."k2": few, so operations conflict */
#define SIM_VALUES 5       /* values 0..4: small, so cas often fails or succeeds */
#define SIM_CLIENTS 5      /* concurrent clients */
#define SIM_PENDING_MAX 32 /* client operations a node holds at once */
#define SIM_CLIENT_TIMEOUT_MS 1000
#define SIM_CLIENT_LINK_MS_MAX 3 /* client <-> node one-way latency (client links never cut) */
#define SIM_THINK_MS_MAX 30
#define SIM_ELECTION_MS_MIN 150
#define SIM_ELECTION_MS_MAX 300
#define SIM_HEARTBEAT_MS 30
/* Clock drift: every node's clock runs at 1 + d for |d| <= SIM_DRIFT_PPM_MAX (1 %). Two
 * clocks then disagree by at most 2 % of an election timeout (6 ms of 300), below
 * SIM_LEASE_DRIFT_MS, the margin raft takes off its leases (raft.h lease_drift_ms). */
#define SIM_DRIFT_PPM_MAX 10000
#define SIM_LEASE_DRIFT_MS 15
#define SIM_CLOCK_OFFSET_MS_MAX 100000
#define SIM_FSYNC_MS_MAX 12       /* async persistence: sync latency 1..max */
#define SIM_SNAPSHOT_EVERY_MIN 20 /* applied entries between a node's snapshots */
#define SIM_SNAPSHOT_EVERY_MAX 120
#define SIM_SETTLE_MS_MAX 20000    /* healed cluster must converge within this */
#define SIM_FULL_CHECK_STEPS 2000  /* whole-log comparison every this many steps */
#define SIM_SAME_TIME_TICKS_MAX 64 /* ticks of one node at one instant before forcing +1 ms */
#define SIM_OP_BYTES 27            /* encoded write: see sim_node_encode_op */

struct sim_kv {
    uint64_t applied_index;
    bool present[SIM_KEYS];
    int64_t value[SIM_KEYS];
};
#define SIM_KV_BLOB_BYTES (8 + SIM_KEYS * 9)

enum sim_op_kind { SIM_OP_GET = 0, SIM_OP_PUT = 1, SIM_OP_CAS = 2 };

/* One client operation as the node sees it. */
struct sim_request {
    uint32_t client;
    uint64_t op_id;
    enum sim_op_kind kind;
    uint8_t key;
    bool expect_nil; /* cas: expected value is nil */
    int64_t arg;     /* put: value; cas: expected */
    int64_t arg2;    /* cas: new value */
};

struct sim_pending {
    bool used;
    bool read_ready; /* read: ReadIndex confirmed, waiting for apply >= index */
    bool applied;    /* replication = all: applied here, waiting for the others */
    struct sim_request req;
    uint64_t index; /* write: proposed index; read: read index */
    uint64_t term;
    bool swapped; /* cas result once applied */
};

/* One step's effects held until the store is durable up to position (raft.h's FIFO). */
struct sim_held {
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
    struct sim_held *next;
};

struct sim_node {
    uint32_t id;
    bool up;
    uint64_t incarnation;
    struct prng prng;
    struct disk disk;
    struct raftstore *store;
    struct raft *raft;
    int64_t clock_offset_ms;
    int64_t drift_ppm;
    uint64_t wake_ms; /* global virtual time of the next tick */
    uint64_t same_time_ticks;
    uint64_t restart_at_ms; /* when down */
    bool async;
    uint64_t sync_at_ms; /* async: when the running sync completes, 0: none */
    struct sim_held *held_head;
    struct sim_held *held_tail;
    bool draining;
    uint64_t reported_index; /* last RAFT_EVENT_PERSISTED */
    uint64_t reported_term;
    uint64_t commit_seen; /* invariant: never decreases within an incarnation */
    enum raft_role role_seen;
    uint64_t term_seen;
    struct sim_kv kv;
    uint64_t snapshot_every;
    struct sim_pending pending[SIM_PENDING_MAX];
};

enum sim_client_state {
    SIM_CLIENT_IDLE,
    SIM_CLIENT_SENDING,
    SIM_CLIENT_WAITING,
    SIM_CLIENT_REPLIED
};

struct sim_client {
    uint32_t id;
    struct prng prng;
    enum sim_client_state state;
    uint64_t next_at_ms; /* IDLE: when to invoke; SENDING: request arrives; REPLIED: reply */
    uint64_t deadline_ms;
    uint32_t leader_guess;
    uint32_t target;
    struct sim_request req;
    uint64_t invoke_ms;
    /* the reply in flight (REPLIED) */
    enum lincheck_outcome outcome;
    bool got_nil;
    int64_t got;
    bool swapped;
};

struct sim_acked {
    uint64_t index;
    uint64_t term;
    uint64_t op_id;
};

struct sim_world {
    struct sim_options options;
    struct sim_stats *stats;
    uint64_t now_ms;
    bool settling;
    struct prng prng_faults;
    struct prng prng_crash;
    struct sim_net net;
    struct sim_check check;
    struct sim_trace trace;
    struct raft_config config;
    struct sim_node nodes[SIM_NODES_MAX + 1]; /* 1-based */
    struct sim_client clients[SIM_CLIENTS];
    uint64_t next_op_id;
    uint64_t fault_at_ms;
    struct lincheck_history history;
    struct sim_acked *acked;
    size_t acked_count;
    size_t acked_capacity;
    struct buf scratch;
    struct raft_entry *decode_entries; /* RAFT_MSG_ENTRIES_MAX, for raft_msg_decode */
};

/* sim_node.c */
void sim_node_init(struct sim_world *w, struct sim_node *n, uint32_t id);
void sim_node_deinit(struct sim_world *w, struct sim_node *n);
int sim_node_start(struct sim_world *w, struct sim_node *n); /* (re)open store and raft */
void sim_node_crash(struct sim_world *w, struct sim_node *n, bool tear);
void sim_node_tick(struct sim_world *w, struct sim_node *n);
void sim_node_sync_done(struct sim_world *w, struct sim_node *n);
void sim_node_receive(struct sim_world *w, struct sim_node *n, const struct sim_packet *p);
void sim_node_request(struct sim_world *w, struct sim_node *n, const struct sim_request *req);
/* A membership change asked of node n (the leader, normally); returns raft's code. */
int sim_node_change(struct sim_world *w, struct sim_node *n, enum raft_change_kind kind,
                    uint32_t id);
uint64_t sim_node_local_ms(const struct sim_node *n, uint64_t global_ms);
void sim_node_kv_blob(const struct sim_kv *kv, uint8_t *out);
bool sim_node_kv_unblob(const uint8_t *blob, uint64_t bytes, struct sim_kv *kv);

/* sim_client.c */
void sim_client_init(struct sim_world *w, struct sim_client *c, uint32_t id);
void sim_client_event(struct sim_world *w, struct sim_client *c);
/* A node answers client c's operation op_id (ignored when c moved on). */
struct sim_reply {
    enum lincheck_outcome outcome;
    uint32_t leader_hint;
    bool got_nil;
    int64_t got;
    bool swapped;
};
void sim_client_reply(struct sim_world *w, uint32_t client, uint64_t op_id,
                      const struct sim_reply *reply);
void sim_client_finish_all(struct sim_world *w); /* end of run: outstanding ops are INFO */

/* sim.c */
void sim_world_acked(struct sim_world *w, uint64_t index, uint64_t term, uint64_t op_id);
int sim_world_violation(struct sim_world *w);

#endif
