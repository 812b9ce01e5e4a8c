/*
 * The node's side of the engine seam (engine.h): a client's request becomes an engine
 * request with an id, its reply comes back by that id, and the client's input waits
 * meanwhile so its replies stay in order. The engine gets the node's clocks with every
 * event and request (FAULT CLOCK skews the wall clock) and its peer traffic through the
 * node's faults; its effects are carried out here in engine.h's order.
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
#include "ap/ap.h"
#include "cp/cp.h"
#include "local/local.h"

#define NODE_REQUEST_SEQ_BITS 20

/* An engine's trace line, its file names as they are in the directory (disk_view.h). */
static void node_engine_trace(void *ctx, const char *line) {
    struct node_engine *ne = ctx;
    struct node *node = ne->node;
    if (node->config.trace == NULL) return;
    char text[UTIL_TRACE_LINE_BYTES_MAX];
    snprintf(text, sizeof(text), "%s", line);
    disk_view_explain_text(&ne->disk, text, sizeof(text));
    node->config.trace(node->config.trace_ctx, text);
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
    out->peer_count = c->peer_count;
    memcpy(out->peers, c->peers, sizeof(c->peers[0]) * c->peer_count);
    out->election_timeout_ms_min = c->election_timeout_ms_min;
    out->election_timeout_ms_max = c->election_timeout_ms_max;
    out->heartbeat_ms = c->heartbeat_ms;
    out->request_timeout_ms = c->request_timeout_ms;
    out->session_wait_ms = c->session_wait_ms;
    out->ap_tombstone_ms = c->ap_tombstone_ms;
    out->snapshot_entries = c->snapshot_entries;
    out->snapshot_scans_per_step = c->snapshot_scans_per_step;
    out->snapshot_chunk_bytes = c->snapshot_chunk_bytes;
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

/* What every engine is opened with: the node's settings, and the node as host. */
static void node_engines_config(struct node *node, struct engine_config *out) {
    node_engine_config(node, out);
    out->host = node_engine_host;
    out->host_ctx = node;
}

/* Opens ops as engine number slot, over its own part of the data directory. */
static int node_engine_open_one(struct node *node, uint32_t slot, const struct engine_ops *ops,
                                const struct engine_config *config, struct errmsg *msg) {
    ASSERT(slot < NODE_ENGINES_MAX && node->engines[slot].engine == NULL);
    struct node_engine *ne = &node->engines[slot];
    ne->ops = ops;
    ne->node = node;
    struct engine_config own = *config;
    own.trace_ctx = ne;
    config = &own;
    /* Each engine's files carry its name: "local-wal-...log", "cp-snap-...snap". */
    char prefix[DISK_VIEW_PREFIX_BYTES_MAX];
    snprintf(prefix, sizeof(prefix), "%s-", ops->name);
    disk_view_init(&ne->disk, node->disk, prefix);
    /* Only the cp engine's files predate engines: the layout before them had no other. */
    if (slot == 0) {
        uint32_t moved = 0;
        int rc = disk_view_adopt(&ne->disk, &moved, msg);
        if (rc != 0) return rc;
        if (moved > 0)
            node_trace(node, "data directory: %u files of the layout before engines moved to %s*",
                       moved, prefix);
    }
    int rc = ops->open(config, &ne->disk.disk, fault_wall_ms(node), &ne->engine, msg);
    if (rc != 0) disk_view_explain(&ne->disk, msg);
    if (rc == 0) node->engine_count = slot + 1;
    return rc;
}

static bool node_table_has_ap(const struct keyspace *table, uint32_t count) {
    for (uint32_t i = 0; i < count; i++)
        if (keyspace_mode_of(&table[i]) == KEYSPACE_MODE_AP) return true;
    return false;
}

/* Opens the AP engine as engine 1, once: at start when this node's table has an ap
 * keyspace, or later when the table the cluster agreed on has one. */
static int node_engines_open_ap(struct node *node, struct errmsg *msg) {
    if (node->mode_engine[KEYSPACE_MODE_AP] != 0) return 0;
    struct engine_config config;
    node_engines_config(node, &config);
    const struct node_engine *cp = &node->engines[0];
    config.member_before = cp->ops->member_before != NULL && cp->ops->member_before(cp->engine);
    const struct engine_ops *ap =
        node->config.ap_engine != NULL ? node->config.ap_engine : &ap_engine_ops;
    int rc = node_engine_open_one(node, 1, ap, &config, msg);
    if (rc == 0) node->mode_engine[KEYSPACE_MODE_AP] = 1;
    struct node_engine *ne = &node->engines[1];
    if (rc == 0 && node->member_id_count > 0 && ne->ops->members != NULL)
        ne->ops->members(ne->engine, node->member_ids, node->member_id_count);
    return rc;
}

/* An engine reported the committed configuration's servers: the others that place keys on
 * members (the AP ring) follow. */
static void node_engine_members(struct node *node, uint32_t from, const uint32_t *ids,
                                uint32_t count) {
    ASSERT(count <= NODE_PEERS_MAX);
    memcpy(node->member_ids, ids, count * sizeof(ids[0]));
    node->member_id_count = count;
    for (uint32_t i = 0; i < node->engine_count; i++) {
        struct node_engine *ne = &node->engines[i];
        if (i != from && ne->ops->members != NULL)
            ne->ops->members(ne->engine, node->member_ids, node->member_id_count);
    }
}

/* Keyspaces of mode cp are kept by the CP engine when the node has peers, by the
 * single-node engine when it runs alone; mode ap by the AP engine (src/ap), opened when a
 * table has an ap keyspace. A node alone has agreed with itself; a cluster's table is
 * agreed when the CP engine applies it (AP keys wait for that: node_engine_route). */
int node_engines_open(struct node *node, struct errmsg *msg) {
    ASSERT(node->engine_count == 0);
    node->sync_engine = -1;
    struct engine_config config;
    node_engines_config(node, &config);
    const struct engine_ops *cp = node->config.peer_count > 0 ? &cp_engine_ops : &local_engine_ops;
    int rc = node_engine_open_one(node, 0, cp, &config, msg);
    node->mode_engine[KEYSPACE_MODE_CP] = 0;
    node->mode_engine[KEYSPACE_MODE_AP] = 0;
    node->keyspaces_agreed = node->config.peer_count == 0;
    if (rc == 0 && node_table_has_ap(node->config.keyspaces, node->config.keyspace_count))
        rc = node_engines_open_ap(node, msg);
    return rc;
}

void node_engines_close(struct node *node) {
    for (uint32_t i = 0; i < NODE_ENGINES_MAX; i++) {
        struct node_engine *ne = &node->engines[i];
        if (ne->engine != NULL && ne->sync_file != NULL) {
            /* A sync asked for and never handed to the shell (another engine's ran): it
             * ends unrun, so the engine closes with nothing in flight. */
            struct engine_event ev = {.kind = ENGINE_EVENT_SYNCED,
                                      .token = ne->sync_token,
                                      .error = ERR_IO,
                                      .now_ms = node->now_ms,
                                      .mono_ms = node->mono_ms};
            struct engine_effects e;
            ne->sync_file = NULL;
            ne->ops->step(ne->engine, &ev, &e);
        }
        if (ne->engine != NULL) ne->ops->free(ne->engine);
        ne->engine = NULL;
    }
    node->engine_count = 0;
}

/* The engine serving a command's keys, the cp engine for a keyless one; -1 after replying
 * -CROSSSLOT when its keys are in keyspaces of different engines. */
int node_engine_route(struct node *node, struct client *c, const struct cmd_spec *spec,
                      uint32_t argc, const struct resp_arg *argv) {
    if (node->engine_count == 1) return 0;
    enum keyspace_mode mode = KEYSPACE_MODE_CP;
    struct errmsg msg;
    if (keyspace_command_mode(node->config.keyspaces, node->config.keyspace_count, spec, argc, argv,
                              &mode, &msg) != 0) {
        errcode_reply(&c->out, ERRCODE_CROSSSLOT, "%s", msg.text);
        return -1;
    }
    ASSERT(mode >= KEYSPACE_MODE_CP && mode <= KEYSPACE_MODE_AP);
    if (mode == KEYSPACE_MODE_AP && !node->keyspaces_agreed) {
        /* Which keys are AP is the cluster's table, not this node's file: until this node
         * has applied it, an AP key could be another keyspace's (or CP) elsewhere. */
        errcode_reply(&c->out, ERRCODE_TRYAGAIN,
                      "node %u serves AP keys once it has applied the cluster's keyspace table "
                      "(it comes through the Raft log; no leader was reached yet)",
                      node->config.id);
        return -1;
    }
    return node->mode_engine[mode];
}

/* The clocks an engine is given: the shell's monotonic clock, and its wall clock skewed by
 * FAULT CLOCK. FAULT PAUSE does not stop them: a paused node's time runs on (a lease it held
 * expires), only its ticks and peer traffic stop. */
static void node_engine_clocks(const struct node *node, uint64_t *now_ms, uint64_t *mono_ms) {
    *now_ms = fault_wall_ms(node);
    *mono_ms = node->mono_ms;
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

/* A pipeline's replies, from byte start of out: one per command. An engine that refuses
 * the whole request (no quorum, a timeout, a leader change) gives one error: it stands for
 * every command. Fewer replies than commands is the engine's bug: said, never a client
 * left waiting for a reply that does not come. */
static void node_pipeline_replies(struct node *node, struct buf *out, size_t start_pending,
                                  uint32_t count) {
    size_t start = out->read_pos + start_pending; /* the buffer may have moved its data */
    struct resp_limits limits;
    resp_limits_default(&limits);
    limits.bulk_bytes_max = UINT64_MAX / 4;
    limits.args_max = UINT32_MAX;
    uint32_t values = 0;
    size_t first_bytes = 0;
    for (size_t pos = start; pos < out->len && values < count; values++) {
        size_t n = 0;
        struct errmsg msg;
        if (resp_scan_value(&limits, out->data + pos, out->len - pos, &n, &msg) != 1) break;
        if (values == 0) first_bytes = n;
        pos += n;
    }
    if (values == count) return;
    if (values == 1 && out->data[start] == '-') {
        struct buf error;
        buf_init(&error);
        buf_append(&error, out->data + start, first_bytes);
        for (uint32_t i = 1; i < count; i++) buf_append(out, error.data, error.len);
        buf_deinit(&error);
        return;
    }
    node_trace(node, "error: a pipeline of %u commands got %u replies", count, values);
    for (uint32_t i = values; i < count; i++)
        resp_put_error(out, "ERR internal error: no reply for this pipelined command");
}

/* A reply by id: to its client's output (a WATCH's to tx.c), and the client goes on. */
static void node_engine_deliver(struct node *node, const struct engine_reply *r) {
    struct client *c = node_client_find(node, r->id >> NODE_REQUEST_SEQ_BITS);
    if (c == NULL || c->pending != r->id) return; /* its client went away */
    ASSERT(c->pending_engine < node->engine_count);
    c->pending = 0;
    if (r->write_token != 0) c->last_write_token = r->write_token;
    if (c->pending_engine == 0) session_observe(&c->session, r->observed_index);
    session_observe_ap(&c->session, r->seen, r->seen_bytes);
    if (c->watch_pending > 0) {
        tx_watch_reply(node, c, r->data, r->bytes);
    } else {
        size_t start = buf_pending(&c->out);
        buf_append(&c->out, r->data, r->bytes);
        if (c->pending_count > 1) node_pipeline_replies(node, &c->out, start, c->pending_count);
    }
    c->pending_count = 0;
    node_resume_later(node, c);
}

static void node_engine_deliver_all(struct node *node, const struct engine_reply *replies,
                                    size_t count) {
    for (size_t i = 0; i < count; i++) node_engine_deliver(node, &replies[i]);
}

/* What an engine changed: the clients watching those keys lose their EXEC. */
static void node_engine_touched(struct node *node, const struct node_engine *ne, const uint8_t *ops,
                                size_t bytes) {
    if (bytes > 0 && ne->ops->watch == ENGINE_WATCH_TOUCHED) tx_touch_ops(node, ops, bytes);
}

/* The cluster agreed on a table: route as every other node does, and every other engine
 * follows it (the AP engine is opened now if the table is the first with an ap keyspace). */
static void node_engine_agreed(struct node *node, const struct node_engine *from,
                               const struct keyspace *table, uint32_t count) {
    node->config.keyspace_count = count;
    memcpy(node->config.keyspaces, table, sizeof(table[0]) * count);
    node->keyspaces_agreed = true;
    if (node_table_has_ap(table, count)) {
        struct errmsg msg;
        int rc = node_engines_open_ap(node, &msg);
        if (rc != 0 && node->fatal == 0) {
            node->fatal = rc;
            /* the table has an ap keyspace and the AP engine cannot open */
            snprintf(node->fatal_text, sizeof(node->fatal_text), "ap engine: %.200s", msg.text);
        }
    }
    for (uint32_t i = 0; i < node->engine_count; i++) {
        struct node_engine *ne = &node->engines[i];
        if (ne != from && ne->ops->keyspaces != NULL) ne->ops->keyspaces(ne->engine, table, count);
    }
}

static void node_engine_take(struct node *node, struct node_engine *ne,
                             const struct engine_effects *e) {
    node_engine_touched(node, ne, e->ops, e->ops_bytes);
    node_engine_deliver_all(node, e->replies, e->reply_count);
    if (e->keyspaces != NULL) node_engine_agreed(node, ne, e->keyspaces, e->keyspace_count);
    if (e->fatal != 0 && node->fatal == 0) {
        node->fatal = e->fatal;
        snprintf(node->fatal_text, sizeof(node->fatal_text), "%s", e->fatal_text);
    }
}

/* Submits req for c to engine slot; the reply given at once goes to out. */
static void node_engine_submit(struct node *node, uint32_t slot, struct client *c,
                               struct engine_request *req, struct buf *out) {
    ASSERT(c->pending == 0 && slot < node->engine_count);
    struct node_engine *ne = &node->engines[slot];
    req->id = node_request_id(c);
    req->proto = c->proto;
    req->level = c->consistency;
    req->w = c->quorum_w;
    req->r = c->quorum_r;
    req->last_write = c->last_write_token;
    req->session_index = slot == 0 ? session_wait_index(&c->session) : 0;
    if (ne->ops->id == ENGINE_AP)
        req->session_ap = session_ap_floor(&c->session, &req->session_ap_bytes);
    node_engine_clocks(node, &req->now_ms, &req->mono_ms);
    struct engine_answer a = {0};
    ne->ops->submit(ne->engine, req, out, &a);
    node_engine_touched(node, ne, a.ops, a.ops_bytes);
    if (a.pending) {
        c->pending = req->id;
        c->pending_engine = (uint8_t)slot;
    } else {
        if (a.write_token != 0) c->last_write_token = a.write_token;
        if (slot == 0) session_observe(&c->session, a.observed_index);
        session_observe_ap(&c->session, a.seen, a.seen_bytes);
    }
    node_engine_deliver_all(node, a.replies, a.reply_count);
}

void node_engine_data(struct node *node, uint32_t slot, struct client *c,
                      const struct cmd_spec *spec, uint32_t argc, const struct resp_arg *argv) {
    /* No list: the engine runs the parsed command, or builds one if it needs it. */
    struct engine_request req = {
        .kind = ENGINE_REQUEST_DATA, .spec = spec, .argc = argc, .argv = argv};
    node_engine_submit(node, slot, c, &req, &c->out);
}

void node_engine_exec(struct node *node, struct client *c) {
    int slot = c->multi_engine >= 0 ? c->multi_engine : c->watch_engine >= 0 ? c->watch_engine : 0;
    if (c->watch_engine >= 0 && c->watch_engine != slot) {
        /* Watched keys and the transaction's in different engines: nothing spans them. */
        errcode_reply(&c->out, ERRCODE_CROSSSLOT,
                      "the watched keys are in %s keyspaces, the transaction's in %s ones",
                      node->engines[c->watch_engine].ops->name, node->engines[slot].ops->name);
        return;
    }
    const struct node_engine *ne = &node->engines[slot];
    struct buf *list = &node->scratch;
    buf_clear(list);
    cmdlist_begin(list, CMDLIST_EXEC, c->multi_count);
    buf_append(list, c->multi_queue.data, c->multi_queue.len);
    if (c->watch_count > 0 && ne->ops->watch == ENGINE_WATCH_CONDITIONS) {
        ASSERT(c->watch_pending == 0);
        cmdlist_put_conditions(list, c->watch_index, c->watch_count, c->watched.data,
                               c->watched.len);
    }
    struct engine_request req = {
        .kind = ENGINE_REQUEST_DATA, .list = list->data, .bytes = list->len};
    node_engine_submit(node, (uint32_t)slot, c, &req, &c->out);
}

void node_engine_pipeline(struct node *node, uint32_t slot, struct client *c, const uint8_t *list,
                          size_t bytes, uint32_t count) {
    struct engine_request req = {.kind = ENGINE_REQUEST_DATA, .list = list, .bytes = bytes};
    size_t start = buf_pending(&c->out);
    node_engine_submit(node, slot, c, &req, &c->out);
    if (c->pending != 0)
        c->pending_count = count;
    else
        node_pipeline_replies(node, &c->out, start, count);
}

void node_engine_watch(struct node *node, uint32_t slot, struct client *c, uint32_t argc,
                       const struct resp_arg *argv) {
    ASSERT(c->watch_pending > 0 && c->pending == 0);
    struct buf *list = &node->scratch;
    buf_clear(list);
    cmdlist_begin(list, CMDLIST_WATCH, 1);
    cmdlist_add(list, argc, argv);
    struct engine_request req = {
        .kind = ENGINE_REQUEST_DATA, .list = list->data, .bytes = list->len};
    buf_clear(&node->watch_reply);
    node_engine_submit(node, slot, c, &req, &node->watch_reply);
    /* Answered at once (served here, or refused): else when its reply comes. */
    if (c->pending == 0) tx_watch_reply(node, c, node->watch_reply.data, node->watch_reply.len);
}

void node_engine_admin(struct node *node, struct client *c, uint32_t argc,
                       const struct resp_arg *argv) {
    struct engine_request req = {.kind = ENGINE_REQUEST_ADMIN, .argc = argc, .argv = argv};
    node_engine_submit(node, 0, c, &req, &c->out);
}

/* A sync an engine asked for: handed to the shell now if none runs, else at a later FLUSH
 * (the shell runs one at a time). */
static void node_engine_want_sync(struct node_engine *ne, const struct engine_effects *e) {
    if (e->sync_file == NULL) return;
    ASSERT(ne->sync_file == NULL); /* an engine has one sync at a time */
    ne->sync_file = e->sync_file;
    ne->sync_token = e->sync_token;
    ne->sync_inline = e->sync_inline;
}

static void node_engine_step(struct node *node, uint32_t slot, struct engine_event *ev,
                             struct engine_effects *e) {
    ASSERT(slot < node->engine_count);
    struct node_engine *ne = &node->engines[slot];
    node_engine_clocks(node, &ev->now_ms, &ev->mono_ms);
    ne->ops->step(ne->engine, ev, e);
    node_engine_take(node, ne, e);
    node_engine_want_sync(ne, e);
}

void node_engine_event(struct node *node, uint32_t slot, struct engine_event *ev) {
    ASSERT(ev->kind != ENGINE_EVENT_FLUSH);
    struct engine_effects e;
    node_engine_step(node, slot, ev, &e);
}

void node_engine_event_all(struct node *node, enum engine_event_kind kind) {
    for (uint32_t i = 0; i < node->engine_count; i++) {
        struct engine_event ev = {.kind = kind};
        node_engine_event(node, i, &ev);
    }
}

void node_engine_peer(struct node *node, uint32_t from, const uint8_t *data, size_t bytes) {
    ASSERT(bytes >= 1);
    for (uint32_t i = 0; i < node->engine_count; i++) {
        if (node->engines[i].ops->id != data[0]) continue;
        struct engine_event ev = {
            .kind = ENGINE_EVENT_PEER, .from = from, .data = data + 1, .bytes = bytes - 1};
        node_engine_event(node, i, &ev);
        return;
    }
    node_trace(node, "dropped a peer payload from %u for engine %u, which this node does not run",
               from, data[0]);
}

void node_engine_synced(struct node *node, uint64_t token, int error) {
    ASSERT(node->sync_engine >= 0);
    uint32_t slot = (uint32_t)node->sync_engine;
    node->sync_engine = -1;
    struct engine_event ev = {.kind = ENGINE_EVENT_SYNCED, .token = token, .error = error};
    node_engine_event(node, slot, &ev);
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

/* One FLUSH of every engine. The sends of a later FLUSH include every earlier one's: an
 * engine rebuilds them over all its payloads since its last SENT. */
static void node_engine_flush_once(struct node *node, struct node_effects *out) {
    buf_clear(&node->engine_sends);
    for (uint32_t i = 0; i < node->engine_count; i++) {
        struct engine_event ev = {.kind = ENGINE_EVENT_FLUSH};
        struct engine_effects e;
        node_engine_step(node, i, &ev, &e);
        if (node->engine_count == 1) {
            out->peer_sends = e.sends; /* one engine: its list as it is */
            out->peer_send_count = e.send_count;
        } else {
            buf_append(&node->engine_sends, e.sends, e.send_count * sizeof(e.sends[0]));
        }
        if (e.committed_ids != NULL)
            node_engine_members(node, i, e.committed_ids, e.committed_id_count);
        if (e.members != NULL) {
            fault_learn_members(node, e.members, e.member_count);
            out->members = e.members;
            out->member_count = e.member_count;
        }
    }
    if (node->engine_count > 1) {
        out->peer_sends = (const struct node_peer_send *)node->engine_sends.data;
        out->peer_send_count = node->engine_sends.len / sizeof(struct node_peer_send);
    }
}

/* The shell runs one sync at a time: the next engine waiting for one gets it. */
static void node_engine_hand_sync(struct node *node, struct node_effects *out) {
    if (node->sync_engine >= 0 || out->sync_file != NULL) return;
    for (uint32_t i = 0; i < node->engine_count; i++) {
        struct node_engine *ne = &node->engines[i];
        if (ne->sync_file == NULL) continue;
        out->sync_file = ne->sync_file;
        out->sync_lsn = ne->sync_token;
        out->sync_inline = ne->sync_inline;
        ne->sync_file = NULL;
        node->sync_engine = (int)i;
        return;
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
    node_engine_hand_sync(node, out);
}

uint64_t node_engine_wake_at(const struct node *node) {
    uint64_t at = UINT64_MAX;
    for (uint32_t i = 0; i < node->engine_count; i++) {
        uint64_t e = node->engines[i].ops->wake_at(node->engines[i].engine);
        if (e < at) at = e;
    }
    if (at == UINT64_MAX) return at;
    /* The engines ask in monotonic time; the shell wakes the node in its wall clock. */
    return at <= node->mono_ms ? node->now_ms : node->now_ms + (at - node->mono_ms);
}

void node_engine_info(struct node *node, const char *section, struct buf *out) {
    for (uint32_t i = 0; i < node->engine_count; i++)
        node->engines[i].ops->info(node->engines[i].engine, section, out);
}

void node_engine_need(const struct node *node, struct node_lsns *out) {
    memset(out, 0, sizeof(*out));
    for (uint32_t i = 0; i < node->engine_count; i++)
        out->lsn[i] = node->engines[i].ops->release_lsn(node->engines[i].engine);
}

void node_engine_durable_now(const struct node *node, struct node_lsns *out) {
    memset(out, 0, sizeof(*out));
    for (uint32_t i = 0; i < node->engine_count; i++)
        out->lsn[i] = node->engines[i].ops->durable_lsn(node->engines[i].engine);
}

bool node_engine_durable(const struct node *node, const struct node_lsns *need) {
    for (uint32_t i = 0; i < node->engine_count; i++) {
        if (need->lsn[i] == 0) continue;
        if (node->engines[i].ops->durable_lsn(node->engines[i].engine) < need->lsn[i]) return false;
    }
    return true;
}
