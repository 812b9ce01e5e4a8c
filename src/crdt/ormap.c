/* The hash of ormap.h: a sorted array of fields, merged in one pass. */
#include "crdt/ormap.h"

#include <stdlib.h>
#include <string.h>

#include "base/assert.h"

void ormap_init(struct ormap *m) {
    memset(m, 0, sizeof(*m));
}

static void ormap_field_free(struct ormap_field *f) {
    crdt_bytes_free(&f->name);
    strval_deinit(&f->value);
}

static void ormap_clear_all(struct ormap *m) {
    for (uint32_t i = 0; i < m->count; i++) ormap_field_free(&m->fields[i]);
    m->count = 0;
}

void ormap_deinit(struct ormap *m) {
    ormap_clear_all(m);
    free(m->fields);
    ormap_init(m);
}

static void ormap_reserve(struct ormap *m, uint32_t count) {
    if (count <= m->cap) return;
    uint32_t cap = m->cap < 4 ? 4 : m->cap * 2;
    while (cap < count) cap *= 2;
    m->fields = base_realloc(m->fields, (unsigned long)cap * sizeof(*m->fields));
    m->cap = cap;
}

static uint32_t ormap_search(const struct ormap *m, const uint8_t *name, size_t bytes,
                             bool *found) {
    uint32_t lo = 0, hi = m->count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        const struct crdt_bytes *f = &m->fields[mid].name;
        int c = crdt_bytes_compare(f->data, f->bytes, name, bytes);
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

const struct strval *ormap_find(const struct ormap *m, const uint8_t *name, size_t bytes) {
    bool found;
    uint32_t i = ormap_search(m, name, bytes, &found);
    return found ? &m->fields[i].value : NULL;
}

struct strval *ormap_field(struct ormap *m, const uint8_t *name, size_t bytes) {
    bool found;
    uint32_t i = ormap_search(m, name, bytes, &found);
    if (found) return &m->fields[i].value;
    if (m->count == ORMAP_FIELDS_MAX) return NULL;
    ormap_reserve(m, m->count + 1);
    memmove(m->fields + i + 1, m->fields + i, (m->count - i) * sizeof(*m->fields));
    struct ormap_field *f = &m->fields[i];
    memset(f, 0, sizeof(*f));
    crdt_bytes_set(&f->name, name, bytes);
    strval_init(&f->value);
    m->count++;
    return &f->value;
}

bool ormap_remove(struct ormap *m, const uint8_t *name, size_t bytes) {
    bool found;
    uint32_t i = ormap_search(m, name, bytes, &found);
    if (!found || !strval_present(&m->fields[i].value)) return false;
    strval_del(&m->fields[i].value);
    return true;
}

void ormap_clear(struct ormap *m) {
    for (uint32_t i = 0; i < m->count; i++) strval_del(&m->fields[i].value);
}

uint32_t ormap_present_count(const struct ormap *m) {
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->count; i++) n += strval_present(&m->fields[i].value);
    return n;
}

/* Appends a copy of one field of other (borrowed) to out. */
static void ormap_copy_field(struct ormap *out, const struct ormap_field *f) {
    struct ormap_field *c = &out->fields[out->count++];
    memset(c, 0, sizeof(*c));
    crdt_bytes_set(&c->name, f->name.data, f->name.bytes);
    strval_init(&c->value);
    strval_merge(&c->value, &f->value);
}

void ormap_merge(struct ormap *m, const struct ormap *other) {
    ASSERT(m != other);
    struct ormap merged;
    ormap_init(&merged);
    ormap_reserve(&merged, m->count + other->count);
    uint32_t i = 0, j = 0;
    while (i < m->count || j < other->count) {
        const struct ormap_field *b = j < other->count ? &other->fields[j] : NULL;
        struct ormap_field *a = i < m->count ? &m->fields[i] : NULL;
        int c = a == NULL ? 1
                : b == NULL
                    ? -1
                    : crdt_bytes_compare(a->name.data, a->name.bytes, b->name.data, b->name.bytes);
        if (c > 0) {
            ormap_copy_field(&merged, b);
            j++;
            continue;
        }
        if (c == 0) strval_merge(&a->value, &b->value);
        merged.fields[merged.count++] = *a; /* moves */
        i++;
        j += c == 0;
    }
    free(m->fields);
    *m = merged; /* may pass ORMAP_FIELDS_MAX: a merge cannot refuse */
}

void ormap_encode(const struct ormap *m, struct buf *out) {
    crdt_put_varint(out, m->count);
    for (uint32_t i = 0; i < m->count; i++) {
        crdt_put_bytes(out, m->fields[i].name.data, m->fields[i].name.bytes);
        strval_encode(&m->fields[i].value, out);
    }
}

void ormap_decode(struct crdt_reader *r, struct ormap *out) {
    ormap_clear_all(out);
    /* A field takes at least 7 bytes: name 1, base 4, rm_ts 1, counter 1. */
    uint64_t limit = r->left / 7 < ORMAP_FIELDS_MAX ? r->left / 7 : ORMAP_FIELDS_MAX;
    uint32_t count = (uint32_t)crdt_get_count(r, limit);
    ormap_reserve(out, count);
    for (uint32_t i = 0; i < count && r->err == 0; i++) {
        struct ormap_field *f = &out->fields[i];
        memset(f, 0, sizeof(*f));
        strval_init(&f->value);
        out->count = i + 1;
        crdt_get_owned(r, &f->name);
        strval_decode(r, &f->value);
        const struct crdt_bytes *prev = i > 0 ? &out->fields[i - 1].name : NULL;
        if (prev != NULL &&
            crdt_bytes_compare(prev->data, prev->bytes, f->name.data, f->name.bytes) >= 0)
            crdt_reader_fail(r);
    }
    if (r->err != 0) ormap_clear_all(out);
}
