"""Hostile input: the whole set from tests/make-hostile.py (a few hundred
seeded corruptions, pixel floods, huge-but-small images, thousands of
frames and pages, SVGs that reach outside, hostile names, symlinks out of
the tree and in loops, a FIFO, a socket, a device node) dropped at once
into a running daemon, plus files deleted or replaced between detection
and decode and files the daemon may not read.

Every input is counted, every output checked (no sampling): each name the
daemon should pick up ends in exactly one outcome line; each failure
carries a clear one-line reason; the good images are made; the daemon
lives, its memory stays bounded, and nothing is written outside the
output tree."""

import datetime
import hashlib
import json
import importlib.util
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from conftest import (OUTCOMES, SCALE, TIMEOUT, DaemonFactory, child_pids,
                      image_info, images_info, jpeg_bytes, temp_leftovers,
                      write_file)

HERE = Path(__file__).resolve().parent
GEN = HERE.parent / "make-hostile.py"
ASAN = bool(os.environ.get("ASAN"))

# the fixture set: the same seed gives the same bytes
SEED = int(os.environ.get("HOSTILE_SEED") or 1)
COUNT = int(os.environ.get("HOSTILE_COUNT") or 300)

SUPERVISOR_MAX_KB = 64 * 1024     # supervisor VmHWM
WORKER_MAX_KB = 1024 * 1024       # any worker's VmHWM


def _load_generator():
    spec = importlib.util.spec_from_file_location("make_hostile", GEN)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


hostile = _load_generator()


# --------------------------------------------------------------------------
# helpers


def logged(rel):
    """How the log names a path: losslessly, each byte that is not part of
    valid UTF-8 as the lone surrogate U+DC00+byte (issue 18 case 14; PEP
    383, what os.fsdecode does), so os.fsencode gives the bytes back."""
    return os.fsencode(rel).decode("utf-8", "surrogateescape")


def thumb_of(rel):
    """bytes path of the default preset's thumbnail of rel (bytes)."""
    d, name = os.path.split(os.fsencode(rel))
    stem = name.rsplit(b".", 1)[0] if b"." in name else name
    return os.path.join(d, stem + b"_thumb.jpg")


def output_files(out):
    """Every file below out (bytes, relative), leaving out the daemon's
    own state folder .thumbwatch."""
    out = os.fsencode(out)
    found = set()
    for d, dirs, files in os.walk(out):
        if d == out:
            dirs[:] = [x for x in dirs if x != b".thumbwatch"]
        for f in files:
            found.add(os.path.relpath(os.path.join(d, f), out))
    return found


def snapshot(root, skip=()):
    """{relative bytes path: description} of everything below root (not
    following links): type, mode, size, mtime and a hash of contents of
    regular files; folders in `skip` (bytes, top level) are left out."""
    root = os.fsencode(root)
    snap = {}
    for d, dirs, files in os.walk(root):
        if d == root:
            dirs[:] = [x for x in dirs if x not in skip]
            # the daemon's stdout and stderr: files the test opened for it
            files = [x for x in files if x not in skip and not
                     (x.startswith((b"stdout.", b"stderr.")) and
                      x.endswith(b".txt"))]
        for name in dirs + files:
            p = os.path.join(d, name)
            st = os.lstat(p)
            desc = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode))
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    desc += (st.st_size, st.st_mtime_ns,
                             hashlib.sha256(f.read()).hexdigest())
            elif stat.S_ISLNK(st.st_mode):
                desc += (os.readlink(p),)
            snap[os.path.relpath(p, root)] = desc
    return snap


def diff_snap(a, b):
    out = []
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            out.append(f"{k!r}: {a.get(k)} -> {b.get(k)}")
    return out


def proc_status(pid):
    """{'VmRSS': kB, 'VmHWM': kB} of pid, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            text = f.read()
    except OSError:
        return None
    out = {}
    for line in text.splitlines():
        k, _, v = line.partition(":")
        if k in ("VmRSS", "VmHWM"):
            out[k] = int(v.split()[0])
    return out


class MemSampler(threading.Thread):
    """Samples VmRSS/VmHWM of the supervisor and of every child it has,
    every few milliseconds, keeping each pid's peak."""

    def __init__(self, pid, period=0.01):
        super().__init__(daemon=True)
        self.pid = pid
        self.period = period
        self.peak = {}             # pid -> max VmHWM (kB)
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            for p in [self.pid] + child_pids(self.pid):
                st = proc_status(p)
                if st and "VmHWM" in st:
                    self.peak[p] = max(self.peak.get(p, 0), st["VmHWM"],
                                       st.get("VmRSS", 0))
            time.sleep(self.period)

    def stop(self):
        self.halt.set()
        self.join(5)

    def workers_peak(self):
        return max((v for p, v in self.peak.items() if p != self.pid),
                   default=0)


class Listener(threading.Thread):
    """A TCP listener on 127.0.0.1 counting every connection made."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.hits = []

    def run(self):
        while True:
            try:
                c, addr = self.sock.accept()
            except OSError:
                return
            c.settimeout(0.5)
            try:
                self.hits.append((addr, c.recv(512)))
            except OSError as e:
                self.hits.append((addr, repr(e)))
            c.close()

    def close(self):
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def generate(dest, outside, port, *extra):
    man = Path(str(dest) + ".json")
    r = subprocess.run([sys.executable, str(GEN), str(dest),
                        "--outside", str(outside), "--svg-port", str(port),
                        "--manifest", str(man)] + [str(x) for x in extra],
                       capture_output=True)
    assert r.returncode == 0, r.stderr.decode(errors="replace")
    print(r.stderr.decode(errors="replace").strip())
    return json.loads(man.read_text())


def assert_clear_error(e):
    err = e.get("error")
    assert isinstance(err, str) and err.strip(), f"no error text: {e}"
    assert "\n" not in err and "\r" not in err, f"error is not one line: {e}"
    assert len(err) < 1100, f"error is not short: {e}"


def check_thumbnails(d, rels):
    """{rel: (w, h, bands, loader)} of the thumbnails of rels (bytes),
    each of which must exist and read as an image."""
    out = os.fsencode(d.output)
    plain = [r for r in rels if b"\n" not in r and b"\r" not in r]
    info = {}
    got = images_info([os.path.join(out, thumb_of(r)) for r in plain])
    for r in plain:
        info[r] = got[os.path.join(out, thumb_of(r))]
    for r in rels:
        if r not in info:
            info[r] = image_info(os.path.join(out, thumb_of(r)))
    return info


def fits(thumb, src, box=300):
    """The thumbnail's size is the source's fitted within box x box,
    never enlarged."""
    tw, th = thumb
    w, h = src
    scale = min(1.0, box / w, box / h)
    return abs(tw - w * scale) <= 1 and abs(th - h * scale) <= 1


# --------------------------------------------------------------------------
# the whole set at once


def test_hostile_set(tmp_path):
    stage = tmp_path / "stage"
    outside = tmp_path / "outside"
    listener = Listener()
    listener.start()
    t0 = time.monotonic()
    man = generate(stage, outside, listener.port, "--seed", SEED,
                   "--count", COUNT)
    gen_s = time.monotonic() - t0
    entries = man["entries"]
    # a few good images mixed in, at the top and in folders
    good = {"mixed-a.jpg": (640, 480), "mixed/b.jpg": (1200, 800),
            "mixed/deeper/c.jpg": (300, 500)}
    for rel, (w, h) in good.items():
        write_file(stage / rel, jpeg_bytes(w, h))
        entries.append({"path": rel, "kind": "good-mixed", "expect": "done",
                        "size": [w, h]})

    pwned_before = os.path.exists("/tmp/pwned")
    f = DaemonFactory(tmp_path)
    # no retry-after-write-failure rescan during the run (see
    # test_thumbnail_name_too_long_fails_once for why)
    d = f.make(workers=2, args=["--retry-interval-s", "3600"])
    # in, out and logs are the daemon's; run is its RUNTIME_DIR (control
    # socket, pidfile); stage is emptied into in
    skip = {b"in", b"out", b"logs", b"run", b"stage", b"stage.json"}
    before = snapshot(tmp_path, skip)
    before_stage = snapshot(stage)
    sampler = None
    try:
        d.start()
        sampler = MemSampler(d.pid)
        sampler.start()
        t1 = time.monotonic()
        for name in sorted(os.listdir(os.fsencode(stage))):
            os.rename(os.path.join(os.fsencode(stage), name),
                      os.path.join(os.fsencode(d.input), name))

        want = {logged(e["path"]): e for e in entries
                if e["expect"] != "ignored"}
        ignored = {logged(e["path"]) for e in entries
                   if e["expect"] == "ignored"}
        d.wait_for(lambda ev: set(want) <= {e.get("file") for e in ev
                                            if e["event"] in OUTCOMES},
                   timeout=TIMEOUT * 4,
                   what=f"an outcome line for each of {len(want)} files")
        took = time.monotonic() - t1
        d.quiet(1.5)
        sampler.stop()
        oc = d.outcomes()
        count = Counter(e["file"] for e in oc)

        # -- every name counted -------------------------------------------
        missing = sorted(set(want) - set(count))
        extra = sorted(set(count) - set(want))
        dups = {k: n for k, n in count.items() if n > 1}
        seen_ignored = sorted(set(count) & ignored)
        by_event = Counter(e["event"] for e in oc)
        corrupt = [(want[e["file"]], e) for e in oc
                   if "mutation" in want.get(e["file"], {})]
        by_fmt = Counter((m["format"], e["event"]) for m, e in corrupt)
        by_mut = Counter((m["mutation"].rstrip("0123456789h"), e["event"])
                         for m, e in corrupt)
        flat = next((e for e in oc if e["file"] == "big/flat-16000.png"),
                    None)
        print(f"hostile: {len(entries)} fixtures ({len(want)} to pick up, "
              f"{len(ignored)} ignored) generated in {gen_s:.1f}s; "
              f"outcomes in {took:.1f}s: {dict(by_event)}; "
              f"missing {len(missing)}, extra {len(extra)}, "
              f"duplicates {len(dups)}")
        for title, c in (("format", by_fmt), ("mutation", by_mut)):
            keys = sorted({k for k, _ in c})
            print(f"hostile: corrupted variants by {title} (done/failed): "
                  + ", ".join(f"{k} {c[(k, 'done')]}/{c[(k, 'failed')]}"
                              for k in keys))
        if flat:
            print(f"hostile: 16000x16000 flat PNG: {flat['event']} in "
                  f"{flat.get('ms')} ms (worker time)")
        print(f"hostile: peak VmHWM supervisor "
              f"{sampler.peak.get(d.pid, 0) >> 10} MiB, workers "
              f"{sampler.workers_peak() >> 10} MiB; "
              f"{len(sampler.peak) - 1} worker pids seen")
        assert not missing, f"no outcome line for {missing}"
        assert not extra, f"outcome lines for names never dropped: {extra}"
        assert not dups, f"several outcome lines: {dups}"
        assert not seen_ignored, f"ignored names were picked up: " \
            f"{seen_ignored}"

        # -- each outcome as expected ---------------------------------------
        wrong = []
        for e in oc:
            m = want[e["file"]]
            if e["event"] == "failed":
                assert_clear_error(e)
                for w in ([m["error"]] if m.get("error") else []):
                    if w not in e["error"]:
                        wrong.append(f"{e['file']!r}: {w!r} not in "
                                     f"{e['error']!r}")
            if m["expect"] in ("done", "failed") and \
                    e["event"] != m["expect"]:
                wrong.append(f"{m['kind']} {e['file']!r}: expected "
                             f"{m['expect']}, got {e}")
            if e["event"] == "done" and m.get("size"):
                if [e["width"], e["height"]] != m["size"]:
                    wrong.append(f"{e['file']!r}: size {e['width']}x"
                                 f"{e['height']}, expected {m['size']}")
        # a file cut short before its last few bytes fails now (fail_on):
        # it is made when it is written again, complete
        for m, e in corrupt:
            if m["mutation"].startswith("trunc") and \
                    m["size_now"] < m["size_of_valid"] - 32 and \
                    e["event"] != "failed":
                wrong.append(f"truncated {m['size_now']} of "
                             f"{m['size_of_valid']} bytes, yet {e}")
        assert not wrong, "\n".join(wrong)

        # -- every thumbnail of a done file is there and valid -------------
        done = {os.fsencode(m["path"]): m for f_, m in want.items()
                if count.get(f_) and next(e for e in oc if e["file"] == f_)
                ["event"] == "done"}
        info = check_thumbnails(d, list(done))
        for rel, m in done.items():
            w, h, bands, loader = info[rel]
            assert loader == "jpegload" and w <= 300 and h <= 300, \
                (rel, info[rel])
            if m.get("size"):
                assert fits((w, h), m["size"]), (rel, info[rel], m["size"])
        # ... and nothing else is in the output tree
        outs = output_files(d.output)
        assert outs == {thumb_of(r) for r in done}, \
            f"unexpected outputs: {sorted(outs - {thumb_of(r) for r in done})}"
        assert not temp_leftovers(d.output), temp_leftovers(d.output)

        # -- nothing fetched, nothing written outside the output tree -------
        assert not listener.hits, \
            f"an SVG reference was fetched: {listener.hits}"
        assert diff_snap(before, snapshot(tmp_path, skip)) == [], \
            "written outside the output tree"
        after_in = snapshot(d.input)
        assert diff_snap(before_stage, after_in) == [], \
            "the input tree changed"
        if not pwned_before:
            assert not os.path.exists("/tmp/pwned")

        # -- alive, memory bounded ----------------------------------------
        assert d.alive()
        sup = proc_status(d.pid)
        print(f"hostile: supervisor now VmRSS {sup['VmRSS'] >> 10} MiB, "
              f"VmHWM {sup['VmHWM'] >> 10} MiB")
        if not ASAN:
            assert sup["VmHWM"] < SUPERVISOR_MAX_KB, sup
            assert sampler.workers_peak() < WORKER_MAX_KB, sampler.peak
        # a decoder that crashes its worker is legitimate; its file must
        # then end as poison, and the pool must be whole again
        exited = d.by_event("worker_exited")
        poison = [e["file"] for e in oc if e["event"] == "failed" and
                  "poison" in e["error"]]
        print(f"hostile: workers exited {len(exited)}, poison {poison}")
        assert len(exited) <= 2 * len(poison), (exited, poison)
        assert len(d.live_workers()) == 2, d.live_workers()
        d.stop()
    finally:
        if sampler:
            sampler.stop()
        listener.close()
        f.teardown(report=False)


# --------------------------------------------------------------------------
# SVG with its loader enabled


def band_deviations(image, scratch):
    """Standard deviation of each band of image (vips stats)."""
    r = subprocess.run(["vips", "stats", str(image), str(scratch)],
                       capture_output=True)
    assert r.returncode == 0, r.stderr
    rows = Path(scratch).read_text().splitlines()[2:]   # header, all bands
    return [float(row.split()[5]) for row in rows]


def test_svg_external_references_are_not_fetched(daemons, tmp_path):
    """With svg in EXTENSIONS, librsvg renders the SVGs: none of their
    references (file:///etc/passwd, a file outside the tree, http to a
    port we listen on, CSS @import, XInclude, external XML entities) is
    read or fetched; each file ends done (references dropped) or failed."""
    listener = Listener()
    listener.start()
    outside = tmp_path / "outside"
    outside.mkdir()
    write_file(outside / "secret.png", hostile.flat_png(64, 64,
                                                        (250, 250, 0)))
    try:
        d = daemons.start(args=["--extensions", "jpg,svg"])
        files = []
        for name, text in hostile.svg(listener.port, outside).items():
            for rel in (f"{name}.svg", f"{name}-svg.jpg"):
                write_file(d.input / rel, text.encode())
                files.append(rel)
        got = d.wait_outcomes(files)
        d.quiet(1.0)
        for rel in files:
            e = d.outcomes(rel)
            assert len(e) == 1, e
            e = e[0]
            if e["event"] == "failed":
                assert_clear_error(e)
                continue
            assert e["event"] == "done", e
            thumb = d.output / (rel.rsplit(".", 1)[0] + "_thumb.jpg")
            assert image_info(thumb)[:2] == (64, 64)
            # one flat colour: nothing from /etc/passwd (text) or the
            # outside image (yellow) was drawn over the blue rectangle
            sd = band_deviations(thumb, tmp_path / "stats.mat")
            assert max(sd) < 2.0, \
                f"{rel}: the thumbnail is not flat: something external " \
                f"was drawn (deviation per band {sd})"
        assert not listener.hits, f"fetched: {listener.hits}"
        print("svg: " + ", ".join(f"{k}={v['event']}"
                                  for k, v in sorted(got.items())))
    finally:
        listener.close()


# --------------------------------------------------------------------------
# races: deleted or replaced between detection and decode


def busy_workers(d, n=2, side=8000):
    """Gives each of n workers a flat PNG that takes a while to decode
    (PNG has no shrink-on-load); returns their names."""
    data = hostile.flat_png(side, side, (10, 120, 200))
    names = [f"busy{i}.png" for i in range(n)]
    for name in names:
        write_file(d.input / name, data)
    return names


def test_deleted_between_detection_and_decode(daemons):
    d = daemons.start(workers=2)
    data = jpeg_bytes(640, 480)
    busy = busy_workers(d)
    time.sleep(0.2 * SCALE)
    # wave 1: every other file deleted as soon as it is written
    w1 = [f"w1-{i:02}.jpg" for i in range(50)]
    for i, n in enumerate(w1):
        write_file(d.input / n, data)
        if i % 2:
            os.unlink(d.input / n)
    # wave 2: all written, seen and queued (the workers are busy), then
    # every other one deleted
    w2 = [f"w2-{i:02}.jpg" for i in range(50)]
    for n in w2:
        write_file(d.input / n, data)
    time.sleep(0.2 * SCALE)
    for i, n in enumerate(w2):
        if i % 2:
            os.unlink(d.input / n)
    kept = busy + w1[::2] + w2[::2]
    d.wait_outcomes(kept + w2[1::2], timeout=TIMEOUT * 2)
    d.quiet(1.0)
    count = Counter(e["file"] for e in d.outcomes())
    assert not {k: v for k, v in count.items() if v > 1}, count
    for n in kept:
        d.assert_one_outcome(n, "done")
    silent = []
    for n in w1[1::2] + w2[1::2]:
        oc = d.outcomes(n)
        if not oc:
            silent.append(n)
            continue
        e = oc[0]
        assert e["event"] in ("skipped", "failed", "done"), e
        if e["event"] == "failed":
            assert_clear_error(e)
        # no thumbnail outlives its deleted source
        assert not (d.output / (n[:-4] + "_thumb.jpg")).exists(), n
    # deleted after the daemon had seen them: never silent
    assert not set(silent) & set(w2), f"no outcome line: {silent}"
    reasons = Counter((e["event"], e.get("reason", e.get("error")))
                      for n in w1[1::2] + w2[1::2] for e in d.outcomes(n))
    print(f"deleted: {len(silent)} of 25 deleted at once never seen "
          f"(no line); {dict(reasons)}")
    assert d.alive()


def test_deleted_while_decoding_leaves_no_thumbnail(daemons):
    d = daemons.start(workers=1)
    write_file(d.input / "slow.png",
               hostile.flat_png(8000, 8000, (90, 90, 90)))
    time.sleep(0.3)
    gone = time.time()
    os.unlink(d.input / "slow.png")
    e = d.wait_outcome("slow.png")
    ts = datetime.datetime.strptime(e["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")
    if ts.replace(tzinfo=datetime.timezone.utc).timestamp() < gone:
        pytest.skip("made before the delete: this machine is too fast")
    d.quiet(1.0)
    assert len(d.outcomes("slow.png")) == 1
    assert not (d.output / "slow_thumb.jpg").exists(), \
        f"thumbnail of a deleted source left behind ({e})"


def test_replaced_between_detection_and_decode(daemons, tmp_path):
    """A file replaced (rename over it) at once, or while queued, or
    while being decoded: it ends done with the final content's size.
    The replacement is an older photo (mv of a file kept with its date):
    a different mtime, in the past."""
    d = daemons.start(workers=2)
    stage = tmp_path / "stage"
    stage.mkdir()
    first = hostile.flat_png(3000, 2000, (200, 200, 0))
    final = jpeg_bytes(600, 200)
    past = (int(time.time()) - 86400) * 10**9
    names = [f"r{i:02}.png" for i in range(20)]
    busy_workers(d, 1, 6000)
    for i, n in enumerate(names):
        write_file(stage / n, final, mtime_ns=past + i)
        write_file(d.input / n, first)
        time.sleep((i % 5) * 0.04 * SCALE)
        os.rename(stage / n, d.input / n)
    d.wait_outcomes(names, timeout=TIMEOUT * 2)

    def settled(_ev):
        for n in names:
            oc = d.outcomes(n)
            if not oc or (oc[-1]["event"], oc[-1].get("width")) != \
                    ("done", 600):
                return False
        return True
    d.wait_for(settled, what="every replaced file done with its final "
               "content")
    d.quiet(1.0)
    lines = Counter(e["file"] for e in d.outcomes() if e["file"] in names)
    for n in names:
        oc = d.outcomes(n)
        assert 1 <= len(oc) <= 2, oc      # one per version seen
        assert (oc[-1]["width"], oc[-1]["height"]) == (600, 200), oc
        assert image_info(d.output / (n[:-4] + "_thumb.jpg"))[:2] == \
            (300, 100), n
    print(f"replaced: outcome lines per file {dict(Counter(lines.values()))}")


def test_replaced_by_a_file_with_the_same_mtime(daemons, tmp_path):
    d = daemons.start(workers=2)
    stage = tmp_path / "stage"
    stage.mkdir()
    first = hostile.flat_png(8000, 6000, (200, 200, 0))
    final = jpeg_bytes(600, 200)
    # (1) replaced while its first version is being decoded
    write_file(d.input / "busy.png", first)
    mt = os.stat(d.input / "busy.png").st_mtime_ns
    write_file(stage / "busy.png", final, mtime_ns=mt)
    time.sleep(0.3)
    os.rename(stage / "busy.png", d.input / "busy.png")
    # (2) replaced after its first version was made
    write_file(d.input / "later.png", jpeg_bytes(320, 240))
    d.wait_done("later.png")
    mt = os.stat(d.input / "later.png").st_mtime_ns
    write_file(stage / "later.png", final, mtime_ns=mt)
    os.rename(stage / "later.png", d.input / "later.png")
    d.wait_outcome("busy.png", timeout=TIMEOUT * 2)
    d.quiet(1.5)
    bad = []
    for n in ("busy.png", "later.png"):
        size = image_info(d.output / (n[:-4] + "_thumb.jpg"))[:2]
        if size != (300, 100):
            bad.append(f"{n}: thumbnail {size} is of the replaced "
                       f"content; lines {d.outcomes(n)}")
    assert not bad, "\n".join(bad)


# --------------------------------------------------------------------------
# names too long for their thumbnails, paths too long to watch


LONG = "a" * 251 + ".jpg"           # 255 bytes: <stem>_thumb.jpg is 261


def test_thumbnail_name_too_long_fails_once(daemons):
    d = daemons.start(args=["--retry-interval-s", "1"])
    write_file(d.input / LONG, jpeg_bytes(320, 240))
    e = d.wait_outcome(LONG)
    assert e["event"] == "failed", e
    assert_clear_error(e)
    d.quiet(3.5)
    assert len(d.outcomes(LONG)) == 1, \
        f"{len(d.outcomes(LONG))} outcome lines for one file"


def test_error_with_a_long_path_keeps_its_reason(daemons):
    d = daemons.start(args=["--retry-interval-s", "3600"])
    write_file(d.input / LONG, jpeg_bytes(320, 240))
    e = d.wait_outcome(LONG)
    assert e["event"] == "failed", e
    assert "too long" in e["error"].lower(), e["error"]


def test_path_longer_than_path_max_is_reported(daemons, tmp_path):
    d = daemons.start()
    stage = tmp_path / "stage"
    stage.mkdir()
    comp = "d" * 250
    fd = os.open(stage, os.O_RDONLY)
    try:
        for i in range(18):
            os.mkdir(comp, dir_fd=fd)
            nfd = os.open(comp, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = nfd
            w = os.open(f"x{i}.jpg", os.O_WRONLY | os.O_CREAT, 0o644,
                        dir_fd=fd)
            os.write(w, jpeg_bytes(64, 48))
            os.close(w)
    finally:
        os.close(fd)
    os.rename(stage / comp, d.input / comp)
    reachable = [f"{'/'.join([comp] * (i + 1))}/x{i}.jpg" for i in range(18)
                 if len(str(d.output)) + 1 + 251 * (i + 1) + 10 < 4096]
    d.wait_outcomes(reachable)
    d.quiet(1.0)
    assert d.alive()
    said = [e for e in d.events()
            if e["level"] in ("warn", "error") and e["event"] != "failed"]
    oc = {e["file"] for e in d.outcomes()}
    lost = 18 - len(oc)
    assert lost == 0 or said, \
        f"{lost} files below PATH_MAX-long folders, and no word in the log"


# --------------------------------------------------------------------------
# permissions


NOBODY = 65534


def test_unreadable_file_fails_clearly(tmp_path):
    """A file the daemon may not read (chmod 000) fails with a clear
    reason; so does an unreadable folder (a log line, no hang).  Root
    reads anything, so as root the daemon runs as nobody (setpriv)."""
    root_user = os.geteuid() == 0
    setpriv = shutil.which("setpriv")
    if root_user and not setpriv:
        pytest.skip("running as root and no setpriv to drop privileges: "
                    "root ignores file permissions")
    base = Path(tempfile.mkdtemp(prefix="tw-perm-", dir="/tmp")) \
        if root_user else tmp_path
    f = DaemonFactory(base)
    try:
        os.chmod(base, 0o755)
        for sub in ("in", "out", "logs", "run"):
            (base / sub).mkdir(exist_ok=True)
            if root_user:
                os.chown(base / sub, NOBODY, NOBODY)
        d = f.make(workers=2)
        if root_user:
            d.cmd = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}",
                     "--clear-groups", "--"] + d.cmd
        d.start()
        # stdout/stderr are opened by us; everything else as the daemon
        data = jpeg_bytes(320, 240)
        stage = base / "stage"
        stage.mkdir()
        write_file(stage / "locked.jpg", data)
        os.chmod(stage / "locked.jpg", 0)
        (stage / "locked-dir").mkdir()
        write_file(stage / "locked-dir" / "inner.jpg", data)
        os.chmod(stage / "locked-dir", 0)
        write_file(stage / "fine.jpg", data)
        for n in ("locked.jpg", "locked-dir", "fine.jpg"):
            os.rename(stage / n, d.input / n)
        e = d.wait_outcome("locked.jpg")
        assert e["event"] == "failed", e
        assert_clear_error(e)
        assert "ermission" in e["error"], e
        d.wait_done("fine.jpg")
        d.quiet(1.0)
        d.assert_one_outcome("locked.jpg", "failed")
        said = [e for e in d.events() if e["level"] in ("warn", "error")
                and "locked-dir" in str(e)]
        print(f"unreadable folder: {said}")
        assert said, "nothing said about the unreadable folder"
        assert not d.outcomes("locked-dir/inner.jpg") or \
            d.outcomes("locked-dir/inner.jpg")[0]["event"] == "failed"
        assert d.alive()
        d.stop()
    finally:
        f.teardown(report=False)
        if root_user:
            for p in (base / "in" / "locked-dir",):
                if p.exists():
                    os.chmod(p, 0o755)
            shutil.rmtree(base, ignore_errors=True)
