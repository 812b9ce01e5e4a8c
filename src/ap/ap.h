/*
 * The AP engine: keyspaces of mode = ap, replicated leaderlessly (docs/engines.md, "The
 * AP engine"): a consistent-hash ring over the cluster's members, n replicas per key, any
 * node accepts any request, w and r quorums, hinted handoff, read repair, anti-entropy,
 * values that merge (src/crdt) under the keyspace's conflict policy.
 */
#ifndef CAPKV_AP_AP_H
#define CAPKV_AP_AP_H

#include "engine/engine.h"

extern const struct engine_ops ap_engine_ops;

struct db;
/* The engine's db: key -> encoded ap_object (object.h) as a string. Borrowed; for the
 * simulator and tests. */
struct db *ap_engine_db(const struct engine *e);

#endif
