"""A local user other than the daemon's (issue 18, cases 12 and 15).

Another user must not be able to plant the control socket, the pidfile or
the log the daemon uses, and a worker must not outlive its supervisor.

Tests run as root; "another user" is uid 65534 (nobody): folders are
chowned to it, nothing runs as it, and tmp_path takes everything away.
"""

import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import (BIN, SCALE, TIMEOUT, jpeg_bytes, parse_log, pid_alive,
                      run_tw, write_file)

NOBODY = 65534


def other_users_dir(path, mode=0o777):
    """A folder made by another local user, writable by everybody."""
    path.mkdir(parents=True, exist_ok=True)
    os.chown(path, NOBODY, NOBODY)
    os.chmod(path, mode)
    return path


def refused(d, rc):
    """Starts d, which must exit with rc before it runs; returns stderr."""
    d.start(ready=False)
    try:
        got = d.proc.wait(TIMEOUT)
    except subprocess.TimeoutExpired:
        d.kill_group()
        d.stopped = True
        # Not d.describe(): it reads LOG_FILE, which may be a FIFO here.
        raise AssertionError("the daemon started; stderr: "
                             + d.stderr().decode(errors="replace"))
    d.stopped = True
    d.check_sanitizers()
    err = d.stderr().decode(errors="replace")
    assert got == rc, f"exit {got}, expected {rc}: {err}"
    return err


# ---- RUNTIME_DIR ----------------------------------------------------------


@pytest.mark.parametrize("owner,mode", [(NOBODY, 0o777), (NOBODY, 0o1777),
                                        (NOBODY, 0o700), (0, 0o777),
                                        (0, 0o770)])
def test_unsafe_runtime_dir_refused(daemons, tmp_path, owner, mode):
    """Another user's RUNTIME_DIR, or one others can write (sticky bit or
    not): they could replace the socket and answer `status`, or rewrite
    the pidfile.  Refused at start-up, exit 78, naming folder, owner and
    mode; nothing created in it."""
    run = tmp_path / "shared-run"
    run.mkdir()
    os.chown(run, owner, owner)
    os.chmod(run, mode)
    d = daemons.make(args=["--runtime-dir", run])
    err = refused(d, 78)
    assert "RUNTIME_DIR" in err and str(run) in err, err
    assert f"uid {owner}" in err and f"mode {mode:04o}" in err, err
    assert os.listdir(run) == [], os.listdir(run)


def test_status_does_not_talk_through_unsafe_runtime_dir(tmp_path):
    """`thumbwatch status` with a RUNTIME_DIR others can write: the socket
    there may be anyone's.  The client refuses (exit 77) before sending
    a byte; the planted server gets nothing."""
    run = other_users_dir(tmp_path / "run")
    got = []
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(run / "thumbwatch.sock"))
    srv.listen(1)
    srv.settimeout(5 * SCALE)

    def serve():
        try:
            c, _ = srv.accept()
        except OSError:
            return
        c.settimeout(5 * SCALE)
        try:
            got.append(c.recv(4096))
            c.sendall(b'{"ok":true,"text":"all fine (forged)"}\n')
        except OSError:
            pass
        c.close()

    t = threading.Thread(target=serve)
    t.start()
    try:
        r = run_tw(["status", "--runtime-dir", run], cwd=tmp_path)
    finally:
        srv.close()
        t.join()
    assert got == [], f"the planted socket received {got}"
    assert r.returncode == 77, (r.returncode, r.stdout, r.stderr)
    assert b"RUNTIME_DIR" in r.stderr and b"forged" not in r.stdout


@pytest.mark.parametrize("via", ["runtime-dir", "pidfile"])
def test_planted_folder_symlink_not_followed(daemons, tmp_path, via):
    """A symlink planted in another user's writable folder, on the way to
    RUNTIME_DIR or the pidfile, pointing at a folder of ours: nothing is
    created or written at its target."""
    shared = other_users_dir(tmp_path / "shared")
    victim = tmp_path / "victim"
    victim.mkdir(mode=0o700)
    os.symlink(victim, shared / "state")
    if via == "runtime-dir":
        args = ["--runtime-dir", shared / "state"]
    else:
        args = ["--pidfile", shared / "state" / "thumbwatch.pid"]
    d = daemons.make(args=args)
    err = refused(d, 78)
    assert str(shared) in err and "not safe" in err, err
    assert os.listdir(victim) == [], os.listdir(victim)


def test_planted_pidfile_of_another_user_not_trusted(daemons, tmp_path):
    """A pidfile that another user owns (they could rewrite the pid later
    and have an admin's `kill $(cat ...)` hit any process) is not written
    into: the daemon refuses to start, the file keeps its content."""
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    pf = run / "thumbwatch.pid"
    pf.write_text("1\n")
    os.chown(pf, NOBODY, NOBODY)
    d = daemons.make()
    err = refused(d, 73)
    assert "run/thumbwatch.pid" in err and "uid 65534" in err, err
    assert pf.read_text() == "1\n"


def test_planted_socket_of_another_user_not_replaced(daemons, tmp_path):
    """A stale-looking socket owned by another user is not taken for ours
    (probed, unlinked, replaced): refused, left as it is."""
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(run / "thumbwatch.sock"))
    s.close()       # not listening: what a kill -9'd daemon leaves
    os.chown(run / "thumbwatch.sock", NOBODY, NOBODY)
    ino = os.lstat(run / "thumbwatch.sock").st_ino
    d = daemons.make()
    err = refused(d, 73)
    assert "another user" in err, err
    assert os.lstat(run / "thumbwatch.sock").st_ino == ino


# ---- LOG_FILE -------------------------------------------------------------


def outside_file(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = elsewhere / "precious.txt"
    target.write_bytes(b"not a log\n")
    return target


def test_log_symlink_refused_at_start(daemons, tmp_path):
    """LOG_FILE is a symlink (planted in logs/) to a file outside: the
    daemon does not append to it; it refuses to start (exit 73)."""
    target = outside_file(tmp_path)
    (tmp_path / "logs").mkdir()
    os.symlink(target, tmp_path / "logs" / "tw.log")
    d = daemons.make()
    err = refused(d, 73)
    assert "symbolic link" in err, err
    assert target.read_bytes() == b"not a log\n"


def test_log_fifo_refused_at_start(daemons, tmp_path):
    """A FIFO at LOG_FILE neither hangs start-up nor is written."""
    (tmp_path / "logs").mkdir()
    os.mkfifo(tmp_path / "logs" / "tw.log")
    d = daemons.make()
    err = refused(d, 73)
    assert "not a regular file" in err, err


def test_log_in_folder_others_can_write_refused(daemons, tmp_path):
    """A log folder every user can write and without the sticky bit: they
    could swap the log's name at any moment.  Refused."""
    logs = other_users_dir(tmp_path / "logs")
    d = daemons.make()
    err = refused(d, 73)
    assert str(logs) in err and "not safe" in err, err
    assert os.listdir(logs) == []


def test_log_symlink_planted_after_rotation(daemons, tmp_path):
    """mv log log.1; ln -s /elsewhere log; kill -HUP: the reopen does not
    follow the symlink; the daemon keeps writing to log.1 and says so."""
    target = outside_file(tmp_path)
    d = daemons.start()
    rotated = d.log.with_name("tw.log.1")
    os.rename(d.log, rotated)
    os.symlink(target, d.log)
    # The helper reads the log the daemon still writes.
    d.log = rotated
    d.send_signal(signal.SIGHUP)
    d.wait_event("reload")
    write_file(d.input / "after.jpg", jpeg_bytes(64, 48))
    d.wait_done("after.jpg")
    assert target.read_bytes() == b"not a log\n", target.read_bytes()
    bad = d.by_event("log_reopen_failed")
    assert bad and "symbolic link" in bad[0]["message"], bad
    d.stop()


# ---- workers --------------------------------------------------------------


def hung_workers(d, timeout=None):
    """Waits until one of d's workers sits in the __hang__ hook (pause());
    returns the pids of all its workers."""
    deadline = time.monotonic() + (timeout or TIMEOUT)
    while True:
        pids = list(d.live_workers())
        for p in pids:
            try:
                with open(f"/proc/{p}/wchan") as f:
                    if "pause" in f.read():
                        return pids
            except OSError:
                pass
        assert time.monotonic() < deadline, \
            "no worker reached the hang\n" + d.describe()
        assert d.alive(), d.describe()
        time.sleep(0.05)


def is_worker(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
    except OSError:
        return False
    return len(argv) > 1 and argv[1] == b"worker" and \
        os.readlink(f"/proc/{pid}/exe") == os.path.realpath(BIN)


def test_hung_worker_dies_with_supervisor(daemons):
    """A worker stuck in an image (never reading its channel) and a kill -9
    of the supervisor: the worker is gone within 2 s, not left spinning."""
    d = daemons.start(hooks=True, workers=1)
    write_file(d.input / "stuck__hang__.jpg", jpeg_bytes(64, 48))
    workers = hung_workers(d)
    d.kill9()
    deadline = time.monotonic() + 2 * SCALE
    while [p for p in workers if pid_alive(p)]:
        if time.monotonic() > deadline:
            left = [p for p in workers if pid_alive(p)]
            for p in left:
                if is_worker(p):
                    os.kill(p, signal.SIGKILL)
            raise AssertionError(f"workers {left} outlived the supervisor")
        time.sleep(0.05)


def test_stale_worker_ended_at_next_start(daemons):
    """A worker left by an earlier run whose supervisor died (here: the
    test hook keeps it from dying with it, as a worker of an older version
    would) is ended by the next start-up of the same instance."""
    d = daemons.start(hooks=True, workers=1,
                      env={"THUMBWATCH_TEST_KEEP_ORPHAN": "1"})
    write_file(d.input / "stuck__hang__.jpg", jpeg_bytes(64, 48))
    orphans = hung_workers(d)
    try:
        d.kill9()
        time.sleep(0.5 * SCALE)
        assert all(pid_alive(p) for p in orphans), \
            "the hook did not keep the worker (test set-up)"
        os.unlink(d.input / "stuck__hang__.jpg")
        d.start()
        deadline = time.monotonic() + 2 * SCALE
        while [p for p in orphans if pid_alive(p)]:
            assert time.monotonic() < deadline, \
                f"stale workers {orphans} still run after the restart\n" \
                + d.describe()
            time.sleep(0.05)
        killed = {e["pid"] for e in d.by_event("stale_worker_killed")}
        assert set(orphans) <= killed, d.describe()
        # the new run's own workers were not touched
        assert not [e for e in d.by_event("worker_exited")], d.describe()
        d.stop()
    finally:
        for p in orphans:
            if pid_alive(p) and is_worker(p):
                os.kill(p, signal.SIGKILL)
