/*
 * Cluster commands on the client port: CLUSTER INFO | TRANSFER id, WAIT numreplicas
 * timeout (how many other voters have this client's last write), CONSISTENCY [level].
 */
#include <stdio.h>
#include <string.h>

#include "base/assert.h"
#include "core/internal.h"

/* Whether this node leads; if not, tells the client where `what` must go instead. */
bool cluster_cmd_on_leader(struct node *node, struct client *c, const char *what) {
    struct cluster *cl = node->cluster;
    if (raft_role(cl->raft) == RAFT_LEADER) return true;
    resp_put_errorf(&c->out, "ERR node %u is not the leader (the leader is %u): %s",
                    node->config.id, raft_leader_id(cl->raft), what);
    return false;
}

static void cluster_cmd_transfer(struct node *node, struct client *c, const struct resp_arg *id) {
    struct cluster *cl = node->cluster;
    int64_t target;
    if (!cmd_arg_i64(id, &target) || target <= 0 ||
        raft_config_find(raft_config(cl->raft), (uint32_t)target) == NULL) {
        resp_put_error(&c->out, "ERR unknown node id");
        return;
    }
    if (!cluster_cmd_on_leader(node, c, "send CLUSTER TRANSFER there")) return;
    struct raft_event ev = {.kind = RAFT_EVENT_TRANSFER, .transfer_target = (uint32_t)target};
    struct raft_effects e;
    int rc = cluster_raft_step(node, &ev, &e);
    if (rc != 0)
        resp_put_errorf(&c->out, "ERR transfer refused: %s", err_text(rc));
    else
        resp_put_simple(&c->out, "OK");
}

void cluster_command(struct node *node, struct client *c, uint32_t argc,
                     const struct resp_arg *argv) {
    if (node->cluster == NULL) {
        resp_put_error(&c->out, "ERR this node runs alone: start it with --peers to form a "
                                "cluster");
        return;
    }
    static const struct conn_sub subs[] = {{"info", 2},      {"transfer", 3}, {"add", -4},
                                           {"remove", 3},    {"promote", 3},  {"members", 2},
                                           {"keyspaces", -2}};
    int sub = conn_subcommand(c, "cluster", subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
    if (sub == 0) {
        struct buf text;
        buf_init(&text);
        cluster_info(node, &text);
        resp_put_verbatim(&c->out, c->proto, (const char *)text.data, text.len);
        buf_deinit(&text);
    } else if (sub == 1) {
        cluster_cmd_transfer(node, c, &argv[2]);
    } else if (sub == 6) {
        cluster_keyspaces_command(node, c, argc, argv);
    } else if (sub >= 2) {
        cluster_members_command(node, c, argc, argv);
    }
}

/* Other voters known (by the leader) to hold index durably. */
static int64_t cluster_cmd_replicas(struct node *node, uint64_t index) {
    struct cluster *cl = node->cluster;
    const struct raft_config *config = raft_config(cl->raft);
    int64_t count = 0;
    for (uint32_t i = 0; i < config->count; i++) {
        uint32_t id = config->servers[i].id;
        if (id != node->config.id && raft_match_index(cl->raft, id) >= index) count++;
    }
    return count;
}

/* WAIT replicas timeout (parsed and checked by conn.c). */
void cluster_wait_command(struct node *node, struct client *c, int64_t replicas, int64_t timeout) {
    struct cluster *cl = node->cluster;
    if (!cluster_cmd_on_leader(node, c, "WAIT counts replicas on the leader")) return;
    int64_t have = cluster_cmd_replicas(node, c->last_write_index);
    if (have >= replicas) {
        resp_put_int(&c->out, have);
        return;
    }
    /* As Redis: block until enough replicas hold the client's last write, or the timeout
     * (0: no timeout) passes, then answer how many do. */
    struct cluster_wait *w = cluster_wait_start(node, CLUSTER_WAIT_REPLICAS, c);
    w->index = c->last_write_index;
    w->term = (uint64_t)replicas;
    w->deadline_ms = timeout == 0 ? UINT64_MAX : cl->mono_ms + (uint64_t)timeout;
}

/* replication = all: the write is applied; answer once every voter holds it. */
static void cluster_check_all_wait(struct node *node, struct cluster_wait *w) {
    struct cluster *cl = node->cluster;
    bool leader = raft_role(cl->raft) == RAFT_LEADER && raft_term(cl->raft) == w->term;
    if (leader && cluster_all_hold(node, w->index)) {
        struct buf *out = cluster_origin_out(node, &w->origin);
        buf_append(out, w->request.data, w->request.len);
    } else if (!leader) {
        errcode_reply(cluster_origin_out(node, &w->origin), ERRCODE_TIMEOUT,
                      "replication = all: node %u lost leadership before every voter "
                      "confirmed the write (a majority holds it, so it stays applied)",
                      node->config.id);
    } else if (w->deadline_ms <= cl->mono_ms) {
        char text[256];
        if (!cluster_all_unreachable(node, text, sizeof(text)))
            snprintf(text, sizeof(text), "%s", "a slow voter");
        errcode_reply(cluster_origin_out(node, &w->origin), ERRCODE_TIMEOUT,
                      "replication = all: a majority holds the write (so it stays "
                      "applied), but %s did not confirm it within %llu ms",
                      text, (unsigned long long)node->config.request_timeout_ms);
    } else {
        return;
    }
    cluster_wait_finish(node, w);
}

void cluster_check_replica_waits(struct node *node) {
    struct cluster *cl = node->cluster;
    struct cluster_wait *w = cl->waits;
    while (w != NULL) {
        struct cluster_wait *next = w->next;
        if (w->kind == CLUSTER_WAIT_REPLICAS) {
            int64_t have = cluster_cmd_replicas(node, w->index);
            if (have >= (int64_t)w->term || w->deadline_ms <= cl->mono_ms) {
                resp_put_int(cluster_origin_out(node, &w->origin), have);
                cluster_wait_finish(node, w);
            }
        } else if (w->kind == CLUSTER_WAIT_ALL) {
            cluster_check_all_wait(node, w);
        }
        w = next;
    }
}

void cluster_consistency_command(struct node *node, struct client *c, uint32_t argc,
                                 const struct resp_arg *argv) {
    static const char *names[] = {"", "linearizable", "lease", "stale"};
    if (argc == 1) {
        resp_put_bulk_str(&c->out, c->consistency == 0 ? "default" : names[c->consistency]);
        return;
    }
    /* Reads at the new level may be served by this node's replica: a WATCH index newer
     * than it would let a change slip between what they observe and the index. */
    struct cluster *cl = node->cluster;
    if (cl != NULL && c->watch_count > 0 && c->watch_index > cl->applied) {
        c->watch_index = cl->applied;
    }
    for (int level = 1; level <= 3; level++) {
        if (cmd_arg_is(&argv[1], names[level])) {
            c->consistency = level;
            resp_put_simple(&c->out, "OK");
            return;
        }
    }
    if (cmd_arg_is(&argv[1], "default")) {
        c->consistency = 0;
        resp_put_simple(&c->out, "OK");
        return;
    }
    resp_put_error(&c->out, "ERR consistency must be linearizable, lease, stale or default");
}
