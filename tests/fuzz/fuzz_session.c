/* Fuzzes the session token decoder (src/core/session.c): the first 4 bytes are the cluster
 * id the node has, the rest the token text a client sent. What it accepts re-encodes to the
 * input's digits (lowercased: the encoding is canonical but for case), and nothing crashes
 * it. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/assert.h"
#include "base/buf.h"
#include "core/session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 4) return 0;
    uint32_t cluster = base_load_u32le(data);
    const char *text = (const char *)data + 4;
    size_t bytes = size - 4;
    struct session_token t;
    struct seen_map ap;
    seen_map_init(&ap);
    struct errmsg msg;
    if (session_token_decode(text, bytes, cluster, &t, &ap, &msg) != 0) return 0;
    ASSERT(t.cluster_id == cluster);
    ASSERT(ap.count <= SEEN_KEYS_MAX && !ap.full);
    /* A version 1 token re-encodes as version 2: only the digits after the version and
     * before the CRC compare. */
    bool v1 = text[0] == '0' && text[1] == '1';
    struct buf again;
    buf_init(&again);
    session_token_encode(&t, &ap, &again);
    ASSERT(again.len == bytes);
    for (size_t i = v1 ? 2 : 0; i < (v1 ? bytes - 8 : bytes); i++) {
        char ch = text[i] >= 'A' && text[i] <= 'F' ? (char)(text[i] - 'A' + 'a') : text[i];
        ASSERT(again.data[i] == (uint8_t)ch);
    }
    buf_deinit(&again);
    seen_map_deinit(&ap);
    return 0;
}
