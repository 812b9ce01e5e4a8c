/*
 * A tiny blocking RESP client for the command-line tools (cluster, fault, demo): connect
 * with a timeout, send one command, read exactly one reply under a size limit. Not for
 * the server's own use: it blocks.
 */
#ifndef CAPKV_CLI_RESPC_H
#define CAPKV_CLI_RESPC_H

#include <stdbool.h>
#include <stddef.h>

#include "base/buf.h"
#include "base/err.h"

#define RESPC_REPLY_BYTES_MAX (4u * 1024 * 1024)
#define RESPC_TIMEOUT_MS_DEFAULT 2000

/* Connects to addr ("HOST:PORT", numeric), sends argv as a RESP array and appends the raw
 * reply (one whole RESP value) to reply. Every step is bounded by timeout_ms. argv and
 * addr are borrowed. Returns 0, or ERR_IO / ERR_PROTOCOL / ERR_LIMIT with msg set. */
int respc_call(const char *addr, int argc, const char *const *argv, int timeout_ms,
               struct buf *reply, struct errmsg *msg);
/* Appends a person-readable rendering of a raw reply (redis-cli style) to out. */
void respc_format(const uint8_t *reply, size_t bytes, struct buf *out);
/* Whether the raw reply is an error (-...). */
bool respc_is_error(const uint8_t *reply, size_t bytes);
/* Copies the value of "name:value" from an INFO text into out; false if absent. */
bool respc_info_field(const char *info, const char *name, char *out, size_t cap);

#endif
