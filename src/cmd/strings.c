/*
 * String commands: GET SET (NX XX IFEQ GET EX PX EXAT PXAT KEEPTTL) SETNX SETEX PSETEX MGET
 * MSET MSETNX APPEND STRLEN GETDEL GETSET GETEX. Replies and errors follow Redis 7 (and
 * Valkey 8.1 for IFEQ, the compare-and-set).
 */
#include <string.h>

#include "base/assert.h"
#include "cmd/cmd.h"
#include "cmd/internal.h"
#include "cmd/op.h"

void cmd_get(struct cmd_ctx *ctx) {
    struct db_entry *e;
    if (!cmd_lookup_typed(ctx, &ctx->argv[1], VALUE_STRING, &e)) return;
    if (e == NULL) {
        resp_put_null(ctx->out, ctx->proto);
        return;
    }
    cmd_reply_bulk_entry(ctx, e);
}

/* Writes key := value with expire_ms, through the op log. */
static void cmd_set_value(struct cmd_ctx *ctx, const struct resp_arg *key,
                          const struct resp_arg *value, uint64_t expire_ms) {
    size_t from = ctx->ops->len;
    op_put_set(ctx->ops, key->data, key->bytes, value->data, value->bytes, expire_ms);
    cmd_apply(ctx, from);
}

enum cmd_set_cond { CMD_SET_ALWAYS, CMD_SET_NX, CMD_SET_XX, CMD_SET_IFEQ };
enum cmd_set_expire {
    CMD_EXPIRE_NONE,
    CMD_EXPIRE_EX,
    CMD_EXPIRE_PX,
    CMD_EXPIRE_EXAT,
    CMD_EXPIRE_PXAT,
    CMD_EXPIRE_KEEPTTL,
    CMD_EXPIRE_PERSIST
};

struct cmd_set_opts {
    enum cmd_set_cond cond;
    const struct resp_arg *ifeq_value;
    bool get;
    enum cmd_set_expire expire;
    const struct resp_arg *expire_arg;
    int64_t expire_ms; /* absolute, once cmd_set_expire_ms succeeded */
};

static enum cmd_set_cond cmd_set_cond_of(const struct resp_arg *a) {
    if (cmd_arg_is(a, "nx")) return CMD_SET_NX;
    if (cmd_arg_is(a, "xx")) return CMD_SET_XX;
    if (cmd_arg_is(a, "ifeq")) return CMD_SET_IFEQ;
    return CMD_SET_ALWAYS;
}

static enum cmd_set_expire cmd_set_expire_of(const struct resp_arg *a, bool persist_ok) {
    if (cmd_arg_is(a, "ex")) return CMD_EXPIRE_EX;
    if (cmd_arg_is(a, "px")) return CMD_EXPIRE_PX;
    if (cmd_arg_is(a, "exat")) return CMD_EXPIRE_EXAT;
    if (cmd_arg_is(a, "pxat")) return CMD_EXPIRE_PXAT;
    if (!persist_ok && cmd_arg_is(a, "keepttl")) return CMD_EXPIRE_KEEPTTL;
    if (persist_ok && cmd_arg_is(a, "persist")) return CMD_EXPIRE_PERSIST;
    return CMD_EXPIRE_NONE;
}

/* Parses options from argv[first] on, with Redis's rules: an option may repeat (the last
 * value wins) but may not be combined with a conflicting one (NX with XX, EX with PX...).
 * getex: the GETEX option set (PERSIST instead of NX XX GET KEEPTTL IFEQ). */
static bool cmd_set_parse(struct cmd_ctx *ctx, uint32_t first, bool getex, struct cmd_set_opts *o) {
    memset(o, 0, sizeof(*o));
    for (uint32_t i = first; i < ctx->argc; i++) {
        const struct resp_arg *a = &ctx->argv[i];
        enum cmd_set_cond cond = getex ? CMD_SET_ALWAYS : cmd_set_cond_of(a);
        enum cmd_set_expire expire = cmd_set_expire_of(a, getex);
        bool has_value = i + 1 < ctx->argc;
        if (cond != CMD_SET_ALWAYS) {
            if (o->cond != CMD_SET_ALWAYS && o->cond != cond) goto syntax;
            if (cond == CMD_SET_IFEQ && !has_value) goto syntax;
            o->cond = cond;
            if (cond == CMD_SET_IFEQ) o->ifeq_value = &ctx->argv[++i];
        } else if (!getex && cmd_arg_is(a, "get")) {
            o->get = true;
        } else if (expire != CMD_EXPIRE_NONE) {
            if (o->expire != CMD_EXPIRE_NONE && o->expire != expire) goto syntax;
            bool takes_value = expire != CMD_EXPIRE_KEEPTTL && expire != CMD_EXPIRE_PERSIST;
            if (takes_value && !has_value) goto syntax;
            o->expire = expire;
            if (takes_value) o->expire_arg = &ctx->argv[++i];
        } else {
            goto syntax;
        }
    }
    return true;
syntax:
    cmd_reply_syntax(ctx);
    return false;
}

/* Turns the parsed expiry into absolute ms; false (replied) when invalid. */
static bool cmd_set_expire_ms(struct cmd_ctx *ctx, struct cmd_set_opts *o) {
    if (o->expire_arg == NULL) return true;
    int64_t v;
    if (!cmd_arg_i64(o->expire_arg, &v)) {
        cmd_reply_not_integer(ctx);
        return false;
    }
    if (v <= 0) {
        cmd_reply_invalid_expire(ctx);
        return false;
    }
    bool seconds = o->expire == CMD_EXPIRE_EX || o->expire == CMD_EXPIRE_EXAT;
    bool absolute = o->expire == CMD_EXPIRE_EXAT || o->expire == CMD_EXPIRE_PXAT;
    return cmd_parse_expire(ctx, o->expire_arg, seconds ? 1000 : 1, absolute, &o->expire_ms);
}

static bool cmd_set_cond_holds(const struct cmd_set_opts *o, const struct db_entry *e) {
    switch (o->cond) {
    case CMD_SET_ALWAYS:
        return true;
    case CMD_SET_NX:
        return e == NULL;
    case CMD_SET_XX:
        return e != NULL;
    case CMD_SET_IFEQ: {
        if (e == NULL) return false;
        size_t bytes;
        const uint8_t *value = db_entry_string(e, &bytes);
        return bytes == o->ifeq_value->bytes &&
               (bytes == 0 || memcmp(value, o->ifeq_value->data, bytes) == 0);
    }
    }
    UNREACHABLE();
}

void cmd_set(struct cmd_ctx *ctx) {
    struct cmd_set_opts o;
    if (!cmd_set_parse(ctx, 3, false, &o)) return;
    if (!cmd_set_expire_ms(ctx, &o)) return;
    struct db_entry *e = cmd_lookup_key(ctx, &ctx->argv[1]);
    bool needs_string = o.get || o.cond == CMD_SET_IFEQ;
    if (e != NULL && needs_string && db_entry_type(e) != VALUE_STRING) {
        cmd_reply_wrongtype(ctx);
        return;
    }
    bool holds = cmd_set_cond_holds(&o, e);
    if (o.get) {
        if (e == NULL)
            resp_put_null(ctx->out, ctx->proto);
        else
            cmd_reply_bulk_entry(ctx, e);
    }
    if (!holds) {
        if (!o.get) resp_put_null(ctx->out, ctx->proto);
        return;
    }
    uint64_t expire_ms = DB_NO_EXPIRE;
    if (o.expire_arg != NULL) expire_ms = (uint64_t)o.expire_ms;
    if (o.expire == CMD_EXPIRE_KEEPTTL && e != NULL) expire_ms = db_entry_expire_ms(e);
    if (o.expire_arg != NULL && expire_ms <= ctx->now_ms) {
        /* Already expired, as with EXAT in the past: Redis removes the key at once. */
        cmd_delete_key(ctx, &ctx->argv[1]);
    } else {
        cmd_set_value(ctx, &ctx->argv[1], &ctx->argv[2], expire_ms);
    }
    if (!o.get) resp_put_simple(ctx->out, "OK");
}

void cmd_setnx(struct cmd_ctx *ctx) {
    if (cmd_lookup_key(ctx, &ctx->argv[1]) != NULL) {
        resp_put_int(ctx->out, 0);
        return;
    }
    cmd_set_value(ctx, &ctx->argv[1], &ctx->argv[2], DB_NO_EXPIRE);
    resp_put_int(ctx->out, 1);
}

static void cmd_setex_unit(struct cmd_ctx *ctx, uint64_t unit_ms) {
    int64_t v;
    if (!cmd_arg_i64(&ctx->argv[2], &v)) {
        cmd_reply_not_integer(ctx);
        return;
    }
    int64_t expire_ms;
    if (v <= 0) {
        cmd_reply_invalid_expire(ctx);
        return;
    }
    if (!cmd_parse_expire(ctx, &ctx->argv[2], unit_ms, false, &expire_ms)) return;
    cmd_lookup_key(ctx, &ctx->argv[1]);
    cmd_set_value(ctx, &ctx->argv[1], &ctx->argv[3], (uint64_t)expire_ms);
    resp_put_simple(ctx->out, "OK");
}

void cmd_setex(struct cmd_ctx *ctx) {
    cmd_setex_unit(ctx, 1000);
}
void cmd_psetex(struct cmd_ctx *ctx) {
    cmd_setex_unit(ctx, 1);
}

void cmd_mget(struct cmd_ctx *ctx) {
    resp_put_array(ctx->out, ctx->argc - 1);
    for (uint32_t i = 1; i < ctx->argc; i++) {
        struct db_entry *e = cmd_lookup_key(ctx, &ctx->argv[i]);
        if (e == NULL || db_entry_type(e) != VALUE_STRING)
            resp_put_null(ctx->out, ctx->proto);
        else
            cmd_reply_bulk_entry(ctx, e);
    }
}

static bool cmd_mset_arity(struct cmd_ctx *ctx) {
    if (ctx->argc % 2 == 1) return true;
    const char *name = cmd_arg_is(&ctx->argv[0], "msetnx") ? "msetnx" : "mset";
    resp_put_errorf(ctx->out, "ERR wrong number of arguments for '%s' command", name);
    return false;
}

static void cmd_mset_all(struct cmd_ctx *ctx) {
    size_t from = ctx->ops->len;
    for (uint32_t i = 1; i + 1 < ctx->argc; i += 2) {
        const struct resp_arg *k = &ctx->argv[i];
        const struct resp_arg *v = &ctx->argv[i + 1];
        op_put_set(ctx->ops, k->data, k->bytes, v->data, v->bytes, DB_NO_EXPIRE);
    }
    cmd_apply(ctx, from);
}

void cmd_mset(struct cmd_ctx *ctx) {
    if (!cmd_mset_arity(ctx)) return;
    cmd_mset_all(ctx);
    resp_put_simple(ctx->out, "OK");
}

void cmd_msetnx(struct cmd_ctx *ctx) {
    if (!cmd_mset_arity(ctx)) return;
    for (uint32_t i = 1; i + 1 < ctx->argc; i += 2) {
        if (cmd_lookup_key(ctx, &ctx->argv[i]) != NULL) {
            resp_put_int(ctx->out, 0);
            return;
        }
    }
    cmd_mset_all(ctx);
    resp_put_int(ctx->out, 1);
}

void cmd_append(struct cmd_ctx *ctx) {
    struct db_entry *e;
    if (!cmd_lookup_typed(ctx, &ctx->argv[1], VALUE_STRING, &e)) return;
    size_t old_bytes = 0;
    uint64_t expire_ms = DB_NO_EXPIRE;
    if (e != NULL) {
        db_entry_string(e, &old_bytes);
        expire_ms = db_entry_expire_ms(e);
    }
    const struct resp_arg *tail = &ctx->argv[2];
    if (old_bytes + tail->bytes > ctx->string_bytes_max) {
        cmd_reply_string_too_big(ctx);
        return;
    }
    size_t from = ctx->ops->len;
    op_put_setrange(ctx->ops, ctx->argv[1].data, ctx->argv[1].bytes, old_bytes, tail->data,
                    tail->bytes, expire_ms);
    cmd_apply(ctx, from);
    resp_put_int(ctx->out, (int64_t)(old_bytes + tail->bytes));
}

void cmd_strlen(struct cmd_ctx *ctx) {
    struct db_entry *e;
    if (!cmd_lookup_typed(ctx, &ctx->argv[1], VALUE_STRING, &e)) return;
    size_t bytes = 0;
    if (e != NULL) db_entry_string(e, &bytes);
    resp_put_int(ctx->out, (int64_t)bytes);
}

void cmd_getdel(struct cmd_ctx *ctx) {
    struct db_entry *e;
    if (!cmd_lookup_typed(ctx, &ctx->argv[1], VALUE_STRING, &e)) return;
    if (e == NULL) {
        resp_put_null(ctx->out, ctx->proto);
        return;
    }
    cmd_reply_bulk_entry(ctx, e);
    cmd_delete_key(ctx, &ctx->argv[1]);
}

void cmd_getset(struct cmd_ctx *ctx) {
    struct db_entry *e;
    if (!cmd_lookup_typed(ctx, &ctx->argv[1], VALUE_STRING, &e)) return;
    if (e == NULL)
        resp_put_null(ctx->out, ctx->proto);
    else
        cmd_reply_bulk_entry(ctx, e);
    cmd_set_value(ctx, &ctx->argv[1], &ctx->argv[2], DB_NO_EXPIRE);
}

/* GETEX key [EX s | PX ms | EXAT t | PXAT t | PERSIST]: as Redis, a missing key answers
 * nil before the expiry value is checked. */
void cmd_getex(struct cmd_ctx *ctx) {
    struct cmd_set_opts o;
    if (!cmd_set_parse(ctx, 2, true, &o)) return;
    struct db_entry *e;
    if (!cmd_lookup_typed(ctx, &ctx->argv[1], VALUE_STRING, &e)) return;
    if (e == NULL) {
        resp_put_null(ctx->out, ctx->proto);
        return;
    }
    if (!cmd_set_expire_ms(ctx, &o)) return;
    e = cmd_lookup_key(ctx, &ctx->argv[1]);
    ASSERT(e != NULL);
    cmd_reply_bulk_entry(ctx, e);
    if (o.expire == CMD_EXPIRE_NONE) return;
    if (o.expire != CMD_EXPIRE_PERSIST && (uint64_t)o.expire_ms <= ctx->now_ms) {
        cmd_delete_key(ctx, &ctx->argv[1]);
        return;
    }
    size_t from = ctx->ops->len;
    op_put_expire(ctx->ops, ctx->argv[1].data, ctx->argv[1].bytes,
                  o.expire == CMD_EXPIRE_PERSIST ? DB_NO_EXPIRE : (uint64_t)o.expire_ms);
    cmd_apply(ctx, from);
}
