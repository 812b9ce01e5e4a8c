/*
 * libFuzzer target for src/proto/resp.c. Feeds the input to resp_parse one request at a
 * time in chunks whose sizes come from a hash of the input (deterministic), and checks:
 * consumed <= bytes offered, hint > bytes when incomplete, argv inside the input (or the
 * parser's scratch for inline), a failed parser stays failed with the same text, and
 * chunked feeding agrees with feeding everything at once. Then runs resp_scan_value.
 */
#include <stdint.h>
#include <string.h>

#include "base/assert.h"
#include "proto/resp.h"

struct fuzz_rng {
    uint64_t state;
};

static uint64_t fuzz_rng_next(struct fuzz_rng *rng) {
    rng->state ^= rng->state << 13;
    rng->state ^= rng->state >> 7;
    rng->state ^= rng->state << 17;
    return rng->state;
}

static void fuzz_limits(struct resp_limits *limits) {
    resp_limits_default(limits);
    limits->bulk_bytes_max = 64;
    limits->args_max = 8;
    limits->inline_bytes_max = 32;
    limits->nesting_max = 4;
}

static void fuzz_check_request(const struct resp_parser *p, const struct resp_request *req,
                               const uint8_t *data, size_t bytes) {
    if (req->argc > 0) ASSERT(req->argv != NULL);
    ASSERT(req->argc <= p->limits.args_max);
    for (uint32_t i = 0; i < req->argc; i++) {
        const uint8_t *lo = req->is_inline ? p->scratch : data;
        size_t span = req->is_inline ? p->scratch_cap : bytes;
        ASSERT(req->argv[i].data >= lo);
        ASSERT(req->argv[i].bytes <= span);
        ASSERT((size_t)(req->argv[i].data - lo) <= span - req->argv[i].bytes);
        if (!req->is_inline) ASSERT(req->argv[i].bytes <= p->limits.bulk_bytes_max);
    }
}

/* Feeds data[0..bytes) in growing chunks until the first request completes or fails. */
static int fuzz_parse_chunked(struct resp_parser *p, struct fuzz_rng *rng, const uint8_t *data,
                              size_t bytes, struct resp_request *req, size_t *consumed) {
    size_t avail = 0;
    for (;;) {
        size_t step = 1 + (size_t)(fuzz_rng_next(rng) % 8);
        avail = bytes - avail < step ? bytes : avail + step;
        size_t hint = 0;
        int rc = resp_parse(p, data, avail, req, consumed, &hint);
        if (rc > 0) {
            ASSERT(*consumed > 0);
            ASSERT(*consumed <= avail);
            fuzz_check_request(p, req, data, avail);
            return rc;
        }
        if (rc < 0) {
            ASSERT(rc == ERR_PROTOCOL || rc == ERR_LIMIT);
            ASSERT(p->error == rc);
            return rc;
        }
        ASSERT(hint > avail);
        if (avail == bytes) return 0;
    }
}

/* Everything at once must give the same outcome as the chunked feed. */
static void fuzz_compare_whole(struct resp_parser *whole, const uint8_t *data, size_t bytes, int rc,
                               const struct resp_request *req, size_t consumed) {
    struct resp_request req_whole;
    size_t consumed_whole = 0;
    int rc_whole = resp_parse(whole, data, bytes, &req_whole, &consumed_whole, NULL);
    ASSERT(rc_whole == rc);
    if (rc <= 0) return;
    ASSERT(consumed_whole == consumed);
    ASSERT(req_whole.argc == req->argc);
    ASSERT(req_whole.is_inline == req->is_inline);
    fuzz_check_request(whole, &req_whole, data, bytes);
    for (uint32_t i = 0; i < req->argc; i++) {
        ASSERT(req_whole.argv[i].bytes == req->argv[i].bytes);
        ASSERT(memcmp(req_whole.argv[i].data, req->argv[i].data, req->argv[i].bytes) == 0);
    }
}

static void fuzz_parse_all(const uint8_t *data, size_t size, uint64_t seed) {
    struct resp_limits limits;
    fuzz_limits(&limits);
    struct resp_parser p;
    struct resp_parser whole;
    resp_parser_init(&p, &limits);
    resp_parser_init(&whole, &limits);
    struct fuzz_rng rng = {.state = seed | 1};
    size_t pos = 0;
    /* Each completed request consumes at least one byte, so this ends. */
    while (pos < size) {
        struct resp_request req;
        size_t consumed = 0;
        int rc = fuzz_parse_chunked(&p, &rng, data + pos, size - pos, &req, &consumed);
        fuzz_compare_whole(&whole, data + pos, size - pos, rc, &req, consumed);
        if (rc < 0) {
            ASSERT(strcmp(p.error_msg.text, whole.error_msg.text) == 0);
            struct errmsg first = p.error_msg;
            size_t hint = 0;
            /* A failed parser stays failed, whatever it is given. */
            ASSERT(resp_parse(&p, data, size, &req, &consumed, &hint) == rc);
            ASSERT(resp_parse(&p, (const uint8_t *)"PING\r\n", 6, &req, &consumed, &hint) == rc);
            ASSERT(strcmp(first.text, p.error_msg.text) == 0);
            break;
        }
        if (rc == 0) break;
        pos += consumed;
    }
    resp_parser_deinit(&p);
    resp_parser_deinit(&whole);
}

static void fuzz_scan(const uint8_t *data, size_t size) {
    struct resp_limits limits;
    fuzz_limits(&limits);
    struct errmsg msg;
    size_t value_bytes = 0;
    int rc = resp_scan_value(&limits, data, size, &value_bytes, &msg);
    ASSERT(rc == 1 || rc == 0 || rc == ERR_PROTOCOL || rc == ERR_LIMIT);
    if (rc != 1) {
        ASSERT(value_bytes == 0);
        return;
    }
    ASSERT(value_bytes > 0);
    ASSERT(value_bytes <= size);
    size_t again = 0;
    ASSERT(resp_scan_value(&limits, data, value_bytes, &again, &msg) == 1);
    ASSERT(again == value_bytes);
    ASSERT(resp_scan_value(&limits, data, value_bytes - 1, &again, &msg) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint64_t seed = 14695981039346656037ull; /* FNV-1a of the input picks the chunk sizes */
    for (size_t i = 0; i < size; i++) seed = (seed ^ data[i]) * 1099511628211ull;
    fuzz_parse_all(data, size, seed);
    fuzz_scan(data, size);
    return 0;
}
