#!/usr/bin/env python3
"""capkv against redis-server, side by side in one run (a benchmark, not a test).

For each durability setting (persistence off; fsync on every write) and each pipeline
depth (-P 1, -P 16) it runs redis-benchmark -t set,get,incr,sadd,hset -n N -c 50 -d 64
against capkv and against a redis-server this script starts, alternating the two
(capkv, redis, capkv, redis, ...) REPEAT times, and reports the median requests/s, the
capkv/Redis ratio and the server CPU per operation (utime+stime from /proc, divided by
the requests). Then it loads 1M keys into fresh servers and compares memory per key
(capkv's RSS growth against Redis's used_memory_rss growth).

Usage: bench/redis-compare.py [--requests N] [--repeat R] [--keys K] [--out FILE.md]
Only 127.0.0.1; every server it starts is stopped by PID at the end.
"""
import argparse
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAPKV = os.environ.get("CAPKV_BIN", os.path.join(ROOT, "build", "capkv"))
TESTS = ["set", "get", "incr", "sadd", "hset"]
CLK_TCK = os.sysconf("SC_CLK_TCK")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, timeout=10.0):
    end = time.time() + timeout
    while time.time() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"server on port {port} did not start")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Server:
    def __init__(self, kind, durable, workdir):
        self.kind, self.port = kind, free_port()
        d = tempfile.mkdtemp(prefix=f"{kind}-", dir=workdir)
        self.dir = d
        if kind == "capkv":
            cmd = [CAPKV, "server", "--listen", f"127.0.0.1:{self.port}", "--dir", d,
                   "--fsync", "always" if durable else "never", "--log-file",
                   os.path.join(d, "node.log")]
        else:
            cmd = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                   "--dir", d, "--save", "", "--daemonize", "no", "--logfile",
                   os.path.join(d, "redis.log")]
            cmd += ["--appendonly", "yes", "--appendfsync", "always"] if durable else \
                   ["--appendonly", "no"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, self.proc)

    def cli(self, *args):
        return subprocess.run(["redis-cli", "-p", str(self.port), *args], check=True,
                              capture_output=True, text=True).stdout

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


def run_benchmark(server, pipeline, requests):
    """Runs each test on its own, so the server CPU per operation is per test."""
    rps, cpu = {}, {}
    for test in TESTS:
        server.cli("FLUSHALL")
        before = cpu_seconds(server.proc.pid)
        out = subprocess.run(
            ["redis-benchmark", "-p", str(server.port), "-t", test, "-n", str(requests),
             "-c", "50", "-d", "64", "-P", str(pipeline), "--csv"],
            check=True, capture_output=True, text=True, timeout=1800).stdout
        cpu[test] = (cpu_seconds(server.proc.pid) - before) / requests
        for line in out.splitlines():
            cells = [c.strip('"') for c in line.split(",")]
            if len(cells) >= 2 and cells[0].lower().split()[0] == test:
                rps[test] = float(cells[1])
        if test not in rps:
            raise RuntimeError(f"redis-benchmark printed no result for {test}:\n{out}")
    return rps, cpu


def throughput(args, workdir):
    rows = []
    for durable in (False, True):
        servers = {k: Server(k, durable, workdir) for k in ("capkv", "redis")}
        try:
            for pipeline in (1, 16):
                got = {k: [] for k in servers}
                for _ in range(args.repeat):
                    for kind in ("capkv", "redis"):
                        got[kind].append(run_benchmark(servers[kind], pipeline, args.requests))
                for test in TESTS:
                    med = {k: statistics.median(r[test] for r, _ in got[k]) for k in got}
                    cpu = {k: statistics.median(c[test] for _, c in got[k]) * 1e6 for k in got}
                    rows.append((("fsync always" if durable else "persistence off"), pipeline,
                                 test, med["capkv"], med["redis"], cpu["capkv"], cpu["redis"]))
                    print_row(rows[-1])
        finally:
            for s in servers.values():
                s.stop()
    return rows


def print_row(r):
    mode, p, test, c, rd, cc, rc = r
    print(f"| {mode} | -P {p} | {test.upper()} | {c:,.0f} | {rd:,.0f} | {c / rd:.2f} | "
          f"{cc:.1f} | {rc:.1f} |", flush=True)


def load_keys(server, keys):
    """Writes keys `key:%012d` -> 64 bytes through redis-cli --pipe."""
    value = "v" * 64
    lines = []
    for i in range(keys):
        k = f"key:{i:012d}"
        lines.append(f"*3\r\n$3\r\nSET\r\n${len(k)}\r\n{k}\r\n$64\r\n{value}\r\n")
    data = "".join(lines).encode()
    subprocess.run(["redis-cli", "-p", str(server.port), "--pipe"], input=data, check=True,
                   capture_output=True, timeout=600)


def memory(args, workdir):
    result = {}
    for kind in ("capkv", "redis"):
        s = Server(kind, False, workdir)
        try:
            time.sleep(0.5)
            before = rss_bytes(s.proc.pid)
            load_keys(s, args.keys)
            time.sleep(1.0)
            after = rss_bytes(s.proc.pid)
            if kind == "redis":
                info = s.cli("INFO", "memory")
                rss = [l for l in info.splitlines() if l.startswith("used_memory_rss:")]
                after = int(rss[0].split(":")[1])
            dbsize = int(s.cli("DBSIZE").strip())
            if dbsize != args.keys:
                raise RuntimeError(f"{kind}: DBSIZE {dbsize}, expected {args.keys}")
            result[kind] = (after - before) / args.keys
        finally:
            s.stop()
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keys", type=int, default=1000000)
    ap.add_argument("--skip-throughput", action="store_true")
    args = ap.parse_args()
    if not os.path.exists(CAPKV):
        sys.exit("bench: build/capkv is missing: run make first")
    for tool in ("redis-server", "redis-benchmark", "redis-cli"):
        if shutil.which(tool) is None:
            sys.exit(f"bench: {tool} is missing: run scripts/install-deps.sh")
    workdir = tempfile.mkdtemp(prefix="capkv-bench-")
    try:
        print(f"redis-benchmark -t {','.join(TESTS)} -n {args.requests} -c 50 -d 64, "
              f"median of {args.repeat} alternating runs; {os.cpu_count()} cores")
        print(f"Redis: {subprocess.run(['redis-server', '--version'], capture_output=True, text=True).stdout.strip()}")
        print()
        if not args.skip_throughput:
            print("| durability | pipeline | test | capkv req/s | Redis req/s | capkv/Redis | "
                  "capkv µs CPU/op | Redis µs CPU/op |")
            print("|---|---|---|---|---|---|---|---|")
            throughput(args, workdir)
        mem = memory(args, workdir)
        print()
        print(f"memory per key, {args.keys} keys (16-byte keys, 64-byte values): "
              f"capkv {mem['capkv']:.1f} B, Redis {mem['redis']:.1f} B, "
              f"capkv/Redis {mem['capkv'] / mem['redis']:.2f}")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
