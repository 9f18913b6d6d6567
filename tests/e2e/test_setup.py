"""What a new user meets first: `make run`'s installs and `--version`."""

import re
import subprocess

from conftest import REPO, make_jpeg, run_tw

# What only the tests use: a daemon user must not get these from `make run`.
TEST_ONLY = {"clang", "libclang-rt-14-dev", "libcmocka-dev", "python3-pytest",
             "redis-server", "redis-tools", "mandoc", "man-db", "systemd",
             "chromium", "nodejs", "npm", "jq", "libvips-tools"}


def deps(*args):
    r = subprocess.run(["sh", str(REPO / "tests" / "install-deps.sh"), *args],
                       capture_output=True, timeout=30)
    assert r.returncode == 0, r
    return set(r.stdout.decode().split())


def test_make_run_installs_only_what_the_daemon_needs():
    run = deps("run", "--list")
    assert run, "the run list is empty"
    assert not run & TEST_ONLY, sorted(run & TEST_ONLY)
    # the build needs a compiler and every library it links
    for pkg in ("build-essential", "pkg-config", "libvips-dev", "libuv1-dev",
                "libinih-dev", "libmicrohttpd-dev", "libhiredis-dev"):
        assert pkg in run, pkg
    # `make test` still gets everything
    assert TEST_ONLY <= deps("test", "--list")
    # and the Makefile's run target uses the run list, test the test list
    n = subprocess.run(["make", "-n", "-C", str(REPO), "run"],
                       capture_output=True, timeout=60).stdout.decode()
    assert "install-deps.sh run" in n, n
    n = subprocess.run(["make", "-n", "-C", str(REPO), "test"],
                       capture_output=True, timeout=60).stdout.decode()
    assert "install-deps.sh test" in n, n


def test_run_folder_is_ignored_by_git():
    r = subprocess.run(["git", "-C", str(REPO), "check-ignore", "-q", "run/x"],
                       timeout=30)
    assert r.returncode == 0, "run/ (the default RUNTIME_DIR) is not ignored"


def test_version_names_the_libraries(tmp_path):
    r = run_tw(["--version"], cwd=tmp_path)
    assert r.returncode == 0, r
    out = r.stdout.decode()
    for lib in ("libvips", "libuv", "libmicrohttpd"):
        assert re.search(lib + r" \d+\.\d+\.\d+", out), out


def test_orchestrator_variables_warn_but_do_not_stop_the_daemon(daemons):
    # What Kubernetes injects for a Service named thumbwatch.
    env = {"THUMBWATCH_SERVICE_HOST": "10.0.0.7",
           "THUMBWATCH_SERVICE_PORT": "8080",
           "THUMBWATCH_PORT": "tcp://10.0.0.7:8080",
           "THUMBWATCH_PORT_8080_TCP_ADDR": "10.0.0.7",
           "THUMBWATCH_WORKER": "3"}
    d = daemons.start(env=env)
    make_jpeg(d.input / "a.jpg")
    d.wait_done("a.jpg")
    err = d.stderr().decode()
    assert "THUMBWATCH_SERVICE_HOST: unknown key, ignored" in err, err
    assert "did you mean THUMBWATCH_WORKERS?" in err, err
    # in a file or on the command line a typo stays an error
    (d.root / "typo.env").write_text("THUMBWATCH_WORKER=3\n")
    r = run_tw(["check-config", "--config", str(d.ini), "--env-file",
                str(d.root / "typo.env")], cwd=d.root)
    assert r.returncode == 78 and b"WORKER: unknown key" in r.stderr, r


def ini_sections(text):
    """{section: {key: value}} of INI text, comments and '; ' prefixes
    dropped (the shipped presets are commented out)."""
    out, cur = {}, None
    for line in text.splitlines():
        line = re.sub(r"^;\s?", "", line.strip())
        line = re.sub(r"\s+;.*$", "", line).strip()
        if line.startswith("[") and line.endswith("]"):
            cur = out.setdefault(line[1:-1], {})
        elif cur is not None and "=" in line and not line.startswith("#"):
            k, v = (x.strip() for x in line.split("=", 1))
            cur[k] = v
    return out


def test_readme_preset_example_is_the_shipped_one():
    shipped = ini_sections((REPO / "config" / "thumbwatch.ini").read_text())
    readme = (REPO / "README.md").read_text()
    block = re.search(r"```ini\n(\[preset square\].*?)```", readme, re.S)
    assert block, "README has no [preset square] example"
    assert ini_sections(block.group(1))["preset square"] == \
        shipped["preset square"]
    # every shipped preset, enabled, is a different size or format
    presets = [tuple(sorted(v.items())) for k, v in shipped.items()
               if k.startswith("preset ")]
    assert len(presets) == len(set(presets)), presets
