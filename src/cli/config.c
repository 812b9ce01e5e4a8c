/*
 * The settings table and its three readers: defaults, INI file (libinih), flags. The INI
 * file also defines keyspaces ([keyspace NAME]), which have no flags. Every error from a
 * file names the file and the line.
 */
#include "cli/config.h"

#include <ini.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "net/peer.h"

/* CONFIG_SWITCH is a yes/no setting whose flag takes no value (--enable-faults);
 * CONFIG_AUTO is yes, no or auto. */
enum config_type {
    CONFIG_TEXT,
    CONFIG_UINT,
    CONFIG_BYTES,
    CONFIG_FSYNC,
    CONFIG_BOOL,
    CONFIG_SWITCH,
    CONFIG_AUTO
};

struct config_entry {
    const char *name;
    enum config_type type;
    size_t offset;
    const char *fallback;
    unsigned long long min;
    unsigned long long max;
    const char *help;
    bool in_cluster; /* may also appear in the INI file's [cluster] section */
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
    {"fsync-thread", CONFIG_AUTO, CONFIG_FIELD(fsync_thread), "auto", 0, 0,
     "yes: log syncs on a worker thread, the loop goes on meanwhile; no: inline, as Redis; "
     "auto: yes in a cluster (faster commits) except an idle follower's log, no alone"},
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
    {"peer-listen", CONFIG_TEXT, CONFIG_FIELD(peer_listen), "", 0, 0,
     "peer-protocol address HOST:PORT (empty: this node's address in peers)"},
    {"peers", CONFIG_TEXT, CONFIG_FIELD(peers), "", 0, 0,
     "every voter, this node included: 1@127.0.0.1:8001,2@127.0.0.1:8002,... (empty: alone)", true},
    {"election-timeout-min", CONFIG_UINT, CONFIG_FIELD(election_timeout_min), "200", 10, 600000,
     "ms without a leader before a follower stands for election (lower bound)", true},
    {"election-timeout-max", CONFIG_UINT, CONFIG_FIELD(election_timeout_max), "400", 20, 1200000,
     "upper bound of the randomized election timeout, ms", true},
    {"heartbeat", CONFIG_UINT, CONFIG_FIELD(heartbeat), "40", 1, 60000,
     "ms between a leader's heartbeats (well under election-timeout-min)", true},
    {"request-timeout", CONFIG_UINT, CONFIG_FIELD(request_timeout), "1000", 10, 3600000,
     "ms before an uncommitted write answers -TIMEOUT (its outcome is then unknown)", true},
    {"session-wait", CONFIG_UINT, CONFIG_FIELD(session_wait), "1000", 1, 3600000,
     "ms a read on a connection that ran SESSION RESUME waits for this node to catch up to "
     "the token before it answers -TIMEOUT",
     true},
    {"ap-tombstone-age", CONFIG_UINT, CONFIG_FIELD(ap_tombstone_age), "10800000", 1000,
     31536000000ull,
     "ms after which an AP key's delete (or expiry) is collected, once every replica holds "
     "it; hints older than this are dropped; a node away longer must rejoin with a new "
     "data directory",
     true},
    {"cluster-id", CONFIG_UINT, CONFIG_FIELD(cluster_id), "0", 0, 4294967295ull,
     "the id session tokens carry, the same on every node (0: derived from peers; set it "
     "when nodes join later with other peers lists)",
     true},
    {"enable-faults", CONFIG_SWITCH, CONFIG_FIELD(enable_faults), "no", 0, 0,
     "accept FAULT commands (partition, drop, delay, clock skew, pause): tests only", true},
    {"join", CONFIG_SWITCH, CONFIG_FIELD(join), "no", 0, 0,
     "join a running cluster: wait, not voting, until its leader runs CLUSTER ADD for this "
     "node (peers: the members to reach, this node included)",
     true},
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
    bool is_bool = e->type == CONFIG_BOOL || e->type == CONFIG_SWITCH || e->type == CONFIG_AUTO;
    bool auto_ok = e->type == CONFIG_AUTO && strcmp(value, "auto") == 0;
    if (is_bool && !auto_ok && strcmp(value, "yes") != 0 && strcmp(value, "no") != 0) {
        return errmsg_set(msg, ERR_CONFIG, "%s must be yes or no%s, not '%s'", name,
                          e->type == CONFIG_AUTO ? " or auto" : "", value);
    }
    if (e->type == CONFIG_TEXT || e->type == CONFIG_FSYNC || is_bool) {
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

/* The keyspace named name, added (in file order) if new. */
static int config_keyspace(struct config_values *v, const char *name, struct keyspace **out,
                           struct errmsg *msg) {
    for (uint32_t i = 0; i < v->keyspace_count; i++) {
        if (strcmp(v->keyspaces[i].name, name) == 0) {
            *out = &v->keyspaces[i];
            return 0;
        }
    }
    if (name[0] == '\0' || strlen(name) >= KEYSPACE_TEXT_BYTES_MAX) {
        return errmsg_set(msg, ERR_CONFIG, "keyspace name must be 1 to %d bytes",
                          KEYSPACE_TEXT_BYTES_MAX - 1);
    }
    if (v->keyspace_count == KEYSPACES_MAX) {
        return errmsg_set(msg, ERR_CONFIG, "more than %d keyspaces", KEYSPACES_MAX);
    }
    struct keyspace *k = &v->keyspaces[v->keyspace_count++];
    memset(k, 0, sizeof(*k));
    snprintf(k->name, sizeof(k->name), "%s", name);
    *out = k;
    return 0;
}

/* "pay:*, acct:*" -> the keyspace's globs (spaces around commas ignored). */
static int config_keyspace_match(struct keyspace *k, const char *value, struct errmsg *msg) {
    k->match_count = 0;
    const char *p = value;
    for (;;) {
        while (*p == ' ' || *p == '\t') p++;
        size_t n = strcspn(p, ",");
        size_t len = n;
        while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t')) len--;
        if (len == 0)
            return errmsg_set(msg, ERR_CONFIG, "keyspace %s: empty glob in match", k->name);
        if (len >= KEYSPACE_TEXT_BYTES_MAX) {
            return errmsg_set(msg, ERR_CONFIG, "keyspace %s: glob longer than %d bytes", k->name,
                              KEYSPACE_TEXT_BYTES_MAX - 1);
        }
        if (k->match_count == KEYSPACE_MATCHES_MAX) {
            return errmsg_set(msg, ERR_CONFIG, "keyspace %s: more than %d globs in match", k->name,
                              KEYSPACE_MATCHES_MAX);
        }
        memcpy(k->match[k->match_count], p, len);
        k->match[k->match_count][len] = '\0';
        k->match_count++;
        if (p[n] == '\0') return 0;
        p += n + 1;
    }
}

/* The index of value in words (count of them), or -1. */
static int config_word(const char *value, const char *const *words, int count) {
    for (int i = 0; i < count; i++)
        if (strcmp(value, words[i]) == 0) return i;
    return -1;
}

/* An AP keyspace's settings (checked against its mode once the file is read). Returns 0,
 * an error, or 1 when name is none of them. */
static int config_keyspace_set_ap(struct keyspace *k, const char *name, const char *value,
                                  struct errmsg *msg) {
    static const char *const conflicts[] = {"lww", "lww-wallclock", "siblings", "crdt"};
    static const char *const quorums[] = {"one", "quorum", "all"};
    static const char *const counters[] = {"pncounter", "gcounter"};
    static const char *const handoffs[] = {"on", "off"};
    int i;
    if (strcmp(name, "conflict") == 0) {
        if ((i = config_word(value, conflicts, 4)) < 0)
            return errmsg_set(msg, ERR_CONFIG,
                              "keyspace %s: conflict must be lww, lww-wallclock, siblings or "
                              "crdt, not '%s'",
                              k->name, value);
        k->conflict = (enum keyspace_conflict)(i + 1);
    } else if (strcmp(name, "r") == 0 || strcmp(name, "w") == 0) {
        if ((i = config_word(value, quorums, 3)) < 0)
            return errmsg_set(msg, ERR_CONFIG,
                              "keyspace %s: %s must be one, quorum or all, not '%s'", k->name, name,
                              value);
        if (name[0] == 'r')
            k->r = (enum keyspace_quorum)(i + 1);
        else
            k->w = (enum keyspace_quorum)(i + 1);
    } else if (strcmp(name, "n") == 0) {
        char *end;
        unsigned long n = strtoul(value, &end, 10);
        if (*value == '\0' || *end != '\0' || n < 1 || n > KEYSPACE_N_MAX)
            return errmsg_set(msg, ERR_CONFIG, "keyspace %s: n must be 1 to %d replicas, not '%s'",
                              k->name, KEYSPACE_N_MAX, value);
        k->n = (uint32_t)n;
    } else if (strcmp(name, "type") == 0) {
        if ((i = config_word(value, counters, 2)) < 0)
            return errmsg_set(msg, ERR_CONFIG,
                              "keyspace %s: type must be pncounter or gcounter, not '%s'", k->name,
                              value);
        k->counter = (enum keyspace_counter)(i + 1);
    } else if (strcmp(name, "hinted-handoff") == 0) {
        if ((i = config_word(value, handoffs, 2)) < 0)
            return errmsg_set(msg, ERR_CONFIG,
                              "keyspace %s: hinted-handoff must be on or off, "
                              "not '%s'",
                              k->name, value);
        k->handoff = (enum keyspace_handoff)(i + 1);
    } else {
        return 1;
    }
    return 0;
}

static bool config_keyspace_has_ap(const struct keyspace *k) {
    return k->conflict != 0 || k->n != 0 || k->r != 0 || k->w != 0 || k->counter != 0 ||
           k->handoff != 0;
}

static int config_keyspace_set(struct keyspace *k, const char *name, const char *value,
                               struct errmsg *msg) {
    if (strcmp(name, "match") == 0) return config_keyspace_match(k, value, msg);
    if (strcmp(name, "mode") == 0) {
        if (strcmp(value, "cp") == 0) {
            k->mode = KEYSPACE_MODE_CP;
            return 0;
        }
        if (strcmp(value, "ap") == 0) {
            k->mode = KEYSPACE_MODE_AP;
            return 0;
        }
        return errmsg_set(msg, ERR_CONFIG, "keyspace %s: mode must be cp or ap, not '%s'", k->name,
                          value);
    }
    if (strcmp(name, "replication") == 0) {
        k->replication = strcmp(value, "majority") == 0 ? KEYSPACE_REPLICATION_MAJORITY
                         : strcmp(value, "all") == 0    ? KEYSPACE_REPLICATION_ALL
                         : strcmp(value, "leader") == 0 ? KEYSPACE_REPLICATION_LEADER
                                                        : 0;
        if (k->replication != 0) return 0;
        return errmsg_set(msg, ERR_CONFIG,
                          "keyspace %s: replication must be majority, all or leader, not '%s'",
                          k->name, value);
    }
    if (strcmp(name, "consistency") == 0) {
        k->consistency = strcmp(value, "linearizable") == 0 ? KEYSPACE_CONSISTENCY_LINEARIZABLE
                         : strcmp(value, "lease") == 0      ? KEYSPACE_CONSISTENCY_LEASE
                         : strcmp(value, "stale") == 0      ? KEYSPACE_CONSISTENCY_STALE
                                                            : 0;
        if (k->consistency != 0) return 0;
        return errmsg_set(msg, ERR_CONFIG,
                          "keyspace %s: consistency must be linearizable, lease or stale, not '%s'",
                          k->name, value);
    }
    int rc = config_keyspace_set_ap(k, name, value, msg);
    if (rc != 1) return rc;
    return errmsg_set(msg, ERR_CONFIG,
                      "keyspace %s: unknown key '%s' (match, mode, replication, consistency; "
                      "for mode = ap: conflict, n, r, w, type, hinted-handoff)",
                      k->name, name);
}

static int config_ini_set(struct config_values *v, const char *section, const char *name,
                          const char *value, struct errmsg *msg) {
    if (strcmp(section, "node") == 0) return config_set(v, name, value, msg);
    if (strcmp(section, "cluster") == 0) {
        const struct config_entry *e = config_find(name);
        if (e != NULL && !e->in_cluster) {
            return errmsg_set(msg, ERR_CONFIG, "%s is a per-node setting: put it under [node]",
                              name);
        }
        return config_set(v, name, value, msg);
    }
    if (strncmp(section, "keyspace ", 9) == 0) {
        const char *ks = section + 9;
        while (*ks == ' ') ks++;
        struct keyspace *k = NULL;
        int rc = config_keyspace(v, ks, &k, msg);
        return rc != 0 ? rc : config_keyspace_set(k, name, value, msg);
    }
    return errmsg_set(msg, ERR_CONFIG,
                      "unknown section [%s] (expected [node], [cluster] or [keyspace NAME])",
                      section);
}

static int config_ini_entry(void *user, const char *section, const char *name, const char *value) {
    struct config_ini_ctx *ctx = user;
    if (ctx->rc != 0) return 0;
    ctx->rc = config_ini_set(ctx->values, section, name, value, ctx->msg);
    return ctx->rc == 0;
}

/* Defaults for what a keyspace left out; "default" matches everything unless told. */
static int config_keyspaces_finish(struct config_values *v, const char *path, struct errmsg *msg) {
    for (uint32_t i = 0; i < v->keyspace_count; i++) {
        struct keyspace *k = &v->keyspaces[i];
        if (k->match_count == 0 && strcmp(k->name, "default") == 0) {
            snprintf(k->match[0], sizeof(k->match[0]), "*");
            k->match_count = 1;
        }
        if (k->match_count == 0) {
            return errmsg_set(msg, ERR_CONFIG, "%s: [keyspace %s] has no match = GLOB,...", path,
                              k->name);
        }
        if (keyspace_mode_of(k) != KEYSPACE_MODE_AP && config_keyspace_has_ap(k)) {
            return errmsg_set(msg, ERR_CONFIG,
                              "%s: [keyspace %s]: conflict, n, r, w, type and hinted-handoff "
                              "apply to mode = ap keyspaces only",
                              path, k->name);
        }
        if (keyspace_mode_of(k) == KEYSPACE_MODE_AP && k->replication != 0) {
            return errmsg_set(msg, ERR_CONFIG,
                              "%s: [keyspace %s]: replication applies to mode = cp keyspaces; an "
                              "ap keyspace says how many replicas acknowledge with w = one, "
                              "quorum or all",
                              path, k->name);
        }
        if (k->counter == KEYSPACE_COUNTER_G &&
            keyspace_ap_of(k).conflict != KEYSPACE_CONFLICT_CRDT)
            return errmsg_set(msg, ERR_CONFIG,
                              "%s: [keyspace %s]: type = gcounter needs conflict = crdt", path,
                              k->name);
        if (k->replication == 0) k->replication = KEYSPACE_REPLICATION_MAJORITY;
        if (k->consistency == 0) k->consistency = KEYSPACE_CONSISTENCY_LINEARIZABLE;
    }
    return 0;
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
    return config_keyspaces_finish(v, path, msg);
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
    const struct config_entry *e = config_find(name);
    if (eq == NULL && e != NULL && e->type == CONFIG_SWITCH) {
        *value = "yes";
    } else if (eq != NULL) {
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

/* One "ID@HOST:PORT" item of the peers list. */
static int config_parse_peer(const char *item, size_t len, struct node_peer *out,
                             struct errmsg *msg) {
    const char *at = memchr(item, '@', len);
    if (at == NULL) {
        return errmsg_set(msg, ERR_CONFIG, "peers: '%.*s' is not ID@HOST:PORT", (int)len, item);
    }
    unsigned long long id = 0;
    for (const char *p = item; p < at; p++) {
        if (*p < '0' || *p > '9' || id > 1000000) id = ~0ull;
        if (id != ~0ull) id = id * 10 + (unsigned long long)(*p - '0');
    }
    if (at == item || id < 1 || id > 1000000) {
        return errmsg_set(msg, ERR_CONFIG, "peers: id in '%.*s' must be 1..1000000", (int)len,
                          item);
    }
    size_t addr_len = len - (size_t)(at + 1 - item);
    if (addr_len == 0 || addr_len >= NODE_ADDR_BYTES_MAX) {
        return errmsg_set(msg, ERR_CONFIG, "peers: address in '%.*s' is empty or too long",
                          (int)len, item);
    }
    out->id = (uint32_t)id;
    memcpy(out->addr, at + 1, addr_len);
    out->addr[addr_len] = '\0';
    struct sockaddr_storage sa;
    return peer_parse_addr(out->addr, &sa, msg);
}

int config_parse_peers(const char *text, uint32_t self_id, struct node_peer *out, uint32_t *count,
                       struct errmsg *msg) {
    *count = 0;
    if (text[0] == '\0') return 0;
    bool self_found = false;
    for (const char *p = text;;) {
        size_t len = strcspn(p, ",");
        if (*count == NODE_PEERS_MAX) {
            return errmsg_set(msg, ERR_CONFIG, "peers: more than %d members", NODE_PEERS_MAX);
        }
        struct node_peer *peer = &out[*count];
        int rc = config_parse_peer(p, len, peer, msg);
        if (rc != 0) return rc;
        for (uint32_t i = 0; i < *count; i++) {
            if (out[i].id == peer->id) {
                return errmsg_set(msg, ERR_CONFIG, "peers: id %u appears twice", peer->id);
            }
        }
        if (peer->id == self_id) self_found = true;
        (*count)++;
        if (p[len] == '\0') break;
        p += len + 1;
    }
    if (!self_found) {
        return errmsg_set(msg, ERR_CONFIG,
                          "peers: this node's id %u is not in the list (list every voter, this "
                          "node included)",
                          self_id);
    }
    return 0;
}

static int config_check_timeouts(const struct config_values *v, struct errmsg *msg) {
    if (v->election_timeout_min >= v->election_timeout_max) {
        return errmsg_set(msg, ERR_CONFIG,
                          "election-timeout-min (%llu) must be below election-timeout-max (%llu)",
                          v->election_timeout_min, v->election_timeout_max);
    }
    if (v->heartbeat * 2 > v->election_timeout_min) {
        return errmsg_set(msg, ERR_CONFIG,
                          "heartbeat (%llu ms) must be at most half of election-timeout-min "
                          "(%llu ms), or followers time out between heartbeats",
                          v->heartbeat, v->election_timeout_min);
    }
    return 0;
}

int config_to_options(const struct config_values *v, struct server_options *o, struct errmsg *msg) {
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
    int rc = config_parse_peers(v->peers, o->node.id, o->node.peers, &o->node.peer_count, msg);
    /* auto: a cluster's fsyncs overlap with its network work (measured: +17% puts/s on 3
     * nodes, docs/performance.md), but a follower's log sync runs inline (its
     * acknowledgement waits for it; two thread wake-ups fewer per batch); a lone node keeps
     * Redis's inline model. */
    o->sync_in_thread = strcmp(v->fsync_thread, "yes") == 0 ||
                        (strcmp(v->fsync_thread, "auto") == 0 && o->node.peer_count > 0);
    o->sync_inline_ok = strcmp(v->fsync_thread, "auto") == 0;
    if (rc == 0) rc = config_check_timeouts(v, msg);
    if (rc != 0) return rc;
    if (v->peer_listen[0] != '\0') {
        struct sockaddr_storage sa;
        rc = peer_parse_addr(v->peer_listen, &sa, msg);
        if (rc != 0) return errmsg_set(msg, rc, "peer-listen: %s", msg->text);
        o->peer_listen = v->peer_listen;
    }
    o->node.election_timeout_ms_min = v->election_timeout_min;
    o->node.election_timeout_ms_max = v->election_timeout_max;
    o->node.heartbeat_ms = v->heartbeat;
    o->node.request_timeout_ms = v->request_timeout;
    o->node.session_wait_ms = v->session_wait;
    o->node.ap_tombstone_ms = v->ap_tombstone_age;
    o->node.cluster_id = (uint32_t)v->cluster_id;
    o->node.enable_faults = strcmp(v->enable_faults, "yes") == 0;
    o->node.join = strcmp(v->join, "yes") == 0;
    ASSERT(v->keyspace_count <= KEYSPACES_MAX);
    o->node.keyspace_count = v->keyspace_count;
    memcpy(o->node.keyspaces, v->keyspaces, sizeof(v->keyspaces[0]) * v->keyspace_count);
    return 0;
}

const char *config_cluster_warning(const struct server_options *o) {
    if (o->node.peer_count == 0 || o->node.peer_count % 2 != 0) return NULL;
    return "warning: an even number of voters tolerates no more failures than one fewer "
           "(a majority of 4 is 3, so 4 nodes survive 1 failure, like 3); prefer 3, 5 or 7";
}

void config_print_help(const char *program) {
    printf("usage: %s server [--config FILE] [--NAME VALUE ...]\n\n"
           "Settings (flags, or NAME = VALUE under [node] in the INI file; the cluster-wide\n"
           "ones may also go under [cluster]). --enable-faults takes no value.\n",
           program);
    for (size_t i = 0; i < CONFIG_COUNT; i++) {
        const struct config_entry *e = &config_table[i];
        printf("  --%-22s %s (default: %s)\n", e->name, e->help,
               e->fallback[0] != '\0' ? e->fallback : "empty");
    }
    printf("\nKeyspaces (INI only), one section each, first match wins:\n"
           "  [keyspace payments]\n"
           "  match = pay:*,acct:*         comma-separated globs\n"
           "  mode = cp                    cp (Raft) | ap (leaderless; both sides of a cut serve)\n"
           "  replication = majority       cp: majority | all (every voter) | leader (own fsync)\n"
           "  consistency = linearizable   cp: linearizable | lease | stale\n"
           "  conflict = lww               ap: lww | lww-wallclock | siblings | crdt\n"
           "  n = 3                        ap: replicas of each key\n"
           "  w = quorum                   ap: acks a write waits for: one | quorum | all\n"
           "  r = quorum                   ap: replies a read waits for: one | quorum | all\n"
           "  type = pncounter             ap, crdt: pncounter | gcounter (no decrements)\n"
           "  hinted-handoff = on          ap: on | off\n");
}
