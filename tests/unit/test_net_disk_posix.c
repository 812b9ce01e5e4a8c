/* Unit tests of the POSIX disk (src/net/disk_posix.c) in a temporary directory under /tmp,
 * and of the WAL and snapshots on top of it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/disk_posix.h"
#include "storage/snapshot.h"
#include "storage/wal.h"

struct fixture {
    char root[64];
    char dir[128];
    struct disk disk;
};

static void remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    if (d == NULL) return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (unlink(path) != 0) remove_tree(path);
    }
    closedir(d);
    rmdir(dir);
}

static int setup(void **state) {
    struct fixture *fx = calloc(1, sizeof(*fx));
    snprintf(fx->root, sizeof(fx->root), "/tmp/capkv-test-disk-XXXXXX");
    if (mkdtemp(fx->root) == NULL) return -1;
    /* A directory that does not exist yet: init creates it. */
    snprintf(fx->dir, sizeof(fx->dir), "%s/data", fx->root);
    struct errmsg msg;
    if (disk_posix_init(&fx->disk, fx->dir, &msg) != 0) return -1;
    *state = fx;
    return 0;
}

static int teardown(void **state) {
    struct fixture *fx = *state;
    disk_posix_deinit(&fx->disk);
    remove_tree(fx->dir);
    remove_tree(fx->root);
    free(fx);
    return 0;
}

static void collect_name(void *ctx, const char *name) {
    char *names = ctx;
    strcat(names, name);
    strcat(names, ";");
}

/* Writes land where asked, reads stop at the end of file, size and truncate agree. */
static void test_disk_posix_reads_back_what_it_wrote(void **state) {
    struct fixture *fx = *state;
    struct disk *d = &fx->disk;
    struct disk_file *f = NULL;
    struct errmsg msg;
    assert_int_equal(d->open(d, "f", DISK_OPEN_WRITE | DISK_OPEN_CREATE, &f, &msg), 0);
    assert_int_equal(d->write(d, f, 0, "hello", 5, &msg), 0);
    assert_int_equal(d->write(d, f, 10, "world", 5, &msg), 0);
    assert_int_equal(d->sync(d, f, &msg), 0);
    uint64_t size = 0;
    assert_int_equal(d->size(d, f, &size, &msg), 0);
    assert_int_equal(size, 15);
    char buf[32];
    size_t got = 0;
    assert_int_equal(d->read(d, f, 0, buf, sizeof(buf), &got, &msg), 0);
    assert_int_equal(got, 15);
    assert_memory_equal(buf, "hello\0\0\0\0\0world", 15);
    assert_int_equal(d->allocate(d, f, 0, 4096, &msg), 0);
    assert_int_equal(d->size(d, f, &size, &msg), 0);
    assert_int_equal(size, 4096);
    assert_int_equal(d->read(d, f, 4000, buf, sizeof(buf), &got, &msg), 0);
    assert_int_equal(got, 32);
    assert_int_equal(buf[0], 0);
    assert_int_equal(d->truncate(d, f, 3, &msg), 0);
    assert_int_equal(d->read(d, f, 0, buf, sizeof(buf), &got, &msg), 0);
    assert_int_equal(got, 3);
    d->close(d, f);
}

/* rename replaces the target, list shows regular files, remove deletes; a missing file is
 * ERR_NOTFOUND with the path in the message. */
static void test_disk_posix_renames_lists_and_removes(void **state) {
    struct fixture *fx = *state;
    struct disk *d = &fx->disk;
    struct disk_file *f = NULL;
    struct errmsg msg = {{0}};
    assert_int_equal(d->open(d, "a.tmp", DISK_OPEN_WRITE | DISK_OPEN_CREATE, &f, &msg), 0);
    assert_int_equal(d->write(d, f, 0, "new", 3, &msg), 0);
    d->close(d, f);
    assert_int_equal(d->open(d, "a", DISK_OPEN_WRITE | DISK_OPEN_CREATE, &f, &msg), 0);
    assert_int_equal(d->write(d, f, 0, "old", 3, &msg), 0);
    d->close(d, f);
    assert_int_equal(d->rename(d, "a.tmp", "a", &msg), 0);
    assert_int_equal(d->sync_dir(d, &msg), 0);
    assert_int_equal(d->sync(d, d->dir_file(d), &msg), 0); /* the directory, as a file */
    char names[256] = "";
    assert_int_equal(d->list(d, collect_name, names, &msg), 0);
    assert_string_equal(names, "a;");
    assert_int_equal(d->open(d, "a", DISK_OPEN_READ, &f, &msg), 0);
    char buf[8];
    size_t got;
    assert_int_equal(d->read(d, f, 0, buf, sizeof(buf), &got, &msg), 0);
    assert_int_equal(got, 3);
    assert_memory_equal(buf, "new", 3);
    d->close(d, f);
    assert_int_equal(d->remove(d, "a", &msg), 0);
    assert_int_equal(d->open(d, "a", DISK_OPEN_READ, &f, &msg), ERR_NOTFOUND);
    assert_null(f);
    assert_non_null(strstr(msg.text, fx->dir));
    assert_non_null(strstr(msg.text, "No such file"));
    assert_int_equal(d->remove(d, "a", &msg), ERR_NOTFOUND);
    assert_int_equal(d->open(d, "../x", DISK_OPEN_READ, &f, &msg), ERR_INVALID);
    assert_int_equal(d->open(d, "..", DISK_OPEN_READ, &f, &msg), ERR_INVALID);
}

/* A path that cannot be a directory fails init with the path and the reason. */
static void test_disk_posix_init_reports_an_unusable_directory(void **state) {
    struct fixture *fx = *state;
    char path[256];
    snprintf(path, sizeof(path), "%s/missing/deeper", fx->root);
    struct disk d2;
    struct errmsg msg = {{0}};
    assert_int_equal(disk_posix_init(&d2, path, &msg), ERR_NOTFOUND);
    assert_non_null(strstr(msg.text, path));
}

static int count_records(void *ctx, uint64_t lsn, const uint8_t *p, size_t bytes) {
    uint64_t *count = ctx;
    (void)p;
    (void)bytes;
    assert_int_equal(lsn, *count + 1);
    (*count)++;
    return 0;
}

/* The WAL and snapshots work end to end on real files, across segment rotation. */
static void test_disk_posix_carries_a_wal_and_a_snapshot(void **state) {
    struct fixture *fx = *state;
    struct disk *d = &fx->disk;
    uint64_t count = 0;
    struct wal_open_args args = {
        .disk = d, .options = {.segment_bytes = 4096}, .replay = count_records, .ctx = &count};
    struct wal *w = NULL;
    struct errmsg msg;
    assert_int_equal(wal_open(&args, &w, &msg), 0);
    uint8_t payload[100] = {1, 2, 3};
    for (int i = 0; i < 100; i++) {
        assert_int_equal(wal_reserve(w, sizeof(payload), &msg), 0);
        wal_append(w, payload, sizeof(payload));
    }
    assert_int_equal(wal_flush(w, &msg), 0);
    struct disk_file *f;
    uint64_t lsn;
    assert_true(wal_sync_begin(w, &f, &lsn));
    assert_int_equal(d->sync(d, f, &msg), 0);
    wal_sync_end(w, lsn);
    wal_close(w);
    assert_int_equal(wal_open(&args, &w, &msg), 0);
    assert_int_equal(count, 100);
    wal_close(w);
    struct snapshot_writer *sw = NULL;
    assert_int_equal(snapshot_writer_open(d, 101, &sw, &msg), 0);
    assert_int_equal(snapshot_writer_add(sw, payload, sizeof(payload), &msg), 0);
    assert_int_equal(snapshot_writer_finish(sw, &msg), 0);
    uint64_t start = 0;
    assert_int_equal(snapshot_load(d, NULL, NULL, &start, &msg), 0);
    assert_int_equal(start, 101);
}

static bool file_exists(const char *dir, const char *name) {
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    return access(path, F_OK) == 0;
}

/* create_zeroed: the first segment is only allocated; the disk's thread then prepares a
 * file of written zeros, which the next call takes under the new name (and a new spare is
 * prepared); deinit removes the spare. */
static void test_disk_posix_prepares_zeroed_segments_in_the_background(void **state) {
    struct fixture *fx = *state;
    struct disk *d = &fx->disk;
    const uint64_t bytes = 3u << 20;
    struct errmsg msg;
    struct disk_file *f = NULL;
    bool written = true;
    assert_int_equal(d->create_zeroed(d, "seg-1", bytes, &f, &written, &msg), 0);
    assert_false(written);
    uint64_t size = 0;
    assert_int_equal(d->size(d, f, &size, &msg), 0);
    assert_int_equal(size, bytes);
    d->close(d, f);
    /* Bounded wait for the thread (3 MiB of zeros and their syncs). */
    for (int i = 0; i < 3000 && !d->zeroed_ready(d, bytes); i++) usleep(10000);
    assert_true(d->zeroed_ready(d, bytes));
    assert_false(d->zeroed_ready(d, bytes + 4096)); /* another size is not ready */
    /* Asking for another size dropped the spare: wait for the one of `bytes` again. */
    assert_int_equal(d->create_zeroed(d, "seg-x", bytes + 4096, &f, &written, &msg), 0);
    d->close(d, f);
    for (int i = 0; i < 3000 && !d->zeroed_ready(d, bytes + 4096); i++) usleep(10000);
    assert_int_equal(d->create_zeroed(d, "seg-2", bytes + 4096, &f, &written, &msg), 0);
    assert_true(written);
    assert_int_equal(d->size(d, f, &size, &msg), 0);
    assert_int_equal(size, bytes + 4096);
    static uint8_t data[1u << 16];
    size_t got = 0;
    for (uint64_t off = 0; off < size; off += got) {
        memset(data, 0xff, sizeof(data));
        assert_int_equal(d->read(d, f, off, data, sizeof(data), &got, &msg), 0);
        assert_true(got > 0);
        for (size_t i = 0; i < got; i++) assert_int_equal(data[i], 0);
    }
    assert_int_equal(d->write(d, f, 10, "abc", 3, &msg), 0);
    assert_int_equal(d->sync(d, f, &msg), 0);
    d->close(d, f);
    assert_true(file_exists(fx->dir, "seg-2"));
    disk_posix_deinit(d);
    assert_false(file_exists(fx->dir, "spare-segment.tmp"));
    assert_int_equal(disk_posix_init(d, fx->dir, &msg), 0); /* for teardown */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_disk_posix_reads_back_what_it_wrote, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_posix_renames_lists_and_removes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_disk_posix_init_reports_an_unusable_directory, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_disk_posix_carries_a_wal_and_a_snapshot, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_disk_posix_prepares_zeroed_segments_in_the_background,
                                        setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
