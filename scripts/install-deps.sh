#!/usr/bin/env bash
# Installs what capkv needs to build, test and benchmark, from Debian's packages (and the
# Node clients used by the integration tests from the npm registry). Safe to run again:
# it installs only what is missing. Needs root (or sudo) for apt-get.
set -eu
cd "$(dirname "$0")/.."

packages=(
    build-essential pkg-config   # the C compiler and make
    libuv1-dev                   # the event loop of the server shell
    libinih-dev                  # INI config file parsing
    libxxhash-dev                # hashing of keys
    libcmocka-dev                # unit-test framework
    clang libclang-rt-14-dev     # sanitizer build and libFuzzer
    redis-server redis-tools     # redis-cli, redis-benchmark, and Redis as a reference
    python3-pytest python3-redis # integration tests with a real Python client
    nodejs npm                   # integration tests with ioredis and node-redis
)

missing=()
for p in "${packages[@]}"; do
    case "$p" in \#*) continue ;; esac
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
        missing+=("$p")
done
# Node.js may come from elsewhere than Debian (e.g. a preinstalled node/npm): accept it.
if command -v node >/dev/null && command -v npm >/dev/null; then
    missing=("${missing[@]/nodejs/}")
    missing=("${missing[@]/npm/}")
fi
want=()
for p in "${missing[@]}"; do [ -n "$p" ] && want+=("$p"); done

if [ ${#want[@]} -gt 0 ]; then
    echo "install-deps: installing ${want[*]}"
    sudo_cmd=""
    [ "$(id -u)" -ne 0 ] && sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends \
        "${want[@]}" >/dev/null
fi

if [ ! -d tests/integration/node/node_modules ] && [ -f tests/integration/node/package.json ]; then
    echo "install-deps: installing the Node clients (npm ci)"
    (cd tests/integration/node && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "install-deps: everything needed is installed"
