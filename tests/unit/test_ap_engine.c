/*
 * Unit tests of the AP engine (src/ap) behind the engine interface: three engines on
 * memdisks, their peer payloads delivered by the test (and dropped across a cut), syncs
 * run at once. What the issue promises a client: any node serves any key, w = quorum
 * writes need a majority of the key's replicas reachable (-NOQUORUM on the minority side,
 * nothing written), w = one writes succeed on both sides of a partition, and after the
 * heal a read merges both sides and repairs the replicas; anti-entropy converges the
 * replicas after a heal with no read at all, deletes included, and costs no keys in sync.
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
#include "ap/internal.h" /* the replicas' dbs, to compare their objects byte for byte */
#include "ap/object.h"
#include "ap/ring.h"
#include "cmd/cmd.h"
#include "engine/cmdlist.h"
#include "engine/seen.h"
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
    uint8_t seen[512]; /* the keys it reflects (engine/seen.h), cut to 512 bytes */
    size_t seen_bytes;
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
    uint64_t delivered[AP_MSG_KIND_MAX + 1]; /* payloads delivered, by kind */
    uint32_t drop_every; /* > 0: every drop_every-th payload is lost (deterministic) */
    uint64_t sent_count;
    bool hold_sync[TC_NODES]; /* node i+1's syncs wait (its log is not durable meanwhile) */
    bool duplicate;           /* every payload delivered twice */
    bool discard_replies;     /* replies are not recorded */
    uint8_t drop_kind;        /* > 0: payloads of this kind to... */
    uint32_t drop_to;         /* ...this node (or from it, kinds that answer) are lost */
    uint64_t delivered_to[TC_NODES][AP_MSG_KIND_MAX + 1]; /* by destination and kind */
    struct buf floor; /* SESSION RESUME: what every submit carries (empty: not resumed) */
};

static void tc_record(struct tc *t, uint64_t id, const uint8_t *data, size_t bytes,
                      const uint8_t *seen, size_t seen_bytes) {
    if (t->discard_replies) return;
    assert_true(t->reply_count < TC_REPLIES);
    struct tc_reply *r = &t->replies[t->reply_count++];
    r->id = id;
    snprintf(r->text, sizeof(r->text), "%.*s", (int)bytes, (const char *)data);
    r->seen_bytes = seen_bytes < sizeof(r->seen) ? seen_bytes : sizeof(r->seen);
    if (r->seen_bytes > 0) memcpy(r->seen, seen, r->seen_bytes);
}

static void tc_effects(struct tc *t, int i, const struct engine_effects *e) {
    for (size_t k = 0; k < e->reply_count; k++)
        tc_record(t, e->replies[k].id, e->replies[k].data, e->replies[k].bytes, e->replies[k].seen,
                  e->replies[k].seen_bytes);
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
    if (t->sync[i] == NULL || t->hold_sync[i]) return;
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
        if (t->drop_every > 0 && ++t->sent_count % t->drop_every == 0) dropped = true;
        uint8_t kind = m->data.len > 1 ? m->data.data[1] : 0;
        if (t->drop_kind != 0 && kind == t->drop_kind &&
            (m->to == t->drop_to || m->from == t->drop_to))
            dropped = true;
        for (int copy = 0; !dropped && copy < (t->duplicate ? 2 : 1); copy++) {
            struct engine_event ev = {
                .from = m->from, .data = m->data.data + 1, .bytes = m->data.len - 1};
            assert_int_equal(m->data.data[0], ENGINE_AP);
            if (kind <= AP_MSG_KIND_MAX) {
                t->delivered[kind]++;
                t->delivered_to[m->to - 1][kind]++;
            }
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

static uint64_t tc_tombstone_ms; /* the next setup's ap-tombstone-age (0: the default) */

/* count nodes; mixed: a keyspace pair:* of n = 2 beside the n = 3 ones, hinted handoff
 * off everywhere (repairs come from anti-entropy alone). */
static int tc_setup_n(void **state, int count, bool mixed) {
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
        c.session_wait_ms = 1000;
        c.ap_tombstone_ms = tc_tombstone_ms;
        c.peer_count = (uint32_t)count;
        for (uint32_t p = 0; p < (uint32_t)count; p++) {
            c.peers[p].id = p + 1;
            snprintf(c.peers[p].addr, sizeof(c.peers[p].addr), "127.0.0.1:%u", 8001 + p);
        }
        if (mixed) {
            tc_keyspace(&c, "pair", "pair:*", KEYSPACE_QUORUM_ONE);
            c.keyspaces[c.keyspace_count - 1].n = 2;
        }
        tc_keyspace(&c, "cart", "cart:*", KEYSPACE_QUORUM_QUORUM);
        tc_keyspace(&c, "every", "all:*", KEYSPACE_QUORUM_ALL);
        tc_keyspace(&c, "feed", "*", KEYSPACE_QUORUM_ONE);
        for (uint32_t k = 0; mixed && k < c.keyspace_count; k++)
            c.keyspaces[k].handoff = KEYSPACE_HANDOFF_OFF;
        struct errmsg msg;
        if (ap_engine_ops.open(&c, &t->disk[i], t->now_ms, &t->e[i], &msg) != 0)
            fail_msg("open: %s", msg.text);
        t->e[i]->ops->keyspaces(t->e[i], c.keyspaces, c.keyspace_count); /* as agreed */
    }
    tc_run(t, 200); /* pings: everyone reachable */
    *state = t;
    return 0;
}

static int tc_setup(void **state) {
    return tc_setup_n(state, 3, false);
}

/* Three nodes whose deletes are collected once a second old. */
static int tc_setup_reap(void **state) {
    tc_tombstone_ms = 1000;
    int rc = tc_setup_n(state, 3, false);
    tc_tombstone_ms = 0;
    return rc;
}

static int tc_setup4(void **state) {
    return tc_setup_n(state, 4, false);
}

static int tc_setup4_mixed(void **state) {
    return tc_setup_n(state, 4, true);
}

static int tc_teardown(void **state) {
    struct tc *t = *state;
    for (int i = 0; i < t->count; i++) {
        t->e[i]->ops->free(t->e[i]);
        memdisk_deinit(&t->disk[i]);
    }
    for (size_t k = 0; k < t->queued; k++) buf_deinit(&t->queue[k].data);
    free(t->queue);
    buf_deinit(&t->floor);
    free(t);
    return 0;
}

/* Submits req to node (1-based) with the test's session floor, recording the replies. */
static void tc_submit_req(struct tc *t, int node, struct engine_request *req, bool *pending) {
    req->session_ap = t->floor.data;
    req->session_ap_bytes = t->floor.len;
    struct buf out;
    buf_init(&out);
    struct engine_answer a = {0};
    t->e[node - 1]->ops->submit(t->e[node - 1], req, &out, &a);
    for (size_t k = 0; k < a.reply_count; k++)
        tc_record(t, a.replies[k].id, a.replies[k].data, a.replies[k].bytes, a.replies[k].seen,
                  a.replies[k].seen_bytes);
    if (!a.pending) tc_record(t, req->id, out.data, out.len, a.seen, a.seen_bytes);
    *pending = a.pending;
    buf_deinit(&out);
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
    tc_submit_req(t, node, &req, pending);
    return req.id;
}

static uint64_t tc_cmd(struct tc *t, int node, const char *line) {
    bool pending;
    return tc_submit(t, node, line, 0, &pending);
}

/* The reply of id (NULL before it came). */
static const struct tc_reply *tc_reply_of(struct tc *t, uint64_t id) {
    for (size_t i = 0; i < t->reply_count; i++)
        if (t->replies[i].id == id) return &t->replies[i];
    return NULL;
}

static const char *tc_reply(struct tc *t, uint64_t id) {
    const struct tc_reply *r = tc_reply_of(t, id);
    return r != NULL ? r->text : NULL;
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
    /* r = one on the feed keyspace: node 3 answers from its replica alone (no read
     * repair); anti-entropy brings it the other side's writes within a few exchanges. */
    int waited = 0;
    while (waited < 3000 && strcmp(tc_do(t, 3, "SCARD tabs"), ":2\r\n") != 0) {
        tc_run(t, 50);
        waited += 50;
    }
    assert_string_equal(tc_do(t, 3, "SCARD tabs"), ":2\r\n");
    print_message("anti-entropy: node 3 had the other side's tab %d ms after the heal\n",
                  waited + 300);
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

/* ---- anti-entropy ---- */

static struct db *tc_db(struct tc *t, int node) {
    return ((struct ap *)(void *)t->e[node - 1])->store.db;
}

struct tc_compare {
    struct db *other;
    size_t differ;
};

static void tc_compare_entry(void *ctx, struct db_entry *e) {
    struct tc_compare *c = ctx;
    size_t kb, vb, ob;
    const uint8_t *key = db_entry_key(e, &kb);
    const uint8_t *v = db_entry_string(e, &vb);
    struct db_entry *o = db_find(c->other, key, kb);
    const uint8_t *ov = o != NULL ? db_entry_string(o, &ob) : NULL;
    if (ov == NULL || ob != vb || memcmp(ov, v, vb) != 0) c->differ++;
}

/* Whether every node's db holds the same keys with byte-identical objects (n = 3 of 3:
 * every node is a replica of every key). */
static bool tc_converged(struct tc *t) {
    for (int i = 2; i <= t->count; i++) {
        if (db_count(tc_db(t, i)) != db_count(tc_db(t, 1))) return false;
        struct tc_compare c = {.other = tc_db(t, i)};
        uint64_t cursor = 0;
        do {
            cursor = db_scan(tc_db(t, 1), cursor, tc_compare_entry, &c);
        } while (cursor != 0);
        if (c.differ > 0) return false;
    }
    return true;
}

/* Runs the cluster until it converged (no client request meanwhile); returns the
 * simulated ms it took, failing past limit_ms. */
static uint64_t tc_run_until_converged(struct tc *t, uint64_t limit_ms) {
    uint64_t ms = 0;
    while (!tc_converged(t)) {
        if (ms >= limit_ms) fail_msg("not converged after %llu ms", (unsigned long long)ms);
        tc_run(t, 50);
        ms += 50;
    }
    return ms;
}

static uint64_t tc_info_sum(struct tc *t, const char *field) {
    uint64_t sum = 0;
    for (int i = 1; i <= t->count; i++) sum += tc_info(t, i, field);
    return sum;
}

/* Writes count keys prefix0.. on node (w = one), a batch at a time. */
static void tc_write_many(struct tc *t, int node, const char *prefix, int count) {
    for (int k = 0; k < count;) {
        uint64_t first = t->next_id + 1;
        for (int b = 0; b < 200 && k < count; b++, k++) {
            char line[64];
            snprintf(line, sizeof(line), "SET %s%d v%d", prefix, k, k);
            (void)tc_cmd(t, node, line);
        }
        uint64_t last = t->next_id;
        for (uint64_t id = first; id <= last; id++)
            for (int i = 0; i < 50 && tc_reply(t, id) == NULL; i++) tc_run(t, 10);
        for (uint64_t id = first; id <= last; id++)
            assert_string_equal(tc_reply(t, id) != NULL ? tc_reply(t, id) : "", "+OK\r\n");
        t->reply_count = 0;
    }
}

/* Dynamo §4.7 (anti-entropy): w = one writes on both sides of a cut, to different keys
 * and to the same ones, as a counter, a set and a string; after the heal, with no client
 * read, every replica holds byte-identical objects for every key, and they are the merges
 * (the counter the sum of both sides, the set the union). */
static void test_ap_engine_ae_converges_both_sides_without_reads(void **state) {
    struct tc *t = *state;
    t->cut[2] = true;
    tc_run(t, 600);
    const char *left[] = {"INCRBY c 5", "SADD s a", "SET k left", "SET only1 x", "SADD s2 q"};
    const char *right[] = {"INCRBY c 7", "SADD s b", "SET k right", "SET only3 y", "INCRBY c2 1"};
    for (int i = 0; i < 5; i++) {
        assert_true(tc_do(t, 1, left[i])[0] != '-');
        assert_true(tc_do(t, 3, right[i])[0] != '-');
    }
    tc_run(t, 100);
    assert_false(tc_converged(t));
    uint64_t repairs = tc_info_sum(t, "ap_read_repairs:");
    t->cut[2] = false;
    (void)tc_run_until_converged(t, 10000);
    assert_int_equal(tc_info_sum(t, "ap_read_repairs:"), repairs); /* no read did it */
    assert_true(tc_info_sum(t, "ap_ae_keys_repaired:") >= 7);
    for (int n = 1; n <= 3; n++) {
        assert_int_equal(t->e[n - 1]->ops->key_count(t->e[n - 1]), 7);
        assert_string_equal(tc_stale(t, n, "GET c"), "$2\r\n12\r\n");
        assert_string_equal(tc_stale(t, n, "SCARD s"), ":2\r\n");
        assert_string_equal(tc_stale(t, n, "GET only1"), "$1\r\nx\r\n");
        assert_string_equal(tc_stale(t, n, "GET only3"), "$1\r\ny\r\n");
        assert_string_equal(tc_stale(t, n, "GET k"), tc_stale(t, 1, "GET k"));
    }
}

/* Writes count keys on node 1 while node 3 is cut off, heals, and returns the simulated ms
 * until every replica holds them all by anti-entropy alone (n = 3 of 3: no fallback holds
 * hints, and no client reads). */
static uint64_t tc_catch_up(struct tc *t, int count) {
    t->cut[2] = true;
    tc_run(t, 600);
    tc_write_many(t, 1, "bulk:", count);
    assert_int_equal(db_count(tc_db(t, 3)), 0);
    assert_int_equal(tc_info_sum(t, "ap_hints_pending:"), 0);
    t->cut[2] = false;
    uint64_t ms = tc_run_until_converged(t, 10000);
    print_message("anti-entropy: %d keys on the returning replica %llu ms after the heal\n", count,
                  (unsigned long long)ms);
    assert_int_equal(db_count(tc_db(t, 3)), (size_t)count);
    assert_true(tc_info(t, 3, "ap_ae_keys_repaired:") >= (uint64_t)count);
    char line[64], want[64];
    snprintf(line, sizeof(line), "GET bulk:%d", count - 1);
    int n = snprintf(want, sizeof(want), "v%d", count - 1);
    char reply[80];
    snprintf(reply, sizeof(reply), "$%d\r\n%s\r\n", n, want);
    assert_string_equal(tc_stale(t, 3, line), reply);
    return ms;
}

/* A replica cut off for 2,000 writes catches up by anti-entropy alone. */
static void test_ap_engine_ae_catches_up_a_node_that_was_cut(void **state) {
    assert_true(tc_catch_up(*state, 2000) <= 5000);
}

/* The target: 100,000 keys written on one side of a partition are on every
 * replica within 5 s of the heal (simulated time, 10 ms a round trip). */
static void test_ap_engine_ae_repairs_100000_keys_within_5_s(void **state) {
    assert_true(tc_catch_up(*state, 100000) <= 5000);
}

/* In sync, an exchange is its AE_BUCKETS and the answer that says SAME: no key is listed
 * or sent, whatever the data. */
static void test_ap_engine_ae_in_sync_sends_no_keys(void **state) {
    struct tc *t = *state;
    tc_write_many(t, 1, "calm:", 300);
    tc_run(t, 12000); /* replicated as written; the start-up sweeps are done by now */
    assert_true(tc_converged(t));
    uint64_t exchanges = tc_info_sum(t, "ap_ae_exchanges:");
    uint64_t sent = tc_info_sum(t, "ap_ae_keys_sent:"),
             listed = tc_info_sum(t, "ap_ae_keys_listed:");
    uint64_t buckets = t->delivered[AP_MSG_AE_BUCKETS], puts = t->delivered[AP_MSG_PUT];
    uint64_t keys = t->delivered[AP_MSG_AE_KEYS];
    tc_run(t, 5000);
    /* One exchange per AP_AE_MS (50 ms) per node: about 300 in 5 s. */
    uint64_t ran = tc_info_sum(t, "ap_ae_exchanges:") - exchanges;
    assert_true(ran >= 270 && ran <= 330);
    assert_int_equal(t->delivered[AP_MSG_AE_BUCKETS] - buckets, 2 * ran); /* asked, answered */
    assert_int_equal(t->delivered[AP_MSG_AE_KEYS], keys);
    assert_int_equal(t->delivered[AP_MSG_PUT], puts);
    assert_int_equal(tc_info_sum(t, "ap_ae_keys_sent:"), sent);
    assert_int_equal(tc_info_sum(t, "ap_ae_keys_listed:"), listed);
    assert_int_equal(tc_info_sum(t, "ap_ae_timeouts:"), 0);
}

/* A delete is a state (a tombstone): a DEL on either side of a cut reaches the other by
 * anti-entropy, and the older copy of the value never comes back. */
static void test_ap_engine_ae_does_not_resurrect_a_deleted_key(void **state) {
    struct tc *t = *state;
    assert_string_equal(tc_do(t, 1, "SET gone1 old"), "+OK\r\n");
    assert_string_equal(tc_do(t, 1, "SADD gone2 m"), ":1\r\n");
    tc_run(t, 100);
    assert_true(tc_converged(t));
    t->cut[2] = true;
    tc_run(t, 600);
    assert_string_equal(tc_do(t, 3, "DEL gone1"), ":1\r\n"); /* on the minority side */
    assert_string_equal(tc_do(t, 1, "DEL gone2"), ":1\r\n"); /* on the majority side */
    assert_string_equal(tc_stale(t, 1, "GET gone1"), "$3\r\nold\r\n");
    t->cut[2] = false;
    (void)tc_run_until_converged(t, 10000);
    tc_run(t, 3000); /* more exchanges change nothing */
    assert_true(tc_converged(t));
    for (int n = 1; n <= 3; n++) {
        assert_string_equal(tc_stale(t, n, "GET gone1"), "$-1\r\n");
        assert_string_equal(tc_stale(t, n, "SCARD gone2"), ":0\r\n");
        assert_string_equal(tc_stale(t, n, "EXISTS gone1"), ":0\r\n");
    }
}

/* Lost messages (one payload in fifty, whatever its kind): exchanges whose answers are lost
 * are given up after their timeout, and later ones finish the repair. */
static void test_ap_engine_ae_converges_when_messages_are_lost(void **state) {
    struct tc *t = *state;
    t->cut[2] = true;
    tc_run(t, 600);
    tc_write_many(t, 1, "lossy:", 500);
    t->drop_every = 50;
    t->cut[2] = false;
    (void)tc_run_until_converged(t, 60000);
    assert_true(tc_info_sum(t, "ap_ae_timeouts:") > 0);
    assert_int_equal(db_count(tc_db(t, 3)), 500);
}

/* Whether every key of node 1's writes is, byte for byte, on exactly its replicas (n of
 * its keyspace, 2 for pair:*, 3 otherwise) of the 4 members. */
static bool tc_placed(struct tc *t, const char *prefix, uint32_t n, int count) {
    static struct ap_ring ring;
    const uint32_t members[] = {1, 2, 3, 4};
    assert_int_equal(ap_ring_build(&ring, members, 4), 0);
    for (int k = 0; k < count; k++) {
        char key[32];
        int kb = snprintf(key, sizeof(key), "%s%d", prefix, k);
        uint32_t walk[NODE_PEERS_MAX];
        (void)ap_ring_walk(&ring, ap_ring_key_hash((const uint8_t *)key, (size_t)kb), walk);
        struct db_entry *first = db_find(tc_db(t, (int)walk[0]), (const uint8_t *)key, (size_t)kb);
        if (first == NULL) return false;
        size_t fb, ob;
        const uint8_t *fv = db_entry_string(first, &fb);
        for (uint32_t i = 1; i < 4; i++) {
            struct db_entry *o = db_find(tc_db(t, (int)walk[i]), (const uint8_t *)key, (size_t)kb);
            if (i >= n) {
                assert_null(o); /* never on a node that is not its replica */
                continue;
            }
            const uint8_t *ov = o != NULL ? db_entry_string(o, &ob) : NULL;
            if (ov == NULL || ob != fb || memcmp(ov, fv, fb) != 0) return false;
        }
    }
    return true;
}

/* Keyspaces of n = 2 and n = 3 share the arcs' trees: with 4 nodes, a replica cut off
 * catches up on the keys of both, no key lands on a node that is not its replica, and once
 * converged no object moves (the buckets that differ for good are only listed). */
static void test_ap_engine_ae_respects_each_keyspace_n(void **state) {
    struct tc *t = *state;
    t->cut[3] = true;
    tc_run(t, 600);
    tc_write_many(t, 1, "pair:", 300);
    tc_write_many(t, 1, "tri:", 300);
    assert_false(tc_placed(t, "tri:", 3, 300));
    t->cut[3] = false;
    int ms = 0;
    for (; ms < 20000 && !(tc_placed(t, "pair:", 2, 300) && tc_placed(t, "tri:", 3, 300)); ms += 50)
        tc_run(t, 50);
    assert_true(ms < 20000);
    assert_true(tc_info(t, 4, "ap_ae_keys_repaired:") > 0);
    tc_run(t, 1000);
    uint64_t puts = t->delivered[AP_MSG_PUT];
    tc_run(t, 3000);
    assert_int_equal(t->delivered[AP_MSG_PUT], puts);
    assert_true(tc_placed(t, "pair:", 2, 300) && tc_placed(t, "tri:", 3, 300));
}

/* ---- what a cold review found (docs/engines.md) ---- */

/* A key prefixN whose first n ring members (of t->count) include node `in` (0: any) and not
 * node `out` (0: none); its name is written to key. */
static void tc_key_where(struct tc *t, const char *prefix, uint32_t n, uint32_t in, uint32_t out,
                         char *key, size_t room) {
    static struct ap_ring ring;
    uint32_t members[TC_NODES];
    for (int i = 0; i < t->count; i++) members[i] = (uint32_t)i + 1;
    assert_int_equal(ap_ring_build(&ring, members, (uint32_t)t->count), 0);
    for (int k = 0; k < 1000; k++) {
        int len = snprintf(key, room, "%s%d", prefix, k);
        uint32_t walk[NODE_PEERS_MAX];
        (void)ap_ring_walk(&ring, ap_ring_key_hash((const uint8_t *)key, (size_t)len), walk);
        bool has_in = in == 0, has_out = false;
        for (uint32_t i = 0; i < n; i++) {
            has_in |= walk[i] == in;
            has_out |= walk[i] == out;
        }
        if (has_in && !has_out) return;
    }
    fail_msg("no key of %s with those replicas", prefix);
}

/* Defect 1: with w = quorum, two remote acknowledgements do not answer while this
 * replica's own record is not durable; the answer comes once it is. */
static void test_ap_engine_write_waits_for_its_own_log(void **state) {
    struct tc *t = *state;
    t->hold_sync[0] = true;
    bool pending;
    uint64_t id = tc_submit(t, 1, "SADD cart:own x", 0, &pending);
    assert_true(pending);
    tc_run(t, 200);
    assert_true(t->delivered[AP_MSG_PUT_ACK] >= 2); /* nodes 2 and 3 acknowledged */
    assert_null(tc_reply(t, id));
    t->hold_sync[0] = false;
    tc_run(t, 50);
    assert_string_equal(tc_reply(t, id) != NULL ? tc_reply(t, id) : "", ":1\r\n");
}

/* Defect 2: with w = all and one replica silent, a duplicated acknowledgement of another
 * replica does not make up for it: the write times out. */
static void test_ap_engine_acks_count_once_per_replica(void **state) {
    struct tc *t = *state;
    t->duplicate = true;
    t->drop_kind = AP_MSG_PUT;
    t->drop_to = 3; /* node 3 is reachable (pings) but never gets the state */
    const char *r = tc_do(t, 1, "SADD all:dup x");
    assert_non_null(strstr(r, "-TIMEOUT"));
}

/* Defect 3: a write refused -ERR busy (every request slot taken) was not saved. */
static void test_ap_engine_busy_write_is_not_saved(void **state) {
    struct tc *t = *state;
    t->hold_sync[0] = true; /* w = quorum writes wait for node 1's log: slots stay taken */
    for (uint32_t k = 0; k < AP_PENDING_MAX; k++) {
        char line[32];
        snprintf(line, sizeof(line), "SET cart:b%u v", k);
        bool pending;
        (void)tc_submit(t, 1, line, 0, &pending);
        assert_true(pending);
        t->reply_count = 0;
    }
    uint64_t id = tc_cmd(t, 1, "SADD cart:over x");
    assert_non_null(strstr(tc_reply(t, id), "-ERR busy:"));
    assert_null(db_find(tc_db(t, 1), (const uint8_t *)"cart:over", 9));
    uint64_t read = tc_cmd(t, 1, "SCARD cart:b0"); /* r = quorum: a slot too, or busy */
    assert_non_null(strstr(tc_reply(t, read), "-ERR busy:"));
    t->hold_sync[0] = false;
    t->discard_replies = true;
    tc_run(t, 100);
    assert_int_equal(tc_info(t, 1, "ap_pending:"), 0);
}

/* Submits a command of argc words: argv[0], argv[1], then "m0", "m1", ... */
static uint64_t tc_submit_many(struct tc *t, int node, const char *cmd, const char *key,
                               uint32_t argc, bool *pending) {
    struct resp_arg *argv = calloc(argc, sizeof(*argv));
    char(*words)[16] = calloc(argc, sizeof(*words));
    argv[0] = (struct resp_arg){.data = (const uint8_t *)cmd, .bytes = strlen(cmd)};
    argv[1] = (struct resp_arg){.data = (const uint8_t *)key, .bytes = strlen(key)};
    for (uint32_t i = 2; i < argc; i++) {
        int n = snprintf(words[i], sizeof(words[i]), "m%u", i);
        argv[i] = (struct resp_arg){.data = (const uint8_t *)words[i], .bytes = (size_t)n};
    }
    struct engine_request req = {.id = ++t->next_id,
                                 .kind = ENGINE_REQUEST_DATA,
                                 .now_ms = t->now_ms,
                                 .mono_ms = t->mono_ms,
                                 .proto = 2,
                                 .argc = argc,
                                 .argv = argv};
    req.spec = cmd_lookup(argv[0].data, argv[0].bytes);
    tc_submit_req(t, node, &req, pending);
    free(words);
    free(argv);
    return req.id;
}

/* Defect 4: more arguments than a forward carries is refused before anything (it crashed
 * the node, or was dropped by the replica it was forwarded to); at the limit it works,
 * forwarded too. */
static void test_ap_engine_refuses_too_many_arguments(void **state) {
    struct tc *t = *state;
    bool pending;
    uint64_t id = tc_submit_many(t, 1, "SADD", "cart:big", AP_MSG_ARGS_MAX + 1, &pending);
    assert_false(pending);
    assert_non_null(strstr(tc_reply(t, id), "-ERR an AP command takes at most 1024 arguments"));
    /* EXISTS of 1,100 keys (it crashed the node): one command per key, summed. */
    id = tc_submit_many(t, 1, "EXISTS", "cart:big", 1100, &pending);
    for (int i = 0; i < 100 && tc_reply(t, id) == NULL; i++) tc_run(t, 10);
    assert_string_equal(tc_reply(t, id), ":0\r\n");
    assert_null(db_find(tc_db(t, 1), (const uint8_t *)"cart:big", 8));
    char key[32];
    tc_key_where(t, "pair:", 2, 0, 1, key, sizeof(key)); /* node 1 forwards it */
    id = tc_submit_many(t, 1, "SADD", key, AP_MSG_ARGS_MAX, &pending);
    assert_true(pending);
    for (int i = 0; i < 100 && tc_reply(t, id) == NULL; i++) tc_run(t, 10);
    assert_string_equal(tc_reply(t, id), ":1022\r\n");
}

/* Defect 5: a replica's object from a clock too far ahead is refused in a read's replies as
 * in a PUT, and read repair does not spread it. */
static void test_ap_engine_read_replies_pass_the_clock_check(void **state) {
    struct tc *t = *state;
    t->cut[0] = true; /* node 2 writes alone; node 3 refuses its state */
    tc_run(t, 600);
    t->now_ms += 10000; /* node 2's clock, for this write only, 10 s ahead */
    (void)tc_cmd(t, 2, "SADD cart:clock far");
    t->now_ms -= 10000;
    tc_run(t, 100);
    assert_true(tc_info(t, 3, "ap_clock_offsets_refused:") >= 1);
    assert_null(db_find(tc_db(t, 3), (const uint8_t *)"cart:clock", 10));
    t->cut[0] = false;
    t->drop_kind = AP_MSG_AE_BUCKETS; /* no anti-entropy meanwhile: the read alone */
    t->drop_to = 2;
    tc_run(t, 600);
    uint64_t refused = tc_info(t, 1, "ap_clock_offsets_refused:");
    assert_string_equal(tc_do(t, 1, "SCARD cart:clock"), ":0\r\n");
    tc_run(t, 100);
    assert_true(tc_info(t, 1, "ap_clock_offsets_refused:") > refused);
    assert_null(db_find(tc_db(t, 1), (const uint8_t *)"cart:clock", 10));
    assert_null(db_find(tc_db(t, 3), (const uint8_t *)"cart:clock", 10));
}

/* Defect 6: request ids of a restarted engine never repeat those of an earlier start. */
static void test_ap_engine_request_ids_grow_across_restarts(void **state) {
    struct tc *t = *state;
    uint64_t before = ((struct ap *)(void *)t->e[0])->pending_generation;
    assert_true(before > 0);
    struct engine_config c = ((struct ap *)(void *)t->e[0])->config;
    t->e[0]->ops->free(t->e[0]);
    struct errmsg msg;
    assert_int_equal(ap_engine_ops.open(&c, &t->disk[0], t->now_ms, &t->e[0], &msg), 0);
    uint64_t after = ((struct ap *)(void *)t->e[0])->pending_generation;
    assert_true(after > before);
    assert_true(((struct ap *)(void *)t->e[0])->boot == 2);
}

/* Defect 7: a hint (in the fallback's memory only) does not count toward w: with w = all
 * and a replica cut off, the write is refused though a fallback could hold a hint. */
static void test_ap_engine_hints_do_not_count_toward_w(void **state) {
    struct tc *t = *state;
    char key[32];
    tc_key_where(t, "all:", 3, 1, 4, key, sizeof(key)); /* replicas: 1 and two of 2, 3 */
    uint32_t walk[NODE_PEERS_MAX];
    static struct ap_ring ring;
    const uint32_t members[] = {1, 2, 3, 4};
    assert_int_equal(ap_ring_build(&ring, members, 4), 0);
    (void)ap_ring_walk(&ring, ap_ring_key_hash((const uint8_t *)key, strlen(key)), walk);
    uint32_t cut = walk[0] != 1 ? walk[0] : walk[1];
    t->cut[cut - 1] = true;
    tc_run(t, 600);
    char line[64];
    snprintf(line, sizeof(line), "SADD %s x", key);
    assert_non_null(strstr(tc_do(t, 1, line), "-NOQUORUM 3 of the key's 3 replicas"));
    assert_null(db_find(tc_db(t, 1), (const uint8_t *)key, strlen(key)));
}

/* Defect 7: a FORWARD reaching a node that is not the key's replica (rings that differ)
 * is answered -TRYAGAIN, not run as if it were one. */
static void test_ap_engine_forward_to_a_non_replica_is_refused(void **state) {
    struct tc *t = *state;
    char key[32];
    tc_key_where(t, "pair:", 2, 0, 3, key, sizeof(key));
    struct resp_arg argv[3] = {{(const uint8_t *)"INCR", 4}, {(const uint8_t *)key, strlen(key)}};
    struct ap_msg m = {.kind = AP_MSG_FORWARD, .req = 77, .count = 2, .proto = 2, .args = argv};
    struct buf b;
    buf_init(&b);
    ap_msg_encode(&m, &b);
    struct engine_event ev = {.from = 1, .data = b.data, .bytes = b.len};
    tc_step(t, 2, ENGINE_EVENT_PEER, &ev);
    tc_step(t, 2, ENGINE_EVENT_FLUSH, NULL);
    bool refused = false;
    for (size_t k = 0; k < t->queued; k++) {
        struct tc_msg *q = &t->queue[k];
        refused |= q->to == 1 && q->data.len > 1 && q->data.data[1] == AP_MSG_FORWARD_REPLY &&
                   memmem(q->data.data, q->data.len, "-TRYAGAIN", 9) != NULL;
    }
    assert_true(refused);
    assert_null(db_find(tc_db(t, 3), (const uint8_t *)key, strlen(key)));
    buf_deinit(&b);
}

/* Forwards run once: with every payload duplicated, a forwarded INCRBY adds once. */
static void test_ap_engine_duplicated_forward_runs_once(void **state) {
    struct tc *t = *state;
    char key[32], line[64];
    tc_key_where(t, "pair:", 2, 0, 1, key, sizeof(key));
    t->duplicate = true;
    snprintf(line, sizeof(line), "INCRBY %s 5", key);
    assert_string_equal(tc_do(t, 1, line), ":5\r\n");
    tc_run(t, 200);
    snprintf(line, sizeof(line), "GET %s", key);
    assert_string_equal(tc_do(t, 1, line), "$1\r\n5\r\n");
    assert_true(tc_info_sum(t, "ap_forwards_dropped:") >= 1);
}

/* Defect 8: a read of a key no replica holds (r = quorum) leaves it missing everywhere. */
static void test_ap_engine_read_of_a_missing_key_writes_nothing(void **state) {
    struct tc *t = *state;
    assert_string_equal(tc_do(t, 1, "SCARD cart:none"), ":0\r\n");
    tc_run(t, 200);
    for (int n = 1; n <= t->count; n++)
        assert_null(db_find(tc_db(t, n), (const uint8_t *)"cart:none", 9));
}

/* Defect 9: a hint for a node that is not the key's replica is refused (a peer cannot fill
 * the budget), and a hint in flight is not handed again while it waits for its answer. */
static void test_ap_engine_hints_are_checked_and_handed_once(void **state) {
    struct tc *t = *state;
    static const char obj_key[] = "cart:h";
    struct ap_object o;
    ap_object_init(&o);
    struct buf enc;
    buf_init(&enc);
    ap_object_encode(&o, &enc);
    struct ap_msg m = {.kind = AP_MSG_PUT, .flags = AP_PUT_HINT, .hint_for = 9};
    m.key = (struct ap_bytes){(const uint8_t *)obj_key, sizeof(obj_key) - 1};
    m.object = (struct ap_bytes){enc.data, enc.len};
    struct buf b;
    buf_init(&b);
    ap_msg_encode(&m, &b);
    struct engine_event ev = {.from = 2, .data = b.data, .bytes = b.len};
    uint64_t bad = tc_info(t, 1, "ap_bad_payloads:");
    tc_step(t, 0, ENGINE_EVENT_PEER, &ev);
    assert_int_equal(tc_info(t, 1, "ap_hints_pending:"), 0);
    assert_int_equal(tc_info(t, 1, "ap_bad_payloads:"), bad + 1);
    buf_deinit(&b);
    buf_deinit(&enc);
    ap_object_deinit(&o);
    /* Hints for node 2, handed back while node 2's acknowledgements are lost: each is sent
     * once per request timeout, not every tick. */
    t->cut[1] = true;
    tc_run(t, 600);
    for (int k = 0; k < 40; k++) {
        char line[64];
        snprintf(line, sizeof(line), "SADD cart:h%d x", k);
        (void)tc_do(t, 1, line);
    }
    uint64_t hints = tc_info_sum(t, "ap_hints_pending:");
    assert_true(hints > 0);
    t->drop_kind = AP_MSG_PUT_ACK;
    t->drop_to = 2;
    uint64_t puts = t->delivered_to[1][AP_MSG_PUT];
    t->cut[1] = false;
    tc_run(t, 1500); /* less than AP_REQUEST_TIMEOUT_MS */
    assert_true(t->delivered_to[1][AP_MSG_PUT] - puts <= hints);
    t->drop_kind = 0;
    tc_run(t, 3000);
    assert_int_equal(tc_info_sum(t, "ap_hints_pending:"), 0);
}

/* Submits a pipeline of the commands in lines (separated by ';') to node; returns its id. */
static uint64_t tc_pipeline(struct tc *t, int node, const char *lines, bool *pending) {
    struct buf list;
    buf_init(&list);
    char copy[512];
    snprintf(copy, sizeof(copy), "%s", lines);
    uint32_t count = 0;
    cmdlist_begin(&list, 0, 0);
    char *save = NULL;
    for (char *line = strtok_r(copy, ";", &save); line != NULL; line = strtok_r(NULL, ";", &save)) {
        struct resp_arg argv[8];
        uint32_t argc = 0;
        char *wsave = NULL;
        for (char *w = strtok_r(line, " ", &wsave); w != NULL && argc < 8;
             w = strtok_r(NULL, " ", &wsave))
            argv[argc++] = (struct resp_arg){.data = (const uint8_t *)w, .bytes = strlen(w)};
        cmdlist_add(&list, argc, argv);
        count++;
    }
    base_store_u32le(list.data + 1, count);
    struct engine_request req = {.id = ++t->next_id,
                                 .kind = ENGINE_REQUEST_DATA,
                                 .now_ms = t->now_ms,
                                 .mono_ms = t->mono_ms,
                                 .proto = 2,
                                 .list = list.data,
                                 .bytes = list.len};
    tc_submit_req(t, node, &req, pending);
    buf_deinit(&list);
    return req.id;
}

/* A pipeline: every command's reply, in order, in one answer; a read after a write of the
 * same pipeline sees it, here (a replica) and where the commands are forwarded; a
 * command waiting for acknowledgements holds the ones after it. */
static void test_ap_engine_pipeline_answers_in_order(void **state) {
    struct tc *t = *state;
    char key[32], lines[256];
    bool pending;
    uint64_t id = tc_pipeline(t, 1, "SET a 1;INCRBY c 2;GET a;GET c;SCARD nothing", &pending);
    assert_false(pending); /* w = r = one on this replica: answered at once */
    assert_string_equal(tc_reply(t, id), "+OK\r\n:2\r\n$1\r\n1\r\n$1\r\n2\r\n:0\r\n");
    /* Its answer names what each command reflected (a, c, a, c; the missing key nothing). */
    assert_int_equal(tc_reply_of(t, id)->seen_bytes, 4 * (9 + 16));
    id = tc_pipeline(t, 1, "SADD cart:p x;SADD cart:p y;SCARD cart:p;INCR c", &pending);
    assert_true(pending); /* w = quorum: the first two wait for acknowledgements */
    for (int i = 0; i < 100 && tc_reply(t, id) == NULL; i++) tc_run(t, 10);
    assert_string_equal(tc_reply(t, id), ":1\r\n:1\r\n:2\r\n:3\r\n");
    assert_int_equal(tc_reply_of(t, id)->seen_bytes, 4 * (9 + 16));
    tc_key_where(t, "pair:", 2, 0, 1, key, sizeof(key)); /* node 1 forwards these */
    snprintf(lines, sizeof(lines), "INCRBY %s 4;GET %s;SET b 2;INCRBY %s 1;GET %s", key, key, key,
             key);
    id = tc_pipeline(t, 1, lines, &pending);
    assert_true(pending);
    for (int i = 0; i < 100 && tc_reply(t, id) == NULL; i++) tc_run(t, 10);
    assert_string_equal(tc_reply(t, id), ":4\r\n$1\r\n4\r\n+OK\r\n:5\r\n$1\r\n5\r\n");
    /* Many pipelines in flight at once, w = quorum, some forwarded: every one answered,
     * nothing left (the pending table grows while a pipeline is submitted). */
    uint64_t ids[50];
    for (int c = 0; c < 50; c++) {
        char many[512];
        size_t at = 0;
        for (int k = 0; k < 16; k++)
            at += (size_t)snprintf(many + at, sizeof(many) - at, "%sSET cart:%d v", k ? ";" : "",
                                   (c * 37 + k * 11) % 97);
        ids[c] = tc_pipeline(t, 1 + c % 4, many, &pending);
    }
    tc_run(t, 300);
    for (int c = 0; c < 50; c++) assert_non_null(tc_reply(t, ids[c]));
    for (int n = 1; n <= 4; n++) assert_int_equal(tc_info(t, n, "ap_pending:"), 0);
    id = tc_pipeline(t, 1, "MULTI;GET a", &pending); /* not run: its own error per command */
    assert_false(pending);
    assert_non_null(strstr(tc_reply(t, id), "-ERR"));
    assert_int_equal(tc_info(t, 1, "ap_pending:"), 0);
}

/* DEL, UNLINK, EXISTS of several keys, MGET and MSET: one command per key (some of them
 * forwarded: n = 2 of 4), answered as Redis answers them, inside a pipeline too. */
static void test_ap_engine_multikey_commands(void **state) {
    struct tc *t = *state;
    char a[32], b[32], line[256];
    tc_key_where(t, "pair:", 2, 1, 0, a, sizeof(a));  /* node 1 is a replica... */
    tc_key_where(t, "pair:x", 2, 0, 1, b, sizeof(b)); /* ...and forwards this one */
    snprintf(line, sizeof(line), "MSET %s 1 %s 2 cart:m 3", a, b);
    assert_string_equal(tc_do(t, 1, line), "+OK\r\n");
    snprintf(line, sizeof(line), "MGET %s nothing %s cart:m", a, b);
    assert_string_equal(tc_do(t, 1, line), "*4\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n$1\r\n3\r\n");
    snprintf(line, sizeof(line), "EXISTS %s %s %s nothing", a, a, b);
    assert_string_equal(tc_do(t, 1, line), ":3\r\n");
    assert_string_equal(tc_do(t, 1, "SADD cart:set x"), ":1\r\n");
    snprintf(line, sizeof(line), "MGET cart:set %s", a); /* another type: nil, as Redis */
    assert_string_equal(tc_do(t, 1, line), "*2\r\n$-1\r\n$1\r\n1\r\n");
    assert_non_null(strstr(tc_do(t, 1, "MSET cart:odd"), "-ERR wrong number of arguments"));
    snprintf(line, sizeof(line), "DEL %s %s nothing", a, b);
    assert_string_equal(tc_do(t, 1, line), ":2\r\n");
    assert_string_equal(tc_do(t, 1, "UNLINK cart:m"), ":1\r\n");
    snprintf(line, sizeof(line), "EXISTS %s %s cart:m cart:set", a, b);
    assert_string_equal(tc_do(t, 2, line), ":1\r\n");
    bool pending;
    snprintf(line, sizeof(line), "MSET %s 5 %s 6;MGET %s %s;DEL %s %s;GET %s", a, b, a, b, a, b, a);
    uint64_t id = tc_pipeline(t, 3, line, &pending);
    for (int i = 0; i < 100 && tc_reply(t, id) == NULL; i++) tc_run(t, 10);
    assert_string_equal(tc_reply(t, id), "+OK\r\n*2\r\n$1\r\n5\r\n$1\r\n6\r\n:2\r\n$-1\r\n");
    for (int n = 1; n <= 4; n++) assert_int_equal(tc_info(t, n, "ap_pending:"), 0);
}

/* Members change: the ring follows them. Three members hold 300 counters (r = w = one; n = 3
 * in keyspace feed, n = 2 in keyspace pair beside n = 3 ones); a fourth joins: while it
 * fills its arcs its reads still see every counter (its own copy counts toward no r, so
 * another replica is asked), and afterwards each key is held by exactly its replicas in
 * the new ring (the old replica handed it off and removed it). Then it leaves. */
enum { TC_MEMBER_KEYS = 300 };

struct tc_member_case {
    const char *prefix; /* the keys: prefix0.. */
    uint32_t n;         /* their keyspace's */
};

static void tc_members(struct tc *t, const uint32_t *ids, uint32_t count) {
    for (int i = 0; i < t->count; i++) t->e[i]->ops->members(t->e[i], ids, count);
}

/* Whether node is one of key's n replicas in the ring of ids. */
static bool tc_replica(const uint32_t *ids, uint32_t count, const char *key, uint32_t n,
                       uint32_t node) {
    struct ap_ring ring;
    assert_int_equal(ap_ring_build(&ring, ids, count), 0);
    uint32_t walk[NODE_PEERS_MAX];
    (void)ap_ring_walk(&ring, ap_ring_key_hash((const uint8_t *)key, strlen(key)), walk);
    for (uint32_t i = 0; i < n && i < count; i++)
        if (walk[i] == node) return true;
    return false;
}

/* lacking 0: each counter on exactly its replicas among the members (a node removed is not
 * linked to any more, so it keeps what it had). Else how many counters node `lacking`
 * replicates and does not hold yet. */
static int tc_check_holders(struct tc *t, const struct tc_member_case *mc, const uint32_t *ids,
                            uint32_t count, int lacking) {
    int missing = 0;
    for (int k = 0; k < TC_MEMBER_KEYS; k++) {
        char key[32];
        int len = snprintf(key, sizeof(key), "%s%d", mc->prefix, k);
        for (int i = 1; i <= (int)count; i++) {
            bool replica = tc_replica(ids, count, key, mc->n, (uint32_t)i);
            bool held = db_find(tc_db(t, i), (const uint8_t *)key, (size_t)len) != NULL;
            if (i == lacking && replica && !held)
                missing++;
            else if (lacking == 0 && held != replica)
                fail_msg("%s on node %d: held %d, replica %d", key, i, held, replica);
        }
    }
    return missing;
}

/* Every step-th counter read on nodes first.. in turn, `nodes` of them (K holds K + 1). */
static void tc_check_counters(struct tc *t, const struct tc_member_case *mc, int first, int nodes,
                              int step) {
    for (int k = 0; k < TC_MEMBER_KEYS; k += step) {
        char line[48], want[32];
        snprintf(line, sizeof(line), "GET %s%d", mc->prefix, k);
        snprintf(want, sizeof(want), "$%d\r\n%d\r\n", k + 1 < 10 ? 1 : k + 1 < 100 ? 2 : 3, k + 1);
        assert_string_equal(tc_do(t, first + k % nodes, line), want);
        t->reply_count = 0;
    }
}

/* Each node's tree, built a slice at a time after the ring change (with the keys saved
 * meanwhile added at the end), equals one built from its db in one go. */
static void tc_check_trees(struct tc *t) {
    for (int i = 0; i < t->count; i++) {
        struct ap *ap = (struct ap *)(void *)t->e[i];
        assert_false(ap->rebuild.active);
        size_t bytes = (size_t)ap->tree.arc_count * AP_TREE_BUCKETS * sizeof(uint64_t);
        uint64_t *kept = malloc(bytes);
        memcpy(kept, ap->tree.buckets, bytes);
        ap_store_rebuild_tree(ap);
        assert_memory_equal(kept, ap->tree.buckets, bytes);
        free(kept);
    }
}

static void tc_members_case(struct tc *t, const struct tc_member_case *mc) {
    const uint32_t three[] = {1, 2, 3}, four[] = {1, 2, 3, 4};
    tc_members(t, three, 3);
    tc_run(t, 600);
    for (int k = 0; k < TC_MEMBER_KEYS; k++) {
        char line[64], want[32];
        snprintf(line, sizeof(line), "INCRBY %s%d %d", mc->prefix, k, k + 1);
        snprintf(want, sizeof(want), ":%d\r\n", k + 1);
        assert_string_equal(tc_do(t, 1 + k % 3, line), want);
        t->reply_count = 0;
    }
    tc_run(t, 3000);
    (void)tc_check_holders(t, mc, three, 3, 0);
    assert_int_equal(db_count(tc_db(t, 4)), 0);
    tc_members(t, four, 4);
    assert_true(tc_info(t, 4, "ap_arcs_filling:") > 0);
    /* Saved while the new ring's tree is rebuilt (before the first tick): marked dirty. */
    (void)tc_cmd(t, 1, "INCRBY dirty:1 5");
    (void)tc_cmd(t, 2, "SADD dirty:2 x");
    tc_run(t, 150); /* pings: node 4 is reachable again, and filling */
    assert_true(tc_check_holders(t, mc, four, 4, 4) > 0);
    tc_check_counters(t, mc, 4, 1, 1); /* on node 4 alone, lacking keys it replicates */
    tc_run(t, 20000);
    for (int i = 1; i <= 4; i++) assert_int_equal(tc_info(t, i, "ap_arcs_filling:"), 0);
    assert_true(tc_info_sum(t, "ap_keys_handed_off:") > 0);
    assert_int_equal(tc_info_sum(t, "ap_handoff_pending:"), 0);
    assert_int_equal(tc_check_holders(t, mc, four, 4, 0), 0);
    tc_check_counters(t, mc, 1, 4, 5);
    tc_check_trees(t);
    /* Node 4 leaves: the others stop hearing it at once (as the shell unlinks it), so it
     * hands nothing back; every counter is on the others of its old replicas (all had
     * it), and the replica that takes node 4's place fills from them. */
    tc_members(t, three, 3);
    tc_run(t, 20000);
    for (int i = 1; i <= 3; i++) assert_int_equal(tc_info(t, i, "ap_arcs_filling:"), 0);
    (void)tc_check_holders(t, mc, three, 3, 0);
    tc_check_counters(t, mc, 1, 3, 3);
}

static void test_ap_engine_members_change_moves_keys(void **state) {
    struct tc_member_case mc = {"m", 3};
    tc_members_case(*state, &mc);
}

/* The same with keyspaces of n = 2 and n = 3 sharing the arcs' trees (buckets that differ
 * for good between two n = 3 replicas): filling still ends, and n = 2 keys move too. */
static void test_ap_engine_members_change_with_mixed_n(void **state) {
    struct tc_member_case mc = {"pair:m", 2};
    tc_members_case(*state, &mc);
}

/* Runs line on node until answered; the session floor becomes what the reply reflects. */
static const char *tc_do_seen(struct tc *t, int node, const char *line) {
    const char *text = tc_do(t, node, line);
    const struct tc_reply *r = tc_reply_of(t, t->next_id);
    assert_non_null(r);
    assert_true(r->seen_bytes > 0 && r->seen_bytes < sizeof(r->seen));
    buf_clear(&t->floor);
    buf_append(&t->floor, r->seen, r->seen_bytes);
    return text;
}

/* Runs line on node with the session floor set until answered (at most ms). */
static const char *tc_do_resumed(struct tc *t, int node, const char *line, int level, int ms) {
    bool pending;
    uint64_t id = tc_submit(t, node, line, level, &pending);
    for (int i = 0; i < ms / 10 && tc_reply(t, id) == NULL; i++) tc_run(t, 10);
    const char *r = tc_reply(t, id);
    if (r == NULL) fail_msg("%s on node %d: no answer in %d ms", line, node, ms);
    return r;
}

/* Sessions over AP keys: a reply names what it reflects of its key (one write by node 1's
 * actor); a resumed session's read on a replica that lacks it waits, -TIMEOUT while no
 * reachable replica can give it within session-wait, and sees the write once one can (the
 * waiting replica asks the others: anti-entropy to it is dropped here). A stale read
 * waits too, asking no one. Without the session the same reads answer the old state. */
static void test_ap_engine_session_waits_for_what_it_saw(void **state) {
    struct tc *t = *state;
    t->cut[2] = true;
    tc_run(t, 600);
    assert_string_equal(tc_do_seen(t, 1, "SADD s book"), ":1\r\n");
    struct seen_key k;
    size_t pos = 0;
    assert_int_equal(seen_next(t->floor.data, t->floor.len, &pos, &k), 1);
    assert_int_equal(k.hash, seen_key_hash((const uint8_t *)"s", 1));
    assert_int_equal(k.count, 1);
    assert_int_equal(k.counter[0], 1);
    assert_int_equal(pos, t->floor.len);
    const char *r = tc_do_resumed(t, 3, "SMEMBERS s", 0, 1500);
    assert_non_null(strstr(r, "-TIMEOUT session: node 3's replica of this key did not catch up"));
    t->drop_kind = AP_MSG_AE_BUCKETS; /* no anti-entropy to node 3 */
    t->drop_to = 3;
    t->cut[2] = false;
    tc_run(t, 600);
    struct buf floor = t->floor;
    buf_init(&t->floor);
    assert_string_equal(tc_stale(t, 3, "SMEMBERS s"), "*0\r\n"); /* not resumed */
    t->floor = floor;
    assert_string_equal(tc_do_resumed(t, 3, "SMEMBERS s", 0, 500), "*1\r\n$4\r\nbook\r\n");
    assert_int_equal(tc_info(t, 3, "ap_session_waits:"), 2);
    assert_int_equal(tc_info(t, 3, "ap_session_timeouts:"), 1);
    /* Node 3 kept what it fetched: a stale read there (resumed) waits for nothing now. */
    assert_string_equal(tc_stale(t, 3, "SMEMBERS s"), "*1\r\n$4\r\nbook\r\n");
    /* A resumed write on node 3 runs on a replica that holds the session's add: SREM
     * removes it everywhere (add-wins would keep an add the remove had not seen). */
    assert_string_equal(tc_do_seen(t, 3, "SREM s book"), ":1\r\n");
    assert_true(tc_do_resumed(t, 1, "SCARD s", 0, 500)[1] == '0');
}

/* The key (pair:<i>) whose walk in the 4-node ring starts b, a; c a node of neither. */
static void tc_pair_key(char *key, size_t size, uint32_t *a, uint32_t *b, uint32_t *c) {
    uint32_t ids[4] = {1, 2, 3, 4};
    struct ap_ring ring;
    assert_int_equal(ap_ring_build(&ring, ids, 4), 0);
    uint32_t walk[NODE_PEERS_MAX];
    snprintf(key, size, "pair:0");
    (void)ap_ring_walk(&ring, ap_ring_key_hash((const uint8_t *)key, strlen(key)), walk);
    *b = walk[0];
    *a = walk[1];
    *c = walk[2];
}

/* A resumed session's command on a node that is not the key's replica is forwarded with
 * what the session saw of the key: the replica it reaches waits, asks the other, and the
 * answer comes back with what it reflects. */
static void test_ap_engine_session_travels_with_a_forward(void **state) {
    struct tc *t = *state;
    char key[32], line[64];
    uint32_t a, b, c;
    tc_pair_key(key, sizeof(key), &a, &b, &c);
    t->cut[b - 1] = true;
    tc_run(t, 600);
    snprintf(line, sizeof(line), "SADD %s book", key);
    assert_string_equal(tc_do_seen(t, (int)a, line), ":1\r\n");
    t->drop_kind = AP_MSG_AE_BUCKETS; /* b gets the add only by the session's round */
    t->drop_to = b;
    t->cut[b - 1] = false;
    tc_run(t, 600);
    snprintf(line, sizeof(line), "SMEMBERS %s", key);
    uint64_t forwards = tc_info(t, (int)c, "ap_forwards:");
    assert_string_equal(tc_do_resumed(t, (int)c, line, 0, 1000), "*1\r\n$4\r\nbook\r\n");
    assert_int_equal(tc_info(t, (int)c, "ap_forwards:"), forwards + 1);
    assert_int_equal(tc_info(t, (int)b, "ap_session_waits:"), 1);
    const struct tc_reply *r = tc_reply_of(t, t->next_id);
    struct seen_key k;
    assert_true(
        seen_find(r->seen, r->seen_bytes, seen_key_hash((const uint8_t *)key, strlen(key)), &k));
    assert_int_equal(k.count, 1);
}

/* Keys node holds (its db's entries). */
static size_t tc_keys(struct tc *t, int node) {
    return db_count(ap_engine_db(t->e[node - 1]));
}

/* Tombstone collection: a deleted key is removed from every replica once it is older than
 * ap-tombstone-age and each of them holds the same tombstone, never while one is cut off.
 * An add on a replica that collected the key while others still hold its tombstone (a
 * fresh copy, in a new life) survives the merge with it on every replica. A key expired
 * that long ago is collected too. */
static void test_ap_engine_collects_tombstones_everywhere(void **state) {
    struct tc *t = *state;
    assert_string_equal(tc_do(t, 1, "SADD gone a"), ":1\r\n");
    assert_string_equal(tc_do(t, 1, "SADD kept b"), ":1\r\n");
    tc_run(t, 100); /* w = one: replicated after the answer */
    assert_string_equal(tc_do(t, 2, "DEL gone"), ":1\r\n");
    tc_run(t, 300);
    t->cut[2] = true;
    tc_run(t, 2500);
    for (int i = 1; i <= 3; i++) assert_int_equal(tc_keys(t, i), 2); /* node 3 unreachable */
    assert_int_equal(tc_info_sum(t, "ap_tombstones_collected:"), 0);
    t->cut[2] = false;
    tc_run(t, 2500);
    for (int i = 1; i <= 3; i++) assert_int_equal(tc_keys(t, i), 1);
    assert_int_equal(tc_info_sum(t, "ap_tombstones_collected:"), 3);
    assert_string_equal(tc_do(t, 3, "SMEMBERS gone"), "*0\r\n");
    assert_string_equal(tc_do(t, 3, "SMEMBERS kept"), "*1\r\n$1\r\nb\r\n");
    /* Node 1 collected `x` while nodes 2 and 3 still hold its tombstone (their REAPs were
     * lost): node 1's next add is on a fresh copy, in a new life, and survives. */
    assert_string_equal(tc_do(t, 1, "SADD x a"), ":1\r\n");
    tc_run(t, 100);
    assert_string_equal(tc_do(t, 1, "DEL x"), ":1\r\n");
    tc_run(t, 100);
    assert_true(ap_store_remove((struct ap *)t->e[0], (const uint8_t *)"x", 1));
    assert_int_equal(tc_keys(t, 1), 1);
    assert_int_equal(tc_keys(t, 2), 2);
    assert_string_equal(tc_do(t, 1, "SADD x b"), ":1\r\n");
    tc_run(t, 3000);
    for (int i = 1; i <= 3; i++)
        assert_string_equal(tc_stale(t, i, "SMEMBERS x"), "*1\r\n$1\r\nb\r\n");
    assert_true(tc_converged(t));
    /* A key that expired longer ago than the age is collected the same way. */
    assert_string_equal(tc_do(t, 2, "SET e v PX 200"), "+OK\r\n");
    tc_run(t, 100);
    for (int i = 1; i <= 3; i++) assert_int_equal(tc_keys(t, i), 3);
    tc_run(t, 2500);
    for (int i = 1; i <= 3; i++) assert_int_equal(tc_keys(t, i), 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ap_engine_any_node_serves_any_key, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_ap_engine_partition_then_heal_converges, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_ap_engine_hands_hints_to_a_returning_replica,
                                        tc_setup4, tc_teardown),
        cmocka_unit_test_setup_teardown(test_ap_engine_ae_converges_both_sides_without_reads,
                                        tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_ap_engine_ae_catches_up_a_node_that_was_cut, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_ap_engine_ae_repairs_100000_keys_within_5_s, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_ap_engine_ae_in_sync_sends_no_keys, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_ap_engine_ae_does_not_resurrect_a_deleted_key,
                                        tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_ap_engine_ae_converges_when_messages_are_lost,
                                        tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_ap_engine_ae_respects_each_keyspace_n, tc_setup4_mixed,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_ap_engine_write_waits_for_its_own_log, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_ap_engine_acks_count_once_per_replica, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_ap_engine_busy_write_is_not_saved, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_ap_engine_refuses_too_many_arguments, tc_setup4_mixed,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_ap_engine_read_replies_pass_the_clock_check, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_ap_engine_request_ids_grow_across_restarts, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_ap_engine_hints_do_not_count_toward_w, tc_setup4,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_ap_engine_forward_to_a_non_replica_is_refused,
                                        tc_setup4_mixed, tc_teardown),
        cmocka_unit_test_setup_teardown(test_ap_engine_duplicated_forward_runs_once,
                                        tc_setup4_mixed, tc_teardown),
        cmocka_unit_test_setup_teardown(test_ap_engine_read_of_a_missing_key_writes_nothing,
                                        tc_setup, tc_teardown),
        cmocka_unit_test_setup_teardown(test_ap_engine_hints_are_checked_and_handed_once, tc_setup4,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_ap_engine_pipeline_answers_in_order, tc_setup4_mixed,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_ap_engine_members_change_moves_keys, tc_setup4,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_ap_engine_members_change_with_mixed_n, tc_setup4_mixed,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_ap_engine_session_waits_for_what_it_saw, tc_setup,
                                        tc_teardown),
        cmocka_unit_test_setup_teardown(test_ap_engine_collects_tombstones_everywhere,
                                        tc_setup_reap, tc_teardown),
        cmocka_unit_test_setup_teardown(test_ap_engine_session_travels_with_a_forward,
                                        tc_setup4_mixed, tc_teardown),
        cmocka_unit_test_setup_teardown(test_ap_engine_multikey_commands, tc_setup4_mixed,
                                        tc_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
