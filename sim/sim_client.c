/*
 * Simulated clients: each runs one operation at a time (get, put or cas on a few keys with
 * a small value range, so cas conflicts happen), sends it to the node it believes leads,
 * learns leader ids from replies and retries elsewhere. Every attempt is one operation of
 * the lincheck history, with virtual invoke and response times:
 *   OK    the node answered with a result;
 *   FAIL  refused before raft took it (not leader, node down, failed read): no effect;
 *   INFO  timed out (SIM_CLIENT_TIMEOUT_MS) or the node lost leadership / saw the entry
 *         replaced: it may or may not take effect.
 * Client links are never cut (as in capkv: client ports stay reachable); they only delay.
 */
#include <stdio.h>
#include <string.h>

#include "base/assert.h"
#include "sim_internal.h"

void sim_client_init(struct sim_world *w, struct sim_client *c, uint32_t id) {
    memset(c, 0, sizeof(*c));
    c->id = id;
    prng_init(&c->prng, w->options.seed * 0xff51afd7ed558ccdull + id * 104729u + 3);
    c->state = SIM_CLIENT_IDLE;
    c->next_at_ms = w->now_ms + prng_range(&c->prng, 0, 50);
    c->leader_guess = 1 + (uint32_t)prng_range(&c->prng, 0, w->options.node_count);
}

static void sim_client_record(struct sim_world *w, struct sim_client *c,
                              enum lincheck_outcome outcome) {
    struct lincheck_op op = {.id = c->req.op_id,
                             .client = c->id,
                             .invoke_ms = c->invoke_ms,
                             .response_ms = w->now_ms,
                             .outcome = outcome};
    snprintf(op.key, sizeof(op.key), "k%u", (unsigned)c->req.key);
    op.kind = c->req.kind == SIM_OP_GET   ? LINCHECK_GET
              : c->req.kind == SIM_OP_PUT ? LINCHECK_PUT
                                          : LINCHECK_CAS;
    op.arg =
        (struct lincheck_value){.nil = c->req.expect_nil, .v = c->req.expect_nil ? 0 : c->req.arg};
    op.arg2 = (struct lincheck_value){.v = c->req.arg2};
    op.got = (struct lincheck_value){.nil = c->got_nil, .v = c->got_nil ? 0 : c->got};
    op.swapped = c->swapped;
    struct errmsg msg = {{0}};
    if (lincheck_history_append(&w->history, &op, &msg) != 0) {
        sim_check_fail(&w->check, "history: %s", msg.text);
        return;
    }
    if (outcome == LINCHECK_OK) w->stats->ops_ok++;
    if (outcome == LINCHECK_FAIL) w->stats->ops_fail++;
    if (outcome == LINCHECK_INFO) w->stats->ops_info++;
}

static void sim_client_invoke(struct sim_world *w, struct sim_client *c) {
    struct sim_request *r = &c->req;
    memset(r, 0, sizeof(*r));
    r->client = c->id;
    r->op_id = ++w->next_op_id;
    uint64_t roll = prng_range(&c->prng, 0, 10);
    r->kind = roll < 4 ? SIM_OP_GET : roll < 7 ? SIM_OP_PUT : SIM_OP_CAS;
    r->key = (uint8_t)prng_range(&c->prng, 0, SIM_KEYS);
    r->arg = (int64_t)prng_range(&c->prng, 0, SIM_VALUES);
    r->arg2 = (int64_t)prng_range(&c->prng, 0, SIM_VALUES);
    r->expect_nil = r->kind == SIM_OP_CAS && prng_range(&c->prng, 0, 8) == 0;
    c->target = c->leader_guess;
    if (prng_range(&c->prng, 0, 20) == 0)
        c->target = 1 + (uint32_t)prng_range(&c->prng, 0, w->options.node_count);
    c->invoke_ms = w->now_ms;
    c->deadline_ms = w->now_ms + SIM_CLIENT_TIMEOUT_MS;
    c->next_at_ms = w->now_ms + prng_range(&c->prng, 0, SIM_CLIENT_LINK_MS_MAX + 1);
    c->state = SIM_CLIENT_SENDING;
    sim_trace_add(&w->trace, w->now_ms, 0, SIM_TRACE_INVOKE, c->id, r->op_id, c->target, r->kind);
}

static void sim_client_idle(struct sim_world *w, struct sim_client *c) {
    c->state = SIM_CLIENT_IDLE;
    c->next_at_ms = w->now_ms + prng_range(&c->prng, 0, SIM_THINK_MS_MAX + 1);
}

void sim_client_event(struct sim_world *w, struct sim_client *c) {
    if (c->state != SIM_CLIENT_IDLE && w->now_ms >= c->deadline_ms &&
        (c->state != SIM_CLIENT_REPLIED || c->next_at_ms > c->deadline_ms)) {
        sim_trace_add(&w->trace, w->now_ms, 0, SIM_TRACE_TIMEOUT, c->id, c->req.op_id, 0, 0);
        sim_client_record(w, c, LINCHECK_INFO);
        c->leader_guess = 1 + (uint32_t)prng_range(&c->prng, 0, w->options.node_count);
        sim_client_idle(w, c);
        return;
    }
    if (w->now_ms < c->next_at_ms) return;
    switch (c->state) {
    case SIM_CLIENT_IDLE:
        if (!w->settling)
            sim_client_invoke(w, c);
        else
            c->next_at_ms = UINT64_MAX;
        break;
    case SIM_CLIENT_SENDING:
        c->state = SIM_CLIENT_WAITING;
        c->next_at_ms = UINT64_MAX;
        sim_node_request(w, &w->nodes[c->target], &c->req);
        break;
    case SIM_CLIENT_WAITING:
        break;
    case SIM_CLIENT_REPLIED:
        sim_trace_add(&w->trace, w->now_ms, 0, SIM_TRACE_REPLY, c->id, c->req.op_id, c->outcome,
                      c->got_nil ? UINT64_MAX : (uint64_t)c->got);
        sim_client_record(w, c, c->outcome);
        sim_client_idle(w, c);
        break;
    }
}

void sim_client_reply(struct sim_world *w, uint32_t client, uint64_t op_id,
                      const struct sim_reply *reply) {
    ASSERT(client >= 1 && client <= SIM_CLIENTS);
    struct sim_client *c = &w->clients[client - 1];
    if (c->req.op_id != op_id || c->state != SIM_CLIENT_WAITING) return; /* moved on */
    c->outcome = reply->outcome;
    c->got_nil = reply->got_nil;
    c->got = reply->got;
    c->swapped = reply->swapped;
    if (reply->outcome == LINCHECK_FAIL || reply->outcome == LINCHECK_INFO)
        c->leader_guess = reply->leader_hint != 0 && reply->leader_hint != c->target
                              ? reply->leader_hint
                              : 1 + (uint32_t)prng_range(&c->prng, 0, w->options.node_count);
    else
        c->leader_guess = c->target;
    c->state = SIM_CLIENT_REPLIED;
    c->next_at_ms = w->now_ms + prng_range(&c->prng, 0, SIM_CLIENT_LINK_MS_MAX + 1);
}

void sim_client_finish_all(struct sim_world *w) {
    for (uint32_t i = 0; i < SIM_CLIENTS; i++) {
        struct sim_client *c = &w->clients[i];
        if (c->state == SIM_CLIENT_REPLIED)
            sim_client_record(w, c, c->outcome);
        else if (c->state != SIM_CLIENT_IDLE)
            sim_client_record(w, c, LINCHECK_INFO);
        c->state = SIM_CLIENT_IDLE;
        c->next_at_ms = UINT64_MAX;
    }
}
