/*
 * Encoding, validation and application of ops (see op.h for the format). Replay must be
 * total: an op meeting a key of another type replaces it, because in a fuzzy snapshot a
 * later op in the same log suffix will have fixed the type (op.h explains why).
 */
#include "cmd/op.h"

#include <stdlib.h>
#include <string.h>

#include "base/assert.h"

#define OP_ELEMENTS_MAX (1u << 30)

static void op_put_key(struct buf *out, enum op_kind kind, const uint8_t *key, size_t bytes) {
    ASSERT(bytes <= OP_KEY_BYTES_MAX);
    buf_append_byte(out, (uint8_t)kind);
    buf_append_u32le(out, (uint32_t)bytes);
    buf_append(out, key, bytes);
}

void op_put_set(struct buf *out, const uint8_t *key, size_t key_bytes, const uint8_t *value,
                size_t value_bytes, uint64_t expire_ms) {
    op_put_key(out, OP_SET, key, key_bytes);
    buf_append_u32le(out, (uint32_t)value_bytes);
    buf_append(out, value, value_bytes);
    buf_append_u64le(out, expire_ms);
}

void op_put_setrange(struct buf *out, const uint8_t *key, size_t key_bytes, uint64_t offset,
                     const uint8_t *bytes, size_t len, uint64_t expire_ms) {
    op_put_key(out, OP_SETRANGE, key, key_bytes);
    buf_append_u64le(out, offset);
    buf_append_u32le(out, (uint32_t)len);
    buf_append(out, bytes, len);
    buf_append_u64le(out, expire_ms);
}

void op_put_del(struct buf *out, const uint8_t *key, size_t key_bytes) {
    op_put_key(out, OP_DEL, key, key_bytes);
}

void op_put_expire(struct buf *out, const uint8_t *key, size_t key_bytes, uint64_t expire_ms) {
    op_put_key(out, OP_EXPIRE, key, key_bytes);
    buf_append_u64le(out, expire_ms);
}

void op_put_flushall(struct buf *out) {
    op_put_key(out, OP_FLUSHALL, NULL, 0);
}

size_t op_begin_list(struct buf *out, enum op_kind kind, const uint8_t *key, size_t key_bytes) {
    ASSERT(kind == OP_SADD || kind == OP_SREM || kind == OP_HSET || kind == OP_HDEL);
    op_put_key(out, kind, key, key_bytes);
    size_t pos = out->len;
    buf_append_u32le(out, 0);
    return pos;
}

void op_put_element(struct buf *out, const uint8_t *data, size_t bytes) {
    buf_append_u32le(out, (uint32_t)bytes);
    buf_append(out, data, bytes);
}

void op_end_list(struct buf *out, size_t count_pos, uint32_t count) {
    ASSERT(count_pos + 4 <= out->len);
    base_store_u32le(out->data + count_pos, count);
}

/* A bounds-checked reader over one batch. */
struct op_reader {
    const uint8_t *data;
    size_t bytes;
    size_t pos;
    bool bad;
};

static bool op_reader_take(struct op_reader *r, size_t n, const uint8_t **out) {
    if (r->bad || r->bytes - r->pos < n) {
        r->bad = true;
        return false;
    }
    *out = r->data + r->pos;
    r->pos += n;
    return true;
}

static uint32_t op_reader_u32(struct op_reader *r) {
    const uint8_t *p;
    return op_reader_take(r, 4, &p) ? base_load_u32le(p) : 0;
}

static uint64_t op_reader_u64(struct op_reader *r) {
    const uint8_t *p;
    return op_reader_take(r, 8, &p) ? base_load_u64le(p) : 0;
}

/* A length-prefixed byte string. */
static const uint8_t *op_reader_str(struct op_reader *r, size_t *bytes) {
    uint32_t n = op_reader_u32(r);
    const uint8_t *p = NULL;
    if (!op_reader_take(r, n, &p)) return NULL;
    *bytes = n;
    return p;
}

/* One decoded op; element lists are left in the reader for the caller to walk. */
struct op_view {
    enum op_kind kind;
    const uint8_t *key;
    size_t key_bytes;
    const uint8_t *value;
    size_t value_bytes;
    uint64_t offset;
    uint64_t expire_ms;
    uint32_t count;
    size_t elements_pos; /* reader position of the first element */
};

static void op_read_list(struct op_reader *r, struct op_view *v, unsigned per_element) {
    v->count = op_reader_u32(r);
    if (v->count > OP_ELEMENTS_MAX) r->bad = true;
    v->elements_pos = r->pos;
    for (uint32_t i = 0; i < v->count * per_element && !r->bad; i++) {
        size_t ignored;
        op_reader_str(r, &ignored);
    }
}

/* Decodes the op at the reader's position; false on malformed input. */
static bool op_read(struct op_reader *r, struct op_view *v) {
    memset(v, 0, sizeof(*v));
    const uint8_t *kind;
    if (!op_reader_take(r, 1, &kind)) return false;
    v->kind = (enum op_kind) * kind;
    v->key = op_reader_str(r, &v->key_bytes);
    switch (v->kind) {
    case OP_SET:
        v->value = op_reader_str(r, &v->value_bytes);
        v->expire_ms = op_reader_u64(r);
        break;
    case OP_SETRANGE:
        v->offset = op_reader_u64(r);
        v->value = op_reader_str(r, &v->value_bytes);
        v->expire_ms = op_reader_u64(r);
        /* The string it leaves must fit the db's limit (a fuzzed op once did not). */
        if (v->offset > DB_VALUE_BYTES_MAX || v->value_bytes > DB_VALUE_BYTES_MAX - v->offset)
            r->bad = true;
        break;
    case OP_DEL:
    case OP_FLUSHALL:
        break;
    case OP_EXPIRE:
        v->expire_ms = op_reader_u64(r);
        break;
    case OP_SADD:
    case OP_SREM:
    case OP_HDEL:
        op_read_list(r, v, 1);
        break;
    case OP_HSET:
        op_read_list(r, v, 2);
        break;
    default:
        r->bad = true;
    }
    return !r->bad;
}

int op_validate(const uint8_t *ops, size_t bytes, struct errmsg *msg) {
    struct op_reader r = {.data = ops, .bytes = bytes};
    while (r.pos < r.bytes) {
        size_t start = r.pos;
        struct op_view v;
        if (!op_read(&r, &v)) {
            return errmsg_set(msg, ERR_CORRUPT, "malformed operation at byte %zu of %zu", start,
                              bytes);
        }
    }
    return 0;
}

/* Finds key as a set/hash, replacing a value of another type (see the file comment). */
static struct db_entry *op_apply_container(struct db *db, const struct op_view *v,
                                           enum value_type type, bool create) {
    struct db_entry *e = db_find(db, v->key, v->key_bytes);
    if (e != NULL && db_entry_type(e) != type) {
        db_delete(db, v->key, v->key_bytes);
        e = NULL;
    }
    if (e == NULL && create) {
        e = type == VALUE_SET ? db_put_set(db, v->key, v->key_bytes)
                              : db_put_hash(db, v->key, v->key_bytes);
    }
    return e;
}

static void op_apply_setrange(struct db *db, const struct op_view *v) {
    size_t old_bytes = 0;
    const uint8_t *old = NULL;
    struct db_entry *e = db_find(db, v->key, v->key_bytes);
    if (e != NULL && db_entry_type(e) == VALUE_STRING) old = db_entry_string(e, &old_bytes);
    size_t offset = (size_t)v->offset;
    size_t total = offset + v->value_bytes;
    uint8_t *joined = base_malloc(total);
    size_t keep = old_bytes < offset ? old_bytes : offset;
    if (keep > 0) memcpy(joined, old, keep);
    memset(joined + keep, 0, offset - keep);
    if (v->value_bytes > 0) memcpy(joined + offset, v->value, v->value_bytes);
    db_put_string(db, v->key, v->key_bytes, joined, total, v->expire_ms);
    free(joined);
}

static void op_apply_list(struct db *db, struct op_reader *r, const struct op_view *v) {
    bool adds = v->kind == OP_SADD || v->kind == OP_HSET;
    enum value_type type = (v->kind == OP_SADD || v->kind == OP_SREM) ? VALUE_SET : VALUE_HASH;
    struct db_entry *e = op_apply_container(db, v, type, adds && v->count > 0);
    r->pos = v->elements_pos;
    for (uint32_t i = 0; i < v->count; i++) {
        size_t a_bytes = 0;
        size_t b_bytes = 0;
        const uint8_t *a = op_reader_str(r, &a_bytes);
        const uint8_t *b = v->kind == OP_HSET ? op_reader_str(r, &b_bytes) : NULL;
        if (e == NULL) continue;
        if (v->kind == OP_SADD) set_add(db_entry_set(e), a, a_bytes);
        if (v->kind == OP_SREM) set_remove(db_entry_set(e), a, a_bytes);
        if (v->kind == OP_HSET) hash_put(db_entry_hash(e), a, a_bytes, b, b_bytes);
        if (v->kind == OP_HDEL) hash_remove(db_entry_hash(e), a, a_bytes);
    }
    ASSERT(!r->bad);
    /* An emptied set or hash is not deleted here: live commands log an explicit OP_DEL
     * when they empty one, and deleting during a replay could drop an expiry that the
     * live key kept (recovery sweeps any empty container left at the end). */
}

static void op_apply_one(struct db *db, struct op_reader *r, const struct op_view *v) {
    struct db_entry *e;
    switch (v->kind) {
    case OP_SET:
        db_put_string(db, v->key, v->key_bytes, v->value, v->value_bytes, v->expire_ms);
        break;
    case OP_SETRANGE:
        op_apply_setrange(db, v);
        break;
    case OP_DEL:
        db_delete(db, v->key, v->key_bytes);
        break;
    case OP_EXPIRE:
        e = db_find(db, v->key, v->key_bytes);
        if (e != NULL) db_entry_set_expire(db, e, v->expire_ms);
        break;
    case OP_FLUSHALL:
        db_clear(db);
        break;
    case OP_SADD:
    case OP_SREM:
    case OP_HSET:
    case OP_HDEL:
        op_apply_list(db, r, v);
        break;
    default:
        UNREACHABLE();
    }
}

int op_apply(struct db *db, const uint8_t *ops, size_t bytes, struct errmsg *msg) {
    struct op_reader r = {.data = ops, .bytes = bytes};
    while (r.pos < r.bytes) {
        size_t start = r.pos;
        struct op_view v;
        if (!op_read(&r, &v)) {
            return errmsg_set(msg, ERR_CORRUPT, "malformed operation at byte %zu of %zu", start,
                              bytes);
        }
        size_t next = r.pos;
        op_apply_one(db, &r, &v);
        r.pos = next;
    }
    return 0;
}

void op_each_key(const uint8_t *ops, size_t bytes, op_key_fn *fn, void *ctx) {
    struct op_reader r = {.data = ops, .bytes = bytes};
    while (r.pos < r.bytes) {
        struct op_view v;
        bool ok = op_read(&r, &v);
        ASSERT(ok);
        fn(ctx, v.kind, v.key, v.key_bytes);
    }
}

struct op_entry_ctx {
    struct buf *out;
    uint32_t count;
};

static void op_put_entry_member(void *ctx, const uint8_t *member, size_t bytes) {
    struct op_entry_ctx *c = ctx;
    op_put_element(c->out, member, bytes);
    c->count++;
}

static void op_put_entry_field(void *ctx, const uint8_t *field, size_t field_bytes,
                               const uint8_t *value, size_t value_bytes) {
    struct op_entry_ctx *c = ctx;
    op_put_element(c->out, field, field_bytes);
    op_put_element(c->out, value, value_bytes);
    c->count++;
}

void op_put_entry(struct buf *out, struct db_entry *e) {
    size_t key_bytes;
    const uint8_t *key = db_entry_key(e, &key_bytes);
    uint64_t expire_ms = db_entry_expire_ms(e);
    struct op_entry_ctx c = {.out = out, .count = 0};
    size_t pos;
    switch (db_entry_type(e)) {
    case VALUE_STRING: {
        size_t value_bytes;
        const uint8_t *value = db_entry_string(e, &value_bytes);
        op_put_set(out, key, key_bytes, value, value_bytes, expire_ms);
        return;
    }
    case VALUE_SET:
        pos = op_begin_list(out, OP_SADD, key, key_bytes);
        set_each(db_entry_set(e), op_put_entry_member, &c);
        break;
    case VALUE_HASH:
        pos = op_begin_list(out, OP_HSET, key, key_bytes);
        hash_each(db_entry_hash(e), op_put_entry_field, &c);
        break;
    default:
        UNREACHABLE();
    }
    op_end_list(out, pos, c.count);
    if (expire_ms != DB_NO_EXPIRE) op_put_expire(out, key, key_bytes, expire_ms);
}
