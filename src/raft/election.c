/*
 * Leader election (Raft §5.2, §5.4.1) with pre-vote (thesis §9.6): a server whose election
 * timer fires first asks, without changing its term, whether a majority would vote for
 * it; only then does it increment its term and campaign. Voters that recently heard from
 * a leader deny both (leader stickiness), so a rejoining partitioned server cannot depose
 * a healthy leader.
 */
#include "base/assert.h"
#include "raft/internal.h"

bool raft_in_lease_of_leader(const struct raft *raft) {
    if (raft->role == RAFT_LEADER) return true;
    if (raft->leader_id == 0 || !raft->leader_heard) return false;
    return raft->now_ms - raft->leader_heard_ms < raft->election_timeout_ms_min;
}

void raft_election_tick(struct raft *raft) {
    ASSERT(raft->role != RAFT_LEADER);
    if (raft->now_ms < raft->election_deadline_ms) return;
    /* Thesis §4.2.1: learners and removed servers never start elections. */
    if (!raft_is_voter(raft, raft->id)) {
        raft_reset_election_timer(raft);
        return;
    }
    /* Raft §5.2: no word from a leader within the election timeout: campaign, first with
     * a pre-vote round (thesis §9.6). */
    raft_campaign(raft, true, false);
}

static void raft_campaign_send(struct raft *raft, bool pre_vote, bool transfer) {
    uint8_t type = pre_vote ? RAFT_MSG_PRE_VOTE : RAFT_MSG_VOTE;
    for (uint32_t i = 0; i < raft->config.count; i++) {
        const struct raft_server *s = &raft->config.servers[i];
        if (!s->voter || s->id == raft->id) continue;
        struct raft_message *m = raft_send(raft, type, s->id);
        m->term = pre_vote ? raft->term + 1 : raft->term;
        m->index = raft_log_last_index(&raft->log);
        m->log_term = raft_log_last_term(&raft->log);
        m->transfer = transfer;
    }
}

static void raft_campaign_won(struct raft *raft, bool pre_vote) {
    if (pre_vote) {
        raft_campaign(raft, false, false);
    } else {
        raft_become_leader(raft);
    }
}

void raft_campaign(struct raft *raft, bool pre_vote, bool transfer) {
    ASSERT(raft_is_voter(raft, raft->id));
    if (raft->role == RAFT_LEADER) raft_reads_fail_all(raft);
    raft->peer_count = 0;
    raft->transfer_target = 0;
    raft->leader_id = 0;
    raft->leader_heard = false;
    if (pre_vote) {
        raft->role = RAFT_PRE_CANDIDATE;
    } else {
        /* Raft §5.2: increment the term, vote for self. */
        raft->term++;
        raft->vote = raft->id;
        raft->hard_state_changed = true;
        raft->role = RAFT_CANDIDATE;
    }
    raft->votes_granted[0] = raft->id;
    raft->votes_granted_count = 1;
    raft->votes_rejected_count = 0;
    raft_reset_election_timer(raft);
    if (raft_quorum(raft) == 1) {
        raft_campaign_won(raft, pre_vote);
        return;
    }
    raft_campaign_send(raft, pre_vote, transfer);
}

static bool raft_recv_vote_log_ok(const struct raft *raft, const struct raft_message *m) {
    /* Raft §5.4.1: vote only for a candidate whose log is at least as up to date. */
    uint64_t last_term = raft_log_last_term(&raft->log);
    if (m->log_term != last_term) return m->log_term > last_term;
    return m->index >= raft_log_last_index(&raft->log);
}

void raft_recv_vote(struct raft *raft, const struct raft_message *m) {
    bool pre = m->type == RAFT_MSG_PRE_VOTE;
    bool can_vote;
    if (pre) {
        /* Thesis §9.6: grant a pre-vote for a later term if its log is up to date. */
        can_vote = m->term > raft->term;
    } else {
        ASSERT(m->term == raft->term);
        /* Raft §5.2: at most one vote per term, first come first served. */
        can_vote = raft->vote == m->from || (raft->vote == 0 && raft->leader_id == 0);
    }
    bool grant = can_vote && raft_recv_vote_log_ok(raft, m);
    struct raft_message *r =
        raft_send(raft, pre ? RAFT_MSG_PRE_VOTE_RESP : RAFT_MSG_VOTE_RESP, m->from);
    r->reject = !grant;
    if (pre && grant) r->term = m->term; /* the pre-vote's term, as etcd does */
    if (!pre && grant) {
        raft->vote = m->from;
        raft->hard_state_changed = true;
        raft_reset_election_timer(raft);
    }
    if (!pre) ASSERT(!grant || raft->vote == m->from);
}

static bool raft_recv_vote_resp_count(struct raft *raft, uint32_t from, bool granted) {
    for (uint32_t i = 0; i < raft->votes_granted_count; i++)
        if (raft->votes_granted[i] == from) return false; /* a duplicate */
    if (!raft_is_voter(raft, from)) return false;
    ASSERT(raft->votes_granted_count < RAFT_NODES_MAX);
    if (granted) {
        raft->votes_granted[raft->votes_granted_count++] = from;
    } else {
        /* Kept in the same list (with a marker count) so duplicates are ignored too. */
        raft->votes_granted[raft->votes_granted_count++] = from;
        raft->votes_rejected_count++;
    }
    return true;
}

void raft_recv_vote_resp(struct raft *raft, const struct raft_message *m) {
    bool pre = m->type == RAFT_MSG_PRE_VOTE_RESP;
    if (pre) {
        if (raft->role != RAFT_PRE_CANDIDATE) return;
        if (!m->reject && m->term != raft->term + 1) return; /* a stale round */
    } else {
        if (raft->role != RAFT_CANDIDATE || m->term != raft->term) return;
    }
    if (!raft_recv_vote_resp_count(raft, m->from, !m->reject)) return;
    uint32_t granted = raft->votes_granted_count - raft->votes_rejected_count;
    uint32_t quorum = raft_quorum(raft);
    if (granted >= quorum) {
        raft_campaign_won(raft, pre);
        return;
    }
    /* Lost for sure: wait as a follower of this term for the next timeout. */
    uint32_t voters = raft_config_voter_count(&raft->config);
    if (raft->votes_rejected_count > voters - quorum) {
        uint64_t deadline = raft->election_deadline_ms;
        raft_become_follower(raft, raft->term, 0);
        raft->election_deadline_ms = deadline;
    }
}
