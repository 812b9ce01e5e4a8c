/*
 * The node cores' own fault injection (src/core/fault.c), driven by the node-core
 * simulator: FAULT commands sent on a connection of the simulator's own to each affected
 * node, alongside the virtual network's faults. PARTITION goes to every node that is up,
 * DROP / DELAY / CLOCK / PAUSE to one; the simulator's heals send FAULT HEAL and FAULT
 * CLOCK 0 to every node that holds one, and so does the settling phase before convergence
 * is checked. A core forgets its faults when it crashes (they live in struct node), so a
 * crash clears the node's `fault_set`.
 * Every FAULT must be answered +OK: any other reply fails the run, and convergence waits
 * for every answer.
 */
#include <stdio.h>
#include <string.h>

#include "base/assert.h"
#include "nodesim_internal.h"

#define NODESIM_FAULTCMD_DROP_PCT_MAX 90
#define NODESIM_FAULTCMD_DELAY_MS_MAX 200
#define NODESIM_FAULTCMD_CLOCK_MS_MAX 300
#define NODESIM_FAULTCMD_PAUSE_MS_MAX 1500
#define NODESIM_FAULTCMD_BYTES_MAX 64

enum nodesim_faultcmd_kind {
    NODESIM_FAULTCMD_PARTITION,
    NODESIM_FAULTCMD_DROP,
    NODESIM_FAULTCMD_DELAY,
    NODESIM_FAULTCMD_CLOCK,
    NODESIM_FAULTCMD_PAUSE,
    NODESIM_FAULTCMD_HEAL,
    NODESIM_FAULTCMD_KIND_COUNT
};

/* Sends "FAULT ..." (without CRLF) to node n, opening the simulator's connection first. */
static void nodesim_faultcmd_send(struct nodesim_world *w, struct nodesim_node *n,
                                  const char *cmd) {
    ASSERT(n->host->up);
    size_t len = strlen(cmd);
    ASSERT(len + 2 < NODESIM_FAULTCMD_BYTES_MAX);
    if (n->fault_conn == 0) {
        n->fault_conn = ++w->next_conn_id;
        nodesim_node_event(w, n,
                           (struct node_event){.kind = NODE_EVENT_CLIENT_OPEN,
                                               .client_id = n->fault_conn,
                                               .peer_addr = "sim-faults"});
    }
    char req[NODESIM_FAULTCMD_BYTES_MAX];
    int bytes = snprintf(req, sizeof(req), "%s\r\n", cmd);
    ASSERT(bytes > 0 && (size_t)bytes < sizeof(req));
    n->fault_replies_due++;
    w->sim.stats->fault_commands++;
    nodesim_node_event(w, n,
                       (struct node_event){.kind = NODE_EVENT_CLIENT_INPUT,
                                           .client_id = n->fault_conn,
                                           .data = (const uint8_t *)req,
                                           .bytes = (size_t)bytes});
}

bool nodesim_faultcmd_output(struct nodesim_world *w, struct nodesim_node *n, uint64_t conn_id,
                             const uint8_t *data, size_t bytes) {
    if (conn_id == 0 || conn_id != n->fault_conn) return false;
    buf_append(&n->fault_in, data, bytes);
    if (buf_pending(&n->fault_in) > NODESIM_REPLY_BYTES_MAX) {
        sim_check_fail(&w->sim.check, "node %u: %zu unparsed FAULT reply bytes", n->id,
                       buf_pending(&n->fault_in));
        return true;
    }
    const char *ok = "+OK\r\n";
    size_t ok_bytes = strlen(ok);
    while (buf_pending(&n->fault_in) >= ok_bytes && !w->sim.check.failed) {
        const uint8_t *p = buf_head(&n->fault_in);
        if (memcmp(p, ok, ok_bytes) != 0 || n->fault_replies_due == 0) {
            size_t pending = buf_pending(&n->fault_in), shown = pending < 60 ? pending : 60;
            sim_check_fail(&w->sim.check, "node %u: FAULT answered \"%.*s\" (%u answers due)",
                           n->id, (int)shown, (const char *)p, n->fault_replies_due);
            return true;
        }
        n->fault_replies_due--;
        buf_consume(&n->fault_in, ok_bytes);
    }
    return true;
}

void nodesim_faultcmd_lost(struct nodesim_node *n) {
    n->fault_conn = 0;
    n->fault_replies_due = 0;
    n->fault_set = false;
    buf_clear(&n->fault_in);
}

/* FAULT PARTITION a,b|c to every node that is up (a random minority on one side). */
static void nodesim_faultcmd_partition(struct nodesim_world *w) {
    uint32_t count = w->sim.options.node_count, side[SIM_NODES_MAX] = {0};
    sim_world_split(&w->sim, side,
                    1 + (uint32_t)prng_range(&w->sim.prng_faults, 0, (count - 1) / 2));
    char cmd[NODESIM_FAULTCMD_BYTES_MAX] = "FAULT PARTITION ";
    size_t len = strlen(cmd);
    uint64_t groups = 0;
    for (uint32_t g = 0; g < 2; g++) {
        if (g == 1) cmd[len++] = '|';
        bool first = true;
        for (uint32_t i = 0; i < count; i++) {
            if (side[i] != g) continue;
            len += (size_t)snprintf(cmd + len, sizeof(cmd) - len, "%s%u", first ? "" : ",", i + 1);
            first = false;
            if (g == 1) groups |= 1u << i;
        }
    }
    ASSERT(len < sizeof(cmd));
    sim_trace_add(&w->sim.trace, w->sim.now_ms, 0, SIM_TRACE_FAULT, NODESIM_FAULTCMD_PARTITION,
                  groups, 0, 0);
    for (uint32_t i = 1; i <= count && !w->sim.check.failed; i++) {
        if (!w->nodes[i].host->up) continue;
        w->nodes[i].fault_set = true;
        nodesim_faultcmd_send(w, &w->nodes[i], cmd);
    }
}

/* DROP, DELAY, CLOCK or PAUSE on one node that is up. */
static void nodesim_faultcmd_one(struct nodesim_world *w, enum nodesim_faultcmd_kind kind) {
    uint32_t id = nodesim_random_up_node(w, &w->sim.prng_faults, 0);
    if (id == 0) return;
    /* Another node, uniformly. */
    uint32_t peer = 1 + (uint32_t)prng_range(&w->sim.prng_faults, 0, w->sim.options.node_count - 1);
    if (peer >= id) peer++;
    char cmd[NODESIM_FAULTCMD_BYTES_MAX];
    int64_t v = 0;
    if (kind == NODESIM_FAULTCMD_DROP) {
        v = (int64_t)prng_range(&w->sim.prng_faults, 1, NODESIM_FAULTCMD_DROP_PCT_MAX + 1);
        snprintf(cmd, sizeof(cmd), "FAULT DROP %u %lld", peer, (long long)v);
    } else if (kind == NODESIM_FAULTCMD_DELAY) {
        v = (int64_t)prng_range(&w->sim.prng_faults, 1, NODESIM_FAULTCMD_DELAY_MS_MAX + 1);
        snprintf(cmd, sizeof(cmd), "FAULT DELAY %u %lld", peer, (long long)v);
    } else if (kind == NODESIM_FAULTCMD_CLOCK) {
        v = (int64_t)prng_range(&w->sim.prng_faults, 0, 2 * NODESIM_FAULTCMD_CLOCK_MS_MAX + 1) -
            NODESIM_FAULTCMD_CLOCK_MS_MAX;
        snprintf(cmd, sizeof(cmd), "FAULT CLOCK %lld", (long long)v);
    } else {
        ASSERT(kind == NODESIM_FAULTCMD_PAUSE);
        v = (int64_t)prng_range(&w->sim.prng_faults, 1, NODESIM_FAULTCMD_PAUSE_MS_MAX + 1);
        snprintf(cmd, sizeof(cmd), "FAULT PAUSE %lld", (long long)v);
    }
    ASSERT(peer != id && peer >= 1 && peer <= w->sim.options.node_count);
    sim_trace_add(&w->sim.trace, w->sim.now_ms, id, SIM_TRACE_FAULT, kind, peer, (uint64_t)v, 0);
    w->nodes[id].fault_set = true;
    nodesim_faultcmd_send(w, &w->nodes[id], cmd);
}

void nodesim_faultcmd_heal(struct nodesim_world *w) {
    for (uint32_t i = 1; i <= w->sim.options.node_count && !w->sim.check.failed; i++) {
        struct nodesim_node *n = &w->nodes[i];
        if (!n->host->up || !n->fault_set) continue;
        sim_trace_add(&w->sim.trace, w->sim.now_ms, i, SIM_TRACE_FAULT, NODESIM_FAULTCMD_HEAL, 0, 0,
                      0);
        n->fault_set = false;
        nodesim_faultcmd_send(w, n, "FAULT HEAL");
        nodesim_faultcmd_send(w, n, "FAULT CLOCK 0");
    }
}

void nodesim_faultcmd_inject(struct nodesim_world *w) {
    uint64_t roll = prng_range(&w->sim.prng_faults, 0, 100);
    if (roll < 25)
        nodesim_faultcmd_partition(w);
    else if (roll < 45)
        nodesim_faultcmd_one(w, NODESIM_FAULTCMD_DROP);
    else if (roll < 65)
        nodesim_faultcmd_one(w, NODESIM_FAULTCMD_DELAY);
    else if (roll < 85)
        nodesim_faultcmd_one(w, NODESIM_FAULTCMD_CLOCK);
    else
        nodesim_faultcmd_one(w, NODESIM_FAULTCMD_PAUSE);
}

bool nodesim_faultcmd_idle(const struct nodesim_world *w) {
    for (uint32_t i = 1; i <= w->sim.options.node_count; i++) {
        const struct nodesim_node *n = &w->nodes[i];
        if (n->host->up && (n->fault_set || n->fault_replies_due > 0)) return false;
    }
    return true;
}
