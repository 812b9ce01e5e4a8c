#!/usr/bin/env bash
# A 3-node capkv cluster against a Redis primary with two replicas (see cluster-redis-compare.py).
exec /usr/bin/python3 "$(dirname "$0")/cluster-redis-compare.py" "$@"
