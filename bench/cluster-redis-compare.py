#!/usr/bin/env python3
"""A 3-node capkv cluster against a Redis primary with two replicas, side by side in one
run (a benchmark, not a test; issue 8 item 7).

capkv: three `capkv server` processes on 127.0.0.1 (defaults: fsync always, Raft, a write
answered once a majority has it on disk), redis-benchmark against the leader. Redis: a
primary with appendonly yes and appendfsync always, two replicas (--replicaof), against the
primary (it answers before its replicas have the write). For each pipeline depth (-P 1,
-P 16) it runs redis-benchmark -t set,get,incr -n N -c 50 -d 64, alternating capkv and
Redis REPEAT times, and prints the median requests/s and the capkv/Redis ratio, and at the
end the leader's INFO counters (pipelines, leader changes).

Usage: bench/cluster-redis-compare.py [--requests N] [--repeat R] [--pipelines 1,16]
                                      [--tests set,get,incr] [--out FILE.md]
CAPKV_ARGS="--fsync-thread no" (say) adds settings to every capkv server.
Only 127.0.0.1; every process it starts is stopped by PID at the end.
"""
import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAPKV = os.environ.get("CAPKV_BIN", os.path.join(ROOT, "build", "capkv"))
TESTS = ["set", "get", "incr"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=15.0):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"process on port {port} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


def cli(port, *args):
    return subprocess.run(["redis-cli", "-p", str(port), *args], check=True,
                          capture_output=True, text=True, timeout=60).stdout


def info(port, section):
    out = {}
    for line in cli(port, "INFO", section).splitlines():
        if ":" in line:
            k, v = line.split(":", 1)
            out[k] = v.strip()
    return out


class Group:
    """Processes started together and stopped together, by PID."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.procs = []

    def spawn(self, cmd, port):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        wait_port(port, proc)
        return proc

    def stop(self):
        for p in self.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def capkv_cluster(group):
    ports = [free_port() for _ in range(3)]
    peer_ports = [free_port() for _ in range(3)]
    peers = ",".join(f"{i + 1}@127.0.0.1:{peer_ports[i]}" for i in range(3))
    for i in range(3):
        d = tempfile.mkdtemp(prefix=f"capkv{i + 1}-", dir=group.workdir)
        group.spawn([CAPKV, "server", "--listen", f"127.0.0.1:{ports[i]}", "--dir", d,
                     "--id", str(i + 1), "--peer-listen", f"127.0.0.1:{peer_ports[i]}",
                     "--peers", peers, "--log-file", os.path.join(d, "node.log"),
                     *os.environ.get("CAPKV_ARGS", "").split()], ports[i])
    end = time.time() + 20
    while time.time() < end:
        for p in ports:
            if info(p, "replication").get("role") == "leader":
                return p
        time.sleep(0.1)
    raise RuntimeError("the capkv cluster elected no leader")


def redis_group(group):
    ports = [free_port() for _ in range(3)]
    for i, port in enumerate(ports):
        d = tempfile.mkdtemp(prefix=f"redis{i + 1}-", dir=group.workdir)
        cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--dir", d,
               "--save", "", "--daemonize", "no", "--logfile", os.path.join(d, "redis.log")]
        if i == 0:
            cmd += ["--appendonly", "yes", "--appendfsync", "always"]
        else:
            cmd += ["--appendonly", "no", "--replicaof", "127.0.0.1", str(ports[0])]
        group.spawn(cmd, port)
    end = time.time() + 20
    while time.time() < end:
        if info(ports[0], "replication").get("connected_slaves") == "2":
            return ports[0]
        time.sleep(0.1)
    raise RuntimeError("the Redis replicas did not connect")


def bench(port, test, pipeline, requests):
    cli(port, "FLUSHALL")
    out = subprocess.run(
        ["redis-benchmark", "-p", str(port), "-t", test, "-n", str(requests), "-c", "50",
         "-d", "64", "-P", str(pipeline), "--csv"],
        check=True, capture_output=True, text=True, timeout=1800).stdout
    for line in out.splitlines():
        cells = [c.strip('"') for c in line.split(",")]
        if len(cells) >= 2 and cells[0].lower().split()[0] == test:
            return float(cells[1])
    raise RuntimeError(f"redis-benchmark printed no result for {test}:\n{out}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pipelines", default="1,16")
    ap.add_argument("--tests", default=",".join(TESTS))
    ap.add_argument("--out")
    args = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="capkv-cluster-bench-")
    group = Group(workdir)
    lines = ["| pipeline | test | capkv 3-node leader req/s | Redis primary + 2 replicas "
             "req/s | capkv/Redis |", "|---|---|---:|---:|---:|"]
    print("\n".join(lines), flush=True)
    try:
        leader = capkv_cluster(group)
        primary = redis_group(group)
        for pipeline in [int(p) for p in args.pipelines.split(",")]:
            for test in args.tests.split(","):
                got = {"capkv": [], "redis": []}
                for _ in range(args.repeat):
                    got["capkv"].append(bench(leader, test, pipeline, args.requests))
                    got["redis"].append(bench(primary, test, pipeline, args.requests))
                c = statistics.median(got["capkv"])
                r = statistics.median(got["redis"])
                lines.append(f"| -P {pipeline} | {test.upper()} | {c:,.0f} | {r:,.0f} | "
                             f"{c / r:.2f} |")
                print(lines[-1], flush=True)
        stats = info(leader, "stats")
        repl = info(leader, "replication")
        tail = (f"capkv leader: pipelines {stats.get('pipelines')}, pipelined commands "
                f"{stats.get('pipelined_commands')}, raft role changes "
                f"{repl.get('raft_role_changes')}, term {repl.get('raft_term')}")
        lines.append("")
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
