"""Fixtures for capkv's integration tests.

Every test starts its own capkv node(s) on free 127.0.0.1 ports with a data directory under
tmp_path, and stops them by PID at teardown. A node that is still running at teardown gets
SIGTERM and must exit with status 0 (a crash or a hang fails the test); its log is attached
to every failure message. Every test runs under a wall-clock limit (SIGALRM), default
TEST_SECONDS_DEFAULT, raised per test with @pytest.mark.timeout(N).
"""

import os
import signal
import socket
import subprocess
import time

import pytest
import redis

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
CAPKV = os.environ.get("CAPKV_BIN", os.path.join(ROOT, "build", "capkv"))
REDIS_SERVER = "/usr/bin/redis-server"

TEST_SECONDS_DEFAULT = 60
START_SECONDS_MAX = 15
STOP_SECONDS_MAX = 15
LOG_TAIL_BYTES = 4000


def pytest_configure(config):
    config.addinivalue_line("markers", "timeout(seconds): wall-clock limit for one test")


class TestTimeout(Exception):
    pass


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item):
    marker = item.get_closest_marker("timeout")
    seconds = marker.args[0] if marker else TEST_SECONDS_DEFAULT

    def on_alarm(signum, frame):
        raise TestTimeout(f"test exceeded its limit of {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def free_port():
    """A port that nothing listened on a moment ago (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_ports(count):
    """count distinct ports, each free a moment ago (all held at once while picking, so the
    kernel cannot hand out the same one twice)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(s)
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def wait_port(port, proc, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.02)
    raise AssertionError(f"{what} did not accept connections on port {port} in {seconds} s")


class Node:
    """One capkv process. Options are passed as --name value flags (underscores -> dashes);
    True passes a bare --name (--enable-faults), None or False leaves it out."""

    def __init__(self, data_dir, log_path, options):
        self.port = free_port()
        self.dir = str(data_dir)
        self.log_path = str(log_path)
        self.options = dict(options)
        self.proc = None
        os.makedirs(self.dir, exist_ok=True)

    def argv(self):
        args = [CAPKV, "server", "--listen", f"127.0.0.1:{self.port}", "--dir", self.dir]
        for name, value in self.options.items():
            if value is True:  # a flag without a value (--enable-faults)
                args.append("--" + name.replace("_", "-"))
            elif value is not None and value is not False:
                args += ["--" + name.replace("_", "-"), str(value)]
        return args

    def spawn(self):
        """Start the process without waiting; returns it."""
        assert self.proc is None or self.proc.poll() is not None
        with open(self.log_path, "ab") as log:
            log.write(b"---- start: " + " ".join(self.argv()).encode() + b"\n")
            self.proc = subprocess.Popen(self.argv(), stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL)
        return self.proc

    def start(self):
        self.spawn()
        if not wait_port(self.port, self.proc, START_SECONDS_MAX, "capkv"):
            raise AssertionError(
                f"capkv exited with status {self.proc.returncode} while starting\n{self.log()}")
        return self

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                f.seek(0, os.SEEK_END)
                size = f.tell()
                f.seek(max(0, size - LOG_TAIL_BYTES))
                return f.read().decode(errors="replace")
        except OSError:
            return "(no log)"

    def full_log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        """SIGTERM; the node must exit with status 0 within STOP_SECONDS_MAX."""
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise AssertionError(
                f"capkv had already exited (status {self.proc.returncode})\n{self.log()}")
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(STOP_SECONDS_MAX)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
            raise AssertionError(f"capkv did not stop on SIGTERM in {STOP_SECONDS_MAX} s\n"
                                 f"{self.log()}")
        assert rc == 0, f"capkv exited with status {rc} on SIGTERM\n{self.log()}"

    def kill9(self):
        assert self.alive(), f"capkv is not running\n{self.log()}"
        self.proc.kill()
        self.proc.wait(10)

    def restart(self):
        self.stop()
        return self.start()

    def client(self, **kw):
        kw.setdefault("socket_timeout", 10)
        kw.setdefault("socket_connect_timeout", 5)
        return redis.Redis(host="127.0.0.1", port=self.port, **kw)

    def connect(self, timeout=10):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        s.settimeout(timeout)
        return s


@pytest.fixture
def make_node(tmp_path):
    """make_node(name="n1", start=True, **options) -> Node. Teardown stops each by PID."""
    assert os.access(CAPKV, os.X_OK), f"{CAPKV} is missing: run make -j2 first"
    nodes = []

    def make(name="n1", start=True, **options):
        node = Node(tmp_path / name, tmp_path / f"{name}.log", options)
        nodes.append(node)
        if start:
            node.start()
        return node

    yield make
    problems = []
    for node in nodes:
        if node.alive():
            try:
                node.stop()
            except AssertionError as e:
                problems.append(str(e))
    assert not problems, "\n".join(problems)


@pytest.fixture
def node(make_node):
    return make_node()


@pytest.fixture
def r(node):
    c = node.client(decode_responses=True)
    yield c
    c.close()


class RedisRef:
    """A redis-server without persistence, for differential tests."""

    def __init__(self, tmp_path):
        self.port = free_port()
        self.dir = tmp_path / "redis-ref"
        os.makedirs(self.dir, exist_ok=True)
        self.log_path = tmp_path / "redis-ref.log"
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(self.dir)],
                stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        assert wait_port(self.port, self.proc, START_SECONDS_MAX, "redis-server"), \
            open(self.log_path).read()

    def connect(self, timeout=10):
        s = socket.create_connection(("127.0.0.1", self.port), timeout=timeout)
        s.settimeout(timeout)
        return s

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def redis_ref(tmp_path):
    assert os.access(REDIS_SERVER, os.X_OK), \
        f"{REDIS_SERVER} is missing (apt-get install redis-server)"
    ref = RedisRef(tmp_path)
    yield ref
    ref.stop()


# ---- raw RESP helpers -------------------------------------------------------------------

def encode(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        if isinstance(a, str):
            a = a.encode()
        elif isinstance(a, int):
            a = str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class RespReader:
    """Reads whole RESP2/RESP3 replies from a socket and returns their raw bytes."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed by server")
        self.buf += chunk

    def _line(self, pos):
        while True:
            i = self.buf.find(b"\r\n", pos)
            if i >= 0:
                return i
            self._fill()

    def _skip(self, pos):
        """Returns the position after the reply starting at pos."""
        end = self._line(pos)
        kind = self.buf[pos:pos + 1]
        body = self.buf[pos + 1:end]
        after = end + 2
        if kind in b"+-:_#,(":
            return after
        if kind in b"$=!":
            n = int(body)
            if n < 0:
                return after
            while len(self.buf) < after + n + 2:
                self._fill()
            return after + n + 2
        if kind in b"*~>%|":
            n = int(body)
            if n < 0:
                return after
            if kind in b"%|":
                n *= 2
            for _ in range(n):
                after = self._skip(after)
            return after
        raise AssertionError(f"unexpected RESP type byte {kind!r} in {self.buf[pos:pos+80]!r}")

    def read(self):
        end = self._skip(0)
        raw, self.buf = self.buf[:end], self.buf[end:]
        return raw

    def read_until_closed(self, seconds=10):
        """All bytes until the server closes the connection (asserts it does in time)."""
        deadline = time.monotonic() + seconds
        data = self.buf
        self.buf = b""
        self.sock.settimeout(0.5)
        while time.monotonic() < deadline:
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return data
            except socket.timeout:
                continue
            if not chunk:
                return data
            data += chunk
        raise AssertionError(
            f"server did not close the connection in {seconds} s; got {data[:200]!r}")


def command(sock, *args, reader=None):
    reader = reader or RespReader(sock)
    sock.sendall(encode(*args))
    return reader.read()


def poll(predicate, seconds, interval=0.02):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


# ---- clusters ---------------------------------------------------------------------------

CLUSTER_LEADER_SECONDS = 15


def info_replication(node, timeout=1.0):
    """INFO replication of node as a dict of strings; None when it does not answer."""
    try:
        with node.client(decode_responses=True, socket_timeout=timeout,
                         socket_connect_timeout=timeout) as c:
            return {k: str(v) for k, v in c.info("replication").items()}
    except (redis.RedisError, OSError):
        return None


class Cluster:
    """N capkv server processes that know each other through --peers (ids 1..N).

    nodes[i] has id i+1. Every node is a conftest Node, so make_node's teardown stops the
    running ones by PID and asserts exit status 0 (a SIGKILLed node is not running)."""

    def __init__(self, make_node, size, faults=False, **options):
        ports = free_ports(2 * size)  # client and peer ports, all distinct
        peer_ports = ports[size:]
        self.peers = ",".join(f"{i + 1}@127.0.0.1:{p}" for i, p in enumerate(peer_ports))
        self.nodes = []
        for i in range(size):
            node = make_node(f"node{i + 1}", start=False, id=i + 1,
                             peer_listen=f"127.0.0.1:{peer_ports[i]}", peers=self.peers,
                             enable_faults=faults, **options)
            node.port = ports[i]  # instead of the one Node picked alone
            node.id = i + 1
            node.peer_port = peer_ports[i]
            self.nodes.append(node)

    def start(self):
        for node in self.nodes:
            node.spawn()
        for node in self.nodes:
            if not wait_port(node.port, node.proc, START_SECONDS_MAX, f"capkv node {node.id}"):
                raise AssertionError(f"node {node.id} exited with status "
                                     f"{node.proc.returncode} while starting\n{node.log()}")
        return self

    def node(self, node_id):
        return self.nodes[node_id - 1]

    def alive(self):
        return [n for n in self.nodes if n.alive()]

    def infos(self, nodes=None):
        return {n.id: info_replication(n) for n in (nodes or self.alive())}

    def leader(self, nodes=None):
        """The node among nodes (default: the running ones) that says it is leader and that a
        majority of the cluster names as leader in its term; None if there is none now."""
        nodes = nodes or self.alive()
        infos = self.infos(nodes)
        majority = len(self.nodes) // 2 + 1
        for n in nodes:
            mine = infos[n.id]
            if not mine or mine.get("role") != "leader":
                continue
            agree = sum(1 for i in infos.values()
                        if i and i.get("raft_leader_id") == str(n.id)
                        and i.get("raft_term") == mine.get("raft_term"))
            if agree >= majority:
                return n
        return None

    def wait_leader(self, seconds=CLUSTER_LEADER_SECONDS, nodes=None):
        leader = poll(lambda: self.leader(nodes), seconds, interval=0.05)
        assert leader is not None, (f"no leader among nodes "
                                    f"{[n.id for n in (nodes or self.alive())]} in {seconds} s: "
                                    f"{self.infos()}\n{self.logs()}")
        return leader

    def fault(self, *args, nodes=None):
        """Sends FAULT args... to every running node (or nodes); asserts each says OK."""
        for n in (nodes or self.alive()):
            with n.client(decode_responses=True, socket_timeout=5) as c:
                assert c.execute_command("FAULT", *args) == "OK", n.id

    def logs(self):
        return "\n".join(f"== node {n.id} ==\n{n.log()}" for n in self.nodes)


@pytest.fixture
def make_cluster(make_node):
    """make_cluster(size=3, faults=False, start=True, **options) -> Cluster; the leader is not
    awaited (call wait_leader). Options go to every node as --name value."""

    def make(size=3, faults=False, start=True, **options):
        cluster = Cluster(make_node, size, faults, **options)
        if start:
            cluster.start()
        return cluster

    return make
