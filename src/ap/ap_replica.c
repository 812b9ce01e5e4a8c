/*
 * What a node does as one of a key's replicas: a PUT's state is merged into its own
 * (after the clock check) and acknowledged once its log holds it; a PUT marked as a hint
 * is kept for the replica it names (hints.h); a GET answers its object. Anti-entropy
 * payloads go to ap_ae.c, whose objects arrive here as PUTs (AP_PUT_AE, no ack wanted):
 * the same clock check and merge, so a tombstone is merged like any state.
 */
#include <string.h>

#include "ap/internal.h"
#include "base/assert.h"

static void ap_replica_ack(struct ap *ap, uint32_t to, const struct ap_msg *m, uint8_t status,
                           uint64_t digest, uint64_t lsn) {
    if ((m->flags & AP_PUT_ACK_WANTED) == 0) return;
    struct ap_msg ack = {.kind = AP_MSG_PUT_ACK, .req = m->req, .status = status, .digest = digest};
    ap_send_after(ap, to, status == AP_STATUS_OK ? lsn : 0, &ack);
}

bool ap_replica_clock_ok(struct ap *ap, enum keyspace_conflict conflict, const struct ap_object *o,
                         uint32_t from) {
    if (conflict == KEYSPACE_CONFLICT_LWW_WALLCLOCK) return true; /* raw clocks: no HLC */
    uint64_t ts = ap_object_newest_ts(o);
    if (hlc_observe(&ap->hlc, ts, ap->store.now_ms, AP_MAX_CLOCK_OFFSET_MS) == 0) return true;
    ap->stats.clock_refusals++;
    ap_trace(ap,
             "ap: refused a state from node %u whose clock is %llu ms ahead of this node's "
             "(max-clock-offset %u ms): check that node's clock",
             from, (unsigned long long)(hlc_wall_ms(ts) - ap->store.now_ms),
             (unsigned)AP_MAX_CLOCK_OFFSET_MS);
    return false;
}

/* A hint is kept only for another member that is one of the key's replicas (a peer can
 * not fill the hint budget with hints for nodes that do not exist). */
static bool ap_replica_hint_ok(const struct ap *ap, const struct keyspace *ks,
                               const struct ap_msg *m) {
    if (m->hint_for == ap->config.id || m->hint_for == 0) return false;
    uint32_t walk[NODE_PEERS_MAX];
    uint32_t count = ap_ring_walk(&ap->ring, ap_ring_key_hash(m->key.data, m->key.bytes), walk);
    uint32_t n = ks->n < count ? ks->n : count;
    for (uint32_t i = 0; i < n; i++)
        if (walk[i] == m->hint_for) return true;
    return false;
}

/* Whether o encodes to exactly the bytes stored for key. */
static bool ap_replica_same(struct ap *ap, const uint8_t *key, size_t bytes,
                            const struct ap_object *o) {
    struct db_entry *e = db_find(ap->store.db, key, bytes);
    if (e == NULL || db_entry_type(e) != VALUE_STRING) return false;
    size_t n = 0;
    const uint8_t *v = db_entry_string(e, &n);
    buf_clear(&ap->encode);
    ap_object_encode(o, &ap->encode);
    return n == ap->encode.len && memcmp(v, ap->encode.data, n) == 0;
}

static void ap_replica_put(struct ap *ap, uint32_t from, const struct ap_msg *m) {
    struct ap_object in, mine;
    ap_object_init(&in);
    ap_object_init(&mine);
    uint8_t status = AP_STATUS_OK;
    uint64_t lsn = 0, digest = ap_tree_digest(m->object.data, m->object.bytes);
    struct keyspace ks = ap_keyspace_of(ap, m->key.data, m->key.bytes);
    if (ap_object_decode(m->object.data, m->object.bytes, &in) != 0) {
        status = AP_STATUS_BAD;
        ap->stats.bad_payloads++;
    } else if (!ap_replica_clock_ok(ap, ks.conflict, &in, from)) {
        status = AP_STATUS_CLOCK;
    } else if ((m->flags & AP_PUT_HINT) != 0 && m->hint_for != ap->config.id) {
        if (!ap_replica_hint_ok(ap, &ks, m)) {
            status = AP_STATUS_BAD;
            ap->stats.bad_payloads++;
        } else {
            int rc = ap_hints_add(&ap->hints, m->hint_for, m->key.data, m->key.bytes,
                                  m->object.data, m->object.bytes, ap->store.now_ms);
            status = rc == 0 ? AP_STATUS_OK : AP_STATUS_DISKFULL;
        }
    } else {
        uint64_t before = ap_store_digest(ap, m->key.data, m->key.bytes);
        bool had = ap_store_load(ap, m->key.data, m->key.bytes, &mine);
        ap_object_merge(&mine, &in);
        if (had && ap_replica_same(ap, m->key.data, m->key.bytes, &mine)) {
            /* Nothing new (a duplicate, a repair of what is here): no record; the ack
             * waits for what is here to be durable. */
            ap_replica_ack(ap, from, m, status, digest, logdb_release_lsn(&ap->store));
            ap_object_deinit(&in);
            ap_object_deinit(&mine);
            return;
        }
        lsn = ap_store_save(ap, m->key.data, m->key.bytes, &mine);
        if (lsn != 0) ap_members_saved(ap, m->key.data, m->key.bytes); /* a stray? */
        if (lsn == 0) {
            status = AP_STATUS_DISKFULL;
            ap->stats.disk_full_refusals++;
        } else if ((m->flags & AP_PUT_AE) != 0 &&
                   ap_store_digest(ap, m->key.data, m->key.bytes) != before) {
            ap->stats.ae_keys_repaired++;
            ap_ae_repaired_by(ap, from);
        }
    }
    ap_replica_ack(ap, from, m, status, digest, lsn);
    ap_object_deinit(&in);
    ap_object_deinit(&mine);
}

static void ap_replica_get(struct ap *ap, uint32_t from, const struct ap_msg *m) {
    struct db_entry *e = db_find(ap->store.db, m->key.data, m->key.bytes);
    struct ap_msg reply = {.kind = AP_MSG_GET_REPLY, .req = m->req, .status = AP_STATUS_NONE};
    if (e != NULL && db_entry_type(e) == VALUE_STRING) {
        reply.status = AP_STATUS_OK;
        reply.object.data = db_entry_string(e, &reply.object.bytes);
    }
    uint64_t h = ap_ring_key_hash(m->key.data, m->key.bytes);
    if (ap_members_filling(ap, ap_ring_arc(&ap->ring, h))) reply.status = AP_STATUS_FILLING;
    /* What it holds may not be durable yet: sent once it is, as a client's reply would be. */
    ap_send_after(ap, from, logdb_release_lsn(&ap->store), &reply);
}

void ap_replica_message(struct ap *ap, uint32_t from, const struct ap_msg *m) {
    switch (m->kind) {
    case AP_MSG_PUT:
        ap_replica_put(ap, from, m);
        return;
    case AP_MSG_GET:
        ap_replica_get(ap, from, m);
        return;
    case AP_MSG_FORWARD:
        ap_coord_forwarded(ap, from, m);
        return;
    case AP_MSG_AE_BUCKETS:
    case AP_MSG_AE_KEYS:
    case AP_MSG_AE_PULL:
        ap_ae_message(ap, from, m);
        return;
    default:
        UNREACHABLE(); /* ap_peer_event routes only these kinds here */
    }
}
