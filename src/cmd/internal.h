/* Helpers private to src/cmd (see util.c). */
#ifndef CAPKV_CMD_INTERNAL_H
#define CAPKV_CMD_INTERNAL_H

#include "cmd/cmd.h"

/* Applies the ops appended to ctx->ops since ops_from. */
void cmd_apply(struct cmd_ctx *ctx, size_t ops_from);
/* Deletes key (if present) through the op log. */
void cmd_delete_key(struct cmd_ctx *ctx, const struct resp_arg *key);
void cmd_reply_string_too_big(struct cmd_ctx *ctx);
void cmd_reply_bulk_entry(struct cmd_ctx *ctx, const struct db_entry *e);
/* "ERR invalid expire time in '<command>' command". */
void cmd_reply_invalid_expire(struct cmd_ctx *ctx);
/* Absolute Unix ms from a relative or absolute time in unit_ms units; false (replied) when
 * arg is not an integer or the result overflows. */
bool cmd_parse_expire(struct cmd_ctx *ctx, const struct resp_arg *arg, uint64_t unit_ms,
                      bool absolute, int64_t *expire_ms);

#endif
