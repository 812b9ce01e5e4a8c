/*
 * Snapshots (snapshot.h): "snap-<start lsn, 16 lowercase hex>.snap", written first as
 * "snap-<start lsn>.tmp". All integers little-endian.
 *
 * Header, at offset 0 (SNAPSHOT_HEADER_BYTES = 32):
 *   offset  size  field
 *        0     8  magic "CAPKVSNP"
 *        8     4  format version (1)
 *       12     4  reserved, 0
 *       16     8  start lsn (equals the lsn in the file name)
 *       24     4  reserved, 0
 *       28     4  CRC-32C of bytes 0..27
 * Entries, back to back from offset 32:
 *        0     4  entry bytes n (<= SNAPSHOT_ENTRY_BYTES_MAX; never 0xFFFFFFFF)
 *        4     4  CRC-32C of bytes 0..3 of this entry followed by the n entry bytes
 *        8     n  entry
 * Trailer, the last 20 bytes of the file (SNAPSHOT_TRAILER_BYTES):
 *        0     4  0xFFFFFFFF (marks the trailer)
 *        4     4  reserved, 0
 *        8     8  entry count
 *       16     4  CRC-32C of every byte of the file before this field
 *
 * Invariants: a .snap file is only ever produced by renaming a .tmp file that was complete
 * and synced, so a .snap without a trailer is not a snapshot (skipped, an older one is
 * used); a .snap with a trailer that fails any check is ERR_CORRUPT naming the offset.
 * Writes go through one SNAPSHOT_BUFFER_BYTES buffer; reads through another.
 */
#include "storage/snapshot.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/util.h"
#include "base/buf.h"
#include "base/crc32c.h"

#define SNAPSHOT_HEADER_BYTES 32u
#define SNAPSHOT_ENTRY_HEADER_BYTES 8u
#define SNAPSHOT_TRAILER_BYTES 20u
#define SNAPSHOT_TRAILER_MARKER 0xFFFFFFFFu
#define SNAPSHOT_FORMAT_VERSION 1u
#define SNAPSHOT_MAGIC "CAPKVSNP"
#define SNAPSHOT_BUFFER_BYTES 65536u
#define SNAPSHOT_NAME_BYTES 48 /* prefix (at most SNAPSHOT_PREFIX_BYTES_MAX) "-" 16 hex ".snap" */
#define SNAPSHOT_PREFIX_BYTES_MAX 16
#define SNAPSHOT_DEFAULT_PREFIX "snap"
#define SNAPSHOT_ANY_ID UINT64_MAX /* snapshot_load_named: do not check the header's id */

STATIC_ASSERT(sizeof(SNAPSHOT_MAGIC) - 1 == 8, "magic is 8 bytes");
STATIC_ASSERT(SNAPSHOT_ENTRY_BYTES_MAX < SNAPSHOT_TRAILER_MARKER, "lengths never look like "
                                                                  "the trailer marker");

struct snapshot_writer {
    struct disk *disk;
    struct disk_file *file;
    char prefix[SNAPSHOT_PREFIX_BYTES_MAX + 1];
    uint64_t start_lsn; /* or the id of a named file */
    bool sealed;        /* trailer written: only commit or abort remain */
    char tmp_name[SNAPSHOT_NAME_BYTES];
    uint8_t *buffer;
    size_t buffered;
    uint64_t offset; /* bytes written to the file */
    uint32_t crc;    /* of every byte put so far */
    uint64_t entry_count;
    int failed;
};

static void snapshot_name_as(const char *prefix, uint64_t lsn, const char *suffix,
                             char name[SNAPSHOT_NAME_BYTES]) {
    snprintf(name, SNAPSHOT_NAME_BYTES, "%s-%016llx.%s", prefix, (unsigned long long)lsn, suffix);
}

static void snapshot_name(uint64_t lsn, const char *suffix, char name[SNAPSHOT_NAME_BYTES]) {
    snapshot_name_as(SNAPSHOT_DEFAULT_PREFIX, lsn, suffix, name);
}

/* Parses "<prefix>-<16 lowercase hex>.<suffix>". */
static bool snapshot_parse_name_as(const char *prefix, const char *name, const char *suffix,
                                   uint64_t *lsn) {
    size_t p = strlen(prefix), suffix_len = strlen(suffix);
    if (strncmp(name, prefix, p) != 0 || name[p] != '-') return false;
    if (strlen(name) != p + 18 + suffix_len) return false;
    if (name[p + 17] != '.' || strcmp(name + p + 18, suffix) != 0) return false;
    return util_parse_hex64(name + p + 1, 16, lsn);
}

static bool snapshot_parse_name(const char *name, const char *suffix, uint64_t *lsn) {
    return snapshot_parse_name_as(SNAPSHOT_DEFAULT_PREFIX, name, suffix, lsn);
}

static int snapshot_corrupt(struct errmsg *msg, const char *name, uint64_t offset,
                            const char *why) {
    return errmsg_set(msg, ERR_CORRUPT,
                      "%s: corrupt snapshot at byte offset %llu (%s); refusing to start — move "
                      "the file away or restore from a replica",
                      name, (unsigned long long)offset, why);
}

/* ---- writing ------------------------------------------------------------------------ */

static int snapshot_writer_drain(struct snapshot_writer *w, struct errmsg *msg) {
    if (w->buffered == 0) return 0;
    int rc = w->disk->write(w->disk, w->file, w->offset, w->buffer, w->buffered, msg);
    if (rc != 0) return rc;
    w->offset += w->buffered;
    w->buffered = 0;
    return 0;
}

/* Appends bytes to the file through the buffer, extending the running CRC. */
static int snapshot_writer_put(struct snapshot_writer *w, const void *data, size_t bytes,
                               struct errmsg *msg) {
    w->crc = crc32c_extend(w->crc, data, bytes);
    if (w->buffered + bytes > SNAPSHOT_BUFFER_BYTES) {
        int rc = snapshot_writer_drain(w, msg);
        if (rc != 0) return rc;
    }
    if (bytes >= SNAPSHOT_BUFFER_BYTES) {
        int rc = w->disk->write(w->disk, w->file, w->offset, data, bytes, msg);
        if (rc == 0) w->offset += bytes;
        return rc;
    }
    memcpy(w->buffer + w->buffered, data, bytes);
    w->buffered += bytes;
    ASSERT(w->buffered <= SNAPSHOT_BUFFER_BYTES);
    return 0;
}

static void snapshot_writer_free(struct snapshot_writer *w, bool remove_tmp) {
    if (w->file != NULL) w->disk->close(w->disk, w->file);
    if (remove_tmp) w->disk->remove(w->disk, w->tmp_name, NULL);
    free(w->buffer);
    free(w);
}

int snapshot_writer_open(struct disk *disk, uint64_t start_lsn, struct snapshot_writer **out,
                         struct errmsg *msg) {
    return snapshot_writer_open_as(disk, SNAPSHOT_DEFAULT_PREFIX, start_lsn, out, msg);
}

int snapshot_writer_open_as(struct disk *disk, const char *prefix, uint64_t start_lsn,
                            struct snapshot_writer **out, struct errmsg *msg) {
    ASSERT(disk != NULL);
    ASSERT(out != NULL);
    ASSERT(start_lsn > 0); /* 0 means "no snapshot" to snapshot_load */
    ASSERT(strlen(prefix) >= 1 && strlen(prefix) <= SNAPSHOT_PREFIX_BYTES_MAX);
    *out = NULL;
    struct snapshot_writer *w = base_calloc(1, sizeof(*w));
    w->disk = disk;
    snprintf(w->prefix, sizeof(w->prefix), "%s", prefix);
    w->start_lsn = start_lsn;
    w->buffer = base_malloc(SNAPSHOT_BUFFER_BYTES);
    snapshot_name_as(prefix, start_lsn, "tmp", w->tmp_name);
    int rc = disk->open(disk, w->tmp_name, DISK_OPEN_WRITE | DISK_OPEN_CREATE, &w->file, msg);
    if (rc == 0) rc = disk->truncate(disk, w->file, 0, msg);
    uint8_t header[SNAPSHOT_HEADER_BYTES] = {0};
    memcpy(header, SNAPSHOT_MAGIC, 8);
    base_store_u32le(header + 8, SNAPSHOT_FORMAT_VERSION);
    base_store_u64le(header + 16, start_lsn);
    base_store_u32le(header + 28, crc32c_extend(0, header, 28));
    if (rc == 0) rc = snapshot_writer_put(w, header, sizeof(header), msg);
    if (rc != 0) {
        snapshot_writer_free(w, w->file != NULL);
        return rc;
    }
    *out = w;
    return 0;
}

int snapshot_writer_add(struct snapshot_writer *w, const uint8_t *entry, size_t bytes,
                        struct errmsg *msg) {
    ASSERT(w != NULL && !w->sealed);
    ASSERT(entry != NULL || bytes == 0);
    if (w->failed != 0) return errmsg_set(msg, w->failed, "snapshot writer failed earlier");
    if (bytes > SNAPSHOT_ENTRY_BYTES_MAX) {
        return errmsg_set(msg, ERR_LIMIT, "snapshot entry of %zu bytes (max %llu)", bytes,
                          SNAPSHOT_ENTRY_BYTES_MAX);
    }
    uint8_t head[SNAPSHOT_ENTRY_HEADER_BYTES];
    base_store_u32le(head, (uint32_t)bytes);
    uint32_t crc = crc32c_extend(0, head, 4);
    base_store_u32le(head + 4, crc32c_extend(crc, entry, bytes));
    int rc = snapshot_writer_put(w, head, sizeof(head), msg);
    if (rc == 0) rc = snapshot_writer_put(w, entry, bytes, msg);
    if (rc != 0) {
        w->failed = rc;
        return rc;
    }
    w->entry_count++;
    return 0;
}

struct snapshot_names {
    struct disk *disk;
    uint64_t *lsns; /* complete snapshots found */
    size_t count;
    bool too_many;
    bool remove_tmp;       /* remove every .tmp file seen */
    uint64_t remove_below; /* remove .snap files with a smaller lsn (0: none) */
};

static void snapshot_names_one(void *ctx, const char *name) {
    struct snapshot_names *n = ctx;
    uint64_t lsn;
    if (snapshot_parse_name(name, "tmp", &lsn)) {
        if (n->remove_tmp) n->disk->remove(n->disk, name, NULL);
        return;
    }
    if (!snapshot_parse_name(name, "snap", &lsn)) return;
    if (lsn < n->remove_below) {
        n->disk->remove(n->disk, name, NULL);
        return;
    }
    if (n->lsns == NULL) return;
    if (n->count == SNAPSHOT_COUNT_MAX) {
        n->too_many = true;
        return;
    }
    n->lsns[n->count++] = lsn;
}

int snapshot_writer_seal(struct snapshot_writer *w, struct disk_file **file, struct errmsg *msg) {
    ASSERT(w != NULL && !w->sealed);
    int rc = w->failed;
    if (rc != 0) return errmsg_set(msg, rc, "snapshot writer failed earlier");
    uint8_t trailer[SNAPSHOT_TRAILER_BYTES] = {0};
    base_store_u32le(trailer, SNAPSHOT_TRAILER_MARKER);
    base_store_u64le(trailer + 8, w->entry_count);
    base_store_u32le(trailer + 16, crc32c_extend(w->crc, trailer, 16));
    rc = snapshot_writer_put(w, trailer, sizeof(trailer), msg);
    if (rc == 0) rc = snapshot_writer_drain(w, msg);
    if (rc != 0) {
        w->failed = rc;
        return rc;
    }
    w->sealed = true;
    *file = w->file;
    return 0;
}

struct disk_file *snapshot_writer_file(const struct snapshot_writer *w, uint64_t *written) {
    *written = w->offset;
    return w->file;
}

int snapshot_writer_place(struct snapshot_writer *w, struct errmsg *msg) {
    ASSERT(w != NULL && w->sealed);
    struct disk *d = w->disk;
    char name[SNAPSHOT_NAME_BYTES];
    snapshot_name_as(w->prefix, w->start_lsn, "snap", name);
    d->close(d, w->file);
    w->file = NULL;
    int rc = d->rename(d, w->tmp_name, name, msg);
    snapshot_writer_free(w, rc != 0);
    return rc;
}

int snapshot_writer_commit(struct snapshot_writer *w, struct errmsg *msg) {
    struct disk *d = w->disk;
    int rc = snapshot_writer_place(w, msg);
    return rc != 0 ? rc : d->sync_dir(d, msg);
}

void snapshot_remove_older(struct disk *disk, uint64_t start_lsn) {
    struct snapshot_names names = {.disk = disk, .remove_tmp = true, .remove_below = start_lsn};
    disk->list(disk, snapshot_names_one, &names, NULL);
}

int snapshot_writer_finish(struct snapshot_writer *w, struct errmsg *msg) {
    ASSERT(w != NULL);
    struct disk *d = w->disk;
    uint64_t start_lsn = w->start_lsn;
    struct disk_file *file = NULL;
    int rc = snapshot_writer_seal(w, &file, msg);
    if (rc == 0) rc = d->sync(d, file, msg);
    if (rc != 0) {
        snapshot_writer_free(w, true);
        return rc;
    }
    rc = snapshot_writer_commit(w, msg);
    if (rc != 0) return rc;
    /* Older snapshots and leftovers are garbage now; failing to remove them is harmless. */
    snapshot_remove_older(d, start_lsn);
    d->sync_dir(d, NULL);
    return 0;
}

void snapshot_writer_abort(struct snapshot_writer *w) {
    if (w == NULL) return;
    snapshot_writer_free(w, true);
}

/* ---- loading ------------------------------------------------------------------------ */

struct snapshot_reader {
    struct disk *disk;
    struct disk_file *file;
    const char *name;
    uint64_t size;
    uint64_t offset; /* file offset of the next byte handed out */
    uint8_t *buffer;
    size_t pos;
    size_t len;
    uint32_t crc; /* of every byte handed out */
};

/* Reads exactly bytes at r->offset (the caller checked they are inside the file). */
static int snapshot_reader_get(struct snapshot_reader *r, void *out, size_t bytes,
                               struct errmsg *msg) {
    uint8_t *dst = out;
    size_t done = 0;
    while (done < bytes) {
        if (r->pos == r->len) {
            uint64_t at = r->offset + done;
            size_t got = 0;
            int rc =
                r->disk->read(r->disk, r->file, at, r->buffer, SNAPSHOT_BUFFER_BYTES, &got, msg);
            if (rc != 0) return rc;
            if (got == 0) {
                return errmsg_set(msg, ERR_IO, "%s: unexpected end of file at byte offset %llu",
                                  r->name, (unsigned long long)at);
            }
            r->pos = 0;
            r->len = got;
        }
        size_t n = r->len - r->pos < bytes - done ? r->len - r->pos : bytes - done;
        memcpy(dst + done, r->buffer + r->pos, n);
        r->pos += n;
        done += n;
    }
    r->crc = crc32c_extend(r->crc, out, bytes);
    r->offset += bytes;
    return 0;
}

static int snapshot_load_header(struct snapshot_reader *r, uint64_t name_lsn, struct errmsg *msg) {
    uint8_t h[SNAPSHOT_HEADER_BYTES];
    int rc = snapshot_reader_get(r, h, sizeof(h), msg);
    if (rc != 0) return rc;
    if (memcmp(h, SNAPSHOT_MAGIC, 8) != 0) return snapshot_corrupt(msg, r->name, 0, "bad magic");
    if (crc32c_extend(0, h, 28) != base_load_u32le(h + 28)) {
        return snapshot_corrupt(msg, r->name, 28, "header crc mismatch");
    }
    uint32_t version = base_load_u32le(h + 8);
    if (version != SNAPSHOT_FORMAT_VERSION) {
        return errmsg_set(msg, ERR_VERSION, "%s: format version %u, this build reads %u", r->name,
                          version, SNAPSHOT_FORMAT_VERSION);
    }
    if (name_lsn != SNAPSHOT_ANY_ID && base_load_u64le(h + 16) != name_lsn) {
        return snapshot_corrupt(msg, r->name, 16, "start lsn differs from name");
    }
    return 0;
}

static int snapshot_load_entries(struct snapshot_reader *r, snapshot_entry_fn *fn, void *ctx,
                                 uint64_t *count, struct errmsg *msg) {
    uint64_t end = r->size - SNAPSHOT_TRAILER_BYTES;
    struct buf entry;
    buf_init(&entry);
    int rc = 0;
    *count = 0;
    while (rc == 0 && r->offset < end) {
        uint64_t at = r->offset;
        uint8_t head[SNAPSHOT_ENTRY_HEADER_BYTES];
        if (end - at < sizeof(head)) {
            rc = snapshot_corrupt(msg, r->name, at, "truncated entry header");
            break;
        }
        rc = snapshot_reader_get(r, head, sizeof(head), msg);
        if (rc != 0) break;
        uint64_t n = base_load_u32le(head);
        if (n > SNAPSHOT_ENTRY_BYTES_MAX || n > end - r->offset) {
            rc = snapshot_corrupt(msg, r->name, at, "impossible length");
            break;
        }
        buf_clear(&entry);
        buf_reserve(&entry, (size_t)n);
        rc = snapshot_reader_get(r, entry.data, (size_t)n, msg);
        if (rc != 0) break;
        uint32_t crc = crc32c_extend(crc32c_extend(0, head, 4), entry.data, (size_t)n);
        if (crc != base_load_u32le(head + 4)) {
            rc = snapshot_corrupt(msg, r->name, at, "crc mismatch");
            break;
        }
        if (fn != NULL) rc = fn(ctx, entry.data, (size_t)n);
        (*count)++;
    }
    buf_deinit(&entry);
    ASSERT(rc != 0 || r->offset == end);
    return rc;
}

static int snapshot_load_trailer(struct snapshot_reader *r, uint64_t count, struct errmsg *msg) {
    uint64_t at = r->offset;
    uint8_t t[SNAPSHOT_TRAILER_BYTES];
    int rc = snapshot_reader_get(r, t, 16, msg);
    uint32_t crc = r->crc;
    if (rc == 0) rc = snapshot_reader_get(r, t + 16, 4, msg);
    if (rc != 0) return rc;
    ASSERT(base_load_u32le(t) == SNAPSHOT_TRAILER_MARKER); /* checked before loading */
    if (base_load_u64le(t + 8) != count) {
        char text[80];
        snprintf(text, sizeof(text), "trailer counts %llu entries, file holds %llu",
                 (unsigned long long)base_load_u64le(t + 8), (unsigned long long)count);
        return snapshot_corrupt(msg, r->name, at + 8, text);
    }
    if (crc != base_load_u32le(t + 16)) {
        return snapshot_corrupt(msg, r->name, at + 16, "file crc mismatch");
    }
    return 0;
}

/* Whether the file ends with a trailer, i.e. was written to completion. */
static int snapshot_load_complete(struct snapshot_reader *r, bool *complete, struct errmsg *msg) {
    *complete = false;
    if (r->size < SNAPSHOT_HEADER_BYTES + SNAPSHOT_TRAILER_BYTES) return 0;
    uint8_t t[SNAPSHOT_TRAILER_BYTES];
    size_t got = 0;
    uint64_t at = r->size - SNAPSHOT_TRAILER_BYTES;
    int rc = r->disk->read(r->disk, r->file, at, t, sizeof(t), &got, msg);
    if (rc != 0) return rc;
    *complete = got == sizeof(t) && base_load_u32le(t) == SNAPSHOT_TRAILER_MARKER &&
                base_load_u32le(t + 4) == 0;
    return 0;
}

/* Loads file name (start lsn or id lsn) if complete (*loaded); a damaged complete one is
 * ERR_CORRUPT. */
static int snapshot_load_named(struct disk *disk, const char *name, uint64_t lsn,
                               snapshot_entry_fn *fn, void *ctx, bool *loaded, struct errmsg *msg) {
    struct snapshot_reader r = {.disk = disk, .name = name};
    *loaded = false;
    int rc = disk->open(disk, name, DISK_OPEN_READ, &r.file, msg);
    if (rc != 0) return rc;
    bool complete = false;
    rc = disk->size(disk, r.file, &r.size, msg);
    if (rc == 0) rc = snapshot_load_complete(&r, &complete, msg);
    if (rc == 0 && complete) {
        r.buffer = base_malloc(SNAPSHOT_BUFFER_BYTES);
        uint64_t count = 0;
        rc = snapshot_load_header(&r, lsn, msg);
        if (rc == 0) rc = snapshot_load_entries(&r, fn, ctx, &count, msg);
        if (rc == 0) rc = snapshot_load_trailer(&r, count, msg);
        if (rc == 0) ASSERT(r.offset == r.size);
        *loaded = rc == 0;
        free(r.buffer);
    }
    disk->close(disk, r.file);
    return rc;
}

static int snapshot_load_one(struct disk *disk, uint64_t lsn, snapshot_entry_fn *fn, void *ctx,
                             bool *loaded, struct errmsg *msg) {
    char name[SNAPSHOT_NAME_BYTES];
    snapshot_name(lsn, "snap", name);
    return snapshot_load_named(disk, name, lsn, fn, ctx, loaded, msg);
}

int snapshot_load_as(struct disk *disk, const char *prefix, uint64_t id, snapshot_entry_fn *fn,
                     void *ctx, struct errmsg *msg) {
    ASSERT(strlen(prefix) >= 1 && strlen(prefix) <= SNAPSHOT_PREFIX_BYTES_MAX);
    char name[SNAPSHOT_NAME_BYTES];
    snapshot_name_as(prefix, id, "snap", name);
    (void)id; /* the header's id is not checked: see snapshot.h */
    return snapshot_load_file(disk, name, fn, ctx, msg);
}

int snapshot_load_file(struct disk *disk, const char *name, snapshot_entry_fn *fn, void *ctx,
                       struct errmsg *msg) {
    bool loaded = false;
    int rc = snapshot_load_named(disk, name, SNAPSHOT_ANY_ID, fn, ctx, &loaded, msg);
    if (rc == 0 && !loaded) rc = snapshot_corrupt(msg, name, 0, "the file ends before its trailer");
    return rc;
}

struct snapshot_sweep {
    struct disk *disk;
    const char *prefix;
    uint64_t keep;
    bool removed;
    snapshot_name_fn *fn; /* NULL: remove them */
    void *ctx;
};

static void snapshot_sweep_one(void *ctx, const char *name) {
    struct snapshot_sweep *s = ctx;
    uint64_t id;
    bool tmp = snapshot_parse_name_as(s->prefix, name, "tmp", &id);
    if (!tmp && (!snapshot_parse_name_as(s->prefix, name, "snap", &id) || id == s->keep)) return;
    if (s->fn != NULL) {
        s->fn(s->ctx, name);
        return;
    }
    s->disk->remove(s->disk, name, NULL);
    s->removed = true;
}

void snapshot_remove_as(struct disk *disk, const char *prefix, uint64_t keep) {
    struct snapshot_sweep s = {.disk = disk, .prefix = prefix, .keep = keep};
    if (disk->list(disk, snapshot_sweep_one, &s, NULL) == 0 && s.removed)
        disk->sync_dir(disk, NULL);
}

void snapshot_garbage_as(struct disk *disk, const char *prefix, uint64_t keep, snapshot_name_fn *fn,
                         void *ctx) {
    struct snapshot_sweep s = {.disk = disk, .prefix = prefix, .keep = keep, .fn = fn, .ctx = ctx};
    disk->list(disk, snapshot_sweep_one, &s, NULL);
}

static int snapshot_cmp_desc(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;
    return x > y ? -1 : (x < y ? 1 : 0);
}

int snapshot_load(struct disk *disk, snapshot_entry_fn *fn, void *ctx, uint64_t *start_lsn,
                  struct errmsg *msg) {
    ASSERT(disk != NULL);
    ASSERT(start_lsn != NULL);
    *start_lsn = 0;
    struct snapshot_names names = {.disk = disk, .remove_tmp = true};
    names.lsns = base_malloc(SNAPSHOT_COUNT_MAX * sizeof(uint64_t));
    int rc = disk->list(disk, snapshot_names_one, &names, msg);
    if (rc == 0 && names.too_many) {
        rc = errmsg_set(msg, ERR_LIMIT, "more than %d snapshot files", SNAPSHOT_COUNT_MAX);
    }
    if (rc == 0) qsort(names.lsns, names.count, sizeof(uint64_t), snapshot_cmp_desc);
    /* Newest first; one without its trailer was never finished and is skipped. */
    for (size_t i = 0; rc == 0 && i < names.count; i++) {
        bool loaded = false;
        rc = snapshot_load_one(disk, names.lsns[i], fn, ctx, &loaded, msg);
        if (rc == 0 && loaded) {
            *start_lsn = names.lsns[i];
            break;
        }
    }
    free(names.lsns);
    return rc;
}
