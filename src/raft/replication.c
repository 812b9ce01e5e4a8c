/*
 * The leader's side of log replication (Raft §5.3): one progress record per follower,
 * probing for the match point one message at a time (fast backtracking with the
 * follower's conflict hint), then pipelining up to RAFT_INFLIGHT_MAX batched append
 * messages with next advanced optimistically; InstallSnapshot when the entries a follower
 * needs were compacted (§7); commit by a majority of the current term (§5.4.2);
 * heartbeats that also carry ReadIndex rounds and lease timestamps (thesis §6.4), and
 * check-quorum (thesis §6.2).
 */
#include <string.h>

#include "base/assert.h"
#include "raft/internal.h"

struct raft_peer *raft_peer_find(struct raft *raft, uint32_t id) {
    for (uint32_t i = 0; i < raft->peer_count; i++)
        if (raft->peers[i].id == id) return &raft->peers[i];
    return NULL;
}

static void raft_peer_init(struct raft *raft, struct raft_peer *p, uint32_t id) {
    memset(p, 0, sizeof(*p));
    p->id = id;
    p->state = RAFT_PROGRESS_PROBE;
    p->next = raft_log_last_index(&raft->log) + 1;
    p->heard_ms = raft->now_ms; /* a grace period before check-quorum counts it dead */
}

void raft_peers_rebuild(struct raft *raft) {
    struct raft_peer old[RAFT_NODES_MAX];
    uint32_t old_count = raft->peer_count;
    memcpy(old, raft->peers, sizeof(old));
    raft->peer_count = 0;
    for (uint32_t i = 0; i < raft->config.count; i++) {
        const struct raft_server *s = &raft->config.servers[i];
        if (s->id == raft->id) continue;
        struct raft_peer *p = &raft->peers[raft->peer_count++];
        uint32_t j = 0;
        while (j < old_count && old[j].id != s->id) j++;
        if (j < old_count) {
            *p = old[j];
        } else {
            raft_peer_init(raft, p, s->id);
        }
        p->voter = s->voter;
    }
    ASSERT(raft->peer_count <= raft->config.count);
    if (raft->transfer_target != 0 && raft_peer_find(raft, raft->transfer_target) == NULL)
        raft->transfer_target = 0;
}

static void raft_replicate_snapshot(struct raft *raft, struct raft_peer *peer) {
    /* Raft §7: the entries this follower needs are gone; send the snapshot instead. The
     * caller attaches the state-machine bytes (see raft.h). */
    const struct raft_log *log = &raft->log;
    struct raft_message *m = raft_send(raft, RAFT_MSG_INSTALL_SNAPSHOT, peer->id);
    ASSERT(raft->snap.index >= log->snapshot_index); /* the log may trail the snapshot */
    m->index = raft->snap.index;
    m->log_term = raft->snap.term;
    m->config = raft->snap.config;
    m->commit = raft->commit;
    peer->state = RAFT_PROGRESS_SNAPSHOT;
    peer->snapshot_index = raft->snap.index;
    peer->snapshot_sent_ms = raft->now_ms;
    peer->inflight_count = 0;
}

/* How many entries from next fit in one message (batching by count and bytes). */
static uint32_t raft_replicate_batch(const struct raft *raft, uint64_t next) {
    uint64_t last = raft_log_last_index(&raft->log);
    uint64_t bytes = 0;
    uint32_t count = 0;
    for (uint64_t i = next; i <= last && count < RAFT_MSG_ENTRIES_MAX; i++) {
        const struct raft_entry *e = raft_log_get(&raft->log, i);
        if (count > 0 && bytes + e->data_bytes > raft->msg_bytes_max) break;
        bytes += e->data_bytes;
        count++;
    }
    return count;
}

static void raft_replicate_send(struct raft *raft, struct raft_peer *peer, uint32_t count) {
    struct raft_message *m = raft_send(raft, RAFT_MSG_APPEND, peer->id);
    m->index = peer->next - 1;
    m->log_term = raft_log_term(&raft->log, m->index);
    ASSERT(m->log_term != UINT64_MAX);
    m->entry_count = count; /* entries pointer filled when the effects are assembled */
    m->commit = raft->commit;
    if (peer->state == RAFT_PROGRESS_PROBE) {
        peer->probe_paused = true;
        return;
    }
    /* Pipelining: assume success and move on; a rejection falls back to probing. */
    ASSERT(peer->inflight_count < RAFT_INFLIGHT_MAX);
    peer->next += count;
    peer->inflight[peer->inflight_count++] = peer->next - 1;
}

void raft_replicate(struct raft *raft, struct raft_peer *peer) {
    ASSERT(raft->role == RAFT_LEADER);
    for (;;) {
        if (peer->state == RAFT_PROGRESS_SNAPSHOT) return;
        if (peer->state == RAFT_PROGRESS_PROBE && peer->probe_paused) return;
        if (peer->state == RAFT_PROGRESS_REPLICATE && peer->inflight_count == RAFT_INFLIGHT_MAX)
            return;
        if (peer->next <= raft->log.snapshot_index) {
            raft_replicate_snapshot(raft, peer);
            return;
        }
        uint32_t count = raft_replicate_batch(raft, peer->next);
        if (count == 0 && peer->state == RAFT_PROGRESS_REPLICATE) return;
        raft_replicate_send(raft, peer, count);
        if (peer->state == RAFT_PROGRESS_PROBE) return;
    }
}

void raft_replicate_all(struct raft *raft) {
    for (uint32_t i = 0; i < raft->peer_count; i++) raft_replicate(raft, &raft->peers[i]);
}

void raft_broadcast_heartbeat(struct raft *raft) {
    ASSERT(raft->role == RAFT_LEADER);
    raft->round++;
    raft->round_sent_ms = raft->now_ms;
    raft->heartbeat_deadline_ms = raft->now_ms + raft->heartbeat_ms;
    for (uint32_t i = 0; i < raft->peer_count; i++) {
        struct raft_peer *p = &raft->peers[i];
        struct raft_message *m = raft_send(raft, RAFT_MSG_HEARTBEAT, p->id);
        /* A follower may not hold entries up to our commit yet: never tell it more. */
        m->commit = p->match < raft->commit ? p->match : raft->commit;
        m->round = raft->round;
        m->sent_ms = raft->now_ms;
    }
}

static void raft_maybe_commit_sort(uint64_t *v, uint32_t n) {
    for (uint32_t i = 1; i < n; i++) {
        uint64_t x = v[i];
        uint32_t j = i;
        for (; j > 0 && v[j - 1] < x; j--) v[j] = v[j - 1];
        v[j] = x;
    }
}

bool raft_maybe_commit(struct raft *raft) {
    ASSERT(raft->role == RAFT_LEADER);
    uint64_t matches[RAFT_NODES_MAX];
    uint32_t n = 0;
    /* The leader counts itself only for what it has durably stored. */
    if (raft_is_voter(raft, raft->id)) matches[n++] = raft->persisted;
    for (uint32_t i = 0; i < raft->peer_count; i++)
        if (raft->peers[i].voter) matches[n++] = raft->peers[i].match;
    ASSERT(n == raft_config_voter_count(&raft->config));
    if (n == 0) return false;
    raft_maybe_commit_sort(matches, n);
    uint64_t candidate = matches[raft_quorum(raft) - 1];
    if (candidate <= raft->commit) return false;
    /* Raft §5.4.2: only entries of the current term commit by counting replicas; older
     * ones commit with them (Figure 8). */
    if (raft_log_term(&raft->log, candidate) != raft->term) return false;
    raft->commit = candidate;
    ASSERT(raft->commit <= raft_log_last_index(&raft->log));
    /* Spread the new commit index to followers that are keeping up. */
    for (uint32_t i = 0; i < raft->peer_count; i++) {
        struct raft_peer *p = &raft->peers[i];
        if (p->state != RAFT_PROGRESS_REPLICATE || p->inflight_count == RAFT_INFLIGHT_MAX) continue;
        if (p->next <= raft->log.snapshot_index) continue;
        raft_replicate_send(raft, p, 0);
    }
    return true;
}

/* Fast backtracking: where to probe next after a rejection of the append at index. */
static uint64_t raft_recv_append_resp_next(const struct raft *raft, const struct raft_peer *p,
                                           const struct raft_message *m) {
    uint64_t next = m->hint_index;
    if (m->hint_term != 0) {
        /* Skip the follower's whole conflicting term: resume after our last entry of a
         * term <= hint_term, or at the follower's first index of that term. */
        uint64_t ours = raft_log_last_index_of_term(&raft->log, m->hint_term);
        if (ours >= raft->log.snapshot_index && raft_log_term(&raft->log, ours) == m->hint_term)
            next = ours + 1;
    }
    if (next > m->index) next = m->index; /* never above the rejected previous index */
    if (next <= p->match) next = p->match + 1;
    if (next == 0) next = 1;
    return next;
}

static void raft_recv_append_resp_reject(struct raft *raft, struct raft_peer *p,
                                         const struct raft_message *m) {
    /* Ignore rejections of messages older than what we already know. */
    if (m->index < p->match) return;
    if (p->state == RAFT_PROGRESS_REPLICATE && m->index <= p->match) return;
    if (p->state == RAFT_PROGRESS_PROBE && m->index != p->next - 1) return;
    if (p->state == RAFT_PROGRESS_SNAPSHOT) return;
    p->next = raft_recv_append_resp_next(raft, p, m);
    p->state = RAFT_PROGRESS_PROBE;
    p->probe_paused = false;
    p->inflight_count = 0;
    ASSERT(p->next > p->match);
    raft_replicate(raft, p);
}

static void raft_recv_append_resp_ok(struct raft_peer *p, uint64_t index, uint64_t log_base) {
    if (index > p->match) p->match = index;
    if (p->next <= p->match) p->next = p->match + 1;
    uint32_t kept = 0;
    for (uint32_t i = 0; i < p->inflight_count; i++)
        if (p->inflight[i] > index) p->inflight[kept++] = p->inflight[i];
    p->inflight_count = kept;
    /* A follower in snapshot state is caught up by a snapshot at least as new as the one
     * sent, or by an older one (the caller may finish sending that one) after which the
     * log still holds every entry it lacks. */
    if (p->state == RAFT_PROGRESS_PROBE ||
        (p->state == RAFT_PROGRESS_SNAPSHOT &&
         (p->match >= p->snapshot_index || p->match >= log_base))) {
        p->state = RAFT_PROGRESS_REPLICATE;
        p->next = p->match + 1;
        p->inflight_count = 0;
        p->probe_paused = false;
    }
    ASSERT(p->next > p->match);
}

void raft_recv_append_resp(struct raft *raft, const struct raft_message *m) {
    if (raft->role != RAFT_LEADER) return;
    struct raft_peer *p = raft_peer_find(raft, m->from);
    if (p == NULL) return;
    p->heard_ms = raft->now_ms;
    if (m->index > raft_log_last_index(&raft->log)) return; /* not a reply to us */
    if (m->reject) {
        raft_recv_append_resp_reject(raft, p, m);
        return;
    }
    raft_recv_append_resp_ok(p, m->index, raft->log.snapshot_index);
    raft_maybe_commit(raft);
    if (raft->role != RAFT_LEADER) return;
    raft_transfer_check(raft, p);
    raft_maybe_promote(raft, p);
    raft_replicate(raft, p);
}

void raft_recv_heartbeat_resp(struct raft *raft, const struct raft_message *m) {
    if (raft->role != RAFT_LEADER) return;
    struct raft_peer *p = raft_peer_find(raft, m->from);
    if (p == NULL) return;
    p->heard_ms = raft->now_ms;
    if (m->round > raft->round || m->sent_ms > raft->now_ms) return; /* not ours */
    if (m->round > p->acked_round) p->acked_round = m->round;
    if (m->sent_ms > p->acked_sent_ms) p->acked_sent_ms = m->sent_ms;
    if (m->hint_index != 0 && m->hint_index - 1 < p->match) {
        /* The follower's log ends before what it acknowledged: it lost entries (a wiped
         * data directory, or an older message overtaken): probe again from where it is.
         * Lowering match only delays commits; the commit index never goes back. */
        p->match = m->hint_index - 1;
        p->state = RAFT_PROGRESS_PROBE;
        p->next = p->match + 1;
        p->inflight_count = 0;
        p->probe_paused = false;
        p->hb_match = p->match;
    }
    raft_maybe_promote(raft, p);
    if (raft->role != RAFT_LEADER) return;
    if (p->match < raft_log_last_index(&raft->log)) {
        /* No progress over a whole heartbeat interval while behind: appends were lost
         * (a pipeline never learns that by itself), so probe again from match. */
        if (p->state == RAFT_PROGRESS_REPLICATE && p->hb_match == p->match) {
            p->state = RAFT_PROGRESS_PROBE;
            p->next = p->match + 1;
            p->inflight_count = 0;
        }
        if (p->state == RAFT_PROGRESS_PROBE) p->probe_paused = false;
        raft_replicate(raft, p);
    }
    p->hb_match = p->match;
}

/* Thesis §6.2: a leader that has not heard from a majority within an election timeout
 * steps down, so clients go looking for the real leader. */
static bool raft_leader_tick_quorum_active(const struct raft *raft) {
    uint32_t active = raft_is_voter(raft, raft->id) ? 1 : 0;
    for (uint32_t i = 0; i < raft->peer_count; i++) {
        const struct raft_peer *p = &raft->peers[i];
        if (p->voter && raft->now_ms - p->heard_ms < raft->election_timeout_ms_min) active++;
    }
    return active >= raft_quorum(raft);
}

void raft_leader_tick(struct raft *raft) {
    ASSERT(raft->role == RAFT_LEADER);
    if (raft->now_ms >= raft->check_quorum_deadline_ms) {
        if (!raft_leader_tick_quorum_active(raft)) {
            raft_become_follower(raft, raft->term, 0);
            return;
        }
        raft->check_quorum_deadline_ms = raft->now_ms + raft->election_timeout_ms_min;
    }
    if (raft->transfer_target != 0 && raft->now_ms >= raft->transfer_deadline_ms) {
        /* Thesis §3.10: abort a transfer that did not finish in an election timeout. */
        raft->transfer_target = 0;
    }
    if (raft->now_ms >= raft->heartbeat_deadline_ms) {
        for (uint32_t i = 0; i < raft->peer_count; i++) {
            struct raft_peer *p = &raft->peers[i];
            /* A snapshot that got no answer is sent again (the message may be lost). */
            if (p->state == RAFT_PROGRESS_SNAPSHOT &&
                raft->now_ms - p->snapshot_sent_ms >= raft->election_timeout_ms_min) {
                p->state = RAFT_PROGRESS_PROBE;
                p->probe_paused = false;
                p->next = p->match + 1;
            }
        }
        raft_broadcast_heartbeat(raft);
    }
}
