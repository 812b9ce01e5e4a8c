/*
 * INFO, COMMAND (COUNT, LIST, INFO, DOCS) and CONFIG GET: what clients and operators read
 * about the node. Field names follow Redis where Redis has the field, so tools that parse
 * INFO (ioredis's ready check reads "loading:") work unchanged.
 */
#include <stdio.h>
#include <string.h>

#include "base/assert.h"
#include "base/util.h"
#include "core/internal.h"

#define INFO_VERSION "0.1.0"
#define INFO_REDIS_VERSION "7.2.0"

static const char *info_fsync_name(enum node_fsync fsync) {
    switch (fsync) {
    case NODE_FSYNC_ALWAYS:
        return "always";
    case NODE_FSYNC_EVERYSEC:
        return "everysec";
    case NODE_FSYNC_NEVER:
        return "no";
    }
    UNREACHABLE();
}

static void info_server(struct node *node, struct buf *out) {
    buf_appendf(out,
                "# Server\r\nredis_version:%s\r\ncapkv_version:%s\r\nredis_mode:standalone\r\n"
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

static size_t info_engine_memory(const struct node *node) {
    uint64_t bytes = 0;
    for (uint32_t i = 0; i < node->engine_count; i++)
        bytes += node->engines[i].ops->memory_bytes(node->engines[i].engine);
    return (size_t)bytes;
}

static void info_memory(struct node *node, struct buf *out) {
    struct node_host_stats host = {0};
    if (node->config.host_stats != NULL) node->config.host_stats(node->config.host_ctx, &host);
    buf_appendf(out,
                "# Memory\r\nused_memory:%zu\r\nused_memory_rss:%llu\r\nmaxmemory:0\r\n"
                "maxmemory_policy:noeviction\r\n\r\n",
                info_engine_memory(node), (unsigned long long)host.rss_bytes);
}

static void info_persistence(struct node *node, struct buf *out) {
    buf_appendf(out, "# Persistence\r\n");
    node_engine_info(node, "persistence", out);
    buf_appendf(out, "\r\n");
}

static void info_stats(struct node *node, struct buf *out) {
    struct node_host_stats host = {0};
    if (node->config.host_stats != NULL) node->config.host_stats(node->config.host_ctx, &host);
    buf_appendf(out,
                "# Stats\r\ntotal_connections_received:%llu\r\n"
                "total_commands_processed:%llu\r\nrejected_connections:%llu\r\n"
                "protocol_errors:%llu\r\nclient_output_limit_closes:%llu\r\n"
                "pipelines:%llu\r\npipelined_commands:%llu\r\n"
                "loop_slow_steps:%llu\r\nloop_slowest_step_ms:%llu\r\n",
                (unsigned long long)node->stats.connections,
                (unsigned long long)node->stats.commands,
                (unsigned long long)node->stats.rejected_connections,
                (unsigned long long)node->stats.protocol_errors,
                (unsigned long long)node->stats.output_limit_closes,
                (unsigned long long)node->stats.pipelines,
                (unsigned long long)node->stats.pipelined_commands,
                (unsigned long long)host.slow_steps, (unsigned long long)host.slowest_step_ms);
    node_engine_info(node, "stats", out); /* expired_keys */
    buf_appendf(out, "\r\n");
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
    buf_appendf(out, "# Replication\r\n");
    node_engine_info(node, "replication", out);
    if (node->config.peer_count > 0) {
        struct node_host_stats host = {0};
        if (node->config.host_stats != NULL) node->config.host_stats(node->config.host_ctx, &host);
        buf_appendf(out,
                    "peer_sent:%llu\r\npeer_received:%llu\r\npeer_dropped_link_down:%llu\r\n"
                    "peer_dropped_queue_full:%llu\r\npeer_dropped_too_big:%llu\r\n"
                    "peer_links_closed_bad_frames:%llu\r\n",
                    (unsigned long long)host.peer_sent, (unsigned long long)host.peer_received,
                    (unsigned long long)host.peer_dropped_down,
                    (unsigned long long)host.peer_dropped_full,
                    (unsigned long long)host.peer_dropped_too_big,
                    (unsigned long long)host.peer_links_closed_bad);
    }
    const struct node_fault *f = &node->fault;
    buf_appendf(out,
                "faults_enabled:%d\r\nfault_partitioned:%d\r\nfault_clock_ms:%lld\r\n"
                "fault_paused:%d\r\n\r\n",
                node->config.enable_faults ? 1 : 0, f->partitioned ? 1 : 0, (long long)f->clock_ms,
                fault_paused(node) ? 1 : 0);
}

static void info_keyspace(struct node *node, struct buf *out) {
    buf_appendf(out, "# Keyspace\r\n");
    node_engine_info(node, "keyspace", out);
    buf_appendf(out, "\r\n");
}

typedef void info_section_fn(struct node *node, struct buf *out);

static const struct {
    const char *name;
    info_section_fn *fn;
} info_sections[] = {
    {"server", info_server}, {"clients", info_clients},
    {"memory", info_memory}, {"persistence", info_persistence},
    {"stats", info_stats},   {"replication", info_replication},
    {"cpu", info_cpu},       {"keyspace", info_keyspace},
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

/* CLUSTER INFO: the replication section, every engine's and the node's faults. */
void info_cluster(struct node *node, struct client *c) {
    struct buf text;
    buf_init(&text);
    info_replication(node, &text);
    if (text.len >= 2) text.len -= 2;
    resp_put_verbatim(&c->out, c->proto, (const char *)text.data, text.len);
    buf_deinit(&text);
}

void info_client_line(struct node *node, struct client *c, struct buf *out) {
    buf_appendf(out,
                "id=%llu addr=%s laddr=%s fd=-1 name=%s age=%llu idle=%llu flags=%s db=0 "
                "sub=0 psub=0 ssub=0 multi=%d watch=%u qbuf=%zu qbuf-free=0 obl=0 oll=0 "
                "omem=%zu tot-mem=0 events=r cmd=%s user=default redir=-1 resp=%d lib-name=%s "
                "lib-ver=%s\n",
                (unsigned long long)c->id, c->addr, node->listen, c->name,
                (unsigned long long)((node->now_ms - c->created_ms) / 1000),
                (unsigned long long)((node->now_ms - c->last_active_ms) / 1000),
                c->in_multi ? "x" : "N", c->in_multi ? (int)c->multi_count : -1, c->watch_count,
                buf_pending(&c->query), buf_pending(&c->out),
                c->last_cmd != NULL ? c->last_cmd : "NULL", c->proto, c->lib_name, c->lib_ver);
}

static void info_command_flags(struct buf *out, int proto, uint32_t flags) {
    static const struct {
        uint32_t flag;
        const char *name;
    } names[] = {{CMD_WRITE, "write"}, {CMD_READONLY, "readonly"}, {CMD_FAST, "fast"},
                 {CMD_ADMIN, "admin"}, {CMD_NOAUTH, "no_auth"},    {CMD_NOMULTI, "no_multi"}};
    size_t count = 0;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (flags & names[i].flag) count++;
    }
    resp_put_set(out, proto, count);
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (flags & names[i].flag) resp_put_simple(out, names[i].name);
    }
}

/* One COMMAND INFO entry, in Redis 7's ten-element form. */
static void info_command_entry(struct buf *out, int proto, const struct cmd_spec *spec) {
    resp_put_array(out, 10);
    resp_put_bulk_str(out, spec->name);
    resp_put_int(out, spec->arity);
    info_command_flags(out, proto, spec->flags);
    resp_put_int(out, spec->key_first);
    resp_put_int(out, spec->key_last);
    resp_put_int(out, spec->key_step);
    resp_put_set(out, proto, 1);
    char category[40];
    snprintf(category, sizeof(category), "@%s", spec->group);
    resp_put_simple(out, category);
    resp_put_set(out, proto, 0);
    resp_put_array(out, 0);
    resp_put_array(out, 0);
}

static void info_command_doc(struct buf *out, int proto, const struct cmd_spec *spec) {
    resp_put_bulk_str(out, spec->name);
    resp_put_map(out, proto, 3);
    resp_put_bulk_str(out, "summary");
    resp_put_bulk_str(out, spec->summary);
    resp_put_bulk_str(out, "since");
    resp_put_bulk_str(out, spec->since);
    resp_put_bulk_str(out, "group");
    resp_put_bulk_str(out, spec->group);
}

/* COMMAND DOCS [name ...]: unknown names are left out, as Redis does. */
static void info_command_docs(struct client *c, uint32_t argc, const struct resp_arg *argv) {
    size_t count;
    const struct cmd_spec *table = cmd_table(&count);
    if (argc == 2) {
        resp_put_map(&c->out, c->proto, count);
        for (size_t i = 0; i < count; i++) info_command_doc(&c->out, c->proto, &table[i]);
        return;
    }
    size_t found = 0;
    for (uint32_t i = 2; i < argc; i++) {
        if (cmd_lookup(argv[i].data, argv[i].bytes) != NULL) found++;
    }
    resp_put_map(&c->out, c->proto, found);
    for (uint32_t i = 2; i < argc; i++) {
        const struct cmd_spec *spec = cmd_lookup(argv[i].data, argv[i].bytes);
        if (spec != NULL) info_command_doc(&c->out, c->proto, spec);
    }
}

enum info_command_sub { INFO_CMD_COUNT, INFO_CMD_LIST, INFO_CMD_INFO, INFO_CMD_DOCS };

static const struct cmd_sub info_command_subs[] = {
    [INFO_CMD_COUNT] = {"count", 2},
    [INFO_CMD_LIST] = {"list", -2},
    [INFO_CMD_INFO] = {"info", -2},
    [INFO_CMD_DOCS] = {"docs", -2},
};

static void info_command_info(struct client *c, uint32_t argc, const struct resp_arg *argv) {
    size_t count;
    const struct cmd_spec *table = cmd_table(&count);
    if (argc == 2) {
        resp_put_array(&c->out, count);
        for (size_t i = 0; i < count; i++) info_command_entry(&c->out, c->proto, &table[i]);
        return;
    }
    resp_put_array(&c->out, argc - 2);
    for (uint32_t i = 2; i < argc; i++) {
        const struct cmd_spec *spec = cmd_lookup(argv[i].data, argv[i].bytes);
        if (spec == NULL)
            resp_put_null(&c->out, c->proto);
        else
            info_command_entry(&c->out, c->proto, spec);
    }
}

void info_command(struct node *node, struct client *c, uint32_t argc, const struct resp_arg *argv) {
    (void)node;
    size_t count;
    const struct cmd_spec *table = cmd_table(&count);
    if (argc == 1) {
        resp_put_array(&c->out, count);
        for (size_t i = 0; i < count; i++) info_command_entry(&c->out, c->proto, &table[i]);
        return;
    }
    int sub = cmd_subcommand(&c->out, "command", info_command_subs,
                             sizeof(info_command_subs) / sizeof(info_command_subs[0]), argc, argv);
    switch (sub) {
    case -1:
        return;
    case INFO_CMD_COUNT:
        resp_put_int(&c->out, (int64_t)count);
        return;
    case INFO_CMD_LIST:
        resp_put_array(&c->out, count);
        for (size_t i = 0; i < count; i++) resp_put_bulk_str(&c->out, table[i].name);
        return;
    case INFO_CMD_INFO:
        info_command_info(c, argc, argv);
        return;
    case INFO_CMD_DOCS:
        info_command_docs(c, argc, argv);
        return;
    default:
        UNREACHABLE();
    }
}

/* Fills params with "name\0value\0" pairs of the readable settings. */
static void info_config_params(struct node *node, struct buf *params) {
    const char *port = strrchr(node->listen, ':');
    char numbers[4][UTIL_I64_DIGITS_MAX];
    util_format_i64((int64_t)node->config.clients_max, numbers[0]);
    util_format_i64((int64_t)node->config.limits.bulk_bytes_max, numbers[1]);
    util_format_i64((int64_t)node->config.query_bytes_max, numbers[2]);
    util_format_i64((int64_t)node->config.output_bytes_max, numbers[3]);
    const char *pairs[][2] = {
        {"appendonly", "yes"},
        {"appendfsync", info_fsync_name(node->config.fsync)},
        {"save", ""},
        {"databases", "1"},
        {"maxmemory", "0"},
        {"maxmemory-policy", "noeviction"},
        {"timeout", "0"},
        {"port", port != NULL ? port + 1 : ""},
        {"bind", node->listen},
        {"dir", node->dir},
        {"requirepass", node->requirepass},
        {"maxclients", numbers[0]},
        {"proto-max-bulk-len", numbers[1]},
        {"client-query-buffer-limit", numbers[2]},
        {"output-buffer-limit", numbers[3]},
    };
    for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
        buf_append(params, pairs[i][0], strlen(pairs[i][0]) + 1);
        buf_append(params, pairs[i][1], strlen(pairs[i][1]) + 1);
    }
}

static void info_config_get(struct node *node, struct client *c, uint32_t argc,
                            const struct resp_arg *argv) {
    struct buf params;
    struct buf matched; /* const char * pairs */
    buf_init(&params);
    buf_init(&matched);
    info_config_params(node, &params);
    size_t pairs = 0;
    for (size_t pos = 0; pos < params.len;) {
        const char *name = (const char *)params.data + pos;
        const char *value = name + strlen(name) + 1;
        pos = (size_t)(value - (const char *)params.data) + strlen(value) + 1;
        for (uint32_t i = 2; i < argc; i++) {
            if (!util_glob_match(argv[i].data, argv[i].bytes, (const uint8_t *)name,
                                 strlen(name))) {
                continue;
            }
            buf_append(&matched, &name, sizeof(name));
            buf_append(&matched, &value, sizeof(value));
            pairs++;
            break;
        }
    }
    resp_put_map(&c->out, c->proto, pairs);
    const char **strings = (const char **)matched.data;
    for (size_t i = 0; i < pairs * 2; i++) resp_put_bulk_str(&c->out, strings[i]);
    buf_deinit(&matched);
    buf_deinit(&params);
}

enum info_config_sub {
    INFO_CONFIG_GET,
    INFO_CONFIG_SET,
    INFO_CONFIG_RESETSTAT,
    INFO_CONFIG_REWRITE
};

static const struct cmd_sub info_config_subs[] = {
    [INFO_CONFIG_GET] = {"get", -3},
    [INFO_CONFIG_SET] = {"set", -4},
    [INFO_CONFIG_RESETSTAT] = {"resetstat", 2},
    [INFO_CONFIG_REWRITE] = {"rewrite", 2},
};

void info_config(struct node *node, struct client *c, uint32_t argc, const struct resp_arg *argv) {
    int sub = cmd_subcommand(&c->out, "config", info_config_subs,
                             sizeof(info_config_subs) / sizeof(info_config_subs[0]), argc, argv);
    switch (sub) {
    case -1:
        return;
    case INFO_CONFIG_GET:
        info_config_get(node, c, argc, argv);
        return;
    case INFO_CONFIG_RESETSTAT:
        memset(&node->stats, 0, sizeof(node->stats));
        resp_put_simple(&c->out, "OK");
        return;
    case INFO_CONFIG_SET:
    case INFO_CONFIG_REWRITE:
        resp_put_error(&c->out, "ERR CONFIG SET and REWRITE are not supported: settings come "
                                "from the config file and flags; change them there and restart "
                                "the node");
        return;
    default:
        UNREACHABLE();
    }
}
