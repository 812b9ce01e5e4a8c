/*
 * The AP engine's objects in its logged db (engine/logdb.h): each key's encoded ap_object
 * is the key's string value, and a change is one SET op record, idempotent on replay. The
 * anti-entropy tree follows every save. The file `epoch` holds this incarnation's epoch
 * and the count of its starts (boot):
 *   magic "capkvAPe" (8), epoch u32 le, boot u64 le, crc32c of the first 20 bytes u32 le
 * (a 16-byte file, with no boot, is read as boot 0). A data directory without it (new, or
 * wiped) gets a new epoch, so this node's new dots are never taken for dots it minted
 * before (Riak's kv679); a file that fails its check stops the node (reusing an unknown
 * epoch could do exactly that harm). Every start writes boot + 1 before serving: request
 * ids begin at the boot, so they never repeat an earlier start's (ap_coord.c). A key new
 * to the db also joins anti-entropy's key index (ap_ae.c).
 */
#include <stdio.h>
#include <string.h>

#include "ap/internal.h"
#include "base/assert.h"
#include "base/crc32c.h"
#include "cmd/op.h"

#define AP_EPOCH_FILE "epoch"
#define AP_EPOCH_TMP "epoch.tmp"
#define AP_EPOCH_BYTES_V1 16
#define AP_EPOCH_BYTES 24
static const char ap_epoch_magic[8] = {'c', 'a', 'p', 'k', 'v', 'A', 'P', 'e'};

static int ap_epoch_read(struct ap *ap, bool *found, struct errmsg *msg) {
    struct disk *d = ap->store.disk;
    struct disk_file *f;
    *found = false;
    int rc = d->open(d, AP_EPOCH_FILE, DISK_OPEN_READ, &f, msg);
    if (rc == ERR_NOTFOUND) return 0;
    if (rc != 0) return rc;
    uint8_t b[AP_EPOCH_BYTES + 1];
    size_t got = 0;
    rc = d->read(d, f, 0, b, sizeof(b), &got, msg);
    d->close(d, f);
    if (rc != 0) return rc;
    size_t crc_at = got == AP_EPOCH_BYTES ? 20 : 12;
    bool ok = (got == AP_EPOCH_BYTES || got == AP_EPOCH_BYTES_V1) &&
              memcmp(b, ap_epoch_magic, 8) == 0 &&
              crc32c_extend(0, b, crc_at) == base_load_u32le(b + crc_at);
    if (!ok)
        return errmsg_set(msg, ERR_CORRUPT,
                          "%s: not a valid epoch file (%zu bytes at offset 0); the node stops "
                          "rather than reuse an epoch it cannot read",
                          AP_EPOCH_FILE, got);
    ap->epoch = base_load_u32le(b + 8);
    ap->boot = got == AP_EPOCH_BYTES ? base_load_u64le(b + 12) : 0;
    *found = true;
    return 0;
}

static int ap_epoch_write(struct ap *ap, struct errmsg *msg) {
    struct disk *d = ap->store.disk;
    uint8_t b[AP_EPOCH_BYTES];
    memcpy(b, ap_epoch_magic, 8);
    base_store_u32le(b + 8, ap->epoch);
    base_store_u64le(b + 12, ap->boot);
    base_store_u32le(b + 20, crc32c_extend(0, b, 20));
    struct disk_file *f;
    int rc = d->open(d, AP_EPOCH_TMP, DISK_OPEN_WRITE | DISK_OPEN_CREATE, &f, msg);
    if (rc != 0) return rc;
    rc = d->truncate(d, f, 0, msg);
    if (rc == 0) rc = d->write(d, f, 0, b, sizeof(b), msg);
    if (rc == 0) rc = d->sync(d, f, msg);
    d->close(d, f);
    if (rc == 0) rc = d->rename(d, AP_EPOCH_TMP, AP_EPOCH_FILE, msg);
    if (rc == 0) rc = d->sync_dir(d, msg);
    return rc;
}

int ap_store_open(struct ap *ap, uint64_t now_ms, struct errmsg *msg) {
    struct logdb_config c = {
        .id = ap->config.id,
        .fsync = ap->config.fsync,
        .wal_segment_bytes = ap->config.wal_segment_bytes,
        .snapshot_log_bytes = ap->config.snapshot_log_bytes,
        .hash_seed = ap->config.hash_seed,
        .trace = ap->config.trace,
        .trace_ctx = ap->config.trace_ctx,
    };
    int rc = logdb_open(&ap->store, &c, ap->store.disk, now_ms, msg);
    if (rc != 0) return rc;
    bool found;
    rc = ap_epoch_read(ap, &found, msg);
    if (rc != 0) return rc;
    if (!found) {
        /* A new incarnation: 32 bits from the shell's seed and the clock; never 0. */
        uint64_t x = ap->config.seed ^ (now_ms * 0x9e3779b97f4a7c15ull);
        ap->epoch = (uint32_t)(x ^ (x >> 32)) | 1;
        ap->boot = 0;
        ap->fresh = true;
        ap_trace(ap, "ap: new epoch %u for this data directory (keys=%zu)", ap->epoch,
                 db_count(ap->store.db));
    }
    ap->actor = crdt_actor(ap->config.id, ap->epoch);
    return ap_store_next_boot(ap, msg);
}

int ap_store_next_boot(struct ap *ap, struct errmsg *msg) {
    ap->boot++;
    int rc = ap_epoch_write(ap, msg);
    if (rc == 0) {
        ap->pending_generation = ap->boot << AP_BOOT_SHIFT;
        /* Lives (object.h) given from now on are this boot's: none given before is as big. */
        uint64_t first = ap->boot << AP_LIFE_BOOT_SHIFT | 1;
        if (first > ap->next_life) ap->next_life = ap->life_floor = first;
    }
    return rc;
}

bool ap_store_load(struct ap *ap, const uint8_t *key, size_t bytes, struct ap_object *o) {
    struct db_entry *e = db_find(ap->store.db, key, bytes);
    if (e == NULL || db_entry_type(e) != VALUE_STRING) return false;
    size_t n;
    const uint8_t *data = db_entry_string(e, &n);
    int rc = ap_object_decode(data, n, o);
    if (rc != 0) {
        ap_trace(ap, "ap: the stored object of a %zu-byte key does not decode (%s): ignored", bytes,
                 err_text(rc));
        return false;
    }
    return true;
}

uint64_t ap_store_digest(struct ap *ap, const uint8_t *key, size_t bytes) {
    struct db_entry *e = db_find(ap->store.db, key, bytes);
    if (e == NULL || db_entry_type(e) != VALUE_STRING) return 0;
    size_t n;
    const uint8_t *data = db_entry_string(e, &n);
    return ap_tree_digest(data, n);
}

uint64_t ap_store_save(struct ap *ap, const uint8_t *key, size_t bytes, const struct ap_object *o) {
    buf_clear(&ap->encode);
    ap_object_encode(o, &ap->encode);
    if (!logdb_reserve(&ap->store, bytes + ap->encode.len + AP_WAL_RESERVE_SLACK)) return 0;
    uint64_t h = ap_ring_key_hash(key, bytes);
    uint64_t old = ap_store_digest(ap, key, bytes);
    uint64_t digest = ap_tree_digest(ap->encode.data, ap->encode.len);
    buf_clear(&ap->ops);
    op_put_set(&ap->ops, key, bytes, ap->encode.data, ap->encode.len, DB_NO_EXPIRE);
    (void)db_put_string(ap->store.db, key, bytes, ap->encode.data, ap->encode.len, DB_NO_EXPIRE);
    logdb_append(&ap->store, ap->ops.data, ap->ops.len);
    if (ap_members_rebuilding(ap)) {
        ap_members_dirty(ap, key, bytes);
    } else if (ap->tree.arc_count > 0) {
        uint32_t arc = ap_ring_arc(&ap->ring, h);
        ap_tree_update(&ap->tree, arc, h, old, digest);
        if (old == 0) ap_ae_index_add(ap, arc, h, key, bytes);
    }
    uint64_t lsn = wal_last_lsn(ap->store.wal);
    ASSERT(lsn > 0);
    return lsn;
}

bool ap_store_remove(struct ap *ap, const uint8_t *key, size_t bytes) {
    uint64_t old = ap_store_digest(ap, key, bytes);
    if (old == 0) return true;
    if (!logdb_reserve(&ap->store, bytes + AP_WAL_RESERVE_SLACK)) return false;
    buf_clear(&ap->ops);
    op_put_del(&ap->ops, key, bytes);
    logdb_append(&ap->store, ap->ops.data, ap->ops.len);
    if (ap_members_rebuilding(ap)) {
        ap_members_dirty(ap, key, bytes);
    } else if (ap->tree.arc_count > 0) {
        uint64_t h = ap_ring_key_hash(key, bytes);
        uint32_t arc = ap_ring_arc(&ap->ring, h);
        ap_tree_update(&ap->tree, arc, h, old, 0);
        ap_ae_index_remove(ap, arc, h, key, bytes);
    }
    (void)db_delete(ap->store.db, key, bytes);
    return true;
}

static void ap_store_tree_entry(void *ctx, struct db_entry *e) {
    ap_store_tree_add(ctx, e);
}

void ap_store_tree_add(struct ap *ap, struct db_entry *e) {
    if (db_entry_type(e) != VALUE_STRING) return;
    size_t kb, vb;
    const uint8_t *key = db_entry_key(e, &kb);
    const uint8_t *v = db_entry_string(e, &vb);
    uint64_t h = ap_ring_key_hash(key, kb);
    uint32_t arc = ap_ring_arc(&ap->ring, h);
    if (ap_ae_index_has(ap, arc, h, key, kb)) return;
    ap_tree_update(&ap->tree, arc, h, 0, ap_tree_digest(v, vb));
    ap_ae_index_add(ap, arc, h, key, kb);
}

void ap_store_rebuild_tree(struct ap *ap) {
    ap_tree_deinit(&ap->tree);
    ap_tree_init(&ap->tree, &ap->ring);
    ap_ae_index_reset(ap);
    if (ap->tree.arc_count == 0) return;
    uint64_t cursor = 0;
    do {
        cursor = db_scan(ap->store.db, cursor, ap_store_tree_entry, ap);
    } while (cursor != 0);
}
