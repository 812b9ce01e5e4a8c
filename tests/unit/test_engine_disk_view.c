/*
 * Unit tests for src/engine/disk_view.c: names placed under the prefix, a listing of the
 * engine's own files only, and the one-time move of the layout before views.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "engine/disk_view.h"
#include "storage/memdisk.h"

static void dv_create(struct disk *d, const char *name, const char *text) {
    struct disk_file *f;
    struct errmsg msg;
    assert_int_equal(d->open(d, name, DISK_OPEN_WRITE | DISK_OPEN_CREATE, &f, &msg), 0);
    assert_int_equal(d->write(d, f, 0, text, strlen(text), &msg), 0);
    assert_int_equal(d->sync(d, f, &msg), 0);
    d->close(d, f);
}

static void dv_collect(void *ctx, const char *name) {
    char *all = ctx;
    strcat(all, name);
    strcat(all, ";");
}

static bool dv_exists(struct disk *d, const char *name) {
    struct disk_file *f;
    if (d->open(d, name, DISK_OPEN_READ, &f, NULL) != 0) return false;
    d->close(d, f);
    return true;
}

/* A view writes under its prefix and lists only its own files, prefix removed. */
static void test_disk_view_places_files_and_lists_only_its_own(void **state) {
    (void)state;
    struct disk base;
    memdisk_init(&base);
    struct disk_view cp;
    disk_view_init(&cp, &base, "cp-");
    dv_create(&cp.disk, "wal-1.log", "x");
    dv_create(&base, "local-wal-1.log", "y");
    dv_create(&base, "cluster.txt", "z");
    assert_true(dv_exists(&base, "cp-wal-1.log"));
    char all[256] = "";
    assert_int_equal(cp.disk.list(&cp.disk, dv_collect, all, NULL), 0);
    assert_string_equal(all, "wal-1.log;");
    struct errmsg msg;
    assert_int_equal(cp.disk.rename(&cp.disk, "wal-1.log", "wal-2.log", &msg), 0);
    assert_true(dv_exists(&base, "cp-wal-2.log"));
    assert_int_equal(cp.disk.remove(&cp.disk, "wal-2.log", &msg), 0);
    assert_false(dv_exists(&base, "cp-wal-2.log"));
    memdisk_deinit(&base);
}

/* The layout before views is moved once; other files stay; a second adopt moves nothing. */
static void test_disk_view_adopts_the_layout_before_views_once(void **state) {
    (void)state;
    struct disk base;
    memdisk_init(&base);
    dv_create(&base, "wal-0000000000000001.log", "log");
    dv_create(&base, "snap-0000000000000004.snap", "snap");
    dv_create(&base, "cluster.txt", "other");
    struct disk_view v;
    disk_view_init(&v, &base, "local-");
    uint32_t moved = 0;
    struct errmsg msg;
    assert_int_equal(disk_view_adopt(&v, &moved, &msg), 0);
    assert_int_equal(moved, 2);
    assert_true(dv_exists(&base, "local-wal-0000000000000001.log"));
    assert_true(dv_exists(&base, "local-snap-0000000000000004.snap"));
    assert_false(dv_exists(&base, "wal-0000000000000001.log"));
    assert_true(dv_exists(&base, "cluster.txt"));
    assert_int_equal(disk_view_adopt(&v, &moved, &msg), 0);
    assert_int_equal(moved, 0);
    memdisk_deinit(&base);
}

/* Old files beside the engine's own are two histories: refused, nothing moved. With the
 * marker of an adoption a crash interrupted, the rest is moved; never over a file. */
static void test_disk_view_refuses_two_histories_and_resumes_an_interrupted_adoption(void **state) {
    (void)state;
    struct disk base;
    memdisk_init(&base);
    dv_create(&base, "wal-0000000000000001.log", "old");
    dv_create(&base, "cp-wal-0000000000000009.log", "new");
    struct disk_view v;
    disk_view_init(&v, &base, "cp-");
    uint32_t moved = 0;
    struct errmsg msg;
    assert_int_equal(disk_view_adopt(&v, &moved, &msg), ERR_EXISTS);
    assert_non_null(strstr(msg.text, "wal-0000000000000001.log"));
    assert_non_null(strstr(msg.text, "cp-*"));
    assert_true(dv_exists(&base, "wal-0000000000000001.log"));
    dv_create(&base, "cp-adopting", ""); /* a crash came after the first rename */
    assert_int_equal(disk_view_adopt(&v, &moved, &msg), 0);
    assert_int_equal(moved, 1);
    assert_true(dv_exists(&base, "cp-wal-0000000000000001.log"));
    assert_false(dv_exists(&base, "cp-adopting"));
    dv_create(&base, "wal-0000000000000009.log", "again");
    dv_create(&base, "cp-adopting", "");
    assert_int_equal(disk_view_adopt(&v, &moved, &msg), ERR_EXISTS);
    assert_non_null(strstr(msg.text, "wal-0000000000000009.log and cp-wal-0000000000000009.log"));
    assert_true(dv_exists(&base, "wal-0000000000000009.log")); /* nothing renamed over */
    memdisk_deinit(&base);
}

/* An error names the file as it is in the directory: the prefix goes back in front. */
static void test_disk_view_explain_names_files_as_they_are_on_disk(void **state) {
    (void)state;
    struct disk base;
    memdisk_init(&base);
    struct disk_view v;
    disk_view_init(&v, &base, "local-");
    struct errmsg msg;
    snprintf(msg.text, sizeof(msg.text),
             "wal-0000000000000001.log: corrupt record at byte offset 96; snap-00ff.snap too");
    disk_view_explain(&v, &msg);
    assert_string_equal(msg.text, "local-wal-0000000000000001.log: corrupt record at byte "
                                  "offset 96; local-snap-00ff.snap too");
    disk_view_explain(&v, &msg); /* names already prefixed are left alone */
    assert_non_null(strstr(msg.text, " local-snap-00ff.snap"));
    assert_null(strstr(msg.text, "local-local-"));
    memdisk_deinit(&base);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_disk_view_places_files_and_lists_only_its_own),
        cmocka_unit_test(test_disk_view_adopts_the_layout_before_views_once),
        cmocka_unit_test(test_disk_view_refuses_two_histories_and_resumes_an_interrupted_adoption),
        cmocka_unit_test(test_disk_view_explain_names_files_as_they_are_on_disk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
