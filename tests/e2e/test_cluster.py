"""Scaling out on Redis Streams (QUEUE=redis://): several daemons on this
machine stand for several machines sharing the input and output trees.
Each test starts its own redis-server on a loopback port it picks, with AOF
on, and stops it.  Every node has its own folder (config, log, control
socket); they share `in/` and `out/`."""

import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest import (OUTCOMES, SCALE, TIMEOUT, Daemon, BIN, clean_env,
                      jpeg_bytes, make_jpeg, parse_log, run_tw, write_file)

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"

pytestmark = pytest.mark.skipif(not os.access(REDIS, os.X_OK),
                                reason="redis-server is not installed "
                                "(tests/install-deps.sh installs it)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Redis:
    """A redis-server of the test's own: loopback, AOF on (fsync every
    second, as deployed), data in its own folder so a restart finds it."""

    def __init__(self, root, port=None):
        self.dir = Path(root) / "redis"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.proc = None

    @property
    def url(self):
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self):
        self.proc = subprocess.Popen(
            [REDIS, "--port", str(self.port), "--bind", "127.0.0.1",
             "--dir", str(self.dir), "--appendonly", "yes",
             "--appendfsync", "everysec", "--save", "",
             "--daemonize", "no", "--logfile", str(self.dir / "log")],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 10
        while True:
            try:
                if self.cli("PING") == "PONG":
                    return self
            except (OSError, subprocess.SubprocessError):
                pass
            assert self.proc.poll() is None, \
                "redis-server exited: " + (self.dir / "log").read_text()
            assert time.monotonic() < deadline, "redis-server never answered"
            time.sleep(0.05)

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(10)

    def cli(self, *args):
        """One command through a plain socket (RESP); the reply as str,
        int, list or None."""
        with socket.create_connection(("127.0.0.1", self.port),
                                      timeout=5) as s:
            req = b"*%d\r\n" % len(args)
            for a in args:
                a = a if isinstance(a, bytes) else str(a).encode()
                req += b"$%d\r\n%s\r\n" % (len(a), a)
            s.sendall(req)
            f = s.makefile("rb")
            return _resp(f)


def _resp(f):
    line = f.readline()
    if not line:
        raise OSError("connection closed")
    t, rest = line[:1], line[1:-2]
    if t == b"+":
        return rest.decode()
    if t == b"-":
        raise RuntimeError(rest.decode())
    if t == b":":
        return int(rest)
    if t == b"$":
        n = int(rest)
        if n < 0:
            return None
        data = f.read(n + 2)[:-2]
        return data.decode(errors="surrogateescape")
    if t == b"*":
        n = int(rest)
        return None if n < 0 else [_resp(f) for _ in range(n)]
    raise OSError(f"bad reply {line!r}")


@pytest.fixture
def redis(tmp_path):
    r = Redis(tmp_path).start()
    yield r
    r.kill()


class Cluster:
    """Nodes sharing tmp/in and tmp/out, each in tmp/<name>/."""

    def __init__(self, root, factory):
        self.root = Path(root)
        self.input = self.root / "in"
        self.output = self.root / "out"
        self.input.mkdir(exist_ok=True)
        self.factory = factory
        self.nodes = {}

    def node(self, name, role, queue, workers=1, args=(), hooks=False,
             ini=None, start=True):
        (self.root / name).mkdir(exist_ok=True)
        d = Daemon(self.root / name, input_dir=self.input,
                   output_dir=self.output, workers=workers, hooks=hooks,
                   ini=ini, args=["--queue", queue, "--role", role,
                                  "--redis-visibility-s", "2",
                                  "--stats-interval-s", "0", *args])
        self.factory.all.append(d)
        self.nodes[name] = d
        if start:
            d.start(ready=False)
            wait_redis_up(d)
        return d

    def events(self):
        out = []
        for name, d in self.nodes.items():
            for e in parse_log(d.log):
                e["_node"] = name
                out.append(e)
        return out

    def outcomes(self):
        return [e for e in self.events() if e["event"] in OUTCOMES]

    def wait_outcomes(self, files, timeout=None, exact=True):
        """Until every file has an outcome line in some node's log;
        returns {file: [lines]}."""
        files = set(files)
        deadline = time.monotonic() + (timeout or TIMEOUT)
        while True:
            got = {}
            for e in self.outcomes():
                if e.get("file") in files:
                    got.setdefault(e["file"], []).append(e)
            if len(got) == len(files):
                return got
            for name, d in self.nodes.items():
                if not d.stopped and not d.alive():
                    raise AssertionError(f"node {name} exited\n"
                                         + d.describe())
            if time.monotonic() > deadline:
                missing = sorted(files - set(got))
                raise AssertionError(
                    f"{len(missing)} of {len(files)} files have no outcome "
                    f"after {timeout or TIMEOUT:.0f}s, e.g. {missing[:5]}\n"
                    + "\n".join(d.describe(15) for d in self.nodes.values()))
            time.sleep(0.1)


@pytest.fixture
def cluster(tmp_path, daemons):
    return Cluster(tmp_path, daemons)


def wait_redis_up(d, count=1):
    d.wait_event("redis_up", count=count)


def drop_many(c, names, data, sub="batch"):
    """All files written in a staging folder, then renamed in one by one
    (an IN_MOVED_TO each, as a fast uploader makes)."""
    stage = c.root / "stage"
    stage.mkdir(exist_ok=True)
    (c.input / sub).mkdir(exist_ok=True)
    for n in names:
        write_file(stage / n, data)
    for n in names:
        os.rename(stage / n, c.input / sub / n)
    return [f"{sub}/{n}" for n in names]


def assert_exactly_one_done(c, files):
    counts = Counter(e["file"] for e in c.outcomes() if e["event"] == "done")
    others = [e for e in c.outcomes() if e["event"] != "done"
              and e.get("file") in set(files)]
    assert not others, f"files that did not end done: {others[:5]}"
    twice = {f: n for f, n in counts.items() if n > 1}
    assert not twice, f"files made twice, visibly: {list(twice.items())[:5]}"
    missing = [f for f in files if counts[f] == 0]
    assert not missing, f"no done line for {missing[:5]}"
    for f in files[:20]:
        stem = f.rsplit(".", 1)[0]
        assert (c.output / f"{stem}_thumb.jpg").exists(), f


# --------------------------------------------------------------------------


def test_two_workers_one_watcher_1000_files(cluster, redis):
    c = cluster
    w = c.node("watcher", "watcher", redis.url)
    a = c.node("worker-a", "worker", redis.url)
    b = c.node("worker-b", "worker", redis.url)
    files = drop_many(c, [f"f{i:04d}.jpg" for i in range(1000)],
                      jpeg_bytes(96, 64))
    c.wait_outcomes(files, timeout=TIMEOUT + 120 * SCALE)
    time.sleep(1.0)
    assert_exactly_one_done(c, files)
    by_node = Counter(e["_node"] for e in c.outcomes())
    # the watcher queues, the workers make; both workers take a share
    assert by_node["watcher"] == 0, by_node
    assert by_node["worker-a"] >= 100 and by_node["worker-b"] >= 100, by_node
    # every entry is acknowledged and deleted: the stream is empty
    deadline = time.monotonic() + 10
    while redis.cli("XLEN", "thumbwatch:jobs") != 0:
        assert time.monotonic() < deadline, redis.cli("XLEN",
                                                      "thumbwatch:jobs")
        time.sleep(0.1)
    assert redis.cli("XLEN", "thumbwatch:dead") == 0
    # the watcher's seen keys (24 h while queued) expire 5 s after the
    # file's outcome
    keys = redis.cli("KEYS", "thumbwatch:seen:*")
    for k in keys[:50]:
        assert redis.cli("PTTL", k) <= 5000, k
    # `status` shows the shared queue
    r = run_tw(["status", "--json", "--runtime-dir", w.root / "run"],
               cwd=w.root)
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    q = st["redis"]
    assert q["up"] is True and q["role"] == "watcher", q
    assert q["enqueued"] == 1000, q
    r = run_tw(["status", "--json", "--runtime-dir", a.root / "run"],
               cwd=a.root)
    q = json.loads(r.stdout)["redis"]
    assert q["role"] == "worker" and q["acked"] >= 100, q
    assert q["consumers"] >= 2 and q["dead_letters"] == 0, q
    assert "pending" in q and "stream_length" in q, q
    r = run_tw(["status", "--runtime-dir", a.root / "run"], cwd=a.root)
    assert b"stream" in r.stdout and b"dead letters" in r.stdout, r.stdout


def test_kill9_worker_node_is_taken_over(cluster, redis):
    c = cluster
    c.node("watcher", "watcher", redis.url)
    a = c.node("worker-a", "worker", redis.url)
    files = drop_many(c, [f"k{i:03d}.jpg" for i in range(80)],
                      jpeg_bytes(2400, 1800))
    # a has taken a batch and made a few; it dies holding the rest
    a.wait_event("done", count=3, timeout=TIMEOUT * 2)
    pending = redis.cli("XPENDING", "thumbwatch:jobs", "thumbwatch")
    assert pending[0] > 0, pending
    os.killpg(a.pid, signal.SIGKILL)
    a.proc.wait(10)
    a.stopped = True
    b = c.node("worker-b", "worker", redis.url)
    c.wait_outcomes(files, timeout=TIMEOUT + 200 * SCALE)
    time.sleep(1.0)
    assert_exactly_one_done(c, files)
    # what a held was reclaimed by b after the visibility timeout
    assert b.by_event("reclaimed"), b.describe()
    assert redis.cli("XPENDING", "thumbwatch:jobs", "thumbwatch")[0] == 0


def test_poison_image_is_dead_lettered(cluster, redis):
    c = cluster
    c.node("watcher", "watcher", redis.url)
    a = c.node("worker-a", "worker", redis.url, hooks=True)
    names = ["p1.jpg", "boom__crash__.jpg", "p2.jpg", "p3.jpg"]
    files = drop_many(c, names, jpeg_bytes(320, 240))
    got = c.wait_outcomes(files, timeout=TIMEOUT * 2)
    poison = "batch/boom__crash__.jpg"
    assert [e["event"] for e in got[poison]] == ["failed"], got[poison]
    assert "poison" in got[poison][0]["error"], got[poison]
    dead = redis.cli("XRANGE", "thumbwatch:dead", "-", "+")
    assert len(dead) == 1, dead
    fields = dict(zip(dead[0][1][::2], dead[0][1][1::2]))
    assert fields["path"] == poison and "poison" in fields["error"], fields
    # the stream keeps moving
    later = drop_many(c, ["after.jpg"], jpeg_bytes(320, 240), sub="later")
    c.wait_outcomes(later)
    assert_exactly_one_done(c, [f for f in files + later if f != poison])
    assert redis.cli("XLEN", "thumbwatch:jobs") == 0


def test_entry_delivered_too_often_goes_to_dead_letters(cluster, redis):
    """Nodes that die on an entry (kill -9, OOM) never log it; after
    REDIS_MAX_DELIVERIES deliveries it is dead-lettered with one line."""
    c = cluster
    make_jpeg(c.input / "ghost.jpg", 64, 48)
    redis.cli("XGROUP", "CREATE", "thumbwatch:jobs", "thumbwatch", "0",
              "MKSTREAM")
    st = os.stat(c.input / "ghost.jpg")
    eid = redis.cli("XADD", "thumbwatch:jobs", "*", "path", "ghost.jpg",
                    "size", st.st_size, "mtime_ns", st.st_mtime_ns,
                    "fp", "0" * 16, "force", "0", "by", "test")
    # two nodes took it and died
    redis.cli("XREADGROUP", "GROUP", "thumbwatch", "dead-node-1", "COUNT",
              "1", "STREAMS", "thumbwatch:jobs", ">")
    redis.cli("XCLAIM", "thumbwatch:jobs", "thumbwatch", "dead-node-2", "0",
              eid)
    time.sleep(2.1)
    a = c.node("worker-a", "worker", redis.url,
               args=["--redis-max-deliveries", "2"])
    e = a.wait_outcome("ghost.jpg", timeout=TIMEOUT)
    assert e["event"] == "failed" and "dead letter" in e["error"], e
    assert "delivered" in e["error"], e
    time.sleep(2 * SCALE)
    assert len(a.outcomes("ghost.jpg")) == 1, a.outcomes("ghost.jpg")
    dead = redis.cli("XRANGE", "thumbwatch:dead", "-", "+")
    assert len(dead) == 1 and eid in dead[0][1], dead
    assert redis.cli("XLEN", "thumbwatch:jobs") == 0
    assert not (c.output / "ghost_thumb.jpg").exists()


def test_long_job_is_kept_alive_not_stolen(cluster, redis):
    """A job that takes longer than the visibility timeout stays with the
    busy node that renews it; the idle node does not take it over."""
    c = cluster
    c.node("watcher", "watcher", redis.url)
    a = c.node("worker-a", "worker", redis.url, hooks=True,
               args=["--redis-visibility-s", "1"])
    files = drop_many(c, ["long__slow__.jpg"], jpeg_bytes(320, 240))
    # a has it (pending), then b arrives with nothing to do
    deadline = time.monotonic() + TIMEOUT
    while redis.cli("XPENDING", "thumbwatch:jobs", "thumbwatch")[0] == 0:
        assert time.monotonic() < deadline, "nobody took the job"
        time.sleep(0.05)
    b = c.node("worker-b", "worker", redis.url, hooks=True,
               args=["--redis-visibility-s", "1"])
    got = c.wait_outcomes(files, timeout=TIMEOUT)
    time.sleep(2.0)
    e = got[files[0]]
    assert [x["event"] for x in e] == ["done"], e
    assert e[0]["_node"] == "worker-a", e
    assert not b.by_event("reclaimed"), b.by_event("reclaimed")
    assert not b.by_event("duplicate"), b.by_event("duplicate")
    assert redis.cli("XLEN", "thumbwatch:jobs") == 0
    del a


def test_rewritten_while_a_worker_node_has_it(cluster, redis):
    """A new version queued while the worker node is busy with the old one
    is made after it, by that node (its one outcome ended both entries)."""
    c = cluster
    c.node("watcher", "watcher", redis.url)
    a = c.node("worker-a", "worker", redis.url, hooks=True)
    f = drop_many(c, ["v__slow__.jpg"], jpeg_bytes(320, 240))[0]
    deadline = time.monotonic() + TIMEOUT
    while redis.cli("XPENDING", "thumbwatch:jobs", "thumbwatch")[0] == 0:
        assert time.monotonic() < deadline, "nobody took the job"
        time.sleep(0.05)
    time.sleep(0.5)             # the worker has read the old bytes
    drop_many(c, ["v__slow__.jpg"], jpeg_bytes(640, 480))
    # made again after the first pass, from the new bytes.  The first
    # pass read the old bytes (done), or found the name holding another
    # file than the one inspected (the hook sleeps before the open) and
    # read nothing (skipped): the worker never trusts checks made on
    # another file.
    done = a.wait_event("done", count=1, timeout=TIMEOUT)
    deadline = time.monotonic() + TIMEOUT
    while True:
        mine = [e for e in c.outcomes() if e["file"] == f]
        if len(mine) >= 2 and mine[-1]["event"] == "done":
            break
        assert time.monotonic() < deadline, mine
        time.sleep(0.1)
    assert mine[-1]["width"] == 640, mine
    assert mine[0]["event"] == "done" or (
        mine[0]["event"] == "skipped" and "replaced" in mine[0]["reason"]), \
        mine
    time.sleep(1.0)
    assert len([e for e in c.outcomes() if e["file"] == f]) == 2
    assert redis.cli("XLEN", "thumbwatch:jobs") == 0


def test_metrics_show_the_stream(cluster, redis):
    c = cluster
    port = free_port()
    a = c.node("all", "all", redis.url,
               args=["--http-listen", f"127.0.0.1:{port}"])
    files = drop_many(c, ["m.jpg"], jpeg_bytes(320, 240))
    c.wait_outcomes(files)
    deadline = time.monotonic() + 10
    while True:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"GET /metrics HTTP/1.0\r\nHost: x\r\n\r\n")
            body = b""
            while chunk := s.recv(65536):
                body += chunk
        text = body.decode()
        # figures are refreshed on the queue's timer
        if "thumbwatch_stream_consumers 1\n" in text and \
                "thumbwatch_stream_length 0\n" in text:
            break
        assert time.monotonic() < deadline, text
        time.sleep(0.2)
    assert "thumbwatch_redis_up 1" in text, text
    assert "thumbwatch_stream_length 0" in text, text
    assert "thumbwatch_stream_pending 0" in text, text
    assert "thumbwatch_dead_letters 0" in text, text
    del a


def test_redis_killed_and_restarted_mid_run(cluster, redis):
    c = cluster
    w = c.node("watcher", "watcher", redis.url)
    a = c.node("worker-a", "worker", redis.url)
    first = drop_many(c, [f"r{i:03d}.jpg" for i in range(150)],
                      jpeg_bytes(1600, 1200))
    a.wait_event("done", count=10, timeout=TIMEOUT * 2)
    redis.kill()
    w.wait_event("redis_down")
    a.wait_event("redis_down")
    # files land while Redis is away
    second = drop_many(c, [f"s{i:03d}.jpg" for i in range(50)],
                       jpeg_bytes(320, 240), sub="while-down")
    time.sleep(1.5)
    # no busy loop while it is away: little CPU
    cpu0 = _cpu_s(w.pid) + _cpu_s(a.pid)
    time.sleep(2.0)
    assert _cpu_s(w.pid) + _cpu_s(a.pid) - cpu0 < 0.5
    redis.start()
    wait_redis_up(w, count=2)
    wait_redis_up(a, count=2)
    c.wait_outcomes(first + second, timeout=TIMEOUT + 120 * SCALE)
    time.sleep(2.0)
    counts = Counter(e["file"] for e in c.outcomes() if e["event"] == "done")
    missing = [f for f in first + second if counts[f] == 0]
    assert not missing, missing[:5]
    down = w.by_event("redis_down")
    assert f"127.0.0.1:{redis.port}" in down[0]["message"], down[0]


def _cpu_s(pid):
    with open(f"/proc/{pid}/stat", "rb") as f:
        st = f.read()
    fields = st[st.rfind(b")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_two_watchers_one_tree(cluster, redis):
    c = cluster
    w1 = c.node("watcher-1", "watcher", redis.url)
    w2 = c.node("watcher-2", "watcher", redis.url)
    c.node("worker-a", "worker", redis.url, workers=2)
    files = drop_many(c, [f"w{i:03d}.jpg" for i in range(200)],
                      jpeg_bytes(96, 64))
    c.wait_outcomes(files, timeout=TIMEOUT + 60 * SCALE)
    time.sleep(1.5)
    assert_exactly_one_done(c, files)
    # both saw every file; each file was added to the stream once
    stats = []
    for w in (w1, w2):
        r = run_tw(["status", "--json", "--runtime-dir", w.root / "run"],
                   cwd=w.root)
        stats.append(json.loads(r.stdout)["redis"])
    # every file was added once; a watcher whose event came after the
    # file was done may add it again (its seen key lingers 5 s), which the
    # worker ends in a debug line
    enq = sum(s["enqueued"] for s in stats)
    assert 200 <= enq <= 210, stats
    assert sum(s["duplicates"] for s in stats) >= 150, stats
    # outcomes a watcher decides alone are logged by one of them
    write_file(c.input / "batch" / "empty.jpg", b"")
    st = os.stat(c.input / "batch" / "w000.jpg")
    write_file(c.input / "batch" / "w000.jpg",
               (c.input / "batch" / "w000.jpg").read_bytes(),
               mtime_ns=st.st_mtime_ns)
    got = c.wait_outcomes(["batch/empty.jpg"])
    e = got["batch/empty.jpg"]
    assert e[0]["event"] == "failed" and "empty" in e[0]["error"], e
    w1.wait_for(lambda ev: [x for x in c.outcomes()
                            if x.get("file") == "batch/w000.jpg"
                            and x["event"] == "skipped"],
                what="the up-to-date line")
    time.sleep(1.5)
    for f, event in (("batch/empty.jpg", "failed"),
                     ("batch/w000.jpg", "skipped")):
        lines = [x for x in c.outcomes() if x.get("file") == f
                 and x["event"] == event]
        assert len(lines) == 1, lines


def test_all_role_node_and_startup_without_redis(cluster, tmp_path):
    """A node started while Redis is down says so, waits without spinning,
    and catches up on what landed meanwhile once Redis answers."""
    c = cluster
    r = Redis(tmp_path)
    d = c.node("solo", "all", r.url, start=False)
    d.start(ready=False)
    e = d.wait_event("redis_down")[0]
    assert f"127.0.0.1:{r.port}" in e["message"] and "refused" in e["message"], e
    files = drop_many(c, [f"a{i}.jpg" for i in range(5)], jpeg_bytes(320, 240))
    time.sleep(1.0)
    assert not d.outcomes(), d.outcomes()
    try:
        r.start()
        wait_redis_up(d)
        c.wait_outcomes(files)
        assert_exactly_one_done(c, files)
    finally:
        d.stop()
        r.kill()


def test_worker_refuses_jobs_of_other_presets(cluster, redis):
    c = cluster
    c.node("watcher", "watcher", redis.url)
    c.node("worker-a", "worker", redis.url,
           ini="[preset big]\nwidth = 800\nheight = 800\n")
    files = drop_many(c, ["x.jpg"], jpeg_bytes(320, 240))
    got = c.wait_outcomes(files)
    e = got["batch/x.jpg"][0]
    assert e["event"] == "failed" and "presets differ" in e["error"], e
    assert e["_node"] == "worker-a"


@pytest.mark.parametrize("args,rc,msg", [
    (["--role", "worker"], 78, b"ROLE: 'worker' needs a Redis QUEUE"),
    (["--queue", "rediss://h:1"], 78, b"TLS"),
    (["--queue", "redis://h:99999"], 78, b"port"),
    (["--queue", "redis://127.0.0.1:1", "--source-action", "delete"], 78,
     b"SOURCE_ACTION"),
])
def test_queue_config_errors(tmp_path, args, rc, msg):
    r = run_tw(["check-config", "--env-file", "/dev/null", *args],
               cwd=tmp_path)
    assert r.returncode == rc, (r.returncode, r.stderr)
    assert msg in r.stderr, r.stderr


def test_once_refuses_a_redis_queue(tmp_path):
    (tmp_path / "in").mkdir()
    r = run_tw(["once", "--env-file", "/dev/null", "--input-dir",
                tmp_path / "in", "--output-dir", tmp_path / "out",
                "--log-file", tmp_path / "tw.log", "--queue",
                "redis://127.0.0.1:1"], cwd=tmp_path)
    assert r.returncode == 64, (r.returncode, r.stderr)
    assert b"once" in r.stderr and b"local queue" in r.stderr, r.stderr


def test_bad_queue_url_error_hides_its_password(tmp_path):
    r = run_tw(["check-config", "--env-file", "/dev/null", "--queue",
                "rediss://:hunter2@127.0.0.1:6390/3"], cwd=tmp_path)
    assert r.returncode == 78, r.stderr
    assert b"QUEUE: 'rediss://(hidden)@127.0.0.1:6390/3'" in r.stderr, \
        r.stderr
    assert b"hunter2" not in r.stderr, r.stderr


def test_check_config_hides_the_redis_password(tmp_path):
    r = run_tw(["check-config", "--env-file", "/dev/null", "--queue",
                "redis://:hunter2@127.0.0.1:6390/3",
                "--redis-password", "s3cret"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert b"hunter2" not in r.stdout and b"s3cret" not in r.stdout
    assert b"QUEUE = redis://:(set)@127.0.0.1:6390/3" in r.stdout, r.stdout
