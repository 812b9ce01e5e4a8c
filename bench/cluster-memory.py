#!/usr/bin/python3
"""Memory per key in a 3-node CP cluster against a single node (issue 8's item 4).

A single capkv node and a fresh 3-node cluster (`capkv cluster up`, defaults) each get the
same KEYS keys `key:%012d` with 64-byte values through `redis-cli --pipe` (to the cluster's
leader). Once every node holds all the keys (INFO keyspace) and no snapshot is running,
each process's RSS growth over its RSS before the load is divided by KEYS. Prints the
single node's bytes per key, each cluster node's, and the largest cluster node's over the
single node's (the target: at most 1.5).

  /usr/bin/python3 bench/cluster-memory.py [--keys 1000000] [--base-port 7701] [--load kvload]

--load kvload puts the values with 64 clients, one request outstanding each, instead
(build/loadgen/kvload-resp -op put -n KEYS over a key space of 10*KEYS, so somewhat fewer
distinct keys: the count each node holds is what is divided by); the cluster's load goes to
all three nodes, as in issue 8's measurement.
Needs build/capkv and redis-cli (and ../shared/loadgen built into build/loadgen for kvload).
"""
import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAPKV = os.environ.get("CAPKV_BIN", os.path.join(ROOT, "build", "capkv"))


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def cli(port, *args, check=True):
    r = subprocess.run(["redis-cli", "-p", str(port), *args], capture_output=True, text=True,
                       timeout=60)
    if check and r.returncode != 0:
        raise RuntimeError(f"redis-cli -p {port} {' '.join(args)}: {r.stderr}")
    return r.stdout


def info_field(port, section, field):
    for line in cli(port, "INFO", section, check=False).splitlines():
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    return None


def local_keys(port):
    db0 = info_field(port, "keyspace", "db0")
    if not db0:
        return 0
    return int(db0.split(",")[0].split("=")[1])


def wait_port(port, seconds=30):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def pipe_keys(port, keys):
    value = "v" * 64
    data = "".join(f"*3\r\n$3\r\nSET\r\n$16\r\nkey:{i:012d}\r\n$64\r\n{value}\r\n"
                   for i in range(keys)).encode()
    r = subprocess.run(["redis-cli", "-p", str(port), "--pipe"], input=data,
                       capture_output=True, timeout=1800)
    out = r.stdout.decode(errors="replace")
    if r.returncode != 0 or "errors: 0," not in out:
        raise RuntimeError(f"redis-cli --pipe: {out.strip()} {r.stderr.decode().strip()}")


KVLOAD = os.path.join(ROOT, "build", "loadgen", "kvload-resp")


def kvload_keys(ports, puts):
    """puts 64-byte values from 64 clients; the keys the first node then holds."""
    r = subprocess.run([KVLOAD, "-endpoints", ",".join(f"127.0.0.1:{p}" for p in ports),
                        "-op", "put", "-clients", "64", "-n", str(puts), "-duration", "600s",
                        "-key-size", "16", "-val-size", "64", "-key-space", str(puts * 10)],
                       capture_output=True, text=True, timeout=900)
    if r.returncode != 0:
        raise RuntimeError(f"kvload-resp: {r.stdout.strip()} {r.stderr.strip()}")
    for line in r.stdout.splitlines():
        if "error" in line.lower() or "ops/s" in line.lower():
            print(f"  kvload: {line.strip()}", flush=True)
    time.sleep(1)
    return local_keys(ports[0])


def load(ports, keys, how):
    """Loads the node(s) at ports; the number of distinct keys they will hold."""
    if how == "kvload":
        return kvload_keys(ports, keys)
    pipe_keys(ports[0], keys)
    return keys


def settle(ports, keys, seconds=600):
    """Until every port's node holds all keys and none is taking a snapshot."""
    deadline = time.time() + seconds
    while time.time() < deadline:
        if all(local_keys(p) == keys for p in ports) and \
                all(info_field(p, "replication", "snapshot_in_progress") in (None, "0")
                    for p in ports):
            time.sleep(2)  # garbage collection steps
            return
        time.sleep(0.5)
    raise RuntimeError("the nodes did not all reach the keys in time")


def single(keys, workdir, port, how):
    d = tempfile.mkdtemp(prefix="single-", dir=workdir)
    proc = subprocess.Popen([CAPKV, "server", "--listen", f"127.0.0.1:{port}", "--dir", d,
                             "--log-file", os.path.join(d, "node.log")],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        time.sleep(0.5)
        before = rss_bytes(proc.pid)
        keys = load([port], keys, how)
        settle([port], keys)
        return (rss_bytes(proc.pid) - before) / keys, keys
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def cluster(keys, workdir, base, how):
    d = os.path.join(workdir, "cluster")
    subprocess.run([CAPKV, "cluster", "up", "--nodes", "3", "--base-port", str(base),
                    "--dir", d], check=True, stdout=subprocess.DEVNULL)
    try:
        ports = [base, base + 1, base + 2]
        pids = []
        for i in (1, 2, 3):
            with open(os.path.join(d, f"node-{i}", "pid")) as f:
                pids.append(int(f.read().strip()))
        deadline = time.time() + 30
        leader = None
        while leader is None and time.time() < deadline:
            leader = next((p for p in ports
                           if info_field(p, "replication", "role") == "leader"), None)
            time.sleep(0.2)
        if leader is None:
            raise RuntimeError("no leader")
        time.sleep(0.5)
        before = [rss_bytes(p) for p in pids]
        keys = load([leader] + [p for p in ports if p != leader], keys, how)
        settle(ports, keys)
        after = [rss_bytes(p) for p in pids]
        for i, p in enumerate(ports, 1):  # where it goes: the engine's count, Raft's log
            print(f"cluster node {i}: used_memory {int(info_field(p, 'memory', 'used_memory')):,}"
                  f" raft_log_entries {info_field(p, 'replication', 'raft_log_entries')}"
                  f" raft_log_bytes {int(info_field(p, 'replication', 'raft_log_bytes')):,}"
                  f" rss {after[i - 1]:,}", flush=True)
        return [(a - b) / keys for a, b in zip(after, before)], ports.index(leader) + 1, keys
    finally:
        subprocess.run([CAPKV, "cluster", "down", "--dir", d], stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--keys", type=int, default=1000000)
    ap.add_argument("--base-port", type=int, default=7701)
    ap.add_argument("--load", choices=["pipe", "kvload"], default="pipe")
    args = ap.parse_args()
    workdir = tempfile.mkdtemp(prefix="capkv-memory-")
    try:
        one, one_keys = single(args.keys, workdir, args.base_port + 10, args.load)
        per_node, leader, cluster_keys = cluster(args.keys, workdir, args.base_port, args.load)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"{args.keys:,} puts of 64-byte values ({args.load}): single node {one_keys:,} keys,"
          f" cluster {cluster_keys:,} keys")
    print(f"single node: {one:.1f} bytes per key")
    for i, b in enumerate(per_node, 1):
        print(f"cluster node {i}{' (leader)' if i == leader else ''}: {b:.1f} bytes per key")
    print(f"largest cluster node / single node: {max(per_node) / one:.2f} (target at most 1.5)")


if __name__ == "__main__":
    sys.exit(main())
