/* The blocking RESP client of the command-line tools: poll()-bounded connect, write, read. */
#include "cli/respc.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/assert.h"
#include "net/peer.h"
#include "proto/resp.h"

#define RESPC_NESTING_MAX 8

/* Waits for events on fd; 0 when ready, ERR_IO on timeout or error. */
static int respc_wait(int fd, short events, int timeout_ms, struct errmsg *msg) {
    struct pollfd p = {.fd = fd, .events = events};
    int n;
    do {
        n = poll(&p, 1, timeout_ms);
    } while (n < 0 && errno == EINTR);
    if (n == 0) return errmsg_set(msg, ERR_IO, "timed out after %d ms", timeout_ms);
    if (n < 0) return errmsg_set(msg, ERR_IO, "poll: %s", strerror(errno));
    return 0;
}

static int respc_connect(const char *addr, int timeout_ms, int *out, struct errmsg *msg) {
    struct sockaddr_storage sa;
    int rc = peer_parse_addr(addr, &sa, msg);
    if (rc != 0) return rc;
    int fd = socket(sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return errmsg_set(msg, ERR_IO, "socket: %s", strerror(errno));
    socklen_t len =
        sa.ss_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
    if (connect(fd, (struct sockaddr *)&sa, len) != 0 && errno != EINPROGRESS) {
        rc = errmsg_set(msg, ERR_IO, "cannot connect to %s: %s", addr, strerror(errno));
        close(fd);
        return rc;
    }
    rc = respc_wait(fd, POLLOUT, timeout_ms, msg);
    int err = 0;
    socklen_t err_len = sizeof(err);
    if (rc == 0 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &err_len) == 0 && err != 0) {
        rc = errmsg_set(msg, ERR_IO, "cannot connect to %s: %s", addr, strerror(err));
    }
    if (rc != 0) {
        close(fd);
        return rc;
    }
    *out = fd;
    return 0;
}

static int respc_send(int fd, const struct buf *req, int timeout_ms, struct errmsg *msg) {
    size_t off = 0;
    while (off < req->len) {
        ssize_t n = write(fd, req->data + off, req->len - off);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            return errmsg_set(msg, ERR_IO, "write: %s", strerror(errno));
        }
        int rc = respc_wait(fd, POLLOUT, timeout_ms, msg);
        if (rc != 0) return rc;
    }
    return 0;
}

/* Reads until reply holds one whole RESP value (at most RESPC_REPLY_BYTES_MAX). */
static int respc_read(int fd, int timeout_ms, struct buf *reply, struct errmsg *msg) {
    struct resp_limits limits;
    resp_limits_default(&limits);
    limits.nesting_max = RESPC_NESTING_MAX;
    size_t start = reply->len;
    for (;;) {
        size_t value_bytes = 0;
        int rc =
            resp_scan_value(&limits, reply->data + start, reply->len - start, &value_bytes, msg);
        if (rc == 1) return 0;
        if (rc < 0) return rc;
        if (reply->len - start >= RESPC_REPLY_BYTES_MAX) {
            return errmsg_set(msg, ERR_LIMIT, "reply larger than %u bytes", RESPC_REPLY_BYTES_MAX);
        }
        rc = respc_wait(fd, POLLIN, timeout_ms, msg);
        if (rc != 0) return rc;
        buf_reserve(reply, 64 * 1024);
        ssize_t n = read(fd, reply->data + reply->len, reply->cap - reply->len);
        if (n == 0) return errmsg_set(msg, ERR_IO, "connection closed before the reply");
        if (n < 0 && errno != EAGAIN && errno != EINTR) {
            return errmsg_set(msg, ERR_IO, "read: %s", strerror(errno));
        }
        if (n > 0) reply->len += (size_t)n;
    }
}

int respc_call(const char *addr, int argc, const char *const *argv, int timeout_ms,
               struct buf *reply, struct errmsg *msg) {
    ASSERT(argc > 0);
    int fd = -1;
    int rc = respc_connect(addr, timeout_ms, &fd, msg);
    if (rc != 0) return rc;
    struct buf req;
    buf_init(&req);
    buf_appendf(&req, "*%d\r\n", argc);
    for (int i = 0; i < argc; i++) {
        buf_appendf(&req, "$%zu\r\n", strlen(argv[i]));
        buf_append_str(&req, argv[i]);
        buf_append_str(&req, "\r\n");
    }
    rc = respc_send(fd, &req, timeout_ms, msg);
    if (rc == 0) rc = respc_read(fd, timeout_ms, reply, msg);
    buf_deinit(&req);
    close(fd);
    return rc;
}

bool respc_is_error(const uint8_t *reply, size_t bytes) {
    return bytes > 0 && (reply[0] == '-' || reply[0] == '!');
}

/* Renders one value at *pos (already scanned complete); advances *pos. */
static void respc_format_value(const uint8_t *r, size_t bytes, size_t *pos, int depth,
                               struct buf *out) {
    const uint8_t *line = r + *pos;
    const uint8_t *crlf = memchr(line, '\r', bytes - *pos);
    ASSERT(crlf != NULL);
    int len = (int)(crlf - line) - 1;
    *pos = (size_t)(crlf - r) + 2;
    long long n = 0;
    sscanf((const char *)line + 1, "%lld", &n);
    switch (line[0]) {
    case '+':
        buf_appendf(out, "%.*s", len, line + 1);
        return;
    case '-':
        buf_appendf(out, "(error) %.*s", len, line + 1);
        return;
    case ':':
        buf_appendf(out, "(integer) %.*s", len, line + 1);
        return;
    case '_':
        buf_append_str(out, "(nil)");
        return;
    case '$':
    case '=':
    case '!':
        if (n < 0) {
            buf_append_str(out, "(nil)");
            return;
        }
        buf_append(out, r + *pos, (size_t)n);
        *pos += (size_t)n + 2;
        return;
    case '*':
    case '~':
    case '%':
        if (n < 0) {
            buf_append_str(out, "(nil)");
            return;
        }
        if (line[0] == '%') n *= 2;
        if (n == 0) buf_append_str(out, "(empty array)");
        for (long long i = 0; i < n; i++) {
            buf_appendf(out, "%s%*s%lld) ", i > 0 ? "\n" : "", depth * 3, "", i + 1);
            respc_format_value(r, bytes, pos, depth + 1, out);
        }
        return;
    default:
        buf_appendf(out, "%.*s", len + 1, line);
        return;
    }
}

void respc_format(const uint8_t *reply, size_t bytes, struct buf *out) {
    if (bytes == 0) return;
    size_t pos = 0;
    respc_format_value(reply, bytes, &pos, 0, out);
}

bool respc_info_field(const char *info, const char *name, char *out, size_t cap) {
    size_t name_len = strlen(name);
    for (const char *p = info; p != NULL && *p != '\0';) {
        if (strncmp(p, name, name_len) == 0 && p[name_len] == ':') {
            const char *v = p + name_len + 1;
            size_t n = strcspn(v, "\r\n");
            if (n >= cap) n = cap - 1;
            memcpy(out, v, n);
            out[n] = '\0';
            return true;
        }
        p = strchr(p, '\n');
        if (p != NULL) p++;
    }
    return false;
}
