"""End-to-end test helpers for thumbwatch.

Every test starts the real binary (THUMBWATCH_BIN, else build/thumbwatch) in
its own temporary folder, with cwd there, an explicit --config and an
explicit (empty) --env-file, so the repo's own config/.env never leak in.

The Daemon helper reads the JSON Lines log and checks every line on every
read: it must be valid UTF-8 JSON, an object, with ts (RFC 3339 UTC with
milliseconds and a trailing Z), level (debug|info|warn|error) and event.
So every test that waits on the log also checks the log format.
"""

import atexit
import datetime
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BIN = os.environ.get("THUMBWATCH_BIN") or str(REPO / "build" / "thumbwatch")
SAMPLES = REPO / "samples"

# Sanitizer builds are several times slower: stretch every timeout.
SCALE = float(os.environ.get("THUMBWATCH_TEST_TIMEOUT_SCALE")
              or ("4" if os.environ.get("ASAN") else "1"))
TIMEOUT = 30.0 * SCALE

KEYS = [
    "INPUT_DIR", "OUTPUT_DIR", "LOG_FILE", "RUNTIME_DIR", "LOG_LEVEL",
    "WORKERS",
    "BATCH_SIZE", "BATCH_WAIT_MS", "SETTLE_MS", "MAX_FILE_SIZE", "MAX_PIXELS",
    "IMAGE_TIMEOUT_MS", "DRAIN_TIMEOUT_MS", "STATS_INTERVAL_S",
    "RESCAN_INTERVAL_S", "EXTENSIONS", "OUTPUT_TEMPLATE", "SOURCE_ACTION",
    "DONE_DIR", "MIRROR_DELETES", "MIRROR_MOVES", "BACKGROUND",
    "WATCH_BACKEND", "HTTP_LISTEN", "HTTP_TOKEN", "HTTP_PUBLIC",
    "HTTP_MAX_UPLOAD", "HTTP_MAX_UPLOADS", "HTTP_MAX_CONNECTIONS",
    "HTTP_MAX_PER_CLIENT", "HTTP_REQUEST_TIMEOUT_S", "HTTP_MIN_UPLOAD_RATE",
    "QUEUE", "ROLE", "REDIS_PASSWORD", "REDIS_PREFIX",
    "REDIS_VISIBILITY_S", "REDIS_MAX_DELIVERIES",
]

TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
LEVELS = {"debug", "info", "warn", "error"}
OUTCOMES = ("done", "failed", "skipped")
SANITIZER_RE = re.compile(
    rb"ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:"
    rb"|ERROR: UndefinedBehaviorSanitizer")


def flag(key):
    """INPUT_DIR -> --input-dir"""
    return "--" + key.lower().replace("_", "-")


def child_pids(pid):
    """Child pids of pid (a supervisor's workers), from /proc."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        pass
    kids = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat", "rb") as f:
                    st = f.read()
            except OSError:
                continue
            if int(st[st.rfind(b")") + 2:].split()[1]) == pid:
                kids.append(int(d))
    return kids


def process_group(pgid):
    """Live (not zombie) processes in process group pgid."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat", "rb") as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rfind(b")") + 2:].split()
        if fields[0] != b"Z" and int(fields[2]) == pgid:
            out.append(int(d))
    return out


def clean_env(extra=None):
    """The test process's environment without any THUMBWATCH_* variable."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("THUMBWATCH_")}
    env.update(extra or {})
    return env


# --------------------------------------------------------------------------
# Log parsing


def check_line(raw, where):
    """Parses one complete log line (bytes, no newline) and checks the
    common fields.  Returns the object."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise AssertionError(f"{where}: log line is not UTF-8 ({e}): {raw!r}")
    try:
        obj = json.loads(text)
    except ValueError as e:
        raise AssertionError(f"{where}: log line is not JSON ({e}): {raw!r}")
    assert isinstance(obj, dict), f"{where}: log line is not an object: {raw!r}"
    for k in ("ts", "level", "event"):
        assert k in obj, f"{where}: log line has no {k!r}: {raw!r}"
    ts = obj["ts"]
    assert isinstance(ts, str) and TS_RE.match(ts), \
        f"{where}: ts {ts!r} is not RFC 3339 UTC with milliseconds: {raw!r}"
    try:
        datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ")
    except ValueError:
        raise AssertionError(f"{where}: ts {ts!r} is not a real time")
    assert obj["level"] in LEVELS, f"{where}: bad level: {raw!r}"
    assert isinstance(obj["event"], str) and obj["event"], \
        f"{where}: bad event: {raw!r}"
    return obj


def parse_log(path, offset=0, allow_partial=True):
    """Every complete line of the log file from byte offset on, checked.
    A trailing piece without its newline is ignored while allow_partial
    (the writer may be mid-write), else it fails the test (a torn line)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return []
    lines = data.split(b"\n")
    tail = lines.pop()
    if tail and not allow_partial:
        raise AssertionError(f"{path}: last line is not terminated: {tail!r}")
    return [check_line(raw, f"{path}:{i + 1}")
            for i, raw in enumerate(lines)]


def fmt_events(events, n=40):
    return "\n".join(json.dumps(e) for e in events[-n:])


# --------------------------------------------------------------------------
# The daemon


def empty_env(root):
    """An empty .env file in root.  (Keeps the repo's ./.env out; a
    missing --env-file is tested on its own in test_cli.)"""
    p = Path(root) / "empty.env"
    if not p.exists():
        p.write_text("")
    return p


def write_ini(path, text=""):
    Path(path).write_text(text)
    return Path(path)


class Daemon:
    """One thumbwatch process in a test folder `root`:
    root/in, root/out, root/logs/tw.log, root/tw.ini (empty unless given)."""

    def __init__(self, root, *, ini=None, args=(), env=None, hooks=False,
                 mode="run", input_dir=None, output_dir=None, log_file=None,
                 workers=2, log_level="debug"):
        self.root = Path(root)
        self.input = Path(input_dir) if input_dir else self.root / "in"
        self.output = Path(output_dir) if output_dir else self.root / "out"
        self.log = Path(log_file) if log_file else self.root / "logs" / "tw.log"
        self.ini = self.root / "tw.ini"
        if ini is not None:
            write_ini(self.ini, ini)
        elif not self.ini.exists():
            write_ini(self.ini, "")
        self.input.mkdir(parents=True, exist_ok=True)
        self.mode = mode
        self.cmd = [BIN, mode, "--config", str(self.ini),
                    "--env-file", str(empty_env(self.root)),
                    "--input-dir", str(self.input),
                    "--output-dir", str(self.output),
                    "--log-file", str(self.log)]
        if workers is not None:
            self.cmd += ["--workers", str(workers)]
        if log_level:
            self.cmd += ["--log-level", log_level]
        self.cmd += [str(a) for a in args]
        extra = dict(env or {})
        if hooks:
            extra["THUMBWATCH_TEST_HOOKS"] = "1"
        self.env = clean_env(extra)
        self.proc = None
        self.stopped = False     # stopped (or killed) on purpose by the test
        self.offset = 0          # log bytes before this run started
        self.n = 0

    # -- process ---------------------------------------------------------

    def start(self, ready=True):
        self.offset = self.log.stat().st_size if self.log.exists() else 0
        self.n += 1
        self.stdout_path = self.root / f"stdout.{self.n}.txt"
        self.stderr_path = self.root / f"stderr.{self.n}.txt"
        self.stopped = False
        with open(self.stdout_path, "wb") as so, \
                open(self.stderr_path, "wb") as se:
            self.proc = subprocess.Popen(
                self.cmd, cwd=self.root, env=self.env,
                stdin=subprocess.DEVNULL, stdout=so, stderr=se,
                start_new_session=True)
        if ready:
            self.wait_ready()
        return self

    def wait_ready(self):
        """Waits for the start line and the start-up scan."""
        self.wait_for(lambda ev: any(e["event"] == "start" for e in ev),
                      what="the start line")
        self.wait_for(lambda ev: any(e["event"] == "scan" for e in ev),
                      what="the start-up scan line")

    @property
    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stderr(self):
        try:
            return self.stderr_path.read_bytes()
        except (AttributeError, FileNotFoundError):
            return b""

    def check_sanitizers(self):
        err = self.stderr()
        m = SANITIZER_RE.search(err)
        assert not m, "sanitizer report on stderr:\n" + \
            err[max(0, m.start() - 200):m.start() + 3000].decode(errors="replace")

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, sig=signal.SIGTERM, timeout=None, expect_rc=0):
        """Sends sig, waits for the exit, asserts the exit status, a
        `shutdown` line, no torn last line and no sanitizer report."""
        timeout = timeout or TIMEOUT
        self.stopped = True
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill_group()
            raise AssertionError(
                f"daemon did not exit within {timeout}s of {sig!r}\n"
                + self.describe())
        assert rc == expect_rc, \
            f"daemon exited {rc}, expected {expect_rc}\n" + self.describe()
        events = parse_log(self.log, self.offset, allow_partial=False)
        assert any(e["event"] == "shutdown" for e in events), \
            "no shutdown line\n" + self.describe()
        self.check_sanitizers()
        self.wait_group_gone()
        return rc

    def kill9(self):
        """kill -9 of the supervisor only (its workers are not signalled)."""
        self.stopped = True
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(TIMEOUT)

    def kill_group(self):
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            pass

    def group_pids(self):
        """Live processes still in this daemon's process group."""
        return process_group(self.proc.pid)

    def wait_group_gone(self, timeout=None):
        """After the supervisor exits, its workers must go too."""
        deadline = time.monotonic() + (timeout or 10 * SCALE)
        while self.group_pids():
            if time.monotonic() > deadline:
                left = self.group_pids()
                self.kill_group()
                raise AssertionError(
                    f"worker processes {left} outlived the supervisor")
            time.sleep(0.05)

    # -- log -------------------------------------------------------------

    def events(self):
        return parse_log(self.log, self.offset)

    def describe(self, n=40):
        try:
            ev = self.events()
            tail = fmt_events(ev, n)
        except AssertionError as e:
            tail = f"(log does not parse: {e})"
        err = self.stderr()[-4000:].decode(errors="replace")
        rc = self.proc.poll() if self.proc else None
        return (f"--- command: {self.cmd}\n--- exit status: {rc}\n"
                f"--- log tail ({self.log}):\n{tail}\n"
                f"--- stderr tail:\n{err}")

    def wait_for(self, pred, timeout=None, what="a condition"):
        """Polls the log until pred(events) is truthy; returns its value.
        Fails at once when the daemon exits (unless mode is once)."""
        timeout = timeout or TIMEOUT
        deadline = time.monotonic() + timeout
        while True:
            ev = self.events()
            r = pred(ev)
            if r:
                return r
            if self.proc.poll() is not None:
                ev = self.events()
                r = pred(ev)
                if r:
                    return r
                raise AssertionError(
                    f"daemon exited while waiting for {what}\n"
                    + self.describe())
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"timed out after {timeout:.0f}s waiting for {what}\n"
                    + self.describe())
            time.sleep(0.05)

    def quiet(self, seconds=1.0):
        """Gives the daemon time to log anything it was going to log."""
        time.sleep(seconds * SCALE)
        assert self.alive(), "daemon exited\n" + self.describe()

    def by_event(self, name):
        return [e for e in self.events() if e["event"] == name]

    def outcomes(self, file=None):
        ev = [e for e in self.events() if e["event"] in OUTCOMES]
        if file is None:
            return ev
        return [e for e in ev if e.get("file") == file]

    def wait_outcome(self, file, timeout=None):
        """Waits for the first outcome line of file; returns it."""
        return self.wait_for(
            lambda ev: next((e for e in ev if e["event"] in OUTCOMES
                             and e.get("file") == file), None),
            timeout, f"an outcome line for {file!r}")

    def wait_outcomes(self, files, timeout=None):
        """Waits until every file has an outcome; returns {file: line}."""
        files = list(files)

        def pred(ev):
            got = {}
            for e in ev:
                if e["event"] in OUTCOMES and e.get("file") in files:
                    got.setdefault(e["file"], e)
            return got if len(got) == len(set(files)) else None
        return self.wait_for(pred, timeout or TIMEOUT + len(files) * 0.2 * SCALE,
                             f"outcome lines for {len(files)} files")

    def wait_done(self, file, timeout=None):
        e = self.wait_outcome(file, timeout)
        assert e["event"] == "done", \
            f"{file!r} ended {e}\n" + self.describe()
        return e

    def wait_event(self, name, pred=lambda e: True, count=1, timeout=None):
        """Waits for `count` lines of event `name` matching pred."""
        def p(ev):
            m = [e for e in ev if e["event"] == name and pred(e)]
            return m if len(m) >= count else None
        return self.wait_for(p, timeout, f"{count} {name!r} line(s)")

    def assert_one_outcome(self, file, event="done"):
        o = self.outcomes(file)
        assert len(o) == 1, \
            f"{file!r}: expected one outcome line, got {o}\n" + self.describe()
        assert o[0]["event"] == event, \
            f"{file!r}: expected {event}, got {o[0]}\n" + self.describe()
        return o[0]

    def live_workers(self):
        """Worker pids the log says are running (spawned, not exited)."""
        alive = {}
        for e in self.events():
            if e["event"] == "worker_spawned":
                alive[e["pid"]] = e
            elif e["event"] == "worker_exited":
                alive.pop(e["pid"], None)
        return alive


def pid_alive(pid):
    """True while pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            st = f.read()
    except OSError:
        return False
    return st[st.rfind(b")") + 2:][:1] != b"Z"


class DaemonFactory:
    def __init__(self, root):
        self.root = Path(root)
        self.all = []

    def make(self, **kw):
        d = Daemon(self.root, **kw)
        self.all.append(d)
        return d

    def start(self, **kw):
        ready = kw.pop("ready", True)
        return self.make(**kw).start(ready=ready)

    def teardown(self, report=True):
        """Stops what still runs.  report=False (the test already failed):
        clean up without failing a second time."""
        problems = []
        for d in self.all:
            if d.proc is None:
                continue
            if not d.stopped:
                if d.proc.poll() is not None:
                    problems.append("daemon exited unexpectedly\n"
                                    + d.describe())
                else:
                    try:
                        d.stop()
                    except AssertionError as e:
                        problems.append(f"stopping the daemon: {e}")
            d.kill_group()
        if problems and report:
            pytest.fail("\n\n".join(problems), pytrace=False)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, "rep_" + rep.when, rep)


@pytest.fixture
def daemons(tmp_path, request):
    """A factory of daemons in tmp_path; at teardown each must still be
    running (unless the test stopped it) and must stop cleanly."""
    f = DaemonFactory(tmp_path)
    yield f
    rep = getattr(request.node, "rep_call", None)
    f.teardown(report=rep is None or rep.passed)


@pytest.fixture(autouse=True)
def _binary_exists():
    if not os.access(BIN, os.X_OK):
        pytest.fail(f"no thumbwatch binary at {BIN} (run make)",
                    pytrace=False)


def run_tw(args, cwd, env=None, timeout=None, input=None):
    """Runs the binary to completion; returns CompletedProcess (bytes)."""
    try:
        return subprocess.run([BIN] + [str(a) for a in args], cwd=cwd,
                              env=clean_env(env), capture_output=True,
                              timeout=timeout or TIMEOUT,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        raise AssertionError(f"thumbwatch {args} did not exit within "
                             f"{e.timeout}s (stderr: {e.stderr!r})")


# --------------------------------------------------------------------------
# Images

_cache_dir = None


def _cache():
    global _cache_dir
    if _cache_dir is None:
        _cache_dir = tempfile.mkdtemp(prefix="tw-e2e-img-")
        atexit.register(shutil.rmtree, _cache_dir, True)
    return Path(_cache_dir)


def vips(*args):
    r = subprocess.run(["vips"] + [str(a) for a in args],
                       capture_output=True)
    assert r.returncode == 0, f"vips {args}: {r.stderr.decode(errors='replace')}"


def _template(kind, w, h):
    """Bytes of a noise image kind in jpeg|png (RGBA)|webp|jpeg-big."""
    p = _cache() / f"{kind}-{w}x{h}"
    if not p.exists():
        t = _cache() / f"tmp-{kind}-{w}x{h}"
        t.mkdir()
        vips("gaussnoise", t / "n.v", w, h, "--sigma", 40)
        vips("colourspace", t / "n.v", t / "s.v", "srgb")
        if kind == "jpeg":
            vips("jpegsave", t / "s.v", t / "out", "--Q", 85)
        elif kind == "png":
            vips("bandjoin_const", t / "s.v", t / "a.v", 180)
            vips("pngsave", t / "a.v", t / "out", "--compression", 1)
        elif kind == "webp":
            vips("webpsave", t / "s.v", t / "out", "--Q", 70)
        else:
            raise ValueError(kind)
        os.rename(t / "out", p)
        shutil.rmtree(t)
    return p.read_bytes()


def jpeg_bytes(w=640, h=480):
    return _template("jpeg", w, h)


def png_bytes(w=640, h=480):
    return _template("png", w, h)


def webp_bytes(w=640, h=480):
    return _template("webp", w, h)


def write_file(path, data, mtime_ns=None):
    """Writes data to path in place (open, write, close: one
    IN_CLOSE_WRITE); mtime set before the close when given."""
    path = os.fsencode(path)
    os.makedirs(os.path.dirname(path) or b".", exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.write(fd, data)
        if mtime_ns is not None:
            os.utime(fd, ns=(mtime_ns, mtime_ns))
    finally:
        os.close(fd)
    return path


def drop_atomic(path, data, staging, mtime_ns=None):
    """Writes data in the staging folder (same file system, outside the
    input tree) then renames it to path: one IN_MOVED_TO."""
    staging = Path(staging)
    staging.mkdir(parents=True, exist_ok=True)
    tmp = os.path.join(os.fsencode(staging),
                       b"s-%d" % time.monotonic_ns())
    write_file(tmp, data)
    if mtime_ns is not None:
        os.utime(tmp, ns=(mtime_ns, mtime_ns))
    os.makedirs(os.path.dirname(os.fsencode(path)), exist_ok=True)
    os.rename(tmp, os.fsencode(path))
    return path


def make_jpeg(path, w=640, h=480, **kw):
    return write_file(path, jpeg_bytes(w, h), **kw)


def make_png(path, w=640, h=480, **kw):
    """An RGBA PNG."""
    return write_file(path, png_bytes(w, h), **kw)


def make_webp(path, w=640, h=480, **kw):
    return write_file(path, webp_bytes(w, h), **kw)


def sample(name):
    p = SAMPLES / name
    if not p.exists():
        pytest.fail(f"{p} is missing (sh tests/make-samples.sh)",
                    pytrace=False)
    return p


HDR_RE = re.compile(rb"(\d+)x(\d+) (\w+), (\d+) bands?, ([\w-]+), (\w+)\s*$")


def image_info(path):
    """(width, height, bands, loader) of an image, from vipsheader."""
    r = subprocess.run(["vipsheader", os.fsencode(path)], capture_output=True)
    assert r.returncode == 0, \
        f"vipsheader {path!r}: {r.stderr.decode(errors='replace')}"
    m = HDR_RE.search(r.stdout)
    assert m, f"vipsheader {path!r}: cannot parse {r.stdout!r}"
    return (int(m.group(1)), int(m.group(2)), int(m.group(4)),
            m.group(6).decode())


def images_info(paths):
    """image_info for many files in one vipsheader run."""
    paths = [os.fsencode(p) for p in paths]
    out = {}
    for i in range(0, len(paths), 200):
        chunk = paths[i:i + 200]
        r = subprocess.run(["vipsheader"] + chunk, capture_output=True)
        assert r.returncode == 0, r.stderr.decode(errors="replace")
        lines = r.stdout.splitlines()
        assert len(lines) == len(chunk), r.stdout
        for p, line in zip(chunk, lines):
            m = HDR_RE.search(line)
            assert m and line.startswith(p + b":"), line
            out[p] = (int(m.group(1)), int(m.group(2)), int(m.group(4)),
                      m.group(6).decode())
    return out


def assert_decodes(path):
    """The whole image decodes with no warning (not truncated)."""
    r = subprocess.run(["vips", "avg", os.fsencode(path) + b"[fail_on=warning]"],
                       capture_output=True)
    assert r.returncode == 0, \
        f"{path!r} does not decode: {r.stderr.decode(errors='replace')}"


def jpeg_complete(data):
    return data[:2] == b"\xff\xd8" and data.rstrip(b"\0")[-2:] == b"\xff\xd9"


def tree(root):
    """Every file below root, as paths relative to root (str), leaving out
    dot names (the daemon's temps and state; see temp_leftovers)."""
    out = []
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if not x.startswith(".")]
        for f in files:
            if f.startswith("."):
                continue
            out.append(os.path.relpath(os.path.join(d, f), root))
    return sorted(out)


def temp_leftovers(root):
    """Files that look like a thumbnail still being written: a dot name
    (the daemon's temp prefix) outside any dot folder, or *.tmp.  State
    the daemon keeps in a dot folder of the output dir is not a temp."""
    bad = []
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if not x.startswith(".")]
        for f in files:
            if f.startswith(".") and "thumbwatch" not in f.lower() \
                    or f.endswith(".tmp"):
                bad.append(os.path.join(d, f))
    return bad
