/* Fuzzes the raft message decoder (peer input): garbage must be refused without a crash,
 * and whatever decodes must encode again to bytes that decode to the same message. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "base/assert.h"
#include "base/buf.h"
#include "raft/msg_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct raft_entry fuzz_entries[RAFT_MSG_ENTRIES_MAX];
static struct raft_entry fuzz_entries2[RAFT_MSG_ENTRIES_MAX];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct raft_message m;
    if (raft_msg_decode(data, size, &m, fuzz_entries) != 0) return 0;
    struct buf b;
    buf_init(&b);
    int rc = raft_msg_encode(&m, &b);
    ASSERT(rc == 0);
    struct raft_message again;
    rc = raft_msg_decode(b.data, b.len, &again, fuzz_entries2);
    ASSERT(rc == 0);
    ASSERT(again.type == m.type && again.from == m.from && again.to == m.to);
    ASSERT(again.term == m.term && again.index == m.index && again.commit == m.commit);
    ASSERT(again.entry_count == m.entry_count);
    for (uint32_t i = 0; i < m.entry_count; i++) {
        ASSERT(again.entries[i].data_bytes == m.entries[i].data_bytes);
        if (m.entries[i].data_bytes > 0) {
            ASSERT(memcmp(again.entries[i].data, m.entries[i].data, m.entries[i].data_bytes) == 0);
        }
    }
    buf_deinit(&b);
    return 0;
}
