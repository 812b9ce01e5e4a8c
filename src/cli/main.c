/*
 * capkv: one binary, subcommands. `capkv server` runs a node; `capkv cluster` and
 * `capkv fault` manage a local cluster of them (src/cli/cluster.c); `capkv demo` starts a
 * local 3-node cluster with example keyspaces and says how to connect.
 */
#include <stdio.h>
#include <string.h>

#include "cli/cluster.h"
#include "cli/config.h"
#include "net/server.h"

static int main_server(int argc, char **argv) {
    struct config_values values;
    struct errmsg msg = {{0}};
    config_defaults(&values);
    struct server_options options;
    if (config_parse_args(&values, argc, argv, &msg) != 0 ||
        config_to_options(&values, &options, &msg) != 0) {
        fprintf(stderr, "capkv: %s\n", msg.text);
        return 2;
    }
    const char *warning = config_cluster_warning(&options);
    if (warning != NULL) fprintf(stderr, "capkv: %s\n", warning);
    int rc = server_run(&options, &msg);
    if (rc != 0) {
        fprintf(stderr, "capkv: %s\n", msg.text);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *sub = argc > 1 ? argv[1] : "help";
    if (strcmp(sub, "server") == 0) {
        for (int i = 2; i < argc; i++) {
            if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
                config_print_help(argv[0]);
                return 0;
            }
        }
        return main_server(argc - 2, argv + 2);
    }
    if (strcmp(sub, "cluster") == 0) return cluster_main(argv[0], argc - 2, argv + 2);
    if (strcmp(sub, "fault") == 0) return cluster_fault_main(argv[0], argc - 2, argv + 2);
    if (strcmp(sub, "demo") == 0) return cluster_demo_main(argv[0], argc - 2, argv + 2);
    if (strcmp(sub, "version") == 0 || strcmp(sub, "--version") == 0) {
        printf("capkv 0.1.0\n");
        return 0;
    }
    if (strcmp(sub, "help") == 0 || strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
        printf(
            "usage: %s <command> [flags]\n\n"
            "  server   run a node (see: %s server --help)\n"
            "  cluster  up | down | status | transfer: a local cluster\n"
            "           (see: %s cluster help)\n"
            "  fault    partition | heal | drop | delay | clock | pause (needs --enable-faults)\n"
            "  demo     start 3 local nodes on 127.0.0.1:7001-7003 and show how to connect\n"
            "  version  print the version\n",
            argv[0], argv[0], argv[0]);
        return 0;
    }
    fprintf(stderr, "capkv: unknown command '%s' (try: %s help)\n", sub, argv[0]);
    return 2;
}
