#!/usr/bin/env bash
# Runs the integration tests (tests/integration, pytest with Debian's python3-redis) against
# build/capkv, then prints one closing line "integration: N passed, N failed".
# Installs the Node clients (ioredis, node-redis) first when node_modules is missing.
# Exit status is non-zero when any test failed or errored, or when no test ran.
set -u
cd "$(dirname "$0")/.."

bin=${CAPKV_BIN:-build/capkv}  # the tests read CAPKV_BIN too
if [ ! -x "$bin" ]; then
    echo "$bin is missing: run make first" >&2
    echo "integration: 0 passed, 1 failed"
    exit 1
fi

node_dir=tests/integration/node
if [ ! -d "$node_dir/node_modules" ]; then
    if command -v npm >/dev/null; then
        (cd "$node_dir" && npm install --no-audit --no-fund --loglevel=error) ||
            echo "npm install failed in $node_dir; the Node client tests will fail" >&2
    else
        echo "npm is missing; the Node client tests will fail (apt-get install nodejs npm)" >&2
    fi
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
/usr/bin/python3 -m pytest -q -p no:cacheprovider -rfEX tests/integration "$@" 2>&1 | tee "$log"
rc=${PIPESTATUS[0]}

# pytest's summary: "== 3 failed, 40 passed, 2 xfailed, 1 error in 12.3s ==".
summary=$(grep -E '[0-9]+ (passed|failed|error|errors|xfailed|xpassed|skipped)' "$log" | tail -1)
count() { printf '%s\n' "$summary" | grep -oE "[0-9]+ $1" | head -1 | grep -oE '[0-9]+' || true; }
passed=$(count passed)
failed=$(count failed)
errors=$(count 'errors?')
xpassed=$(count xpassed)
failed=$(( ${failed:-0} + ${errors:-0} + ${xpassed:-0} ))
passed=${passed:-0}
if [ "$rc" -ne 0 ] && [ "$failed" -eq 0 ]; then
    failed=1  # pytest failed without a test failing (collection error, no tests, ...)
fi
echo "integration: $passed passed, $failed failed"
[ "$rc" -eq 0 ] && [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
