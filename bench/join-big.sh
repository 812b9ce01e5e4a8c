#!/usr/bin/env bash
# A node joining a cluster that already holds data (issue 8's item 2): a fresh 3-node
# cluster (`capkv cluster up`, defaults) is loaded with KEYS puts of VAL-byte values from 64
# clients (default 560,000 x 4,000 bytes: about 2.1 GiB of values), every node is asked to
# SAVE (so the snapshot a joiner gets holds it all), then `capkv cluster add` starts node 4
# and waits until it is a voter; the script times that and waits until node 4 has applied
# what the leader has; then a follower's data directory is wiped and it is started again,
# timed the same way. Prints the load's figures, the snapshot's size, and the times.
#   bench/join-big.sh [--keys 560000] [--val-size 4000] [--base-port 7701] [--logs DIR]
# Needs build/capkv and build/loadgen/kvload-resp (../shared/loadgen/build.sh build/loadgen).
set -eu
cd "$(dirname "$0")/.."
keys=560000 val=4000 port=7701 logs=
while [ $# -gt 0 ]; do
    case "$1" in
    --keys) keys=$2; shift 2 ;;
    --val-size) val=$2; shift 2 ;;
    --base-port) port=$2; shift 2 ;;
    --logs) logs=$2; shift 2 ;;
    *) echo "usage: bench/join-big.sh [--keys N] [--val-size B] [--base-port P] [--logs DIR]"; exit 2 ;;
    esac
done
capkv=${CAPKV_BIN:-build/capkv}
load=build/loadgen/kvload-resp
dir=$(mktemp -d /tmp/capkv-joinbig.XXXXXX)
. bench/local-cluster.sh
cluster_start join-big
field() { # port section field
    redis-cli -p "$1" info "$2" 2>/dev/null | tr -d '\r' | sed -n "s/^$3://p"
}
echo "load: $("$load" -endpoints "$endpoints" -op put -clients 64 -n "$keys" -duration 30m \
    -key-size 16 -val-size "$val" -key-space 1000000000 -label load 2>/dev/null)"
for i in 0 1 2; do redis-cli -p $((port + i)) save >/dev/null; done
leader=$port
for i in 0 1 2; do
    [ "$(field $((port + i)) replication role)" = leader ] && leader=$((port + i))
done
echo "leader: port $leader, keys $(redis-cli -p "$leader" dbsize), snapshot $(( $(field "$leader" replication snapshot_last_bytes) >> 20 )) MiB, data dir $(du -sm "$dir/node-1" | cut -f1) MB"
catch_up() { # port name: waits up to 120 s until it has applied the leader's index (want)
    want=$(field "$leader" replication raft_applied_index)
    for _ in $(seq 1 1200); do
        got=$(field "$1" replication raft_applied_index)
        [ -n "$got" ] && [ "$got" -ge "$want" ] && break
        sleep 0.1
    done
    done_at=$(date +%s%N)
    [ -n "$got" ] && [ "$got" -ge "$want" ] || echo "$2: had not applied index $want after 120 s (at ${got:-?})"
}
start=$(date +%s%N)
"$capkv" cluster add --dir "$dir"
voter=$(date +%s%N)
new=$((port + 3))
catch_up "$new" "node 4"
echo "node 4: a voter after $(( (voter - start) / 1000000 )) ms, applied the leader's index $want after $(( (done_at - start) / 1000000 )) ms; keys $(redis-cli -p "$new" dbsize 2>/dev/null || echo '?')"
echo "node 4: snapshot_installs $(field "$new" replication snapshot_installs), snapshot_bytes_received $(field "$new" replication snapshot_bytes_received), slow steps $(field "$new" stats loop_slow_steps) (slowest $(field "$new" stats loop_slowest_step_ms) ms)"
echo "leader: snapshot_chunks_sent $(field "$leader" replication snapshot_chunks_sent), resent $(field "$leader" replication snapshot_chunks_resent), terms led (all nodes): $(for i in 0 1 2 3; do field $((port + i)) replication raft_terms_led; done | awk '{t += $1} END {print t + 0}')"

# Then a follower whose data directory is wiped: stopped by PID, its files removed (its
# log file kept), started again with the same command line; timed until it has applied
# what the leader has.
victim=
for i in 1 2 3; do
    [ $((port + i - 1)) != "$leader" ] && { victim=$i; break; }
done
vdir=$dir/node-$victim
vpid=$(cat "$vdir/pid")
read -r -a vargs <<<"$(ps -o args= -p "$vpid")"
kill -TERM "$vpid"
for _ in $(seq 1 300); do kill -0 "$vpid" 2>/dev/null || break; sleep 0.1; done
find "$vdir" -mindepth 1 ! -name node.log ! -name pid -delete
start=$(date +%s%N)
"$capkv" "${vargs[@]:1}" >/dev/null 2>&1 &
echo $! >"$vdir/pid"
vport=$((port + victim - 1))
catch_up "$vport" "node $victim (wiped)"
echo "node $victim (wiped): applied the leader's index $want after $(( (done_at - start) / 1000000 )) ms; keys $(redis-cli -p "$vport" dbsize 2>/dev/null || echo '?'), snapshot_bytes_received $(field "$vport" replication snapshot_bytes_received), slowest step $(field "$vport" stats loop_slowest_step_ms) ms"
echo "terms led (all nodes): $(for i in 0 1 2 3; do field $((port + i)) replication raft_terms_led; done | awk '{t += $1} END {print t + 0}')"
