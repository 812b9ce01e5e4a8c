/* Fuzzes the op decoder (WAL record payloads and snapshot entries): op_validate must
 * reject or accept without crashing, and whatever it accepts must apply cleanly. */
#include <stddef.h>
#include <stdint.h>

#include "base/assert.h"
#include "cmd/op.h"
#include "data/db.h"

static void fuzz_op_key(void *ctx, enum op_kind kind, const uint8_t *key, size_t key_bytes) {
    size_t *count = ctx;
    (void)kind;
    (void)key;
    (void)key_bytes;
    (*count)++;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct errmsg msg;
    if (op_validate(data, size, &msg) != 0) return 0;
    struct db *db = db_new(42);
    size_t keys = 0;
    op_each_key(data, size, fuzz_op_key, &keys);
    int rc = op_apply(db, data, size, &msg);
    ASSERT(rc == 0);
    if (size > 0) ASSERT(keys > 0);
    db_free(db);
    return 0;
}
