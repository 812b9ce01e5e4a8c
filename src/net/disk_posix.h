/*
 * struct disk on a real directory (POSIX): pread/pwrite loops, posix_fallocate for
 * allocate, fdatasync for sync, rename + fsync of the directory. The directory is held
 * open as a file descriptor; every name is resolved relative to it (openat and friends).
 * sync only uses the file's descriptor, so a worker thread may run it while the event
 * loop thread makes other calls.
 */
#ifndef CAPKV_NET_DISK_POSIX_H
#define CAPKV_NET_DISK_POSIX_H

#include "base/err.h"
#include "storage/disk.h"

#define DISK_POSIX_PATH_BYTES_MAX 4096

/* Initializes *d (caller-owned) on directory dir (borrowed; copied), creating it (one
 * level) if missing. ERR_IO with path and strerror in msg on failure. */
int disk_posix_init(struct disk *d, const char *dir, struct errmsg *msg);
/* Closes the directory and frees the state. Every file must have been closed. */
void disk_posix_deinit(struct disk *d);

#endif
