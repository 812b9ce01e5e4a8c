/*
 * Keyspace tables (keyspace.h): matching keys, the modes of a command's keys, and the
 * table's encoding. The encoding is cluster metadata, so decoding is strict: every byte is
 * accounted for, every field in range, and a version this build does not know is named.
 *
 * Table encoding (little endian; docs/formats.md):
 *   version:u8  1 or 2
 *   count:u8    at most KEYSPACES_MAX
 *   count times:
 *     name        len:u8 bytes (len < KEYSPACE_TEXT_BYTES_MAX, no NUL)
 *     match_count:u8, then match_count globs (len:u8 bytes)
 *     replication:u8 (1 majority, 2 all, 3 leader)
 *     consistency:u8 (1 linearizable, 2 lease, 3 stale)
 *     mode:u8 (1 cp, 2 ap)                        version 2 only; version 1 means cp
 */
#include "engine/keyspace.h"

#include <stdlib.h>
#include <string.h>

#include "base/assert.h"
#include "base/util.h"
#include "cmd/cmd.h"

const struct keyspace *keyspace_find(const struct keyspace *table, uint32_t count,
                                     const uint8_t *key, size_t bytes) {
    ASSERT(count <= KEYSPACES_MAX);
    for (uint32_t i = 0; i < count; i++) {
        const struct keyspace *ks = &table[i];
        ASSERT(ks->match_count <= KEYSPACE_MATCHES_MAX);
        for (uint32_t m = 0; m < ks->match_count; m++) {
            const char *glob = ks->match[m];
            if (util_glob_match((const uint8_t *)glob, strlen(glob), key, bytes)) return ks;
        }
    }
    return NULL;
}

enum keyspace_mode keyspace_mode_of(const struct keyspace *ks) {
    if (ks == NULL || ks->mode == 0) return KEYSPACE_MODE_CP;
    ASSERT(ks->mode == KEYSPACE_MODE_CP || ks->mode == KEYSPACE_MODE_AP);
    return ks->mode;
}

struct keyspace keyspace_ap_of(const struct keyspace *ks) {
    struct keyspace k = *ks;
    if (k.conflict == 0) k.conflict = KEYSPACE_CONFLICT_LWW;
    if (k.n == 0) k.n = KEYSPACE_N_DEFAULT;
    if (k.r == 0) k.r = KEYSPACE_QUORUM_QUORUM;
    if (k.w == 0) k.w = KEYSPACE_QUORUM_QUORUM;
    if (k.counter == 0) k.counter = KEYSPACE_COUNTER_PN;
    if (k.handoff == 0) k.handoff = KEYSPACE_HANDOFF_ON;
    ASSERT(k.n >= 1 && k.n <= KEYSPACE_N_MAX);
    return k;
}

uint32_t keyspace_quorum_count(enum keyspace_quorum q, uint32_t n) {
    ASSERT(n >= 1);
    if (q == KEYSPACE_QUORUM_ONE) return 1;
    return q == KEYSPACE_QUORUM_ALL ? n : n / 2 + 1;
}

const char *keyspace_mode_name(enum keyspace_mode mode) {
    return mode == KEYSPACE_MODE_AP ? "ap" : "cp";
}

void keyspace_describe(const struct keyspace *ks, char sep, struct buf *out) {
    static const char *repl[] = {"", "majority", "all", "leader"};
    static const char *level[] = {"", "linearizable", "lease", "stale"};
    static const char *conflict[] = {"", "lww", "lww-wallclock", "siblings", "crdt"};
    static const char *quorum[] = {"", "one", "quorum", "all"};
    if (keyspace_mode_of(ks) == KEYSPACE_MODE_CP) {
        uint32_t r = ks->replication != 0 ? ks->replication : KEYSPACE_REPLICATION_MAJORITY;
        uint32_t l = ks->consistency != 0 ? ks->consistency : KEYSPACE_CONSISTENCY_LINEARIZABLE;
        buf_appendf(out, "mode=cp%creplication=%s%cconsistency=%s", sep, repl[r], sep, level[l]);
        return;
    }
    struct keyspace k = keyspace_ap_of(ks);
    buf_appendf(out, "mode=ap%cconflict=%s%cn=%u%cw=%s%cr=%s%ctype=%s%chinted-handoff=%s", sep,
                conflict[k.conflict], sep, k.n, sep, quorum[k.w], sep, quorum[k.r], sep,
                k.counter == KEYSPACE_COUNTER_G ? "gcounter" : "pncounter", sep,
                k.handoff == KEYSPACE_HANDOFF_ON ? "on" : "off");
}

static void keyspace_put_text(struct buf *out, const char *text) {
    size_t len = strnlen(text, KEYSPACE_TEXT_BYTES_MAX - 1);
    buf_append_byte(out, (uint8_t)len);
    buf_append(out, text, len);
}

/* 1 when every keyspace is cp (readable by the release before modes); 3 otherwise (2, a
 * mode byte without the AP settings, is read but no longer written). */
static uint8_t keyspace_table_version(const struct keyspace *table, uint32_t count) {
    for (uint32_t i = 0; i < count; i++)
        if (keyspace_mode_of(&table[i]) != KEYSPACE_MODE_CP) return 3;
    return 1;
}

static void keyspace_put_ap(struct buf *out, const struct keyspace *ks) {
    struct keyspace k = keyspace_ap_of(ks);
    uint8_t fields[6] = {(uint8_t)k.conflict, (uint8_t)k.n,       (uint8_t)k.r,
                         (uint8_t)k.w,        (uint8_t)k.counter, (uint8_t)k.handoff};
    buf_append(out, fields, sizeof(fields));
}

void keyspace_table_encode(const struct keyspace *table, uint32_t count, struct buf *out) {
    ASSERT(count <= KEYSPACES_MAX);
    uint8_t version = keyspace_table_version(table, count);
    buf_append_byte(out, version);
    buf_append_byte(out, (uint8_t)count);
    for (uint32_t i = 0; i < count; i++) {
        const struct keyspace *ks = &table[i];
        keyspace_put_text(out, ks->name);
        buf_append_byte(out, (uint8_t)ks->match_count);
        for (uint32_t m = 0; m < ks->match_count; m++) keyspace_put_text(out, ks->match[m]);
        buf_append_byte(
            out, (uint8_t)(ks->replication != 0 ? ks->replication : KEYSPACE_REPLICATION_MAJORITY));
        buf_append_byte(out, (uint8_t)(ks->consistency != 0 ? ks->consistency
                                                            : KEYSPACE_CONSISTENCY_LINEARIZABLE));
        if (version >= 2) buf_append_byte(out, (uint8_t)keyspace_mode_of(ks));
        if (version >= 3 && keyspace_mode_of(ks) == KEYSPACE_MODE_AP) keyspace_put_ap(out, ks);
    }
}

struct keyspace_reader {
    const uint8_t *p;
    size_t bytes;
    size_t pos;
    uint8_t version;
};

static bool keyspace_get_text(struct keyspace_reader *r, char *out) {
    if (r->pos >= r->bytes) return false;
    size_t len = r->p[r->pos];
    if (len >= KEYSPACE_TEXT_BYTES_MAX || r->bytes - r->pos - 1 < len) return false;
    memcpy(out, r->p + r->pos + 1, len);
    out[len] = '\0';
    r->pos += 1 + len;
    return memchr(out, '\0', len) == NULL;
}

static bool keyspace_get_u8(struct keyspace_reader *r, uint8_t min, uint8_t max, uint8_t *out) {
    if (r->pos >= r->bytes) return false;
    *out = r->p[r->pos++];
    return *out >= min && *out <= max;
}

/* An AP keyspace's settings (version 3), each in its range. */
static bool keyspace_decode_ap(struct keyspace_reader *r, struct keyspace *ks) {
    uint8_t v[6];
    static const uint8_t lo[6] = {KEYSPACE_CONFLICT_LWW, 1,
                                  KEYSPACE_QUORUM_ONE,   KEYSPACE_QUORUM_ONE,
                                  KEYSPACE_COUNTER_PN,   KEYSPACE_HANDOFF_ON};
    static const uint8_t hi[6] = {KEYSPACE_CONFLICT_CRDT, KEYSPACE_N_MAX,     KEYSPACE_QUORUM_ALL,
                                  KEYSPACE_QUORUM_ALL,    KEYSPACE_COUNTER_G, KEYSPACE_HANDOFF_OFF};
    for (int i = 0; i < 6; i++)
        if (!keyspace_get_u8(r, lo[i], hi[i], &v[i])) return false;
    ks->conflict = (enum keyspace_conflict)v[0];
    ks->n = v[1];
    ks->r = (enum keyspace_quorum)v[2];
    ks->w = (enum keyspace_quorum)v[3];
    ks->counter = (enum keyspace_counter)v[4];
    ks->handoff = (enum keyspace_handoff)v[5];
    return true;
}

static bool keyspace_decode_one(struct keyspace_reader *r, struct keyspace *ks) {
    memset(ks, 0, sizeof(*ks));
    uint8_t n = 0;
    if (!keyspace_get_text(r, ks->name)) return false;
    if (!keyspace_get_u8(r, 0, KEYSPACE_MATCHES_MAX, &n)) return false;
    ks->match_count = n;
    for (uint32_t m = 0; m < ks->match_count; m++)
        if (!keyspace_get_text(r, ks->match[m])) return false;
    if (!keyspace_get_u8(r, KEYSPACE_REPLICATION_MAJORITY, KEYSPACE_REPLICATION_LEADER, &n))
        return false;
    ks->replication = (enum keyspace_replication)n;
    if (!keyspace_get_u8(r, KEYSPACE_CONSISTENCY_LINEARIZABLE, KEYSPACE_CONSISTENCY_STALE, &n))
        return false;
    ks->consistency = (enum keyspace_consistency)n;
    n = KEYSPACE_MODE_CP;
    if (r->version >= 2 && !keyspace_get_u8(r, KEYSPACE_MODE_CP, KEYSPACE_MODE_AP, &n))
        return false;
    ks->mode = (enum keyspace_mode)n;
    if (r->version < 3 || ks->mode != KEYSPACE_MODE_AP) return true;
    return keyspace_decode_ap(r, ks);
}

int keyspace_table_decode(const uint8_t *p, size_t bytes, struct keyspace *out, uint32_t *count,
                          struct errmsg *msg) {
    if (bytes < 2) return errmsg_set(msg, ERR_CORRUPT, "keyspace table of %zu bytes", bytes);
    if (p[0] < KEYSPACE_TABLE_VERSION_MIN || p[0] > KEYSPACE_TABLE_VERSION_MAX) {
        return errmsg_set(msg, ERR_VERSION,
                          "keyspace table version %u; this build knows versions %d to %d", p[0],
                          KEYSPACE_TABLE_VERSION_MIN, KEYSPACE_TABLE_VERSION_MAX);
    }
    if (p[1] > KEYSPACES_MAX)
        return errmsg_set(msg, ERR_CORRUPT, "keyspace table of %u keyspaces (at most %d)", p[1],
                          KEYSPACES_MAX);
    struct keyspace *table = base_calloc(KEYSPACES_MAX, sizeof(*table));
    struct keyspace_reader r = {.p = p, .bytes = bytes, .pos = 2, .version = p[0]};
    bool ok = true;
    uint32_t i = 0;
    while (i < p[1] && (ok = keyspace_decode_one(&r, &table[i]))) i++;
    int rc = 0;
    if (!ok) {
        rc = errmsg_set(msg, ERR_CORRUPT, "keyspace %u of the table is malformed at byte %zu", i,
                        r.pos);
    } else if (r.pos != bytes) {
        rc = errmsg_set(msg, ERR_CORRUPT, "%zu bytes after the keyspace table's end at byte %zu",
                        bytes - r.pos, r.pos);
    } else {
        *count = p[1];
        memcpy(out, table, sizeof(table[0]) * *count);
    }
    free(table);
    return rc;
}

bool keyspace_table_equal(const struct keyspace *a, uint32_t na, const struct keyspace *b,
                          uint32_t nb) {
    struct buf x;
    struct buf y;
    buf_init(&x);
    buf_init(&y);
    keyspace_table_encode(a, na, &x);
    keyspace_table_encode(b, nb, &y);
    bool same = x.len == y.len && memcmp(x.data, y.data, x.len) == 0;
    buf_deinit(&x);
    buf_deinit(&y);
    return same;
}

void keyspace_command_keys(const struct cmd_spec *spec, uint32_t argc, const struct resp_arg *argv,
                           void (*fn)(void *, const struct resp_arg *), void *ctx) {
    if (spec->key_first <= 0 || (uint32_t)spec->key_first >= argc) return;
    uint32_t last = spec->key_last < 0 ? argc - 1 : (uint32_t)spec->key_last;
    if (last >= argc) last = argc - 1;
    uint32_t step = spec->key_step > 0 ? (uint32_t)spec->key_step : 1;
    for (uint32_t i = (uint32_t)spec->key_first; i <= last; i += step) fn(ctx, &argv[i]);
}

struct keyspace_mode_scan {
    const struct keyspace *table;
    uint32_t count;
    const struct resp_arg *first_key; /* the first key seen, and its keyspace */
    const struct keyspace *first_ks;
    const struct resp_arg *other_key; /* the first key in another mode */
    const struct keyspace *other_ks;
};

static void keyspace_command_mode_key(void *ctx, const struct resp_arg *key) {
    struct keyspace_mode_scan *s = ctx;
    const struct keyspace *ks = keyspace_find(s->table, s->count, key->data, key->bytes);
    if (s->first_key == NULL) {
        s->first_key = key;
        s->first_ks = ks;
    } else if (s->other_key == NULL && keyspace_mode_of(ks) != keyspace_mode_of(s->first_ks)) {
        s->other_key = key;
        s->other_ks = ks;
    }
}

int keyspace_command_mode(const struct keyspace *table, uint32_t count, const struct cmd_spec *spec,
                          uint32_t argc, const struct resp_arg *argv, enum keyspace_mode *mode,
                          struct errmsg *msg) {
    struct keyspace_mode_scan s = {.table = table, .count = count};
    keyspace_command_keys(spec, argc, argv, keyspace_command_mode_key, &s);
    if (s.first_key == NULL) return 0;
    if (s.other_key != NULL) {
        ASSERT(keyspace_mode_of(s.first_ks) != keyspace_mode_of(s.other_ks));
        return errmsg_set(
            msg, ERR_INVALID,
            "keys in request don't hash to the same engine: '%.*s' is in %s "
            "keyspace %s, '%.*s' in %s keyspace %s",
            (int)(s.first_key->bytes > 64 ? 64 : s.first_key->bytes),
            (const char *)s.first_key->data, keyspace_mode_name(keyspace_mode_of(s.first_ks)),
            s.first_ks != NULL ? s.first_ks->name : "(none)",
            (int)(s.other_key->bytes > 64 ? 64 : s.other_key->bytes),
            (const char *)s.other_key->data, keyspace_mode_name(keyspace_mode_of(s.other_ks)),
            s.other_ks != NULL ? s.other_ks->name : "(none)");
    }
    *mode = keyspace_mode_of(s.first_ks);
    return 0;
}
