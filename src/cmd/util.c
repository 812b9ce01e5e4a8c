/*
 * Helpers shared by the command files: argument parsing, key lookup with lazy expiry, the
 * common error replies, and cmd_apply, through which every change goes: a command appends
 * ops, then applies exactly those ops, so the live path and WAL replay are one code path.
 */
#include <string.h>

#include "base/assert.h"
#include "base/util.h"
#include "cmd/cmd.h"
#include "cmd/internal.h"
#include "cmd/op.h"

bool cmd_arg_i64(const struct resp_arg *arg, int64_t *out) {
    return util_parse_i64(arg->data, arg->bytes, out);
}

void cmd_apply(struct cmd_ctx *ctx, size_t ops_from) {
    ASSERT(ops_from <= ctx->ops->len);
    struct errmsg msg;
    int rc = op_apply(ctx->db, ctx->ops->data + ops_from, ctx->ops->len - ops_from, &msg);
    ASSERT(rc == 0);
}

void cmd_delete_key(struct cmd_ctx *ctx, const struct resp_arg *key) {
    if (db_find(ctx->db, key->data, key->bytes) == NULL) return;
    size_t from = ctx->ops->len;
    op_put_del(ctx->ops, key->data, key->bytes);
    cmd_apply(ctx, from);
}

struct db_entry *cmd_lookup_key(struct cmd_ctx *ctx, const struct resp_arg *key) {
    struct db_entry *e = db_find(ctx->db, key->data, key->bytes);
    if (e == NULL || !db_entry_expired(e, ctx->now_ms)) return e;
    if (ctx->readonly) return NULL;
    /* Lazy expiry: the delete is logged like any other so replicas and replay agree. */
    size_t from = ctx->ops->len;
    op_put_del(ctx->ops, key->data, key->bytes);
    cmd_apply(ctx, from);
    ASSERT(db_find(ctx->db, key->data, key->bytes) == NULL);
    return NULL;
}

bool cmd_lookup_typed(struct cmd_ctx *ctx, const struct resp_arg *key, enum value_type type,
                      struct db_entry **e) {
    *e = cmd_lookup_key(ctx, key);
    if (*e != NULL && db_entry_type(*e) != type) {
        cmd_reply_wrongtype(ctx);
        return false;
    }
    return true;
}

void cmd_reply_wrongtype(struct cmd_ctx *ctx) {
    resp_put_error(ctx->out, "WRONGTYPE Operation against a key holding the wrong kind of value");
}

void cmd_reply_not_integer(struct cmd_ctx *ctx) {
    resp_put_error(ctx->out, "ERR value is not an integer or out of range");
}

void cmd_reply_syntax(struct cmd_ctx *ctx) {
    resp_put_error(ctx->out, "ERR syntax error");
}

void cmd_reply_string_too_big(struct cmd_ctx *ctx) {
    resp_put_error(ctx->out, "ERR string exceeds maximum allowed size (proto-max-bulk-len)");
}

void cmd_reply_bulk_entry(struct cmd_ctx *ctx, const struct db_entry *e) {
    size_t bytes;
    const uint8_t *value = db_entry_string(e, &bytes);
    resp_put_bulk(ctx->out, value, bytes);
}

void cmd_reply_invalid_expire(struct cmd_ctx *ctx) {
    char name[32];
    size_t n = ctx->argv[0].bytes < sizeof(name) - 1 ? ctx->argv[0].bytes : sizeof(name) - 1;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = ctx->argv[0].data[i];
        name[i] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
    }
    name[n] = '\0';
    resp_put_errorf(ctx->out, "ERR invalid expire time in '%s' command", name);
}

bool cmd_parse_expire(struct cmd_ctx *ctx, const struct resp_arg *arg, uint64_t unit_ms,
                      bool absolute, int64_t *expire_ms) {
    int64_t v;
    if (!cmd_arg_i64(arg, &v)) {
        cmd_reply_not_integer(ctx);
        return false;
    }
    int64_t scaled;
    int64_t base = absolute ? 0 : (int64_t)ctx->now_ms;
    if (__builtin_mul_overflow(v, (int64_t)unit_ms, &scaled) ||
        __builtin_add_overflow(scaled, base, expire_ms)) {
        cmd_reply_invalid_expire(ctx);
        return false;
    }
    return true;
}

int cmd_subcommand(struct buf *out, const char *command, const struct cmd_sub *subs, size_t count,
                   uint32_t argc, const struct resp_arg *argv) {
    const struct resp_arg *sub = &argv[1];
    for (size_t i = 0; i < count; i++) {
        if (!cmd_arg_is(sub, subs[i].name)) continue;
        int arity = subs[i].arity;
        bool ok = arity > 0 ? argc == (uint32_t)arity : argc >= (uint32_t)-arity;
        if (ok) return (int)i;
        resp_put_errorf(out, "ERR wrong number of arguments for '%s|%s' command", command,
                        subs[i].name);
        return -1;
    }
    char upper[16];
    size_t n = strlen(command) < sizeof(upper) - 1 ? strlen(command) : sizeof(upper) - 1;
    for (size_t i = 0; i < n; i++) upper[i] = (char)(command[i] - 32 * (command[i] >= 'a'));
    upper[n] = '\0';
    resp_put_errorf(out, "ERR unknown subcommand '%.*s'. Try %s HELP.",
                    (int)(sub->bytes > 128 ? 128 : sub->bytes), (const char *)sub->data, upper);
    return -1;
}

/* VGET and VSET on a key the CP engine keeps: contexts and siblings exist on AP keys with
 * conflict = siblings only (a CP key has one value, never concurrent ones). */
void cmd_vget(struct cmd_ctx *ctx) {
    resp_put_errorf(ctx->out,
                    "ERR VGET and VSET work on keys of an AP keyspace with conflict = siblings: "
                    "'%.*s' is in a CP keyspace, which never has concurrent values (use GET, SET)",
                    (int)(ctx->argv[1].bytes > 64 ? 64 : ctx->argv[1].bytes),
                    (const char *)ctx->argv[1].data);
}
