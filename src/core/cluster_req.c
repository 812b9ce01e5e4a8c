/*
 * Client requests in a cluster. A write is proposed to Raft by the leader and answered
 * when its entry is applied; any other node forwards it to the leader. A read is served
 * at the level asked for: linearizable (ReadIndex: the leader confirms with a majority,
 * then reads once applied up to that index), lease (the leader reads locally while its
 * lease holds), stale (any node reads its own replica). Without a leader a request fails
 * at once with -NOQUORUM; a write not confirmed within the request timeout answers
 * -TIMEOUT (its outcome is unknown). A client waiting on Raft has its input paused, so
 * its replies stay in order.
 *
 * Command lists (entries, forwarded requests, pending reads): flags:u8 count:u32, then per
 * command argc:u32 (len:u32 bytes)*. Flags: 1 EXEC, reply as one array; 2 WATCH, a read
 * that replies the applied index where it is served (":index", cluster_watch.c); 4 IF,
 * the commands are followed by WATCH conditions (cluster_watch.c), which the leader checks
 * and strips before proposing (an entry never carries them).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/util.h"
#include "core/internal.h"

struct buf *cluster_origin_out(struct node *node, struct cluster_origin *o) {
    if (o->client_id != 0) {
        struct client *c = node_client_find(node, o->client_id);
        if (c != NULL) return o->watch ? cluster_watch_reply(node) : &c->out;
        o->client_id = 0;
    }
    if (o->peer != 0) return &node->cluster->fwd_reply;
    buf_clear(&node->scratch);
    return &node->scratch; /* the client went away: the reply has nowhere to go */
}

static void cluster_list_begin(struct buf *list, uint8_t flags, uint32_t count) {
    buf_append_byte(list, flags);
    buf_append_u32le(list, count);
}

static void cluster_list_add(struct buf *list, uint32_t argc, const struct resp_arg *argv) {
    buf_append_u32le(list, argc);
    for (uint32_t i = 0; i < argc; i++) {
        buf_append_u32le(list, (uint32_t)argv[i].bytes);
        buf_append(list, argv[i].data, argv[i].bytes);
    }
}

/* Decodes the command at *pos into args (struct resp_arg[]); false on a malformed list. */
bool cluster_list_next(const uint8_t *list, size_t bytes, size_t *pos, struct buf *args,
                       uint32_t *argc) {
    buf_clear(args);
    if (bytes - *pos < 4) return false;
    *argc = base_load_u32le(list + *pos);
    *pos += 4;
    for (uint32_t i = 0; i < *argc; i++) {
        if (bytes - *pos < 4) return false;
        struct resp_arg a = {.bytes = base_load_u32le(list + *pos), .data = list + *pos + 4};
        if (bytes - *pos - 4 < a.bytes) return false;
        *pos += 4 + a.bytes;
        buf_append(args, &a, sizeof(a));
    }
    return *argc > 0;
}

void cluster_run_commands(struct node *node, struct buf *out, int proto, const uint8_t *cmds,
                          size_t bytes, bool readonly) {
    struct cluster *cl = node->cluster;
    if (bytes < 5) return;
    uint8_t flags = cmds[0];
    uint32_t count = base_load_u32le(cmds + 1);
    if (flags & CLUSTER_LIST_WATCH) {
        resp_put_int(out, (int64_t)cl->applied); /* the state a read here observes */
        return;
    }
    if (flags & CLUSTER_LIST_EXEC) resp_put_array(out, count);
    size_t pos = 5;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t argc;
        if (!cluster_list_next(cmds, bytes, &pos, &cl->args, &argc)) {
            resp_put_error(out, "ERR malformed replicated command");
            return;
        }
        const struct resp_arg *argv = (const struct resp_arg *)cl->args.data;
        const struct cmd_spec *spec = cmd_lookup(argv[0].data, argv[0].bytes);
        if (spec == NULL || spec->fn == NULL || !cmd_arity_ok(spec, argc)) {
            resp_put_error(out, "ERR only data commands can run in a cluster transaction");
            continue;
        }
        struct cmd_ctx ctx = {.db = node->db,
                              .now_ms = node->now_ms,
                              .proto = proto,
                              .argc = argc,
                              .argv = argv,
                              .out = out,
                              .ops = &node->ops,
                              .string_bytes_max = node->config.limits.bulk_bytes_max,
                              .readonly = readonly};
        spec->fn(&ctx);
    }
    /* The Raft log is the durable record: ops are not logged again. */
    if (cl->applying != 0) {
        cluster_watch_note_ops(cl->watch, cl->applying, node->ops.data, node->ops.len);
    }
    buf_clear(&node->ops);
}

static struct cluster_wait *cluster_wait_new(struct node *node, enum cluster_wait_kind kind,
                                             const struct cluster_origin *origin) {
    struct cluster *cl = node->cluster;
    struct cluster_wait *w = base_calloc(1, sizeof(*w));
    w->id = ++cl->next_wait_id;
    w->kind = kind;
    w->origin = *origin;
    w->deadline_ms = cl->mono_ms + node->config.request_timeout_ms;
    buf_init(&w->request);
    w->next = cl->waits;
    cl->waits = w;
    cl->wait_count++;
    if (origin->client_id != 0) {
        struct client *c = node_client_find(node, origin->client_id);
        ASSERT(c != NULL && c->wait == NULL);
        c->wait = w;
    }
    return w;
}

struct cluster_wait *cluster_wait_start(struct node *node, enum cluster_wait_kind kind,
                                        struct client *c) {
    struct cluster_origin o = {.client_id = c->id, .proto = c->proto};
    return cluster_wait_new(node, kind, &o);
}

static void cluster_reply_remote(struct node *node, const struct cluster_origin *o) {
    struct cluster *cl = node->cluster;
    if (o->client_id != 0 || o->peer == 0) return;
    struct buf msg;
    buf_init(&msg);
    buf_append_byte(&msg, ENGINE_CP);
    buf_append_byte(&msg, NODE_PEER_FORWARD_REPLY);
    buf_append_u64le(&msg, o->request);
    buf_append(&msg, cl->fwd_reply.data, cl->fwd_reply.len);
    cluster_send(node, o->peer, msg.data, msg.len);
    buf_deinit(&msg);
    buf_clear(&cl->fwd_reply);
}

/* The reply in the origin's buffer is complete: the client goes on, or it is sent. */
static void cluster_wait_answered(struct node *node, struct cluster_wait *w) {
    if (w->origin.client_id != 0) {
        struct client *c = node_client_find(node, w->origin.client_id);
        if (c != NULL) {
            c->wait = NULL;
            if (w->origin.watch) cluster_watch_answered(node, c);
            if (w->kind == CLUSTER_WAIT_PROPOSAL || w->kind == CLUSTER_WAIT_ALL)
                c->last_write_index = w->index;
            if (!c->resume_listed) {
                c->resume_listed = true;
                buf_append_u64le(&node->resume_list, c->id);
            }
        }
    } else {
        cluster_reply_remote(node, &w->origin);
    }
}

/* Answered ahead of the wait's end (leader mode): w stays, with no one to answer. */
void cluster_wait_detach(struct node *node, struct cluster_wait *w) {
    cluster_wait_answered(node, w);
    w->origin.client_id = 0;
    w->origin.peer = 0;
}

void cluster_wait_finish(struct node *node, struct cluster_wait *w) {
    struct cluster *cl = node->cluster;
    struct cluster_wait **p = &cl->waits;
    while (*p != w) p = &(*p)->next;
    *p = w->next;
    ASSERT(cl->wait_count > 0);
    cl->wait_count--;
    if (w->spec_ready && !w->spec_acked) cl->spec.awaiting--;
    cluster_wait_answered(node, w);
    buf_deinit(&w->request);
    free(w);
}

void cluster_resume_clients(struct node *node) {
    for (size_t pos = 0; pos < node->resume_list.len; pos += 8) {
        struct client *c = node_client_find(node, base_load_u64le(node->resume_list.data + pos));
        if (c == NULL) continue;
        c->resume_listed = false;
        node_client_resume(node, c);
    }
    buf_clear(&node->resume_list);
}

void cluster_client_closed(struct node *node, struct client *c) {
    (void)node;
    if (c->wait != NULL) c->wait->origin.client_id = 0;
    c->wait = NULL;
}

static void cluster_reply_noquorum(struct node *node, struct buf *out) {
    errcode_reply(out, ERRCODE_NOQUORUM,
                  "no leader is known: node %u cannot reach a majority of the "
                  "cluster right now, so it refuses rather than risk a stale or lost answer",
                  node->config.id);
}

static bool cluster_list_writes(struct node *node, const uint8_t *list, size_t bytes) {
    struct cluster *cl = node->cluster;
    if (list[0] & CLUSTER_LIST_WATCH) return false;
    /* A transaction with WATCH conditions always goes through the log: the leader decides
     * it against the entries before it, whatever its commands are. */
    if (list[0] & CLUSTER_LIST_IF) return true;
    uint32_t count = base_load_u32le(list + 1);
    size_t pos = 5;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t argc;
        if (!cluster_list_next(list, bytes, &pos, &cl->args, &argc)) return false;
        const struct resp_arg *argv = (const struct resp_arg *)cl->args.data;
        const struct cmd_spec *spec = cmd_lookup(argv[0].data, argv[0].bytes);
        if (spec != NULL && (spec->flags & CMD_WRITE)) return true;
    }
    return false;
}

/* replication = all: refuses at once while the leader cannot hear every voter. */
static bool cluster_refuse_all(struct node *node, struct cluster_origin *o) {
    char text[256];
    if (!cluster_all_unreachable(node, text, sizeof(text))) return false;
    errcode_reply(cluster_origin_out(node, o), ERRCODE_NOREPLICAS,
                  "replication = all needs every voter and the leader has not "
                  "heard from %s lately: the write was not applied",
                  text);
    cluster_reply_remote(node, o);
    return true;
}

static void cluster_submit_write(struct node *node, const struct cluster_origin *origin,
                                 const uint8_t *list, size_t bytes) {
    struct cluster *cl = node->cluster;
    struct cluster_origin o = *origin;
    struct cluster_list_mode lm;
    cluster_list_mode(node, list, bytes, &lm, &cl->spec.keys);
    if (lm.mode == KEYSPACE_REPLICATION_ALL && cluster_refuse_all(node, &o)) return;
    uint64_t ts = cluster_entry_ms(node);
    struct buf entry;
    buf_init(&entry);
    buf_append_byte(&entry, CLUSTER_ENTRY_COMMANDS);
    buf_append_u64le(&entry, ts);
    buf_append(&entry, list, bytes);
    uint64_t index = 0;
    uint64_t term = 0;
    int rc = cluster_propose(node, entry.data, entry.len, &index, &term);
    buf_deinit(&entry);
    if (rc == ERR_NOSPACE || rc == ERR_LIMIT) {
        node->stats.disk_full_refusals++;
        errcode_reply(cluster_origin_out(node, &o), ERRCODE_DISKFULL,
                      "%s; writes are refused until space is freed, reads go on",
                      node->disk_full_text);
    } else if (rc != 0) {
        errcode_reply(cluster_origin_out(node, &o), ERRCODE_TRYAGAIN,
                      "node %u is handing over or lost leadership (%s); retry", node->config.id,
                      err_text(rc));
    } else {
        struct cluster_wait *w = cluster_wait_new(node, CLUSTER_WAIT_PROPOSAL, origin);
        w->index = index;
        w->term = term;
        w->writes = true;
        w->repl = (uint8_t)lm.mode;
        if (lm.leader_keys && cluster_spec_enabled(node)) {
            bool early = lm.mode == KEYSPACE_REPLICATION_LEADER;
            if (cluster_spec_proposed(node, index, ts, origin->proto, list, bytes, &lm,
                                      &cl->spec.keys, early ? &w->request : NULL) &&
                early) {
                w->spec_ready = true;
                cl->spec.awaiting++;
            }
        }
        return;
    }
    cluster_reply_remote(node, &o);
}

static void cluster_submit_read(struct node *node, const struct cluster_origin *origin,
                                const uint8_t *list, size_t bytes) {
    struct cluster_wait *w = cluster_wait_new(node, CLUSTER_WAIT_READ, origin);
    buf_append(&w->request, list, bytes);
    w->min_applied = node->cluster->spec.acked_index; /* read your leader-mode writes */
    struct raft_event ev = {.kind = RAFT_EVENT_READ, .read_ctx = w->id};
    struct raft_effects e;
    int rc = cluster_raft_step(node, &ev, &e);
    if (rc != 0) {
        errcode_reply(cluster_origin_out(node, &w->origin), ERRCODE_TRYAGAIN,
                      "node %u cannot serve a linearizable read now (%s); retry", node->config.id,
                      err_text(rc));
        cluster_wait_finish(node, w);
    }
}

static void cluster_forward(struct node *node, const struct cluster_origin *origin, uint32_t leader,
                            int level, const uint8_t *list, size_t bytes, bool writes) {
    struct cluster_wait *w = cluster_wait_new(node, CLUSTER_WAIT_FORWARD, origin);
    w->writes = writes;
    w->forwarded_to = leader;
    struct buf msg;
    buf_init(&msg);
    buf_append_byte(&msg, ENGINE_CP);
    buf_append_byte(&msg, NODE_PEER_FORWARD);
    buf_append_u64le(&msg, w->id);
    buf_append_byte(&msg, (uint8_t)origin->proto);
    buf_append_byte(&msg, (uint8_t)level);
    buf_append(&msg, list, bytes);
    cluster_send(node, leader, msg.data, msg.len);
    buf_deinit(&msg);
}

/* Leader: a write, once its WATCH conditions (if any) pass: EXEC aborts (a null reply)
 * when a watched key may have changed since its WATCH. */
static void cluster_submit_checked(struct node *node, const struct cluster_origin *origin,
                                   const uint8_t *list, size_t bytes) {
    if (!(list[0] & CLUSTER_LIST_IF)) {
        cluster_submit_write(node, origin, list, bytes);
        return;
    }
    struct cluster_origin o = *origin;
    size_t list_bytes = 0;
    enum cluster_watch_verdict v = cluster_watch_check(node, list, bytes, &list_bytes);
    if (v == CLUSTER_WATCH_PASS) {
        struct buf plain;
        buf_init(&plain);
        buf_append(&plain, list, list_bytes);
        plain.data[0] &= (uint8_t)~CLUSTER_LIST_IF;
        cluster_submit_write(node, origin, plain.data, plain.len);
        buf_deinit(&plain);
        return;
    }
    if (v == CLUSTER_WATCH_ABORT) {
        resp_put_null_array(cluster_origin_out(node, &o), o.proto);
    } else {
        resp_put_error(cluster_origin_out(node, &o), "ERR malformed replicated command");
    }
    cluster_reply_remote(node, &o);
}

/* Routes one request (a command list) by role and consistency level. */
static void cluster_submit(struct node *node, const struct cluster_origin *origin,
                           const uint8_t *list, size_t bytes, int level) {
    struct cluster *cl = node->cluster;
    bool writes = cluster_list_writes(node, list, bytes);
    enum raft_role role = raft_role(cl->raft);
    uint32_t leader = raft_leader_id(cl->raft);
    struct cluster_origin o = *origin;
    if (cl->wait_count >= CLUSTER_WAITS_MAX) {
        errcode_reply(cluster_origin_out(node, &o), ERRCODE_BUSY,
                      "node %u has %u requests waiting on Raft already (the limit): retry later",
                      node->config.id, cl->wait_count);
        cluster_reply_remote(node, &o);
        return;
    }
    bool local_read = !writes && (level == KEYSPACE_CONSISTENCY_STALE ||
                                  (level == KEYSPACE_CONSISTENCY_LEASE && role == RAFT_LEADER &&
                                   raft_lease_valid(cl->raft, cl->mono_ms) &&
                                   cl->spec.acked_index <= cl->applied));
    if (local_read) {
        uint64_t saved = node->now_ms;
        node->now_ms = cluster_wall_ms(node);
        cluster_run_commands(node, cluster_origin_out(node, &o), o.proto, list, bytes, true);
        node->now_ms = saved;
        cluster_reply_remote(node, &o);
    } else if (role == RAFT_LEADER && writes) {
        cluster_submit_checked(node, origin, list, bytes);
    } else if (role == RAFT_LEADER) {
        cluster_submit_read(node, origin, list, bytes);
    } else if (leader != 0 && leader != node->config.id && origin->peer == 0) {
        cluster_forward(node, origin, leader, level, list, bytes, writes);
    } else if (origin->peer != 0) {
        errcode_reply(cluster_origin_out(node, &o), ERRCODE_TRYAGAIN,
                      "node %u is no longer the leader; retry", node->config.id);
        cluster_reply_remote(node, &o);
    } else {
        cluster_reply_noquorum(node, cluster_origin_out(node, &o));
    }
}

/* The read level for a request: the client's CONSISTENCY, else its key's keyspace's. */
static int cluster_level(struct node *node, struct client *c, const struct cmd_spec *spec,
                         uint32_t argc, const struct resp_arg *argv) {
    if (c != NULL && c->consistency != 0) return c->consistency;
    if (spec == NULL || spec->key_first <= 0 || (uint32_t)spec->key_first >= argc) {
        return node->config.keyspace_count > 0 ? (int)node->config.keyspaces[0].consistency
                                               : KEYSPACE_CONSISTENCY_LINEARIZABLE;
    }
    const struct resp_arg *key = &argv[spec->key_first];
    const struct keyspace *ks =
        keyspace_find(node->config.keyspaces, node->config.keyspace_count, key->data, key->bytes);
    if (ks != NULL) return (int)ks->consistency;
    return KEYSPACE_CONSISTENCY_LINEARIZABLE;
}

void cluster_client_request(struct node *node, struct client *c, const struct cmd_spec *spec,
                            uint32_t argc, const struct resp_arg *argv) {
    struct buf list;
    buf_init(&list);
    cluster_list_begin(&list, 0, 1);
    cluster_list_add(&list, argc, argv);
    struct cluster_origin o = {.client_id = c->id, .proto = c->proto};
    cluster_submit(node, &o, list.data, list.len, cluster_level(node, c, spec, argc, argv));
    buf_deinit(&list);
}

void cluster_client_exec(struct node *node, struct client *c) {
    struct buf list;
    buf_init(&list);
    cluster_list_begin(&list, CLUSTER_LIST_EXEC, c->multi_count);
    buf_append(&list, c->multi_queue.data, c->multi_queue.len);
    if (c->watch_count > 0) cluster_watch_put_conditions(&list, c);
    struct cluster_origin o = {.client_id = c->id, .proto = c->proto};
    int level = c->consistency != 0 ? c->consistency : KEYSPACE_CONSISTENCY_LINEARIZABLE;
    cluster_submit(node, &o, list.data, list.len, level);
    buf_deinit(&list);
}

/* WATCH's read level: the weakest of its keys'. A later read of any of them, even one
 * served by this node's own replica, then observes at least the state WATCH recorded. */
static int cluster_watch_level(struct node *node, struct client *c, const struct cmd_spec *spec,
                               uint32_t argc, const struct resp_arg *argv) {
    if (c->consistency != 0) return c->consistency;
    int level = KEYSPACE_CONSISTENCY_LINEARIZABLE;
    for (uint32_t i = 1; i < argc; i++) {
        struct resp_arg pair[2] = {argv[0], argv[i]};
        int key_level = cluster_level(node, NULL, spec, 2, pair);
        if (key_level > level) level = key_level; /* STALE > LEASE > LINEARIZABLE */
    }
    ASSERT(level >= KEYSPACE_CONSISTENCY_LINEARIZABLE && level <= KEYSPACE_CONSISTENCY_STALE);
    return level;
}

void cluster_client_watch(struct node *node, struct client *c, const struct cmd_spec *spec,
                          uint32_t argc, const struct resp_arg *argv) {
    ASSERT(c->watch_pending > 0 && c->wait == NULL);
    struct buf list;
    buf_init(&list);
    cluster_list_begin(&list, CLUSTER_LIST_WATCH, 1);
    cluster_list_add(&list, argc, argv);
    struct cluster_origin o = {.client_id = c->id, .proto = c->proto, .watch = true};
    buf_clear(cluster_watch_reply(node));
    cluster_submit(node, &o, list.data, list.len, cluster_watch_level(node, c, spec, argc, argv));
    buf_deinit(&list);
    /* Answered at once (served here, or refused): else when its wait ends. */
    if (c->wait == NULL) cluster_watch_answered(node, c);
}

/* A peer's client request, on (what the peer believes is) the leader. */
void cluster_forward_request(struct node *node, uint32_t from, const uint8_t *data, size_t bytes) {
    if (bytes < 10 + 5) return;
    struct cluster_origin o = {
        .peer = from, .request = base_load_u64le(data), .proto = data[8] == 3 ? 3 : 2};
    int level = data[9];
    if (level < KEYSPACE_CONSISTENCY_LINEARIZABLE || level > KEYSPACE_CONSISTENCY_STALE) return;
    buf_clear(&node->cluster->fwd_reply);
    cluster_submit(node, &o, data + 10, bytes - 10, level);
}

void cluster_forward_reply(struct node *node, const uint8_t *data, size_t bytes) {
    struct cluster *cl = node->cluster;
    if (bytes < 8) return;
    uint64_t id = base_load_u64le(data);
    for (struct cluster_wait *w = cl->waits; w != NULL; w = w->next) {
        if (w->kind != CLUSTER_WAIT_FORWARD || w->id != id) continue;
        struct buf *out = cluster_origin_out(node, &w->origin);
        buf_append(out, data + 8, bytes - 8);
        cluster_wait_finish(node, w);
        return;
    }
}

static void cluster_serve_read(struct node *node, struct cluster_wait *w) {
    uint64_t saved = node->now_ms;
    node->now_ms = cluster_wall_ms(node);
    cluster_run_commands(node, cluster_origin_out(node, &w->origin), w->origin.proto,
                         w->request.data, w->request.len, true);
    node->now_ms = saved;
    cluster_wait_finish(node, w);
}

void cluster_read_ready(struct node *node, uint64_t ctx, uint64_t index, bool failed) {
    struct cluster *cl = node->cluster;
    for (struct cluster_wait *w = cl->waits; w != NULL; w = w->next) {
        if (w->kind != CLUSTER_WAIT_READ || w->id != ctx) continue;
        if (failed) {
            errcode_reply(cluster_origin_out(node, &w->origin), ERRCODE_TRYAGAIN,
                          "node %u lost leadership before it could confirm the read; retry",
                          node->config.id);
            cluster_wait_finish(node, w);
        } else if (index <= cl->applied && w->min_applied <= cl->applied) {
            cluster_serve_read(node, w);
        } else {
            w->read_ready = true;
            w->index = index;
        }
        return;
    }
}

void cluster_after_apply(struct node *node) {
    struct cluster *cl = node->cluster;
    struct cluster_wait *w = cl->waits;
    while (w != NULL) {
        struct cluster_wait *next = w->next;
        if (w->kind == CLUSTER_WAIT_READ && w->read_ready && w->index <= cl->applied &&
            w->min_applied <= cl->applied) {
            cluster_serve_read(node, w);
        }
        w = next;
    }
}
