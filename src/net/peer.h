/*
 * Peer links: the shell's half of the peer protocol. One listener accepts links from the
 * other members; one outgoing TCP link per other member carries this node's messages to
 * it (connect, HELLO, reconnect with backoff PEER_BACKOFF_MS_MIN..MAX when it drops).
 * Every frame's payload that arrives becomes one call of on_message; payloads the core
 * wants sent are framed (src/proto/wire.c) and written on the outgoing link, or dropped
 * and counted when that link is down or backed up: Raft tolerates loss, memory must not
 * grow without bound. A bad frame, or a HELLO from an id that is not a member, closes the
 * link with a log line; it never stops the node.
 */
#ifndef CAPKV_NET_PEER_H
#define CAPKV_NET_PEER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "base/err.h"
#include "core/node.h"

#define PEER_BACKOFF_MS_MIN 50
#define PEER_BACKOFF_MS_MAX 1000
#define PEER_CONNECT_TIMEOUT_MS 1000
/* A link with more unsent bytes than this drops new payloads (one payload always fits). */
#define PEER_OUTPUT_BYTES_MAX (32u * 1024 * 1024)
#define PEER_INCOMING_MAX 64 /* accepted links at once; more are closed at once */

/* data is borrowed for the call. */
typedef void peer_message_fn(void *ctx, uint32_t peer_id, const uint8_t *data, size_t bytes);
typedef void peer_log_fn(void *ctx, const char *line);

struct peer_set_options {
    uint32_t self_id;
    const struct node_peer *peers; /* every member, self included; copied */
    uint32_t peer_count;
    const char *listen; /* HOST:PORT for incoming links; borrowed during init */
    peer_message_fn *on_message;
    peer_log_fn *log;
    void *ctx;
};

struct peer_set;

/* Starts listening and connecting on loop. On a bad address returns the error with *out
 * NULL and nothing started; when the port cannot be bound returns the error with *out set,
 * to be closed and freed like a running set. */
int peer_set_new(uv_loop_t *loop, const struct peer_set_options *options, struct peer_set **out,
                 struct errmsg *msg);
/* The members changed (every member, self included; copied): links to servers no longer
 * members close, new members get links, a changed address reconnects. */
void peer_set_update(struct peer_set *set, const struct node_peer *members, size_t count);
/* Frames and queues payload for member `to` (copied); drops it when the link is down or
 * its queue is full (the sender's protocol retries), and refuses one over the frame limit
 * with a log line (it could never be sent: a bug or a limit to raise, never silent). */
void peer_set_send(struct peer_set *set, uint32_t to, const uint8_t *data, size_t bytes);
/* Closes every handle; the loop must then run until they are closed, then peer_set_free. */
void peer_set_close(struct peer_set *set);
void peer_set_free(struct peer_set *set);

/* Counters, for logs and tests. */
struct peer_stats {
    uint64_t sent;
    uint64_t dropped;         /* all three below */
    uint64_t dropped_down;    /* no connected link to the member */
    uint64_t dropped_full;    /* its output queue was at PEER_OUTPUT_BYTES_MAX */
    uint64_t dropped_too_big; /* over WIRE_PAYLOAD_BYTES_MAX: logged */
    uint64_t received;
    uint64_t links_closed_bad;
};
void peer_set_stats(const struct peer_set *set, struct peer_stats *out);

/* Parses "HOST:PORT" or "[V6]:PORT" (numeric) into addr. */
int peer_parse_addr(const char *text, struct sockaddr_storage *addr, struct errmsg *msg);

#endif
