/* Unit tests for the CP engine: three real node cores in one process, wired by a test
 * network that carries their peer payloads, each on its own in-memory disk. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "core/internal.h"
#include "core/node.h"
#include "storage/memdisk.h"

#define C_NODES 3
#define C_CLIENT 7
#define C_T0 1700000000000ull

struct c_msg {
    uint32_t from;
    uint32_t to;
    size_t bytes;
    uint8_t *data;
};

struct c {
    struct disk disk[C_NODES];
    struct node *node[C_NODES];
    struct node_config config;
    uint64_t now_ms;
    bool cut[C_NODES + 1][C_NODES + 1]; /* cut[a][b]: a's messages to b are lost */
    struct c_msg queue[4096];
    size_t queued;
    char out[C_NODES][65536]; /* what client C_CLIENT received on each node */
};

static void c_effects(struct c *t, int i, const struct node_effects *eff) {
    assert_int_equal(eff->fatal, 0);
    for (size_t k = 0; k < eff->write_count; k++) {
        size_t bytes;
        const uint8_t *data = node_client_output(t->node[i], eff->write_clients[k], &bytes);
        size_t have = strlen(t->out[i]);
        assert_true(have + bytes < sizeof(t->out[i]));
        memcpy(t->out[i] + have, data, bytes);
        t->out[i][have + bytes] = '\0';
        node_client_sent(t->node[i], eff->write_clients[k], bytes);
    }
    for (size_t k = 0; k < eff->peer_send_count; k++) {
        const struct node_peer_send *s = &eff->peer_sends[k];
        if (t->cut[i + 1][s->to]) continue;
        assert_true(t->queued < 4096);
        struct c_msg *m = &t->queue[t->queued++];
        m->from = (uint32_t)i + 1;
        m->to = s->to;
        m->bytes = s->bytes;
        m->data = malloc(s->bytes);
        memcpy(m->data, s->data, s->bytes);
    }
    if (eff->sync_file != NULL) {
        struct errmsg msg;
        assert_int_equal(t->disk[i].sync(&t->disk[i], eff->sync_file, &msg), 0);
        struct node_event ev = {
            .kind = NODE_EVENT_SYNCED, .lsn = eff->sync_lsn, .now_ms = t->now_ms};
        struct node_effects e2;
        node_step(t->node[i], &ev, &e2);
        ev.kind = NODE_EVENT_FLUSH;
        node_step(t->node[i], &ev, &e2);
        c_effects(t, i, &e2);
    }
}

/* One event then a FLUSH, as the shell does per loop turn. */
static void c_step(struct c *t, int i, struct node_event ev) {
    struct node_effects eff;
    ev.now_ms = t->now_ms;
    node_step(t->node[i], &ev, &eff);
    assert_int_equal(eff.fatal, 0);
    struct node_event flush = {.kind = NODE_EVENT_FLUSH, .now_ms = t->now_ms};
    node_step(t->node[i], &flush, &eff);
    c_effects(t, i, &eff);
}

static void c_deliver_all(struct c *t) {
    for (int rounds = 0; rounds < 50 && t->queued > 0; rounds++) {
        size_t n = t->queued;
        struct c_msg batch[4096];
        memcpy(batch, t->queue, n * sizeof(batch[0]));
        t->queued = 0;
        for (size_t k = 0; k < n; k++) {
            struct c_msg *m = &batch[k];
            if (!t->cut[m->from][m->to]) {
                c_step(t, (int)m->to - 1,
                       (struct node_event){.kind = NODE_EVENT_PEER_MESSAGE,
                                           .peer_id = m->from,
                                           .data = m->data,
                                           .bytes = m->bytes});
            }
            free(m->data);
        }
    }
}

/* Advances time by ms in 10 ms ticks, delivering messages after each. */
static void c_run(struct c *t, uint64_t ms) {
    for (uint64_t done = 0; done < ms; done += 10) {
        t->now_ms += 10;
        for (int i = 0; i < C_NODES; i++) {
            if (t->node[i] != NULL) c_step(t, i, (struct node_event){.kind = NODE_EVENT_TICK});
        }
        c_deliver_all(t);
    }
}

static int c_leader(struct c *t) {
    for (int i = 0; i < C_NODES; i++) {
        if (raft_role(t->node[i]->cluster->raft) == RAFT_LEADER) return i;
    }
    return -1;
}

static void c_start(struct c *t, int i) {
    struct errmsg msg;
    struct node_config config = t->config;
    config.id = (uint32_t)i + 1;
    config.seed = 1000 + (uint64_t)i;
    int rc = node_new(&config, &t->disk[i], t->now_ms, &t->node[i], &msg);
    if (rc != 0) fail_msg("node_new: %s", msg.text);
    c_step(t, i,
           (struct node_event){
               .kind = NODE_EVENT_CLIENT_OPEN, .client_id = C_CLIENT, .peer_addr = "test"});
}

static int c_setup(void **state) {
    struct c *t = calloc(1, sizeof(*t));
    t->now_ms = C_T0;
    node_config_default(&t->config);
    t->config.peer_count = C_NODES;
    for (uint32_t i = 0; i < C_NODES; i++) t->config.peers[i].id = i + 1;
    t->config.election_timeout_ms_min = 300;
    t->config.election_timeout_ms_max = 600;
    t->config.heartbeat_ms = 50;
    t->config.request_timeout_ms = 1000;
    t->config.enable_faults = true;
    for (int i = 0; i < C_NODES; i++) {
        memdisk_init(&t->disk[i]);
        c_start(t, i);
    }
    *state = t;
    return 0;
}

static int c_teardown(void **state) {
    struct c *t = *state;
    for (size_t k = 0; k < t->queued; k++) free(t->queue[k].data);
    for (int i = 0; i < C_NODES; i++) {
        node_free(t->node[i]);
        memdisk_deinit(&t->disk[i]);
    }
    free(t);
    return 0;
}

/* Sends a request from the test client on node i; returns what it got after ms. */
static const char *c_call(struct c *t, int i, const char *req, uint64_t ms) {
    t->out[i][0] = '\0';
    c_step(t, i,
           (struct node_event){.kind = NODE_EVENT_CLIENT_INPUT,
                               .client_id = C_CLIENT,
                               .data = (const uint8_t *)req,
                               .bytes = strlen(req)});
    c_deliver_all(t);
    c_run(t, ms);
    return t->out[i];
}

static void test_cluster_elects_a_leader_and_replicates_writes(void **state) {
    struct c *t = *state;
    c_run(t, 2000);
    int leader = c_leader(t);
    assert_true(leader >= 0);
    assert_string_equal(c_call(t, leader, "SET a 1\r\nINCR a\r\n", 200), "+OK\r\n:2\r\n");
    int follower = (leader + 1) % C_NODES;
    /* A follower forwards to the leader; a stale read sees its own replica. */
    assert_string_equal(c_call(t, follower, "INCR a\r\nGET a\r\n", 200), ":3\r\n$1\r\n3\r\n");
    assert_string_equal(c_call(t, follower, "CONSISTENCY stale\r\nGET a\r\n", 200),
                        "+OK\r\n$1\r\n3\r\n");
    for (int i = 0; i < C_NODES; i++) assert_int_equal(db_count(t->node[i]->db), 1);
}

/* DESIGN.md: the minority side refuses rather than serve stale data or lose writes. */
static void test_cluster_minority_refuses_and_majority_goes_on(void **state) {
    struct c *t = *state;
    c_run(t, 2000);
    int old = c_leader(t);
    assert_true(old >= 0);
    assert_string_equal(c_call(t, old, "SET k before\r\n", 200), "+OK\r\n");
    for (int i = 1; i <= C_NODES; i++) {
        if (i == old + 1) continue;
        t->cut[old + 1][i] = true;
        t->cut[i][old + 1] = true;
    }
    /* Within the request timeout the isolated leader cannot confirm anything. */
    const char *r = c_call(t, old, "SET k lost?\r\n", 1500);
    assert_true(strncmp(r, "-TIMEOUT", 8) == 0);
    c_run(t, 1500);
    int leader = c_leader(t);
    assert_true(leader >= 0 && leader != old);
    assert_string_equal(c_call(t, leader, "SET k after\r\n", 200), "+OK\r\n");
    r = c_call(t, old, "GET k\r\n", 1200);
    assert_true(strncmp(r, "-NOQUORUM", 9) == 0 || strncmp(r, "-TIMEOUT", 8) == 0);
    memset(t->cut, 0, sizeof(t->cut));
    c_run(t, 2000);
    for (int i = 0; i < C_NODES; i++) {
        struct db_entry *e = db_find(t->node[i]->db, (const uint8_t *)"k", 1);
        assert_non_null(e);
        size_t bytes;
        assert_memory_equal(db_entry_string(e, &bytes), "after", 5);
    }
}

static void test_cluster_transactions_apply_atomically_everywhere(void **state) {
    struct c *t = *state;
    c_run(t, 2000);
    int leader = c_leader(t);
    assert_string_equal(
        c_call(t, leader, "MULTI\r\nSET x 1\r\nINCR x\r\nSADD s a\r\nEXEC\r\n", 200),
        "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n+OK\r\n:2\r\n:1\r\n");
    assert_string_equal(c_call(t, leader, "WATCH x\r\n", 50),
                        "-ERR WATCH is not supported on replicated (CP) data yet: use SET key "
                        "value IFEQ old for compare-and-set, or MULTI/EXEC, which runs "
                        "atomically\r\n");
    c_run(t, 200);
    for (int i = 0; i < C_NODES; i++) assert_int_equal(db_count(t->node[i]->db), 2);
}

static void test_cluster_restart_recovers_from_the_raft_log(void **state) {
    struct c *t = *state;
    c_run(t, 2000);
    int leader = c_leader(t);
    assert_string_equal(c_call(t, leader, "SET a 1\r\nSET b 2 PX 100000\r\n", 200),
                        "+OK\r\n+OK\r\n");
    int follower = (leader + 1) % C_NODES;
    memdisk_crash(&t->disk[follower], true, 77);
    node_free(t->node[follower]);
    c_start(t, follower);
    c_run(t, 2000);
    assert_int_equal(db_count(t->node[follower]->db), 2);
    assert_string_equal(c_call(t, follower, "CONSISTENCY stale\r\nGET a\r\nPTTL b\r\n", 50) + 5,
                        "$1\r\n1\r\n:97800\r\n");
}

/* DESIGN.md: FAULT PARTITION drops peer traffic across the cut; client ports stay open. */
static void test_cluster_fault_partition_isolates_and_heal_restores(void **state) {
    struct c *t = *state;
    c_run(t, 2000);
    int old = c_leader(t);
    assert_true(old >= 0);
    char cut[32];
    snprintf(cut, sizeof(cut), "FAULT PARTITION %d|%d,%d\r\n", old + 1, (old + 1) % 3 + 1,
             (old + 2) % 3 + 1);
    for (int i = 0; i < C_NODES; i++) assert_string_equal(c_call(t, i, cut, 0), "+OK\r\n");
    c_run(t, 2500);
    int leader = c_leader(t);
    assert_true(leader >= 0 && leader != old);
    assert_true(strncmp(c_call(t, old, "SET k v\r\n", 10), "-NOQUORUM", 9) == 0);
    assert_string_equal(c_call(t, leader, "SET k majority\r\n", 200), "+OK\r\n");
    assert_string_equal(c_call(t, old, "FAULT PARTITION 1|2\r\n", 0),
                        "-ERR partition must name every node once, like 1,2|3\r\n");
    for (int i = 0; i < C_NODES; i++)
        assert_string_equal(c_call(t, i, "FAULT HEAL\r\n", 0), "+OK\r\n");
    c_run(t, 1500);
    assert_string_equal(c_call(t, old, "GET k\r\n", 200), "$8\r\nmajority\r\n");
}

/* Thesis §6.4.1: while its lease holds the leader answers a lease read at once, with no
 * heartbeat round; a follower forwards it; once cut off, the lease lapses. */
static void test_cluster_lease_reads_skip_the_round_trip_only_while_the_lease_holds(void **state) {
    struct c *t = *state;
    c_run(t, 2000);
    int leader = c_leader(t);
    assert_string_equal(c_call(t, leader, "SET a 1\r\n", 200), "+OK\r\n");
    /* No time passes and no message is delivered: only a local read can answer. */
    t->out[leader][0] = '\0';
    const char *req = "CONSISTENCY lease\r\nGET a\r\n";
    c_step(t, leader,
           (struct node_event){.kind = NODE_EVENT_CLIENT_INPUT,
                               .client_id = C_CLIENT,
                               .data = (const uint8_t *)req,
                               .bytes = strlen(req)});
    assert_string_equal(t->out[leader], "+OK\r\n$1\r\n1\r\n");
    c_deliver_all(t);
    for (int i = 1; i <= C_NODES; i++) {
        t->cut[leader + 1][i] = true;
        t->cut[i][leader + 1] = true;
    }
    c_run(t, 400);
    t->out[leader][0] = '\0';
    req = "GET a\r\n";
    c_step(t, leader,
           (struct node_event){.kind = NODE_EVENT_CLIENT_INPUT,
                               .client_id = C_CLIENT,
                               .data = (const uint8_t *)req,
                               .bytes = strlen(req)});
    assert_string_equal(t->out[leader], "");
}

/* Redis's WAIT: blocks until n replicas hold the client's last write, or the timeout. */
static void test_cluster_wait_counts_replicas_of_the_last_write(void **state) {
    struct c *t = *state;
    c_run(t, 2000);
    int leader = c_leader(t);
    assert_string_equal(c_call(t, leader, "SET a 1\r\nWAIT 2 1000\r\n", 300), "+OK\r\n:2\r\n");
    int lost = (leader + 1) % C_NODES;
    t->cut[leader + 1][lost + 1] = true;
    t->cut[lost + 1][leader + 1] = true;
    assert_string_equal(c_call(t, leader, "SET a 2\r\nWAIT 2 300\r\n", 600), "+OK\r\n:1\r\n");
    assert_true(strncmp(c_call(t, lost, "WAIT 1 0\r\n", 10), "-ERR WAIT counts", 16) == 0);
}

static void test_cluster_fault_commands_need_enable_faults(void **state) {
    struct c *t = *state;
    node_free(t->node[0]);
    t->config.enable_faults = false;
    c_start(t, 0);
    assert_string_equal(
        c_call(t, 0, "FAULT HEAL\r\n", 0),
        "-ERR fault injection is disabled: start the node with --enable-faults\r\n");
}

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, c_setup, c_teardown)
    const struct CMUnitTest tests[] = {
        T(test_cluster_elects_a_leader_and_replicates_writes),
        T(test_cluster_minority_refuses_and_majority_goes_on),
        T(test_cluster_transactions_apply_atomically_everywhere),
        T(test_cluster_restart_recovers_from_the_raft_log),
        T(test_cluster_fault_partition_isolates_and_heal_restores),
        T(test_cluster_fault_commands_need_enable_faults),
        T(test_cluster_wait_counts_replicas_of_the_last_write),
        T(test_cluster_lease_reads_skip_the_round_trip_only_while_the_lease_holds),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
