#!/usr/bin/env bash
# The style checks STYLE.md asks for, mechanically: line length, function length, no system
# calls / clocks / unseeded randomness / printing in the deterministic core, and a unit
# test for every module. Prints "tidy: N passed, N failed".
set -u
cd "$(dirname "$0")/.."
failed=0
passed=0
check() { # name, output-of-check (empty = pass)
    if [ -n "$2" ]; then
        echo "tidy: $1:"
        printf '%s\n' "$2" | head -20
        failed=$((failed + 1))
    else
        passed=$((passed + 1))
    fi
}

files=$(find src tests sim -name '*.[ch]' 2>/dev/null | sort)
core_dirs="src/core src/engine src/local src/cp src/raft src/ap src/cmd src/crdt src/data src/proto src/storage"
core_files=$(for d in $core_dirs; do [ -d "$d" ] && find "$d" -name '*.[ch]'; done | sort)

check "lines over 100 columns" \
    "$(awk 'length($0) > 100 { print FILENAME ":" FNR ": " length($0) " columns" }' $files)"

# A function starts at a line in column 0 that ends in "{" (not a struct/enum/union/array
# initializer) and ends at the next "}" in column 0.
check "functions over 70 lines" "$(awk '
    FNR == 1 { start = 0 }
    /^[A-Za-z].*\)[^;]*\{$/ && !/^(struct|enum|union|typedef|static const|const)[^(]*\{$/ {
        start = FNR; name = $0; next }
    /^\}/ && start { n = FNR - start - 1; if (n > 70) print FILENAME ":" start ": " n " lines";
        start = 0 }' $(printf '%s\n' $files | grep '\.c$'))"

check "system headers, clocks, randomness or printing in core folders" \
    "$(grep -nE '#include <(sys/|unistd|fcntl|time\.h|pthread|uv\.h|sched|signal|netinet|arpa/)|[^_a-z]rand\(|[^_a-z]time\(|[^_a-z.]printf\(|fprintf\(|puts\(|clock_gettime|gettimeofday|getenv' $core_files 2>/dev/null)"

missing=""
for dir in src/*/; do
    m=$(basename "$dir")
    [ "$m" = cli ] && continue
    ls tests/unit/test_${m}*.c >/dev/null 2>&1 || missing="$missing src/$m has no tests/unit/test_${m}*.c"$'\n'
done
check "modules without unit tests" "$(printf '%s' "$missing" | sed '/^$/d')"

check "TODOs without an issue number" "$(grep -nE 'TODO(\b|[^(]|\([^#0-9])' $files | grep -vE 'TODO\(#?[0-9]+\)' )"

echo "tidy: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
