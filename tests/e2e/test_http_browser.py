"""The upload page in a real browser: Debian's chromium driven by
playwright-core (tests/browser, installed by tests/install-deps.sh).
Skipped when either is missing."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import REPO, TIMEOUT, jpeg_bytes, png_bytes
from test_http import start

BROWSER_DIR = REPO / "tests" / "browser"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def test_page_uploads_two_images_and_shows_thumbnails(daemons, tmp_path):
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"no chromium at {CHROMIUM}")
    if not shutil.which("node") or not \
            (BROWSER_DIR / "node_modules" / "playwright-core").is_dir():
        pytest.skip("no node or playwright-core (npm install in tests/browser)")
    d = start(daemons)
    a, b = tmp_path / "first.jpg", tmp_path / "second.png"
    a.write_bytes(jpeg_bytes())
    b.write_bytes(png_bytes())
    shot = tmp_path / "page.png"
    r = subprocess.run(["node", str(BROWSER_DIR / "upload.mjs"),
                        f"http://127.0.0.1:{d.port}/", str(shot), str(a),
                        str(b)], capture_output=True, timeout=TIMEOUT * 4,
                       cwd=BROWSER_DIR, stdin=subprocess.DEVNULL)
    assert r.returncode == 0, (r.stdout.decode(), r.stderr.decode()[-3000:],
                               d.describe())
    res = json.loads(r.stdout.decode().strip().splitlines()[-1])
    assert res["failed"] == [] and len(res["done"]) == 2, res
    assert shot.stat().st_size > 1000
    d.wait_outcomes(["first.jpg", "second.png"])
    d.assert_one_outcome("first.jpg")
    d.assert_one_outcome("second.png")
