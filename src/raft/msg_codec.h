/*
 * Raft messages to and from bytes (version 1, little-endian). Peer framing, checksums and
 * snapshot streaming beyond RAFT_SNAPSHOT_BYTES_MAX are the transport's business. Decoding
 * validates every field: garbage yields ERR_PROTOCOL (ERR_VERSION for another version),
 * never a crash or an out-of-bounds read. Layout in msg_codec.c and docs/formats.md.
 */
#ifndef CAPKV_RAFT_MSG_CODEC_H
#define CAPKV_RAFT_MSG_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "raft/raft.h"

#define RAFT_MSG_VERSION 1
#define RAFT_MSG_HEADER_BYTES 80

/* Appends the encoding of m to out. m borrowed. ERR_LIMIT / ERR_INVALID when m breaks a
 * limit or is malformed (nothing appended then). */
int raft_msg_encode(const struct raft_message *m, struct buf *out);

/* Decodes bytes into *out. entries (caller-owned, room for RAFT_MSG_ENTRIES_MAX) receives
 * the entries; out->entries, entry data and out->snapshot_data point into bytes and
 * entries: valid while both are. */
int raft_msg_decode(const uint8_t *bytes, size_t len, struct raft_message *out,
                    struct raft_entry *entries);

#endif
