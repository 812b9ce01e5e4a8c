/*
 * The write-ahead log (wal.h). Segment files "wal-<first lsn, 16 lowercase hex>.log", each
 * preallocated to options.segment_bytes; all integers little-endian.
 *
 * Segment header, at offset 0 (WAL_SEGMENT_HEADER_BYTES = 32):
 *   offset  size  field
 *        0     8  magic "CAPKVWAL"
 *        8     4  format version (1)
 *       12     4  reserved, 0
 *       16     8  first lsn (equals the lsn in the file name)
 *       24     4  reserved, 0
 *       28     4  CRC-32C of bytes 0..27
 *
 * Record, from offset 32 on, each starting at a multiple of 8 (WAL_RECORD_HEADER_BYTES = 16):
 *   offset  size  field
 *        0     4  CRC-32C of bytes 4..15 of this header followed by the payload
 *        4     4  payload bytes n (<= WAL_RECORD_BYTES_MAX)
 *        8     8  lsn (first lsn of the segment, then +1 per record, no gaps)
 *       16     n  payload
 *     16+n   0-7  zero padding to the next multiple of 8 (not covered by the CRC)
 * A record header of 16 zero bytes marks the end of the data; the rest of the segment
 * (preallocated) is zero.
 *
 * Invariants: records not yet durable are all in the current (newest) segment, because
 * rotation flushes and syncs the old segment before switching; durable_lsn <= flushed_lsn
 * <= last_lsn; the bytes written to the current segment plus the pending buffer never pass
 * its preallocated capacity, so a flush never needs new space.
 * Recovery (wal_open): a bad record in the newest segment with no valid record after it is
 * a torn tail, zeroed with a warning; any other damage is ERR_CORRUPT. See docs/formats.md.
 */
#include "storage/wal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/util.h"
#include "base/buf.h"
#include "base/crc32c.h"

#define WAL_SEGMENT_HEADER_BYTES 32u
#define WAL_RECORD_HEADER_BYTES 16u
#define WAL_RECORD_ALIGN_BYTES 8u
#define WAL_FORMAT_VERSION 1u
#define WAL_MAGIC "CAPKVWAL"
#define WAL_ZERO_CHUNK_BYTES 65536u
#define WAL_WARN_BYTES_MAX 512

STATIC_ASSERT(sizeof(WAL_MAGIC) - 1 == 8, "magic is 8 bytes");
STATIC_ASSERT(WAL_SEGMENT_HEADER_BYTES % WAL_RECORD_ALIGN_BYTES == 0, "records start aligned");
STATIC_ASSERT(WAL_SEGMENT_HEADER_BYTES + WAL_RECORD_HEADER_BYTES + WAL_RECORD_BYTES_MAX +
                      WAL_RECORD_ALIGN_BYTES <=
                  WAL_SEGMENT_BYTES_MAX,
              "a maximal record fits in a segment of the maximal size");
STATIC_ASSERT(WAL_RECORD_BYTES_MAX < UINT32_MAX, "payload length is a u32");
STATIC_ASSERT(WAL_SEGMENT_BYTES_MIN >= WAL_SEGMENT_HEADER_BYTES * 2, "room for records");

struct wal_segment {
    uint64_t first_lsn;
    uint64_t last_lsn;   /* first_lsn - 1 while empty */
    uint64_t used_bytes; /* header plus records; for the current segment see wal_used_bytes */
};

struct wal {
    struct disk *disk;
    struct wal_options options;
    wal_warn_fn *warn;
    void *ctx;
    struct wal_segment *segments; /* oldest first; the last one is the current segment */
    size_t segment_count;
    size_t segment_cap;
    struct disk_file *file; /* the current segment */
    uint64_t capacity;      /* the current segment's preallocated size */
    bool zeroed;            /* its zeros are written (disk.h create_zeroed) */
    uint64_t write_offset;  /* bytes of the current segment written to the file */
    struct buf pending;     /* records appended, not yet written; they start at write_offset */
    size_t reserved_payload_bytes;
    bool reserved;
    uint64_t last_lsn;
    uint64_t flushed_lsn;
    uint64_t durable_lsn;
    bool sync_inflight;
    uint64_t sync_lsn;
    struct disk_file *sync_file; /* borrowed by the syncing thread until wal_sync_end */
    bool sync_file_retired;      /* rotated away: wal_sync_end closes it */
    int failed;                  /* 0, or the error every later call returns */
};

/* What scanning one segment found. */
struct wal_scan {
    const char *name;
    const uint8_t *data;
    uint64_t size;
    bool newest;
    uint64_t expected_lsn; /* the lsn the next record must carry */
    uint64_t end;          /* offset just past the last valid record */
};

static uint64_t wal_record_bytes(uint64_t payload_bytes) {
    uint64_t raw = WAL_RECORD_HEADER_BYTES + payload_bytes;
    return (raw + WAL_RECORD_ALIGN_BYTES - 1) & ~(uint64_t)(WAL_RECORD_ALIGN_BYTES - 1);
}

static void wal_segment_name(uint64_t first_lsn, char name[WAL_NAME_BYTES]) {
    snprintf(name, WAL_NAME_BYTES, "wal-%016llx.log", (unsigned long long)first_lsn);
}

/* Parses "wal-<16 lowercase hex>.log"; false for any other name. */
static bool wal_segment_parse_name(const char *name, uint64_t *first_lsn) {
    if (strncmp(name, "wal-", 4) != 0 || strlen(name) != 24) return false;
    if (strcmp(name + 20, ".log") != 0) return false;
    return util_parse_hex64(name + 4, 16, first_lsn);
}

static int wal_corrupt(struct errmsg *msg, const char *name, uint64_t offset, const char *what,
                       const char *why) {
    return errmsg_set(msg, ERR_CORRUPT,
                      "%s: corrupt %s at byte offset %llu (%s); refusing to start — move the "
                      "file away or restore from a replica",
                      name, what, (unsigned long long)offset, why);
}

static void wal_warnf(const struct wal *wal, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void wal_warnf(const struct wal *wal, const char *fmt, ...) {
    if (wal->warn == NULL) return;
    char text[WAL_WARN_BYTES_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    wal->warn(wal->ctx, text);
}

static void wal_encode_segment_header(uint8_t out[WAL_SEGMENT_HEADER_BYTES], uint64_t first) {
    memset(out, 0, WAL_SEGMENT_HEADER_BYTES);
    memcpy(out, WAL_MAGIC, 8);
    base_store_u32le(out + 8, WAL_FORMAT_VERSION);
    base_store_u64le(out + 16, first);
    base_store_u32le(out + 28, crc32c_extend(0, out, 28));
}

/* Checks a record's frame at off: NULL when its length fits and its CRC matches (then
 * *lsn and *payload_bytes are set), else the reason. */
static const char *wal_record_check(const uint8_t *data, uint64_t size, uint64_t off, uint64_t *lsn,
                                    uint64_t *payload_bytes) {
    ASSERT(off % WAL_RECORD_ALIGN_BYTES == 0);
    ASSERT(off <= size);
    if (size - off < WAL_RECORD_HEADER_BYTES) return "truncated record header";
    const uint8_t *p = data + off;
    uint64_t n = base_load_u32le(p + 4);
    if (n > WAL_RECORD_BYTES_MAX || wal_record_bytes(n) > size - off) return "impossible length";
    uint32_t crc = crc32c_extend(0, p + 4, WAL_RECORD_HEADER_BYTES - 4);
    crc = crc32c_extend(crc, p + WAL_RECORD_HEADER_BYTES, (size_t)n);
    if (crc != base_load_u32le(p)) return "crc mismatch";
    *lsn = base_load_u64le(p + 8);
    *payload_bytes = n;
    return NULL;
}

static bool wal_is_zero(const uint8_t *p, uint64_t bytes) {
    for (uint64_t i = 0; i < bytes; i++) {
        if (p[i] != 0) return false;
    }
    return true;
}

/* Whether a record that could follow lsn expected-1 (lsn >= expected, valid CRC) starts at
 * an aligned offset after off. The lsn bound (each record takes >= 16 bytes) is only a
 * quick filter that makes random bytes rarely reach the CRC. */
static bool wal_scan_valid_after(const struct wal_scan *s, uint64_t off) {
    for (uint64_t p = off + WAL_RECORD_ALIGN_BYTES; p + WAL_RECORD_HEADER_BYTES <= s->size;
         p += WAL_RECORD_ALIGN_BYTES) {
        uint64_t lsn = base_load_u64le(s->data + p + 8);
        if (lsn < s->expected_lsn) continue;
        if (lsn - s->expected_lsn > (s->size - p) / WAL_RECORD_HEADER_BYTES) continue;
        uint64_t got_lsn;
        uint64_t n;
        if (wal_record_check(s->data, s->size, p, &got_lsn, &n) == NULL) return true;
    }
    return false;
}

static int wal_segment_zero(struct wal *wal, struct disk_file *f, uint64_t from, uint64_t to,
                            struct errmsg *msg) {
    uint8_t *zeros = base_calloc(1, WAL_ZERO_CHUNK_BYTES);
    int rc = 0;
    for (uint64_t off = from; off < to && rc == 0;) {
        uint64_t n = to - off < WAL_ZERO_CHUNK_BYTES ? to - off : WAL_ZERO_CHUNK_BYTES;
        rc = wal->disk->write(wal->disk, f, off, zeros, (size_t)n, msg);
        off += n;
    }
    free(zeros);
    if (rc == 0) rc = wal->disk->sync(wal->disk, f, msg);
    return rc;
}

/* A bad record at off: corruption, unless it is the torn tail of the newest segment.
 * zero_gap: the bad bytes are a run of zeros (a write that never reached the disk); valid
 * records after it are later, unsynced writes that the disk persisted out of order, as
 * page-cache writeback may: a torn tail too. Any other damage before a valid record is
 * corruption in the middle. */
static int wal_scan_bad(struct wal *wal, struct wal_scan *s, struct disk_file *f, uint64_t off,
                        const char *why, bool zero_gap, struct errmsg *msg) {
    if (!s->newest || (!zero_gap && wal_scan_valid_after(s, off))) {
        return wal_corrupt(msg, s->name, off, "record", why);
    }
    uint64_t last = s->size;
    while (last > off && s->data[last - 1] == 0) last--;
    wal_warnf(wal,
              "%s: torn record at byte offset %llu (%s) after lsn %llu: cut %llu bytes "
              "and continuing from there",
              s->name, (unsigned long long)off, why, (unsigned long long)(s->expected_lsn - 1),
              (unsigned long long)(last - off));
    s->end = off;
    return wal_segment_zero(wal, f, off, last, msg);
}

static int wal_scan_records(struct wal *wal, struct wal_scan *s, struct disk_file *f,
                            uint64_t from_lsn, const struct wal_open_args *args,
                            struct errmsg *msg) {
    uint64_t off = WAL_SEGMENT_HEADER_BYTES;
    for (;;) {
        uint64_t left = s->size - off;
        uint64_t head = left < WAL_RECORD_HEADER_BYTES ? left : WAL_RECORD_HEADER_BYTES;
        if (wal_is_zero(s->data + off, head)) {
            s->end = off;
            if (wal_is_zero(s->data + off, left)) return 0;
            return wal_scan_bad(wal, s, f, off, "unsynced writes lost, later ones reached the disk",
                                true, msg);
        }
        uint64_t lsn;
        uint64_t n;
        const char *why = wal_record_check(s->data, s->size, off, &lsn, &n);
        if (why != NULL) return wal_scan_bad(wal, s, f, off, why, false, msg);
        if (lsn != s->expected_lsn) {
            char text[64];
            snprintf(text, sizeof(text), "lsn %llu where %llu was due", (unsigned long long)lsn,
                     (unsigned long long)s->expected_lsn);
            return wal_corrupt(msg, s->name, off, "record", text);
        }
        if (lsn >= from_lsn && args->replay != NULL) {
            int rc =
                args->replay(args->ctx, lsn, s->data + off + WAL_RECORD_HEADER_BYTES, (size_t)n);
            if (rc != 0) return rc;
        }
        s->expected_lsn++;
        off += wal_record_bytes(n);
        ASSERT(off <= s->size);
    }
}

/* Checks the segment header; 1 when it is invalid (the caller decides), 0 when valid. */
static int wal_scan_header(const struct wal_scan *s, uint64_t name_lsn, struct errmsg *msg) {
    if (s->size < WAL_SEGMENT_HEADER_BYTES) return 1;
    const uint8_t *h = s->data;
    if (memcmp(h, WAL_MAGIC, 8) != 0) return 1;
    if (crc32c_extend(0, h, 28) != base_load_u32le(h + 28)) return 1;
    uint32_t version = base_load_u32le(h + 8);
    if (version != WAL_FORMAT_VERSION) {
        return errmsg_set(msg, ERR_VERSION, "%s: format version %u, this build reads %u", s->name,
                          version, WAL_FORMAT_VERSION);
    }
    if (base_load_u64le(h + 16) != name_lsn) {
        return wal_corrupt(msg, s->name, 16, "segment header", "first lsn differs from name");
    }
    return 0;
}

static void wal_segments_push(struct wal *wal, uint64_t first_lsn) {
    if (wal->segment_count == wal->segment_cap) {
        wal->segment_cap = wal->segment_cap ? wal->segment_cap * 2 : 8;
        wal->segments = base_realloc(wal->segments, wal->segment_cap * sizeof(*wal->segments));
    }
    struct wal_segment *seg = &wal->segments[wal->segment_count++];
    seg->first_lsn = first_lsn;
    seg->last_lsn = first_lsn - 1;
    seg->used_bytes = WAL_SEGMENT_HEADER_BYTES;
}

static struct wal_segment *wal_current(struct wal *wal) {
    ASSERT(wal->segment_count > 0);
    return &wal->segments[wal->segment_count - 1];
}

/* Creates segment first_lsn preallocated to capacity with its header, and makes its
 * directory entry durable; *zeroed tells whether its zeros are written (disk.h
 * create_zeroed). On error nothing is left behind (best effort). */
static int wal_segment_create(struct wal *wal, uint64_t first_lsn, uint64_t capacity,
                              struct disk_file **out, bool *zeroed, struct errmsg *msg) {
    struct disk *d = wal->disk;
    char name[WAL_NAME_BYTES];
    wal_segment_name(first_lsn, name);
    *out = NULL;
    *zeroed = false;
    struct disk_file *f = NULL;
    int rc;
    if (d->create_zeroed != NULL) {
        rc = d->create_zeroed(d, name, capacity, &f, zeroed, msg);
        if (rc != 0) return rc;
    } else {
        rc = d->open(d, name, DISK_OPEN_WRITE | DISK_OPEN_CREATE, &f, msg);
        if (rc != 0) return rc;
        rc = d->truncate(d, f, 0, msg);
        if (rc == 0) rc = d->allocate(d, f, 0, capacity, msg);
    }
    uint8_t header[WAL_SEGMENT_HEADER_BYTES];
    wal_encode_segment_header(header, first_lsn);
    if (rc == 0) rc = d->write(d, f, 0, header, sizeof(header), msg);
    if (rc == 0) rc = d->sync_dir(d, msg);
    if (rc != 0) {
        d->close(d, f);
        d->remove(d, name, NULL);
        *zeroed = false;
        return rc;
    }
    *out = f;
    return 0;
}

/* Makes f, a new empty segment, the current one. */
static void wal_install(struct wal *wal, struct disk_file *f, uint64_t first_lsn, uint64_t capacity,
                        bool zeroed) {
    ASSERT(buf_pending(&wal->pending) == 0);
    wal->file = f;
    wal->capacity = capacity;
    wal->zeroed = zeroed;
    wal->write_offset = WAL_SEGMENT_HEADER_BYTES;
    wal_segments_push(wal, first_lsn);
}

static uint64_t wal_used_bytes(const struct wal *wal) {
    return wal->write_offset + buf_pending(&wal->pending);
}

/* ---- wal_open ---------------------------------------------------------------------- */

struct wal_open_list {
    struct disk *disk;
    uint64_t *lsns;
    size_t count;
    bool too_many;
};

/* "wal-<16 lowercase hex>.old": a segment wal_retire_one_before retired. */
static bool wal_retired_parse_name(const char *name) {
    uint64_t lsn;
    return strncmp(name, "wal-", 4) == 0 && strlen(name) == 24 &&
           strcmp(name + 20, ".old") == 0 && util_parse_hex64(name + 4, 16, &lsn);
}

static void wal_open_list_one(void *ctx, const char *name) {
    struct wal_open_list *list = ctx;
    uint64_t lsn;
    if (wal_retired_parse_name(name)) { /* a crash came before its removal */
        list->disk->remove(list->disk, name, NULL);
        return;
    }
    if (!wal_segment_parse_name(name, &lsn)) return;
    if (list->count == WAL_SEGMENT_COUNT_MAX) {
        list->too_many = true;
        return;
    }
    list->lsns[list->count++] = lsn;
}

static int wal_open_cmp_lsn(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;
    return x < y ? -1 : (x > y ? 1 : 0);
}

static int wal_open_list(struct wal *wal, struct wal_open_list *list, struct errmsg *msg) {
    list->disk = wal->disk;
    list->lsns = base_malloc(WAL_SEGMENT_COUNT_MAX * sizeof(uint64_t));
    list->count = 0;
    list->too_many = false;
    int rc = wal->disk->list(wal->disk, wal_open_list_one, list, msg);
    if (rc != 0) return rc;
    if (list->too_many) {
        return errmsg_set(msg, ERR_LIMIT, "more than %d wal segment files", WAL_SEGMENT_COUNT_MAX);
    }
    qsort(list->lsns, list->count, sizeof(uint64_t), wal_open_cmp_lsn);
    return 0;
}

/* Segments must continue each other's lsns; a gap is allowed only below from_lsn, whose
 * records the snapshot already holds. The oldest must start at or before from_lsn. */
static int wal_open_check_order(const char *name, uint64_t first, size_t index, uint64_t prev_last,
                                uint64_t from_lsn, struct errmsg *msg) {
    if (index == 0) {
        if (first <= from_lsn) return 0;
        return errmsg_set(msg, ERR_CORRUPT,
                          "%s: log starts at lsn %llu but recovery needs lsn %llu; refusing to "
                          "start — restore the missing segments or from a replica",
                          name, (unsigned long long)first, (unsigned long long)from_lsn);
    }
    if (first == prev_last + 1) return 0;
    if (first > prev_last + 1 && first <= from_lsn) return 0;
    char text[96];
    snprintf(text, sizeof(text), "starts at lsn %llu but the previous segment ends at lsn %llu",
             (unsigned long long)first, (unsigned long long)prev_last);
    return wal_corrupt(msg, name, 16, "segment header", text);
}

static int wal_open_read(struct wal *wal, struct disk_file *f, struct wal_scan *s,
                         struct errmsg *msg) {
    struct disk *d = wal->disk;
    uint64_t size;
    int rc = d->size(d, f, &size, msg);
    if (rc != 0) return rc;
    if (size > WAL_SEGMENT_BYTES_MAX) {
        return wal_corrupt(msg, s->name, WAL_SEGMENT_BYTES_MAX, "segment",
                           "larger than any segment");
    }
    uint8_t *data = base_malloc((unsigned long)size);
    size_t got = 0;
    rc = d->read(d, f, 0, data, (size_t)size, &got, msg);
    if (rc == 0 && got != size) {
        rc = errmsg_set(msg, ERR_IO, "%s: read %zu of %llu bytes", s->name, got,
                        (unsigned long long)size);
    }
    if (rc != 0) {
        free(data);
        return rc;
    }
    s->data = data;
    s->size = size;
    return 0;
}

/* The newest segment's header is missing or torn: empty, unless records follow it. */
static int wal_open_headless(struct wal *wal, struct wal_scan *s, struct errmsg *msg) {
    if (!s->newest) return wal_corrupt(msg, s->name, 0, "segment header", "bad magic or crc");
    uint64_t before = WAL_SEGMENT_HEADER_BYTES - WAL_RECORD_ALIGN_BYTES;
    if (s->size > WAL_SEGMENT_HEADER_BYTES && wal_scan_valid_after(s, before)) {
        return wal_corrupt(msg, s->name, 0, "segment header", "bad magic or crc");
    }
    if (!wal_is_zero(s->data, s->size)) {
        wal_warnf(wal,
                  "%s: torn segment header at byte offset 0: treating the segment as "
                  "empty and rewriting it",
                  s->name);
    }
    s->end = WAL_SEGMENT_HEADER_BYTES;
    return 0;
}

/* Verifies and replays one segment. The newest stays open in wal->file. */
static int wal_open_segment(struct wal *wal, const struct wal_open_args *args, uint64_t first,
                            bool newest, bool *headless, struct errmsg *msg) {
    struct disk *d = wal->disk;
    char name[WAL_NAME_BYTES];
    wal_segment_name(first, name);
    struct disk_file *f = NULL;
    int rc = d->open(d, name, newest ? DISK_OPEN_WRITE : DISK_OPEN_READ, &f, msg);
    if (rc != 0) return rc;
    struct wal_scan s = {.name = name, .newest = newest, .expected_lsn = first};
    uint64_t from_lsn = args->from_lsn ? args->from_lsn : 1;
    uint64_t prev_last = wal->segment_count ? wal_current(wal)->last_lsn : 0;
    rc = wal_open_read(wal, f, &s, msg);
    int header = rc == 0 ? wal_scan_header(&s, first, msg) : rc;
    if (header < 0) rc = header;
    if (rc == 0)
        rc = wal_open_check_order(name, first, wal->segment_count, prev_last, from_lsn, msg);
    *headless = header == 1;
    if (rc == 0 && header == 1) rc = wal_open_headless(wal, &s, msg);
    if (rc == 0 && header == 0) rc = wal_scan_records(wal, &s, f, from_lsn, args, msg);
    free((void *)s.data);
    if (rc == 0) {
        wal_segments_push(wal, first);
        wal_current(wal)->last_lsn = s.expected_lsn - 1;
        wal_current(wal)->used_bytes = s.end;
    }
    if (rc == 0 && newest) {
        wal->file = f;
        wal->capacity = s.size;
        wal->write_offset = s.end;
    } else {
        d->close(d, f);
    }
    return rc;
}

/* Replaces the current segment, which holds no record, with a new one at first_lsn. */
static int wal_open_replace_empty(struct wal *wal, uint64_t first_lsn, struct errmsg *msg) {
    struct wal_segment *cur = wal_current(wal);
    ASSERT(cur->last_lsn + 1 == cur->first_lsn);
    char name[WAL_NAME_BYTES];
    wal_segment_name(cur->first_lsn, name);
    wal->disk->close(wal->disk, wal->file);
    wal->file = NULL;
    wal->segment_count--;
    int rc = 0;
    if (first_lsn != cur->first_lsn) rc = wal->disk->remove(wal->disk, name, msg);
    struct disk_file *f = NULL;
    bool zeroed = false;
    if (rc == 0)
        rc = wal_segment_create(wal, first_lsn, wal->options.segment_bytes, &f, &zeroed, msg);
    if (rc == 0) wal_install(wal, f, first_lsn, wal->options.segment_bytes, zeroed);
    return rc;
}

/* Positions the newest segment for appends: rewrites a missing header, tops up its
 * preallocation, and syncs it so that everything recovered counts as durable. */
static int wal_open_position(struct wal *wal, uint64_t from_lsn, bool headless,
                             struct errmsg *msg) {
    struct disk *d = wal->disk;
    int rc = 0;
    bool zeroed = false;
    if (wal->segment_count == 0) {
        struct disk_file *f = NULL;
        rc = wal_segment_create(wal, from_lsn, wal->options.segment_bytes, &f, &zeroed, msg);
        if (rc != 0) return rc;
        wal_install(wal, f, from_lsn, wal->options.segment_bytes, zeroed);
    } else if (headless) {
        rc = wal_open_replace_empty(wal, wal_current(wal)->first_lsn, msg);
    } else if (wal->capacity < wal->options.segment_bytes) {
        /* Best effort: the size may not have survived a crash. Without it the next reserve
         * rotates or reports the full disk. */
        uint64_t extra = wal->options.segment_bytes - wal->capacity;
        if (d->allocate(d, wal->file, wal->capacity, extra, NULL) == 0) {
            wal->capacity = wal->options.segment_bytes;
        }
    }
    if (rc == 0) rc = d->sync(d, wal->file, msg);
    if (rc != 0) return rc;
    wal->last_lsn = wal_current(wal)->last_lsn;
    if (wal->last_lsn + 1 < from_lsn) {
        /* The snapshot is ahead of the log (its records were never synced): continue the
         * log at from_lsn so that new records are not skipped by the next replay. */
        if (wal->last_lsn < wal_current(wal)->first_lsn) {
            rc = wal_open_replace_empty(wal, from_lsn, msg);
        } else {
            struct disk_file *f = NULL;
            rc = wal_segment_create(wal, from_lsn, wal->options.segment_bytes, &f, &zeroed, msg);
            if (rc != 0) return rc;
            wal->segments[wal->segment_count - 1].used_bytes = wal->write_offset;
            d->close(d, wal->file);
            wal_install(wal, f, from_lsn, wal->options.segment_bytes, zeroed);
        }
        wal->last_lsn = from_lsn - 1;
    }
    wal->flushed_lsn = wal->last_lsn;
    wal->durable_lsn = wal->last_lsn;
    return rc;
}

int wal_open(const struct wal_open_args *args, struct wal **out, struct errmsg *msg) {
    ASSERT(args != NULL);
    ASSERT(args->disk != NULL);
    ASSERT(out != NULL);
    *out = NULL;
    uint64_t seg_bytes = args->options.segment_bytes;
    if (seg_bytes < WAL_SEGMENT_BYTES_MIN || seg_bytes > WAL_SEGMENT_BYTES_MAX) {
        return errmsg_set(msg, ERR_CONFIG, "wal segment size %llu outside [%llu, %llu]",
                          (unsigned long long)seg_bytes, WAL_SEGMENT_BYTES_MIN,
                          WAL_SEGMENT_BYTES_MAX);
    }
    struct wal *wal = base_calloc(1, sizeof(*wal));
    wal->disk = args->disk;
    wal->options = args->options;
    wal->warn = args->warn;
    wal->ctx = args->ctx;
    buf_init(&wal->pending);
    uint64_t from_lsn = args->from_lsn ? args->from_lsn : 1;
    struct wal_open_list list;
    bool headless = false;
    int rc = wal_open_list(wal, &list, msg);
    for (size_t i = 0; rc == 0 && i < list.count; i++) {
        rc = wal_open_segment(wal, args, list.lsns[i], i + 1 == list.count, &headless, msg);
    }
    free(list.lsns);
    if (rc == 0) rc = wal_open_position(wal, from_lsn, headless, msg);
    if (rc != 0) {
        wal_close(wal);
        return rc;
    }
    ASSERT(wal->file != NULL);
    ASSERT(wal->write_offset <= wal->capacity);
    *out = wal;
    return 0;
}

void wal_close(struct wal *wal) {
    if (wal == NULL) return;
    if (wal->file != NULL) wal->disk->close(wal->disk, wal->file);
    if (wal->sync_file != NULL && wal->sync_file_retired) {
        wal->disk->close(wal->disk, wal->sync_file);
    }
    buf_deinit(&wal->pending);
    free(wal->segments);
    free(wal);
}

/* ---- appends, flush, sync ------------------------------------------------------------ */

int wal_flush(struct wal *wal, struct errmsg *msg) {
    ASSERT(wal != NULL);
    if (wal->failed != 0) return errmsg_set(msg, wal->failed, "wal failed earlier");
    size_t bytes = buf_pending(&wal->pending);
    if (bytes == 0) return 0;
    ASSERT(wal->write_offset + bytes <= wal->capacity);
    int rc = wal->disk->write(wal->disk, wal->file, wal->write_offset, buf_head(&wal->pending),
                              bytes, msg);
    if (rc != 0) {
        wal->failed = rc;
        return rc;
    }
    wal->write_offset += bytes;
    buf_clear(&wal->pending);
    wal->flushed_lsn = wal->last_lsn;
    ASSERT(wal->durable_lsn <= wal->flushed_lsn);
    return 0;
}

/* Closes the current segment (flushed and synced first, so that every record not yet
 * durable stays in the newest segment) and starts a new one holding record_bytes. */
static int wal_reserve_rotate(struct wal *wal, uint64_t record_bytes, struct errmsg *msg) {
    struct disk *d = wal->disk;
    int rc = wal_flush(wal, msg);
    if (rc != 0) return rc;
    rc = d->sync(d, wal->file, msg);
    if (rc != 0) {
        wal->failed = rc;
        return rc;
    }
    if (wal->durable_lsn < wal->flushed_lsn) wal->durable_lsn = wal->flushed_lsn;
    uint64_t capacity = wal->options.segment_bytes;
    if (WAL_SEGMENT_HEADER_BYTES + record_bytes > capacity) {
        capacity = WAL_SEGMENT_HEADER_BYTES + record_bytes;
    }
    struct disk_file *f = NULL;
    bool zeroed = false;
    rc = wal_segment_create(wal, wal->last_lsn + 1, capacity, &f, &zeroed, msg);
    if (rc != 0) return rc; /* the old segment stays current; a later call retries */
    wal_current(wal)->used_bytes = wal->write_offset;
    if (wal->sync_inflight && wal->sync_file == wal->file) {
        wal->sync_file_retired = true; /* wal_sync_end closes it */
    } else {
        d->close(d, wal->file);
    }
    wal_install(wal, f, wal->last_lsn + 1, capacity, zeroed);
    return 0;
}

int wal_reserve(struct wal *wal, size_t payload_bytes, struct errmsg *msg) {
    ASSERT(wal != NULL);
    if (wal->failed != 0) return errmsg_set(msg, wal->failed, "wal failed earlier");
    if (payload_bytes > WAL_RECORD_BYTES_MAX) {
        return errmsg_set(msg, ERR_LIMIT, "wal record of %zu bytes (max %llu)", payload_bytes,
                          WAL_RECORD_BYTES_MAX);
    }
    uint64_t record = wal_record_bytes(payload_bytes);
    uint64_t used = wal_used_bytes(wal);
    int rc = 0;
    /* A segment whose zeros were not written (created before the disk had a spare, or
     * reopened) is left as soon as a written one is ready: its syncs cost more. */
    bool move = !wal->zeroed && used > WAL_SEGMENT_HEADER_BYTES &&
                wal->disk->zeroed_ready != NULL &&
                wal->disk->zeroed_ready(wal->disk, wal->options.segment_bytes);
    if (move || used + record > wal->capacity) {
        if (used == WAL_SEGMENT_HEADER_BYTES) {
            /* An empty segment: grow it rather than leave it without records. */
            uint64_t need = used + record;
            rc =
                wal->disk->allocate(wal->disk, wal->file, wal->capacity, need - wal->capacity, msg);
            if (rc == 0) wal->capacity = need;
            wal->zeroed = false;
        } else {
            rc = wal_reserve_rotate(wal, record, msg);
        }
    }
    if (rc != 0) return rc;
    ASSERT(wal_used_bytes(wal) + record <= wal->capacity);
    wal->reserved = true;
    wal->reserved_payload_bytes = payload_bytes;
    return 0;
}

uint64_t wal_append(struct wal *wal, const uint8_t *payload, size_t bytes) {
    ASSERT(wal != NULL);
    ASSERT(wal->failed == 0);
    ASSERT(wal->reserved);
    ASSERT(bytes <= wal->reserved_payload_bytes);
    ASSERT(payload != NULL || bytes == 0);
    uint64_t record = wal_record_bytes(bytes);
    ASSERT(wal_used_bytes(wal) + record <= wal->capacity);
    wal->reserved = false;
    uint64_t lsn = wal->last_lsn + 1;
    buf_reserve(&wal->pending, (size_t)record);
    uint8_t *p = wal->pending.data + wal->pending.len;
    base_store_u32le(p + 4, (uint32_t)bytes);
    base_store_u64le(p + 8, lsn);
    if (bytes > 0) memcpy(p + WAL_RECORD_HEADER_BYTES, payload, bytes);
    memset(p + WAL_RECORD_HEADER_BYTES + bytes, 0,
           (size_t)record - WAL_RECORD_HEADER_BYTES - bytes);
    uint32_t crc = crc32c_extend(0, p + 4, WAL_RECORD_HEADER_BYTES - 4);
    base_store_u32le(p, crc32c_extend(crc, p + WAL_RECORD_HEADER_BYTES, bytes));
    wal->pending.len += (size_t)record;
    wal->last_lsn = lsn;
    wal_current(wal)->last_lsn = lsn;
    ASSERT(wal->pending.len <= wal->pending.cap);
    return lsn;
}

bool wal_sync_begin(struct wal *wal, struct disk_file **file, uint64_t *lsn) {
    ASSERT(wal != NULL);
    ASSERT(file != NULL && lsn != NULL);
    if (wal->failed != 0 || wal->sync_inflight) return false;
    if (wal->durable_lsn >= wal->flushed_lsn) return false;
    /* Every flushed record not yet durable is in the current segment (rotation syncs). */
    wal->sync_inflight = true;
    wal->sync_lsn = wal->flushed_lsn;
    wal->sync_file = wal->file;
    wal->sync_file_retired = false;
    *file = wal->file;
    *lsn = wal->flushed_lsn;
    return true;
}

void wal_sync_end(struct wal *wal, uint64_t lsn) {
    ASSERT(wal != NULL);
    ASSERT(wal->sync_inflight);
    ASSERT(lsn == wal->sync_lsn);
    ASSERT(lsn <= wal->flushed_lsn);
    if (lsn > wal->durable_lsn) wal->durable_lsn = lsn;
    if (wal->sync_file_retired) wal->disk->close(wal->disk, wal->sync_file);
    wal->sync_file = NULL;
    wal->sync_file_retired = false;
    wal->sync_inflight = false;
    ASSERT(wal->durable_lsn <= wal->flushed_lsn);
}

uint64_t wal_last_lsn(const struct wal *wal) {
    return wal->last_lsn;
}
uint64_t wal_flushed_lsn(const struct wal *wal) {
    return wal->flushed_lsn;
}
uint64_t wal_durable_lsn(const struct wal *wal) {
    return wal->durable_lsn;
}

uint64_t wal_bytes_since(const struct wal *wal, uint64_t lsn) {
    /* Whole segments holding a record after lsn, counted by their used bytes: an
     * overestimate of at most one segment, good enough to decide when to snapshot. */
    uint64_t total = 0;
    for (size_t i = 0; i < wal->segment_count; i++) {
        const struct wal_segment *seg = &wal->segments[i];
        if (seg->last_lsn <= lsn) continue;
        total += i + 1 == wal->segment_count ? wal_used_bytes(wal) : seg->used_bytes;
    }
    return total;
}

int wal_retire_one_before(struct wal *wal, uint64_t lsn, char old_name[WAL_NAME_BYTES],
                          bool *retired, struct errmsg *msg) {
    ASSERT(wal != NULL);
    *retired = false;
    if (wal->segment_count < 2 || wal->segments[1].first_lsn > lsn) return 0;
    char name[WAL_NAME_BYTES];
    wal_segment_name(wal->segments[0].first_lsn, name); /* oldest first: no holes */
    snprintf(old_name, WAL_NAME_BYTES, "wal-%016llx.old",
             (unsigned long long)wal->segments[0].first_lsn);
    int rc = wal->disk->rename(wal->disk, name, old_name, msg);
    if (rc != 0) return rc;
    memmove(wal->segments, wal->segments + 1, (wal->segment_count - 1) * sizeof(*wal->segments));
    wal->segment_count--;
    *retired = true;
    return 0;
}

int wal_truncate_before(struct wal *wal, uint64_t lsn, struct errmsg *msg) {
    ASSERT(wal != NULL);
    size_t removed = 0;
    int rc = 0;
    /* Oldest first, so that a crash half way leaves a log without holes. The current
     * segment always stays. */
    while (removed + 1 < wal->segment_count && wal->segments[removed + 1].first_lsn <= lsn) {
        char name[WAL_NAME_BYTES];
        wal_segment_name(wal->segments[removed].first_lsn, name);
        rc = wal->disk->remove(wal->disk, name, msg);
        if (rc == ERR_NOTFOUND) rc = 0;
        if (rc != 0) break;
        removed++;
    }
    if (removed > 0) {
        memmove(wal->segments, wal->segments + removed,
                (wal->segment_count - removed) * sizeof(*wal->segments));
        wal->segment_count -= removed;
        int sync_rc = wal->disk->sync_dir(wal->disk, rc == 0 ? msg : NULL);
        if (rc == 0) rc = sync_rc;
    }
    ASSERT(wal->segment_count >= 1);
    return rc;
}
