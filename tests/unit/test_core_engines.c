/*
 * Unit tests for src/core/engines.c with two engines in one node: the single-node engine
 * for mode cp and a stand-in for mode ap (the AP engine is issue 9; this stub implements
 * engine.h the way it must: answers by id, pending replies, its own sync, its own files).
 * They check what one engine alone cannot show: routing by keyspace, -CROSSSLOT for a
 * command or transaction spanning engines, replies in request order across engines, one
 * sync at a time handed to the shell, peer payloads by engine byte, INFO from both.
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
#include "core/node.h"
#include "engine/cmdlist.h"
#include "engine/seen.h"
#include "storage/memdisk.h"

/* ---- the stand-in ap engine ------------------------------------------------------------ */

struct stub {
    struct engine base;
    struct disk *disk;
    struct disk_file *log;
    uint64_t pending_id; /* a SET answered at the next FLUSH */
    uint64_t writes;     /* release lsn: one per write */
    uint64_t durable;
    bool sync_asked;
    uint32_t peer_payloads;
    struct buf replies;
    struct engine_reply reply;
    struct buf seen;       /* what the last answer reflects (engine/seen.h) */
    struct buf reply_seen; /* ...and the pending SET's reply */
    struct buf floor;      /* the session floor the last request carried */
};

static struct stub *stub_last; /* the stub the node opened, for the tests to look at */

static int stub_open(const struct engine_config *config, struct disk *disk, uint64_t now_ms,
                     struct engine **out, struct errmsg *msg) {
    (void)config;
    (void)now_ms;
    struct stub *s = calloc(1, sizeof(*s));
    s->disk = disk;
    buf_init(&s->replies);
    buf_init(&s->seen);
    buf_init(&s->reply_seen);
    buf_init(&s->floor);
    int rc = disk->open(disk, "stub.log", DISK_OPEN_WRITE | DISK_OPEN_CREATE, &s->log, msg);
    assert_int_equal(rc, 0);
    extern const struct engine_ops stub_ops;
    s->base.ops = &stub_ops;
    stub_last = s;
    *out = &s->base;
    return 0;
}

static void stub_free(struct engine *e) {
    struct stub *s = (struct stub *)e;
    s->disk->close(s->disk, s->log);
    buf_deinit(&s->replies);
    buf_deinit(&s->seen);
    buf_deinit(&s->reply_seen);
    buf_deinit(&s->floor);
    free(s);
}

/* The entry a reply about key gives: one writer (actor 9), count writes + 1. */
static void stub_seen(struct stub *s, const struct resp_arg *key, struct buf *out) {
    struct seen_key k = {.hash = seen_key_hash(key->data, key->bytes), .count = 1};
    k.actor[0] = 9;
    k.counter[0] = s->writes + 1;
    buf_clear(out);
    seen_put(out, &k);
}

/* GET answers at once; SET answers at the next FLUSH, after a sync is asked. Each says
 * what it reflects of its key. */
static void stub_submit(struct engine *e, const struct engine_request *req, struct buf *out,
                        struct engine_answer *a) {
    struct stub *s = (struct stub *)e;
    memset(a, 0, sizeof(*a));
    assert_int_equal(req->kind, ENGINE_REQUEST_DATA);
    buf_clear(&s->floor);
    buf_append(&s->floor, req->session_ap, req->session_ap_bytes);
    if (req->spec != NULL && cmd_arg_is(&req->argv[0], "set")) {
        assert_int_equal(s->pending_id, 0);
        s->pending_id = req->id;
        stub_seen(s, &req->argv[1], &s->reply_seen);
        s->writes++;
        a->pending = true;
        return;
    }
    if (req->spec != NULL) {
        stub_seen(s, &req->argv[1], &s->seen);
        a->seen = s->seen.data;
        a->seen_bytes = s->seen.len;
    }
    if (req->list != NULL && (req->list[0] & CMDLIST_WATCH)) {
        resp_put_int(out, 7); /* the index the watch was served at */
        return;
    }
    resp_put_simple(out, req->spec != NULL ? "ap-read" : "ap-exec");
}

static void stub_step(struct engine *e, const struct engine_event *ev, struct engine_effects *out) {
    struct stub *s = (struct stub *)e;
    memset(out, 0, sizeof(*out));
    if (ev->kind == ENGINE_EVENT_PEER) s->peer_payloads++;
    if (ev->kind == ENGINE_EVENT_SYNCED) {
        s->sync_asked = false;
        s->durable = s->writes;
    }
    if (ev->kind == ENGINE_EVENT_GONE && ev->request_id == s->pending_id) s->pending_id = 0;
    if (ev->kind != ENGINE_EVENT_FLUSH) return;
    if (s->pending_id != 0) {
        buf_clear(&s->replies);
        resp_put_simple(&s->replies, "OK");
        s->reply = (struct engine_reply){.id = s->pending_id,
                                         .data = s->replies.data,
                                         .bytes = s->replies.len,
                                         .seen = s->reply_seen.data,
                                         .seen_bytes = s->reply_seen.len};
        out->replies = &s->reply;
        out->reply_count = 1;
        s->pending_id = 0;
    }
    if (s->writes > s->durable && !s->sync_asked) {
        s->sync_asked = true;
        out->sync_file = s->log;
        out->sync_token = s->writes;
    }
}

static void stub_info(struct engine *e, const char *section, struct buf *out) {
    (void)e;
    if (strcmp(section, "replication") == 0) buf_appendf(out, "ap_stub:1\r\n");
}

static uint64_t stub_zero(struct engine *e) {
    (void)e;
    return 0;
}

static uint64_t stub_never(struct engine *e) {
    (void)e;
    return UINT64_MAX;
}

static uint64_t stub_release(struct engine *e) {
    return ((struct stub *)e)->writes;
}

static uint64_t stub_durable(struct engine *e) {
    return ((struct stub *)e)->durable;
}

const struct engine_ops stub_ops = {
    .name = "ap",
    .id = ENGINE_AP,
    .watch = ENGINE_WATCH_CONDITIONS,
    .open = stub_open,
    .free = stub_free,
    .submit = stub_submit,
    .step = stub_step,
    .info = stub_info,
    .key_count = stub_zero,
    .memory_bytes = stub_zero,
    .last_save_ms = stub_zero,
    .observed_index = stub_zero,
    .wake_at = stub_never,
    .release_lsn = stub_release,
    .durable_lsn = stub_durable,
};

/* ---- a node with both, driven as a shell does ------------------------------------------ */

struct t {
    struct disk disk;
    struct node *node;
    uint64_t now_ms;
    struct disk_file *sync; /* the sync the shell runs */
    uint64_t sync_lsn;
    char out[8192];
};

static void t_effects(struct t *t, const struct node_effects *eff) {
    assert_int_equal(eff->fatal, 0);
    for (size_t i = 0; i < eff->write_count; i++) {
        size_t bytes;
        const uint8_t *data = node_client_output(t->node, eff->write_clients[i], &bytes);
        size_t have = strlen(t->out);
        assert_true(have + bytes < sizeof(t->out));
        memcpy(t->out + have, data, bytes);
        t->out[have + bytes] = '\0';
        node_client_sent(t->node, eff->write_clients[i], bytes);
    }
    if (eff->sync_file != NULL) {
        assert_null(t->sync); /* the node hands out one sync at a time */
        t->sync = eff->sync_file;
        t->sync_lsn = eff->sync_lsn;
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

/* Runs the sync in flight, reports it, flushes; returns which file it was. */
static struct disk_file *t_sync(struct t *t) {
    struct disk_file *f = t->sync;
    assert_non_null(f);
    struct errmsg msg;
    assert_int_equal(t->disk.sync(&t->disk, f, &msg), 0);
    t->sync = NULL;
    t_step(t, (struct node_event){.kind = NODE_EVENT_SYNCED, .lsn = t->sync_lsn});
    t_flush(t);
    return f;
}

static void t_send(struct t *t, const char *text) {
    t_step(t, (struct node_event){.kind = NODE_EVENT_CLIENT_INPUT,
                                  .client_id = 1,
                                  .data = (const uint8_t *)text,
                                  .bytes = strlen(text)});
}

static const char *t_call(struct t *t, const char *text) {
    t->out[0] = '\0';
    t_send(t, text);
    t_flush(t);
    for (int i = 0; i < 4 && t->sync != NULL; i++) t_sync(t);
    return t->out;
}

static int t_setup(void **state) {
    struct t *t = calloc(1, sizeof(*t));
    memdisk_init(&t->disk);
    t->now_ms = 1700000000000ull;
    struct node_config config;
    node_config_default(&config);
    config.keyspace_count = 2;
    snprintf(config.keyspaces[0].name, KEYSPACE_TEXT_BYTES_MAX, "carts");
    config.keyspaces[0].match_count = 1;
    snprintf(config.keyspaces[0].match[0], KEYSPACE_TEXT_BYTES_MAX, "cart:*");
    config.keyspaces[0].mode = KEYSPACE_MODE_AP;
    snprintf(config.keyspaces[1].name, KEYSPACE_TEXT_BYTES_MAX, "default");
    config.keyspaces[1].match_count = 1;
    snprintf(config.keyspaces[1].match[0], KEYSPACE_TEXT_BYTES_MAX, "*");
    config.ap_engine = &stub_ops;
    struct errmsg msg;
    if (node_new(&config, &t->disk, t->now_ms, &t->node, &msg) != 0) fail_msg("%s", msg.text);
    t_step(t, (struct node_event){
                  .kind = NODE_EVENT_CLIENT_OPEN, .client_id = 1, .peer_addr = "127.0.0.1:1"});
    *state = t;
    return 0;
}

static int t_teardown(void **state) {
    struct t *t = *state;
    node_free(t->node);
    memdisk_deinit(&t->disk);
    free(t);
    return 0;
}

/* DESIGN.md: keys route by keyspace; a command spanning engines is refused, as Redis
 * Cluster refuses one spanning slots, and changes nothing. */
static void test_engines_route_by_keyspace_and_refuse_a_command_across_them(void **state) {
    struct t *t = *state;
    assert_string_equal(t_call(t, "SET k v\r\n"), "+OK\r\n");
    assert_string_equal(t_call(t, "GET cart:1\r\n"), "+ap-read\r\n");
    const char *r = t_call(t, "MSET k w cart:1 x\r\n");
    assert_true(strncmp(r, "-CROSSSLOT ", 11) == 0);
    assert_non_null(strstr(r, "'k' is in cp keyspace default, 'cart:1' in ap keyspace carts"));
    assert_string_equal(t_call(t, "GET k\r\n"), "$1\r\nv\r\n");
    assert_string_equal(t_call(t, "DBSIZE\r\n"), ":1\r\n"); /* keyless: the cp engine's */
}

/* A transaction runs in one engine: a command of another is refused, EXEC aborts. */
static void test_engines_refuse_a_transaction_across_them(void **state) {
    struct t *t = *state;
    const char *r = t_call(t, "MULTI\r\nSET k 1\r\nSET cart:1 2\r\nEXEC\r\n");
    assert_true(strncmp(r, "+OK\r\n+QUEUED\r\n-CROSSSLOT ", 25) == 0);
    assert_non_null(strstr(r, "-EXECABORT Transaction discarded because of previous errors."));
    assert_string_equal(t_call(t, "GET k\r\n"), "$-1\r\n");
    assert_string_equal(t_call(t, "MULTI\r\nGET cart:1\r\nEXEC\r\n"),
                        "+OK\r\n+QUEUED\r\n+ap-exec\r\n");
    r = t_call(t, "WATCH k\r\nWATCH cart:1\r\n");
    assert_true(strncmp(r, "+OK\r\n-CROSSSLOT ", 16) == 0);
    assert_string_equal(t_call(t, "UNWATCH\r\nWATCH cart:1\r\n"), "+OK\r\n+OK\r\n");
}

/* Pipelined requests to both engines come back in request order, the ap one pending; the
 * shell is given one sync at a time, the other engine's after the first is done. */
static void test_engines_keep_reply_order_and_hand_out_one_sync_at_a_time(void **state) {
    struct t *t = *state;
    t->out[0] = '\0';
    t_send(t, "SET cart:2 x\r\nSET k v\r\nGET cart:2\r\n");
    t_flush(t);
    assert_string_equal(t->out, ""); /* the local SET waits for its sync, after the ap one */
    struct disk_file *first = t->sync;
    assert_non_null(first);
    struct disk_file *done = t_sync(t);
    assert_ptr_equal(done, first);
    assert_non_null(t->sync); /* the other engine's sync, now */
    assert_ptr_not_equal(t->sync, first);
    t_sync(t);
    for (int i = 0; i < 4 && t->sync != NULL; i++) t_sync(t);
    assert_string_equal(t->out, "+OK\r\n+OK\r\n+ap-read\r\n");
}

/* A peer payload goes to the engine its first byte names; one for an engine this node
 * does not run is dropped. INFO shows every engine's lines. */
static void test_engines_dispatch_peer_payloads_and_info(void **state) {
    struct t *t = *state;
    const uint8_t ap[] = {ENGINE_AP, 1, 2, 3};
    const uint8_t cp[] = {ENGINE_CP, 1};
    t_step(t, (struct node_event){
                  .kind = NODE_EVENT_PEER_MESSAGE, .peer_id = 2, .data = ap, .bytes = sizeof(ap)});
    t_step(t, (struct node_event){
                  .kind = NODE_EVENT_PEER_MESSAGE, .peer_id = 2, .data = cp, .bytes = sizeof(cp)});
    assert_int_equal(stub_last->peer_payloads, 1);
    const char *r = t_call(t, "INFO replication\r\n");
    assert_non_null(strstr(r, "capkv_replication:none (single node)"));
    assert_non_null(strstr(r, "ap_stub:1"));
}

/* The AP key count of a SESSION TOKEN reply (its 15th byte), the token copied to out. */
static unsigned t_token_ap_keys(const char *reply, char *out, size_t size) {
    assert_true(reply[0] == '$');
    const char *text = strstr(reply, "\r\n") + 2;
    size_t n = strtoul(reply + 1, NULL, 10);
    assert_true(n >= 38 && n < size && n % 2 == 0);
    snprintf(out, size, "%.*s", (int)n, text);
    assert_int_equal(n, 38 + 2 * 25 * strtoul((char[]){out[28], out[29], 0}, NULL, 16));
    return (unsigned)strtoul((char[]){out[28], out[29], 0}, NULL, 16);
}

/* Sessions over AP keys, the node's part: what an AP reply says it reflects (answered at
 * once or later) joins the connection's session and its token; after SESSION RESUME each
 * AP request carries those keys (the engine waits on them), before it none does; SESSION
 * END and RESET forget them. CP keys go on as before. */
static void test_engines_sessions_carry_ap_keys(void **state) {
    struct t *t = *state;
    char token[512];
    assert_string_equal(t_call(t, "SET k v\r\n"), "+OK\r\n");
    assert_int_equal(t_token_ap_keys(t_call(t, "SESSION TOKEN\r\n"), token, sizeof(token)), 0);
    assert_string_equal(t_call(t, "GET cart:1\r\n"), "+ap-read\r\n");
    assert_int_equal(stub_last->floor.len, 0); /* not resumed */
    assert_int_equal(t_token_ap_keys(t_call(t, "SESSION TOKEN\r\n"), token, sizeof(token)), 1);
    assert_string_equal(t_call(t, "SET cart:2 x\r\n"), "+OK\r\n"); /* answered later */
    assert_int_equal(t_token_ap_keys(t_call(t, "SESSION TOKEN\r\n"), token, sizeof(token)), 2);
    assert_string_equal(t_call(t, "GET cart:1\r\n"), "+ap-read\r\n"); /* the same key again */
    assert_int_equal(t_token_ap_keys(t_call(t, "SESSION TOKEN\r\n"), token, sizeof(token)), 2);
    char resume[600];
    snprintf(resume, sizeof(resume), "SESSION END\r\nSESSION RESUME %s\r\n", token);
    assert_string_equal(t_call(t, resume), "+OK\r\n+OK\r\n");
    assert_string_equal(t_call(t, "GET cart:3\r\n"), "+ap-read\r\n");
    assert_int_equal(stub_last->floor.len, 2 * 25); /* the token's two keys */
    struct seen_key k;
    assert_true(seen_find(stub_last->floor.data, stub_last->floor.len,
                          seen_key_hash((const uint8_t *)"cart:2", 6), &k));
    assert_int_equal(k.counter[0], 1);
    assert_int_equal(t_token_ap_keys(t_call(t, "SESSION TOKEN\r\n"), token, sizeof(token)), 3);
    assert_string_equal(t_call(t, "GET k\r\n"), "$1\r\nv\r\n");
    assert_string_equal(t_call(t, "SESSION END\r\nGET cart:1\r\n"), "+OK\r\n+ap-read\r\n");
    assert_int_equal(stub_last->floor.len, 0);
    assert_string_equal(t_call(t, "RESET\r\n"), "+RESET\r\n");
    assert_int_equal(t_token_ap_keys(t_call(t, "SESSION TOKEN\r\n"), token, sizeof(token)), 0);
}

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, t_setup, t_teardown)
    const struct CMUnitTest tests[] = {
        T(test_engines_route_by_keyspace_and_refuse_a_command_across_them),
        T(test_engines_refuse_a_transaction_across_them),
        T(test_engines_keep_reply_order_and_hand_out_one_sync_at_a_time),
        T(test_engines_dispatch_peer_payloads_and_info),
        T(test_engines_sessions_carry_ap_keys),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
