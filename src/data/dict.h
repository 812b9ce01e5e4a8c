/*
 * A generic chained hash table with intrusive links and incremental rehashing (Redis's dict).
 *
 * Elements embed a struct dict_link; the dict never allocates or frees them, only its bucket
 * arrays. Growth and shrinking use two tables: while rehashing, every mutation migrates a
 * bounded number of buckets from tables[0] to tables[1], so no operation pauses for long.
 * Lookups check both tables. dict_scan uses Redis's reverse-binary cursor: an element present
 * for the whole scan is returned at least once, even when the table grows or shrinks between
 * calls.
 *
 * Invariants: table sizes are powers of two (or 0 before the first add); while rehashing,
 * buckets of tables[0] below rehash_index are empty; each table's count is the number of
 * elements linked in it.
 * Never hashes with an unseeded function, never reads a clock.
 */
#ifndef CAPKV_DATA_DICT_H
#define CAPKV_DATA_DICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DICT_SIZE_MIN 4              /* buckets of the first table */
#define DICT_SIZE_LOG2_MAX 40        /* limit on growth: 2^40 buckets */
#define DICT_SHRINK_FILL 8           /* shrink when count * DICT_SHRINK_FILL < size */
#define DICT_REHASH_BUCKETS_PER_OP 1 /* buckets migrated by each mutation */
#define DICT_REHASH_EMPTY_VISITS 10  /* empty buckets skipped per bucket migrated */

struct dict_link {
    struct dict_link *next;
};

/* Hash of an element's key, with the dict's seed (used to rehash). */
typedef uint64_t dict_hash_fn(const struct dict_link *link, uint64_t seed);
/* Whether an element has the key that key (opaque to the dict) describes. */
typedef bool dict_match_fn(const struct dict_link *link, const void *key);
typedef void dict_link_fn(void *ctx, struct dict_link *link);

struct dict_table {
    struct dict_link **buckets; /* NULL when size 0 */
    uint64_t mask;              /* size - 1; size is 0 when buckets is NULL */
    size_t count;               /* elements linked in this table */
};

/* Where dict_find_slot found an element: the pointer that links it, and in which table. */
struct dict_slot {
    struct dict_link **link;
    int table;
};

struct dict {
    struct dict_table tables[2]; /* tables[1] is used only while rehashing */
    uint64_t rehash_index;       /* next bucket of tables[0] to migrate, while rehashing */
    uint64_t seed;
    dict_hash_fn *hash;
    size_t *memory_bytes; /* counter of bytes allocated, shared with the owner */
};

/* Initializes an empty dict (no allocation). memory_bytes is kept: the dict adds and
 * subtracts the sizes of its bucket arrays. */
void dict_init(struct dict *d, dict_hash_fn *hash, uint64_t seed, size_t *memory_bytes);
/* Unlinks every element, calling free_fn (may be NULL) on each after it is unlinked, and
 * frees the tables; the dict is then empty and usable. */
void dict_clear(struct dict *d, dict_link_fn *free_fn, void *ctx);

uint64_t dict_hash_bytes(const struct dict *d, const void *bytes, size_t n); /* borrows */
static inline size_t dict_count(const struct dict *d) {
    return d->tables[0].count + d->tables[1].count;
}
static inline bool dict_rehashing(const struct dict *d) {
    return d->tables[1].buckets != 0;
}

/* Returns the element matching key (borrowed) or NULL. Does not migrate buckets. */
struct dict_link *dict_find(const struct dict *d, uint64_t hash, dict_match_fn *match,
                            const void *key);
/* Migrates a step of a rehash, then looks key up: on a match, fills *slot (valid until the
 * next mutation of d) so the caller may replace or unlink the element, and returns true. */
bool dict_find_slot(struct dict *d, uint64_t hash, dict_match_fn *match, const void *key,
                    struct dict_slot *slot);
/* Replaces the element slot links by fresh (same key), which takes over its chain. The old
 * element is no longer referenced (the caller frees it). */
void dict_replace_slot(const struct dict_slot *slot, struct dict_link *fresh);
/* Unlinks the element slot links and returns it (the caller frees it); may start a shrink. */
struct dict_link *dict_unlink_slot(struct dict *d, const struct dict_slot *slot);
/* Links an element; precondition: no element with an equal key. link is kept. */
void dict_add(struct dict *d, uint64_t hash, struct dict_link *link);
/* Migrates up to buckets buckets of a rehash in progress; returns whether one still is. */
bool dict_rehash_steps(struct dict *d, size_t buckets);

/* Visits the elements of one cursor position and returns the next cursor, 0 when done.
 * fn must not mutate d. */
uint64_t dict_scan(const struct dict *d, uint64_t cursor, dict_link_fn *fn, void *ctx);
/* Visits every element once. fn must not mutate d. */
void dict_each(const struct dict *d, dict_link_fn *fn, void *ctx);
/* O(n) check of the invariants above, for tests and DEBUG_ASSERT. */
bool dict_valid(const struct dict *d);

#endif
