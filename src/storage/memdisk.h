/*
 * An in-memory struct disk for unit tests, fuzz targets and the deterministic simulator
 * (SQLite's test VFS idea). Files live in memory; each keeps the image its last sync made
 * durable, and the directory keeps the entries its last sync_dir (or rename) made durable.
 * memdisk_crash() throws away everything not covered by a sync, optionally tearing the
 * last unsynced write to a prefix chosen by the caller's seed. A capacity limit makes
 * allocate and write fail with ERR_NOSPACE; memdisk_fail_after injects one error.
 *
 * No globals, no system calls, no clock: the same calls give the same files.
 */
#ifndef CAPKV_STORAGE_MEMDISK_H
#define CAPKV_STORAGE_MEMDISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/disk.h"

#define MEMDISK_FILE_COUNT_MAX 256 /* directory entries, durable or not */
#define MEMDISK_CAPACITY_UNLIMITED UINT64_MAX

/* Initializes *d as an empty memdisk with unlimited capacity. d is caller-owned storage;
 * the memdisk state is allocated and freed by memdisk_deinit. */
void memdisk_init(struct disk *d);
/* Frees every file. Every handle must have been closed. */
void memdisk_deinit(struct disk *d);

/* Limits the sum of all file sizes; allocate/write beyond it return ERR_NOSPACE. */
void memdisk_set_capacity(struct disk *d, uint64_t bytes);
uint64_t memdisk_used_bytes(const struct disk *d);

/* Simulates power loss: every file returns to its last synced image, the directory to its
 * last durable state. With tear, the most recent write, if not synced, survives as a
 * prefix of seed % its length bytes. Handles opened before stay valid only for close;
 * any other call on them returns ERR_IO. */
void memdisk_crash(struct disk *d, bool tear, uint64_t seed);

/* The call_count-th next faultable call (open, read, write, allocate, size, truncate,
 * sync, rename, remove, list, sync_dir), counting from 1, fails once with code. */
void memdisk_fail_after(struct disk *d, uint64_t call_count, int code);

/* Test helpers that bypass handles. memdisk_peek returns the file's current content,
 * borrowed until the next call on d; ERR_NOTFOUND if missing. memdisk_poke creates or
 * replaces a file with a copy of data (borrowed), durably (as if synced, dir synced). */
int memdisk_peek(struct disk *d, const char *name, const uint8_t **data, uint64_t *bytes);
int memdisk_poke(struct disk *d, const char *name, const uint8_t *data, uint64_t bytes);
bool memdisk_exists(struct disk *d, const char *name);

#endif
