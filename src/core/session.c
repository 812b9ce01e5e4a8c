/*
 * Session tokens and a connection's session state (session.h has the token's byte table).
 * Pure: no node, no clock; conn.c runs the SESSION command over it and engines.c feeds it
 * the observed index of every CP reply.
 */
#include "core/session.h"

#include <string.h>

#include "base/assert.h"
#include "base/crc32c.h"
#include "base/buf.h"

#define SESSION_CRC_OFFSET 15

STATIC_ASSERT(SESSION_CRC_OFFSET + 4 == SESSION_TOKEN_BYTES, "the CRC ends the token");

void session_token_encode(const struct session_token *t, char *out) {
    static const char digits[] = "0123456789abcdef";
    uint8_t raw[SESSION_TOKEN_BYTES];
    raw[0] = SESSION_TOKEN_VERSION;
    raw[1] = 0;
    base_store_u32le(raw + 2, t->cluster_id);
    base_store_u64le(raw + 6, t->cp_index);
    raw[14] = 0;
    base_store_u32le(raw + SESSION_CRC_OFFSET, crc32c_extend(0, raw, SESSION_CRC_OFFSET));
    for (size_t i = 0; i < SESSION_TOKEN_BYTES; i++) {
        out[2 * i] = digits[raw[i] >> 4];
        out[2 * i + 1] = digits[raw[i] & 15];
    }
    out[SESSION_TOKEN_HEX_BYTES] = '\0';
}

static int session_hex_digit(char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/* The token's bytes from its hex, or ERR_CORRUPT saying what is wrong. */
static int session_token_unhex(const char *text, size_t bytes, uint8_t *raw, struct errmsg *msg) {
    if (bytes != SESSION_TOKEN_HEX_BYTES)
        return errmsg_set(msg, ERR_CORRUPT, "a token has %d hex digits, this one %zu",
                          SESSION_TOKEN_HEX_BYTES, bytes);
    for (size_t i = 0; i < SESSION_TOKEN_BYTES; i++) {
        int hi = session_hex_digit(text[2 * i]);
        int lo = session_hex_digit(text[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return errmsg_set(msg, ERR_CORRUPT, "not a hex digit at offset %zu",
                              hi < 0 ? 2 * i : 2 * i + 1);
        raw[i] = (uint8_t)(hi << 4 | lo);
    }
    return 0;
}

int session_token_decode(const char *text, size_t bytes, uint32_t cluster_id,
                         struct session_token *out, struct errmsg *msg) {
    ASSERT(text != NULL || bytes == 0);
    ASSERT(out != NULL);
    uint8_t raw[SESSION_TOKEN_BYTES];
    int rc = session_token_unhex(text, bytes, raw, msg);
    if (rc != 0) return rc;
    uint32_t crc = crc32c_extend(0, raw, SESSION_CRC_OFFSET);
    if (crc != base_load_u32le(raw + SESSION_CRC_OFFSET))
        return errmsg_set(msg, ERR_CORRUPT, "its checksum does not match (mistyped or cut?)");
    if (raw[0] != SESSION_TOKEN_VERSION)
        return errmsg_set(msg, ERR_VERSION, "token version %u; this node reads version %u", raw[0],
                          SESSION_TOKEN_VERSION);
    if (raw[1] != 0 || raw[14] != 0)
        return errmsg_set(msg, ERR_CORRUPT, "reserved fields are set (flags %u, AP keys %u)",
                          raw[1], raw[14]);
    uint32_t from = base_load_u32le(raw + 2);
    if (from != cluster_id)
        return errmsg_set(msg, ERR_INVALID, "it is from cluster %08x, this node is in %08x", from,
                          cluster_id);
    out->cluster_id = from;
    out->cp_index = base_load_u64le(raw + 6);
    return 0;
}

uint32_t session_cluster_id(uint32_t configured, const struct node_peer *peers, uint32_t count) {
    if (configured != 0) return configured;
    /* The voters as configured, in id order whatever order the list gave: every node of a
     * cluster started from one peers list derives the same id. */
    uint32_t crc = 0;
    uint32_t last = 0;
    for (uint32_t n = 0; n < count; n++) {
        const struct node_peer *next = NULL;
        for (uint32_t i = 0; i < count; i++)
            if (peers[i].id > last && (next == NULL || peers[i].id < next->id)) next = &peers[i];
        if (next == NULL) break;
        last = next->id;
        uint8_t id[4];
        base_store_u32le(id, next->id);
        crc = crc32c_extend(crc, id, sizeof(id));
        crc = crc32c_extend(crc, next->addr, strnlen(next->addr, sizeof(next->addr)));
    }
    return crc != 0 ? crc : 1;
}

void session_reset(struct session *s) {
    memset(s, 0, sizeof(*s));
}

void session_observe(struct session *s, uint64_t index) {
    if (index > s->cp_seen) s->cp_seen = index;
    ASSERT(s->cp_seen >= index);
}

uint64_t session_token_index(const struct session *s) {
    /* A resumed session's token covers what it resumed from too: sessions chain. */
    return s->cp_seen > s->cp_floor ? s->cp_seen : s->cp_floor;
}

uint64_t session_wait_index(const struct session *s) {
    if (!s->resumed) return 0;
    return session_token_index(s);
}
