/*
 * A logged db (logdb.c): a db (data/db.h) whose changes are op records (cmd/op.h) in a
 * write-ahead log with group commit, fuzzy snapshots in slices and recovery at open. An
 * engine that keeps its state in one runs its commands on `db`, logs their ops with
 * logdb_append, and carries out the log's syncs through its effects (logdb_flush,
 * logdb_synced). The single-node engine (src/local) keeps its data in one; the AP engine
 * keeps its encoded objects in one (docs/engines.md).
 */
#ifndef CAPKV_ENGINE_LOGDB_H
#define CAPKV_ENGINE_LOGDB_H

#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "data/db.h"
#include "engine/engine.h"
#include "storage/snapshot.h"
#include "storage/wal.h"

#define LOGDB_SNAPSHOT_BUCKETS_PER_STEP 64

struct logdb_config {
    uint32_t id; /* the node's, for trace lines */
    enum engine_fsync fsync;
    uint64_t wal_segment_bytes;
    uint64_t snapshot_log_bytes; /* log since the last snapshot that starts the next one */
    uint64_t hash_seed;
    engine_trace_fn *trace;
    void *trace_ctx;
};

struct logdb_snapshot_job {
    bool active;
    bool scan_done;
    struct snapshot_writer *writer;
    uint64_t cursor;
    uint64_t start_lsn; /* first lsn to replay over this snapshot */
    uint64_t end_lsn;   /* last lsn the scan may have observed */
    uint64_t keys;
};

struct logdb_stats {
    uint64_t syncs;
    uint64_t disk_full_refusals; /* counted by the engine, which refuses */
};

struct logdb {
    struct logdb_config config;
    struct disk *disk;  /* kept; outlives the logdb */
    struct db *db;      /* owned */
    struct wal *wal;    /* owned */
    uint64_t now_ms;    /* wall clock, as the node gives it */
    uint64_t mono_ms;   /* monotonic */
    struct buf scratch; /* snapshot records */
    bool sync_in_flight;
    bool sync_due; /* everysec: a sync is due */
    uint64_t last_everysec_ms;
    bool disk_full; /* last reserve failed: writes refused until one succeeds */
    char disk_full_text[ERRMSG_BYTES_MAX];
    int fatal; /* non-zero: the log cannot be trusted any more; the node must stop */
    char fatal_text[ERRMSG_BYTES_MAX];
    struct logdb_snapshot_job snap;
    uint64_t snapshot_lsn; /* start lsn of the newest complete snapshot */
    uint64_t last_save_ms;
    struct logdb_stats stats;
};

/* Opens over disk (kept) and recovers (ldb is caller-owned storage). On error, logdb_close
 * must still be called. */
int logdb_open(struct logdb *ldb, const struct logdb_config *config, struct disk *disk,
               uint64_t now_ms, struct errmsg *msg);
void logdb_close(struct logdb *ldb);
/* The node's clocks of this event: the wall clock as given, the monotonic one never back. */
void logdb_clocks(struct logdb *ldb, uint64_t now_ms, uint64_t mono_ms);
/* Makes room for a write of about `bytes`; false (ldb->disk_full set) when the disk is
 * full. */
bool logdb_reserve(struct logdb *ldb, size_t bytes);
/* Logs ops (borrowed; reserved before) as one record. */
void logdb_append(struct logdb *ldb, const uint8_t *ops, size_t bytes);
/* End of a batch: writes the log, finishes a snapshot the log now covers, asks for a sync. */
void logdb_flush(struct logdb *ldb, struct engine_effects *out);
void logdb_synced(struct logdb *ldb, uint64_t lsn, int error);
/* The lsn a reply produced now must wait for before release, and how far it is durable. */
uint64_t logdb_release_lsn(const struct logdb *ldb);
uint64_t logdb_durable_lsn(const struct logdb *ldb);
/* Timers: everysec, and a snapshot's slices or its start once the log has grown. */
void logdb_tick(struct logdb *ldb);
/* SAVE (synchronous) and BGSAVE: start or run a snapshot. */
int logdb_snapshot_start(struct logdb *ldb, struct errmsg *msg);
int logdb_snapshot_run(struct logdb *ldb, bool to_completion);
void logdb_trace(const struct logdb *ldb, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
