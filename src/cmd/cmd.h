/*
 * The command table and the data commands (keys, strings, counters, sets, hashes).
 *
 * A data command reads and changes the db and appends its reply to ctx->out. A write
 * command also appends, to ctx->ops, the ops (op.h) that reproduce exactly the change it
 * made; the caller logs them before the reply may be released. Commands never see
 * connections, sockets or the clock: the time comes in ctx->now_ms. Connection, server and
 * transaction commands are in the table too (for COMMAND, arity and flags) but carry a
 * core_op instead of fn: the core runs them itself.
 */
#ifndef CAPKV_CMD_CMD_H
#define CAPKV_CMD_CMD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "data/db.h"
#include "proto/resp.h"

/* Redis's largest string (proto-max-bulk-len) and its error. */
#define CMD_STRING_BYTES_MAX (512ull * 1024 * 1024)

struct cmd_ctx {
    struct db *db;
    uint64_t now_ms;             /* wall clock, Unix milliseconds */
    int proto;                   /* 2 or 3 */
    uint32_t argc;               /* argv[0] is the command name */
    const struct resp_arg *argv; /* borrowed */
    struct buf *out;             /* reply, appended */
    struct buf *ops;             /* write commands append their ops */
    uint64_t string_bytes_max;   /* longest value a command may create */
    bool readonly; /* a read served outside the log: expired keys are hidden, never deleted */
};

typedef void cmd_fn(struct cmd_ctx *ctx);

enum cmd_flag {
    CMD_WRITE = 1 << 0,    /* may change data: logged, refused when the disk is full */
    CMD_READONLY = 1 << 1, /* reads data */
    CMD_FAST = 1 << 2,
    CMD_ADMIN = 1 << 3,
    CMD_NOAUTH = 1 << 4,  /* allowed before AUTH */
    CMD_NOMULTI = 1 << 5, /* runs at once inside MULTI instead of being queued */
    CMD_NOKEYS = 1 << 6,
};

/* Commands the core runs itself. */
enum cmd_core_op {
    CMD_CORE_NONE = 0,
    CMD_CORE_PING,
    CMD_CORE_ECHO,
    CMD_CORE_HELLO,
    CMD_CORE_AUTH,
    CMD_CORE_SELECT,
    CMD_CORE_QUIT,
    CMD_CORE_RESET,
    CMD_CORE_CLIENT,
    CMD_CORE_COMMAND,
    CMD_CORE_INFO,
    CMD_CORE_CONFIG,
    CMD_CORE_MULTI,
    CMD_CORE_EXEC,
    CMD_CORE_DISCARD,
    CMD_CORE_WATCH,
    CMD_CORE_UNWATCH,
    CMD_CORE_TIME,
    CMD_CORE_LASTSAVE,
    CMD_CORE_BGSAVE,
    CMD_CORE_SAVE,
    CMD_CORE_WAIT,
    CMD_CORE_CLUSTER,
    CMD_CORE_CONSISTENCY,
    CMD_CORE_QUORUM,
    CMD_CORE_SESSION,
    CMD_CORE_FAULT,
};

struct cmd_spec {
    const char *name; /* lower case */
    cmd_fn *fn;       /* data commands */
    enum cmd_core_op core_op;
    int arity; /* as Redis: N exactly N arguments (name included), -N at least N */
    uint32_t flags;
    int key_first; /* 1-based argument positions of keys, 0 when none; key_last -1 = last */
    int key_last;
    int key_step;
    const char *group;   /* COMMAND DOCS group: "string", "generic", ... */
    const char *summary; /* one line for COMMAND DOCS */
    const char *since;   /* Redis version that introduced it */
};

/* Case-insensitive lookup; returns a static entry or NULL. name borrowed. */
const struct cmd_spec *cmd_lookup(const uint8_t *name, size_t bytes);
/* The whole table (static), sorted by name. */
const struct cmd_spec *cmd_table(size_t *count);
/* Whether argc fits spec's arity. */
bool cmd_arity_ok(const struct cmd_spec *spec, uint32_t argc);

/* Shared by the command files. */
bool cmd_arg_is(const struct resp_arg *arg, const char *word); /* case-insensitive */
bool cmd_arg_i64(const struct resp_arg *arg, int64_t *out);

/* A subcommand and its arity as Redis counts it (the command's name included). */
struct cmd_sub {
    const char *name;
    int arity;
};

/* Finds argv[1] among subs; on an unknown name or a wrong argument count appends Redis 7's
 * error to out ("unknown subcommand 'x'. Try CLIENT HELP." / "wrong number of arguments
 * for 'client|setname' command") and returns -1. */
int cmd_subcommand(struct buf *out, const char *command, const struct cmd_sub *subs, size_t count,
                   uint32_t argc, const struct resp_arg *argv);
/* Finds key for reading: expired keys are deleted (and the delete logged) and NULL. */
struct db_entry *cmd_lookup_key(struct cmd_ctx *ctx, const struct resp_arg *key);
/* As cmd_lookup_key but replies WRONGTYPE and returns false when the type differs;
 * *e is NULL when the key is missing. */
bool cmd_lookup_typed(struct cmd_ctx *ctx, const struct resp_arg *key, enum value_type type,
                      struct db_entry **e);
void cmd_reply_wrongtype(struct cmd_ctx *ctx);
void cmd_reply_not_integer(struct cmd_ctx *ctx);
void cmd_reply_syntax(struct cmd_ctx *ctx);

/* Handlers, by file. */
cmd_fn cmd_get, cmd_set, cmd_setnx, cmd_setex, cmd_psetex, cmd_mget, cmd_mset, cmd_msetnx,
    cmd_append, cmd_strlen, cmd_getdel, cmd_getset, cmd_getex; /* strings.c */
cmd_fn cmd_incr, cmd_decr, cmd_incrby, cmd_decrby;             /* counters.c */
cmd_fn cmd_del, cmd_exists, cmd_type, cmd_keys, cmd_scan, cmd_dbsize, cmd_expire, cmd_pexpire,
    cmd_expireat, cmd_pexpireat, cmd_ttl, cmd_pttl, cmd_persist, cmd_expiretime, cmd_pexpiretime,
    cmd_flushall;                                                                  /* keys.c */
cmd_fn cmd_sadd, cmd_srem, cmd_smembers, cmd_sismember, cmd_smismember, cmd_scard; /* sets */
cmd_fn cmd_hset, cmd_hsetnx, cmd_hget, cmd_hmget, cmd_hdel, cmd_hgetall, cmd_hlen, cmd_hincrby,
    cmd_hexists, cmd_hkeys, cmd_hvals, cmd_hstrlen; /* hashes.c */
cmd_fn cmd_vget; /* util.c: VGET and VSET on a CP key (an error: they are AP commands) */

#endif
