/*
 * The write-ahead log: segmented, append-only, a CRC-32C on every record, segments
 * preallocated so that a flush can never fail for lack of space (a full disk is found when
 * a new segment is reserved, before a write is applied). Format: docs/formats.md.
 *
 * Records carry an opaque payload (the core's encoded operations) and a log sequence
 * number (lsn), 1-based and gap-free. Appends go to memory; wal_flush writes them to the
 * current segment; durability comes from wal_sync_begin / disk sync / wal_sync_end, split
 * so that a shell may run the sync on a worker thread while appends continue.
 *
 * Recovery: a record that fails its CRC in the newest segment with no valid record after
 * it is a torn tail: it is cut off with a warning. Damage anywhere else is corruption:
 * wal_open refuses with ERR_CORRUPT naming the file and byte offset.
 */
#ifndef CAPKV_STORAGE_WAL_H
#define CAPKV_STORAGE_WAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "storage/disk.h"

#define WAL_NAME_BYTES 32 /* "wal-" + 16 hex + ".log" + NUL = 25 */
#define WAL_SEGMENT_BYTES_DEFAULT (64ull * 1024 * 1024)
#define WAL_RECORD_BYTES_MAX (512ull * 1024 * 1024 + 4096) /* a maximal bulk plus framing */
#define WAL_SEGMENT_BYTES_MIN 4096ull                      /* smallest options.segment_bytes */
#define WAL_SEGMENT_BYTES_MAX (1ull << 30) /* largest segment file, also on reading */
#define WAL_SEGMENT_COUNT_MAX 65536        /* segment files in one directory */

struct wal;
struct disk_file;

struct wal_options {
    uint64_t segment_bytes; /* size each segment is preallocated to */
};

/* Called once per valid record during wal_open, in lsn order, for lsn >= from_lsn. The
 * payload is borrowed for the duration of the call. Returning non-zero stops recovery and
 * wal_open returns that value. */
typedef int wal_replay_fn(void *ctx, uint64_t lsn, const uint8_t *payload, size_t bytes);

/* Called with warnings a person should see (torn tail cut, file and offset). */
typedef void wal_warn_fn(void *ctx, const char *text);

struct wal_open_args {
    struct disk *disk; /* kept: must outlive the wal */
    struct wal_options options;
    uint64_t from_lsn;     /* replay records with lsn >= from_lsn (the snapshot's) */
    wal_replay_fn *replay; /* may be NULL */
    wal_warn_fn *warn;     /* may be NULL */
    void *ctx;
};

/* Opens (or creates) the log in the disk's directory, replays it, and positions for
 * appends. On error *out is NULL and msg names file and offset (records may already have
 * been replayed: the caller discards that state). Everything recovered is synced, so
 * durable_lsn == last_lsn after open. When the log ends before from_lsn - 1 (a snapshot
 * newer than the synced log), the log continues at from_lsn: last_lsn == from_lsn - 1.
 * args borrowed; args->disk kept. */
int wal_open(const struct wal_open_args *args, struct wal **out, struct errmsg *msg);
/* Closes files and frees wal (takes it); writes nothing: flush and sync first to keep
 * appended records. No sync may be running on the current file (finish it first). */
void wal_close(struct wal *wal);

/* Makes sure `bytes` more payload fits (rotating to a new, preallocated segment when the
 * current one is full). ERR_NOSPACE with a message when the disk is full: nothing was
 * appended, and a later call retries. Rotation flushes and syncs the old segment on the
 * calling thread (once per segment) before creating the next; a record larger than a
 * segment gets a segment of its own size. ERR_LIMIT over WAL_RECORD_BYTES_MAX. */
int wal_reserve(struct wal *wal, size_t payload_bytes, struct errmsg *msg);
/* Appends one record to memory; wal_reserve must have succeeded for at least this size
 * since the last append. Returns its lsn. payload borrowed. */
uint64_t wal_append(struct wal *wal, const uint8_t *payload, size_t bytes);
/* Writes appended records to the current segment. ERR_IO is fatal for the caller. */
int wal_flush(struct wal *wal, struct errmsg *msg);

/* Group commit in three steps. begin: returns false when everything flushed is already
 * durable or a sync is in flight; else the file to sync (borrowed until sync_end) and
 * the lsn it will make durable. The caller runs disk->sync(file), then calls sync_end. */
bool wal_sync_begin(struct wal *wal, struct disk_file **file, uint64_t *lsn);
/* After a successful sync only: a failed sync is fatal (the kernel may have dropped the
 * pages); stop using the wal, and end the sync before wal_close. */
void wal_sync_end(struct wal *wal, uint64_t lsn);

uint64_t wal_last_lsn(const struct wal *wal);    /* last appended, 0 when empty */
uint64_t wal_flushed_lsn(const struct wal *wal); /* last written to the file */
uint64_t wal_durable_lsn(const struct wal *wal); /* last made durable by a sync */
/* Log bytes after lsn, counted in whole segments (over by at most one segment). */
uint64_t wal_bytes_since(const struct wal *wal, uint64_t lsn);
/* wal_truncate_before's work one segment at a time, for a caller that frees the space in
 * steps (removing a large preallocated file at once costs the disk tens of ms): renames the
 * oldest segment, if every record in it is below lsn, to "wal-<first lsn>.old" (old_name)
 * and forgets it (*retired then true). The rename is durable after the directory's next
 * sync; wal_open removes retired segments a crash left. */
int wal_retire_one_before(struct wal *wal, uint64_t lsn, char old_name[WAL_NAME_BYTES],
                          bool *retired, struct errmsg *msg);

/* Deletes whole segments whose records all have lsn < lsn (after a snapshot at lsn). */
int wal_truncate_before(struct wal *wal, uint64_t lsn, struct errmsg *msg);

#endif
