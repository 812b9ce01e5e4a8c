/*
 * Peer links over libuv TCP. Two kinds of link share struct peer_link:
 *   outgoing: one per other member, owned by its struct peer_out; sends HELLO first, then
 *             the core's payloads; reconnects after a drop with exponential backoff.
 *   incoming: accepted on the peer listener; anonymous until its first payload, which
 *             must be a HELLO naming a member other than this node.
 * Payloads from either kind go to on_message with the sender's id. Writes: new frames
 * append to `queued`; at most one uv_write (of `writing`) is in flight; when it completes
 * the buffers swap. Invariants: o->link == NULL or o->link->out == o; a closing link is
 * never written to or delivered from; every link is freed by its close callback.
 */
#include "net/peer.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/buf.h"
#include "proto/wire.h"

#define PEER_READ_BYTES (64 * 1024)
#define PEER_BACKLOG 64

struct peer_out;

struct peer_link {
    uv_tcp_t tcp; /* first: the handle's address is the link's */
    struct peer_set *set;
    struct peer_out *out; /* the member this outgoing link serves; NULL when incoming */
    uint32_t peer_id;     /* 0 on an incoming link until its HELLO */
    uv_connect_t connect_req;
    uv_write_t write_req;
    struct buf queued;  /* frames not yet handed to uv_write */
    struct buf writing; /* frames in the uv_write in flight */
    struct wire_decoder decoder;
    struct peer_link *next_incoming;
    bool connected;
    bool write_in_flight;
    bool closing;
};

struct peer_out {
    struct peer_set *set;
    uint32_t id;
    char addr[NODE_ADDR_BYTES_MAX];
    struct sockaddr_storage sockaddr;
    struct peer_link *link; /* connecting or connected; NULL while waiting to retry */
    uv_timer_t timer;       /* retry after backoff, or connect deadline */
    uint64_t backoff_ms;
    bool reported_down; /* log a link going down once, not every retry */
    bool retired;       /* no longer a member: its slot waits to be reused */
};

struct peer_set {
    uv_loop_t *loop;
    uint32_t self_id;
    uv_tcp_t listener;
    bool listener_open;
    struct peer_out outs[NODE_PEERS_MAX];
    uint32_t out_count;
    uint32_t member_ids[NODE_PEERS_MAX];
    uint32_t member_count;
    struct peer_link *incoming;
    uint32_t incoming_count;
    uint32_t links_open; /* allocated links, freed by their close callbacks */
    peer_message_fn *on_message;
    peer_log_fn *log;
    void *ctx;
    struct peer_stats stats;
    bool closing;
    char listen[NODE_ADDR_BYTES_MAX];
    uint8_t read_buf[PEER_READ_BYTES];
};

static void peer_logf(struct peer_set *set, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void peer_logf(struct peer_set *set, const char *fmt, ...) {
    char line[512];
    int n = snprintf(line, sizeof(line), "node=%u peer: ", set->self_id);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    set->log(set->ctx, line);
}

int peer_parse_addr(const char *text, struct sockaddr_storage *addr, struct errmsg *msg) {
    const char *colon = strrchr(text, ':');
    if (colon == NULL || colon[1] == '\0') {
        return errmsg_set(msg, ERR_CONFIG, "address '%s' is not HOST:PORT", text);
    }
    char host[128];
    size_t host_len = (size_t)(colon - text);
    if (host_len >= sizeof(host)) return errmsg_set(msg, ERR_CONFIG, "host too long");
    memcpy(host, text, host_len);
    host[host_len] = '\0';
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 1 || port > 65535) {
        return errmsg_set(msg, ERR_CONFIG, "bad port in address '%s'", text);
    }
    memset(addr, 0, sizeof(*addr));
    if (host[0] == '[' && host_len > 2 && host[host_len - 1] == ']') {
        host[host_len - 1] = '\0';
        if (uv_ip6_addr(host + 1, (int)port, (struct sockaddr_in6 *)addr) == 0) return 0;
    } else if (uv_ip4_addr(host, (int)port, (struct sockaddr_in *)addr) == 0) {
        return 0;
    }
    return errmsg_set(msg, ERR_CONFIG,
                      "address '%s' is not a numeric IP and port (e.g. 127.0.0.1:8001)", text);
}

static void peer_link_on_closed(uv_handle_t *handle) {
    struct peer_link *link = (struct peer_link *)handle;
    struct peer_set *set = link->set;
    ASSERT(link->closing);
    ASSERT(set->links_open > 0);
    buf_deinit(&link->queued);
    buf_deinit(&link->writing);
    wire_decoder_deinit(&link->decoder);
    free(link);
    set->links_open--;
}

static struct peer_link *peer_link_new(struct peer_set *set, struct peer_out *out) {
    struct peer_link *link = base_calloc(1, sizeof(*link));
    link->set = set;
    link->out = out;
    link->peer_id = out != NULL ? out->id : 0;
    buf_init(&link->queued);
    buf_init(&link->writing);
    wire_decoder_init(&link->decoder, WIRE_PAYLOAD_BYTES_MAX);
    uv_tcp_init(set->loop, &link->tcp);
    link->tcp.data = link; /* non-NULL: the server's shutdown walk must not take it for a client */
    set->links_open++;
    return link;
}

static void peer_out_schedule(struct peer_out *o);

/* Closes the link (idempotent); an outgoing link's member retries after its backoff. */
static void peer_link_close(struct peer_link *link, const char *why) {
    if (link->closing) return;
    struct peer_set *set = link->set;
    link->closing = true;
    if (link->out != NULL) {
        struct peer_out *o = link->out;
        ASSERT(o->link == link);
        o->link = NULL;
        if (!o->reported_down && !set->closing && !o->retired) {
            peer_logf(set, "link to %u (%s) down: %s; retrying every %d..%d ms", o->id, o->addr,
                      why, PEER_BACKOFF_MS_MIN, PEER_BACKOFF_MS_MAX);
        }
        o->reported_down = true;
        if (!set->closing && !o->retired) peer_out_schedule(o);
    } else {
        struct peer_link **p = &set->incoming;
        while (*p != link) p = &(*p)->next_incoming;
        *p = link->next_incoming;
        ASSERT(set->incoming_count > 0);
        set->incoming_count--;
        if (!set->closing && link->peer_id != 0) {
            peer_logf(set, "link from %u closed: %s", link->peer_id, why);
        }
    }
    uv_close((uv_handle_t *)&link->tcp, peer_link_on_closed);
}

static void peer_link_flush(struct peer_link *link);

static void peer_link_on_written(uv_write_t *req, int status) {
    struct peer_link *link = req->data;
    ASSERT(link->write_in_flight);
    link->write_in_flight = false;
    buf_clear(&link->writing);
    if (link->closing) return;
    if (status < 0) {
        peer_link_close(link, uv_strerror(status));
        return;
    }
    peer_link_flush(link);
}

/* Hands everything queued to one uv_write, unless one is in flight already. */
static void peer_link_flush(struct peer_link *link) {
    if (link->write_in_flight || link->closing || link->queued.len == 0) return;
    ASSERT(link->writing.len == 0);
    struct buf swap = link->writing;
    link->writing = link->queued;
    link->queued = swap;
    uv_buf_t b = uv_buf_init((char *)link->writing.data, (unsigned)link->writing.len);
    link->write_req.data = link;
    link->write_in_flight = true;
    int rc = uv_write(&link->write_req, (uv_stream_t *)&link->tcp, &b, 1, peer_link_on_written);
    if (rc != 0) {
        link->write_in_flight = false;
        buf_clear(&link->writing);
        peer_link_close(link, uv_strerror(rc));
    }
}

static bool peer_set_is_member(const struct peer_set *set, uint32_t id) {
    for (uint32_t i = 0; i < set->member_count; i++) {
        if (set->member_ids[i] == id) return true;
    }
    return false;
}

/* One payload from the link: the HELLO on an anonymous link, else a message for the core. */
static int peer_link_deliver(struct peer_link *link, const uint8_t *p, size_t n,
                             struct errmsg *msg) {
    struct peer_set *set = link->set;
    if (link->peer_id == 0) {
        uint32_t id = 0;
        int rc = wire_hello_decode(p, n, &id, msg);
        if (rc != 0) return rc;
        if (id == set->self_id || !peer_set_is_member(set, id)) {
            return errmsg_set(msg, ERR_PROTOCOL,
                              "HELLO from node %u, not another member of this cluster", id);
        }
        link->peer_id = id;
        peer_logf(set, "link from %u up", id);
        return 0;
    }
    if (n == 0 || p[0] == WIRE_KIND_HELLO) return 0; /* a repeated HELLO names no one new */
    set->stats.received++;
    set->on_message(set->ctx, link->peer_id, p, n);
    return 0;
}

static void peer_link_on_alloc(uv_handle_t *handle, size_t hint, uv_buf_t *b) {
    (void)hint;
    struct peer_link *link = (struct peer_link *)handle;
    *b = uv_buf_init((char *)link->set->read_buf, PEER_READ_BYTES);
}

static void peer_link_on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *b) {
    struct peer_link *link = (struct peer_link *)stream;
    if (nread == 0 || link->closing) return;
    if (nread < 0) {
        peer_link_close(link,
                        nread == UV_EOF ? "closed by the other end" : uv_strerror((int)nread));
        return;
    }
    struct wire_decoder *d = &link->decoder;
    int rc = wire_decoder_feed(d, (const uint8_t *)b->base, (size_t)nread);
    struct errmsg msg = d->error_msg;
    const uint8_t *p;
    size_t n;
    while (rc == 0 && !link->closing && link->set->closing == false) {
        rc = wire_decoder_next(d, &p, &n);
        if (rc <= 0) {
            msg = d->error_msg;
            break;
        }
        rc = peer_link_deliver(link, p, n, &msg);
    }
    if (rc < 0 && !link->closing) {
        struct peer_set *set = link->set;
        set->stats.links_closed_bad++;
        if (link->peer_id == 0)
            peer_logf(set, "closing a link from an unnamed peer: %s", msg.text);
        else
            peer_logf(set, "closing link %s %u: %s", link->out != NULL ? "to" : "from",
                      link->peer_id, msg.text);
        peer_link_close(link, msg.text);
    }
}

static void peer_out_on_timer(uv_timer_t *timer);

static void peer_out_on_connect(uv_connect_t *req, int status) {
    struct peer_link *link = req->data;
    if (link->closing) return;
    struct peer_out *o = link->out;
    ASSERT(o != NULL);
    ASSERT(o->link == link);
    if (status < 0) {
        peer_link_close(link, uv_strerror(status));
        return;
    }
    uv_timer_stop(&o->timer);
    link->connected = true;
    o->backoff_ms = PEER_BACKOFF_MS_MIN;
    if (o->reported_down) peer_logf(link->set, "link to %u (%s) up", o->id, o->addr);
    o->reported_down = false;
    uv_tcp_nodelay(&link->tcp, 1);
    uv_read_start((uv_stream_t *)&link->tcp, peer_link_on_alloc, peer_link_on_read);
    uint8_t hello[WIRE_HELLO_BYTES];
    wire_hello_encode(hello, link->set->self_id);
    wire_encode(&link->queued, hello, sizeof(hello));
    peer_link_flush(link);
}

static void peer_out_connect(struct peer_out *o) {
    ASSERT(o->link == NULL);
    struct peer_link *link = peer_link_new(o->set, o);
    o->link = link;
    uv_tcp_nodelay(&link->tcp, 1);
    link->connect_req.data = link;
    int rc = uv_tcp_connect(&link->connect_req, &link->tcp, (const struct sockaddr *)&o->sockaddr,
                            peer_out_on_connect);
    if (rc != 0) {
        peer_link_close(link, uv_strerror(rc));
        return;
    }
    uv_timer_start(&o->timer, peer_out_on_timer, PEER_CONNECT_TIMEOUT_MS, 0);
}

/* Waits out the backoff, then doubles it (up to the maximum) for the next failure. */
static void peer_out_schedule(struct peer_out *o) {
    ASSERT(o->link == NULL);
    ASSERT(o->backoff_ms >= PEER_BACKOFF_MS_MIN);
    uv_timer_start(&o->timer, peer_out_on_timer, o->backoff_ms, 0);
    o->backoff_ms *= 2;
    if (o->backoff_ms > PEER_BACKOFF_MS_MAX) o->backoff_ms = PEER_BACKOFF_MS_MAX;
}

static void peer_out_on_timer(uv_timer_t *timer) {
    struct peer_out *o = timer->data;
    if (o->set->closing || o->retired) return;
    if (o->link != NULL) {
        /* Still connecting at the deadline: give up on this attempt. */
        if (!o->link->connected) peer_link_close(o->link, "connect timed out");
        return;
    }
    peer_out_connect(o);
}

static void peer_set_on_connection(uv_stream_t *listener, int status) {
    struct peer_set *set = listener->data;
    if (status < 0 || set->closing) return;
    struct peer_link *link = peer_link_new(set, NULL);
    link->next_incoming = set->incoming;
    set->incoming = link;
    set->incoming_count++;
    if (uv_accept(listener, (uv_stream_t *)&link->tcp) != 0) {
        peer_link_close(link, "accept failed");
        return;
    }
    if (set->incoming_count > PEER_INCOMING_MAX) {
        peer_logf(set, "refusing a peer link: already %d", PEER_INCOMING_MAX);
        peer_link_close(link, "too many links");
        return;
    }
    link->connected = true;
    uv_tcp_nodelay(&link->tcp, 1);
    uv_read_start((uv_stream_t *)&link->tcp, peer_link_on_alloc, peer_link_on_read);
}

int peer_set_new(uv_loop_t *loop, const struct peer_set_options *options, struct peer_set **out,
                 struct errmsg *msg) {
    ASSERT(options->peer_count <= NODE_PEERS_MAX);
    ASSERT(options->on_message != NULL);
    ASSERT(options->log != NULL);
    struct sockaddr_storage listen_addr;
    int rc = peer_parse_addr(options->listen, &listen_addr, msg);
    if (rc != 0) return rc;
    struct peer_set *set = base_calloc(1, sizeof(*set));
    set->loop = loop;
    set->self_id = options->self_id;
    set->on_message = options->on_message;
    set->log = options->log;
    set->ctx = options->ctx;
    snprintf(set->listen, sizeof(set->listen), "%s", options->listen);
    for (uint32_t i = 0; i < options->peer_count; i++) {
        const struct node_peer *p = &options->peers[i];
        set->member_ids[set->member_count++] = p->id;
        if (p->id == options->self_id) continue;
        struct peer_out *o = &set->outs[set->out_count];
        rc = peer_parse_addr(p->addr, &o->sockaddr, msg);
        if (rc != 0) {
            free(set);
            return rc;
        }
        o->set = set;
        o->id = p->id;
        o->backoff_ms = PEER_BACKOFF_MS_MIN;
        snprintf(o->addr, sizeof(o->addr), "%s", p->addr);
        set->out_count++;
    }
    uv_tcp_init(loop, &set->listener);
    set->listener.data = set;
    set->listener_open = true;
    int uv_rc = uv_tcp_bind(&set->listener, (const struct sockaddr *)&listen_addr, 0);
    if (uv_rc == 0)
        uv_rc = uv_listen((uv_stream_t *)&set->listener, PEER_BACKLOG, peer_set_on_connection);
    for (uint32_t i = 0; i < set->out_count; i++) {
        uv_timer_init(loop, &set->outs[i].timer);
        set->outs[i].timer.data = &set->outs[i];
    }
    *out = set;
    if (uv_rc != 0) {
        return errmsg_set(msg, ERR_IO, "cannot listen for peers on %s: %s", options->listen,
                          uv_strerror(uv_rc));
    }
    for (uint32_t i = 0; i < set->out_count; i++) peer_out_connect(&set->outs[i]);
    return 0;
}

static struct peer_out *peer_set_out(struct peer_set *set, uint32_t id) {
    for (uint32_t i = 0; i < set->out_count; i++) {
        if (!set->outs[i].retired && set->outs[i].id == id) return &set->outs[i];
    }
    return NULL;
}

static void peer_out_retire(struct peer_out *o) {
    peer_logf(o->set, "link to %u (%s): no longer a member, closed", o->id, o->addr);
    o->retired = true;
    uv_timer_stop(&o->timer);
    if (o->link != NULL) peer_link_close(o->link, "no longer a member");
}

/* A slot for a new member: a retired one, else a fresh one. NULL when all are in use. */
static struct peer_out *peer_out_slot(struct peer_set *set) {
    for (uint32_t i = 0; i < set->out_count; i++)
        if (set->outs[i].retired) return &set->outs[i];
    if (set->out_count == NODE_PEERS_MAX) return NULL;
    struct peer_out *o = &set->outs[set->out_count++];
    uv_timer_init(set->loop, &o->timer);
    o->timer.data = o;
    return o;
}

static void peer_out_start(struct peer_set *set, const struct node_peer *m) {
    struct sockaddr_storage sa;
    struct errmsg msg;
    if (peer_parse_addr(m->addr, &sa, &msg) != 0) {
        peer_logf(set, "member %u: cannot link: %s", m->id, msg.text);
        return;
    }
    struct peer_out *o = peer_out_slot(set);
    if (o == NULL) return;
    o->set = set;
    o->id = m->id;
    o->sockaddr = sa;
    o->link = NULL;
    o->backoff_ms = PEER_BACKOFF_MS_MIN;
    o->reported_down = false;
    o->retired = false;
    snprintf(o->addr, sizeof(o->addr), "%s", m->addr);
    peer_logf(set, "link to %u (%s): new member", o->id, o->addr);
    peer_out_connect(o);
}

void peer_set_update(struct peer_set *set, const struct node_peer *members, size_t count) {
    if (set->closing) return;
    ASSERT(count <= NODE_PEERS_MAX);
    set->member_count = 0;
    for (size_t i = 0; i < count; i++) set->member_ids[set->member_count++] = members[i].id;
    for (uint32_t i = 0; i < set->out_count; i++) {
        struct peer_out *o = &set->outs[i];
        if (o->retired) continue;
        const struct node_peer *m = NULL;
        for (size_t k = 0; k < count && m == NULL; k++)
            if (members[k].id == o->id) m = &members[k];
        if (m == NULL || strcmp(m->addr, o->addr) != 0) peer_out_retire(o);
    }
    struct peer_link *in = set->incoming;
    while (in != NULL) {
        struct peer_link *next = in->next_incoming;
        if (in->peer_id != 0 && !peer_set_is_member(set, in->peer_id))
            peer_link_close(in, "no longer a member");
        in = next;
    }
    for (size_t i = 0; i < count; i++) {
        if (members[i].id != set->self_id && peer_set_out(set, members[i].id) == NULL)
            peer_out_start(set, &members[i]);
    }
}

void peer_set_send(struct peer_set *set, uint32_t to, const uint8_t *data, size_t bytes) {
    struct peer_out *o = peer_set_out(set, to);
    struct peer_link *link = o != NULL ? o->link : NULL;
    if (bytes > WIRE_PAYLOAD_BYTES_MAX) {
        set->stats.dropped++;
        /* Logged every time: each one is a message the protocol needed and will never
         * get through (the first of a run, then every 100th, to bound the log). */
        if (set->stats.dropped_too_big++ % 100 == 0)
            peer_logf(set,
                      "error: a payload of %zu bytes for node %u (kind %u.%u) is over the "
                      "frame limit of %u bytes and was not sent (%llu so far; INFO "
                      "peer_dropped_too_big)",
                      bytes, to, bytes > 0 ? data[0] : 0, bytes > 1 ? data[1] : 0,
                      (unsigned)WIRE_PAYLOAD_BYTES_MAX,
                      (unsigned long long)set->stats.dropped_too_big);
        return;
    }
    if (link == NULL || !link->connected || link->closing) {
        set->stats.dropped++;
        set->stats.dropped_down++;
        return;
    }
    size_t pending = link->queued.len + link->writing.len;
    if (pending > 0 && pending + WIRE_HEADER_BYTES + bytes > PEER_OUTPUT_BYTES_MAX) {
        set->stats.dropped++;
        set->stats.dropped_full++;
        return;
    }
    wire_encode(&link->queued, data, bytes);
    set->stats.sent++;
    peer_link_flush(link);
}

void peer_set_close(struct peer_set *set) {
    if (set->closing) return;
    set->closing = true;
    if (set->listener_open) uv_close((uv_handle_t *)&set->listener, NULL);
    for (uint32_t i = 0; i < set->out_count; i++) {
        struct peer_out *o = &set->outs[i];
        if (o->link != NULL) peer_link_close(o->link, "shutting down");
        uv_close((uv_handle_t *)&o->timer, NULL);
    }
    while (set->incoming != NULL) peer_link_close(set->incoming, "shutting down");
    ASSERT(set->incoming_count == 0);
}

void peer_set_free(struct peer_set *set) {
    if (set == NULL) return;
    ASSERT(set->closing);
    ASSERT(set->links_open == 0);
    free(set);
}

void peer_set_stats(const struct peer_set *set, struct peer_stats *out) {
    *out = set->stats;
}
