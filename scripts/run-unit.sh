#!/usr/bin/env bash
# Runs each cmocka unit-test binary, then prints one closing line "N passed, N failed".
set -u
passed=0
failed=0
failed_names=()
for bin in "$@"; do
    out=$("$bin" 2>&1)
    rc=$?
    p=$(printf '%s\n' "$out" | sed -n 's/^\[  PASSED  \] \([0-9]*\) test.*/\1/p' | tail -1)
    f=$(printf '%s\n' "$out" | sed -n 's/^\[  FAILED  \] \([0-9]*\) test.*/\1/p' | tail -1)
    passed=$((passed + ${p:-0}))
    if [ "$rc" -ne 0 ]; then
        printf '%s\n' "$out"
        failed=$((failed + ${f:-1}))
        failed_names+=("$(basename "$bin")")
    fi
done
[ ${#failed_names[@]} -gt 0 ] && echo "failing binaries: ${failed_names[*]}"
echo "${UNIT_LABEL:-unit}: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
