/*
 * Generic key commands: DEL UNLINK EXISTS TYPE KEYS SCAN DBSIZE EXPIRE PEXPIRE EXPIREAT
 * PEXPIREAT (NX XX GT LT) TTL PTTL EXPIRETIME PEXPIRETIME PERSIST FLUSHALL FLUSHDB.
 */
#include <string.h>

#include "base/assert.h"
#include "base/util.h"
#include "cmd/cmd.h"
#include "cmd/internal.h"
#include "cmd/op.h"

#define CMD_SCAN_COUNT_DEFAULT 10
#define CMD_SCAN_BUCKETS_PER_COUNT 10 /* most buckets visited per requested key, as Redis */

void cmd_del(struct cmd_ctx *ctx) {
    int64_t deleted = 0;
    for (uint32_t i = 1; i < ctx->argc; i++) {
        if (cmd_lookup_key(ctx, &ctx->argv[i]) == NULL) continue;
        size_t from = ctx->ops->len;
        op_put_del(ctx->ops, ctx->argv[i].data, ctx->argv[i].bytes);
        cmd_apply(ctx, from);
        deleted++;
    }
    resp_put_int(ctx->out, deleted);
}

void cmd_exists(struct cmd_ctx *ctx) {
    int64_t found = 0;
    for (uint32_t i = 1; i < ctx->argc; i++) {
        if (cmd_lookup_key(ctx, &ctx->argv[i]) != NULL) found++;
    }
    resp_put_int(ctx->out, found);
}

static const char *cmd_type_name(enum value_type type) {
    switch (type) {
    case VALUE_STRING:
        return "string";
    case VALUE_SET:
        return "set";
    case VALUE_HASH:
        return "hash";
    }
    UNREACHABLE();
}

void cmd_type(struct cmd_ctx *ctx) {
    struct db_entry *e = cmd_lookup_key(ctx, &ctx->argv[1]);
    resp_put_simple(ctx->out, e == NULL ? "none" : cmd_type_name(db_entry_type(e)));
}

/* Collects matching keys (borrowed pointers; the db is not changed until they are sent). */
struct cmd_key_list {
    struct buf items; /* struct resp_arg[] */
    const struct resp_arg *pattern;
    uint64_t now_ms;
    int type; /* 0 = any */
    size_t count;
};

static void cmd_key_list_visit(void *ctx, struct db_entry *e) {
    struct cmd_key_list *list = ctx;
    if (db_entry_expired(e, list->now_ms)) return;
    if (list->type != 0 && (int)db_entry_type(e) != list->type) return;
    struct resp_arg key;
    key.data = db_entry_key(e, &key.bytes);
    if (list->pattern != NULL &&
        !util_glob_match(list->pattern->data, list->pattern->bytes, key.data, key.bytes)) {
        return;
    }
    buf_append(&list->items, &key, sizeof(key));
    list->count++;
}

static void cmd_key_list_reply(struct cmd_ctx *ctx, struct cmd_key_list *list) {
    resp_put_array(ctx->out, list->count);
    const struct resp_arg *keys = (const struct resp_arg *)list->items.data;
    for (size_t i = 0; i < list->count; i++) resp_put_bulk(ctx->out, keys[i].data, keys[i].bytes);
    buf_deinit(&list->items);
}

void cmd_keys(struct cmd_ctx *ctx) {
    struct cmd_key_list list = {.pattern = &ctx->argv[1], .now_ms = ctx->now_ms};
    buf_init(&list.items);
    if (ctx->argv[1].bytes == 1 && ctx->argv[1].data[0] == '*') list.pattern = NULL;
    uint64_t cursor = 0;
    do {
        cursor = db_scan(ctx->db, cursor, cmd_key_list_visit, &list);
    } while (cursor != 0);
    cmd_key_list_reply(ctx, &list);
}

static bool cmd_scan_cursor(const struct resp_arg *arg, uint64_t *cursor) {
    if (arg->bytes == 0 || arg->bytes > 20) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < arg->bytes; i++) {
        uint8_t c = arg->data[i];
        if (c < '0' || c > '9') return false;
        if (v > (UINT64_MAX - (uint64_t)(c - '0')) / 10) return false;
        v = v * 10 + (uint64_t)(c - '0');
    }
    *cursor = v;
    return true;
}

static bool cmd_scan_parse(struct cmd_ctx *ctx, struct cmd_key_list *list, int64_t *count) {
    for (uint32_t i = 2; i < ctx->argc; i++) {
        const struct resp_arg *a = &ctx->argv[i];
        bool has_value = i + 1 < ctx->argc;
        if (cmd_arg_is(a, "match") && has_value) {
            list->pattern = &ctx->argv[++i];
        } else if (cmd_arg_is(a, "count") && has_value) {
            if (!cmd_arg_i64(&ctx->argv[++i], count)) {
                cmd_reply_not_integer(ctx);
                return false;
            }
            if (*count < 1) goto syntax;
        } else if (cmd_arg_is(a, "type") && has_value) {
            const struct resp_arg *t = &ctx->argv[++i];
            list->type = cmd_arg_is(t, "string") ? VALUE_STRING
                         : cmd_arg_is(t, "set")  ? VALUE_SET
                         : cmd_arg_is(t, "hash") ? VALUE_HASH
                                                 : -1;
        } else {
            goto syntax;
        }
    }
    return true;
syntax:
    cmd_reply_syntax(ctx);
    return false;
}

void cmd_scan(struct cmd_ctx *ctx) {
    uint64_t cursor;
    if (!cmd_scan_cursor(&ctx->argv[1], &cursor)) {
        resp_put_error(ctx->out, "ERR invalid cursor");
        return;
    }
    struct cmd_key_list list = {.now_ms = ctx->now_ms};
    int64_t count = CMD_SCAN_COUNT_DEFAULT;
    if (!cmd_scan_parse(ctx, &list, &count)) return;
    buf_init(&list.items);
    int64_t budget = count * CMD_SCAN_BUCKETS_PER_COUNT;
    do {
        cursor = db_scan(ctx->db, cursor, cmd_key_list_visit, &list);
    } while (cursor != 0 && (int64_t)list.count < count && --budget > 0);
    resp_put_array(ctx->out, 2);
    resp_put_bulk_i64(ctx->out, (int64_t)cursor);
    cmd_key_list_reply(ctx, &list);
}

void cmd_dbsize(struct cmd_ctx *ctx) {
    resp_put_int(ctx->out, (int64_t)db_count(ctx->db));
}

void cmd_flushall(struct cmd_ctx *ctx) {
    if (ctx->argc > 2 || (ctx->argc == 2 && !cmd_arg_is(&ctx->argv[1], "sync") &&
                          !cmd_arg_is(&ctx->argv[1], "async"))) {
        cmd_reply_syntax(ctx);
        return;
    }
    size_t from = ctx->ops->len;
    op_put_flushall(ctx->ops);
    cmd_apply(ctx, from);
    resp_put_simple(ctx->out, "OK");
}

enum cmd_expire_flag { CMD_EXPIRE_NX = 1, CMD_EXPIRE_XX = 2, CMD_EXPIRE_GT = 4, CMD_EXPIRE_LT = 8 };

static bool cmd_expire_flags(struct cmd_ctx *ctx, int *flags) {
    *flags = 0;
    for (uint32_t i = 3; i < ctx->argc; i++) {
        const struct resp_arg *a = &ctx->argv[i];
        if (cmd_arg_is(a, "nx"))
            *flags |= CMD_EXPIRE_NX;
        else if (cmd_arg_is(a, "xx"))
            *flags |= CMD_EXPIRE_XX;
        else if (cmd_arg_is(a, "gt"))
            *flags |= CMD_EXPIRE_GT;
        else if (cmd_arg_is(a, "lt"))
            *flags |= CMD_EXPIRE_LT;
        else {
            resp_put_errorf(ctx->out, "ERR Unsupported option %.*s", (int)a->bytes,
                            (const char *)a->data);
            return false;
        }
    }
    if ((*flags & CMD_EXPIRE_NX) && (*flags & ~CMD_EXPIRE_NX)) {
        resp_put_error(ctx->out,
                       "ERR NX and XX, GT or LT options at the same time are not compatible");
        return false;
    }
    if ((*flags & CMD_EXPIRE_GT) && (*flags & CMD_EXPIRE_LT)) {
        resp_put_error(ctx->out, "ERR GT and LT options at the same time are not compatible");
        return false;
    }
    return true;
}

/* Whether the flags let `next` replace `current` (no expiry counts as infinite). */
static bool cmd_expire_allowed(int flags, uint64_t current, int64_t next) {
    bool has = current != DB_NO_EXPIRE;
    if ((flags & CMD_EXPIRE_NX) && has) return false;
    if ((flags & CMD_EXPIRE_XX) && !has) return false;
    if ((flags & CMD_EXPIRE_GT) && (!has || next <= (int64_t)current)) return false;
    if ((flags & CMD_EXPIRE_LT) && has && next >= (int64_t)current) return false;
    return true;
}

static void cmd_expire_generic(struct cmd_ctx *ctx, uint64_t unit_ms, bool absolute) {
    int flags;
    int64_t expire_ms;
    if (!cmd_parse_expire(ctx, &ctx->argv[2], unit_ms, absolute, &expire_ms)) return;
    if (!cmd_expire_flags(ctx, &flags)) return;
    struct db_entry *e = cmd_lookup_key(ctx, &ctx->argv[1]);
    if (e == NULL || !cmd_expire_allowed(flags, db_entry_expire_ms(e), expire_ms)) {
        resp_put_int(ctx->out, 0);
        return;
    }
    size_t from = ctx->ops->len;
    const struct resp_arg *key = &ctx->argv[1];
    /* A time in the past deletes the key at once, as Redis does. */
    if (expire_ms <= (int64_t)ctx->now_ms)
        op_put_del(ctx->ops, key->data, key->bytes);
    else
        op_put_expire(ctx->ops, key->data, key->bytes, (uint64_t)expire_ms);
    cmd_apply(ctx, from);
    resp_put_int(ctx->out, 1);
}

void cmd_expire(struct cmd_ctx *ctx) {
    cmd_expire_generic(ctx, 1000, false);
}
void cmd_pexpire(struct cmd_ctx *ctx) {
    cmd_expire_generic(ctx, 1, false);
}
void cmd_expireat(struct cmd_ctx *ctx) {
    cmd_expire_generic(ctx, 1000, true);
}
void cmd_pexpireat(struct cmd_ctx *ctx) {
    cmd_expire_generic(ctx, 1, true);
}

/* Replies -2 (no key), -1 (no expiry) or f(expiry). */
static void cmd_ttl_generic(struct cmd_ctx *ctx, bool remaining, uint64_t unit_ms) {
    struct db_entry *e = cmd_lookup_key(ctx, &ctx->argv[1]);
    if (e == NULL) {
        resp_put_int(ctx->out, -2);
        return;
    }
    uint64_t expire_ms = db_entry_expire_ms(e);
    if (expire_ms == DB_NO_EXPIRE) {
        resp_put_int(ctx->out, -1);
        return;
    }
    ASSERT(expire_ms > ctx->now_ms);
    if (!remaining) {
        resp_put_int(ctx->out, (int64_t)(expire_ms / unit_ms));
        return;
    }
    uint64_t left = expire_ms - ctx->now_ms;
    resp_put_int(ctx->out, (int64_t)((left + unit_ms / 2) / unit_ms));
}

void cmd_ttl(struct cmd_ctx *ctx) {
    cmd_ttl_generic(ctx, true, 1000);
}
void cmd_pttl(struct cmd_ctx *ctx) {
    cmd_ttl_generic(ctx, true, 1);
}
void cmd_expiretime(struct cmd_ctx *ctx) {
    cmd_ttl_generic(ctx, false, 1000);
}
void cmd_pexpiretime(struct cmd_ctx *ctx) {
    cmd_ttl_generic(ctx, false, 1);
}

void cmd_persist(struct cmd_ctx *ctx) {
    struct db_entry *e = cmd_lookup_key(ctx, &ctx->argv[1]);
    if (e == NULL || db_entry_expire_ms(e) == DB_NO_EXPIRE) {
        resp_put_int(ctx->out, 0);
        return;
    }
    size_t from = ctx->ops->len;
    op_put_expire(ctx->ops, ctx->argv[1].data, ctx->argv[1].bytes, DB_NO_EXPIRE);
    cmd_apply(ctx, from);
    resp_put_int(ctx->out, 1);
}
