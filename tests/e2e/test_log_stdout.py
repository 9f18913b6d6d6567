"""LOG_FILE=- : the JSON Lines log on standard output (a container's log,
`docker logs`), never reopened on SIGHUP, refused with --daemon."""

import json
import signal

from conftest import jpeg_bytes, parse_log, run_tw, write_file


def stdout_daemon(daemons, **kw):
    """A daemon whose --log-file is "-"; its log is read from the file its
    standard output goes to (stdout.1.txt, see Daemon.start)."""
    d = daemons.make(log_file="-", **kw)
    assert d.cmd[d.cmd.index("--log-file") + 1] == "-"
    d.log = d.root / "stdout.1.txt"
    return d.start()


def test_log_on_stdout(daemons):
    d = stdout_daemon(daemons)
    write_file(d.input / "a.jpg", jpeg_bytes(640, 480))
    d.wait_done("a.jpg")
    d.assert_one_outcome("a.jpg")
    # Nothing named "-" (or a logs folder) appears: no file was opened.
    assert not (d.root / "-").exists()
    assert not (d.root / "logs").exists()
    # stdout holds JSON lines only (the readable echo goes to a terminal,
    # and there is none here).
    d.stop()
    text = d.stdout_path.read_text()
    assert text.endswith("\n") and all(
        line.startswith("{") for line in text.splitlines()), text[:500]


def test_sighup_keeps_stdout(daemons):
    d = stdout_daemon(daemons)
    write_file(d.input / "before.jpg", jpeg_bytes(320, 240))
    d.wait_done("before.jpg")
    d.send_signal(signal.SIGHUP)
    d.wait_event("reload")
    write_file(d.input / "after.jpg", jpeg_bytes(320, 240))
    d.wait_done("after.jpg")
    d.stop()
    ev = parse_log(d.log, allow_partial=False)
    assert [e["event"] for e in ev].count("start") == 1
    assert not (d.root / "-").exists()
    assert b"cannot reopen" not in d.stderr_path.read_bytes()


def test_once_to_stdout(tmp_path):
    (tmp_path / "in").mkdir()
    write_file(tmp_path / "in" / "x.jpg", jpeg_bytes(320, 240))
    (tmp_path / "e.env").write_text("")
    (tmp_path / "tw.ini").write_text("")
    r = run_tw(["once", "--config", "tw.ini", "--env-file", "e.env",
                "--input-dir", "in", "--output-dir", "out",
                "--log-file", "-", "--workers", "1"], cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = [line for line in r.stdout.decode().splitlines() if line]
    events = [json.loads(line)["event"] for line in lines]
    assert events.count("done") == 1 and "shutdown" in events, events
    assert (tmp_path / "out" / "x_thumb.jpg").is_file()
    assert not (tmp_path / "-").exists()


def test_stdout_log_refused_with_daemon(tmp_path):
    (tmp_path / "e.env").write_text("")
    (tmp_path / "tw.ini").write_text("")
    r = run_tw(["run", "--daemon", "--config", "tw.ini", "--env-file",
                "e.env", "--input-dir", "in", "--output-dir", "out",
                "--log-file", "-", "--runtime-dir", "run"], cwd=tmp_path)
    assert r.returncode == 64, (r.returncode, r.stderr)
    assert b"--daemon" in r.stderr, r.stderr
    assert not (tmp_path / "run").exists()
