/*
 * The node cores' own fault injection (src/core/fault.c), driven by the node-core
 * simulator: FAULT commands sent on a connection of the simulator's own to each affected
 * node, alongside the virtual network's faults. PARTITION goes to every node that is up,
 * DROP / DELAY / CLOCK / PAUSE to one; the simulator's heals send FAULT HEAL and FAULT
 * CLOCK 0 to every node that holds one, and so does the settling phase before convergence
 * is checked. A core forgets its faults when it crashes (they live in struct node), so a
 * crash clears the node's `fault_set`.
 * The same connection carries the keyspace-table changes: the simulator switches the table
 * the cores start with (nodesim_config_keyspaces), and sends CLUSTER KEYSPACES RELOAD to
 * every core, so that the leader proposes the table it started with.
 * Every FAULT must be answered +OK, a RELOAD +OK or a refusal a client may get (not the
 * leader, no quorum, timed out): any other reply fails the run, and convergence waits for
 * every answer.
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
#define NODESIM_FAULTCMD_DUE_MAX 64 /* replies due on one connection (fault_lenient's bits) */

enum nodesim_faultcmd_kind {
    NODESIM_FAULTCMD_PARTITION,
    NODESIM_FAULTCMD_DROP,
    NODESIM_FAULTCMD_DELAY,
    NODESIM_FAULTCMD_CLOCK,
    NODESIM_FAULTCMD_PAUSE,
    NODESIM_FAULTCMD_HEAL,
    NODESIM_FAULTCMD_KEYSPACES,
    NODESIM_FAULTCMD_KIND_COUNT
};

/* Sends cmd (without CRLF) to node n, opening the simulator's connection first; lenient:
 * its reply may be a refusal. */
static void nodesim_faultcmd_send_as(struct nodesim_world *w, struct nodesim_node *n,
                                     const char *cmd, bool lenient) {
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
    ASSERT(n->fault_replies_due < NODESIM_FAULTCMD_DUE_MAX);
    if (lenient) n->fault_lenient |= 1ull << n->fault_replies_due;
    n->fault_replies_due++;
    w->sim.stats->fault_commands++;
    nodesim_node_event(w, n,
                       (struct node_event){.kind = NODE_EVENT_CLIENT_INPUT,
                                           .client_id = n->fault_conn,
                                           .data = (const uint8_t *)req,
                                           .bytes = (size_t)bytes});
}

static void nodesim_faultcmd_send(struct nodesim_world *w, struct nodesim_node *n,
                                  const char *cmd) {
    nodesim_faultcmd_send_as(w, n, cmd, false);
}

static bool nodesim_faultcmd_starts(const uint8_t *p, size_t bytes, const char *s) {
    size_t n = strlen(s);
    return bytes >= n && memcmp(p, s, n) == 0;
}

/* Whether reply p[0..bytes) (one whole value) may answer the command due next. */
static bool nodesim_faultcmd_accepts(const struct nodesim_node *n, const uint8_t *p, size_t bytes) {
    if (n->fault_replies_due == 0) return false;
    if (nodesim_faultcmd_starts(p, bytes, "+OK\r\n") && bytes == 5) return true;
    if ((n->fault_lenient & 1) == 0) return false;
    return nodesim_faultcmd_starts(p, bytes, "-NOQUORUM") ||
           nodesim_faultcmd_starts(p, bytes, "-TRYAGAIN") ||
           nodesim_faultcmd_starts(p, bytes, "-TIMEOUT") ||
           nodesim_faultcmd_starts(p, bytes, "-ERR cannot propose") ||
           (nodesim_faultcmd_starts(p, bytes, "-ERR node ") &&
            memmem(p, bytes, "is not the leader", 17) != NULL);
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
    struct resp_limits limits;
    resp_limits_default(&limits);
    while (buf_pending(&n->fault_in) > 0 && !w->sim.check.failed) {
        const uint8_t *p = buf_head(&n->fault_in);
        size_t pending = buf_pending(&n->fault_in), value_bytes = 0;
        struct errmsg msg;
        int rc = resp_scan_value(&limits, p, pending, &value_bytes, &msg);
        if (rc == 0) break;
        if (rc < 0 || !nodesim_faultcmd_accepts(n, p, value_bytes)) {
            size_t shown = pending < 60 ? pending : 60;
            sim_check_fail(&w->sim.check, "node %u: FAULT answered \"%.*s\" (%u answers due)",
                           n->id, (int)shown, (const char *)p, n->fault_replies_due);
            return true;
        }
        n->fault_replies_due--;
        n->fault_lenient >>= 1;
        buf_consume(&n->fault_in, value_bytes);
    }
    return true;
}

void nodesim_faultcmd_lost(struct nodesim_node *n) {
    n->fault_conn = 0;
    n->fault_replies_due = 0;
    n->fault_lenient = 0;
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

/* RELOAD on every core that is up: the leader proposes the table it started with (the
 * others refuse), which differs from the agreed one when it started after a switch; then
 * the other table for the cores that start from now on. */
static void nodesim_faultcmd_keyspaces(struct nodesim_world *w) {
    sim_trace_add(&w->sim.trace, w->sim.now_ms, 0, SIM_TRACE_FAULT, NODESIM_FAULTCMD_KEYSPACES,
                  w->keyspace_variant, 0, 0);
    w->sim.stats->keyspace_changes++;
    for (uint32_t i = 1; i <= w->sim.options.node_count && !w->sim.check.failed; i++)
        if (w->nodes[i].host->up)
            nodesim_faultcmd_send_as(w, &w->nodes[i], "CLUSTER KEYSPACES RELOAD", true);
    w->keyspace_variant ^= 1;
    nodesim_config_keyspaces(w);
}

void nodesim_faultcmd_inject(struct nodesim_world *w) {
    uint64_t roll = prng_range(&w->sim.prng_faults, 0, 100);
    if (roll < 20)
        nodesim_faultcmd_partition(w);
    else if (roll < 35)
        nodesim_faultcmd_one(w, NODESIM_FAULTCMD_DROP);
    else if (roll < 50)
        nodesim_faultcmd_one(w, NODESIM_FAULTCMD_DELAY);
    else if (roll < 65)
        nodesim_faultcmd_one(w, NODESIM_FAULTCMD_CLOCK);
    else if (roll < 75)
        nodesim_faultcmd_one(w, NODESIM_FAULTCMD_PAUSE);
    else
        nodesim_faultcmd_keyspaces(w);
}

bool nodesim_faultcmd_idle(const struct nodesim_world *w) {
    for (uint32_t i = 1; i <= w->sim.options.node_count; i++) {
        const struct nodesim_node *n = &w->nodes[i];
        if (n->host->up && (n->fault_set || n->fault_replies_due > 0)) return false;
    }
    return true;
}
