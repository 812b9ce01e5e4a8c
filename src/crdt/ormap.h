/*
 * A hash under AP `conflict = crdt`: HSET/HDEL/HGET/HGETALL/HINCRBY. Each field is a
 * strval (strval.h): its value is last-writer-wins, HINCRBY makes it a counter, and HDEL
 * removes what it observed, so a field written or incremented concurrently with its HDEL
 * stays (add wins, as Redis Active-Active's hashes). A removed field keeps its strval as
 * a tombstone (absent, holding what the HDEL saw) so that an older copy arriving later
 * cannot bring it back; the key's tombstone collection takes the whole hash once it is
 * deleted everywhere. Merge is per field, by strval's join.
 * Invariants: fields sorted by crdt_bytes_compare and distinct, at most ORMAP_FIELDS_MAX.
 */
#ifndef CAPKV_CRDT_ORMAP_H
#define CAPKV_CRDT_ORMAP_H

#include <stdbool.h>
#include <stdint.h>

#include "crdt/strval.h"

#define ORMAP_FIELDS_MAX (1u << 24)

struct ormap_field {
    struct crdt_bytes name;
    struct strval value;
};

struct ormap {
    struct ormap_field *fields; /* owned; sorted by name; absent ones are tombstones */
    uint32_t count;
    uint32_t cap;
};

void ormap_init(struct ormap *m);
void ormap_deinit(struct ormap *m);
/* The field's value, or NULL if the map has never had it (returns borrowed, valid until
 * the next change of m). A tombstone is returned too: check strval_present. */
const struct strval *ormap_find(const struct ormap *m, const uint8_t *name, size_t bytes);
/* The field's value to change, added (absent) if the map has never had it; NULL when the
 * map already holds ORMAP_FIELDS_MAX fields. */
struct strval *ormap_field(struct ormap *m, const uint8_t *name, size_t bytes);
/* HDEL of one field: returns whether it was present. */
bool ormap_remove(struct ormap *m, const uint8_t *name, size_t bytes);
/* DEL: removes every field this replica has seen. */
void ormap_clear(struct ormap *m);
/* The number of present fields (HLEN). */
uint32_t ormap_present_count(const struct ormap *m);
void ormap_merge(struct ormap *m, const struct ormap *other);

void ormap_encode(const struct ormap *m, struct buf *out);
void ormap_decode(struct crdt_reader *r, struct ormap *out);

#endif
