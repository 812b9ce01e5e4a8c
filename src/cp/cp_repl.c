/*
 * Replication modes of CP keyspaces: when the leader answers a write.
 *
 *   majority  answered once the entry is committed (a majority holds it durably) and
 *             applied. The default; never loses an acknowledged write.
 *   all       answered once applied and durable on every voter. A voter the leader has
 *             not heard from for an election timeout makes the write fail at once with
 *             -NOREPLICAS (nothing written); a voter that stops answering after the write
 *             was proposed makes it answer -TIMEOUT at the request timeout.
 *   leader    answered once the leader's own fsync covers the entry, before any follower
 *             has it: one disk write instead of a round trip. If that leader then fails,
 *             the write can be lost although it was acknowledged (counted in INFO as
 *             replication_leader_acked_lost when this node sees it happen).
 *
 * A leader-mode reply must be computed before the entry is applied. The leader runs the
 * command on an overlay: a small db holding the leader-mode keys that entries still in
 * flight (proposed, not yet applied) touch, as those entries left them. A key enters the
 * overlay as a copy from the applied db when no entry in flight touches it, so the overlay
 * equals what the applied db will hold once everything in flight is applied. When that
 * cannot be known (the key is touched by an entry in flight that did not run on the
 * overlay: one from an earlier term, a FLUSHALL, or one proposed while another such entry
 * was in flight), the write waits for its commit as in majority mode. When the entry is
 * applied, the real reply is compared with the early one; a difference is counted
 * (replication_leader_mismatches) and should never happen.
 *
 * In-flight records (spec.inflight, consumed as their entries are applied): index:u64
 * executed:u8 keyless:u8 count:u32, then count times len:u32 key bytes; in index order.
 */
#include <stdio.h>
#include <string.h>

#include "base/assert.h"
#include "base/util.h"
#include "cmd/op.h"
#include "cp/internal.h"

#define SPEC_RECORD_HEADER 14

static enum keyspace_replication cp_key_mode(const struct cp *cp, const uint8_t *key,
                                             size_t bytes) {
    const struct keyspace *ks =
        keyspace_find(cp->config.keyspaces, cp->config.keyspace_count, key, bytes);
    return ks != NULL && ks->replication != 0 ? ks->replication : KEYSPACE_REPLICATION_MAJORITY;
}

/* How strongly a mode protects a write: a list takes its strongest key's mode. */
static int cp_mode_rank(enum keyspace_replication mode) {
    switch (mode) {
    case KEYSPACE_REPLICATION_LEADER:
        return 0;
    case KEYSPACE_REPLICATION_ALL:
        return 2;
    default:
        return 1;
    }
}

static enum keyspace_replication cp_strongest_mode(const struct cp *cp) {
    enum keyspace_replication mode = KEYSPACE_REPLICATION_MAJORITY;
    for (uint32_t i = 0; i < cp->config.keyspace_count; i++) {
        if (cp->config.keyspaces[i].replication == KEYSPACE_REPLICATION_ALL) {
            mode = KEYSPACE_REPLICATION_ALL;
        }
    }
    return mode;
}

bool cp_spec_enabled(const struct cp *cp) {
    for (uint32_t i = 0; i < cp->config.keyspace_count; i++) {
        if (cp->config.keyspaces[i].replication == KEYSPACE_REPLICATION_LEADER) return true;
    }
    return false;
}

struct cp_mode_scan {
    const struct cp *cp;
    struct cp_list_mode *out;
    struct buf *keys; /* count:u32 then (len:u32 bytes)* of leader-mode keys, or NULL */
    bool writing;     /* the command being scanned writes */
};

static void cp_mode_key(void *ctx, const struct resp_arg *key) {
    struct cp_mode_scan *s = ctx;
    enum keyspace_replication mode = cp_key_mode(s->cp, key->data, key->bytes);
    if (s->writing) {
        if (!s->out->any_key || cp_mode_rank(mode) > cp_mode_rank(s->out->mode))
            s->out->mode = mode;
        s->out->any_key = true;
    }
    if (mode != KEYSPACE_REPLICATION_LEADER) {
        s->out->speculable = false; /* its value may be changed by entries not on the overlay */
        return;
    }
    s->out->leader_keys = true;
    if (s->keys == NULL) return;
    base_store_u32le(s->keys->data, base_load_u32le(s->keys->data) + 1);
    buf_append_u32le(s->keys, (uint32_t)key->bytes);
    buf_append(s->keys, key->data, key->bytes);
}

/* Commands whose reply lists a set or hash in its table's order: the overlay's copy is
 * laid out differently from the applied db, so their early reply could differ. */
static bool cp_reply_is_ordered(const struct cmd_spec *spec) {
    static const char *const names[] = {"smembers", "hgetall", "hkeys", "hvals"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strcmp(spec->name, names[i]) == 0) return true;
    return false;
}

/* What a command list asks of replication. Keys are scanned in reads too: a transaction
 * can run on the overlay only if every key it names is a leader-mode one (the overlay
 * follows nothing else) and no command of it is keyless (DBSIZE, FLUSHALL...). */
bool cp_list_mode(struct cp *cp, const uint8_t *list, size_t bytes, struct cp_list_mode *out,
                  struct buf *keys) {
    memset(out, 0, sizeof(*out));
    out->mode = KEYSPACE_REPLICATION_MAJORITY;
    out->speculable = true;
    if (keys != NULL) {
        buf_clear(keys);
        buf_append_u32le(keys, 0);
    }
    struct cp_mode_scan scan = {.cp = cp, .out = out, .keys = keys};
    struct buf args;
    buf_init(&args);
    uint32_t count = base_load_u32le(list + 1);
    size_t pos = 5;
    bool ok = true;
    for (uint32_t i = 0; i < count && ok; i++) {
        uint32_t argc;
        ok = cmdlist_next(list, bytes, &pos, &args, &argc);
        if (!ok) break;
        const struct resp_arg *argv = (const struct resp_arg *)args.data;
        const struct cmd_spec *spec = cmd_lookup(argv[0].data, argv[0].bytes);
        if (spec == NULL) continue;
        scan.writing = (spec->flags & CMD_WRITE) != 0;
        out->writes = out->writes || scan.writing;
        if (cp_reply_is_ordered(spec)) out->speculable = false;
        if (spec->key_first <= 0 && spec->fn != NULL) {
            out->speculable = false;
            if (scan.writing) out->keyless = true;
        }
        keyspace_command_keys(spec, argc, argv, cp_mode_key, &scan);
    }
    buf_deinit(&args);
    if (out->keyless) {
        enum keyspace_replication strongest = cp_strongest_mode(cp);
        if (cp_mode_rank(strongest) > cp_mode_rank(out->mode) || !out->any_key)
            out->mode = strongest;
        out->leader_keys = out->leader_keys || cp_spec_enabled(cp);
    }
    out->speculable = out->speculable && out->writes && ok;
    return ok;
}

/* replication = all: the voters the leader has not heard from lately, in text. */
bool cp_all_unreachable(struct cp *cp, char *text, size_t text_bytes) {
    const struct raft_config *config = raft_config(cp->raft);
    uint64_t limit =
        cp->config.election_timeout_ms_min != 0 ? cp->config.election_timeout_ms_min : 150;
    size_t used = 0;
    text[0] = '\0';
    for (uint32_t i = 0; i < config->count; i++) {
        uint32_t id = config->servers[i].id;
        if (id == cp->config.id || !config->servers[i].voter) continue;
        uint64_t quiet = raft_peer_quiet_ms(cp->raft, id);
        if (quiet < limit) continue;
        int n = quiet == UINT64_MAX
                    ? snprintf(text + used, text_bytes - used, "%svoter %u (never heard)",
                               used ? ", " : "", id)
                    : snprintf(text + used, text_bytes - used, "%svoter %u (silent %llu ms)",
                               used ? ", " : "", id, (unsigned long long)quiet);
        if (n > 0 && (size_t)n < text_bytes - used) used += (size_t)n;
    }
    return used > 0;
}

/* replication = all: whether every voter holds index durably. */
bool cp_all_hold(struct cp *cp, uint64_t index) {
    const struct raft_config *config = raft_config(cp->raft);
    if (raft_persisted_index(cp->raft) < index) return false;
    for (uint32_t i = 0; i < config->count; i++) {
        uint32_t id = config->servers[i].id;
        if (id == cp->config.id || !config->servers[i].voter) continue;
        if (raft_match_index(cp->raft, id) < index) return false;
    }
    return true;
}

/* --- the leader-mode overlay ---------------------------------------------------------- */

struct spec_record {
    uint64_t index;
    bool executed;
    bool keyless;
    uint32_t count;
    const uint8_t *keys; /* (len:u32 bytes)* */
    size_t bytes;        /* the whole record */
};

static void spec_record_at(const struct cp_spec *s, size_t pos, struct spec_record *r) {
    const uint8_t *p = s->inflight.data + pos;
    r->index = base_load_u64le(p);
    r->executed = p[8] != 0;
    r->keyless = p[9] != 0;
    r->count = base_load_u32le(p + 10);
    r->keys = p + SPEC_RECORD_HEADER;
    size_t at = SPEC_RECORD_HEADER;
    for (uint32_t i = 0; i < r->count; i++) at += 4 + base_load_u32le(p + at);
    r->bytes = at;
}

static bool spec_record_has(const struct spec_record *r, const uint8_t *key, size_t bytes) {
    const uint8_t *p = r->keys;
    for (uint32_t i = 0; i < r->count; i++) {
        uint32_t len = base_load_u32le(p);
        if (len == bytes && memcmp(p + 4, key, bytes) == 0) return true;
        p += 4 + len;
    }
    return false;
}

enum spec_touch { SPEC_UNTOUCHED, SPEC_TRACKED, SPEC_BLOCKED };

/* How the entries in flight from position `from` touch key. */
static enum spec_touch spec_touch(const struct cp_spec *s, size_t from, const uint8_t *key,
                                  size_t bytes) {
    enum spec_touch t = SPEC_UNTOUCHED;
    for (size_t pos = from; pos < s->inflight.len;) {
        struct spec_record r;
        spec_record_at(s, pos, &r);
        pos += r.bytes;
        if (r.keyless && !r.executed) return SPEC_BLOCKED;
        if (!spec_record_has(&r, key, bytes)) continue;
        if (!r.executed) return SPEC_BLOCKED;
        t = SPEC_TRACKED;
    }
    return t;
}

void cp_spec_init(struct cp_spec *s) {
    memset(s, 0, sizeof(*s));
    buf_init(&s->inflight);
    buf_init(&s->check);
    buf_init(&s->copy);
    buf_init(&s->keys);
}

void cp_spec_deinit(struct cp_spec *s) {
    if (s->overlay != NULL) db_free(s->overlay);
    buf_deinit(&s->inflight);
    buf_deinit(&s->check);
    buf_deinit(&s->copy);
    buf_deinit(&s->keys);
}

/* A new term (or a first proposal): entries already in the log ran on no overlay. */
static void spec_sync(struct cp *cp) {
    struct cp_spec *s = &cp->spec;
    uint64_t term = raft_term(cp->raft);
    if (s->term == term) return;
    if (s->overlay == NULL) s->overlay = db_new(cp->config.hash_seed ^ 0x5bec);
    db_clear(s->overlay);
    buf_clear(&s->inflight);
    s->term = term;
    s->blocked_until = raft_last_index(cp->raft);
}

/* Copies key from the applied db into the overlay (or leaves it absent there). */
static void spec_copy_in(struct cp *cp, const uint8_t *key, size_t bytes) {
    struct cp_spec *s = &cp->spec;
    db_delete(s->overlay, key, bytes);
    struct db_entry *e = db_find(cp->db, key, bytes);
    if (e == NULL) return;
    buf_clear(&s->copy);
    op_put_entry(&s->copy, e);
    struct errmsg msg;
    int rc = op_apply(s->overlay, s->copy.data, s->copy.len, &msg);
    ASSERT(rc == 0);
}

/* Whether the entry's keys (keys: count:u32 then (len:u32 bytes)*) can run on the overlay;
 * copies in the keys nothing in flight touches. */
static bool spec_prepare(struct cp *cp, bool keyless, const struct buf *keys) {
    struct cp_spec *s = &cp->spec;
    if (keyless || cp->applied < s->blocked_until) return false;
    uint32_t count = base_load_u32le(keys->data);
    const uint8_t *p = keys->data + 4;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t len = base_load_u32le(p);
        if (spec_touch(s, s->inflight.read_pos, p + 4, len) == SPEC_BLOCKED) return false;
        p += 4 + len;
    }
    p = keys->data + 4;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t len = base_load_u32le(p);
        if (spec_touch(s, s->inflight.read_pos, p + 4, len) == SPEC_UNTOUCHED)
            spec_copy_in(cp, p + 4, len);
        p += 4 + len;
    }
    return true;
}

/* The leader proposed entry `index` (a command list touching leader-mode keys, or a
 * keyless write). Runs it on the overlay when that is exact; the reply goes to out
 * (NULL: not wanted). Returns whether it ran; if not, its keys wait for its apply. */
bool cp_spec_proposed(struct cp *cp, uint64_t index, uint64_t ts, int proto, const uint8_t *list,
                      size_t bytes, const struct cp_list_mode *lm, const struct buf *keys,
                      struct buf *out) {
    struct cp_spec *s = &cp->spec;
    spec_sync(cp);
    bool run = lm->speculable && spec_prepare(cp, lm->keyless, keys);
    if (run) {
        struct db *applied_db = cp->db;
        uint64_t saved_now = cp->now_ms;
        cp->db = s->overlay;
        cp->now_ms = ts;
        buf_clear(&s->check);
        cp_run_commands(cp, out != NULL ? out : &s->check, proto, list, bytes, false);
        cp->db = applied_db;
        cp->now_ms = saved_now;
    }
    buf_append_u64le(&s->inflight, index);
    buf_append_byte(&s->inflight, run ? 1 : 0);
    buf_append_byte(&s->inflight, lm->keyless ? 1 : 0);
    buf_append(&s->inflight, keys->data, keys->len);
    return run;
}

/* Entry `index` was applied: keys no entry in flight touches any more leave the overlay. */
void cp_spec_applied(struct cp *cp, uint64_t index) {
    struct cp_spec *s = &cp->spec;
    while (buf_pending(&s->inflight) > 0) {
        struct spec_record r;
        spec_record_at(s, s->inflight.read_pos, &r);
        if (r.index > index) break;
        /* Consumed bytes stay valid until the next append (which may compact them). */
        buf_consume(&s->inflight, r.bytes);
        const uint8_t *p = r.keys;
        for (uint32_t i = 0; i < r.count; i++) {
            uint32_t len = base_load_u32le(p);
            if (spec_touch(s, s->inflight.read_pos, p + 4, len) == SPEC_UNTOUCHED)
                db_delete(s->overlay, p + 4, len);
            p += 4 + len;
        }
    }
}

/* Leader mode: answers the writes whose entry the leader's own disk now holds. */
void cp_spec_release(struct cp *cp) {
    if (cp->spec.awaiting == 0) return;
    bool leader = raft_role(cp->raft) == RAFT_LEADER;
    uint64_t persisted = raft_persisted_index(cp->raft);
    for (struct cp_wait *w = cp->waits; w != NULL; w = w->next) {
        if (w->kind != CP_WAIT_PROPOSAL || !w->spec_ready || w->spec_acked) continue;
        if (!leader || raft_term(cp->raft) != w->term) {
            w->spec_ready = false; /* it waits for its commit (or times out) */
            cp->spec.awaiting--;
            continue;
        }
        if (persisted < w->index) continue;
        buf_append(cp_origin_out(cp, &w->origin), w->request.data, w->request.len);
        w->spec_acked = true;
        cp->spec.awaiting--;
        cp->spec.acked_early++;
        if (w->index > cp->spec.acked_index) cp->spec.acked_index = w->index;
        cp_wait_detach(cp, w);
    }
}

static const char *cp_mode_name(enum keyspace_replication mode) {
    switch (mode) {
    case KEYSPACE_REPLICATION_ALL:
        return "all";
    case KEYSPACE_REPLICATION_LEADER:
        return "leader";
    default:
        return "majority";
    }
}

/* INFO replication: each keyspace's mode, and what leader mode did. */
void cp_repl_info(struct cp *cp, struct buf *out) {
    static const char *levels[] = {"", "linearizable", "lease", "stale"};
    const struct cp_spec *s = &cp->spec;
    buf_appendf(out, "replication:majority\r\n"); /* keys no keyspace matches */
    buf_appendf(out, "keyspaces_agreed_index:%llu\r\n", (unsigned long long)cp->keyspaces_index);
    for (uint32_t i = 0; i < cp->config.keyspace_count; i++) {
        const struct keyspace *ks = &cp->config.keyspaces[i];
        uint32_t level = ks->consistency >= KEYSPACE_CONSISTENCY_LINEARIZABLE &&
                                 ks->consistency <= KEYSPACE_CONSISTENCY_STALE
                             ? ks->consistency
                             : KEYSPACE_CONSISTENCY_LINEARIZABLE;
        buf_appendf(out, "keyspace_%s:mode=cp,replication=%s,consistency=%s\r\n", ks->name,
                    cp_mode_name(ks->replication), levels[level]);
    }
    buf_appendf(out,
                "replication_leader_acked_early:%llu\r\nreplication_leader_acked_lost:%llu\r\n"
                "replication_leader_mismatches:%llu\r\n",
                (unsigned long long)s->acked_early, (unsigned long long)s->acked_lost,
                (unsigned long long)s->mismatches);
}
