/*
 * Durable Raft storage: the hard state, the log and the latest snapshot of one node, in one
 * data directory (a struct disk), built on wal.c and snapshot.c. It carries out step (1)
 * of raft.h's caller contract and says when that step is durable. Format: docs/formats.md.
 *
 * Invariants: the log held is contiguous, snapshot index + 1 ... last index; every write
 * goes through a reservation made first (a full disk refuses, never half-writes); the
 * snapshot file is the commit point of a snapshot (WAL records before its start lsn are
 * never replayed over it). Crash safety: after a crash at any point, open returns the
 * state after some prefix of the written records that contains every synced one.
 * Never: a system call (only struct disk), a clock, a thread (the caller may run the
 * sync half of group commit on one).
 *
 * How a caller drives it, per raft_step() with effects e:
 *   1. if e.restore: raftstore_save_snapshot(s, e.restore, RAFTSTORE_SNAPSHOT_RESTORED).
 *   2. raftstore_reserve(s, e.entry_count, sum of the entries' data_bytes) -- on
 *      ERR_NOSPACE nothing was buffered: stop, or retry later.
 *   3. if e.hard_state_changed: raftstore_save_hard_state(s, &e.hard_state);
 *      if e.truncate_from: raftstore_truncate(s, e.truncate_from);
 *      if e.entry_count: raftstore_append(s, e.entries, e.entry_count).
 *   4. position = raftstore_last_lsn(s); hold e's messages (and applies) with it.
 *   5. raftstore_flush(s), then either raftstore_sync(s) (simple callers), or group commit:
 *      if raftstore_sync_begin(s, &file, &token): rc = disk->sync(disk, file, msg) (may
 *      run on another thread while later steps go through 1-4 and flush), then
 *      raftstore_sync_end(s, token, rc).
 *   6. release what was held for every position <= raftstore_durable_lsn(s); report
 *      RAFT_EVENT_PERSISTED with the (index, term) from raftstore_durable_entry(s).
 * While a sync is in flight, reserve / write calls / flush may go on (the wal keeps the
 * file being synced alive); save_snapshot, sync and close may not (end the sync first).
 * A failed disk->sync is fatal: after sync_end with its error, every fallible call returns
 * ERR_IO and durable_lsn no longer moves; close the store.
 */
#ifndef CAPKV_STORAGE_RAFTSTORE_H
#define CAPKV_STORAGE_RAFTSTORE_H
/* API: final */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "raft/raft.h"
#include "storage/disk.h"
#include "storage/wal.h"

#define RAFTSTORE_ENTRIES_MAX (1u << 20)                 /* log entries held after a snapshot */
#define RAFTSTORE_ENTRY_BYTES_MAX RAFT_ENTRY_BYTES_MAX   /* data of one entry */
#define RAFTSTORE_SNAPSHOT_BYTES_MAX (4ull << 30)        /* state-machine blob of one snapshot */
#define RAFTSTORE_BATCH_BYTES_MAX (256ull * 1024 * 1024) /* records in one WAL record */
#define RAFTSTORE_SNAPSHOT_CHUNK_BYTES (1u << 20)        /* blob bytes per snapshot entry */

struct raftstore;
struct disk_file;

struct raftstore_options {
    uint64_t segment_bytes; /* WAL segment size; 0 means WAL_SEGMENT_BYTES_DEFAULT */
    wal_warn_fn *warn;      /* torn tails cut at open; may be NULL */
    void *warn_ctx;
    /* A snapshot whose blob is in a data file is not read at open (recovered.snapshot.data
     * is NULL, data_bytes set): the caller reads it with raftstore_snapshot_read, in pieces,
     * so that a big one is never whole in memory. */
    bool blob_on_disk;
};

/* What open found. Every pointer is borrowed from the store: entries (and their data)
 * until the first raftstore_truncate, raftstore_append, raftstore_save_snapshot or
 * raftstore_close; snapshot.data until the next raftstore_save_snapshot or close. */
struct raftstore_recovered {
    struct raft_hard_state hard_state;  /* term 0, vote 0 when nothing was stored */
    struct raft_snapshot_meta snapshot; /* index 0: none (then term 0, empty config, no data) */
    const struct raft_entry *entries;   /* snapshot.index + 1 ... in order, no gaps */
    size_t entry_count;
};

enum raftstore_snapshot_kind {
    RAFTSTORE_SNAPSHOT_TAKEN = 1,    /* the node's own (RAFT_EVENT_SNAPSHOT_TAKEN): keeps the
                                      * entries after meta->index */
    RAFTSTORE_SNAPSHOT_RESTORED = 2, /* effects.restore: discards the whole log */
};

/* Opens (creating when empty) the store in disk's directory and recovers it into
 * *recovered (caller-owned storage; borrowed pointers, see above). options and recovered
 * borrowed; disk kept until raftstore_close. On error *out is NULL and msg says why; damage
 * in the middle of a file is ERR_CORRUPT naming the file and the byte offset. */
int raftstore_open(struct disk *disk, const struct raftstore_options *options,
                   struct raftstore **out, struct raftstore_recovered *recovered,
                   struct errmsg *msg);
/* Frees the store (takes it). Writes nothing: buffered, unflushed records are lost. No sync
 * may be in flight. */
void raftstore_close(struct raftstore *store);

/* Makes room for one hard state, one truncate and entry_count entries carrying data_bytes
 * of data in total, on top of what earlier reservations still cover. ERR_NOSPACE (disk
 * full) or ERR_LIMIT (over RAFTSTORE_ENTRIES_MAX / RAFTSTORE_BATCH_BYTES_MAX): nothing was
 * buffered, the store stays usable, a later call retries. May write and sync buffered
 * records (when the batch is full or a WAL segment rotates). */
int raftstore_reserve(struct raftstore *store, size_t entry_count, uint64_t data_bytes,
                      struct errmsg *msg);
/* Gives back every reservation not used by the writes made since: a caller that reserves
 * for each step (one hard state, one truncate, the entries) and writes at once calls this
 * after the writes, so that the allowance for a hard state or truncate the step did not
 * need does not pile up. */
void raftstore_release_unused(struct raftstore *store);

/* Write calls: buffer records; a reservation must cover them (asserted). Borrow their
 * arguments. truncate deletes entries with index >= from (snapshot index < from <= last
 * index + 1). append takes entries whose first index is <= last index + 1 and > the
 * snapshot index; entries at or after it are replaced (as if truncated first). */
void raftstore_save_hard_state(struct raftstore *store, const struct raft_hard_state *hs);
void raftstore_truncate(struct raftstore *store, uint64_t from_index);
void raftstore_append(struct raftstore *store, const struct raft_entry *entries, size_t count);

/* Writes buffered records to the WAL file (not yet durable). ERR_IO is fatal. */
int raftstore_flush(struct raftstore *store, struct errmsg *msg);
/* Group commit. begin: false when everything flushed is already durable, a sync is in
 * flight or the store failed; else the file to sync (borrowed until sync_end) and a token.
 * The caller runs rc = disk->sync(disk, *file, msg), then always calls sync_end with the
 * token and rc: 0 makes the records durable, anything else fails the store for good. */
bool raftstore_sync_begin(struct raftstore *store, struct disk_file **file, uint64_t *token);
void raftstore_sync_end(struct raftstore *store, uint64_t token, int sync_rc);
/* flush + sync_begin + disk->sync + sync_end on the calling thread. ERR_IO is fatal. */
int raftstore_sync(struct raftstore *store, struct errmsg *msg);

/* Positions (WAL lsns): last_lsn covers everything written so far, buffered included;
 * durable_lsn everything synced. Written data is durable once durable_lsn >= the
 * last_lsn read after writing it. */
uint64_t raftstore_last_lsn(const struct raftstore *store);
uint64_t raftstore_durable_lsn(const struct raftstore *store);
/* The last entry of the current log whose record is durable: what to report with
 * RAFT_EVENT_PERSISTED. (0, 0) when none; the snapshot's when only it is. */
void raftstore_durable_entry(const struct raftstore *store, uint64_t *index, uint64_t *term);

/* Stores a snapshot durably, then compacts: flushes and syncs buffered records, writes the
 * snapshot file (meta and meta->data, borrowed) with tmp, sync, rename, sync dir, writes a
 * SNAPSHOT_MARK and the current hard state, syncs, and drops WAL segments no longer needed.
 * TAKEN keeps entries after meta->index (meta->index <= last index; an index at or below
 * the current snapshot's does nothing); RESTORED discards the log. Reservations made before
 * are used up. ERR_NOSPACE / ERR_LIMIT: nothing changed. ERR_IO is fatal. The store keeps a
 * copy of the blob (raftstore_snapshot). No sync may be in flight. */
int raftstore_save_snapshot(struct raftstore *store, const struct raft_snapshot_meta *meta,
                            enum raftstore_snapshot_kind kind, struct errmsg *msg);

/* Returns borrowed, valid until the next raftstore_save_snapshot, stream commit or close:
 * the latest snapshot (index 0 when none) with its blob, to attach to
 * RAFT_MSG_INSTALL_SNAPSHOT. data is NULL (with data_bytes > 0) while the blob is not in
 * memory: a streamed snapshot's, or after raftstore_snapshot_drop. */
const struct raft_snapshot_meta *raftstore_snapshot(const struct raftstore *store);
/* Reads the latest snapshot's blob into memory if it is not (0 when it is, or none). */
int raftstore_snapshot_load(struct raftstore *store, struct errmsg *msg);
/* Frees the blob's memory (raftstore_snapshot_load reads it again from disk). */
void raftstore_snapshot_drop(struct raftstore *store);

/* Streamed snapshots: the state machine's blob is written in pieces while the node goes
 * on, into a data file of its own, never held whole in memory (raftstore.c's format).
 *   begin   opens the data file (one stream at a time).
 *   add     appends a piece of the blob (borrowed); ERR_LIMIT past
 *           RAFTSTORE_SNAPSHOT_BYTES_MAX, I/O errors: abort then.
 *   seal    ends the blob: *file (borrowed until commit or abort) must be synced by the
 *           caller before commit; it may be large, so the caller syncs it off the loop.
 *   commit  the data is durable: the snapshot at meta (index, term, config; data and
 *           data_bytes ignored) replaces the current one as save_snapshot TAKEN does (its
 *           own small file, the mark, the log's compaction); a stream overtaken by a
 *           restore is dropped. In steps, every fsync on the caller's sync thread:
 *           commit_begin, then while commit_active: commit_sync_begin gives the next file
 *           to sync (false: none now, the commit waits for the log's own sync to cover the
 *           records before it) and commit_sync_end reports it. raftstore_stream_commit
 *           does all of it inline (no log sync may be in flight).
 *   abort   removes the data file (and a commit's files); save_snapshot and close abort
 *           a stream or a commit first (no commit sync may be running). */
int raftstore_stream_begin(struct raftstore *store, struct errmsg *msg);
struct disk *raftstore_disk(const struct raftstore *store); /* the disk it was opened on */
/* A snapshot leaves garbage (the log's segments before it, the older snapshot's data
 * file) that is removed in steps, each a rename or removal or RAFTSTORE_SHRINK_BYTES (4 MiB)
 * of a file, so that no step stalls the caller: call this now and then (all: until done,
 * syncing the directory itself). Returns whether garbage is left. A crash leaves none that
 * matters (open removes it). Without `all`, a step that changed the directory waits for
 * its sync, which the caller runs on its sync thread: raftstore_dir_sync_begin gives the
 * directory's file to sync (false: none needed), raftstore_dir_sync_end reports it. */
bool raftstore_collect(struct raftstore *store, bool all);
bool raftstore_collect_pending(const struct raftstore *store);
bool raftstore_dir_sync_begin(struct raftstore *store, struct disk_file **file);
void raftstore_dir_sync_end(struct raftstore *store, int sync_rc);
/* Bytes of log records written since the latest snapshot (its start), for a trigger. */
uint64_t raftstore_log_bytes(const struct raftstore *store);
bool raftstore_stream_active(const struct raftstore *store);
uint64_t raftstore_stream_bytes(const struct raftstore *store); /* blob bytes added */
/* The stream's data file (borrowed until commit or abort) and its bytes on the disk so far,
 * for the caller to sync in steps while the stream goes on (the one at seal then has
 * little left to do). */
struct disk_file *raftstore_stream_file(const struct raftstore *store, uint64_t *written);
int raftstore_stream_add(struct raftstore *store, const uint8_t *data, size_t bytes,
                         struct errmsg *msg);
int raftstore_stream_seal(struct raftstore *store, struct disk_file **file, struct errmsg *msg);
int raftstore_stream_commit(struct raftstore *store, const struct raft_snapshot_meta *meta,
                            struct errmsg *msg);
void raftstore_stream_abort(struct raftstore *store);
int raftstore_commit_begin(struct raftstore *store, const struct raft_snapshot_meta *meta,
                           struct errmsg *msg);
bool raftstore_commit_active(const struct raftstore *store);
bool raftstore_commit_sync_begin(struct raftstore *store, struct disk_file **file);
int raftstore_commit_sync_end(struct raftstore *store, int sync_rc, struct errmsg *msg);
/* Calls fn with the latest snapshot's blob, in order, in pieces of any size (borrowed for
 * the call), from memory or from its files, never holding it whole; a non-zero return
 * from fn stops and is returned. Damage is ERR_CORRUPT naming the file. */
typedef int raftstore_piece_fn(void *ctx, const uint8_t *data, size_t bytes);
int raftstore_snapshot_read(struct raftstore *store, raftstore_piece_fn *fn, void *ctx,
                            struct errmsg *msg);

/* InstallSnapshot in chunks (the CP engine's cp_xfer.c): the leader sends its snapshot's
 * data file byte for byte, and the follower keeps the bytes in a file of its own.
 * Sending: data_open opens the latest snapshot's data file for reading (*id, *file, its
 * *bytes); it is not collected, even once a newer snapshot replaces it, until data_close.
 * ERR_NOTFOUND: the snapshot has none (the blob is inside the snapshot file: an older
 * release's). At most RAFTSTORE_PINS_MAX at once (ERR_LIMIT). */
#define RAFTSTORE_PINS_MAX 16
int raftstore_data_open(struct raftstore *store, uint64_t *id, struct disk_file **file,
                        uint64_t *bytes, struct errmsg *msg);
void raftstore_data_close(struct raftstore *store, uint64_t id, struct disk_file *file);
/* Receiving, one file at a time, "snaprecv-<index>.tmp":
 *   recv_begin   starts one for the snapshot at index (the one before is removed).
 *   recv_write   appends bytes at offset, which must be the bytes received so far.
 *   recv_file    the file (borrowed) and its bytes, for the caller to sync (in steps).
 *   recv_check   every byte is in and synced: verifies the file whole (format, every CRC)
 *                and gives the blob bytes it holds. Damage: ERR_CORRUPT; abort then.
 *   recv_commit  installs the checked file as the snapshot at meta (index, term, config;
 *                data ignored) as save_snapshot RESTORED does: the log is discarded. The
 *                file becomes one of the store's data files. No sync may be in flight.
 *   recv_abort   removes it.
 *   recv_resume  once, after open: a partial file a restart left (true, its *index and
 *                *bytes), cut by distrust bytes first (the end may not have been synced).
 * A crash leaves at most one partial file (the newest; open removes the others). */
int raftstore_recv_begin(struct raftstore *store, uint64_t index, struct errmsg *msg);
int raftstore_recv_write(struct raftstore *store, uint64_t offset, const uint8_t *data,
                         size_t bytes, struct errmsg *msg);
struct disk_file *raftstore_recv_file(const struct raftstore *store, uint64_t *written);
bool raftstore_recv_active(const struct raftstore *store, uint64_t *index, uint64_t *bytes);
int raftstore_recv_check(struct raftstore *store, uint64_t *blob_bytes, struct errmsg *msg);
int raftstore_recv_commit(struct raftstore *store, const struct raft_snapshot_meta *meta,
                          struct errmsg *msg);
void raftstore_recv_abort(struct raftstore *store);
bool raftstore_recv_resume(struct raftstore *store, uint64_t distrust, uint64_t *index,
                           uint64_t *bytes);

/* The hard state last saved (buffered included). */
struct raft_hard_state raftstore_hard_state(const struct raftstore *store);
uint64_t raftstore_last_index(const struct raftstore *store); /* snapshot index when empty */
/* Term of the entry at index (the snapshot's at its index); false outside the log. */
bool raftstore_term_at(const struct raftstore *store, uint64_t index, uint64_t *term);

#endif
