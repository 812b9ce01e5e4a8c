/*
 * Client-facing error codes (errcode.h): the table's columns, and replies built from them.
 */
#include "proto/errcode.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/assert.h"
#include "proto/resp.h"

#define ERRCODE_REPLY_BYTES_MAX 1024

struct errcode_row {
    const char *word;
    enum errcode_applied applied;
    const char *meaning;
};

static const struct errcode_row errcode_rows[ERRCODE_COUNT] = {
#define ERRCODE_ROW(name, word, applied, meaning) [name] = {word, applied, meaning},
    ERRCODE_TABLE(ERRCODE_ROW)
#undef ERRCODE_ROW
};

static const struct errcode_row *errcode_row(enum errcode code) {
    ASSERT((int)code >= 0 && code < ERRCODE_COUNT);
    const struct errcode_row *row = &errcode_rows[code];
    ASSERT(row->word != NULL);
    return row;
}

const char *errcode_word(enum errcode code) {
    return errcode_row(code)->word;
}

enum errcode_applied errcode_applied(enum errcode code) {
    return errcode_row(code)->applied;
}

const char *errcode_meaning(enum errcode code) {
    return errcode_row(code)->meaning;
}

void errcode_reply(struct buf *out, enum errcode code, const char *fmt, ...) {
    char text[ERRCODE_REPLY_BYTES_MAX];
    const char *word = errcode_word(code);
    int n = snprintf(text, sizeof(text), "%s ", word);
    ASSERT(n > 0 && (size_t)n < sizeof(text));
    va_list ap;
    va_start(ap, fmt);
    /* A detail longer than the buffer is cut: the code word always leads. */
    vsnprintf(text + n, sizeof(text) - (size_t)n, fmt, ap);
    va_end(ap);
    resp_put_error(out, text);
}

bool errcode_is(const uint8_t *reply, size_t bytes, enum errcode code) {
    const char *word = errcode_word(code);
    size_t n = strlen(word);
    if (bytes < n + 2 || reply[0] != '-') return false;
    if (memcmp(reply + 1, word, n) != 0) return false;
    return reply[n + 1] == ' ' || reply[n + 1] == '\r';
}
