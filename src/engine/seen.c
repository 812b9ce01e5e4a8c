/* Sessions' AP keys (seen.h): entries, covering, a session's map. */
#include "engine/seen.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "base/assert.h"

#define SEEN_HEAD_BYTES 9 /* key_hash, count */
#define SEEN_PAIR_BYTES 16

uint64_t seen_key_hash(const uint8_t *key, size_t bytes) {
    return XXH3_64bits_withSeed(key, bytes, SEEN_KEY_SEED);
}

void seen_put(struct buf *out, const struct seen_key *k) {
    ASSERT(k->count <= SEEN_ACTORS_MAX);
    buf_append_u64le(out, k->hash);
    buf_append_byte(out, (uint8_t)k->count);
    for (uint32_t i = 0; i < k->count; i++) {
        buf_append_u64le(out, k->actor[i]);
        buf_append_u64le(out, k->counter[i]);
    }
}

int seen_next(const uint8_t *data, size_t bytes, size_t *pos, struct seen_key *k) {
    ASSERT(*pos <= bytes);
    size_t left = bytes - *pos;
    if (left == 0) return 0;
    if (left < SEEN_HEAD_BYTES) return -1;
    const uint8_t *p = data + *pos;
    uint32_t count = p[8];
    if (count > SEEN_ACTORS_MAX || left - SEEN_HEAD_BYTES < (size_t)count * SEEN_PAIR_BYTES)
        return -1;
    k->hash = base_load_u64le(p);
    k->count = count;
    p += SEEN_HEAD_BYTES;
    for (uint32_t i = 0; i < count; i++, p += SEEN_PAIR_BYTES) {
        k->actor[i] = base_load_u64le(p);
        k->counter[i] = base_load_u64le(p + 8);
        /* actors sorted and unique, no counter 0: what seen_put of a vector gives */
        if (k->counter[i] == 0 || (i > 0 && k->actor[i] <= k->actor[i - 1])) return -1;
    }
    *pos += SEEN_HEAD_BYTES + (size_t)count * SEEN_PAIR_BYTES;
    return 1;
}

bool seen_find(const uint8_t *data, size_t bytes, uint64_t hash, struct seen_key *out) {
    size_t pos = 0;
    while (seen_next(data, bytes, &pos, out) == 1)
        if (out->hash == hash) return true;
    return false;
}

void seen_map_init(struct seen_map *m) {
    memset(m, 0, sizeof(*m));
}

void seen_map_deinit(struct seen_map *m) {
    free(m->keys);
    seen_map_init(m);
}

/* into (sorted actors) joins k's: false when the join has more than SEEN_ACTORS_MAX. */
static bool seen_join(struct seen_key *into, const struct seen_key *k) {
    struct seen_key out = {.hash = into->hash};
    uint32_t a = 0, b = 0;
    while (a < into->count || b < k->count) {
        if (out.count == SEEN_ACTORS_MAX) return false;
        bool take_a = b == k->count || (a < into->count && into->actor[a] <= k->actor[b]);
        bool take_b = a == into->count || (b < k->count && k->actor[b] <= into->actor[a]);
        uint64_t ca = take_a ? into->counter[a] : 0, cb = take_b ? k->counter[b] : 0;
        out.actor[out.count] = take_a ? into->actor[a] : k->actor[b];
        out.counter[out.count++] = ca > cb ? ca : cb;
        a += take_a;
        b += take_b;
    }
    *into = out;
    return true;
}

bool seen_map_add(struct seen_map *m, const struct seen_key *k) {
    if (k->count == 0) {
        m->full = true;
        return false;
    }
    uint32_t lo = 0, hi = m->count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (m->keys[mid].hash < k->hash)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < m->count && m->keys[lo].hash == k->hash) {
        m->full = !seen_join(&m->keys[lo], k);
        return !m->full;
    }
    if (m->full || m->count == SEEN_KEYS_MAX) { /* full: the keys it has still advance */
        m->full = true;
        return false;
    }
    if (m->count == m->cap) {
        m->cap = m->cap == 0 ? 4 : m->cap * 2;
        m->keys = base_realloc(m->keys, m->cap * sizeof(*m->keys));
    }
    memmove(m->keys + lo + 1, m->keys + lo, (m->count - lo) * sizeof(*m->keys));
    m->keys[lo] = *k;
    m->count++;
    return true;
}

int seen_map_add_list(struct seen_map *m, const uint8_t *data, size_t bytes) {
    struct seen_key k;
    size_t pos = 0;
    int rc;
    while ((rc = seen_next(data, bytes, &pos, &k)) == 1) {
    }
    if (rc < 0) return -1;
    bool all = true;
    pos = 0;
    while (seen_next(data, bytes, &pos, &k) == 1) all &= seen_map_add(m, &k);
    return all ? 1 : 0;
}

void seen_map_encode(const struct seen_map *m, struct buf *out) {
    for (uint32_t i = 0; i < m->count; i++) seen_put(out, &m->keys[i]);
}
