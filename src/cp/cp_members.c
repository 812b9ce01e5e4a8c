/*
 * Cluster membership on the client port, one server at a time (src/raft/membership.c):
 *
 *   CLUSTER ADD id host:port [LEARNER]   a new server (started with --join) becomes a
 *                                        learner; the leader promotes it to voter once it
 *                                        has caught up, unless LEARNER is given
 *   CLUSTER PROMOTE id                   a learner becomes a voter now
 *   CLUSTER REMOVE id                    the server leaves the configuration
 *   CLUSTER MEMBERS                      one line per server: id address role [leader]
 *
 * Changes go to the leader and are answered once their configuration entry is committed.
 * Each server's peer address travels in the replicated configuration, so every node (and
 * a restarted one) learns where the others are; the shell is told through the FLUSH
 * effect `members` whenever the configuration in the log changes.
 */
#include <stdio.h>
#include <string.h>

#include "base/assert.h"
#include "cp/internal.h"

static const char *cp_member_role(const struct raft_server *s) {
    if (s->voter) return "voter";
    return s->promote ? "learner(promoting)" : "learner";
}

/* The address of server s: the replicated one, else the one this node was started with. */
static const char *cp_member_addr(const struct cp *cp, const struct raft_server *s) {
    if (s->addr[0] != '\0') return s->addr;
    for (uint32_t i = 0; i < cp->config.peer_count; i++)
        if (cp->config.peers[i].id == s->id) return cp->config.peers[i].addr;
    return "";
}

static void cp_members_add(struct cp *cp, struct node_peer *list, size_t *count,
                           const struct raft_server *s) {
    for (size_t i = 0; i < *count; i++)
        if (list[i].id == s->id) return;
    if (*count == NODE_PEERS_MAX) return;
    list[*count].id = s->id;
    snprintf(list[*count].addr, sizeof(list[*count].addr), "%s", cp_member_addr(cp, s));
    (*count)++;
}

/* At FLUSH: when the members to link to changed, tell the shell. While a configuration is
 * not yet committed, the servers of the last committed one stay linked too: a removed
 * server (even the leader removing itself) must hear that its removal committed. */
/* The committed configuration's servers, when they changed: the AP ring follows them. */
static void cp_members_committed_effect(struct cp *cp, struct engine_effects *out) {
    const struct raft_config *c = &cp->members_committed;
    bool same = c->count == cp->committed_id_count;
    for (uint32_t i = 0; same && i < c->count; i++) same = cp->committed_ids[i] == c->servers[i].id;
    if (same) return;
    for (uint32_t i = 0; i < c->count; i++) cp->committed_ids[i] = c->servers[i].id;
    cp->committed_id_count = c->count;
    out->committed_ids = cp->committed_ids;
    out->committed_id_count = c->count;
}

void cp_members_effect(struct cp *cp, struct engine_effects *out) {
    const struct raft_config *config = raft_config(cp->raft);
    if (config->count == 0) return; /* joining: the --peers links until a leader adds us */
    bool committed = raft_commit_index(cp->raft) >= raft_config_index(cp->raft);
    if (committed || cp->members_committed.count == 0) cp->members_committed = *config;
    cp_members_committed_effect(cp, out);
    struct node_peer list[NODE_PEERS_MAX];
    memset(list, 0, sizeof(list)); /* compared whole below */
    size_t count = 0;
    for (uint32_t i = 0; i < config->count; i++)
        cp_members_add(cp, list, &count, &config->servers[i]);
    for (uint32_t i = 0; i < cp->members_committed.count; i++)
        cp_members_add(cp, list, &count, &cp->members_committed.servers[i]);
    if (count == cp->member_count && memcmp(list, cp->members, count * sizeof(list[0])) == 0)
        return;
    memcpy(cp->members, list, count * sizeof(list[0]));
    cp->member_count = count;
    out->members = cp->members;
    out->member_count = count;
    cp_trace(cp, "cluster: linking to %zu servers; configuration %u members (%u voters)%s", count,
             config->count, raft_config_voter_count(config),
             committed ? "" : ", not yet committed");
}

static void cp_members_list(struct cp *cp, struct cp_origin *o) {
    const struct raft_config *config = raft_config(cp->raft);
    uint32_t leader = raft_leader_id(cp->raft);
    struct buf text;
    buf_init(&text);
    for (uint32_t i = 0; i < config->count; i++) {
        const struct raft_server *s = &config->servers[i];
        const char *addr = cp_member_addr(cp, s);
        buf_appendf(&text, "%u %s %s%s%s\n", s->id, addr[0] ? addr : "-", cp_member_role(s),
                    s->id == leader ? " leader" : "", s->id == cp->config.id ? " self" : "");
    }
    resp_put_bulk(o->out, text.data, text.len);
    buf_deinit(&text);
}

/* A dotted IPv4 address: four numbers 0..255. */
static bool cp_ipv4_ok(const uint8_t *p, size_t n) {
    int parts = 0;
    size_t i = 0;
    while (i < n) {
        unsigned value = 0;
        size_t digits = 0;
        while (i < n && p[i] >= '0' && p[i] <= '9' && digits < 4) {
            value = value * 10 + (unsigned)(p[i++] - '0');
            digits++;
        }
        if (digits == 0 || digits > 3 || value > 255) return false;
        parts++;
        if (i < n && (p[i++] != '.' || i == n)) return false;
    }
    return parts == 4;
}

/* What the peer links can connect to (net/peer.c): a numeric IPv4 address or a bracketed
 * IPv6 one, a colon and a port 1..65535, short enough for the configuration. */
static bool cp_addr_ok(const struct resp_arg *a) {
    if (a->bytes < 3 || a->bytes >= RAFT_ADDR_BYTES_MAX) return false;
    size_t colon = a->bytes;
    while (colon > 0 && a->data[colon - 1] != ':') colon--;
    if (colon == 0 || colon == a->bytes || a->bytes - colon > 5) return false;
    unsigned port = 0;
    for (size_t i = colon; i < a->bytes; i++) {
        if (a->data[i] < '0' || a->data[i] > '9') return false;
        port = port * 10 + (unsigned)(a->data[i] - '0');
    }
    if (port == 0 || port > 65535) return false;
    size_t host = colon - 1;
    if (a->data[0] == '[') { /* [v6]: hex digits and colons (checked again when linking) */
        if (host < 3 || a->data[host - 1] != ']') return false;
        for (size_t i = 1; i < host - 1; i++)
            if (a->data[i] == 0 || !strchr("0123456789abcdefABCDEF:.", a->data[i])) return false;
        return true;
    }
    return cp_ipv4_ok(a->data, host);
}

static const char *cp_change_error(int rc) {
    switch (rc) {
    case ERR_EXISTS:
        return "it is already a member (or already a voter)";
    case ERR_NOTFOUND:
        return "no member has that id";
    case ERR_LIMIT:
        return "the cluster has the most members there can be";
    case ERR_CONFIG_PENDING:
        return "another membership change is still being committed (or the leader has "
               "committed nothing in its term yet): retry in a moment";
    case ERR_TRANSFERRING:
        return "leadership is being transferred: retry in a moment";
    case ERR_INVALID:
        return "a cluster needs at least one voter";
    default:
        return err_text(rc);
    }
}

/* Proposes a change; the client is answered when its configuration entry commits. */
static void cp_members_change(struct cp *cp, struct cp_origin *o, struct raft_event *ev) {
    if (!cp_cmd_on_leader(cp, o, "membership changes go to the leader")) return;
    struct raft_effects e;
    int rc = cp_raft_step(cp, ev, &e);
    if (rc != 0) {
        resp_put_errorf(o->out, "ERR membership change refused: %s", cp_change_error(rc));
        return;
    }
    struct cp_wait *w = cp_wait_start(cp, CP_WAIT_PROPOSAL, o);
    cp_wait_index(cp, w, raft_last_index(cp->raft));
    w->term = raft_term(cp->raft);
    w->writes = true;
    w->repl = KEYSPACE_REPLICATION_MAJORITY;
    resp_put_simple(&w->request, "OK");
}

void cp_members_command(struct cp *cp, struct cp_origin *o, uint32_t argc,
                        const struct resp_arg *argv) {
    if (cmd_arg_is(&argv[1], "members")) {
        cp_members_list(cp, o);
        return;
    }
    bool add = cmd_arg_is(&argv[1], "add");
    bool promote = cmd_arg_is(&argv[1], "promote");
    int64_t id;
    if (argc < 3 || !cmd_arg_i64(&argv[2], &id) || id <= 0 || id > 1000000) {
        resp_put_error(o->out, "ERR node id must be a number in 1..1000000");
        return;
    }
    struct raft_event ev = {.kind = RAFT_EVENT_CHANGE};
    ev.change.id = (uint32_t)id;
    ev.change.kind =
        add ? RAFT_CHANGE_ADD_LEARNER : (promote ? RAFT_CHANGE_PROMOTE : RAFT_CHANGE_REMOVE);
    char addr[RAFT_ADDR_BYTES_MAX];
    if (add) {
        bool learner = argc == 5 && cmd_arg_is(&argv[4], "learner");
        if (argc < 4 || argc > 5 || (argc == 5 && !learner)) {
            resp_put_error(o->out, "ERR syntax: CLUSTER ADD id host:port [LEARNER]");
            return;
        }
        if (!cp_addr_ok(&argv[3])) {
            resp_put_errorf(o->out, "ERR the address must be a numeric IP and port, as the node's "
                                    "peer-listen (e.g. 127.0.0.1:8004 or [::1]:8004)");
            return;
        }
        memcpy(addr, argv[3].data, argv[3].bytes);
        addr[argv[3].bytes] = '\0';
        ev.change.addr = addr;
        ev.change.promote = !learner;
    } else if (argc != 3) {
        resp_put_errorf(o->out, "ERR syntax: CLUSTER %s id", promote ? "PROMOTE" : "REMOVE");
        return;
    }
    cp_members_change(cp, o, &ev);
}
