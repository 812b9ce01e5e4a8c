/*
 * A logged db: a db whose every change is an op record in a write-ahead log with group
 * commit (fsync = always: a reply waits until a sync covers what it could have observed;
 * everysec; never), with fuzzy snapshots taken a few buckets at a time while writes go on
 * and recovery at open (the newest snapshot, then the log from the snapshot's lsn). The
 * single-node engine keeps its data in one; the AP engine keeps its objects in one.
 *
 * A snapshot scan may observe records that are not yet durable; so a snapshot is put in
 * place only once the log is durable up to the last record the scan could have seen
 * (end_lsn). Replaying the log from start_lsn over it then rebuilds exactly the state
 * (every op is idempotent, see cmd/op.h), and only after that are older segments removed.
 */
#include "engine/logdb.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/util.h"
#include "cmd/op.h"

void logdb_trace(const struct logdb *ldb, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    util_tracev(ldb->config.trace, ldb->config.trace_ctx, ldb->config.id, ldb->now_ms, fmt, ap);
    va_end(ap);
}

static int logdb_load_entry(void *ctx, const uint8_t *entry, size_t bytes) {
    struct logdb *ldb = ctx;
    struct errmsg msg;
    int rc = op_validate(entry, bytes, &msg);
    if (rc != 0) return rc;
    return op_apply(ldb->db, entry, bytes, &msg);
}

static int logdb_replay(void *ctx, uint64_t lsn, const uint8_t *payload, size_t bytes) {
    (void)lsn;
    return logdb_load_entry(ctx, payload, bytes);
}

static void logdb_warn(void *ctx, const char *text) {
    struct logdb *ldb = ctx;
    logdb_trace(ldb, "warning: %s", text);
}

/* Collects empty sets and hashes that a replay may leave (op.h): they are removed. */
static void logdb_find_empty(void *ctx, struct db_entry *e) {
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

static void logdb_sweep_empty(struct logdb *ldb) {
    struct buf keys;
    buf_init(&keys);
    uint64_t cursor = 0;
    do {
        cursor = db_scan(ldb->db, cursor, logdb_find_empty, &keys);
    } while (cursor != 0);
    for (size_t pos = 0; pos < keys.len;) {
        uint32_t n = base_load_u32le(keys.data + pos);
        db_delete(ldb->db, keys.data + pos + 4, n);
        pos += 4 + n;
    }
    buf_deinit(&keys);
}

int logdb_open(struct logdb *ldb, const struct logdb_config *config, struct disk *disk,
               uint64_t now_ms, struct errmsg *msg) {
    memset(ldb, 0, sizeof(*ldb));
    ldb->config = *config;
    ldb->disk = disk;
    ldb->now_ms = now_ms;
    ldb->db = db_new(config->hash_seed);
    buf_init(&ldb->scratch);
    uint64_t start_lsn = 0;
    int rc = snapshot_load(ldb->disk, logdb_load_entry, ldb, &start_lsn, msg);
    if (rc != 0) return rc;
    size_t snapshot_keys = db_count(ldb->db);
    ldb->snapshot_lsn = start_lsn;
    struct wal_open_args args = {
        .disk = ldb->disk,
        .options = {.segment_bytes = ldb->config.wal_segment_bytes},
        .from_lsn = start_lsn == 0 ? 1 : start_lsn,
        .replay = logdb_replay,
        .warn = logdb_warn,
        .ctx = ldb,
    };
    rc = wal_open(&args, &ldb->wal, msg);
    if (rc != 0) return rc;
    logdb_sweep_empty(ldb);
    logdb_trace(ldb, "recovered keys=%zu (snapshot keys=%zu lsn=%llu) log last_lsn=%llu",
                db_count(ldb->db), snapshot_keys, (unsigned long long)start_lsn,
                (unsigned long long)wal_last_lsn(ldb->wal));
    return 0;
}

static void logdb_snapshot_abort(struct logdb *ldb, int error) {
    if (!ldb->snap.active) return;
    if (ldb->snap.writer != NULL) snapshot_writer_abort(ldb->snap.writer);
    logdb_trace(ldb, "snapshot at lsn=%llu abandoned: %s", (unsigned long long)ldb->snap.start_lsn,
                err_text(error));
    memset(&ldb->snap, 0, sizeof(ldb->snap));
}

void logdb_close(struct logdb *ldb) {
    logdb_snapshot_abort(ldb, ERR_IO);
    if (ldb->wal != NULL) wal_close(ldb->wal);
    ldb->wal = NULL;
    if (ldb->db != NULL) db_free(ldb->db);
    ldb->db = NULL;
    buf_deinit(&ldb->scratch);
}

void logdb_clocks(struct logdb *ldb, uint64_t now_ms, uint64_t mono_ms) {
    ldb->now_ms = now_ms;
    if (mono_ms > ldb->mono_ms) ldb->mono_ms = mono_ms;
}

void logdb_append(struct logdb *ldb, const uint8_t *ops, size_t bytes) {
    ASSERT(bytes > 0 && !ldb->disk_full);
    wal_append(ldb->wal, ops, bytes);
}

bool logdb_reserve(struct logdb *ldb, size_t bytes) {
    struct errmsg msg;
    int rc = wal_reserve(ldb->wal, bytes, &msg);
    if (rc == 0) {
        if (ldb->disk_full) logdb_trace(ldb, "disk space is available again: writes resume");
        ldb->disk_full = false;
        return true;
    }
    if (!ldb->disk_full) logdb_trace(ldb, "disk full, refusing writes: %s", msg.text);
    ldb->disk_full = true;
    snprintf(ldb->disk_full_text, sizeof(ldb->disk_full_text), "%s", msg.text);
    if (rc != ERR_NOSPACE && ldb->fatal == 0) {
        ldb->fatal = rc;
        snprintf(ldb->fatal_text, sizeof(ldb->fatal_text), "log reserve failed: %.200s", msg.text);
    }
    return false;
}

uint64_t logdb_release_lsn(const struct logdb *ldb) {
    return ldb->config.fsync == ENGINE_FSYNC_ALWAYS ? wal_last_lsn(ldb->wal) : 0;
}

uint64_t logdb_durable_lsn(const struct logdb *ldb) {
    if (ldb->config.fsync != ENGINE_FSYNC_ALWAYS) return wal_last_lsn(ldb->wal);
    return wal_durable_lsn(ldb->wal);
}

static void logdb_snapshot_finish(struct logdb *ldb) {
    struct errmsg msg;
    int rc = snapshot_writer_finish(ldb->snap.writer, &msg);
    ldb->snap.writer = NULL;
    if (rc != 0) {
        logdb_trace(ldb, "snapshot failed: %s", msg.text);
        logdb_snapshot_abort(ldb, rc);
        return;
    }
    ldb->snapshot_lsn = ldb->snap.start_lsn;
    ldb->last_save_ms = ldb->now_ms;
    logdb_trace(ldb, "snapshot done lsn=%llu keys=%llu", (unsigned long long)ldb->snapshot_lsn,
                (unsigned long long)ldb->snap.keys);
    memset(&ldb->snap, 0, sizeof(ldb->snap));
    rc = wal_truncate_before(ldb->wal, ldb->snapshot_lsn, &msg);
    if (rc != 0) logdb_trace(ldb, "warning: removing old log segments failed: %s", msg.text);
}

void logdb_flush(struct logdb *ldb, struct engine_effects *out) {
    struct errmsg msg;
    if (wal_flushed_lsn(ldb->wal) < wal_last_lsn(ldb->wal)) {
        int rc = wal_flush(ldb->wal, &msg);
        if (rc != 0 && ldb->fatal == 0) {
            /* A write into reserved space failed: the log can no longer be trusted. */
            ldb->fatal = rc;
            snprintf(ldb->fatal_text, sizeof(ldb->fatal_text), "log write failed: %.200s",
                     msg.text);
            return;
        }
    }
    bool snapshot_waits = ldb->snap.active && ldb->snap.scan_done;
    if (snapshot_waits && wal_durable_lsn(ldb->wal) >= ldb->snap.end_lsn) {
        logdb_snapshot_finish(ldb);
        snapshot_waits = false;
    }
    bool want = ldb->config.fsync == ENGINE_FSYNC_ALWAYS || ldb->sync_due || snapshot_waits;
    if (!want || ldb->sync_in_flight) return;
    struct disk_file *file;
    uint64_t lsn;
    if (!wal_sync_begin(ldb->wal, &file, &lsn)) return;
    ldb->sync_in_flight = true;
    ldb->sync_due = false;
    out->sync_file = file;
    out->sync_token = lsn;
}

void logdb_synced(struct logdb *ldb, uint64_t lsn, int error) {
    ASSERT(ldb->sync_in_flight);
    ldb->sync_in_flight = false;
    if (error != 0) {
        /* After a failed fsync the kernel may have dropped the dirty pages: nothing written
         * since the last good sync can be trusted, so the node stops (as PostgreSQL does). */
        if (ldb->fatal == 0) {
            ldb->fatal = error;
            snprintf(ldb->fatal_text, sizeof(ldb->fatal_text),
                     "fsync of the write-ahead log failed (%s); stopping so that no "
                     "unsynced write is acknowledged",
                     err_text(error));
        }
        return;
    }
    wal_sync_end(ldb->wal, lsn);
    ldb->stats.syncs++;
}

int logdb_snapshot_start(struct logdb *ldb, struct errmsg *msg) {
    ASSERT(!ldb->snap.active);
    struct snapshot_writer *writer;
    uint64_t start_lsn = wal_last_lsn(ldb->wal) + 1;
    int rc = snapshot_writer_open(ldb->disk, start_lsn, &writer, msg);
    if (rc != 0) return rc;
    memset(&ldb->snap, 0, sizeof(ldb->snap));
    ldb->snap.active = true;
    ldb->snap.writer = writer;
    ldb->snap.start_lsn = start_lsn;
    logdb_trace(ldb, "snapshot started lsn=%llu", (unsigned long long)start_lsn);
    return 0;
}

struct logdb_scan_ctx {
    struct logdb *ldb;
    int error;
};

static void logdb_snapshot_entry(void *ctx, struct db_entry *e) {
    struct logdb_scan_ctx *s = ctx;
    if (s->error != 0) return;
    struct logdb *ldb = s->ldb;
    buf_clear(&ldb->scratch);
    op_put_entry(&ldb->scratch, e);
    struct errmsg msg;
    s->error = snapshot_writer_add(ldb->snap.writer, ldb->scratch.data, ldb->scratch.len, &msg);
    if (s->error != 0) logdb_trace(ldb, "snapshot write failed: %s", msg.text);
    ldb->snap.keys++;
}

int logdb_snapshot_run(struct logdb *ldb, bool to_completion) {
    ASSERT(ldb->snap.active);
    struct logdb_scan_ctx s = {.ldb = ldb, .error = 0};
    uint32_t steps = 0;
    while (!ldb->snap.scan_done && (to_completion || steps < LOGDB_SNAPSHOT_BUCKETS_PER_STEP)) {
        ldb->snap.cursor = db_scan(ldb->db, ldb->snap.cursor, logdb_snapshot_entry, &s);
        steps++;
        if (s.error != 0) {
            logdb_snapshot_abort(ldb, s.error);
            return s.error;
        }
        if (ldb->snap.cursor == 0) {
            ldb->snap.scan_done = true;
            ldb->snap.end_lsn = wal_last_lsn(ldb->wal);
        }
    }
    return 0;
}

void logdb_tick(struct logdb *ldb) {
    if (ldb->config.fsync == ENGINE_FSYNC_EVERYSEC &&
        ldb->mono_ms >= ldb->last_everysec_ms + 1000) {
        ldb->last_everysec_ms = ldb->mono_ms;
        ldb->sync_due = true;
    }
    if (ldb->snap.active) {
        if (!ldb->snap.scan_done) logdb_snapshot_run(ldb, false);
        return;
    }
    if (wal_bytes_since(ldb->wal, ldb->snapshot_lsn) < ldb->config.snapshot_log_bytes) return;
    struct errmsg msg;
    if (logdb_snapshot_start(ldb, &msg) != 0) {
        logdb_trace(ldb, "snapshot could not start: %s", msg.text);
    }
}
