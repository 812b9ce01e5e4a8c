/*
 * The raft target (sim.h): 3 or 5 nodes of the real raft core, each with a raftstore on its
 * own memdisk and a key -> int64 state machine (raftsim_node.c), under the world's faults,
 * plus membership changes in the fault schedule's last slot (--membership). Converged when
 * the leader of the highest term committed an entry of its own term and every node applied
 * exactly that and holds the same state; then every write acknowledged in majority or all
 * mode must be in the final state (leader mode counts the lost ones), and the register
 * workload's history (raftsim_client.c) must be linearizable, except in leader mode.
 */
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/util.h"
#include "raft/msg_codec.h"
#include "raftsim_internal.h"

static struct raftsim_world *raftsim_world(struct sim_world *w) {
    return sim_world_of(struct raftsim_world, w);
}

static const struct raftsim_world *raftsim_world_const(const struct sim_world *w) {
    return sim_world_of(const struct raftsim_world, w);
}

void raftsim_acked(struct raftsim_world *w, uint64_t index, uint64_t term, uint64_t op_id) {
    if (w->acked_count == w->acked_capacity) {
        w->acked_capacity = w->acked_capacity == 0 ? 256 : w->acked_capacity * 2;
        w->acked = base_realloc(w->acked, w->acked_capacity * sizeof(*w->acked));
    }
    w->acked[w->acked_count++] = (struct raftsim_acked_write){index, term, op_id};
    w->sim.stats->acked_writes++;
}

static int raftsim_init(struct sim_world *sw) {
    struct raftsim_world *w = raftsim_world(sw);
    buf_init(&w->scratch);
    w->decode_entries = base_calloc(RAFT_MSG_ENTRIES_MAX, sizeof(struct raft_entry));
    uint32_t count = sw->options.node_count;
    for (uint32_t i = 1; i <= count; i++)
        w->config.servers[w->config.count++] = (struct raft_server){.id = i, .voter = true};
    for (uint32_t i = 1; i <= count; i++) {
        raftsim_node_init(w, &w->nodes[i], i);
        if (raftsim_node_start(w, &w->nodes[i]) != 0) return -1;
    }
    for (uint32_t i = 0; i < RAFTSIM_CLIENTS; i++) raftsim_client_init(w, &w->clients[i], i + 1);
    return 0;
}

static void raftsim_deinit(struct sim_world *sw) {
    struct raftsim_world *w = raftsim_world(sw);
    for (uint32_t i = 1; i <= sw->options.node_count; i++) raftsim_node_deinit(w, &w->nodes[i]);
    buf_deinit(&w->scratch);
    free(w->decode_entries);
    free(w->acked);
}

static int raftsim_start(struct sim_world *w, uint32_t id) {
    return raftsim_node_start(raftsim_world(w), &raftsim_world(w)->nodes[id]);
}

static void raftsim_crash(struct sim_world *w, uint32_t id, bool tear) {
    raftsim_node_crash(raftsim_world(w), &raftsim_world(w)->nodes[id], tear);
}

static void raftsim_tick(struct sim_world *w, uint32_t id) {
    raftsim_node_tick(raftsim_world(w), &raftsim_world(w)->nodes[id]);
}

static void raftsim_sync_due(struct sim_world *w, uint32_t id) {
    raftsim_node_sync_done(raftsim_world(w), &raftsim_world(w)->nodes[id]);
}

static void raftsim_receive(struct sim_world *w, const struct sim_packet *p) {
    struct raftsim_node *n = &raftsim_world(w)->nodes[p->to];
    if (n->host->up) raftsim_node_receive(raftsim_world(w), n, p);
}

static uint32_t raftsim_leader(const struct sim_world *sw) {
    const struct raftsim_world *w = raftsim_world_const(sw);
    uint32_t best = 0;
    for (uint32_t i = 1; i <= sw->options.node_count; i++) {
        const struct raftsim_node *n = &w->nodes[i];
        if (!n->host->up || raft_role(n->raft) != RAFT_LEADER) continue;
        if (best == 0 || raft_term(n->raft) > raft_term(w->nodes[best].raft)) best = i;
    }
    return best;
}

static void raftsim_full_check(struct sim_world *sw) {
    struct raftsim_world *w = raftsim_world(sw);
    for (uint32_t a = 1; a <= sw->options.node_count; a++)
        for (uint32_t b = a + 1; b <= sw->options.node_count; b++)
            if (w->nodes[a].host->up && w->nodes[b].host->up)
                sim_check_logs(&sw->check, w->nodes[a].raft, w->nodes[b].raft);
}

/* --membership: the leader re-adds a server that is out of its configuration, or else
 * removes one (sometimes itself) while more than two voters remain. */
static void raftsim_fault_membership(struct sim_world *sw) {
    struct raftsim_world *w = raftsim_world(sw);
    uint32_t l = raftsim_leader(sw);
    if (l == 0 || !sw->options.membership) return;
    const struct raft_config *config = raft_config(w->nodes[l].raft);
    for (uint32_t i = 1; i <= sw->options.node_count; i++) {
        if (raft_config_find(config, i) != NULL) continue;
        if (raftsim_node_change(w, &w->nodes[l], RAFT_CHANGE_ADD_LEARNER, i) == 0)
            sw->stats->changes++;
        return;
    }
    if (raft_config_voter_count(config) <= 2) return;
    uint32_t victim = prng_range(&sw->prng_faults, 0, 4) == 0 ? l : sim_world_random_node(sw);
    if (raftsim_node_change(w, &w->nodes[l], RAFT_CHANGE_REMOVE, victim) == 0) sw->stats->changes++;
}

/* Settling: every server back in the leader's configuration. */
static void raftsim_settle_members(struct sim_world *sw) {
    struct raftsim_world *w = raftsim_world(sw);
    uint32_t l = raftsim_leader(sw);
    if (l == 0 || !sw->options.membership) return;
    const struct raft_config *config = raft_config(w->nodes[l].raft);
    for (uint32_t i = 1; i <= sw->options.node_count; i++) {
        if (raft_config_find(config, i) == NULL) {
            raftsim_node_change(w, &w->nodes[l], RAFT_CHANGE_ADD_LEARNER, i);
            return;
        }
    }
}

static bool raftsim_converged(struct sim_world *sw) {
    struct raftsim_world *w = raftsim_world(sw);
    uint32_t l = raftsim_leader(sw);
    if (l == 0) return false;
    const struct raft *lr = w->nodes[l].raft;
    uint64_t commit = raft_commit_index(lr), term = 0;
    /* The leader's own entry (its no-op) committed: everything before it is final. */
    if (!raft_term_at(lr, commit, &term) || term != raft_term(lr)) return false;
    for (uint32_t i = 1; i <= sw->options.node_count; i++) {
        const struct raftsim_node *n = &w->nodes[i];
        if (!n->host->up || n->held_head != NULL || n->kv.applied_index != commit) return false;
        if (memcmp(n->kv.present, w->nodes[l].kv.present, sizeof(n->kv.present)) != 0 ||
            memcmp(n->kv.value, w->nodes[l].kv.value, sizeof(n->kv.value)) != 0)
            return sim_check_fail(&sw->check,
                                  "convergence: node %u and leader %u applied %llu "
                                  "but their states differ",
                                  i, l, (unsigned long long)commit) != 0;
    }
    for (uint32_t i = 0; i < RAFTSIM_CLIENTS; i++)
        if (w->clients[i].state != RAFTSIM_CLIENT_IDLE) return false;
    return true;
}

/* Durability: every write answered OK is in the final state (leader mode: counted). */
static void raftsim_check_acked(struct sim_world *sw) {
    struct raftsim_world *w = raftsim_world(sw);
    for (size_t i = 0; i < w->acked_count && !sw->check.failed; i++) {
        const struct raftsim_acked_write *a = &w->acked[i];
        if (sim_check_applied_has(&sw->check, a->index, a->term)) continue;
        if (sw->options.replication == SIM_REPLICATION_LEADER) {
            sw->stats->lost_acked_writes++; /* the price of leader mode, counted */
            continue;
        }
        sim_check_fail(&sw->check,
                       "durability: write op %llu acknowledged at (index %llu, term "
                       "%llu) is not in the final log",
                       (unsigned long long)a->op_id, (unsigned long long)a->index,
                       (unsigned long long)a->term);
    }
}

/* Leader mode here is never held to linearizability, even when it lost no acknowledged
 * write (raftsim_check_acked counts those): this toy answers a write once the leader
 * persisted it, but serves a read at the commit index (ReadIndex), so a read after that
 * answer may miss the write (seed 330001 with --membership: put k0 4 answered at 5592 ms,
 * then get k0 -> 1). The node cores order such reads after their early answers and are
 * strict (nodesim.c). */
static bool raftsim_lincheck_strict(const struct sim_world *w) {
    return w->options.replication != SIM_REPLICATION_LEADER;
}

static void raftsim_describe(const struct sim_world *w, char *out, size_t bytes) {
    snprintf(out, bytes, "%u nodes, %s, %s", w->options.node_count,
             sim_replication_name(w->options.replication), w->stats->async_seed ? "async" : "sync");
}

const struct sim_target sim_target_raft = {
    .name = "raft",
    .world_bytes = sizeof(struct raftsim_world),
    .steps_are_events = true,
    .init = raftsim_init,
    .deinit = raftsim_deinit,
    .start = raftsim_start,
    .crash = raftsim_crash,
    .tick = raftsim_tick,
    .sync_due = raftsim_sync_due,
    .receive = raftsim_receive,
    .leader = raftsim_leader,
    .full_check = raftsim_full_check,
    .fault = raftsim_fault_membership,
    .settle_poll = raftsim_settle_members,
    .converged = raftsim_converged,
    .end_check = raftsim_check_acked,
    .lincheck_strict = raftsim_lincheck_strict,
    .describe = raftsim_describe,
};
