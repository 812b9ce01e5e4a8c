/* The multi-value register of mvreg.h: siblings in a sorted array. */
#include "crdt/mvreg.h"

#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/err.h"

void mvreg_init(struct mvreg *m) {
    memset(m, 0, sizeof(*m));
    vv_init(&m->clock);
}

static void mvreg_clear(struct mvreg *m) {
    for (uint32_t i = 0; i < m->count; i++) crdt_bytes_free(&m->sibs[i].value);
    m->count = 0;
}

void mvreg_deinit(struct mvreg *m) {
    mvreg_clear(m);
    free(m->sibs);
    vv_deinit(&m->clock);
    memset(m, 0, sizeof(*m));
}

static void mvreg_reserve(struct mvreg *m, uint32_t count) {
    if (count <= m->cap) return;
    uint32_t cap = m->cap < 2 ? 2 : m->cap * 2;
    while (cap < count) cap *= 2;
    m->sibs = base_realloc(m->sibs, (unsigned long)cap * sizeof(*m->sibs));
    m->cap = cap;
}

int mvreg_write(struct mvreg *m, uint64_t actor, const struct vv *context, const uint8_t *value,
                size_t bytes) {
    uint32_t kept = 0;
    for (uint32_t i = 0; i < m->count; i++)
        kept += context == NULL || !vv_covers(context, m->sibs[i].dot);
    if (kept + (value != NULL) > MVREG_SIBLINGS_MAX) return ERR_LIMIT;
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->count; i++) {
        if (context != NULL && vv_covers(context, m->sibs[i].dot)) {
            crdt_bytes_free(&m->sibs[i].value);
            continue;
        }
        m->sibs[n++] = m->sibs[i];
    }
    m->count = n;
    /* The context's writes were seen by this one: merged in, a sibling of theirs that
     * arrives later is known to be replaced. */
    if (context != NULL) vv_merge(&m->clock, context);
    struct dot d = vv_next(&m->clock, actor);
    if (value == NULL) return 0;
    mvreg_reserve(m, m->count + 1);
    /* The new dot is the actor's highest: it sorts after every sibling of that actor. */
    uint32_t i = m->count;
    while (i > 0 && dot_compare(m->sibs[i - 1].dot, d) > 0) i--;
    memmove(m->sibs + i + 1, m->sibs + i, (m->count - i) * sizeof(*m->sibs));
    m->sibs[i] = (struct mvreg_sibling){.dot = d};
    crdt_bytes_set(&m->sibs[i].value, value, bytes);
    m->count++;
    ASSERT(m->count == kept + 1);
    return 0;
}

void mvreg_merge(struct mvreg *m, const struct mvreg *other) {
    ASSERT(m != other);
    uint32_t room = m->count + other->count + 1;
    struct mvreg_sibling *out = base_malloc((unsigned long)room * sizeof(*out));
    uint32_t n = 0, i = 0, j = 0;
    while (i < m->count || j < other->count) {
        int c = i == m->count       ? 1
                : j == other->count ? -1
                                    : dot_compare(m->sibs[i].dot, other->sibs[j].dot);
        if (c <= 0) {
            struct mvreg_sibling *a = &m->sibs[i++];
            if (c == 0) j++;
            if (c == 0 || !vv_covers(&other->clock, a->dot))
                out[n++] = *a;
            else
                crdt_bytes_free(&a->value);
            continue;
        }
        const struct mvreg_sibling *b = &other->sibs[j++];
        if (vv_covers(&m->clock, b->dot)) continue;
        out[n] = (struct mvreg_sibling){.dot = b->dot};
        crdt_bytes_set(&out[n].value, b->value.data, b->value.bytes);
        n++;
    }
    free(m->sibs);
    m->sibs = out;
    m->count = n;
    m->cap = room;
    vv_merge(&m->clock, &other->clock);
}

void mvreg_encode(const struct mvreg *m, struct buf *out) {
    vv_encode(&m->clock, out);
    crdt_put_varint(out, m->count);
    for (uint32_t i = 0; i < m->count; i++) {
        crdt_put_varint(out, m->sibs[i].dot.actor);
        crdt_put_varint(out, m->sibs[i].dot.counter);
        crdt_put_bytes(out, m->sibs[i].value.data, m->sibs[i].value.bytes);
    }
}

void mvreg_decode(struct crdt_reader *r, struct mvreg *out) {
    mvreg_clear(out);
    vv_decode(r, &out->clock);
    uint32_t count = (uint32_t)crdt_get_count(r, r->left / 3); /* 3 bytes each at least */
    mvreg_reserve(out, count);
    for (uint32_t i = 0; i < count && r->err == 0; i++) {
        struct mvreg_sibling *s = &out->sibs[i];
        *s = (struct mvreg_sibling){.dot.actor = crdt_get_varint(r)};
        s->dot.counter = crdt_get_varint(r);
        out->count = i + 1;
        crdt_get_owned(r, &s->value);
        bool sorted = i == 0 || dot_compare(out->sibs[i - 1].dot, s->dot) < 0;
        if (!sorted || s->dot.counter == 0 || !vv_covers(&out->clock, s->dot)) crdt_reader_fail(r);
    }
    if (r->err != 0) {
        mvreg_clear(out);
        vv_clear(&out->clock);
    }
}
