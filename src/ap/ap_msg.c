/* The AP peer payloads of ap_msg.h. */
#include "ap/ap_msg.h"

#include <string.h>

#include "base/assert.h"
#include "base/err.h"
#include "crdt/codec.h"
#include "engine/seen.h"

static void ap_msg_put_bytes(struct buf *out, struct ap_bytes b) {
    crdt_put_bytes(out, b.data, b.bytes);
}

static struct ap_bytes ap_msg_get_bytes(struct crdt_reader *r) {
    struct ap_bytes b;
    b.bytes = (size_t)crdt_get_count(r, r->left);
    b.data = crdt_get_bytes(r, b.bytes);
    return b;
}

static void ap_msg_encode_list(const struct ap_msg *m, struct buf *out) {
    crdt_put_varint(out, m->count);
    for (uint32_t i = 0; i < m->count; i++) {
        crdt_put_bytes(out, m->args[i].data, m->args[i].bytes);
        if (m->kind == AP_MSG_AE_KEYS) crdt_put_varint(out, m->digests[i]);
    }
}

void ap_msg_encode(const struct ap_msg *m, struct buf *out) {
    ASSERT(m->kind >= AP_MSG_PING && m->kind <= AP_MSG_KIND_MAX);
    buf_append_byte(out, (uint8_t)m->kind);
    switch (m->kind) {
    case AP_MSG_PING:
    case AP_MSG_PONG:
        crdt_put_varint(out, m->seq);
        return;
    case AP_MSG_AE_BUCKETS:
        crdt_put_varint(out, m->arc);
        crdt_put_varint(out, m->ring);
        crdt_put_varint(out, m->flags);
        if ((m->flags & AP_AE_SAME) != 0) return;
        for (uint32_t i = 0; i < AP_TREE_BUCKETS; i++) buf_append_u64le(out, m->buckets[i]);
        return;
    case AP_MSG_AE_KEYS:
        crdt_put_varint(out, m->arc);
        crdt_put_varint(out, m->ring);
        crdt_put_varint(out, m->bucket);
        crdt_put_varint(out, m->flags);
        ap_msg_encode_list(m, out);
        return;
    case AP_MSG_AE_PULL:
        ap_msg_encode_list(m, out);
        return;
    default:
        break;
    }
    crdt_put_varint(out, m->req);
    switch (m->kind) {
    case AP_MSG_PUT:
        crdt_put_varint(out, m->flags);
        crdt_put_varint(out, m->hint_for);
        ap_msg_put_bytes(out, m->key);
        ap_msg_put_bytes(out, m->object);
        return;
    case AP_MSG_PUT_ACK:
        buf_append_byte(out, m->status);
        crdt_put_varint(out, m->digest);
        return;
    case AP_MSG_GET:
        ap_msg_put_bytes(out, m->key);
        return;
    case AP_MSG_GET_REPLY:
        buf_append_byte(out, m->status);
        ap_msg_put_bytes(out, m->object);
        return;
    case AP_MSG_FORWARD:
        buf_append_byte(out, m->proto);
        buf_append_byte(out, m->level);
        buf_append_byte(out, m->w);
        buf_append_byte(out, m->r);
        ap_msg_encode_list(m, out);
        ap_msg_put_bytes(out, m->session);
        return;
    case AP_MSG_FORWARD_REPLY:
        ap_msg_put_bytes(out, m->reply);
        ap_msg_put_bytes(out, m->session);
        return;
    case AP_MSG_REAP_ASK:
    case AP_MSG_REAP:
        ap_msg_put_bytes(out, m->key);
        crdt_put_varint(out, m->digest);
        return;
    case AP_MSG_REAP_STATE:
        buf_append_byte(out, m->status);
        return;
    default:
        UNREACHABLE();
    }
}

static uint8_t ap_msg_get_u8(struct crdt_reader *r, uint8_t max) {
    const uint8_t *b = crdt_get_bytes(r, 1);
    if (b != NULL && *b > max) crdt_reader_fail(r);
    return b != NULL ? *b : 0;
}

/* FORWARD's arguments, AE_KEYS' keys and digests, AE_PULL's keys. */
static void ap_msg_decode_list(struct crdt_reader *r, struct ap_msg *m, uint32_t max) {
    m->count = (uint32_t)crdt_get_count(r, max);
    bool room = m->args != NULL && (m->kind != AP_MSG_AE_KEYS || m->digests != NULL);
    if (!room || (m->kind == AP_MSG_FORWARD && m->count == 0)) crdt_reader_fail(r);
    for (uint32_t i = 0; i < m->count && r->err == 0; i++) {
        struct ap_bytes b = ap_msg_get_bytes(r);
        m->args[i] = (struct resp_arg){.data = b.data, .bytes = b.bytes};
        if (m->kind == AP_MSG_AE_KEYS) m->digests[i] = crdt_get_varint(r);
    }
}

static void ap_msg_decode_ae(struct crdt_reader *r, struct ap_msg *m) {
    m->arc = (uint32_t)crdt_get_count(r, AP_RING_POINTS_MAX - 1);
    m->ring = crdt_get_varint(r);
    if (m->kind == AP_MSG_AE_KEYS) {
        m->bucket = (uint32_t)crdt_get_count(r, AP_TREE_BUCKETS - 1);
        m->flags = (uint32_t)crdt_get_count(r, AP_AE_TRUNCATED);
        ap_msg_decode_list(r, m, AP_MSG_KEYS_MAX);
        return;
    }
    m->flags = (uint32_t)crdt_get_count(r, AP_AE_BUCKETS_FLAGS_ALL);
    if ((m->flags & AP_AE_SAME) != 0) return;
    const uint8_t *b = crdt_get_bytes(r, AP_TREE_BUCKETS * 8);
    for (uint32_t i = 0; b != NULL && i < AP_TREE_BUCKETS; i++)
        m->buckets[i] = base_load_u64le(b + i * 8);
}

/* Sessions' keys: entries that parse (a FORWARD's, one at most). */
static void ap_msg_get_session(struct crdt_reader *r, struct ap_msg *m) {
    m->session = ap_msg_get_bytes(r);
    if (r->err != 0) return;
    struct seen_key k;
    size_t pos = 0;
    int rc;
    uint32_t count = 0;
    while ((rc = seen_next(m->session.data, m->session.bytes, &pos, &k)) == 1) count++;
    if (rc < 0 || (m->kind == AP_MSG_FORWARD && count > 1)) crdt_reader_fail(r);
}

static void ap_msg_decode_req(struct crdt_reader *r, struct ap_msg *m) {
    m->req = crdt_get_varint(r);
    switch (m->kind) {
    case AP_MSG_PUT:
        m->flags = (uint32_t)crdt_get_count(r, AP_PUT_FLAGS_ALL);
        m->hint_for = (uint32_t)crdt_get_count(r, UINT32_MAX);
        m->key = ap_msg_get_bytes(r);
        m->object = ap_msg_get_bytes(r);
        break;
    case AP_MSG_PUT_ACK:
        m->status = ap_msg_get_u8(r, AP_STATUS_MAX);
        m->digest = crdt_get_varint(r);
        break;
    case AP_MSG_GET:
        m->key = ap_msg_get_bytes(r);
        break;
    case AP_MSG_GET_REPLY:
        m->status = ap_msg_get_u8(r, AP_STATUS_MAX);
        m->object = ap_msg_get_bytes(r);
        break;
    case AP_MSG_FORWARD:
        m->proto = ap_msg_get_u8(r, 3);
        m->level = ap_msg_get_u8(r, UINT8_MAX);
        m->w = ap_msg_get_u8(r, KEYSPACE_QUORUM_ALL);
        m->r = ap_msg_get_u8(r, KEYSPACE_QUORUM_ALL);
        if (m->proto < 2) crdt_reader_fail(r);
        ap_msg_decode_list(r, m, AP_MSG_ARGS_MAX);
        ap_msg_get_session(r, m);
        break;
    case AP_MSG_FORWARD_REPLY:
        m->reply = ap_msg_get_bytes(r);
        ap_msg_get_session(r, m);
        break;
    case AP_MSG_REAP_ASK:
    case AP_MSG_REAP:
        m->key = ap_msg_get_bytes(r);
        m->digest = crdt_get_varint(r);
        break;
    case AP_MSG_REAP_STATE:
        m->status = ap_msg_get_u8(r, AP_STATUS_MAX);
        break;
    default:
        UNREACHABLE();
    }
}

int ap_msg_decode(const uint8_t *p, size_t bytes, struct ap_msg *m) {
    struct resp_arg *args = m->args;
    uint64_t *digests = m->digests;
    memset(m, 0, sizeof(*m));
    m->args = args;
    m->digests = digests;
    struct crdt_reader r;
    crdt_reader_init(&r, p, bytes);
    uint8_t kind = ap_msg_get_u8(&r, AP_MSG_KIND_MAX);
    if (r.err == 0 && kind < AP_MSG_PING) crdt_reader_fail(&r);
    m->kind = (enum ap_msg_kind)kind;
    if (r.err != 0) return ERR_CORRUPT;
    switch (m->kind) {
    case AP_MSG_PING:
    case AP_MSG_PONG:
        m->seq = crdt_get_varint(&r);
        break;
    case AP_MSG_AE_BUCKETS:
    case AP_MSG_AE_KEYS:
        ap_msg_decode_ae(&r, m);
        break;
    case AP_MSG_AE_PULL:
        ap_msg_decode_list(&r, m, AP_MSG_KEYS_MAX);
        break;
    default:
        ap_msg_decode_req(&r, m);
        break;
    }
    if (r.err == 0 && r.left != 0) crdt_reader_fail(&r); /* trailing bytes */
    return r.err != 0 ? ERR_CORRUPT : 0;
}
