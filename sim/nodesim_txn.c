/*
 * The node-core simulator's transactions (see nodesim_client.c), on keys outside the
 * lincheck history:
 *   transfer  MULTI; INCRBY aI -x; INCRBY aJ x; EXEC      between two of the accounts
 *   audit     MULTI; GET a0; GET a1; GET a2; EXEC          their sum must be 0
 *   incr      WATCH n0; GET n0, then MULTI; SET n0 v+1; EXEC, again on a null EXEC (at most
 *             NODESIM_TXN_RETRIES_MAX times), a WATCH-guarded increment
 * The accounts start absent (0), so every transaction's atomicity keeps their sum at 0: an
 * audit that sees another sum fails the run at once, and so does a replica that holds
 * another sum at the end (nodesim_txn_check_bank). The counter must end, on every replica,
 * between the EXECs that answered an array (definitely applied) and those plus the ones
 * whose EXEC was sent and got no answer (TIMEOUT, closed, no reply: may have applied),
 * counting only those after the FLUSHALLs that reset it (nodesim_txn_counter_bounds); see
 * nodesim_txn_check_counter for leader mode. Each round trip is one
 * pipelined write; its replies are taken one by one (nodesim_txn_reply). A reply that no
 * transaction may get (an error from MULTI, a null EXEC without WATCH) fails the run.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "nodesim_internal.h"

#define NODESIM_TXN_AMOUNT_MAX 20
#define NODESIM_TXN_INT_DIGITS_MAX 18

static bool nodesim_txn_starts(const uint8_t *p, size_t bytes, const char *s) {
    size_t n = strlen(s);
    return bytes >= n && memcmp(p, s, n) == 0;
}

bool nodesim_txn_i64(const uint8_t *p, size_t bytes, int64_t *out) {
    bool negative = bytes > 0 && p[0] == '-';
    size_t i = negative ? 1 : 0;
    if (bytes == i || bytes - i > NODESIM_TXN_INT_DIGITS_MAX) return false;
    int64_t v = 0;
    for (; i < bytes; i++) {
        if (p[i] < '0' || p[i] > '9') return false;
        v = v * 10 + (p[i] - '0');
    }
    *out = negative ? -v : v;
    return true;
}

/* A reply that every command may get when its request could not be served. */
static bool nodesim_txn_unavailable(const uint8_t *p, size_t bytes, enum lincheck_outcome *out) {
    if (nodesim_txn_starts(p, bytes, "-NOQUORUM") || nodesim_txn_starts(p, bytes, "-TRYAGAIN") ||
        nodesim_txn_starts(p, bytes, "-NOREPLICAS")) {
        *out = LINCHECK_FAIL;
        return true;
    }
    if (nodesim_txn_starts(p, bytes, "-TIMEOUT")) {
        *out = LINCHECK_INFO;
        return true;
    }
    return false;
}

void nodesim_txn_invoke(struct nodesim_world *w, struct nodesim_client *c) {
    (void)w;
    c->phase = 0;
    c->retries = 0;
    if (c->kind == NODESIM_OP_TRANSFER) {
        c->key = (uint32_t)prng_range(&c->prng, 0, NODESIM_ACCOUNTS);
        c->key2 = (c->key + 1 + (uint32_t)prng_range(&c->prng, 0, NODESIM_ACCOUNTS - 1)) %
                  NODESIM_ACCOUNTS;
        c->arg = (int64_t)prng_range(&c->prng, 1, NODESIM_TXN_AMOUNT_MAX + 1);
        ASSERT(c->key != c->key2);
    }
}

/* The round trip's pipelined request; *replies is how many values answer it. */
size_t nodesim_txn_format(const struct nodesim_client *c, char *out, size_t bytes,
                          uint32_t *replies) {
    int n = 0;
    if (c->kind == NODESIM_OP_TRANSFER) {
        n = snprintf(out, bytes, "MULTI\r\nINCRBY a%u %lld\r\nINCRBY a%u %lld\r\nEXEC\r\n", c->key,
                     (long long)-c->arg, c->key2, (long long)c->arg);
        *replies = 4;
    } else if (c->kind == NODESIM_OP_AUDIT) {
        STATIC_ASSERT(NODESIM_ACCOUNTS == 3, "the audit names every account");
        n = snprintf(out, bytes, "MULTI\r\nGET a0\r\nGET a1\r\nGET a2\r\nEXEC\r\n");
        *replies = 2 + NODESIM_ACCOUNTS;
    } else if (c->phase == 0) {
        ASSERT(c->kind == NODESIM_OP_INCR);
        n = snprintf(out, bytes, "WATCH n0\r\nGET n0\r\n");
        *replies = 2;
    } else {
        n = snprintf(out, bytes, "MULTI\r\nSET n0 %lld\r\nEXEC\r\n", (long long)c->got + 1);
        *replies = 3;
    }
    ASSERT(n > 0 && (size_t)n < bytes);
    return (size_t)n;
}

/* A bulk string holding an integer, or nil (0); false for anything else. */
static bool nodesim_txn_bulk_int(const uint8_t *p, size_t bytes, int64_t *out) {
    *out = 0;
    if (nodesim_txn_starts(p, bytes, "$-1\r\n") || nodesim_txn_starts(p, bytes, "_\r\n"))
        return true;
    if (bytes < 4 || p[0] != '$') return false;
    const uint8_t *v = memchr(p, '\n', bytes);
    if (v == NULL) return false;
    v++;
    return nodesim_txn_i64(v, bytes - (size_t)(v - p) - 2, out);
}

/* Walks EXEC's array of `count` elements: each must be an integer (transfer), a bulk
 * integer (audit: summed into *sum) or +OK (incr). */
static bool nodesim_txn_exec_array(const struct nodesim_client *c, const uint8_t *p, size_t bytes,
                                   int64_t *sum) {
    uint32_t count = c->kind == NODESIM_OP_TRANSFER ? 2 : c->kind == NODESIM_OP_AUDIT ? 3 : 1;
    char head[8];
    snprintf(head, sizeof(head), "*%u\r\n", count);
    if (!nodesim_txn_starts(p, bytes, head)) return false;
    size_t at = strlen(head);
    struct resp_limits limits;
    resp_limits_default(&limits);
    *sum = 0;
    for (uint32_t i = 0; i < count; i++) {
        size_t len = 0;
        struct errmsg msg;
        if (resp_scan_value(&limits, p + at, bytes - at, &len, &msg) != 1) return false;
        int64_t v = 0;
        if (c->kind == NODESIM_OP_TRANSFER &&
            (p[at] != ':' || !nodesim_txn_i64(p + at + 1, len - 3, &v)))
            return false;
        if (c->kind == NODESIM_OP_AUDIT && !nodesim_txn_bulk_int(p + at, len, &v)) return false;
        if (c->kind == NODESIM_OP_INCR && !nodesim_txn_starts(p + at, len, "+OK\r\n")) return false;
        *sum += v;
        at += len;
    }
    return at == bytes;
}

/* EXEC's reply: an array (applied), null (a watched key changed), or unavailable. */
static int nodesim_txn_exec(struct nodesim_world *w, struct nodesim_client *c, const uint8_t *p,
                            size_t bytes) {
    bool null = nodesim_txn_starts(p, bytes, "*-1\r\n") || nodesim_txn_starts(p, bytes, "_\r\n");
    enum lincheck_outcome out;
    if (nodesim_txn_unavailable(p, bytes, &out)) {
        c->outcome = out;
        return 0;
    }
    if (null && c->kind == NODESIM_OP_INCR) {
        c->exec_null = true;
        return 0;
    }
    int64_t sum = 0;
    if (!nodesim_txn_exec_array(c, p, bytes, &sum)) return -1;
    w->sim.stats->txns_applied++;
    if (c->kind == NODESIM_OP_AUDIT && sum != 0)
        return sim_check_fail(&w->sim.check,
                              "bank: client %u op %llu: an audit transaction saw the accounts "
                              "sum to %lld, not 0",
                              c->id, (unsigned long long)c->op_id, (long long)sum);
    return 0;
}

int nodesim_txn_reply(struct nodesim_world *w, struct nodesim_client *c, uint32_t index,
                      const uint8_t *p, size_t bytes) {
    enum lincheck_outcome out;
    bool last = index + 1 == c->replies_due;
    if (c->kind == NODESIM_OP_INCR && c->phase == 0) {
        /* WATCH, then GET: both reads; any failure means nothing was written. */
        if (nodesim_txn_unavailable(p, bytes, &out) ||
            nodesim_txn_starts(p, bytes, "-ERR WATCH got no answer")) {
            c->outcome = LINCHECK_FAIL;
            return 0;
        }
        if (!last) return nodesim_txn_starts(p, bytes, "+OK\r\n") ? 0 : -1;
        return nodesim_txn_bulk_int(p, bytes, &c->got) ? 0 : -1;
    }
    if (last) return nodesim_txn_exec(w, c, p, bytes);
    if (index == 0) return nodesim_txn_starts(p, bytes, "+OK\r\n") ? 0 : -1; /* MULTI */
    return nodesim_txn_starts(p, bytes, "+QUEUED\r\n") ? 0 : -1;
}

/* After a round trip answered in full: whether the operation goes on (incr's second round
 * trip, or a retry after a null EXEC). */
bool nodesim_txn_continues(struct nodesim_client *c) {
    if (c->kind != NODESIM_OP_INCR || c->outcome != LINCHECK_OK) return false;
    if (c->phase == 0) {
        c->phase = 1;
        return true;
    }
    if (!c->exec_null) return false;
    c->exec_null = false;
    if (c->retries == NODESIM_TXN_RETRIES_MAX) {
        c->outcome = LINCHECK_FAIL; /* gave up: the last EXEC did nothing */
        return false;
    }
    c->retries++;
    c->phase = 0;
    return true;
}

static void nodesim_txn_span(struct nodesim_span **spans, size_t *count, size_t *capacity,
                             struct nodesim_span span) {
    if (*count == *capacity) {
        *capacity = *capacity == 0 ? 64 : *capacity * 2;
        *spans = base_realloc(*spans, *capacity * sizeof(**spans));
    }
    (*spans)[(*count)++] = span;
}

/* The counter's bounds, as an increment or a FLUSHALL ends with outcome. */
void nodesim_txn_record(struct nodesim_world *w, const struct nodesim_client *c,
                        enum lincheck_outcome outcome) {
    if (outcome == LINCHECK_FAIL) return; /* not applied */
    struct nodesim_span span = {c->invoke_ms, outcome == LINCHECK_OK ? w->sim.now_ms : UINT64_MAX};
    if (c->kind == NODESIM_OP_FLUSH) {
        nodesim_txn_span(&w->flushes, &w->flush_count, &w->flush_capacity, span);
        return;
    }
    if (c->kind != NODESIM_OP_INCR || c->phase != 1) return;
    nodesim_txn_span(&w->incrs, &w->incr_count, &w->incr_capacity, span);
    if (outcome == LINCHECK_OK) w->incr_applied++;
    if (outcome == LINCHECK_INFO) w->incr_unknown++;
    w->sim.stats->incr_applied = w->incr_applied;
    w->sim.stats->incr_unknown = w->incr_unknown;
}

/* What the counter may hold at the end, given the FLUSHALLs that reset it: at least the
 * increments that surely applied after every FLUSHALL that may have applied (invoked after
 * the latest response of one, an unknown one never responds), at most those that may have
 * applied after the last FLUSHALL that surely applied (responded no earlier than its
 * invocation). Without FLUSHALLs: the applied ones, and those plus the unknown ones. */
static void nodesim_txn_counter_bounds(const struct nodesim_world *w, uint64_t *lo, uint64_t *hi) {
    bool any = w->flush_count > 0, sure = false;
    uint64_t last_response = 0, last_sure_invoke = 0;
    for (size_t i = 0; i < w->flush_count; i++) {
        const struct nodesim_span *f = &w->flushes[i];
        if (f->response_ms > last_response) last_response = f->response_ms;
        if (f->response_ms == UINT64_MAX) continue;
        if (!sure || f->invoke_ms > last_sure_invoke) last_sure_invoke = f->invoke_ms;
        sure = true;
    }
    *lo = *hi = 0;
    for (size_t i = 0; i < w->incr_count; i++) {
        const struct nodesim_span *n = &w->incrs[i];
        bool ok = n->response_ms != UINT64_MAX;
        if (ok && (!any || (last_response != UINT64_MAX && n->invoke_ms > last_response))) (*lo)++;
        if (!sure || n->response_ms >= last_sure_invoke) (*hi)++;
    }
}

void nodesim_txn_deinit(struct nodesim_world *w) {
    free(w->incrs);
    free(w->flushes);
}

static int64_t nodesim_txn_value(struct db *db, const char *key) {
    struct db_entry *e = db_find(db, (const uint8_t *)key, strlen(key));
    if (e == NULL) return 0;
    size_t bytes = 0;
    const uint8_t *v = db_entry_string(e, &bytes);
    int64_t out = INT64_MIN;
    return nodesim_txn_i64(v, bytes, &out) ? out : INT64_MIN;
}

int nodesim_txn_check_bank(struct nodesim_world *w, uint32_t i) {
    struct db *db = cp_engine_db(node_engine(w->nodes[i].node));
    int64_t sum = 0;
    char key[8];
    for (uint32_t k = 0; k < NODESIM_ACCOUNTS; k++) {
        snprintf(key, sizeof(key), "a%u", k);
        int64_t v = nodesim_txn_value(db, key);
        if (v == INT64_MIN)
            return sim_check_fail(&w->sim.check, "bank: node %u: %s is no integer", i, key);
        sum += v;
    }
    if (sum != 0)
        return sim_check_fail(&w->sim.check, "bank: node %u: the accounts sum to %lld, not 0", i,
                              (long long)sum);
    return 0;
}

/* Leader mode answers writes early and may lose them (counted from the final log before
 * this runs): the counter may then end below its lower bound, by at most the writes lost.
 * Never above what may have applied. */
int nodesim_txn_check_counter(struct nodesim_world *w, uint32_t i) {
    struct db *db = cp_engine_db(node_engine(w->nodes[i].node));
    int64_t n = nodesim_txn_value(db, "n0");
    uint64_t lo, hi;
    nodesim_txn_counter_bounds(w, &lo, &hi);
    uint64_t lost =
        w->sim.options.replication == SIM_REPLICATION_LEADER ? w->sim.stats->lost_acked_writes : 0;
    lo = lo > lost ? lo - lost : 0;
    if (n >= 0 && (uint64_t)n >= lo && (uint64_t)n <= hi) return 0;
    return sim_check_fail(&w->sim.check,
                          "counter: node %u holds n0 = %lld, outside %llu..%llu (%llu increments "
                          "applied, %llu may have been, %zu FLUSHALLs, %llu acknowledged writes "
                          "lost)",
                          i, (long long)n, (unsigned long long)lo, (unsigned long long)hi,
                          (unsigned long long)w->incr_applied, (unsigned long long)w->incr_unknown,
                          w->flush_count, (unsigned long long)lost);
}
