/*
 * The single-node engine behind the engine interface (engine.h): requests run at once on
 * its db, every write command's ops become one WAL record (a transaction's too, so a crash
 * keeps all or none of it), and a reply is answered at once: the node holds it until
 * durable_lsn reaches the release_lsn it had then (the logdb's group commit, logdb.h). WATCH is
 * decided by the node from the ops each request logged (ENGINE_WATCH_TOUCHED).
 */
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/util.h"
#include "cmd/op.h"
#include "engine/cmdlist.h"
#include "local/internal.h"
#include "proto/errcode.h"

static struct local *local_of(struct engine *e) {
    ASSERT(e != NULL && e->ops == &local_engine_ops);
    return (struct local *)e;
}

/* An upper bound on the ops a write command can log, from its arguments. */
static size_t local_ops_bytes_bound(uint32_t argc, const struct resp_arg *argv) {
    size_t bytes = LOCAL_WAL_RESERVE_SLACK;
    for (uint32_t i = 0; i < argc; i++) bytes += argv[i].bytes + 32;
    return bytes;
}

/* Runs a data command; its ops stay in lo->ops. False when refused first (disk full). */
static bool local_run(struct local *lo, const struct cmd_spec *spec, uint32_t argc,
                      const struct resp_arg *argv, int proto, struct buf *out) {
    ASSERT(spec->fn != NULL);
    if ((spec->flags & CMD_WRITE) &&
        !logdb_reserve(&lo->store, local_ops_bytes_bound(argc, argv))) {
        lo->store.stats.disk_full_refusals++;
        errcode_reply(out, ERRCODE_DISKFULL,
                      "%s; writes are refused until space is freed, reads go on",
                      lo->store.disk_full_text);
        return false;
    }
    struct cmd_ctx ctx = {
        .db = lo->store.db,
        .now_ms = lo->store.now_ms,
        .proto = proto,
        .argc = argc,
        .argv = argv,
        .out = out,
        .ops = &lo->ops,
        .string_bytes_max = lo->config.string_bytes_max,
    };
    spec->fn(&ctx);
    return true;
}

/* Every call starts with no ops: the last call's logged ones were the node's to read. */
static void local_begin(struct local *lo) {
    buf_clear(&lo->ops);
    lo->logged_bytes = 0;
}

/* Logs the ops of what just ran as one record (and keeps them for the node's WATCH). */
static void local_log_ops(struct local *lo) {
    if (lo->ops.len == 0) return;
    /* Write commands reserved an upper bound before running. Ops left by reads are only
     * deletions of expired keys, which replay can do without: if the disk is full they
     * are dropped rather than refused. */
    if (logdb_reserve(&lo->store, lo->ops.len)) {
        logdb_append(&lo->store, lo->ops.data, lo->ops.len);
        /* They stay in lo->ops, for the node's WATCH, until the engine's next call. */
        lo->logged_bytes = lo->ops.len;
        return;
    }
    buf_clear(&lo->ops);
}

static void local_admin(struct local *lo, const struct engine_request *req, struct buf *out);

/* The engine commands (the node hands them to an engine): queued in a transaction, they run
 * here, never through the host, which would submit them to this engine again. */
static bool local_is_admin(const struct cmd_spec *spec) {
    return spec->core_op == CMD_CORE_SAVE || spec->core_op == CMD_CORE_BGSAVE ||
           spec->core_op == CMD_CORE_WAIT || spec->core_op == CMD_CORE_CLUSTER;
}

/* EXEC: the queued commands back to back, their ops one record. Commands that are not the
 * engine's (PING, CLIENT ... queued in the transaction) are run by the node's host hook. */
static void local_exec(struct local *lo, const struct engine_request *req, struct buf *out) {
    uint32_t count = base_load_u32le(req->list + 1);
    if (!logdb_reserve(&lo->store, req->bytes + (size_t)count * 64 + LOCAL_WAL_RESERVE_SLACK)) {
        lo->store.stats.disk_full_refusals++;
        resp_put_errorf(out, "EXECABORT Transaction discarded: disk full: %s",
                        lo->store.disk_full_text);
        return;
    }
    resp_put_array(out, count);
    size_t pos = CMDLIST_HEADER_BYTES;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t argc = 0;
        bool ok = cmdlist_next(req->list, req->bytes, &pos, &lo->args, &argc);
        ASSERT(ok); /* the node built the list from commands it checked */
        const struct resp_arg *argv = (const struct resp_arg *)lo->args.data;
        const struct cmd_spec *spec = cmd_lookup(argv[0].data, argv[0].bytes);
        ASSERT(spec != NULL);
        if (spec->fn != NULL) {
            local_run(lo, spec, argc, argv, req->proto, out);
        } else if (local_is_admin(spec)) {
            struct engine_request admin = {.id = req->id, .argc = argc, .argv = argv};
            local_admin(lo, &admin, out); /* its own command, not the node's */
        } else {
            lo->config.host(lo->config.host_ctx, req->id, argc, argv);
        }
    }
    local_log_ops(lo);
}

static void local_save(struct local *lo, bool background, struct buf *out) {
    struct errmsg msg;
    if (lo->store.snap.active && !background) {
        resp_put_error(out, "ERR Background save already in progress");
        return;
    }
    if (lo->store.snap.active) {
        resp_put_simple(out, "Background saving scheduled");
        return;
    }
    if (logdb_snapshot_start(&lo->store, &msg) != 0) {
        resp_put_errorf(out, "ERR snapshot failed: %s", msg.text);
        return;
    }
    if (background) {
        resp_put_simple(out, "Background saving started");
        return;
    }
    int rc = logdb_snapshot_run(&lo->store, true);
    if (rc != 0)
        resp_put_errorf(out, "ERR snapshot failed: %s", err_text(rc));
    else
        resp_put_simple(out, "OK");
}

static void local_admin(struct local *lo, const struct engine_request *req, struct buf *out) {
    const struct resp_arg *name = &req->argv[0];
    if (cmd_arg_is(name, "save") || cmd_arg_is(name, "bgsave")) {
        local_save(lo, cmd_arg_is(name, "bgsave"), out);
    } else if (cmd_arg_is(name, "wait")) {
        resp_put_int(out, 0); /* no replicas to wait for: Redis answers 0 at once too */
    } else if (cmd_arg_is(name, "cluster")) {
        resp_put_error(out, "ERR this node runs alone: start it with --peers to form a cluster");
    } else {
        resp_put_errorf(out, "ERR the local engine has no command '%.*s'",
                        (int)(name->bytes > 64 ? 64 : name->bytes), (const char *)name->data);
    }
}

void local_submit(struct local *lo, const struct engine_request *req, struct buf *out,
                  struct engine_answer *answer) {
    ASSERT(!lo->submitting); /* the host must never submit to this engine from inside */
    lo->submitting = true;
    memset(answer, 0, sizeof(*answer));
    local_begin(lo);
    if (req->kind == ENGINE_REQUEST_ADMIN) {
        local_admin(lo, req, out);
    } else if (req->spec != NULL) {
        if (local_run(lo, req->spec, req->argc, req->argv, req->proto, out)) local_log_ops(lo);
    } else {
        ASSERT(req->bytes >= CMDLIST_HEADER_BYTES && (req->list[0] & CMDLIST_EXEC));
        local_exec(lo, req, out);
    }
    answer->ops = lo->ops.data;
    answer->ops_bytes = lo->logged_bytes;
    lo->submitting = false;
}

static void local_expired_logged(void *ctx, const uint8_t *key, size_t key_bytes) {
    struct local *lo = ctx;
    op_put_del(&lo->ops, key, key_bytes);
    lo->stats.expired_keys++;
}

/* Every LOCAL_TICK_MS: an expiry cycle (its deletions logged), everysec, snapshots. */
static void local_engine_tick(struct local *lo) {
    if (lo->store.mono_ms < lo->next_tick_ms) return;
    lo->next_tick_ms = lo->store.mono_ms + LOCAL_TICK_MS;
    ASSERT(lo->ops.len == 0);
    db_expire_cycle(lo->store.db, lo->store.now_ms, LOCAL_EXPIRE_CHECKS_PER_TICK,
                    local_expired_logged, lo);
    local_log_ops(lo);
    logdb_tick(&lo->store);
}

static void local_engine_step(struct engine *e, const struct engine_event *ev,
                              struct engine_effects *out) {
    struct local *lo = local_of(e);
    memset(out, 0, sizeof(*out));
    local_begin(lo);
    logdb_clocks(&lo->store, ev->now_ms, ev->mono_ms);
    switch (ev->kind) {
    case ENGINE_EVENT_TICK:
        local_engine_tick(lo);
        break;
    case ENGINE_EVENT_SYNCED:
        logdb_synced(&lo->store, ev->token, ev->error);
        break;
    case ENGINE_EVENT_FLUSH:
        if (lo->store.snap.active && !lo->store.snap.scan_done)
            logdb_snapshot_run(&lo->store, false);
        logdb_flush(&lo->store, out);
        break;
    case ENGINE_EVENT_PEER: /* a node alone has no peers: nothing is meant for it */
    case ENGINE_EVENT_GONE: /* every request is answered at once: none is pending */
    case ENGINE_EVENT_SENT:
        break;
    }
    out->ops = lo->ops.data;
    out->ops_bytes = lo->logged_bytes;
    out->fatal = lo->store.fatal;
    out->fatal_text = lo->store.fatal_text;
}

static void local_engine_submit(struct engine *e, const struct engine_request *req, struct buf *out,
                                struct engine_answer *answer) {
    struct local *lo = local_of(e);
    logdb_clocks(&lo->store, req->now_ms, req->mono_ms);
    local_submit(lo, req, out, answer);
}

static const char *local_fsync_name(enum engine_fsync f) {
    return f == ENGINE_FSYNC_ALWAYS ? "always" : f == ENGINE_FSYNC_EVERYSEC ? "everysec" : "no";
}

static void local_engine_info(struct engine *e, const char *section, struct buf *out) {
    struct local *lo = local_of(e);
    if (strcmp(section, "persistence") == 0) {
        buf_appendf(out,
                    "loading:0\r\naof_enabled:1\r\nappendfsync:%s\r\n"
                    "wal_last_lsn:%llu\r\nwal_durable_lsn:%llu\r\nwal_syncs:%llu\r\n"
                    "disk_full:%d\r\ndisk_full_refusals:%llu\r\nrdb_bgsave_in_progress:%d\r\n"
                    "snapshot_lsn:%llu\r\nrdb_last_save_time:%llu\r\n",
                    local_fsync_name(lo->config.fsync),
                    (unsigned long long)wal_last_lsn(lo->store.wal),
                    (unsigned long long)logdb_durable_lsn(&lo->store),
                    (unsigned long long)lo->store.stats.syncs, lo->store.disk_full ? 1 : 0,
                    (unsigned long long)lo->store.stats.disk_full_refusals,
                    lo->store.snap.active ? 1 : 0, (unsigned long long)lo->store.snapshot_lsn,
                    (unsigned long long)(lo->store.last_save_ms / 1000));
    } else if (strcmp(section, "replication") == 0) {
        buf_appendf(out, "role:master\r\nconnected_slaves:0\r\n"
                         "capkv_replication:none (single node)\r\n");
    } else if (strcmp(section, "keyspace") == 0 && db_count(lo->store.db) > 0) {
        buf_appendf(out, "db0:keys=%zu,expires=%zu,avg_ttl=0\r\n", db_count(lo->store.db),
                    db_expires_count(lo->store.db));
    } else if (strcmp(section, "stats") == 0) {
        buf_appendf(out, "expired_keys:%llu\r\n", (unsigned long long)lo->stats.expired_keys);
    }
}

static uint64_t local_engine_key_count(struct engine *e) {
    return db_count(local_of(e)->store.db);
}

static uint64_t local_engine_memory_bytes(struct engine *e) {
    return db_memory_bytes(local_of(e)->store.db);
}

static uint64_t local_engine_last_save_ms(struct engine *e) {
    return local_of(e)->store.last_save_ms;
}

static uint64_t local_engine_observed_index(struct engine *e) {
    return wal_last_lsn(local_of(e)->store.wal);
}

static uint64_t local_engine_wake_at(struct engine *e) {
    const struct local *lo = local_of(e);
    return lo->store.snap.active && !lo->store.snap.scan_done ? lo->store.mono_ms + 1
                                                              : lo->next_tick_ms;
}

static uint64_t local_engine_release_lsn(struct engine *e) {
    return logdb_release_lsn(&local_of(e)->store);
}

static uint64_t local_engine_durable_lsn(struct engine *e) {
    return logdb_durable_lsn(&local_of(e)->store);
}

static void local_engine_free(struct engine *e) {
    if (e == NULL) return;
    struct local *lo = local_of(e);
    logdb_close(&lo->store);
    buf_deinit(&lo->ops);
    buf_deinit(&lo->args);
    free(lo);
}

static int local_engine_open(const struct engine_config *config, struct disk *disk, uint64_t now_ms,
                             struct engine **out, struct errmsg *msg) {
    *out = NULL;
    ASSERT(config->host != NULL);
    struct local *lo = base_calloc(1, sizeof(*lo));
    lo->base.ops = &local_engine_ops;
    lo->config = *config;
    lo->next_tick_ms = 0; /* the first TICK runs the first cycle */
    buf_init(&lo->ops);
    buf_init(&lo->args);
    struct logdb_config store = {
        .id = config->id,
        .fsync = config->fsync,
        .wal_segment_bytes = config->wal_segment_bytes,
        .snapshot_log_bytes = config->snapshot_log_bytes,
        .hash_seed = config->hash_seed,
        .trace = config->trace,
        .trace_ctx = config->trace_ctx,
    };
    int rc = logdb_open(&lo->store, &store, disk, now_ms, msg);
    if (rc != 0) {
        local_engine_free(&lo->base);
        return rc;
    }
    *out = &lo->base;
    return 0;
}

const struct engine_ops local_engine_ops = {
    .name = "local",
    .id = ENGINE_LOCAL,
    .watch = ENGINE_WATCH_TOUCHED,
    .open = local_engine_open,
    .free = local_engine_free,
    .submit = local_engine_submit,
    .step = local_engine_step,
    .info = local_engine_info,
    .key_count = local_engine_key_count,
    .memory_bytes = local_engine_memory_bytes,
    .last_save_ms = local_engine_last_save_ms,
    .observed_index = local_engine_observed_index,
    .wake_at = local_engine_wake_at,
    .release_lsn = local_engine_release_lsn,
    .durable_lsn = local_engine_durable_lsn,
};
