/* Integer parsing/formatting with Redis's rules, and Redis-compatible glob matching. */
#include "base/util.h"

#include <stdio.h>

#include "base/assert.h"

bool util_parse_i64(const uint8_t *s, size_t bytes, int64_t *out) {
    if (bytes == 0 || bytes >= UTIL_I64_DIGITS_MAX) return false;
    size_t i = 0;
    bool negative = false;
    if (s[0] == '-') {
        negative = true;
        i = 1;
        if (bytes == 1) return false;
    }
    if (s[i] == '0' && bytes > i + 1) return false;
    if (s[i] == '0' && negative) return false; /* "-0" is not canonical */
    uint64_t v = 0;
    for (; i < bytes; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        uint64_t digit = (uint64_t)(s[i] - '0');
        if (v > (UINT64_MAX - digit) / 10) return false;
        v = v * 10 + digit;
    }
    if (negative) {
        if (v > (uint64_t)INT64_MAX + 1) return false;
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    } else {
        if (v > (uint64_t)INT64_MAX) return false;
        *out = (int64_t)v;
    }
    return true;
}

bool util_parse_hex64(const char *s, size_t digits, uint64_t *out) {
    if (digits == 0 || digits > 16) return false;
    uint64_t v = 0;
    for (size_t i = 0; i < digits; i++) {
        char c = s[i];
        uint64_t digit;
        if (c >= '0' && c <= '9')
            digit = (uint64_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            digit = (uint64_t)(c - 'a' + 10);
        else
            return false;
        v = (v << 4) | digit;
    }
    *out = v;
    return true;
}

void util_hex_encode(const uint8_t *data, size_t bytes, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < bytes; i++) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 15];
    }
}

int util_hex_digit(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

size_t util_format_i64(int64_t v, char *out) {
    char tmp[UTIL_I64_DIGITS_MAX];
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u > 0);
    size_t len = 0;
    if (v < 0) out[len++] = '-';
    while (n > 0) out[len++] = tmp[--n];
    out[len] = '\0';
    ASSERT(len < UTIL_I64_DIGITS_MAX);
    return len;
}

/* Matches one [...] class at p (after '['); advances *p past ']'. */
static bool util_glob_match_class(const uint8_t **p, const uint8_t *end, uint8_t c) {
    const uint8_t *q = *p;
    bool negate = false;
    bool matched = false;
    if (q < end && *q == '^') {
        negate = true;
        q++;
    }
    while (q < end && *q != ']') {
        if (*q == '\\' && q + 1 < end) {
            q++;
            if (*q == c) matched = true;
        } else if (q + 2 < end && q[1] == '-' && q[2] != ']') {
            uint8_t lo = q[0] < q[2] ? q[0] : q[2];
            uint8_t hi = q[0] < q[2] ? q[2] : q[0];
            if (c >= lo && c <= hi) matched = true;
            q += 2;
        } else if (*q == c) {
            matched = true;
        }
        q++;
    }
    *p = q < end ? q + 1 : q;
    return negate ? !matched : matched;
}

bool util_glob_match(const uint8_t *pattern, size_t pattern_bytes, const uint8_t *s,
                     size_t s_bytes) {
    const uint8_t *p = pattern;
    const uint8_t *pend = pattern + pattern_bytes;
    const uint8_t *t = s;
    const uint8_t *tend = s + s_bytes;
    const uint8_t *star_p = NULL;
    const uint8_t *star_t = NULL;
    while (t < tend) {
        if (p < pend && *p == '*') {
            while (p < pend && *p == '*') p++;
            if (p == pend) return true;
            star_p = p;
            star_t = t;
            continue;
        }
        if (p < pend) {
            const uint8_t *next = p + 1;
            bool ok;
            if (*p == '?') {
                ok = true;
            } else if (*p == '[') {
                ok = util_glob_match_class(&next, pend, *t);
            } else if (*p == '\\' && p + 1 < pend) {
                ok = p[1] == *t;
                next = p + 2;
            } else {
                ok = *p == *t;
            }
            if (ok) {
                p = next;
                t++;
                continue;
            }
        }
        if (star_p == NULL) return false;
        p = star_p;
        t = ++star_t;
    }
    while (p < pend && *p == '*') p++;
    return p == pend;
}

void util_tracev(util_trace_fn *fn, void *ctx, uint32_t id, uint64_t now_ms, const char *fmt,
                 va_list ap) {
    if (fn == NULL) return;
    char line[UTIL_TRACE_LINE_BYTES_MAX];
    int n = snprintf(line, sizeof(line), "node=%u t=%llu ", id, (unsigned long long)now_ms);
    ASSERT(n > 0 && (size_t)n < sizeof(line));
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    fn(ctx, line);
}
