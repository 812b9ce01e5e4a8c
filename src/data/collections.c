/*
 * Sets and hashes of byte strings, on dict.c. Each member (or field with its value) is one
 * allocation that embeds its dict link: header, then the bytes.
 *
 * Invariants: a set never holds two equal members, a hash never two equal fields; every
 * allocated byte is added to *memory_bytes and subtracted when freed. Lengths fit in u32
 * because callers keep them <= DB_VALUE_BYTES_MAX.
 */
#include "data/collections.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "base/assert.h"
#include "data/db.h"
#include "data/dict.h"

STATIC_ASSERT(DB_VALUE_BYTES_MAX <= UINT32_MAX, "member and value lengths are stored as u32");

struct set {
    struct dict dict;
};

struct set_member {
    struct dict_link link;
    uint32_t bytes;
    uint8_t data[];
};

struct hash {
    struct dict dict;
};

struct hash_field {
    struct dict_link link;
    uint32_t field_bytes;
    uint32_t value_bytes;
    uint8_t data[]; /* field bytes, then value bytes */
};

/* A lookup key for the match callbacks. */
struct collections_key {
    const uint8_t *bytes;
    size_t n;
};

static bool collections_equal(const uint8_t *a, size_t a_bytes, const struct collections_key *k) {
    return a_bytes == k->n && (k->n == 0 || memcmp(a, k->bytes, k->n) == 0);
}

static void collections_copy(uint8_t *dst, const uint8_t *src, size_t n) {
    if (n > 0) memcpy(dst, src, n);
}

/* ---- sets ---- */

static const struct set_member *set_member_of(const struct dict_link *link) {
    return (const struct set_member *)(const void *)link;
}

static uint64_t set_link_hash(const struct dict_link *link, uint64_t seed) {
    const struct set_member *m = set_member_of(link);
    return XXH3_64bits_withSeed(m->data, m->bytes, seed);
}

static bool set_link_match(const struct dict_link *link, const void *key) {
    const struct set_member *m = set_member_of(link);
    return collections_equal(m->data, m->bytes, key);
}

struct set *set_new(uint64_t seed, size_t *memory_bytes) {
    struct set *s = base_malloc(sizeof(*s));
    dict_init(&s->dict, set_link_hash, seed, memory_bytes);
    *memory_bytes += sizeof(*s);
    ASSERT(set_count(s) == 0);
    return s;
}

static void set_free_member(void *ctx, struct dict_link *link) {
    size_t *memory_bytes = ctx;
    size_t bytes = sizeof(struct set_member) + set_member_of(link)->bytes;
    ASSERT(*memory_bytes >= bytes);
    *memory_bytes -= bytes;
    free(link);
}

void set_free(struct set *s) {
    size_t *memory_bytes = s->dict.memory_bytes;
    dict_clear(&s->dict, set_free_member, memory_bytes);
    ASSERT(*memory_bytes >= sizeof(*s));
    *memory_bytes -= sizeof(*s);
    free(s);
}

bool set_add(struct set *s, const uint8_t *member, size_t bytes) {
    ASSERT(bytes <= DB_VALUE_BYTES_MAX);
    struct collections_key key = {member, bytes};
    uint64_t hash = dict_hash_bytes(&s->dict, member, bytes);
    struct dict_slot slot;
    if (dict_find_slot(&s->dict, hash, set_link_match, &key, &slot)) return false;
    struct set_member *m = base_malloc(sizeof(*m) + bytes);
    m->bytes = (uint32_t)bytes;
    collections_copy(m->data, member, bytes);
    *s->dict.memory_bytes += sizeof(*m) + bytes;
    size_t count = set_count(s);
    dict_add(&s->dict, hash, &m->link);
    ASSERT(set_count(s) == count + 1);
    return true;
}

bool set_remove(struct set *s, const uint8_t *member, size_t bytes) {
    struct collections_key key = {member, bytes};
    uint64_t hash = dict_hash_bytes(&s->dict, member, bytes);
    struct dict_slot slot;
    if (!dict_find_slot(&s->dict, hash, set_link_match, &key, &slot)) return false;
    set_free_member(s->dict.memory_bytes, dict_unlink_slot(&s->dict, &slot));
    return true;
}

bool set_contains(const struct set *s, const uint8_t *member, size_t bytes) {
    struct collections_key key = {member, bytes};
    uint64_t hash = dict_hash_bytes(&s->dict, member, bytes);
    return dict_find(&s->dict, hash, set_link_match, &key) != NULL;
}

size_t set_count(const struct set *s) {
    return dict_count(&s->dict);
}

struct set_each_ctx {
    set_member_fn *fn;
    void *ctx;
};

static void set_each_link(void *ctx, struct dict_link *link) {
    struct set_each_ctx *each = ctx;
    const struct set_member *m = set_member_of(link);
    each->fn(each->ctx, m->data, m->bytes);
}

void set_each(const struct set *s, set_member_fn *fn, void *ctx) {
    struct set_each_ctx each = {fn, ctx};
    dict_each(&s->dict, set_each_link, &each);
}

/* ---- hashes ---- */

static const struct hash_field *hash_field_of(const struct dict_link *link) {
    return (const struct hash_field *)(const void *)link;
}

static uint64_t hash_link_hash(const struct dict_link *link, uint64_t seed) {
    const struct hash_field *f = hash_field_of(link);
    return XXH3_64bits_withSeed(f->data, f->field_bytes, seed);
}

static bool hash_link_match(const struct dict_link *link, const void *key) {
    const struct hash_field *f = hash_field_of(link);
    return collections_equal(f->data, f->field_bytes, key);
}

struct hash *hash_new(uint64_t seed, size_t *memory_bytes) {
    struct hash *h = base_malloc(sizeof(*h));
    dict_init(&h->dict, hash_link_hash, seed, memory_bytes);
    *memory_bytes += sizeof(*h);
    ASSERT(hash_count(h) == 0);
    return h;
}

static void hash_free_field(void *ctx, struct dict_link *link) {
    size_t *memory_bytes = ctx;
    const struct hash_field *f = hash_field_of(link);
    size_t bytes = sizeof(*f) + f->field_bytes + f->value_bytes;
    ASSERT(*memory_bytes >= bytes);
    *memory_bytes -= bytes;
    free(link);
}

void hash_free(struct hash *h) {
    size_t *memory_bytes = h->dict.memory_bytes;
    dict_clear(&h->dict, hash_free_field, memory_bytes);
    ASSERT(*memory_bytes >= sizeof(*h));
    *memory_bytes -= sizeof(*h);
    free(h);
}

static struct hash_field *hash_field_new(struct hash *h, const uint8_t *field, size_t field_bytes,
                                         const uint8_t *value, size_t value_bytes) {
    ASSERT(field_bytes <= DB_VALUE_BYTES_MAX);
    ASSERT(value_bytes <= DB_VALUE_BYTES_MAX);
    struct hash_field *f = base_malloc(sizeof(*f) + field_bytes + value_bytes);
    f->field_bytes = (uint32_t)field_bytes;
    f->value_bytes = (uint32_t)value_bytes;
    collections_copy(f->data, field, field_bytes);
    collections_copy(f->data + field_bytes, value, value_bytes);
    *h->dict.memory_bytes += sizeof(*f) + field_bytes + value_bytes;
    return f;
}

bool hash_put(struct hash *h, const uint8_t *field, size_t field_bytes, const uint8_t *value,
              size_t value_bytes) {
    struct collections_key key = {field, field_bytes};
    uint64_t hash = dict_hash_bytes(&h->dict, field, field_bytes);
    struct dict_slot slot;
    if (!dict_find_slot(&h->dict, hash, hash_link_match, &key, &slot)) {
        struct hash_field *f = hash_field_new(h, field, field_bytes, value, value_bytes);
        dict_add(&h->dict, hash, &f->link);
        return true;
    }
    struct hash_field *old = (struct hash_field *)(void *)*slot.link;
    if (old->value_bytes == value_bytes) {
        /* Same size: overwrite in place (memmove: value may point into old). */
        if (value_bytes > 0) memmove(old->data + old->field_bytes, value, value_bytes);
        return false;
    }
    /* Build the new field before freeing the old one, which value may point into. */
    struct hash_field *f = hash_field_new(h, field, field_bytes, value, value_bytes);
    dict_replace_slot(&slot, &f->link);
    hash_free_field(h->dict.memory_bytes, &old->link);
    return false;
}

const uint8_t *hash_get(const struct hash *h, const uint8_t *field, size_t field_bytes,
                        size_t *value_bytes) {
    struct collections_key key = {field, field_bytes};
    uint64_t hash = dict_hash_bytes(&h->dict, field, field_bytes);
    const struct dict_link *link = dict_find(&h->dict, hash, hash_link_match, &key);
    if (link == NULL) return NULL;
    const struct hash_field *f = hash_field_of(link);
    *value_bytes = f->value_bytes;
    return f->data + f->field_bytes;
}

bool hash_remove(struct hash *h, const uint8_t *field, size_t field_bytes) {
    struct collections_key key = {field, field_bytes};
    uint64_t hash = dict_hash_bytes(&h->dict, field, field_bytes);
    struct dict_slot slot;
    if (!dict_find_slot(&h->dict, hash, hash_link_match, &key, &slot)) return false;
    hash_free_field(h->dict.memory_bytes, dict_unlink_slot(&h->dict, &slot));
    return true;
}

size_t hash_count(const struct hash *h) {
    return dict_count(&h->dict);
}

struct hash_each_ctx {
    hash_field_fn *fn;
    void *ctx;
};

static void hash_each_link(void *ctx, struct dict_link *link) {
    struct hash_each_ctx *each = ctx;
    const struct hash_field *f = hash_field_of(link);
    each->fn(each->ctx, f->data, f->field_bytes, f->data + f->field_bytes, f->value_bytes);
}

void hash_each(const struct hash *h, hash_field_fn *fn, void *ctx) {
    struct hash_each_ctx each = {fn, ctx};
    dict_each(&h->dict, hash_each_link, &each);
}
