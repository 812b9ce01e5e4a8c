/*
 * The node-core simulator's AP workload (--ap; see nodesim_internal.h). The cores' table
 * gets two AP keyspaces in front (conflict = crdt): counters "c0".."c2" (INCRBY 1..5,
 * w = one or w = quorum by seed) and sets "t0".."t1" (SADD / SREM of members m0..m4, and
 * DEL, which removes every member it observed; w = one), written through any node on every side of
 * the world's partitions, crashes, message loss and clock skew. A reply of -NOQUORUM, -TRYAGAIN or
 * -ERR busy is FAIL (nothing written, as the engine promises), -TIMEOUT or no reply INFO (it may
 * apply).
 *
 * Converged (on top of the CP target's convergence) when every node's AP db holds exactly
 * the same objects, byte for byte, and no set is left as a tombstone (an emptied set is
 * collected once NODESIM_AP_TOMBSTONE_MS old): nothing but anti-entropy, hints, read repair
 * and collection bring them there, since the clients stop while the world settles. Then,
 * on that state:
 *   - a counter is at least the acknowledged increments and at most those plus the ones
 *     whose outcome is unknown;
 *   - a set holds nothing never added (an add that failed counts as never added), and
 *     holds every member with an acknowledged SADD invoked after every SREM of it that
 *     may have applied had answered (such a remove cannot have observed that add; a
 *     remove whose outcome is unknown may apply until the end, so it excuses the member).
 *
 * A node that loses its disk: one crash in NODESIM_AP_LOSS_ONE_IN (from the AP prng, so a
 * run without --ap draws nothing and keeps its trace) also wipes the crashed node's AP
 * files ("ap-*": its objects, log and epoch file; the CP engine's stay, see
 * nodesim_ap_disk_loss). It must restart with a new epoch, and anti-entropy refill it. An
 * acknowledged write may then be lost for good (w = one: only the wiped node held it; any
 * w: every replica that held it was wiped before it spread), so the rule is: a key is
 * settled at a moment when every node is up, no sync is in flight and the key's replicas
 * hold the same object (sampled after events, at most once a virtual ms). Each
 * acknowledged INCRBY and SADD of key K carries a lower bound of the replicas that hold it
 * durably: w at its answer (1 for w = one, 2 for w = quorum: the engine counts a replica
 * once its log is durable, a hint never); n (3) once K settled after its answer or after
 * K's previous disk loss. A disk loss of one of K's replicas takes one off; an op whose
 * bound reaches 0 becomes unknown (as if never answered, so excused). Sound: plain crashes
 * keep what was synced, a CRDT state only grows by merging, and each loss removes at most
 * one holder. A loss while an op was in flight counts too (its answer may have left the
 * lost node before the crash and reached the client after). So a w = quorum increment must
 * survive any one disk loss, a w = one write the loss of its holder only if anti-entropy
 * spread it first. An SREM or DEL is never made
 * unknown: losing one only leaves a member present, which some SADD added (allowed).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ap/ap.h"
#include "ap/ap_cmd.h"
#include "ap/object.h"
#include "ap/ring.h"
#include "base/assert.h"
#include "nodesim_internal.h"

#define NODESIM_AP_COUNTERS 3 /* "c0".."c2" */
#define NODESIM_AP_SETS 2     /* "t0".."t1" */
#define NODESIM_AP_MEMBERS 5  /* "m0".."m4" */
#define NODESIM_AP_AMOUNT_MAX 5
#define NODESIM_AP_ONE_IN 3 /* of the ops a client invokes, one in this many is AP */
#define NODESIM_AP_LOSS_ONE_IN 3 /* of the crashes, one in this many loses the AP files */
_Static_assert(NODESIM_AP_KEYS == NODESIM_AP_COUNTERS + NODESIM_AP_SETS, "the keys' numbers");

void nodesim_ap_keyspaces(struct nodesim_world *w, struct node_config *c) {
    if (!w->sim.options.ap) return;
    struct keyspace *k = nodesim_keyspace(c, "apcount", "c*");
    k->mode = KEYSPACE_MODE_AP;
    k->conflict = KEYSPACE_CONFLICT_CRDT;
    k->w = w->sim.options.seed % 2 == 0 ? KEYSPACE_QUORUM_ONE : KEYSPACE_QUORUM_QUORUM;
    k->r = KEYSPACE_QUORUM_ONE;
    k = nodesim_keyspace(c, "apsets", "t*");
    k->mode = KEYSPACE_MODE_AP;
    k->conflict = KEYSPACE_CONFLICT_CRDT;
    k->w = KEYSPACE_QUORUM_ONE;
    k->r = KEYSPACE_QUORUM_ONE;
}

bool nodesim_ap_kind(enum nodesim_op_kind kind) {
    return kind == NODESIM_OP_AP_INCR || kind == NODESIM_OP_AP_SADD || kind == NODESIM_OP_AP_SREM ||
           kind == NODESIM_OP_AP_DEL;
}

/* An SREM or a DEL (of every member it observed). */
static bool nodesim_ap_removes(enum nodesim_op_kind kind) {
    return kind == NODESIM_OP_AP_SREM || kind == NODESIM_OP_AP_DEL;
}

void nodesim_ap_invoke(struct nodesim_world *w, struct nodesim_client *c) {
    if (!w->sim.options.ap || c->kind == NODESIM_OP_FLUSH) return;
    if (prng_range(&c->prng, 0, NODESIM_AP_ONE_IN) != 0) return;
    uint64_t roll = prng_range(&c->prng, 0, 10); /* 3 INCRBY, 3 SADD, 3 SREM, 1 DEL */
    c->kind = roll < 3   ? NODESIM_OP_AP_INCR
              : roll < 6 ? NODESIM_OP_AP_SADD
              : roll < 9 ? NODESIM_OP_AP_SREM
                         : NODESIM_OP_AP_DEL;
    if (c->kind == NODESIM_OP_AP_INCR) {
        c->key = (uint32_t)prng_range(&c->prng, 0, NODESIM_AP_COUNTERS);
        c->arg = (int64_t)prng_range(&c->prng, 1, NODESIM_AP_AMOUNT_MAX + 1);
    } else {
        c->key = (uint32_t)prng_range(&c->prng, 0, NODESIM_AP_SETS);
        c->arg = (int64_t)prng_range(&c->prng, 0, NODESIM_AP_MEMBERS);
    }
}

size_t nodesim_ap_format(const struct nodesim_client *c, char *out, size_t bytes) {
    int n = 0;
    if (c->kind == NODESIM_OP_AP_INCR)
        n = snprintf(out, bytes, "INCRBY c%u %lld\r\n", c->key, (long long)c->arg);
    else if (c->kind == NODESIM_OP_AP_DEL)
        n = snprintf(out, bytes, "DEL t%u\r\n", c->key);
    else
        n = snprintf(out, bytes, "%s t%u m%lld\r\n",
                     c->kind == NODESIM_OP_AP_SADD ? "SADD" : "SREM", c->key, (long long)c->arg);
    ASSERT(n > 0 && (size_t)n < bytes);
    return (size_t)n;
}

static bool nodesim_ap_starts(const uint8_t *p, size_t bytes, const char *s) {
    size_t n = strlen(s);
    return bytes >= n && memcmp(p, s, n) == 0;
}

/* One reply to an AP op: its outcome, or false when no AP command may answer it. */
bool nodesim_ap_reply(struct nodesim_client *c, const uint8_t *p, size_t bytes) {
    if (nodesim_ap_starts(p, bytes, "-NOQUORUM") || nodesim_ap_starts(p, bytes, "-TRYAGAIN") ||
        nodesim_ap_starts(p, bytes, "-ERR busy")) {
        c->outcome = LINCHECK_FAIL;
        return true;
    }
    if (nodesim_ap_starts(p, bytes, "-TIMEOUT")) {
        c->outcome = LINCHECK_INFO;
        return true;
    }
    c->outcome = LINCHECK_OK;
    if (c->kind != NODESIM_OP_AP_INCR)
        return nodesim_ap_starts(p, bytes, ":0\r\n") || nodesim_ap_starts(p, bytes, ":1\r\n");
    int64_t v = 0;
    return bytes > 3 && p[0] == ':' && nodesim_txn_i64(p + 1, bytes - 3, &v) && v >= c->arg;
}

/* The replicas that hold an acknowledged op of kind durably at its answer: w of them (a
 * hint does not count toward w). The counters' w is the seed's (nodesim_ap_keyspaces). */
static uint32_t nodesim_ap_w_copies(const struct nodesim_world *w, enum nodesim_op_kind kind) {
    bool one = kind != NODESIM_OP_AP_INCR || w->sim.options.seed % 2 == 0;
    return one ? 1 : KEYSPACE_N_DEFAULT / 2 + 1;
}

/* An op's key as numbered in nodesim_ap's arrays. */
static uint32_t nodesim_ap_key_index(enum nodesim_op_kind kind, uint32_t key) {
    return kind == NODESIM_OP_AP_INCR ? key : NODESIM_AP_COUNTERS + key;
}

/* An answer may have left its coordinator before a disk loss that came before the client
 * read it: every loss of one of the key's replicas since the op was invoked takes one of
 * its holders (the rule at the top, as if it had been answered at its invocation). */
static void nodesim_ap_losses_during(struct nodesim_world *w, struct nodesim_ap_op *op) {
    uint32_t k = nodesim_ap_key_index(op->kind, op->key);
    for (uint32_t i = 0; i < w->ap.losses[k] && op->acked; i++) {
        if (w->ap.losses_ms[k][i] < op->invoke_ms || nodesim_ap_removes(op->kind)) continue;
        if (--op->copies > 0) continue;
        op->acked = false;
        w->sim.stats->disk_loss_unknown++;
    }
}

void nodesim_ap_record(struct nodesim_world *w, const struct nodesim_client *c,
                       enum lincheck_outcome outcome) {
    if (!nodesim_ap_kind(c->kind) || outcome == LINCHECK_FAIL) return;
    struct nodesim_ap *ap = &w->ap;
    if (ap->count == ap->capacity) {
        ap->capacity = ap->capacity == 0 ? 64 : ap->capacity * 2;
        ap->ops = base_realloc(ap->ops, ap->capacity * sizeof(*ap->ops));
    }
    ap->ops[ap->count++] = (struct nodesim_ap_op){
        .kind = c->kind,
        .key = c->key,
        .arg = c->arg,
        .acked = outcome == LINCHECK_OK,
        .copies = outcome != LINCHECK_OK ? 0 : nodesim_ap_w_copies(w, c->kind),
        .invoke_ms = c->invoke_ms,
        .response_ms = outcome == LINCHECK_OK ? w->sim.now_ms : UINT64_MAX,
    };
    nodesim_ap_losses_during(w, &ap->ops[ap->count - 1]);
}

void nodesim_ap_deinit(struct nodesim_world *w) {
    free(w->ap.ops);
    memset(&w->ap, 0, sizeof(w->ap));
}

/* ---- convergence ---- */

static struct db *nodesim_ap_db(const struct nodesim_world *w, uint32_t i) {
    struct engine *e = node_engine_ap(w->nodes[i].node);
    return e != NULL ? ap_engine_db(e) : NULL;
}

/* The ring the cores build over nodes 1..node_count, built once. */
static const struct ap_ring *nodesim_ap_ring(struct nodesim_world *w) {
    if (!w->ap.ring_built) {
        uint32_t members[SIM_NODES_MAX];
        for (uint32_t i = 0; i < w->sim.options.node_count; i++) members[i] = i + 1;
        int rc = ap_ring_build(&w->ap.ring, members, w->sim.options.node_count);
        ASSERT(rc == 0);
        w->ap.ring_built = true;
    }
    return &w->ap.ring;
}

/* key's object on node i (borrowed), or NULL; *bytes its length. */
static const uint8_t *nodesim_ap_object(const struct nodesim_world *w, uint32_t i, const char *key,
                                        size_t *bytes) {
    struct db_entry *e = db_find(nodesim_ap_db(w, i), (const uint8_t *)key, strlen(key));
    *bytes = 0;
    return e != NULL ? db_entry_string(e, bytes) : NULL;
}

/* Whether key's n = 3 replicas (the ring's first three of its walk) hold the same object,
 * byte for byte, and no other node holds one. */
static bool nodesim_ap_key_same(const struct nodesim_world *w, const struct ap_ring *ring,
                                const char *key) {
    uint32_t walk[NODE_PEERS_MAX];
    uint32_t count = ap_ring_walk(ring, ap_ring_key_hash((const uint8_t *)key, strlen(key)), walk);
    uint32_t n = count < KEYSPACE_N_DEFAULT ? count : KEYSPACE_N_DEFAULT;
    size_t first_bytes = 0;
    const uint8_t *first = nodesim_ap_object(w, walk[0], key, &first_bytes);
    for (uint32_t i = 1; i < count; i++) {
        size_t bytes = 0;
        const uint8_t *o = nodesim_ap_object(w, walk[i], key, &bytes);
        bool same = i < n ? bytes == first_bytes && (bytes == 0 || memcmp(o, first, bytes) == 0)
                          : o == NULL;
        if (!same) return false;
    }
    return true;
}

/* Whether node i holds key as a tombstone (a set with no member left), which the nodes
 * collect once it is NODESIM_AP_TOMBSTONE_MS old (and every replica holds it). */
static bool nodesim_ap_tombstone(const struct nodesim_world *w, uint32_t i, const char *key) {
    size_t bytes = 0;
    const uint8_t *data = nodesim_ap_object(w, i, key, &bytes);
    if (data == NULL) return false;
    struct ap_object o;
    ap_object_init(&o);
    bool tomb = ap_object_decode(data, bytes, &o) == 0 && ap_object_is_tombstone(&o);
    ap_object_deinit(&o);
    return tomb;
}

bool nodesim_ap_converged(struct nodesim_world *w) {
    if (!w->sim.options.ap) return true;
    for (uint32_t i = 1; i <= w->sim.options.node_count; i++)
        if (nodesim_ap_db(w, i) == NULL) return false;
    const struct ap_ring *ring = nodesim_ap_ring(w);
    char key[8];
    for (uint32_t k = 0; k < NODESIM_AP_COUNTERS; k++) {
        snprintf(key, sizeof(key), "c%u", k);
        if (!nodesim_ap_key_same(w, ring, key)) return false;
    }
    for (uint32_t k = 0; k < NODESIM_AP_SETS; k++) {
        snprintf(key, sizeof(key), "t%u", k);
        if (!nodesim_ap_key_same(w, ring, key)) return false;
        /* Not until an emptied set is collected: a tombstone left for good is a failure
         * to converge (the settle's deadline). */
        for (uint32_t i = 1; i <= w->sim.options.node_count; i++)
            if (nodesim_ap_tombstone(w, i, key)) return false;
    }
    return true;
}

/* ---- a node that loses its disk ---- */

void nodesim_ap_init(struct nodesim_world *w) {
    prng_init(&w->ap.prng, w->sim.options.seed * 0x9e3779b97f4a7c15ull + 0x6469736bull);
}

/* Key number k's name: "c0".."c2", then "t0".."t1". */
static void nodesim_ap_key_name(uint32_t k, char *out, size_t bytes) {
    if (k < NODESIM_AP_COUNTERS)
        snprintf(out, bytes, "c%u", k);
    else
        snprintf(out, bytes, "t%u", k - NODESIM_AP_COUNTERS);
}

void nodesim_ap_observe(struct nodesim_world *w) {
    if (!w->sim.options.ap || w->sim.now_ms == w->ap.sampled_ms) return;
    for (uint32_t i = 1; i <= w->sim.options.node_count; i++) {
        const struct nodesim_node *n = &w->nodes[i];
        if (!n->host->up || n->host->sync_at_ms != 0 || nodesim_ap_db(w, i) == NULL) return;
    }
    w->ap.sampled_ms = w->sim.now_ms;
    const struct ap_ring *ring = nodesim_ap_ring(w);
    char key[8];
    for (uint32_t k = 0; k < NODESIM_AP_KEYS; k++) {
        nodesim_ap_key_name(k, key, sizeof(key));
        if (nodesim_ap_key_same(w, ring, key)) w->ap.settled_ms[k] = w->sim.now_ms;
    }
}

/* Whether node id is one of key number k's n replicas. */
static bool nodesim_ap_replica_of(struct nodesim_world *w, uint32_t k, uint32_t id) {
    char key[8];
    nodesim_ap_key_name(k, key, sizeof(key));
    uint32_t walk[NODE_PEERS_MAX];
    uint32_t count =
        ap_ring_walk(nodesim_ap_ring(w), ap_ring_key_hash((const uint8_t *)key, strlen(key)), walk);
    for (uint32_t i = 0; i < count && i < KEYSPACE_N_DEFAULT; i++)
        if (walk[i] == id) return true;
    return false;
}

/* The rule at the top: an acknowledged increment or add of key number k held by `copies`
 * replicas (all n of them if k settled since its answer and k's previous loss) is held by
 * one fewer after this loss; one held by none may be gone, and becomes unknown. */
static void nodesim_ap_forget(struct nodesim_world *w, uint32_t k) {
    struct nodesim_ap *ap = &w->ap;
    for (size_t i = 0; i < ap->count; i++) {
        struct nodesim_ap_op *op = &ap->ops[i];
        if (!op->acked || nodesim_ap_removes(op->kind)) continue;
        if (nodesim_ap_key_index(op->kind, op->key) != k) continue;
        uint64_t since = op->response_ms > ap->lost_ms[k] ? op->response_ms : ap->lost_ms[k];
        if (ap->settled_ms[k] > since) op->copies = KEYSPACE_N_DEFAULT; /* all, durably */
        if (--op->copies > 0) continue;
        op->acked = false;
        w->sim.stats->disk_loss_unknown++;
    }
    ap->lost_ms[k] = w->sim.now_ms;
    ap->losses_ms[k][ap->losses[k]++] = w->sim.now_ms;
}

static void nodesim_ap_list_one(void *ctx, const char *name) {
    char *first = ctx;
    if (first[0] == '\0' && strncmp(name, "ap-", 3) == 0)
        snprintf(first, DISK_NAME_BYTES_MAX, "%s", name);
}

/* Removes every file of the AP engine's view ("ap-*") from n's disk, durably. */
static void nodesim_ap_wipe(struct nodesim_node *n) {
    char name[DISK_NAME_BYTES_MAX];
    struct errmsg msg;
    for (;;) {
        name[0] = '\0';
        int rc = n->disk.list(&n->disk, nodesim_ap_list_one, name, &msg);
        ASSERT(rc == 0);
        if (name[0] == '\0') break;
        rc = n->disk.remove(&n->disk, name, &msg);
        ASSERT(rc == 0);
    }
    int rc = n->disk.sync_dir(&n->disk, &msg);
    ASSERT(rc == 0);
}

/*
 * Only the AP engine's files go: the CP engine's ("cp-*": Raft's term, vote and log) stay.
 * A voter that forgot its vote or acknowledged entries could vote twice in a term or undo a
 * commit, which Raft does not survive by design (a real lost disk must rejoin as a new
 * member); the AP engine promises to survive it: a new epoch, never its old dots (kv679),
 * refilled by anti-entropy.
 */
void nodesim_ap_disk_loss(struct nodesim_world *w, struct nodesim_node *n) {
    if (!w->sim.options.ap || prng_range(&w->ap.prng, 0, NODESIM_AP_LOSS_ONE_IN) != 0 ||
        w->sim.stats->disk_losses == NODESIM_AP_LOSSES_MAX)
        return;
    for (uint32_t k = 0; k < NODESIM_AP_KEYS; k++)
        if (nodesim_ap_replica_of(w, k, n->id)) nodesim_ap_forget(w, k);
    nodesim_ap_wipe(n);
    w->sim.stats->disk_losses++;
    sim_trace_add(&w->sim.trace, w->sim.now_ms, n->id, SIM_TRACE_DISK_LOSS, n->incarnation, 0, 0,
                  0);
}

/* ---- the specification, on the converged state ---- */

/* Runs a read command on key's object as its first replica holds it (they are the same
 * once converged); the reply goes to out. */
static void nodesim_ap_read(struct nodesim_world *w, const char *line, struct buf *out) {
    struct resp_arg argv[3];
    char words[3][16];
    uint32_t argc = 0;
    for (const char *p = line; *p != '\0' && argc < 3; argc++) {
        size_t n = strcspn(p, " ");
        ASSERT(n < sizeof(words[0]));
        memcpy(words[argc], p, n);
        words[argc][n] = '\0';
        argv[argc] = (struct resp_arg){(const uint8_t *)words[argc], n};
        p += n + (p[n] == ' ');
    }
    struct ap_object o;
    ap_object_init(&o);
    uint32_t walk[NODE_PEERS_MAX];
    (void)ap_ring_walk(nodesim_ap_ring(w), ap_ring_key_hash(argv[1].data, argv[1].bytes), walk);
    size_t bytes = 0;
    const uint8_t *data = nodesim_ap_object(w, walk[0], words[1], &bytes);
    ASSERT(data == NULL || ap_object_decode(data, bytes, &o) == 0);
    struct ap_cmd_ctx ctx = {
        .conflict = AP_CONFLICT_CRDT, .ts = 1, .proto = 2, .now_ms = w->sim.now_ms};
    struct ap_cmd_result res;
    buf_clear(out);
    ap_cmd_run(&ctx, &o, argc, argv, out, &res);
    ap_object_deinit(&o);
}

static void nodesim_ap_check_counter(struct nodesim_world *w, uint32_t key, struct buf *out) {
    int64_t lo = 0, hi = 0;
    for (size_t i = 0; i < w->ap.count; i++) {
        const struct nodesim_ap_op *op = &w->ap.ops[i];
        if (op->kind != NODESIM_OP_AP_INCR || op->key != key) continue;
        hi += op->arg;
        if (op->acked) lo += op->arg;
    }
    char line[32];
    snprintf(line, sizeof(line), "GET c%u", key);
    nodesim_ap_read(w, line, out);
    int64_t v = 0;
    bool nil = nodesim_ap_starts(out->data, out->len, "$-1\r\n");
    const uint8_t *nl = memchr(out->data, '\n', out->len);
    bool ok = nil || (nl != NULL &&
                      nodesim_txn_i64(nl + 1, out->len - (size_t)(nl + 1 - out->data) - 2, &v));
    if (!ok || v < lo || v > hi)
        sim_check_fail(&w->sim.check,
                       "ap: counter c%u is %lld after convergence; acknowledged increments sum "
                       "to %lld, with the unknown ones %lld",
                       key, (long long)v, (long long)lo, (long long)hi);
}

/* Whether member of set key must be there, and whether it may be (see the top). */
static void nodesim_ap_member_spec(const struct nodesim_world *w, uint32_t key, int64_t member,
                                   bool *must, bool *may) {
    uint64_t last_remove_ms = 0; /* the latest answer of a remove that may have applied */
    *may = false;
    for (size_t i = 0; i < w->ap.count; i++) {
        const struct nodesim_ap_op *op = &w->ap.ops[i];
        if (op->kind == NODESIM_OP_AP_INCR || op->key != key) continue;
        if (op->arg != member && op->kind != NODESIM_OP_AP_DEL) continue;
        if (op->kind == NODESIM_OP_AP_SADD) *may = true;
        if (nodesim_ap_removes(op->kind) && op->response_ms > last_remove_ms)
            last_remove_ms = op->response_ms;
    }
    *must = false;
    for (size_t i = 0; i < w->ap.count && !*must; i++) {
        const struct nodesim_ap_op *op = &w->ap.ops[i];
        if (op->kind == NODESIM_OP_AP_SADD && op->key == key && op->arg == member && op->acked &&
            (last_remove_ms == 0 || op->invoke_ms > last_remove_ms))
            *must = true;
    }
}

static void nodesim_ap_check_set(struct nodesim_world *w, uint32_t key, struct buf *out) {
    for (int64_t m = 0; m < NODESIM_AP_MEMBERS && !w->sim.check.failed; m++) {
        bool must = false, may = false;
        nodesim_ap_member_spec(w, key, m, &must, &may);
        char line[48];
        snprintf(line, sizeof(line), "SISMEMBER t%u m%lld", key, (long long)m);
        nodesim_ap_read(w, line, out);
        bool has = nodesim_ap_starts(out->data, out->len, ":1\r\n");
        if ((must && !has) || (has && !may))
            sim_check_fail(&w->sim.check, "ap: set t%u %s m%lld after convergence, which %s", key,
                           has ? "holds" : "lacks", (long long)m,
                           has ? "no SADD that may have applied added"
                               : "an acknowledged SADD added after every SREM of it answered");
    }
}

/* Tombstones the nodes collected (each since its last start), from their INFO. */
static uint64_t nodesim_ap_collected(const struct nodesim_world *w) {
    uint64_t sum = 0;
    struct buf info;
    buf_init(&info);
    for (uint32_t i = 1; i <= w->sim.options.node_count; i++) {
        struct engine *e = node_engine_ap(w->nodes[i].node);
        if (e == NULL) continue;
        buf_clear(&info);
        e->ops->info(e, "replication", &info);
        buf_append_byte(&info, 0);
        const char *at = strstr((const char *)info.data, "ap_tombstones_collected:");
        if (at != NULL) sum += strtoull(at + strlen("ap_tombstones_collected:"), NULL, 10);
    }
    buf_deinit(&info);
    return sum;
}

void nodesim_ap_end_check(struct nodesim_world *w) {
    if (!w->sim.options.ap) return;
    w->sim.stats->ap_collected = nodesim_ap_collected(w);
    struct buf out;
    buf_init(&out);
    for (uint32_t k = 0; k < NODESIM_AP_COUNTERS && !w->sim.check.failed; k++)
        nodesim_ap_check_counter(w, k, &out);
    for (uint32_t k = 0; k < NODESIM_AP_SETS && !w->sim.check.failed; k++)
        nodesim_ap_check_set(w, k, &out);
    buf_deinit(&out);
}
