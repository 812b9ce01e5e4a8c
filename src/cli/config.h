/*
 * The node's settings: one table (name, type, default, bounds, unit, help) from which the
 * INI file's [node] section, the command-line flags and --help all come.
 */
#ifndef CAPKV_CLI_CONFIG_H
#define CAPKV_CLI_CONFIG_H

#include "base/err.h"
#include "net/server.h"

#define CONFIG_TEXT_BYTES_MAX 1024

struct config_values {
    char listen[CONFIG_TEXT_BYTES_MAX];
    char dir[CONFIG_TEXT_BYTES_MAX];
    char requirepass[CONFIG_TEXT_BYTES_MAX];
    char log_file[CONFIG_TEXT_BYTES_MAX];
    char fsync[16];
    char fsync_thread[16];
    unsigned long long id;
    unsigned long long maxclients;
    unsigned long long proto_max_bulk_len;
    unsigned long long output_buffer_limit;
    unsigned long long query_buffer_limit;
    unsigned long long snapshot_log_bytes;
    unsigned long long wal_segment_bytes;
    /* Cluster. */
    char peer_listen[CONFIG_TEXT_BYTES_MAX];
    char peers[CONFIG_TEXT_BYTES_MAX];
    char enable_faults[16];
    char join[16];
    unsigned long long election_timeout_min;
    unsigned long long election_timeout_max;
    unsigned long long heartbeat;
    unsigned long long request_timeout;
    unsigned long long session_wait;
    unsigned long long ap_tombstone_age;
    unsigned long long cluster_id;
    /* [keyspace NAME] sections, in file order. */
    uint32_t keyspace_count;
    struct keyspace keyspaces[KEYSPACES_MAX];
};

void config_defaults(struct config_values *v);
/* Reads an INI file: [node] keys as the flags' names (without "--"); [cluster] may hold the
 * cluster-wide ones (peers, timeouts, enable-faults); [keyspace NAME] sections define
 * keyspaces. Errors name the file and line. */
int config_load_file(struct config_values *v, const char *path, struct errmsg *msg);
/* Applies --name value / --name=value flags from argv[0..argc); --config FILE is read first. */
int config_parse_args(struct config_values *v, int argc, char **argv, struct errmsg *msg);
/* Parses "1@HOST:PORT,2@HOST:PORT,..." (every voter, this node included) and checks it:
 * ids unique in 1..1000000, addresses HOST:PORT, at most NODE_PEERS_MAX, self_id present.
 * An empty text is no peers (the node runs alone). */
int config_parse_peers(const char *text, uint32_t self_id, struct node_peer *out, uint32_t *count,
                       struct errmsg *msg);
/* Fills server options (pointing into v) from the values, validating the cluster settings
 * and keyspaces. */
int config_to_options(const struct config_values *v, struct server_options *o, struct errmsg *msg);
void config_print_help(const char *program);
/* A warning for people (NULL if none): an even cluster size tolerates no more failures
 * than the odd size below it. */
const char *config_cluster_warning(const struct server_options *o);

#endif
