#!/usr/bin/env python3
"""AP keyspaces on a 3-node capkv cluster against a Redis primary with two replicas, side
by side in one run (a benchmark, not a test; issue 9 item 8).

capkv: three `capkv server` processes on 127.0.0.1 whose every key is in one AP keyspace
(mode = ap, conflict = crdt, n = 3), once with w = one, r = one and once with w = quorum,
r = quorum; redis-benchmark against node 1 (any node coordinates). Redis: a primary with
appendonly yes and appendfsync always and two replicas, against the primary (it answers
before its replicas have the write; capkv's w = one answers once its own log has it on
disk, w = quorum once two of three have). For each pipeline depth it runs redis-benchmark
-t set,get,incr,sadd -n N -c 50 -d 64 (cluster-redis-compare.py's run: its FLUSHALL clears
CP keys only, so AP keys stay, which SET/GET/INCR/SADD on redis-benchmark's fixed keys do
not mind), alternating capkv and Redis REPEAT times, and prints the medians and the ratio.

Usage: bench/ap-redis-compare.py [--requests N] [--repeat R] [--pipelines 1,16]
                                 [--tests set,get,incr,sadd] [--quorums one,quorum]
                                 [--out FILE.md]
Only 127.0.0.1; every process it starts is stopped by PID at the end.
"""
import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
_spec = importlib.util.spec_from_file_location(
    "cluster_redis_compare", os.path.join(HERE, "cluster-redis-compare.py"))
crc = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(crc)

TESTS = ["set", "get", "incr", "sadd"]


def ap_cluster(group, quorum):
    """Three nodes, every key AP with w = r = quorum; returns node 1's client port."""
    ports = [crc.free_port() for _ in range(3)]
    peer_ports = [crc.free_port() for _ in range(3)]
    peers = ",".join(f"{i + 1}@127.0.0.1:{peer_ports[i]}" for i in range(3))
    cfg = os.path.join(group.workdir, f"ap-{quorum}.ini")
    with open(cfg, "w") as f:
        f.write(f"[keyspace all]\nmatch = *\nmode = ap\nconflict = crdt\nn = 3\n"
                f"w = {quorum}\nr = {quorum}\n")
    for i in range(3):
        d = tempfile.mkdtemp(prefix=f"capkv-ap-{quorum}-{i + 1}-", dir=group.workdir)
        group.spawn([crc.CAPKV, "server", "--listen", f"127.0.0.1:{ports[i]}", "--dir", d,
                     "--id", str(i + 1), "--peer-listen", f"127.0.0.1:{peer_ports[i]}",
                     "--peers", peers, "--config", cfg,
                     "--log-file", os.path.join(d, "node.log")], ports[i])
    # AP keys are served once the keyspace table is agreed (-TRYAGAIN before).
    end = time.time() + 30
    while time.time() < end:
        out = subprocess.run(["redis-cli", "-p", str(ports[0]), "SET", "probe", "1"],
                             capture_output=True, text=True, timeout=10).stdout
        if out.strip() == "OK":
            return ports[0]
        time.sleep(0.1)
    raise RuntimeError(f"the AP cluster (w = {quorum}) never served a write")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pipelines", default="1,16")
    ap.add_argument("--tests", default=",".join(TESTS))
    ap.add_argument("--quorums", default="one,quorum")
    ap.add_argument("--out")
    args = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="capkv-ap-bench-")
    group = crc.Group(workdir)
    lines = ["| w, r | pipeline | test | capkv AP 3 nodes req/s | Redis primary + 2 replicas "
             "req/s | capkv/Redis |", "|---|---|---|---:|---:|---:|"]
    print("\n".join(lines), flush=True)
    try:
        primary = crc.redis_group(group)
        nodes = {q: ap_cluster(group, q) for q in args.quorums.split(",")}
        for quorum, port in nodes.items():
            for pipeline in [int(p) for p in args.pipelines.split(",")]:
                for test in args.tests.split(","):
                    got = {"capkv": [], "redis": []}
                    for _ in range(args.repeat):
                        got["capkv"].append(crc.bench(port, test, pipeline, args.requests))
                        got["redis"].append(crc.bench(primary, test, pipeline, args.requests))
                    c = statistics.median(got["capkv"])
                    r = statistics.median(got["redis"])
                    lines.append(f"| {quorum} | -P {pipeline} | {test.upper()} | {c:,.0f} | "
                                 f"{r:,.0f} | {c / r:.2f} |")
                    print(lines[-1], flush=True)
        for quorum, port in nodes.items():
            repl = crc.info(port, "replication")
            tail = (f"capkv w = {quorum}, node 1: ap_writes {repl.get('ap_writes')}, "
                    f"ap_forwards {repl.get('ap_forwards')}, ap_timeouts "
                    f"{repl.get('ap_timeouts')}, ap_noquorum {repl.get('ap_noquorum')}")
            lines.append(tail)
            print(tail, flush=True)
    finally:
        group.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
