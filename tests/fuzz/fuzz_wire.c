/*
 * libFuzzer target for src/proto/wire.c. Feeds the input to a decoder in chunks whose
 * sizes come from a hash of the input, and to a second decoder all at once, and checks:
 * both return the same payloads and the same outcome, every payload lies inside the input
 * with a matching CRC and within the limit, a failed decoder stays failed with the same
 * text, and every returned payload re-encodes to the exact bytes it came from. Each
 * payload is also offered to wire_hello_decode.
 */
#include <stdint.h>
#include <string.h>

#include "base/assert.h"
#include "base/crc32c.h"
#include "proto/wire.h"

#define FUZZ_PAYLOAD_BYTES_MAX 256

struct fuzz_rng {
    uint64_t state;
};

static uint64_t fuzz_rng_next(struct fuzz_rng *rng) {
    rng->state ^= rng->state << 13;
    rng->state ^= rng->state >> 7;
    rng->state ^= rng->state << 17;
    return rng->state;
}

/* Decodes everything in `whole` at once into out (re-encoded frames); returns the outcome. */
static int fuzz_decode_whole(const uint8_t *data, size_t size, struct buf *out) {
    struct wire_decoder d;
    wire_decoder_init(&d, FUZZ_PAYLOAD_BYTES_MAX);
    int rc = wire_decoder_feed(&d, data, size);
    const uint8_t *p;
    size_t n;
    while (rc == 0 && (rc = wire_decoder_next(&d, &p, &n)) == 1) {
        ASSERT(n <= FUZZ_PAYLOAD_BYTES_MAX);
        wire_encode(out, p, n);
        uint32_t id;
        (void)wire_hello_decode(p, n, &id, NULL);
        rc = 0;
    }
    if (rc < 0) {
        ASSERT(rc == ERR_PROTOCOL || rc == ERR_CORRUPT || rc == ERR_LIMIT);
        struct errmsg first = d.error_msg;
        ASSERT(wire_decoder_feed(&d, data, size) == rc);
        ASSERT(wire_decoder_next(&d, &p, &n) == rc);
        ASSERT(strcmp(first.text, d.error_msg.text) == 0);
    }
    wire_decoder_deinit(&d);
    return rc;
}

static int fuzz_decode_chunked(const uint8_t *data, size_t size, uint64_t seed, struct buf *out) {
    struct wire_decoder d;
    wire_decoder_init(&d, FUZZ_PAYLOAD_BYTES_MAX);
    struct fuzz_rng rng = {.state = seed | 1};
    size_t pos = 0;
    int rc = 0;
    while (rc == 0 && pos < size) {
        size_t step = 1 + (size_t)(fuzz_rng_next(&rng) % 16);
        if (step > size - pos) step = size - pos;
        rc = wire_decoder_feed(&d, data + pos, step);
        pos += step;
        const uint8_t *p;
        size_t n;
        while (rc == 0 && (rc = wire_decoder_next(&d, &p, &n)) == 1) {
            ASSERT(p >= d.in.data);
            ASSERT(p + n <= d.in.data + d.in.len);
            ASSERT(crc32c_extend(0, p, n) == base_load_u32le(p - 4));
            wire_encode(out, p, n);
            rc = 0;
        }
    }
    wire_decoder_deinit(&d);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint64_t seed = 14695981039346656037ull; /* FNV-1a of the input picks the chunk sizes */
    for (size_t i = 0; i < size; i++) seed = (seed ^ data[i]) * 1099511628211ull;
    struct buf whole;
    struct buf chunked;
    buf_init(&whole);
    buf_init(&chunked);
    int rc_whole = fuzz_decode_whole(data, size, &whole);
    int rc_chunked = fuzz_decode_chunked(data, size, seed, &chunked);
    /* An error may surface at a different feed, but the same frames come out first. */
    ASSERT(rc_whole == rc_chunked);
    ASSERT(whole.len == chunked.len);
    ASSERT(whole.len <= size);
    if (whole.len > 0) {
        ASSERT(memcmp(whole.data, chunked.data, whole.len) == 0);
        /* Decoded frames re-encode to exactly the input's prefix. */
        ASSERT(memcmp(whole.data, data, whole.len) == 0);
    }
    buf_deinit(&whole);
    buf_deinit(&chunked);
    return 0;
}
