/*
 * The AP ring follows the cluster's members (docs/engines.md, "Members"). The CP engine
 * agrees on them; each change reaches this engine through the node (engine.h, members),
 * and a list that makes another ring (ring.h: only the keys whose replica set gains or
 * loses a member move) starts two things:
 *
 * - Filling. For each arc where this node is a replica now and was not before (for some
 *   of the arc's keys), its copy is incomplete until anti-entropy has found it equal to
 *   each replica that already held the arc. Until then its copy counts toward no read's r:
 *   as a coordinator it asks one more replica, and its GET replies say FILLING (merged,
 *   not counted). Writes count as usual: what it acknowledges is on its disk.
 * - Handoff. Every key this node holds and no longer replicates is sent to each of its
 *   replicas (a PUT, acknowledged once durable there); once all of them acknowledged, and
 *   the object here is still the one sent, it is removed here. A replica unreachable, a
 *   refusal or a timeout leave the key, and another pass follows. Keys move while reads and
 *   writes go on; a removed node hands all its keys to the others.
 *
 * A pass also runs at every start: a crash in the middle of one leaves keys to hand.
 */
#include <stdlib.h>
#include <string.h>

#include "ap/internal.h"
#include "base/assert.h"

#define AP_HANDOFF_INFLIGHT_MAX 256 /* handoffs in flight (soft: a scan step may add a few) */
#define AP_HANDOFF_SCAN_KEYS 4096   /* keys a tick's scan looks at, at most (about) */
#define AP_HANDOFF_RETRY_MS 1000    /* a pass that left keys: the next after this long */
#define AP_REBUILD_SLICE_KEYS 8192  /* keys a step of a new ring's tree rebuild adds */

void ap_members_init(struct ap *ap) {
    buf_init(&ap->handoff.keys);
    ap->handoff.active = true;
}

void ap_members_deinit(struct ap *ap) {
    buf_deinit(&ap->handoff.keys);
    if (ap->rebuild.dirty != NULL) db_free(ap->rebuild.dirty);
    ap->rebuild = (struct ap_rebuild){0};
    free(ap->filling);
    ap->filling = NULL;
    ap->filling_count = 0;
}

static bool ap_members_in(const uint32_t *walk, uint32_t n, uint32_t node) {
    for (uint32_t i = 0; i < n; i++)
        if (walk[i] == node) return true;
    return false;
}

/* The peers of the new list: those kept keep their state (reachability, hint cursor,
 * forwards seen, anti-entropy), the new ones start fresh, the gone ones are dropped. */
static void ap_members_peers(struct ap *ap, const uint32_t *ids, uint32_t count) {
    struct ap_peer peers[NODE_PEERS_MAX];
    struct ap_ae_peer ae[NODE_PEERS_MAX];
    bool kept[NODE_PEERS_MAX] = {false};
    uint32_t n = 0;
    for (uint32_t i = 0; i < count && n < NODE_PEERS_MAX; i++) {
        if (ids[i] == ap->config.id) continue;
        uint32_t j = ap_peer_index(ap, ids[i]);
        memset(&ae[n], 0, sizeof(ae[n]));
        if (j != AP_PEER_NONE) {
            peers[n] = ap->peers[j];
            ae[n] = ap->ae.peers[j];
            kept[j] = true;
        } else {
            peers[n] = (struct ap_peer){.id = ids[i]};
        }
        n++;
    }
    for (uint32_t j = 0; j < ap->peer_count; j++)
        if (!kept[j]) free(ap->peers[j].forwards_seen);
    memcpy(ap->peers, peers, n * sizeof(peers[0]));
    memcpy(ap->ae.peers, ae, n * sizeof(ae[0]));
    ap->peer_count = n;
}

/* Marks the replicas repl[0..rn) of a new arc that did not replicate, in the old ring, the
 * keys at `at` (the old arc holding it); this node too when it was filling that old arc. */
static void ap_members_newly(const struct ap *ap, const struct ap_ring *old,
                             const uint16_t *old_filling, uint64_t at, const uint32_t *repl,
                             uint32_t rn, bool *newly) {
    uint32_t walk[NODE_PEERS_MAX];
    uint32_t count = ap_ring_walk(old, at, walk);
    /* For each keyspace's n: a member in the first n of the new walk and not of the old
     * one is new to that keyspace's keys here. */
    for (uint32_t i = 0; i < ap->config.keyspace_count; i++) {
        const struct keyspace *ks = &ap->config.keyspaces[i];
        if (keyspace_mode_of(ks) != KEYSPACE_MODE_AP) continue;
        uint32_t kn = keyspace_ap_of(ks).n, on = kn < count ? kn : count;
        for (uint32_t k = 0; k < rn && k < kn; k++)
            if (!ap_members_in(walk, on, repl[k])) newly[k] = true;
    }
    uint32_t n = ap_ae_replica_count(ap);
    if (n > count) n = count;
    bool self_filling =
        old_filling != NULL && old->point_count > 0 && old_filling[ap_ring_arc(old, at)] != 0;
    for (uint32_t k = 0; k < rn; k++)
        if (!ap_members_in(walk, n, repl[k]) || (repl[k] == ap->config.id && self_filling))
            newly[k] = true;
}

/* The filling bits of arc a: this node is newly one of its replicas; the peers that are
 * not newly ones hold what it lacks. */
static uint16_t ap_members_fill_bits(const struct ap *ap, const uint32_t *repl, uint32_t rn,
                                     const bool *newly) {
    uint32_t self = rn;
    for (uint32_t k = 0; k < rn; k++)
        if (repl[k] == ap->config.id) self = k;
    if (self == rn || !newly[self]) return 0;
    uint16_t bits = 0;
    for (uint32_t k = 0; k < rn; k++) {
        uint32_t i = k == self || newly[k] ? AP_PEER_NONE : ap_peer_index(ap, repl[k]);
        if (i != AP_PEER_NONE) bits = (uint16_t)(bits | (1u << i));
    }
    return bits;
}

/* Which arcs of the new ring this node must fill: an arc's keys lay, in the old ring, in
 * the old arc holding its point and in those whose points fall inside it. */
static void ap_members_fill_plan(struct ap *ap, const struct ap_ring *old, uint16_t *old_filling) {
    uint32_t arcs = ap->ring.point_count, n = ap_ae_replica_count(ap);
    uint32_t(*repl)[NODE_PEERS_MAX] = base_calloc(arcs + 1, sizeof(*repl));
    bool(*newly)[NODE_PEERS_MAX] = base_calloc(arcs + 1, sizeof(*newly));
    uint32_t *rn = base_calloc(arcs + 1, sizeof(*rn));
    for (uint32_t a = 0; a < arcs; a++) {
        uint32_t count = ap_ring_walk(&ap->ring, ap->ring.points[a].at, repl[a]);
        rn[a] = n < count ? n : count;
        ap_members_newly(ap, old, old_filling, ap->ring.points[a].at, repl[a], rn[a], newly[a]);
    }
    for (uint32_t q = 0; q < old->point_count && arcs > 0; q++) {
        uint32_t a = ap_ring_arc(&ap->ring, old->points[q].at);
        ap_members_newly(ap, old, old_filling, old->points[q].at, repl[a], rn[a], newly[a]);
    }
    free(old_filling);
    ap->filling = base_calloc(arcs + 1, sizeof(*ap->filling));
    ap->filling_count = 0;
    for (uint32_t a = 0; a < arcs; a++) {
        ap->filling[a] = ap_members_fill_bits(ap, repl[a], rn[a], newly[a]);
        ap->filling_count += ap->filling[a] != 0;
    }
    free(repl);
    free(newly);
    free(rn);
}

/* The key's replicas (walk[0..*n)); false when this node is one of them. */
static bool ap_members_not_mine(const struct ap *ap, const uint8_t *key, size_t bytes,
                                uint32_t *walk, uint32_t *n) {
    struct keyspace ks = ap_keyspace_of(ap, key, bytes);
    uint32_t count = ap_ring_walk(&ap->ring, ap_ring_key_hash(key, bytes), walk);
    *n = ks.n < count ? ks.n : count;
    return !ap_members_in(walk, *n, ap->config.id);
}

/* ---- the tree of a new ring, a slice at a time ---- */

bool ap_members_rebuilding(const struct ap *ap) {
    return ap->rebuild.active;
}

void ap_members_saved(struct ap *ap, const uint8_t *key, size_t bytes) {
    if (ap->stats.ring_changes == 0 || ap->handoff.active) return;
    if (!ap_members_in(ap->ring.nodes, ap->ring.node_count, ap->config.id)) return;
    uint32_t walk[NODE_PEERS_MAX], n;
    if (!ap_members_not_mine(ap, key, bytes, walk, &n)) return;
    ap->handoff.active = true; /* a stray (a PUT from an older ring, a late repair) */
    ap->handoff.cursor = 0;
    ap->handoff.next_ms = ap->store.mono_ms + AP_HANDOFF_RETRY_MS;
}

void ap_members_dirty(struct ap *ap, const uint8_t *key, size_t bytes) {
    ASSERT(ap->rebuild.active);
    (void)db_put_string(ap->rebuild.dirty, key, bytes, (const uint8_t *)"", 0, DB_NO_EXPIRE);
}

static void ap_members_rebuild_start(struct ap *ap) {
    ap_tree_deinit(&ap->tree);
    ap_tree_init(&ap->tree, &ap->ring);
    ap_ae_index_reset(ap);
    if (ap->rebuild.dirty != NULL) db_free(ap->rebuild.dirty);
    ap->rebuild = (struct ap_rebuild){.active = true, .dirty = db_new(ap->config.hash_seed)};
}

struct ap_members_slice {
    struct ap *ap;
    uint32_t looked;
};

static void ap_members_slice_entry(void *ctx, struct db_entry *e) {
    struct ap_members_slice *s = ctx;
    s->looked++;
    size_t bytes;
    const uint8_t *key = db_entry_key(e, &bytes);
    if (db_find(s->ap->rebuild.dirty, key, bytes) == NULL) ap_store_tree_add(s->ap, e);
}

/* A dirty key, as the db holds it now (absent: removed). */
static void ap_members_dirty_entry(void *ctx, struct db_entry *e) {
    struct ap *ap = ctx;
    size_t bytes;
    const uint8_t *key = db_entry_key(e, &bytes);
    struct db_entry *now = db_find(ap->store.db, key, bytes);
    if (now != NULL) ap_store_tree_add(ap, now);
}

/* One slice of the rebuild (about AP_REBUILD_SLICE_KEYS keys); at the end, the dirty keys. */
static void ap_members_rebuild_step(struct ap *ap) {
    struct ap_rebuild *r = &ap->rebuild;
    struct ap_members_slice slice = {.ap = ap};
    do {
        r->cursor = db_scan(ap->store.db, r->cursor, ap_members_slice_entry, &slice);
    } while (r->cursor != 0 && slice.looked < AP_REBUILD_SLICE_KEYS);
    if (r->cursor != 0) return;
    r->active = false; /* ap_store_tree_add below adds, it does not mark */
    uint64_t cursor = 0;
    do {
        cursor = db_scan(r->dirty, cursor, ap_members_dirty_entry, ap);
    } while (cursor != 0);
    ap_trace(ap, "ap: the new ring's tree holds %zu keys (%zu saved meanwhile)",
             db_count(ap->store.db), db_count(r->dirty));
    db_free(r->dirty);
    r->dirty = NULL;
}

void ap_members_change(struct ap *ap, const uint32_t *ids, uint32_t count) {
    struct ap_ring *ring = base_calloc(1, sizeof(*ring));
    if (count == 0 || ap_ring_build(ring, ids, count) != 0 || ring->version == ap->ring.version) {
        free(ring);
        return;
    }
    struct ap_ring *old = base_calloc(1, sizeof(*old));
    *old = ap->ring;
    ap->ring = *ring;
    free(ring);
    uint16_t *old_filling = ap->filling;
    ap->filling = NULL;
    ap_members_peers(ap, ids, count);
    size_t dropped = ap_hints_drop_others(&ap->hints, ids, count);
    if (dropped > 0)
        ap_trace(ap, "ap: %zu hints held for nodes no longer members dropped", dropped);
    ap_members_rebuild_start(ap);
    ap_ae_ring_changed(ap);
    ap_members_fill_plan(ap, old, old_filling);
    free(old);
    ap->handoff = (struct ap_handoff){
        .active = true, .inflight = ap->handoff.inflight, .keys = ap->handoff.keys};
    ap->stats.ring_changes++;
    ap_trace(ap, "ap: %u members make a new ring: %u of its arcs to fill here, keys to hand off",
             count, ap->filling_count);
}

void ap_members_fill_all(struct ap *ap) {
    uint32_t others[NODE_PEERS_MAX], count = 0;
    for (uint32_t i = 0; i < ap->ring.node_count; i++)
        if (ap->ring.nodes[i] != ap->config.id) others[count++] = ap->ring.nodes[i];
    struct ap_ring *without = base_calloc(1, sizeof(*without));
    if (count > 0 && ap_ring_build(without, others, count) == 0) {
        free(ap->filling);
        ap->filling = NULL;
        ap_members_fill_plan(ap, without, NULL);
        for (uint32_t i = 0; i < ap->peer_count; i++) /* every peer, both ways */
            ap->ae.peers[i].sweep_left = ap->tree.arc_count;
        ap_trace(ap, "ap: a new data directory on a member: %u arcs to fill here",
                 ap->filling_count);
    }
    free(without);
}

bool ap_members_filling(const struct ap *ap, uint32_t arc) {
    return ap->filling_count > 0 && arc < ap->ring.point_count && ap->filling[arc] != 0;
}

void ap_members_synced(struct ap *ap, uint32_t arc, uint32_t i) {
    if (!ap_members_filling(ap, arc) || (ap->filling[arc] & (1u << i)) == 0) return;
    ap->filling[arc] = (uint16_t)(ap->filling[arc] & ~(1u << i));
    if (ap->filling[arc] != 0) return;
    if (--ap->filling_count == 0) ap_trace(ap, "ap: every arc new to this node is filled");
}

/* ---- handoff ---- */

struct ap_members_scan {
    struct ap *ap;
    uint32_t looked;
};

static void ap_members_scan_entry(void *ctx, struct db_entry *e) {
    struct ap_members_scan *scan = ctx;
    struct ap *ap = scan->ap;
    scan->looked++;
    if (db_entry_type(e) != VALUE_STRING) return;
    size_t bytes;
    const uint8_t *key = db_entry_key(e, &bytes);
    uint32_t walk[NODE_PEERS_MAX], n;
    if (!ap_members_not_mine(ap, key, bytes, walk, &n)) return;
    buf_append_u32le(&ap->handoff.keys, (uint32_t)bytes);
    buf_append(&ap->handoff.keys, key, bytes);
}

/* Sends key's object to each of its replicas, all reachable, as one pending handoff. */
static void ap_members_hand(struct ap *ap, const uint8_t *key, size_t bytes) {
    uint32_t walk[NODE_PEERS_MAX], n;
    struct db_entry *e = db_find(ap->store.db, key, bytes);
    if (e == NULL || db_entry_type(e) != VALUE_STRING) return;
    if (!ap_members_not_mine(ap, key, bytes, walk, &n)) return;
    bool all = n > 0;
    for (uint32_t k = 0; k < n; k++) all &= ap_reachable(ap, walk[k]);
    struct ap_pending *p = all ? ap_pending_new(ap, AP_PENDING_HANDOFF) : NULL;
    if (p == NULL) {
        ap->handoff.again = true;
        return;
    }
    struct ap_msg m = {.kind = AP_MSG_PUT, .req = p->req, .flags = AP_PUT_ACK_WANTED};
    m.key = (struct ap_bytes){key, bytes};
    m.object.data = db_entry_string(e, &m.object.bytes);
    p->digest = ap_tree_digest(m.object.data, m.object.bytes);
    p->need = n;
    buf_append(&p->key, key, bytes);
    for (uint32_t k = 0; k < n; k++) {
        p->answered_digest[p->asked_count] = 0;
        p->asked[p->asked_count++] = walk[k];
        ap_send(ap, walk[k], &m);
    }
    ap->handoff.inflight++;
}

void ap_members_handoff_answer(struct ap *ap, uint32_t from, struct ap_pending *p,
                               const struct ap_msg *m) {
    if (m != NULL) {
        uint32_t i = ap_asked_index(p, from);
        if (i == p->asked_count || p->answered_digest[i] != 0) return; /* not asked, or twice */
        p->answered_digest[i] = 1;
        if (m->status == AP_STATUS_OK && ++p->got < p->need) return;
    } else {
        ap->stats.handoff_timeouts++;
    }
    uint32_t walk[NODE_PEERS_MAX], n;
    bool done = m != NULL && m->status == AP_STATUS_OK && p->got == p->need;
    /* Removed only if still not this node's and still what every replica acknowledged. */
    if (done && ap_members_not_mine(ap, p->key.data, p->key.len, walk, &n) &&
        ap_store_digest(ap, p->key.data, p->key.len) == p->digest &&
        ap_store_remove(ap, p->key.data, p->key.len)) {
        ap->stats.keys_handed_off++;
    } else {
        ap->handoff.again = true;
    }
    ASSERT(ap->handoff.inflight > 0);
    ap->handoff.inflight--;
    ap_pending_free(ap, p);
}

/* A scan's keys: each handed off. */
static void ap_members_hand_found(struct ap *ap) {
    const struct buf *keys = &ap->handoff.keys;
    for (size_t pos = 0; pos + 4 <= keys->len;) {
        uint32_t len = base_load_u32le(keys->data + pos);
        ap_members_hand(ap, keys->data + pos + 4, len);
        pos += 4 + len;
    }
}

void ap_members_rebuild_tick(struct ap *ap) {
    if (ap->rebuild.active) ap_members_rebuild_step(ap);
}

void ap_members_tick(struct ap *ap) {
    struct ap_handoff *h = &ap->handoff;
    if (!h->active || ap->store.mono_ms < h->next_ms) return;
    if (ap->peer_count > 0 && !ap->table_agreed) return; /* replicas by the agreed n only */
    if (!ap_members_in(ap->ring.nodes, ap->ring.node_count, ap->config.id)) {
        /* Removed: no member hears it any more, so nothing it sends is acknowledged; its
         * keys stay here (the others hold every w = quorum write, docs/engines.md). */
        h->active = false;
        ap_trace(ap, "ap: this node is not a member: it hands off nothing");
        return;
    }
    struct ap_members_scan scan = {.ap = ap};
    while (h->inflight < AP_HANDOFF_INFLIGHT_MAX && scan.looked < AP_HANDOFF_SCAN_KEYS) {
        buf_clear(&h->keys);
        h->cursor = db_scan(ap->store.db, h->cursor, ap_members_scan_entry, &scan);
        ap_members_hand_found(ap);
        if (h->cursor != 0) continue;
        /* A pass ended: another follows while anything is left or in flight. */
        h->active = h->again || h->inflight > 0;
        h->again = false;
        h->next_ms = ap->store.mono_ms + AP_HANDOFF_RETRY_MS;
        if (!h->active && ap->stats.keys_handed_off > 0)
            ap_trace(ap, "ap: handoff done: %llu keys handed to their replicas in all",
                     (unsigned long long)ap->stats.keys_handed_off);
        return;
    }
}
