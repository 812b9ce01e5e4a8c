/*
 * The simulator's virtual network: raft messages travel as bytes (raft_msg_encode'd by the
 * sender) with a random delay each, so they arrive reordered; some are lost, some arrive
 * twice. Links are directed: cut[from][to] drops everything from -> to at delivery time,
 * which gives partitions (halves, an isolated node, a bridge that sees both sides) and
 * one-way links. Deterministic: one struct prng, seeded by the caller, decides everything;
 * ties in delivery time are broken by send order.
 * Never: read a clock, print, or keep global state.
 */
#ifndef CAPKV_SIM_NET_H
#define CAPKV_SIM_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/prng.h"

#define SIM_NET_NODES_MAX 7        /* node ids 1..SIM_NET_NODES_MAX */
#define SIM_NET_INFLIGHT_MAX 50000 /* packets in flight; beyond it the network drops */
#define SIM_NET_PERMILLE 1000

struct sim_net_options {
    uint32_t loss_permille; /* chance a packet is lost */
    uint32_t dup_permille;  /* chance a packet is delivered twice */
    uint32_t slow_permille; /* chance a packet takes the slow path (reordering) */
    uint64_t delay_ms_min;  /* every packet: uniform in [min, max] */
    uint64_t delay_ms_max;
    uint64_t slow_delay_ms_max; /* slow path: extra uniform in [0, slow_delay_ms_max] */
};

struct sim_packet {
    uint64_t deliver_at_ms; /* global virtual time */
    uint64_t seq;           /* send order, breaks ties */
    uint32_t from;
    uint32_t to;
    uint8_t *bytes; /* owned by the packet: freed by whoever pops it */
    size_t len;
};

struct sim_net_counts {
    uint64_t sent;
    uint64_t lost; /* by loss_permille or a full network */
    uint64_t duplicated;
    uint64_t cut; /* dropped at delivery because the link was cut */
    uint64_t delivered;
};

struct sim_net {
    struct prng prng;
    struct sim_net_options options;
    bool cut[SIM_NET_NODES_MAX + 1][SIM_NET_NODES_MAX + 1];
    struct sim_packet *heap; /* min-heap on (deliver_at_ms, seq) */
    size_t count;
    size_t capacity;
    uint64_t seq;
    struct sim_net_counts counts;
};

/* net: caller-owned storage. options borrowed (copied). */
void sim_net_init(struct sim_net *net, uint64_t seed, const struct sim_net_options *options);
/* Frees every packet still in flight. */
void sim_net_deinit(struct sim_net *net);
void sim_net_set_options(struct sim_net *net, const struct sim_net_options *options);

/* Sends a copy of bytes (borrowed) from -> to at now_ms. */
void sim_net_send(struct sim_net *net, uint64_t now_ms, uint32_t from, uint32_t to,
                  const uint8_t *bytes, size_t len);
/* The earliest delivery time in flight; false when nothing is in flight. */
bool sim_net_next_at(const struct sim_net *net, uint64_t *at_ms);
/* Pops the earliest packet due at or before now_ms into *out (the caller frees out->bytes).
 * Returns false when none is due. A packet on a cut link is dropped here and counted, and
 * the next one considered. */
bool sim_net_pop(struct sim_net *net, uint64_t now_ms, struct sim_packet *out);

/* Link control. ids 1..node_count. */
void sim_net_heal(struct sim_net *net);
void sim_net_cut_link(struct sim_net *net, uint32_t from, uint32_t to, bool cut);
/* side[i] is the group of node i + 1; links between different groups are cut, both ways.
 * A node whose group is SIM_NET_GROUP_BRIDGE keeps every link. */
#define SIM_NET_GROUP_BRIDGE UINT32_MAX
void sim_net_partition(struct sim_net *net, const uint32_t *side, uint32_t node_count);
bool sim_net_link_up(const struct sim_net *net, uint32_t from, uint32_t to);

#endif
