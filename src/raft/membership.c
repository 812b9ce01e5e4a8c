/*
 * Membership changes one server at a time (thesis §4.1): add a learner (§4.2.1, it catches
 * up without voting), promote it to voter, remove a server. A configuration takes effect
 * as soon as its entry is in the log; a leader proposes a new one only when the previous
 * one is committed and it has committed an entry of its own term. Leadership transfer
 * (thesis §3.10): bring the target up to date, then tell it to campaign at once.
 */
#include <stdio.h>
#include <string.h>

#include "base/assert.h"
#include "raft/internal.h"

static int raft_change_build(const struct raft *raft, const struct raft_change *change,
                             struct raft_config *next) {
    *next = raft->config;
    struct raft_server *s = (struct raft_server *)raft_config_find(next, change->id);
    switch (change->kind) {
    case RAFT_CHANGE_ADD_LEARNER:
        if (s != NULL) return ERR_EXISTS;
        if (next->count == RAFT_NODES_MAX) return ERR_LIMIT;
        s = &next->servers[next->count];
        memset(s, 0, sizeof(*s));
        s->id = change->id;
        s->promote = change->promote;
        if (change->addr != NULL) snprintf(s->addr, sizeof(s->addr), "%s", change->addr);
        next->count++;
        return 0;
    case RAFT_CHANGE_PROMOTE:
        if (s == NULL) return ERR_NOTFOUND;
        if (s->voter) return ERR_EXISTS;
        s->voter = true;
        s->promote = false;
        return 0;
    case RAFT_CHANGE_REMOVE:
        if (s == NULL) return ERR_NOTFOUND;
        if (s->voter && raft_config_voter_count(next) == 1) return ERR_INVALID;
        *s = next->servers[next->count - 1];
        next->count--;
        return 0;
    }
    return ERR_INVALID;
}

int raft_change(struct raft *raft, const struct raft_change *change) {
    if (raft->role != RAFT_LEADER) return ERR_NOTLEADER;
    if (raft->transfer_target != 0) return ERR_TRANSFERRING;
    if (change->id == 0) return ERR_INVALID;
    /* Thesis §4.1: one uncommitted configuration at a time; and (Ongaro's fix to the
     * single-server algorithm) only after an entry of this term committed. */
    if (raft->config_index > raft->commit) return ERR_CONFIG_PENDING;
    if (raft_log_term(&raft->log, raft->commit) != raft->term) return ERR_CONFIG_PENDING;
    struct raft_config next;
    int rc = raft_change_build(raft, change, &next);
    if (rc != 0) return rc;
    uint8_t data[RAFT_CONFIG_BYTES_MAX];
    size_t bytes = raft_config_encode(&next, data);
    raft_append_local(raft, RAFT_ENTRY_CONFIG, data, (uint32_t)bytes);
    ASSERT(raft->config_index == raft_log_last_index(&raft->log));
    ASSERT(raft->config.count == next.count);
    raft_replicate_all(raft);
    raft_maybe_commit(raft);
    return 0;
}

/* Thesis §4.2.1: a learner added to become a voter is promoted once it has caught up (it
 * holds everything committed), so it does not slow commits while it copies the log. */
void raft_maybe_promote(struct raft *raft, const struct raft_peer *peer) {
    const struct raft_server *s = raft_config_find(&raft->config, peer->id);
    if (s == NULL || s->voter || !s->promote || peer->match < raft->commit) return;
    struct raft_change change = {.kind = RAFT_CHANGE_PROMOTE, .id = peer->id};
    (void)raft_change(raft, &change); /* a pending change: tried again at the next reply */
}

void raft_config_committed(struct raft *raft) {
    if (raft->role != RAFT_LEADER || raft->config_index > raft->commit) return;
    /* Thesis §4.2.2: a leader removed from the configuration steps down once the
     * configuration without it is committed. */
    if (raft_config_find(&raft->config, raft->id) == NULL)
        raft_become_follower(raft, raft->term, 0);
}

int raft_transfer(struct raft *raft, uint32_t target) {
    if (raft->role != RAFT_LEADER) return ERR_NOTLEADER;
    if (target == raft->id) return 0;
    if (raft->transfer_target != 0) return ERR_TRANSFERRING;
    struct raft_peer *p = raft_peer_find(raft, target);
    if (p == NULL) return ERR_NOTFOUND;
    if (!p->voter) return ERR_INVALID;
    raft->transfer_target = target;
    /* Thesis §3.10: abort if the target has not taken over within an election timeout. */
    raft->transfer_deadline_ms = raft->now_ms + raft->election_timeout_ms_min;
    raft->transfer_timeout_sent = false;
    raft_transfer_check(raft, p);
    if (!raft->transfer_timeout_sent) raft_replicate(raft, p);
    return 0;
}

void raft_transfer_check(struct raft *raft, struct raft_peer *peer) {
    if (raft->transfer_target != peer->id || raft->transfer_timeout_sent) return;
    /* Thesis §3.10: once the target's log matches ours, it may campaign at once. */
    if (peer->match != raft_log_last_index(&raft->log)) return;
    raft_send(raft, RAFT_MSG_TIMEOUT_NOW, peer->id);
    raft->transfer_timeout_sent = true;
}

void raft_recv_timeout_now(struct raft *raft, const struct raft_message *m) {
    ASSERT(m->term == raft->term);
    if (raft->role != RAFT_FOLLOWER || !raft_is_voter(raft, raft->id)) return;
    /* Thesis §3.10: skip the pre-vote and campaign now; voters must ignore stickiness. */
    raft_campaign(raft, false, true);
}
