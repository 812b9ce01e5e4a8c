/*
 * The node's settings: one table (name, type, default, bounds, unit, help) from which the
 * INI file's [node] section, the command-line flags and --help all come.
 */
#ifndef CAPKV_CLI_CONFIG_H
#define CAPKV_CLI_CONFIG_H

#include "base/err.h"
#include "net/server.h"

#define CONFIG_TEXT_BYTES_MAX 512

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
};

void config_defaults(struct config_values *v);
/* Reads an INI file: [node] keys as the flags' names (without "--"). */
int config_load_file(struct config_values *v, const char *path, struct errmsg *msg);
/* Applies --name value / --name=value flags from argv[0..argc); --config FILE is read first. */
int config_parse_args(struct config_values *v, int argc, char **argv, struct errmsg *msg);
/* Fills server options (pointing into v) from the values. */
int config_to_options(const struct config_values *v, struct server_options *o, struct errmsg *msg);
void config_print_help(const char *program);

#endif
