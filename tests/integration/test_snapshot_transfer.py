"""InstallSnapshot in chunks on real processes (127.0.0.1). A 3-node cluster is loaded with
about 90 MiB, more than one peer frame can carry (WIRE_PAYLOAD_BYTES_MAX, 64 MiB), over
several snapshots (snapshot-log-bytes 16 MiB); then a node added with CLUSTER ADD catches
up from the leader's snapshot sent in chunks and becomes a voter, and a follower whose data
directory was wiped catches up the same way, while writes go on. Every node ends with the
same data; INFO counts the transfers; nothing was dropped for its size."""

import shutil

import pytest
import redis

from conftest import info_replication, poll
from test_cluster import client, stale_client
from test_membership import joiner, members

KEYS = 90_000
BATCH = 100
VALUE_BYTES = 1000


def value_of(i):
    head = f"{i:08d}:"
    return head + "v" * (VALUE_BYTES - len(head))


def load(cluster, first, count):
    """MSETs keys first.. in batches through the leader. Raft allows a leader change under
    load: a batch refused or timed out by a node that lost leadership is sent again to the
    new leader (MSET is idempotent); the changes are counted for the failure message."""
    leader = cluster.wait_leader()
    c = client(leader, timeout=30)
    changes = 0
    try:
        for start in range(first, first + count, BATCH):
            args = []
            for i in range(start, min(start + BATCH, first + count)):
                args += [f"k{i:06d}", value_of(i)]
            for _ in range(5):
                try:
                    assert c.execute_command("MSET", *args) is True
                    break
                except redis.exceptions.ResponseError as e:
                    changes += 1
                    assert changes < 5, (e, cluster.logs())
                    c.close()
                    leader = cluster.wait_leader()
                    c = client(leader, timeout=30)
    finally:
        c.close()
    return leader


def stale_count_and_sample(node):
    with stale_client(node, timeout=30) as c:
        count = c.dbsize()
        sample = c.mget([f"k{i:06d}" for i in range(0, KEYS, 997)])
    return count, sample


def caught_up(node, leader, keys):
    """True once node applied what the leader applied and holds keys keys."""
    mine, theirs = info_replication(node), info_replication(leader)
    if not mine or not theirs:
        return False
    if int(mine["raft_applied_index"]) < int(theirs["raft_applied_index"]):
        return False
    return stale_count_and_sample(node)[0] == keys


@pytest.mark.timeout(600)
def test_big_snapshot_reaches_an_added_node_and_a_wiped_follower(make_cluster, make_node):
    opts = {"snapshot_log_bytes": 16 << 20}
    cluster = make_cluster(3, **opts)
    leader = load(cluster, 0, KEYS)
    assert poll(lambda: int(info_replication(leader)["snapshots_taken"]) >= 2, 60), \
        info_replication(leader)
    info = info_replication(leader)
    assert int(info["snapshot_last_bytes"]) > 64 << 20, info

    # A node added to the cluster: it has nothing, and the log no longer starts at 1.
    new = joiner(make_node, cluster, 4, **opts)
    new.start()
    leader = cluster.wait_leader()
    with client(leader) as c:
        assert c.execute_command("CLUSTER", "ADD", 4, f"127.0.0.1:{new.peer_port}") == "OK"
    leader = load(cluster, KEYS, 1000)  # writes go on while it catches up
    assert poll(lambda: members(leader).get(4, ("", ""))[1] == "voter", 180), \
        (members(leader), new.log())
    cluster.nodes.append(new)
    leader = cluster.wait_leader()
    assert poll(lambda: caught_up(new, leader, KEYS + 1000), 120), new.log()

    # A follower whose data directory is wiped while it is down.
    wiped = next(n for n in cluster.nodes[:3] if n is not leader)
    wiped.stop()
    shutil.rmtree(wiped.dir)
    wiped.start()
    leader = load(cluster, KEYS + 1000, 1000)
    assert poll(lambda: caught_up(wiped, leader, KEYS + 2000), 180), wiped.log()
    leader = cluster.wait_leader()

    want = stale_count_and_sample(leader)
    assert want[0] == KEYS + 2000
    assert want[1] == [value_of(i) for i in range(0, KEYS, 997)]
    for n in cluster.nodes:
        assert stale_count_and_sample(n) == want, n.id
    # Summed over the nodes: whichever led at the time sent the snapshot.
    infos = [info_replication(n) for n in cluster.nodes]
    assert sum(int(i["snapshot_sends_done"]) for i in infos) >= 2, infos
    assert sum(int(i["snapshot_bytes_sent"]) for i in infos) > 2 * (64 << 20), infos
    assert int(info_replication(wiped)["snapshot_installs"]) >= 1
    assert int(info_replication(new)["snapshot_installs"]) >= 1
    for n in cluster.nodes:
        assert int(info_replication(n).get("peer_dropped_too_big", "0")) == 0, n.id
