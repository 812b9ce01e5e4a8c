/*
 * Keyspaces as cluster metadata. Each node reads [keyspace NAME] sections from its own
 * config, but what the cluster uses is agreed through Raft: the first leader of a new
 * cluster proposes its table as a KEYSPACES entry, and every node applies that entry (and
 * finds it again in snapshots), so all nodes route keys to the same keyspaces and
 * replication modes. A node whose config differs says so in its log and in INFO; to change
 * the table, give the nodes the new config and run CLUSTER KEYSPACES RELOAD on the leader,
 * which proposes its own.
 *
 * Table encoding: version:u8 (1) count:u8, then per keyspace name (len:u8 bytes),
 * match_count:u8, match_count globs (len:u8 bytes), replication:u8, consistency:u8.
 * In a snapshot blob it comes first as marker:u32 (CLUSTER_BLOB_KEYSPACES) len:u32 table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "core/internal.h"

#define KEYSPACES_VERSION 1

static void keyspaces_put_text(struct buf *out, const char *text) {
    size_t len = strnlen(text, NODE_KEYSPACE_TEXT_BYTES_MAX - 1);
    buf_append_byte(out, (uint8_t)len);
    buf_append(out, text, len);
}

void cluster_keyspaces_encode(const struct node_keyspace *ks, uint32_t count, struct buf *out) {
    buf_append_byte(out, KEYSPACES_VERSION);
    buf_append_byte(out, (uint8_t)count);
    for (uint32_t i = 0; i < count; i++) {
        keyspaces_put_text(out, ks[i].name);
        buf_append_byte(out, (uint8_t)ks[i].match_count);
        for (uint32_t m = 0; m < ks[i].match_count; m++) keyspaces_put_text(out, ks[i].match[m]);
        buf_append_byte(
            out, (uint8_t)(ks[i].replication != 0 ? ks[i].replication : NODE_REPLICATION_MAJORITY));
        buf_append_byte(out, (uint8_t)(ks[i].consistency != 0 ? ks[i].consistency
                                                              : NODE_CONSISTENCY_LINEARIZABLE));
    }
}

static bool keyspaces_get_text(const uint8_t *p, size_t bytes, size_t *pos, char *out) {
    if (*pos >= bytes) return false;
    size_t len = p[*pos];
    if (len >= NODE_KEYSPACE_TEXT_BYTES_MAX || bytes - *pos - 1 < len) return false;
    memcpy(out, p + *pos + 1, len);
    out[len] = '\0';
    *pos += 1 + len;
    return memchr(out, '\0', len) == NULL;
}

static bool keyspaces_decode_one(const uint8_t *p, size_t bytes, size_t *pos,
                                 struct node_keyspace *ks) {
    memset(ks, 0, sizeof(*ks));
    if (!keyspaces_get_text(p, bytes, pos, ks->name) || *pos >= bytes) return false;
    ks->match_count = p[(*pos)++];
    if (ks->match_count > NODE_KEYSPACE_MATCHES_MAX) return false;
    for (uint32_t m = 0; m < ks->match_count; m++)
        if (!keyspaces_get_text(p, bytes, pos, ks->match[m])) return false;
    if (bytes - *pos < 2) return false;
    uint8_t repl = p[(*pos)++];
    uint8_t level = p[(*pos)++];
    if (repl < NODE_REPLICATION_MAJORITY || repl > NODE_REPLICATION_LEADER) return false;
    if (level < NODE_CONSISTENCY_LINEARIZABLE || level > NODE_CONSISTENCY_STALE) return false;
    ks->replication = (enum node_replication)repl;
    ks->consistency = (enum node_consistency)level;
    return true;
}

/* Decodes a table; false (out unchanged) when the bytes are not a valid one. */
bool cluster_keyspaces_decode(const uint8_t *p, size_t bytes, struct node_keyspace *out,
                              uint32_t *count) {
    if (bytes < 2 || p[0] != KEYSPACES_VERSION || p[1] > NODE_KEYSPACES_MAX) return false;
    struct node_keyspace *table = base_calloc(NODE_KEYSPACES_MAX, sizeof(*table));
    size_t pos = 2;
    bool ok = true;
    for (uint32_t i = 0; i < p[1] && ok; i++) ok = keyspaces_decode_one(p, bytes, &pos, &table[i]);
    if (ok && pos == bytes) {
        *count = p[1];
        memcpy(out, table, sizeof(table[0]) * *count);
    }
    free(table);
    return ok && pos == bytes;
}

static bool keyspaces_equal(const struct node_keyspace *a, uint32_t na,
                            const struct node_keyspace *b, uint32_t nb) {
    struct buf x;
    struct buf y;
    buf_init(&x);
    buf_init(&y);
    cluster_keyspaces_encode(a, na, &x);
    cluster_keyspaces_encode(b, nb, &y);
    bool same = x.len == y.len && memcmp(x.data, y.data, x.len) == 0;
    buf_deinit(&x);
    buf_deinit(&y);
    return same;
}

/* Applies an agreed table (an entry, or a snapshot's): the same on every node. */
void cluster_keyspaces_apply(struct node *node, const uint8_t *p, size_t bytes, uint64_t index) {
    struct cluster *cl = node->cluster;
    uint32_t count = 0;
    if (!cluster_keyspaces_decode(p, bytes, node->config.keyspaces, &count)) {
        node_trace(node, "warning: keyspace table at index %llu is malformed: ignored",
                   (unsigned long long)index);
        return;
    }
    node->config.keyspace_count = count;
    cl->keyspaces_index = index;
    cl->spec.term = 0; /* keys may have changed mode: the overlay starts again */
    bool same =
        keyspaces_equal(node->config.keyspaces, count, cl->ini_keyspaces, cl->ini_keyspace_count);
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
    cluster_keyspaces_encode(cl->ini_keyspaces, cl->ini_keyspace_count, &entry);
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
        const struct node_keyspace *ks = &node->config.keyspaces[i];
        buf_appendf(&text, "%s match=", ks->name);
        for (uint32_t m = 0; m < ks->match_count; m++)
            buf_appendf(&text, "%s%s", m ? "," : "", ks->match[m]);
        uint32_t r = ks->replication != 0 ? ks->replication : NODE_REPLICATION_MAJORITY;
        uint32_t l = ks->consistency != 0 ? ks->consistency : NODE_CONSISTENCY_LINEARIZABLE;
        buf_appendf(&text, " replication=%s consistency=%s\n", repl[r], level[l]);
    }
    resp_put_bulk(&c->out, text.data, text.len);
    buf_deinit(&text);
}
