/* The AP object of object.h: components, their join, and the canonical encoding. */
#include "ap/object.h"

#include <string.h>
#include <xxhash.h>

#include "base/assert.h"
#include "base/err.h"

#define AP_LIFE_SEED 0x6c696665ull /* names an actor in a life (ap_object_actor) */

void ap_object_init(struct ap_object *o) {
    memset(o, 0, sizeof(*o));
    o->expiry.at_ms = AP_EXPIRY_NEVER;
}

static void ap_component_init(enum ap_type t, struct ap_component *c) {
    memset(c, 0, sizeof(*c));
    switch (t) {
    case AP_TYPE_PLAIN:
        lwwreg_init(&c->u.plain);
        break;
    case AP_TYPE_SIBLINGS:
        mvreg_init(&c->u.siblings);
        break;
    case AP_TYPE_STRING:
        strval_init(&c->u.string);
        break;
    case AP_TYPE_SET:
        orset_init(&c->u.set);
        break;
    case AP_TYPE_HASH:
        ormap_init(&c->u.hash);
        break;
    default:
        UNREACHABLE();
    }
    c->used = true;
}

static void ap_component_deinit(enum ap_type t, struct ap_component *c) {
    if (!c->used) return;
    switch (t) {
    case AP_TYPE_PLAIN:
        lwwreg_deinit(&c->u.plain);
        break;
    case AP_TYPE_SIBLINGS:
        mvreg_deinit(&c->u.siblings);
        break;
    case AP_TYPE_STRING:
        strval_deinit(&c->u.string);
        break;
    case AP_TYPE_SET:
        orset_deinit(&c->u.set);
        break;
    case AP_TYPE_HASH:
        ormap_deinit(&c->u.hash);
        break;
    default:
        UNREACHABLE();
    }
    memset(c, 0, sizeof(*c));
}

void ap_object_deinit(struct ap_object *o) {
    for (int t = 0; t < AP_TYPE_COUNT; t++) ap_component_deinit((enum ap_type)t, &o->parts[t]);
    vv_deinit(&o->writes);
    vv_deinit(&o->lives);
    ap_object_init(o);
}

struct ap_component *ap_object_use(struct ap_object *o, enum ap_type t, uint64_t ts) {
    ASSERT(t < AP_TYPE_COUNT);
    struct ap_component *c = &o->parts[t];
    if (!c->used) ap_component_init(t, c);
    if (ts > c->ts) c->ts = ts;
    return c;
}

bool ap_component_present(enum ap_type t, const struct ap_component *c) {
    if (!c->used) return false;
    switch (t) {
    case AP_TYPE_PLAIN:
        return lwwreg_present(&c->u.plain);
    case AP_TYPE_SIBLINGS:
        return c->u.siblings.count > 0;
    case AP_TYPE_STRING:
        return strval_present(&c->u.string);
    case AP_TYPE_SET:
        return c->u.set.count > 0;
    case AP_TYPE_HASH:
        return ormap_present_count(&c->u.hash) > 0;
    default:
        UNREACHABLE();
    }
}

enum ap_type ap_object_type(const struct ap_object *o, uint64_t now_ms) {
    if (now_ms >= o->expiry.at_ms) return AP_TYPE_NONE;
    enum ap_type best = AP_TYPE_NONE;
    for (int t = 0; t < AP_TYPE_COUNT; t++) {
        const struct ap_component *c = &o->parts[t];
        if (!ap_component_present((enum ap_type)t, c)) continue;
        /* Newest write wins; a tie keeps the lower tag (found first). */
        if (best == AP_TYPE_NONE || c->ts > o->parts[best].ts) best = (enum ap_type)t;
    }
    return best;
}

uint64_t ap_object_newest_ts(const struct ap_object *o) {
    uint64_t ts = 0;
    for (int t = 0; t < AP_TYPE_COUNT; t++)
        if (o->parts[t].used && o->parts[t].ts > ts) ts = o->parts[t].ts;
    return ts;
}

void ap_object_delete(struct ap_object *o, uint64_t ts, uint64_t actor) {
    for (int t = 0; t < AP_TYPE_COUNT; t++) {
        struct ap_component *c = &o->parts[t];
        if (!c->used) continue;
        if (ts > c->ts) c->ts = ts;
        switch ((enum ap_type)t) {
        case AP_TYPE_PLAIN:
            (void)lwwreg_write(&c->u.plain, ts, actor, true, NULL, 0);
            break;
        case AP_TYPE_SIBLINGS:
            (void)mvreg_write(&c->u.siblings, actor, &c->u.siblings.clock, NULL, 0);
            break;
        case AP_TYPE_STRING:
            strval_del(&c->u.string);
            break;
        case AP_TYPE_SET:
            orset_clear(&c->u.set);
            break;
        case AP_TYPE_HASH:
            ormap_clear(&c->u.hash);
            break;
        default:
            UNREACHABLE();
        }
    }
}

void ap_object_set_expiry(struct ap_object *o, uint64_t at_ms) {
    o->expiry.epoch++;
    o->expiry.at_ms = at_ms;
}

static void ap_component_merge(enum ap_type t, struct ap_component *c,
                               const struct ap_component *other) {
    if (other->ts > c->ts) c->ts = other->ts;
    switch (t) {
    case AP_TYPE_PLAIN:
        (void)lwwreg_merge(&c->u.plain, &other->u.plain);
        break;
    case AP_TYPE_SIBLINGS:
        mvreg_merge(&c->u.siblings, &other->u.siblings);
        break;
    case AP_TYPE_STRING:
        strval_merge(&c->u.string, &other->u.string);
        break;
    case AP_TYPE_SET:
        orset_merge(&c->u.set, &other->u.set);
        break;
    case AP_TYPE_HASH:
        ormap_merge(&c->u.hash, &other->u.hash);
        break;
    default:
        UNREACHABLE();
    }
}

uint64_t ap_object_actor(struct ap_object *o, uint64_t actor, uint64_t life_floor,
                         uint64_t *next_life) {
    uint64_t life = vv_get(&o->lives, actor);
    if (life < life_floor) {
        life = (*next_life)++;
        ASSERT(life != 0);
        vv_raise(&o->lives, actor, life);
    }
    uint64_t pair[2] = {actor, life};
    uint64_t named = XXH3_64bits_withSeed(pair, sizeof(pair), AP_LIFE_SEED);
    return named != 0 ? named : 1;
}

bool ap_object_is_tombstone(const struct ap_object *o) {
    for (int t = 0; t < AP_TYPE_COUNT; t++)
        if (ap_component_present((enum ap_type)t, &o->parts[t])) return false;
    return true;
}

void ap_object_count_write(struct ap_object *o, uint64_t actor) {
    (void)vv_next(&o->writes, actor);
}

void ap_object_merge(struct ap_object *o, const struct ap_object *other) {
    ASSERT(o != other);
    vv_merge(&o->writes, &other->writes);
    vv_merge(&o->lives, &other->lives);
    const struct ap_expiry *e = &other->expiry;
    /* The expiry's join: the later epoch, and within one epoch the greater at. */
    if (e->epoch > o->expiry.epoch || (e->epoch == o->expiry.epoch && e->at_ms > o->expiry.at_ms))
        o->expiry = *e;
    for (int t = 0; t < AP_TYPE_COUNT; t++) {
        if (!other->parts[t].used) continue;
        struct ap_component *c = ap_object_use(o, (enum ap_type)t, 0);
        ap_component_merge((enum ap_type)t, c, &other->parts[t]);
    }
}

static void ap_component_encode(enum ap_type t, const struct ap_component *c, struct buf *out) {
    switch (t) {
    case AP_TYPE_PLAIN:
        lwwreg_encode(&c->u.plain, out);
        break;
    case AP_TYPE_SIBLINGS:
        mvreg_encode(&c->u.siblings, out);
        break;
    case AP_TYPE_STRING:
        strval_encode(&c->u.string, out);
        break;
    case AP_TYPE_SET:
        orset_encode(&c->u.set, out);
        break;
    case AP_TYPE_HASH:
        ormap_encode(&c->u.hash, out);
        break;
    default:
        UNREACHABLE();
    }
}

/* format:u8, the writes vector, the lives, expiry epoch, expiry at + 1 (0: never), mask of
 * used components:u8, then for each used one in tag order: ts, its state (docs/formats.md,
 * "AP objects"). */
void ap_object_encode(const struct ap_object *o, struct buf *out) {
    buf_append_byte(out, AP_OBJECT_FORMAT);
    vv_encode(&o->writes, out);
    vv_encode(&o->lives, out);
    crdt_put_varint(out, o->expiry.epoch);
    crdt_put_varint(out, o->expiry.at_ms == AP_EXPIRY_NEVER ? 0 : o->expiry.at_ms + 1);
    uint8_t mask = 0;
    for (int t = 0; t < AP_TYPE_COUNT; t++)
        if (o->parts[t].used) mask |= (uint8_t)(1u << t);
    buf_append_byte(out, mask);
    for (int t = 0; t < AP_TYPE_COUNT; t++) {
        if (!o->parts[t].used) continue;
        crdt_put_varint(out, o->parts[t].ts);
        ap_component_encode((enum ap_type)t, &o->parts[t], out);
    }
}

static void ap_component_decode(enum ap_type t, struct crdt_reader *r, struct ap_component *c) {
    switch (t) {
    case AP_TYPE_PLAIN:
        lwwreg_decode(r, &c->u.plain);
        break;
    case AP_TYPE_SIBLINGS:
        mvreg_decode(r, &c->u.siblings);
        break;
    case AP_TYPE_STRING:
        strval_decode(r, &c->u.string);
        break;
    case AP_TYPE_SET:
        orset_decode(r, &c->u.set);
        break;
    case AP_TYPE_HASH:
        ormap_decode(r, &c->u.hash);
        break;
    default:
        UNREACHABLE();
    }
}

/* The header: format, the vectors it has, the expiry (into out); the reader is left at the
 * component mask. */
static int ap_object_decode_head(struct crdt_reader *r, struct ap_object *out) {
    const uint8_t *format = crdt_get_bytes(r, 1);
    if (format != NULL && (*format == 0 || *format > AP_OBJECT_FORMAT)) return ERR_VERSION;
    if (format != NULL && *format >= 2) vv_decode(r, &out->writes);
    if (format != NULL && *format >= 3) vv_decode(r, &out->lives);
    out->expiry.epoch = crdt_get_varint(r);
    uint64_t at = crdt_get_varint(r);
    out->expiry.at_ms = at == 0 ? AP_EXPIRY_NEVER : at - 1;
    return r->err;
}

int ap_object_peek(const uint8_t *data, size_t bytes, struct ap_object *out) {
    ap_object_deinit(out);
    struct crdt_reader r;
    crdt_reader_init(&r, data, bytes);
    int rc = ap_object_decode_head(&r, out);
    if (rc != 0) ap_object_deinit(out);
    return rc;
}

int ap_object_decode(const uint8_t *data, size_t bytes, struct ap_object *out) {
    ap_object_deinit(out);
    struct crdt_reader r;
    crdt_reader_init(&r, data, bytes);
    int rc = ap_object_decode_head(&r, out);
    if (rc == ERR_VERSION) return rc;
    const uint8_t *mask = crdt_get_bytes(&r, 1);
    if (mask != NULL && (*mask >> AP_TYPE_COUNT) != 0) crdt_reader_fail(&r);
    for (int t = 0; t < AP_TYPE_COUNT && r.err == 0; t++) {
        if ((*mask & (1u << t)) == 0) continue;
        struct ap_component *c = ap_object_use(out, (enum ap_type)t, crdt_get_varint(&r));
        ap_component_decode((enum ap_type)t, &r, c);
    }
    if (r.err == 0 && r.left != 0) crdt_reader_fail(&r); /* trailing bytes */
    if (r.err != 0) ap_object_deinit(out);
    return r.err;
}
