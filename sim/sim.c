/*
 * The simulation loop (see sim.h, sim_world.h): picks the earliest pending event (a packet
 * arriving, a node's tick, an asynchronous sync completing, a restart, a client's move, a
 * fault), advances virtual time to it, carries it out through the target's or workload's
 * table, and compares whole logs every SIM_FULL_CHECK_STEPS steps (the target checks the
 * rest after every step). Ties are broken in a fixed order, so a seed replays exactly.
 * After run_ms the faults stop, the network heals, crashed nodes restart, clients stop
 * invoking, and the cluster must converge within SIM_SETTLE_MS_MAX; then the target's end
 * checks run and the workload's history must be linearizable (where the target is strict).
 */
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/util.h"
#include "sim_world.h"

#define SIM_FAULT_MS_MIN 100
#define SIM_FAULT_MS_MAX 1200
#define SIM_DOWN_MS_MIN 50
#define SIM_DOWN_MS_MAX 2000
#define SIM_SETTLE_MS_MAX 20000 /* a healed cluster must converge within this */
#define SIM_SETTLE_POLL_MS 25
#define SIM_FULL_CHECK_STEPS 2000 /* whole-log comparison every this many steps */
#define SIM_REPORT_TRACE_LINES 50

enum sim_event_kind {
    SIM_EV_NONE,
    SIM_EV_NET,
    SIM_EV_SYNC,
    SIM_EV_TICK,
    SIM_EV_RESTART,
    SIM_EV_CLIENT,
    SIM_EV_FAULT
};

void sim_options_default(struct sim_options *options) {
    memset(options, 0, sizeof(*options));
    options->seed = 1;
    options->node_count = 3;
    options->target = SIM_TARGET_RAFT;
    options->replication = SIM_REPLICATION_MAJORITY;
    options->run_ms = SIM_RUN_MS_DEFAULT;
}

const char *sim_replication_name(enum sim_replication r) {
    switch (r) {
    case SIM_REPLICATION_MAJORITY:
        return "majority";
    case SIM_REPLICATION_LEADER:
        return "leader";
    case SIM_REPLICATION_ALL:
        return "all";
    }
    return "?";
}

bool sim_options_valid(const struct sim_options *o, const char **why) {
    bool node = o->target == SIM_TARGET_NODE;
    *why = NULL;
    if (o->node_count < 1 || o->node_count > SIM_NODES_MAX)
        *why = "the node count must be 1 to 5";
    else if (o->membership && node)
        *why = "--membership is the raft target's (the node cores change members by command)";
    else if (!node && (o->expiry || o->big_values || o->ap || o->wal_segment_bytes != 0))
        *why = "--expiry, --big-values, --ap and --wal-segment-bytes are the node target's";
    return *why == NULL;
}

/* --- clocks ------------------------------------------------------------------------- */

void sim_clock_init(struct sim_clock *clock, struct prng *prng) {
    clock->offset_ms = (int64_t)prng_range(prng, 0, SIM_CLOCK_OFFSET_MS_MAX);
    clock->drift_ppm =
        (int64_t)prng_range(prng, 0, 2 * SIM_CLOCK_DRIFT_PPM_MAX + 1) - SIM_CLOCK_DRIFT_PPM_MAX;
    ASSERT(clock->drift_ppm <= SIM_CLOCK_DRIFT_PPM_MAX &&
           clock->drift_ppm >= -SIM_CLOCK_DRIFT_PPM_MAX);
}

uint64_t sim_clock_elapsed(const struct sim_clock *clock, uint64_t global_ms) {
    int64_t g = (int64_t)global_ms;
    return (uint64_t)(g + g * clock->drift_ppm / SIM_CLOCK_PPM);
}

uint64_t sim_clock_read(const struct sim_clock *clock, uint64_t global_ms) {
    return (uint64_t)clock->offset_ms + sim_clock_elapsed(clock, global_ms);
}

uint64_t sim_clock_global(const struct sim_clock *clock, uint64_t local_ms) {
    if (local_ms <= sim_clock_read(clock, 0)) return 0;
    int64_t span = (int64_t)local_ms - clock->offset_ms;
    uint64_t g = (uint64_t)(span * SIM_CLOCK_PPM / (SIM_CLOCK_PPM + clock->drift_ppm));
    while (sim_clock_read(clock, g) < local_ms) g++;
    while (g > 0 && sim_clock_read(clock, g - 1) >= local_ms) g--;
    ASSERT(sim_clock_read(clock, g) >= local_ms);
    return g;
}

/* --- the world ---------------------------------------------------------------------- */

int sim_world_violation(struct sim_world *w) {
    struct sim_stats *s = w->stats;
    s->failed = true;
    snprintf(s->what, sizeof(s->what), "%s", w->check.what);
    FILE *out = w->options.report;
    if (out == NULL) return -1;
    char kind[128];
    w->target->describe(w, kind, sizeof(kind));
    fprintf(out, "seed %llu: FAILED at step %llu, virtual %llu ms (%s): %s\n",
            (unsigned long long)w->options.seed, (unsigned long long)s->steps,
            (unsigned long long)w->now_ms, kind, w->check.what);
    fprintf(out, "last trace lines:\n");
    sim_trace_dump(&w->trace, out, SIM_REPORT_TRACE_LINES);
    return -1;
}

static void sim_world_net_quality(struct sim_world *w) {
    struct sim_net_options o = {.loss_permille = (uint32_t)prng_range(&w->prng_faults, 0, 120),
                                .dup_permille = (uint32_t)prng_range(&w->prng_faults, 0, 60),
                                .slow_permille = (uint32_t)prng_range(&w->prng_faults, 0, 100),
                                .delay_ms_min = 1,
                                .delay_ms_max = 1 + prng_range(&w->prng_faults, 0, 15),
                                .slow_delay_ms_max = prng_range(&w->prng_faults, 20, 400)};
    sim_net_set_options(&w->net, &o);
}

static int sim_world_init(struct sim_world *w, const struct sim_options *o,
                          struct sim_stats *stats) {
    memset(stats, 0, sizeof(*stats));
    w->options = *o;
    if (w->options.run_ms == 0) w->options.run_ms = SIM_RUN_MS_DEFAULT;
    ASSERT(o->node_count >= 1 && o->node_count <= SIM_NODES_MAX);
    w->stats = stats;
    prng_init(&w->prng_faults, o->seed * 31 + 11);
    prng_init(&w->prng_crash, o->seed * 37 + 13);
    w->async = prng_range(&w->prng_faults, 0, 3) == 0;
    stats->async_seed = w->async;
    struct sim_net_options quiet = {.delay_ms_min = 1, .delay_ms_max = 5};
    sim_net_init(&w->net, o->seed * 41 + 17, &quiet);
    sim_world_net_quality(w);
    sim_check_init(&w->check);
    sim_trace_init(&w->trace, o->trace);
    lincheck_history_init(&w->history);
    for (uint32_t i = 1; i <= o->node_count; i++) w->hosts[i].id = i;
    if (w->target->init(w) != 0) return -1;
    w->fault_at_ms = prng_range(&w->prng_faults, SIM_FAULT_MS_MIN, SIM_FAULT_MS_MAX);
    return 0;
}

static void sim_world_deinit(struct sim_world *w) {
    w->target->deinit(w);
    sim_net_deinit(&w->net);
    sim_check_deinit(&w->check);
    lincheck_history_deinit(&w->history);
}

/* --- the loop ----------------------------------------------------------------------- */

struct sim_next {
    uint64_t at_ms;
    enum sim_event_kind kind;
    uint32_t who;
};

static void sim_next_consider(struct sim_next *best, uint64_t at, enum sim_event_kind kind,
                              uint32_t who) {
    if (best->kind == SIM_EV_NONE || at < best->at_ms) *best = (struct sim_next){at, kind, who};
}

static struct sim_next sim_next_event(const struct sim_world *w) {
    struct sim_next best = {0};
    uint64_t at;
    if (sim_net_next_at(&w->net, &at)) sim_next_consider(&best, at, SIM_EV_NET, 0);
    for (uint32_t i = 1; i <= w->options.node_count; i++) {
        const struct sim_host *h = &w->hosts[i];
        if (h->up && h->sync_at_ms != 0) sim_next_consider(&best, h->sync_at_ms, SIM_EV_SYNC, i);
        if (h->up) sim_next_consider(&best, h->wake_ms, SIM_EV_TICK, i);
        if (!h->up) sim_next_consider(&best, h->restart_at_ms, SIM_EV_RESTART, i);
    }
    for (uint32_t i = 0; i < w->workload->client_count; i++) {
        at = w->workload->next_at(w, i);
        if (at != UINT64_MAX) sim_next_consider(&best, at, SIM_EV_CLIENT, i);
    }
    if (!w->settling) sim_next_consider(&best, w->fault_at_ms, SIM_EV_FAULT, 0);
    return best;
}

static void sim_fault(struct sim_world *w);

static void sim_deliver(struct sim_world *w) {
    struct sim_packet p;
    if (!sim_net_pop(&w->net, w->now_ms, &p)) return;
    w->target->receive(w, &p);
    free(p.bytes);
}

static void sim_do(struct sim_world *w, const struct sim_next *e) {
    ASSERT(e->at_ms >= w->now_ms);
    w->now_ms = e->at_ms;
    uint64_t before = w->stats->steps;
    switch (e->kind) {
    case SIM_EV_NET:
        sim_deliver(w);
        break;
    case SIM_EV_SYNC:
        w->target->sync_due(w, e->who);
        break;
    case SIM_EV_TICK:
        w->target->tick(w, e->who);
        break;
    case SIM_EV_RESTART:
        w->target->start(w, e->who);
        break;
    case SIM_EV_CLIENT:
        w->workload->event(w, e->who);
        break;
    case SIM_EV_FAULT:
        sim_fault(w);
        break;
    case SIM_EV_NONE:
        UNREACHABLE();
    }
    if (w->target->steps_are_events) w->stats->steps++;
    if (w->stats->steps / SIM_FULL_CHECK_STEPS != before / SIM_FULL_CHECK_STEPS)
        w->target->full_check(w);
}

/* Runs events until virtual time passes until_ms or a check fails. */
static void sim_loop(struct sim_world *w, uint64_t until_ms) {
    while (!w->check.failed) {
        struct sim_next e = sim_next_event(w);
        if (e.kind == SIM_EV_NONE || e.at_ms > until_ms) {
            w->now_ms = until_ms;
            return;
        }
        sim_do(w, &e);
    }
}

/* --- faults ------------------------------------------------------------------------- */

uint32_t sim_world_random_node(struct sim_world *w) {
    return 1 + (uint32_t)prng_range(&w->prng_faults, 0, w->options.node_count);
}

void sim_world_split(struct sim_world *w, uint32_t *side, uint32_t minority) {
    uint32_t order[SIM_NODES_MAX], count = w->options.node_count;
    for (uint32_t i = 0; i < count; i++) order[i] = i;
    for (uint32_t i = count - 1; i > 0; i--) {
        uint32_t j = (uint32_t)prng_range(&w->prng_faults, 0, i + 1), t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
    for (uint32_t i = 0; i < count; i++) side[order[i]] = i < minority ? 1 : 0;
}

static void sim_fault_partition(struct sim_world *w, uint64_t pattern) {
    uint32_t side[SIM_NODES_MAX] = {0}, count = w->options.node_count, bridge = 0;
    uint32_t minority = (count - 1) / 2;
    if (pattern == 0) { /* halves: a random minority against the majority */
        sim_world_split(w, side, 1 + (uint32_t)prng_range(&w->prng_faults, 0, minority));
    } else if (pattern == 1) { /* isolate the leader (or anyone) */
        uint32_t l = w->target->leader(w);
        side[(l != 0 ? l : sim_world_random_node(w)) - 1] = 1;
    } else { /* bridge: two sides that both see one node */
        sim_world_split(w, side, count / 2);
        bridge = sim_world_random_node(w);
        side[bridge - 1] = SIM_NET_GROUP_BRIDGE;
    }
    sim_net_partition(&w->net, side, count);
    w->stats->partitions++;
    uint64_t groups = 0;
    for (uint32_t i = 0; i < count; i++)
        if (side[i] == 1) groups |= 1u << i;
    sim_trace_add(&w->trace, w->now_ms, 0, SIM_TRACE_PARTITION, pattern, groups, bridge, 0);
}

static void sim_fault_one_way(struct sim_world *w) {
    uint32_t l = w->target->leader(w), from = l != 0 ? l : sim_world_random_node(w);
    bool all = prng_range(&w->prng_faults, 0, 2) == 0;
    for (uint32_t to = 1; to <= w->options.node_count; to++) {
        if (to == from || (!all && prng_range(&w->prng_faults, 0, 2) == 0)) continue;
        /* from can hear `to` but not reach it */
        sim_net_cut_link(&w->net, from, to, true);
        sim_trace_add(&w->trace, w->now_ms, 0, SIM_TRACE_LINK, from, to, 1, 0);
    }
    w->stats->partitions++;
}

static void sim_fault_crash(struct sim_world *w) {
    uint32_t down = 0, count = w->options.node_count;
    for (uint32_t i = 1; i <= count; i++) down += !w->hosts[i].up;
    if (down >= (count - 1) / 2) return; /* keep a majority alive so clients progress */
    uint32_t l = w->target->leader(w), victim = sim_world_random_node(w);
    if (l != 0 && prng_range(&w->prng_faults, 0, 3) == 0) victim = l;
    struct sim_host *h = &w->hosts[victim];
    if (!h->up) return;
    w->target->crash(w, victim, prng_range(&w->prng_crash, 0, 2) == 0);
    h->restart_at_ms = w->now_ms + prng_range(&w->prng_faults, SIM_DOWN_MS_MIN, SIM_DOWN_MS_MAX);
    w->stats->crashes++;
}

static void sim_fault_heal(struct sim_world *w) {
    sim_net_heal(&w->net);
    sim_trace_add(&w->trace, w->now_ms, 0, SIM_TRACE_HEAL, 0, 0, 0, 0);
    if (w->target->heal != NULL) w->target->heal(w);
}

/* One fault from prng_faults; the last slot is the target's own (membership changes, the
 * cores' FAULT commands). */
static void sim_fault(struct sim_world *w) {
    uint64_t roll = prng_range(&w->prng_faults, 0, 100);
    if (roll < 15) {
        sim_fault_heal(w);
    } else if (roll < 30) {
        sim_fault_partition(w, 0);
    } else if (roll < 40) {
        sim_fault_partition(w, 1);
    } else if (roll < 48) {
        sim_fault_partition(w, 2);
    } else if (roll < 58) {
        sim_fault_one_way(w);
    } else if (roll < 75) {
        sim_fault_crash(w);
    } else if (roll < 85) {
        sim_world_net_quality(w);
    } else if (w->target->fault != NULL) {
        w->target->fault(w);
    }
    w->fault_at_ms = w->now_ms + prng_range(&w->prng_faults, SIM_FAULT_MS_MIN, SIM_FAULT_MS_MAX);
}

/* --- the end: settle, converge, end checks, linearizability ------------------------- */

static void sim_settle(struct sim_world *w) {
    w->settling = true;
    sim_trace_add(&w->trace, w->now_ms, 0, SIM_TRACE_PHASE, 1, 0, 0, 0);
    sim_net_heal(&w->net);
    struct sim_net_options calm = {.delay_ms_min = 1, .delay_ms_max = 5};
    sim_net_set_options(&w->net, &calm);
    for (uint32_t i = 1; i <= w->options.node_count && !w->check.failed; i++)
        if (!w->hosts[i].up) w->target->start(w, i);
    if (w->target->settle_begin != NULL) w->target->settle_begin(w);
    uint64_t deadline = w->now_ms + SIM_SETTLE_MS_MAX;
    while (!w->check.failed && !w->target->converged(w)) {
        if (w->now_ms >= deadline) {
            sim_check_fail(&w->check, "convergence: not converged %u ms after healing",
                           SIM_SETTLE_MS_MAX);
            return;
        }
        if (w->target->settle_poll != NULL) w->target->settle_poll(w);
        sim_loop(w, w->now_ms + SIM_SETTLE_POLL_MS);
    }
}

static void sim_lincheck_report(struct sim_world *w, const struct lincheck_result *r) {
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

/* A non-linearizable history fails where the target is strict (leader mode may be
 * excused, see its lincheck_strict). UNKNOWN (search budget spent) proves nothing: it is
 * reported, and stats->lincheck says so to the caller, who must not count it a pass. */
static void sim_lincheck(struct sim_world *w) {
    struct lincheck_result r;
    lincheck_result_init(&r);
    struct lincheck_options budget = {.steps_max = SIM_LINCHECK_STEPS_MAX};
    int rc = lincheck_check(&w->history, &budget, &r);
    w->stats->lincheck_checked = true;
    w->stats->lincheck = rc == 0 ? r.verdict : LINCHECK_UNKNOWN;
    w->stats->lincheck_steps = r.steps;
    bool strict = w->target->lincheck_strict == NULL || w->target->lincheck_strict(w);
    if (rc == 0 && r.verdict == LINCHECK_NOT_LINEARIZABLE && strict) {
        sim_lincheck_report(w, &r);
        sim_check_fail(&w->check, "linearizability: history on key %s is not linearizable", r.key);
    } else if (w->stats->lincheck == LINCHECK_UNKNOWN && w->options.report != NULL) {
        fprintf(w->options.report, "lincheck: seed %llu: UNKNOWN on key %s (%s)\n",
                (unsigned long long)w->options.seed, r.key,
                rc != 0       ? "too many ops on one key"
                : r.memo_full ? "memo full"
                              : "step budget");
    }
    lincheck_result_deinit(&r);
}

static const struct sim_target *sim_target_for(enum sim_target_kind kind) {
    return kind == SIM_TARGET_NODE ? &sim_target_node : &sim_target_raft;
}

static const struct sim_workload *sim_workload_for(enum sim_target_kind kind) {
    return kind == SIM_TARGET_NODE ? &sim_workload_node_register : &sim_workload_raft_register;
}

int sim_run(const struct sim_options *options, struct sim_stats *stats) {
    const char *why = NULL;
    ASSERT(sim_options_valid(options, &why));
    const struct sim_target *target = sim_target_for(options->target);
    ASSERT(target->world_bytes >= sizeof(struct sim_world));
    struct sim_world *w = base_calloc(1, target->world_bytes);
    w->target = target;
    w->workload = sim_workload_for(options->target);
    if (sim_world_init(w, options, stats) == 0) {
        sim_loop(w, w->options.run_ms);
        if (!w->check.failed) sim_settle(w);
        if (!w->check.failed) w->target->full_check(w);
        w->workload->finish_all(w);
        if (!w->check.failed && w->target->end_check != NULL) w->target->end_check(w);
        if (!w->check.failed && w->workload->history) sim_lincheck(w);
        if (!w->check.failed && w->target->after_lincheck != NULL) w->target->after_lincheck(w);
    }
    stats->virtual_ms = w->now_ms;
    stats->trace_hash = w->trace.hash;
    int rc = w->check.failed ? sim_world_violation(w) : 0;
    sim_world_deinit(w);
    free(w);
    return rc;
}
