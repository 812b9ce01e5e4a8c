/*
 * INCR DECR INCRBY DECRBY: a string holding a canonical int64 is a counter. The new value
 * is logged as a plain SET (keeping the expiry), which is idempotent on replay.
 */
#include "base/assert.h"
#include "base/util.h"
#include "cmd/cmd.h"
#include "cmd/internal.h"
#include "cmd/op.h"

static void cmd_incr_by(struct cmd_ctx *ctx, int64_t delta) {
    struct db_entry *e;
    if (!cmd_lookup_typed(ctx, &ctx->argv[1], VALUE_STRING, &e)) return;
    int64_t current = 0;
    uint64_t expire_ms = DB_NO_EXPIRE;
    if (e != NULL) {
        size_t bytes;
        const uint8_t *value = db_entry_string(e, &bytes);
        if (!util_parse_i64(value, bytes, &current)) {
            cmd_reply_not_integer(ctx);
            return;
        }
        expire_ms = db_entry_expire_ms(e);
    }
    int64_t next;
    if (__builtin_add_overflow(current, delta, &next)) {
        resp_put_error(ctx->out, "ERR increment or decrement would overflow");
        return;
    }
    char digits[UTIL_I64_DIGITS_MAX];
    size_t len = util_format_i64(next, digits);
    size_t from = ctx->ops->len;
    op_put_set(ctx->ops, ctx->argv[1].data, ctx->argv[1].bytes, (const uint8_t *)digits, len,
               expire_ms);
    cmd_apply(ctx, from);
    resp_put_int(ctx->out, next);
}

void cmd_incr(struct cmd_ctx *ctx) {
    cmd_incr_by(ctx, 1);
}
void cmd_decr(struct cmd_ctx *ctx) {
    cmd_incr_by(ctx, -1);
}

void cmd_incrby(struct cmd_ctx *ctx) {
    int64_t delta;
    if (!cmd_arg_i64(&ctx->argv[2], &delta)) {
        cmd_reply_not_integer(ctx);
        return;
    }
    cmd_incr_by(ctx, delta);
}

void cmd_decrby(struct cmd_ctx *ctx) {
    int64_t delta;
    if (!cmd_arg_i64(&ctx->argv[2], &delta)) {
        cmd_reply_not_integer(ctx);
        return;
    }
    if (delta == INT64_MIN) {
        resp_put_error(ctx->out, "ERR decrement would overflow");
        return;
    }
    cmd_incr_by(ctx, -delta);
}
