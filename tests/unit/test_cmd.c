/* Unit tests for src/cmd: command replies as Redis gives them, and the rule that the ops a
 * command logs rebuild exactly the state it made (replay equals live). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "cmd/cmd.h"
#include "cmd/op.h"

#define T_ARGS_MAX 16
#define T_NOW 1700000000000ull

struct t {
    struct db *db;
    struct buf out;
    struct buf ops;
    uint64_t now_ms;
    int proto;
};

static int t_setup(void **state) {
    struct t *t = calloc(1, sizeof(*t));
    t->db = db_new(7);
    buf_init(&t->out);
    buf_init(&t->ops);
    t->now_ms = T_NOW;
    t->proto = 2;
    *state = t;
    return 0;
}

static int t_teardown(void **state) {
    struct t *t = *state;
    db_free(t->db);
    buf_deinit(&t->out);
    buf_deinit(&t->ops);
    free(t);
    return 0;
}

/* Runs a space-separated command line; returns the raw reply (valid until the next run). */
static const char *run(struct t *t, const char *line) {
    char copy[512];
    snprintf(copy, sizeof(copy), "%s", line);
    struct resp_arg argv[T_ARGS_MAX];
    uint32_t argc = 0;
    for (char *tok = strtok(copy, " "); tok != NULL; tok = strtok(NULL, " ")) {
        argv[argc].data = (const uint8_t *)tok;
        argv[argc].bytes = strcmp(tok, "''") == 0 ? 0 : strlen(tok);
        argc++;
    }
    const struct cmd_spec *spec = cmd_lookup(argv[0].data, argv[0].bytes);
    assert_non_null(spec);
    assert_non_null(spec->fn);
    buf_clear(&t->out);
    if (!cmd_arity_ok(spec, argc)) {
        buf_append_str(&t->out, "-ARITY\r\n");
    } else {
        struct cmd_ctx ctx = {.db = t->db,
                              .now_ms = t->now_ms,
                              .proto = t->proto,
                              .argc = argc,
                              .argv = argv,
                              .out = &t->out,
                              .ops = &t->ops,
                              .string_bytes_max = CMD_STRING_BYTES_MAX};
        spec->fn(&ctx);
    }
    buf_append_byte(&t->out, 0);
    return (const char *)t->out.data;
}

static void test_cmd_set_options_follow_redis(void **state) {
    struct t *t = *state;
    assert_string_equal(run(t, "SET a 1"), "+OK\r\n");
    assert_string_equal(run(t, "SET a 2 NX"), "$-1\r\n");
    assert_string_equal(run(t, "SET b 2 XX"), "$-1\r\n");
    assert_string_equal(run(t, "SET a 3 XX GET"), "$1\r\n1\r\n");
    assert_string_equal(run(t, "SET a 4 NX XX"), "-ERR syntax error\r\n");
    assert_string_equal(run(t, "SET a 4 EX 0"), "-ERR invalid expire time in 'set' command\r\n");
    assert_string_equal(run(t, "SET a 4 EX x"), "-ERR value is not an integer or out of range\r\n");
    assert_string_equal(run(t, "SET a 4 EX 10 PX 10"), "-ERR syntax error\r\n");
    assert_string_equal(run(t, "SET a 5 PX 1500"), "+OK\r\n");
    assert_string_equal(run(t, "PTTL a"), ":1500\r\n");
    assert_string_equal(run(t, "TTL a"), ":2\r\n");
    assert_string_equal(run(t, "SET a 6 KEEPTTL"), "+OK\r\n");
    assert_string_equal(run(t, "PTTL a"), ":1500\r\n");
    assert_string_equal(run(t, "SET a 7"), "+OK\r\n");
    assert_string_equal(run(t, "TTL a"), ":-1\r\n");
    assert_string_equal(run(t, "TTL nokey"), ":-2\r\n");
}

/* Valkey 8.1 SET ... IFEQ: compare-and-set. */
static void test_cmd_set_ifeq_sets_only_when_the_value_matches(void **state) {
    struct t *t = *state;
    assert_string_equal(run(t, "SET k v IFEQ old"), "$-1\r\n");
    assert_string_equal(run(t, "EXISTS k"), ":0\r\n");
    run(t, "SET k old");
    assert_string_equal(run(t, "SET k new IFEQ wrong"), "$-1\r\n");
    assert_string_equal(run(t, "GET k"), "$3\r\nold\r\n");
    assert_string_equal(run(t, "SET k new IFEQ old"), "+OK\r\n");
    assert_string_equal(run(t, "SET k newer IFEQ new GET"), "$3\r\nnew\r\n");
    assert_string_equal(run(t, "GET k"), "$5\r\nnewer\r\n");
    assert_string_equal(run(t, "SET k x IFEQ a NX"), "-ERR syntax error\r\n");
    run(t, "SADD s m");
    assert_string_equal(run(t, "SET s x IFEQ m"),
                        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
}

static void test_cmd_counters_refuse_overflow_and_non_integers(void **state) {
    struct t *t = *state;
    assert_string_equal(run(t, "INCR c"), ":1\r\n");
    assert_string_equal(run(t, "INCRBY c 41"), ":42\r\n");
    assert_string_equal(run(t, "DECRBY c 50"), ":-8\r\n");
    run(t, "SET c 9223372036854775807");
    assert_string_equal(run(t, "INCR c"), "-ERR increment or decrement would overflow\r\n");
    assert_string_equal(run(t, "GET c"), "$19\r\n9223372036854775807\r\n");
    run(t, "SET s abc");
    assert_string_equal(run(t, "INCR s"), "-ERR value is not an integer or out of range\r\n");
    assert_string_equal(run(t, "INCRBY c x"), "-ERR value is not an integer or out of range\r\n");
    assert_string_equal(run(t, "DECRBY c -9223372036854775808"),
                        "-ERR decrement would overflow\r\n");
}

static void test_cmd_wrong_type_is_refused_for_every_family(void **state) {
    struct t *t = *state;
    const char *wrongtype =
        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n";
    run(t, "SADD s a");
    run(t, "HSET h f v");
    assert_string_equal(run(t, "GET s"), wrongtype);
    assert_string_equal(run(t, "APPEND h x"), wrongtype);
    assert_string_equal(run(t, "SADD h x"), wrongtype);
    assert_string_equal(run(t, "HGET s f"), wrongtype);
    assert_string_equal(run(t, "INCR h"), wrongtype);
    assert_string_equal(run(t, "TYPE s"), "+set\r\n");
    assert_string_equal(run(t, "TYPE h"), "+hash\r\n");
    assert_string_equal(run(t, "SET s str"), "+OK\r\n");
    assert_string_equal(run(t, "TYPE s"), "+string\r\n");
}

static void test_cmd_sets_and_hashes_delete_the_key_when_emptied(void **state) {
    struct t *t = *state;
    assert_string_equal(run(t, "SADD s a b a"), ":2\r\n");
    assert_string_equal(run(t, "SCARD s"), ":2\r\n");
    assert_string_equal(run(t, "SREM s a x"), ":1\r\n");
    assert_string_equal(run(t, "SREM s b"), ":1\r\n");
    assert_string_equal(run(t, "EXISTS s"), ":0\r\n");
    assert_string_equal(run(t, "HSET h f 1 g 2"), ":2\r\n");
    assert_string_equal(run(t, "HSET h f 3"), ":0\r\n");
    assert_string_equal(run(t, "HINCRBY h f 4"), ":7\r\n");
    assert_string_equal(run(t, "HINCRBY h nf x"),
                        "-ERR value is not an integer or out of range\r\n");
    run(t, "HSET h t abc");
    assert_string_equal(run(t, "HINCRBY h t 1"), "-ERR hash value is not an integer\r\n");
    assert_string_equal(run(t, "HDEL h f g t"), ":3\r\n");
    assert_string_equal(run(t, "EXISTS h"), ":0\r\n");
    assert_string_equal(run(t, "HSET h f 1 g"),
                        "-ERR wrong number of arguments for 'hset' command\r\n");
}

static void test_cmd_expiry_is_lazy_and_absolute(void **state) {
    struct t *t = *state;
    run(t, "SET a 1 PX 100");
    run(t, "SADD s m");
    assert_string_equal(run(t, "PEXPIRE s 50"), ":1\r\n");
    assert_string_equal(run(t, "EXPIRE s 10 NX"), ":0\r\n");
    assert_string_equal(run(t, "EXPIRE s 10 GT"), ":1\r\n");
    assert_string_equal(run(t, "EXPIRE s 5 GT"), ":0\r\n");
    assert_string_equal(run(t, "EXPIRE s 5 NX XX"),
                        "-ERR NX and XX, GT or LT options at the same time are not compatible\r\n");
    t->now_ms += 100;
    assert_string_equal(run(t, "GET a"), "$-1\r\n");
    assert_string_equal(run(t, "EXISTS s"), ":1\r\n");
    assert_string_equal(run(t, "PERSIST s"), ":1\r\n");
    assert_string_equal(run(t, "TTL s"), ":-1\r\n");
    assert_string_equal(run(t, "EXPIRE s -1"), ":1\r\n");
    assert_string_equal(run(t, "EXISTS s"), ":0\r\n");
}

static void test_cmd_append_and_strlen_track_the_value(void **state) {
    struct t *t = *state;
    assert_string_equal(run(t, "APPEND a hello"), ":5\r\n");
    assert_string_equal(run(t, "APPEND a _world"), ":11\r\n");
    assert_string_equal(run(t, "STRLEN a"), ":11\r\n");
    assert_string_equal(run(t, "GETDEL a"), "$11\r\nhello_world\r\n");
    assert_string_equal(run(t, "STRLEN a"), ":0\r\n");
    assert_string_equal(run(t, "MSET x 1 y 2"), "+OK\r\n");
    assert_string_equal(run(t, "MGET x nokey y"), "*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n");
    assert_string_equal(run(t, "MSETNX y 3 z 4"), ":0\r\n");
    assert_string_equal(run(t, "MSET x 1 y"),
                        "-ERR wrong number of arguments for 'mset' command\r\n");
}

static void test_cmd_scan_returns_every_key_once_with_match(void **state) {
    struct t *t = *state;
    char line[64];
    for (int i = 0; i < 300; i++) {
        snprintf(line, sizeof(line), "SET key:%d v", i);
        run(t, line);
    }
    run(t, "SADD other x");
    int seen[300] = {0};
    char cursor[32] = "0";
    do {
        snprintf(line, sizeof(line), "SCAN %s MATCH key:* COUNT 7", cursor);
        const char *r = run(t, line);
        assert_true(sscanf(r, "*2\r\n$%*d\r\n%31[0-9]", cursor) == 1);
        for (const char *p = strstr(r, "key:"); p != NULL; p = strstr(p + 1, "key:")) {
            seen[atoi(p + 4)]++;
        }
        assert_null(strstr(r, "other"));
    } while (strcmp(cursor, "0") != 0);
    for (int i = 0; i < 300; i++) assert_true(seen[i] >= 1);
    assert_string_equal(run(t, "SCAN x"), "-ERR invalid cursor\r\n");
    assert_string_equal(run(t, "DBSIZE"), ":301\r\n");
}

/* Dumps a db as sorted text lines, for comparing states. */
static void dump_entry(void *ctx, struct db_entry *e) {
    struct buf *lines = ctx;
    struct buf one;
    buf_init(&one);
    op_put_entry(&one, e);
    size_t key_bytes;
    const uint8_t *key = db_entry_key(e, &key_bytes);
    buf_appendf(lines, "%.*s type=%d expire=%llu ops=%zu|", (int)key_bytes, (const char *)key,
                (int)db_entry_type(e), (unsigned long long)db_entry_expire_ms(e), one.len);
    buf_deinit(&one);
}

static size_t dump_count(struct db *db) {
    struct buf lines;
    buf_init(&lines);
    uint64_t cursor = 0;
    do {
        cursor = db_scan(db, cursor, dump_entry, &lines);
    } while (cursor != 0);
    size_t n = lines.len;
    buf_deinit(&lines);
    return n;
}

/* The WAL rule: applying the logged ops to an empty db gives the live state. */
static void test_cmd_logged_ops_replay_to_the_live_state(void **state) {
    struct t *t = *state;
    const char *lines[] = {"SET a 1",        "INCR a",          "APPEND a xyz",   "APPEND b q",
                           "SADD s a b c",   "SREM s b",        "HSET h f 1 g 2", "HINCRBY h f 5",
                           "HDEL h g",       "SET e v PX 5000", "EXPIRE a 100",   "PERSIST a",
                           "DEL b",          "MSET m1 1 m2 2",  "GETSET m1 9",    "SADD gone x",
                           "SREM gone x",    "SET c 10",        "DECRBY c 3",     "HSETNX h n 1",
                           "GETEX e PERSIST"};
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) run(t, lines[i]);
    struct errmsg msg;
    assert_int_equal(op_validate(t->ops.data, t->ops.len, &msg), 0);
    struct db *replayed = db_new(99);
    assert_int_equal(op_apply(replayed, t->ops.data, t->ops.len, &msg), 0);
    assert_int_equal(db_count(replayed), db_count(t->db));
    assert_int_equal(dump_count(replayed), dump_count(t->db));
    struct db_entry *e = db_find(replayed, (const uint8_t *)"a", 1);
    size_t bytes;
    assert_non_null(e);
    assert_memory_equal(db_entry_string(e, &bytes), "2xyz", 4);
    assert_null(db_find(replayed, (const uint8_t *)"gone", 4));
    db_free(replayed);
}

/* op.h: replaying a log suffix over a later state converges (fuzzy snapshots). */
static void test_cmd_ops_replayed_twice_give_the_same_state(void **state) {
    struct t *t = *state;
    run(t, "SADD k a");
    run(t, "SREM k a");
    run(t, "SET k str");
    run(t, "APPEND k 123");
    run(t, "HSET k2 f v");
    struct errmsg msg;
    struct db *twice = db_new(5);
    assert_int_equal(op_apply(twice, t->ops.data, t->ops.len, &msg), 0);
    assert_int_equal(op_apply(twice, t->ops.data, t->ops.len, &msg), 0);
    size_t bytes;
    struct db_entry *e = db_find(twice, (const uint8_t *)"k", 1);
    assert_non_null(e);
    assert_int_equal(db_entry_type(e), VALUE_STRING);
    assert_memory_equal(db_entry_string(e, &bytes), "str123", 6);
    assert_int_equal(bytes, 6);
    db_free(twice);
}

static void test_op_validate_rejects_truncated_and_unknown_ops(void **state) {
    struct t *t = *state;
    run(t, "SET a 1");
    struct errmsg msg;
    assert_int_equal(op_validate(t->ops.data, t->ops.len - 1, &msg), ERR_CORRUPT);
    uint8_t bad[] = {99, 0, 0, 0, 0};
    assert_int_equal(op_validate(bad, sizeof(bad), &msg), ERR_CORRUPT);
    uint8_t huge_list[] = {OP_SADD, 1, 0, 0, 0, 'k', 0xff, 0xff, 0xff, 0x7f};
    assert_int_equal(op_validate(huge_list, sizeof(huge_list), &msg), ERR_CORRUPT);
    /* A SETRANGE whose string would pass the db's limit (found by fuzz_op). */
    struct buf op;
    buf_init(&op);
    op_put_setrange(&op, (const uint8_t *)"k", 1, DB_VALUE_BYTES_MAX, (const uint8_t *)"x", 1, 0);
    assert_int_equal(op_validate(op.data, op.len, &msg), ERR_CORRUPT);
    buf_clear(&op);
    op_put_setrange(&op, (const uint8_t *)"k", 1, DB_VALUE_BYTES_MAX - 1, (const uint8_t *)"x", 1,
                    0);
    assert_int_equal(op_validate(op.data, op.len, &msg), 0);
    buf_deinit(&op);
}

static void test_cmd_table_is_sorted_and_arity_checked(void **state) {
    (void)state;
    size_t count;
    const struct cmd_spec *table = cmd_table(&count);
    assert_true(count > 60);
    assert_non_null(cmd_lookup((const uint8_t *)"gEt", 3));
    assert_null(cmd_lookup((const uint8_t *)"nope", 4));
    const struct cmd_spec *get = cmd_lookup((const uint8_t *)"get", 3);
    assert_true(cmd_arity_ok(get, 2));
    assert_false(cmd_arity_ok(get, 3));
    const struct cmd_spec *del = cmd_lookup((const uint8_t *)"del", 3);
    assert_false(cmd_arity_ok(del, 1));
    assert_true(cmd_arity_ok(del, 9));
    (void)table;
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_cmd_set_options_follow_redis, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_cmd_set_ifeq_sets_only_when_the_value_matches, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_cmd_counters_refuse_overflow_and_non_integers, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_cmd_wrong_type_is_refused_for_every_family, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_cmd_sets_and_hashes_delete_the_key_when_emptied,
                                        t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_cmd_expiry_is_lazy_and_absolute, t_setup, t_teardown),
        cmocka_unit_test_setup_teardown(test_cmd_append_and_strlen_track_the_value, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_cmd_scan_returns_every_key_once_with_match, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_cmd_logged_ops_replay_to_the_live_state, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_cmd_ops_replayed_twice_give_the_same_state, t_setup,
                                        t_teardown),
        cmocka_unit_test_setup_teardown(test_op_validate_rejects_truncated_and_unknown_ops, t_setup,
                                        t_teardown),
        cmocka_unit_test(test_cmd_table_is_sorted_and_arity_checked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
