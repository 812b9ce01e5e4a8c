/* Unit tests for sim/lincheck: linearizability of register histories (Herlihy & Wing 1990),
 * checked with Wing & Gong's search and Lowe's memoization and just-in-time linearization. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "base/err.h"
#include "lincheck.h"

#define TEST_RANDOM_OPS 3000
#define TEST_RANDOM_SEEDS 12
#define TEST_NEVER_WRITTEN 1000000000000ll

/* Parses text into a fresh history, checks it, and returns the verdict; r is re-initialized
 * and must be deinitialized by the caller. */
static enum lincheck_verdict check_text(const char *text, const struct lincheck_options *o,
                                        struct lincheck_result *r) {
    struct lincheck_history h;
    struct errmsg msg = {{0}};
    lincheck_history_init(&h);
    int rc = lincheck_history_parse(&h, text, strlen(text), &msg);
    if (rc != 0) fail_msg("parse: %s", msg.text);
    lincheck_result_init(r);
    assert_int_equal(lincheck_check(&h, o, r), 0);
    lincheck_history_deinit(&h);
    return r->verdict;
}

static void expect(const char *text, enum lincheck_verdict verdict) {
    struct lincheck_result r;
    enum lincheck_verdict got = check_text(text, NULL, &r);
    if (got != verdict) fail_msg("verdict %d, want %d for:\n%s", got, verdict, text);
    lincheck_result_deinit(&r);
}

/* A sequential history is linearizable iff it is a legal sequential history. */
static void test_lincheck_accepts_legal_sequential_history(void **state) {
    (void)state;
    expect("1 0 1 get x -> nil\n"
           "1 2 3 put x 1 -> ok\n"
           "1 4 5 get x -> 1\n"
           "1 6 7 put x 2 -> ok\n"
           "1 8 9 get x -> 2\n",
           LINCHECK_LINEARIZABLE);
    expect("", LINCHECK_LINEARIZABLE);
}

/* A get overlapping a put may take effect on either side of it. */
static void test_lincheck_accepts_overlapping_get_seeing_either_value(void **state) {
    (void)state;
    const char *prefix = "1 0 5 put x 1 -> ok\n"
                         "1 10 20 put x 2 -> ok\n";
    char text[256];
    snprintf(text, sizeof(text), "%s2 12 18 get x -> 1\n", prefix);
    expect(text, LINCHECK_LINEARIZABLE);
    snprintf(text, sizeof(text), "%s2 12 18 get x -> 2\n", prefix);
    expect(text, LINCHECK_LINEARIZABLE);
    /* Equal times overlap: the get invoked at the put's response may see either value. */
    snprintf(text, sizeof(text), "%s2 20 25 get x -> 1\n", prefix);
    expect(text, LINCHECK_LINEARIZABLE);
    snprintf(text, sizeof(text), "%s2 21 25 get x -> 1\n", prefix);
    expect(text, LINCHECK_NOT_LINEARIZABLE);
}

/* Compare-and-set: each success moves the register, each failure saw another value. */
static void test_lincheck_accepts_cas_chains(void **state) {
    (void)state;
    expect("1 0 1 cas x nil 1 -> ok\n"
           "1 2 3 cas x 1 2 -> ok\n"
           "2 4 9 cas x 2 3 -> ok\n"
           "3 5 8 cas x 2 4 -> fail\n"
           "1 10 11 get x -> 3\n"
           "1 12 13 cas x 7 8 -> fail\n",
           LINCHECK_LINEARIZABLE);
    expect("1 0 1 cas x 1 2 -> ok\n", LINCHECK_NOT_LINEARIZABLE);
    expect("1 0 1 put x 1 -> ok\n1 2 3 cas x 1 2 -> fail\n", LINCHECK_NOT_LINEARIZABLE);
}

/* A read that starts after a write completed must see it (or something later). */
static void test_lincheck_rejects_stale_read_after_completed_write(void **state) {
    (void)state;
    struct lincheck_result r;
    assert_int_equal(check_text("1 0 10 put x 1 -> ok\n"
                                "2 20 30 get x -> nil\n",
                                NULL, &r),
                     LINCHECK_NOT_LINEARIZABLE);
    assert_string_equal(r.key, "x");
    assert_int_equal(r.prefix_count, 1);
    assert_int_equal(r.prefix_ids[0], 1);
    assert_int_equal(r.blocked_id, 2);
    assert_false(r.value_after_prefix.nil);
    assert_int_equal(r.value_after_prefix.v, 1);
    lincheck_result_deinit(&r);
}

/* A put of nil deletes (FLUSHALL in the simulator's workload): a read after it sees nil, a
 * cas from nil may follow, and a read that misses a completed delete is refuted. */
static void test_lincheck_put_of_nil_is_a_delete(void **state) {
    (void)state;
    expect("1 0 10 put x 1 -> ok\n"
           "2 20 30 put x nil -> ok\n"
           "1 40 50 get x -> nil\n"
           "3 60 70 cas x nil 4 -> ok\n"
           "1 80 90 get x -> 4\n",
           LINCHECK_LINEARIZABLE);
    expect("1 0 10 put x 1 -> ok\n"
           "2 20 30 put x nil -> ok\n"
           "1 40 50 get x -> 1\n",
           LINCHECK_NOT_LINEARIZABLE);
    expect("1 0 10 put x 1 -> ok\n"
           "2 20 - put x nil -> timeout\n"
           "1 40 50 get x -> 1\n"
           "1 60 70 get x -> nil\n",
           LINCHECK_LINEARIZABLE);
    expect("1 0 10 put x 1 -> ok\n"
           "2 20 - put x nil -> timeout\n"
           "1 40 50 get x -> nil\n"
           "1 60 70 get x -> 1\n",
           LINCHECK_NOT_LINEARIZABLE);
}

/* Two cas from the same expected value cannot both swap. */
static void test_lincheck_rejects_two_cas_succeeding_from_same_value(void **state) {
    (void)state;
    expect("1 0 1 put x 1 -> ok\n"
           "2 5 20 cas x 1 2 -> ok\n"
           "3 6 19 cas x 1 3 -> ok\n",
           LINCHECK_NOT_LINEARIZABLE);
    expect("1 0 1 put x 1 -> ok\n"
           "2 5 20 cas x 1 2 -> ok\n"
           "3 6 19 cas x 2 1 -> ok\n"
           "3 21 22 cas x 1 3 -> ok\n",
           LINCHECK_LINEARIZABLE);
}

/* Reads do not go back in time: r1 saw the new value, a later r2 cannot see the old. */
static void test_lincheck_rejects_read_going_back_in_time(void **state) {
    (void)state;
    const char *base = "1 0 5 put x 1 -> ok\n"
                       "1 10 100 put x 2 -> ok\n"
                       "2 20 30 get x -> 2\n";
    char text[256];
    snprintf(text, sizeof(text), "%s3 40 50 get x -> 1\n", base);
    expect(text, LINCHECK_NOT_LINEARIZABLE);
    snprintf(text, sizeof(text), "%s3 25 50 get x -> 1\n", base); /* overlaps r1: legal */
    expect(text, LINCHECK_LINEARIZABLE);
}

/* An INFO put may take effect at any time after its invocation, or never. */
static void test_lincheck_timed_out_put_may_or_may_not_take_effect(void **state) {
    (void)state;
    expect("1 0 10 put x 1 -> ok\n"
           "2 20 - put x 2 -> timeout\n"
           "3 500 510 get x -> 1\n"
           "3 520 530 get x -> 2\n",
           LINCHECK_LINEARIZABLE);
    expect("1 0 10 put x 1 -> ok\n"
           "2 20 30 put x 2 -> timeout\n"
           "3 500 510 get x -> 1\n",
           LINCHECK_LINEARIZABLE);
    /* ... but not before its invocation, and not twice. */
    expect("2 20 - put x 2 -> timeout\n"
           "3 0 10 get x -> 2\n",
           LINCHECK_NOT_LINEARIZABLE);
    expect("1 0 10 put x 1 -> ok\n"
           "2 20 - put x 2 -> timeout\n"
           "3 30 40 get x -> 2\n"
           "1 50 60 put x 1 -> ok\n"
           "3 70 80 get x -> 2\n",
           LINCHECK_NOT_LINEARIZABLE);
}

/* A timed-out cas takes effect exactly when the register held its expected value. */
static void test_lincheck_timed_out_cas_follows_the_register(void **state) {
    (void)state;
    expect("1 0 1 put x 1 -> ok\n"
           "2 2 - cas x 1 5 -> timeout\n"
           "3 10 11 get x -> 5\n",
           LINCHECK_LINEARIZABLE);
    expect("1 0 1 put x 1 -> ok\n"
           "2 2 - cas x 7 5 -> timeout\n"
           "3 10 11 get x -> 5\n",
           LINCHECK_NOT_LINEARIZABLE);
}

/* A FAIL op definitely did not take effect: observing its value is a violation. */
static void test_lincheck_rejects_observed_failed_put(void **state) {
    (void)state;
    expect("1 0 10 put x 1 -> ok\n"
           "2 20 30 put x 2 -> error\n"
           "3 40 50 get x -> 2\n",
           LINCHECK_NOT_LINEARIZABLE);
    expect("1 0 10 put x 1 -> ok\n"
           "2 20 30 put x 2 -> error\n"
           "3 40 50 get x -> 1\n",
           LINCHECK_LINEARIZABLE);
}

/* P-compositionality: keys are checked apart and the report names the violating key. */
static void test_lincheck_names_the_only_violating_key(void **state) {
    (void)state;
    struct lincheck_result r;
    assert_int_equal(check_text("1 0 10 put a 1 -> ok\n"
                                "1 0 10 put b 1 -> ok\n"
                                "1 0 10 put c 1 -> ok\n"
                                "2 20 30 get a -> 1\n"
                                "2 20 30 get b -> nil\n"
                                "2 20 30 get c -> 1\n",
                                NULL, &r),
                     LINCHECK_NOT_LINEARIZABLE);
    assert_string_equal(r.key, "b");
    assert_int_equal(r.blocked_id, 5);
    lincheck_result_deinit(&r);
    /* The same get on a different key is no violation: keys do not interfere. */
    expect("1 0 10 put a 1 -> ok\n2 20 30 get b -> nil\n", LINCHECK_LINEARIZABLE);
}

/* Exceeding steps_max is "unknown", distinct from both verdicts; a violation still wins. */
static void test_lincheck_reports_unknown_when_budget_is_exhausted(void **state) {
    (void)state;
    char text[4096] = "";
    for (int i = 0; i < 40; i++) {
        char line[64];
        snprintf(line, sizeof(line), "1 %d %d put x %d -> ok\n", 10 * i, 10 * i + 5, i);
        strcat(text, line);
    }
    struct lincheck_options o = {.steps_max = 10};
    struct lincheck_result r;
    assert_int_equal(check_text(text, &o, &r), LINCHECK_UNKNOWN);
    assert_string_equal(r.key, "x");
    assert_false(r.memo_full);
    assert_int_equal(r.steps, 10);
    lincheck_result_deinit(&r);
    o.steps_max = 40;
    assert_int_equal(check_text(text, &o, &r), LINCHECK_LINEARIZABLE);
    lincheck_result_deinit(&r);
    o = (struct lincheck_options){.memo_bytes_max = 1};
    assert_int_equal(check_text(text, &o, &r), LINCHECK_UNKNOWN);
    assert_true(r.memo_full);
    lincheck_result_deinit(&r);
    strcat(text, "2 0 1 get y -> 3\n");
    o = (struct lincheck_options){.steps_max = 10};
    assert_int_equal(check_text(text, &o, &r), LINCHECK_NOT_LINEARIZABLE);
    assert_string_equal(r.key, "y");
    lincheck_result_deinit(&r);
}

/* The INFO reductions lose nothing: an unread timed-out put may still be what made a cas
 * fail, and many unread timed-out puts still cannot explain a value nobody wrote. */
static void test_lincheck_unread_timed_out_put_can_explain_failed_cas(void **state) {
    (void)state;
    expect("1 0 1 put x 1 -> ok\n"
           "2 2 - put x 7 -> timeout\n"
           "3 10 11 cas x 1 2 -> fail\n"
           "3 12 13 put x 3 -> ok\n"
           "3 14 15 get x -> 3\n",
           LINCHECK_LINEARIZABLE);
    char text[4096] = "1 0 1 put x 1 -> ok\n";
    for (int i = 0; i < 60; i++) {
        char line[64];
        snprintf(line, sizeof(line), "%d %d - put x %d -> timeout\n", 10 + i, 2 + i, 100 + i);
        strcat(text, line);
    }
    strcat(text, "3 500 501 cas x 1 2 -> fail\n3 502 503 get x -> 1\n");
    expect(text, LINCHECK_NOT_LINEARIZABLE);
}

/* Lowe's memo: 12 overlapping puts then an impossible read would be 12! orders without it. */
static void test_lincheck_memo_prunes_permutations_of_concurrent_puts(void **state) {
    (void)state;
    char text[2048] = "";
    for (int i = 1; i <= 12; i++) {
        char line[64];
        snprintf(line, sizeof(line), "%d 0 %d put x %d -> ok\n", i, 100 + i, i);
        strcat(text, line);
    }
    strcat(text, "20 200 210 get x -> 13\n");
    struct lincheck_options o = {.steps_max = 2000000};
    struct lincheck_result r;
    assert_int_equal(check_text(text, &o, &r), LINCHECK_NOT_LINEARIZABLE);
    assert_int_equal(r.prefix_count, 12);
    assert_int_equal(r.blocked_id, 13);
    assert_true(r.steps < 2000000);
    lincheck_result_deinit(&r);
}

static int parse_one(const char *line, struct lincheck_op *op, struct errmsg *msg) {
    return lincheck_parse_line(line, strlen(line), op, msg);
}

/* The text format of lincheck.h: every field lands where documented. */
static void test_lincheck_parse_line_reads_documented_fields(void **state) {
    (void)state;
    struct lincheck_op op;
    struct errmsg msg = {{0}};
    assert_int_equal(parse_one("7 100 250 cas key:1 nil -5 -> ok", &op, &msg), 1);
    assert_int_equal(op.client, 7);
    assert_int_equal(op.invoke_ms, 100);
    assert_int_equal(op.response_ms, 250);
    assert_int_equal(op.kind, LINCHECK_CAS);
    assert_string_equal(op.key, "key:1");
    assert_true(op.arg.nil);
    assert_false(op.arg2.nil);
    assert_int_equal(op.arg2.v, -5);
    assert_int_equal(op.outcome, LINCHECK_OK);
    assert_true(op.swapped);
    assert_int_equal(parse_one("\t1  2 3 get k ->   nil  ", &op, &msg), 1);
    assert_true(op.got.nil);
    assert_int_equal(parse_one("1 2 - put k 9 -> timeout", &op, &msg), 1);
    assert_int_equal(op.outcome, LINCHECK_INFO);
    assert_int_equal(parse_one("1 2 3 cas k 1 2 -> fail", &op, &msg), 1);
    assert_false(op.swapped);
    assert_int_equal(parse_one("1 2 3 get k -> error", &op, &msg), 1);
    assert_int_equal(op.outcome, LINCHECK_FAIL);
    assert_int_equal(parse_one("", &op, &msg), 0);
    assert_int_equal(parse_one("   # a comment", &op, &msg), 0);
}

/* Input is validated with errors, never asserts; each error says what is wrong. */
static void test_lincheck_parse_line_rejects_malformed_lines(void **state) {
    (void)state;
    static const char *const bad[] = {
        "1 2 3 get k",                         /* no result */
        "1 2 3 get k 5 -> 5",                  /* get takes no argument */
        "1 2 3 put k -> ok",                   /* put needs a value */
        "1 2 3 cas k 1 nil -> ok",             /* cas to nil */
        "1 2 3 del k -> ok",                   /* unknown op */
        "x 2 3 get k -> 1",                    /* bad client */
        "1 -2 3 get k -> 1",                   /* negative time */
        "1 5 3 get k -> 1",                    /* response before invoke */
        "1 2 - get k -> 1",                    /* '-' without timeout */
        "1 2 3 get k -> 01",                   /* non-canonical value */
        "1 2 3 get k -> 9223372036854775808",  /* int64 overflow */
        "1 2 18446744073709551616 get k -> 1", /* u64 overflow */
        "1 2 3 put k 4 -> fail",               /* put cannot fail a comparison */
        "1 2 3 cas k 1 2 -> 2",                /* cas result is ok or fail */
        "1 2 3 get k => 1",                    /* arrow */
        "1 2 3 get k -> 1 2 3 4 5",            /* too many fields */
        "1 2 3 get kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk -> 1",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct lincheck_op op;
        struct errmsg msg = {{0}};
        int rc = parse_one(bad[i], &op, &msg);
        if (rc >= 0) fail_msg("accepted: %s", bad[i]);
        assert_true(msg.text[0] != '\0');
    }
}

/* A history parse error names the line; earlier lines stay appended. */
static void test_lincheck_history_parse_names_the_bad_line(void **state) {
    (void)state;
    const char *text = "# header\n1 0 1 put x 1 -> ok\n\n1 2 3 get x -> one\n";
    struct lincheck_history h;
    struct errmsg msg = {{0}};
    lincheck_history_init(&h);
    assert_int_equal(lincheck_history_parse(&h, text, strlen(text), &msg), ERR_INVALID);
    assert_non_null(strstr(msg.text, "line 4:"));
    assert_int_equal(h.op_count, 1);
    assert_int_equal(h.ops[0].id, 2);
    assert_ptr_equal(lincheck_history_find(&h, 2), &h.ops[0]);
    assert_null(lincheck_history_find(&h, 4));
    lincheck_history_deinit(&h);
}

/* lincheck_op_format writes the text format back, so the parser reads the same op. */
static void test_lincheck_op_format_round_trips(void **state) {
    (void)state;
    static const char *const lines[] = {
        "1 2 3 get k -> nil",       "1 2 3 get k -> -7",       "4 5 6 put k 8 -> ok",
        "4 5 6 cas k nil 8 -> ok",  "4 5 6 cas k 1 8 -> fail", "4 5 - put k 8 -> timeout",
        "4 5 9 cas k 1 2 -> error",
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
        struct lincheck_op op;
        char buf[LINCHECK_LINE_BYTES_MAX];
        assert_int_equal(parse_one(lines[i], &op, NULL), 1);
        size_t n = lincheck_op_format(&op, buf, sizeof(buf));
        assert_int_equal(n, strlen(lines[i]));
        assert_string_equal(buf, lines[i]);
    }
}

/* The API validates like the parser: bad ops are refused and leave the history as it was. */
static void test_lincheck_history_append_refuses_invalid_ops(void **state) {
    (void)state;
    struct lincheck_history h;
    lincheck_history_init(&h);
    struct lincheck_op op = {
        .kind = LINCHECK_PUT, .arg = {.v = 1}, .invoke_ms = 5, .response_ms = 4};
    strcpy(op.key, "k");
    assert_int_equal(lincheck_history_append(&h, &op, NULL), ERR_INVALID);
    op.response_ms = 6;
    op.key[0] = '\0';
    assert_int_equal(lincheck_history_append(&h, &op, NULL), ERR_INVALID);
    memset(op.key, 'k', sizeof(op.key)); /* no NUL inside the array */
    assert_int_equal(lincheck_history_append(&h, &op, NULL), ERR_INVALID);
    strcpy(op.key, "k");
    op.kind = (enum lincheck_kind)9;
    assert_int_equal(lincheck_history_append(&h, &op, NULL), ERR_INVALID);
    assert_int_equal(h.op_count, 0);
    op.kind = LINCHECK_PUT;
    op.outcome = LINCHECK_INFO;
    assert_int_equal(lincheck_history_append(&h, &op, NULL), 0);
    assert_int_equal(h.op_count, 1);
    assert_int_equal(h.ops[0].response_ms, UINT64_MAX);
    lincheck_history_deinit(&h);
}

/* ---- Randomized histories from a sequential model ---- */

#define GEN_KEYS 3
#define GEN_WINDOW_MS 30 /* an op is invoked and answered within this of its effect */

struct gen {
    uint64_t seed;
    struct lincheck_value reg[GEN_KEYS];
    int64_t next_value;
};

static uint64_t gen_next(struct gen *g) {
    uint64_t x = (g->seed += 0x9e3779b97f4a7c15ull);
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t gen_below(struct gen *g, uint64_t n) {
    return gen_next(g) % n;
}

/* Applies op at its linearization point when it takes effect; fills in its result. */
static void gen_apply(struct gen *g, struct lincheck_op *op, int key, bool effect) {
    struct lincheck_value *reg = &g->reg[key];
    if (op->kind == LINCHECK_GET) op->got = *reg;
    if (!effect) return;
    if (op->kind == LINCHECK_PUT) *reg = op->arg;
    if (op->kind != LINCHECK_CAS) return;
    bool match = reg->nil ? op->arg.nil : (!op->arg.nil && reg->v == op->arg.v);
    op->swapped = match;
    if (match) *reg = op->arg2;
}

/* One op whose effect happens at lp_ms, invoked and answered within GEN_WINDOW_MS. */
static void gen_op(struct gen *g, struct lincheck_op *op, uint64_t lp_ms, uint64_t id) {
    memset(op, 0, sizeof(*op));
    int key = (int)gen_below(g, GEN_KEYS);
    snprintf(op->key, sizeof(op->key), "k%d", key);
    op->id = id;
    op->client = gen_below(g, 8);
    op->invoke_ms = lp_ms - gen_below(g, GEN_WINDOW_MS);
    op->response_ms = lp_ms + gen_below(g, GEN_WINDOW_MS);
    uint64_t r = gen_below(g, 100);
    op->kind = r < 45 ? LINCHECK_GET : r < 75 ? LINCHECK_PUT : LINCHECK_CAS;
    op->arg = (struct lincheck_value){.v = ++g->next_value};
    if (op->kind == LINCHECK_CAS) {
        op->arg = gen_below(g, 3) ? g->reg[key]
                                  : (struct lincheck_value){.v = 1 + (int64_t)gen_below(g, 9)};
        op->arg2 = (struct lincheck_value){.v = ++g->next_value};
    }
    r = gen_below(g, 100);
    op->outcome = r < 8 ? LINCHECK_INFO : r < 13 ? LINCHECK_FAIL : LINCHECK_OK;
    bool effect = op->outcome == LINCHECK_OK || (op->outcome == LINCHECK_INFO && r < 4);
    gen_apply(g, op, key, effect);
}

static void gen_history(struct lincheck_history *h, uint64_t seed, int count) {
    struct gen g = {.seed = seed, .next_value = 0};
    for (int k = 0; k < GEN_KEYS; k++) g.reg[k] = (struct lincheck_value){.nil = true};
    for (int i = 0; i < count; i++) {
        struct lincheck_op op;
        /* Distinct linearization points 10 ms apart; windows overlap up to 6 ops. */
        gen_op(&g, &op, 100 + 10 * (uint64_t)i, (uint64_t)i + 1);
        assert_int_equal(lincheck_history_append(h, &op, NULL), 0);
    }
}

/* True when a definite put or successful cas on op's key answered before op was invoked:
 * the register is then never nil again (no op deletes). */
static bool gen_written_before(const struct lincheck_history *h, const struct lincheck_op *op) {
    for (size_t i = 0; i < h->op_count; i++) {
        const struct lincheck_op *w = &h->ops[i];
        if (strcmp(w->key, op->key) != 0 || w->outcome != LINCHECK_OK) continue;
        bool writes = w->kind == LINCHECK_PUT || (w->kind == LINCHECK_CAS && w->swapped);
        if (writes && w->response_ms < op->invoke_ms) return true;
    }
    return false;
}

static enum lincheck_verdict gen_check(const struct lincheck_history *h) {
    struct lincheck_result r;
    lincheck_result_init(&r);
    assert_int_equal(lincheck_check(h, NULL, &r), 0);
    enum lincheck_verdict v = r.verdict;
    lincheck_result_deinit(&r);
    return v;
}

/* Histories generated from a legal sequential execution with real-time-respecting windows
 * are linearizable; reading a value never written, or nil after a completed write, is not. */
static void test_lincheck_random_histories_pass_and_mutations_fail(void **state) {
    (void)state;
    for (uint64_t seed = 1; seed <= TEST_RANDOM_SEEDS; seed++) {
        struct lincheck_history h;
        lincheck_history_init(&h);
        gen_history(&h, seed, TEST_RANDOM_OPS);
        if (gen_check(&h) != LINCHECK_LINEARIZABLE) fail_msg("seed %llu", (unsigned long long)seed);
        struct gen pick = {.seed = seed * 7919};
        size_t mutated_never = 0, mutated_nil = 0;
        for (int tries = 0; tries < 40; tries++) {
            struct lincheck_op *op = &h.ops[gen_below(&pick, h.op_count)];
            if (op->kind != LINCHECK_GET || op->outcome != LINCHECK_OK) continue;
            struct lincheck_value saved = op->got;
            bool to_nil = !saved.nil && gen_written_before(&h, op) && gen_below(&pick, 2);
            op->got = to_nil ? (struct lincheck_value){.nil = true}
                             : (struct lincheck_value){.v = TEST_NEVER_WRITTEN};
            if (gen_check(&h) != LINCHECK_NOT_LINEARIZABLE) {
                fail_msg("seed %llu: mutated op %llu accepted", (unsigned long long)seed,
                         (unsigned long long)op->id);
            }
            *(to_nil ? &mutated_nil : &mutated_never) += 1;
            op->got = saved;
            if (mutated_never + mutated_nil >= 4) break;
        }
        assert_true(mutated_never + mutated_nil >= 4);
        lincheck_history_deinit(&h);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lincheck_accepts_legal_sequential_history),
        cmocka_unit_test(test_lincheck_accepts_overlapping_get_seeing_either_value),
        cmocka_unit_test(test_lincheck_accepts_cas_chains),
        cmocka_unit_test(test_lincheck_rejects_stale_read_after_completed_write),
        cmocka_unit_test(test_lincheck_put_of_nil_is_a_delete),
        cmocka_unit_test(test_lincheck_rejects_two_cas_succeeding_from_same_value),
        cmocka_unit_test(test_lincheck_rejects_read_going_back_in_time),
        cmocka_unit_test(test_lincheck_timed_out_put_may_or_may_not_take_effect),
        cmocka_unit_test(test_lincheck_timed_out_cas_follows_the_register),
        cmocka_unit_test(test_lincheck_rejects_observed_failed_put),
        cmocka_unit_test(test_lincheck_names_the_only_violating_key),
        cmocka_unit_test(test_lincheck_reports_unknown_when_budget_is_exhausted),
        cmocka_unit_test(test_lincheck_unread_timed_out_put_can_explain_failed_cas),
        cmocka_unit_test(test_lincheck_memo_prunes_permutations_of_concurrent_puts),
        cmocka_unit_test(test_lincheck_parse_line_reads_documented_fields),
        cmocka_unit_test(test_lincheck_parse_line_rejects_malformed_lines),
        cmocka_unit_test(test_lincheck_history_parse_names_the_bad_line),
        cmocka_unit_test(test_lincheck_op_format_round_trips),
        cmocka_unit_test(test_lincheck_history_append_refuses_invalid_ops),
        cmocka_unit_test(test_lincheck_random_histories_pass_and_mutations_fail),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
