/*
 * Unit tests of the deterministic simulator (sim/): exact replay, the invariant checker
 * catching planted violations, the virtual network's loss and partitions, and a short run
 * of a few seeds on 3 and 5 nodes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "sim.h"
#include "sim_check.h"
#include "sim_net.h"
#include "raft/raft.h"

static struct sim_options test_sim_options(uint64_t seed, uint32_t nodes) {
    struct sim_options o;
    sim_options_default(&o);
    o.seed = seed;
    o.node_count = nodes;
    o.run_ms = 2000;
    return o;
}

/* STYLE.md: a failing seed replays exactly, so the same seed must give the same trace. */
static void test_sim_same_seed_gives_same_trace_hash(void **state) {
    (void)state;
    struct sim_options o = test_sim_options(7, 3);
    struct sim_stats a, b, c;
    assert_int_equal(sim_run(&o, &a), 0);
    assert_int_equal(sim_run(&o, &b), 0);
    assert_int_equal(a.trace_hash, b.trace_hash);
    assert_int_equal(a.steps, b.steps);
    assert_int_equal(a.ops_ok, b.ops_ok);
    assert_true(a.steps > 100);
    o.seed = 8;
    assert_int_equal(sim_run(&o, &c), 0);
    assert_true(c.trace_hash != a.trace_hash);
}

/* Raft §5.2 election safety: a planted second leader in one term is reported. */
static void test_sim_check_catches_a_second_leader_in_a_term(void **state) {
    (void)state;
    struct sim_check check;
    sim_check_init(&check);
    assert_int_equal(sim_check_leader(&check, 3, 1, NULL), 0);
    assert_int_equal(sim_check_leader(&check, 3, 1, NULL), 0);
    assert_int_equal(sim_check_leader(&check, 4, 2, NULL), 0);
    assert_false(check.failed);
    assert_int_equal(sim_check_leader(&check, 3, 2, NULL), -1);
    assert_true(check.failed);
    assert_non_null(strstr(check.what, "election safety"));
    sim_check_deinit(&check);
}

/* Raft Figure 3: state machine safety and log matching violations are reported. */
static void test_sim_check_catches_divergent_applies_and_logs(void **state) {
    (void)state;
    struct sim_check check;
    sim_check_init(&check);
    assert_int_equal(sim_check_apply(&check, 1, 5, 2, 0xabc), 0);
    assert_int_equal(sim_check_apply(&check, 2, 5, 2, 0xabc), 0);
    assert_true(sim_check_applied_has(&check, 5, 2));
    assert_false(sim_check_applied_has(&check, 5, 3));
    assert_int_equal(sim_check_apply(&check, 3, 5, 3, 0xabc), -1);
    assert_non_null(strstr(check.what, "state machine safety"));
    sim_check_deinit(&check);

    sim_check_init(&check);
    assert_int_equal(sim_check_entry(&check, 1, 9, 4, 0x11, 4), 0);
    assert_int_equal(sim_check_entry(&check, 2, 9, 4, 0x11, 4), 0);
    assert_int_equal(sim_check_entry(&check, 3, 9, 4, 0x11, 3), -1); /* other history */
    assert_non_null(strstr(check.what, "log matching"));
    sim_check_deinit(&check);
}

/* A raft of 3 voters recovered in term with entries 1.. of the given terms (caller frees). */
static struct raft *test_sim_raft(uint32_t id, uint64_t term, const uint64_t *terms, size_t n) {
    struct raft_config config = {.count = 3};
    for (uint32_t i = 0; i < 3; i++) config.servers[i] = (struct raft_server){i + 1, true};
    struct raft_entry entries[8];
    assert_true(n <= 8);
    for (size_t i = 0; i < n; i++)
        entries[i] = (struct raft_entry){.term = terms[i], .index = i + 1, .type = RAFT_ENTRY_NOOP};
    struct raft_options o;
    raft_options_default(&o);
    o.id = id;
    o.seed = id;
    o.hard_state.term = term;
    o.snapshot_config = config;
    o.entries = entries;
    o.entry_count = n;
    o.now_ms = 1000;
    struct raft *r = NULL;
    assert_int_equal(raft_new(&o, &r, NULL), 0);
    return r;
}

/* Raft §5.4.3: an entry committed in term 12 need not be in the log of a leader of term 11
 * still acting (seed 60139), but must be in every leader's of a later term. */
static void test_sim_check_leader_completeness_counts_from_the_commit_term(void **state) {
    (void)state;
    const uint64_t committed_terms[] = {10, 10}, stale_terms[] = {10, 11};
    struct raft *committer = test_sim_raft(3, 12, committed_terms, 2);
    struct raft *stale = test_sim_raft(1, 11, stale_terms, 2);
    struct raft *later = test_sim_raft(2, 13, stale_terms, 2);
    struct sim_check check;
    sim_check_init(&check);
    assert_int_equal(sim_check_leader(&check, 11, 1, stale), 0);
    assert_int_equal(sim_check_leader(&check, 12, 3, committer), 0);
    assert_int_equal(sim_check_commit(&check, 3, committer, 0, 2), 0);
    const struct raft *leaders[] = {stale, committer};
    assert_int_equal(sim_check_commit_leaders(&check, leaders, 2, 0, 2), 0);
    assert_false(check.failed);
    assert_int_equal(sim_check_leader(&check, 13, 2, later), -1);
    assert_non_null(strstr(check.what, "leader completeness: leader 2 of term 13 lacks entry 2"));
    sim_check_deinit(&check);
    /* Known committed in term 10 (by its leader): the leader of term 11 must hold it. */
    struct raft *old = test_sim_raft(3, 10, committed_terms, 2);
    sim_check_init(&check);
    assert_int_equal(sim_check_leader(&check, 11, 1, stale), 0);
    assert_int_equal(sim_check_commit(&check, 3, old, 0, 2), 0);
    assert_int_equal(sim_check_commit_leaders(&check, leaders, 1, 0, 2), -1);
    assert_non_null(strstr(check.what, "lacks entry 2 (term 10) committed in term 10"));
    sim_check_deinit(&check);
    raft_free(old);
    raft_free(later);
    raft_free(stale);
    raft_free(committer);
}

static size_t test_sim_net_drain(struct sim_net *net, uint64_t now, uint32_t *from_to) {
    struct sim_packet p;
    size_t n = 0;
    while (sim_net_pop(net, now, &p)) {
        if (from_to != NULL) from_to[n] = p.from * 10 + p.to;
        n++;
        free(p.bytes);
    }
    return n;
}

/* The network loses what it is told to lose and cuts links as partitioned. */
static void test_sim_net_drops_and_partitions_as_configured(void **state) {
    (void)state;
    struct sim_net_options o = {.delay_ms_min = 1, .delay_ms_max = 5};
    struct sim_net net;
    sim_net_init(&net, 1, &o);
    const uint8_t byte = 7;
    for (int i = 0; i < 100; i++) sim_net_send(&net, 0, 1, 2, &byte, 1);
    assert_int_equal(test_sim_net_drain(&net, 0, NULL), 0); /* not due yet */
    assert_int_equal(test_sim_net_drain(&net, 5, NULL), 100);
    o.loss_permille = SIM_NET_PERMILLE;
    sim_net_set_options(&net, &o);
    for (int i = 0; i < 100; i++) sim_net_send(&net, 10, 1, 2, &byte, 1);
    assert_int_equal(test_sim_net_drain(&net, 100, NULL), 0);
    assert_int_equal(net.counts.lost, 100);
    o.loss_permille = 0;
    sim_net_set_options(&net, &o);
    uint32_t side[3] = {0, 0, 1}; /* 1,2 | 3 */
    sim_net_partition(&net, side, 3);
    assert_false(sim_net_link_up(&net, 1, 3));
    assert_false(sim_net_link_up(&net, 3, 2));
    assert_true(sim_net_link_up(&net, 1, 2));
    sim_net_send(&net, 200, 1, 3, &byte, 1);
    sim_net_send(&net, 200, 3, 1, &byte, 1);
    sim_net_send(&net, 200, 2, 1, &byte, 1);
    uint32_t seen[4];
    assert_int_equal(test_sim_net_drain(&net, 300, seen), 1);
    assert_int_equal(seen[0], 21);
    uint32_t bridge[3] = {0, SIM_NET_GROUP_BRIDGE, 1}; /* 1 | 3, 2 sees both */
    sim_net_partition(&net, bridge, 3);
    assert_true(sim_net_link_up(&net, 1, 2) && sim_net_link_up(&net, 2, 3));
    assert_false(sim_net_link_up(&net, 1, 3));
    sim_net_heal(&net);
    sim_net_cut_link(&net, 1, 2, true); /* one way */
    assert_false(sim_net_link_up(&net, 1, 2));
    assert_true(sim_net_link_up(&net, 2, 1));
    sim_net_deinit(&net);
}

/* A short run of a few seeds on 3 and 5 nodes passes every check. */
static void test_sim_short_run_of_seeds_passes(void **state) {
    (void)state;
    for (uint64_t seed = 1; seed <= 4; seed++) {
        for (uint32_t nodes = 3; nodes <= 5; nodes += 2) {
            struct sim_options o = test_sim_options(seed, nodes);
            struct sim_stats s;
            o.report = stderr;
            assert_int_equal(sim_run(&o, &s), 0);
            assert_true(s.ops_ok > 0);
            assert_true(s.leaders > 0);
            assert_true(s.lincheck_checked);
            assert_int_equal(s.lincheck, LINCHECK_LINEARIZABLE);
        }
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sim_same_seed_gives_same_trace_hash),
        cmocka_unit_test(test_sim_check_catches_a_second_leader_in_a_term),
        cmocka_unit_test(test_sim_check_catches_divergent_applies_and_logs),
        cmocka_unit_test(test_sim_check_leader_completeness_counts_from_the_commit_term),
        cmocka_unit_test(test_sim_net_drops_and_partitions_as_configured),
        cmocka_unit_test(test_sim_short_run_of_seeds_passes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
