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
 * marker:u32 (CLUSTER_BLOB_KEYSPACES) len:u32 table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "core/internal.h"

/* Applies an agreed table (an entry, or a snapshot's): the same on every node. */
void cluster_keyspaces_apply(struct node *node, const uint8_t *p, size_t bytes, uint64_t index) {
    struct cluster *cl = node->cluster;
    uint32_t count = 0;
    struct errmsg msg;
    int rc = keyspace_table_decode(p, bytes, node->config.keyspaces, &count, &msg);
    if (rc != 0) {
        /* Every node must route a key alike: one that cannot read the agreed table stops
         * rather than go on with another. */
        char what[96];
        snprintf(what, sizeof(what), "cannot use the keyspace table committed at index %llu",
                 (unsigned long long)index);
        cluster_fatal(node, rc, what, msg.text);
        return;
    }
    node->config.keyspace_count = count;
    cl->keyspaces_index = index;
    cl->spec.term = 0; /* keys may have changed mode: the overlay starts again */
    bool same =
        keyspace_table_equal(node->config.keyspaces, count, cl->ini_keyspaces,
                             cl->ini_keyspace_count);
    node_trace(node, "cluster: %u keyspaces agreed at index %llu%s", count,
               (unsigned long long)index,
               same ? "" : "; they differ from this node's config, the cluster's apply");
}

/* At start: the newest table in the recovered log applies until the log is replayed (as
 * Raft uses the newest configuration in its log), so a restarted node routes keys as the
 * cluster agreed, not as its own file says. */
void cluster_keyspaces_recovered(struct node *node, const struct raft_entry *entries,
                                 size_t count) {
    for (size_t i = count; i > 0; i--) {
        const struct raft_entry *e = &entries[i - 1];
        if (e->type != RAFT_ENTRY_NORMAL || e->data_bytes < 9) continue;
        if (e->data[0] != CLUSTER_ENTRY_KEYSPACES) continue;
        cluster_keyspaces_apply(node, e->data + 9, e->data_bytes - 9, e->index);
        return;
    }
}

/* The leader proposes this node's configured table (replacing any agreed one). */
int cluster_keyspaces_propose(struct node *node, uint64_t *index) {
    struct cluster *cl = node->cluster;
    struct buf entry;
    buf_init(&entry);
    buf_append_byte(&entry, CLUSTER_ENTRY_KEYSPACES);
    buf_append_u64le(&entry, cluster_entry_ms(node));
    keyspace_table_encode(cl->ini_keyspaces, cl->ini_keyspace_count, &entry);
    uint64_t term;
    int rc = cluster_propose(node, entry.data, entry.len, index, &term);
    buf_deinit(&entry);
    return rc;
}

/* Leader, each tick: a new cluster has no agreed table yet; propose ours (once a term,
 * after the entries inherited are applied, so an agreed one is seen first). */
void cluster_keyspaces_tick(struct node *node) {
    struct cluster *cl = node->cluster;
    uint64_t term = raft_term(cl->raft);
    uint64_t applied_term = 0;
    if (cl->keyspaces_index != 0 || cl->keyspaces_proposed_term == term) return;
    if (raft_role(cl->raft) != RAFT_LEADER) return;
    if (!raft_term_at(cl->raft, cl->applied, &applied_term) || applied_term != term) return;
    uint64_t index;
    if (cluster_keyspaces_propose(node, &index) == 0) cl->keyspaces_proposed_term = term;
}

void cluster_keyspaces_command(struct node *node, struct client *c, uint32_t argc,
                               const struct resp_arg *argv) {
    struct cluster *cl = node->cluster;
    if (argc == 3 && cmd_arg_is(&argv[2], "reload")) {
        if (!cluster_cmd_on_leader(node, c, "RELOAD proposes the leader's configured keyspaces"))
            return;
        struct cluster_wait *w = NULL;
        uint64_t index;
        int rc = cluster_keyspaces_propose(node, &index);
        if (rc != 0) {
            resp_put_errorf(&c->out, "ERR cannot propose the keyspaces now: %s", err_text(rc));
            return;
        }
        w = cluster_wait_start(node, CLUSTER_WAIT_PROPOSAL, c);
        w->index = index;
        w->term = raft_term(cl->raft);
        w->writes = true;
        resp_put_simple(&w->request, "OK");
        return;
    }
    if (argc != 2) {
        resp_put_error(&c->out, "ERR syntax: CLUSTER KEYSPACES [RELOAD]");
        return;
    }
    static const char *repl[] = {"", "majority", "all", "leader"};
    static const char *level[] = {"", "linearizable", "lease", "stale"};
    struct buf text;
    buf_init(&text);
    if (cl->keyspaces_index == 0)
        buf_appendf(&text, "# not agreed yet: this node's configuration applies\n");
    else
        buf_appendf(&text, "# agreed at index %llu\n", (unsigned long long)cl->keyspaces_index);
    for (uint32_t i = 0; i < node->config.keyspace_count; i++) {
        const struct keyspace *ks = &node->config.keyspaces[i];
        buf_appendf(&text, "%s match=", ks->name);
        for (uint32_t m = 0; m < ks->match_count; m++)
            buf_appendf(&text, "%s%s", m ? "," : "", ks->match[m]);
        uint32_t r = ks->replication != 0 ? ks->replication : KEYSPACE_REPLICATION_MAJORITY;
        uint32_t l = ks->consistency != 0 ? ks->consistency : KEYSPACE_CONSISTENCY_LINEARIZABLE;
        buf_appendf(&text, " mode=%s replication=%s consistency=%s\n",
                    keyspace_mode_name(keyspace_mode_of(ks)), repl[r], level[l]);
    }
    resp_put_bulk(&c->out, text.data, text.len);
    buf_deinit(&text);
}
