/*
 * Collecting tombstones (docs/engines.md, "Tombstone collection"). A deleted key stays as
 * a tombstone (an object with nothing present) so that no older copy brings it back. Once
 * it is older than ap-tombstone-age (which bounds hints too) and each of the key's replicas
 * holds the same one, or none, it is removed everywhere: a replica's scan finds candidates
 * a slice at a time, and for each it asks the key's other replicas (REAP_ASK with its
 * digest). If each answers that it holds the same (OK) or nothing (NONE), it tells those
 * with the same to remove it (REAP: each removes it only if its copy is still that one and
 * old enough by its own clock) and removes its own. A lost REAP leaves a copy that the
 * next pass of its holder collects (the others then answer NONE). A key expired longer ago
 * than the age is collected the same way. Nothing is collected while this node fills
 * arcs, hands keys off or rebuilds its tree after a ring change, nor while one of the key's
 * replicas is unreachable, filling, or holds anything else.
 *
 * Why a write on a copy collected here is not lost to a tombstone still held elsewhere:
 * lives (object.h). Known limit (as Cassandra's gc_grace): a node away from the cluster
 * for longer than the age may hold an older copy of a collected key, so it must come back
 * with a new data directory (it then refills).
 */
#include <string.h>

#include "ap/internal.h"
#include "base/assert.h"
#include "crdt/hlc.h"

#define AP_REAP_SCAN_KEYS 1024  /* entries a tick's scan looks at, at most (about) */
#define AP_REAP_INFLIGHT_MAX 64 /* rounds in flight */
#define AP_REAP_PASS_MS 1000    /* a pass over the db ended: the next not before this */
#define AP_REAP_DECODE_MAX 4096 /* larger objects (not tombstones): their expiry alone */

void ap_reap_init(struct ap *ap) {
    buf_init(&ap->reap.keys);
}

void ap_reap_deinit(struct ap *ap) {
    buf_deinit(&ap->reap.keys);
}

/* Whether a stored object (its encoding) may be collected, by this node's clock: deleted,
 * or expired, longer ago than the age. */
static bool ap_reap_collectable(const struct ap *ap, const uint8_t *data, size_t bytes) {
    uint64_t now = ap->store.now_ms, age = ap->config.ap_tombstone_ms;
    struct ap_object o;
    ap_object_init(&o);
    bool yes = false;
    if (bytes > AP_REAP_DECODE_MAX) { /* a tombstone is small: only an old expiry counts */
        yes = ap_object_peek(data, bytes, &o) == 0 && o.expiry.at_ms != AP_EXPIRY_NEVER &&
              now > age && o.expiry.at_ms <= now - age;
    } else if (ap_object_decode(data, bytes, &o) == 0 && now > age) {
        bool expired = o.expiry.at_ms != AP_EXPIRY_NEVER && o.expiry.at_ms <= now - age;
        bool deleted =
            ap_object_is_tombstone(&o) && hlc_wall_ms(ap_object_newest_ts(&o)) <= now - age;
        yes = expired || deleted;
    }
    ap_object_deinit(&o);
    return yes;
}

/* This replica's copy of key, if it is the one of digest and collectable: its encoding. */
static bool ap_reap_same(struct ap *ap, const uint8_t *key, size_t bytes, uint64_t digest) {
    struct db_entry *e = db_find(ap->store.db, key, bytes);
    if (e == NULL || db_entry_type(e) != VALUE_STRING) return false;
    size_t n = 0;
    const uint8_t *v = db_entry_string(e, &n);
    return ap_tree_digest(v, n) == digest && ap_reap_collectable(ap, v, n);
}

/* Removes this node's copy of key if it is still the one of digest. */
static void ap_reap_remove(struct ap *ap, const uint8_t *key, size_t bytes, uint64_t digest) {
    if (!ap_reap_same(ap, key, bytes, digest)) return;
    if (ap_store_remove(ap, key, bytes)) ap->stats.tombstones_collected++;
}

struct ap_reap_scan {
    struct ap *ap;
    uint32_t looked, found;
};

static void ap_reap_scan_entry(void *ctx, struct db_entry *e) {
    struct ap_reap_scan *s = ctx;
    s->looked++;
    if (db_entry_type(e) != VALUE_STRING) return;
    if (s->ap->reap.inflight + s->found >= AP_REAP_INFLIGHT_MAX) return;
    size_t kb = 0, vb = 0;
    const uint8_t *key = db_entry_key(e, &kb);
    const uint8_t *v = db_entry_string(e, &vb);
    if (!ap_reap_collectable(s->ap, v, vb)) return;
    struct buf *keys = &s->ap->reap.keys;
    buf_append_u32le(keys, (uint32_t)kb);
    buf_append(keys, key, kb);
    buf_append_u64le(keys, ap_tree_digest(v, vb));
    s->found++;
}

/* A round for key (borrowed) whose copy here has digest: the other replicas are asked, or
 * with none, it is collected now. */
static void ap_reap_start(struct ap *ap, const uint8_t *key, size_t bytes, uint64_t digest) {
    struct resp_arg k = {key, bytes};
    struct ap_plan pl;
    ap_plan(ap, &k, &pl);
    if (!pl.self_replica) return; /* a stray copy: the handoff's */
    uint32_t others = 0;
    for (uint32_t i = 0; i < pl.n; i++) {
        if (pl.walk[i] == ap->config.id) continue;
        if (!ap_reachable(ap, pl.walk[i])) return; /* every replica must answer */
        others++;
    }
    if (others == 0) {
        ap_reap_remove(ap, key, bytes, digest);
        return;
    }
    struct ap_pending *p = ap_pending_new(ap, AP_PENDING_REAP);
    if (p == NULL) return;
    ap->stats.reap_asks++;
    ap->reap.inflight++;
    p->digest = digest;
    buf_append(&p->key, key, bytes);
    struct ap_msg m = {.kind = AP_MSG_REAP_ASK, .req = p->req, .digest = digest};
    m.key = (struct ap_bytes){key, bytes};
    for (uint32_t i = 0; i < pl.n; i++) {
        if (pl.walk[i] == ap->config.id) continue;
        p->answered_digest[p->asked_count] = 0;
        p->asked[p->asked_count++] = pl.walk[i];
        ap_send(ap, pl.walk[i], &m);
    }
}

void ap_reap_tick(struct ap *ap) {
    struct ap_reap *r = &ap->reap;
    if (!ap->table_agreed || ap->filling_count > 0 || ap->handoff.active ||
        ap_members_rebuilding(ap) || ap->store.mono_ms < r->next_ms ||
        r->inflight >= AP_REAP_INFLIGHT_MAX)
        return;
    struct ap_reap_scan scan = {.ap = ap};
    buf_clear(&r->keys);
    do {
        r->cursor = db_scan(ap->store.db, r->cursor, ap_reap_scan_entry, &scan);
    } while (r->cursor != 0 && scan.looked < AP_REAP_SCAN_KEYS);
    if (r->cursor == 0) r->next_ms = ap->store.mono_ms + AP_REAP_PASS_MS;
    /* After the scan: a round may remove a key at once (no other replica). */
    for (size_t pos = 0; pos < r->keys.len;) {
        uint32_t kb = base_load_u32le(r->keys.data + pos);
        const uint8_t *key = r->keys.data + pos + 4;
        uint64_t digest = base_load_u64le(key + kb);
        ap_reap_start(ap, key, kb, digest);
        pos += 4 + kb + 8;
    }
}

void ap_reap_message(struct ap *ap, uint32_t from, const struct ap_msg *m) {
    if (m->kind == AP_MSG_REAP) {
        ap_reap_remove(ap, m->key.data, m->key.bytes, m->digest);
        return;
    }
    ASSERT(m->kind == AP_MSG_REAP_ASK);
    struct ap_msg reply = {.kind = AP_MSG_REAP_STATE, .req = m->req, .status = AP_STATUS_OK};
    uint64_t h = ap_ring_key_hash(m->key.data, m->key.bytes);
    if (ap_store_digest(ap, m->key.data, m->key.bytes) == 0) reply.status = AP_STATUS_NONE;
    if (ap_members_filling(ap, ap_ring_arc(&ap->ring, h)) ||
        (reply.status == AP_STATUS_OK && !ap_reap_same(ap, m->key.data, m->key.bytes, m->digest)))
        reply.status = AP_STATUS_DIFFERENT; /* another state, too young, or still arriving */
    ap_send(ap, from, &reply);
}

void ap_reap_answer(struct ap *ap, uint32_t from, struct ap_pending *p, const struct ap_msg *m) {
    bool done = m == NULL; /* given up: the tombstone stays, the next pass tries again */
    if (!done) {
        uint32_t i = ap_asked_index(p, from);
        if (i == p->asked_count || p->answered_digest[i] != 0) return; /* not asked, or twice */
        p->answered_digest[i] = 1 + m->status;
        done = m->status != AP_STATUS_OK && m->status != AP_STATUS_NONE;
        p->got++;
    }
    if (!done && p->got < p->asked_count) return;
    if (!done) { /* every replica holds the same or nothing: collected everywhere */
        struct ap_msg reap = {.kind = AP_MSG_REAP, .digest = p->digest};
        reap.key = (struct ap_bytes){p->key.data, p->key.len};
        for (uint32_t i = 0; i < p->asked_count; i++)
            if (p->answered_digest[i] == 1 + AP_STATUS_OK) ap_send(ap, p->asked[i], &reap);
        ap_reap_remove(ap, p->key.data, p->key.len, p->digest);
    }
    ASSERT(ap->reap.inflight > 0);
    ap->reap.inflight--;
    ap_pending_free(ap, p);
}
