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


def test_keep_alive_and_idle_connections_closed(daemons):
    d = start(daemons, env_args=["--http-request-timeout-s", "2"])
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=TIMEOUT)
    try:
        # Several requests, an upload among them, on one connection.
        c.request("GET", "/status")
        r = c.getresponse()
        assert r.status == 200 and r.getheader("Connection") != "close", \
            r.getheaders()
        r.read()
        sock = c.sock
        assert sock is not None, "closed after the first answer"
        body = b"--b0\r\nContent-Disposition: form-data; name=\"file\"; " \
            b"filename=\"k.jpg\"\r\n\r\n" + jpeg_bytes() + b"\r\n--b0--\r\n"
        c.request("POST", "/upload", body,
                  {"Content-Type": "multipart/form-data; boundary=b0"})
        r = c.getresponse()
        jid = json.loads(r.read())["files"][0]["id"]
        assert r.status == 202 and c.sock is sock
        c.request("GET", f"/jobs/{jid}")
        r = c.getresponse()
        r.read()
        assert r.status == 200 and c.sock is sock, "a new connection"
        # Idle, it is closed at HTTP_REQUEST_TIMEOUT_S.
        t0 = time.monotonic()
        sock.settimeout(2 + 6 * 3)
        assert sock.recv(1) == b"", "data on an idle connection"
        assert 1.5 < time.monotonic() - t0 < 2 + 6 * 3
    finally:
        c.close()


def jobs(d, path, headers=None):
    st, _, body = req(d, "GET", path, headers=headers)
    return st, json.loads(body)


def test_jobs_list_newest_first_paged(daemons):
    d = start(daemons, env_args=["--http-token", "s3cret"])
    auth = {"Authorization": "Bearer s3cret"}
    files = upload_ok(d, [(f"p{i}.jpg", jpeg_bytes()) for i in range(5)],
                      auth)
    ids = [f["id"] for f in files]
    for f in files:
        wait_job(d, f["id"], headers=auth)
    assert jobs(d, "/jobs")[0] == 401
    st, page = jobs(d, "/jobs", auth)
    assert st == 200 and [j["id"] for j in page["jobs"]] == ids[::-1], page
    assert page["jobs"][0]["name"] == "p4.jpg", page
    assert page["jobs"][0]["status"] == "done" and "next" not in page, page
    seen, path = [], "/jobs?limit=2"
    for _ in range(5):
        st, page = jobs(d, path, auth)
        assert st == 200 and len(page["jobs"]) <= 2, page
        seen += [j["id"] for j in page["jobs"]]
        if "next" not in page:
            break
        path = page["next"]
    assert seen == ids[::-1], seen
    st, page = jobs(d, f"/jobs?before={ids[2]}", auth)
    assert [j["id"] for j in page["jobs"]] == ids[1::-1], page
    for bad in ("limit=0", "limit=x", "limit=100000", "before=-1"):
        assert jobs(d, "/jobs?" + bad, auth)[0] == 400, bad
    assert jobs(d, "/jobs?before=0", auth)[1]["jobs"] == []


def test_thumbnail_range_requests(daemons):
    d = start(daemons)
    f = upload_ok(d, [("r.jpg", jpeg_bytes())])[0]
    wait_job(d, f["id"])
    url = f["thumbnails"][0]["url"]
    st, h, full = req(d, "GET", url)
    n = len(full)
    assert st == 200 and h.get("accept-ranges") == "bytes", h
    st, h, part = req(d, "GET", url, headers={"Range": "bytes=0-9"})
    assert st == 206 and part == full[:10], (st, h)
    assert h["content-range"] == f"bytes 0-9/{n}", h
    st, h, part = req(d, "GET", url, headers={"Range": "bytes=100-"})
    assert st == 206 and part == full[100:], (st, h)
    st, h, part = req(d, "GET", url, headers={"Range": "bytes=-7"})
    assert st == 206 and part == full[-7:], (st, h)
    assert h["content-range"] == f"bytes {n - 7}-{n - 1}/{n}", h
    st, h, part = req(d, "GET", url, headers={"Range": f"bytes={n}-"})
    assert st == 416 and h["content-range"] == f"bytes */{n}", (st, h)
    # Several ranges, or an If-Range for another version: the whole file.
    st, h, part = req(d, "GET", url, headers={"Range": "bytes=0-1,4-5"})
    assert st == 200 and part == full
    st, h, part = req(d, "GET", url, headers={"Range": "bytes=0-9",
                                               "If-Range": "\"other\""})
    assert st == 200 and part == full
    st, h, part = req(d, "GET", url, headers={"Range": "bytes=0-9",
                                               "If-Range": h["etag"]})
    assert st == 206 and part == full[:10]


def test_favicon_without_token(daemons):
    d = start(daemons, env_args=["--http-token", "s3cret"])
    st, h, body = req(d, "GET", "/favicon.ico")
    assert st == 200 and h["content-type"].startswith("image/"), (st, h)
    assert 0 < len(body) < 2048 and b"<svg" in body
