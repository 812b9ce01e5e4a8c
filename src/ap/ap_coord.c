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
#include "engine/cmdlist.h"
#include "engine/seen.h"
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

void ap_list_push(struct ap *ap, struct ap_pending *p, int which) {
    struct ap_list *l = &ap->lists[which];
    struct ap_link *k = &p->links[which];
    uint32_t slot = (uint32_t)(p - ap->pending);
    ASSERT(!k->linked);
    *k = (struct ap_link){.prev = l->tail, .next = AP_SLOT_NONE, .linked = true};
    if (l->tail != AP_SLOT_NONE)
        ap->pending[l->tail].links[which].next = slot;
    else
        l->head = slot;
    l->tail = slot;
}

void ap_list_unlink(struct ap *ap, struct ap_pending *p, int which) {
    struct ap_list *l = &ap->lists[which];
    struct ap_link *k = &p->links[which];
    if (!k->linked) return;
    if (k->prev != AP_SLOT_NONE)
        ap->pending[k->prev].links[which].next = k->next;
    else
        l->head = k->next;
    if (k->next != AP_SLOT_NONE)
        ap->pending[k->next].links[which].prev = k->prev;
    else
        l->tail = k->prev;
    k->linked = false;
}

struct ap_pending *ap_list_head(struct ap *ap, int which) {
    uint32_t slot = ap->lists[which].head;
    return slot == AP_SLOT_NONE ? NULL : &ap->pending[slot];
}

void ap_coord_init(struct ap *ap) {
    for (int i = 0; i < AP_LISTS; i++) ap->lists[i] = (struct ap_list){AP_SLOT_NONE, AP_SLOT_NONE};
}

struct ap_pending *ap_pending_new(struct ap *ap, enum ap_pending_kind kind) {
    if (ap->pending_count == AP_PENDING_MAX) return NULL;
    if (ap->pending_free_count == 0) { /* every slot used: twice as many */
        uint32_t cap = ap->pending_cap < 64 ? 64 : ap->pending_cap * 2;
        if (cap > AP_PENDING_MAX) cap = AP_PENDING_MAX;
        ap->pending = base_realloc(ap->pending, cap * sizeof(*ap->pending));
        ap->pending_free = base_realloc(ap->pending_free, cap * sizeof(*ap->pending_free));
        memset(ap->pending + ap->pending_cap, 0, (cap - ap->pending_cap) * sizeof(*ap->pending));
        for (uint32_t i = cap; i > ap->pending_cap; i--)
            ap->pending_free[ap->pending_free_count++] = i - 1;
        ap->pending_cap = cap;
    }
    uint32_t slot = ap->pending_free[--ap->pending_free_count];
    struct ap_pending *p = &ap->pending[slot];
    memset(p, 0, sizeof(*p));
    p->used = true;
    p->kind = kind;
    if (((ap->pending_generation + 1) & ((1ull << AP_BOOT_SHIFT) - 1)) == 0) {
        struct errmsg msg; /* a boot's ids are used up: the next boot's begin */
        if (ap_store_next_boot(ap, &msg) != 0)
            ap_trace(ap,
                     "ap: could not count a new boot in the epoch file (%s): request ids "
                     "may repeat after a restart",
                     msg.text);
    }
    p->req = (++ap->pending_generation << AP_SLOT_BITS) | slot;
    p->deadline_ms = ap->store.mono_ms + AP_REQUEST_TIMEOUT_MS;
    buf_init(&p->reply);
    buf_init(&p->seen);
    buf_init(&p->command);
    buf_init(&p->key);
    ap_object_init(&p->merged);
    ap->pending_count++;
    ap_list_push(ap, p, AP_LIST_AGE);
    return p;
}

struct ap_pending *ap_pending_find(struct ap *ap, uint64_t req) {
    uint32_t slot = (uint32_t)(req & AP_SLOT_MASK);
    if (slot >= ap->pending_cap) return NULL;
    struct ap_pending *p = &ap->pending[slot];
    return p->used && p->req == req ? p : NULL;
}

void ap_pending_free(struct ap *ap, struct ap_pending *p) {
    ASSERT(p->used && ap->pending_count > 0);
    buf_deinit(&p->reply);
    buf_deinit(&p->seen);
    buf_deinit(&p->command);
    buf_deinit(&p->key);
    ap_object_deinit(&p->merged);
    for (int i = 0; i < AP_LISTS; i++) ap_list_unlink(ap, p, i);
    p->used = false;
    ap->pending_count--;
    ap->pending_free[ap->pending_free_count++] = (uint32_t)(p - ap->pending);
}

void ap_coord_close(struct ap *ap) {
    for (uint32_t i = 0; i < ap->pending_cap; i++)
        if (ap->pending[i].used) ap_pending_free(ap, &ap->pending[i]);
    for (uint32_t i = 0; i < ap->peer_count; i++) {
        free(ap->peers[i].forwards_seen);
        ap->peers[i].forwards_seen = NULL;
        ap->peers[i].forwards_seen_cap = 0;
    }
    free(ap->pending);
    free(ap->pending_free);
    ap->pending = NULL;
    ap->pending_free = NULL;
    ap->pending_cap = ap->pending_free_count = 0;
}

/* Answers a pending request's origin, with the keys in p->seen: its client (given later)
 * or the peer that forwarded it (after lsn is durable, when the answer reports a write). */
static void ap_answer(struct ap *ap, const struct ap_pending *p, const struct buf *reply,
                      uint64_t lsn) {
    if (p->client != 0) {
        ap_reply_seen(ap, p->client, reply->data, reply->len, p->seen.data, p->seen.len);
        return;
    }
    struct ap_msg m = {.kind = AP_MSG_FORWARD_REPLY, .req = p->origin_req};
    m.reply = (struct ap_bytes){reply->data, reply->len};
    m.session = (struct ap_bytes){p->seen.data, p->seen.len};
    ap_send_after(ap, p->origin, lsn, &m);
}

/* ---- coordinating ---- */

void ap_plan(struct ap *ap, const struct resp_arg *key, struct ap_plan *pl) {
    pl->ks = ap_keyspace_of(ap, key->data, key->bytes);
    pl->hash = ap_ring_key_hash(key->data, key->bytes);
    pl->count = ap_ring_walk(&ap->ring, pl->hash, pl->walk);
    pl->n = pl->ks.n < pl->count ? pl->ks.n : pl->count;
    pl->self_replica = false;
    for (uint32_t i = 0; i < pl->n; i++) pl->self_replica |= pl->walk[i] == ap->config.id;
}

/* what: "nothing was written" or "nothing was read". */
static void ap_noquorum(struct ap *ap, struct buf *out, const struct ap_plan *pl, uint32_t need,
                        uint32_t have, const char *what) {
    ap->stats.noquorum++;
    errcode_reply(out, ERRCODE_NOQUORUM,
                  "%u of the key's %u replicas are needed and %u are reachable from node %u "
                  "(keyspace %s): %s",
                  need, pl->n, have, ap->config.id, pl->ks.name, what);
}

static void ap_busy(struct ap *ap, struct buf *out) {
    errcode_reply(out, ERRCODE_BUSY,
                  "%u AP requests are in flight at node %u: nothing was done, try again",
                  AP_PENDING_MAX, ap->config.id);
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

/* Sends the new state to every other replica: directly (recorded in p, whose acknowledgements
 * count toward w), or as a hint to a fallback (in the fallback's memory only: it does not
 * count toward w, it only brings the replica up to date sooner than anti-entropy would). */
static void ap_replicate(struct ap *ap, const struct ap_plan *pl, const struct resp_arg *key,
                         const struct buf *state, struct ap_pending *p) {
    uint32_t fallback_at = pl->n;
    for (uint32_t i = 0; i < pl->n; i++) {
        uint32_t node = pl->walk[i];
        if (node == ap->config.id) continue;
        struct ap_msg m = {.kind = AP_MSG_PUT};
        m.key = (struct ap_bytes){key->data, key->bytes};
        m.object = (struct ap_bytes){state->data, state->len};
        uint32_t to = node;
        if (!ap_reachable(ap, node)) {
            if (pl->ks.handoff != KEYSPACE_HANDOFF_ON) continue;
            to = ap_next_fallback(ap, pl, &fallback_at);
            if (to == 0) continue;
            m.flags = AP_PUT_HINT;
            m.hint_for = node;
        } else if (p != NULL) {
            m.req = p->req;
            m.flags = AP_PUT_ACK_WANTED;
            p->answered_digest[p->asked_count] = 0;
            p->asked[p->asked_count++] = node;
        }
        ap_send(ap, to, &m);
    }
}

/* Runs a command on o as this node (in o's life for it). Returns the actor its writes are
 * named by. */
static uint64_t ap_run_cmd(struct ap *ap, const struct ap_plan *pl, struct ap_object *o,
                           uint32_t argc, const struct resp_arg *argv, int proto, struct buf *out,
                           struct ap_cmd_result *res) {
    if ((ap->next_life & ((1ull << AP_LIFE_BOOT_SHIFT) - 1)) == 0) {
        struct errmsg msg; /* a boot's lives are used up: the next boot's begin */
        if (ap_store_next_boot(ap, &msg) != 0)
            ap_trace(ap, "ap: could not count a new boot in the epoch file (%s)", msg.text);
    }
    struct ap_cmd_ctx ctx = {
        .conflict = ap_conflict_of(pl->ks.conflict),
        .grow_only = pl->ks.counter == KEYSPACE_COUNTER_G,
        .actor = ap_object_actor(o, ap->actor, ap->life_floor, &ap->next_life),
        .ts = ap_write_ts(ap, &pl->ks),
        .now_ms = ap->store.now_ms,
        .proto = proto,
        .string_bytes_max = ap->config.string_bytes_max,
    };
    ap_cmd_run(&ctx, o, argc, argv, out, res);
    if (res->siblings > MVREG_SIBLINGS_WARN) ap->stats.siblings_over_warning++;
    return ctx.actor;
}

/* A write on this replica (this node is one of the key's replicas). Returns true when
 * answered in out (at once; *lsn_out: the record the answer waits for). */
static bool ap_write(struct ap *ap, const struct ap_plan *pl, const struct ap_origin *from,
                     uint32_t argc, const struct resp_arg *argv, struct buf *out, uint64_t *lsn_out,
                     struct buf *seen) {
    uint32_t need =
        keyspace_quorum_count(from->w != 0 ? (enum keyspace_quorum)from->w : pl->ks.w, pl->n);
    uint32_t have = ap_reachable_replicas(ap, pl);
    if (have < need) {
        ap_noquorum(ap, out, pl, need, have, "nothing was written");
        return true;
    }
    /* The slot first: a write refused for want of one must not be saved. */
    struct ap_pending *p = NULL;
    if (need > 1) {
        p = ap_pending_new(ap, AP_PENDING_WRITE);
        if (p == NULL) {
            ap_busy(ap, out);
            return true;
        }
    }
    struct ap_object o;
    ap_object_init(&o);
    (void)ap_store_load(ap, argv[1].data, argv[1].bytes, &o);
    /* Where this reply starts, counted from the unread bytes: an append may move them to
     * the front of the buffer (buf_reserve reclaims the consumed prefix). */
    size_t mark = buf_pending(out);
    struct ap_cmd_result res;
    uint64_t actor = ap_run_cmd(ap, pl, &o, argc, argv, from->proto, out, &res);
    uint64_t lsn = 0;
    if (res.wrote) {
        ap->stats.writes++;
        ap_object_count_write(&o, actor);
        lsn = ap_store_save(ap, argv[1].data, argv[1].bytes, &o);
        if (lsn == 0) {
            out->len = out->read_pos + mark;
            errcode_reply(out, ERRCODE_DISKFULL, "%s; AP writes are refused until space is freed",
                          ap->store.disk_full_text);
        } else {
            ap_replicate(ap, pl, &argv[1], &ap->encode, p); /* the save left o encoded there */
            *lsn_out = lsn;
        }
    }
    /* What the reply reflects (a write refused for a full disk: the object as it was). */
    struct buf *keys = p != NULL && lsn != 0 ? &p->seen : seen;
    ap_session_seen(keys, argv[1].data, argv[1].bytes, &o);
    ap_object_deinit(&o);
    if (p == NULL) return true;
    if (lsn == 0) { /* nothing to wait for: answered in out */
        ap_pending_free(ap, p);
        return true;
    }
    p->client = from->client;
    p->origin = from->peer;
    p->origin_req = from->peer_req;
    p->need = need;
    p->self_lsn = lsn;
    ap_list_push(ap, p, AP_LIST_DURABLE);
    buf_append(&p->reply, buf_head(out) + mark, buf_pending(out) - mark);
    out->len = out->read_pos + mark;
    return false;
}

/* Keeps a command's arguments in a pending read (argc u32, then len u32 and bytes each). */
void ap_keep_command(struct buf *b, uint32_t argc, const struct resp_arg *argv) {
    buf_append_u32le(b, argc);
    for (uint32_t i = 0; i < argc; i++) {
        buf_append_u32le(b, (uint32_t)argv[i].bytes);
        buf_append(b, argv[i].data, argv[i].bytes);
    }
}

uint32_t ap_command_args(const struct buf *b, struct resp_arg *argv, uint32_t max) {
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

/* Asks want other reachable replicas (the first in the key's walk) for their object:
 * with this replica's own, the r the answer needs (Cassandra asks r, not n: the rest are
 * left to anti-entropy). */
static void ap_read_ask(struct ap *ap, const struct ap_plan *pl, struct ap_pending *p,
                        const struct resp_arg *key, uint32_t want) {
    for (uint32_t i = 0; i < pl->n && p->asked_count < want; i++) {
        uint32_t node = pl->walk[i];
        if (node == ap->config.id || !ap_reachable(ap, node)) continue;
        bool asked = false;
        for (uint32_t k = 0; k < p->asked_count; k++) asked |= p->asked[k] == node;
        if (asked) continue;
        struct ap_msg m = {.kind = AP_MSG_GET, .req = p->req};
        m.key = (struct ap_bytes){key->data, key->bytes};
        ap_send(ap, node, &m);
        p->answered_digest[p->asked_count] = 0;
        p->asked[p->asked_count++] = node;
    }
}

/* A read on this replica: its own object now, the others' asked for. True when answered.
 * r = one and CONSISTENCY stale answer from this replica alone and ask no one (anti-entropy
 * repairs what differs); a larger r asks r - 1 other reachable replicas, answers once they
 * replied, and repairs those that answered less. */
static bool ap_read(struct ap *ap, const struct ap_plan *pl, const struct ap_origin *from,
                    uint32_t argc, const struct resp_arg *argv, struct buf *out, struct buf *seen) {
    ap->stats.reads++;
    uint32_t need =
        keyspace_quorum_count(from->r != 0 ? (enum keyspace_quorum)from->r : pl->ks.r, pl->n);
    bool stale = from->level == KEYSPACE_CONSISTENCY_STALE;
    uint32_t have = ap_reachable_replicas(ap, pl);
    /* Still filling the key's arc after a ring change: this copy counts toward no r. */
    uint32_t filling = !stale && ap_members_filling(ap, ap_ring_arc(&ap->ring, pl->hash));
    if (!stale && have - filling < need) {
        ap_noquorum(ap, out, pl, need, have - filling, "nothing was read");
        return true;
    }
    bool now = stale || (need == 1 && filling == 0);
    struct ap_pending *p = now ? NULL : ap_pending_new(ap, AP_PENDING_READ);
    if (!now && p == NULL) {
        ap_busy(ap, out);
        return true;
    }
    struct ap_object o;
    ap_object_init(&o);
    (void)ap_store_load(ap, argv[1].data, argv[1].bytes, &o);
    if (now) {
        struct ap_cmd_result res;
        (void)ap_run_cmd(ap, pl, &o, argc, argv, from->proto, out, &res);
        ap_session_seen(seen, argv[1].data, argv[1].bytes, &o);
    } else {
        ap_object_merge(&p->merged, &o);
        need += filling;
        p->need = need;
        p->got = 1;
        p->client = from->client;
        p->origin = from->peer;
        p->origin_req = from->peer_req;
        p->proto = from->proto;
        p->conflict = pl->ks.conflict;
        /* What this replica holds may not be durable yet: the answer waits for it. */
        p->self_lsn = logdb_release_lsn(&ap->store);
        ap_list_push(ap, p, AP_LIST_DURABLE);
        buf_append(&p->key, argv[1].data, argv[1].bytes);
        ap_keep_command(&p->command, argc, argv);
        ap_read_ask(ap, pl, p, &argv[1], need - 1);
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
        ap_noquorum(ap, out, pl, 1, 0, "nothing was done");
        return true;
    }
    struct ap_pending *p = ap_pending_new(ap, AP_PENDING_FORWARD);
    if (p == NULL) {
        ap_busy(ap, out);
        return true;
    }
    ap->stats.forwards++;
    p->client = from->client;
    p->target = to;
    struct ap_msg m = {.kind = AP_MSG_FORWARD, .req = p->req, .count = argc};
    struct seen_key want;
    if (from->floor_bytes > 0 && seen_find(from->floor, from->floor_bytes,
                                           seen_key_hash(argv[1].data, argv[1].bytes), &want)) {
        /* The replica waits for the session up to session-wait, then runs the command. */
        seen_put(&p->reply, &want);
        m.session = (struct ap_bytes){p->reply.data, p->reply.len};
        p->deadline_ms += ap->config.session_wait_ms;
        ap_list_unlink(ap, p, AP_LIST_AGE);
        ap_list_push(ap, p, AP_LIST_SESSION);
    }
    m.proto = (uint8_t)from->proto;
    m.level = (uint8_t)from->level;
    m.w = (uint8_t)from->w;
    m.r = (uint8_t)from->r;
    m.args = (struct resp_arg *)(uintptr_t)argv;
    ap_send(ap, to, &m);
    return false;
}

bool ap_coordinate(struct ap *ap, const struct ap_origin *from, uint32_t argc,
                   const struct resp_arg *argv, struct buf *out, uint64_t *lsn, struct buf *seen) {
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
    if (argc > AP_MSG_ARGS_MAX) { /* a forward could not carry it: refused before anything */
        resp_put_errorf(out, "ERR an AP command takes at most %u arguments (this one has %u)",
                        AP_MSG_ARGS_MAX, argc);
        return true;
    }
    struct ap_plan pl;
    ap_plan(ap, &argv[1], &pl);
    bool stale_read = !writes && from->level == KEYSPACE_CONSISTENCY_STALE;
    if (!pl.self_replica && !stale_read) {
        if (from->peer == 0) return ap_forward(ap, &pl, from, argc, argv, out);
        /* Forwarded here, yet not a replica by this node's ring: the rings differ. */
        errcode_reply(out, ERRCODE_TRYAGAIN,
                      "node %u was asked to serve a key it is not a replica of (the nodes' "
                      "member lists differ): nothing was done",
                      ap->config.id);
        return true;
    }
    if (ap_session_behind(ap, from, &argv[1])) {
        if (pl.self_replica) return ap_session_wait(ap, &pl, from, argc, argv, out);
        resp_put_error(out, "ERR session: this node holds no replica of the key, so a stale read "
                            "here cannot catch up to the token; read it without CONSISTENCY "
                            "stale");
        return true;
    }
    if (writes) return ap_write(ap, &pl, from, argc, argv, out, lsn, seen);
    return ap_read(ap, &pl, from, argc, argv, out, seen);
}

/* ---- pipelines ----
 * A connection's pipeline is one pending BATCH: each command is coordinated in turn (as if
 * one by one: a read after a write of this replica sees it) and answers to a pseudo client
 * naming the batch and its index; the batch keeps each reply (at `command`: count × (u32
 * offset into `reply`, u32 length), offset UINT32_MAX until answered) and answers its
 * client once every command has, and once what the commands answered at once saw is
 * durable (self_lsn). It is on no age list: each command times out on its own. */

#define AP_BATCH_NONE UINT32_MAX

/* How a batch's replies make its answer: a pipeline's, one after the other; a multi-key
 * command's (run as one command per key), as Redis answers it: DEL, UNLINK and EXISTS the
 * sum, MGET an array, MSET +OK. An error of a part (-NOQUORUM, -TIMEOUT...) is the
 * answer then (the first in key order): the keys before or after it may have been done,
 * as on a Redis Cluster whose keys live on several nodes. */
enum { AP_COMBINE_PIPELINE = 0, AP_COMBINE_SUM, AP_COMBINE_ARRAY, AP_COMBINE_OK };

static const uint8_t *ap_batch_part(const struct ap_pending *b, uint32_t i, size_t *bytes) {
    const uint8_t *at = b->command.data + (size_t)i * 8;
    *bytes = base_load_u32le(at + 4);
    return b->reply.data + base_load_u32le(at);
}

static void ap_batch_finish(const struct ap_pending *b, struct buf *out) {
    uint32_t count = (uint32_t)(b->command.len / 8);
    size_t bytes = 0;
    long long sum = 0;
    for (uint32_t i = 0; i < count && b->combine != AP_COMBINE_PIPELINE; i++) {
        const uint8_t *r = ap_batch_part(b, i, &bytes);
        bool wrongtype = bytes >= 10 && memcmp(r, "-WRONGTYPE", 10) == 0;
        if (r[0] == '-' && !(b->combine == AP_COMBINE_ARRAY && wrongtype)) {
            buf_append(out, r, bytes);
            return;
        }
        if (b->combine == AP_COMBINE_SUM) sum += strtoll((const char *)r + 1, NULL, 10);
    }
    if (b->combine == AP_COMBINE_SUM) {
        buf_appendf(out, ":%lld\r\n", sum);
        return;
    }
    if (b->combine == AP_COMBINE_OK) {
        buf_append(out, "+OK\r\n", 5);
        return;
    }
    if (b->combine == AP_COMBINE_ARRAY) buf_appendf(out, "*%u\r\n", count);
    for (uint32_t i = 0; i < count; i++) {
        const uint8_t *r = ap_batch_part(b, i, &bytes);
        if (b->combine == AP_COMBINE_ARRAY && r[0] == '-')
            resp_put_null(out, b->proto); /* MGET: a key of another type is nil */
        else
            buf_append(out, r, bytes);
    }
}

/* Answers the batch if every command has and what they saw is durable (else it waits on
 * the durable list). */
static void ap_batch_done_if(struct ap *ap, struct ap_pending *b) {
    if (b->need > 0 || b->links[AP_LIST_DURABLE].linked) return;
    if (logdb_durable_lsn(&ap->store) < b->self_lsn) {
        ap_list_push(ap, b, AP_LIST_DURABLE);
        return;
    }
    struct buf out;
    buf_init(&out);
    ap_batch_finish(b, &out);
    ap_reply_seen(ap, b->client, out.data, out.len, b->seen.data, b->seen.len);
    ap_pending_free(ap, b);
    buf_deinit(&out);
}

void ap_coord_batch_reply(struct ap *ap, uint64_t client, const uint8_t *data, size_t bytes,
                          const uint8_t *seen, size_t seen_bytes) {
    uint32_t slot = (uint32_t)(client & AP_SLOT_MASK);
    uint32_t index = (uint32_t)((client & ~AP_BATCH_BIT) >> AP_SLOT_BITS);
    ASSERT(slot < ap->pending_cap);
    struct ap_pending *b = &ap->pending[slot];
    ASSERT(b->used && b->kind == AP_PENDING_BATCH && (size_t)index * 8 < b->command.len);
    uint8_t *at = b->command.data + (size_t)index * 8;
    ASSERT(base_load_u32le(at) == AP_BATCH_NONE && b->need > 0);
    base_store_u32le(at, (uint32_t)b->reply.len);
    base_store_u32le(at + 4, (uint32_t)bytes);
    buf_append(&b->reply, data, bytes);
    buf_append(&b->seen, seen, seen_bytes);
    b->need--;
    if (b->got != 0) ap_batch_done_if(ap, b); /* not while submitting */
}

static bool ap_command(struct ap *ap, const struct ap_origin *from, uint32_t argc,
                       const struct resp_arg *argv, struct buf *out, uint64_t *lsn,
                       struct buf *seen);

/* Runs the commands of list (a command list, cmdlist.h) as one batch answering from's
 * client. True when answered in out (every command was answered at once; the keys they
 * reflect appended to seen). */
static bool ap_batch(struct ap *ap, const struct ap_origin *from, const uint8_t *list,
                     size_t list_bytes, int combine, struct buf *out, uint64_t *lsn_out,
                     struct buf *seen) {
    uint32_t count = base_load_u32le(list + 1);
    struct ap_pending *b = ap_pending_new(ap, AP_PENDING_BATCH);
    if (b == NULL) {
        ap_busy(ap, out); /* the node gives every command of a pipeline this error */
        return true;
    }
    ap_list_unlink(ap, b, AP_LIST_AGE);
    /* Its slot, not b: the commands may grow the pending table (and move it). */
    uint32_t slot = (uint32_t)(b - ap->pending);
    uint64_t pseudo = AP_BATCH_BIT | slot;
    b->client = from->client;
    b->need = count;
    b->combine = combine;
    b->proto = from->proto;
    for (uint32_t i = 0; i < count; i++) {
        buf_append_u32le(&b->command, AP_BATCH_NONE);
        buf_append_u32le(&b->command, 0);
    }
    size_t pos = CMDLIST_HEADER_BYTES;
    uint64_t lsn_max = 0;
    struct buf part, part_seen;
    buf_init(&part);
    buf_init(&part_seen);
    for (uint32_t i = 0; i < count; i++) {
        uint32_t argc = 0;
        struct ap_origin one = *from;
        one.client = pseudo | ((uint64_t)i << AP_SLOT_BITS);
        buf_clear(&part);
        buf_clear(&part_seen);
        uint64_t lsn = 0;
        bool answered = true;
        if (!cmdlist_next(list, list_bytes, &pos, &ap->pipeline_args, &argc))
            resp_put_error(&part, "ERR malformed pipeline");
        else
            answered = ap_command(ap, &one, argc, (const struct resp_arg *)ap->pipeline_args.data,
                                  &part, &lsn, &part_seen);
        if (answered)
            ap_coord_batch_reply(ap, one.client, part.data, part.len, part_seen.data,
                                 part_seen.len);
        if (lsn > lsn_max) lsn_max = lsn;
    }
    buf_deinit(&part);
    buf_deinit(&part_seen);
    b = &ap->pending[slot];
    *lsn_out = lsn_max;
    if (b->need == 0) { /* every command answered at once: held as any such answer */
        ap_batch_finish(b, out);
        buf_append(seen, b->seen.data, b->seen.len);
        ap_pending_free(ap, b);
        return true;
    }
    uint64_t release = logdb_release_lsn(&ap->store);
    b->self_lsn = lsn_max > release ? lsn_max : release;
    b->got = 1; /* submitted: a command's answer may finish it now */
    return false;
}

static bool ap_named(const struct resp_arg *a, const char *name) {
    return a->bytes == strlen(name) && strncasecmp((const char *)a->data, name, a->bytes) == 0;
}

/* A command of a client of this node (alone or in a pipeline). DEL, UNLINK and EXISTS of
 * several keys, MGET and MSET run as one command per key, a batch combined as Redis
 * answers them; any other command is coordinated. True when answered in out. */
static bool ap_command(struct ap *ap, const struct ap_origin *from, uint32_t argc,
                       const struct resp_arg *argv, struct buf *out, uint64_t *lsn,
                       struct buf *seen) {
    bool unlink = argc >= 1 && ap_named(&argv[0], "unlink");
    bool del = unlink || (argc >= 1 && ap_named(&argv[0], "del"));
    bool exists = argc >= 1 && ap_named(&argv[0], "exists");
    bool mget = argc >= 1 && ap_named(&argv[0], "mget");
    bool mset = argc >= 1 && ap_named(&argv[0], "mset");
    if (!(((del || exists) && argc > 2) || unlink || mget || mset))
        return ap_coordinate(ap, from, argc, argv, out, lsn, seen);
    uint32_t step = mset ? 2 : 1;
    if (argc < 2 || (argc - 1) % step != 0) {
        resp_put_errorf(out, "ERR wrong number of arguments for '%.*s' command", (int)argv[0].bytes,
                        (const char *)argv[0].data);
        return true;
    }
    const char *name = del ? "DEL" : exists ? "EXISTS" : mset ? "SET" : "GET";
    struct buf *list = &ap->multikey; /* no batch inside runs a multi-key command */
    buf_clear(list);
    cmdlist_begin(list, 0, (argc - 1) / step);
    for (uint32_t i = 1; i < argc; i += step) {
        struct resp_arg one[3] = {{(const uint8_t *)name, strlen(name)}, argv[i]};
        if (mset) one[2] = argv[i + 1];
        cmdlist_add(list, mset ? 3 : 2, one);
    }
    int combine = mget ? AP_COMBINE_ARRAY : mset ? AP_COMBINE_OK : AP_COMBINE_SUM;
    return ap_batch(ap, from, list->data, list->len, combine, out, lsn, seen);
}

void ap_submit(struct ap *ap, const struct engine_request *req, struct buf *out,
               struct engine_answer *answer) {
    struct ap_origin from = {.client = req->id,
                             .proto = req->proto,
                             .level = req->level,
                             .w = req->w,
                             .r = req->r,
                             .floor = req->session_ap,
                             .floor_bytes = req->session_ap_bytes};
    uint64_t lsn = 0;
    buf_clear(&ap->seen_out);
    if (req->kind == ENGINE_REQUEST_DATA && req->spec == NULL && req->list != NULL &&
        req->bytes >= CMDLIST_HEADER_BYTES && req->list[0] == 0) {
        answer->pending = !ap_batch(ap, &from, req->list, req->bytes, AP_COMBINE_PIPELINE, out,
                                    &lsn, &ap->seen_out);
    } else if (req->kind != ENGINE_REQUEST_DATA || req->spec == NULL) {
        resp_put_error(out, "ERR MULTI/EXEC, WATCH and pipelined transactions on AP keys need a "
                            "CP keyspace (mode = cp)");
    } else {
        answer->pending = !ap_command(ap, &from, req->argc, req->argv, out, &lsn, &ap->seen_out);
    }
    answer->write_token = lsn;
    answer->seen = ap->seen_out.data;
    answer->seen_bytes = ap->seen_out.len;
}

/* False for a FORWARD already run (a duplicated frame) or older than one run from the same
 * sender slot (its sender has answered or given up): a command runs at most once. Request
 * ids grow in each sender slot, across the sender's restarts too (ap_store_next_boot). */
static bool ap_forward_is_new(struct ap *ap, uint32_t from, uint64_t req) {
    struct ap_peer *peer = ap_peer_find(ap, from);
    if (peer == NULL) return false;
    uint32_t slot = (uint32_t)(req & AP_SLOT_MASK);
    if (slot >= peer->forwards_seen_cap) {
        uint32_t cap = peer->forwards_seen_cap < 64 ? 64 : peer->forwards_seen_cap;
        while (cap <= slot) cap *= 2;
        peer->forwards_seen = base_realloc(peer->forwards_seen, cap * sizeof(uint64_t));
        memset(peer->forwards_seen + peer->forwards_seen_cap, 0,
               (cap - peer->forwards_seen_cap) * sizeof(uint64_t));
        peer->forwards_seen_cap = cap;
    }
    if (peer->forwards_seen[slot] >= req) return false;
    peer->forwards_seen[slot] = req;
    return true;
}

void ap_coord_answer_peer(struct ap *ap, uint32_t peer, uint64_t req, const struct buf *reply,
                          uint64_t lsn, const struct buf *seen) {
    /* Answered at once, as a client's reply is: sent once what it saw is durable. */
    uint64_t release = logdb_release_lsn(&ap->store);
    struct ap_msg m = {.kind = AP_MSG_FORWARD_REPLY, .req = req};
    m.reply = (struct ap_bytes){reply->data, reply->len};
    m.session = (struct ap_bytes){seen->data, seen->len};
    ap_send_after(ap, peer, lsn > release ? lsn : release, &m);
}

void ap_coord_run(struct ap *ap, const struct ap_origin *o, uint32_t argc,
                  const struct resp_arg *argv) {
    struct buf out, seen;
    buf_init(&out);
    buf_init(&seen);
    uint64_t lsn = 0;
    if (ap_coordinate(ap, o, argc, argv, &out, &lsn, &seen)) {
        if (o->client != 0)
            ap_reply_seen(ap, o->client, out.data, out.len, seen.data, seen.len);
        else
            ap_coord_answer_peer(ap, o->peer, o->peer_req, &out, lsn, &seen);
    }
    buf_deinit(&out);
    buf_deinit(&seen);
}

void ap_coord_forwarded(struct ap *ap, uint32_t from, const struct ap_msg *m) {
    if (!ap_forward_is_new(ap, from, m->req)) {
        ap->stats.forwards_dropped++;
        return;
    }
    struct ap_origin o = {.peer = from,
                          .peer_req = m->req,
                          .proto = m->proto,
                          .level = m->level,
                          .w = m->w,
                          .r = m->r,
                          .floor = m->session.data,
                          .floor_bytes = m->session.bytes};
    ap_coord_run(ap, &o, m->count, m->args);
}

/* ---- answers from replicas ---- */

/* Sends the merged object to every asked replica that answered something else, and keeps
 * it here too (read repair), then frees the read. A key no replica holds is left alone. */
static void ap_read_repair(struct ap *ap, struct ap_pending *p) {
    bool anyone = db_find(ap->store.db, p->key.data, p->key.len) != NULL;
    for (uint32_t i = 0; i < p->asked_count; i++) anyone |= p->answered_digest[i] > 1;
    if (!anyone) {
        ap_pending_free(ap, p);
        return;
    }
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
        if (!same && ap_store_save(ap, p->key.data, p->key.len, &mine) != 0)
            ap_members_saved(ap, p->key.data, p->key.len); /* the ring may have changed */
    }
    if (repaired) ap->stats.read_repairs++;
    ap_object_deinit(&mine);
    ap_pending_free(ap, p);
}

/* Once r replied and what this replica read is durable: runs the kept command on what the
 * replies merged, and answers (need becomes 0: answered). */
static void ap_read_answer_if(struct ap *ap, struct ap_pending *p) {
    if (p->need == 0 || p->got < p->need || logdb_durable_lsn(&ap->store) < p->self_lsn) return;
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
    (void)ap_run_cmd(ap, &pl, &copy, argc, argv, p->proto, &out, &res);
    ap_session_seen(&p->seen, argv[1].data, argv[1].bytes, &copy);
    ap_answer(ap, p, &out, 0);
    p->need = 0;
    ap_object_deinit(&copy);
    buf_deinit(&out);
}

uint32_t ap_asked_index(const struct ap_pending *p, uint32_t from) {
    uint32_t i = 0;
    while (i < p->asked_count && p->asked[i] != from) i++;
    return i;
}

/* The replicas asked that replied (this one's own read aside). */
static uint32_t ap_read_replied(const struct ap_pending *p) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < p->asked_count; i++) n += p->answered_digest[i] != 0;
    return n;
}

/* Every replica replied and fewer than r of them count (the others are still filling
 * their arcs after a ring change): -NOQUORUM now rather than a timeout. */
static void ap_read_short(struct ap *ap, struct ap_pending *p, const struct ap_plan *pl) {
    struct buf out;
    buf_init(&out);
    ap->stats.noquorum++;
    errcode_reply(&out, ERRCODE_NOQUORUM,
                  "%u of the key's %u replicas are needed and %u reachable ones hold its "
                  "arc (the others are still receiving it after a member change); nothing "
                  "was read",
                  p->need, pl->n, p->got);
    ap_answer(ap, p, &out, 0);
    p->need = 0;
    buf_deinit(&out);
}

static void ap_get_reply(struct ap *ap, uint32_t from, struct ap_pending *p,
                         const struct ap_msg *m) {
    uint32_t i = ap_asked_index(p, from);
    if (i == p->asked_count || p->answered_digest[i] != 0) return; /* not asked, or twice */
    p->answered_digest[i] = 1;                                     /* no object */
    bool filling = m->status == AP_STATUS_FILLING;
    if (m->status == AP_STATUS_OK || (filling && m->object.bytes > 0)) {
        struct ap_object o;
        ap_object_init(&o);
        /* Checked as a PUT is: a state too far ahead is neither merged nor spread. */
        if (ap_object_decode(m->object.data, m->object.bytes, &o) != 0) {
            ap->stats.bad_payloads++;
        } else if (ap_replica_clock_ok(ap, p->conflict, &o, from)) {
            ap_object_merge(&p->merged, &o);
            p->answered_digest[i] = ap_tree_digest(m->object.data, m->object.bytes);
        }
        ap_object_deinit(&o);
    }
    if (filling && p->need != 0) { /* merged, not counted: one more replica is asked */
        struct resp_arg key = {p->key.data, p->key.len};
        struct ap_plan pl;
        ap_plan(ap, &key, &pl);
        uint32_t asked = p->asked_count;
        ap_read_ask(ap, &pl, p, &key, p->asked_count + 1);
        if (p->asked_count == asked && ap_read_replied(p) == asked)
            ap_read_short(ap, p, &pl); /* nobody left to ask */
    } else if (!filling) {
        p->got++;
        ap_read_answer_if(ap, p);
    }
    if (p->need == 0 && ap_read_replied(p) == p->asked_count) ap_read_repair(ap, p);
}

/* A write answers once w replicas acknowledged, this one (always a replica: see
 * ap_coordinate) counting only once its log holds the write. */
static void ap_write_done_if(struct ap *ap, struct ap_pending *p) {
    if (!p->self_counted && logdb_durable_lsn(&ap->store) >= p->self_lsn) {
        p->self_counted = true;
        p->got++;
    }
    if (!p->self_counted || p->got < p->need) return;
    ap_answer(ap, p, &p->reply, p->self_lsn);
    ap_pending_free(ap, p);
}

static void ap_put_ack(struct ap *ap, uint32_t from, struct ap_pending *p, const struct ap_msg *m) {
    uint32_t i = ap_asked_index(p, from);
    if (i == p->asked_count || p->answered_digest[i] != 0) return; /* not sent it, or twice */
    if (m->status != AP_STATUS_OK) return;                         /* refused: it may time out */
    p->answered_digest[i] = 1;
    p->got++;
    ap_write_done_if(ap, p);
}

static void ap_hint_done(struct ap *ap, struct ap_pending *p) {
    struct ap_peer *peer = ap_peer_find(ap, p->target);
    if (peer != NULL && peer->hints_inflight > 0) peer->hints_inflight--;
    ap_pending_free(ap, p);
}

struct ap_hint_batch {
    struct ap *ap;
    struct ap_peer *peer;
};

/* Hands one hint over: a PUT to the replica it was held for, acknowledged by digest. */
static void ap_hand_one(void *ctx, struct ap_hint *hint) {
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
    hint->inflight = true;
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
        ap_put_ack(ap, from, p, m);
    } else if (m->kind == AP_MSG_GET_REPLY && p->kind == AP_PENDING_READ) {
        ap_get_reply(ap, from, p, m);
    } else if (m->kind == AP_MSG_GET_REPLY && p->kind == AP_PENDING_SESSION) {
        ap_session_reply(ap, from, p, m);
    } else if (m->kind == AP_MSG_REAP_STATE && p->kind == AP_PENDING_REAP) {
        ap_reap_answer(ap, from, p, m);
    } else if (m->kind == AP_MSG_PUT_ACK && p->kind == AP_PENDING_HANDOFF) {
        ap_members_handoff_answer(ap, from, p, m);
    } else if (from != p->target) {
        return; /* a hint's or a forward's answer comes from the node it went to */
    } else if (m->kind == AP_MSG_PUT_ACK && p->kind == AP_PENDING_HINT) {
        if (m->status != AP_STATUS_OK)
            ap_hints_unanswered(&ap->hints, p->target, p->key.data, p->key.len);
        else if (ap_hints_delivered(&ap->hints, p->target, p->key.data, p->key.len, p->digest))
            ap->stats.hints_handed++;
        ap_hint_done(ap, p);
    } else if (m->kind == AP_MSG_FORWARD_REPLY && p->kind == AP_PENDING_FORWARD) {
        ap_reply_seen(ap, p->client, m->reply.data, m->reply.bytes, m->session.data,
                      m->session.bytes);
        ap_pending_free(ap, p);
    }
}

void ap_coord_timed_out(struct ap *ap, struct ap_pending *p) {
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

/* What the log's durability released: writes whose own record is durable now (counted;
 * answered if w is met) and reads whose answer waited for it. */
static void ap_coord_durable(struct ap *ap) {
    uint64_t durable = logdb_durable_lsn(&ap->store);
    struct ap_pending *p;
    while ((p = ap_list_head(ap, AP_LIST_DURABLE)) != NULL && p->self_lsn <= durable) {
        ap_list_unlink(ap, p, AP_LIST_DURABLE);
        if (p->kind == AP_PENDING_WRITE) {
            ap_write_done_if(ap, p);
            continue;
        }
        if (p->kind == AP_PENDING_BATCH) {
            ap_batch_done_if(ap, p);
            continue;
        }
        ap_read_answer_if(ap, p);
        if (p->need == 0 && ap_read_replied(p) == p->asked_count) ap_read_repair(ap, p);
    }
}

void ap_coord_progress(struct ap *ap) {
    ap_coord_durable(ap);
    if (ap_list_head(ap, AP_LIST_SESSION) != NULL) ap_session_tick(ap);
    struct ap_pending *p;
    while ((p = ap_list_head(ap, AP_LIST_AGE)) != NULL && p->deadline_ms <= ap->store.mono_ms) {
        if (p->kind == AP_PENDING_READ && p->need == 0) {
            ap_read_repair(ap, p); /* answered already: repair with what came */
            continue;
        }
        if (p->kind == AP_PENDING_HANDOFF) {
            ap_members_handoff_answer(ap, 0, p, NULL); /* the key stays: the next pass */
            continue;
        }
        if (p->kind == AP_PENDING_REAP) {
            ap_reap_answer(ap, 0, p, NULL); /* the tombstone stays: the next pass */
            continue;
        }
        if (p->kind == AP_PENDING_HINT) {
            ap_hints_unanswered(&ap->hints, p->target, p->key.data, p->key.len);
            ap_hint_done(ap, p); /* the hint stays: the next scan hands it again */
            continue;
        }
        ap_coord_timed_out(ap, p);
        if (p->kind == AP_PENDING_READ)
            ap_read_repair(ap, p);
        else
            ap_pending_free(ap, p);
    }
}
