#!/usr/bin/python3
"""Times `thumbwatch once` on a copied corpus: wall, CPU of the whole
process tree (user+sys of the children, from getrusage), cores busy
(CPU / wall) and, from the log, the time from the `start` line to the
first `done` and the start-up `scan` line's settling/queued counts.

  once_tail.py BIN[,BIN2...] CORPUS [--n N] [--runs 5] [--workers 2] [--fresh]

Several binaries run interleaved (A B A B ...) so that a machine shared
with other work weighs on each alike.

--n N takes the first N files of CORPUS (sorted by name).  --fresh copies
with new mtimes (what `cp -r` gives: the start-up walk sees files younger
than SETTLE_MS); without it the copy keeps the corpus' mtimes, so settling
plays no part.  Prints one line per run and the medians.
"""

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime


def ts(e):
    return datetime.fromisoformat(e["ts"].replace("Z", "+00:00")).timestamp()


def one(args, binary, files, tmp):
    inp, out = os.path.join(tmp, "in"), os.path.join(tmp, "out")
    log = os.path.join(tmp, "tw.log")
    for p in (inp, out):
        shutil.rmtree(p, ignore_errors=True)
    if os.path.exists(log):
        os.unlink(log)
    os.makedirs(inp)
    os.makedirs(out)
    for f in files:
        dst = os.path.join(inp, os.path.basename(f))
        if args.fresh:
            shutil.copyfile(f, dst)
        else:
            shutil.copy2(f, dst)
    env = os.path.join(tmp, "empty.env")
    open(env, "w").close()
    ini = os.path.join(tmp, "tw.ini")
    open(ini, "w").close()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    subprocess.run([binary, "once", "--config", ini, "--env-file", env,
                    "--input-dir", inp, "--output-dir", out,
                    "--log-file", log, "--workers", str(args.workers)],
                   check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + \
        (after.ru_stime - before.ru_stime)
    ev = [json.loads(ln) for ln in open(log)]
    start = next(e for e in ev if e["event"] == "start")
    done = [e for e in ev if e["event"] == "done"]
    scan = next((e for e in ev if e["event"] == "scan"), {})
    assert len(done) == len(files), (len(done), len(files))
    first = min(ts(e) for e in done) - ts(start)
    return wall, cpu, first, scan.get("settling"), scan.get("queued")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("bin")
    ap.add_argument("corpus")
    ap.add_argument("--n", type=int, default=0)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--fresh", action="store_true")
    args = ap.parse_args()
    files = sorted(os.path.join(args.corpus, f)
                   for f in os.listdir(args.corpus))
    if args.n:
        files = files[:args.n]
    bins = args.bin.split(",")
    rows = {b: [] for b in bins}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            for b in bins:
                r = one(args, b, files, tmp)
                rows[b].append(r)
                print("%s run %d: wall %.2f s  cpu %.2f s  cores %.2f  "
                      "first done %.3f s  scan settling %s queued %s" %
                      (b, i + 1, r[0], r[1], r[1] / r[0], r[2], r[3], r[4]),
                      flush=True)
    for b in bins:
        med = [statistics.median(r[k] for r in rows[b]) for k in range(3)]
        cores = statistics.median(r[1] / r[0] for r in rows[b])
        print("%s median of %d (%d files, %d workers%s): wall %.2f s  "
              "cpu %.2f s  cores busy %.2f  first done %.3f s" %
              (b, args.runs, len(files), args.workers,
               ", fresh copy" if args.fresh else "", med[0], med[1], cores,
               med[2]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
