#!/usr/bin/env python3
"""A node joining a 3-node cluster whose AP keyspace already holds data (a benchmark, not a
test; issue 9 item 1: "adding or removing a node moves only the keys whose replicas change,
streamed, while reads and writes go on").

Three `capkv server` processes on 127.0.0.1, every key in one AP keyspace (match = *,
mode = ap, conflict = crdt, n = 3, w = quorum, r = quorum). N keys are SET (values -d bytes,
redis-py pipelines of BATCH); once node 3 holds all N (CONSISTENCY stale is not needed:
INFO keyspace ap_keys), node 4 is started with --join and a new data directory and
`CLUSTER ADD 4` is sent to the leader. Meanwhile a reader on node 1 GETs random keys in a
loop (one at a time: its latency is what a client sees while keys move) and counts wrong
answers and errors. The script prints: the load's rate; the time from CLUSTER ADD until
node 4 is a voter, until it has no arc left to fill (INFO ap_arcs_filling 0), and until
every node's handoff is done (ap_handoff_pending 0 and the four nodes hold 3 N keys in
all); keys handed off; each node's ap_keys and RSS before and after; the reader's reads,
p50/p99/max latency, wrong answers and errors; and a check of SAMPLE keys read on node 4
with CONSISTENCY stale (its own copy).

Usage: bench/ap-join.py [--keys 1000000] [--data 100] [--out FILE.md]
Only 127.0.0.1; every process it starts is stopped by PID at the end; every wait is bounded.
"""
import argparse
import importlib.util
import os
import random
import statistics
import tempfile
import threading
import time

import redis

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "cluster_redis_compare", os.path.join(HERE, "cluster-redis-compare.py"))
crc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(crc)
_spec = importlib.util.spec_from_file_location("ap_converge", os.path.join(HERE, "ap-converge.py"))
conv = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(conv)
value_of, poll = conv.value_of, conv.poll

BATCH = 1000  # ap-converge.py's write_keys, whose pipelines these are
SAMPLE = 2000
GIVE_UP_S = 600.0


def client(port, timeout=30):
    return redis.Redis(host="127.0.0.1", port=port, decode_responses=True,
                       socket_timeout=timeout)


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def ap_keys(c):
    return int(c.info("keyspace").get("ap_keys", 0))


def served(c):
    try:
        return c.set("probe", "1") is True
    except redis.ResponseError:
        return False  # -TRYAGAIN until the keyspace table is agreed


class Reader(threading.Thread):
    """GETs random keys on one node, one at a time, until stopped."""

    def __init__(self, port, n, size):
        super().__init__(daemon=True)
        self.c = client(port, timeout=10)
        self.n, self.size = n, size
        self.lat, self.wrong, self.errors = [], 0, []
        self.stop_flag = threading.Event()

    def run(self):
        rng = random.Random(7)
        while not self.stop_flag.is_set():
            i = rng.randrange(self.n)
            t = time.monotonic()
            try:
                v = self.c.get(f"key:{i}")
                self.lat.append(time.monotonic() - t)
                self.wrong += v != value_of(i, self.size)
            except redis.RedisError as e:
                self.errors.append(str(e))


def start_node(group, i, ports, peer_ports, peers, cfg, join=False):
    d = tempfile.mkdtemp(prefix=f"capkv-join-{i + 1}-", dir=group.workdir)
    cmd = [crc.CAPKV, "server", "--listen", f"127.0.0.1:{ports[i]}", "--dir", d,
           "--id", str(i + 1), "--peer-listen", f"127.0.0.1:{peer_ports[i]}",
           "--peers", peers, "--config", cfg, "--log-file", os.path.join(d, "node.log")]
    return group.spawn(cmd + (["--join"] if join else []), ports[i])


def leader_port(ports):
    for p in ports:
        if crc.info(p, "replication").get("role") == "leader":
            return p
    return None


def timed(t0, pred, seconds=GIVE_UP_S, interval=0.2):
    return time.monotonic() - t0 if poll(pred, seconds, interval) else None


def run(args):
    workdir = tempfile.mkdtemp(prefix="capkv-apjoin-")
    group = crc.Group(workdir)
    try:
        ports = [crc.free_port() for _ in range(4)]
        peer_ports = [crc.free_port() for _ in range(4)]
        peers3 = ",".join(f"{i + 1}@127.0.0.1:{peer_ports[i]}" for i in range(3))
        peers4 = peers3 + f",4@127.0.0.1:{peer_ports[3]}"
        cfg = os.path.join(workdir, "ap.ini")
        with open(cfg, "w") as f:
            f.write("[keyspace all]\nmatch = *\nmode = ap\nconflict = crdt\nn = 3\n"
                    "w = quorum\nr = quorum\n")
        procs = [start_node(group, i, ports, peer_ports, peers3, cfg) for i in range(3)]
        nodes = [client(p) for p in ports[:3]]
        if not poll(lambda: served(nodes[0]), 30):
            raise RuntimeError("the AP cluster never served a write")
        rate = conv.write_keys(nodes[0], args.keys, args.data)
        if not poll(lambda: all(ap_keys(c) >= args.keys for c in nodes), 120):
            raise RuntimeError(f"the load did not reach every node: {[ap_keys(c) for c in nodes]}")
        before = [(ap_keys(c), rss_mb(p.pid)) for c, p in zip(nodes, procs)]
        reader = Reader(ports[0], args.keys, args.data)
        reader.start()
        procs.append(start_node(group, 3, ports, peer_ports, peers4, cfg, join=True))
        n4 = client(ports[3])
        nodes.append(n4)
        lead = client(leader_port(ports[:3]))
        t0 = time.monotonic()
        if lead.execute_command("CLUSTER", "ADD", 4, f"127.0.0.1:{peer_ports[3]}") != "OK":
            raise RuntimeError("CLUSTER ADD refused")
        voter = timed(t0, lambda: "4 " in lead.execute_command("CLUSTER", "MEMBERS") and any(
            ln.startswith("4 ") and " voter" in ln
            for ln in lead.execute_command("CLUSTER", "MEMBERS").splitlines()))
        filled = timed(t0, lambda: n4.info("replication").get("ap_arcs_filling") == 0 and
                       n4.info("replication").get("ap_ring_members") == 4)

        def handed():
            infos = [c.info("replication") for c in nodes]
            return (all(i.get("ap_handoff_pending") == 0 for i in infos) and
                    sum(ap_keys(c) for c in nodes) == 3 * (args.keys + 1))
        done = timed(t0, handed)
        reader.stop_flag.set()
        reader.join(30)
        after = [(ap_keys(c), rss_mb(p.pid)) for c, p in zip(nodes, procs)]
        handed_off = sum(int(c.info("replication")["ap_keys_handed_off"]) for c in nodes)
        s = client(ports[3])
        s.execute_command("CONSISTENCY", "stale")
        rng = random.Random(3)
        idx = rng.sample(range(args.keys), min(SAMPLE, args.keys))
        pipe = s.pipeline(transaction=False)
        for i in idx:
            pipe.get(f"key:{i}")
        own = sum(1 for v in pipe.execute() if v is not None)
        return {"rate": rate, "voter": voter, "filled": filled, "done": done,
                "handed_off": handed_off, "before": before, "after": after, "reader": reader,
                "own": (own, len(idx))}
    finally:
        group.stop()


def fmt_s(x):
    return f"{x:.1f} s" if x is not None else f"not within {GIVE_UP_S:.0f} s"


def report(args, r):
    lat = sorted(r["reader"].lat) or [0.0]
    q = statistics.quantiles(lat, n=100) if len(lat) > 100 else [lat[-1]] * 99
    lines = [
        f"AP join: 3 nodes holding {args.keys:,} keys of {args.data} bytes "
        f"(crdt, n = 3, w = r = quorum), then CLUSTER ADD of node 4 (new data directory)",
        "",
        f"- load on node 1: {r['rate']:,.0f} keys/s (redis-py pipelines of {BATCH})",
        f"- CLUSTER ADD to voter: {fmt_s(r['voter'])}; node 4 filled: {fmt_s(r['filled'])}; "
        f"every handoff done (3 copies of every key on 4 nodes): {fmt_s(r['done'])}",
        f"- keys handed off (and removed from the replica node 4 replaced): "
        f"{r['handed_off']:,}",
        "- ap_keys and RSS before -> after: " + "; ".join(
            f"node {i + 1} " + (f"{b[0]:,} keys {b[1]:.0f} MB -> " if i < 3 else "new -> ") +
            f"{a[0]:,} keys {a[1]:.0f} MB"
            for i, (b, a) in enumerate(zip(r["before"] + [(0, 0)], r["after"]))),
        f"- a reader on node 1 meanwhile (GET, one at a time, r = quorum): "
        f"{len(r['reader'].lat):,} reads, p50 {q[49] * 1000:.2f} ms, p99 {q[98] * 1000:.2f} ms, "
        f"max {lat[-1] * 1000:.1f} ms, wrong answers {r['reader'].wrong}, "
        f"errors {len(r['reader'].errors)}" +
        (f" (first: {r['reader'].errors[0]})" if r["reader"].errors else ""),
        f"- node 4's own copy afterwards (CONSISTENCY stale): {r['own'][0]:,} of "
        f"{r['own'][1]:,} sampled keys (about 3/4 of all keys are node 4's)",
    ]
    text = "\n".join(lines)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=1000000)
    ap.add_argument("--data", "-d", type=int, default=100, help="value bytes")
    ap.add_argument("--out")
    args = ap.parse_args()
    report(args, run(args))


if __name__ == "__main__":
    main()
