"""Sessions (issue 9 item 4) on real 3-node clusters, CP keys and AP keys: SESSION TOKEN on the leader after a
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
        for wrong, why in ((bad, "checksum"), ("zz" * 19, "hex digit"), ("00", "at least 38")):
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


@pytest.mark.timeout(120)
def test_sessions_cover_ap_and_cp_keys_across_nodes(make_cluster, tmp_path):
    """The two tabs again, on an AP cart (cart:* is crdt, w = r = one) and a CP order: tab A
    writes both on one node while another node is cut off; tab B resumes A's token there.
    While cut off, B's reads of both answer -TIMEOUT after session-wait (never the old
    state); after the heal they see A's writes, and every answer B got had them. B's add
    travels back in B's token to a third connection."""
    from test_ap import ap_cluster

    cluster = ap_cluster(make_cluster, tmp_path)
    leader = cluster.wait_leader()
    cut = next(n for n in cluster.nodes if n is not leader)
    cut_off(cluster, cut)
    with client(leader) as tab_a:
        assert tab_a.sadd("cart:1", "book") == 1
        assert tab_a.set("order:1", "paid") is True
        token = tab_a.execute_command("SESSION", "TOKEN")
    assert len(token) > 38, token  # it names the cart key
    with client(cut) as plain:  # without the session, the cut-off node shows the old cart
        assert plain.smembers("cart:1") == set()
    with client(cut) as tab_b:
        assert tab_b.execute_command("CONSISTENCY", "stale") == "OK"
        assert tab_b.execute_command("SESSION", "RESUME", token) == "OK"
        for read in (lambda: tab_b.smembers("cart:1"), lambda: tab_b.get("order:1")):
            start = time.monotonic()
            with pytest.raises(redis.ResponseError) as e:
                read()
            assert str(e.value).startswith("TIMEOUT session"), str(e.value)
            assert time.monotonic() - start >= 0.9
        cluster.fault("HEAL")
        carts = []

        def cart_has_book():
            try:
                carts.append(tab_b.smembers("cart:1"))
            except redis.ResponseError as err:
                assert str(err).startswith("TIMEOUT session"), str(err)
                return False
            return True

        assert poll(cart_has_book, 20), (carts, cut.log())
        assert all("book" in c for c in carts), carts
        assert poll(lambda: tab_b.get("order:1") == "paid", 20)
        assert tab_b.sadd("cart:1", "pen") == 1
        token_b = tab_b.execute_command("SESSION", "TOKEN")
    third = next(n for n in cluster.nodes if n is not leader and n is not cut)
    with client(third) as tab_c:
        assert tab_c.execute_command("SESSION", "RESUME", token_b) == "OK"
        assert tab_c.execute_command("CONSISTENCY", "stale") == "OK"
        assert tab_c.smembers("cart:1") == {"book", "pen"}
        assert tab_c.get("order:1") == "paid"
    info = cut.client().info("replication")
    assert info["ap_session_waits"] >= 2, info
    assert info["ap_session_timeouts"] >= 1, info


def test_session_token_refuses_a_session_with_too_many_ap_keys(make_cluster, tmp_path):
    from test_ap import ap_cluster

    cluster = ap_cluster(make_cluster, tmp_path)
    with client(cluster.nodes[0]) as c:
        for i in range(129):  # on this connection (redis-py pipelines take another one)
            assert c.sadd(f"cart:{i}", "x") == 1
        with pytest.raises(redis.ResponseError) as e:
            c.execute_command("SESSION", "TOKEN")
        assert "saw more than 128 AP keys" in str(e.value), str(e.value)
        assert c.execute_command("SESSION", "END") == "OK"
        assert c.smembers("cart:5") == {"x"}
        assert len(c.execute_command("SESSION", "TOKEN")) > 38
