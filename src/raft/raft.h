/*
 * Raft consensus, as a pure library: events in, effects out (etcd-io/raft's Step/Ready,
 * canonical raft's io interface). It never reads a clock, touches a socket or a file,
 * prints, or uses unseeded randomness: time comes in with every event (now_ms, monotonic),
 * randomness from a struct prng seeded by raft_init. Same events, same effects.
 *
 * Implements: leader election with randomized timeouts, pre-vote (thesis §9.6),
 * check-quorum and leader stickiness (§6.2, §9.6), log replication with pipelining and
 * batching and fast backtracking, commit by current-term majority (§5.4.2), log compaction
 * and InstallSnapshot (§7), single-server membership changes with learners (thesis §4.1,
 * §4.2.1), leadership transfer (thesis §3.10), ReadIndex and lease reads (thesis §6.4).
 *
 * Indexes and terms are 1-based; 0 means "none" (index 0 is the empty log's last index).
 *
 * THE CALLER'S CONTRACT. Every raft_step() fills a struct raft_effects. Carry it out in
 * this order:
 *   (1) persist: if effects.restore is set, store that snapshot, discard the whole stored
 *       log, and restore the state machine from it; if hard_state_changed, store term and
 *       vote; if truncate_from != 0, delete stored entries with index >= truncate_from;
 *       append effects.entries; fsync.
 *   (2) only after (1) is durable, send effects.messages (they may carry votes and
 *       acknowledgements that promise (1) survives a crash). A message of type
 *       RAFT_MSG_INSTALL_SNAPSHOT leaves raft without bytes: attach the state-machine
 *       snapshot taken at message.index (the one announced with RAFT_EVENT_SNAPSHOT_TAKEN
 *       or restored) in snapshot_data / snapshot_bytes before sending. Or deliver the
 *       snapshot some other way (in chunks, say), and then the message with index, log_term
 *       and config of the snapshot delivered, which may be an older one still being sent
 *       (raft_retain keeps the entries that follow it); the receiver's raft then restores
 *       with effects.restore->data as the message carried it (NULL when it carried none).
 *   (3) apply effects.committed in order, then serve effects.reads once applied >= index,
 *       fail effects.reads_failed (leadership lost: outcome "not leader").
 *   (4) if entries were appended in (1), report RAFT_EVENT_PERSISTED with the index and
 *       term of the last one (the leader counts itself in a commit majority only for
 *       persisted indexes). Ask for a RAFT_EVENT_TICK no later than wake_at_ms.
 * Persistence may run asynchronously (group commit on a worker thread): then later steps
 * may run while (1) is in progress, and the caller holds each step's messages, applies and
 * reads until the persists of that step AND of every earlier step are durable (a FIFO).
 * Every pointer in effects is borrowed from raft and valid until the next raft call: copy
 * what is held across calls.
 *
 * Proposals: RAFT_EVENT_PROPOSE on the leader returns effects.proposed_index/_term. The
 * proposal succeeded when an entry with that index AND term is applied; if that index is
 * applied with another term, or the node loses leadership first, the outcome is unknown.
 */
#ifndef CAPKV_RAFT_RAFT_H
#define CAPKV_RAFT_RAFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define RAFT_NODES_MAX 9             /* servers (voters + learners) in a configuration */
#define RAFT_INFLIGHT_MAX 16         /* unacknowledged append messages per follower */
#define RAFT_MSG_ENTRIES_MAX 256     /* entries in one append message */
#define RAFT_MSG_BYTES_DEFAULT 65536 /* entry bytes per append message (one entry at least) */
#define RAFT_ENTRY_BYTES_MAX (64u * 1024 * 1024) /* data of one entry */
#define RAFT_READS_MAX 4096                      /* pending ReadIndex requests */
#define RAFT_APPLY_ENTRIES_MAX 1024              /* committed entries handed out per step */
#define RAFT_SNAPSHOT_BYTES_MAX (1ull << 40)     /* state-machine snapshot in one message */

enum raft_role { RAFT_FOLLOWER = 1, RAFT_PRE_CANDIDATE, RAFT_CANDIDATE, RAFT_LEADER };

enum raft_entry_type {
    RAFT_ENTRY_NORMAL = 1, /* a proposal's data, opaque to raft */
    RAFT_ENTRY_NOOP = 2,   /* appended by a new leader (§5.4.2, §6.4): apply does nothing */
    RAFT_ENTRY_CONFIG = 3, /* data is an encoded struct raft_config (raft_config_encode) */
};

struct raft_entry {
    uint64_t term;
    uint64_t index;
    uint8_t type; /* enum raft_entry_type */
    uint32_t data_bytes;
    const uint8_t *data; /* owned by whoever owns the entry; NULL when data_bytes == 0 */
};

#define RAFT_ADDR_BYTES_MAX 64 /* a server's address, NUL included: opaque to raft */

struct raft_server {
    uint32_t id;  /* nonzero */
    bool voter;   /* false: a learner, receives the log, never votes or counts */
    bool promote; /* a learner the leader promotes to voter once it has caught up */
    char addr[RAFT_ADDR_BYTES_MAX]; /* where its peers reach it ("" when unknown) */
};

struct raft_config {
    uint32_t count;
    struct raft_server servers[RAFT_NODES_MAX];
};

struct raft_hard_state {
    uint64_t term;
    uint32_t vote; /* 0: no vote in term */
};

enum raft_msg_type {
    RAFT_MSG_APPEND = 1,       /* index/log_term: previous entry; entries; commit */
    RAFT_MSG_APPEND_RESP,      /* index: last matching index, or the rejected previous index */
    RAFT_MSG_VOTE,             /* index/log_term: candidate's last entry */
    RAFT_MSG_VOTE_RESP,        /* reject */
    RAFT_MSG_PRE_VOTE,         /* term: the term the candidate would campaign in */
    RAFT_MSG_PRE_VOTE_RESP,    /* term: the pre-vote's term when granted */
    RAFT_MSG_HEARTBEAT,        /* commit, round, sent_ms */
    RAFT_MSG_HEARTBEAT_RESP,   /* round, sent_ms echoed */
    RAFT_MSG_INSTALL_SNAPSHOT, /* index/log_term: last included; config; snapshot bytes */
    RAFT_MSG_TIMEOUT_NOW,      /* leadership transfer: campaign now (thesis §3.10) */
};
#define RAFT_MSG_TYPE_LAST RAFT_MSG_TIMEOUT_NOW

struct raft_message {
    uint8_t type; /* enum raft_msg_type */
    uint32_t from;
    uint32_t to;
    uint64_t term;
    uint64_t index;
    uint64_t log_term;
    uint64_t commit;
    bool reject;
    bool transfer;       /* VOTE: campaign started by TimeoutNow, ignores stickiness */
    uint64_t hint_index; /* APPEND_RESP reject: follower's first index of hint_term, or */
    uint64_t hint_term;  /* its last index + 1 when hint_term == 0 (fast backtracking);
                          * HEARTBEAT_RESP: hint_index is its last index + 1 (0: not
                          * said, an older release) */
    uint64_t round;      /* HEARTBEAT(_RESP): leader's heartbeat round (ReadIndex) */
    uint64_t sent_ms;    /* HEARTBEAT(_RESP): leader's clock when sent (lease) */
    uint32_t entry_count;
    const struct raft_entry *entries; /* APPEND only */
    struct raft_config config;        /* INSTALL_SNAPSHOT: configuration at index */
    const uint8_t *snapshot_data;     /* INSTALL_SNAPSHOT: attached by the caller */
    uint64_t snapshot_bytes;
};

/* A snapshot to store and restore the state machine from (effects.restore). */
struct raft_snapshot_meta {
    uint64_t index;
    uint64_t term;
    struct raft_config config;
    const uint8_t *data; /* borrowed from the event's message */
    uint64_t data_bytes;
};

struct raft_read_state {
    uint64_t ctx;   /* the caller's id from RAFT_EVENT_READ */
    uint64_t index; /* serve the read once applied >= index */
};

enum raft_change_kind { RAFT_CHANGE_ADD_LEARNER = 1, RAFT_CHANGE_PROMOTE, RAFT_CHANGE_REMOVE };

enum raft_event_kind {
    RAFT_EVENT_TICK = 1,       /* only time passes */
    RAFT_EVENT_MESSAGE,        /* a message from a peer (decoded, validated) */
    RAFT_EVENT_PERSISTED,      /* entries up to (index, term) are durable */
    RAFT_EVENT_PROPOSE,        /* leader: append data; effects.proposed_index/_term */
    RAFT_EVENT_READ,           /* leader: ReadIndex for ctx; answered in effects.reads */
    RAFT_EVENT_SNAPSHOT_TAKEN, /* the state machine was snapshotted at index <= applied */
    RAFT_EVENT_CHANGE,         /* leader: one-server membership change */
    RAFT_EVENT_TRANSFER,       /* leader: hand leadership to target */
    RAFT_EVENT_REPLICATE,      /* leader: send what deferred proposals appended */
};

struct raft_event {
    enum raft_event_kind kind;
    uint64_t now_ms; /* monotonic, from the caller; raft never goes back in time */
    union {
        const struct raft_message *message; /* borrowed for the call */
        struct {
            uint64_t index;
            uint64_t term;
        } persisted;
        struct {
            const uint8_t *data; /* borrowed; copied into the log */
            uint32_t bytes;
            bool defer; /* more proposals follow: append only; RAFT_EVENT_REPLICATE sends
                         * them all in one batch per follower */
        } propose;
        uint64_t read_ctx;
        uint64_t snapshot_index;
        struct {
            enum raft_change_kind kind;
            uint32_t id;
            const char *addr; /* ADD_LEARNER: the new server's address (copied) */
            bool promote;     /* ADD_LEARNER: promote it once caught up */
        } change;
        uint32_t transfer_target;
    };
};

struct raft_effects {
    bool hard_state_changed;
    struct raft_hard_state hard_state;
    const struct raft_snapshot_meta *restore; /* NULL: nothing to restore */
    uint64_t truncate_from;                   /* 0: nothing to delete */
    const struct raft_entry *entries;         /* to append to the stored log */
    size_t entry_count;
    const struct raft_message *messages; /* to send after the persist is durable */
    size_t message_count;
    const struct raft_entry *committed; /* to apply, in order */
    size_t committed_count;
    const struct raft_read_state *reads;
    size_t read_count;
    const uint64_t *reads_failed;
    size_t reads_failed_count;
    uint64_t proposed_index; /* PROPOSE / CHANGE: where the entry went */
    uint64_t proposed_term;
    uint64_t wake_at_ms; /* tick no later than this */
};

struct raft_options {
    uint32_t id;
    uint64_t seed; /* for randomized election timeouts */
    uint64_t election_timeout_ms_min;
    uint64_t election_timeout_ms_max; /* > min; each timeout is uniform in [min, max) */
    uint64_t heartbeat_ms;            /* < election_timeout_ms_min */
    uint64_t lease_drift_ms;          /* clock-drift margin taken off a lease */
    uint64_t msg_bytes_max;           /* batching; 0 means RAFT_MSG_BYTES_DEFAULT */
    /* Entries kept in memory before a snapshot's index once it is taken, so a follower
     * only slightly behind still gets entries instead of the whole snapshot (0: none). */
    uint64_t log_trail_entries;
    uint64_t log_trail_bytes; /* and at most this much entry data (0: no bound but entries) */
    /* Recovered state (all borrowed; the entries are copied). A new cluster: term 0, no
     * snapshot (index 0) and snapshot_config = the initial voters on every server. */
    struct raft_hard_state hard_state;
    uint64_t snapshot_index;
    uint64_t snapshot_term;
    struct raft_config snapshot_config;
    const struct raft_entry *entries; /* snapshot_index + 1 ... in order, all durable */
    size_t entry_count;
    uint64_t now_ms;
};

struct raft;

/* Fills options with defaults: timeouts 1000..2000 ms, heartbeat 100 ms, drift 100 ms. */
void raft_options_default(struct raft_options *options);

/* Validates options and returns a new raft in *out (callee allocates; raft_free frees).
 * options borrowed. ERR_INVALID / ERR_CONFIG with detail in msg. */
int raft_new(const struct raft_options *options, struct raft **out, struct errmsg *msg);
void raft_free(struct raft *raft);

/* Handles one event; fills *out (borrowed pointers, see the contract above). Returns 0 or
 * ERR_NOTLEADER, ERR_TRANSFERRING, ERR_CONFIG_PENDING, ERR_LIMIT, ERR_INVALID; on error
 * out still holds valid (usually empty) effects. event and its pointers are borrowed. */
int raft_step(struct raft *raft, const struct raft_event *event, struct raft_effects *out);

/* Inspection, for the node and the simulator's checkers. */
enum raft_role raft_role(const struct raft *raft);
uint32_t raft_id(const struct raft *raft);
uint64_t raft_term(const struct raft *raft);
uint32_t raft_vote(const struct raft *raft);
uint32_t raft_leader_id(const struct raft *raft); /* 0: unknown */
uint64_t raft_commit_index(const struct raft *raft);
uint64_t raft_applied_index(const struct raft *raft);
/* Leader only: the highest index known durable on server id (0 otherwise or unknown). */
uint64_t raft_match_index(const struct raft *raft, uint32_t id);
/* Leader only: ms since server id last answered (UINT64_MAX otherwise or unknown). */
uint64_t raft_peer_quiet_ms(const struct raft *raft, uint32_t id);
uint64_t raft_persisted_index(const struct raft *raft);
uint64_t raft_first_index(const struct raft *raft); /* first entry held (a trail may precede
                                                     * the snapshot index) */
uint64_t raft_last_index(const struct raft *raft);
uint64_t raft_snapshot_index(const struct raft *raft);
/* Leader only: the index of the no-op it appended when elected, the first of its term; every
 * entry after it was proposed by this leader (0 when not leader). */
uint64_t raft_term_start_index(const struct raft *raft);
/* Term of the entry at index (the snapshot's term at its index, 0 at index 0); false
 * when index is compacted away or beyond the log. */
bool raft_term_at(const struct raft *raft, uint64_t index, uint64_t *term);
/* Returns borrowed (valid until the next raft call) or NULL outside first..last. */
const struct raft_entry *raft_entry_at(const struct raft *raft, uint64_t index);
/* Returns borrowed: the latest configuration in the log (it takes effect when appended). */
const struct raft_config *raft_config(const struct raft *raft);
/* The index of the entry holding raft_config (the snapshot's index if none is newer). */
uint64_t raft_config_index(const struct raft *raft);
/* The configuration in effect at index (for a snapshot taken there): the newest one at or
 * before it. False when index is outside the log (before the snapshot, after the end). */
bool raft_config_at(const struct raft *raft, uint64_t index, struct raft_config *out);
/* Leader only: a majority acknowledged heartbeats sent within election_timeout_ms_min -
 * lease_drift_ms of now, so no other leader can exist yet, and an entry of this term is
 * committed: reads may be served locally once the state machine has applied up to
 * raft_term_start_index (the caller's part). */
bool raft_lease_valid(const struct raft *raft, uint64_t now_ms);

/* Bytes of entry data raft holds in memory (its log). */
uint64_t raft_log_bytes(const struct raft *raft);
/* Memory a compaction freed goes back to the system here, up to blocks mapped blocks
 * (1 MiB each) per call, so that no single step pays for hundreds of megabytes; true while
 * some wait. */
bool raft_release(struct raft *raft, size_t blocks);
/* Compaction after a snapshot keeps every entry after index in memory (0 lifts it): a
 * caller still sending a follower an older snapshot at index keeps what must follow it. */
void raft_retain(struct raft *raft, uint64_t index);

/* Configuration entry data: encode into out (at least RAFT_CONFIG_BYTES_MAX bytes); decode
 * validates everything (ERR_PROTOCOL). Both borrow their arguments. Format 2: magic:u32
 * count:u32, then per server id:u32 flags:u8 (1 voter, 2 promote) len:u8 address bytes;
 * format 1 (read only): count:u32, then per server id:u32 voter:u8. */
#define RAFT_CONFIG_MAGIC 0x32464352u /* "RCF2" */
#define RAFT_CONFIG_BYTES_MAX (8 + RAFT_NODES_MAX * (6 + RAFT_ADDR_BYTES_MAX - 1))
size_t raft_config_encode(const struct raft_config *config, uint8_t *out);
int raft_config_decode(const uint8_t *bytes, size_t len, struct raft_config *out);
/* Helpers on configurations. */
const struct raft_server *raft_config_find(const struct raft_config *config, uint32_t id);
uint32_t raft_config_voter_count(const struct raft_config *config);

#endif
