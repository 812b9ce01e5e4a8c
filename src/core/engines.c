/*
 * The node's side of the engine seam (engine.h): a client's request becomes an engine
 * request with an id, its reply comes back by that id, and the client's input waits
 * meanwhile so its replies stay in order. The engine gets the node's clocks (faults
 * applied: FAULT CLOCK skews the wall clock, FAULT PAUSE freezes both) and its peer traffic
 * through the node's faults; its effects are carried out here in engine.h's order.
 *
 * Request ids: client id << NODE_REQUEST_SEQ_BITS | a per-client sequence, so a reply finds
 * its client without a table, and a reply to an older request of the same client (there
 * is none: one is pending at a time) could never be taken for the current one.
 */
#include <stdio.h>
#include <string.h>

#include "base/assert.h"
#include "base/util.h"
#include "core/internal.h"
#include "cp/cp.h"
#include "local/local.h"

#define NODE_REQUEST_SEQ_BITS 20

static void node_engine_trace(void *ctx, const char *line) {
    struct node *node = ctx;
    if (node->config.trace != NULL) node->config.trace(node->config.trace_ctx, line);
}

static void node_engine_config(const struct node *node, struct engine_config *out) {
    const struct node_config *c = &node->config;
    memset(out, 0, sizeof(*out));
    out->id = c->id;
    out->fsync = c->fsync == NODE_FSYNC_ALWAYS     ? ENGINE_FSYNC_ALWAYS
                 : c->fsync == NODE_FSYNC_EVERYSEC ? ENGINE_FSYNC_EVERYSEC
                                                   : ENGINE_FSYNC_NEVER;
    out->string_bytes_max = c->limits.bulk_bytes_max;
    out->snapshot_log_bytes = c->snapshot_log_bytes;
    out->wal_segment_bytes = c->wal_segment_bytes;
    out->hash_seed = c->hash_seed;
    out->trace = node_engine_trace;
    out->trace_ctx = (void *)node;
    out->peer_count = c->peer_count;
    memcpy(out->peers, c->peers, sizeof(c->peers[0]) * c->peer_count);
    out->election_timeout_ms_min = c->election_timeout_ms_min;
    out->election_timeout_ms_max = c->election_timeout_ms_max;
    out->heartbeat_ms = c->heartbeat_ms;
    out->request_timeout_ms = c->request_timeout_ms;
    out->snapshot_entries = c->snapshot_entries;
    out->seed = c->seed;
    out->join = c->join;
    out->keyspace_count = c->keyspace_count;
    memcpy(out->keyspaces, c->keyspaces, sizeof(c->keyspaces[0]) * c->keyspace_count);
}

/* Runs a command of a transaction that is not the engine's: c's own (PING, CLIENT ...). */
static void node_engine_host(void *ctx, uint64_t request_id, uint32_t argc,
                             const struct resp_arg *argv) {
    struct node *node = ctx;
    struct client *c = node_client_find(node, request_id >> NODE_REQUEST_SEQ_BITS);
    ASSERT(c != NULL);
    const struct cmd_spec *spec = cmd_lookup(argv[0].data, argv[0].bytes);
    ASSERT(spec != NULL && spec->fn == NULL);
    conn_run(node, c, spec, argc, argv);
}

/* Keyspaces of mode cp are kept by the CP engine when the node has peers, by the
 * single-node engine when it runs alone (mode = ap is refused by node_new until the AP
 * engine exists). */
int node_engines_open(struct node *node, struct errmsg *msg) {
    ASSERT(node->engine == NULL);
    struct engine_config config;
    node_engine_config(node, &config);
    config.host = node_engine_host;
    config.host_ctx = node;
    const struct engine_ops *ops = node->config.peer_count > 0 ? &cp_engine_ops : &local_engine_ops;
    /* Each engine's files carry its name: "local-wal-...log", "cp-snap-...snap". */
    char prefix[DISK_VIEW_PREFIX_BYTES_MAX];
    snprintf(prefix, sizeof(prefix), "%s-", ops->name);
    disk_view_init(&node->engine_disk, node->disk, prefix);
    uint32_t moved = 0;
    int rc = disk_view_adopt(&node->engine_disk, &moved, msg);
    if (rc != 0) return rc;
    if (moved > 0)
        node_trace(node, "data directory: %u files of the layout before engines moved to %s*",
                   moved, prefix);
    return ops->open(&config, &node->engine_disk.disk, fault_wall_ms(node), &node->engine, msg);
}

void node_engines_close(struct node *node) {
    if (node->engine == NULL) return;
    node->engine->ops->free(node->engine);
    node->engine = NULL;
}

static uint64_t node_request_id(struct client *c) {
    ASSERT(c->id != 0 && c->id < (1ull << (64 - NODE_REQUEST_SEQ_BITS)));
    c->request_seq = (c->request_seq + 1) & ((1u << NODE_REQUEST_SEQ_BITS) - 1);
    return c->id << NODE_REQUEST_SEQ_BITS | c->request_seq;
}

static void node_resume_later(struct node *node, struct client *c) {
    if (c->resume_listed) return;
    c->resume_listed = true;
    buf_append_u64le(&node->resume_list, c->id);
}

/* A reply by id: to its client's output (a WATCH's to tx.c), and the client goes on. */
static void node_engine_deliver(struct node *node, const struct engine_reply *r) {
    struct client *c = node_client_find(node, r->id >> NODE_REQUEST_SEQ_BITS);
    if (c == NULL || c->pending != r->id) return; /* its client went away */
    c->pending = 0;
    if (r->write_token != 0) c->last_write_token = r->write_token;
    if (c->watch_pending > 0)
        tx_watch_reply(node, c, r->data, r->bytes);
    else
        buf_append(&c->out, r->data, r->bytes);
    node_resume_later(node, c);
}

static void node_engine_deliver_all(struct node *node, const struct engine_reply *replies,
                                    size_t count) {
    for (size_t i = 0; i < count; i++) node_engine_deliver(node, &replies[i]);
}

/* What an engine changed: the clients watching those keys lose their EXEC. */
static void node_engine_touched(struct node *node, const uint8_t *ops, size_t bytes) {
    if (bytes > 0 && node->engine->ops->watch == ENGINE_WATCH_TOUCHED)
        tx_touch_ops(node, ops, bytes);
}

static void node_engine_take(struct node *node, const struct engine_effects *e) {
    node_engine_touched(node, e->ops, e->ops_bytes);
    node_engine_deliver_all(node, e->replies, e->reply_count);
    if (e->keyspaces != NULL) {
        /* The cluster agreed on a table: route as every other node does. */
        node->config.keyspace_count = e->keyspace_count;
        memcpy(node->config.keyspaces, e->keyspaces, sizeof(e->keyspaces[0]) * e->keyspace_count);
    }
    if (e->fatal != 0 && node->fatal == 0) {
        node->fatal = e->fatal;
        snprintf(node->fatal_text, sizeof(node->fatal_text), "%s", e->fatal_text);
    }
}

/* Submits req for c; the reply given at once goes to out. */
static void node_engine_submit(struct node *node, struct client *c, struct engine_request *req,
                               struct buf *out) {
    ASSERT(c->pending == 0);
    req->id = node_request_id(c);
    req->proto = c->proto;
    req->level = c->consistency;
    req->last_write = c->last_write_token;
    struct engine_answer a;
    node->engine->ops->submit(node->engine, req, out, &a);
    node_engine_touched(node, a.ops, a.ops_bytes);
    if (a.pending)
        c->pending = req->id;
    else if (a.write_token != 0)
        c->last_write_token = a.write_token;
    node_engine_deliver_all(node, a.replies, a.reply_count);
}

void node_engine_data(struct node *node, struct client *c, const struct cmd_spec *spec,
                      uint32_t argc, const struct resp_arg *argv) {
    /* No list: the engine runs the parsed command, or builds one if it needs it. */
    struct engine_request req = {
        .kind = ENGINE_REQUEST_DATA, .spec = spec, .argc = argc, .argv = argv};
    node_engine_submit(node, c, &req, &c->out);
}

void node_engine_exec(struct node *node, struct client *c) {
    struct buf *list = &node->scratch;
    buf_clear(list);
    cmdlist_begin(list, CMDLIST_EXEC, c->multi_count);
    buf_append(list, c->multi_queue.data, c->multi_queue.len);
    if (c->watch_count > 0 && node->engine->ops->watch == ENGINE_WATCH_CONDITIONS) {
        ASSERT(c->watch_pending == 0);
        cmdlist_put_conditions(list, c->watch_index, c->watch_count, c->watched.data,
                               c->watched.len);
    }
    struct engine_request req = {
        .kind = ENGINE_REQUEST_DATA, .list = list->data, .bytes = list->len};
    node_engine_submit(node, c, &req, &c->out);
}

void node_engine_watch(struct node *node, struct client *c, uint32_t argc,
                       const struct resp_arg *argv) {
    ASSERT(c->watch_pending > 0 && c->pending == 0);
    struct buf *list = &node->scratch;
    buf_clear(list);
    cmdlist_begin(list, CMDLIST_WATCH, 1);
    cmdlist_add(list, argc, argv);
    struct engine_request req = {
        .kind = ENGINE_REQUEST_DATA, .list = list->data, .bytes = list->len};
    buf_clear(&node->watch_reply);
    node_engine_submit(node, c, &req, &node->watch_reply);
    /* Answered at once (served here, or refused): else when its reply comes. */
    if (c->pending == 0) tx_watch_reply(node, c, node->watch_reply.data, node->watch_reply.len);
}

void node_engine_admin(struct node *node, struct client *c, uint32_t argc,
                       const struct resp_arg *argv) {
    struct engine_request req = {.kind = ENGINE_REQUEST_ADMIN, .argc = argc, .argv = argv};
    node_engine_submit(node, c, &req, &c->out);
}

/* The clocks an engine is given: FAULT CLOCK skews the wall clock; while FAULT PAUSE lasts
 * no time passes for it. */
static void node_engine_clocks(struct node *node, struct engine_event *ev) {
    if (!fault_paused(node)) node->fault.engine_mono_ms = node->mono_ms;
    ev->now_ms = fault_wall_ms(node);
    ev->mono_ms = node->fault.engine_mono_ms;
}

void node_engine_event(struct node *node, struct engine_event *ev) {
    ASSERT(ev->kind != ENGINE_EVENT_FLUSH);
    node_engine_clocks(node, ev);
    struct engine_effects e;
    node->engine->ops->step(node->engine, ev, &e);
    node_engine_take(node, &e);
}

static void node_resume_clients(struct node *node) {
    for (size_t pos = 0; pos < node->resume_list.len; pos += 8) {
        struct client *c = node_client_find(node, base_load_u64le(node->resume_list.data + pos));
        if (c == NULL) continue;
        c->resume_listed = false;
        node_client_resume(node, c);
    }
    buf_clear(&node->resume_list);
}

/* One engine FLUSH; what it asks for joins out (a later FLUSH's sends include every
 * earlier one's: the engine rebuilds them over all its payloads since the last SENT). */
static void node_engine_flush_once(struct node *node, struct node_effects *out) {
    struct engine_event ev = {.kind = ENGINE_EVENT_FLUSH};
    node_engine_clocks(node, &ev);
    struct engine_effects e;
    node->engine->ops->step(node->engine, &ev, &e);
    node_engine_take(node, &e);
    out->peer_sends = e.sends;
    out->peer_send_count = e.send_count;
    if (e.sync_file != NULL) {
        ASSERT(out->sync_file == NULL);
        out->sync_file = e.sync_file;
        out->sync_lsn = e.sync_token;
    }
    if (e.members != NULL) {
        fault_learn_members(node, e.members, e.member_count);
        out->members = e.members;
        out->member_count = e.member_count;
    }
}

void node_engine_flush(struct node *node, struct node_effects *out) {
    node_resume_clients(node);
    node_engine_flush_once(node, out);
    /* Requests answered during that flush (reads and writes its progress released) resume
     * their clients now, not at the next event, which may be a tick away; what their
     * buffered input asks goes out in this batch too. */
    for (int round = 0; round < 2 && node->resume_list.len > 0; round++) {
        node_resume_clients(node);
        node_engine_flush_once(node, out);
    }
}

uint64_t node_engine_wake_at(const struct node *node) {
    uint64_t at = node->engine->ops->wake_at(node->engine);
    /* The engine asks in its own (skewed) clock. */
    int64_t shell = (int64_t)at - node->fault.clock_ms;
    return shell < (int64_t)node->now_ms ? node->now_ms : (uint64_t)shell;
}

void node_engine_info(struct node *node, const char *section, struct buf *out) {
    node->engine->ops->info(node->engine, section, out);
}

uint64_t node_engine_observed_index(const struct node *node) {
    return node->engine->ops->observed_index(node->engine);
}
