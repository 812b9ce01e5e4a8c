/*
 * The node's durability: recovery at start (newest snapshot, then the log from the
 * snapshot's lsn), logging of ops with group commit, and fuzzy snapshots taken a few
 * buckets at a time while writes go on.
 *
 * A snapshot scan may observe records that are not yet durable; so a snapshot is put in
 * place only once the log is durable up to the last record the scan could have seen
 * (end_lsn). Replaying the log from start_lsn over it then rebuilds exactly the state
 * (every op is idempotent, see cmd/op.h), and only after that are older segments removed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "cmd/op.h"
#include "core/internal.h"

static int persist_load_entry(void *ctx, const uint8_t *entry, size_t bytes) {
    struct node *node = ctx;
    struct errmsg msg;
    int rc = op_validate(entry, bytes, &msg);
    if (rc != 0) return rc;
    return op_apply(node->db, entry, bytes, &msg);
}

static int persist_replay(void *ctx, uint64_t lsn, const uint8_t *payload, size_t bytes) {
    (void)lsn;
    return persist_load_entry(ctx, payload, bytes);
}

static void persist_warn(void *ctx, const char *text) {
    struct node *node = ctx;
    node_trace(node, "warning: %s", text);
}

/* Collects empty sets and hashes that a replay may leave (op.h): they are removed. */
static void persist_find_empty(void *ctx, struct db_entry *e) {
    struct buf *keys = ctx;
    enum value_type type = db_entry_type(e);
    bool empty = (type == VALUE_SET && set_count(db_entry_set(e)) == 0) ||
                 (type == VALUE_HASH && hash_count(db_entry_hash(e)) == 0);
    if (!empty) return;
    size_t bytes;
    const uint8_t *key = db_entry_key(e, &bytes);
    buf_append_u32le(keys, (uint32_t)bytes);
    buf_append(keys, key, bytes);
}

static void persist_sweep_empty(struct node *node) {
    struct buf keys;
    buf_init(&keys);
    uint64_t cursor = 0;
    do {
        cursor = db_scan(node->db, cursor, persist_find_empty, &keys);
    } while (cursor != 0);
    for (size_t pos = 0; pos < keys.len;) {
        uint32_t n = base_load_u32le(keys.data + pos);
        db_delete(node->db, keys.data + pos + 4, n);
        pos += 4 + n;
    }
    buf_deinit(&keys);
}

int persist_open(struct node *node, struct errmsg *msg) {
    uint64_t start_lsn = 0;
    int rc = snapshot_load(node->disk, persist_load_entry, node, &start_lsn, msg);
    if (rc != 0) return rc;
    size_t snapshot_keys = db_count(node->db);
    node->snapshot_lsn = start_lsn;
    struct wal_open_args args = {
        .disk = node->disk,
        .options = {.segment_bytes = node->config.wal_segment_bytes},
        .from_lsn = start_lsn == 0 ? 1 : start_lsn,
        .replay = persist_replay,
        .warn = persist_warn,
        .ctx = node,
    };
    rc = wal_open(&args, &node->wal, msg);
    if (rc != 0) return rc;
    persist_sweep_empty(node);
    node_trace(node, "recovered keys=%zu (snapshot keys=%zu lsn=%llu) log last_lsn=%llu",
               db_count(node->db), snapshot_keys, (unsigned long long)start_lsn,
               (unsigned long long)wal_last_lsn(node->wal));
    return 0;
}

static void persist_snapshot_abort(struct node *node, int error) {
    if (!node->snap.active) return;
    if (node->snap.writer != NULL) snapshot_writer_abort(node->snap.writer);
    node_trace(node, "snapshot at lsn=%llu abandoned: %s", (unsigned long long)node->snap.start_lsn,
               err_text(error));
    memset(&node->snap, 0, sizeof(node->snap));
}

void persist_close(struct node *node) {
    persist_snapshot_abort(node, ERR_IO);
    if (node->wal != NULL) wal_close(node->wal);
    node->wal = NULL;
}

bool persist_reserve(struct node *node, size_t bytes) {
    struct errmsg msg;
    int rc = wal_reserve(node->wal, bytes, &msg);
    if (rc == 0) {
        if (node->disk_full) node_trace(node, "disk space is available again: writes resume");
        node->disk_full = false;
        return true;
    }
    if (!node->disk_full) node_trace(node, "disk full, refusing writes: %s", msg.text);
    node->disk_full = true;
    snprintf(node->disk_full_text, sizeof(node->disk_full_text), "%s", msg.text);
    if (rc != ERR_NOSPACE && node->fatal == 0) {
        node->fatal = rc;
        snprintf(node->fatal_text, sizeof(node->fatal_text), "log reserve failed: %.200s",
                 msg.text);
    }
    return false;
}

uint64_t persist_release_lsn(const struct node *node) {
    /* In a cluster a reply is made only after its entry is durable and applied. */
    if (node->engine != NULL) return 0;
    return node->config.fsync == NODE_FSYNC_ALWAYS ? wal_last_lsn(node->wal) : 0;
}

uint64_t persist_durable_lsn(const struct node *node) {
    if (node->engine != NULL) return 0;
    if (node->config.fsync != NODE_FSYNC_ALWAYS) return wal_last_lsn(node->wal);
    return wal_durable_lsn(node->wal);
}

static void persist_snapshot_finish(struct node *node) {
    struct errmsg msg;
    int rc = snapshot_writer_finish(node->snap.writer, &msg);
    node->snap.writer = NULL;
    if (rc != 0) {
        node_trace(node, "snapshot failed: %s", msg.text);
        persist_snapshot_abort(node, rc);
        return;
    }
    node->snapshot_lsn = node->snap.start_lsn;
    node->last_save_ms = node->now_ms;
    node_trace(node, "snapshot done lsn=%llu keys=%llu", (unsigned long long)node->snapshot_lsn,
               (unsigned long long)node->snap.keys);
    memset(&node->snap, 0, sizeof(node->snap));
    rc = wal_truncate_before(node->wal, node->snapshot_lsn, &msg);
    if (rc != 0) node_trace(node, "warning: removing old log segments failed: %s", msg.text);
}

void persist_flush(struct node *node, struct node_effects *out) {
    struct errmsg msg;
    if (wal_flushed_lsn(node->wal) < wal_last_lsn(node->wal)) {
        int rc = wal_flush(node->wal, &msg);
        if (rc != 0 && node->fatal == 0) {
            /* A write into reserved space failed: the log can no longer be trusted. */
            node->fatal = rc;
            snprintf(node->fatal_text, sizeof(node->fatal_text), "log write failed: %.200s",
                     msg.text);
            return;
        }
    }
    bool snapshot_waits = node->snap.active && node->snap.scan_done;
    if (snapshot_waits && wal_durable_lsn(node->wal) >= node->snap.end_lsn) {
        persist_snapshot_finish(node);
        snapshot_waits = false;
    }
    bool want = node->config.fsync == NODE_FSYNC_ALWAYS || node->sync_due || snapshot_waits;
    if (!want || node->sync_in_flight) return;
    struct disk_file *file;
    uint64_t lsn;
    if (!wal_sync_begin(node->wal, &file, &lsn)) return;
    node->sync_in_flight = true;
    node->sync_due = false;
    out->sync_file = file;
    out->sync_lsn = lsn;
}

void persist_synced(struct node *node, uint64_t lsn, int error) {
    ASSERT(node->sync_in_flight);
    node->sync_in_flight = false;
    if (error != 0) {
        /* After a failed fsync the kernel may have dropped the dirty pages: nothing written
         * since the last good sync can be trusted, so the node stops (as PostgreSQL does). */
        if (node->fatal == 0) {
            node->fatal = error;
            snprintf(node->fatal_text, sizeof(node->fatal_text),
                     "fsync of the write-ahead log failed (%s); stopping so that no "
                     "unsynced write is acknowledged",
                     err_text(error));
        }
        return;
    }
    wal_sync_end(node->wal, lsn);
    node->stats.syncs++;
}

int persist_snapshot_start(struct node *node, struct errmsg *msg) {
    ASSERT(!node->snap.active);
    struct snapshot_writer *writer;
    uint64_t start_lsn = wal_last_lsn(node->wal) + 1;
    int rc = snapshot_writer_open(node->disk, start_lsn, &writer, msg);
    if (rc != 0) return rc;
    memset(&node->snap, 0, sizeof(node->snap));
    node->snap.active = true;
    node->snap.writer = writer;
    node->snap.start_lsn = start_lsn;
    node_trace(node, "snapshot started lsn=%llu", (unsigned long long)start_lsn);
    return 0;
}

struct persist_scan_ctx {
    struct node *node;
    int error;
};

static void persist_snapshot_entry(void *ctx, struct db_entry *e) {
    struct persist_scan_ctx *s = ctx;
    if (s->error != 0) return;
    struct node *node = s->node;
    buf_clear(&node->scratch);
    op_put_entry(&node->scratch, e);
    struct errmsg msg;
    s->error = snapshot_writer_add(node->snap.writer, node->scratch.data, node->scratch.len, &msg);
    if (s->error != 0) node_trace(node, "snapshot write failed: %s", msg.text);
    node->snap.keys++;
}

int persist_snapshot_run(struct node *node, bool to_completion) {
    ASSERT(node->snap.active);
    struct persist_scan_ctx s = {.node = node, .error = 0};
    uint32_t steps = 0;
    while (!node->snap.scan_done && (to_completion || steps < NODE_SNAPSHOT_BUCKETS_PER_STEP)) {
        node->snap.cursor = db_scan(node->db, node->snap.cursor, persist_snapshot_entry, &s);
        steps++;
        if (s.error != 0) {
            persist_snapshot_abort(node, s.error);
            return s.error;
        }
        if (node->snap.cursor == 0) {
            node->snap.scan_done = true;
            node->snap.end_lsn = wal_last_lsn(node->wal);
        }
    }
    return 0;
}

void persist_tick(struct node *node) {
    if (node->config.fsync == NODE_FSYNC_EVERYSEC &&
        node->now_ms >= node->last_everysec_ms + 1000) {
        node->last_everysec_ms = node->now_ms;
        node->sync_due = true;
    }
    if (node->snap.active) {
        if (!node->snap.scan_done) persist_snapshot_run(node, false);
        return;
    }
    if (wal_bytes_since(node->wal, node->snapshot_lsn) < node->config.snapshot_log_bytes) return;
    struct errmsg msg;
    if (persist_snapshot_start(node, &msg) != 0) {
        node_trace(node, "snapshot could not start: %s", msg.text);
    }
}
