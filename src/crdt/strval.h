/*
 * A string value under AP `conflict = crdt`: SET/GET/INCR/DEL on one key, and each field
 * of a hash (ormap.h). It is a last-writer-wins base (lwwreg.h, HLC timestamps) plus a
 * resettable PN-counter (pncounter.h), so a key used with SET is an LWW register, a key
 * used with INCR is a counter (concurrent +7 and +3 give 10, as Redis Active-Active), and
 * the two compose by one rule: the value is the base plus the increments the base's
 * write did not observe. SET 10 on one side and INCR 5 on the other give 15; a SET
 * resets the increments it saw. A DEL removes what it observed: the base it saw (rm_ts)
 * and the increments it saw (the counter's reset); a write it did not see survives.
 *
 * Reading: absent when neither the base counts (written after rm_ts) nor any increment
 * does; the base's bytes when no increment counts; otherwise base (0 if it does not
 * count) plus the counter, in decimal. A base that is not an integer hides the counter
 * (a command that would increment it is refused; a concurrent one only shows once a SET
 * of a number comes). Every part merges by its join, so the whole does too.
 */
#ifndef CAPKV_CRDT_STRVAL_H
#define CAPKV_CRDT_STRVAL_H

#include <stdbool.h>
#include <stdint.h>

#include "crdt/lwwreg.h"
#include "crdt/pncounter.h"

struct strval {
    struct lwwreg base; /* never a tombstone: a DEL raises rm_ts instead */
    uint64_t rm_ts;     /* the base a DEL observed: a base at or before it does not count */
    struct pncounter counter;
};

void strval_init(struct strval *v);
void strval_deinit(struct strval *v);
/* SET at (ts, actor): the new base, and the increments seen so far stop counting.
 * Returns whether the write won (false: a later base is here already). */
bool strval_set(struct strval *v, uint64_t ts, uint64_t actor, const uint8_t *value, size_t bytes);
/* INCRBY as actor. Returns 0, ERR_INVALID when the value is not an integer, or ERR_LIMIT
 * when the result would overflow an int64 (Redis's refusals); *result is the new value. */
int strval_incr(struct strval *v, uint64_t actor, int64_t delta, int64_t *result);
/* DEL: removes the base and the increments this replica has seen. */
void strval_del(struct strval *v);
bool strval_present(const struct strval *v);
/* The value as GET answers it, appended to out; false (nothing appended) when absent. */
bool strval_get(const struct strval *v, struct buf *out);
void strval_merge(struct strval *v, const struct strval *other);

void strval_encode(const struct strval *v, struct buf *out);
void strval_decode(struct crdt_reader *r, struct strval *out);

#endif
