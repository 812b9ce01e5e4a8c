/*
 * Hash commands: HSET HMSET HSETNX HGET HMGET HDEL HGETALL HLEN HINCRBY HEXISTS HKEYS
 * HVALS HSTRLEN. A hash emptied by HDEL is deleted, with the delete logged.
 */
#include "base/assert.h"
#include "base/util.h"
#include "cmd/cmd.h"
#include "cmd/internal.h"
#include "cmd/op.h"

static size_t cmd_hash_count(struct cmd_ctx *ctx) {
    struct db_entry *e = db_find(ctx->db, ctx->argv[1].data, ctx->argv[1].bytes);
    return e == NULL ? 0 : hash_count(db_entry_hash(e));
}

/* Logs and applies HSET/HDEL of argv[first..] (pairs for HSET); returns the count change. */
static int64_t cmd_hash_change(struct cmd_ctx *ctx, enum op_kind kind, uint32_t first) {
    const struct resp_arg *key = &ctx->argv[1];
    size_t before = cmd_hash_count(ctx);
    size_t from = ctx->ops->len;
    size_t pos = op_begin_list(ctx->ops, kind, key->data, key->bytes);
    uint32_t per = kind == OP_HSET ? 2 : 1;
    for (uint32_t i = first; i < ctx->argc; i++) {
        op_put_element(ctx->ops, ctx->argv[i].data, ctx->argv[i].bytes);
    }
    op_end_list(ctx->ops, pos, (ctx->argc - first) / per);
    cmd_apply(ctx, from);
    size_t after = cmd_hash_count(ctx);
    if (kind == OP_HDEL && after == before) {
        ctx->ops->len = from; /* no field removed: nothing to log */
        return 0;
    }
    if (after == 0 && db_find(ctx->db, key->data, key->bytes) != NULL) {
        from = ctx->ops->len;
        op_put_del(ctx->ops, key->data, key->bytes);
        cmd_apply(ctx, from);
    }
    return (int64_t)after - (int64_t)before;
}

void cmd_hset(struct cmd_ctx *ctx) {
    if (ctx->argc % 2 != 0) {
        bool hmset = cmd_arg_is(&ctx->argv[0], "hmset");
        resp_put_errorf(ctx->out, "ERR wrong number of arguments for '%s' command",
                        hmset ? "hmset" : "hset");
        return;
    }
    struct db_entry *e;
    if (!cmd_lookup_typed(ctx, &ctx->argv[1], VALUE_HASH, &e)) return;
    int64_t added = cmd_hash_change(ctx, OP_HSET, 2);
    if (cmd_arg_is(&ctx->argv[0], "hmset"))
        resp_put_simple(ctx->out, "OK");
    else
        resp_put_int(ctx->out, added);
}

void cmd_hsetnx(struct cmd_ctx *ctx) {
    struct db_entry *e;
    if (!cmd_lookup_typed(ctx, &ctx->argv[1], VALUE_HASH, &e)) return;
    size_t ignored;
    if (e != NULL &&
        hash_get(db_entry_hash(e), ctx->argv[2].data, ctx->argv[2].bytes, &ignored) != NULL) {
        resp_put_int(ctx->out, 0);
        return;
    }
    resp_put_int(ctx->out, cmd_hash_change(ctx, OP_HSET, 2));
}

/* Replies with field's value (or null); the key's type was checked. */
static void cmd_hash_reply_field(struct cmd_ctx *ctx, struct db_entry *e,
                                 const struct resp_arg *field) {
    size_t bytes = 0;
    const uint8_t *value =
        e == NULL ? NULL : hash_get(db_entry_hash(e), field->data, field->bytes, &bytes);
    if (value == NULL)
        resp_put_null(ctx->out, ctx->proto);
    else
        resp_put_bulk(ctx->out, value, bytes);
}

void cmd_hget(struct cmd_ctx *ctx) {
    struct db_entry *e;
    if (!cmd_lookup_typed(ctx, &ctx->argv[1], VALUE_HASH, &e)) return;
    cmd_hash_reply_field(ctx, e, &ctx->argv[2]);
}

void cmd_hmget(struct cmd_ctx *ctx) {
    struct db_entry *e;
    if (!cmd_lookup_typed(ctx, &ctx->argv[1], VALUE_HASH, &e)) return;
    resp_put_array(ctx->out, ctx->argc - 2);
    for (uint32_t i = 2; i < ctx->argc; i++) cmd_hash_reply_field(ctx, e, &ctx->argv[i]);
}

void cmd_hdel(struct cmd_ctx *ctx) {
    struct db_entry *e;
    if (!cmd_lookup_typed(ctx, &ctx->argv[1], VALUE_HASH, &e)) return;
    if (e == NULL) {
        resp_put_int(ctx->out, 0);
        return;
    }
    resp_put_int(ctx->out, -cmd_hash_change(ctx, OP_HDEL, 2));
}

enum cmd_hash_part { CMD_HASH_FIELDS = 1, CMD_HASH_VALUES = 2 };

struct cmd_hash_walk {
    struct buf *out;
    int parts;
};

static void cmd_hash_walk_one(void *ctx, const uint8_t *field, size_t field_bytes,
                              const uint8_t *value, size_t value_bytes) {
    struct cmd_hash_walk *w = ctx;
    if (w->parts & CMD_HASH_FIELDS) resp_put_bulk(w->out, field, field_bytes);
    if (w->parts & CMD_HASH_VALUES) resp_put_bulk(w->out, value, value_bytes);
}

static void cmd_hash_walk(struct cmd_ctx *ctx, int parts) {
    struct db_entry *e;
    if (!cmd_lookup_typed(ctx, &ctx->argv[1], VALUE_HASH, &e)) return;
    size_t count = e == NULL ? 0 : hash_count(db_entry_hash(e));
    if (parts == (CMD_HASH_FIELDS | CMD_HASH_VALUES))
        resp_put_map(ctx->out, ctx->proto, count);
    else
        resp_put_array(ctx->out, count);
    if (e == NULL) return;
    struct cmd_hash_walk w = {.out = ctx->out, .parts = parts};
    hash_each(db_entry_hash(e), cmd_hash_walk_one, &w);
}

void cmd_hgetall(struct cmd_ctx *ctx) {
    cmd_hash_walk(ctx, CMD_HASH_FIELDS | CMD_HASH_VALUES);
}
void cmd_hkeys(struct cmd_ctx *ctx) {
    cmd_hash_walk(ctx, CMD_HASH_FIELDS);
}
void cmd_hvals(struct cmd_ctx *ctx) {
    cmd_hash_walk(ctx, CMD_HASH_VALUES);
}

void cmd_hlen(struct cmd_ctx *ctx) {
    struct db_entry *e;
    if (!cmd_lookup_typed(ctx, &ctx->argv[1], VALUE_HASH, &e)) return;
    resp_put_int(ctx->out, e == NULL ? 0 : (int64_t)hash_count(db_entry_hash(e)));
}

void cmd_hexists(struct cmd_ctx *ctx) {
    struct db_entry *e;
    if (!cmd_lookup_typed(ctx, &ctx->argv[1], VALUE_HASH, &e)) return;
    size_t ignored;
    bool in = e != NULL &&
              hash_get(db_entry_hash(e), ctx->argv[2].data, ctx->argv[2].bytes, &ignored) != NULL;
    resp_put_int(ctx->out, in ? 1 : 0);
}

void cmd_hstrlen(struct cmd_ctx *ctx) {
    struct db_entry *e;
    if (!cmd_lookup_typed(ctx, &ctx->argv[1], VALUE_HASH, &e)) return;
    size_t bytes = 0;
    if (e != NULL) hash_get(db_entry_hash(e), ctx->argv[2].data, ctx->argv[2].bytes, &bytes);
    resp_put_int(ctx->out, (int64_t)bytes);
}

void cmd_hincrby(struct cmd_ctx *ctx) {
    int64_t delta;
    if (!cmd_arg_i64(&ctx->argv[3], &delta)) {
        cmd_reply_not_integer(ctx);
        return;
    }
    struct db_entry *e;
    if (!cmd_lookup_typed(ctx, &ctx->argv[1], VALUE_HASH, &e)) return;
    int64_t current = 0;
    size_t bytes;
    const uint8_t *value =
        e == NULL ? NULL
                  : hash_get(db_entry_hash(e), ctx->argv[2].data, ctx->argv[2].bytes, &bytes);
    if (value != NULL && !util_parse_i64(value, bytes, &current)) {
        resp_put_error(ctx->out, "ERR hash value is not an integer");
        return;
    }
    int64_t next;
    if (__builtin_add_overflow(current, delta, &next)) {
        resp_put_error(ctx->out, "ERR increment or decrement would overflow");
        return;
    }
    char digits[UTIL_I64_DIGITS_MAX];
    size_t len = util_format_i64(next, digits);
    const struct resp_arg *key = &ctx->argv[1];
    size_t from = ctx->ops->len;
    size_t pos = op_begin_list(ctx->ops, OP_HSET, key->data, key->bytes);
    op_put_element(ctx->ops, ctx->argv[2].data, ctx->argv[2].bytes);
    op_put_element(ctx->ops, (const uint8_t *)digits, len);
    op_end_list(ctx->ops, pos, 1);
    cmd_apply(ctx, from);
    resp_put_int(ctx->out, next);
}
