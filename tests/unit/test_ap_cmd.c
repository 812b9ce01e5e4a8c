/*
 * Unit tests of the AP command layer (src/ap/ap_cmd.c): Redis commands on one object
 * under each conflict policy, and what the lessons promise once two replicas' objects are
 * merged: the two-tabs cart keeps the item once, counters add up, lww-wallclock loses a
 * write to clock skew and lww does not, siblings surface a conflict that VSET resolves.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "ap/ap_cmd.h"
#include "crdt/hlc.h"

#define TEST_ARGS_MAX 16
#define TEST_KEYS_MAX 8

/* One replica: its objects by key (each key is its own object), its clock and context. */
struct test_replica {
    char keys[TEST_KEYS_MAX][16];
    struct ap_object objects[TEST_KEYS_MAX];
    uint32_t key_count;
    struct ap_cmd_ctx ctx;
    struct hlc hlc;
};

static void test_replica_init(struct test_replica *t, uint32_t node, enum ap_conflict conflict) {
    memset(t, 0, sizeof(*t));
    hlc_init(&t->hlc);
    t->ctx.conflict = conflict;
    t->ctx.actor = crdt_actor(node, 1);
    t->ctx.now_ms = 1000000;
    t->ctx.proto = 2;
}

static struct ap_object *test_object(struct test_replica *t, const char *key) {
    for (uint32_t i = 0; i < t->key_count; i++)
        if (strcmp(t->keys[i], key) == 0) return &t->objects[i];
    assert_true(t->key_count < TEST_KEYS_MAX);
    snprintf(t->keys[t->key_count], sizeof(t->keys[0]), "%s", key);
    ap_object_init(&t->objects[t->key_count]);
    return &t->objects[t->key_count++];
}

/* Runs a space-separated command on the replica (a new HLC timestamp for it, or the raw
 * wall clock under lww-wallclock) and checks the RESP reply (want_bytes long); returns
 * whether it wrote. */
static bool test_run_n(struct test_replica *t, const char *line, const char *want,
                       size_t want_bytes) {
    char copy[256];
    snprintf(copy, sizeof(copy), "%s", line);
    struct resp_arg argv[TEST_ARGS_MAX];
    uint32_t argc = 0;
    for (char *w = strtok(copy, " "); w != NULL; w = strtok(NULL, " ")) {
        argv[argc].data = (const uint8_t *)w;
        argv[argc++].bytes = strlen(w);
    }
    struct ap_object *o = test_object(t, argc > 1 ? (const char *)argv[1].data : "");
    bool wall = t->ctx.conflict == AP_CONFLICT_LWW_WALLCLOCK;
    t->ctx.ts = wall ? hlc_from_wall_ms(t->ctx.now_ms) : hlc_now(&t->hlc, t->ctx.now_ms);
    struct buf out;
    buf_init(&out);
    struct ap_cmd_result res;
    ap_cmd_run(&t->ctx, o, argc, argv, &out, &res);
    if (out.len != want_bytes || memcmp(out.data, want, out.len) != 0)
        fail_msg("%s: got %.*s, want %s", line, (int)out.len, (const char *)out.data, want);
    buf_deinit(&out);
    return res.wrote;
}

static bool test_run(struct test_replica *t, const char *line, const char *want) {
    return test_run_n(t, line, want, strlen(want));
}

/* What a replica does with the states of another: observe their clocks, merge them. */
static void test_receive(struct test_replica *t, struct test_replica *from) {
    for (uint32_t i = 0; i < from->key_count; i++) {
        const struct ap_object *o = &from->objects[i];
        assert_int_equal(
            hlc_observe(&t->hlc, ap_object_newest_ts(o), t->ctx.now_ms, HLC_OFFSET_MS_DEFAULT), 0);
        ap_object_merge(test_object(t, from->keys[i]), o);
    }
}

static void test_replica_deinit(struct test_replica *t) {
    for (uint32_t i = 0; i < t->key_count; i++) ap_object_deinit(&t->objects[i]);
}

/* The two-tabs cart (crdt): the same item added on both sides of a partition is there once
 * after the heal; a remove concurrent with an add loses to it (add wins). */
static void test_ap_cmd_two_tabs_cart_keeps_the_item_once(void **state) {
    (void)state;
    struct test_replica x, y;
    test_replica_init(&x, 1, AP_CONFLICT_CRDT);
    test_replica_init(&y, 2, AP_CONFLICT_CRDT);
    assert_true(test_run(&x, "SADD cart book", ":1\r\n"));
    assert_true(test_run(&y, "SADD cart book pen", ":2\r\n"));
    test_receive(&x, &y);
    test_receive(&y, &x);
    test_run(&x, "SMEMBERS cart", "*2\r\n$4\r\nbook\r\n$3\r\npen\r\n");
    test_run(&y, "SCARD cart", ":2\r\n");
    assert_true(test_run(&x, "SREM cart pen", ":1\r\n"));
    assert_true(test_run(&y, "SADD cart pen", ":0\r\n")); /* again, concurrently */
    test_receive(&x, &y);
    test_run(&x, "SISMEMBER cart pen", ":1\r\n");
    test_run(&x, "GET cart",
             "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    test_run(&x, "TYPE cart", "+set\r\n");
    test_replica_deinit(&x);
    test_replica_deinit(&y);
}

/* Counters (crdt): concurrent INCRBY 7 and 3 give 10; DEL and a concurrent INCR keep the
 * INCR; hashes count up per field; a gcounter refuses decrements. */
static void test_ap_cmd_counters_add_up(void **state) {
    (void)state;
    struct test_replica x, y;
    test_replica_init(&x, 1, AP_CONFLICT_CRDT);
    test_replica_init(&y, 2, AP_CONFLICT_CRDT);
    test_run(&x, "INCRBY hits 7", ":7\r\n");
    test_run(&y, "INCRBY hits 3", ":3\r\n");
    test_receive(&x, &y);
    test_run(&x, "GET hits", "$2\r\n10\r\n");
    test_receive(&y, &x);
    test_run(&x, "DEL hits", ":1\r\n");
    test_run(&y, "DECR hits", ":9\r\n");
    test_receive(&x, &y);
    test_run(&x, "GET hits", "$2\r\n-1\r\n");
    test_run(&x, "HINCRBY page views 2", ":2\r\n");
    test_run(&y, "HINCRBY page views 5", ":5\r\n");
    test_run(&y, "HSET page title home", ":1\r\n");
    test_receive(&x, &y);
    test_run(&x, "HGETALL page", "*4\r\n$5\r\ntitle\r\n$4\r\nhome\r\n$5\r\nviews\r\n$1\r\n7\r\n");
    x.ctx.grow_only = true;
    test_run(
        &x, "DECRBY g 1",
        "-ERR this keyspace's counters only grow (type = gcounter): decrements are refused\r\n");
    test_replica_deinit(&x);
    test_replica_deinit(&y);
}

/* The lesson's lost write: node 2's clock is 100 ms behind node 1's. Node 2 reads node 1's
 * value and writes after it. Under lww-wallclock node 2's write carries the earlier time
 * and loses; under lww the HLC orders it after what node 2 saw, and it wins. */
static void test_ap_cmd_wallclock_loses_a_write_to_skew_and_hlc_does_not(void **state) {
    (void)state;
    enum ap_conflict policies[] = {AP_CONFLICT_LWW_WALLCLOCK, AP_CONFLICT_LWW};
    const char *want[] = {"$5\r\nfirst\r\n", "$6\r\nsecond\r\n"};
    for (int i = 0; i < 2; i++) {
        struct test_replica x, y;
        test_replica_init(&x, 1, policies[i]);
        test_replica_init(&y, 2, policies[i]);
        y.ctx.now_ms = x.ctx.now_ms - 100;
        test_run(&x, "SET profile first", "+OK\r\n");
        test_receive(&y, &x);
        test_run(&y, "GET profile", "$5\r\nfirst\r\n");
        test_run(&y, "SET profile second", "+OK\r\n");
        test_receive(&x, &y);
        test_run(&x, "GET profile", want[i]);
        test_run(&y, "GET profile", want[i]);
        test_replica_deinit(&x);
        test_replica_deinit(&y);
    }
}

/* Siblings: concurrent SETs are both kept and GET says so; VGET returns them with a
 * context that VSET uses, on any node, to replace exactly those. */
static void test_ap_cmd_siblings_surface_and_resolve(void **state) {
    (void)state;
    struct test_replica x, y;
    test_replica_init(&x, 1, AP_CONFLICT_SIBLINGS);
    test_replica_init(&y, 2, AP_CONFLICT_SIBLINGS);
    test_run(&x, "VGET cart", "*2\r\n$2\r\n00\r\n*0\r\n"); /* an empty context, as hex */
    test_run(&x, "VSET cart 0z v",
             "-ERR the context is not one VGET returned (pass its first element back as it "
             "is)\r\n");
    test_run(&x, "SET cart a", "+OK\r\n");
    test_run(&y, "SET cart b", "+OK\r\n");
    test_receive(&x, &y);
    test_run(&x, "GET cart",
             "-CONFLICT the key has 2 siblings (concurrent writes): VGET key returns them with a "
             "context, VSET key context value replaces them\r\n");
    /* The context of x's VGET: version vector {1:1, 2:1}, encoded, in hex. */
    struct buf raw, ctx;
    buf_init(&raw);
    buf_init(&ctx);
    vv_encode(&test_object(&x, "cart")->parts[AP_TYPE_SIBLINGS].u.siblings.clock, &raw);
    for (size_t i = 0; i < raw.len; i++) buf_appendf(&ctx, "%02x", raw.data[i]);
    buf_deinit(&raw);
    struct resp_arg argv[4] = {{(const uint8_t *)"VSET", 4},
                               {(const uint8_t *)"cart", 4},
                               {ctx.data, ctx.len},
                               {(const uint8_t *)"ab", 2}};
    struct buf out;
    buf_init(&out);
    struct ap_cmd_result res;
    y.ctx.ts = hlc_now(&y.hlc, y.ctx.now_ms);
    ap_cmd_run(&y.ctx, test_object(&y, "cart"), 4, argv, &out,
               &res); /* on y, which has not seen "a" yet */
    assert_true(res.wrote && res.siblings == 1);
    test_receive(&y, &x);
    test_run(&y, "GET cart", "$2\r\nab\r\n");
    test_receive(&x, &y);
    test_run(&x, "GET cart", "$2\r\nab\r\n");
    test_run(&x, "INCR cart",
             "-ERR a siblings keyspace holds plain strings: counters need conflict = crdt\r\n");
    buf_deinit(&out);
    buf_deinit(&ctx);
    test_replica_deinit(&x);
    test_replica_deinit(&y);
}

/* lww keeps whole Redis values: strings, sets and hashes, types checked, INCR on strings. */
static void test_ap_cmd_lww_serves_whole_values(void **state) {
    (void)state;
    struct test_replica x;
    test_replica_init(&x, 1, AP_CONFLICT_LWW);
    test_run(&x, "SADD s b a b", ":2\r\n");
    test_run(&x, "SMEMBERS s", "*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    test_run(&x, "SREM s a z", ":1\r\n");
    test_run(&x, "HSET h f 1 g 2", ":2\r\n");
    test_run(&x, "HINCRBY h f 41", ":42\r\n");
    test_run(&x, "HGET h f", "$2\r\n42\r\n");
    test_run(&x, "HDEL h f nope", ":1\r\n");
    test_run(&x, "HLEN h", ":1\r\n");
    test_run(&x, "INCR n", ":1\r\n");
    test_run(&x, "INCRBY n 9", ":10\r\n");
    test_run(&x, "SADD n x",
             "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    test_run(&x, "TYPE h", "+hash\r\n");
    test_run(&x, "SREM s b", ":1\r\n");
    test_run(&x, "EXISTS s", ":0\r\n");
    test_replica_deinit(&x);
}

/* TTLs: SET EX, TTL and PTTL, PERSIST, an expired key reads absent and a write on it starts
 * from nothing; options that are conditions, and unknown commands, say what to use. */
static void test_ap_cmd_expiry_and_refusals(void **state) {
    (void)state;
    struct test_replica x;
    test_replica_init(&x, 1, AP_CONFLICT_CRDT);
    test_run(&x, "SET k v EX 10", "+OK\r\n");
    test_run(&x, "TTL k", ":10\r\n");
    test_run(&x, "PERSIST k", ":1\r\n");
    test_run(&x, "TTL k", ":-1\r\n");
    test_run(&x, "PEXPIRE k 1500", ":1\r\n");
    test_run(&x, "PTTL k", ":1500\r\n");
    x.ctx.now_ms += 1500;
    test_run(&x, "GET k", "$-1\r\n");
    test_run(&x, "TTL k", ":-2\r\n");
    test_run(&x, "SADD k m", ":1\r\n");
    test_run(&x, "TYPE k", "+set\r\n");
    test_run(&x, "SET k v NX",
             "-ERR this SET option is not served on AP keys (conditions need a CP keyspace): SET "
             "key value [EX s | PX ms | KEEPTTL]\r\n");
    test_run(&x, "LPUSH k v",
             "-ERR 'LPUSH' is not served on AP keys (see docs/engines.md); transactions, WATCH "
             "and conditions need a CP keyspace\r\n");
    test_run(&x, "GET", "-ERR wrong number of arguments for 'get' command\r\n");
    bool writes = false;
    assert_true(ap_cmd_known((const uint8_t *)"HINCRBY", 7, &writes) && writes);
    assert_true(ap_cmd_known((const uint8_t *)"smembers", 8, &writes) && !writes);
    assert_false(ap_cmd_known((const uint8_t *)"MULTI", 5, &writes));
    test_replica_deinit(&x);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ap_cmd_two_tabs_cart_keeps_the_item_once),
        cmocka_unit_test(test_ap_cmd_counters_add_up),
        cmocka_unit_test(test_ap_cmd_wallclock_loses_a_write_to_skew_and_hlc_does_not),
        cmocka_unit_test(test_ap_cmd_siblings_surface_and_resolve),
        cmocka_unit_test(test_ap_cmd_lww_serves_whole_values),
        cmocka_unit_test(test_ap_cmd_expiry_and_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
