#!/usr/bin/env python3
"""The container test's checks (tests/container/run.sh builds the images
and sets up podman first).  Not pytest: `make test` must not pick it up.

1. One container (podman run, --network=host, HTTP on a free loopback
   port) on temporary folders, the input mounted read-only: every sample
   image, dropped before and after the start, gets its thumbnail and one
   JSON `done` line in `podman logs`; stdout holds JSON lines only; the
   processes are not root; the input stays untouched; the health check
   passes; `podman stop` drains in-flight work and the container exits 0
   within the 10 s stop timeout.
2. compose.yaml with podman-compose: the input is mounted read-only, the
   output writable, dropped files are done.
3. compose.cluster.yaml with podman-compose: Redis, a watcher with the
   upload page on a published loopback port, 3 worker containers; files
   dropped (and one uploaded) are each done exactly once across the
   workers, by more than one of them; then everything is torn down
   (containers, network, volume).

Prints one "ok"/"not ok" line per check, then "N passed, N failed"."""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"
UID = 1000          # the image's user
THUMB_BOX = 300     # the shipped preset "thumb": 300x300 inside, JPEG
STOP_TIMEOUT = 10   # docker's and podman's default

passed = failed = 0


def check(ok, what, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print(f"ok - {what}", flush=True)
    else:
        failed += 1
        print(f"not ok - {what}" + (f"\n    {detail}" if detail else ""),
              flush=True)
    return ok


def run(*args, timeout=120, env=None, cwd=None):
    try:
        return subprocess.run([str(a) for a in args], capture_output=True,
                              text=True, timeout=timeout, env=env, cwd=cwd,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        return subprocess.CompletedProcess(e.cmd, 124, e.stdout or "",
                                           f"timed out after {timeout}s")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def container_log(name):
    """(records, bad lines) of a container's standard output."""
    r = run("podman", "logs", name, timeout=30)
    recs, bad = [], []
    for line in r.stdout.splitlines():
        try:
            obj = json.loads(line)
            if not (isinstance(obj, dict) and obj.get("ts")
                    and obj.get("level") and obj.get("event")):
                raise ValueError("no ts/level/event")
            recs.append(obj)
        except ValueError:
            bad.append(line)
    return recs, bad


def wait_for(pred, timeout, step=0.25):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)


def drop(src, dst):
    """Copies src to dst the way an uploader should: a temp name, then a
    rename, so the watcher sees the whole file at once."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.parent / f".{dst.name}.part"
    shutil.copyfile(src, tmp)
    os.rename(tmp, dst)


def image_size(path):
    r = run("vipsheader", "-f", "width", path)
    r2 = run("vipsheader", "-f", "height", path)
    if r.returncode or r2.returncode:
        return None
    return int(r.stdout), int(r2.stdout)


def jpeg_complete(path):
    data = Path(path).read_bytes()
    return data[:2] == b"\xff\xd8" and data.rstrip(b"\0")[-2:] == b"\xff\xd9"


def thumb_name(rel):
    p = Path(rel)
    return str(p.parent / f"{p.stem}_thumb.jpg").removeprefix("./")


def listing(root):
    return sorted(str(p.relative_to(root)) for p in Path(root).rglob("*"))


def temp_leftovers(root):
    bad = []
    for d, dirs, files in os.walk(root):
        dirs[:] = [x for x in dirs if not x.startswith(".")]
        bad += [os.path.join(d, f) for f in files
                if f.startswith(".") or f.endswith(".tmp")]
    return bad


def outcome_counts(recs):
    return Counter(r["file"] for r in recs
                   if r["event"] in ("done", "failed", "skipped"))


def check_thumbs(out, files, what):
    bad = []
    for f in files:
        t = out / thumb_name(f)
        size = image_size(t) if t.is_file() else None
        if size is None or max(size) > THUMB_BOX or not jpeg_complete(t):
            bad.append(f"{t}: {size}")
    check(not bad, f"{what}: every thumbnail is a whole JPEG within "
          f"{THUMB_BOX}x{THUMB_BOX}", "; ".join(bad[:5]))


def make_big_pngs(work, n):
    """n grey-noise PNGs of 2400x2400: slow enough to decode that some
    are in flight when the container is stopped."""
    noise = work / "noise.png"
    r = run("vips", "gaussnoise", work / "noise.v", 2400, 2400, "--mean",
            128, "--sigma", 50)
    if r.returncode == 0:
        r = run("vips", "cast", work / "noise.v", noise, "uchar")
    if r.returncode:
        return []
    return [noise] * n


# ---- 1. one container ------------------------------------------------------

def single(image, work):
    root = work / "single"
    inp, out = root / "in", root / "out"
    inp.mkdir(parents=True)
    out.mkdir()
    os.chown(out, UID, UID)
    samples = sorted(p for p in SAMPLES.iterdir() if p.is_file())
    before = [p.name for p in samples]
    for p in samples:
        shutil.copyfile(p, inp / p.name)
    r = run("podman", "image", "inspect", image)
    try:
        info = json.loads(r.stdout)[0]
    except (ValueError, IndexError):
        info = {}
    cfg = info.get("Config") or {}
    envs = dict(e.split("=", 1) for e in cfg.get("Env") or [] if "=" in e)
    drain_ms = int(envs.get("THUMBWATCH_DRAIN_TIMEOUT_MS", "30000"))
    check(cfg.get("StopSignal") == "SIGTERM" and drain_ms <= 9000
          and envs.get("THUMBWATCH_LOG_FILE") == "-",
          "image: STOPSIGNAL SIGTERM, DRAIN_TIMEOUT_MS within the 10 s stop "
          "timeout, log on stdout", f"{cfg.get('StopSignal')} {envs}")
    hc = (info.get("Healthcheck") or cfg.get("Healthcheck") or {}).get(
        "Test") or []
    check("status" in hc, "image: HEALTHCHECK runs thumbwatch status "
          "(built with --format docker)", str(hc))
    port = free_port()
    name = f"thumbwatch-ct-{os.getpid()}"
    try:
        r = run("podman", "run", "-d", "--name", name, "--network=host",
                "-e", f"THUMBWATCH_HTTP_LISTEN=127.0.0.1:{port}",
                "-v", f"{inp}:/data/input:ro", "-v", f"{out}:/data/output",
                image)
        if not check(r.returncode == 0, "podman run starts the container",
                     r.stderr.strip()):
            return
        started = wait_for(lambda: any(
            e["event"] == "scan" for e in container_log(name)[0]), 30)
        recs, _ = container_log(name)
        check(started, "the JSON start and scan lines are in podman logs",
              run("podman", "logs", name).stderr[-2000:])
        st = [e for e in recs if e["event"] == "start"]
        check(len(st) == 1 and st[0].get("input_dir") == "/data/input"
              and st[0].get("output_dir") == "/data/output",
              "start line names /data/input and /data/output", str(st))

        later = [f"later/{p.name}" for p in samples]
        for p in samples:
            drop(p, inp / "later" / p.name)
        files = before + later
        input_before = listing(inp)
        wait_for(lambda: len(set(files) & set(outcome_counts(
            container_log(name)[0]))) == len(files), 60)
        time.sleep(0.5)
        recs, bad = container_log(name)
        check(not bad, "standard output holds JSON lines only", str(bad[:3]))
        oc = outcome_counts(recs)
        done = Counter(e["file"] for e in recs if e["event"] == "done")
        check(all(oc[f] == 1 and done[f] == 1 for f in files),
              f"each of the {len(files)} files has exactly one line, `done`",
              str({f: oc[f] for f in files if oc[f] != 1 or done[f] != 1})
              + " " + str([e for e in recs if e["event"] == "failed"][:3]))
        logged = {e["file"]: e.get("outputs") for e in recs
                  if e["event"] == "done"}
        check(all(logged.get(f) == [thumb_name(f)] for f in files),
              "each done line names its thumbnail",
              str({f: logged.get(f) for f in files
                   if logged.get(f) != [thumb_name(f)]}))
        check_thumbs(out, files, "single container")

        top = run("podman", "top", name, "user", "huser", "comm")
        users = [ln.split() for ln in top.stdout.splitlines()[1:] if ln]
        check(len(users) >= 2 and all(u[0] != "root" and u[1] != "0"
                                      and u[1] != "root" for u in users),
              "no process in the container runs as root (supervisor and "
              "workers)", top.stdout + top.stderr)
        r = run("podman", "exec", name, "id", "-u")
        check(r.stdout.strip() == str(UID), f"the image's user is uid {UID}",
              r.stdout + r.stderr)
        r = run("podman", "exec", name, "sh", "-c",
                "touch /data/input/probe")
        check(r.returncode != 0, "the input is mounted read-only")
        check(listing(inp) == input_before,
              "the daemon wrote nothing into the input folder",
              str(set(listing(inp)) ^ set(input_before)))

        r = run("podman", "healthcheck", "run", name, timeout=30)
        health = run("podman", "inspect", name, "--format",
                     "{{.State.Health.Status}}").stdout.strip()
        check(r.returncode == 0 and health == "healthy",
              "the HEALTHCHECK (thumbwatch status) passes",
              f"rc={r.returncode} status={health} {r.stdout}{r.stderr}")
        r = run("podman", "exec", "-e", "THUMBWATCH_RUNTIME_DIR=/nowhere",
                name, "thumbwatch", "status")
        check(r.returncode != 0, "thumbwatch status fails with no daemon to "
              "answer (the health check can fail)")
        try:
            with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/healthz", timeout=5) as resp:
                code = resp.status
        except (urllib.error.URLError, OSError) as e:
            code = str(e)
        check(code == 200, "GET /healthz answers 200", str(code))

        # Drain: stop while big images are being made.
        big = make_big_pngs(work, 12)
        check(len(big) == 12, "made 12 large PNGs with vips")
        drain = [f"drain/n{i:02d}.png" for i in range(len(big))]
        for src, f in zip(big, drain):
            drop(src, inp / f)
        wait_for(lambda: any(e["event"] == "done" and e["file"] in drain
                             for e in container_log(name)[0]), 30, 0.05)
        t = time.monotonic()
        r = run("podman", "stop", "-t", STOP_TIMEOUT, name, timeout=60)
        took = time.monotonic() - t
        code = run("podman", "inspect", name, "--format",
                   "{{.State.ExitCode}}").stdout.strip()
        check(r.returncode == 0 and code == "0" and took < STOP_TIMEOUT - 0.5,
              f"podman stop: exit status 0 after {took:.1f}s (no SIGKILL)",
              f"stop rc={r.returncode} exit={code} {r.stderr}")
        recs, bad = container_log(name)
        ev = [e["event"] for e in recs]
        dr = [e for e in recs if e["event"] == "draining"]
        sd = [e for e in recs if e["event"] == "shutdown"]
        check(len(dr) == 1 and len(sd) == 1 and ev[-1] == "shutdown"
              and not bad, "the log ends draining ... shutdown",
              str(recs[-3:]) + str(bad[:2]))
        if dr:
            print(f"    (in flight when SIGTERM came: {dr[0].get('in_flight')},"
                  f" queued {dr[0].get('queued')})")
        done_d = [e for e in recs if e["event"] == "done"
                  and e["file"] in drain]
        check(bool(sd) and sd[0].get("done") == ev.count("done")
              and sd[0].get("in_flight") == 0,
              "shutdown counts every done line and leaves nothing in flight",
              str(sd))
        check(all((out / o).is_file() for e in done_d for o in e["outputs"])
              and not temp_leftovers(out),
              f"{len(done_d)} drained images finished whole, no temp left",
              str(temp_leftovers(out)[:3]))
        made = {thumb_name(f) for f in drain} & set(listing(out))
        check(made == {o for e in done_d for o in e["outputs"]},
              "every thumbnail on disk was logged done",
              str(made ^ {o for e in done_d for o in e["outputs"]}))
    finally:
        run("podman", "rm", "-f", "-v", name, timeout=60)


# ---- 2. compose.yaml --------------------------------------------------------

def compose_single(work):
    root = work / "compose" / "data"
    inp, out = root / "input", root / "output"
    inp.mkdir(parents=True)
    out.mkdir()
    os.chown(out, UID, UID)
    proj = f"twcs{os.getpid()}"
    env = dict(os.environ, TW_DATA=str(root))
    compose = ["podman-compose", "-p", proj, "-f", "compose.yaml"]
    label = f"label=io.podman.compose.project={proj}"
    name = None
    try:
        r = run(*compose, "up", "-d", "--no-build", env=env, cwd=REPO,
                timeout=180)
        names = run("podman", "ps", "--filter", label, "--format",
                    "{{.Names}}").stdout.split()
        if not check(r.returncode == 0 and len(names) == 1,
                     "compose.yaml: podman-compose up -d runs one container",
                     (r.stdout + r.stderr)[-3000:] + str(names)):
            return
        name = names[0]
        r = run("podman", "inspect", name, "--format", "json")
        try:
            mounts = {m["Destination"]: m["RW"]
                      for m in json.loads(r.stdout)[0]["Mounts"]}
        except (ValueError, IndexError, KeyError):
            mounts = {}
        check(mounts.get("/data/input") is False
              and mounts.get("/data/output") is True,
              "compose.yaml: input read-only, output writable", str(mounts))
        wait_for(lambda: any(e["event"] == "scan"
                             for e in container_log(name)[0]), 30)
        files = ["a.jpg", "sub/b.webp"]
        drop(SAMPLES / "landscape.jpg", inp / files[0])
        drop(SAMPLES / "photo.webp", inp / files[1])
        wait_for(lambda: set(files) <= set(outcome_counts(
            container_log(name)[0])), 30)
        recs, bad = container_log(name)
        done = Counter(e["file"] for e in recs if e["event"] == "done")
        check(all(done[f] == 1 for f in files) and not bad,
              "compose.yaml: dropped files are done, logged on stdout",
              str(done) + str(bad[:2]))
        check_thumbs(out, files, "compose.yaml")
    finally:
        r = run(*compose, "down", "-v", env=env, cwd=REPO, timeout=120)
        run("podman", "network", "rm", "-f", f"{proj}_default", timeout=60)
        left = run("podman", "ps", "-aq", "--filter", label).stdout.split()
        for n in left:
            run("podman", "rm", "-f", "-v", n, timeout=60)
        code = run("podman", "inspect", name, "--format",
                   "{{.State.ExitCode}}").returncode if name else 1
        check(r.returncode == 0 and not left and code != 0,
              "compose.yaml: podman-compose down removes the container",
              f"rc={r.returncode} left={left}")


# ---- 3. the cluster ----------------------------------------------------------

def cluster(work, nfiles=30, nworkers=3):
    root = work / "cluster" / "data"
    inp, out = root / "input", root / "output"
    inp.mkdir(parents=True)
    out.mkdir()
    for d in (inp, out):        # the watcher writes uploads into input/
        os.chown(d, UID, UID)
    port = free_port()
    proj = f"twct{os.getpid()}"
    env = dict(os.environ, TW_DATA=str(root), TW_HTTP_PORT=str(port),
               TW_WORKERS=str(nworkers))
    compose = ["podman-compose", "-p", proj, "-f", "compose.cluster.yaml"]
    label = f"label=io.podman.compose.project={proj}"

    def containers():
        r = run("podman", "ps", "-a", "--filter", label, "--format", "json")
        try:
            return {c["Names"][0]: c for c in json.loads(r.stdout or "[]")}
        except ValueError:
            return {}

    def service(c):
        return c.get("Labels", {}).get("com.docker.compose.service")

    try:
        r = run(*compose, "up", "-d", "--no-build", env=env, cwd=REPO,
                timeout=180)
        if not check(r.returncode == 0, "podman-compose up -d",
                     (r.stdout + r.stderr)[-3000:]):
            return
        cs = containers()
        by = Counter(service(c) for c in cs.values()
                     if c.get("State") == "running")
        check(by == Counter({"redis": 1, "watcher": 1, "worker": nworkers}),
              f"redis, a watcher and {nworkers} workers run", str(by))
        workers = sorted(n for n, c in cs.items() if service(c) == "worker")
        watcher = next((n for n, c in cs.items()
                        if service(c) == "watcher"), None)
        nodes = workers + ([watcher] if watcher else [])
        up = wait_for(lambda: all(any(e["event"] == "redis_up"
                                      for e in container_log(n)[0])
                                  for n in nodes), 60)
        check(up, "every node logs redis_up",
              "; ".join(f"{n}: {container_log(n)[0][-2:]}" for n in nodes))

        base = f"http://127.0.0.1:{port}"
        try:
            with urllib.request.urlopen(base + "/", timeout=10) as resp:
                page = (resp.status, resp.headers.get("Content-Type", ""))
        except (urllib.error.URLError, OSError) as e:
            page = str(e)
        check(isinstance(page, tuple) and page[0] == 200
              and page[1].startswith("text/html"),
              "the upload page answers on the published port", str(page))
        req = urllib.request.Request(
            base + "/upload?name=uploaded.jpg", method="POST",
            data=(SAMPLES / "landscape.jpg").read_bytes(),
            headers={"Content-Type": "image/jpeg"})
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                upcode = resp.status
        except urllib.error.HTTPError as e:
            upcode = f"{e.code} {e.read()[:200]!r}"
        except (urllib.error.URLError, OSError) as e:
            upcode = str(e)
        check(upcode == 202, "POST /upload to the watcher: 202", str(upcode))

        samples = sorted(p for p in SAMPLES.iterdir() if p.is_file())
        files = [f"d{i % 3}/f{i:03d}{samples[i % len(samples)].suffix}"
                 for i in range(nfiles)]
        for i, f in enumerate(files):
            drop(samples[i % len(samples)], inp / f)
        files.append("uploaded.jpg")

        def worker_done():
            return Counter(e["file"] for n in workers
                           for e in container_log(n)[0]
                           if e["event"] == "done")
        wait_for(lambda: set(files) <= set(worker_done()), 120, 0.5)
        time.sleep(3)           # a duplicate would show up by now
        per = {n: [e for e in container_log(n)[0]] for n in nodes}
        done = Counter()
        spread = {}
        for n in workers:
            d = [e["file"] for e in per[n] if e["event"] == "done"]
            done.update(d)
            spread[n] = len(d)
        print(f"    (done per worker container: {spread})")
        oc = Counter()
        for n in nodes:
            oc.update(outcome_counts(per[n]))
        check(all(done[f] == 1 and oc[f] == 1 for f in files)
              and set(oc) == set(files),
              f"each of the {len(files)} files is done exactly once across "
              "the workers",
              str({f: (done[f], oc[f]) for f in set(files) | set(oc)
                   if done[f] != 1 or oc[f] != 1}))
        check(sum(1 for v in spread.values() if v > 0) >= 2,
              "the work is spread over more than one worker", str(spread))
        check(watcher is not None and not any(
            e["event"] == "done" for e in per[watcher]),
              "the watcher makes no thumbnails itself")
        check_thumbs(out, files, "cluster")
        try:
            with urllib.request.urlopen(
                    base + "/thumbnails/uploaded_thumb.jpg", timeout=10) as r2:
                tcode = (r2.status, r2.read()[:2])
        except (urllib.error.URLError, OSError) as e:
            tcode = str(e)
        check(tcode == (200, b"\xff\xd8"), "the watcher serves the thumbnail "
              "a worker made (shared output)", str(tcode))
        hc = {n: run("podman", "healthcheck", "run", n, timeout=30).returncode
              for n in nodes}
        check(all(v == 0 for v in hc.values()),
              "the health check passes on the watcher and every worker",
              str(hc))
    finally:
        r = run(*compose, "down", "-v", env=env, cwd=REPO, timeout=180)
        # podman-compose 1.0.3 leaves the project's network behind.
        run("podman", "network", "rm", "-f", f"{proj}_default", timeout=60)
        left = containers()
        for n in left:
            run("podman", "rm", "-f", "-v", n, timeout=60)
        vols = run("podman", "volume", "ls", "-q", "--filter", label).stdout
        nets = run("podman", "network", "ls", "-q", "--filter",
                   f"name=^{proj}_").stdout
        check(r.returncode == 0 and not left and not vols.strip()
              and not nets.strip(),
              "podman-compose down -v leaves no container, volume or network",
              f"rc={r.returncode} containers={list(left)} volumes={vols!r} "
              f"networks={nets!r} {r.stderr[-1000:]}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--image", default="localhost/thumbwatch:latest")
    ap.add_argument("--work", required=True)
    ap.add_argument("--only", choices=("single", "compose", "cluster"))
    a = ap.parse_args()
    work = Path(a.work)
    t = time.monotonic()
    for part, fn in (("single", lambda: single(a.image, work)),
                     ("compose", lambda: compose_single(work)),
                     ("cluster", lambda: cluster(work))):
        if a.only and a.only != part:
            continue
        try:
            fn()
        except Exception as e:      # a crash of the test is a failure
            check(False, f"{part}: the test ran to its end",
                  f"{type(e).__name__}: {e}")
    print(f"# container checks took {time.monotonic() - t:.0f}s")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
