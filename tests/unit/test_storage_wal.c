/* Unit tests of the write-ahead log (src/storage/wal.c) on the in-memory disk. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/memdisk.h"
#include "storage/wal.h"

#define SEG_BYTES 4096u
#define LOG_RECORDS_MAX 4096
#define PAYLOAD_BYTES_MAX 20000

struct replay_log {
    uint64_t lsns[LOG_RECORDS_MAX];
    size_t count;
    int warn_count;
    char warn[512];
};

static uint8_t payload_byte(uint64_t lsn, size_t i) {
    return (uint8_t)(lsn * 31 + i * 7);
}

static size_t payload_size(uint64_t lsn) {
    return (size_t)(lsn * 37 % 200);
}

static int replay_record(void *ctx, uint64_t lsn, const uint8_t *p, size_t bytes) {
    struct replay_log *log = ctx;
    assert_true(log->count < LOG_RECORDS_MAX);
    for (size_t i = 0; i < bytes; i++) assert_int_equal(p[i], payload_byte(lsn, i));
    log->lsns[log->count++] = lsn;
    return 0;
}

static void warn_record(void *ctx, const char *text) {
    struct replay_log *log = ctx;
    log->warn_count++;
    snprintf(log->warn, sizeof(log->warn), "%s", text);
}

static int open_wal(struct disk *d, uint64_t from, struct replay_log *log, struct wal **out,
                    struct errmsg *msg) {
    memset(log, 0, sizeof(*log));
    struct wal_open_args args = {.disk = d,
                                 .options = {.segment_bytes = SEG_BYTES},
                                 .from_lsn = from,
                                 .replay = replay_record,
                                 .warn = warn_record,
                                 .ctx = log};
    return wal_open(&args, out, msg);
}

static struct wal *open_ok(struct disk *d, uint64_t from, struct replay_log *log) {
    struct wal *w = NULL;
    struct errmsg msg = {{0}};
    int rc = open_wal(d, from, log, &w, &msg);
    if (rc != 0) fprintf(stderr, "wal_open: %s\n", msg.text);
    assert_int_equal(rc, 0);
    assert_non_null(w);
    return w;
}

static uint64_t append_sized(struct wal *w, size_t bytes) {
    static uint8_t p[PAYLOAD_BYTES_MAX];
    uint64_t lsn = wal_last_lsn(w) + 1;
    assert_true(bytes <= sizeof(p));
    for (size_t i = 0; i < bytes; i++) p[i] = payload_byte(lsn, i);
    struct errmsg msg;
    assert_int_equal(wal_reserve(w, bytes, &msg), 0);
    assert_int_equal(wal_append(w, p, bytes), lsn);
    return lsn;
}

static void append_n(struct wal *w, uint64_t count) {
    for (uint64_t i = 0; i < count; i++) append_sized(w, payload_size(wal_last_lsn(w) + 1));
}

static void flush_and_sync(struct disk *d, struct wal *w) {
    struct errmsg msg;
    assert_int_equal(wal_flush(w, &msg), 0);
    struct disk_file *f = NULL;
    uint64_t lsn = 0;
    if (!wal_sync_begin(w, &f, &lsn)) return;
    assert_int_equal(lsn, wal_flushed_lsn(w));
    assert_int_equal(d->sync(d, f, &msg), 0);
    wal_sync_end(w, lsn);
    assert_int_equal(wal_durable_lsn(w), lsn);
}

static void assert_replayed(const struct replay_log *log, uint64_t first, uint64_t last) {
    assert_int_equal(log->count, last + 1 - first);
    for (size_t i = 0; i < log->count; i++) assert_int_equal(log->lsns[i], first + i);
}

static void flip_byte(struct disk *d, const char *name, uint64_t offset) {
    const uint8_t *data;
    uint64_t bytes;
    assert_int_equal(memdisk_peek(d, name, &data, &bytes), 0);
    assert_true(offset < bytes);
    uint8_t *copy = malloc((size_t)bytes);
    memcpy(copy, data, (size_t)bytes);
    copy[offset] ^= 0x40;
    assert_int_equal(memdisk_poke(d, name, copy, bytes), 0);
    free(copy);
}

struct name_list {
    char names[64][DISK_NAME_BYTES_MAX];
    int count;
};

static void name_list_add(void *ctx, const char *name) {
    struct name_list *l = ctx;
    if (strncmp(name, "wal-", 4) != 0 || l->count == 64) return;
    snprintf(l->names[l->count++], DISK_NAME_BYTES_MAX, "%s", name);
}

static int segment_count(struct disk *d) {
    struct name_list l = {.count = 0};
    assert_int_equal(d->list(d, name_list_add, &l, NULL), 0);
    return l.count;
}

/* Every flushed and synced record comes back, in order, after close and reopen. */
static void test_wal_replays_every_synced_record_after_reopen(void **state) {
    (void)state;
    struct disk d;
    memdisk_init(&d);
    struct replay_log log;
    struct wal *w = open_ok(&d, 0, &log);
    assert_int_equal(wal_last_lsn(w), 0);
    append_sized(w, 0);
    append_n(w, 9);
    flush_and_sync(&d, w);
    assert_int_equal(wal_durable_lsn(w), 10);
    wal_close(w);
    w = open_ok(&d, 0, &log);
    assert_replayed(&log, 1, 10);
    assert_int_equal(log.warn_count, 0);
    assert_int_equal(wal_last_lsn(w), 10);
    assert_int_equal(wal_durable_lsn(w), 10);
    assert_int_equal(append_sized(w, 5), 11);
    wal_close(w);
    memdisk_deinit(&d);
}

/* Segments fill up and the log continues in new ones; lsns stay gap-free across them. */
static void test_wal_rotates_across_segments_and_replays_them_in_order(void **state) {
    (void)state;
    struct disk d;
    memdisk_init(&d);
    struct replay_log log;
    struct wal *w = open_ok(&d, 0, &log);
    append_n(w, 300);
    flush_and_sync(&d, w);
    assert_true(segment_count(&d) >= 5);
    assert_true(memdisk_exists(&d, "wal-0000000000000001.log"));
    wal_close(w);
    w = open_ok(&d, 0, &log);
    assert_replayed(&log, 1, 300);
    wal_close(w);
    memdisk_deinit(&d);
}

/* Durability: a crash keeps every synced record and loses the rest, never more. */
static void test_wal_crash_drops_unsynced_records_but_never_synced_ones(void **state) {
    (void)state;
    struct disk d;
    memdisk_init(&d);
    struct replay_log log;
    struct wal *w = open_ok(&d, 0, &log);
    append_n(w, 10);
    flush_and_sync(&d, w);
    append_n(w, 5);
    struct errmsg msg;
    assert_int_equal(wal_flush(w, &msg), 0);
    append_n(w, 3); /* not even flushed */
    assert_int_equal(wal_durable_lsn(w), 10);
    assert_int_equal(wal_flushed_lsn(w), 15);
    assert_int_equal(wal_last_lsn(w), 18);
    memdisk_crash(&d, false, 0);
    wal_close(w);
    w = open_ok(&d, 0, &log);
    assert_replayed(&log, 1, 10);
    assert_int_equal(append_sized(w, 3), 11);
    wal_close(w);
    memdisk_deinit(&d);
}

/* A torn last write is cut with a warning naming file and offset, for every tear length,
 * and appends continue right after the last whole record. */
static void test_wal_cuts_a_torn_tail_with_a_warning_and_appends_after_it(void **state) {
    (void)state;
    int warned = 0;
    for (uint64_t keep = 0; keep < 400; keep += 13) {
        struct disk d;
        memdisk_init(&d);
        struct replay_log log;
        struct wal *w = open_ok(&d, 0, &log);
        append_n(w, 10);
        flush_and_sync(&d, w);
        append_sized(w, 300);
        append_sized(w, 50);
        struct errmsg msg;
        assert_int_equal(wal_flush(w, &msg), 0);
        memdisk_crash(&d, true, keep);
        wal_close(w);
        w = open_ok(&d, 0, &log);
        uint64_t survived = log.count;
        assert_true(survived >= 10 && survived <= 12);
        warned += log.warn_count;
        if (keep > 0 && survived < 12) {
            assert_int_equal(log.warn_count, 1);
            assert_non_null(strstr(log.warn, "wal-0000000000000001.log"));
            assert_non_null(strstr(log.warn, "byte offset"));
        }
        append_n(w, 5);
        flush_and_sync(&d, w);
        wal_close(w);
        w = open_ok(&d, 0, &log);
        assert_replayed(&log, 1, survived + 5);
        assert_int_equal(log.warn_count, 0);
        wal_close(w);
        memdisk_deinit(&d);
    }
    assert_true(warned >= 25); /* every tear but the empty one left a partial record */
}

/* Recovery rule: a bad record followed by a valid one is corruption, not a torn tail. */
static void test_wal_refuses_a_damaged_record_followed_by_a_valid_one(void **state) {
    (void)state;
    struct disk d;
    memdisk_init(&d);
    struct replay_log log;
    struct wal *w = open_ok(&d, 0, &log);
    for (int i = 0; i < 10; i++) append_sized(w, 20); /* 40-byte records from offset 32 */
    flush_and_sync(&d, w);
    wal_close(w);
    uint64_t third = 32 + 2 * 40;
    flip_byte(&d, "wal-0000000000000001.log", third + 20);
    struct errmsg msg = {{0}};
    assert_int_equal(open_wal(&d, 0, &log, &w, &msg), ERR_CORRUPT);
    assert_null(w);
    assert_non_null(strstr(msg.text, "wal-0000000000000001.log"));
    assert_non_null(strstr(msg.text, "byte offset 112"));
    assert_non_null(strstr(msg.text, "crc mismatch"));
    /* Refusing changed nothing: the damage is still there for a person to look at. */
    assert_int_equal(open_wal(&d, 0, &log, &w, &msg), ERR_CORRUPT);
    memdisk_deinit(&d);
}

/* Recovery rule: only the newest segment may have a torn tail; older ones were synced
 * whole before rotation, so damage at their end is corruption. */
static void test_wal_refuses_damage_at_the_end_of_an_older_segment(void **state) {
    (void)state;
    struct disk d;
    memdisk_init(&d);
    struct replay_log log;
    struct wal *w = open_ok(&d, 0, &log);
    for (int i = 0; i < 200; i++) append_sized(w, 20);
    flush_and_sync(&d, w);
    wal_close(w);
    /* (4096 - 32) / 40 = 101 records fit in the first segment; damage the last one. */
    uint64_t last = 32 + 100 * 40;
    flip_byte(&d, "wal-0000000000000001.log", last + 8);
    struct errmsg msg = {{0}};
    assert_int_equal(open_wal(&d, 0, &log, &w, &msg), ERR_CORRUPT);
    assert_non_null(strstr(msg.text, "wal-0000000000000001.log"));
    assert_non_null(strstr(msg.text, "byte offset 4032"));
    memdisk_deinit(&d);
}

/* Segments must continue each other: a missing middle segment is a gap. */
static void test_wal_refuses_an_lsn_gap_between_segments(void **state) {
    (void)state;
    struct disk d;
    memdisk_init(&d);
    struct replay_log log;
    struct wal *w = open_ok(&d, 0, &log);
    for (int i = 0; i < 350; i++) append_sized(w, 20);
    flush_and_sync(&d, w);
    wal_close(w);
    assert_int_equal(d.remove(&d, "wal-0000000000000066.log", NULL), 0); /* lsn 102.. */
    struct errmsg msg = {{0}};
    assert_int_equal(open_wal(&d, 0, &log, &w, &msg), ERR_CORRUPT);
    assert_non_null(strstr(msg.text, "previous segment ends at lsn 101"));
    memdisk_deinit(&d);
}

/* A segment header that is damaged in an older segment is corruption. */
static void test_wal_refuses_a_bad_segment_header_in_an_older_segment(void **state) {
    (void)state;
    struct disk d;
    memdisk_init(&d);
    struct replay_log log;
    struct wal *w = open_ok(&d, 0, &log);
    for (int i = 0; i < 150; i++) append_sized(w, 20);
    flush_and_sync(&d, w);
    wal_close(w);
    flip_byte(&d, "wal-0000000000000001.log", 3);
    struct errmsg msg = {{0}};
    assert_int_equal(open_wal(&d, 0, &log, &w, &msg), ERR_CORRUPT);
    assert_non_null(strstr(msg.text, "wal-0000000000000001.log: corrupt segment header"));
    memdisk_deinit(&d);
}

/* from_lsn: records the snapshot already holds are verified but not replayed. */
static void test_wal_replays_only_records_from_from_lsn(void **state) {
    (void)state;
    struct disk d;
    memdisk_init(&d);
    struct replay_log log;
    struct wal *w = open_ok(&d, 0, &log);
    append_n(w, 120);
    flush_and_sync(&d, w);
    wal_close(w);
    w = open_ok(&d, 77, &log);
    assert_replayed(&log, 77, 120);
    assert_int_equal(wal_last_lsn(w), 120);
    wal_close(w);
    memdisk_deinit(&d);
}

/* wal_truncate_before deletes whole segments below lsn, never the current one; the log
 * then starts later, which is only acceptable with a snapshot that covers the rest. */
static void test_wal_truncate_before_deletes_whole_older_segments(void **state) {
    (void)state;
    struct disk d;
    memdisk_init(&d);
    struct replay_log log;
    struct wal *w = open_ok(&d, 0, &log);
    for (int i = 0; i < 350; i++) append_sized(w, 20); /* 101 records per segment */
    flush_and_sync(&d, w);
    assert_int_equal(segment_count(&d), 4);
    uint64_t before = wal_bytes_since(w, 0);
    struct errmsg msg;
    assert_int_equal(wal_truncate_before(w, 250, &msg), 0);
    assert_int_equal(segment_count(&d), 2); /* 203.. and 304.. stay */
    assert_false(memdisk_exists(&d, "wal-0000000000000001.log"));
    assert_true(memdisk_exists(&d, "wal-00000000000000cb.log"));
    assert_true(wal_bytes_since(w, 0) < before);
    assert_int_equal(wal_truncate_before(w, 100000, &msg), 0);
    assert_int_equal(segment_count(&d), 1);
    wal_close(w);
    w = open_ok(&d, 304, &log);
    assert_replayed(&log, 304, 350);
    wal_close(w);
    struct errmsg msg2 = {{0}};
    assert_int_equal(open_wal(&d, 0, &log, &w, &msg2), ERR_CORRUPT);
    assert_non_null(strstr(msg2.text, "log starts at lsn 304"));
    memdisk_deinit(&d);
}

/* A full disk shows up in wal_reserve, loses nothing, and a later call succeeds. */
static void test_wal_reports_a_full_disk_from_reserve_and_recovers_when_space_grows(void **s) {
    (void)s;
    struct disk d;
    memdisk_init(&d);
    struct replay_log log;
    struct wal *w = open_ok(&d, 0, &log);
    memdisk_set_capacity(&d, 2 * SEG_BYTES + 100);
    struct errmsg msg = {{0}};
    int rc = 0;
    uint64_t appended = 0;
    while (rc == 0 && appended < 1000) {
        rc = wal_reserve(w, 20, &msg);
        if (rc == 0) appended = wal_append(w, (const uint8_t *)"01234567890123456789", 20);
    }
    assert_int_equal(rc, ERR_NOSPACE);
    assert_non_null(strstr(msg.text, "no space"));
    assert_int_equal(appended, 202);                         /* two full segments */
    assert_int_equal(wal_durable_lsn(w), 202);               /* rotation synced; nothing lost */
    assert_int_equal(wal_reserve(w, 20, &msg), ERR_NOSPACE); /* still full */
    memdisk_set_capacity(&d, MEMDISK_CAPACITY_UNLIMITED);
    assert_int_equal(wal_reserve(w, 20, &msg), 0);
    assert_int_equal(wal_append(w, (const uint8_t *)"01234567890123456789", 20), 203);
    flush_and_sync(&d, w);
    wal_close(w);
    memset(&log, 0, sizeof(log));
    struct wal_open_args args = {.disk = &d, .options = {.segment_bytes = SEG_BYTES}, .ctx = &log};
    assert_int_equal(wal_open(&args, &w, &msg), 0);
    assert_int_equal(wal_last_lsn(w), 203);
    wal_close(w);
    memdisk_deinit(&d);
}

/* A record larger than a segment gets a segment of its own size. */
static void test_wal_gives_a_record_larger_than_a_segment_its_own_segment(void **state) {
    (void)state;
    struct disk d;
    memdisk_init(&d);
    struct replay_log log;
    struct wal *w = open_ok(&d, 0, &log);
    append_sized(w, 10);
    append_sized(w, 3 * SEG_BYTES);
    append_sized(w, 10);
    flush_and_sync(&d, w);
    const uint8_t *data;
    uint64_t bytes;
    assert_int_equal(memdisk_peek(&d, "wal-0000000000000002.log", &data, &bytes), 0);
    assert_true(bytes >= 3 * SEG_BYTES + 48);
    wal_close(w);
    /* An empty segment grows in place rather than leaving an empty file behind. */
    struct disk d2;
    memdisk_init(&d2);
    w = open_ok(&d2, 0, &log);
    append_sized(w, 2 * SEG_BYTES);
    flush_and_sync(&d2, w);
    assert_int_equal(segment_count(&d2), 1);
    wal_close(w);
    w = open_ok(&d, 0, &log);
    assert_replayed(&log, 1, 3);
    wal_close(w);
    memdisk_deinit(&d2);
    memdisk_deinit(&d);
}

/* Group commit: one sync in flight; its file stays usable across a rotation, and the
 * durable lsn never claims a record that no sync covered. */
static void test_wal_group_commit_keeps_the_synced_file_open_across_rotation(void **state) {
    (void)state;
    struct disk d;
    memdisk_init(&d);
    struct replay_log log;
    struct wal *w = open_ok(&d, 0, &log);
    struct errmsg msg;
    struct disk_file *f = NULL;
    uint64_t lsn = 0;
    assert_false(wal_sync_begin(w, &f, &lsn)); /* nothing to sync */
    append_n(w, 5);
    assert_false(wal_sync_begin(w, &f, &lsn)); /* appended but not flushed */
    assert_int_equal(wal_flush(w, &msg), 0);
    assert_true(wal_sync_begin(w, &f, &lsn));
    assert_int_equal(lsn, 5);
    append_n(w, 3);
    assert_int_equal(wal_flush(w, &msg), 0);
    struct disk_file *f2 = NULL;
    uint64_t lsn2 = 0;
    assert_false(wal_sync_begin(w, &f2, &lsn2)); /* one in flight */
    assert_int_equal(wal_durable_lsn(w), 0);
    for (int i = 0; i < 120; i++) append_sized(w, 20); /* rotates */
    assert_true(segment_count(&d) >= 2);
    assert_true(wal_durable_lsn(w) >= 8); /* rotation synced the old segment */
    assert_true(wal_durable_lsn(w) <= wal_flushed_lsn(w));
    assert_int_equal(d.sync(&d, f, &msg), 0); /* the handle is still open */
    wal_sync_end(w, lsn);
    assert_true(wal_durable_lsn(w) >= 8);
    flush_and_sync(&d, w);
    assert_int_equal(wal_durable_lsn(w), 128);
    wal_close(w);
    memdisk_deinit(&d);
}

/* A crash right after rotation leaves a newest segment without a durable header: it is
 * empty, and the log continues in it. */
static void test_wal_treats_a_newest_segment_without_header_as_empty(void **state) {
    (void)state;
    for (uint64_t keep = 0; keep < 32; keep += 5) {
        struct disk d;
        memdisk_init(&d);
        struct replay_log log;
        struct wal *w = open_ok(&d, 0, &log);
        for (int i = 0; i < 101; i++) append_sized(w, 20); /* exactly one full segment */
        struct errmsg msg;
        assert_int_equal(wal_reserve(w, 20, &msg), 0); /* rotates: header written, unsynced */
        assert_int_equal(segment_count(&d), 2);
        memdisk_crash(&d, true, keep);
        wal_close(w);
        w = open_ok(&d, 0, &log);
        assert_replayed(&log, 1, 101);
        append_n(w, 3);
        flush_and_sync(&d, w);
        wal_close(w);
        w = open_ok(&d, 0, &log);
        assert_replayed(&log, 1, 104);
        wal_close(w);
        memdisk_deinit(&d);
    }
}

/* An I/O error on flush is fatal and sticky: every later call returns it. */
static void test_wal_stays_failed_after_a_write_error(void **state) {
    (void)state;
    struct disk d;
    memdisk_init(&d);
    struct replay_log log;
    struct wal *w = open_ok(&d, 0, &log);
    append_n(w, 3);
    memdisk_fail_after(&d, 1, ERR_IO);
    struct errmsg msg;
    assert_int_equal(wal_flush(w, &msg), ERR_IO);
    assert_int_equal(wal_flush(w, &msg), ERR_IO);
    assert_int_equal(wal_reserve(w, 1, &msg), ERR_IO);
    struct disk_file *f;
    uint64_t lsn;
    assert_false(wal_sync_begin(w, &f, &lsn));
    wal_close(w);
    memdisk_deinit(&d);
}

/* When the snapshot is ahead of the log (its records were never synced), the log goes on
 * at the snapshot's lsn so that the next replay does not skip new records. */
static void test_wal_continues_at_from_lsn_when_the_snapshot_is_ahead(void **state) {
    (void)state;
    struct disk d;
    memdisk_init(&d);
    struct replay_log log;
    struct wal *w = open_ok(&d, 0, &log);
    append_n(w, 5);
    flush_and_sync(&d, w);
    wal_close(w);
    w = open_ok(&d, 10, &log);
    assert_int_equal(log.count, 0);
    assert_int_equal(wal_last_lsn(w), 9);
    assert_int_equal(append_sized(w, 4), 10);
    flush_and_sync(&d, w);
    wal_close(w);
    w = open_ok(&d, 10, &log);
    assert_replayed(&log, 10, 10);
    wal_close(w);
    memdisk_deinit(&d);
}

/* Limits: a payload over WAL_RECORD_BYTES_MAX and a bad segment size are refused. */
static void test_wal_refuses_records_and_options_over_their_limits(void **state) {
    (void)state;
    struct disk d;
    memdisk_init(&d);
    struct replay_log log;
    struct wal *w = open_ok(&d, 0, &log);
    struct errmsg msg;
    assert_int_equal(wal_reserve(w, (size_t)WAL_RECORD_BYTES_MAX + 1, &msg), ERR_LIMIT);
    assert_int_equal(append_sized(w, 1), 1);
    wal_close(w);
    struct wal_open_args args = {.disk = &d, .options = {.segment_bytes = 100}};
    assert_int_equal(wal_open(&args, &w, &msg), ERR_CONFIG);
    assert_null(w);
    memdisk_deinit(&d);
}

/* A replay callback's error stops recovery and is returned as is. */
static int replay_refuse(void *ctx, uint64_t lsn, const uint8_t *p, size_t bytes) {
    (void)ctx;
    (void)p;
    (void)bytes;
    return lsn == 3 ? ERR_INVALID : 0;
}

static void test_wal_open_returns_the_replay_callbacks_error(void **state) {
    (void)state;
    struct disk d;
    memdisk_init(&d);
    struct replay_log log;
    struct wal *w = open_ok(&d, 0, &log);
    append_n(w, 5);
    flush_and_sync(&d, w);
    wal_close(w);
    struct wal_open_args args = {
        .disk = &d, .options = {.segment_bytes = SEG_BYTES}, .replay = replay_refuse};
    struct errmsg msg;
    assert_int_equal(wal_open(&args, &w, &msg), ERR_INVALID);
    assert_null(w);
    memdisk_deinit(&d);
}

/* A fake create_zeroed on the memory disk (disk.h): it hands out "written" segments while
 * `spare_ready` is set. */
static bool spare_ready;
static int spare_created, spare_written;

static int fake_create_zeroed(struct disk *d, const char *name, uint64_t bytes,
                              struct disk_file **out, bool *written, struct errmsg *msg) {
    int rc = d->open(d, name, DISK_OPEN_WRITE | DISK_OPEN_CREATE, out, msg);
    if (rc == 0) rc = d->truncate(d, *out, 0, msg);
    if (rc == 0) rc = d->allocate(d, *out, 0, bytes, msg);
    *written = rc == 0 && spare_ready;
    spare_created++;
    if (*written) spare_written++;
    return rc;
}

static bool fake_zeroed_ready(struct disk *d, uint64_t bytes) {
    (void)d;
    assert_int_equal(bytes, SEG_BYTES);
    return spare_ready;
}

/* A segment created without written zeros is left for a written one as soon as one is
 * ready, with no record lost; a written segment is kept until it is full. */
static void test_wal_moves_to_a_written_segment_once_one_is_ready(void **state) {
    (void)state;
    struct disk d;
    memdisk_init(&d);
    d.create_zeroed = fake_create_zeroed;
    d.zeroed_ready = fake_zeroed_ready;
    spare_ready = false;
    spare_created = spare_written = 0;
    struct replay_log log;
    struct wal *w = open_ok(&d, 0, &log);
    assert_int_equal(spare_created, 1);
    append_n(w, 3); /* no spare yet: the first segment stays */
    assert_int_equal(segment_count(&d), 1);
    spare_ready = true;
    append_n(w, 1); /* moves now, before the record */
    assert_int_equal(segment_count(&d), 2);
    assert_true(memdisk_exists(&d, "wal-0000000000000004.log"));
    assert_int_equal(spare_written, 1);
    append_n(w, 5); /* a written segment: no early move */
    assert_int_equal(segment_count(&d), 2);
    append_n(w, 200); /* full segments rotate as before, into written ones */
    assert_true(segment_count(&d) > 3);
    assert_int_equal(spare_written, spare_created - 1);
    flush_and_sync(&d, w);
    wal_close(w);
    /* A reopened segment counts as unwritten: it moves again once a spare is ready. */
    spare_ready = false;
    w = open_ok(&d, 0, &log);
    assert_replayed(&log, 1, 209);
    int before = segment_count(&d);
    append_n(w, 1);
    assert_int_equal(segment_count(&d), before);
    spare_ready = true;
    append_n(w, 1);
    assert_int_equal(segment_count(&d), before + 1);
    flush_and_sync(&d, w);
    wal_close(w);
    w = open_ok(&d, 0, &log);
    assert_replayed(&log, 1, 211);
    wal_close(w);
    memdisk_deinit(&d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_wal_moves_to_a_written_segment_once_one_is_ready),
        cmocka_unit_test(test_wal_replays_every_synced_record_after_reopen),
        cmocka_unit_test(test_wal_rotates_across_segments_and_replays_them_in_order),
        cmocka_unit_test(test_wal_crash_drops_unsynced_records_but_never_synced_ones),
        cmocka_unit_test(test_wal_cuts_a_torn_tail_with_a_warning_and_appends_after_it),
        cmocka_unit_test(test_wal_refuses_a_damaged_record_followed_by_a_valid_one),
        cmocka_unit_test(test_wal_refuses_damage_at_the_end_of_an_older_segment),
        cmocka_unit_test(test_wal_refuses_an_lsn_gap_between_segments),
        cmocka_unit_test(test_wal_refuses_a_bad_segment_header_in_an_older_segment),
        cmocka_unit_test(test_wal_replays_only_records_from_from_lsn),
        cmocka_unit_test(test_wal_truncate_before_deletes_whole_older_segments),
        cmocka_unit_test(test_wal_reports_a_full_disk_from_reserve_and_recovers_when_space_grows),
        cmocka_unit_test(test_wal_gives_a_record_larger_than_a_segment_its_own_segment),
        cmocka_unit_test(test_wal_group_commit_keeps_the_synced_file_open_across_rotation),
        cmocka_unit_test(test_wal_treats_a_newest_segment_without_header_as_empty),
        cmocka_unit_test(test_wal_stays_failed_after_a_write_error),
        cmocka_unit_test(test_wal_continues_at_from_lsn_when_the_snapshot_is_ahead),
        cmocka_unit_test(test_wal_refuses_records_and_options_over_their_limits),
        cmocka_unit_test(test_wal_open_returns_the_replay_callbacks_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
