"""Data directories written by the release before engines (git de0e862) open unchanged:
their files (wal-*.log, snap-*.snap at the top of the directory) are moved once under the
engine's prefix (local-*, cp-*), and every acknowledged write is there. The fixture
tests/integration/fixtures/layout-de0e862.tar.gz was written by that release's build:
a single node (SET, SADD, HSET, SAVE, then SET and INCRBY after the snapshot) and a 3-node
cluster (SET on each node, SADD, a SAVE on node 2, INCRBY), each stopped with SIGTERM."""

import os
import tarfile

from conftest import poll

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "layout-de0e862.tar.gz")
SEGMENT = 65536  # the fixture's --wal-segment-bytes
FIXTURE_PEER_PORT = 17920  # node i listened for peers on this + i


def extract(member_dir, into):
    with tarfile.open(FIXTURE) as tar:
        for m in tar.getmembers():
            if m.isfile() and os.path.dirname(m.name) == member_dir:
                m.name = os.path.basename(m.name)
                tar.extract(m, into)


def names(path):
    # The disk's zero-filled spare for the next log segment belongs to no engine
    # (docs/formats.md); it comes and goes while a node runs.
    return sorted(n for n in os.listdir(path) if n != "spare-segment.tmp")


def test_single_node_directory_of_the_release_before_engines_opens(make_node):
    node = make_node("single", start=False, wal_segment_bytes=SEGMENT)
    extract("single", node.dir)
    assert names(node.dir) == ["snap-0000000000000004.snap", "wal-0000000000000001.log"]
    node.start()
    for _ in range(2):  # and again after a restart, from the moved files
        with node.client(decode_responses=True) as c:
            assert c.get("before:snap") == "1"
            assert c.smembers("set") == {"a", "b", "c"}
            assert c.hgetall("h") == {"f": "v"}
            assert c.get("after:snap") == "2"
            assert c.get("counter") == "41"
            assert c.dbsize() == 5
        assert names(node.dir) == ["local-snap-0000000000000004.snap",
                                   "local-wal-0000000000000001.log"]
        node.restart()
    assert "moved to local-*" in node.full_log()


def test_cluster_directories_of_the_release_before_engines_open(make_cluster):
    cluster = make_cluster(start=False, wal_segment_bytes=SEGMENT)
    # The replicated configuration carries the peer addresses the fixture's cluster had.
    fixture_peers = ",".join(f"{i}@127.0.0.1:{FIXTURE_PEER_PORT + i}" for i in (1, 2, 3))
    for n in cluster.nodes:
        n.options["peer_listen"] = f"127.0.0.1:{FIXTURE_PEER_PORT + n.id}"
        n.options["peers"] = fixture_peers
        extract(f"cluster/n{n.id}", n.dir)
        assert all(f.startswith(("wal-", "snap-")) for f in names(n.dir)), names(n.dir)
    cluster.start()
    leader = cluster.wait_leader()
    with leader.client(decode_responses=True) as c:
        assert c.get("cluster:k1") == "v1"
        assert c.get("cluster:k2") == "v2"
        assert c.smembers("cluster:set") == {"x", "y"}
        assert c.get("cluster:n") == "7"
        assert c.set("cluster:after", "upgrade") is True
    for n in cluster.nodes:
        assert all(f.startswith("cp-") for f in names(n.dir)), names(n.dir)

        def replicated(node=n):
            with node.client(decode_responses=True) as c:
                c.execute_command("CONSISTENCY", "stale")
                return c.get("cluster:after") == "upgrade" and c.get("cluster:n") == "7"

        assert poll(replicated, 10), (n.id, n.log())
