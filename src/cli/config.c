/* The settings table and its three readers: defaults, INI file (libinih), flags. */
#include "cli/config.h"

#include <ini.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"

enum config_type { CONFIG_TEXT, CONFIG_UINT, CONFIG_BYTES, CONFIG_FSYNC, CONFIG_BOOL };

struct config_entry {
    const char *name;
    enum config_type type;
    size_t offset;
    const char *fallback;
    unsigned long long min;
    unsigned long long max;
    const char *help;
};

#define CONFIG_FIELD(f) offsetof(struct config_values, f)
#define GiB (1024ull * 1024 * 1024)
#define MiB (1024ull * 1024)

static const struct config_entry config_table[] = {
    {"id", CONFIG_UINT, CONFIG_FIELD(id), "1", 1, 1000000, "this node's id in the cluster"},
    {"listen", CONFIG_TEXT, CONFIG_FIELD(listen), "127.0.0.1:7001", 0, 0,
     "client address HOST:PORT (RESP, for redis-cli and Redis clients)"},
    {"dir", CONFIG_TEXT, CONFIG_FIELD(dir), "./capkv-data", 0, 0,
     "data directory (write-ahead log and snapshots)"},
    {"fsync", CONFIG_FSYNC, CONFIG_FIELD(fsync), "always", 0, 0,
     "always (reply after fsync, group commit) | everysec | never"},
    {"fsync-thread", CONFIG_BOOL, CONFIG_FIELD(fsync_thread), "no", 0, 0,
     "yes: run log syncs on a worker thread (more cores); no: inline, as Redis"},
    {"requirepass", CONFIG_TEXT, CONFIG_FIELD(requirepass), "", 0, 0,
     "password clients must send with AUTH or HELLO (empty: none)"},
    {"maxclients", CONFIG_UINT, CONFIG_FIELD(maxclients), "10000", 1, 1000000,
     "most client connections at once"},
    {"proto-max-bulk-len", CONFIG_BYTES, CONFIG_FIELD(proto_max_bulk_len), "536870912", 1024, GiB,
     "longest string argument, bytes"},
    {"output-buffer-limit", CONFIG_BYTES, CONFIG_FIELD(output_buffer_limit), "268435456", 64 * 1024,
     64 * GiB, "a client whose unread replies exceed this many bytes is closed"},
    {"query-buffer-limit", CONFIG_BYTES, CONFIG_FIELD(query_buffer_limit), "1073741824",
     1024 * 1024, 64 * GiB, "most unparsed input bytes kept for one client"},
    {"snapshot-log-bytes", CONFIG_BYTES, CONFIG_FIELD(snapshot_log_bytes), "268435456", 1024,
     1024 * GiB, "take a snapshot once the log grew by this many bytes"},
    {"wal-segment-bytes", CONFIG_BYTES, CONFIG_FIELD(wal_segment_bytes), "67108864", 64 * 1024,
     16 * GiB, "size of each preallocated log segment"},
    {"log-file", CONFIG_TEXT, CONFIG_FIELD(log_file), "", 0, 0,
     "append the node's log lines here (empty: standard error)"},
};

#define CONFIG_COUNT (sizeof(config_table) / sizeof(config_table[0]))

static const struct config_entry *config_find(const char *name) {
    for (size_t i = 0; i < CONFIG_COUNT; i++) {
        if (strcmp(config_table[i].name, name) == 0) return &config_table[i];
    }
    return NULL;
}

/* Parses "123", "64mb", "1gb", "512k" into bytes. */
static bool config_parse_bytes(const char *text, unsigned long long *out) {
    char *end;
    if (text[0] < '0' || text[0] > '9') return false;
    unsigned long long v = strtoull(text, &end, 10);
    unsigned long long mult = 1;
    if (strcasecmp(end, "k") == 0 || strcasecmp(end, "kb") == 0)
        mult = 1024;
    else if (strcasecmp(end, "m") == 0 || strcasecmp(end, "mb") == 0)
        mult = MiB;
    else if (strcasecmp(end, "g") == 0 || strcasecmp(end, "gb") == 0)
        mult = GiB;
    else if (*end != '\0')
        return false;
    if (v > ~0ull / mult) return false;
    *out = v * mult;
    return true;
}

static int config_set(struct config_values *v, const char *name, const char *value,
                      struct errmsg *msg) {
    const struct config_entry *e = config_find(name);
    if (e == NULL) return errmsg_set(msg, ERR_CONFIG, "unknown setting '%s' (see --help)", name);
    char *field = (char *)v + e->offset;
    if (e->type == CONFIG_BOOL && strcmp(value, "yes") != 0 && strcmp(value, "no") != 0) {
        return errmsg_set(msg, ERR_CONFIG, "%s must be yes or no, not '%s'", name, value);
    }
    if (e->type == CONFIG_TEXT || e->type == CONFIG_FSYNC || e->type == CONFIG_BOOL) {
        size_t cap = e->type == CONFIG_TEXT ? CONFIG_TEXT_BYTES_MAX : 16;
        if (strlen(value) >= cap) return errmsg_set(msg, ERR_CONFIG, "%s is too long", name);
        bool fsync_ok = strcmp(value, "always") == 0 || strcmp(value, "everysec") == 0 ||
                        strcmp(value, "never") == 0 || strcmp(value, "no") == 0;
        if (e->type == CONFIG_FSYNC && !fsync_ok) {
            return errmsg_set(msg, ERR_CONFIG, "fsync must be always, everysec or never, not '%s'",
                              value);
        }
        snprintf(field, cap, "%s", value);
        return 0;
    }
    unsigned long long n;
    bool ok =
        e->type == CONFIG_BYTES ? config_parse_bytes(value, &n) : config_parse_bytes(value, &n);
    if (!ok || n < e->min || n > e->max) {
        return errmsg_set(msg, ERR_CONFIG, "%s must be a number from %llu to %llu, not '%s'", name,
                          e->min, e->max, value);
    }
    memcpy(field, &n, sizeof(n));
    return 0;
}

void config_defaults(struct config_values *v) {
    memset(v, 0, sizeof(*v));
    for (size_t i = 0; i < CONFIG_COUNT; i++) {
        int rc = config_set(v, config_table[i].name, config_table[i].fallback, NULL);
        ASSERT(rc == 0);
    }
}

struct config_ini_ctx {
    struct config_values *values;
    struct errmsg *msg;
    int rc;
};

static int config_ini_entry(void *user, const char *section, const char *name, const char *value) {
    struct config_ini_ctx *ctx = user;
    if (ctx->rc != 0) return 0;
    if (strcmp(section, "node") != 0) {
        ctx->rc = errmsg_set(ctx->msg, ERR_CONFIG,
                             "section [%s] is not supported yet: only "
                             "[node] (clusters and keyspaces come with Raft)",
                             section);
        return 0;
    }
    ctx->rc = config_set(ctx->values, name, value, ctx->msg);
    return ctx->rc == 0;
}

int config_load_file(struct config_values *v, const char *path, struct errmsg *msg) {
    struct config_ini_ctx ctx = {.values = v, .msg = msg, .rc = 0};
    int line = ini_parse(path, config_ini_entry, &ctx);
    if (line < 0) return errmsg_set(msg, ERR_CONFIG, "cannot read config file %s", path);
    if (ctx.rc != 0) {
        char detail[ERRMSG_BYTES_MAX];
        snprintf(detail, sizeof(detail), "%s", msg->text);
        return errmsg_set(msg, ctx.rc, "%s line %d: %s", path, line, detail);
    }
    if (line > 0) return errmsg_set(msg, ERR_CONFIG, "%s line %d: not INI syntax", path, line);
    return 0;
}

/* Splits "--name=value" or "--name value"; advances *i past what it used. */
static int config_next_flag(int argc, char **argv, int *i, char *name, size_t cap,
                            const char **value, struct errmsg *msg) {
    const char *arg = argv[*i];
    if (strncmp(arg, "--", 2) != 0) {
        return errmsg_set(msg, ERR_CONFIG, "unexpected argument '%s' (flags are --name value)",
                          arg);
    }
    const char *eq = strchr(arg, '=');
    size_t n = eq != NULL ? (size_t)(eq - arg - 2) : strlen(arg + 2);
    if (n >= cap) return errmsg_set(msg, ERR_CONFIG, "flag '%s' is too long", arg);
    memcpy(name, arg + 2, n);
    name[n] = '\0';
    if (eq != NULL) {
        *value = eq + 1;
    } else if (*i + 1 < argc) {
        *value = argv[++*i];
    } else {
        return errmsg_set(msg, ERR_CONFIG, "flag --%s needs a value", name);
    }
    (*i)++;
    return 0;
}

int config_parse_args(struct config_values *v, int argc, char **argv, struct errmsg *msg) {
    for (int i = 0; i + 1 < argc; i++) {
        if (strcmp(argv[i], "--config") == 0) {
            int rc = config_load_file(v, argv[i + 1], msg);
            if (rc != 0) return rc;
        }
    }
    for (int i = 0; i < argc;) {
        char name[64];
        const char *value = NULL;
        int rc = config_next_flag(argc, argv, &i, name, sizeof(name), &value, msg);
        if (rc != 0) return rc;
        if (strcmp(name, "config") == 0) continue;
        rc = config_set(v, name, value, msg);
        if (rc != 0) return rc;
    }
    return 0;
}

int config_to_options(const struct config_values *v, struct server_options *o, struct errmsg *msg) {
    (void)msg;
    memset(o, 0, sizeof(*o));
    node_config_default(&o->node);
    o->node.id = (uint32_t)v->id;
    o->node.fsync = strcmp(v->fsync, "always") == 0     ? NODE_FSYNC_ALWAYS
                    : strcmp(v->fsync, "everysec") == 0 ? NODE_FSYNC_EVERYSEC
                                                        : NODE_FSYNC_NEVER;
    o->node.requirepass = v->requirepass;
    o->node.clients_max = (uint32_t)v->maxclients;
    o->node.limits.bulk_bytes_max = v->proto_max_bulk_len;
    o->node.output_bytes_max = v->output_buffer_limit;
    o->node.query_bytes_max = v->query_buffer_limit;
    o->node.snapshot_log_bytes = v->snapshot_log_bytes;
    o->node.wal_segment_bytes = v->wal_segment_bytes;
    o->listen = v->listen;
    o->dir = v->dir;
    o->log_path = v->log_file[0] != '\0' ? v->log_file : NULL;
    o->sync_in_thread = strcmp(v->fsync_thread, "yes") == 0;
    return 0;
}

void config_print_help(const char *program) {
    printf("usage: %s server [--config FILE] [--NAME VALUE ...]\n\n"
           "Settings (flags, or NAME = VALUE under [node] in the INI file):\n",
           program);
    for (size_t i = 0; i < CONFIG_COUNT; i++) {
        const struct config_entry *e = &config_table[i];
        printf("  --%-22s %s (default: %s)\n", e->name, e->help,
               e->fallback[0] != '\0' ? e->fallback : "empty");
    }
}
