"""The upload page in a real browser: Debian's chromium driven by
playwright-core (tests/browser, installed by tests/install-deps.sh).
Skipped when either is missing."""

import json
import os
import shutil
import subprocess

import pytest

from conftest import REPO, TIMEOUT
from test_http import start

BROWSER_DIR = REPO / "tests" / "browser"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# The README's picture of the page is this test's screenshot: set to copy
# it there (make it small: the test's images are).
SCREENSHOT_TO = os.environ.get("THUMBWATCH_PAGE_SCREENSHOT")


def test_page_grid_live_panel_and_failures_in_place(daemons, tmp_path):
    """Three good files, one the upload refuses (415) and one a worker
    fails on: five tiles side by side, three with thumbnails, two with
    their reason; the panel counts done 3 and failed 1 from /events, with
    at most one /status request (none after the first)."""
    if not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"no chromium at {CHROMIUM}")
    if not shutil.which("node") or not \
            (BROWSER_DIR / "node_modules" / "playwright-core").is_dir():
        pytest.skip("no node or playwright-core (npm install in tests/browser)")
    d = start(daemons)
    good = ("landscape.jpg", "alpha.png", "photo.webp")
    files = {n: (REPO / "samples" / n).read_bytes() for n in good}
    files |= {
             "notes.jpg": b"shopping list, not a picture\n" * 20,
             "broken.jpg": b"\xff\xd8\xff\xe0" + b"junk" * 100}
    paths = []
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        paths.append(str(tmp_path / name))
    shot = tmp_path / "page.png"
    r = subprocess.run(["node", str(BROWSER_DIR / "upload.mjs"),
                        f"http://127.0.0.1:{d.port}/", str(shot), *paths],
                       capture_output=True, timeout=TIMEOUT * 4,
                       cwd=BROWSER_DIR, stdin=subprocess.DEVNULL,
                       env={**os.environ,
                            "UPLOAD_WAIT_MS": str(int(TIMEOUT * 1000))})
    assert r.returncode == 0, (r.stdout.decode(), r.stderr.decode()[-3000:],
                               d.describe())
    res = json.loads(r.stdout.decode().strip().splitlines()[-1])
    print("page settled in", res["elapsed_ms"], "ms")
    tiles = {t["name"].split(" \u2192 ")[0]: t for t in res["tiles"]}
    assert sorted(tiles) == sorted(files), res
    for name in good:
        t = tiles[name]
        assert t["state"] == "done" and t["thumbs"] >= 1 and \
            t["thumbs"] == t["imgs"], (name, res)
    # Refused at the door (per-file 415): the answer's reason, in its tile.
    assert tiles["notes.jpg"]["state"] == "failed" and \
        "not an image" in tiles["notes.jpg"]["reason"], res
    # Stored, then a worker failed on it: the failed event's reason.
    assert tiles["broken.jpg"]["state"] == "failed" and \
        tiles["broken.jpg"]["reason"], res
    assert res["settled"], res
    # The live panel: fed by /events, not by polling /status.
    assert res["panel"]["done"] == 3 and res["panel"]["failed"] == 1, res
    assert res["status_requests"] <= 1, res
    # A grid, not a column of full-width cards: the five share one row.
    assert len({t["y"] for t in res["tiles"]}) == 1, res
    assert all(t["w"] < res["page_width"] / 3 for t in res["tiles"]), res
    assert shot.stat().st_size > 1000
    if SCREENSHOT_TO:
        shutil.copyfile(shot, SCREENSHOT_TO)
    d.wait_outcomes([*good, "broken.jpg"])
    for name in good:
        d.assert_one_outcome(name)
    d.assert_one_outcome("broken.jpg", "failed")
