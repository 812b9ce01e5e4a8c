/*
 * The CP engine: the node's data replicated by Raft (src/raft) and stored by raftstore.
 *
 * Every raft_step's effects are carried out in raft.h's order: the store buffers what must
 * be persisted at once; messages, committed entries and read states are held in a FIFO
 * tagged with the store's lsn and released only once a sync made that lsn durable (group
 * commit: one sync per FLUSH covers every step of the batch). Committed entries are
 * applied to the db in log order on every node with the leader's timestamp, so replicas
 * change only through the log and identically. Requests are in cp_req.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/util.h"
#include "cmd/op.h"
#include "cp/internal.h"
#include "raft/msg_codec.h"

enum cp_held_kind {
    CP_HELD_MESSAGE = 1, /* to:u32, then a node payload */
    CP_HELD_APPLY,       /* index:u64 term:u64 type:u8, then the entry's data */
    CP_HELD_READ,        /* ctx:u64 index:u64 */
    CP_HELD_READ_FAIL,   /* ctx:u64 */
};

#define CP_HELD_HEADER_BYTES 13 /* kind:u8 lsn:u64 len:u32 */

void cp_trace(const struct cp *cp, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    util_tracev(cp->config.trace, cp->config.trace_ctx, cp->config.id, cp->now_ms, fmt, ap);
    va_end(ap);
}

static void cp_warn(void *ctx, const char *text) {
    struct cp *cp = ctx;
    cp_trace(cp, "warning: %s", text);
}

void cp_fatal(struct cp *cp, int code, const char *what, const char *text) {
    if (cp->fatal != 0) return;
    cp->fatal = code;
    snprintf(cp->fatal_text, sizeof(cp->fatal_text), "%s: %.200s", what, text);
}

/* The state machine's snapshot (cp_snap.c): records len:u32 ops, run in order; a record
 * whose len is CP_BLOB_KEYSPACES carries the keyspace table (len:u32 table) instead. It
 * is read in pieces (raftstore_snapshot_read), so a record may span two: what a piece
 * leaves of one waits in carry for the next. */
struct cp_blob_reader {
    struct cp *cp;
    uint64_t index;
    struct buf carry;
    struct errmsg *msg;
};

/* Runs the whole records at the start of data; *used: their bytes. */
static int cp_blob_records(struct cp_blob_reader *r, const uint8_t *data, size_t bytes,
                           size_t *used) {
    size_t pos = 0;
    int rc = 0;
    while (rc == 0 && bytes - pos >= 4) {
        uint32_t len = base_load_u32le(data + pos);
        if (len == CP_BLOB_KEYSPACES) {
            if (bytes - pos < 8 || bytes - pos - 8 < base_load_u32le(data + pos + 4)) break;
            len = base_load_u32le(data + pos + 4);
            cp_keyspaces_apply_committed(r->cp, data + pos + 8, len, r->index);
            pos += 8 + (size_t)len;
            continue;
        }
        if (bytes - pos - 4 < len) break;
        rc = op_validate(data + pos + 4, len, r->msg);
        if (rc == 0) rc = op_apply(r->cp->db, data + pos + 4, len, r->msg);
        pos += 4 + (size_t)len;
    }
    *used = pos;
    return rc;
}

static int cp_blob_piece(void *ctx, const uint8_t *data, size_t bytes) {
    struct cp_blob_reader *r = ctx;
    size_t used = 0;
    if (r->carry.len == 0) {
        int rc = cp_blob_records(r, data, bytes, &used);
        if (rc == 0) buf_append(&r->carry, data + used, bytes - used);
        return rc;
    }
    buf_append(&r->carry, data, bytes);
    int rc = cp_blob_records(r, r->carry.data, r->carry.len, &used);
    memmove(r->carry.data, r->carry.data + used, r->carry.len - used);
    r->carry.len -= used;
    return rc;
}

/* Replaces the db with the store's snapshot, read from disk in pieces. */
static int cp_restore_snapshot(struct cp *cp, uint64_t index, struct errmsg *msg) {
    db_clear(cp->db);
    struct cp_blob_reader r = {.cp = cp, .index = index, .msg = msg};
    buf_init(&r.carry);
    int rc = raftstore_snapshot_read(cp->store, cp_blob_piece, &r, msg);
    if (rc == 0 && r.carry.len > 0)
        rc = errmsg_set(msg, ERR_CORRUPT, "snapshot blob ends inside a record");
    buf_deinit(&r.carry);
    return rc;
}

static uint64_t cp_snapshot_entries(const struct cp *cp) {
    return cp->config.snapshot_entries != 0 ? cp->config.snapshot_entries : CP_SNAPSHOT_ENTRIES;
}

static void cp_raft_options(struct cp *cp, const struct raftstore_recovered *rec,
                            struct raft_options *o) {
    const struct engine_config *cfg = &cp->config;
    raft_options_default(o);
    o->id = cfg->id;
    o->seed = cfg->seed ^ ((uint64_t)cfg->id << 32);
    if (cfg->election_timeout_ms_min != 0)
        o->election_timeout_ms_min = cfg->election_timeout_ms_min;
    if (cfg->election_timeout_ms_max != 0)
        o->election_timeout_ms_max = cfg->election_timeout_ms_max;
    if (cfg->heartbeat_ms != 0) o->heartbeat_ms = cfg->heartbeat_ms;
    o->lease_drift_ms = o->election_timeout_ms_min / 4;
    o->log_trail_entries = cp_snapshot_entries(cp) / 10;
    /* ...and a tenth of the log bytes that trigger one (big entries: memory stays bounded;
     * 25.6 MiB by default: a follower a few seconds behind under load needs no snapshot). */
    uint64_t log_bytes =
        cp->config.snapshot_log_bytes != 0 ? cp->config.snapshot_log_bytes : CP_SNAPSHOT_LOG_BYTES;
    o->log_trail_bytes = log_bytes / 10;
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
    o->now_ms = cp->mono_ms;
}

/* Recovers the engine's state from its files (cp_engine.c allocated it). */
int cp_open(struct cp *cp, struct errmsg *msg) {
    cp->mono_ms = 0; /* the first event brings the shell's monotonic clock */
    /* Request ids must not repeat across restarts: a peer may still answer a request that
     * this node forwarded before it restarted, and that answer must match no new request. */
    cp->next_wait_id = cp->now_ms << 20;
    buf_init(&cp->held);
    buf_init(&cp->keyspaces_committed);
    buf_init(&cp->peer_out);
    buf_init(&cp->peer_sends);
    buf_init(&cp->fwd_reply);
    buf_init(&cp->encode);
    buf_init(&cp->args);
    buf_init(&cp->install_held);
    cp_snap_init(cp);
    cp_spec_init(&cp->spec);
    cp->deadline_min_ms = UINT64_MAX;
    cp->ini_keyspace_count = cp->config.keyspace_count;
    memcpy(cp->ini_keyspaces, cp->config.keyspaces,
           sizeof(cp->ini_keyspaces[0]) * cp->ini_keyspace_count);
    cp->watch = cp_watch_new(cp->config.hash_seed);
    struct raftstore_options so = {.segment_bytes = cp->config.wal_segment_bytes,
                                   .warn = cp_warn,
                                   .warn_ctx = cp,
                                   .blob_on_disk = true};
    struct raftstore_recovered rec;
    int rc = raftstore_open(cp->disk, &so, &cp->store, &rec, msg);
    if (rc != 0) return rc;
    if (rec.snapshot.index > 0) {
        rc = cp_restore_snapshot(cp, rec.snapshot.index, msg);
        if (rc != 0) return rc;
        raftstore_snapshot_drop(cp->store); /* an older release's, in memory: in the db now */
    }
    cp->applied = rec.snapshot.index;
    cp->snapshot_index = rec.snapshot.index;
    cp_watch_reset(cp->watch, cp->applied);
    cp_keyspaces_recovered(cp, rec.entries, rec.entry_count);
    struct raft_options o;
    cp_raft_options(cp, &rec, &o);
    rc = raft_new(&o, &cp->raft, msg);
    if (rc != 0) return rc;
    cp->member_before =
        rec.hard_state.term > 0 || rec.snapshot.index > 0 || rec.entry_count > 0;
    cp_trace(cp, "cluster: recovered term=%llu snapshot=%llu entries=%zu keys=%zu",
             (unsigned long long)rec.hard_state.term, (unsigned long long)rec.snapshot.index,
             rec.entry_count, db_count(cp->db));
    cp_xfer_open(cp);
    return 0;
}

void cp_close(struct cp *cp) {
    while (cp->waits != NULL) {
        struct cp_wait *w = cp->waits;
        cp->waits = w->next;
        buf_deinit(&w->request);
        buf_deinit(&w->reply);
        free(w);
    }
    if (cp->store != NULL) cp_xfer_close(cp);
    if (cp->raft != NULL) raft_free(cp->raft);
    if (cp->store != NULL) raftstore_close(cp->store);
    buf_deinit(&cp->held);
    buf_deinit(&cp->keyspaces_committed);
    buf_deinit(&cp->peer_out);
    buf_deinit(&cp->peer_sends);
    buf_deinit(&cp->fwd_reply);
    buf_deinit(&cp->encode);
    buf_deinit(&cp->args);
    buf_deinit(&cp->install_held);
    cp_snap_deinit(cp);
    cp_waits_deinit(cp);
    cp_spec_deinit(&cp->spec);
    if (cp->watch != NULL) cp_watch_free(cp->watch);
}

/* Appends one held record: kind, lsn, then the two parts of its payload. */
static void cp_hold(struct cp *cp, uint8_t kind, const void *head, size_t head_bytes,
                    const void *body, size_t body_bytes) {
    buf_append_byte(&cp->held, kind);
    buf_append_u64le(&cp->held, raftstore_last_lsn(cp->store));
    buf_append_u32le(&cp->held, (uint32_t)(head_bytes + body_bytes));
    buf_append(&cp->held, head, head_bytes);
    buf_append(&cp->held, body, body_bytes);
}

/* Raft thesis §10.2.1: a leader may send its entries to followers while it writes them to
 * its own disk, because it counts itself in a commit majority only once they are durable
 * (RAFT_EVENT_PERSISTED), and it applies and answers only after its own sync. So a
 * leader's appends and heartbeats go out at once, taking one fsync off the commit path;
 * votes and acknowledgements still wait for the disk. */
static bool cp_message_may_go_early(const struct cp *cp, const struct raft_message *m) {
    /* A follower's heartbeat answer promises nothing durable: it says "I know your term"
     * at this moment (check-quorum, ReadIndex) and where its log ends (a wiped follower).
     * Held behind the sync, it waited for a log sync that itself waits its turn with a
     * snapshot's data file: a busy disk then kept every answer from the leader past its
     * election timeout, and it stepped down (bench/join-big.sh, 4 KB values). A term or
     * vote it carries is still made durable before any vote or acknowledgement leaves. */
    if (m->type == RAFT_MSG_HEARTBEAT_RESP) return true;
    if (raft_role(cp->raft) != RAFT_LEADER) return false;
    return m->type == RAFT_MSG_APPEND || m->type == RAFT_MSG_HEARTBEAT;
}

static void cp_hold_message(struct cp *cp, const struct raft_message *m) {
    buf_clear(&cp->encode);
    buf_append_byte(&cp->encode, ENGINE_CP);
    buf_append_byte(&cp->encode, CP_PEER_RAFT);
    if (m->type == RAFT_MSG_INSTALL_SNAPSHOT) {
        cp_xfer_want(cp, m); /* sent in chunks, from disk (cp_xfer.c) */
        return;
    }
    int rc = raft_msg_encode(m, &cp->encode);
    if (rc != 0) {
        cp_trace(cp, "raft message to %u not sent: %s", m->to, err_text(rc));
        return;
    }
    if (cp_message_may_go_early(cp, m)) {
        cp_send(cp, m->to, cp->encode.data, cp->encode.len);
        return;
    }
    uint8_t to[4];
    base_store_u32le(to, m->to);
    cp_hold(cp, CP_HELD_MESSAGE, to, 4, cp->encode.data, cp->encode.len);
}

static void cp_hold_effects(struct cp *cp, const struct raft_effects *e) {
    for (size_t i = 0; i < e->message_count; i++) cp_hold_message(cp, &e->messages[i]);
    for (size_t i = 0; i < e->committed_count; i++) {
        const struct raft_entry *entry = &e->committed[i];
        uint8_t head[17];
        base_store_u64le(head, entry->index);
        base_store_u64le(head + 8, entry->term);
        head[16] = entry->type;
        cp_hold(cp, CP_HELD_APPLY, head, sizeof(head), entry->data, entry->data_bytes);
    }
    for (size_t i = 0; i < e->read_count; i++) {
        uint8_t head[16];
        base_store_u64le(head, e->reads[i].ctx);
        base_store_u64le(head + 8, e->reads[i].index);
        cp_hold(cp, CP_HELD_READ, head, sizeof(head), NULL, 0);
    }
    for (size_t i = 0; i < e->reads_failed_count; i++) {
        uint8_t head[8];
        base_store_u64le(head, e->reads_failed[i]);
        cp_hold(cp, CP_HELD_READ_FAIL, head, sizeof(head), NULL, 0);
    }
}

/* Writes this node proposed up to index that a snapshot from the leader replaced: whether
 * each was applied is unknown here. */
static void cp_finish_covered(struct cp *cp, uint64_t index) {
    struct cp_wait *w = cp->waits;
    while (w != NULL) {
        struct cp_wait *next = w->next;
        if (w->kind == CP_WAIT_PROPOSAL && w->index <= index) {
            if (!w->spec_acked)
                errcode_reply(cp_origin_out(cp, &w->origin), ERRCODE_TIMEOUT,
                              "this node lost leadership and caught up from a snapshot: "
                              "the write may or may not have been applied");
            cp_wait_finish(cp, w);
        }
        w = next;
    }
}

/* Raft's step (1): a snapshot from the leader replaces the state machine and the log. */
static void cp_restore(struct cp *cp, const struct raft_snapshot_meta *meta) {
    /* Saving the snapshot syncs and deletes WAL segments: not while the shell syncs one
     * (cp_peer_message holds an InstallSnapshot until the sync ends). */
    ASSERT(!cp->sync_in_flight);
    struct errmsg msg;
    cp_snap_restored(cp);
    int rc = cp_xfer_restore(cp, meta, &msg); /* the file received in chunks */
    if (rc == 0) rc = cp_restore_snapshot(cp, meta->index, &msg);
    if (rc != 0) {
        cp_fatal(cp, rc, "installing a snapshot from the leader failed", msg.text);
        return;
    }
    cp->applied = meta->index;
    cp->snapshot_index = meta->index;
    cp->snapshot_applied_bytes = cp->applied_bytes;
    cp_finish_covered(cp, meta->index);
    cp_watch_reset(cp->watch, meta->index);
    cp_spec_applied(cp, meta->index);
    cp->spec.term = 0; /* an overlay, if any, is rebuilt from the new state */
    cp_trace(cp, "cluster: installed snapshot index=%llu keys=%zu", (unsigned long long)meta->index,
             db_count(cp->db));
}

static void cp_persist(struct cp *cp, const struct raft_effects *e) {
    if (e->restore != NULL) cp_restore(cp, e->restore);
    uint64_t bytes = 0;
    for (size_t i = 0; i < e->entry_count; i++) bytes += e->entries[i].data_bytes;
    struct errmsg msg;
    int rc = 0;
    /* A proposal reserved its room before raft took it (so a full disk refuses the client
     * instead of stopping the node); every other step reserves here. */
    if (!cp->step_reserved) rc = raftstore_reserve(cp->store, e->entry_count, bytes, &msg);
    cp->step_reserved = false;
    if (rc != 0) {
        /* Raft holds these entries in memory already: without room to store them the log
         * would get a gap, so the node stops rather than risk it. */
        cp_fatal(cp, rc, "cannot store Raft log entries", msg.text);
        return;
    }
    if (e->hard_state_changed) raftstore_save_hard_state(cp->store, &e->hard_state);
    if (e->truncate_from != 0) {
        raftstore_truncate(cp->store, e->truncate_from);
        cp_keyspaces_truncated(cp, e->truncate_from);
    }
    if (e->entry_count > 0) raftstore_append(cp->store, e->entries, e->entry_count);
    raftstore_release_unused(cp->store);
}

/* raft_step plus the caller's contract. Returns raft's code. */
static const char *cp_role_name(enum raft_role role);

/* A change of role or term goes to the log (the why of an election: what raft last saw). */
static void cp_trace_role(struct cp *cp, enum raft_role role, uint64_t term) {
    enum raft_role now = raft_role(cp->raft);
    if (now == role && raft_term(cp->raft) == term) return;
    cp->stats.role_changes++;
    if (now == RAFT_LEADER) cp->stats.terms_led++;
    cp_trace(cp, "raft: term %llu: %s -> %s (leader %u, commit %llu, applied %llu)",
             (unsigned long long)raft_term(cp->raft), cp_role_name(role), cp_role_name(now),
             raft_leader_id(cp->raft), (unsigned long long)raft_commit_index(cp->raft),
             (unsigned long long)cp->applied);
}

int cp_raft_step(struct cp *cp, struct raft_event *ev, struct raft_effects *e) {
    ev->now_ms = cp->mono_ms;
    enum raft_role role = raft_role(cp->raft);
    uint64_t term = raft_term(cp->raft);
    int rc = raft_step(cp->raft, ev, e);
    cp_trace_role(cp, role, term);
    if (e->wake_at_ms != 0) cp->raft_wake_ms = e->wake_at_ms;
    if (cp->fatal != 0) return rc;
    cp_persist(cp, e);
    cp_hold_effects(cp, e);
    return rc;
}

int cp_propose(struct cp *cp, const uint8_t *data, size_t bytes, uint64_t *index, uint64_t *term) {
    struct errmsg msg;
    int rc = raftstore_reserve(cp->store, 1, bytes, &msg);
    if (rc != 0) {
        snprintf(cp->disk_full_text, sizeof(cp->disk_full_text), "%s", msg.text);
        return rc;
    }
    cp->step_reserved = true;
    struct raft_event ev = {.kind = RAFT_EVENT_PROPOSE};
    ev.propose.data = data;
    ev.propose.bytes = (uint32_t)bytes;
    ev.propose.defer = true; /* sent in one batch per follower at FLUSH */
    cp->proposals_deferred = true;
    struct raft_effects e;
    rc = cp_raft_step(cp, &ev, &e);
    *index = e.proposed_index;
    *term = e.proposed_term;
    if (rc == 0) cp_watch_proposed(cp, data, bytes, *index);
    return rc;
}

uint64_t cp_wall_ms(const struct cp *cp) {
    return cp->now_ms;
}

/* The time stamped on an entry this node proposes: its wall clock, but never before the
 * last one it stamped, so the entries of a leader carry non-decreasing times (expiry at
 * apply, and the leader-mode overlay, then see time move forward only). */
uint64_t cp_entry_ms(struct cp *cp) {
    uint64_t now = cp_wall_ms(cp);
    if (now > cp->last_entry_ms) cp->last_entry_ms = now;
    return cp->last_entry_ms;
}

static void cp_apply_sweep(struct cp *cp, uint64_t ts) {
    db_expire_cycle(cp->db, ts, CP_EXPIRE_CHECKS_PER_SWEEP, cp_watch_expired, cp);
}

/* Where the reply of an applied entry goes: its waiting origin (NULL: none), or for
 * leader mode the buffer it is checked in, or for replication = all the wait's own. */
static struct buf *cp_apply_out(struct cp *cp, struct cp_wait *w) {
    if (w == NULL) return &cp->scratch;
    if (w->spec_acked) {
        buf_clear(&cp->spec.check);
        return &cp->spec.check;
    }
    if (w->repl == KEYSPACE_REPLICATION_ALL) {
        buf_clear(&w->request);
        return &w->request;
    }
    return cp_origin_out(cp, &w->origin);
}

/* Applies one committed entry: the same on every replica (the leader's timestamp). */
static void cp_apply(struct cp *cp, uint64_t index, uint64_t term, uint8_t type,
                     const uint8_t *data, size_t bytes) {
    if (index <= cp->applied) return; /* covered by an installed snapshot */
    ASSERT(index == cp->applied + 1);
    cp->applied = index;
    cp->applied_bytes += bytes;
    struct cp_wait *w = cp_wait_proposal(cp, index);
    uint64_t ts = bytes >= 9 ? base_load_u64le(data + 1) : 0;
    if (type != RAFT_ENTRY_NORMAL || bytes < 9) {
        /* a leader's no-op, or a configuration change (CLUSTER ADD...: its reply waits) */
        if (w != NULL && w->term == term)
            buf_append(cp_origin_out(cp, &w->origin), w->request.data, w->request.len);
    } else if (data[0] == CP_ENTRY_SWEEP) {
        cp_apply_sweep(cp, ts);
    } else if (data[0] == CP_ENTRY_KEYSPACES) {
        cp_keyspaces_apply_committed(cp, data + 9, bytes - 9, index);
        if (w != NULL && w->term == term)
            buf_append(cp_origin_out(cp, &w->origin), w->request.data, w->request.len);
    } else if (data[0] == CP_ENTRY_COMMANDS) {
        bool ours = w != NULL && w->term == term;
        uint64_t saved_now = cp->now_ms;
        cp->now_ms = ts;
        cp->applying = index;
        cp_run_commands(cp, cp_apply_out(cp, ours ? w : NULL), ours ? w->origin.proto : 2, data + 9,
                        bytes - 9, false);
        cp->applying = 0;
        cp->now_ms = saved_now;
        buf_clear(&cp->scratch);
    }
    cp_spec_applied(cp, index);
    if (w == NULL) return;
    if (w->term != term) {
        /* Another leader's entry took this index: ours was never applied. */
        if (w->spec_acked) cp->spec.acked_lost++;
        errcode_reply(cp_origin_out(cp, &w->origin), ERRCODE_TRYAGAIN,
                      "the write was dropped by a leader change and not applied; retry it");
    } else if (w->spec_acked && (w->request.len != cp->spec.check.len ||
                                 memcmp(w->request.data, cp->spec.check.data, w->request.len))) {
        cp->spec.mismatches++;
        cp_trace(cp,
                 "warning: leader-mode reply for entry %llu differed from the applied "
                 "one",
                 (unsigned long long)index);
    } else if (w->repl == KEYSPACE_REPLICATION_ALL && w->origin.request_id + w->origin.peer != 0) {
        w->kind = CP_WAIT_ALL; /* answered once every voter holds it */
        cp->replica_waits++;
        cp_check_replica_waits(cp);
        return;
    }
    cp_wait_finish(cp, w);
}

/* Releases held effects whose lsn is durable, in order. */
static void cp_release(struct cp *cp) {
    uint64_t durable = raftstore_durable_lsn(cp->store);
    bool applied = false;
    while (cp->held_head < cp->held.len && cp->fatal == 0) {
        const uint8_t *h = cp->held.data + cp->held_head;
        uint64_t lsn = base_load_u64le(h + 1);
        if (lsn > durable) break;
        uint32_t len = base_load_u32le(h + 9);
        const uint8_t *p = h + CP_HELD_HEADER_BYTES;
        cp->held_head += CP_HELD_HEADER_BYTES + len;
        switch (h[0]) {
        case CP_HELD_MESSAGE:
            cp_send(cp, base_load_u32le(p), p + 4, len - 4);
            break;
        case CP_HELD_APPLY:
            cp_apply(cp, base_load_u64le(p), base_load_u64le(p + 8), p[16], p + 17, len - 17);
            applied = true;
            break;
        case CP_HELD_READ:
            cp_read_ready(cp, base_load_u64le(p), base_load_u64le(p + 8), false);
            break;
        case CP_HELD_READ_FAIL:
            cp_read_ready(cp, base_load_u64le(p), 0, true);
            break;
        default:
            UNREACHABLE();
        }
    }
    if (cp->held_head == cp->held.len) {
        buf_clear(&cp->held);
        cp->held_head = 0;
    }
    if (applied) cp_after_apply(cp);
}

/* After a sync: release, tell raft what is durable, and repeat while that produces more
 * effects that are already durable (e.g. a commit that raft can now count). */
static void cp_progress(struct cp *cp) {
    for (int round = 0; round < 8 && cp->fatal == 0; round++) {
        cp_release(cp);
        uint64_t index;
        uint64_t term;
        raftstore_durable_entry(cp->store, &index, &term);
        if (index == cp->persisted_reported) break;
        cp->persisted_reported = index;
        struct raft_event ev = {.kind = RAFT_EVENT_PERSISTED};
        ev.persisted.index = index;
        ev.persisted.term = term;
        struct raft_effects e;
        cp_raft_step(cp, &ev, &e);
    }
    cp_spec_release(cp);
    cp_check_replica_waits(cp);
    cp_snap_progress(cp);
}

/* SAVE and BGSAVE in a cluster: a Raft snapshot of this node's state, started at once or
 * after the one running; SAVE answers once a snapshot that holds everything applied when
 * it was asked (w->index) is on disk, or when one fails. */
void cp_save_done(struct cp *cp, int rc, uint64_t index) {
    struct cp_wait *w = cp->waits;
    while (w != NULL) {
        struct cp_wait *next = w->next;
        if (w->kind == CP_WAIT_SAVE && (rc != 0 || w->index <= index)) {
            struct buf *out = cp_origin_out(cp, &w->origin);
            if (rc == 0)
                resp_put_simple(out, "OK");
            else
                resp_put_errorf(out, "ERR snapshot failed: %s (see the node's log)", err_text(rc));
            cp_wait_finish(cp, w);
        }
        w = next;
    }
}

void cp_save_command(struct cp *cp, struct cp_origin *o, bool background) {
    if (cp->applied <= cp->snapshot_index && !cp->snap.active) {
        /* Nothing applied since the last snapshot (or nothing at all): it holds it all. */
        resp_put_simple(cp_origin_out(cp, o), background ? "Background saving started" : "OK");
        return;
    }
    bool scheduled = cp->save_requested || cp->snap.active;
    cp->save_requested = true;
    if (background) {
        resp_put_simple(cp_origin_out(cp, o),
                        scheduled ? "Background saving scheduled" : "Background saving started");
    } else {
        struct cp_wait *w = cp_wait_start(cp, CP_WAIT_SAVE, o);
        w->deadline_ms = UINT64_MAX; /* answered by cp_save_done */
        w->index = cp->applied;
    }
    cp_progress(cp);
}

/* Memory of the compacted log (raft_release, a fraction of a millisecond a turn), and a
 * step of old files (raftstore_collect), at most one per CP_COLLECT_SLICE_MS: each
 * frees up to 4 MiB (about a millisecond of the disk's work, on the loop), so a snapshot's
 * garbage (the old data file, the log's segments) goes at up to 800 MiB/s, with at most a
 * fifth of the loop's time. */
static void cp_collect(struct cp *cp) {
    raft_release(cp->raft, CP_LOG_RELEASE_BLOCKS);
    if (cp->mono_ms < cp->next_collect_ms || !raftstore_collect_pending(cp->store)) return;
    cp->next_collect_ms = cp->mono_ms + CP_COLLECT_SLICE_MS;
    raftstore_collect(cp->store, false);
}

void cp_flush(struct cp *cp, struct engine_effects *out) {
    if (cp->install_held.len > 0) ASSERT(cp->sync_in_flight); /* cp_synced hands it over */
    struct errmsg msg;
    if (cp->proposals_deferred) {
        cp->proposals_deferred = false;
        struct raft_event ev = {.kind = RAFT_EVENT_REPLICATE};
        struct raft_effects e;
        cp_raft_step(cp, &ev, &e);
    }
    if (raftstore_flush(cp->store, &msg) != 0) {
        cp_fatal(cp, ERR_IO, "writing the Raft log failed", msg.text);
    }
    cp_progress(cp);
    cp_collect(cp);
    cp_members_effect(cp, out);
    struct disk_file *file;
    bool log_waiting = raftstore_last_lsn(cp->store) > raftstore_durable_lsn(cp->store);
    if (!cp->sync_in_flight && cp->fatal == 0 &&
        (cp_snap_sync_begin(cp, log_waiting, &file) ||
         cp_xfer_sync_begin(cp, log_waiting, &file))) {
        /* A snapshot's data file, or one being received, in turns with the log (neither
         * starves the other). */
        cp->sync_in_flight = true;
        out->sync_file = file;
        out->sync_token = 0;
    } else if (!cp->sync_in_flight && cp->fatal == 0 && (!log_waiting || !cp->dir_sync_last) &&
               raftstore_dir_sync_begin(cp->store, &file)) {
        /* The directory, after a step of raftstore_collect changed it (in turns too). */
        cp->sync_in_flight = true;
        cp->dir_syncing = true;
        cp->dir_sync_last = true;
        out->sync_file = file;
        out->sync_token = 0;
    } else if (!cp->sync_in_flight && cp->fatal == 0 &&
               raftstore_sync_begin(cp->store, &file, &cp->sync_token)) {
        cp->sync_in_flight = true;
        cp->dir_sync_last = false;
        cp_snap_log_synced(cp);
        cp_xfer_log_synced(cp);
        out->sync_file = file;
        out->sync_token = cp->sync_token;
        /* A follower with no request of its own clients in flight: its acknowledgement
         * waits for the sync anyway, and a thread's two wake-ups cost more on a small
         * machine; one whose clients wait keeps serving them (docs/performance.md). */
        out->sync_inline = raft_role(cp->raft) == RAFT_FOLLOWER && cp->wait_count == 0;
    }
    /* Build the peer sends over the payloads collected since the last FLUSH. */
    buf_clear(&cp->peer_sends);
    for (size_t pos = 0; pos < cp->peer_out.len;) {
        struct node_peer_send send;
        send.to = base_load_u32le(cp->peer_out.data + pos);
        send.bytes = base_load_u32le(cp->peer_out.data + pos + 4);
        send.data = cp->peer_out.data + pos + 8;
        buf_append(&cp->peer_sends, &send, sizeof(send));
        pos += 8 + send.bytes;
    }
    out->sends = (const struct node_peer_send *)cp->peer_sends.data;
    out->send_count = cp->peer_sends.len / sizeof(struct node_peer_send);
}

/* Called at the start of every FLUSH: the previous batch's sends were carried out. */
void cp_sends_done(struct cp *cp) {
    buf_clear(&cp->peer_out);
}

static void cp_step_message(struct cp *cp, const struct raft_message *m) {
    struct raft_event ev = {.kind = RAFT_EVENT_MESSAGE, .message = m};
    struct raft_effects e;
    cp_raft_step(cp, &ev, &e);
    if (m->type == RAFT_MSG_APPEND_RESP) cp_check_replica_waits(cp);
}

/* Hands the InstallSnapshot held during the sync that just ended to raft, then frees it
 * (a snapshot may be large). It may have gone stale meanwhile: raft drops one of an older
 * term (Raft §5.1) and answers one at or below its commit index without restoring (§7),
 * as it does any late message. */
static void cp_release_install(struct cp *cp) {
    ASSERT(!cp->sync_in_flight);
    if (cp->install_held.len == 0) return;
    struct raft_message m;
    int rc = raft_msg_decode(cp->install_held.data, cp->install_held.len, &m, cp->decoded);
    ASSERT(rc == 0); /* it decoded when it arrived, and the copy is ours */
    ASSERT(m.type == RAFT_MSG_INSTALL_SNAPSHOT);
    ASSERT(m.to == cp->config.id);
    buf_clear(&cp->install_held);
    cp_xfer_release(cp, &m);
}

void cp_synced(struct cp *cp, int error) {
    ASSERT(cp->sync_in_flight);
    cp->sync_in_flight = false;
    if (cp->dir_syncing) {
        cp->dir_syncing = false;
        raftstore_dir_sync_end(cp->store, error);
        if (error != 0) {
            cp_fatal(cp, error, "fsync of the data directory failed",
                     "stopping: which of its files survive a crash is unknown");
            return;
        }
        cp_release_install(cp);
        cp_progress(cp);
        return;
    }
    if (cp_snap_syncing(cp) || cp_xfer_syncing(cp)) {
        if (cp_snap_syncing(cp))
            cp_snap_synced(cp, error); /* SAVE's waits hear from it */
        else
            cp_xfer_synced(cp, error);
        cp_release_install(cp);
        cp_progress(cp);
        return;
    }
    raftstore_sync_end(cp->store, cp->sync_token, error);
    if (error != 0) {
        cp_fatal(cp, error, "fsync of the Raft log failed",
                 "stopping so that no "
                 "unsynced entry is acknowledged");
        return;
    }
    cp->stats.syncs++;
    cp_release_install(cp); /* before cp_progress, which may take a snapshot of our own */
    cp_progress(cp);
}

void cp_peer_message(struct cp *cp, uint32_t from, const uint8_t *data, size_t bytes) {
    if (bytes == 0) return;
    if (data[0] == CP_PEER_FORWARD) {
        cp_forward_request(cp, from, data + 1, bytes - 1);
        return;
    }
    if (data[0] == CP_PEER_FORWARD_REPLY) {
        cp_forward_reply(cp, data + 1, bytes - 1);
        return;
    }
    if (data[0] >= CP_PEER_SNAP_OFFER && data[0] <= CP_PEER_SNAP_INSTALL) {
        cp_xfer_message(cp, from, data[0], data + 1, bytes - 1);
        return;
    }
    if (data[0] != CP_PEER_RAFT) return;
    struct raft_message m;
    int rc = raft_msg_decode(data + 1, bytes - 1, &m, cp->decoded);
    if (rc != 0 || m.from != from || m.to != cp->config.id) {
        cp_trace(cp, "dropped a bad raft message from %u: %s", from, err_text(rc));
        return;
    }
    if (m.type == RAFT_MSG_INSTALL_SNAPSHOT) {
        /* An older release's, with the snapshot inside (this one sends them in chunks,
         * cp_xfer.c; docs/formats.md: mixed releases cannot catch a node up this way). */
        cp_trace(cp, "dropped an InstallSnapshot from %u sent whole by an older release", from);
        return;
    }
    cp_step_message(cp, &m);
}

void cp_send(struct cp *cp, uint32_t to, const uint8_t *data, size_t bytes) {
    buf_append_u32le(&cp->peer_out, to);
    buf_append_u32le(&cp->peer_out, (uint32_t)bytes);
    buf_append(&cp->peer_out, data, bytes);
}

/* Leader: expired keys are removed through the log, at the leader's time, so every
 * replica removes the same keys (a replica never deletes on its own clock). */
static void cp_sweep(struct cp *cp) {
    if (raft_role(cp->raft) != RAFT_LEADER || db_expires_count(cp->db) == 0) return;
    if (cp->mono_ms < cp->last_sweep_ms + CP_SWEEP_MS) return;
    cp->last_sweep_ms = cp->mono_ms;
    uint8_t entry[9];
    entry[0] = CP_ENTRY_SWEEP;
    base_store_u64le(entry + 1, cp_entry_ms(cp));
    uint64_t index;
    uint64_t term;
    cp_propose(cp, entry, sizeof(entry), &index, &term);
}

static void cp_reply_deadline(struct cp *cp, struct cp_wait *w) {
    struct buf *out = cp_origin_out(cp, &w->origin);
    unsigned long long ms = (unsigned long long)cp->config.request_timeout_ms;
    if (w->session) {
        errcode_reply(out, ERRCODE_TIMEOUT,
                      "session: this node has applied %llu of the %llu the session saw; try "
                      "again or read on the leader",
                      (unsigned long long)cp->applied, (unsigned long long)w->index);
    } else if (w->writes) {
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

static void cp_reply_orphaned(struct cp *cp, struct cp_wait *w) {
    struct buf *out = cp_origin_out(cp, &w->origin);
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

void cp_tick(struct cp *cp) {
    cp_check_replica_waits(cp);
    struct raft_event ev = {.kind = RAFT_EVENT_TICK};
    struct raft_effects e;
    cp_raft_step(cp, &ev, &e);
    cp_sweep(cp);
    cp_keyspaces_tick(cp);
    cp_snap_progress(cp); /* an idle node's snapshot goes on */
    cp_xfer_pump(cp);
    cp_collect(cp);
    /* Requests past their deadline, or forwarded to a leader that is no longer one: no
     * answer will come from it, so the client hears now rather than at the deadline. */
    uint32_t leader = raft_leader_id(cp->raft);
    cp_after_apply(cp); /* a session's read may be covered by a restored snapshot */
    struct cp_wait *w = cp->waits;
    uint64_t deadline_min = UINT64_MAX;
    while (w != NULL) {
        struct cp_wait *next = w->next;
        bool orphaned = w->kind == CP_WAIT_FORWARD && w->forwarded_to != leader;
        if (!w->spec_acked && w->deadline_ms < deadline_min) deadline_min = w->deadline_ms;
        if (w->kind == CP_WAIT_REPLICAS || w->kind == CP_WAIT_ALL) {
            /* cp_check_replica_waits answers these. */
        } else if (w->spec_acked) {
            /* Answered already; kept until its index is applied, to count it if lost, but
             * not forever: a node that lost leadership may never apply that index. */
            bool ours = raft_role(cp->raft) == RAFT_LEADER && raft_term(cp->raft) == w->term;
            if (!ours && cp->mono_ms > w->deadline_ms + CP_ACKED_KEEP_MS) cp_wait_finish(cp, w);
        } else if (orphaned) {
            cp_reply_orphaned(cp, w);
            cp_wait_finish(cp, w);
        } else if (w->deadline_ms <= cp->mono_ms) {
            cp_reply_deadline(cp, w);
            cp_wait_finish(cp, w);
        }
        w = next;
    }
    cp->deadline_min_ms = deadline_min; /* finished ones counted too: at worst a wake early */
}

uint64_t cp_wake_at(const struct cp *cp) {
    /* Raft asks in its own (monotonic) time, as the engine interface does. */
    uint64_t next = cp->mono_ms + (cp->config.heartbeat_ms ? cp->config.heartbeat_ms : 50);
    if (cp->raft_wake_ms > cp->mono_ms && cp->raft_wake_ms < next) next = cp->raft_wake_ms;
    if (cp->raft_wake_ms != 0 && cp->raft_wake_ms <= cp->mono_ms) next = cp->mono_ms + 1;
    /* cp_tick keeps deadline_min_ms exact (cp_wait_start lowers it): no walk per step. */
    if (cp->wait_count > 0 && cp->deadline_min_ms < next) next = cp->deadline_min_ms;
    if (cp_snap_wake_at(cp) < next) next = cp_snap_wake_at(cp);
    if (cp->next_collect_ms < next && raftstore_collect_pending(cp->store))
        next = cp->next_collect_ms > cp->mono_ms ? cp->next_collect_ms : cp->mono_ms + 1;
    return next > cp->mono_ms ? next : cp->mono_ms;
}

static const char *cp_role_name(enum raft_role role) {
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

void cp_info(struct cp *cp, struct buf *out) {
    const struct raft_config *config = raft_config(cp->raft);
    buf_appendf(out,
                "role:%s\r\nraft_term:%llu\r\nraft_leader_id:%u\r\n"
                "raft_commit_index:%llu\r\nraft_applied_index:%llu\r\nraft_last_index:%llu\r\n"
                "raft_snapshot_index:%llu\r\nraft_voters:%u\r\n"
                "request_timeout_ms:%llu\r\nwaiting_requests:%u\r\n",
                cp_role_name(raft_role(cp->raft)), (unsigned long long)raft_term(cp->raft),
                raft_leader_id(cp->raft), (unsigned long long)raft_commit_index(cp->raft),
                (unsigned long long)cp->applied, (unsigned long long)raft_last_index(cp->raft),
                (unsigned long long)cp->snapshot_index, raft_config_voter_count(config),
                (unsigned long long)cp->config.request_timeout_ms, cp->wait_count);
    buf_appendf(out,
                "snapshots_taken:%llu\r\nsnapshot_in_progress:%d\r\n"
                "snapshot_last_bytes:%llu\r\nsnapshot_last_ms:%llu\r\n"
                "snapshot_ops_streamed:%llu\r\nraft_role_changes:%llu\r\n"
                "raft_terms_led:%llu\r\nraft_log_entries:%llu\r\nraft_log_bytes:%llu\r\n",
                (unsigned long long)cp->stats.snapshots, cp->snap.active ? 1 : 0,
                (unsigned long long)cp->stats.snapshot_last_bytes,
                (unsigned long long)cp->stats.snapshot_last_ms,
                (unsigned long long)cp->stats.snapshot_ops_streamed,
                (unsigned long long)cp->stats.role_changes, (unsigned long long)cp->stats.terms_led,
                (unsigned long long)(raft_last_index(cp->raft) + 1 - raft_first_index(cp->raft)),
                (unsigned long long)raft_log_bytes(cp->raft));
    cp_xfer_info(cp, out);
    cp_repl_info(cp, out);
}
