/*
 * Fault injection, inside the core so that it is deterministic and works the same in the
 * simulator: FAULT PARTITION 1,2|3 (this node drops peer traffic across the cut), FAULT
 * HEAL, FAULT DROP peer pct, FAULT DELAY peer ms, FAULT CLOCK ms (skew this node's wall
 * clock), FAULT PAUSE ms (freeze this node's Raft: no ticks, peer messages dropped).
 * Client connections are never cut, so a cluster can always be healed. Only with
 * enable_faults; otherwise every FAULT command is refused and nothing changes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/util.h"
#include "core/internal.h"

#define FAULT_DELAY_MS_MAX 60000
#define FAULT_PAUSE_MS_MAX 600000
#define FAULT_CLOCK_MS_MAX (365ll * 24 * 3600 * 1000)

static int fault_peer_position(const struct node *node, uint32_t id) {
    for (uint32_t i = 0; i < node->config.peer_count; i++) {
        if (node->config.peers[i].id == id) return (int)i;
    }
    return -1;
}

bool cluster_fault_blocks(struct node *node, uint32_t peer, bool outgoing) {
    struct cluster *cl = node->cluster;
    struct cluster_fault *f = &cl->fault;
    (void)outgoing;
    if (cl->mono_ms < f->pause_until) return true;
    int pos = fault_peer_position(node, peer);
    if (pos < 0) return true;
    int self = fault_peer_position(node, node->config.id);
    ASSERT(self >= 0);
    if (f->partitioned && f->group_of[pos] != f->group_of[self]) return true;
    if (f->drop_pct[pos] > 0 && prng_range(&cl->prng, 0, 100) < f->drop_pct[pos]) return true;
    return false;
}

void fault_release_delayed(struct node *node) {
    struct cluster *cl = node->cluster;
    size_t pos = 0;
    struct buf keep;
    buf_init(&keep);
    while (pos < cl->delayed.len) {
        const uint8_t *p = cl->delayed.data + pos;
        uint64_t due = base_load_u64le(p);
        uint32_t to = base_load_u32le(p + 8);
        uint32_t len = base_load_u32le(p + 12);
        if (due <= cl->mono_ms) {
            buf_append_u32le(&cl->peer_out, to);
            buf_append_u32le(&cl->peer_out, len);
            buf_append(&cl->peer_out, p + 16, len);
        } else {
            buf_append(&keep, p, 16 + len);
        }
        pos += 16 + len;
    }
    buf_clear(&cl->delayed);
    buf_append(&cl->delayed, keep.data, keep.len);
    buf_deinit(&keep);
}

/* Parses "1,2|3" into groups; every node must appear exactly once. */
static bool fault_parse_partition(struct node *node, const struct resp_arg *arg, uint32_t *groups) {
    bool seen[NODE_PEERS_MAX] = {false};
    uint32_t group = 0;
    size_t i = 0;
    while (i < arg->bytes) {
        size_t start = i;
        while (i < arg->bytes && arg->data[i] >= '0' && arg->data[i] <= '9') i++;
        int64_t id;
        if (!util_parse_i64(arg->data + start, i - start, &id)) return false;
        int pos = fault_peer_position(node, (uint32_t)id);
        if (id <= 0 || pos < 0 || seen[pos]) return false;
        seen[pos] = true;
        groups[pos] = group;
        if (i == arg->bytes) break;
        if (arg->data[i] == '|')
            group++;
        else if (arg->data[i] != ',')
            return false;
        i++;
    }
    for (uint32_t p = 0; p < node->config.peer_count; p++) {
        if (!seen[p]) return false;
    }
    return true;
}

static bool fault_number(struct client *c, const struct resp_arg *arg, int64_t lo, int64_t hi,
                         int64_t *out) {
    if (!cmd_arg_i64(arg, out) || *out < lo || *out > hi) {
        resp_put_errorf(&c->out, "ERR expected a number from %lld to %lld", (long long)lo,
                        (long long)hi);
        return false;
    }
    return true;
}

static bool fault_peer_arg(struct node *node, struct client *c, const struct resp_arg *arg,
                           int *pos) {
    int64_t id;
    if (!cmd_arg_i64(arg, &id) || (*pos = fault_peer_position(node, (uint32_t)id)) < 0 ||
        id == node->config.id) {
        resp_put_error(&c->out, "ERR unknown peer id (give another node's id from the peers list)");
        return false;
    }
    return true;
}

static void fault_heal(struct cluster_fault *f) {
    f->partitioned = false;
    memset(f->drop_pct, 0, sizeof(f->drop_pct));
    memset(f->delay_ms, 0, sizeof(f->delay_ms));
    f->pause_until = 0;
}

void fault_command(struct node *node, struct client *c, uint32_t argc,
                   const struct resp_arg *argv) {
    if (!node->config.enable_faults || node->cluster == NULL) {
        resp_put_error(&c->out, node->cluster == NULL
                                    ? "ERR fault injection needs a cluster (start with --peers)"
                                    : "ERR fault injection is disabled: start the node with "
                                      "--enable-faults");
        return;
    }
    struct cluster *cl = node->cluster;
    struct cluster_fault *f = &cl->fault;
    const struct resp_arg *sub = &argv[1];
    int64_t v;
    int pos;
    if (cmd_arg_is(sub, "partition") && argc == 3) {
        uint32_t groups[NODE_PEERS_MAX];
        if (!fault_parse_partition(node, &argv[2], groups)) {
            resp_put_error(&c->out, "ERR partition must name every node once, like 1,2|3");
            return;
        }
        memcpy(f->group_of, groups, sizeof(groups));
        f->partitioned = true;
    } else if (cmd_arg_is(sub, "heal") && argc == 2) {
        fault_heal(f);
    } else if (cmd_arg_is(sub, "drop") && argc == 4) {
        if (!fault_peer_arg(node, c, &argv[2], &pos) || !fault_number(c, &argv[3], 0, 100, &v)) {
            return;
        }
        f->drop_pct[pos] = (uint32_t)v;
    } else if (cmd_arg_is(sub, "delay") && argc == 4) {
        if (!fault_peer_arg(node, c, &argv[2], &pos) ||
            !fault_number(c, &argv[3], 0, FAULT_DELAY_MS_MAX, &v)) {
            return;
        }
        f->delay_ms[pos] = (uint64_t)v;
    } else if (cmd_arg_is(sub, "clock") && argc == 3) {
        if (!fault_number(c, &argv[2], -FAULT_CLOCK_MS_MAX, FAULT_CLOCK_MS_MAX, &v)) return;
        f->clock_ms = v;
    } else if (cmd_arg_is(sub, "pause") && argc == 3) {
        if (!fault_number(c, &argv[2], 0, FAULT_PAUSE_MS_MAX, &v)) return;
        f->pause_until = cl->mono_ms + (uint64_t)v;
    } else {
        resp_put_error(&c->out, "ERR usage: FAULT PARTITION 1,2|3 | HEAL | DROP peer pct | "
                                "DELAY peer ms | CLOCK ms | PAUSE ms");
        return;
    }
    node_trace(node, "fault: %.*s", (int)sub->bytes, (const char *)sub->data);
    resp_put_simple(&c->out, "OK");
}
