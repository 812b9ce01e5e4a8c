/*
 * A view of the data directory for one engine: the same struct disk interface, every name
 * placed under the engine's prefix ("cp-wal-...log"), and a listing that shows only the
 * engine's own files, prefix removed. Storage code (wal.c, raftstore.c, snapshot.c) runs on
 * a view unchanged and never sees another engine's files. File handles are the base disk's.
 *
 * Directories written before engines had views keep their files unprefixed ("wal-...log",
 * "snap-...snap"): disk_view_adopt moves them under the view once, one atomic rename per
 * file, after writing a marker, so a crash part way through resumes on the next start;
 * without the marker, old files beside the engine's own are two histories, and refused.
 */
#ifndef CAPKV_ENGINE_DISK_VIEW_H
#define CAPKV_ENGINE_DISK_VIEW_H

#include <stddef.h>

#include "storage/disk.h"

#define DISK_VIEW_PREFIX_BYTES_MAX 16
#define DISK_VIEW_ADOPTING "adopting" /* marker of an adoption under way (in the view) */

struct disk_view {
    struct disk disk; /* what the engine is given: its impl points back at the view */
    struct disk *base;
    char prefix[DISK_VIEW_PREFIX_BYTES_MAX];
};

/* prefix (copied) like "cp-"; base is kept and must outlive the view. */
void disk_view_init(struct disk_view *view, struct disk *base, const char *prefix);
/* Moves the unprefixed files of the layout before views (wal-*, snap-*) under the view;
 * *moved says how many. ERR_EXISTS (msg names the files) if a file is there under both
 * names, or the view has files of its own and no adoption was under way. */
int disk_view_adopt(struct disk_view *view, uint32_t *moved, struct errmsg *msg);

/* Storage errors name files as the view shows them ("wal-...log: corrupt record at byte
 * offset 96"); this puts the prefix back in front of such names in msg, so that the text
 * names the file a person finds in the directory. */
void disk_view_explain(const struct disk_view *view, struct errmsg *msg);
/* The same for a line of text (a trace line) of cap bytes, NUL-terminated. */
void disk_view_explain_text(const struct disk_view *view, char *text, size_t cap);

#endif
