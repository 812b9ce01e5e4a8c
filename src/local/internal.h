/* State shared by the files of src/local, the single-node engine; nothing outside src/local
 * includes it (the rest of the program sees local/local.h). */
#ifndef CAPKV_LOCAL_INTERNAL_H
#define CAPKV_LOCAL_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "cmd/cmd.h"
#include "data/db.h"
#include "engine/engine.h"
#include "local/local.h"
#include "storage/snapshot.h"
#include "storage/wal.h"

#define LOCAL_TICK_MS 100 /* Redis's hz 10: expiry cycles, everysec, snapshot triggers */
#define LOCAL_EXPIRE_CHECKS_PER_TICK 200
#define LOCAL_SNAPSHOT_BUCKETS_PER_STEP 64
#define LOCAL_WAL_RESERVE_SLACK 4096

struct local_snapshot_job {
    bool active;
    bool scan_done;
    struct snapshot_writer *writer;
    uint64_t cursor;
    uint64_t start_lsn; /* first lsn to replay over this snapshot */
    uint64_t end_lsn;   /* last lsn the scan may have observed */
    uint64_t keys;
};

struct local_stats {
    uint64_t syncs;
    uint64_t disk_full_refusals;
    uint64_t expired_keys;
};

/* The single-node engine. base comes first: engine functions get &lo->base. */
struct local {
    struct engine base;
    struct engine_config config;
    struct disk *disk;
    struct db *db;
    struct wal *wal;
    uint64_t now_ms;       /* wall clock, as the node gives it */
    uint64_t mono_ms;      /* monotonic */
    uint64_t next_tick_ms; /* monotonic */
    struct buf ops;        /* the current request's ops (op.h) */
    size_t logged_bytes;   /* ops holds what the last call logged (for the node's WATCH) */
    struct buf scratch;    /* snapshot records */
    struct buf args;       /* struct resp_arg[] of a transaction's command */
    bool submitting;       /* inside local_submit (the host hook must not re-enter) */
    bool sync_in_flight;
    bool sync_due; /* everysec: a sync is due */
    uint64_t last_everysec_ms;
    bool disk_full; /* last reserve failed: writes refused until one succeeds */
    char disk_full_text[ERRMSG_BYTES_MAX];
    int fatal;
    char fatal_text[ERRMSG_BYTES_MAX];
    struct local_snapshot_job snap;
    uint64_t snapshot_lsn; /* start lsn of the newest complete snapshot */
    uint64_t last_save_ms;
    struct local_stats stats;
};

/* local.c: recovery, group commit, snapshots */
int local_open(struct local *lo, struct errmsg *msg);
void local_close(struct local *lo);
/* Makes room for a write of about `bytes`; false (lo->disk_full set) when the disk is
 * full. */
bool local_reserve(struct local *lo, size_t bytes);
void local_flush(struct local *lo, struct engine_effects *out);
void local_synced(struct local *lo, uint64_t lsn, int error);
/* The lsn a reply produced now must wait for before release. */
uint64_t local_release_lsn(const struct local *lo);
uint64_t local_durable_lsn(const struct local *lo);
void local_tick(struct local *lo);
/* SAVE (synchronous) and BGSAVE: start or run a snapshot. */
int local_snapshot_start(struct local *lo, struct errmsg *msg);
int local_snapshot_run(struct local *lo, bool to_completion);
void local_trace(const struct local *lo, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* local_engine.c: requests */
void local_submit(struct local *lo, const struct engine_request *req, struct buf *out,
                  struct engine_answer *answer);

#endif
