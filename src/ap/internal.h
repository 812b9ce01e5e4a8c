/* State shared by the files of the AP engine (src/ap); nothing outside src/ap includes it
 * (the rest of the program sees ap/ap.h). docs/engines.md has the design. */
#ifndef CAPKV_AP_INTERNAL_H
#define CAPKV_AP_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "ap/ap.h"
#include "ap/ap_cmd.h"
#include "ap/ap_msg.h"
#include "ap/hints.h"
#include "ap/object.h"
#include "ap/ring.h"
#include "ap/tree.h"
#include "crdt/hlc.h"
#include "engine/logdb.h"

#define AP_PING_MS 100  /* every peer is pinged this often */
#define AP_REACH_MS 500 /* a peer heard from within this long is reachable */
#define AP_TICK_MS 50   /* timeouts, pings, hints, logdb timers */
#define AP_REQUEST_TIMEOUT_MS 2000
#define AP_PENDING_MAX (1u << 16) /* requests in flight at once: past it, -ERR busy */
#define AP_WAL_RESERVE_SLACK 4096
#define AP_MAX_CLOCK_OFFSET_MS HLC_OFFSET_MS_DEFAULT

#define AP_BOOT_SHIFT 28 /* request ids of one boot: 2^28 generations, then the next boot */
#define AP_LIFE_BOOT_SHIFT 40 /* lives (object.h): boot << 40, then counted up */

#define AP_HINTS_INFLIGHT_MAX 64 /* hints handed to one replica and not yet acknowledged */

/* Anti-entropy (ap_ae.c). An exchange is one arc with one peer; at most one in flight per
 * peer (this node initiating). */
#define AP_AE_MS 50 /* in sync: this node starts one exchange this often (an arc in 2 KB) */
#define AP_AE_SWEEP_MS 50         /* sweeping a peer's arcs: at most one exchange this often... */
#define AP_AE_CHAIN_MS 5          /* ...or this often while exchanges find differences */
#define AP_AE_TIMEOUT_MS 500      /* an exchange unanswered this long is given up... */
#define AP_AE_GAP_MS 100          /* ...or whose answers stopped coming for this long */
#define AP_AE_SLICE_KEYS 16384    /* keys listed in one slice (past it, the next bucket waits) */
#define AP_AE_PUSH_KEYS_MAX 16384 /* objects sent to one peer per exchange */
#define AP_AE_PUSH_BYTES_MAX (16u << 20) /* their bytes (keys and objects) */

/* One (arc, bucket) of the key index: the keys of the db in it, each u32 le length then
 * the bytes, in the order they were first saved. A delete is a tombstone object, so a key
 * leaves only when the db drops it (handed off to its replicas after a ring change). */
struct ap_ae_slot {
    struct buf keys;
    uint32_t count;
};

/* Anti-entropy with one peer. */
struct ap_ae_peer {
    bool reachable;       /* as of the last tick: a return starts a sweep */
    bool active;          /* an exchange this node started is in flight */
    bool differed;        /* it found buckets that differ */
    uint32_t arc;         /* its arc */
    uint32_t cursor;      /* the next arc to try with this peer */
    uint32_t sweep_left;  /* exchanges still to run back to back (0: idle pace) */
    uint64_t started_ms;  /* monotonic */
    uint64_t deadline_ms; /* monotonic: given up then */
    uint64_t next_ms;     /* the next sweep exchange not before */
    uint32_t diff_count;  /* the differing buckets of the arc... */
    uint32_t diff_at;     /* ...listed up to here */
    uint32_t answers_due; /* AE_KEYS of the slice not answered yet (by an AE_PULL) */
    uint32_t sent_keys;   /* objects sent to it since an exchange began (either way) */
    uint64_t sent_bytes;
    bool repaired; /* an AE PUT from it changed this node's store since the exchange began */
    uint8_t diff[AP_TREE_BUCKETS];
};

struct ap_ae {
    struct ap_ae_slot *slots; /* owned: the tree's arc_count × AP_TREE_BUCKETS */
    uint32_t slot_count;
    struct ap_ae_peer peers[NODE_PEERS_MAX]; /* as ap->peers */
    uint32_t peer_cursor;                    /* the next peer of an idle exchange */
    uint64_t next_ms;                        /* the next idle exchange */
    uint64_t window;       /* rotates the part of an oversized bucket that is listed */
    struct resp_arg *keys; /* owned, AP_MSG_KEYS_MAX: lists being sent */
    uint64_t *digests;     /* owned, AP_MSG_KEYS_MAX */
    uint64_t *listed;      /* owned, AP_MSG_KEYS_MAX: key hashes a peer listed, sorted */
};

/* Handing off the keys this node holds but no longer replicates (ap_members.c): a scan
 * of the db, a bounded number in flight, each removed here once every replica has it. */
struct ap_handoff {
    bool active;       /* a pass is running */
    bool again;        /* a key of this pass could not be handed: another pass follows */
    uint64_t cursor;   /* db_scan's */
    uint64_t next_ms;  /* monotonic: the next pass not before */
    uint32_t inflight; /* AP_PENDING_HANDOFF requests */
    struct buf keys;   /* scratch: keys the scan found, u32 length then bytes */
};

/* After a ring change the tree and the key index are rebuilt from the db a slice at a
 * time (ap_members.c), so no step holds the loop for long; meanwhile anti-entropy waits,
 * and a key saved or removed is marked dirty instead (the slices skip it; it is added as
 * it is at the end). */
struct ap_rebuild {
    bool active;
    uint64_t cursor;  /* db_scan's */
    struct db *dirty; /* owned while active: the keys, empty values */
};

/* Collecting tombstones (ap_reap.c): a scan of the db, a bounded number of rounds in
 * flight. */
struct ap_reap {
    uint64_t cursor;   /* db_scan's */
    uint64_t next_ms;  /* monotonic: the next pass not before */
    uint32_t inflight; /* AP_PENDING_REAP rounds */
    struct buf keys;   /* scratch: keys the scan found, u32 length then bytes, then digest */
};

struct ap_peer {
    uint32_t id;
    uint64_t heard_ms; /* monotonic; 0: never */
    uint64_t ping_seq;
    uint64_t hint_cursor;     /* where the hints held for it are being scanned */
    uint32_t hints_inflight;  /* handed, not acknowledged */
    /* FORWARDs from it already run, by the sender's slot (the low 16 bits of its req):
     * the highest req seen there. A FORWARD at or below it is a duplicate or stale. */
    uint64_t *forwards_seen;
    uint32_t forwards_seen_cap;
};

enum ap_pending_kind {
    AP_PENDING_WRITE = 1, /* this node coordinates a write: waits for w acknowledgements */
    AP_PENDING_READ,      /* this node coordinates a read: waits for r replies */
    AP_PENDING_FORWARD,   /* this node forwarded a client's command to a replica */
    AP_PENDING_HINT,      /* a hint handed to the replica it was held for */
    AP_PENDING_BATCH,     /* a client's pipeline: its commands' replies, in order */
    AP_PENDING_HANDOFF,   /* a key this node no longer replicates, sent to its replicas */
    AP_PENDING_SESSION,   /* a resumed session's command waits for this replica to catch up */
    AP_PENDING_REAP,      /* a tombstone to collect: every replica asked whether it holds it */
};

/* The lists a pending request is on, by slot index (AP_SLOT_NONE ends them): every used
 * one in the order it was made, so deadlines are in order (AP_LIST_AGE); those waiting for
 * this node's log to reach self_lsn, in lsn order (AP_LIST_DURABLE). Each step looks at
 * the heads only. Instead of AP_LIST_AGE, a session's waits and the forwards that carry
 * one (their deadlines add session-wait) are on AP_LIST_SESSION, walked whole each tick. */
enum { AP_LIST_AGE = 0, AP_LIST_DURABLE = 1, AP_LIST_SESSION = 2, AP_LISTS = 3 };
#define AP_SLOT_NONE UINT32_MAX
struct ap_link {
    uint32_t prev, next;
    bool linked;
};
struct ap_list {
    uint32_t head, tail;
};

/* A request in flight. Its slot index is the low 16 bits of req (the id in messages), so
 * a reply finds it in O(1); the high bits tell a reused slot from the old request. */
struct ap_pending {
    bool used;
    enum ap_pending_kind kind;
    uint64_t req;
    uint64_t client;      /* the node's request id to answer, or 0 (origin is a peer) */
    uint32_t origin;      /* a peer whose FORWARD this answers (client 0), else 0 */
    uint64_t origin_req;  /* that peer's req */
    uint64_t deadline_ms; /* monotonic */
    uint32_t need, got;   /* acknowledgements (write) or replies (read) */
    uint64_t self_lsn;    /* write: this replica's record, counted once durable; read: the
                           * log's end when it read, answered once durable */
    struct ap_link links[AP_LISTS];
    uint32_t target;      /* hint: the replica it is handed to; forward: the replica asked */
    uint64_t digest;      /* hint: what was handed */
    bool self_counted;
    struct buf reply;   /* write: the reply to give once acknowledged; session: the key's
                         * floor (an entry, engine/seen.h) */
    struct buf seen;    /* the keys its answer reflects, for the client's session (seen.h) */
    struct buf command; /* read: the command (cmdlist-like: argc, then len+bytes) */
    int proto;
    int level, w, r;   /* session: the origin's, to run the command with once caught up */
    uint64_t retry_ms; /* session: monotonic, the next round of asking not before */
    int combine; /* batch: how its replies make the answer (ap_coord.c, AP_COMBINE_*) */
    enum keyspace_conflict conflict; /* read: the key's policy (the replies' clock check) */
    struct ap_object merged; /* read: what the replies held, merged */
    /* write: the replicas sent the state (each acknowledgement counts once); read: the
     * replicas asked */
    uint32_t asked_count;
    uint32_t asked[NODE_PEERS_MAX];
    /* read: 0 none yet, 1 no object, else the object's digest (read repair); write: 1 once
     * that replica acknowledged */
    uint64_t answered_digest[NODE_PEERS_MAX];
    struct buf key;
};

struct ap_stats {
    uint64_t writes, reads, forwards, noquorum, timeouts, read_repairs, clock_refusals,
        bad_payloads, siblings_over_warning, disk_full_refusals, hints_handed,
        forwards_dropped,      /* FORWARDs run already (duplicates) or stale */
        ring_changes,          /* member lists that changed the ring */
        keys_handed_off,       /* keys no longer replicated here, on their replicas, removed */
        handoff_timeouts,      /* handoffs not acknowledged by every replica in time */
        session_waits,         /* commands of resumed sessions that waited for this replica */
        session_timeouts,      /* ...and gave up after session-wait */
        tombstones_collected,  /* keys removed here because every replica held them deleted */
        reap_asks;             /* rounds this node started to collect one */
    uint64_t ae_exchanges;     /* exchanges this node started */
    uint64_t ae_keys_repaired; /* keys whose object changed here by an anti-entropy PUT */
    uint64_t ae_keys_sent;     /* objects this node sent by anti-entropy */
    uint64_t ae_keys_listed;   /* keys this node listed in AE_KEYS */
    uint64_t ae_timeouts;      /* exchanges given up */
};

struct ap {
    struct engine base;
    struct engine_config config;
    struct logdb store; /* key -> encoded ap_object, as a string value */
    uint64_t actor;
    uint32_t epoch;
    bool fresh;        /* the data directory had no epoch file: a new incarnation */
    bool table_agreed; /* the cluster's keyspace table arrived (handoff waits for it) */
    struct hlc hlc;  /* conflict = lww, crdt */
    struct hlc wall; /* lww-wallclock: raw wall clock, made unique per node, never observes */
    struct ap_ring ring;
    struct ap_tree tree;
    struct ap_peer peers[NODE_PEERS_MAX];
    uint32_t peer_count; /* members other than this node */
    struct ap_hints hints;
    struct ap_pending *pending; /* owned; pending_cap slots */
    uint32_t pending_cap, pending_count;
    uint32_t *pending_free; /* owned: the unused slots, a stack (the lowest on top) */
    uint32_t pending_free_count;
    struct ap_list lists[AP_LISTS];
    /* The high 48 bits of request ids: boot << AP_BOOT_SHIFT, then counted up, so no id
     * repeats one of an earlier start (a late answer cannot match a new request). */
    uint64_t pending_generation;
    uint64_t boot;       /* starts of this data directory (the epoch file) */
    uint64_t next_life;  /* the life the next copy new to this node's writes gets */
    uint64_t life_floor; /* the first life of this start (older ones get a new one) */
    uint64_t next_tick_ms, next_ping_ms;
    struct buf ops;    /* the current write's op records */
    struct buf encode; /* scratch */
    struct buf sends;  /* payloads built since the last FLUSH: to u32, len u32, bytes */
    struct node_peer_send *send_list;
    size_t send_list_cap;
    struct buf held; /* acknowledgements waiting for the log: lsn u64, to u32, len u32, bytes */
    struct buf reply_data; /* replies of this step: data (and seen keys) for reply_list */
    struct buf seen_out;   /* a submit's answer: the keys it reflects (engine/seen.h) */
    struct engine_reply *reply_list;
    size_t reply_count, reply_cap;
    struct resp_arg *args; /* decode room for FORWARD / AE keys */
    struct buf pipeline_args; /* decode room for one command of a pipeline */
    struct buf multikey;      /* a multi-key command as one command per key (cmdlist.h) */
    uint64_t *digests;
    struct ap_ae ae;
    /* Per arc of the ring (owned, ring.point_count): the peers (bits by index in peers)
     * this node, new to the arc's keys since the last ring change, has not yet found equal
     * by anti-entropy; while any is left its own copy does not count toward r. */
    uint16_t *filling;
    uint32_t filling_count; /* arcs with a bit left */
    struct ap_handoff handoff;
    struct ap_rebuild rebuild;
    struct ap_reap reap;
    struct ap_stats stats;
};

/* ap_store.c: objects in the logged db, the epoch file */
int ap_store_open(struct ap *ap, uint64_t now_ms, struct errmsg *msg);
/* Counts a start (or a boot's request ids used up) in the epoch file, durably, and starts
 * request ids at the new boot. */
int ap_store_next_boot(struct ap *ap, struct errmsg *msg);
/* Loads key's object into o (initialized); false when the db has none. */
bool ap_store_load(struct ap *ap, const uint8_t *key, size_t bytes, struct ap_object *o);
/* Writes o as key's object (logged; returns the record's lsn), updating the tree. Returns 0
 * when the disk is full (nothing written). */
uint64_t ap_store_save(struct ap *ap, const uint8_t *key, size_t bytes, const struct ap_object *o);
/* Rebuilds the tree and the anti-entropy key index from the db, in one go (at open). */
void ap_store_rebuild_tree(struct ap *ap);
/* Adds one db entry to the tree and the key index (a rebuild's step), once: an entry a
 * scan returns again (db_scan may, across a resize) is skipped. */
void ap_store_tree_add(struct ap *ap, struct db_entry *e);
/* The tree digest of key's stored object, 0 when the db has none. */
uint64_t ap_store_digest(struct ap *ap, const uint8_t *key, size_t bytes);

/* A pipeline's command answers to a pseudo client: this bit, its index << 16, the
 * pipeline's slot (ap_reply hands it to ap_coord_batch_reply). */
#define AP_BATCH_BIT (1ull << 63)

/* ap_engine.c: sends, replies, reachability */
#define AP_PEER_NONE UINT32_MAX
/* Peer id's index in ap->peers (AP_PEER_NONE: not a peer), or the peer itself (NULL). */
uint32_t ap_peer_index(const struct ap *ap, uint32_t id);
struct ap_peer *ap_peer_find(struct ap *ap, uint32_t id);
void ap_send(struct ap *ap, uint32_t to, const struct ap_msg *m);
/* Sends m to `to` once the log is durable up to lsn (a replica's acknowledgement). */
void ap_send_after(struct ap *ap, uint32_t to, uint64_t lsn, const struct ap_msg *m);
void ap_reply(struct ap *ap, uint64_t client, const uint8_t *data, size_t bytes);
/* The same, with the keys the reply reflects for the client's session (engine/seen.h). */
void ap_reply_seen(struct ap *ap, uint64_t client, const uint8_t *data, size_t bytes,
                   const uint8_t *seen, size_t seen_bytes);
bool ap_reachable(const struct ap *ap, uint32_t node);
uint64_t ap_write_ts(struct ap *ap, const struct keyspace *ks);
void ap_trace(const struct ap *ap, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Where a request comes from and goes back to. */
struct ap_origin {
    uint64_t client; /* the node's request id, or 0 */
    uint32_t peer;   /* or the peer that forwarded it */
    uint64_t peer_req;
    int proto;
    int level;
    int w, r; /* QUORUM: enum keyspace_quorum asked for, 0: the keyspace's */
    /* SESSION RESUME: what the session saw of AP keys (engine/seen.h, borrowed): a command
     * on one of them waits until this replica holds it (ap_session.c) */
    const uint8_t *floor;
    size_t floor_bytes;
};

/* Who coordinates: the key's replicas (walk[0..n)) and fallbacks, in walk order. */
struct ap_plan {
    uint32_t walk[NODE_PEERS_MAX];
    uint32_t count; /* members */
    uint32_t n;     /* replicas: walk[0..n) */
    uint64_t hash;  /* the key's, on the ring */
    bool self_replica;
    struct keyspace ks;
};

/* ap_coord.c: requests this node coordinates or forwards */
void ap_plan(struct ap *ap, const struct resp_arg *key, struct ap_plan *pl);
/* One command from a client of this node or from a peer. True when answered in out (lsn:
 * the record the answer waits for; seen: the keys it reflects, appended). */
bool ap_coordinate(struct ap *ap, const struct ap_origin *from, uint32_t argc,
                   const struct resp_arg *argv, struct buf *out, uint64_t *lsn, struct buf *seen);
/* A FORWARD's command answered at once: FORWARD_REPLY to peer once what it saw is
 * durable (lsn: the record it wrote, if any). */
void ap_coord_answer_peer(struct ap *ap, uint32_t peer, uint64_t req, const struct buf *reply,
                          uint64_t lsn, const struct buf *seen);
/* Coordinates a command for o (a client of this node, or a peer's FORWARD) and answers
 * o if that is done at once (else the request answers it later). */
void ap_coord_run(struct ap *ap, const struct ap_origin *o, uint32_t argc,
                  const struct resp_arg *argv);
/* A pending request's deadline passed: its -TIMEOUT to its origin (not freed). */
void ap_coord_timed_out(struct ap *ap, struct ap_pending *p);
/* Keeps a command's arguments (argc u32, then len u32 and bytes each), and back. */
void ap_keep_command(struct buf *b, uint32_t argc, const struct resp_arg *argv);
uint32_t ap_command_args(const struct buf *b, struct resp_arg *argv, uint32_t max);
void ap_submit(struct ap *ap, const struct engine_request *req, struct buf *out,
               struct engine_answer *answer);
void ap_coord_message(struct ap *ap, uint32_t from, const struct ap_msg *m);
/* A FORWARD from a peer: this node coordinates the command and answers FORWARD_REPLY. */
void ap_coord_forwarded(struct ap *ap, uint32_t from, const struct ap_msg *m);
/* The keyspace of key, AP settings filled in. */
struct keyspace ap_keyspace_of(const struct ap *ap, const uint8_t *key, size_t bytes);
void ap_coord_init(struct ap *ap);     /* empty lists, before any request */
/* One of a pipeline's commands answered (client: its pseudo client, AP_BATCH_BIT), with
 * the keys it reflects (seen, seen_bytes: engine/seen.h). */
void ap_coord_batch_reply(struct ap *ap, uint64_t client, const uint8_t *data, size_t bytes,
                          const uint8_t *seen, size_t seen_bytes);
void ap_coord_progress(struct ap *ap); /* durability moved or time passed */
void ap_coord_close(struct ap *ap);
/* Hands the hints held for reachable replicas over, a window at a time. */
void ap_coord_hand_hints(struct ap *ap);

/* Pending requests (ap_coord.c). new may move the table: hold slots, not pointers. */
void ap_list_push(struct ap *ap, struct ap_pending *p, int which);
void ap_list_unlink(struct ap *ap, struct ap_pending *p, int which);
struct ap_pending *ap_list_head(struct ap *ap, int which);
struct ap_pending *ap_pending_new(struct ap *ap, enum ap_pending_kind kind);
struct ap_pending *ap_pending_find(struct ap *ap, uint64_t req);
/* The index in p->asked of `from`, or asked_count when it was not asked. */
uint32_t ap_asked_index(const struct ap_pending *p, uint32_t from);
void ap_pending_free(struct ap *ap, struct ap_pending *p);

/* ap_session.c: sessions (SESSION RESUME) over AP keys */
/* Appends key's entry to seen: what its object o (as a reply reflects it) was written by. */
void ap_session_seen(struct buf *seen, const uint8_t *key, size_t bytes, const struct ap_object *o);
/* Whether from's session saw more of key than this node's replica holds (it must wait). */
bool ap_session_behind(struct ap *ap, const struct ap_origin *from, const struct resp_arg *key);
/* The command waits (a SESSION pending) until this replica holds what from's session saw
 * of its key: the key's other replicas are asked, again and again, until then or until
 * session-wait passed (-TIMEOUT). True when answered in out (busy). */
bool ap_session_wait(struct ap *ap, const struct ap_plan *pl, const struct ap_origin *from,
                     uint32_t argc, const struct resp_arg *argv, struct buf *out);
/* A replica's GET_REPLY to a session's wait. */
void ap_session_reply(struct ap *ap, uint32_t from, struct ap_pending *p, const struct ap_msg *m);
/* Deadlines and rounds of AP_LIST_SESSION (every engine tick). */
void ap_session_tick(struct ap *ap);

/* ap_reap.c: collecting tombstones once every replica holds the same one */
void ap_reap_init(struct ap *ap);
void ap_reap_deinit(struct ap *ap);
/* A slice of the scan and the rounds it starts (every engine tick). */
void ap_reap_tick(struct ap *ap);
/* REAP_ASK or REAP from a peer (m borrowed). */
void ap_reap_message(struct ap *ap, uint32_t from, const struct ap_msg *m);
/* A replica's REAP_STATE to a round (m NULL: its deadline passed). */
void ap_reap_answer(struct ap *ap, uint32_t from, struct ap_pending *p, const struct ap_msg *m);

/* ap_members.c: the ring follows the cluster's members */
void ap_members_init(struct ap *ap);
void ap_members_deinit(struct ap *ap);
/* The cluster's members (this node included): a new ring when they changed, the keys this
 * node no longer replicates handed off, the arcs it is new to filled by anti-entropy. */
void ap_members_change(struct ap *ap, const uint32_t *ids, uint32_t count);
/* Whether a ring change's rebuild of the tree is under way (anti-entropy waits). */
bool ap_members_rebuilding(const struct ap *ap);
/* key was saved here by a PUT or a read repair (a coordinator's own write is always on a
 * replica): if this node no longer replicates it (after a ring change), a handoff pass
 * follows. */
void ap_members_saved(struct ap *ap, const uint8_t *key, size_t bytes);
/* key was saved or removed while the tree is rebuilt: it is added at the end. */
void ap_members_dirty(struct ap *ap, const uint8_t *key, size_t bytes);
/* A node that joins with a new data directory: every arc it replicates is to fill, as if
 * it had just been added to a ring without it. */
void ap_members_fill_all(struct ap *ap);
/* Whether this node is still receiving the keys of arc (its copy counts toward no r). */
bool ap_members_filling(const struct ap *ap, uint32_t arc);
/* Anti-entropy found this node and peer index i equal on arc. */
void ap_members_synced(struct ap *ap, uint32_t arc, uint32_t i);
/* A slice of a new ring's tree rebuild, at every engine tick while one is under way. */
void ap_members_rebuild_tick(struct ap *ap);
/* The handoff scan, every tick. */
void ap_members_tick(struct ap *ap);
/* A replica's PUT_ACK (or the deadline: m NULL) of a handoff. */
void ap_members_handoff_answer(struct ap *ap, uint32_t from, struct ap_pending *p,
                               const struct ap_msg *m);
/* ap_store.c: removes key's object (logged), from the tree and the key index; false when
 * the disk is full (nothing removed). */
bool ap_store_remove(struct ap *ap, const uint8_t *key, size_t bytes);

/* ap_replica.c: what this node does as a key's replica */
void ap_replica_message(struct ap *ap, uint32_t from, const struct ap_msg *m);
/* The HLC's rule (hlc.h) for a state from peer `from` (a PUT, or a GET_REPLY this node
 * merges): one whose newest timestamp is more than max-clock-offset ahead is refused,
 * logged and counted; false then. */
bool ap_replica_clock_ok(struct ap *ap, enum keyspace_conflict conflict, const struct ap_object *o,
                         uint32_t from);

/* ap_ae.c: anti-entropy exchanges between the replicas of an arc */
void ap_ae_init(struct ap *ap); /* after the ring is built; the key index empty */
void ap_ae_deinit(struct ap *ap);
/* Empties the key index, sized for the tree (ap_store_rebuild_tree). */
void ap_ae_index_reset(struct ap *ap);
/* key (borrowed) is new to the db: it joins the index of its arc and bucket. */
void ap_ae_index_add(struct ap *ap, uint32_t arc, uint64_t key_hash, const uint8_t *key,
                     size_t bytes);
/* Whether key is in the index of its arc and bucket (a scan may visit a key twice). */
bool ap_ae_index_has(struct ap *ap, uint32_t arc, uint64_t key_hash, const uint8_t *key,
                     size_t bytes);
/* key (borrowed) left the db: it leaves the index of its arc and bucket. */
void ap_ae_index_remove(struct ap *ap, uint32_t arc, uint64_t key_hash, const uint8_t *key,
                        size_t bytes);
/* The replicas of an arc for anti-entropy: the largest n of the AP keyspaces. */
uint32_t ap_ae_replica_count(const struct ap *ap);
/* The ring changed: exchanges in flight are dropped and every peer is swept. */
void ap_ae_ring_changed(struct ap *ap);
/* An anti-entropy PUT from peer `from` changed this node's store (filling: an exchange
 * that changed nothing here shows this node holds what the peer holds). */
void ap_ae_repaired_by(struct ap *ap, uint32_t from);
/* Timeouts, returning peers, the exchanges due (every engine tick). */
void ap_ae_tick(struct ap *ap);
/* When ap_ae_tick next has something to do (monotonic ms). */
uint64_t ap_ae_wake_at(const struct ap *ap);
/* AE_BUCKETS, AE_KEYS, AE_PULL from a peer (m borrowed). */
void ap_ae_message(struct ap *ap, uint32_t from, const struct ap_msg *m);

#endif
