/*
 * A view of the data directory for one engine: the same struct disk interface, every name
 * placed under the engine's prefix ("cp-wal-...log"), and a listing that shows only the
 * engine's own files, prefix removed. Storage code (wal.c, raftstore.c, snapshot.c) runs on
 * a view unchanged and never sees another engine's files. File handles are the base disk's.
 *
 * Directories written before engines had views keep their files unprefixed ("wal-...log",
 * "snap-...snap"): disk_view_adopt moves them under the view once, one atomic rename per
 * file, so a crash part way through resumes on the next start.
 */
#ifndef CAPKV_ENGINE_DISK_VIEW_H
#define CAPKV_ENGINE_DISK_VIEW_H

#include "storage/disk.h"

#define DISK_VIEW_PREFIX_BYTES_MAX 16

struct disk_view {
    struct disk disk; /* what the engine is given: its impl points back at the view */
    struct disk *base;
    char prefix[DISK_VIEW_PREFIX_BYTES_MAX];
};

/* prefix (copied) like "cp-"; base is kept and must outlive the view. */
void disk_view_init(struct disk_view *view, struct disk *base, const char *prefix);
/* Moves the unprefixed files of the layout before views (wal-*, snap-*) under the view;
 * *moved says how many. ERR_EXISTS (msg names both files) if a file is there under both
 * names. */
int disk_view_adopt(struct disk_view *view, uint32_t *moved, struct errmsg *msg);

#endif
