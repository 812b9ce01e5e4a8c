/*
 * The follower's side of replication: AppendEntries (Raft §5.3), heartbeats (which carry
 * the commit index, ReadIndex rounds and lease timestamps back), InstallSnapshot (§7), and
 * log compaction when the caller took a snapshot. Messages come from the network: they are
 * validated and dropped when malformed, never asserted. A success reply promises that the
 * entries are durable: the caller sends it only after persisting this step (raft.h).
 */
#include "base/assert.h"
#include "raft/internal.h"

static bool raft_recv_append_valid(const struct raft_message *m) {
    if (m->entry_count > RAFT_MSG_ENTRIES_MAX) return false;
    if (m->entry_count > 0 && m->entries == NULL) return false;
    if (m->log_term > m->term) return false;
    uint64_t prev_term = m->log_term;
    for (uint32_t i = 0; i < m->entry_count; i++) {
        const struct raft_entry *e = &m->entries[i];
        if (e->index != m->index + 1 + i || e->term < prev_term || e->term > m->term) return false;
        if (e->type < RAFT_ENTRY_NORMAL || e->type > RAFT_ENTRY_CONFIG) return false;
        if (e->data_bytes > RAFT_ENTRY_BYTES_MAX) return false;
        if (e->data_bytes > 0 && e->data == NULL) return false;
        struct raft_config config;
        if (e->type == RAFT_ENTRY_CONFIG && raft_config_decode(e->data, e->data_bytes, &config))
            return false;
        prev_term = e->term;
    }
    return true;
}

static void raft_recv_append_reject(struct raft *raft, const struct raft_message *m,
                                    struct raft_message *r) {
    r->reject = true;
    r->index = m->index;
    uint64_t last = raft_log_last_index(&raft->log);
    if (m->index > last) {
        /* Our log is too short: the leader should continue right after our last entry. */
        r->hint_index = last + 1;
        r->hint_term = 0;
        return;
    }
    /* Fast backtracking (Raft §5.3, end): name the conflicting term and where it starts,
     * so the leader skips the whole term in one round trip. */
    r->hint_term = raft_log_term(&raft->log, m->index);
    ASSERT(r->hint_term != UINT64_MAX);
    r->hint_index = raft_log_term_first_index(&raft->log, m->index);
}

/* Appends entries[from..], replacing a conflicting suffix; returns the last new index. */
static void raft_recv_append_merge(struct raft *raft, const struct raft_message *m, uint32_t from) {
    bool config = false;
    for (uint32_t i = from; i < m->entry_count; i++) {
        const struct raft_entry *e = &m->entries[i];
        uint64_t ours = raft_log_term(&raft->log, e->index);
        if (ours == e->term) continue; /* Raft §5.3: already have it (log matching) */
        if (ours != UINT64_MAX) {
            /* Raft §5.3: an existing entry conflicts with a new one: delete it and all
             * that follow it (never a committed one: raft_truncate asserts that). */
            raft_truncate(raft, e->index);
        }
        raft_log_append(&raft->log, e);
        config = config || e->type == RAFT_ENTRY_CONFIG;
    }
    /* Thesis §4.1: a configuration takes effect as soon as it is in the log. */
    if (config) raft_config_rescan(raft);
}

void raft_recv_append(struct raft *raft, const struct raft_message *m) {
    ASSERT(raft->role == RAFT_FOLLOWER && m->term == raft->term);
    if (!raft_recv_append_valid(m)) return;
    struct raft_message *r = raft_send(raft, RAFT_MSG_APPEND_RESP, m->from);
    uint64_t last_new = m->index + m->entry_count;
    if (last_new <= raft->commit) {
        /* All of it is committed here already, hence identical (Raft §5.4.3). */
        r->index = raft->commit;
        return;
    }
    uint32_t skip = 0;
    uint64_t prev = m->index;
    uint64_t prev_term = m->log_term;
    if (prev < raft->commit) {
        /* Entries up to our commit index match the leader's: check from there on. */
        skip = (uint32_t)(raft->commit - prev);
        prev = raft->commit;
        prev_term = m->entries[skip - 1].term;
    }
    /* Raft §5.3: reject unless our log has the previous entry with the previous term. */
    if (raft_log_term(&raft->log, prev) != prev_term) {
        raft_recv_append_reject(raft, m, r);
        return;
    }
    raft_recv_append_merge(raft, m, skip);
    /* Raft §5.3: commit up to min(leaderCommit, index of last new entry). */
    uint64_t commit = m->commit < last_new ? m->commit : last_new;
    if (commit > raft->commit) raft->commit = commit;
    r->index = last_new;
    ASSERT(raft_log_last_index(&raft->log) >= last_new);
}

void raft_recv_heartbeat(struct raft *raft, const struct raft_message *m) {
    ASSERT(raft->role == RAFT_FOLLOWER && m->term == raft->term);
    /* The leader sends min(commit, our match): we hold those entries, matching. */
    uint64_t last = raft_log_last_index(&raft->log);
    uint64_t commit = m->commit < last ? m->commit : last;
    if (commit > raft->commit) raft->commit = commit;
    struct raft_message *r = raft_send(raft, RAFT_MSG_HEARTBEAT_RESP, m->from);
    r->round = m->round;
    r->sent_ms = m->sent_ms;
    r->hint_index = last + 1; /* the leader sees a log that lost entries (a wiped disk) */
}

static bool raft_recv_install_snapshot_valid(const struct raft_message *m) {
    if (m->index == 0 || m->log_term == 0 || m->log_term > m->term) return false;
    if (m->snapshot_bytes > 0 && m->snapshot_data == NULL) return false;
    uint8_t bytes[RAFT_CONFIG_BYTES_MAX];
    struct raft_config check;
    if (m->config.count == 0 || m->config.count > RAFT_NODES_MAX) return false;
    size_t n = raft_config_encode(&m->config, bytes);
    return raft_config_decode(bytes, n, &check) == 0; /* ids nonzero and unique */
}

void raft_recv_install_snapshot(struct raft *raft, const struct raft_message *m) {
    ASSERT(raft->role == RAFT_FOLLOWER && m->term == raft->term);
    if (!raft_recv_install_snapshot_valid(m)) return;
    struct raft_message *r = raft_send(raft, RAFT_MSG_APPEND_RESP, m->from);
    if (m->index <= raft->commit) {
        r->index = raft->commit; /* nothing new in it */
        return;
    }
    if (raft_log_term(&raft->log, m->index) == m->log_term) {
        /* Raft §7: we hold the snapshot's last entry: keep the log, it is all committed. */
        raft->commit = m->index;
        r->index = m->index;
        return;
    }
    /* Raft §7: discard the entire log and restore the state machine from the snapshot. */
    raft_log_reset(&raft->log, m->index, m->log_term, &m->config);
    raft->snap.index = m->index;
    raft->snap.term = m->log_term;
    raft->snap.config = m->config;
    raft->commit = raft->applied = m->index;
    raft->persisted = raft->handed_last = m->index;
    raft->truncate_from = 0; /* the restore replaces the whole stored log */
    raft->restore_pending = true;
    raft->restore.index = m->index;
    raft->restore.term = m->log_term;
    raft->restore.config = m->config;
    raft->restore.data = m->snapshot_data;
    raft->restore.data_bytes = m->snapshot_bytes;
    raft_config_rescan(raft);
    r->index = m->index;
}

void raft_snapshot_taken(struct raft *raft, uint64_t index) {
    ASSERT(index <= raft->applied);
    if (index <= raft->snap.index || index <= raft->log.snapshot_index) return;
    /* The snapshot describes index (its configuration: the one in effect there). */
    struct raft_config config;
    bool ok = raft_config_at(raft, index, &config);
    ASSERT(ok);
    raft->snap.index = index;
    raft->snap.term = raft_log_term(&raft->log, index);
    raft->snap.config = config;
    /* The log is compacted to the snapshot less a trail of entries. */
    uint64_t base = index > raft->log_trail ? index - raft->log_trail : 0;
    if (raft->log_trail_bytes != 0) { /* the trail is bounded in bytes too */
        uint64_t bytes = 0;
        uint64_t first = index;
        while (first > base && first > raft->log.snapshot_index) {
            bytes += raft_log_get(&raft->log, first)->data_bytes;
            if (bytes > raft->log_trail_bytes) break;
            first--;
        }
        base = first;
    }
    if (raft->retain_index != 0 && raft->retain_index < base) base = raft->retain_index;
    if (base > raft->log.snapshot_index) {
        ok = raft_config_at(raft, base, &config);
        ASSERT(ok);
        raft_log_compact(&raft->log, base, &config);
        ASSERT(raft->log.snapshot_index == base);
    }
    /* Applied entries were persisted before they were applied (the FIFO of raft.h). */
    if (raft->persisted < index) raft->persisted = index;
    /* A configuration at or before the log's base now lives in its base configuration. */
    if (raft->config_index < raft->log.snapshot_index)
        raft->config_index = raft->log.snapshot_index;
    ASSERT(raft->config_index >= raft->log.snapshot_index);
}
