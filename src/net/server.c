/*
 * The libuv shell. Each turn of the loop: timer (TICK, then a FLUSH of its own), I/O
 * callbacks (client bytes, sync completions), then a check callback that sends
 * NODE_EVENT_FLUSH and carries its effects out: one log write and at most one sync for
 * everything that arrived in the turn (group commit), then the released replies. A sync
 * runs inline by default, or on libuv's worker pool (fsync-thread = yes) so the loop keeps
 * reading while the disk works. Replies are written with uv_try_write straight from the
 * core's buffer; only what the socket does not take at once is copied for uv_write. With
 * peers configured, src/net/peer.c carries the peer links: each frame's payload becomes a
 * PEER_MESSAGE step, and the payloads a FLUSH returns are framed and queued on the outgoing
 * links (best effort; Raft tolerates loss). Every event carries the wall clock (now_ms) and
 * the monotonic clock (mono_ms).
 */
#include "net/server.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

#include "base/assert.h"
#include "base/buf.h"
#include "net/disk_posix.h"
#include "net/peer.h"

#define SERVER_READ_BYTES (64 * 1024)
#define SERVER_CONN_BUCKETS 4096
#define SERVER_BACKLOG 511

struct server;

struct conn {
    uv_tcp_t tcp; /* first: the handle's address is the conn's */
    struct server *server;
    uint64_t id;
    struct conn *bucket_next;
    uv_write_t write_req;
    struct buf wbuf; /* bytes handed to uv_write, owned here until write_cb */
    bool write_in_flight;
    bool close_wanted; /* close once everything released is written */
    bool closing;
    bool reading;
};

struct server {
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_check_t check;
    uv_timer_t timer;
    uv_signal_t sigint;
    uv_signal_t sigterm;
    uv_work_t sync_work;
    struct disk_file *sync_file;
    uint64_t sync_lsn;
    int sync_rc;
    struct errmsg sync_msg;
    struct disk disk;
    struct node *node;
    struct peer_set *peers; /* NULL when the node runs alone */
    uint32_t id;
    struct conn *buckets[SERVER_CONN_BUCKETS];
    uint64_t next_client_id;
    uint64_t timer_at_ms;
    uint8_t read_buf[SERVER_READ_BYTES];
    bool sync_in_thread;
    bool sync_inline_ok;
    int fatal;
    struct errmsg fatal_msg;
    FILE *log;
    uint64_t slow_steps;
    uint64_t slowest_step_ms;
    uint64_t slow_logged_ms; /* when a slow step was last logged (mono) */
    uint32_t step_depth;
};

static uint64_t server_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static uint64_t server_mono_ms(void) {
    uint64_t ms = uv_hrtime() / 1000000;
    return ms != 0 ? ms : 1; /* 0 would mean "use now_ms" */
}

/* Stamps an event with both clocks. */
static void server_stamp(struct node_event *ev) {
    ev->now_ms = server_now_ms();
    ev->mono_ms = server_mono_ms();
}

static void server_trace(void *ctx, const char *line) {
    struct server *s = ctx;
    fprintf(s->log, "%s\n", line);
    fflush(s->log);
}

static void server_host_stats(void *ctx, struct node_host_stats *out) {
    struct server *s = ctx;
    memset(out, 0, sizeof(*out));
    if (s->peers != NULL) {
        struct peer_stats st;
        peer_set_stats(s->peers, &st);
        out->peer_sent = st.sent;
        out->peer_dropped_down = st.dropped_down;
        out->peer_dropped_full = st.dropped_full;
        out->peer_dropped_too_big = st.dropped_too_big;
        out->peer_received = st.received;
        out->peer_links_closed_bad = st.links_closed_bad;
    }
    out->slow_steps = s->slow_steps;
    out->slowest_step_ms = s->slowest_step_ms;
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) {
        out->cpu_user_us = (uint64_t)ru.ru_utime.tv_sec * 1000000 + (uint64_t)ru.ru_utime.tv_usec;
        out->cpu_sys_us = (uint64_t)ru.ru_stime.tv_sec * 1000000 + (uint64_t)ru.ru_stime.tv_usec;
    }
    FILE *f = fopen("/proc/self/statm", "r");
    if (f == NULL) return;
    unsigned long long pages_total;
    unsigned long long pages_rss;
    if (fscanf(f, "%llu %llu", &pages_total, &pages_rss) == 2) {
        out->rss_bytes = pages_rss * (uint64_t)sysconf(_SC_PAGESIZE);
    }
    fclose(f);
}

static struct conn **server_bucket(struct server *s, uint64_t id) {
    return &s->buckets[id % SERVER_CONN_BUCKETS];
}

static struct conn *server_conn(struct server *s, uint64_t id) {
    for (struct conn *c = *server_bucket(s, id); c != NULL; c = c->bucket_next) {
        if (c->id == id) return c;
    }
    return NULL;
}

static void server_fail(struct server *s, int code, const char *text) {
    if (s->fatal != 0) return;
    s->fatal = code;
    snprintf(s->fatal_msg.text, sizeof(s->fatal_msg.text), "%s", text);
    uv_stop(&s->loop);
}

static void server_effects(struct server *s, const struct node_effects *eff);

static const char *server_event_name(enum node_event_kind kind) {
    switch (kind) {
    case NODE_EVENT_CLIENT_OPEN:
        return "a client connecting";
    case NODE_EVENT_CLIENT_INPUT:
        return "a client's input";
    case NODE_EVENT_CLIENT_CLOSED:
        return "a client closing";
    case NODE_EVENT_TICK:
        return "a timer";
    case NODE_EVENT_SYNCED:
        return "the end of a sync";
    case NODE_EVENT_FLUSH:
        return "the end of a batch";
    case NODE_EVENT_PEER_MESSAGE:
        return "a peer's message";
    }
    return "an event";
}

/* A step that holds the loop this long delays every heartbeat and reply behind it (Raft's
 * election timeout is 200 ms by default): counted in INFO, logged at most once a second. */
#define SERVER_SLOW_STEP_MS 50

static void server_note_slow_step(struct server *s, enum node_event_kind kind, uint64_t ms) {
    s->slow_steps++;
    if (ms > s->slowest_step_ms) s->slowest_step_ms = ms;
    uint64_t now = server_mono_ms();
    if (s->slow_logged_ms != 0 && now - s->slow_logged_ms < 1000) return;
    s->slow_logged_ms = now;
    char line[192];
    snprintf(line, sizeof(line),
             "node=%u t=%llu slow step: %s held the event loop for %llu ms (%llu so far)", s->id,
             (unsigned long long)server_now_ms(), server_event_name(kind), (unsigned long long)ms,
             (unsigned long long)s->slow_steps);
    server_trace(s, line);
}

static void server_step(struct server *s, struct node_event *ev) {
    struct node_effects eff;
    server_stamp(ev);
    uint64_t start = ev->mono_ms;
    enum node_event_kind kind = ev->kind;
    s->step_depth++; /* an inline sync steps again inside: only the outer step is timed */
    node_step(s->node, ev, &eff);
    server_effects(s, &eff);
    s->step_depth--;
    uint64_t took = server_mono_ms() - start;
    if (s->step_depth == 0 && took >= SERVER_SLOW_STEP_MS) server_note_slow_step(s, kind, took);
}

static void conn_on_closed(uv_handle_t *handle) {
    struct conn *c = (struct conn *)handle;
    buf_deinit(&c->wbuf);
    free(c);
}

/* Forgets the connection in the core and the map, then closes the socket. */
static void conn_close(struct conn *c) {
    if (c->closing) return;
    c->closing = true;
    struct server *s = c->server;
    struct conn **p = server_bucket(s, c->id);
    while (*p != c) p = &(*p)->bucket_next;
    *p = c->bucket_next;
    struct node_event ev = {.kind = NODE_EVENT_CLIENT_CLOSED, .client_id = c->id};
    struct node_effects eff;
    server_stamp(&ev);
    node_step(s->node, &ev, &eff);
    uv_close((uv_handle_t *)&c->tcp, conn_on_closed);
}

static void conn_send(struct conn *c);

static void conn_on_written(uv_write_t *req, int status) {
    struct conn *c = req->data;
    c->write_in_flight = false;
    buf_clear(&c->wbuf);
    if (c->closing) return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    conn_send(c);
}

static void conn_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b);
static void conn_on_alloc(uv_handle_t *handle, size_t hint, uv_buf_t *b);

static void conn_update_reading(struct conn *c) {
    bool want = !c->close_wanted && !node_client_backpressured(c->server->node, c->id);
    if (want == c->reading) return;
    c->reading = want;
    if (want)
        uv_read_start((uv_stream_t *)&c->tcp, conn_on_alloc, conn_on_read);
    else
        uv_read_stop((uv_stream_t *)&c->tcp);
}

/* Sends what the core released: directly while the socket takes it, else one uv_write
 * of a copy. Closes the connection when asked and everything is out. */
static void conn_send(struct conn *c) {
    struct node *node = c->server->node;
    if (c->write_in_flight || c->closing) return;
    size_t bytes;
    const uint8_t *data = node_client_output(node, c->id, &bytes);
    while (bytes > 0) {
        uv_buf_t b = uv_buf_init((char *)(uintptr_t)data, (unsigned)bytes);
        int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
        if (n == UV_EAGAIN) break;
        if (n < 0) {
            conn_close(c);
            return;
        }
        node_client_sent(node, c->id, (size_t)n);
        data = node_client_output(node, c->id, &bytes);
    }
    if (bytes > 0) {
        buf_append(&c->wbuf, data, bytes);
        node_client_sent(node, c->id, bytes);
        uv_buf_t b = uv_buf_init((char *)c->wbuf.data, (unsigned)c->wbuf.len);
        c->write_req.data = c;
        c->write_in_flight = true;
        if (uv_write(&c->write_req, (uv_stream_t *)&c->tcp, &b, 1, conn_on_written) != 0) {
            c->write_in_flight = false;
            conn_close(c);
        }
        return;
    }
    if (c->close_wanted) {
        conn_close(c);
        return;
    }
    conn_update_reading(c);
}

static void conn_on_alloc(uv_handle_t *handle, size_t hint, uv_buf_t *b) {
    (void)hint;
    struct conn *c = (struct conn *)handle;
    *b = uv_buf_init((char *)c->server->read_buf, SERVER_READ_BYTES);
}

static void conn_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b) {
    struct conn *c = (struct conn *)stream;
    if (nread == 0) return;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    struct node_event ev = {.kind = NODE_EVENT_CLIENT_INPUT,
                            .client_id = c->id,
                            .data = (const uint8_t *)b->base,
                            .bytes = (size_t)nread};
    server_step(c->server, &ev);
    if (!c->closing) conn_update_reading(c);
}

static void server_peer_addr(uv_tcp_t *tcp, char *out, size_t cap) {
    struct sockaddr_storage addr;
    int len = sizeof(addr);
    snprintf(out, cap, "?");
    if (uv_tcp_getpeername(tcp, (struct sockaddr *)&addr, &len) != 0) return;
    char ip[64] = "?";
    int port = 0;
    if (addr.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&addr;
        uv_ip4_name(a, ip, sizeof(ip));
        port = ntohs(a->sin_port);
    } else if (addr.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&addr;
        uv_ip6_name(a, ip, sizeof(ip));
        port = ntohs(a->sin6_port);
    }
    snprintf(out, cap, "%s:%d", ip, port);
}

static void server_on_connection(uv_stream_t *listener, int status) {
    struct server *s = listener->data;
    if (status < 0) return;
    struct conn *c = base_calloc(1, sizeof(*c));
    c->server = s;
    buf_init(&c->wbuf);
    uv_tcp_init(&s->loop, &c->tcp);
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) != 0) {
        c->closing = true;
        uv_close((uv_handle_t *)&c->tcp, conn_on_closed);
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    c->id = ++s->next_client_id;
    struct conn **bucket = server_bucket(s, c->id);
    c->bucket_next = *bucket;
    *bucket = c;
    char addr[64];
    server_peer_addr(&c->tcp, addr, sizeof(addr));
    struct node_event ev = {.kind = NODE_EVENT_CLIENT_OPEN, .client_id = c->id, .peer_addr = addr};
    server_step(s, &ev);
    conn_update_reading(c);
}

static void server_on_sync(uv_work_t *req) {
    struct server *s = req->data;
    s->sync_rc = s->disk.sync(&s->disk, s->sync_file, &s->sync_msg);
}

static void server_on_synced(uv_work_t *req, int status) {
    struct server *s = req->data;
    struct node_event ev = {.kind = NODE_EVENT_SYNCED,
                            .lsn = s->sync_lsn,
                            .sync_error = status != 0 ? ERR_IO : s->sync_rc};
    if (ev.sync_error != 0) server_trace(s, s->sync_msg.text);
    s->sync_file = NULL;
    server_step(s, &ev);
}

static void server_on_timer(uv_timer_t *timer) {
    struct server *s = timer->data;
    s->timer_at_ms = 0;
    struct node_event ev = {.kind = NODE_EVENT_TICK};
    server_step(s, &ev);
    /* libuv runs timers before it polls, and the poll then blocks until the next timer or
     * I/O: what the tick produced (a pre-vote, a heartbeat, a timed-out request's error)
     * would wait for that wake-up before the check callback carried it out, which took
     * 10-17 ms a message at idle and let both survivors of a leader's crash campaign at
     * once (split votes, failovers of up to 1.3 s). So the tick's effects go out now. */
    ev = (struct node_event){.kind = NODE_EVENT_FLUSH};
    server_step(s, &ev);
}

static void server_on_check(uv_check_t *check) {
    struct server *s = check->data;
    struct node_event ev = {.kind = NODE_EVENT_FLUSH};
    server_step(s, &ev);
}

static void server_on_peer_message(void *ctx, uint32_t peer_id, const uint8_t *data, size_t bytes) {
    struct server *s = ctx;
    if (s->fatal != 0) return;
    struct node_event ev = {
        .kind = NODE_EVENT_PEER_MESSAGE, .peer_id = peer_id, .data = data, .bytes = bytes};
    server_step(s, &ev);
}

static void server_effects(struct server *s, const struct node_effects *eff) {
    if (eff->fatal != 0) {
        server_fail(s, eff->fatal, node_fatal_text(s->node));
        return;
    }
    /* Payloads go out before a sync starts: the core emits a message only once what it
     * promises (a vote, an acknowledgement) is durable, so order against this batch's
     * sync does not matter, and a leader's appends overlap its own fsync (Raft §10.2.1). */
    for (size_t i = 0; i < eff->peer_send_count; i++) {
        const struct node_peer_send *ps = &eff->peer_sends[i];
        if (s->peers != NULL) peer_set_send(s->peers, ps->to, ps->data, ps->bytes);
    }
    /* After this batch's sends: a new member's first messages wait for its next batch,
     * but a member leaving still gets what was meant for it. */
    if (eff->members != NULL && s->peers != NULL)
        peer_set_update(s->peers, eff->members, eff->member_count);
    for (size_t i = 0; i < eff->close_count; i++) {
        struct conn *c = server_conn(s, eff->close_clients[i]);
        if (c != NULL) c->close_wanted = true;
    }
    for (size_t i = 0; i < eff->write_count; i++) {
        struct conn *c = server_conn(s, eff->write_clients[i]);
        if (c != NULL) conn_send(c);
    }
    if (eff->sync_file != NULL) {
        ASSERT(s->sync_file == NULL);
        s->sync_file = eff->sync_file;
        s->sync_lsn = eff->sync_lsn;
        s->sync_work.data = s;
        if (s->sync_in_thread && !(s->sync_inline_ok && eff->sync_inline)) {
            uv_queue_work(&s->loop, &s->sync_work, server_on_sync, server_on_synced);
        } else {
            /* Inline, as Redis's appendfsync always: on a small machine a thread handoff
             * per group commit costs more than the loop loses by waiting. */
            server_on_sync(&s->sync_work);
            server_on_synced(&s->sync_work, 0);
            struct node_event ev = {.kind = NODE_EVENT_FLUSH};
            server_step(s, &ev);
        }
    }
    if (eff->wake_at_ms != 0 && eff->wake_at_ms != s->timer_at_ms) {
        uint64_t now = server_now_ms();
        s->timer_at_ms = eff->wake_at_ms;
        uv_timer_start(&s->timer, server_on_timer,
                       eff->wake_at_ms > now ? eff->wake_at_ms - now : 0, 0);
    }
}

static void server_on_signal(uv_signal_t *handle, int signum) {
    struct server *s = handle->data;
    server_trace(s, signum == SIGINT ? "received SIGINT, shutting down"
                                     : "received SIGTERM, shutting down");
    uv_stop(&s->loop);
}

static int server_listen(struct server *s, const char *listen, struct errmsg *msg) {
    struct sockaddr_storage addr;
    int rc = peer_parse_addr(listen, &addr, msg);
    if (rc != 0) return rc;
    uv_tcp_init(&s->loop, &s->listener);
    s->listener.data = s;
    int uv_rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&addr, 0);
    if (uv_rc == 0)
        uv_rc = uv_listen((uv_stream_t *)&s->listener, SERVER_BACKLOG, server_on_connection);
    if (uv_rc != 0) {
        return errmsg_set(msg, ERR_IO, "cannot listen on %s: %s", listen, uv_strerror(uv_rc));
    }
    return 0;
}

static void server_close_walk(uv_handle_t *handle, void *arg) {
    (void)arg;
    if (uv_is_closing(handle)) return;
    if (handle->type == UV_TCP && handle->data == NULL) {
        struct conn *c = (struct conn *)handle;
        c->closing = true;
        uv_close(handle, conn_on_closed);
        return;
    }
    uv_close(handle, NULL);
}

/* Stops every handle, waits for an in-flight sync, and frees the loop. */
static void server_shutdown(struct server *s) {
    if (s->peers != NULL) {
        struct peer_stats st;
        peer_set_stats(s->peers, &st);
        fprintf(s->log,
                "node=%u peer links: %llu payloads sent, %llu dropped (%llu link down, %llu "
                "queue full, %llu over the frame limit), %llu received, %llu links closed "
                "for bad frames\n",
                s->id, (unsigned long long)st.sent, (unsigned long long)st.dropped,
                (unsigned long long)st.dropped_down, (unsigned long long)st.dropped_full,
                (unsigned long long)st.dropped_too_big, (unsigned long long)st.received,
                (unsigned long long)st.links_closed_bad);
        peer_set_close(s->peers);
    }
    uv_walk(&s->loop, server_close_walk, NULL);
    while (uv_run(&s->loop, UV_RUN_DEFAULT) != 0) {
    }
    uv_loop_close(&s->loop);
    peer_set_free(s->peers);
    s->peers = NULL;
}

/* The peer listener (peer-listen, or this node's address in peers) and outgoing links. */
static int server_start_peers(struct server *s, const struct server_options *options,
                              const struct node_config *config, struct errmsg *msg) {
    if (config->peer_count == 0) return 0;
    const char *listen = options->peer_listen;
    for (uint32_t i = 0; listen == NULL && i < config->peer_count; i++) {
        if (config->peers[i].id == config->id) listen = config->peers[i].addr;
    }
    if (listen == NULL) {
        return errmsg_set(msg, ERR_CONFIG, "node %u is not in peers and has no peer-listen",
                          config->id);
    }
    struct peer_set_options po = {.self_id = config->id,
                                  .peers = config->peers,
                                  .peer_count = config->peer_count,
                                  .listen = listen,
                                  .on_message = server_on_peer_message,
                                  .log = server_trace,
                                  .ctx = s};
    int rc = peer_set_new(&s->loop, &po, &s->peers, msg);
    if (rc == 0) {
        fprintf(s->log, "node=%u peer links: listening on %s, %u members\n", config->id, listen,
                config->peer_count);
    }
    return rc;
}

static void server_start_handles(struct server *s) {
    uv_check_init(&s->loop, &s->check);
    s->check.data = s;
    uv_check_start(&s->check, server_on_check);
    uv_timer_init(&s->loop, &s->timer);
    s->timer.data = s;
    uv_signal_init(&s->loop, &s->sigint);
    s->sigint.data = s;
    uv_signal_start(&s->sigint, server_on_signal, SIGINT);
    uv_signal_init(&s->loop, &s->sigterm);
    s->sigterm.data = s;
    uv_signal_start(&s->sigterm, server_on_signal, SIGTERM);
}

int server_run(const struct server_options *options, struct errmsg *msg) {
    signal(SIGPIPE, SIG_IGN);
    struct server *s = base_calloc(1, sizeof(*s));
    s->log = stderr;
    s->sync_in_thread = options->sync_in_thread;
    s->sync_inline_ok = options->sync_inline_ok;
    if (options->log_path != NULL && (s->log = fopen(options->log_path, "a")) == NULL) {
        free(s);
        return errmsg_set(msg, ERR_IO, "cannot open log file %s", options->log_path);
    }
    int rc = disk_posix_init(&s->disk, options->dir, msg);
    if (rc != 0) goto out_log;
    struct node_config config = options->node;
    config.listen = options->listen;
    config.dir = options->dir;
    config.pid = (uint64_t)getpid();
    config.host_stats = server_host_stats;
    config.host_ctx = s;
    config.trace = server_trace;
    config.trace_ctx = s;
    s->id = config.id;
    if (config.seed == 0) {
        /* Election timeouts must differ between nodes and between runs. */
        config.seed = uv_hrtime() ^ ((uint64_t)getpid() << 32) ^ config.id;
    }
    rc = node_new(&config, &s->disk, server_now_ms(), &s->node, msg);
    if (rc != 0) goto out_disk;
    uv_loop_init(&s->loop);
    rc = server_listen(s, options->listen, msg);
    if (rc == 0) rc = server_start_peers(s, options, &config, msg);
    if (rc == 0) {
        server_start_handles(s);
        fprintf(s->log, "node=%u ready: listening on %s, data in %s, fsync=%s\n", config.id,
                options->listen, options->dir,
                config.fsync == NODE_FSYNC_ALWAYS     ? "always"
                : config.fsync == NODE_FSYNC_EVERYSEC ? "everysec"
                                                      : "never");
        fflush(s->log);
        uv_run(&s->loop, UV_RUN_DEFAULT);
        rc = s->fatal;
        if (rc != 0) *msg = s->fatal_msg;
    }
    server_shutdown(s);
    node_free(s->node);
out_disk:
    disk_posix_deinit(&s->disk);
out_log:
    if (s->log != stderr) fclose(s->log);
    free(s);
    return rc;
}
