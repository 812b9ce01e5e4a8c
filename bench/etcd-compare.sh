#!/usr/bin/env bash
# capkv's 3-node CP cluster against a 3-member etcd 3.4 cluster, side by side on 127.0.0.1
# (see etcd-compare.py for what is measured and how). Installs what is missing (apt),
# builds the twin load generators into build/loadgen and capkv (make -j2), then runs
# etcd-compare.py, which prints a markdown table and writes it into docs/performance.md
# ("CP cluster vs etcd"). Every server it starts is stopped by PID at the end.
#
# Usage: bench/etcd-compare.sh [--duration 10s] [--repeat 3] [--clients 1,16,64]
#                              [--failovers 3] [--no-doc]
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)
cd "$root"
loadgen_src=${LOADGEN_SRC:-$root/../shared/loadgen}

sudo=()
[[ $(id -u) -eq 0 ]] || sudo=(sudo)
missing=()
[[ -x /usr/bin/etcd ]] || missing+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || missing+=(etcd-client)
command -v python3 >/dev/null 2>&1 || missing+=(python3)
if ((${#missing[@]})); then
  echo "etcd-compare: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  if ! "${sudo[@]}" apt-get install -y -q "${missing[@]}" >&2; then
    "${sudo[@]}" apt-get update -q >&2
    "${sudo[@]}" apt-get install -y -q "${missing[@]}" >&2
  fi
fi
# Debian's etcd-server package may start a system etcd on 2379; the benchmark uses its own
# ports and never touches it.

if [[ ! -x build/loadgen/kvload-resp || ! -x build/loadgen/kvload-etcd ]] ||
  [[ -n $(find "$loadgen_src" -newer build/loadgen/kvload-etcd -name '*.go' 2>/dev/null) ]]; then
  "$loadgen_src/build.sh" build/loadgen
fi
make -j2 >&2

exec /usr/bin/python3 "$root/bench/etcd-compare.py" "$@"
