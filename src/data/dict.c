/*
 * Chained hash table with incremental rehashing and a resize-proof SCAN (Redis's dict.c).
 *
 * Invariants: a table's size is a power of two; an element of table t lives in bucket
 * hash & tables[t].mask; while rehashing, tables[0] buckets below rehash_index are empty and
 * new elements go to tables[1]; a resize starts only when no rehash is in progress. Bucket
 * migration is bounded per call (DICT_REHASH_*), so a resize never pauses for long.
 * The dict allocates only bucket arrays, never the elements it links.
 */
#include "data/dict.h"

#include <stdlib.h>
#include <xxhash.h>

#include "base/assert.h"

void dict_init(struct dict *d, dict_hash_fn *hash, uint64_t seed, size_t *memory_bytes) {
    ASSERT(hash != NULL);
    ASSERT(memory_bytes != NULL);
    *d = (struct dict){.seed = seed, .hash = hash, .memory_bytes = memory_bytes};
    ASSERT(dict_count(d) == 0);
}

static size_t dict_table_bytes(const struct dict_table *t) {
    return t->buckets == NULL ? 0 : (size_t)(t->mask + 1) * sizeof(struct dict_link *);
}

static void dict_table_free(struct dict *d, struct dict_table *t) {
    ASSERT(*d->memory_bytes >= dict_table_bytes(t));
    *d->memory_bytes -= dict_table_bytes(t);
    free(t->buckets);
    *t = (struct dict_table){0};
}

static void dict_table_alloc(struct dict *d, struct dict_table *t, uint64_t size) {
    ASSERT(size >= DICT_SIZE_MIN);
    ASSERT((size & (size - 1)) == 0);
    ASSERT(size <= (uint64_t)1 << DICT_SIZE_LOG2_MAX);
    t->buckets = base_calloc((unsigned long)size, sizeof(struct dict_link *));
    t->mask = size - 1;
    t->count = 0;
    *d->memory_bytes += dict_table_bytes(t);
}

void dict_clear(struct dict *d, dict_link_fn *free_fn, void *ctx) {
    for (int i = 0; i < 2; i++) {
        struct dict_table *t = &d->tables[i];
        for (uint64_t b = 0; t->buckets != NULL && b <= t->mask; b++) {
            struct dict_link *link = t->buckets[b];
            while (link != NULL) {
                struct dict_link *next = link->next;
                ASSERT(t->count > 0);
                t->count--;
                if (free_fn != NULL) free_fn(ctx, link);
                link = next;
            }
        }
        ASSERT(t->count == 0);
        dict_table_free(d, t);
    }
    d->rehash_index = 0;
    ASSERT(dict_count(d) == 0);
}

uint64_t dict_hash_bytes(const struct dict *d, const void *bytes, size_t n) {
    return XXH3_64bits_withSeed(bytes, n, d->seed);
}

struct dict_link *dict_find(const struct dict *d, uint64_t hash, dict_match_fn *match,
                            const void *key) {
    for (int i = 0; i < 2; i++) {
        const struct dict_table *t = &d->tables[i];
        if (t->buckets == NULL) break;
        for (struct dict_link *l = t->buckets[hash & t->mask]; l != NULL; l = l->next) {
            if (match(l, key)) return l;
        }
    }
    return NULL;
}

/* Starts migrating into a table of new_size buckets; the caller checked no rehash runs. */
static void dict_resize_start(struct dict *d, uint64_t new_size) {
    ASSERT(!dict_rehashing(d));
    ASSERT(d->tables[0].buckets != NULL);
    ASSERT(new_size != d->tables[0].mask + 1);
    dict_table_alloc(d, &d->tables[1], new_size);
    d->rehash_index = 0;
}

static uint64_t dict_size_for(size_t count) {
    uint64_t size = DICT_SIZE_MIN;
    while (size < count) size <<= 1;
    return size;
}

/* Starts a resize if none runs and the load calls for one: double at load factor 1, shrink
 * to the smallest power of two that holds count at load <= 1 when under 1/DICT_SHRINK_FILL. */
static void dict_resize_if_needed(struct dict *d) {
    if (dict_rehashing(d) || d->tables[0].buckets == NULL) return;
    uint64_t size = d->tables[0].mask + 1;
    size_t count = d->tables[0].count;
    if (count >= size && size < ((uint64_t)1 << DICT_SIZE_LOG2_MAX)) {
        dict_resize_start(d, size << 1);
    } else if (size > DICT_SIZE_MIN && count * DICT_SHRINK_FILL < size) {
        dict_resize_start(d, dict_size_for(count));
    }
}

/* Moves the chain of tables[0] bucket rehash_index into tables[1]. */
static void dict_rehash_bucket(struct dict *d) {
    struct dict_table *from = &d->tables[0];
    struct dict_table *to = &d->tables[1];
    struct dict_link *link = from->buckets[d->rehash_index];
    from->buckets[d->rehash_index] = NULL;
    while (link != NULL) {
        struct dict_link *next = link->next;
        uint64_t b = d->hash(link, d->seed) & to->mask;
        link->next = to->buckets[b];
        to->buckets[b] = link;
        ASSERT(from->count > 0);
        from->count--;
        to->count++;
        link = next;
    }
    d->rehash_index++;
}

static void dict_rehash_finish(struct dict *d) {
    ASSERT(d->tables[0].count == 0);
    ASSERT(d->tables[1].buckets != NULL);
    dict_table_free(d, &d->tables[0]);
    d->tables[0] = d->tables[1];
    d->tables[1] = (struct dict_table){0};
    d->rehash_index = 0;
    DEBUG_ASSERT(dict_valid(d));
    /* Deletes during a shrink (or adds during a growth) may call for another resize. */
    dict_resize_if_needed(d);
}

bool dict_rehash_steps(struct dict *d, size_t buckets) {
    if (!dict_rehashing(d)) return false;
    size_t empty_visits = buckets * DICT_REHASH_EMPTY_VISITS;
    struct dict_table *from = &d->tables[0];
    while (buckets > 0 && from->count > 0) {
        ASSERT(d->rehash_index <= from->mask);
        if (from->buckets[d->rehash_index] == NULL) {
            d->rehash_index++;
            if (--empty_visits == 0) break;
            continue;
        }
        dict_rehash_bucket(d);
        buckets--;
    }
    if (from->count == 0) dict_rehash_finish(d);
    return dict_rehashing(d);
}

bool dict_find_slot(struct dict *d, uint64_t hash, dict_match_fn *match, const void *key,
                    struct dict_slot *slot) {
    dict_rehash_steps(d, DICT_REHASH_BUCKETS_PER_OP);
    for (int i = 0; i < 2; i++) {
        struct dict_table *t = &d->tables[i];
        if (t->buckets == NULL) break;
        for (struct dict_link **p = &t->buckets[hash & t->mask]; *p != NULL; p = &(*p)->next) {
            if (match(*p, key)) {
                *slot = (struct dict_slot){.link = p, .table = i};
                return true;
            }
        }
    }
    return false;
}

void dict_replace_slot(const struct dict_slot *slot, struct dict_link *fresh) {
    ASSERT(slot->link != NULL);
    ASSERT(*slot->link != NULL);
    fresh->next = (*slot->link)->next;
    *slot->link = fresh;
}

struct dict_link *dict_unlink_slot(struct dict *d, const struct dict_slot *slot) {
    ASSERT(slot->table == 0 || slot->table == 1);
    struct dict_table *t = &d->tables[slot->table];
    struct dict_link *link = *slot->link;
    ASSERT(link != NULL);
    ASSERT(t->count > 0);
    *slot->link = link->next;
    link->next = NULL;
    t->count--;
    dict_resize_if_needed(d);
    return link;
}

void dict_add(struct dict *d, uint64_t hash, struct dict_link *link) {
    ASSERT(link != NULL);
    if (d->tables[0].buckets == NULL) {
        dict_table_alloc(d, &d->tables[0], DICT_SIZE_MIN);
    } else if (!dict_rehash_steps(d, DICT_REHASH_BUCKETS_PER_OP)) {
        dict_resize_if_needed(d);
    }
    struct dict_table *t = &d->tables[dict_rehashing(d) ? 1 : 0];
    uint64_t b = hash & t->mask;
    link->next = t->buckets[b];
    t->buckets[b] = link;
    t->count++;
    ASSERT(t->buckets[b] == link);
}

static uint64_t dict_reverse_bits(uint64_t v) {
    v = ((v >> 1) & 0x5555555555555555ULL) | ((v & 0x5555555555555555ULL) << 1);
    v = ((v >> 2) & 0x3333333333333333ULL) | ((v & 0x3333333333333333ULL) << 2);
    v = ((v >> 4) & 0x0F0F0F0F0F0F0F0FULL) | ((v & 0x0F0F0F0F0F0F0F0FULL) << 4);
    v = ((v >> 8) & 0x00FF00FF00FF00FFULL) | ((v & 0x00FF00FF00FF00FFULL) << 8);
    v = ((v >> 16) & 0x0000FFFF0000FFFFULL) | ((v & 0x0000FFFF0000FFFFULL) << 16);
    return (v >> 32) | (v << 32);
}

/* Increments the cursor's masked bits from the high end (reverse-binary increment). */
static uint64_t dict_cursor_next(uint64_t v, uint64_t mask) {
    v |= ~mask;
    return dict_reverse_bits(dict_reverse_bits(v) + 1);
}

static void dict_scan_bucket(struct dict_link *link, dict_link_fn *fn, void *ctx) {
    while (link != NULL) {
        struct dict_link *next = link->next;
        fn(ctx, link);
        link = next;
    }
}

uint64_t dict_scan(const struct dict *d, uint64_t cursor, dict_link_fn *fn, void *ctx) {
    if (dict_count(d) == 0) return 0;
    const struct dict_table *small = &d->tables[0];
    if (!dict_rehashing(d)) {
        dict_scan_bucket(small->buckets[cursor & small->mask], fn, ctx);
        return dict_cursor_next(cursor, small->mask);
    }
    /* Redis's dictScan while rehashing: visit the cursor's bucket of the smaller table,
     * then every bucket of the larger table that it expands to. Because the cursor counts
     * from the high bits, buckets already visited stay visited in either table size. */
    const struct dict_table *large = &d->tables[1];
    if (small->mask > large->mask) {
        small = &d->tables[1];
        large = &d->tables[0];
    }
    uint64_t m0 = small->mask;
    uint64_t m1 = large->mask;
    dict_scan_bucket(small->buckets[cursor & m0], fn, ctx);
    do {
        dict_scan_bucket(large->buckets[cursor & m1], fn, ctx);
        cursor = dict_cursor_next(cursor, m1);
    } while (cursor & (m0 ^ m1));
    return cursor;
}

void dict_each(const struct dict *d, dict_link_fn *fn, void *ctx) {
    for (int i = 0; i < 2; i++) {
        const struct dict_table *t = &d->tables[i];
        for (uint64_t b = 0; t->buckets != NULL && b <= t->mask; b++) {
            dict_scan_bucket(t->buckets[b], fn, ctx);
        }
    }
}

static bool dict_table_valid(const struct dict *d, int i) {
    const struct dict_table *t = &d->tables[i];
    if (t->buckets == NULL) return t->count == 0 && t->mask == 0;
    if (((t->mask + 1) & t->mask) != 0) return false;
    size_t n = 0;
    for (uint64_t b = 0; b <= t->mask; b++) {
        for (const struct dict_link *l = t->buckets[b]; l != NULL; l = l->next) {
            if ((d->hash(l, d->seed) & t->mask) != b) return false;
            if (i == 0 && dict_rehashing(d) && b < d->rehash_index) return false;
            n++;
        }
    }
    return n == t->count;
}

bool dict_valid(const struct dict *d) {
    if (!dict_rehashing(d) && d->rehash_index != 0) return false;
    if (dict_rehashing(d) && d->tables[0].buckets == NULL) return false;
    return dict_table_valid(d, 0) && dict_table_valid(d, 1);
}
