/*
 * Linearizability checker (see lincheck.h for the model, the algorithm and the format).
 *
 * Per key, operations become nodes sorted by invocation. Two doubly linked lists thread the
 * nodes not yet linearized: one in invocation order (all nodes), one in response order
 * (definite nodes only). Linearizing a node lifts it out of both; backtracking puts it back
 * (dancing links, valid because the search undoes in LIFO order). The search state is the
 * set of linearized nodes (a bitset with an incremental Zobrist hash) and the register.
 * Invariants: every definite node whose response precedes the head of the response list is
 * linearized; the memo holds every configuration ever pushed, so none is explored twice.
 * Never: read a clock, use unseeded randomness, or print.
 */
#include "lincheck.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/util.h"

#define LINCHECK_TOKENS_MAX 10
#define LINCHECK_U64_DIGITS_MAX 20
#define LINCHECK_MEMO_SLOTS_MIN 1024u
#define LINCHECK_RESPONSE_INFINITE UINT64_MAX

/* ---------------------------------------------------------------------------------------
 * History */

void lincheck_history_init(struct lincheck_history *h) {
    ASSERT(h != NULL);
    memset(h, 0, sizeof(*h));
}

void lincheck_history_deinit(struct lincheck_history *h) {
    ASSERT(h != NULL);
    ASSERT(h->op_count <= h->op_capacity);
    free(h->ops);
    memset(h, 0, sizeof(*h));
}

static int lincheck_history_append_check(const struct lincheck_op *op, struct errmsg *msg) {
    const char *end = memchr(op->key, '\0', sizeof(op->key));
    if (end == NULL || end == op->key) {
        return errmsg_set(msg, ERR_INVALID, "key must be 1..%d bytes", LINCHECK_KEY_BYTES_MAX);
    }
    if ((unsigned)op->kind > LINCHECK_CAS) return errmsg_set(msg, ERR_INVALID, "bad op kind");
    if ((unsigned)op->outcome > LINCHECK_INFO) {
        return errmsg_set(msg, ERR_INVALID, "bad outcome");
    }
    if (op->outcome != LINCHECK_INFO && op->response_ms < op->invoke_ms) {
        return errmsg_set(msg, ERR_INVALID, "response_ms before invoke_ms");
    }
    if (op->kind == LINCHECK_CAS && op->arg2.nil) {
        return errmsg_set(msg, ERR_INVALID, "cas to nil");
    }
    return 0;
}

static struct lincheck_value lincheck_value_norm(struct lincheck_value v) {
    if (v.nil) v.v = 0;
    return v;
}

int lincheck_history_append(struct lincheck_history *h, const struct lincheck_op *op,
                            struct errmsg *msg) {
    ASSERT(h != NULL);
    ASSERT(op != NULL);
    int rc = lincheck_history_append_check(op, msg);
    if (rc < 0) return rc;
    if (h->op_count >= LINCHECK_OPS_MAX) {
        return errmsg_set(msg, ERR_LIMIT, "more than %u ops", LINCHECK_OPS_MAX);
    }
    if (h->op_count == h->op_capacity) {
        size_t cap = h->op_capacity ? h->op_capacity * 2 : 64;
        h->ops = base_realloc(h->ops, cap * sizeof(*h->ops));
        h->op_capacity = cap;
    }
    struct lincheck_op *copy = &h->ops[h->op_count++];
    *copy = *op;
    copy->arg = lincheck_value_norm(op->arg);
    copy->arg2 = lincheck_value_norm(op->arg2);
    copy->got = lincheck_value_norm(op->got);
    if (op->outcome == LINCHECK_INFO) copy->response_ms = LINCHECK_RESPONSE_INFINITE;
    ASSERT(h->op_count <= h->op_capacity);
    return 0;
}

const struct lincheck_op *lincheck_history_find(const struct lincheck_history *h, uint64_t id) {
    ASSERT(h != NULL);
    for (size_t i = 0; i < h->op_count; i++) {
        if (h->ops[i].id == id) return &h->ops[i];
    }
    return NULL;
}

/* ---------------------------------------------------------------------------------------
 * Text format */

struct lincheck_token {
    const char *s;
    size_t bytes;
};

static bool lincheck_token_is(const struct lincheck_token *t, const char *word) {
    return t->bytes == strlen(word) && memcmp(t->s, word, t->bytes) == 0;
}

/* Splits on spaces and tabs; returns the token count or -1 when there are too many. */
static int lincheck_tokenize(const char *line, size_t bytes, struct lincheck_token *tokens) {
    int count = 0;
    size_t i = 0;
    while (i < bytes) {
        if (line[i] == ' ' || line[i] == '\t' || line[i] == '\r') {
            i++;
            continue;
        }
        if (count == LINCHECK_TOKENS_MAX) return -1;
        size_t start = i;
        while (i < bytes && line[i] != ' ' && line[i] != '\t' && line[i] != '\r') i++;
        tokens[count].s = line + start;
        tokens[count].bytes = i - start;
        count++;
    }
    ASSERT(count <= LINCHECK_TOKENS_MAX);
    return count;
}

static bool lincheck_parse_u64(const struct lincheck_token *t, uint64_t *out) {
    if (t->bytes == 0 || t->bytes > LINCHECK_U64_DIGITS_MAX) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < t->bytes; i++) {
        char c = t->s[i];
        if (c < '0' || c > '9') return false;
        uint64_t d = (uint64_t)(c - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

static bool lincheck_parse_value(const struct lincheck_token *t, struct lincheck_value *out) {
    if (lincheck_token_is(t, "nil")) {
        *out = (struct lincheck_value){.nil = true, .v = 0};
        return true;
    }
    out->nil = false;
    return util_parse_i64((const uint8_t *)t->s, t->bytes, &out->v);
}

static int lincheck_parse_kind(const struct lincheck_token *t, enum lincheck_kind *kind) {
    if (lincheck_token_is(t, "get"))
        *kind = LINCHECK_GET;
    else if (lincheck_token_is(t, "put"))
        *kind = LINCHECK_PUT;
    else if (lincheck_token_is(t, "cas"))
        *kind = LINCHECK_CAS;
    else
        return -1;
    return *kind == LINCHECK_GET ? 0 : *kind == LINCHECK_PUT ? 1 : 2;
}

/* Fills outcome and result fields from the token after "->". */
static int lincheck_parse_result(const struct lincheck_token *t, struct lincheck_op *op,
                                 struct errmsg *msg) {
    op->outcome = LINCHECK_OK;
    if (lincheck_token_is(t, "timeout")) {
        op->outcome = LINCHECK_INFO;
    } else if (lincheck_token_is(t, "error")) {
        op->outcome = LINCHECK_FAIL;
    } else if (op->kind == LINCHECK_GET) {
        if (!lincheck_parse_value(t, &op->got)) {
            return errmsg_set(msg, ERR_INVALID, "get result must be a value or nil");
        }
    } else if (op->kind == LINCHECK_PUT) {
        if (!lincheck_token_is(t, "ok")) {
            return errmsg_set(msg, ERR_INVALID, "put result must be ok, error or timeout");
        }
    } else if (lincheck_token_is(t, "ok") || lincheck_token_is(t, "fail")) {
        op->swapped = lincheck_token_is(t, "ok");
    } else {
        return errmsg_set(msg, ERR_INVALID, "cas result must be ok, fail, error or timeout");
    }
    return 0;
}

static int lincheck_parse_times(const struct lincheck_token *tk, struct lincheck_op *op,
                                struct errmsg *msg) {
    if (!lincheck_parse_u64(&tk[0], &op->client)) {
        return errmsg_set(msg, ERR_INVALID, "bad client id");
    }
    if (!lincheck_parse_u64(&tk[1], &op->invoke_ms)) {
        return errmsg_set(msg, ERR_INVALID, "bad invoke_ms");
    }
    if (lincheck_token_is(&tk[2], "-")) {
        op->response_ms = LINCHECK_RESPONSE_INFINITE;
    } else if (!lincheck_parse_u64(&tk[2], &op->response_ms)) {
        return errmsg_set(msg, ERR_INVALID, "bad response_ms");
    }
    if (tk[4].bytes > LINCHECK_KEY_BYTES_MAX) {
        return errmsg_set(msg, ERR_LIMIT, "key longer than %d bytes", LINCHECK_KEY_BYTES_MAX);
    }
    return 0;
}

int lincheck_parse_line(const char *line, size_t bytes, struct lincheck_op *out,
                        struct errmsg *msg) {
    ASSERT(line != NULL || bytes == 0);
    ASSERT(out != NULL);
    if (bytes > LINCHECK_LINE_BYTES_MAX) {
        return errmsg_set(msg, ERR_LIMIT, "line longer than %d bytes", LINCHECK_LINE_BYTES_MAX);
    }
    struct lincheck_token tk[LINCHECK_TOKENS_MAX];
    int count = lincheck_tokenize(line, bytes, tk);
    if (count == 0 || (count > 0 && tk[0].s[0] == '#')) return 0;
    if (count < 0) return errmsg_set(msg, ERR_INVALID, "too many fields");
    memset(out, 0, sizeof(*out));
    enum lincheck_kind kind = LINCHECK_GET;
    int args = count >= 4 ? lincheck_parse_kind(&tk[3], &kind) : -1;
    if (args < 0) return errmsg_set(msg, ERR_INVALID, "expected get, put or cas in field 4");
    if (count != 5 + args + 2 || !lincheck_token_is(&tk[5 + args], "->")) {
        return errmsg_set(msg, ERR_INVALID, "expected %d fields: ... %s key%s -> result", 7 + args,
                          kind == LINCHECK_GET   ? "get"
                          : kind == LINCHECK_PUT ? "put"
                                                 : "cas",
                          args == 0   ? ""
                          : args == 1 ? " v"
                                      : " e n");
    }
    out->kind = kind;
    int rc = lincheck_parse_times(tk, out, msg);
    if (rc < 0) return rc;
    memcpy(out->key, tk[4].s, tk[4].bytes);
    out->key[tk[4].bytes] = '\0';
    if ((args >= 1 && !lincheck_parse_value(&tk[5], &out->arg)) ||
        (args == 2 && !lincheck_parse_value(&tk[6], &out->arg2))) {
        return errmsg_set(msg, ERR_INVALID, "bad value (want an int64 or nil)");
    }
    rc = lincheck_parse_result(&tk[count - 1], out, msg);
    if (rc < 0) return rc;
    if (out->outcome != LINCHECK_INFO && lincheck_token_is(&tk[2], "-")) {
        return errmsg_set(msg, ERR_INVALID, "response_ms '-' is only allowed with timeout");
    }
    return lincheck_history_append_check(out, msg) < 0 ? ERR_INVALID : 1;
}

int lincheck_history_parse(struct lincheck_history *h, const char *text, size_t bytes,
                           struct errmsg *msg) {
    ASSERT(h != NULL);
    ASSERT(text != NULL || bytes == 0);
    size_t line_number = 0;
    size_t pos = 0;
    while (pos < bytes) {
        const char *nl = memchr(text + pos, '\n', bytes - pos);
        size_t len = nl ? (size_t)(nl - (text + pos)) : bytes - pos;
        line_number++;
        struct lincheck_op op;
        struct errmsg detail = {{0}};
        int rc = lincheck_parse_line(text + pos, len, &op, &detail);
        if (rc == 1) {
            op.id = line_number;
            rc = lincheck_history_append(h, &op, &detail);
        }
        if (rc < 0) return errmsg_set(msg, rc, "line %zu: %s", line_number, detail.text);
        pos += len + (nl ? 1 : 0);
    }
    ASSERT(pos == bytes);
    return 0;
}

static size_t lincheck_value_format(struct lincheck_value v, char *buf) {
    if (v.nil) {
        memcpy(buf, "nil", 4);
        return 3;
    }
    return util_format_i64(v.v, buf);
}

size_t lincheck_op_format(const struct lincheck_op *op, char *buf, size_t bytes) {
    ASSERT(op != NULL);
    ASSERT(buf != NULL || bytes == 0);
    char a[UTIL_I64_DIGITS_MAX], b[UTIL_I64_DIGITS_MAX], r[UTIL_I64_DIGITS_MAX + 8];
    char resp[UTIL_I64_DIGITS_MAX] = "-";
    lincheck_value_format(op->arg, a);
    lincheck_value_format(op->arg2, b);
    if (op->outcome != LINCHECK_INFO)
        snprintf(resp, sizeof(resp), "%llu", (unsigned long long)op->response_ms);
    if (op->outcome == LINCHECK_INFO)
        snprintf(r, sizeof(r), "timeout");
    else if (op->outcome == LINCHECK_FAIL)
        snprintf(r, sizeof(r), "error");
    else if (op->kind == LINCHECK_GET)
        lincheck_value_format(op->got, r);
    else if (op->kind == LINCHECK_PUT || op->swapped)
        snprintf(r, sizeof(r), "ok");
    else
        snprintf(r, sizeof(r), "fail");
    const char *name = op->kind == LINCHECK_GET ? "get" : op->kind == LINCHECK_PUT ? "put" : "cas";
    char args[2 * UTIL_I64_DIGITS_MAX + 2] = "";
    if (op->kind == LINCHECK_PUT) snprintf(args, sizeof(args), " %s", a);
    if (op->kind == LINCHECK_CAS) snprintf(args, sizeof(args), " %s %s", a, b);
    int n = snprintf(buf, bytes, "%llu %llu %s %s %s%s -> %s", (unsigned long long)op->client,
                     (unsigned long long)op->invoke_ms, resp, name, op->key, args, r);
    ASSERT(n > 0);
    return (size_t)n;
}

/* ---------------------------------------------------------------------------------------
 * Result */

void lincheck_result_init(struct lincheck_result *out) {
    ASSERT(out != NULL);
    memset(out, 0, sizeof(*out));
    out->verdict = LINCHECK_LINEARIZABLE;
}

void lincheck_result_deinit(struct lincheck_result *out) {
    ASSERT(out != NULL);
    ASSERT(out->prefix_ids != NULL || out->prefix_count == 0);
    free(out->prefix_ids);
    memset(out, 0, sizeof(*out));
}

/* ---------------------------------------------------------------------------------------
 * Memo: a hash set of (linearized bitset, register) configurations (Lowe §3). */

struct lincheck_slot {
    uint64_t hash;
    uint32_t entry; /* index + 1; 0 = empty */
};

struct lincheck_memo {
    size_t words;      /* bitset words per entry */
    uint64_t *entries; /* entry i at i * (words + 2): nil, v, bitset */
    size_t entry_count;
    size_t entry_capacity;
    struct lincheck_slot *slots;
    size_t slot_count; /* a power of two, at least twice entry_count */
    uint64_t bytes_max;
};

/* splitmix64's finalizer: a bijective mix, so distinct inputs give distinct outputs. */
static uint64_t lincheck_mix(uint64_t x) {
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t lincheck_value_hash(struct lincheck_value v) {
    return v.nil ? 0x6e696c6e696c6e69ull : lincheck_mix((uint64_t)v.v ^ 0x5bd1e995ull);
}

static bool lincheck_value_eq(struct lincheck_value a, struct lincheck_value b) {
    if (a.nil || b.nil) return a.nil == b.nil;
    return a.v == b.v;
}

static void lincheck_memo_init(struct lincheck_memo *m, size_t words, uint64_t bytes_max) {
    memset(m, 0, sizeof(*m));
    m->words = words;
    m->bytes_max = bytes_max;
    m->slot_count = LINCHECK_MEMO_SLOTS_MIN;
    m->slots = base_calloc(m->slot_count, sizeof(*m->slots));
}

static void lincheck_memo_deinit(struct lincheck_memo *m) {
    free(m->entries);
    free(m->slots);
    memset(m, 0, sizeof(*m));
}

static uint64_t lincheck_memo_bytes(const struct lincheck_memo *m, size_t entries, size_t slots) {
    return (uint64_t)entries * (m->words + 2) * 8 + (uint64_t)slots * sizeof(*m->slots);
}

/* A configuration's scalar part: the register (nil in bit 0 of tag, value in v) and, in bit 1,
 * whether the last linearized op was an INFO write (that restricts the next step). */
struct lincheck_tail {
    uint64_t tag;
    uint64_t v;
};

static bool lincheck_memo_equal(const struct lincheck_memo *m, uint32_t entry, const uint64_t *bits,
                                struct lincheck_tail tail) {
    const uint64_t *e = m->entries + (size_t)(entry - 1) * (m->words + 2);
    if (e[0] != tail.tag || e[1] != tail.v) return false;
    return memcmp(e + 2, bits, m->words * sizeof(*bits)) == 0;
}

static void lincheck_memo_place(struct lincheck_slot *slots, size_t slot_count,
                                struct lincheck_slot slot) {
    size_t mask = slot_count - 1;
    size_t i = (size_t)slot.hash & mask;
    while (slots[i].entry != 0) i = (i + 1) & mask;
    slots[i] = slot;
}

/* Makes room for one more entry; ERR_LIMIT when that would pass bytes_max. */
static int lincheck_memo_reserve(struct lincheck_memo *m) {
    size_t entries = m->entry_capacity;
    size_t slots = m->slot_count;
    if (m->entry_count == entries) entries = entries ? entries * 2 : 256;
    if ((m->entry_count + 1) * 2 > slots) slots *= 2;
    if (entries == m->entry_capacity && slots == m->slot_count) return 0;
    if (lincheck_memo_bytes(m, entries, slots) > m->bytes_max) return ERR_LIMIT;
    if (entries != m->entry_capacity) {
        m->entries = base_realloc(m->entries, entries * (m->words + 2) * sizeof(uint64_t));
        m->entry_capacity = entries;
    }
    if (slots != m->slot_count) {
        struct lincheck_slot *grown = base_calloc(slots, sizeof(*grown));
        for (size_t i = 0; i < m->slot_count; i++) {
            if (m->slots[i].entry != 0) lincheck_memo_place(grown, slots, m->slots[i]);
        }
        free(m->slots);
        m->slots = grown;
        m->slot_count = slots;
    }
    return 0;
}

/* Returns 1 when (bits, state) was added, 0 when it was already there, or ERR_LIMIT. */
static int lincheck_memo_insert(struct lincheck_memo *m, const uint64_t *bits, uint64_t hash,
                                struct lincheck_tail tail) {
    size_t mask = m->slot_count - 1;
    for (size_t i = (size_t)hash & mask; m->slots[i].entry != 0; i = (i + 1) & mask) {
        if (m->slots[i].hash == hash && lincheck_memo_equal(m, m->slots[i].entry, bits, tail))
            return 0;
    }
    int rc = lincheck_memo_reserve(m);
    if (rc < 0) return rc;
    uint64_t *e = m->entries + m->entry_count * (m->words + 2);
    e[0] = tail.tag;
    e[1] = tail.v;
    memcpy(e + 2, bits, m->words * sizeof(*bits));
    m->entry_count++;
    ASSERT(m->entry_count <= UINT32_MAX);
    lincheck_memo_place(m->slots, m->slot_count,
                        (struct lincheck_slot){.hash = hash, .entry = (uint32_t)m->entry_count});
    ASSERT(m->entry_count * 2 <= m->slot_count);
    return 1;
}

/* ---------------------------------------------------------------------------------------
 * Model: one register; returns false when op's recorded result contradicts state. */

static bool lincheck_model_step(const struct lincheck_op *op, struct lincheck_value write,
                                struct lincheck_value state, struct lincheck_value *next) {
    *next = state;
    if (op->kind == LINCHECK_GET) {
        ASSERT(op->outcome == LINCHECK_OK);
        return lincheck_value_eq(state, op->got);
    }
    if (op->kind == LINCHECK_PUT) {
        *next = write;
        return true;
    }
    ASSERT(op->kind == LINCHECK_CAS);
    bool match = lincheck_value_eq(state, op->arg);
    /* An INFO cas has an unconstrained result: the register decides whether it swaps. */
    bool swaps = op->outcome == LINCHECK_INFO ? match : op->swapped;
    if (swaps != match) return false;
    if (swaps) *next = write;
    return true;
}

/* ---------------------------------------------------------------------------------------
 * Search for one key. */

#define LINCHECK_NONE UINT32_MAX

struct lincheck_node {
    const struct lincheck_op *op;
    uint64_t zobrist; /* this node's share of the bitset hash */
    uint32_t seq;     /* position in the history, to break ties */
    uint32_t prev_i;  /* invocation-order list of nodes not linearized */
    uint32_t next_i;
    uint32_t prev_r; /* response-order list of definite nodes not linearized */
    uint32_t next_r;
    bool definite;               /* outcome OK: must be linearized before its response */
    bool unseen_info_put;        /* INFO put of a value no get or cas compares with */
    struct lincheck_value write; /* value a put or cas writes, after canonicalization */
};

struct lincheck_frame {
    uint32_t node;
    struct lincheck_value state; /* register before node was linearized */
};

struct lincheck_search {
    struct lincheck_node *nodes; /* n nodes, then the sentinel of both lists at index n */
    uint32_t n;
    uint64_t *bits; /* linearized set */
    uint64_t set_hash;
    struct lincheck_value state;
    struct lincheck_frame *stack;
    uint32_t depth;
    uint32_t definite_left;
    struct lincheck_memo memo;
    uint64_t steps;
    uint64_t steps_max;
    uint32_t *best; /* longest linearized sequence; best[0..best_lo) == stack[0..best_lo) */
    uint32_t best_depth;
    uint32_t best_lo;
    uint32_t best_blocked;
};

static int lincheck_node_cmp_invoke(const void *a, const void *b) {
    const struct lincheck_node *x = a, *y = b;
    if (x->op->invoke_ms != y->op->invoke_ms) return x->op->invoke_ms < y->op->invoke_ms ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

struct lincheck_by_response {
    uint64_t response_ms;
    uint32_t node;
};

static int lincheck_by_response_cmp(const void *a, const void *b) {
    const struct lincheck_by_response *x = a, *y = b;
    if (x->response_ms != y->response_ms) return x->response_ms < y->response_ms ? -1 : 1;
    return x->node < y->node ? -1 : x->node > y->node;
}

/* Threads both lists through the sorted nodes; the sentinel n starts and ends each. */
static void lincheck_search_link(struct lincheck_search *s) {
    uint32_t n = s->n;
    struct lincheck_by_response *order = base_calloc(n + 1, sizeof(*order));
    uint32_t definite = 0;
    for (uint32_t i = 0; i <= n; i++) {
        s->nodes[i].prev_i = i == 0 ? n : i - 1;
        s->nodes[i].next_i = i == n ? 0 : i + 1;
        if (i < n && s->nodes[i].definite) {
            order[definite++] = (struct lincheck_by_response){s->nodes[i].op->response_ms, i};
        }
    }
    qsort(order, definite, sizeof(*order), lincheck_by_response_cmp);
    uint32_t prev = n;
    for (uint32_t k = 0; k < definite; k++) {
        s->nodes[prev].next_r = order[k].node;
        s->nodes[order[k].node].prev_r = prev;
        prev = order[k].node;
    }
    s->nodes[prev].next_r = n;
    s->nodes[n].prev_r = prev;
    s->definite_left = definite;
    free(order);
}

static int lincheck_i64_cmp(const void *a, const void *b) {
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static bool lincheck_observed(const int64_t *seen, size_t count, struct lincheck_value v) {
    return !v.nil && bsearch(&v.v, seen, count, sizeof(*seen), lincheck_i64_cmp) != NULL;
}

/* Symmetry reduction: a written value that no get reads and no cas compares with behaves
 * like any other such value, so all of them become one value, `unseen`, chosen among the
 * int64s nobody observes. Merges configurations that differ only in which one is held. */
static void lincheck_search_canonicalize(struct lincheck_search *s) {
    int64_t *seen = base_calloc((size_t)s->n + 1, sizeof(*seen));
    size_t count = 0;
    for (uint32_t i = 0; i < s->n; i++) {
        const struct lincheck_op *op = s->nodes[i].op;
        struct lincheck_value v = op->kind == LINCHECK_GET ? op->got : op->arg;
        if (op->kind != LINCHECK_PUT && !v.nil) seen[count++] = v.v;
    }
    qsort(seen, count, sizeof(*seen), lincheck_i64_cmp);
    struct lincheck_value unseen = {.nil = false, .v = INT64_MIN};
    for (size_t i = 0; i < count && seen[i] <= unseen.v; i++) {
        if (seen[i] == unseen.v) unseen.v++; /* n values cannot cover all of int64 */
    }
    ASSERT(!lincheck_observed(seen, count, unseen));
    for (uint32_t i = 0; i < s->n; i++) {
        struct lincheck_node *nd = &s->nodes[i];
        struct lincheck_value w = nd->op->kind == LINCHECK_CAS ? nd->op->arg2 : nd->op->arg;
        bool observed = w.nil || lincheck_observed(seen, count, w); /* a delete stays one */
        nd->write = observed ? w : unseen;
        nd->unseen_info_put = !observed && !nd->definite && nd->op->kind == LINCHECK_PUT;
    }
    free(seen);
}

/* ops: the key's ops in history order (borrowed; kept until deinit). Drops FAIL ops (they
 * did not take effect) and INFO gets (no effect, no constraint). */
static void lincheck_search_init(struct lincheck_search *s, const struct lincheck_op **ops,
                                 uint32_t count, const struct lincheck_options *o) {
    memset(s, 0, sizeof(*s));
    s->nodes = base_calloc((size_t)count + 1, sizeof(*s->nodes));
    for (uint32_t i = 0; i < count; i++) {
        const struct lincheck_op *op = ops[i];
        if (op->outcome == LINCHECK_FAIL) continue;
        if (op->outcome == LINCHECK_INFO && op->kind == LINCHECK_GET) continue;
        s->nodes[s->n++] =
            (struct lincheck_node){.op = op, .seq = i, .definite = op->outcome == LINCHECK_OK};
    }
    qsort(s->nodes, s->n, sizeof(*s->nodes), lincheck_node_cmp_invoke);
    lincheck_search_canonicalize(s);
    for (uint32_t i = 0; i < s->n; i++) s->nodes[i].zobrist = lincheck_mix(i + 1);
    lincheck_search_link(s);
    size_t words = ((size_t)s->n + 63) / 64;
    s->bits = base_calloc(words ? words : 1, sizeof(*s->bits));
    s->stack = base_calloc((size_t)s->n + 1, sizeof(*s->stack));
    s->best = base_calloc((size_t)s->n + 1, sizeof(*s->best));
    s->state = (struct lincheck_value){.nil = true};
    s->best_blocked = s->definite_left ? s->nodes[s->n].next_r : LINCHECK_NONE;
    s->steps_max = o->steps_max;
    lincheck_memo_init(&s->memo, words, o->memo_bytes_max);
}

static void lincheck_search_deinit(struct lincheck_search *s) {
    lincheck_memo_deinit(&s->memo);
    free(s->best);
    free(s->stack);
    free(s->bits);
    free(s->nodes);
    memset(s, 0, sizeof(*s));
}

static void lincheck_search_toggle(struct lincheck_search *s, uint32_t p) {
    s->bits[p / 64] ^= 1ull << (p % 64);
    s->set_hash ^= s->nodes[p].zobrist;
}

static void lincheck_search_lift(struct lincheck_search *s, uint32_t p) {
    struct lincheck_node *nd = s->nodes;
    nd[nd[p].prev_i].next_i = nd[p].next_i;
    nd[nd[p].next_i].prev_i = nd[p].prev_i;
    if (!nd[p].definite) return;
    nd[nd[p].prev_r].next_r = nd[p].next_r;
    nd[nd[p].next_r].prev_r = nd[p].prev_r;
    s->definite_left--;
}

/* Undoes lincheck_search_lift(p); p must be the node lifted last (dancing links). */
static void lincheck_search_unlift(struct lincheck_search *s, uint32_t p) {
    struct lincheck_node *nd = s->nodes;
    ASSERT(nd[nd[p].prev_i].next_i == nd[p].next_i);
    nd[nd[p].prev_i].next_i = p;
    nd[nd[p].next_i].prev_i = p;
    if (!nd[p].definite) return;
    nd[nd[p].prev_r].next_r = p;
    nd[nd[p].next_r].prev_r = p;
    s->definite_left++;
}

/* Records the stack when it is the longest so far, copying only what changed since. */
static void lincheck_search_note_best(struct lincheck_search *s) {
    if (s->depth <= s->best_depth) return;
    ASSERT(s->best_lo <= s->depth);
    for (uint32_t i = s->best_lo; i < s->depth; i++) s->best[i] = s->stack[i].node;
    s->best_lo = s->depth;
    s->best_depth = s->depth;
    s->best_blocked = s->definite_left ? s->nodes[s->n].next_r : LINCHECK_NONE;
}

/* The model step plus two reductions that keep INFO ops from multiplying configurations.
 * Every linearization can be rewritten to satisfy both with the same observations, so
 * the search loses nothing: (1) an INFO cas that would not swap changes nothing, so it is
 * left unlinearized; (2) an INFO write directly followed by a put is overwritten unseen, so
 * it is dropped instead; (3) below. */
static bool lincheck_search_allowed(const struct lincheck_search *s, uint32_t p,
                                    uint32_t first_unseen, struct lincheck_value *next) {
    const struct lincheck_node *nd = &s->nodes[p];
    if (!lincheck_model_step(nd->op, nd->write, s->state, next)) return false;
    if (!nd->definite && nd->op->kind == LINCHECK_CAS) {
        ASSERT(nd->op->outcome == LINCHECK_INFO);
        if (!lincheck_value_eq(s->state, nd->op->arg)) return false;
    }
    bool after_info = s->depth > 0 && !s->nodes[s->stack[s->depth - 1].node].definite;
    if (after_info && nd->op->kind == LINCHECK_PUT) return false;
    /* (3) Pending INFO puts of unseen values are interchangeable: use the earliest. */
    if (nd->unseen_info_put && p != first_unseen) return false;
    return true;
}

/* Lowe's just-in-time linearization: o, the earliest response among definite nodes not yet
 * linearized, forces a choice. Tries the pending nodes invoked no later than o's response,
 * from cand on in invocation order. Returns 1 after linearizing one, 0 when none fits, or
 * ERR_LIMIT when the step budget or memo is exhausted. */
static int lincheck_search_extend(struct lincheck_search *s, uint32_t cand) {
    uint32_t o = s->nodes[s->n].next_r;
    ASSERT(o < s->n);
    uint64_t deadline = s->nodes[o].op->response_ms;
    uint32_t first_unseen = s->nodes[s->n].next_i;
    while (first_unseen != s->n && !s->nodes[first_unseen].unseen_info_put) {
        first_unseen = s->nodes[first_unseen].next_i;
    }
    for (uint32_t p = cand; p != s->n; p = s->nodes[p].next_i) {
        if (s->nodes[p].op->invoke_ms > deadline) break;
        if (s->steps >= s->steps_max) return ERR_LIMIT;
        s->steps++;
        struct lincheck_value next;
        if (!lincheck_search_allowed(s, p, first_unseen, &next)) continue;
        /* The memo key includes whether p is an INFO write: reduction (2) restricts the
         * next step after one, so such a configuration is not equivalent to the other. */
        bool info = !s->nodes[p].definite;
        struct lincheck_tail tail = {.tag = (uint64_t)next.nil | (uint64_t)info << 1,
                                     .v = (uint64_t)next.v};
        uint64_t hash = s->set_hash ^ lincheck_value_hash(next) ^ (info ? 0x1f0f1f0full : 0);
        lincheck_search_toggle(s, p);
        int rc = lincheck_memo_insert(&s->memo, s->bits, hash ^ s->nodes[p].zobrist, tail);
        if (rc <= 0) {
            lincheck_search_toggle(s, p);
            if (rc < 0) return rc;
            continue; /* Lowe: this configuration was explored already */
        }
        s->stack[s->depth++] = (struct lincheck_frame){.node = p, .state = s->state};
        s->state = next;
        lincheck_search_lift(s, p);
        lincheck_search_note_best(s);
        return 1;
    }
    return 0;
}

/* Undoes the last linearization; returns the node to try after it. */
static uint32_t lincheck_search_pop(struct lincheck_search *s) {
    ASSERT(s->depth > 0);
    struct lincheck_frame f = s->stack[--s->depth];
    lincheck_search_unlift(s, f.node);
    lincheck_search_toggle(s, f.node);
    s->state = f.state;
    if (s->depth < s->best_lo) s->best_lo = s->depth;
    return s->nodes[f.node].next_i;
}

/* Wing & Gong's depth-first search, iterative so that long histories cannot overflow the C
 * stack. Returns the verdict for this key; *memo_full tells why a verdict is UNKNOWN. */
static enum lincheck_verdict lincheck_search_run(struct lincheck_search *s, bool *memo_full) {
    uint32_t cand = s->nodes[s->n].next_i;
    while (s->definite_left > 0) {
        int rc = lincheck_search_extend(s, cand);
        if (rc < 0) {
            *memo_full = s->steps < s->steps_max;
            return LINCHECK_UNKNOWN;
        }
        if (rc == 1) {
            cand = s->nodes[s->n].next_i;
            continue;
        }
        if (s->depth == 0) return LINCHECK_NOT_LINEARIZABLE;
        cand = lincheck_search_pop(s);
    }
    /* Pending INFO ops can be linearized after everything else, where nobody observes. */
    ASSERT(s->depth <= s->n);
    return LINCHECK_LINEARIZABLE;
}

/* ---------------------------------------------------------------------------------------
 * Whole history: partition by key (P-compositionality), check each key. */

static int lincheck_op_ptr_cmp(const void *a, const void *b) {
    const struct lincheck_op *x = *(const struct lincheck_op *const *)a;
    const struct lincheck_op *y = *(const struct lincheck_op *const *)b;
    int c = strcmp(x->key, y->key);
    if (c != 0) return c;
    return x < y ? -1 : x > y; /* same array: history order */
}

static void lincheck_report_violation(const struct lincheck_search *s,
                                      struct lincheck_result *out) {
    ASSERT(s->best_blocked != LINCHECK_NONE);
    out->verdict = LINCHECK_NOT_LINEARIZABLE;
    out->prefix_count = s->best_depth;
    out->prefix_ids = base_calloc((size_t)s->best_depth + 1, sizeof(*out->prefix_ids));
    for (uint32_t i = 0; i < s->best_depth; i++) {
        out->prefix_ids[i] = s->nodes[s->best[i]].op->id;
    }
    /* Replay with the real values: the search may hold the canonical `unseen` one. */
    struct lincheck_value state = {.nil = true};
    for (uint32_t i = 0; i < s->best_depth; i++) {
        const struct lincheck_op *op = s->nodes[s->best[i]].op;
        struct lincheck_value w = op->kind == LINCHECK_CAS ? op->arg2 : op->arg;
        bool ok = lincheck_model_step(op, w, state, &state);
        ASSERT(ok);
    }
    out->value_after_prefix = state;
    out->blocked_id = s->nodes[s->best_blocked].op->id;
}

static void lincheck_check_key(const struct lincheck_op **ops, uint32_t count,
                               const struct lincheck_options *o, struct lincheck_result *out) {
    struct lincheck_search s;
    lincheck_search_init(&s, ops, count, o);
    bool memo_full = false;
    enum lincheck_verdict v = lincheck_search_run(&s, &memo_full);
    out->steps += s.steps;
    out->key_count++;
    if (v == LINCHECK_NOT_LINEARIZABLE) {
        lincheck_report_violation(&s, out);
        snprintf(out->key, sizeof(out->key), "%s", ops[0]->key);
    } else if (v == LINCHECK_UNKNOWN && out->verdict == LINCHECK_LINEARIZABLE) {
        out->verdict = LINCHECK_UNKNOWN;
        out->memo_full = memo_full;
        snprintf(out->key, sizeof(out->key), "%s", ops[0]->key);
    }
    lincheck_search_deinit(&s);
}

int lincheck_check(const struct lincheck_history *h, const struct lincheck_options *o,
                   struct lincheck_result *out) {
    ASSERT(h != NULL);
    ASSERT(out != NULL);
    lincheck_result_deinit(out);
    lincheck_result_init(out);
    struct lincheck_options opt = o ? *o : (struct lincheck_options){0};
    if (opt.steps_max == 0) opt.steps_max = LINCHECK_STEPS_DEFAULT;
    if (opt.memo_bytes_max == 0) opt.memo_bytes_max = LINCHECK_MEMO_BYTES_DEFAULT;
    const struct lincheck_op **sorted = base_calloc(h->op_count + 1, sizeof(*sorted));
    for (size_t i = 0; i < h->op_count; i++) sorted[i] = &h->ops[i];
    qsort(sorted, h->op_count, sizeof(*sorted), lincheck_op_ptr_cmp);
    int rc = 0;
    for (size_t i = 0, j = 0; i < h->op_count; i = j) {
        while (j < h->op_count && strcmp(sorted[j]->key, sorted[i]->key) == 0) j++;
        if (j - i > LINCHECK_KEY_OPS_MAX) {
            rc = ERR_LIMIT;
            break;
        }
        lincheck_check_key(sorted + i, (uint32_t)(j - i), &opt, out);
        if (out->verdict == LINCHECK_NOT_LINEARIZABLE) break;
    }
    free(sorted);
    return rc;
}
