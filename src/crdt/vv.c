/* Version vectors and dots (vv.h): sorted arrays, merged in one pass. */
#include "crdt/vv.h"

#include <stdlib.h>
#include <string.h>

#include "base/assert.h"

int dot_compare(struct dot a, struct dot b) {
    if (a.actor != b.actor) return a.actor < b.actor ? -1 : 1;
    if (a.counter != b.counter) return a.counter < b.counter ? -1 : 1;
    return 0;
}

void vv_init(struct vv *vv) {
    memset(vv, 0, sizeof(*vv));
}

void vv_deinit(struct vv *vv) {
    free(vv->entries);
    vv_init(vv);
}

void vv_clear(struct vv *vv) {
    vv->count = 0;
}

static void vv_reserve(struct vv *vv, uint32_t count) {
    ASSERT(count <= VV_ACTORS_MAX);
    if (count <= vv->cap) return;
    uint32_t cap = vv->cap < 4 ? 4 : vv->cap * 2;
    while (cap < count) cap *= 2;
    vv->entries = base_realloc(vv->entries, (unsigned long)cap * sizeof(struct dot));
    vv->cap = cap;
}

void vv_copy(struct vv *dst, const struct vv *src) {
    ASSERT(dst != src);
    vv_reserve(dst, src->count);
    if (src->count > 0) memcpy(dst->entries, src->entries, src->count * sizeof(struct dot));
    dst->count = src->count;
}

/* The position of actor, or where it would go (lower bound). */
static uint32_t vv_find(const struct vv *vv, uint64_t actor) {
    uint32_t lo = 0, hi = vv->count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (vv->entries[mid].actor < actor)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

uint64_t vv_get(const struct vv *vv, uint64_t actor) {
    uint32_t i = vv_find(vv, actor);
    return i < vv->count && vv->entries[i].actor == actor ? vv->entries[i].counter : 0;
}

bool vv_covers(const struct vv *vv, struct dot d) {
    ASSERT(d.counter > 0);
    return d.counter <= vv_get(vv, d.actor);
}

void vv_raise(struct vv *vv, uint64_t actor, uint64_t counter) {
    if (counter == 0) return;
    uint32_t i = vv_find(vv, actor);
    if (i < vv->count && vv->entries[i].actor == actor) {
        if (vv->entries[i].counter < counter) vv->entries[i].counter = counter;
        return;
    }
    vv_reserve(vv, vv->count + 1);
    memmove(vv->entries + i + 1, vv->entries + i, (vv->count - i) * sizeof(struct dot));
    vv->entries[i] = (struct dot){.actor = actor, .counter = counter};
    vv->count++;
}

struct dot vv_next(struct vv *vv, uint64_t actor) {
    struct dot d = {.actor = actor, .counter = vv_get(vv, actor) + 1};
    ASSERT(d.counter > 0); /* 2^64 events of one actor on one key: not reachable */
    vv_raise(vv, actor, d.counter);
    ASSERT(vv_covers(vv, d));
    return d;
}

void vv_merge(struct vv *vv, const struct vv *other) {
    if (vv == other) return; /* the join of a vector with itself */
    /* One pass from the back, in place: both inputs are sorted. */
    uint32_t extra = 0;
    for (uint32_t i = 0, j = 0; j < other->count; j++) {
        while (i < vv->count && vv->entries[i].actor < other->entries[j].actor) i++;
        if (i == vv->count || vv->entries[i].actor != other->entries[j].actor) extra++;
    }
    uint32_t total = vv->count + extra;
    vv_reserve(vv, total);
    int64_t i = (int64_t)vv->count - 1, j = (int64_t)other->count - 1;
    for (int64_t k = (int64_t)total - 1; k >= 0; k--) {
        const struct dot *o = j >= 0 ? &other->entries[j] : NULL;
        struct dot *m = i >= 0 ? &vv->entries[i] : NULL;
        if (o != NULL && (m == NULL || o->actor > m->actor)) {
            vv->entries[k] = *o;
            j--;
        } else if (o != NULL && o->actor == m->actor) {
            struct dot d = {m->actor, m->counter > o->counter ? m->counter : o->counter};
            vv->entries[k] = d;
            i--;
            j--;
        } else {
            vv->entries[k] = *m;
            i--;
        }
    }
    vv->count = total;
}

enum vv_order vv_compare(const struct vv *a, const struct vv *b) {
    bool a_more = false, b_more = false;
    uint32_t i = 0, j = 0;
    while (i < a->count || j < b->count) {
        if (j == b->count || (i < a->count && a->entries[i].actor < b->entries[j].actor)) {
            a_more = true;
            i++;
        } else if (i == a->count || b->entries[j].actor < a->entries[i].actor) {
            b_more = true;
            j++;
        } else {
            a_more |= a->entries[i].counter > b->entries[j].counter;
            b_more |= b->entries[j].counter > a->entries[i].counter;
            i++;
            j++;
        }
    }
    if (a_more && b_more) return VV_CONCURRENT;
    if (a_more) return VV_AFTER;
    return b_more ? VV_BEFORE : VV_EQUAL;
}

bool vv_descends(const struct vv *a, const struct vv *b) {
    enum vv_order o = vv_compare(a, b);
    return o == VV_EQUAL || o == VV_AFTER;
}

bool vv_equal(const struct vv *a, const struct vv *b) {
    return vv_compare(a, b) == VV_EQUAL;
}

void vv_encode(const struct vv *vv, struct buf *out) {
    crdt_put_varint(out, vv->count);
    for (uint32_t i = 0; i < vv->count; i++) {
        if (i > 0) ASSERT(vv->entries[i - 1].actor < vv->entries[i].actor);
        ASSERT(vv->entries[i].counter > 0);
        crdt_put_varint(out, vv->entries[i].actor);
        crdt_put_varint(out, vv->entries[i].counter);
    }
}

void vv_decode(struct crdt_reader *r, struct vv *out) {
    vv_clear(out);
    uint32_t count = (uint32_t)crdt_get_count(r, VV_ACTORS_MAX);
    vv_reserve(out, count);
    for (uint32_t i = 0; i < count && r->err == 0; i++) {
        struct dot d;
        d.actor = crdt_get_varint(r); /* two statements: in order */
        d.counter = crdt_get_varint(r);
        bool sorted = i == 0 || out->entries[i - 1].actor < d.actor;
        if (!sorted || d.counter == 0) crdt_reader_fail(r);
        out->entries[i] = d;
        out->count = i + 1;
    }
    if (r->err != 0) vv_clear(out);
}
