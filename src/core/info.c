/*
 * INFO, COMMAND (COUNT, LIST, INFO, DOCS) and CONFIG GET: what clients and operators read
 * about the node. Field names follow Redis where Redis has the field, so tools that parse
 * INFO (ioredis's ready check reads "loading:") work unchanged.
 */
#include <string.h>

#include "base/assert.h"
#include "base/util.h"
#include "core/internal.h"

#define INFO_VERSION "0.1.0"
#define INFO_REDIS_VERSION "7.2.0"

static const char *info_fsync_name(enum node_fsync fsync) {
    switch (fsync) {
    case NODE_FSYNC_ALWAYS: return "always";
    case NODE_FSYNC_EVERYSEC: return "everysec";
    case NODE_FSYNC_NEVER: return "no";
    }
    UNREACHABLE();
}

static void info_server(struct node *node, struct buf *out) {
    buf_appendf(out, "# Server\r\nredis_version:%s\r\ncapkv_version:%s\r\nredis_mode:standalone\r\n"
                "node_id:%u\r\nprocess_id:%llu\r\nlisten:%s\r\nuptime_in_seconds:%llu\r\n"
                "uptime_in_days:%llu\r\n\r\n",
                INFO_REDIS_VERSION, INFO_VERSION, node->config.id,
                (unsigned long long)node->config.pid, node->listen,
                (unsigned long long)((node->now_ms - node->started_ms) / 1000),
                (unsigned long long)((node->now_ms - node->started_ms) / 86400000));
}

static void info_clients(struct node *node, struct buf *out) {
    buf_appendf(out, "# Clients\r\nconnected_clients:%u\r\nmaxclients:%u\r\n\r\n",
                node->client_count, node->config.clients_max);
}

static void info_memory(struct node *node, struct buf *out) {
    struct node_host_stats host = {0};
    if (node->config.host_stats != NULL) node->config.host_stats(node->config.host_ctx, &host);
    buf_appendf(out, "# Memory\r\nused_memory:%zu\r\nused_memory_rss:%llu\r\nmaxmemory:0\r\n"
                "maxmemory_policy:noeviction\r\n\r\n",
                db_memory_bytes(node->db), (unsigned long long)host.rss_bytes);
}

static void info_persistence(struct node *node, struct buf *out) {
    buf_appendf(out, "# Persistence\r\nloading:0\r\naof_enabled:1\r\nappendfsync:%s\r\n"
                "wal_last_lsn:%llu\r\nwal_durable_lsn:%llu\r\nwal_syncs:%llu\r\n"
                "disk_full:%d\r\ndisk_full_refusals:%llu\r\nrdb_bgsave_in_progress:%d\r\n"
                "snapshot_lsn:%llu\r\nrdb_last_save_time:%llu\r\n\r\n",
                info_fsync_name(node->config.fsync), (unsigned long long)wal_last_lsn(node->wal),
                (unsigned long long)persist_durable_lsn(node),
                (unsigned long long)node->stats.syncs, node->disk_full ? 1 : 0,
                (unsigned long long)node->stats.disk_full_refusals, node->snap.active ? 1 : 0,
                (unsigned long long)node->snapshot_lsn,
                (unsigned long long)(node->last_save_ms / 1000));
}

static void info_stats(struct node *node, struct buf *out) {
    buf_appendf(out, "# Stats\r\ntotal_connections_received:%llu\r\n"
                "total_commands_processed:%llu\r\nrejected_connections:%llu\r\n"
                "expired_keys:%llu\r\nprotocol_errors:%llu\r\nclient_output_limit_closes:%llu"
                "\r\n\r\n",
                (unsigned long long)node->stats.connections,
                (unsigned long long)node->stats.commands,
                (unsigned long long)node->stats.rejected_connections,
                (unsigned long long)node->stats.expired_keys,
                (unsigned long long)node->stats.protocol_errors,
                (unsigned long long)node->stats.output_limit_closes);
}

static void info_cpu(struct node *node, struct buf *out) {
    struct node_host_stats host = {0};
    if (node->config.host_stats != NULL) node->config.host_stats(node->config.host_ctx, &host);
    buf_appendf(out, "# CPU\r\nused_cpu_sys:%llu.%06llu\r\nused_cpu_user:%llu.%06llu\r\n\r\n",
                (unsigned long long)(host.cpu_sys_us / 1000000),
                (unsigned long long)(host.cpu_sys_us % 1000000),
                (unsigned long long)(host.cpu_user_us / 1000000),
                (unsigned long long)(host.cpu_user_us % 1000000));
}

static void info_replication(struct node *node, struct buf *out) {
    (void)node;
    buf_appendf(out, "# Replication\r\nrole:master\r\nconnected_slaves:0\r\n"
                "capkv_replication:none (single node)\r\n\r\n");
}

static void info_keyspace(struct node *node, struct buf *out) {
    buf_appendf(out, "# Keyspace\r\n");
    if (db_count(node->db) > 0) {
        buf_appendf(out, "db0:keys=%zu,expires=%zu,avg_ttl=0\r\n", db_count(node->db),
                    db_expires_count(node->db));
    }
    buf_appendf(out, "\r\n");
}

typedef void info_section_fn(struct node *node, struct buf *out);

static const struct {
    const char *name;
    info_section_fn *fn;
} info_sections[] = {
    {"server", info_server},           {"clients", info_clients}, {"memory", info_memory},
    {"persistence", info_persistence}, {"stats", info_stats},     {"replication", info_replication},
    {"cpu", info_cpu},                 {"keyspace", info_keyspace},
};

static bool info_wanted(uint32_t argc, const struct resp_arg *argv, const char *section) {
    if (argc == 1) return true;
    for (uint32_t i = 1; i < argc; i++) {
        if (cmd_arg_is(&argv[i], section) || cmd_arg_is(&argv[i], "all") ||
            cmd_arg_is(&argv[i], "default") || cmd_arg_is(&argv[i], "everything")) {
            return true;
        }
    }
    return false;
}

void info_reply(struct node *node, struct client *c, uint32_t argc, const struct resp_arg *argv) {
    struct buf text;
    buf_init(&text);
    for (size_t i = 0; i < sizeof(info_sections) / sizeof(info_sections[0]); i++) {
        if (info_wanted(argc, argv, info_sections[i].name)) info_sections[i].fn(node, &text);
    }
    /* Redis ends the text without the last section's blank line. */
    if (text.len >= 2) text.len -= 2;
    resp_put_verbatim(&c->out, c->proto, (const char *)text.data, text.len);
    buf_deinit(&text);
}

void info_client_line(struct node *node, struct client *c, struct buf *out) {
    buf_appendf(out, "id=%llu addr=%s laddr=%s fd=-1 name=%s age=%llu idle=%llu flags=%s db=0 "
                "sub=0 psub=0 ssub=0 multi=%d watch=%u qbuf=%zu qbuf-free=0 obl=0 oll=0 "
                "omem=%zu tot-mem=0 events=r cmd=%s user=default redir=-1 resp=%d lib-name=%s "
                "lib-ver=%s\n",
                (unsigned long long)c->id, c->addr, node->listen, c->name,
                (unsigned long long)((node->now_ms - c->created_ms) / 1000),
                (unsigned long long)((node->now_ms - c->last_active_ms) / 1000),
                c->in_multi ? "x" : "N", c->in_multi ? (int)c->multi_count : -1, c->watch_count,
                buf_pending(&c->query), buf_pending(&c->out),
                c->last_cmd[0] ? c->last_cmd : "NULL", c->proto, c->lib_name, c->lib_ver);
}
