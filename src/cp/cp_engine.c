/*
 * The CP engine behind the engine interface (engine.h): allocation, events to the
 * functions of cp.c and cp_req.c, and the effects they leave. Also the read-only views the
 * simulator and tests use (cp.h).
 */
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "cp/internal.h"

static struct cp *cp_of(struct engine *e) {
    ASSERT(e != NULL && e->ops == &cp_engine_ops);
    return (struct cp *)e;
}

static const struct cp *cp_of_const(const struct engine *e) {
    ASSERT(e != NULL && e->ops == &cp_engine_ops);
    return (const struct cp *)e;
}

static void cp_engine_free(struct engine *e) {
    if (e == NULL) return;
    struct cp *cp = cp_of(e);
    cp_close(cp);
    db_free(cp->db);
    buf_deinit(&cp->ops);
    buf_deinit(&cp->scratch);
    buf_deinit(&cp->list);
    buf_deinit(&cp->replies);
    buf_deinit(&cp->reply_list);
    free(cp);
}

static int cp_engine_open(const struct engine_config *config, struct disk *disk, uint64_t now_ms,
                          struct engine **out, struct errmsg *msg) {
    *out = NULL;
    if (config->fsync != ENGINE_FSYNC_ALWAYS) {
        return errmsg_set(msg, ERR_CONFIG,
                          "fsync = everysec/never is not supported in a "
                          "cluster yet: Raft acknowledges only what is on disk (use always)");
    }
    struct cp *cp = base_calloc(1, sizeof(*cp));
    cp->base.ops = &cp_engine_ops;
    cp->config = *config;
    cp->disk = disk;
    cp->now_ms = now_ms;
    cp->db = db_new(config->hash_seed);
    buf_init(&cp->ops);
    buf_init(&cp->scratch);
    buf_init(&cp->list);
    buf_init(&cp->replies);
    buf_init(&cp->reply_list);
    int rc = cp_open(cp, msg);
    if (rc != 0) {
        cp_engine_free(&cp->base);
        return rc;
    }
    *out = &cp->base;
    return 0;
}

/* The node's clocks: its wall clock as given (FAULT CLOCK may move it back: entry stamps
 * never go back, cp_entry_ms), its monotonic clock never back. */
static void cp_engine_clocks(struct cp *cp, uint64_t now_ms, uint64_t mono_ms) {
    cp->now_ms = now_ms;
    if (mono_ms > cp->mono_ms) cp->mono_ms = mono_ms;
}

static void cp_engine_submit(struct engine *e, const struct engine_request *req, struct buf *out,
                             struct engine_answer *answer) {
    struct cp *cp = cp_of(e);
    cp_engine_clocks(cp, req->now_ms, req->mono_ms);
    cp_submit(cp, req, out, answer);
}

/* The effects every step returns; FLUSH adds its own (sends, sync, members). */
static void cp_engine_effects(struct cp *cp, struct engine_effects *out) {
    cp_take_replies(cp, &out->replies, &out->reply_count);
    out->fatal = cp->fatal;
    out->fatal_text = cp->fatal_text;
    if (cp->keyspaces_changed) {
        cp->keyspaces_changed = false;
        out->keyspaces = cp->config.keyspaces;
        out->keyspace_count = cp->config.keyspace_count;
    }
}

static void cp_engine_step(struct engine *e, const struct engine_event *ev,
                           struct engine_effects *out) {
    struct cp *cp = cp_of(e);
    memset(out, 0, sizeof(*out));
    buf_clear(&cp->replies);
    cp_engine_clocks(cp, ev->now_ms, ev->mono_ms);
    switch (ev->kind) {
    case ENGINE_EVENT_TICK:
        cp_tick(cp);
        break;
    case ENGINE_EVENT_SYNCED:
        cp_synced(cp, ev->error);
        break;
    case ENGINE_EVENT_FLUSH:
        cp_flush(cp, out);
        break;
    case ENGINE_EVENT_PEER:
        cp_peer_message(cp, ev->from, ev->data, ev->bytes);
        break;
    case ENGINE_EVENT_GONE:
        cp_request_gone(cp, ev->request_id);
        break;
    case ENGINE_EVENT_SENT:
        cp_sends_done(cp);
        break;
    }
    cp_engine_effects(cp, out);
}

static void cp_engine_info(struct engine *e, const char *section, struct buf *out) {
    struct cp *cp = cp_of(e);
    if (strcmp(section, "replication") == 0) cp_info(cp, out);
    if (strcmp(section, "stats") == 0)
        buf_appendf(out, "expired_keys:%llu\r\n", (unsigned long long)cp->stats.expired_keys);
    if (strcmp(section, "keyspace") == 0 && db_count(cp->db) > 0) {
        buf_appendf(out, "db0:keys=%zu,expires=%zu,avg_ttl=0\r\n", db_count(cp->db),
                    db_expires_count(cp->db));
    }
    if (strcmp(section, "persistence") == 0) {
        buf_appendf(out,
                    "loading:0\r\naof_enabled:1\r\nappendfsync:always\r\n"
                    "storage:raft-log\r\nwal_syncs:%llu\r\n",
                    (unsigned long long)cp->stats.syncs);
    }
}

static uint64_t cp_engine_key_count(struct engine *e) {
    return db_count(cp_of(e)->db);
}

static uint64_t cp_engine_memory_bytes(struct engine *e) {
    return db_memory_bytes(cp_of(e)->db);
}

static uint64_t cp_engine_last_save_ms(struct engine *e) {
    return cp_of(e)->last_save_ms;
}

static uint64_t cp_engine_observed_index(struct engine *e) {
    return cp_of(e)->applied;
}

static bool cp_engine_member_before(struct engine *e) {
    return cp_of(e)->member_before;
}

static uint64_t cp_engine_wake_at(struct engine *e) {
    return cp_wake_at(cp_of(e));
}

/* A CP reply is given only once its entry is durable and applied: nothing to hold. */
static uint64_t cp_engine_lsn(struct engine *e) {
    (void)cp_of(e);
    return 0;
}

const struct engine_ops cp_engine_ops = {
    .name = "cp",
    .id = ENGINE_CP,
    .watch = ENGINE_WATCH_CONDITIONS,
    .pipelines = true,
    .open = cp_engine_open,
    .free = cp_engine_free,
    .submit = cp_engine_submit,
    .step = cp_engine_step,
    .info = cp_engine_info,
    .key_count = cp_engine_key_count,
    .memory_bytes = cp_engine_memory_bytes,
    .last_save_ms = cp_engine_last_save_ms,
    .observed_index = cp_engine_observed_index,
    .member_before = cp_engine_member_before,
    .wake_at = cp_engine_wake_at,
    .release_lsn = cp_engine_lsn,
    .durable_lsn = cp_engine_lsn,
};

struct raft *cp_engine_raft(const struct engine *e) {
    return cp_of_const(e)->raft;
}

struct db *cp_engine_db(const struct engine *e) {
    return cp_of_const(e)->db;
}

uint64_t cp_engine_applied(const struct engine *e) {
    return cp_of_const(e)->applied;
}

uint32_t cp_engine_keyspaces(const struct engine *e, const struct keyspace **table) {
    const struct cp *cp = cp_of_const(e);
    *table = cp->config.keyspaces;
    return cp->config.keyspace_count;
}

bool cp_engine_sync_in_flight(const struct engine *e) {
    return cp_of_const(e)->sync_in_flight;
}

uint64_t cp_engine_leader_mismatches(const struct engine *e) {
    return cp_of_const(e)->spec.mismatches;
}

uint64_t cp_engine_leader_acked_lost(const struct engine *e) {
    return cp_of_const(e)->spec.acked_lost;
}

void cp_engine_each_early_answer(const struct engine *e, cp_engine_early_fn *fn, void *ctx) {
    for (const struct cp_wait *w = cp_of_const(e)->waits; w != NULL; w = w->next) {
        if (w->kind != CP_WAIT_PROPOSAL || !w->spec_acked) continue;
        ASSERT(w->index != 0 && w->term != 0); /* answered after its own entry's fsync */
        fn(ctx, w->index, w->term);
    }
}

int cp_engine_propose(struct engine *e, const uint8_t *data, size_t bytes, uint64_t *index,
                      uint64_t *term) {
    return cp_propose(cp_of(e), data, bytes, index, term);
}
