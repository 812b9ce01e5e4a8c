"""Every client-facing limit: at the limit the offending connection gets Redis's error and
is closed, and the server keeps serving everyone else."""

import random
import socket
import time

import pytest
import redis

from conftest import RespReader, encode, poll

INLINE_BYTES_MAX = 64 * 1024


def assert_serving(node):
    """A fresh client can still write and read."""
    c = node.client()
    assert c.set("alive", "yes") is True
    assert c.get("alive") == b"yes"
    c.close()


def send_ignoring_reset(sock, data):
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server may close before it read everything: that is the point


def test_bulk_longer_than_proto_max_bulk_len_is_refused(make_node):
    node = make_node(proto_max_bulk_len=1024 * 1024)
    other = node.client()
    other.set("k", "v")
    s = node.connect()
    send_ignoring_reset(s, b"*3\r\n$3\r\nSET\r\n$1\r\nx\r\n$%d\r\n" % (1024 * 1024 + 1))
    data = RespReader(s).read_until_closed(5)
    assert data == b"-ERR Protocol error: invalid bulk length\r\n"
    assert other.get("k") == b"v"
    # Exactly at the limit is fine.
    value = b"z" * (1024 * 1024)
    assert other.set("big", value) is True and other.strlen("big") == len(value)
    other.close()
    assert_serving(node)


def test_too_many_arguments_is_refused(node):
    s = node.connect()
    send_ignoring_reset(s, b"*%d\r\n" % (1024 * 1024 * 1024))
    data = RespReader(s).read_until_closed(5)
    assert data == b"-ERR Protocol error: invalid multibulk length\r\n"
    assert_serving(node)


def test_negative_and_non_numeric_headers_are_refused(node):
    for header, message in [(b"*abc\r\n", b"invalid multibulk length"),
                            (b"*1\r\n$-5\r\n", b"invalid bulk length"),
                            (b"*1\r\n$x\r\n", b"invalid bulk length"),
                            (b"*1\r\n+PING\r\n", b"expected '$', got '+'")]:
        s = node.connect()
        send_ignoring_reset(s, header)
        data = RespReader(s).read_until_closed(5)
        assert data == b"-ERR Protocol error: " + message + b"\r\n", header
    assert_serving(node)


def test_inline_line_over_64k_without_newline_is_refused(node):
    s = node.connect()
    send_ignoring_reset(s, b"A" * (INLINE_BYTES_MAX + 1024))
    data = RespReader(s).read_until_closed(5)
    assert data == b"-ERR Protocol error: too big inline request\r\n"
    assert_serving(node)


def test_inline_line_just_under_64k_is_served(node):
    s = node.connect()
    arg = b"x" * (INLINE_BYTES_MAX - 100)
    s.sendall(b"ECHO " + arg + b"\r\n")
    assert RespReader(s).read() == b"$%d\r\n%s\r\n" % (len(arg), arg)


@pytest.mark.parametrize("prefix,message", [(b"*", b"too big mbulk count string"),
                                            (b"*1\r\n$", b"too big bulk count string")])
def test_header_without_crlf_in_64k_is_refused(node, prefix, message):
    s = node.connect()
    send_ignoring_reset(s, prefix + b"1" * (INLINE_BYTES_MAX + 1024))
    data = RespReader(s).read_until_closed(5)
    assert data == b"-ERR Protocol error: " + message + b"\r\n"
    assert_serving(node)


def test_random_garbage_gets_an_error_or_close_and_server_survives(node):
    rng = random.Random(1234)
    for i in range(30):
        s = node.connect(timeout=5)
        head = rng.choice([b"*", b"$", b"*2\r\n$", b"*1\r\n", b""])
        blob = head + bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 4096)))
        send_ignoring_reset(s, blob + b"\r\n")
        try:
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        data = RespReader(s).read_until_closed(5)
        # Whatever came back is well-formed RESP: errors, or replies to inline commands.
        reader = RespReader(None)
        reader.buf = data
        while reader.buf:
            reader.read()
        s.close()
    assert_serving(node)


def test_client_that_never_reads_is_closed_at_output_buffer_limit(make_node):
    node = make_node(output_buffer_limit=1024 * 1024)
    c = node.client()
    c.set("big", b"v" * (1024 * 1024 // 4))
    s = node.connect()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(encode("GET", "big") * 1000)  # 256 MiB of replies requested, none read
    # The server notices the unread replies and closes the connection; others keep going.
    deadline = time.monotonic() + 20
    closed = False
    while time.monotonic() < deadline and not closed:
        info = c.execute_command("CLIENT", "LIST").decode()
        closed = info.count("id=") == 1
        time.sleep(0.1)
    assert closed, f"the non-reading client was not closed:\n{info}"
    received = RespReader(s).read_until_closed(10)
    assert len(received) < 300 * 1024 * 1024 // 4
    assert c.strlen("big") == 1024 * 1024 // 4
    c.close()
    assert_serving(node)


def test_reading_client_gets_large_replies_within_limit(make_node):
    """Replies that are read as they come never reach the limit, even 50 x 256 KiB."""
    node = make_node(output_buffer_limit=1024 * 1024)
    c = node.client(socket_timeout=30)
    c.set("big", b"v" * (256 * 1024))
    for _ in range(50):
        assert len(c.get("big")) == 256 * 1024
    with c.pipeline(transaction=False) as p:  # 768 KiB at once: under the limit
        for _ in range(3):
            p.get("big")
        assert [len(v) for v in p.execute()] == [256 * 1024] * 3
    c.close()


def test_maxclients_refuses_the_extra_connection(make_node):
    node = make_node(maxclients=5)
    first = node.connect()
    reader = RespReader(first)

    def only_one_client():  # the fixture's readiness probe may not be reaped yet
        first.sendall(encode("CLIENT", "LIST"))
        return reader.read().count(b"id=") == 1
    assert poll(only_one_client, 5)
    socks = [first] + [node.connect() for _ in range(4)]
    for s in socks:
        s.sendall(b"PING\r\n")
        assert RespReader(s).read() == b"+PONG\r\n"
    extra = node.connect()
    data = RespReader(extra).read_until_closed(5)
    assert data == b"-ERR max number of clients reached\r\n"
    socks.pop().close()
    # Once one leaves, a new client is accepted again.
    def can_ping():
        try:
            s = node.connect(timeout=2)
            s.sendall(b"PING\r\n")
            ok = RespReader(s).read() == b"+PONG\r\n"
            s.close()
            return ok
        except (ConnectionError, OSError):
            return False
    assert poll(can_ping, 5)
    for s in socks:
        s.close()


def test_query_buffer_limit_closes_the_client(make_node):
    node = make_node(query_buffer_limit=1024 * 1024, proto_max_bulk_len=8 * 1024 * 1024)
    other = node.client()
    s = node.connect()
    # A 4 MiB bulk is allowed by proto-max-bulk-len but can't be buffered in 1 MiB.
    send_ignoring_reset(s, b"*3\r\n$3\r\nSET\r\n$1\r\nq\r\n$%d\r\n" % (4 * 1024 * 1024))
    send_ignoring_reset(s, b"x" * (2 * 1024 * 1024))
    data = RespReader(s).read_until_closed(10)
    assert b"+OK" not in data
    assert other.exists("q") == 0
    assert other.ping() is True
    other.close()
    assert_serving(node)


def test_requirepass(make_node):
    node = make_node(requirepass="s3cret")
    c = node.client(decode_responses=True)
    with pytest.raises(redis.AuthenticationError) as e:
        c.get("k")
    assert str(e.value) == "Authentication required."
    s = node.connect()
    reader = RespReader(s)
    s.sendall(encode("GET", "k"))
    assert reader.read() == b"-NOAUTH Authentication required.\r\n"
    s.sendall(encode("AUTH", "wrong"))
    assert reader.read() == (b"-WRONGPASS invalid username-password pair or user is "
                             b"disabled.\r\n")
    s.sendall(encode("AUTH", "default", "wrong"))
    assert reader.read().startswith(b"-WRONGPASS")
    s.sendall(encode("PING"))
    assert reader.read().startswith(b"-NOAUTH")
    s.sendall(encode("AUTH", "s3cret") + encode("SET", "k", "v"))
    assert reader.read() == b"+OK\r\n"
    assert reader.read() == b"+OK\r\n"
    s2 = node.connect()
    r2 = RespReader(s2)
    s2.sendall(encode("HELLO", "3", "AUTH", "default", "wrong"))
    assert r2.read().startswith(b"-WRONGPASS")
    s2.sendall(encode("HELLO", "3", "AUTH", "default", "s3cret") + encode("GET", "k"))
    assert r2.read().startswith(b"%7\r\n")
    assert r2.read() == b"$1\r\nv\r\n"
    good = node.client(password="s3cret", decode_responses=True)
    assert good.get("k") == "v"
    good.close()
