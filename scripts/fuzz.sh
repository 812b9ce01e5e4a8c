#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) and runs each for a few seconds from
# its seed corpus. usage: fuzz.sh build | run [SECONDS_PER_TARGET]
set -eu
cd "$(dirname "$0")/.."
out=build-fuzz
mode=${1:-run}
seconds=${2:-20}
flags="-std=c11 -D_GNU_SOURCE -g -O1 -Isrc -Isim -DCAPKV_DEBUG -fsanitize=fuzzer,address,undefined"
flags="$flags -fno-sanitize-recover=undefined"
# Everything but the shell and the entry point: the targets exercise the pure code.
srcs=$(find src sim -name '*.c' ! -path 'src/net/*' ! -path 'src/cli/*' ! -path 'sim/main/*' | sort)
mkdir -p "$out"
targets=$(ls tests/fuzz/fuzz_*.c)
for t in $targets; do
    name=$(basename "$t" .c)
    clang $flags -o "$out/$name" "$t" $srcs -lxxhash
done
[ "$mode" = build ] && exit 0
passed=0
failed=0
for t in $targets; do
    name=$(basename "$t" .c)
    corpus="$out/corpus-$name"
    mkdir -p "$corpus"
    seeds="tests/fuzz/seeds/$name"
    if ./"$out/$name" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -print_final_stats=0 "$corpus" $( [ -d "$seeds" ] && echo "$seeds" ) \
        > "$out/$name.log" 2>&1; then
        passed=$((passed + 1))
        echo "fuzz: $name ran ${seconds}s clean"
    else
        failed=$((failed + 1))
        echo "fuzz: $name FAILED, see $out/$name.log; the crashing input is saved as crash-* here"
        tail -40 "$out/$name.log"
    fi
done
echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
