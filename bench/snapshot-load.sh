#!/usr/bin/env bash
# Sustained put load on a local CP cluster across many snapshots (issue 8's item 1): a
# fresh 3-node cluster (`capkv cluster up`, defaults), kvload-resp putting VAL-byte values
# from CLIENTS clients over all nodes for SECONDS, measured one second at a time; after
# each second every node's INFO says whether a snapshot ran (snapshots_taken moved, or one
# is in progress). Prints one line per second, then: ops/s, p50/p99/max over the seconds,
# failed requests, leader changes (terms led, from INFO), snapshots taken, and the median
# p99 of the seconds with a snapshot against those without (the target: within 2x).
# Then each node's slow steps (INFO loop_slow_steps, loop_slowest_step_ms); --logs DIR keeps
# the nodes' logs there.
#   bench/snapshot-load.sh [--seconds 300] [--clients 64] [--val-size 500] [--base-port 7601]
#                          [--logs DIR]
# Needs build/capkv and build/loadgen/kvload-resp (../shared/loadgen/build.sh build/loadgen).
set -eu
cd "$(dirname "$0")/.."
seconds=300 clients=64 val=500 port=7601 logs=
while [ $# -gt 0 ]; do
    case "$1" in
    --seconds) seconds=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --val-size) val=$2; shift 2 ;;
    --base-port) port=$2; shift 2 ;;
    --logs) logs=$2; shift 2 ;;
    *) echo "usage: bench/snapshot-load.sh [--seconds S] [--clients N] [--val-size B] [--base-port P] [--logs DIR]"; exit 2 ;;
    esac
done
capkv=${CAPKV_BIN:-build/capkv}
load=build/loadgen/kvload-resp
dir=$(mktemp -d /tmp/capkv-snapload.XXXXXX)
. bench/local-cluster.sh
cluster_start snapshot-load
info() { # port field
    redis-cli -p "$1" info replication 2>/dev/null | tr -d '\r' | sed -n "s/^$2://p"
}
state() { # "taken in_progress led" summed over the nodes
    local t=0 p=0 l=0
    for i in 0 1 2; do
        t=$((t + $(info $((port + i)) snapshots_taken || echo 0)))
        p=$((p + $(info $((port + i)) snapshot_in_progress || echo 0)))
        l=$((l + $(info $((port + i)) raft_terms_led || echo 0)))
    done
    echo "$t $p $l"
}
out=$dir/seconds.txt
: >"$out"
read -r taken0 _ led0 <<<"$(state)"
taken=$taken0
for s in $(seq 1 "$seconds"); do
    # Each second draws its keys modulo another key space: the tool's key sequence is the
    # same every run, and the data is to grow as in one long run.
    line=$("$load" -endpoints "$endpoints" -op put -clients "$clients" -n 100000000 \
        -duration 1s -key-size 16 -val-size "$val" -key-space $((10000000 + s * 7919)) \
        -label "s$s" 2>/dev/null || echo '{}')
    read -r now progress led <<<"$(state)"
    snap=$([ "$now" != "$taken" ] || [ "$progress" -gt 0 ] && echo 1 || echo 0)
    taken=$now
    echo "$s $snap $led $line" >>"$out"
done
/usr/bin/python3 - "$out" "$taken0" "$taken" "$led0" <<'EOF'
import json, statistics, sys
path, taken0, taken, led0 = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
rows = []
for line in open(path):
    s, snap, led, js = line.split(" ", 3)
    d = json.loads(js)
    if "ok" not in d:
        continue
    rows.append((int(s), int(snap), int(led), d))
for s, snap, led, d in rows:
    print("second %3d snapshot=%d ops/s=%6.0f p50=%6.2f p99=%7.2f max=%8.2f errors=%d"
          % (s, snap, d["ops_per_s"], d["p50_ms"], d["p99_ms"], d["max_ms"], d["errors"]))
ok = sum(d["ok"] for *_, d in rows)
errors = sum(d["errors"] for *_, d in rows)
elapsed = sum(d["elapsed_s"] for *_, d in rows)
with_snap = [d["p99_ms"] for _, snap, _, d in rows if snap]
without = [d["p99_ms"] for _, snap, _, d in rows if not snap]
med = lambda xs: statistics.median(xs) if xs else float("nan")
print("ops/s %.0f over %d s; p50 %.2f ms (median of seconds), p99 %.2f ms, max %.2f ms"
      % (ok / elapsed, len(rows), med([d["p50_ms"] for *_, d in rows]),
         med([d["p99_ms"] for *_, d in rows]), max(d["max_ms"] for *_, d in rows)))
print("failed requests %d of %d" % (errors, ok + errors))
print("leader changes %d (terms led, from INFO)" % (rows[-1][2] - led0 if rows else 0))
print("snapshots taken %d (all nodes)" % (taken - taken0))
print("p99 in seconds with a snapshot %.2f ms (%d s), without %.2f ms (%d s): ratio %.2f"
      % (med(with_snap), len(with_snap), med(without), len(without),
         med(with_snap) / med(without) if with_snap and without else float("nan")))
EOF
for i in 0 1 2; do
    st=$(redis-cli -p $((port + i)) info stats 2>/dev/null | tr -d '\r')
    echo "node $((i + 1)): slow steps $(echo "$st" | sed -n 's/^loop_slow_steps://p'), slowest $(echo "$st" | sed -n 's/^loop_slowest_step_ms://p') ms"
done
