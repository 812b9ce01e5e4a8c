/*
 * Keyspaces as cluster metadata. Each node reads [keyspace NAME] sections from its own
 * config, but what the cluster uses is agreed through Raft: the first leader of a new
 * cluster proposes its table as a KEYSPACES entry, and every node applies that entry (and
 * finds it again in snapshots), so all nodes route keys to the same keyspaces and
 * replication modes. A node whose config differs says so in its log and in INFO; to change
 * the table, give the nodes the new config and run CLUSTER KEYSPACES RELOAD on the leader,
 * which proposes its own.
 *
 * The table's encoding is src/engine/keyspace.c's. In a snapshot blob it comes first as
 * marker:u32 (CP_BLOB_KEYSPACES) len:u32 table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "cp/internal.h"

/* Applies an agreed table (an entry, or a snapshot's): the same on every node. */
void cp_keyspaces_apply(struct cp *cp, const uint8_t *p, size_t bytes, uint64_t index) {
    uint32_t count = 0;
    struct errmsg msg;
    int rc = keyspace_table_decode(p, bytes, cp->config.keyspaces, &count, &msg);
    if (rc != 0) {
        /* Every node must route a key alike: one that cannot read the agreed table stops
         * rather than go on with another. */
        char what[96];
        snprintf(what, sizeof(what), "cannot use the keyspace table committed at index %llu",
                 (unsigned long long)index);
        cp_fatal(cp, rc, what, msg.text);
        return;
    }
    cp->config.keyspace_count = count;
    cp->keyspaces_index = index;
    cp->keyspaces_changed = true; /* the node's routing follows (cp_engine.c) */
    cp->spec.term = 0;            /* keys may have changed mode: the overlay starts again */
    bool same = keyspace_table_equal(cp->config.keyspaces, count, cp->ini_keyspaces,
                                     cp->ini_keyspace_count);
    cp_trace(cp, "cluster: %u keyspaces agreed at index %llu%s", count, (unsigned long long)index,
             same ? "" : "; they differ from this node's config, the cluster's apply");
}

/* Applies a table known committed (an applied entry, a snapshot's) and keeps a copy. */
void cp_keyspaces_apply_committed(struct cp *cp, const uint8_t *p, size_t bytes, uint64_t index) {
    buf_clear(&cp->keyspaces_committed);
    buf_append(&cp->keyspaces_committed, p, bytes);
    cp->keyspaces_committed_index = index;
    cp_keyspaces_apply(cp, p, bytes, index);
}

/* The log lost its entries from `from` on (a new leader's log replaced them). A table
 * taken from the recovered log at or after `from` never committed: the node goes back to
 * the committed one (or to none agreed, its own config waiting), or it would go on
 * routing keys by a table the cluster does not use. */
void cp_keyspaces_truncated(struct cp *cp, uint64_t from) {
    if (cp->keyspaces_index < from || cp->keyspaces_index <= cp->keyspaces_committed_index) return;
    cp_trace(cp, "cluster: the keyspace table at index %llu was not committed and left the log",
             (unsigned long long)cp->keyspaces_index);
    if (cp->keyspaces_committed_index != 0) {
        cp_keyspaces_apply(cp, cp->keyspaces_committed.data, cp->keyspaces_committed.len,
                           cp->keyspaces_committed_index);
        return;
    }
    memcpy(cp->config.keyspaces, cp->ini_keyspaces,
           sizeof(cp->ini_keyspaces[0]) * cp->ini_keyspace_count);
    cp->config.keyspace_count = cp->ini_keyspace_count;
    cp->keyspaces_index = 0;
    cp->keyspaces_changed = true;
    cp->spec.term = 0;
}

/* At start: the newest table in the recovered log applies until the log is replayed (as
 * Raft uses the newest configuration in its log), so a restarted node routes keys as the
 * cluster agreed, not as its own file says. That entry may never have committed (a leader
 * that lost its term): one this build cannot read is only warned about here; it stops the
 * node only if it is applied, that is committed. */
void cp_keyspaces_recovered(struct cp *cp, const struct raft_entry *entries, size_t count) {
    for (size_t i = count; i > 0; i--) {
        const struct raft_entry *e = &entries[i - 1];
        if (e->type != RAFT_ENTRY_NORMAL || e->data_bytes < 9) continue;
        if (e->data[0] != CP_ENTRY_KEYSPACES) continue;
        struct keyspace *table = base_calloc(KEYSPACES_MAX, sizeof(*table));
        uint32_t n = 0;
        struct errmsg msg;
        int rc = keyspace_table_decode(e->data + 9, e->data_bytes - 9, table, &n, &msg);
        free(table);
        if (rc == 0)
            cp_keyspaces_apply(cp, e->data + 9, e->data_bytes - 9, e->index);
        else
            cp_trace(cp,
                     "warning: keyspace table in the log at index %llu: %s; this node's "
                     "config applies until the cluster's is applied",
                     (unsigned long long)e->index, msg.text);
        return;
    }
}

/* The leader proposes this node's configured table (replacing any agreed one). */
int cp_keyspaces_propose(struct cp *cp, uint64_t *index) {
    struct buf entry;
    buf_init(&entry);
    buf_append_byte(&entry, CP_ENTRY_KEYSPACES);
    buf_append_u64le(&entry, cp_entry_ms(cp));
    keyspace_table_encode(cp->ini_keyspaces, cp->ini_keyspace_count, &entry);
    uint64_t term;
    int rc = cp_propose(cp, entry.data, entry.len, index, &term);
    buf_deinit(&entry);
    return rc;
}

/* Leader, each tick: a new cluster has no agreed table yet; propose ours (once a term,
 * after the entries inherited are applied, so an agreed one is seen first). */
void cp_keyspaces_tick(struct cp *cp) {
    uint64_t term = raft_term(cp->raft);
    uint64_t applied_term = 0;
    if (cp->keyspaces_index != 0 || cp->keyspaces_proposed_term == term) return;
    if (raft_role(cp->raft) != RAFT_LEADER) return;
    if (!raft_term_at(cp->raft, cp->applied, &applied_term) || applied_term != term) return;
    uint64_t index;
    if (cp_keyspaces_propose(cp, &index) == 0) cp->keyspaces_proposed_term = term;
}

void cp_keyspaces_command(struct cp *cp, struct cp_origin *o, uint32_t argc,
                          const struct resp_arg *argv) {
    if (argc == 3 && cmd_arg_is(&argv[2], "reload")) {
        if (!cp_cmd_on_leader(cp, o, "RELOAD proposes the leader's configured keyspaces")) return;
        struct cp_wait *w = NULL;
        uint64_t index;
        int rc = cp_keyspaces_propose(cp, &index);
        if (rc != 0) {
            resp_put_errorf(o->out, "ERR cannot propose the keyspaces now: %s", err_text(rc));
            return;
        }
        w = cp_wait_start(cp, CP_WAIT_PROPOSAL, o);
        cp_wait_index(cp, w, index);
        w->term = raft_term(cp->raft);
        w->writes = true;
        resp_put_simple(&w->request, "OK");
        return;
    }
    if (argc != 2) {
        resp_put_error(o->out, "ERR syntax: CLUSTER KEYSPACES [RELOAD]");
        return;
    }
    struct buf text;
    buf_init(&text);
    if (cp->keyspaces_index == 0)
        buf_appendf(&text, "# not agreed yet: this node's configuration applies\n");
    else
        buf_appendf(&text, "# agreed at index %llu\n", (unsigned long long)cp->keyspaces_index);
    for (uint32_t i = 0; i < cp->config.keyspace_count; i++) {
        const struct keyspace *ks = &cp->config.keyspaces[i];
        buf_appendf(&text, "%s match=", ks->name);
        for (uint32_t m = 0; m < ks->match_count; m++)
            buf_appendf(&text, "%s%s", m ? "," : "", ks->match[m]);
        buf_append_byte(&text, ' ');
        keyspace_describe(ks, ' ', &text);
        buf_append_byte(&text, '\n');
    }
    resp_put_bulk(o->out, text.data, text.len);
    buf_deinit(&text);
}
