"""Running thumbwatch as a service: make install, the systemd unit, the man
pages, logrotate; and, once the daemon has the hooks (probed below), the
sd_notify protocol on a fake $NOTIFY_SOCKET, --daemon with its pidfile, the
one-daemon-per-input-folder lock, and status / reprocess / retry-failed
over the control socket."""

import json
import os
import re
import select
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from conftest import (BIN, REPO, SCALE, TIMEOUT, clean_env, empty_env,
                      jpeg_bytes, make_jpeg, run_tw, write_file, write_ini)

# --------------------------------------------------------------------------
# What the binary can do (the daemon hooks land separately).


def _probe():
    try:
        help_text = subprocess.run([BIN, "--help"], capture_output=True,
                                   timeout=30).stdout.decode(errors="replace")
    except (OSError, subprocess.TimeoutExpired):
        help_text = ""
    try:
        image = Path(BIN).read_bytes()
    except OSError:
        image = b""
    return help_text, image


HELP, IMAGE = _probe()
HAS_CONTROL = all(w in HELP for w in ("status", "reprocess", "retry-failed"))
HAS_DAEMON = "--daemon" in HELP and "--pidfile" in HELP
HAS_NOTIFY = b"NOTIFY_SOCKET" in IMAGE
HAS_RUNTIME = "RUNTIME_DIR" in HELP

needs_control = pytest.mark.skipif(
    not (HAS_CONTROL and HAS_RUNTIME),
    reason="thumbwatch has no status/reprocess/retry-failed commands or no "
           "RUNTIME_DIR key yet (control socket not integrated)")
needs_daemon = pytest.mark.skipif(
    not HAS_DAEMON, reason="thumbwatch run has no --daemon/--pidfile yet")
needs_notify = pytest.mark.skipif(
    not HAS_NOTIFY, reason="the binary does not speak sd_notify yet "
                           "(no NOTIFY_SOCKET in it)")

MANPAGES = [REPO / "config" / "man" / "thumbwatch.8",
            REPO / "config" / "man" / "thumbwatch.ini.5"]
UNIT = REPO / "config" / "thumbwatch.service"
LOGROTATE = REPO / "config" / "logrotate.conf"

EX_UNAVAILABLE, EX_TEMPFAIL, EX_CANTCREAT, EX_NOINPUT = 69, 75, 73, 66


# --------------------------------------------------------------------------
# make install


def make_install(destdir, prefix="/usr", target="install"):
    """Runs `make install` of the binary under test into destdir, without
    rebuilding it (-o: the binary counts as up to date)."""
    binp = Path(BIN).resolve()
    try:
        build = binp.parent.relative_to(REPO)
        args = [f"BUILD={build}", "-o", str(build / "thumbwatch")]
    except ValueError:
        args = [f"BIN={binp}", "-o", str(binp)]
    r = subprocess.run(["make", "-s", "-C", str(REPO), target,
                        f"DESTDIR={destdir}", f"PREFIX={prefix}"] + args,
                       capture_output=True, timeout=120)
    assert r.returncode == 0, \
        f"make {target} failed:\n{r.stdout.decode()}\n{r.stderr.decode()}"
    return r


def mode(p):
    return stat.S_IMODE(os.stat(p).st_mode)


def test_install_into_destdir(tmp_path):
    dest = tmp_path / "root"
    make_install(dest)
    exe = dest / "usr/bin/thumbwatch"
    files = {
        exe: 0o755,
        dest / "usr/share/man/man8/thumbwatch.8": 0o644,
        dest / "usr/share/man/man5/thumbwatch.ini.5": 0o644,
        dest / "usr/share/thumbwatch/thumbwatch.ini": 0o644,
        dest / "usr/share/thumbwatch/sample.env": 0o644,
        dest / "usr/lib/systemd/system/thumbwatch.service": 0o644,
        dest / "etc/thumbwatch/thumbwatch.ini": 0o644,
        dest / "etc/logrotate.d/thumbwatch": 0o644,
    }
    for p, m in files.items():
        assert p.is_file(), f"make install did not install {p}"
        assert mode(p) == m, f"{p}: mode {oct(mode(p))}, expected {oct(m)}"
    # The installed binary runs.
    r = subprocess.run([str(exe), "--version"], capture_output=True,
                       timeout=30)
    assert r.returncode == 0, r
    assert r.stdout.startswith(b"thumbwatch "), r.stdout
    r = subprocess.run([str(exe), "check-config", "--config",
                        str(dest / "etc/thumbwatch/thumbwatch.ini"),
                        "--env-file", str(empty_env(tmp_path))],
                       capture_output=True, timeout=30, cwd=tmp_path,
                       env=clean_env())
    assert r.returncode == 0, r
    # The unit runs the binary where PREFIX put it.
    unit = (dest / "usr/lib/systemd/system/thumbwatch.service").read_text()
    assert re.search(r"^ExecStart=/usr/bin/thumbwatch run ", unit, re.M), unit
    assert "/usr/local/bin" not in unit.replace("# ", "")
    # The live INI is the shipped one with the service's folders set.
    live = (dest / "etc/thumbwatch/thumbwatch.ini").read_text().splitlines()
    shipped = (REPO / "config/thumbwatch.ini").read_text().splitlines()
    assert len(live) == len(shipped)
    changed = {a: b for a, b in zip(shipped, live) if a != b}
    assert sorted(k.split(" =")[0] for k in changed.values()) == \
        ["done_dir", "input_dir", "log_file", "output_dir", "runtime_dir"], \
        changed
    assert all(a == "; " + b.split(" =")[0] + a[len(b.split(" =")[0]) + 2:]
               for a, b in changed.items()), changed
    # Installed man pages render.
    if shutil.which("man"):
        r = subprocess.run(["man", "-l",
                            str(dest / "usr/share/man/man8/thumbwatch.8")],
                           capture_output=True, timeout=60,
                           env={**os.environ, "MANWIDTH": "80",
                                "MANPAGER": "cat", "PAGER": "cat"})
        assert r.returncode == 0 and b"thumbwatch" in r.stdout, r


def test_install_keeps_local_config_and_uninstall(tmp_path):
    dest = tmp_path / "root"
    make_install(dest, prefix="/usr/local")
    etc = dest / "etc/thumbwatch/thumbwatch.ini"
    etc.write_text("[thumbwatch]\nworkers = 3\n")
    r = make_install(dest, prefix="/usr/local")
    assert etc.read_text() == "[thumbwatch]\nworkers = 3\n", \
        "make install overwrote the administrator's configuration"
    assert b"keeping" in r.stdout
    unit = (dest / "usr/local/lib/systemd/system/thumbwatch.service")
    assert "ExecStart=/usr/local/bin/thumbwatch run" in unit.read_text()
    make_install(dest, prefix="/usr/local", target="uninstall")
    left = sorted(str(p.relative_to(dest)) for p in dest.rglob("*")
                  if p.is_file())
    assert left == ["etc/thumbwatch/thumbwatch.ini"], left


# --------------------------------------------------------------------------
# The unit, logrotate, the man pages


def unit_settings(text):
    """{key: [values]} of a unit file (comments left out)."""
    out = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line[0] in "#;[":
            continue
        k, _, v = line.partition("=")
        out.setdefault(k.strip(), []).append(v.strip())
    return out


def service_folders(tmp_path):
    """{KEY: value} of the folders make install sets in the live INI."""
    dest = tmp_path / "svc-root"
    make_install(dest)
    keys = {}
    for line in (dest / "etc/thumbwatch/thumbwatch.ini").read_text() \
            .splitlines():
        m = re.match(r"^(\w+_dir|log_file) = (\S+)$", line)
        if m:
            keys["THUMBWATCH_" + m.group(1).upper()] = m.group(2)
    return keys


def test_unit_settings(tmp_path):
    s = unit_settings(UNIT.read_text())
    one = {k: v[-1] for k, v in s.items()}
    assert one["Type"] == "notify"
    assert one["ExecStart"].startswith("/usr/local/bin/thumbwatch run ")
    assert "--daemon" not in one["ExecStart"]
    assert one["ExecReload"] == "/bin/kill -HUP $MAINPID"
    assert one["User"] == one["Group"] == "thumbwatch"
    assert one["KillSignal"] == "SIGTERM"
    # SIGTERM to the supervisor alone, so it can drain its workers.
    assert one["KillMode"] == "mixed"
    # Longer than the default DRAIN_TIMEOUT_MS (30 s) plus the pool's grace.
    m = re.fullmatch(r"(\d+)s", one["TimeoutStopSec"])
    assert m and int(m.group(1)) >= 30 + 5, one["TimeoutStopSec"]
    assert one["Restart"] == "on-failure"
    assert "78" in one["RestartPreventExitStatus"].split()
    for k in ("NoNewPrivileges", "PrivateTmp"):
        assert one[k] == "yes", k
    assert one["ProtectSystem"] == "strict"
    assert one["ProtectHome"] in ("yes", "read-only", "tmpfs")
    assert set(one["RestrictAddressFamilies"].split()) == \
        {"AF_UNIX", "AF_INET", "AF_INET6"}
    # No folder in Environment=: it would outrank the INI file a user
    # edits.  The folders make install puts in that file must be writable.
    assert not any(v.startswith("THUMBWATCH_")
                   for v in s.get("Environment", [])), s["Environment"]
    env = service_folders(tmp_path)
    rw = " ".join(s["ReadWritePaths"]).split()
    for key in ("THUMBWATCH_INPUT_DIR", "THUMBWATCH_OUTPUT_DIR",
                "THUMBWATCH_LOG_FILE"):
        path = env[key]
        assert any(path == d or path.startswith(d.rstrip("/") + "/")
                   for d in rw), f"{key}={path} is not in ReadWritePaths"
    assert env["THUMBWATCH_RUNTIME_DIR"] == "/run/thumbwatch"
    assert one["RuntimeDirectory"] == "thumbwatch"
    assert one["WorkingDirectory"] == "/var/lib/thumbwatch"
    text = UNIT.read_text()
    assert re.search(r"^#\s*WatchdogSec=", text, re.M)
    assert re.search(r"^#\s*MemoryMax=", text, re.M)
    assert "useradd --system" in text


def test_logrotate_matches_unit(tmp_path):
    env = service_folders(tmp_path)
    text = LOGROTATE.read_text()
    glob = text.split("{", 1)[0].split()[-1]
    assert Path(env["THUMBWATCH_LOG_FILE"]).match(glob), (glob, env)
    assert env["THUMBWATCH_RUNTIME_DIR"] + "/thumbwatch.pid" in text
    assert re.search(r"^\s*create 0640 thumbwatch thumbwatch$", text, re.M)
    assert "kill -HUP" in text
    # The daemon reopens its log on SIGHUP: no copytruncate (lost lines).
    assert not re.search(r"^\s*copytruncate", text, re.M)


@pytest.mark.skipif(not shutil.which("systemd-analyze"),
                    reason="systemd-analyze is missing (Debian package "
                           "systemd)")
def test_systemd_analyze_verify(tmp_path):
    dest = tmp_path / "root"
    make_install(dest)
    # verify wants ExecStart's binary to exist: point it at the install.
    unit = (dest / "usr/lib/systemd/system/thumbwatch.service").read_text()
    unit = unit.replace("/usr/bin/thumbwatch",
                        str(dest / "usr/bin/thumbwatch"))
    ud = tmp_path / "units"
    ud.mkdir()
    (ud / "thumbwatch.service").write_text(unit)
    r = subprocess.run(["systemd-analyze", "verify",
                        str(ud / "thumbwatch.service")],
                       capture_output=True, timeout=120,
                       env={**os.environ,
                            "MANPATH": str(dest / "usr/share/man"),
                            "SYSTEMD_LOG_COLOR": "0"})
    out = (r.stdout + r.stderr).decode(errors="replace")
    ours = [line for line in out.splitlines() if "thumbwatch" in line]
    assert r.returncode == 0 and not ours, out


@pytest.mark.skipif(not shutil.which("mandoc"),
                    reason="mandoc is missing (Debian package mandoc)")
@pytest.mark.parametrize("page", MANPAGES, ids=lambda p: p.name)
def test_man_page_lint(page):
    # -W warning: mandoc's warnings and errors.  Its "style" notes include
    # "referenced manual not found", which depends on the machine.
    r = subprocess.run(["mandoc", "-T", "lint", "-W", "warning", str(page)],
                       capture_output=True, timeout=60)
    assert r.returncode == 0 and not r.stdout and not r.stderr, \
        (r.stdout + r.stderr).decode()
    r = subprocess.run(["mandoc", "-T", "lint", str(page)],
                       capture_output=True, timeout=60)
    notes = [line for line in r.stdout.decode().splitlines()
             if "referenced manual not found" not in line]
    assert not notes, "\n".join(notes)
    if shutil.which("man"):
        r = subprocess.run(["man", "--warnings", "-l", str(page)],
                           capture_output=True, timeout=60,
                           env={**os.environ, "MANWIDTH": "80",
                                "LC_ALL": "C.UTF-8", "MANPAGER": "cat",
                                "PAGER": "cat"})
        assert r.returncode == 0 and not r.stderr, r.stderr.decode()


def test_ini_man_page_documents_every_key():
    keys = re.findall(r"^\s+THUMBWATCH_([A-Z0-9_]+) \(default", HELP, re.M)
    assert len(keys) > 10, HELP
    page = MANPAGES[1].read_text()
    documented = set(re.findall(r"^\.It Cm ([a-z0-9_]+)", page, re.M))
    missing = [k for k in keys if k.lower() not in documented]
    assert not missing, f"thumbwatch.ini(5) does not document {missing}"


def test_command_man_page_documents_exit_codes():
    page = MANPAGES[0].read_text()
    for code in (0, 1, 64, 66, 69, 70, 73, 75, 78):
        assert re.search(rf"^\.It {code}\b", page, re.M), code
    for cmd in ("run", "once", "check-config", "status", "reprocess",
                "retry-failed"):
        assert re.search(rf"^\.It Cm {cmd}\b", page, re.M), cmd


# --------------------------------------------------------------------------
# sd_notify


class NotifySocket:
    """A datagram socket standing in for systemd's $NOTIFY_SOCKET."""

    def __init__(self, abstract=False):
        self.dir = None
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        if abstract:
            name = f"tw-notify-{os.getpid()}-{time.monotonic_ns()}"
            self.sock.bind("\0" + name)
            self.addr = "@" + name
        else:
            # Short: sun_path holds 107 bytes; pytest's tmp_path may not.
            self.dir = tempfile.mkdtemp(prefix="twn-", dir="/tmp")
            self.addr = os.path.join(self.dir, "notify")
            self.sock.bind(self.addr)
        self.got = []

    def recv(self, timeout):
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return None
        msg = self.sock.recv(4096).decode()
        self.got.append(msg)
        return msg

    def wait(self, pred, timeout, what):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg = self.recv(max(0.01, deadline - time.monotonic()))
            if msg is not None and pred(msg):
                return msg
        raise AssertionError(f"no {what} on $NOTIFY_SOCKET within "
                             f"{timeout:.0f}s; got {self.got}")

    def close(self):
        self.sock.close()
        if self.dir:
            shutil.rmtree(self.dir, True)


def fields(msg):
    return dict(line.split("=", 1) for line in msg.splitlines() if "=" in line)


@needs_notify
def test_notify_ready_after_first_scan(daemons, tmp_path):
    ns = NotifySocket()
    try:
        for i in range(40):
            write_file(tmp_path / "in" / f"d{i % 4}" / f"p{i}.jpg",
                       jpeg_bytes(64, 48))
        d = daemons.make(env={"NOTIFY_SOCKET": ns.addr})
        d.start(ready=False)
        msg = ns.wait(lambda m: fields(m).get("READY") == "1", TIMEOUT,
                      "READY=1")
        # The start-up scan was over (and logged) before READY=1.
        ev = d.events()
        assert any(e["event"] == "scan" for e in ev), \
            "READY=1 came before the start-up scan line\n" + d.describe()
        before = ns.got[:-1]
        assert not any(fields(m).get("READY") == "1" for m in before)
        assert "STATUS" in fields(msg) and fields(msg)["STATUS"], msg
        # SIGHUP: RELOADING=1, then READY=1 again.
        d.send_signal(signal.SIGHUP)
        ns.wait(lambda m: fields(m).get("RELOADING") == "1", TIMEOUT,
                "RELOADING=1")
        ns.wait(lambda m: fields(m).get("READY") == "1", TIMEOUT,
                "READY=1 after the reload")
        # SIGTERM: STOPPING=1.
        d.send_signal(signal.SIGTERM)
        ns.wait(lambda m: fields(m).get("STOPPING") == "1", TIMEOUT,
                "STOPPING=1")
        d.stop()
    finally:
        ns.close()


@needs_notify
def test_notify_abstract_socket_and_watchdog(daemons):
    ns = NotifySocket(abstract=True)
    try:
        d = daemons.make(env={"NOTIFY_SOCKET": ns.addr,
                              "WATCHDOG_USEC": "400000"})
        d.start(ready=False)
        ns.wait(lambda m: fields(m).get("READY") == "1", TIMEOUT, "READY=1")
        # Pings every WATCHDOG_USEC/2 (0.2 s): several within 2 s.
        deadline = time.monotonic() + 2.0 * SCALE
        pings = 0
        while time.monotonic() < deadline:
            m = ns.recv(0.1)
            if m and fields(m).get("WATCHDOG") == "1":
                pings += 1
        assert pings >= 3, ns.got
        d.stop()
    finally:
        ns.close()


@needs_notify
def test_no_watchdog_for_another_pid(daemons):
    ns = NotifySocket()
    try:
        d = daemons.make(env={"NOTIFY_SOCKET": ns.addr,
                              "WATCHDOG_USEC": "200000",
                              "WATCHDOG_PID": "1"})
        d.start(ready=False)
        ns.wait(lambda m: fields(m).get("READY") == "1", TIMEOUT, "READY=1")
        time.sleep(1.0)
        while ns.recv(0.05):
            pass
        assert not any(fields(m).get("WATCHDOG") for m in ns.got), ns.got
        d.stop()
    finally:
        ns.close()


# --------------------------------------------------------------------------
# --daemon, pidfile, one daemon per input folder


def daemon_args(root, inp=None, out=None, log=None, extra=()):
    root = Path(root)
    return (["run", "--config", write_ini(root / "tw.ini", ""),
             "--env-file", empty_env(root),
             "--input-dir", inp or root / "in",
             "--output-dir", out or root / "out",
             "--log-file", log or root / "logs" / "tw.log",
             "--workers", "1"] + list(extra))


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes.
    try:
        stat_ = Path(f"/proc/{pid}/stat").read_text()
        return stat_.rsplit(")", 1)[-1].split()[0] != "Z"
    except OSError:
        return False


def stop_pid(pid, timeout=None):
    timeout = timeout or TIMEOUT
    if not pid_alive(pid):
        return True
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    return False


def read_log(path):
    try:
        return [json.loads(line) for line in Path(path).read_text()
                .splitlines() if line.strip()]
    except FileNotFoundError:
        return []


@needs_daemon
def test_daemon_mode_pidfile_and_second_instance(tmp_path):
    (tmp_path / "in").mkdir()
    make_jpeg(tmp_path / "in" / "a.jpg")
    pidfile = tmp_path / "state" / "tw.pid"
    t0 = time.monotonic()
    r = run_tw(daemon_args(tmp_path, extra=["--daemon", "--pidfile",
                                            pidfile]), cwd=tmp_path)
    pid = None
    try:
        assert r.returncode == 0, r
        assert time.monotonic() - t0 < TIMEOUT
        assert pidfile.is_file(), "no pidfile after --daemon"
        pid = int(pidfile.read_text().strip())
        assert pid_alive(pid)
        # Detached: its own session, not a session leader, not our child.
        fields_ = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()
        ppid, sid = int(fields_[1]), int(fields_[3])
        assert ppid != os.getpid()
        assert sid != os.getsid(0) and sid != pid
        # Relative paths stayed relative to where it was started (cwd).
        assert os.readlink(f"/proc/{pid}/cwd") == str(tmp_path)
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            if any(e["event"] == "done" and e.get("file") == "a.jpg"
                   for e in read_log(tmp_path / "logs" / "tw.log")):
                break
            time.sleep(0.05)
        else:
            raise AssertionError("the daemon did not process a.jpg")

        # A second daemon on the same input folder, with everything else
        # its own, refuses: in the foreground...
        other = tmp_path / "other"
        other.mkdir()
        r2 = run_tw(daemon_args(other, inp=tmp_path / "in",
                                extra=["--runtime-dir", other / "run"]
                                if HAS_RUNTIME else []), cwd=other)
        assert r2.returncode == EX_TEMPFAIL, r2
        err = r2.stderr.decode()
        assert str((tmp_path / "in").resolve()) in err or \
            str(tmp_path / "in") in err, err
        assert f"pid {pid}" in err, err
        # ... and with --daemon (the status comes back through the pipe).
        r3 = run_tw(daemon_args(other, inp=tmp_path / "in",
                                extra=["--daemon", "--pidfile",
                                       other / "tw2.pid"]), cwd=other)
        assert r3.returncode == EX_TEMPFAIL, r3
        assert b"already" in r3.stderr, r3.stderr
        assert not (other / "tw2.pid").exists()
        # The same pidfile for another input folder is refused too.
        (other / "in2").mkdir()
        r4 = run_tw(daemon_args(other, inp=other / "in2",
                                extra=["--pidfile", pidfile]), cwd=other)
        assert r4.returncode == EX_TEMPFAIL, r4
        assert str(pidfile).encode() in r4.stderr, r4.stderr
        assert pidfile.read_text().strip() == str(pid)
    finally:
        if pid:
            assert stop_pid(pid), "the --daemon process ignored SIGTERM"
    assert not pidfile.exists(), "pidfile left behind after a clean stop"
    ev = read_log(tmp_path / "logs" / "tw.log")
    assert ev and ev[-1]["event"] == "shutdown", ev[-3:]


@needs_daemon
def test_daemon_mode_reports_start_up_error(tmp_path):
    (tmp_path / "not-a-dir").write_text("x")
    r = run_tw(daemon_args(tmp_path, inp=tmp_path / "not-a-dir",
                           extra=["--daemon", "--pidfile",
                                  tmp_path / "tw.pid"]), cwd=tmp_path)
    assert r.returncode == EX_NOINPUT, r
    assert b"not-a-dir" in r.stderr, r.stderr
    assert not (tmp_path / "tw.pid").exists()


@needs_daemon
def test_daemon_stale_pidfile_reused(tmp_path):
    (tmp_path / "in").mkdir()
    pidfile = tmp_path / "tw.pid"
    pidfile.write_text("999999999\n")        # left by a kill -9
    r = run_tw(daemon_args(tmp_path, extra=["--daemon", "--pidfile",
                                            pidfile]), cwd=tmp_path)
    assert r.returncode == 0, r
    pid = int(pidfile.read_text())
    try:
        assert pid != 999999999 and pid_alive(pid)
    finally:
        stop_pid(pid)


@needs_daemon
def test_second_foreground_daemon_refused(daemons, tmp_path):
    a = daemons.start()
    other = tmp_path / "b"
    other.mkdir()
    extra = ["--runtime-dir", other / "run"] if HAS_RUNTIME else []
    r = run_tw(daemon_args(other, inp=a.input, extra=extra), cwd=other)
    assert r.returncode == EX_TEMPFAIL, r
    err = r.stderr.decode()
    assert str(a.input) in err or str(a.input.resolve()) in err, err
    assert f"pid {a.pid}" in err, err
    # The first one is unharmed.
    a.quiet(0.5)


@needs_daemon
def test_once_refused_while_daemon_runs(daemons, tmp_path):
    a = daemons.start()
    r = run_tw(["once", "--config", a.ini, "--env-file", empty_env(tmp_path),
                "--input-dir", a.input, "--output-dir", tmp_path / "o2",
                "--log-file", tmp_path / "o2.log"], cwd=tmp_path)
    assert r.returncode == EX_TEMPFAIL, r
    assert f"pid {a.pid}".encode() in r.stderr, r.stderr


# --------------------------------------------------------------------------
# status, reprocess, retry-failed


def ctl(d, *args):
    """A control command against daemon d (same working folder and
    configuration, so the same RUNTIME_DIR)."""
    return run_tw(list(args) + ["--config", d.ini,
                                "--env-file", empty_env(d.root)],
                  cwd=d.root)


def status_json(d):
    r = ctl(d, "status", "--json")
    assert r.returncode == 0, r
    lines = r.stdout.decode().splitlines()
    assert len(lines) == 1, r.stdout
    return json.loads(lines[0])


@needs_control
def test_status_known_counts(daemons, tmp_path):
    for n in ("a", "b", "sub/c"):
        make_jpeg(tmp_path / "in" / f"{n}.jpg")
    write_file(tmp_path / "in" / "bad.jpg", b"this is not an image\n")
    d = daemons.start()
    d.wait_outcomes(["a.jpg", "b.jpg", "sub/c.jpg", "bad.jpg"])
    # The socket is the daemon user's alone.
    sock = d.root / "run" / "thumbwatch.sock"
    assert stat.S_ISSOCK(os.stat(sock).st_mode)
    assert mode(sock) == 0o600
    assert mode(d.root / "run") == 0o700

    def settled(_ev):
        s = status_json(d)
        return s if s["queued"] == 0 and s["in_flight"] == 0 else None
    s = d.wait_for(settled, what="an idle status")
    assert s["ok"] is True and s["command"] == "status"
    assert s["pid"] == d.pid
    assert s["state"] == "running"
    assert (s["done"], s["failed"], s["skipped"]) == (3, 1, 0), s
    assert s["workers"] == 2
    assert s["workers_busy"] + s["workers_idle"] == 2
    assert s["worker_restarts"] == 0
    assert s["watched_dirs"] >= 2
    assert os.path.realpath(s["input_dir"]) == os.path.realpath(d.input)
    assert s["last_minute"]["done"] == 3
    assert s["last_minute"]["failed"] == 1
    assert s["uptime_s"] >= 0
    assert [f["file"] for f in s["recent_failures"]] == ["bad.jpg"]
    assert s["recent_failures"][0]["error"]
    assert "3 done, 1 failed, 0 skipped" in s["text"]

    r = ctl(d, "status")
    assert r.returncode == 0, r
    out = r.stdout.decode()
    assert out == s["text"] or "3 done, 1 failed" in out, out
    assert "bad.jpg" in out
    assert f"pid {d.pid}" in out
    for word in ("queue", "workers", "last min"):
        assert word in out, out


@needs_control
def test_status_without_daemon(tmp_path):
    r = run_tw(["status", "--config", write_ini(tmp_path / "tw.ini", ""),
                "--env-file", empty_env(tmp_path)], cwd=tmp_path)
    assert r.returncode == EX_UNAVAILABLE, r
    assert b"run/thumbwatch.sock" in r.stderr, r.stderr
    r = run_tw(["status", "--json", "--config", tmp_path / "tw.ini",
                "--env-file", empty_env(tmp_path)], cwd=tmp_path)
    assert r.returncode == EX_UNAVAILABLE, r
    assert r.stdout == b""


@needs_control
def test_reprocess_redoes_exactly_the_named_files(daemons, tmp_path):
    names = ["a.jpg", "b.jpg", "trip/c.jpg"]
    for n in names:
        make_jpeg(tmp_path / "in" / n)
    d = daemons.start()
    d.wait_outcomes(names)
    thumb = d.output / "a_thumb.jpg"
    before = os.stat(thumb).st_ino
    # One path relative to the current folder, one relative to INPUT_DIR.
    r = ctl(d, "reprocess", "in/a.jpg", "trip/c.jpg")
    assert r.returncode == 0, r
    assert r.stdout.count(b"queued") == 2, r.stdout

    def redone(ev):
        n = {f: sum(1 for e in ev if e["event"] == "done" and
                    e.get("file") == f) for f in names}
        return n if n["a.jpg"] >= 2 and n["trip/c.jpg"] >= 2 else None
    d.wait_for(redone, what="a second done line for a.jpg and trip/c.jpg")
    d.quiet(0.5)
    counts = {f: len(d.outcomes(f)) for f in names}
    assert counts == {"a.jpg": 2, "b.jpg": 1, "trip/c.jpg": 2}, counts
    assert os.stat(thumb).st_ino != before, "a_thumb.jpg was not rewritten"

    # Not in the tree, outside it, or missing: not queued, status 1.
    (tmp_path / "elsewhere.jpg").write_bytes(jpeg_bytes())
    r = ctl(d, "reprocess", "nope.jpg", str(tmp_path / "elsewhere.jpg"),
            "b.jpg")
    assert r.returncode == 1, r
    out = r.stdout.decode() + r.stderr.decode()
    assert "nope.jpg" in out and "elsewhere.jpg" in out, out
    r = ctl(d, "reprocess", "--json", "nope.jpg")
    assert r.returncode == 1
    res = json.loads(r.stdout)
    assert res["ok"] is False and res["errors"] == 1
    assert res["results"][0]["path"] == "nope.jpg"
    d.wait_for(lambda ev: sum(1 for e in ev if e["event"] == "done" and
                              e.get("file") == "b.jpg") >= 2,
               what="b.jpg redone")
    assert len(d.outcomes("a.jpg")) == 2


@needs_control
def test_retry_failed_redoes_exactly_the_failed_files(daemons, tmp_path):
    # big.jpg fails on MAX_FILE_SIZE, bad.jpg is not an image, tiny.jpg
    # is made.
    make_jpeg(tmp_path / "in" / "big.jpg", 640, 480)
    write_file(tmp_path / "in" / "bad.jpg", b"not an image at all\n")
    make_jpeg(tmp_path / "in" / "tiny.jpg", 8, 8)
    assert os.path.getsize(tmp_path / "in" / "tiny.jpg") < 4096
    d = daemons.start(ini="[thumbwatch]\nmax_file_size = 4K\n")
    got = d.wait_outcomes(["big.jpg", "bad.jpg", "tiny.jpg"])
    assert got["big.jpg"]["event"] == "failed"
    assert got["bad.jpg"]["event"] == "failed"
    assert got["tiny.jpg"]["event"] == "done"
    # Raise the limit: a reload alone does not retry what failed before
    # (same bytes, same verdict) ...
    write_ini(d.ini, "[thumbwatch]\nmax_file_size = 0\n")
    d.send_signal(signal.SIGHUP)
    d.wait_event("reload")
    d.quiet(1.0)
    assert len(d.outcomes("big.jpg")) == 1
    # ... retry-failed does, for exactly the two failed files.
    r = ctl(d, "retry-failed")
    assert r.returncode == 0, r
    assert b"2 failed files queued again" in r.stdout, r.stdout
    d.wait_for(lambda ev: len([e for e in ev if e["event"] in
                               ("done", "failed", "skipped") and
                               e.get("file") in ("big.jpg", "bad.jpg")]) >= 4,
               what="second outcomes for big.jpg and bad.jpg")
    d.quiet(0.5)
    assert [e["event"] for e in d.outcomes("big.jpg")] == ["failed", "done"]
    assert [e["event"] for e in d.outcomes("bad.jpg")] == ["failed", "failed"]
    assert len(d.outcomes("tiny.jpg")) == 1
    assert (d.output / "big_thumb.jpg").is_file()
    # Nothing left to retry but bad.jpg.
    r = ctl(d, "retry-failed", "--json")
    assert r.returncode == 0
    assert json.loads(r.stdout)["queued"] == 1


def test_an_edit_of_the_live_ini_wins_under_the_unit(tmp_path):
    # Under the shipped unit a user edits /etc/thumbwatch/thumbwatch.ini;
    # the value in effect must be theirs, whatever the unit sets.
    dest = tmp_path / "root"
    make_install(dest)
    ini = dest / "etc/thumbwatch/thumbwatch.ini"
    ini.write_text(ini.read_text().replace(
        "input_dir = /var/lib/thumbwatch/input", "input_dir = /srv/photos"))
    s = unit_settings(UNIT.read_text())
    env = dict(v.split("=", 1) for v in s.get("Environment", []))
    args = s["ExecStart"][-1].split()[2:]      # after "BIN run"
    args = [str(ini) if a == "/etc/thumbwatch/thumbwatch.ini" else a
            for a in args]
    r = subprocess.run([BIN, "check-config", *args, "--env-file",
                        str(empty_env(tmp_path))], capture_output=True,
                       timeout=30, cwd=tmp_path, env=clean_env(env))
    assert r.returncode == 0, r
    line = [ln for ln in r.stdout.decode().splitlines()
            if ln.startswith("INPUT_DIR")]
    assert line and "/srv/photos" in line[0] and str(ini) in line[0], line


@needs_control
def test_reprocess_a_folder_redoes_everything_below_it(daemons, tmp_path):
    names = ["top.jpg", "trip/a.jpg", "trip/day2/b.jpg"]
    for n in names:
        make_jpeg(tmp_path / "in" / n)
    d = daemons.start()
    d.wait_outcomes(names)
    r = ctl(d, "reprocess", "trip")
    assert r.returncode == 0, r
    assert b"2 files" in r.stdout, r.stdout
    d.wait_for(lambda ev: all(
        sum(1 for e in ev if e["event"] == "done" and e.get("file") == f)
        >= 2 for f in names[1:]), what="trip's files made again")
    d.quiet(0.5)
    assert len(d.outcomes("top.jpg")) == 1


def test_failures_lists_remembered_failures(daemons, tmp_path):
    write_file(tmp_path / "in" / "bad.jpg", b"not an image at all\n")
    write_file(tmp_path / "in" / "sub" / "worse.png", b"\x89PNG\r\n\x1a\nxx")
    make_jpeg(tmp_path / "in" / "fine.jpg")
    d = daemons.start()
    got = d.wait_outcomes(["bad.jpg", "sub/worse.png", "fine.jpg"])
    errors = {f: e["error"] for f, e in got.items() if e["event"] == "failed"}
    assert set(errors) == {"bad.jpg", "sub/worse.png"}, got
    d.stop()
    # no daemon needed: the markers in OUTPUT_DIR are read
    args = ["--config", d.ini, "--env-file", empty_env(d.root),
            "--input-dir", d.input, "--output-dir", d.output]
    r = run_tw(["failures", "--json"] + args, cwd=d.root)
    assert r.returncode == 0, r
    res = json.loads(r.stdout)
    assert res["count"] == 2, res
    listed = {f["file"]: f for f in res["failures"]}
    for name, err in errors.items():
        assert listed[name]["error"] == err, (listed, errors)
        assert listed[name]["current"] is True
        assert re.match(r"\d{4}-\d\d-\d\dT", listed[name]["failed_at"])
    text = run_tw(["failures"] + args, cwd=d.root).stdout.decode()
    assert "bad.jpg" in text and errors["bad.jpg"] in text, text
    # written again: listed as no longer current
    write_file(tmp_path / "in" / "bad.jpg", b"still not an image\n")
    res = json.loads(run_tw(["failures", "--json"] + args,
                            cwd=d.root).stdout)
    assert {f["file"]: f["current"] for f in res["failures"]} == \
        {"bad.jpg": False, "sub/worse.png": True}, res
