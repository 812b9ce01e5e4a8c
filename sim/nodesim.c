/*
 * The node-core simulation loop (see nodesim.h): picks the earliest pending event (a
 * packet arriving, a node's tick, an asynchronous sync completing, a restart, a client's
 * move, a fault), advances virtual time to it and carries it out; the node shell
 * (nodesim_node.c) checks the invariants after every node step. Ties are broken in a fixed
 * order, so a seed replays exactly. After run_ms the faults stop, the network heals, crashed
 * nodes restart, clients finish, and within NODESIM_SETTLE_MS_MAX every replica must have
 * applied the leader's commit index and hold the same data; then the history must be
 * linearizable. The fault schedule is sim.c's, plus the cores' own FAULT commands
 * (nodesim_faultcmd.c) in the slot sim.c leaves idle.
 */
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "nodesim_internal.h"

#define NODESIM_FAULT_MS_MIN 100
#define NODESIM_FAULT_MS_MAX 1200
#define NODESIM_DOWN_MS_MIN 50
#define NODESIM_DOWN_MS_MAX 2000
#define NODESIM_SETTLE_POLL_MS 25
#define NODESIM_REPORT_TRACE_LINES 50
#define NODESIM_SEGMENT_BYTES (256u * 1024)

enum nodesim_event_kind {
    NODESIM_EV_NONE,
    NODESIM_EV_NET,
    NODESIM_EV_SYNC,
    NODESIM_EV_TICK,
    NODESIM_EV_RESTART,
    NODESIM_EV_CLIENT,
    NODESIM_EV_FAULT
};

void nodesim_options_default(struct nodesim_options *options) {
    memset(options, 0, sizeof(*options));
    options->seed = 1;
    options->node_count = 3;
    options->run_ms = NODESIM_RUN_MS_DEFAULT;
}

static void nodesim_net_quality(struct nodesim_world *w) {
    struct sim_net_options o = {.loss_permille = (uint32_t)prng_range(&w->prng_faults, 0, 120),
                                .dup_permille = (uint32_t)prng_range(&w->prng_faults, 0, 60),
                                .slow_permille = (uint32_t)prng_range(&w->prng_faults, 0, 100),
                                .delay_ms_min = 1,
                                .delay_ms_max = 1 + prng_range(&w->prng_faults, 0, 15),
                                .slow_delay_ms_max = prng_range(&w->prng_faults, 20, 400)};
    sim_net_set_options(&w->net, &o);
}

static void nodesim_config(struct nodesim_world *w) {
    struct node_config *c = &w->config;
    node_config_default(c);
    c->peer_count = w->options.node_count;
    for (uint32_t i = 0; i < c->peer_count; i++) {
        c->peers[i].id = i + 1;
        snprintf(c->peers[i].addr, sizeof(c->peers[i].addr), "sim:%u", i + 1);
    }
    c->election_timeout_ms_min = NODESIM_ELECTION_MS_MIN;
    c->election_timeout_ms_max = NODESIM_ELECTION_MS_MAX;
    c->heartbeat_ms = NODESIM_HEARTBEAT_MS;
    c->request_timeout_ms = NODESIM_REQUEST_TIMEOUT_MS;
    c->enable_faults = true; /* the fault schedule also sends FAULT (nodesim_faultcmd.c) */
    c->hash_seed = w->options.seed * 0x9e3779b97f4a7c15ull + 1;
    /* Small WAL segments: memdisk copies a file's whole image on every sync, and rotation
     * gets exercised. */
    c->wal_segment_bytes =
        w->options.wal_segment_bytes != 0 ? w->options.wal_segment_bytes : NODESIM_SEGMENT_BYTES;
    c->listen = "sim";
    c->dir = "memdisk";
    /* Snapshots (and InstallSnapshot, and the log's trail) every few hundred entries; from
     * the seed, not a prng, so the fault schedules stay what they were. */
    c->snapshot_entries = 40 + w->options.seed % 400;
    if (w->options.replication != 0) { /* one keyspace holding every key */
        struct keyspace *ks = &c->keyspaces[0];
        snprintf(ks->name, sizeof(ks->name), "%s", "all");
        ks->match_count = 1;
        snprintf(ks->match[0], sizeof(ks->match[0]), "%s", "*");
        ks->replication = (enum keyspace_replication)w->options.replication;
        ks->consistency = KEYSPACE_CONSISTENCY_LINEARIZABLE;
        c->keyspace_count = 1;
    }
}

static int nodesim_world_init(struct nodesim_world *w, const struct nodesim_options *o,
                              struct sim_stats *stats) {
    memset(w, 0, sizeof(*w));
    memset(stats, 0, sizeof(*stats));
    w->options = *o;
    if (w->options.run_ms == 0) w->options.run_ms = NODESIM_RUN_MS_DEFAULT;
    ASSERT(o->node_count >= 1 && o->node_count <= NODESIM_NODES_MAX);
    w->stats = stats;
    prng_init(&w->prng_faults, o->seed * 31 + 11);
    prng_init(&w->prng_crash, o->seed * 37 + 13);
    w->async = prng_range(&w->prng_faults, 0, 3) == 0;
    stats->async_seed = w->async;
    struct sim_net_options quiet = {.delay_ms_min = 1, .delay_ms_max = 5};
    sim_net_init(&w->net, o->seed * 41 + 17, &quiet);
    nodesim_net_quality(w);
    sim_check_init(&w->check);
    sim_trace_init(&w->trace, o->trace);
    lincheck_history_init(&w->history);
    buf_init(&w->packet);
    buf_init(&w->big_req);
    nodesim_config(w);
    for (uint32_t i = 0; i < NODESIM_CLIENTS; i++) nodesim_client_init(w, &w->clients[i], i + 1);
    for (uint32_t i = 1; i <= o->node_count; i++) nodesim_node_init(w, &w->nodes[i], i);
    for (uint32_t i = 1; i <= o->node_count; i++)
        if (nodesim_node_start(w, &w->nodes[i]) != 0) return -1;
    w->fault_at_ms = prng_range(&w->prng_faults, NODESIM_FAULT_MS_MIN, NODESIM_FAULT_MS_MAX);
    return 0;
}

static void nodesim_world_deinit(struct nodesim_world *w) {
    for (uint32_t i = 1; i <= w->options.node_count; i++) nodesim_node_deinit(w, &w->nodes[i]);
    for (uint32_t i = 0; i < NODESIM_CLIENTS; i++) nodesim_client_deinit(&w->clients[i]);
    sim_net_deinit(&w->net);
    sim_check_deinit(&w->check);
    lincheck_history_deinit(&w->history);
    buf_deinit(&w->packet);
    buf_deinit(&w->big_req);
    nodesim_acked_deinit(&w->acked);
}

/* --- the loop ----------------------------------------------------------------------- */

struct nodesim_next {
    uint64_t at_ms;
    enum nodesim_event_kind kind;
    uint32_t who;
};

static void nodesim_consider(struct nodesim_next *best, uint64_t at, enum nodesim_event_kind kind,
                             uint32_t who) {
    if (best->kind == NODESIM_EV_NONE || at < best->at_ms)
        *best = (struct nodesim_next){at, kind, who};
}

static struct nodesim_next nodesim_next_event(const struct nodesim_world *w) {
    struct nodesim_next best = {0};
    uint64_t at;
    if (sim_net_next_at(&w->net, &at)) nodesim_consider(&best, at, NODESIM_EV_NET, 0);
    for (uint32_t i = 1; i <= w->options.node_count; i++) {
        const struct nodesim_node *n = &w->nodes[i];
        if (n->up && n->sync_at_ms != 0) nodesim_consider(&best, n->sync_at_ms, NODESIM_EV_SYNC, i);
        if (n->up) nodesim_consider(&best, n->wake_ms, NODESIM_EV_TICK, i);
        if (!n->up) nodesim_consider(&best, n->restart_at_ms, NODESIM_EV_RESTART, i);
    }
    for (uint32_t i = 0; i < NODESIM_CLIENTS; i++) {
        const struct nodesim_client *c = &w->clients[i];
        at = c->next_at_ms;
        bool open = c->state == NODESIM_CLIENT_SENDING || c->state == NODESIM_CLIENT_WAITING;
        if (open && c->deadline_ms < at) at = c->deadline_ms;
        if (at != UINT64_MAX) nodesim_consider(&best, at, NODESIM_EV_CLIENT, i);
    }
    if (!w->settling) nodesim_consider(&best, w->fault_at_ms, NODESIM_EV_FAULT, 0);
    return best;
}

static void nodesim_fault(struct nodesim_world *w);

static void nodesim_deliver(struct nodesim_world *w) {
    struct sim_packet p;
    if (!sim_net_pop(&w->net, w->now_ms, &p)) return;
    nodesim_node_receive(w, &p);
    free(p.bytes);
}

static void nodesim_full_check(struct nodesim_world *w) {
    for (uint32_t a = 1; a <= w->options.node_count; a++)
        for (uint32_t b = a + 1; b <= w->options.node_count; b++)
            if (w->nodes[a].up && w->nodes[b].up)
                sim_check_logs(&w->check, cp_engine_raft(node_engine(w->nodes[a].node)),
                               cp_engine_raft(node_engine(w->nodes[b].node)));
}

static void nodesim_do(struct nodesim_world *w, const struct nodesim_next *e) {
    ASSERT(e->at_ms >= w->now_ms);
    w->now_ms = e->at_ms;
    uint64_t before = w->stats->steps;
    switch (e->kind) {
    case NODESIM_EV_NET:
        nodesim_deliver(w);
        break;
    case NODESIM_EV_SYNC:
        nodesim_node_sync_due(w, &w->nodes[e->who]);
        break;
    case NODESIM_EV_TICK:
        nodesim_node_tick(w, &w->nodes[e->who]);
        break;
    case NODESIM_EV_RESTART:
        nodesim_node_start(w, &w->nodes[e->who]);
        break;
    case NODESIM_EV_CLIENT:
        nodesim_client_event(w, &w->clients[e->who]);
        break;
    case NODESIM_EV_FAULT:
        nodesim_fault(w);
        break;
    case NODESIM_EV_NONE:
        UNREACHABLE();
    }
    if (w->stats->steps / NODESIM_FULL_CHECK_STEPS != before / NODESIM_FULL_CHECK_STEPS)
        nodesim_full_check(w);
}

static void nodesim_loop(struct nodesim_world *w, uint64_t until_ms) {
    while (!w->check.failed) {
        struct nodesim_next e = nodesim_next_event(w);
        if (e.kind == NODESIM_EV_NONE || e.at_ms > until_ms) {
            w->now_ms = until_ms;
            return;
        }
        nodesim_do(w, &e);
    }
}

/* --- faults (sim.c's schedule) ------------------------------------------------------ */

static uint32_t nodesim_leader(const struct nodesim_world *w) {
    uint32_t best = 0;
    uint64_t best_term = 0;
    for (uint32_t i = 1; i <= w->options.node_count; i++) {
        const struct nodesim_node *n = &w->nodes[i];
        if (!n->up || raft_role(cp_engine_raft(node_engine(n->node))) != RAFT_LEADER) continue;
        uint64_t term = raft_term(cp_engine_raft(node_engine(n->node)));
        if (best == 0 || term > best_term) {
            best = i;
            best_term = term;
        }
    }
    return best;
}

static uint32_t nodesim_random_node(struct nodesim_world *w) {
    return 1 + (uint32_t)prng_range(&w->prng_faults, 0, w->options.node_count);
}

void nodesim_fault_split(struct nodesim_world *w, uint32_t *side, uint32_t minority) {
    uint32_t order[NODESIM_NODES_MAX], count = w->options.node_count;
    for (uint32_t i = 0; i < count; i++) order[i] = i;
    for (uint32_t i = count - 1; i > 0; i--) {
        uint32_t j = (uint32_t)prng_range(&w->prng_faults, 0, i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (uint32_t i = 0; i < count; i++) side[order[i]] = i < minority ? 1 : 0;
}

static void nodesim_fault_partition(struct nodesim_world *w, uint64_t pattern) {
    uint32_t side[NODESIM_NODES_MAX] = {0}, count = w->options.node_count, bridge = 0;
    uint32_t minority = (count - 1) / 2;
    if (pattern == 0) {
        nodesim_fault_split(w, side, 1 + (uint32_t)prng_range(&w->prng_faults, 0, minority));
    } else if (pattern == 1) {
        uint32_t l = nodesim_leader(w);
        side[(l != 0 ? l : nodesim_random_node(w)) - 1] = 1;
    } else {
        nodesim_fault_split(w, side, count / 2);
        bridge = nodesim_random_node(w);
        side[bridge - 1] = SIM_NET_GROUP_BRIDGE;
    }
    sim_net_partition(&w->net, side, count);
    w->stats->partitions++;
    uint64_t groups = 0;
    for (uint32_t i = 0; i < count; i++)
        if (side[i] == 1) groups |= 1u << i;
    sim_trace_add(&w->trace, w->now_ms, 0, SIM_TRACE_PARTITION, pattern, groups, bridge, 0);
}

static void nodesim_fault_one_way(struct nodesim_world *w) {
    uint32_t l = nodesim_leader(w), from = l != 0 ? l : nodesim_random_node(w);
    bool all = prng_range(&w->prng_faults, 0, 2) == 0;
    for (uint32_t to = 1; to <= w->options.node_count; to++) {
        if (to == from || (!all && prng_range(&w->prng_faults, 0, 2) == 0)) continue;
        sim_net_cut_link(&w->net, from, to, true);
        sim_trace_add(&w->trace, w->now_ms, 0, SIM_TRACE_LINK, from, to, 1, 0);
    }
    w->stats->partitions++;
}

static void nodesim_fault_crash(struct nodesim_world *w) {
    uint32_t down = 0, count = w->options.node_count;
    for (uint32_t i = 1; i <= count; i++) down += !w->nodes[i].up;
    if (down >= (count - 1) / 2) return; /* keep a majority alive so clients progress */
    uint32_t l = nodesim_leader(w), victim = nodesim_random_node(w);
    if (l != 0 && prng_range(&w->prng_faults, 0, 3) == 0) victim = l;
    struct nodesim_node *n = &w->nodes[victim];
    if (!n->up) return;
    nodesim_node_crash(w, n, prng_range(&w->prng_crash, 0, 2) == 0);
    n->restart_at_ms =
        w->now_ms + prng_range(&w->prng_faults, NODESIM_DOWN_MS_MIN, NODESIM_DOWN_MS_MAX);
    w->stats->crashes++;
}

static void nodesim_fault(struct nodesim_world *w) {
    uint64_t roll = prng_range(&w->prng_faults, 0, 100);
    if (roll < 15) {
        sim_net_heal(&w->net);
        sim_trace_add(&w->trace, w->now_ms, 0, SIM_TRACE_HEAL, 0, 0, 0, 0);
        nodesim_faultcmd_heal(w);
    } else if (roll < 30) {
        nodesim_fault_partition(w, 0);
    } else if (roll < 40) {
        nodesim_fault_partition(w, 1);
    } else if (roll < 48) {
        nodesim_fault_partition(w, 2);
    } else if (roll < 58) {
        nodesim_fault_one_way(w);
    } else if (roll < 75) {
        nodesim_fault_crash(w);
    } else if (roll < 85) {
        nodesim_net_quality(w);
    } else {
        nodesim_faultcmd_inject(w);
    }
    w->fault_at_ms =
        w->now_ms + prng_range(&w->prng_faults, NODESIM_FAULT_MS_MIN, NODESIM_FAULT_MS_MAX);
}

/* --- the end: settle, converge, linearizability ------------------------------------- */

static bool nodesim_converged(struct nodesim_world *w) {
    uint32_t l = nodesim_leader(w);
    if (l == 0 || !nodesim_clients_idle(w) || !nodesim_faultcmd_idle(w)) return false;
    const struct raft *lr = cp_engine_raft(node_engine(w->nodes[l].node));
    uint64_t commit = raft_commit_index(lr), term = 0;
    /* The leader's own entry committed: everything before it is final. */
    if (!raft_term_at(lr, commit, &term) || term != raft_term(lr)) return false;
    for (uint32_t i = 1; i <= w->options.node_count; i++) {
        const struct nodesim_node *n = &w->nodes[i];
        if (!n->up || n->sync_at_ms != 0 || cp_engine_applied(node_engine(n->node)) != commit)
            return false;
    }
    for (uint32_t i = 1; i <= w->options.node_count; i++)
        if (i != l && !nodesim_data_same(w, i, l)) return true; /* failed: stop settling */
    for (uint32_t i = 1; i <= w->options.node_count; i++)
        if (nodesim_txn_check_bank(w, i) != 0) return true;
    return true;
}

static void nodesim_settle(struct nodesim_world *w) {
    w->settling = true;
    sim_trace_add(&w->trace, w->now_ms, 0, SIM_TRACE_PHASE, 1, 0, 0, 0);
    sim_net_heal(&w->net);
    struct sim_net_options calm = {.delay_ms_min = 1, .delay_ms_max = 5};
    sim_net_set_options(&w->net, &calm);
    for (uint32_t i = 1; i <= w->options.node_count && !w->check.failed; i++)
        if (!w->nodes[i].up) nodesim_node_start(w, &w->nodes[i]);
    nodesim_faultcmd_heal(w); /* the cores' own faults too, before convergence is judged */
    uint64_t deadline = w->now_ms + NODESIM_SETTLE_MS_MAX;
    while (!w->check.failed && !nodesim_converged(w)) {
        if (w->now_ms >= deadline) {
            sim_check_fail(&w->check, "convergence: not converged %u ms after healing",
                           NODESIM_SETTLE_MS_MAX);
            return;
        }
        nodesim_loop(w, w->now_ms + NODESIM_SETTLE_POLL_MS);
    }
}

static void nodesim_lincheck_report(struct nodesim_world *w, const struct lincheck_result *r) {
    FILE *out = w->options.report;
    if (out == NULL) return;
    fprintf(out, "lincheck: key %s not linearizable; longest linearizable prefix:\n", r->key);
    char line[LINCHECK_LINE_BYTES_MAX];
    for (size_t i = 0; i < r->prefix_count; i++) {
        const struct lincheck_op *op = lincheck_history_find(&w->history, r->prefix_ids[i]);
        if (op == NULL) continue;
        lincheck_op_format(op, line, sizeof(line));
        fprintf(out, "  op %llu: %s\n", (unsigned long long)op->id, line);
    }
    const struct lincheck_op *b = lincheck_history_find(&w->history, r->blocked_id);
    if (b != NULL) {
        lincheck_op_format(b, line, sizeof(line));
        fprintf(out, "  then cannot place op %llu: %s\n", (unsigned long long)b->id, line);
    }
}

/* Leader mode is excused a non-linearizable history only when it lost an acknowledged
 * write (nodesim_count_lost, run first): the core's reads wait for its early answers
 * (cp_spec), so nothing else may break linearizability (sim.c's toy is never held to
 * it). UNKNOWN proves nothing and is reported, and stats->lincheck tells the caller, who
 * must not count it a pass. */
static void nodesim_lincheck(struct nodesim_world *w) {
    struct lincheck_result r;
    lincheck_result_init(&r);
    struct lincheck_options budget = {.steps_max = SIM_LINCHECK_STEPS_MAX};
    int rc = lincheck_check(&w->history, &budget, &r);
    w->stats->lincheck_checked = true;
    w->stats->lincheck = rc == 0 ? r.verdict : LINCHECK_UNKNOWN;
    w->stats->lincheck_steps = r.steps;
    FILE *out = w->options.report;
    bool strict =
        w->options.replication != KEYSPACE_REPLICATION_LEADER || w->stats->lost_acked_writes == 0;
    if (rc == 0 && r.verdict == LINCHECK_NOT_LINEARIZABLE && strict) {
        nodesim_lincheck_report(w, &r);
        sim_check_fail(&w->check, "linearizability: history on key %s is not linearizable", r.key);
    } else if (w->stats->lincheck == LINCHECK_UNKNOWN && out != NULL) {
        fprintf(out, "lincheck: seed %llu: UNKNOWN on key %s (%s)\n",
                (unsigned long long)w->options.seed, r.key,
                rc != 0       ? "too many ops on one key"
                : r.memo_full ? "memo full"
                              : "step budget");
    }
    lincheck_result_deinit(&r);
}

/* Leader mode: acknowledged writes the final log lacks (nodesim_acked.c), before the
 * lincheck, which they excuse. The cores' own counts (crashed ones' taken at the crash)
 * see fewer, never more. */
static void nodesim_count_lost(struct nodesim_world *w) {
    if (w->options.replication != KEYSPACE_REPLICATION_LEADER) return;
    uint64_t cores = w->spec_lost;
    for (uint32_t i = 1; i <= w->options.node_count; i++) {
        const struct nodesim_node *n = &w->nodes[i];
        if (n->node == NULL || node_engine(n->node) == NULL) continue;
        cores += cp_engine_leader_acked_lost(node_engine(n->node));
    }
    uint32_t l = nodesim_leader(w);
    ASSERT(l != 0); /* converged */
    uint64_t lost = nodesim_acked_lost(w, cp_engine_raft(node_engine(w->nodes[l].node)));
    w->stats->lost_acked_writes = lost;
    if (cores > lost)
        sim_check_fail(&w->check,
                       "leader mode: the cores saw %llu acknowledged writes lost, the final "
                       "log lacks only %llu of the %zu answered early",
                       (unsigned long long)cores, (unsigned long long)lost, w->acked.count);
}

/* Leader mode: an early reply must equal the one its entry gives when applied. */
static void nodesim_check_leader_mode(struct nodesim_world *w) {
    uint64_t mismatches = w->spec_mismatches;
    for (uint32_t i = 1; i <= w->options.node_count; i++) {
        const struct nodesim_node *n = &w->nodes[i];
        if (n->node == NULL || node_engine(n->node) == NULL) continue;
        mismatches += cp_engine_leader_mismatches(node_engine(n->node));
    }
    if (mismatches > 0)
        sim_check_fail(&w->check, "leader mode: %llu early replies differed from the applied ones",
                       (unsigned long long)mismatches);
}

static int nodesim_violation(struct nodesim_world *w) {
    struct sim_stats *s = w->stats;
    s->failed = true;
    snprintf(s->what, sizeof(s->what), "%s", w->check.what);
    FILE *out = w->options.report;
    if (out == NULL) return -1;
    fprintf(out,
            "seed %llu: FAILED at step %llu, virtual %llu ms (node core, %u nodes, %s%s): "
            "%s\n",
            (unsigned long long)w->options.seed, (unsigned long long)s->steps,
            (unsigned long long)w->now_ms, w->options.node_count, w->async ? "async" : "sync",
            w->options.expiry ? ", expiry" : "", w->check.what);
    fprintf(out, "last trace lines:\n");
    sim_trace_dump(&w->trace, out, NODESIM_REPORT_TRACE_LINES);
    return -1;
}

int nodesim_run(const struct nodesim_options *options, struct sim_stats *stats) {
    struct nodesim_world *w = base_calloc(1, sizeof(*w));
    if (nodesim_world_init(w, options, stats) == 0) {
        nodesim_loop(w, w->options.run_ms);
        if (!w->check.failed) nodesim_settle(w);
        if (!w->check.failed) nodesim_full_check(w);
        nodesim_client_finish_all(w);
        if (!w->check.failed) nodesim_count_lost(w);
        for (uint32_t i = 1; i <= w->options.node_count && !w->check.failed; i++)
            nodesim_txn_check_counter(w, i);
        if (!w->check.failed) nodesim_lincheck(w);
        if (!w->check.failed) nodesim_check_leader_mode(w);
    }
    stats->virtual_ms = w->now_ms;
    stats->trace_hash = w->trace.hash;
    int rc = w->check.failed ? nodesim_violation(w) : 0;
    nodesim_world_deinit(w);
    free(w);
    return rc;
}
