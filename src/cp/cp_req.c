/*
 * The CP engine's requests (engine.h's submit: an id in, the reply out by that id). A write
 * is proposed to Raft by the leader and answered when its entry is applied; any other node
 * forwards it to the leader. A read is served at the level asked for: linearizable
 * (ReadIndex: the leader confirms with a majority, then reads once applied up to that
 * index), lease (the leader reads locally while its lease holds), stale (any node reads its
 * own replica). Without a leader a request fails at once with -NOQUORUM; a write not
 * confirmed within the request timeout answers -TIMEOUT (its outcome is unknown). The node
 * pauses a client's input while its request waits here, so its replies stay in order.
 *
 * Requests, entries, forwards and pending reads carry command lists (engine/cmdlist.h);
 * a list flagged IF ends with WATCH conditions, which the leader checks and strips before
 * proposing (cp_watch.c): an entry never carries them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/util.h"
#include "cp/internal.h"

struct buf *cp_origin_out(struct cp *cp, struct cp_origin *o) {
    if (o->request_id != 0) {
        ASSERT(o->out != NULL);
        return o->out;
    }
    if (o->peer != 0) return &cp->fwd_reply;
    buf_clear(&cp->scratch);
    return &cp->scratch; /* the client went away: the reply has nowhere to go */
}

void cp_run_commands(struct cp *cp, struct buf *out, int proto, const uint8_t *cmds, size_t bytes,
                     bool readonly) {
    if (bytes < 5) return;
    uint8_t flags = cmds[0];
    uint32_t count = base_load_u32le(cmds + 1);
    if (flags & CMDLIST_WATCH) {
        resp_put_int(out, (int64_t)cp->applied); /* the state a read here observes */
        return;
    }
    if (flags & CMDLIST_EXEC) resp_put_array(out, count);
    size_t pos = 5;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t argc;
        if (!cmdlist_next(cmds, bytes, &pos, &cp->args, &argc)) {
            resp_put_error(out, "ERR malformed replicated command");
            return;
        }
        const struct resp_arg *argv = (const struct resp_arg *)cp->args.data;
        const struct cmd_spec *spec = cmd_lookup(argv[0].data, argv[0].bytes);
        if (spec == NULL || spec->fn == NULL || !cmd_arity_ok(spec, argc)) {
            resp_put_error(out, "ERR only data commands can run in a cluster transaction");
            continue;
        }
        struct cmd_ctx ctx = {.db = cp->db,
                              .now_ms = cp->now_ms,
                              .proto = proto,
                              .argc = argc,
                              .argv = argv,
                              .out = out,
                              .ops = &cp->ops,
                              .string_bytes_max = cp->config.string_bytes_max,
                              .readonly = readonly};
        spec->fn(&ctx);
    }
    /* The Raft log is the durable record: ops are not logged again. */
    if (cp->applying != 0) {
        cp_watch_note_ops(cp->watch, cp->applying, cp->ops.data, cp->ops.len);
        cp_snap_ops(cp, cp->ops.data, cp->ops.len); /* a snapshot being taken sees it too */
    }
    buf_clear(&cp->ops);
}

#define CP_WAIT_BUCKETS_MIN 256

static size_t cp_wait_bucket(const struct cp *cp, uint64_t key) {
    return (size_t)((key * 0x9e3779b97f4a7c15ull) >> 20) & (cp->wait_buckets - 1);
}

static void cp_wait_link_id(struct cp *cp, struct cp_wait *w) {
    size_t b = cp_wait_bucket(cp, w->id);
    w->id_next = cp->wait_ids[b];
    cp->wait_ids[b] = w;
}

static void cp_wait_link_index(struct cp *cp, struct cp_wait *w) {
    size_t b = cp_wait_bucket(cp, w->index);
    w->index_next = cp->wait_indexes[b];
    cp->wait_indexes[b] = w;
}

/* Both tables at least as many buckets as waits (the chains stay short). */
static void cp_wait_tables_fit(struct cp *cp) {
    if (cp->wait_buckets != 0 && cp->wait_count + 1 < cp->wait_buckets) return;
    size_t buckets = cp->wait_buckets == 0 ? CP_WAIT_BUCKETS_MIN : cp->wait_buckets * 2;
    free(cp->wait_ids);
    free(cp->wait_indexes);
    cp->wait_buckets = buckets;
    cp->wait_ids = base_calloc(buckets, sizeof(*cp->wait_ids));
    cp->wait_indexes = base_calloc(buckets, sizeof(*cp->wait_indexes));
    /* Oldest first, as they were linked: a chain keeps its newest first. */
    struct cp_wait *oldest = cp->waits;
    while (oldest != NULL && oldest->next != NULL) oldest = oldest->next;
    for (struct cp_wait *w = oldest; w != NULL; w = w->prev) {
        cp_wait_link_id(cp, w);
        if (w->indexed) cp_wait_link_index(cp, w);
    }
}

void cp_waits_deinit(struct cp *cp) {
    free(cp->wait_ids);
    free(cp->wait_indexes);
    cp->wait_ids = cp->wait_indexes = NULL;
    cp->wait_buckets = 0;
}

static void cp_wait_unlink_id(struct cp *cp, struct cp_wait *w) {
    struct cp_wait **p = &cp->wait_ids[cp_wait_bucket(cp, w->id)];
    while (*p != w) p = &(*p)->id_next;
    *p = w->id_next;
}

static void cp_wait_unlink_index(struct cp *cp, struct cp_wait *w) {
    struct cp_wait **p = &cp->wait_indexes[cp_wait_bucket(cp, w->index)];
    while (*p != w) p = &(*p)->index_next;
    *p = w->index_next;
    w->indexed = false;
}

void cp_wait_index(struct cp *cp, struct cp_wait *w, uint64_t index) {
    ASSERT(w->kind == CP_WAIT_PROPOSAL);
    if (w->indexed) cp_wait_unlink_index(cp, w);
    w->index = index;
    w->indexed = true;
    cp_wait_link_index(cp, w);
}

struct cp_wait *cp_wait_proposal(const struct cp *cp, uint64_t index) {
    if (cp->wait_buckets == 0) return NULL;
    struct cp_wait *found = NULL; /* the oldest: the last one linked in its chain */
    for (struct cp_wait *w = cp->wait_indexes[cp_wait_bucket(cp, index)]; w != NULL;
         w = w->index_next)
        if (w->kind == CP_WAIT_PROPOSAL && w->index == index) found = w;
    return found;
}

struct cp_wait *cp_wait_find(const struct cp *cp, uint64_t id, enum cp_wait_kind kind) {
    if (cp->wait_buckets == 0) return NULL;
    for (struct cp_wait *w = cp->wait_ids[cp_wait_bucket(cp, id)]; w != NULL; w = w->id_next)
        if (w->id == id) return w->kind == kind ? w : NULL;
    return NULL;
}

struct cp_wait *cp_wait_start(struct cp *cp, enum cp_wait_kind kind,
                              const struct cp_origin *origin) {
    struct cp_wait *w = base_calloc(1, sizeof(*w));
    w->id = ++cp->next_wait_id;
    w->kind = kind;
    w->origin = *origin;
    w->deadline_ms = cp->mono_ms + cp->config.request_timeout_ms;
    if (w->deadline_ms < cp->deadline_min_ms) cp->deadline_min_ms = w->deadline_ms;
    buf_init(&w->request);
    buf_init(&w->reply);
    cp_wait_tables_fit(cp); /* before w is listed: a resize links what is listed */
    w->next = cp->waits;
    if (cp->waits != NULL) cp->waits->prev = w;
    cp->waits = w;
    cp->wait_count++;
    if (kind == CP_WAIT_REPLICAS) cp->replica_waits++;
    cp_wait_link_id(cp, w);
    if (origin->request_id != 0) {
        /* Its reply is built in the wait from now on, and given when the wait ends. */
        w->origin.out = &w->reply;
        if (origin->request_id == cp->submit_id) cp->submit_waits = true;
    }
    return w;
}

/* A remote origin's reply: FORWARD_REPLY request:u64 observed:u64 reply (cp.h). */
static void cp_reply_remote_at(struct cp *cp, const struct cp_origin *o, uint64_t observed) {
    if (o->request_id != 0 || o->peer == 0) return;
    struct buf msg;
    buf_init(&msg);
    buf_append_byte(&msg, ENGINE_CP);
    buf_append_byte(&msg, CP_PEER_FORWARD_REPLY);
    buf_append_u64le(&msg, o->request);
    buf_append_u64le(&msg, observed);
    buf_append(&msg, cp->fwd_reply.data, cp->fwd_reply.len);
    cp_send(cp, o->peer, msg.data, msg.len);
    buf_deinit(&msg);
    buf_clear(&cp->fwd_reply);
}

/* What a reply given now reflects: what this node has applied (a read served now, or an
 * error: more than it saw makes a session wait longer, never answer staler). */
static void cp_reply_remote(struct cp *cp, const struct cp_origin *o) {
    cp_reply_remote_at(cp, o, cp->applied);
}

/* Gives a local request's reply: straight into the submit's buffer while that request is
 * being submitted, else as an effect of this step. */
static void cp_give_reply(struct cp *cp, uint64_t id, uint64_t token, uint64_t observed,
                          const struct buf *reply) {
    ASSERT(id != 0);
    if (id == cp->submit_id && cp->submit_out != NULL) {
        buf_append(cp->submit_out, reply->data, reply->len);
        cp->submit_answered = true;
        cp->submit_token = token;
        cp->submit_observed = observed;
        return;
    }
    buf_append_u64le(&cp->replies, id);
    buf_append_u64le(&cp->replies, token);
    buf_append_u64le(&cp->replies, observed);
    buf_append_u32le(&cp->replies, (uint32_t)reply->len);
    buf_append(&cp->replies, reply->data, reply->len);
}

void cp_take_replies(struct cp *cp, const struct engine_reply **out, size_t *count) {
    buf_clear(&cp->reply_list);
    for (size_t pos = 0; pos < cp->replies.len;) {
        struct engine_reply r = {0};
        r.id = base_load_u64le(cp->replies.data + pos);
        r.write_token = base_load_u64le(cp->replies.data + pos + 8);
        r.observed_index = base_load_u64le(cp->replies.data + pos + 16);
        r.bytes = base_load_u32le(cp->replies.data + pos + 24);
        r.data = cp->replies.data + pos + 28;
        buf_append(&cp->reply_list, &r, sizeof(r));
        pos += 28 + r.bytes;
    }
    *out = (const struct engine_reply *)cp->reply_list.data;
    *count = cp->reply_list.len / sizeof(struct engine_reply);
}

/* The reply in the origin's buffer is complete: it is given, or sent to the peer. */
static void cp_wait_answered(struct cp *cp, struct cp_wait *w) {
    bool wrote = w->kind == CP_WAIT_PROPOSAL || w->kind == CP_WAIT_ALL;
    /* A write reflects its own entry (in leader mode answered before it is applied); a
     * forward what the leader's reply said; anything else what is applied here now. */
    uint64_t observed = cp->applied;
    if (wrote && w->index > observed) observed = w->index;
    if (w->observed > observed) observed = w->observed;
    if (w->origin.request_id != 0) {
        cp_give_reply(cp, w->origin.request_id, wrote ? w->index : 0, observed, &w->reply);
        buf_clear(&w->reply);
    } else {
        cp_reply_remote_at(cp, &w->origin, observed);
    }
}

/* Answered ahead of the wait's end (leader mode): w stays, with no one to answer. */
void cp_wait_detach(struct cp *cp, struct cp_wait *w) {
    cp_wait_answered(cp, w);
    w->origin.request_id = 0;
    w->origin.out = NULL;
    w->origin.peer = 0;
}

void cp_wait_finish(struct cp *cp, struct cp_wait *w) {
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        cp->waits = w->next;
    if (w->next != NULL) w->next->prev = w->prev;
    cp_wait_unlink_id(cp, w);
    if (w->indexed) cp_wait_unlink_index(cp, w);
    if (w->kind == CP_WAIT_REPLICAS || w->kind == CP_WAIT_ALL) cp->replica_waits--;
    if (w->kind == CP_WAIT_READ && w->read_ready) cp->reads_ready--;
    ASSERT(cp->wait_count > 0);
    cp->wait_count--;
    if (w->spec_ready && !w->spec_acked) cp->spec.awaiting--;
    cp_wait_answered(cp, w);
    buf_deinit(&w->request);
    buf_deinit(&w->reply);
    free(w);
}

void cp_request_gone(struct cp *cp, uint64_t id) {
    ASSERT(id != 0);
    for (struct cp_wait *w = cp->waits; w != NULL; w = w->next) {
        if (w->origin.request_id != id) continue;
        w->origin.request_id = 0;
        w->origin.out = NULL;
        buf_clear(&w->reply);
    }
}

static void cp_reply_noquorum(struct cp *cp, struct buf *out) {
    errcode_reply(out, ERRCODE_NOQUORUM,
                  "no leader is known: node %u cannot reach a majority of the "
                  "cluster right now, so it refuses rather than risk a stale or lost answer",
                  cp->config.id);
}

static bool cp_list_writes(struct cp *cp, const uint8_t *list, size_t bytes) {
    if (list[0] & CMDLIST_WATCH) return false;
    /* A transaction with WATCH conditions always goes through the log: the leader decides
     * it against the entries before it, whatever its commands are. */
    if (list[0] & CMDLIST_IF) return true;
    uint32_t count = base_load_u32le(list + 1);
    size_t pos = 5;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t argc;
        if (!cmdlist_next(list, bytes, &pos, &cp->args, &argc)) return false;
        const struct resp_arg *argv = (const struct resp_arg *)cp->args.data;
        const struct cmd_spec *spec = cmd_lookup(argv[0].data, argv[0].bytes);
        if (spec != NULL && (spec->flags & CMD_WRITE)) return true;
    }
    return false;
}

/* replication = all: refuses at once while the leader cannot hear every voter. */
static bool cp_refuse_all(struct cp *cp, struct cp_origin *o) {
    char text[256];
    if (!cp_all_unreachable(cp, text, sizeof(text))) return false;
    errcode_reply(cp_origin_out(cp, o), ERRCODE_NOREPLICAS,
                  "replication = all needs every voter and the leader has not "
                  "heard from %s lately: the write was not applied",
                  text);
    cp_reply_remote(cp, o);
    return true;
}

static void cp_submit_write(struct cp *cp, const struct cp_origin *origin, const uint8_t *list,
                            size_t bytes) {
    struct cp_origin o = *origin;
    struct cp_list_mode lm;
    cp_list_mode(cp, list, bytes, &lm, &cp->spec.keys);
    if (lm.mode == KEYSPACE_REPLICATION_ALL && cp_refuse_all(cp, &o)) return;
    uint64_t ts = cp_entry_ms(cp);
    struct buf entry;
    buf_init(&entry);
    buf_append_byte(&entry, CP_ENTRY_COMMANDS);
    buf_append_u64le(&entry, ts);
    buf_append(&entry, list, bytes);
    uint64_t index = 0;
    uint64_t term = 0;
    int rc = cp_propose(cp, entry.data, entry.len, &index, &term);
    buf_deinit(&entry);
    if (rc == ERR_NOSPACE || rc == ERR_LIMIT) {
        cp->stats.disk_full_refusals++;
        errcode_reply(cp_origin_out(cp, &o), ERRCODE_DISKFULL,
                      "%s; writes are refused until space is freed, reads go on",
                      cp->disk_full_text);
    } else if (rc != 0) {
        errcode_reply(cp_origin_out(cp, &o), ERRCODE_TRYAGAIN,
                      "node %u is handing over or lost leadership (%s); retry", cp->config.id,
                      err_text(rc));
    } else {
        struct cp_wait *w = cp_wait_start(cp, CP_WAIT_PROPOSAL, origin);
        cp_wait_index(cp, w, index);
        w->term = term;
        w->writes = true;
        w->repl = (uint8_t)lm.mode;
        if (lm.leader_keys && cp_spec_enabled(cp)) {
            bool early = lm.mode == KEYSPACE_REPLICATION_LEADER;
            if (cp_spec_proposed(cp, index, ts, origin->proto, list, bytes, &lm, &cp->spec.keys,
                                 early ? &w->request : NULL) &&
                early) {
                w->spec_ready = true;
                cp->spec.awaiting++;
            }
        }
        return;
    }
    cp_reply_remote(cp, &o);
}

static void cp_submit_read(struct cp *cp, const struct cp_origin *origin, const uint8_t *list,
                           size_t bytes) {
    struct cp_wait *w = cp_wait_start(cp, CP_WAIT_READ, origin);
    buf_append(&w->request, list, bytes);
    w->min_applied = cp->spec.acked_index; /* read your leader-mode writes */
    /* ...and what a resumed session saw (a local request's; a forward carries none) */
    uint64_t session = origin->peer == 0 ? cp->submit_session : 0;
    if (session > w->min_applied) w->min_applied = session;
    struct raft_event ev = {.kind = RAFT_EVENT_READ, .read_ctx = w->id};
    struct raft_effects e;
    int rc = cp_raft_step(cp, &ev, &e);
    if (rc != 0) {
        errcode_reply(cp_origin_out(cp, &w->origin), ERRCODE_TRYAGAIN,
                      "node %u cannot serve a linearizable read now (%s); retry", cp->config.id,
                      err_text(rc));
        cp_wait_finish(cp, w);
    }
}

static void cp_forward(struct cp *cp, const struct cp_origin *origin, uint32_t leader, int level,
                       const uint8_t *list, size_t bytes, bool writes) {
    struct cp_wait *w = cp_wait_start(cp, CP_WAIT_FORWARD, origin);
    w->writes = writes;
    w->forwarded_to = leader;
    struct buf msg;
    buf_init(&msg);
    buf_append_byte(&msg, ENGINE_CP);
    buf_append_byte(&msg, CP_PEER_FORWARD);
    buf_append_u64le(&msg, w->id);
    buf_append_byte(&msg, (uint8_t)origin->proto);
    buf_append_byte(&msg, (uint8_t)level);
    buf_append(&msg, list, bytes);
    cp_send(cp, leader, msg.data, msg.len);
    buf_deinit(&msg);
}

/* A resumed session's read served here waits until this node has applied what the session
 * saw, at most session_wait_ms (cp_after_apply serves it, cp_tick times it out). */
static void cp_session_wait(struct cp *cp, const struct cp_origin *origin, const uint8_t *list,
                            size_t bytes, uint64_t index) {
    ASSERT(index > cp->applied);
    struct cp_wait *w = cp_wait_start(cp, CP_WAIT_READ, origin);
    buf_append(&w->request, list, bytes);
    w->session = true;
    w->read_ready = true;
    w->index = index;
    cp->reads_ready++;
    uint64_t wait_ms = cp->config.session_wait_ms != 0 ? cp->config.session_wait_ms
                                                       : ENGINE_SESSION_WAIT_MS_DEFAULT;
    w->deadline_ms = cp->mono_ms + wait_ms;
    if (w->deadline_ms < cp->deadline_min_ms) cp->deadline_min_ms = w->deadline_ms;
    ASSERT(w->kind == CP_WAIT_READ && w->read_ready);
}

/* Leader: a write, once its WATCH conditions (if any) pass: EXEC aborts (a null reply)
 * when a watched key may have changed since its WATCH. */
static void cp_submit_checked(struct cp *cp, const struct cp_origin *origin, const uint8_t *list,
                              size_t bytes) {
    if (!(list[0] & CMDLIST_IF)) {
        cp_submit_write(cp, origin, list, bytes);
        return;
    }
    struct cp_origin o = *origin;
    size_t list_bytes = 0;
    enum cp_watch_verdict v = cp_watch_check(cp, list, bytes, &list_bytes);
    if (v == CP_WATCH_PASS) {
        struct buf plain;
        buf_init(&plain);
        buf_append(&plain, list, list_bytes);
        plain.data[0] &= (uint8_t)~CMDLIST_IF;
        cp_submit_write(cp, origin, plain.data, plain.len);
        buf_deinit(&plain);
        return;
    }
    if (v == CP_WATCH_ABORT) {
        resp_put_null_array(cp_origin_out(cp, &o), o.proto);
    } else {
        resp_put_error(cp_origin_out(cp, &o), "ERR malformed replicated command");
    }
    cp_reply_remote(cp, &o);
}

/* A lease read may be served here now: this leader's lease holds, and its state machine
 * holds every write answered so far and what the session saw. Raft's commit of an entry
 * of this term is not enough: with persist = async, entries are applied only once this
 * node's own writes before them are durable, so a new leader may have committed its
 * predecessors' entries (answered by them) without having applied them yet. Every entry
 * before the term's start was proposed by an earlier leader; later ones are answered here
 * only once applied (or in leader mode, acked_index). */
static bool cp_lease_read_ok(struct cp *cp, uint64_t session) {
    if (raft_role(cp->raft) != RAFT_LEADER || !raft_lease_valid(cp->raft, cp->mono_ms))
        return false;
    uint64_t start = raft_term_start_index(cp->raft);
    return start != 0 && cp->applied >= start && cp->spec.acked_index <= cp->applied &&
           session <= cp->applied;
}

/* Routes one request (a command list) by role and consistency level. */
static void cp_route(struct cp *cp, const struct cp_origin *origin, const uint8_t *list,
                     size_t bytes, int level) {
    bool writes = cp_list_writes(cp, list, bytes);
    enum raft_role role = raft_role(cp->raft);
    uint32_t leader = raft_leader_id(cp->raft);
    struct cp_origin o = *origin;
    if (cp->wait_count >= CP_WAITS_MAX) {
        errcode_reply(cp_origin_out(cp, &o), ERRCODE_BUSY,
                      "node %u has %u requests waiting on Raft already (the limit): retry later",
                      cp->config.id, cp->wait_count);
        cp_reply_remote(cp, &o);
        return;
    }
    /* A forward carries no session: the follower that forwarded it waits itself. A lease
     * read behind the session's index takes the ReadIndex path (which waits for it), so
     * it is never served after the lease it was admitted under has lapsed. */
    uint64_t session = origin->peer == 0 ? cp->submit_session : 0;
    bool stale = !writes && level == KEYSPACE_CONSISTENCY_STALE;
    bool local_read =
        stale || (!writes && level == KEYSPACE_CONSISTENCY_LEASE && cp_lease_read_ok(cp, session));
    if (stale && session > cp->applied) {
        cp_session_wait(cp, origin, list, bytes, session);
    } else if (local_read) {
        uint64_t saved = cp->now_ms;
        cp->now_ms = cp_wall_ms(cp);
        cp_run_commands(cp, cp_origin_out(cp, &o), o.proto, list, bytes, true);
        cp->now_ms = saved;
        cp_reply_remote(cp, &o);
    } else if (role == RAFT_LEADER && writes) {
        cp_submit_checked(cp, origin, list, bytes);
    } else if (role == RAFT_LEADER) {
        cp_submit_read(cp, origin, list, bytes);
    } else if (leader != 0 && leader != cp->config.id && origin->peer == 0) {
        cp_forward(cp, origin, leader, level, list, bytes, writes);
    } else if (origin->peer != 0) {
        errcode_reply(cp_origin_out(cp, &o), ERRCODE_TRYAGAIN,
                      "node %u is no longer the leader; retry", cp->config.id);
        cp_reply_remote(cp, &o);
    } else {
        cp_reply_noquorum(cp, cp_origin_out(cp, &o));
    }
}

/* The read level of one command: the one asked for, else its key's keyspace's. */
static int cp_level(struct cp *cp, int asked, const struct cmd_spec *spec, uint32_t argc,
                    const struct resp_arg *argv) {
    if (asked != 0) return asked;
    if (spec == NULL || spec->key_first <= 0 || (uint32_t)spec->key_first >= argc) {
        return cp->config.keyspace_count > 0 ? (int)cp->config.keyspaces[0].consistency
                                             : KEYSPACE_CONSISTENCY_LINEARIZABLE;
    }
    const struct resp_arg *key = &argv[spec->key_first];
    const struct keyspace *ks =
        keyspace_find(cp->config.keyspaces, cp->config.keyspace_count, key->data, key->bytes);
    if (ks != NULL) return (int)ks->consistency;
    return KEYSPACE_CONSISTENCY_LINEARIZABLE;
}

/* WATCH's read level: the weakest of its keys'. A later read of any of them, even one
 * served by this node's own replica, then observes at least the state WATCH recorded. */
static int cp_watch_level(struct cp *cp, int asked, const uint8_t *list, size_t bytes) {
    if (asked != 0) return asked;
    size_t pos = CMDLIST_HEADER_BYTES;
    uint32_t argc = 0;
    if (!cmdlist_next(list, bytes, &pos, &cp->args, &argc)) return KEYSPACE_CONSISTENCY_STALE;
    const struct resp_arg *argv = (const struct resp_arg *)cp->args.data;
    const struct cmd_spec *spec = cmd_lookup(argv[0].data, argv[0].bytes);
    int level = KEYSPACE_CONSISTENCY_LINEARIZABLE;
    for (uint32_t i = 1; i < argc; i++) {
        struct resp_arg pair[2] = {argv[0], argv[i]};
        int key_level = cp_level(cp, 0, spec, 2, pair);
        if (key_level > level) level = key_level; /* STALE > LEASE > LINEARIZABLE */
    }
    ASSERT(level >= KEYSPACE_CONSISTENCY_LINEARIZABLE && level <= KEYSPACE_CONSISTENCY_STALE);
    return level;
}

/* A pipeline's level: the strongest of its commands' (reads of every keyspace in it are
 * then served at least as their own keyspace asks). */
static int cp_pipeline_level(struct cp *cp, int asked, const uint8_t *list, size_t bytes) {
    if (asked != 0) return asked;
    uint32_t count = base_load_u32le(list + 1);
    size_t pos = CMDLIST_HEADER_BYTES;
    int level = KEYSPACE_CONSISTENCY_STALE;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t argc = 0;
        if (!cmdlist_next(list, bytes, &pos, &cp->args, &argc)) break;
        const struct resp_arg *argv = (const struct resp_arg *)cp->args.data;
        int l = cp_level(cp, 0, cmd_lookup(argv[0].data, argv[0].bytes), argc, argv);
        if (l < level) level = l; /* LINEARIZABLE < LEASE < STALE */
    }
    return level;
}

/* The level a data request is served at: a transaction's is the one asked for, else
 * linearizable; a WATCH's the weakest of its keys'; a command's its key's keyspace's; a
 * pipeline's the strongest of its commands'. */
static int cp_request_level(struct cp *cp, const struct engine_request *req) {
    ASSERT(req->bytes >= CMDLIST_HEADER_BYTES);
    if (req->list[0] & CMDLIST_WATCH) return cp_watch_level(cp, req->level, req->list, req->bytes);
    if (req->list[0] & CMDLIST_EXEC)
        return req->level != 0 ? req->level : KEYSPACE_CONSISTENCY_LINEARIZABLE;
    if (req->spec == NULL) return cp_pipeline_level(cp, req->level, req->list, req->bytes);
    return cp_level(cp, req->level, req->spec, req->argc, req->argv);
}

static void cp_admin(struct cp *cp, struct cp_origin *o, const struct engine_request *req) {
    const struct resp_arg *name = &req->argv[0];
    if (cmd_arg_is(name, "cluster")) {
        cp_command(cp, o, req->argc, req->argv);
    } else if (cmd_arg_is(name, "wait")) {
        cp_wait_command(cp, o, req->last_write, req->argc, req->argv);
    } else if (cmd_arg_is(name, "save") || cmd_arg_is(name, "bgsave")) {
        cp_save_command(cp, o, cmd_arg_is(name, "bgsave"));
    } else {
        resp_put_errorf(o->out, "ERR the cp engine has no command '%.*s'",
                        (int)(name->bytes > 64 ? 64 : name->bytes), (const char *)name->data);
    }
}

void cp_submit(struct cp *cp, const struct engine_request *req, struct buf *out,
               struct engine_answer *answer) {
    ASSERT(req->id != 0 && cp->submit_out == NULL);
    memset(answer, 0, sizeof(*answer));
    buf_clear(&cp->replies);
    cp->submit_id = req->id;
    cp->submit_out = out;
    cp->submit_waits = false;
    cp->submit_answered = false;
    cp->submit_token = 0;
    cp->submit_observed = 0;
    cp->submit_session = req->session_index;
    struct cp_origin o = {.request_id = req->id, .proto = req->proto, .out = out};
    if (req->kind == ENGINE_REQUEST_ADMIN) {
        cp_admin(cp, &o, req);
    } else if (req->list == NULL) {
        /* One command, parsed: as a list it travels in entries and forwards. */
        ASSERT(req->spec != NULL);
        buf_clear(&cp->list);
        cmdlist_begin(&cp->list, 0, 1);
        cmdlist_add(&cp->list, req->argc, req->argv);
        struct engine_request one = *req;
        one.list = cp->list.data;
        one.bytes = cp->list.len;
        cp_route(cp, &o, one.list, one.bytes, cp_request_level(cp, &one));
    } else {
        cp_route(cp, &o, req->list, req->bytes, cp_request_level(cp, req));
    }
    answer->pending = cp->submit_waits && !cp->submit_answered;
    if (cp->submit_answered) answer->write_token = cp->submit_token;
    if (!answer->pending)
        answer->observed_index = cp->submit_answered ? cp->submit_observed : cp->applied;
    cp->submit_id = 0;
    cp->submit_session = 0;
    cp->submit_out = NULL;
    cp_take_replies(cp, &answer->replies, &answer->reply_count);
}

/* A peer's client request, on (what the peer believes is) the leader. */
void cp_forward_request(struct cp *cp, uint32_t from, const uint8_t *data, size_t bytes) {
    if (bytes < 10 + 5) return;
    struct cp_origin o = {
        .peer = from, .request = base_load_u64le(data), .proto = data[8] == 3 ? 3 : 2};
    int level = data[9];
    if (level < KEYSPACE_CONSISTENCY_LINEARIZABLE || level > KEYSPACE_CONSISTENCY_STALE) return;
    buf_clear(&cp->fwd_reply);
    cp_route(cp, &o, data + 10, bytes - 10, level);
}

void cp_forward_reply(struct cp *cp, const uint8_t *data, size_t bytes) {
    if (bytes < 16) return;
    struct cp_wait *w = cp_wait_find(cp, base_load_u64le(data), CP_WAIT_FORWARD);
    if (w == NULL) return; /* answered (timed out) already */
    w->observed = base_load_u64le(data + 8);
    buf_append(cp_origin_out(cp, &w->origin), data + 16, bytes - 16);
    cp_wait_finish(cp, w);
}

static void cp_serve_read(struct cp *cp, struct cp_wait *w) {
    uint64_t saved = cp->now_ms;
    cp->now_ms = cp_wall_ms(cp);
    cp_run_commands(cp, cp_origin_out(cp, &w->origin), w->origin.proto, w->request.data,
                    w->request.len, true);
    cp->now_ms = saved;
    cp_wait_finish(cp, w);
}

void cp_read_ready(struct cp *cp, uint64_t ctx, uint64_t index, bool failed) {
    struct cp_wait *w = cp_wait_find(cp, ctx, CP_WAIT_READ);
    if (w != NULL) {
        if (failed) {
            errcode_reply(cp_origin_out(cp, &w->origin), ERRCODE_TRYAGAIN,
                          "node %u lost leadership before it could confirm the read; retry",
                          cp->config.id);
            cp_wait_finish(cp, w);
        } else if (index <= cp->applied && w->min_applied <= cp->applied) {
            cp_serve_read(cp, w);
        } else {
            if (!w->read_ready) cp->reads_ready++;
            w->read_ready = true;
            w->index = index;
        }
    }
}

void cp_after_apply(struct cp *cp) {
    if (cp->reads_ready == 0) return;
    struct cp_wait *w = cp->waits;
    while (w != NULL) {
        struct cp_wait *next = w->next;
        if (w->kind == CP_WAIT_READ && w->read_ready && w->index <= cp->applied &&
            w->min_applied <= cp->applied) {
            cp_serve_read(cp, w);
        }
        w = next;
    }
}
