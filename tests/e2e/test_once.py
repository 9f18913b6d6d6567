"""`thumbwatch once`: process the tree as it is now, then exit."""

import re

from conftest import (SCALE, TIMEOUT, empty_env, fmt_events, image_info, make_jpeg,
                      make_png, parse_log, run_tw, temp_leftovers, tree, write_file,
                      write_ini)


def once(tmp_path, extra=(), env=None):
    ini = tmp_path / "tw.ini"
    if not ini.exists():
        write_ini(ini, "")
    r = run_tw(["once", "--config", ini, "--env-file", empty_env(tmp_path),
                "--input-dir", tmp_path / "in", "--output-dir",
                tmp_path / "out", "--log-file", tmp_path / "tw.log",
                "--workers", "2"] + list(extra),
               cwd=tmp_path, env=env, timeout=2 * TIMEOUT)
    return r, r.stderr.decode(errors="replace")


def summary(err):
    """(done, skipped, failed) from the summary line."""
    lines = [ln for ln in err.splitlines()
             if "done" in ln and "failed" in ln and "skipped" in ln]
    assert lines, f"no summary line on stderr:\n{err}"
    line = lines[-1]
    n = {}
    for word in ("done", "skipped", "failed"):
        m = re.search(r"(\d+) " + word, line)
        assert m, f"summary has no count for {word}: {line!r}"
        n[word] = int(m.group(1))
    return n["done"], n["skipped"], n["failed"]


def test_once_all_ok(tmp_path):
    inp = tmp_path / "in"
    files = ["a.jpg", "b.png", "s/c.jpg", "s/t/d.jpg"]
    for f in files:
        (make_png if f.endswith("png") else make_jpeg)(inp / f, 640, 480)
    r, err = once(tmp_path)
    assert r.returncode == 0, err
    assert summary(err) == (4, 0, 0), err
    assert "\r" not in err and "\x1b[" not in err, \
        "progress bar drawn on a stderr that is not a TTY"
    assert sorted(tree(tmp_path / "out")) == \
        ["a_thumb.jpg", "b_thumb.jpg", "s/c_thumb.jpg", "s/t/d_thumb.jpg"]
    for p in tree(tmp_path / "out"):
        assert image_info(tmp_path / "out" / p)[:2] == (300, 225)
    assert not temp_leftovers(tmp_path / "out")
    ev = parse_log(tmp_path / "tw.log", allow_partial=False)
    start = [e for e in ev if e["event"] == "start"]
    assert len(start) == 1 and start[0]["mode"] == "once", start
    done = sorted(e["file"] for e in ev if e["event"] == "done")
    assert done == sorted(files)
    assert [e for e in ev if e["event"] == "shutdown"], "no shutdown line"

    # a second run finds everything up to date and does nothing
    r, err = once(tmp_path)
    assert r.returncode == 0, err
    assert summary(err)[0] == 0 and summary(err)[2] == 0, err
    ev2 = parse_log(tmp_path / "tw.log", allow_partial=False)[len(ev):]
    assert not [e for e in ev2 if e["event"] == "done"], ev2
    scan = [e for e in ev2 if e["event"] == "scan"][0]
    assert scan["uptodate"] == 4 and scan["queued"] == 0, scan


def test_once_with_bad_file_exits_1(tmp_path):
    inp = tmp_path / "in"
    for f in ("a.jpg", "b.jpg", "s/c.jpg"):
        make_jpeg(inp / f, 320, 240)
    write_file(inp / "s" / "broken.jpg", b"this is not a JPEG\n" * 20)
    r, err = once(tmp_path)
    assert r.returncode == 1, (r.returncode, err)
    assert summary(err) == (3, 0, 1), err
    ev = parse_log(tmp_path / "tw.log", allow_partial=False)
    failed = [e for e in ev if e["event"] == "failed"]
    assert len(failed) == 1 and failed[0]["file"] == "s/broken.jpg", failed
    assert failed[0]["error"] and "\n" not in failed[0]["error"]
    assert (tmp_path / "out" / "s" / "c_thumb.jpg").is_file()
    assert not (tmp_path / "out" / "s" / "broken_thumb.jpg").exists()


def test_once_empty_tree(tmp_path):
    (tmp_path / "in").mkdir()
    r, err = once(tmp_path)
    assert r.returncode == 0, err
    assert summary(err) == (0, 0, 0), err


def test_once_ignores_temp_and_other_extensions(tmp_path):
    inp = tmp_path / "in"
    make_jpeg(inp / "ok.jpg", 320, 240)
    for name in (".x.jpg", "y.jpg.part", "z.txt", "w.jpg~"):
        make_jpeg(inp / name, 320, 240)
    r, err = once(tmp_path)
    assert r.returncode == 0, err
    assert summary(err) == (1, 0, 0), err
    ev = parse_log(tmp_path / "tw.log")
    assert [e["file"] for e in ev
            if e["event"] in ("done", "failed", "skipped")] == ["ok.jpg"]
    assert tree(tmp_path / "out") == ["ok_thumb.jpg"]


def test_once_log_level_filters(tmp_path):
    make_jpeg(tmp_path / "in" / "ok.jpg", 320, 240)
    write_file(tmp_path / "in" / "bad.jpg", b"not an image")
    r, err = once(tmp_path, ["--log-level", "warn"])
    assert r.returncode == 1, err
    ev = parse_log(tmp_path / "tw.log", allow_partial=False)
    assert ev, "nothing logged at warn"
    assert all(e["level"] in ("warn", "error") for e in ev), \
        [e for e in ev if e["level"] not in ("warn", "error")]
    assert [e["file"] for e in ev if e["event"] == "failed"] == ["bad.jpg"]
    assert not [e for e in ev if e["event"] == "done"]


def test_once_never_creates_a_mistyped_input_folder(tmp_path):
    # `thumbwatch once --input-dir ~/Picturs` must not "succeed" on a new,
    # empty folder.
    r, err = once(tmp_path)
    assert r.returncode == 66, (r.returncode, err)
    assert "does not exist" in err and str(tmp_path / "in") in err, err
    assert not (tmp_path / "in").exists()


def test_help_says_where_once_logs(tmp_path):
    out = run_tw(["--help"], cwd=tmp_path).stdout.decode()
    once_help = out[out.index("  once"):out.index("  check-config")]
    assert "LOG_FILE" in once_help and "must exist" in once_help, once_help


def test_second_once_counts_remembered_failures(tmp_path):
    """Issue 12 item 4: a failure remembered from the first run (same
    bytes) is failed again in the summary and the exit status, named, and
    not handed to a worker a second time."""
    inp = tmp_path / "in"
    make_jpeg(inp / "a.jpg", 320, 240, mtime_ns=10**18)
    write_file(inp / "s" / "broken.jpg", b"this is not a JPEG\n" * 20,
               mtime_ns=10**18)
    r, err = once(tmp_path)
    assert r.returncode == 1, err
    assert summary(err) == (1, 0, 1), err
    assert "s/broken.jpg" in err, err
    first = parse_log(tmp_path / "tw.log", allow_partial=False)
    reason = [e for e in first if e["event"] == "failed"][0]["error"]

    r, err = once(tmp_path)
    assert r.returncode == 1, err
    assert summary(err) == (0, 0, 1), err
    assert "  s/broken.jpg" in err.splitlines(), err
    assert "not tried again" in err, err
    ev = parse_log(tmp_path / "tw.log", allow_partial=False)[len(first):]
    failed = [e for e in ev if e["event"] == "failed"]
    assert len(failed) == 1, failed
    # From the marker, with the first run's reason, not from a worker.
    assert failed[0]["file"] == "s/broken.jpg" and failed[0]["remembered"]
    assert failed[0]["error"] == reason and "worker" not in failed[0]
    assert not (tmp_path / "out" / "s" / "broken_thumb.jpg").exists()

    # Saved anew (another mtime): tried again, fails again from a worker.
    write_file(inp / "s" / "broken.jpg", b"still not a JPEG\n" * 20,
               mtime_ns=2 * 10**18)
    n = len(parse_log(tmp_path / "tw.log", allow_partial=False))
    r, err = once(tmp_path)
    assert r.returncode == 1 and summary(err) == (0, 0, 1), err
    assert "not tried again" not in err, err
    failed = [e for e in parse_log(tmp_path / "tw.log")[n:]
              if e["event"] == "failed"]
    assert len(failed) == 1 and "remembered" not in failed[0], failed


def test_once_names_ten_failed_files_then_a_count(tmp_path):
    inp = tmp_path / "in"
    names = sorted(f"bad{i:02d}.jpg" for i in range(13))
    for n in names:
        write_file(inp / n, b"not an image at all\n" * 10)
    r, err = once(tmp_path)
    assert r.returncode == 1 and summary(err) == (0, 0, 13), err
    named = [ln.strip() for ln in err.splitlines() if ln.startswith("  ")]
    assert len(named) == 11 and named[-1] == "and 3 more", err
    assert set(named[:10]) <= set(names), err
    r, err = once(tmp_path)
    assert r.returncode == 1 and summary(err) == (0, 0, 13), err
    named = [ln.strip() for ln in err.splitlines() if ln.startswith("  ")]
    assert len(named) == 11 and named[-1] == "and 3 more", err


def _ts(e):
    import datetime
    return datetime.datetime.strptime(
        e["ts"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def test_once_fresh_files_nobody_writes_go_at_once(tmp_path):
    """Files copied in a moment ago, closed by their writer: the start-up
    walk asks the kernel (a read lease) and queues them at once instead of
    holding them SETTLE_MS."""
    inp = tmp_path / "in"
    n = 12
    for i in range(n):
        make_jpeg(inp / f"f{i:02d}.jpg", 320, 240)
    r, err = once(tmp_path, ["--settle-ms", "60000"])
    assert r.returncode == 0, err
    assert summary(err) == (n, 0, 0), err
    ev = parse_log(tmp_path / "tw.log", allow_partial=False)
    scan = [e for e in ev if e["event"] == "scan"]
    assert scan and scan[0].get("settling", 0) == 0 and \
        scan[0]["queued"] == n, scan


def test_once_file_open_for_writing_is_held_until_closed(tmp_path):
    """A file still open for writing while the walk runs is held (settling
    1), with the others queued at once, and is done only after its writer
    closes it (SETTLE_MS is long here: the close is what lets it go)."""
    import subprocess
    import time
    from conftest import BIN, clean_env, jpeg_bytes
    inp = tmp_path / "in"
    for i in range(3):
        make_jpeg(inp / f"ok{i}.jpg", 320, 240)
    data = jpeg_bytes(640, 480)
    f = open(inp / "slow.jpg", "wb")
    f.write(data[:len(data) // 2])
    f.flush()
    ini = write_ini(tmp_path / "tw.ini", "")
    log = tmp_path / "tw.log"
    p = subprocess.Popen(
        [BIN, "once", "--config", str(ini), "--env-file",
         str(empty_env(tmp_path)), "--input-dir", str(inp), "--output-dir",
         str(tmp_path / "out"), "--log-file", str(log), "--workers", "2",
         "--settle-ms", str(int(4000 * SCALE))],
        cwd=tmp_path, env=clean_env(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            ev = parse_log(log) if log.exists() else []
            if len([e for e in ev if e["event"] == "done"]) == 3:
                break
            time.sleep(0.05)
        ev = parse_log(log)
        scan = [e for e in ev if e["event"] == "scan"]
        assert scan and scan[0]["settling"] == 1 and \
            scan[0]["queued"] == 3, scan
        assert sorted(e["file"] for e in ev if e["event"] == "done") == \
            ["ok0.jpg", "ok1.jpg", "ok2.jpg"], fmt_events(ev)
        assert p.poll() is None, "once ended with a file still open"
        f.write(data[len(data) // 2:])
        f.flush()
        closed = time.time()
        f.close()
        out, err = p.communicate(timeout=2 * TIMEOUT)
    finally:
        if not f.closed:
            f.close()
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0, err.decode(errors="replace")
    ev = parse_log(log, allow_partial=False)
    slow = [e for e in ev if e.get("file") == "slow.jpg" and
            e["event"] in ("done", "failed", "skipped")]
    assert [e["event"] for e in slow] == ["done"], fmt_events(ev)
    assert _ts(slow[0]) >= closed - 0.05, (slow[0], closed)
