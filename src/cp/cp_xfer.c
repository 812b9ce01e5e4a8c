/*
 * InstallSnapshot in chunks. Raft (raft.h, step 2) leaves a snapshot's bytes to the
 * caller; here the leader sends its snapshot's data file (raftstore_data_open) byte for
 * byte, in chunks of CP_XFER_CHUNK_BYTES each with its CRC, read from disk as they go,
 * at most CP_XFER_WINDOW_CHUNKS unacknowledged, so heartbeats and appends keep flowing
 * beside it. The follower writes them to a file of its own (raftstore_recv_*), syncs it
 * in steps in turns with its log, checks it whole (every CRC of the snapshot format) and
 * says so; only then does the leader send the raft message, and the follower's raft
 * restores from that file (cp_restore). The data file is pinned while it is sent, and
 * raft keeps the entries that follow it (raft_retain), so a transfer that outlasts newer
 * snapshots still ends with a follower the log can catch up.
 *
 * Resumable: an offer names the snapshot (index, the leader's data file id, size); a
 * follower holding part of that file answers with how much it holds, and the leader
 * goes on from there: after a lost link (the stalled window is sent again), a restart of
 * the leader (it offers the same file again if it is still the newest), or a restart of
 * the follower (raftstore_recv_resume keeps the part it can trust). A file mixed from two
 * senders cannot pass the whole-file check, and is received again from the start.
 *
 * Peer payloads (after the engine byte), integers little-endian; docs/formats.md:
 *   OFFER    index:u64 term:u64 id:u64 total:u64
 *   CHUNK    index:u64 id:u64 total:u64 offset:u64 crc:u32, bytes (crc32c of the bytes)
 *   ACK      index:u64 id:u64 have:u64 status:u8 at:u64 (the chunk answered, or 0)
 *   INSTALL  a raft INSTALL_SNAPSHOT message (raft_msg_encode) without bytes
 */
#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/crc32c.h"
#include "cp/internal.h"
#include "raft/msg_codec.h"

#define CP_XFER_CHUNK_BYTES (256u * 1024) /* engine_config.snapshot_chunk_bytes overrides */
#define CP_XFER_WINDOW_CHUNKS 8           /* chunks sent and not yet acknowledged */
#define CP_XFER_OFFER_MS 500              /* an offer with no answer is made again */
#define CP_XFER_STALL_MS 2000             /* a window with no ack is sent again from there */
#define CP_XFER_IDLE_MS 30000             /* a transfer with no answer at all is given up */
/* The follower syncs its file every CP_XFER_SYNC_CHUNKS chunks (8 MiB) and acknowledges
 * at most CP_XFER_UNSYNCED_CHUNKS past what it synced, so that after its restart all but
 * the last of those (plus a window) can be trusted. */
#define CP_XFER_SYNC_CHUNKS 32
#define CP_XFER_UNSYNCED_CHUNKS 64
/* Entries raft keeps in memory for a follower being sent an older snapshot; past this the
 * follower will need a newer snapshot after this one (memory stays bounded). */
#define CP_XFER_RETAIN_BYTES_MAX (256ull * 1024 * 1024)

enum cp_xfer_status {
    CP_XFER_PROGRESS = 0,  /* have: bytes held (acknowledged) */
    CP_XFER_GAP = 1,       /* the chunk at `at` was not the next: go on from have */
    CP_XFER_READY = 2,     /* every byte in, synced and checked: send the raft message */
    CP_XFER_INSTALLED = 3, /* the raft message was taken (or nothing was needed) */
    CP_XFER_UNKNOWN = 4,   /* no such transfer here: offer again */
    CP_XFER_FAILED = 5,    /* the follower could not store it (its log says why) */
};

#define CP_XFER_OFFER_BYTES 32
#define CP_XFER_CHUNK_HEAD_BYTES 36
#define CP_XFER_ACK_BYTES 33

static uint32_t cp_xfer_chunk_bytes(const struct cp *cp) {
    return cp->config.snapshot_chunk_bytes != 0 ? cp->config.snapshot_chunk_bytes
                                                : CP_XFER_CHUNK_BYTES;
}

static void cp_xfer_put_head(struct cp *cp, uint8_t kind) {
    buf_clear(&cp->encode);
    buf_append_byte(&cp->encode, ENGINE_CP);
    buf_append_byte(&cp->encode, kind);
}

/* ---- the leader's side ---- */

static void cp_xfer_send_offer(struct cp *cp, struct cp_xfer *x) {
    cp_xfer_put_head(cp, CP_PEER_SNAP_OFFER);
    buf_append_u64le(&cp->encode, x->index);
    buf_append_u64le(&cp->encode, x->term);
    buf_append_u64le(&cp->encode, x->id);
    buf_append_u64le(&cp->encode, x->total);
    cp_send(cp, x->to, cp->encode.data, cp->encode.len);
    x->offer_ms = cp->mono_ms;
}

/* The raft message that ends a transfer: the snapshot sent, in the leader's term now. */
static void cp_xfer_send_install(struct cp *cp, struct cp_xfer *x) {
    struct raft_message m = {.type = RAFT_MSG_INSTALL_SNAPSHOT,
                             .from = cp->config.id,
                             .to = x->to,
                             .term = raft_term(cp->raft),
                             .index = x->index,
                             .log_term = x->term,
                             .commit = raft_commit_index(cp->raft),
                             .config = x->config};
    cp_xfer_put_head(cp, CP_PEER_SNAP_INSTALL);
    if (raft_msg_encode(&m, &cp->encode) != 0) return;
    cp_send(cp, x->to, cp->encode.data, cp->encode.len);
    x->install_ms = cp->mono_ms;
    x->install_sent = true;
}

/* The lowest snapshot index still being sent: raft keeps the entries after it. */
static void cp_xfer_retain(struct cp *cp) {
    uint64_t low = 0;
    for (size_t i = 0; i < cp->xfer_count; i++)
        if (low == 0 || cp->xfers[i].index < low) low = cp->xfers[i].index;
    if (low != 0 && raft_log_bytes(cp->raft) > CP_XFER_RETAIN_BYTES_MAX) {
        if (!cp->xfer_retain_lifted)
            cp_trace(cp,
                     "cluster: the log passed %llu MiB while a snapshot at index %llu is being "
                     "sent: not kept for it any longer (the follower will need a newer one)",
                     CP_XFER_RETAIN_BYTES_MAX >> 20, (unsigned long long)low);
        cp->xfer_retain_lifted = true;
        low = 0;
    }
    raft_retain(cp->raft, low);
}

static void cp_xfer_stop(struct cp *cp, struct cp_xfer *x, const char *why) {
    if (why != NULL)
        cp_trace(cp, "cluster: snapshot transfer to %u stopped at %llu of %llu bytes: %s", x->to,
                 (unsigned long long)x->acked, (unsigned long long)x->total, why);
    raftstore_data_close(cp->store, x->id, x->file);
    size_t i = (size_t)(x - cp->xfers);
    ASSERT(i < cp->xfer_count);
    cp->xfers[i] = cp->xfers[--cp->xfer_count];
    if (cp->xfer_count == 0) cp->xfer_retain_lifted = false;
    cp_xfer_retain(cp);
}

static struct cp_xfer *cp_xfer_to(struct cp *cp, uint32_t to) {
    for (size_t i = 0; i < cp->xfer_count; i++)
        if (cp->xfers[i].to == to) return &cp->xfers[i];
    return NULL;
}

/* Raft asked for an InstallSnapshot to m->to: start a transfer, or let the one running go
 * on (raft asks again every election timeout while it waits). */
void cp_xfer_want(struct cp *cp, const struct raft_message *m) {
    struct cp_xfer *x = cp_xfer_to(cp, m->to);
    if (x != NULL) {
        if (x->install_sent && cp->mono_ms - x->install_ms >= CP_XFER_OFFER_MS)
            cp_xfer_send_install(cp, x); /* the last one may have been lost */
        return;
    }
    if (cp->xfer_count == RAFT_NODES_MAX) return;
    x = &cp->xfers[cp->xfer_count];
    memset(x, 0, sizeof(*x));
    struct errmsg msg;
    int rc = raftstore_data_open(cp->store, &x->id, &x->file, &x->total, &msg);
    if (rc == ERR_NOTFOUND) {
        /* An older release's snapshot (its blob inside the snapshot file): take a new one. */
        if (!cp->save_requested)
            cp_trace(cp, "cluster: node %u needs a snapshot; taking one that can be sent (%s)",
                     m->to, msg.text);
        cp->save_requested = true;
        return;
    }
    if (rc != 0) {
        cp_trace(cp, "error: snapshot for node %u not sent: %s", m->to, msg.text);
        return;
    }
    const struct raft_snapshot_meta *snap = raftstore_snapshot(cp->store);
    x->to = m->to;
    x->index = snap->index;
    x->term = snap->term;
    x->config = snap->config;
    x->start_ms = x->ack_ms = cp->mono_ms;
    cp->xfer_count++;
    cp->stats.xfer_started++;
    cp_trace(cp, "cluster: sending node %u the snapshot at index %llu (%llu bytes) in chunks",
             x->to, (unsigned long long)x->index, (unsigned long long)x->total);
    cp_xfer_retain(cp);
    cp_xfer_send_offer(cp, x);
}

static bool cp_xfer_send_chunk(struct cp *cp, struct cp_xfer *x) {
    uint64_t n = x->total - x->sent;
    if (n > cp_xfer_chunk_bytes(cp)) n = cp_xfer_chunk_bytes(cp);
    cp_xfer_put_head(cp, CP_PEER_SNAP_CHUNK);
    buf_append_u64le(&cp->encode, x->index);
    buf_append_u64le(&cp->encode, x->id);
    buf_append_u64le(&cp->encode, x->total);
    buf_append_u64le(&cp->encode, x->sent);
    size_t crc_at = cp->encode.len;
    buf_append_u32le(&cp->encode, 0);
    buf_reserve(&cp->encode, (size_t)n);
    uint8_t *data = cp->encode.data + cp->encode.len;
    size_t got = 0;
    struct errmsg msg;
    struct disk *d = raftstore_disk(cp->store);
    if (d->read(d, x->file, x->sent, data, (size_t)n, &got, &msg) != 0 || got != n) {
        cp_xfer_stop(cp, x, got != n ? "its data file is shorter than it was" : msg.text);
        return false;
    }
    cp->encode.len += (size_t)n;
    base_store_u32le(cp->encode.data + crc_at, crc32c_extend(0, data, (size_t)n));
    cp_send(cp, x->to, cp->encode.data, cp->encode.len);
    x->sent += n;
    x->send_ms = cp->mono_ms;
    cp->stats.xfer_chunks_sent++;
    cp->stats.xfer_bytes_sent += n;
    return true;
}

/* Sends what the window allows; gives up on what can no longer go on. */
static void cp_xfer_pump_one(struct cp *cp, struct cp_xfer *x) {
    if (raft_config_find(raft_config(cp->raft), x->to) == NULL) {
        cp_xfer_stop(cp, x, "the node left the configuration");
        return;
    }
    if (cp->mono_ms - x->ack_ms >= CP_XFER_IDLE_MS) {
        cp_xfer_stop(cp, x, "no answer");
        return;
    }
    if (!x->offered) {
        if (cp->mono_ms - x->offer_ms >= CP_XFER_OFFER_MS) cp_xfer_send_offer(cp, x);
        return;
    }
    if (x->install_sent) {
        if (cp->mono_ms - x->install_ms >= CP_XFER_OFFER_MS) cp_xfer_send_install(cp, x);
        return;
    }
    if (x->acked == x->total && cp->mono_ms - x->ack_ms >= CP_XFER_OFFER_MS &&
        cp->mono_ms - x->offer_ms >= CP_XFER_OFFER_MS) {
        /* Every byte was acknowledged, but no READY came: it was lost, or the node restarted
         * and kept less (a file is checked only once synced whole). Its answer to this offer
         * says which, as to a first offer: READY, or the bytes it holds, resent from there. */
        x->offered = false;
        cp_xfer_send_offer(cp, x);
        return;
    }
    if (x->sent > x->acked && cp->mono_ms - x->ack_ms >= CP_XFER_STALL_MS &&
        cp->mono_ms - x->send_ms >= CP_XFER_STALL_MS) {
        x->resend_mark = x->sent; /* chunks or acks were lost: again from the last ack */
        x->sent = x->acked;
        cp->stats.xfer_resends++;
    }
    uint64_t window = (uint64_t)cp_xfer_chunk_bytes(cp) * CP_XFER_WINDOW_CHUNKS;
    while (x->sent < x->total && x->sent - x->acked < window)
        if (!cp_xfer_send_chunk(cp, x)) return;
}

void cp_xfer_pump(struct cp *cp) {
    if (cp->xfer_count == 0) return;
    if (raft_role(cp->raft) != RAFT_LEADER) {
        while (cp->xfer_count > 0) cp_xfer_stop(cp, &cp->xfers[0], "no longer the leader");
        return;
    }
    for (size_t i = cp->xfer_count; i > 0; i--) cp_xfer_pump_one(cp, &cp->xfers[i - 1]);
    cp_xfer_retain(cp);
}

static void cp_xfer_acked(struct cp *cp, uint32_t from, const uint8_t *p) {
    struct cp_xfer *x = cp_xfer_to(cp, from);
    uint64_t index = base_load_u64le(p), id = base_load_u64le(p + 8);
    uint8_t status = p[24];
    if (x == NULL || x->index != index) return; /* an older transfer's */
    if (id != 0 && x->id != id) return;         /* 0: an answer to an INSTALL, which names none */
    uint64_t have = base_load_u64le(p + 16), at = base_load_u64le(p + 25);
    x->ack_ms = cp->mono_ms;
    switch (status) {
    case CP_XFER_INSTALLED:
        cp->stats.xfer_done++;
        cp_trace(cp, "cluster: node %u installed the snapshot at index %llu (%llu bytes, %llu ms)",
                 x->to, (unsigned long long)x->index, (unsigned long long)x->total,
                 (unsigned long long)(cp->mono_ms - x->start_ms));
        cp_xfer_stop(cp, x, NULL);
        return;
    case CP_XFER_FAILED:
        cp_xfer_stop(cp, x, "the node could not store it");
        return;
    case CP_XFER_UNKNOWN:
        x->offered = false;
        x->install_sent = false;
        x->acked = x->sent = 0;
        cp_xfer_send_offer(cp, x);
        return;
    case CP_XFER_READY:
        x->offered = true;
        x->acked = x->sent = x->total;
        if (!x->install_sent) cp_xfer_send_install(cp, x);
        return;
    default:
        break;
    }
    if (have > x->total) return; /* garbage */
    if (!x->offered) {           /* the answer to an offer: go on from what the node holds */
        x->offered = true;
        if (have > 0) {
            cp->stats.xfer_resumed++;
            cp_trace(cp, "cluster: node %u holds %llu bytes of the snapshot already: resuming",
                     x->to, (unsigned long long)have);
        }
        x->acked = x->sent = have;
    } else if (status == CP_XFER_GAP && have < x->sent && at >= x->resend_mark) {
        /* A chunk before `at` was lost: send again from have (the acks of chunks that were
         * in flight before this rewind say the same, and are ignored by the mark). */
        x->resend_mark = x->sent;
        x->sent = have;
        cp->stats.xfer_resends++;
    }
    if (have > x->acked) x->acked = have;
    if (x->sent < x->acked) x->sent = x->acked;
    cp_xfer_pump_one(cp, x);
}

/* ---- the follower's side ---- */

static void cp_xfer_send_ack(struct cp *cp, uint32_t to, uint64_t index, uint64_t id, uint64_t have,
                             uint8_t status, uint64_t at) {
    cp_xfer_put_head(cp, CP_PEER_SNAP_ACK);
    buf_append_u64le(&cp->encode, index);
    buf_append_u64le(&cp->encode, id);
    buf_append_u64le(&cp->encode, have);
    buf_append_byte(&cp->encode, status);
    buf_append_u64le(&cp->encode, at);
    cp_send(cp, to, cp->encode.data, cp->encode.len);
}

/* What the follower may acknowledge: what it holds, but not far past what it synced. */
static uint64_t cp_xfer_ackable(const struct cp *cp) {
    const struct cp_xrecv *r = &cp->xrecv;
    uint64_t limit = r->synced + (uint64_t)cp_xfer_chunk_bytes(cp) * CP_XFER_UNSYNCED_CHUNKS;
    return r->have < limit ? r->have : limit;
}

static void cp_xfer_recv_ack(struct cp *cp, uint8_t status, uint64_t at) {
    struct cp_xrecv *r = &cp->xrecv;
    if (r->ready) status = CP_XFER_READY;
    cp_xfer_send_ack(cp, r->from, r->index, r->id, cp_xfer_ackable(cp), status, at);
    r->acked = cp_xfer_ackable(cp);
}

static void cp_xfer_recv_reset(struct cp *cp) {
    memset(&cp->xrecv, 0, sizeof(cp->xrecv));
}

/* Gives up the file being received (a newer offer, damage, a full disk, installed). */
static void cp_xfer_recv_abort(struct cp *cp) {
    ASSERT(!cp->xrecv.syncing); /* its sync must end first: the store closes the file */
    if (cp->xrecv.active) raftstore_recv_abort(cp->store);
    cp_xfer_recv_reset(cp);
}

static void cp_xfer_offer(struct cp *cp, uint32_t from, const uint8_t *p) {
    struct cp_xrecv *r = &cp->xrecv;
    uint64_t index = base_load_u64le(p), term = base_load_u64le(p + 8);
    uint64_t id = base_load_u64le(p + 16), total = base_load_u64le(p + 24);
    if (index <= raft_commit_index(cp->raft)) {
        /* Nothing new in it for this node: the INSTALL comes at once, and its raft says
         * so to the leader's (with its commit index, where the leader goes on). */
        cp_xfer_send_ack(cp, from, index, id, total, CP_XFER_READY, 0);
        return;
    }
    bool same = r->active && r->index == index && (r->id == 0 || r->id == id) &&
                (r->total == 0 || r->total == total) && r->have <= total;
    if (!same) {
        if (r->syncing) return; /* answered once its sync ends: the offer comes again */
        cp_xfer_recv_abort(cp);
        struct errmsg msg;
        if (raftstore_recv_begin(cp->store, index, &msg) != 0) {
            cp_trace(cp, "error: cannot receive a snapshot: %s", msg.text);
            cp_xfer_send_ack(cp, from, index, id, 0, CP_XFER_FAILED, 0);
            return;
        }
        r->active = true;
        r->index = index;
        cp_trace(cp, "cluster: receiving the snapshot at index %llu (%llu bytes) from %u",
                 (unsigned long long)index, (unsigned long long)total, from);
    } else if (r->have > 0 && !r->ready) {
        cp_trace(cp, "cluster: resuming the snapshot at index %llu from %u at byte %llu",
                 (unsigned long long)index, from, (unsigned long long)r->have);
    }
    r->from = from;
    r->id = id;
    r->total = total;
    r->term = term;
    cp_xfer_recv_ack(cp, CP_XFER_PROGRESS, 0);
}

static void cp_xfer_chunk(struct cp *cp, uint32_t from, const uint8_t *p, size_t bytes) {
    struct cp_xrecv *r = &cp->xrecv;
    uint64_t index = base_load_u64le(p), id = base_load_u64le(p + 8);
    uint64_t total = base_load_u64le(p + 16), offset = base_load_u64le(p + 24);
    const uint8_t *data = p + CP_XFER_CHUNK_HEAD_BYTES;
    size_t n = bytes - CP_XFER_CHUNK_HEAD_BYTES;
    if (!r->active || r->index != index || r->id != id || r->total != total) {
        cp_xfer_send_ack(cp, from, index, id, 0, CP_XFER_UNKNOWN, offset);
        return;
    }
    r->from = from;
    if (crc32c_extend(0, data, n) != base_load_u32le(p + 32)) {
        cp->stats.xfer_bad_chunks++;
        cp_xfer_recv_ack(cp, CP_XFER_GAP, offset);
        return;
    }
    if (offset != r->have || r->ready || n > total - offset || n == 0) {
        cp_xfer_recv_ack(cp, offset > r->have ? CP_XFER_GAP : CP_XFER_PROGRESS, offset);
        return;
    }
    struct errmsg msg;
    if (raftstore_recv_write(cp->store, offset, data, n, &msg) != 0) {
        cp_trace(cp, "error: receiving the snapshot at index %llu failed: %s",
                 (unsigned long long)index, msg.text);
        cp_xfer_send_ack(cp, from, index, id, r->have, CP_XFER_FAILED, offset);
        if (!r->syncing) cp_xfer_recv_abort(cp);
        return;
    }
    r->have += n;
    cp->stats.xfer_bytes_received += n;
    if (cp_xfer_ackable(cp) > r->acked) cp_xfer_recv_ack(cp, CP_XFER_PROGRESS, offset);
}

/* Every byte is in and synced: check the file whole, then tell the leader. */
static void cp_xfer_recv_complete(struct cp *cp) {
    struct cp_xrecv *r = &cp->xrecv;
    uint64_t blob = 0;
    struct errmsg msg;
    int rc = raftstore_recv_check(cp->store, &blob, &msg);
    if (rc != 0) {
        cp->stats.xfer_bad_files++;
        cp_trace(cp,
                 "error: the snapshot at index %llu received from %u is damaged (%s): "
                 "receiving it again",
                 (unsigned long long)r->index, r->from, msg.text);
        uint32_t from = r->from;
        uint64_t index = r->index, id = r->id;
        cp_xfer_recv_abort(cp);
        cp_xfer_send_ack(cp, from, index, id, 0, CP_XFER_UNKNOWN, 0);
        return;
    }
    r->ready = true;
    cp_trace(cp, "cluster: the snapshot at index %llu is in (%llu bytes, blob %llu): checked",
             (unsigned long long)r->index, (unsigned long long)r->total, (unsigned long long)blob);
    cp_xfer_recv_ack(cp, CP_XFER_READY, 0);
}

bool cp_xfer_sync_begin(struct cp *cp, bool log_waiting, struct disk_file **file) {
    struct cp_xrecv *r = &cp->xrecv;
    if (!r->active || r->syncing || r->ready || r->synced == r->have) return false;
    bool complete = r->total != 0 && r->have == r->total;
    if (!complete && r->have - r->synced < (uint64_t)cp_xfer_chunk_bytes(cp) * CP_XFER_SYNC_CHUNKS)
        return false;
    if (log_waiting && r->last_sync_data) return false; /* the log's turn */
    uint64_t written = 0;
    *file = raftstore_recv_file(cp->store, &written);
    ASSERT(written == r->have && *file != NULL);
    r->syncing = true;
    r->syncing_bytes = r->have;
    r->last_sync_data = true;
    return true;
}

void cp_xfer_log_synced(struct cp *cp) {
    cp->xrecv.last_sync_data = false;
}

bool cp_xfer_syncing(const struct cp *cp) {
    return cp->xrecv.syncing;
}

void cp_xfer_synced(struct cp *cp, int error) {
    struct cp_xrecv *r = &cp->xrecv;
    ASSERT(r->syncing);
    r->syncing = false;
    if (error != 0) {
        cp_trace(cp, "error: fsync of a snapshot being received failed: %s", err_text(error));
        cp_xfer_send_ack(cp, r->from, r->index, r->id, 0, CP_XFER_FAILED, 0);
        cp_xfer_recv_abort(cp);
        return;
    }
    r->synced = r->syncing_bytes;
    if (r->total != 0 && r->synced == r->total) {
        cp_xfer_recv_complete(cp);
    } else if (cp_xfer_ackable(cp) > r->acked) {
        cp_xfer_recv_ack(cp, CP_XFER_PROGRESS, 0); /* acks held back for the sync */
    }
}

/* Whether an INSTALL may go to raft: it names the file this node holds, checked, or one
 * its log covers already (raft just answers). Otherwise the leader offers again. */
static bool cp_xfer_install_fits(struct cp *cp, const struct raft_message *m) {
    const struct cp_xrecv *r = &cp->xrecv;
    bool ours = r->ready && r->index == m->index && r->term == m->log_term;
    if (ours || m->index <= raft_commit_index(cp->raft)) return true;
    cp_xfer_send_ack(cp, m->from, m->index, 0, 0, CP_XFER_UNKNOWN, 0);
    return false;
}

/* Steps the INSTALL: raft restores from the file (cp_restore) if it needs it; after that
 * the file is the node's snapshot, or is not needed any more. */
static void cp_xfer_install_now(struct cp *cp, const struct raft_message *m) {
    struct cp_xrecv *r = &cp->xrecv;
    ASSERT(!cp->sync_in_flight);
    uint64_t id = r->index == m->index ? r->id : 0;
    struct raft_event ev = {.kind = RAFT_EVENT_MESSAGE, .message = m};
    struct raft_effects e;
    cp_raft_step(cp, &ev, &e); /* cp_xfer_restore takes the file if raft restores */
    if (r->active && r->index <= raft_commit_index(cp->raft)) cp_xfer_recv_abort(cp);
    if (!r->active) cp_xfer_recv_reset(cp);
    cp_xfer_send_ack(cp, m->from, m->index, id, 0, CP_XFER_INSTALLED, 0);
}

static void cp_xfer_install(struct cp *cp, uint32_t from, const uint8_t *p, size_t bytes) {
    struct raft_message m;
    int rc = raft_msg_decode(p, bytes, &m, cp->decoded);
    if (rc != 0 || m.type != RAFT_MSG_INSTALL_SNAPSHOT || m.from != from || m.to != cp->config.id ||
        m.snapshot_bytes != 0) {
        cp_trace(cp, "dropped a bad InstallSnapshot from %u: %s", from, err_text(rc));
        return;
    }
    if (!cp_xfer_install_fits(cp, &m)) return;
    if (cp->sync_in_flight) {
        /* Installing saves a snapshot, which syncs and may delete WAL segments while the
         * shell still syncs one on its worker thread: it waits for the sync's end
         * (cp_synced, cp_xfer_release); a newer one replaces it. */
        buf_clear(&cp->install_held);
        buf_append(&cp->install_held, p, bytes);
        return;
    }
    cp_xfer_install_now(cp, &m);
}

void cp_xfer_release(struct cp *cp, const struct raft_message *m) {
    if (cp_xfer_install_fits(cp, m)) cp_xfer_install_now(cp, m); /* it may have gone stale */
}

int cp_xfer_restore(struct cp *cp, const struct raft_snapshot_meta *meta, struct errmsg *msg) {
    struct cp_xrecv *r = &cp->xrecv;
    if (!r->ready || r->index != meta->index)
        return errmsg_set(msg, ERR_INVALID, "no received snapshot at index %llu",
                          (unsigned long long)meta->index);
    int rc = raftstore_recv_commit(cp->store, meta, msg);
    r->active = false; /* the store's snapshot now */
    cp->stats.xfer_installed++;
    return rc;
}

void cp_xfer_message(struct cp *cp, uint32_t from, uint8_t kind, const uint8_t *p, size_t bytes) {
    switch (kind) {
    case CP_PEER_SNAP_OFFER:
        if (bytes == CP_XFER_OFFER_BYTES) cp_xfer_offer(cp, from, p);
        return;
    case CP_PEER_SNAP_CHUNK:
        if (bytes > CP_XFER_CHUNK_HEAD_BYTES) cp_xfer_chunk(cp, from, p, bytes);
        return;
    case CP_PEER_SNAP_ACK:
        if (bytes == CP_XFER_ACK_BYTES) cp_xfer_acked(cp, from, p);
        return;
    case CP_PEER_SNAP_INSTALL:
        cp_xfer_install(cp, from, p, bytes);
        return;
    default:
        return;
    }
}

/* After a restart: the part of a file a transfer left, offered again by the leader. */
void cp_xfer_open(struct cp *cp) {
    cp_xfer_recv_reset(cp);
    uint64_t index = 0, have = 0;
    uint64_t distrust =
        (uint64_t)cp_xfer_chunk_bytes(cp) * (CP_XFER_UNSYNCED_CHUNKS + CP_XFER_WINDOW_CHUNKS + 1);
    if (!raftstore_recv_resume(cp->store, distrust, &index, &have)) return;
    if (index <= cp->applied) {
        raftstore_recv_abort(cp->store);
        return;
    }
    cp->xrecv.active = true;
    cp->xrecv.index = index;
    cp->xrecv.have = cp->xrecv.synced = have;
    cp_trace(cp, "cluster: kept %llu bytes of the snapshot at index %llu being received",
             (unsigned long long)have, (unsigned long long)index);
}

void cp_xfer_close(struct cp *cp) {
    while (cp->xfer_count > 0) cp_xfer_stop(cp, &cp->xfers[0], NULL);
}

void cp_xfer_info(const struct cp *cp, struct buf *out) {
    const struct cp_stats *s = &cp->stats;
    buf_appendf(out,
                "snapshot_sends_active:%zu\r\nsnapshot_sends_started:%llu\r\n"
                "snapshot_sends_done:%llu\r\nsnapshot_sends_resumed:%llu\r\n"
                "snapshot_chunks_sent:%llu\r\nsnapshot_bytes_sent:%llu\r\n"
                "snapshot_chunks_resent:%llu\r\nsnapshot_receiving:%d\r\n"
                "snapshot_bytes_received:%llu\r\nsnapshot_installs:%llu\r\n"
                "snapshot_bad_chunks:%llu\r\nsnapshot_bad_files:%llu\r\n",
                cp->xfer_count, (unsigned long long)s->xfer_started,
                (unsigned long long)s->xfer_done, (unsigned long long)s->xfer_resumed,
                (unsigned long long)s->xfer_chunks_sent, (unsigned long long)s->xfer_bytes_sent,
                (unsigned long long)s->xfer_resends, cp->xrecv.active ? 1 : 0,
                (unsigned long long)s->xfer_bytes_received, (unsigned long long)s->xfer_installed,
                (unsigned long long)s->xfer_bad_chunks, (unsigned long long)s->xfer_bad_files);
}
