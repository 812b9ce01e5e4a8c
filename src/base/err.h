/*
 * One table of error codes. Fallible functions return 0 or a negative ERR_* value; the
 * detail a person needs (file, byte offset, limit) goes into the caller's struct errmsg.
 */
#ifndef CAPKV_BASE_ERR_H
#define CAPKV_BASE_ERR_H

#include <stddef.h>

#define ERR_TABLE(X)                                                                               \
    X(ERR_NOMEM, "out of memory")                                                                  \
    X(ERR_INVALID, "invalid argument")                                                             \
    X(ERR_PROTOCOL, "protocol error")                                                              \
    X(ERR_LIMIT, "limit exceeded")                                                                 \
    X(ERR_AGAIN, "incomplete input, need more bytes")                                              \
    X(ERR_CORRUPT, "corrupt data")                                                                 \
    X(ERR_IO, "input/output error")                                                                \
    X(ERR_NOSPACE, "no space left on device")                                                      \
    X(ERR_NOTFOUND, "not found")                                                                   \
    X(ERR_EXISTS, "already exists")                                                                \
    X(ERR_CONFIG, "bad configuration")                                                             \
    X(ERR_TORN, "torn write at the end of a log")                                                  \
    X(ERR_VERSION, "unsupported format version")                                                   \
    X(ERR_NOTLEADER, "this node is not the raft leader")                                           \
    X(ERR_TRANSFERRING, "leadership transfer in progress")                                         \
    X(ERR_CONFIG_PENDING, "a configuration change is still uncommitted")

enum err_code {
    ERR_OK = 0,
#define ERR_ENUM_ENTRY(name, text) name##_POSITIVE,
    ERR_TABLE(ERR_ENUM_ENTRY)
#undef ERR_ENUM_ENTRY
        ERR_COUNT_POSITIVE
};

/* Negative codes: ERR_NOMEM == -1 ... */
#define ERR_DEFINE_NEG(name, text) static const int name = -(int)name##_POSITIVE;
ERR_TABLE(ERR_DEFINE_NEG)
#undef ERR_DEFINE_NEG

#define ERRMSG_BYTES_MAX 256

/* Human detail for the last error; owned by the caller, usually on its stack. */
struct errmsg {
    char text[ERRMSG_BYTES_MAX];
};

/* Returns the static name ("ERR_CORRUPT") or message of a code; never NULL. */
const char *err_name(int code);
const char *err_text(int code);

/* Formats into msg (if non-NULL) and returns code, so callers can `return errmsg_set(...)`. */
int errmsg_set(struct errmsg *msg, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
