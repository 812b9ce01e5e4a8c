/* Unit tests for src/core with the single-node engine (src/local) under it: the node driven
 * with events on an in-memory disk, no sockets and no files. Covers group commit and reply
 * release, crash recovery, a full disk, protocol errors, limits, transactions and
 * snapshots. */
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
#include "local/internal.h"
#include "storage/memdisk.h"

#define T_NOW 1700000000000ull

struct t {
    struct disk disk;
    struct node_config config;
    struct node *node;
    uint64_t now_ms;
    struct disk_file *pending_sync; /* a sync asked for and not yet done */
    uint64_t pending_lsn;
    int syncs_asked;
    bool closed[16];
    char out[16][8192]; /* everything each client received */
};

/* The node's single-node engine, to look at its log and db. */
static struct local *t_local_of(struct node *node) {
    struct engine *e = node_engine(node);
    assert_ptr_equal(e->ops, &local_engine_ops);
    return (struct local *)e;
}
#define t_local(t) t_local_of((t)->node)

static void t_effects(struct t *t, const struct node_effects *eff) {
    assert_int_equal(eff->fatal, 0);
    for (size_t i = 0; i < eff->write_count; i++) {
        uint64_t id = eff->write_clients[i];
        size_t bytes;
        const uint8_t *data = node_client_output(t->node, id, &bytes);
        size_t have = strlen(t->out[id]);
        assert_true(have + bytes < sizeof(t->out[id]));
        memcpy(t->out[id] + have, data, bytes);
        t->out[id][have + bytes] = '\0';
        node_client_sent(t->node, id, bytes);
    }
    for (size_t i = 0; i < eff->close_count; i++) t->closed[eff->close_clients[i]] = true;
    if (eff->sync_file != NULL) {
        assert_null(t->pending_sync);
        t->pending_sync = eff->sync_file;
        t->pending_lsn = eff->sync_lsn;
        t->syncs_asked++;
    }
}

static void t_step(struct t *t, struct node_event ev) {
    struct node_effects eff;
    ev.now_ms = t->now_ms;
    node_step(t->node, &ev, &eff);
    t_effects(t, &eff);
}

static void t_flush(struct t *t) {
    t_step(t, (struct node_event){.kind = NODE_EVENT_FLUSH});
}

/* Completes the sync in flight, as the shell's worker thread would. */
static void t_sync(struct t *t) {
    assert_non_null(t->pending_sync);
    struct errmsg msg;
    assert_int_equal(t->disk.sync(&t->disk, t->pending_sync, &msg), 0);
    t->pending_sync = NULL;
    t_step(t, (struct node_event){.kind = NODE_EVENT_SYNCED, .lsn = t->pending_lsn});
    t_flush(t);
}

static void t_open(struct t *t, uint64_t id) {
    t_step(t, (struct node_event){
                  .kind = NODE_EVENT_CLIENT_OPEN, .client_id = id, .peer_addr = "127.0.0.1:1"});
    t->out[id][0] = '\0';
    t->closed[id] = false;
}

static void t_send(struct t *t, uint64_t id, const char *text) {
    t_step(t, (struct node_event){.kind = NODE_EVENT_CLIENT_INPUT,
                                  .client_id = id,
                                  .data = (const uint8_t *)text,
                                  .bytes = strlen(text)});
}

/* Sends, flushes, completes any sync; returns and clears what the client received. */
static const char *t_call(struct t *t, uint64_t id, const char *text) {
    static char reply[8192];
    t_send(t, id, text);
    t_flush(t);
    if (t->pending_sync != NULL) t_sync(t);
    snprintf(reply, sizeof(reply), "%s", t->out[id]);
    t->out[id][0] = '\0';
    return reply;
}

static void t_start(struct t *t) {
    struct errmsg msg;
    int rc = node_new(&t->config, &t->disk, t->now_ms, &t->node, &msg);
    if (rc != 0) fail_msg("node_new: %s", msg.text);
}

static int t_setup(void **state) {
    struct t *t = calloc(1, sizeof(*t));
    memdisk_init(&t->disk);
    node_config_default(&t->config);
    t->config.wal_segment_bytes = 64 * 1024;
    t->now_ms = T_NOW;
    t_start(t);
    *state = t;
    return 0;
}

static int t_teardown(void **state) {
    struct t *t = *state;
    if (t->pending_sync != NULL) t_sync(t);
    node_free(t->node);
    memdisk_deinit(&t->disk);
    free(t);
    return 0;
}

/* Crash: lose what was not synced, then start a new node on what survived. */
static void t_crash_restart(struct t *t) {
    if (t->pending_sync != NULL) t->pending_sync = NULL;
    memdisk_crash(&t->disk, true, 12345);
    node_free(t->node);
    t_start(t);
}

static void test_node_write_reply_waits_for_the_sync_that_covers_it(void **state) {
    struct t *t = *state;
    t_open(t, 1);
    t_send(t, 1, "SET a 1\r\n");
    t_flush(t);
    assert_string_equal(t->out[1], "");
    assert_non_null(t->pending_sync);
    t_sync(t);
    assert_string_equal(t->out[1], "+OK\r\n");
}

static void test_node_one_sync_covers_every_write_of_a_batch(void **state) {
    struct t *t = *state;
    for (uint64_t id = 1; id <= 5; id++) t_open(t, id);
    for (uint64_t id = 1; id <= 5; id++) t_send(t, id, "INCR counter\r\n");
    t_flush(t);
    assert_int_equal(t->syncs_asked, 1);
    t_sync(t);
    for (uint64_t id = 1; id <= 5; id++) {
        char want[16];
        snprintf(want, sizeof(want), ":%llu\r\n", (unsigned long long)id);
        assert_string_equal(t->out[id], want);
    }
}

/* No client may see data a crash could take back: a read of an unsynced write waits. */
static void test_node_read_of_an_unsynced_write_waits_for_the_sync(void **state) {
    struct t *t = *state;
    t_open(t, 1);
    t_open(t, 2);
    t_send(t, 1, "SET k v\r\n");
    t_send(t, 2, "GET k\r\n");
    t_flush(t);
    assert_string_equal(t->out[2], "");
    t_sync(t);
    assert_string_equal(t->out[1], "+OK\r\n");
    assert_string_equal(t->out[2], "$1\r\nv\r\n");
    t->out[2][0] = '\0';
    assert_string_equal(t_call(t, 2, "GET k\r\n"), "$1\r\nv\r\n");
}

static void test_node_crash_keeps_acknowledged_writes_only(void **state) {
    struct t *t = *state;
    t_open(t, 1);
    assert_string_equal(t_call(t, 1, "SET acked 1\r\nSADD s a b\r\nHSET h f v\r\n"),
                        "+OK\r\n:2\r\n:1\r\n");
    t_send(t, 1, "SET unacked 2\r\n");
    t_flush(t);
    assert_string_equal(t->out[1], "");
    t_crash_restart(t);
    t_open(t, 1);
    assert_string_equal(t_call(t, 1, "GET acked\r\nSCARD s\r\nHGET h f\r\n"),
                        "$1\r\n1\r\n:2\r\n$1\r\nv\r\n");
    assert_string_equal(t_call(t, 1, "EXISTS unacked\r\n"), ":0\r\n");
}

static void test_node_full_disk_refuses_writes_and_serves_reads(void **state) {
    struct t *t = *state;
    t_open(t, 1);
    assert_string_equal(t_call(t, 1, "SET keep me\r\n"), "+OK\r\n");
    memdisk_set_capacity(&t->disk, memdisk_used_bytes(&t->disk));
    char cmd[128];
    char reply[256] = "";
    int i;
    for (i = 0; i < 5000; i++) {
        snprintf(cmd, sizeof(cmd), "SET key:%d %0100d\r\n", i, i);
        snprintf(reply, sizeof(reply), "%s", t_call(t, 1, cmd));
        if (strcmp(reply, "+OK\r\n") != 0) break;
    }
    assert_true(i < 5000);
    assert_true(strncmp(reply, "-ERR disk full", 14) == 0);
    /* Small writes may still fit in the segment's reserved space; fill it too. */
    int64_t incrs = 0;
    for (i = 0; i < 5000; i++) {
        snprintf(reply, sizeof(reply), "%s", t_call(t, 1, "INCR x\r\n"));
        if (reply[0] != ':') break;
        incrs++;
    }
    assert_true(strncmp(reply, "-ERR disk full", 14) == 0);
    assert_string_equal(t_call(t, 1, "GET keep\r\n"), "$2\r\nme\r\n");
    assert_string_equal(t_call(t, 1, "INCR x\r\n"), reply);
    memdisk_set_capacity(&t->disk, MEMDISK_CAPACITY_UNLIMITED);
    snprintf(cmd, sizeof(cmd), ":%lld\r\n", (long long)incrs + 1);
    assert_string_equal(t_call(t, 1, "INCR x\r\n"), cmd);
    t_crash_restart(t);
    t_open(t, 1);
    char digits[32];
    int n = snprintf(digits, sizeof(digits), "%lld", (long long)incrs + 1);
    snprintf(cmd, sizeof(cmd), "$%d\r\n%s\r\n$2\r\nme\r\n", n, digits);
    assert_string_equal(t_call(t, 1, "GET x\r\nGET keep\r\n"), cmd);
}

static void test_node_protocol_error_replies_then_closes(void **state) {
    struct t *t = *state;
    t_open(t, 1);
    t_open(t, 2);
    assert_string_equal(t_call(t, 1, "*1\r\n$x\r\n"),
                        "-ERR Protocol error: invalid bulk length\r\n");
    assert_true(t->closed[1]);
    assert_string_equal(t_call(t, 2, "PING\r\n"), "+PONG\r\n");
    assert_false(t->closed[2]);
}

static void test_node_quit_closes_after_the_replies_before_it(void **state) {
    struct t *t = *state;
    t_open(t, 1);
    t_send(t, 1, "SET a 1\r\nQUIT\r\nSET a 2\r\n");
    t_flush(t);
    assert_false(t->closed[1]);
    t_sync(t);
    assert_string_equal(t->out[1], "+OK\r\n+OK\r\n");
    assert_true(t->closed[1]);
    t_open(t, 2);
    assert_string_equal(t_call(t, 2, "GET a\r\n"), "$1\r\n1\r\n");
}

/* A transaction may hold engine commands (WAIT, SAVE) and the node's own (PING): each runs
 * where it belongs, in order, inside the one EXEC. */
static void test_node_exec_runs_engine_and_node_commands_in_order(void **state) {
    struct t *t = *state;
    t_open(t, 1);
    assert_string_equal(t_call(t, 1, "MULTI\r\nSET a 1\r\nWAIT 0 0\r\nPING\r\nSAVE\r\nEXEC\r\n"),
                        "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n"
                        "*4\r\n+OK\r\n:0\r\n+PONG\r\n+OK\r\n");
    assert_string_equal(t_call(t, 1, "GET a\r\n"), "$1\r\n1\r\n");
}

static void test_node_exec_logs_one_record_for_the_whole_transaction(void **state) {
    struct t *t = *state;
    t_open(t, 1);
    uint64_t before = wal_last_lsn(t_local(t)->store.wal);
    assert_string_equal(t_call(t, 1, "MULTI\r\nSET a 1\r\nINCR a\r\nSADD s x\r\nEXEC\r\n"),
                        "+OK\r\n+QUEUED\r\n+QUEUED\r\n+QUEUED\r\n*3\r\n+OK\r\n:2\r\n:1\r\n");
    assert_int_equal(wal_last_lsn(t_local(t)->store.wal), before + 1);
    assert_string_equal(t_call(t, 1, "MULTI\r\nSET a\r\nEXEC\r\n"),
                        "+OK\r\n-ERR wrong number of arguments for 'set' command\r\n"
                        "-EXECABORT Transaction discarded because of previous errors.\r\n");
    assert_string_equal(t_call(t, 1, "EXEC\r\n"), "-ERR EXEC without MULTI\r\n");
}

static void test_node_watch_aborts_exec_when_another_client_wrote(void **state) {
    struct t *t = *state;
    t_open(t, 1);
    t_open(t, 2);
    assert_string_equal(t_call(t, 1, "WATCH k\r\nMULTI\r\nSET k mine\r\n"),
                        "+OK\r\n+OK\r\n+QUEUED\r\n");
    assert_string_equal(t_call(t, 2, "SET k theirs\r\n"), "+OK\r\n");
    assert_string_equal(t_call(t, 1, "EXEC\r\nGET k\r\n"), "*-1\r\n$6\r\ntheirs\r\n");
    assert_string_equal(t_call(t, 1, "WATCH k\r\nMULTI\r\nSET k mine\r\nEXEC\r\n"),
                        "+OK\r\n+OK\r\n+QUEUED\r\n*1\r\n+OK\r\n");
}

static void test_node_requires_auth_when_a_password_is_set(void **state) {
    struct t *t = *state;
    node_free(t->node);
    t->config.requirepass = "s3cret";
    t_start(t);
    t_open(t, 1);
    assert_string_equal(t_call(t, 1, "GET a\r\n"), "-NOAUTH Authentication required.\r\n");
    assert_string_equal(t_call(t, 1, "AUTH wrong\r\n"),
                        "-WRONGPASS invalid username-password pair or user is disabled.\r\n");
    assert_string_equal(t_call(t, 1, "AUTH s3cret\r\nPING\r\n"), "+OK\r\n+PONG\r\n");
    t_open(t, 2);
    const char *hello = t_call(t, 2, "HELLO 3 AUTH default s3cret\r\n");
    assert_true(strncmp(hello, "%7\r\n", 4) == 0);
    assert_string_equal(t_call(t, 2, "GET nokey\r\n"), "_\r\n");
}

static void test_node_output_over_the_limit_closes_the_client(void **state) {
    struct t *t = *state;
    node_free(t->node);
    t->config.output_bytes_max = 64 * 1024;
    t_start(t);
    t_open(t, 1);
    t_open(t, 2);
    char big[2100];
    snprintf(big, sizeof(big), "SET big %02000d\r\n", 7);
    t_call(t, 2, big);
    /* Client 1 pipelines 100 GETs of 2 KB in one read: 200 KB of replies. */
    static char many[100 * 10 + 1];
    many[0] = '\0';
    for (int i = 0; i < 100; i++) strcat(many, "GET big\r\n");
    t_call(t, 1, many);
    assert_true(t->closed[1]);
    assert_string_equal(t_call(t, 2, "STRLEN big\r\n"), ":2000\r\n");
}

static void test_node_snapshot_and_log_rebuild_the_state_after_a_crash(void **state) {
    struct t *t = *state;
    t_open(t, 1);
    char cmd[96];
    for (int i = 0; i < 500; i++) {
        snprintf(cmd, sizeof(cmd), "SET k:%d %d\r\nSADD set m%d\r\n", i, i, i % 50);
        t_call(t, 1, cmd);
    }
    assert_string_equal(t_call(t, 1, "SAVE\r\n"), "+OK\r\n");
    assert_true(t_local(t)->store.snapshot_lsn > 0);
    assert_string_equal(t_call(t, 1, "DEL k:0\r\nSET after snap\r\nPEXPIRE k:1 100000\r\n"),
                        ":1\r\n+OK\r\n:1\r\n");
    t_crash_restart(t);
    t_open(t, 1);
    assert_string_equal(t_call(t, 1, "DBSIZE\r\nSCARD set\r\nEXISTS k:0\r\nGET k:499\r\n"),
                        ":501\r\n:50\r\n:0\r\n$3\r\n499\r\n");
    assert_string_equal(t_call(t, 1, "GET after\r\nPTTL k:1\r\n"), "$4\r\nsnap\r\n:100000\r\n");
}

static void test_node_everysec_replies_without_waiting_for_a_sync(void **state) {
    struct t *t = *state;
    node_free(t->node);
    t->config.fsync = NODE_FSYNC_EVERYSEC;
    t_start(t);
    t_open(t, 1);
    t_send(t, 1, "SET a 1\r\n");
    t_flush(t);
    assert_string_equal(t->out[1], "+OK\r\n");
    assert_null(t->pending_sync);
    t->now_ms += 1500;
    t_step(t, (struct node_event){.kind = NODE_EVENT_TICK});
    t_flush(t);
    assert_non_null(t->pending_sync);
}

static void test_node_refuses_clients_over_maxclients(void **state) {
    struct t *t = *state;
    node_free(t->node);
    t->config.clients_max = 2;
    t_start(t);
    t_open(t, 1);
    t_open(t, 2);
    t_open(t, 3);
    t_flush(t);
    assert_string_equal(t->out[3], "-ERR max number of clients reached\r\n");
    assert_true(t->closed[3]);
    assert_string_equal(t_call(t, 1, "PING\r\n"), "+PONG\r\n");
}

static void test_node_active_expiry_removes_keys_nobody_reads(void **state) {
    struct t *t = *state;
    t_open(t, 1);
    t_call(t, 1, "SET a 1 PX 50\r\nSET b 2 PX 50\r\nSET c 3\r\n");
    t->now_ms += 200;
    t_step(t, (struct node_event){.kind = NODE_EVENT_TICK});
    t_flush(t);
    if (t->pending_sync != NULL) t_sync(t);
    assert_int_equal(db_count(t_local(t)->store.db), 1);
    assert_int_equal(t_local(t)->stats.expired_keys, 2);
}

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, t_setup, t_teardown)
    const struct CMUnitTest tests[] = {
        T(test_node_write_reply_waits_for_the_sync_that_covers_it),
        T(test_node_one_sync_covers_every_write_of_a_batch),
        T(test_node_read_of_an_unsynced_write_waits_for_the_sync),
        T(test_node_crash_keeps_acknowledged_writes_only),
        T(test_node_full_disk_refuses_writes_and_serves_reads),
        T(test_node_protocol_error_replies_then_closes),
        T(test_node_quit_closes_after_the_replies_before_it),
        T(test_node_exec_runs_engine_and_node_commands_in_order),
        T(test_node_exec_logs_one_record_for_the_whole_transaction),
        T(test_node_watch_aborts_exec_when_another_client_wrote),
        T(test_node_requires_auth_when_a_password_is_set),
        T(test_node_output_over_the_limit_closes_the_client),
        T(test_node_snapshot_and_log_rebuild_the_state_after_a_crash),
        T(test_node_everysec_replies_without_waiting_for_a_sync),
        T(test_node_refuses_clients_over_maxclients),
        T(test_node_active_expiry_removes_keys_nobody_reads),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
