"""Sessions (issue 9 item 4) on a real 3-node CP cluster: SESSION TOKEN on the leader after a
write, SESSION RESUME on a follower connection reading with CONSISTENCY stale. Without the
session the follower's stale read misses the write (it is cut off, or its traffic from the
leader is delayed); with it the read waits, answers -TIMEOUT while the follower stays cut
off, and sees the write once the follower catches up. Nodes on free 127.0.0.1 ports
(conftest make_cluster), stopped by PID at teardown."""

import time

import pytest
import redis

from conftest import poll

SESSION_WAIT_MS = 1500


def client(node, timeout=10.0):
    return node.client(decode_responses=True, socket_timeout=timeout,
                       socket_connect_timeout=timeout, single_connection_client=True)


def stale_get(node, key):
    with client(node) as c:
        assert c.execute_command("CONSISTENCY", "stale") == "OK"
        return c.get(key)


def cut_off(cluster, node):
    others = ",".join(str(n.id) for n in cluster.nodes if n is not node)
    cluster.fault("PARTITION", f"{node.id}|{others}")


@pytest.mark.timeout(90)
def test_resumed_session_on_a_follower_waits_for_the_leaders_write(make_cluster):
    cluster = make_cluster(3, faults=True, session_wait=SESSION_WAIT_MS)
    leader = cluster.wait_leader()
    follower = next(n for n in cluster.nodes if n is not leader)
    with client(leader) as c:
        assert c.set("s", "old") is True
    assert poll(lambda: stale_get(follower, "s") == "old", 10), follower.log()

    cut_off(cluster, follower)
    with client(leader) as tab_a:  # the tab that writes
        assert tab_a.set("s", "new") is True
        token = tab_a.execute_command("SESSION", "TOKEN")
    assert isinstance(token, str) and len(token) == 38, token

    # Without the session, the follower's stale read misses the write.
    assert stale_get(follower, "s") == "old"

    with client(follower) as tab_b:  # the other tab, on another node
        assert tab_b.execute_command("CONSISTENCY", "stale") == "OK"
        assert tab_b.execute_command("SESSION", "RESUME", token) == "OK"
        start = time.monotonic()
        with pytest.raises(redis.ResponseError) as e:
            tab_b.get("s")
        waited = time.monotonic() - start
        text = str(e.value)
        assert text.startswith("TIMEOUT session: this node has applied "), text
        assert "try again or read on the leader" in text, text
        assert waited >= SESSION_WAIT_MS / 1000 * 0.9, waited
        assert waited < SESSION_WAIT_MS / 1000 + 3, waited

        cluster.fault("HEAL")
        # Once it catches up the same connection reads the write, never the old value.
        seen = []

        def read_new():
            try:
                seen.append(tab_b.get("s"))
            except redis.ResponseError as err:
                assert str(err).startswith("TIMEOUT session:"), str(err)
                return False
            return seen[-1] == "new"

        assert poll(read_new, 20), (seen, follower.log())
        assert "old" not in seen, seen
        # The resumed connection's token covers the resumed one (sessions chain).
        assert tab_b.execute_command("SESSION", "TOKEN")
        assert tab_b.execute_command("SESSION", "END") == "OK"


@pytest.mark.timeout(90)
def test_resumed_session_waits_out_a_delayed_follower_and_answers(make_cluster):
    cluster = make_cluster(3, faults=True, session_wait=4000)
    leader = cluster.wait_leader()
    follower = next(n for n in cluster.nodes if n is not leader)
    with client(leader) as c:
        assert c.set("d", "1") is True
    assert poll(lambda: stale_get(follower, "d") == "1", 10), follower.log()
    # The leader's traffic to the follower arrives 1.5 s late: its replica lags that much.
    cluster.fault("DELAY", str(follower.id), "1500", nodes=[leader])
    with client(leader) as tab_a:
        assert tab_a.set("d", "2") is True
        token = tab_a.execute_command("SESSION", "TOKEN")
    with client(follower) as tab_b:
        assert tab_b.execute_command("CONSISTENCY", "stale") == "OK"
        assert tab_b.get("d") == "1"  # stale, no session: the lag shows
        assert tab_b.execute_command("SESSION", "RESUME", token) == "OK"
        start = time.monotonic()
        assert tab_b.get("d") == "2"
        assert time.monotonic() - start < 4.0
    cluster.fault("HEAL")


def test_session_tokens_are_checked_and_reset_clears_the_session(make_cluster):
    cluster = make_cluster(3)
    leader = cluster.wait_leader()
    with client(leader) as c:
        token = c.execute_command("SESSION", "TOKEN")
        bad = token[:-1] + ("0" if token[-1] != "0" else "1")
        for wrong, why in ((bad, "checksum"), ("zz" * 19, "hex digit"), ("00", "38 hex digits")):
            with pytest.raises(redis.ResponseError) as e:
                c.execute_command("SESSION", "RESUME", wrong)
            assert str(e.value).startswith("session: bad token: "), str(e.value)
            assert why in str(e.value), str(e.value)
        with pytest.raises(redis.ResponseError) as e:
            c.execute_command("SESSION", "BOGUS")
        assert "usage: SESSION TOKEN" in str(e.value)
        assert c.set("k", "v") is True
        after = c.execute_command("SESSION", "TOKEN")
        assert after != token
        assert c.execute_command("RESET") == "RESET"
        assert c.execute_command("SESSION", "TOKEN") == token  # nothing observed again


@pytest.mark.timeout(90)
def test_sessions_refuse_ap_keys_rather_than_not_cover_them(make_cluster, tmp_path):
    from test_ap import ap_cluster  # the AP keyspaces (cart:* is crdt, w = r = one)

    cluster = ap_cluster(make_cluster, tmp_path)
    leader = cluster.wait_leader()
    other = next(n for n in cluster.nodes if n is not leader)
    with client(leader) as tab_a:
        assert tab_a.sadd("cart:1", "book") == 1
        with pytest.raises(redis.ResponseError) as e:
            tab_a.execute_command("SESSION", "TOKEN")
        assert str(e.value).startswith("session: this connection used AP keys"), str(e.value)
        assert tab_a.execute_command("SESSION", "END") == "OK"
        assert tab_a.set("order:1", "paid") is True
        token = tab_a.execute_command("SESSION", "TOKEN")
    with client(other) as tab_b:
        assert tab_b.execute_command("CONSISTENCY", "stale") == "OK"
        assert tab_b.execute_command("SESSION", "RESUME", token) == "OK"
        assert tab_b.get("order:1") == "paid"
        with pytest.raises(redis.ResponseError) as e:
            tab_b.smembers("cart:1")
        assert str(e.value).startswith("session: AP keys are not covered by sessions yet"), \
            str(e.value)
        assert tab_b.execute_command("SESSION", "END") == "OK"
        assert poll(lambda: tab_b.smembers("cart:1") == {"book"}, 10)
