/*
 * RESP request parsing, value scanning and reply encoding.
 *
 * Request parser invariants: progress is kept as offsets from the request's first byte
 * (scanned_bytes is the first byte not yet validated; when bulk_expected != UINT64_MAX the
 * header of argument argc_parsed has been read and its data starts at scanned_bytes), so
 * no byte of bulk data is looked at twice and the caller may move its buffer. A failed
 * parser keeps its error until resp_parser_reset(). The parser never allocates per
 * argument: its arrays grow geometrically and are kept across requests.
 *
 * Error texts are Redis's (networking.c: processMultibulkBuffer / processInlineBuffer)
 * because clients and tests match on them.
 */
#include "proto/resp.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/util.h"

#define RESP_ARGS_CAP_MIN 8u
#define RESP_SCRATCH_BYTES_MIN 64u
#define RESP_NUMBER_LINE_BYTES_MAX 32u /* longest "-9223372036854775808" and then some */

void resp_limits_default(struct resp_limits *limits) {
    ASSERT(limits != NULL);
    limits->bulk_bytes_max = RESP_BULK_BYTES_MAX_DEFAULT;
    limits->args_max = RESP_ARGS_MAX_DEFAULT;
    limits->inline_bytes_max = RESP_INLINE_BYTES_MAX_DEFAULT;
    limits->nesting_max = RESP_NESTING_MAX_DEFAULT;
}

void resp_parser_init(struct resp_parser *p, const struct resp_limits *limits) {
    ASSERT(p != NULL);
    ASSERT(limits != NULL);
    memset(p, 0, sizeof(*p));
    p->limits = *limits;
    p->bulk_expected = UINT64_MAX;
    ASSERT(p->error == 0);
}

void resp_parser_deinit(struct resp_parser *p) {
    ASSERT(p != NULL);
    free(p->arg_offsets);
    free(p->arg_lengths);
    free(p->argv);
    free(p->scratch);
    memset(p, 0, sizeof(*p));
}

/* Clears progress and any error; keeps the arrays for the next request. */
void resp_parser_reset(struct resp_parser *p) {
    ASSERT(p != NULL);
    p->error = 0;
    p->error_msg.text[0] = '\0';
    p->scanned_bytes = 0;
    p->argc_expected = 0;
    p->argc_parsed = 0;
    p->bulk_expected = UINT64_MAX;
    ASSERT(p->argc_parsed <= p->arg_cap);
}

/* Records the error the parser stays failed with. */
static int resp_parse_fail(struct resp_parser *p, int code, const char *text) {
    ASSERT(code == ERR_PROTOCOL || code == ERR_LIMIT);
    ASSERT(p->error == 0);
    p->error = code;
    errmsg_set(&p->error_msg, code, "%s", text);
    return code;
}

/* Makes room for argument index `count - 1` in the offset arrays, doubling. */
static void resp_parse_reserve_args(struct resp_parser *p, uint32_t count) {
    if (count <= p->arg_cap) return;
    uint32_t cap = p->arg_cap ? p->arg_cap : RESP_ARGS_CAP_MIN;
    while (cap < count) {
        ASSERT(cap <= UINT32_MAX / 2);
        cap *= 2;
    }
    p->arg_offsets = base_realloc(p->arg_offsets, (unsigned long)cap * sizeof(size_t));
    p->arg_lengths = base_realloc(p->arg_lengths, (unsigned long)cap * sizeof(size_t));
    p->arg_cap = cap;
    ASSERT(p->arg_cap >= count);
}

/* Fills req from the recorded offsets into base (the input or the scratch). */
static void resp_parse_finish(struct resp_parser *p, const uint8_t *base, uint32_t argc,
                              bool is_inline, struct resp_request *req) {
    ASSERT(argc <= p->arg_cap);
    if (argc > p->argv_cap) {
        uint32_t cap = p->argv_cap ? p->argv_cap : RESP_ARGS_CAP_MIN;
        while (cap < argc) cap *= 2;
        p->argv = base_realloc(p->argv, (unsigned long)cap * sizeof(*p->argv));
        p->argv_cap = cap;
    }
    for (uint32_t i = 0; i < argc; i++) {
        p->argv[i].data = base + p->arg_offsets[i];
        p->argv[i].bytes = p->arg_lengths[i];
    }
    req->argc = argc;
    req->argv = p->argv;
    req->is_inline = is_inline;
    /* Ready for the next request, which starts after the bytes consumed. */
    p->scanned_bytes = 0;
    p->argc_expected = 0;
    p->argc_parsed = 0;
    p->bulk_expected = UINT64_MAX;
}

/*
 * Finds the '\r' ending a header line that starts at pos. Returns 1 with *cr_pos set when
 * the whole line and its "\r\n" are present, 0 when more bytes are needed, -1 when no
 * '\r' came within line_bytes_max bytes (Redis: querybuf longer than the inline limit),
 * -2 when '\r' is not followed by '\n'.
 */
static int resp_find_line(const uint8_t *data, size_t pos, size_t bytes, size_t line_bytes_max,
                          size_t *cr_pos) {
    ASSERT(pos <= bytes);
    size_t avail = bytes - pos;
    size_t window = avail < line_bytes_max + 1 ? avail : line_bytes_max + 1;
    const uint8_t *cr = memchr(data + pos, '\r', window);
    if (cr == NULL) return avail > line_bytes_max ? -1 : 0;
    size_t at = (size_t)(cr - data);
    if (at + 1 >= bytes) return 0;
    if (data[at + 1] != '\n') return -2;
    *cr_pos = at;
    ASSERT(at >= pos);
    return 1;
}

/* Reads the "*N\r\n" header. Returns 1 when read, 0 for more bytes, or an error. */
static int resp_parse_multibulk_header(struct resp_parser *p, const uint8_t *data, size_t bytes,
                                       int64_t *count) {
    ASSERT(data[0] == '*');
    size_t cr = 0;
    int found = resp_find_line(data, 0, bytes, p->limits.inline_bytes_max, &cr);
    if (found == 0) return 0;
    if (found == -1) {
        return resp_parse_fail(p, ERR_LIMIT, "Protocol error: too big mbulk count string");
    }
    if (found == -2 || !util_parse_i64(data + 1, cr - 1, count) || *count > INT32_MAX) {
        return resp_parse_fail(p, ERR_PROTOCOL, "Protocol error: invalid multibulk length");
    }
    if (*count > (int64_t)p->limits.args_max) {
        return resp_parse_fail(p, ERR_LIMIT, "Protocol error: invalid multibulk length");
    }
    p->scanned_bytes = cr + 2;
    ASSERT(p->scanned_bytes <= bytes);
    return 1;
}

/* Reads a "$N\r\n" header at p->scanned_bytes. Returns 1, 0 for more bytes, or an error. */
static int resp_parse_bulk_header(struct resp_parser *p, const uint8_t *data, size_t bytes) {
    size_t pos = p->scanned_bytes;
    ASSERT(p->bulk_expected == UINT64_MAX);
    if (pos >= bytes) return 0;
    if (data[pos] != '$') {
        char text[64];
        snprintf(text, sizeof(text), "Protocol error: expected '$', got '%c'", data[pos]);
        return resp_parse_fail(p, ERR_PROTOCOL, text);
    }
    size_t cr = 0;
    int found = resp_find_line(data, pos, bytes, p->limits.inline_bytes_max, &cr);
    if (found == 0) return 0;
    if (found == -1) {
        return resp_parse_fail(p, ERR_LIMIT, "Protocol error: too big bulk count string");
    }
    int64_t len = 0;
    if (found == -2 || !util_parse_i64(data + pos + 1, cr - pos - 1, &len) || len < 0) {
        return resp_parse_fail(p, ERR_PROTOCOL, "Protocol error: invalid bulk length");
    }
    if ((uint64_t)len > p->limits.bulk_bytes_max) {
        return resp_parse_fail(p, ERR_LIMIT, "Protocol error: invalid bulk length");
    }
    p->bulk_expected = (uint64_t)len;
    p->scanned_bytes = cr + 2;
    ASSERT(p->scanned_bytes <= bytes);
    return 1;
}

/* Saturating pos + len + 2, the end of a bulk and its CRLF. */
static size_t resp_bulk_end(size_t pos, uint64_t len) {
    if (len > SIZE_MAX - 2 - pos) return SIZE_MAX;
    return pos + (size_t)len + 2;
}

/*
 * Multibulk: "*N\r\n" then N times "$len\r\n<len bytes>\r\n". Resumes from the offsets
 * remembered by the previous call on the same request.
 */
static int resp_parse_multibulk(struct resp_parser *p, const uint8_t *data, size_t bytes,
                                struct resp_request *req, size_t *consumed, size_t *hint) {
    if (p->scanned_bytes == 0) {
        int64_t count = 0;
        int rc = resp_parse_multibulk_header(p, data, bytes, &count);
        if (rc <= 0) return rc;
        if (count <= 0) { /* Redis: *0 and *-1 are nothing at all. */
            *consumed = p->scanned_bytes;
            resp_parse_finish(p, data, 0, false, req);
            return 1;
        }
        p->argc_expected = (uint32_t)count;
    }
    while (p->argc_parsed < p->argc_expected) {
        if (p->bulk_expected == UINT64_MAX) {
            int rc = resp_parse_bulk_header(p, data, bytes);
            if (rc <= 0) return rc;
        }
        size_t pos = p->scanned_bytes;
        size_t end = resp_bulk_end(pos, p->bulk_expected);
        if (end > bytes) {
            *hint = end;
            return 0;
        }
        if (data[end - 2] != '\r' || data[end - 1] != '\n') {
            return resp_parse_fail(p, ERR_PROTOCOL,
                                   "Protocol error: expected CRLF after bulk data");
        }
        resp_parse_reserve_args(p, p->argc_parsed + 1);
        p->arg_offsets[p->argc_parsed] = pos;
        p->arg_lengths[p->argc_parsed] = (size_t)p->bulk_expected;
        p->argc_parsed++;
        p->bulk_expected = UINT64_MAX;
        p->scanned_bytes = end;
    }
    ASSERT(p->argc_parsed == p->argc_expected);
    *consumed = p->scanned_bytes;
    resp_parse_finish(p, data, p->argc_parsed, false, req);
    return 1;
}

/* isspace() in the C locale, which sdssplitargs uses. */
static bool resp_is_space(uint8_t c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

static int resp_hex_value(uint8_t c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Byte i of the line, or 0 past its end: sdssplitargs works on a C string. */
static uint8_t resp_at(const uint8_t *s, size_t n, size_t i) {
    return i < n ? s[i] : 0;
}

/* Inside "double quotes": one escape or byte at *i. Returns 1 at the closing quote, 0 to go
 * on, -1 for unbalanced quotes. */
static int resp_split_double_quoted(const uint8_t *s, size_t n, size_t *i, uint8_t *out,
                                    size_t *out_bytes) {
    uint8_t c = resp_at(s, n, *i);
    uint8_t next = resp_at(s, n, *i + 1);
    if (c == '\\' && next == 'x' && resp_hex_value(resp_at(s, n, *i + 2)) >= 0 &&
        resp_hex_value(resp_at(s, n, *i + 3)) >= 0) {
        int v = resp_hex_value(s[*i + 2]) * 16 + resp_hex_value(s[*i + 3]);
        out[(*out_bytes)++] = (uint8_t)v;
        *i += 4;
        return 0;
    }
    if (c == '\\' && next != 0) {
        static const uint8_t from[] = "nrtba";
        static const uint8_t to[] = "\n\r\t\b\a";
        const uint8_t *hit = memchr(from, next, sizeof(from) - 1);
        out[(*out_bytes)++] = hit ? to[hit - from] : next;
        *i += 2;
        return 0;
    }
    if (c == '"') {
        /* The closing quote must be followed by a space or nothing at all. */
        if (next != 0 && !resp_is_space(next)) return -1;
        *i += 1;
        return 1;
    }
    if (c == 0) return -1;
    out[(*out_bytes)++] = c;
    *i += 1;
    return 0;
}

/* Inside 'single quotes': only \' is an escape. Same returns as above. */
static int resp_split_single_quoted(const uint8_t *s, size_t n, size_t *i, uint8_t *out,
                                    size_t *out_bytes) {
    uint8_t c = resp_at(s, n, *i);
    uint8_t next = resp_at(s, n, *i + 1);
    if (c == '\\' && next == '\'') {
        out[(*out_bytes)++] = '\'';
        *i += 2;
        return 0;
    }
    if (c == '\'') {
        if (next != 0 && !resp_is_space(next)) return -1;
        *i += 1;
        return 1;
    }
    if (c == 0) return -1;
    out[(*out_bytes)++] = c;
    *i += 1;
    return 0;
}

/* One argument starting at a non-space s[*i], written to out; sdssplitargs's state
 * machine. Returns 0, or -1 for unbalanced quotes. */
static int resp_split_word(const uint8_t *s, size_t n, size_t *i, uint8_t *out, size_t *out_bytes) {
    enum { PLAIN, DOUBLE, SINGLE } state = PLAIN;
    for (;;) {
        size_t before = *i;
        int rc = 0;
        if (state == DOUBLE) {
            rc = resp_split_double_quoted(s, n, i, out, out_bytes);
        } else if (state == SINGLE) {
            rc = resp_split_single_quoted(s, n, i, out, out_bytes);
        } else {
            uint8_t c = resp_at(s, n, *i);
            if (c == 0 || c == ' ' || c == '\t' || c == '\n' || c == '\r') return 0;
            if (c == '"') state = DOUBLE;
            if (c == '\'') state = SINGLE;
            if (c != '"' && c != '\'') out[(*out_bytes)++] = c;
            *i += 1;
        }
        if (rc < 0) return -1;
        if (rc == 1) return 0; /* a closing quote ends the argument */
        ASSERT(*i > before);
    }
}

/* Splits line[0..n) into the scratch. Returns the argument count or an error. */
static int resp_split_inline(struct resp_parser *p, const uint8_t *line, size_t n, uint32_t *argc) {
    if (n > p->scratch_cap) {
        size_t cap = p->scratch_cap ? p->scratch_cap : RESP_SCRATCH_BYTES_MIN;
        while (cap < n) cap *= 2;
        p->scratch = base_realloc(p->scratch, cap);
        p->scratch_cap = cap;
    }
    size_t i = 0;
    size_t out_bytes = 0;
    *argc = 0;
    for (;;) {
        while (i < n && resp_is_space(line[i])) i++;
        if (i >= n || line[i] == 0) return 0;
        size_t start = out_bytes;
        if (resp_split_word(line, n, &i, p->scratch, &out_bytes) < 0) {
            return resp_parse_fail(p, ERR_PROTOCOL, "Protocol error: unbalanced quotes in request");
        }
        ASSERT(out_bytes <= n);
        if (*argc >= p->limits.args_max) {
            return resp_parse_fail(p, ERR_LIMIT, "Protocol error: invalid multibulk length");
        }
        resp_parse_reserve_args(p, *argc + 1);
        p->arg_offsets[*argc] = start;
        p->arg_lengths[*argc] = out_bytes - start;
        *argc += 1;
    }
}

/*
 * Inline: one line ending at '\n' (an optional '\r' before it), split like sdssplitargs.
 * scanned_bytes remembers how far we looked for '\n', so a long line fed byte by byte is
 * scanned once.
 */
static int resp_parse_inline(struct resp_parser *p, const uint8_t *data, size_t bytes,
                             struct resp_request *req, size_t *consumed, size_t *hint) {
    size_t from = p->scanned_bytes;
    ASSERT(from <= bytes);
    const uint8_t *nl = memchr(data + from, '\n', bytes - from);
    if (nl == NULL) {
        p->scanned_bytes = bytes;
        /* Over the limit unless a final '\r' is about to be followed by '\n'. */
        size_t max = p->limits.inline_bytes_max;
        if (bytes > max + 1 || (bytes == max + 1 && data[bytes - 1] != '\r')) {
            return resp_parse_fail(p, ERR_LIMIT, "Protocol error: too big inline request");
        }
        *hint = bytes + 1;
        return 0;
    }
    size_t line_end = (size_t)(nl - data);
    *consumed = line_end + 1;
    if (line_end > 0 && data[line_end - 1] == '\r') line_end--;
    if (line_end > p->limits.inline_bytes_max) {
        return resp_parse_fail(p, ERR_LIMIT, "Protocol error: too big inline request");
    }
    uint32_t argc = 0;
    int rc = resp_split_inline(p, data, line_end, &argc);
    if (rc < 0) return rc;
    resp_parse_finish(p, p->scratch, argc, true, req);
    return 1;
}

int resp_parse(struct resp_parser *p, const uint8_t *data, size_t bytes, struct resp_request *req,
               size_t *consumed_bytes, size_t *hint_bytes) {
    ASSERT(p != NULL);
    ASSERT(req != NULL);
    size_t consumed = 0;
    size_t hint = bytes + 1;
    if (consumed_bytes) *consumed_bytes = 0;
    if (hint_bytes) *hint_bytes = hint;
    if (p->error != 0) return p->error;
    ASSERT(p->scanned_bytes <= bytes);
    if (bytes == 0) return 0;
    ASSERT(data != NULL);
    int rc = data[0] == '*' ? resp_parse_multibulk(p, data, bytes, req, &consumed, &hint)
                            : resp_parse_inline(p, data, bytes, req, &consumed, &hint);
    if (rc < 0) {
        ASSERT(p->error == rc);
        return rc;
    }
    if (rc == 0) {
        ASSERT(hint > bytes);
        if (hint_bytes) *hint_bytes = hint;
        return 0;
    }
    ASSERT(consumed > 0);
    ASSERT(consumed <= bytes);
    if (consumed_bytes) *consumed_bytes = consumed;
    if (hint_bytes) *hint_bytes = 0;
    return consumed > INT32_MAX ? INT32_MAX : (int)consumed;
}

/* ---- Value scanner ---- */

struct resp_scan {
    const struct resp_limits *limits;
    const uint8_t *data;
    size_t bytes;
    struct errmsg *msg;
};

/* Finds the CRLF of the line whose content starts at pos. Returns 1 with *cr set, 0 when
 * more bytes are needed, or an error. */
static int resp_scan_line(struct resp_scan *s, size_t pos, size_t *cr) {
    int found = resp_find_line(s->data, pos, s->bytes, s->limits->inline_bytes_max, cr);
    if (found == -1) {
        return errmsg_set(s->msg, ERR_LIMIT, "RESP line longer than %u bytes at offset %zu",
                          s->limits->inline_bytes_max, pos);
    }
    if (found == -2) {
        return errmsg_set(s->msg, ERR_PROTOCOL, "RESP line without CRLF at offset %zu", pos);
    }
    return found;
}

/* Reads the integer line at pos (after the type byte). Same returns as resp_scan_line. */
static int resp_scan_number(struct resp_scan *s, size_t pos, int64_t *v, size_t *next) {
    size_t cr = 0;
    int rc = resp_scan_line(s, pos, &cr);
    if (rc <= 0) return rc;
    if (!util_parse_i64(s->data + pos, cr - pos, v)) {
        return errmsg_set(s->msg, ERR_PROTOCOL, "RESP bad number at offset %zu", pos);
    }
    *next = cr + 2;
    return 1;
}

/* Checks the content of a one-line value of the given type. */
static bool resp_scan_line_valid(uint8_t type, const uint8_t *text, size_t n) {
    int64_t v = 0;
    switch (type) {
    case ':':
        return util_parse_i64(text, n, &v);
    case '_':
        return n == 0;
    case '#':
        return n == 1 && (text[0] == 't' || text[0] == 'f');
    case ',':
        return n > 0;
    case '(': {
        size_t i = n > 0 && text[0] == '-' ? 1 : 0;
        if (i == n) return false;
        for (; i < n; i++) {
            if (text[i] < '0' || text[i] > '9') return false;
        }
        return true;
    }
    default:
        return true; /* + and - carry any text */
    }
}

/* $ ! = : a length line then data and CRLF. pos is just after the type byte. */
static int resp_scan_blob(struct resp_scan *s, uint8_t type, size_t pos, size_t *next) {
    int64_t len = 0;
    if (pos < s->bytes && s->data[pos] == '?') {
        return errmsg_set(s->msg, ERR_PROTOCOL, "RESP streamed strings are not supported");
    }
    int rc = resp_scan_number(s, pos, &len, &pos);
    if (rc <= 0) return rc;
    if (len == -1 && type == '$') {
        *next = pos;
        return 1;
    }
    if (len < 0 || (type == '=' && len < 4)) {
        return errmsg_set(s->msg, ERR_PROTOCOL, "RESP bad length %lld at offset %zu",
                          (long long)len, pos);
    }
    if ((uint64_t)len > s->limits->bulk_bytes_max) {
        return errmsg_set(s->msg, ERR_LIMIT, "RESP string of %lld bytes over the limit",
                          (long long)len);
    }
    size_t end = resp_bulk_end(pos, (uint64_t)len);
    if (end > s->bytes) return 0;
    if (s->data[end - 2] != '\r' || s->data[end - 1] != '\n') {
        return errmsg_set(s->msg, ERR_PROTOCOL, "RESP string without CRLF at offset %zu", end - 2);
    }
    if (type == '=' && s->data[pos + 3] != ':') {
        return errmsg_set(s->msg, ERR_PROTOCOL, "RESP verbatim string without format");
    }
    *next = end;
    return 1;
}

static int resp_scan_one(struct resp_scan *s, size_t pos, uint32_t depth, size_t *next);

/* Aggregates: a count line, then count * per_item values. */
static int resp_scan_aggregate(struct resp_scan *s, uint8_t type, size_t pos, uint32_t depth,
                               size_t *next) {
    if (depth >= s->limits->nesting_max) {
        return errmsg_set(s->msg, ERR_LIMIT, "RESP nesting deeper than %u at offset %zu",
                          s->limits->nesting_max, pos);
    }
    if (pos < s->bytes && s->data[pos] == '?') {
        return errmsg_set(s->msg, ERR_PROTOCOL, "RESP streamed aggregates are not supported");
    }
    int64_t count = 0;
    int rc = resp_scan_number(s, pos, &count, &pos);
    if (rc <= 0) return rc;
    if (count == -1 && type == '*') {
        *next = pos;
        return 1;
    }
    if (count < 0 || count > INT64_MAX / 2) {
        return errmsg_set(s->msg, ERR_PROTOCOL, "RESP bad count at offset %zu", pos);
    }
    uint64_t items = (uint64_t)count * (type == '%' || type == '|' ? 2u : 1u);
    for (uint64_t i = 0; i < items; i++) {
        /* Every value takes at least 3 bytes, so a huge count ends at the input's end. */
        rc = resp_scan_one(s, pos, depth + 1, &pos);
        if (rc <= 0) return rc;
    }
    *next = pos;
    return 1;
}

/* Scans the value at pos at the given nesting depth. Returns 1 with *next set, 0, or an
 * error. An attribute (|) is followed by the value it describes: loop, do not recurse. */
static int resp_scan_one(struct resp_scan *s, size_t pos, uint32_t depth, size_t *next) {
    for (;;) {
        if (pos >= s->bytes) return 0;
        uint8_t type = s->data[pos];
        size_t cr = 0;
        int rc;
        switch (type) {
        case '+':
        case '-':
        case ':':
        case '_':
        case ',':
        case '#':
        case '(':
            rc = resp_scan_line(s, pos + 1, &cr);
            if (rc <= 0) return rc;
            if (!resp_scan_line_valid(type, s->data + pos + 1, cr - pos - 1)) {
                return errmsg_set(s->msg, ERR_PROTOCOL, "RESP bad '%c' value at offset %zu", type,
                                  pos);
            }
            *next = cr + 2;
            return 1;
        case '$':
        case '!':
        case '=':
            return resp_scan_blob(s, type, pos + 1, next);
        case '*':
        case '~':
        case '>':
        case '%':
            return resp_scan_aggregate(s, type, pos + 1, depth, next);
        case '|':
            rc = resp_scan_aggregate(s, type, pos + 1, depth, &pos);
            if (rc <= 0) return rc;
            continue;
        default:
            return errmsg_set(s->msg, ERR_PROTOCOL, "RESP unknown type byte 0x%02x at offset %zu",
                              type, pos);
        }
    }
}

int resp_scan_value(const struct resp_limits *limits, const uint8_t *data, size_t bytes,
                    size_t *value_bytes, struct errmsg *msg) {
    ASSERT(limits != NULL);
    ASSERT(value_bytes != NULL);
    struct resp_scan s = {.limits = limits, .data = data, .bytes = bytes, .msg = msg};
    size_t end = 0;
    *value_bytes = 0;
    if (bytes == 0) return 0;
    ASSERT(data != NULL);
    int rc = resp_scan_one(&s, 0, 0, &end);
    if (rc <= 0) return rc;
    ASSERT(end > 0);
    ASSERT(end <= bytes);
    *value_bytes = end;
    return 1;
}

/* ---- Encoder ---- */

/* Appends <type><v>\r\n. */
static void resp_put_header(struct buf *out, uint8_t type, int64_t v) {
    char line[UTIL_I64_DIGITS_MAX + 3];
    line[0] = (char)type;
    size_t n = util_format_i64(v, line + 1) + 1;
    line[n++] = '\r';
    line[n++] = '\n';
    ASSERT(n <= sizeof(line));
    buf_append(out, line, n);
}

static int64_t resp_count(size_t count) {
    ASSERT(count <= (size_t)INT64_MAX);
    return (int64_t)count;
}

void resp_put_simple(struct buf *out, const char *text) {
    ASSERT(strpbrk(text, "\r\n") == NULL);
    size_t n = strlen(text);
    buf_reserve(out, n + 3);
    buf_append_byte(out, '+');
    buf_append(out, text, n);
    buf_append(out, "\r\n", 2);
}

/* Redis's addReplyErrorLength rule: an error reply is one line, so \r and \n become
 * spaces. */
void resp_put_error(struct buf *out, const char *text) {
    size_t n = strlen(text);
    buf_reserve(out, n + 3);
    buf_append_byte(out, '-');
    size_t start = out->len;
    buf_append(out, text, n);
    for (size_t i = start; i < out->len; i++) {
        if (out->data[i] == '\r' || out->data[i] == '\n') out->data[i] = ' ';
    }
    buf_append(out, "\r\n", 2);
    ASSERT(out->len == start + n + 2);
}

void resp_put_errorf(struct buf *out, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    ASSERT(n >= 0);
    char *text = base_malloc((unsigned long)n + 1);
    vsnprintf(text, (size_t)n + 1, fmt, ap);
    va_end(ap);
    resp_put_error(out, text);
    free(text);
}

void resp_put_int(struct buf *out, int64_t v) {
    resp_put_header(out, ':', v);
}

void resp_put_bulk(struct buf *out, const void *data, size_t bytes) {
    ASSERT(data != NULL || bytes == 0);
    buf_reserve(out, bytes + UTIL_I64_DIGITS_MAX + 5);
    resp_put_header(out, '$', resp_count(bytes));
    buf_append(out, data, bytes);
    buf_append(out, "\r\n", 2);
}

void resp_put_bulk_str(struct buf *out, const char *s) {
    resp_put_bulk(out, s, strlen(s));
}

void resp_put_bulk_i64(struct buf *out, int64_t v) {
    char digits[UTIL_I64_DIGITS_MAX];
    size_t n = util_format_i64(v, digits);
    resp_put_bulk(out, digits, n);
}

void resp_put_null(struct buf *out, int proto) {
    ASSERT(proto == 2 || proto == 3);
    buf_append_str(out, proto == 3 ? "_\r\n" : "$-1\r\n");
}

void resp_put_null_array(struct buf *out, int proto) {
    ASSERT(proto == 2 || proto == 3);
    buf_append_str(out, proto == 3 ? "_\r\n" : "*-1\r\n");
}

void resp_put_array(struct buf *out, size_t count) {
    resp_put_header(out, '*', resp_count(count));
}

void resp_put_map(struct buf *out, int proto, size_t pairs) {
    ASSERT(proto == 2 || proto == 3);
    ASSERT(pairs <= (size_t)INT64_MAX / 2);
    if (proto == 3) {
        resp_put_header(out, '%', resp_count(pairs));
    } else {
        resp_put_header(out, '*', resp_count(pairs * 2));
    }
}

void resp_put_set(struct buf *out, int proto, size_t count) {
    ASSERT(proto == 2 || proto == 3);
    resp_put_header(out, proto == 3 ? '~' : '*', resp_count(count));
}

void resp_put_bool(struct buf *out, int proto, bool v) {
    ASSERT(proto == 2 || proto == 3);
    if (proto == 3) {
        buf_append_str(out, v ? "#t\r\n" : "#f\r\n");
    } else {
        buf_append_str(out, v ? ":1\r\n" : ":0\r\n");
    }
}

/* The shortest "%.<N>g" text that reads back as v, N <= 17 (always round-trips). A
 * shortest form of 15 digits or fewer is exactly what %.15g prints, so start there. */
static size_t resp_format_double(double v, char *text, size_t cap) {
    if (isinf(v)) return (size_t)snprintf(text, cap, "%s", v > 0 ? "inf" : "-inf");
    if (isnan(v)) return (size_t)snprintf(text, cap, "nan");
    int n = 0;
    for (int precision = 15; precision <= 17; precision++) {
        n = snprintf(text, cap, "%.*g", precision, v);
        ASSERT(n > 0 && (size_t)n < cap);
        if (strtod(text, NULL) == v) break;
    }
    return (size_t)n;
}

void resp_put_double(struct buf *out, int proto, double v) {
    ASSERT(proto == 2 || proto == 3);
    char text[64];
    size_t n = resp_format_double(v, text, sizeof(text));
    if (proto == 2) {
        resp_put_bulk(out, text, n);
        return;
    }
    buf_append_byte(out, ',');
    buf_append(out, text, n);
    buf_append(out, "\r\n", 2);
}

void resp_put_verbatim(struct buf *out, int proto, const char *text, size_t bytes) {
    ASSERT(proto == 2 || proto == 3);
    ASSERT(text != NULL || bytes == 0);
    if (proto == 2) {
        resp_put_bulk(out, text, bytes);
        return;
    }
    ASSERT(bytes <= SIZE_MAX - 4);
    buf_reserve(out, bytes + UTIL_I64_DIGITS_MAX + 9);
    resp_put_header(out, '=', resp_count(bytes + 4));
    buf_append(out, "txt:", 4);
    buf_append(out, text, bytes);
    buf_append(out, "\r\n", 2);
}
