/*
 * Unit tests of the simulator's node target (sim/sim.h, --core node): exact replay of a seed, and a
 * few short seeds on 3 and 5 node cores (and with expiry) pass every check, and leader mode's lost
 * acknowledged writes are counted from the final log.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "sim.h"

static struct sim_options test_sim_node_options(uint64_t seed, uint32_t nodes) {
    struct sim_options o;
    sim_options_default(&o);
    o.target = SIM_TARGET_NODE;
    o.seed = seed;
    o.node_count = nodes;
    o.run_ms = 2000;
    return o;
}

/* STYLE.md: a failing seed replays exactly, so the same seed must give the same trace. */
static void test_sim_node_same_seed_gives_same_trace_hash(void **state) {
    (void)state;
    struct sim_options o = test_sim_node_options(7, 3);
    struct sim_stats a, b, c;
    assert_int_equal(sim_run(&o, &a), 0);
    assert_int_equal(sim_run(&o, &b), 0);
    assert_int_equal(a.trace_hash, b.trace_hash);
    assert_int_equal(a.steps, b.steps);
    assert_int_equal(a.ops_ok, b.ops_ok);
    assert_true(a.steps > 100);
    assert_true(a.ops_ok > 10);
    o.seed = 8;
    assert_int_equal(sim_run(&o, &c), 0);
    assert_true(c.trace_hash != a.trace_hash);
}

static void test_sim_node_a_few_seeds_pass(void **state) {
    (void)state;
    for (uint64_t seed = 1; seed <= 4; seed++) {
        struct sim_options o = test_sim_node_options(seed, seed % 2 == 0 ? 5 : 3);
        o.expiry = seed == 3;
        struct sim_stats s;
        assert_int_equal(sim_run(&o, &s), 0);
        assert_false(s.failed);
        assert_true(s.lincheck_checked); /* a verdict of a check that ran, not a default */
        assert_int_equal(s.lincheck, LINCHECK_LINEARIZABLE);
        assert_true(s.leaders >= 1);
    }
}

/* Leader mode answers a write after the leader's own fsync, so a leader cut off from the
 * majority loses writes it acknowledged; that alone excuses a non-linearizable history.
 * Seed 3 loses 5 and its history is not linearizable (seed 25, used before, lost 9 until
 * followers answered heartbeats without waiting for their sync; now it loses 2, which its
 * history happens to survive): the simulator counts them from the final log, or
 * the strict lincheck would fail the seed. */
static void test_sim_node_leader_mode_counts_acked_writes_lost_behind_a_snapshot(void **state) {
    (void)state;
    struct sim_options o = test_sim_node_options(3, 3);
    o.replication = SIM_REPLICATION_LEADER;
    struct sim_stats s;
    assert_int_equal(sim_run(&o, &s), 0);
    assert_int_equal(s.lost_acked_writes, 5);
    assert_true(s.lincheck_checked);
    assert_int_equal(s.lincheck, LINCHECK_NOT_LINEARIZABLE);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sim_node_same_seed_gives_same_trace_hash),
        cmocka_unit_test(test_sim_node_a_few_seeds_pass),
        cmocka_unit_test(test_sim_node_leader_mode_counts_acked_writes_lost_behind_a_snapshot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
