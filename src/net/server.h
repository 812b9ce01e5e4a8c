/*
 * The real shell: a libuv event loop that carries the core's effects out. It owns the
 * sockets, the clock, the data directory (through disk_posix) and a worker thread for
 * log syncs, and it never decides anything the core decides.
 */
#ifndef CAPKV_NET_SERVER_H
#define CAPKV_NET_SERVER_H

#include <stdbool.h>

#include "base/err.h"
#include "core/node.h"

struct server_options {
    struct node_config node; /* listen, dir and the rest; strings borrowed during run */
    const char *listen;      /* "HOST:PORT" */
    const char *peer_listen; /* "HOST:PORT" for peer links; NULL: this node's entry in peers */
    const char *dir;
    const char *log_path; /* NULL: trace lines go to stderr */
    bool sync_in_thread;  /* run log syncs on a worker thread instead of inline */
    bool sync_inline_ok;  /* with sync_in_thread: inline when the node hints it (auto) */
};

/* Runs until SIGINT/SIGTERM (returns 0) or a fatal error (returns it, msg says why). */
int server_run(const struct server_options *options, struct errmsg *msg);

#endif
