/*
 * Connection and server commands the core runs itself: PING ECHO HELLO AUTH SELECT QUIT
 * RESET CLIENT TIME LASTSAVE SAVE BGSAVE WAIT, and the dispatch of INFO, COMMAND and
 * CONFIG to info.c. Replies and error texts follow Redis 7.
 */
#include <string.h>

#include "base/assert.h"
#include "base/util.h"
#include "core/internal.h"

#define CONN_SERVER_NAME "capkv"
#define CONN_REDIS_VERSION "7.2.0" /* the Redis version whose behaviour capkv follows */

static bool conn_password_ok(const struct node *node, const struct resp_arg *user,
                             const struct resp_arg *pass) {
    if (user != NULL && !cmd_arg_is(user, "default")) return false;
    size_t n = strlen(node->requirepass);
    return pass->bytes == n && memcmp(pass->data, node->requirepass, n) == 0;
}

static void conn_auth(struct node *node, struct client *c, uint32_t argc,
                      const struct resp_arg *argv) {
    if (argc > 3) {
        resp_put_error(&c->out, "ERR syntax error");
        return;
    }
    /* Without requirepass the default user has no password: Redis accepts any password
     * given with the username "default", and refuses a password given alone. */
    if (node->requirepass[0] == '\0' && argc == 3 && cmd_arg_is(&argv[1], "default")) {
        resp_put_simple(&c->out, "OK");
        return;
    }
    if (node->requirepass[0] == '\0' && argc == 2) {
        resp_put_error(&c->out, "ERR AUTH <password> called without any password configured "
                                "for the default user. Are you sure your configuration is "
                                "correct?");
        return;
    }
    const struct resp_arg *user = argc == 3 ? &argv[1] : NULL;
    if (!conn_password_ok(node, user, &argv[argc - 1])) {
        resp_put_error(&c->out, "WRONGPASS invalid username-password pair or user is disabled.");
        return;
    }
    c->authed = true;
    resp_put_simple(&c->out, "OK");
}

/* CLIENT SETNAME's rule: printable, no spaces. */
static bool conn_name_ok(const struct resp_arg *name) {
    if (name->bytes >= NODE_CLIENT_NAME_BYTES_MAX) return false;
    for (size_t i = 0; i < name->bytes; i++) {
        if (name->data[i] < '!' || name->data[i] > '~') return false;
    }
    return true;
}

static void conn_copy_arg(char *dst, size_t cap, const struct resp_arg *arg) {
    size_t n = arg->bytes < cap - 1 ? arg->bytes : cap - 1;
    memcpy(dst, arg->data, n);
    dst[n] = '\0';
}

static void conn_hello_reply(struct node *node, struct client *c) {
    struct buf *out = &c->out;
    resp_put_map(out, c->proto, 7);
    resp_put_bulk_str(out, "server");
    resp_put_bulk_str(out, CONN_SERVER_NAME);
    resp_put_bulk_str(out, "version");
    resp_put_bulk_str(out, CONN_REDIS_VERSION);
    resp_put_bulk_str(out, "proto");
    resp_put_int(out, c->proto);
    resp_put_bulk_str(out, "id");
    resp_put_int(out, (int64_t)c->id);
    resp_put_bulk_str(out, "mode");
    resp_put_bulk_str(out, "standalone");
    resp_put_bulk_str(out, "role");
    resp_put_bulk_str(out, "master");
    resp_put_bulk_str(out, "modules");
    resp_put_array(out, 0);
    (void)node;
}

/* HELLO [protover [AUTH user pass] [SETNAME name]] */
static void conn_hello(struct node *node, struct client *c, uint32_t argc,
                       const struct resp_arg *argv) {
    int64_t proto = c->proto;
    if (argc >= 2 && !cmd_arg_i64(&argv[1], &proto)) {
        resp_put_error(&c->out, "ERR Protocol version is not an integer or out of range");
        return;
    }
    if (proto != 2 && proto != 3) {
        resp_put_error(&c->out, "NOPROTO unsupported protocol version");
        return;
    }
    const struct resp_arg *user = NULL;
    const struct resp_arg *pass = NULL;
    const struct resp_arg *name = NULL;
    for (uint32_t i = 2; i < argc; i++) {
        if (cmd_arg_is(&argv[i], "auth") && i + 2 < argc) {
            user = &argv[i + 1];
            pass = &argv[i + 2];
            i += 2;
        } else if (cmd_arg_is(&argv[i], "setname") && i + 1 < argc) {
            name = &argv[++i];
        } else {
            resp_put_errorf(&c->out, "ERR Syntax error in HELLO option '%.*s'", (int)argv[i].bytes,
                            (const char *)argv[i].data);
            return;
        }
    }
    bool nopass_default =
        node->requirepass[0] == '\0' && user != NULL && cmd_arg_is(user, "default");
    if (pass != NULL && !nopass_default) {
        if (node->requirepass[0] == '\0' || !conn_password_ok(node, user, pass)) {
            resp_put_error(&c->out,
                           "WRONGPASS invalid username-password pair or user is disabled.");
            return;
        }
        c->authed = true;
    }
    if (!c->authed) {
        resp_put_error(&c->out, "NOAUTH HELLO must be called with the client already "
                                "authenticated, otherwise the HELLO <proto> AUTH <user> <pass> "
                                "option can be used to authenticate the client and select the "
                                "RESP protocol version at the same time");
        return;
    }
    if (name != NULL && !conn_name_ok(name)) {
        resp_put_error(&c->out, "ERR Client names cannot contain spaces, newlines or special "
                                "characters.");
        return;
    }
    if (name != NULL) conn_copy_arg(c->name, sizeof(c->name), name);
    c->proto = (int)proto;
    conn_hello_reply(node, c);
}

static void conn_client_list(struct node *node, struct client *c) {
    struct buf text;
    buf_init(&text);
    for (uint32_t i = 0; i < node->client_slot_count; i++) {
        struct client *other = node->client_slots[i];
        if (other != NULL) info_client_line(node, other, &text);
    }
    resp_put_verbatim(&c->out, c->proto, (const char *)text.data, text.len);
    buf_deinit(&text);
}

static void conn_client_setinfo(struct client *c, const struct resp_arg *attr,
                                const struct resp_arg *value) {
    bool name = cmd_arg_is(attr, "lib-name");
    if (!name && !cmd_arg_is(attr, "lib-ver")) {
        resp_put_errorf(&c->out, "ERR Unrecognized option '%.*s'", (int)attr->bytes,
                        (const char *)attr->data);
        return;
    }
    if (!conn_name_ok(value) || value->bytes >= NODE_LIB_FIELD_BYTES_MAX) {
        resp_put_errorf(&c->out, "ERR %s cannot contain spaces, newlines or special characters.",
                        name ? "lib-name" : "lib-ver");
        return;
    }
    if (name)
        conn_copy_arg(c->lib_name, sizeof(c->lib_name), value);
    else
        conn_copy_arg(c->lib_ver, sizeof(c->lib_ver), value);
    resp_put_simple(&c->out, "OK");
}

static void conn_client_setname(struct client *c, const struct resp_arg *name) {
    if (!conn_name_ok(name)) {
        resp_put_error(&c->out, "ERR Client names cannot contain spaces, newlines or special "
                                "characters.");
        return;
    }
    conn_copy_arg(c->name, sizeof(c->name), name);
    resp_put_simple(&c->out, "OK");
}

enum conn_client_sub {
    CONN_CLIENT_ID,
    CONN_CLIENT_SETNAME,
    CONN_CLIENT_GETNAME,
    CONN_CLIENT_LIST,
    CONN_CLIENT_INFO,
    CONN_CLIENT_SETINFO,
    CONN_CLIENT_NO_EVICT,
    CONN_CLIENT_NO_TOUCH,
};

static const struct cmd_sub conn_client_subs[] = {
    [CONN_CLIENT_ID] = {"id", 2},
    [CONN_CLIENT_SETNAME] = {"setname", 3},
    [CONN_CLIENT_GETNAME] = {"getname", 2},
    [CONN_CLIENT_LIST] = {"list", -2},
    [CONN_CLIENT_INFO] = {"info", 2},
    [CONN_CLIENT_SETINFO] = {"setinfo", 4},
    [CONN_CLIENT_NO_EVICT] = {"no-evict", 3},
    [CONN_CLIENT_NO_TOUCH] = {"no-touch", 3},
};

static void conn_client_info(struct node *node, struct client *c) {
    struct buf line;
    buf_init(&line);
    info_client_line(node, c, &line);
    resp_put_verbatim(&c->out, c->proto, (const char *)line.data, line.len);
    buf_deinit(&line);
}

static void conn_client(struct node *node, struct client *c, uint32_t argc,
                        const struct resp_arg *argv) {
    int sub = cmd_subcommand(&c->out, "client", conn_client_subs,
                             sizeof(conn_client_subs) / sizeof(conn_client_subs[0]), argc, argv);
    switch (sub) {
    case -1:
        return;
    case CONN_CLIENT_ID:
        resp_put_int(&c->out, (int64_t)c->id);
        return;
    case CONN_CLIENT_SETNAME:
        conn_client_setname(c, &argv[2]);
        return;
    case CONN_CLIENT_GETNAME:
        if (c->name[0] == '\0')
            resp_put_null(&c->out, c->proto);
        else
            resp_put_bulk_str(&c->out, c->name);
        return;
    case CONN_CLIENT_LIST:
        conn_client_list(node, c);
        return;
    case CONN_CLIENT_INFO:
        conn_client_info(node, c);
        return;
    case CONN_CLIENT_SETINFO:
        conn_client_setinfo(c, &argv[2], &argv[3]);
        return;
    case CONN_CLIENT_NO_EVICT:
    case CONN_CLIENT_NO_TOUCH:
        resp_put_simple(&c->out, "OK");
        return;
    default:
        UNREACHABLE();
    }
}

void conn_reset_client(struct node *node, struct client *c) {
    tx_discard(c);
    tx_unwatch(node, c);
    c->proto = 2;
    c->name[0] = '\0';
    c->authed = node->requirepass[0] == '\0';
    c->consistency = 0;
    c->quorum_w = c->quorum_r = 0;
    session_reset(&c->session);
}

static void conn_select(struct client *c, const struct resp_arg *index) {
    int64_t db;
    if (!cmd_arg_i64(index, &db)) {
        resp_put_error(&c->out, "ERR value is not an integer or out of range");
    } else if (db != 0) {
        resp_put_error(&c->out, "ERR DB index is out of range");
    } else {
        resp_put_simple(&c->out, "OK");
    }
}

static void conn_time(struct node *node, struct client *c) {
    resp_put_array(&c->out, 2);
    resp_put_bulk_i64(&c->out, (int64_t)(node->now_ms / 1000));
    resp_put_bulk_i64(&c->out, (int64_t)(node->now_ms % 1000) * 1000);
}

static void conn_lastsave(struct node *node, struct client *c) {
    uint64_t ms = 0;
    for (uint32_t i = 0; i < node->engine_count; i++) {
        uint64_t e = node->engines[i].ops->last_save_ms(node->engines[i].engine);
        if (e > ms) ms = e;
    }
    resp_put_int(&c->out, (int64_t)(ms / 1000));
}

/* CONSISTENCY [linearizable | lease | stale | default]: this connection's read level. */
static void conn_consistency(struct node *node, struct client *c, uint32_t argc,
                             const struct resp_arg *argv) {
    static const char *names[] = {"", "linearizable", "lease", "stale"};
    if (argc == 1) {
        resp_put_bulk_str(&c->out, c->consistency == 0 ? "default" : names[c->consistency]);
        return;
    }
    /* Reads at the new level may be served by this node's replica: a WATCH index newer
     * than it would let a change slip between what they observe and the index. */
    if (c->watch_count > 0 && c->watch_engine >= 0) {
        const struct node_engine *ne = &node->engines[c->watch_engine];
        uint64_t observed = ne->ops->observed_index(ne->engine);
        bool by_index = ne->ops->watch == ENGINE_WATCH_CONDITIONS;
        if (by_index && c->watch_index > observed) c->watch_index = observed;
    }
    for (int level = 1; level <= 3; level++) {
        if (cmd_arg_is(&argv[1], names[level])) {
            c->consistency = level;
            resp_put_simple(&c->out, "OK");
            return;
        }
    }
    if (cmd_arg_is(&argv[1], "default")) {
        c->consistency = 0;
        resp_put_simple(&c->out, "OK");
        return;
    }
    resp_put_error(&c->out, "ERR consistency must be linearizable, lease, stale or default");
}

/* QUORUM [W level] [R level], level one | quorum | all | default: this connection's w
 * and r for AP keys (CP keys ignore them); alone, replies [w, level, r, level]. */
static void conn_quorum(struct client *c, uint32_t argc, const struct resp_arg *argv) {
    static const char *names[] = {"default", "one", "quorum", "all"};
    if (argc == 1) {
        resp_put_array(&c->out, 4);
        resp_put_bulk_str(&c->out, "w");
        resp_put_bulk_str(&c->out, names[c->quorum_w]);
        resp_put_bulk_str(&c->out, "r");
        resp_put_bulk_str(&c->out, names[c->quorum_r]);
        return;
    }
    int w = c->quorum_w, r = c->quorum_r;
    bool ok = argc % 2 == 1;
    for (uint32_t i = 1; ok && i + 1 < argc; i += 2) {
        int level = -1;
        for (int k = 0; k < 4; k++)
            if (cmd_arg_is(&argv[i + 1], names[k])) level = k;
        if (level < 0 || !(cmd_arg_is(&argv[i], "w") || cmd_arg_is(&argv[i], "r")))
            ok = false;
        else if (cmd_arg_is(&argv[i], "w"))
            w = level;
        else
            r = level;
    }
    if (!ok) {
        resp_put_error(&c->out, "ERR usage: QUORUM [W level] [R level], level one, quorum, all "
                                "or default (AP keys only)");
        return;
    }
    c->quorum_w = w;
    c->quorum_r = r;
    resp_put_simple(&c->out, "OK");
}

/* SESSION TOKEN: what this connection observed (and resumed), for a connection elsewhere. */
static void conn_session_token(struct node *node, struct client *c) {
    if (c->session.ap.full) {
        resp_put_errorf(&c->out,
                        "ERR session: this session saw more than %u AP keys (or a key written "
                        "by more than %u node incarnations): a token cannot hold what it "
                        "would have to guarantee; SESSION END starts a new session",
                        SEEN_KEYS_MAX, SEEN_ACTORS_MAX);
        return;
    }
    struct session_token t = {.cluster_id = node->cluster_id,
                              .cp_index = session_token_index(&c->session)};
    struct buf text;
    buf_init(&text);
    session_token_encode(&t, &c->session.ap, &text);
    resp_put_bulk(&c->out, text.data, text.len);
    buf_deinit(&text);
}

/* SESSION RESUME token: this connection's local CP reads wait until this node has applied
 * what the token's session saw, and its AP commands until the replica serving them holds
 * what it saw of their keys. */
static void conn_session_resume(struct node *node, struct client *c, const struct resp_arg *arg) {
    struct session_token t;
    struct errmsg msg;
    struct seen_map ap;
    seen_map_init(&ap);
    int rc =
        session_token_decode((const char *)arg->data, arg->bytes, node->cluster_id, &t, &ap, &msg);
    if (rc != 0) {
        resp_put_errorf(&c->out, "ERR session: bad token: %s", msg.text);
        return;
    }
    ASSERT(t.cluster_id == node->cluster_id);
    bool joined = session_resume_ap(&c->session, &ap);
    seen_map_deinit(&ap);
    if (!joined) {
        resp_put_errorf(&c->out,
                        "ERR session: the token's AP keys and this session's are more than %u "
                        "together; SESSION END first, then resume",
                        SEEN_KEYS_MAX);
        return;
    }
    c->session.resumed = true;
    if (t.cp_index > c->session.cp_floor) c->session.cp_floor = t.cp_index;
    resp_put_simple(&c->out, "OK");
}

/* SESSION TOKEN | RESUME token | END (forgets the resumed token and what was observed). */
static void conn_session(struct node *node, struct client *c, uint32_t argc,
                         const struct resp_arg *argv) {
    if (argc == 2 && cmd_arg_is(&argv[1], "token")) {
        conn_session_token(node, c);
    } else if (argc == 3 && cmd_arg_is(&argv[1], "resume")) {
        conn_session_resume(node, c, &argv[2]);
    } else if (argc == 2 && cmd_arg_is(&argv[1], "end")) {
        session_reset(&c->session);
        resp_put_simple(&c->out, "OK");
    } else {
        resp_put_error(&c->out, "ERR usage: SESSION TOKEN | SESSION RESUME token | SESSION END");
    }
}

static void conn_wait(struct node *node, struct client *c, uint32_t argc,
                      const struct resp_arg *argv) {
    int64_t replicas;
    int64_t timeout;
    ASSERT(argc == 3);
    if (!cmd_arg_i64(&argv[1], &replicas) || !cmd_arg_i64(&argv[2], &timeout)) {
        resp_put_error(&c->out, "ERR value is not an integer or out of range");
        return;
    }
    if (timeout < 0) {
        resp_put_error(&c->out, "ERR timeout is negative");
        return;
    }
    node_engine_admin(node, c, argc, argv);
}

void conn_run(struct node *node, struct client *c, const struct cmd_spec *spec, uint32_t argc,
              const struct resp_arg *argv) {
    switch (spec->core_op) {
    case CMD_CORE_PING:
        if (argc > 2)
            resp_put_error(&c->out, "ERR wrong number of arguments for 'ping' command");
        else if (argc == 2)
            resp_put_bulk(&c->out, argv[1].data, argv[1].bytes);
        else
            resp_put_simple(&c->out, "PONG");
        return;
    case CMD_CORE_ECHO:
        resp_put_bulk(&c->out, argv[1].data, argv[1].bytes);
        return;
    case CMD_CORE_HELLO:
        conn_hello(node, c, argc, argv);
        return;
    case CMD_CORE_AUTH:
        conn_auth(node, c, argc, argv);
        return;
    case CMD_CORE_SELECT:
        conn_select(c, &argv[1]);
        return;
    case CMD_CORE_QUIT:
        resp_put_simple(&c->out, "OK");
        node_client_mark_close(node, c);
        return;
    case CMD_CORE_RESET:
        conn_reset_client(node, c);
        resp_put_simple(&c->out, "RESET");
        return;
    case CMD_CORE_CLIENT:
        conn_client(node, c, argc, argv);
        return;
    case CMD_CORE_COMMAND:
        info_command(node, c, argc, argv);
        return;
    case CMD_CORE_INFO:
        info_reply(node, c, argc, argv);
        return;
    case CMD_CORE_CONFIG:
        info_config(node, c, argc, argv);
        return;
    case CMD_CORE_TIME:
        conn_time(node, c);
        return;
    case CMD_CORE_LASTSAVE:
        conn_lastsave(node, c);
        return;
    case CMD_CORE_SAVE:
    case CMD_CORE_BGSAVE:
        node_engine_admin(node, c, argc, argv);
        return;
    case CMD_CORE_WAIT:
        conn_wait(node, c, argc, argv);
        return;
    case CMD_CORE_CLUSTER: /* INFO is the node's (faults, every engine); the rest the engine's */
        if (argc == 2 && cmd_arg_is(&argv[1], "info"))
            info_cluster(node, c);
        else
            node_engine_admin(node, c, argc, argv);
        return;
    case CMD_CORE_CONSISTENCY:
        conn_consistency(node, c, argc, argv);
        return;
    case CMD_CORE_QUORUM:
        conn_quorum(c, argc, argv);
        return;
    case CMD_CORE_SESSION:
        conn_session(node, c, argc, argv);
        return;
    case CMD_CORE_FAULT:
        fault_command(node, c, argc, argv);
        return;
    default:
        UNREACHABLE();
    }
}
