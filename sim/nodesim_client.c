/*
 * The node-core simulator's clients (see nodesim_internal.h). Each holds one RESP connection to a
 * node core and one operation at a time: get ("GET k", the linearizable default), put
 * ("SET k v"), cas ("SET k new IFEQ old", or "SET k new NX" from nil) on a few keys with
 * small values, and in expiry mode "SET eK v PX ms" on keys outside the history; outside it
 * too, SADD / SREM / HSET / HDEL on a few sets and hashes (checked by convergence:
 * nodesim_data.c) and transactions (nodesim_txn.c, which parses their replies); and now and
 * then a FLUSHALL, a delete of every key in the history (and of all the others). Replies:
 *   +OK, a value, nil      OK (cas: +OK swapped, nil not)
 *   -NOQUORUM, -TRYAGAIN, -NOREPLICAS (replication = all)
 *                          FAIL: not applied (the core promises it); reconnect elsewhere
 *   -TIMEOUT, closed, no reply within NODESIM_CLIENT_TIMEOUT_MS   INFO: unknown
 * Any other reply is a failure of the run. Every operation on the kN keys is recorded in
 * the lincheck history with virtual invoke and response times.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "nodesim_internal.h"

void nodesim_client_init(struct nodesim_world *w, struct nodesim_client *c, uint32_t id) {
    memset(c, 0, sizeof(*c));
    c->id = id;
    prng_init(&c->prng, w->sim.options.seed * 0x9e3779b97f4a7c15ull + id * 7919u + 5);
    c->state = NODESIM_CLIENT_IDLE;
    c->next_at_ms = prng_range(&c->prng, 0, 50);
    buf_init(&c->in);
}

void nodesim_client_deinit(struct nodesim_client *c) {
    buf_deinit(&c->in);
}

static void nodesim_client_history(struct nodesim_world *w, const struct lincheck_op *op) {
    struct errmsg msg = {{0}};
    if (lincheck_history_append(&w->sim.history, op, &msg) != 0)
        sim_check_fail(&w->sim.check, "history: %s", msg.text);
}

/* A FLUSHALL deletes every key of the history at one instant: a put of nil on each, with
 * the same span (checked key by key, which is weaker than one atomic step; see sim.h). */
static void nodesim_client_record_flush(struct nodesim_world *w, const struct lincheck_op *base) {
    for (uint32_t k = 0; k < NODESIM_KEYS && !w->sim.check.failed; k++) {
        struct lincheck_op op = *base;
        op.id = k == 0 ? base->id : ++w->sim.next_op_id;
        op.kind = LINCHECK_PUT;
        op.arg = (struct lincheck_value){.nil = true};
        snprintf(op.key, sizeof(op.key), "k%u", k);
        nodesim_client_history(w, &op);
    }
}

static void nodesim_client_record(struct nodesim_world *w, struct nodesim_client *c,
                                  enum lincheck_outcome outcome) {
    if (outcome == LINCHECK_OK) w->sim.stats->ops_ok++;
    if (outcome == LINCHECK_FAIL) w->sim.stats->ops_fail++;
    if (outcome == LINCHECK_INFO) w->sim.stats->ops_info++;
    nodesim_txn_record(w, c, outcome);
    nodesim_ap_record(w, c, outcome);
    struct lincheck_op op = {.id = c->op_id,
                             .client = c->id,
                             .invoke_ms = c->invoke_ms,
                             .response_ms = w->sim.now_ms,
                             .outcome = outcome};
    if (c->kind == NODESIM_OP_FLUSH) {
        nodesim_client_record_flush(w, &op);
        return;
    }
    if (c->kind >= NODESIM_OP_EXPIRE) return; /* outside the register model */
    snprintf(op.key, sizeof(op.key), "k%u", c->key);
    op.kind = c->kind == NODESIM_OP_GET   ? LINCHECK_GET
              : c->kind == NODESIM_OP_PUT ? LINCHECK_PUT
                                          : LINCHECK_CAS;
    op.arg = (struct lincheck_value){.nil = c->expect_nil, .v = c->expect_nil ? 0 : c->arg};
    op.arg2 = (struct lincheck_value){.v = c->arg2};
    op.got = (struct lincheck_value){.nil = c->got_nil, .v = c->got_nil ? 0 : c->got};
    op.swapped = c->swapped;
    nodesim_client_history(w, &op);
}

/* Closes the client's connection (telling the node, when it is up). */
static void nodesim_client_disconnect(struct nodesim_world *w, struct nodesim_client *c) {
    uint32_t n = c->node;
    uint64_t conn = c->conn_id;
    c->node = 0;
    c->conn_id = 0;
    buf_clear(&c->in);
    if (n != 0 && w->nodes[n].host->up)
        nodesim_node_event(
            w, &w->nodes[n],
            (struct node_event){.kind = NODE_EVENT_CLIENT_CLOSED, .client_id = conn});
}

static void nodesim_client_connect(struct nodesim_world *w, struct nodesim_client *c,
                                   uint32_t avoid) {
    ASSERT(c->node == 0);
    uint32_t n = nodesim_random_up_node(w, &c->prng, avoid);
    if (n == 0) return;
    c->node = n;
    c->conn_id = ++w->next_conn_id;
    nodesim_node_event(w, &w->nodes[n],
                       (struct node_event){.kind = NODE_EVENT_CLIENT_OPEN,
                                           .client_id = c->conn_id,
                                           .peer_addr = "sim"});
}

static void nodesim_client_invoke(struct nodesim_world *w, struct nodesim_client *c) {
    c->op_id = ++w->sim.next_op_id;
    uint64_t roll = prng_range(&c->prng, 0, 10);
    c->kind = roll < 4 ? NODESIM_OP_GET : roll < 7 ? NODESIM_OP_PUT : NODESIM_OP_CAS;
    if (w->sim.options.expiry && prng_range(&c->prng, 0, 5) == 0) c->kind = NODESIM_OP_EXPIRE;
    if (prng_range(&c->prng, 0, 5) == 0) {
        roll = prng_range(&c->prng, 0, 10);
        c->kind = roll < 5 ? NODESIM_OP_TRANSFER : roll < 7 ? NODESIM_OP_AUDIT : NODESIM_OP_INCR;
    }
    c->key = (uint32_t)prng_range(&c->prng, 0, NODESIM_KEYS);
    c->arg = (int64_t)prng_range(&c->prng, 0, NODESIM_VALUES);
    c->arg2 = (int64_t)prng_range(&c->prng, 0, NODESIM_VALUES);
    c->expect_nil = c->kind == NODESIM_OP_CAS && prng_range(&c->prng, 0, 8) == 0;
    if (c->kind == NODESIM_OP_EXPIRE) {
        c->key = (uint32_t)prng_range(&c->prng, 0, NODESIM_EXPIRY_KEYS);
        c->arg2 = (int64_t)prng_range(&c->prng, 1, 400);
    }
    if (c->kind < NODESIM_OP_TRANSFER && prng_range(&c->prng, 0, 100) == 0) {
        uint64_t value_bytes =
            prng_range(&c->prng, NODESIM_BIG_VALUE_BYTES_MIN, NODESIM_BIG_VALUE_BYTES_MAX + 1);
        uint32_t key = (uint32_t)prng_range(&c->prng, 0, NODESIM_BIG_KEYS);
        if (w->sim.options.big_values && w->big_bytes + value_bytes <= NODESIM_BIG_BYTES_MAX) {
            c->kind = NODESIM_OP_BIG;
            c->key = key;
            c->arg = (int64_t)value_bytes;
            w->big_bytes += value_bytes;
        }
    } else if (c->kind < NODESIM_OP_TRANSFER && prng_range(&c->prng, 0, 6) == 0) {
        c->kind = NODESIM_OP_SADD + (enum nodesim_op_kind)prng_range(&c->prng, 0, 4);
        c->key = (uint32_t)prng_range(&c->prng, 0, NODESIM_COLLECTIONS);
    }
    if (prng_range(&c->prng, 0, NODESIM_FLUSH_ONE_IN) == 0) {
        c->kind = NODESIM_OP_FLUSH;
        w->sim.stats->flushes++;
    }
    nodesim_ap_invoke(w, c);
    c->got_nil = false;
    c->got = 0;
    c->swapped = false;
    nodesim_txn_invoke(w, c);
    c->invoke_ms = w->sim.now_ms;
    c->deadline_ms = w->sim.now_ms + NODESIM_CLIENT_TIMEOUT_MS;
    c->next_at_ms = w->sim.now_ms + prng_range(&c->prng, 0, NODESIM_CLIENT_LINK_MS_MAX + 1);
    c->state = NODESIM_CLIENT_SENDING;
    sim_trace_add(&w->sim.trace, w->sim.now_ms, 0, SIM_TRACE_INVOKE, c->id, c->op_id, c->node,
                  c->kind);
}

static size_t nodesim_client_format(const struct nodesim_client *c, char *out, size_t bytes,
                                    uint32_t *replies) {
    *replies = 1;
    if (nodesim_ap_kind(c->kind)) return nodesim_ap_format(c, out, bytes);
    if (c->kind >= NODESIM_OP_TRANSFER) return nodesim_txn_format(c, out, bytes, replies);
    int n = 0;
    switch (c->kind) {
    case NODESIM_OP_GET:
        n = snprintf(out, bytes, "GET k%u\r\n", c->key);
        break;
    case NODESIM_OP_PUT:
        n = snprintf(out, bytes, "SET k%u %lld\r\n", c->key, (long long)c->arg);
        break;
    case NODESIM_OP_CAS:
        if (c->expect_nil)
            n = snprintf(out, bytes, "SET k%u %lld NX\r\n", c->key, (long long)c->arg2);
        else
            n = snprintf(out, bytes, "SET k%u %lld IFEQ %lld\r\n", c->key, (long long)c->arg2,
                         (long long)c->arg);
        break;
    case NODESIM_OP_EXPIRE:
        n = snprintf(out, bytes, "SET e%u %lld PX %lld\r\n", c->key, (long long)c->arg,
                     (long long)c->arg2);
        break;
    case NODESIM_OP_SADD:
    case NODESIM_OP_SREM:
        n = snprintf(out, bytes, "%s s%u m%lld\r\n", c->kind == NODESIM_OP_SADD ? "SADD" : "SREM",
                     c->key, (long long)c->arg);
        break;
    case NODESIM_OP_HSET:
        n = snprintf(out, bytes, "HSET h%u f%lld %lld\r\n", c->key, (long long)c->arg,
                     (long long)c->arg2);
        break;
    case NODESIM_OP_HDEL:
        n = snprintf(out, bytes, "HDEL h%u f%lld\r\n", c->key, (long long)c->arg);
        break;
    case NODESIM_OP_FLUSH:
        n = snprintf(out, bytes, "FLUSHALL\r\n");
        break;
    default:
        UNREACHABLE();
    }
    ASSERT(n > 0 && (size_t)n < bytes);
    return (size_t)n;
}

/* "SET bK <arg bytes>" as multibulk (an inline command is limited to 64 KiB) into
 * w->big_req; the bytes come from the op id, so replicas that differ show it. */
static void nodesim_client_format_big(struct nodesim_world *w, const struct nodesim_client *c) {
    ASSERT(c->kind == NODESIM_OP_BIG && c->arg > 0);
    ASSERT((uint64_t)c->arg <= NODESIM_BIG_VALUE_BYTES_MAX);
    size_t value_bytes = (size_t)c->arg;
    buf_clear(&w->big_req);
    buf_appendf(&w->big_req, "*3\r\n$3\r\nSET\r\n$2\r\nb%u\r\n$%zu\r\n", c->key, value_bytes);
    buf_reserve(&w->big_req, value_bytes + 2);
    uint8_t *v = w->big_req.data + w->big_req.len;
    for (size_t i = 0; i < value_bytes; i++) v[i] = (uint8_t)('a' + (c->op_id + i / 64) % 26);
    w->big_req.len += value_bytes;
    buf_append(&w->big_req, "\r\n", 2);
}

static void nodesim_client_send(struct nodesim_world *w, struct nodesim_client *c) {
    if (c->node == 0 || !w->nodes[c->node].host->up) {
        /* The connection is gone before the request left: it never reached a node. */
        c->outcome = LINCHECK_FAIL;
        c->state = NODESIM_CLIENT_REPLIED;
        c->next_at_ms = w->sim.now_ms;
        return;
    }
    char small[128];
    const uint8_t *req = (const uint8_t *)small;
    size_t bytes = 0;
    if (c->kind == NODESIM_OP_BIG) {
        nodesim_client_format_big(w, c);
        req = w->big_req.data;
        bytes = w->big_req.len;
        c->replies_due = 1;
    } else {
        bytes = nodesim_client_format(c, small, sizeof(small), &c->replies_due);
    }
    c->replies_got = 0;
    c->outcome = LINCHECK_OK; /* until a reply says otherwise */
    c->state = NODESIM_CLIENT_WAITING;
    c->next_at_ms = UINT64_MAX;
    nodesim_node_event(
        w, &w->nodes[c->node],
        (struct node_event){
            .kind = NODE_EVENT_CLIENT_INPUT, .client_id = c->conn_id, .data = req, .bytes = bytes});
}

static void nodesim_client_idle(struct nodesim_world *w, struct nodesim_client *c) {
    c->state = NODESIM_CLIENT_IDLE;
    c->next_at_ms = w->sim.now_ms + prng_range(&c->prng, 0, NODESIM_THINK_MS_MAX + 1);
}

static void nodesim_client_finish(struct nodesim_world *w, struct nodesim_client *c,
                                  enum lincheck_outcome outcome) {
    sim_trace_add(&w->sim.trace, w->sim.now_ms, 0, SIM_TRACE_REPLY, c->id, c->op_id, outcome,
                  c->got_nil ? UINT64_MAX : (uint64_t)c->got);
    nodesim_client_record(w, c, outcome);
    uint32_t was = c->node;
    if (outcome != LINCHECK_OK) nodesim_client_disconnect(w, c);
    nodesim_client_idle(w, c);
    if (c->node == 0 && !w->sim.settling) nodesim_client_connect(w, c, was);
}

void nodesim_client_event(struct nodesim_world *w, struct nodesim_client *c) {
    bool open = c->state == NODESIM_CLIENT_SENDING || c->state == NODESIM_CLIENT_WAITING;
    if (open && w->sim.now_ms >= c->deadline_ms) {
        sim_trace_add(&w->sim.trace, w->sim.now_ms, 0, SIM_TRACE_TIMEOUT, c->id, c->op_id, c->node,
                      0);
        nodesim_client_finish(w, c, LINCHECK_INFO);
        return;
    }
    if (w->sim.now_ms < c->next_at_ms) return;
    switch (c->state) {
    case NODESIM_CLIENT_IDLE:
        if (w->sim.settling) {
            c->next_at_ms = UINT64_MAX;
            return;
        }
        if (c->node == 0 || !w->nodes[c->node].host->up) {
            c->node = 0;
            nodesim_client_connect(w, c, 0);
        }
        nodesim_client_invoke(w, c);
        break;
    case NODESIM_CLIENT_SENDING:
        nodesim_client_send(w, c);
        break;
    case NODESIM_CLIENT_WAITING:
        break;
    case NODESIM_CLIENT_REPLIED:
        if (nodesim_txn_continues(c)) { /* the next round trip, on the same connection */
            c->state = NODESIM_CLIENT_SENDING;
            c->deadline_ms = w->sim.now_ms + NODESIM_CLIENT_TIMEOUT_MS;
            c->next_at_ms = w->sim.now_ms + prng_range(&c->prng, 0, NODESIM_CLIENT_LINK_MS_MAX + 1);
            break;
        }
        nodesim_client_finish(w, c, c->outcome);
        break;
    }
}

static bool nodesim_client_starts(const uint8_t *p, size_t bytes, const char *s) {
    size_t n = strlen(s);
    return bytes >= n && memcmp(p, s, n) == 0;
}

static bool nodesim_client_int(const uint8_t *p, size_t bytes, int64_t *out) {
    if (bytes == 0 || bytes > 18) return false;
    int64_t v = 0;
    for (size_t i = 0; i < bytes; i++) {
        if (p[i] < '0' || p[i] > '9') return false;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return true;
}

/* Interprets one complete reply value p[0..bytes) for c's operation. */
static int nodesim_client_parse(struct nodesim_world *w, struct nodesim_client *c, const uint8_t *p,
                                size_t bytes) {
    if (nodesim_ap_kind(c->kind)) {
        if (nodesim_ap_reply(c, p, bytes)) return 0;
        goto bad;
    }
    if (c->kind >= NODESIM_OP_TRANSFER) {
        if (nodesim_txn_reply(w, c, c->replies_got, p, bytes) == 0) return 0;
        if (w->sim.check.failed) return -1;
        goto bad;
    }
    bool nil =
        nodesim_client_starts(p, bytes, "$-1\r\n") || nodesim_client_starts(p, bytes, "_\r\n");
    c->outcome = LINCHECK_OK;
    if (nodesim_client_starts(p, bytes, "-NOQUORUM") ||
        nodesim_client_starts(p, bytes, "-TRYAGAIN") ||
        nodesim_client_starts(p, bytes, "-NOREPLICAS")) {
        c->outcome = LINCHECK_FAIL;
    } else if (nodesim_client_starts(p, bytes, "-TIMEOUT")) {
        c->outcome = LINCHECK_INFO;
    } else if (c->kind == NODESIM_OP_GET && nil) {
        c->got_nil = true;
    } else if (c->kind == NODESIM_OP_GET && p[0] == '$') {
        const uint8_t *v = memchr(p, '\n', bytes);
        ASSERT(v != NULL);
        v++;
        if (!nodesim_client_int(v, bytes - (size_t)(v - p) - 2, &c->got)) goto bad;
    } else if (c->kind >= NODESIM_OP_SADD && c->kind <= NODESIM_OP_HDEL) {
        /* How many members or fields one argument added or removed. */
        if (!nodesim_client_starts(p, bytes, ":0\r\n") &&
            !nodesim_client_starts(p, bytes, ":1\r\n"))
            goto bad;
    } else if (c->kind == NODESIM_OP_CAS && (nil || nodesim_client_starts(p, bytes, "+OK\r\n"))) {
        c->swapped = !nil;
    } else if (!nodesim_client_starts(p, bytes, "+OK\r\n")) {
        goto bad;
    }
    return 0;
bad:;
    char shown[128];
    size_t n = bytes < sizeof(shown) - 1 ? bytes : sizeof(shown) - 1;
    for (size_t i = 0; i < n; i++) shown[i] = p[i] >= 32 && p[i] < 127 ? (char)p[i] : '.';
    shown[n] = '\0';
    return sim_check_fail(&w->sim.check,
                          "client %u op %llu (kind %d) on node %u: unexpected "
                          "reply \"%s\"",
                          c->id, (unsigned long long)c->op_id, (int)c->kind, c->node, shown);
}

void nodesim_client_output(struct nodesim_world *w, uint32_t n, uint64_t conn_id,
                           const uint8_t *data, size_t bytes) {
    struct nodesim_client *c = NULL;
    for (uint32_t i = 0; i < NODESIM_CLIENTS; i++)
        if (w->clients[i].node == n && w->clients[i].conn_id == conn_id) c = &w->clients[i];
    if (c == NULL) return; /* a connection the client already gave up */
    buf_append(&c->in, data, bytes);
    if (buf_pending(&c->in) > NODESIM_REPLY_BYTES_MAX) {
        sim_check_fail(&w->sim.check, "client %u: %zu unparsed reply bytes", c->id,
                       buf_pending(&c->in));
        return;
    }
    struct resp_limits limits;
    resp_limits_default(&limits);
    /* A pipelined request's replies one by one; the round trip ends with its last. */
    while (buf_pending(&c->in) > 0 && !w->sim.check.failed) {
        size_t value_bytes = 0;
        struct errmsg msg;
        int rc =
            resp_scan_value(&limits, buf_head(&c->in), buf_pending(&c->in), &value_bytes, &msg);
        if (rc < 0) {
            sim_check_fail(&w->sim.check, "client %u: bad reply: %s", c->id, msg.text);
            return;
        }
        if (rc == 0) return;
        if (c->state != NODESIM_CLIENT_WAITING || c->replies_got >= c->replies_due) {
            sim_check_fail(&w->sim.check,
                           "client %u op %llu: a reply it did not ask for (state %d, "
                           "%zu of %zu bytes)",
                           c->id, (unsigned long long)c->op_id, (int)c->state, value_bytes,
                           buf_pending(&c->in));
            return;
        }
        if (nodesim_client_parse(w, c, buf_head(&c->in), value_bytes) != 0) return;
        buf_consume(&c->in, value_bytes);
        if (++c->replies_got < c->replies_due) continue;
        c->state = NODESIM_CLIENT_REPLIED;
        c->next_at_ms = w->sim.now_ms + prng_range(&c->prng, 0, NODESIM_CLIENT_LINK_MS_MAX + 1);
    }
}

void nodesim_client_conn_lost(struct nodesim_world *w, uint32_t n, uint64_t conn_id) {
    for (uint32_t i = 0; i < NODESIM_CLIENTS; i++) {
        struct nodesim_client *c = &w->clients[i];
        if (c->node != n || c->conn_id != conn_id) continue;
        c->node = 0;
        c->conn_id = 0;
        buf_clear(&c->in);
        if (c->state == NODESIM_CLIENT_WAITING || c->state == NODESIM_CLIENT_SENDING) {
            /* Sent (or on its way): it may have reached the log before the crash. */
            c->outcome = LINCHECK_INFO;
            c->state = NODESIM_CLIENT_REPLIED;
            c->next_at_ms = w->sim.now_ms + prng_range(&c->prng, 0, NODESIM_CLIENT_LINK_MS_MAX + 1);
        }
    }
}

void nodesim_client_finish_all(struct nodesim_world *w) {
    for (uint32_t i = 0; i < NODESIM_CLIENTS; i++) {
        struct nodesim_client *c = &w->clients[i];
        if (c->state == NODESIM_CLIENT_REPLIED)
            nodesim_client_record(w, c, c->outcome);
        else if (c->state != NODESIM_CLIENT_IDLE)
            nodesim_client_record(w, c, LINCHECK_INFO);
        c->state = NODESIM_CLIENT_IDLE;
        c->next_at_ms = UINT64_MAX;
    }
}

bool nodesim_clients_idle(const struct nodesim_world *w) {
    for (uint32_t i = 0; i < NODESIM_CLIENTS; i++)
        if (w->clients[i].state != NODESIM_CLIENT_IDLE) return false;
    return true;
}

static uint64_t nodesim_client_next_at(const struct sim_world *sw, uint32_t i) {
    const struct nodesim_client *c = &sim_world_of(const struct nodesim_world, sw)->clients[i];
    uint64_t at = c->next_at_ms;
    bool open = c->state == NODESIM_CLIENT_SENDING || c->state == NODESIM_CLIENT_WAITING;
    if (open && c->deadline_ms < at) at = c->deadline_ms;
    return at;
}

static void nodesim_client_event_at(struct sim_world *sw, uint32_t i) {
    struct nodesim_world *w = sim_world_of(struct nodesim_world, sw);
    nodesim_client_event(w, &w->clients[i]);
}

static void nodesim_client_finish_run(struct sim_world *sw) {
    nodesim_client_finish_all(sim_world_of(struct nodesim_world, sw));
}

const struct sim_workload sim_workload_node_register = {
    .name = "register",
    .client_count = NODESIM_CLIENTS,
    .history = true,
    .next_at = nodesim_client_next_at,
    .event = nodesim_client_event_at,
    .finish_all = nodesim_client_finish_run,
};
