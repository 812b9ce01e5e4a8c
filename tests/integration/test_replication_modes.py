"""Replication modes of CP keyspaces on real processes (3 nodes on 127.0.0.1):

  all     a write needs every voter: with one node down it is refused (-NOREPLICAS) or, if
          the node went down after the write was proposed, answers -TIMEOUT; other keyspaces
          go on; once the node is back, writes succeed again.
  leader  a write is answered after the leader's own fsync. Isolate the leader, write to it,
          heal: the acknowledged write is gone (the lesson's asynchronous failover), and the
          old leader counts it in INFO. The same experiment on a majority keyspace never
          acknowledges the write.

Keyspaces come from an INI file given to every node with --config."""

import time

import pytest
import redis

from conftest import info_replication, poll
from test_cluster import client, err_code, partition_spec, wait_converged

KEYSPACES = ("[keyspace fast]\nmatch = fast:*\nreplication = leader\n\n"
             "[keyspace safe]\nmatch = safe:*\nreplication = all\n")


def modes_cluster(make_cluster, tmp_path, **options):
    cfg = tmp_path / "keyspaces.ini"
    cfg.write_text(KEYSPACES)
    cluster = make_cluster(3, config=str(cfg), **options)
    cluster.wait_leader()
    return cluster


def info_parsed(node):
    with client(node) as c:
        return c.info("replication")


def info_int(node, field):
    return int((info_replication(node) or {}).get(field, "0"))


def settled_leader_set(cluster, pairs, attempts=20):
    """Sets every key on the leader with every voter up; returns that leader. A leader
    change right after start (a starved host) answers TIMEOUT, TRYAGAIN or, while no
    leader is known, NOQUORUM; never NOREPLICAS (every voter is up). The sets are
    idempotent, so they are retried on the new leader."""
    last = None
    for _ in range(attempts):
        leader = cluster.wait_leader()
        try:
            with client(leader) as c:
                for key, value in pairs:
                    assert c.set(key, value) is True
            return leader
        except redis.ResponseError as e:
            last = e
            assert err_code(e) in ("TIMEOUT", "TRYAGAIN", "NOQUORUM"), e
    raise AssertionError(f"no leader accepted the writes: {last}")


@pytest.mark.timeout(90)
def test_all_mode_refuses_with_a_voter_down_and_recovers(make_cluster, tmp_path):
    cluster = modes_cluster(make_cluster, tmp_path)
    # Every voter up: accepted.
    leader = settled_leader_set(cluster, [("safe:a", "1"), ("plain:a", "1")])
    info = info_parsed(leader)
    assert info["keyspace_safe"] == {"mode": "cp", "replication": "all",
                                     "consistency": "linearizable"}, info
    assert info["keyspace_fast"]["replication"] == "leader", info

    victim = next(n for n in cluster.nodes if n is not leader)
    victim.kill9()
    # Until the leader notices, a write may wait and answer -TIMEOUT; after that it is
    # refused at once with -NOREPLICAS, which says nothing was written.
    codes = []

    def refused():
        try:
            with client(leader, timeout=5) as c:
                c.set("safe:b", str(len(codes)))
        except redis.ResponseError as e:
            codes.append(err_code(e))
            return codes[-1] == "NOREPLICAS"
        codes.append("OK")
        return False

    assert poll(refused, 20, interval=0.05), codes
    # Before the kill was noticed a write could still be confirmed by the victim (OK) or
    # time out; nothing else is a legal answer.
    assert set(codes) <= {"OK", "TIMEOUT", "NOREPLICAS"}, codes
    with client(leader) as c:
        with pytest.raises(redis.ResponseError) as e:
            c.set("safe:refused", "x")
        assert err_code(e.value) == "NOREPLICAS", str(e.value)
        assert f"voter {victim.id}" in str(e.value)
        # Keyspaces in other modes are not held up by the missing voter.
        assert c.set("plain:b", "2") is True
        assert c.set("fast:b", "2") is True
        assert c.get("safe:a") == "1"

    victim.start()

    def accepted():
        try:
            with client(leader, timeout=5) as c:
                return c.set("safe:c", "3") is True
        except redis.ResponseError:
            return False

    assert poll(accepted, 30, interval=0.1), cluster.logs()
    data = wait_converged(cluster, cluster.nodes)
    assert data["safe:c"] == "3" and "safe:refused" not in data, data


def isolate_and_write(cluster, key):
    """Isolates the leader, writes key to it, heals; returns (old leader, answer code)."""
    old = cluster.wait_leader()
    others = [n for n in cluster.nodes if n is not old]
    cluster.fault("PARTITION", partition_spec([[old.id], [n.id for n in others]]))
    try:
        with client(old, timeout=5) as c:
            code = "OK" if c.set(key, "acked") is True else "?"
    except redis.ResponseError as e:
        code = err_code(e)
    cluster.wait_leader(nodes=others)
    with client(others[0]) as c:  # the new leader's side moves on
        assert c.set(key + ":after", "1") is True
    cluster.fault("HEAL")
    cluster.wait_leader()
    return old, code


@pytest.mark.timeout(120)
def test_leader_mode_loses_an_acknowledged_write_on_failover(make_cluster, tmp_path):
    # A long election timeout keeps the isolated leader in office (check-quorum steps it
    # down after election-timeout-min) while the test writes to it.
    cluster = modes_cluster(make_cluster, tmp_path, faults=True, election_timeout_min=1500,
                            election_timeout_max=3000, request_timeout=3000)
    leader = cluster.wait_leader()
    # Normal operation: the answers are exact. (A write right after an election, or right
    # after the keyspace table is agreed, waits for its commit until the leader has applied
    # what came before; after that they are answered early.)
    counted = 0
    with client(leader) as c:
        for i in range(500):
            assert c.incr("fast:counter") == i + 1
            if i % 10 == 9 and info_int(leader, "replication_leader_acked_early") >= 10:
                counted = i + 1
                break
        assert counted > 0, info_replication(leader)
        assert c.get("fast:counter") == str(counted)
        # A transaction that also reads a key of another keyspace (or the whole db) is not
        # answered early: its answer would come from a copy that key is not kept in.
        assert c.set("plain:x", "5") is True
        for i in range(5):
            p = c.pipeline(transaction=True)
            p.get("plain:x").incr("fast:t").dbsize()
            got = p.execute()
            assert got[0] == "5" and got[1] == i + 1 and got[2] >= 2, got
        assert c.get("fast:t") == "5"
    assert info_int(leader, "replication_leader_mismatches") == 0, info_replication(leader)
    for attempt in range(3):
        old, code = isolate_and_write(cluster, f"fast:lost{attempt}")
        if code == "OK":
            break  # else the old leader stepped down before the write: try again
    assert code == "OK", code
    data = wait_converged(cluster, cluster.nodes, seconds=30)
    # Acknowledged, and gone: the new leader never had it.
    assert f"fast:lost{attempt}" not in data, data
    assert data[f"fast:lost{attempt}:after"] == "1"
    assert data["fast:counter"] == str(counted)
    assert poll(lambda: info_int(old, "replication_leader_acked_lost") >= 1, 15), \
        info_replication(old)
    for n in cluster.nodes:
        assert info_int(n, "replication_leader_mismatches") == 0, info_replication(n)


@pytest.mark.timeout(120)
def test_majority_mode_never_acknowledges_on_an_isolated_leader(make_cluster, tmp_path):
    cluster = modes_cluster(make_cluster, tmp_path, faults=True, election_timeout_min=1500,
                            election_timeout_max=3000, request_timeout=1000)
    old, code = isolate_and_write(cluster, "plain:isolated")
    assert code in ("TIMEOUT", "NOQUORUM", "TRYAGAIN"), code
    data = wait_converged(cluster, cluster.nodes, seconds=30)
    assert "plain:isolated" not in data or code == "TIMEOUT", data


def keyspaces(node):
    with client(node) as c:
        return c.execute_command("CLUSTER", "KEYSPACES")


@pytest.mark.timeout(90)
def test_keyspaces_are_agreed_through_the_log_and_reloaded_from_the_leader(make_cluster,
                                                                          tmp_path):
    own = tmp_path / "own.ini"
    own.write_text("[keyspace fast]\nmatch = fast:*\nreplication = leader\n")
    other = tmp_path / "other.ini"
    other.write_text("[keyspace slow]\nmatch = slow:*,fast:*\nreplication = all\n"
                     "consistency = stale\n")
    cluster = make_cluster(3, start=False)
    for n in cluster.nodes:  # node 1 has one table, nodes 2 and 3 another
        n.options["config"] = str(own if n.id == 1 else other)
    cluster.start()
    cluster.wait_leader()

    def agreed():
        tables = {n.id: keyspaces(n) for n in cluster.nodes}
        first = tables[1]
        if not first.startswith("# agreed at index") or any(t != first for t in tables.values()):
            return None
        return first

    table = poll(agreed, 20)
    assert table is not None, {n.id: keyspaces(n) for n in cluster.nodes}
    # Every node routes fast:* the same way, whatever its own file says.
    assert ("fast match=fast:* mode=cp replication=leader" in table) != \
        ("slow match=slow:*,fast:* mode=cp replication=all" in table), table
    for n in cluster.nodes:
        assert int(info_replication(n)["keyspaces_agreed_index"]) > 0

    # RELOAD on the leader proposes the leader's own table; every node takes it.
    leader = cluster.wait_leader()
    with client(leader) as c:
        assert c.execute_command("CLUSTER", "KEYSPACES", "RELOAD") == "OK"
    expected = "fast match=fast:*" if leader.id == 1 else "slow match=slow:*,fast:*"
    assert poll(lambda: all(expected in keyspaces(n) for n in cluster.nodes), 10), \
        {n.id: keyspaces(n) for n in cluster.nodes}
    follower = next(n for n in cluster.nodes if n is not leader)
    with client(follower) as c:
        with pytest.raises(redis.ResponseError, match="not the leader"):
            c.execute_command("CLUSTER", "KEYSPACES", "RELOAD")
    # The table survives a restart of every node (it is in the log, and in snapshots:
    # SAVE takes one on each node now, so the restart starts from it).
    for n in cluster.nodes:
        with client(n) as c:
            assert c.save() is True
            assert c.lastsave() is not None  # the time of that snapshot
            assert c.bgsave() is True
    for n in cluster.nodes:
        n.stop()
    cluster.start()
    cluster.wait_leader()
    assert poll(lambda: all(expected in keyspaces(n) for n in cluster.nodes), 10)
