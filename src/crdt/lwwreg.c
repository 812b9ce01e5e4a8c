/* The last-writer-wins register of lwwreg.h. */
#include "crdt/lwwreg.h"

#include <string.h>

#include "base/assert.h"

void lwwreg_init(struct lwwreg *r) {
    memset(r, 0, sizeof(*r));
}

void lwwreg_deinit(struct lwwreg *r) {
    crdt_bytes_free(&r->value);
    lwwreg_init(r);
}

/* -1, 0, 1: the order of two writes (lwwreg.h). */
static int lwwreg_order(uint64_t ts_a, uint64_t actor_a, bool del_a, const struct crdt_bytes *a,
                        const struct lwwreg *b) {
    if (ts_a != b->ts) return ts_a < b->ts ? -1 : 1;
    if (actor_a != b->actor) return actor_a < b->actor ? -1 : 1;
    if (del_a != b->deleted) return del_a ? 1 : -1; /* a tombstone beats a twin write */
    return crdt_bytes_compare(a->data, a->bytes, b->value.data, b->value.bytes);
}

bool lwwreg_write(struct lwwreg *r, uint64_t ts, uint64_t actor, bool deleted, const uint8_t *value,
                  size_t bytes) {
    ASSERT(ts > 0);
    if (deleted) bytes = 0;
    struct crdt_bytes v = {.data = (uint8_t *)(uintptr_t)value, .bytes = (uint32_t)bytes};
    if (lwwreg_order(ts, actor, deleted, &v, r) <= 0) return false;
    r->ts = ts;
    r->actor = actor;
    r->deleted = deleted;
    crdt_bytes_set(&r->value, value, bytes);
    ASSERT(lwwreg_present(r) == !deleted);
    return true;
}

bool lwwreg_merge(struct lwwreg *r, const struct lwwreg *other) {
    if (other->ts == 0) return false;
    return lwwreg_write(r, other->ts, other->actor, other->deleted, other->value.data,
                        other->value.bytes);
}

bool lwwreg_present(const struct lwwreg *r) {
    return r->ts != 0 && !r->deleted;
}

void lwwreg_encode(const struct lwwreg *r, struct buf *out) {
    crdt_put_varint(out, r->ts);
    crdt_put_varint(out, r->actor);
    buf_append_byte(out, r->deleted ? 1 : 0);
    crdt_put_bytes(out, r->value.data, r->value.bytes);
}

void lwwreg_decode(struct crdt_reader *r, struct lwwreg *out) {
    lwwreg_deinit(out);
    out->ts = crdt_get_varint(r);
    out->actor = crdt_get_varint(r);
    const uint8_t *flag = crdt_get_bytes(r, 1);
    out->deleted = flag != NULL && *flag == 1;
    crdt_get_owned(r, &out->value);
    bool bad_flag = flag != NULL && *flag > 1;
    bool bad_tombstone = out->deleted && out->value.bytes > 0;
    if (bad_flag || bad_tombstone || (out->ts == 0 && (out->actor != 0 || out->deleted)))
        crdt_reader_fail(r);
    if (r->err != 0) lwwreg_deinit(out);
}
