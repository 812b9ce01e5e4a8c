/*
 * Unit tests of src/raft on a small deterministic in-test cluster: 3 or 5 raft instances,
 * an in-memory "disk" that persists at once (or late, when a test says so), and a network
 * of encoded messages (every message goes through the codec) that tests can cut, drop and
 * reorder. After every step the harness checks election safety, log matching and
 * state-machine safety across all nodes (Raft Figure 3).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/prng.h"
#include "raft/msg_codec.h"
#include "raft/raft.h"

#define NODES_MAX 6
#define QUEUE_MAX 20000
#define APPLIED_MAX 20000
#define TERMS_MAX 100000
#define READS_MAX 64

struct qmsg {
    int from, to;
    uint8_t *bytes;
    size_t len;
};

struct tnode {
    struct raft *raft;
    bool up;
    bool manual_persist;        /* test sends PERSISTED itself */
    uint64_t unpersisted_index; /* newest handed-out entry (manual_persist) */
    uint64_t unpersisted_term;
    uint64_t sm_index; /* state machine: applied index and a hash of everything applied */
    uint64_t sm_hash;
    uint64_t snap_index; /* latest snapshot of the state machine */
    uint8_t snap[16];
    uint64_t reads_ready[READS_MAX][2];
    size_t reads_ready_count;
    uint64_t reads_failed[READS_MAX];
    size_t reads_failed_count;
    uint64_t restores;
};

struct cluster {
    struct tnode n[NODES_MAX + 1]; /* 1-based ids */
    uint64_t trail;                /* log_trail_entries of the rafts made from now on */
    int count;
    uint64_t now;
    bool cut[NODES_MAX + 1][NODES_MAX + 1];
    struct qmsg q[QUEUE_MAX];
    size_t q_len;
    struct prng prng;
    uint32_t drop_pct;
    bool reorder;
    uint32_t leader_of_term[TERMS_MAX];
    uint64_t applied_term[APPLIED_MAX];
    uint64_t applied_hash[APPLIED_MAX];
    uint64_t msg_count[RAFT_MSG_TYPE_LAST + 1];
    size_t max_entries_seen;
    size_t max_msg_entry_bytes;
    uint64_t appends_to[NODES_MAX + 1];
};

static struct cluster *C;

static void step(struct cluster *c, int id, const struct raft_event *ev, int expect_rc);

static struct raft *new_raft(struct cluster *c, int id, const struct raft_config *config,
                             uint64_t seed) {
    struct raft_options o;
    raft_options_default(&o);
    o.id = (uint32_t)id;
    o.seed = seed;
    o.election_timeout_ms_min = 100;
    o.election_timeout_ms_max = 200;
    o.heartbeat_ms = 20;
    o.lease_drift_ms = 10;
    o.msg_bytes_max = 4096;
    o.log_trail_entries = c->trail;
    o.snapshot_config = *config;
    o.now_ms = c->now;
    struct raft *r = NULL;
    struct errmsg msg;
    assert_int_equal(raft_new(&o, &r, &msg), 0);
    return r;
}

/* Voters 1..voters; servers up to count exist but start outside the configuration (a
 * joining server starts knowing only itself, as a learner). */
static struct cluster *cluster_new(int count, int voters, uint64_t seed) {
    struct cluster *c = calloc(1, sizeof(*c));
    c->count = count;
    c->now = 1000;
    prng_init(&c->prng, seed);
    struct raft_config config = {0};
    for (int i = 1; i <= voters; i++) {
        config.servers[config.count].id = (uint32_t)i;
        config.servers[config.count++].voter = true;
    }
    for (int i = 1; i <= count; i++) {
        struct raft_config own = {.count = 1, .servers = {{.id = (uint32_t)i, .voter = false}}};
        c->n[i].raft = new_raft(c, i, i <= voters ? &config : &own, seed * 131 + (uint64_t)i);
        c->n[i].up = true;
    }
    C = c;
    return c;
}

static void cluster_free(struct cluster *c) {
    for (int i = 1; i <= c->count; i++) raft_free(c->n[i].raft);
    for (size_t i = 0; i < c->q_len; i++) free(c->q[i].bytes);
    free(c);
}

/* --- cross-node safety checks (Raft Figure 3) --- */

static void check_log_matching(struct cluster *c, int a, int b) {
    struct raft *ra = c->n[a].raft, *rb = c->n[b].raft;
    uint64_t lo =
        raft_first_index(ra) > raft_first_index(rb) ? raft_first_index(ra) : raft_first_index(rb);
    uint64_t hi =
        raft_last_index(ra) < raft_last_index(rb) ? raft_last_index(ra) : raft_last_index(rb);
    bool matched = false;
    for (uint64_t i = hi; i >= lo && i > 0; i--) {
        uint64_t ta, tb;
        assert_true(raft_term_at(ra, i, &ta));
        assert_true(raft_term_at(rb, i, &tb));
        /* Log matching: same index and term, then identical up to there. */
        if (ta == tb) matched = true;
        if (matched) assert_int_equal(ta, tb);
    }
}

static void check_cluster(struct cluster *c) {
    for (int i = 1; i <= c->count; i++) {
        struct raft *r = c->n[i].raft;
        if (raft_role(r) == RAFT_LEADER) {
            uint64_t t = raft_term(r);
            assert_true(t < TERMS_MAX);
            /* Election safety: at most one leader per term. */
            if (c->leader_of_term[t] != 0) assert_int_equal(c->leader_of_term[t], i);
            c->leader_of_term[t] = (uint32_t)i;
        }
        for (int j = i + 1; j <= c->count; j++) check_log_matching(c, i, j);
    }
}

/* --- the harness's side of the effects contract --- */

static void apply_entry(struct cluster *c, int id, const struct raft_entry *e) {
    struct tnode *n = &c->n[id];
    assert_int_equal(e->index, n->sm_index + 1);
    uint64_t h = e->term * 1000003u + e->type;
    for (uint32_t k = 0; k < e->data_bytes; k++) h = h * 31 + e->data[k];
    assert_true(e->index < APPLIED_MAX);
    /* State-machine safety: every server applies the same entry at an index. */
    if (c->applied_term[e->index] != 0) {
        assert_int_equal(c->applied_term[e->index], e->term);
        assert_int_equal(c->applied_hash[e->index], h);
    }
    c->applied_term[e->index] = e->term;
    c->applied_hash[e->index] = h;
    n->sm_index = e->index;
    n->sm_hash = n->sm_hash * 7 + h;
}

static void send_message(struct cluster *c, int id, const struct raft_message *m) {
    struct raft_message copy = *m;
    struct tnode *n = &c->n[id];
    c->msg_count[m->type]++;
    if (m->type == RAFT_MSG_APPEND) c->appends_to[m->to]++;
    if (m->entry_count > c->max_entries_seen) c->max_entries_seen = m->entry_count;
    size_t bytes = 0;
    for (uint32_t k = 0; k < m->entry_count; k++) bytes += m->entries[k].data_bytes;
    if (bytes > c->max_msg_entry_bytes) c->max_msg_entry_bytes = bytes;
    if (m->type == RAFT_MSG_INSTALL_SNAPSHOT) {
        /* The caller attaches the state-machine snapshot taken at m->index. */
        assert_int_equal(m->index, n->snap_index);
        copy.snapshot_data = n->snap;
        copy.snapshot_bytes = sizeof(n->snap);
    }
    struct buf b;
    buf_init(&b);
    assert_int_equal(raft_msg_encode(&copy, &b), 0);
    if (c->q_len == QUEUE_MAX) {
        buf_deinit(&b);
        return; /* the network drops what it cannot hold */
    }
    c->q[c->q_len++] = (struct qmsg){.from = id, .to = (int)m->to, .bytes = b.data, .len = b.len};
}

static void handle_effects(struct cluster *c, int id, const struct raft_effects *fx) {
    struct tnode *n = &c->n[id];
    if (fx->restore != NULL) {
        assert_int_equal(fx->restore->data_bytes, 16);
        memcpy(&n->sm_index, fx->restore->data, 8);
        memcpy(&n->sm_hash, fx->restore->data + 8, 8);
        assert_int_equal(n->sm_index, fx->restore->index);
        n->snap_index = fx->restore->index;
        memcpy(n->snap, fx->restore->data, 16);
        n->restores++;
    }
    uint64_t pi = 0, pt = 0;
    if (fx->entry_count > 0) {
        pi = fx->entries[fx->entry_count - 1].index;
        pt = fx->entries[fx->entry_count - 1].term;
    }
    /* (2) send: persistence here is instantaneous (or deliberately skipped). */
    for (size_t k = 0; k < fx->message_count; k++) send_message(c, id, &fx->messages[k]);
    for (size_t k = 0; k < fx->committed_count; k++) apply_entry(c, id, &fx->committed[k]);
    for (size_t k = 0; k < fx->read_count && n->reads_ready_count < READS_MAX; k++) {
        assert_true(fx->reads[k].index <= raft_commit_index(n->raft));
        n->reads_ready[n->reads_ready_count][0] = fx->reads[k].ctx;
        n->reads_ready[n->reads_ready_count++][1] = fx->reads[k].index;
    }
    for (size_t k = 0; k < fx->reads_failed_count && n->reads_failed_count < READS_MAX; k++)
        n->reads_failed[n->reads_failed_count++] = fx->reads_failed[k];
    if (pi == 0) return;
    if (n->manual_persist) {
        n->unpersisted_index = pi;
        n->unpersisted_term = pt;
        return;
    }
    struct raft_event ev = {.kind = RAFT_EVENT_PERSISTED, .now_ms = c->now};
    ev.persisted.index = pi;
    ev.persisted.term = pt;
    step(c, id, &ev, 0);
}

static void step(struct cluster *c, int id, const struct raft_event *ev, int expect_rc) {
    struct raft_effects fx;
    int rc = raft_step(c->n[id].raft, ev, &fx);
    assert_int_equal(rc, expect_rc);
    handle_effects(c, id, &fx);
    check_cluster(c);
}

static void persist_now(struct cluster *c, int id) {
    struct raft_event ev = {.kind = RAFT_EVENT_PERSISTED, .now_ms = c->now};
    ev.persisted.index = c->n[id].unpersisted_index;
    ev.persisted.term = c->n[id].unpersisted_term;
    step(c, id, &ev, 0);
}

static bool deliverable(struct cluster *c, const struct qmsg *q) {
    if (!c->n[q->to].up || !c->n[q->from].up) return false;
    if (c->cut[q->from][q->to]) return false;
    if (c->drop_pct > 0 && prng_range(&c->prng, 0, 100) < c->drop_pct) return false;
    return true;
}

/* Delivers one queued message (the oldest, or a random one when reordering). */
static void deliver_one(struct cluster *c) {
    size_t k = c->reorder ? (size_t)prng_range(&c->prng, 0, c->q_len) : 0;
    struct qmsg q = c->q[k];
    memmove(&c->q[k], &c->q[k + 1], (c->q_len - k - 1) * sizeof(c->q[0]));
    c->q_len--;
    if (deliverable(c, &q)) {
        struct raft_message m;
        struct raft_entry entries[RAFT_MSG_ENTRIES_MAX];
        assert_int_equal(raft_msg_decode(q.bytes, q.len, &m, entries), 0);
        struct raft_event ev = {.kind = RAFT_EVENT_MESSAGE, .now_ms = c->now, .message = &m};
        step(c, q.to, &ev, 0);
    }
    free(q.bytes);
}

static void deliver_all(struct cluster *c) {
    for (int guard = 0; c->q_len > 0 && guard < 100000; guard++) deliver_one(c);
}

static void tick_all(struct cluster *c) {
    for (int i = 1; i <= c->count; i++) {
        if (!c->n[i].up) continue;
        struct raft_event ev = {.kind = RAFT_EVENT_TICK, .now_ms = c->now};
        step(c, i, &ev, 0);
    }
}

/* Advances time in 5 ms steps, ticking everyone and delivering everything. */
static void run(struct cluster *c, uint64_t ms) {
    for (uint64_t t = 0; t < ms; t += 5) {
        c->now += 5;
        tick_all(c);
        deliver_all(c);
    }
}

static int leader(struct cluster *c) {
    int found = 0;
    uint64_t best = 0;
    for (int i = 1; i <= c->count; i++) {
        struct raft *r = c->n[i].raft;
        if (c->n[i].up && raft_role(r) == RAFT_LEADER && raft_term(r) >= best) {
            best = raft_term(r);
            found = i;
        }
    }
    return found;
}

static int wait_leader(struct cluster *c) {
    for (int k = 0; k < 400 && leader(c) == 0; k++) run(c, 5);
    assert_true(leader(c) != 0);
    return leader(c);
}

static void isolate(struct cluster *c, int id) {
    for (int i = 1; i <= c->count; i++) c->cut[id][i] = c->cut[i][id] = i != id;
}

static void heal(struct cluster *c) {
    memset(c->cut, 0, sizeof(c->cut));
}

static uint64_t propose(struct cluster *c, int id, const char *s, int expect_rc) {
    struct raft_event ev = {.kind = RAFT_EVENT_PROPOSE, .now_ms = c->now};
    ev.propose.data = (const uint8_t *)s;
    ev.propose.bytes = (uint32_t)strlen(s);
    struct raft_effects fx;
    int rc = raft_step(c->n[id].raft, &ev, &fx);
    assert_int_equal(rc, expect_rc);
    uint64_t index = fx.proposed_index;
    if (rc == 0) assert_int_equal(fx.proposed_term, raft_term(c->n[id].raft));
    handle_effects(c, id, &fx);
    check_cluster(c);
    return index;
}

static void take_snapshot(struct cluster *c, int id) {
    struct tnode *n = &c->n[id];
    n->snap_index = n->sm_index;
    memcpy(n->snap, &n->sm_index, 8);
    memcpy(n->snap + 8, &n->sm_hash, 8);
    struct raft_event ev = {.kind = RAFT_EVENT_SNAPSHOT_TAKEN, .now_ms = c->now};
    ev.snapshot_index = n->sm_index;
    step(c, id, &ev, 0);
    assert_int_equal(raft_snapshot_index(n->raft), n->sm_index);
}

static void change(struct cluster *c, int id, enum raft_change_kind kind, uint32_t who, int rc) {
    struct raft_event ev = {.kind = RAFT_EVENT_CHANGE, .now_ms = c->now};
    ev.change.kind = kind;
    ev.change.id = who;
    step(c, id, &ev, rc);
}

static void read_index(struct cluster *c, int id, uint64_t ctx, int rc) {
    struct raft_event ev = {.kind = RAFT_EVENT_READ, .now_ms = c->now, .read_ctx = ctx};
    step(c, id, &ev, rc);
}

static bool read_ready(struct cluster *c, int id, uint64_t ctx, uint64_t *index) {
    for (size_t k = 0; k < c->n[id].reads_ready_count; k++)
        if (c->n[id].reads_ready[k][0] == ctx) {
            if (index) *index = c->n[id].reads_ready[k][1];
            return true;
        }
    return false;
}

static bool read_failed(struct cluster *c, int id, uint64_t ctx) {
    for (size_t k = 0; k < c->n[id].reads_failed_count; k++)
        if (c->n[id].reads_failed[k] == ctx) return true;
    return false;
}

static void assert_all_applied(struct cluster *c, uint64_t index) {
    for (int i = 1; i <= c->count; i++)
        if (c->n[i].up) assert_true(c->n[i].sm_index >= index);
}

/* Raft §5.2: an election makes exactly one leader, for 3 and for 5 servers. */
static void test_raft_elects_a_single_leader(void **state) {
    (void)state;
    for (int size = 3; size <= 5; size += 2) {
        struct cluster *c = cluster_new(size, size, 1);
        int l = wait_leader(c);
        run(c, 300);
        assert_int_equal(leader(c), l);
        int leaders = 0;
        for (int i = 1; i <= size; i++) {
            leaders += raft_role(c->n[i].raft) == RAFT_LEADER;
            assert_int_equal(raft_leader_id(c->n[i].raft), l);
        }
        assert_int_equal(leaders, 1);
        /* §5.4.2: the no-op of the new term commits everywhere. */
        assert_all_applied(c, 1);
        cluster_free(c);
    }
}

/* Raft §5.2: when the leader is cut off, the others elect a new one in a later term. */
static void test_raft_reelects_leader_after_leader_isolation(void **state) {
    (void)state;
    struct cluster *c = cluster_new(3, 3, 2);
    int old = wait_leader(c);
    uint64_t term = raft_term(c->n[old].raft);
    isolate(c, old);
    run(c, 600);
    int l = 0;
    for (int i = 1; i <= 3; i++)
        if (i != old && raft_role(c->n[i].raft) == RAFT_LEADER) l = i;
    assert_true(l != 0);
    assert_true(raft_term(c->n[l].raft) > term);
    heal(c);
    run(c, 300);
    assert_int_not_equal(raft_role(c->n[old].raft), RAFT_LEADER);
    assert_int_equal(raft_leader_id(c->n[old].raft), l);
    cluster_free(c);
}

/* Raft §5.2, §5.4.2: a minority elects no leader and commits nothing. */
static void test_raft_minority_never_elects_nor_commits(void **state) {
    (void)state;
    struct cluster *c = cluster_new(5, 5, 3);
    int l = wait_leader(c);
    int other = l == 1 ? 2 : 1;
    for (int i = 1; i <= 5; i++)
        for (int j = 1; j <= 5; j++) {
            bool a = i == l || i == other, b = j == l || j == other;
            c->cut[i][j] = a != b;
        }
    uint64_t commit = raft_commit_index(c->n[l].raft);
    uint64_t index = propose(c, l, "minority", 0);
    for (int k = 0; k < 200; k++) {
        run(c, 5);
        assert_true(raft_commit_index(c->n[l].raft) < index);
        assert_true(raft_commit_index(c->n[other].raft) < index);
        if (k > 60) assert_int_not_equal(raft_role(c->n[l].raft), RAFT_LEADER);
        assert_int_not_equal(raft_role(c->n[other].raft), RAFT_LEADER);
    }
    assert_int_equal(raft_commit_index(c->n[other].raft), commit);
    cluster_free(c);
}

/* Thesis §9.6: pre-vote keeps an isolated server from raising its term, so on rejoining
 * it does not depose the healthy leader. */
static void test_raft_prevote_stops_rejoining_node_from_disrupting(void **state) {
    (void)state;
    struct cluster *c = cluster_new(3, 3, 4);
    int l = wait_leader(c);
    int f = l == 3 ? 2 : 3;
    uint64_t term = raft_term(c->n[l].raft);
    isolate(c, f);
    run(c, 2000);
    assert_int_equal(raft_term(c->n[f].raft), term);
    heal(c);
    run(c, 500);
    assert_int_equal(leader(c), l);
    assert_int_equal(raft_term(c->n[l].raft), term);
    assert_int_equal(raft_leader_id(c->n[f].raft), l);
    cluster_free(c);
}

/* Thesis §6.2: check-quorum makes a leader that lost its majority step down. */
static void test_raft_check_quorum_steps_down_isolated_leader(void **state) {
    (void)state;
    struct cluster *c = cluster_new(3, 3, 5);
    int l = wait_leader(c);
    isolate(c, l);
    uint64_t term = raft_term(c->n[l].raft);
    run(c, 95);
    assert_int_equal(raft_role(c->n[l].raft), RAFT_LEADER);
    for (int k = 0; k < 40 && raft_role(c->n[l].raft) == RAFT_LEADER; k++) run(c, 5);
    assert_int_equal(raft_role(c->n[l].raft), RAFT_FOLLOWER);
    assert_int_equal(raft_leader_id(c->n[l].raft), 0);
    assert_int_equal(raft_term(c->n[l].raft), term);
    cluster_free(c);
}

/* Raft §5.3: entries replicate, pipelined, and commit on every server in order. */
static void test_raft_replicates_and_commits_with_pipelining(void **state) {
    (void)state;
    struct cluster *c = cluster_new(5, 5, 6);
    int l = wait_leader(c);
    uint64_t last = 0;
    char data[32];
    for (int k = 0; k < 300; k++) {
        snprintf(data, sizeof(data), "set k%d", k);
        last = propose(c, l, data, 0);
        if (k % 50 == 0) deliver_all(c);
    }
    run(c, 100);
    for (int i = 1; i <= 5; i++) {
        assert_int_equal(raft_commit_index(c->n[i].raft), last);
        assert_int_equal(c->n[i].sm_index, last);
        assert_int_equal(c->n[i].sm_hash, c->n[l].sm_hash);
    }
    /* Not following the leader means no proposals. */
    propose(c, l == 1 ? 2 : 1, "x", ERR_NOTLEADER);
    cluster_free(c);
}

/* Raft §5.3: a new leader overwrites a follower's conflicting uncommitted entries. */
static void test_raft_overwrites_conflicting_uncommitted_entries(void **state) {
    (void)state;
    struct cluster *c = cluster_new(3, 3, 7);
    int old = wait_leader(c);
    isolate(c, old);
    uint64_t lost = propose(c, old, "lost-1", 0);
    propose(c, old, "lost-2", 0);
    propose(c, old, "lost-3", 0);
    run(c, 600);
    int l = leader(c);
    assert_true(l != 0 && l != old);
    uint64_t kept = propose(c, l, "kept", 0);
    run(c, 100);
    assert_true(raft_commit_index(c->n[l].raft) >= kept);
    heal(c);
    run(c, 400);
    uint64_t t_old, t_new;
    assert_true(raft_term_at(c->n[old].raft, lost, &t_old));
    assert_true(raft_term_at(c->n[l].raft, lost, &t_new));
    assert_int_equal(t_old, t_new);
    assert_int_equal(raft_last_index(c->n[old].raft), raft_last_index(c->n[l].raft));
    assert_int_equal(c->n[old].sm_hash, c->n[l].sm_hash);
    cluster_free(c);
}

static struct raft *standalone(uint32_t id, uint64_t term, const uint64_t *terms, size_t n) {
    struct raft_config config = {.count = 3};
    for (uint32_t i = 0; i < 3; i++) config.servers[i] = (struct raft_server){i + 1, true};
    struct raft_entry entries[16];
    for (size_t i = 0; i < n; i++)
        entries[i] = (struct raft_entry){.term = terms[i], .index = i + 1, .type = RAFT_ENTRY_NOOP};
    struct raft_options o;
    raft_options_default(&o);
    o.id = id;
    o.seed = id;
    o.election_timeout_ms_min = 100;
    o.election_timeout_ms_max = 200;
    o.heartbeat_ms = 20;
    o.lease_drift_ms = 10;
    o.hard_state.term = term;
    o.snapshot_config = config;
    o.entries = entries;
    o.entry_count = n;
    o.now_ms = 1000;
    struct raft *r;
    assert_int_equal(raft_new(&o, &r, NULL), 0);
    return r;
}

static const struct raft_message *step_msg(struct raft *r, const struct raft_message *m,
                                           struct raft_effects *fx) {
    struct raft_event ev = {.kind = RAFT_EVENT_MESSAGE, .now_ms = 1001, .message = m};
    assert_int_equal(raft_step(r, &ev, fx), 0);
    return fx->message_count > 0 ? &fx->messages[fx->message_count - 1] : NULL;
}

/* Raft §5.4.1: a vote (and a pre-vote) is refused to a candidate whose log is behind. */
static void test_raft_refuses_vote_when_candidate_log_is_behind(void **state) {
    (void)state;
    uint64_t terms[] = {1, 2};
    struct raft *r = standalone(1, 2, terms, 2);
    struct raft_effects fx;
    struct raft_message m = {.type = RAFT_MSG_PRE_VOTE, .from = 2, .to = 1, .term = 3};
    m.index = 5; /* longer, but older last term */
    m.log_term = 1;
    const struct raft_message *resp = step_msg(r, &m, &fx);
    assert_non_null(resp);
    assert_true(resp->reject);
    assert_int_equal(raft_term(r), 2); /* a pre-vote changes no term */
    m.type = RAFT_MSG_VOTE;
    m.index = 1; /* same last term, shorter */
    m.log_term = 2;
    resp = step_msg(r, &m, &fx);
    assert_true(resp->type == RAFT_MSG_VOTE_RESP && resp->reject);
    assert_int_equal(raft_vote(r), 0);
    m.index = 2; /* as up to date: granted, and durable before the reply */
    m.term = 4;
    resp = step_msg(r, &m, &fx);
    assert_false(resp->reject);
    assert_true(fx.hard_state_changed);
    assert_int_equal(fx.hard_state.vote, 2);
    assert_int_equal(fx.hard_state.term, 4);
    /* §5.2: one vote per term. */
    m.from = 3;
    resp = step_msg(r, &m, &fx);
    assert_true(resp->reject);
    raft_free(r);
}

/* Raft §5.4.2 (Figure 8): a leader does not commit an entry of an older term by counting
 * replicas; it commits only once an entry of its own term reaches a majority. */
static void test_raft_never_commits_old_term_entry_by_counting(void **state) {
    (void)state;
    struct cluster *c = cluster_new(3, 3, 8);
    for (int i = 1; i <= 3; i++) raft_free(c->n[i].raft);
    uint64_t t1[] = {1, 2}, t2[] = {1};
    c->n[1].raft = standalone(1, 2, t1, 2);
    c->n[2].raft = standalone(2, 2, t2, 1);
    c->n[3].raft = standalone(3, 2, t2, 1);
    c->now = 1000;
    struct raft_message now = {.type = RAFT_MSG_TIMEOUT_NOW, .from = 2, .to = 1, .term = 2};
    struct raft_event ev = {.kind = RAFT_EVENT_MESSAGE, .now_ms = c->now, .message = &now};
    step(c, 1, &ev, 0);
    while (raft_role(c->n[1].raft) != RAFT_LEADER) deliver_one(c);
    isolate(c, 1);
    deliver_all(c);
    assert_int_equal(raft_term(c->n[1].raft), 3);
    assert_int_equal(raft_last_index(c->n[1].raft), 3); /* the term-3 no-op */
    assert_int_equal(raft_term_start_index(c->n[1].raft), 3);
    assert_int_equal(raft_term_start_index(c->n[2].raft), 0); /* not a leader */
    struct raft_message ack = {.type = RAFT_MSG_APPEND_RESP, .from = 2, .to = 1, .term = 3};
    ack.index = 2; /* node 2 holds the term-2 entry: a majority, but of an old term */
    ev.message = &ack;
    step(c, 1, &ev, 0);
    assert_int_equal(raft_commit_index(c->n[1].raft), 0);
    ack.index = 3;
    step(c, 1, &ev, 0);
    assert_int_equal(raft_commit_index(c->n[1].raft), 3);
    cluster_free(c);
}

/* Raft §7: a follower behind the leader's snapshot gets InstallSnapshot, then the log. */
static void test_raft_snapshot_brings_lagging_follower_up_to_date(void **state) {
    (void)state;
    struct cluster *c = cluster_new(3, 3, 9);
    int l = wait_leader(c);
    int f = l == 3 ? 2 : 3;
    isolate(c, f);
    char data[32];
    for (int k = 0; k < 60; k++) {
        snprintf(data, sizeof(data), "v%d", k);
        propose(c, l, data, 0);
    }
    run(c, 60);
    for (int i = 1; i <= 3; i++)
        if (i != f) take_snapshot(c, i);
    assert_true(raft_first_index(c->n[l].raft) > raft_last_index(c->n[f].raft) + 1);
    uint64_t after = propose(c, l, "after-snapshot", 0);
    heal(c);
    run(c, 300);
    assert_true(c->n[f].restores >= 1);
    assert_int_equal(raft_commit_index(c->n[f].raft), after);
    assert_int_equal(c->n[f].sm_index, after);
    assert_int_equal(c->n[f].sm_hash, c->n[l].sm_hash);
    /* Taking a snapshot beyond what was applied is refused. */
    struct raft_event ev = {.kind = RAFT_EVENT_SNAPSHOT_TAKEN, .now_ms = c->now};
    ev.snapshot_index = raft_applied_index(c->n[l].raft) + 1;
    step(c, l, &ev, ERR_INVALID);
    cluster_free(c);
}

/* Thesis §4.1, §4.2.1, §4.2.2: add a learner, promote it, remove the leader itself. */
static void test_raft_membership_add_learner_promote_remove(void **state) {
    (void)state;
    struct cluster *c = cluster_new(4, 3, 10);
    int l = wait_leader(c);
    change(c, l, RAFT_CHANGE_ADD_LEARNER, 4, 0);
    /* Thesis §4.1: one uncommitted change at a time. */
    change(c, l, RAFT_CHANGE_PROMOTE, 4, ERR_CONFIG_PENDING);
    run(c, 100);
    assert_int_equal(raft_last_index(c->n[4].raft), raft_last_index(c->n[l].raft));
    assert_int_equal(raft_config(c->n[4].raft)->count, 4);
    change(c, l, RAFT_CHANGE_ADD_LEARNER, 4, ERR_EXISTS);
    /* A learner does not count: cut it off, commits still happen; it never campaigns. */
    isolate(c, 4);
    uint64_t index = propose(c, l, "x", 0);
    run(c, 600);
    assert_true(raft_commit_index(c->n[l].raft) >= index);
    assert_int_equal(raft_role(c->n[4].raft), RAFT_FOLLOWER);
    assert_int_equal(raft_term(c->n[4].raft), raft_term(c->n[l].raft));
    heal(c);
    run(c, 100);
    change(c, l, RAFT_CHANGE_PROMOTE, 4, 0);
    run(c, 100);
    assert_int_equal(raft_config_voter_count(raft_config(c->n[4].raft)), 4);
    change(c, l, RAFT_CHANGE_REMOVE, (uint32_t)l, 0);
    run(c, 50);
    assert_int_not_equal(raft_role(c->n[l].raft), RAFT_LEADER);
    int removed = l;
    run(c, 600);
    l = leader(c);
    assert_true(l != 0 && l != removed);
    assert_null(raft_config_find(raft_config(c->n[l].raft), (uint32_t)removed));
    index = propose(c, l, "after-remove", 0);
    run(c, 100);
    assert_true(raft_commit_index(c->n[l].raft) >= index);
    cluster_free(c);
}

/* capkv --join: a server with no configuration waits; ADD_LEARNER with promote makes it a
 * learner that the leader promotes by itself once it holds everything committed, and its
 * address travels in the configuration to every server. */
static void test_raft_joining_server_is_promoted_once_caught_up(void **state) {
    (void)state;
    struct cluster *c = cluster_new(4, 3, 12);
    raft_free(c->n[4].raft);
    struct raft_config none = {0};
    c->n[4].raft = new_raft(c, 4, &none, 12 * 131 + 4);
    int l = wait_leader(c);
    for (int i = 0; i < 20; i++) propose(c, l, "before", 0);
    run(c, 600); /* the joiner never campaigns: it is in no configuration */
    assert_int_equal(raft_role(c->n[4].raft), RAFT_FOLLOWER);
    assert_int_equal(raft_term(c->n[4].raft), 0);
    struct raft_event ev = {.kind = RAFT_EVENT_CHANGE, .now_ms = c->now};
    ev.change.kind = RAFT_CHANGE_ADD_LEARNER;
    ev.change.id = 4;
    ev.change.addr = "127.0.0.1:8004";
    ev.change.promote = true;
    step(c, l, &ev, 0);
    run(c, 300);
    for (int i = 1; i <= 4; i++) {
        const struct raft_config *cfg = raft_config(c->n[i].raft);
        const struct raft_server *s = raft_config_find(cfg, 4);
        assert_non_null(s);
        assert_true(s->voter);
        assert_false(s->promote);
        assert_string_equal(s->addr, "127.0.0.1:8004");
        assert_int_equal(raft_config_voter_count(cfg), 4);
    }
    assert_int_equal(raft_commit_index(c->n[4].raft), raft_commit_index(c->n[l].raft));
    /* Now a voter: with two of four cut off, nothing commits; with one, it does. */
    isolate(c, l == 1 ? 2 : 1);
    uint64_t index = propose(c, l, "with-4", 0);
    run(c, 100);
    assert_true(raft_commit_index(c->n[l].raft) >= index);
    cluster_free(c);
}

/* With a trail of entries kept behind each snapshot, a follower a little behind catches up
 * from the log; one further behind than the trail still gets the snapshot. */
static void test_raft_log_trail_spares_a_follower_the_snapshot(void **state) {
    (void)state;
    struct cluster *c = cluster_new(3, 3, 21);
    for (int i = 1; i <= 3; i++) { /* the same servers, with a trail of 40 entries */
        raft_free(c->n[i].raft);
        struct raft_config all = {.count = 3};
        for (uint32_t k = 0; k < 3; k++)
            all.servers[k] = (struct raft_server){.id = k + 1, .voter = true};
        c->trail = 40;
        c->n[i].raft = new_raft(c, i, &all, 21 * 131 + (uint64_t)i);
    }
    int l = wait_leader(c);
    int f = l == 3 ? 2 : 3;
    char data[32];
    for (int round = 0; round < 2; round++) {
        isolate(c, f);
        int count = round == 0 ? 30 : 80; /* within the trail, then beyond it */
        for (int k = 0; k < count; k++) {
            snprintf(data, sizeof(data), "r%dv%d", round, k);
            propose(c, l, data, 0);
        }
        run(c, 60);
        for (int i = 1; i <= 3; i++)
            if (i != f) take_snapshot(c, i);
        assert_int_equal(raft_snapshot_index(c->n[l].raft), raft_applied_index(c->n[l].raft));
        assert_true(raft_first_index(c->n[l].raft) <= raft_snapshot_index(c->n[l].raft));
        uint64_t restores = c->n[f].restores;
        uint64_t after = propose(c, l, "after", 0);
        heal(c);
        run(c, 300);
        assert_int_equal(c->n[f].restores, restores + (round == 0 ? 0 : 1));
        assert_int_equal(c->n[f].sm_index, after);
        assert_int_equal(c->n[f].sm_hash, c->n[l].sm_hash);
    }
    cluster_free(c);
}

static int transfer(struct cluster *c, int id, uint32_t target) {
    struct raft_event ev = {.kind = RAFT_EVENT_TRANSFER, .now_ms = c->now};
    ev.transfer_target = target;
    struct raft_effects fx;
    int rc = raft_step(c->n[id].raft, &ev, &fx);
    handle_effects(c, id, &fx);
    return rc;
}

/* Thesis §3.10: leadership transfer hands over to an up-to-date target; proposals are
 * refused meanwhile; a transfer that cannot finish is aborted after an election timeout. */
static void test_raft_transfers_leadership(void **state) {
    (void)state;
    struct cluster *c = cluster_new(3, 3, 11);
    int l = wait_leader(c);
    int t = l == 1 ? 2 : 1;
    propose(c, l, "before", 0);
    assert_int_equal(transfer(c, l, (uint32_t)t), 0);
    propose(c, l, "during", ERR_TRANSFERRING);
    run(c, 50);
    assert_int_equal(leader(c), t);
    /* Abort: the target is unreachable. */
    int u = 0;
    for (int i = 1; i <= 3; i++)
        if (i != t) u = i;
    isolate(c, u);
    assert_int_equal(transfer(c, t, (uint32_t)u), 0);
    propose(c, t, "during", ERR_TRANSFERRING);
    run(c, 150);
    assert_int_equal(leader(c), t);
    propose(c, t, "after-abort", 0);
    cluster_free(c);
}

/* Thesis §6.4: ReadIndex is answered only after a majority acknowledged a heartbeat round
 * started after the read; one round serves a batch; a deposed leader answers none. */
static void test_raft_read_index_waits_for_majority_round(void **state) {
    (void)state;
    struct cluster *c = cluster_new(3, 3, 12);
    int l = wait_leader(c);
    uint64_t w = propose(c, l, "w", 0);
    run(c, 50);
    uint64_t hb_before = c->msg_count[RAFT_MSG_HEARTBEAT];
    read_index(c, l, 7, 0);
    read_index(c, l, 8, 0);
    read_index(c, l, 9, 0);
    assert_false(read_ready(c, l, 7, NULL));
    assert_int_equal(c->msg_count[RAFT_MSG_HEARTBEAT] - hb_before, 2); /* one round */
    deliver_all(c);
    uint64_t index = 0;
    assert_true(read_ready(c, l, 7, &index));
    assert_true(index >= w);
    assert_true(read_ready(c, l, 8, NULL) && read_ready(c, l, 9, NULL));
    read_index(c, l == 1 ? 2 : 1, 10, ERR_NOTLEADER);
    /* A deposed (isolated) leader never answers; its reads fail when it steps down. */
    isolate(c, l);
    read_index(c, l, 11, 0);
    run(c, 300);
    assert_false(read_ready(c, l, 11, NULL));
    assert_true(read_failed(c, l, 11));
    cluster_free(c);
}

/* Thesis §6.4.1: the lease holds after a majority acknowledged recent heartbeats and
 * expires election_timeout_min - drift after the last acknowledged one was sent. */
static void test_raft_lease_expires_without_majority(void **state) {
    (void)state;
    struct cluster *c = cluster_new(3, 3, 13);
    int l = wait_leader(c);
    run(c, 60);
    assert_true(raft_lease_valid(c->n[l].raft, c->now));
    assert_false(raft_lease_valid(c->n[l == 1 ? 2 : 1].raft, c->now));
    isolate(c, l);
    uint64_t cut_at = c->now;
    run(c, 60);
    assert_true(raft_lease_valid(c->n[l].raft, c->now));
    assert_false(raft_lease_valid(c->n[l].raft, cut_at + 90));
    cluster_free(c);
}

/* Durability before counting: the leader counts itself in a commit majority only for
 * entries the caller reported PERSISTED. */
static void test_raft_leader_counts_itself_only_after_persisted(void **state) {
    (void)state;
    struct cluster *c = cluster_new(1, 1, 14);
    int l = wait_leader(c);
    run(c, 10);
    c->n[l].manual_persist = true;
    uint64_t index = propose(c, l, "solo", 0);
    run(c, 100);
    assert_true(raft_commit_index(c->n[l].raft) < index);
    /* A stale acknowledgement (wrong term) does not count either. */
    struct raft_event ev = {.kind = RAFT_EVENT_PERSISTED, .now_ms = c->now};
    ev.persisted.index = index;
    ev.persisted.term = raft_term(c->n[l].raft) + 1;
    step(c, l, &ev, 0);
    assert_true(raft_commit_index(c->n[l].raft) < index);
    persist_now(c, l);
    assert_int_equal(raft_commit_index(c->n[l].raft), index);
    cluster_free(c);

    c = cluster_new(3, 3, 15);
    l = wait_leader(c);
    int f = l == 3 ? 2 : 3;
    isolate(c, f);
    c->n[l].manual_persist = true;
    index = propose(c, l, "trio", 0);
    run(c, 50);
    assert_true(raft_commit_index(c->n[l].raft) < index); /* one follower is not two */
    persist_now(c, l);
    assert_int_equal(raft_commit_index(c->n[l].raft), index);
    cluster_free(c);
}

/* STYLE.md limits: at most RAFT_INFLIGHT_MAX unacknowledged appends per follower, and
 * at most msg_bytes_max entry bytes per message (a larger entry travels alone). */
static void test_raft_limits_inflight_and_batch_bytes(void **state) {
    (void)state;
    struct cluster *c = cluster_new(3, 3, 16);
    int l = wait_leader(c);
    run(c, 50);
    int f = l == 1 ? 2 : 1;
    for (int i = 1; i <= 3; i++) c->cut[f][i] = true; /* f hears but never answers */
    uint64_t appends_before = c->appends_to[f];
    for (int k = 0; k < 100; k++) {
        propose(c, l, "e", 0);
        deliver_all(c);
    }
    uint64_t to_f = c->appends_to[f] - appends_before;
    assert_true(to_f <= RAFT_INFLIGHT_MAX + 2);
    assert_true(to_f >= RAFT_INFLIGHT_MAX);
    heal(c);
    static char big[3000], huge[9000];
    memset(big, 'b', sizeof(big) - 1);
    memset(huge, 'h', sizeof(huge) - 1);
    isolate(c, f);
    for (int k = 0; k < 10; k++) propose(c, l, big, 0);
    uint64_t last = propose(c, l, huge, 0);
    c->max_msg_entry_bytes = 0;
    heal(c);
    run(c, 300);
    assert_true(raft_commit_index(c->n[f].raft) >= last);
    assert_int_equal(c->max_msg_entry_bytes, sizeof(huge) - 1);
    assert_true(c->max_entries_seen <= RAFT_MSG_ENTRIES_MAX);
    cluster_free(c);
}

/* Raft §5.2, §5.3 under faults: 200 seeds of random partitions, drops and reordering over
 * 3 servers; election safety and log matching checked after every step, state-machine
 * safety at every apply, and the cluster converges once healed. */
static void test_raft_random_faults_keep_safety(void **state) {
    (void)state;
    for (uint64_t seed = 1; seed <= 200; seed++) {
        struct cluster *c = cluster_new(3, 3, seed * 7919);
        c->reorder = true;
        for (int k = 0; k < 300; k++) {
            uint64_t x = prng_range(&c->prng, 0, 100);
            if (x < 3) {
                heal(c);
                int a = (int)prng_range(&c->prng, 1, 4), b = (int)prng_range(&c->prng, 1, 4);
                c->cut[a][b] = c->cut[b][a] = a != b;
            } else if (x < 5) {
                heal(c);
            } else if (x < 7) {
                c->drop_pct = (uint32_t)prng_range(&c->prng, 0, 30);
            } else if (x < 30 && leader(c) != 0) {
                struct raft_event ev = {.kind = RAFT_EVENT_PROPOSE, .now_ms = c->now};
                ev.propose.data = (const uint8_t *)"r";
                ev.propose.bytes = 1;
                struct raft_effects fx;
                raft_step(c->n[leader(c)].raft, &ev, &fx);
                handle_effects(c, leader(c), &fx);
            }
            c->now += 5;
            tick_all(c);
            size_t n = c->q_len;
            for (size_t d = 0; d < n && c->q_len > 0; d++) deliver_one(c);
        }
        heal(c);
        c->drop_pct = 0;
        c->reorder = false;
        run(c, 1000);
        for (int k = 0; k < 200 && leader(c) == 0; k++) run(c, 5);
        run(c, 100);
        int l = leader(c);
        assert_true(l != 0);
        for (int i = 1; i <= 3; i++)
            assert_int_equal(raft_commit_index(c->n[i].raft), raft_commit_index(c->n[l].raft));
        cluster_free(c);
    }
}

/* Batching: deferred proposals append locally only; one REPLICATE sends them together. */
static void test_raft_deferred_proposals_go_out_in_one_append(void **state) {
    (void)state;
    struct cluster *c = cluster_new(3, 3, 91);
    int l = wait_leader(c);
    deliver_all(c);
    uint64_t appends_before = c->msg_count[RAFT_MSG_APPEND];
    for (int i = 0; i < 5; i++) {
        struct raft_event ev = {.kind = RAFT_EVENT_PROPOSE, .now_ms = c->now};
        ev.propose.data = (const uint8_t *)"batched";
        ev.propose.bytes = 7;
        ev.propose.defer = true;
        step(c, l, &ev, 0);
    }
    assert_int_equal(c->msg_count[RAFT_MSG_APPEND], appends_before);
    struct raft_event rep = {.kind = RAFT_EVENT_REPLICATE, .now_ms = c->now};
    step(c, l, &rep, 0);
    /* One message per follower, carrying all five entries. */
    assert_int_equal(c->msg_count[RAFT_MSG_APPEND], appends_before + 2);
    assert_true(c->max_entries_seen >= 5);
    deliver_all(c);
    uint64_t last = raft_last_index(c->n[l].raft);
    run(c, 200);
    assert_true(raft_commit_index(c->n[l].raft) >= last);
    int follower = l == 1 ? 2 : 1;
    step(c, follower, &rep, ERR_NOTLEADER);
    cluster_free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raft_elects_a_single_leader),
        cmocka_unit_test(test_raft_reelects_leader_after_leader_isolation),
        cmocka_unit_test(test_raft_minority_never_elects_nor_commits),
        cmocka_unit_test(test_raft_prevote_stops_rejoining_node_from_disrupting),
        cmocka_unit_test(test_raft_check_quorum_steps_down_isolated_leader),
        cmocka_unit_test(test_raft_replicates_and_commits_with_pipelining),
        cmocka_unit_test(test_raft_overwrites_conflicting_uncommitted_entries),
        cmocka_unit_test(test_raft_refuses_vote_when_candidate_log_is_behind),
        cmocka_unit_test(test_raft_never_commits_old_term_entry_by_counting),
        cmocka_unit_test(test_raft_snapshot_brings_lagging_follower_up_to_date),
        cmocka_unit_test(test_raft_log_trail_spares_a_follower_the_snapshot),
        cmocka_unit_test(test_raft_membership_add_learner_promote_remove),
        cmocka_unit_test(test_raft_joining_server_is_promoted_once_caught_up),
        cmocka_unit_test(test_raft_transfers_leadership),
        cmocka_unit_test(test_raft_read_index_waits_for_majority_round),
        cmocka_unit_test(test_raft_lease_expires_without_majority),
        cmocka_unit_test(test_raft_leader_counts_itself_only_after_persisted),
        cmocka_unit_test(test_raft_limits_inflight_and_batch_bytes),
        cmocka_unit_test(test_raft_random_faults_keep_safety),
        cmocka_unit_test(test_raft_deferred_proposals_go_out_in_one_append),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
