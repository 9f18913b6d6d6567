#!/usr/bin/python3
"""thumbwatch benchmark: thumbwatch against its peers on the same corpus.

Started by tests/bench/run.sh (which installs the peers, fetches the corpus
and builds the C helpers); see tests/bench/README.md for what is measured
and how.  Standard library only.
"""
import base64
import csv
import ctypes
import datetime
import json
import os
import platform
import re
import select
import shlex
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import threading
import time

# ---------------------------------------------------------------- settings

ENV = os.environ
REPO = os.getcwd()
BUILD = ENV.get("BUILD", "build")
OUT = os.path.abspath(os.path.join(BUILD, "bench"))
# Scratch (inputs, outputs, logs; up to ~1 GB for E) and the binaries under
# test live outside the repository, so a `make clean` during a run harms
# nothing; only the results go to build/bench.
CORPUS = ENV["BENCH_CORPUS_DIR"]
CACHE = ENV["BENCH_CACHE_DIR"]
WORK = ENV.get("BENCH_WORK_DIR") or os.path.join(CACHE, "work")
BINDIR = ENV.get("BENCH_BIN_DIR") or os.path.join(CACHE, "bin")
QUICK = ENV.get("BENCH_QUICK", "0") not in ("", "0")
RUNS = int(ENV.get("BENCH_RUNS") or (1 if QUICK else 3))
N = int(ENV.get("BENCH_N") or os.cpu_count() or 1)
WORKLOADS = (ENV.get("BENCH_WORKLOADS") or "A,B,C,F,P,D,E").upper().split(",")
# workload E sizes
E_BURST = int(ENV.get("BENCH_E_BURST") or (2000 if QUICK else 20000))
E_RESTART = int(ENV.get("BENCH_E_RESTART") or (10000 if QUICK else 100000))
E_SIZE = ENV.get("BENCH_E_SIZE", "160x120")
D_DROPS = int(ENV.get("BENCH_D_DROPS") or (10 if QUICK else 50))
D_GAP_S = float(ENV.get("BENCH_D_GAP_MS", "300")) / 1000
# BENCH_QUICK: C, the per-format subsets and P on a slice of the corpus
SUBSET_MAX = int(ENV.get("BENCH_SUBSET_MAX") or (8 if QUICK else 0))
# Workload B costs six passes per peer: it runs on every third image of the
# corpus (24 of the 72 wallpapers) unless BENCH_B_MAX says otherwise (0 = all).
B_MAX = int(ENV.get("BENCH_B_MAX") or (8 if QUICK else 24))
KEEP = ENV.get("BENCH_KEEP", "0") not in ("", "0")

TW = os.path.join(BINDIR, "thumbwatch")       # snapshot of build/thumbwatch
VLOOP = os.path.join(BINDIR, "vloop")
TWLOOP = os.path.join(BINDIR, "twloop")
PILLOW = os.path.join(REPO, "tests", "bench", "pillow_thumbs.py")
PY = "/usr/bin/python3"
CONVERT = "/usr/bin/convert"
VIPSTHUMB = shutil.which("vipsthumbnail")

PRESETS = {
    "A": [("thumb", 300, 300, "inside", "centre")],
    "B": [("small", 150, 150, "inside", "centre"),
          ("medium", 300, 300, "inside", "centre"),
          ("large", 600, 600, "inside", "centre"),
          ("preview", 1200, 800, "inside", "centre"),
          ("square", 400, 400, "cover", "attention"),
          ("banner", 1200, 300, "cover", "centre")],
    "C": [("hd", 1920, 1920, "inside", "centre")],
}
WL_TITLE = {
    "A": "A: 300x300 JPEG q85",
    "B": "B: six presets",
    "C": "C: 1920x1920 JPEG q85",
}

PEER_LABEL = {
    "tw_once": "thumbwatch once",
    "tw_run": "thumbwatch run (drop -> last line)",
    "vt_xargs": "1 vipsthumbnail per file, xargs -P N",
    "vt_batch": "2 vipsthumbnail, one process per core",
    "im": "3 ImageMagick convert, xargs -P N",
    "pillow": "4 Pillow ProcessPoolExecutor(N)",
    "vloop": "vips_thumbnail loop, N procs (ref)",
    "ideal": "ideal: sum single-core vips_thumbnail / N",
}
CHART_LABEL = {
    "tw_once": "thumbwatch once", "tw_run": "thumbwatch run",
    "vt_xargs": "1 vipsthumbnail xargs", "vt_batch": "2 vipsthumbnail/core",
    "im": "3 ImageMagick", "pillow": "4 Pillow pool", "vloop": "vips_thumbnail loop",
}

# Child environment: no THUMBWATCH_* leaking in from the caller, libvips'
# "unknown EXIF resolution unit" warnings off (for every libvips peer alike).
CHILD_ENV = {k: v for k, v in ENV.items() if not k.startswith("THUMBWATCH_")}
CHILD_ENV["VIPS_WARNING"] = "0"
CHILD_ENV["LC_ALL"] = "C"

ORDER_STOP = False


def log(msg):
    print(msg, flush=True)


def mkdirs(*paths):
    for p in paths:
        os.makedirs(p, exist_ok=True)


def fresh(path):
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path)


def loadavg():
    try:
        return float(open("/proc/loadavg").read().split()[0])
    except OSError:
        return 0.0


def spec_of(presets):
    """vloop / twloop / pillow preset spec: WxH[:cover:GRAVITY],..."""
    parts = []
    for _, w, h, fit, grav in presets:
        parts.append("%dx%d" % (w, h) + (":cover:%s" % grav if fit == "cover" else ""))
    return ",".join(parts)


# ---------------------------------------------------------------- processes

def spawn(argv, logpath, env=None, cwd=None):
    """Starts argv with stdout+stderr appended to logpath; returns the pid."""
    fa = [(os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
          (os.POSIX_SPAWN_OPEN, 1, logpath, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644),
          (os.POSIX_SPAWN_DUP2, 1, 2)]
    if cwd is not None:
        argv = ["/bin/sh", "-c", 'cd "$0" && exec "$@"', cwd] + list(argv)
    return os.posix_spawnp(argv[0], argv, env or CHILD_ENV, file_actions=fa)


def wait(pid):
    """wait4: exit status and the rusage of the child and every descendant
    it reaped (ru_maxrss is then the largest process of the tree: the same
    number /usr/bin/time -v prints as 'Maximum resident set size')."""
    _, status, ru = os.wait4(pid, 0)
    return os.waitstatus_to_exitcode(status), ru


# ---- other work on the machine ------------------------------------------
# The benchmark may share the box with other jobs (a test suite, a build).
# Before each measurement it waits (up to BENCH_QUIET_MAX_S) until the CPUs
# are idle, and it measures the CPU time used by everything that was not the
# measured process tree or this script ("foreign" CPU): a measurement during
# which others used more than QUIET_CORES on average is redone (at most
# BENCH_RETRIES times) and the least disturbed attempt is kept.

CLK = os.sysconf("SC_CLK_TCK")
QUIET_CORES = float(ENV.get("BENCH_QUIET_CORES", "0.10"))
QUIET_MAX_S = float(ENV.get("BENCH_QUIET_MAX_S", "30"))
RETRIES = int(ENV.get("BENCH_RETRIES") or (1 if QUICK else 2))
# all the waiting and redoing together may cost at most this much
BUDGET_S = float(ENV.get("BENCH_QUIET_BUDGET_S") or (30 if QUICK else 180))
CONTENDED = {"runs": 0, "kept": 0, "waited": 0.0, "spent": 0.0}


def cpu_busy_s():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    return (sum(v[:8]) - v[3] - v[4]) / CLK


def self_cpu_s():
    t = os.times()
    return t.user + t.system


def wait_quiet():
    t0 = time.monotonic()
    limit = min(QUIET_MAX_S, BUDGET_S - CONTENDED["spent"])
    while time.monotonic() - t0 < limit:
        b0, s0 = cpu_busy_s(), self_cpu_s()
        time.sleep(0.3)
        others = (cpu_busy_s() - b0 - (self_cpu_s() - s0)) / 0.3
        if others <= QUIET_CORES:
            break
    CONTENDED["waited"] += time.monotonic() - t0
    CONTENDED["spent"] += time.monotonic() - t0


def measured(fn):
    """Runs fn() (which returns a dict with wall and cpu) in a quiet moment;
    adds "foreign" (cores used by others on average); redoes a disturbed
    run and keeps the least disturbed attempt."""
    best = None
    for attempt in range(RETRIES + 1):
        wait_quiet()
        b0, s0 = cpu_busy_s(), self_cpu_s()
        r = fn()
        if "foreign" not in r:
            busy = cpu_busy_s() - b0 - (self_cpu_s() - s0) - (r.get("cpu") or 0)
            r["foreign"] = (max(0.0, busy) / r["wall"]
                            if r["wall"] and r["wall"] == r["wall"] else 0.0)
        if best is None or r["foreign"] < best["foreign"]:
            best = r
        if r["foreign"] <= QUIET_CORES or CONTENDED["spent"] >= BUDGET_S:
            break
        CONTENDED["runs"] += 1
        CONTENDED["spent"] += r["wall"] if r["wall"] == r["wall"] else 0
    if best["foreign"] > QUIET_CORES:
        CONTENDED["kept"] += 1
    return best


def timed(argv, logpath, env=None, cwd=None):
    t0 = time.monotonic()
    pid = spawn(argv, logpath, env, cwd)
    rc, ru = wait(pid)
    wall = time.monotonic() - t0
    return {"wall": wall, "rc": rc, "cpu": ru.ru_utime + ru.ru_stime,
            "maxrss_kb": ru.ru_maxrss}


def sh(script, logpath, env=None):
    return timed(["/bin/sh", "-c", script], logpath, env)


def proc_cpu_s(pids):
    """utime + stime of live processes, from /proc/PID/stat."""
    tot = 0
    for pid in pids:
        try:
            with open("/proc/%d/stat" % pid) as f:
                v = f.read().rsplit(")", 1)[1].split()
            tot += int(v[11]) + int(v[12])
        except (OSError, IndexError, ValueError):
            pass
    return tot / CLK


def vm_hwm_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class LogTail:
    """Reads a JSON Lines log as it grows."""

    def __init__(self, path):
        self.path = path
        self.pos = 0
        self.buf = b""
        self.records = []

    def poll(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.pos)
                data = f.read()
        except FileNotFoundError:
            return []
        self.pos += len(data)
        self.buf += data
        new = []
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            new.append(rec)
        self.records.extend(new)
        return new


def ts_epoch(ts):
    return datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


OUTCOMES = ("done", "failed", "skipped")


class HwmSampler(threading.Thread):
    """Polls VmHWM of the supervisor and of the worker pids the log names
    (worker_spawned lines) every 50 ms while a `once` runs: VmHWM is the
    peak, so the last sample before a process exits is (nearly) its peak."""

    def __init__(self, root_pid, logpath):
        super().__init__(daemon=True)
        self.root = root_pid
        self.tail = LogTail(logpath)
        self.workers = {}
        self.sup = 0
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            for rec in self.tail.poll():
                if rec.get("event") == "worker_spawned" and "pid" in rec:
                    self.workers.setdefault(int(rec["pid"]), 0)
            self.sup = max(self.sup, vm_hwm_kb(self.root))
            for pid in self.workers:
                self.workers[pid] = max(self.workers[pid], vm_hwm_kb(pid))
            self.stop.wait(0.05)


# ---------------------------------------------------------------- corpus

IMG_EXT = (".jpg", ".jpeg", ".png", ".webp")


def fmt_of(path):
    e = os.path.splitext(path)[1].lower()
    return {"jpeg": "jpg"}.get(e[1:], e[1:])


def corpus_files():
    files = sorted(os.path.join(CORPUS, f) for f in os.listdir(CORPUS)
                   if f.lower().endswith(IMG_EXT))
    if not files:
        sys.exit("bench: no JPEG/PNG/WebP images in %s" % CORPUS)
    return files


def vips_dims(path):
    try:
        out = subprocess.run(["vipsheader", "-f", "width", path], capture_output=True,
                             text=True, env=CHILD_ENV).stdout.strip()
        out2 = subprocess.run(["vipsheader", "-f", "height", path], capture_output=True,
                              text=True, env=CHILD_ENV).stdout.strip()
        return int(out), int(out2)
    except (ValueError, OSError):
        return 0, 0


def derived_webp(files):
    """WebP subset: the corpus' own WebPs, or (Debian's package has none)
    its JPEGs re-encoded as WebP q90 by libvips, cached beside the corpus."""
    own = [f for f in files if fmt_of(f) == "webp"]
    if own:
        return own, "corpus WebPs"
    d = os.path.join(CACHE, "webp-q90")
    mkdirs(d)
    out = []
    for f in files:
        if fmt_of(f) != "jpg":
            continue
        dst = os.path.join(d, os.path.splitext(os.path.basename(f))[0] + ".webp")
        if not os.path.exists(dst):
            tmp = dst + ".part.webp"
            subprocess.run(["vips", "copy", f, tmp + "[Q=90]"], env=CHILD_ENV, check=True)
            os.rename(tmp, dst)
        out.append(dst)
    return out, "corpus JPEGs re-encoded as WebP q90 (the package ships no WebP)"


def link_or_copy(src, dst):
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)
        shutil.copystat(src, dst)


def write_list(path, files, nul=False):
    with open(path, "w") as f:
        for p in files:
            f.write(p + ("\0" if nul else "\n"))
    return path


def parts(files, k):
    """k interleaved parts: file i goes to part i % k."""
    return [files[i::k] for i in range(k)]


# ---------------------------------------------------------------- peers

def tw_ini(path, presets):
    with open(path, "w") as f:
        f.write("# written by tests/bench/bench.py\n")
        for name, w, h, fit, grav in presets:
            f.write("[preset %s]\nwidth = %d\nheight = %d\nfit = %s\ngravity = %s\n"
                    "format = jpeg\nquality = 85\nstrip = true\n\n" % (name, w, h, fit, grav))
    return path


def peer_cmds(wl, presets, files, outdir, tag):
    """Shell scripts for the command-line peers; each writes every output of
    every file into outdir.  B is six passes (one per preset)."""
    q = shlex.quote
    lst0 = write_list(os.path.join(WORK, "%s.list0" % tag), files, nul=True)
    plist = []
    for i, part in enumerate(parts(files, N)):
        plist.append(write_list(os.path.join(WORK, "%s.part%d" % (tag, i)), part, nul=True))
    cmds = {}
    if VIPSTHUMB:
        def vt_args(name, w, h, fit, grav):
            a = "-s %s" % q("%dx%d>" % (w, h))
            if fit == "cover":
                a += " --smartcrop %s" % grav
            return a + " -o %s" % q("%s/%%s_%s.jpg[Q=85,strip]" % (outdir, name))
        cmds["vt_xargs"] = " && ".join(
            "xargs -0 -a %s -P %d -n 1 %s %s" % (q(lst0), N, q(VIPSTHUMB), vt_args(*p))
            for p in presets)
        procs = []
        for pl in plist:
            procs.append("( %s )" % " && ".join(
                "xargs -0 -a %s %s %s" % (q(pl), q(VIPSTHUMB), vt_args(*p)) for p in presets))
        cmds["vt_batch"] = " & ".join(procs) + " & wait"
    if HAVE_IM:
        passes = []
        for name, w, h, fit, grav in presets:
            if fit == "cover":
                geo = '-thumbnail %dx%d^ -gravity center -extent %dx%d' % (w, h, w, h)
            else:
                geo = "-thumbnail '%dx%d>'" % (w, h)
            script = ('b=${1##*/}; exec %s -define jpeg:size=%dx%d "$1" -auto-orient %s '
                      '-background white -alpha remove -alpha off -strip -quality 85 '
                      '"$0/${b%%.*}_%s.jpg"' % (CONVERT, 2 * w, 2 * h, geo, name))
            passes.append("xargs -0 -a %s -P %d -n 1 sh -c %s %s"
                          % (q(lst0), N, q(script), q(outdir)))
        cmds["im"] = " && ".join(passes)
    if HAVE_PIL:
        lst = write_list(os.path.join(WORK, "%s.list" % tag), files)
        cmds["pillow"] = "%s %s --workers %d --out %s --presets %s --list %s" % (
            PY, q(PILLOW), N, q(outdir), q(spec_of(presets)), q(lst))
    procs = []
    for i, part in enumerate(parts(files, N)):
        pl = write_list(os.path.join(WORK, "%s.vpart%d" % (tag, i)), part)
        procs.append("%s -p %s -o %s -l %s" % (q(VLOOP), q(spec_of(presets)), q(outdir), q(pl)))
    cmds["vloop"] = " & ".join(procs) + " & wait"
    return cmds


def tw_once(ini, indir, outdir, logpath, workers, stderr_log):
    """thumbwatch once over indir; wall, cpu, tree max RSS (wait4) and the
    supervisor's / workers' VmHWM (sampled)."""
    empty = os.path.join(WORK, "empty.env")
    open(empty, "w").close()
    if os.path.exists(logpath):
        os.unlink(logpath)
    argv = [TW, "once", "--config", ini, "--env-file", empty, "--input-dir", indir,
            "--output-dir", outdir, "--log-file", logpath, "--workers", str(workers)]
    t0 = time.monotonic()
    pid = spawn(argv, stderr_log)
    smp = HwmSampler(pid, logpath)
    smp.start()
    rc, ru = wait(pid)
    wall = time.monotonic() - t0
    smp.stop.set()
    smp.join()
    recs = LogTail(logpath)
    recs.poll()
    outc = [r for r in recs.records if r.get("event") in OUTCOMES]
    return {"wall": wall, "rc": rc, "cpu": ru.ru_utime + ru.ru_stime,
            "maxrss_kb": ru.ru_maxrss, "sup_hwm_kb": smp.sup,
            "worker_hwm_kb": max(smp.workers.values(), default=0),
            "done": sum(1 for r in outc if r["event"] == "done"),
            "failed": sum(1 for r in outc if r["event"] == "failed"),
            "worker_ms_sum": sum(r.get("ms", 0) for r in outc if r["event"] == "done")}


class Daemon:
    """thumbwatch run on a folder, with its log tailed."""

    def __init__(self, ini, indir, outdir, logpath, workers, stderr_log, extra=()):
        empty = os.path.join(WORK, "empty.env")
        open(empty, "w").close()
        self.logpath = logpath
        self.tail = LogTail(logpath)
        argv = [TW, "run", "--config", ini, "--env-file", empty, "--input-dir", indir,
                "--output-dir", outdir, "--log-file", logpath, "--workers", str(workers)]
        argv += list(extra)
        self.t_spawn = time.time()
        self.pid = spawn(argv, stderr_log)
        self.workers = []
        self.exited = None

    def poll(self):
        new = self.tail.poll()
        for r in new:
            if r.get("event") == "worker_spawned" and "pid" in r:
                self.workers.append(int(r["pid"]))
        return new

    def wait_for(self, pred, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for r in self.poll():
                if pred(r):
                    return r
            if self.alive() is False:
                return None
            time.sleep(0.005)
        return None

    def alive(self):
        if self.exited is not None:
            return False
        pid, status = os.waitpid(self.pid, os.WNOHANG)
        if pid == 0:
            return True
        self.exited = os.waitstatus_to_exitcode(status)
        return False

    def ready(self, nworkers, timeout=20):
        """Waits for the start-up scan line and every worker's spawn."""
        scan = self.wait_for(lambda r: r.get("event") == "scan", timeout)
        end = time.monotonic() + timeout
        while len(self.workers) < nworkers and time.monotonic() < end:
            self.poll()
            time.sleep(0.005)
        time.sleep(0.2)  # let the workers reach their first read
        self.poll()
        return scan

    def hwm(self):
        return vm_hwm_kb(self.pid), max((vm_hwm_kb(p) for p in self.workers), default=0)

    def stop(self):
        if self.exited is None:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            rc, ru = wait(self.pid)
            self.exited = rc
            self.ru = ru
        self.poll()
        return self.exited


def tw_run_drop(ini, files, tag, timeout=600):
    """thumbwatch run on an empty folder; every file renamed in at once;
    wall = first rename -> ts of the last outcome line."""
    base = os.path.join(WORK, tag)
    stage, indir, outdir = (os.path.join(base, d) for d in ("stage", "in", "out"))
    for d in (stage, indir, outdir):
        fresh(d)
    names = []
    for f in files:
        name = os.path.basename(f)
        link_or_copy(f, os.path.join(stage, name))
        names.append(name)
    logpath = os.path.join(base, "tw.log")
    d = Daemon(ini, indir, outdir, logpath, N, os.path.join(base, "stderr.log"))
    res = {"wall": float("nan"), "rc": 0, "maxrss_kb": 0}
    try:
        if d.ready(N) is None:
            res["rc"] = 1
            return res
        pids = [d.pid] + d.workers
        wait_quiet()
        b0, s0, p0 = cpu_busy_s(), self_cpu_s(), proc_cpu_s(pids)
        t0 = time.time()
        for name in names:
            os.rename(os.path.join(stage, name), os.path.join(indir, name))
        seen = {}
        end = time.monotonic() + timeout
        while len(seen) < len(names) and time.monotonic() < end:
            for r in d.poll():
                if r.get("event") in OUTCOMES:
                    seen[r.get("file")] = r
            time.sleep(0.005)
        t1 = time.time()
        cpu = proc_cpu_s(pids) - p0
        busy = cpu_busy_s() - b0 - (self_cpu_s() - s0) - cpu
        last = max((ts_epoch(r["ts"]) for r in seen.values()), default=float("nan"))
        sup, wk = d.hwm()
        res.update({"wall": last - t0, "cpu": cpu, "foreign": max(0.0, busy) / (t1 - t0),
                    "sup_hwm_kb": sup, "worker_hwm_kb": wk,
                    "maxrss_kb": max(sup, wk),
                    "done": sum(1 for r in seen.values() if r["event"] == "done"),
                    "failed": sum(1 for r in seen.values() if r["event"] != "done"),
                    "rc": 0 if len(seen) == len(names) else 1})
    finally:
        d.stop()
    return res


# ---------------------------------------------------------------- results

class Results:
    def __init__(self):
        self.rows = []         # dicts: workload, peer, label, n, walls, cpu, rss...
        self.notes = []
        self.targets = []      # (name, ok, measured text)
        self.formats = []      # per-format rows
        self.profiles = []     # workload P rows
        self.extra = {}

    def add(self, workload, peer, label, nimg, runs, note=""):
        good = [r for r in runs if r.get("rc", 0) == 0 and r["wall"] == r["wall"]]
        row = {"workload": workload, "peer": peer, "label": label, "images": nimg,
               "runs": len(good), "failed_runs": len(runs) - len(good), "note": note}
        if good:
            row["wall"] = statistics.median(r["wall"] for r in good)
            row["wall_min"] = min(r["wall"] for r in good)
            cpus = [r["cpu"] for r in good if r.get("cpu") is not None]
            row["cpu"] = statistics.median(cpus) if cpus else None
            row["rss_mb"] = max(r.get("maxrss_kb", 0) for r in good) / 1024
            wk = [r["worker_hwm_kb"] for r in good if r.get("worker_hwm_kb")]
            row["worker_mb"] = max(wk) / 1024 if wk else None
            sp = [r["sup_hwm_kb"] for r in good if r.get("sup_hwm_kb")]
            row["sup_mb"] = max(sp) / 1024 if sp else None
        self.rows.append(row)
        return row

    def get(self, workload, peer):
        for r in self.rows:
            if r["workload"] == workload and r["peer"] == peer and "wall" in r:
                return r
        return None

    def target(self, name, ok, measured):
        self.targets.append((name, ok, measured))


R = Results()


def fmt_s(v):
    return "-" if v is None else ("%.2f" % v)


def table_rows():
    out = []
    for r in R.rows:
        ref = R.get(r["workload"], "tw_once")
        wall = r.get("wall")
        ratio = (wall / ref["wall"]) if (wall and ref and r["workload"] in "ABC") else None
        ips = (r["images"] / wall) if wall else None
        rss = r.get("rss_mb")
        out.append({
            "workload": r["workload"], "peer": r["label"],
            "images": r["images"], "runs": r["runs"],
            "wall_s": None if wall is None else round(wall, 3),
            "images_per_s": None if ips is None else round(ips, 2),
            "ratio_vs_thumbwatch": None if ratio is None else round(ratio, 2),
            "cpu_s": None if r.get("cpu") is None else round(r["cpu"], 2),
            "peak_rss_mb": None if not rss else round(rss, 1),
            "worker_peak_mb": None if not r.get("worker_mb") else round(r["worker_mb"], 1),
            "supervisor_peak_mb": None if not r.get("sup_mb") else round(r["sup_mb"], 1),
            "note": r["note"],
        })
    return out


def md_table(rows, cols, heads):
    lines = ["| " + " | ".join(heads) + " |",
             "| " + " | ".join("---" if i < 2 else "---:" for i in range(len(cols))) + " |"]
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c)
            cells.append("-" if v is None or v == "" else str(v))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def machine():
    cpu = "?"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    try:
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) // 1024 // 1024
    except OSError:
        pass

    def out(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True,
                                  env=CHILD_ENV).stdout.strip().splitlines()[0]
        except (OSError, IndexError):
            return "?"
    vips = out(["vips", "--version"])
    pil = out([PY, "-c", "import PIL; print(PIL.__version__)"]) if HAVE_PIL else "absent"
    im = out([CONVERT, "-version"]).replace("Version: ", "") if HAVE_IM else "absent"
    rev = out(["git", "-C", REPO, "rev-parse", "--short", "HEAD"])
    dirty = subprocess.run(["git", "-C", REPO, "status", "--porcelain", "--", "src", "include"],
                           capture_output=True, text=True).stdout.strip()
    return ("%s, %d CPUs used (N=%d), %d GiB RAM, Linux %s; %s; Pillow %s; %s; "
            "thumbwatch %s%s" % (cpu, os.cpu_count(), N, mem, platform.release(), vips, pil,
                                 im, rev, " + uncommitted src/ changes" if dirty else ""))


def write_outputs(meta):
    mkdirs(OUT)
    rows = table_rows()
    cols = ["workload", "peer", "images", "runs", "wall_s", "images_per_s",
            "ratio_vs_thumbwatch", "cpu_s", "peak_rss_mb", "worker_peak_mb",
            "supervisor_peak_mb", "note"]
    heads = ["workload", "peer", "images", "runs", "wall median s", "images/s",
             "peer/thumbwatch", "CPU s", "peak RSS MB", "worker peak MB",
             "supervisor peak MB", "note"]
    with open(os.path.join(OUT, "results.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=cols)
        w.writeheader()
        for r in rows:
            w.writerow({k: ("" if r[k] is None else r[k]) for k in cols})
    fcols = ["subset", "images", "peer", "procs", "wall_s", "images_per_s",
             "vs_thumbwatch", "cpu_s"]
    with open(os.path.join(OUT, "formats.csv"), "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=fcols)
        w.writeheader()
        for r in R.formats:
            w.writerow({k: ("" if r.get(k) is None else r[k]) for k in fcols})

    pcols = ["set", "images", "peer", "profile", "wall_s", "images_per_s", "wall_vs_none",
             "cpu_s", "cpu_vs_none", "worker_ms_per_image", "worker_ms_vs_none"]
    if R.profiles:
        with open(os.path.join(OUT, "profiles.csv"), "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=pcols)
            w.writeheader()
            for r in R.profiles:
                w.writerow({k: ("" if r.get(k) is None else r[k]) for k in pcols})

    md = ["# thumbwatch benchmark", "",
          "Machine: %s  " % meta["machine"],
          "Date: %s; runs per figure: %d (median)%s; load average at start %.2f  " % (
              meta["date"], RUNS, ", BENCH_QUICK" if QUICK else "", meta["load"]),
          "Corpus: %s" % meta["corpus"], "",
          "`peer/thumbwatch` is the peer's wall time divided by `thumbwatch once`'s in the "
          "same workload: above 1, thumbwatch is that many times faster.  Peak RSS is the "
          "largest single process of the peer's process tree (wait4 `ru_maxrss`, what "
          "`/usr/bin/time -v` prints); for thumbwatch the worker and supervisor columns are "
          "their own `VmHWM` from /proc.", "",
          md_table(rows, cols, heads), ""]
    if R.formats:
        md += ["## Workload A per format", "",
               md_table(R.formats, fcols, ["subset", "images", "peer", "procs",
                                           "wall median s", "images/s",
                                           "peer/thumbwatch", "CPU s"]), ""]
    if R.profiles:
        md += ["## Workload P: embedded colour profiles", "",
               "The same JPEGs three ways, re-encoded alike by libvips (q90): no profile, "
               "converted to Display P3 with its profile embedded (thumbwatch converts to "
               "sRGB), and libvips' sRGB profile embedded (thumbwatch does no colour work). "
               "`/ none` is the set's median divided by the no-profile set's: the cost of "
               "the profile.  Worker ms is the sum of the `ms` of the `done` lines (the "
               "workers' own time, without start-up).", "",
               md_table(R.profiles, pcols, ["set", "images", "peer", "profile",
                                            "wall median s", "images/s", "wall / none",
                                            "CPU s", "CPU / none", "worker ms/image",
                                            "worker ms / none"]), ""]
    if R.extra:
        md += ["## Latency and scale", ""]
        for k, v in R.extra.items():
            md.append("- %s: %s" % (k, v))
        md.append("")
    md += ["## Targets (issue 4)", ""]
    for name, ok, measured in R.targets:
        md.append("- %s **%s** — %s" % ({True: "PASS", False: "MISS", None: "n/a"}[ok],
                                         name, measured))
    md.append("")
    if R.notes:
        md += ["## Notes", ""] + ["- " + n for n in R.notes] + [""]
    with open(os.path.join(OUT, "results.md"), "w") as f:
        f.write("\n".join(md))
    return md


def chart():
    gp = shutil.which("gnuplot")
    if not gp:
        R.notes.append("gnuplot not installed: no results.png")
        return
    wls = [w for w in ("A", "B", "C") if R.get(w, "tw_once")]
    peers = ["tw_once", "tw_run", "vt_xargs", "vt_batch", "im", "pillow", "vloop"]
    peers = [p for p in peers if any(R.get(w, p) for w in wls)]
    if not wls or not peers:
        return
    mkdirs(OUT)
    dat = os.path.join(OUT, "chart.dat")
    with open(dat, "w") as f:
        f.write("peer " + " ".join('"%s"' % WL_TITLE[w] for w in wls) + "\n")
        for p in peers:
            vals = []
            for w in wls:
                r, ref = R.get(w, p), R.get(w, "tw_once")
                vals.append("%.3f" % (r["wall"] / ref["wall"]) if r else "-")
            f.write('"%s" %s\n' % (CHART_LABEL[p], " ".join(vals)))
    png = os.path.join(OUT, "results.png")
    script = """
set terminal pngcairo size 1200,650 font ",10" noenhanced
set output '%s'
set title "Wall time relative to thumbwatch once (lower is better; %d cores, median of %d)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set datafile missing '-'
set key top left
set ylabel "wall time / thumbwatch once"
set yrange [0:*]
set grid ytics
set xtics rotate by -15 left
set rmargin 8
set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lc rgb "black"
plot for [i=2:%d] '%s' using i:xtic(1) title columnheader(i)
""" % (png, N, RUNS, len(wls) + 1, dat)
    try:
        subprocess.run([gp], input=script, text=True, check=True, capture_output=True)
    except subprocess.CalledProcessError as e:
        R.notes.append("gnuplot failed: %s" % e.stderr.strip()[:200])


# ---------------------------------------------------------------- workloads

def run_workload(wl, files):
    presets = PRESETS[wl]
    ini = tw_ini(os.path.join(WORK, "%s.ini" % wl), presets)
    tag = "wl" + wl
    indir = os.path.join(WORK, tag + "-in")
    fresh(indir)
    for f in files:
        link_or_copy(f, os.path.join(indir, os.path.basename(f)))
    outdir = os.path.join(WORK, tag + "-out")
    cmds = peer_cmds(wl, presets, files, outdir, tag)
    res = {k: [] for k in ["tw_once", "tw_run"] + list(cmds)}
    logs = os.path.join(WORK, "logs")
    mkdirs(logs)
    nout = len(files) * len(presets)
    for run in range(RUNS):
        log("  %s run %d/%d (load %.2f)" % (wl, run + 1, RUNS, loadavg()))
        def once(run=run):
            fresh(outdir)   # every attempt starts with no thumbnails
            return tw_once(ini, indir, outdir, os.path.join(WORK, "%s-once-%d.log" % (tag, run)),
                           N, os.path.join(logs, "%s-once.stderr" % tag))
        r = measured(once)
        if r["done"] != len(files):
            r["rc"] = r["rc"] or 1
            R.notes.append("%s thumbwatch once run %d: %d done, %d failed of %d"
                           % (wl, run + 1, r["done"], r["failed"], len(files)))
        res["tw_once"].append(r)
        log("    %-10s %.2f s" % ("tw_once", r["wall"]))
        r = measured(lambda: tw_run_drop(ini, files, "%s-run" % tag))
        res["tw_run"].append(r)
        log("    %-10s %.2f s" % ("tw_run", r["wall"]))
        for peer, cmd in cmds.items():
            def go(cmd=cmd, peer=peer):
                fresh(outdir)
                return sh(cmd, os.path.join(logs, "%s-%s.log" % (tag, peer)))
            r = measured(go)
            made = len(os.listdir(outdir))
            if made < nout:
                R.notes.append("%s %s run %d: %d of %d outputs (rc %d), see %s"
                               % (wl, PEER_LABEL[peer], run + 1, made, nout, r["rc"],
                                  os.path.relpath(os.path.join(logs, "%s-%s.log" % (tag, peer)),
                                                  REPO)))
            if r["rc"] != 0 and made >= nout:
                r["rc"] = 0   # e.g. ImageMagick's policy.xml warning; all outputs made
            res[peer].append(r)
            log("    %-10s %.2f s" % (peer, r["wall"]))
    for peer in res:
        R.add(wl, peer, PEER_LABEL[peer], len(files), res[peer])
    if wl == "A":
        ideal_runs = []
        for run in range(RUNS):
            times = os.path.join(WORK, "ideal-%d.tsv" % run)
            lst = write_list(os.path.join(WORK, "ideal.list"), files)
            fresh(outdir)
            r = measured(lambda: timed(
                [VLOOP, "-w", "-p", spec_of(presets), "-o", outdir, "-t", times,
                 "-l", lst], os.path.join(logs, "ideal.log")))
            per = {}
            for line in open(times):
                ms, f = line.rstrip("\n").split("\t", 1)
                per[f] = float(ms)
            r["per"] = per
            r["single"] = sum(per.values()) / 1000
            r["wall"] = r["single"] / N
            r["cpu"] = r["cpu"] / N
            ideal_runs.append(r)
        R.add("A", "ideal", PEER_LABEL["ideal"], len(files), ideal_runs,
              note="single-core sum %.2f s" % statistics.median(
                  x["single"] for x in ideal_runs))
    if not KEEP:
        shutil.rmtree(indir, ignore_errors=True)


def run_formats(files):
    """Workload A on JPEG-only, PNG-only and WebP-only sets: thumbwatch,
    Pillow and the persistent vips loop, N processes and single-core."""
    presets = PRESETS["A"]
    ini = tw_ini(os.path.join(WORK, "F.ini"), presets)
    subsets = [("JPEG", [f for f in files if fmt_of(f) == "jpg"], ""),
               ("PNG", [f for f in files if fmt_of(f) == "png"], "")]
    webp, how = derived_webp(files)
    subsets.append(("WebP", webp, how))
    logs = os.path.join(WORK, "logs")
    q = shlex.quote
    for name, sub, how in subsets:
        if SUBSET_MAX:
            sub = sub[::max(1, len(sub) // SUBSET_MAX)][:SUBSET_MAX]
        if not sub:
            R.notes.append("per-format %s: no such images" % name)
            continue
        if how:
            R.notes.append("per-format %s: %s" % (name, how))
        tag = "F" + name
        indir = os.path.join(WORK, tag + "-in")
        outdir = os.path.join(WORK, tag + "-out")
        fresh(indir)
        for f in sub:
            link_or_copy(f, os.path.join(indir, os.path.basename(f)))
        lst = write_list(os.path.join(WORK, tag + ".list"), sub)
        variants = []   # (peer, procs, callable)
        for procs in sorted({N, 1}, reverse=True):
            variants.append(("thumbwatch once", procs, lambda p=procs: tw_once(
                ini, indir, outdir, os.path.join(WORK, tag + "-once.log"), p,
                os.path.join(logs, tag + "-once.stderr"))))
            if HAVE_PIL:
                variants.append(("Pillow", procs, lambda p=procs: sh(
                    "%s %s --workers %d --out %s --presets 300x300 --list %s" % (
                        PY, q(PILLOW), p, q(outdir), q(lst)),
                    os.path.join(logs, tag + "-pillow.log"))))
            vparts = [write_list(os.path.join(WORK, "%s.vp%d-%d" % (tag, procs, i)), pt)
                      for i, pt in enumerate(parts(sub, procs))]
            variants.append(("vips_thumbnail loop", procs, lambda vp=vparts: sh(
                " & ".join("%s -p 300x300 -o %s -l %s" % (q(VLOOP), q(outdir), q(x))
                           for x in vp) + " & wait",
                os.path.join(logs, tag + "-vloop.log"))))
            if procs == 1 and os.path.exists(TWLOOP):
                variants.append(("thumb.c loop (no daemon)", 1, lambda: timed(
                    [TWLOOP, "-p", "300x300", "-o", outdir, "-l", lst],
                    os.path.join(logs, tag + "-twloop.log"))))
        walls = {}
        for run in range(RUNS):
            for peer, procs, fn in variants:
                def go(fn=fn):
                    fresh(outdir)
                    return fn()
                r = measured(go)
                walls.setdefault((peer, procs), []).append(r)
        for peer, procs, _ in variants:
            rs = [r for r in walls[(peer, procs)] if r.get("rc", 0) == 0]
            if not rs:
                R.notes.append("per-format %s %s x%d failed" % (name, peer, procs))
                continue
            wall = statistics.median(r["wall"] for r in rs)
            ref = statistics.median(r["wall"] for r in walls[("thumbwatch once", procs)])
            R.formats.append({"subset": name, "images": len(sub), "peer": peer,
                              "procs": procs, "wall_s": round(wall, 3),
                              "images_per_s": round(len(sub) / wall, 2),
                              "vs_thumbwatch": round(wall / ref, 2),
                              "cpu_s": round(statistics.median(r["cpu"] for r in rs), 2)})
            log("  %-5s %-26s x%d %.2f s" % (name, peer, procs, wall))
        if not KEEP:
            shutil.rmtree(indir, ignore_errors=True)


# --- P: embedded colour profiles -------------------------------------------

# Red colorant (D50 X) of the profiles a variant must carry: libvips' own
# sRGB (0.4361) and Display P3 (0.5151).
P_RED_X = {"srgb": 0.4361, "p3": 0.5151}
P_SETS = [  # (set, profile, vips icc_transform target, save options)
    ("none", "none", "srgb", "[Q=90,strip]"),
    ("p3", "Display P3", "p3", "[Q=90]"),
    ("srgb", "libvips sRGB", "srgb", "[Q=90]"),
]


def icc_red_x(path):
    """X of the rXYZ tag of path's embedded ICC profile (vipsheader), or
    None when it carries no profile."""
    out = subprocess.run(["vipsheader", "-f", "icc-profile-data", path],
                         capture_output=True, env=CHILD_ENV)
    if out.returncode != 0 or not out.stdout.strip():
        return None
    try:
        blob = base64.b64decode(out.stdout)
        for i in range(struct.unpack_from(">I", blob, 128)[0]):
            sig, off, _ = struct.unpack_from(">4sII", blob, 132 + 12 * i)
            if sig == b"rXYZ":
                return struct.unpack_from(">i", blob, off + 8)[0] / 65536
    except (ValueError, struct.error):
        pass
    return float("nan")


def profile_sets(jpgs):
    """Each JPEG three ways, made once by libvips and cached beside the
    corpus: sRGB pixels (the file's own profile applied, sRGB assumed
    without one, grey made RGB) saved with no profile and with libvips' sRGB profile, and
    the same converted to Display P3 with the P3 profile.  Each variant is
    checked to carry (or not) the profile it should before it is kept."""
    base = os.path.join(CACHE, "profiles-q90")
    sets = {name: [] for name, _, _, _ in P_SETS}
    for name, _, target, opts in P_SETS:
        d = os.path.join(base, name)
        mkdirs(d)
        for f in jpgs:
            dst = os.path.join(d, os.path.basename(f))
            if not os.path.exists(dst):
                tmp, rgb = dst + ".part.jpg", dst + ".part.v"
                # grey JPEGs (three in the corpus) become RGB first: an sRGB
                # input profile does not fit one band
                for argv in (["vips", "colourspace", f, rgb, "srgb"],
                             ["vips", "icc_transform", rgb, tmp + opts, target,
                              "--input-profile", "srgb", "--embedded"]):
                    r = subprocess.run(argv, env=CHILD_ENV, capture_output=True, text=True)
                    if r.returncode != 0:
                        sys.exit("bench: P: %s failed: %s" % (shlex.join(argv),
                                                              r.stderr.strip()))
                os.unlink(rgb)
                x = icc_red_x(tmp)
                want = P_RED_X.get(target) if name != "none" else None
                if (x is None) != (want is None) or (want is not None and
                                                     not abs(x - want) < 0.002):
                    os.unlink(tmp)
                    sys.exit("bench: P: %s should carry the %s profile, red X is %s"
                             % (tmp, name, x))
                os.rename(tmp, dst)
            sets[name].append(dst)
    return sets


def run_profiles(files):
    """thumbwatch once (N workers, workload A's preset) on the three sets,
    interleaved run by run; vipsthumbnail --export-profile srgb on the P3
    and no-profile sets for reference."""
    presets = PRESETS["A"]
    ini = tw_ini(os.path.join(WORK, "P.ini"), presets)
    jpgs = [f for f in files if fmt_of(f) == "jpg"]
    if SUBSET_MAX:
        jpgs = jpgs[::max(1, len(jpgs) // SUBSET_MAX)][:SUBSET_MAX]
    if not jpgs:
        R.notes.append("P: no JPEGs in the corpus")
        return
    log("  P: %d JPEGs, variants cached in %s" % (len(jpgs), os.path.join(CACHE, "profiles-q90")))
    sets = profile_sets(jpgs)
    own = sum(1 for f in jpgs if icc_red_x(f) is not None)
    logs = os.path.join(WORK, "logs")
    outdir = os.path.join(WORK, "P-out")
    q = shlex.quote
    prof_of = {n: p for n, p, _, _ in P_SETS}
    # for reference, the JPEGs as the corpus ships them (other encoders,
    # qualities, progressive files: not comparable with the three sets)
    sets["shipped"] = jpgs
    prof_of["shipped"] = "as shipped (%d of %d carry a profile)" % (
        own, len(jpgs))
    variants = []   # (key, set, profile, peer, callable)
    for name in [n for n, _, _, _ in P_SETS] + ["shipped"]:
        prof = prof_of[name]
        indir = os.path.join(WORK, "P-%s-in" % name)
        fresh(indir)
        for f in sets[name]:
            link_or_copy(f, os.path.join(indir, os.path.basename(f)))
        variants.append(("tw_" + name, name, prof, "thumbwatch once", lambda i=indir, n=name:
                         tw_once(ini, i, outdir, os.path.join(WORK, "P-%s-once.log" % n), N,
                                 os.path.join(logs, "P-%s-once.stderr" % n))))
    if VIPSTHUMB:
        for name in ("none", "p3"):
            vparts = [write_list(os.path.join(WORK, "P-%s.vt%d" % (name, i)), pt, nul=True)
                      for i, pt in enumerate(parts(sets[name], N))]
            cmd = " & ".join(
                "xargs -0 -a %s %s -s %s --export-profile srgb -o %s" % (
                    q(pl), q(VIPSTHUMB), q("300x300>"),
                    q("%s/%%s_thumb.jpg[Q=85,strip]" % outdir)) for pl in vparts) + " & wait"
            variants.append(("vt_" + name, name, prof_of[name],
                             "vipsthumbnail --export-profile srgb, N procs",
                             lambda c=cmd, n=name: sh(c, os.path.join(logs, "P-vt-%s.log" % n))))
    res = {v[0]: [] for v in variants}
    for run in range(RUNS):
        log("  P run %d/%d (load %.2f)" % (run + 1, RUNS, loadavg()))
        k = run % len(variants)      # rotate the order run by run
        for key, name, _, _, fn in variants[k:] + variants[:k]:
            def go(fn=fn):
                fresh(outdir)
                return fn()
            r = measured(go)
            made = len(os.listdir(outdir))
            if key.startswith("tw_") and r["done"] != len(jpgs):
                r["rc"] = r["rc"] or 1
            if made < len(jpgs):
                r["rc"] = r["rc"] or 1
            if r["rc"]:
                R.notes.append("P %s run %d: rc %d, %d of %d outputs"
                               % (key, run + 1, r["rc"], made, len(jpgs)))
            res[key].append(r)
            log("    %-8s %.2f s, CPU %.2f s" % (key, r["wall"], r["cpu"]))
    med = {}
    for key, name, prof, peer, _ in variants:
        good = [r for r in res[key] if r.get("rc", 0) == 0]
        if not good:
            R.notes.append("P %s %s: every run failed" % (peer, name))
            continue
        m = {"wall": statistics.median(r["wall"] for r in good),
             "cpu": statistics.median(r["cpu"] for r in good)}
        if key.startswith("tw_"):
            m["wms"] = statistics.median(r["worker_ms_sum"] for r in good) / len(jpgs)
        med[key] = m
    for key, name, prof, peer, _ in variants:
        m = med.get(key)
        if m is None:
            continue
        ref = med.get(key[:3] + "none") if name != "shipped" else None

        def ratio(field):
            return round(m[field] / ref[field], 2) if ref and ref.get(field) else None
        row = {"set": name, "images": len(jpgs), "peer": peer, "profile": prof,
               "wall_s": round(m["wall"], 3), "images_per_s": round(len(jpgs) / m["wall"], 2),
               "wall_vs_none": ratio("wall"), "cpu_s": round(m["cpu"], 2),
               "cpu_vs_none": ratio("cpu"),
               "worker_ms_per_image": round(m["wms"], 1) if "wms" in m else None,
               "worker_ms_vs_none": ratio("wms") if "wms" in m else None}
        R.profiles.append(row)
        note = "profile: %s" % prof
        if name not in ("none", "shipped") and row["wall_vs_none"] is not None:
            note += "; / none: wall %.2fx, CPU %.2fx" % (row["wall_vs_none"],
                                                         row["cpu_vs_none"])
            if row["worker_ms_vs_none"] is not None:
                note += ", worker ms %.2fx" % row["worker_ms_vs_none"]
        R.add("P", key, "%s: %s" % (peer, name), len(jpgs), res[key], note=note)
        log("  P %-5s %-44s %.2f s, CPU %.2f s%s" % (
            name, peer, m["wall"], m["cpu"],
            "" if name == "none" or row["wall_vs_none"] is None else
            " (/ none: wall %.2fx, CPU %.2fx)" % (row["wall_vs_none"], row["cpu_vs_none"])))
    R.notes.append("P ran on %d of the corpus' %d JPEGs (%d of them carry a profile of their "
                   "own, applied when the variants were made), re-encoded by libvips at q90 "
                   "into the three sets (cached in %s); the shipped row is the same JPEGs "
                   "as the corpus has them, for reference" % (
                       len(jpgs), sum(1 for f in files if fmt_of(f) == "jpg"), own,
                       os.path.join(CACHE, "profiles-q90")))
    if not KEEP:
        for name in prof_of:
            shutil.rmtree(os.path.join(WORK, "P-%s-in" % name), ignore_errors=True)


# --- D: latency ------------------------------------------------------------

IN_MODIFY, IN_CLOSE_WRITE, IN_MOVED_TO = 0x2, 0x8, 0x80


class Inotify:
    def __init__(self):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_CLOEXEC | os.O_NONBLOCK)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")

    def add(self, path, mask):
        wd = self.libc.inotify_add_watch(self.fd, path.encode(), mask)
        if wd < 0:
            raise OSError(ctypes.get_errno(), "inotify_add_watch " + path)
        return wd

    def read(self, timeout):
        r, _, _ = select.select([self.fd], [], [], timeout)
        now = time.monotonic()
        if not r:
            return now, []
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return now, []
        evs, i = [], 0
        while i + 16 <= len(data):
            wd, mask, _, ln = struct.unpack_from("iIII", data, i)
            name = data[i + 16:i + 16 + ln].rstrip(b"\0").decode(errors="replace")
            evs.append((wd, mask, name))
            i += 16 + ln
        return now, evs

    def close(self):
        os.close(self.fd)


def pct(vals, p):
    s = sorted(vals)
    if not s:
        return float("nan")
    k = (len(s) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def run_latency(files):
    base = os.path.join(WORK, "D")
    fresh(base)
    logs = os.path.join(WORK, "logs")
    jpgs = [f for f in files if fmt_of(f) == "jpg"] or files
    src = max(jpgs, key=lambda f: os.path.getsize(f))
    img = os.path.join(base, "12mp.jpg")
    subprocess.run(["vips", "thumbnail", src, img + "[Q=90]", "4000", "--height", "3000",
                    "--crop", "centre"], env=CHILD_ENV, check=True)
    w, h = vips_dims(img)
    ini = tw_ini(os.path.join(WORK, "D.ini"), PRESETS["A"])
    stage, indir, outdir = (os.path.join(base, d) for d in ("stage", "in", "out"))
    for d in (stage, indir, outdir):
        fresh(d)
    for i in range(D_DROPS):
        shutil.copyfile(img, os.path.join(stage, "drop%03d.jpg" % i))
    logpath = os.path.join(base, "tw.log")
    wait_quiet()
    dmn = Daemon(ini, indir, outdir, logpath, N, os.path.join(base, "stderr.log"))
    vis, logged, own = [], [], []
    try:
        if dmn.ready(N) is None:
            R.notes.append("D: daemon did not start")
            return
        ino = Inotify()
        wd_out = ino.add(outdir, IN_MOVED_TO | IN_CLOSE_WRITE)
        wd_log = ino.add(logpath, IN_MODIFY)
        for i in range(D_DROPS):
            name = "drop%03d.jpg" % i
            want = "drop%03d_thumb.jpg" % i
            time.sleep(D_GAP_S)
            dmn.poll()
            t0 = time.monotonic()
            os.rename(os.path.join(stage, name), os.path.join(indir, name))
            t_vis = t_log = None
            end = t0 + 30
            while (t_vis is None or t_log is None) and time.monotonic() < end:
                now, evs = ino.read(0.5)
                for wd, mask, ename in evs:
                    if wd == wd_out and ename == want and t_vis is None:
                        t_vis = now
                    elif wd == wd_log:
                        for r in dmn.poll():
                            if r.get("file") == name and r.get("event") in OUTCOMES:
                                t_log = now
                                own.append(r.get("ms", 0))
            if t_vis is None or t_log is None:
                R.notes.append("D: drop %d not seen within 30 s" % i)
                continue
            vis.append((t_vis - t0) * 1000)
            logged.append((t_log - t0) * 1000)
        ino.close()
        sup, wk = dmn.hwm()
    finally:
        dmn.stop()
    # single-image references: the same file 10 times in one warm process
    reps = 10
    single = {"thumb.c loop": float("nan")}
    for label, argv in (("vips_thumbnail loop", [VLOOP, "-w", "-p", "300x300", "-o", base]),
                        ("thumb.c loop", [TWLOOP, "-w", "-p", "300x300", "-o", base])):
        if not os.path.exists(argv[0]):
            continue
        times = os.path.join(base, "single.tsv")
        timed(argv + ["-t", times] + [img] * reps, os.path.join(logs, "D-single.log"))
        single[label] = statistics.median(float(l.split("\t")[0]) for l in open(times))
    cold = []
    if VIPSTHUMB:
        for _ in range(5):
            r = timed([VIPSTHUMB, "-s", "300x300>", "-o", base + "/cold_%s.jpg[Q=85,strip]", img],
                      os.path.join(logs, "D-cold.log"))
            cold.append(r["wall"] * 1000)
    if not vis:
        return
    p50, p95 = pct(vis, 50), pct(vis, 95)
    over = [v - o for v, o in zip(logged, own)]
    R.extra["D latency (%dx%d JPEG, %d drops, idle daemon, N=%d)" % (w, h, len(vis), N)] = (
        "rename -> thumbnail visible p50 %.1f ms, p95 %.1f ms, max %.1f ms; rename -> done "
        "line p50 %.1f ms; worker's own `ms` p50 %.1f ms; single image in a warm process: "
        "vips_thumbnail %.1f ms, thumb.c %.1f ms%s; latency minus the worker's own time p50 "
        "%.1f ms" % (p50, p95, max(vis), pct(logged, 50), pct(own, 50),
                     single["vips_thumbnail loop"], single["thumb.c loop"],
                     ("; one cold vipsthumbnail process %.1f ms" % statistics.median(cold))
                     if cold else "", pct(over, 50)))
    R.d = {"p50": p50, "p95": p95, "single": single["vips_thumbnail loop"],
           "own": pct(own, 50), "over": pct(over, 50)}


# --- E: scale --------------------------------------------------------------

def e_bases():
    """A few dozen distinct small JPEGs cut from the corpus by libvips."""
    d = os.path.join(CACHE, "e-bases-%s" % E_SIZE)
    mkdirs(d)
    w, h = E_SIZE.split("x")
    srcs = corpus_files()
    out = []
    crops = ["centre", "attention", "entropy"]
    for i in range(48):
        dst = os.path.join(d, "b%02d.jpg" % i)
        if not os.path.exists(dst):
            src = srcs[i % len(srcs)]
            tmp = dst + ".part.jpg"
            subprocess.run(["vips", "thumbnail", src, tmp + "[Q=80,strip]", w, "--height", h,
                            "--crop", crops[(i // len(srcs)) % 3]], env=CHILD_ENV, check=True)
            os.rename(tmp, dst)
        out.append(open(dst, "rb").read())
    return out


def make_files(folder, start, count, bases):
    for i in range(start, start + count):
        with open(os.path.join(folder, "s%06d.jpg" % i), "wb") as f:
            f.write(bases[i % len(bases)])


def run_scale():
    base = os.path.join(WORK, "E")
    fresh(base)
    bases = e_bases()
    ini = tw_ini(os.path.join(WORK, "E.ini"), PRESETS["A"])
    stage, indir, outdir = (os.path.join(base, d) for d in ("stage", "in", "out"))
    for d in (stage, indir, outdir):
        fresh(d)
    log("  E: writing %d small JPEGs (%s)" % (E_BURST, E_SIZE))
    make_files(stage, 0, E_BURST, bases)
    names = sorted(os.listdir(stage))
    logpath = os.path.join(base, "burst.log")
    wait_quiet()
    dmn = Daemon(ini, indir, outdir, logpath, N, os.path.join(base, "stderr.log"))
    burst = {}
    try:
        dmn.ready(N)
        log("  E: burst of %d renames" % len(names))
        t0 = time.time()
        for n in names:
            os.rename(os.path.join(stage, n), os.path.join(indir, n))
        t_renamed = time.time() - t0
        seen = {}
        last_new = time.monotonic()
        while len(seen) < len(names) and time.monotonic() - last_new < 60:
            new = [r for r in dmn.poll() if r.get("event") in OUTCOMES]
            for r in new:
                seen[r.get("file")] = r
            if new:
                last_new = time.monotonic()
            time.sleep(0.02)
        time.sleep(1.0)   # anything after the last expected line?
        extra = [r for r in dmn.poll() if r.get("event") in OUTCOMES]
        sup, wk = dmn.hwm()
        scans = [r for r in dmn.tail.records if r.get("event") == "scan"]
        last = max((ts_epoch(r["ts"]) for r in seen.values()), default=float("nan"))
    finally:
        dmn.stop()
    outs = sum(1 for n in os.listdir(outdir) if n.endswith("_thumb.jpg"))
    done = sum(1 for r in seen.values() if r["event"] == "done")
    lost = len(names) - len(seen)
    burst = {"wall": last - t0, "sup": sup, "wk": wk, "done": done, "lost": lost,
             "outs": outs, "dups": len(extra), "scans": len(scans)}
    R.rows.append({"workload": "E", "peer": "tw_run", "label":
                   "thumbwatch run: %d-file burst" % len(names), "images": len(names),
                   "runs": 1, "note": "%d done, %d lost, %d outputs, %d rescans" % (
                       done, lost, outs, len(scans) - 1),
                   "wall": burst["wall"], "rss_mb": max(sup, wk) / 1024,
                   "worker_mb": wk / 1024, "sup_mb": sup / 1024, "cpu": None})
    R.extra["E burst"] = ("%d files renamed in %.2f s, last outcome line %.2f s after the "
                          "first rename (%.0f files/s); %d done, %d failed/skipped, %d never "
                          "logged, %d outputs on disk, %d outcome lines beyond the expected; "
                          "%d scan lines (start-up + rescans); supervisor VmHWM %.1f MB, worker "
                          "VmHWM %.1f MB" % (
                              len(names), t_renamed, burst["wall"], len(names) / burst["wall"],
                              done, len(seen) - done, lost, outs, len(extra), len(scans),
                              sup / 1024, wk / 1024))
    R.e_burst = burst

    # Up to E_RESTART processed files: add the rest, process them with once.
    more = max(0, E_RESTART - len(names))
    log("  E: writing %d more, processing them with thumbwatch once" % more)
    make_files(indir, len(names), more, bases)
    r = tw_once(ini, indir, outdir, os.path.join(base, "once.log"), N,
                os.path.join(base, "once.stderr"))
    R.rows.append({"workload": "E", "peer": "tw_once", "label":
                   "thumbwatch once: %d new + %d up to date" % (more, len(names)),
                   "images": more, "runs": 1,
                   "note": "%d done, %d failed" % (r["done"], r["failed"]),
                   "wall": r["wall"], "cpu": r["cpu"], "rss_mb": r["maxrss_kb"] / 1024,
                   "worker_mb": (r["worker_hwm_kb"] or 0) / 1024 or None,
                   "sup_mb": (r["sup_hwm_kb"] or 0) / 1024 or None})
    total = len(os.listdir(indir))
    # Restart over everything: time to the start-up scan line; no decode.
    log("  E: restart over %d processed files" % total)
    logpath = os.path.join(base, "restart.log")
    wait_quiet()
    dmn = Daemon(ini, indir, outdir, logpath, N, os.path.join(base, "restart.stderr"))
    try:
        scan = dmn.wait_for(lambda x: x.get("event") == "scan", 120)
        t_scan = (ts_epoch(scan["ts"]) - dmn.t_spawn) if scan else float("nan")
        time.sleep(1.0 if QUICK else 3.0)
        dmn.poll()
        recs = dmn.tail.records
        decodes = sum(1 for x in recs if x.get("event") in ("done", "failed"))
        sup, wk = dmn.hwm()
    finally:
        dmn.stop()
    R.e_restart = {"settle": t_scan, "decodes": decodes, "sup": sup,
                   "uptodate": scan.get("uptodate") if scan else None, "total": total}
    R.rows.append({"workload": "E", "peer": "tw_restart", "label":
                   "thumbwatch run: restart over %d up-to-date files" % total,
                   "images": total, "runs": 1,
                   "note": "scan line after %.2f s, uptodate %s, %d done/failed lines" % (
                       t_scan, scan.get("uptodate") if scan else "?", decodes),
                   "wall": t_scan, "cpu": None, "rss_mb": sup / 1024, "sup_mb": sup / 1024,
                   "worker_mb": wk / 1024})
    R.extra["E restart"] = ("%d files, `scan` line %.2f s after spawn (uptodate %s), %d "
                            "done/failed lines after it; supervisor VmHWM %.1f MB" % (
                                total, t_scan, scan.get("uptodate") if scan else "?",
                                decodes, sup / 1024))
    if not KEEP:
        shutil.rmtree(base, ignore_errors=True)


# ---------------------------------------------------------------- targets

def judge():
    def ratio(wl, peer):
        r, ref = R.get(wl, peer), R.get(wl, "tw_once")
        return (r["wall"] / ref["wall"]) if (r and ref) else None

    def t_ratio(name, wl, peer, need):
        v = ratio(wl, peer)
        if v is None:
            R.target(name, None, "peer not measured")
        else:
            R.target(name, v >= need, "measured %.2fx (needs %.2fx; %s)" % (
                v, need, "%+.0f%%" % ((v / need - 1) * 100)))

    if R.get("A", "tw_once"):
        t_ratio("A: >= 1.3x faster than peer 1 (vipsthumbnail per file)", "A", "vt_xargs", 1.3)
        t_ratio("A: >= 1.5x faster than Pillow (peer 4), whole corpus", "A", "pillow", 1.5)
        t_ratio("A: >= 2x faster than ImageMagick (peer 3)", "A", "im", 2.0)
        ideal = R.get("A", "ideal")
        tw = R.get("A", "tw_once")
        if ideal:
            over = tw["wall"] / ideal["wall"] - 1
            R.target("A: within 10% of ideal (sum of single-core vips_thumbnail / N)",
                     over <= 0.10, "thumbwatch once %.2f s vs ideal %.2f s: %+.0f%%" % (
                         tw["wall"], ideal["wall"], over * 100))
        run = R.get("A", "tw_run")
        if run:
            R.notes.append("A: thumbwatch run (drop -> last line) %.2f s vs once %.2f s"
                           % (run["wall"], tw["wall"]))
    for sub in ("JPEG", "PNG", "WebP"):
        tw = [r for r in R.formats if r["subset"] == sub and r["peer"] == "thumbwatch once"
              and r["procs"] == N]
        pil = [r for r in R.formats if r["subset"] == sub and r["peer"] == "Pillow"
               and r["procs"] == N]
        if tw and pil:
            v = pil[0]["wall_s"] / tw[0]["wall_s"]
            R.target("A: faster than Pillow on the %s subset (N procs)" % sub, v > 1.0,
                     "Pillow %.2f s / thumbwatch %.2f s = %.2fx" % (
                         pil[0]["wall_s"], tw[0]["wall_s"], v))
    if R.get("B", "tw_once"):
        t_ratio("B: >= 2.5x faster than six independent vips_thumbnail passes "
                "(persistent loop, N procs)", "B", "vloop", 2.5)
    d = getattr(R, "d", None)
    if d:
        lim = d["single"] + 15
        R.target("D: p50 latency <= single-image time + 15 ms", d["p50"] <= lim,
                 "p50 %.1f ms vs %.1f + 15 = %.1f ms (%+.1f ms)" % (
                     d["p50"], d["single"], lim, d["p50"] - lim))
        R.target("D: no batching wait on an idle pool (latency - worker's own ms, p50 <= 15 ms)",
                 d["over"] <= 15, "p50 %.1f ms" % d["over"])
    eb = getattr(R, "e_burst", None)
    if eb:
        R.target("E: %d-file burst, no file lost" % E_BURST,
                 eb["lost"] == 0 and eb["done"] == E_BURST and eb["outs"] == E_BURST,
                 "%d done, %d never logged, %d outputs" % (eb["done"], eb["lost"], eb["outs"]))
        R.target("E: supervisor RSS < 64 MB during the burst", eb["sup"] < 64 * 1024,
                 "VmHWM %.1f MB" % (eb["sup"] / 1024))
    er = getattr(R, "e_restart", None)
    if er:
        R.target("E: restart over %d up-to-date files settles < 10 s, no decode" % er["total"],
                 er["settle"] < 10 and er["decodes"] == 0 and er["uptodate"] == er["total"],
                 "scan line after %.2f s, uptodate %s, %d decodes" % (
                     er["settle"], er["uptodate"], er["decodes"]))
        R.target("E: supervisor RSS < 64 MB on the restart", er["sup"] < 64 * 1024,
                 "VmHWM %.1f MB" % (er["sup"] / 1024))
    peaks = [(r["workload"], r["worker_mb"]) for r in R.rows
             if r["workload"] in ("A", "B", "C") and r.get("worker_mb")]
    if peaks:
        wl, mb = max(peaks, key=lambda x: x[1])
        R.target("RSS: largest real image processed in < 250 MB (worker VmHWM, A/B/C)",
                 mb < 250, "max worker VmHWM %.1f MB (workload %s); per workload: %s" % (
                     mb, wl, ", ".join("%s %.0f MB" % (w, max(m for ww, m in peaks if ww == w))
                                       for w in sorted({p[0] for p in peaks}))))


# ---------------------------------------------------------------- main

HAVE_IM = os.path.exists(CONVERT) and "ImageMagick" in subprocess.run(
    [CONVERT, "-version"], capture_output=True, text=True).stdout
HAVE_PIL = subprocess.run([PY, "-c", "import PIL"], capture_output=True).returncode == 0


def main():
    t_start = time.monotonic()
    fresh(WORK)
    mkdirs(os.path.join(WORK, "logs"))
    files = corpus_files()
    for f in files:          # warm the page cache for everybody alike
        with open(f, "rb") as fh:
            while fh.read(1 << 20):
                pass
    if not VIPSTHUMB:
        R.notes.append("vipsthumbnail not installed (libvips-tools): peers 1 and 2 skipped")
    if not HAVE_IM:
        R.notes.append("ImageMagick not installed (/usr/bin/convert): peer 3 skipped")
    if not HAVE_PIL:
        R.notes.append("Pillow not installed (python3-pil): peer 4 skipped")
    kinds = {}
    for f in files:
        kinds[fmt_of(f)] = kinds.get(fmt_of(f), 0) + 1
    meta = {"machine": machine(), "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "load": loadavg(),
            "corpus": "%s: %d images (%s)" % (
                ENV.get("BENCH_CORPUS_DESC", CORPUS), len(files),
                ", ".join("%d %s" % (v, k.upper()) for k, v in sorted(kinds.items())))}
    log("bench: %s" % meta["machine"])
    log("bench: %s; N=%d, runs=%d%s" % (meta["corpus"], N, RUNS, ", quick" if QUICK else ""))
    R.notes.append("peers: same files, N processes, JPEG q85, metadata stripped, no upscaling; "
                   "B is six passes for every peer but thumbwatch (which decodes once); "
                   "the 400x400 cover preset uses attention gravity in thumbwatch, "
                   "vipsthumbnail and the vips loop, centre in ImageMagick and Pillow (they "
                   "have no attention crop); vipsthumbnail and ImageMagick run with their "
                   "default threading, the vips loop and thumbwatch workers with one libvips "
                   "thread each")
    if meta["load"] > 0.5:
        R.notes.append("load average was %.2f at start: other work shared the CPUs, so "
                       "absolute times are noisy (all peers ran interleaved, run by run)"
                       % meta["load"])
    def slice_of(k):
        return files[::max(1, len(files) // k)][:k] if k and k < len(files) else files
    sliced = slice_of(SUBSET_MAX)
    for wl in WORKLOADS:
        t = time.monotonic()
        if wl == "A":
            log("bench: workload A (%d images)" % len(files))
            run_workload("A", files)
        elif wl == "B":
            sub = slice_of(B_MAX)
            log("bench: workload B (%d images)" % len(sub))
            if len(sub) < len(files):
                R.notes.append("B ran on %d of the %d images (every %d-th; BENCH_B_MAX)"
                               % (len(sub), len(files), max(1, len(files) // B_MAX)))
            run_workload("B", sub)
        elif wl == "C":
            log("bench: workload C (%d images)" % len(sliced))
            if len(sliced) < len(files):
                R.notes.append("C ran on %d of the %d images (BENCH_QUICK)"
                               % (len(sliced), len(files)))
            run_workload("C", sliced)
        elif wl == "F":
            log("bench: workload A per format")
            run_formats(files)
        elif wl == "P":
            log("bench: workload P (embedded colour profiles)")
            run_profiles(files)
        elif wl == "D":
            log("bench: workload D (latency, %d drops)" % D_DROPS)
            run_latency(files)
        elif wl == "E":
            log("bench: workload E (scale: %d burst, %d restart)" % (E_BURST, E_RESTART))
            run_scale()
        log("bench: workload %s took %.0f s" % (wl, time.monotonic() - t))
    if CONTENDED["runs"] or CONTENDED["waited"] > 5:
        R.notes.append("other work on the machine: waited %.0f s for idle CPUs; %d "
                       "measurements redone because others used > %.2f cores during them; "
                       "%d kept although disturbed (least disturbed of %d attempts)" % (
                           CONTENDED["waited"], CONTENDED["runs"], QUIET_CORES,
                           CONTENDED["kept"], RETRIES + 1))
    judge()
    chart()
    md = write_outputs(meta)
    print()
    print("\n".join(md))
    log("bench: wrote %s/results.md, results.csv, formats.csv, profiles.csv, results.png "
        "in %.0f s" % (
        os.path.relpath(OUT, REPO), time.monotonic() - t_start))
    if not KEEP:
        shutil.rmtree(WORK, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
