/*
 * The AP engine behind the engine interface (engine.h): its state, the peers' reachability
 * (pings every AP_PING_MS; a peer heard from within AP_REACH_MS is reachable, so a
 * partition is known within half a second on both sides), the sends collected for FLUSH,
 * the replies given in a step, the acknowledgements held until the log is durable, and
 * the durability of its logged db. Requests are in ap_coord.c, the replica's side in
 * ap_replica.c, storage in ap_store.c.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ap/internal.h"
#include "base/assert.h"
#include "base/util.h"

#define AP_HELD_HEADER_BYTES 16 /* lsn u64, to u32, len u32 */

void ap_trace(const struct ap *ap, const char *fmt, ...) {
    va_list va;
    va_start(va, fmt);
    util_tracev(ap->config.trace, ap->config.trace_ctx, ap->config.id, ap->store.now_ms, fmt, va);
    va_end(va);
}

static struct ap *ap_of(struct engine *e) {
    ASSERT(e != NULL && e->ops == &ap_engine_ops);
    return (struct ap *)e;
}

uint32_t ap_peer_index(const struct ap *ap, uint32_t id) {
    for (uint32_t i = 0; i < ap->peer_count; i++)
        if (ap->peers[i].id == id) return i;
    return AP_PEER_NONE;
}

struct ap_peer *ap_peer_find(struct ap *ap, uint32_t id) {
    uint32_t i = ap_peer_index(ap, id);
    return i == AP_PEER_NONE ? NULL : &ap->peers[i];
}

bool ap_reachable(const struct ap *ap, uint32_t node) {
    if (node == ap->config.id) return true;
    for (uint32_t i = 0; i < ap->peer_count; i++) {
        const struct ap_peer *p = &ap->peers[i];
        if (p->id == node) return p->heard_ms != 0 && p->heard_ms + AP_REACH_MS > ap->store.mono_ms;
    }
    return false;
}

uint64_t ap_write_ts(struct ap *ap, const struct keyspace *ks) {
    if (ks->conflict == KEYSPACE_CONFLICT_LWW_WALLCLOCK)
        return hlc_now(&ap->wall, ap->store.now_ms);
    return hlc_now(&ap->hlc, ap->store.now_ms);
}

void ap_send(struct ap *ap, uint32_t to, const struct ap_msg *m) {
    ASSERT(to != ap->config.id);
    size_t at = ap->sends.len;
    buf_append_u32le(&ap->sends, to);
    buf_append_u32le(&ap->sends, 0);
    buf_append_byte(&ap->sends, ENGINE_AP);
    ap_msg_encode(m, &ap->sends);
    base_store_u32le(ap->sends.data + at + 4, (uint32_t)(ap->sends.len - at - 8));
}

void ap_send_after(struct ap *ap, uint32_t to, uint64_t lsn, const struct ap_msg *m) {
    if (lsn == 0 || logdb_durable_lsn(&ap->store) >= lsn) {
        ap_send(ap, to, m);
        return;
    }
    size_t at = ap->held.len;
    buf_append_u64le(&ap->held, lsn);
    buf_append_u32le(&ap->held, to);
    buf_append_u32le(&ap->held, 0);
    ap_msg_encode(m, &ap->held);
    base_store_u32le(ap->held.data + at + 12, (uint32_t)(ap->held.len - at - AP_HELD_HEADER_BYTES));
}

/* Moves the held acknowledgements the log now covers to the sends (they are in lsn order). */
static void ap_release_held(struct ap *ap) {
    uint64_t durable = logdb_durable_lsn(&ap->store);
    size_t pos = 0;
    while (pos < ap->held.len) {
        const uint8_t *h = ap->held.data + pos;
        if (base_load_u64le(h) > durable) break;
        uint32_t len = base_load_u32le(h + 12);
        buf_append_u32le(&ap->sends, base_load_u32le(h + 8));
        buf_append_u32le(&ap->sends, len + 1);
        buf_append_byte(&ap->sends, ENGINE_AP);
        buf_append(&ap->sends, h + AP_HELD_HEADER_BYTES, len);
        pos += AP_HELD_HEADER_BYTES + len;
    }
    if (pos == 0) return;
    memmove(ap->held.data, ap->held.data + pos, ap->held.len - pos);
    ap->held.len -= pos;
}

void ap_reply_seen(struct ap *ap, uint64_t client, const uint8_t *data, size_t bytes,
                   const uint8_t *seen, size_t seen_bytes) {
    ASSERT(client != 0);
    if ((client & AP_BATCH_BIT) != 0) {
        ap_coord_batch_reply(ap, client, data, bytes, seen, seen_bytes);
        return;
    }
    if (ap->reply_count == ap->reply_cap) {
        ap->reply_cap = ap->reply_cap < 8 ? 8 : ap->reply_cap * 2;
        ap->reply_list = base_realloc(ap->reply_list, ap->reply_cap * sizeof(*ap->reply_list));
    }
    /* data and seen are offsets into reply_data until the step ends (the buffer may move):
     * in write_token and observed_index meanwhile. */
    ap->reply_list[ap->reply_count++] =
        (struct engine_reply){.id = client,
                              .bytes = bytes,
                              .write_token = ap->reply_data.len,
                              .observed_index = ap->reply_data.len + bytes,
                              .seen_bytes = seen_bytes};
    buf_append(&ap->reply_data, data, bytes);
    buf_append(&ap->reply_data, seen, seen_bytes);
}

void ap_reply(struct ap *ap, uint64_t client, const uint8_t *data, size_t bytes) {
    ap_reply_seen(ap, client, data, bytes, NULL, 0);
}

/* The replies of this step, pointing into reply_data now that it is complete. */
static void ap_hand_replies(struct ap *ap, const struct engine_reply **out, size_t *count) {
    for (size_t i = 0; i < ap->reply_count; i++) {
        struct engine_reply *r = &ap->reply_list[i];
        r->data = ap->reply_data.data + r->write_token;
        r->seen = r->seen_bytes > 0 ? ap->reply_data.data + r->observed_index : NULL;
        r->write_token = r->observed_index = 0;
    }
    *out = ap->reply_list;
    *count = ap->reply_count;
}

static void ap_begin(struct ap *ap) {
    ap->reply_count = 0;
    buf_clear(&ap->reply_data);
}

static void ap_pings(struct ap *ap) {
    if (ap->store.mono_ms < ap->next_ping_ms) return;
    ap->next_ping_ms = ap->store.mono_ms + AP_PING_MS;
    for (uint32_t i = 0; i < ap->peer_count; i++) {
        struct ap_msg m = {.kind = AP_MSG_PING, .seq = ++ap->peers[i].ping_seq};
        ap_send(ap, ap->peers[i].id, &m);
    }
}

static void ap_build_sends(struct ap *ap, struct engine_effects *out) {
    size_t count = 0;
    for (size_t pos = 0; pos < ap->sends.len; pos += 8 + base_load_u32le(ap->sends.data + pos + 4))
        count++;
    if (count > ap->send_list_cap) {
        ap->send_list_cap = count * 2;
        ap->send_list = base_realloc(ap->send_list, ap->send_list_cap * sizeof(*ap->send_list));
    }
    size_t i = 0;
    for (size_t pos = 0; pos < ap->sends.len; i++) {
        const uint8_t *p = ap->sends.data + pos;
        uint32_t len = base_load_u32le(p + 4);
        ap->send_list[i] = (struct node_peer_send){base_load_u32le(p), p + 8, len};
        pos += 8 + len;
    }
    out->sends = ap->send_list;
    out->send_count = count;
}

static void ap_peer_event(struct ap *ap, const struct engine_event *ev) {
    struct ap_peer *p = ap_peer_find(ap, ev->from);
    struct ap_msg m = {.args = ap->args, .digests = ap->digests};
    if (p == NULL) return; /* not a member of this node's ring (yet, or any more) */
    if (ap_msg_decode(ev->data, ev->bytes, &m) != 0) {
        ap->stats.bad_payloads++;
        return;
    }
    p->heard_ms = ap->store.mono_ms; /* any payload says the link works */
    switch (m.kind) {
    case AP_MSG_PING: {
        struct ap_msg pong = {.kind = AP_MSG_PONG, .seq = m.seq};
        ap_send(ap, ev->from, &pong);
        return;
    }
    case AP_MSG_PONG:
        return;
    case AP_MSG_PUT:
    case AP_MSG_GET:
    case AP_MSG_FORWARD:
    case AP_MSG_AE_BUCKETS:
    case AP_MSG_AE_KEYS:
    case AP_MSG_AE_PULL:
        ap_replica_message(ap, ev->from, &m);
        return;
    case AP_MSG_REAP_ASK:
    case AP_MSG_REAP:
        ap_reap_message(ap, ev->from, &m);
        return;
    default:
        ap_coord_message(ap, ev->from, &m);
        return;
    }
}

static void ap_tick(struct ap *ap) {
    ap_pings(ap);
    ap_members_rebuild_tick(ap);
    ap_ae_tick(ap);
    if (ap->store.mono_ms < ap->next_tick_ms) return;
    ap->next_tick_ms = ap->store.mono_ms + AP_TICK_MS;
    logdb_tick(&ap->store);
    ap_hints_expire(&ap->hints, ap->store.now_ms);
    ap_coord_hand_hints(ap);
    ap_members_tick(ap);
    ap_reap_tick(ap);
}

static void ap_engine_step(struct engine *e, const struct engine_event *ev,
                           struct engine_effects *out) {
    struct ap *ap = ap_of(e);
    memset(out, 0, sizeof(*out));
    ap_begin(ap);
    logdb_clocks(&ap->store, ev->now_ms, ev->mono_ms);
    switch (ev->kind) {
    case ENGINE_EVENT_TICK:
        ap_tick(ap);
        break;
    case ENGINE_EVENT_SYNCED:
        logdb_synced(&ap->store, ev->token, ev->error);
        break;
    case ENGINE_EVENT_FLUSH:
        if (ap->store.snap.active && !ap->store.snap.scan_done)
            logdb_snapshot_run(&ap->store, false);
        logdb_flush(&ap->store, out);
        break;
    case ENGINE_EVENT_PEER:
        ap_peer_event(ap, ev);
        break;
    case ENGINE_EVENT_GONE:
        break; /* its reply, when it comes, is dropped by the node */
    case ENGINE_EVENT_SENT:
        buf_clear(&ap->sends);
        break;
    }
    ap_coord_progress(ap);
    ap_release_held(ap);
    if (ev->kind == ENGINE_EVENT_FLUSH) ap_build_sends(ap, out);
    ap_hand_replies(ap, &out->replies, &out->reply_count);
    out->fatal = ap->store.fatal;
    out->fatal_text = ap->store.fatal_text;
}

static void ap_engine_submit(struct engine *e, const struct engine_request *req, struct buf *out,
                             struct engine_answer *answer) {
    struct ap *ap = ap_of(e);
    ap_begin(ap);
    logdb_clocks(&ap->store, req->now_ms, req->mono_ms);
    memset(answer, 0, sizeof(*answer));
    ap_submit(ap, req, out, answer);
    ap_hand_replies(ap, &answer->replies, &answer->reply_count);
}

/* INFO keyspace: the AP keys this node holds, and each AP keyspace's settings. */
static void ap_engine_info_keyspaces(const struct ap *ap, struct buf *out) {
    buf_appendf(out, "ap_keys:%zu\r\n", db_count(ap->store.db));
    for (uint32_t i = 0; i < ap->config.keyspace_count; i++) {
        const struct keyspace *ks = &ap->config.keyspaces[i];
        if (keyspace_mode_of(ks) != KEYSPACE_MODE_AP) continue;
        buf_appendf(out, "ap_keyspace_%s:", ks->name);
        keyspace_describe(ks, ',', out);
        buf_appendf(out, "\r\n");
    }
}

static void ap_engine_info(struct engine *e, const char *section, struct buf *out) {
    struct ap *ap = ap_of(e);
    const struct ap_stats *s = &ap->stats;
    if (strcmp(section, "keyspace") == 0) ap_engine_info_keyspaces(ap, out);
    if (strcmp(section, "replication") != 0) return;
    uint32_t reachable = 0;
    for (uint32_t i = 0; i < ap->peer_count; i++) reachable += ap_reachable(ap, ap->peers[i].id);
    buf_appendf(out,
                "ap_epoch:%u\r\nap_ring_members:%u\r\nap_peers_reachable:%u\r\n"
                "ap_pending:%u\r\nap_writes:%llu\r\nap_reads:%llu\r\nap_forwards:%llu\r\n"
                "ap_noquorum:%llu\r\nap_timeouts:%llu\r\nap_read_repairs:%llu\r\n"
                "ap_clock_offsets_refused:%llu\r\nap_siblings_over_warning:%llu\r\n"
                "ap_hints_pending:%zu\r\nap_hints_bytes:%llu\r\nap_hints_handed:%llu\r\n"
                "ap_bad_payloads:%llu\r\nap_forwards_dropped:%llu\r\n"
                "ap_ae_exchanges:%llu\r\nap_ae_keys_repaired:%llu\r\nap_ae_keys_sent:%llu\r\n"
                "ap_ae_keys_listed:%llu\r\nap_ae_timeouts:%llu\r\n"
                "ap_ring_changes:%llu\r\nap_arcs_filling:%u\r\nap_keys_handed_off:%llu\r\n"
                "ap_handoff_pending:%u\r\nap_handoff_timeouts:%llu\r\n"
                "ap_session_waits:%llu\r\nap_session_timeouts:%llu\r\n"
                "ap_tombstones_collected:%llu\r\nap_reap_asks:%llu\r\n",
                ap->epoch, ap->ring.node_count, reachable, ap->pending_count,
                (unsigned long long)s->writes, (unsigned long long)s->reads,
                (unsigned long long)s->forwards, (unsigned long long)s->noquorum,
                (unsigned long long)s->timeouts, (unsigned long long)s->read_repairs,
                (unsigned long long)s->clock_refusals, (unsigned long long)s->siblings_over_warning,
                ap_hints_count(&ap->hints), (unsigned long long)ap->hints.bytes,
                (unsigned long long)s->hints_handed, (unsigned long long)s->bad_payloads,
                (unsigned long long)s->forwards_dropped, (unsigned long long)s->ae_exchanges,
                (unsigned long long)s->ae_keys_repaired, (unsigned long long)s->ae_keys_sent,
                (unsigned long long)s->ae_keys_listed, (unsigned long long)s->ae_timeouts,
                (unsigned long long)s->ring_changes, ap->filling_count,
                (unsigned long long)s->keys_handed_off, ap->handoff.inflight,
                (unsigned long long)s->handoff_timeouts, (unsigned long long)s->session_waits,
                (unsigned long long)s->session_timeouts,
                (unsigned long long)s->tombstones_collected, (unsigned long long)s->reap_asks);
}

struct db *ap_engine_db(const struct engine *e) {
    ASSERT(e != NULL && e->ops == &ap_engine_ops);
    return ((const struct ap *)e)->store.db;
}

static uint64_t ap_engine_key_count(struct engine *e) {
    return db_count(ap_of(e)->store.db);
}

static uint64_t ap_engine_memory_bytes(struct engine *e) {
    return db_memory_bytes(ap_of(e)->store.db);
}

static uint64_t ap_engine_last_save_ms(struct engine *e) {
    return ap_of(e)->store.last_save_ms;
}

static uint64_t ap_engine_observed_index(struct engine *e) {
    (void)e;
    return 0;
}

static uint64_t ap_engine_wake_at(struct engine *e) {
    const struct ap *ap = ap_of(e);
    uint64_t at = ap->next_ping_ms < ap->next_tick_ms ? ap->next_ping_ms : ap->next_tick_ms;
    uint64_t ae = ap_ae_wake_at(ap);
    if (ae < at) at = ae;
    return ap->store.snap.active && !ap->store.snap.scan_done ? ap->store.mono_ms + 1 : at;
}

static uint64_t ap_engine_release_lsn(struct engine *e) {
    return logdb_release_lsn(&ap_of(e)->store);
}

static uint64_t ap_engine_durable_lsn(struct engine *e) {
    return logdb_durable_lsn(&ap_of(e)->store);
}

/* The cluster's table: keys are configured by it from now on (its n, w, r, conflict). */
static void ap_engine_keyspaces(struct engine *e, const struct keyspace *table, uint32_t count) {
    struct ap *ap = ap_of(e);
    ASSERT(count <= KEYSPACES_MAX);
    memcpy(ap->config.keyspaces, table, sizeof(table[0]) * count);
    ap->config.keyspace_count = count;
    /* The agreed table (its n may differ from this node's own): keys it no longer
     * replicates by it are handed off. */
    ap->table_agreed = true;
    ap->handoff.active = true;
    ap->handoff.cursor = 0;
}

static void ap_engine_members(struct engine *e, const uint32_t *ids, uint32_t count) {
    ap_members_change(ap_of(e), ids, count);
}

static void ap_engine_free(struct engine *e) {
    if (e == NULL) return;
    struct ap *ap = ap_of(e);
    ap_coord_close(ap);
    ap_members_deinit(ap);
    logdb_close(&ap->store);
    ap_tree_deinit(&ap->tree);
    ap_ae_deinit(ap);
    ap_hints_deinit(&ap->hints);
    ap_reap_deinit(ap);
    buf_deinit(&ap->ops);
    buf_deinit(&ap->encode);
    buf_deinit(&ap->sends);
    buf_deinit(&ap->held);
    buf_deinit(&ap->reply_data);
    buf_deinit(&ap->seen_out);
    buf_deinit(&ap->pipeline_args);
    buf_deinit(&ap->multikey);
    free(ap->send_list);
    free(ap->reply_list);
    free(ap->args);
    free(ap->digests);
    free(ap);
}

static int ap_engine_open(const struct engine_config *config, struct disk *disk, uint64_t now_ms,
                          struct engine **out, struct errmsg *msg) {
    *out = NULL;
    struct ap *ap = base_calloc(1, sizeof(*ap));
    ap->base.ops = &ap_engine_ops;
    ap->config = *config;
    if (ap->config.session_wait_ms == 0)
        ap->config.session_wait_ms = ENGINE_SESSION_WAIT_MS_DEFAULT;
    if (ap->config.ap_tombstone_ms == 0)
        ap->config.ap_tombstone_ms = ENGINE_AP_TOMBSTONE_MS_DEFAULT;
    ap->store.disk = disk;
    ap_coord_init(ap);
    ap_members_init(ap);
    hlc_init(&ap->hlc);
    hlc_init(&ap->wall);
    buf_init(&ap->ops);
    buf_init(&ap->encode);
    buf_init(&ap->sends);
    buf_init(&ap->held);
    buf_init(&ap->reply_data);
    buf_init(&ap->seen_out);
    buf_init(&ap->pipeline_args);
    buf_init(&ap->multikey);
    ap->args = base_calloc(AP_MSG_KEYS_MAX, sizeof(struct resp_arg));
    ap->digests = base_calloc(AP_MSG_KEYS_MAX, sizeof(uint64_t));
    /* A hint older than a collectable tombstone could bring back what it deleted. */
    uint64_t hint_age = AP_HINTS_AGE_MS_DEFAULT < ap->config.ap_tombstone_ms
                            ? AP_HINTS_AGE_MS_DEFAULT
                            : ap->config.ap_tombstone_ms;
    ap_hints_init(&ap->hints, AP_HINTS_BYTES_DEFAULT, hint_age, config->hash_seed);
    ap_reap_init(ap);
    uint32_t members[NODE_PEERS_MAX];
    uint32_t count = 0;
    for (uint32_t i = 0; i < config->peer_count; i++) {
        members[count++] = config->peers[i].id;
        if (config->peers[i].id != config->id)
            ap->peers[ap->peer_count++] = (struct ap_peer){.id = config->peers[i].id};
    }
    if (count == 0) members[count++] = config->id;
    int rc = ap_ring_build(&ap->ring, members, count);
    if (rc != 0) rc = errmsg_set(msg, rc, "ap: the cluster's members do not make a ring");
    if (rc == 0) ap_ae_init(ap);
    if (rc == 0) rc = ap_store_open(ap, now_ms, msg);
    if (rc != 0) {
        ap_engine_free(&ap->base);
        return rc;
    }
    ap_store_rebuild_tree(ap);
    /* A new data directory on a node joining, or on one that was a member (its AP files
     * were lost): its copy counts toward no read until anti-entropy refilled it. */
    if (ap->fresh && (config->join || config->member_before)) ap_members_fill_all(ap);
    ap_trace(ap, "ap: open epoch=%u keys=%zu members=%u", ap->epoch, db_count(ap->store.db), count);
    *out = &ap->base;
    return 0;
}

const struct engine_ops ap_engine_ops = {
    .name = "ap",
    .id = ENGINE_AP,
    .watch = ENGINE_WATCH_TOUCHED,
    .pipelines = true,
    .open = ap_engine_open,
    .free = ap_engine_free,
    .submit = ap_engine_submit,
    .step = ap_engine_step,
    .info = ap_engine_info,
    .key_count = ap_engine_key_count,
    .memory_bytes = ap_engine_memory_bytes,
    .last_save_ms = ap_engine_last_save_ms,
    .observed_index = ap_engine_observed_index,
    .wake_at = ap_engine_wake_at,
    .release_lsn = ap_engine_release_lsn,
    .durable_lsn = ap_engine_durable_lsn,
    .keyspaces = ap_engine_keyspaces,
    .members = ap_engine_members,
};
