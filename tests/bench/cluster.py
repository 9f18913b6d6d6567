#!/usr/bin/python3
"""Scaling-out benchmark (`make bench-cluster`): what the Redis Streams
queue costs against the local queue, with 1, 2 and 3 worker processes on
this machine.

For each N: (local) one daemon with WORKERS=N; (redis) one watcher node
plus N worker nodes with WORKERS=1 each, on a redis-server of its own
(loopback, AOF everysec).  Each run drops the same COUNT JPEGs into an idle
daemon's input folder (renames from a staging folder) and measures from
the first rename to the `ts` of the last `done` line.  Median of RUNS.
Prints a Markdown table; on a 2-core machine the point is that the
protocol costs nothing measurable, not a speed-up."""

import datetime
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = os.environ.get("THUMBWATCH_BIN", str(REPO / "build" / "thumbwatch"))
COUNT = int(os.environ.get("BENCH_CLUSTER_FILES", "600"))
RUNS = int(os.environ.get("BENCH_RUNS", "3"))
SIZE = os.environ.get("BENCH_CLUSTER_SIZE", "1600x1200")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ts_of(e):
    return datetime.datetime.strptime(
        e["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def log_events(path):
    try:
        return [json.loads(x) for x in Path(path).read_text().splitlines()
                if x.strip()]
    except FileNotFoundError:
        return []


def wait_for(pred, timeout, what, logs=()):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            tails = "".join(f"\n--- {f}:\n" + "".join(
                Path(f).read_text().splitlines(True)[-5:])
                for log in logs
                for f in (log, Path(log).parent / "stderr")
                if Path(f).exists())
            sys.exit(f"bench-cluster: timed out waiting for {what}{tails}")
        time.sleep(0.05)


def start_node(root, name, inp, out, args):
    d = root / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "empty.env").write_text("")
    log = d / "tw.log"
    p = subprocess.Popen(
        [BIN, "run", "--env-file", str(d / "empty.env"), "--config",
         "/dev/null", "--input-dir", str(inp), "--output-dir", str(out),
         "--log-file", str(log), "--runtime-dir", str(d / "run"),
         "--stats-interval-s", "0", *args],
        cwd=d, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=open(d / "stderr", "wb"), start_new_session=True,
        # THUMBWATCH_BIN and the like are not settings of the daemon's
        env={k: v for k, v in os.environ.items()
             if not k.startswith("THUMBWATCH_")})
    return p, log


def one_run(kind, n, image, tmp):
    root = Path(tempfile.mkdtemp(dir=tmp))
    inp, out, stage = root / "in", root / "out", root / "stage"
    for p in (inp, stage):
        p.mkdir()
    procs, logs, redis = [], [], None
    try:
        if kind == "local":
            p, log = start_node(root, "solo", inp, out, ["--workers", str(n)])
            procs.append(p)
            logs.append(log)
            wait_for(lambda: any(e["event"] == "scan"
                                 for e in log_events(log)), 30, "start",
                     [log])
        else:
            port = free_port()
            rdir = root / "redis"
            rdir.mkdir()
            redis = subprocess.Popen(
                ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                 "--dir", str(rdir), "--appendonly", "yes", "--save", ""],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                start_new_session=True)
            url = f"redis://127.0.0.1:{port}/0"
            nodes = [("watcher", "watcher", 1)] + \
                [(f"worker{i}", "worker", 1) for i in range(n)]
            for name, role, w in nodes:
                p, log = start_node(root, name, inp, out,
                                    ["--workers", str(w), "--queue", url,
                                     "--role", role])
                procs.append(p)
                logs.append(log)
            for log in logs:
                wait_for(lambda log=log: any(
                    e["event"] == "redis_up" for e in log_events(log)),
                    30, "redis_up", [log])
        for i in range(COUNT):
            shutil.copyfile(image, stage / f"b{i:05d}.jpg")
        time.sleep(0.5)
        t0 = time.time()
        for i in range(COUNT):
            os.rename(stage / f"b{i:05d}.jpg", inp / f"b{i:05d}.jpg")

        def done():
            return sum(1 for log in logs for e in log_events(log)
                       if e["event"] in ("done", "failed", "skipped")) \
                >= COUNT
        wait_for(done, 600, f"{COUNT} outcomes", logs)
        ev = [e for log in logs for e in log_events(log)
              if e["event"] in ("done", "failed", "skipped")]
        bad = [e for e in ev if e["event"] != "done"]
        if bad or len(ev) != COUNT:
            sys.exit(f"bench-cluster: {kind} N={n}: {len(ev)} outcomes, "
                     f"not done: {bad[:3]}")
        return max(ts_of(e) for e in ev) - t0
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
        if redis is not None:
            redis.send_signal(signal.SIGTERM)
            redis.wait(10)
        shutil.rmtree(root, ignore_errors=True)


def main():
    if shutil.which("redis-server") is None:
        sys.exit("bench-cluster: redis-server is not installed "
                 "(sh tests/install-deps.sh)")
    tmp = tempfile.mkdtemp(prefix="tw-bench-cluster-")
    try:
        image = Path(tmp) / "src.jpg"
        w, h = SIZE.split("x")
        subprocess.run(["vips", "gaussnoise", str(Path(tmp) / "n.v"), w, h,
                        "--sigma", "40"], check=True)
        subprocess.run(["vips", "colourspace", str(Path(tmp) / "n.v"),
                        str(Path(tmp) / "s.v"), "srgb"], check=True)
        subprocess.run(["vips", "jpegsave", str(Path(tmp) / "s.v"),
                        str(image), "--Q", "85"], check=True)
        rows = []
        print(f"{COUNT} JPEGs of {SIZE}, median of {RUNS}, "
              f"{os.cpu_count()} cores", flush=True)
        for n in (1, 2, 3):
            t = {"local": [], "redis": []}
            for _ in range(RUNS):
                for kind in ("local", "redis"):   # interleaved
                    t[kind].append(one_run(kind, n, image, tmp))
                    print(f"  N={n} {kind}: {t[kind][-1]:.2f} s", flush=True)
            ml, mr = statistics.median(t["local"]), statistics.median(t["redis"])
            rows.append((n, ml, mr))
        print()
        print("| worker processes | local queue | Redis stream (1 watcher + N "
              "worker nodes) | Redis / local |")
        print("| ---: | ---: | ---: | ---: |")
        for n, ml, mr in rows:
            print(f"| {n} | {ml:.2f} s ({COUNT / ml:.0f}/s) | {mr:.2f} s "
                  f"({COUNT / mr:.0f}/s) | {mr / ml:.2f} |")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
