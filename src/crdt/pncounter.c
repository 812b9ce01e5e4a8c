/* The resettable PN-counter of pncounter.h: a sorted array of per-actor sums. */
#include "crdt/pncounter.h"

#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/err.h"
#include "crdt/vv.h"

void pncounter_init(struct pncounter *c) {
    memset(c, 0, sizeof(*c));
}

void pncounter_deinit(struct pncounter *c) {
    free(c->entries);
    pncounter_init(c);
}

static void pncounter_reserve(struct pncounter *c, uint32_t count) {
    if (count <= c->cap) return;
    uint32_t cap = c->cap < 4 ? 4 : c->cap * 2;
    while (cap < count) cap *= 2;
    c->entries = base_realloc(c->entries, (unsigned long)cap * sizeof(*c->entries));
    c->cap = cap;
}

/* The actor's entry, added (all zero) if it has none; NULL past the actor limit. */
static struct pncounter_entry *pncounter_entry(struct pncounter *c, uint64_t actor) {
    uint32_t i = 0;
    while (i < c->count && c->entries[i].actor < actor) i++;
    if (i < c->count && c->entries[i].actor == actor) return &c->entries[i];
    if (c->count == VV_ACTORS_MAX) return NULL;
    pncounter_reserve(c, c->count + 1);
    memmove(c->entries + i + 1, c->entries + i, (c->count - i) * sizeof(*c->entries));
    c->entries[i] = (struct pncounter_entry){.actor = actor};
    c->count++;
    return &c->entries[i];
}

int pncounter_add(struct pncounter *c, uint64_t actor, int64_t delta) {
    /* The magnitude of INT64_MIN does not fit an int64: take it in uint64. */
    uint64_t magnitude = delta < 0 ? (uint64_t)0 - (uint64_t)delta : (uint64_t)delta;
    struct pncounter_entry *e = pncounter_entry(c, actor);
    if (e == NULL) return ERR_LIMIT;
    uint64_t *sum = delta < 0 ? &e->n : &e->p;
    if (*sum > UINT64_MAX - magnitude) return ERR_LIMIT;
    *sum += magnitude;
    return 0;
}

void pncounter_reset(struct pncounter *c) {
    for (uint32_t i = 0; i < c->count; i++) {
        c->entries[i].p_rm = c->entries[i].p;
        c->entries[i].n_rm = c->entries[i].n;
    }
    ASSERT(!pncounter_present(c));
}

int64_t pncounter_value(const struct pncounter *c) {
    uint64_t v = 0; /* modulo 2^64: the same on every replica, whatever the order */
    for (uint32_t i = 0; i < c->count; i++) {
        const struct pncounter_entry *e = &c->entries[i];
        ASSERT(e->p_rm <= e->p && e->n_rm <= e->n);
        v += (e->p - e->p_rm) - (e->n - e->n_rm);
    }
    return (int64_t)v;
}

bool pncounter_present(const struct pncounter *c) {
    for (uint32_t i = 0; i < c->count; i++) {
        const struct pncounter_entry *e = &c->entries[i];
        if (e->p != e->p_rm || e->n != e->n_rm) return true;
    }
    return false;
}

static uint64_t pncounter_max(uint64_t a, uint64_t b) {
    return a > b ? a : b;
}

void pncounter_merge(struct pncounter *c, const struct pncounter *other) {
    ASSERT(c != other);
    for (uint32_t j = 0; j < other->count; j++) {
        const struct pncounter_entry *o = &other->entries[j];
        struct pncounter_entry *e = pncounter_entry(c, o->actor);
        if (e == NULL) continue; /* past the actor limit: decoding refuses such input */
        e->p = pncounter_max(e->p, o->p);
        e->n = pncounter_max(e->n, o->n);
        e->p_rm = pncounter_max(e->p_rm, o->p_rm);
        e->n_rm = pncounter_max(e->n_rm, o->n_rm);
        ASSERT(e->p_rm <= e->p && e->n_rm <= e->n);
    }
}

void pncounter_encode(const struct pncounter *c, struct buf *out) {
    crdt_put_varint(out, c->count);
    for (uint32_t i = 0; i < c->count; i++) {
        const struct pncounter_entry *e = &c->entries[i];
        crdt_put_varint(out, e->actor);
        crdt_put_varint(out, e->p);
        crdt_put_varint(out, e->n);
        crdt_put_varint(out, e->p_rm);
        crdt_put_varint(out, e->n_rm);
    }
}

void pncounter_decode(struct crdt_reader *r, struct pncounter *out) {
    out->count = 0;
    uint32_t count = (uint32_t)crdt_get_count(r, VV_ACTORS_MAX);
    pncounter_reserve(out, count);
    for (uint32_t i = 0; i < count && r->err == 0; i++) {
        struct pncounter_entry e = {.actor = crdt_get_varint(r)};
        e.p = crdt_get_varint(r);
        e.n = crdt_get_varint(r);
        e.p_rm = crdt_get_varint(r);
        e.n_rm = crdt_get_varint(r);
        bool sorted = i == 0 || out->entries[i - 1].actor < e.actor;
        if (!sorted || e.p_rm > e.p || e.n_rm > e.n) crdt_reader_fail(r);
        out->entries[i] = e;
        out->count = i + 1;
    }
    if (r->err != 0) out->count = 0;
}
