/* Fuzzes the CRDT decoders (src/crdt) and the AP object's (src/ap/object.c): the first
 * byte picks the type. Whatever a decoder
 * accepts must re-encode to exactly the bytes it consumed (the encoding is canonical),
 * and merging it with a copy of itself must change nothing (idempotence). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ap/object.h"
#include "base/assert.h"
#include "crdt/mvreg.h"
#include "crdt/ormap.h"
#include "crdt/orset.h"
#include "crdt/pncounter.h"
#include "crdt/strval.h"

union fuzz_value {
    struct vv vv;
    struct lwwreg lww;
    struct pncounter pn;
    struct orset set;
    struct mvreg mv;
    struct strval str;
    struct ormap map;
};

static void fuzz_init(int kind, union fuzz_value *v) {
    switch (kind) {
    case 0:
        vv_init(&v->vv);
        break;
    case 1:
        lwwreg_init(&v->lww);
        break;
    case 2:
        pncounter_init(&v->pn);
        break;
    case 3:
        orset_init(&v->set);
        break;
    case 4:
        mvreg_init(&v->mv);
        break;
    case 5:
        strval_init(&v->str);
        break;
    default:
        ormap_init(&v->map);
        break;
    }
}

static void fuzz_deinit(int kind, union fuzz_value *v) {
    switch (kind) {
    case 0:
        vv_deinit(&v->vv);
        break;
    case 1:
        lwwreg_deinit(&v->lww);
        break;
    case 2:
        pncounter_deinit(&v->pn);
        break;
    case 3:
        orset_deinit(&v->set);
        break;
    case 4:
        mvreg_deinit(&v->mv);
        break;
    case 5:
        strval_deinit(&v->str);
        break;
    default:
        ormap_deinit(&v->map);
        break;
    }
}

static void fuzz_decode(int kind, struct crdt_reader *r, union fuzz_value *v) {
    switch (kind) {
    case 0:
        vv_decode(r, &v->vv);
        break;
    case 1:
        lwwreg_decode(r, &v->lww);
        break;
    case 2:
        pncounter_decode(r, &v->pn);
        break;
    case 3:
        orset_decode(r, &v->set);
        break;
    case 4:
        mvreg_decode(r, &v->mv);
        break;
    case 5:
        strval_decode(r, &v->str);
        break;
    default:
        ormap_decode(r, &v->map);
        break;
    }
}

static void fuzz_encode(int kind, const union fuzz_value *v, struct buf *out) {
    switch (kind) {
    case 0:
        vv_encode(&v->vv, out);
        break;
    case 1:
        lwwreg_encode(&v->lww, out);
        break;
    case 2:
        pncounter_encode(&v->pn, out);
        break;
    case 3:
        orset_encode(&v->set, out);
        break;
    case 4:
        mvreg_encode(&v->mv, out);
        break;
    case 5:
        strval_encode(&v->str, out);
        break;
    default:
        ormap_encode(&v->map, out);
        break;
    }
}

static void fuzz_merge(int kind, union fuzz_value *v, const union fuzz_value *o) {
    switch (kind) {
    case 0:
        vv_merge(&v->vv, &o->vv);
        break;
    case 1:
        (void)lwwreg_merge(&v->lww, &o->lww);
        break;
    case 2:
        pncounter_merge(&v->pn, &o->pn);
        break;
    case 3:
        orset_merge(&v->set, &o->set);
        break;
    case 4:
        mvreg_merge(&v->mv, &o->mv);
        break;
    case 5:
        strval_merge(&v->str, &o->str);
        break;
    default:
        ormap_merge(&v->map, &o->map);
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The AP object: what it accepts re-encodes to the same bytes (an old format's: to the
 * current one) and merges idempotently. */
static void fuzz_object(const uint8_t *data, size_t size) {
    struct ap_object o, copy;
    ap_object_init(&o);
    ap_object_init(&copy);
    if (ap_object_decode(data, size, &o) == 0) {
        struct buf a, b;
        buf_init(&a);
        buf_init(&b);
        ap_object_encode(&o, &a);
        /* Formats 1 (no writes vector, no lives) and 2 (no lives) are read and written as
         * the current one, which adds each missing vector empty (a byte each); format 1's
         * rest follows them unchanged. */
        size_t added = (size_t)(AP_OBJECT_FORMAT - data[0]);
        ASSERT(a.len == size + added);
        if (data[0] == 1) ASSERT(memcmp(a.data + 3, data + 1, size - 1) == 0);
        if (data[0] == AP_OBJECT_FORMAT) ASSERT(memcmp(a.data, data, size) == 0);
        ASSERT(ap_object_decode(a.data, a.len, &copy) == 0);
        ap_object_merge(&o, &copy);
        ap_object_encode(&o, &b);
        ASSERT(b.len == a.len && memcmp(a.data, b.data, a.len) == 0);
        (void)ap_object_type(&o, 0);
        buf_deinit(&a);
        buf_deinit(&b);
    }
    ap_object_deinit(&o);
    ap_object_deinit(&copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    if (data[0] % 8 == 7) {
        fuzz_object(data + 1, size - 1);
        return 0;
    }
    int kind = data[0] % 8;
    union fuzz_value v, copy;
    fuzz_init(kind, &v);
    fuzz_init(kind, &copy);
    struct crdt_reader r;
    crdt_reader_init(&r, data + 1, size - 1);
    fuzz_decode(kind, &r, &v);
    if (r.err == 0) {
        size_t used = size - 1 - r.left;
        struct buf a, b;
        buf_init(&a);
        buf_init(&b);
        fuzz_encode(kind, &v, &a);
        ASSERT(a.len == used && (used == 0 || memcmp(a.data, data + 1, used) == 0));
        crdt_reader_init(&r, a.data, a.len);
        fuzz_decode(kind, &r, &copy);
        ASSERT(r.err == 0);
        fuzz_merge(kind, &v, &copy);
        fuzz_encode(kind, &v, &b);
        ASSERT(b.len == a.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0));
        buf_deinit(&a);
        buf_deinit(&b);
    }
    fuzz_deinit(kind, &v);
    fuzz_deinit(kind, &copy);
    return 0;
}
