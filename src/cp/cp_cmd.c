/*
 * The CP engine's commands on the client port: CLUSTER INFO | TRANSFER id | ..., WAIT
 * numreplicas timeout (how many other voters have this client's last write).
 */
#include <stdio.h>
#include <string.h>

#include "base/assert.h"
#include "cp/internal.h"

/* Whether this node leads; if not, tells the client where `what` must go instead. */
bool cp_cmd_on_leader(struct cp *cp, struct cp_origin *o, const char *what) {
    if (raft_role(cp->raft) == RAFT_LEADER) return true;
    resp_put_errorf(o->out, "ERR node %u is not the leader (the leader is %u): %s", cp->config.id,
                    raft_leader_id(cp->raft), what);
    return false;
}

static void cp_cmd_transfer(struct cp *cp, struct cp_origin *o, const struct resp_arg *id) {
    int64_t target;
    if (!cmd_arg_i64(id, &target) || target <= 0 ||
        raft_config_find(raft_config(cp->raft), (uint32_t)target) == NULL) {
        resp_put_error(o->out, "ERR unknown node id");
        return;
    }
    if (!cp_cmd_on_leader(cp, o, "send CLUSTER TRANSFER there")) return;
    struct raft_event ev = {.kind = RAFT_EVENT_TRANSFER, .transfer_target = (uint32_t)target};
    struct raft_effects e;
    int rc = cp_raft_step(cp, &ev, &e);
    if (rc != 0)
        resp_put_errorf(o->out, "ERR transfer refused: %s", err_text(rc));
    else
        resp_put_simple(o->out, "OK");
}

void cp_command(struct cp *cp, struct cp_origin *o, uint32_t argc, const struct resp_arg *argv) {
    static const struct cmd_sub subs[] = {{"info", 2},      {"transfer", 3}, {"add", -4},
                                          {"remove", 3},    {"promote", 3},  {"members", 2},
                                          {"keyspaces", -2}};
    int sub = cmd_subcommand(o->out, "cluster", subs, sizeof(subs) / sizeof(subs[0]), argc, argv);
    if (sub == 0) {
        struct buf text;
        buf_init(&text);
        buf_appendf(&text, "# Replication\r\n");
        cp_info(cp, &text);
        buf_appendf(&text, "\r\n");
        resp_put_verbatim(o->out, o->proto, (const char *)text.data, text.len);
        buf_deinit(&text);
    } else if (sub == 1) {
        cp_cmd_transfer(cp, o, &argv[2]);
    } else if (sub == 6) {
        cp_keyspaces_command(cp, o, argc, argv);
    } else if (sub >= 2) {
        cp_members_command(cp, o, argc, argv);
    }
}

/* Other voters known (by the leader) to hold index durably. */
static int64_t cp_cmd_replicas(struct cp *cp, uint64_t index) {
    const struct raft_config *config = raft_config(cp->raft);
    int64_t count = 0;
    for (uint32_t i = 0; i < config->count; i++) {
        uint32_t id = config->servers[i].id;
        if (id != cp->config.id && raft_match_index(cp->raft, id) >= index) count++;
    }
    return count;
}

/* WAIT replicas timeout (checked by the node: two numbers, the timeout not negative), for
 * the client whose last write is last_write. */
void cp_wait_command(struct cp *cp, struct cp_origin *o, uint64_t last_write, uint32_t argc,
                     const struct resp_arg *argv) {
    int64_t replicas = 0;
    int64_t timeout = 0;
    bool ok = argc == 3 && cmd_arg_i64(&argv[1], &replicas) && cmd_arg_i64(&argv[2], &timeout);
    ASSERT(ok && timeout >= 0);
    if (!cp_cmd_on_leader(cp, o, "WAIT counts replicas on the leader")) return;
    int64_t have = cp_cmd_replicas(cp, last_write);
    if (have >= replicas) {
        resp_put_int(o->out, have);
        return;
    }
    /* As Redis: block until enough replicas hold the client's last write, or the timeout
     * (0: no timeout) passes, then answer how many do. */
    struct cp_wait *w = cp_wait_start(cp, CP_WAIT_REPLICAS, o);
    w->index = last_write;
    w->term = (uint64_t)replicas;
    w->deadline_ms = timeout == 0 ? UINT64_MAX : cp->mono_ms + (uint64_t)timeout;
    if (w->deadline_ms < cp->deadline_min_ms) cp->deadline_min_ms = w->deadline_ms;
}

/* replication = all: the write is applied; answer once every voter holds it. */
static void cp_check_all_wait(struct cp *cp, struct cp_wait *w) {
    bool leader = raft_role(cp->raft) == RAFT_LEADER && raft_term(cp->raft) == w->term;
    if (leader && cp_all_hold(cp, w->index)) {
        struct buf *out = cp_origin_out(cp, &w->origin);
        buf_append(out, w->request.data, w->request.len);
    } else if (!leader) {
        errcode_reply(cp_origin_out(cp, &w->origin), ERRCODE_TIMEOUT,
                      "replication = all: node %u lost leadership before every voter "
                      "confirmed the write (a majority holds it, so it stays applied)",
                      cp->config.id);
    } else if (w->deadline_ms <= cp->mono_ms) {
        char text[256];
        if (!cp_all_unreachable(cp, text, sizeof(text)))
            snprintf(text, sizeof(text), "%s", "a slow voter");
        errcode_reply(cp_origin_out(cp, &w->origin), ERRCODE_TIMEOUT,
                      "replication = all: a majority holds the write (so it stays "
                      "applied), but %s did not confirm it within %llu ms",
                      text, (unsigned long long)cp->config.request_timeout_ms);
    } else {
        return;
    }
    cp_wait_finish(cp, w);
}

void cp_check_replica_waits(struct cp *cp) {
    if (cp->replica_waits == 0) return;
    struct cp_wait *w = cp->waits;
    while (w != NULL) {
        struct cp_wait *next = w->next;
        if (w->kind == CP_WAIT_REPLICAS) {
            int64_t have = cp_cmd_replicas(cp, w->index);
            if (have >= (int64_t)w->term || w->deadline_ms <= cp->mono_ms) {
                resp_put_int(cp_origin_out(cp, &w->origin), have);
                cp_wait_finish(cp, w);
            }
        } else if (w->kind == CP_WAIT_ALL) {
            cp_check_all_wait(cp, w);
        }
        w = next;
    }
}
