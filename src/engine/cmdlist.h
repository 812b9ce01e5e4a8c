/*
 * Command lists: how a request's commands travel to an engine (and, in the CP engine, in
 * Raft entries and forwarded requests). One format for every engine:
 *
 *   flags:u8  count:u32, then count times: argc:u32, argc times (len:u32 bytes)
 *   [IF only: the WATCH conditions: index:u64 key_count:u32 (len:u32 key)*, then the
 *    conditions' own byte length:u32]
 *
 * Flags: EXEC, a transaction answered as one array; WATCH, a read answered with the
 * engine's index where it was served (":index"); IF, the commands are followed by WATCH
 * conditions, which the engine checks and strips before running them. docs/formats.md
 * mirrors this.
 */
#ifndef CAPKV_ENGINE_CMDLIST_H
#define CAPKV_ENGINE_CMDLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "proto/resp.h"

#define CMDLIST_EXEC 1
#define CMDLIST_WATCH 2
#define CMDLIST_IF 4
#define CMDLIST_HEADER_BYTES 5
#define CMDLIST_COND_HEADER_BYTES 12 /* index:u64 key_count:u32 */
#define CMDLIST_WATCH_KEYS_MAX 10000 /* keys one connection may watch */

void cmdlist_begin(struct buf *list, uint8_t flags, uint32_t count);
/* Appends one command (argv borrowed). */
void cmdlist_add(struct buf *list, uint32_t argc, const struct resp_arg *argv);
/* Decodes the command at *pos into args (struct resp_arg[] pointing into list); false on a
 * malformed list or an empty command. list borrowed: args valid while it is. */
bool cmdlist_next(const uint8_t *list, size_t bytes, size_t *pos, struct buf *args, uint32_t *argc);
/* Appends WATCH conditions to list (begun with cmdlist_begin) and flags it IF: the keys
 * were watched where the engine's index was `index`; keys is (len:u32 bytes)* of
 * key_count keys, borrowed. */
void cmdlist_put_conditions(struct buf *list, uint64_t index, uint32_t key_count,
                            const uint8_t *keys, size_t keys_bytes);

#endif
