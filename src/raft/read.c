/*
 * Linearizable reads without writing to the log: ReadIndex (thesis §6.4), batched. A read
 * records the commit index when it arrives (once the leader has committed an entry of its
 * term), then waits for a heartbeat round that started after it to be acknowledged by a
 * majority; one round serves every read queued meanwhile. A leader that steps down fails
 * all pending reads: they are never answered by a deposed leader.
 */
#include "base/assert.h"
#include "raft/internal.h"

static bool raft_read_term_committed(const struct raft *raft) {
    /* Thesis §6.4: until an entry of its term commits, a new leader's commit index may be
     * behind the real one. */
    return raft_log_term(&raft->log, raft->commit) == raft->term;
}

/* The newest round a majority of voters (us included) acknowledged. */
static uint64_t raft_read_confirmed_round(const struct raft *raft) {
    uint64_t acked[RAFT_NODES_MAX];
    uint32_t n = 0;
    if (raft_is_voter(raft, raft->id)) acked[n++] = raft->round;
    for (uint32_t i = 0; i < raft->peer_count; i++)
        if (raft->peers[i].voter) acked[n++] = raft->peers[i].acked_round;
    uint32_t quorum = raft_quorum(raft);
    if (n < quorum) return 0;
    /* quorum-th largest */
    for (uint32_t i = 0; i < quorum; i++) {
        uint32_t best = i;
        for (uint32_t j = i + 1; j < n; j++)
            if (acked[j] > acked[best]) best = j;
        uint64_t t = acked[i];
        acked[i] = acked[best];
        acked[best] = t;
    }
    return acked[quorum - 1];
}

static bool raft_read_round_in_flight(const struct raft *raft) {
    for (size_t i = 0; i < raft->read_count; i++)
        if (raft->reads[i].round == raft->round) return true;
    return false;
}

int raft_read_request(struct raft *raft, uint64_t ctx) {
    if (raft->role != RAFT_LEADER) return ERR_NOTLEADER;
    if (raft->read_count == RAFT_READS_MAX) return ERR_LIMIT;
    if (raft->reads == NULL) raft->reads = base_calloc(RAFT_READS_MAX, sizeof(*raft->reads));
    struct raft_read *r = &raft->reads[raft->read_count++];
    r->ctx = ctx;
    r->index = raft_read_term_committed(raft) ? raft->commit : 0;
    /* Thesis §6.4: only a round that starts after the read arrived proves we were still
     * the leader when it arrived. */
    r->round = raft->round + 1;
    if (!raft_read_round_in_flight(raft)) raft_broadcast_heartbeat(raft);
    ASSERT(r->round >= raft->round);
    return 0;
}

void raft_ready_push(struct raft *raft, uint64_t ctx, uint64_t index) {
    if (raft->ready_count == raft->ready_cap) {
        raft->ready_cap = raft->ready_cap == 0 ? 16 : raft->ready_cap * 2;
        raft->ready = base_realloc(raft->ready, raft->ready_cap * sizeof(*raft->ready));
    }
    raft->ready[raft->ready_count].ctx = ctx;
    raft->ready[raft->ready_count].index = index;
    raft->ready_count++;
}

void raft_reads_advance(struct raft *raft) {
    if (raft->role != RAFT_LEADER || raft->read_count == 0) return;
    bool committed = raft_read_term_committed(raft);
    for (size_t i = 0; i < raft->read_count && committed; i++)
        if (raft->reads[i].index == 0) raft->reads[i].index = raft->commit;
    uint64_t confirmed = raft_read_confirmed_round(raft);
    size_t done = 0;
    /* Reads are queued in round order: serve the confirmed prefix. */
    while (done < raft->read_count) {
        const struct raft_read *r = &raft->reads[done];
        if (r->index == 0 || r->round > confirmed) break;
        ASSERT(r->index <= raft->commit);
        raft_ready_push(raft, r->ctx, r->index);
        done++;
    }
    for (size_t i = done; i < raft->read_count; i++) raft->reads[i - done] = raft->reads[i];
    raft->read_count -= done;
    if (raft->read_count > 0 && raft->reads[raft->read_count - 1].round > raft->round &&
        !raft_read_round_in_flight(raft))
        raft_broadcast_heartbeat(raft);
}

void raft_reads_fail_all(struct raft *raft) {
    for (size_t i = 0; i < raft->read_count; i++) {
        if (raft->failed_count == raft->failed_cap) {
            raft->failed_cap = raft->failed_cap == 0 ? 16 : raft->failed_cap * 2;
            raft->failed = base_realloc(raft->failed, raft->failed_cap * sizeof(*raft->failed));
        }
        raft->failed[raft->failed_count++] = raft->reads[i].ctx;
    }
    raft->read_count = 0;
}
