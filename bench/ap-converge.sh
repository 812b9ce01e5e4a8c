#!/usr/bin/env bash
# How fast AP replicas converge after a partition heals (see ap-converge.py).
exec /usr/bin/python3 "$(dirname "$0")/ap-converge.py" "$@"
