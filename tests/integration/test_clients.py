"""Real clients against capkv: redis-cli, redis-benchmark, ioredis and node-redis."""

import os
import shutil
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
NODE_DIR = os.path.join(HERE, "node")


def run(argv, timeout=60, **kw):
    res = subprocess.run(argv, capture_output=True, timeout=timeout, **kw)
    return res


def cli(node, *args, input=None):
    res = run(["redis-cli", "-p", str(node.port), "-h", "127.0.0.1", *args], input=input)
    assert res.returncode == 0, res.stderr
    return res.stdout.decode()


@pytest.fixture
def redis_cli():
    assert shutil.which("redis-cli"), "redis-cli is missing (apt-get install redis-tools)"


def test_redis_cli_commands(node, redis_cli):
    assert cli(node, "SET", "a", "b") == "OK\n"
    assert cli(node, "GET", "a") == "b\n"
    assert cli(node, "INCR", "n") == "1\n"
    assert cli(node, "GET", "missing") == "\n"
    assert cli(node, "--no-raw", "GET", "missing") == "(nil)\n"
    assert cli(node, "--no-raw", "HSET", "h", "f", "v") == "(integer) 1\n"
    assert cli(node, "--no-raw", "HGETALL", "h") == '1) "f"\n2) "v"\n'
    assert cli(node, "--no-raw", "NOPE") == \
        "(error) ERR unknown command 'NOPE', with args beginning with: \n"
    # Several commands through standard input.
    out = cli(node, input=b"SET x 1\nINCRBY x 41\nGET x\n")
    assert out == "OK\n42\n42\n"


def test_redis_cli_resp3(node, redis_cli):
    out = cli(node, "-3", "--no-raw", "HGETALL", "missing")
    assert out.strip() == "(empty hash)"
    cli(node, "SADD", "s", "m")
    assert cli(node, "-3", "--no-raw", "SMEMBERS", "s") == '1~ "m"\n'
    assert cli(node, "-3", "--no-raw", "GET", "missing") == "(nil)\n"


def test_redis_cli_pipe_mass_insertion(node, redis_cli):
    payload = b"".join(
        b"*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n" % (len(k), k, len(v), v)
        for k, v in ((b"mass:%d" % i, b"val:%d" % i) for i in range(10000)))
    out = cli(node, "--pipe", input=payload)
    assert "errors: 0, replies: 10000" in out, out
    assert cli(node, "DBSIZE") == "10000\n"
    assert cli(node, "GET", "mass:9999") == "val:9999\n"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("pipeline", [1, 16])
def test_redis_benchmark(node, pipeline):
    assert shutil.which("redis-benchmark"), \
        "redis-benchmark is missing (apt-get install redis-tools)"
    res = run(["redis-benchmark", "-h", "127.0.0.1", "-p", str(node.port),
               "-t", "set,get,incr,sadd,hset,mset", "-n", "20000", "-c", "20", "-q",
               "-P", str(pipeline)], timeout=110)
    out = res.stdout.decode(errors="replace") + res.stderr.decode(errors="replace")
    assert res.returncode == 0, out
    for test in ("SET", "GET", "INCR", "SADD", "HSET", "MSET"):
        assert any(line.startswith(test) and "requests per second" in line
                   for line in out.replace("\r", "\n").splitlines()), (test, out)
    assert "error" not in out.lower(), out
    c = node.client()
    assert int(c.get("counter:__rand_int__")) > 0
    c.close()


def node_js_ready():
    node_bin = shutil.which("node")
    assert node_bin, \
        "Node.js is missing: apt-get install nodejs npm (the node clients tests need it)"
    assert os.path.isdir(os.path.join(NODE_DIR, "node_modules", "ioredis")) and \
        os.path.isdir(os.path.join(NODE_DIR, "node_modules", "redis")), (
        f"npm packages are missing: run `npm install --no-audit --no-fund` in {NODE_DIR} "
        "(scripts/run-integration.sh does it)")
    return node_bin


@pytest.mark.parametrize("client", ["ioredis", "node-redis"])
def test_node_js_client_with_default_options(node, client):
    node_bin = node_js_ready()
    res = run([node_bin, os.path.join(NODE_DIR, "clients.js"), client, str(node.port)],
              timeout=40, cwd=NODE_DIR)
    out = res.stdout.decode(errors="replace") + res.stderr.decode(errors="replace")
    assert res.returncode == 0 and f"ok {client}" in out, f"{out}\n--- capkv log:\n{node.log()}"
    c = node.client(decode_responses=True)
    assert c.get(f"t:{client}:m") == "2"
    assert c.get(f"t:{client}:pl:99") == "99"
    c.close()
