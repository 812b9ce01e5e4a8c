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
#include "base/util.h"

#define SESSION_HEADER_BYTES 15 /* up to the AP key entries */

STATIC_ASSERT(SESSION_HEADER_BYTES + 4 == SESSION_TOKEN_BYTES_MIN, "a token without AP keys");

void session_token_encode(const struct session_token *t, const struct seen_map *ap,
                          struct buf *out) {
    ASSERT(ap->count <= SEEN_KEYS_MAX && !ap->full);
    struct buf raw;
    buf_init(&raw);
    buf_append_byte(&raw, SESSION_TOKEN_VERSION);
    buf_append_byte(&raw, 0);
    buf_append_u32le(&raw, t->cluster_id);
    buf_append_u64le(&raw, t->cp_index);
    buf_append_byte(&raw, (uint8_t)ap->count);
    seen_map_encode(ap, &raw);
    buf_append_u32le(&raw, crc32c_extend(0, raw.data, raw.len));
    buf_reserve(out, 2 * raw.len);
    util_hex_encode(raw.data, raw.len, (char *)out->data + out->len);
    out->len += 2 * raw.len;
    buf_deinit(&raw);
}

/* The token's bytes from its hex (into raw), or ERR_CORRUPT saying what is wrong. */
static int session_token_unhex(const char *text, size_t bytes, struct buf *raw,
                               struct errmsg *msg) {
    if (bytes % 2 != 0 || bytes < 2 * SESSION_TOKEN_BYTES_MIN ||
        bytes > 2 * SESSION_TOKEN_BYTES_MAX)
        return errmsg_set(msg, ERR_CORRUPT,
                          "a token is an even number of hex digits, at least %d and at most %d; "
                          "this one has %zu",
                          2 * SESSION_TOKEN_BYTES_MIN, 2 * SESSION_TOKEN_BYTES_MAX, bytes);
    for (size_t i = 0; i < bytes; i += 2) {
        int hi = util_hex_digit(text[i]);
        int lo = util_hex_digit(text[i + 1]);
        if (hi < 0 || lo < 0)
            return errmsg_set(msg, ERR_CORRUPT, "not a hex digit at offset %zu",
                              hi < 0 ? i : i + 1);
        buf_append_byte(raw, (uint8_t)(hi << 4 | lo));
    }
    return 0;
}

/* The fields of a token whose bytes (raw) passed the checksum. */
static int session_token_fields(const struct buf *raw, uint32_t cluster_id,
                                struct session_token *out, struct seen_map *ap,
                                struct errmsg *msg) {
    const uint8_t *p = raw->data;
    if (p[0] != SESSION_TOKEN_VERSION && p[0] != 1)
        return errmsg_set(msg, ERR_VERSION, "token version %u; this node reads versions 1 and %u",
                          p[0], SESSION_TOKEN_VERSION);
    if (p[1] != 0 || (p[0] == 1 && p[14] != 0))
        return errmsg_set(msg, ERR_CORRUPT, "reserved fields are set (flags %u, AP keys %u)", p[1],
                          p[14]);
    uint32_t from = base_load_u32le(p + 2);
    if (from != cluster_id)
        return errmsg_set(msg, ERR_INVALID, "it is from cluster %08x, this node is in %08x", from,
                          cluster_id);
    size_t list_bytes = raw->len - SESSION_TOKEN_BYTES_MIN;
    const uint8_t *list = p + SESSION_HEADER_BYTES;
    struct seen_key k;
    size_t pos = 0;
    uint32_t count = 0;
    int rc;
    uint64_t last = 0;
    while ((rc = seen_next(list, list_bytes, &pos, &k)) == 1 && (count == 0 || k.hash > last)) {
        last = k.hash;
        count++;
    }
    if (rc != 0 || count != p[14] || count > SEEN_KEYS_MAX ||
        seen_map_add_list(ap, list, list_bytes) != 1)
        return errmsg_set(msg, ERR_CORRUPT, "its AP key entries are malformed");
    out->cluster_id = from;
    out->cp_index = base_load_u64le(p + 6);
    return 0;
}

int session_token_decode(const char *text, size_t bytes, uint32_t cluster_id,
                         struct session_token *out, struct seen_map *ap, struct errmsg *msg) {
    ASSERT(text != NULL || bytes == 0);
    ASSERT(out != NULL && ap != NULL && ap->count == 0);
    struct buf raw;
    buf_init(&raw);
    int rc = session_token_unhex(text, bytes, &raw, msg);
    if (rc == 0) {
        size_t crc_at = raw.len - 4;
        if (crc32c_extend(0, raw.data, crc_at) != base_load_u32le(raw.data + crc_at))
            rc = errmsg_set(msg, ERR_CORRUPT, "its checksum does not match (mistyped or cut?)");
        else
            rc = session_token_fields(&raw, cluster_id, out, ap, msg);
    }
    buf_deinit(&raw);
    if (rc != 0) seen_map_deinit(ap);
    return rc;
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
    seen_map_deinit(&s->ap);
    buf_deinit(&s->ap_floor);
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

void session_observe_ap(struct session *s, const uint8_t *seen, size_t bytes) {
    if (bytes == 0) return;
    /* A reply names the keys it reflects; past SEEN_KEYS_MAX the map is full (SESSION
     * TOKEN says so) and what a resumed session waits for stays what it was. */
    (void)seen_map_add_list(&s->ap, seen, bytes);
    s->ap_floor_stale = true;
}

bool session_resume_ap(struct session *s, const struct seen_map *token) {
    struct seen_map joined;
    seen_map_init(&joined);
    bool ok = true;
    for (uint32_t i = 0; i < s->ap.count && ok; i++) ok = seen_map_add(&joined, &s->ap.keys[i]);
    for (uint32_t i = 0; i < token->count && ok; i++) ok = seen_map_add(&joined, &token->keys[i]);
    if (!ok) {
        seen_map_deinit(&joined);
        return false;
    }
    joined.full = s->ap.full;
    seen_map_deinit(&s->ap);
    s->ap = joined;
    s->ap_floor_stale = true;
    return true;
}

const uint8_t *session_ap_floor(struct session *s, size_t *bytes) {
    *bytes = 0;
    if (!s->resumed || s->ap.count == 0) return NULL;
    if (s->ap_floor_stale) {
        buf_clear(&s->ap_floor);
        seen_map_encode(&s->ap, &s->ap_floor);
        s->ap_floor_stale = false;
    }
    *bytes = s->ap_floor.len;
    return s->ap_floor.data;
}
