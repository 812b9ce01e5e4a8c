/*
 * Fault injection, inside the core so that it is deterministic and works the same in the
 * simulator, and at node level, under every engine: FAULT PARTITION 1,2|3 (this node drops
 * peer traffic across the cut, both ways), FAULT HEAL, FAULT DROP peer pct, FAULT DELAY
 * peer ms, FAULT CLOCK ms (skew the wall clock every engine is given), FAULT PAUSE ms
 * (this node's engines get no ticks and its peer traffic is dropped, both ways, as with a
 * frozen Raft; its clock runs on, so a lease it held expires and it refuses lease reads;
 * client requests are still taken and wait for what they need).
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

void fault_init(struct node *node) {
    struct node_fault *f = &node->fault;
    memset(f, 0, sizeof(*f));
    prng_init(&f->prng, node->config.seed ^ 0xfa17u);
    buf_init(&f->delayed);
    buf_init(&f->released);
    buf_init(&f->sends);
}

void fault_deinit(struct node *node) {
    buf_deinit(&node->fault.delayed);
    buf_deinit(&node->fault.released);
    buf_deinit(&node->fault.sends);
}

uint64_t fault_wall_ms(const struct node *node) {
    return (uint64_t)((int64_t)node->now_ms + node->fault.clock_ms);
}

bool fault_paused(const struct node *node) {
    return node->mono_ms < node->fault.pause_until;
}

static void fault_update_any(struct node_fault *f) {
    f->any = f->partitioned || f->pause_until != 0;
    for (uint32_t i = 0; i < NODE_PEERS_MAX; i++)
        if (f->drop_pct[i] > 0 || f->delay_ms[i] > 0) f->any = true;
}

/* Whether traffic with peer is lost: a pause, a partition between us, or a drop. */
static bool fault_blocks(struct node *node, uint32_t peer) {
    struct node_fault *f = &node->fault;
    if (fault_paused(node)) return true;
    int pos = fault_peer_position(node, peer);
    if (pos < 0) return true;
    int self = fault_peer_position(node, node->config.id);
    ASSERT(self >= 0);
    if (f->partitioned && f->group_of[pos] != f->group_of[self]) return true;
    if (f->drop_pct[pos] > 0 && prng_range(&f->prng, 0, 100) < f->drop_pct[pos]) return true;
    return false;
}

bool fault_drops_incoming(struct node *node, uint32_t from) {
    return node->fault.any && fault_blocks(node, from);
}

static void fault_add_send(struct node_fault *f, uint32_t to, const uint8_t *data, size_t bytes) {
    struct node_peer_send send = {.to = to, .data = data, .bytes = bytes};
    buf_append(&f->sends, &send, sizeof(send));
}

/* Holds a payload back for FAULT DELAY; false when it goes now. */
static bool fault_delay(struct node *node, const struct node_peer_send *s) {
    struct node_fault *f = &node->fault;
    int pos = fault_peer_position(node, s->to);
    if (pos < 0 || f->delay_ms[pos] == 0) return false;
    if (f->delayed.len + s->bytes > NODE_FAULT_DELAYED_BYTES_MAX) return true; /* full: lost */
    buf_append_u64le(&f->delayed, node->mono_ms + f->delay_ms[pos]);
    buf_append_u32le(&f->delayed, s->to);
    buf_append_u32le(&f->delayed, (uint32_t)s->bytes);
    buf_append(&f->delayed, s->data, s->bytes);
    return true;
}

void fault_filter_sends(struct node *node, struct node_effects *out) {
    struct node_fault *f = &node->fault;
    if (!f->any && f->released.len == 0) return;
    buf_clear(&f->sends);
    for (size_t pos = 0; pos < f->released.len;) {
        uint32_t to = base_load_u32le(f->released.data + pos);
        uint32_t len = base_load_u32le(f->released.data + pos + 4);
        /* A payload delayed earlier meets the faults of now (a pause, a partition since). */
        if (!fault_blocks(node, to)) fault_add_send(f, to, f->released.data + pos + 8, len);
        pos += 8 + (size_t)len;
    }
    for (size_t i = 0; i < out->peer_send_count; i++) {
        const struct node_peer_send *s = &out->peer_sends[i];
        if (fault_blocks(node, s->to) || fault_delay(node, s)) continue;
        fault_add_send(f, s->to, s->data, s->bytes);
    }
    out->peer_sends = (const struct node_peer_send *)f->sends.data;
    out->peer_send_count = f->sends.len / sizeof(struct node_peer_send);
}

void fault_sends_done(struct node *node) {
    buf_clear(&node->fault.released);
    buf_clear(&node->fault.sends);
}

void fault_release_delayed(struct node *node) {
    struct node_fault *f = &node->fault;
    if (f->delayed.len == 0) return;
    size_t pos = 0;
    struct buf keep;
    buf_init(&keep);
    while (pos < f->delayed.len) {
        const uint8_t *p = f->delayed.data + pos;
        uint64_t due = base_load_u64le(p);
        uint32_t len = base_load_u32le(p + 12);
        if (due <= node->mono_ms)
            buf_append(&f->released, p + 8, 8 + (size_t)len); /* to:u32 len:u32 bytes */
        else
            buf_append(&keep, p, 16 + (size_t)len);
        pos += 16 + (size_t)len;
    }
    buf_clear(&f->delayed);
    buf_append(&f->delayed, keep.data, keep.len);
    buf_deinit(&keep);
}

uint64_t fault_wake_at(const struct node *node) {
    const struct node_fault *f = &node->fault;
    uint64_t at = UINT64_MAX;
    if (f->delayed.len > 0) at = node->now_ms + 10;
    if (fault_paused(node)) {
        uint64_t end = node->now_ms + (f->pause_until - node->mono_ms);
        if (end < at) at = end;
    }
    return at;
}

static void fault_peer_slot_reset(struct node *node, uint32_t slot) {
    ASSERT(slot < NODE_PEERS_MAX);
    node->fault.drop_pct[slot] = 0;
    node->fault.delay_ms[slot] = 0;
    int self = fault_peer_position(node, node->config.id);
    /* On this node's side of a partition: cut off only by a PARTITION that names it. */
    node->fault.group_of[slot] = self >= 0 ? node->fault.group_of[self] : 0;
    fault_update_any(&node->fault);
}

static bool fault_member(const struct node_peer *members, size_t count, uint32_t id) {
    for (size_t i = 0; i < count; i++)
        if (members[i].id == id) return true;
    return false;
}

/* Keeps node->config.peers (positions are FAULT's handles) covering every member: a new
 * member takes the slot of one that left, and inherits no fault from it. */
void fault_learn_members(struct node *node, const struct node_peer *members, size_t count) {
    struct node_config *c = &node->config;
    for (size_t m = 0; m < count; m++) {
        uint32_t slot = c->peer_count;
        bool known = false;
        for (uint32_t i = 0; i < c->peer_count && !known; i++) {
            known = c->peers[i].id == members[m].id;
            if (known && members[m].addr[0] != '\0')
                snprintf(c->peers[i].addr, sizeof(c->peers[i].addr), "%s", members[m].addr);
            if (slot == c->peer_count && !fault_member(members, count, c->peers[i].id)) slot = i;
        }
        if (known || slot == NODE_PEERS_MAX) continue; /* full: cannot happen, count <= max */
        if (slot == c->peer_count) c->peer_count++;
        fault_peer_slot_reset(node, slot);
        c->peers[slot].id = members[m].id;
        snprintf(c->peers[slot].addr, sizeof(c->peers[slot].addr), "%s", members[m].addr);
    }
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

static void fault_heal(struct node_fault *f) {
    f->partitioned = false;
    memset(f->drop_pct, 0, sizeof(f->drop_pct));
    memset(f->delay_ms, 0, sizeof(f->delay_ms));
    f->pause_until = 0;
}

void fault_command(struct node *node, struct client *c, uint32_t argc,
                   const struct resp_arg *argv) {
    if (!node->config.enable_faults) {
        resp_put_error(&c->out, "ERR fault injection is disabled: start the node with "
                                "--enable-faults");
        return;
    }
    struct node_fault *f = &node->fault;
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
        f->pause_until = node->mono_ms + (uint64_t)v;
    } else {
        resp_put_error(&c->out, "ERR usage: FAULT PARTITION 1,2|3 | HEAL | DROP peer pct | "
                                "DELAY peer ms | CLOCK ms | PAUSE ms");
        return;
    }
    fault_update_any(f);
    node_trace(node, "fault: %.*s", (int)sub->bytes, (const char *)sub->data);
    resp_put_simple(&c->out, "OK");
}
