/*
 * Linearizability checker for histories of a key-value register, per key.
 *
 * Algorithm: Wing & Gong's search with Lowe's improvements ("Testing for linearisability",
 * Concurrency Computat.: Pract. Exper. 2017): configurations (set of linearized operations,
 * model state) are memoized in a hash set, and operations are linearized just in time: the
 * search only branches when the earliest-returning operation not yet linearized must be
 * placed, choosing one pending operation (called before that return) at a time. Keys are
 * independent registers, so the history is partitioned by key and each key is checked on
 * its own (P-compositionality, Herlihy & Wing §3.3).
 *
 * Model: a register per key holding nil (absent; the initial value) or an int64.
 *   get(k)          -> v or nil   the current value
 *   put(k, v)       -> ok         sets v (nil: deletes the key, as a FLUSHALL or DEL does)
 *   cas(k, e, n)    -> ok | fail  ok: value was e (e may be nil) and is now n; fail: value != e
 * Outcomes: OK (completed with the result above); FAIL (definitely did not take effect, e.g.
 * -NOQUORUM: dropped before the search); INFO (timeout, unknown: may take effect at any time
 * after its invocation, or never; its response time is +infinity and its result is
 * unconstrained; an INFO get has no effect and is dropped).
 * Real time: a precedes b iff a.response_ms < b.invoke_ms (strict); equal times overlap.
 * The checker is deterministic: same history and options, same result and step count.
 *
 * Text format (lincheck_history_parse), one operation per line, tokens separated by
 * spaces or tabs, '#' starts a comment line, blank lines are ignored:
 *   <client> <invoke_ms> <response_ms|-> <op> <key> [args] -> <result>
 *   1 0 10 put x 5 -> ok         (put x nil: a delete)
 *   2 3 12 get x -> 5            (or -> nil)
 *   3 4 20 cas x 5 6 -> ok       (or -> fail; the expected value may be nil)
 *   4 5 -  put x 7 -> timeout    (INFO; any op; a numeric response_ms is ignored)
 *   5 6 9  put x 8 -> error      (FAIL: did not take effect; any op)
 * client, invoke_ms and response_ms are decimal unsigned 64-bit; values are canonical
 * decimal int64 (util_parse_i64) or "nil"; keys are 1..LINCHECK_KEY_BYTES_MAX bytes without
 * whitespace. response_ms >= invoke_ms unless the result is "timeout". "-" is allowed only
 * with "timeout". The parser sets each op's id to its 1-based line number.
 */
#ifndef CAPKV_SIM_LINCHECK_H
#define CAPKV_SIM_LINCHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/err.h"

#define LINCHECK_KEY_BYTES_MAX 64
#define LINCHECK_OPS_MAX (1u << 22)              /* operations in one history */
#define LINCHECK_KEY_OPS_MAX (1u << 16)          /* operations on one key (bitset width) */
#define LINCHECK_LINE_BYTES_MAX 512              /* one line of the text format */
#define LINCHECK_STEPS_DEFAULT 10000000u         /* per key, when options.steps_max == 0 */
#define LINCHECK_MEMO_BYTES_DEFAULT (512u << 20) /* per key, options.memo_bytes_max == 0 */

enum lincheck_kind { LINCHECK_GET, LINCHECK_PUT, LINCHECK_CAS };
enum lincheck_outcome { LINCHECK_OK, LINCHECK_FAIL, LINCHECK_INFO };
enum lincheck_verdict { LINCHECK_LINEARIZABLE, LINCHECK_NOT_LINEARIZABLE, LINCHECK_UNKNOWN };

/* A register value: nil (absent) or an int64. When nil is true, v is 0. */
struct lincheck_value {
    bool nil;
    int64_t v;
};

struct lincheck_op {
    uint64_t id; /* for reports only; need not be unique */
    uint64_t client;
    uint64_t invoke_ms;
    uint64_t response_ms; /* ignored for LINCHECK_INFO (taken as +infinity) */
    enum lincheck_kind kind;
    enum lincheck_outcome outcome;
    char key[LINCHECK_KEY_BYTES_MAX + 1]; /* NUL-terminated, non-empty */
    struct lincheck_value arg;            /* put: value; cas: expected */
    struct lincheck_value arg2;           /* cas: new value (never nil) */
    struct lincheck_value got;            /* get with outcome OK: the value read */
    bool swapped;                         /* cas with outcome OK: true for ok, false for fail */
};

/* An append-only list of operations; keeps its own copies. */
struct lincheck_history {
    struct lincheck_op *ops;
    size_t op_count;
    size_t op_capacity;
};

struct lincheck_options {
    uint64_t steps_max;      /* per key; 0 = LINCHECK_STEPS_DEFAULT */
    uint64_t memo_bytes_max; /* per key; 0 = LINCHECK_MEMO_BYTES_DEFAULT */
};

/* Verdict of a check. For NOT_LINEARIZABLE and UNKNOWN, key names the first such key (in
 * byte order; a violation on any key wins over an unknown). For NOT_LINEARIZABLE,
 * prefix_ids lists the ids of the longest linearizable sequence the search reached on that
 * key, in linearization order, value_after_prefix the register after it, and blocked_id
 * the op whose response could not be matched by any extension of that sequence.
 * prefix_ids is owned by the result: release it with lincheck_result_deinit. */
struct lincheck_result {
    enum lincheck_verdict verdict;
    char key[LINCHECK_KEY_BYTES_MAX + 1];
    uint64_t steps;   /* model steps tried, all keys */
    size_t key_count; /* keys checked */
    bool memo_full;   /* UNKNOWN because memo_bytes_max, not steps_max, was reached */
    uint64_t *prefix_ids;
    size_t prefix_count;
    struct lincheck_value value_after_prefix;
    uint64_t blocked_id;
};

/* h: caller-owned storage. */
void lincheck_history_init(struct lincheck_history *h);
void lincheck_history_deinit(struct lincheck_history *h);
/* Validates and copies op (borrows op and msg). Errors: ERR_INVALID (bad key, times,
 * values, enum), ERR_LIMIT (LINCHECK_OPS_MAX); the history is unchanged on error. */
int lincheck_history_append(struct lincheck_history *h, const struct lincheck_op *op,
                            struct errmsg *msg);
/* Parses one line (borrows line, bytes without the newline) into out. Returns 1 when the
 * line is an op, 0 for a blank or comment line, or ERR_INVALID / ERR_LIMIT. out->id is 0. */
int lincheck_parse_line(const char *line, size_t bytes, struct lincheck_op *out,
                        struct errmsg *msg);
/* Appends every op of text (borrowed); on error msg names the 1-based line and the history
 * keeps the ops of the earlier lines. */
int lincheck_history_parse(struct lincheck_history *h, const char *text, size_t bytes,
                           struct errmsg *msg);

/* out: caller-owned storage; init before the first check, deinit after the last. */
void lincheck_result_init(struct lincheck_result *out);
void lincheck_result_deinit(struct lincheck_result *out);
/* Checks h (borrowed; o may be NULL for defaults) and overwrites out. Returns 0 with the
 * verdict in out, or ERR_LIMIT when a key has more than LINCHECK_KEY_OPS_MAX ops. */
int lincheck_check(const struct lincheck_history *h, const struct lincheck_options *o,
                   struct lincheck_result *out);

/* Writes op in the text format (without newline) into buf (borrowed, NUL-terminated,
 * truncated to bytes); returns the length it wanted, as snprintf. */
size_t lincheck_op_format(const struct lincheck_op *op, char *buf, size_t bytes);
/* Finds the op with the given id in h (borrowed); returns borrowed pointer valid until the
 * next append, or NULL. */
const struct lincheck_op *lincheck_history_find(const struct lincheck_history *h, uint64_t id);

#endif
