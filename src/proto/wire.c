/*
 * Peer frames. All integers little-endian; the CRC is CRC-32C (Castagnoli), initial 0.
 *
 *   offset size field
 *        0    2 magic "CK" (0x43 0x4B)
 *        2    1 version, 1 (anything else: the link is closed)
 *        3    1 flags, 0 (reserved; non-zero: the link is closed)
 *        4    4 payload bytes n, at most WIRE_PAYLOAD_BYTES_MAX (64 MiB + 64 KiB)
 *        8    4 CRC-32C of the payload
 *       12    n payload; its first byte is 0 for HELLO, else the engine it belongs to
 *                 (src/engine/engine.h), followed by that engine's bytes
 *
 * HELLO payload (kind 0), the first frame a connecting node sends on every link:
 *
 *        0    1 kind, 0
 *        1    1 cluster protocol version, 2 (1: the release before engines, whose payloads
 *                 began with their CP kind; a node refuses a link of another version)
 *        2    2 reserved, 0
 *        4    4 sender's node id (1..)
 *
 * The header is checked as soon as its 12 bytes arrive, so an impossible length is refused
 * before any of it is buffered. Errors are sticky: nothing after a bad frame is trusted.
 */
#include "proto/wire.h"

#include <string.h>

#include "base/assert.h"
#include "base/crc32c.h"

STATIC_ASSERT(WIRE_PAYLOAD_BYTES_MAX <= UINT32_MAX - WIRE_HEADER_BYTES, "length fits a u32");

void wire_decoder_init(struct wire_decoder *d, uint32_t payload_bytes_max) {
    ASSERT(payload_bytes_max > 0);
    ASSERT(payload_bytes_max <= WIRE_PAYLOAD_BYTES_MAX);
    memset(d, 0, sizeof(*d));
    buf_init(&d->in);
    d->payload_bytes_max = payload_bytes_max;
}

void wire_decoder_deinit(struct wire_decoder *d) {
    buf_deinit(&d->in);
}

static int wire_decoder_fail(struct wire_decoder *d, int code, const char *text, uint32_t value) {
    ASSERT(code < 0);
    ASSERT(d->error == 0);
    d->error = errmsg_set(&d->error_msg, code, "%s (%u)", text, value);
    return d->error;
}

/* Checks the header at the head of the input, if it has arrived. */
static int wire_decoder_check_header(struct wire_decoder *d) {
    if (buf_pending(&d->in) < WIRE_HEADER_BYTES) return 0;
    const uint8_t *h = buf_head(&d->in);
    if (h[0] != WIRE_MAGIC_0 || h[1] != WIRE_MAGIC_1) {
        return wire_decoder_fail(d, ERR_PROTOCOL, "bad frame magic, not a capkv peer",
                                 (uint32_t)(h[0] << 8 | h[1]));
    }
    if (h[2] != WIRE_VERSION) {
        return wire_decoder_fail(d, ERR_PROTOCOL, "unsupported frame version", h[2]);
    }
    if (h[3] != 0) return wire_decoder_fail(d, ERR_PROTOCOL, "unknown frame flags", h[3]);
    uint32_t n = base_load_u32le(h + 4);
    if (n > d->payload_bytes_max) {
        return wire_decoder_fail(d, ERR_LIMIT, "frame payload over the limit", n);
    }
    return 0;
}

static void wire_decoder_drop_returned(struct wire_decoder *d) {
    if (d->consumed_pending == 0) return;
    buf_consume(&d->in, d->consumed_pending);
    d->consumed_pending = 0;
}

int wire_decoder_feed(struct wire_decoder *d, const uint8_t *data, size_t bytes) {
    if (d->error != 0) return d->error;
    wire_decoder_drop_returned(d);
    size_t held_max = WIRE_HEADER_BYTES + (size_t)d->payload_bytes_max + WIRE_FEED_BYTES_MAX;
    if (bytes > held_max - buf_pending(&d->in)) {
        return wire_decoder_fail(d, ERR_LIMIT, "undecoded peer input over the limit",
                                 (uint32_t)held_max);
    }
    /* Compact before growing so a long-lived link does not keep consumed bytes around. */
    if (d->in.read_pos > 0 && d->in.read_pos >= buf_pending(&d->in)) {
        size_t pending = buf_pending(&d->in);
        memmove(d->in.data, buf_head(&d->in), pending);
        d->in.read_pos = 0;
        d->in.len = pending;
    }
    buf_append(&d->in, data, bytes);
    return wire_decoder_check_header(d);
}

int wire_decoder_next(struct wire_decoder *d, const uint8_t **payload, size_t *bytes) {
    if (d->error != 0) return d->error;
    wire_decoder_drop_returned(d);
    int rc = wire_decoder_check_header(d);
    if (rc != 0) return rc;
    size_t pending = buf_pending(&d->in);
    if (pending < WIRE_HEADER_BYTES) return 0;
    const uint8_t *h = buf_head(&d->in);
    uint32_t n = base_load_u32le(h + 4);
    ASSERT(n <= d->payload_bytes_max);
    if (pending - WIRE_HEADER_BYTES < n) return 0;
    uint32_t crc = crc32c_extend(0, h + WIRE_HEADER_BYTES, n);
    if (crc != base_load_u32le(h + 8)) {
        return wire_decoder_fail(d, ERR_CORRUPT, "frame checksum mismatch, payload bytes", n);
    }
    *payload = h + WIRE_HEADER_BYTES;
    *bytes = n;
    d->consumed_pending = WIRE_HEADER_BYTES + (size_t)n;
    ASSERT(d->consumed_pending <= pending);
    return 1;
}

void wire_encode_header(uint8_t out[WIRE_HEADER_BYTES], const uint8_t *payload, size_t bytes) {
    ASSERT(bytes <= WIRE_PAYLOAD_BYTES_MAX);
    ASSERT(payload != NULL || bytes == 0);
    out[0] = WIRE_MAGIC_0;
    out[1] = WIRE_MAGIC_1;
    out[2] = WIRE_VERSION;
    out[3] = 0;
    base_store_u32le(out + 4, (uint32_t)bytes);
    base_store_u32le(out + 8, bytes == 0 ? 0 : crc32c_extend(0, payload, bytes));
}

void wire_encode(struct buf *out, const uint8_t *payload, size_t bytes) {
    uint8_t header[WIRE_HEADER_BYTES];
    wire_encode_header(header, payload, bytes);
    size_t before = out->len;
    buf_reserve(out, sizeof(header) + bytes);
    buf_append(out, header, sizeof(header));
    if (bytes > 0) buf_append(out, payload, bytes);
    ASSERT(out->len == before + WIRE_HEADER_BYTES + bytes);
}

void wire_hello_encode(uint8_t out[WIRE_HELLO_BYTES], uint32_t node_id) {
    ASSERT(node_id != 0);
    out[0] = WIRE_KIND_HELLO;
    out[1] = WIRE_CLUSTER_PROTOCOL_VERSION;
    out[2] = 0;
    out[3] = 0;
    base_store_u32le(out + 4, node_id);
}

int wire_hello_decode(const uint8_t *payload, size_t bytes, uint32_t *node_id, struct errmsg *msg) {
    if (bytes == 0 || payload[0] != WIRE_KIND_HELLO) {
        return errmsg_set(msg, ERR_PROTOCOL, "first frame on a peer link is not a HELLO");
    }
    if (bytes != WIRE_HELLO_BYTES) {
        return errmsg_set(msg, ERR_PROTOCOL, "HELLO of %zu bytes, expected %d", bytes,
                          WIRE_HELLO_BYTES);
    }
    if (payload[1] != WIRE_CLUSTER_PROTOCOL_VERSION) {
        return errmsg_set(msg, ERR_VERSION, "peer speaks cluster protocol %u, this node %d",
                          payload[1], WIRE_CLUSTER_PROTOCOL_VERSION);
    }
    if (payload[2] != 0 || payload[3] != 0) {
        return errmsg_set(msg, ERR_PROTOCOL, "HELLO with non-zero reserved bytes");
    }
    uint32_t id = base_load_u32le(payload + 4);
    if (id == 0) return errmsg_set(msg, ERR_PROTOCOL, "HELLO with node id 0");
    *node_id = id;
    return 0;
}
