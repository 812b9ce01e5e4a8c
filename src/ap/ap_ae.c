/*
 * Anti-entropy (docs/engines.md, "Anti-entropy"): two replicas of a ring arc compare the
 * arc's AP_TREE_BUCKETS bucket hashes (tree.h), then the keys of the buckets that differ,
 * then move the objects that differ, both ways. An object arrives as a PUT marked
 * AP_PUT_AE and goes through the replica's PUT (ap_replica.c: clock check, merge, save),
 * so a tombstone travels like any state and nothing deleted comes back; merge is a join,
 * so sending an object both ways, or twice, is harmless. No client read is involved.
 *
 * One exchange: this node (A) with a peer (B), for one arc both replicate.
 *   A -> B  AE_BUCKETS        A's 256 hashes of the arc (2 KB)
 *   B -> A  AE_BUCKETS REPLY  SAME (no hashes) when they are equal: the exchange ends;
 *                             else B's hashes
 *   A -> B  AE_KEYS           for a slice of the differing buckets, one per bucket: A's
 *                             keys in it and their object digests
 *   B -> A  PUT (AE)          B's keys of the bucket A did not list, and those it holds
 *                             with another digest
 *           AE_PULL           the listed keys B lacks or holds otherwise; always sent, it
 *                             is the answer to that AE_KEYS
 *   A -> B  PUT (AE)          what B pulled; once the slice is answered, the next slice
 * Messages between rings of other versions, or for an arc the two do not both replicate,
 * are ignored: the initiator gives up after AP_AE_TIMEOUT_MS without an answer, or
 * AP_AE_GAP_MS after the last answer of a slice when the rest do not come (lost).
 *
 * Bounds: one exchange in flight per peer; a slice lists at most AP_AE_SLICE_KEYS keys
 * (and a bucket at most AP_MSG_KEYS_MAX: an oversized bucket is listed a rotating window
 * at a time, marked TRUNCATED, and then B pushes only what differs among the listed, so the
 * window's pulls make progress); each side sends a peer at most AP_AE_PUSH_KEYS_MAX objects
 * and AP_AE_PUSH_BYTES_MAX bytes per exchange, the rest waits for the next exchange of the
 * arc (its buckets still differ). Pace, from the engine's ticks and mono_ms only: in sync,
 * one exchange per AP_AE_MS per node (peers and arcs in turn); a peer that becomes
 * reachable is swept (every arc once, one exchange per AP_AE_SWEEP_MS) by the lower id of
 * the two, and an exchange that found differences makes its pair sweep, chaining the next
 * exchange AP_AE_CHAIN_MS after the last began.
 *
 * An arc's replicas are the first n members of its walk, n the largest of the AP
 * keyspaces'. The tree mixes every keyspace's keys of an arc, so two nodes that are both
 * replicas of the arc for a large n but not of some key of a smaller-n keyspace see that
 * bucket differ for good: each side lists and pushes only the keys the other is a replica
 * of (by the key's own keyspace), so nothing goes astray, but such a pair lists those
 * buckets at every exchange (a tree per distinct n would remove that cost).
 *
 * The key index (struct ap_ae_slot): the keys of each (arc, bucket), kept by
 * ap_store_save, so listing a bucket costs its keys, never a scan of the db. It holds a
 * copy of every key (4 bytes + the key each).
 */
#include <stdlib.h>
#include <string.h>

#include "ap/internal.h"
#include "base/assert.h"

/* An arc's walk, and where this node and a peer are in it. */
struct ap_ae_walk {
    uint32_t nodes[NODE_PEERS_MAX];
    uint32_t count;   /* members */
    uint32_t n;       /* the arc's replicas: nodes[0..n) */
    uint32_t self_at; /* positions in nodes; count when absent */
    uint32_t peer_at;
};

void ap_ae_init(struct ap *ap) {
    struct ap_ae *ae = &ap->ae;
    memset(ae, 0, sizeof(*ae));
    ae->keys = base_calloc(AP_MSG_KEYS_MAX, sizeof(*ae->keys));
    ae->digests = base_calloc(AP_MSG_KEYS_MAX, sizeof(*ae->digests));
    ae->listed = base_calloc(AP_MSG_KEYS_MAX, sizeof(*ae->listed));
    /* Where each peer's sweep begins: spread, so that two nodes sweeping the same third
     * repair different arcs first. */
    uint32_t self = 0;
    for (uint32_t i = 0; i < ap->ring.node_count; i++)
        if (ap->ring.nodes[i] == ap->config.id) self = i;
    for (uint32_t i = 0; i < ap->peer_count; i++)
        ae->peers[i].cursor =
            ap->ring.node_count > 0 ? self * ap->ring.point_count / ap->ring.node_count : 0;
    ae->next_ms = 0;
}

static void ap_ae_index_free(struct ap_ae *ae) {
    for (uint32_t i = 0; i < ae->slot_count; i++) buf_deinit(&ae->slots[i].keys);
    free(ae->slots);
    ae->slots = NULL;
    ae->slot_count = 0;
}

void ap_ae_deinit(struct ap *ap) {
    ap_ae_index_free(&ap->ae);
    free(ap->ae.keys);
    free(ap->ae.digests);
    free(ap->ae.listed);
    memset(&ap->ae, 0, sizeof(ap->ae));
}

void ap_ae_index_reset(struct ap *ap) {
    struct ap_ae *ae = &ap->ae;
    ap_ae_index_free(ae);
    ae->slot_count = ap->tree.arc_count * AP_TREE_BUCKETS;
    if (ae->slot_count > 0) ae->slots = base_calloc(ae->slot_count, sizeof(*ae->slots));
    for (uint32_t i = 0; i < ae->slot_count; i++) buf_init(&ae->slots[i].keys);
}

static struct ap_ae_slot *ap_ae_slot(struct ap *ap, uint32_t arc, uint32_t bucket) {
    ASSERT(arc < ap->tree.arc_count);
    ASSERT(bucket < AP_TREE_BUCKETS);
    ASSERT(ap->ae.slot_count == ap->tree.arc_count * AP_TREE_BUCKETS);
    return &ap->ae.slots[(size_t)arc * AP_TREE_BUCKETS + bucket];
}

void ap_ae_index_add(struct ap *ap, uint32_t arc, uint64_t key_hash, const uint8_t *key,
                     size_t bytes) {
    struct ap_ae_slot *s = ap_ae_slot(ap, arc, ap_tree_bucket(key_hash));
    ASSERT(bytes <= UINT32_MAX);
    buf_append_u32le(&s->keys, (uint32_t)bytes);
    buf_append(&s->keys, key, bytes);
    s->count++;
    ASSERT(s->count > 0);
}

bool ap_ae_index_has(struct ap *ap, uint32_t arc, uint64_t key_hash, const uint8_t *key,
                     size_t bytes) {
    const struct ap_ae_slot *s = ap_ae_slot(ap, arc, ap_tree_bucket(key_hash));
    for (size_t pos = 0; pos < s->keys.len;) {
        uint32_t len = base_load_u32le(s->keys.data + pos);
        if (len == bytes && memcmp(s->keys.data + pos + 4, key, bytes) == 0) return true;
        pos += 4 + len;
    }
    return false;
}

void ap_ae_index_remove(struct ap *ap, uint32_t arc, uint64_t key_hash, const uint8_t *key,
                        size_t bytes) {
    struct ap_ae_slot *s = ap_ae_slot(ap, arc, ap_tree_bucket(key_hash));
    size_t pos = 0;
    while (pos < s->keys.len) {
        uint32_t len = base_load_u32le(s->keys.data + pos);
        size_t next = pos + 4 + len;
        if (len == bytes && memcmp(s->keys.data + pos + 4, key, bytes) == 0) {
            memmove(s->keys.data + pos, s->keys.data + next, s->keys.len - next);
            s->keys.len -= next - pos;
            s->count--;
            return;
        }
        pos = next;
    }
}

void ap_ae_ring_changed(struct ap *ap) {
    for (uint32_t i = 0; i < ap->peer_count; i++) {
        struct ap_ae_peer *p = &ap->ae.peers[i];
        p->active = false; /* its arc is of the old ring: late answers find nothing */
        p->diff_count = p->diff_at = p->answers_due = 0;
        p->sweep_left = ap->tree.arc_count;
        p->next_ms = ap->store.mono_ms;
        if (p->cursor >= ap->tree.arc_count) p->cursor = 0;
    }
}

/* The key at pos of a slot's records; returns the next record's position. */
static size_t ap_ae_slot_key(const struct ap_ae_slot *s, size_t pos, struct resp_arg *key) {
    ASSERT(pos + 4 <= s->keys.len);
    uint32_t len = base_load_u32le(s->keys.data + pos);
    ASSERT(pos + 4 + len <= s->keys.len);
    *key = (struct resp_arg){.data = s->keys.data + pos + 4, .bytes = len};
    return pos + 4 + len;
}

/* ---- arcs and replicas ---- */

/* The replicas an arc has for anti-entropy: the largest n of the AP keyspaces (their
 * keys share the arc's tree). */
uint32_t ap_ae_replica_count(const struct ap *ap) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < ap->config.keyspace_count; i++) {
        const struct keyspace *ks = &ap->config.keyspaces[i];
        if (keyspace_mode_of(ks) != KEYSPACE_MODE_AP) continue;
        uint32_t kn = keyspace_ap_of(ks).n;
        if (kn > n) n = kn;
    }
    return n > 0 ? n : KEYSPACE_N_DEFAULT;
}

static uint32_t ap_ae_walk_at(const struct ap_ae_walk *w, uint32_t node) {
    for (uint32_t i = 0; i < w->count; i++)
        if (w->nodes[i] == node) return i;
    return w->count;
}

static void ap_ae_walk(const struct ap *ap, uint32_t arc, uint32_t peer, struct ap_ae_walk *w) {
    ASSERT(arc < ap->ring.point_count);
    /* A key of the arc hashes to at most its point, past the previous one: its walk
     * starts at the arc's point, as the point's own does. */
    w->count = ap_ring_walk(&ap->ring, ap->ring.points[arc].at, w->nodes);
    uint32_t n = ap_ae_replica_count(ap);
    w->n = n < w->count ? n : w->count;
    w->self_at = ap_ae_walk_at(w, ap->config.id);
    w->peer_at = ap_ae_walk_at(w, peer);
    ASSERT(w->n <= w->count);
}

static bool ap_ae_shared(const struct ap_ae_walk *w) {
    return w->self_at < w->n && w->peer_at < w->n;
}

/* Whether the node at position at of an arc's walk is one of key's replicas: the first n
 * of the walk, n that of the key's keyspace. */
static bool ap_ae_key_replica(const struct ap *ap, const struct ap_ae_walk *w, uint32_t at,
                              const struct resp_arg *key) {
    if (at >= w->n) return false;
    struct keyspace ks = ap_keyspace_of(ap, key->data, key->bytes);
    return at < ks.n;
}

/* An AE message that names this ring and an arc both nodes replicate. */
static bool ap_ae_valid(const struct ap *ap, uint32_t from, const struct ap_msg *m,
                        struct ap_ae_walk *w) {
    if (m->ring != ap->ring.version || m->arc >= ap->tree.arc_count) return false;
    ap_ae_walk(ap, m->arc, from, w);
    return ap_ae_shared(w);
}

void ap_ae_repaired_by(struct ap *ap, uint32_t from) {
    uint32_t i = ap_peer_index(ap, from);
    if (i != AP_PEER_NONE) ap->ae.peers[i].repaired = true;
}

/* ---- sending ---- */

static void ap_ae_send_buckets(struct ap *ap, uint32_t to, uint32_t arc, uint32_t flags) {
    struct ap_msg m = {.kind = AP_MSG_AE_BUCKETS, .arc = arc, .ring = ap->ring.version};
    m.flags = flags;
    if ((flags & AP_AE_SAME) == 0)
        memcpy(m.buckets, ap_tree_arc_buckets(&ap->tree, arc), sizeof(m.buckets));
    ap_send(ap, to, &m);
}

/* Sends key's object to peer i as an anti-entropy PUT, within the exchange's budget;
 * false once the budget is spent. A key the db does not hold is skipped. */
static bool ap_ae_push(struct ap *ap, uint32_t i, const struct resp_arg *key) {
    struct ap_ae_peer *p = &ap->ae.peers[i];
    if (p->sent_keys >= AP_AE_PUSH_KEYS_MAX || p->sent_bytes >= AP_AE_PUSH_BYTES_MAX) return false;
    struct db_entry *e = db_find(ap->store.db, key->data, key->bytes);
    if (e == NULL || db_entry_type(e) != VALUE_STRING) return true;
    struct ap_msg m = {.kind = AP_MSG_PUT, .flags = AP_PUT_AE};
    m.key = (struct ap_bytes){key->data, key->bytes};
    m.object.data = db_entry_string(e, &m.object.bytes);
    ap_send(ap, ap->peers[i].id, &m);
    p->sent_keys++;
    p->sent_bytes += key->bytes + m.object.bytes;
    ap->stats.ae_keys_sent++;
    return true;
}

/* Whether record j of a slot of count keys is in the window listed this time. */
static bool ap_ae_in_window(uint32_t j, uint32_t count, uint32_t skip) {
    if (count <= AP_MSG_KEYS_MAX) return true;
    return (j + count - skip) % count < AP_MSG_KEYS_MAX;
}

/* Sends AE_KEYS: this node's keys of (arc, bucket) that the peer (at w->peer_at) is a
 * replica of, with their digests. Returns how many were listed. */
static uint32_t ap_ae_send_keys(struct ap *ap, uint32_t to, const struct ap_ae_walk *w,
                                uint32_t arc, uint32_t bucket) {
    const struct ap_ae_slot *s = ap_ae_slot(ap, arc, bucket);
    struct ap_msg m = {.kind = AP_MSG_AE_KEYS, .arc = arc, .ring = ap->ring.version};
    m.bucket = bucket;
    m.args = ap->ae.keys;
    m.digests = ap->ae.digests;
    uint32_t skip = 0;
    if (s->count > AP_MSG_KEYS_MAX) {
        m.flags = AP_AE_TRUNCATED;
        skip = (uint32_t)((ap->ae.window++ * AP_MSG_KEYS_MAX) % s->count);
    }
    size_t pos = 0;
    for (uint32_t j = 0; pos < s->keys.len; j++) {
        struct resp_arg key;
        pos = ap_ae_slot_key(s, pos, &key);
        if (!ap_ae_in_window(j, s->count, skip)) continue;
        if (!ap_ae_key_replica(ap, w, w->peer_at, &key)) continue;
        uint64_t d = ap_store_digest(ap, key.data, key.bytes);
        if (d == 0) continue;
        ASSERT(m.count < AP_MSG_KEYS_MAX);
        m.args[m.count] = key;
        m.digests[m.count++] = d;
    }
    ap->stats.ae_keys_listed += m.count;
    ap_send(ap, to, &m);
    return m.count;
}

/* ---- the initiator ---- */

/* Starts an exchange with peer i for the next arc both replicate; false if there is none. */
static bool ap_ae_start(struct ap *ap, uint32_t i) {
    struct ap_ae_peer *p = &ap->ae.peers[i];
    uint32_t arcs = ap->tree.arc_count, id = ap->peers[i].id;
    ASSERT(!p->active);
    for (uint32_t k = 0; k < arcs; k++) {
        uint32_t arc = (p->cursor + k) % arcs;
        struct ap_ae_walk w;
        ap_ae_walk(ap, arc, id, &w);
        if (!ap_ae_shared(&w)) continue;
        p->cursor = (arc + 1) % arcs;
        p->active = true;
        p->differed = false;
        p->arc = arc;
        p->started_ms = ap->store.mono_ms;
        p->deadline_ms = ap->store.mono_ms + AP_AE_TIMEOUT_MS;
        p->next_ms = ap->store.mono_ms + AP_AE_SWEEP_MS;
        p->diff_count = p->diff_at = p->answers_due = 0;
        p->sent_keys = 0;
        p->sent_bytes = 0;
        p->repaired = false;
        if (p->sweep_left > 0) p->sweep_left--;
        ap->stats.ae_exchanges++;
        ap_ae_send_buckets(ap, id, arc, 0);
        return true;
    }
    p->sweep_left = 0; /* no arc in common */
    return false;
}

/* Starts peer i's next sweep exchange if one is due. */
static void ap_ae_start_due(struct ap *ap, uint32_t i) {
    const struct ap_ae_peer *p = &ap->ae.peers[i];
    if (p->active || p->sweep_left == 0 || !p->reachable) return;
    if (ap->store.mono_ms < p->next_ms) return;
    (void)ap_ae_start(ap, i);
}

/* The exchange with peer i ends (done, or given up). */
static void ap_ae_end(struct ap *ap, uint32_t i) {
    struct ap_ae_peer *p = &ap->ae.peers[i];
    ASSERT(p->active);
    p->active = false;
    if (p->differed) {
        /* Differences seldom come alone (a partition, a node down): sweep the pair's
         * arcs, back to back while they keep differing. */
        if (p->sweep_left == 0) p->sweep_left = ap->tree.arc_count;
        p->next_ms = p->started_ms + AP_AE_CHAIN_MS;
    } else if (ap->filling_count > 0) {
        p->next_ms = p->started_ms + AP_AE_CHAIN_MS; /* a fill's sweep: back to back too */
    }
}

static void ap_ae_done(struct ap *ap, uint32_t i) {
    ap_ae_end(ap, i);
    ap_ae_start_due(ap, i);
}

/* Lists the next slice of the differing buckets: whole buckets, up to AP_AE_SLICE_KEYS
 * keys (at least one bucket). */
static void ap_ae_send_slice(struct ap *ap, uint32_t i) {
    struct ap_ae_peer *p = &ap->ae.peers[i];
    uint32_t id = ap->peers[i].id, listed = 0;
    ASSERT(p->active && p->answers_due == 0 && p->diff_at < p->diff_count);
    struct ap_ae_walk w;
    ap_ae_walk(ap, p->arc, id, &w);
    while (p->diff_at < p->diff_count) {
        uint32_t bucket = p->diff[p->diff_at];
        const struct ap_ae_slot *s = ap_ae_slot(ap, p->arc, bucket);
        if (p->answers_due > 0 && listed + s->count > AP_AE_SLICE_KEYS) break;
        listed += ap_ae_send_keys(ap, id, &w, p->arc, bucket);
        p->diff_at++;
        p->answers_due++;
    }
    ASSERT(p->answers_due > 0);
    p->deadline_ms = ap->store.mono_ms + AP_AE_TIMEOUT_MS;
}

/* B's answer to this node's AE_BUCKETS: equal, or its hashes to diff. */
static void ap_ae_replied(struct ap *ap, uint32_t i, const struct ap_msg *m) {
    struct ap_ae_peer *p = &ap->ae.peers[i];
    if (!p->active || p->arc != m->arc || p->diff_count > 0) return; /* late, or not ours */
    uint32_t diff[AP_TREE_BUCKETS];
    uint32_t n = 0;
    if ((m->flags & AP_AE_SAME) == 0) n = ap_tree_diff(&ap->tree, m->arc, m->buckets, diff);
    if (n == 0) {
        ap_members_synced(ap, m->arc, i);
        ap_ae_done(ap, i);
        return;
    }
    for (uint32_t k = 0; k < n; k++) {
        ASSERT(diff[k] < AP_TREE_BUCKETS);
        p->diff[k] = (uint8_t)diff[k];
    }
    p->diff_count = n;
    p->differed = true;
    ap_ae_send_slice(ap, i);
}

/* B's AE_PULL: the objects it asked for, and one AE_KEYS of the slice answered. */
static void ap_ae_pulled(struct ap *ap, uint32_t i, const struct ap_msg *m) {
    struct ap_ae_peer *p = &ap->ae.peers[i];
    for (uint32_t k = 0; k < m->count; k++)
        if (!ap_ae_push(ap, i, &m->args[k])) break;
    if (!p->active || p->answers_due == 0) return;
    /* Answers come in a burst after the slice: once they stop, the rest were lost. */
    p->deadline_ms = ap->store.mono_ms + AP_AE_GAP_MS;
    if (--p->answers_due > 0) return;
    if (p->diff_at < p->diff_count) {
        ap_ae_send_slice(ap, i);
        return;
    }
    /* Every slice answered and nothing the peer pushed changed this node: it holds what
     * the peer holds of the keys it replicates (buckets may still differ: keys of a
     * smaller-n keyspace that only one of the two replicates). */
    if (!p->repaired) ap_members_synced(ap, p->arc, i);
    ap_ae_done(ap, i);
}

/* ---- the responder ---- */

/* A's AE_BUCKETS: an exchange begins. */
static void ap_ae_answer_buckets(struct ap *ap, uint32_t i, const struct ap_msg *m) {
    struct ap_ae_peer *p = &ap->ae.peers[i];
    uint32_t diff[AP_TREE_BUCKETS];
    p->sent_keys = 0; /* a new exchange: a new budget for what this node sends the peer */
    p->sent_bytes = 0;
    uint32_t n = ap_tree_diff(&ap->tree, m->arc, m->buckets, diff);
    if (n == 0) ap_members_synced(ap, m->arc, i);
    ap_ae_send_buckets(ap, ap->peers[i].id, m->arc, AP_AE_REPLY | (n == 0 ? AP_AE_SAME : 0));
}

static int ap_ae_order(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Pushes this node's keys of the bucket that A did not list (it lacks them). listed:
 * the listed keys' hashes, sorted. */
static void ap_ae_answer_unlisted(struct ap *ap, uint32_t i, const struct ap_ae_walk *w,
                                  const struct ap_msg *m, uint32_t listed) {
    const struct ap_ae_slot *s = ap_ae_slot(ap, m->arc, m->bucket);
    size_t pos = 0;
    while (pos < s->keys.len) {
        struct resp_arg key;
        pos = ap_ae_slot_key(s, pos, &key);
        uint64_t h = ap_ring_key_hash(key.data, key.bytes);
        if (bsearch(&h, ap->ae.listed, listed, sizeof(uint64_t), ap_ae_order) != NULL) continue;
        if (!ap_ae_key_replica(ap, w, w->peer_at, &key)) continue;
        if (!ap_ae_push(ap, i, &key)) return;
    }
}

/* A's AE_KEYS: push what differs or A lacks, pull what this node lacks, answer. */
static void ap_ae_answer_keys(struct ap *ap, uint32_t i, const struct ap_ae_walk *w,
                              const struct ap_msg *m) {
    struct ap_msg pull = {.kind = AP_MSG_AE_PULL, .args = ap->ae.keys};
    uint32_t listed = 0;
    bool room = true;
    for (uint32_t k = 0; k < m->count; k++) {
        const struct resp_arg *key = &m->args[k];
        uint64_t h = ap_ring_key_hash(key->data, key->bytes);
        if (ap_ring_arc(&ap->ring, h) != m->arc || ap_tree_bucket(h) != m->bucket) {
            ap->stats.bad_payloads++; /* not a key of that bucket: no node lists it */
            continue;
        }
        ap->ae.listed[listed++] = h;
        if (!ap_ae_key_replica(ap, w, w->self_at, key)) continue;
        uint64_t mine = ap_store_digest(ap, key->data, key->bytes);
        if (mine == m->digests[k]) continue;
        if (mine != 0 && room) room = ap_ae_push(ap, i, key);
        pull.args[pull.count++] = *key;
    }
    qsort(ap->ae.listed, listed, sizeof(uint64_t), ap_ae_order);
    if ((m->flags & AP_AE_TRUNCATED) == 0 && room) ap_ae_answer_unlisted(ap, i, w, m, listed);
    ap_send(ap, ap->peers[i].id, &pull);
}

/* ---- events ---- */

void ap_ae_message(struct ap *ap, uint32_t from, const struct ap_msg *m) {
    uint32_t i = ap_peer_index(ap, from);
    struct ap_ae_walk w;
    /* While a new ring's tree is rebuilt, nothing is compared (the peer's exchange times
     * out, and the next one finds this node ready). */
    if (i == AP_PEER_NONE || ap->tree.arc_count == 0 || ap_members_rebuilding(ap)) return;
    switch (m->kind) {
    case AP_MSG_AE_BUCKETS:
        if (!ap_ae_valid(ap, from, m, &w)) return;
        if ((m->flags & AP_AE_REPLY) != 0)
            ap_ae_replied(ap, i, m);
        else
            ap_ae_answer_buckets(ap, i, m);
        return;
    case AP_MSG_AE_KEYS:
        if (ap_ae_valid(ap, from, m, &w)) ap_ae_answer_keys(ap, i, &w, m);
        return;
    case AP_MSG_AE_PULL:
        ap_ae_pulled(ap, i, m);
        return;
    default:
        UNREACHABLE();
    }
}

static void ap_ae_tick_peer(struct ap *ap, uint32_t i) {
    struct ap_ae_peer *p = &ap->ae.peers[i];
    uint32_t id = ap->peers[i].id;
    bool reachable = ap_reachable(ap, id);
    if (p->active && ap->store.mono_ms >= p->deadline_ms) {
        ap_ae_end(ap, i); /* what arrived was merged: a sweep goes on with the next arc */
        ap->stats.ae_timeouts++;
    }
    /* A peer back (a heal, a restart, this node's own start): one of the two sweeps. */
    if (reachable && !p->reachable && ap->config.id < id) p->sweep_left = ap->tree.arc_count;
    p->reachable = reachable;
    ap_ae_start_due(ap, i);
}

void ap_ae_tick(struct ap *ap) {
    struct ap_ae *ae = &ap->ae;
    if (ap->tree.arc_count == 0 || ap->peer_count == 0 || ap_members_rebuilding(ap)) return;
    for (uint32_t i = 0; i < ap->peer_count; i++) ap_ae_tick_peer(ap, i);
    if (ap->store.mono_ms < ae->next_ms) return;
    ae->next_ms = ap->store.mono_ms + AP_AE_MS;
    for (uint32_t k = 0; k < ap->peer_count; k++) {
        uint32_t i = (ae->peer_cursor + k) % ap->peer_count;
        if (ae->peers[i].active || !ae->peers[i].reachable) continue;
        ae->peer_cursor = (i + 1) % ap->peer_count;
        (void)ap_ae_start(ap, i);
        return;
    }
}

uint64_t ap_ae_wake_at(const struct ap *ap) {
    const struct ap_ae *ae = &ap->ae;
    if (ap->tree.arc_count == 0 || ap->peer_count == 0) return UINT64_MAX;
    if (ap_members_rebuilding(ap)) return ap->store.mono_ms + 1; /* the next slice */
    uint64_t at = ae->next_ms;
    for (uint32_t i = 0; i < ap->peer_count; i++) {
        const struct ap_ae_peer *p = &ae->peers[i];
        uint64_t t = UINT64_MAX;
        if (p->active)
            t = p->deadline_ms;
        else if (p->sweep_left > 0 && p->reachable)
            t = p->next_ms;
        if (t < at) at = t;
    }
    return at;
}
