/*
 * Internal to src/data: constructors of the set and hash objects that db.c points its
 * entries at. Both are built on dict.c with one allocation per member / field, and add the
 * bytes they allocate to the owner's counter (for INFO memory).
 */
#ifndef CAPKV_DATA_COLLECTIONS_H
#define CAPKV_DATA_COLLECTIONS_H

#include <stddef.h>
#include <stdint.h>

struct set;
struct hash;

/* memory_bytes is kept (the caller keeps it alive until the object is freed). */
struct set *set_new(uint64_t seed, size_t *memory_bytes);
void set_free(struct set *s); /* takes s */
struct hash *hash_new(uint64_t seed, size_t *memory_bytes);
void hash_free(struct hash *h); /* takes h */

#endif
