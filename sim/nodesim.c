/*
 * The node target (see nodesim_internal.h): its table for the world's loop (sim.c). The
 * fault schedule's last slot sends the cores their own FAULT commands (nodesim_faultcmd.c).
 * Converged when the leader of the highest term committed an entry of its own term, every
 * replica applied exactly that, no client or FAULT command is outstanding, and every
 * replica holds the leader's data (nodesim_data.c) and a bank that sums to 0; then leader
 * mode's lost acknowledged writes are counted, the WATCH counter's bounds checked, the
 * register history must be linearizable, and every early reply must equal the applied one.
 */
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "nodesim_internal.h"

#define NODESIM_SEGMENT_BYTES (256u * 1024)

static struct nodesim_world *nodesim_world(struct sim_world *w) {
    return sim_world_of(struct nodesim_world, w);
}

static const struct nodesim_world *nodesim_world_const(const struct sim_world *w) {
    return sim_world_of(const struct nodesim_world, w);
}

struct keyspace *nodesim_keyspace(struct node_config *c, const char *name, const char *match) {
    ASSERT(c->keyspace_count < KEYSPACES_MAX);
    struct keyspace *ks = &c->keyspaces[c->keyspace_count++];
    memset(ks, 0, sizeof(*ks));
    snprintf(ks->name, sizeof(ks->name), "%s", name);
    ks->match_count = 1;
    snprintf(ks->match[0], sizeof(ks->match[0]), "%s", match);
    ks->consistency = KEYSPACE_CONSISTENCY_LINEARIZABLE;
    return ks;
}

/* The keyspace table the cores start with. Variant 0: majority seeds have none (the
 * default for every key), the others one keyspace holding every key. Variant 1, which
 * the keyspace-table changes switch to and back (nodesim_faultcmd.c), puts two in front:
 * the bank's accounts with replication = all, and the history's keys with lease reads
 * (still linearizable: the cores' monotonic clocks drift within the lease margin). */
void nodesim_config_keyspaces(struct nodesim_world *w) {
    struct node_config *c = &w->config;
    enum sim_replication replication = w->sim.options.replication;
    c->keyspace_count = 0;
    nodesim_ap_keyspaces(w, c); /* in both variants: an AP key never changes engine */
    if (w->keyspace_variant == 1) {
        nodesim_keyspace(c, "bank", "a*")->replication = KEYSPACE_REPLICATION_ALL;
        nodesim_keyspace(c, "registers", "k*")->consistency = KEYSPACE_CONSISTENCY_LEASE;
    }
    if (replication == SIM_REPLICATION_MAJORITY) return;
    nodesim_keyspace(c, "all", "*")->replication = replication == SIM_REPLICATION_LEADER
                                                       ? KEYSPACE_REPLICATION_LEADER
                                                       : KEYSPACE_REPLICATION_ALL;
}

/* CAPKV_SIM_ENGINE_TRACE=1: the cores' log lines on stderr, to debug one seed (they do
 * not enter the trace, whose hashes stay what they were). */
static void nodesim_engine_trace(void *ctx, const char *line) {
    (void)ctx;
    fprintf(stderr, "%s\n", line);
}

static void nodesim_config(struct nodesim_world *w) {
    struct node_config *c = &w->config;
    const struct sim_options *o = &w->sim.options;
    node_config_default(c);
    c->peer_count = o->node_count;
    for (uint32_t i = 0; i < c->peer_count; i++) {
        c->peers[i].id = i + 1;
        snprintf(c->peers[i].addr, sizeof(c->peers[i].addr), "sim:%u", i + 1);
    }
    c->election_timeout_ms_min = NODESIM_ELECTION_MS_MIN;
    c->election_timeout_ms_max = NODESIM_ELECTION_MS_MAX;
    c->heartbeat_ms = NODESIM_HEARTBEAT_MS;
    c->request_timeout_ms = NODESIM_REQUEST_TIMEOUT_MS;
    /* AP deletes (a set's last member removed) collected within the run, well after the
     * longest delay a message can take. */
    c->ap_tombstone_ms = NODESIM_AP_TOMBSTONE_MS;
    c->enable_faults = true; /* the fault schedule also sends FAULT (nodesim_faultcmd.c) */
    c->hash_seed = o->seed * 0x9e3779b97f4a7c15ull + 1;
    /* Small WAL segments: memdisk copies a file's whole image on every sync, and rotation
     * gets exercised. */
    c->wal_segment_bytes = o->wal_segment_bytes != 0 ? o->wal_segment_bytes : NODESIM_SEGMENT_BYTES;
    if (getenv("CAPKV_SIM_ENGINE_TRACE") != NULL) c->trace = nodesim_engine_trace;
    c->listen = "sim";
    c->dir = "memdisk";
    /* Snapshots (and InstallSnapshot, and the log's trail) every few hundred entries; from
     * the seed, not a prng, so the fault schedules stay what they were. */
    c->snapshot_entries = 40 + o->seed % 400;
    /* A scan of a few buckets a step: the workload's writes land in the middle of it. */
    c->snapshot_scans_per_step = 1; /* about 10 keys a step */
    /* InstallSnapshot in chunks of 64 B to 4 KiB (16 KiB to 1 MiB with big values): a
     * transfer takes many, so loss, delay, partitions and restarts land in one. */
    c->snapshot_chunk_bytes = (o->big_values ? 16384u : 64u) << (o->seed % 7);
    nodesim_config_keyspaces(w);
}

static int nodesim_init(struct sim_world *sw) {
    struct nodesim_world *w = nodesim_world(sw);
    buf_init(&w->packet);
    buf_init(&w->big_req);
    nodesim_config(w);
    nodesim_ap_init(w);
    for (uint32_t i = 0; i < NODESIM_CLIENTS; i++) nodesim_client_init(w, &w->clients[i], i + 1);
    for (uint32_t i = 1; i <= sw->options.node_count; i++) nodesim_node_init(w, &w->nodes[i], i);
    for (uint32_t i = 1; i <= sw->options.node_count; i++)
        if (nodesim_node_start(w, &w->nodes[i]) != 0) return -1;
    return 0;
}

static void nodesim_deinit(struct sim_world *sw) {
    struct nodesim_world *w = nodesim_world(sw);
    for (uint32_t i = 1; i <= sw->options.node_count; i++) nodesim_node_deinit(w, &w->nodes[i]);
    for (uint32_t i = 0; i < NODESIM_CLIENTS; i++) nodesim_client_deinit(&w->clients[i]);
    buf_deinit(&w->packet);
    buf_deinit(&w->big_req);
    nodesim_acked_deinit(&w->acked);
    nodesim_txn_deinit(w);
    nodesim_ap_deinit(w);
}

static int nodesim_start(struct sim_world *w, uint32_t id) {
    return nodesim_node_start(nodesim_world(w), &nodesim_world(w)->nodes[id]);
}

static void nodesim_crash(struct sim_world *w, uint32_t id, bool tear) {
    nodesim_node_crash(nodesim_world(w), &nodesim_world(w)->nodes[id], tear);
}

static void nodesim_tick(struct sim_world *w, uint32_t id) {
    nodesim_node_tick(nodesim_world(w), &nodesim_world(w)->nodes[id]);
}

static void nodesim_sync_due(struct sim_world *w, uint32_t id) {
    nodesim_node_sync_due(nodesim_world(w), &nodesim_world(w)->nodes[id]);
}

static void nodesim_receive(struct sim_world *w, const struct sim_packet *p) {
    nodesim_node_receive(nodesim_world(w), p);
}

uint32_t nodesim_leader(const struct nodesim_world *w) {
    uint32_t best = 0;
    uint64_t best_term = 0;
    for (uint32_t i = 1; i <= w->sim.options.node_count; i++) {
        const struct nodesim_node *n = &w->nodes[i];
        if (!n->host->up || raft_role(cp_engine_raft(node_engine(n->node))) != RAFT_LEADER)
            continue;
        uint64_t term = raft_term(cp_engine_raft(node_engine(n->node)));
        if (best == 0 || term > best_term) {
            best = i;
            best_term = term;
        }
    }
    return best;
}

static uint32_t nodesim_leader_of(const struct sim_world *w) {
    return nodesim_leader(nodesim_world_const(w));
}

static void nodesim_full_check(struct sim_world *sw) {
    struct nodesim_world *w = nodesim_world(sw);
    for (uint32_t a = 1; a <= sw->options.node_count; a++)
        for (uint32_t b = a + 1; b <= sw->options.node_count; b++)
            if (w->nodes[a].host->up && w->nodes[b].host->up)
                sim_check_logs(&sw->check, cp_engine_raft(node_engine(w->nodes[a].node)),
                               cp_engine_raft(node_engine(w->nodes[b].node)));
}

static void nodesim_heal(struct sim_world *w) {
    nodesim_faultcmd_heal(nodesim_world(w));
}

static void nodesim_fault(struct sim_world *w) {
    nodesim_faultcmd_inject(nodesim_world(w));
}

/* Every replica routes keys by the same table once converged. */
static bool nodesim_same_keyspaces(struct nodesim_world *w, uint32_t l) {
    const struct keyspace *lt = NULL, *t = NULL;
    uint32_t lc = cp_engine_keyspaces(node_engine(w->nodes[l].node), &lt);
    for (uint32_t i = 1; i <= w->sim.options.node_count; i++) {
        uint32_t c = cp_engine_keyspaces(node_engine(w->nodes[i].node), &t);
        if (!keyspace_table_equal(t, c, lt, lc))
            return sim_check_fail(&w->sim.check,
                                  "convergence: node %u routes by %u keyspaces, leader %u by %u "
                                  "(or other ones)",
                                  i, c, l, lc) == 0;
    }
    return true;
}

static bool nodesim_converged(struct sim_world *sw) {
    struct nodesim_world *w = nodesim_world(sw);
    uint32_t l = nodesim_leader(w);
    if (l == 0 || !nodesim_clients_idle(w) || !nodesim_faultcmd_idle(w)) return false;
    const struct raft *lr = cp_engine_raft(node_engine(w->nodes[l].node));
    uint64_t commit = raft_commit_index(lr), term = 0;
    /* The leader's own entry committed: everything before it is final. */
    if (!raft_term_at(lr, commit, &term) || term != raft_term(lr)) return false;
    for (uint32_t i = 1; i <= sw->options.node_count; i++) {
        const struct nodesim_node *n = &w->nodes[i];
        if (!n->host->up || n->host->sync_at_ms != 0 ||
            cp_engine_applied(node_engine(n->node)) != commit)
            return false;
    }
    for (uint32_t i = 1; i <= sw->options.node_count; i++)
        if (i != l && !nodesim_data_same(w, i, l)) return true; /* failed: stop settling */
    if (!nodesim_same_keyspaces(w, l)) return true;
    if (!nodesim_ap_converged(w)) return false; /* anti-entropy is still at work */
    for (uint32_t i = 1; i <= sw->options.node_count; i++)
        if (nodesim_txn_check_bank(w, i) != 0) return true;
    return true;
}

/* Leader mode: acknowledged writes the final log lacks (nodesim_acked.c), before the
 * lincheck, which they excuse. The cores' own counts (crashed ones' taken at the crash)
 * see fewer, never more. */
static void nodesim_count_lost(struct nodesim_world *w) {
    if (w->sim.options.replication != SIM_REPLICATION_LEADER) return;
    uint64_t cores = w->spec_lost;
    for (uint32_t i = 1; i <= w->sim.options.node_count; i++) {
        const struct nodesim_node *n = &w->nodes[i];
        if (n->node == NULL || node_engine(n->node) == NULL) continue;
        cores += cp_engine_leader_acked_lost(node_engine(n->node));
    }
    uint32_t l = nodesim_leader(w);
    ASSERT(l != 0); /* converged */
    uint64_t lost = nodesim_acked_lost(w, cp_engine_raft(node_engine(w->nodes[l].node)));
    w->sim.stats->lost_acked_writes = lost;
    if (cores > lost)
        sim_check_fail(&w->sim.check,
                       "leader mode: the cores saw %llu acknowledged writes lost, the final "
                       "log lacks only %llu of the %zu answered early",
                       (unsigned long long)cores, (unsigned long long)lost, w->acked.count);
}

static void nodesim_end_check(struct sim_world *sw) {
    struct nodesim_world *w = nodesim_world(sw);
    nodesim_count_lost(w);
    for (uint32_t i = 1; i <= sw->options.node_count && !sw->check.failed; i++)
        nodesim_txn_check_counter(w, i);
    if (!sw->check.failed) nodesim_ap_end_check(w);
}

/* Leader mode is excused a non-linearizable history only when it lost an acknowledged
 * write (nodesim_count_lost, run first): the core's reads wait for its early answers
 * (cp_spec), so nothing else may break linearizability (raftsim.c's toy is never held to
 * it). */
static bool nodesim_lincheck_strict(const struct sim_world *w) {
    return w->options.replication != SIM_REPLICATION_LEADER || w->stats->lost_acked_writes == 0;
}

/* Leader mode: an early reply must equal the one its entry gives when applied. */
static void nodesim_check_leader_mode(struct sim_world *sw) {
    struct nodesim_world *w = nodesim_world(sw);
    uint64_t mismatches = w->spec_mismatches;
    for (uint32_t i = 1; i <= sw->options.node_count; i++) {
        const struct nodesim_node *n = &w->nodes[i];
        if (n->node == NULL || node_engine(n->node) == NULL) continue;
        mismatches += cp_engine_leader_mismatches(node_engine(n->node));
    }
    if (mismatches > 0)
        sim_check_fail(&sw->check, "leader mode: %llu early replies differed from the applied ones",
                       (unsigned long long)mismatches);
}

static void nodesim_describe(const struct sim_world *w, char *out, size_t bytes) {
    snprintf(out, bytes, "node core, %u nodes, %s%s%s", w->options.node_count,
             w->async ? "async" : "sync", w->options.expiry ? ", expiry" : "",
             w->options.ap ? ", ap" : "");
}

const struct sim_target sim_target_node = {
    .name = "node",
    .world_bytes = sizeof(struct nodesim_world),
    .steps_are_events = false,
    .init = nodesim_init,
    .deinit = nodesim_deinit,
    .start = nodesim_start,
    .crash = nodesim_crash,
    .tick = nodesim_tick,
    .sync_due = nodesim_sync_due,
    .receive = nodesim_receive,
    .leader = nodesim_leader_of,
    .full_check = nodesim_full_check,
    .heal = nodesim_heal,
    .fault = nodesim_fault,
    .settle_begin = nodesim_heal, /* the cores' own faults too, before convergence is judged */
    .converged = nodesim_converged,
    .end_check = nodesim_end_check,
    .lincheck_strict = nodesim_lincheck_strict,
    .after_lincheck = nodesim_check_leader_mode,
    .describe = nodesim_describe,
};
