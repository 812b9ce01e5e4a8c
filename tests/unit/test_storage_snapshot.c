/* Unit tests of snapshots (src/storage/snapshot.c) and of the memdisk they run on. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/memdisk.h"
#include "storage/snapshot.h"

#define ENTRY_BYTES_MAX 100000

struct loaded {
    uint64_t count;
    uint64_t bytes;
    int mismatches;
};

static size_t entry_size(uint64_t i) {
    return i == 7 ? 70000 : (size_t)(i * 13 % 300);
}

static void entry_fill(uint64_t i, uint8_t *p, size_t bytes) {
    for (size_t k = 0; k < bytes; k++) p[k] = (uint8_t)(i + k * 3);
}

static int entry_check(void *ctx, const uint8_t *entry, size_t bytes) {
    struct loaded *l = ctx;
    static uint8_t want[ENTRY_BYTES_MAX];
    uint64_t i = l->count++;
    if (bytes != entry_size(i)) {
        l->mismatches++;
        return 0;
    }
    entry_fill(i, want, bytes);
    if (bytes > 0 && memcmp(entry, want, bytes) != 0) l->mismatches++;
    l->bytes += bytes;
    return 0;
}

static void write_snapshot(struct disk *d, uint64_t lsn, uint64_t count) {
    static uint8_t p[ENTRY_BYTES_MAX];
    struct snapshot_writer *w = NULL;
    struct errmsg msg;
    assert_int_equal(snapshot_writer_open(d, lsn, &w, &msg), 0);
    for (uint64_t i = 0; i < count; i++) {
        size_t n = entry_size(i);
        entry_fill(i, p, n);
        assert_int_equal(snapshot_writer_add(w, p, n, &msg), 0);
    }
    int rc = snapshot_writer_finish(w, &msg);
    if (rc != 0) fprintf(stderr, "finish: %s\n", msg.text);
    assert_int_equal(rc, 0);
}

static void flip_byte(struct disk *d, const char *name, uint64_t offset) {
    const uint8_t *data;
    uint64_t bytes;
    assert_int_equal(memdisk_peek(d, name, &data, &bytes), 0);
    assert_true(offset < bytes);
    uint8_t *copy = malloc((size_t)bytes);
    memcpy(copy, data, (size_t)bytes);
    copy[offset] ^= 0x01;
    assert_int_equal(memdisk_poke(d, name, copy, bytes), 0);
    free(copy);
}

/* What is written comes back entry by entry, with the snapshot's lsn. */
static void test_snapshot_round_trips_every_entry(void **state) {
    (void)state;
    struct disk d;
    memdisk_init(&d);
    write_snapshot(&d, 42, 1000);
    assert_true(memdisk_exists(&d, "snap-000000000000002a.snap"));
    assert_false(memdisk_exists(&d, "snap-000000000000002a.tmp"));
    struct loaded l = {0};
    uint64_t lsn = 0;
    struct errmsg msg;
    assert_int_equal(snapshot_load(&d, entry_check, &l, &lsn, &msg), 0);
    assert_int_equal(lsn, 42);
    assert_int_equal(l.count, 1000);
    assert_int_equal(l.mismatches, 0);
    memdisk_deinit(&d);
}

/* The snapshot is durable once finish returns: a crash keeps it. */
static void test_snapshot_survives_a_crash_after_finish(void **state) {
    (void)state;
    struct disk d;
    memdisk_init(&d);
    write_snapshot(&d, 5, 50);
    memdisk_crash(&d, true, 3);
    struct loaded l = {0};
    uint64_t lsn = 0;
    assert_int_equal(snapshot_load(&d, entry_check, &l, &lsn, NULL), 0);
    assert_int_equal(lsn, 5);
    assert_int_equal(l.count, 50);
    memdisk_deinit(&d);
}

/* No snapshot: start lsn 0, and the callback is never called. */
static void test_snapshot_load_without_snapshot_returns_lsn_zero(void **state) {
    (void)state;
    struct disk d;
    memdisk_init(&d);
    assert_int_equal(memdisk_poke(&d, "wal-0000000000000001.log", (const uint8_t *)"x", 1), 0);
    struct loaded l = {0};
    uint64_t lsn = 99;
    assert_int_equal(snapshot_load(&d, entry_check, &l, &lsn, NULL), 0);
    assert_int_equal(lsn, 0);
    assert_int_equal(l.count, 0);
    memdisk_deinit(&d);
}

/* A file without its trailer was never finished: skipped, the older snapshot is used. */
static void test_snapshot_without_trailer_is_ignored_and_the_older_one_loads(void **state) {
    (void)state;
    struct disk d;
    memdisk_init(&d);
    write_snapshot(&d, 10, 30);
    const uint8_t *data;
    uint64_t bytes;
    assert_int_equal(memdisk_peek(&d, "snap-000000000000000a.snap", &data, &bytes), 0);
    uint8_t *copy = malloc((size_t)bytes);
    memcpy(copy, data, (size_t)bytes);
    copy[16] = 20; /* the start lsn; without a trailer nothing else is even read */
    assert_int_equal(memdisk_poke(&d, "snap-0000000000000014.snap", copy, bytes - 20), 0);
    free(copy);
    struct loaded l = {0};
    uint64_t lsn = 0;
    assert_int_equal(snapshot_load(&d, entry_check, &l, &lsn, NULL), 0);
    assert_int_equal(lsn, 10);
    assert_int_equal(l.count, 30);
    memdisk_deinit(&d);
}

/* A damaged entry is ERR_CORRUPT naming file and offset. */
static void test_snapshot_refuses_a_damaged_entry_naming_file_and_offset(void **state) {
    (void)state;
    struct disk d;
    memdisk_init(&d);
    write_snapshot(&d, 3, 10);
    /* Entry 0 is empty (8 bytes at 32); entry 1 (13 bytes) starts at 40. */
    flip_byte(&d, "snap-0000000000000003.snap", 40 + 8 + 5);
    struct loaded l = {0};
    uint64_t lsn = 0;
    struct errmsg msg = {{0}};
    assert_int_equal(snapshot_load(&d, entry_check, &l, &lsn, &msg), ERR_CORRUPT);
    assert_non_null(strstr(msg.text, "snap-0000000000000003.snap"));
    assert_non_null(strstr(msg.text, "byte offset 40 "));
    assert_non_null(strstr(msg.text, "crc mismatch"));
    memdisk_deinit(&d);
}

/* A damaged trailer count or header is ERR_CORRUPT too. */
static void test_snapshot_refuses_a_damaged_header_or_trailer(void **state) {
    (void)state;
    struct disk d;
    memdisk_init(&d);
    write_snapshot(&d, 3, 10);
    const uint8_t *data;
    uint64_t bytes;
    assert_int_equal(memdisk_peek(&d, "snap-0000000000000003.snap", &data, &bytes), 0);
    flip_byte(&d, "snap-0000000000000003.snap", bytes - 12); /* entry count */
    struct errmsg msg = {{0}};
    uint64_t lsn;
    assert_int_equal(snapshot_load(&d, NULL, NULL, &lsn, &msg), ERR_CORRUPT);
    assert_non_null(strstr(msg.text, "trailer counts"));
    flip_byte(&d, "snap-0000000000000003.snap", bytes - 12);
    assert_int_equal(snapshot_load(&d, NULL, NULL, &lsn, &msg), 0);
    flip_byte(&d, "snap-0000000000000003.snap", 2);
    assert_int_equal(snapshot_load(&d, NULL, NULL, &lsn, &msg), ERR_CORRUPT);
    assert_non_null(strstr(msg.text, "byte offset 0 "));
    memdisk_deinit(&d);
}

/* finish removes older snapshots and leftover temporary files; load removes leftovers. */
static void test_snapshot_finish_removes_older_snapshots_and_leftovers(void **state) {
    (void)state;
    struct disk d;
    memdisk_init(&d);
    write_snapshot(&d, 10, 3);
    assert_int_equal(memdisk_poke(&d, "snap-0000000000000005.tmp", (const uint8_t *)"x", 1), 0);
    write_snapshot(&d, 20, 3);
    assert_false(memdisk_exists(&d, "snap-000000000000000a.snap"));
    assert_false(memdisk_exists(&d, "snap-0000000000000005.tmp"));
    assert_true(memdisk_exists(&d, "snap-0000000000000014.snap"));
    assert_int_equal(memdisk_poke(&d, "snap-0000000000000030.tmp", (const uint8_t *)"y", 1), 0);
    uint64_t lsn;
    assert_int_equal(snapshot_load(&d, NULL, NULL, &lsn, NULL), 0);
    assert_int_equal(lsn, 20);
    assert_false(memdisk_exists(&d, "snap-0000000000000030.tmp"));
    memdisk_deinit(&d);
}

/* A full disk fails the writer with ERR_NOSPACE; abort leaves no file, the old snapshot
 * still loads. */
static void test_snapshot_full_disk_fails_cleanly_and_keeps_the_old_snapshot(void **state) {
    (void)state;
    struct disk d;
    memdisk_init(&d);
    write_snapshot(&d, 10, 20);
    memdisk_set_capacity(&d, memdisk_used_bytes(&d) + 1000);
    struct snapshot_writer *w = NULL;
    struct errmsg msg = {{0}};
    assert_int_equal(snapshot_writer_open(&d, 30, &w, &msg), 0);
    static uint8_t big[ENTRY_BYTES_MAX];
    int rc = 0;
    for (int i = 0; i < 10 && rc == 0; i++) rc = snapshot_writer_add(w, big, 60000, &msg);
    assert_int_equal(rc, ERR_NOSPACE);
    assert_int_equal(snapshot_writer_add(w, big, 1, &msg), ERR_NOSPACE); /* stays failed */
    snapshot_writer_abort(w);
    assert_false(memdisk_exists(&d, "snap-000000000000001e.tmp"));
    struct loaded l = {0};
    uint64_t lsn;
    assert_int_equal(snapshot_load(&d, entry_check, &l, &lsn, &msg), 0);
    assert_int_equal(lsn, 10);
    assert_int_equal(l.count, 20);
    /* finish on a failed writer reports the error and removes the temporary file. */
    assert_int_equal(snapshot_writer_open(&d, 31, &w, &msg), 0);
    snapshot_writer_add(w, big, 60000, &msg);
    assert_int_equal(snapshot_writer_finish(w, &msg), ERR_NOSPACE);
    assert_false(memdisk_exists(&d, "snap-000000000000001f.tmp"));
    memdisk_deinit(&d);
}

/* Limit: an entry over SNAPSHOT_ENTRY_BYTES_MAX is refused before anything is written. */
static void test_snapshot_refuses_an_entry_over_the_limit(void **state) {
    (void)state;
    struct disk d;
    memdisk_init(&d);
    struct snapshot_writer *w = NULL;
    struct errmsg msg;
    assert_int_equal(snapshot_writer_open(&d, 1, &w, &msg), 0);
    uint8_t one = 1;
    assert_int_equal(snapshot_writer_add(w, &one, (size_t)SNAPSHOT_ENTRY_BYTES_MAX + 1, &msg),
                     ERR_LIMIT);
    assert_int_equal(snapshot_writer_add(w, &one, 1, &msg), 0);
    assert_int_equal(snapshot_writer_finish(w, &msg), 0);
    memdisk_deinit(&d);
}

/* memdisk: a crash keeps synced data and durable directory entries only. */
static void test_memdisk_crash_keeps_only_synced_data_and_entries(void **state) {
    (void)state;
    struct disk d;
    memdisk_init(&d);
    struct disk_file *f = NULL;
    struct errmsg msg;
    assert_int_equal(d.open(&d, "a", DISK_OPEN_WRITE | DISK_OPEN_CREATE, &f, &msg), 0);
    assert_int_equal(d.write(&d, f, 0, "hello", 5, &msg), 0);
    assert_int_equal(d.sync(&d, f, &msg), 0);
    assert_int_equal(d.sync_dir(&d, &msg), 0);
    assert_int_equal(d.write(&d, f, 5, " world", 6, &msg), 0);
    struct disk_file *g = NULL;
    assert_int_equal(d.open(&d, "b", DISK_OPEN_WRITE | DISK_OPEN_CREATE, &g, &msg), 0);
    memdisk_crash(&d, true, 4);
    char buf[16];
    size_t got = 0;
    assert_int_equal(d.read(&d, f, 0, buf, sizeof(buf), &got, &msg), ERR_IO); /* stale */
    d.close(&d, f);
    d.close(&d, g);
    assert_false(memdisk_exists(&d, "b"));
    assert_int_equal(d.open(&d, "a", DISK_OPEN_READ, &f, &msg), 0);
    assert_int_equal(d.read(&d, f, 0, buf, sizeof(buf), &got, &msg), 0);
    assert_int_equal(got, 9); /* "hello" plus a torn prefix " wor" */
    assert_memory_equal(buf, "hello wor", 9);
    d.close(&d, f);
    memdisk_fail_after(&d, 2, ERR_IO);
    assert_int_equal(d.open(&d, "a", DISK_OPEN_READ, &f, &msg), 0);
    assert_int_equal(d.read(&d, f, 0, buf, 1, &got, &msg), ERR_IO);
    assert_int_equal(d.read(&d, f, 0, buf, 1, &got, &msg), 0);
    d.close(&d, f);
    memdisk_deinit(&d);
}

/* memdisk: a rename is durable only after the directory's sync, by sync_dir or by a sync of
 * dir_file (the handle a shell's sync thread gets). */
static void test_memdisk_rename_is_durable_after_the_directory_sync(void **state) {
    (void)state;
    struct disk d;
    memdisk_init(&d);
    struct disk_file *f = NULL;
    struct errmsg msg;
    assert_int_equal(d.open(&d, "a.tmp", DISK_OPEN_WRITE | DISK_OPEN_CREATE, &f, &msg), 0);
    assert_int_equal(d.sync(&d, f, &msg), 0);
    d.close(&d, f);
    assert_int_equal(d.sync_dir(&d, &msg), 0);
    assert_int_equal(d.rename(&d, "a.tmp", "a", &msg), 0);
    assert_true(memdisk_exists(&d, "a"));
    memdisk_crash(&d, false, 1);
    assert_true(memdisk_exists(&d, "a.tmp")); /* the rename was lost */
    assert_false(memdisk_exists(&d, "a"));
    assert_int_equal(d.rename(&d, "a.tmp", "a", &msg), 0);
    assert_int_equal(d.sync(&d, d.dir_file(&d), &msg), 0);
    memdisk_crash(&d, false, 2);
    assert_true(memdisk_exists(&d, "a"));
    assert_false(memdisk_exists(&d, "a.tmp"));
    memdisk_deinit(&d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_snapshot_round_trips_every_entry),
        cmocka_unit_test(test_snapshot_survives_a_crash_after_finish),
        cmocka_unit_test(test_snapshot_load_without_snapshot_returns_lsn_zero),
        cmocka_unit_test(test_snapshot_without_trailer_is_ignored_and_the_older_one_loads),
        cmocka_unit_test(test_snapshot_refuses_a_damaged_entry_naming_file_and_offset),
        cmocka_unit_test(test_snapshot_refuses_a_damaged_header_or_trailer),
        cmocka_unit_test(test_snapshot_finish_removes_older_snapshots_and_leftovers),
        cmocka_unit_test(test_snapshot_full_disk_fails_cleanly_and_keeps_the_old_snapshot),
        cmocka_unit_test(test_snapshot_refuses_an_entry_over_the_limit),
        cmocka_unit_test(test_memdisk_crash_keeps_only_synced_data_and_entries),
        cmocka_unit_test(test_memdisk_rename_is_durable_after_the_directory_sync),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
