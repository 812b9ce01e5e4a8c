/*
 * Local clusters for trying capkv out and for tests. `cluster up` writes DIR/cluster.txt
 * (one line per node: id, client address, peer address) and DIR/node-N/pid, and starts
 * each node as `capkv server` in its own session (setsid), so a Ctrl-C in the terminal
 * does not reach it; the other commands read those files. Every wait is bounded, and a
 * pid is signalled only while /proc/PID/exe is this same program, so a stale pid file
 * cannot hit an unrelated process.
 */
#include "cli/cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/buf.h"
#include "cli/respc.h"
#include "core/node.h"

#define CLUSTER_UP_MS_MAX 15000
#define CLUSTER_STOP_MS_MAX 10000
#define CLUSTER_POLL_MS 100
#define CLUSTER_CATCH_UP_MS_MAX                                                                    \
    (30 * 60 * 1000)                 /* the longest cluster add waits, progress or not */
#define CLUSTER_PROGRESS_SAY_MS 5000 /* a joiner's progress, while cluster add waits */
#define CLUSTER_PATH_BYTES_MAX 1024
#define CLUSTER_POSITIONAL_MAX 8
#define CLUSTER_LOG_TAIL_BYTES 1500
#define CLUSTER_FIELD_BYTES_MAX 64

struct cluster_member {
    uint32_t id;
    char client[NODE_ADDR_BYTES_MAX];
    char peer[NODE_ADDR_BYTES_MAX];
};

struct cluster_args {
    unsigned long nodes;
    unsigned long base_port;
    unsigned long node; /* --node N: only this one; 0: all */
    const char *dir;
    const char *config;
    const char *fsync;
    bool enable_faults;
    bool join; /* the node started is a new member for a running cluster */
    int positional_count;
    char *positional[CLUSTER_POSITIONAL_MAX];
};

/* What INFO replication says about one node. */
struct cluster_info {
    bool reachable;
    char role[CLUSTER_FIELD_BYTES_MAX];
    char term[CLUSTER_FIELD_BYTES_MAX];
    char leader[CLUSTER_FIELD_BYTES_MAX];
    char commit[CLUSTER_FIELD_BYTES_MAX];
    char applied[CLUSTER_FIELD_BYTES_MAX];
};

static uint64_t cluster_mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void cluster_sleep_ms(unsigned ms) {
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static bool cluster_parse_ulong(const char *text, unsigned long *out) {
    char *end;
    if (text[0] < '0' || text[0] > '9') return false;
    errno = 0;
    *out = strtoul(text, &end, 10);
    return errno == 0 && *end == '\0';
}

static int cluster_parse_args(int argc, char **argv, struct cluster_args *a) {
    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--enable-faults") == 0) {
            a->enable_faults = true;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0) {
            if (a->positional_count == CLUSTER_POSITIONAL_MAX) {
                fprintf(stderr, "capkv: too many arguments\n");
                return -1;
            }
            a->positional[a->positional_count++] = argv[i];
            continue;
        }
        if (i + 1 >= argc) {
            fprintf(stderr, "capkv: %s needs a value\n", arg);
            return -1;
        }
        const char *v = argv[++i];
        bool ok = true;
        if (strcmp(arg, "--nodes") == 0)
            ok = cluster_parse_ulong(v, &a->nodes);
        else if (strcmp(arg, "--base-port") == 0)
            ok = cluster_parse_ulong(v, &a->base_port);
        else if (strcmp(arg, "--node") == 0)
            ok = cluster_parse_ulong(v, &a->node);
        else if (strcmp(arg, "--dir") == 0)
            a->dir = v;
        else if (strcmp(arg, "--config") == 0)
            a->config = v;
        else if (strcmp(arg, "--fsync") == 0)
            a->fsync = v;
        else {
            fprintf(stderr, "capkv: unknown flag %s\n", arg);
            return -1;
        }
        if (!ok) {
            fprintf(stderr, "capkv: %s wants a number, not '%s'\n", arg, v);
            return -1;
        }
    }
    return 0;
}

static void cluster_path(char *out, const char *dir, uint32_t id, const char *file) {
    if (file == NULL)
        snprintf(out, CLUSTER_PATH_BYTES_MAX, "%s/node-%u", dir, id);
    else
        snprintf(out, CLUSTER_PATH_BYTES_MAX, "%s/node-%u/%s", dir, id, file);
}

static int cluster_read_layout(const char *dir, struct cluster_member *m, uint32_t *count) {
    char path[CLUSTER_PATH_BYTES_MAX];
    snprintf(path, sizeof(path), "%s/cluster.txt", dir);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "capkv: no cluster in %s (%s missing: start one with capkv cluster up)\n",
                dir, path);
        return -1;
    }
    *count = 0;
    while (*count < NODE_PEERS_MAX &&
           fscanf(f, "%u %63s %63s", &m[*count].id, m[*count].client, m[*count].peer) == 3) {
        (*count)++;
    }
    fclose(f);
    if (*count == 0) fprintf(stderr, "capkv: %s lists no nodes\n", path);
    return *count == 0 ? -1 : 0;
}

/* The pid in DIR/node-N/pid if that process is alive and runs this program, else 0. */
static pid_t cluster_live_pid(const char *dir, uint32_t id) {
    char path[CLUSTER_PATH_BYTES_MAX];
    cluster_path(path, dir, id, "pid");
    FILE *f = fopen(path, "r");
    if (f == NULL) return 0;
    long pid = 0;
    int n = fscanf(f, "%ld", &pid);
    fclose(f);
    if (n != 1 || pid <= 1 || kill((pid_t)pid, 0) != 0) return 0;
    char exe[CLUSTER_PATH_BYTES_MAX] = {0};
    char self[CLUSTER_PATH_BYTES_MAX] = {0};
    snprintf(path, sizeof(path), "/proc/%ld/exe", pid);
    ssize_t a = readlink(path, exe, sizeof(exe) - 1);
    ssize_t b = readlink("/proc/self/exe", self, sizeof(self) - 1);
    /* A rebuilt binary shows as "PATH (deleted)": compare the path part only. */
    if (a <= 0 || b <= 0 || strncmp(exe, self, (size_t)b) != 0) return 0;
    return (pid_t)pid;
}

static void cluster_info_get(const char *addr, struct cluster_info *info) {
    memset(info, 0, sizeof(*info));
    const char *argv[] = {"INFO", "replication"};
    struct buf reply;
    buf_init(&reply);
    struct errmsg msg;
    if (respc_call(addr, 2, argv, 500, &reply, &msg) == 0 &&
        !respc_is_error(reply.data, reply.len)) {
        buf_append_byte(&reply, 0);
        const char *text = (const char *)reply.data;
        info->reachable = true;
        respc_info_field(text, "role", info->role, sizeof(info->role));
        respc_info_field(text, "raft_term", info->term, sizeof(info->term));
        respc_info_field(text, "raft_leader_id", info->leader, sizeof(info->leader));
        respc_info_field(text, "raft_commit_index", info->commit, sizeof(info->commit));
        respc_info_field(text, "raft_applied_index", info->applied, sizeof(info->applied));
    }
    buf_deinit(&reply);
}

static void cluster_print_log_tail(const char *dir, uint32_t id) {
    char path[CLUSTER_PATH_BYTES_MAX];
    cluster_path(path, dir, id, "node.log");
    FILE *f = fopen(path, "r");
    if (f == NULL) return;
    char tail[CLUSTER_LOG_TAIL_BYTES + 1];
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, size > CLUSTER_LOG_TAIL_BYTES ? size - CLUSTER_LOG_TAIL_BYTES : 0, SEEK_SET);
    size_t n = fread(tail, 1, CLUSTER_LOG_TAIL_BYTES, f);
    tail[n] = '\0';
    fclose(f);
    fprintf(stderr, "--- end of %s ---\n%s%s", path, tail,
            n > 0 && tail[n - 1] != '\n' ? "\n" : "");
}

/* SIGTERM to every live node, a bounded wait, then SIGKILL; removes the pid files. */
static int cluster_stop(const char *dir, const struct cluster_member *m, uint32_t count) {
    pid_t pids[NODE_PEERS_MAX] = {0};
    for (uint32_t i = 0; i < count; i++) {
        pids[i] = cluster_live_pid(dir, m[i].id);
        if (pids[i] != 0) kill(pids[i], SIGTERM);
    }
    uint64_t deadline = cluster_mono_ms() + CLUSTER_STOP_MS_MAX;
    int killed = 0;
    for (uint32_t i = 0; i < count; i++) {
        while (pids[i] != 0 && kill(pids[i], 0) == 0) {
            waitpid(pids[i], NULL, WNOHANG); /* reap it if it is our child (demo, failed up) */
            if (cluster_mono_ms() >= deadline) {
                fprintf(stderr, "capkv: node %u (pid %d) did not stop in %d ms: SIGKILL\n", m[i].id,
                        (int)pids[i], CLUSTER_STOP_MS_MAX);
                kill(pids[i], SIGKILL);
                killed++;
                break;
            }
            cluster_sleep_ms(20);
        }
        char path[CLUSTER_PATH_BYTES_MAX];
        cluster_path(path, dir, m[i].id, "pid");
        unlink(path);
        printf("node %u: %s\n", m[i].id, pids[i] == 0 ? "not running" : "stopped");
    }
    return killed == 0 ? 0 : 1;
}

/* Exec's `capkv server` for member m in a new session, output to its log. Child only. */
static void cluster_exec_node(const struct cluster_args *a, const struct cluster_member *m,
                              const char *peers) {
    char dir[CLUSTER_PATH_BYTES_MAX];
    char log[CLUSTER_PATH_BYTES_MAX];
    char id[16];
    cluster_path(dir, a->dir, m->id, NULL);
    cluster_path(log, a->dir, m->id, "node.log");
    snprintf(id, sizeof(id), "%u", m->id);
    setsid();
    int null_fd = open("/dev/null", O_RDONLY);
    int log_fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (null_fd >= 0) dup2(null_fd, 0);
    if (log_fd >= 0) {
        dup2(log_fd, 1);
        dup2(log_fd, 2);
    }
    const char *argv[24];
    int n = 0;
    argv[n++] = "capkv";
    argv[n++] = "server";
    if (a->config != NULL) {
        argv[n++] = "--config";
        argv[n++] = a->config;
    }
    const char *flags[][2] = {
        {"--id", id},       {"--listen", m->client}, {"--peer-listen", m->peer},
        {"--peers", peers}, {"--dir", dir},          {"--log-file", log}};
    for (size_t i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
        argv[n++] = flags[i][0];
        argv[n++] = flags[i][1];
    }
    if (a->fsync != NULL) {
        argv[n++] = "--fsync";
        argv[n++] = a->fsync;
    }
    if (a->enable_faults) argv[n++] = "--enable-faults";
    if (a->join) argv[n++] = "--join";
    argv[n] = NULL;
    execv("/proc/self/exe", (char *const *)(uintptr_t)argv);
    fprintf(stderr, "capkv: cannot run /proc/self/exe: %s\n", strerror(errno));
    _exit(127);
}

static int cluster_up_check(const struct cluster_args *a) {
    if (a->dir == NULL || a->nodes == 0 || a->base_port == 0) {
        fprintf(stderr, "usage: capkv cluster up --nodes N --base-port P --dir DIR "
                        "[--config FILE] [--enable-faults] [--fsync always|everysec|never]\n");
        return -1;
    }
    if (a->nodes > NODE_PEERS_MAX) {
        fprintf(stderr, "capkv: --nodes must be 1..%d\n", NODE_PEERS_MAX);
        return -1;
    }
    if (a->base_port < 1024 || a->base_port + 1000 + a->nodes - 1 > 65535) {
        fprintf(stderr, "capkv: --base-port must leave room for peer ports P+1000.. (1024..%lu)\n",
                65535 - 1000 - a->nodes + 1);
        return -1;
    }
    if (a->nodes % 2 == 0) {
        fprintf(stderr,
                "capkv: warning: %lu nodes tolerate no more failures than %lu (a "
                "majority is needed); prefer an odd size\n",
                a->nodes, a->nodes - 1);
    }
    return 0;
}

/* DIR/cluster.txt, in id order, replaced whole (written aside, then renamed). */
static int cluster_write_layout(const char *dir, const struct cluster_member *m, uint32_t count) {
    char path[CLUSTER_PATH_BYTES_MAX];
    char tmp[CLUSTER_PATH_BYTES_MAX + 8];
    snprintf(path, sizeof(path), "%s/cluster.txt", dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL) {
        fprintf(stderr, "capkv: cannot write %s: %s\n", tmp, strerror(errno));
        return -1;
    }
    for (uint32_t id = 1, done = 0; done < count; id++) { /* in id order */
        for (uint32_t i = 0; i < count; i++) {
            if (m[i].id != id) continue;
            fprintf(f, "%u %s %s\n", m[i].id, m[i].client, m[i].peer);
            done++;
        }
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        fprintf(stderr, "capkv: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    return 0;
}

/* DIR/options.txt: the settings `cluster up` gave every node, for nodes added later. */
static int cluster_write_options(const struct cluster_args *a) {
    char path[CLUSTER_PATH_BYTES_MAX];
    snprintf(path, sizeof(path), "%s/options.txt", a->dir);
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        fprintf(stderr, "capkv: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (a->config != NULL) {
        char real[CLUSTER_PATH_BYTES_MAX];
        fprintf(f, "config %s\n", realpath(a->config, real) != NULL ? real : a->config);
    }
    if (a->fsync != NULL) fprintf(f, "fsync %s\n", a->fsync);
    if (a->enable_faults) fprintf(f, "enable-faults yes\n");
    return fclose(f) == 0 ? 0 : -1;
}

/* Fills what the command line left unset from DIR/options.txt (absent: nothing). */
static void cluster_read_options(struct cluster_args *a) {
    static char config[CLUSTER_PATH_BYTES_MAX];
    static char fsync_mode[CLUSTER_FIELD_BYTES_MAX];
    char path[CLUSTER_PATH_BYTES_MAX];
    snprintf(path, sizeof(path), "%s/options.txt", a->dir);
    FILE *f = fopen(path, "r");
    if (f == NULL) return;
    char key[32];
    char value[CLUSTER_PATH_BYTES_MAX];
    while (fscanf(f, "%31s %1023s", key, value) == 2) {
        if (strcmp(key, "config") == 0 && a->config == NULL) {
            snprintf(config, sizeof(config), "%s", value);
            a->config = config;
        } else if (strcmp(key, "fsync") == 0 && a->fsync == NULL) {
            snprintf(fsync_mode, sizeof(fsync_mode), "%.63s", value);
            a->fsync = fsync_mode;
        } else if (strcmp(key, "enable-faults") == 0) {
            a->enable_faults = true;
        }
    }
    fclose(f);
}

/* Creates the directories and DIR/cluster.txt; refuses if a node there still runs. */
static int cluster_up_prepare(const struct cluster_args *a, struct cluster_member *m, char *peers,
                              size_t peers_cap) {
    if (mkdir(a->dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "capkv: cannot create %s: %s\n", a->dir, strerror(errno));
        return -1;
    }
    size_t used = 0;
    for (uint32_t i = 0; i < a->nodes; i++) {
        uint32_t id = i + 1;
        m[i].id = id;
        snprintf(m[i].client, sizeof(m[i].client), "127.0.0.1:%lu", a->base_port + i);
        snprintf(m[i].peer, sizeof(m[i].peer), "127.0.0.1:%lu", a->base_port + 1000 + i);
        used += (size_t)snprintf(peers + used, peers_cap - used, "%s%u@%s", i > 0 ? "," : "", id,
                                 m[i].peer);
        char path[CLUSTER_PATH_BYTES_MAX];
        cluster_path(path, a->dir, id, NULL);
        if (mkdir(path, 0755) != 0 && errno != EEXIST) {
            fprintf(stderr, "capkv: cannot create %s: %s\n", path, strerror(errno));
            return -1;
        }
        pid_t pid = cluster_live_pid(a->dir, id);
        if (pid != 0) {
            fprintf(stderr,
                    "capkv: node %u in %s is still running (pid %d); run capkv cluster "
                    "down --dir %s first\n",
                    id, a->dir, (int)pid, a->dir);
            return -1;
        }
    }
    if (cluster_write_layout(a->dir, m, (uint32_t)a->nodes) != 0) return -1;
    return cluster_write_options(a);
}

static int cluster_spawn(const struct cluster_args *a, const struct cluster_member *m,
                         const char *peers, pid_t *pids) {
    fflush(stdout);
    fflush(stderr);
    for (uint32_t i = 0; i < a->nodes; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            fprintf(stderr, "capkv: fork: %s\n", strerror(errno));
            return -1;
        }
        if (pid == 0) cluster_exec_node(a, &m[i], peers);
        pids[i] = pid;
        char path[CLUSTER_PATH_BYTES_MAX];
        cluster_path(path, a->dir, m[i].id, "pid");
        FILE *f = fopen(path, "w");
        if (f == NULL) {
            fprintf(stderr, "capkv: cannot write %s: %s\n", path, strerror(errno));
            return -1;
        }
        fprintf(f, "%d\n", (int)pid);
        fclose(f);
    }
    return 0;
}

/* Polls INFO replication until a node says role:leader; -1 if a node exits or time runs
 * out. A single node that runs alone (role:master) counts as its own leader. */
static int cluster_wait_leader(const struct cluster_args *a, const struct cluster_member *m,
                               const pid_t *pids) {
    uint64_t deadline = cluster_mono_ms() + CLUSTER_UP_MS_MAX;
    while (cluster_mono_ms() < deadline) {
        for (uint32_t i = 0; i < a->nodes; i++) {
            int status;
            if (waitpid(pids[i], &status, WNOHANG) == pids[i]) {
                fprintf(stderr, "capkv: node %u exited at start (status %d)\n", m[i].id,
                        WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status));
                return -1;
            }
            struct cluster_info info;
            cluster_info_get(m[i].client, &info);
            if (strcmp(info.role, "leader") == 0) return (int)i;
            if (a->nodes == 1 && strcmp(info.role, "master") == 0) return (int)i;
        }
        cluster_sleep_ms(CLUSTER_POLL_MS);
    }
    fprintf(stderr, "capkv: no node reported role:leader in INFO replication within %d ms\n",
            CLUSTER_UP_MS_MAX);
    return -1;
}

/* Starts the nodes and waits for a leader; on failure shows the logs and stops them. */
static int cluster_up_run(const struct cluster_args *a) {
    if (cluster_up_check(a) != 0) return 2;
    struct cluster_member m[NODE_PEERS_MAX];
    char peers[NODE_PEERS_MAX * (NODE_ADDR_BYTES_MAX + 16)];
    if (cluster_up_prepare(a, m, peers, sizeof(peers)) != 0) return 1;
    pid_t pids[NODE_PEERS_MAX] = {0};
    int leader = cluster_spawn(a, m, peers, pids) == 0 ? cluster_wait_leader(a, m, pids) : -1;
    if (leader < 0) {
        for (uint32_t i = 0; i < a->nodes; i++) cluster_print_log_tail(a->dir, m[i].id);
        cluster_stop(a->dir, m, (uint32_t)a->nodes);
        return 1;
    }
    printf("cluster up: %lu node%s, data and logs in %s\n", a->nodes, a->nodes > 1 ? "s" : "",
           a->dir);
    for (uint32_t i = 0; i < a->nodes; i++) {
        printf("  node %u: client %s  peer %s  pid %d  log %s/node-%u/node.log\n", m[i].id,
               m[i].client, m[i].peer, (int)pids[i], a->dir, m[i].id);
    }
    printf("leader: node %u (%s)\n", m[leader].id, m[leader].client);
    fflush(stdout);
    return 0;
}

static int cluster_status(const struct cluster_args *a) {
    struct cluster_member m[NODE_PEERS_MAX];
    uint32_t count;
    if (cluster_read_layout(a->dir, m, &count) != 0) return 1;
    printf("%-4s %-16s %-8s %-13s %-6s %-7s %-8s %s\n", "id", "client", "pid", "role", "term",
           "leader", "commit", "applied");
    for (uint32_t i = 0; i < count; i++) {
        pid_t pid = cluster_live_pid(a->dir, m[i].id);
        struct cluster_info info;
        cluster_info_get(m[i].client, &info);
        char pid_text[24];
        snprintf(pid_text, sizeof(pid_text), "%d", (int)pid);
        const char *role = info.reachable ? (info.role[0] ? info.role : "?") : "unreachable";
        printf("%-4u %-16s %-8s %-13s %-6s %-7s %-8s %s\n", m[i].id, m[i].client,
               pid != 0 ? pid_text : "down", role, info.term[0] ? info.term : "-",
               info.leader[0] ? info.leader : "-", info.commit[0] ? info.commit : "-",
               info.applied[0] ? info.applied : "-");
    }
    return 0;
}

/* Sends argv to one node and prints "node N: reply"; returns 0, or 1 on an error reply or
 * no answer. */
static int cluster_send(const struct cluster_member *m, int argc, const char *const *argv) {
    struct buf reply;
    struct buf text;
    buf_init(&reply);
    buf_init(&text);
    struct errmsg msg;
    int rc = respc_call(m->client, argc, argv, RESPC_TIMEOUT_MS_DEFAULT, &reply, &msg);
    if (rc == 0) {
        respc_format(reply.data, reply.len, &text);
        buf_append_byte(&text, 0);
        printf("node %u: %s\n", m->id, (const char *)text.data);
    } else {
        printf("node %u: no answer from %s: %s\n", m->id, m->client, msg.text);
    }
    int status = rc != 0 || respc_is_error(reply.data, reply.len) ? 1 : 0;
    buf_deinit(&reply);
    buf_deinit(&text);
    return status;
}

/* The node to send a membership command to: --node N, else the one that leads now. */
static const struct cluster_member *cluster_target(const struct cluster_args *a,
                                                   const struct cluster_member *m, uint32_t count) {
    for (uint32_t i = 0; i < count; i++) {
        struct cluster_info info;
        if (a->node == 0) cluster_info_get(m[i].client, &info);
        if (a->node == m[i].id || (a->node == 0 && strcmp(info.role, "leader") == 0)) return &m[i];
    }
    fprintf(stderr, "capkv: %s\n", a->node != 0 ? "no such node" : "no node is leader now");
    return NULL;
}

/* A field of the INFO replication reply in `reply` (NUL-terminated), or 0. */
static uint64_t cluster_info_field(const char *reply, const char *field) {
    size_t n = strlen(field);
    for (const char *p = strstr(reply, field); p != NULL; p = strstr(p + 1, field)) {
        if ((p == reply || p[-1] == '\n') && p[n] == ':') return strtoull(p + n + 1, NULL, 10);
    }
    return 0;
}

/* How far a catching-up node has come: its applied index plus the snapshot bytes it has
 * received. Either moving means it is still getting there. False when it did not answer
 * (then *reply holds nothing to read). */
static bool cluster_progress(const struct cluster_member *m, struct buf *reply, uint64_t *out) {
    const char *argv[] = {"INFO", "replication"};
    struct errmsg msg;
    buf_clear(reply);
    if (respc_call(m->client, 2, argv, 500, reply, &msg) != 0 ||
        respc_is_error(reply->data, reply->len))
        return false;
    buf_append_byte(reply, 0);
    const char *text = (const char *)reply->data;
    *out = cluster_info_field(text, "raft_applied_index") +
           cluster_info_field(text, "snapshot_bytes_received");
    return true;
}

/* Polls the target's CLUSTER MEMBERS until server id is listed with `role` (or, role
 * NULL, not listed at all). With `catching_up` (the node itself), the wait goes on while
 * that node makes progress (a big snapshot takes a while), saying so every few seconds. */
static bool cluster_wait_member(const struct cluster_member *target, uint32_t id, const char *role,
                                const struct cluster_member *catching_up) {
    uint64_t deadline = cluster_mono_ms() + CLUSTER_UP_MS_MAX * 2;
    uint64_t give_up = cluster_mono_ms() + CLUSTER_CATCH_UP_MS_MAX; /* progress or not */
    uint64_t progress = 0;
    uint64_t said_ms = cluster_mono_ms();
    const char *argv[] = {"CLUSTER", "MEMBERS"};
    char want[64];
    snprintf(want, sizeof(want), "%u ", id);
    struct buf reply;
    buf_init(&reply);
    bool done = false;
    while (!done && cluster_mono_ms() < deadline) {
        struct errmsg msg;
        buf_clear(&reply);
        if (respc_call(target->client, 2, argv, 500, &reply, &msg) == 0 &&
            !respc_is_error(reply.data, reply.len)) {
            buf_append_byte(&reply, 0);
            const char *line = strstr((const char *)reply.data, want);
            while (line != NULL && line != (const char *)reply.data && line[-1] != '\n')
                line = strstr(line + 1, want);
            const char *eol = line != NULL ? strchr(line, '\n') : NULL;
            const char *has = line != NULL && role != NULL ? strstr(line, role) : NULL;
            done = role == NULL ? line == NULL : has != NULL && (eol == NULL || has < eol);
        }
        if (!done && catching_up != NULL) {
            uint64_t now_progress = 0;
            bool answered = cluster_progress(catching_up, &reply, &now_progress);
            uint64_t now = cluster_mono_ms();
            if (answered && now_progress > progress) {
                progress = now_progress;
                deadline = now + CLUSTER_UP_MS_MAX * 2;
                if (deadline > give_up) deadline = give_up;
            }
            if (answered && now - said_ms >= CLUSTER_PROGRESS_SAY_MS) {
                said_ms = now;
                uint64_t bytes =
                    cluster_info_field((const char *)reply.data, "snapshot_bytes_received");
                printf("node %u: catching up (applied index %llu, %llu MB of snapshot received)\n",
                       id,
                       (unsigned long long)cluster_info_field((const char *)reply.data,
                                                              "raft_applied_index"),
                       (unsigned long long)(bytes >> 20));
                fflush(stdout);
            }
        }
        if (!done) cluster_sleep_ms(CLUSTER_POLL_MS);
    }
    buf_deinit(&reply);
    return done;
}

/* Starts node `nm` with --join and waits until it accepts connections. */
static int cluster_start_joiner(struct cluster_args *a, const struct cluster_member *m,
                                uint32_t count, const struct cluster_member *nm) {
    char peers[NODE_PEERS_MAX * (NODE_ADDR_BYTES_MAX + 16)];
    size_t used = 0;
    for (uint32_t i = 0; i <= count; i++) {
        const struct cluster_member *p = i < count ? &m[i] : nm;
        used += (size_t)snprintf(peers + used, sizeof(peers) - used, "%s%u@%s", i ? "," : "", p->id,
                                 p->peer);
    }
    char path[CLUSTER_PATH_BYTES_MAX];
    cluster_path(path, a->dir, nm->id, NULL);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "capkv: cannot create %s: %s\n", path, strerror(errno));
        return -1;
    }
    a->join = true;
    a->nodes = 1;
    pid_t pid;
    if (cluster_spawn(a, nm, peers, &pid) != 0) return -1;
    uint64_t deadline = cluster_mono_ms() + CLUSTER_UP_MS_MAX;
    for (;;) {
        struct cluster_info info;
        cluster_info_get(nm->client, &info);
        if (info.reachable) return 0;
        int status;
        if (waitpid(pid, &status, WNOHANG) == pid || cluster_mono_ms() >= deadline) break;
        cluster_sleep_ms(CLUSTER_POLL_MS);
    }
    fprintf(stderr, "capkv: node %u did not start\n", nm->id);
    cluster_print_log_tail(a->dir, nm->id);
    return -1;
}

/* cluster add --dir DIR: a new local node (next id and ports), joined and promoted. */
static int cluster_add_local(struct cluster_args *a, struct cluster_member *m, uint32_t count,
                             const struct cluster_member *target) {
    if (count == NODE_PEERS_MAX) {
        fprintf(stderr, "capkv: the cluster has %d members, the most there can be\n",
                NODE_PEERS_MAX);
        return 1;
    }
    struct cluster_member nm = {0};
    unsigned long port = 0;
    const char *colon = strrchr(m[0].client, ':');
    if (colon == NULL || !cluster_parse_ulong(colon + 1, &port)) return 1;
    unsigned long base = port - (m[0].id - 1);
    for (uint32_t i = 0; i < count; i++)
        if (m[i].id > nm.id) nm.id = m[i].id;
    nm.id++;
    snprintf(nm.client, sizeof(nm.client), "127.0.0.1:%lu", base + nm.id - 1);
    snprintf(nm.peer, sizeof(nm.peer), "127.0.0.1:%lu", base + 1000 + nm.id - 1);
    cluster_read_options(a);
    if (cluster_start_joiner(a, m, count, &nm) != 0) return 1;
    m[count] = nm;
    if (cluster_write_layout(a->dir, m, count + 1) != 0) return 1;
    const char *argv[] = {"CLUSTER", "ADD", NULL, nm.peer};
    char id[16];
    snprintf(id, sizeof(id), "%u", nm.id);
    argv[2] = id;
    if (cluster_send(target, 4, argv) != 0) return 1;
    if (!cluster_wait_member(target, nm.id, "voter", &nm)) {
        fprintf(stderr,
                "capkv: node %u was added but is not a voter yet and made no progress for "
                "%d s: see its log and capkv cluster status --dir %s\n",
                nm.id, CLUSTER_UP_MS_MAX * 2 / 1000, a->dir);
        return 1;
    }
    printf("node %u: client %s  peer %s  log %s/node-%u/node.log: a voter now\n", nm.id, nm.client,
           nm.peer, a->dir, nm.id);
    return 0;
}

/* cluster remove: CLUSTER REMOVE on the leader; a local node is then stopped and forgotten. */
static int cluster_remove(const struct cluster_args *a, struct cluster_member *m, uint32_t count,
                          const struct cluster_member *target) {
    const char *argv[] = {"CLUSTER", "REMOVE", a->positional[1]};
    if (cluster_send(target, 3, argv) != 0) return 1;
    unsigned long id = 0;
    cluster_parse_ulong(a->positional[1], &id);
    for (uint32_t i = 0; i < count; i++) {
        if (m[i].id != id) continue;
        int rc = cluster_stop(a->dir, &m[i], 1);
        m[i] = m[count - 1];
        return cluster_write_layout(a->dir, m, count - 1) != 0 ? 1 : rc;
    }
    return 0;
}

/* CLUSTER ADD|REMOVE|TRANSFER, sent to the leader (or to --node N). */
static int cluster_membership(struct cluster_args *a, const char *verb) {
    bool add = strcmp(verb, "ADD") == 0;
    bool remove = strcmp(verb, "REMOVE") == 0;
    bool add_local = add && a->positional_count == 1;
    if (a->dir == NULL || (!add_local && a->positional_count != (add ? 3 : 2))) {
        fprintf(stderr, "usage: capkv cluster %s --dir DIR [--node N] %s\n",
                add      ? "add"
                : remove ? "remove"
                         : "transfer",
                add ? "[ID PEER_HOST:PORT]" : "ID");
        return 2;
    }
    struct cluster_member m[NODE_PEERS_MAX];
    uint32_t count;
    if (cluster_read_layout(a->dir, m, &count) != 0) return 1;
    const struct cluster_member *target = cluster_target(a, m, count);
    if (target == NULL) return 1;
    if (add_local) return cluster_add_local(a, m, count, target);
    if (remove) return cluster_remove(a, m, count, target);
    const char *argv[] = {"CLUSTER", verb, a->positional[1], add ? a->positional[2] : NULL};
    return cluster_send(target, add ? 4 : 3, argv);
}

int cluster_main(const char *program, int argc, char **argv) {
    struct cluster_args a = {0};
    const char *sub = argc > 0 ? argv[0] : "help";
    if (argc > 0 && cluster_parse_args(argc, argv, &a) != 0) return 2;
    if (strcmp(sub, "up") == 0) return cluster_up_run(&a);
    if (strcmp(sub, "add") == 0) return cluster_membership(&a, "ADD");
    if (strcmp(sub, "remove") == 0) return cluster_membership(&a, "REMOVE");
    if (strcmp(sub, "transfer") == 0) return cluster_membership(&a, "TRANSFER");
    bool down = strcmp(sub, "down") == 0;
    if ((down || strcmp(sub, "status") == 0) && a.dir != NULL) {
        if (!down) return cluster_status(&a);
        struct cluster_member m[NODE_PEERS_MAX];
        uint32_t count;
        return cluster_read_layout(a.dir, m, &count) != 0 ? 1 : cluster_stop(a.dir, m, count);
    }
    printf("usage:\n"
           "  %s cluster up --nodes N --base-port P --dir DIR [--config FILE] [--enable-faults]\n"
           "      node i: client port P+i-1, peer port P+1000+i-1, data DIR/node-i\n"
           "  %s cluster down --dir DIR\n"
           "  %s cluster status --dir DIR\n"
           "  %s cluster add --dir DIR            (start the next node and make it a voter)\n"
           "  %s cluster add --dir DIR ID PEER_HOST:PORT  (add a node started with --join)\n"
           "  %s cluster remove --dir DIR ID      (remove it; a local node is also stopped)\n"
           "  %s cluster transfer --dir DIR ID            (hand leadership to ID)\n",
           program, program, program, program, program, program, program);
    return strcmp(sub, "help") == 0 || strcmp(sub, "--help") == 0 ? 0 : 2;
}

/* FAULT <SUB> args..., sent to every node of DIR (or --node N). */
int cluster_fault_main(const char *program, int argc, char **argv) {
    struct cluster_args a = {0};
    if (cluster_parse_args(argc, argv, &a) != 0) return 2;
    static const char *const subs[][2] = {{"partition", "1"}, {"heal", "0"},  {"drop", "2"},
                                          {"delay", "2"},     {"clock", "1"}, {"pause", "1"}};
    int want = -1;
    for (size_t i = 0; a.positional_count > 0 && i < sizeof(subs) / sizeof(subs[0]); i++) {
        if (strcmp(a.positional[0], subs[i][0]) == 0) want = subs[i][1][0] - '0';
    }
    if (a.dir == NULL || want < 0 || a.positional_count != want + 1) {
        fprintf(stderr,
                "usage: %s fault partition \"1,2|3\" --dir DIR [--node N]\n"
                "       %s fault heal --dir DIR [--node N]\n"
                "       %s fault drop PEER PCT | delay PEER MS | clock MS | pause MS --dir DIR "
                "[--node N]\n"
                "(the nodes must run with --enable-faults)\n",
                program, program, program);
        return 2;
    }
    struct cluster_member m[NODE_PEERS_MAX];
    uint32_t count;
    if (cluster_read_layout(a.dir, m, &count) != 0) return 1;
    char verb[16];
    snprintf(verb, sizeof(verb), "%s", a.positional[0]);
    for (char *p = verb; *p != '\0'; p++) *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
    const char *cmd[] = {"FAULT", verb, a.positional[1], a.positional[2]};
    int status = 0;
    for (uint32_t i = 0; i < count; i++) {
        if (a.node != 0 && a.node != m[i].id) continue;
        status |= cluster_send(&m[i], 2 + want, cmd);
    }
    return status;
}

#define CLUSTER_DEMO_DIR "./capkv-demo-data"
#define CLUSTER_DEMO_CONFIG                                                                        \
    "# Written by capkv demo. Keyspaces: the first whose match fits a key wins.\n"                 \
    "[keyspace payments]\n"                                                                        \
    "match = pay:*,acct:*\n"                                                                       \
    "mode = cp\n"                                                                                  \
    "replication = majority\n"                                                                     \
    "consistency = linearizable\n"                                                                 \
    "\n"                                                                                           \
    "# Every voter must hold a write before it is answered (refused while one is down).\n"         \
    "[keyspace ledger]\n"                                                                          \
    "match = ledger:*\n"                                                                           \
    "replication = all\n"                                                                          \
    "\n"                                                                                           \
    "# Answered after the leader's own fsync: fast, may lose writes on failover.\n"                \
    "[keyspace sessions]\n"                                                                        \
    "match = session:*\n"                                                                          \
    "replication = leader\n"                                                                       \
    "\n"                                                                                           \
    "# AP: both sides of a partition serve; replicas merge (sets add-wins, counters add).\n"       \
    "[keyspace carts]\n"                                                                          \
    "match = cart:*\n"                                                                            \
    "mode = ap\n"                                                                                 \
    "conflict = crdt\n"                                                                           \
    "w = one\n"                                                                                   \
    "r = one\n"                                                                                   \
    "\n"                                                                                           \
    "[keyspace default]\n"                                                                         \
    "match = *\n"                                                                                  \
    "mode = cp\n"                                                                                  \
    "consistency = linearizable\n"

static int cluster_demo_write_config(const char *path) {
    if (mkdir(CLUSTER_DEMO_DIR, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "capkv: cannot create %s: %s\n", CLUSTER_DEMO_DIR, strerror(errno));
        return -1;
    }
    FILE *f = fopen(path, "w");
    if (f == NULL || fputs(CLUSTER_DEMO_CONFIG, f) < 0) {
        fprintf(stderr, "capkv: cannot write %s: %s\n", path, strerror(errno));
        if (f != NULL) fclose(f);
        return -1;
    }
    return fclose(f) == 0 ? 0 : -1;
}

/* Three nodes on 7001..7003 with example keyspaces, in the foreground until Ctrl-C. */
int cluster_demo_main(const char *program, int argc, char **argv) {
    struct cluster_args a = {0};
    if (cluster_parse_args(argc, argv, &a) != 0) return 2;
    const char *config = CLUSTER_DEMO_DIR "/demo.ini";
    a.nodes = 3;
    a.base_port = 7001;
    a.dir = CLUSTER_DEMO_DIR;
    a.enable_faults = true;
    if (a.config == NULL) {
        if (cluster_demo_write_config(config) != 0) return 1;
        a.config = config;
    }
    /* Ctrl-C must reach this process only (the nodes run in their own sessions), and is
     * taken with sigwait so the nodes are stopped cleanly whenever it comes. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    int rc = cluster_up_run(&a);
    if (rc != 0) return rc;
    sigprocmask(SIG_BLOCK, &stop, NULL);
    printf("\ncapkv demo: 3 nodes, keyspaces in %s (payments: pay:* acct:*; ledger:*, "
           "replication = all; session:*, replication = leader; carts: cart:*, mode = ap; "
           "default: *).\n"
           "Connect from another terminal:\n"
           "    redis-cli -p 7001          (or 7002, 7003)\n"
           "    127.0.0.1:7001> SET pay:alice 100\n"
           "    127.0.0.1:7001> GET pay:alice\n"
           "Watch roles, terms and indexes:\n"
           "    %s cluster status --dir %s\n"
           "Cut node 3 off, see it refuse with -NOQUORUM, then heal:\n"
           "    %s fault partition \"1,2|3\" --dir %s\n"
           "    redis-cli -p 7003 SET pay:bob 5\n"
           "    %s fault heal --dir %s\n"
           "The two-tabs cart (AP): both sides of the cut take the same item, kept once:\n"
           "    %s fault partition \"1|2,3\" --dir %s\n"
           "    redis-cli -p 7001 SADD cart:ann book\n"
           "    redis-cli -p 7002 SADD cart:ann book pen\n"
           "    %s fault heal --dir %s\n"
           "    redis-cli -p 7003 SMEMBERS cart:ann       (book, pen)\n"
           "Press Ctrl-C to stop all three; the data stays in %s.\n\n",
           a.config, program, a.dir, program, a.dir, program, a.dir, program, a.dir, program,
           a.dir, a.dir);
    fflush(stdout);
    int sig = 0;
    sigwait(&stop, &sig);
    printf("\ncapkv demo: %s, stopping the nodes\n", sig == SIGINT ? "Ctrl-C" : "SIGTERM");
    struct cluster_member m[NODE_PEERS_MAX];
    uint32_t count;
    if (cluster_read_layout(a.dir, m, &count) != 0) return 1;
    return cluster_stop(a.dir, m, count);
}
