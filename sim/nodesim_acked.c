/*
 * The node-core simulator's record of leader-mode writes answered early (see nodesim_internal.h):
 * after every step, each write a core holds as answered from its own fsync alone (a
 * proposal wait with spec_acked) is remembered by its entry's (index, term). At the end,
 * once the cluster converged, such an entry missing from the final log is a lost
 * acknowledged write: the one excuse leader mode has for a non-linearizable history.
 *
 * The cores count the losses they see themselves (replication_leader_acked_lost), but a
 * core that crashes, catches up from a snapshot or gives up waiting never sees the fate of
 * its early answers, so that count can miss losses; it must never exceed this one.
 * An early answer sent to a follower that forwarded the request may not reach the client;
 * counting its loss anyway only excuses a history that needed no excuse.
 * Never: change a core's state, or the trace (trace hashes stay what they were).
 */
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "base/assert.h"
#include "nodesim_internal.h"

struct nodesim_acked_slot {
    uint64_t index; /* 0: empty */
    uint64_t term;
};

void nodesim_acked_deinit(struct nodesim_acked *a) {
    free(a->slots);
    memset(a, 0, sizeof(*a));
}

static struct nodesim_acked_slot *nodesim_acked_find(struct nodesim_acked *a, uint64_t index,
                                                     uint64_t term) {
    ASSERT(a->capacity > 0 && (a->capacity & (a->capacity - 1)) == 0);
    size_t mask = a->capacity - 1;
    size_t i = (size_t)(XXH64(&index, sizeof(index), term) & mask);
    while (a->slots[i].index != 0 && (a->slots[i].index != index || a->slots[i].term != term))
        i = (i + 1) & mask;
    return &a->slots[i];
}

static void nodesim_acked_grow(struct nodesim_acked *a) {
    struct nodesim_acked_slot *old = a->slots;
    size_t old_capacity = a->capacity;
    a->capacity = old_capacity == 0 ? 256 : old_capacity * 2;
    a->slots = base_calloc(a->capacity, sizeof(*a->slots));
    for (size_t i = 0; i < old_capacity; i++)
        if (old[i].index != 0) *nodesim_acked_find(a, old[i].index, old[i].term) = old[i];
    free(old);
}

static void nodesim_acked_add(struct nodesim_acked *a, uint64_t index, uint64_t term) {
    ASSERT(index != 0 && term != 0);
    if ((a->count + 1) * 2 > a->capacity) nodesim_acked_grow(a);
    struct nodesim_acked_slot *s = nodesim_acked_find(a, index, term);
    if (s->index != 0) return; /* seen in an earlier step: a wait lives until applied */
    *s = (struct nodesim_acked_slot){index, term};
    a->count++;
    ASSERT(a->count * 2 <= a->capacity);
}

static void nodesim_acked_note(void *ctx, uint64_t index, uint64_t term) {
    nodesim_acked_add(ctx, index, term);
}

void nodesim_acked_observe(struct nodesim_world *w, const struct nodesim_node *n) {
    if (w->sim.options.replication != SIM_REPLICATION_LEADER) return;
    ASSERT(n->host->up && n->node != NULL && node_engine(n->node) != NULL);
    cp_engine_each_early_answer(node_engine(n->node), nodesim_acked_note, &w->acked);
}

/* Whether the final log holds (index, term): the leader's log, or below its first index
 * the entry recorded as committed; neither known (it came only in snapshots) counts as
 * lost, the side that excuses rather than fails. */
static bool nodesim_acked_kept(const struct nodesim_world *w, const struct raft *leader,
                               uint64_t index, uint64_t term) {
    uint64_t final_term = 0;
    if (index > raft_commit_index(leader)) return false; /* never committed */
    if (raft_term_at(leader, index, &final_term)) return final_term == term;
    const struct sim_check *c = &w->sim.check;
    return index < c->index_capacity && c->committed[index].term == term;
}

uint64_t nodesim_acked_lost(const struct nodesim_world *w, const struct raft *leader) {
    ASSERT(leader != NULL);
    uint64_t lost = 0;
    for (size_t i = 0; i < w->acked.capacity; i++) {
        const struct nodesim_acked_slot *s = &w->acked.slots[i];
        if (s->index != 0 && !nodesim_acked_kept(w, leader, s->index, s->term)) lost++;
    }
    ASSERT(lost <= w->acked.count);
    return lost;
}
