/*
 * capkv's deterministic simulator: a 3- or 5-node cluster in one process, on virtual time,
 * under faults, with the invariants checked after every step and the outcome checked at the
 * end. One world (sim_world.h, sim.c) runs every target:
 *   raft  the real raft core, each node with a raftstore on its own memdisk and a small
 *         key -> int64 state machine (raftsim_*.c);
 *   node  the real node cores (src/core with its engines) driven by their events-in /
 *         effects-out interface, clients speaking RESP (nodesim_*.c).
 * The world owns what every target shares: the loop that picks the earliest event, the
 * virtual network (delay, reordering, duplication, loss, changing partitions, one-way
 * links), the fault schedule (partitions, crashes with torn writes, network quality, and a
 * slot for the target's own faults), the clock model (offset and drift per node), the
 * settle phase (faults stop, the network heals, crashed nodes restart, the cluster must
 * converge) and the end checks (linearizability of the workload's history). A target plugs
 * in its nodes, a workload its clients and checkers (struct sim_target, sim_workload).
 *
 * The seed alone determines the run: each component gets its own prng derived from it.
 * The simulation never reads a clock.
 */
#ifndef CAPKV_SIM_SIM_H
#define CAPKV_SIM_SIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "lincheck.h"
#include "sim_check.h"

#define SIM_NODES_MAX 5
#define SIM_RUN_MS_DEFAULT 6000u /* virtual time under faults, before the settle phase */
/* Lincheck's step budget per key in every target, 10 times its default: refuting the
 * history of a leader-mode seed that lost writes took 27 million (node core, seed 7029). A
 * seed that spends it ends UNKNOWN, which scripts/sim.sh fails. */
#define SIM_LINCHECK_STEPS_MAX 100000000u

enum sim_target_kind {
    SIM_TARGET_RAFT = 0, /* raft + raftstore + a toy state machine */
    SIM_TARGET_NODE,     /* the node cores, their engines included */
};

enum sim_replication {
    SIM_REPLICATION_MAJORITY = 0, /* acknowledge once applied on the leader (committed) */
    SIM_REPLICATION_LEADER,       /* acknowledge once the leader persisted the entry */
    SIM_REPLICATION_ALL,          /* acknowledge once applied on every live voter */
};

struct sim_options {
    uint64_t seed;
    uint32_t node_count; /* 3 or 5 */
    enum sim_target_kind target;
    enum sim_replication replication;
    uint64_t run_ms;            /* 0: SIM_RUN_MS_DEFAULT */
    bool membership;            /* raft: also remove and re-add servers as a fault */
    bool expiry;                /* node: also SET eK v PX small on keys outside the history */
    bool big_values;            /* node: also SET bK to 64 KiB..1 MiB */
    bool ap;                    /* node: also AP keyspaces, checked for convergence */
    uint64_t wal_segment_bytes; /* node: the cores' WAL segments; 0: 256 KiB */
    FILE *trace;                /* every event as a line; NULL: none */
    FILE *report;               /* a failure's explanation and last trace lines; NULL: none */
};

struct sim_stats {
    uint64_t steps; /* raft: events; node: node-core steps */
    uint64_t virtual_ms;
    uint64_t ops_ok;
    uint64_t ops_fail;
    uint64_t ops_info;
    uint64_t leaders; /* leaders elected, as seen */
    uint64_t crashes;
    uint64_t partitions;
    uint64_t snapshots;
    uint64_t restores; /* InstallSnapshot restores */
    uint64_t changes;  /* membership changes proposed (--membership) */
    uint64_t acked_writes;
    uint64_t lost_acked_writes;     /* leader mode: acknowledged, then missing */
    uint64_t async_seed;            /* 1 when persistence ran asynchronously */
    uint64_t fault_commands;        /* node: FAULT commands sent to the cores */
    uint64_t flushes;               /* node: FLUSHALLs sent */
    uint64_t keyspace_changes;      /* node: keyspace-table switches (and RELOADs) */
    uint64_t keyspace_tables;       /* node: times a core's table in force changed */
    uint64_t txns_applied;          /* node: EXECs that answered an array */
    uint64_t incr_applied;          /* node: WATCH-guarded increments applied */
    uint64_t incr_unknown;          /* node: ... that may have applied */
    uint64_t disk_losses;           /* node --ap: crashes that wiped the AP engine's files */
    uint64_t disk_loss_unknown;     /* node --ap: acknowledged AP ops they made unknown */
    uint64_t ap_collected;          /* node --ap: tombstones collected (since each last start) */
    bool lincheck_checked;          /* false: the run stopped before the history was checked */
    enum lincheck_verdict lincheck; /* UNKNOWN: the search budget ran out, nothing proven */
    uint64_t lincheck_steps;
    uint64_t trace_hash;
    bool failed;
    char what[SIM_CHECK_WHAT_BYTES + 64]; /* the violated invariant, when failed */
};

void sim_options_default(struct sim_options *options);
const char *sim_replication_name(enum sim_replication r);
/* Whether the options fit together (membership is the raft target's, expiry, big values
 * and WAL segments the node target's); when not, *why says what is wrong (static text). */
bool sim_options_valid(const struct sim_options *options, const char **why);
/* Runs one seed. options borrowed (and valid). Returns 0, or -1 when an invariant,
 * convergence or linearizability failed (stats->what says which; the report went to
 * options->report). */
int sim_run(const struct sim_options *options, struct sim_stats *stats);

#endif
