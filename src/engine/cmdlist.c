/*
 * Command lists (cmdlist.h): encoding, and a decoder that trusts nothing (lists also come
 * from peers and from the log).
 */
#include "engine/cmdlist.h"

#include "base/assert.h"
#include "base/util.h"

void cmdlist_begin(struct buf *list, uint8_t flags, uint32_t count) {
    ASSERT(list->len == 0);
    buf_append_byte(list, flags);
    buf_append_u32le(list, count);
}

void cmdlist_add(struct buf *list, uint32_t argc, const struct resp_arg *argv) {
    ASSERT(list->len >= CMDLIST_HEADER_BYTES);
    buf_append_u32le(list, argc);
    for (uint32_t i = 0; i < argc; i++) {
        buf_append_u32le(list, (uint32_t)argv[i].bytes);
        buf_append(list, argv[i].data, argv[i].bytes);
    }
}

bool cmdlist_next(const uint8_t *list, size_t bytes, size_t *pos, struct buf *args,
                  uint32_t *argc) {
    buf_clear(args);
    if (*pos > bytes || bytes - *pos < 4) return false;
    *argc = base_load_u32le(list + *pos);
    *pos += 4;
    for (uint32_t i = 0; i < *argc; i++) {
        if (bytes - *pos < 4) return false;
        struct resp_arg a = {.bytes = base_load_u32le(list + *pos), .data = list + *pos + 4};
        if (bytes - *pos - 4 < a.bytes) return false;
        *pos += 4 + a.bytes;
        buf_append(args, &a, sizeof(a));
    }
    return *argc > 0;
}

void cmdlist_put_conditions(struct buf *list, uint64_t index, uint32_t key_count,
                            const uint8_t *keys, size_t keys_bytes) {
    ASSERT(list->len >= CMDLIST_HEADER_BYTES);
    ASSERT(key_count > 0);
    list->data[0] |= CMDLIST_IF;
    size_t start = list->len;
    buf_append_u64le(list, index);
    buf_append_u32le(list, key_count);
    buf_append(list, keys, keys_bytes);
    buf_append_u32le(list, (uint32_t)(list->len - start));
    ASSERT(list->len - start == CMDLIST_COND_HEADER_BYTES + keys_bytes + 4);
}
