/*
 * One simulated node: the real raft core, a raftstore on the node's own memdisk and a small
 * key -> int64 state machine, driven exactly by raft.h's caller contract:
 *   (1) persist (restore, hard state, truncate, entries) through the raftstore, sync;
 *   (2) only then send the step's messages (INSTALL_SNAPSHOT gets the stored blob attached);
 *   (3) apply committed entries, serve reads, fail failed reads;
 *   (4) report RAFT_EVENT_PERSISTED with the store's durable entry.
 * Every step's (2)-(3) is held in a FIFO with the store position its writes reached, and
 * released once the store is durable there. Synchronous seeds sync inside the step, so the
 * FIFO drains at once; asynchronous seeds sync later (a virtual fsync latency) while later
 * steps run, which is raft.h's group-commit variant. A crash drops the FIFO, the raft and
 * everything not synced on the memdisk; a restart rebuilds raft from what the store
 * recovers and the state machine from the recovered snapshot blob.
 */
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "raft/msg_codec.h"
#include "raftsim_internal.h"
#include "storage/memdisk.h"

#define RAFTSIM_NODE_SEGMENT_BYTES_MIN 8192u
#define RAFTSIM_NODE_SEGMENT_BYTES_MAX 131072u

static void raftsim_node_step_raw(struct raftsim_world *w, struct raftsim_node *n,
                                  const struct raft_event *ev, struct raft_effects *fx, int *rc);
static void raftsim_node_drain(struct raftsim_world *w, struct raftsim_node *n);

/* --- clocks ------------------------------------------------------------------------- */

uint64_t raftsim_node_local_ms(const struct raftsim_node *n, uint64_t global_ms) {
    return sim_clock_read(&n->host->clock, global_ms);
}

/* --- the state machine -------------------------------------------------------------- */

void raftsim_node_kv_blob(const struct raftsim_kv *kv, uint8_t *out) {
    base_store_u64le(out, kv->applied_index);
    for (int k = 0; k < RAFTSIM_KEYS; k++) {
        out[8 + k * 9] = kv->present[k];
        base_store_u64le(out + 8 + k * 9 + 1, (uint64_t)kv->value[k]);
    }
}

bool raftsim_node_kv_unblob(const uint8_t *blob, uint64_t bytes, struct raftsim_kv *kv) {
    memset(kv, 0, sizeof(*kv));
    if (bytes != RAFTSIM_KV_BLOB_BYTES) return false;
    kv->applied_index = base_load_u64le(blob);
    for (int k = 0; k < RAFTSIM_KEYS; k++) {
        if (blob[8 + k * 9] > 1) return false;
        kv->present[k] = blob[8 + k * 9] == 1;
        kv->value[k] = (int64_t)base_load_u64le(blob + 8 + k * 9 + 1);
    }
    return true;
}

static void raftsim_node_encode_op(const struct raftsim_request *r, uint8_t *out) {
    out[0] = (uint8_t)r->kind;
    out[1] = r->key;
    out[2] = r->expect_nil;
    base_store_u64le(out + 3, (uint64_t)r->arg);
    base_store_u64le(out + 11, (uint64_t)r->arg2);
    base_store_u64le(out + 19, r->op_id);
}

/* Applies an encoded write to kv; returns false when data is not one (a violation). */
static bool raftsim_node_kv_apply(struct raftsim_kv *kv, const uint8_t *data, size_t bytes,
                                  bool *swapped) {
    *swapped = false;
    if (bytes != RAFTSIM_OP_BYTES || data[1] >= RAFTSIM_KEYS) return false;
    uint8_t k = data[1];
    int64_t arg = (int64_t)base_load_u64le(data + 3), arg2 = (int64_t)base_load_u64le(data + 11);
    if (data[0] == RAFTSIM_OP_PUT) {
        kv->present[k] = true;
        kv->value[k] = arg;
        return true;
    }
    if (data[0] != RAFTSIM_OP_CAS) return false;
    bool match = data[2] ? !kv->present[k] : (kv->present[k] && kv->value[k] == arg);
    if (match) {
        kv->present[k] = true;
        kv->value[k] = arg2;
        *swapped = true;
    }
    return true;
}

/* --- lifecycle ---------------------------------------------------------------------- */

void raftsim_node_init(struct raftsim_world *w, struct raftsim_node *n, uint32_t id) {
    memset(n, 0, sizeof(*n));
    n->id = id;
    n->host = &w->sim.hosts[id];
    prng_init(&n->prng, w->sim.options.seed * 0x9e3779b97f4a7c15ull + id * 7919u + 1);
    memdisk_init(&n->disk);
    sim_clock_init(&n->host->clock, &n->prng);
    n->snapshot_every =
        prng_range(&n->prng, RAFTSIM_SNAPSHOT_EVERY_MIN, RAFTSIM_SNAPSHOT_EVERY_MAX);
}

static void raftsim_node_held_free(struct raftsim_held *h) {
    buf_deinit(&h->wire);
    buf_deinit(&h->apply_data);
    buf_deinit(&h->restore_data);
    free(h->applies);
    free(h->reads);
    free(h->failed);
    free(h);
}

static void raftsim_node_free_held(struct raftsim_node *n) {
    while (n->held_head != NULL) {
        struct raftsim_held *h = n->held_head;
        n->held_head = h->next;
        raftsim_node_held_free(h);
    }
    n->held_tail = NULL;
}

void raftsim_node_deinit(struct raftsim_world *w, struct raftsim_node *n) {
    (void)w;
    raftsim_node_free_held(n);
    raft_free(n->raft);
    if (n->store != NULL) raftstore_close(n->store);
    memdisk_deinit(&n->disk);
    memset(n, 0, sizeof(*n));
}

void raftsim_node_crash(struct raftsim_world *w, struct raftsim_node *n, bool tear) {
    ASSERT(n->host->up);
    sim_trace_add(&w->sim.trace, w->sim.now_ms, n->id, SIM_TRACE_CRASH, tear, n->incarnation, 0, 0);
    raftsim_node_free_held(n);
    raft_free(n->raft);
    n->raft = NULL;
    memdisk_crash(&n->disk, tear, prng_next(&n->prng));
    raftstore_close(n->store);
    n->store = NULL;
    n->host->up = false;
    n->host->sync_at_ms = 0;
    memset(n->pending, 0, sizeof(n->pending)); /* the clients will time out: INFO */
}

static int raftsim_node_open_raft(struct raftsim_world *w, struct raftsim_node *n,
                                  const struct raftstore_recovered *rec) {
    struct raft_options o;
    raft_options_default(&o);
    o.id = n->id;
    o.seed = prng_next(&n->prng);
    o.election_timeout_ms_min = RAFTSIM_ELECTION_MS_MIN;
    o.election_timeout_ms_max = RAFTSIM_ELECTION_MS_MAX;
    o.heartbeat_ms = RAFTSIM_HEARTBEAT_MS;
    o.lease_drift_ms = RAFTSIM_LEASE_DRIFT_MS;
    o.msg_bytes_max = 1024 * (1 + prng_range(&n->prng, 0, 8));
    /* Half the seeds keep a trail of entries behind each snapshot (from the seed, not the
     * prngs, so the schedules stay those of the seeds before the trail existed). */
    o.log_trail_entries = w->sim.options.seed % 2 == 0 ? 0 : 4 + w->sim.options.seed % 29;
    o.hard_state = rec->hard_state;
    o.snapshot_index = rec->snapshot.index;
    o.snapshot_term = rec->snapshot.term;
    o.snapshot_config = rec->snapshot.index > 0 ? rec->snapshot.config : w->config;
    o.entries = rec->entries;
    o.entry_count = rec->entry_count;
    o.now_ms = raftsim_node_local_ms(n, w->sim.now_ms);
    struct errmsg msg = {{0}};
    int rc = raft_new(&o, &n->raft, &msg);
    if (rc != 0)
        return sim_check_fail(&w->sim.check, "node %u restart: raft_new: %s", n->id, msg.text);
    return 0;
}

int raftsim_node_start(struct raftsim_world *w, struct raftsim_node *n) {
    ASSERT(!n->host->up && n->store == NULL && n->raft == NULL);
    struct raftstore_options so = {
        .segment_bytes =
            prng_range(&n->prng, RAFTSIM_NODE_SEGMENT_BYTES_MIN, RAFTSIM_NODE_SEGMENT_BYTES_MAX)};
    struct raftstore_recovered rec;
    struct errmsg msg = {{0}};
    int rc = raftstore_open(&n->disk, &so, &n->store, &rec, &msg);
    if (rc != 0)
        return sim_check_fail(&w->sim.check, "node %u: raftstore_open: %s (%s)", n->id,
                              err_name(rc), msg.text);
    /* The state machine comes back from the snapshot; raft hands out the rest. */
    memset(&n->kv, 0, sizeof(n->kv));
    if (rec.snapshot.index > 0 &&
        (!raftsim_node_kv_unblob(rec.snapshot.data, rec.snapshot.data_bytes, &n->kv) ||
         n->kv.applied_index != rec.snapshot.index))
        return sim_check_fail(&w->sim.check, "node %u: recovered snapshot %llu has a bad blob",
                              n->id, (unsigned long long)rec.snapshot.index);
    sim_trace_add(&w->sim.trace, w->sim.now_ms, n->id, SIM_TRACE_RESTART, rec.hard_state.term,
                  rec.snapshot.index, rec.entry_count, rec.hard_state.vote);
    if (raftsim_node_open_raft(w, n, &rec) != 0) return -1;
    n->host->up = true;
    n->incarnation++;
    n->async = w->sim.stats->async_seed != 0;
    n->commit_seen = raft_commit_index(n->raft);
    n->role_seen = raft_role(n->raft);
    n->term_seen = raft_term(n->raft);
    raftstore_durable_entry(n->store, &n->reported_index, &n->reported_term);
    n->host->wake_ms = w->sim.now_ms;
    n->same_time_ticks = 0;
    return 0;
}

/* --- (1) persist and hold ----------------------------------------------------------- */

static int raftsim_node_persist(struct raftsim_world *w, struct raftsim_node *n,
                                const struct raft_effects *fx) {
    struct errmsg msg = {{0}};
    int rc = 0;
    if (fx->restore != NULL) {
        rc = raftstore_save_snapshot(n->store, fx->restore, RAFTSTORE_SNAPSHOT_RESTORED, &msg);
        if (rc != 0) goto fail;
        raftstore_collect(n->store, true);
        w->sim.stats->restores++;
    }
    uint64_t data_bytes = 0;
    for (size_t i = 0; i < fx->entry_count; i++) data_bytes += fx->entries[i].data_bytes;
    rc = raftstore_reserve(n->store, fx->entry_count, data_bytes, &msg);
    if (rc != 0) goto fail;
    if (fx->hard_state_changed) raftstore_save_hard_state(n->store, &fx->hard_state);
    if (fx->truncate_from != 0) raftstore_truncate(n->store, fx->truncate_from);
    if (fx->entry_count > 0) raftstore_append(n->store, fx->entries, fx->entry_count);
    rc = n->async ? raftstore_flush(n->store, &msg) : raftstore_sync(n->store, &msg);
    if (rc != 0) goto fail;
    if (fx->entry_count > 0 || fx->truncate_from != 0 || fx->hard_state_changed)
        sim_trace_add(&w->sim.trace, w->sim.now_ms, n->id, SIM_TRACE_PERSIST, fx->entry_count,
                      fx->entry_count ? fx->entries[fx->entry_count - 1].index : 0,
                      fx->truncate_from, fx->hard_state_changed ? fx->hard_state.term : 0);
    return 0;
fail:
    return sim_check_fail(&w->sim.check, "node %u: raftstore: %s (%s)", n->id, err_name(rc),
                          msg.text);
}

static int raftsim_node_hold_message(struct raftsim_world *w, struct raftsim_node *n,
                                     struct raftsim_held *h, const struct raft_message *m) {
    struct raft_message copy = *m;
    if (m->type == RAFT_MSG_INSTALL_SNAPSHOT) {
        /* raft.h (2): attach the state-machine snapshot taken at message.index. */
        const struct raft_snapshot_meta *s = raftstore_snapshot(n->store);
        if (s->index != m->index)
            return sim_check_fail(&w->sim.check, "node %u: INSTALL_SNAPSHOT at %llu, stored %llu",
                                  n->id, (unsigned long long)m->index,
                                  (unsigned long long)s->index);
        copy.snapshot_data = s->data;
        copy.snapshot_bytes = s->data_bytes;
    }
    buf_clear(&w->scratch);
    int rc = raft_msg_encode(&copy, &w->scratch);
    if (rc != 0) return sim_check_fail(&w->sim.check, "node %u: encode: %s", n->id, err_name(rc));
    buf_append_u32le(&h->wire, m->to);
    buf_append_u32le(&h->wire, (uint32_t)w->scratch.len);
    buf_append(&h->wire, w->scratch.data, w->scratch.len);
    sim_trace_add(&w->sim.trace, w->sim.now_ms, n->id, SIM_TRACE_SEND, m->to, m->type, m->term,
                  m->index);
    return 0;
}

static void raftsim_node_hold_applies(struct raftsim_held *h, const struct raft_effects *fx) {
    if (fx->committed_count == 0) return;
    h->applies = base_malloc(fx->committed_count * sizeof(*h->applies));
    h->apply_count = fx->committed_count;
    for (size_t i = 0; i < fx->committed_count; i++) {
        h->applies[i] = fx->committed[i];
        h->applies[i].data = NULL; /* offsets into apply_data, fixed up on release */
        buf_append(&h->apply_data, fx->committed[i].data, fx->committed[i].data_bytes);
    }
}

static void raftsim_node_hold_reads(struct raftsim_held *h, const struct raft_effects *fx) {
    if (fx->read_count > 0) {
        h->reads = base_malloc(fx->read_count * sizeof(*h->reads));
        memcpy(h->reads, fx->reads, fx->read_count * sizeof(*h->reads));
        h->read_count = fx->read_count;
    }
    if (fx->reads_failed_count > 0) {
        h->failed = base_malloc(fx->reads_failed_count * sizeof(*h->failed));
        memcpy(h->failed, fx->reads_failed, fx->reads_failed_count * sizeof(*h->failed));
        h->failed_count = fx->reads_failed_count;
    }
}

/* Copies what (2) and (3) need, since fx is borrowed only until the next raft call. */
static int raftsim_node_hold(struct raftsim_world *w, struct raftsim_node *n,
                             const struct raft_effects *fx) {
    struct raftsim_held *h = base_calloc(1, sizeof(*h));
    buf_init(&h->wire);
    buf_init(&h->apply_data);
    buf_init(&h->restore_data);
    h->position = raftstore_last_lsn(n->store);
    if (fx->restore != NULL) {
        h->restore = true;
        h->restore_index = fx->restore->index;
        h->restore_term = fx->restore->term;
        buf_append(&h->restore_data, fx->restore->data, (size_t)fx->restore->data_bytes);
    }
    raftsim_node_hold_applies(h, fx);
    raftsim_node_hold_reads(h, fx);
    if (n->held_tail != NULL)
        n->held_tail->next = h;
    else
        n->held_head = h;
    n->held_tail = h;
    for (size_t i = 0; i < fx->message_count; i++)
        if (raftsim_node_hold_message(w, n, h, &fx->messages[i]) != 0) return -1;
    return 0;
}

/* --- (2)/(3) release ---------------------------------------------------------------- */

static struct raftsim_pending *raftsim_node_find(struct raftsim_node *n, uint64_t op_id) {
    for (int i = 0; i < RAFTSIM_PENDING_MAX; i++)
        if (n->pending[i].used && n->pending[i].req.op_id == op_id) return &n->pending[i];
    return NULL;
}

static void raftsim_node_answer(struct raftsim_world *w, struct raftsim_node *n,
                                struct raftsim_pending *p, enum lincheck_outcome outcome) {
    struct raftsim_reply r = {.outcome = outcome,
                              .leader_hint = n->raft ? raft_leader_id(n->raft) : 0,
                              .swapped = p->swapped};
    if (p->req.kind == RAFTSIM_OP_GET && outcome == LINCHECK_OK) {
        r.got_nil = !n->kv.present[p->req.key];
        r.got = r.got_nil ? 0 : n->kv.value[p->req.key];
    }
    raftsim_client_reply(w, p->req.client, p->req.op_id, &r);
    memset(p, 0, sizeof(*p));
}

static void raftsim_node_acked(struct raftsim_world *w, struct raftsim_node *n,
                               struct raftsim_pending *p) {
    raftsim_acked(w, p->index, p->term, p->req.op_id);
    raftsim_node_answer(w, n, p, LINCHECK_OK);
}

/* An applied entry answers the write proposed at its index on this node. */
static void raftsim_node_applied_write(struct raftsim_world *w, struct raftsim_node *n,
                                       const struct raft_entry *e, bool swapped) {
    for (int i = 0; i < RAFTSIM_PENDING_MAX; i++) {
        struct raftsim_pending *p = &n->pending[i];
        if (!p->used || p->req.kind == RAFTSIM_OP_GET || p->index != e->index) continue;
        if (p->term != e->term) { /* raft.h: applied with another term: unknown */
            raftsim_node_answer(w, n, p, LINCHECK_INFO);
            continue;
        }
        p->swapped = swapped;
        if (w->sim.options.replication == SIM_REPLICATION_MAJORITY)
            raftsim_node_acked(w, n, p);
        else if (w->sim.options.replication == SIM_REPLICATION_ALL)
            p->applied = true;
    }
}

static void raftsim_node_apply(struct raftsim_world *w, struct raftsim_node *n,
                               const struct raft_entry *e) {
    if (e->index != n->kv.applied_index + 1) {
        sim_check_fail(&w->sim.check, "node %u: applies index %llu after %llu", n->id,
                       (unsigned long long)e->index, (unsigned long long)n->kv.applied_index);
        return;
    }
    uint64_t hash = sim_check_entry_hash(e);
    sim_trace_add(&w->sim.trace, w->sim.now_ms, n->id, SIM_TRACE_APPLY, e->index, e->term, e->type,
                  hash);
    if (sim_check_apply(&w->sim.check, n->id, e->index, e->term, hash) != 0) return;
    bool swapped = false;
    if (e->type == RAFT_ENTRY_NORMAL &&
        !raftsim_node_kv_apply(&n->kv, e->data, e->data_bytes, &swapped)) {
        sim_check_fail(&w->sim.check, "node %u: entry %llu is not an operation", n->id,
                       (unsigned long long)e->index);
        return;
    }
    n->kv.applied_index = e->index;
    if (e->type == RAFT_ENTRY_NORMAL) raftsim_node_applied_write(w, n, e, swapped);
}

static void raftsim_node_restore(struct raftsim_world *w, struct raftsim_node *n,
                                 const struct raftsim_held *h) {
    sim_trace_add(&w->sim.trace, w->sim.now_ms, n->id, SIM_TRACE_RESTORE, h->restore_index,
                  h->restore_term, 0, 0);
    if (!raftsim_node_kv_unblob(h->restore_data.data, h->restore_data.len, &n->kv) ||
        n->kv.applied_index != h->restore_index) {
        sim_check_fail(&w->sim.check, "node %u: snapshot blob for %llu is not one", n->id,
                       (unsigned long long)h->restore_index);
        return;
    }
    /* Writes proposed here at or below the snapshot: their fate is not visible here. */
    for (int i = 0; i < RAFTSIM_PENDING_MAX; i++) {
        struct raftsim_pending *p = &n->pending[i];
        if (p->used && p->req.kind != RAFTSIM_OP_GET && p->index <= h->restore_index)
            raftsim_node_answer(w, n, p, LINCHECK_INFO);
    }
}

static void raftsim_node_release_reads(struct raftsim_world *w, struct raftsim_node *n,
                                       const struct raftsim_held *h) {
    for (size_t i = 0; i < h->read_count; i++) {
        struct raftsim_pending *p = raftsim_node_find(n, h->reads[i].ctx);
        if (p == NULL) continue;
        p->read_ready = true;
        p->index = h->reads[i].index;
    }
    for (size_t i = 0; i < h->failed_count; i++) {
        struct raftsim_pending *p = raftsim_node_find(n, h->failed[i]);
        if (p != NULL) raftsim_node_answer(w, n, p, LINCHECK_FAIL); /* reads never change state */
    }
}

static void raftsim_node_release(struct raftsim_world *w, struct raftsim_node *n,
                                 struct raftsim_held *h) {
    size_t off = 0;
    while (off < h->wire.len) { /* (2) send */
        uint32_t to = base_load_u32le(h->wire.data + off);
        uint32_t len = base_load_u32le(h->wire.data + off + 4);
        sim_net_send(&w->sim.net, w->sim.now_ms, n->id, to, h->wire.data + off + 8, len);
        off += 8 + (size_t)len;
    }
    if (h->restore) raftsim_node_restore(w, n, h); /* (1)'s state-machine half, in order */
    size_t data_off = 0;
    for (size_t i = 0; i < h->apply_count && !w->sim.check.failed; i++) { /* (3) apply */
        struct raft_entry e = h->applies[i];
        e.data = e.data_bytes > 0 ? h->apply_data.data + data_off : NULL;
        data_off += e.data_bytes;
        raftsim_node_apply(w, n, &e);
    }
    raftsim_node_release_reads(w, n, h);
}

static void raftsim_node_serve_reads(struct raftsim_world *w, struct raftsim_node *n) {
    for (int i = 0; i < RAFTSIM_PENDING_MAX; i++) {
        struct raftsim_pending *p = &n->pending[i];
        if (p->used && p->read_ready && n->kv.applied_index >= p->index)
            raftsim_node_answer(w, n, p, LINCHECK_OK);
    }
}

static void raftsim_node_drain(struct raftsim_world *w, struct raftsim_node *n) {
    if (n->draining || !n->host->up) return;
    n->draining = true;
    for (bool progress = true; progress && !w->sim.check.failed;) {
        progress = false;
        uint64_t durable = raftstore_durable_lsn(n->store);
        while (n->held_head != NULL && n->held_head->position <= durable) {
            struct raftsim_held *h = n->held_head;
            n->held_head = h->next;
            if (n->held_head == NULL) n->held_tail = NULL;
            h->next = NULL;
            raftsim_node_release(w, n, h);
            raftsim_node_held_free(h);
            progress = true;
        }
        uint64_t index, term;
        raftstore_durable_entry(n->store, &index, &term);
        if (index != n->reported_index || term != n->reported_term) { /* (4) */
            n->reported_index = index;
            n->reported_term = term;
            struct raft_event ev = {.kind = RAFT_EVENT_PERSISTED,
                                    .now_ms = raftsim_node_local_ms(n, w->sim.now_ms)};
            ev.persisted.index = index;
            ev.persisted.term = term;
            struct raft_effects fx;
            int rc;
            raftsim_node_step_raw(w, n, &ev, &fx, &rc);
            progress = true;
        }
    }
    raftsim_node_serve_reads(w, n);
    n->draining = false;
}

/* --- invariants after every raft step ----------------------------------------------- */

static void raftsim_node_observe_entries(struct raftsim_world *w, struct raftsim_node *n,
                                         const struct raft_effects *fx) {
    for (size_t i = 0; i < fx->entry_count; i++) {
        const struct raft_entry *e = &fx->entries[i];
        uint64_t prev = 0;
        if (!raft_term_at(n->raft, e->index - 1, &prev)) {
            sim_check_fail(&w->sim.check, "node %u: no term before appended entry %llu", n->id,
                           (unsigned long long)e->index);
            return;
        }
        if (sim_check_entry(&w->sim.check, n->id, e->index, e->term, sim_check_entry_hash(e),
                            prev) != 0)
            return;
    }
}

static void raftsim_node_observe(struct raftsim_world *w, struct raftsim_node *n,
                                 const struct raft_effects *fx) {
    struct raft *r = n->raft;
    if (raft_role(r) != n->role_seen || raft_term(r) != n->term_seen) {
        sim_trace_add(&w->sim.trace, w->sim.now_ms, n->id, SIM_TRACE_ROLE, raft_role(r),
                      raft_term(r), raft_leader_id(r), raft_last_index(r));
        if (raft_role(r) == RAFT_LEADER) w->sim.stats->leaders++;
        n->role_seen = raft_role(r);
        n->term_seen = raft_term(r);
    }
    if (raft_role(r) == RAFT_LEADER && sim_check_leader(&w->sim.check, raft_term(r), n->id, r) != 0)
        return;
    raftsim_node_observe_entries(w, n, fx);
    uint64_t commit = raft_commit_index(r);
    if (commit != n->commit_seen) {
        sim_trace_add(&w->sim.trace, w->sim.now_ms, n->id, SIM_TRACE_COMMIT, n->commit_seen, commit,
                      raft_term(r), 0);
        if (sim_check_commit(&w->sim.check, n->id, r, n->commit_seen, commit) != 0) return;
        const struct raft *leaders[SIM_NODES_MAX];
        size_t count = 0;
        for (uint32_t i = 1; i <= w->sim.options.node_count; i++)
            if (w->nodes[i].host->up && raft_role(w->nodes[i].raft) == RAFT_LEADER)
                leaders[count++] = w->nodes[i].raft;
        if (sim_check_commit_leaders(&w->sim.check, leaders, count, n->commit_seen, commit) != 0)
            return;
        n->commit_seen = commit;
    }
}

/* One raft step and (1): persist, then hold (2)-(3). The caller drains. */
static void raftsim_node_step_raw(struct raftsim_world *w, struct raftsim_node *n,
                                  const struct raft_event *ev, struct raft_effects *fx, int *rc) {
    ASSERT(n->host->up && n->raft != NULL);
    *rc = raft_step(n->raft, ev, fx);
    if (raftsim_node_persist(w, n, fx) != 0) return;
    if (raftsim_node_hold(w, n, fx) != 0) return;
    raftsim_node_observe(w, n, fx);
    uint64_t wake = sim_clock_global(&n->host->clock, fx->wake_at_ms);
    n->host->wake_ms = wake > w->sim.now_ms ? wake : w->sim.now_ms;
    if (n->async && n->host->sync_at_ms == 0 &&
        raftstore_last_lsn(n->store) > raftstore_durable_lsn(n->store))
        n->host->sync_at_ms = w->sim.now_ms + prng_range(&n->prng, 1, RAFTSIM_FSYNC_MS_MAX + 1);
}

static int raftsim_node_step(struct raftsim_world *w, struct raftsim_node *n,
                             const struct raft_event *ev) {
    struct raft_effects fx;
    int rc;
    raftsim_node_step_raw(w, n, ev, &fx, &rc);
    raftsim_node_drain(w, n);
    return rc;
}

int raftsim_node_change(struct raftsim_world *w, struct raftsim_node *n, enum raft_change_kind kind,
                        uint32_t id) {
    if (!n->host->up) return ERR_NOTLEADER;
    struct raft_event ev = {.kind = RAFT_EVENT_CHANGE,
                            .now_ms = raftsim_node_local_ms(n, w->sim.now_ms)};
    ev.change.kind = kind;
    ev.change.id = id;
    ev.change.promote = kind == RAFT_CHANGE_ADD_LEARNER;
    struct raft_effects fx;
    int rc;
    raftsim_node_step_raw(w, n, &ev, &fx, &rc);
    sim_trace_add(&w->sim.trace, w->sim.now_ms, n->id, SIM_TRACE_CHANGE, (uint64_t)kind, id,
                  (uint64_t)(int64_t)rc, 0);
    raftsim_node_drain(w, n);
    return rc;
}

/* --- events ------------------------------------------------------------------------- */

static void raftsim_node_after(struct raftsim_world *w, struct raftsim_node *n);

void raftsim_node_tick(struct raftsim_world *w, struct raftsim_node *n) {
    uint64_t before = w->sim.now_ms;
    struct raft_event ev = {.kind = RAFT_EVENT_TICK,
                            .now_ms = raftsim_node_local_ms(n, w->sim.now_ms)};
    raftsim_node_step(w, n, &ev);
    if (!n->host->up) return;
    /* Raft asks for a tick at once while it has entries to hand out; bound that. */
    n->same_time_ticks = n->host->wake_ms == before ? n->same_time_ticks + 1 : 0;
    if (n->same_time_ticks > RAFTSIM_SAME_TIME_TICKS_MAX) n->host->wake_ms = before + 1;
    raftsim_node_after(w, n);
}

void raftsim_node_sync_done(struct raftsim_world *w, struct raftsim_node *n) {
    ASSERT(n->async && n->host->sync_at_ms != 0);
    n->host->sync_at_ms = 0;
    struct errmsg msg = {{0}};
    int rc = raftstore_sync(n->store, &msg);
    if (rc != 0) {
        sim_check_fail(&w->sim.check, "node %u: sync: %s", n->id, msg.text);
        return;
    }
    uint64_t index, term;
    raftstore_durable_entry(n->store, &index, &term);
    sim_trace_add(&w->sim.trace, w->sim.now_ms, n->id, SIM_TRACE_SYNC,
                  raftstore_durable_lsn(n->store), index, term, 0);
    raftsim_node_drain(w, n);
    if (raftstore_last_lsn(n->store) > raftstore_durable_lsn(n->store))
        n->host->sync_at_ms = w->sim.now_ms + prng_range(&n->prng, 1, RAFTSIM_FSYNC_MS_MAX + 1);
    raftsim_node_after(w, n);
}

void raftsim_node_receive(struct raftsim_world *w, struct raftsim_node *n,
                          const struct sim_packet *p) {
    struct raft_message m;
    struct raft_entry *entries = w->decode_entries; /* room for RAFT_MSG_ENTRIES_MAX */
    int rc = raft_msg_decode(p->bytes, p->len, &m, entries);
    if (rc != 0) {
        sim_check_fail(&w->sim.check, "node %u: cannot decode a message from %u: %s", n->id,
                       p->from, err_name(rc));
        return;
    }
    sim_trace_add(&w->sim.trace, w->sim.now_ms, n->id, SIM_TRACE_RECV, p->from, m.type, m.term,
                  m.index);
    struct raft_event ev = {.kind = RAFT_EVENT_MESSAGE,
                            .now_ms = raftsim_node_local_ms(n, w->sim.now_ms),
                            .message = &m};
    raftsim_node_step(w, n, &ev);
    if (n->host->up) raftsim_node_after(w, n);
}

static struct raftsim_pending *raftsim_node_slot(struct raftsim_node *n) {
    for (int i = 0; i < RAFTSIM_PENDING_MAX; i++)
        if (!n->pending[i].used) return &n->pending[i];
    return NULL;
}

void raftsim_node_request(struct raftsim_world *w, struct raftsim_node *n,
                          const struct raftsim_request *req) {
    struct raftsim_pending tmp = {.used = true, .req = *req};
    struct raftsim_pending *p = n->host->up ? raftsim_node_slot(n) : NULL;
    if (p == NULL) { /* down (connection refused) or busy: never reached raft */
        raftsim_node_answer(w, n, &tmp, LINCHECK_FAIL);
        return;
    }
    struct raft_event ev = {.now_ms = raftsim_node_local_ms(n, w->sim.now_ms)};
    uint8_t op[RAFTSIM_OP_BYTES];
    if (req->kind == RAFTSIM_OP_GET) {
        ev.kind = RAFT_EVENT_READ;
        ev.read_ctx = req->op_id;
    } else {
        raftsim_node_encode_op(req, op);
        ev.kind = RAFT_EVENT_PROPOSE;
        ev.propose.data = op;
        ev.propose.bytes = RAFTSIM_OP_BYTES;
    }
    struct raft_effects fx;
    int rc;
    raftsim_node_step_raw(w, n, &ev, &fx, &rc);
    if (rc != 0) { /* not leader (or transferring, or a limit): definitely not applied */
        raftsim_node_answer(w, n, &tmp, LINCHECK_FAIL);
    } else {
        *p = tmp;
        p->index = fx.proposed_index;
        p->term = fx.proposed_term;
        sim_trace_add(&w->sim.trace, w->sim.now_ms, n->id,
                      req->kind == RAFTSIM_OP_GET ? SIM_TRACE_READ : SIM_TRACE_PROPOSE, req->client,
                      req->op_id, p->index, p->term);
    }
    raftsim_node_drain(w, n);
    if (n->host->up) raftsim_node_after(w, n);
}

/* replication = leader: the result the write will have if the log up to it commits. */
static bool raftsim_node_speculate(const struct raftsim_node *n, const struct raftsim_pending *p,
                                   bool *swapped) {
    struct raftsim_kv kv = n->kv;
    for (uint64_t i = kv.applied_index + 1; i <= p->index; i++) {
        const struct raft_entry *e = raft_entry_at(n->raft, i);
        if (e == NULL) return false; /* a restore is still in the FIFO: try later */
        if (e->type == RAFT_ENTRY_NORMAL &&
            !raftsim_node_kv_apply(&kv, e->data, e->data_bytes, swapped))
            return false;
    }
    return true;
}

static void raftsim_node_check_pending(struct raftsim_world *w, struct raftsim_node *n) {
    struct raft *r = n->raft;
    bool leader = raft_role(r) == RAFT_LEADER;
    for (int i = 0; i < RAFTSIM_PENDING_MAX; i++) {
        struct raftsim_pending *p = &n->pending[i];
        if (!p->used || p->req.kind == RAFTSIM_OP_GET) continue;
        if (!leader || raft_term(r) != p->term) { /* leadership lost: outcome unknown */
            raftsim_node_answer(w, n, p, LINCHECK_INFO);
            continue;
        }
        uint64_t term = 0;
        bool swapped = false;
        if (w->sim.options.replication == SIM_REPLICATION_LEADER &&
            raft_persisted_index(r) >= p->index && raft_term_at(r, p->index, &term) &&
            term == p->term && raftsim_node_speculate(n, p, &swapped)) {
            p->swapped = swapped;
            raftsim_node_acked(w, n, p);
        }
    }
}

/* replication = all: applied on every live voter (the sim sees them all; raft exposes no
 * per-follower match index). Crashed voters are skipped. */
static void raftsim_node_check_all(struct raftsim_world *w, struct raftsim_node *n) {
    for (int i = 0; i < RAFTSIM_PENDING_MAX; i++) {
        struct raftsim_pending *p = &n->pending[i];
        if (!p->used || !p->applied) continue;
        bool all = true;
        for (uint32_t k = 1; k <= w->sim.options.node_count; k++)
            if (w->nodes[k].host->up && w->nodes[k].kv.applied_index < p->index) all = false;
        if (all) raftsim_node_acked(w, n, p);
    }
}

static void raftsim_node_maybe_snapshot(struct raftsim_world *w, struct raftsim_node *n) {
    const struct raft_snapshot_meta *s = raftstore_snapshot(n->store);
    uint64_t index = n->kv.applied_index, term = 0;
    if (index < s->index + n->snapshot_every) return;
    if (index < raft_snapshot_index(n->raft) || !raft_term_at(n->raft, index, &term)) return;
    struct raft_config config; /* the one in effect at index (membership changes) */
    if (!raft_config_at(n->raft, index, &config)) return;
    uint8_t blob[RAFTSIM_KV_BLOB_BYTES];
    raftsim_node_kv_blob(&n->kv, blob);
    struct raft_snapshot_meta meta = {
        .index = index, .term = term, .config = config, .data = blob, .data_bytes = sizeof(blob)};
    struct errmsg msg = {{0}};
    int rc = raftstore_save_snapshot(n->store, &meta, RAFTSTORE_SNAPSHOT_TAKEN, &msg);
    if (rc != 0) {
        sim_check_fail(&w->sim.check, "node %u: save snapshot: %s", n->id, msg.text);
        return;
    }
    raftstore_collect(n->store, true); /* at once, as the store did before it had steps */
    w->sim.stats->snapshots++;
    n->snapshot_every =
        prng_range(&n->prng, RAFTSIM_SNAPSHOT_EVERY_MIN, RAFTSIM_SNAPSHOT_EVERY_MAX);
    sim_trace_add(&w->sim.trace, w->sim.now_ms, n->id, SIM_TRACE_SNAPSHOT, index, term, 0, 0);
    /* Saved first, then announced: raft may now compact and send it. */
    struct raft_event ev = {.kind = RAFT_EVENT_SNAPSHOT_TAKEN,
                            .now_ms = raftsim_node_local_ms(n, w->sim.now_ms),
                            .snapshot_index = index};
    raftsim_node_step(w, n, &ev);
}

static void raftsim_node_after(struct raftsim_world *w, struct raftsim_node *n) {
    if (w->sim.check.failed || !n->host->up) return;
    raftsim_node_check_pending(w, n);
    if (w->sim.options.replication == SIM_REPLICATION_ALL) raftsim_node_check_all(w, n);
    raftsim_node_maybe_snapshot(w, n);
}
