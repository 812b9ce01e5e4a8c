/*
 * Sessions over AP keys (SESSION TOKEN | RESUME, docs/engines.md "Sessions"). Every reply
 * says which keys it reflects and how far (engine/seen.h: the object's writes vector);
 * the node keeps them per connection and a token carries them. A resumed session's
 * command on such a key runs on a replica only once that replica's object holds as much:
 * until then it waits here (a SESSION pending), asking the key's other reachable replicas
 * for their objects and keeping what they hold (as a read repair does), a round at a time,
 * every AP_SESSION_RETRY_MS, until the replica holds it (the command then runs as if it
 * had just arrived) or session-wait passed (-TIMEOUT, nothing done). A stale read asks no
 * one: it waits for anti-entropy or hints to bring the key here.
 */
#include <string.h>

#include "ap/internal.h"
#include "base/assert.h"
#include "engine/seen.h"
#include "proto/errcode.h"

#define AP_SESSION_RETRY_MS 50 /* between a round that found too little and the next */

/* The entry of a vector of writes (count 0 past SEEN_ACTORS_MAX writers). */
static void ap_session_key(const uint8_t *key, size_t bytes, const struct vv *writes,
                           struct seen_key *out) {
    out->hash = seen_key_hash(key, bytes);
    out->count = 0;
    if (writes->count > SEEN_ACTORS_MAX) return;
    for (uint32_t i = 0; i < writes->count; i++) {
        out->actor[i] = writes->entries[i].actor;
        out->counter[i] = writes->entries[i].counter;
    }
    out->count = writes->count;
}

void ap_session_seen(struct buf *seen, const uint8_t *key, size_t bytes,
                     const struct ap_object *o) {
    if (o->writes.count == 0) return; /* no write reached it: nothing to wait for */
    struct seen_key k;
    ap_session_key(key, bytes, &o->writes, &k);
    seen_put(seen, &k);
}

/* Whether this node's replica of key holds want: as many writes of each actor. */
static bool ap_session_holds(struct ap *ap, const uint8_t *key, size_t bytes,
                             const struct seen_key *want) {
    struct ap_object o; /* the header is enough: no need to decode a large state */
    ap_object_init(&o);
    struct db_entry *e = db_find(ap->store.db, key, bytes);
    size_t n = 0;
    const uint8_t *data =
        e != NULL && db_entry_type(e) == VALUE_STRING ? db_entry_string(e, &n) : NULL;
    if (data != NULL) (void)ap_object_peek(data, n, &o);
    bool holds = true;
    for (uint32_t i = 0; i < want->count && holds; i++)
        holds = vv_get(&o.writes, want->actor[i]) >= want->counter[i];
    ap_object_deinit(&o);
    return holds;
}

bool ap_session_behind(struct ap *ap, const struct ap_origin *from, const struct resp_arg *key) {
    if (from->floor_bytes == 0) return false;
    struct seen_key want;
    if (!seen_find(from->floor, from->floor_bytes, seen_key_hash(key->data, key->bytes), &want))
        return false;
    return !ap_session_holds(ap, key->data, key->bytes, &want);
}

/* Asks every other reachable replica of the key for its object (none for a stale read,
 * or when none is reachable: the next round, later). */
static void ap_session_round(struct ap *ap, struct ap_pending *p) {
    struct resp_arg key = {p->key.data, p->key.len};
    struct ap_plan pl;
    ap_plan(ap, &key, &pl);
    p->asked_count = 0;
    p->got = 0;
    ap_object_deinit(&p->merged);
    p->retry_ms = ap->store.mono_ms + AP_SESSION_RETRY_MS;
    if (p->level == KEYSPACE_CONSISTENCY_STALE || !pl.self_replica) return;
    for (uint32_t i = 0; i < pl.n; i++) {
        uint32_t node = pl.walk[i];
        if (node == ap->config.id || !ap_reachable(ap, node)) continue;
        struct ap_msg m = {.kind = AP_MSG_GET, .req = p->req};
        m.key = (struct ap_bytes){p->key.data, p->key.len};
        ap_send(ap, node, &m);
        p->answered_digest[p->asked_count] = 0;
        p->asked[p->asked_count++] = node;
    }
}

bool ap_session_wait(struct ap *ap, const struct ap_plan *pl, const struct ap_origin *from,
                     uint32_t argc, const struct resp_arg *argv, struct buf *out) {
    struct ap_pending *p = ap_pending_new(ap, AP_PENDING_SESSION);
    if (p == NULL) {
        errcode_reply(out, ERRCODE_BUSY,
                      "%u AP requests are in flight at node %u: nothing was done, try again",
                      AP_PENDING_MAX, ap->config.id);
        return true;
    }
    ap->stats.session_waits++;
    ap_list_unlink(ap, p, AP_LIST_AGE);
    ap_list_push(ap, p, AP_LIST_SESSION);
    p->deadline_ms = ap->store.mono_ms + ap->config.session_wait_ms;
    p->client = from->client;
    p->origin = from->peer;
    p->origin_req = from->peer_req;
    p->proto = from->proto;
    p->level = from->level;
    p->w = from->w;
    p->r = from->r;
    p->conflict = pl->ks.conflict;
    struct seen_key want;
    bool found = seen_find(from->floor, from->floor_bytes,
                           seen_key_hash(argv[1].data, argv[1].bytes), &want);
    ASSERT(found); /* ap_session_behind found it */
    seen_put(&p->reply, &want);
    buf_append(&p->key, argv[1].data, argv[1].bytes);
    ap_keep_command(&p->command, argc, argv);
    ap_session_round(ap, p);
    return false;
}

/* Keeps what the round's replies held in this replica (it is one of the key's), once. */
static void ap_session_keep(struct ap *ap, struct ap_pending *p) {
    bool any = false;
    for (uint32_t i = 0; i < p->asked_count; i++) {
        any |= p->answered_digest[i] > 1;
        if (p->answered_digest[i] > 1) p->answered_digest[i] = 1; /* kept */
    }
    if (!any) return;
    struct ap_object mine;
    ap_object_init(&mine);
    (void)ap_store_load(ap, p->key.data, p->key.len, &mine);
    buf_clear(&ap->encode);
    ap_object_encode(&mine, &ap->encode);
    uint64_t before = ap_tree_digest(ap->encode.data, ap->encode.len);
    ap_object_merge(&mine, &p->merged);
    buf_clear(&ap->encode);
    ap_object_encode(&mine, &ap->encode);
    if (ap_tree_digest(ap->encode.data, ap->encode.len) != before &&
        ap_store_save(ap, p->key.data, p->key.len, &mine) != 0)
        ap_members_saved(ap, p->key.data, p->key.len); /* the ring may have changed */
    ap_object_deinit(&mine);
}

/* The replica holds what the session saw: the command runs now, answering its origin, and
 * the wait ends. */
static void ap_session_run(struct ap *ap, struct ap_pending *p) {
    struct resp_arg argv[AP_MSG_ARGS_MAX];
    uint32_t argc = ap_command_args(&p->command, argv, AP_MSG_ARGS_MAX);
    struct ap_origin o = {.client = p->client,
                          .peer = p->origin,
                          .peer_req = p->origin_req,
                          .proto = p->proto,
                          .level = p->level,
                          .w = p->w,
                          .r = p->r,
                          /* the ring may have changed meanwhile: a replica it goes to waits */
                          .floor = p->reply.data,
                          .floor_bytes = p->reply.len};
    /* The command (argv borrows p->command) runs before p is freed; it may grow the
     * pending table, so p is found again by its slot. */
    uint32_t slot = (uint32_t)(p - ap->pending);
    ap_coord_run(ap, &o, argc, argv);
    ap_pending_free(ap, &ap->pending[slot]);
}

/* What the round's replies brought is kept, and the command runs if this replica holds
 * enough now (true: p is freed); else it waits for more, or the next round. */
static bool ap_session_ready(struct ap *ap, const struct ap_pending *p) {
    struct seen_key want;
    size_t pos = 0;
    int rc = seen_next(p->reply.data, p->reply.len, &pos, &want);
    ASSERT(rc == 1);
    return ap_session_holds(ap, p->key.data, p->key.len, &want);
}

static bool ap_session_settle(struct ap *ap, struct ap_pending *p) {
    ap_session_keep(ap, p);
    if (!ap_session_ready(ap, p)) return false;
    /* Waits for the same key made before this one and ready too run first: a pipeline's
     * commands on one key (the same floor: all ready at once) keep their order. */
    uint32_t self = (uint32_t)(p - ap->pending);
    uint32_t slot = ap->lists[AP_LIST_SESSION].head;
    while (slot != self && slot != AP_SLOT_NONE) {
        struct ap_pending *q = &ap->pending[slot];
        slot = q->links[AP_LIST_SESSION].next;
        struct ap_pending *me = &ap->pending[self];
        if (q->kind == AP_PENDING_SESSION && q->key.len == me->key.len &&
            memcmp(q->key.data, me->key.data, me->key.len) == 0 && ap_session_ready(ap, q))
            ap_session_run(ap, q); /* may grow the table: me is found again by its slot */
    }
    ap_session_run(ap, &ap->pending[self]);
    return true;
}

void ap_session_reply(struct ap *ap, uint32_t from, struct ap_pending *p, const struct ap_msg *m) {
    uint32_t i = ap_asked_index(p, from);
    if (i == p->asked_count || p->answered_digest[i] != 0) return; /* not asked, or twice */
    p->answered_digest[i] = 1;
    p->got++;
    bool merged = false;
    if (m->object.bytes > 0) {
        struct ap_object o;
        ap_object_init(&o);
        if (ap_object_decode(m->object.data, m->object.bytes, &o) != 0) {
            ap->stats.bad_payloads++;
        } else if (ap_replica_clock_ok(ap, p->conflict, &o, from)) {
            ap_object_merge(&p->merged, &o);
            p->answered_digest[i] = ap_tree_digest(m->object.data, m->object.bytes);
            merged = true;
        }
        ap_object_deinit(&o);
    }
    /* Each reply may be enough: one replica lost or slow does not hold the rest up. */
    if (merged) (void)ap_session_settle(ap, p);
}

/* Gave up: -TIMEOUT to its origin, nothing done. */
static void ap_session_timed_out(struct ap *ap, struct ap_pending *p) {
    ap->stats.session_timeouts++;
    struct buf out;
    buf_init(&out);
    errcode_reply(&out, ERRCODE_TIMEOUT,
                  "session: node %u's replica of this key did not catch up to what the resumed "
                  "session saw of it within session-wait (%llu ms); nothing was done",
                  ap->config.id, (unsigned long long)ap->config.session_wait_ms);
    struct buf none;
    buf_init(&none);
    if (p->client != 0)
        ap_reply(ap, p->client, out.data, out.len);
    else
        ap_coord_answer_peer(ap, p->origin, p->origin_req, &out, 0, &none);
    buf_deinit(&out);
    ap_pending_free(ap, p);
}

void ap_session_tick(struct ap *ap) {
    uint32_t slot = ap->lists[AP_LIST_SESSION].head;
    while (slot != AP_SLOT_NONE) {
        struct ap_pending *p = &ap->pending[slot];
        if (!p->used || !p->links[AP_LIST_SESSION].linked) break; /* changed under us: next tick */
        slot = p->links[AP_LIST_SESSION].next; /* p may be freed (and the table grow) below */
        if (p->deadline_ms <= ap->store.mono_ms) {
            if (p->kind == AP_PENDING_SESSION) {
                ap_session_timed_out(ap, p);
            } else {
                ap_coord_timed_out(ap, p); /* a forward that carried a session */
                ap_pending_free(ap, p);
            }
        } else if (p->kind == AP_PENDING_SESSION && p->retry_ms <= ap->store.mono_ms) {
            /* anti-entropy or a hint may have brought it; else ask again */
            uint32_t self = (uint32_t)(p - ap->pending);
            if (!ap_session_settle(ap, p)) ap_session_round(ap, &ap->pending[self]);
        }
    }
}
