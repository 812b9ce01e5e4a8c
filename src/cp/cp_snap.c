/*
 * The CP engine's snapshots, taken without stopping the node: a fuzzy scan of the db, a
 * few hundred keys (at most CP_SNAP_SLICE_BYTES of them) every CP_SNAP_SLICE_MS, pausing
 * while CP_SNAP_UNSYNCED_BYTES_MAX of it wait for their sync, streamed into the raftstore's data
 * file (raftstore_stream_*), while entries go on being applied; the ops of every entry applied
 * during the scan (op.h: each sets a key, a member, a field or an expiry to a value, or
 * deletes) are streamed too, interleaved with the scan's records in the order they
 * happened. Loading the blob (cp_restore_blob) runs its records in order: a key the scan
 * wrote is overwritten by the ops that changed it later, and ops from before its scan
 * record are overwritten by that record, which already holds their effect; so the result
 * is the state at the entry applied last before the scan ended, which is the snapshot's
 * index. The data file is synced through the engine's one sync, CP_SNAP_SYNC_BYTES at a
 * time in turns with the log's while it is written and the rest after the seal, and the
 * snapshot is committed in steps whose syncs take turns with the log's too (a small file,
 * two syncs of the directory, raftstore_commit_*: no fsync on the loop; then the log's
 * compaction in raftstore_collect's steps). Nodes trigger at different
 * points (cp_snap_threshold), so a cluster's nodes do not all scan at once.
 * docs/formats.md has the blob's records.
 */
#include <string.h>

#include "base/assert.h"
#include "cmd/op.h"
#include "cp/internal.h"

#define CP_SNAP_SCANS_PER_STEP 50 /* db_scan calls (about 10 keys each) per slice */
/* At most one slice of scan per this many ms of the node's time, whatever the number of
 * steps: under load a node runs thousands of steps a second, and a scan that took its
 * share of each would starve the loop (heartbeats late, elections). */
#define CP_SNAP_SLICE_MS 2
#define CP_SNAP_PIECE_BYTES (256u * 1024) /* records gathered before they go to the stream */
/* ...and at most this many bytes of records per slice (128 MB/s at most): paced by keys
 * alone, a db of 4 KB values was scanned at up to 1 GB/s per node, the page cache filled
 * with the data file faster than its syncs drained it, and every node's log sync waited
 * behind the flood (99,158 of 560,000 puts timed out, five elections). */
#define CP_SNAP_SLICE_BYTES (256u * 1024)
/* The scan pauses while this much of the data file is written but not yet synced: the
 * disk sets its pace, not the CPU. */
#define CP_SNAP_UNSYNCED_BYTES_MAX (8u * 1024 * 1024)
#define CP_SNAP_STAGGER_PCT 40 /* nodes' thresholds spread over 100..140 % */
/* The data file is synced every this many bytes while it is written, in turns with the
 * log: one sync of a whole big file at the end would hold the log's next sync (and every
 * commit of this node) for seconds, and the log waits for one of these before its turn
 * (2 MiB: about 2 ms of this machine's disk; 16 MiB held commits up to 16 ms, a snapshot's
 * seconds had twice the p99 of the others). */
#define CP_SNAP_SYNC_BYTES (2u * 1024 * 1024)

/* The blob's records: len:u32 then len bytes of ops; len CP_BLOB_KEYSPACES: the keyspace
 * table follows as len:u32 table. */
static void cp_snap_record(struct cp *cp, const uint8_t *ops, size_t bytes) {
    buf_append_u32le(&cp->snap.piece, (uint32_t)bytes);
    buf_append(&cp->snap.piece, ops, bytes);
}

/* No snapshot being taken (the buffers kept, emptied). */
static void cp_snap_reset(struct cp *cp) {
    struct buf piece = cp->snap.piece, del = cp->snap.del;
    buf_clear(&piece);
    buf_clear(&del);
    memset(&cp->snap, 0, sizeof(cp->snap));
    cp->snap.piece = piece;
    cp->snap.del = del;
}

static void cp_snap_abort(struct cp *cp, const char *why) {
    if (!cp->snap.active) return;
    raftstore_stream_abort(cp->store);
    cp_trace(cp, "cluster: snapshot from index %llu abandoned: %s",
             (unsigned long long)cp->snap.start_applied, why);
    cp_snap_reset(cp);
    cp_save_done(cp, ERR_IO, 0); /* a SAVE waiting for it hears, and may try again */
}

/* Hands the gathered records to the stream. */
static int cp_snap_drain(struct cp *cp) {
    if (cp->snap.piece.len == 0) return 0;
    struct errmsg msg;
    int rc = raftstore_stream_add(cp->store, cp->snap.piece.data, cp->snap.piece.len, &msg);
    buf_clear(&cp->snap.piece);
    if (rc != 0) cp_snap_abort(cp, msg.text);
    return rc;
}

static void cp_snap_entry(void *ctx, struct db_entry *e) {
    struct cp *cp = ctx;
    size_t len_pos = cp->snap.piece.len;
    buf_append_u32le(&cp->snap.piece, 0);
    op_put_entry(&cp->snap.piece, e);
    base_store_u32le(cp->snap.piece.data + len_pos, (uint32_t)(cp->snap.piece.len - len_pos - 4));
    cp->snap.keys++;
    cp->snap.scanned_bytes += cp->snap.piece.len - len_pos;
}

/* This node's trigger: the configured interval, stretched by up to CP_SNAP_STAGGER_PCT by
 * its id, so that a cluster's nodes reach it apart. */
static uint64_t cp_snap_threshold(const struct cp *cp, uint64_t configured) {
    uint64_t pct = 100 + ((uint64_t)(cp->config.id - 1) * 13) % CP_SNAP_STAGGER_PCT;
    return configured / 100 * pct + configured % 100 * pct / 100;
}

/* Due after the configured entries once the log holds a quarter of the last snapshot's
 * size (a big db is not rewritten whole for a little log: Redis's AOF rewrite waits for
 * growth alike); or once the entry data applied since the snapshot, which Raft holds in
 * memory, reaches a quarter of the snapshot's size (at least CP_SNAPSHOT_LOG_BYTES_MIN, at
 * most snapshot-log-bytes): memory beside the db stays a fraction of it; or after
 * snapshot-log-bytes of log on disk in any case (replay and disk stay bounded). Every
 * threshold is staggered: nodes with equal logs and dbs would scan at once. */
static bool cp_snap_due(const struct cp *cp) {
    if (cp->applied <= cp->snapshot_index) return false;
    uint64_t entries =
        cp->config.snapshot_entries != 0 ? cp->config.snapshot_entries : CP_SNAPSHOT_ENTRIES;
    uint64_t log = raftstore_log_bytes(cp->store);
    uint64_t quarter = raftstore_snapshot(cp->store)->data_bytes / 4;
    if (cp->applied - cp->snapshot_index >= cp_snap_threshold(cp, entries) &&
        log >= cp_snap_threshold(cp, quarter))
        return true;
    uint64_t most =
        cp->config.snapshot_log_bytes != 0 ? cp->config.snapshot_log_bytes : CP_SNAPSHOT_LOG_BYTES;
    uint64_t held = quarter < CP_SNAPSHOT_LOG_BYTES_MIN ? CP_SNAPSHOT_LOG_BYTES_MIN : quarter;
    if (held > most) held = most;
    if (cp->applied_bytes - cp->snapshot_applied_bytes >= cp_snap_threshold(cp, held)) return true;
    uint64_t bytes = cp->config.snapshot_log_bytes;
    return bytes != 0 && log >= cp_snap_threshold(cp, bytes);
}

static void cp_snap_start(struct cp *cp) {
    struct errmsg msg;
    int rc = raftstore_stream_begin(cp->store, &msg);
    if (rc != 0) {
        cp_trace(cp, "cluster: snapshot could not start: %s", msg.text);
        return;
    }
    cp->snap.active = true;
    cp->snap.start_applied = cp->applied;
    cp->snap.start_mono_ms = cp->mono_ms;
    cp->save_requested = false;
}

/* The scan is over: the snapshot is the state at cp->applied; seal it for its sync. */
static void cp_snap_seal(struct cp *cp) {
    uint64_t term = 0;
    struct raft_config config; /* as of the snapshot's index, not a newer uncommitted one */
    if (!raft_term_at(cp->raft, cp->applied, &term) || term == 0 ||
        !raft_config_at(cp->raft, cp->applied, &config) || config.count == 0) {
        cp_snap_abort(cp, "no term or configuration at the index (a joining node)");
        return;
    }
    if (cp->keyspaces_index != 0) {
        buf_append_u32le(&cp->snap.piece, CP_BLOB_KEYSPACES);
        size_t len_pos = cp->snap.piece.len;
        buf_append_u32le(&cp->snap.piece, 0);
        keyspace_table_encode(cp->config.keyspaces, cp->config.keyspace_count, &cp->snap.piece);
        base_store_u32le(cp->snap.piece.data + len_pos,
                         (uint32_t)(cp->snap.piece.len - len_pos - 4));
    }
    if (cp_snap_drain(cp) != 0) return;
    struct errmsg msg;
    struct disk_file *file; /* synced through raftstore_stream_file (cp_snap_sync_begin) */
    if (raftstore_stream_seal(cp->store, &file, &msg) != 0) {
        cp_snap_abort(cp, msg.text);
        return;
    }
    cp->snap.index = cp->applied;
    cp->snap.applied_bytes = cp->applied_bytes;
    cp->snap.term = term;
    cp->snap.config = config;
    cp->snap.scan_done = true;
    cp->snap.sealed_mono_ms = cp->mono_ms;
}

/* A slice of the scan (at most one per CP_SNAP_SLICE_MS). */
static void cp_snap_scan(struct cp *cp) {
    if (cp->mono_ms < cp->snap.next_slice_ms) return;
    cp->snap.next_slice_ms = cp->mono_ms + CP_SNAP_SLICE_MS;
    uint64_t written = 0;
    (void)raftstore_stream_file(cp->store, &written);
    if (written - cp->snap.synced_bytes >= CP_SNAP_UNSYNCED_BYTES_MAX) return; /* syncs first */
    uint32_t scans = cp->config.snapshot_scans_per_step != 0 ? cp->config.snapshot_scans_per_step
                                                             : CP_SNAP_SCANS_PER_STEP;
    uint64_t until = cp->snap.scanned_bytes + CP_SNAP_SLICE_BYTES;
    for (uint32_t i = 0; i < scans && cp->snap.active && cp->snap.scanned_bytes < until; i++) {
        cp->snap.cursor = db_scan(cp->db, cp->snap.cursor, cp_snap_entry, cp);
        if (cp->snap.piece.len >= CP_SNAP_PIECE_BYTES && cp_snap_drain(cp) != 0) return;
        if (cp->snap.cursor == 0) {
            cp_snap_seal(cp);
            return;
        }
    }
}

void cp_snap_progress(struct cp *cp) {
    if (cp->fatal != 0) {
        if (!cp->snap.syncing) cp_snap_abort(cp, "the node stopped"); /* its file is busy */
        return;
    }
    if (!cp->snap.active && (cp->save_requested || cp_snap_due(cp))) cp_snap_start(cp);
    if (cp->snap.active && !cp->snap.scan_done) cp_snap_scan(cp);
}

void cp_snap_ops(struct cp *cp, const uint8_t *ops, size_t bytes) {
    if (!cp->snap.active || cp->snap.scan_done || bytes == 0) return;
    cp_snap_record(cp, ops, bytes);
    cp->stats.snapshot_ops_streamed++;
    if (cp->snap.piece.len >= CP_SNAP_PIECE_BYTES) cp_snap_drain(cp);
}

void cp_snap_deleted(struct cp *cp, const uint8_t *key, size_t key_bytes) {
    if (!cp->snap.active || cp->snap.scan_done) return;
    buf_clear(&cp->snap.del);
    op_put_del(&cp->snap.del, key, key_bytes);
    cp_snap_ops(cp, cp->snap.del.data, cp->snap.del.len);
}

void cp_snap_restored(struct cp *cp) {
    cp_snap_abort(cp, "a snapshot from the leader replaced the state");
}

bool cp_snap_sync_begin(struct cp *cp, bool log_waiting, struct disk_file **file) {
    if (!cp->snap.active || cp->snap.syncing) return false;
    if (log_waiting && cp->snap.last_sync_data) return false; /* the log's turn */
    if (cp->snap.committing) {
        if (!raftstore_commit_sync_begin(cp->store, file)) return false; /* waits for the log */
        cp->snap.syncing = true;
        cp->snap.last_sync_data = true;
        return true;
    }
    uint64_t written = 0;
    struct disk_file *f = raftstore_stream_file(cp->store, &written);
    if (!cp->snap.scan_done && written - cp->snap.synced_bytes < CP_SNAP_SYNC_BYTES) return false;
    cp->snap.syncing = true;
    cp->snap.sync_final = cp->snap.scan_done;
    cp->snap.syncing_bytes = written;
    cp->snap.last_sync_data = true;
    *file = f;
    return true;
}

void cp_snap_log_synced(struct cp *cp) {
    cp->snap.last_sync_data = false;
}

bool cp_snap_syncing(const struct cp *cp) {
    return cp->snap.syncing;
}

/* The commit's last step ended: the snapshot is the node's. */
static void cp_snap_committed(struct cp *cp) {
    uint64_t index = cp->snap.index, keys = cp->snap.keys, applied_bytes = cp->snap.applied_bytes;
    uint64_t took_ms = cp->mono_ms - cp->snap.start_mono_ms;
    uint64_t scan_ms = cp->snap.sealed_mono_ms - cp->snap.start_mono_ms;
    uint64_t bytes = raftstore_snapshot(cp->store)->data_bytes;
    ASSERT(raftstore_snapshot(cp->store)->index == index);
    cp_snap_reset(cp);
    cp->snapshot_index = index;
    cp->snapshot_applied_bytes = applied_bytes;
    cp->stats.snapshots++;
    cp->stats.snapshot_last_bytes = bytes;
    cp->stats.snapshot_last_ms = took_ms;
    struct raft_event ev = {.kind = RAFT_EVENT_SNAPSHOT_TAKEN, .snapshot_index = index};
    struct raft_effects e;
    cp_raft_step(cp, &ev, &e);
    cp_trace(cp,
             "cluster: snapshot index=%llu keys=%llu bytes=%llu in %llu ms (scan %llu ms, sync "
             "and commit %llu ms)",
             (unsigned long long)index, (unsigned long long)keys, (unsigned long long)bytes,
             (unsigned long long)took_ms, (unsigned long long)scan_ms,
             (unsigned long long)(took_ms - scan_ms));
    cp->last_save_ms = cp->now_ms;
    cp_save_done(cp, 0, index);
}

/* A sync of the data file, or of a commit's step, ended: go on with the commit (0), or
 * give the snapshot up. */
int cp_snap_synced(struct cp *cp, int error) {
    ASSERT(cp->snap.syncing && !cp->sync_in_flight);
    cp->snap.syncing = false;
    struct errmsg msg;
    if (cp->snap.committing) {
        int rc = raftstore_commit_sync_end(cp->store, error, &msg);
        if (rc != 0) {
            cp_trace(cp, "cluster: snapshot at %llu failed: %s", (unsigned long long)cp->snap.index,
                     msg.text);
            cp_snap_reset(cp);
            cp_fatal(cp, rc, "committing a snapshot failed", msg.text);
            return rc;
        }
        if (!raftstore_commit_active(cp->store)) cp_snap_committed(cp);
        return 0;
    }
    if (error != 0) {
        cp_snap_abort(cp, "fsync of its data file failed");
        return error;
    }
    if (!cp->snap.sync_final) { /* a step of it: the scan goes on */
        cp->snap.synced_bytes = cp->snap.syncing_bytes;
        return 0;
    }
    struct raft_snapshot_meta meta = {
        .index = cp->snap.index, .term = cp->snap.term, .config = cp->snap.config};
    int rc = raftstore_commit_begin(cp->store, &meta, &msg);
    if (rc != 0) {
        cp_trace(cp, "cluster: snapshot at %llu failed: %s", (unsigned long long)meta.index,
                 msg.text);
        cp_snap_reset(cp);
        cp_fatal(cp, rc, "committing a snapshot failed", msg.text);
        return rc;
    }
    if (!raftstore_commit_active(cp->store)) { /* overtaken by a restore: nothing to do */
        cp_snap_reset(cp);
        cp_save_done(cp, ERR_IO, 0);
        return 0;
    }
    cp->snap.committing = true;
    return 0;
}

/* While a scan runs, the node comes back for its next slice: an idle node's snapshot
 * goes on too. */
uint64_t cp_snap_wake_at(const struct cp *cp) {
    if (!cp->snap.active || cp->snap.scan_done) return UINT64_MAX;
    return cp->snap.next_slice_ms > cp->mono_ms ? cp->snap.next_slice_ms : cp->mono_ms + 1;
}

void cp_snap_init(struct cp *cp) {
    memset(&cp->snap, 0, sizeof(cp->snap));
    buf_init(&cp->snap.piece);
    buf_init(&cp->snap.del);
}

void cp_snap_deinit(struct cp *cp) {
    buf_deinit(&cp->snap.piece);
    buf_deinit(&cp->snap.del);
}
