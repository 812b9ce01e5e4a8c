/*
 * The disk interface (SQLite's VFS idea): storage/ makes no system calls and reaches files
 * only through these functions. src/net/disk_posix.c implements them on a real directory;
 * the simulator implements them in memory with crash semantics (unsynced writes are lost,
 * the last write may be torn). Names are plain file names inside one data directory.
 *
 * Every function returns 0 or a negative ERR_*; ERR_NOSPACE when the device is full,
 * ERR_IO for other failures, ERR_NOTFOUND when a file is missing; detail goes to msg.
 */
#ifndef CAPKV_STORAGE_DISK_H
#define CAPKV_STORAGE_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define DISK_NAME_BYTES_MAX 128

struct disk_file; /* opaque, owned by the disk implementation until close */

enum disk_open_flags {
    DISK_OPEN_READ = 1,   /* read only; the file must exist */
    DISK_OPEN_WRITE = 2,  /* read and write; the file must exist */
    DISK_OPEN_CREATE = 4, /* with WRITE: create if missing */
};

typedef void disk_list_fn(void *ctx, const char *name);

struct disk {
    void *impl; /* the implementation's state */
    int (*open)(struct disk *d, const char *name, int flags, struct disk_file **out,
                struct errmsg *msg);
    void (*close)(struct disk *d, struct disk_file *f);
    /* Reads up to `bytes` at offset; *read_bytes < bytes only at end of file. */
    int (*read)(struct disk *d, struct disk_file *f, uint64_t offset, void *data, size_t bytes,
                size_t *read_bytes, struct errmsg *msg);
    /* Writes all bytes at offset (extending the file if needed). Not durable until sync. */
    int (*write)(struct disk *d, struct disk_file *f, uint64_t offset, const void *data,
                 size_t bytes, struct errmsg *msg);
    /* Reserves space so that later writes below offset+bytes cannot fail for lack of
     * space; the reserved range reads as zeros. ERR_NOSPACE when the device is full. */
    int (*allocate)(struct disk *d, struct disk_file *f, uint64_t offset, uint64_t bytes,
                    struct errmsg *msg);
    int (*size)(struct disk *d, struct disk_file *f, uint64_t *bytes, struct errmsg *msg);
    int (*truncate)(struct disk *d, struct disk_file *f, uint64_t bytes, struct errmsg *msg);
    /* Makes the file's data durable. May be called from another thread than the others,
     * for one file at a time (the shell's group commit runs it on a worker thread). */
    int (*sync)(struct disk *d, struct disk_file *f, struct errmsg *msg);
    /* Atomically replaces `to` with `from`. The new name is durable after sync_dir (or a
     * sync of dir_file); until then a crash may leave either name. */
    int (*rename)(struct disk *d, const char *from, const char *to, struct errmsg *msg);
    int (*remove)(struct disk *d, const char *name, struct errmsg *msg);
    /* Calls fn for every file in the directory, in no particular order. */
    int (*list)(struct disk *d, disk_list_fn *fn, void *ctx, struct errmsg *msg);
    /* Makes created, renamed or removed directory entries durable. */
    int (*sync_dir)(struct disk *d, struct errmsg *msg);
    /* The directory as a file, owned by the disk (never closed): sync on it does what
     * sync_dir does, so that the directory's fsync can run on the sync thread too. */
    struct disk_file *(*dir_file)(struct disk *d);
    /* Optional (NULL when not offered), for log segments. Creates `name`, replacing any
     * file of that name, opened for writing and holding `bytes` zero bytes, as open with
     * DISK_OPEN_CREATE, truncate and allocate would. *written is true when those zeros
     * are already written and durable (a file prepared in the background), so that a
     * write into the file and its sync need no metadata update: on ext4 an fdatasync
     * after overwriting is about 40 % cheaper than after writing into allocated space.
     * The new name is durable after sync_dir, as with rename. */
    int (*create_zeroed)(struct disk *d, const char *name, uint64_t bytes, struct disk_file **out,
                         bool *written, struct errmsg *msg);
    /* Optional, with create_zeroed: whether its next call for `bytes` gives written zeros. */
    bool (*zeroed_ready)(struct disk *d, uint64_t bytes);
};

#endif
