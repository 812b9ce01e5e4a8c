/*
 * RESP (Redis serialization protocol) parsing and encoding.
 *
 * The request parser is incremental and zero-copy: it keeps offsets, not pointers, into
 * the caller's input so the caller may grow (move) its buffer between calls, and it never
 * copies argument bytes. Every dimension of input has a hard limit; a parser that met a
 * protocol error or a limit stays failed (hiredis's rule): every later call returns the
 * same error until resp_parser_reset().
 *
 * The encoder appends replies to a struct buf in RESP2 or RESP3 form. The value scanner
 * validates one complete RESP2/RESP3 value of any type (used for replies relayed between
 * nodes and by the command-line client), with a nesting limit.
 */
#ifndef CAPKV_PROTO_RESP_H
#define CAPKV_PROTO_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"

/* Defaults, as in Redis: proto-max-bulk-len 512 MiB; 64 KiB inline requests. */
#define RESP_BULK_BYTES_MAX_DEFAULT (512ull * 1024 * 1024)
#define RESP_ARGS_MAX_DEFAULT (1024u * 1024u)
#define RESP_INLINE_BYTES_MAX_DEFAULT (64u * 1024u)
#define RESP_NESTING_MAX_DEFAULT 32u

struct resp_limits {
    uint64_t bulk_bytes_max;   /* longest bulk string argument */
    uint32_t args_max;         /* most arguments in one request */
    uint32_t inline_bytes_max; /* longest inline command line, and longest "*N\r\n" header */
    uint32_t nesting_max;      /* deepest aggregate in resp_scan_value */
};

void resp_limits_default(struct resp_limits *limits);

struct resp_arg {
    /* Multibulk: borrowed from the input passed to resp_parse. Inline: borrowed from the
     * parser's scratch (inline arguments are unescaped, so they cannot be zero-copy). */
    const uint8_t *data;
    size_t bytes;
};

struct resp_request {
    uint32_t argc;         /* 0 for an empty inline line, which callers skip */
    struct resp_arg *argv; /* borrowed from the parser, valid until its next call */
    bool is_inline;
};

struct resp_parser {
    struct resp_limits limits;
    int error;               /* 0, or the negative ERR_* it stays failed with */
    struct errmsg error_msg; /* Redis-style text, e.g. "Protocol error: invalid bulk length" */
    /* Progress through the current request, as offsets from its first byte. */
    size_t scanned_bytes;
    uint32_t argc_expected;
    uint32_t argc_parsed;
    uint64_t bulk_expected; /* length of the bulk being read, or UINT64_MAX before its header */
    size_t *arg_offsets;    /* [argc_parsed] offsets of argument data */
    size_t *arg_lengths;
    uint32_t arg_cap;
    struct resp_arg *argv;
    uint32_t argv_cap;
    uint8_t *scratch; /* unescaped inline arguments; argv points here for inline requests */
    size_t scratch_cap;
};

/* limits is copied. */
void resp_parser_init(struct resp_parser *p, const struct resp_limits *limits);
void resp_parser_deinit(struct resp_parser *p);
void resp_parser_reset(struct resp_parser *p);

/*
 * Parses the next request from data[0..bytes), which must start at the first byte of the
 * request (the same start on every call until a request completes; more bytes may have
 * been appended; the bytes already passed must not change). Returns:
 *   > 0  a complete request was parsed from the first N bytes; req filled. req->argv is
 *        borrowed from the parser; multibulk argv[i].data point into data, inline ones
 *        into the parser's scratch. All are valid until the next resp_parse, reset or
 *        deinit (and, for multibulk, while data stays where it is). The parser has reset
 *        itself: the next call passes the first byte after the N consumed;
 *   0    more bytes are needed (progress is remembered); *hint_bytes (if non-NULL) is the
 *        total size the request is known to need so far, so the caller can reserve it:
 *        the end of the current bulk plus its CRLF inside a bulk, else bytes + 1;
 *   < 0  ERR_PROTOCOL or ERR_LIMIT; p->error_msg says why, the parser stays failed.
 * *N with N <= 0 is an empty request (argc 0), as in Redis; so is an empty inline line.
 * data and bytes are borrowed. Returned byte counts fit in an int only up to INT_MAX: use
 * *consumed_bytes for the exact value.
 */
int resp_parse(struct resp_parser *p, const uint8_t *data, size_t bytes, struct resp_request *req,
               size_t *consumed_bytes, size_t *hint_bytes);

/*
 * Scans one complete RESP2/RESP3 value at data[0..bytes). Returns 1 with *value_bytes set
 * when complete, 0 when more bytes are needed, or ERR_PROTOCOL / ERR_LIMIT.
 */
int resp_scan_value(const struct resp_limits *limits, const uint8_t *data, size_t bytes,
                    size_t *value_bytes, struct errmsg *msg);

/* Encoder. `proto` is 2 or 3. Each appends one element to out. */
void resp_put_simple(struct buf *out, const char *text); /* +text */
void resp_put_error(struct buf *out, const char *text);  /* -text */
void resp_put_errorf(struct buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void resp_put_int(struct buf *out, int64_t v);                       /* :v */
void resp_put_bulk(struct buf *out, const void *data, size_t bytes); /* $n */
void resp_put_bulk_str(struct buf *out, const char *s);
void resp_put_bulk_i64(struct buf *out, int64_t v);          /* integer as bulk */
void resp_put_null(struct buf *out, int proto);              /* $-1 or _ */
void resp_put_null_array(struct buf *out, int proto);        /* *-1 or _ */
void resp_put_array(struct buf *out, size_t count);          /* *n */
void resp_put_map(struct buf *out, int proto, size_t pairs); /* *2n or %n */
void resp_put_set(struct buf *out, int proto, size_t count); /* *n or ~n */
void resp_put_bool(struct buf *out, int proto, bool v);      /* :0/:1 or #t/#f */
void resp_put_double(struct buf *out, int proto, double v);  /* bulk or ,v */
void resp_put_verbatim(struct buf *out, int proto, const char *text, size_t bytes); /* $ or =txt: */

#endif
