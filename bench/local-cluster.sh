# Sourced by the bench scripts that run a fresh local 3-node cluster: with capkv, load,
# dir, port and logs set, cluster_start starts it (endpoints: its client addresses) and
# stops it at exit, keeping its nodes' logs in $logs when set (--logs DIR).
cluster_finish() {
    "$capkv" cluster down --dir "$dir" >/dev/null 2>&1 || true
    if [ -n "$logs" ]; then
        mkdir -p "$logs"
        for d in "$dir"/node-*; do cp "$d/node.log" "$logs/$(basename "$d").log" 2>/dev/null || true; done
    fi
    rm -rf "$dir"
}

cluster_start() { # name (for messages)
    trap cluster_finish EXIT
    [ -x "$capkv" ] && [ -x "$load" ] || { echo "$1: build capkv and the loadgen first"; exit 1; }
    "$capkv" cluster up --nodes 3 --base-port "$port" --dir "$dir" >/dev/null
    endpoints="127.0.0.1:$port,127.0.0.1:$((port + 1)),127.0.0.1:$((port + 2))"
}
