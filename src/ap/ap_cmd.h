/*
 * Redis commands on one AP object (object.h): what a replica runs for a key, under its
 * keyspace's conflict policy. Pure: the engine gives the object (this replica's, merged
 * with what the read replicas returned), the timestamp for the command's writes, its
 * actor and clocks; the command changes the object (then the engine logs and replicates
 * it) and writes its RESP reply.
 *
 * What each policy serves:
 * - lww, lww-wallclock: strings, sets and hashes as whole values in one LWW register
 *   (ap_cmd.c's plain values): a write replaces the whole value, so of two concurrent
 *   writes to one key the one with the greater timestamp wins whole.
 * - siblings: strings, as DVV siblings: GET (-CONFLICT beyond one sibling), SET (adds a
 *   sibling), VGET, VSET, DEL.
 * - crdt: strings and counters (strval), add-wins sets (orset), hashes (ormap).
 * Every policy: DEL, EXISTS, TYPE, EXPIRE, PEXPIRE, PERSIST, TTL, PTTL. Anything else on
 * an AP key answers an error that says so (transactions and conditions need CP).
 */
#ifndef CAPKV_AP_AP_CMD_H
#define CAPKV_AP_AP_CMD_H

#include <stdbool.h>
#include <stdint.h>

#include "ap/object.h"
#include "proto/resp.h"

enum ap_conflict {
    AP_CONFLICT_LWW = 1,       /* LWW by hybrid logical clock */
    AP_CONFLICT_LWW_WALLCLOCK, /* LWW by raw wall clock: skew loses writes */
    AP_CONFLICT_SIBLINGS,      /* dotted version vectors, siblings to the application */
    AP_CONFLICT_CRDT,          /* counters, add-wins sets, hashes */
};

/* What one command runs with. */
struct ap_cmd_ctx {
    enum ap_conflict conflict;
    bool grow_only;  /* crdt, type = gcounter: decrements are refused */
    uint64_t actor;  /* this replica's (crdt_actor: node id and epoch) */
    uint64_t ts;     /* the command's write timestamp (HLC, or wall clock), > 0 */
    uint64_t now_ms; /* this node's wall clock (FAULT CLOCK applied): expiry */
    int proto;       /* 2 or 3 */
    uint64_t string_bytes_max;
};

struct ap_cmd_result {
    bool wrote;        /* the object changed: log and replicate it */
    uint32_t siblings; /* siblings a write left (the warning counter), 0 elsewhere */
};

/* Whether name (any case) is a command AP keys serve, and whether it writes. */
bool ap_cmd_known(const uint8_t *name, size_t bytes, bool *writes);
/* Runs argv (argv[1] is the key) on o; appends the reply to out. */
void ap_cmd_run(const struct ap_cmd_ctx *ctx, struct ap_object *o, uint32_t argc,
                const struct resp_arg *argv, struct buf *out, struct ap_cmd_result *res);

#endif
