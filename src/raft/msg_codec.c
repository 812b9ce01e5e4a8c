/*
 * Raft message codec, version 1. All integers little-endian.
 *
 *   offset  bytes  field
 *   0       1      version (1)
 *   1       1      type (enum raft_msg_type, 1..10)
 *   2       1      flags: bit 0 reject, bit 1 transfer; other bits zero
 *   3       1      reserved, zero
 *   4       4      from (nonzero)          8   4  to (nonzero)
 *   12      8      term                    20  8  index
 *   28      8      log_term                36  8  commit
 *   44      8      hint_index              52  8  hint_term
 *   60      8      round                   68  8  sent_ms
 *   76      4      entry_count (<= RAFT_MSG_ENTRIES_MAX; APPEND only)
 *   80      ...    entry_count x { u64 term, u8 type, u32 data_bytes, data }
 *                  (entry i has index = index + 1 + i)
 *           4      config count (1..RAFT_NODES_MAX for INSTALL_SNAPSHOT, else 0)
 *           5 x n  { u32 id, u8 voter (0 or 1) }
 *           8      snapshot_bytes (INSTALL_SNAPSHOT only), then the bytes
 * Nothing may follow. A configuration entry's data is the "config count" part alone.
 */
#include "raft/msg_codec.h"

#include <string.h>

#include "base/assert.h"

#define RAFT_MSG_FLAG_REJECT 1u
#define RAFT_MSG_FLAG_TRANSFER 2u

STATIC_ASSERT(RAFT_MSG_HEADER_BYTES == 4 + 4 + 4 + 8 * 8 + 4, "header layout");

/* A bounds-checked reader: once it failed it stays failed. */
struct raft_reader {
    const uint8_t *p;
    size_t left;
    bool failed;
};

static const uint8_t *raft_reader_take(struct raft_reader *r, uint64_t bytes) {
    if (r->failed || bytes > r->left) {
        r->failed = true;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += bytes;
    r->left -= (size_t)bytes;
    return p;
}

static uint64_t raft_reader_u64(struct raft_reader *r) {
    const uint8_t *p = raft_reader_take(r, 8);
    return p ? base_load_u64le(p) : 0;
}

static uint32_t raft_reader_u32(struct raft_reader *r) {
    const uint8_t *p = raft_reader_take(r, 4);
    return p ? base_load_u32le(p) : 0;
}

static uint8_t raft_reader_u8(struct raft_reader *r) {
    const uint8_t *p = raft_reader_take(r, 1);
    return p ? p[0] : 0;
}

size_t raft_config_encode(const struct raft_config *config, uint8_t *out) {
    ASSERT(config->count <= RAFT_NODES_MAX);
    base_store_u32le(out, RAFT_CONFIG_MAGIC);
    base_store_u32le(out + 4, config->count);
    size_t n = 8;
    for (uint32_t i = 0; i < config->count; i++) {
        const struct raft_server *s = &config->servers[i];
        size_t len = strnlen(s->addr, RAFT_ADDR_BYTES_MAX - 1);
        base_store_u32le(out + n, s->id);
        out[n + 4] = (uint8_t)((s->voter ? 1 : 0) | (s->promote ? 2 : 0));
        out[n + 5] = (uint8_t)len;
        memcpy(out + n + 6, s->addr, len);
        n += 6 + len;
    }
    ASSERT(n <= RAFT_CONFIG_BYTES_MAX);
    return n;
}

/* One server of either format; its address, if any, must be printable text. */
static int raft_server_read(struct raft_reader *r, bool v2, struct raft_server *s) {
    memset(s, 0, sizeof(*s));
    s->id = raft_reader_u32(r);
    uint8_t flags = raft_reader_u8(r);
    if (r->failed || s->id == 0 || flags > (v2 ? 3 : 1)) return ERR_PROTOCOL;
    s->voter = (flags & 1) != 0;
    s->promote = (flags & 2) != 0;
    if (s->voter && s->promote) return ERR_PROTOCOL;
    if (!v2) return 0;
    uint8_t len = raft_reader_u8(r);
    const uint8_t *addr = len < RAFT_ADDR_BYTES_MAX ? raft_reader_take(r, len) : NULL;
    if (r->failed || (addr == NULL && len > 0)) return ERR_PROTOCOL;
    for (uint8_t i = 0; i < len; i++)
        if (addr[i] <= ' ' || addr[i] > '~') return ERR_PROTOCOL;
    if (len > 0) memcpy(s->addr, addr, len);
    return 0;
}

static int raft_config_read(struct raft_reader *r, struct raft_config *out) {
    memset(out, 0, sizeof(*out));
    uint32_t count = raft_reader_u32(r);
    bool v2 = count == RAFT_CONFIG_MAGIC;
    if (v2) count = raft_reader_u32(r);
    if (r->failed || count == 0 || count > RAFT_NODES_MAX) return ERR_PROTOCOL;
    for (uint32_t i = 0; i < count; i++) {
        struct raft_server s;
        if (raft_server_read(r, v2, &s) != 0) return ERR_PROTOCOL;
        if (raft_config_find(out, s.id) != NULL) return ERR_PROTOCOL; /* duplicate id */
        out->servers[i] = s;
        out->count = i + 1;
    }
    ASSERT(out->count == count);
    return 0;
}

int raft_config_decode(const uint8_t *bytes, size_t len, struct raft_config *out) {
    struct raft_reader r = {.p = bytes, .left = len, .failed = bytes == NULL};
    int rc = raft_config_read(&r, out);
    if (rc != 0) return rc;
    return r.left == 0 ? 0 : ERR_PROTOCOL;
}

const struct raft_server *raft_config_find(const struct raft_config *config, uint32_t id) {
    for (uint32_t i = 0; i < config->count; i++)
        if (config->servers[i].id == id) return &config->servers[i];
    return NULL;
}

uint32_t raft_config_voter_count(const struct raft_config *config) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < config->count; i++) n += config->servers[i].voter ? 1 : 0;
    return n;
}

static int raft_msg_encode_check(const struct raft_message *m) {
    if (m->type < RAFT_MSG_APPEND || m->type > RAFT_MSG_TYPE_LAST) return ERR_INVALID;
    if (m->from == 0 || m->to == 0) return ERR_INVALID;
    if (m->entry_count > RAFT_MSG_ENTRIES_MAX) return ERR_LIMIT;
    if (m->entry_count > 0 && (m->type != RAFT_MSG_APPEND || m->entries == NULL))
        return ERR_INVALID;
    for (uint32_t i = 0; i < m->entry_count; i++)
        if (m->entries[i].data_bytes > RAFT_ENTRY_BYTES_MAX) return ERR_LIMIT;
    if (m->type == RAFT_MSG_INSTALL_SNAPSHOT) {
        if (m->config.count == 0 || m->config.count > RAFT_NODES_MAX) return ERR_INVALID;
        if (m->snapshot_bytes > RAFT_SNAPSHOT_BYTES_MAX) return ERR_LIMIT;
        if (m->snapshot_bytes > 0 && m->snapshot_data == NULL) return ERR_INVALID;
    } else if (m->snapshot_bytes != 0) {
        return ERR_INVALID;
    }
    return 0;
}

static void raft_msg_encode_header(const struct raft_message *m, struct buf *out) {
    buf_append_byte(out, RAFT_MSG_VERSION);
    buf_append_byte(out, m->type);
    uint8_t flags = (uint8_t)((m->reject ? RAFT_MSG_FLAG_REJECT : 0) |
                              (m->transfer ? RAFT_MSG_FLAG_TRANSFER : 0));
    buf_append_byte(out, flags);
    buf_append_byte(out, 0);
    buf_append_u32le(out, m->from);
    buf_append_u32le(out, m->to);
    uint64_t fields[] = {m->term,       m->index,     m->log_term, m->commit,
                         m->hint_index, m->hint_term, m->round,    m->sent_ms};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
        buf_append_u64le(out, fields[i]);
    buf_append_u32le(out, m->entry_count);
}

int raft_msg_encode(const struct raft_message *m, struct buf *out) {
    ASSERT(m != NULL && out != NULL);
    int rc = raft_msg_encode_check(m);
    if (rc != 0) return rc;
    size_t start = out->len;
    raft_msg_encode_header(m, out);
    ASSERT(out->len - start == RAFT_MSG_HEADER_BYTES);
    for (uint32_t i = 0; i < m->entry_count; i++) {
        const struct raft_entry *e = &m->entries[i];
        buf_append_u64le(out, e->term);
        buf_append_byte(out, e->type);
        buf_append_u32le(out, e->data_bytes);
        if (e->data_bytes > 0) buf_append(out, e->data, e->data_bytes);
    }
    if (m->type == RAFT_MSG_INSTALL_SNAPSHOT) {
        uint8_t config[RAFT_CONFIG_BYTES_MAX];
        buf_append(out, config, raft_config_encode(&m->config, config));
    } else {
        buf_append_u32le(out, 0);
    }
    buf_append_u64le(out, m->snapshot_bytes);
    if (m->snapshot_bytes > 0) buf_append(out, m->snapshot_data, (size_t)m->snapshot_bytes);
    return 0;
}

static int raft_msg_decode_header(struct raft_reader *r, struct raft_message *m) {
    uint8_t version = raft_reader_u8(r);
    if (r->failed) return ERR_PROTOCOL;
    if (version != RAFT_MSG_VERSION) return ERR_VERSION;
    m->type = raft_reader_u8(r);
    uint8_t flags = raft_reader_u8(r);
    uint8_t reserved = raft_reader_u8(r);
    m->from = raft_reader_u32(r);
    m->to = raft_reader_u32(r);
    uint64_t *fields[] = {&m->term,       &m->index,     &m->log_term, &m->commit,
                          &m->hint_index, &m->hint_term, &m->round,    &m->sent_ms};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) *fields[i] = raft_reader_u64(r);
    m->entry_count = raft_reader_u32(r);
    if (r->failed) return ERR_PROTOCOL;
    if (m->type < RAFT_MSG_APPEND || m->type > RAFT_MSG_TYPE_LAST) return ERR_PROTOCOL;
    if ((flags & ~(RAFT_MSG_FLAG_REJECT | RAFT_MSG_FLAG_TRANSFER)) != 0 || reserved != 0)
        return ERR_PROTOCOL;
    m->reject = (flags & RAFT_MSG_FLAG_REJECT) != 0;
    m->transfer = (flags & RAFT_MSG_FLAG_TRANSFER) != 0;
    if (m->from == 0 || m->to == 0 || m->from == m->to) return ERR_PROTOCOL;
    if (m->entry_count > RAFT_MSG_ENTRIES_MAX) return ERR_PROTOCOL;
    if (m->entry_count > 0 && m->type != RAFT_MSG_APPEND) return ERR_PROTOCOL;
    if (m->index > UINT64_MAX - RAFT_MSG_ENTRIES_MAX - 1) return ERR_PROTOCOL;
    return 0;
}

static int raft_msg_decode_entries(struct raft_reader *r, struct raft_message *m,
                                   struct raft_entry *entries) {
    for (uint32_t i = 0; i < m->entry_count; i++) {
        struct raft_entry *e = &entries[i];
        e->term = raft_reader_u64(r);
        e->index = m->index + 1 + i;
        e->type = raft_reader_u8(r);
        e->data_bytes = raft_reader_u32(r);
        if (r->failed) return ERR_PROTOCOL;
        if (e->type < RAFT_ENTRY_NORMAL || e->type > RAFT_ENTRY_CONFIG) return ERR_PROTOCOL;
        if (e->term == 0 || e->term > m->term) return ERR_PROTOCOL;
        if (e->data_bytes > RAFT_ENTRY_BYTES_MAX) return ERR_PROTOCOL;
        e->data = e->data_bytes > 0 ? raft_reader_take(r, e->data_bytes) : NULL;
        if (r->failed) return ERR_PROTOCOL;
        struct raft_config config;
        if (e->type == RAFT_ENTRY_CONFIG && raft_config_decode(e->data, e->data_bytes, &config))
            return ERR_PROTOCOL;
    }
    m->entries = m->entry_count > 0 ? entries : NULL;
    return 0;
}

static int raft_msg_decode_snapshot(struct raft_reader *r, struct raft_message *m) {
    if (m->type == RAFT_MSG_INSTALL_SNAPSHOT) {
        int rc = raft_config_read(r, &m->config);
        if (rc != 0) return rc;
    } else if (raft_reader_u32(r) != 0 || r->failed) {
        return ERR_PROTOCOL;
    }
    m->snapshot_bytes = raft_reader_u64(r);
    if (r->failed || m->snapshot_bytes > RAFT_SNAPSHOT_BYTES_MAX) return ERR_PROTOCOL;
    if (m->snapshot_bytes > 0 && m->type != RAFT_MSG_INSTALL_SNAPSHOT) return ERR_PROTOCOL;
    m->snapshot_data = m->snapshot_bytes > 0 ? raft_reader_take(r, m->snapshot_bytes) : NULL;
    return r->failed ? ERR_PROTOCOL : 0;
}

int raft_msg_decode(const uint8_t *bytes, size_t len, struct raft_message *out,
                    struct raft_entry *entries) {
    ASSERT(out != NULL && entries != NULL);
    memset(out, 0, sizeof(*out));
    struct raft_reader r = {.p = bytes, .left = len, .failed = bytes == NULL};
    int rc = raft_msg_decode_header(&r, out);
    if (rc == 0) rc = raft_msg_decode_entries(&r, out, entries);
    if (rc == 0) rc = raft_msg_decode_snapshot(&r, out);
    if (rc == 0 && r.left != 0) rc = ERR_PROTOCOL; /* trailing bytes */
    if (rc != 0) memset(out, 0, sizeof(*out));
    return rc;
}
