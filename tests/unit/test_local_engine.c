/*
 * Unit tests for src/local through the engine interface alone (engine.h), as the node uses
 * it: requests answered at once with the lsn their reply waits for, group commit through
 * FLUSH and SYNCED, a transaction as one record with the host running what is not the
 * engine's, recovery after a crash, and the ops reported for WATCH.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cmd/cmd.h"
#include "engine/cmdlist.h"
#include "local/local.h"
#include "storage/memdisk.h"

struct le {
    struct disk disk;
    struct engine *e;
    struct engine_config config;
    uint64_t now_ms;
    uint64_t next_id;
    uint32_t host_calls;
    struct buf out;
};

static void le_host(void *ctx, uint64_t request_id, uint32_t argc, const struct resp_arg *argv) {
    struct le *t = ctx;
    (void)request_id;
    assert_true(argc >= 1);
    t->host_calls++;
    resp_put_simple(&t->out, "PONG"); /* what the node would answer PING with */
    (void)argv;
}

static void le_open(struct le *t) {
    struct errmsg msg;
    int rc = local_engine_ops.open(&t->config, &t->disk, t->now_ms, &t->e, &msg);
    if (rc != 0) fail_msg("open: %s", msg.text);
}

static int le_setup(void **state) {
    struct le *t = calloc(1, sizeof(*t));
    memdisk_init(&t->disk);
    t->now_ms = 1700000000000ull;
    t->config.id = 1;
    t->config.fsync = ENGINE_FSYNC_ALWAYS;
    t->config.string_bytes_max = 512ull * 1024 * 1024;
    t->config.snapshot_log_bytes = 1ull << 30;
    t->config.wal_segment_bytes = 1u << 20;
    t->config.hash_seed = 7;
    t->config.host = le_host;
    t->config.host_ctx = t;
    buf_init(&t->out);
    le_open(t);
    *state = t;
    return 0;
}

static int le_teardown(void **state) {
    struct le *t = *state;
    t->e->ops->free(t->e);
    memdisk_deinit(&t->disk);
    buf_deinit(&t->out);
    free(t);
    return 0;
}

/* Submits one command (words separated by spaces); returns the answer. */
static struct engine_answer le_command(struct le *t, const char *line) {
    struct resp_arg argv[8];
    char words[256];
    snprintf(words, sizeof(words), "%s", line);
    uint32_t argc = 0;
    for (char *w = strtok(words, " "); w != NULL && argc < 8; w = strtok(NULL, " "))
        argv[argc++] = (struct resp_arg){.data = (const uint8_t *)w, .bytes = strlen(w)};
    struct engine_request req = {.id = ++t->next_id, .kind = ENGINE_REQUEST_DATA, .proto = 2};
    req.spec = cmd_lookup(argv[0].data, argv[0].bytes);
    if (req.spec == NULL || req.spec->fn == NULL) {
        req.kind = ENGINE_REQUEST_ADMIN;
        req.spec = NULL;
    }
    req.argc = argc;
    req.argv = argv;
    buf_clear(&t->out);
    struct engine_answer a;
    t->e->ops->submit(t->e, &req, &t->out, &a);
    buf_append_byte(&t->out, 0); /* the reply as a C string */
    t->out.len--;
    return a;
}

/* FLUSH, then the sync it asked for, as a shell does. */
static void le_flush_and_sync(struct le *t) {
    struct engine_event ev = {.kind = ENGINE_EVENT_FLUSH, .now_ms = t->now_ms};
    struct engine_effects eff;
    t->e->ops->step(t->e, &ev, &eff);
    assert_int_equal(eff.fatal, 0);
    if (eff.sync_file == NULL) return;
    struct errmsg msg;
    assert_int_equal(t->disk.sync(&t->disk, eff.sync_file, &msg), 0);
    struct engine_event done = {
        .kind = ENGINE_EVENT_SYNCED, .now_ms = t->now_ms, .token = eff.sync_token};
    t->e->ops->step(t->e, &done, &eff);
}

/* fsync = always: a write's reply is given at once but may go out only once a sync made
 * what it observed durable; a read after it waits for the same lsn. */
static void test_local_engine_reply_waits_for_the_sync_that_covers_it(void **state) {
    struct le *t = *state;
    struct engine_answer a = le_command(t, "SET k v");
    assert_false(a.pending);
    assert_string_equal((const char *)t->out.data, "+OK\r\n");
    uint64_t need = t->e->ops->release_lsn(t->e);
    assert_true(need > t->e->ops->durable_lsn(t->e));
    assert_true(a.ops_bytes > 0); /* the ops the node's WATCH bookkeeping sees */
    le_command(t, "GET k");
    assert_int_equal(t->e->ops->release_lsn(t->e), need);
    le_flush_and_sync(t);
    assert_true(t->e->ops->durable_lsn(t->e) >= need);
}

/* EXEC: one WAL record for the whole transaction; a PING in it is the host's. */
static void test_local_engine_exec_is_one_record_and_asks_the_host_for_the_rest(void **state) {
    struct le *t = *state;
    struct buf list;
    buf_init(&list);
    cmdlist_begin(&list, CMDLIST_EXEC, 3);
    struct resp_arg set[3] = {
        {(const uint8_t *)"SET", 3}, {(const uint8_t *)"a", 1}, {(const uint8_t *)"1", 1}};
    struct resp_arg ping[1] = {{(const uint8_t *)"PING", 4}};
    struct resp_arg incr[2] = {{(const uint8_t *)"INCR", 4}, {(const uint8_t *)"a", 1}};
    cmdlist_add(&list, 3, set);
    cmdlist_add(&list, 1, ping);
    cmdlist_add(&list, 2, incr);
    uint64_t before = t->e->ops->release_lsn(t->e);
    struct engine_request req = {
        .id = 99, .kind = ENGINE_REQUEST_DATA, .proto = 2, .list = list.data, .bytes = list.len};
    buf_clear(&t->out);
    struct engine_answer a;
    t->e->ops->submit(t->e, &req, &t->out, &a);
    buf_append_byte(&t->out, 0);
    assert_string_equal((const char *)t->out.data, "*3\r\n+OK\r\n+PONG\r\n:2\r\n");
    assert_int_equal(t->host_calls, 1);
    assert_int_equal(t->e->ops->release_lsn(t->e), before + 1);
    buf_deinit(&list);
}

/* What was synced survives a crash; what was not may not, and nothing breaks. */
static void test_local_engine_recovers_synced_writes_after_a_crash(void **state) {
    struct le *t = *state;
    le_command(t, "SET kept 1");
    le_flush_and_sync(t);
    le_command(t, "SET maybe 2");
    t->e->ops->free(t->e);
    memdisk_crash(&t->disk, true, 42);
    le_open(t);
    le_command(t, "GET kept");
    assert_string_equal((const char *)t->out.data, "$1\r\n1\r\n");
    assert_true(t->e->ops->key_count(t->e) >= 1);
}

/* A node alone: WAIT has no replica to count, CLUSTER says how to form a cluster. */
static void test_local_engine_answers_engine_commands_of_a_lone_node(void **state) {
    struct le *t = *state;
    le_command(t, "WAIT 1 0");
    assert_string_equal((const char *)t->out.data, ":0\r\n");
    le_command(t, "CLUSTER INFO");
    assert_non_null(strstr((const char *)t->out.data, "start it with --peers"));
    le_command(t, "SET k v");
    le_command(t, "SAVE");
    assert_string_equal((const char *)t->out.data, "+OK\r\n");
    /* The snapshot goes into place at the FLUSH after a sync covers what its scan saw. */
    le_flush_and_sync(t);
    le_flush_and_sync(t);
    assert_int_equal(t->e->ops->last_save_ms(t->e), t->now_ms);
}

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, le_setup, le_teardown)
    const struct CMUnitTest tests[] = {
        T(test_local_engine_reply_waits_for_the_sync_that_covers_it),
        T(test_local_engine_exec_is_one_record_and_asks_the_host_for_the_rest),
        T(test_local_engine_recovers_synced_writes_after_a_crash),
        T(test_local_engine_answers_engine_commands_of_a_lone_node),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
