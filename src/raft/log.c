/*
 * Raft's in-memory log: entries snapshot_index + 1 .. last in one array, each entry's data
 * a private copy. The durable copy lives with the caller (effects.entries); this one is
 * what raft reasons about. Invariant: terms never decrease along the log and never drop
 * below the snapshot's term; entry i sits at entries[i - snapshot_index - 1].
 *
 * The copies are packed in index order into blocks of RAFT_LOG_BLOCK_BYTES mapped from the
 * system (a bigger entry gets a block of its own size), and a block is unmapped once
 * compaction or truncation has dropped all its entries. Entries come and go in order, so
 * this costs no bookkeeping per entry, and the memory a compacted log held returns to the
 * system at once: with one malloc per entry it stayed in the heap as holes (a 3-node
 * cluster's node held 64 MB free in the heap after 1,000,000 keys, half its db's size).
 */
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "raft/internal.h"

#define RAFT_LOG_BLOCK_BYTES (1u << 20)
#define RAFT_LOG_PAGE_BYTES 4096u

static void raft_log_block_drop(struct raft_log_block *b) {
    base_unmap(b->base, b->cap);
    memset(b, 0, sizeof(*b));
}

/* Room for bytes of entry index's data: the last block's, or a new block's. */
static uint8_t *raft_log_place(struct raft_log *log, uint64_t index, size_t bytes) {
    struct raft_log_block *b =
        log->block_count > log->retired ? &log->blocks[log->block_count - 1] : NULL;
    if (b == NULL || b->cap - b->used < bytes) {
        if (log->block_count == log->block_cap) {
            log->block_cap = log->block_cap == 0 ? 8 : log->block_cap * 2;
            log->blocks = base_realloc(log->blocks, log->block_cap * sizeof(*log->blocks));
        }
        b = &log->blocks[log->block_count++];
        b->cap = bytes <= RAFT_LOG_BLOCK_BYTES ? RAFT_LOG_BLOCK_BYTES
                                               : (bytes + RAFT_LOG_PAGE_BYTES - 1) /
                                                     RAFT_LOG_PAGE_BYTES * RAFT_LOG_PAGE_BYTES;
        b->base = base_map(b->cap);
        b->used = 0;
        b->first_index = index;
    }
    uint8_t *at = b->base + b->used;
    b->used += bytes;
    b->last_index = index;
    return at;
}

/* Compaction dropped the entries up to index: the blocks that held only those retire. */
static void raft_log_blocks_compacted(struct raft_log *log, uint64_t index) {
    while (log->retired < log->block_count && log->blocks[log->retired].last_index <= index)
        log->retired++;
}

bool raft_log_release(struct raft_log *log, size_t blocks) {
    size_t drop = blocks < log->retired ? blocks : log->retired;
    if (drop == 0) return log->retired > 0; /* the common case: nothing retired */
    for (size_t i = 0; i < drop; i++) raft_log_block_drop(&log->blocks[i]);
    memmove(log->blocks, log->blocks + drop, (log->block_count - drop) * sizeof(*log->blocks));
    log->block_count -= drop;
    log->retired -= drop;
    return log->retired > 0;
}

/* Truncation drops the entries from index from on (still in the array). The last block
 * left keeps the data of the entries before from, up to the newest of them that is still
 * in the log; with none, it goes too. */
static void raft_log_blocks_truncated(struct raft_log *log, uint64_t from) {
    while (log->block_count > log->retired && log->blocks[log->block_count - 1].first_index >= from)
        raft_log_block_drop(&log->blocks[--log->block_count]);
    if (log->block_count == log->retired) return;
    struct raft_log_block *b = &log->blocks[log->block_count - 1];
    if (b->last_index < from) return;
    const uint8_t *cut = NULL; /* the first data from `from` on: in this block */
    for (uint64_t i = from; cut == NULL && i <= raft_log_last_index(log); i++)
        cut = raft_log_get(log, i)->data;
    ASSERT(cut != NULL && cut >= b->base && cut < b->base + b->used);
    b->used = (size_t)(cut - b->base);
    uint64_t keep = from - 1;
    while (keep > log->snapshot_index && keep >= b->first_index &&
           raft_log_get(log, keep)->data == NULL)
        keep--;
    if (keep <= log->snapshot_index || keep < b->first_index) {
        raft_log_block_drop(&log->blocks[--log->block_count]);
        return;
    }
    b->last_index = keep;
}

static void raft_log_blocks_free(struct raft_log *log) {
    for (size_t i = 0; i < log->block_count; i++) raft_log_block_drop(&log->blocks[i]);
    log->block_count = 0;
    log->retired = 0;
}

void raft_log_init(struct raft_log *log, uint64_t snapshot_index, uint64_t snapshot_term,
                   const struct raft_config *config) {
    ASSERT(log != NULL && config != NULL);
    if (snapshot_index == 0) ASSERT(snapshot_term == 0);
    memset(log, 0, sizeof(*log));
    log->snapshot_index = snapshot_index;
    log->snapshot_term = snapshot_term;
    log->snapshot_config = *config;
}

/* The entry goes (its data with its block, in the caller's raft_log_blocks_*). */
static void raft_log_free_entry(struct raft_log *log, struct raft_entry *e) {
    ASSERT(log->bytes >= e->data_bytes);
    log->bytes -= e->data_bytes;
    e->data = NULL;
}

void raft_log_deinit(struct raft_log *log) {
    for (size_t i = 0; i < log->count; i++) raft_log_free_entry(log, &log->entries[i]);
    raft_log_blocks_free(log);
    free(log->entries);
    free(log->blocks);
    memset(log, 0, sizeof(*log));
}

uint64_t raft_log_last_index(const struct raft_log *log) {
    return log->snapshot_index + log->count;
}

uint64_t raft_log_last_term(const struct raft_log *log) {
    return log->count == 0 ? log->snapshot_term : log->entries[log->count - 1].term;
}

uint64_t raft_log_term(const struct raft_log *log, uint64_t index) {
    if (index == log->snapshot_index) return log->snapshot_term;
    if (index < log->snapshot_index || index > raft_log_last_index(log)) return UINT64_MAX;
    const struct raft_entry *e = &log->entries[index - log->snapshot_index - 1];
    ASSERT(e->index == index);
    return e->term;
}

const struct raft_entry *raft_log_get(const struct raft_log *log, uint64_t index) {
    if (index <= log->snapshot_index || index > raft_log_last_index(log)) return NULL;
    const struct raft_entry *e = &log->entries[index - log->snapshot_index - 1];
    ASSERT(e->index == index);
    return e;
}

void raft_log_append(struct raft_log *log, const struct raft_entry *e) {
    ASSERT(e->index == raft_log_last_index(log) + 1);
    /* Raft §5.3: terms along a log never decrease. */
    ASSERT(e->term >= raft_log_last_term(log));
    ASSERT(e->data_bytes <= RAFT_ENTRY_BYTES_MAX);
    if (log->count == log->cap) {
        log->cap = log->cap == 0 ? 64 : log->cap * 2;
        log->entries = base_realloc(log->entries, log->cap * sizeof(*log->entries));
    }
    struct raft_entry *copy = &log->entries[log->count];
    *copy = *e;
    copy->data = NULL;
    if (e->data_bytes > 0) {
        ASSERT(e->data != NULL);
        uint8_t *data = raft_log_place(log, e->index, e->data_bytes);
        memcpy(data, e->data, e->data_bytes);
        copy->data = data;
    }
    log->bytes += e->data_bytes;
    log->count++;
}

void raft_log_truncate(struct raft_log *log, uint64_t from) {
    ASSERT(from > log->snapshot_index);
    ASSERT(from <= raft_log_last_index(log) + 1);
    size_t keep = (size_t)(from - log->snapshot_index - 1);
    raft_log_blocks_truncated(log, from);
    for (size_t i = keep; i < log->count; i++) raft_log_free_entry(log, &log->entries[i]);
    log->count = keep;
    ASSERT(raft_log_last_index(log) == from - 1);
}

void raft_log_compact(struct raft_log *log, uint64_t index, const struct raft_config *config) {
    ASSERT(index >= log->snapshot_index);
    ASSERT(index <= raft_log_last_index(log));
    uint64_t term = raft_log_term(log, index);
    size_t drop = (size_t)(index - log->snapshot_index);
    for (size_t i = 0; i < drop; i++) raft_log_free_entry(log, &log->entries[i]);
    raft_log_blocks_compacted(log, index);
    memmove(log->entries, log->entries + drop, (log->count - drop) * sizeof(*log->entries));
    log->count -= drop;
    log->snapshot_index = index;
    log->snapshot_term = term;
    log->snapshot_config = *config;
    ASSERT(raft_log_term(log, index) == term);
}

void raft_log_reset(struct raft_log *log, uint64_t index, uint64_t term,
                    const struct raft_config *config) {
    for (size_t i = 0; i < log->count; i++) raft_log_free_entry(log, &log->entries[i]);
    log->retired = log->block_count; /* raft_log_release unmaps them */
    log->count = 0;
    log->snapshot_index = index;
    log->snapshot_term = term;
    log->snapshot_config = *config;
    ASSERT(raft_log_last_index(log) == index);
}

uint64_t raft_log_term_first_index(const struct raft_log *log, uint64_t index) {
    uint64_t term = raft_log_term(log, index);
    ASSERT(term != UINT64_MAX);
    uint64_t first = index;
    while (first > log->snapshot_index + 1 && raft_log_term(log, first - 1) == term) first--;
    ASSERT(first <= index);
    return first;
}

uint64_t raft_log_last_index_of_term(const struct raft_log *log, uint64_t term) {
    uint64_t i = raft_log_last_index(log);
    while (i > log->snapshot_index && raft_log_term(log, i) > term) i--;
    if (raft_log_term(log, i) > term) return 0;
    return i;
}
