/*
 * The byte encoding every CRDT value of src/crdt uses (docs/formats.md, "AP values"):
 * unsigned LEB128 varints for integers and lengths, raw bytes after a length. Decoding goes
 * through a reader that checks every length against what is left and stays failed after
 * the first error (hiredis's rule): a caller checks `err` once, at the end.
 */
#ifndef CAPKV_CRDT_CODEC_H
#define CAPKV_CRDT_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"

#define CRDT_VARINT_BYTES_MAX 10

struct crdt_reader {
    const uint8_t *p; /* borrowed: the next byte */
    size_t left;      /* bytes after p */
    int err;          /* 0, or the first error (ERR_CORRUPT); sticky */
};

/* The longest value a CRDT holds (a register's bytes, a set element): Redis's
 * proto-max-bulk-len default. */
#define CRDT_VALUE_BYTES_MAX (512u * 1024 * 1024)

/* Owned bytes of a value (a register, a sibling, an element). */
struct crdt_bytes {
    uint8_t *data; /* owned (NULL when bytes == 0) */
    uint32_t bytes;
};

/* Replaces b's bytes with a copy of data (borrowed). */
void crdt_bytes_set(struct crdt_bytes *b, const uint8_t *data, size_t bytes);
void crdt_bytes_free(struct crdt_bytes *b);
/* Orders byte strings: memcmp of the common part, then the shorter first. */
int crdt_bytes_compare(const uint8_t *a, size_t a_bytes, const uint8_t *b, size_t b_bytes);
void crdt_put_bytes(struct buf *out, const uint8_t *data, size_t bytes);
/* A length-prefixed string (at most CRDT_VALUE_BYTES_MAX), copied into b. */
void crdt_get_owned(struct crdt_reader *r, struct crdt_bytes *b);

/* A reader over bytes (borrowed; they must outlive the reader). */
void crdt_reader_init(struct crdt_reader *r, const uint8_t *data, size_t bytes);
void crdt_put_varint(struct buf *out, uint64_t v);
/* The next varint, or 0 with r->err set (truncated, or longer than 64 bits). */
uint64_t crdt_get_varint(struct crdt_reader *r);
/* A varint that must be at most max (a count or a length): 0 with r->err set beyond it. */
uint64_t crdt_get_count(struct crdt_reader *r, uint64_t max);
/* The next `bytes` bytes, borrowed from the reader's input, or NULL with r->err set. */
const uint8_t *crdt_get_bytes(struct crdt_reader *r, size_t bytes);
/* Fails the reader (a decoder found a value its format forbids). */
void crdt_reader_fail(struct crdt_reader *r);

#endif
