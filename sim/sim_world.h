/*
 * The simulator's world (see sim.h), shared by every target: virtual time, the network, the
 * invariant checker, the trace, the history, the fault prngs, and one host per node (is it
 * up, when does it next tick, sync or restart, its clock). sim.c runs the loop, the fault
 * schedule, the settle phase and the end checks over it; a target (struct sim_target)
 * supplies its nodes and a workload (struct sim_workload) its clients. A target's own world
 * embeds struct sim_world as its first member, so the tables' callbacks take the shared one
 * and the target finds its own with a cast (sim_world_of). Internal.
 */
#ifndef CAPKV_SIM_WORLD_H
#define CAPKV_SIM_WORLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/prng.h"
#include "lincheck.h"
#include "sim.h"
#include "sim_check.h"
#include "sim_net.h"
#include "sim_trace.h"

/* --- the clock model --------------------------------------------------------------- */

/* Every node's clock reads offset_ms + t * (1 + drift_ppm / 1e6) at global virtual time t:
 * offsets up to SIM_CLOCK_OFFSET_MS_MAX apart, drift within SIM_CLOCK_DRIFT_PPM_MAX (1 %).
 * Two clocks then disagree on an interval by at most 2 % of it: 6 ms of a 300 ms election
 * timeout, below the margin raft takes off its leases (raft.h lease_drift_ms). */
#define SIM_CLOCK_OFFSET_MS_MAX 100000
#define SIM_CLOCK_DRIFT_PPM_MAX 10000
#define SIM_CLOCK_PPM 1000000

struct sim_clock {
    int64_t offset_ms;
    int64_t drift_ppm;
};

/* Draws offset, then drift, from prng (borrowed). */
void sim_clock_init(struct sim_clock *clock, struct prng *prng);
/* Time elapsed on this clock since global time 0 (drift, no offset). */
uint64_t sim_clock_elapsed(const struct sim_clock *clock, uint64_t global_ms);
/* What the clock reads at global_ms (offset and drift). */
uint64_t sim_clock_read(const struct sim_clock *clock, uint64_t global_ms);
/* The first global time at which the clock reads at least local_ms. */
uint64_t sim_clock_global(const struct sim_clock *clock, uint64_t local_ms);

/* --- hosts, targets, workloads ----------------------------------------------------- */

/* What the world's loop and fault schedule see of a node; the target keeps the rest. */
struct sim_host {
    uint32_t id; /* 1-based */
    bool up;
    uint64_t wake_ms;       /* up: global time of the next tick */
    uint64_t sync_at_ms;    /* up: when the asynchronous sync in flight ends; 0: none */
    uint64_t restart_at_ms; /* down: when it restarts */
    struct sim_clock clock;
};

struct sim_world;

/* A target: the nodes under test. Every callback borrows w; node ids are 1-based. NULL
 * optional callbacks do nothing (or, for lincheck_strict, answer true). */
struct sim_target {
    const char *name;
    size_t world_bytes;    /* the target's world, struct sim_world first */
    bool steps_are_events; /* true: every world event is one step; false: the target counts */
    int (*init)(struct sim_world *w); /* nodes (started) and the workload's clients */
    void (*deinit)(struct sim_world *w);
    int (*start)(struct sim_world *w, uint32_t id); /* (re)start a node that is down */
    void (*crash)(struct sim_world *w, uint32_t id, bool tear);
    void (*tick)(struct sim_world *w, uint32_t id);
    void (*sync_due)(struct sim_world *w, uint32_t id);
    void (*receive)(struct sim_world *w, const struct sim_packet *p); /* p borrowed */
    uint32_t (*leader)(const struct sim_world *w); /* the leader of the highest term; 0: none */
    void (*full_check)(struct sim_world *w);       /* whole-log comparisons */
    void (*heal)(struct sim_world *w);             /* optional: the network healed */
    void (*fault)(struct sim_world *w);            /* optional: the schedule's last slot */
    void (*settle_begin)(struct sim_world *w);     /* optional: after the restarts */
    void (*settle_poll)(struct sim_world *w);      /* optional: each settle round */
    bool (*converged)(struct sim_world *w);        /* true also when it failed (check.failed) */
    void (*end_check)(struct sim_world *w); /* optional: after convergence, before lincheck */
    bool (*lincheck_strict)(const struct sim_world *w); /* optional: a bad history fails */
    void (*after_lincheck)(struct sim_world *w);        /* optional */
    /* A failure report's "(...)": what kind of run this was. */
    void (*describe)(const struct sim_world *w, char *out, size_t bytes);
};

/* A workload: clients that drive a target and what they record. */
struct sim_workload {
    const char *name;
    uint32_t client_count;
    bool history; /* records ops in w->history, checked for linearizability at the end */
    /* When client i next needs an event (UINT64_MAX: not before something happens). */
    uint64_t (*next_at)(const struct sim_world *w, uint32_t i);
    void (*event)(struct sim_world *w, uint32_t i);
    void (*finish_all)(struct sim_world *w); /* end of run: outstanding ops are recorded */
};

struct sim_world {
    struct sim_options options;
    const struct sim_target *target;
    const struct sim_workload *workload;
    struct sim_stats *stats;
    uint64_t now_ms;
    bool settling;
    bool async; /* persistence syncs take virtual time (a quarter of the seeds) */
    struct prng prng_faults;
    struct prng prng_crash;
    struct sim_net net;
    struct sim_check check;
    struct sim_trace trace;
    struct lincheck_history history;
    uint64_t next_op_id;
    uint64_t fault_at_ms;
    struct sim_host hosts[SIM_NODES_MAX + 1]; /* 1-based */
};

/* The targets and their workloads (raftsim.c, nodesim.c). */
extern const struct sim_target sim_target_raft;
extern const struct sim_workload sim_workload_raft_register;
extern const struct sim_target sim_target_node;
extern const struct sim_workload sim_workload_node_register;

/* A target's world, which embeds struct sim_world as its first member `sim`. */
#define sim_world_of(type, w) ((type *)(void *)(w))

/* Records the failure (stats->what) and prints the report; returns -1. */
int sim_world_violation(struct sim_world *w);
/* A random node id (from prng_faults). */
uint32_t sim_world_random_node(struct sim_world *w);
/* Shuffled node order (prng_faults): side[i] = 1 for `minority` nodes (position id - 1),
 * else 0. */
void sim_world_split(struct sim_world *w, uint32_t *side, uint32_t minority);

#endif
