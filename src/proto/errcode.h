/*
 * The client-facing error codes: the first word of a RESP error reply that is capkv's own
 * (beyond Redis's ERR, WRONGTYPE, NOAUTH, EXECABORT ...). One table gives each code its
 * word, whether a write that got it may have been applied, and its meaning; every engine
 * answers through errcode_reply, and docs/errors.md lists the same table for client
 * authors. A code's word and its "applied" column are a contract: clients branch on them
 * (retry on NOQUORUM and TRYAGAIN; an idempotency key or a read on TIMEOUT).
 */
#ifndef CAPKV_PROTO_ERRCODE_H
#define CAPKV_PROTO_ERRCODE_H

#include <stdbool.h>

#include "base/buf.h"

/* Whether the write a request carried happened. */
enum errcode_applied {
    ERRCODE_NOT_APPLIED = 1, /* nothing changed: retrying cannot apply it twice */
    ERRCODE_MAYBE_APPLIED,   /* the outcome is unknown: it may still apply, or already did */
};

/* X(enum name, first word, applied, meaning) */
#define ERRCODE_TABLE(X)                                                                           \
    X(ERRCODE_NOQUORUM, "NOQUORUM", ERRCODE_NOT_APPLIED,                                           \
      "this node cannot reach a majority (no leader is known, or a read could not be "             \
      "confirmed): it refuses rather than answer stale or lose a write")                           \
    X(ERRCODE_TIMEOUT, "TIMEOUT", ERRCODE_MAYBE_APPLIED,                                           \
      "the write was sent to replication but not confirmed in time (leader lost, slow "            \
      "voters): it may or may not have been applied, and may still apply")                         \
    X(ERRCODE_TRYAGAIN, "TRYAGAIN", ERRCODE_NOT_APPLIED,                                           \
      "the node is changing role (leadership handed over or lost) and did not apply the "          \
      "request; retry it, on this node or another")                                                \
    X(ERRCODE_NOREPLICAS, "NOREPLICAS", ERRCODE_NOT_APPLIED,                                       \
      "replication = all needs every voter and one is unreachable: the write was not applied")     \
    X(ERRCODE_CROSSSLOT, "CROSSSLOT", ERRCODE_NOT_APPLIED,                                         \
      "the command's keys belong to keyspaces of different engines (cp and ap); no command "       \
      "or transaction spans engines")                                                              \
    X(ERRCODE_DISKFULL, "ERR disk full:", ERRCODE_NOT_APPLIED,                                     \
      "the node could not reserve log space: writes are refused until space is freed, reads "      \
      "go on")                                                                                     \
    X(ERRCODE_BUSY, "ERR busy:", ERRCODE_NOT_APPLIED,                                              \
      "too many requests are waiting on replication at this node (a named limit); retry later")

enum errcode {
#define ERRCODE_ENUM(name, word, applied, meaning) name,
    ERRCODE_TABLE(ERRCODE_ENUM)
#undef ERRCODE_ENUM
        ERRCODE_COUNT
};

/* The code's first word(s) ("NOQUORUM", "ERR disk full:"), its applied column and its
 * meaning: static strings, never NULL. */
const char *errcode_word(enum errcode code);
enum errcode_applied errcode_applied(enum errcode code);
const char *errcode_meaning(enum errcode code);

/* Appends the RESP error "-WORD detail\r\n" to out. The detail says what a person can do
 * about it (the node, the leader, the limit); one line, CR and LF become spaces. */
void errcode_reply(struct buf *out, enum errcode code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Whether a reply (RESP bytes, borrowed) is an error of this code. */
bool errcode_is(const uint8_t *reply, size_t bytes, enum errcode code);

#endif
