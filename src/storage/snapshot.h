/*
 * Snapshots: a file of opaque entries (the core's encoded keys and values) that, loaded
 * and followed by the WAL from its start_lsn on, rebuilds the state. Snapshots may be
 * fuzzy: written bit by bit while writes go on, because every WAL record is idempotent and
 * records from start_lsn on are replayed over it. Written as snap-<lsn>.tmp, fsynced, then
 * renamed to snap-<lsn16hex>.snap; a file without its trailer is never loaded.
 * Format: docs/formats.md.
 */
#ifndef CAPKV_STORAGE_SNAPSHOT_H
#define CAPKV_STORAGE_SNAPSHOT_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "storage/disk.h"

#define SNAPSHOT_ENTRY_BYTES_MAX (512ull * 1024 * 1024 + 65536) /* a maximal value plus key */
#define SNAPSHOT_COUNT_MAX 4096 /* snapshot files considered in one directory */

struct snapshot_writer;

typedef int snapshot_entry_fn(void *ctx, const uint8_t *entry, size_t bytes);

/* disk kept until finish/abort. start_lsn >= 1: the first WAL lsn not in the snapshot. */
int snapshot_writer_open(struct disk *disk, uint64_t start_lsn, struct snapshot_writer **out,
                         struct errmsg *msg);
/* Adds one entry (borrowed). ERR_NOSPACE / ERR_IO leave the writer usable only for abort. */
int snapshot_writer_add(struct snapshot_writer *w, const uint8_t *entry, size_t bytes,
                        struct errmsg *msg);
/* Writes the trailer, syncs, renames into place, syncs the directory, removes older
 * snapshots, frees w. On error the temporary file is removed and w freed. */
int snapshot_writer_finish(struct snapshot_writer *w, struct errmsg *msg);
void snapshot_writer_abort(struct snapshot_writer *w);

/* Named files: "<prefix>-<id, 16 hex>.snap", the same format, for data a caller commits in
 * steps (raftstore's streamed snapshots): open_as, add..., seal (the trailer is written;
 * *file, borrowed until commit or abort, is for the caller to sync, off the loop if it
 * likes), then commit (rename into place, sync the directory; frees w). Nothing older is
 * removed: snapshot_remove_as does that once nothing refers to it. prefix: 1 to 16 bytes,
 * copied. */
int snapshot_writer_open_as(struct disk *disk, const char *prefix, uint64_t id,
                            struct snapshot_writer **out, struct errmsg *msg);
int snapshot_writer_seal(struct snapshot_writer *w, struct disk_file **file, struct errmsg *msg);
int snapshot_writer_commit(struct snapshot_writer *w, struct errmsg *msg);
/* commit without the directory's sync: the name is durable after the caller's (which may
 * run on its sync thread, disk->dir_file). */
int snapshot_writer_place(struct snapshot_writer *w, struct errmsg *msg);
/* Removes snapshot files older than start_lsn and every .tmp, without a directory sync
 * (a crash may bring them back; loading takes the newest). */
void snapshot_remove_older(struct disk *disk, uint64_t start_lsn);
/* The file (borrowed until commit or abort) and how many of its bytes were handed to the
 * disk (not the buffer): a caller may sync those while writing goes on. */
struct disk_file *snapshot_writer_file(const struct snapshot_writer *w, uint64_t *written);
/* Loads "<prefix>-<id>.snap", calling fn per entry; a missing, unfinished or damaged file
 * is an error naming it. The id in its header is not checked: such a file may have been
 * written by another node under its own id and received whole (raftstore's InstallSnapshot
 * in chunks). snapshot_load_file does the same for any name. */
int snapshot_load_as(struct disk *disk, const char *prefix, uint64_t id, snapshot_entry_fn *fn,
                     void *ctx, struct errmsg *msg);
int snapshot_load_file(struct disk *disk, const char *name, snapshot_entry_fn *fn, void *ctx,
                       struct errmsg *msg);
/* Removes "<prefix>-*.tmp" and every "<prefix>-*.snap" but keep's. */
void snapshot_remove_as(struct disk *disk, const char *prefix, uint64_t keep);
/* The names snapshot_remove_as would remove, each given to fn (borrowed for the call), for
 * a caller that removes large files in steps. */
typedef void snapshot_name_fn(void *ctx, const char *name);
void snapshot_garbage_as(struct disk *disk, const char *prefix, uint64_t keep, snapshot_name_fn *fn,
                         void *ctx);

/* Loads the newest complete snapshot, calling fn per entry. *start_lsn is its lsn, or 0
 * with no snapshot (then fn is never called). A damaged snapshot is ERR_CORRUPT naming
 * file and offset. Leftover .tmp files are removed. */
int snapshot_load(struct disk *disk, snapshot_entry_fn *fn, void *ctx, uint64_t *start_lsn,
                  struct errmsg *msg);

#endif
