/* The ORSWOT of orset.h: sorted arrays, merged in one pass. */
#include "crdt/orset.h"

#include <stdlib.h>
#include <string.h>

#include "base/assert.h"

void orset_init(struct orset *s) {
    memset(s, 0, sizeof(*s));
    vv_init(&s->clock);
}

static void orset_elem_free(struct orset_elem *e) {
    crdt_bytes_free(&e->value);
    free(e->dots);
    e->dots = NULL;
    e->dot_count = 0;
}

void orset_clear(struct orset *s) {
    for (uint32_t i = 0; i < s->count; i++) orset_elem_free(&s->elems[i]);
    s->count = 0;
}

void orset_deinit(struct orset *s) {
    orset_clear(s);
    free(s->elems);
    vv_deinit(&s->clock);
    memset(s, 0, sizeof(*s));
}

static void orset_reserve(struct orset *s, uint32_t count) {
    if (count <= s->cap) return;
    uint32_t cap = s->cap < 4 ? 4 : s->cap * 2;
    while (cap < count) cap *= 2;
    s->elems = base_realloc(s->elems, (unsigned long)cap * sizeof(*s->elems));
    s->cap = cap;
}

/* The position of value, or where it would go; *found says which. */
static uint32_t orset_find(const struct orset *s, const uint8_t *value, size_t bytes, bool *found) {
    uint32_t lo = 0, hi = s->count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const struct crdt_bytes *m = &s->elems[mid].value;
        int c = crdt_bytes_compare(m->data, m->bytes, value, bytes);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static void orset_set_dots(struct orset_elem *e, const struct dot *dots, uint32_t count) {
    ASSERT(count > 0 && count <= VV_ACTORS_MAX);
    e->dots = base_realloc(e->dots, (unsigned long)count * sizeof(struct dot));
    memcpy(e->dots, dots, count * sizeof(struct dot));
    e->dot_count = count;
}

bool orset_add(struct orset *s, uint64_t actor, const uint8_t *value, size_t bytes) {
    bool found;
    uint32_t i = orset_find(s, value, bytes, &found);
    struct dot d = vv_next(&s->clock, actor);
    if (!found) {
        orset_reserve(s, s->count + 1);
        memmove(s->elems + i + 1, s->elems + i, (s->count - i) * sizeof(*s->elems));
        memset(&s->elems[i], 0, sizeof(s->elems[i]));
        crdt_bytes_set(&s->elems[i].value, value, bytes);
        s->count++;
    }
    /* The element's older dots are all in the clock: the new one alone stands for it. */
    orset_set_dots(&s->elems[i], &d, 1);
    ASSERT(orset_contains(s, value, bytes));
    return !found;
}

bool orset_remove(struct orset *s, const uint8_t *value, size_t bytes) {
    bool found;
    uint32_t i = orset_find(s, value, bytes, &found);
    if (!found) return false;
    orset_elem_free(&s->elems[i]);
    memmove(s->elems + i, s->elems + i + 1, (s->count - i - 1) * sizeof(*s->elems));
    s->count--;
    return true;
}

bool orset_contains(const struct orset *s, const uint8_t *value, size_t bytes) {
    bool found;
    (void)orset_find(s, value, bytes, &found);
    return found;
}

/* The dots of one element after a merge (orset.h's rule), into out (room for a + b). */
static uint32_t orset_merge_dots(const struct orset_elem *a, const struct vv *a_clock,
                                 const struct orset_elem *b, const struct vv *b_clock,
                                 struct dot *out) {
    uint32_t n = 0, i = 0, j = 0;
    uint32_t a_count = a != NULL ? a->dot_count : 0, b_count = b != NULL ? b->dot_count : 0;
    while (i < a_count || j < b_count) {
        int c = i == a_count ? 1 : j == b_count ? -1 : dot_compare(a->dots[i], b->dots[j]);
        if (c == 0) {
            out[n++] = a->dots[i];
            i++;
            j++;
        } else if (c < 0) {
            if (!vv_covers(b_clock, a->dots[i])) out[n++] = a->dots[i];
            i++;
        } else {
            if (!vv_covers(a_clock, b->dots[j])) out[n++] = b->dots[j];
            j++;
        }
    }
    return n;
}

/* Appends the merged element to out (when it has dots left), taking a's value if a. */
static void orset_merge_one(struct orset *out, struct orset_elem *a, const struct vv *a_clock,
                            const struct orset_elem *b, const struct vv *b_clock,
                            struct dot *scratch) {
    uint32_t n = orset_merge_dots(a, a_clock, b, b_clock, scratch);
    if (n == 0) {
        if (a != NULL) orset_elem_free(a);
        return;
    }
    struct orset_elem *e = &out->elems[out->count++];
    memset(e, 0, sizeof(*e));
    if (a != NULL) {
        *e = *a; /* the value and dot array move */
        memset(a, 0, sizeof(*a));
    } else {
        crdt_bytes_set(&e->value, b->value.data, b->value.bytes);
    }
    orset_set_dots(e, scratch, n);
}

void orset_merge(struct orset *s, const struct orset *other) {
    ASSERT(s != other);
    struct orset merged;
    orset_init(&merged);
    orset_reserve(&merged, s->count + other->count);
    uint32_t most = 0, other_most = 0; /* room for any one element's merged dots */
    for (uint32_t k = 0; k < s->count; k++)
        if (s->elems[k].dot_count > most) most = s->elems[k].dot_count;
    for (uint32_t k = 0; k < other->count; k++)
        if (other->elems[k].dot_count > other_most) other_most = other->elems[k].dot_count;
    struct dot *scratch = base_malloc((unsigned long)(most + other_most + 1) * sizeof(struct dot));
    uint32_t i = 0, j = 0;
    while (i < s->count || j < other->count) {
        struct orset_elem *a = i < s->count ? &s->elems[i] : NULL;
        const struct orset_elem *b = j < other->count ? &other->elems[j] : NULL;
        int c = a == NULL   ? 1
                : b == NULL ? -1
                            : crdt_bytes_compare(a->value.data, a->value.bytes, b->value.data,
                                                 b->value.bytes);
        orset_merge_one(&merged, c <= 0 ? a : NULL, &s->clock, c >= 0 ? b : NULL, &other->clock,
                        scratch);
        i += c <= 0;
        j += c >= 0;
    }
    free(scratch);
    free(s->elems);
    s->elems = merged.elems;
    s->count = merged.count;
    s->cap = merged.cap;
    vv_merge(&s->clock, &other->clock);
}

void orset_encode(const struct orset *s, struct buf *out) {
    vv_encode(&s->clock, out);
    crdt_put_varint(out, s->count);
    for (uint32_t i = 0; i < s->count; i++) {
        const struct orset_elem *e = &s->elems[i];
        crdt_put_bytes(out, e->value.data, e->value.bytes);
        crdt_put_varint(out, e->dot_count);
        for (uint32_t k = 0; k < e->dot_count; k++) {
            crdt_put_varint(out, e->dots[k].actor);
            crdt_put_varint(out, e->dots[k].counter);
        }
    }
}

/* One element's dots: sorted, distinct, each seen by the clock. */
static void orset_decode_dots(struct crdt_reader *r, const struct vv *clock, struct orset_elem *e) {
    uint32_t count = (uint32_t)crdt_get_count(r, VV_ACTORS_MAX);
    if (count == 0) crdt_reader_fail(r);
    if (r->err != 0) return;
    e->dots = base_malloc((unsigned long)count * sizeof(struct dot));
    for (uint32_t k = 0; k < count && r->err == 0; k++) {
        struct dot d;
        d.actor = crdt_get_varint(r); /* two statements: in order */
        d.counter = crdt_get_varint(r);
        bool sorted = k == 0 || dot_compare(e->dots[k - 1], d) < 0;
        if (!sorted || d.counter == 0 || !vv_covers(clock, d)) crdt_reader_fail(r);
        e->dots[k] = d;
        e->dot_count = k + 1;
    }
}

void orset_decode(struct crdt_reader *r, struct orset *out) {
    orset_clear(out);
    vv_decode(r, &out->clock);
    /* Every element takes at least 3 bytes: the count cannot ask for more than that. */
    uint32_t count = (uint32_t)crdt_get_count(r, r->left / 3);
    orset_reserve(out, count);
    for (uint32_t i = 0; i < count && r->err == 0; i++) {
        struct orset_elem *e = &out->elems[i];
        memset(e, 0, sizeof(*e));
        out->count = i + 1;
        crdt_get_owned(r, &e->value);
        const struct crdt_bytes *prev = i > 0 ? &out->elems[i - 1].value : NULL;
        if (prev != NULL &&
            crdt_bytes_compare(prev->data, prev->bytes, e->value.data, e->value.bytes) >= 0)
            crdt_reader_fail(r);
        orset_decode_dots(r, &out->clock, e);
    }
    if (r->err != 0) {
        orset_clear(out);
        vv_clear(&out->clock);
    }
}
