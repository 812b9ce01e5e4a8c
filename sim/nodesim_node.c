/*
 * The node-core simulator's nodes (see nodesim_internal.h): a shell for one node core. Every event
 * is followed by FLUSH, and the effects are carried out in node.h's order: released client
 * output to the sim clients, closes, peer sends to the virtual network, then the sync
 * (inline, or after a virtual latency on async seeds; never two in flight), reported with
 * SYNCED and another FLUSH; the next tick at wake_at_ms. After every step the node's Raft
 * state is observed for the invariants of sim_check.h.
 *
 * Peer payloads carry a header with both ends' incarnations: the shell's peer links are
 * TCP connections, so a frame never crosses a restart of either end; raft and AP payloads
 * are duplicated (TCP never duplicates, but both must cope with a retransmitting network:
 * an AP FORWARD runs once, an acknowledgement counts once), CP's others are not.
 */
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/util.h"
#include "nodesim_internal.h"
#include "storage/memdisk.h"

#define NODESIM_PACKET_HEADER_BYTES 8 /* from incarnation:u32, to incarnation:u32 */

/* The world's clock model: wall clocks from NODESIM_T0_MS with the node's offset, monotonic
 * clocks without; both drift. */
static uint64_t nodesim_wall_ms(const struct nodesim_node *n, uint64_t global_ms) {
    return NODESIM_T0_MS + sim_clock_read(&n->host->clock, global_ms);
}

static uint64_t nodesim_mono_ms(const struct nodesim_node *n, uint64_t global_ms) {
    return 1000 + sim_clock_elapsed(&n->host->clock, global_ms); /* never 0: "use now_ms" */
}

static struct raft *nodesim_raft(const struct nodesim_node *n) {
    ASSERT(n->host->up && n->node != NULL && node_engine(n->node) != NULL);
    return cp_engine_raft(node_engine(n->node));
}

uint32_t nodesim_random_up_node(struct nodesim_world *w, struct prng *prng, uint32_t avoid) {
    uint32_t up[SIM_NODES_MAX], count = 0;
    for (uint32_t i = 1; i <= w->sim.options.node_count; i++)
        if (w->nodes[i].host->up && i != avoid) up[count++] = i;
    if (count == 0) return avoid != 0 && w->nodes[avoid].host->up ? avoid : 0;
    return up[prng_range(prng, 0, count)];
}

/* Raft invariants after a step: election safety, commit safety and monotonicity. */
static void nodesim_observe(struct nodesim_world *w, struct nodesim_node *n) {
    struct raft *r = nodesim_raft(n);
    if (raft_role(r) != n->role_seen || raft_term(r) != n->term_seen) {
        sim_trace_add(&w->sim.trace, w->sim.now_ms, n->id, SIM_TRACE_ROLE, raft_role(r),
                      raft_term(r), raft_leader_id(r), raft_last_index(r));
        if (raft_role(r) == RAFT_LEADER) {
            w->sim.stats->leaders++;
            if (sim_check_leader(&w->sim.check, raft_term(r), n->id, r) != 0) return;
        }
        n->role_seen = raft_role(r);
        n->term_seen = raft_term(r);
    }
    /* A snapshot taken here or restored from a leader's (not told apart: both may follow
     * one AppendEntries). */
    const struct keyspace *table = NULL;
    uint32_t keyspaces = cp_engine_keyspaces(node_engine(n->node), &table);
    if (keyspaces != n->keyspaces_seen) { /* the variants differ in size (nodesim.c) */
        w->sim.stats->keyspace_tables++;
        n->keyspaces_seen = keyspaces;
    }
    if (raft_snapshot_index(r) > n->snapshot_seen) {
        w->sim.stats->snapshots++;
        n->snapshot_seen = raft_snapshot_index(r);
    }
    uint64_t commit = raft_commit_index(r);
    if (commit == n->commit_seen) return;
    sim_trace_add(&w->sim.trace, w->sim.now_ms, n->id, SIM_TRACE_COMMIT, n->commit_seen, commit,
                  raft_term(r), 0);
    if (sim_check_commit(&w->sim.check, n->id, r, n->commit_seen, commit) != 0) return;
    const struct raft *leaders[SIM_NODES_MAX];
    size_t count = 0;
    for (uint32_t i = 1; i <= w->sim.options.node_count; i++)
        if (w->nodes[i].host->up && raft_role(nodesim_raft(&w->nodes[i])) == RAFT_LEADER)
            leaders[count++] = nodesim_raft(&w->nodes[i]);
    if (sim_check_commit_leaders(&w->sim.check, leaders, count, n->commit_seen, commit) != 0)
        return;
    n->commit_seen = commit;
}

static void nodesim_send(struct nodesim_world *w, struct nodesim_node *n,
                         const struct node_peer_send *s) {
    ASSERT(s->to >= 1 && s->to <= w->sim.options.node_count && s->bytes > 0);
    buf_clear(&w->packet);
    buf_append_u32le(&w->packet, n->incarnation);
    buf_append_u32le(&w->packet, w->nodes[s->to].incarnation);
    buf_append(&w->packet, s->data, s->bytes);
    /* engine, then its payload kind */
    ASSERT(s->bytes >= 2 && (s->data[0] == ENGINE_CP || s->data[0] == ENGINE_AP));
    sim_trace_add(&w->sim.trace, w->sim.now_ms, n->id, SIM_TRACE_SEND, s->to, s->data[1], s->bytes,
                  0);
    struct sim_net_options saved = w->sim.net.options;
    /* Raft and AP payloads may come twice; CP's others not. */
    if (s->data[0] == ENGINE_CP && s->data[1] != CP_PEER_RAFT) w->sim.net.options.dup_permille = 0;
    sim_net_send(&w->sim.net, w->sim.now_ms, n->id, s->to, w->packet.data, w->packet.len);
    w->sim.net.options = saved;
}

/* Carries out one FLUSH's effects but the sync; returns false when the node is fatal. */
static bool nodesim_effects(struct nodesim_world *w, struct nodesim_node *n,
                            const struct node_effects *e) {
    if (e->fatal != 0) {
        sim_check_fail(&w->sim.check, "fatal: node %u: %s", n->id, node_fatal_text(n->node));
        return false;
    }
    for (size_t k = 0; k < e->write_count; k++) {
        size_t bytes = 0;
        const uint8_t *data = node_client_output(n->node, e->write_clients[k], &bytes);
        if (bytes == 0) continue;
        if (!nodesim_faultcmd_output(w, n, e->write_clients[k], data, bytes))
            nodesim_client_output(w, n->id, e->write_clients[k], data, bytes);
        node_client_sent(n->node, e->write_clients[k], bytes);
    }
    for (size_t k = 0; k < e->close_count; k++) {
        if (e->close_clients[k] == n->fault_conn)
            sim_check_fail(&w->sim.check, "node %u closed the FAULT connection", n->id);
        nodesim_client_conn_lost(w, n->id, e->close_clients[k]);
    }
    for (size_t k = 0; k < e->peer_send_count; k++) nodesim_send(w, n, &e->peer_sends[k]);
    uint64_t wall = nodesim_wall_ms(n, w->sim.now_ms);
    n->host->wake_ms = w->sim.now_ms + (e->wake_at_ms > wall ? e->wake_at_ms - wall : 1);
    return true;
}

/* One event, then FLUSH; returns the FLUSH's sync request (or NULL). */
static struct disk_file *nodesim_step(struct nodesim_world *w, struct nodesim_node *n,
                                      struct node_event ev, uint64_t *sync_lsn) {
    ev.now_ms = nodesim_wall_ms(n, w->sim.now_ms);
    ev.mono_ms = nodesim_mono_ms(n, w->sim.now_ms);
    struct node_effects e;
    node_step(n->node, &ev, &e);
    if (e.fatal != 0) {
        sim_check_fail(&w->sim.check, "fatal: node %u: %s", n->id, node_fatal_text(n->node));
        return NULL;
    }
    struct node_event flush = {
        .kind = NODE_EVENT_FLUSH, .now_ms = ev.now_ms, .mono_ms = ev.mono_ms};
    node_step(n->node, &flush, &e);
    w->sim.stats->steps++;
    if (!nodesim_effects(w, n, &e)) return NULL;
    nodesim_observe(w, n);
    nodesim_acked_observe(w, n);
    *sync_lsn = e.sync_lsn;
    return e.sync_file;
}

static void nodesim_sync_now(struct nodesim_world *w, struct nodesim_node *n,
                             struct disk_file *file, uint64_t lsn) {
    for (int chain = 0; file != NULL && !w->sim.check.failed; chain++) {
        if (chain == NODESIM_SYNC_CHAIN_MAX) {
            sim_check_fail(&w->sim.check, "node %u asked for %d syncs in a row", n->id, chain);
            return;
        }
        struct errmsg msg;
        int rc = n->disk.sync(&n->disk, file, &msg);
        if (rc != 0) {
            sim_check_fail(&w->sim.check, "node %u: memdisk sync failed: %s", n->id, msg.text);
            return;
        }
        sim_trace_add(&w->sim.trace, w->sim.now_ms, n->id, SIM_TRACE_SYNC, lsn, 0, 0, 0);
        struct node_event ev = {.kind = NODE_EVENT_SYNCED, .lsn = lsn};
        file = nodesim_step(w, n, ev, &lsn);
        if (file != NULL && w->sim.async) {
            n->sync_file = file;
            n->sync_lsn = lsn;
            n->host->sync_at_ms = w->sim.now_ms + prng_range(&n->prng, 1, NODESIM_FSYNC_MS_MAX + 1);
            return;
        }
    }
}

void nodesim_node_event(struct nodesim_world *w, struct nodesim_node *n, struct node_event ev) {
    ASSERT(n->host->up);
    if (w->sim.check.failed) return;
    uint64_t lsn = 0;
    struct disk_file *file = nodesim_step(w, n, ev, &lsn);
    if (file == NULL) return;
    ASSERT(n->host->sync_at_ms == 0); /* the core never asks for a second sync in flight */
    if (w->sim.async) {
        n->sync_file = file;
        n->sync_lsn = lsn;
        n->host->sync_at_ms = w->sim.now_ms + prng_range(&n->prng, 1, NODESIM_FSYNC_MS_MAX + 1);
    } else {
        nodesim_sync_now(w, n, file, lsn);
    }
    nodesim_ap_observe(w);
}

void nodesim_node_sync_due(struct nodesim_world *w, struct nodesim_node *n) {
    ASSERT(n->host->up && n->host->sync_at_ms != 0);
    struct disk_file *file = n->sync_file;
    n->sync_file = NULL;
    n->host->sync_at_ms = 0;
    nodesim_sync_now(w, n, file, n->sync_lsn);
}

void nodesim_node_tick(struct nodesim_world *w, struct nodesim_node *n) {
    nodesim_node_event(w, n, (struct node_event){.kind = NODE_EVENT_TICK});
}

void nodesim_node_receive(struct nodesim_world *w, const struct sim_packet *p) {
    struct nodesim_node *n = &w->nodes[p->to];
    ASSERT(p->len > NODESIM_PACKET_HEADER_BYTES);
    uint32_t from_inc = base_load_u32le(p->bytes), to_inc = base_load_u32le(p->bytes + 4);
    /* The TCP link it travelled on died with either end's restart. */
    if (!n->host->up || to_inc != n->incarnation || from_inc != w->nodes[p->from].incarnation)
        return;
    sim_trace_add(&w->sim.trace, w->sim.now_ms, n->id, SIM_TRACE_RECV, p->from,
                  p->bytes[NODESIM_PACKET_HEADER_BYTES], p->len, 0);
    nodesim_node_event(w, n,
                       (struct node_event){.kind = NODE_EVENT_PEER_MESSAGE,
                                           .peer_id = p->from,
                                           .data = p->bytes + NODESIM_PACKET_HEADER_BYTES,
                                           .bytes = p->len - NODESIM_PACKET_HEADER_BYTES});
}

void nodesim_node_init(struct nodesim_world *w, struct nodesim_node *n, uint32_t id) {
    memset(n, 0, sizeof(*n));
    n->id = id;
    n->host = &w->sim.hosts[id];
    prng_init(&n->prng, w->sim.options.seed * 0x2545f4914f6cdd1dull + id * 131u + 7);
    memdisk_init(&n->disk);
    buf_init(&n->fault_in);
    sim_clock_init(&n->host->clock, &n->prng);
    if (w->sim.options.ap) {
        /* AP refuses states from a clock more than max-clock-offset (500 ms) ahead, by
         * design: the nodes' clocks are NTP-like here (within 200 ms, 100 ppm), and the
         * cores' own FAULT CLOCK skews (up to 300 ms) come and go on top. */
        n->host->clock.offset_ms %= 200;
        n->host->clock.drift_ppm /= 100;
    }
}

/* node_free asserts (raftstore_close) while a sync is in flight: end it as failed first,
 * which makes the dying core fatal; its effects are not carried out. */
static void nodesim_node_free(struct nodesim_world *w, struct nodesim_node *n) {
    if (n->node == NULL) return;
    if (node_engine(n->node) != NULL && cp_engine_sync_in_flight(node_engine(n->node))) {
        struct node_event ev = {.kind = NODE_EVENT_SYNCED,
                                .lsn = n->sync_lsn,
                                .sync_error = ERR_IO,
                                .now_ms = nodesim_wall_ms(n, w->sim.now_ms),
                                .mono_ms = nodesim_mono_ms(n, w->sim.now_ms)};
        struct node_effects e;
        node_step(n->node, &ev, &e);
    }
    node_free(n->node);
    n->node = NULL;
}

void nodesim_node_deinit(struct nodesim_world *w, struct nodesim_node *n) {
    nodesim_node_free(w, n);
    memdisk_deinit(&n->disk);
    buf_deinit(&n->fault_in);
}

int nodesim_node_start(struct nodesim_world *w, struct nodesim_node *n) {
    ASSERT(!n->host->up && n->node == NULL);
    struct node_config config = w->config;
    config.id = n->id;
    config.seed = w->sim.options.seed * 1000003ull + n->id * 101u + n->incarnation;
    struct errmsg msg = {{0}};
    int rc = node_new(&config, &n->disk, nodesim_wall_ms(n, w->sim.now_ms), &n->node, &msg);
    if (rc != 0) {
        n->node = NULL;
        return sim_check_fail(&w->sim.check, "restart: node %u (incarnation %u): node_new: %s: %s",
                              n->id, n->incarnation, err_name(rc), msg.text);
    }
    n->host->up = true;
    n->commit_seen = 0;
    n->snapshot_seen = raft_snapshot_index(nodesim_raft(n));
    const struct keyspace *table = NULL;
    n->keyspaces_seen = cp_engine_keyspaces(node_engine(n->node), &table);
    n->role_seen = raft_role(nodesim_raft(n));
    n->term_seen = raft_term(nodesim_raft(n));
    n->host->sync_at_ms = 0;
    sim_trace_add(&w->sim.trace, w->sim.now_ms, n->id, SIM_TRACE_RESTART, n->term_seen,
                  raft_commit_index(nodesim_raft(n)), raft_last_index(nodesim_raft(n)),
                  n->incarnation);
    nodesim_node_tick(w, n);
    return w->sim.check.failed ? -1 : 0;
}

void nodesim_node_crash(struct nodesim_world *w, struct nodesim_node *n, bool tear) {
    ASSERT(n->host->up);
    sim_trace_add(&w->sim.trace, w->sim.now_ms, n->id, SIM_TRACE_CRASH, tear, n->incarnation, 0, 0);
    memdisk_crash(&n->disk, tear, prng_next(&w->sim.prng_crash));
    if (n->node != NULL && node_engine(n->node) != NULL) { /* leader mode's counters */
        w->spec_mismatches += cp_engine_leader_mismatches(node_engine(n->node));
        w->spec_lost += cp_engine_leader_acked_lost(node_engine(n->node));
    }
    nodesim_node_free(w, n);
    nodesim_ap_disk_loss(w, n); /* --ap: now and then its AP files go too */
    nodesim_faultcmd_lost(n);   /* the core's faults died with it */
    n->host->up = false;
    n->incarnation++;
    n->sync_file = NULL;
    n->host->sync_at_ms = 0;
    for (uint32_t i = 0; i < NODESIM_CLIENTS; i++)
        if (w->clients[i].node == n->id) nodesim_client_conn_lost(w, n->id, w->clients[i].conn_id);
}
