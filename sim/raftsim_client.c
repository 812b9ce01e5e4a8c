/*
 * Simulated clients: each runs one operation at a time (get, put or cas on a few keys with
 * a small value range, so cas conflicts happen), sends it to the node it believes leads,
 * learns leader ids from replies and retries elsewhere. Every attempt is one operation of
 * the lincheck history, with virtual invoke and response times:
 *   OK    the node answered with a result;
 *   FAIL  refused before raft took it (not leader, node down, failed read): no effect;
 *   INFO  timed out (RAFTSIM_CLIENT_TIMEOUT_MS) or the node lost leadership / saw the entry
 *         replaced: it may or may not take effect.
 * Client links are never cut (as in capkv: client ports stay reachable); they only delay.
 */
#include <stdio.h>
#include <string.h>

#include "base/assert.h"
#include "raftsim_internal.h"

void raftsim_client_init(struct raftsim_world *w, struct raftsim_client *c, uint32_t id) {
    memset(c, 0, sizeof(*c));
    c->id = id;
    prng_init(&c->prng, w->sim.options.seed * 0xff51afd7ed558ccdull + id * 104729u + 3);
    c->state = RAFTSIM_CLIENT_IDLE;
    c->next_at_ms = w->sim.now_ms + prng_range(&c->prng, 0, 50);
    c->leader_guess = 1 + (uint32_t)prng_range(&c->prng, 0, w->sim.options.node_count);
}

static void raftsim_client_record(struct raftsim_world *w, struct raftsim_client *c,
                                  enum lincheck_outcome outcome) {
    struct lincheck_op op = {.id = c->req.op_id,
                             .client = c->id,
                             .invoke_ms = c->invoke_ms,
                             .response_ms = w->sim.now_ms,
                             .outcome = outcome};
    snprintf(op.key, sizeof(op.key), "k%u", (unsigned)c->req.key);
    op.kind = c->req.kind == RAFTSIM_OP_GET   ? LINCHECK_GET
              : c->req.kind == RAFTSIM_OP_PUT ? LINCHECK_PUT
                                              : LINCHECK_CAS;
    op.arg =
        (struct lincheck_value){.nil = c->req.expect_nil, .v = c->req.expect_nil ? 0 : c->req.arg};
    op.arg2 = (struct lincheck_value){.v = c->req.arg2};
    op.got = (struct lincheck_value){.nil = c->got_nil, .v = c->got_nil ? 0 : c->got};
    op.swapped = c->swapped;
    struct errmsg msg = {{0}};
    if (lincheck_history_append(&w->sim.history, &op, &msg) != 0) {
        sim_check_fail(&w->sim.check, "history: %s", msg.text);
        return;
    }
    if (outcome == LINCHECK_OK) w->sim.stats->ops_ok++;
    if (outcome == LINCHECK_FAIL) w->sim.stats->ops_fail++;
    if (outcome == LINCHECK_INFO) w->sim.stats->ops_info++;
}

static void raftsim_client_invoke(struct raftsim_world *w, struct raftsim_client *c) {
    struct raftsim_request *r = &c->req;
    memset(r, 0, sizeof(*r));
    r->client = c->id;
    r->op_id = ++w->sim.next_op_id;
    uint64_t roll = prng_range(&c->prng, 0, 10);
    r->kind = roll < 4 ? RAFTSIM_OP_GET : roll < 7 ? RAFTSIM_OP_PUT : RAFTSIM_OP_CAS;
    r->key = (uint8_t)prng_range(&c->prng, 0, RAFTSIM_KEYS);
    r->arg = (int64_t)prng_range(&c->prng, 0, RAFTSIM_VALUES);
    r->arg2 = (int64_t)prng_range(&c->prng, 0, RAFTSIM_VALUES);
    r->expect_nil = r->kind == RAFTSIM_OP_CAS && prng_range(&c->prng, 0, 8) == 0;
    c->target = c->leader_guess;
    if (prng_range(&c->prng, 0, 20) == 0)
        c->target = 1 + (uint32_t)prng_range(&c->prng, 0, w->sim.options.node_count);
    c->invoke_ms = w->sim.now_ms;
    c->deadline_ms = w->sim.now_ms + RAFTSIM_CLIENT_TIMEOUT_MS;
    c->next_at_ms = w->sim.now_ms + prng_range(&c->prng, 0, RAFTSIM_CLIENT_LINK_MS_MAX + 1);
    c->state = RAFTSIM_CLIENT_SENDING;
    sim_trace_add(&w->sim.trace, w->sim.now_ms, 0, SIM_TRACE_INVOKE, c->id, r->op_id, c->target,
                  r->kind);
}

static void raftsim_client_idle(struct raftsim_world *w, struct raftsim_client *c) {
    c->state = RAFTSIM_CLIENT_IDLE;
    c->next_at_ms = w->sim.now_ms + prng_range(&c->prng, 0, RAFTSIM_THINK_MS_MAX + 1);
}

void raftsim_client_event(struct raftsim_world *w, struct raftsim_client *c) {
    if (c->state != RAFTSIM_CLIENT_IDLE && w->sim.now_ms >= c->deadline_ms &&
        (c->state != RAFTSIM_CLIENT_REPLIED || c->next_at_ms > c->deadline_ms)) {
        sim_trace_add(&w->sim.trace, w->sim.now_ms, 0, SIM_TRACE_TIMEOUT, c->id, c->req.op_id, 0,
                      0);
        raftsim_client_record(w, c, LINCHECK_INFO);
        c->leader_guess = 1 + (uint32_t)prng_range(&c->prng, 0, w->sim.options.node_count);
        raftsim_client_idle(w, c);
        return;
    }
    if (w->sim.now_ms < c->next_at_ms) return;
    switch (c->state) {
    case RAFTSIM_CLIENT_IDLE:
        if (!w->sim.settling)
            raftsim_client_invoke(w, c);
        else
            c->next_at_ms = UINT64_MAX;
        break;
    case RAFTSIM_CLIENT_SENDING:
        c->state = RAFTSIM_CLIENT_WAITING;
        c->next_at_ms = UINT64_MAX;
        raftsim_node_request(w, &w->nodes[c->target], &c->req);
        break;
    case RAFTSIM_CLIENT_WAITING:
        break;
    case RAFTSIM_CLIENT_REPLIED:
        sim_trace_add(&w->sim.trace, w->sim.now_ms, 0, SIM_TRACE_REPLY, c->id, c->req.op_id,
                      c->outcome, c->got_nil ? UINT64_MAX : (uint64_t)c->got);
        raftsim_client_record(w, c, c->outcome);
        raftsim_client_idle(w, c);
        break;
    }
}

void raftsim_client_reply(struct raftsim_world *w, uint32_t client, uint64_t op_id,
                          const struct raftsim_reply *reply) {
    ASSERT(client >= 1 && client <= RAFTSIM_CLIENTS);
    struct raftsim_client *c = &w->clients[client - 1];
    if (c->req.op_id != op_id || c->state != RAFTSIM_CLIENT_WAITING) return; /* moved on */
    c->outcome = reply->outcome;
    c->got_nil = reply->got_nil;
    c->got = reply->got;
    c->swapped = reply->swapped;
    if (reply->outcome == LINCHECK_FAIL || reply->outcome == LINCHECK_INFO)
        c->leader_guess = reply->leader_hint != 0 && reply->leader_hint != c->target
                              ? reply->leader_hint
                              : 1 + (uint32_t)prng_range(&c->prng, 0, w->sim.options.node_count);
    else
        c->leader_guess = c->target;
    c->state = RAFTSIM_CLIENT_REPLIED;
    c->next_at_ms = w->sim.now_ms + prng_range(&c->prng, 0, RAFTSIM_CLIENT_LINK_MS_MAX + 1);
}

void raftsim_client_finish_all(struct raftsim_world *w) {
    for (uint32_t i = 0; i < RAFTSIM_CLIENTS; i++) {
        struct raftsim_client *c = &w->clients[i];
        if (c->state == RAFTSIM_CLIENT_REPLIED)
            raftsim_client_record(w, c, c->outcome);
        else if (c->state != RAFTSIM_CLIENT_IDLE)
            raftsim_client_record(w, c, LINCHECK_INFO);
        c->state = RAFTSIM_CLIENT_IDLE;
        c->next_at_ms = UINT64_MAX;
    }
}

static uint64_t raftsim_client_next_at(const struct sim_world *sw, uint32_t i) {
    const struct raftsim_client *c = &sim_world_of(const struct raftsim_world, sw)->clients[i];
    uint64_t at = c->next_at_ms;
    if (c->state != RAFTSIM_CLIENT_IDLE && c->deadline_ms < at) at = c->deadline_ms;
    return at;
}

static void raftsim_client_event_at(struct sim_world *sw, uint32_t i) {
    struct raftsim_world *w = sim_world_of(struct raftsim_world, sw);
    raftsim_client_event(w, &w->clients[i]);
}

static void raftsim_client_finish(struct sim_world *sw) {
    raftsim_client_finish_all(sim_world_of(struct raftsim_world, sw));
}

const struct sim_workload sim_workload_raft_register = {
    .name = "register",
    .client_count = RAFTSIM_CLIENTS,
    .history = true,
    .next_at = raftsim_client_next_at,
    .event = raftsim_client_event_at,
    .finish_all = raftsim_client_finish,
};
