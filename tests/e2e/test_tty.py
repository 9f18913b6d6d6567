"""What a person at a terminal sees: `once` draws a progress bar and a
summary on stderr when it is a TTY (never otherwise), and `run` echoes the
log records in a readable form."""

import os
import pty
import select
import subprocess
import time

from conftest import BIN, TIMEOUT, clean_env, empty_env, make_jpeg, write_ini


def run_on_pty(args, cwd, stop_when=None, timeout=TIMEOUT):
    """Runs thumbwatch with stderr (and stdout) on a pseudo-terminal;
    returns (exit status or None if it was stopped, everything printed)."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([BIN] + [str(a) for a in args], cwd=cwd,
                            env=clean_env(), stdin=subprocess.DEVNULL,
                            stdout=slave, stderr=slave)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            r, _, _ = select.select([master], [], [], 0.2)
            if r:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            if stop_when and stop_when(out):
                proc.terminate()
                stop_when = None
            if proc.poll() is not None and not r:
                break
        rc = proc.wait(timeout=TIMEOUT)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return rc, out.decode("utf-8", "replace")


def common(tmp_path):
    return ["--config", write_ini(tmp_path / "tw.ini"),
            "--env-file", empty_env(tmp_path),
            "--input-dir", tmp_path / "in", "--output-dir", tmp_path / "out",
            "--log-file", tmp_path / "tw.log", "--workers", "2"]


def test_once_draws_a_progress_bar_on_a_tty(tmp_path):
    (tmp_path / "in").mkdir()
    for i in range(6):
        make_jpeg(tmp_path / "in" / f"p{i}.jpg", 320, 240, mtime_ns=10**18)
    rc, out = run_on_pty(["once"] + common(tmp_path), tmp_path)
    assert rc == 0, out
    assert "[####" in out and "6/6" in out, out
    assert "6 files: 6 done, 0 skipped, 0 failed" in out, out
    # The JSON records go to the log file only: the bar is not interrupted.
    assert '"event"' not in out, out


def test_once_without_a_tty_prints_no_bar(tmp_path):
    (tmp_path / "in").mkdir()
    make_jpeg(tmp_path / "in" / "p.jpg", 320, 240, mtime_ns=10**18)
    r = subprocess.run([BIN, "once"] + [str(a) for a in common(tmp_path)],
                       cwd=tmp_path, env=clean_env(), capture_output=True,
                       stdin=subprocess.DEVNULL, timeout=TIMEOUT)
    assert r.returncode == 0, r.stderr
    err = r.stderr.decode()
    assert "[#" not in err and "\r" not in err, err
    assert "1 files: 1 done" in err, err


def test_run_echoes_readable_records_on_a_tty(tmp_path):
    (tmp_path / "in").mkdir()
    make_jpeg(tmp_path / "in" / "seen.jpg", 320, 240, mtime_ns=10**18)
    rc, out = run_on_pty(["run"] + common(tmp_path), tmp_path,
                         stop_when=lambda o: b"seen_thumb.jpg" in o)
    assert rc == 0, out
    lines = [ln for ln in out.splitlines() if " done " in ln]
    assert lines, out
    # "HH:MM:SS.mmm info  done  {...fields}": time, level, event first.
    import re
    assert re.match(r"^\d\d:\d\d:\d\d\.\d{3} info\s+done\s+\{\"file\":"
                    r"\"seen\.jpg\"", lines[0]), lines[0]
    # The log file still has the full JSON record.
    log = (tmp_path / "tw.log").read_text()
    assert '"event":"done","file":"seen.jpg"' in log


def test_once_names_remembered_failures_on_a_tty(tmp_path):
    """Issue 12 item 4, on a terminal: the second run still says which
    file failed, and exits 1."""
    (tmp_path / "in").mkdir()
    make_jpeg(tmp_path / "in" / "ok.jpg", 320, 240, mtime_ns=10**18)
    (tmp_path / "in" / "broken.jpg").write_bytes(b"not a JPEG\n" * 30)
    rc, out = run_on_pty(["once"] + common(tmp_path), tmp_path)
    assert rc == 1, out
    rc, out = run_on_pty(["once"] + common(tmp_path), tmp_path)
    assert rc == 1, out
    assert "1 files: 0 done, 0 skipped, 1 failed" in out, out
    assert "  broken.jpg" in out.splitlines(), out
    assert "1/1" in out, out


def test_once_bar_total_counts_files_still_settling(tmp_path):
    """Issue 12 item 5: files younger than SETTLE_MS at the walk are in
    the total from the first frame: the bar never reads 3/3 then 6/6."""
    (tmp_path / "in").mkdir()
    for i in range(3):
        make_jpeg(tmp_path / "in" / f"old{i}.jpg", 320, 240, mtime_ns=10**18)
    for i in range(3):
        make_jpeg(tmp_path / "in" / f"new{i}.jpg", 320, 240)
    (tmp_path / "in" / "clip.mp4").write_bytes(b"not ours")
    rc, out = run_on_pty(["once"] + common(tmp_path) +
                         ["--settle-ms", "1500"], tmp_path)
    assert rc == 0, out
    assert "6 files: 6 done" in out, out
    import re
    totals = {int(t) for t in re.findall(r"\] \d+/(\d+) ", out)}
    assert totals == {6}, out


def test_run_says_where_it_watches_on_a_tty(tmp_path):
    """Issue 12 item 2: on a terminal, one plain line once ready."""
    (tmp_path / "in").mkdir()
    rc, out = run_on_pty(["run", "--config", write_ini(tmp_path / "tw.ini"),
                          "--env-file", empty_env(tmp_path),
                          "--input-dir", "in", "--output-dir", "out",
                          "--log-file", "tw.log", "--workers", "1"],
                         tmp_path, stop_when=lambda o: b"\xe2\x86\x92" in o)
    assert rc == 0, out
    lines = [ln.strip() for ln in out.splitlines()
             if ln.startswith("thumbwatch: watching")]
    assert lines == ["thumbwatch: watching in \u2192 out, log tw.log"], out
    assert " ready " in out, out
