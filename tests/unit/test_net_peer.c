/*
 * Unit tests of the shell's peer links (src/net/peer.c) over real TCP on 127.0.0.1: two
 * peer sets in one libuv loop exchange payloads; one over the frame limit is refused with a
 * log line and a counter (never a silent drop) and the link goes on carrying the rest.
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

#include "net/peer.h"
#include "proto/wire.h"

#define TEST_PEER_ROUNDS_MAX 20000 /* loop turns (1 ms each at most) before giving up */

struct test_peer {
    uint32_t got_count;
    size_t got_bytes;
    uint32_t got_from;
    char last_log[512];
    uint32_t logs_too_big;
};

static void test_peer_on_message(void *ctx, uint32_t peer_id, const uint8_t *data, size_t bytes) {
    struct test_peer *t = ctx;
    (void)data;
    t->got_count++;
    t->got_bytes = bytes;
    t->got_from = peer_id;
}

static void test_peer_log(void *ctx, const char *line) {
    struct test_peer *t = ctx;
    snprintf(t->last_log, sizeof(t->last_log), "%s", line);
    if (strstr(line, "over the frame limit") != NULL) t->logs_too_big++;
}

/* Runs the loop until want_count payloads arrived at t (bounded in turns, not in time). */
static void test_peer_run_until(uv_loop_t *loop, const struct test_peer *t, uint32_t want_count,
                                struct peer_set *from, uint32_t to, const uint8_t *data,
                                size_t bytes) {
    for (int i = 0; i < TEST_PEER_ROUNDS_MAX && t->got_count < want_count; i++) {
        if (from != NULL && i % 100 == 0) peer_set_send(from, to, data, bytes); /* until up */
        uv_run(loop, UV_RUN_NOWAIT);
        usleep(1000);
    }
    assert_true(t->got_count >= want_count);
}

static void test_peer_payload_over_the_frame_limit_is_refused_and_logged(void **state) {
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    int base = 30000 + (int)(getpid() % 20000);
    struct node_peer members[2] = {{.id = 1}, {.id = 2}};
    snprintf(members[0].addr, sizeof(members[0].addr), "127.0.0.1:%d", base);
    snprintf(members[1].addr, sizeof(members[1].addr), "127.0.0.1:%d", base + 1);
    struct test_peer t1 = {0}, t2 = {0};
    struct peer_set *a = NULL, *b = NULL;
    struct peer_set_options oa = {.self_id = 1,
                                  .peers = members,
                                  .peer_count = 2,
                                  .listen = members[0].addr,
                                  .on_message = test_peer_on_message,
                                  .log = test_peer_log,
                                  .ctx = &t1};
    struct peer_set_options ob = oa;
    ob.self_id = 2;
    ob.listen = members[1].addr;
    ob.ctx = &t2;
    struct errmsg msg;
    assert_int_equal(peer_set_new(&loop, &oa, &a, &msg), 0);
    assert_int_equal(peer_set_new(&loop, &ob, &b, &msg), 0);

    const uint8_t hello[3] = {1, 2, 3};
    test_peer_run_until(&loop, &t2, 1, a, 2, hello, sizeof(hello)); /* the link is up */
    assert_int_equal(t2.got_from, 1);

    size_t big_bytes = (size_t)WIRE_PAYLOAD_BYTES_MAX + 1;
    uint8_t *big = calloc(1, big_bytes);
    assert_non_null(big);
    big[0] = 2;
    struct peer_stats before, after;
    peer_set_stats(a, &before);
    peer_set_send(a, 2, big, big_bytes);
    free(big);
    peer_set_stats(a, &after);
    assert_int_equal(after.dropped_too_big, before.dropped_too_big + 1);
    assert_int_equal(after.dropped, before.dropped + 1);
    assert_int_equal(after.sent, before.sent);
    assert_int_equal(t1.logs_too_big, 1);
    assert_non_null(strstr(t1.last_log, "for node 2"));

    /* The link is not harmed: the next payload arrives. */
    uint32_t got = t2.got_count;
    peer_set_send(a, 2, hello, sizeof(hello));
    test_peer_run_until(&loop, &t2, got + 1, NULL, 0, NULL, 0);
    assert_int_equal(t2.got_bytes, sizeof(hello));

    peer_set_close(a);
    peer_set_close(b);
    while (uv_run(&loop, UV_RUN_DEFAULT) != 0) {
    }
    peer_set_free(a);
    peer_set_free(b);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_peer_payload_over_the_frame_limit_is_refused_and_logged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
