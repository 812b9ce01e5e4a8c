/* Fuzzes the session token decoder (src/core/session.c): the first 4 bytes are the cluster
 * id the node has, the rest the token text a client sent. What it accepts re-encodes to the
 * input's digits (lowercased: the encoding is canonical but for case), and nothing crashes
 * it. */
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
    struct errmsg msg;
    if (session_token_decode(text, bytes, cluster, &t, &msg) != 0) return 0;
    ASSERT(t.cluster_id == cluster);
    ASSERT(bytes == SESSION_TOKEN_HEX_BYTES);
    char again[SESSION_TOKEN_HEX_BYTES + 1];
    session_token_encode(&t, again);
    for (size_t i = 0; i < bytes; i++) {
        char ch = text[i] >= 'A' && text[i] <= 'F' ? (char)(text[i] - 'A' + 'a') : text[i];
        ASSERT(again[i] == ch);
    }
    return 0;
}
