/*
 * The simulator's cross-node invariant checker (Raft Figure 3 and the durability promise).
 * The simulation feeds it what it observes after every step; each call returns 0, or -1
 * after recording the first violation (name and detail in check->what; later calls keep
 * returning -1). Checks:
 *   election safety     at most one leader per term, ever (term -> leader, remembered)
 *   log matching        an (index, term) always carries the same data and follows the same
 *                       previous term (incremental, per appended entry); sim_check_logs
 *                       compares whole logs pairwise (O(n), run every few steps)
 *   leader completeness an entry first known committed in term T is in the log of every
 *                       leader of a term > T (Raft §5.4: a leader of an earlier term, still
 *                       acting after a later one committed the entry, may lack it)
 *   state machine safety no two nodes apply different entries at one index
 *   commit monotonic    a node's commit index never decreases within one incarnation
 *   durability          an entry acknowledged as committed is applied in the final state
 * Never: print, read a clock, keep global state.
 */
#ifndef CAPKV_SIM_CHECK_H
#define CAPKV_SIM_CHECK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "raft/raft.h"

#define SIM_CHECK_WHAT_BYTES 256
#define SIM_CHECK_TERMS_MAX (1u << 20)   /* terms remembered for election safety */
#define SIM_CHECK_INDEXES_MAX (1u << 22) /* log indexes remembered */

struct sim_check_slot {
    uint64_t term; /* 0: nothing recorded */
    uint64_t hash;
};

/* An entry known committed. known_term: the lowest term of a node seen to commit it (the
 * committing leader's term; a follower learns a commit from its own term's leader, so its
 * term is never lower than that): Raft §5.4.3 proves completeness for leaders of later terms. */
struct sim_check_committed {
    uint64_t term; /* the entry's term; 0: nothing recorded */
    uint64_t hash;
    uint64_t known_term;
};

struct sim_check_match; /* (index, term) -> (hash, previous term): open addressing */

struct sim_check {
    uint32_t *leader_of_term; /* [term] -> leader id, 0: none seen */
    size_t term_capacity;
    struct sim_check_committed *committed; /* [index]: entries known committed */
    struct sim_check_slot *applied;        /* [index]: entries some state machine applied */
    size_t index_capacity;
    uint64_t committed_last;
    struct sim_check_match *match;
    size_t match_count;
    size_t match_capacity;
    bool failed;
    char what[SIM_CHECK_WHAT_BYTES];
};

/* check: caller-owned storage. */
void sim_check_init(struct sim_check *check);
void sim_check_deinit(struct sim_check *check);

/* Hash of an entry's type and data (not its index or term). e borrowed. */
uint64_t sim_check_entry_hash(const struct raft_entry *e);

/* Election safety: node id is leader in term. A new leader's log is checked for leader
 * completeness against the entries known committed in earlier terms (raft borrowed, may be
 * NULL to skip that). */
int sim_check_leader(struct sim_check *check, uint64_t term, uint32_t id, const struct raft *raft);
/* Log matching, incrementally: node holds (index, term) with data hash after prev_term. */
int sim_check_entry(struct sim_check *check, uint32_t node, uint64_t index, uint64_t term,
                    uint64_t hash, uint64_t prev_term);
/* Commit: node's commit index moved from `from` to `to` (raft borrowed, for the entries'
 * terms and its current term, the term the commit is known in). from > to within one
 * incarnation is a violation. Records the newly committed entries; sim_check_commit_leaders
 * then checks them against every current leader in leaders[0..leader_count) (borrowed)
 * whose term is later than the one they were first known committed in. */
int sim_check_commit(struct sim_check *check, uint32_t node, const struct raft *raft, uint64_t from,
                     uint64_t to);
int sim_check_commit_leaders(struct sim_check *check, const struct raft *const *leaders,
                             size_t leader_count, uint64_t from, uint64_t to);
/* State machine safety: node applied (index, term, hash). */
int sim_check_apply(struct sim_check *check, uint32_t node, uint64_t index, uint64_t term,
                    uint64_t hash);
/* Log matching over two whole logs (borrowed). */
int sim_check_logs(struct sim_check *check, const struct raft *a, const struct raft *b);
/* Durability: true when (index, term) is recorded as applied. */
bool sim_check_applied_has(const struct sim_check *check, uint64_t index, uint64_t term);
/* Records a violation by hand (used by the simulation for end-of-run checks). */
int sim_check_fail(struct sim_check *check, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
