/* Fuzzes the AP peer payload decoder (src/ap/ap_msg.c): what it accepts re-encodes to
 * exactly the input (the encoding is canonical), and nothing crashes it. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ap/ap_msg.h"
#include "base/assert.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static struct resp_arg
        args[AP_MSG_ARGS_MAX > AP_MSG_KEYS_MAX ? AP_MSG_ARGS_MAX : AP_MSG_KEYS_MAX];
    static uint64_t digests[AP_MSG_KEYS_MAX];
    static struct ap_msg m;
    m.args = args;
    m.digests = digests;
    if (ap_msg_decode(data, size, &m) != 0) return 0;
    struct buf out;
    buf_init(&out);
    ap_msg_encode(&m, &out);
    ASSERT(out.len == size && memcmp(out.data, data, size) == 0);
    buf_deinit(&out);
    return 0;
}
