/* State shared by the files of src/local, the single-node engine; nothing outside src/local
 * includes it (the rest of the program sees local/local.h). */
#ifndef CAPKV_LOCAL_INTERNAL_H
#define CAPKV_LOCAL_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "base/buf.h"
#include "cmd/cmd.h"
#include "data/db.h"
#include "engine/engine.h"
#include "engine/logdb.h"
#include "local/local.h"

#define LOCAL_TICK_MS 100 /* Redis's hz 10: expiry cycles, everysec, snapshot triggers */
#define LOCAL_EXPIRE_CHECKS_PER_TICK 200
#define LOCAL_WAL_RESERVE_SLACK 4096

struct local_stats {
    uint64_t expired_keys;
};

/* The single-node engine. base comes first: engine functions get &lo->base. Its db, log,
 * snapshots and clocks are the logdb's (store). */
struct local {
    struct engine base;
    struct engine_config config;
    struct logdb store;
    uint64_t next_tick_ms; /* monotonic */
    struct buf ops;        /* the current request's ops (op.h) */
    size_t logged_bytes;   /* ops holds what the last call logged (for the node's WATCH) */
    struct buf args;       /* struct resp_arg[] of a transaction's command */
    bool submitting;       /* inside local_submit (the host hook must not re-enter) */
    struct local_stats stats;
};

/* local_engine.c: requests */
void local_submit(struct local *lo, const struct engine_request *req, struct buf *out,
                  struct engine_answer *answer);

#endif
