/* The hinted-handoff store of hints.h: a dict by (target, key) and a list by age. */
#include "ap/hints.h"

#include <stdlib.h>
#include <string.h>

#include "ap/object.h"
#include "ap/tree.h"
#include "base/assert.h"

struct ap_hints_key {
    uint32_t target;
    const uint8_t *key;
    size_t key_bytes;
};

static uint64_t ap_hints_hash_parts(uint32_t target, const uint8_t *key, size_t bytes,
                                    uint64_t seed) {
    uint64_t h = ap_ring_key_hash(key, bytes) ^ seed;
    return h ^ ((uint64_t)target * 0x9e3779b97f4a7c15ull);
}

static uint64_t ap_hints_hash(const struct dict_link *link, uint64_t seed) {
    const struct ap_hint *hint = (const struct ap_hint *)link;
    return ap_hints_hash_parts(hint->target, hint->data, hint->key_bytes, seed);
}

static bool ap_hints_match(const struct dict_link *link, const void *k) {
    const struct ap_hint *hint = (const struct ap_hint *)link;
    const struct ap_hints_key *key = k;
    return hint->target == key->target && hint->key_bytes == key->key_bytes &&
           memcmp(hint->data, key->key, key->key_bytes) == 0;
}

static uint64_t ap_hint_size(const struct ap_hint *hint) {
    return sizeof(*hint) + hint->key_bytes + hint->object_bytes;
}

void ap_hints_init(struct ap_hints *h, uint64_t bytes_max, uint64_t age_ms_max, uint64_t seed) {
    memset(h, 0, sizeof(*h));
    h->bytes_max = bytes_max;
    h->age_ms_max = age_ms_max;
    dict_init(&h->dict, ap_hints_hash, seed, &h->memory_bytes);
}

static void ap_hints_free_one(void *ctx, struct dict_link *link) {
    (void)ctx;
    free(link);
}

void ap_hints_deinit(struct ap_hints *h) {
    dict_clear(&h->dict, ap_hints_free_one, NULL);
    memset(h, 0, sizeof(*h));
}

static void ap_hints_unlist(struct ap_hints *h, struct ap_hint *hint) {
    if (hint->older != NULL)
        hint->older->newer = hint->newer;
    else
        h->oldest = hint->newer;
    if (hint->newer != NULL)
        hint->newer->older = hint->older;
    else
        h->newest = hint->older;
    hint->older = hint->newer = NULL;
}

static void ap_hints_list(struct ap_hints *h, struct ap_hint *hint) {
    hint->older = h->newest;
    hint->newer = NULL;
    if (h->newest != NULL)
        h->newest->newer = hint;
    else
        h->oldest = hint;
    h->newest = hint;
}

static struct ap_hint *ap_hint_new(uint32_t target, const uint8_t *key, size_t key_bytes,
                                   const uint8_t *object, size_t object_bytes, uint64_t now_ms) {
    struct ap_hint *hint = base_malloc(sizeof(*hint) + key_bytes + object_bytes);
    memset(hint, 0, sizeof(*hint));
    hint->target = target;
    hint->written_ms = now_ms;
    hint->key_bytes = (uint32_t)key_bytes;
    hint->object_bytes = (uint32_t)object_bytes;
    memcpy(hint->data, key, key_bytes);
    memcpy(hint->data + key_bytes, object, object_bytes);
    hint->digest = ap_tree_digest(object, object_bytes);
    return hint;
}

/* The merge of the held hint's object and the new one, encoded into out. */
static int ap_hints_merge(const struct ap_hint *held, const uint8_t *object, size_t bytes,
                          struct buf *out) {
    struct ap_object a, b;
    ap_object_init(&a);
    ap_object_init(&b);
    int rc = ap_object_decode(held->data + held->key_bytes, held->object_bytes, &a);
    if (rc == 0) rc = ap_object_decode(object, bytes, &b);
    if (rc == 0) {
        ap_object_merge(&a, &b);
        ap_object_encode(&a, out);
    }
    ap_object_deinit(&a);
    ap_object_deinit(&b);
    return rc;
}

int ap_hints_add(struct ap_hints *h, uint32_t target, const uint8_t *key, size_t key_bytes,
                 const uint8_t *object, size_t object_bytes, uint64_t now_ms) {
    struct ap_hints_key k = {target, key, key_bytes};
    uint64_t hash = ap_hints_hash_parts(target, key, key_bytes, h->dict.seed);
    struct dict_slot slot;
    bool held = dict_find_slot(&h->dict, hash, ap_hints_match, &k, &slot);
    struct buf merged;
    buf_init(&merged);
    struct ap_hint *old = held ? (struct ap_hint *)*slot.link : NULL;
    if (old != NULL) {
        int rc = ap_hints_merge(old, object, object_bytes, &merged);
        if (rc != 0) {
            buf_deinit(&merged);
            return rc;
        }
        object = merged.data;
        object_bytes = merged.len;
    }
    uint64_t size = sizeof(struct ap_hint) + key_bytes + object_bytes;
    uint64_t freed = old != NULL ? ap_hint_size(old) : 0;
    if (h->bytes - freed + size > h->bytes_max) {
        h->stats.refused_full++;
        buf_deinit(&merged);
        return ERR_LIMIT;
    }
    struct ap_hint *hint = ap_hint_new(target, key, key_bytes, object, object_bytes, now_ms);
    if (old != NULL) {
        hint->inflight = old->inflight; /* its answer will not match the new digest */
        dict_replace_slot(&slot, &hint->link);
        ap_hints_unlist(h, old);
        h->bytes -= freed;
        free(old);
        h->stats.merged++;
    } else {
        dict_add(&h->dict, hash, &hint->link);
        h->stats.stored++;
    }
    ap_hints_list(h, hint);
    h->bytes += size;
    buf_deinit(&merged);
    ASSERT(h->bytes <= h->bytes_max);
    return 0;
}

static void ap_hints_remove(struct ap_hints *h, struct ap_hint *hint) {
    struct ap_hints_key k = {hint->target, hint->data, hint->key_bytes};
    struct dict_slot slot;
    uint64_t hash = ap_hints_hash_parts(k.target, k.key, k.key_bytes, h->dict.seed);
    bool found = dict_find_slot(&h->dict, hash, ap_hints_match, &k, &slot);
    ASSERT(found && *slot.link == &hint->link);
    (void)dict_unlink_slot(&h->dict, &slot);
    ap_hints_unlist(h, hint);
    h->bytes -= ap_hint_size(hint);
    free(hint);
}

void ap_hints_expire(struct ap_hints *h, uint64_t now_ms) {
    while (h->oldest != NULL && h->oldest->written_ms + h->age_ms_max <= now_ms) {
        ap_hints_remove(h, h->oldest);
        h->stats.expired++;
    }
}

size_t ap_hints_drop_others(struct ap_hints *h, const uint32_t *targets, uint32_t count) {
    size_t dropped = 0;
    struct ap_hint *hint = h->oldest;
    while (hint != NULL) {
        struct ap_hint *next = hint->newer;
        bool kept = false;
        for (uint32_t i = 0; i < count; i++) kept |= targets[i] == hint->target;
        if (!kept && !hint->inflight) {
            ap_hints_remove(h, hint);
            dropped++;
        }
        hint = next;
    }
    return dropped;
}

struct ap_hints_scan_ctx {
    uint32_t target;
    void (*fn)(void *ctx, struct ap_hint *hint);
    void *ctx;
};

static void ap_hints_scan_one(void *ctx, struct dict_link *link) {
    const struct ap_hints_scan_ctx *s = ctx;
    struct ap_hint *hint = (struct ap_hint *)link;
    if (hint->target == s->target && !hint->inflight) s->fn(s->ctx, hint);
}

uint64_t ap_hints_scan(struct ap_hints *h, uint32_t target, uint64_t cursor,
                       void (*fn)(void *ctx, struct ap_hint *hint), void *ctx) {
    struct ap_hints_scan_ctx s = {target, fn, ctx};
    return dict_scan(&h->dict, cursor, ap_hints_scan_one, &s);
}

bool ap_hints_delivered(struct ap_hints *h, uint32_t target, const uint8_t *key, size_t key_bytes,
                        uint64_t digest) {
    struct ap_hints_key k = {target, key, key_bytes};
    uint64_t hash = ap_hints_hash_parts(target, key, key_bytes, h->dict.seed);
    struct ap_hint *hint = (struct ap_hint *)dict_find(&h->dict, hash, ap_hints_match, &k);
    if (hint == NULL) return false;
    hint->inflight = false;
    if (hint->digest != digest) return false;
    ap_hints_remove(h, hint);
    h->stats.delivered++;
    return true;
}

void ap_hints_unanswered(struct ap_hints *h, uint32_t target, const uint8_t *key,
                         size_t key_bytes) {
    struct ap_hints_key k = {target, key, key_bytes};
    uint64_t hash = ap_hints_hash_parts(target, key, key_bytes, h->dict.seed);
    struct ap_hint *hint = (struct ap_hint *)dict_find(&h->dict, hash, ap_hints_match, &k);
    if (hint != NULL) hint->inflight = false;
}
