/*
 * libFuzzer target for WAL and snapshot recovery. The first byte picks a mode:
 *   0: the input is a WAL segment file; wal_open must return 0 or an error, and after a
 *      successful open the log must take a record and replay it after reopening.
 *   1: the input is a snapshot file; snapshot_load must return 0 or an error.
 *   2: the input drives a valid log (payload sizes) and then one damaged byte; recovery
 *      must return 0 (with gap-free lsns) or ERR_CORRUPT / ERR_VERSION.
 * Never crashes, leaks or asserts.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/assert.h"
#include "storage/memdisk.h"
#include "storage/snapshot.h"
#include "storage/wal.h"

#define FUZZ_SEGMENT_BYTES 4096u
#define FUZZ_RECORDS_MAX 512

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct fuzz_replay {
    uint64_t next_lsn; /* 0 until the first record */
    uint64_t count;
};

static int fuzz_replay(void *ctx, uint64_t lsn, const uint8_t *payload, size_t bytes) {
    struct fuzz_replay *r = ctx;
    (void)payload;
    ASSERT(bytes <= WAL_RECORD_BYTES_MAX);
    if (r->next_lsn != 0) ASSERT(lsn == r->next_lsn);
    r->next_lsn = lsn + 1;
    r->count++;
    return 0;
}

static int fuzz_open(struct disk *d, struct fuzz_replay *r, struct wal **w) {
    memset(r, 0, sizeof(*r));
    struct wal_open_args args = {.disk = d,
                                 .options = {.segment_bytes = FUZZ_SEGMENT_BYTES},
                                 .replay = fuzz_replay,
                                 .ctx = r};
    struct errmsg msg;
    int rc = wal_open(&args, w, &msg);
    ASSERT(rc <= 0);
    if (rc != 0) ASSERT(*w == NULL);
    return rc;
}

static void fuzz_wal_file(const uint8_t *data, size_t size) {
    struct disk d;
    memdisk_init(&d);
    memdisk_poke(&d, "wal-0000000000000001.log", data, size);
    struct fuzz_replay r;
    struct wal *w = NULL;
    if (fuzz_open(&d, &r, &w) == 0) {
        uint64_t last = wal_last_lsn(w);
        struct errmsg msg;
        ASSERT(wal_reserve(w, 3, &msg) == 0);
        ASSERT(wal_append(w, (const uint8_t *)"abc", 3) == last + 1);
        ASSERT(wal_flush(w, &msg) == 0);
        struct disk_file *f;
        uint64_t lsn;
        ASSERT(wal_sync_begin(w, &f, &lsn));
        ASSERT(d.sync(&d, f, &msg) == 0);
        wal_sync_end(w, lsn);
        wal_close(w);
        ASSERT(fuzz_open(&d, &r, &w) == 0);
        ASSERT(wal_last_lsn(w) == last + 1);
        ASSERT(r.next_lsn == last + 2);
        wal_close(w);
    }
    memdisk_deinit(&d);
}

static void fuzz_snapshot_file(const uint8_t *data, size_t size) {
    struct disk d;
    memdisk_init(&d);
    memdisk_poke(&d, "snap-0000000000000001.snap", data, size);
    uint64_t lsn = 0;
    struct errmsg msg;
    int rc = snapshot_load(&d, NULL, NULL, &lsn, &msg);
    ASSERT(rc <= 0);
    if (rc == 0) ASSERT(lsn == 0 || lsn == 1);
    memdisk_deinit(&d);
}

static void fuzz_damaged_log(const uint8_t *data, size_t size) {
    if (size < 3) return;
    struct disk d;
    memdisk_init(&d);
    struct fuzz_replay r;
    struct wal *w = NULL;
    ASSERT(fuzz_open(&d, &r, &w) == 0);
    static uint8_t payload[FUZZ_SEGMENT_BYTES];
    struct errmsg msg;
    for (size_t i = 2; i < size && i < FUZZ_RECORDS_MAX; i++) {
        size_t bytes = (size_t)data[i] * 8 + (i % 8);
        memset(payload, data[i], bytes);
        ASSERT(wal_reserve(w, bytes, &msg) == 0);
        wal_append(w, payload, bytes);
    }
    ASSERT(wal_flush(w, &msg) == 0);
    wal_close(w);
    /* Damage one byte of the first segment: data[0..1] pick the offset. */
    const uint8_t *img;
    uint64_t img_bytes;
    ASSERT(memdisk_peek(&d, "wal-0000000000000001.log", &img, &img_bytes) == 0);
    static uint8_t copy[FUZZ_SEGMENT_BYTES];
    ASSERT(img_bytes <= sizeof(copy));
    uint64_t at = ((uint64_t)data[0] << 8 | data[1]) * 7 % img_bytes;
    memcpy(copy, img, (size_t)img_bytes);
    copy[at] ^= (uint8_t)(data[size - 1] | 1);
    memdisk_poke(&d, "wal-0000000000000001.log", copy, img_bytes);
    int rc = fuzz_open(&d, &r, &w);
    ASSERT(rc == 0 || rc == ERR_CORRUPT || rc == ERR_VERSION);
    if (rc == 0) wal_close(w);
    memdisk_deinit(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    switch (data[0] % 3) {
    case 0:
        fuzz_wal_file(data + 1, size - 1);
        break;
    case 1:
        fuzz_snapshot_file(data + 1, size - 1);
        break;
    default:
        fuzz_damaged_log(data + 1, size - 1);
        break;
    }
    return 0;
}
