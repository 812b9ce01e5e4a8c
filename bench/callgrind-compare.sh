#!/usr/bin/env bash
# Instructions per request of two capkv builds, counted by callgrind (deterministic, unlike
# a rate on a shared host): each runs as a single node (fsync = always) under valgrind,
# driven by redis-benchmark -P 16 (SET, INCR, SADD, HSET, N requests each, 50 clients);
# prints the total instructions and their count per request for both, then the functions
# whose counts differ most. The run's hash seed moves dict chain lengths (dict_find,
# db_entry_match) by a few percent either way: compare those across repeats, not once.
#   bench/callgrind-compare.sh OLD_CAPKV NEW_CAPKV [N]      (default N = 40000)
set -eu
old=${1:?usage: bench/callgrind-compare.sh OLD_CAPKV NEW_CAPKV [N]}
new=${2:?usage: bench/callgrind-compare.sh OLD_CAPKV NEW_CAPKV [N]}
n=${3:-40000}
command -v valgrind >/dev/null || { echo "callgrind-compare: valgrind is not installed"; exit 1; }
work=$(mktemp -d /tmp/capkv-callgrind.XXXXXX)
port=$((20000 + RANDOM % 20000))
run() { # label binary
    local label=$1 bin=$2 dir=$work/data-$1
    mkdir -p "$dir"
    valgrind --tool=callgrind --callgrind-out-file="$work/$label.out" "$bin" server \
        --listen "127.0.0.1:$port" --dir "$dir" --fsync always >"$work/$label.log" 2>&1 &
    local pid=$!
    for _ in $(seq 1 150); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.2; done
    timeout 600 redis-benchmark -p "$port" -q -n "$n" -c 50 -P 16 -d 64 -r 100000 \
        -t set,incr,sadd,hset >"$work/$label.bench" 2>&1 || true
    kill -TERM "$pid"
    wait "$pid" || true
    port=$((port + 1))
    callgrind_annotate --auto=no --threshold=100 "$work/$label.out" 2>/dev/null |
        grep -E "^ *[0-9,]+ \([ 0-9.]+%\) " |
        sed -E 's/^ *([0-9,]+) \([^)]*\) +([^ ]*).*/\1 \2/; s#^([0-9,]+) .*/([^/]*)$#\1 \2#' |
        tr -d ',' | sort -k2 >"$work/$label.funcs"
}
run old "$old"
run new "$new"
requests=$((n * 4))
for l in old new; do
    total=$(awk '$2 == "PROGRAM" {print $1}' "$work/$l.funcs")
    echo "$l: $total instructions, $((total / requests)) per request ($requests requests)"
done
echo "functions that differ by more than 1 instruction per request (old new diff):"
join -1 2 -2 2 -a1 -a2 -e0 -o 0,1.1,2.1 "$work/old.funcs" "$work/new.funcs" |
    awk -v r="$requests" '$1 != "PROGRAM" {d = $3 - $2; if (d > r || d < -r)
        printf "%d  %-45s %12d %12d %+12d\n", d, $1, $2, $3, d}' | sort -k1,1 -n -r |
    cut -d' ' -f2-
echo "(callgrind files in $work)"
