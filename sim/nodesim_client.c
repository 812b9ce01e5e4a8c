/*
 * The node-core simulator's clients (see nodesim.h). Each holds one RESP connection to a
 * node core and one operation at a time: get ("GET k", the linearizable default), put
 * ("SET k v"), cas ("SET k new IFEQ old", or "SET k new NX" from nil) on a few keys with
 * small values, and in expiry mode "SET eK v PX ms" on keys outside the history. Replies:
 *   +OK, a value, nil      OK (cas: +OK swapped, nil not)
 *   -NOQUORUM, -TRYAGAIN, -NOREPLICAS (replication = all)
 *                          FAIL: not applied (the core promises it); reconnect elsewhere
 *   -TIMEOUT, closed, no reply within NODESIM_CLIENT_TIMEOUT_MS   INFO: unknown
 * Any other reply is a failure of the run. Every operation is recorded in the lincheck
 * history with virtual invoke and response times.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "nodesim_internal.h"

void nodesim_client_init(struct nodesim_world *w, struct nodesim_client *c, uint32_t id) {
    memset(c, 0, sizeof(*c));
    c->id = id;
    prng_init(&c->prng, w->options.seed * 0x9e3779b97f4a7c15ull + id * 7919u + 5);
    c->state = NODESIM_CLIENT_IDLE;
    c->next_at_ms = prng_range(&c->prng, 0, 50);
    buf_init(&c->in);
}

void nodesim_client_deinit(struct nodesim_client *c) {
    buf_deinit(&c->in);
}

static void nodesim_client_record(struct nodesim_world *w, struct nodesim_client *c,
                                  enum lincheck_outcome outcome) {
    if (outcome == LINCHECK_OK) w->stats->ops_ok++;
    if (outcome == LINCHECK_FAIL) w->stats->ops_fail++;
    if (outcome == LINCHECK_INFO) w->stats->ops_info++;
    if (c->kind == NODESIM_OP_EXPIRE) return; /* outside the register model */
    struct lincheck_op op = {.id = c->op_id,
                             .client = c->id,
                             .invoke_ms = c->invoke_ms,
                             .response_ms = w->now_ms,
                             .outcome = outcome};
    snprintf(op.key, sizeof(op.key), "k%u", c->key);
    op.kind = c->kind == NODESIM_OP_GET   ? LINCHECK_GET
              : c->kind == NODESIM_OP_PUT ? LINCHECK_PUT
                                          : LINCHECK_CAS;
    op.arg = (struct lincheck_value){.nil = c->expect_nil, .v = c->expect_nil ? 0 : c->arg};
    op.arg2 = (struct lincheck_value){.v = c->arg2};
    op.got = (struct lincheck_value){.nil = c->got_nil, .v = c->got_nil ? 0 : c->got};
    op.swapped = c->swapped;
    struct errmsg msg = {{0}};
    if (lincheck_history_append(&w->history, &op, &msg) != 0)
        sim_check_fail(&w->check, "history: %s", msg.text);
}

/* Closes the client's connection (telling the node, when it is up). */
static void nodesim_client_disconnect(struct nodesim_world *w, struct nodesim_client *c) {
    uint32_t n = c->node;
    uint64_t conn = c->conn_id;
    c->node = 0;
    c->conn_id = 0;
    buf_clear(&c->in);
    if (n != 0 && w->nodes[n].up)
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
    c->op_id = ++w->next_op_id;
    uint64_t roll = prng_range(&c->prng, 0, 10);
    c->kind = roll < 4 ? NODESIM_OP_GET : roll < 7 ? NODESIM_OP_PUT : NODESIM_OP_CAS;
    if (w->options.expiry && prng_range(&c->prng, 0, 5) == 0) c->kind = NODESIM_OP_EXPIRE;
    c->key = (uint32_t)prng_range(&c->prng, 0, NODESIM_KEYS);
    c->arg = (int64_t)prng_range(&c->prng, 0, NODESIM_VALUES);
    c->arg2 = (int64_t)prng_range(&c->prng, 0, NODESIM_VALUES);
    c->expect_nil = c->kind == NODESIM_OP_CAS && prng_range(&c->prng, 0, 8) == 0;
    if (c->kind == NODESIM_OP_EXPIRE) {
        c->key = (uint32_t)prng_range(&c->prng, 0, NODESIM_EXPIRY_KEYS);
        c->arg2 = (int64_t)prng_range(&c->prng, 1, 400);
    }
    c->got_nil = false;
    c->got = 0;
    c->swapped = false;
    c->invoke_ms = w->now_ms;
    c->deadline_ms = w->now_ms + NODESIM_CLIENT_TIMEOUT_MS;
    c->next_at_ms = w->now_ms + prng_range(&c->prng, 0, NODESIM_CLIENT_LINK_MS_MAX + 1);
    c->state = NODESIM_CLIENT_SENDING;
    sim_trace_add(&w->trace, w->now_ms, 0, SIM_TRACE_INVOKE, c->id, c->op_id, c->node, c->kind);
}

static size_t nodesim_client_format(const struct nodesim_client *c, char *out, size_t bytes) {
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
    }
    ASSERT(n > 0 && (size_t)n < bytes);
    return (size_t)n;
}

static void nodesim_client_send(struct nodesim_world *w, struct nodesim_client *c) {
    if (c->node == 0 || !w->nodes[c->node].up) {
        /* The connection is gone before the request left: it never reached a node. */
        c->outcome = LINCHECK_FAIL;
        c->state = NODESIM_CLIENT_REPLIED;
        c->next_at_ms = w->now_ms;
        return;
    }
    char req[128];
    size_t bytes = nodesim_client_format(c, req, sizeof(req));
    c->state = NODESIM_CLIENT_WAITING;
    c->next_at_ms = UINT64_MAX;
    nodesim_node_event(w, &w->nodes[c->node],
                       (struct node_event){.kind = NODE_EVENT_CLIENT_INPUT,
                                           .client_id = c->conn_id,
                                           .data = (const uint8_t *)req,
                                           .bytes = bytes});
}

static void nodesim_client_idle(struct nodesim_world *w, struct nodesim_client *c) {
    c->state = NODESIM_CLIENT_IDLE;
    c->next_at_ms = w->now_ms + prng_range(&c->prng, 0, NODESIM_THINK_MS_MAX + 1);
}

static void nodesim_client_finish(struct nodesim_world *w, struct nodesim_client *c,
                                  enum lincheck_outcome outcome) {
    sim_trace_add(&w->trace, w->now_ms, 0, SIM_TRACE_REPLY, c->id, c->op_id, outcome,
                  c->got_nil ? UINT64_MAX : (uint64_t)c->got);
    nodesim_client_record(w, c, outcome);
    uint32_t was = c->node;
    if (outcome != LINCHECK_OK) nodesim_client_disconnect(w, c);
    nodesim_client_idle(w, c);
    if (c->node == 0 && !w->settling) nodesim_client_connect(w, c, was);
}

void nodesim_client_event(struct nodesim_world *w, struct nodesim_client *c) {
    bool open = c->state == NODESIM_CLIENT_SENDING || c->state == NODESIM_CLIENT_WAITING;
    if (open && w->now_ms >= c->deadline_ms) {
        sim_trace_add(&w->trace, w->now_ms, 0, SIM_TRACE_TIMEOUT, c->id, c->op_id, c->node, 0);
        nodesim_client_finish(w, c, LINCHECK_INFO);
        return;
    }
    if (w->now_ms < c->next_at_ms) return;
    switch (c->state) {
    case NODESIM_CLIENT_IDLE:
        if (w->settling) {
            c->next_at_ms = UINT64_MAX;
            return;
        }
        if (c->node == 0 || !w->nodes[c->node].up) {
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
    return sim_check_fail(&w->check,
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
    if (c->in.len > NODESIM_REPLY_BYTES_MAX) {
        sim_check_fail(&w->check, "client %u: %zu unparsed reply bytes", c->id, c->in.len);
        return;
    }
    struct resp_limits limits;
    resp_limits_default(&limits);
    size_t value_bytes = 0;
    struct errmsg msg;
    int rc = resp_scan_value(&limits, c->in.data, c->in.len, &value_bytes, &msg);
    if (rc < 0) {
        sim_check_fail(&w->check, "client %u: bad reply: %s", c->id, msg.text);
        return;
    }
    if (rc == 0) return;
    if (c->state != NODESIM_CLIENT_WAITING || value_bytes != c->in.len) {
        sim_check_fail(&w->check,
                       "client %u op %llu: a reply it did not ask for (state %d, "
                       "%zu of %zu bytes)",
                       c->id, (unsigned long long)c->op_id, (int)c->state, value_bytes, c->in.len);
        return;
    }
    if (nodesim_client_parse(w, c, c->in.data, value_bytes) != 0) return;
    buf_clear(&c->in);
    c->state = NODESIM_CLIENT_REPLIED;
    c->next_at_ms = w->now_ms + prng_range(&c->prng, 0, NODESIM_CLIENT_LINK_MS_MAX + 1);
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
            c->next_at_ms = w->now_ms + prng_range(&c->prng, 0, NODESIM_CLIENT_LINK_MS_MAX + 1);
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
