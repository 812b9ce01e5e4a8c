"""CP clusters as real processes: election, replication through Raft, leader failure, minority
partitions, random kills under load, linearizability under partitions (checked by
build/lincheck), the cluster/fault CLI and the configurations that are refused.

Nodes run on free 127.0.0.1 ports (conftest make_cluster); every running node is stopped by
PID at teardown and must exit 0 on SIGTERM; SIGKILLed nodes are restarted or left dead."""

import os
import random
import re
import subprocess
import threading
import time

import pytest
import redis

from conftest import CAPKV, ROOT, free_port, info_replication, poll

LINCHECK = os.environ.get("LINCHECK_BIN", os.path.join(ROOT, "build", "lincheck"))

# Errors a replicated request may answer with, and what each says about a write's outcome.
NOT_APPLIED = ("NOQUORUM", "TRYAGAIN")  # definitely not applied
UNKNOWN = ("TIMEOUT",)                  # proposed, outcome unknown


def err_code(e):
    """The first word of a Redis error reply ("NOQUORUM", "TIMEOUT", ...)."""
    text = str(e)
    return text.split(" ", 1)[0] if text else ""


def client(node, timeout=3.0, **kw):
    return node.client(decode_responses=True, socket_timeout=timeout,
                       socket_connect_timeout=timeout, **kw)


def stale_client(node, timeout=3.0):
    """A one-connection client whose reads are served from node's own state."""
    c = client(node, timeout, single_connection_client=True)
    assert c.execute_command("CONSISTENCY", "stale") == "OK"
    return c


def stale_dump(node):
    """{key: value} of node's own state (string keys only), or None if it does not answer."""
    try:
        with stale_client(node) as c:
            keys = sorted(c.keys("*"))
            values = c.mget(keys) if keys else []
            return dict(zip(keys, values))
    except (redis.RedisError, OSError):
        return None


def wait_converged(cluster, nodes=None, seconds=15):
    """Polls until every node in nodes holds identical data (stale reads) with the same
    applied index; returns that data. Fails with the differing dumps otherwise."""
    nodes = nodes or cluster.alive()
    last = {}

    def same():
        infos = {n.id: info_replication(n) for n in nodes}
        if any(i is None for i in infos.values()):
            return None
        applied = {i["raft_applied_index"] for i in infos.values()}
        commit = {i["raft_commit_index"] for i in infos.values()}
        if len(applied) != 1 or len(commit) != 1:
            return None
        dumps = {n.id: stale_dump(n) for n in nodes}
        last.clear()
        last.update(dumps)
        values = list(dumps.values())
        if any(v is None for v in values) or any(v != values[0] for v in values):
            return None
        return values[0]

    data = poll(same, seconds, interval=0.1)
    if data is None:
        summary = {nid: (None if d is None else len(d)) for nid, d in last.items()}
        raise AssertionError(f"nodes {[n.id for n in nodes]} did not converge in {seconds} s: "
                             f"key counts {summary}, infos {cluster.infos(nodes)}\n"
                             f"{cluster.logs()}")
    return data


def write_until_ok(nodes, key, value, seconds):
    """SET key value against the nodes in turn until one acknowledges; returns the node."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        for n in nodes:
            try:
                with client(n, timeout=2) as c:
                    if c.set(key, value):
                        return n
            except (redis.RedisError, OSError):
                pass
        time.sleep(0.05)
    raise AssertionError(f"no node of {[n.id for n in nodes]} acknowledged SET {key} in "
                         f"{seconds} s")


# ---- 1. election and replication ------------------------------------------------------------

def test_three_nodes_elect_one_leader_and_replicate_writes_from_any_node(make_cluster):
    cluster = make_cluster(3)
    leader = cluster.wait_leader()
    followers = [n for n in cluster.nodes if n is not leader]
    infos = cluster.infos()
    assert [i["role"] for i in infos.values()].count("leader") == 1, infos
    assert {i["raft_leader_id"] for i in infos.values()} == {str(leader.id)}, infos

    # A write on any node (followers forward it) is readable on every node.
    for n in cluster.nodes:
        with client(n) as c:
            assert c.set(f"from:{n.id}", f"v{n.id}") is True
    for reader in cluster.nodes:
        with client(reader) as c:
            for n in cluster.nodes:
                assert c.get(f"from:{n.id}") == f"v{n.id}", (reader.id, n.id)
            assert c.get("never:written") is None

    # Stale reads on a follower see a write through the leader eventually (bounded).
    with client(leader) as c:
        assert c.set("fresh", "1") is True
    with stale_client(followers[0]) as s:
        assert poll(lambda: s.get("fresh") == "1", 5), "follower never applied 'fresh'"

    # CLUSTER INFO on a follower names the leader and the same term, and the node's faults.
    with client(followers[1]) as c:
        text = c.execute_command("CLUSTER", "INFO")
    if isinstance(text, bytes):
        text = text.decode()
    text = str(text)
    assert "role:follower" in text, text
    assert f"raft_leader_id:{leader.id}" in text, text
    assert f"raft_term:{infos[leader.id]['raft_term']}" in text, text
    assert "fault_partitioned:0" in text and "faults_enabled:" in text, text

    # WAIT on the leader after a write counts the followers that have it.
    with client(leader, single_connection_client=True) as c:
        assert c.set("waited", "1") is True
        assert c.execute_command("WAIT", 2, 0) >= 1
    # WAIT on a follower is refused (it counts replicas on the leader only).
    with client(followers[0], single_connection_client=True) as c:
        with pytest.raises(redis.ResponseError):
            c.execute_command("WAIT", 2, 0)


def test_multi_exec_is_one_atomic_entry_seen_whole_by_readers_on_other_nodes(make_cluster):
    cluster = make_cluster(3)
    leader = cluster.wait_leader()
    writer_node, reader_node = [n for n in cluster.nodes if n is not leader]
    with client(writer_node) as w:
        p = w.pipeline(transaction=True)
        p.set("a", 0).set("b", 0).incr("txn_count")
        assert p.execute() == [True, True, 1]

    rounds = 40
    torn = []
    stop = threading.Event()

    def read():
        with client(reader_node) as r:
            while not stop.is_set():
                a, b, n = r.mget("a", "b", "txn_count")
                if not (a == b and int(n) - 1 == int(a)):
                    torn.append((a, b, n))

    t = threading.Thread(target=read)
    t.start()
    try:
        with client(writer_node) as w:
            for i in range(1, rounds + 1):
                p = w.pipeline(transaction=True)
                p.set("a", i).set("b", i).incr("txn_count")
                assert p.execute() == [True, True, i + 1]
    finally:
        stop.set()
        t.join(10)
    assert not torn, f"a reader saw a partly applied MULTI/EXEC: {torn[:5]}"
    for n in cluster.nodes:
        with client(n) as c:
            assert c.mget("a", "b", "txn_count") == [str(rounds), str(rounds), str(rounds + 1)]


def watched_incr(c, key):
    """The optimistic-lock increment: WATCH, GET, MULTI SET EXEC. Returns the value written,
    or None when EXEC aborted (another client changed the key after WATCH)."""
    with c.pipeline(transaction=True) as p:
        try:
            p.watch(key)
            value = int(p.get(key) or 0) + 1
            p.multi()
            p.set(key, value)
            assert p.execute() == [True]
            return value
        except redis.WatchError:
            return None


def test_watch_multi_exec_through_a_follower_and_the_leader(make_cluster):
    cluster = make_cluster(3)
    leader = cluster.wait_leader()
    follower, other = [n for n in cluster.nodes if n is not leader]
    for here, there in ((follower, other), (leader, follower), (follower, leader)):
        with client(here) as c, client(there) as d:
            c.set("k", "start")
            # Untouched: EXEC runs.
            with c.pipeline(transaction=True) as p:
                p.watch("k", "k2")
                assert p.get("k") == "start"
                p.multi()
                p.set("k", "mine")
                assert p.execute() == [True]
            # Changed by another client through another node after WATCH: EXEC aborts.
            with c.pipeline(transaction=True) as p:
                p.watch("k")
                assert p.get("k") == "mine"
                assert d.set("k", "theirs")
                p.multi()
                p.set("k", "lost")
                with pytest.raises(redis.WatchError):
                    p.execute()
            # UNWATCH forgets: the same change no longer aborts.
            with c.pipeline(transaction=True) as p:
                p.watch("k")
                assert d.set("k", "again")
                p.unwatch()
                p.multi()
                p.set("k", "after-unwatch")
                assert p.execute() == [True]
    wait_converged(cluster)
    for n in cluster.nodes:
        with client(n) as c:
            assert c.get("k") == "after-unwatch"


def test_watch_optimistic_lock_loop_counts_every_successful_exec(make_cluster):
    cluster = make_cluster(3)
    leader = cluster.wait_leader()
    follower = next(n for n in cluster.nodes if n is not leader)
    with client(leader) as c:
        c.set("counter", 0)
    # Interleaved by hand: b's increment lands between a's WATCH and a's EXEC every time.
    aborted = 0
    with client(follower) as a, client(leader) as b:
        for _ in range(10):
            with a.pipeline(transaction=True) as p:
                p.watch("counter")
                value = int(p.get("counter")) + 1
                assert watched_incr(b, "counter") == value
                p.multi()
                p.set("counter", value)
                with pytest.raises(redis.WatchError):
                    p.execute()
                aborted += 1
        assert int(a.get("counter")) == 10 and aborted == 10
    # Two clients race, one through a follower, one through the leader, a bounded number of
    # attempts each: the counter ends at exactly the number of EXECs that succeeded.
    attempts = 60
    results = {}

    def run(node, name):
        done = 0
        with client(node, timeout=10) as c:
            for _ in range(attempts):
                if watched_incr(c, "counter") is not None:
                    done += 1
        results[name] = done

    threads = [threading.Thread(target=run, args=(follower, "follower")),
               threading.Thread(target=run, args=(leader, "leader"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert set(results) == {"follower", "leader"}, "a client thread failed"
    successes = results["follower"] + results["leader"]
    # An EXEC aborts only when another one succeeded after its WATCH: some always succeed.
    assert successes >= 1
    wait_converged(cluster)
    for n in cluster.nodes:
        with client(n) as c:
            assert int(c.get("counter")) == 10 + successes


# ---- 2. leader failure -----------------------------------------------------------------------

def test_pipelined_clients_on_a_follower_and_the_leader_get_every_reply_in_order(make_cluster):
    """redis-py pipelines (what every client library does): 600 mixed commands in one go, on
    a follower and on the leader at once, through separate connections. Every reply comes
    in request order, a read after a write in the same pipeline sees it, errors and commands
    the node answers keep their places, and the nodes end with the same data."""
    cluster = make_cluster(3)
    leader = cluster.wait_leader()
    follower = next(n for n in cluster.nodes if n is not leader)
    for node, tag in ((follower, "f"), (leader, "l")):
        with client(node, timeout=10) as c:
            p = c.pipeline(transaction=False)
            want = []
            for i in range(100):
                p.set(f"{tag}{i}", i)
                want.append(True)
                p.get(f"{tag}{i}")
                want.append(str(i))
                p.incr(f"{tag}count")
                want.append(i + 1)
                p.ping()
                want.append(True)
                p.sadd(f"{tag}set", i)
                want.append(1)
                p.scard(f"{tag}set")
                want.append(i + 1)
            p.get(f"{tag}count")
            want.append("100")
            p.execute_command("NOSUCH", "x")
            want.append("error")
            p.get(f"{tag}99")
            want.append("99")
            got = p.execute(raise_on_error=False)
            got = ["error" if isinstance(g, redis.ResponseError) else g for g in got]
            assert got == want
            assert int(c.info("stats")["pipelined_commands"]) > 0
    data = wait_converged(cluster)
    assert data["f99"] == "99" and data["l99"] == "99" and data["lcount"] == "100"


@pytest.mark.timeout(90)
def test_killed_leader_is_replaced_and_catches_up_after_restart(make_cluster):
    cluster = make_cluster(3)
    leader = cluster.wait_leader()
    survivors = [n for n in cluster.nodes if n is not leader]

    acked = {}         # key -> value, acknowledged writes
    lock = threading.Lock()
    stop = threading.Event()
    ok_times = []      # monotonic times of acknowledged writes on survivors

    def load(node, tag):
        i = 0
        c = client(node, timeout=2)
        while not stop.is_set() and i < 5000:
            key, value = f"load:{tag}:{i}", str(i)
            i += 1
            try:
                if c.set(key, value):
                    with lock:
                        acked[key] = value
                        ok_times.append(time.monotonic())
            except (redis.RedisError, OSError):
                time.sleep(0.01)
            time.sleep(0.01)
        c.close()

    threads = [threading.Thread(target=load, args=(n, n.id)) for n in survivors]
    for t in threads:
        t.start()
    try:
        assert poll(lambda: len(acked) >= 20, 10), "the load did not get going"
        killed_at = time.monotonic()
        leader.kill9()
        # The first write acknowledged after the kill marks recovery.
        recovered = poll(lambda: [t for t in list(ok_times) if t > killed_at + 0.001], 10,
                         interval=0.01)
        assert recovered, f"no write succeeded within 10 s of killing the leader\n" \
                          f"{cluster.logs()}"
        first_ok = min(recovered)
        print(f"\nleader {leader.id} SIGKILLed: a write succeeded again after "
              f"{(first_ok - killed_at) * 1000:.0f} ms")
        assert first_ok - killed_at < 5.0
        new_leader = cluster.wait_leader(nodes=survivors)
        assert new_leader is not leader
        time.sleep(0.3)  # some writes while the old leader is down
        leader.start()   # on its own data directory
        time.sleep(0.5)  # and some while it catches up
    finally:
        stop.set()
        for t in threads:
            t.join(10)

    data = wait_converged(cluster, cluster.nodes, seconds=15)
    missing = {k: v for k, v in acked.items() if data.get(k) != v}
    assert not missing, f"{len(missing)} acknowledged writes missing, e.g. " \
                        f"{list(missing.items())[:5]}"
    assert all(k.startswith("load:") for k in data), "keys nobody wrote"


# ---- 3. minority partition -------------------------------------------------------------------

def partition_spec(groups):
    return "|".join(",".join(str(i) for i in g) for g in groups)


@pytest.mark.timeout(90)
def test_leader_in_minority_steps_down_refuses_and_loses_nothing_after_heal(make_cluster):
    cluster = make_cluster(3, faults=True)
    old = cluster.wait_leader()
    majority = [n for n in cluster.nodes if n is not old]
    for i in range(10):
        with client(cluster.nodes[i % 3]) as c:
            assert c.set(f"before:{i}", str(i)) is True

    cluster.fault("PARTITION", partition_spec([[old.id], [n.id for n in majority]]))
    # The old leader, hearing no majority, stops being leader (bounded).
    stepped = poll(lambda: (info_replication(old) or {}).get("role") not in (None, "leader"),
                   10, interval=0.05)
    assert stepped, f"isolated leader still leads: {info_replication(old)}\n{old.log()}"

    # On the minority side writes and linearizable reads fail; none is acknowledged.
    refused = []  # minority writes answered -NOQUORUM: they must never appear
    with client(old, timeout=5) as c:
        for i in range(3):
            with pytest.raises(redis.ResponseError) as e:
                c.set(f"minority:{i}", "x")
            assert err_code(e.value) in ("NOQUORUM", "TIMEOUT"), str(e.value)
            if err_code(e.value) == "NOQUORUM":
                refused.append(f"minority:{i}")
            with pytest.raises(redis.ResponseError) as e:
                c.get("before:0")
            assert err_code(e.value) in ("NOQUORUM",), str(e.value)

    # The majority elects a leader and accepts writes and reads.
    new = cluster.wait_leader(nodes=majority)
    assert int(info_replication(new)["raft_term"]) > 0
    acked = {}
    for i in range(30):
        n = majority[i % 2]
        with client(n) as c:
            assert c.set(f"after:{i}", str(i)) is True
            acked[f"after:{i}"] = str(i)
    with client(majority[0]) as c:
        assert c.get("after:29") == "29"
        assert c.get("minority:0") is None

    cluster.fault("HEAL")
    cluster.wait_leader()
    data = wait_converged(cluster, cluster.nodes, seconds=15)
    for i in range(10):
        assert data.get(f"before:{i}") == str(i)
    missing = {k: v for k, v in acked.items() if data.get(k) != v}
    assert not missing, f"acknowledged writes lost after heal: {missing}"
    # A write answered -NOQUORUM was not applied, not even after the heal.
    assert not [k for k in refused if k in data], (refused, sorted(data))
    # The old leader serves linearizable reads again.
    with client(old) as c:
        assert c.get("after:0") == "0"


# ---- 4. random kills under load --------------------------------------------------------------

class KillLoad:
    """What the load threads of the kill test saw acknowledged."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acked_keys = {}
        self.incr_acked = [0]
        self.incr_unknown = [0]  # INCRs answered -TIMEOUT or cut off: may or may not count
        self.errors = {}


def kill_load(cluster, st, tag, seed, stop):
    """SETs unique keys and INCRs "counter" on random running nodes until stop (bounded)."""
    rng = random.Random(seed * 100 + tag)
    conns = {}
    for i in range(20000):
        if stop.is_set():
            break
        alive = [n for n in cluster.nodes if n.alive()]
        if not alive:
            time.sleep(0.05)
            continue
        n = rng.choice(alive)
        c = conns.get(n.id)
        if c is None:
            c = conns[n.id] = client(n, timeout=2)
        is_incr = i % 3 == 0
        try:
            if is_incr:
                c.incr("counter")
                with st.lock:
                    st.incr_acked[0] += 1
            elif c.set(f"k:{tag}:{i}", str(i)):
                with st.lock:
                    st.acked_keys[f"k:{tag}:{i}"] = str(i)
        except (redis.RedisError, OSError) as e:
            code = err_code(e) if isinstance(e, redis.ResponseError) else type(e).__name__
            with st.lock:
                st.errors[code] = st.errors.get(code, 0) + 1
                if is_incr and code not in NOT_APPLIED:
                    st.incr_unknown[0] += 1
            time.sleep(0.02)
    for c in conns.values():
        c.close()


@pytest.mark.timeout(120)
def test_acknowledged_writes_survive_random_kills_of_up_to_two_of_five(make_cluster):
    cluster = make_cluster(5)
    cluster.wait_leader()
    seed = int(os.environ.get("CAPKV_TEST_SEED", time.time_ns() % 1_000_000))
    rng = random.Random(seed)  # the kill schedule; thread timing still varies
    print(f"\nseed {seed}")

    state = KillLoad()
    stop = threading.Event()
    acked_keys, incr_acked, incr_unknown, errors = (state.acked_keys, state.incr_acked,
                                                     state.incr_unknown, state.errors)

    def load(tag):
        kill_load(cluster, state, tag, seed, stop)

    threads = [threading.Thread(target=load, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    kills = 0
    try:
        deadline = time.monotonic() + 16
        down = []
        while time.monotonic() < deadline:
            time.sleep(rng.uniform(0.5, 1.5))
            if down and (len(down) == 2 or rng.random() < 0.5):
                n = down.pop(rng.randrange(len(down)))
                n.start()
            else:
                n = rng.choice([n for n in cluster.nodes if n.alive()])
                n.kill9()
                kills += 1
                down.append(n)
            assert len(down) <= 2
        for n in down:
            n.start()
        time.sleep(1)  # a last stretch of load with all five up
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    print(f"{kills} kills, {len(acked_keys)} SETs and {incr_acked[0]} INCRs acknowledged "
          f"({incr_unknown[0]} INCRs unknown), errors {errors}")
    assert kills >= 5
    assert len(acked_keys) >= 50 and incr_acked[0] >= 20, "too little load got through"

    leader = cluster.wait_leader()
    with client(leader, timeout=10) as c:
        keys = list(acked_keys)
        got = {}
        for i in range(0, len(keys), 500):
            got.update(zip(keys[i:i + 500], c.mget(keys[i:i + 500])))
        counter = int(c.get("counter"))
    missing = {k: v for k, v in acked_keys.items() if got[k] != v}
    assert not missing, f"{len(missing)} acknowledged SETs missing on the leader, e.g. " \
                        f"{list(missing.items())[:5]}"
    # Every acknowledged INCR counted; a refused one (-NOQUORUM, -TRYAGAIN) did not.
    assert incr_acked[0] <= counter <= incr_acked[0] + incr_unknown[0], \
        (incr_acked[0], counter, incr_unknown[0])

    data = wait_converged(cluster, cluster.nodes, seconds=20)
    assert all(data.get(k) == v for k, v in acked_keys.items())
    assert int(data["counter"]) == counter


# ---- 5. linearizability under partitions -----------------------------------------------------

KEYS = ("x", "y", "z")
LIN_CLIENTS = 5
LIN_OPS_PER_CLIENT_MAX = 1500
LIN_SECONDS = 15


def run_lincheck(history_path, steps=None):
    argv = [LINCHECK] + (["--steps", str(steps)] if steps else []) + [str(history_path)]
    res = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    return res.returncode, res.stdout + res.stderr


class History:
    """A lincheck history being recorded by several client threads (ms since start)."""

    def __init__(self):
        self.t0 = time.monotonic()
        self.lock = threading.Lock()
        self.lines = []
        self.outcomes = {}  # "put ok", "cas NOQUORUM", ... -> count
        self.last_value = 0

    def now_ms(self):
        return int((time.monotonic() - self.t0) * 1000)

    def new_value(self):
        with self.lock:
            self.last_value += 1
            return self.last_value

    def count(self, outcome):
        with self.lock:
            self.outcomes[outcome] = self.outcomes.get(outcome, 0) + 1

    def record(self, line, outcome):
        with self.lock:
            self.lines.append(line)
        self.count(outcome)


def lin_op(c, h, cid, kind, key, value, expected, seen):
    """One get/put/cas on client c, recorded in h (failed reads are dropped)."""
    args = f"{key} {value}" if kind == "put" else f"{key} {expected} {value}"
    start = h.now_ms()
    try:
        if kind == "get":
            got = c.get(key)
            seen[key] = None if got is None else int(got)
            h.record(f"{cid} {start} {h.now_ms()} get {key} -> "
                     f"{'nil' if got is None else int(got)}", "get")
        elif kind == "put":
            assert c.set(key, value) is True
            h.record(f"{cid} {start} {h.now_ms()} put {args} -> ok", "put ok")
        else:
            swapped = c.execute_command("SET", key, value, "IFEQ", expected)
            assert swapped in (True, None), swapped  # redis-py turns SET's +OK into True
            h.record(f"{cid} {start} {h.now_ms()} cas {args} -> "
                     f"{'ok' if swapped else 'fail'}", f"cas {'OK' if swapped else 'nil'}")
        return True
    except redis.ResponseError as e:
        end, code = h.now_ms(), err_code(e)
        if kind == "get":
            h.count(f"get {code}")
        elif code in NOT_APPLIED:
            h.record(f"{cid} {start} {end} {kind} {args} -> error", f"{kind} {code}")
        else:
            assert code in UNKNOWN, f"unexpected error {e}"
            h.record(f"{cid} {start} - {kind} {args} -> timeout", f"{kind} {code}")
    except (redis.ConnectionError, redis.TimeoutError, OSError) as e:
        if kind != "get":
            h.record(f"{cid} {start} - {kind} {args} -> timeout", f"{kind} {type(e).__name__}")
        c.close()
    return False


def lin_client(cluster, h, cid, seed, stop):
    """Random get/put/cas on KEYS against random nodes until stop (bounded count)."""
    rng = random.Random(seed * 10 + cid)
    conns = {n.id: client(n, timeout=1.5) for n in cluster.nodes}
    seen = {}
    for _ in range(LIN_OPS_PER_CLIENT_MAX):
        if stop.is_set():
            break
        c = conns[rng.choice(cluster.nodes).id]
        key = rng.choice(KEYS)
        kind = rng.choice(("get", "put", "cas"))
        value = h.new_value()
        # cas expects the value this client saw last (often current), else a recent one
        if seen.get(key) is not None and rng.random() < 0.7:
            expected = seen[key]
        else:
            expected = rng.randrange(max(1, value - 10), value + 1)
        if not lin_op(c, h, cid, kind, key, value, expected, seen):
            time.sleep(0.02)
        time.sleep(rng.uniform(0, 0.01))
    for c in conns.values():
        c.close()


def lin_nemesis(cluster, h, seed, stop, faults):
    """Cuts one node (often the leader) off the other two, heals, again, until stop."""
    rng = random.Random(seed)
    ids = [n.id for n in cluster.nodes]
    while not stop.wait(rng.uniform(0.8, 1.5)):
        lead = cluster.leader() if rng.randrange(3) == 0 else None
        lone = lead.id if lead else rng.choice(ids)
        spec = partition_spec([[lone], [i for i in ids if i != lone]])
        for args in (("PARTITION", spec), ("HEAL",)):
            try:
                cluster.fault(*args)
                faults.append(f"{h.now_ms()} {' '.join(args)}{' (leader)' if lead else ''}")
            except (redis.RedisError, OSError, AssertionError) as e:
                faults.append(f"{h.now_ms()} {' '.join(args)} failed: {e}")
            if args[0] == "PARTITION" and stop.wait(rng.uniform(0.8, 2.0)):
                break


def check_lincheck_catches_a_bad_read(history, tmp_path):
    """The checker does look at this history: a read of a value nobody wrote is caught."""
    gets = [i for i, line in enumerate(history) if " get " in line]
    assert gets
    bad = list(history)
    bad[gets[len(gets) // 2]] = re.sub(r"-> \S+$", "-> 987654321", bad[gets[len(gets) // 2]])
    bad_path = tmp_path / "history-broken.txt"
    bad_path.write_text("\n".join(bad) + "\n")
    rc, out = run_lincheck(bad_path)
    assert rc == 1, f"lincheck missed a read of a value never written: exit {rc}: {out}"


@pytest.mark.timeout(150)
def test_history_under_partitions_is_linearizable(make_cluster, tmp_path):
    assert os.access(LINCHECK, os.X_OK), f"{LINCHECK} is missing: run make -j2"
    cluster = make_cluster(3, faults=True)
    cluster.wait_leader()
    seed = int(os.environ.get("CAPKV_TEST_SEED", time.time_ns() % 1_000_000))
    print(f"\nseed {seed}")
    h = History()
    stop = threading.Event()
    faults = []
    crashed = []

    def guarded(target, *args):
        try:
            target(*args)
        except BaseException as e:  # an unexpected reply: fail the test, not just the thread
            crashed.append(f"{target.__name__}{args[2:3]}: {e!r}")
            stop.set()

    threads = [threading.Thread(target=guarded, args=(lin_client, cluster, h, cid, seed, stop))
               for cid in range(1, LIN_CLIENTS + 1)]
    threads.append(threading.Thread(target=guarded,
                                    args=(lin_nemesis, cluster, h, seed, stop, faults)))
    for t in threads:
        t.start()
    try:
        stop.wait(LIN_SECONDS)
    finally:
        stop.set()
        for t in threads:
            t.join(15)
    cluster.fault("HEAL")
    print(f"{len(h.lines)} ops: {dict(sorted(h.outcomes.items()))}")
    print("faults: " + "; ".join(faults))
    assert not crashed, crashed
    assert h.outcomes.get("put ok", 0) + h.outcomes.get("cas OK", 0) >= 50, \
        f"too few writes succeeded to check anything: {h.outcomes}"
    assert len(faults) >= 6, faults

    path = tmp_path / "history.txt"
    path.write_text("\n".join(h.lines) + "\n")
    rc, out = run_lincheck(path)
    if rc == 2:
        print(f"lincheck: {out.strip()}; retrying with a larger step budget")
        rc, out = run_lincheck(path, steps=50_000_000)
    print(f"lincheck: {out.strip()}")
    assert rc == 0, f"lincheck exit {rc}: {out}\nhistory in {path}\n{cluster.logs()}"
    check_lincheck_catches_a_bad_read(h.lines, tmp_path)
    cluster.wait_leader()


# ---- 6. the cluster and fault CLI ------------------------------------------------------------

def free_base_port(nodes):
    """A base port P with P..P+n-1 and P+1000..P+1000+n-1 free a moment ago."""
    import socket
    for _ in range(50):
        base = random.randrange(20000, 29000)
        socks = []
        try:
            for p in list(range(base, base + nodes)) + list(range(base + 1000,
                                                                  base + 1000 + nodes)):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise AssertionError("no free port range")


def capkv_cli(*args, timeout=30):
    return subprocess.run([CAPKV, *args], capture_output=True, text=True, timeout=timeout)


def status_rows(out):
    """Rows of `cluster status`: {id: {role, term, leader, pid, ...}}."""
    rows = {}
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 8 and f[0].isdigit():
            rows[int(f[0])] = {"client": f[1], "pid": f[2], "role": f[3], "term": f[4],
                               "leader": f[5]}
    return rows


@pytest.mark.timeout(90)
def test_cluster_up_status_fault_down_round_trip(tmp_path):
    d = tmp_path / "cl"
    base = free_base_port(3)
    up = capkv_cli("cluster", "up", "--nodes", "3", "--base-port", str(base), "--dir", str(d),
                   "--enable-faults")
    pids = []
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        assert "leader: node" in up.stdout, up.stdout
        for i in range(1, 4):
            pids.append(int((d / f"node-{i}" / "pid").read_text().strip()))
        st = capkv_cli("cluster", "status", "--dir", str(d))
        assert st.returncode == 0, st.stdout + st.stderr
        rows = status_rows(st.stdout)
        assert sorted(rows) == [1, 2, 3], st.stdout
        assert [r["role"] for r in rows.values()].count("leader") == 1, st.stdout
        assert [int(r["pid"]) for r in rows.values()] == pids, st.stdout
        leader_id = next(i for i, r in rows.items() if r["role"] == "leader")
        assert {r["leader"] for r in rows.values()} == {str(leader_id)}, st.stdout

        others = [i for i in (1, 2, 3) if i != leader_id]
        cut = capkv_cli("fault", "partition", f"{leader_id}|{others[0]},{others[1]}",
                        "--dir", str(d))
        assert cut.returncode == 0, cut.stdout + cut.stderr

        def new_leader():
            s = status_rows(capkv_cli("cluster", "status", "--dir", str(d)).stdout)
            leaders = [i for i, r in s.items() if r["role"] == "leader"]
            return leaders == [others[0]] or leaders == [others[1]]

        assert poll(new_leader, 10, interval=0.2), \
            capkv_cli("cluster", "status", "--dir", str(d)).stdout
        r = redis.Redis(port=base + leader_id - 1, socket_timeout=5, decode_responses=True)
        with pytest.raises(redis.ResponseError, match="NOQUORUM|TIMEOUT"):
            r.set("cut", "1")
        r.close()

        heal = capkv_cli("fault", "heal", "--dir", str(d))
        assert heal.returncode == 0, heal.stdout + heal.stderr
        r = redis.Redis(port=base + leader_id - 1, socket_timeout=5, decode_responses=True)
        assert poll(lambda: _try_set(r, "healed", "1"), 10, interval=0.1)
        r.close()
        for i in range(3):
            with redis.Redis(port=base + i, socket_timeout=5) as c:
                assert c.get("healed") == b"1"
    finally:
        down = capkv_cli("cluster", "down", "--dir", str(d))
        for pid in pids:  # the CLI stopped them; make sure, by PID
            if _pid_alive(pid):
                os.kill(pid, 9)
    assert down.returncode == 0, down.stdout + down.stderr
    assert down.stdout.count("stopped") == 3, down.stdout
    assert not any(_pid_alive(p) for p in pids)


def _try_set(r, key, value):
    try:
        return r.set(key, value)
    except (redis.RedisError, OSError):
        return False


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie of ours would still answer; capkv cluster up's children are not ours.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


def test_fault_commands_are_refused_without_enable_faults(make_cluster):
    cluster = make_cluster(3)
    cluster.wait_leader()
    with client(cluster.nodes[0]) as c:
        with pytest.raises(redis.ResponseError):
            c.execute_command("FAULT", "PARTITION", "1|2,3")
        assert c.set("still", "works") is True


# ---- 7. configurations that are refused or warned about -------------------------------------

def test_cp_setting_on_an_ap_keyspace_is_refused_at_start(tmp_path):
    cfg = tmp_path / "node.ini"
    cfg.write_text(f"[node]\nlisten = 127.0.0.1:{free_port()}\ndir = {tmp_path / 'd'}\n\n"
                   "[keyspace carts]\nmatch = cart:*\nmode = ap\nreplication = all\n")
    res = subprocess.run([CAPKV, "server", "--config", str(cfg)], capture_output=True, text=True,
                         timeout=15, stdin=subprocess.DEVNULL)
    assert res.returncode != 0
    assert "replication applies to mode = cp keyspaces" in res.stderr + res.stdout, res.stderr


def test_even_cluster_size_starts_with_a_warning(make_cluster):
    cluster = make_cluster(4)
    cluster.wait_leader()
    with client(cluster.nodes[3]) as c:
        assert c.set("four", "4") is True
    for n in cluster.nodes:
        assert poll(lambda: "even number of voters" in n.full_log(), 5), n.log()
