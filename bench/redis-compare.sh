#!/usr/bin/env bash
# capkv against redis-server, side by side (see redis-compare.py for what is measured).
exec /usr/bin/python3 "$(dirname "$0")/redis-compare.py" "$@"
