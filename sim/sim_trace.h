/*
 * The simulator's trace: every event as a fixed-size record (virtual time, node id, kind,
 * four numbers), hashed as it is added (the replay test compares hashes), kept in a ring
 * for the report of a failure, and, when asked, printed as one greppable line each:
 *   <node> <virtual ms> <kind> <name>=<value> ...
 * Node 0 is the simulation itself (faults, phases). Formatting is lazy: a run that is not
 * traced only pays for the hash.
 */
#ifndef CAPKV_SIM_TRACE_H
#define CAPKV_SIM_TRACE_H

#include <stdint.h>
#include <stdio.h>

#define SIM_TRACE_RING 64 /* records kept for a failure report (at least the last 50) */

enum sim_trace_kind {
    SIM_TRACE_SEND,
    SIM_TRACE_RECV,
    SIM_TRACE_ROLE,
    SIM_TRACE_COMMIT,
    SIM_TRACE_APPLY,
    SIM_TRACE_PERSIST,
    SIM_TRACE_SYNC,
    SIM_TRACE_CRASH,
    SIM_TRACE_RESTART,
    SIM_TRACE_SNAPSHOT,
    SIM_TRACE_RESTORE,
    SIM_TRACE_PARTITION,
    SIM_TRACE_LINK,
    SIM_TRACE_HEAL,
    SIM_TRACE_INVOKE,
    SIM_TRACE_REPLY,
    SIM_TRACE_TIMEOUT,
    SIM_TRACE_PROPOSE,
    SIM_TRACE_READ,
    SIM_TRACE_PHASE,
    SIM_TRACE_CHANGE,
    SIM_TRACE_FAULT,     /* a FAULT command sent to a node core (nodesim_faultcmd.c) */
    SIM_TRACE_DISK_LOSS, /* --ap: a crashed node's AP files wiped (nodesim_ap.c) */
    SIM_TRACE_KIND_COUNT
};

struct sim_trace_rec {
    uint64_t t_ms;
    uint32_t node;
    uint32_t kind;
    uint64_t a[4];
};

struct sim_trace {
    struct sim_trace_rec ring[SIM_TRACE_RING];
    uint64_t count;
    uint64_t hash;
    FILE *out; /* kept; NULL: not printed */
};

void sim_trace_init(struct sim_trace *tr, FILE *out);
void sim_trace_add(struct sim_trace *tr, uint64_t t_ms, uint32_t node, enum sim_trace_kind kind,
                   uint64_t a, uint64_t b, uint64_t c, uint64_t d);
/* Prints the last `count` records (at most SIM_TRACE_RING) to out. */
void sim_trace_dump(const struct sim_trace *tr, FILE *out, unsigned count);

#endif
