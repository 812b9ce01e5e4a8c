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

#endif
