/*
 * Requests this node coordinates (docs/engines.md, "Requests"). A node that is one of the
 * key's n replicas runs the command on its own replica, sends the new state to the others
 * (or, for one it cannot reach and with hinted handoff on, a hint to the next reachable
 * node of the key's walk) and answers once w acknowledged, its own counting once its log
 * holds the write. A read asks every reachable replica, answers once r replied (merged),
 * and sends the merged state to a replica that answered less (read repair). A node that is
 * not a replica forwards the command to the first reachable one and relays its reply.
 * Fewer reachable than w (or r): -NOQUORUM, nothing written. No answer in time: -TIMEOUT.
 *
 * A pending request is found by the low 16 bits of its message id (O(1)); the rest of the
 * id is a generation, so a late answer to a freed slot matches nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "ap/internal.h"
#include "base/assert.h"
#include "proto/errcode.h"

#define AP_SLOT_BITS 16
#define AP_SLOT_MASK ((1u << AP_SLOT_BITS) - 1)

struct keyspace ap_keyspace_of(const struct ap *ap, const uint8_t *key, size_t bytes) {
    const struct keyspace *ks =
        keyspace_find(ap->config.keyspaces, ap->config.keyspace_count, key, bytes);
    struct keyspace none = {.mode = KEYSPACE_MODE_AP};
    return keyspace_ap_of(ks != NULL ? ks : &none);
}

static enum ap_conflict ap_conflict_of(enum keyspace_conflict c) {
    switch (c) {
    case KEYSPACE_CONFLICT_LWW_WALLCLOCK:
        return AP_CONFLICT_LWW_WALLCLOCK;
    case KEYSPACE_CONFLICT_SIBLINGS:
        return AP_CONFLICT_SIBLINGS;
    case KEYSPACE_CONFLICT_CRDT:
        return AP_CONFLICT_CRDT;
    default:
        return AP_CONFLICT_LWW;
    }
}

/* ---- pending requests ---- */

static struct ap_pending *ap_pending_new(struct ap *ap, enum ap_pending_kind kind) {
    if (ap->pending_count == AP_PENDING_MAX) return NULL;
    uint32_t slot = 0;
    while (slot < ap->pending_cap && ap->pending[slot].used) slot++;
    if (slot == ap->pending_cap) {
        uint32_t cap = ap->pending_cap < 64 ? 64 : ap->pending_cap * 2;
        if (cap > AP_PENDING_MAX) cap = AP_PENDING_MAX;
        ap->pending = base_realloc(ap->pending, cap * sizeof(*ap->pending));
        memset(ap->pending + ap->pending_cap, 0, (cap - ap->pending_cap) * sizeof(*ap->pending));
        ap->pending_cap = cap;
    }
    struct ap_pending *p = &ap->pending[slot];
    memset(p, 0, sizeof(*p));
    p->used = true;
    p->kind = kind;
    p->req = (++ap->pending_generation << AP_SLOT_BITS) | slot;
    p->deadline_ms = ap->store.mono_ms + AP_REQUEST_TIMEOUT_MS;
    buf_init(&p->reply);
    buf_init(&p->command);
    buf_init(&p->key);
    ap_object_init(&p->merged);
    ap->pending_count++;
    return p;
}

static struct ap_pending *ap_pending_find(struct ap *ap, uint64_t req) {
    uint32_t slot = (uint32_t)(req & AP_SLOT_MASK);
    if (slot >= ap->pending_cap) return NULL;
    struct ap_pending *p = &ap->pending[slot];
    return p->used && p->req == req ? p : NULL;
}

static void ap_pending_free(struct ap *ap, struct ap_pending *p) {
    ASSERT(p->used && ap->pending_count > 0);
    buf_deinit(&p->reply);
    buf_deinit(&p->command);
    buf_deinit(&p->key);
    ap_object_deinit(&p->merged);
    p->used = false;
    ap->pending_count--;
}

void ap_coord_close(struct ap *ap) {
    for (uint32_t i = 0; i < ap->pending_cap; i++)
        if (ap->pending[i].used) ap_pending_free(ap, &ap->pending[i]);
    free(ap->pending);
    ap->pending = NULL;
    ap->pending_cap = 0;
}

/* Answers a pending request's origin: its client (given later) or the peer that forwarded
 * it (after lsn is durable, when the answer reports a write). */
static void ap_answer(struct ap *ap, const struct ap_pending *p, const struct buf *reply,
                      uint64_t lsn) {
    if (p->client != 0) {
        ap_reply(ap, p->client, reply->data, reply->len);
        return;
    }
    struct ap_msg m = {.kind = AP_MSG_FORWARD_REPLY, .req = p->origin_req};
    m.reply = (struct ap_bytes){reply->data, reply->len};
    ap_send_after(ap, p->origin, lsn, &m);
}

/* ---- coordinating ---- */

/* Who coordinates: the key's replicas (out[0..n)) and fallbacks, in walk order. */
struct ap_plan {
    uint32_t walk[NODE_PEERS_MAX];
    uint32_t count; /* members */
    uint32_t n;     /* replicas: walk[0..n) */
    bool self_replica;
    struct keyspace ks;
};

static void ap_plan(struct ap *ap, const struct resp_arg *key, struct ap_plan *pl) {
    pl->ks = ap_keyspace_of(ap, key->data, key->bytes);
    pl->count = ap_ring_walk(&ap->ring, ap_ring_key_hash(key->data, key->bytes), pl->walk);
    pl->n = pl->ks.n < pl->count ? pl->ks.n : pl->count;
    pl->self_replica = false;
    for (uint32_t i = 0; i < pl->n; i++) pl->self_replica |= pl->walk[i] == ap->config.id;
}

static void ap_noquorum(struct ap *ap, struct buf *out, const struct ap_plan *pl, uint32_t need,
                        uint32_t have) {
    ap->stats.noquorum++;
    errcode_reply(out, ERRCODE_NOQUORUM,
                  "%u of the key's %u replicas are needed and %u are reachable from node %u "
                  "(keyspace %s): nothing was written",
                  need, pl->n, have, ap->config.id, pl->ks.name);
}

static uint32_t ap_reachable_replicas(const struct ap *ap, const struct ap_plan *pl) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < pl->n; i++) n += ap_reachable(ap, pl->walk[i]);
    return n;
}

/* The next reachable fallback after *next in the walk (for a hint), or 0. */
static uint32_t ap_next_fallback(const struct ap *ap, const struct ap_plan *pl, uint32_t *next) {
    while (*next < pl->count) {
        uint32_t node = pl->walk[(*next)++];
        if (node != ap->config.id && ap_reachable(ap, node)) return node;
    }
    return 0;
}

/* Sends the new state to every other replica: directly, or as a hint to a fallback.
 * Returns how many acknowledgements can come. */
static uint32_t ap_replicate(struct ap *ap, const struct ap_plan *pl, const struct resp_arg *key,
                             const struct buf *state, uint64_t req) {
    uint32_t sent = 0, fallback_at = pl->n;
    for (uint32_t i = 0; i < pl->n; i++) {
        uint32_t node = pl->walk[i];
        if (node == ap->config.id) continue;
        struct ap_msg m = {.kind = AP_MSG_PUT, .req = req, .flags = AP_PUT_ACK_WANTED};
        m.key = (struct ap_bytes){key->data, key->bytes};
        m.object = (struct ap_bytes){state->data, state->len};
        uint32_t to = node;
        if (!ap_reachable(ap, node)) {
            if (pl->ks.handoff != KEYSPACE_HANDOFF_ON) continue;
            to = ap_next_fallback(ap, pl, &fallback_at);
            if (to == 0) continue;
            m.flags |= AP_PUT_HINT;
            m.hint_for = node;
        }
        ap_send(ap, to, &m);
        sent++;
    }
    return sent;
}

static void ap_run_cmd(struct ap *ap, const struct ap_plan *pl, struct ap_object *o, uint32_t argc,
                       const struct resp_arg *argv, int proto, struct buf *out,
                       struct ap_cmd_result *res) {
    struct ap_cmd_ctx ctx = {
        .conflict = ap_conflict_of(pl->ks.conflict),
        .grow_only = pl->ks.counter == KEYSPACE_COUNTER_G,
        .actor = ap->actor,
        .ts = ap_write_ts(ap, &pl->ks),
        .now_ms = ap->store.now_ms,
        .proto = proto,
        .string_bytes_max = ap->config.string_bytes_max,
    };
    ap_cmd_run(&ctx, o, argc, argv, out, res);
    if (res->siblings > MVREG_SIBLINGS_WARN) ap->stats.siblings_over_warning++;
}

/* Where a request comes from and goes back to. */
struct ap_origin {
    uint64_t client; /* the node's request id, or 0 */
    uint32_t peer;   /* or the peer that forwarded it */
    uint64_t peer_req;
    int proto;
    int level;
};

/* A write on this replica. Returns true when answered in out (at once). */
static bool ap_write(struct ap *ap, const struct ap_plan *pl, const struct ap_origin *from,
                     uint32_t argc, const struct resp_arg *argv, struct buf *out,
                     uint64_t *lsn_out) {
    uint32_t need = keyspace_quorum_count(pl->ks.w, pl->n);
    uint32_t have = ap_reachable_replicas(ap, pl);
    if (pl->ks.handoff == KEYSPACE_HANDOFF_ON) {
        uint32_t spare = pl->n - have, next = pl->n;
        while (spare > 0 && ap_next_fallback(ap, pl, &next) != 0) {
            have++;
            spare--;
        }
    }
    if (have < need) {
        ap_noquorum(ap, out, pl, need, have);
        return true;
    }
    struct ap_object o;
    ap_object_init(&o);
    (void)ap_store_load(ap, argv[1].data, argv[1].bytes, &o);
    /* Where this reply starts, counted from the unread bytes: an append may move them to
     * the front of the buffer (buf_reserve reclaims the consumed prefix). */
    size_t mark = buf_pending(out);
    struct ap_cmd_result res;
    ap_run_cmd(ap, pl, &o, argc, argv, from->proto, out, &res);
    bool answered = true;
    if (res.wrote) {
        ap->stats.writes++;
        uint64_t lsn = ap_store_save(ap, argv[1].data, argv[1].bytes, &o);
        struct ap_pending *p = lsn == 0 || need == 1 ? NULL : ap_pending_new(ap, AP_PENDING_WRITE);
        if (lsn == 0) {
            out->len = out->read_pos + mark;
            errcode_reply(out, ERRCODE_DISKFULL, "%s; AP writes are refused until space is freed",
                          ap->store.disk_full_text);
        } else if (need > 1 && p == NULL) {
            out->len = out->read_pos + mark;
            errcode_reply(out, ERRCODE_BUSY, "%u AP requests are in flight at node %u",
                          AP_PENDING_MAX, ap->config.id);
        } else {
            uint64_t req = p != NULL ? p->req : 0;
            (void)ap_replicate(ap, pl, &argv[1], &ap->encode, req);
            *lsn_out = lsn;
            if (p != NULL) {
                p->client = from->client;
                p->origin = from->peer;
                p->origin_req = from->peer_req;
                p->need = need;
                p->self_lsn = lsn;
                buf_append(&p->reply, buf_head(out) + mark, buf_pending(out) - mark);
                out->len = out->read_pos + mark;
                answered = false;
            }
        }
    }
    ap_object_deinit(&o);
    return answered;
}

/* Keeps a command's arguments in a pending read (argc u32, then len u32 and bytes each). */
static void ap_keep_command(struct buf *b, uint32_t argc, const struct resp_arg *argv) {
    buf_append_u32le(b, argc);
    for (uint32_t i = 0; i < argc; i++) {
        buf_append_u32le(b, (uint32_t)argv[i].bytes);
        buf_append(b, argv[i].data, argv[i].bytes);
    }
}

static uint32_t ap_command_args(const struct buf *b, struct resp_arg *argv, uint32_t max) {
    uint32_t argc = base_load_u32le(b->data);
    ASSERT(argc <= max);
    size_t pos = 4;
    for (uint32_t i = 0; i < argc; i++) {
        argv[i].bytes = base_load_u32le(b->data + pos);
        argv[i].data = b->data + pos + 4;
        pos += 4 + argv[i].bytes;
    }
    return argc;
}

/* Asks the other reachable replicas for their object (for the answer, or only to repair). */
static void ap_read_ask(struct ap *ap, const struct ap_plan *pl, struct ap_pending *p,
                        const struct resp_arg *key) {
    for (uint32_t i = 0; i < pl->n; i++) {
        uint32_t node = pl->walk[i];
        if (node == ap->config.id || !ap_reachable(ap, node)) continue;
        struct ap_msg m = {.kind = AP_MSG_GET, .req = p->req};
        m.key = (struct ap_bytes){key->data, key->bytes};
        ap_send(ap, node, &m);
        p->answered_digest[p->asked_count] = 0;
        p->asked[p->asked_count++] = node;
    }
}

/* A read on this replica: its own object now, the others' asked for. True when answered. */
static bool ap_read(struct ap *ap, const struct ap_plan *pl, const struct ap_origin *from,
                    uint32_t argc, const struct resp_arg *argv, struct buf *out) {
    ap->stats.reads++;
    uint32_t need = keyspace_quorum_count(pl->ks.r, pl->n);
    bool stale = from->level == KEYSPACE_CONSISTENCY_STALE;
    uint32_t have = ap_reachable_replicas(ap, pl);
    if (!stale && have < need) {
        ap_noquorum(ap, out, pl, need, have);
        return true;
    }
    struct ap_object o;
    ap_object_init(&o);
    (void)ap_store_load(ap, argv[1].data, argv[1].bytes, &o);
    /* CONSISTENCY stale, or r = one: this replica answers; the others are asked only to
     * repair (not for stale, which starts no repair). */
    struct ap_pending *p = stale || have < 2 ? NULL : ap_pending_new(ap, AP_PENDING_READ);
    bool now = stale || need == 1 || p == NULL;
    if (now) {
        struct ap_cmd_result res;
        ap_run_cmd(ap, pl, &o, argc, argv, from->proto, out, &res);
    }
    if (p != NULL) {
        ap_object_merge(&p->merged, &o);
        p->need = now ? 0 : need;
        p->got = 1;
        p->client = now ? 0 : from->client;
        p->origin = now ? 0 : from->peer;
        p->origin_req = from->peer_req;
        p->proto = from->proto;
        p->ks = pl->ks;
        buf_append(&p->key, argv[1].data, argv[1].bytes);
        if (!now) ap_keep_command(&p->command, argc, argv);
        ap_read_ask(ap, pl, p, &argv[1]);
    }
    ap_object_deinit(&o);
    return now;
}

/* Not a replica: the command goes to the first reachable replica. True when answered. */
static bool ap_forward(struct ap *ap, const struct ap_plan *pl, const struct ap_origin *from,
                       uint32_t argc, const struct resp_arg *argv, struct buf *out) {
    uint32_t to = 0;
    for (uint32_t i = 0; i < pl->n && to == 0; i++)
        if (ap_reachable(ap, pl->walk[i])) to = pl->walk[i];
    if (to == 0) {
        ap_noquorum(ap, out, pl, 1, 0);
        return true;
    }
    struct ap_pending *p = ap_pending_new(ap, AP_PENDING_FORWARD);
    if (p == NULL) {
        errcode_reply(out, ERRCODE_BUSY, "%u AP requests are in flight at node %u", AP_PENDING_MAX,
                      ap->config.id);
        return true;
    }
    ap->stats.forwards++;
    p->client = from->client;
    struct ap_msg m = {.kind = AP_MSG_FORWARD, .req = p->req, .count = argc};
    m.proto = (uint8_t)from->proto;
    m.level = (uint8_t)from->level;
    m.args = (struct resp_arg *)(uintptr_t)argv;
    ap_send(ap, to, &m);
    return false;
}

/* One command from a client of this node or from a peer. True when answered in out. */
static bool ap_coordinate(struct ap *ap, const struct ap_origin *from, uint32_t argc,
                          const struct resp_arg *argv, struct buf *out, uint64_t *lsn) {
    bool writes = false;
    if (argc < 2 || !ap_cmd_known(argv[0].data, argv[0].bytes, &writes)) {
        struct ap_cmd_result res; /* ap_cmd_run says what is not served, and why */
        struct ap_object none;
        ap_object_init(&none);
        struct ap_cmd_ctx ctx = {.ts = 1, .proto = from->proto};
        ap_cmd_run(&ctx, &none, argc, argv, out, &res);
        ap_object_deinit(&none);
        return true;
    }
    struct ap_plan pl;
    ap_plan(ap, &argv[1], &pl);
    bool stale_read = !writes && from->level == KEYSPACE_CONSISTENCY_STALE;
    if (!pl.self_replica && !stale_read && from->peer == 0)
        return ap_forward(ap, &pl, from, argc, argv, out);
    if (writes) return ap_write(ap, &pl, from, argc, argv, out, lsn);
    return ap_read(ap, &pl, from, argc, argv, out);
}

void ap_submit(struct ap *ap, const struct engine_request *req, struct buf *out,
               struct engine_answer *answer) {
    if (req->kind != ENGINE_REQUEST_DATA || req->spec == NULL) {
        resp_put_error(out, "ERR MULTI/EXEC, WATCH and pipelined transactions on AP keys need a "
                            "CP keyspace (mode = cp)");
        return;
    }
    struct ap_origin from = {.client = req->id, .proto = req->proto, .level = req->level};
    uint64_t lsn = 0;
    answer->pending = !ap_coordinate(ap, &from, req->argc, req->argv, out, &lsn);
    answer->write_token = lsn;
}

void ap_coord_forwarded(struct ap *ap, uint32_t from, const struct ap_msg *m) {
    struct ap_origin o = {.peer = from, .peer_req = m->req, .proto = m->proto, .level = m->level};
    struct buf out;
    buf_init(&out);
    uint64_t lsn = 0;
    if (ap_coordinate(ap, &o, m->count, m->args, &out, &lsn)) {
        struct ap_msg reply = {.kind = AP_MSG_FORWARD_REPLY, .req = m->req};
        reply.reply = (struct ap_bytes){out.data, out.len};
        ap_send_after(ap, from, lsn, &reply);
    }
    buf_deinit(&out);
}

/* ---- answers from replicas ---- */

/* Sends the merged object to every asked replica that answered something else, and keeps
 * it here too (read repair), then frees the read. */
static void ap_read_repair(struct ap *ap, struct ap_pending *p) {
    buf_clear(&ap->encode);
    ap_object_encode(&p->merged, &ap->encode);
    uint64_t digest = ap_tree_digest(ap->encode.data, ap->encode.len);
    bool repaired = false;
    for (uint32_t i = 0; i < p->asked_count; i++) {
        uint64_t d = p->answered_digest[i];
        if (d == 0 || d == digest) continue; /* no answer, or the same */
        struct ap_msg m = {.kind = AP_MSG_PUT};
        m.key = (struct ap_bytes){p->key.data, p->key.len};
        m.object = (struct ap_bytes){ap->encode.data, ap->encode.len};
        ap_send(ap, p->asked[i], &m);
        repaired = true;
    }
    struct ap_object mine;
    ap_object_init(&mine);
    (void)ap_store_load(ap, p->key.data, p->key.len, &mine);
    ap_object_merge(&mine, &p->merged);
    struct buf *enc = &ap->encode;
    buf_clear(enc);
    ap_object_encode(&mine, enc);
    if (ap_tree_digest(enc->data, enc->len) != digest || repaired) {
        struct db_entry *e = db_find(ap->store.db, p->key.data, p->key.len);
        size_t n = 0;
        const uint8_t *v =
            e != NULL && db_entry_type(e) == VALUE_STRING ? db_entry_string(e, &n) : NULL;
        bool same = v != NULL && n == enc->len && memcmp(v, enc->data, n) == 0;
        if (!same) (void)ap_store_save(ap, p->key.data, p->key.len, &mine);
    }
    if (repaired) ap->stats.read_repairs++;
    ap_object_deinit(&mine);
    ap_pending_free(ap, p);
}

/* Runs the kept command on what the replies merged, and answers. */
static void ap_read_answer(struct ap *ap, struct ap_pending *p) {
    struct resp_arg argv[AP_MSG_ARGS_MAX];
    uint32_t argc = ap_command_args(&p->command, argv, AP_MSG_ARGS_MAX);
    struct ap_plan pl;
    ap_plan(ap, &argv[1], &pl);
    struct buf out;
    buf_init(&out);
    struct ap_object copy;
    ap_object_init(&copy);
    ap_object_merge(&copy, &p->merged); /* a read never changes it, but runs on a copy */
    struct ap_cmd_result res;
    ap_run_cmd(ap, &pl, &copy, argc, argv, p->proto, &out, &res);
    ap_answer(ap, p, &out, 0);
    p->need = 0;
    ap_object_deinit(&copy);
    buf_deinit(&out);
}

static void ap_get_reply(struct ap *ap, uint32_t from, struct ap_pending *p,
                         const struct ap_msg *m) {
    uint32_t i = 0;
    while (i < p->asked_count && p->asked[i] != from) i++;
    if (i == p->asked_count || p->answered_digest[i] != 0) return; /* not asked, or twice */
    p->answered_digest[i] = 1;                                     /* no object */
    if (m->status == AP_STATUS_OK) {
        struct ap_object o;
        ap_object_init(&o);
        if (ap_object_decode(m->object.data, m->object.bytes, &o) == 0) {
            ap_object_merge(&p->merged, &o);
            p->answered_digest[i] = ap_tree_digest(m->object.data, m->object.bytes);
        }
        ap_object_deinit(&o);
    }
    p->got++;
    if (p->need > 0 && p->got >= p->need) ap_read_answer(ap, p);
    if (p->got == p->asked_count + 1) ap_read_repair(ap, p);
}

static void ap_write_done_if(struct ap *ap, struct ap_pending *p) {
    if (!p->self_counted && logdb_durable_lsn(&ap->store) >= p->self_lsn) {
        p->self_counted = true;
        p->got++;
    }
    if (p->got < p->need) return;
    ap_answer(ap, p, &p->reply, p->self_lsn);
    ap_pending_free(ap, p);
}

static struct ap_peer *ap_coord_peer(struct ap *ap, uint32_t id) {
    for (uint32_t i = 0; i < ap->peer_count; i++)
        if (ap->peers[i].id == id) return &ap->peers[i];
    return NULL;
}

static void ap_hint_done(struct ap *ap, struct ap_pending *p) {
    struct ap_peer *peer = ap_coord_peer(ap, p->target);
    if (peer != NULL && peer->hints_inflight > 0) peer->hints_inflight--;
    ap_pending_free(ap, p);
}

struct ap_hint_batch {
    struct ap *ap;
    struct ap_peer *peer;
};

/* Hands one hint over: a PUT to the replica it was held for, acknowledged by digest. */
static void ap_hand_one(void *ctx, const struct ap_hint *hint) {
    struct ap_hint_batch *b = ctx;
    struct ap *ap = b->ap;
    if (b->peer->hints_inflight >= AP_HINTS_INFLIGHT_MAX) return; /* the next scan gets it */
    struct ap_pending *p = ap_pending_new(ap, AP_PENDING_HINT);
    if (p == NULL) return;
    p->target = hint->target;
    p->digest = hint->digest;
    buf_append(&p->key, hint->data, hint->key_bytes);
    struct ap_msg m = {.kind = AP_MSG_PUT, .req = p->req, .flags = AP_PUT_ACK_WANTED};
    m.key = (struct ap_bytes){hint->data, hint->key_bytes};
    m.object = (struct ap_bytes){hint->data + hint->key_bytes, hint->object_bytes};
    ap_send(ap, hint->target, &m);
    b->peer->hints_inflight++;
}

void ap_coord_hand_hints(struct ap *ap) {
    if (ap_hints_count(&ap->hints) == 0) return;
    for (uint32_t i = 0; i < ap->peer_count; i++) {
        struct ap_peer *peer = &ap->peers[i];
        if (!ap_reachable(ap, peer->id) || peer->hints_inflight >= AP_HINTS_INFLIGHT_MAX) continue;
        struct ap_hint_batch b = {ap, peer};
        /* A few cursor positions a tick: the window bounds what is in flight. */
        for (int k = 0; k < 16 && peer->hints_inflight < AP_HINTS_INFLIGHT_MAX; k++) {
            peer->hint_cursor =
                ap_hints_scan(&ap->hints, peer->id, peer->hint_cursor, ap_hand_one, &b);
            if (peer->hint_cursor == 0) break;
        }
    }
}

void ap_coord_message(struct ap *ap, uint32_t from, const struct ap_msg *m) {
    struct ap_pending *p = ap_pending_find(ap, m->req);
    if (p == NULL) return; /* answered, timed out, or not ours */
    if (m->kind == AP_MSG_PUT_ACK && p->kind == AP_PENDING_WRITE) {
        if (m->status == AP_STATUS_OK) p->got++;
        ap_write_done_if(ap, p);
    } else if (m->kind == AP_MSG_GET_REPLY && p->kind == AP_PENDING_READ) {
        ap_get_reply(ap, from, p, m);
    } else if (m->kind == AP_MSG_PUT_ACK && p->kind == AP_PENDING_HINT) {
        if (m->status == AP_STATUS_OK &&
            ap_hints_delivered(&ap->hints, p->target, p->key.data, p->key.len, p->digest))
            ap->stats.hints_handed++;
        ap_hint_done(ap, p);
    } else if (m->kind == AP_MSG_FORWARD_REPLY && p->kind == AP_PENDING_FORWARD) {
        ap_reply(ap, p->client, m->reply.data, m->reply.bytes);
        ap_pending_free(ap, p);
    }
}

static void ap_timed_out(struct ap *ap, struct ap_pending *p) {
    ap->stats.timeouts++;
    struct buf out;
    buf_init(&out);
    if (p->kind == AP_PENDING_WRITE || p->kind == AP_PENDING_FORWARD)
        errcode_reply(&out, ERRCODE_TIMEOUT,
                      "the write was sent but %u of %u acknowledgements came in %u ms: it may "
                      "still appear",
                      p->got, p->need, (unsigned)AP_REQUEST_TIMEOUT_MS);
    else
        errcode_reply(&out, ERRCODE_TIMEOUT, "%u of %u replicas answered the read in %u ms", p->got,
                      p->need, (unsigned)AP_REQUEST_TIMEOUT_MS);
    if (p->kind == AP_PENDING_FORWARD)
        ap_reply(ap, p->client, out.data, out.len);
    else
        ap_answer(ap, p, &out, 0);
    buf_deinit(&out);
}

void ap_coord_progress(struct ap *ap) {
    for (uint32_t i = 0; i < ap->pending_cap; i++) {
        struct ap_pending *p = &ap->pending[i];
        if (!p->used) continue;
        if (p->kind == AP_PENDING_WRITE) {
            ap_write_done_if(ap, p);
            if (!p->used) continue;
        }
        if (ap->store.mono_ms < p->deadline_ms) continue;
        if (p->kind == AP_PENDING_READ && p->need == 0) {
            ap_read_repair(ap, p); /* answered already: repair with what came */
            continue;
        }
        if (p->kind == AP_PENDING_HINT) {
            ap_hint_done(ap, p); /* the hint stays: the next scan hands it again */
            continue;
        }
        ap_timed_out(ap, p);
        if (p->kind == AP_PENDING_READ)
            ap_read_repair(ap, p);
        else
            ap_pending_free(ap, p);
    }
}
