/*
 * capkv's deterministic simulator over the real node core (src/core, the CP engine
 * included): 3 or 5 node cores (node_new), each on its own memdisk, driven by their
 * events-in / effects-out interface (core/node.h) on virtual time. The peer payloads the
 * cores emit travel over the simulator's virtual network (sim_net: delay, reordering, loss,
 * changing partitions, one-way links; raft payloads may also be duplicated), syncs take
 * virtual time, nodes crash (memdisk_crash, sometimes tearing the last write) and restart
 * on the same disk, clocks are skewed and drift; the cores run with enable_faults, and the
 * fault schedule also sends them their own FAULT commands (PARTITION, DROP, DELAY, small
 * CLOCK skews, PAUSE; nodesim_faultcmd.c), all healed before convergence. Clients speak
 * RESP to the cores: get / set / compare-and-set on a few keys, whose history is checked
 * for linearizability at the end, after the cluster healed and every replica converged;
 * and outside that history sets and hashes, big values (64 KiB..1 MiB, so snapshots and
 * InstallSnapshot carry megabytes) and transactions (a bank of accounts whose sum stays 0,
 * a WATCH-guarded counter; nodesim_txn.c). Every replica must end with the same keys,
 * types, expiries and contents (nodesim_data.c), the bank's sum and the counter's bounds.
 * Checked after every step: no fatal, election safety, commit safety and monotonicity,
 * leader completeness (sim_check.h), log matching every few steps.
 *
 * The seed alone determines the run. The simulation never reads a clock.
 */
#ifndef CAPKV_SIM_NODESIM_H
#define CAPKV_SIM_NODESIM_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "sim.h"

#define NODESIM_RUN_MS_DEFAULT 6000u

struct nodesim_options {
    uint64_t seed;
    uint32_t node_count;        /* 3 or 5 */
    uint64_t run_ms;            /* 0: NODESIM_RUN_MS_DEFAULT */
    bool expiry;                /* also SET eK v PX small on keys outside the lincheck history */
    bool big_values;            /* also SET bK to 64 KiB..1 MiB (off: see capkv_sim.c) */
    uint64_t wal_segment_bytes; /* 0: 256 KiB */
    int replication;            /* enum keyspace_replication of every key; 0: majority */
    FILE *trace;                /* every event as a line; NULL: none */
    FILE *report;               /* a failure's explanation and last trace lines; NULL: none */
};

void nodesim_options_default(struct nodesim_options *options);
/* Runs one seed (options borrowed; stats filled, struct sim_stats reused). Returns 0, or -1
 * when a check failed (stats->what says which; the report went to options->report). */
int nodesim_run(const struct nodesim_options *options, struct sim_stats *stats);

#endif
