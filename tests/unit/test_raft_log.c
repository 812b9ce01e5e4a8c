/*
 * Raft's in-memory log (src/raft/log.c) on its own: entry data packed into mapped blocks
 * that go back to the system once truncation dropped all their entries, or in steps
 * (raft_log_release) once compaction did.
 * Random appends, truncations and compactions are checked against a model of the data.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "base/prng.h"
#include "raft/internal.h"

#define LOG_TEST_ENTRIES 4000

/* Entry index's data: its bytes follow from the index and a generation (a truncated
 * index appended again has other data). */
static void fill(uint8_t *data, size_t bytes, uint64_t index, uint32_t gen) {
    for (size_t i = 0; i < bytes; i++) data[i] = (uint8_t)(index * 131 + gen * 7 + i);
}

struct model {
    size_t bytes[LOG_TEST_ENTRIES + 1];
    uint32_t gen[LOG_TEST_ENTRIES + 1];
};

static void append(struct raft_log *log, struct model *m, uint64_t index, size_t bytes,
                   uint32_t gen, uint8_t *scratch) {
    fill(scratch, bytes, index, gen);
    struct raft_entry e = {.term = 1,
                           .index = index,
                           .type = RAFT_ENTRY_NORMAL,
                           .data_bytes = (uint32_t)bytes,
                           .data = bytes > 0 ? scratch : NULL};
    raft_log_append(log, &e);
    m->bytes[index] = bytes;
    m->gen[index] = gen;
}

static void check(const struct raft_log *log, const struct model *m, uint8_t *scratch) {
    uint64_t total = 0;
    for (uint64_t i = log->snapshot_index + 1; i <= raft_log_last_index(log); i++) {
        const struct raft_entry *e = raft_log_get(log, i);
        assert_non_null(e);
        assert_int_equal(e->data_bytes, m->bytes[i]);
        fill(scratch, m->bytes[i], i, m->gen[i]);
        if (m->bytes[i] > 0) assert_memory_equal(e->data, scratch, m->bytes[i]);
        total += m->bytes[i];
    }
    assert_int_equal(log->bytes, total);
    /* No block outlives its entries: each still holds one entry of the log, or waits for
     * raft_log_release having held only compacted ones. */
    for (size_t b = 0; b < log->retired; b++)
        assert_true(log->blocks[b].last_index <= log->snapshot_index);
    for (size_t b = log->retired; b < log->block_count; b++) {
        assert_true(log->blocks[b].last_index > log->snapshot_index);
        assert_true(log->blocks[b].first_index <= raft_log_last_index(log));
    }
}

static void test_raft_log_blocks_follow_appends_truncations_and_compactions(void **state) {
    (void)state;
    uint8_t *scratch = malloc(3u << 20);
    struct model *m = calloc(1, sizeof(*m));
    assert_non_null(scratch);
    assert_non_null(m);
    for (uint64_t seed = 1; seed <= 20; seed++) {
        struct prng rng;
        prng_init(&rng, seed);
        struct raft_config config = {0};
        struct raft_log log;
        raft_log_init(&log, 0, 0, &config);
        uint32_t gen = 0;
        while (raft_log_last_index(&log) < LOG_TEST_ENTRIES) {
            uint64_t r = prng_next(&rng) % 100;
            uint64_t last = raft_log_last_index(&log);
            if (r < 80) {
                /* mostly small, some empty, now and then one bigger than a block */
                uint64_t kind = prng_next(&rng) % 50;
                size_t bytes = kind == 0   ? (size_t)(1u << 20) + prng_next(&rng) % (2u << 20)
                               : kind < 5  ? 0
                               : kind < 10 ? (size_t)(prng_next(&rng) % 300000)
                                           : (size_t)(prng_next(&rng) % 2000);
                append(&log, m, last + 1, bytes, gen, scratch);
            } else if (r < 90 && last > log.snapshot_index) {
                uint64_t from =
                    log.snapshot_index + 1 + prng_next(&rng) % (last - log.snapshot_index);
                raft_log_truncate(&log, from);
                gen++;
            } else if (last > log.snapshot_index) {
                uint64_t to =
                    log.snapshot_index + prng_next(&rng) % (last - log.snapshot_index + 1);
                raft_log_compact(&log, to, &config);
            }
            if (prng_next(&rng) % 4 == 0) {
                size_t retired = log.retired, budget = (size_t)(prng_next(&rng) % 4);
                bool more = raft_log_release(&log, budget);
                assert_int_equal(log.retired, retired > budget ? retired - budget : 0);
                assert_true(more == (log.retired > 0));
            }
            check(&log, m, scratch);
        }
        raft_log_compact(&log, raft_log_last_index(&log), &config);
        assert_int_equal(log.bytes, 0);
        assert_int_equal(log.block_count, log.retired); /* no block holds data */
        while (raft_log_release(&log, 1)) {
        }
        assert_int_equal(log.block_count, 0); /* every block went back */
        raft_log_deinit(&log);
    }
    free(m);
    free(scratch);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_raft_log_blocks_follow_appends_truncations_and_compactions),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
