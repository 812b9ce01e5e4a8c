/* Redis commands on one AP object (ap_cmd.h). */
#include "ap/ap_cmd.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/assert.h"
#include "base/util.h"

#define AP_PLAIN_STRING 1 /* the first byte of an lww register's bytes: the value's kind */
#define AP_PLAIN_SET 2
#define AP_PLAIN_HASH 3

/* One command being run: its inputs and where it answers. */
struct ap_run {
    const struct ap_cmd_ctx *ctx;
    struct ap_object *o;
    uint32_t argc;
    const struct resp_arg *argv;
    struct buf *out;
    struct ap_cmd_result *res;
};

typedef void ap_handler(struct ap_run *r);

struct ap_spec {
    const char *name;
    int arity; /* > 0: exactly; < 0: at least -arity (Redis's convention) */
    bool writes;
    ap_handler *fn;
};

static void ap_wrongtype(struct ap_run *r) {
    resp_put_error(r->out, "WRONGTYPE Operation against a key holding the wrong kind of value");
}

static void ap_not_integer(struct ap_run *r) {
    resp_put_error(r->out, "ERR value is not an integer or out of range");
}

static bool ap_arg_is(const struct resp_arg *a, const char *word) {
    return a->bytes == strlen(word) && strncasecmp((const char *)a->data, word, a->bytes) == 0;
}

static bool ap_arg_i64(const struct resp_arg *a, int64_t *v) {
    return util_parse_i64(a->data, a->bytes, v);
}

/* The key's type now, and before a write: an expired key's content is removed first (as
 * if its expiry had run), so a write on it starts from nothing. */
static enum ap_type ap_type_now(struct ap_run *r) {
    return ap_object_type(r->o, r->ctx->now_ms);
}

static void ap_before_write(struct ap_run *r) {
    if (r->ctx->now_ms < r->o->expiry.at_ms) return;
    ap_object_delete(r->o, r->ctx->ts, r->ctx->actor);
    ap_object_set_expiry(r->o, AP_EXPIRY_NEVER);
}

static void ap_wrote(struct ap_run *r) {
    r->res->wrote = true;
}

/* ---- lww, lww-wallclock: plain values in one LWW register ---- */

/* The register's value when the key is present: kind byte, payload. */
static const struct crdt_bytes *ap_plain_value(struct ap_run *r) {
    if (ap_type_now(r) != AP_TYPE_PLAIN) return NULL;
    const struct crdt_bytes *v = &r->o->parts[AP_TYPE_PLAIN].u.plain.value;
    ASSERT(v->bytes >= 1); /* written by ap_plain_put only */
    return v;
}

static void ap_plain_put(struct ap_run *r, const struct buf *value) {
    ap_before_write(r);
    struct ap_component *c = ap_object_use(r->o, AP_TYPE_PLAIN, r->ctx->ts);
    (void)lwwreg_write(&c->u.plain, r->ctx->ts, r->ctx->actor, false, value->data, value->len);
    ap_wrote(r);
}

/* A set's members or a hash's fields and values, borrowed from a plain value, sorted. */
struct ap_plain_list {
    struct resp_arg *items; /* members, or field, value, field, value ... */
    size_t count;           /* entries (a hash entry is two items) */
    unsigned width;         /* 1 for a set, 2 for a hash */
};

static void ap_plain_list_free(struct ap_plain_list *l) {
    free(l->items);
    memset(l, 0, sizeof(*l));
}

/* Decodes v (NULL: empty) as a list of this width; false when it is another kind. */
static bool ap_plain_list_load(const struct crdt_bytes *v, unsigned width,
                               struct ap_plain_list *l) {
    memset(l, 0, sizeof(*l));
    l->width = width;
    if (v == NULL) return true;
    if (v->data[0] != (width == 1 ? AP_PLAIN_SET : AP_PLAIN_HASH)) return false;
    struct crdt_reader rd;
    crdt_reader_init(&rd, v->data + 1, v->bytes - 1);
    size_t count = (size_t)crdt_get_count(&rd, rd.left);
    l->items = base_calloc(count * width + 1, sizeof(struct resp_arg));
    for (size_t i = 0; i < count * width && rd.err == 0; i++) {
        l->items[i].bytes = (size_t)crdt_get_count(&rd, rd.left);
        l->items[i].data = crdt_get_bytes(&rd, l->items[i].bytes);
    }
    ASSERT(rd.err == 0); /* our own encoding (ap_plain_list_store) */
    l->count = count;
    return true;
}

static int ap_plain_item_order(const void *a, const void *b) {
    const struct resp_arg *x = a, *y = b;
    return crdt_bytes_compare(x->data, x->bytes, y->data, y->bytes);
}

static size_t ap_plain_list_find(const struct ap_plain_list *l, const struct resp_arg *key) {
    for (size_t i = 0; i < l->count; i++)
        if (ap_plain_item_order(&l->items[i * l->width], key) == 0) return i;
    return SIZE_MAX;
}

/* Writes the list back (sorted by member or field) as the key's new value. */
static void ap_plain_list_store(struct ap_run *r, struct ap_plain_list *l) {
    qsort(l->items, l->count, sizeof(struct resp_arg) * l->width, ap_plain_item_order);
    struct buf v;
    buf_init(&v);
    buf_append_byte(&v, l->width == 1 ? AP_PLAIN_SET : AP_PLAIN_HASH);
    crdt_put_varint(&v, l->count);
    for (size_t i = 0; i < l->count * l->width; i++)
        crdt_put_bytes(&v, l->items[i].data, l->items[i].bytes);
    if (l->count == 0)
        ap_object_delete(r->o, r->ctx->ts, r->ctx->actor); /* empty: gone */
    else
        ap_plain_put(r, &v);
    ap_wrote(r);
    buf_deinit(&v);
}

/* Loads the key as a list for a command of this width; answers WRONGTYPE if it is not. */
static bool ap_plain_list_for(struct ap_run *r, unsigned width, struct ap_plain_list *l) {
    if (ap_plain_list_load(ap_plain_value(r), width, l)) return true;
    ap_wrongtype(r);
    return false;
}

static void ap_plain_list_grow(struct ap_plain_list *l, size_t extra) {
    l->items = base_realloc(l->items, (l->count + extra) * l->width * sizeof(struct resp_arg) +
                                          sizeof(struct resp_arg));
}

/* ---- strings ---- */

/* The siblings' reply to a GET: nil, the one value, or -CONFLICT. */
static void ap_get_siblings(struct ap_run *r) {
    if (ap_type_now(r) != AP_TYPE_SIBLINGS) {
        resp_put_null(r->out, r->ctx->proto);
        return;
    }
    const struct mvreg *m = &r->o->parts[AP_TYPE_SIBLINGS].u.siblings;
    if (m->count == 1) {
        resp_put_bulk(r->out, m->sibs[0].value.data, m->sibs[0].value.bytes);
        return;
    }
    resp_put_errorf(r->out,
                    "CONFLICT the key has %u siblings (concurrent writes): VGET key returns "
                    "them with a context, VSET key context value replaces them",
                    m->count);
}

static void ap_get(struct ap_run *r) {
    enum ap_type t = ap_type_now(r);
    switch (r->ctx->conflict) {
    case AP_CONFLICT_SIBLINGS:
        ap_get_siblings(r);
        return;
    case AP_CONFLICT_CRDT:
        if (t == AP_TYPE_NONE)
            resp_put_null(r->out, r->ctx->proto);
        else if (t != AP_TYPE_STRING)
            ap_wrongtype(r);
        else {
            struct buf v;
            buf_init(&v);
            (void)strval_get(&r->o->parts[AP_TYPE_STRING].u.string, &v);
            resp_put_bulk(r->out, v.data, v.len);
            buf_deinit(&v);
        }
        return;
    default: {
        const struct crdt_bytes *v = ap_plain_value(r);
        if (v == NULL)
            resp_put_null(r->out, r->ctx->proto);
        else if (v->data[0] != AP_PLAIN_STRING)
            ap_wrongtype(r);
        else
            resp_put_bulk(r->out, v->data + 1, v->bytes - 1);
        return;
    }
    }
}

/* SET's options: EX s, PX ms, KEEPTTL; the conditions (NX, XX, GET, IFEQ) need CP. */
static bool ap_set_options(struct ap_run *r, uint64_t *at_ms, bool *keep_ttl) {
    *at_ms = AP_EXPIRY_NEVER;
    *keep_ttl = false;
    for (uint32_t i = 3; i < r->argc; i++) {
        const struct resp_arg *a = &r->argv[i];
        int64_t n;
        bool ex = ap_arg_is(a, "EX"), px = ap_arg_is(a, "PX");
        if ((ex || px) && i + 1 < r->argc) {
            if (!ap_arg_i64(&r->argv[++i], &n) || n <= 0 || n > INT64_MAX / 1000) {
                resp_put_error(r->out, "ERR invalid expire time in 'set' command");
                return false;
            }
            *at_ms = r->ctx->now_ms + (uint64_t)n * (ex ? 1000 : 1);
        } else if (ap_arg_is(a, "KEEPTTL")) {
            *keep_ttl = true;
        } else {
            resp_put_error(r->out, "ERR this SET option is not served on AP keys (conditions "
                                   "need a CP keyspace): SET key value [EX s | PX ms | KEEPTTL]");
            return false;
        }
    }
    return true;
}

static int ap_set_value(struct ap_run *r, const struct resp_arg *v) {
    ap_before_write(r);
    struct ap_component *c;
    switch (r->ctx->conflict) {
    case AP_CONFLICT_SIBLINGS:
        c = ap_object_use(r->o, AP_TYPE_SIBLINGS, r->ctx->ts);
        if (mvreg_write(&c->u.siblings, r->ctx->actor, NULL, v->data, v->bytes) != 0) return -1;
        r->res->siblings = c->u.siblings.count;
        return 0;
    case AP_CONFLICT_CRDT:
        c = ap_object_use(r->o, AP_TYPE_STRING, r->ctx->ts);
        (void)strval_set(&c->u.string, r->ctx->ts, r->ctx->actor, v->data, v->bytes);
        return 0;
    default: {
        struct buf b;
        buf_init(&b);
        buf_append_byte(&b, AP_PLAIN_STRING);
        buf_append(&b, v->data, v->bytes);
        ap_plain_put(r, &b);
        buf_deinit(&b);
        return 0;
    }
    }
}

static void ap_siblings_full(struct ap_run *r) {
    resp_put_errorf(r->out,
                    "ERR the key has %u siblings (siblings.maximum): resolve them with VGET "
                    "and VSET before writing more",
                    (unsigned)MVREG_SIBLINGS_MAX);
}

static void ap_set(struct ap_run *r) {
    uint64_t at_ms;
    bool keep_ttl;
    if (!ap_set_options(r, &at_ms, &keep_ttl)) return;
    if (ap_set_value(r, &r->argv[2]) != 0) {
        ap_siblings_full(r);
        return;
    }
    /* Redis's SET clears a TTL unless KEEPTTL; a new epoch only when something changes. */
    if (!keep_ttl && (at_ms != AP_EXPIRY_NEVER || r->o->expiry.at_ms != AP_EXPIRY_NEVER))
        ap_object_set_expiry(r->o, at_ms);
    ap_wrote(r);
    resp_put_simple(r->out, "OK");
}

/* INCR, DECR, INCRBY, DECRBY: the delta from the command's name and argument. */
static bool ap_incr_delta(struct ap_run *r, int64_t *delta) {
    const struct resp_arg *name = &r->argv[0];
    bool by = r->argc == 3, down = (name->data[0] | 0x20) == 'd';
    int64_t n = 1;
    if (by && !ap_arg_i64(&r->argv[2], &n)) return false;
    if (down && n == INT64_MIN) return false;
    *delta = down ? -n : n;
    return true;
}

static void ap_incr_plain(struct ap_run *r, int64_t delta) {
    const struct crdt_bytes *v = ap_plain_value(r);
    int64_t now = 0;
    if (v != NULL && v->data[0] != AP_PLAIN_STRING) {
        ap_wrongtype(r);
        return;
    }
    if (v != NULL && !util_parse_i64(v->data + 1, v->bytes - 1, &now)) {
        ap_not_integer(r);
        return;
    }
    if (__builtin_add_overflow(now, delta, &now)) {
        resp_put_error(r->out, "ERR increment or decrement would overflow");
        return;
    }
    char digits[UTIL_I64_DIGITS_MAX];
    size_t n = util_format_i64(now, digits);
    struct resp_arg arg = {.data = (const uint8_t *)digits, .bytes = n};
    (void)ap_set_value(r, &arg);
    ap_wrote(r);
    resp_put_int(r->out, now);
}

static void ap_incr(struct ap_run *r) {
    int64_t delta, result;
    if (!ap_incr_delta(r, &delta)) {
        ap_not_integer(r);
        return;
    }
    if (r->ctx->conflict == AP_CONFLICT_SIBLINGS) {
        resp_put_error(r->out, "ERR a siblings keyspace holds plain strings: counters need "
                               "conflict = crdt");
        return;
    }
    if (r->ctx->conflict != AP_CONFLICT_CRDT) {
        ap_incr_plain(r, delta);
        return;
    }
    enum ap_type t = ap_type_now(r);
    if (t != AP_TYPE_NONE && t != AP_TYPE_STRING) {
        ap_wrongtype(r);
        return;
    }
    if (r->ctx->grow_only && delta < 0) {
        resp_put_error(r->out, "ERR this keyspace's counters only grow (type = gcounter): "
                               "decrements are refused");
        return;
    }
    ap_before_write(r);
    struct ap_component *c = ap_object_use(r->o, AP_TYPE_STRING, r->ctx->ts);
    int rc = strval_incr(&c->u.string, r->ctx->actor, delta, &result);
    if (rc == ERR_INVALID) {
        ap_not_integer(r);
        return;
    }
    if (rc != 0) {
        resp_put_error(r->out, "ERR increment or decrement would overflow");
        return;
    }
    ap_wrote(r);
    resp_put_int(r->out, result);
}

/* ---- sets ---- */

static const struct orset *ap_crdt_set(struct ap_run *r, bool *wrong) {
    enum ap_type t = ap_type_now(r);
    *wrong = t != AP_TYPE_NONE && t != AP_TYPE_SET;
    return t == AP_TYPE_SET ? &r->o->parts[AP_TYPE_SET].u.set : NULL;
}

static void ap_sadd_plain(struct ap_run *r, bool add) {
    struct ap_plain_list l;
    if (!ap_plain_list_for(r, 1, &l)) return;
    ap_plain_list_grow(&l, r->argc - 2);
    int64_t changed = 0;
    for (uint32_t i = 2; i < r->argc; i++) {
        size_t at = ap_plain_list_find(&l, &r->argv[i]);
        if (add && at == SIZE_MAX) l.items[l.count++] = r->argv[i];
        if (!add && at != SIZE_MAX) l.items[at] = l.items[--l.count];
        changed += add ? at == SIZE_MAX : at != SIZE_MAX;
    }
    if (changed > 0) ap_plain_list_store(r, &l);
    ap_plain_list_free(&l);
    resp_put_int(r->out, changed);
}

static void ap_sadd_or_srem(struct ap_run *r, bool add) {
    if (r->ctx->conflict == AP_CONFLICT_SIBLINGS) {
        resp_put_error(r->out, "ERR a siblings keyspace holds plain strings: sets need "
                               "conflict = crdt or lww");
        return;
    }
    if (r->ctx->conflict != AP_CONFLICT_CRDT) {
        ap_sadd_plain(r, add);
        return;
    }
    bool wrong;
    const struct orset *seen = ap_crdt_set(r, &wrong);
    if (wrong) {
        ap_wrongtype(r);
        return;
    }
    if (!add && seen == NULL) {
        resp_put_int(r->out, 0);
        return;
    }
    ap_before_write(r);
    struct orset *s = &ap_object_use(r->o, AP_TYPE_SET, r->ctx->ts)->u.set;
    int64_t changed = 0;
    for (uint32_t i = 2; i < r->argc; i++) {
        const struct resp_arg *m = &r->argv[i];
        if (add)
            changed += orset_add(s, r->ctx->actor, m->data, m->bytes);
        else
            changed += orset_remove(s, m->data, m->bytes);
    }
    ap_wrote(r); /* an add of a member already here still records the new dot */
    resp_put_int(r->out, changed);
}

static void ap_sadd(struct ap_run *r) {
    ap_sadd_or_srem(r, true);
}

static void ap_srem(struct ap_run *r) {
    ap_sadd_or_srem(r, false);
}

/* SMEMBERS, SCARD, SISMEMBER over either representation. */
static void ap_set_read(struct ap_run *r, int which) {
    struct ap_plain_list l = {0};
    const struct orset *s = NULL;
    bool wrong = false;
    if (r->ctx->conflict == AP_CONFLICT_CRDT)
        s = ap_crdt_set(r, &wrong);
    else if (!ap_plain_list_load(ap_plain_value(r), 1, &l))
        wrong = true;
    if (wrong) {
        ap_wrongtype(r);
        return;
    }
    size_t count = s != NULL ? s->count : l.count;
    if (which == 0) {
        resp_put_set(r->out, r->ctx->proto, count);
        for (size_t i = 0; i < count; i++) {
            if (s != NULL)
                resp_put_bulk(r->out, s->elems[i].value.data, s->elems[i].value.bytes);
            else
                resp_put_bulk(r->out, l.items[i].data, l.items[i].bytes);
        }
    } else if (which == 1) {
        resp_put_int(r->out, (int64_t)count);
    } else {
        const struct resp_arg *m = &r->argv[2];
        bool in = s != NULL ? orset_contains(s, m->data, m->bytes)
                            : ap_plain_list_find(&l, m) != SIZE_MAX;
        resp_put_int(r->out, in ? 1 : 0);
    }
    ap_plain_list_free(&l);
}

static void ap_smembers(struct ap_run *r) {
    ap_set_read(r, 0);
}

static void ap_scard(struct ap_run *r) {
    ap_set_read(r, 1);
}

static void ap_sismember(struct ap_run *r) {
    ap_set_read(r, 2);
}

/* ---- hashes ---- */

static bool ap_hash_supported(struct ap_run *r) {
    if (r->ctx->conflict != AP_CONFLICT_SIBLINGS) return true;
    resp_put_error(r->out, "ERR a siblings keyspace holds plain strings: hashes need "
                           "conflict = crdt or lww");
    return false;
}

static struct ormap *ap_crdt_hash(struct ap_run *r, bool *wrong) {
    enum ap_type t = ap_type_now(r);
    *wrong = t != AP_TYPE_NONE && t != AP_TYPE_HASH;
    return t == AP_TYPE_HASH ? &r->o->parts[AP_TYPE_HASH].u.hash : NULL;
}

static void ap_hset_plain(struct ap_run *r) {
    struct ap_plain_list l;
    if (!ap_plain_list_for(r, 2, &l)) return;
    ap_plain_list_grow(&l, (r->argc - 2) / 2);
    int64_t added = 0;
    for (uint32_t i = 2; i + 1 < r->argc; i += 2) {
        size_t at = ap_plain_list_find(&l, &r->argv[i]);
        if (at == SIZE_MAX) {
            at = l.count++;
            l.items[at * 2] = r->argv[i];
            added++;
        }
        l.items[at * 2 + 1] = r->argv[i + 1];
    }
    ap_plain_list_store(r, &l);
    ap_plain_list_free(&l);
    resp_put_int(r->out, added);
}

static void ap_hset(struct ap_run *r) {
    if (r->argc % 2 != 0) {
        resp_put_error(r->out, "ERR wrong number of arguments for 'hset' command");
        return;
    }
    if (!ap_hash_supported(r)) return;
    if (r->ctx->conflict != AP_CONFLICT_CRDT) {
        ap_hset_plain(r);
        return;
    }
    bool wrong;
    (void)ap_crdt_hash(r, &wrong);
    if (wrong) {
        ap_wrongtype(r);
        return;
    }
    ap_before_write(r);
    struct ormap *m = &ap_object_use(r->o, AP_TYPE_HASH, r->ctx->ts)->u.hash;
    int64_t added = 0;
    for (uint32_t i = 2; i + 1 < r->argc; i += 2) {
        struct strval *f = ormap_field(m, r->argv[i].data, r->argv[i].bytes);
        if (f == NULL) {
            resp_put_error(r->out, "ERR the hash has the most fields an AP hash may hold");
            return;
        }
        added += !strval_present(f);
        (void)strval_set(f, r->ctx->ts, r->ctx->actor, r->argv[i + 1].data, r->argv[i + 1].bytes);
    }
    ap_wrote(r);
    resp_put_int(r->out, added);
}

static void ap_hdel(struct ap_run *r) {
    if (!ap_hash_supported(r)) return;
    int64_t removed = 0;
    if (r->ctx->conflict != AP_CONFLICT_CRDT) {
        struct ap_plain_list l;
        if (!ap_plain_list_for(r, 2, &l)) return;
        for (uint32_t i = 2; i < r->argc; i++) {
            size_t at = ap_plain_list_find(&l, &r->argv[i]);
            if (at == SIZE_MAX) continue;
            l.count--;
            l.items[at * 2] = l.items[l.count * 2];
            l.items[at * 2 + 1] = l.items[l.count * 2 + 1];
            removed++;
        }
        if (removed > 0) ap_plain_list_store(r, &l);
        ap_plain_list_free(&l);
        resp_put_int(r->out, removed);
        return;
    }
    bool wrong;
    struct ormap *m = ap_crdt_hash(r, &wrong);
    if (wrong) {
        ap_wrongtype(r);
        return;
    }
    for (uint32_t i = 2; m != NULL && i < r->argc; i++)
        removed += ormap_remove(m, r->argv[i].data, r->argv[i].bytes);
    if (removed > 0) ap_wrote(r);
    resp_put_int(r->out, removed);
}

/* The value of one field as a reply (bulk or nil). */
static void ap_put_field(struct ap_run *r, const struct strval *f) {
    struct buf v;
    buf_init(&v);
    if (f != NULL && strval_get(f, &v))
        resp_put_bulk(r->out, v.data, v.len);
    else
        resp_put_null(r->out, r->ctx->proto);
    buf_deinit(&v);
}

/* HGET, HGETALL, HLEN, HEXISTS over either representation. */
static void ap_hash_read(struct ap_run *r, int which) {
    if (!ap_hash_supported(r)) return;
    struct ap_plain_list l = {0};
    const struct ormap *m = NULL;
    bool wrong = false;
    if (r->ctx->conflict == AP_CONFLICT_CRDT)
        m = ap_crdt_hash(r, &wrong);
    else if (!ap_plain_list_load(ap_plain_value(r), 2, &l))
        wrong = true;
    if (wrong) {
        ap_wrongtype(r);
        return;
    }
    if (which == 0 || which == 3) { /* HGET, HEXISTS */
        const struct resp_arg *name = &r->argv[2];
        const struct strval *f = m != NULL ? ormap_find(m, name->data, name->bytes) : NULL;
        size_t at = m == NULL ? ap_plain_list_find(&l, name) : SIZE_MAX;
        bool there = (f != NULL && strval_present(f)) || at != SIZE_MAX;
        if (which == 3)
            resp_put_int(r->out, there ? 1 : 0);
        else if (m != NULL)
            ap_put_field(r, f);
        else if (at != SIZE_MAX)
            resp_put_bulk(r->out, l.items[at * 2 + 1].data, l.items[at * 2 + 1].bytes);
        else
            resp_put_null(r->out, r->ctx->proto);
    } else {
        size_t count = m != NULL ? ormap_present_count(m) : l.count;
        if (which == 2)
            resp_put_int(r->out, (int64_t)count);
        else
            resp_put_map(r->out, r->ctx->proto, count);
        for (size_t i = 0; which == 1 && m != NULL && i < m->count; i++) {
            if (!strval_present(&m->fields[i].value)) continue;
            resp_put_bulk(r->out, m->fields[i].name.data, m->fields[i].name.bytes);
            ap_put_field(r, &m->fields[i].value);
        }
        for (size_t i = 0; which == 1 && m == NULL && i < l.count * 2; i++)
            resp_put_bulk(r->out, l.items[i].data, l.items[i].bytes);
    }
    ap_plain_list_free(&l);
}

static void ap_hget(struct ap_run *r) {
    ap_hash_read(r, 0);
}

static void ap_hgetall(struct ap_run *r) {
    ap_hash_read(r, 1);
}

static void ap_hlen(struct ap_run *r) {
    ap_hash_read(r, 2);
}

static void ap_hexists(struct ap_run *r) {
    ap_hash_read(r, 3);
}

static void ap_hincrby_plain(struct ap_run *r, int64_t delta) {
    struct ap_plain_list l;
    if (!ap_plain_list_for(r, 2, &l)) return;
    ap_plain_list_grow(&l, 1);
    size_t at = ap_plain_list_find(&l, &r->argv[2]);
    int64_t now = 0;
    if (at != SIZE_MAX && !ap_arg_i64(&l.items[at * 2 + 1], &now)) {
        resp_put_error(r->out, "ERR hash value is not an integer");
    } else if (__builtin_add_overflow(now, delta, &now)) {
        resp_put_error(r->out, "ERR increment or decrement would overflow");
    } else {
        char digits[UTIL_I64_DIGITS_MAX];
        if (at == SIZE_MAX) {
            at = l.count++;
            l.items[at * 2] = r->argv[2];
        }
        l.items[at * 2 + 1] = (struct resp_arg){(const uint8_t *)digits, 0};
        l.items[at * 2 + 1].bytes = util_format_i64(now, digits);
        ap_plain_list_store(r, &l);
        resp_put_int(r->out, now);
    }
    ap_plain_list_free(&l);
}

static void ap_hincrby(struct ap_run *r) {
    int64_t delta, result;
    if (!ap_hash_supported(r)) return;
    if (!ap_arg_i64(&r->argv[3], &delta)) {
        ap_not_integer(r);
        return;
    }
    if (r->ctx->conflict != AP_CONFLICT_CRDT) {
        ap_hincrby_plain(r, delta);
        return;
    }
    bool wrong;
    (void)ap_crdt_hash(r, &wrong);
    if (wrong) {
        ap_wrongtype(r);
        return;
    }
    ap_before_write(r);
    struct ormap *m = &ap_object_use(r->o, AP_TYPE_HASH, r->ctx->ts)->u.hash;
    struct strval *f = ormap_field(m, r->argv[2].data, r->argv[2].bytes);
    int rc = f == NULL ? ERR_LIMIT : strval_incr(f, r->ctx->actor, delta, &result);
    if (rc == ERR_INVALID)
        resp_put_error(r->out, "ERR hash value is not an integer");
    else if (rc != 0)
        resp_put_error(r->out, "ERR increment or decrement would overflow");
    else
        resp_put_int(r->out, result);
    if (rc == 0) ap_wrote(r);
}

/* ---- keys ---- */

static void ap_del(struct ap_run *r) {
    bool present = ap_type_now(r) != AP_TYPE_NONE;
    if (present) {
        ap_object_delete(r->o, r->ctx->ts, r->ctx->actor);
        ap_wrote(r);
    }
    resp_put_int(r->out, present ? 1 : 0);
}

static void ap_exists(struct ap_run *r) {
    resp_put_int(r->out, ap_type_now(r) != AP_TYPE_NONE ? 1 : 0);
}

static void ap_type(struct ap_run *r) {
    enum ap_type t = ap_type_now(r);
    const char *name = "none";
    if (t == AP_TYPE_SET)
        name = "set";
    else if (t == AP_TYPE_HASH)
        name = "hash";
    else if (t == AP_TYPE_STRING || t == AP_TYPE_SIBLINGS)
        name = "string";
    else if (t == AP_TYPE_PLAIN) {
        uint8_t kind = r->o->parts[AP_TYPE_PLAIN].u.plain.value.data[0];
        name = kind == AP_PLAIN_SET ? "set" : kind == AP_PLAIN_HASH ? "hash" : "string";
    }
    resp_put_simple(r->out, name);
}

/* EXPIRE, PEXPIRE (seconds or ms from now; <= 0 deletes, as Redis) and PERSIST. */
static void ap_expire(struct ap_run *r) {
    bool persist = r->argc == 2, ms = (r->argv[0].data[0] | 0x20) == 'p';
    int64_t n = 0;
    if (!persist &&
        (!ap_arg_i64(&r->argv[2], &n) || n > INT64_MAX / 1000 || n < -INT64_MAX / 1000)) {
        resp_put_error(r->out, "ERR invalid expire time in 'expire' command");
        return;
    }
    if (ap_type_now(r) == AP_TYPE_NONE) {
        resp_put_int(r->out, 0);
        return;
    }
    if (persist && r->o->expiry.at_ms == AP_EXPIRY_NEVER) {
        resp_put_int(r->out, 0);
        return;
    }
    int64_t ttl_ms = ms ? n : n * 1000;
    if (!persist && ttl_ms <= 0) {
        ap_object_delete(r->o, r->ctx->ts, r->ctx->actor);
    } else {
        /* The key's content is stamped too, so the expiry travels with a newer object. */
        for (int t = 0; t < AP_TYPE_COUNT; t++)
            if (r->o->parts[t].used && r->o->parts[t].ts < r->ctx->ts)
                r->o->parts[t].ts = r->ctx->ts;
        ap_object_set_expiry(r->o, persist ? AP_EXPIRY_NEVER : r->ctx->now_ms + (uint64_t)ttl_ms);
    }
    ap_wrote(r);
    resp_put_int(r->out, 1);
}

static void ap_ttl(struct ap_run *r) {
    bool ms = (r->argv[0].data[0] | 0x20) == 'p';
    if (ap_type_now(r) == AP_TYPE_NONE) {
        resp_put_int(r->out, -2);
        return;
    }
    if (r->o->expiry.at_ms == AP_EXPIRY_NEVER) {
        resp_put_int(r->out, -1);
        return;
    }
    uint64_t left = r->o->expiry.at_ms - r->ctx->now_ms;
    resp_put_int(r->out, (int64_t)(ms ? left : (left + 500) / 1000));
}

/* ---- siblings: VGET key, VSET key context value ---- */

static bool ap_siblings_only(struct ap_run *r) {
    if (r->ctx->conflict == AP_CONFLICT_SIBLINGS) return true;
    resp_put_error(r->out, "ERR VGET and VSET need a keyspace with conflict = siblings");
    return false;
}

/* A context is the version vector's encoding as lower-case hex: text, so clients that
 * decode replies as UTF-8 (redis-py's decode_responses) pass it back unharmed. */
static void ap_context_put(struct buf *out, const struct vv *clock) {
    struct buf raw;
    buf_init(&raw);
    vv_encode(clock, &raw);
    struct buf hex;
    buf_init(&hex);
    buf_reserve(&hex, 2 * raw.len + 1);
    util_hex_encode(raw.data, raw.len, (char *)hex.data);
    resp_put_bulk(out, hex.data, 2 * raw.len);
    buf_deinit(&hex);
    buf_deinit(&raw);
}

/* VSET's context back into a clock; false when it is not one VGET gave. */
static bool ap_context_get(const struct resp_arg *arg, struct vv *clock) {
    if (arg->bytes % 2 != 0) return false;
    struct buf raw;
    buf_init(&raw);
    bool ok = true;
    for (size_t i = 0; ok && i < arg->bytes; i += 2) {
        int hi = util_hex_digit(arg->data[i]), lo = util_hex_digit(arg->data[i + 1]);
        ok = hi >= 0 && lo >= 0;
        if (ok) buf_append_byte(&raw, (uint8_t)(hi << 4 | lo));
    }
    if (ok) {
        struct crdt_reader rd;
        crdt_reader_init(&rd, raw.data, raw.len);
        vv_decode(&rd, clock);
        ok = rd.err == 0 && rd.left == 0;
    }
    buf_deinit(&raw);
    return ok;
}

static void ap_vget(struct ap_run *r) {
    if (!ap_siblings_only(r)) return;
    const struct mvreg *m =
        r->o->parts[AP_TYPE_SIBLINGS].used ? &r->o->parts[AP_TYPE_SIBLINGS].u.siblings : NULL;
    bool live = ap_type_now(r) == AP_TYPE_SIBLINGS;
    struct vv empty;
    vv_init(&empty);
    resp_put_array(r->out, 2);
    ap_context_put(r->out, m != NULL ? &m->clock : &empty);
    resp_put_array(r->out, live ? m->count : 0);
    for (uint32_t i = 0; live && i < m->count; i++)
        resp_put_bulk(r->out, m->sibs[i].value.data, m->sibs[i].value.bytes);
    vv_deinit(&empty);
}

static void ap_vset(struct ap_run *r) {
    if (!ap_siblings_only(r)) return;
    struct vv context;
    vv_init(&context);
    if (!ap_context_get(&r->argv[2], &context)) {
        resp_put_error(r->out, "ERR the context is not one VGET returned (pass its first "
                               "element back as it is)");
        vv_deinit(&context);
        return;
    }
    ap_before_write(r);
    struct ap_component *c = ap_object_use(r->o, AP_TYPE_SIBLINGS, r->ctx->ts);
    const struct resp_arg *v = &r->argv[3];
    if (mvreg_write(&c->u.siblings, r->ctx->actor, &context, v->data, v->bytes) != 0) {
        ap_siblings_full(r);
    } else {
        r->res->siblings = c->u.siblings.count;
        ap_wrote(r);
        resp_put_simple(r->out, "OK");
    }
    vv_deinit(&context);
}

static const struct ap_spec ap_specs[] = {
    {"get", 2, false, ap_get},
    {"set", -3, true, ap_set},
    {"incr", 2, true, ap_incr},
    {"decr", 2, true, ap_incr},
    {"incrby", 3, true, ap_incr},
    {"decrby", 3, true, ap_incr},
    {"sadd", -3, true, ap_sadd},
    {"srem", -3, true, ap_srem},
    {"smembers", 2, false, ap_smembers},
    {"scard", 2, false, ap_scard},
    {"sismember", 3, false, ap_sismember},
    {"hset", -4, true, ap_hset},
    {"hdel", -3, true, ap_hdel},
    {"hget", 3, false, ap_hget},
    {"hgetall", 2, false, ap_hgetall},
    {"hlen", 2, false, ap_hlen},
    {"hexists", 3, false, ap_hexists},
    {"hincrby", 4, true, ap_hincrby},
    {"del", 2, true, ap_del},
    {"exists", 2, false, ap_exists},
    {"type", 2, false, ap_type},
    {"expire", 3, true, ap_expire},
    {"pexpire", 3, true, ap_expire},
    {"persist", 2, true, ap_expire},
    {"ttl", 2, false, ap_ttl},
    {"pttl", 2, false, ap_ttl},
    {"vget", 2, false, ap_vget},
    {"vset", 4, true, ap_vset},
};

static const struct ap_spec *ap_find(const uint8_t *name, size_t bytes) {
    for (size_t i = 0; i < sizeof(ap_specs) / sizeof(ap_specs[0]); i++) {
        const struct ap_spec *s = &ap_specs[i];
        if (strlen(s->name) == bytes && strncasecmp(s->name, (const char *)name, bytes) == 0)
            return s;
    }
    return NULL;
}

bool ap_cmd_known(const uint8_t *name, size_t bytes, bool *writes) {
    const struct ap_spec *s = ap_find(name, bytes);
    if (s != NULL) *writes = s->writes;
    return s != NULL;
}

void ap_cmd_run(const struct ap_cmd_ctx *ctx, struct ap_object *o, uint32_t argc,
                const struct resp_arg *argv, struct buf *out, struct ap_cmd_result *res) {
    ASSERT(argc >= 1 && ctx->ts > 0);
    memset(res, 0, sizeof(*res));
    const struct ap_spec *s = ap_find(argv[0].data, argv[0].bytes);
    if (s == NULL) {
        resp_put_errorf(out,
                        "ERR '%.*s' is not served on AP keys (see docs/engines.md); "
                        "transactions, WATCH and conditions need a CP keyspace",
                        (int)(argv[0].bytes > 32 ? 32 : argv[0].bytes), (const char *)argv[0].data);
        return;
    }
    bool arity_ok = s->arity > 0 ? argc == (uint32_t)s->arity : argc >= (uint32_t)-s->arity;
    if (!arity_ok) {
        resp_put_errorf(out, "ERR wrong number of arguments for '%s' command", s->name);
        return;
    }
    struct ap_run r = {.ctx = ctx, .o = o, .argc = argc, .argv = argv, .out = out, .res = res};
    s->fn(&r);
    if (!s->writes) ASSERT(!res->wrote);
}
