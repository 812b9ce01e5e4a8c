/*
 * Raft's in-memory log: entries snapshot_index + 1 .. last in one array, each entry's data
 * a private copy. The durable copy lives with the caller (effects.entries); this one is
 * what raft reasons about. Invariant: terms never decrease along the log and never drop
 * below the snapshot's term; entry i sits at entries[i - snapshot_index - 1].
 */
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "raft/internal.h"

void raft_log_init(struct raft_log *log, uint64_t snapshot_index, uint64_t snapshot_term,
                   const struct raft_config *config) {
    ASSERT(log != NULL && config != NULL);
    if (snapshot_index == 0) ASSERT(snapshot_term == 0);
    memset(log, 0, sizeof(*log));
    log->snapshot_index = snapshot_index;
    log->snapshot_term = snapshot_term;
    log->snapshot_config = *config;
}

static void raft_log_free_entry(struct raft_log *log, struct raft_entry *e) {
    ASSERT(log->bytes >= e->data_bytes);
    log->bytes -= e->data_bytes;
    free((void *)e->data);
    e->data = NULL;
}

void raft_log_deinit(struct raft_log *log) {
    for (size_t i = 0; i < log->count; i++) raft_log_free_entry(log, &log->entries[i]);
    free(log->entries);
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
        uint8_t *data = base_malloc(e->data_bytes);
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
