/*
 * The CP engine: the node's data replicated by Raft (src/raft) and stored by raftstore.
 *
 * Every raft_step's effects are carried out in raft.h's order: the store buffers what must
 * be persisted at once; messages, committed entries and read states are held in a FIFO
 * tagged with the store's lsn and released only once a sync made that lsn durable (group
 * commit: one sync per FLUSH covers every step of the batch). Committed entries are
 * applied to the db in log order on every node with the leader's timestamp, so replicas
 * change only through the log and identically. Requests are in cluster_req.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "cmd/op.h"
#include "core/internal.h"
#include "raft/msg_codec.h"

enum cluster_held_kind {
    CLUSTER_HELD_MESSAGE = 1, /* to:u32, then a node payload */
    CLUSTER_HELD_APPLY,       /* index:u64 term:u64 type:u8, then the entry's data */
    CLUSTER_HELD_READ,        /* ctx:u64 index:u64 */
    CLUSTER_HELD_READ_FAIL,   /* ctx:u64 */
};

#define CLUSTER_HELD_HEADER_BYTES 13 /* kind:u8 lsn:u64 len:u32 */

static void cluster_warn(void *ctx, const char *text) {
    struct node *node = ctx;
    node_trace(node, "warning: %s", text);
}

void cluster_fatal(struct node *node, int code, const char *what, const char *text) {
    if (node->fatal != 0) return;
    node->fatal = code;
    snprintf(node->fatal_text, sizeof(node->fatal_text), "%s: %.200s", what, text);
}

/* The state machine's snapshot: (len:u32 ops)* with one entry's ops each (op.h). */
static void cluster_snapshot_entry(void *ctx, struct db_entry *e) {
    struct buf *blob = ctx;
    size_t len_pos = blob->len;
    buf_append_u32le(blob, 0);
    op_put_entry(blob, e);
    base_store_u32le(blob->data + len_pos, (uint32_t)(blob->len - len_pos - 4));
}

static int cluster_restore_blob(struct node *node, const uint8_t *data, uint64_t bytes,
                                uint64_t index, struct errmsg *msg) {
    db_clear(node->db);
    uint64_t pos = 0;
    if (bytes >= 8 && base_load_u32le(data) == CLUSTER_BLOB_KEYSPACES) {
        uint32_t len = base_load_u32le(data + 4);
        if (bytes - 8 < len) return errmsg_set(msg, ERR_CORRUPT, "snapshot keyspaces cut");
        cluster_keyspaces_apply(node, data + 8, len, index);
        pos = 8 + (uint64_t)len;
    }
    while (pos < bytes) {
        if (bytes - pos < 4) return errmsg_set(msg, ERR_CORRUPT, "snapshot blob truncated");
        uint32_t len = base_load_u32le(data + pos);
        if (bytes - pos - 4 < len) return errmsg_set(msg, ERR_CORRUPT, "snapshot entry cut");
        int rc = op_validate(data + pos + 4, len, msg);
        if (rc == 0) rc = op_apply(node->db, data + pos + 4, len, msg);
        if (rc != 0) return rc;
        pos += 4 + len;
    }
    return 0;
}

static uint64_t cluster_snapshot_entries(const struct node *node) {
    return node->config.snapshot_entries != 0 ? node->config.snapshot_entries
                                              : CLUSTER_SNAPSHOT_ENTRIES;
}

static void cluster_raft_options(struct node *node, const struct raftstore_recovered *rec,
                                 struct raft_options *o) {
    const struct node_config *cfg = &node->config;
    raft_options_default(o);
    o->id = cfg->id;
    o->seed = cfg->seed ^ ((uint64_t)cfg->id << 32);
    if (cfg->election_timeout_ms_min != 0)
        o->election_timeout_ms_min = cfg->election_timeout_ms_min;
    if (cfg->election_timeout_ms_max != 0)
        o->election_timeout_ms_max = cfg->election_timeout_ms_max;
    if (cfg->heartbeat_ms != 0) o->heartbeat_ms = cfg->heartbeat_ms;
    o->lease_drift_ms = o->election_timeout_ms_min / 4;
    o->log_trail_entries = cluster_snapshot_entries(node) / 10;
    o->hard_state = rec->hard_state;
    o->snapshot_index = rec->snapshot.index;
    o->snapshot_term = rec->snapshot.term;
    o->snapshot_config = rec->snapshot.config;
    if (rec->snapshot.index == 0 && !cfg->join) {
        /* A new cluster: every configured peer is a voter. A joining node has none: its
         * configuration comes from the leader (CLUSTER ADD). */
        o->snapshot_config.count = cfg->peer_count;
        for (uint32_t i = 0; i < cfg->peer_count; i++) {
            struct raft_server *s = &o->snapshot_config.servers[i];
            s->id = cfg->peers[i].id;
            s->voter = true;
            snprintf(s->addr, sizeof(s->addr), "%s", cfg->peers[i].addr);
        }
    }
    o->entries = rec->entries;
    o->entry_count = rec->entry_count;
    o->now_ms = node->cluster->mono_ms;
}

int cluster_open(struct node *node, struct errmsg *msg) {
    struct cluster *cl = base_calloc(1, sizeof(*cl));
    node->cluster = cl;
    cl->mono_ms = 0; /* the first event brings the shell's monotonic clock */
    /* Request ids must not repeat across restarts: a peer may still answer a request that
     * this node forwarded before it restarted, and that answer must match no new request. */
    cl->next_wait_id = node->now_ms << 20;
    buf_init(&cl->held);
    buf_init(&cl->peer_out);
    buf_init(&cl->peer_sends);
    buf_init(&cl->fwd_reply);
    buf_init(&cl->encode);
    buf_init(&cl->args);
    cluster_spec_init(&cl->spec);
    cl->ini_keyspace_count = node->config.keyspace_count;
    memcpy(cl->ini_keyspaces, node->config.keyspaces,
           sizeof(cl->ini_keyspaces[0]) * cl->ini_keyspace_count);
    cl->watch = cluster_watch_new(node->config.hash_seed);
    struct raftstore_options so = {
        .segment_bytes = node->config.wal_segment_bytes, .warn = cluster_warn, .warn_ctx = node};
    struct raftstore_recovered rec;
    int rc = raftstore_open(node->disk, &so, &cl->store, &rec, msg);
    if (rc != 0) return rc;
    if (rec.snapshot.index > 0) {
        rc = cluster_restore_blob(node, rec.snapshot.data, rec.snapshot.data_bytes,
                                  rec.snapshot.index, msg);
        if (rc != 0) return rc;
    }
    cl->applied = rec.snapshot.index;
    cl->snapshot_index = rec.snapshot.index;
    cluster_watch_reset(cl->watch, cl->applied);
    cluster_keyspaces_recovered(node, rec.entries, rec.entry_count);
    struct raft_options o;
    cluster_raft_options(node, &rec, &o);
    rc = raft_new(&o, &cl->raft, msg);
    if (rc != 0) return rc;
    node_trace(node, "cluster: recovered term=%llu snapshot=%llu entries=%zu keys=%zu",
               (unsigned long long)rec.hard_state.term, (unsigned long long)rec.snapshot.index,
               rec.entry_count, db_count(node->db));
    return 0;
}

void cluster_close(struct node *node) {
    struct cluster *cl = node->cluster;
    if (cl == NULL) return;
    while (cl->waits != NULL) {
        struct cluster_wait *w = cl->waits;
        cl->waits = w->next;
        buf_deinit(&w->request);
        free(w);
    }
    if (cl->raft != NULL) raft_free(cl->raft);
    if (cl->store != NULL) raftstore_close(cl->store);
    buf_deinit(&cl->held);
    buf_deinit(&cl->peer_out);
    buf_deinit(&cl->peer_sends);
    buf_deinit(&cl->fwd_reply);
    buf_deinit(&cl->encode);
    buf_deinit(&cl->args);
    cluster_spec_deinit(&cl->spec);
    if (cl->watch != NULL) cluster_watch_free(cl->watch);
    free(cl);
    node->cluster = NULL;
}

/* Appends one held record: kind, lsn, then the two parts of its payload. */
static void cluster_hold(struct cluster *cl, uint8_t kind, const void *head, size_t head_bytes,
                         const void *body, size_t body_bytes) {
    buf_append_byte(&cl->held, kind);
    buf_append_u64le(&cl->held, raftstore_last_lsn(cl->store));
    buf_append_u32le(&cl->held, (uint32_t)(head_bytes + body_bytes));
    buf_append(&cl->held, head, head_bytes);
    buf_append(&cl->held, body, body_bytes);
}

/* Raft thesis §10.2.1: a leader may send its entries to followers while it writes them to
 * its own disk, because it counts itself in a commit majority only once they are durable
 * (RAFT_EVENT_PERSISTED), and it applies and answers only after its own sync. So a
 * leader's appends and heartbeats go out at once, taking one fsync off the commit path;
 * votes and acknowledgements still wait for the disk. */
static bool cluster_message_may_go_early(const struct node *node, const struct raft_message *m) {
    if (raft_role(node->cluster->raft) != RAFT_LEADER) return false;
    return m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT;
}

static void cluster_hold_message(struct node *node, const struct raft_message *m) {
    struct cluster *cl = node->cluster;
    buf_clear(&cl->encode);
    buf_append_byte(&cl->encode, ENGINE_CP);
    buf_append_byte(&cl->encode, NODE_PEER_RAFT);
    struct raft_message copy = *m;
    const struct raft_snapshot_meta *snap = raftstore_snapshot(cl->store);
    if (m->type == RAFT_MSG_INSTALL_SNAPSHOT) {
        ASSERT(snap->index == m->index);
        copy.snapshot_data = snap->data;
        copy.snapshot_bytes = snap->data_bytes;
    }
    int rc = raft_msg_encode(&copy, &cl->encode);
    if (rc != 0) {
        node_trace(node, "raft message to %u not sent: %s", m->to, err_text(rc));
        return;
    }
    if (cluster_message_may_go_early(node, m)) {
        cluster_send(node, m->to, cl->encode.data, cl->encode.len);
        return;
    }
    uint8_t to[4];
    base_store_u32le(to, m->to);
    cluster_hold(cl, CLUSTER_HELD_MESSAGE, to, 4, cl->encode.data, cl->encode.len);
}

static void cluster_hold_effects(struct node *node, const struct raft_effects *e) {
    struct cluster *cl = node->cluster;
    for (size_t i = 0; i < e->message_count; i++) cluster_hold_message(node, &e->messages[i]);
    for (size_t i = 0; i < e->committed_count; i++) {
        const struct raft_entry *entry = &e->committed[i];
        uint8_t head[17];
        base_store_u64le(head, entry->index);
        base_store_u64le(head + 8, entry->term);
        head[16] = entry->type;
        cluster_hold(cl, CLUSTER_HELD_APPLY, head, sizeof(head), entry->data, entry->data_bytes);
    }
    for (size_t i = 0; i < e->read_count; i++) {
        uint8_t head[16];
        base_store_u64le(head, e->reads[i].ctx);
        base_store_u64le(head + 8, e->reads[i].index);
        cluster_hold(cl, CLUSTER_HELD_READ, head, sizeof(head), NULL, 0);
    }
    for (size_t i = 0; i < e->reads_failed_count; i++) {
        uint8_t head[8];
        base_store_u64le(head, e->reads_failed[i]);
        cluster_hold(cl, CLUSTER_HELD_READ_FAIL, head, sizeof(head), NULL, 0);
    }
}

/* Writes this node proposed up to index that a snapshot from the leader replaced: whether
 * each was applied is unknown here. */
static void cluster_finish_covered(struct node *node, uint64_t index) {
    struct cluster_wait *w = node->cluster->waits;
    while (w != NULL) {
        struct cluster_wait *next = w->next;
        if (w->kind == CLUSTER_WAIT_PROPOSAL && w->index <= index) {
            if (!w->spec_acked)
                errcode_reply(cluster_origin_out(node, &w->origin), ERRCODE_TIMEOUT,
                              "this node lost leadership and caught up from a snapshot: "
                              "the write may or may not have been applied");
            cluster_wait_finish(node, w);
        }
        w = next;
    }
}

/* Raft's step (1): a snapshot from the leader replaces the state machine and the log. */
static void cluster_restore(struct node *node, const struct raft_snapshot_meta *meta) {
    struct cluster *cl = node->cluster;
    struct errmsg msg;
    int rc = raftstore_save_snapshot(cl->store, meta, RAFTSTORE_SNAPSHOT_RESTORED, &msg);
    if (rc == 0) rc = cluster_restore_blob(node, meta->data, meta->data_bytes, meta->index, &msg);
    if (rc != 0) {
        cluster_fatal(node, rc, "installing a snapshot from the leader failed", msg.text);
        return;
    }
    cl->applied = meta->index;
    cl->snapshot_index = meta->index;
    cluster_finish_covered(node, meta->index);
    cluster_watch_reset(cl->watch, meta->index);
    cluster_spec_applied(node, meta->index);
    cl->spec.term = 0; /* an overlay, if any, is rebuilt from the new state */
    node_trace(node, "cluster: installed snapshot index=%llu keys=%zu",
               (unsigned long long)meta->index, db_count(node->db));
}

static void cluster_persist(struct node *node, const struct raft_effects *e) {
    struct cluster *cl = node->cluster;
    if (e->restore != NULL) cluster_restore(node, e->restore);
    uint64_t bytes = 0;
    for (size_t i = 0; i < e->entry_count; i++) bytes += e->entries[i].data_bytes;
    struct errmsg msg;
    int rc = 0;
    /* A proposal reserved its room before raft took it (so a full disk refuses the client
     * instead of stopping the node); every other step reserves here. */
    if (!cl->step_reserved) rc = raftstore_reserve(cl->store, e->entry_count, bytes, &msg);
    cl->step_reserved = false;
    if (rc != 0) {
        /* Raft holds these entries in memory already: without room to store them the log
         * would get a gap, so the node stops rather than risk it. */
        cluster_fatal(node, rc, "cannot store Raft log entries", msg.text);
        return;
    }
    if (e->hard_state_changed) raftstore_save_hard_state(cl->store, &e->hard_state);
    if (e->truncate_from != 0) raftstore_truncate(cl->store, e->truncate_from);
    if (e->entry_count > 0) raftstore_append(cl->store, e->entries, e->entry_count);
    raftstore_release_unused(cl->store);
}

/* raft_step plus the caller's contract. Returns raft's code. */
int cluster_raft_step(struct node *node, struct raft_event *ev, struct raft_effects *e) {
    struct cluster *cl = node->cluster;
    ev->now_ms = cl->mono_ms;
    int rc = raft_step(cl->raft, ev, e);
    if (e->wake_at_ms != 0) cl->raft_wake_ms = e->wake_at_ms;
    if (node->fatal != 0) return rc;
    cluster_persist(node, e);
    cluster_hold_effects(node, e);
    return rc;
}

int cluster_propose(struct node *node, const uint8_t *data, size_t bytes, uint64_t *index,
                    uint64_t *term) {
    struct cluster *cl = node->cluster;
    struct errmsg msg;
    int rc = raftstore_reserve(cl->store, 1, bytes, &msg);
    if (rc != 0) {
        snprintf(node->disk_full_text, sizeof(node->disk_full_text), "%s", msg.text);
        return rc;
    }
    cl->step_reserved = true;
    struct raft_event ev = {.kind = RAFT_EVENT_PROPOSE};
    ev.propose.data = data;
    ev.propose.bytes = (uint32_t)bytes;
    ev.propose.defer = true; /* sent in one batch per follower at FLUSH */
    cl->proposals_deferred = true;
    struct raft_effects e;
    rc = cluster_raft_step(node, &ev, &e);
    *index = e.proposed_index;
    *term = e.proposed_term;
    if (rc == 0) cluster_watch_proposed(node, data, bytes, *index);
    return rc;
}

uint64_t cluster_wall_ms(const struct node *node) {
    return fault_wall_ms(node);
}

/* The time stamped on an entry this node proposes: its wall clock, but never before the
 * last one it stamped, so the entries of a leader carry non-decreasing times (expiry at
 * apply, and the leader-mode overlay, then see time move forward only). */
uint64_t cluster_entry_ms(struct node *node) {
    struct cluster *cl = node->cluster;
    uint64_t now = cluster_wall_ms(node);
    if (now > cl->last_entry_ms) cl->last_entry_ms = now;
    return cl->last_entry_ms;
}

/* Returns 0, or an error code (the reason is in the log). */
static int cluster_take_snapshot(struct node *node) {
    struct cluster *cl = node->cluster;
    if (cl->applied <= cl->snapshot_index) return 0; /* nothing new (or nothing yet) */
    uint64_t term;
    struct raft_config config; /* as of the snapshot's index, not a newer uncommitted one */
    if (!raft_term_at(cl->raft, cl->applied, &term) || term == 0 ||
        !raft_config_at(cl->raft, cl->applied, &config) || config.count == 0)
        return ERR_INVALID; /* a joining node before its configuration arrived */
    struct buf blob;
    buf_init(&blob);
    if (cl->keyspaces_index != 0) {
        buf_append_u32le(&blob, CLUSTER_BLOB_KEYSPACES);
        buf_append_u32le(&blob, 0);
        keyspace_table_encode(node->config.keyspaces, node->config.keyspace_count, &blob);
        base_store_u32le(blob.data + 4, (uint32_t)(blob.len - 8));
    }
    uint64_t cursor = 0;
    do {
        cursor = db_scan(node->db, cursor, cluster_snapshot_entry, &blob);
    } while (cursor != 0);
    struct raft_snapshot_meta meta = {.index = cl->applied,
                                      .term = term,
                                      .config = config,
                                      .data = blob.data,
                                      .data_bytes = blob.len};
    struct errmsg msg;
    int rc = raftstore_save_snapshot(cl->store, &meta, RAFTSTORE_SNAPSHOT_TAKEN, &msg);
    buf_deinit(&blob);
    if (rc != 0) {
        node_trace(node, "cluster: snapshot at %llu failed: %s", (unsigned long long)cl->applied,
                   msg.text);
        return rc;
    }
    cl->snapshot_index = cl->applied;
    struct raft_event ev = {.kind = RAFT_EVENT_SNAPSHOT_TAKEN, .snapshot_index = cl->applied};
    struct raft_effects e;
    cluster_raft_step(node, &ev, &e);
    node_trace(node, "cluster: snapshot index=%llu keys=%zu", (unsigned long long)cl->applied,
               db_count(node->db));
    node->last_save_ms = node->now_ms;
    return 0;
}

static void cluster_apply_sweep(struct node *node, uint64_t ts) {
    db_expire_cycle(node->db, ts, NODE_EXPIRE_CHECKS_PER_TICK, cluster_watch_expired, node);
}

/* Where the reply of an applied entry goes: its waiting origin (NULL: none), or for
 * leader mode the buffer it is checked in, or for replication = all the wait's own. */
static struct buf *cluster_apply_out(struct node *node, struct cluster_wait *w) {
    struct cluster *cl = node->cluster;
    if (w == NULL) return &node->scratch;
    if (w->spec_acked) {
        buf_clear(&cl->spec.check);
        return &cl->spec.check;
    }
    if (w->repl == KEYSPACE_REPLICATION_ALL) {
        buf_clear(&w->request);
        return &w->request;
    }
    return cluster_origin_out(node, &w->origin);
}

/* Applies one committed entry: the same on every replica (the leader's timestamp). */
static void cluster_apply(struct node *node, uint64_t index, uint64_t term, uint8_t type,
                          const uint8_t *data, size_t bytes) {
    struct cluster *cl = node->cluster;
    if (index <= cl->applied) return; /* covered by an installed snapshot */
    ASSERT(index == cl->applied + 1);
    cl->applied = index;
    struct cluster_wait *w = NULL;
    for (struct cluster_wait *it = cl->waits; it != NULL; it = it->next) {
        if (it->kind == CLUSTER_WAIT_PROPOSAL && it->index == index) w = it;
    }
    uint64_t ts = bytes >= 9 ? base_load_u64le(data + 1) : 0;
    if (type != RAFT_ENTRY_NORMAL || bytes < 9) {
        /* a leader's no-op, or a configuration change (CLUSTER ADD...: its reply waits) */
        if (w != NULL && w->term == term)
            buf_append(cluster_origin_out(node, &w->origin), w->request.data, w->request.len);
    } else if (data[0] == CLUSTER_ENTRY_SWEEP) {
        cluster_apply_sweep(node, ts);
    } else if (data[0] == CLUSTER_ENTRY_KEYSPACES) {
        cluster_keyspaces_apply(node, data + 9, bytes - 9, index);
        if (w != NULL && w->term == term)
            buf_append(cluster_origin_out(node, &w->origin), w->request.data, w->request.len);
    } else if (data[0] == CLUSTER_ENTRY_COMMANDS) {
        bool ours = w != NULL && w->term == term;
        uint64_t saved_now = node->now_ms;
        node->now_ms = ts;
        cl->applying = index;
        cluster_run_commands(node, cluster_apply_out(node, ours ? w : NULL),
                             ours ? w->origin.proto : 2, data + 9, bytes - 9, false);
        cl->applying = 0;
        node->now_ms = saved_now;
        buf_clear(&node->scratch);
    }
    cluster_spec_applied(node, index);
    if (w == NULL) return;
    if (w->term != term) {
        /* Another leader's entry took this index: ours was never applied. */
        if (w->spec_acked) cl->spec.acked_lost++;
        errcode_reply(cluster_origin_out(node, &w->origin), ERRCODE_TRYAGAIN,
                      "the write was dropped by a leader change and not applied; retry it");
    } else if (w->spec_acked && (w->request.len != cl->spec.check.len ||
                                 memcmp(w->request.data, cl->spec.check.data, w->request.len))) {
        cl->spec.mismatches++;
        node_trace(node,
                   "warning: leader-mode reply for entry %llu differed from the applied "
                   "one",
                   (unsigned long long)index);
    } else if (w->repl == KEYSPACE_REPLICATION_ALL && w->origin.client_id + w->origin.peer != 0) {
        w->kind = CLUSTER_WAIT_ALL; /* answered once every voter holds it */
        cluster_check_replica_waits(node);
        return;
    }
    cluster_wait_finish(node, w);
}

/* Releases held effects whose lsn is durable, in order. */
static void cluster_release(struct node *node) {
    struct cluster *cl = node->cluster;
    uint64_t durable = raftstore_durable_lsn(cl->store);
    bool applied = false;
    while (cl->held_head < cl->held.len && node->fatal == 0) {
        const uint8_t *h = cl->held.data + cl->held_head;
        uint64_t lsn = base_load_u64le(h + 1);
        if (lsn > durable) break;
        uint32_t len = base_load_u32le(h + 9);
        const uint8_t *p = h + CLUSTER_HELD_HEADER_BYTES;
        cl->held_head += CLUSTER_HELD_HEADER_BYTES + len;
        switch (h[0]) {
        case CLUSTER_HELD_MESSAGE:
            cluster_send(node, base_load_u32le(p), p + 4, len - 4);
            break;
        case CLUSTER_HELD_APPLY:
            cluster_apply(node, base_load_u64le(p), base_load_u64le(p + 8), p[16], p + 17,
                          len - 17);
            applied = true;
            break;
        case CLUSTER_HELD_READ:
            cluster_read_ready(node, base_load_u64le(p), base_load_u64le(p + 8), false);
            break;
        case CLUSTER_HELD_READ_FAIL:
            cluster_read_ready(node, base_load_u64le(p), 0, true);
            break;
        default:
            UNREACHABLE();
        }
    }
    if (cl->held_head == cl->held.len) {
        buf_clear(&cl->held);
        cl->held_head = 0;
    }
    if (applied) cluster_after_apply(node);
}

static void cluster_save_done(struct node *node, int rc);

/* After a sync: release, tell raft what is durable, and repeat while that produces more
 * effects that are already durable (e.g. a commit that raft can now count). */
static void cluster_progress(struct node *node) {
    struct cluster *cl = node->cluster;
    for (int round = 0; round < 8 && node->fatal == 0; round++) {
        cluster_release(node);
        uint64_t index;
        uint64_t term;
        raftstore_durable_entry(cl->store, &index, &term);
        if (index == cl->persisted_reported) break;
        cl->persisted_reported = index;
        struct raft_event ev = {.kind = RAFT_EVENT_PERSISTED};
        ev.persisted.index = index;
        ev.persisted.term = term;
        struct raft_effects e;
        cluster_raft_step(node, &ev, &e);
    }
    cluster_spec_release(node);
    cluster_check_replica_waits(node);
    bool due = cl->applied - cl->snapshot_index >= cluster_snapshot_entries(node);
    if ((due || cl->save_requested) && !cl->sync_in_flight) {
        int rc = cluster_take_snapshot(node);
        if (cl->save_requested) cluster_save_done(node, rc);
        cl->save_requested = false;
    }
}

/* SAVE and BGSAVE in a cluster: a Raft snapshot (of this node's state) at the next moment no
 * log sync is running; SAVE answers once it is on disk. */
static void cluster_save_done(struct node *node, int rc) {
    struct cluster *cl = node->cluster;
    struct cluster_wait *w = cl->waits;
    while (w != NULL) {
        struct cluster_wait *next = w->next;
        if (w->kind == CLUSTER_WAIT_SAVE) {
            struct buf *out = cluster_origin_out(node, &w->origin);
            if (rc == 0)
                resp_put_simple(out, "OK");
            else
                resp_put_errorf(out, "ERR snapshot failed: %s (see the node's log)", err_text(rc));
            cluster_wait_finish(node, w);
        }
        w = next;
    }
}

void cluster_save_command(struct node *node, struct client *c, bool background) {
    struct cluster *cl = node->cluster;
    bool scheduled = cl->save_requested;
    cl->save_requested = true;
    if (background) {
        resp_put_simple(&c->out,
                        scheduled ? "Background saving scheduled" : "Background saving started");
    } else {
        struct cluster_wait *w = cluster_wait_start(node, CLUSTER_WAIT_SAVE, c);
        w->deadline_ms = UINT64_MAX; /* answered by cluster_save_done */
    }
    cluster_progress(node);
}

void cluster_flush(struct node *node, struct node_effects *out) {
    struct cluster *cl = node->cluster;
    struct errmsg msg;
    if (cl->proposals_deferred) {
        cl->proposals_deferred = false;
        struct raft_event ev = {.kind = RAFT_EVENT_REPLICATE};
        struct raft_effects e;
        cluster_raft_step(node, &ev, &e);
    }
    if (raftstore_flush(cl->store, &msg) != 0) {
        cluster_fatal(node, ERR_IO, "writing the Raft log failed", msg.text);
    }
    cluster_progress(node);
    cluster_members_effect(node, out);
    struct disk_file *file;
    if (!cl->sync_in_flight && node->fatal == 0 &&
        raftstore_sync_begin(cl->store, &file, &cl->sync_token)) {
        cl->sync_in_flight = true;
        out->sync_file = file;
        out->sync_lsn = cl->sync_token;
    }
    /* Build the peer sends over the payloads collected since the last FLUSH. */
    buf_clear(&cl->peer_sends);
    for (size_t pos = 0; pos < cl->peer_out.len;) {
        struct node_peer_send send;
        send.to = base_load_u32le(cl->peer_out.data + pos);
        send.bytes = base_load_u32le(cl->peer_out.data + pos + 4);
        send.data = cl->peer_out.data + pos + 8;
        buf_append(&cl->peer_sends, &send, sizeof(send));
        pos += 8 + send.bytes;
    }
    out->peer_sends = (const struct node_peer_send *)cl->peer_sends.data;
    out->peer_send_count = cl->peer_sends.len / sizeof(struct node_peer_send);
}

/* Called at the start of every FLUSH: the previous batch's sends were carried out. */
void cluster_sends_done(struct node *node) {
    buf_clear(&node->cluster->peer_out);
}

void cluster_synced(struct node *node, int error) {
    struct cluster *cl = node->cluster;
    ASSERT(cl->sync_in_flight);
    cl->sync_in_flight = false;
    raftstore_sync_end(cl->store, cl->sync_token, error);
    if (error != 0) {
        cluster_fatal(node, error, "fsync of the Raft log failed",
                      "stopping so that no "
                      "unsynced entry is acknowledged");
        return;
    }
    node->stats.syncs++;
    cluster_progress(node);
}

void cluster_peer_message(struct node *node, uint32_t from, const uint8_t *data, size_t bytes) {
    struct cluster *cl = node->cluster;
    if (bytes == 0) return;
    if (data[0] == NODE_PEER_FORWARD) {
        cluster_forward_request(node, from, data + 1, bytes - 1);
        return;
    }
    if (data[0] == NODE_PEER_FORWARD_REPLY) {
        cluster_forward_reply(node, data + 1, bytes - 1);
        return;
    }
    if (data[0] != NODE_PEER_RAFT) return;
    struct raft_message m;
    int rc = raft_msg_decode(data + 1, bytes - 1, &m, cl->decoded);
    if (rc != 0 || m.from != from || m.to != node->config.id) {
        node_trace(node, "dropped a bad raft message from %u: %s", from, err_text(rc));
        return;
    }
    struct raft_event ev = {.kind = RAFT_EVENT_MESSAGE, .message = &m};
    struct raft_effects e;
    cluster_raft_step(node, &ev, &e);
    if (m.type == RAFT_MSG_APPEND_RESP) cluster_check_replica_waits(node);
}

void cluster_send(struct node *node, uint32_t to, const uint8_t *data, size_t bytes) {
    struct cluster *cl = node->cluster;
    buf_append_u32le(&cl->peer_out, to);
    buf_append_u32le(&cl->peer_out, (uint32_t)bytes);
    buf_append(&cl->peer_out, data, bytes);
}

/* Leader: expired keys are removed through the log, at the leader's time, so every
 * replica removes the same keys (a replica never deletes on its own clock). */
static void cluster_sweep(struct node *node) {
    struct cluster *cl = node->cluster;
    if (raft_role(cl->raft) != RAFT_LEADER || db_expires_count(node->db) == 0) return;
    if (cl->mono_ms < cl->last_sweep_ms + CLUSTER_SWEEP_MS) return;
    cl->last_sweep_ms = cl->mono_ms;
    uint8_t entry[9];
    entry[0] = CLUSTER_ENTRY_SWEEP;
    base_store_u64le(entry + 1, cluster_entry_ms(node));
    uint64_t index;
    uint64_t term;
    cluster_propose(node, entry, sizeof(entry), &index, &term);
}

static void cluster_reply_deadline(struct node *node, struct cluster_wait *w) {
    struct buf *out = cluster_origin_out(node, &w->origin);
    unsigned long long ms = (unsigned long long)node->config.request_timeout_ms;
    if (w->writes) {
        errcode_reply(out, ERRCODE_TIMEOUT,
                      "no majority confirmed the write within %llu ms: it may "
                      "or may not have been applied",
                      ms);
    } else {
        errcode_reply(out, ERRCODE_NOQUORUM,
                      "could not confirm this read with a majority within "
                      "%llu ms: this node is cut off from the leader or the leader from a "
                      "majority",
                      ms);
    }
}

static void cluster_reply_orphaned(struct node *node, struct cluster_wait *w) {
    struct buf *out = cluster_origin_out(node, &w->origin);
    if (w->writes) {
        errcode_reply(out, ERRCODE_TIMEOUT,
                      "leader %u went away before answering: the write may or "
                      "may not have been applied",
                      w->forwarded_to);
    } else {
        errcode_reply(out, ERRCODE_TRYAGAIN, "leader %u went away before answering the read; retry",
                      w->forwarded_to);
    }
}

void cluster_tick(struct node *node) {
    struct cluster *cl = node->cluster;
    cluster_check_replica_waits(node);
    struct raft_event ev = {.kind = RAFT_EVENT_TICK};
    struct raft_effects e;
    cluster_raft_step(node, &ev, &e);
    cluster_sweep(node);
    cluster_keyspaces_tick(node);
    /* Requests past their deadline, or forwarded to a leader that is no longer one: no
     * answer will come from it, so the client hears now rather than at the deadline. */
    uint32_t leader = raft_leader_id(cl->raft);
    struct cluster_wait *w = cl->waits;
    while (w != NULL) {
        struct cluster_wait *next = w->next;
        bool orphaned = w->kind == CLUSTER_WAIT_FORWARD && w->forwarded_to != leader;
        if (w->kind == CLUSTER_WAIT_REPLICAS || w->kind == CLUSTER_WAIT_ALL) {
            /* cluster_check_replica_waits answers these. */
        } else if (w->spec_acked) {
            /* Answered already; kept until its index is applied, to count it if lost, but
             * not forever: a node that lost leadership may never apply that index. */
            bool ours = raft_role(cl->raft) == RAFT_LEADER && raft_term(cl->raft) == w->term;
            if (!ours && cl->mono_ms > w->deadline_ms + CLUSTER_ACKED_KEEP_MS)
                cluster_wait_finish(node, w);
        } else if (orphaned) {
            cluster_reply_orphaned(node, w);
            cluster_wait_finish(node, w);
        } else if (w->deadline_ms <= cl->mono_ms) {
            cluster_reply_deadline(node, w);
            cluster_wait_finish(node, w);
        }
        w = next;
    }
}

uint64_t cluster_wake_at(const struct node *node) {
    const struct cluster *cl = node->cluster;
    /* Raft asks in its own (monotonic) time; convert to the node's wall clock. */
    uint64_t next = cl->mono_ms + (node->config.heartbeat_ms ? node->config.heartbeat_ms : 50);
    if (cl->raft_wake_ms > cl->mono_ms && cl->raft_wake_ms < next) next = cl->raft_wake_ms;
    if (cl->raft_wake_ms != 0 && cl->raft_wake_ms <= cl->mono_ms) next = cl->mono_ms + 1;
    for (const struct cluster_wait *w = cl->waits; w != NULL; w = w->next) {
        if (w->deadline_ms < next && !w->spec_acked) next = w->deadline_ms;
    }
    uint64_t in_ms = next > cl->mono_ms ? next - cl->mono_ms : 0;
    return node->now_ms + in_ms;
}

static const char *cluster_role_name(enum raft_role role) {
    switch (role) {
    case RAFT_LEADER:
        return "leader";
    case RAFT_CANDIDATE:
        return "candidate";
    case RAFT_PRE_CANDIDATE:
        return "pre-candidate";
    case RAFT_FOLLOWER:
        return "follower";
    }
    UNREACHABLE();
}

void cluster_info(struct node *node, struct buf *out) {
    struct cluster *cl = node->cluster;
    const struct raft_config *config = raft_config(cl->raft);
    buf_appendf(out,
                "# Replication\r\nrole:%s\r\nraft_term:%llu\r\nraft_leader_id:%u\r\n"
                "raft_commit_index:%llu\r\nraft_applied_index:%llu\r\nraft_last_index:%llu\r\n"
                "raft_snapshot_index:%llu\r\nraft_voters:%u\r\n"
                "request_timeout_ms:%llu\r\nwaiting_requests:%u\r\n",
                cluster_role_name(raft_role(cl->raft)), (unsigned long long)raft_term(cl->raft),
                raft_leader_id(cl->raft), (unsigned long long)raft_commit_index(cl->raft),
                (unsigned long long)cl->applied, (unsigned long long)raft_last_index(cl->raft),
                (unsigned long long)cl->snapshot_index, raft_config_voter_count(config),
                (unsigned long long)node->config.request_timeout_ms, cl->wait_count);
    cluster_repl_info(node, out);
    const struct node_fault *f = &node->fault;
    buf_appendf(out,
                "faults_enabled:%d\r\nfault_partitioned:%d\r\nfault_clock_ms:%lld\r\n"
                "fault_paused:%d\r\n\r\n",
                node->config.enable_faults ? 1 : 0, f->partitioned ? 1 : 0, (long long)f->clock_ms,
                fault_paused(node) ? 1 : 0);
}
