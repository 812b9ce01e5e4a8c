/*
 * The single-node engine: a node that runs alone keeps its data here, behind the engine
 * interface (engine.h). Its own write-ahead log with group commit (fsync = always: a reply
 * waits until a sync covers what it could have observed; everysec, never), fuzzy snapshots
 * taken a few buckets at a time, recovery from the newest snapshot and the log, expiry.
 * Nothing is replicated: it never sends a peer payload.
 */
#ifndef CAPKV_LOCAL_LOCAL_H
#define CAPKV_LOCAL_LOCAL_H

#include "data/db.h"
#include "engine/engine.h"

extern const struct engine_ops local_engine_ops;

#endif
