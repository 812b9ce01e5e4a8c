/*
 * The peer protocol's framing: every message between nodes travels as one frame (a
 * versioned, length-prefixed, checksummed envelope around an opaque payload). The byte
 * layout is at the top of wire.c and in docs/formats.md. The decoder is incremental and,
 * like hiredis's reader, stays failed after its first error: a link that sent one bad
 * frame is closed, never resynchronised, and never crashes the node.
 */
#ifndef CAPKV_PROTO_WIRE_H
#define CAPKV_PROTO_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"

#define WIRE_MAGIC_0 'C'
#define WIRE_MAGIC_1 'K'
#define WIRE_VERSION 1
#define WIRE_HEADER_BYTES 12
/* A snapshot chunk or a batch of entries fits with room to spare. */
#define WIRE_PAYLOAD_BYTES_MAX (64u * 1024 * 1024 + 64u * 1024)
/* Most undecoded bytes a decoder holds beyond one whole frame: callers drain it with
 * wire_decoder_next after every feed, so only one socket read can pile up. */
#define WIRE_FEED_BYTES_MAX (1024u * 1024)

/* The first payload on every link names the sender. Its first byte, 0, is reserved for
 * it; every other payload starts with its engine's id (src/engine/engine.h), from 1. */
#define WIRE_KIND_HELLO 0
#define WIRE_CLUSTER_PROTOCOL_VERSION 2 /* 2: payloads start with their engine (engine.h) */
#define WIRE_HELLO_BYTES 8

struct wire_decoder {
    struct buf in;              /* received bytes not yet returned as payloads */
    size_t consumed_pending;    /* bytes of the last payload returned, dropped on next call */
    uint32_t payload_bytes_max; /* at most WIRE_PAYLOAD_BYTES_MAX */
    int error;                  /* 0, or the first error; sticky */
    struct errmsg error_msg;
};

void wire_decoder_init(struct wire_decoder *d, uint32_t payload_bytes_max);
void wire_decoder_deinit(struct wire_decoder *d);
/* Copies data[0..bytes) in. Returns 0, or the decoder's (sticky) error: ERR_PROTOCOL for a
 * bad header, ERR_CORRUPT for a checksum mismatch, ERR_LIMIT for a frame over the limit or
 * input piling up (more than one frame plus WIRE_FEED_BYTES_MAX undrained). */
int wire_decoder_feed(struct wire_decoder *d, const uint8_t *data, size_t bytes);
/* Returns 1 with the next whole payload (borrowed from d, valid until the next call on d),
 * 0 when more bytes are needed, or the sticky error. */
int wire_decoder_next(struct wire_decoder *d, const uint8_t **payload, size_t *bytes);

/* Writes the frame header for payload[0..bytes) (bytes <= WIRE_PAYLOAD_BYTES_MAX). */
void wire_encode_header(uint8_t out[WIRE_HEADER_BYTES], const uint8_t *payload, size_t bytes);
/* Appends one whole frame (header, then a copy of the payload) to out. */
void wire_encode(struct buf *out, const uint8_t *payload, size_t bytes);

/* The HELLO payload: kind 0, cluster protocol version, reserved 0 (2 bytes), node id. */
void wire_hello_encode(uint8_t out[WIRE_HELLO_BYTES], uint32_t node_id);
/* Validates a HELLO payload; msg (may be NULL) says what is wrong. */
int wire_hello_decode(const uint8_t *payload, size_t bytes, uint32_t *node_id, struct errmsg *msg);

#endif
