/* Names and messages of the error table, and errmsg formatting. */
#include "base/err.h"

#include <stdarg.h>
#include <stdio.h>

#include "base/assert.h"

static const char *const err_names[] = {"ERR_OK",
#define ERR_NAME_ENTRY(name, text) #name,
                                        ERR_TABLE(ERR_NAME_ENTRY)
#undef ERR_NAME_ENTRY
};

static const char *const err_texts[] = {"ok",
#define ERR_TEXT_ENTRY(name, text) text,
                                        ERR_TABLE(ERR_TEXT_ENTRY)
#undef ERR_TEXT_ENTRY
};

STATIC_ASSERT(sizeof(err_names) == sizeof(err_texts), "one name per message");

static int err_index(int code) {
    int index = -code;
    if (index < 0 || index >= (int)ERR_COUNT_POSITIVE) return -1;
    return index;
}

const char *err_name(int code) {
    int index = err_index(code);
    return index < 0 ? "ERR_UNKNOWN" : err_names[index];
}

const char *err_text(int code) {
    int index = err_index(code);
    return index < 0 ? "unknown error" : err_texts[index];
}

int errmsg_set(struct errmsg *msg, int code, const char *fmt, ...) {
    ASSERT(code <= 0);
    if (msg == NULL) return code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg->text, sizeof(msg->text), fmt, ap);
    va_end(ap);
    return code;
}
