"""Torture: faults injected at random moments during bursts, every input
counted and every output checked (the Jepsen habit: no sampling).

  test_worker_kill_storm       kill -9 of a random live worker every
                               ~0.3 s for as long as a burst lasts
  test_supervisor_kill_storm   kill -9 of the supervisor 3-5 times at
                               random moments of a burst, restarted at
                               once each time, then a final restart

TORTURE_FILES sets the burst size (default 300; `make torture` uses 2000),
TORTURE_SEED the random choices (default: a fresh seed, printed so a
failure can be replayed).  Each test prints a `TORTURE ...` summary line
(visible with -s) and writes its counts to $BUILD/torture-summary.json
(BUILD defaults to build), which `make torture` prints."""

import json
import os
import random
import re
import signal
import threading
import time
from collections import Counter

import pytest

from conftest import (OUTCOMES, REPO, SCALE, TIMEOUT, check_line,
                      child_pids, process_group,
                      drop_atomic, images_info, jpeg_bytes, jpeg_complete,
                      parse_log, pid_alive, png_bytes, temp_leftovers, tree,
                      vips, write_file)

N = int(os.environ.get("TORTURE_FILES") or 300)
SEED = int(os.environ.get("TORTURE_SEED") or
           int.from_bytes(os.urandom(4), "little"))
SUMMARY = REPO / (os.environ.get("BUILD") or "build") / "torture-summary.json"
WORKERS = 2


def record(name, counts):
    """Prints the counts and merges them into SUMMARY."""
    counts = dict(counts, seed=SEED, files=counts.get("files", N))
    print("TORTURE " + name + " " + " ".join(f"{k}={v}"
                                              for k, v in counts.items()))
    try:
        old = json.loads(SUMMARY.read_text()) if SUMMARY.exists() else {}
    except ValueError:
        old = {}
    old[name] = counts
    try:
        SUMMARY.parent.mkdir(parents=True, exist_ok=True)
        SUMMARY.write_text(json.dumps(old, indent=1) + "\n")
    except OSError:
        pass


def children(pid):
    """Live child pids of pid (its workers)."""
    return [k for k in child_pids(pid) if pid_alive(k)]


def group(pgid):
    """Live (not zombie) processes in process group pgid."""
    return process_group(pgid)


def burst_files(n, rng):
    """n relative names over a few folders, JPEG and PNG mixed."""
    files = []
    for i in range(n):
        sub = f"d{i % 5}/" if i % 3 else ""
        ext = "png" if rng.random() < 0.3 else "jpg"
        files.append(f"{sub}f{i:05d}.{ext}")
    return files


def templates():
    """Inputs that take a little while to decode, so kills land
    mid-image: JPEG shrinks on load, PNG does not."""
    return {"jpg": jpeg_bytes(1600, 1200), "png": png_bytes(800, 600)}


def thumb(rel):
    return rel.rsplit(".", 1)[0] + "_thumb.jpg"


def check_thumbnails(out, files):
    """Every thumbnail exists, is a complete JPEG of the right size."""
    paths = [out / thumb(f) for f in files]
    info = images_info(paths)
    bad = []
    for p in paths:
        w, h, _bands, loader = info[os.fsencode(p)]
        if (w, h, loader) != (300, 225, "jpegload"):
            bad.append(f"{p}: {w}x{h} {loader}")
        elif not jpeg_complete(p.read_bytes()):
            bad.append(f"{p}: not a complete JPEG")
    assert not bad, "\n".join(bad[:20])


def no_temps(out):
    """No temp file anywhere in the output tree, state folder included."""
    bad = list(temp_leftovers(out))
    for d, _dirs, files in os.walk(out):
        bad += [os.path.join(d, f) for f in files if ".tw-" in f]
    return sorted(set(bad))


def segment(log, start, end=None):
    """The checked log lines between byte offsets start and end."""
    with open(log, "rb") as f:
        f.seek(start)
        data = f.read() if end is None else f.read(end - start)
    lines = data.split(b"\n")
    tail = lines.pop()
    assert not tail, f"{log}: a torn line at the end of a run: {tail!r}"
    return [check_line(raw, f"{log}@{start}") for raw in lines]


# --------------------------------------------------------------------------
# (a) workers killed at random during a burst


def test_worker_kill_storm(daemons):
    rng = random.Random(SEED)
    d = daemons.start(workers=WORKERS)
    d.wait_for(lambda ev: len(children(d.pid)) == WORKERS,
               what=f"{WORKERS} workers")
    data = templates()
    files = burst_files(N, rng)

    kills = []
    halt = threading.Event()

    def killer():
        krng = random.Random(SEED + 1)
        while not halt.wait(krng.uniform(0.2, 0.4)):
            kids = children(d.pid)
            if not kids:
                continue
            victim = krng.choice(kids)
            try:
                os.kill(victim, signal.SIGKILL)
                kills.append(victim)
            except ProcessLookupError:
                pass

    t0 = time.monotonic()
    k = threading.Thread(target=killer, daemon=True)
    k.start()
    try:
        for rel in files:
            write_file(d.input / rel, data[rel.rsplit(".", 1)[1]])
        d.wait_outcomes(files, timeout=TIMEOUT * 2 + N * 0.3 * SCALE)
    finally:
        halt.set()
        k.join(5)
    took = time.monotonic() - t0
    d.quiet(1.0)

    oc = d.outcomes()
    count = Counter(e["file"] for e in oc)
    dups = {f: n for f, n in count.items() if n > 1}
    failed = [e for e in oc if e["event"] == "failed"]
    poison = [e for e in failed if "poison" in e.get("error", "")]
    # made by a worker killed after it renamed the thumbnail into place
    # but before it could report: handed out again, found up to date
    fresh = [e for e in oc if e["event"] == "skipped" and
             e.get("reason") == "up to date"]
    other = [e for e in oc if e["event"] not in ("done", "failed") and
             e not in fresh]
    crashed = [e for e in d.by_event("worker_exited")
               if e.get("signal") == signal.SIGKILL]
    summary = {
        "files": N, "outcome_lines": len(oc),
        "done": sum(e["event"] == "done" for e in oc),
        "skipped_up_to_date": len(fresh),
        "failed": len(failed), "poison": len(poison),
        "duplicates": sum(n - 1 for n in dups.values()),
        "workers_killed": len(kills), "worker_exited_lines": len(crashed),
        "seconds": round(took, 1)}
    record("worker_kill_storm", summary)
    assert set(count) == set(files), \
        f"outcome lines for names never dropped: {set(count) - set(files)}"
    assert not dups, f"several outcome lines: {dups}"
    assert len(kills) >= 3, f"only {len(kills)} kills: the burst was short"
    assert not other, other
    # A poison verdict needs two workers killed on the same file, so
    # 2 x poison <= kills always.  The killer picks its victims blindly,
    # yet it finds the same file twice more often than chance suggests:
    # the file a killed worker was on goes back to the head of the queue
    # and is taken up again about 0.2-0.3 s later (when the survivor's
    # batch ends or the replacement has started, and a fresh worker's
    # first image is slower), which is just when the next kill comes.
    # Measured: 0-1 poison from ~35 kills over 300 files, 14 and 31 from
    # 307 and 378 kills over 2000.  That is the poison rule doing its
    # job (an outside SIGKILL looks like the OOM killer's); anything else
    # failing is not.
    assert failed == poison, [e for e in failed if e not in poison]
    assert len(poison) * 2 <= len(kills)
    assert len(poison) <= max(3, len(kills) // 4), \
        f"{len(poison)} poison verdicts from {len(kills)} kills: {poison}"
    # each kill seen as a crash (a victim that was already on its way
    # out may be missed, none may be invented)
    assert len(kills) - 2 <= len(crashed) <= len(kills), \
        (len(kills), crashed)

    # the pool is whole again: the log and /proc agree on WORKERS
    def whole(_ev):
        live = set(d.live_workers())
        for e in d.events():
            if e["event"] == "worker_recycled":
                live.discard(e["pid"])
        kids = set(children(d.pid))
        return len(kids) == WORKERS and live == kids
    d.wait_for(whole, timeout=40 * SCALE, what=f"{WORKERS} workers again")

    made = {e["file"] for e in oc if e["event"] == "done"} | \
        {e["file"] for e in fresh}
    done = [f for f in files if f in made]
    check_thumbnails(d.output, done)
    # (a poison file's thumbnail may exist: made by a worker killed
    # before it reported)
    extra = set(tree(d.output)) - {thumb(f) for f in done}
    assert extra <= {thumb(e["file"]) for e in poison}, sorted(extra)
    # the pool still works
    write_file(d.input / "after.jpg", data["jpg"])
    d.wait_done("after.jpg")
    # The supervisor removes the temp files of a worker it lost.
    left = no_temps(d.output)
    record("worker_kill_storm", dict(summary, temp_files_left=len(left)))
    assert not left, left
    d.stop()
    d.start()
    assert not no_temps(d.output), no_temps(d.output)
    if left:
        assert d.by_event("temp_cleaned"), d.describe()


# --------------------------------------------------------------------------
# (b) the supervisor killed at random during a burst, restarted each time


def test_supervisor_kill_storm(daemons, tmp_path):
    rng = random.Random(SEED)
    d = daemons.make(workers=WORKERS)
    d.start()
    data = templates()
    files = burst_files(N, rng)
    stage = tmp_path / "stage"
    nkills = rng.randint(3, 5)
    # the burst lasts about as long as the first kills take
    pace = max(0.002, min(0.02, 4.0 / N))

    def writer():
        wrng = random.Random(SEED + 2)
        for rel in files:
            body = data[rel.rsplit(".", 1)[1]]
            if wrng.random() < 0.5:
                write_file(d.input / rel, body)        # in place
            else:
                drop_atomic(d.input / rel, body, stage)  # temp + rename
            time.sleep(pace)
    w = threading.Thread(target=writer, daemon=True)
    t0 = time.monotonic()
    w.start()

    starts = [d.offset]        # log offset of each run's start
    linger = []                # seconds orphans outlived their supervisor
    restart = []               # seconds from kill to the new scan line
    watchers = []

    def watch_orphans(pgid, since, out):
        """Polls the killed supervisor's process group until it is
        empty: its workers must exit on EOF."""
        deadline = since + 15 * SCALE
        while group(pgid) and time.monotonic() < deadline:
            time.sleep(0.01)
        out.append((pgid, group(pgid), round(time.monotonic() - since, 2)))

    for k in range(nkills):
        time.sleep(rng.uniform(0.3, 2.0) * SCALE)
        old = d.pid
        d.kill9()
        killed_at = time.monotonic()
        t = threading.Thread(target=watch_orphans,
                             args=(old, killed_at, linger), daemon=True)
        t.start()
        watchers.append(t)
        if k == nkills - 1:
            # before the last restart: the burst is over and the old
            # workers are gone, so what is missing now is exactly what
            # the final run must make
            w.join(120)
            assert not w.is_alive(), "the writer is stuck"
            t.join(20 * SCALE)
        else:
            d.start()
            restart.append(round(time.monotonic() - killed_at, 2))
            starts.append(d.offset)
    for t in watchers:
        t.join(20 * SCALE)
    survivors = [(pg, left) for pg, left, _ in linger if left]
    assert not survivors, f"workers outlived their supervisor: {survivors}"

    # the final restart
    missing = sorted(f for f in files if not (d.output / thumb(f)).exists())
    d.start()
    starts.append(d.offset)
    outs = [d.output / thumb(f) for f in files]
    d.wait_for(lambda ev: all(p.exists() for p in outs),
               timeout=TIMEOUT * 2 + N * 0.2 * SCALE,
               what="every thumbnail after the final restart")
    d.quiet(1.5)
    final_ev = d.events()
    scan = next(e for e in final_ev if e["event"] == "scan")
    final_oc = [e for e in final_ev if e["event"] in OUTCOMES]
    took = time.monotonic() - t0
    d.stop()
    end = d.log.stat().st_size

    # one more start over the finished tree: nothing to do
    d.start()
    idle = d.by_event("scan")[0]
    d.quiet(1.0)
    assert d.outcomes() == [], d.outcomes()
    assert idle["queued"] == 0 and idle["uptodate"] == len(files), idle
    d.stop()

    # ---- the whole log, every run --------------------------------------
    parse_log(d.log, 0, allow_partial=False)        # no torn line anywhere
    runs = [segment(d.log, a, b) for a, b in
            zip(starts, starts[1:] + [end])]
    per_run_dups = []
    made_in = {}                     # file -> runs with a done line
    lines = 0
    for i, ev in enumerate(runs):
        oc = [e for e in ev if e["event"] in OUTCOMES]
        lines += len(oc)
        c = Counter(e["file"] for e in oc)
        per_run_dups += [(i, f, n) for f, n in c.items() if n > 1]
        for e in oc:
            if e["event"] == "done":
                made_in.setdefault(e["file"], []).append(i)
    cross_dups = {f: r for f, r in made_in.items() if len(r) > 1}
    failed = [e for ev in runs for e in ev if e["event"] == "failed"]
    cleaned = sum(int((re.search(r"\d+", e.get("message", "")) or
                       re.search("1", "1")).group())
                  for ev in runs for e in ev if e["event"] == "temp_cleaned")
    redone = sorted(e["file"] for e in final_oc if e["event"] == "done")
    record("supervisor_kill_storm", {
        "files": N, "supervisor_kills": nkills, "runs": len(runs),
        "outcome_lines": lines, "done_lines": sum(map(len,
                                                      made_in.values())),
        "failed_lines": len(failed),
        "duplicates_within_a_run": len(per_run_dups),
        "made_in_two_runs": len(cross_dups),
        "made_without_a_line": len(set(files) - set(made_in)),
        "missing_before_final_run": len(missing),
        "redone_by_final_run": len(redone),
        "temp_cleanups": cleaned,
        "orphan_linger_s_max": max(s for _, _, s in linger),
        "restart_s_max": max(restart, default=0),
        "seconds": round(took, 1)})

    assert not per_run_dups, f"done twice in one run: {per_run_dups[:10]}"
    assert not cross_dups, \
        f"made again in a later run although its thumbnail was there: " \
        f"{dict(list(cross_dups.items())[:10])}"
    assert not failed, failed[:10]
    # the final run re-does exactly what was missing, nothing else
    assert redone == missing, \
        f"final run: redone but not missing " \
        f"{sorted(set(redone) - set(missing))[:10]}, missing but not " \
        f"redone {sorted(set(missing) - set(redone))[:10]}"
    assert all(e["event"] == "done" for e in final_oc), \
        [e for e in final_oc if e["event"] != "done"]
    assert scan["files"] == len(files), scan
    # ---- every output --------------------------------------------------
    check_thumbnails(d.output, files)
    assert sorted(tree(d.output)) == sorted(thumb(f) for f in files)
    assert not no_temps(d.output), no_temps(d.output)


# --------------------------------------------------------------------------
# a worker killed while it writes a thumbnail


BIG_PNG = """\
[preset big]
width = 7000
height = 7000
format = png
"""


def test_worker_killed_mid_write_leaves_no_temp(daemons, tmp_path):
    d = daemons.start(workers=1, ini=BIG_PNG)
    src = tmp_path / "big.jpg"
    vips("black", f"{src}[Q=50]", 7000, 7000, "--bands", 3)
    os.rename(src, d.input / "big.jpg")
    deadline = time.monotonic() + TIMEOUT
    temps = []
    while not temps:
        assert time.monotonic() < deadline, "never saw the temp file"
        temps = [f for f in os.listdir(d.output) if ".tw-" in f]
        time.sleep(0.002)
    for pid in children(d.pid):
        os.kill(pid, signal.SIGKILL)
    d.wait_event("worker_exited")
    d.wait_done("big.jpg", timeout=TIMEOUT * 2)
    d.quiet(0.5)
    assert not no_temps(d.output), \
        f"temp files of the killed worker, daemon still running: " \
        f"{no_temps(d.output)} (seen while writing: {temps})"
