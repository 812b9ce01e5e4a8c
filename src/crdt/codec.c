/* The varint and reader helpers of codec.h. */
#include "crdt/codec.h"

#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/err.h"

void crdt_reader_init(struct crdt_reader *r, const uint8_t *data, size_t bytes) {
    ASSERT(data != NULL || bytes == 0);
    r->p = data;
    r->left = bytes;
    r->err = 0;
}

void crdt_reader_fail(struct crdt_reader *r) {
    if (r->err == 0) r->err = ERR_CORRUPT;
    r->left = 0;
}

void crdt_put_varint(struct buf *out, uint64_t v) {
    uint8_t b[CRDT_VARINT_BYTES_MAX];
    size_t n = 0;
    do {
        b[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v != 0) b[n] |= 0x80;
        n++;
    } while (v != 0);
    ASSERT(n <= CRDT_VARINT_BYTES_MAX);
    buf_append(out, b, n);
}

uint64_t crdt_get_varint(struct crdt_reader *r) {
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        if (r->err != 0 || r->left == 0) break;
        uint8_t b = *r->p++;
        r->left--;
        /* The tenth byte may carry one bit only; a zero last byte after the first is not
         * the shortest form, so two encodings of one value cannot both decode. */
        if (shift == 63 && (b & 0xfe) != 0) break;
        if (shift > 0 && b == 0) break;
        v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) return v;
    }
    crdt_reader_fail(r);
    return 0;
}

uint64_t crdt_get_count(struct crdt_reader *r, uint64_t max) {
    uint64_t v = crdt_get_varint(r);
    if (v <= max) return v;
    crdt_reader_fail(r);
    return 0;
}

const uint8_t *crdt_get_bytes(struct crdt_reader *r, size_t bytes) {
    if (r->err != 0 || bytes > r->left) {
        crdt_reader_fail(r);
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += bytes;
    r->left -= bytes;
    return p;
}

void crdt_bytes_set(struct crdt_bytes *b, const uint8_t *data, size_t bytes) {
    ASSERT(bytes <= CRDT_VALUE_BYTES_MAX);
    ASSERT(data != NULL || bytes == 0);
    uint8_t *copy = NULL;
    if (bytes > 0) {
        copy = base_malloc(bytes);
        memcpy(copy, data, bytes);
    }
    free(b->data);
    b->data = copy;
    b->bytes = (uint32_t)bytes;
}

void crdt_bytes_free(struct crdt_bytes *b) {
    free(b->data);
    b->data = NULL;
    b->bytes = 0;
}

int crdt_bytes_compare(const uint8_t *a, size_t a_bytes, const uint8_t *b, size_t b_bytes) {
    size_t n = a_bytes < b_bytes ? a_bytes : b_bytes;
    int c = n > 0 ? memcmp(a, b, n) : 0;
    if (c != 0) return c < 0 ? -1 : 1;
    if (a_bytes == b_bytes) return 0;
    return a_bytes < b_bytes ? -1 : 1;
}

void crdt_put_bytes(struct buf *out, const uint8_t *data, size_t bytes) {
    crdt_put_varint(out, bytes);
    buf_append(out, data, bytes);
}

void crdt_get_owned(struct crdt_reader *r, struct crdt_bytes *b) {
    size_t bytes = (size_t)crdt_get_count(r, CRDT_VALUE_BYTES_MAX);
    const uint8_t *p = crdt_get_bytes(r, bytes);
    crdt_bytes_set(b, r->err == 0 ? p : NULL, r->err == 0 ? bytes : 0);
}
