/*
 * Unit tests of the AP engine (src/ap) behind the engine interface: three engines on
 * memdisks, their peer payloads delivered by the test (and dropped across a cut), syncs
 * run at once. What the issue promises a client: any node serves any key, w = quorum
 * writes need a majority of the key's replicas reachable (-NOQUORUM on the minority side,
 * nothing written), w = one writes succeed on both sides of a partition, and after the
 * heal a read merges both sides and repairs the replicas.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ap/ap.h"
#include "ap/object.h"
#include "ap/ring.h"
#include "cmd/cmd.h"
#include "storage/memdisk.h"

#define TC_NODES 4 /* at most */
#define TC_REPLIES 256

struct tc_msg {
    uint32_t from, to;
    struct buf data;
};

struct tc_reply {
    uint64_t id;
    char text[256];
};

struct tc {
    int count; /* nodes in this test */
    struct disk disk[TC_NODES];
    struct engine *e[TC_NODES];
    bool cut[TC_NODES];               /* node i+1 hears and reaches nobody */
    struct disk_file *sync[TC_NODES]; /* a sync asked for, run after the sends went out */
    uint64_t sync_token[TC_NODES];
    uint64_t now_ms, mono_ms, next_id;
    struct tc_msg *queue;
    size_t queued, queue_cap;
    struct tc_reply replies[TC_REPLIES];
    size_t reply_count;
};

static void tc_record(struct tc *t, uint64_t id, const uint8_t *data, size_t bytes) {
    assert_true(t->reply_count < TC_REPLIES);
    struct tc_reply *r = &t->replies[t->reply_count++];
    r->id = id;
    snprintf(r->text, sizeof(r->text), "%.*s", (int)bytes, (const char *)data);
}

static void tc_effects(struct tc *t, int i, const struct engine_effects *e) {
    for (size_t k = 0; k < e->reply_count; k++)
        tc_record(t, e->replies[k].id, e->replies[k].data, e->replies[k].bytes);
    for (size_t k = 0; k < e->send_count; k++) {
        if (t->queued == t->queue_cap) {
            t->queue_cap = t->queue_cap < 64 ? 64 : t->queue_cap * 2;
            t->queue = realloc(t->queue, t->queue_cap * sizeof(*t->queue));
        }
        struct tc_msg *m = &t->queue[t->queued++];
        m->from = (uint32_t)i + 1;
        m->to = e->sends[k].to;
        buf_init(&m->data);
        buf_append(&m->data, e->sends[k].data, e->sends[k].bytes);
    }
    assert_int_equal(e->fatal, 0);
}

static void tc_step(struct tc *t, int i, enum engine_event_kind kind, struct engine_event *ev) {
    struct engine_event local = {0};
    if (ev == NULL) ev = &local;
    ev->kind = kind;
    ev->now_ms = t->now_ms;
    ev->mono_ms = t->mono_ms;
    struct engine_effects e;
    t->e[i]->ops->step(t->e[i], ev, &e);
    if (e.sync_file != NULL) {
        assert_null(t->sync[i]); /* one at a time */
        t->sync[i] = e.sync_file;
        t->sync_token[i] = e.sync_token;
    }
    tc_effects(t, i, &e);
}

/* Runs a node's sync as the shell would: after its sends went out (SENT came first). */
static void tc_sync(struct tc *t, int i) {
    if (t->sync[i] == NULL) return;
    struct errmsg msg;
    int rc = t->disk[i].sync(&t->disk[i], t->sync[i], &msg);
    struct engine_event s = {.token = t->sync_token[i], .error = rc};
    t->sync[i] = NULL;
    tc_step(t, i, ENGINE_EVENT_SYNCED, &s);
}

/* One FLUSH of every node, then every payload delivered (unless across the cut). */
static void tc_flush(struct tc *t) {
    for (int i = 0; i < t->count; i++) {
        tc_step(t, i, ENGINE_EVENT_FLUSH, NULL);
        tc_step(t, i, ENGINE_EVENT_SENT, NULL);
        tc_sync(t, i);
    }
    size_t count = t->queued;
    struct tc_msg *batch = t->queue;
    t->queue = NULL;
    t->queued = t->queue_cap = 0;
    for (size_t k = 0; k < count; k++) {
        struct tc_msg *m = &batch[k];
        bool dropped = t->cut[m->from - 1] || t->cut[m->to - 1];
        if (!dropped) {
            struct engine_event ev = {
                .from = m->from, .data = m->data.data + 1, .bytes = m->data.len - 1};
            assert_int_equal(m->data.data[0], ENGINE_AP);
            tc_step(t, (int)m->to - 1, ENGINE_EVENT_PEER, &ev);
        }
        buf_deinit(&m->data);
    }
    free(batch);
}

/* ms of time, 10 ms at a time: ticks, flushes, deliveries. */
static void tc_run(struct tc *t, uint64_t ms) {
    for (uint64_t done = 0; done < ms; done += 10) {
        t->now_ms += 10;
        t->mono_ms += 10;
        for (int i = 0; i < t->count; i++) tc_step(t, i, ENGINE_EVENT_TICK, NULL);
        tc_flush(t);
        tc_flush(t); /* answers to what the first round delivered */
    }
}

static void tc_keyspace(struct engine_config *c, const char *name, const char *glob,
                        enum keyspace_quorum w) {
    struct keyspace *k = &c->keyspaces[c->keyspace_count++];
    memset(k, 0, sizeof(*k));
    snprintf(k->name, sizeof(k->name), "%s", name);
    snprintf(k->match[0], sizeof(k->match[0]), "%s", glob);
    k->match_count = 1;
    k->mode = KEYSPACE_MODE_AP;
    k->conflict = KEYSPACE_CONFLICT_CRDT;
    k->w = w;
    k->r = w;
}

static int tc_setup_n(void **state, int count) {
    struct tc *t = calloc(1, sizeof(*t));
    t->count = count;
    t->now_ms = 1700000000000ull;
    t->mono_ms = 1000;
    for (int i = 0; i < t->count; i++) {
        memdisk_init(&t->disk[i]);
        struct engine_config c = {0};
        c.id = (uint32_t)i + 1;
        c.fsync = ENGINE_FSYNC_ALWAYS;
        c.string_bytes_max = 1 << 20;
        c.snapshot_log_bytes = 1ull << 30;
        c.wal_segment_bytes = 1u << 20;
        c.hash_seed = 7;
        c.seed = 100 + (uint64_t)i;
        c.peer_count = (uint32_t)count;
        for (uint32_t p = 0; p < (uint32_t)count; p++) {
            c.peers[p].id = p + 1;
            snprintf(c.peers[p].addr, sizeof(c.peers[p].addr), "127.0.0.1:%u", 8001 + p);
        }
        tc_keyspace(&c, "cart", "cart:*", KEYSPACE_QUORUM_QUORUM);
        tc_keyspace(&c, "feed", "*", KEYSPACE_QUORUM_ONE);
        struct errmsg msg;
        if (ap_engine_ops.open(&c, &t->disk[i], t->now_ms, &t->e[i], &msg) != 0)
            fail_msg("open: %s", msg.text);
    }
    tc_run(t, 200); /* pings: everyone reachable */
    *state = t;
    return 0;
}

static int tc_setup(void **state) {
    return tc_setup_n(state, 3);
}

static int tc_setup4(void **state) {
    return tc_setup_n(state, 4);
}

static int tc_teardown(void **state) {
    struct tc *t = *state;
    for (int i = 0; i < t->count; i++) {
        t->e[i]->ops->free(t->e[i]);
        memdisk_deinit(&t->disk[i]);
    }
    free(t->queue);
    free(t);
    return 0;
}

/* Submits a command to node (1-based) at a read level (0: the keyspace's); returns its
 * request id and whether it is pending. */
static uint64_t tc_submit(struct tc *t, int node, const char *line, int level, bool *pending) {
    struct resp_arg argv[8];
    char words[128];
    snprintf(words, sizeof(words), "%s", line);
    uint32_t argc = 0;
    for (char *w = strtok(words, " "); w != NULL && argc < 8; w = strtok(NULL, " "))
        argv[argc++] = (struct resp_arg){.data = (const uint8_t *)w, .bytes = strlen(w)};
    struct engine_request req = {.id = ++t->next_id,
                                 .kind = ENGINE_REQUEST_DATA,
                                 .now_ms = t->now_ms,
                                 .mono_ms = t->mono_ms,
                                 .proto = 2,
                                 .level = level};
    req.spec = cmd_lookup(argv[0].data, argv[0].bytes);
    assert_non_null(req.spec);
    req.argc = argc;
    req.argv = argv;
    struct buf out;
    buf_init(&out);
    struct engine_answer a;
    t->e[node - 1]->ops->submit(t->e[node - 1], &req, &out, &a);
    for (size_t k = 0; k < a.reply_count; k++)
        tc_record(t, a.replies[k].id, a.replies[k].data, a.replies[k].bytes);
    if (!a.pending) tc_record(t, req.id, out.data, out.len);
    *pending = a.pending;
    buf_deinit(&out);
    return req.id;
}

static uint64_t tc_cmd(struct tc *t, int node, const char *line) {
    bool pending;
    return tc_submit(t, node, line, 0, &pending);
}

static const char *tc_reply(struct tc *t, uint64_t id) {
    for (size_t i = 0; i < t->reply_count; i++)
        if (t->replies[i].id == id) return t->replies[i].text;
    return NULL;
}

/* Runs a command on node and the cluster until it is answered; returns the answer. */
static const char *tc_do(struct tc *t, int node, const char *line) {
    uint64_t id = tc_cmd(t, node, line);
    for (int i = 0; i < 300 && tc_reply(t, id) == NULL; i++) tc_run(t, 10);
    const char *r = tc_reply(t, id);
    if (r == NULL) fail_msg("%s on node %d: no answer", line, node);
    return r;
}

/* Any node serves any key: writes and reads anywhere, replies in RESP. */
static void test_ap_engine_any_node_serves_any_key(void **state) {
    struct tc *t = *state;
    assert_string_equal(tc_do(t, 1, "SADD cart:1 book"), ":1\r\n");
    assert_string_equal(tc_do(t, 2, "SADD cart:1 pen"), ":1\r\n");
    assert_string_equal(tc_do(t, 3, "SCARD cart:1"), ":2\r\n");
    assert_string_equal(tc_do(t, 2, "INCRBY hits 7"), ":7\r\n");
    tc_run(t, 50);
    assert_string_equal(tc_do(t, 3, "INCRBY hits 3"), ":10\r\n");
    /* w = r = one: node 1 reads its own replica, which has the +3 once it arrived. */
    tc_run(t, 50);
    assert_string_equal(tc_do(t, 1, "GET hits"), "$2\r\n10\r\n");
    /* A key's replicas are all three nodes (n = 3): node 1 got the write by replication. */
}

/* Partitioned 1,2 | 3: a w = quorum write on node 3 is refused with -NOQUORUM (nothing
 * written) once node 3 knows; w = one writes succeed on both sides; after the heal a read
 * merges both sides (the two-tabs cart keeps the item once) and repairs every replica. */
static void test_ap_engine_partition_then_heal_converges(void **state) {
    struct tc *t = *state;
    t->cut[2] = true;
    tc_run(t, 600);
    const char *r = tc_do(t, 3, "SADD cart:2 hat");
    assert_non_null(strstr(r, "-NOQUORUM 2 of the key's 3 replicas are needed and 1"));
    assert_string_equal(tc_do(t, 1, "SADD cart:2 shoe"), ":1\r\n");
    assert_string_equal(tc_do(t, 3, "SADD tabs book"), ":1\r\n");
    assert_string_equal(tc_do(t, 1, "SADD tabs book pen"), ":2\r\n");
    assert_string_equal(tc_do(t, 3, "SCARD tabs"), ":1\r\n"); /* its side only */
    t->cut[2] = false;
    tc_run(t, 300);
    assert_string_equal(tc_do(t, 2, "SISMEMBER cart:2 hat"), ":0\r\n"); /* never written */
    /* r = one on the feed keyspace: node 3 answers from its replica; the others repair. */
    tc_do(t, 3, "SCARD tabs");
    tc_run(t, 100);
    assert_string_equal(tc_do(t, 3, "SCARD tabs"), ":2\r\n");
    assert_string_equal(tc_do(t, 2, "SMEMBERS tabs"), "*2\r\n$4\r\nbook\r\n$3\r\npen\r\n");
}

static uint64_t tc_info(struct tc *t, int node, const char *field) {
    struct buf info;
    buf_init(&info);
    t->e[node - 1]->ops->info(t->e[node - 1], "replication", &info);
    buf_append_byte(&info, 0);
    const char *h = strstr((const char *)info.data, field);
    assert_non_null(h);
    uint64_t v = strtoull(h + strlen(field), NULL, 10);
    buf_deinit(&info);
    return v;
}

/* A read of node's own replica (CONSISTENCY stale): answered at once, never waiting. */
static const char *tc_stale(struct tc *t, int node, const char *line) {
    bool pending;
    uint64_t id = tc_submit(t, node, line, KEYSPACE_CONSISTENCY_STALE, &pending);
    assert_false(pending);
    return tc_reply(t, id);
}

/* Hinted handoff (Dynamo §4.6): with 4 nodes and n = 3, writes whose replica (node 2) is
 * cut off go to the next node of each key's walk as hints; once node 2 is back they are
 * handed over, and node 2's own replica has them without any read touching the keys. */
static void test_ap_engine_hands_hints_to_a_returning_replica(void **state) {
    struct tc *t = *state;
    t->cut[1] = true;
    tc_run(t, 600);
    int written = 0;
    for (int k = 0; k < 40; k++) {
        char line[64];
        snprintf(line, sizeof(line), "SADD cart:h%d x", k);
        const char *r = tc_do(t, 1, line);
        if (strcmp(r, ":1\r\n") == 0) written++;
    }
    assert_int_equal(written, 40); /* w = quorum: two of three, with a hint for the third */
    uint64_t hints = 0;
    for (int i = 1; i <= t->count; i++) hints += tc_info(t, i, "ap_hints_pending:");
    assert_true(hints > 0);
    t->cut[1] = false;
    tc_run(t, 1000);
    hints = 0;
    for (int i = 1; i <= t->count; i++) hints += tc_info(t, i, "ap_hints_pending:");
    assert_true(hints == 0);
    /* Every key whose replicas include node 2 is on node 2 now. */
    static struct ap_ring ring;
    const uint32_t members[] = {1, 2, 3, 4};
    assert_int_equal(ap_ring_build(&ring, members, 4), 0);
    int replicas = 0;
    for (int k = 0; k < 40; k++) {
        char key[32], line[64];
        int n = snprintf(key, sizeof(key), "cart:h%d", k);
        uint32_t walk[NODE_PEERS_MAX];
        (void)ap_ring_walk(&ring, ap_ring_key_hash((const uint8_t *)key, (size_t)n), walk);
        bool replica = walk[0] == 2 || walk[1] == 2 || walk[2] == 2;
        replicas += replica;
        snprintf(line, sizeof(line), "SCARD %s", key);
        assert_string_equal(tc_stale(t, 2, line), replica ? ":1\r\n" : ":0\r\n");
    }
    assert_true(replicas > 20); /* n = 3 of 4: about three keys in four */
    uint64_t handed = 0;
    for (int i = 1; i <= t->count; i++) handed += tc_info(t, i, "ap_hints_handed:");
    assert_true(handed > 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ap_engine_any_node_serves_any_key, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_ap_engine_partition_then_heal_converges, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_ap_engine_hands_hints_to_a_returning_replica,
                                        tc_setup4, tc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
