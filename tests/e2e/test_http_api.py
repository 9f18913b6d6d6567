"""What a new user of the HTTP API trips over (issue 12, items 13 and 14):
one bad file in a multipart upload no longer sinks the good ones (a
207-style answer per file), GET /jobs lists recent jobs, /thumbnails
answers Range requests, connections are kept alive, and /favicon.ico
exists.  Only the standard library talks HTTP here."""

import http.client
import json
import socket
import time

from conftest import TIMEOUT, jpeg_bytes, png_bytes
from test_http import input_files, req, start, upload, upload_ok, wait_job

SVG = b"<svg xmlns='x'></svg>" * 10


def test_one_bad_file_does_not_sink_the_others(daemons):
    d = start(daemons)
    jpg, png = jpeg_bytes(), png_bytes()
    st, _, body = upload(d, [("a.jpg", jpg), ("fake.jpg", SVG),
                             ("empty.jpg", b""), ("b.png", png)])
    assert st == 207, (st, body)
    files = json.loads(body)["files"]
    assert [f["name"] for f in files] == ["a.jpg", "fake.jpg", "empty.jpg",
                                          "b.png"], files
    assert [f["http_status"] for f in files] == [202, 415, 415, 202], files
    assert "not an image" in files[1]["reason"], files[1]
    assert files[2]["reason"] == "empty file", files[2]
    assert "id" not in files[1] and "id" not in files[2], files
    # The good ones are stored with their own bytes and processed; the bad
    # ones leave nothing behind.
    time.sleep(0.3)
    assert input_files(d) == ["a.jpg", "b.png"], input_files(d)
    assert (d.input / "a.jpg").read_bytes() == jpg
    assert (d.input / "b.png").read_bytes() == png
    for f in (files[0], files[3]):
        wait_job(d, f["id"])
    # Every file bad: the request is refused as before (415), naming the
    # first bad file, and still listing each.
    st, _, body = upload(d, [("x.jpg", SVG), ("y.jpg", b"")])
    ans = json.loads(body)
    assert st == 415 and "x.jpg" in ans["error"], (st, body)
    assert [(f["name"], f["http_status"]) for f in ans["files"]] == \
        [("x.jpg", 415), ("y.jpg", 415)], ans
    assert input_files(d) == ["a.jpg", "b.png"], input_files(d)
