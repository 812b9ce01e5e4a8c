#!/usr/bin/env bash
# AP keyspaces on 3 capkv nodes against a Redis primary with two replicas (see ap-redis-compare.py).
exec /usr/bin/python3 "$(dirname "$0")/ap-redis-compare.py" "$@"
