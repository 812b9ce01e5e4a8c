#!/usr/bin/env python3
"""capkv's CP cluster against etcd 3.4, side by side in one run (a benchmark, not a test).

Starts a 3-node capkv cluster (data through Raft, fsync on every commit: the default) and a
3-member etcd cluster (default: fsync on every commit) on 127.0.0.1, both kept running for
the whole load phase, and drives them with the twin load generators kvload-resp and
kvload-etcd (../shared/loadgen/README.md, whose fairness rules this follows): the same
flags on both sides, every node listed on both sides, one outstanding request per worker,
-n high so that -duration ends every run, the median of REPEAT runs alternating the
systems (capkv, etcd, capkv, etcd, ...). kvload-etcd is run with -conns 1 and with -conns
equal to -clients (in the same rotation) and the better median is reported, with the
value used.

Measured, for 1, 16 and 64 clients: puts/s, linearizable gets/s (capkv's default read;
etcd's default Get), stale gets/s (kvload -consistency s, plus CONSISTENCY stale on the
RESP side), p50/p99, errors, the load generator's CPU, and the servers' CPU per
successful operation (utime+stime from /proc summed over the 3 server processes, sampled
every 50 ms and taken over the measured phase only, so the 1000-key pre-fill of the get
runs is left out). Then failover: for each repetition a fresh cluster of each kind,
kvload -mode failover -kill-pid <leader's pid>, and the clusters are thrown away.

Usage: bench/etcd-compare.py [--duration 10s] [--repeat 3] [--clients 1,16,64]
                             [--failovers 3] [--doc docs/performance.md | --no-doc]
Only 127.0.0.1; every server it starts is stopped by PID at the end (also on Ctrl-C).
"""
import argparse
import base64
import datetime
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAPKV = os.environ.get("CAPKV_BIN", os.path.join(ROOT, "build", "capkv"))
LOADGEN = os.environ.get("LOADGEN_DIR", os.path.join(ROOT, "build", "loadgen"))
ETCD = os.environ.get("ETCD_BIN", "/usr/bin/etcd")
CLK_TCK = os.sysconf("SC_CLK_TCK")
N_REQUESTS = 100_000_000  # -n: high, so that -duration ends every run
LOGS_KEEP = os.path.join(ROOT, "build", "etcd-compare-logs")

STARTED = []  # every Popen this script started, stopped by PID at the end
LIVE = []  # clusters not yet stopped


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK
    except (OSError, IndexError, ValueError):
        return None


def stop_proc(p, timeout=15):
    if p.poll() is None:
        try:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
        except ProcessLookupError:
            pass


# ---------------------------------------------------------------- RESP (capkv) helpers

def resp_cmd(port, *args, timeout=2.0):
    """Sends one command, returns the reply (str for simple/bulk, int, list, or an
    Exception instance for an error reply)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        out = f"*{len(args)}\r\n".encode()
        for a in args:
            b = a.encode() if isinstance(a, str) else a
            out += f"${len(b)}\r\n".encode() + b + b"\r\n"
        s.sendall(out)
        f = s.makefile("rb")

        def read():
            line = f.readline()
            if not line:
                raise ConnectionError("closed")
            t, rest = line[:1], line[1:-2].decode(errors="replace")
            if t == b"+":
                return rest
            if t == b"-":
                return RuntimeError(rest)
            if t == b":":
                return int(rest)
            if t == b"$":
                n = int(rest)
                if n < 0:
                    return None
                data = f.read(n + 2)
                return data[:-2].decode(errors="replace")
            if t == b"*":
                n = int(rest)
                return None if n < 0 else [read() for _ in range(n)]
            raise RuntimeError(f"unexpected reply {line!r}")

        return read()


class Capkv:
    kind = "capkv"

    def __init__(self, workdir):
        self.dir = tempfile.mkdtemp(prefix="capkv-", dir=workdir)
        self.ports = [free_port() for _ in range(3)]
        self.peer_ports = [free_port() for _ in range(3)]
        peers = ",".join(f"{i + 1}@127.0.0.1:{p}" for i, p in enumerate(self.peer_ports))
        self.procs, self.cmds = [], []
        for i in range(3):
            d = os.path.join(self.dir, f"node-{i + 1}")
            os.makedirs(d)
            cmd = [CAPKV, "server", "--id", str(i + 1), "--listen", f"127.0.0.1:{self.ports[i]}",
                   "--peer-listen", f"127.0.0.1:{self.peer_ports[i]}", "--peers", peers,
                   "--dir", d, "--log-file", os.path.join(d, "log")]
            self.cmds.append(cmd)
            p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                 stderr=open(os.path.join(d, "stderr"), "wb"))
            STARTED.append(p)
            self.procs.append(p)
        LIVE.append(self)
        self.wait_ready()

    @property
    def endpoints(self):
        return [f"127.0.0.1:{p}" for p in self.ports]

    def logs(self):
        return [os.path.join(self.dir, f"node-{i + 1}", n) for i in range(3) for n in ("log", "stderr")]

    def role(self, i):
        try:
            info = resp_cmd(self.ports[i], "INFO", "replication", timeout=1.0)
        except OSError:
            return None
        if not isinstance(info, str):
            return None
        m = re.search(r"^role:(\S+)", info, re.M)
        return m.group(1) if m else None

    def leader_index(self):
        for i in range(3):
            if self.procs[i].poll() is None and self.role(i) == "leader":
                return i
        return None

    def wait_ready(self, timeout=20.0):
        end = time.time() + timeout
        while time.time() < end:
            self.check_alive()
            if self.leader_index() is not None:
                break
            time.sleep(0.05)
        else:
            raise RuntimeError("capkv: no node reported role:leader in INFO replication")
        # every node must accept a write (followers forward to the leader)
        for i in range(3):
            while True:
                r = None
                try:
                    r = resp_cmd(self.ports[i], "SET", "bench-ready", str(i))
                except OSError as e:
                    r = e
                if r == "OK":
                    break
                if time.time() > end:
                    raise RuntimeError(f"capkv node {i + 1} does not accept writes: {r}")
                time.sleep(0.05)

    def check_alive(self):
        for i, p in enumerate(self.procs):
            if p.poll() is not None:
                raise RuntimeError(f"capkv node {i + 1} (pid {p.pid}) exited with {p.returncode}")

    def version(self):
        v = subprocess.run([CAPKV, "version"], capture_output=True, text=True).stdout.strip()
        git = lambda *a: subprocess.run(["git", "-C", ROOT, *a], capture_output=True, text=True).stdout.strip()
        rev = git("rev-parse", "--short", "HEAD")
        if rev:
            dirty = git("status", "--porcelain", "--", "src", "sim", "Makefile")
            v += f" (git {rev}{' + uncommitted changes' if dirty else ''})"
        return v


class Etcd:
    kind = "etcd"

    def __init__(self, workdir):
        self.dir = tempfile.mkdtemp(prefix="etcd-", dir=workdir)
        self.ports = [free_port() for _ in range(3)]
        self.peer_ports = [free_port() for _ in range(3)]
        cluster = ",".join(f"e{i + 1}=http://127.0.0.1:{p}" for i, p in enumerate(self.peer_ports))
        token = f"bench-{os.getpid()}-{time.time_ns()}"
        self.procs, self.cmds = [], []
        for i in range(3):
            d = os.path.join(self.dir, f"e{i + 1}")
            os.makedirs(d)
            cu, pu = f"http://127.0.0.1:{self.ports[i]}", f"http://127.0.0.1:{self.peer_ports[i]}"
            cmd = [ETCD, "--name", f"e{i + 1}", "--data-dir", os.path.join(d, "data"),
                   "--listen-client-urls", cu, "--advertise-client-urls", cu,
                   "--listen-peer-urls", pu, "--initial-advertise-peer-urls", pu,
                   "--initial-cluster", cluster, "--initial-cluster-state", "new",
                   "--initial-cluster-token", token, "--logger", "zap", "--log-outputs", "stderr"]
            self.cmds.append(cmd)
            p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL,
                                 stderr=open(os.path.join(d, "log"), "wb"))
            STARTED.append(p)
            self.procs.append(p)
        LIVE.append(self)
        self.wait_ready()

    @property
    def endpoints(self):
        return [f"127.0.0.1:{p}" for p in self.ports]

    def logs(self):
        return [os.path.join(self.dir, f"e{i + 1}", "log") for i in range(3)]

    def http(self, i, path, body=None, timeout=1.0):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.ports[i]}{path}", data=data,
                                     method="GET" if body is None else "POST")
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return json.loads(r.read())

    def status(self, i):
        try:
            return self.http(i, "/v3/maintenance/status", {})
        except (OSError, ValueError):
            return None

    def leader_index(self):
        for i in range(3):
            if self.procs[i].poll() is not None:
                continue
            st = self.status(i)
            if st and st.get("leader") and st["leader"] == st["header"]["member_id"]:
                return i
        return None

    def wait_ready(self, timeout=30.0):
        end = time.time() + timeout
        while time.time() < end:
            self.check_alive()
            ok = 0
            for i in range(3):
                try:
                    if self.http(i, "/health").get("health") == "true":
                        ok += 1
                except (OSError, ValueError):
                    pass
            if ok == 3 and self.leader_index() is not None:
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("etcd: cluster not healthy")
        b64 = lambda s: base64.b64encode(s.encode()).decode()
        for i in range(3):
            while True:
                try:
                    self.http(i, "/v3/kv/put", {"key": b64("bench-ready"), "value": b64(str(i))})
                    break
                except (OSError, ValueError) as e:
                    if time.time() > end:
                        raise RuntimeError(f"etcd member {i + 1} does not accept writes: {e}")
                    time.sleep(0.1)

    def check_alive(self):
        for i, p in enumerate(self.procs):
            if p.poll() is not None:
                raise RuntimeError(f"etcd member {i + 1} (pid {p.pid}) exited with {p.returncode}")

    def version(self):
        out = subprocess.run([ETCD, "--version"], capture_output=True, text=True).stdout
        return out.split("\n")[0].replace("etcd Version: ", "etcd ")


def stop_cluster(c, keep_logs_as=None):
    if c in LIVE:
        LIVE.remove(c)
    for p in c.procs:
        stop_proc(p)
    if keep_logs_as:
        dst = os.path.join(LOGS_KEEP, keep_logs_as)
        os.makedirs(dst, exist_ok=True)
        for path in c.logs():
            if os.path.exists(path):
                rel = os.path.relpath(path, c.dir).replace(os.sep, "-")
                shutil.copy(path, os.path.join(dst, rel))
    shutil.rmtree(c.dir, ignore_errors=True)


def scan_logs(c):
    """Lines of a cluster's logs that look like trouble (capkv: anything but routine lines;
    etcd: zap level warn/error/panic/fatal)."""
    bad = []
    for path in c.logs():
        if not os.path.exists(path):
            continue
        with open(path, errors="replace") as f:
            for line in f:
                if c.kind == "etcd":
                    if re.search(r'"level":"(error|panic|fatal|dpanic)"', line):
                        bad.append(f"{os.path.relpath(path, c.dir)}: {line.strip()[:300]}")
                elif re.search(r"(?i)error|assert|panic|abort|fatal|corrupt|warn", line):
                    bad.append(f"{os.path.relpath(path, c.dir)}: {line.strip()[:300]}")
    return bad


# ---------------------------------------------------------------- load runs

class CpuSampler(threading.Thread):
    def __init__(self, pids):
        super().__init__(daemon=True)
        self.pids, self.samples, self.stop_ev = pids, [], threading.Event()

    def sample(self):
        vals = [cpu_seconds(p) for p in self.pids]
        self.samples.append((time.monotonic(), sum(v for v in vals if v is not None)))

    def run(self):
        while not self.stop_ev.is_set():
            self.sample()
            self.stop_ev.wait(0.05)

    def at(self, t):
        """CPU seconds at time t (linear interpolation between samples)."""
        s = self.samples
        if t <= s[0][0]:
            return s[0][1]
        for (t0, c0), (t1, c1) in zip(s, s[1:]):
            if t0 <= t <= t1:
                return c0 + (c1 - c0) * (t - t0) / (t1 - t0) if t1 > t0 else c1
        return s[-1][1]


def run_load(cluster, tool, flags, label):
    cmd = [os.path.join(LOADGEN, tool), "-endpoints", ",".join(cluster.endpoints)] + flags + \
          ["-label", label]
    sampler = CpuSampler([p.pid for p in cluster.procs])
    sampler.sample()
    sampler.start()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    t_end = time.monotonic()
    sampler.stop_ev.set()
    sampler.join()
    sampler.sample()
    if r.returncode != 0:
        raise RuntimeError(f"{label}: {tool} exited {r.returncode}: {r.stderr.strip()}")
    res = json.loads(r.stdout.strip().splitlines()[-1])
    t_start = t_end - res["elapsed_s"]
    srv = sampler.at(t_end) - sampler.at(t_start)
    res["server_cpu_s"] = srv
    res["server_us_per_op"] = srv / res["ok"] * 1e6 if res["ok"] else float("nan")
    res["cmd"] = cmd
    res["stderr"] = r.stderr.strip()
    cluster.check_alive()
    return res


ODD = []  # anomalies seen during the run, reported below the table
SAVED = [0]


def save_logs(c, why):
    SAVED[0] += 1
    dst = os.path.join(LOGS_KEEP, f"incident-{SAVED[0]}-{c.kind}")
    os.makedirs(dst, exist_ok=True)
    for path in c.logs():
        if os.path.exists(path):
            shutil.copy(path, os.path.join(dst, os.path.relpath(path, c.dir).replace(os.sep, "-")))
    with open(os.path.join(dst, "why"), "w") as f:
        f.write(why + "\n")
    return dst


def run_load_retry(cluster, tool, flags, label):
    """A run that could not start (exit 2, e.g. a pre-fill write refused) is recorded with
    the cluster's logs and retried once on the same cluster."""
    try:
        return run_load(cluster, tool, flags, label)
    except RuntimeError as e:
        cluster.check_alive()
        dst = save_logs(cluster, str(e))
        ODD.append(f"{e} (retried once; logs in {os.path.relpath(dst, ROOT)})")
        log(f"RUN FAILED: {e}; logs saved in {dst}; retrying")
        cluster.wait_ready()
        return run_load(cluster, tool, flags, label + "-retry")


def med(runs, key):
    return statistics.median(r[key] for r in runs)


def rng(runs, key, fmt="{:,.0f}"):
    vals = [r[key] for r in runs]
    return f"{fmt.format(statistics.median(vals))} ({fmt.format(min(vals))}–{fmt.format(max(vals))})"


def run_failover(kind, workdir, rep):
    c = Capkv(workdir) if kind == "capkv" else Etcd(workdir)
    try:
        li = c.leader_index()
        if li is None:
            raise RuntimeError(f"{kind}: no leader before failover")
        pid = c.procs[li].pid
        if kind == "capkv":
            eps, tool = c.endpoints, "kvload-resp"  # every node, the one to be killed included
        else:
            eps, tool = [e for i, e in enumerate(c.endpoints) if i != li], "kvload-etcd"  # survivors
        cmd = [os.path.join(LOADGEN, tool), "-mode", "failover", "-endpoints", ",".join(eps),
               "-kill-pid", str(pid), "-probe-timeout", "100ms", "-max-wait", "30s"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise RuntimeError(f"{kind} failover: exit {r.returncode}: {r.stderr.strip()}")
        res = json.loads(r.stdout.strip().splitlines()[-1])
        res["cmd"] = cmd
        # did the survivors elect a new leader?
        time.sleep(0.5)
        res["new_leader_index"] = c.leader_index()
        res["bad_log_lines"] = scan_logs(c)
        return res
    finally:
        stop_cluster(c, keep_logs_as=f"failover-{kind}-{rep}")


# ---------------------------------------------------------------- main

def machine():
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{os.cpu_count()} cores (nproc {subprocess.run(['nproc'], capture_output=True, text=True).stdout.strip()}), {cpu}, Linux {platform.release()}"


def write_doc(path, section):
    head = "## CP cluster vs etcd"
    if os.path.exists(path):
        with open(path) as f:
            text = f.read()
    else:
        text = "# Performance\n"
    pat = re.compile(r"^## CP cluster vs etcd\n.*?(?=^## |\Z)", re.S | re.M)
    if pat.search(text):
        text = pat.sub(lambda _: section.rstrip("\n") + "\n\n", text).rstrip("\n") + "\n"
    else:
        text = text.rstrip("\n") + "\n\n" + section.rstrip("\n") + "\n"
    assert head in text
    with open(path, "w") as f:
        f.write(text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", default="10s")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--clients", default="1,16,64")
    ap.add_argument("--failovers", type=int, default=3)
    ap.add_argument("--doc", default=os.path.join(ROOT, "docs", "performance.md"))
    ap.add_argument("--no-doc", action="store_true")
    ap.add_argument("--json", default=os.path.join(ROOT, "build", "etcd-compare.json"))
    args = ap.parse_args()
    clients = [int(x) for x in args.clients.split(",")]
    for b in (CAPKV, ETCD, os.path.join(LOADGEN, "kvload-resp"), os.path.join(LOADGEN, "kvload-etcd")):
        if not os.access(b, os.X_OK):
            sys.exit(f"bench: {b} is missing: run bench/etcd-compare.sh")

    def on_signal(sig, _frame):
        raise KeyboardInterrupt(f"signal {sig}")

    signal.signal(signal.SIGTERM, on_signal)
    shutil.rmtree(LOGS_KEEP, ignore_errors=True)
    workdir = tempfile.mkdtemp(prefix="capkv-etcd-bench-", dir="/var/tmp")
    started = datetime.datetime.now().astimezone()
    t0 = time.time()
    common = ["-n", str(N_REQUESTS), "-duration", args.duration, "-key-size", "8",
              "-val-size", "64", "-key-space", "100000", "-req-timeout", "5s"]
    configs = [(op, cons) for op, cons in (("put", "l"), ("get", "l"), ("get", "s"))]
    results = {}  # (op, cons, clients) -> {"capkv": [runs], "etcd-c1": [...], "etcd-cN": [...]}
    failovers = {"capkv": [], "etcd": []}
    odd = ODD
    capkv_v = etcd_v = ""
    try:
        cap, etc = Capkv(workdir), Etcd(workdir)
        capkv_v, etcd_v = cap.version(), etc.version()
        log(f"capkv cluster: {cap.endpoints} pids {[p.pid for p in cap.procs]}; "
            f"etcd cluster: {etc.endpoints} pids {[p.pid for p in etc.procs]}")
        # idle cost of each cluster (it keeps running while the other one is measured)
        idle = {}
        for c in (cap, etc):
            pids = [p.pid for p in c.procs]
            a = sum(cpu_seconds(p) for p in pids)
            time.sleep(2.0)
            idle[c.kind] = (sum(cpu_seconds(p) for p in pids) - a) / 2.0
        log(f"idle server CPU: capkv {idle['capkv'] * 100:.1f}% of a core, etcd {idle['etcd'] * 100:.1f}%")
        for op, cons in configs:
            for n in clients:
                key = (op, cons, n)
                results[key] = {}
                flags = ["-op", op, "-consistency", cons, "-clients", str(n)] + common
                variants = [("etcd-c1", 1)] + ([("etcd-cN", n)] if n > 1 else [])
                for rep in range(args.repeat):
                    extra = ["-consistency-cmd", "CONSISTENCY stale"] if (op == "get" and cons == "s") else []
                    name = f"{op}{'' if op == 'put' else '-' + cons}-{n}"
                    r = run_load_retry(cap, "kvload-resp", flags + ["-conns", str(n)] + extra, f"capkv-{name}-r{rep}")
                    results[key].setdefault("capkv", []).append(r)
                    log(f"{name} rep {rep}: capkv {r['ops_per_s']:,.0f}/s p50 {r['p50_ms']} p99 {r['p99_ms']} "
                        f"err {r['errors']} {r['first_error']!r} elapsed {r['elapsed_s']:.2f} "
                        f"srv {r['server_us_per_op']:.0f}us/op cli {r['client_cpu_s']:.1f}s")
                    for vname, conns in variants:
                        r = run_load_retry(etc, "kvload-etcd", flags + ["-conns", str(conns)], f"etcd-{name}-conns{conns}-r{rep}")
                        results[key].setdefault(vname, []).append(r)
                        log(f"{name} rep {rep}: etcd conns {conns} {r['ops_per_s']:,.0f}/s p50 {r['p50_ms']} "
                            f"p99 {r['p99_ms']} err {r['errors']} {r['first_error']!r} elapsed {r['elapsed_s']:.2f} "
                            f"srv {r['server_us_per_op']:.0f}us/op cli {r['client_cpu_s']:.1f}s")
        for c in (cap, etc):
            odd += [f"{c.kind} load phase: {l}" for l in scan_logs(c)]
        stop_cluster(cap, keep_logs_as="load-capkv")
        stop_cluster(etc, keep_logs_as="load-etcd")
        for rep in range(args.failovers):
            for kind in ("capkv", "etcd"):
                r = run_failover(kind, workdir, rep)
                failovers[kind].append(r)
                log(f"failover {kind} rep {rep}: first put ok {r['first_put_ok_ms']:.0f} ms, "
                    f"attempts {r['put_attempts']}, failures {r['put_failures']}, errors {r['errors_seen']}, "
                    f"new leader seen {r['new_leader_seen_ms']}")
                odd += [f"{kind} failover {rep}: {l}" for l in r["bad_log_lines"]]
    except BaseException as e:
        for c in LIVE:
            try:
                log(f"aborted ({e}); {c.kind} logs saved in {save_logs(c, 'aborted: ' + str(e))}")
            except Exception:
                pass
        raise
    finally:
        for p in STARTED:
            stop_proc(p)
        shutil.rmtree(workdir, ignore_errors=True)

    # ------------------------------------------------------------ report
    with open(args.json, "w") as f:
        json.dump({"results": {"/".join(map(str, k)): v for k, v in results.items()},
                   "failovers": failovers}, f, indent=1, default=str)
    rows = []
    notes = []
    names = {("put", "l"): "put", ("get", "l"): "get, linearizable", ("get", "s"): "get, stale"}
    tgt = {}
    for (op, cons, n), v in results.items():
        cap = v["capkv"]
        cands = [k for k in ("etcd-c1", "etcd-cN") if k in v]
        best = max(cands, key=lambda k: med(v[k], "ops_per_s"))
        et = v[best]
        conns = 1 if best == "etcd-c1" else n
        if len(cands) > 1:
            other = [k for k in cands if k != best][0]
            notes.append(f"{names[(op, cons)]}, {n} clients: etcd -conns {conns} "
                         f"{med(et, 'ops_per_s'):,.0f}/s, -conns {1 if conns != 1 else n} "
                         f"{med(v[other], 'ops_per_s'):,.0f}/s")
        errs_c = sum(r["errors"] for r in cap)
        errs_e = sum(r["errors"] for r in et)
        ratio = med(cap, "ops_per_s") / med(et, "ops_per_s")
        tgt[(op, cons, n)] = (ratio, med(cap, "p99_ms"), med(et, "p99_ms"))
        rows.append(
            f"| {names[(op, cons)]} | {n} | {rng(cap, 'ops_per_s')} | {rng(et, 'ops_per_s')} | {conns} | "
            f"**{ratio:.2f}** | {med(cap, 'p50_ms'):.2f} / {med(cap, 'p99_ms'):.2f} | "
            f"{med(et, 'p50_ms'):.2f} / {med(et, 'p99_ms'):.2f} | {med(cap, 'server_us_per_op'):.0f} | "
            f"{med(et, 'server_us_per_op'):.0f} | {med(cap, 'client_cpu_s'):.1f} | "
            f"{med(et, 'client_cpu_s'):.1f} | {errs_c} / {errs_e} |")
        for sysname, runs in (("capkv", cap), ("etcd", et)):
            for r in runs:
                if r["errors"]:
                    odd.append(f"{r['label']}: {r['errors']} errors, first_error {r['first_error']!r}")
                if r["elapsed_s"] < 0.9 * float(args.duration.rstrip("s")):
                    odd.append(f"{r['label']}: elapsed_s {r['elapsed_s']:.2f} shorter than -duration")

    fo_rows = []
    for kind in ("capkv", "etcd"):
        fr = failovers[kind]
        if not fr:
            continue
        vals = [r["first_put_ok_ms"] for r in fr]
        nl = [r["new_leader_seen_ms"] for r in fr]
        fo_rows.append((kind, vals, nl, fr))
    fo_table = []
    if fo_rows:
        fo_table.append("| failover (SIGKILL the leader) | capkv | etcd | capkv/etcd |")
        fo_table.append("|---|---|---|---|")
        d = {k: (v, nl, fr) for k, v, nl, fr in fo_rows}
        cv, ev = d["capkv"][0], d["etcd"][0]
        fmt = lambda xs: f"{statistics.median(xs):.0f} ({min(xs):.0f}–{max(xs):.0f})"
        fo_table.append(f"| kill → first successful put, ms, median (min–max) of {len(cv)} | {fmt(cv)} | "
                        f"{fmt(ev)} | {statistics.median(cv) / statistics.median(ev):.2f} |")
        fo_table.append(f"| all runs, ms | {', '.join(f'{x:.0f}' for x in cv)} | "
                        f"{', '.join(f'{x:.0f}' for x in ev)} | |")
        fo_table.append(f"| failed probe puts (median) | {statistics.median(r['put_failures'] for r in d['capkv'][2]):.0f} | "
                        f"{statistics.median(r['put_failures'] for r in d['etcd'][2]):.0f} | |")
        fo_table.append(f"| kill → survivor reports new leader, ms | n/a (RESP has no standard way) | "
                        f"{fmt(d['etcd'][1])} | |")
        errs = {k: {} for k in d}
        for k in d:
            for r in d[k][2]:
                for e, c in r["errors_seen"].items():
                    e = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:*", e)  # ports differ per run
                    errs[k][e] = errs[k].get(e, 0) + c
        fo_errs = "; ".join(f"{k}: " + (", ".join(f"`{e}` ×{c}" for e, c in errs[k].items()) or "none")
                            for k in d)

    # targets
    target_lines = []
    if ("put", "l", 64) in tgt:
        ratio, cp99, ep99 = tgt[("put", "l", 64)]
        met = ratio >= 5 and cp99 <= ep99
        target_lines.append(f"- puts/s at 64 clients ≥ 5× etcd with a p99 no worse: **{'met' if met else 'not met'}** "
                            f"({ratio:.2f}×; p99 {cp99:.2f} ms vs {ep99:.2f} ms)")
    if ("get", "l", 64) in tgt:
        ratio = tgt[("get", "l", 64)][0]
        target_lines.append(f"- linearizable gets/s at 64 clients ≥ 6× etcd: **{'met' if ratio >= 6 else 'not met'}** "
                            f"({ratio:.2f}×)")
    if failovers["capkv"]:
        cv = [r["first_put_ok_ms"] for r in failovers["capkv"]]
        met = all(0 <= x <= 600 for x in cv)
        target_lines.append(f"- writes resume within 0.6 s of a leader kill (default timeouts), every run: "
                            f"**{'met' if met else 'not met'}** (median {statistics.median(cv):.0f} ms, "
                            f"max {max(cv):.0f} ms)")

    ex_flags = " ".join(["-n", str(N_REQUESTS), "-duration", args.duration, "-key-size", "8", "-val-size", "64",
                         "-key-space", "100000", "-req-timeout", "5s"])
    out = []
    out.append("## CP cluster vs etcd\n")
    out.append(f"`bench/etcd-compare.sh` ({started:%Y-%m-%d %H:%M %Z}; {(time.time() - t0) / 60:.1f} min). "
               f"{capkv_v} (3-node Raft cluster, fsync always: a write is answered after the fsync that covers "
               f"its commit) against {etcd_v} (3 members, default settings: fsync on every commit), "
               f"on {machine()}. Both clusters run side by side on 127.0.0.1 (data on the same ext4 disk) and "
               f"stay up for the whole load phase; the one not being measured is idle "
               f"(idle CPU: capkv {idle['capkv'] * 100:.1f}% of a core, etcd {idle['etcd'] * 100:.1f}%). "
               f"Load generators: kvload-resp and kvload-etcd from `../shared/loadgen` (Go "
               f"{subprocess.run(['go', 'version'], capture_output=True, text=True).stdout.split()[2]}), "
               f"following its fairness rules: the same flags on both sides, every node listed on both sides, "
               f"one outstanding request per worker, median of {args.repeat} runs alternating the systems "
               f"(capkv, etcd -conns 1, etcd -conns N, capkv, ...), min–max in brackets.\n")
    out.append("```")
    out.append(f"kvload-resp -endpoints <3 capkv nodes> -op OP -consistency C -clients N -conns N {ex_flags}"
               f"   [+ -consistency-cmd \"CONSISTENCY stale\" for stale gets]")
    out.append(f"kvload-etcd -endpoints <3 etcd members> -op OP -consistency C -clients N -conns {{1,N}} {ex_flags}")
    out.append("kvload-resp -mode failover -endpoints <3 capkv nodes, the leader included> -kill-pid <leader pid> -probe-timeout 100ms -max-wait 30s")
    out.append("kvload-etcd -mode failover -endpoints <2 surviving members> -kill-pid <leader pid> -probe-timeout 100ms -max-wait 30s")
    out.append("build/capkv server --id I --listen 127.0.0.1:P --peer-listen 127.0.0.1:PP --peers 1@..,2@..,3@.. --dir DIR --log-file DIR/log")
    out.append("etcd --name eI --data-dir DIR --listen-client-urls/--advertise-client-urls http://127.0.0.1:P "
               "--listen-peer-urls/--initial-advertise-peer-urls http://127.0.0.1:PP --initial-cluster e1=..,e2=..,e3=.. "
               "--initial-cluster-state new --logger zap")
    out.append("```\n")
    out.append("Ops/s are successful requests per second of the measured phase. Latency p50/p99 in ms "
               "(median over the runs). Server CPU: utime+stime of the 3 server processes over the measured "
               "phase (from /proc, sampled every 50 ms), divided by successful requests. Client CPU: the "
               "load generator's CPU seconds per run (it shares the 2 cores with the servers). Errors: sum over "
               "the runs.\n")
    out.append("| test | clients | capkv ops/s | etcd ops/s | etcd -conns | capkv/etcd | capkv p50 / p99 ms | "
               "etcd p50 / p99 ms | capkv server µs CPU/op | etcd server µs CPU/op | capkv client CPU s | "
               "etcd client CPU s | errors capkv / etcd |")
    out.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    out += rows
    out.append("")
    if notes:
        out.append("etcd with the other `-conns` value (median ops/s): " + "; ".join(notes) + ".\n")
    if fo_table:
        out.append(f"Failover: a fresh cluster of each kind per run ({args.failovers} runs each, alternating), "
                   f"default timeouts (capkv: election timeout 200–400 ms, heartbeat 40 ms; etcd: election "
                   f"timeout 1000 ms, heartbeat 100 ms), probe puts bounded by 100 ms each.\n")
        out += fo_table
        out.append("")
        out.append(f"Probe errors seen during failover: {fo_errs}.\n")
    out.append("Targets (issue):\n")
    out += target_lines
    out.append("")
    if odd:
        out.append("Noted during the run:\n")
        out += [f"- {o}" for o in odd[:40]]
        if len(odd) > 40:
            out.append(f"- … and {len(odd) - 40} more")
        out.append("")
    section = "\n".join(out)
    print(section)
    if not args.no_doc:
        write_doc(args.doc, section)
        log(f"written to {args.doc}")


if __name__ == "__main__":
    main()
