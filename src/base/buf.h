/*
 * A growable byte buffer with a read position, used for client output, WAL batches and
 * peer frames. Invariant: read_pos <= len <= cap. Growth aborts on out of memory.
 */
#ifndef CAPKV_BASE_BUF_H
#define CAPKV_BASE_BUF_H

#include <stddef.h>
#include <stdint.h>

struct buf {
    uint8_t *data;
    size_t len;      /* bytes written */
    size_t cap;      /* bytes allocated */
    size_t read_pos; /* bytes consumed from the front */
};

void buf_init(struct buf *b);
void buf_deinit(struct buf *b);
void buf_reserve(struct buf *b, size_t extra_bytes);
void buf_append(struct buf *b, const void *data, size_t bytes);
void buf_append_str(struct buf *b, const char *s);
void buf_append_byte(struct buf *b, uint8_t byte);
void buf_appendf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Bytes not yet consumed. */
static inline size_t buf_pending(const struct buf *b) {
    return b->len - b->read_pos;
}
static inline const uint8_t *buf_head(const struct buf *b) {
    return b->data + b->read_pos;
}
/* Marks bytes as consumed; compacts or resets when everything was read. */
void buf_consume(struct buf *b, size_t bytes);
void buf_clear(struct buf *b);
/* Little-endian fixed-width appends, for binary formats. */
void buf_append_u16le(struct buf *b, uint16_t v);
void buf_append_u32le(struct buf *b, uint32_t v);
void buf_append_u64le(struct buf *b, uint64_t v);

static inline uint16_t base_load_u16le(const uint8_t *p) {
    return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t base_load_u32le(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static inline uint64_t base_load_u64le(const uint8_t *p) {
    return (uint64_t)base_load_u32le(p) | ((uint64_t)base_load_u32le(p + 4) << 32);
}
static inline void base_store_u32le(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}
static inline void base_store_u64le(uint8_t *p, uint64_t v) {
    base_store_u32le(p, (uint32_t)v);
    base_store_u32le(p + 4, (uint32_t)(v >> 32));
}

#endif
