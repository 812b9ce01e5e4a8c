/*
 * Durable Raft storage (raftstore.h). Each WAL record's payload is a batch: one or more
 * raftstore records back to back, each a type byte then fields (integers little-endian):
 *   ENTRY          1  u8 type=1, u64 term, u64 index, u8 entry type, u32 data bytes n,
 *                     n bytes data                                     (22 + n bytes)
 *   HARD_STATE     2  u8 type=2, u64 term, u32 vote                    (13 bytes)
 *   TRUNCATE       3  u8 type=3, u64 from index (delete index >= from) (9 bytes)
 *   SNAPSHOT_MARK  4  u8 type=4, u64 index, u64 term                   (17 bytes)
 * A batch is written whole or not at all (one WAL record, one CRC).
 *
 * Snapshot file (snapshot.c, start lsn L = the lsn of its SNAPSHOT_MARK): entry 0 is the
 * meta, then chunks of the state machine's blob:
 *   meta   0 u8 kind 1, 1 u8 snapshot kind (1 taken, 2 restored), 2 u16 config bytes c,
 *          4 u32 vote, 8 u64 index, 16 u64 term, 24 u64 hard-state term,
 *          32 u64 keep lsn K, 40 u64 blob bytes, 48 c bytes raft_config_encode
 *   chunk  0 u8 kind 2, 1.. blob bytes (at most RAFTSTORE_SNAPSHOT_CHUNK_BYTES)
 *   data   0 u8 kind 3, 1 u64 data file id D: the blob is in "snapdata-<D>.snap" instead
 *          of chunks (a streamed snapshot, raftstore_stream_*): the same format, each of
 *          its entries a piece of the blob in order, totalling the meta's blob bytes. It is
 *          durable and in place before the file that names it; files no snapshot names are
 *          removed at open and after each snapshot.
 *
 * Replay: the newest snapshot file is the commit point of a snapshot. WAL records are
 * replayed from its keep lsn K (K <= L: the lsn of the oldest record of an entry the
 * snapshot keeps; K = L for a restored snapshot, whose log is discarded). The hard state
 * is the snapshot's unless a HARD_STATE record at lsn >= L follows. Entries are replayed
 * into a model of the log restricted to indexes above the snapshot (records before K may
 * be gone, so the model starts "unknown"); at the end it must start at snapshot index + 1.
 * Compaction removes only WAL segments whose records all have lsn < K, after the file
 * that names K is durable.
 */
#include "storage/raftstore.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/buf.h"
#include "storage/snapshot.h"

#define RAFTSTORE_REC_ENTRY 1u
#define RAFTSTORE_REC_HARD_STATE 2u
#define RAFTSTORE_REC_TRUNCATE 3u
#define RAFTSTORE_REC_MARK 4u
#define RAFTSTORE_ENTRY_HEADER_BYTES 22u
#define RAFTSTORE_HARD_STATE_BYTES 13u
#define RAFTSTORE_TRUNCATE_BYTES 9u
#define RAFTSTORE_MARK_BYTES 17u
#define RAFTSTORE_SNAP_META 1u
#define RAFTSTORE_SNAP_CHUNK 2u
#define RAFTSTORE_SNAP_DATA 3u
#define RAFTSTORE_SNAP_DATA_BYTES 9u
#define RAFTSTORE_DATA_PREFIX "snapdata"
#define RAFTSTORE_RECV_PREFIX "snaprecv-" /* a data file being received: snaprecv-<index>.tmp */
/* A garbage data file loses this much a step before it is removed: removing a big file
 * at once costs the disk (and the loop) hundreds of ms (1.5 GB: 475 ms on the test host). */
#define RAFTSTORE_SHRINK_BYTES (4ull * 1024 * 1024) /* about 1 ms of the disk's work */
#define RAFTSTORE_SNAP_META_BYTES 48u
#define RAFTSTORE_NAME_BYTES 64
/* Added to every reservation: a WAL record's header and padding, so that what one record
 * leaves of a reservation still covers the next record (see raftstore_emit). */
#define RAFTSTORE_RECORD_SLACK_BYTES 32u

STATIC_ASSERT(RAFTSTORE_BATCH_BYTES_MAX < WAL_RECORD_BYTES_MAX, "a batch fits a WAL record");
STATIC_ASSERT(RAFTSTORE_ENTRY_HEADER_BYTES + RAFTSTORE_ENTRY_BYTES_MAX +
                      RAFTSTORE_HARD_STATE_BYTES + RAFTSTORE_TRUNCATE_BYTES <
                  RAFTSTORE_BATCH_BYTES_MAX,
              "a maximal entry fits a batch");
STATIC_ASSERT(RAFTSTORE_SNAPSHOT_CHUNK_BYTES + 1 < SNAPSHOT_ENTRY_BYTES_MAX, "chunks fit");
STATIC_ASSERT(RAFT_CONFIG_BYTES_MAX <= UINT16_MAX, "config length fits u16");

/* A taken snapshot being committed in steps (raftstore_commit_begin, below). */
enum raftstore_commit_step {
    RAFTSTORE_COMMIT_FILE,
    RAFTSTORE_COMMIT_DATA_DIR,
    RAFTSTORE_COMMIT_LOG,
    RAFTSTORE_COMMIT_DIR,
};

struct raftstore_commit {
    struct raft_snapshot_meta meta; /* data NULL, data_bytes the blob's */
    uint64_t data_id;
    uint64_t start_lsn; /* L */
    uint64_t keep_lsn;  /* K */
    struct snapshot_writer *writer; /* the snapshot file until placed, then NULL */
    enum raftstore_commit_step step;
    bool syncing;
};

/* One entry of the log held: its index is snapshot.index + 1 + position. */
struct raftstore_slot {
    uint64_t term;
    uint64_t lsn; /* of the WAL record that wrote it; nondecreasing along the log */
};

struct raftstore {
    struct disk *disk; /* kept */
    struct wal *wal;
    int failed; /* sticky: 0 or the fatal error */
    uint64_t failed_durable_lsn;
    bool sync_inflight;
    struct raft_hard_state hard_state;
    struct raft_snapshot_meta snapshot; /* data points into snapshot_data, or NULL */
    uint8_t *snapshot_data;             /* NULL while not loaded (raftstore_snapshot_load) */
    uint64_t snapshot_data_id;          /* its data file, 0: chunks in the snapshot file */
    uint64_t snapshot_start_lsn;        /* the snapshot file's lsn, 0: none */
    uint64_t next_data_id;
    struct raftstore_stream *stream; /* the streamed snapshot being written, or NULL */
    struct raftstore_commit *commit; /* a sealed stream being committed in steps, or NULL */
    /* Garbage removed in steps (raftstore_collect): WAL segments below compact_lsn, and
     * old data files (names, NUL-terminated, from garbage_pos on; the first is shrunk by
     * RAFTSTORE_SHRINK_BYTES a step through `shrinking`, then removed). */
    uint64_t compact_lsn;
    bool dir_unsynced; /* a retired segment's rename or a removal awaits the directory sync */
    bool dir_syncing;  /* raftstore_dir_sync_begin's sync is running */
    struct buf garbage;
    size_t garbage_pos;
    struct disk_file *shrinking;
    uint64_t shrink_bytes;
    /* Data files being read by raftstore_data_open (never collected meanwhile). */
    uint64_t pins[RAFTSTORE_PINS_MAX];
    /* The data file being received (raftstore_recv_*); file NULL: none. */
    struct {
        struct disk_file *file;
        uint64_t index;
        uint64_t bytes;
        uint64_t blob_bytes; /* once checked */
        bool checked;
        char name[RAFTSTORE_NAME_BYTES];
    } recv;
    uint64_t recv_found_index; /* open found a partial one; 0: none */
    struct raftstore_slot *slots;
    size_t slot_count;
    size_t slot_cap;
    struct buf batch;             /* records for the next WAL record */
    uint64_t batch_cap;           /* batch bytes the WAL reservation covers */
    uint64_t entries_reserved;    /* entries the reservations still allow */
    struct raft_entry *recovered; /* open's entries, data owned; freed on the first change */
    size_t recovered_count;
};

/* ---- small helpers ---- */

static void raftstore_put_u64(struct buf *b, uint64_t v) {
    buf_append_u64le(b, v);
}

static uint64_t raftstore_first_index(const struct raftstore *store) {
    return store->snapshot.index + 1;
}

uint64_t raftstore_last_index(const struct raftstore *store) {
    ASSERT(store != NULL);
    return store->snapshot.index + store->slot_count;
}

static void raftstore_free_recovered(struct raftstore *store) {
    for (size_t i = 0; i < store->recovered_count; i++) free((void *)store->recovered[i].data);
    free(store->recovered);
    store->recovered = NULL;
    store->recovered_count = 0;
}

static void raftstore_slots_push(struct raftstore *store, uint64_t term, uint64_t lsn) {
    ASSERT(store->slot_count < RAFTSTORE_ENTRIES_MAX);
    if (store->slot_count == store->slot_cap) {
        store->slot_cap = store->slot_cap ? store->slot_cap * 2 : 64;
        store->slots = base_realloc(store->slots, store->slot_cap * sizeof(*store->slots));
    }
    if (store->slot_count > 0) ASSERT(store->slots[store->slot_count - 1].lsn <= lsn);
    store->slots[store->slot_count++] = (struct raftstore_slot){.term = term, .lsn = lsn};
}

/* Finds the WAL segment or snapshot file a position lies in, for messages: the file with
 * prefix whose hex lsn is the largest <= lsn. */
struct raftstore_find {
    const char *prefix;
    const char *suffix;
    uint64_t lsn;
    uint64_t best;
};

static void raftstore_find_one(void *ctx, const char *name) {
    struct raftstore_find *f = ctx;
    size_t p = strlen(f->prefix);
    size_t s = strlen(f->suffix);
    size_t n = strlen(name);
    if (n != p + 16 + s || strncmp(name, f->prefix, p) != 0) return;
    if (strcmp(name + p + 16, f->suffix) != 0) return;
    uint64_t v = 0;
    for (size_t i = p; i < p + 16; i++) {
        char c = name[i];
        int d = c >= '0' && c <= '9' ? c - '0' : (c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1);
        if (d < 0) return;
        v = v * 16 + (uint64_t)d;
    }
    if (v <= f->lsn && v > f->best) f->best = v;
}

static void raftstore_file_name(struct disk *disk, const char *prefix, const char *suffix,
                                uint64_t lsn, char name[RAFTSTORE_NAME_BYTES]) {
    struct raftstore_find f = {.prefix = prefix, .suffix = suffix, .lsn = lsn};
    (void)disk->list(disk, raftstore_find_one, &f, NULL);
    snprintf(name, RAFTSTORE_NAME_BYTES, "%s%016llx%s", prefix, (unsigned long long)f.best, suffix);
}

static void raftstore_recv_found(struct raftstore *store);

/* ---- opening: the snapshot ---- */

struct raftstore_snapload {
    struct raftstore *store;
    bool data_only; /* a reload of the blob: the store's other fields stay */
    bool lazy;      /* a data file's blob is left on disk (raftstore_options.blob_on_disk) */
    uint64_t data_id;
    uint64_t keep_lsn;
    bool restored;
    uint64_t entry_count;
    uint64_t offset;     /* byte offset of the current entry in the file */
    uint64_t data_got;   /* blob bytes filled */
    struct errmsg error; /* detail of a non-zero return, without the file name */
};

static int raftstore_snapload_fail(struct raftstore_snapload *s, const char *why) {
    return errmsg_set(&s->error, ERR_CORRUPT, "entry %llu at byte offset %llu: %s",
                      (unsigned long long)s->entry_count, (unsigned long long)s->offset, why);
}

static int raftstore_snapload_meta(struct raftstore_snapload *s, const uint8_t *p, size_t n) {
    struct raftstore *store = s->store;
    if (n < RAFTSTORE_SNAP_META_BYTES) return raftstore_snapload_fail(s, "short meta");
    size_t config_bytes = (size_t)p[2] | ((size_t)p[3] << 8);
    if (n != RAFTSTORE_SNAP_META_BYTES + config_bytes) {
        return raftstore_snapload_fail(s, "meta length");
    }
    uint64_t data_bytes = base_load_u64le(p + 40);
    if (p[1] != RAFTSTORE_SNAPSHOT_TAKEN && p[1] != RAFTSTORE_SNAPSHOT_RESTORED) {
        return raftstore_snapload_fail(s, "unknown snapshot kind");
    }
    if (data_bytes > RAFTSTORE_SNAPSHOT_BYTES_MAX) {
        return raftstore_snapload_fail(s, "blob over RAFTSTORE_SNAPSHOT_BYTES_MAX");
    }
    struct raft_snapshot_meta *m = &store->snapshot;
    if (s->data_only) {
        if (base_load_u64le(p + 8) != m->index || data_bytes != m->data_bytes)
            return raftstore_snapload_fail(s, "another snapshot than the one in use");
        return 0;
    }
    if (raft_config_decode(p + RAFTSTORE_SNAP_META_BYTES, config_bytes, &m->config) != 0) {
        return raftstore_snapload_fail(s, "bad configuration");
    }
    m->index = base_load_u64le(p + 8);
    m->term = base_load_u64le(p + 16);
    if (m->index == 0 || m->term == 0) return raftstore_snapload_fail(s, "index or term 0");
    store->hard_state.vote = base_load_u32le(p + 4);
    store->hard_state.term = base_load_u64le(p + 24);
    s->keep_lsn = base_load_u64le(p + 32);
    s->restored = p[1] == RAFTSTORE_SNAPSHOT_RESTORED;
    m->data_bytes = data_bytes;
    return 0;
}

/* The blob's memory, allocated when its first bytes are read. */
static uint8_t *raftstore_snapload_dest(struct raftstore_snapload *s) {
    struct raftstore *store = s->store;
    if (store->snapshot_data == NULL)
        store->snapshot_data = base_malloc((unsigned long)store->snapshot.data_bytes);
    return store->snapshot_data;
}

static int raftstore_snapload_entry(void *ctx, const uint8_t *p, size_t n) {
    struct raftstore_snapload *s = ctx;
    int rc = 0;
    if (n == 0) {
        rc = raftstore_snapload_fail(s, "empty entry");
    } else if (s->entry_count == 0) {
        rc = p[0] == RAFTSTORE_SNAP_META ? raftstore_snapload_meta(s, p, n)
                                         : raftstore_snapload_fail(s, "meta missing");
    } else if (p[0] == RAFTSTORE_SNAP_DATA && s->entry_count == 1 && s->data_got == 0) {
        if (n != RAFTSTORE_SNAP_DATA_BYTES || base_load_u64le(p + 1) == 0)
            rc = raftstore_snapload_fail(s, "bad data file entry");
        else
            s->data_id = base_load_u64le(p + 1);
    } else if (p[0] != RAFTSTORE_SNAP_CHUNK || s->data_id != 0) {
        rc = raftstore_snapload_fail(s, "unknown entry kind");
    } else if (n - 1 > s->store->snapshot.data_bytes - s->data_got) {
        rc = raftstore_snapload_fail(s, "more blob bytes than the meta says");
    } else if (n > 1) {
        memcpy(raftstore_snapload_dest(s) + s->data_got, p + 1, n - 1);
        s->data_got += n - 1;
    }
    s->entry_count++;
    s->offset += 8 + n;
    return rc;
}

/* One piece of a data file's blob. */
static int raftstore_snapload_data(void *ctx, const uint8_t *p, size_t n) {
    struct raftstore_snapload *s = ctx;
    struct raftstore *store = s->store;
    if (n > store->snapshot.data_bytes - s->data_got)
        return errmsg_set(&s->error, ERR_CORRUPT, "more blob bytes than the meta says");
    if (n > 0) memcpy(raftstore_snapload_dest(s) + s->data_got, p, n);
    s->data_got += n;
    return 0;
}

/* The newest snapshot file, with its blob (from its data file when it names one). */
static int raftstore_snapload(struct raftstore_snapload *s, uint64_t *start_lsn,
                              struct errmsg *msg) {
    struct raftstore *store = s->store;
    int rc = snapshot_load(store->disk, raftstore_snapload_entry, s, start_lsn, msg);
    if (rc == 0 && *start_lsn != 0 && s->entry_count == 0) {
        rc = raftstore_snapload_fail(s, "no meta");
    }
    if (rc == 0 && *start_lsn != 0 && s->data_id != 0 && s->lazy) {
        s->data_got = store->snapshot.data_bytes; /* raftstore_snapshot_read reads it */
    } else if (rc == 0 && *start_lsn != 0 && s->data_id != 0) {
        struct errmsg data_msg = {{0}};
        rc = snapshot_load_as(store->disk, RAFTSTORE_DATA_PREFIX, s->data_id,
                              raftstore_snapload_data, s, &data_msg);
        if (rc != 0 && s->error.text[0] == '\0')
            errmsg_set(&s->error, rc, "its data file: %s", data_msg.text);
    }
    if (rc == 0 && *start_lsn != 0 && s->data_got != store->snapshot.data_bytes) {
        rc = raftstore_snapload_fail(s, "blob shorter than the meta says");
    }
    if (rc != 0 && s->error.text[0] != '\0') {
        char name[RAFTSTORE_NAME_BYTES];
        raftstore_file_name(store->disk, "snap-", ".snap", *start_lsn ? *start_lsn : UINT64_MAX,
                            name);
        errmsg_set(msg, rc, "%s: %s", name, s->error.text);
    }
    return rc;
}

static int raftstore_open_snapshot(struct raftstore *store, uint64_t *start_lsn, uint64_t *keep_lsn,
                                   bool *restored, bool lazy, struct errmsg *msg) {
    struct raftstore_snapload s = {.store = store, .offset = 32, .lazy = lazy};
    int rc = raftstore_snapload(&s, start_lsn, msg);
    if (rc == 0 && *start_lsn != 0 && (s.keep_lsn == 0 || s.keep_lsn > *start_lsn)) {
        rc = raftstore_snapload_fail(&s, "keep lsn after the start lsn");
        errmsg_set(msg, rc, "snapshot at lsn %llu: %s", (unsigned long long)*start_lsn,
                   s.error.text);
    }
    *keep_lsn = *start_lsn != 0 ? s.keep_lsn : 1;
    *restored = s.restored;
    store->snapshot_data_id = *start_lsn != 0 ? s.data_id : 0;
    store->snapshot_start_lsn = *start_lsn;
    store->next_data_id = store->snapshot_data_id + 1;
    /* Data files no snapshot names: an unfinished stream, or an older snapshot's. */
    if (rc == 0) snapshot_remove_as(store->disk, RAFTSTORE_DATA_PREFIX, store->snapshot_data_id);
    return rc;
}

/* ---- opening: the WAL ---- */

struct raftstore_replay {
    struct raftstore *store;
    uint64_t start_lsn; /* the snapshot's, 0 without one */
    bool restored;
    struct raft_entry *entries; /* the log above the snapshot as far as known; data owned */
    uint64_t *lsns;
    size_t count;
    size_t cap;
    bool known;    /* whether last is known */
    uint64_t last; /* the replayed log's last index, when known */
    uint64_t lsn;  /* of the record being replayed */
    size_t pos;    /* byte of its payload being decoded */
    wal_warn_fn *warn;
    void *warn_ctx;
    struct errmsg error;
};

static int raftstore_replay_fail(struct raftstore_replay *r, const char *why) {
    return errmsg_set(&r->error, ERR_CORRUPT, "record lsn %llu, payload byte %zu: %s",
                      (unsigned long long)r->lsn, r->pos, why);
}

static void raftstore_replay_cut(struct raftstore_replay *r, size_t count) {
    ASSERT(count <= r->count);
    for (size_t i = count; i < r->count; i++) free((void *)r->entries[i].data);
    r->count = count;
}

/* Real-log truncation: entries with index >= from go. */
static void raftstore_replay_truncate(struct raftstore_replay *r, uint64_t from) {
    ASSERT(from >= 1);
    if (r->count > 0) {
        uint64_t first = r->entries[0].index;
        raftstore_replay_cut(
            r, from <= first ? 0 : (size_t)(from - first < r->count ? from - first : r->count));
    }
    if (r->known && r->last >= from) r->last = from - 1;
    if (r->count > 0) ASSERT(r->entries[r->count - 1].index == r->last);
}

static int raftstore_replay_entry(struct raftstore_replay *r, const struct raft_entry *e) {
    uint64_t snap_index = r->store->snapshot.index;
    if (r->known && e->index > r->last + 1) return raftstore_replay_fail(r, "gap in the log");
    raftstore_replay_truncate(r, e->index); /* a later entry replaces the suffix */
    r->known = true;
    r->last = e->index;
    if (e->index <= snap_index) return 0; /* inside the snapshot */
    if (r->count > 0) ASSERT(r->entries[r->count - 1].index + 1 == e->index);
    if (r->count >= RAFTSTORE_ENTRIES_MAX) {
        return errmsg_set(&r->error, ERR_LIMIT, "more than %u entries after the snapshot",
                          RAFTSTORE_ENTRIES_MAX);
    }
    if (r->count == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->entries = base_realloc(r->entries, r->cap * sizeof(*r->entries));
        r->lsns = base_realloc(r->lsns, r->cap * sizeof(*r->lsns));
    }
    struct raft_entry copy = *e;
    if (e->data_bytes > 0) {
        uint8_t *data = base_malloc(e->data_bytes);
        memcpy(data, e->data, e->data_bytes);
        copy.data = data;
    }
    r->lsns[r->count] = r->lsn;
    r->entries[r->count++] = copy;
    return 0;
}

static int raftstore_replay_mark(struct raftstore_replay *r, uint64_t index, uint64_t term) {
    const struct raft_snapshot_meta *snap = &r->store->snapshot;
    bool ours = index == snap->index && term == snap->term;
    /* A taken snapshot committed in steps has its mark in a later batch (after entries the
     * log went on with meanwhile); any other mark after the file's lsn is a newer
     * snapshot's, whose file is gone. */
    if (r->lsn > r->start_lsn && ours && !r->restored) return 0;
    if (r->lsn > r->start_lsn) return raftstore_replay_fail(r, "mark of a missing snapshot");
    if (r->lsn < r->start_lsn) return 0; /* an older snapshot's */
    if (!ours) {
        return raftstore_replay_fail(r, "mark does not match the snapshot file");
    }
    if (r->restored) {
        raftstore_replay_cut(r, 0);
        r->known = true;
        r->last = index;
    }
    return 0;
}

/* Decodes one record at p[0..n) (n >= 1) into *e or applies it; *used gets its length. */
static int raftstore_replay_one(struct raftstore_replay *r, const uint8_t *p, size_t n,
                                size_t *used) {
    switch (p[0]) {
    case RAFTSTORE_REC_ENTRY: {
        if (n < RAFTSTORE_ENTRY_HEADER_BYTES) return raftstore_replay_fail(r, "short entry");
        struct raft_entry e = {.term = base_load_u64le(p + 1),
                               .index = base_load_u64le(p + 9),
                               .type = p[17],
                               .data_bytes = base_load_u32le(p + 18)};
        if (e.data_bytes > RAFTSTORE_ENTRY_BYTES_MAX ||
            e.data_bytes > n - RAFTSTORE_ENTRY_HEADER_BYTES) {
            return raftstore_replay_fail(r, "entry data length");
        }
        if (e.term == 0 || e.index == 0) return raftstore_replay_fail(r, "entry term/index 0");
        if (e.type < RAFT_ENTRY_NORMAL || e.type > RAFT_ENTRY_CONFIG) {
            return raftstore_replay_fail(r, "entry type");
        }
        e.data = e.data_bytes > 0 ? p + RAFTSTORE_ENTRY_HEADER_BYTES : NULL;
        *used = RAFTSTORE_ENTRY_HEADER_BYTES + e.data_bytes;
        return raftstore_replay_entry(r, &e);
    }
    case RAFTSTORE_REC_HARD_STATE:
        if (n < RAFTSTORE_HARD_STATE_BYTES) return raftstore_replay_fail(r, "short hard state");
        if (r->lsn >= r->start_lsn) { /* older ones are in the snapshot's meta */
            r->store->hard_state.term = base_load_u64le(p + 1);
            r->store->hard_state.vote = base_load_u32le(p + 9);
        }
        *used = RAFTSTORE_HARD_STATE_BYTES;
        return 0;
    case RAFTSTORE_REC_TRUNCATE: {
        if (n < RAFTSTORE_TRUNCATE_BYTES) return raftstore_replay_fail(r, "short truncate");
        uint64_t from = base_load_u64le(p + 1);
        if (from == 0) return raftstore_replay_fail(r, "truncate from 0");
        raftstore_replay_truncate(r, from);
        *used = RAFTSTORE_TRUNCATE_BYTES;
        return 0;
    }
    case RAFTSTORE_REC_MARK:
        if (n < RAFTSTORE_MARK_BYTES) return raftstore_replay_fail(r, "short mark");
        *used = RAFTSTORE_MARK_BYTES;
        return raftstore_replay_mark(r, base_load_u64le(p + 1), base_load_u64le(p + 9));
    default:
        return raftstore_replay_fail(r, "unknown record type");
    }
}

static int raftstore_replay_record(void *ctx, uint64_t lsn, const uint8_t *payload, size_t bytes) {
    struct raftstore_replay *r = ctx;
    r->lsn = lsn;
    r->pos = 0;
    if (bytes == 0) return raftstore_replay_fail(r, "empty batch");
    while (r->pos < bytes) {
        size_t used = 0;
        int rc = raftstore_replay_one(r, payload + r->pos, bytes - r->pos, &used);
        if (rc != 0) return rc;
        ASSERT(used > 0 && used <= bytes - r->pos);
        r->pos += used;
    }
    return 0;
}

/* wal_open gives warnings the replay's ctx; pass them on to the caller's. */
static void raftstore_replay_warn(void *ctx, const char *text) {
    struct raftstore_replay *r = ctx;
    r->warn(r->warn_ctx, text);
}

/* Moves the replayed log into the store: slots, and the recovered entries. */
static int raftstore_replay_install(struct raftstore *store, struct raftstore_replay *r) {
    if (r->count > 0 && r->entries[0].index != raftstore_first_index(store)) {
        return errmsg_set(
            &r->error, ERR_CORRUPT, "the log resumes at index %llu after snapshot index %llu",
            (unsigned long long)r->entries[0].index, (unsigned long long)store->snapshot.index);
    }
    for (size_t i = 0; i < r->count; i++) {
        ASSERT(r->entries[i].index == raftstore_first_index(store) + i);
        raftstore_slots_push(store, r->entries[i].term, r->lsns[i]);
    }
    store->recovered = r->entries;
    store->recovered_count = r->count;
    r->entries = NULL;
    r->count = 0;
    ASSERT(raftstore_last_index(store) == store->snapshot.index + store->recovered_count);
    return 0;
}

static int raftstore_open_wal(struct raftstore *store, const struct raftstore_options *options,
                              uint64_t start_lsn, uint64_t keep_lsn, bool restored,
                              struct errmsg *msg) {
    struct raftstore_replay r = {.store = store,
                                 .start_lsn = start_lsn,
                                 .restored = restored,
                                 .warn = options->warn,
                                 .warn_ctx = options->warn_ctx};
    struct wal_open_args args = {
        .disk = store->disk,
        .options = {.segment_bytes = options->segment_bytes ? options->segment_bytes
                                                            : WAL_SEGMENT_BYTES_DEFAULT},
        .from_lsn = keep_lsn,
        .replay = raftstore_replay_record,
        .warn = raftstore_replay_warn,
        .ctx = &r,
    };
    if (options->warn == NULL) args.warn = NULL;
    int rc = wal_open(&args, &store->wal, msg);
    if (rc == 0 && start_lsn > 0 && wal_last_lsn(store->wal) + 1 < start_lsn) {
        rc =
            errmsg_set(&r.error, ERR_CORRUPT, "log ends at lsn %llu before snapshot lsn %llu",
                       (unsigned long long)wal_last_lsn(store->wal), (unsigned long long)start_lsn);
    }
    if (rc == 0) rc = raftstore_replay_install(store, &r);
    if (rc != 0 && r.error.text[0] != '\0') {
        char name[RAFTSTORE_NAME_BYTES];
        raftstore_file_name(store->disk, "wal-", ".log", r.lsn ? r.lsn : UINT64_MAX, name);
        errmsg_set(msg, rc, "%s: %s", name, r.error.text);
    }
    raftstore_replay_cut(&r, 0);
    free(r.entries);
    free(r.lsns);
    return rc;
}

static void raftstore_recv_close(struct raftstore *store) {
    if (store->recv.file != NULL) store->disk->close(store->disk, store->recv.file);
    memset(&store->recv, 0, sizeof(store->recv));
}

static void raftstore_free(struct raftstore *store) {
    if (store->commit != NULL && store->commit->syncing) { /* closed with the sync running: */
        free(store->commit); /* its file stays the sync thread's (open removes a .tmp) */
        store->commit = NULL;
    }
    raftstore_stream_abort(store);
    raftstore_recv_close(store); /* a partial file stays for raftstore_recv_resume */
    if (store->shrinking != NULL) store->disk->close(store->disk, store->shrinking);
    buf_deinit(&store->garbage); /* what is left: open removes unnamed data files */
    if (store->wal != NULL) wal_close(store->wal);
    raftstore_free_recovered(store);
    buf_deinit(&store->batch);
    free(store->slots);
    free(store->snapshot_data);
    free(store);
}

int raftstore_open(struct disk *disk, const struct raftstore_options *options,
                   struct raftstore **out, struct raftstore_recovered *recovered,
                   struct errmsg *msg) {
    ASSERT(disk != NULL && options != NULL);
    ASSERT(out != NULL && recovered != NULL);
    *out = NULL;
    memset(recovered, 0, sizeof(*recovered));
    struct raftstore *store = base_calloc(1, sizeof(*store));
    store->disk = disk;
    buf_init(&store->batch);
    buf_init(&store->garbage);
    uint64_t start_lsn = 0;
    uint64_t keep_lsn = 1;
    bool restored = false;
    int rc = raftstore_open_snapshot(store, &start_lsn, &keep_lsn, &restored, options->blob_on_disk,
                                     msg);
    if (rc == 0) raftstore_recv_found(store);
    if (rc == 0) rc = raftstore_open_wal(store, options, start_lsn, keep_lsn, restored, msg);
    if (rc != 0) {
        raftstore_free(store);
        return rc;
    }
    ASSERT(wal_durable_lsn(store->wal) == wal_last_lsn(store->wal));
    store->snapshot.data = store->snapshot_data;
    recovered->hard_state = store->hard_state;
    recovered->snapshot = store->snapshot;
    recovered->entries = store->recovered;
    recovered->entry_count = store->recovered_count;
    ASSERT(recovered->entry_count == store->slot_count);
    *out = store;
    return 0;
}

void raftstore_close(struct raftstore *store) {
    ASSERT(store != NULL);
    ASSERT(!store->sync_inflight);
    raftstore_free(store);
}

/* ---- writing ---- */

/* Hands the batch to the WAL as one record. Invariant: the WAL segment has room for a
 * record of batch_cap bytes, so this reserve does no I/O; what the record leaves, less one
 * slack, still has room for a record of the reservations not used yet:
 * (16 + cap) - (16 + len + 7) >= (cap - len - slack) + 23. */
static int raftstore_emit(struct raftstore *store, struct errmsg *msg) {
    if (store->batch.len == 0) return 0;
    ASSERT(store->batch.len <= store->batch_cap);
    int rc = wal_reserve(store->wal, store->batch.len, msg);
    if (rc != 0) return rc;
    uint64_t lsn = wal_append(store->wal, store->batch.data, store->batch.len);
    if (store->slot_count > 0) ASSERT(store->slots[store->slot_count - 1].lsn <= lsn);
    uint64_t unused = store->batch_cap - store->batch.len;
    store->batch_cap =
        unused > RAFTSTORE_RECORD_SLACK_BYTES ? unused - RAFTSTORE_RECORD_SLACK_BYTES : 0;
    buf_clear(&store->batch);
    return 0;
}

static int raftstore_fail(struct raftstore *store, int rc) {
    if (rc == ERR_NOSPACE || rc == ERR_LIMIT) return rc;
    if (store->failed == 0) {
        store->failed = ERR_IO;
        store->failed_durable_lsn = wal_durable_lsn(store->wal);
    }
    return rc;
}

int raftstore_reserve(struct raftstore *store, size_t entry_count, uint64_t data_bytes,
                      struct errmsg *msg) {
    ASSERT(store != NULL);
    if (store->failed != 0) return errmsg_set(msg, store->failed, "raftstore failed earlier");
    if (entry_count > RAFTSTORE_ENTRIES_MAX - store->slot_count - store->entries_reserved) {
        return errmsg_set(msg, ERR_LIMIT, "more than %u log entries held", RAFTSTORE_ENTRIES_MAX);
    }
    uint64_t headers = (uint64_t)entry_count * RAFTSTORE_ENTRY_HEADER_BYTES;
    uint64_t fixed = RAFTSTORE_HARD_STATE_BYTES + RAFTSTORE_TRUNCATE_BYTES + headers;
    fixed += RAFTSTORE_RECORD_SLACK_BYTES;
    if (data_bytes > RAFTSTORE_BATCH_BYTES_MAX - fixed) {
        return errmsg_set(msg, ERR_LIMIT, "%llu bytes to write at once (max %llu)",
                          (unsigned long long)data_bytes, RAFTSTORE_BATCH_BYTES_MAX - fixed);
    }
    uint64_t need = fixed + data_bytes;
    if (store->batch_cap + need > RAFTSTORE_BATCH_BYTES_MAX && store->batch.len > 0) {
        /* The batch so far becomes its own record; unused reservations carry on. */
        int rc = raftstore_emit(store, msg);
        if (rc != 0) return raftstore_fail(store, rc);
    }
    if (store->batch_cap + need > RAFTSTORE_BATCH_BYTES_MAX) {
        return errmsg_set(msg, ERR_LIMIT, "%llu bytes reserved and not yet written (max %llu)",
                          (unsigned long long)(store->batch_cap + need), RAFTSTORE_BATCH_BYTES_MAX);
    }
    int rc = wal_reserve(store->wal, (size_t)(store->batch_cap + need), msg);
    if (rc != 0) return raftstore_fail(store, rc);
    store->batch_cap += need;
    store->entries_reserved += entry_count;
    ASSERT(store->batch_cap <= RAFTSTORE_BATCH_BYTES_MAX);
    return 0;
}

void raftstore_release_unused(struct raftstore *store) {
    ASSERT(store != NULL);
    ASSERT(store->batch.len <= store->batch_cap);
    store->batch_cap = store->batch.len;
    store->entries_reserved = 0;
}

/* lsn the batch being filled will get. */
static uint64_t raftstore_batch_lsn(const struct raftstore *store) {
    return wal_last_lsn(store->wal) + 1;
}

static void raftstore_write_begin(struct raftstore *store, uint64_t bytes) {
    ASSERT(store->failed == 0);
    ASSERT(store->batch.len + bytes <= store->batch_cap); /* reserve first */
    if (store->recovered != NULL) raftstore_free_recovered(store);
}

void raftstore_save_hard_state(struct raftstore *store, const struct raft_hard_state *hs) {
    ASSERT(store != NULL && hs != NULL);
    ASSERT(hs->term >= store->hard_state.term);
    raftstore_write_begin(store, RAFTSTORE_HARD_STATE_BYTES);
    buf_append_byte(&store->batch, RAFTSTORE_REC_HARD_STATE);
    raftstore_put_u64(&store->batch, hs->term);
    buf_append_u32le(&store->batch, hs->vote);
    store->hard_state = *hs;
}

void raftstore_truncate(struct raftstore *store, uint64_t from_index) {
    ASSERT(store != NULL);
    ASSERT(from_index > store->snapshot.index);
    ASSERT(from_index <= raftstore_last_index(store) + 1);
    raftstore_write_begin(store, RAFTSTORE_TRUNCATE_BYTES);
    buf_append_byte(&store->batch, RAFTSTORE_REC_TRUNCATE);
    raftstore_put_u64(&store->batch, from_index);
    store->slot_count = (size_t)(from_index - raftstore_first_index(store));
    ASSERT(raftstore_last_index(store) == from_index - 1);
}

void raftstore_append(struct raftstore *store, const struct raft_entry *entries, size_t count) {
    ASSERT(store != NULL);
    ASSERT(entries != NULL || count == 0);
    ASSERT(count <= store->entries_reserved);
    uint64_t bytes = 0;
    for (size_t i = 0; i < count; i++)
        bytes += RAFTSTORE_ENTRY_HEADER_BYTES + entries[i].data_bytes;
    raftstore_write_begin(store, bytes);
    store->entries_reserved -= count;
    uint64_t lsn = raftstore_batch_lsn(store);
    for (size_t i = 0; i < count; i++) {
        const struct raft_entry *e = &entries[i];
        ASSERT(e->index > store->snapshot.index);
        ASSERT(e->index <= raftstore_last_index(store) + 1);
        ASSERT(e->term >= 1 && e->data_bytes <= RAFTSTORE_ENTRY_BYTES_MAX);
        ASSERT(e->data != NULL || e->data_bytes == 0);
        store->slot_count = (size_t)(e->index - raftstore_first_index(store));
        buf_append_byte(&store->batch, RAFTSTORE_REC_ENTRY);
        raftstore_put_u64(&store->batch, e->term);
        raftstore_put_u64(&store->batch, e->index);
        buf_append_byte(&store->batch, e->type);
        buf_append_u32le(&store->batch, e->data_bytes);
        if (e->data_bytes > 0) buf_append(&store->batch, e->data, e->data_bytes);
        raftstore_slots_push(store, e->term, lsn);
        ASSERT(raftstore_last_index(store) == e->index);
    }
}

int raftstore_flush(struct raftstore *store, struct errmsg *msg) {
    ASSERT(store != NULL);
    if (store->failed != 0) return errmsg_set(msg, store->failed, "raftstore failed earlier");
    int rc = raftstore_emit(store, msg);
    if (rc == 0) rc = wal_flush(store->wal, msg);
    if (rc != 0) return raftstore_fail(store, ERR_IO);
    ASSERT(wal_flushed_lsn(store->wal) == wal_last_lsn(store->wal));
    return 0;
}

bool raftstore_sync_begin(struct raftstore *store, struct disk_file **file, uint64_t *token) {
    ASSERT(store != NULL);
    if (store->failed != 0 || store->sync_inflight) return false;
    if (!wal_sync_begin(store->wal, file, token)) return false;
    store->sync_inflight = true;
    ASSERT(*token > wal_durable_lsn(store->wal));
    return true;
}

void raftstore_sync_end(struct raftstore *store, uint64_t token, int sync_rc) {
    ASSERT(store != NULL);
    ASSERT(store->sync_inflight);
    if (sync_rc != 0) raftstore_fail(store, ERR_IO); /* freezes durable_lsn first */
    wal_sync_end(store->wal, token);
    store->sync_inflight = false;
}

int raftstore_sync(struct raftstore *store, struct errmsg *msg) {
    ASSERT(store != NULL);
    ASSERT(!store->sync_inflight);
    int rc = raftstore_flush(store, msg);
    if (rc != 0) return rc;
    struct disk_file *file = NULL;
    uint64_t token = 0;
    if (raftstore_sync_begin(store, &file, &token)) {
        rc = store->disk->sync(store->disk, file, msg);
        raftstore_sync_end(store, token, rc);
        if (rc != 0) return ERR_IO;
    }
    ASSERT(raftstore_durable_lsn(store) == raftstore_last_lsn(store));
    return 0;
}

uint64_t raftstore_last_lsn(const struct raftstore *store) {
    ASSERT(store != NULL);
    return wal_last_lsn(store->wal) + (store->batch.len > 0 ? 1 : 0);
}

uint64_t raftstore_durable_lsn(const struct raftstore *store) {
    ASSERT(store != NULL);
    if (store->failed != 0) return store->failed_durable_lsn;
    return wal_durable_lsn(store->wal);
}

void raftstore_durable_entry(const struct raftstore *store, uint64_t *index, uint64_t *term) {
    ASSERT(store != NULL && index != NULL && term != NULL);
    uint64_t durable = raftstore_durable_lsn(store);
    /* Slots' lsns are nondecreasing: find the last one <= durable. */
    size_t lo = 0;
    size_t hi = store->slot_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (store->slots[mid].lsn <= durable) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    *index = store->snapshot.index + lo;
    *term = lo > 0 ? store->slots[lo - 1].term : store->snapshot.term;
    if (lo < store->slot_count) ASSERT(store->slots[lo].lsn > durable);
}

/* ---- snapshots ---- */

struct raftstore_snapwrite {
    const struct raft_snapshot_meta *meta;
    enum raftstore_snapshot_kind kind;
    uint64_t start_lsn;
    uint64_t keep_lsn;
    uint64_t data_id; /* the blob is in this data file (written already); 0: meta->data */
};

static int raftstore_snapshot_add_meta(struct raftstore *store, struct snapshot_writer *w,
                                       const struct raftstore_snapwrite *sw, struct errmsg *msg) {
    uint8_t p[RAFTSTORE_SNAP_META_BYTES + RAFT_CONFIG_BYTES_MAX];
    size_t config_bytes = raft_config_encode(&sw->meta->config, p + RAFTSTORE_SNAP_META_BYTES);
    ASSERT(config_bytes <= RAFT_CONFIG_BYTES_MAX);
    p[0] = RAFTSTORE_SNAP_META;
    p[1] = (uint8_t)sw->kind;
    p[2] = (uint8_t)config_bytes;
    p[3] = (uint8_t)(config_bytes >> 8);
    base_store_u32le(p + 4, store->hard_state.vote);
    base_store_u64le(p + 8, sw->meta->index);
    base_store_u64le(p + 16, sw->meta->term);
    base_store_u64le(p + 24, store->hard_state.term);
    base_store_u64le(p + 32, sw->keep_lsn);
    base_store_u64le(p + 40, sw->meta->data_bytes);
    return snapshot_writer_add(w, p, RAFTSTORE_SNAP_META_BYTES + config_bytes, msg);
}

/* The meta entry, then the data entry naming the data file (when there is one). */
static int raftstore_snapshot_add_data(struct raftstore *store, struct snapshot_writer *w,
                                       const struct raftstore_snapwrite *sw, struct errmsg *msg) {
    int rc = raftstore_snapshot_add_meta(store, w, sw, msg);
    if (rc == 0 && sw->data_id != 0) {
        uint8_t data[RAFTSTORE_SNAP_DATA_BYTES] = {RAFTSTORE_SNAP_DATA};
        base_store_u64le(data + 1, sw->data_id);
        rc = snapshot_writer_add(w, data, sizeof(data), msg);
    }
    return rc;
}

/* Writes the snapshot file durably (snapshot.c: tmp, sync, rename, sync dir). */
static int raftstore_snapshot_write(struct raftstore *store, const struct raftstore_snapwrite *sw,
                                    struct errmsg *msg) {
    struct snapshot_writer *w = NULL;
    int rc = snapshot_writer_open(store->disk, sw->start_lsn, &w, msg);
    if (rc != 0) return rc;
    rc = raftstore_snapshot_add_data(store, w, sw, msg);
    uint8_t *chunk = base_malloc(RAFTSTORE_SNAPSHOT_CHUNK_BYTES + 1);
    chunk[0] = RAFTSTORE_SNAP_CHUNK;
    for (uint64_t off = 0; rc == 0 && sw->data_id == 0 && off < sw->meta->data_bytes;) {
        uint64_t left = sw->meta->data_bytes - off;
        size_t n =
            left < RAFTSTORE_SNAPSHOT_CHUNK_BYTES ? (size_t)left : RAFTSTORE_SNAPSHOT_CHUNK_BYTES;
        memcpy(chunk + 1, sw->meta->data + off, n);
        rc = snapshot_writer_add(w, chunk, n + 1, msg);
        off += n;
    }
    free(chunk);
    if (rc != 0) {
        snapshot_writer_abort(w);
        return rc;
    }
    return snapshot_writer_finish(w, msg);
}

/* The snapshot file is durable: make memory match what a reopen would find. */
static void raftstore_snapshot_install(struct raftstore *store,
                                       const struct raftstore_snapwrite *sw) {
    const struct raft_snapshot_meta *meta = sw->meta;
    if (sw->kind == RAFTSTORE_SNAPSHOT_RESTORED) {
        store->slot_count = 0;
    } else {
        size_t drop = (size_t)(meta->index - store->snapshot.index);
        ASSERT(drop <= store->slot_count);
        memmove(store->slots, store->slots + drop,
                (store->slot_count - drop) * sizeof(*store->slots));
        store->slot_count -= drop;
    }
    free(store->snapshot_data);
    store->snapshot_data = NULL;
    if (meta->data_bytes > 0 && sw->data_id == 0) {
        store->snapshot_data = base_malloc((unsigned long)meta->data_bytes);
        memcpy(store->snapshot_data, meta->data, (size_t)meta->data_bytes);
    }
    store->snapshot = *meta;
    store->snapshot.data = store->snapshot_data; /* a data file's: loaded when asked for */
    store->snapshot_data_id = sw->data_id;
    store->snapshot_start_lsn = sw->start_lsn;
    ASSERT(raftstore_first_index(store) == meta->index + 1);
}

/* Appends SNAPSHOT_MARK and the current hard state to the batch (reserved by the caller). */
static void raftstore_put_mark(struct raftstore *store) {
    buf_append_byte(&store->batch, RAFTSTORE_REC_MARK);
    raftstore_put_u64(&store->batch, store->snapshot.index);
    raftstore_put_u64(&store->batch, store->snapshot.term);
    buf_append_byte(&store->batch, RAFTSTORE_REC_HARD_STATE);
    raftstore_put_u64(&store->batch, store->hard_state.term);
    buf_append_u32le(&store->batch, store->hard_state.vote);
    ASSERT(store->batch.len <= store->batch_cap);
}

/* SNAPSHOT_MARK and the current hard state as one batch, synced. */
static int raftstore_snapshot_mark(struct raftstore *store, struct errmsg *msg) {
    ASSERT(store->batch.len == 0);
    store->batch_cap = RAFTSTORE_MARK_BYTES + RAFTSTORE_HARD_STATE_BYTES;
    raftstore_put_mark(store);
    ASSERT(store->batch.len == store->batch_cap);
    return raftstore_sync(store, msg);
}

static uint64_t raftstore_snapshot_keep_lsn(const struct raftstore *store,
                                            const struct raftstore_snapwrite *sw) {
    if (sw->kind == RAFTSTORE_SNAPSHOT_RESTORED) return sw->start_lsn;
    uint64_t kept = sw->meta->index - store->snapshot.index; /* slot of index + 1 */
    if (kept >= store->slot_count) return sw->start_lsn;
    ASSERT(store->slots[kept].lsn < sw->start_lsn);
    return store->slots[kept].lsn;
}

static void raftstore_garbage_one(void *ctx, const char *name) {
    struct raftstore *store = ctx;
    for (size_t pos = store->garbage_pos; pos < store->garbage.len;
         pos += strlen((const char *)store->garbage.data + pos) + 1)
        if (strcmp((const char *)store->garbage.data + pos, name) == 0) return; /* listed */
    buf_append(&store->garbage, name, strlen(name) + 1);
}

/* Every data file but keep's goes to the garbage, for raftstore_collect. */
static void raftstore_garbage(struct raftstore *store, uint64_t keep) {
    snapshot_garbage_as(store->disk, RAFTSTORE_DATA_PREFIX, keep, raftstore_garbage_one, store);
}

/* One step of removing a garbage data file: shrink it, or remove it once empty. */
static bool raftstore_pinned(const struct raftstore *store, const char *name) {
    for (size_t i = 0; i < RAFTSTORE_PINS_MAX; i++) {
        char pinned[RAFTSTORE_NAME_BYTES];
        if (store->pins[i] == 0) continue;
        snprintf(pinned, sizeof(pinned), "%s-%016llx.snap", RAFTSTORE_DATA_PREFIX,
                 (unsigned long long)store->pins[i]);
        if (strcmp(pinned, name) == 0) return true;
    }
    return false;
}

static void raftstore_collect_file(struct raftstore *store) {
    struct disk *d = store->disk;
    const char *name = (const char *)store->garbage.data + store->garbage_pos;
    if (store->shrinking == NULL && raftstore_pinned(store, name)) return; /* still being sent */
    if (store->shrinking == NULL) {
        if (d->open(d, name, DISK_OPEN_WRITE, &store->shrinking, NULL) != 0 ||
            d->size(d, store->shrinking, &store->shrink_bytes, NULL) != 0)
            store->shrink_bytes = 0; /* gone, or unreadable: just remove it */
    }
    if (store->shrink_bytes > 0) {
        uint64_t n = store->shrink_bytes > RAFTSTORE_SHRINK_BYTES
                         ? store->shrink_bytes - RAFTSTORE_SHRINK_BYTES
                         : 0;
        if (d->truncate(d, store->shrinking, n, NULL) == 0 && n > 0) {
            store->shrink_bytes = n;
            return;
        }
    }
    if (store->shrinking != NULL) d->close(d, store->shrinking);
    store->shrinking = NULL;
    d->remove(d, name, NULL);
    store->garbage_pos += strlen(name) + 1;
    if (store->garbage_pos == store->garbage.len) {
        buf_clear(&store->garbage);
        store->garbage_pos = 0;
        store->dir_unsynced = true; /* not needed for safety: a crash only brings it back */
    }
}

/* The oldest WAL segment below compact_lsn becomes garbage (renamed; shrunk in steps once
 * the rename is durable, so that a crash never finds a shrunk segment under its name). */
static bool raftstore_collect_segment(struct raftstore *store) {
    char name[WAL_NAME_BYTES];
    bool retired = false;
    struct errmsg msg;
    int rc = wal_retire_one_before(store->wal, store->compact_lsn, name, &retired, &msg);
    if (rc != 0) {
        raftstore_fail(store, rc);
        return false;
    }
    if (!retired) {
        store->compact_lsn = 0;
        return false;
    }
    buf_append(&store->garbage, name, strlen(name) + 1);
    store->dir_unsynced = true;
    return true;
}

static void raftstore_sync_dir_now(struct raftstore *store) {
    struct errmsg msg;
    store->dir_unsynced = false;
    if (store->disk->sync_dir(store->disk, &msg) != 0) raftstore_fail(store, ERR_IO);
}

bool raftstore_collect(struct raftstore *store, bool all) {
    ASSERT(!all || !store->dir_syncing);
    do {
        if (store->failed != 0 || store->dir_syncing) break;
        if (store->dir_unsynced) {
            if (!all) break; /* the caller's sync of the directory comes first */
            raftstore_sync_dir_now(store);
        }
        bool retired = false;
        if (store->compact_lsn != 0) retired = raftstore_collect_segment(store);
        if (!retired && store->garbage_pos < store->garbage.len) raftstore_collect_file(store);
    } while (all && raftstore_collect_pending(store));
    if (all && store->dir_unsynced && store->failed == 0) raftstore_sync_dir_now(store);
    return raftstore_collect_pending(store);
}

bool raftstore_collect_pending(const struct raftstore *store) {
    if (store->failed != 0) return false;
    if (store->dir_unsynced || store->dir_syncing) return true;
    if (store->compact_lsn != 0) return true;
    return store->garbage_pos < store->garbage.len &&
           (store->shrinking != NULL ||
            !raftstore_pinned(store, (const char *)store->garbage.data + store->garbage_pos));
}

bool raftstore_dir_sync_begin(struct raftstore *store, struct disk_file **file) {
    if (store->failed != 0 || !store->dir_unsynced || store->dir_syncing) return false;
    store->dir_unsynced = false;
    store->dir_syncing = true;
    *file = store->disk->dir_file(store->disk);
    return true;
}

void raftstore_dir_sync_end(struct raftstore *store, int sync_rc) {
    ASSERT(store->dir_syncing);
    store->dir_syncing = false;
    if (sync_rc != 0) raftstore_fail(store, ERR_IO);
}

/* raftstore_save_snapshot, with the blob in meta->data or (data_id != 0) in that data
 * file, durable and in place already. */
static int raftstore_snapshot_save(struct raftstore *store, const struct raft_snapshot_meta *meta,
                                   enum raftstore_snapshot_kind kind, uint64_t data_id,
                                   struct errmsg *msg) {
    ASSERT(store != NULL && meta != NULL);
    ASSERT(kind == RAFTSTORE_SNAPSHOT_TAKEN || kind == RAFTSTORE_SNAPSHOT_RESTORED);
    ASSERT(meta->index >= 1 && meta->term >= 1);
    ASSERT(data_id != 0 || meta->data != NULL || meta->data_bytes == 0);
    ASSERT(!store->sync_inflight);
    if (store->failed != 0) return errmsg_set(msg, store->failed, "raftstore failed earlier");
    if (kind == RAFTSTORE_SNAPSHOT_TAKEN) {
        if (meta->index <= store->snapshot.index) return 0;
        uint64_t term = 0;
        ASSERT(raftstore_term_at(store, meta->index, &term));
        ASSERT(term == meta->term);
    }
    if (meta->data_bytes > RAFTSTORE_SNAPSHOT_BYTES_MAX) {
        return errmsg_set(msg, ERR_LIMIT, "snapshot of %llu bytes (max %llu)",
                          (unsigned long long)meta->data_bytes, RAFTSTORE_SNAPSHOT_BYTES_MAX);
    }
    /* Everything before the snapshot durable first: its meta carries the hard state, and
     * the records before its start lsn must not be lost behind it. */
    int rc = raftstore_sync(store, msg);
    store->batch_cap = 0;
    store->entries_reserved = 0;
    if (rc == 0)
        rc = wal_reserve(store->wal, RAFTSTORE_MARK_BYTES + RAFTSTORE_HARD_STATE_BYTES, msg);
    if (rc != 0) return raftstore_fail(store, rc);
    if (store->recovered != NULL) raftstore_free_recovered(store);
    struct raftstore_snapwrite sw = {
        .meta = meta, .kind = kind, .start_lsn = wal_last_lsn(store->wal) + 1, .data_id = data_id};
    sw.keep_lsn = raftstore_snapshot_keep_lsn(store, &sw);
    rc = raftstore_snapshot_write(store, &sw, msg);
    if (rc != 0) return raftstore_fail(store, rc);
    raftstore_snapshot_install(store, &sw);
    /* The old snapshot's data file (or a stream's leftovers) is garbage now. */
    raftstore_garbage(store, data_id);
    rc = raftstore_snapshot_mark(store, msg);
    if (rc == 0) ASSERT(wal_last_lsn(store->wal) == sw.start_lsn);
    if (rc != 0) return raftstore_fail(store, rc);
    store->compact_lsn = sw.keep_lsn; /* raftstore_collect removes the segments below */
    return 0;
}

int raftstore_save_snapshot(struct raftstore *store, const struct raft_snapshot_meta *meta,
                            enum raftstore_snapshot_kind kind, struct errmsg *msg) {
    raftstore_stream_abort(store);
    return raftstore_snapshot_save(store, meta, kind, 0, msg);
}

/* ---- streamed snapshots ---- */

struct raftstore_stream {
    struct snapshot_writer *writer;
    uint64_t id;
    uint64_t bytes; /* blob bytes added */
    bool sealed;
};

int raftstore_stream_begin(struct raftstore *store, struct errmsg *msg) {
    ASSERT(store->stream == NULL);
    if (store->failed != 0) return errmsg_set(msg, store->failed, "raftstore failed earlier");
    struct raftstore_stream *st = base_calloc(1, sizeof(*st));
    st->id = store->next_data_id++;
    int rc = snapshot_writer_open_as(store->disk, RAFTSTORE_DATA_PREFIX, st->id, &st->writer, msg);
    if (rc != 0) {
        free(st);
        return rc;
    }
    store->stream = st;
    return 0;
}

uint64_t raftstore_log_bytes(const struct raftstore *store) {
    return wal_bytes_since(store->wal, store->snapshot_start_lsn);
}

struct disk *raftstore_disk(const struct raftstore *store) {
    return store->disk;
}

bool raftstore_stream_active(const struct raftstore *store) {
    return store->stream != NULL;
}

struct disk_file *raftstore_stream_file(const struct raftstore *store, uint64_t *written) {
    ASSERT(store->stream != NULL);
    return snapshot_writer_file(store->stream->writer, written);
}

uint64_t raftstore_stream_bytes(const struct raftstore *store) {
    return store->stream != NULL ? store->stream->bytes : 0;
}

int raftstore_stream_add(struct raftstore *store, const uint8_t *data, size_t bytes,
                         struct errmsg *msg) {
    struct raftstore_stream *st = store->stream;
    ASSERT(st != NULL && !st->sealed);
    if (st->bytes + bytes > RAFTSTORE_SNAPSHOT_BYTES_MAX)
        return errmsg_set(msg, ERR_LIMIT, "snapshot over %llu bytes", RAFTSTORE_SNAPSHOT_BYTES_MAX);
    int rc = snapshot_writer_add(st->writer, data, bytes, msg);
    if (rc == 0) st->bytes += bytes;
    return rc;
}

int raftstore_stream_seal(struct raftstore *store, struct disk_file **file, struct errmsg *msg) {
    struct raftstore_stream *st = store->stream;
    ASSERT(st != NULL && !st->sealed);
    int rc = snapshot_writer_seal(st->writer, file, msg);
    if (rc == 0) st->sealed = true;
    return rc;
}

static void raftstore_commit_abort(struct raftstore *store);

void raftstore_stream_abort(struct raftstore *store) {
    raftstore_commit_abort(store);
    struct raftstore_stream *st = store->stream;
    if (st == NULL) return;
    snapshot_writer_abort(st->writer);
    free(st);
    store->stream = NULL;
}

/* ---- committing a streamed snapshot in steps ----
 * The order of "Writing order of a snapshot" (docs/formats.md), with every fsync left to
 * the caller's sync thread and the log going on meanwhile:
 *   begin     (loop) the data file renamed into place; the WAL's batch flushed, so that
 *             the snapshot file's lsn L is the next record's; the snapshot file written as
 *             .tmp, its meta carrying the hard state as of now (later ones are records at
 *             lsn >= L, which replace it);
 *   FILE      sync the .tmp;
 *   DATA_DIR  sync the directory: the data file's name is durable;
 *   LOG       wait until the log's own syncs made every record below L durable, then
 *             (loop) rename the .tmp into place;
 *   DIR       sync the directory: the commit point. Then (loop) the snapshot replaces the
 *             current one in memory, the older files become garbage, SNAPSHOT_MARK and
 *             HARD_STATE go into the batch (its next record, lsn >= L), the log's
 *             segments below K go in raftstore_collect's steps.
 * A crash at any point leaves the older snapshot with its whole log, or (once the .snap
 * name is durable, possibly before DIR ends) the new one with the log from K on. */
static void raftstore_commit_abort(struct raftstore *store) {
    struct raftstore_commit *c = store->commit;
    if (c == NULL) return;
    ASSERT(!c->syncing); /* the caller's sync thread may be using the file */
    /* A placed .snap is a whole snapshot already (a reopen may take it, with its data
     * file): a restore's own commit removes it as older before its garbage goes, and open
     * removes a data file the snapshot it loads does not name. */
    if (c->writer != NULL) snapshot_writer_abort(c->writer); /* removes the .tmp */
    free(c);
    store->commit = NULL;
}

int raftstore_commit_begin(struct raftstore *store, const struct raft_snapshot_meta *meta,
                           struct errmsg *msg) {
    struct raftstore_stream *st = store->stream;
    ASSERT(st != NULL && st->sealed && store->commit == NULL);
    if (store->failed != 0) return errmsg_set(msg, store->failed, "raftstore failed earlier");
    struct raftstore_commit *c = base_calloc(1, sizeof(*c));
    c->meta = *meta;
    c->meta.data = NULL;
    c->meta.data_bytes = st->bytes;
    c->data_id = st->id;
    store->stream = NULL;
    int rc = snapshot_writer_place(st->writer, msg); /* synced by the caller */
    free(st);
    if (rc == 0 && c->meta.index <= store->snapshot.index) { /* overtaken by a restore */
        raftstore_garbage(store, store->snapshot_data_id);
        free(c);
        return 0;
    }
    if (rc == 0) {
        uint64_t term = 0;
        ASSERT(raftstore_term_at(store, c->meta.index, &term) && term == c->meta.term);
        rc = raftstore_flush(store, msg);
    }
    if (rc != 0) {
        free(c);
        return raftstore_fail(store, rc);
    }
    c->start_lsn = wal_last_lsn(store->wal) + 1;
    struct raftstore_snapwrite sw = {.meta = &c->meta,
                                     .kind = RAFTSTORE_SNAPSHOT_TAKEN,
                                     .start_lsn = c->start_lsn,
                                     .data_id = c->data_id};
    c->keep_lsn = sw.keep_lsn = raftstore_snapshot_keep_lsn(store, &sw);
    rc = snapshot_writer_open(store->disk, c->start_lsn, &c->writer, msg);
    if (rc == 0) rc = raftstore_snapshot_add_data(store, c->writer, &sw, msg);
    struct disk_file *file = NULL;
    if (rc == 0) rc = snapshot_writer_seal(c->writer, &file, msg);
    if (rc != 0) {
        snapshot_writer_abort(c->writer);
        free(c);
        return raftstore_fail(store, rc);
    }
    c->step = RAFTSTORE_COMMIT_FILE;
    store->commit = c;
    return 0;
}

bool raftstore_commit_active(const struct raftstore *store) {
    return store->commit != NULL;
}

bool raftstore_commit_sync_begin(struct raftstore *store, struct disk_file **file) {
    struct raftstore_commit *c = store->commit;
    if (c == NULL || c->syncing || store->failed != 0) return false;
    struct disk *d = store->disk;
    uint64_t written = 0;
    switch (c->step) {
    case RAFTSTORE_COMMIT_FILE:
        *file = snapshot_writer_file(c->writer, &written);
        break;
    case RAFTSTORE_COMMIT_LOG: {
        if (raftstore_durable_lsn(store) + 1 < c->start_lsn) return false; /* the log's turn */
        struct errmsg msg;
        int rc = snapshot_writer_place(c->writer, &msg);
        c->writer = NULL;
        if (rc != 0) {
            raftstore_fail(store, rc);
            return false;
        }
        c->step = RAFTSTORE_COMMIT_DIR;
        *file = d->dir_file(d);
        break;
    }
    case RAFTSTORE_COMMIT_DATA_DIR:
    case RAFTSTORE_COMMIT_DIR:
        *file = d->dir_file(d);
        break;
    }
    c->syncing = true;
    return true;
}

/* Committed: memory as a reopen would find it, the mark in the batch, garbage listed. */
static int raftstore_commit_finish(struct raftstore *store, const struct raftstore_commit *c,
                                   struct errmsg *msg) {
    int rc = wal_reserve(store->wal,
                         (size_t)(store->batch_cap + RAFTSTORE_MARK_BYTES +
                                  RAFTSTORE_HARD_STATE_BYTES + RAFTSTORE_RECORD_SLACK_BYTES),
                         msg);
    if (rc != 0) return raftstore_fail(store, rc);
    if (store->recovered != NULL) raftstore_free_recovered(store);
    struct raftstore_snapwrite sw = {.meta = &c->meta,
                                     .kind = RAFTSTORE_SNAPSHOT_TAKEN,
                                     .start_lsn = c->start_lsn,
                                     .keep_lsn = c->keep_lsn,
                                     .data_id = c->data_id};
    raftstore_snapshot_install(store, &sw);
    raftstore_garbage(store, c->data_id);
    snapshot_remove_older(store->disk, c->start_lsn);
    store->dir_unsynced = true; /* the removals: not needed for safety */
    store->batch_cap += RAFTSTORE_MARK_BYTES + RAFTSTORE_HARD_STATE_BYTES +
                        RAFTSTORE_RECORD_SLACK_BYTES;
    raftstore_put_mark(store);
    store->compact_lsn = c->keep_lsn;
    return 0;
}

int raftstore_commit_sync_end(struct raftstore *store, int sync_rc, struct errmsg *msg) {
    struct raftstore_commit *c = store->commit;
    ASSERT(c != NULL && c->syncing);
    c->syncing = false;
    if (sync_rc != 0) {
        raftstore_fail(store, ERR_IO);
        return errmsg_set(msg, ERR_IO, "fsync during a snapshot's commit failed");
    }
    if (c->step != RAFTSTORE_COMMIT_DIR) {
        c->step++;
        return 0;
    }
    store->commit = NULL;
    int rc = raftstore_commit_finish(store, c, msg);
    free(c);
    return rc;
}

int raftstore_stream_commit(struct raftstore *store, const struct raft_snapshot_meta *meta,
                            struct errmsg *msg) {
    int rc = raftstore_commit_begin(store, meta, msg);
    while (rc == 0 && store->commit != NULL) {
        struct disk_file *file = NULL;
        if (!raftstore_commit_sync_begin(store, &file)) {
            rc = store->failed != 0 ? errmsg_set(msg, store->failed, "raftstore failed")
                                    : raftstore_sync(store, msg);
            continue;
        }
        rc = raftstore_commit_sync_end(store, store->disk->sync(store->disk, file, msg), msg);
    }
    return rc;
}

int raftstore_snapshot_load(struct raftstore *store, struct errmsg *msg) {
    if (store->snapshot.index == 0 || store->snapshot_data != NULL ||
        store->snapshot.data_bytes == 0)
        return 0;
    struct raftstore_snapload s = {.store = store, .data_only = true, .offset = 32};
    uint64_t start_lsn = 0;
    int rc = raftstore_snapload(&s, &start_lsn, msg);
    if (rc == 0 && start_lsn != store->snapshot_start_lsn)
        rc = errmsg_set(msg, ERR_CORRUPT, "the snapshot file at lsn %llu is gone",
                        (unsigned long long)store->snapshot_start_lsn);
    if (rc == 0 && store->snapshot_data == NULL)
        rc = errmsg_set(msg, ERR_CORRUPT, "the snapshot's blob is missing");
    if (rc != 0) {
        free(store->snapshot_data);
        store->snapshot_data = NULL;
        return rc;
    }
    store->snapshot.data = store->snapshot_data;
    return 0;
}

void raftstore_snapshot_drop(struct raftstore *store) {
    free(store->snapshot_data);
    store->snapshot_data = NULL;
    store->snapshot.data = NULL;
}

/* ---- queries ---- */

const struct raft_snapshot_meta *raftstore_snapshot(const struct raftstore *store) {
    ASSERT(store != NULL);
    ASSERT(store->snapshot.data == store->snapshot_data);
    return &store->snapshot;
}

struct raft_hard_state raftstore_hard_state(const struct raftstore *store) {
    ASSERT(store != NULL);
    return store->hard_state;
}

bool raftstore_term_at(const struct raftstore *store, uint64_t index, uint64_t *term) {
    ASSERT(store != NULL && term != NULL);
    if (index == store->snapshot.index) {
        *term = store->snapshot.term;
        return true;
    }
    if (index < raftstore_first_index(store) || index > raftstore_last_index(store)) {
        return false;
    }
    *term = store->slots[index - raftstore_first_index(store)].term;
    ASSERT(*term >= 1);
    return true;
}

/* ---- the blob in pieces ---- */

struct raftstore_pieces {
    raftstore_piece_fn *fn;
    void *ctx;
    uint64_t entries;
    uint64_t bytes;
};

static int raftstore_pieces_data(void *ctx, const uint8_t *p, size_t n) {
    struct raftstore_pieces *r = ctx;
    r->bytes += n;
    return n > 0 ? r->fn(r->ctx, p, n) : 0;
}

/* The snapshot file's entries: the meta, then chunks (checked by open already). */
static int raftstore_pieces_chunk(void *ctx, const uint8_t *p, size_t n) {
    struct raftstore_pieces *r = ctx;
    if (r->entries++ == 0 || n == 0 || p[0] != RAFTSTORE_SNAP_CHUNK) return 0;
    return raftstore_pieces_data(r, p + 1, n - 1);
}

int raftstore_snapshot_read(struct raftstore *store, raftstore_piece_fn *fn, void *ctx,
                            struct errmsg *msg) {
    ASSERT(store != NULL && fn != NULL);
    const struct raft_snapshot_meta *m = &store->snapshot;
    if (m->index == 0 || m->data_bytes == 0) return 0;
    if (store->snapshot_data != NULL) return fn(ctx, store->snapshot_data, (size_t)m->data_bytes);
    struct raftstore_pieces r = {.fn = fn, .ctx = ctx};
    int rc;
    if (store->snapshot_data_id != 0) {
        rc = snapshot_load_as(store->disk, RAFTSTORE_DATA_PREFIX, store->snapshot_data_id,
                              raftstore_pieces_data, &r, msg);
    } else {
        uint64_t lsn = 0;
        rc = snapshot_load(store->disk, raftstore_pieces_chunk, &r, &lsn, msg);
        if (rc == 0 && lsn != store->snapshot_start_lsn)
            rc = errmsg_set(msg, ERR_CORRUPT, "the snapshot file at lsn %llu is gone",
                            (unsigned long long)store->snapshot_start_lsn);
    }
    if (rc == 0 && r.bytes != m->data_bytes)
        rc = errmsg_set(msg, ERR_CORRUPT, "snapshot blob of %llu bytes, its meta says %llu",
                        (unsigned long long)r.bytes, (unsigned long long)m->data_bytes);
    return rc;
}

/* ---- data files read by others (InstallSnapshot in chunks) ---- */

int raftstore_data_open(struct raftstore *store, uint64_t *id, struct disk_file **file,
                        uint64_t *bytes, struct errmsg *msg) {
    ASSERT(store != NULL && id != NULL && file != NULL && bytes != NULL);
    if (store->snapshot.index == 0 || store->snapshot_data_id == 0)
        return errmsg_set(msg, ERR_NOTFOUND, "the snapshot at index %llu has no data file",
                          (unsigned long long)store->snapshot.index);
    size_t slot = 0;
    while (slot < RAFTSTORE_PINS_MAX && store->pins[slot] != 0) slot++;
    if (slot == RAFTSTORE_PINS_MAX)
        return errmsg_set(msg, ERR_LIMIT, "%d data files open already", RAFTSTORE_PINS_MAX);
    char name[RAFTSTORE_NAME_BYTES];
    snprintf(name, sizeof(name), "%s-%016llx.snap", RAFTSTORE_DATA_PREFIX,
             (unsigned long long)store->snapshot_data_id);
    struct disk *d = store->disk;
    int rc = d->open(d, name, DISK_OPEN_READ, file, msg);
    if (rc != 0) return rc;
    rc = d->size(d, *file, bytes, msg);
    if (rc != 0) {
        d->close(d, *file);
        return rc;
    }
    store->pins[slot] = store->snapshot_data_id;
    *id = store->snapshot_data_id;
    return 0;
}

void raftstore_data_close(struct raftstore *store, uint64_t id, struct disk_file *file) {
    ASSERT(store != NULL && file != NULL);
    store->disk->close(store->disk, file);
    for (size_t i = 0; i < RAFTSTORE_PINS_MAX; i++) {
        if (store->pins[i] != id) continue;
        store->pins[i] = 0;
        return;
    }
    UNREACHABLE();
}

/* ---- receiving a data file (InstallSnapshot in chunks) ---- */

static void raftstore_recv_name(uint64_t index, char name[RAFTSTORE_NAME_BYTES]) {
    snprintf(name, RAFTSTORE_NAME_BYTES, "%s%016llx.tmp", RAFTSTORE_RECV_PREFIX,
             (unsigned long long)index);
}

struct raftstore_recv_list {
    struct disk *disk;
    uint64_t best;
    bool removed;
};

/* Keeps the newest partial file (highest index), removes the others. */
static void raftstore_recv_list_one(void *ctx, const char *name) {
    struct raftstore_recv_list *l = ctx;
    struct raftstore_find f = {
        .prefix = RAFTSTORE_RECV_PREFIX, .suffix = ".tmp", .lsn = UINT64_MAX};
    raftstore_find_one(&f, name);
    if (f.best == 0) return;
    char old[RAFTSTORE_NAME_BYTES];
    if (l->best != 0 && f.best < l->best) {
        l->disk->remove(l->disk, name, NULL);
        l->removed = true;
        return;
    }
    if (l->best != 0) {
        raftstore_recv_name(l->best, old);
        l->disk->remove(l->disk, old, NULL);
        l->removed = true;
    }
    l->best = f.best;
}

static void raftstore_recv_found(struct raftstore *store) {
    struct raftstore_recv_list l = {.disk = store->disk};
    (void)store->disk->list(store->disk, raftstore_recv_list_one, &l, NULL);
    if (l.removed) store->disk->sync_dir(store->disk, NULL);
    store->recv_found_index = l.best;
}

static int raftstore_recv_remove(struct raftstore *store) {
    char name[RAFTSTORE_NAME_BYTES];
    memcpy(name, store->recv.name, sizeof(name));
    bool had = store->recv.name[0] != '\0';
    raftstore_recv_close(store);
    if (!had) return 0;
    store->disk->remove(store->disk, name, NULL);
    return 0;
}

bool raftstore_recv_resume(struct raftstore *store, uint64_t distrust, uint64_t *index,
                           uint64_t *bytes) {
    ASSERT(store != NULL && store->recv.file == NULL);
    uint64_t found = store->recv_found_index;
    store->recv_found_index = 0;
    if (found == 0) return false;
    struct disk *d = store->disk;
    raftstore_recv_name(found, store->recv.name);
    uint64_t size = 0;
    if (d->open(d, store->recv.name, DISK_OPEN_WRITE, &store->recv.file, NULL) != 0 ||
        d->size(d, store->recv.file, &size, NULL) != 0) {
        raftstore_recv_remove(store);
        return false;
    }
    /* Bytes near the end may not have been synced before the restart: drop them. */
    uint64_t keep = size > distrust ? size - distrust : 0;
    if (d->truncate(d, store->recv.file, keep, NULL) != 0) {
        raftstore_recv_remove(store);
        return false;
    }
    store->recv.index = found;
    store->recv.bytes = keep;
    *index = found;
    *bytes = keep;
    return true;
}

int raftstore_recv_begin(struct raftstore *store, uint64_t index, struct errmsg *msg) {
    ASSERT(store != NULL && index != 0);
    raftstore_recv_remove(store);
    if (store->failed != 0) return errmsg_set(msg, store->failed, "raftstore failed earlier");
    raftstore_recv_name(index, store->recv.name);
    struct disk *d = store->disk;
    int rc =
        d->open(d, store->recv.name, DISK_OPEN_WRITE | DISK_OPEN_CREATE, &store->recv.file, msg);
    if (rc == 0) rc = d->truncate(d, store->recv.file, 0, msg);
    if (rc == 0) rc = d->sync_dir(d, msg); /* its name survives a crash: it can resume */
    if (rc != 0) {
        raftstore_recv_remove(store);
        return rc;
    }
    store->recv.index = index;
    return 0;
}

int raftstore_recv_write(struct raftstore *store, uint64_t offset, const uint8_t *data,
                         size_t bytes, struct errmsg *msg) {
    ASSERT(store != NULL && store->recv.file != NULL && !store->recv.checked);
    ASSERT(offset == store->recv.bytes);
    if (offset + bytes > RAFTSTORE_SNAPSHOT_BYTES_MAX + RAFTSTORE_SNAPSHOT_BYTES_MAX / 64)
        return errmsg_set(msg, ERR_LIMIT, "a snapshot data file over %llu bytes",
                          RAFTSTORE_SNAPSHOT_BYTES_MAX);
    int rc = store->disk->write(store->disk, store->recv.file, offset, data, bytes, msg);
    if (rc == 0) store->recv.bytes += bytes;
    return rc;
}

struct disk_file *raftstore_recv_file(const struct raftstore *store, uint64_t *written) {
    ASSERT(store != NULL);
    *written = store->recv.bytes;
    return store->recv.file;
}

bool raftstore_recv_active(const struct raftstore *store, uint64_t *index, uint64_t *bytes) {
    *index = store->recv.index;
    *bytes = store->recv.bytes;
    return store->recv.file != NULL;
}

static int raftstore_recv_count(void *ctx, const uint8_t *p, size_t n) {
    (void)p;
    *(uint64_t *)ctx += n;
    return 0;
}

int raftstore_recv_check(struct raftstore *store, uint64_t *blob_bytes, struct errmsg *msg) {
    ASSERT(store != NULL && store->recv.file != NULL);
    uint64_t blob = 0;
    int rc = snapshot_load_file(store->disk, store->recv.name, raftstore_recv_count, &blob, msg);
    if (rc == 0 && blob > RAFTSTORE_SNAPSHOT_BYTES_MAX)
        rc = errmsg_set(msg, ERR_LIMIT, "snapshot blob of %llu bytes (max %llu)",
                        (unsigned long long)blob, RAFTSTORE_SNAPSHOT_BYTES_MAX);
    if (rc != 0) return rc;
    store->recv.checked = true;
    store->recv.blob_bytes = blob;
    *blob_bytes = blob;
    return 0;
}

int raftstore_recv_commit(struct raftstore *store, const struct raft_snapshot_meta *meta,
                          struct errmsg *msg) {
    ASSERT(store != NULL && meta != NULL);
    ASSERT(store->recv.file != NULL && store->recv.checked && store->recv.index == meta->index);
    if (store->failed != 0) return errmsg_set(msg, store->failed, "raftstore failed earlier");
    raftstore_stream_abort(store); /* the state it was scanning is being replaced */
    struct disk *d = store->disk;
    struct raft_snapshot_meta m = *meta;
    m.data = NULL;
    m.data_bytes = store->recv.blob_bytes;
    char from[RAFTSTORE_NAME_BYTES];
    char to[RAFTSTORE_NAME_BYTES];
    memcpy(from, store->recv.name, sizeof(from));
    uint64_t id = store->next_data_id++;
    snprintf(to, sizeof(to), "%s-%016llx.snap", RAFTSTORE_DATA_PREFIX, (unsigned long long)id);
    raftstore_recv_close(store);
    int rc = d->rename(d, from, to, msg); /* the caller synced it */
    if (rc == 0) rc = d->sync_dir(d, msg);
    if (rc != 0) {
        d->remove(d, from, NULL);
        return raftstore_fail(store, rc);
    }
    return raftstore_snapshot_save(store, &m, RAFTSTORE_SNAPSHOT_RESTORED, id, msg);
}

void raftstore_recv_abort(struct raftstore *store) {
    ASSERT(store != NULL);
    raftstore_recv_remove(store);
}
