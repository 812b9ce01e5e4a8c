"""Every supported command through redis-py (and raw sockets for RESP3, inline commands and
pipelining), with Redis 7's replies and error texts."""

import random
import socket
import time

import pytest
import redis

from conftest import RespReader, encode, poll

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
NOT_INT = "value is not an integer or out of range"


def err(excinfo):
    return str(excinfo.value)


def ex(client, *args):
    """Sends one command and returns the reply without redis-py's per-command conversion
    (which turns +OK into True), on the client's pooled connection."""
    conn = client.connection_pool.get_connection(args[0])
    try:
        conn.send_command(*args)
        return conn.read_response()
    finally:
        client.connection_pool.release(conn)


# ---- connection commands ----------------------------------------------------------------

def test_connection_commands(r):
    assert r.ping() is True
    assert r.echo("héllo") == "héllo"
    assert ex(r, "SELECT", 0) == "OK"
    with pytest.raises(redis.ResponseError) as e:
        ex(r, "SELECT", 16)
    assert err(e) == "DB index is out of range"
    assert ex(r, "CLIENT", "SETNAME", "tester") == "OK"
    assert r.client_getname() == "tester"
    cid = r.client_id()
    assert isinstance(cid, int) and cid > 0
    listing = ex(r, "CLIENT", "LIST")
    assert f"id={cid} " in listing and "name=tester" in listing
    info = ex(r, "CLIENT", "INFO")
    assert f"id={cid} " in info
    assert ex(r, "CLIENT", "SETINFO", "lib-name", "mylib") == "OK"
    assert "lib-name=mylib" in ex(r, "CLIENT", "INFO")
    assert ex(r, "RESET") == "RESET"
    assert r.client_getname() is None


def test_hello_reports_protocol_and_id(r):
    reply = r.execute_command("HELLO", "2")
    fields = dict(zip(reply[::2], reply[1::2]))
    assert fields["proto"] == 2
    assert fields["mode"] == "standalone"
    assert fields["role"] == "master"
    assert fields["id"] == r.client_id()
    with pytest.raises(redis.ResponseError) as e:
        r.execute_command("HELLO", "4")
    assert err(e) == "NOPROTO unsupported protocol version"


def test_quit_closes_connection(node):
    s = node.connect()
    s.sendall(encode("QUIT") + encode("PING"))
    reader = RespReader(s)
    assert reader.read() == b"+OK\r\n"
    assert reader.read_until_closed(5) == b""


def test_server_commands(r):
    seconds, micros = r.time()
    assert abs(seconds - time.time()) < 5 and 0 <= micros < 1_000_000
    assert ex(r, "SAVE") == "OK"
    last = r.lastsave()
    assert abs(last.timestamp() - time.time()) < 10
    assert ex(r, "BGSAVE") in ("Background saving started", "OK")
    assert ex(r, "WAIT", 0, 0) == 0
    info = r.info()
    assert "redis_version" in info
    assert r.config_get("maxclients") == {"maxclients": "10000"}
    count = ex(r, "COMMAND", "COUNT")
    names = {n.lower() for n in ex(r, "COMMAND", "LIST")}
    assert count == len(names)
    for name in ("get", "set", "hset", "sadd", "multi", "scan", "getex", "client"):
        assert name in names
    info = ex(r, "COMMAND", "INFO", "get")
    assert info[0][0] == "get" and info[0][1] == 2
    assert ex(r, "COMMAND", "DOCS", "get") is not None


def test_unknown_command_and_arity_errors(r):
    with pytest.raises(redis.ResponseError) as e:
        r.execute_command("NOPE", "a", "b")
    assert err(e) == "unknown command 'NOPE', with args beginning with: 'a' 'b' "
    for args, name in [(("GET",), "get"), (("SET", "k"), "set"), (("HSET", "h", "f"), "hset"),
                       (("SADD", "s"), "sadd"), (("MSET", "a"), "mset"),
                       (("EXPIRE", "k"), "expire"), (("INCRBY", "k"), "incrby")]:
        with pytest.raises(redis.ResponseError) as e:
            r.execute_command(*args)
        assert err(e) == f"wrong number of arguments for '{name}' command"


@pytest.mark.parametrize("container", ["CLIENT", "CONFIG", "COMMAND"])
def test_unknown_subcommand_error_text_matches_redis7(r, container):
    with pytest.raises(redis.ResponseError) as e:
        r.execute_command(container, "NOSUCH")
    assert err(e) == f"unknown subcommand 'NOSUCH'. Try {container} HELP."


@pytest.mark.parametrize("args,name", [(("CLIENT", "SETNAME"), "client|setname"),
                                       (("CLIENT", "ID", "x"), "client|id"),
                                       (("CONFIG", "GET"), "config|get"),
                                       (("COMMAND", "COUNT", "x"), "command|count")])
def test_subcommand_arity_error_text_matches_redis7(r, args, name):
    with pytest.raises(redis.ResponseError) as e:
        r.execute_command(*args)
    assert err(e) == f"wrong number of arguments for '{name}' command"


def test_command_info_unknown_is_null_bulk(node):
    s = node.connect()
    s.sendall(encode("COMMAND", "INFO", "nosuchcmd"))
    assert RespReader(s).read() == b"*1\r\n$-1\r\n"


def test_repeated_set_option_is_accepted_like_redis(r):
    assert ex(r, "SET", "k", "v", "NX", "NX") == "OK"
    assert ex(r, "SET", "k", "v", "EX", "10", "EX", "20") == "OK"
    assert 19 <= r.ttl("k") <= 20
    assert ex(r, "GETEX", "k", "EX", "10", "EX", "30") == "v"
    assert 29 <= r.ttl("k") <= 30


def test_auth_with_username_without_requirepass_is_ok_like_redis(r):
    assert ex(r, "AUTH", "default", "anything") == "OK"
    reply = ex(r, "HELLO", "2", "AUTH", "default", "anything")
    assert reply[:2] == ["server", "capkv"]


# ---- keyspace ---------------------------------------------------------------------------

def test_keyspace_commands(r):
    r.mset({"a": 1, "b": 2, "c": 3})
    r.sadd("s", "x")
    r.hset("h", "f", "v")
    assert r.dbsize() == 5
    assert r.exists("a", "b", "missing", "a") == 3
    assert [r.type(k) for k in ("a", "s", "h", "missing")] == ["string", "set", "hash", "none"]
    assert sorted(r.keys("*")) == ["a", "b", "c", "h", "s"]
    assert sorted(r.keys("[ab]")) == ["a", "b"]
    assert r.delete("a", "missing") == 1
    assert r.unlink("b", "c") == 2
    assert r.dbsize() == 2
    assert r.flushdb() is True
    assert r.dbsize() == 0
    r.set("x", 1)
    assert r.flushall() is True
    assert r.keys() == []


def test_expire_family(r):
    r.set("k", "v")
    assert r.ttl("k") == -1 and r.pttl("k") == -1
    assert r.ttl("missing") == -2 and r.pttl("missing") == -2
    assert r.expire("k", 100) is True
    assert 99 <= r.ttl("k") <= 100
    assert 99000 <= r.pttl("k") <= 100000
    assert r.expire("k", 200, nx=True) is False
    assert r.expire("k", 200, xx=True) is True
    assert r.expire("k", 100, gt=True) is False
    assert r.expire("k", 300, gt=True) is True
    assert r.expire("k", 50, lt=True) is True
    assert r.pexpire("k", 40000) is True
    assert 39 <= r.ttl("k") <= 40
    at = int(time.time()) + 1000
    assert r.expireat("k", at) is True
    assert r.expiretime("k") == at
    assert r.execute_command("PEXPIRETIME", "k") == at * 1000
    assert r.pexpireat("k", at * 1000 + 5) is True
    assert r.execute_command("PEXPIRETIME", "k") == at * 1000 + 5
    assert r.persist("k") is True
    assert r.persist("k") is False
    assert r.expiretime("k") == -1
    assert r.expiretime("missing") == -2
    assert r.expire("missing", 10) is False
    with pytest.raises(redis.ResponseError) as e:
        r.execute_command("EXPIRE", "k", "10", "NX", "XX")
    assert err(e) == "NX and XX, GT or LT options at the same time are not compatible"
    with pytest.raises(redis.ResponseError) as e:
        r.execute_command("EXPIRE", "k", "9223372036854775807")
    assert err(e) == "invalid expire time in 'expire' command"
    with pytest.raises(redis.ResponseError) as e:
        r.execute_command("SET", "k", "v", "EX", "0")
    assert err(e) == "invalid expire time in 'set' command"
    assert r.expire("k", -1) is True
    assert r.exists("k") == 0


def test_expired_keys_are_lazily_hidden(r):
    r.set("k", "v", px=50)
    r.hset("h", "f", "v")
    r.pexpire("h", 50)
    time.sleep(0.12)
    assert r.get("k") is None
    assert r.hget("h", "f") is None
    assert r.exists("k", "h") == 0
    assert r.ttl("k") == -2


def test_expired_keys_are_actively_removed(r):
    """Keys with PX 50 leave DBSIZE without anyone reading them (active expiry)."""
    with r.pipeline(transaction=False) as p:
        for i in range(200):
            p.set(f"tmp:{i}", "v", px=50)
        p.set("keep", "v")
        p.execute()
    assert r.dbsize() >= 1
    assert poll(lambda: r.dbsize() == 1, 5), f"dbsize still {r.dbsize()} after 5 s"
    assert r.get("keep") == "v"


def test_scan_returns_every_key_over_5000(r):
    with r.pipeline(transaction=False) as p:
        for i in range(5000):
            p.set(f"key:{i}", i)
        p.sadd("other", "x")
        p.execute()
    seen = set()
    cursor, rounds = 0, 0
    while True:
        cursor, keys = r.scan(cursor, count=100)
        seen.update(keys)
        rounds += 1
        assert rounds < 2000, "SCAN did not finish"
        if cursor == 0:
            break
    assert seen == {f"key:{i}" for i in range(5000)} | {"other"}
    matched = set(r.scan_iter(match="key:49*", count=500))
    assert matched == {k for k in seen if k.startswith("key:49")}
    typed = set(r.scan_iter(_type="set", count=1000))
    assert typed == {"other"}


def test_scan_is_complete_while_keys_are_added(r):
    """SCAN guarantee: every key present for the whole scan is returned."""
    r.mset({f"old:{i}": i for i in range(2000)})
    seen, cursor, n = set(), 0, 0
    while True:
        cursor, keys = r.scan(cursor, count=50)
        seen.update(keys)
        r.set(f"new:{n}", n)
        n += 1
        assert n < 5000
        if cursor == 0:
            break
    assert {f"old:{i}" for i in range(2000)} <= seen


# ---- strings ----------------------------------------------------------------------------

def test_string_commands(r):
    assert r.set("s", "hello") is True
    assert r.get("s") == "hello"
    assert r.get("missing") is None
    assert r.set("s", "x", nx=True) is None
    assert r.set("new", "x", xx=True) is None
    assert r.set("s", "world", xx=True) is True
    assert r.set("s", "v2", get=True) == "world"
    assert r.set("s", "v3", ex=100) is True
    assert r.set("s", "v4", keepttl=True) is True
    assert 99 <= r.ttl("s") <= 100
    assert r.set("s", "v5") is True and r.ttl("s") == -1
    assert r.set("s", "v", px=100000) and 99 <= r.ttl("s") <= 100
    assert r.set("s", "v", exat=int(time.time()) + 50) and 49 <= r.ttl("s") <= 50
    assert r.set("s", "v", pxat=int(time.time() * 1000) + 50000) and 49 <= r.ttl("s") <= 50
    assert r.setnx("s", "x") is False and r.setnx("n1", "x") is True
    assert r.setex("ex", 100, "v") is True and 99 <= r.ttl("ex") <= 100
    assert r.psetex("pex", 100000, "v") is True and 99 <= r.ttl("pex") <= 100
    assert r.mset({"a": "1", "b": "2"}) is True
    assert r.mget("a", "b", "missing") == ["1", "2", None]
    assert r.msetnx({"a": "9", "c": "3"}) is False and r.get("c") is None
    assert r.msetnx({"c": "3", "d": "4"}) is True
    assert r.append("a", "23") == 3 and r.get("a") == "123"
    assert r.append("fresh", "xy") == 2
    assert r.strlen("a") == 3 and r.strlen("missing") == 0
    assert r.getdel("a") == "123" and r.getdel("a") is None
    assert r.getset("b", "new") == "2" and r.get("b") == "new"
    assert r.getex("b", ex=100) == "new" and 99 <= r.ttl("b") <= 100
    assert r.getex("b", persist=True) == "new" and r.ttl("b") == -1
    assert r.getex("b", px=5000) == "new" and r.pttl("b") <= 5000
    assert r.getex("missing") is None
    with pytest.raises(redis.ResponseError) as e:
        r.execute_command("SET", "s", "v", "NX", "XX")
    assert err(e) == "syntax error"
    with pytest.raises(redis.ResponseError) as e:
        r.execute_command("SET", "s", "v", "EX", "abc")
    assert err(e) == NOT_INT
    r.sadd("set", "m")
    for call in (lambda: r.get("set"), lambda: r.append("set", "x"),
                 lambda: r.strlen("set"), lambda: r.getdel("set")):
        with pytest.raises(redis.ResponseError) as e:
            call()
        assert err(e) == WRONGTYPE


def test_binary_and_large_values_round_trip(node):
    c = node.client()
    value = bytes(range(256)) * 4096 + b"\r\n\x00end"
    assert c.set(b"bin\x00key", value) is True
    assert c.get(b"bin\x00key") == value
    assert c.strlen(b"bin\x00key") == len(value)
    c.close()


def test_getex_missing_key_with_bad_expire_is_nil_like_redis(r):
    assert r.execute_command("GETEX", "missing", "PXAT", "-1") is None


def test_set_ifeq_compare_and_set(r):
    """IFEQ as in Valkey 8.1: set only when the current value equals the given one."""
    r.set("k", "a")
    assert ex(r, "SET", "k", "b", "IFEQ", "a") == "OK"
    assert r.get("k") == "b"
    assert ex(r, "SET", "k", "c", "IFEQ", "a") is None
    assert r.get("k") == "b"
    assert ex(r, "SET", "missing", "x", "IFEQ", "a") is None
    assert r.exists("missing") == 0
    assert ex(r, "SET", "k", "d", "IFEQ", "b", "GET") == "b"
    assert r.get("k") == "d"
    assert ex(r, "SET", "k", "e", "IFEQ", "zz", "GET") == "d"
    assert r.get("k") == "d"
    assert ex(r, "SET", "k", "f", "IFEQ", "d", "EX", "100") == "OK"
    assert 99 <= r.ttl("k") <= 100
    with pytest.raises(redis.ResponseError) as e:
        ex(r, "SET", "k", "x", "IFEQ", "f", "NX")
    assert err(e) == "syntax error"
    with pytest.raises(redis.ResponseError) as e:
        ex(r, "SET", "k", "x", "IFEQ", "f", "XX")
    assert err(e) == "syntax error"
    r.hset("h", "f", "v")
    with pytest.raises(redis.ResponseError) as e:
        ex(r, "SET", "h", "x", "IFEQ", "v")
    assert err(e) == WRONGTYPE


def test_counters(r):
    assert r.incr("c") == 1
    assert r.incrby("c", 10) == 11
    assert r.decr("c") == 10
    assert r.decrby("c", 15) == -5
    assert r.incrby("c", -5) == -10
    r.set("max", "9223372036854775807")
    with pytest.raises(redis.ResponseError) as e:
        r.incr("max")
    assert err(e) == "increment or decrement would overflow"
    r.set("min", "-9223372036854775808")
    with pytest.raises(redis.ResponseError) as e:
        r.decr("min")
    assert err(e) == "increment or decrement would overflow"
    for bad in ("abc", "1.5", " 1", "", "99999999999999999999"):
        r.set("bad", bad)
        with pytest.raises(redis.ResponseError) as e:
            r.incr("bad")
        assert err(e) == NOT_INT, bad
    with pytest.raises(redis.ResponseError) as e:
        r.execute_command("INCRBY", "c", "x")
    assert err(e) == NOT_INT
    r.sadd("s", "a")
    with pytest.raises(redis.ResponseError) as e:
        r.incr("s")
    assert err(e) == WRONGTYPE
    assert r.get("c") == "-10"


# ---- sets and hashes --------------------------------------------------------------------

def test_set_commands(r):
    assert r.sadd("s", "a", "b", "c", "a") == 3
    assert r.sadd("s", "c", "d") == 1
    assert r.scard("s") == 4
    assert r.smembers("s") == {"a", "b", "c", "d"}
    assert r.sismember("s", "a") is True and r.sismember("s", "z") is False
    assert r.smismember("s", ["a", "z", "d"]) == [1, 0, 1]
    assert r.srem("s", "a", "z") == 1
    assert r.scard("missing") == 0 and r.smembers("missing") == set()
    assert r.srem("s", "b", "c", "d") == 3
    assert r.exists("s") == 0, "an emptied set must be deleted"
    r.set("str", "v")
    for call in (lambda: r.sadd("str", "x"), lambda: r.smembers("str"),
                 lambda: r.scard("str"), lambda: r.sismember("str", "x")):
        with pytest.raises(redis.ResponseError) as e:
            call()
        assert err(e) == WRONGTYPE


def test_hash_commands(r):
    assert r.hset("h", mapping={"f1": "v1", "f2": "v2"}) == 2
    assert r.hset("h", "f1", "v1b") == 0
    assert ex(r, "HMSET", "h", "f3", "v3") == "OK"
    assert r.hsetnx("h", "f1", "x") == 0 and r.hsetnx("h", "f4", "v4") == 1
    assert r.hget("h", "f1") == "v1b" and r.hget("h", "no") is None
    assert r.hmget("h", "f1", "no", "f2") == ["v1b", None, "v2"]
    assert r.hlen("h") == 4
    assert r.hexists("h", "f1") is True and r.hexists("h", "no") is False
    assert r.hstrlen("h", "f1") == 3 and r.hstrlen("h", "no") == 0
    assert r.hgetall("h") == {"f1": "v1b", "f2": "v2", "f3": "v3", "f4": "v4"}
    assert sorted(r.hkeys("h")) == ["f1", "f2", "f3", "f4"]
    assert sorted(r.hvals("h")) == ["v1b", "v2", "v3", "v4"]
    assert r.hincrby("h", "n", 5) == 5 and r.hincrby("h", "n", -7) == -2
    with pytest.raises(redis.ResponseError) as e:
        r.hincrby("h", "f1", 1)
    assert err(e) == "hash value is not an integer"
    r.hset("h", "big", "9223372036854775807")
    with pytest.raises(redis.ResponseError) as e:
        r.hincrby("h", "big", 1)
    assert err(e) == "increment or decrement would overflow"
    assert r.hdel("h", "f1", "no") == 1
    assert r.hdel("h", "f2", "f3", "f4", "n", "big") == 5
    assert r.exists("h") == 0, "an emptied hash must be deleted"
    assert r.hgetall("missing") == {}
    r.set("str", "v")
    for call in (lambda: r.hset("str", "f", "v"), lambda: r.hget("str", "f"),
                 lambda: r.hgetall("str"), lambda: r.hlen("str")):
        with pytest.raises(redis.ResponseError) as e:
            call()
        assert err(e) == WRONGTYPE


# ---- transactions -----------------------------------------------------------------------

def test_multi_exec(r):
    with r.pipeline(transaction=True) as p:
        p.set("a", 1).incr("a").sadd("s", "x").hset("h", "f", "v").get("a")
        assert p.execute() == [True, 2, 1, 1, "2"]


def test_exec_reports_runtime_errors_per_command(r):
    r.set("str", "v")
    with r.pipeline(transaction=True) as p:
        p.incr("str").set("b", 1)
        result = p.execute(raise_on_error=False)
    assert isinstance(result[0], redis.ResponseError) and str(result[0]) == NOT_INT
    assert result[1] is True and r.get("b") == "1"


def test_watch_touched_key_aborts_exec(node):
    c1 = node.client(decode_responses=True)
    c2 = node.client(decode_responses=True)
    c1.set("w", 1)
    assert ex(c1, "WATCH", "w") == "OK"
    c2.set("w", 2)
    assert ex(c1, "MULTI") == "OK"
    assert ex(c1, "SET", "w", 3) == "QUEUED"
    assert ex(c1, "EXEC") is None
    assert c1.get("w") == "2"
    # An untouched watch lets EXEC through; UNWATCH forgets the watch.
    ex(c1, "WATCH", "w")
    ex(c1, "MULTI")
    ex(c1, "SET", "w", 4)
    assert ex(c1, "EXEC") == ["OK"]
    ex(c1, "WATCH", "w")
    c2.set("w", 5)
    ex(c1, "UNWATCH")
    ex(c1, "MULTI")
    ex(c1, "SET", "w", 6)
    assert ex(c1, "EXEC") == ["OK"]
    # Expiry and deletion of a watched key also count as touches.
    ex(c1, "WATCH", "w")
    c2.delete("w")
    ex(c1, "MULTI")
    ex(c1, "SET", "w", 7)
    assert ex(c1, "EXEC") is None
    c1.close()
    c2.close()


def test_watch_with_redis_py_transaction_retries(node):
    """redis-py's optimistic-locking helper: two clients increment through WATCH/MULTI."""
    c = node.client(decode_responses=True)
    c.set("ctr", 0)

    def bump(pipe):
        value = int(pipe.get("ctr"))
        pipe.multi()
        pipe.set("ctr", value + 1)

    for _ in range(50):
        c.transaction(bump, "ctr")
    assert c.get("ctr") == "50"
    c.close()


def test_execabort_after_queueing_error(node):
    s = node.connect()
    reader = RespReader(s)
    s.sendall(encode("MULTI") + encode("SET", "a", "1") + encode("SET", "a")
              + encode("NOPE") + encode("EXEC") + encode("EXISTS", "a"))
    assert reader.read() == b"+OK\r\n"
    assert reader.read() == b"+QUEUED\r\n"
    assert reader.read() == b"-ERR wrong number of arguments for 'set' command\r\n"
    assert reader.read().startswith(b"-ERR unknown command 'NOPE'")
    assert reader.read() == (b"-EXECABORT Transaction discarded because of previous "
                             b"errors.\r\n")
    assert reader.read() == b":0\r\n"


def test_multi_misuse_errors(r):
    with pytest.raises(redis.ResponseError) as e:
        ex(r, "EXEC")
    assert err(e) == "EXEC without MULTI"
    with pytest.raises(redis.ResponseError) as e:
        ex(r, "DISCARD")
    assert err(e) == "DISCARD without MULTI"
    ex(r, "MULTI")
    with pytest.raises(redis.ResponseError) as e:
        ex(r, "MULTI")
    assert err(e) == "MULTI calls can not be nested"
    with pytest.raises(redis.ResponseError) as e:
        ex(r, "WATCH", "x")
    assert err(e) == "WATCH inside MULTI is not allowed"
    assert ex(r, "SET", "x", 1) == "QUEUED"
    assert ex(r, "DISCARD") == "OK"
    assert r.exists("x") == 0


# ---- protocol: RESP3, inline, pipelining ------------------------------------------------

def test_resp3_encodings_over_raw_socket(node):
    s = node.connect()
    reader = RespReader(s)
    s.sendall(encode("HELLO", "3"))
    hello = reader.read()
    assert hello.startswith(b"%7\r\n")
    assert b"$5\r\nproto\r\n:3\r\n" in hello
    s.sendall(encode("SADD", "s", "m") + encode("SMEMBERS", "s") + encode("HSET", "h", "f", "v")
              + encode("HGETALL", "h") + encode("GET", "nokey") + encode("CLIENT", "INFO")
              + encode("INFO", "server") + encode("HELLO", "2") + encode("GET", "nokey"))
    assert reader.read() == b":1\r\n"
    assert reader.read() == b"~1\r\n$1\r\nm\r\n"
    assert reader.read() == b":1\r\n"
    assert reader.read() == b"%1\r\n$1\r\nf\r\n$1\r\nv\r\n"
    assert reader.read() == b"_\r\n"
    for _ in range(2):  # CLIENT INFO and INFO are verbatim strings: =<len>\r\ntxt:...
        raw = reader.read()
        assert raw.startswith(b"=") and raw[raw.index(b"\r\n") + 2:].startswith(b"txt:"), raw
        length = int(raw[1:raw.index(b"\r\n")])
        assert len(raw) == raw.index(b"\r\n") + 2 + length + 2
    assert reader.read().startswith(b"*14\r\n")
    assert reader.read() == b"$-1\r\n"


def test_inline_commands(node):
    s = node.connect()
    reader = RespReader(s)
    s.sendall(b"PING\r\n")
    assert reader.read() == b"+PONG\r\n"
    s.sendall(b"SET single 'it s'\r\nGET single\r\n")
    assert reader.read() == b"+OK\r\n"
    assert reader.read() == b"$4\r\nit s\r\n"
    s.sendall(b'SET "key with space" "a\\x41\\n"\r\nGET "key with space"\n  \r\nEXISTS k\r\n')
    assert reader.read() == b"+OK\r\n"
    assert reader.read() == b"$3\r\naA\n\r\n"
    assert reader.read() == b":0\r\n"
    s.sendall(b'ECHO "unbalanced\r\n')
    assert reader.read() == b"-ERR Protocol error: unbalanced quotes in request\r\n"
    assert reader.read_until_closed(5) == b""


def test_pipelining_10000_commands_in_one_write(node):
    s = node.connect(timeout=30)
    n = 10000
    payload = b"".join(encode("INCR", "p") if i % 2 else encode("SET", f"k{i}", i)
                       for i in range(n))
    s.sendall(payload)
    reader = RespReader(s)
    for i in range(n):
        raw = reader.read()
        expect = b":%d\r\n" % ((i + 1) // 2) if i % 2 else b"+OK\r\n"
        assert raw == expect, (i, raw)
    s.sendall(encode("DBSIZE"))
    assert reader.read() == b":%d\r\n" % (n // 2 + 1)


def test_commands_split_at_every_byte_boundary(node):
    """A request may arrive in pieces of any size: one byte at a time, then random chunks."""
    s = node.connect()
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    reader = RespReader(s)
    request = encode("SET", "split", "a\r\nb") + b"PING\r\n" + encode("GET", "split")
    for i in range(len(request)):
        s.sendall(request[i:i + 1])
        time.sleep(0.001)
    assert reader.read() == b"+OK\r\n"
    assert reader.read() == b"+PONG\r\n"
    assert reader.read() == b"$4\r\na\r\nb\r\n"
    rng = random.Random(7)
    payload = b"".join(encode("INCR", "chunks") for _ in range(500))
    pos = 0
    while pos < len(payload):
        n = rng.randint(1, 300)
        s.sendall(payload[pos:pos + n])
        pos += n
    replies = [reader.read() for _ in range(500)]
    assert replies == [b":%d\r\n" % (i + 1) for i in range(500)]
