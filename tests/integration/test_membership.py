"""Membership changes on real processes (127.0.0.1): CLUSTER ADD of a node started with
--join (it catches up as a learner and the leader promotes it), the added voter counting in
majorities, CLUSTER REMOVE of a follower and of the leader itself, the refusals, a restart
of the whole cluster that keeps the new configuration, and the `capkv cluster add|remove`
CLI on a local cluster."""

import os

import pytest
import redis

from conftest import free_ports, info_replication, poll, wait_port
from test_cluster import (_pid_alive, capkv_cli, client, free_base_port, status_rows,
                          wait_converged)


def members(node):
    """{id: (address, role)} from CLUSTER MEMBERS on node."""
    with client(node) as c:
        text = c.execute_command("CLUSTER", "MEMBERS")
    out = {}
    for line in text.splitlines():
        f = line.split()
        out[int(f[0])] = (f[1], f[2])
    return out


def joiner(make_node, cluster, node_id, **options):
    """A node started with --join: it knows the members' addresses, and no configuration."""
    port, peer_port = free_ports(2)
    node = make_node(f"node{node_id}", start=False, id=node_id,
                     peer_listen=f"127.0.0.1:{peer_port}",
                     peers=cluster.peers + f",{node_id}@127.0.0.1:{peer_port}", join=True,
                     **options)
    node.port = port
    node.id = node_id
    node.peer_port = peer_port
    return node


@pytest.mark.timeout(120)
def test_add_a_joining_node_then_remove_a_follower_and_the_leader(make_cluster, make_node):
    cluster = make_cluster(3)
    leader = cluster.wait_leader()
    with client(leader) as c:
        for i in range(200):
            c.set(f"k{i}", str(i))
    new = joiner(make_node, cluster, 4)
    new.start()
    # Not in any configuration yet: it takes no part and says so.
    assert info_replication(new)["raft_leader_id"] == "0"
    with client(leader) as c:
        with pytest.raises(redis.ResponseError, match="already a member"):
            c.execute_command("CLUSTER", "ADD", 1, "127.0.0.1:1")
        for bad in ("no-port", "localhost:8004", "127.0.0.1:0", "300.0.0.1:80", "1.2.3:80"):
            with pytest.raises(redis.ResponseError, match="numeric IP and port"):
                c.execute_command("CLUSTER", "ADD", 4, bad)
        assert c.execute_command("CLUSTER", "ADD", 4, f"127.0.0.1:{new.peer_port}") == "OK"
    follower = next(n for n in cluster.nodes if n is not leader)
    with client(follower) as c:
        with pytest.raises(redis.ResponseError, match="not the leader"):
            c.execute_command("CLUSTER", "REMOVE", 4)
    assert poll(lambda: members(leader).get(4, ("", ""))[1] == "voter", 20), members(leader)
    assert members(leader)[4][0] == f"127.0.0.1:{new.peer_port}"
    cluster.nodes.append(new)
    data = wait_converged(cluster, cluster.nodes)
    assert data["k199"] == "199" and len(data) == 200
    assert members(new)[4][1] == "voter"

    # Four voters: a majority is three. With one original follower down, writes go on.
    victim = next(n for n in cluster.nodes[:3] if n is not leader)
    victim.kill9()
    with client(new) as c:
        assert c.set("with-four", "1") is True
    victim.start()

    # Remove a follower: the others go on without it. (The leader may have changed while a
    # voter was down and back, on a loaded machine: ask the one there is now.)
    leader = cluster.wait_leader()
    gone = next(n for n in cluster.nodes[:3] if n is not leader)
    for _ in range(20):  # "not the leader": leadership moved just now, nothing was done
        try:
            with client(leader) as c:
                assert c.execute_command("CLUSTER", "REMOVE", gone.id) == "OK"
            break
        except redis.ResponseError as e:
            assert "not the leader" in str(e), str(e)
            leader = cluster.wait_leader()
            assert leader is not gone, "the follower to remove became the leader"
    with client(leader) as c:
        with pytest.raises(redis.ResponseError, match="no member"):
            c.execute_command("CLUSTER", "REMOVE", gone.id)
    assert gone.id not in members(leader)
    gone.stop()
    cluster.nodes.remove(gone)

    # The leader removes itself: it steps down once that commits, another one leads.
    with client(leader) as c:
        assert c.execute_command("CLUSTER", "REMOVE", leader.id) == "OK"
    rest = [n for n in cluster.nodes if n is not leader]
    second = cluster.wait_leader(nodes=rest)
    assert second is not leader
    assert sorted(members(second)) == sorted(n.id for n in rest)
    with client(second) as c:
        assert c.set("after", "1") is True
    leader.stop()
    cluster.nodes.remove(leader)
    data = wait_converged(cluster, rest)
    assert data["after"] == "1" and data["with-four"] == "1"

    # A restart of every remaining node keeps the configuration from the log.
    for n in rest:
        n.stop()
    for n in rest:  # all at once: one alone has no majority to start with
        n.spawn()
    for n in rest:
        assert wait_port(n.port, n.proc, 15, f"node {n.id}"), n.log()
    third = cluster.wait_leader(nodes=rest)
    assert sorted(members(third)) == sorted(n.id for n in rest)
    with client(third) as c:
        assert c.get("after") == "1"


@pytest.mark.timeout(120)
def test_cluster_add_and_remove_cli_on_a_local_cluster(tmp_path):
    d = tmp_path / "cl"
    base = free_base_port(5)
    up = capkv_cli("cluster", "up", "--nodes", "3", "--base-port", str(base), "--dir", str(d))
    pids = []
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        with redis.Redis(port=base, socket_timeout=5, decode_responses=True) as r:
            assert r.set("before", "1") is True
        add = capkv_cli("cluster", "add", "--dir", str(d), timeout=60)
        assert add.returncode == 0, add.stdout + add.stderr
        assert "node 4" in add.stdout and "a voter now" in add.stdout, add.stdout
        rows = status_rows(capkv_cli("cluster", "status", "--dir", str(d)).stdout)
        assert sorted(rows) == [1, 2, 3, 4], rows
        pids = [int(r["pid"]) for r in rows.values()]
        with redis.Redis(port=base + 3, socket_timeout=5, decode_responses=True) as r:
            assert poll(lambda: r.execute_command("CONSISTENCY", "stale") == "OK"
                        and r.get("before") == "1", 10)
        leader = next(i for i, r in rows.items() if r["role"] == "leader")
        rm = capkv_cli("cluster", "remove", "--dir", str(d), str(leader), timeout=60)
        assert rm.returncode == 0, rm.stdout + rm.stderr
        assert f"node {leader}: stopped" in rm.stdout, rm.stdout

        def three_and_a_leader():
            s = status_rows(capkv_cli("cluster", "status", "--dir", str(d)).stdout)
            return len(s) == 3 and leader not in s and \
                [r["role"] for r in s.values()].count("leader") == 1
        assert poll(three_and_a_leader, 20, interval=0.2), \
            capkv_cli("cluster", "status", "--dir", str(d)).stdout
        with redis.Redis(port=base + 3, socket_timeout=5, decode_responses=True) as r:
            assert poll(lambda: _set(r), 10)
    finally:
        down = capkv_cli("cluster", "down", "--dir", str(d))
        for pid in pids:
            if _pid_alive(pid):
                os.kill(pid, 9)
    assert down.returncode == 0, down.stdout + down.stderr


def _set(r):
    try:
        return r.set("after-remove", "1")
    except (redis.RedisError, OSError):
        return False
