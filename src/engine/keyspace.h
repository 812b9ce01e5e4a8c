/*
 * Keyspaces: which engine and which replication settings serve a key. A keyspace is
 * matched by glob patterns on the key; the first keyspace in table order that matches
 * wins, and "*" (the keyspace "default" unless told otherwise) catches the rest. A node
 * routes every command by its keys' keyspace; a command whose keys fall in keyspaces of
 * different modes (engines) is refused, as Redis Cluster refuses one that spans slots.
 *
 * The table is cluster metadata: encoded here (format below, mirrored in docs/formats.md),
 * agreed through the CP engine's log, applied the same on every node. A table a node
 * cannot decode must stop the node: nodes would otherwise route one key differently.
 */
#ifndef CAPKV_ENGINE_KEYSPACE_H
#define CAPKV_ENGINE_KEYSPACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/buf.h"
#include "base/err.h"
#include "proto/resp.h"

#define KEYSPACES_MAX 32
#define KEYSPACE_MATCHES_MAX 8
#define KEYSPACE_TEXT_BYTES_MAX 128

/* Table encodings this build reads (version 1: no mode, every keyspace is cp) and the
 * newest, which it writes only when some keyspace is not cp, so that a table of cp
 * keyspaces stays readable by nodes of the release before modes existed. */
#define KEYSPACE_TABLE_VERSION_MIN 1
#define KEYSPACE_TABLE_VERSION_MAX 3
#define KEYSPACE_N_DEFAULT 3 /* AP replicas of a key */
#define KEYSPACE_N_MAX 9     /* NODE_PEERS_MAX */

/* Which engine serves a keyspace. Until the AP engine lands, ap is refused at start-up. */
enum keyspace_mode {
    KEYSPACE_MODE_CP = 1, /* Raft: linearizable; the minority side refuses */
    KEYSPACE_MODE_AP,     /* leaderless: both sides serve, replicas converge */
};
#define KEYSPACE_MODE_COUNT 2

enum keyspace_replication {
    KEYSPACE_REPLICATION_MAJORITY = 1,
    KEYSPACE_REPLICATION_ALL,
    KEYSPACE_REPLICATION_LEADER
};
enum keyspace_consistency {
    KEYSPACE_CONSISTENCY_LINEARIZABLE = 1,
    KEYSPACE_CONSISTENCY_LEASE,
    KEYSPACE_CONSISTENCY_STALE
};

/* AP keyspaces (issue 9): how concurrent writes resolve (docs/engines.md). */
enum keyspace_conflict {
    KEYSPACE_CONFLICT_LWW = 1,       /* last writer wins by hybrid logical clock */
    KEYSPACE_CONFLICT_LWW_WALLCLOCK, /* last writer wins by raw wall clock */
    KEYSPACE_CONFLICT_SIBLINGS,      /* dotted version vectors: VGET / VSET */
    KEYSPACE_CONFLICT_CRDT,          /* counters, add-wins sets, hashes */
};
/* How many of a key's n replicas a read (r) or a write (w) waits for. */
enum keyspace_quorum { KEYSPACE_QUORUM_ONE = 1, KEYSPACE_QUORUM_QUORUM, KEYSPACE_QUORUM_ALL };
/* conflict = crdt: the counters INCR and HINCRBY make (type = pncounter | gcounter). */
enum keyspace_counter { KEYSPACE_COUNTER_PN = 1, KEYSPACE_COUNTER_G };
enum keyspace_handoff { KEYSPACE_HANDOFF_ON = 1, KEYSPACE_HANDOFF_OFF };

/* A keyspace: keys matching any glob in match. Zero fields mean the defaults (cp,
 * majority, linearizable; for ap: lww, n = 3, r = w = quorum, pncounter, handoff on). */
struct keyspace {
    char name[KEYSPACE_TEXT_BYTES_MAX];
    uint32_t match_count;
    char match[KEYSPACE_MATCHES_MAX][KEYSPACE_TEXT_BYTES_MAX];
    enum keyspace_mode mode;
    enum keyspace_replication replication;
    enum keyspace_consistency consistency; /* default read level of the keyspace */
    enum keyspace_conflict conflict;       /* mode = ap only, as the five below */
    uint32_t n;
    enum keyspace_quorum r;
    enum keyspace_quorum w;
    enum keyspace_counter counter;
    enum keyspace_handoff handoff;
};

/* The first keyspace of table (count entries, borrowed) matching key, or NULL. Returns
 * borrowed from table. */
const struct keyspace *keyspace_find(const struct keyspace *table, uint32_t count,
                                     const uint8_t *key, size_t bytes);
/* A keyspace's mode, replication and read level with the defaults filled in. */
enum keyspace_mode keyspace_mode_of(const struct keyspace *ks);
/* An AP keyspace's settings with the defaults filled in (ks not NULL). */
struct keyspace keyspace_ap_of(const struct keyspace *ks);
/* The number of replicas a quorum setting asks for, out of n. */
uint32_t keyspace_quorum_count(enum keyspace_quorum q, uint32_t n);
const char *keyspace_mode_name(enum keyspace_mode mode);
/* Appends the settings of ks with the defaults filled in, as the INI file spells them,
 * separated by sep: "mode=cp replication=majority consistency=linearizable", or for ap
 * "mode=ap conflict=crdt n=3 w=one r=quorum type=pncounter hinted-handoff=on". */
void keyspace_describe(const struct keyspace *ks, char sep, struct buf *out);

/* Encodes table (borrowed) at the lowest version that can carry it. */
void keyspace_table_encode(const struct keyspace *table, uint32_t count, struct buf *out);
/* Decodes into out (KEYSPACES_MAX entries; unchanged on error). ERR_VERSION: a version
 * this build does not know (msg names it and the known ones); ERR_CORRUPT: malformed (msg
 * names the byte offset). p borrowed. */
int keyspace_table_decode(const uint8_t *p, size_t bytes, struct keyspace *out, uint32_t *count,
                          struct errmsg *msg);
bool keyspace_table_equal(const struct keyspace *a, uint32_t na, const struct keyspace *b,
                          uint32_t nb);

struct cmd_spec;

/* Calls fn for every key a command names (Redis's first/last/step positions of spec).
 * argv borrowed for the call. */
void keyspace_command_keys(const struct cmd_spec *spec, uint32_t argc, const struct resp_arg *argv,
                           void (*fn)(void *, const struct resp_arg *), void *ctx);

/* The mode every key of a command falls in. 0: all keys in one mode, *mode set (left as
 * the caller set it when the command names no key). ERR_INVALID: keys span modes; msg
 * names two of them and their keyspaces (the caller answers -CROSSSLOT). */
int keyspace_command_mode(const struct keyspace *table, uint32_t count, const struct cmd_spec *spec,
                          uint32_t argc, const struct resp_arg *argv, enum keyspace_mode *mode,
                          struct errmsg *msg);

#endif
