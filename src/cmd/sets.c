/*
 * Set commands: SADD SREM SMEMBERS SISMEMBER SMISMEMBER SCARD. A set emptied by SREM is
 * deleted, and the delete is logged explicitly (op.h says why).
 */
#include "base/assert.h"
#include "cmd/cmd.h"
#include "cmd/internal.h"
#include "cmd/op.h"

/* Logs and applies one list op over argv[first..argc). Returns the element-count change. */
static int64_t cmd_set_change(struct cmd_ctx *ctx, enum op_kind kind, uint32_t first) {
    const struct resp_arg *key = &ctx->argv[1];
    struct db_entry *e = db_find(ctx->db, key->data, key->bytes);
    size_t before = e == NULL ? 0 : set_count(db_entry_set(e));
    size_t from = ctx->ops->len;
    size_t pos = op_begin_list(ctx->ops, kind, key->data, key->bytes);
    for (uint32_t i = first; i < ctx->argc; i++) {
        op_put_element(ctx->ops, ctx->argv[i].data, ctx->argv[i].bytes);
    }
    op_end_list(ctx->ops, pos, ctx->argc - first);
    cmd_apply(ctx, from);
    e = db_find(ctx->db, key->data, key->bytes);
    size_t after = e == NULL ? 0 : set_count(db_entry_set(e));
    if (after == before) {
        /* Nothing changed (members already there, or absent): nothing to log, as Redis
         * propagates nothing. Adding/removing members is all-or-nothing per member, so an
         * unchanged count means an unchanged set. */
        ctx->ops->len = from;
        return 0;
    }
    if (e != NULL && after == 0) {
        from = ctx->ops->len;
        op_put_del(ctx->ops, key->data, key->bytes);
        cmd_apply(ctx, from);
    }
    return (int64_t)after - (int64_t)before;
}

void cmd_sadd(struct cmd_ctx *ctx) {
    struct db_entry *e;
    if (!cmd_lookup_typed(ctx, &ctx->argv[1], VALUE_SET, &e)) return;
    resp_put_int(ctx->out, cmd_set_change(ctx, OP_SADD, 2));
}

void cmd_srem(struct cmd_ctx *ctx) {
    struct db_entry *e;
    if (!cmd_lookup_typed(ctx, &ctx->argv[1], VALUE_SET, &e)) return;
    if (e == NULL) {
        resp_put_int(ctx->out, 0);
        return;
    }
    resp_put_int(ctx->out, -cmd_set_change(ctx, OP_SREM, 2));
}

struct cmd_members_ctx {
    struct buf *out;
};

static void cmd_smembers_one(void *ctx, const uint8_t *member, size_t bytes) {
    struct cmd_members_ctx *c = ctx;
    resp_put_bulk(c->out, member, bytes);
}

void cmd_smembers(struct cmd_ctx *ctx) {
    struct db_entry *e;
    if (!cmd_lookup_typed(ctx, &ctx->argv[1], VALUE_SET, &e)) return;
    if (e == NULL) {
        resp_put_set(ctx->out, ctx->proto, 0);
        return;
    }
    struct set *s = db_entry_set(e);
    resp_put_set(ctx->out, ctx->proto, set_count(s));
    struct cmd_members_ctx c = {.out = ctx->out};
    set_each(s, cmd_smembers_one, &c);
}

void cmd_sismember(struct cmd_ctx *ctx) {
    struct db_entry *e;
    if (!cmd_lookup_typed(ctx, &ctx->argv[1], VALUE_SET, &e)) return;
    bool in = e != NULL && set_contains(db_entry_set(e), ctx->argv[2].data, ctx->argv[2].bytes);
    resp_put_int(ctx->out, in ? 1 : 0);
}

void cmd_smismember(struct cmd_ctx *ctx) {
    struct db_entry *e;
    if (!cmd_lookup_typed(ctx, &ctx->argv[1], VALUE_SET, &e)) return;
    resp_put_array(ctx->out, ctx->argc - 2);
    for (uint32_t i = 2; i < ctx->argc; i++) {
        bool in = e != NULL && set_contains(db_entry_set(e), ctx->argv[i].data, ctx->argv[i].bytes);
        resp_put_int(ctx->out, in ? 1 : 0);
    }
}

void cmd_scard(struct cmd_ctx *ctx) {
    struct db_entry *e;
    if (!cmd_lookup_typed(ctx, &ctx->argv[1], VALUE_SET, &e)) return;
    resp_put_int(ctx->out, e == NULL ? 0 : (int64_t)set_count(db_entry_set(e)));
}
