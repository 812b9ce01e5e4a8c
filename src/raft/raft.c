/*
 * Raft: construction, the step function (term rules, dispatch to the handlers in their
 * own files, timers), role changes and the assembly of effects. Never does I/O; see the
 * caller's contract in raft.h. After every step raft_check_invariants runs.
 */
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "raft/internal.h"
#include "raft/msg_codec.h"

void raft_options_default(struct raft_options *options) {
    ASSERT(options != NULL);
    memset(options, 0, sizeof(*options));
    options->election_timeout_ms_min = 1000;
    options->election_timeout_ms_max = 2000;
    options->heartbeat_ms = 100;
    options->lease_drift_ms = 100;
    options->msg_bytes_max = RAFT_MSG_BYTES_DEFAULT;
}

static int raft_new_validate(const struct raft_options *o, struct errmsg *msg) {
    if (o->id == 0) return errmsg_set(msg, ERR_INVALID, "raft: id must be nonzero");
    if (o->election_timeout_ms_min == 0 || o->election_timeout_ms_max <= o->election_timeout_ms_min)
        return errmsg_set(msg, ERR_INVALID, "raft: need 0 < election timeout min < max");
    if (o->heartbeat_ms == 0 || o->heartbeat_ms >= o->election_timeout_ms_min)
        return errmsg_set(msg, ERR_INVALID, "raft: need 0 < heartbeat < election timeout");
    if (o->lease_drift_ms >= o->election_timeout_ms_min)
        return errmsg_set(msg, ERR_INVALID, "raft: lease drift must be < election timeout");
    const struct raft_config *c = &o->snapshot_config;
    /* No configuration: a server joining a running cluster, which waits for a leader to
     * send it one (it never campaigns before it is a voter in it). */
    bool joining = c->count == 0 && o->snapshot_index == 0;
    if (!joining && (c->count == 0 || c->count > RAFT_NODES_MAX))
        return errmsg_set(msg, ERR_CONFIG, "raft: configuration needs 1..%d servers",
                          RAFT_NODES_MAX);
    uint8_t config_bytes[RAFT_CONFIG_BYTES_MAX];
    struct raft_config check;
    if (!joining &&
        raft_config_decode(config_bytes, raft_config_encode(c, config_bytes), &check) != 0)
        return errmsg_set(msg, ERR_CONFIG, "raft: configuration ids must be unique, nonzero");
    if (o->snapshot_index == 0 && o->snapshot_term != 0)
        return errmsg_set(msg, ERR_INVALID, "raft: snapshot term without a snapshot");
    if (o->hard_state.term < o->snapshot_term)
        return errmsg_set(msg, ERR_INVALID, "raft: term older than the snapshot's");
    for (size_t i = 0; i < o->entry_count; i++) {
        const struct raft_entry *e = &o->entries[i];
        uint64_t prev_term = i == 0 ? o->snapshot_term : o->entries[i - 1].term;
        if (e->index != o->snapshot_index + 1 + i || e->term < prev_term ||
            e->term > o->hard_state.term || e->data_bytes > RAFT_ENTRY_BYTES_MAX)
            return errmsg_set(msg, ERR_INVALID, "raft: recovered entry %zu out of order", i);
    }
    return 0;
}

int raft_new(const struct raft_options *options, struct raft **out, struct errmsg *msg) {
    ASSERT(options != NULL && out != NULL);
    *out = NULL;
    int rc = raft_new_validate(options, msg);
    if (rc != 0) return rc;
    struct raft *raft = base_calloc(1, sizeof(*raft));
    raft->id = options->id;
    prng_init(&raft->prng, options->seed ^ ((uint64_t)options->id << 32));
    raft->election_timeout_ms_min = options->election_timeout_ms_min;
    raft->election_timeout_ms_max = options->election_timeout_ms_max;
    raft->heartbeat_ms = options->heartbeat_ms;
    raft->lease_drift_ms = options->lease_drift_ms;
    raft->msg_bytes_max = options->msg_bytes_max ? options->msg_bytes_max : RAFT_MSG_BYTES_DEFAULT;
    raft->now_ms = options->now_ms;
    raft->term = options->hard_state.term;
    raft->vote = options->hard_state.vote;
    raft_log_init(&raft->log, options->snapshot_index, options->snapshot_term,
                  &options->snapshot_config);
    raft->log_trail = options->log_trail_entries;
    raft->log_trail_bytes = options->log_trail_bytes;
    raft->snap.index = options->snapshot_index;
    raft->snap.term = options->snapshot_term;
    raft->snap.config = options->snapshot_config;
    for (size_t i = 0; i < options->entry_count; i++)
        raft_log_append(&raft->log, &options->entries[i]);
    /* Everything recovered is committed at least up to the snapshot, and durable. */
    raft->commit = raft->applied = options->snapshot_index;
    raft->persisted = raft->handed_last = raft_log_last_index(&raft->log);
    raft_config_rescan(raft);
    raft_become_follower(raft, raft->term, 0);
    raft->hard_state_changed = false;
    raft_check_invariants(raft);
    *out = raft;
    return 0;
}

void raft_free(struct raft *raft) {
    if (raft == NULL) return;
    raft_log_deinit(&raft->log);
    free(raft->msgs);
    free(raft->ready);
    free(raft->failed);
    free(raft->reads);
    free(raft);
}

uint32_t raft_quorum(const struct raft *raft) {
    return raft_config_voter_count(&raft->config) / 2 + 1;
}

bool raft_is_voter(const struct raft *raft, uint32_t id) {
    const struct raft_server *s = raft_config_find(&raft->config, id);
    return s != NULL && s->voter;
}

void raft_reset_election_timer(struct raft *raft) {
    /* Raft §5.2: randomized election timeouts make split votes rare. */
    raft->election_deadline_ms =
        raft->now_ms +
        prng_range(&raft->prng, raft->election_timeout_ms_min, raft->election_timeout_ms_max);
}

void raft_set_leader(struct raft *raft, uint32_t leader_id) {
    /* Raft §5.2 (election safety): at most one leader per term. */
    if (raft->leader_id != 0 && leader_id != 0) ASSERT(raft->leader_id == leader_id);
    raft->leader_id = leader_id;
}

struct raft_message *raft_send(struct raft *raft, uint8_t type, uint32_t to) {
    ASSERT(to != raft->id && to != 0);
    ASSERT(type >= RAFT_MSG_APPEND && type <= RAFT_MSG_TYPE_LAST);
    if (raft->msg_count == raft->msg_cap) {
        raft->msg_cap = raft->msg_cap == 0 ? 32 : raft->msg_cap * 2;
        raft->msgs = base_realloc(raft->msgs, raft->msg_cap * sizeof(*raft->msgs));
    }
    struct raft_message *m = &raft->msgs[raft->msg_count++];
    memset(m, 0, sizeof(*m));
    m->type = type;
    m->from = raft->id;
    m->to = to;
    m->term = raft->term;
    return m;
}

void raft_become_follower(struct raft *raft, uint64_t term, uint32_t leader_id) {
    ASSERT(term >= raft->term);
    if (term > raft->term) {
        raft->term = term;
        raft->vote = 0;
        raft->leader_id = 0;
        raft->hard_state_changed = true;
    }
    if (raft->role == RAFT_LEADER) raft_reads_fail_all(raft);
    raft->role = RAFT_FOLLOWER;
    raft_set_leader(raft, leader_id);
    raft->transfer_target = 0;
    raft->peer_count = 0;
    raft->votes_granted_count = raft->votes_rejected_count = 0;
    raft->leader_heard = leader_id != 0;
    raft->leader_heard_ms = raft->now_ms;
    raft_reset_election_timer(raft);
    ASSERT(raft->role == RAFT_FOLLOWER);
}

void raft_become_leader(struct raft *raft) {
    ASSERT(raft->role == RAFT_CANDIDATE);
    ASSERT(raft->vote == raft->id);
    raft->role = RAFT_LEADER;
    raft_set_leader(raft, raft->id);
    raft->transfer_target = 0;
    raft->round = 0;
    raft->round_sent_ms = 0;
    raft->leader_since_ms = raft->now_ms;
    raft->check_quorum_deadline_ms = raft->now_ms + raft->election_timeout_ms_min;
    raft_peers_rebuild(raft);
    /* Raft §5.4.2 / thesis §6.4: commit an entry of the new term at once, so that earlier
     * entries commit and ReadIndex learns the commit index. */
    raft_append_local(raft, RAFT_ENTRY_NOOP, NULL, 0);
    raft->term_start_index = raft_log_last_index(&raft->log);
    raft_replicate_all(raft);
    raft_broadcast_heartbeat(raft);
}

void raft_truncate(struct raft *raft, uint64_t from) {
    /* Raft §5.3 / Figure 3: committed entries are never replaced. */
    ASSERT(from > raft->commit);
    ASSERT(from <= raft_log_last_index(&raft->log));
    raft_log_truncate(&raft->log, from);
    if (from <= raft->handed_last) {
        /* The caller already has (or is writing) entries from here: make it delete them. */
        if (raft->truncate_from == 0 || from < raft->truncate_from) raft->truncate_from = from;
        raft->handed_last = from - 1;
    }
    if (raft->persisted >= from) raft->persisted = from - 1;
    if (raft->config_index >= from) raft_config_rescan(raft);
}

void raft_append_local(struct raft *raft, uint8_t type, const uint8_t *data, uint32_t bytes) {
    ASSERT(raft->role == RAFT_LEADER);
    struct raft_entry e = {.term = raft->term,
                           .index = raft_log_last_index(&raft->log) + 1,
                           .type = type,
                           .data_bytes = bytes,
                           .data = data};
    raft_log_append(&raft->log, &e);
    if (type == RAFT_ENTRY_CONFIG) raft_config_rescan(raft);
}

/* Thesis §4.1: a server uses the latest configuration in its log, committed or not. */
void raft_config_rescan(struct raft *raft) {
    const struct raft_log *log = &raft->log;
    for (uint64_t i = raft_log_last_index(log); i > log->snapshot_index; i--) {
        const struct raft_entry *e = raft_log_get(log, i);
        if (e->type != RAFT_ENTRY_CONFIG) continue;
        int rc = raft_config_decode(e->data, e->data_bytes, &raft->config);
        ASSERT(rc == 0); /* validated when received */
        raft->config_index = i;
        if (raft->role == RAFT_LEADER) raft_peers_rebuild(raft);
        return;
    }
    raft->config = log->snapshot_config;
    raft->config_index = log->snapshot_index;
    if (raft->role == RAFT_LEADER) raft_peers_rebuild(raft);
}

void raft_check_invariants(const struct raft *raft) {
    const struct raft_log *log = &raft->log;
    uint64_t last = raft_log_last_index(log);
    ASSERT(log->snapshot_index <= raft->snap.index && raft->snap.index <= raft->applied);
    ASSERT(raft->applied <= raft->commit);
    ASSERT(raft->commit <= last);
    ASSERT(raft->persisted <= last);
    ASSERT(raft->handed_last <= last);
    ASSERT(raft->config_index <= last);
    if (raft->role == RAFT_LEADER) ASSERT(raft->leader_id == raft->id);
    if (raft->role == RAFT_CANDIDATE) ASSERT(raft->vote == raft->id);
    ASSERT(raft_log_last_term(log) <= raft->term);
#ifdef CAPKV_DEBUG
    /* O(n): terms never decrease along the log (Raft §5.3). */
    uint64_t prev = log->snapshot_term;
    for (size_t i = 0; i < log->count; i++) {
        ASSERT(log->entries[i].term >= prev);
        ASSERT(log->entries[i].index == log->snapshot_index + 1 + i);
        prev = log->entries[i].term;
    }
#endif
}

enum raft_role raft_role(const struct raft *raft) {
    return raft->role;
}
uint32_t raft_id(const struct raft *raft) {
    return raft->id;
}
uint64_t raft_term(const struct raft *raft) {
    return raft->term;
}
uint32_t raft_vote(const struct raft *raft) {
    return raft->vote;
}
uint32_t raft_leader_id(const struct raft *raft) {
    return raft->leader_id;
}
uint64_t raft_commit_index(const struct raft *raft) {
    return raft->commit;
}
uint64_t raft_match_index(const struct raft *raft, uint32_t id) {
    if (raft->role != RAFT_LEADER) return 0;
    for (uint32_t i = 0; i < raft->peer_count; i++) {
        if (raft->peers[i].id == id) return raft->peers[i].match;
    }
    return 0;
}

uint64_t raft_peer_quiet_ms(const struct raft *raft, uint32_t id) {
    if (raft->role != RAFT_LEADER) return UINT64_MAX;
    for (uint32_t i = 0; i < raft->peer_count; i++) {
        if (raft->peers[i].id == id) return raft->now_ms - raft->peers[i].heard_ms;
    }
    return UINT64_MAX;
}

uint64_t raft_applied_index(const struct raft *raft) {
    return raft->applied;
}
uint64_t raft_persisted_index(const struct raft *raft) {
    return raft->persisted;
}
uint64_t raft_log_bytes(const struct raft *raft) {
    return raft->log.bytes;
}
bool raft_release(struct raft *raft, size_t blocks) {
    return raft_log_release(&raft->log, blocks);
}
void raft_retain(struct raft *raft, uint64_t index) {
    raft->retain_index = index;
}
uint64_t raft_first_index(const struct raft *raft) {
    return raft->log.snapshot_index + 1;
}
uint64_t raft_last_index(const struct raft *raft) {
    return raft_log_last_index(&raft->log);
}
uint64_t raft_snapshot_index(const struct raft *raft) {
    return raft->snap.index;
}
uint64_t raft_term_start_index(const struct raft *raft) {
    return raft->role == RAFT_LEADER ? raft->term_start_index : 0;
}

bool raft_term_at(const struct raft *raft, uint64_t index, uint64_t *term) {
    uint64_t t = raft_log_term(&raft->log, index);
    if (t == UINT64_MAX) return false;
    *term = t;
    return true;
}

const struct raft_entry *raft_entry_at(const struct raft *raft, uint64_t index) {
    return raft_log_get(&raft->log, index);
}

const struct raft_config *raft_config(const struct raft *raft) {
    return &raft->config;
}

uint64_t raft_config_index(const struct raft *raft) {
    return raft->config_index;
}

bool raft_config_at(const struct raft *raft, uint64_t index, struct raft_config *out) {
    const struct raft_log *log = &raft->log;
    if (index < log->snapshot_index || index > raft_log_last_index(log)) return false;
    for (uint64_t i = index; i > log->snapshot_index; i--) {
        const struct raft_entry *e = raft_log_get(log, i);
        if (e->type != RAFT_ENTRY_CONFIG) continue;
        return raft_config_decode(e->data, e->data_bytes, out) == 0;
    }
    *out = log->snapshot_config;
    return true;
}

bool raft_lease_valid(const struct raft *raft, uint64_t now_ms) {
    if (raft->role != RAFT_LEADER) return false;
    /* Every entry committed by earlier leaders is committed here (an entry of this term
     * is); the caller must also have applied them (raft_term_start_index: cp_lease_read_ok),
     * since committed is not applied when the engine applies only what is durable. */
    if (raft_log_term(&raft->log, raft->commit) != raft->term) return false;
    /* Thesis §6.4.1: followers acknowledged heartbeats sent at t will not vote for anyone
     * else before t + election_timeout_ms_min (stickiness); minus a drift margin. */
    uint64_t sent[RAFT_NODES_MAX];
    uint32_t n = 0;
    if (raft_is_voter(raft, raft->id)) sent[n++] = now_ms;
    for (uint32_t i = 0; i < raft->peer_count; i++)
        if (raft->peers[i].voter) sent[n++] = raft->peers[i].acked_sent_ms;
    uint32_t quorum = raft_quorum(raft);
    ASSERT(n >= quorum);
    uint32_t fresh = 0;
    uint64_t span = raft->election_timeout_ms_min - raft->lease_drift_ms;
    for (uint32_t i = 0; i < n; i++)
        if (sent[i] != 0 && sent[i] + span > now_ms) fresh++;
    return fresh >= quorum;
}
