/* The SET/INCR/DEL string value of strval.h. */
#include "crdt/strval.h"

#include "base/assert.h"
#include "base/err.h"
#include "base/util.h"

void strval_init(struct strval *v) {
    lwwreg_init(&v->base);
    v->rm_ts = 0;
    pncounter_init(&v->counter);
}

void strval_deinit(struct strval *v) {
    lwwreg_deinit(&v->base);
    pncounter_deinit(&v->counter);
    v->rm_ts = 0;
}

static bool strval_base_counts(const struct strval *v) {
    return v->base.ts > v->rm_ts;
}

bool strval_set(struct strval *v, uint64_t ts, uint64_t actor, const uint8_t *value, size_t bytes) {
    bool won = lwwreg_write(&v->base, ts, actor, false, value, bytes);
    pncounter_reset(&v->counter); /* a SET replaces the increments it saw, won or lost */
    return won;
}

/* The base as an integer: 0 when it does not count; false when it is not an integer. */
static bool strval_base_int(const struct strval *v, int64_t *out) {
    *out = 0;
    if (!strval_base_counts(v)) return true;
    return util_parse_i64(v->base.value.data, v->base.value.bytes, out);
}

/* base + counter, false when that overflows an int64 (the counter is computed modulo
 * 2^64; an overflow across replicas' concurrent increments reads as the wrapped sum). */
static bool strval_sum(int64_t base, int64_t counter, int64_t *out) {
    return !__builtin_add_overflow(base, counter, out);
}

int strval_incr(struct strval *v, uint64_t actor, int64_t delta, int64_t *result) {
    int64_t base, now, next;
    if (!strval_base_int(v, &base)) return ERR_INVALID;
    if (!strval_sum(base, pncounter_value(&v->counter), &now)) return ERR_LIMIT;
    if (!strval_sum(now, delta, &next)) return ERR_LIMIT;
    int rc = pncounter_add(&v->counter, actor, delta);
    if (rc != 0) return rc;
    *result = next;
    ASSERT(strval_present(v) || next == base);
    return 0;
}

void strval_del(struct strval *v) {
    if (v->base.ts > v->rm_ts) v->rm_ts = v->base.ts;
    pncounter_reset(&v->counter);
    ASSERT(!strval_present(v));
}

bool strval_present(const struct strval *v) {
    return strval_base_counts(v) || pncounter_present(&v->counter);
}

bool strval_get(const struct strval *v, struct buf *out) {
    if (!strval_present(v)) return false;
    int64_t base, sum;
    bool counted = pncounter_present(&v->counter);
    if (!counted || !strval_base_int(v, &base)) {
        buf_append(out, v->base.value.data, v->base.value.bytes);
        return true;
    }
    if (!strval_sum(base, pncounter_value(&v->counter), &sum))
        sum = (int64_t)((uint64_t)base + (uint64_t)pncounter_value(&v->counter));
    char digits[UTIL_I64_DIGITS_MAX];
    buf_append(out, digits, util_format_i64(sum, digits));
    return true;
}

void strval_merge(struct strval *v, const struct strval *other) {
    ASSERT(v != other);
    (void)lwwreg_merge(&v->base, &other->base);
    if (other->rm_ts > v->rm_ts) v->rm_ts = other->rm_ts;
    pncounter_merge(&v->counter, &other->counter);
}

void strval_encode(const struct strval *v, struct buf *out) {
    lwwreg_encode(&v->base, out);
    crdt_put_varint(out, v->rm_ts);
    pncounter_encode(&v->counter, out);
}

void strval_decode(struct crdt_reader *r, struct strval *out) {
    lwwreg_decode(r, &out->base);
    out->rm_ts = crdt_get_varint(r);
    pncounter_decode(r, &out->counter);
    if (out->base.deleted) crdt_reader_fail(r);
    if (r->err != 0) {
        strval_deinit(out);
        strval_init(out);
    }
}
