/*
 * The node target's world (see sim.h): 3 or 5 node cores (node_new), each on its own
 * memdisk, driven by their events-in / effects-out interface (core/node.h). The peer
 * payloads the cores emit travel over the world's network (raft payloads may also be
 * duplicated), syncs take virtual time, nodes crash (memdisk_crash, sometimes tearing the
 * last write) and restart on the same disk; the cores run with enable_faults, and the
 * schedule's last slot sends them their own FAULT commands (PARTITION, DROP, DELAY, small
 * CLOCK skews, PAUSE; nodesim_faultcmd.c), all healed before convergence.
 * The register workload's clients speak RESP to the cores: get / set / compare-and-set on a
 * few keys, whose history is checked for linearizability at the end, after the cluster
 * healed and every replica converged; and outside that history sets and hashes, big values
 * (64 KiB..1 MiB, so snapshots and InstallSnapshot carry megabytes) and transactions (a
 * bank of accounts whose sum stays 0, a WATCH-guarded counter; nodesim_txn.c). Every
 * replica must end with the same keys, types, expiries and contents (nodesim_data.c), the
 * bank's sum and the counter's bounds. Checked after every step: no fatal, election safety,
 * commit safety and monotonicity, leader completeness (sim_check.h), log matching every few
 * steps.
 * Files: nodesim.c (the target's table), nodesim_node.c (a node's shell), nodesim_client.c
 * (the workload's clients), nodesim_txn.c, nodesim_data.c, nodesim_faultcmd.c,
 * nodesim_acked.c. Internal.
 */
#ifndef CAPKV_SIM_NODESIM_INTERNAL_H
#define CAPKV_SIM_NODESIM_INTERNAL_H

#include "ap/ring.h"
#include "base/buf.h"
#include "base/prng.h"
#include "cp/cp.h"
#include "data/db.h"
#include "core/node.h"
#include "raft/raft.h"
#include "sim_world.h"
#include "storage/disk.h"

#define NODESIM_KEYS 3        /* "k0".."k2": in the lincheck history */
#define NODESIM_EXPIRY_KEYS 2 /* "e0".."e1": expiry mode only, convergence only */
#define NODESIM_VALUES 5      /* values 0..4 */
#define NODESIM_COLLECTIONS 2 /* sets "s0".."s1" and hashes "h0".."h1", members 0..4 */
#define NODESIM_BIG_KEYS 4    /* "b0".."b3": big values, so snapshots hold megabytes */
#define NODESIM_BIG_VALUE_BYTES_MIN (64u * 1024)
#define NODESIM_BIG_VALUE_BYTES_MAX (1024u * 1024)
#define NODESIM_BIG_BYTES_MAX (24u * 1024 * 1024) /* big values written in one run, at most */
#define NODESIM_ACCOUNTS 3        /* "a0".."a2": the bank's transfers, outside the history */
#define NODESIM_TXN_RETRIES_MAX 4 /* a WATCH-guarded increment's retries after a null EXEC */
#define NODESIM_FLUSH_ONE_IN 400  /* ops that are a FLUSHALL: one in this many */
#define NODESIM_CLIENTS 5
#define NODESIM_CLIENT_TIMEOUT_MS 2000
#define NODESIM_CLIENT_LINK_MS_MAX 3
#define NODESIM_THINK_MS_MAX 30
#define NODESIM_REPLY_BYTES_MAX 4096 /* a client's unparsed input; more is a failure */
#define NODESIM_T0_MS 1700000000000ull
#define NODESIM_ELECTION_MS_MIN 150
#define NODESIM_ELECTION_MS_MAX 300
#define NODESIM_HEARTBEAT_MS 30
#define NODESIM_REQUEST_TIMEOUT_MS 1000
#define NODESIM_AP_TOMBSTONE_MS 2000 /* ap-tombstone-age (the delays stay under 0.5 s) */
#define NODESIM_FSYNC_MS_MAX 12
#define NODESIM_SYNC_CHAIN_MAX 64 /* inline syncs in a row after one event */

struct nodesim_node {
    uint32_t id;
    struct sim_host *host; /* &w->sim.hosts[id]: up, next tick, sync, restart, clock */
    uint32_t incarnation;
    struct prng prng;
    struct disk disk;
    struct node *node;
    struct disk_file *sync_file; /* async sync in flight (borrowed from the core) */
    uint64_t sync_lsn;
    uint64_t commit_seen;
    uint64_t snapshot_seen;  /* raft_snapshot_index after the last step */
    uint32_t keyspaces_seen; /* entries of the keyspace table in force after the last step */
    enum raft_role role_seen;
    uint64_t term_seen;
    uint64_t fault_conn;        /* the simulator's connection for FAULT commands; 0: none */
    uint32_t fault_replies_due; /* FAULT commands sent on it, not answered yet */
    uint64_t fault_lenient;     /* bit i: the i-th reply due may also be a refusal (RELOAD) */
    bool fault_set;             /* a FAULT other than HEAL is in force on this core */
    struct buf fault_in;        /* FAULT replies received, not yet parsed */
};

enum nodesim_op_kind {
    NODESIM_OP_GET,
    NODESIM_OP_PUT,
    NODESIM_OP_CAS,
    NODESIM_OP_EXPIRE,
    NODESIM_OP_BIG,  /* SET bK to 64 KiB..1 MiB, outside the history */
    NODESIM_OP_SADD, /* these four: sets "s0".."s1", hashes "h0".."h1"; outside the history */
    NODESIM_OP_SREM,
    NODESIM_OP_HSET,
    NODESIM_OP_HDEL,
    NODESIM_OP_FLUSH,    /* FLUSHALL: a delete of every kN key in the history, and of the rest */
    NODESIM_OP_TRANSFER, /* the rest: outside the lincheck history (nodesim_txn.c) */
    NODESIM_OP_AUDIT,
    NODESIM_OP_INCR,
    NODESIM_OP_AP_INCR, /* --ap: INCRBY cK, SADD / SREM / DEL tK (nodesim_ap.c) */
    NODESIM_OP_AP_SADD,
    NODESIM_OP_AP_SREM,
    NODESIM_OP_AP_DEL,
};
enum nodesim_client_state {
    NODESIM_CLIENT_IDLE,
    NODESIM_CLIENT_SENDING,
    NODESIM_CLIENT_WAITING,
    NODESIM_CLIENT_REPLIED
};

struct nodesim_client {
    uint32_t id;
    struct prng prng;
    enum nodesim_client_state state;
    uint32_t node;    /* connected to, 0: not connected */
    uint64_t conn_id; /* the node's client id */
    uint64_t next_at_ms;
    uint64_t deadline_ms;
    uint64_t invoke_ms;
    uint64_t op_id;
    enum nodesim_op_kind kind;
    uint32_t key;
    bool expect_nil; /* cas from nil: SET k v NX */
    int64_t arg;     /* put: value; cas: expected */
    int64_t arg2;    /* cas: new value; expire: PX ms */
    uint32_t key2;   /* transfer: the account credited (key: debited) */
    uint32_t phase;  /* incr: 0 WATCH + GET, 1 MULTI + SET + EXEC */
    uint32_t retries;
    uint32_t replies_due; /* values answering this round trip's pipelined request */
    uint32_t replies_got;
    bool exec_null; /* incr: EXEC answered null (a watched key changed) */
    struct buf in;  /* bytes received, not yet parsed */
    enum lincheck_outcome outcome;
    bool got_nil;
    int64_t got;
    bool swapped;
};

/* An operation's real-time span: it took effect (or may have) between invoke and response;
 * response UINT64_MAX when its outcome is unknown (it may take effect until the end). */
struct nodesim_span {
    uint64_t invoke_ms;
    uint64_t response_ms;
};

struct nodesim_acked_slot;

/* Leader mode: the entries (index, term) of writes some core answered early
 * (nodesim_acked.c); an open-addressing set. */
struct nodesim_acked {
    struct nodesim_acked_slot *slots;
    size_t count;
    size_t capacity; /* a power of two, or 0 */
};

/* --ap: an AP op that applied or may have (a FAIL is left out: nothing was written). */
struct nodesim_ap_op {
    enum nodesim_op_kind kind;
    uint32_t key;
    int64_t arg; /* the increment, or the member */
    bool acked;
    uint32_t copies; /* acked: replicas known to hold it durably, at least (nodesim_ap.c) */
    uint64_t invoke_ms;
    uint64_t response_ms; /* UINT64_MAX: unknown (it may apply until the end) */
};

#define NODESIM_AP_KEYS 5        /* "c0".."c2", then "t0".."t1" (nodesim_ap.c) */
#define NODESIM_AP_LOSSES_MAX 32 /* disk losses in one run, at most */

struct nodesim_ap {
    struct nodesim_ap_op *ops;
    size_t count, capacity;
    bool ring_built;
    struct ap_ring ring; /* the cores' ring (their members never change here) */
    struct prng prng;    /* which crashes lose the AP engine's files (nodesim_ap.c) */
    uint64_t sampled_ms; /* the last time the keys' replicas were compared */
    /* Per key: the last time every replica held the same object, all up and synced; the
     * last disk loss of one of its replicas. */
    uint64_t settled_ms[NODESIM_AP_KEYS];
    uint64_t lost_ms[NODESIM_AP_KEYS];
    uint64_t losses_ms[NODESIM_AP_KEYS][NODESIM_AP_LOSSES_MAX]; /* each of them */
    uint32_t losses[NODESIM_AP_KEYS];
};

struct nodesim_world {
    struct sim_world sim; /* first: the tables' callbacks get &sim */
    struct node_config config;
    struct nodesim_node nodes[SIM_NODES_MAX + 1]; /* 1-based */
    struct nodesim_client clients[NODESIM_CLIENTS];
    uint64_t next_conn_id;
    struct buf packet;        /* scratch: a payload with its incarnation header */
    uint64_t spec_mismatches; /* leader mode: early replies that differed, crashed cores */
    uint64_t spec_lost;       /* leader mode: the crashed cores' own acked_lost counts */
    struct nodesim_acked acked;
    uint64_t big_bytes;         /* big values sent so far (NODESIM_BIG_BYTES_MAX) */
    struct buf big_req;         /* scratch: a big SET's multibulk request */
    uint64_t incr_applied;      /* incr EXECs that answered an array */
    uint64_t incr_unknown;      /* incr EXECs sent that got no answer (TIMEOUT, closed, none) */
    struct nodesim_span *incrs; /* each incr that applied or may have (the counter's bounds) */
    size_t incr_count;
    size_t incr_capacity;
    struct nodesim_span *flushes; /* each FLUSHALL that applied or may have */
    size_t flush_count;
    size_t flush_capacity;
    uint32_t keyspace_variant; /* the table the cores start with (nodesim_config_keyspaces) */
    struct nodesim_ap ap;
};

/* nodesim_node.c */
void nodesim_node_init(struct nodesim_world *w, struct nodesim_node *n, uint32_t id);
void nodesim_node_deinit(struct nodesim_world *w, struct nodesim_node *n);
int nodesim_node_start(struct nodesim_world *w, struct nodesim_node *n); /* node_new + tick */
void nodesim_node_crash(struct nodesim_world *w, struct nodesim_node *n, bool tear);
/* Sends one event to node n (up), then FLUSH, and carries out the effects. */
void nodesim_node_event(struct nodesim_world *w, struct nodesim_node *n, struct node_event ev);
void nodesim_node_tick(struct nodesim_world *w, struct nodesim_node *n);
void nodesim_node_sync_due(struct nodesim_world *w, struct nodesim_node *n);
void nodesim_node_receive(struct nodesim_world *w, const struct sim_packet *p);
/* A random node that is up, other than avoid when there is one; 0 when none is up. */
uint32_t nodesim_random_up_node(struct nodesim_world *w, struct prng *prng, uint32_t avoid);

/* nodesim.c */
uint32_t nodesim_leader(const struct nodesim_world *w); /* of the highest term; 0: none */
void nodesim_config_keyspaces(struct nodesim_world *w); /* w->config's, for keyspace_variant */
struct keyspace *nodesim_keyspace(struct node_config *c, const char *name, const char *match);

/* nodesim_ap.c: the AP workload (--ap) and its checks */
void nodesim_ap_keyspaces(struct nodesim_world *w, struct node_config *c); /* put in front */
bool nodesim_ap_kind(enum nodesim_op_kind kind);
void nodesim_ap_invoke(struct nodesim_world *w, struct nodesim_client *c); /* maybe AP */
size_t nodesim_ap_format(const struct nodesim_client *c, char *out, size_t bytes);
bool nodesim_ap_reply(struct nodesim_client *c, const uint8_t *p, size_t bytes);
void nodesim_ap_record(struct nodesim_world *w, const struct nodesim_client *c,
                       enum lincheck_outcome outcome);
bool nodesim_ap_converged(struct nodesim_world *w); /* every node's AP db the same */
void nodesim_ap_init(struct nodesim_world *w);
/* After node n's event and its syncs: notes the keys whose replicas are settled. */
void nodesim_ap_observe(struct nodesim_world *w);
/* Node n crashed (its core freed): now and then its AP engine's files are wiped. */
void nodesim_ap_disk_loss(struct nodesim_world *w, struct nodesim_node *n);
void nodesim_ap_end_check(struct nodesim_world *w);
void nodesim_ap_deinit(struct nodesim_world *w);

/* nodesim_faultcmd.c */
void nodesim_faultcmd_inject(struct nodesim_world *w); /* one core FAULT, from prng_faults */
void nodesim_faultcmd_heal(struct nodesim_world *w);   /* HEAL, CLOCK 0 where a fault is set */
/* Node n released output for conn_id (borrowed): true when it was the FAULT connection. */
bool nodesim_faultcmd_output(struct nodesim_world *w, struct nodesim_node *n, uint64_t conn_id,
                             const uint8_t *data, size_t bytes);
void nodesim_faultcmd_lost(struct nodesim_node *n);        /* its core crashed or closed the conn */
bool nodesim_faultcmd_idle(const struct nodesim_world *w); /* healed, every FAULT answered */

/* nodesim_data.c: whether node i's db equals leader l's (reported as a failure if not). */
bool nodesim_data_same(struct nodesim_world *w, uint32_t i, uint32_t l);

/* nodesim_txn.c: transactions on keys outside the history (c borrowed throughout) */
bool nodesim_txn_i64(const uint8_t *p, size_t bytes, int64_t *out); /* [-]digits */
void nodesim_txn_invoke(struct nodesim_world *w, struct nodesim_client *c);
size_t nodesim_txn_format(const struct nodesim_client *c, char *out, size_t bytes,
                          uint32_t *replies);
/* Reply number index of the round trip; -1: a reply no transaction may get. */
int nodesim_txn_reply(struct nodesim_world *w, struct nodesim_client *c, uint32_t index,
                      const uint8_t *p, size_t bytes);
bool nodesim_txn_continues(struct nodesim_client *c);
void nodesim_txn_record(struct nodesim_world *w, const struct nodesim_client *c,
                        enum lincheck_outcome outcome);
int nodesim_txn_check_bank(struct nodesim_world *w, uint32_t i);    /* node i's accounts */
int nodesim_txn_check_counter(struct nodesim_world *w, uint32_t i); /* after count_lost */
void nodesim_txn_deinit(struct nodesim_world *w);

/* nodesim_acked.c */
void nodesim_acked_deinit(struct nodesim_acked *a);
/* After each step of node n (up): remembers its early-answered writes (leader mode). */
void nodesim_acked_observe(struct nodesim_world *w, const struct nodesim_node *n);
/* After convergence: how many remembered writes the final log lacks (leader borrowed). */
uint64_t nodesim_acked_lost(const struct nodesim_world *w, const struct raft *leader);

/* nodesim_client.c */
void nodesim_client_init(struct nodesim_world *w, struct nodesim_client *c, uint32_t id);
void nodesim_client_deinit(struct nodesim_client *c);
void nodesim_client_event(struct nodesim_world *w, struct nodesim_client *c);
/* Node n released `bytes` of output for connection conn_id (borrowed). */
void nodesim_client_output(struct nodesim_world *w, uint32_t n, uint64_t conn_id,
                           const uint8_t *data, size_t bytes);
/* The connection is gone (node crashed or closed it): an outstanding op is unknown. */
void nodesim_client_conn_lost(struct nodesim_world *w, uint32_t n, uint64_t conn_id);
void nodesim_client_finish_all(struct nodesim_world *w);
bool nodesim_clients_idle(const struct nodesim_world *w);

#endif
