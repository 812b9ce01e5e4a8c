#!/usr/bin/env python3
"""How fast an AP keyspace's replicas converge after a partition heals (a benchmark, not a
test; issue 9's target: "100,000 keys written on one side of a partition are on every
replica within 5 s of the heal").

Three `capkv server` processes on 127.0.0.1 (--enable-faults) whose every key is in one AP
keyspace (match = *, mode = ap, conflict = crdt or lww, n = 3, w = one, r = one). Once
`SET probe 1` answers OK and every node holds the probe: FAULT PARTITION 1|2,3 on every
node (as tests/integration/test_ap.py does), N keys SET on node 1 (values -d bytes, a
redis-py pipeline without MULTI, BATCH commands at a time), FAULT HEAL on every node, and
then every POLL_S the INFO keyspace `ap_keys` of nodes 2 and 3 until each holds all N
(no client read touches the keys: anti-entropy and hinted handoff only). It prints the
write rate on node 1, the time from the heal to each node's convergence, every node's
anti-entropy and hint counters (INFO replication), and a check of SAMPLE keys read with
CONSISTENCY stale on nodes 2 and 3 (their own replica).

Usage: bench/ap-converge.py [--keys N] [--conflict crdt|lww] [--repeat R] [--data BYTES]
                            [--out FILE.md]
Only 127.0.0.1; a fresh cluster per run; every process it starts is stopped by PID at the
end; every wait is bounded (GIVE_UP_S after the heal: "did not converge", with the counts
reached).
"""
import argparse
import importlib.util
import os
import random
import shutil
import statistics
import tempfile
import time

import redis

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "cluster_redis_compare", os.path.join(HERE, "cluster-redis-compare.py"))
crc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(crc)

TARGET_S = 5.0    # issue 9's bound, from the heal
GIVE_UP_S = 120.0  # past it the run reports "did not converge"
READY_S = 30.0    # the cluster serving AP writes, the probe on every node
POLL_S = 0.05
BATCH = 1000
SAMPLE = 1000
COUNTERS = ["ap_ae_exchanges", "ap_ae_keys_sent", "ap_ae_keys_listed", "ap_ae_keys_repaired",
            "ap_ae_timeouts", "ap_hints_handed", "ap_hints_pending"]


def client(port):
    return redis.Redis(host="127.0.0.1", port=port, decode_responses=True, socket_timeout=10)


def poll(pred, seconds, interval=POLL_S):
    end = time.monotonic() + seconds
    while True:
        if pred():
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(interval)


def try_set_probe(c):
    try:
        return c.set("probe", "1") is True
    except redis.ResponseError:
        return False  # -TRYAGAIN until the keyspace table is agreed


def ap_cluster(group, conflict):
    """Three nodes, every key AP (w = r = one), faults on; returns their clients."""
    ports = [crc.free_port() for _ in range(3)]
    peer_ports = [crc.free_port() for _ in range(3)]
    peers = ",".join(f"{i + 1}@127.0.0.1:{peer_ports[i]}" for i in range(3))
    cfg = os.path.join(group.workdir, f"ap-{conflict}.ini")
    with open(cfg, "w") as f:
        f.write(f"[keyspace all]\nmatch = *\nmode = ap\nconflict = {conflict}\nn = 3\n"
                f"w = one\nr = one\n")
    for i in range(3):
        d = tempfile.mkdtemp(prefix=f"capkv-conv-{i + 1}-", dir=group.workdir)
        group.spawn([crc.CAPKV, "server", "--listen", f"127.0.0.1:{ports[i]}", "--dir", d,
                     "--id", str(i + 1), "--peer-listen", f"127.0.0.1:{peer_ports[i]}",
                     "--peers", peers, "--config", cfg, "--enable-faults",
                     "--log-file", os.path.join(d, "node.log")], ports[i])
    nodes = [client(p) for p in ports]
    if not poll(lambda: try_set_probe(nodes[0]), READY_S, 0.1):
        raise RuntimeError("the AP cluster never served a write")
    if not poll(lambda: all(ap_keys(c) >= 1 for c in nodes), READY_S, 0.1):
        raise RuntimeError(f"the probe did not reach every node: {[ap_keys(c) for c in nodes]}")
    return nodes


def ap_keys(c):
    return int(c.info("keyspace").get("ap_keys", 0))


def fault(nodes, *args):
    for c in nodes:
        got = c.execute_command("FAULT", *args)
        if got != "OK":
            raise RuntimeError(f"FAULT {' '.join(args)}: {got!r}")


def value_of(i, size):
    head = f"{i}:"
    return head + "v" * max(0, size - len(head))


def write_keys(c, n, size):
    """SETs key:0..n-1 on c in pipelines of BATCH; returns keys/s."""
    start = time.monotonic()
    for lo in range(0, n, BATCH):
        p = c.pipeline(transaction=False)
        for i in range(lo, min(n, lo + BATCH)):
            p.set(f"key:{i}", value_of(i, size))
        got = p.execute()
        if not all(r is True for r in got):
            raise RuntimeError(f"a write in batch {lo} failed: {[r for r in got if r is not True][:3]}")
    return n / (time.monotonic() - start)


def verify_sample(port, n, size, rng):
    """Reads SAMPLE keys with CONSISTENCY stale on port's node; returns how many match."""
    c = redis.Redis(host="127.0.0.1", port=port, decode_responses=True, socket_timeout=10,
                    single_connection_client=True)
    try:
        if c.execute_command("CONSISTENCY", "stale") != "OK":
            raise RuntimeError("CONSISTENCY stale refused")
        idx = rng.sample(range(n), min(SAMPLE, n))
        p = c.pipeline(transaction=False)
        for i in idx:
            p.get(f"key:{i}")
        got = p.execute()
        return sum(1 for i, v in zip(idx, got) if v == value_of(i, size)), len(idx)
    finally:
        c.close()


def run_once(workdir, args, rng):
    group = crc.Group(tempfile.mkdtemp(prefix="run-", dir=workdir))
    try:
        nodes = ap_cluster(group, args.conflict)
        n1 = nodes[0]
        base = [ap_keys(c) for c in nodes]
        fault(nodes, "PARTITION", "1|2,3")
        if not poll(lambda: n1.info("replication")["ap_peers_reachable"] == 0, 5):
            raise RuntimeError("node 1 still reaches its peers 5 s after FAULT PARTITION")
        rate = write_keys(n1, args.keys, args.data)
        held = ap_keys(n1) - base[0]
        before = [c.info("replication") for c in nodes]
        if held != args.keys:
            raise RuntimeError(f"node 1 holds {held} of the {args.keys} keys it acknowledged")
        others = {2: nodes[1], 3: nodes[2]}
        want = {i: base[i - 1] + args.keys for i in others}
        reached = {i: base[i - 1] for i in others}
        done = {}
        t0 = time.monotonic()
        fault(nodes, "HEAL")
        healed_at = None
        while len(done) < len(others) and time.monotonic() - t0 < GIVE_UP_S:
            now = time.monotonic() - t0
            if healed_at is None and n1.info("replication")["ap_peers_reachable"] == 2:
                healed_at = now
            for i, c in others.items():
                if i in done:
                    continue
                reached[i] = ap_keys(c)
                if reached[i] >= want[i]:
                    done[i] = time.monotonic() - t0
            time.sleep(POLL_S)
        # After convergence, let anything still in flight settle briefly, then read counters.
        after = [c.info("replication") for c in nodes]
        ports = [c.connection_pool.connection_kwargs["port"] for c in nodes]
        sample = {i: verify_sample(ports[i - 1], args.keys, args.data, rng) for i in others}
        for c in nodes:
            c.close()
        return {"rate": rate, "done": done, "reached": {i: reached[i] - base[i - 1]
                                                        for i in others},
                "healed_at": healed_at, "before": before, "after": after, "sample": sample}
    finally:
        group.stop()


def fmt_s(r, i):
    if i in r["done"]:
        return f"{r['done'][i]:.2f} s"
    return f"did not converge ({r['reached'][i]:,} keys in {GIVE_UP_S:.0f} s)"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=100000)
    ap.add_argument("--conflict", default="crdt", choices=["crdt", "lww"])
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--data", "-d", type=int, default=64, help="value bytes")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    workdir = tempfile.mkdtemp(prefix="capkv-ap-converge-")
    lines = [f"conflict = {args.conflict}, n = 3, w = r = one; {args.keys:,} keys of "
             f"{args.data} bytes SET on node 1 during FAULT PARTITION 1|2,3; target: on every "
             f"replica within {TARGET_S:.0f} s of the heal", "",
             "| run | N | write rate node 1 (keys/s) | heal seen by node 1 | heal -> node 2 has N "
             "| heal -> node 3 has N | stale sample ok (n2, n3) | within 5 s |",
             "|---|---:|---:|---:|---:|---:|---:|---|"]
    print("\n".join(lines), flush=True)
    runs = []
    try:
        for k in range(args.repeat):
            r = run_once(workdir, args, rng)
            runs.append(r)
            worst = max(r["done"].values()) if len(r["done"]) == 2 else None
            met = "yes" if worst is not None and worst <= TARGET_S else (
                f"no (+{worst - TARGET_S:.2f} s)" if worst is not None else "no")
            seen = f"{r['healed_at']:.2f} s" if r["healed_at"] is not None else "-"
            s2, s3 = r["sample"][2], r["sample"][3]
            lines.append(f"| {k + 1} | {args.keys:,} | {r['rate']:,.0f} | {seen} | {fmt_s(r, 2)} "
                         f"| {fmt_s(r, 3)} | {s2[0]}/{s2[1]}, {s3[0]}/{s3[1]} | {met} |")
            print(lines[-1], flush=True)
        if len(runs) > 1 and all(len(r["done"]) == 2 for r in runs):
            med = statistics.median(max(r["done"].values()) for r in runs)
            lines.append(f"\nmedian heal -> every replica: {med:.2f} s over {len(runs)} runs")
            print(lines[-1], flush=True)
        last = runs[-1]
        tail = ["", "Counters of the last run (INFO replication; before the heal -> at the end):",
                "", "| node | " + " | ".join(COUNTERS) + " |",
                "|---|" + "---:|" * len(COUNTERS)]
        for i in range(3):
            b, a = last["before"][i], last["after"][i]
            cells = [f"{b.get(c, '-')} -> {a.get(c, '-')}" if b.get(c) != a.get(c)
                     else f"{a.get(c, '-')}" for c in COUNTERS]
            tail.append(f"| {i + 1} | " + " | ".join(cells) + " |")
        lines += tail
        print("\n".join(tail), flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
