/*
 * WATCH on replicated data: Redis's optimistic locking, decided by the leader against the
 * Raft log.
 *
 * Every node keeps, in memory, a table of CP_WATCH_SLOTS indexes: a key hashes to a
 * slot, which holds the last log entry that changed any key of that slot. Keys are noted at
 * apply, from the ops every command list produced (lazy expiry deletions included) and
 * from the keys an expiry sweep deleted; on the leader also at propose time, from the
 * command table's key positions of every write, so that its entries not yet applied count
 * as well. A floor stands for every key: all count as changed at the floor (the applied
 * index at boot or at a snapshot restore, a FLUSHALL). The table costs no allocation per
 * write and may overstate a change (another key of the slot), never miss one: a WATCH may
 * abort in vain, never pass over a change.
 *
 * WATCH runs as a read at the weakest level of its keys (cp_req.c), so the index it
 * records, the applied index where the read was served, is at most the state any later
 * read of those keys on that connection observes. EXEC sends that index and the keys to
 * the leader, which aborts the transaction (null reply) without proposing it when
 *   - it has not applied its own term's first entry: entries of earlier terms may be in
 *     its log unapplied, and it recorded none of them at propose time;
 *   - the watch index is below the floor, or beyond its log (a peer's garbage);
 *   - a watched key changed after the watch index;
 *   - a watched key holds an expiry that has passed or may pass before the transaction's
 *     entry runs: expiry changes a key although no entry names it until a sweep or a lazy
 *     deletion, and those in flight carry times up to ts_max.
 * Otherwise every entry after the watch index up to the end of the leader's log leaves the
 * watched keys alone, and the transaction is appended after them: the log order is final
 * for committed entries, so the check is exact for what commits.
 *
 * Conditions (the trailer of a CMDLIST_IF list, little-endian):
 *   watch_index:u64 key_count:u32 (len:u32 bytes)*key_count cond_bytes:u32
 * where cond_bytes counts the bytes from watch_index to the last key.
 */
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "base/assert.h"
#include "base/util.h"
#include "cmd/op.h"
#include "cp/internal.h"

struct cp_watch {
    uint64_t *slots; /* CP_WATCH_SLOTS: the last change of any key hashed there */
    uint64_t seed;
    uint64_t floor;     /* every key counts as changed at this index */
    uint64_t noted_max; /* the highest index noted */
    uint64_t ts_max;    /* the latest timestamp of an entry this node proposed */
    struct buf args;    /* scratch: decoded arguments */
};

/* A decoded conditions trailer; pointers into the list. */
struct watch_cond {
    uint64_t index;
    uint32_t key_count;
    const uint8_t *keys; /* (len:u32 bytes)* */
    size_t list_bytes;   /* the list without its trailer */
};

struct cp_watch *cp_watch_new(uint64_t hash_seed) {
    struct cp_watch *w = base_calloc(1, sizeof(*w));
    w->slots = base_calloc(CP_WATCH_SLOTS, sizeof(w->slots[0]));
    w->seed = hash_seed ^ 0x3a7c;
    buf_init(&w->args);
    return w;
}

void cp_watch_free(struct cp_watch *w) {
    free(w->slots);
    buf_deinit(&w->args);
    free(w);
}

static size_t watch_slot(const struct cp_watch *w, const uint8_t *key, size_t bytes) {
    return (size_t)(XXH3_64bits_withSeed(key, bytes, w->seed) & (CP_WATCH_SLOTS - 1));
}

/* Every key counts as changed at index (a FLUSHALL): records at or below it are moot. */
static void watch_raise_floor(struct cp_watch *w, uint64_t index) {
    if (index > w->floor) w->floor = index;
    ASSERT(w->floor >= index);
}

void cp_watch_reset(struct cp_watch *w, uint64_t floor) {
    memset(w->slots, 0, CP_WATCH_SLOTS * sizeof(w->slots[0]));
    watch_raise_floor(w, floor);
    if (floor > w->noted_max) w->noted_max = floor;
}

/* Entry index changes key: its slot remembers the newest change of any of its keys. */
static void watch_note(struct cp_watch *w, uint64_t index, const uint8_t *key, size_t bytes) {
    if (index > w->noted_max) w->noted_max = index;
    if (index <= w->floor) return;
    uint64_t *slot = &w->slots[watch_slot(w, key, bytes)];
    if (*slot < index) *slot = index;
}

/* The last entry that may have changed key (another key of its slot, maybe). */
static uint64_t watch_changed_at(const struct cp_watch *w, const uint8_t *key, size_t bytes) {
    uint64_t index = w->slots[watch_slot(w, key, bytes)];
    return index > w->floor ? index : w->floor;
}

struct watch_note_ctx {
    struct cp_watch *w;
    uint64_t index;
};

static void watch_note_op(void *ctx, enum op_kind kind, const uint8_t *key, size_t key_bytes) {
    struct watch_note_ctx *n = ctx;
    if (kind == OP_FLUSHALL) {
        watch_raise_floor(n->w, n->index);
        if (n->index > n->w->noted_max) n->w->noted_max = n->index;
    } else {
        watch_note(n->w, n->index, key, key_bytes);
    }
}

void cp_watch_note_ops(struct cp_watch *w, uint64_t index, const uint8_t *ops, size_t bytes) {
    ASSERT(index > 0);
    struct watch_note_ctx n = {.w = w, .index = index};
    op_each_key(ops, bytes, watch_note_op, &n);
}

void cp_watch_expired(void *ctx, const uint8_t *key, size_t key_bytes) {
    struct cp *cp = ctx;
    cp->stats.expired_keys++;
    watch_note(cp->watch, cp->applied, key, key_bytes);
    cp_snap_deleted(cp, key, key_bytes);
}

static void watch_note_arg(void *ctx, const struct resp_arg *key) {
    struct watch_note_ctx *n = ctx;
    watch_note(n->w, n->index, key->data, key->bytes);
}

/* Notes the keys a write command names (the command table's positions). */
static void watch_note_command(struct cp_watch *w, uint64_t index, uint32_t argc,
                               const struct resp_arg *argv) {
    const struct cmd_spec *spec = cmd_lookup(argv[0].data, argv[0].bytes);
    if (spec == NULL || spec->fn == NULL || !(spec->flags & CMD_WRITE)) return;
    if (!cmd_arity_ok(spec, argc)) return; /* refused when applied: changes nothing */
    if (spec->key_first <= 0) {
        watch_raise_floor(w, index); /* a keyless write: FLUSHALL, FLUSHDB */
        return;
    }
    struct watch_note_ctx n = {.w = w, .index = index};
    keyspace_command_keys(spec, argc, argv, watch_note_arg, &n);
}

void cp_watch_proposed(struct cp *cp, const uint8_t *data, size_t bytes, uint64_t index) {
    struct cp_watch *w = cp->watch;
    if (index > w->noted_max) w->noted_max = index;
    if (bytes < 9) return;
    uint64_t ts = base_load_u64le(data + 1);
    if (ts > w->ts_max) w->ts_max = ts;
    if (data[0] != CP_ENTRY_COMMANDS || bytes < 9 + 5) return;
    const uint8_t *list = data + 9;
    size_t list_bytes = bytes - 9;
    uint32_t count = base_load_u32le(list + 1);
    size_t pos = 5;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t argc;
        if (!cmdlist_next(list, list_bytes, &pos, &w->args, &argc)) return;
        watch_note_command(w, index, argc, (const struct resp_arg *)w->args.data);
    }
}

/* Validates and decodes the trailer of a list from anyone (a peer may send garbage). */
static bool watch_cond_decode(const uint8_t *list, size_t bytes, struct watch_cond *out) {
    if (bytes < 5 + 4 || !(list[0] & CMDLIST_IF)) return false;
    uint32_t cond_bytes = base_load_u32le(list + bytes - 4);
    if (cond_bytes < CMDLIST_COND_HEADER_BYTES || cond_bytes > bytes - 5 - 4) return false;
    const uint8_t *p = list + bytes - 4 - cond_bytes;
    out->index = base_load_u64le(p);
    out->key_count = base_load_u32le(p + 8);
    out->keys = p + CMDLIST_COND_HEADER_BYTES;
    out->list_bytes = bytes - 4 - cond_bytes;
    if (out->key_count > CMDLIST_WATCH_KEYS_MAX) return false;
    size_t pos = CMDLIST_COND_HEADER_BYTES;
    for (uint32_t i = 0; i < out->key_count; i++) {
        if (cond_bytes - pos < 4) return false;
        uint32_t len = base_load_u32le(p + pos);
        if (cond_bytes - pos - 4 < len) return false;
        pos += 4 + (size_t)len;
    }
    return pos == cond_bytes;
}

/* Whether key changes, by expiry, at or before ts, when no entry names it. */
static bool watch_may_expire(struct cp *cp, const uint8_t *key, size_t bytes, uint64_t ts) {
    struct db_entry *e = db_find(cp->db, key, bytes);
    if (e == NULL) return false;
    uint64_t expire_ms = db_entry_expire_ms(e);
    return expire_ms != DB_NO_EXPIRE && expire_ms <= ts;
}

enum cp_watch_verdict cp_watch_check(struct cp *cp, const uint8_t *list, size_t bytes,
                                     size_t *list_bytes) {
    struct cp_watch *w = cp->watch;
    struct watch_cond cond;
    if (!watch_cond_decode(list, bytes, &cond)) return CP_WATCH_MALFORMED;
    *list_bytes = cond.list_bytes;
    ASSERT(*list_bytes >= 5 && *list_bytes < bytes);
    /* The map covers entries below the term's start only once they are applied. */
    uint64_t start = raft_term_start_index(cp->raft);
    if (start == 0 || cp->applied < start) return CP_WATCH_ABORT;
    if (cond.index < w->floor || cond.index > raft_last_index(cp->raft)) {
        return CP_WATCH_ABORT;
    }
    uint64_t now = cp_wall_ms(cp);
    uint64_t ts = now > w->ts_max ? now : w->ts_max;
    const uint8_t *p = cond.keys;
    for (uint32_t i = 0; i < cond.key_count; i++) {
        uint32_t len = base_load_u32le(p);
        if (watch_changed_at(w, p + 4, len) > cond.index) return CP_WATCH_ABORT;
        if (watch_may_expire(cp, p + 4, len, ts)) return CP_WATCH_ABORT;
        p += 4 + (size_t)len;
    }
    return CP_WATCH_PASS;
}
