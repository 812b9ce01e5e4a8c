/* Unit tests for the CP engine (src/cp): three real node cores in one process, wired by a
 * test network that carries their peer payloads, each on its own in-memory disk. */
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
#include "cp/internal.h"
#include "cmd/op.h"
#include "raft/msg_codec.h"
#include "storage/memdisk.h"
#include "storage/raftstore.h"

#define C_NODES 3
#define C_CLIENT 7
#define C_OTHER 8 /* a second client, opened where a test needs it */
#define C_THIRD 9
#define C_T0 1700000000000ull
#define C_STASH_MAX 256

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
    uint32_t drop_acks_to;              /* nonzero: Raft append acks to this node are lost */
    uint32_t drop_chunks_to;            /* nonzero: every drop_chunk_every-th snapshot chunk */
    uint32_t drop_chunk_every;          /* to this node is lost */
    uint32_t drop_chunks_after;         /* nonzero: every chunk after this many is lost */
    uint32_t chunks_seen;
    struct c_msg queue[4096];
    size_t queued;
    char out[C_NODES][65536]; /* what client C_CLIENT received on each node */
    bool allow_fatal;         /* record a node's fatal (and stop stepping it), not fail */
    int fatal[C_NODES];
    /* hold_sync[i]: node i's sync stays in flight (held_sync_*) until c_sync_release, as a
     * shell's worker thread may take its time; c_effects would run it at once. */
    bool hold_sync[C_NODES];
    struct disk_file *held_sync_file[C_NODES];
    uint64_t held_sync_lsn[C_NODES];
    /* Raft messages from stash_from to stash_to whose type is in stash_types (a mask of
     * 1 << type) are kept in stash, in arrival order, instead of being delivered. */
    uint32_t stash_from;
    uint32_t stash_to;
    uint32_t stash_types;
    struct c_msg stash[C_STASH_MAX];
    size_t stashed;
};

static void c_check_fatal(struct c *t, int i, int fatal) {
    if (!t->allow_fatal) assert_int_equal(fatal, 0);
    if (t->fatal[i] == 0) t->fatal[i] = fatal;
}

static void c_effects(struct c *t, int i, const struct node_effects *eff) {
    c_check_fatal(t, i, eff->fatal);
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
    if (eff->sync_file != NULL && t->hold_sync[i]) {
        assert_null(t->held_sync_file[i]); /* the engine runs one sync at a time */
        t->held_sync_file[i] = eff->sync_file;
        t->held_sync_lsn[i] = eff->sync_lsn;
    } else if (eff->sync_file != NULL) {
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
    if (t->fatal[i] != 0) return; /* stopped: a shell ends the process */
    ev.now_ms = t->now_ms;
    node_step(t->node[i], &ev, &eff);
    c_check_fatal(t, i, eff.fatal);
    struct node_event flush = {.kind = NODE_EVENT_FLUSH, .now_ms = t->now_ms};
    node_step(t->node[i], &flush, &eff);
    c_effects(t, i, &eff);
}

/* Decodes a payload that carries a Raft message (an InstallSnapshot's comes after its
 * chunks, cp_xfer.c); false for any other. rm's entries point into a static array, valid
 * until the next call. */
static bool c_decode(const struct c_msg *m, struct raft_message *rm) {
    static struct raft_entry entries[RAFT_MSG_ENTRIES_MAX];
    if (m->bytes < 2 || m->data[0] != ENGINE_CP) return false;
    if (m->data[1] != CP_PEER_RAFT && m->data[1] != CP_PEER_SNAP_INSTALL) return false;
    return raft_msg_decode(m->data + 2, m->bytes - 2, rm, entries) == 0;
}

static bool c_dropped(struct c *t, const struct c_msg *m) {
    if (t->cut[m->from][m->to]) return true;
    if (t->drop_chunks_to == m->to && m->bytes > 1 && m->data[1] == CP_PEER_SNAP_CHUNK) {
        t->chunks_seen++;
        if (t->drop_chunk_every != 0 && t->chunks_seen % t->drop_chunk_every == 0) return true;
        if (t->drop_chunks_after != 0 && t->chunks_seen > t->drop_chunks_after) return true;
    }
    if (t->drop_acks_to != m->to) return false;
    struct raft_message rm;
    return c_decode(m, &rm) && rm.type == RAFT_MSG_APPEND_RESP;
}

static bool c_stashed(struct c *t, const struct c_msg *m) {
    struct raft_message rm;
    if (t->stash_from != m->from || t->stash_to != m->to || !c_decode(m, &rm)) return false;
    if ((t->stash_types & (1u << rm.type)) == 0) return false;
    assert_true(t->stashed < C_STASH_MAX);
    t->stash[t->stashed++] = *m;
    return true;
}

static void c_deliver_all(struct c *t) {
    for (int rounds = 0; rounds < 50 && t->queued > 0; rounds++) {
        size_t n = t->queued;
        struct c_msg batch[4096];
        memcpy(batch, t->queue, n * sizeof(batch[0]));
        t->queued = 0;
        for (size_t k = 0; k < n; k++) {
            struct c_msg *m = &batch[k];
            if (c_stashed(t, m)) continue; /* the stash owns it now */
            if (!c_dropped(t, m)) {
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
        if (raft_role(cp_engine_raft(node_engine(t->node[i]))) == RAFT_LEADER) return i;
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

static int c_setup_with(void **state, uint64_t snapshot_entries) {
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
    t->config.snapshot_entries = snapshot_entries;
    for (int i = 0; i < C_NODES; i++) {
        memdisk_init(&t->disk[i]);
        c_start(t, i);
    }
    *state = t;
    return 0;
}

static int c_setup(void **state) {
    return c_setup_with(state, 0);
}

/* Snapshots scanned about 10 keys a step, so writes land in the middle of one. */
static int c_setup_slow_scans(void **state) {
    int rc = c_setup_with(state, 0);
    struct c *t = *state;
    t->config.snapshot_scans_per_step = 1;
    for (int i = 0; i < C_NODES; i++) { /* again, with it */
        node_free(t->node[i]);
        memdisk_deinit(&t->disk[i]);
        memdisk_init(&t->disk[i]);
        c_start(t, i);
    }
    return rc;
}

/* Snapshots every 10 applied entries, so a leader compacts its log past a follower soon. */
static int c_setup_small_snapshots(void **state) {
    return c_setup_with(state, 10);
}

/* Ends node i's held sync as a shell does when its worker thread reports: the disk syncs,
 * then SYNCED and a FLUSH. */
static void c_sync_release(struct c *t, int i) {
    struct disk_file *file = t->held_sync_file[i];
    assert_non_null(file);
    t->held_sync_file[i] = NULL;
    struct errmsg msg;
    assert_int_equal(t->disk[i].sync(&t->disk[i], file, &msg), 0);
    c_step(t, i, (struct node_event){.kind = NODE_EVENT_SYNCED, .lsn = t->held_sync_lsn[i]});
}

static int c_teardown(void **state) {
    struct c *t = *state;
    for (size_t k = 0; k < t->queued; k++) free(t->queue[k].data);
    for (size_t k = 0; k < t->stashed; k++) free(t->stash[k].data);
    for (int i = 0; i < C_NODES; i++) {
        t->hold_sync[i] = false;
        if (t->held_sync_file[i] != NULL) c_sync_release(t, i); /* a test failed midway */
        node_free(t->node[i]);
        memdisk_deinit(&t->disk[i]);
    }
    free(t);
    return 0;
}

static void c_open(struct c *t, int i, uint64_t client) {
    c_step(t, i,
           (struct node_event){
               .kind = NODE_EVENT_CLIENT_OPEN, .client_id = client, .peer_addr = "test"});
}

/* Sends a request from client on node i; returns what node i's clients got after ms. */
static const char *c_call_as(struct c *t, int i, uint64_t client, const char *req, uint64_t ms) {
    t->out[i][0] = '\0';
    c_step(t, i,
           (struct node_event){.kind = NODE_EVENT_CLIENT_INPUT,
                               .client_id = client,
                               .data = (const uint8_t *)req,
                               .bytes = strlen(req)});
    c_deliver_all(t);
    c_run(t, ms);
    return t->out[i];
}

/* Sends a request from the test client on node i; returns what it got after ms. */
static const char *c_call(struct c *t, int i, const char *req, uint64_t ms) {
    return c_call_as(t, i, C_CLIENT, req, ms);
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
    for (int i = 0; i < C_NODES; i++)
        assert_int_equal(db_count(cp_engine_db(node_engine(t->node[i]))), 1);
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
        struct db_entry *e =
            db_find(cp_engine_db(node_engine(t->node[i])), (const uint8_t *)"k", 1);
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
    c_run(t, 200);
    for (int i = 0; i < C_NODES; i++)
        assert_int_equal(db_count(cp_engine_db(node_engine(t->node[i]))), 2);
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
    assert_int_equal(db_count(cp_engine_db(node_engine(t->node[follower]))), 2);
    assert_string_equal(c_call(t, follower, "CONSISTENCY stale\r\nGET a\r\nPTTL b\r\n", 50) + 5,
                        "$1\r\n1\r\n:97800\r\n");
}

/* FAULT PAUSE freezes a node's Raft (no ticks, no peer traffic): the others elect a leader
 * meanwhile; the paused one learns it only when the pause ends, and its lease runs out. */
static void test_cluster_fault_pause_freezes_the_engines_of_a_node(void **state) {
    struct c *t = *state;
    c_run(t, 2000);
    int old = c_leader(t);
    assert_true(old >= 0);
    uint64_t term = raft_term(cp_engine_raft(node_engine(t->node[old])));
    assert_string_equal(c_call(t, old, "FAULT PAUSE 3000\r\n", 0), "+OK\r\n");
    assert_string_equal(c_call(t, old, "SET p 1\r\n", 2000), ""); /* waits: frozen */
    int other = (old + 1) % C_NODES;
    int third = (old + 2) % C_NODES;
    bool elected = raft_role(cp_engine_raft(node_engine(t->node[other]))) == RAFT_LEADER ||
                   raft_role(cp_engine_raft(node_engine(t->node[third]))) == RAFT_LEADER;
    assert_true(elected);
    assert_int_equal(raft_term(cp_engine_raft(node_engine(t->node[old]))),
                     term); /* heard nothing */
    assert_int_equal(raft_role(cp_engine_raft(node_engine(t->node[old]))), RAFT_LEADER);
    /* Its clock ran on, so its lease is over: a lease read there is not answered from its
     * stale replica (the new leader's write is missing from it). */
    assert_string_equal(c_call(t, other, "SET q 2\r\n", 300), "+OK\r\n");
    c_open(t, old, C_OTHER);
    const char *lease = c_call_as(t, old, C_OTHER, "CONSISTENCY lease\r\nGET q\r\n", 10);
    assert_true(strncmp(lease, "+OK\r\n", 5) == 0);
    assert_null(strstr(lease, "$-1"));
    c_run(t, 2000); /* the pause ends: the write is answered, never silently lost */
    const char *reply = t->out[old]; /* both clients' output on that node */
    assert_true(strstr(reply, "-TIMEOUT") != NULL || strstr(reply, "-TRYAGAIN") != NULL);
    assert_true(raft_term(cp_engine_raft(node_engine(t->node[old]))) > term);
    assert_int_not_equal(raft_role(cp_engine_raft(node_engine(t->node[old]))), RAFT_LEADER);
}

/* FAULT DELAY holds this node's payloads to one peer back for that long, then sends them. */
static void test_cluster_fault_delay_holds_payloads_to_a_peer(void **state) {
    struct c *t = *state;
    c_run(t, 2000);
    int leader = c_leader(t);
    int follower = (leader + 1) % C_NODES;
    char cmd[64];
    snprintf(cmd, sizeof(cmd), "FAULT DELAY %d 300\r\n", leader + 1);
    assert_string_equal(c_call(t, follower, cmd, 0), "+OK\r\n");
    assert_string_equal(c_call(t, follower, "SET d 1\r\n", 200), ""); /* the forward waits */
    c_run(t, 300);
    assert_string_equal(t->out[follower], "+OK\r\n");
    assert_string_equal(c_call(t, follower, "FAULT HEAL\r\nSET d 2\r\n", 50), "+OK\r\n+OK\r\n");
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
    assert_true(strncmp(c_call(t, lost, "WAIT 1 0\r\n", 10), "-ERR node ", 10) == 0);
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

static void c_assert_string_everywhere(struct c *t, const char *key, const char *value) {
    for (int i = 0; i < C_NODES; i++) {
        struct db_entry *e =
            db_find(cp_engine_db(node_engine(t->node[i])), (const uint8_t *)key, strlen(key));
        assert_non_null(e);
        size_t bytes;
        const uint8_t *data = db_entry_string(e, &bytes);
        assert_int_equal(bytes, strlen(value));
        assert_memory_equal(data, value, bytes);
    }
}

/* Redis WATCH: EXEC fails (a null reply, nothing runs) when another client changed a
 * watched key after WATCH; EXEC clears the watch either way. */
static void test_cluster_watch_aborts_exec_after_another_client_changes_the_key(void **state) {
    struct c *t = *state;
    c_run(t, 2000);
    int leader = c_leader(t);
    c_open(t, leader, C_OTHER);
    assert_string_equal(c_call(t, leader, "SET x 1\r\nWATCH x\r\n", 200), "+OK\r\n+OK\r\n");
    assert_string_equal(c_call_as(t, leader, C_OTHER, "SET x 2\r\n", 200), "+OK\r\n");
    assert_string_equal(c_call(t, leader, "MULTI\r\nSET x 3\r\nEXEC\r\n", 200),
                        "+OK\r\n+QUEUED\r\n*-1\r\n");
    c_assert_string_everywhere(t, "x", "2");
    assert_string_equal(c_call(t, leader, "MULTI\r\nSET x 3\r\nEXEC\r\n", 200),
                        "+OK\r\n+QUEUED\r\n*1\r\n+OK\r\n");
    /* RESP3 says null as _. */
    c_call(t, leader, "HELLO 3\r\n", 0);
    assert_string_equal(c_call(t, leader, "WATCH x y\r\n", 200), "+OK\r\n");
    assert_string_equal(c_call_as(t, leader, C_OTHER, "DEL y\r\nSET y 1\r\n", 200),
                        ":0\r\n+OK\r\n");
    assert_string_equal(c_call(t, leader, "MULTI\r\nGET x\r\nEXEC\r\n", 200),
                        "+OK\r\n+QUEUED\r\n_\r\n");
    c_assert_string_everywhere(t, "x", "3");
}

/* Redis WATCH: untouched keys let EXEC run; UNWATCH and DISCARD forget the keys. */
static void test_cluster_watch_lets_exec_run_when_the_keys_are_untouched(void **state) {
    struct c *t = *state;
    c_run(t, 2000);
    int leader = c_leader(t);
    c_open(t, leader, C_OTHER);
    assert_string_equal(c_call(t, leader, "SET x 1\r\nWATCH x y\r\nGET x\r\n", 200),
                        "+OK\r\n+OK\r\n$1\r\n1\r\n");
    assert_string_equal(c_call_as(t, leader, C_OTHER, "SET z 1\r\n", 200), "+OK\r\n");
    assert_string_equal(c_call(t, leader, "MULTI\r\nINCR x\r\nEXEC\r\n", 200),
                        "+OK\r\n+QUEUED\r\n*1\r\n:2\r\n");
    assert_string_equal(c_call(t, leader, "WATCH x\r\nUNWATCH\r\n", 200), "+OK\r\n+OK\r\n");
    assert_string_equal(c_call_as(t, leader, C_OTHER, "INCR x\r\n", 200), ":3\r\n");
    assert_string_equal(c_call(t, leader, "MULTI\r\nINCR x\r\nEXEC\r\n", 200),
                        "+OK\r\n+QUEUED\r\n*1\r\n:4\r\n");
    assert_string_equal(c_call(t, leader, "WATCH x\r\nMULTI\r\nDISCARD\r\n", 200),
                        "+OK\r\n+OK\r\n+OK\r\n");
    assert_string_equal(c_call_as(t, leader, C_OTHER, "INCR x\r\n", 200), ":5\r\n");
    /* A transaction of reads only is decided by the leader too. */
    assert_string_equal(c_call(t, leader, "WATCH x\r\nMULTI\r\nGET x\r\nEXEC\r\n", 200),
                        "+OK\r\n+OK\r\n+QUEUED\r\n*1\r\n$1\r\n5\r\n");
    c_assert_string_everywhere(t, "x", "5");
}

/* WATCH and EXEC through a follower (forwarded to the leader), a change made through the
 * other follower; and a stale WATCH, which records the follower's own applied index. */
static void test_cluster_watch_sees_changes_made_through_another_node(void **state) {
    struct c *t = *state;
    c_run(t, 2000);
    int leader = c_leader(t);
    int f1 = (leader + 1) % C_NODES;
    int f2 = (leader + 2) % C_NODES;
    c_open(t, f2, C_OTHER);
    c_open(t, leader, C_OTHER);
    assert_string_equal(c_call(t, f1, "SET x 1\r\nWATCH x\r\nGET x\r\n", 200),
                        "+OK\r\n+OK\r\n$1\r\n1\r\n");
    assert_string_equal(c_call_as(t, f2, C_OTHER, "SET x changed\r\n", 200), "+OK\r\n");
    assert_string_equal(c_call(t, f1, "MULTI\r\nSET x mine\r\nEXEC\r\n", 200),
                        "+OK\r\n+QUEUED\r\n*-1\r\n");
    c_assert_string_everywhere(t, "x", "changed");
    assert_string_equal(c_call(t, f1, "WATCH x\r\nMULTI\r\nSET x mine\r\nEXEC\r\n", 200),
                        "+OK\r\n+OK\r\n+QUEUED\r\n*1\r\n+OK\r\n");
    c_assert_string_everywhere(t, "x", "mine");
    assert_string_equal(c_call(t, f1, "CONSISTENCY stale\r\nWATCH x\r\n", 200), "+OK\r\n+OK\r\n");
    assert_string_equal(c_call_as(t, leader, C_OTHER, "SET x again\r\n", 200), "+OK\r\n");
    assert_string_equal(c_call(t, f1, "MULTI\r\nSET x mine\r\nEXEC\r\n", 200),
                        "+OK\r\n+QUEUED\r\n*-1\r\n");
    c_assert_string_everywhere(t, "x", "again");
}

/* Expiry changes a key with no entry naming it, FLUSHALL changes every key: both abort a
 * watching EXEC; a key whose expiry is still ahead does not. */
static void test_cluster_watch_counts_expiry_and_flushall_as_changes(void **state) {
    struct c *t = *state;
    c_run(t, 2000);
    int leader = c_leader(t);
    c_open(t, leader, C_OTHER);
    assert_string_equal(c_call(t, leader, "SET e 1 PX 300\r\nWATCH e\r\n", 50), "+OK\r\n+OK\r\n");
    c_run(t, 1000);
    assert_int_equal(db_count(cp_engine_db(node_engine(t->node[leader]))), 0); /* swept */
    assert_string_equal(c_call(t, leader, "MULTI\r\nSET e 2\r\nEXEC\r\n", 200),
                        "+OK\r\n+QUEUED\r\n*-1\r\n");
    assert_string_equal(c_call(t, leader, "SET p 1 PX 100000\r\nWATCH p\r\n", 200),
                        "+OK\r\n+OK\r\n");
    assert_string_equal(c_call(t, leader, "MULTI\r\nINCR p\r\nEXEC\r\n", 200),
                        "+OK\r\n+QUEUED\r\n*1\r\n:2\r\n");
    assert_string_equal(c_call(t, leader, "WATCH p\r\n", 200), "+OK\r\n");
    assert_string_equal(c_call_as(t, leader, C_OTHER, "FLUSHALL\r\nSET p 2\r\n", 200),
                        "+OK\r\n+OK\r\n");
    assert_string_equal(c_call(t, leader, "MULTI\r\nINCR p\r\nEXEC\r\n", 200),
                        "+OK\r\n+QUEUED\r\n*-1\r\n");
}

/* The map of changed keys has a limit: past it, it is cleared and every key counts as
 * changed, so a WATCH from before aborts (in vain, but never misses a change). */
static void test_cluster_watch_ignores_writes_to_other_keys(void **state) {
    struct c *t = *state;
    c_run(t, 2000);
    int leader = c_leader(t);
    c_open(t, leader, C_OTHER);
    assert_string_equal(c_call(t, leader, "SET a 1\r\nWATCH a\r\n", 200), "+OK\r\n+OK\r\n");
    uint32_t keys = 300; /* each shares a's slot with odds 1 / CLUSTER_WATCH_SLOTS */
    struct buf req;
    buf_init(&req);
    buf_appendf(&req, "*%u\r\n$4\r\nMSET\r\n", 1 + 2 * keys);
    for (uint32_t i = 0; i < keys; i++) {
        char key[16];
        int n = snprintf(key, sizeof(key), "k%u", i);
        buf_appendf(&req, "$%d\r\n%s\r\n$1\r\nv\r\n", n, key);
    }
    buf_append_byte(&req, 0);
    assert_string_equal(c_call_as(t, leader, C_OTHER, (const char *)req.data, 300), "+OK\r\n");
    buf_deinit(&req);
    assert_int_equal(db_count(cp_engine_db(node_engine(t->node[leader]))), keys + 1);
    assert_string_equal(c_call(t, leader, "MULTI\r\nINCR a\r\nEXEC\r\n", 200),
                        "+OK\r\n+QUEUED\r\n*1\r\n:2\r\n");
    /* ... while a write to the watched key itself still aborts. */
    assert_string_equal(c_call(t, leader, "WATCH a\r\n", 200), "+OK\r\n");
    assert_string_equal(c_call_as(t, leader, C_OTHER, "SET a 7\r\n", 200), "+OK\r\n");
    assert_string_equal(c_call(t, leader, "MULTI\r\nINCR a\r\nEXEC\r\n", 200),
                        "+OK\r\n+QUEUED\r\n*-1\r\n");
}

/* A WATCH that cannot be served is answered with the error and watches nothing. */
static void test_cluster_watch_without_a_leader_fails_and_watches_nothing(void **state) {
    struct c *t = *state;
    const char *r = c_call(t, 0, "WATCH x\r\n", 0);
    assert_true(strncmp(r, "-NOQUORUM", 9) == 0);
    struct client *c = node_client_find(t->node[0], C_CLIENT);
    assert_int_equal(c->watch_count, 0);
    assert_int_equal(c->watched.len, 0);
    c_run(t, 2000);
    assert_string_equal(c_call(t, 0, "WATCH x\r\nWATCH y z\r\n", 200), "+OK\r\n+OK\r\n");
    assert_int_equal(c->watch_count, 3);
    assert_int_equal(c->watch_pending, 0);
}

/* Sends a request without letting time pass or delivering anything; returns the output. */
static const char *c_input_as(struct c *t, int i, uint64_t client, const char *req) {
    t->out[i][0] = '\0';
    c_step(t, i,
           (struct node_event){.kind = NODE_EVENT_CLIENT_INPUT,
                               .client_id = client,
                               .data = (const uint8_t *)req,
                               .bytes = strlen(req)});
    return t->out[i];
}

/* The leader's own entries not yet applied count: it notes their keys when it proposes. */
static void test_cluster_watch_counts_writes_the_leader_has_not_applied_yet(void **state) {
    struct c *t = *state;
    c_run(t, 2000);
    int leader = c_leader(t);
    c_open(t, leader, C_OTHER);
    assert_string_equal(c_call(t, leader, "SET x 1\r\nWATCH x\r\n", 200), "+OK\r\n+OK\r\n");
    uint64_t applied = cp_engine_applied(node_engine(t->node[leader]));
    /* Proposed, not committed: no follower has heard of it yet. */
    assert_string_equal(c_input_as(t, leader, C_OTHER, "SET x 2\r\n"), "");
    assert_string_equal(c_input_as(t, leader, C_CLIENT, "MULTI\r\nSET x 3\r\nEXEC\r\n"),
                        "+OK\r\n+QUEUED\r\n*-1\r\n");
    assert_int_equal(cp_engine_applied(node_engine(t->node[leader])), applied);
    c_deliver_all(t);
    c_run(t, 200);
    c_assert_string_everywhere(t, "x", "2");
}

/* A key that expires between WATCH and EXEC changes although no entry names it yet: the
 * leader aborts when the expiry has passed by its clock, before any sweep. */
static void test_cluster_watch_counts_an_expiry_not_swept_yet(void **state) {
    struct c *t = *state;
    c_run(t, 2000);
    int leader = c_leader(t);
    assert_string_equal(c_call(t, leader, "SET e 1 PX 5000\r\nWATCH e\r\n", 200), "+OK\r\n+OK\r\n");
    assert_string_equal(c_input_as(t, leader, C_CLIENT, "FAULT CLOCK 60000\r\n"), "+OK\r\n");
    assert_string_equal(c_input_as(t, leader, C_CLIENT, "MULTI\r\nSET e 2\r\nEXEC\r\n"),
                        "+OK\r\n+QUEUED\r\n*-1\r\n");
    assert_int_equal(db_count(cp_engine_db(node_engine(t->node[leader]))), 1); /* not swept */
}

/* A new leader decides from what it applied: changes made under the old one count. */
static void test_cluster_watch_survives_a_leader_change(void **state) {
    struct c *t = *state;
    c_run(t, 2000);
    int old = c_leader(t);
    int next = (old + 1) % C_NODES;
    c_open(t, old, C_OTHER);
    c_open(t, old, C_THIRD);
    assert_string_equal(c_call(t, old, "SET x 1\r\nSET w 1\r\nWATCH x\r\n", 200),
                        "+OK\r\n+OK\r\n+OK\r\n");
    assert_string_equal(c_call_as(t, old, C_THIRD, "WATCH w\r\n", 200), "+OK\r\n");
    assert_string_equal(c_call_as(t, old, C_OTHER, "FLUSHALL\r\nSET x 2\r\nSET y 1\r\n", 200),
                        "+OK\r\n+OK\r\n+OK\r\n");
    assert_string_equal(c_call_as(t, old, C_OTHER, "WATCH y\r\n", 200), "+OK\r\n");
    char req[64];
    snprintf(req, sizeof(req), "CLUSTER TRANSFER %d\r\n", next + 1);
    assert_string_equal(c_call(t, old, req, 1000), "+OK\r\n");
    assert_int_equal(c_leader(t), next);
    assert_string_equal(c_call(t, old, "MULTI\r\nSET x 3\r\nEXEC\r\n", 200),
                        "+OK\r\n+QUEUED\r\n*-1\r\n");
    assert_string_equal(c_call_as(t, old, C_OTHER, "MULTI\r\nINCR y\r\nEXEC\r\n", 200),
                        "+OK\r\n+QUEUED\r\n*1\r\n:2\r\n");
    /* w was only flushed: the new leader knows it from applying the FLUSHALL. */
    assert_string_equal(c_call_as(t, old, C_THIRD, "MULTI\r\nSET w 2\r\nEXEC\r\n", 200),
                        "+OK\r\n+QUEUED\r\n*-1\r\n");
    c_assert_string_everywhere(t, "x", "2");
}

static void c_cut_node(struct c *t, int i, bool cut) {
    for (int k = 1; k <= C_NODES; k++) {
        t->cut[i + 1][k] = cut;
        t->cut[k][i + 1] = cut;
    }
}

/* A new leader may hold entries of earlier terms it has not applied, and it noted none of
 * them at propose time: until it applies its term's first entry it aborts every EXEC with
 * WATCH conditions. Here the entry changing x reaches only the next leader, uncommitted. */
static void test_cluster_watch_aborts_on_a_leader_behind_its_inherited_entries(void **state) {
    struct c *t = *state;
    c_run(t, 2000);
    int old = c_leader(t);
    int next = (old + 1) % C_NODES;
    int third = (old + 2) % C_NODES;
    c_open(t, old, C_OTHER);
    assert_string_equal(c_call(t, next, "SET x 1\r\nWATCH x\r\n", 200), "+OK\r\n+OK\r\n");
    c_cut_node(t, third, true);
    t->cut[next + 1][old + 1] = true;
    assert_string_equal(c_input_as(t, old, C_OTHER, "SET x 2\r\n"), "");
    c_deliver_all(t); /* next holds the entry; its ack is lost: not committed */
    c_cut_node(t, third, false);
    c_cut_node(t, old, true);
    t->drop_acks_to = (uint32_t)next + 1;
    for (int k = 0; k < 300 && raft_role(cp_engine_raft(node_engine(t->node[next]))) != RAFT_LEADER;
         k++) {
        c_run(t, 10);
    }
    assert_int_equal(raft_role(cp_engine_raft(node_engine(t->node[next]))), RAFT_LEADER);
    struct engine *cp = node_engine(t->node[next]);
    assert_true(cp_engine_applied(cp) < raft_term_start_index(cp_engine_raft(cp)));
    assert_string_equal(c_input_as(t, next, C_CLIENT, "MULTI\r\nSET x 3\r\nEXEC\r\n"),
                        "+OK\r\n+QUEUED\r\n*-1\r\n");
    t->drop_acks_to = 0;
    memset(t->cut, 0, sizeof(t->cut));
    c_run(t, 2000);
    c_assert_string_everywhere(t, "x", "2");
}

/* Sends a forwarded request (list) to node i as from peer `from`; returns the reply node i
 * sent back at once, or "" (a write answers only once applied). */
static const char *c_forward(struct c *t, int i, uint32_t from, const uint8_t *list, size_t bytes,
                             char *reply, size_t reply_bytes) {
    static uint64_t next_id = 1000;
    uint8_t msg[512];
    assert_true(bytes + 12 <= sizeof(msg));
    uint64_t id = next_id++;
    msg[0] = ENGINE_CP;
    msg[1] = CP_PEER_FORWARD;
    base_store_u64le(msg + 2, id);
    msg[10] = 2;
    msg[11] = KEYSPACE_CONSISTENCY_LINEARIZABLE;
    memcpy(msg + 12, list, bytes);
    size_t queued = t->queued;
    c_step(t, i,
           (struct node_event){
               .kind = NODE_EVENT_PEER_MESSAGE, .peer_id = from, .data = msg, .bytes = bytes + 12});
    reply[0] = '\0';
    for (size_t k = queued; k < t->queued; k++) {
        const struct c_msg *m = &t->queue[k];
        if (m->to != from || m->bytes < 18 || m->data[0] != ENGINE_CP) continue;
        if (m->data[1] != CP_PEER_FORWARD_REPLY || base_load_u64le(m->data + 2) != id) continue;
        size_t n = m->bytes - 18 < reply_bytes - 1 ? m->bytes - 18 : reply_bytes - 1;
        memcpy(reply, m->data + 18, n);
        reply[n] = '\0';
    }
    return reply;
}

/* A list "SET g 1" with a conditions trailer: watch_index, keys, then cond_bytes. */
static size_t c_list_with_conditions(uint8_t *out, uint64_t index, uint32_t key_count,
                                     uint32_t key_len, int32_t cond_delta) {
    /* flags, count 1, argc 3, "SET" "g" "1" */
    static const char cmd[] = "F\x01\0\0\0\x03\0\0\0\x03\0\0\0SET\x01\0\0\0g\x01\0\0\0"
                              "1";
    size_t n = sizeof(cmd) - 1;
    assert_int_equal(n, 26);
    memcpy(out, cmd, n);
    out[0] = CMDLIST_EXEC | CMDLIST_IF;
    size_t start = n;
    base_store_u64le(out + n, index);
    base_store_u32le(out + n + 8, key_count);
    n += 12;
    base_store_u32le(out + n, key_len);
    memcpy(out + n + 4, "g", 1);
    n += 5;
    base_store_u32le(out + n, (uint32_t)((int32_t)(n - start) + cond_delta));
    return n + 4;
}

/* Peers can send garbage: malformed WATCH conditions get an error, never a crash, and
 * nothing is proposed. */
static void test_cluster_watch_refuses_garbled_conditions_from_a_peer(void **state) {
    struct c *t = *state;
    c_run(t, 2000);
    int leader = c_leader(t);
    uint32_t from = (uint32_t)((leader + 1) % C_NODES) + 1;
    char reply[256];
    uint8_t list[256];
    const char *malformed = "-ERR malformed replicated command\r\n";
    size_t n = c_list_with_conditions(list, 1, 1, 1, 1); /* cond_bytes past the list */
    assert_string_equal(c_forward(t, leader, from, list, n, reply, sizeof(reply)), malformed);
    n = c_list_with_conditions(list, 1, 1, 1, -1); /* cond_bytes short of the keys */
    assert_string_equal(c_forward(t, leader, from, list, n, reply, sizeof(reply)), malformed);
    n = c_list_with_conditions(list, 1, 2, 1, 0); /* a key missing */
    assert_string_equal(c_forward(t, leader, from, list, n, reply, sizeof(reply)), malformed);
    n = c_list_with_conditions(list, 1, 1, 0xffffffffu, 0); /* a key longer than the list */
    assert_string_equal(c_forward(t, leader, from, list, n, reply, sizeof(reply)), malformed);
    n = c_list_with_conditions(list, 1, NODE_WATCH_KEYS_MAX + 1, 1, 0);
    assert_string_equal(c_forward(t, leader, from, list, n, reply, sizeof(reply)), malformed);
    uint8_t tiny[] = {CMDLIST_IF, 0, 0, 0, 0, 12, 0, 0, 0};
    assert_string_equal(c_forward(t, leader, from, tiny, sizeof(tiny), reply, sizeof(reply)),
                        malformed);
    /* Well formed, but a watch index beyond the leader's log cannot be a real one. */
    n = c_list_with_conditions(list, 1u << 30, 1, 1, 0);
    assert_string_equal(c_forward(t, leader, from, list, n, reply, sizeof(reply)), "*-1\r\n");
    /* Random bytes, flagged as conditions or as a WATCH. */
    struct prng prng;
    prng_init(&prng, 42);
    for (int round = 0; round < 500; round++) {
        size_t len = (size_t)prng_range(&prng, 5, 64);
        for (size_t k = 0; k < len; k++) list[k] = (uint8_t)prng_next(&prng);
        list[0] = round % 2 ? CMDLIST_IF | CMDLIST_EXEC : CMDLIST_WATCH;
        c_forward(t, leader, from, list, len, reply, sizeof(reply));
        assert_true(reply[0] == '-' || reply[0] == '*' || reply[0] == ':' || reply[0] == '\0');
    }
    c_run(t, 200);
    assert_null(db_find(cp_engine_db(node_engine(t->node[leader])), (const uint8_t *)"g", 1));
    assert_int_equal(c_leader(t), leader);
    assert_string_equal(c_call(t, leader, "WATCH g\r\nMULTI\r\nSET g 1\r\nEXEC\r\n", 200),
                        "+OK\r\n+OK\r\n+QUEUED\r\n*1\r\n+OK\r\n");
}

/* SAVE before anything is applied has nothing to save (it once tripped an assertion). */
static void test_cluster_save_before_anything_applied_is_harmless(void **state) {
    struct c *t = *state;
    assert_string_equal(c_call(t, 0, "SAVE\r\n", 0), "+OK\r\n");
    assert_string_equal(c_call(t, 0, "BGSAVE\r\n", 0), "+Background saving started\r\n");
    c_run(t, 2000);
    int leader = c_leader(t);
    assert_string_equal(c_call(t, leader, "SET a 1\r\nSAVE\r\n", 200), "+OK\r\n+OK\r\n");
}

/* A snapshot's blob (cp_snap.c's records) loaded into a db of its own. */
static struct db *c_blob_db(const uint8_t *data, uint64_t bytes, uint64_t hash_seed) {
    struct db *db = db_new(hash_seed); /* the node's: sets and hashes list in the same order */
    struct errmsg msg;
    for (uint64_t pos = 0; pos < bytes;) {
        assert_true(bytes - pos >= 4);
        uint32_t len = base_load_u32le(data + pos);
        if (len == CP_BLOB_KEYSPACES) {
            pos += 8 + base_load_u32le(data + pos + 4);
            continue;
        }
        assert_true(bytes - pos - 4 >= len);
        assert_int_equal(op_validate(data + pos + 4, len, &msg), 0);
        assert_int_equal(op_apply(db, data + pos + 4, len, &msg), 0);
        pos += 4 + len;
    }
    return db;
}

struct c_same {
    struct db *other;
    struct buf a;
    struct buf b;
    size_t count;
};

static void c_same_entry(void *ctx, struct db_entry *e) {
    struct c_same *s = ctx;
    size_t key_bytes = 0;
    const uint8_t *key = db_entry_key(e, &key_bytes);
    struct db_entry *o = db_find(s->other, key, key_bytes);
    assert_non_null(o);
    buf_clear(&s->a);
    buf_clear(&s->b);
    op_put_entry(&s->a, e);
    op_put_entry(&s->b, o);
    assert_int_equal(s->a.len, s->b.len);
    assert_memory_equal(s->a.data, s->b.data, s->a.len);
    s->count++;
}

/* Every key of a with the same type, contents and expiry in b, and no other key. */
static void c_assert_same_db(struct db *a, struct db *b) {
    assert_int_equal(db_count(a), db_count(b));
    struct c_same s = {.other = b};
    buf_init(&s.a);
    buf_init(&s.b);
    uint64_t cursor = 0;
    do {
        cursor = db_scan(a, cursor, c_same_entry, &s);
    } while (cursor != 0);
    assert_int_equal(s.count, db_count(a));
    buf_deinit(&s.a);
    buf_deinit(&s.b);
}

/* A snapshot is taken a few keys a step (cp_snap.c) while entries go on being applied:
 * writes of every kind land in the middle of the scan, and the blob committed is exactly
 * the state at the snapshot's index, which is what the node holds once writes stop before
 * the scan ends; a restart from it holds the same. */
static void test_cluster_snapshot_taken_while_writes_go_on_is_exact(void **state) {
    struct c *t = *state;
    c_run(t, 2000);
    int leader = c_leader(t);
    assert_true(leader >= 0);
    int f = (leader + 1) % C_NODES;
    static char req[400000];
    req[0] = '\0';
    for (int k = 0; k < 4000; k++) {
        size_t n = strlen(req);
        snprintf(req + n, sizeof(req) - n, "SET k%d v%d\r\n", k, k);
    }
    strcat(req, "SADD s a b c\r\nHSET h f 1 g 2\r\nSET n 10\r\nSET e x PX 100000\r\n");
    c_call(t, leader, req, 3000);
    struct cp *fc = (struct cp *)node_engine(t->node[f]);
    assert_int_equal(db_count(fc->db), 4004);
    assert_int_equal(fc->stats.snapshots, 0);
    assert_string_equal(c_call(t, f, "BGSAVE\r\n", 10), "+Background saving started\r\n");
    assert_true(fc->snap.active && !fc->snap.scan_done);
    uint64_t streamed = fc->stats.snapshot_ops_streamed;
    c_call(t, leader,
           "SET k1 changed\r\nDEL k2\r\nSET new 1\r\nSADD s d\r\nSREM s a\r\nHDEL h f\r\n"
           "INCR n\r\nPEXPIRE k3 500000\r\nPERSIST e\r\nAPPEND k4 more\r\n",
           200);
    assert_int_equal(cp_engine_applied(&fc->base), cp_engine_applied(node_engine(t->node[leader])));
    assert_true(fc->snap.active && !fc->snap.scan_done); /* the writes came mid-scan */
    assert_true(fc->stats.snapshot_ops_streamed > streamed); /* one entry: a pipeline */
    for (int ms = 0; ms < 20000 && fc->stats.snapshots == 0; ms += 10) c_run(t, 10);
    assert_int_equal(fc->stats.snapshots, 1);
    struct errmsg msg;
    assert_int_equal(raftstore_snapshot_load(fc->store, &msg), 0);
    const struct raft_snapshot_meta *snap = raftstore_snapshot(fc->store);
    assert_int_equal(snap->index, fc->snapshot_index);
    struct db *blob = c_blob_db(snap->data, snap->data_bytes, fc->config.hash_seed);
    c_assert_same_db(fc->db, blob);
    assert_non_null(db_find(blob, (const uint8_t *)"new", 3));
    assert_null(db_find(blob, (const uint8_t *)"k2", 2));
    db_free(blob);
    /* A restart recovers from it (and the log after it) to the same state. */
    uint64_t snap_index = snap->index; /* snap goes with the node */
    struct db *before = fc->db;
    fc->db = db_new(fc->config.hash_seed); /* keep the old one to compare with */
    node_free(t->node[f]);
    t->node[f] = NULL;
    c_start(t, f);
    c_run(t, 1000);
    fc = (struct cp *)node_engine(t->node[f]);
    assert_int_equal(fc->snapshot_index, snap_index);
    c_assert_same_db(fc->db, before);
    db_free(before);
}

static size_t c_count(const char *text, const char *what) {
    size_t n = 0;
    for (const char *p = strstr(text, what); p != NULL; p = strstr(p + 1, what)) n++;
    return n;
}

/* Many requests waiting at once (more than the wait tables' first size, so they grow while
 * full): writes on the leader, writes and linearizable reads forwarded from a follower;
 * each finds its wait by index or id and is answered once. */
static void test_cluster_many_waiting_requests_are_each_answered(void **state) {
    struct c *t = *state;
    c_run(t, 2000);
    int leader = c_leader(t);
    assert_true(leader >= 0);
    int f = (leader + 1) % C_NODES;
    enum { CLIENTS = 600 };
    for (int n = 0; n < CLIENTS; n++) {
        c_open(t, leader, 1000 + (uint64_t)n);
        c_open(t, f, 5000 + (uint64_t)n);
    }
    t->out[leader][0] = t->out[f][0] = '\0';
    char req[64];
    for (int n = 0; n < CLIENTS; n++) {
        snprintf(req, sizeof(req), "SET w%d %d\r\n", n, n);
        c_step(t, leader,
               (struct node_event){.kind = NODE_EVENT_CLIENT_INPUT,
                                   .client_id = 1000 + (uint64_t)n,
                                   .data = (const uint8_t *)req,
                                   .bytes = strlen(req)});
        snprintf(req, sizeof(req), n % 2 ? "GET w%d\r\n" : "SET f%d %d\r\n", n, n);
        c_step(t, f,
               (struct node_event){.kind = NODE_EVENT_CLIENT_INPUT,
                                   .client_id = 5000 + (uint64_t)n,
                                   .data = (const uint8_t *)req,
                                   .bytes = strlen(req)});
    }
    struct cp *lc = (struct cp *)node_engine(t->node[leader]);
    assert_true(lc->wait_count >= CLIENTS); /* all of them waited at once */
    c_run(t, 1000);
    assert_int_equal(c_count(t->out[leader], "+OK\r\n"), CLIENTS);
    assert_int_equal(c_count(t->out[f], "+OK\r\n"), CLIENTS / 2);
    assert_int_equal(c_count(t->out[f], "$"), CLIENTS / 2); /* the reads: a value or nil */
    assert_int_equal(lc->wait_count, 0);
    assert_int_equal(((struct cp *)node_engine(t->node[f]))->wait_count, 0);
}

/* A node that cannot decode the keyspace table the cluster committed stops, naming the
 * version it got and those it knows: going on would route keys unlike the other nodes. */
static void test_cluster_node_stops_on_a_committed_keyspace_table_it_cannot_decode(void **state) {
    struct c *t = *state;
    c_run(t, 2000);
    int leader = c_leader(t);
    assert_true(leader >= 0);
    t->allow_fatal = true;
    uint8_t entry[1 + 8 + 2] = {CP_ENTRY_KEYSPACES};
    entry[9] = 9; /* a table version from a newer release */
    uint64_t index = 0;
    uint64_t term = 0;
    assert_int_equal(
        cp_engine_propose(node_engine(t->node[leader]), entry, sizeof(entry), &index, &term), 0);
    c_run(t, 1000);
    for (int i = 0; i < C_NODES; i++) {
        assert_int_not_equal(t->fatal[i], 0);
        const char *text = node_fatal_text(t->node[i]);
        assert_non_null(strstr(text, "keyspace table committed at index"));
        assert_non_null(strstr(text, "version 9; this build knows versions 1 to 3"));
    }
}

/* A leader cut off proposes a keyspace table that never commits, and restarts: it routes
 * by the newest table in its recovered log meanwhile (as Raft takes the newest
 * configuration). Once the new leader's log replaces that entry, it goes back to the
 * committed table, the one every other node uses (sim seed 400299 never converged). */
static void test_cluster_keyspace_table_truncated_from_a_recovered_log_is_undone(void **state) {
    struct c *t = *state;
    c_run(t, 2000);
    int old = c_leader(t);
    assert_true(old >= 0);
    int other = (old + 1) % C_NODES;
    uint64_t agreed = ((struct cp *)node_engine(t->node[other]))->keyspaces_index;
    assert_true(agreed != 0);
    /* Its snapshot holds the agreed table, so replaying its log at restart does not apply
     * that entry again (which would hide the fault). */
    assert_string_equal(c_call(t, old, "SAVE\r\n", 500), "+OK\r\n");
    c_cut_node(t, old, true);
    struct keyspace ks = {.name = "orders",
                          .match_count = 1,
                          .match = {"orders:*"},
                          .mode = KEYSPACE_MODE_CP,
                          .replication = KEYSPACE_REPLICATION_MAJORITY,
                          .consistency = KEYSPACE_CONSISTENCY_LINEARIZABLE};
    struct buf entry;
    buf_init(&entry);
    buf_append_byte(&entry, CP_ENTRY_KEYSPACES);
    buf_append_u64le(&entry, t->now_ms);
    keyspace_table_encode(&ks, 1, &entry);
    uint64_t index = 0;
    uint64_t term = 0;
    assert_int_equal(
        cp_engine_propose(node_engine(t->node[old]), entry.data, entry.len, &index, &term), 0);
    buf_deinit(&entry);
    c_run(t, 50); /* in its log, synced; never sent */
    memdisk_crash(&t->disk[old], false, 1);
    node_free(t->node[old]);
    c_start(t, old);
    struct cp *oc = (struct cp *)node_engine(t->node[old]);
    assert_int_equal(oc->keyspaces_index, index); /* taken from the recovered log */
    assert_int_equal(oc->config.keyspace_count, 1);
    c_run(t, 2000); /* the others elect a leader and go on */
    int next = c_leader(t);
    assert_true(next >= 0 && next != old);
    assert_string_equal(c_call(t, next, "SET a 1\r\n", 200), "+OK\r\n");
    c_cut_node(t, old, false);
    c_run(t, 3000);
    oc = (struct cp *)node_engine(t->node[old]);
    struct cp *nc = (struct cp *)node_engine(t->node[next]);
    assert_int_equal(oc->keyspaces_index, nc->keyspaces_index);
    assert_int_equal(oc->keyspaces_index, agreed);
    assert_int_equal(oc->config.keyspace_count, nc->config.keyspace_count);
}

/* The first stashed append with entries (one that followed the follower's log when it was
 * sent); fails if none. Decodes it into rm. */
static const struct c_msg *c_stash_first_append(struct c *t, struct raft_message *rm) {
    for (size_t k = 0; k < t->stashed; k++) {
        const struct c_msg *m = &t->stash[k];
        if (c_decode(m, rm) && rm->type == RAFT_MSG_APPEND && rm->entry_count > 0) return m;
    }
    fail_msg("no stashed append");
    return NULL;
}

/* The newest stashed InstallSnapshot; fails if none. Decodes it into rm. */
static const struct c_msg *c_stash_last_install(struct c *t, struct raft_message *rm) {
    for (size_t k = t->stashed; k > 0; k--) {
        const struct c_msg *m = &t->stash[k - 1];
        if (c_decode(m, rm) && rm->type == RAFT_MSG_INSTALL_SNAPSHOT) return m;
    }
    fail_msg("no stashed InstallSnapshot");
    return NULL;
}

static void c_deliver(struct c *t, const struct c_msg *m) {
    c_step(t, (int)m->to - 1,
           (struct node_event){.kind = NODE_EVENT_PEER_MESSAGE,
                               .peer_id = m->from,
                               .data = m->data,
                               .bytes = m->bytes});
}

static bool c_stash_holds(struct c *t, uint8_t type) {
    struct raft_message rm;
    for (size_t k = 0; k < t->stashed; k++)
        if (c_decode(&t->stash[k], &rm) && rm.type == type) return true;
    return false;
}

/* Node f misses (the stash keeps) the leader's appends while the leader writes 30 keys and
 * compacts its log past f; then the leader's InstallSnapshot for f is stashed too. */
static void c_lag_behind_a_snapshot(struct c *t, int leader, int f) {
    assert_string_equal(c_call(t, leader, "SET a 1\r\n", 200), "+OK\r\n");
    t->stash_from = (uint32_t)leader + 1;
    t->stash_to = (uint32_t)f + 1;
    t->stash_types = ~0u;
    for (int k = 0; k < 30; k++) { /* one entry each (a pipeline would be one entry) */
        char req[64];
        snprintf(req, sizeof(req), "SET k%d x\r\n", k);
        assert_string_equal(c_call(t, leader, req, 10), "+OK\r\n");
    }
    struct raft *lr = cp_engine_raft(node_engine(t->node[leader]));
    struct raft *fr = cp_engine_raft(node_engine(t->node[f]));
    assert_true(raft_first_index(lr) > raft_last_index(fr) + 1); /* f's next entry is gone */
    t->stash_types = 1u << RAFT_MSG_INSTALL_SNAPSHOT;            /* the rest flows again */
    for (int ms = 0; ms < 1000 && !c_stash_holds(t, RAFT_MSG_INSTALL_SNAPSHOT); ms += 10)
        c_run(t, 10);
    assert_true(c_stash_holds(t, RAFT_MSG_INSTALL_SNAPSHOT));
    t->stash_to = 0;
}

/* raftstore: a snapshot is saved only while no log sync is in flight (saving syncs and
 * deletes WAL segments). A follower that gets the leader's InstallSnapshot (Raft §7) during
 * a sync installs it once the sync ends (sim seed 90178 tripped the assertion). */
static void test_cluster_snapshot_arriving_during_a_sync_is_installed_after_it(void **state) {
    struct c *t = *state;
    c_run(t, 2000);
    int leader = c_leader(t);
    assert_true(leader >= 0);
    int f = (leader + 1) % C_NODES;
    struct engine *fe = node_engine(t->node[f]);
    c_lag_behind_a_snapshot(t, leader, f);
    struct raft_message append;
    struct raft_message install;
    const struct c_msg *am = c_stash_first_append(t, &append);
    assert_int_equal(append.index, raft_last_index(cp_engine_raft(fe)));
    const struct c_msg *im = c_stash_last_install(t, &install);
    /* A late append that f can take starts a sync, which the shell keeps running. */
    t->hold_sync[f] = true;
    c_deliver(t, am);
    assert_true(cp_engine_sync_in_flight(fe));
    uint64_t applied = cp_engine_applied(fe);
    assert_true(applied < install.index);
    c_deliver(t, im);
    /* Held: nothing restored while the sync runs. */
    assert_true(cp_engine_sync_in_flight(fe));
    assert_int_equal(cp_engine_applied(fe), applied);
    assert_int_equal(db_count(cp_engine_db(fe)), 1);
    t->hold_sync[f] = false;
    c_sync_release(t, f);
    assert_int_equal(cp_engine_applied(fe), install.index);
    assert_int_equal(raft_snapshot_index(cp_engine_raft(fe)), install.index);
    assert_true(db_count(cp_engine_db(fe)) > 1);
    c_run(t, 500);
    struct db *ldb = cp_engine_db(node_engine(t->node[leader]));
    assert_int_equal(db_count(ldb), 31);
    assert_int_equal(db_count(cp_engine_db(fe)), 31);
    assert_int_equal(cp_engine_applied(fe), cp_engine_applied(node_engine(t->node[leader])));
}

/* The snapshot scan waits for the disk: while the data file's syncs do not end, at most
 * CP_SNAP_UNSYNCED_BYTES_MAX of it (8 MiB, and the last slice's bucket) is written, and
 * the scan goes on once they do. Paced by keys alone, a db of big values was scanned far
 * faster than the disk took it, and every commit of the node waited behind the flood. */
static void test_cluster_snapshot_scan_waits_for_its_syncs(void **state) {
    struct c *t = *state;
    c_run(t, 2000);
    int leader = c_leader(t);
    assert_true(leader >= 0);
    int f = (leader + 1) % C_NODES;
    enum { VALUE = 1 << 20, KEYS = 14 }; /* below the 16 MiB that make one due by itself */
    size_t cap = VALUE + 64;
    char *req = malloc(cap);
    assert_non_null(req);
    for (int k = 0; k < KEYS; k++) {
        int n = snprintf(req, cap, "*3\r\n$3\r\nSET\r\n$3\r\nb%02d\r\n$%d\r\n", k, VALUE);
        memset(req + n, 'a' + k % 26, VALUE);
        memcpy(req + n + VALUE, "\r\n", 3);
        assert_string_equal(c_call(t, leader, req, 100), "+OK\r\n");
    }
    free(req);
    c_run(t, 500);
    struct cp *fc = (struct cp *)node_engine(t->node[f]);
    assert_int_equal(db_count(fc->db), KEYS);
    assert_int_equal(fc->stats.snapshots, 0);
    t->hold_sync[f] = true;
    assert_string_equal(c_call(t, f, "BGSAVE\r\n", 10), "+Background saving started\r\n");
    c_run(t, 2000); /* unpaced, 14 MiB would be scanned within 200 ms */
    assert_true(fc->snap.active && !fc->snap.scan_done);
    uint64_t written = 0;
    (void)raftstore_stream_file(fc->store, &written);
    assert_true(written >= 8u << 20);
    assert_int_equal(fc->snap.synced_bytes, 0);
    assert_true(fc->snap.keys < KEYS);
    /* paused, not slow: nothing more is scanned while the syncs wait */
    uint64_t keys = fc->snap.keys;
    c_run(t, 1000);
    uint64_t later = 0;
    (void)raftstore_stream_file(fc->store, &later);
    assert_int_equal(later, written);
    assert_int_equal(fc->snap.keys, keys);
    t->hold_sync[f] = false;
    if (t->held_sync_file[f] != NULL) c_sync_release(t, f);
    for (int ms = 0; ms < 20000 && fc->stats.snapshots == 0; ms += 10) c_run(t, 10);
    assert_int_equal(fc->stats.snapshots, 1);
    assert_int_equal(raftstore_snapshot(fc->store)->index, fc->snapshot_index);
    assert_true(raftstore_snapshot(fc->store)->data_bytes > (uint64_t)KEYS * VALUE);
}

/* Raft §7: an InstallSnapshot held during a sync that went stale meanwhile (its index is
 * committed here now) is answered like any late one, without restoring: applied never goes
 * back, and writes after the snapshot stay. */
static void test_cluster_held_snapshot_that_went_stale_is_not_installed(void **state) {
    struct c *t = *state;
    c_run(t, 2000);
    int leader = c_leader(t);
    assert_true(leader >= 0);
    int f = (leader + 1) % C_NODES;
    struct engine *fe = node_engine(t->node[f]);
    c_lag_behind_a_snapshot(t, leader, f);
    c_run(t, 1000); /* f installs the snapshot it is sent again, and catches up */
    struct raft_message install;
    const struct c_msg *im = c_stash_last_install(t, &install);
    assert_true(raft_commit_index(cp_engine_raft(fe)) >= install.index);
    t->hold_sync[f] = true;
    assert_string_equal(c_call(t, leader, "SET late 1\r\n", 50), "+OK\r\n");
    assert_true(cp_engine_sync_in_flight(fe));
    uint64_t applied = cp_engine_applied(fe);
    c_deliver(t, im);
    assert_true(cp_engine_sync_in_flight(fe)); /* so the snapshot was held */
    t->hold_sync[f] = false;
    c_sync_release(t, f);
    assert_true(cp_engine_applied(fe) >= applied);
    c_run(t, 200);
    assert_non_null(db_find(cp_engine_db(fe), (const uint8_t *)"late", 4));
    assert_int_equal(db_count(cp_engine_db(fe)), 32);
}

/* Snapshots every 10 entries and InstallSnapshot in chunks of 256 bytes. */
static int c_setup_small_chunks(void **state) {
    int rc = c_setup_with(state, 10);
    struct c *t = *state;
    t->config.snapshot_chunk_bytes = 256;
    for (int i = 0; i < C_NODES; i++) { /* again, with it */
        node_free(t->node[i]);
        memdisk_deinit(&t->disk[i]);
        memdisk_init(&t->disk[i]);
        c_start(t, i);
    }
    return rc;
}

static uint64_t c_info_field(struct c *t, int i, const char *field) {
    t->out[i][0] = '\0';
    const char *info = c_call(t, i, "INFO\r\n", 10);
    const char *at = strstr(info, field);
    if (at == NULL) fail_msg("no %s in INFO", field);
    return strtoull(at + strlen(field) + 1, NULL, 10);
}

/* A follower whose data directory was wiped catches up from a snapshot sent in some 200
 * chunks, while one chunk in 7 is lost and while it restarts in the middle of it (it
 * keeps what it had synced, and the leader resumes from there); its db ends equal to the
 * leader's, and the leader's log was never sent whole. */
static void test_cluster_wiped_follower_catches_up_from_chunks_despite_loss_and_restart(
    void **state) {
    struct c *t = *state;
    c_run(t, 2000);
    int leader = c_leader(t);
    assert_true(leader >= 0);
    char value[101];
    memset(value, 'v', 100);
    value[100] = '\0';
    for (int k = 0; k < 400; k += 20) {
        char req[4096] = "";
        char want[256] = "";
        for (int j = k; j < k + 20; j++) {
            snprintf(req + strlen(req), sizeof(req) - strlen(req), "SET key%03d %s%d\r\n", j,
                     value, j);
            strcat(want, "+OK\r\n");
        }
        assert_string_equal(c_call(t, leader, req, 100), want);
    }
    c_run(t, 500); /* a snapshot or two on every node */
    int f = (leader + 1) % C_NODES;
    node_free(t->node[f]);
    memdisk_deinit(&t->disk[f]);
    memdisk_init(&t->disk[f]); /* wiped */
    t->drop_chunks_to = (uint32_t)f + 1;
    t->drop_chunk_every = 7;
    t->drop_chunks_after = 250; /* then the link fails */
    c_start(t, f);
    struct engine *le = node_engine(t->node[leader]);
    c_run(t, 3000);
    struct cp *fcp = (struct cp *)node_engine(t->node[f]);
    assert_true(fcp->xrecv.active);
    assert_true(fcp->xrecv.synced > 0 && fcp->xrecv.have < fcp->xrecv.total);
    /* A crash in the middle: what was synced stays. */
    memdisk_crash(&t->disk[f], true, 5);
    node_free(t->node[f]);
    c_start(t, f);
    assert_true(((struct cp *)node_engine(t->node[f]))->xrecv.have > 0);
    t->drop_chunks_after = 0;
    for (int ms = 0; ms < 20000; ms += 10) {
        c_run(t, 10);
        if (cp_engine_applied(node_engine(t->node[f])) >= cp_engine_applied(le)) break;
    }
    t->drop_chunks_to = 0;
    c_run(t, 200);
    struct db *fdb = cp_engine_db(node_engine(t->node[f]));
    assert_int_equal(db_count(fdb), 400);
    c_assert_same_db(cp_engine_db(le), fdb);
    const struct cp_stats *ls = &((struct cp *)le)->stats;
    assert_true(ls->xfer_resumed >= 1);
    assert_true(ls->xfer_resends >= 1);
    assert_true(ls->xfer_done >= 1);
    assert_true(c_info_field(t, f, "snapshot_installs") >= 1);
    assert_int_equal(c_info_field(t, f, "snapshot_receiving"), 0);
}

/* Pipelining (node.c, engine.h): a client's commands that arrive together go to the engine
 * as one request. On the leader and on a follower alike: every reply in request order, a
 * read after a write in the same run sees it, a command the node answers (PING), an
 * unknown one and a MULTI/EXEC between runs keep their places, and a run of 100 writes is
 * one Raft entry. */
static void test_cluster_pipelined_commands_answer_in_order_in_one_entry(void **state) {
    struct c *t = *state;
    c_run(t, 2000);
    int leader = c_leader(t);
    assert_true(leader >= 0);
    struct raft *lr = cp_engine_raft(node_engine(t->node[leader]));
    int nodes[2] = {leader, (leader + 1) % C_NODES};
    for (int n = 0; n < 2; n++) {
        int i = nodes[n];
        char req[1024];
        char want[1024];
        snprintf(req, sizeof(req),
                 "SET p%d a\r\nGET p%d\r\nINCR c%d\r\nINCR c%d\r\nGET c%d\r\nPING\r\n"
                 "SET q%d b\r\nNOSUCH x\r\nGET q%d\r\nMULTI\r\nINCR c%d\r\nEXEC\r\nGET c%d\r\n",
                 n, n, n, n, n, n, n, n, n);
        snprintf(want, sizeof(want),
                 "+OK\r\n$1\r\na\r\n:1\r\n:2\r\n$1\r\n2\r\n+PONG\r\n+OK\r\n"
                 "-ERR unknown command 'NOSUCH', with args beginning with: 'x' \r\n"
                 "$1\r\nb\r\n+OK\r\n+QUEUED\r\n*1\r\n:3\r\n$1\r\n3\r\n");
        uint64_t before = raft_last_index(lr);
        assert_string_equal(c_call(t, i, req, 100), want);
        assert_int_equal(raft_last_index(lr), before + 3); /* the run, SET q, the EXEC */
        static char many[4096];
        static char oks[1024];
        many[0] = oks[0] = '\0';
        for (int k = 0; k < 100; k++) {
            snprintf(many + strlen(many), sizeof(many) - strlen(many), "SET m%d_%d %d\r\n", n,
                     k, k);
            strcat(oks, "+OK\r\n");
        }
        strcat(many, "GET m0_99\r\n");
        strcat(oks, "$2\r\n99\r\n");
        before = raft_last_index(lr);
        assert_string_equal(c_call(t, i, many, 100), oks);
        assert_int_equal(raft_last_index(lr), before + 1);
    }
    c_run(t, 200);
    for (int i = 0; i < C_NODES; i++)
        assert_int_equal(db_count(cp_engine_db(node_engine(t->node[i]))), 206);
    assert_true(c_info_field(t, leader, "pipelined_commands") >= 101);
    /* Refused as a whole (no leader on this side): one error per command still. */
    int f = (leader + 1) % C_NODES;
    c_cut_node(t, f, true);
    c_run(t, 2000);
    const char *got = c_call(t, f, "SET a 1\r\nSET b 2\r\nGET a\r\n", 10);
    assert_true(strncmp(got, "-NOQUORUM", 9) == 0);
    const char *second = strstr(got, "\r\n") + 2;
    const char *third = strstr(second, "\r\n") + 2;
    assert_true(strncmp(second, "-NOQUORUM", 9) == 0 && strncmp(third, "-NOQUORUM", 9) == 0);
    assert_string_equal(strstr(third, "\r\n"), "\r\n");
    c_cut_node(t, f, false);
}

#define C_TOKEN_HEX (2 * SESSION_TOKEN_BYTES_MIN) /* a token without AP keys */

/* The CP index a SESSION TOKEN reply (a bulk string) carries. */
static uint64_t c_token_index(const struct c *t, const char *reply, char *token) {
    assert_true(strncmp(reply, "$38\r\n", 5) == 0);
    memcpy(token, reply + 5, C_TOKEN_HEX);
    token[C_TOKEN_HEX] = '\0';
    struct errmsg msg;
    uint32_t cluster = session_cluster_id(0, t->config.peers, C_NODES);
    struct session_token got;
    struct seen_map ap;
    seen_map_init(&ap);
    assert_int_equal(session_token_decode(token, C_TOKEN_HEX, cluster, &got, &ap, &msg), 0);
    assert_int_equal(ap.count, 0); /* CP keys only */
    seen_map_deinit(&ap);
    return got.cp_index;
}

/* Issue 9: a token taken after a write on the leader, resumed on a follower cut off before
 * it got the write, makes that follower's stale read wait (then -TIMEOUT); once it catches
 * up the read sees the write. Without the session the same read answers the old value. */
static void test_cluster_session_resumed_on_a_lagging_follower_waits_for_the_write(void **state) {
    struct c *t = *state;
    c_run(t, 2000);
    int leader = c_leader(t);
    int f = (leader + 1) % C_NODES;
    assert_string_equal(c_call(t, leader, "SET s old\r\n", 200), "+OK\r\n");
    c_cut_node(t, f, true);
    assert_string_equal(c_call(t, leader, "SET s new\r\n", 200), "+OK\r\n");
    char token[C_TOKEN_HEX + 1];
    uint64_t index = c_token_index(t, c_call(t, leader, "SESSION TOKEN\r\n", 0), token);
    assert_true(index > cp_engine_applied(node_engine(t->node[f])));
    assert_int_equal(index, cp_engine_applied(node_engine(t->node[leader])));
    c_open(t, f, C_OTHER);
    assert_string_equal(c_call_as(t, f, C_OTHER, "CONSISTENCY stale\r\nGET s\r\n", 0),
                        "+OK\r\n$3\r\nold\r\n");
    char resume[128];
    snprintf(resume, sizeof(resume), "SESSION RESUME %s\r\nGET s\r\n", token);
    assert_string_equal(c_call_as(t, f, C_OTHER, resume, 500), "+OK\r\n");
    c_run(t, 600);
    char want[160];
    snprintf(want, sizeof(want),
             "+OK\r\n-TIMEOUT session: this node has applied %llu of the %llu the session "
             "saw; try again or read on the leader\r\n",
             (unsigned long long)cp_engine_applied(node_engine(t->node[f])),
             (unsigned long long)index);
    assert_string_equal(t->out[f], want);
    /* Healed, the same read waits only until the follower has the entry. */
    assert_string_equal(c_call_as(t, f, C_OTHER, "GET s\r\n", 0), "");
    c_cut_node(t, f, false);
    c_run(t, 500);
    assert_string_equal(t->out[f], "$3\r\nnew\r\n");
    /* SESSION END: stale reads wait for nothing again; a bad token says why. */
    assert_string_equal(c_call_as(t, f, C_OTHER, "SESSION END\r\n", 0), "+OK\r\n");
    assert_true(
        strncmp(c_call_as(t, f, C_OTHER, "SESSION RESUME 00\r\n", 0),
                "-ERR session: bad token: a token is an even number of hex digits, at least 38",
                76) == 0);
}

/* A follower's own reads and forwarded writes advance its token: a write forwarded to the
 * leader reflects the entry, not the follower's applied index. */
static void test_cluster_session_token_covers_forwarded_writes(void **state) {
    struct c *t = *state;
    c_run(t, 2000);
    int leader = c_leader(t);
    int f = (leader + 1) % C_NODES;
    char token[C_TOKEN_HEX + 1];
    assert_int_equal(c_token_index(t, c_call(t, f, "SESSION TOKEN\r\n", 0), token), 0);
    assert_string_equal(c_call(t, f, "SET w 1\r\n", 300), "+OK\r\n");
    uint64_t index = c_token_index(t, c_call(t, f, "SESSION TOKEN\r\n", 0), token);
    assert_true(index > 0);
    assert_true(index <= cp_engine_applied(node_engine(t->node[leader])));
    assert_string_equal(c_call(t, f, "RESET\r\n", 0), "+RESET\r\n");
    assert_int_equal(c_token_index(t, c_call(t, f, "SESSION TOKEN\r\n", 0), token), 0);
}

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, c_setup, c_teardown)
#define T_SMALL(name) cmocka_unit_test_setup_teardown(name, c_setup_small_snapshots, c_teardown)
    const struct CMUnitTest tests[] = {
        T(test_cluster_elects_a_leader_and_replicates_writes),
        T(test_cluster_session_resumed_on_a_lagging_follower_waits_for_the_write),
        T(test_cluster_session_token_covers_forwarded_writes),
        T(test_cluster_minority_refuses_and_majority_goes_on),
        T(test_cluster_transactions_apply_atomically_everywhere),
        T(test_cluster_restart_recovers_from_the_raft_log),
        T(test_cluster_fault_partition_isolates_and_heal_restores),
        T(test_cluster_fault_pause_freezes_the_engines_of_a_node),
        T(test_cluster_fault_delay_holds_payloads_to_a_peer),
        T(test_cluster_snapshot_scan_waits_for_its_syncs),
        T(test_cluster_fault_commands_need_enable_faults),
        T(test_cluster_wait_counts_replicas_of_the_last_write),
        T(test_cluster_lease_reads_skip_the_round_trip_only_while_the_lease_holds),
        T(test_cluster_watch_aborts_exec_after_another_client_changes_the_key),
        T(test_cluster_watch_lets_exec_run_when_the_keys_are_untouched),
        T(test_cluster_watch_sees_changes_made_through_another_node),
        T(test_cluster_watch_counts_expiry_and_flushall_as_changes),
        T(test_cluster_watch_ignores_writes_to_other_keys),
        T(test_cluster_watch_without_a_leader_fails_and_watches_nothing),
        T(test_cluster_watch_refuses_garbled_conditions_from_a_peer),
        T(test_cluster_watch_counts_writes_the_leader_has_not_applied_yet),
        T(test_cluster_watch_counts_an_expiry_not_swept_yet),
        T(test_cluster_watch_survives_a_leader_change),
        T(test_cluster_watch_aborts_on_a_leader_behind_its_inherited_entries),
        T(test_cluster_save_before_anything_applied_is_harmless),
        T(test_cluster_many_waiting_requests_are_each_answered),
        cmocka_unit_test_setup_teardown(test_cluster_snapshot_taken_while_writes_go_on_is_exact,
                                        c_setup_slow_scans, c_teardown),
        T(test_cluster_node_stops_on_a_committed_keyspace_table_it_cannot_decode),
        T(test_cluster_keyspace_table_truncated_from_a_recovered_log_is_undone),
        T_SMALL(test_cluster_snapshot_arriving_during_a_sync_is_installed_after_it),
        T_SMALL(test_cluster_held_snapshot_that_went_stale_is_not_installed),
        T(test_cluster_pipelined_commands_answer_in_order_in_one_entry),
        cmocka_unit_test_setup_teardown(
            test_cluster_wiped_follower_catches_up_from_chunks_despite_loss_and_restart,
            c_setup_small_chunks, c_teardown),
    };
#undef T_SMALL
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
