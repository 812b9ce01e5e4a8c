/* Growable byte buffer. Invariant after every call: read_pos <= len <= cap. */
#include "base/buf.h"

#include <stdarg.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "base/assert.h"

#define BUF_BYTES_MIN 64

void buf_init(struct buf *b) {
    memset(b, 0, sizeof(*b));
}

void buf_deinit(struct buf *b) {
    free(b->data);
    memset(b, 0, sizeof(*b));
}

void buf_reserve(struct buf *b, size_t extra_bytes) {
    ASSERT(b->len <= b->cap);
    if (b->cap - b->len >= extra_bytes) return;
    /* Reclaim the consumed prefix before growing. */
    if (b->read_pos > 0 && b->read_pos >= b->len / 2) {
        memmove(b->data, b->data + b->read_pos, b->len - b->read_pos);
        b->len -= b->read_pos;
        b->read_pos = 0;
        if (b->cap - b->len >= extra_bytes) return;
    }
    size_t cap = b->cap ? b->cap : BUF_BYTES_MIN;
    while (cap - b->len < extra_bytes) {
        ASSERT(cap < ((size_t)1 << 62));
        cap *= 2;
    }
    b->data = base_realloc(b->data, cap);
    b->cap = cap;
}

void buf_append(struct buf *b, const void *data, size_t bytes) {
    if (bytes == 0) return;
    buf_reserve(b, bytes);
    memcpy(b->data + b->len, data, bytes);
    b->len += bytes;
}

void buf_append_str(struct buf *b, const char *s) {
    buf_append(b, s, strlen(s));
}

void buf_append_byte(struct buf *b, uint8_t byte) {
    buf_reserve(b, 1);
    b->data[b->len++] = byte;
}

void buf_appendf(struct buf *b, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    ASSERT(n >= 0);
    buf_reserve(b, (size_t)n + 1);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void buf_consume(struct buf *b, size_t bytes) {
    ASSERT(bytes <= buf_pending(b));
    b->read_pos += bytes;
    if (b->read_pos == b->len) {
        b->read_pos = 0;
        b->len = 0;
    }
}

void buf_clear(struct buf *b) {
    b->len = 0;
    b->read_pos = 0;
}

void buf_append_u16le(struct buf *b, uint16_t v) {
    uint8_t p[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    buf_append(b, p, sizeof(p));
}

void buf_append_u32le(struct buf *b, uint32_t v) {
    uint8_t p[4];
    base_store_u32le(p, v);
    buf_append(b, p, sizeof(p));
}

void buf_append_u64le(struct buf *b, uint64_t v) {
    uint8_t p[8];
    base_store_u64le(p, v);
    buf_append(b, p, sizeof(p));
}
