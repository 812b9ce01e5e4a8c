/*
 * Unit tests for the cluster settings in src/cli/config.c: the peers list and its checks,
 * timeouts, --enable-faults, and the INI file's [cluster] and [keyspace NAME] sections
 * (mode = ap and its settings, errors naming file and line).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/config.h"

struct fixture {
    struct config_values values;
    struct server_options options;
    struct errmsg msg;
    char path[64];
};

static int setup(void **state) {
    struct fixture *f = calloc(1, sizeof(*f));
    config_defaults(&f->values);
    snprintf(f->path, sizeof(f->path), "/tmp/capkv-test-config-XXXXXX");
    int fd = mkstemp(f->path);
    if (fd < 0) return -1;
    close(fd);
    *state = f;
    return 0;
}

static int teardown(void **state) {
    struct fixture *f = *state;
    unlink(f->path);
    free(f);
    return 0;
}

static int load(struct fixture *f, const char *text) {
    FILE *file = fopen(f->path, "w");
    fputs(text, file);
    fclose(file);
    return config_load_file(&f->values, f->path, &f->msg);
}

static int args(struct fixture *f, int argc, const char **argv) {
    int rc = config_parse_args(&f->values, argc, (char **)(uintptr_t)argv, &f->msg);
    return rc != 0 ? rc : config_to_options(&f->values, &f->options, &f->msg);
}

static void test_config_peers_fill_node_config(void **state) {
    struct fixture *f = *state;
    const char *argv[] = {"--id", "2", "--peers",
                          "1@127.0.0.1:8001,2@127.0.0.1:8002,3@127.0.0.1:8003"};
    assert_int_equal(args(f, 4, argv), 0);
    assert_int_equal(f->options.node.peer_count, 3);
    assert_int_equal(f->options.node.peers[2].id, 3);
    assert_string_equal(f->options.node.peers[2].addr, "127.0.0.1:8003");
    assert_null(f->options.peer_listen);
    assert_null(config_cluster_warning(&f->options));
    assert_int_equal(f->options.node.election_timeout_ms_min, 200);
    assert_int_equal(f->options.node.election_timeout_ms_max, 400);
    assert_int_equal(f->options.node.heartbeat_ms, 40);
    assert_int_equal(f->options.node.request_timeout_ms, 1000);
    assert_false(f->options.node.enable_faults);
}

static void test_config_no_peers_runs_alone(void **state) {
    struct fixture *f = *state;
    assert_int_equal(args(f, 0, NULL), 0);
    assert_int_equal(f->options.node.peer_count, 0);
    assert_int_equal(f->options.node.keyspace_count, 0);
}

static void assert_peers_refused(const char *peers, uint32_t self, const char *needle) {
    struct node_peer out[NODE_PEERS_MAX];
    uint32_t count = 0;
    struct errmsg msg = {{0}};
    assert_int_equal(config_parse_peers(peers, self, out, &count, &msg), ERR_CONFIG);
    if (strstr(msg.text, needle) == NULL) fail_msg("'%s' lacks '%s'", msg.text, needle);
}

/* Every voter is listed once, this node among them, at most NODE_PEERS_MAX. */
static void test_config_peers_refuses_bad_lists(void **state) {
    (void)state;
    assert_peers_refused("1@127.0.0.1:8001,1@127.0.0.1:8002", 1, "twice");
    assert_peers_refused("1@127.0.0.1:8001,2@127.0.0.1:8002", 3, "not in the list");
    assert_peers_refused("0@127.0.0.1:8001", 1, "1..1000000");
    assert_peers_refused("x@127.0.0.1:8001", 1, "1..1000000");
    assert_peers_refused("127.0.0.1:8001", 1, "ID@HOST:PORT");
    assert_peers_refused("1@localhost:8001", 1, "numeric");
    assert_peers_refused("1@127.0.0.1:99999", 1, "port");
    assert_peers_refused("1@127.0.0.1:8001,", 1, "ID@HOST:PORT");
    char many[1024] = "";
    for (int i = 1; i <= NODE_PEERS_MAX + 1; i++) {
        char item[32];
        snprintf(item, sizeof(item), "%s%d@127.0.0.1:%d", i > 1 ? "," : "", i, 8000 + i);
        strcat(many, item);
    }
    assert_peers_refused(many, 1, "more than");
}

/* Quorum: 4 voters survive one failure, like 3. */
static void test_config_warns_about_even_cluster_size(void **state) {
    struct fixture *f = *state;
    const char *argv[] = {"--peers", "1@127.0.0.1:8001,2@127.0.0.1:8002"};
    assert_int_equal(args(f, 2, argv), 0);
    assert_non_null(config_cluster_warning(&f->options));
}

static void test_config_enable_faults_flag_takes_no_value(void **state) {
    struct fixture *f = *state;
    const char *argv[] = {"--enable-faults", "--id", "3"};
    assert_int_equal(args(f, 3, argv), 0);
    assert_true(f->options.node.enable_faults);
    assert_int_equal(f->options.node.id, 3);
}

static void test_config_refuses_inverted_election_timeouts(void **state) {
    struct fixture *f = *state;
    const char *argv[] = {"--election-timeout-min", "700"};
    assert_int_equal(args(f, 2, argv), ERR_CONFIG);
    assert_non_null(strstr(f->msg.text, "election-timeout-max"));
    const char *argv2[] = {"--election-timeout-min", "300", "--heartbeat", "200"};
    assert_int_equal(args(f, 4, argv2), ERR_CONFIG);
    assert_non_null(strstr(f->msg.text, "heartbeat"));
}

static void test_config_ini_cluster_and_keyspaces(void **state) {
    struct fixture *f = *state;
    assert_int_equal(load(f, "[node]\nid = 2\npeer-listen = 127.0.0.1:9002\n"
                             "[cluster]\npeers = 1@127.0.0.1:9001,2@127.0.0.1:9002,"
                             "3@127.0.0.1:9003\nheartbeat = 40\nenable-faults = yes\n"
                             "[keyspace payments]\nmatch = pay:*, acct:*\nmode = cp\n"
                             "replication = all\nconsistency = lease\n"
                             "[keyspace default]\nmode = cp\n"),
                     0);
    assert_int_equal(config_to_options(&f->values, &f->options, &f->msg), 0);
    const struct node_config *c = &f->options.node;
    assert_int_equal(c->peer_count, 3);
    assert_int_equal(c->heartbeat_ms, 40);
    assert_true(c->enable_faults);
    assert_string_equal(f->options.peer_listen, "127.0.0.1:9002");
    assert_int_equal(c->keyspace_count, 2);
    assert_string_equal(c->keyspaces[0].name, "payments");
    assert_int_equal(c->keyspaces[0].match_count, 2);
    assert_string_equal(c->keyspaces[0].match[0], "pay:*");
    assert_string_equal(c->keyspaces[0].match[1], "acct:*");
    assert_int_equal(c->keyspaces[0].replication, KEYSPACE_REPLICATION_ALL);
    assert_int_equal(c->keyspaces[0].consistency, KEYSPACE_CONSISTENCY_LEASE);
    assert_string_equal(c->keyspaces[1].name, "default");
    assert_int_equal(c->keyspaces[1].match_count, 1);
    assert_string_equal(c->keyspaces[1].match[0], "*");
    assert_int_equal(c->keyspaces[1].replication, KEYSPACE_REPLICATION_MAJORITY);
    assert_int_equal(c->keyspaces[1].consistency, KEYSPACE_CONSISTENCY_LINEARIZABLE);
}

static void assert_load_refused(struct fixture *f, const char *text, const char *needle) {
    config_defaults(&f->values);
    assert_int_equal(load(f, text), ERR_CONFIG);
    if (strstr(f->msg.text, needle) == NULL) fail_msg("'%s' lacks '%s'", f->msg.text, needle);
    if (strstr(f->msg.text, f->path) == NULL) fail_msg("'%s' names no file", f->msg.text);
}

/* mode = ap with its settings loads; the AP settings are checked (values, and that they sit
 * in an ap keyspace), and replication (a CP setting) is refused on an ap keyspace. */
static void test_config_ini_ap_keyspaces(void **state) {
    struct fixture *f = *state;
    config_defaults(&f->values);
    assert_int_equal(load(f, "[keyspace carts]\nmatch = cart:*\nmode = ap\nconflict = crdt\n"
                             "n = 3\nw = one\nr = quorum\nhinted-handoff = off\n"),
                     0);
    const struct keyspace *k = &f->values.keyspaces[0];
    assert_int_equal(k->mode, KEYSPACE_MODE_AP);
    assert_int_equal(k->conflict, KEYSPACE_CONFLICT_CRDT);
    assert_int_equal(k->n, 3);
    assert_int_equal(k->w, KEYSPACE_QUORUM_ONE);
    assert_int_equal(k->r, KEYSPACE_QUORUM_QUORUM);
    assert_int_equal(k->handoff, KEYSPACE_HANDOFF_OFF);
    assert_load_refused(f, "[keyspace carts]\nmatch = cart:*\nmode = ap\nreplication = all\n",
                        "replication applies to mode = cp keyspaces");
    assert_load_refused(f, "[keyspace carts]\nmatch = cart:*\nconflict = lww\n",
                        "[keyspace carts]: conflict, n, r, w, type and hinted-handoff apply to "
                        "mode = ap keyspaces only");
    assert_load_refused(f, "[keyspace carts]\nn = 10\n",
                        "line 2: keyspace carts: n must be 1 to 9 replicas, not '10'");
    assert_load_refused(f, "[keyspace carts]\nw = 2\n",
                        "line 2: keyspace carts: w must be one, quorum or all, not '2'");
    assert_load_refused(f, "[keyspace carts]\nconflict = mvcc\n",
                        "conflict must be lww, lww-wallclock, siblings or crdt, not 'mvcc'");
    assert_load_refused(f, "[keyspace carts]\ntype = set\n", "type must be pncounter or gcounter");
    assert_load_refused(f, "[keyspace carts]\nhinted-handoff = maybe\n", "must be on or off");
}

static void test_config_ini_errors_name_file_and_line(void **state) {
    struct fixture *f = *state;
    assert_load_refused(f, "[node]\nid = 1\n[replicas]\nx = 1\n", "line 4: unknown section");
    assert_load_refused(f, "[node]\nbogus = 1\n", "line 2: unknown setting 'bogus'");
    assert_load_refused(f, "[cluster]\ndir = /tmp\n", "line 2: dir is a per-node setting");
    assert_load_refused(f, "[keyspace k]\nmatch = a*\nreplication = some\n", "line 3:");
    assert_load_refused(f, "[keyspace k]\nconsistency = eventual\n", "consistency must be");
    assert_load_refused(f, "[keyspace k]\nmode = ca\n", "mode must be cp or ap");
    assert_load_refused(f, "[keyspace k]\ncolour = red\n", "unknown key 'colour'");
    assert_load_refused(f, "[keyspace k]\nmatch = a*,,b*\n", "empty glob");
    assert_load_refused(f, "[keyspace k]\nmode = cp\n", "has no match");
    assert_load_refused(f, "[node]\nenable-faults = maybe\n", "yes or no");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_config_peers_fill_node_config, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_no_peers_runs_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_peers_refuses_bad_lists, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_warns_about_even_cluster_size, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_enable_faults_flag_takes_no_value, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_config_refuses_inverted_election_timeouts, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_config_ini_cluster_and_keyspaces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_ini_ap_keyspaces, setup, teardown),
        cmocka_unit_test_setup_teardown(test_config_ini_errors_name_file_and_line, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
