/*
 * The command table: one row per command, sorted by name (checked at first lookup),
 * with Redis's arity, flags and key positions so COMMAND replies as clients expect.
 */
#include <string.h>
#include <strings.h>

#include "base/assert.h"
#include "cmd/cmd.h"

#define W CMD_WRITE
#define R CMD_READONLY
#define F CMD_FAST
#define A CMD_ADMIN
#define NA CMD_NOAUTH
#define NM CMD_NOMULTI
#define NK CMD_NOKEYS

/* name, fn, core_op, arity, flags, first, last, step, group, summary, since */
static const struct cmd_spec cmd_specs[] = {
    {"append", cmd_append, 0, 3, W, 1, 1, 1, "string", "Appends a string to a key.", "2.0.0"},
    {"auth", NULL, CMD_CORE_AUTH, -2, NA | F | NK, 0, 0, 0, "connection",
     "Authenticates the connection.", "1.0.0"},
    {"bgsave", NULL, CMD_CORE_BGSAVE, -1, A | NK, 0, 0, 0, "server",
     "Starts a snapshot of the data in the background.", "1.0.0"},
    {"client", NULL, CMD_CORE_CLIENT, -2, NK, 0, 0, 0, "connection",
     "Inspects and names client connections.", "2.4.0"},
    {"cluster", NULL, CMD_CORE_CLUSTER, -2, NK, 0, 0, 0, "cluster",
     "Cluster state and leadership transfer (CLUSTER INFO | TRANSFER id).", "3.0.0"},
    {"command", NULL, CMD_CORE_COMMAND, -1, NK, 0, 0, 0, "server",
     "Returns details about commands.", "2.8.13"},
    {"config", NULL, CMD_CORE_CONFIG, -2, A | NK, 0, 0, 0, "server",
     "Reads the node's configuration.", "2.0.0"},
    {"consistency", NULL, CMD_CORE_CONSISTENCY, -1, F | NK, 0, 0, 0, "connection",
     "Sets this connection's read level: linearizable, lease, stale or default.", "0.1.0"},
    {"dbsize", cmd_dbsize, 0, 1, R | F | NK, 0, 0, 0, "server", "Returns the number of keys.",
     "1.0.0"},
    {"decr", cmd_decr, 0, 2, W | F, 1, 1, 1, "string", "Decrements an integer by one.", "1.0.0"},
    {"decrby", cmd_decrby, 0, 3, W | F, 1, 1, 1, "string", "Decrements an integer.", "1.0.0"},
    {"del", cmd_del, 0, -2, W, 1, -1, 1, "generic", "Deletes keys.", "1.0.0"},
    {"discard", NULL, CMD_CORE_DISCARD, 1, F | NM | NK, 0, 0, 0, "transactions",
     "Discards a transaction.", "2.0.0"},
    {"echo", NULL, CMD_CORE_ECHO, 2, F | NK, 0, 0, 0, "connection", "Returns the message.",
     "1.0.0"},
    {"exec", NULL, CMD_CORE_EXEC, 1, NM | NK, 0, 0, 0, "transactions",
     "Executes the commands of a transaction.", "1.2.0"},
    {"exists", cmd_exists, 0, -2, R | F, 1, -1, 1, "generic", "Counts existing keys.", "1.0.0"},
    {"expire", cmd_expire, 0, -3, W | F, 1, 1, 1, "generic",
     "Sets a key's time to live in "
     "seconds.",
     "1.0.0"},
    {"expireat", cmd_expireat, 0, -3, W | F, 1, 1, 1, "generic",
     "Sets a key's expiry as a Unix time in seconds.", "1.2.0"},
    {"expiretime", cmd_expiretime, 0, 2, R | F, 1, 1, 1, "generic",
     "Returns a key's expiry as a Unix time in seconds.", "7.0.0"},
    {"fault", NULL, CMD_CORE_FAULT, -2, A | NK, 0, 0, 0, "server",
     "Injects faults: PARTITION, HEAL, DROP, DELAY, CLOCK, PAUSE (--enable-faults).", "0.1.0"},
    {"flushall", cmd_flushall, 0, -1, W | NK, 0, 0, 0, "server", "Removes every key.", "1.0.0"},
    {"flushdb", cmd_flushall, 0, -1, W | NK, 0, 0, 0, "server", "Removes every key.", "1.0.0"},
    {"get", cmd_get, 0, 2, R | F, 1, 1, 1, "string", "Returns a key's string value.", "1.0.0"},
    {"getdel", cmd_getdel, 0, 2, W | F, 1, 1, 1, "string", "Returns a key's value and deletes it.",
     "6.2.0"},
    {"getex", cmd_getex, 0, -2, W | F, 1, 1, 1, "string",
     "Returns a key's value and changes its expiry.", "6.2.0"},
    {"getset", cmd_getset, 0, 3, W | F, 1, 1, 1, "string", "Sets a value and returns the old one.",
     "1.0.0"},
    {"hdel", cmd_hdel, 0, -3, W | F, 1, 1, 1, "hash", "Deletes hash fields.", "2.0.0"},
    {"hello", NULL, CMD_CORE_HELLO, -1, NA | F | NK, 0, 0, 0, "connection",
     "Handshakes: protocol version, authentication, name.", "6.0.0"},
    {"hexists", cmd_hexists, 0, 3, R | F, 1, 1, 1, "hash", "Tests a hash field.", "2.0.0"},
    {"hget", cmd_hget, 0, 3, R | F, 1, 1, 1, "hash", "Returns a hash field's value.", "2.0.0"},
    {"hgetall", cmd_hgetall, 0, 2, R, 1, 1, 1, "hash", "Returns all fields and values.", "2.0.0"},
    {"hincrby", cmd_hincrby, 0, 4, W | F, 1, 1, 1, "hash", "Increments a hash field.", "2.0.0"},
    {"hkeys", cmd_hkeys, 0, 2, R, 1, 1, 1, "hash", "Returns all fields of a hash.", "2.0.0"},
    {"hlen", cmd_hlen, 0, 2, R | F, 1, 1, 1, "hash", "Returns the number of fields.", "2.0.0"},
    {"hmget", cmd_hmget, 0, -3, R | F, 1, 1, 1, "hash", "Returns several fields' values.", "2.0.0"},
    {"hmset", cmd_hset, 0, -4, W | F, 1, 1, 1, "hash", "Sets hash fields (deprecated form).",
     "2.0.0"},
    {"hset", cmd_hset, 0, -4, W | F, 1, 1, 1, "hash", "Sets hash fields.", "2.0.0"},
    {"hsetnx", cmd_hsetnx, 0, 4, W | F, 1, 1, 1, "hash", "Sets a field if it is new.", "2.0.0"},
    {"hstrlen", cmd_hstrlen, 0, 3, R | F, 1, 1, 1, "hash", "Returns a field value's length.",
     "3.2.0"},
    {"hvals", cmd_hvals, 0, 2, R, 1, 1, 1, "hash", "Returns all values of a hash.", "2.0.0"},
    {"incr", cmd_incr, 0, 2, W | F, 1, 1, 1, "string", "Increments an integer by one.", "1.0.0"},
    {"incrby", cmd_incrby, 0, 3, W | F, 1, 1, 1, "string", "Increments an integer.", "1.0.0"},
    {"info", NULL, CMD_CORE_INFO, -1, NK, 0, 0, 0, "server",
     "Returns information and statistics about the node.", "1.0.0"},
    {"keys", cmd_keys, 0, 2, R | NK, 0, 0, 0, "generic", "Returns keys matching a pattern.",
     "1.0.0"},
    {"lastsave", NULL, CMD_CORE_LASTSAVE, 1, F | NK, 0, 0, 0, "server",
     "Returns the Unix time of the last snapshot.", "1.0.0"},
    {"mget", cmd_mget, 0, -2, R | F, 1, -1, 1, "string", "Returns several values.", "1.0.0"},
    {"mset", cmd_mset, 0, -3, W, 1, -1, 2, "string", "Sets several keys.", "1.0.1"},
    {"msetnx", cmd_msetnx, 0, -3, W, 1, -1, 2, "string", "Sets several keys only if none exists.",
     "1.0.1"},
    {"multi", NULL, CMD_CORE_MULTI, 1, F | NM | NK, 0, 0, 0, "transactions",
     "Starts a transaction.", "1.2.0"},
    {"persist", cmd_persist, 0, 2, W | F, 1, 1, 1, "generic", "Removes a key's expiry.", "2.2.0"},
    {"pexpire", cmd_pexpire, 0, -3, W | F, 1, 1, 1, "generic",
     "Sets a key's time to live in milliseconds.", "2.6.0"},
    {"pexpireat", cmd_pexpireat, 0, -3, W | F, 1, 1, 1, "generic",
     "Sets a key's expiry as a Unix time in milliseconds.", "2.6.0"},
    {"pexpiretime", cmd_pexpiretime, 0, 2, R | F, 1, 1, 1, "generic",
     "Returns a key's expiry as a Unix time in milliseconds.", "7.0.0"},
    {"ping", NULL, CMD_CORE_PING, -1, F | NK, 0, 0, 0, "connection", "Returns PONG.", "1.0.0"},
    {"psetex", cmd_psetex, 0, 4, W, 1, 1, 1, "string",
     "Sets a value with a time to live in milliseconds.", "2.6.0"},
    {"pttl", cmd_pttl, 0, 2, R | F, 1, 1, 1, "generic",
     "Returns a key's time to live in milliseconds.", "2.6.0"},
    {"quit", NULL, CMD_CORE_QUIT, -1, NA | F | NM | NK, 0, 0, 0, "connection",
     "Closes the connection.", "1.0.0"},
    {"quorum", NULL, CMD_CORE_QUORUM, -1, F | NK, 0, 0, 0, "connection",
     "Sets this connection's w and r for AP keys: one, quorum, all or default.", "0.1.0"},
    {"reset", NULL, CMD_CORE_RESET, 1, NA | F | NM | NK, 0, 0, 0, "connection",
     "Resets the connection.", "6.2.0"},
    {"sadd", cmd_sadd, 0, -3, W | F, 1, 1, 1, "set", "Adds members to a set.", "1.0.0"},
    {"save", NULL, CMD_CORE_SAVE, 1, A | NK, 0, 0, 0, "server",
     "Writes a snapshot of the data now.", "1.0.0"},
    {"scan", cmd_scan, 0, -2, R | NK, 0, 0, 0, "generic", "Iterates over keys.", "2.8.0"},
    {"scard", cmd_scard, 0, 2, R | F, 1, 1, 1, "set", "Returns the number of members.", "1.0.0"},
    {"select", NULL, CMD_CORE_SELECT, 2, F | NK, 0, 0, 0, "connection",
     "Selects database 0 (the only one).", "1.0.0"},
    {"session", NULL, CMD_CORE_SESSION, -2, F | NK, 0, 0, 0, "connection",
     "Read-your-writes across nodes: SESSION TOKEN | RESUME token | END.", "0.1.0"},
    {"set", cmd_set, 0, -3, W, 1, 1, 1, "string",
     "Sets a string value (NX XX GET EX PX EXAT PXAT KEEPTTL IFEQ).", "1.0.0"},
    {"setex", cmd_setex, 0, 4, W, 1, 1, 1, "string", "Sets a value with a time to live in seconds.",
     "2.0.0"},
    {"setnx", cmd_setnx, 0, 3, W | F, 1, 1, 1, "string", "Sets a value if the key is new.",
     "1.0.0"},
    {"sismember", cmd_sismember, 0, 3, R | F, 1, 1, 1, "set", "Tests set membership.", "1.0.0"},
    {"smembers", cmd_smembers, 0, 2, R, 1, 1, 1, "set", "Returns all members.", "1.0.0"},
    {"smismember", cmd_smismember, 0, -3, R | F, 1, 1, 1, "set",
     "Tests membership of several members.", "6.2.0"},
    {"srem", cmd_srem, 0, -3, W | F, 1, 1, 1, "set", "Removes members from a set.", "1.0.0"},
    {"strlen", cmd_strlen, 0, 2, R | F, 1, 1, 1, "string", "Returns a value's length.", "2.2.0"},
    {"time", NULL, CMD_CORE_TIME, 1, F | NK, 0, 0, 0, "server", "Returns the node's time.",
     "2.6.0"},
    {"ttl", cmd_ttl, 0, 2, R | F, 1, 1, 1, "generic", "Returns a key's time to live.", "1.0.0"},
    {"type", cmd_type, 0, 2, R | F, 1, 1, 1, "generic", "Returns a key's type.", "1.0.0"},
    {"unlink", cmd_del, 0, -2, W | F, 1, -1, 1, "generic", "Deletes keys.", "4.0.0"},
    {"unwatch", NULL, CMD_CORE_UNWATCH, 1, F | NK, 0, 0, 0, "transactions", "Forgets watched keys.",
     "2.2.0"},
    {"vget", cmd_vget, 0, 2, R | F, 1, 1, 1, "string",
     "AP keys with conflict = siblings: returns [context, [value, ...]] (every concurrent value).",
     "0.1.0"},
    {"vset", cmd_vget, 0, 4, W | F, 1, 1, 1, "string",
     "AP keys with conflict = siblings: VSET key context value replaces what context has seen.",
     "0.1.0"},
    {"wait", NULL, CMD_CORE_WAIT, 3, NK, 0, 0, 0, "generic", "Waits for writes to reach replicas.",
     "3.0.0"},
    {"watch", NULL, CMD_CORE_WATCH, -2, F | NM, 1, -1, 1, "transactions",
     "Watches keys for a transaction.", "2.2.0"},
};

/* Lookup: an open-addressing table over the lower-case names, built on first use (the
 * table is static and the build is idempotent, so a race would only build it twice). */
#define CMD_NAME_BYTES_MAX 32
#define CMD_INDEX_SLOTS 256 /* power of two, more than twice the commands */

static bool cmd_table_checked;
static uint8_t cmd_index[CMD_INDEX_SLOTS]; /* position + 1, 0 = empty */

static uint32_t cmd_hash(const char *name, size_t bytes) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < bytes; i++) h = (h ^ (uint8_t)name[i]) * 16777619u;
    return h;
}

static void cmd_table_check(void) {
    size_t count = sizeof(cmd_specs) / sizeof(cmd_specs[0]);
    STATIC_ASSERT(sizeof(cmd_specs) / sizeof(cmd_specs[0]) < CMD_INDEX_SLOTS / 2,
                  "the lookup table needs free slots");
    for (size_t i = 0; i < count; i++) {
        const struct cmd_spec *s = &cmd_specs[i];
        ASSERT((s->fn != NULL) != (s->core_op != CMD_CORE_NONE));
        ASSERT(s->arity != 0);
        ASSERT(strlen(s->name) < CMD_NAME_BYTES_MAX);
        if (i > 0) ASSERT(strcmp(cmd_specs[i - 1].name, s->name) < 0);
        uint32_t slot = cmd_hash(s->name, strlen(s->name)) & (CMD_INDEX_SLOTS - 1);
        while (cmd_index[slot] != 0) slot = (slot + 1) & (CMD_INDEX_SLOTS - 1);
        cmd_index[slot] = (uint8_t)(i + 1);
    }
    cmd_table_checked = true;
}

const struct cmd_spec *cmd_table(size_t *count) {
    if (!cmd_table_checked) cmd_table_check();
    *count = sizeof(cmd_specs) / sizeof(cmd_specs[0]);
    return cmd_specs;
}

const struct cmd_spec *cmd_lookup(const uint8_t *name, size_t bytes) {
    if (!cmd_table_checked) cmd_table_check();
    if (bytes == 0 || bytes >= CMD_NAME_BYTES_MAX) return NULL;
    char lower[CMD_NAME_BYTES_MAX];
    for (size_t i = 0; i < bytes; i++) {
        uint8_t c = name[i];
        lower[i] = (char)((c >= 'A' && c <= 'Z') ? c + 32 : c);
    }
    for (uint32_t slot = cmd_hash(lower, bytes) & (CMD_INDEX_SLOTS - 1);;
         slot = (slot + 1) & (CMD_INDEX_SLOTS - 1)) {
        if (cmd_index[slot] == 0) return NULL;
        const struct cmd_spec *s = &cmd_specs[cmd_index[slot] - 1];
        if (strlen(s->name) == bytes && memcmp(s->name, lower, bytes) == 0) return s;
    }
}

bool cmd_arity_ok(const struct cmd_spec *spec, uint32_t argc) {
    if (spec->arity > 0) return argc == (uint32_t)spec->arity;
    return argc >= (uint32_t)-spec->arity;
}

bool cmd_arg_is(const struct resp_arg *arg, const char *word) {
    size_t n = strlen(word);
    return arg->bytes == n && strncasecmp((const char *)arg->data, word, n) == 0;
}
