/*
 * The node's step function: clients, request dispatch, reply release and effects.
 *
 * Invariants: every client is in client_slots exactly once; a client's bytes below
 * released_end never wait for the log; while a client has holds, every later reply gets a
 * hold too (lsns only grow), so replies are released in order.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/util.h"
#include "cmd/op.h"
#include "core/internal.h"
#include "storage/wal.h"

#define NODE_CLIENT_SLOTS_MIN 64

void node_config_default(struct node_config *config) {
    memset(config, 0, sizeof(*config));
    config->id = 1;
    config->fsync = NODE_FSYNC_ALWAYS;
    resp_limits_default(&config->limits);
    config->output_bytes_max = NODE_OUTPUT_BYTES_MAX_DEFAULT;
    config->query_bytes_max = NODE_QUERY_BYTES_MAX_DEFAULT;
    config->snapshot_log_bytes = NODE_SNAPSHOT_LOG_BYTES_DEFAULT;
    config->wal_segment_bytes = WAL_SEGMENT_BYTES_DEFAULT;
    config->hash_seed = 0x9e3779b97f4a7c15ull;
    config->clients_max = NODE_CLIENTS_MAX_DEFAULT;
}

void node_trace(struct node *node, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    util_tracev(node->config.trace, node->config.trace_ctx, node->config.id, node->now_ms, fmt, ap);
    va_end(ap);
}

static void node_copy_text(char *dst, size_t cap, const char *src) {
    snprintf(dst, cap, "%s", src == NULL ? "" : src);
}

int node_new(const struct node_config *config, struct disk *disk, uint64_t now_ms,
             struct node **out, struct errmsg *msg) {
    *out = NULL;
    if (config->requirepass != NULL && strlen(config->requirepass) >= NODE_REQUIREPASS_BYTES_MAX) {
        return errmsg_set(msg, ERR_CONFIG, "requirepass is longer than %d bytes",
                          NODE_REQUIREPASS_BYTES_MAX - 1);
    }
    struct node *node = base_calloc(1, sizeof(*node));
    node->config = *config;
    node_copy_text(node->requirepass, sizeof(node->requirepass), config->requirepass);
    node_copy_text(node->listen, sizeof(node->listen), config->listen);
    node_copy_text(node->dir, sizeof(node->dir), config->dir);
    node->config.requirepass = node->requirepass;
    node->config.listen = node->listen;
    node->config.dir = node->dir;
    node->disk = disk;
    node->now_ms = now_ms;
    node->started_ms = now_ms;
    node->cluster_id = session_cluster_id(config->cluster_id, config->peers, config->peer_count);
    node->client_slot_count = NODE_CLIENT_SLOTS_MIN;
    node->client_slots = base_calloc(node->client_slot_count, sizeof(struct client *));
    buf_init(&node->write_list);
    buf_init(&node->close_list);
    buf_init(&node->scratch);
    buf_init(&node->pipeline);
    buf_init(&node->pipeline_args);
    buf_init(&node->resume_list);
    buf_init(&node->watch_reply);
    buf_init(&node->engine_sends);
    fault_init(node);
    int rc = node_engines_open(node, msg);
    if (rc != 0) {
        node_free(node);
        return rc;
    }
    node->next_tick_ms = now_ms;
    *out = node;
    return 0;
}

static void node_client_free(struct client *c) {
    resp_parser_deinit(&c->parser);
    buf_deinit(&c->query);
    buf_deinit(&c->out);
    buf_deinit(&c->multi_queue);
    buf_deinit(&c->watched);
    session_reset(&c->session);
    free(c);
}

void node_free(struct node *node) {
    if (node == NULL) return;
    for (uint32_t i = 0; i < node->client_slot_count; i++) {
        if (node->client_slots[i] != NULL) node_client_free(node->client_slots[i]);
    }
    free(node->client_slots);
    node_engines_close(node);
    buf_deinit(&node->resume_list);
    buf_deinit(&node->watch_reply);
    buf_deinit(&node->engine_sends);
    fault_deinit(node);
    buf_deinit(&node->write_list);
    buf_deinit(&node->close_list);
    buf_deinit(&node->scratch);
    buf_deinit(&node->pipeline);
    buf_deinit(&node->pipeline_args);
    free(node);
}

/* Client map: open addressing on the id; deletion by backward shift. */
static uint32_t node_client_slot(const struct node *node, uint64_t id) {
    uint64_t h = id * 0x9e3779b97f4a7c15ull;
    return (uint32_t)(h >> 32) & (node->client_slot_count - 1);
}

struct client *node_client_find(struct node *node, uint64_t id) {
    uint32_t mask = node->client_slot_count - 1;
    for (uint32_t i = node_client_slot(node, id);; i = (i + 1) & mask) {
        struct client *c = node->client_slots[i];
        if (c == NULL || c->id == id) return c;
    }
}

static void node_client_insert(struct node *node, struct client *c) {
    uint32_t mask = node->client_slot_count - 1;
    uint32_t i = node_client_slot(node, c->id);
    while (node->client_slots[i] != NULL) {
        ASSERT(node->client_slots[i]->id != c->id);
        i = (i + 1) & mask;
    }
    node->client_slots[i] = c;
}

static void node_client_map_grow(struct node *node) {
    struct client **old = node->client_slots;
    uint32_t old_count = node->client_slot_count;
    node->client_slot_count = old_count * 2;
    node->client_slots = base_calloc(node->client_slot_count, sizeof(struct client *));
    for (uint32_t i = 0; i < old_count; i++) {
        if (old[i] != NULL) node_client_insert(node, old[i]);
    }
    free(old);
}

static void node_client_map_remove(struct node *node, uint64_t id) {
    uint32_t mask = node->client_slot_count - 1;
    uint32_t i = node_client_slot(node, id);
    while (node->client_slots[i]->id != id) i = (i + 1) & mask;
    node->client_slots[i] = NULL;
    /* Backward shift: re-place the rest of the cluster so lookups never stop early. */
    for (uint32_t j = (i + 1) & mask; node->client_slots[j] != NULL; j = (j + 1) & mask) {
        struct client *moved = node->client_slots[j];
        node->client_slots[j] = NULL;
        node_client_insert(node, moved);
    }
}

static void node_list_add(struct buf *list, uint64_t id) {
    buf_append(list, &id, sizeof(id));
}

static void node_client_mark_write(struct node *node, struct client *c) {
    if (c->listed_for_write) return;
    c->listed_for_write = true;
    node_list_add(&node->write_list, c->id);
}

/* A client is closed once every reply before the close is sent: while some wait for the
 * log, the close waits too (node_release_held lists it). */
void node_client_mark_close(struct node *node, struct client *c) {
    c->close_after_output = true;
    if (c->listed_for_close || c->hold_count > 0) return;
    c->listed_for_close = true;
    node_list_add(&node->close_list, c->id);
    node_client_mark_write(node, c);
}

static void node_client_open(struct node *node, const struct node_event *ev) {
    ASSERT(node_client_find(node, ev->client_id) == NULL);
    struct client *c = base_calloc(1, sizeof(*c));
    c->id = ev->client_id;
    node_copy_text(c->addr, sizeof(c->addr), ev->peer_addr);
    c->proto = 2;
    c->multi_engine = -1;
    c->watch_engine = -1;
    c->authed = node->requirepass[0] == '\0';
    c->created_ms = node->now_ms;
    c->last_active_ms = node->now_ms;
    resp_parser_init(&c->parser, &node->config.limits);
    buf_init(&c->query);
    buf_init(&c->out);
    buf_init(&c->multi_queue);
    buf_init(&c->watched);
    if ((node->client_count + 1) * 2 > node->client_slot_count) node_client_map_grow(node);
    node_client_insert(node, c);
    node->client_count++;
    node->stats.connections++;
    if (node->client_count > node->config.clients_max) {
        node->stats.rejected_connections++;
        resp_put_error(&c->out, "ERR max number of clients reached");
        c->released_end = c->out.len;
        node_client_mark_close(node, c);
    }
}

static void node_held_list_remove(struct node *node, struct client *c) {
    if (!c->in_held_list) return;
    for (struct client **p = &node->held; *p != NULL; p = &(*p)->held_next) {
        if (*p == c) {
            *p = c->held_next;
            break;
        }
    }
    c->in_held_list = false;
    c->held_next = NULL;
}

static void node_client_closed(struct node *node, uint64_t id) {
    struct client *c = node_client_find(node, id);
    if (c == NULL) return;
    tx_unwatch(node, c);
    if (c->pending != 0) {
        struct engine_event ev = {.kind = ENGINE_EVENT_GONE, .request_id = c->pending};
        node_engine_event(node, c->pending_engine, &ev);
    }
    node_held_list_remove(node, c);
    node_client_map_remove(node, id);
    ASSERT(node->client_count > 0);
    node->client_count--;
    node_client_free(c);
}

/* Absolute offset just past the last reply appended. */
static uint64_t node_client_out_end(const struct client *c) {
    return c->out_sent + buf_pending(&c->out);
}

static void node_held_list_add(struct node *node, struct client *c) {
    if (c->in_held_list) return;
    c->in_held_list = true;
    c->held_next = node->held;
    node->held = c;
}

/* Decides when the replies appended so far may be sent: now, or once the log is durable
 * up to the last record they could have observed. */
static void node_client_release(struct node *node, struct client *c) {
    uint64_t end = node_client_out_end(c);
    struct node_lsns need;
    node_engine_need(node, &need);
    if (c->hold_count == 0 && node_engine_durable(node, &need)) { /* the common case at once */
        if (c->released_end != end) node_client_mark_write(node, c);
        c->released_end = end;
        return;
    }
    if (c->hold_count > 0) {
        struct node_hold *last = &c->holds[(c->hold_head + c->hold_count - 1) % NODE_HOLDS_MAX];
        bool same = memcmp(&last->need, &need, sizeof(need)) == 0;
        /* Same lsns, or the ring is full: wait longer for later lsns, never shorter (each
         * engine's lsns only grow). */
        if (same || c->hold_count == NODE_HOLDS_MAX) {
            for (uint32_t i = 0; i < NODE_ENGINES_MAX; i++) {
                ASSERT(last->need.lsn[i] <= need.lsn[i]);
                last->need.lsn[i] = need.lsn[i];
            }
            last->end = end;
            return;
        }
    }
    struct node_hold *h = &c->holds[(c->hold_head + c->hold_count) % NODE_HOLDS_MAX];
    h->end = end;
    h->need = need;
    c->hold_count++;
    node_held_list_add(node, c);
}

/* After a sync: releases every hold the durable lsn covers. */
static void node_release_held(struct node *node) {
    struct node_lsns durable;
    node_engine_durable_now(node, &durable);
    struct client **p = &node->held;
    while (*p != NULL) {
        struct client *c = *p;
        bool released = false;
        while (c->hold_count > 0 && node_lsns_covered(&c->holds[c->hold_head].need, &durable)) {
            c->released_end = c->holds[c->hold_head].end;
            c->hold_head = (c->hold_head + 1) % NODE_HOLDS_MAX;
            c->hold_count--;
            released = true;
        }
        if (released) node_client_mark_write(node, c);
        if (c->hold_count == 0 && c->close_after_output) node_client_mark_close(node, c);
        if (c->hold_count == 0) {
            *p = c->held_next;
            c->in_held_list = false;
            c->held_next = NULL;
        } else {
            p = &c->held_next;
        }
    }
}

static void node_reply_unknown(struct client *c, uint32_t argc, const struct resp_arg *argv) {
    struct buf text;
    buf_init(&text);
    buf_appendf(&text, "ERR unknown command '%.*s', with args beginning with: ",
                (int)(argv[0].bytes > 128 ? 128 : argv[0].bytes), (const char *)argv[0].data);
    for (uint32_t i = 1; i < argc && text.len < 512; i++) {
        int n = (int)(argv[i].bytes > 128 ? 128 : argv[i].bytes);
        buf_appendf(&text, "'%.*s' ", n, (const char *)argv[i].data);
    }
    buf_append_byte(&text, 0);
    resp_put_error(&c->out, (const char *)text.data);
    buf_deinit(&text);
}

/* Checks a request before it runs or is queued; replies and returns NULL if refused. */
static const struct cmd_spec *node_check_request(struct node *node, struct client *c, uint32_t argc,
                                                 const struct resp_arg *argv) {
    const struct cmd_spec *spec = cmd_lookup(argv[0].data, argv[0].bytes);
    if (spec == NULL) {
        node_reply_unknown(c, argc, argv);
    } else if (!cmd_arity_ok(spec, argc)) {
        resp_put_errorf(&c->out, "ERR wrong number of arguments for '%s' command", spec->name);
        spec = NULL;
    } else if (!c->authed && !(spec->flags & CMD_NOAUTH)) {
        resp_put_error(&c->out, "NOAUTH Authentication required.");
        spec = NULL;
    }
    if (spec == NULL && c->in_multi) c->multi_dirty = true;
    (void)node;
    return spec;
}

void node_run_request(struct node *node, struct client *c, uint32_t argc,
                      const struct resp_arg *argv) {
    ASSERT(argc > 0);
    node->stats.commands++;
    c->last_active_ms = node->now_ms;
    const struct cmd_spec *spec = node_check_request(node, c, argc, argv);
    if (spec != NULL) {
        c->last_cmd = spec->name;
        if (c->in_multi && !(spec->flags & CMD_NOMULTI)) {
            tx_queue(node, c, argc, argv);
        } else if (spec->fn != NULL) {
            int slot = node_engine_route(node, c, spec, argc, argv);
            if (slot >= 0) node_engine_data(node, (uint32_t)slot, c, spec, argc, argv);
        } else if (spec->core_op >= CMD_CORE_MULTI && spec->core_op <= CMD_CORE_UNWATCH) {
            tx_run(node, c, spec, argc, argv);
        } else {
            conn_run(node, c, spec, argc, argv);
        }
    }
    node_client_release(node, c);
}

/* Pipelining. A connection's data commands that arrive together (parsed from one read of
 * its input) and go to one engine that takes pipelines travel as one request, a command
 * list without EXEC: the engine runs them in order, as if one by one, each with its own
 * reply, in one round (the CP engine: one Raft entry for the writes, one ReadIndex for a
 * run of reads, and a read after a write sees it). Anything else (a command the node
 * answers, MULTI, WATCH, an error) ends the run: the run is submitted first, and the
 * command waits for its reply, as every command waits for the one before. */
#define NODE_PIPELINE_COMMANDS_MAX 1024
#define NODE_PIPELINE_BYTES_MAX (4u << 20)

struct node_pipeline {
    uint32_t count; /* commands in node->pipeline */
    uint32_t slot;  /* their engine */
};

/* Whether the command may join a pipeline (nothing is replied here): its engine slot. */
static bool node_pipeline_fits(struct node *node, struct client *c, uint32_t argc,
                               const struct resp_arg *argv, uint32_t *slot) {
    if (c->in_multi || c->watch_pending > 0 || c->close_after_output) return false;
    const struct cmd_spec *spec = cmd_lookup(argv[0].data, argv[0].bytes);
    if (spec == NULL || spec->fn == NULL || !cmd_arity_ok(spec, argc)) return false;
    if (!c->authed && !(spec->flags & CMD_NOAUTH)) return false;
    *slot = 0;
    if (node->engine_count > 1) {
        enum keyspace_mode mode = KEYSPACE_MODE_CP;
        struct errmsg msg;
        if (keyspace_command_mode(node->config.keyspaces, node->config.keyspace_count, spec, argc,
                                  argv, &mode, &msg) != 0)
            return false;
        *slot = (uint32_t)node->mode_engine[mode];
    }
    return node->engines[*slot].ops->pipelines;
}

/* Submits the gathered run: a lone command the usual way, more as one list. */
static void node_pipeline_flush(struct node *node, struct client *c, struct node_pipeline *p) {
    if (p->count == 0) return;
    struct buf *list = &node->pipeline;
    uint32_t count = p->count;
    p->count = 0;
    if (count == 1) {
        size_t pos = CMDLIST_HEADER_BYTES;
        uint32_t argc = 0;
        bool ok = cmdlist_next(list->data, list->len, &pos, &node->pipeline_args, &argc);
        ASSERT(ok);
        const struct resp_arg *argv = (const struct resp_arg *)node->pipeline_args.data;
        node_engine_data(node, p->slot, c, cmd_lookup(argv[0].data, argv[0].bytes), argc, argv);
    } else {
        base_store_u32le(list->data + 1, count);
        node->stats.pipelined_commands += count;
        node->stats.pipelines++;
        node_engine_pipeline(node, p->slot, c, list->data, list->len, count);
    }
    node_client_release(node, c);
}

/* Takes the command into the run (true), submitting the run first if it cannot join it. */
static bool node_pipeline_add(struct node *node, struct client *c, struct node_pipeline *p,
                              uint32_t argc, const struct resp_arg *argv) {
    uint32_t slot = 0;
    if (!node_pipeline_fits(node, c, argc, argv, &slot)) return false;
    struct buf *list = &node->pipeline;
    if (p->count > 0 && (slot != p->slot || p->count == NODE_PIPELINE_COMMANDS_MAX ||
                         list->len >= NODE_PIPELINE_BYTES_MAX)) {
        node_pipeline_flush(node, c, p);
        if (c->pending != 0) return false; /* it waits for the run's reply */
    }
    if (p->count == 0) {
        buf_clear(list);
        cmdlist_begin(list, 0, 0);
        p->slot = slot;
    }
    cmdlist_add(list, argc, argv);
    p->count++;
    node->stats.commands++;
    c->last_active_ms = node->now_ms;
    c->last_cmd = cmd_lookup(argv[0].data, argv[0].bytes)->name;
    return true;
}

/* Parses and runs every complete request in data; returns the bytes consumed. */
static size_t node_client_parse(struct node *node, struct client *c, const uint8_t *data,
                                size_t bytes) {
    size_t pos = 0;
    struct node_pipeline p = {0};
    while (pos < bytes && !c->close_after_output && c->pending == 0) {
        struct resp_request req;
        size_t consumed = 0;
        int rc = resp_parse(&c->parser, data + pos, bytes - pos, &req, &consumed, NULL);
        if (rc == 0) break;
        if (rc < 0) {
            node_pipeline_flush(node, c, &p); /* what came before the error is answered */
            node->stats.protocol_errors++;
            resp_put_errorf(&c->out, "ERR %s", c->parser.error_msg.text);
            node_client_release(node, c);
            node_client_mark_close(node, c);
            return bytes;
        }
        if (req.argc == 0) {
            pos += consumed;
            continue;
        }
        bool last = pos + consumed == bytes; /* nothing after it yet: no run to gather */
        if ((p.count > 0 || !last) && node_pipeline_add(node, c, &p, req.argc, req.argv)) {
            pos += consumed;
            continue;
        }
        node_pipeline_flush(node, c, &p);
        if (c->pending != 0) break; /* this one waits for the run's reply: parsed again */
        pos += consumed;
        node_run_request(node, c, req.argc, req.argv);
    }
    node_pipeline_flush(node, c, &p);
    return pos;
}

static void node_client_input(struct node *node, struct client *c, const uint8_t *data,
                              size_t bytes) {
    if (c->close_after_output) return;
    if (buf_pending(&c->query) == 0) {
        /* Zero copy: parse straight from the shell's bytes, keep only the tail. */
        size_t used = node_client_parse(node, c, data, bytes);
        buf_append(&c->query, data + used, bytes - used);
    } else {
        buf_append(&c->query, data, bytes);
        size_t used = node_client_parse(node, c, buf_head(&c->query), buf_pending(&c->query));
        buf_consume(&c->query, used);
    }
    if (buf_pending(&c->query) > node->config.query_bytes_max) {
        resp_put_error(&c->out, "ERR Protocol error: query buffer limit exceeded");
        buf_clear(&c->query);
        node_client_release(node, c);
        node_client_mark_close(node, c);
    }
    if (buf_pending(&c->out) > node->config.output_bytes_max) {
        /* Redis's client-output-buffer-limit: a client that does not read is dropped. */
        node->stats.output_limit_closes++;
        node_trace(node, "client=%llu closed: output buffer over %llu bytes",
                   (unsigned long long)c->id, (unsigned long long)node->config.output_bytes_max);
        c->out_sent += buf_pending(&c->out);
        buf_clear(&c->out);
        c->released_end = c->out_sent;
        c->hold_count = 0;
        node_held_list_remove(node, c);
        node_client_mark_close(node, c);
    }
}

static void node_tick(struct node *node);

/* End of a batch of events: one log write (and at most one sync) for all of them, then
 * the replies that may go out. */
static void node_flush(struct node *node, struct node_effects *out) {
    node_engine_flush(node, out);
    fault_filter_sends(node, out);
    node_release_held(node);
    out->write_clients = (const uint64_t *)node->write_list.data;
    out->write_count = node->write_list.len / sizeof(uint64_t);
    out->close_clients = (const uint64_t *)node->close_list.data;
    out->close_count = node->close_list.len / sizeof(uint64_t);
    node->lists_handed_out = true;
}

static void node_step_begin(struct node *node, const struct node_event *ev) {
    /* The wall clock may step back; the node's time never does. */
    if (ev->now_ms > node->now_ms) node->now_ms = ev->now_ms;
    uint64_t mono = ev->mono_ms != 0 ? ev->mono_ms : ev->now_ms;
    if (mono > node->mono_ms) node->mono_ms = mono;
    if (!node->lists_handed_out) return;
    node->lists_handed_out = false;
    fault_sends_done(node);
    node_engine_event_all(node, ENGINE_EVENT_SENT);
    const uint64_t *ids = (const uint64_t *)node->write_list.data;
    for (size_t i = 0; i < node->write_list.len / sizeof(uint64_t); i++) {
        struct client *c = node_client_find(node, ids[i]);
        if (c != NULL) c->listed_for_write = false;
    }
    buf_clear(&node->write_list);
    buf_clear(&node->close_list);
}

/* An engine TICK, unless FAULT PAUSE freezes the engines. */
static void node_engine_tick(struct node *node) {
    if (fault_paused(node)) return;
    node_engine_event_all(node, ENGINE_EVENT_TICK);
}

/* A peer's payload goes to the engine it names (engine.h), after the node's faults. */
static void node_peer_message(struct node *node, const struct node_event *ev) {
    if (ev->bytes < 1 || fault_drops_incoming(node, ev->peer_id)) return;
    node_engine_peer(node, ev->peer_id, ev->data, ev->bytes);
}

static void node_step_event(struct node *node, const struct node_event *ev,
                            struct node_effects *out) {
    struct client *c = NULL;
    switch (ev->kind) {
    case NODE_EVENT_CLIENT_OPEN:
        node_client_open(node, ev);
        break;
    case NODE_EVENT_CLIENT_INPUT:
        c = node_client_find(node, ev->client_id);
        if (c != NULL) node_client_input(node, c, ev->data, ev->bytes);
        break;
    case NODE_EVENT_CLIENT_CLOSED:
        node_client_closed(node, ev->client_id);
        break;
    case NODE_EVENT_TICK:
        fault_release_delayed(node);
        node_engine_tick(node);
        if (node->now_ms >= node->next_tick_ms) node_tick(node);
        break;
    case NODE_EVENT_SYNCED:
        node_engine_synced(node, ev->lsn, ev->sync_error);
        break;
    case NODE_EVENT_FLUSH:
        node_flush(node, out);
        break;
    case NODE_EVENT_PEER_MESSAGE:
        node_peer_message(node, ev);
        break;
    }
}

void node_step(struct node *node, const struct node_event *ev, struct node_effects *out) {
    memset(out, 0, sizeof(*out));
    node_step_begin(node, ev);
    node_step_event(node, ev, out);
    out->wake_at_ms = node->next_tick_ms;
    uint64_t engine_at = node_engine_wake_at(node);
    if (engine_at < out->wake_at_ms) out->wake_at_ms = engine_at;
    uint64_t fault_at = fault_wake_at(node);
    if (fault_at < out->wake_at_ms) out->wake_at_ms = fault_at;
    out->fatal = node->fatal;
}

static void node_tick(struct node *node) {
    node->next_tick_ms = node->now_ms + NODE_TICK_MS;
    node_engine_tick(node);
}

void node_client_resume(struct node *node, struct client *c) {
    node_client_release(node, c);
    if (buf_pending(&c->query) > 0 && c->pending == 0 && !c->close_after_output) {
        size_t used = node_client_parse(node, c, buf_head(&c->query), buf_pending(&c->query));
        buf_consume(&c->query, used);
    }
    node_client_mark_write(node, c);
}

const uint8_t *node_client_output(struct node *node, uint64_t client_id, size_t *bytes) {
    struct client *c = node_client_find(node, client_id);
    *bytes = 0;
    if (c == NULL) return NULL;
    ASSERT(c->released_end >= c->out_sent);
    *bytes = (size_t)(c->released_end - c->out_sent);
    ASSERT(*bytes <= buf_pending(&c->out));
    return buf_head(&c->out);
}

void node_client_sent(struct node *node, uint64_t client_id, size_t bytes) {
    struct client *c = node_client_find(node, client_id);
    ASSERT(c != NULL);
    ASSERT(c->out_sent + bytes <= c->released_end);
    buf_consume(&c->out, bytes);
    c->out_sent += bytes;
}

const char *node_fatal_text(const struct node *node) {
    return node->fatal_text;
}

struct engine *node_engine(const struct node *node) {
    return node->engines[0].engine;
}

struct engine *node_engine_ap(const struct node *node) {
    uint8_t slot = node->mode_engine[KEYSPACE_MODE_AP];
    return slot != 0 ? node->engines[slot].engine : NULL;
}

bool node_client_backpressured(const struct node *node, uint64_t client_id) {
    struct client *c = node_client_find((struct node *)node, client_id);
    return c != NULL && buf_pending(&c->out) > NODE_BACKPRESSURE_BYTES;
}
