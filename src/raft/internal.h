/*
 * Raft's private state, shared by its files (raft.c: steps, roles, effects; log.c: the
 * in-memory log; election.c; replication.c; recv_append_entries.c; read.c; membership.c).
 * Invariants (checked by raft_check_invariants): snapshot_index <= applied <= commit <=
 * last index; commit never decreases; log terms non-decreasing; at most one leader per term.
 */
#ifndef CAPKV_RAFT_INTERNAL_H
#define CAPKV_RAFT_INTERNAL_H

#include "base/buf.h"
#include "base/prng.h"
#include "raft/raft.h"

/* Entries snapshot_index + 1 .. snapshot_index + count, in one array; data owned. */
/* A block of entry data: entries' data in index order, from first_index to last_index (the
 * entries with data among them). Mapped from the system and unmapped whole, so that the
 * memory a compacted log held goes back at once rather than staying in the heap. */
struct raft_log_block {
    uint8_t *base;
    size_t cap;  /* mapped bytes */
    size_t used; /* the next entry's data goes here */
    uint64_t first_index;
    uint64_t last_index;
};

struct raft_log {
    struct raft_entry *entries;
    size_t count;
    size_t cap;
    /* blocks[retired .. block_count - 1] hold data; the ones before held only compacted
     * entries and wait for raft_log_release */
    struct raft_log_block *blocks;
    size_t retired;
    size_t block_count;
    size_t block_cap;
    uint64_t snapshot_index;
    uint64_t snapshot_term;
    struct raft_config snapshot_config;
    uint64_t bytes; /* entry data held */
};

enum raft_progress_state {
    RAFT_PROGRESS_PROBE = 1,
    RAFT_PROGRESS_REPLICATE,
    RAFT_PROGRESS_SNAPSHOT,
};

/* The leader's view of one other server. */
struct raft_peer {
    uint32_t id;
    bool voter;
    uint8_t state;                        /* enum raft_progress_state */
    uint64_t match;                       /* highest index known replicated (and durable) there */
    uint64_t next;                        /* next index to send */
    bool probe_paused;                    /* PROBE: one message until a reply or heartbeat */
    uint64_t inflight[RAFT_INFLIGHT_MAX]; /* last index of each unacknowledged append */
    uint32_t inflight_count;
    uint64_t snapshot_index; /* SNAPSHOT: the snapshot sent */
    uint64_t snapshot_sent_ms;
    uint64_t heard_ms;      /* last response of any kind (check-quorum) */
    uint64_t acked_round;   /* highest heartbeat round acknowledged (ReadIndex) */
    uint64_t acked_sent_ms; /* send time of the newest acknowledged heartbeat (lease) */
    uint64_t hb_match;      /* match at the previous heartbeat reply (stall detection) */
};

struct raft_read {
    uint64_t ctx;
    uint64_t index; /* 0 until the leader has committed in its term */
    uint64_t round; /* heartbeat round that must be acknowledged by a majority */
};

struct raft {
    uint32_t id;
    struct prng prng;
    uint64_t election_timeout_ms_min;
    uint64_t election_timeout_ms_max;
    uint64_t heartbeat_ms;
    uint64_t lease_drift_ms;
    uint64_t msg_bytes_max;
    uint64_t now_ms;

    enum raft_role role;
    uint64_t term;
    uint32_t vote;
    uint32_t leader_id;
    uint64_t leader_heard_ms; /* last time a leader of our term was heard (stickiness) */
    bool leader_heard;
    uint64_t election_deadline_ms;
    uint32_t votes_granted[RAFT_NODES_MAX]; /* ids that granted (pre-)vote */
    uint32_t votes_granted_count;
    uint32_t votes_rejected_count;

    struct raft_log log; /* its base (log.snapshot_index) trails the snapshot by log_trail */
    uint64_t log_trail;
    uint64_t log_trail_bytes;
    uint64_t retain_index; /* raft_retain: compaction keeps the entries after it (0: none) */
    struct raft_snapshot_meta snap; /* the newest snapshot (index, term, config; no data) */
    uint64_t commit;
    uint64_t applied;       /* handed out for apply */
    uint64_t persisted;     /* durable in the caller's log (RAFT_EVENT_PERSISTED) */
    uint64_t handed_last;   /* last index handed to the caller for persisting */
    uint64_t truncate_from; /* this step's truncation point for the caller, or 0 */

    struct raft_config config; /* latest in the log (or the snapshot's) */
    uint64_t config_index;     /* its entry's index; snapshot_index when from the snapshot */

    /* Leader state. */
    struct raft_peer peers[RAFT_NODES_MAX];
    uint32_t peer_count;
    uint64_t heartbeat_deadline_ms;
    uint64_t check_quorum_deadline_ms;
    uint64_t leader_since_ms;
    uint64_t round;            /* latest heartbeat round sent */
    uint64_t round_sent_ms;    /* its send time */
    uint64_t term_start_index; /* the no-op appended on election */
    uint32_t transfer_target;  /* 0: no transfer */
    uint64_t transfer_deadline_ms;
    bool transfer_timeout_sent;
    struct raft_read *reads;
    size_t read_count;

    /* This step's effects (reset at every raft_step). */
    bool hard_state_changed;
    struct raft_message *msgs;
    size_t msg_count;
    size_t msg_cap;
    struct raft_read_state *ready;
    size_t ready_count;
    size_t ready_cap;
    uint64_t *failed;
    size_t failed_count;
    size_t failed_cap;
    bool restore_pending;
    struct raft_snapshot_meta restore;
};

/* log.c */
void raft_log_init(struct raft_log *log, uint64_t snapshot_index, uint64_t snapshot_term,
                   const struct raft_config *config);
void raft_log_deinit(struct raft_log *log);
uint64_t raft_log_last_index(const struct raft_log *log);
uint64_t raft_log_last_term(const struct raft_log *log);
/* Term at index, or UINT64_MAX when unknown (compacted or beyond the end). */
uint64_t raft_log_term(const struct raft_log *log, uint64_t index);
const struct raft_entry *raft_log_get(const struct raft_log *log, uint64_t index);
/* Copies e (and its data) to the end; e->index must be last + 1. */
void raft_log_append(struct raft_log *log, const struct raft_entry *e);
/* Deletes entries with index >= from (from > snapshot_index). */
void raft_log_truncate(struct raft_log *log, uint64_t from);
/* Drops entries <= index (index <= last), keeping index's term as the snapshot's. */
void raft_log_compact(struct raft_log *log, uint64_t index, const struct raft_config *config);
/* Unmaps up to blocks of the blocks compaction or a reset left; true while some wait. */
bool raft_log_release(struct raft_log *log, size_t blocks);
/* Replaces everything by a snapshot. */
void raft_log_reset(struct raft_log *log, uint64_t index, uint64_t term,
                    const struct raft_config *config);
/* First index of the run of entries with index's term that ends at index. */
uint64_t raft_log_term_first_index(const struct raft_log *log, uint64_t index);
/* Last index with term <= term, 0 when none. */
uint64_t raft_log_last_index_of_term(const struct raft_log *log, uint64_t term);

/* raft.c */
struct raft_message *raft_send(struct raft *raft, uint8_t type, uint32_t to);
void raft_become_follower(struct raft *raft, uint64_t term, uint32_t leader_id);
void raft_become_leader(struct raft *raft);
void raft_set_leader(struct raft *raft, uint32_t leader_id);
void raft_check_invariants(const struct raft *raft);
uint32_t raft_quorum(const struct raft *raft);
bool raft_is_voter(const struct raft *raft, uint32_t id);
void raft_reset_election_timer(struct raft *raft);
/* Truncates the log from index, keeping persistence bookkeeping and config consistent. */
void raft_truncate(struct raft *raft, uint64_t from);
void raft_append_local(struct raft *raft, uint8_t type, const uint8_t *data, uint32_t bytes);
void raft_config_rescan(struct raft *raft);

/* election.c */
void raft_election_tick(struct raft *raft);
void raft_campaign(struct raft *raft, bool pre_vote, bool transfer);
void raft_recv_vote(struct raft *raft, const struct raft_message *m);
void raft_recv_vote_resp(struct raft *raft, const struct raft_message *m);
bool raft_in_lease_of_leader(const struct raft *raft);

/* replication.c */
void raft_peers_rebuild(struct raft *raft);
struct raft_peer *raft_peer_find(struct raft *raft, uint32_t id);
void raft_replicate(struct raft *raft, struct raft_peer *peer);
void raft_replicate_all(struct raft *raft);
void raft_broadcast_heartbeat(struct raft *raft);
bool raft_maybe_commit(struct raft *raft);
void raft_recv_append_resp(struct raft *raft, const struct raft_message *m);
void raft_recv_heartbeat_resp(struct raft *raft, const struct raft_message *m);
void raft_leader_tick(struct raft *raft);

/* recv_append_entries.c */
void raft_recv_append(struct raft *raft, const struct raft_message *m);
void raft_recv_heartbeat(struct raft *raft, const struct raft_message *m);
void raft_recv_install_snapshot(struct raft *raft, const struct raft_message *m);
void raft_snapshot_taken(struct raft *raft, uint64_t index);

/* read.c */
int raft_read_request(struct raft *raft, uint64_t ctx);
void raft_reads_advance(struct raft *raft);
void raft_reads_fail_all(struct raft *raft);
void raft_ready_push(struct raft *raft, uint64_t ctx, uint64_t index);

/* membership.c */
struct raft_change {
    enum raft_change_kind kind;
    uint32_t id;
    const char *addr;
    bool promote;
};
int raft_change(struct raft *raft, const struct raft_change *change);
void raft_maybe_promote(struct raft *raft, const struct raft_peer *peer);
int raft_transfer(struct raft *raft, uint32_t target);
void raft_transfer_check(struct raft *raft, struct raft_peer *peer);
void raft_recv_timeout_now(struct raft *raft, const struct raft_message *m);
void raft_config_committed(struct raft *raft);

#endif
