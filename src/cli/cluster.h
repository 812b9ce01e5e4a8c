/*
 * The cluster tools: `capkv cluster up|down|status|add|remove|transfer`, `capkv fault ...`
 * and `capkv demo`. They start and stop `capkv server` processes of the same binary and
 * talk to them over RESP (src/cli/respc.c); they never touch a node's files.
 */
#ifndef CAPKV_CLI_CLUSTER_H
#define CAPKV_CLI_CLUSTER_H

/* argv[0] is the subcommand's first argument (after "cluster" / "fault" / "demo").
 * Each returns the process exit status. */
int cluster_main(const char *program, int argc, char **argv);
int cluster_fault_main(const char *program, int argc, char **argv);
int cluster_demo_main(const char *program, int argc, char **argv);

#endif
