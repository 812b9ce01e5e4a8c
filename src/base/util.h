/* Small pure helpers: integer parsing and formatting with Redis's rules. */
#ifndef CAPKV_BASE_UTIL_H
#define CAPKV_BASE_UTIL_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UTIL_I64_DIGITS_MAX 21 /* "-9223372036854775808" plus NUL */

/* Parses a whole decimal int64 the way Redis's string2ll does: no spaces, no leading '+',
 * no leading zeros (except "0"), no overflow. Returns false when s is not such a number. */
bool util_parse_i64(const uint8_t *s, size_t bytes, int64_t *out);
/* Parses exactly `digits` lower-case hex digits (file names like wal-<16 hex>.log). */
bool util_parse_hex64(const char *s, size_t digits, uint64_t *out);
/* Writes 2 * bytes lower-case hex digits of data to out (no NUL). */
void util_hex_encode(const uint8_t *data, size_t bytes, char *out);
/* The value of one hex digit (either case), or -1. */
int util_hex_digit(int c);
/* Writes v in decimal to out (at least UTIL_I64_DIGITS_MAX bytes); returns the length. */
size_t util_format_i64(int64_t v, char *out);
/* Glob match with Redis's rules (*, ?, [a-z], [^x], \x). */
bool util_glob_match(const uint8_t *pattern, size_t pattern_bytes, const uint8_t *s,
                     size_t s_bytes);

/* A tracer line for the core's injected tracers: "node=ID t=NOW_MS " then fmt's text, cut to
 * UTIL_TRACE_LINE_BYTES_MAX; handed to fn (which may be NULL: nothing happens). */
#define UTIL_TRACE_LINE_BYTES_MAX 512
typedef void util_trace_fn(void *ctx, const char *line);
void util_tracev(util_trace_fn *fn, void *ctx, uint32_t id, uint64_t now_ms, const char *fmt,
                 va_list ap) __attribute__((format(printf, 5, 0)));

#endif
