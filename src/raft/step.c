/*
 * raft_step: one event in, one set of effects out. Applies the rules every message obeys
 * (terms, Raft §5.1; pre-vote and stickiness, thesis §9.6), dispatches to the handlers,
 * lets time act (elections, heartbeats, check-quorum), then assembles the effects.
 */
#include <string.h>

#include "base/assert.h"
#include "raft/internal.h"

static bool raft_step_from_leader(uint8_t type) {
    return type == RAFT_MSG_APPEND || type == RAFT_MSG_HEARTBEAT ||
           type == RAFT_MSG_INSTALL_SNAPSHOT || type == RAFT_MSG_TIMEOUT_NOW;
}

/* Returns false when the message must be dropped after the term rules. */
static bool raft_step_term(struct raft *raft, const struct raft_message *m) {
    bool vote_request = m->type == RAFT_MSG_VOTE || m->type == RAFT_MSG_PRE_VOTE;
    if (m->term > raft->term) {
        /* Thesis §9.6 / §4.2.3: a server that heard from a live leader within the minimum
         * election timeout ignores vote requests (leader stickiness), unless the leader
         * itself asked for the election (transfer). */
        if (vote_request && !m->transfer && raft_in_lease_of_leader(raft)) return false;
        /* Thesis §9.6: pre-votes never change anyone's term. */
        if (m->type == RAFT_MSG_PRE_VOTE) return true;
        if (m->type == RAFT_MSG_PRE_VOTE_RESP && !m->reject) return true;
        /* Raft §5.1: a higher term makes us a follower of that term. */
        raft_become_follower(raft, m->term, raft_step_from_leader(m->type) ? m->from : 0);
        return true;
    }
    if (m->term < raft->term) {
        if (m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT) {
            /* Thesis §9.6: tell a stale leader our term, or with pre-vote and check-quorum
             * it could stay stuck in its old term forever. */
            struct raft_message *r = raft_send(raft, RAFT_MSG_APPEND_RESP, m->from);
            r->reject = true;
            r->index = m->index;
        } else if (m->type == RAFT_MSG_PRE_VOTE) {
            struct raft_message *r = raft_send(raft, RAFT_MSG_PRE_VOTE_RESP, m->from);
            r->reject = true;
        }
        return false; /* Raft §5.1: stale-term requests are rejected or ignored. */
    }
    return true;
}

static void raft_step_message(struct raft *raft, const struct raft_message *m) {
    if (m->to != raft->id || m->from == raft->id || m->from == 0) return;
    if (!raft_step_term(raft, m)) return;
    if (raft_step_from_leader(m->type) && m->term == raft->term) {
        /* Raft §5.2: a candidate that hears from the leader of its term steps down. */
        if (raft->role == RAFT_CANDIDATE || raft->role == RAFT_PRE_CANDIDATE)
            raft_become_follower(raft, raft->term, m->from);
        ASSERT(raft->role != RAFT_LEADER); /* election safety: one leader per term */
        raft_set_leader(raft, m->from);
        raft->leader_heard = true;
        raft->leader_heard_ms = raft->now_ms;
        /* Raft §5.2: a follower stays one while it hears from a current leader. */
        raft_reset_election_timer(raft);
    }
    switch ((enum raft_msg_type)m->type) {
    case RAFT_MSG_APPEND:
        raft_recv_append(raft, m);
        break;
    case RAFT_MSG_HEARTBEAT:
        raft_recv_heartbeat(raft, m);
        break;
    case RAFT_MSG_INSTALL_SNAPSHOT:
        raft_recv_install_snapshot(raft, m);
        break;
    case RAFT_MSG_TIMEOUT_NOW:
        raft_recv_timeout_now(raft, m);
        break;
    case RAFT_MSG_APPEND_RESP:
        raft_recv_append_resp(raft, m);
        break;
    case RAFT_MSG_HEARTBEAT_RESP:
        raft_recv_heartbeat_resp(raft, m);
        break;
    case RAFT_MSG_VOTE:
    case RAFT_MSG_PRE_VOTE:
        raft_recv_vote(raft, m);
        break;
    case RAFT_MSG_VOTE_RESP:
    case RAFT_MSG_PRE_VOTE_RESP:
        raft_recv_vote_resp(raft, m);
        break;
    }
}

static void raft_step_persisted(struct raft *raft, uint64_t index, uint64_t term) {
    /* A stale acknowledgement (the entry was replaced since) must not count: only an
     * (index, term) still in our log proves, by log matching, the whole prefix durable. */
    if (index <= raft->persisted || index > raft->handed_last) return;
    if (raft_log_term(&raft->log, index) != term) return;
    raft->persisted = index;
    if (raft->role == RAFT_LEADER) raft_maybe_commit(raft);
}

static int raft_step_propose(struct raft *raft, const struct raft_event *ev, uint8_t type) {
    if (raft->role != RAFT_LEADER) return ERR_NOTLEADER;
    /* Thesis §3.10: a leader handing over stops taking proposals. */
    if (raft->transfer_target != 0) return ERR_TRANSFERRING;
    if (ev->propose.bytes > RAFT_ENTRY_BYTES_MAX) return ERR_LIMIT;
    if (ev->propose.bytes > 0 && ev->propose.data == NULL) return ERR_INVALID;
    raft_append_local(raft, type, ev->propose.data, ev->propose.bytes);
    if (ev->propose.defer) return 0;
    raft_replicate_all(raft);
    raft_maybe_commit(raft); /* a single voter commits once persisted */
    return 0;
}

static int raft_step_event(struct raft *raft, const struct raft_event *ev) {
    switch (ev->kind) {
    case RAFT_EVENT_TICK:
        return 0;
    case RAFT_EVENT_MESSAGE:
        ASSERT(ev->message != NULL);
        raft_step_message(raft, ev->message);
        return 0;
    case RAFT_EVENT_PERSISTED:
        raft_step_persisted(raft, ev->persisted.index, ev->persisted.term);
        return 0;
    case RAFT_EVENT_PROPOSE:
        return raft_step_propose(raft, ev, RAFT_ENTRY_NORMAL);
    case RAFT_EVENT_READ:
        return raft_read_request(raft, ev->read_ctx);
    case RAFT_EVENT_SNAPSHOT_TAKEN:
        if (ev->snapshot_index > raft->applied) return ERR_INVALID;
        raft_snapshot_taken(raft, ev->snapshot_index);
        return 0;
    case RAFT_EVENT_CHANGE: {
        struct raft_change change = {.kind = ev->change.kind,
                                     .id = ev->change.id,
                                     .addr = ev->change.addr,
                                     .promote = ev->change.promote};
        return raft_change(raft, &change);
    }
    case RAFT_EVENT_TRANSFER:
        return raft_transfer(raft, ev->transfer_target);
    case RAFT_EVENT_REPLICATE:
        if (raft->role != RAFT_LEADER) return ERR_NOTLEADER;
        raft_replicate_all(raft);
        raft_maybe_commit(raft);
        return 0;
    }
    return ERR_INVALID;
}

static void raft_step_time(struct raft *raft) {
    if (raft->role == RAFT_LEADER) {
        raft_leader_tick(raft);
    } else {
        raft_election_tick(raft);
    }
}

static uint64_t raft_step_wake(const struct raft *raft) {
    if (raft->applied < raft->commit) return raft->now_ms; /* more to hand out */
    if (raft->role != RAFT_LEADER) return raft->election_deadline_ms;
    uint64_t wake = raft->heartbeat_deadline_ms;
    if (raft->check_quorum_deadline_ms < wake) wake = raft->check_quorum_deadline_ms;
    if (raft->transfer_target != 0 && raft->transfer_deadline_ms < wake)
        wake = raft->transfer_deadline_ms;
    return wake;
}

static void raft_step_fill(struct raft *raft, struct raft_effects *out) {
    memset(out, 0, sizeof(*out));
    out->hard_state_changed = raft->hard_state_changed;
    out->hard_state.term = raft->term;
    out->hard_state.vote = raft->vote;
    out->restore = raft->restore_pending ? &raft->restore : NULL;
    out->truncate_from = raft->truncate_from;
    uint64_t last = raft_log_last_index(&raft->log);
    if (raft->handed_last < last) {
        out->entries = raft_log_get(&raft->log, raft->handed_last + 1);
        out->entry_count = (size_t)(last - raft->handed_last);
        raft->handed_last = last;
    }
    if (raft->applied < raft->commit) {
        uint64_t to = raft->commit;
        if (to - raft->applied > RAFT_APPLY_ENTRIES_MAX)
            to = raft->applied + RAFT_APPLY_ENTRIES_MAX;
        out->committed = raft_log_get(&raft->log, raft->applied + 1);
        ASSERT(out->committed != NULL);
        out->committed_count = (size_t)(to - raft->applied);
        raft->applied = to;
    }
    /* Entries are referenced by index until now: the log may have grown meanwhile. */
    for (size_t i = 0; i < raft->msg_count; i++) {
        struct raft_message *m = &raft->msgs[i];
        if (m->type != RAFT_MSG_APPEND || m->entry_count == 0) continue;
        m->entries = raft_log_get(&raft->log, m->index + 1);
        ASSERT(m->entries != NULL);
        ASSERT(m->index + m->entry_count <= last);
    }
    out->messages = raft->msgs;
    out->message_count = raft->msg_count;
    out->reads = raft->ready;
    out->read_count = raft->ready_count;
    out->reads_failed = raft->failed;
    out->reads_failed_count = raft->failed_count;
    out->wake_at_ms = raft_step_wake(raft);
}

int raft_step(struct raft *raft, const struct raft_event *ev, struct raft_effects *out) {
    ASSERT(raft != NULL && ev != NULL && out != NULL);
    raft->hard_state_changed = false;
    raft->truncate_from = 0;
    raft->restore_pending = false;
    raft->msg_count = raft->ready_count = raft->failed_count = 0;
    if (ev->now_ms > raft->now_ms) raft->now_ms = ev->now_ms;
    uint64_t commit_before = raft->commit;
    uint64_t term_before = raft->term;
    int rc = raft_step_event(raft, ev);
    raft_step_time(raft);
    if (raft->commit > commit_before) raft_config_committed(raft);
    raft_reads_advance(raft);
    /* Invariants across the step: commit and term never go back. */
    ASSERT(raft->commit >= commit_before);
    ASSERT(raft->term >= term_before);
    raft_check_invariants(raft);
    uint64_t applied_before = raft->applied;
    raft_step_fill(raft, out);
    if ((ev->kind == RAFT_EVENT_PROPOSE || ev->kind == RAFT_EVENT_CHANGE) && rc == 0) {
        out->proposed_index = raft_log_last_index(&raft->log);
        out->proposed_term = raft->term;
    }
    ASSERT(raft->applied >= applied_before);
    return rc;
}
