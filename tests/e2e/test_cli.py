"""Command line, configuration sources, exit codes, check-config."""

import os
import re

import pytest

from conftest import KEYS, REPO, empty_env, flag, run_tw, write_ini

DUMP_RE = re.compile(r"^([A-Z][A-Z0-9_]*) = ?(.*?)\s+# ([^#]*?)\s*$")


def base(tmp_path, ini=None):
    """Arguments that keep the repo's config and .env out."""
    if ini is None:
        ini = write_ini(tmp_path / "tw.ini", "")
    return ["--config", ini, "--env-file", empty_env(tmp_path)]


def dump(tmp_path, args=(), env=None, ini=None):
    """check-config -> {KEY: (value, source)}, full stdout."""
    r = run_tw(["check-config"] + base(tmp_path, ini) + list(args),
               cwd=tmp_path, env=env)
    out = r.stdout.decode()
    assert r.returncode == 0, (r.returncode, out, r.stderr)
    keys = {}
    for line in out.splitlines():
        m = DUMP_RE.match(line)
        if m and m.group(1) in KEYS:
            keys[m.group(1)] = (m.group(2).strip(), m.group(3).strip())
    return keys, out


def test_help_lists_every_key(tmp_path):
    r = run_tw(["--help"], cwd=tmp_path)
    assert r.returncode == 0, r
    out = r.stdout.decode()
    for k in KEYS:
        assert k in out or flag(k) in out, f"--help does not mention {k}"
    for cmd in ("run", "once", "check-config"):
        assert cmd in out
    r2 = run_tw(["-h"], cwd=tmp_path)
    assert r2.returncode == 0 and r2.stdout == r.stdout


def test_version(tmp_path):
    version = (REPO / "VERSION").read_text().strip()
    for arg in ("--version", "-V"):
        r = run_tw([arg], cwd=tmp_path)
        assert r.returncode == 0, r
        assert version in r.stdout.decode(), r.stdout


@pytest.mark.parametrize("args", [
    ["--no-such-flag"],
    ["run", "--no-such-flag", "1"],
    ["frobnicate"],
    ["once", "extra-argument"],
    ["check-config", "--workers"],      # flag without its value
])
def test_usage_error_is_64(tmp_path, args):
    r = run_tw(args + base(tmp_path), cwd=tmp_path, timeout=15)
    assert r.returncode == 64, (args, r.returncode, r.stderr)
    assert r.stderr.strip(), "a usage error must say something on stderr"
    assert not (tmp_path / "data").exists(), "a usage error created data/"


@pytest.mark.parametrize("key,value", [
    ("WORKERS", "abc"),
    ("WORKERS", "-3"),
    ("BATCH_SIZE", "0x"),
    ("MAX_FILE_SIZE", "12Q"),
    ("LOG_LEVEL", "loud"),
    ("SOURCE_ACTION", "shred"),
    ("MIRROR_DELETES", "perhaps"),
    ("WATCH_BACKEND", "kqueue"),
    ("OUTPUT_TEMPLATE", "../{stem}_{preset}.{ext}"),
])
def test_bad_value_from_flag(tmp_path, key, value):
    for form in ([flag(key), value], [f"{flag(key)}={value}"]):
        r = run_tw(["check-config"] + base(tmp_path) + form, cwd=tmp_path,
                   timeout=15)
        err = r.stderr.decode()
        assert r.returncode == 78, (form, r.returncode, err)
        assert key in err and value in err and "command line" in err, err


def test_bad_value_from_environment(tmp_path):
    r = run_tw(["check-config"] + base(tmp_path), cwd=tmp_path,
               env={"THUMBWATCH_WORKERS": "lots"}, timeout=15)
    err = r.stderr.decode()
    assert r.returncode == 78, (r.returncode, err)
    assert "WORKERS" in err and "lots" in err and "environment" in err, err


def test_bad_value_from_ini_names_file_and_line(tmp_path):
    ini = write_ini(tmp_path / "tw.ini",
                    "# thumbwatch\n[thumbwatch]\nbatch_size = 4\n"
                    "workers = abc\n")
    r = run_tw(["check-config"] + base(tmp_path, ini), cwd=tmp_path,
               timeout=15)
    err = r.stderr.decode()
    assert r.returncode == 78, (r.returncode, err)
    assert "WORKERS" in err and "abc" in err and f"{ini}:4" in err, err


def test_bad_value_from_env_file_names_file_and_line(tmp_path):
    envf = tmp_path / "my.env"
    envf.write_text("# comment\nTHUMBWATCH_BATCH_SIZE=4\n"
                    "THUMBWATCH_MAX_PIXELS=huge\n")
    r = run_tw(["check-config", "--config", write_ini(tmp_path / "tw.ini"),
                "--env-file", envf], cwd=tmp_path, timeout=15)
    err = r.stderr.decode()
    assert r.returncode == 78, (r.returncode, err)
    assert "MAX_PIXELS" in err and "huge" in err and "my.env:3" in err, err


def test_bad_preset_in_ini(tmp_path):
    ini = write_ini(tmp_path / "tw.ini",
                    "[preset small]\nwidth = 100\nheight = 100\n"
                    "fit = squash\n")
    r = run_tw(["check-config"] + base(tmp_path, ini), cwd=tmp_path,
               timeout=15)
    err = r.stderr.decode()
    assert r.returncode == 78, (r.returncode, err)
    assert "squash" in err and f"{ini}:4" in err, err


def test_bad_value_stops_run_before_starting(tmp_path):
    """`run` with a bad value exits 78 at start-up, watching nothing."""
    r = run_tw(["run"] + base(tmp_path) + ["--input-dir", tmp_path / "in",
               "--output-dir", tmp_path / "out", "--log-file",
               tmp_path / "tw.log", "--workers=abc"], cwd=tmp_path,
               timeout=15)
    assert r.returncode == 78, r
    assert b"WORKERS" in r.stderr and b"abc" in r.stderr


def test_check_config_prints_every_key_with_its_source(tmp_path):
    keys, out = dump(tmp_path)
    missing = [k for k in KEYS if k not in keys]
    assert not missing, f"check-config lacks {missing}:\n{out}"
    for k, (v, src) in keys.items():
        assert src == "default", (k, v, src)
    assert keys["INPUT_DIR"][0].endswith("data/input")
    assert keys["OUTPUT_DIR"][0].endswith("data/output")
    assert keys["LOG_FILE"][0].endswith("logs/thumbwatch.log")
    assert keys["OUTPUT_TEMPLATE"][0].strip("\"'") == \
        "{dir}/{stem}_{preset}.{ext}"
    exts = keys["EXTENSIONS"][0].strip("\"'").replace(" ", "").split(",")
    assert exts == ["jpg", "jpeg", "png", "webp", "tif", "tiff", "gif",
                    "heic", "heif", "avif", "jxl"]
    assert keys["MIRROR_DELETES"][0].lower() in ("true", "yes", "1", "on")
    assert keys["SOURCE_ACTION"][0] == "keep"
    # the built-in preset
    assert "thumb" in out and "300" in out
    # check-config only reads: it creates no folders
    assert not (tmp_path / "data").exists()
    assert not (tmp_path / "logs").exists()


def test_precedence_flag_env_dotenv_ini_default(tmp_path):
    ini = write_ini(tmp_path / "tw.ini",
                    "[thumbwatch]\n"
                    "batch_size = 3\n"
                    "stats_interval_s = 13\n"
                    "rescan_interval_s = 23\n"
                    "settle_ms = 333\n")
    envf = tmp_path / "my.env"
    envf.write_text("# .env\n"
                    "THUMBWATCH_BATCH_SIZE=5\n"
                    "THUMBWATCH_STATS_INTERVAL_S=15\n"
                    "THUMBWATCH_RESCAN_INTERVAL_S=25\n"
                    "OTHER_VARIABLE=ignored\n")
    env = {"THUMBWATCH_BATCH_SIZE": "7", "THUMBWATCH_STATS_INTERVAL_S": "17"}
    r = run_tw(["check-config", "--config", ini, "--env-file", envf,
                "--batch-size", "9"], cwd=tmp_path, env=env)
    assert r.returncode == 0, r
    keys = {}
    for line in r.stdout.decode().splitlines():
        m = DUMP_RE.match(line)
        if m:
            keys[m.group(1)] = (m.group(2).strip(), m.group(3).strip())
    assert keys["BATCH_SIZE"] == ("9", "command line"), keys["BATCH_SIZE"]
    assert keys["STATS_INTERVAL_S"] == ("17", "environment")
    v, src = keys["RESCAN_INTERVAL_S"]
    assert v == "25" and src.endswith("my.env:4"), (v, src)
    v, src = keys["SETTLE_MS"]
    assert v == "333" and src == f"{ini}:5", (v, src)
    assert keys["BATCH_WAIT_MS"][1] == "default"


def test_flag_equals_form_and_preset_listing(tmp_path):
    ini = write_ini(tmp_path / "tw.ini",
                    "[preset small]\nwidth = 120\nheight = 90\n"
                    "format = webp\nquality = 70\n\n"
                    "[preset large]\nwidth = 1024\nheight = 768\n"
                    "fit = cover\n")
    keys, out = dump(tmp_path, ["--max-file-size=2M", "--log-level=warn"],
                     ini=ini)
    assert keys["LOG_LEVEL"] == ("warn", "command line")
    v, src = keys["MAX_FILE_SIZE"]
    assert src == "command line" and v in ("2M", "2097152", "2 MiB"), v
    assert "small" in out and "large" in out
    assert "1024" in out and "webp" in out
    # an INI with presets replaces the built-in one
    assert not re.search(r"\bthumb\b", out), out


def test_default_run_creates_default_dirs(tmp_path):
    """No --input-dir etc.: the defaults are relative to cwd; `once` on an
    empty default tree exits 0 and creates data/input, data/output and
    logs/thumbwatch.log."""
    (tmp_path / "data" / "input").mkdir(parents=True)
    r = run_tw(["once"] + base(tmp_path) + ["--workers", "1"],
               cwd=tmp_path)
    assert r.returncode == 0, r
    assert (tmp_path / "logs" / "thumbwatch.log").is_file()


def test_missing_named_files_are_errors(tmp_path):
    """A file named on the command line must exist (a typo must not run the
    daemon on other settings); the implicit ./.env and config/thumbwatch.ini
    are read only when present."""
    r = run_tw(["check-config", "--config", write_ini(tmp_path / "tw.ini"),
                "--env-file", tmp_path / "no-such.env"], cwd=tmp_path)
    assert r.returncode == 78, (r.returncode, r.stderr)
    assert b"no-such.env" in r.stderr, r.stderr
    r = run_tw(["check-config", "--config", tmp_path / "no-such.ini"],
               cwd=tmp_path)
    assert r.returncode == 78, (r.returncode, r.stderr)
    assert b"no-such.ini" in r.stderr, r.stderr
    r = run_tw(["check-config"], cwd=tmp_path)
    assert r.returncode == 0, (r.returncode, r.stderr)


def test_repo_dotenv_not_read_with_explicit_env_file(tmp_path):
    """A ./.env in cwd is not read when --env-file names another file."""
    (tmp_path / ".env").write_text("THUMBWATCH_BATCH_SIZE=11\n")
    keys, _ = dump(tmp_path)
    assert keys["BATCH_SIZE"][1] == "default", keys["BATCH_SIZE"]
    # and is read by default
    r = run_tw(["check-config", "--config", write_ini(tmp_path / "tw.ini")],
               cwd=tmp_path)
    assert r.returncode == 0, r
    assert re.search(r"^BATCH_SIZE = 11\s+# \S*\.env:1", r.stdout.decode(),
                     re.M), r.stdout.decode()


def test_output_dir_same_as_input_dir(tmp_path):
    """OUTPUT_DIR equal to INPUT_DIR is a configuration error (78)."""
    d = tmp_path / "same"
    r = run_tw(["check-config"] + base(tmp_path) +
               ["--input-dir", d, "--output-dir", d], cwd=tmp_path,
               timeout=15)
    assert r.returncode == 78, r
    assert b"OUTPUT_DIR" in r.stderr, r.stderr


def test_workers_zero_means_cpus(daemons):
    d = daemons.start(workers=0)
    assert d.by_event("start")[0]["workers"] == os.cpu_count()
    d.wait_for(lambda ev: len(d.live_workers()) == os.cpu_count(),
               what="one worker per CPU")
