/* Unit tests of durable Raft storage (src/storage/raftstore.c) on the in-memory disk. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/prng.h"
#include "storage/memdisk.h"
#include "storage/raftstore.h"

#define SEG_BYTES 4096u
#define MODEL_LOG_MAX 512
#define MODEL_STATES_MAX 64
#define ENTRY_DATA_MAX 120
#define RANDOM_SEEDS 300
#define RANDOM_OPS 100

static const struct raftstore_options options = {.segment_bytes = SEG_BYTES};

/* Entry data is a function of (index, term), so a recovered entry can be checked alone. */
static uint32_t data_bytes_of(uint64_t index, uint64_t term) {
    return (uint32_t)((index * 7 + term * 13) % ENTRY_DATA_MAX);
}

static uint8_t data_byte_of(uint64_t index, uint64_t term, size_t i) {
    return (uint8_t)(index * 31 + term * 5 + i);
}

static uint8_t entry_data[MODEL_LOG_MAX][ENTRY_DATA_MAX];

static struct raft_entry make_entry(uint64_t index, uint64_t term, size_t slot) {
    uint32_t n = data_bytes_of(index, term);
    for (size_t i = 0; i < n; i++) entry_data[slot][i] = data_byte_of(index, term, i);
    return (struct raft_entry){.term = term,
                               .index = index,
                               .type = RAFT_ENTRY_NORMAL,
                               .data_bytes = n,
                               .data = n ? entry_data[slot] : NULL};
}

static void check_entry(const struct raft_entry *e, uint64_t index, uint64_t term) {
    assert_int_equal(e->index, index);
    assert_int_equal(e->term, term);
    assert_int_equal(e->type, RAFT_ENTRY_NORMAL);
    assert_int_equal(e->data_bytes, data_bytes_of(index, term));
    for (size_t i = 0; i < e->data_bytes; i++) {
        assert_int_equal(e->data[i], data_byte_of(index, term, i));
    }
}

static struct raftstore *open_ok(struct disk *d, struct raftstore_recovered *rec) {
    struct raftstore *s = NULL;
    struct errmsg msg = {{0}};
    int rc = raftstore_open(d, &options, &s, rec, &msg);
    if (rc != 0) fail_msg("open: %s: %s", err_name(rc), msg.text);
    return s;
}

/* Appends entries first..last with term, as one persist (reserve, then write). */
static void append_range(struct raftstore *s, uint64_t first, uint64_t last, uint64_t term) {
    struct raft_entry entries[64];
    uint64_t bytes = 0;
    size_t n = 0;
    for (uint64_t i = first; i <= last; i++, n++) {
        assert_true(n < 64);
        entries[n] = make_entry(i, term, n);
        bytes += entries[n].data_bytes;
    }
    struct errmsg msg;
    assert_int_equal(raftstore_reserve(s, n, bytes, &msg), 0);
    raftstore_append(s, entries, n);
}

static void save_hs(struct raftstore *s, uint64_t term, uint32_t vote) {
    struct errmsg msg;
    assert_int_equal(raftstore_reserve(s, 0, 0, &msg), 0);
    raftstore_save_hard_state(s, &(struct raft_hard_state){.term = term, .vote = vote});
}

static void sync_ok(struct raftstore *s) {
    struct errmsg msg = {{0}};
    int rc = raftstore_sync(s, &msg);
    if (rc != 0) fail_msg("sync: %s", msg.text);
}

static struct raft_snapshot_meta make_meta(uint64_t index, uint64_t term, const uint8_t *data,
                                           uint64_t bytes) {
    struct raft_snapshot_meta m = {.index = index, .term = term, .data = data, .data_bytes = bytes};
    m.config.count = 2;
    m.config.servers[0] = (struct raft_server){.id = 1, .voter = true};
    m.config.servers[1] = (struct raft_server){.id = 2, .voter = false};
    return m;
}

/* Raft §5.2/§5.3: the hard state and the log survive a restart. */
static void test_raftstore_reopen_returns_synced_hard_state_and_entries(void **state) {
    (void)state;
    struct disk d;
    memdisk_init(&d);
    struct raftstore_recovered rec;
    struct raftstore *s = open_ok(&d, &rec);
    assert_int_equal(rec.hard_state.term, 0);
    assert_int_equal(rec.snapshot.index, 0);
    assert_int_equal(rec.entry_count, 0);
    save_hs(s, 3, 2);
    append_range(s, 1, 10, 3);
    sync_ok(s);
    raftstore_close(s);
    s = open_ok(&d, &rec);
    assert_int_equal(rec.hard_state.term, 3);
    assert_int_equal(rec.hard_state.vote, 2);
    assert_int_equal(rec.entry_count, 10);
    for (size_t i = 0; i < 10; i++) check_entry(&rec.entries[i], i + 1, 3);
    assert_int_equal(raftstore_last_index(s), 10);
    raftstore_close(s);
    memdisk_deinit(&d);
}

/* Raft §5.3: a conflicting suffix is deleted and replaced, also on disk. */
static void test_raftstore_truncate_then_append_replaces_the_suffix_across_reopen(void **st) {
    (void)st;
    struct disk d;
    memdisk_init(&d);
    struct raftstore_recovered rec;
    struct raftstore *s = open_ok(&d, &rec);
    append_range(s, 1, 8, 1);
    sync_ok(s);
    struct errmsg msg;
    assert_int_equal(raftstore_reserve(s, 0, 0, &msg), 0);
    raftstore_truncate(s, 5);
    append_range(s, 5, 6, 2);
    append_range(s, 3, 4, 3); /* an append below the last index replaces too */
    sync_ok(s);
    raftstore_close(s);
    s = open_ok(&d, &rec);
    assert_int_equal(rec.entry_count, 4);
    check_entry(&rec.entries[0], 1, 1);
    check_entry(&rec.entries[1], 2, 1);
    check_entry(&rec.entries[2], 3, 3);
    check_entry(&rec.entries[3], 4, 3);
    raftstore_close(s);
    memdisk_deinit(&d);
}

/* raft.h contract (1)-(2): what was synced survives a crash; what was not may vanish. */
static void test_raftstore_crash_loses_unsynced_writes_but_never_synced_ones(void **state) {
    (void)state;
    struct disk d;
    memdisk_init(&d);
    struct raftstore_recovered rec;
    struct raftstore *s = open_ok(&d, &rec);
    save_hs(s, 1, 1);
    append_range(s, 1, 5, 1);
    sync_ok(s);
    uint64_t durable = raftstore_durable_lsn(s);
    save_hs(s, 2, 0);
    append_range(s, 6, 9, 2);
    struct errmsg msg;
    assert_int_equal(raftstore_flush(s, &msg), 0); /* written, not durable */
    assert_true(raftstore_last_lsn(s) > durable);
    assert_int_equal(raftstore_durable_lsn(s), durable);
    uint64_t index = 0;
    uint64_t term = 0;
    raftstore_durable_entry(s, &index, &term);
    assert_int_equal(index, 5);
    assert_int_equal(term, 1);
    memdisk_crash(&d, false, 0);
    raftstore_close(s);
    s = open_ok(&d, &rec);
    assert_int_equal(rec.hard_state.term, 1);
    assert_int_equal(rec.hard_state.vote, 1);
    assert_int_equal(rec.entry_count, 5);
    raftstore_close(s);
    memdisk_deinit(&d);
}

static void count_warning(void *ctx, const char *text) {
    (void)text;
    (*(int *)ctx)++;
}

/* A torn last write is cut at open: the store keeps the synced prefix and goes on. */
static void test_raftstore_torn_tail_is_cut_and_writing_continues(void **state) {
    (void)state;
    struct disk d;
    memdisk_init(&d);
    struct raftstore_recovered rec;
    struct raftstore *s = open_ok(&d, &rec);
    append_range(s, 1, 3, 1);
    sync_ok(s);
    append_range(s, 4, 12, 1);
    struct errmsg msg;
    assert_int_equal(raftstore_flush(s, &msg), 0);
    memdisk_crash(&d, true, 200); /* keeps 200 bytes of the unsynced write */
    raftstore_close(s);
    int warnings = 0;
    struct raftstore_options o = {
        .segment_bytes = SEG_BYTES, .warn = count_warning, .warn_ctx = &warnings};
    assert_int_equal(raftstore_open(&d, &o, &s, &rec, &msg), 0);
    assert_int_equal(warnings, 1);
    assert_int_equal(rec.entry_count, 3);
    append_range(s, 4, 5, 2);
    sync_ok(s);
    raftstore_close(s);
    s = open_ok(&d, &rec);
    assert_int_equal(rec.entry_count, 5);
    check_entry(&rec.entries[4], 5, 2);
    raftstore_close(s);
    memdisk_deinit(&d);
}

/* Group commit: positions written while a sync is in flight are not durable until theirs. */
static void test_raftstore_group_commit_halves_move_the_durable_position(void **state) {
    (void)state;
    struct disk d;
    memdisk_init(&d);
    struct raftstore_recovered rec;
    struct raftstore *s = open_ok(&d, &rec);
    struct errmsg msg;
    append_range(s, 1, 2, 1);
    uint64_t first = raftstore_last_lsn(s);
    assert_int_equal(raftstore_flush(s, &msg), 0);
    struct disk_file *file = NULL;
    uint64_t token = 0;
    assert_true(raftstore_sync_begin(s, &file, &token));
    assert_false(raftstore_sync_begin(s, &file, &token)); /* one at a time */
    append_range(s, 3, 4, 1);                             /* goes on while the sync runs */
    uint64_t second = raftstore_last_lsn(s);
    assert_true(second > first);
    assert_int_equal(raftstore_flush(s, &msg), 0);
    assert_int_equal(d.sync(&d, file, &msg), 0);
    raftstore_sync_end(s, token, 0);
    assert_true(raftstore_durable_lsn(s) >= first);
    assert_true(raftstore_durable_lsn(s) < second);
    uint64_t index = 0;
    uint64_t term = 0;
    raftstore_durable_entry(s, &index, &term);
    assert_int_equal(index, 2);
    assert_true(raftstore_sync_begin(s, &file, &token));
    assert_int_equal(d.sync(&d, file, &msg), 0);
    raftstore_sync_end(s, token, 0);
    assert_int_equal(raftstore_durable_lsn(s), second);
    raftstore_durable_entry(s, &index, &term);
    assert_int_equal(index, 4);
    /* A failed sync is fatal: the position freezes and calls refuse. */
    append_range(s, 5, 5, 1);
    assert_int_equal(raftstore_flush(s, &msg), 0);
    assert_true(raftstore_sync_begin(s, &file, &token));
    raftstore_sync_end(s, token, ERR_IO);
    assert_int_equal(raftstore_durable_lsn(s), second);
    assert_int_equal(raftstore_reserve(s, 1, 0, &msg), ERR_IO);
    raftstore_close(s);
    memdisk_deinit(&d);
}

static void count_wal_segment(void *ctx, const char *name) {
    if (strncmp(name, "wal-", 4) == 0 && strstr(name, ".log") != NULL) (*(int *)ctx)++;
}

static int wal_segment_count(struct disk *d) {
    int count = 0;
    assert_int_equal(d->list(d, count_wal_segment, &count, NULL), 0);
    return count;
}

/* Raft §7: a snapshot replaces the log prefix it covers; later entries stay. */
static void test_raftstore_snapshot_compacts_the_log_and_reopens_with_later_entries(void **st) {
    (void)st;
    struct disk d;
    memdisk_init(&d);
    struct raftstore_recovered rec;
    struct raftstore *s = open_ok(&d, &rec);
    save_hs(s, 4, 1);
    for (uint64_t i = 1; i <= 200; i += 10) {
        append_range(s, i, i + 9, 4);
        sync_ok(s);
    }
    int before = wal_segment_count(&d);
    assert_true(before > 2);
    uint8_t blob[5000];
    for (size_t i = 0; i < sizeof(blob); i++) blob[i] = (uint8_t)(i * 3);
    struct raft_snapshot_meta meta = make_meta(195, 4, blob, sizeof(blob));
    struct errmsg msg = {{0}};
    int rc = raftstore_save_snapshot(s, &meta, RAFTSTORE_SNAPSHOT_TAKEN, &msg);
    if (rc != 0) fail_msg("%s", msg.text);
    assert_int_equal(wal_segment_count(&d), before); /* removed in steps, not at once */
    /* A segment a step (renamed away, then shrunk and removed once the directory's sync,
     * run as a shell's sync thread would, made the rename durable). */
    int dir_syncs = 0;
    for (bool more = true; more;) {
        int segments = wal_segment_count(&d);
        more = raftstore_collect(s, false);
        assert_true(wal_segment_count(&d) >= segments - 1);
        raftstore_collect(s, false); /* no second segment before the sync */
        assert_true(wal_segment_count(&d) >= segments - 1);
        struct disk_file *dir = NULL;
        if (raftstore_dir_sync_begin(s, &dir)) {
            raftstore_dir_sync_end(s, d.sync(&d, dir, &msg));
            dir_syncs++;
        }
    }
    assert_true(dir_syncs >= before - 1);
    assert_int_equal(wal_segment_count(&d), 1); /* 196.. were written in the newest */
    assert_int_equal(raftstore_snapshot(s)->index, 195);
    uint64_t term = 0;
    assert_false(raftstore_term_at(s, 194, &term));
    assert_true(raftstore_term_at(s, 195, &term));
    append_range(s, 201, 202, 4);
    sync_ok(s);
    raftstore_close(s);
    s = open_ok(&d, &rec);
    assert_int_equal(rec.hard_state.term, 4);
    assert_int_equal(rec.hard_state.vote, 1);
    assert_int_equal(rec.snapshot.index, 195);
    assert_int_equal(rec.snapshot.term, 4);
    assert_int_equal(rec.snapshot.config.count, 2);
    assert_false(rec.snapshot.config.servers[1].voter);
    assert_int_equal(rec.snapshot.data_bytes, sizeof(blob));
    assert_memory_equal(rec.snapshot.data, blob, sizeof(blob));
    assert_int_equal(rec.entry_count, 7);
    for (size_t i = 0; i < 7; i++) check_entry(&rec.entries[i], 196 + i, 4);
    raftstore_close(s);
    memdisk_deinit(&d);
}

/* Raft §7: a snapshot received from the leader replaces the whole log. */
static void test_raftstore_restored_snapshot_discards_the_whole_log(void **state) {
    (void)state;
    struct disk d;
    memdisk_init(&d);
    struct raftstore_recovered rec;
    struct raftstore *s = open_ok(&d, &rec);
    save_hs(s, 2, 0);
    append_range(s, 1, 30, 2);
    sync_ok(s);
    uint8_t blob[10] = "0123456789";
    struct raft_snapshot_meta meta = make_meta(20, 5, blob, sizeof(blob));
    struct errmsg msg;
    assert_int_equal(raftstore_save_snapshot(s, &meta, RAFTSTORE_SNAPSHOT_RESTORED, &msg), 0);
    assert_int_equal(raftstore_last_index(s), 20);
    append_range(s, 21, 22, 5);
    sync_ok(s);
    raftstore_close(s);
    s = open_ok(&d, &rec);
    assert_int_equal(rec.snapshot.index, 20);
    assert_int_equal(rec.snapshot.term, 5);
    assert_int_equal(rec.hard_state.term, 2);
    assert_int_equal(rec.entry_count, 2);
    check_entry(&rec.entries[0], 21, 5);
    check_entry(&rec.entries[1], 22, 5);
    raftstore_close(s);
    memdisk_deinit(&d);
}

/* A full disk refuses at reserve, before anything is buffered; nothing synced is lost. */
static void test_raftstore_full_disk_refuses_at_reserve_and_nothing_breaks(void **state) {
    (void)state;
    struct disk d;
    memdisk_init(&d);
    struct raftstore_recovered rec;
    struct raftstore *s = open_ok(&d, &rec);
    memdisk_set_capacity(&d, memdisk_used_bytes(&d) + 64);
    struct errmsg msg;
    uint64_t last = 0;
    int rc = 0;
    for (uint64_t i = 1; i <= 400 && rc == 0; i++) {
        struct raft_entry e = make_entry(i, 1, 0);
        rc = raftstore_reserve(s, 1, e.data_bytes, &msg);
        if (rc == 0) {
            raftstore_append(s, &e, 1);
            sync_ok(s);
            last = i;
        }
    }
    assert_int_equal(rc, ERR_NOSPACE);
    assert_true(last > 0);
    assert_int_equal(raftstore_last_index(s), last);
    uint8_t blob[64] = {0};
    struct raft_snapshot_meta meta = make_meta(last, 1, blob, sizeof(blob));
    assert_int_equal(raftstore_save_snapshot(s, &meta, RAFTSTORE_SNAPSHOT_TAKEN, &msg),
                     ERR_NOSPACE);
    assert_int_equal(raftstore_snapshot(s)->index, 0);
    memdisk_set_capacity(&d, MEMDISK_CAPACITY_UNLIMITED);
    append_range(s, last + 1, last + 1, 1); /* retrying works once there is space */
    sync_ok(s);
    raftstore_close(s);
    s = open_ok(&d, &rec);
    assert_int_equal(rec.entry_count, last + 1);
    raftstore_close(s);
    memdisk_deinit(&d);
}

static void test_raftstore_reserve_refuses_over_the_batch_limit(void **state) {
    (void)state;
    struct disk d;
    memdisk_init(&d);
    struct raftstore_recovered rec;
    struct raftstore *s = open_ok(&d, &rec);
    struct errmsg msg;
    assert_int_equal(raftstore_reserve(s, 1, RAFTSTORE_BATCH_BYTES_MAX, &msg), ERR_LIMIT);
    assert_int_equal(raftstore_reserve(s, RAFTSTORE_ENTRIES_MAX + 1, 0, &msg), ERR_LIMIT);
    append_range(s, 1, 1, 1); /* still usable */
    sync_ok(s);
    raftstore_close(s);
    memdisk_deinit(&d);
}

/* A reservation is a promise: it still holds after another reserve and across a flush. */
static void test_raftstore_reservations_add_up_and_outlive_a_flush(void **state) {
    (void)state;
    struct disk d;
    memdisk_init(&d);
    struct raftstore_recovered rec;
    struct raftstore *s = open_ok(&d, &rec);
    struct errmsg msg;
    struct raft_entry e1 = make_entry(1, 1, 0);
    struct raft_entry e2 = make_entry(2, 1, 1);
    assert_int_equal(raftstore_reserve(s, 1, e1.data_bytes, &msg), 0);
    assert_int_equal(raftstore_reserve(s, 1, e2.data_bytes, &msg), 0);
    raftstore_append(s, &e1, 1);
    assert_int_equal(raftstore_flush(s, &msg), 0);
    raftstore_append(s, &e2, 1);
    sync_ok(s);
    raftstore_close(s);
    s = open_ok(&d, &rec);
    assert_int_equal(rec.entry_count, 2);
    check_entry(&rec.entries[1], 2, 1);
    raftstore_close(s);
    memdisk_deinit(&d);
}

static void flip_byte(struct disk *d, const char *name, uint64_t offset) {
    const uint8_t *data = NULL;
    uint64_t bytes = 0;
    assert_int_equal(memdisk_peek(d, name, &data, &bytes), 0);
    assert_true(offset < bytes);
    uint8_t *copy = malloc(bytes);
    memcpy(copy, data, bytes);
    copy[offset] ^= 0x40;
    assert_int_equal(memdisk_poke(d, name, copy, bytes), 0);
    free(copy);
}

/* Damage before valid data is corruption, never a torn tail: refuse, naming file+offset. */
static void test_raftstore_corruption_in_the_middle_refuses_naming_file_and_offset(void **st) {
    (void)st;
    struct disk d;
    memdisk_init(&d);
    struct raftstore_recovered rec;
    struct raftstore *s = open_ok(&d, &rec);
    for (uint64_t i = 1; i <= 6; i++) {
        append_range(s, i, i, 1);
        sync_ok(s);
    }
    raftstore_close(s);
    flip_byte(&d, "wal-0000000000000001.log", 32 + 20); /* inside the first record */
    struct errmsg msg = {{0}};
    assert_int_equal(raftstore_open(&d, &options, &s, &rec, &msg), ERR_CORRUPT);
    assert_null(s);
    assert_non_null(strstr(msg.text, "wal-0000000000000001.log"));
    assert_non_null(strstr(msg.text, "offset 32"));
    memdisk_deinit(&d);
}

static void test_raftstore_damaged_snapshot_refuses(void **state) {
    (void)state;
    struct disk d;
    memdisk_init(&d);
    struct raftstore_recovered rec;
    struct raftstore *s = open_ok(&d, &rec);
    append_range(s, 1, 5, 1);
    uint8_t blob[100] = {1};
    struct raft_snapshot_meta meta = make_meta(5, 1, blob, sizeof(blob));
    struct errmsg msg = {{0}};
    assert_int_equal(raftstore_save_snapshot(s, &meta, RAFTSTORE_SNAPSHOT_TAKEN, &msg), 0);
    raftstore_close(s);
    flip_byte(&d, "snap-0000000000000002.snap", 60);
    assert_int_equal(raftstore_open(&d, &options, &s, &rec, &msg), ERR_CORRUPT);
    assert_non_null(strstr(msg.text, "snap-0000000000000002.snap"));
    memdisk_deinit(&d);
}

struct data_files {
    int snap;
    int tmp;
};

static void count_data_file(void *ctx, const char *name) {
    struct data_files *f = ctx;
    if (strncmp(name, "snapdata-", 9) != 0) return;
    if (strstr(name, ".snap") != NULL) f->snap++;
    if (strstr(name, ".tmp") != NULL) f->tmp++;
}

static struct data_files data_files_of(struct disk *d) {
    struct data_files f = {0};
    d->list(d, count_data_file, &f, NULL);
    return f;
}

/* Takes meta as a streamed snapshot: its blob in random pieces, the data file synced as a
 * shell would (disk->sync on the sealed file), then committed. */
static int stream_snapshot(struct raftstore *s, const struct raft_snapshot_meta *meta,
                           struct prng *prng, struct errmsg *msg) {
    int rc = raftstore_stream_begin(s, msg);
    for (uint64_t off = 0; rc == 0 && off < meta->data_bytes;) {
        uint64_t n = 1 + prng_range(prng, 0, 700);
        if (n > meta->data_bytes - off) n = meta->data_bytes - off;
        rc = raftstore_stream_add(s, meta->data + off, (size_t)n, msg);
        off += n;
    }
    struct disk_file *file = NULL;
    if (rc == 0) rc = raftstore_stream_seal(s, &file, msg);
    if (rc == 0) rc = raftstore_disk(s)->sync(raftstore_disk(s), file, msg);
    if (rc == 0) rc = raftstore_stream_commit(s, meta, msg);
    if (rc == 0) raftstore_collect(s, prng_range(prng, 0, 2) == 0); /* some left for a crash */
    if (rc != 0) raftstore_stream_abort(s);
    return rc;
}

/* A streamed snapshot: pieces written while the log goes on, synced apart, committed; it
 * compacts and reopens like a whole one, its blob read from its data file; the blob can be
 * dropped from memory and read again; an unfinished stream leaves the older snapshot and
 * no file behind. */
static void test_raftstore_streamed_snapshot_commits_reopens_and_leaves_no_garbage(void **st) {
    (void)st;
    struct disk d;
    memdisk_init(&d);
    struct raftstore_recovered rec;
    struct raftstore *s = open_ok(&d, &rec);
    save_hs(s, 3, 2);
    append_range(s, 1, 40, 3);
    sync_ok(s);
    uint8_t blob[9000];
    for (size_t i = 0; i < sizeof(blob); i++) blob[i] = (uint8_t)(i * 7 + 1);
    struct errmsg msg = {{0}};
    assert_int_equal(raftstore_stream_begin(s, &msg), 0);
    assert_true(raftstore_stream_active(s));
    assert_int_equal(raftstore_stream_add(s, blob, 4000, &msg), 0);
    append_range(s, 41, 50, 3); /* the log goes on meanwhile */
    sync_ok(s);
    assert_int_equal(raftstore_stream_add(s, blob + 4000, sizeof(blob) - 4000, &msg), 0);
    assert_int_equal(raftstore_stream_bytes(s), sizeof(blob));
    struct disk_file *file = NULL;
    assert_int_equal(raftstore_stream_seal(s, &file, &msg), 0);
    assert_int_equal(d.sync(&d, file, &msg), 0);
    struct raft_snapshot_meta meta = make_meta(45, 3, NULL, 0);
    int rc = raftstore_stream_commit(s, &meta, &msg);
    if (rc != 0) fail_msg("commit: %s", msg.text);
    assert_false(raftstore_stream_active(s));
    const struct raft_snapshot_meta *now = raftstore_snapshot(s);
    assert_int_equal(now->index, 45);
    assert_int_equal(now->data_bytes, sizeof(blob));
    assert_null(now->data); /* never whole in memory... */
    assert_int_equal(raftstore_snapshot_load(s, &msg), 0);
    assert_memory_equal(raftstore_snapshot(s)->data, blob, sizeof(blob)); /* ...until asked */
    raftstore_snapshot_drop(s);
    assert_null(raftstore_snapshot(s)->data);
    raftstore_close(s);
    s = open_ok(&d, &rec);
    assert_int_equal(rec.snapshot.index, 45);
    assert_int_equal(rec.snapshot.data_bytes, sizeof(blob));
    assert_memory_equal(rec.snapshot.data, blob, sizeof(blob));
    assert_int_equal(rec.entry_count, 5);
    /* An unfinished stream, then a crash: the committed snapshot stays, its file goes. */
    assert_int_equal(raftstore_stream_begin(s, &msg), 0);
    assert_int_equal(raftstore_stream_add(s, blob, 100, &msg), 0);
    memdisk_crash(&d, false, 1);
    raftstore_close(s);
    s = open_ok(&d, &rec);
    assert_int_equal(rec.snapshot.index, 45);
    assert_memory_equal(rec.snapshot.data, blob, sizeof(blob));
    struct data_files f = data_files_of(&d);
    assert_int_equal(f.snap, 1);
    assert_int_equal(f.tmp, 0);
    /* A whole snapshot after it: the streamed one's data file goes with it. */
    struct raft_snapshot_meta whole = make_meta(48, 3, blob, 10);
    assert_int_equal(raftstore_save_snapshot(s, &whole, RAFTSTORE_SNAPSHOT_TAKEN, &msg), 0);
    f = data_files_of(&d);
    assert_int_equal(f.snap, 1); /* garbage now, removed in steps */
    raftstore_collect(s, true);
    f = data_files_of(&d);
    assert_int_equal(f.snap + f.tmp, 0);
    raftstore_close(s);
    memdisk_deinit(&d);
}

/* A streamed snapshot committed in steps (its syncs as a shell's sync thread would run
 * them) while the log goes on: a crash after any number of steps reopens to the older
 * snapshot or the new one, with every entry synced before the crash and a vote saved
 * meanwhile; once committed, its mark lands in a batch after those entries, which the
 * reopen accepts, and the log before it is collected. */
static void test_raftstore_commit_in_steps_survives_a_crash_after_every_step(void **st) {
    (void)st;
    uint8_t blob[3000];
    for (size_t i = 0; i < sizeof(blob); i++) blob[i] = (uint8_t)(i * 5 + 3);
    for (int crash_after = 0; crash_after <= 6; crash_after++) { /* 6: 2, and then placed */
        int limit = crash_after == 6 ? 2 : crash_after;
        struct disk d;
        memdisk_init(&d);
        struct raftstore_recovered rec;
        struct raftstore *s = open_ok(&d, &rec);
        save_hs(s, 3, 2);
        append_range(s, 1, 40, 3);
        sync_ok(s);
        struct errmsg msg = {{0}};
        assert_int_equal(raftstore_stream_begin(s, &msg), 0);
        assert_int_equal(raftstore_stream_add(s, blob, sizeof(blob), &msg), 0);
        struct disk_file *file = NULL;
        assert_int_equal(raftstore_stream_seal(s, &file, &msg), 0);
        assert_int_equal(d.sync(&d, file, &msg), 0);
        struct raft_snapshot_meta meta = make_meta(30, 3, NULL, 0);
        assert_int_equal(raftstore_commit_begin(s, &meta, &msg), 0);
        uint64_t next = 41;
        int steps = 0;
        while (raftstore_commit_active(s) && steps < limit) {
            append_range(s, next, next + 1, 3); /* the log goes on, synced on its own */
            next += 2;
            if (steps == 1) save_hs(s, 4, 1);
            sync_ok(s);
            struct disk_file *f = NULL;
            if (!raftstore_commit_sync_begin(s, &f)) continue;
            assert_int_equal(raftstore_commit_sync_end(s, d.sync(&d, f, &msg), &msg), 0);
            steps++;
        }
        if (crash_after == 6) { /* the file renamed into place; the directory's sync never runs */
            sync_ok(s);
            struct disk_file *f = NULL;
            assert_true(raftstore_commit_sync_begin(s, &f));
        }
        bool committed = !raftstore_commit_active(s);
        assert_true(committed == (limit >= 3)); /* the file, the directory, the directory */
        if (committed) {
            assert_int_equal(raftstore_snapshot(s)->index, 30);
            append_range(s, next, next, 3); /* the mark goes out with this batch */
            next++;
            sync_ok(s);
            raftstore_collect(s, true);
        }
        memdisk_crash(&d, false, (uint64_t)crash_after + 1);
        raftstore_close(s);
        s = open_ok(&d, &rec);
        if (committed) assert_int_equal(rec.snapshot.index, 30);
        assert_true(rec.snapshot.index == 0 || rec.snapshot.index == 30);
        if (rec.snapshot.index == 30) {
            assert_int_equal(rec.snapshot.data_bytes, sizeof(blob));
            assert_memory_equal(rec.snapshot.data, blob, sizeof(blob));
        }
        assert_int_equal(raftstore_last_index(s), next - 1); /* every entry was synced */
        if (crash_after >= 2) assert_int_equal(rec.hard_state.term, 4);
        raftstore_close(s);
        memdisk_deinit(&d);
    }
}

/* raftstore_snapshot_read's pieces, gathered. */
struct gathered {
    uint8_t data[20000];
    size_t bytes;
};

static int gather_piece(void *ctx, const uint8_t *p, size_t n) {
    struct gathered *g = ctx;
    assert_true(g->bytes + n <= sizeof(g->data));
    memcpy(g->data + g->bytes, p, n);
    g->bytes += n;
    return 0;
}

/* Copies bytes [from, to) of the sender's open data file into the receiver. */
static void send_range(struct disk *sd, struct disk_file *file, struct raftstore *r, uint64_t from,
                       uint64_t to) {
    uint8_t piece[333];
    struct errmsg msg;
    for (uint64_t off = from; off < to;) {
        size_t n = to - off < sizeof(piece) ? (size_t)(to - off) : sizeof(piece);
        size_t got = 0;
        assert_int_equal(sd->read(sd, file, off, piece, n, &got, &msg), 0);
        assert_int_equal(got, n);
        assert_int_equal(raftstore_recv_write(r, off, piece, n, &msg), 0);
        off += n;
    }
}

/* Reopens a store whose blob is left on disk, and reads it back in pieces. */
static struct raftstore *reopen_with_blob_on_disk(struct disk *d, uint64_t index,
                                                  const uint8_t *blob, size_t bytes) {
    struct raftstore_options lazy = options;
    lazy.blob_on_disk = true;
    struct raftstore_recovered rec;
    struct raftstore *r = NULL;
    struct errmsg msg = {{0}};
    assert_int_equal(raftstore_open(d, &lazy, &r, &rec, &msg), 0);
    assert_int_equal(rec.snapshot.index, index);
    assert_int_equal(rec.snapshot.data_bytes, bytes);
    assert_null(rec.snapshot.data); /* left on disk */
    assert_int_equal(rec.entry_count, 0);
    static struct gathered g;
    g.bytes = 0;
    assert_int_equal(raftstore_snapshot_read(r, gather_piece, &g, &msg), 0);
    assert_int_equal(g.bytes, bytes);
    assert_memory_equal(g.data, blob, bytes);
    return r;
}

static void check_damaged_received_file_fails(struct disk *sd, struct raftstore *s, struct disk *rd,
                                              struct raftstore *r);

/* InstallSnapshot in chunks, at the storage level: the sender's data file is read while a
 * newer snapshot replaces it (pinned, so not collected until closed); the receiver keeps
 * the bytes across a crash (less what it distrusts), goes on, checks the file whole,
 * installs it as a restored snapshot (its log discarded) and reopens with it, the blob
 * read back in pieces; a damaged byte fails the check. */
static void test_raftstore_data_file_sent_in_chunks_survives_crashes_and_installs(void **st) {
    (void)st;
    struct disk sd, rd;
    memdisk_init(&sd);
    memdisk_init(&rd);
    struct raftstore_recovered rec;
    struct raftstore *s = open_ok(&sd, &rec);
    struct raftstore *r = open_ok(&rd, &rec);
    save_hs(s, 3, 1);
    append_range(s, 1, 60, 3);
    sync_ok(s);
    save_hs(r, 2, 1);
    append_range(r, 1, 10, 2); /* the receiver's log, replaced by the snapshot */
    sync_ok(r);
    static uint8_t blob[12000];
    for (size_t i = 0; i < sizeof(blob); i++) blob[i] = (uint8_t)(i * 13 + 5);
    struct prng prng;
    prng_init(&prng, 7);
    struct raft_snapshot_meta meta = make_meta(50, 3, blob, sizeof(blob));
    struct errmsg msg = {{0}};
    assert_int_equal(stream_snapshot(s, &meta, &prng, &msg), 0);
    uint64_t id = 0, total = 0;
    struct disk_file *file = NULL;
    assert_int_equal(raftstore_data_open(s, &id, &file, &total, &msg), 0);
    /* A newer snapshot: the one being sent is garbage, but pinned. */
    struct raft_snapshot_meta newer = make_meta(55, 3, blob, 100);
    assert_int_equal(stream_snapshot(s, &newer, &prng, &msg), 0);
    raftstore_collect(s, true);
    assert_true(raftstore_collect_pending(s) == false);
    assert_int_equal(data_files_of(&sd).snap, 2);
    /* The receiver takes half, crashes, and keeps what it can trust. */
    assert_int_equal(raftstore_recv_begin(r, 50, &msg), 0);
    send_range(&sd, file, r, 0, total / 2);
    uint64_t written = 0;
    struct disk_file *rf = raftstore_recv_file(r, &written);
    assert_int_equal(written, total / 2);
    assert_int_equal(rd.sync(&rd, rf, &msg), 0);
    memdisk_crash(&rd, true, 3);
    raftstore_close(r);
    r = open_ok(&rd, &rec);
    assert_int_equal(rec.entry_count, 10);
    uint64_t index = 0, have = 0;
    assert_true(raftstore_recv_resume(r, 1000, &index, &have));
    assert_int_equal(index, 50);
    assert_int_equal(have, total / 2 - 1000);
    send_range(&sd, file, r, have, total);
    rf = raftstore_recv_file(r, &written);
    assert_int_equal(rd.sync(&rd, rf, &msg), 0);
    uint64_t blob_bytes = 0;
    int rc = raftstore_recv_check(r, &blob_bytes, &msg);
    if (rc != 0) fail_msg("check: %s", msg.text);
    assert_int_equal(blob_bytes, sizeof(blob));
    rc = raftstore_recv_commit(r, &(struct raft_snapshot_meta){.index = 50,
                                                               .term = 3,
                                                               .config = meta.config},
                               &msg);
    if (rc != 0) fail_msg("commit: %s", msg.text);
    assert_int_equal(raftstore_last_index(r), 50);
    raftstore_close(r);
    r = reopen_with_blob_on_disk(&rd, 50, blob, sizeof(blob));
    /* Once closed, the sender's old file is collected. */
    raftstore_data_close(s, id, file);
    raftstore_collect(s, true);
    assert_int_equal(data_files_of(&sd).snap, 1);
    check_damaged_received_file_fails(&sd, s, &rd, r);
    raftstore_close(r);
    raftstore_close(s);
    memdisk_deinit(&rd);
    memdisk_deinit(&sd);
}

/* A damaged byte in a received file fails the whole-file check. */
static void check_damaged_received_file_fails(struct disk *sd, struct raftstore *s, struct disk *rd,
                                              struct raftstore *r) {
    uint64_t id = 0, total = 0, blob_bytes = 0;
    struct disk_file *file = NULL;
    struct errmsg msg = {{0}};
    assert_int_equal(raftstore_data_open(s, &id, &file, &total, &msg), 0);
    assert_int_equal(raftstore_recv_begin(r, 55, &msg), 0);
    send_range(sd, file, r, 0, total);
    const uint8_t *img;
    uint64_t img_bytes;
    assert_int_equal(memdisk_peek(rd, "snaprecv-0000000000000037.tmp", &img, &img_bytes), 0);
    uint8_t *copy = malloc(img_bytes);
    memcpy(copy, img, img_bytes);
    copy[img_bytes / 2] ^= 0x40;
    raftstore_recv_abort(r);
    assert_false(memdisk_exists(rd, "snaprecv-0000000000000037.tmp"));
    assert_int_equal(raftstore_recv_begin(r, 55, &msg), 0);
    assert_int_equal(raftstore_recv_write(r, 0, copy, (size_t)img_bytes, &msg), 0);
    assert_int_equal(raftstore_recv_check(r, &blob_bytes, &msg), ERR_CORRUPT);
    raftstore_recv_abort(r);
    free(copy);
    raftstore_data_close(s, id, file);
}

/* ---- randomized crashes against a model of what was synced ---- */

struct mstate {
    uint64_t hs_term;
    uint32_t hs_vote;
    uint64_t snap_index;
    uint64_t snap_term;
    uint64_t blob_seed;
    uint32_t blob_bytes;
    uint64_t count; /* entries snap_index + 1 ... */
    uint64_t terms[MODEL_LOG_MAX];
};

struct model {
    struct prng prng;
    uint64_t seed;
    struct mstate now;                      /* everything written, buffered included */
    struct mstate states[MODEL_STATES_MAX]; /* what a crash may leave: [0] synced */
    size_t state_count;
    int unsynced_writes; /* flushes since the last sync (memdisk tears only the last) */
    uint8_t blob[4096];
};

static void model_blob(struct model *m, uint64_t seed, uint32_t bytes) {
    for (uint32_t i = 0; i < bytes; i++) m->blob[i] = (uint8_t)(seed * 7 + i * 13);
}

static void model_add(struct model *m, const struct mstate *s) {
    assert_true(m->state_count < MODEL_STATES_MAX);
    m->states[m->state_count++] = *s;
}

static void model_synced(struct model *m) {
    m->state_count = 0;
    model_add(m, &m->now);
    m->unsynced_writes = 0;
}

static bool model_matches(struct model *m, const struct mstate *s,
                          const struct raftstore_recovered *rec) {
    if (rec->hard_state.term != s->hs_term || rec->hard_state.vote != s->hs_vote) return false;
    if (rec->snapshot.index != s->snap_index || rec->snapshot.term != s->snap_term) return false;
    if (rec->snapshot.data_bytes != s->blob_bytes || rec->entry_count != s->count) return false;
    model_blob(m, s->blob_seed, s->blob_bytes);
    if (s->blob_bytes > 0 && memcmp(rec->snapshot.data, m->blob, s->blob_bytes) != 0) {
        return false;
    }
    for (size_t i = 0; i < s->count; i++) {
        if (rec->entries[i].index != s->snap_index + 1 + i) return false;
        if (rec->entries[i].term != s->terms[i]) return false;
    }
    for (size_t i = 0; i < s->count; i++)
        check_entry(&rec->entries[i], s->snap_index + 1 + i, s->terms[i]);
    return true;
}

static struct raftstore *model_crash(struct model *m, struct disk *d, struct raftstore *s) {
    bool tear = m->unsynced_writes <= 1 && prng_range(&m->prng, 0, 2) == 0;
    memdisk_crash(d, tear, prng_next(&m->prng));
    memdisk_fail_after(d, 0, ERR_IO);
    raftstore_close(s);
    struct raftstore_recovered rec;
    struct errmsg msg = {{0}};
    int rc = raftstore_open(d, &options, &s, &rec, &msg);
    if (rc != 0) fail_msg("seed %llu: open: %s", (unsigned long long)m->seed, msg.text);
    size_t i = m->state_count;
    while (i > 0 && !model_matches(m, &m->states[i - 1], &rec)) i--;
    if (i == 0) {
        fail_msg("seed %llu: recovered state (term %llu, snapshot %llu, %zu entries) is none "
                 "of the %zu allowed",
                 (unsigned long long)m->seed, (unsigned long long)rec.hard_state.term,
                 (unsigned long long)rec.snapshot.index, rec.entry_count, m->state_count);
    }
    m->now = m->states[i - 1];
    model_synced(m);
    return s;
}

static uint64_t model_last(const struct mstate *s) {
    return s->snap_index + s->count;
}

static int model_persist(struct model *m, struct raftstore *s) {
    struct mstate *n = &m->now;
    size_t k = (size_t)prng_range(&m->prng, 0, 5);
    if (n->count + k + 8 > MODEL_LOG_MAX) k = 0;
    struct errmsg msg;
    uint64_t from = model_last(n) + 1;
    bool truncate = n->count > 0 && prng_range(&m->prng, 0, 4) == 0;
    if (truncate) from = n->snap_index + 1 + prng_range(&m->prng, 0, n->count);
    struct raft_entry entries[8];
    uint64_t bytes = 0;
    uint64_t term = n->hs_term + (prng_range(&m->prng, 0, 3) == 0 ? 1 : 0);
    if (term == 0) term = 1;
    for (size_t i = 0; i < k; i++) {
        entries[i] = make_entry(from + i, term, i);
        bytes += entries[i].data_bytes;
    }
    int rc = raftstore_reserve(s, k, bytes, &msg);
    if (rc != 0) return rc;
    if (term != n->hs_term) {
        struct raft_hard_state hs = {.term = term, .vote = (uint32_t)prng_range(&m->prng, 0, 4)};
        raftstore_save_hard_state(s, &hs);
        n->hs_term = hs.term;
        n->hs_vote = hs.vote;
    }
    if (truncate) raftstore_truncate(s, from);
    raftstore_append(s, entries, k);
    n->count = from - n->snap_index - 1;
    for (size_t i = 0; i < k; i++) n->terms[n->count++] = term;
    return 0;
}

static int model_snapshot(struct model *m, struct raftstore *s, bool restore) {
    struct mstate *n = &m->now;
    struct mstate post = *n;
    if (restore) {
        post.snap_index = n->snap_index + 1 + prng_range(&m->prng, 0, n->count + 5);
        post.snap_term = n->hs_term + 1;
        post.count = 0;
    } else {
        if (n->count == 0) return 0;
        uint64_t keep = prng_range(&m->prng, 0, n->count);
        post.snap_index = model_last(n) - keep;
        post.snap_term = n->terms[n->count - keep - 1];
        post.count = keep;
        memmove(post.terms, n->terms + (n->count - keep), keep * sizeof(uint64_t));
    }
    post.blob_seed = prng_next(&m->prng);
    post.blob_bytes = (uint32_t)prng_range(&m->prng, 0, sizeof(m->blob));
    model_blob(m, post.blob_seed, post.blob_bytes);
    struct raft_snapshot_meta meta =
        make_meta(post.snap_index, post.snap_term, m->blob, post.blob_bytes);
    struct errmsg msg;
    int rc =
        !restore && prng_range(&m->prng, 0, 2) == 0
            ? stream_snapshot(s, &meta, &m->prng, &msg)
            : raftstore_save_snapshot(
                  s, &meta, restore ? RAFTSTORE_SNAPSHOT_RESTORED : RAFTSTORE_SNAPSHOT_TAKEN, &msg);
    if (rc != 0) {
        model_add(m, n); /* may have been synced before the failure */
        model_add(m, &post);
        return rc;
    }
    m->now = post;
    model_synced(m);
    return 0;
}

/* One operation; on an injected failure, what may have reached the disk joins the model. */
static int model_step(struct model *m, struct raftstore *s) {
    uint64_t r = prng_range(&m->prng, 0, 100);
    struct errmsg msg;
    int rc = 0;
    if (m->state_count + 3 >= MODEL_STATES_MAX) r = 70;
    if (r < 45) {
        rc = model_persist(m, s);
    } else if (r < 60) {
        rc = raftstore_flush(s, &msg);
        if (rc == 0) model_add(m, &m->now);
        if (rc == 0) m->unsynced_writes++;
    } else if (r < 77) {
        rc = raftstore_sync(s, &msg);
        if (rc == 0) model_synced(m);
    } else if (r < 85) {
        rc = model_snapshot(m, s, false);
    } else if (r < 88) {
        rc = model_snapshot(m, s, true);
    } else {
        return 1; /* crash */
    }
    if (rc != 0) model_add(m, &m->now); /* buffered records may have been written */
    return rc != 0 ? 1 : 0;
}

/* Crash safety: after a crash anywhere, open returns the state after some prefix of the
 * writes that holds every synced step; never a truncated entry, a gap, or a lost sync. */
static void test_raftstore_random_crashes_keep_every_synced_step(void **state) {
    (void)state;
    for (uint64_t seed = 1; seed <= RANDOM_SEEDS; seed++) {
        struct model *m = calloc(1, sizeof(*m));
        m->seed = seed;
        prng_init(&m->prng, seed);
        model_synced(m);
        struct disk d;
        memdisk_init(&d);
        struct raftstore_recovered rec;
        struct raftstore *s = open_ok(&d, &rec);
        if (prng_range(&m->prng, 0, 3) == 0) {
            memdisk_fail_after(&d, prng_range(&m->prng, 1, 400), ERR_IO);
        }
        for (int op = 0; op < RANDOM_OPS; op++) {
            if (model_step(m, s) != 0) s = model_crash(m, &d, s);
        }
        s = model_crash(m, &d, s);
        raftstore_close(s);
        memdisk_deinit(&d);
        free(m);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raftstore_reopen_returns_synced_hard_state_and_entries),
        cmocka_unit_test(test_raftstore_truncate_then_append_replaces_the_suffix_across_reopen),
        cmocka_unit_test(test_raftstore_crash_loses_unsynced_writes_but_never_synced_ones),
        cmocka_unit_test(test_raftstore_torn_tail_is_cut_and_writing_continues),
        cmocka_unit_test(test_raftstore_group_commit_halves_move_the_durable_position),
        cmocka_unit_test(test_raftstore_snapshot_compacts_the_log_and_reopens_with_later_entries),
        cmocka_unit_test(test_raftstore_restored_snapshot_discards_the_whole_log),
        cmocka_unit_test(test_raftstore_streamed_snapshot_commits_reopens_and_leaves_no_garbage),
        cmocka_unit_test(test_raftstore_commit_in_steps_survives_a_crash_after_every_step),
        cmocka_unit_test(test_raftstore_data_file_sent_in_chunks_survives_crashes_and_installs),
        cmocka_unit_test(test_raftstore_full_disk_refuses_at_reserve_and_nothing_breaks),
        cmocka_unit_test(test_raftstore_reserve_refuses_over_the_batch_limit),
        cmocka_unit_test(test_raftstore_reservations_add_up_and_outlive_a_flush),
        cmocka_unit_test(test_raftstore_corruption_in_the_middle_refuses_naming_file_and_offset),
        cmocka_unit_test(test_raftstore_damaged_snapshot_refuses),
        cmocka_unit_test(test_raftstore_random_crashes_keep_every_synced_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
