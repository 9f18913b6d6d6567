"""The HTTP front door (HTTP_LISTEN): uploads, jobs, thumbnails, events,
health and metrics, against the real daemon on a loopback port.

Only the standard library talks HTTP here (http.client, raw sockets for
the half-sent requests), so nothing beyond python3 is needed."""

import http.client
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from conftest import BIN, REPO, SCALE, TIMEOUT, jpeg_bytes, png_bytes, webp_bytes


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(daemons, *, env_args=(), workers=2, ready=True):
    port = free_port()
    d = daemons.start(args=["--http-listen", f"127.0.0.1:{port}",
                            *env_args], workers=workers, ready=ready)
    d.port = port
    d.wait_event("http_listen")
    return d


def req(d, method, path, body=None, headers=None, timeout=None):
    c = http.client.HTTPConnection("127.0.0.1", d.port,
                                   timeout=timeout or TIMEOUT)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def multipart(files, field="file"):
    b = uuid.uuid4().hex
    out = b""
    for name, data in files:
        out += (f"--{b}\r\nContent-Disposition: form-data; name=\"{field}\"; "
                f"filename=\"{name}\"\r\nContent-Type: "
                f"application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
    out += f"--{b}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\n" \
        f"hello\r\n--{b}--\r\n".encode()
    return out, f"multipart/form-data; boundary={b}"


def upload(d, files, headers=None):
    body, ct = multipart(files)
    h = {"Content-Type": ct, **(headers or {})}
    return req(d, "POST", "/upload", body, h)


def upload_ok(d, files, headers=None):
    st, _, body = upload(d, files, headers)
    assert st == 202, (st, body, d.describe())
    return json.loads(body)["files"]


def job(d, jid, headers=None):
    st, _, body = req(d, "GET", f"/jobs/{jid}", headers=headers)
    return st, json.loads(body)


def wait_job(d, jid, want="done", headers=None):
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        st, j = job(d, jid, headers)
        assert st == 200, (st, j)
        if j["status"] not in ("queued", "processing"):
            assert j["status"] == want, (j, d.describe())
            return j
        time.sleep(0.05)
    raise AssertionError(f"job {jid} not finished\n" + d.describe())


def input_files(d):
    return sorted(p.name for p in d.input.iterdir())


def test_multipart_single_upload_to_done(daemons):
    d = start(daemons)
    files = upload_ok(d, [("photo.jpg", jpeg_bytes())])
    assert len(files) == 1
    f = files[0]
    assert f["name"] == "photo.jpg" and f["type"] == "jpg", f
    assert f["thumbnails"] == [{"url": "/thumbnails/photo_thumb.jpg"}], f
    j = wait_job(d, f["id"])
    assert j["name"] == "photo.jpg" and j["ms"] >= 0, j
    assert j["thumbnails"][0]["url"] == "/thumbnails/photo_thumb.jpg"
    assert j["thumbnails"][0]["bytes"] > 0, j
    up = d.wait_event("upload")[0]
    assert up["file"] == "photo.jpg" and up["client"] == "127.0.0.1"
    assert up["bytes"] == len(jpeg_bytes()), up
    d.wait_done("photo.jpg")
    d.assert_one_outcome("photo.jpg")
    assert input_files(d) == ["photo.jpg"]


def test_multipart_many_files_names_sanitised_and_unique(daemons):
    d = start(daemons)
    files = upload_ok(d, [("same.jpg", jpeg_bytes()),
                          ("same.jpg", jpeg_bytes(320, 200)),
                          ("../../evil.png", png_bytes()),
                          (".hidden\x01.webp", webp_bytes()),
                          ("noext", jpeg_bytes())])
    names = [f["name"] for f in files]
    assert names == ["same.jpg", "same-1.jpg", "evil.png", "hidden.webp",
                     "noext.jpg"], names
    for f in files:
        wait_job(d, f["id"])
    d.wait_outcomes(names)
    for n in names:
        d.assert_one_outcome(n)
    assert input_files(d) == sorted(names)
    # Same stem, other extension: its own name, so its own thumbnails.
    f = upload_ok(d, [("same.png", png_bytes())])[0]
    assert f["name"] == "same-2.png", f
    wait_job(d, f["id"])


def test_raw_upload(daemons):
    d = start(daemons)
    st, _, body = req(d, "POST", "/upload?name=raw%20one.webp", webp_bytes(),
                      {"Content-Type": "image/webp"})
    assert st == 202, body
    f = json.loads(body)["files"][0]
    assert f["name"] == "raw one.webp", f
    assert f["thumbnails"][0]["url"] == "/thumbnails/raw%20one_thumb.jpg"
    wait_job(d, f["id"])
    st, h, img = req(d, "GET", f["thumbnails"][0]["url"])
    assert st == 200 and img[:3] == b"\xff\xd8\xff", (st, h)


def test_thumbnail_cache_validators(daemons):
    d = start(daemons)
    f = upload_ok(d, [("c.jpg", jpeg_bytes())])[0]
    wait_job(d, f["id"])
    url = f["thumbnails"][0]["url"]
    st, h, body = req(d, "GET", url)
    assert st == 200, st
    assert h["content-type"] == "image/jpeg"
    assert int(h["content-length"]) == len(body)
    assert body == (d.output / "c_thumb.jpg").read_bytes()
    etag, lm = h["etag"], h["last-modified"]
    assert re.fullmatch(r'"[0-9a-f]+-[0-9a-f]+-[0-9a-f]+"', etag), etag
    st, h2, body = req(d, "GET", url, headers={"If-None-Match": etag})
    assert st == 304 and body == b"" and h2["etag"] == etag
    st, _, _ = req(d, "GET", url, headers={"If-Modified-Since": lm})
    assert st == 304
    st, _, _ = req(d, "GET", url, headers={"If-None-Match": '"other"'})
    assert st == 200
    st, _, _ = req(d, "GET", url, headers={
        "If-Modified-Since": "Mon, 01 Jan 1990 00:00:00 GMT"})
    assert st == 200


def test_thumbnails_never_outside_output(daemons, tmp_path):
    d = start(daemons)
    secret = tmp_path / "secret.jpg"
    secret.write_bytes(jpeg_bytes())
    (d.output / "sub").mkdir(parents=True, exist_ok=True)
    (d.output / "sub" / "link.jpg").symlink_to(secret)
    (d.output / ".dot.jpg").write_bytes(jpeg_bytes())
    for path in ["/thumbnails/../secret.jpg", "/thumbnails/%2e%2e/secret.jpg",
                 "/thumbnails/%2E%2E%2Fsecret.jpg",
                 "/thumbnails/sub/../../secret.jpg",
                 "/thumbnails/..%2f..%2fsecret.jpg",
                 "/thumbnails//etc/passwd", "/thumbnails/%2fetc%2fpasswd",
                 "/thumbnails/sub/link.jpg", "/thumbnails/.dot.jpg",
                 "/thumbnails/.thumbwatch/presets/thumb",
                 "/thumbnails/sub", "/thumbnails/", "/thumbnails/nope.jpg"]:
        st, _, body = req(d, "GET", path)
        assert st == 404, (path, st, body[:200])
        assert json.loads(body)["error"], path


def test_token_and_error_codes(daemons):
    d = start(daemons, env_args=["--http-token", "s3cret",
                                 "--http-max-upload", "1M"])
    auth = {"Authorization": "Bearer s3cret"}
    st, h, body = upload(d, [("a.jpg", jpeg_bytes())])
    assert st == 401 and json.loads(body)["error"], body
    assert "bearer" in h.get("www-authenticate", "").lower()
    st, _, _ = upload(d, [("a.jpg", jpeg_bytes())],
                      {"Authorization": "Bearer wrong"})
    assert st == 401
    f = upload_ok(d, [("a.jpg", jpeg_bytes())], auth)[0]
    st, _ = job(d, f["id"])
    assert st == 401
    wait_job(d, f["id"], headers=auth)
    st, j = job(d, "999999", auth)
    assert st == 404 and j["error"]
    st, j = job(d, "abc", auth)
    assert st == 404
    # 413: by Content-Length (answered before the body is sent), and by
    # counting a chunked body.
    s = socket.create_connection(("127.0.0.1", d.port), timeout=TIMEOUT)
    s.sendall(b"POST /upload?name=big.jpg HTTP/1.1\r\nHost: x\r\n"
              b"Authorization: Bearer s3cret\r\nContent-Type: image/jpeg\r\n"
              b"Expect: 100-continue\r\nContent-Length: 2000000\r\n\r\n")
    head = s.recv(65536).decode()
    s.close()
    assert head.startswith("HTTP/1.1 413"), head
    assert '"error"' in head, head

    def chunks():
        for _ in range(150):
            yield b"\xff\xd8\xff" + b"\0" * 9997
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=TIMEOUT)
    c.request("POST", "/upload?name=chunked.jpg", body=chunks(),
              headers={"Content-Type": "image/jpeg", **auth},
              encode_chunked=True)
    r = c.getresponse()
    assert r.status == 413, (r.status, r.read())
    c.close()
    # 415: not an image by its bytes, whatever its name says.
    st, _, body = upload(d, [("fake.jpg", b"<svg xmlns='x'></svg>" * 10)],
                         auth)
    assert st == 415 and json.loads(body)["error"], body
    st, _, body = req(d, "POST", "/upload?name=x.jpg", b"%PDF-1.4" * 10,
                      {"Content-Type": "image/jpeg", **auth})
    assert st == 415, body
    st, _, body = req(d, "POST", "/upload", b"hello",
                      {"Content-Type": "text/plain", **auth})
    assert st == 415, body
    st, _, _ = req(d, "GET", "/upload")
    assert st == 405
    st, _, _ = req(d, "GET", "/nowhere")
    assert st == 404
    # Nothing of the refused uploads is left behind.
    time.sleep(0.3 * SCALE)
    assert input_files(d) == ["a.jpg"], input_files(d)
    d.quiet(0.3)
    assert [e["file"] for e in d.outcomes()] == ["a.jpg"]


def partial_upload(d, name, total, sent):
    """Starts a raw upload of `total` bytes and sends only `sent`."""
    s = socket.create_connection(("127.0.0.1", d.port), timeout=TIMEOUT)
    s.sendall((f"POST /upload?name={name} HTTP/1.1\r\nHost: x\r\n"
               f"Content-Type: image/jpeg\r\nContent-Length: {total}\r\n\r\n"
               ).encode())
    data = jpeg_bytes()
    s.sendall((data * (sent // len(data) + 1))[:sent])
    return s


def test_too_many_uploads_429_and_disconnect_leaves_nothing(daemons):
    d = start(daemons, env_args=["--http-max-uploads", "1"])
    s = partial_upload(d, "slow.jpg", 500_000, 50_000)
    deadline = time.monotonic() + TIMEOUT
    while not any(p.name.startswith(".upload-") for p in d.input.iterdir()):
        assert time.monotonic() < deadline, "no temp file appeared"
        time.sleep(0.02)
    st, _, body = upload(d, [("b.jpg", jpeg_bytes())])
    assert st == 429 and json.loads(body)["error"], body
    # The client goes away half-way: no file, no temp, no outcome.
    s.close()
    deadline = time.monotonic() + TIMEOUT
    while input_files(d):
        assert time.monotonic() < deadline, input_files(d)
        time.sleep(0.02)
    # The slot is free again.
    f = upload_ok(d, [("b.jpg", jpeg_bytes())])[0]
    wait_job(d, f["id"])
    d.quiet(0.3)
    assert [e["file"] for e in d.outcomes()] == ["b.jpg"]
    assert input_files(d) == ["b.jpg"]


def test_disconnect_mid_multipart(daemons):
    d = start(daemons)
    body, ct = multipart([("m.jpg", jpeg_bytes() * 20)])
    s = socket.create_connection(("127.0.0.1", d.port), timeout=TIMEOUT)
    s.sendall((f"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: {ct}\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode())
    s.sendall(body[:len(body) // 2])
    time.sleep(0.3 * SCALE)
    s.close()
    time.sleep(0.5 * SCALE)
    assert input_files(d) == []
    d.quiet(0.3)
    assert d.outcomes() == [] and d.by_event("upload") == []


def parse_prom(text):
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.fullmatch(r"([a-z_]+)(\{[^}]*\})? (\S+)", line)
        assert m, line
        out[m.group(1) + (m.group(2) or "")] = float(m.group(3))
    return out


def test_metrics_match_the_log(daemons):
    d = start(daemons)
    good = upload_ok(d, [("m1.jpg", jpeg_bytes()), ("m2.png", png_bytes())])
    # Sniffs as JPEG, fails to decode: a failed outcome.
    bad = upload_ok(d, [("broken.jpg", b"\xff\xd8\xff\xe0" + b"junk" * 100)])
    for f in good:
        wait_job(d, f["id"])
    j = wait_job(d, bad[0]["id"], want="failed")
    assert j["reason"], j
    st, h, body = req(d, "GET", "/metrics")
    assert st == 200 and h["content-type"].startswith("text/plain")
    m = parse_prom(body.decode())
    ev = d.outcomes()
    for outcome in ("done", "failed", "skipped"):
        n = sum(1 for e in ev if e["event"] == outcome)
        assert m[f'thumbwatch_files_total{{outcome="{outcome}"}}'] == n, \
            (outcome, n, body.decode())
    assert m["thumbwatch_uploads_total"] == 3
    assert m['thumbwatch_processing_seconds_bucket{le="+Inf"}'] == 2
    assert m["thumbwatch_processing_seconds_count"] == 2
    assert m["thumbwatch_queue_depth"] == 0
    assert m['thumbwatch_workers{state="idle"}'] + \
        m['thumbwatch_workers{state="busy"}'] == 2
    assert m["thumbwatch_worker_restarts_total"] == 0
    assert m["thumbwatch_bytes_in_total"] > 0
    assert m["thumbwatch_bytes_out_total"] == sum(
        e["bytes"] for e in ev if e["event"] == "done")
    assert m["thumbwatch_uptime_seconds"] > 0
    assert any(k.startswith("thumbwatch_build_info{version=") for k in m)


def test_healthz(daemons, tmp_path):
    """200 while the watcher and a worker live; 503 once no worker can run.
    kill -STOP would not do (a stopped worker still counts as idle), and
    WORKER_MEMORY_MB is not applied under ASan: the daemon runs from a copy
    of the binary that is then deleted, so killed workers cannot be
    exec'd again."""
    copy = tmp_path / "thumbwatch-copy"
    shutil.copy2(BIN, copy)
    port = free_port()
    d = daemons.make(args=["--http-listen", f"127.0.0.1:{port}"])
    d.port = port
    d.cmd[0] = str(copy)
    d.start()
    d.wait_for(lambda ev: len(d.live_workers()) == 2, what="2 workers")
    deadline = time.monotonic() + TIMEOUT
    while req(d, "GET", "/healthz")[0] != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    copy.unlink()
    for pid in d.live_workers():
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + TIMEOUT
    while True:
        st, _, body = req(d, "GET", "/healthz")
        if st == 503:
            break
        assert time.monotonic() < deadline, (st, body, d.describe())
        time.sleep(0.05)
    assert json.loads(body)["status"] == "unavailable"
    d.quiet(0.5)
    assert req(d, "GET", "/healthz")[0] == 503


def read_sse(resp, want, deadline):
    ev, data = None, None
    while time.monotonic() < deadline:
        line = resp.fp.readline()
        if not line:
            break
        line = line.decode().rstrip("\n")
        if line.startswith("event: "):
            ev = line[7:]
        elif line.startswith("data: "):
            data = json.loads(line[6:])
        elif line == "" and ev:
            if want(ev, data):
                return ev, data
            ev, data = None, None
    raise AssertionError("no such event")


def test_events_stream_done(daemons):
    d = start(daemons)
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=TIMEOUT)
    c.request("GET", "/events")
    r = c.getresponse()
    assert r.status == 200
    assert r.getheader("Content-Type") == "text/event-stream"
    f = upload_ok(d, [("sse.jpg", jpeg_bytes())])[0]
    deadline = time.monotonic() + TIMEOUT
    ev, data = read_sse(r, lambda e, x: e == "upload", deadline)
    assert data["file"] == "sse.jpg"
    ev, data = read_sse(r, lambda e, x: e in ("done", "failed"), deadline)
    assert ev == "done" and data["file"] == "sse.jpg", data
    assert data["outputs"] == ["sse_thumb.jpg"]
    # The very record the log has.
    assert data == d.outcomes("sse.jpg")[0]
    c.close()
    wait_job(d, f["id"])


def test_events_status_and_prompt_after_parallel_uploads(daemons):
    """The stream opens with a status event (the /status figures) and
    follows with one as they change; events of uploads made at once on
    kept-alive connections come promptly with nothing else asked (a
    stream resumed inside MHD's run once waited for the next request,
    up to HTTP_REQUEST_TIMEOUT_S when the page stopped polling)."""
    d = start(daemons)
    c = http.client.HTTPConnection("127.0.0.1", d.port, timeout=5 * SCALE)
    c.request("GET", "/events")
    r = c.getresponse()
    deadline = time.monotonic() + 5 * SCALE
    ev, st = read_sse(r, lambda e, x: True, deadline)
    assert ev == "status" and st["done"] == 0 and st["workers"] == 2, st
    time.sleep(0.5)     # the stream idle (suspended) when uploads begin
    conns = [http.client.HTTPConnection("127.0.0.1", d.port, timeout=TIMEOUT)
             for _ in range(5)]
    small = (REPO / "samples" / "alpha.png").read_bytes()  # one read each

    def one(name, data, k):
        body, ctype = multipart([(name, data)])
        k.request("POST", "/upload", body=body,
                  headers={"Content-Type": ctype})
        resp = k.getresponse()
        resp.read()
        return resp.status

    # The lost wake-up was a race: a few rounds catch it most times.
    for rnd in range(3):
        files = [(f"p{rnd}-{i}.png", small if i != 3 else
                  b"not a picture\n" * 30) for i in range(5)]
        with ThreadPoolExecutor(5) as ex:
            got = list(ex.map(one, *zip(*files), conns))
        assert sorted(got) == [202] * 4 + [415], got
        done = set()
        deadline = time.monotonic() + 5 * SCALE
        while len(done) < 4:
            ev, data = read_sse(r, lambda e, x: e in ("done", "failed"),
                                deadline)
            assert ev == "done", data
            done.add(data["file"])
        read_sse(r, lambda e, x: e == "status" and x["done"] == 4 * (rnd + 1),
                 deadline)
    for k in conns:
        k.close()
    c.close()


def test_page_is_self_contained(daemons):
    d = start(daemons)
    st, h, body = req(d, "GET", "/")
    assert st == 200 and h["content-type"].startswith("text/html")
    page = body.decode()
    assert "EventSource" in page and "/upload" in page
    assert "upload.onprogress" in page
    assert not re.search(r"(src|href)=\"(https?:)?//", page), \
        "the page loads something from outside"
    st, h, body = req(d, "GET", "/status")
    assert st == 200 and "workers_idle" in json.loads(body)


PROBE = r"""
import http.client, json, os, sys, time
port, stop = int(sys.argv[1]), sys.argv[2]
times, bad = [], []
while not os.path.exists(stop):
    t0 = time.monotonic()
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/healthz")
        st = c.getresponse().status
        c.close()
    except OSError as e:
        st = str(e)
    times.append(time.monotonic() - t0)
    if st != 200:
        bad.append(st)
    time.sleep(0.02)
times.sort()
print(json.dumps({"n": len(times), "worst": times[-1],
                  "p99": times[int(len(times) * 0.99)], "bad": bad[:5]}))
"""


def test_load_200_uploads_16_at_a_time(daemons, tmp_path):
    """200 uploads, 16 at a time, while another process (not sharing the
    test's GIL with 16 upload threads) times /healthz throughout: 99% of
    the probes within 100 ms, none over 500 ms.  One worker: on a 2-core
    machine two busy workers plus 17 client threads starve every process
    of CPU now and then (100-250 ms single probes, the daemon's loop not
    blocked: seen with strace), which says nothing about the loop."""
    d = start(daemons, workers=1)
    data = [jpeg_bytes(320 + i % 7, 240) for i in range(7)]
    stop = tmp_path / "stop-probe"
    probe = subprocess.Popen(["/usr/bin/python3", "-c", PROBE, str(d.port),
                              str(stop)], stdout=subprocess.PIPE)

    def one(i):
        st, _, body = upload(d, [(f"load{i:03d}.jpg", data[i % 7])])
        return st, body

    try:
        with ThreadPoolExecutor(16) as ex:
            results = list(ex.map(one, range(200)))
        bad = [r for r in results if r[0] != 202]
        assert not bad, bad[:3]
        names = [json.loads(b)["files"][0]["name"] for _, b in results]
        assert len(set(names)) == 200
        # Waiting on /metrics, not on the log: re-reading a growing log
        # every 50 ms would take a core from the daemon.
        deadline = time.monotonic() + TIMEOUT * 4
        while True:
            m = parse_prom(req(d, "GET", "/metrics")[2].decode())
            if sum(m[f'thumbwatch_files_total{{outcome="{o}"}}']
                   for o in ("done", "failed", "skipped")) >= 200:
                break
            assert time.monotonic() < deadline, (m, d.describe())
            time.sleep(0.2)
    finally:
        stop.write_text("")
        out, _ = probe.communicate(timeout=TIMEOUT)
    got = d.wait_outcomes(names)
    assert all(e["event"] == "done" for e in got.values()), \
        [e for e in got.values() if e["event"] != "done"][:3]
    assert len(input_files(d)) == 200
    p = json.loads(out)
    assert p["n"] > 10 and not p["bad"], p
    assert p["p99"] < 0.1 * SCALE, p
    assert p["worst"] < 0.5 * SCALE, p
