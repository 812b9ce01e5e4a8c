/*
 * Transactions: MULTI queues commands, EXEC hands them to the engine as one request, which
 * runs them back to back and keeps all or none of them (one WAL record alone, one Raft
 * entry in a cluster). WATCH makes EXEC fail (null reply) if any watched key was changed
 * since: with the single-node engine every change reports its ops (tx_touch_ops), expiry
 * deletions included; with the CP engine the leader decides it against the Raft log
 * (cp/cp_watch.c): WATCH records the applied index its read observed, EXEC carries it with
 * the keys.
 */
#include <string.h>

#include "base/assert.h"
#include "base/util.h"
#include "cmd/op.h"
#include "core/internal.h"

void tx_discard(struct client *c) {
    c->multi_engine = -1;
    c->in_multi = false;
    c->multi_dirty = false;
    c->multi_count = 0;
    buf_clear(&c->multi_queue);
}

void tx_unwatch(struct node *node, struct client *c) {
    if (c->watch_count == 0) return;
    if (c->watch_prev != NULL)
        c->watch_prev->watch_next = c->watch_next;
    else
        node->watchers = c->watch_next;
    if (c->watch_next != NULL) c->watch_next->watch_prev = c->watch_prev;
    c->watch_next = NULL;
    c->watch_prev = NULL;
    c->watch_count = 0;
    c->watch_pending = 0;
    c->watch_index = 0;
    c->watch_engine = -1;
    c->watch_touched = false;
    buf_clear(&c->watched);
}

/* A transaction runs in one engine: the one its first keyed command routes to. */
static bool tx_queue_route(struct node *node, struct client *c, const struct cmd_spec *spec,
                           uint32_t argc, const struct resp_arg *argv) {
    if (spec->fn == NULL || spec->key_first <= 0) return true;
    int slot = node_engine_route(node, c, spec, argc, argv);
    if (slot >= 0 && c->multi_engine >= 0 && slot != c->multi_engine) {
        errcode_reply(&c->out, ERRCODE_CROSSSLOT,
                      "this command's keys are in %s keyspaces, the transaction's in %s ones",
                      node->engines[slot].ops->name, node->engines[c->multi_engine].ops->name);
        slot = -1;
    }
    if (slot < 0) return false;
    c->multi_engine = (int8_t)slot;
    return true;
}

void tx_queue(struct node *node, struct client *c, uint32_t argc, const struct resp_arg *argv) {
    ASSERT(c->in_multi);
    if (c->multi_count >= NODE_MULTI_COMMANDS_MAX) {
        resp_put_errorf(&c->out, "ERR too many commands in this transaction (limit %u)",
                        NODE_MULTI_COMMANDS_MAX);
        c->multi_dirty = true;
        return;
    }
    if (!tx_queue_route(node, c, cmd_lookup(argv[0].data, argv[0].bytes), argc, argv)) {
        c->multi_dirty = true; /* EXEC answers EXECABORT, as for any refused command */
        return;
    }
    buf_append_u32le(&c->multi_queue, argc);
    for (uint32_t i = 0; i < argc; i++) {
        buf_append_u32le(&c->multi_queue, (uint32_t)argv[i].bytes);
        buf_append(&c->multi_queue, argv[i].data, argv[i].bytes);
    }
    c->multi_count++;
    resp_put_simple(&c->out, "QUEUED");
}

static void tx_exec(struct node *node, struct client *c) {
    if (c->multi_dirty) {
        resp_put_error(&c->out, "EXECABORT Transaction discarded because of previous errors.");
    } else if (c->watch_touched) {
        resp_put_null_array(&c->out, c->proto);
    } else {
        /* The whole transaction is one request: the engine applies it atomically (one WAL
         * record alone, one Raft entry on every replica in a cluster). */
        c->in_multi = false;
        node_engine_exec(node, c);
    }
    tx_discard(c);
    tx_unwatch(node, c);
}

static void tx_watch(struct node *node, struct client *c, uint32_t argc,
                     const struct resp_arg *argv) {
    if (c->in_multi) {
        resp_put_error(&c->out, "ERR WATCH inside MULTI is not allowed");
        return;
    }
    if (c->watch_count + argc - 1 > NODE_WATCH_KEYS_MAX) {
        resp_put_errorf(&c->out, "ERR too many watched keys (limit %u)", NODE_WATCH_KEYS_MAX);
        return;
    }
    /* Watched keys are in one engine, the one EXEC will run in. */
    int slot = node_engine_route(node, c, cmd_lookup(argv[0].data, argv[0].bytes), argc, argv);
    if (slot < 0) return;
    if (c->watch_engine >= 0 && slot != c->watch_engine) {
        errcode_reply(&c->out, ERRCODE_CROSSSLOT,
                      "these keys are in %s keyspaces, the keys watched already in %s ones",
                      node->engines[slot].ops->name, node->engines[c->watch_engine].ops->name);
        return;
    }
    if (c->watch_count == 0) {
        c->watch_next = node->watchers;
        c->watch_prev = NULL;
        if (node->watchers != NULL) node->watchers->watch_prev = c;
        node->watchers = c;
    }
    for (uint32_t i = 1; i < argc; i++) {
        buf_append_u32le(&c->watched, (uint32_t)argv[i].bytes);
        buf_append(&c->watched, argv[i].data, argv[i].bytes);
        c->watch_count++;
    }
    c->watch_engine = (int8_t)slot;
    if (node->engines[slot].ops->watch == ENGINE_WATCH_CONDITIONS) {
        /* Watched once the read that records their index is served (tx_watch_reply). */
        c->watch_pending = argc - 1;
        node_engine_watch(node, (uint32_t)slot, c, argc, argv);
        return;
    }
    resp_put_simple(&c->out, "OK");
}

/* Parses the reply ":index\r\n" that a WATCH list gets where it is served. */
static bool tx_watch_reply_index(const uint8_t *reply, size_t bytes, uint64_t *index) {
    if (bytes < 4 || reply[0] != ':') return false;
    if (memcmp(reply + bytes - 2, "\r\n", 2) != 0) return false;
    int64_t v;
    if (!util_parse_i64(reply + 1, bytes - 3, &v) || v < 0) return false;
    *index = (uint64_t)v;
    return true;
}

static void tx_watch_answered(struct node *node, struct client *c, bool ok, uint64_t index);

void tx_watch_reply(struct node *node, struct client *c, const uint8_t *reply, size_t bytes) {
    if (c->watch_pending == 0) return; /* answered already */
    uint64_t index;
    if (tx_watch_reply_index(reply, bytes, &index)) {
        tx_watch_answered(node, c, true, index);
        return;
    }
    if (bytes == 0)
        resp_put_error(&c->out, "ERR WATCH got no answer; retry");
    else
        buf_append(&c->out, reply, bytes);
    tx_watch_answered(node, c, false, 0);
}

/* c's pending WATCH was answered; ok: its keys were watched at index (replies +OK), else
 * they are dropped (the caller replied the error). */
static void tx_watch_answered(struct node *node, struct client *c, bool ok, uint64_t index) {
    ASSERT(c->watch_pending > 0 && c->watch_pending <= c->watch_count);
    uint32_t kept = c->watch_count - c->watch_pending;
    c->watch_pending = 0;
    if (ok) {
        /* One index for all keys: the oldest, so no change to any of them slips by. */
        if (kept == 0 || index < c->watch_index) c->watch_index = index;
        resp_put_simple(&c->out, "OK");
    } else if (kept == 0) {
        tx_unwatch(node, c);
    } else {
        size_t pos = 0;
        for (uint32_t i = 0; i < kept; i++) pos += 4 + base_load_u32le(c->watched.data + pos);
        ASSERT(pos < c->watched.len);
        c->watched.len = pos;
        c->watch_count = kept;
    }
}

void tx_run(struct node *node, struct client *c, const struct cmd_spec *spec, uint32_t argc,
            const struct resp_arg *argv) {
    switch (spec->core_op) {
    case CMD_CORE_MULTI:
        if (c->in_multi) {
            resp_put_error(&c->out, "ERR MULTI calls can not be nested");
            return;
        }
        c->in_multi = true;
        resp_put_simple(&c->out, "OK");
        return;
    case CMD_CORE_EXEC:
        if (!c->in_multi)
            resp_put_error(&c->out, "ERR EXEC without MULTI");
        else
            tx_exec(node, c);
        return;
    case CMD_CORE_DISCARD:
        if (!c->in_multi) {
            resp_put_error(&c->out, "ERR DISCARD without MULTI");
            return;
        }
        tx_discard(c);
        tx_unwatch(node, c);
        resp_put_simple(&c->out, "OK");
        return;
    case CMD_CORE_WATCH:
        tx_watch(node, c, argc, argv);
        return;
    case CMD_CORE_UNWATCH:
        tx_unwatch(node, c);
        resp_put_simple(&c->out, "OK");
        return;
    default:
        UNREACHABLE();
    }
}

static bool tx_watches(const struct client *c, const uint8_t *key, size_t key_bytes) {
    size_t pos = 0;
    while (pos < c->watched.len) {
        uint32_t n = base_load_u32le(c->watched.data + pos);
        const uint8_t *k = c->watched.data + pos + 4;
        if (n == key_bytes && (n == 0 || memcmp(k, key, n) == 0)) return true;
        pos += 4 + n;
    }
    return false;
}

static void tx_touch_key(void *ctx, enum op_kind kind, const uint8_t *key, size_t key_bytes) {
    struct node *node = ctx;
    for (struct client *c = node->watchers; c != NULL; c = c->watch_next) {
        if (c->watch_touched) continue;
        if (kind == OP_FLUSHALL || tx_watches(c, key, key_bytes)) c->watch_touched = true;
    }
}

void tx_touch_ops(struct node *node, const uint8_t *ops, size_t bytes) {
    if (node->watchers == NULL) return;
    op_each_key(ops, bytes, tx_touch_key, node);
}
