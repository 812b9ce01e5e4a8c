/*
 * The keyspace: a dict of entries, each ONE allocation laid out as
 *
 *   offset 0   next link (dict chain)                    8 bytes
 *   offset 8   expire record pointer, NULL = no expiry   8 bytes
 *   offset 16  key bytes | type << DB_TYPE_SHIFT         4 bytes
 *   offset 20  value bytes (string) or pointer size      4 bytes
 *   offset 24  key bytes, then the string value or an unaligned struct set / hash pointer
 *
 * Expiry records {entry, expire_ms} live in fixed blocks that never move, so an entry can
 * point at its record and db_entry_expire_ms needs no db. The records of all expiring keys
 * are packed at positions [0, expires_count): removal moves the last record into the hole
 * and repoints its entry. Active expiry walks those positions with a persistent cursor, so it
 * samples only keys that have an expiry, in an order fixed by the operations alone.
 *
 * Invariants: e->expire == NULL or e->expire->entry == e; every record below expires_count
 * belongs to a live entry; memory_bytes sums the requested sizes of everything allocated.
 */
#include "data/db.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "base/assert.h"
#include "data/collections.h"
#include "data/dict.h"

#define DB_TYPE_SHIFT 30
#define DB_KEY_BYTES_MASK ((UINT32_C(1) << DB_TYPE_SHIFT) - 1)
#define DB_EXPIRE_BLOCK_RECORDS 1024 /* records per expiry block (16 KiB) */
#define DB_SCAN_ENTRIES_MIN 10       /* db_scan stops after visiting this many entries ... */
#define DB_SCAN_STEPS_MAX 100        /* ... or this many cursor positions */
#define DB_CRON_REHASH_BUCKETS 100   /* buckets db_expire_cycle migrates for an idle rehash */

STATIC_ASSERT(DB_KEY_BYTES_MAX <= DB_KEY_BYTES_MASK, "key length fits below the type bits");
STATIC_ASSERT(DB_VALUE_BYTES_MAX <= UINT32_MAX, "value length is stored as u32");

struct db_expire {
    struct db_entry *entry;
    uint64_t expire_ms;
};

struct db_entry {
    struct dict_link link;
    struct db_expire *expire; /* NULL when the key never expires */
    uint32_t key_meta;        /* key bytes | type << DB_TYPE_SHIFT */
    uint32_t value_bytes;     /* string bytes, or sizeof(void *) for a set or hash */
    uint8_t data[];           /* key bytes, then the value */
};

STATIC_ASSERT(sizeof(struct db_entry) == 24, "the entry header stays packed (memory/key)");

struct db {
    struct dict keys;
    struct db_expire **expire_blocks; /* expire_block_count blocks of records */
    size_t expire_block_count;
    size_t expires_count;
    size_t expire_cursor; /* next record position db_expire_cycle examines */
    uint64_t seed_set;
    uint64_t seed_hash;
    size_t memory_bytes;
};

/* A lookup key for db_entry_match. */
struct db_key {
    const uint8_t *bytes;
    size_t n;
};

static size_t db_entry_key_bytes(const struct db_entry *e) {
    return e->key_meta & DB_KEY_BYTES_MASK;
}

static const struct db_entry *db_entry_of(const struct dict_link *link) {
    return (const struct db_entry *)(const void *)link;
}

static uint64_t db_entry_hash_link(const struct dict_link *link, uint64_t seed) {
    const struct db_entry *e = db_entry_of(link);
    return XXH3_64bits_withSeed(e->data, db_entry_key_bytes(e), seed);
}

static bool db_entry_match(const struct dict_link *link, const void *key) {
    const struct db_entry *e = db_entry_of(link);
    const struct db_key *k = key;
    /* Compare lengths first: memcmp only runs on a probable hit. */
    return db_entry_key_bytes(e) == k->n && (k->n == 0 || memcmp(e->data, k->bytes, k->n) == 0);
}

struct db *db_new(uint64_t hash_seed) {
    struct db *db = base_calloc(1, sizeof(*db));
    dict_init(&db->keys, db_entry_hash_link, hash_seed, &db->memory_bytes);
    /* Sets and hashes get seeds derived from, but different from, the keyspace's. */
    db->seed_set = XXH3_64bits_withSeed("set", 3, hash_seed);
    db->seed_hash = XXH3_64bits_withSeed("hash", 4, hash_seed);
    ASSERT(db_count(db) == 0);
    return db;
}

void db_free(struct db *db) {
    db_clear(db);
    ASSERT(db->memory_bytes == 0);
    ASSERT(db->expire_blocks == NULL);
    free(db);
}

/* ---- expiry records ---- */

static struct db_expire *db_expire_at(const struct db *db, size_t position) {
    ASSERT(position < db->expires_count);
    return &db->expire_blocks[position / DB_EXPIRE_BLOCK_RECORDS]
                             [position % DB_EXPIRE_BLOCK_RECORDS];
}

static void db_expire_push(struct db *db, struct db_entry *e, uint64_t expire_ms) {
    ASSERT(e->expire == NULL);
    size_t position = db->expires_count;
    size_t block = position / DB_EXPIRE_BLOCK_RECORDS;
    if (block == db->expire_block_count) {
        size_t n = db->expire_block_count + 1;
        db->expire_blocks = base_realloc(db->expire_blocks, n * sizeof(struct db_expire *));
        db->expire_blocks[block] = base_malloc(DB_EXPIRE_BLOCK_RECORDS * sizeof(struct db_expire));
        db->expire_block_count = n;
        db->memory_bytes +=
            sizeof(struct db_expire *) + DB_EXPIRE_BLOCK_RECORDS * sizeof(struct db_expire);
    }
    ASSERT(block < db->expire_block_count);
    db->expires_count++;
    struct db_expire *rec = db_expire_at(db, position);
    *rec = (struct db_expire){.entry = e, .expire_ms = expire_ms};
    e->expire = rec;
}

/* Frees blocks beyond the first keep. */
static void db_expire_free_blocks(struct db *db, size_t keep) {
    while (db->expire_block_count > keep) {
        db->expire_block_count--;
        free(db->expire_blocks[db->expire_block_count]);
        db->memory_bytes -=
            sizeof(struct db_expire *) + DB_EXPIRE_BLOCK_RECORDS * sizeof(struct db_expire);
    }
    if (db->expire_block_count == 0) {
        free(db->expire_blocks);
        db->expire_blocks = NULL;
    }
    ASSERT(db->expire_block_count * DB_EXPIRE_BLOCK_RECORDS >= db->expires_count);
}

static void db_expire_remove(struct db *db, struct db_entry *e) {
    struct db_expire *rec = e->expire;
    ASSERT(rec != NULL);
    ASSERT(rec->entry == e);
    struct db_expire *last = db_expire_at(db, db->expires_count - 1);
    if (rec != last) {
        *rec = *last;
        rec->entry->expire = rec;
    }
    db->expires_count--;
    e->expire = NULL;
    /* Keep one spare block as a cushion, so churn at a block boundary does not thrash. */
    size_t needed = (db->expires_count + DB_EXPIRE_BLOCK_RECORDS - 1) / DB_EXPIRE_BLOCK_RECORDS;
    db_expire_free_blocks(db, needed + 1);
}

void db_entry_set_expire(struct db *db, struct db_entry *e, uint64_t expire_ms) {
    if (expire_ms == DB_NO_EXPIRE) {
        if (e->expire != NULL) db_expire_remove(db, e);
    } else if (e->expire != NULL) {
        e->expire->expire_ms = expire_ms;
    } else {
        db_expire_push(db, e, expire_ms);
    }
    ASSERT(db_entry_expire_ms(e) == expire_ms);
    if (e->expire != NULL) ASSERT(e->expire->entry == e);
}

/* ---- entries ---- */

static size_t db_entry_alloc_bytes(const struct db_entry *e) {
    return sizeof(*e) + db_entry_key_bytes(e) + e->value_bytes;
}

static struct db_entry *db_entry_new(struct db *db, const struct db_key *key, enum value_type type,
                                     const void *value, size_t value_bytes) {
    ASSERT(key->n <= DB_KEY_BYTES_MAX);
    ASSERT(value_bytes <= DB_VALUE_BYTES_MAX);
    struct db_entry *e = base_malloc(sizeof(*e) + key->n + value_bytes);
    e->link.next = NULL;
    e->expire = NULL;
    e->key_meta = (uint32_t)key->n | (uint32_t)type << DB_TYPE_SHIFT;
    e->value_bytes = (uint32_t)value_bytes;
    if (key->n > 0) memcpy(e->data, key->bytes, key->n);
    if (value_bytes > 0) memcpy(e->data + key->n, value, value_bytes);
    db->memory_bytes += db_entry_alloc_bytes(e);
    ASSERT(db_entry_type(e) == type);
    ASSERT(db_entry_key_bytes(e) == key->n);
    return e;
}

static void *db_entry_object(const struct db_entry *e) {
    ASSERT(db_entry_type(e) != VALUE_STRING);
    ASSERT(e->value_bytes == sizeof(void *));
    void *object;
    memcpy(&object, e->data + db_entry_key_bytes(e), sizeof(object));
    return object;
}

/* Frees the entry and its set or hash; its expiry record is the caller's business. */
static void db_entry_release(struct db *db, struct db_entry *e) {
    if (db_entry_type(e) == VALUE_SET) set_free(db_entry_object(e));
    if (db_entry_type(e) == VALUE_HASH) hash_free(db_entry_object(e));
    ASSERT(db->memory_bytes >= db_entry_alloc_bytes(e));
    db->memory_bytes -= db_entry_alloc_bytes(e);
    free(e);
}

bool db_entry_expired(const struct db_entry *e, uint64_t now_ms) {
    return e->expire != NULL && e->expire->expire_ms <= now_ms;
}

enum value_type db_entry_type(const struct db_entry *e) {
    uint32_t type = e->key_meta >> DB_TYPE_SHIFT;
    ASSERT(type >= VALUE_STRING && type <= VALUE_HASH);
    return (enum value_type)type;
}

const uint8_t *db_entry_key(const struct db_entry *e, size_t *key_bytes) {
    *key_bytes = db_entry_key_bytes(e);
    return e->data;
}

uint64_t db_entry_expire_ms(const struct db_entry *e) {
    if (e->expire == NULL) return DB_NO_EXPIRE;
    ASSERT(e->expire->entry == e);
    return e->expire->expire_ms;
}

const uint8_t *db_entry_string(const struct db_entry *e, size_t *bytes) {
    ASSERT(db_entry_type(e) == VALUE_STRING);
    *bytes = e->value_bytes;
    return e->data + db_entry_key_bytes(e);
}

struct set *db_entry_set(struct db_entry *e) {
    ASSERT(db_entry_type(e) == VALUE_SET);
    return db_entry_object(e);
}

struct hash *db_entry_hash(struct db_entry *e) {
    ASSERT(db_entry_type(e) == VALUE_HASH);
    return db_entry_object(e);
}

/* ---- keyspace ---- */

struct db_entry *db_find(struct db *db, const uint8_t *key, size_t key_bytes) {
    struct db_key k = {key, key_bytes};
    uint64_t hash = dict_hash_bytes(&db->keys, key, key_bytes);
    return (struct db_entry *)(void *)dict_find(&db->keys, hash, db_entry_match, &k);
}

/* Replaces the entry slot links by fresh: fresh takes over the expiry record, which the
 * caller then sets; the old entry (and any set or hash) is freed. */
static void db_entry_replace(struct db *db, const struct dict_slot *slot, struct db_entry *fresh) {
    struct db_entry *old = (struct db_entry *)(void *)*slot->link;
    dict_replace_slot(slot, &fresh->link);
    if (old->expire != NULL) {
        fresh->expire = old->expire;
        fresh->expire->entry = fresh;
        old->expire = NULL;
    }
    db_entry_release(db, old);
}

struct db_entry *db_put_string(struct db *db, const uint8_t *key, size_t key_bytes,
                               const uint8_t *value, size_t value_bytes, uint64_t expire_ms) {
    struct db_key k = {key, key_bytes};
    uint64_t hash = dict_hash_bytes(&db->keys, key, key_bytes);
    struct dict_slot slot;
    struct db_entry *e;
    if (!dict_find_slot(&db->keys, hash, db_entry_match, &k, &slot)) {
        e = db_entry_new(db, &k, VALUE_STRING, value, value_bytes);
        dict_add(&db->keys, hash, &e->link);
    } else {
        e = (struct db_entry *)(void *)*slot.link;
        if (db_entry_type(e) == VALUE_STRING && e->value_bytes == value_bytes) {
            /* Same size: overwrite in place (memmove: value may point into e). */
            if (value_bytes > 0) memmove(e->data + key_bytes, value, value_bytes);
        } else {
            /* Built before the old entry is freed, since value may point into it. */
            struct db_entry *fresh = db_entry_new(db, &k, VALUE_STRING, value, value_bytes);
            db_entry_replace(db, &slot, fresh);
            e = fresh;
        }
    }
    db_entry_set_expire(db, e, expire_ms);
    ASSERT(db_entry_type(e) == VALUE_STRING);
    ASSERT(e->value_bytes == value_bytes);
    return e;
}

static struct db_entry *db_put_object(struct db *db, const uint8_t *key, size_t key_bytes,
                                      enum value_type type, void *object) {
    struct db_key k = {key, key_bytes};
    uint64_t hash = dict_hash_bytes(&db->keys, key, key_bytes);
    struct dict_slot slot;
    bool exists = dict_find_slot(&db->keys, hash, db_entry_match, &k, &slot);
    ASSERT(!exists); /* precondition: key absent */
    struct db_entry *e = db_entry_new(db, &k, type, &object, sizeof(object));
    dict_add(&db->keys, hash, &e->link);
    ASSERT(db_entry_object(e) == object);
    return e;
}

struct db_entry *db_put_set(struct db *db, const uint8_t *key, size_t key_bytes) {
    struct set *s = set_new(db->seed_set, &db->memory_bytes);
    return db_put_object(db, key, key_bytes, VALUE_SET, s);
}

struct db_entry *db_put_hash(struct db *db, const uint8_t *key, size_t key_bytes) {
    struct hash *h = hash_new(db->seed_hash, &db->memory_bytes);
    return db_put_object(db, key, key_bytes, VALUE_HASH, h);
}

bool db_delete(struct db *db, const uint8_t *key, size_t key_bytes) {
    struct db_key k = {key, key_bytes};
    uint64_t hash = dict_hash_bytes(&db->keys, key, key_bytes);
    struct dict_slot slot;
    if (!dict_find_slot(&db->keys, hash, db_entry_match, &k, &slot)) return false;
    size_t count = db_count(db);
    struct db_entry *e = (struct db_entry *)(void *)dict_unlink_slot(&db->keys, &slot);
    if (e->expire != NULL) db_expire_remove(db, e);
    db_entry_release(db, e);
    ASSERT(db_count(db) == count - 1);
    return true;
}

size_t db_count(const struct db *db) {
    return dict_count(&db->keys);
}

size_t db_expires_count(const struct db *db) {
    return db->expires_count;
}

static void db_clear_entry(void *ctx, struct dict_link *link) {
    db_entry_release(ctx, (struct db_entry *)(void *)link);
}

void db_clear(struct db *db) {
    /* Drop every expiry record at once; the entries then go without touching them. */
    db->expires_count = 0;
    db->expire_cursor = 0;
    db_expire_free_blocks(db, 0);
    dict_clear(&db->keys, db_clear_entry, db);
    ASSERT(db->memory_bytes == 0);
    ASSERT(db_count(db) == 0);
}

size_t db_memory_bytes(const struct db *db) {
    return db->memory_bytes;
}

struct db_scan_ctx {
    db_scan_fn *fn;
    void *ctx;
    size_t visited;
};

static void db_scan_link(void *ctx, struct dict_link *link) {
    struct db_scan_ctx *scan = ctx;
    scan->visited++;
    scan->fn(scan->ctx, (struct db_entry *)(void *)link);
}

uint64_t db_scan(struct db *db, uint64_t cursor, db_scan_fn *fn, void *ctx) {
    struct db_scan_ctx scan = {fn, ctx, 0};
    size_t steps = 0;
    do {
        cursor = dict_scan(&db->keys, cursor, db_scan_link, &scan);
        steps++;
    } while (cursor != 0 && scan.visited < DB_SCAN_ENTRIES_MIN && steps < DB_SCAN_STEPS_MAX);
    return cursor;
}

/* Unlinks and frees e, found again by its key (its slot is not kept across calls). */
static void db_delete_entry(struct db *db, struct db_entry *e) {
    size_t key_bytes;
    const uint8_t *key = db_entry_key(e, &key_bytes);
    struct db_key k = {key, key_bytes};
    uint64_t hash = dict_hash_bytes(&db->keys, key, key_bytes);
    struct dict_slot slot;
    bool found = dict_find_slot(&db->keys, hash, db_entry_match, &k, &slot);
    ASSERT(found);
    ASSERT(*slot.link == &e->link);
    dict_unlink_slot(&db->keys, &slot);
    if (e->expire != NULL) db_expire_remove(db, e);
    db_entry_release(db, e);
}

size_t db_expire_cycle(struct db *db, uint64_t now_ms, size_t checks_max, db_expired_fn *fn,
                       void *ctx) {
    /* This is the periodic task: also advance a rehash that no write is driving. */
    dict_rehash_steps(&db->keys, DB_CRON_REHASH_BUCKETS);
    size_t checks = checks_max < db->expires_count ? checks_max : db->expires_count;
    size_t deleted = 0;
    for (size_t i = 0; i < checks && db->expires_count > 0; i++) {
        if (db->expire_cursor >= db->expires_count) db->expire_cursor = 0;
        struct db_expire *rec = db_expire_at(db, db->expire_cursor);
        if (rec->expire_ms > now_ms) {
            db->expire_cursor++;
            continue;
        }
        /* The last record moves into this position: examine it next, cursor unchanged. */
        struct db_entry *e = rec->entry;
        size_t key_bytes;
        const uint8_t *key = db_entry_key(e, &key_bytes);
        if (fn != NULL) fn(ctx, key, key_bytes);
        db_delete_entry(db, e);
        deleted++;
    }
    ASSERT(deleted <= checks);
    return deleted;
}
