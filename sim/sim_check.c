/*
 * Cross-node invariant checks (see sim_check.h). Tables grow with the highest term and
 * index seen, bounded by SIM_CHECK_TERMS_MAX / SIM_CHECK_INDEXES_MAX (a run that reaches
 * them is reported as a violation of the simulator's limits, never silently truncated).
 */
#include "sim_check.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "base/assert.h"

struct sim_check_match {
    uint64_t index; /* 0: empty slot */
    uint64_t term;
    uint64_t hash;
    uint64_t prev_term;
};

void sim_check_init(struct sim_check *check) {
    ASSERT(check != NULL);
    memset(check, 0, sizeof(*check));
}

void sim_check_deinit(struct sim_check *check) {
    free(check->leader_of_term);
    free(check->committed);
    free(check->applied);
    free(check->match);
    memset(check, 0, sizeof(*check));
}

int sim_check_fail(struct sim_check *check, const char *fmt, ...) {
    if (check->failed) return -1;
    check->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(check->what, sizeof(check->what), fmt, ap);
    va_end(ap);
    return -1;
}

uint64_t sim_check_entry_hash(const struct raft_entry *e) {
    ASSERT(e != NULL);
    uint64_t h = XXH64(e->data_bytes > 0 ? e->data : (const void *)"", e->data_bytes, e->type);
    return h == 0 ? 1 : h;
}

static bool sim_check_grow_indexes(struct sim_check *check, uint64_t index) {
    if (index < check->index_capacity) return true;
    if (index >= SIM_CHECK_INDEXES_MAX) return false;
    size_t cap = check->index_capacity == 0 ? 1024 : check->index_capacity;
    while (cap <= index) cap *= 2;
    size_t old = check->index_capacity, slot = sizeof(struct sim_check_slot);
    size_t commit_slot = sizeof(struct sim_check_committed);
    check->committed = base_realloc(check->committed, cap * commit_slot);
    check->applied = base_realloc(check->applied, cap * slot);
    memset(check->committed + old, 0, (cap - old) * commit_slot);
    memset(check->applied + old, 0, (cap - old) * slot);
    check->index_capacity = cap;
    return true;
}

/* Leader completeness for one leader over committed indexes [from, to]. Raft §5.4.3: an
 * entry committed in term T is in the log of every leader of a term > T; a leader of an
 * earlier term still acting (not yet told of the later term) may lack it, or hold another
 * entry there, so only entries known committed before the leader's term are checked. */
static int sim_check_complete(struct sim_check *check, const struct raft *leader, uint64_t from,
                              uint64_t to) {
    uint64_t first = raft_first_index(leader), term = raft_term(leader);
    for (uint64_t i = from < first ? first : from; i <= to && i < check->index_capacity; i++) {
        const struct sim_check_committed *c = &check->committed[i];
        if (c->term == 0 || c->known_term >= term) continue;
        ASSERT(c->known_term >= c->term); /* an entry is committed in its term or later */
        const struct raft_entry *e = raft_entry_at(leader, i);
        if (e == NULL || e->term != c->term || sim_check_entry_hash(e) != c->hash)
            return sim_check_fail(check,
                                  "leader completeness: leader %u of term %llu lacks entry %llu "
                                  "(term %llu) committed in term %llu; it has term %llu",
                                  raft_id(leader), (unsigned long long)term, (unsigned long long)i,
                                  (unsigned long long)c->term, (unsigned long long)c->known_term,
                                  (unsigned long long)(e ? e->term : 0));
    }
    return 0;
}

int sim_check_leader(struct sim_check *check, uint64_t term, uint32_t id, const struct raft *raft) {
    if (check->failed) return -1;
    ASSERT(id != 0);
    if (term >= SIM_CHECK_TERMS_MAX)
        return sim_check_fail(check, "sim limit: term %llu", (unsigned long long)term);
    if (term >= check->term_capacity) {
        size_t cap = check->term_capacity == 0 ? 256 : check->term_capacity;
        while (cap <= term) cap *= 2;
        check->leader_of_term = base_realloc(check->leader_of_term, cap * sizeof(uint32_t));
        memset(check->leader_of_term + check->term_capacity, 0,
               (cap - check->term_capacity) * sizeof(uint32_t));
        check->term_capacity = cap;
    }
    uint32_t *known = &check->leader_of_term[term];
    if (*known != 0 && *known != id)
        return sim_check_fail(check, "election safety: nodes %u and %u both leader in term %llu",
                              *known, id, (unsigned long long)term);
    if (*known == id) return 0;
    *known = id;
    /* A new leader: Raft §5.4.1, it must hold every entry committed so far. */
    if (raft == NULL) return 0;
    return sim_check_complete(check, raft, 1, check->committed_last);
}

static struct sim_check_match *sim_check_match_find(struct sim_check *check, uint64_t index,
                                                    uint64_t term) {
    size_t mask = check->match_capacity - 1;
    size_t i = (size_t)(XXH64(&index, sizeof(index), term) & mask);
    while (check->match[i].index != 0 &&
           (check->match[i].index != index || check->match[i].term != term))
        i = (i + 1) & mask;
    return &check->match[i];
}

static void sim_check_match_grow(struct sim_check *check) {
    struct sim_check_match *old = check->match;
    size_t old_cap = check->match_capacity;
    check->match_capacity = old_cap == 0 ? 4096 : old_cap * 2;
    check->match = base_calloc(check->match_capacity, sizeof(*check->match));
    for (size_t i = 0; i < old_cap; i++)
        if (old[i].index != 0) *sim_check_match_find(check, old[i].index, old[i].term) = old[i];
    free(old);
}

int sim_check_entry(struct sim_check *check, uint32_t node, uint64_t index, uint64_t term,
                    uint64_t hash, uint64_t prev_term) {
    if (check->failed) return -1;
    ASSERT(index != 0 && term != 0);
    if ((check->match_count + 1) * 2 > check->match_capacity) sim_check_match_grow(check);
    struct sim_check_match *m = sim_check_match_find(check, index, term);
    if (m->index == 0) {
        *m = (struct sim_check_match){index, term, hash, prev_term};
        check->match_count++;
        return 0;
    }
    /* Raft §5.3 log matching: same index and term, same entry and same history before. */
    if (m->hash != hash || m->prev_term != prev_term)
        return sim_check_fail(check,
                              "log matching: node %u holds (index %llu, term %llu) with data "
                              "%016llx after term %llu; seen before: %016llx after term %llu",
                              node, (unsigned long long)index, (unsigned long long)term,
                              (unsigned long long)hash, (unsigned long long)prev_term,
                              (unsigned long long)m->hash, (unsigned long long)m->prev_term);
    return 0;
}

int sim_check_commit(struct sim_check *check, uint32_t node, const struct raft *raft, uint64_t from,
                     uint64_t to) {
    if (check->failed) return -1;
    if (to < from)
        return sim_check_fail(check, "commit monotonic: node %u commit went %llu -> %llu", node,
                              (unsigned long long)from, (unsigned long long)to);
    if (!sim_check_grow_indexes(check, to))
        return sim_check_fail(check, "sim limit: index %llu", (unsigned long long)to);
    uint64_t known = raft_term(raft);
    for (uint64_t i = from + 1; i <= to; i++) {
        const struct raft_entry *e = raft_entry_at(raft, i);
        if (e == NULL) continue; /* compacted: came in a snapshot, checked when applied */
        struct sim_check_committed *c = &check->committed[i];
        uint64_t hash = sim_check_entry_hash(e);
        if (c->term != 0 && (c->term != e->term || c->hash != hash))
            return sim_check_fail(check,
                                  "commit safety: node %u committed (index %llu, term %llu) "
                                  "but (index %llu, term %llu) was committed before",
                                  node, (unsigned long long)i, (unsigned long long)e->term,
                                  (unsigned long long)i, (unsigned long long)c->term);
        /* Raft §5.4.2: a leader commits only in its term, at or after the entry's. */
        if (known < e->term)
            return sim_check_fail(check,
                                  "commit safety: node %u of term %llu committed (index %llu, "
                                  "term %llu) of a later term",
                                  node, (unsigned long long)known, (unsigned long long)i,
                                  (unsigned long long)e->term);
        /* The lowest term seen: a stale leader's late commit may follow a newer one's. */
        if (c->term == 0 || known < c->known_term) c->known_term = known;
        c->term = e->term;
        c->hash = hash;
        if (i > check->committed_last) check->committed_last = i;
    }
    return 0;
}

int sim_check_commit_leaders(struct sim_check *check, const struct raft *const *leaders,
                             size_t leader_count, uint64_t from, uint64_t to) {
    if (check->failed) return -1;
    ASSERT(leader_count == 0 || leaders != NULL);
    for (size_t k = 0; k < leader_count; k++)
        if (sim_check_complete(check, leaders[k], from + 1, to) != 0) return -1;
    return 0;
}

int sim_check_apply(struct sim_check *check, uint32_t node, uint64_t index, uint64_t term,
                    uint64_t hash) {
    if (check->failed) return -1;
    if (!sim_check_grow_indexes(check, index))
        return sim_check_fail(check, "sim limit: index %llu", (unsigned long long)index);
    struct sim_check_slot *a = &check->applied[index];
    if (a->term != 0 && (a->term != term || a->hash != hash))
        return sim_check_fail(check,
                              "state machine safety: node %u applied (index %llu, term %llu, "
                              "%016llx), another node (term %llu, %016llx)",
                              node, (unsigned long long)index, (unsigned long long)term,
                              (unsigned long long)hash, (unsigned long long)a->term,
                              (unsigned long long)a->hash);
    a->term = term;
    a->hash = hash;
    return 0;
}

bool sim_check_applied_has(const struct sim_check *check, uint64_t index, uint64_t term) {
    if (index >= check->index_capacity) return false;
    return check->applied[index].term == term;
}

static int sim_check_logs_at(struct sim_check *check, const struct raft *a, const struct raft *b,
                             uint64_t i, bool *matched) {
    uint64_t ta = 0, tb = 0;
    bool ha = raft_term_at(a, i, &ta), hb = raft_term_at(b, i, &tb);
    ASSERT(ha && hb);
    if (ta == tb) *matched = true;
    if (!*matched) return 0;
    const struct raft_entry *ea = raft_entry_at(a, i), *eb = raft_entry_at(b, i);
    bool same = ta == tb;
    if (same && ea != NULL && eb != NULL)
        same = sim_check_entry_hash(ea) == sim_check_entry_hash(eb);
    if (!same)
        return sim_check_fail(check,
                              "log matching: nodes %u and %u agree at a later index but differ "
                              "at index %llu (terms %llu, %llu)",
                              raft_id(a), raft_id(b), (unsigned long long)i, (unsigned long long)ta,
                              (unsigned long long)tb);
    return 0;
}

int sim_check_logs(struct sim_check *check, const struct raft *a, const struct raft *b) {
    if (check->failed) return -1;
    uint64_t lo =
        raft_first_index(a) > raft_first_index(b) ? raft_first_index(a) : raft_first_index(b);
    lo = lo > 0 ? lo - 1 : 0; /* the snapshot index still has a term */
    if (lo == 0) lo = 1;
    uint64_t hi = raft_last_index(a) < raft_last_index(b) ? raft_last_index(a) : raft_last_index(b);
    bool matched = false;
    for (uint64_t i = hi; i >= lo && i > 0; i--)
        if (sim_check_logs_at(check, a, b, i, &matched) != 0) return -1;
    return 0;
}
