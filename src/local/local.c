/*
 * The single-node engine's durability: recovery at start (newest snapshot, then the log
 * from the snapshot's lsn), logging of ops with group commit, and fuzzy snapshots taken a
 * few buckets at a time while writes go on.
 *
 * A snapshot scan may observe records that are not yet durable; so a snapshot is put in
 * place only once the log is durable up to the last record the scan could have seen
 * (end_lsn). Replaying the log from start_lsn over it then rebuilds exactly the state
 * (every op is idempotent, see cmd/op.h), and only after that are older segments removed.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/util.h"
#include "cmd/op.h"
#include "local/internal.h"

void local_trace(const struct local *lo, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    util_tracev(lo->config.trace, lo->config.trace_ctx, lo->config.id, lo->now_ms, fmt, ap);
    va_end(ap);
}

static int local_load_entry(void *ctx, const uint8_t *entry, size_t bytes) {
    struct local *lo = ctx;
    struct errmsg msg;
    int rc = op_validate(entry, bytes, &msg);
    if (rc != 0) return rc;
    return op_apply(lo->db, entry, bytes, &msg);
}

static int local_replay(void *ctx, uint64_t lsn, const uint8_t *payload, size_t bytes) {
    (void)lsn;
    return local_load_entry(ctx, payload, bytes);
}

static void local_warn(void *ctx, const char *text) {
    struct local *lo = ctx;
    local_trace(lo, "warning: %s", text);
}

/* Collects empty sets and hashes that a replay may leave (op.h): they are removed. */
static void local_find_empty(void *ctx, struct db_entry *e) {
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

static void local_sweep_empty(struct local *lo) {
    struct buf keys;
    buf_init(&keys);
    uint64_t cursor = 0;
    do {
        cursor = db_scan(lo->db, cursor, local_find_empty, &keys);
    } while (cursor != 0);
    for (size_t pos = 0; pos < keys.len;) {
        uint32_t n = base_load_u32le(keys.data + pos);
        db_delete(lo->db, keys.data + pos + 4, n);
        pos += 4 + n;
    }
    buf_deinit(&keys);
}

int local_open(struct local *lo, struct errmsg *msg) {
    uint64_t start_lsn = 0;
    int rc = snapshot_load(lo->disk, local_load_entry, lo, &start_lsn, msg);
    if (rc != 0) return rc;
    size_t snapshot_keys = db_count(lo->db);
    lo->snapshot_lsn = start_lsn;
    struct wal_open_args args = {
        .disk = lo->disk,
        .options = {.segment_bytes = lo->config.wal_segment_bytes},
        .from_lsn = start_lsn == 0 ? 1 : start_lsn,
        .replay = local_replay,
        .warn = local_warn,
        .ctx = lo,
    };
    rc = wal_open(&args, &lo->wal, msg);
    if (rc != 0) return rc;
    local_sweep_empty(lo);
    local_trace(lo, "recovered keys=%zu (snapshot keys=%zu lsn=%llu) log last_lsn=%llu",
                db_count(lo->db), snapshot_keys, (unsigned long long)start_lsn,
                (unsigned long long)wal_last_lsn(lo->wal));
    return 0;
}

static void local_snapshot_abort(struct local *lo, int error) {
    if (!lo->snap.active) return;
    if (lo->snap.writer != NULL) snapshot_writer_abort(lo->snap.writer);
    local_trace(lo, "snapshot at lsn=%llu abandoned: %s", (unsigned long long)lo->snap.start_lsn,
                err_text(error));
    memset(&lo->snap, 0, sizeof(lo->snap));
}

void local_close(struct local *lo) {
    local_snapshot_abort(lo, ERR_IO);
    if (lo->wal != NULL) wal_close(lo->wal);
    lo->wal = NULL;
}

bool local_reserve(struct local *lo, size_t bytes) {
    struct errmsg msg;
    int rc = wal_reserve(lo->wal, bytes, &msg);
    if (rc == 0) {
        if (lo->disk_full) local_trace(lo, "disk space is available again: writes resume");
        lo->disk_full = false;
        return true;
    }
    if (!lo->disk_full) local_trace(lo, "disk full, refusing writes: %s", msg.text);
    lo->disk_full = true;
    snprintf(lo->disk_full_text, sizeof(lo->disk_full_text), "%s", msg.text);
    if (rc != ERR_NOSPACE && lo->fatal == 0) {
        lo->fatal = rc;
        snprintf(lo->fatal_text, sizeof(lo->fatal_text), "log reserve failed: %.200s", msg.text);
    }
    return false;
}

uint64_t local_release_lsn(const struct local *lo) {
    return lo->config.fsync == ENGINE_FSYNC_ALWAYS ? wal_last_lsn(lo->wal) : 0;
}

uint64_t local_durable_lsn(const struct local *lo) {
    if (lo->config.fsync != ENGINE_FSYNC_ALWAYS) return wal_last_lsn(lo->wal);
    return wal_durable_lsn(lo->wal);
}

static void local_snapshot_finish(struct local *lo) {
    struct errmsg msg;
    int rc = snapshot_writer_finish(lo->snap.writer, &msg);
    lo->snap.writer = NULL;
    if (rc != 0) {
        local_trace(lo, "snapshot failed: %s", msg.text);
        local_snapshot_abort(lo, rc);
        return;
    }
    lo->snapshot_lsn = lo->snap.start_lsn;
    lo->last_save_ms = lo->now_ms;
    local_trace(lo, "snapshot done lsn=%llu keys=%llu", (unsigned long long)lo->snapshot_lsn,
                (unsigned long long)lo->snap.keys);
    memset(&lo->snap, 0, sizeof(lo->snap));
    rc = wal_truncate_before(lo->wal, lo->snapshot_lsn, &msg);
    if (rc != 0) local_trace(lo, "warning: removing old log segments failed: %s", msg.text);
}

void local_flush(struct local *lo, struct engine_effects *out) {
    struct errmsg msg;
    if (wal_flushed_lsn(lo->wal) < wal_last_lsn(lo->wal)) {
        int rc = wal_flush(lo->wal, &msg);
        if (rc != 0 && lo->fatal == 0) {
            /* A write into reserved space failed: the log can no longer be trusted. */
            lo->fatal = rc;
            snprintf(lo->fatal_text, sizeof(lo->fatal_text), "log write failed: %.200s", msg.text);
            return;
        }
    }
    bool snapshot_waits = lo->snap.active && lo->snap.scan_done;
    if (snapshot_waits && wal_durable_lsn(lo->wal) >= lo->snap.end_lsn) {
        local_snapshot_finish(lo);
        snapshot_waits = false;
    }
    bool want = lo->config.fsync == ENGINE_FSYNC_ALWAYS || lo->sync_due || snapshot_waits;
    if (!want || lo->sync_in_flight) return;
    struct disk_file *file;
    uint64_t lsn;
    if (!wal_sync_begin(lo->wal, &file, &lsn)) return;
    lo->sync_in_flight = true;
    lo->sync_due = false;
    out->sync_file = file;
    out->sync_token = lsn;
}

void local_synced(struct local *lo, uint64_t lsn, int error) {
    ASSERT(lo->sync_in_flight);
    lo->sync_in_flight = false;
    if (error != 0) {
        /* After a failed fsync the kernel may have dropped the dirty pages: nothing written
         * since the last good sync can be trusted, so the node stops (as PostgreSQL does). */
        if (lo->fatal == 0) {
            lo->fatal = error;
            snprintf(lo->fatal_text, sizeof(lo->fatal_text),
                     "fsync of the write-ahead log failed (%s); stopping so that no "
                     "unsynced write is acknowledged",
                     err_text(error));
        }
        return;
    }
    wal_sync_end(lo->wal, lsn);
    lo->stats.syncs++;
}

int local_snapshot_start(struct local *lo, struct errmsg *msg) {
    ASSERT(!lo->snap.active);
    struct snapshot_writer *writer;
    uint64_t start_lsn = wal_last_lsn(lo->wal) + 1;
    int rc = snapshot_writer_open(lo->disk, start_lsn, &writer, msg);
    if (rc != 0) return rc;
    memset(&lo->snap, 0, sizeof(lo->snap));
    lo->snap.active = true;
    lo->snap.writer = writer;
    lo->snap.start_lsn = start_lsn;
    local_trace(lo, "snapshot started lsn=%llu", (unsigned long long)start_lsn);
    return 0;
}

struct local_scan_ctx {
    struct local *lo;
    int error;
};

static void local_snapshot_entry(void *ctx, struct db_entry *e) {
    struct local_scan_ctx *s = ctx;
    if (s->error != 0) return;
    struct local *lo = s->lo;
    buf_clear(&lo->scratch);
    op_put_entry(&lo->scratch, e);
    struct errmsg msg;
    s->error = snapshot_writer_add(lo->snap.writer, lo->scratch.data, lo->scratch.len, &msg);
    if (s->error != 0) local_trace(lo, "snapshot write failed: %s", msg.text);
    lo->snap.keys++;
}

int local_snapshot_run(struct local *lo, bool to_completion) {
    ASSERT(lo->snap.active);
    struct local_scan_ctx s = {.lo = lo, .error = 0};
    uint32_t steps = 0;
    while (!lo->snap.scan_done && (to_completion || steps < LOCAL_SNAPSHOT_BUCKETS_PER_STEP)) {
        lo->snap.cursor = db_scan(lo->db, lo->snap.cursor, local_snapshot_entry, &s);
        steps++;
        if (s.error != 0) {
            local_snapshot_abort(lo, s.error);
            return s.error;
        }
        if (lo->snap.cursor == 0) {
            lo->snap.scan_done = true;
            lo->snap.end_lsn = wal_last_lsn(lo->wal);
        }
    }
    return 0;
}

void local_tick(struct local *lo) {
    if (lo->config.fsync == ENGINE_FSYNC_EVERYSEC && lo->mono_ms >= lo->last_everysec_ms + 1000) {
        lo->last_everysec_ms = lo->mono_ms;
        lo->sync_due = true;
    }
    if (lo->snap.active) {
        if (!lo->snap.scan_done) local_snapshot_run(lo, false);
        return;
    }
    if (wal_bytes_since(lo->wal, lo->snapshot_lsn) < lo->config.snapshot_log_bytes) return;
    struct errmsg msg;
    if (local_snapshot_start(lo, &msg) != 0) {
        local_trace(lo, "snapshot could not start: %s", msg.text);
    }
}
