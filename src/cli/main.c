/*
 * capkv: one binary, subcommands. `capkv server` runs a node; `capkv demo` runs a local
 * node with example settings and says how to connect.
 */
#include <stdio.h>
#include <string.h>

#include "cli/config.h"
#include "net/server.h"

static int main_server(int argc, char **argv, bool demo) {
    struct config_values values;
    struct errmsg msg = {{0}};
    config_defaults(&values);
    if (demo) snprintf(values.dir, sizeof(values.dir), "%s", "./capkv-demo-data");
    if (config_parse_args(&values, argc, argv, &msg) != 0) {
        fprintf(stderr, "capkv: %s\n", msg.text);
        return 2;
    }
    struct server_options options;
    config_to_options(&values, &options, &msg);
    if (demo) {
        const char *port = strrchr(values.listen, ':');
        printf("capkv demo: one node on %s, data in %s (fsync=%s).\n"
               "Connect from another terminal:\n"
               "    redis-cli -p %s\n"
               "    127.0.0.1:%s> SET greeting hello\n"
               "    127.0.0.1:%s> GET greeting\n"
               "Press Ctrl-C to stop; the data stays in %s for the next start.\n\n",
               values.listen, values.dir, values.fsync, port + 1, port + 1, port + 1, values.dir);
        fflush(stdout);
    }
    int rc = server_run(&options, &msg);
    if (rc != 0) {
        fprintf(stderr, "capkv: %s\n", msg.text);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    const char *sub = argc > 1 ? argv[1] : "help";
    if (strcmp(sub, "server") == 0 || strcmp(sub, "demo") == 0) {
        bool demo = strcmp(sub, "demo") == 0;
        for (int i = 2; i < argc; i++) {
            if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
                config_print_help(argv[0]);
                return 0;
            }
        }
        return main_server(argc - 2, argv + 2, demo);
    }
    if (strcmp(sub, "version") == 0 || strcmp(sub, "--version") == 0) {
        printf("capkv 0.1.0\n");
        return 0;
    }
    if (strcmp(sub, "help") == 0 || strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
        printf("usage: %s <command> [flags]\n\n"
               "  server   run a node (see: %s server --help)\n"
               "  demo     run a local node on 127.0.0.1:7001 and show how to connect\n"
               "  version  print the version\n",
               argv[0], argv[0]);
        return 0;
    }
    fprintf(stderr, "capkv: unknown command '%s' (try: %s help)\n", sub, argv[0]);
    return 2;
}
