/*
 * The keyspace's data: key -> value (string, set or hash) with an optional absolute expiry.
 * Pure data structures: no clock (callers pass now_ms), no I/O, seeded hashing (xxHash).
 *
 * Memory: one allocation per string key holds the entry, key and value together; the hash
 * table grows and shrinks incrementally (no pause on rehash) and SCAN cursors stay valid
 * across resizes (every key present for the whole scan is returned at least once).
 *
 * Pointers returned (entries, sets, hashes, key and value bytes) are borrowed and valid
 * until the next mutation of the db, unless a function says otherwise.
 */
#ifndef CAPKV_DATA_DB_H
#define CAPKV_DATA_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum value_type { VALUE_STRING = 1, VALUE_SET = 2, VALUE_HASH = 3 };

#define DB_NO_EXPIRE 0 /* expire_ms of a key that never expires */
/* Limits the callers validate before calling (Redis's proto-max-bulk-len): keys, string
 * values, set members, hash fields and hash values are at most this long. */
#define DB_KEY_BYTES_MAX ((size_t)512 * 1024 * 1024)
#define DB_VALUE_BYTES_MAX ((size_t)512 * 1024 * 1024)

struct db;
struct db_entry;
struct set;
struct hash;

struct db *db_new(uint64_t hash_seed);
void db_free(struct db *db);

/* Finds a key regardless of expiry (callers apply expiry with db_entry_expired). */
struct db_entry *db_find(struct db *db, const uint8_t *key, size_t key_bytes);
bool db_entry_expired(const struct db_entry *e, uint64_t now_ms);
enum value_type db_entry_type(const struct db_entry *e);
const uint8_t *db_entry_key(const struct db_entry *e, size_t *key_bytes);
uint64_t db_entry_expire_ms(const struct db_entry *e); /* DB_NO_EXPIRE or absolute ms */
/* Precondition: the entry is a string. */
const uint8_t *db_entry_string(const struct db_entry *e, size_t *bytes);
struct set *db_entry_set(struct db_entry *e);   /* precondition: a set */
struct hash *db_entry_hash(struct db_entry *e); /* precondition: a hash */

/* Creates or replaces key with a string value (any old value of any type is freed).
 * Returns the new entry. key and value borrowed. */
struct db_entry *db_put_string(struct db *db, const uint8_t *key, size_t key_bytes,
                               const uint8_t *value, size_t value_bytes, uint64_t expire_ms);
/* Creates an empty set / hash at key; precondition: key absent. */
struct db_entry *db_put_set(struct db *db, const uint8_t *key, size_t key_bytes);
struct db_entry *db_put_hash(struct db *db, const uint8_t *key, size_t key_bytes);
/* Removes key; returns whether it existed. */
bool db_delete(struct db *db, const uint8_t *key, size_t key_bytes);
/* Sets or clears (DB_NO_EXPIRE) the expiry of an existing entry, in place. */
void db_entry_set_expire(struct db *db, struct db_entry *e, uint64_t expire_ms);
size_t db_count(const struct db *db);         /* keys, expired-but-not-yet-removed included */
size_t db_expires_count(const struct db *db); /* keys that have an expiry */
void db_clear(struct db *db);
/* Bytes used by the db's own allocations (entries, tables, sets, hashes): for INFO. */
size_t db_memory_bytes(const struct db *db);

typedef void db_scan_fn(void *ctx, struct db_entry *e);
/* Visits the entries of a few buckets starting at cursor (Redis's reverse-binary cursor)
 * and returns the next cursor, 0 when the scan is complete. fn must not mutate the db. */
uint64_t db_scan(struct db *db, uint64_t cursor, db_scan_fn *fn, void *ctx);

/* Called for a key that active expiry is about to delete (so the caller can log it). */
typedef void db_expired_fn(void *ctx, const uint8_t *key, size_t key_bytes);
/* Active expiry: examines up to checks_max keys that have an expiry, deletes those with
 * expire_ms <= now_ms (calling fn before each delete) and returns how many it deleted. */
size_t db_expire_cycle(struct db *db, uint64_t now_ms, size_t checks_max, db_expired_fn *fn,
                       void *ctx);

/* Sets of byte strings. */
bool set_add(struct set *s, const uint8_t *member, size_t bytes);    /* true if added */
bool set_remove(struct set *s, const uint8_t *member, size_t bytes); /* true if removed */
bool set_contains(const struct set *s, const uint8_t *member, size_t bytes);
size_t set_count(const struct set *s);
typedef void set_member_fn(void *ctx, const uint8_t *member, size_t bytes);
void set_each(const struct set *s, set_member_fn *fn, void *ctx);

/* Hashes: field -> value, both byte strings. */
bool hash_put(struct hash *h, const uint8_t *field, size_t field_bytes, const uint8_t *value,
              size_t value_bytes); /* true if the field is new */
/* Returns the value (borrowed until the next mutation of h) or NULL. */
const uint8_t *hash_get(const struct hash *h, const uint8_t *field, size_t field_bytes,
                        size_t *value_bytes);
bool hash_remove(struct hash *h, const uint8_t *field, size_t field_bytes);
size_t hash_count(const struct hash *h);
typedef void hash_field_fn(void *ctx, const uint8_t *field, size_t field_bytes,
                           const uint8_t *value, size_t value_bytes);
void hash_each(const struct hash *h, hash_field_fn *fn, void *ctx);

#endif
