"""Durability: acknowledged writes survive kill -9, clean restarts, torn tails, snapshots
and a full disk; damage in the middle of the log stops the node with file and offset.

WAL layout (docs/formats.md): 32-byte segment header, then records starting at multiples
of 8: crc32c(4) payload_bytes(4) lsn(8) payload, zero padding; 16 zero bytes end the data.
"""

import glob
import hashlib
import os
import random
import signal
import struct
import subprocess
import threading
import time

import pytest
import redis

from conftest import poll, wait_port

SEGMENT_HEADER_BYTES = 32
RECORD_HEADER_BYTES = 16


def wal_segments(data_dir):
    return sorted(glob.glob(os.path.join(data_dir, "local-wal-*.log")))


def wal_records(path):
    """[(offset, payload_bytes, lsn)] of the records of one segment, up to the end marker."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:8] == b"CAPKVWAL", path
    records, pos = [], SEGMENT_HEADER_BYTES
    while pos + RECORD_HEADER_BYTES <= len(data):
        crc, n, lsn = struct.unpack_from("<IIQ", data, pos)
        if crc == 0 and n == 0 and lsn == 0:
            break
        records.append((pos, n, lsn))
        pos += (RECORD_HEADER_BYTES + n + 7) & ~7
    return records


def data_end(path):
    records = wal_records(path)
    if not records:
        return SEGMENT_HEADER_BYTES
    off, n, _ = records[-1]
    return (off + RECORD_HEADER_BYTES + n + 7) & ~7


# ---- (a) kill -9 under load -------------------------------------------------------------

class Acked:
    """Writes the server acknowledged, per writer thread (each thread owns its keys)."""

    def __init__(self):
        self.strings = {}   # key -> value
        self.counters = {}  # key -> last acknowledged value
        self.members = {}   # set key -> set of members
        self.fields = {}    # hash key -> {field: value}
        self.lock = threading.Lock()


def writer(port, tid, round_no, acked, stop):
    c = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5, socket_connect_timeout=2)
    i = 0
    try:
        while not stop.is_set():
            tag = f"{tid}:{round_no}:{i}"
            op = i % 4
            if op == 0:
                c.set(f"s:{tag}", f"v:{tag}")
                with acked.lock:
                    acked.strings[f"s:{tag}"] = f"v:{tag}"
            elif op == 1:
                value = c.incr(f"c:{tid}")
                with acked.lock:
                    acked.counters[f"c:{tid}"] = value
            elif op == 2:
                c.sadd(f"set:{tid}", tag)
                with acked.lock:
                    acked.members.setdefault(f"set:{tid}", set()).add(tag)
            else:
                c.hset(f"h:{tid}", f"f:{tag}", f"v:{tag}")
                with acked.lock:
                    acked.fields.setdefault(f"h:{tid}", {})[f"f:{tag}"] = f"v:{tag}"
            i += 1
    except (redis.ConnectionError, redis.TimeoutError, ConnectionError, OSError):
        pass  # the server was killed
    finally:
        c.close()


def check_acked(node, acked):
    c = node.client(decode_responses=True, socket_timeout=30)
    keys = list(acked.strings)
    for start in range(0, len(keys), 1000):
        chunk = keys[start:start + 1000]
        values = c.mget(chunk)
        lost = [(k, v) for k, v in zip(chunk, values) if v != acked.strings[k]]
        assert not lost, f"acknowledged SETs lost or wrong: {lost[:5]}\n{node.log()}"
    for key, value in acked.counters.items():
        got = int(c.get(key) or 0)
        assert got >= value, f"{key}: {got} < acknowledged {value}\n{node.log()}"
    for key, members in acked.members.items():
        missing = members - c.smembers(key)
        assert not missing, f"{key}: acknowledged members lost: {sorted(missing)[:5]}"
    for key, fields in acked.fields.items():
        got = c.hgetall(key)
        lost = [f for f, v in fields.items() if got.get(f) != v]
        assert not lost, f"{key}: acknowledged fields lost: {lost[:5]}"
    c.close()


@pytest.mark.timeout(90)
def test_acknowledged_writes_survive_kill_9_at_20_points(make_node):
    seed = 20240601
    print(f"seed {seed}")
    rng = random.Random(seed)
    # Small segments and snapshot threshold so kills also land in rotations and snapshots.
    node = make_node(fsync="always", wal_segment_bytes="64kb", snapshot_log_bytes="256kb")
    acked = Acked()
    deadline = time.monotonic() + 60
    rounds = 0
    while rounds < 24 and time.monotonic() < deadline:
        stop = threading.Event()
        threads = [threading.Thread(target=writer, args=(node.port, t, rounds, acked, stop))
                   for t in range(3)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.05, 0.3))
        node.kill9()
        stop.set()
        for t in threads:
            t.join(10)
            assert not t.is_alive()
        node.start()
        check_acked(node, acked)
        rounds += 1
    print(f"{rounds} kills, {len(acked.strings)} acknowledged SETs")
    assert rounds >= 20, f"only {rounds} kill points in 60 s"
    assert len(acked.strings) > 100, "the load did too little to test anything"
    node.stop()
    node.start()
    check_acked(node, acked)


# ---- (b) clean restart ------------------------------------------------------------------

def test_clean_restart_keeps_data_and_expiries(make_node):
    node = make_node()
    c = node.client(decode_responses=True)
    c.set("plain", "v")
    c.set("long", "v", ex=1000)
    c.set("soon", "v", px=1500)
    c.set("gone", "v", px=1)
    c.incrby("ctr", 42)
    c.sadd("set", "a", "b")
    c.hset("h", mapping={"f": "v", "g": "w"})
    c.set("persisted", "v", ex=100)
    c.persist("persisted")
    c.set("deleted", "v")
    c.delete("deleted")
    c.close()
    node.restart()
    c = node.client(decode_responses=True)
    assert c.get("plain") == "v" and c.ttl("plain") == -1
    assert 990 <= c.ttl("long") <= 1000
    assert c.get("gone") is None
    assert c.get("ctr") == "42"
    assert c.smembers("set") == {"a", "b"}
    assert c.hgetall("h") == {"f": "v", "g": "w"}
    assert c.ttl("persisted") == -1
    assert c.exists("deleted") == 0
    assert poll(lambda: c.exists("soon") == 0, 5), "expiry was lost across the restart"
    assert c.dbsize() == 6
    c.close()


# ---- (c) torn tail ----------------------------------------------------------------------

def write_keys(node, count, prefix="k"):
    c = node.client(decode_responses=True)
    for i in range(count):
        c.set(f"{prefix}{i}", f"value-{i}")
    c.close()


@pytest.mark.parametrize("damage", ["garbage_after_end", "truncated_last_record"])
def test_torn_tail_is_cut_with_a_warning(make_node, damage):
    node = make_node()
    write_keys(node, 100)
    node.stop()
    # The log may have moved to a zero-filled segment part way (docs/formats.md): count
    # the records of every segment, damage the newest's last.
    assert sum(len(wal_records(p)) for p in wal_segments(node.dir)) >= 100
    path = wal_segments(node.dir)[-1]
    records = wal_records(path)
    assert records, path
    off, n, _ = records[-1]
    with open(path, "r+b") as f:
        if damage == "garbage_after_end":
            f.seek(data_end(path))
            f.write(b"\xde\xad\xbe\xef" * 37)
        else:
            # Keep the header and half the payload, zero the rest: a write torn midway.
            keep = off + RECORD_HEADER_BYTES + n // 2
            f.seek(keep)
            f.write(b"\0" * (data_end(path) - keep))
    node.start()
    log = node.full_log()
    warning = [ln for ln in log.splitlines() if os.path.basename(path) in ln]
    assert warning, f"no log line names {os.path.basename(path)}:\n{log}"
    c = node.client(decode_responses=True)
    last = 99 if damage == "garbage_after_end" else 98
    assert c.mget([f"k{i}" for i in range(last + 1)]) == [f"value-{i}" for i in range(last + 1)]
    if damage == "truncated_last_record":
        assert c.get("k99") is None, "a torn record was applied"
    # The node appends after the cut, and the result survives another restart.
    c.set("after", "cut")
    c.close()
    node.restart()
    c = node.client(decode_responses=True)
    assert c.get("after") == "cut"
    assert c.get("k0") == "value-0"
    c.close()


# ---- (d) corruption in the middle -------------------------------------------------------

def test_corrupt_record_in_the_middle_refuses_to_start(make_node):
    node = make_node()
    write_keys(node, 50)
    node.stop()
    # A record with valid ones after it, in whichever segment holds the most (the log may
    # have moved to a zero-filled segment part way, docs/formats.md).
    path = max(wal_segments(node.dir), key=lambda p: len(wal_records(p)))
    records = wal_records(path)
    assert len(records) > 4, records
    off, n, _ = records[3]
    with open(path, "r+b") as f:
        f.seek(off + RECORD_HEADER_BYTES + n // 2)
        byte = f.read(1)
        f.seek(off + RECORD_HEADER_BYTES + n // 2)
        f.write(bytes([byte[0] ^ 0x40]))
    before = {p: hashlib.sha256(open(p, "rb").read()).hexdigest() for p in wal_segments(node.dir)}
    proc = node.spawn()
    try:
        rc = proc.wait(15)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"capkv started on a corrupt log\n{node.log()}")
    assert rc != 0
    log = node.log()
    assert os.path.basename(path) in log, log
    assert f"offset {off}" in log, f"expected the record's offset {off}:\n{log}"
    after = {p: hashlib.sha256(open(p, "rb").read()).hexdigest() for p in wal_segments(node.dir)}
    assert before == after, "recovery changed files while refusing to start"


def test_corrupt_older_segment_refuses_to_start(make_node):
    node = make_node(wal_segment_bytes="64kb")
    c = node.client()
    for i in range(300):
        c.set(f"k{i}", b"x" * 500)
    c.close()
    node.stop()
    segments = wal_segments(node.dir)
    assert len(segments) >= 2
    oldest = segments[0]
    off, n, _ = wal_records(oldest)[-1]  # even the last record: the segment is not the newest
    with open(oldest, "r+b") as f:
        f.seek(off + RECORD_HEADER_BYTES)
        b = f.read(1)
        f.seek(off + RECORD_HEADER_BYTES)
        f.write(bytes([b[0] ^ 1]))
    proc = node.spawn()
    rc = proc.wait(15)
    assert rc != 0
    assert os.path.basename(oldest) in node.log() and f"offset {off}" in node.log(), node.log()


# ---- (e) snapshots ----------------------------------------------------------------------

@pytest.mark.timeout(90)
def test_snapshots_remove_old_segments_and_restore_everything(make_node):
    node = make_node(snapshot_log_bytes="64kb", wal_segment_bytes="64kb")
    c = node.client(decode_responses=True)
    expected = {}
    for i in range(3000):
        key, value = f"key:{i % 1500}", f"{i}:" + "p" * 150
        c.set(key, value)
        expected[key] = value
        if i % 10 == 0:
            c.hset("hash", f"f{i}", i)
            c.sadd("set", i)
    c.delete("key:7")
    del expected["key:7"]

    def settled():
        snaps = glob.glob(os.path.join(node.dir, "local-snap-*.snap"))
        return snaps and len(wal_segments(node.dir)) <= 3

    assert poll(settled, 10), (os.listdir(node.dir), node.log())
    # At least 3000 * ~180 bytes went through the log: most segments must be gone.
    assert len(glob.glob(os.path.join(node.dir, "local-snap-*.snap"))) == 1
    assert not [p for p in glob.glob(os.path.join(node.dir, "*.tmp"))
                if not p.endswith("spare-segment.tmp")]
    snap_before = glob.glob(os.path.join(node.dir, "local-snap-*.snap"))[0]
    c.set("after-snap", "x")

    def saved():  # an automatic snapshot may be running: SAVE refuses then, as Redis does
        try:
            return c.execute_command("SAVE") is True
        except redis.ResponseError as e:
            assert "already in progress" in str(e), e
            return False

    assert poll(saved, 10, interval=0.05)
    snap_after = glob.glob(os.path.join(node.dir, "local-snap-*.snap"))
    assert len(snap_after) == 1 and snap_after[0] != snap_before
    c.set("after-save", "y")
    c.close()
    node.restart()
    c = node.client(decode_responses=True)
    keys = sorted(expected)
    assert c.mget(keys) == [expected[k] for k in keys]
    assert c.get("after-snap") == "x" and c.get("after-save") == "y"
    assert c.hlen("hash") == 300 and c.scard("set") == 300
    assert c.dbsize() == len(expected) + 4
    c.close()
    # And after a kill -9 too.
    node.kill9()
    node.start()
    c = node.client(decode_responses=True)
    assert c.dbsize() == len(expected) + 4
    c.close()


# ---- (f) full disk ----------------------------------------------------------------------

@pytest.fixture
def small_tmpfs(tmp_path):
    mnt = tmp_path / "tmpfs"
    mnt.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mnt)],
                         capture_output=True, text=True)
    assert res.returncode == 0, (
        "the disk-full test needs `mount -t tmpfs` (run as root in a sandbox that allows "
        f"mounts): {res.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


@pytest.mark.timeout(90)
def test_disk_full_refuses_writes_keeps_reads_and_recovers(make_node, small_tmpfs):
    ballast = small_tmpfs / "ballast"
    ballast.write_bytes(b"\1" * (3 * 1024 * 1024))
    data_dir = small_tmpfs / "data"
    node = make_node("full", start=False, wal_segment_bytes="256kb")
    node.dir = str(data_dir)
    os.makedirs(node.dir)
    node.start()
    c = node.client(decode_responses=True)
    value = "z" * 8192
    acked, error = [], None
    for i in range(2000):
        try:
            c.set(f"k{i}", value)
            acked.append(f"k{i}")
        except redis.ResponseError as e:
            error = str(e)
            break
    assert error is not None, "8 MiB of tmpfs never filled up"
    assert "disk full" in error, error
    assert len(acked) > 100
    # Reads keep working, nothing acknowledged is lost, writes keep failing.
    assert c.mget(acked) == [value] * len(acked)
    # (A small write may still fit in the current segment: the disk is found full only
    # when a new segment is needed, so the refused size is refused again.)
    with pytest.raises(redis.ResponseError) as e:
        c.set("more", value)
    assert "disk full" in str(e.value)
    assert c.exists("more") == 0
    assert c.ping() is True
    # Free space: writes go on.
    ballast.unlink()
    assert poll(lambda: try_set(c, "more", value), 10), "writes did not resume after freeing space"
    assert c.get("more") == value
    c.close()
    node.restart()
    c = node.client(decode_responses=True)
    assert c.mget(acked) == [value] * len(acked)
    assert c.get("more") == value
    c.close()
    node.stop()


def try_set(c, key, value):
    try:
        return c.set(key, value)
    except redis.ResponseError as e:
        assert "disk full" in str(e), e
        return False


# ---- process lifecycle and settings -----------------------------------------------------

@pytest.mark.parametrize("fsync", ["everysec", "never"])
def test_clean_restart_with_relaxed_fsync_keeps_data(make_node, fsync):
    node = make_node(fsync=fsync)
    write_keys(node, 200)
    node.restart()  # SIGTERM must flush whatever the fsync policy deferred
    c = node.client(decode_responses=True)
    assert c.mget([f"k{i}" for i in range(200)]) == [f"value-{i}" for i in range(200)]
    c.close()


def test_sigint_stops_cleanly_and_config_file_is_read(make_node, tmp_path):
    node = make_node("cfg", start=False)
    conf = tmp_path / "capkv.ini"
    conf.write_text(f"[node]\nlisten = 127.0.0.1:{node.port}\ndir = {node.dir}\n"
                    "maxclients = 7\nrequirepass = pw\n")
    proc = subprocess.Popen([node.argv()[0], "server", "--config", str(conf)],
                            stdout=open(node.log_path, "ab"), stderr=subprocess.STDOUT)
    node.proc = proc
    assert wait_port(node.port, proc, 15, "capkv"), node.log()
    c = node.client(password="pw", decode_responses=True)
    assert c.config_get("maxclients") == {"maxclients": "7"}
    c.set("k", "v")
    c.close()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(15) == 0, node.log()
    assert glob.glob(os.path.join(node.dir, "local-wal-*.log"))


def test_unfinished_snapshot_files_are_ignored_and_removed(make_node):
    node = make_node()
    write_keys(node, 20)
    c = node.client()
    assert c.execute_command("SAVE") is True
    c.close()
    node.stop()
    # A crash mid-snapshot leaves a .tmp file; a .snap without a trailer was never finished.
    tmp = os.path.join(node.dir, "local-snap-00000000000000ff.tmp")
    open(tmp, "wb").write(b"CAPKVSNP" + b"\0" * 100)
    node.start()
    assert not os.path.exists(tmp)
    c = node.client(decode_responses=True)
    assert c.mget([f"k{i}" for i in range(20)]) == [f"value-{i}" for i in range(20)]
    c.close()


def test_corrupt_snapshot_refuses_to_start(make_node):
    node = make_node()
    write_keys(node, 50)
    c = node.client()
    assert c.execute_command("SAVE") is True
    c.close()
    node.stop()
    snap = glob.glob(os.path.join(node.dir, "local-snap-*.snap"))[0]
    with open(snap, "r+b") as f:
        f.seek(40)
        b = f.read(1)
        f.seek(40)
        f.write(bytes([b[0] ^ 0xff]))
    proc = node.spawn()
    assert proc.wait(15) != 0, node.log()
    assert os.path.basename(snap) in node.log() and "offset" in node.log(), node.log()
