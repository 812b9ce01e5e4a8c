/*
 * Operations: the physical, idempotent changes that write commands make to the data, as
 * they are logged in the WAL (one record = one command's or one EXEC's ops, atomic on
 * replay) and as snapshot entries are written. Idempotent means each op sets its subject
 * (a key, a member, a field) to a fixed result whatever the state before, so replaying a
 * log suffix over a fuzzy snapshot rebuilds the exact state (docs/formats.md).
 *
 * Encoding (little-endian): op := kind:u8 key_bytes:u32 key, then by kind
 *   OP_SET        value_bytes:u32 value expire_ms:u64
 *   OP_SETRANGE   offset:u64 bytes_len:u32 bytes expire_ms:u64  (value := value[0,offset) +
 *                 bytes, zero-padded if shorter; used by APPEND so its log stays small)
 *   OP_DEL        -
 *   OP_EXPIRE     expire_ms:u64 (0 = persist)
 *   OP_SADD/SREM  count:u32 (member_bytes:u32 member)*count
 *   OP_HSET       count:u32 (field_bytes:u32 field value_bytes:u32 value)*count
 *   OP_HDEL       count:u32 (field_bytes:u32 field)*count
 *   OP_FLUSHALL   (key_bytes is 0)
 */
#ifndef CAPKV_CMD_OP_H
#define CAPKV_CMD_OP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "data/db.h"

enum op_kind {
    OP_SET = 1,
    OP_SETRANGE = 2,
    OP_DEL = 3,
    OP_EXPIRE = 4,
    OP_SADD = 5,
    OP_SREM = 6,
    OP_HSET = 7,
    OP_HDEL = 8,
    OP_FLUSHALL = 9,
};

#define OP_KEY_BYTES_MAX (512u * 1024u * 1024u)

/* Writers: append one op to out. Element lists are written with op_begin_list, then one
 * op_put_element per member/field/value, then op_end_list, which patches the count. */
void op_put_set(struct buf *out, const uint8_t *key, size_t key_bytes, const uint8_t *value,
                size_t value_bytes, uint64_t expire_ms);
void op_put_setrange(struct buf *out, const uint8_t *key, size_t key_bytes, uint64_t offset,
                     const uint8_t *bytes, size_t len, uint64_t expire_ms);
void op_put_del(struct buf *out, const uint8_t *key, size_t key_bytes);
void op_put_expire(struct buf *out, const uint8_t *key, size_t key_bytes, uint64_t expire_ms);
void op_put_flushall(struct buf *out);
/* Returns the position of the count, for op_end_list. */
size_t op_begin_list(struct buf *out, enum op_kind kind, const uint8_t *key, size_t key_bytes);
void op_put_element(struct buf *out, const uint8_t *data, size_t bytes);
void op_end_list(struct buf *out, size_t count_pos, uint32_t count);

/* Applies every op in ops[0..bytes) to db. Malformed input is ERR_CORRUPT with the byte
 * offset in msg; ops before it stay applied (a record is checked by op_validate first). */
int op_apply(struct db *db, const uint8_t *ops, size_t bytes, struct errmsg *msg);
/* Checks the encoding of a whole batch without applying it. */
int op_validate(const uint8_t *ops, size_t bytes, struct errmsg *msg);

/* Calls fn for the key of every op (FLUSHALL: key NULL, bytes 0). ops must be valid. */
typedef void op_key_fn(void *ctx, enum op_kind kind, const uint8_t *key, size_t key_bytes);
void op_each_key(const uint8_t *ops, size_t bytes, op_key_fn *fn, void *ctx);

/* Encodes one db entry as ops that recreate it (a snapshot entry). */
void op_put_entry(struct buf *out, struct db_entry *e);

#endif
