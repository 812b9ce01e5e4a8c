/*
 * The virtual network (see sim_net.h). Packets wait in a binary min-heap ordered by
 * (deliver_at_ms, seq), so equal delivery times keep send order and a run is reproducible.
 * Loss and duplication are decided when a packet is sent, cuts when it arrives.
 */
#include "sim_net.h"

#include <stdlib.h>
#include <string.h>

#include "base/assert.h"

void sim_net_init(struct sim_net *net, uint64_t seed, const struct sim_net_options *options) {
    ASSERT(net != NULL && options != NULL);
    memset(net, 0, sizeof(*net));
    prng_init(&net->prng, seed);
    sim_net_set_options(net, options);
}

void sim_net_deinit(struct sim_net *net) {
    ASSERT(net != NULL);
    for (size_t i = 0; i < net->count; i++) free(net->heap[i].bytes);
    free(net->heap);
    memset(net, 0, sizeof(*net));
}

void sim_net_set_options(struct sim_net *net, const struct sim_net_options *options) {
    ASSERT(options->delay_ms_min <= options->delay_ms_max);
    ASSERT(options->loss_permille <= SIM_NET_PERMILLE);
    ASSERT(options->dup_permille <= SIM_NET_PERMILLE);
    net->options = *options;
}

static bool sim_net_before(const struct sim_packet *a, const struct sim_packet *b) {
    if (a->deliver_at_ms != b->deliver_at_ms) return a->deliver_at_ms < b->deliver_at_ms;
    return a->seq < b->seq;
}

static void sim_net_swap(struct sim_net *net, size_t i, size_t j) {
    struct sim_packet t = net->heap[i];
    net->heap[i] = net->heap[j];
    net->heap[j] = t;
}

static void sim_net_push(struct sim_net *net, const struct sim_packet *p) {
    if (net->count == net->capacity) {
        net->capacity = net->capacity == 0 ? 256 : net->capacity * 2;
        net->heap = base_realloc(net->heap, net->capacity * sizeof(*net->heap));
    }
    size_t i = net->count++;
    net->heap[i] = *p;
    while (i > 0 && sim_net_before(&net->heap[i], &net->heap[(i - 1) / 2])) {
        sim_net_swap(net, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static struct sim_packet sim_net_pop_min(struct sim_net *net) {
    ASSERT(net->count > 0);
    struct sim_packet top = net->heap[0];
    net->heap[0] = net->heap[--net->count];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < net->count && sim_net_before(&net->heap[l], &net->heap[m])) m = l;
        if (r < net->count && sim_net_before(&net->heap[r], &net->heap[m])) m = r;
        if (m == i) break;
        sim_net_swap(net, i, m);
        i = m;
    }
    return top;
}

static uint64_t sim_net_delay(struct sim_net *net) {
    const struct sim_net_options *o = &net->options;
    uint64_t d = prng_range(&net->prng, o->delay_ms_min, o->delay_ms_max + 1);
    if (o->slow_permille > 0 && prng_range(&net->prng, 0, SIM_NET_PERMILLE) < o->slow_permille)
        d += prng_range(&net->prng, 0, o->slow_delay_ms_max + 1);
    return d;
}

static void sim_net_enqueue(struct sim_net *net, uint64_t now_ms, uint32_t from, uint32_t to,
                            const uint8_t *bytes, size_t len) {
    if (net->count >= SIM_NET_INFLIGHT_MAX) {
        net->counts.lost++;
        return;
    }
    struct sim_packet p = {.deliver_at_ms = now_ms + sim_net_delay(net),
                           .seq = net->seq++,
                           .from = from,
                           .to = to,
                           .len = len};
    p.bytes = base_malloc(len > 0 ? len : 1);
    memcpy(p.bytes, bytes, len);
    sim_net_push(net, &p);
}

void sim_net_send(struct sim_net *net, uint64_t now_ms, uint32_t from, uint32_t to,
                  const uint8_t *bytes, size_t len) {
    ASSERT(from >= 1 && from <= SIM_NET_NODES_MAX);
    ASSERT(to >= 1 && to <= SIM_NET_NODES_MAX);
    net->counts.sent++;
    if (prng_range(&net->prng, 0, SIM_NET_PERMILLE) < net->options.loss_permille) {
        net->counts.lost++;
        return;
    }
    sim_net_enqueue(net, now_ms, from, to, bytes, len);
    if (prng_range(&net->prng, 0, SIM_NET_PERMILLE) < net->options.dup_permille) {
        net->counts.duplicated++;
        sim_net_enqueue(net, now_ms, from, to, bytes, len);
    }
}

bool sim_net_next_at(const struct sim_net *net, uint64_t *at_ms) {
    if (net->count == 0) return false;
    *at_ms = net->heap[0].deliver_at_ms;
    return true;
}

bool sim_net_pop(struct sim_net *net, uint64_t now_ms, struct sim_packet *out) {
    while (net->count > 0 && net->heap[0].deliver_at_ms <= now_ms) {
        struct sim_packet p = sim_net_pop_min(net);
        if (net->cut[p.from][p.to]) {
            net->counts.cut++;
            free(p.bytes);
            continue;
        }
        net->counts.delivered++;
        *out = p;
        return true;
    }
    return false;
}

void sim_net_heal(struct sim_net *net) {
    memset(net->cut, 0, sizeof(net->cut));
}

void sim_net_cut_link(struct sim_net *net, uint32_t from, uint32_t to, bool cut) {
    ASSERT(from >= 1 && from <= SIM_NET_NODES_MAX);
    ASSERT(to >= 1 && to <= SIM_NET_NODES_MAX);
    net->cut[from][to] = cut;
}

void sim_net_partition(struct sim_net *net, const uint32_t *side, uint32_t node_count) {
    ASSERT(node_count <= SIM_NET_NODES_MAX);
    sim_net_heal(net);
    for (uint32_t a = 0; a < node_count; a++) {
        for (uint32_t b = 0; b < node_count; b++) {
            if (a == b || side[a] == SIM_NET_GROUP_BRIDGE || side[b] == SIM_NET_GROUP_BRIDGE)
                continue;
            if (side[a] != side[b]) net->cut[a + 1][b + 1] = true;
        }
    }
}

bool sim_net_link_up(const struct sim_net *net, uint32_t from, uint32_t to) {
    return !net->cut[from][to];
}
