"""A dropper with write access to INPUT_DIR attacks the supervisor's file
handling (issue 18, cases 1, 4, 5 and 6): folders swapped for symlinks
mid-batch, an input folder named like the state folder, same-stem names
that differ in case, and a same-stem file arriving while its twin is in
flight.  Each test fails on the binary from before the fix."""

import os
import re
import shutil
import socket
import time

import pytest
from test_security_worker import worker_in_hook

from conftest import SCALE, image_info, make_jpeg, make_png, write_file


# ---- case 1: a folder swapped for a symlink mid-batch ----------------------


@pytest.mark.parametrize("action", ["delete", "move"])
def test_folder_swapped_for_symlink_while_queued(daemons, tmp_path, action):
    """mkdir in/sub; cp big in/; cp a.jpg in/sub/x.jpg; mv in/sub
    in/sub.old; ln -s /secret in/sub -- while the only worker is busy: the
    file outside the tree is never thumbnailed, deleted nor moved."""
    secret = tmp_path / "secret"
    secret.mkdir()
    make_jpeg(secret / "x.jpg", 320, 240)
    done = tmp_path / "done"
    d = daemons.start(workers=1, hooks=True,
                      args=["--source-action", action, "--done-dir", done])
    make_jpeg(d.input / "big__slow__.jpg", 320, 240)
    worker_in_hook(d)                # in the worker's hands, sleeping 4 s
    os.mkdir(d.input / "sub")
    make_jpeg(d.input / "sub" / "x.jpg", 320, 240)
    # A new folder's walk holds a file younger than SETTLE_MS (500 ms) on
    # a timer: past it, the file is queued behind the sleeping job.
    time.sleep(0.9)
    os.rename(d.input / "sub", d.input / "sub.old")
    os.symlink(secret, d.input / "sub")
    e = d.wait_outcome("sub/x.jpg")
    d.wait_outcome("big__slow__.jpg")
    d.quiet(1.0)
    assert (secret / "x.jpg").is_file(), f"secret file {action}d: {e}"
    assert not (done / "sub" / "x.jpg").exists()
    assert not (d.output / "sub" / "x_thumb.jpg").exists(), e
    assert e["event"] == "failed" and "symbolic link" in e["error"], e


@pytest.mark.parametrize("action", ["delete", "move"])
def test_folder_swapped_for_symlink_while_in_flight(daemons, tmp_path,
                                                    action):
    """The same swap while the file itself is in a worker's hands: the
    source action acts on the inspected file only, never on the one the
    swapped path now names."""
    secret = tmp_path / "secret"
    secret.mkdir()
    make_jpeg(secret / "x__slow__.jpg", 320, 240)
    done = tmp_path / "done"
    d = daemons.start(workers=1, hooks=True,
                      args=["--source-action", action, "--done-dir", done])
    os.mkdir(d.input / "sub")
    make_jpeg(d.input / "sub" / "x__slow__.jpg", 320, 240)
    time.sleep(1.0 * SCALE)          # in flight: the worker sleeps 4 s
    os.rename(d.input / "sub", d.input / "sub.old")
    os.symlink(secret, d.input / "sub")
    d.wait_outcome("sub/x__slow__.jpg")
    d.quiet(1.0)
    assert (secret / "x__slow__.jpg").is_file(), \
        f"secret file {action}d\n" + d.describe()
    assert not (done / "sub" / "x__slow__.jpg").exists()


def test_in_tree_symlink_never_followed(daemons):
    """A symlink that stays inside the tree is not followed either, for a
    file or for a folder on the path: one failed line naming it."""
    d = daemons.start()
    os.mkdir(d.input / "real")
    make_jpeg(d.input / "real" / "a.jpg", 320, 240)
    d.wait_done("real/a.jpg")
    os.symlink("real/a.jpg", d.input / "alias.jpg")
    e = d.wait_outcome("alias.jpg")
    assert e["event"] == "failed" and "symbolic link" in e["error"], e
    os.symlink("real", d.input / "linkdir")
    d.quiet(0.5)
    assert not (d.output / "alias_thumb.jpg").exists()
    assert not (d.output / "linkdir").exists()
    d.assert_one_outcome("alias.jpg", "failed")


def test_mirror_never_reaches_through_output_symlink(daemons, tmp_path):
    """A dropper who can write in the output tree (nested in the input
    tree) plants a symlink there: a mirrored delete does not follow it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "a_thumb.jpg").write_bytes(b"precious")
    inp = tmp_path / "in"
    d = daemons.start(output_dir=inp / "thumbs")
    os.mkdir(d.input / "sub")
    make_jpeg(d.input / "sub" / "a.jpg", 320, 240)
    d.wait_done("sub/a.jpg")
    shutil.rmtree(d.output / "sub")
    os.symlink(outside, d.output / "sub")
    os.unlink(d.input / "sub" / "a.jpg")
    d.quiet(1.0)
    assert (outside / "a_thumb.jpg").read_bytes() == b"precious"


# ---- case 4: an input folder named .thumbwatch -----------------------------


def test_input_folder_named_state_folder_deleted(daemons):
    """mkdir in/.thumbwatch; rmdir it: out/.thumbwatch (preset records,
    failure markers) stays."""
    d = daemons.start()
    write_file(d.input / "bad.jpg", b"not an image")
    d.wait_outcome("bad.jpg")
    state = d.output / ".thumbwatch"
    assert (state / "presets").is_dir()
    os.mkdir(d.input / ".thumbwatch")
    d.quiet(0.5)
    os.rmdir(d.input / ".thumbwatch")
    d.quiet(1.0)
    assert (state / "presets").is_dir(), "state folder deleted"
    assert (state / "failed" / "bad.jpg").exists(), "failure marker lost"


def test_input_folder_named_state_folder_renamed(daemons):
    """mv in/.thumbwatch in/pub must not move the state folder to
    out/pub, where it would be served as thumbnails."""
    d = daemons.start()
    os.mkdir(d.input / ".thumbwatch")
    d.quiet(0.5)
    os.rename(d.input / ".thumbwatch", d.input / "pub")
    d.quiet(1.0)
    assert (d.output / ".thumbwatch" / "presets").is_dir(), \
        "state folder moved\n" + d.describe()
    assert not (d.output / "pub" / "presets").exists()


def test_input_file_under_state_folder_name_refused(daemons):
    """A file in in/.thumbwatch would write its thumbnail into the state
    folder: one failed line, nothing written there."""
    d = daemons.start()
    os.makedirs(d.input / ".thumbwatch" / "presets")
    make_jpeg(d.input / ".thumbwatch" / "presets" / "thumb.jpg", 320, 240)
    e = d.wait_outcome(".thumbwatch/presets/thumb.jpg")
    assert e["event"] == "failed", e
    assert not (d.output / ".thumbwatch" / "presets" /
                "thumb_thumb.jpg").exists()


# ---- case 5: same stem, extensions in mixed case ---------------------------


def test_same_stem_mixed_case_extensions(daemons):
    """a.Jpg beside a.Png: two thumbnails by the documented rule;
    deleting one leaves the other's."""
    d = daemons.start()
    make_jpeg(d.input / "a.Jpg", 640, 480)
    d.wait_done("a.Jpg")
    make_png(d.input / "a.Png", 480, 640)
    d.wait_done("a.Png")

    def both(_ev):
        try:
            return (image_info(d.output / "a_thumb.jpg")[:2] == (300, 225)
                    and image_info(d.output / "a.Png_thumb.jpg")[:2]
                    == (225, 300))
        except AssertionError:
            return False
    d.wait_for(both, what="a_thumb.jpg (a.Jpg) and a.Png_thumb.jpg")
    os.unlink(d.input / "a.Png")
    d.quiet(1.0)
    assert image_info(d.output / "a_thumb.jpg")[:2] == (300, 225), \
        "a.Jpg's thumbnail deleted with a.Png\n" + d.describe()


# ---- case 6: a same-stem file arrives while its twin is in flight -----------


def test_same_stem_arrives_while_twin_in_flight(daemons, tmp_path):
    """a__slow__.jpg in a worker, then a__slow__.jpeg (sorts first, so it
    takes the plain names) arrives: one outcome line each, and each
    thumbnail holds its own image."""
    d = daemons.start(workers=2, hooks=True)
    make_jpeg(d.input / "a__slow__.jpg", 640, 480)
    time.sleep(0.8 * SCALE)
    make_jpeg(tmp_path / "stage.jpeg", 480, 640)
    os.rename(tmp_path / "stage.jpeg", d.input / "a__slow__.jpeg")
    d.wait_outcomes(["a__slow__.jpg", "a__slow__.jpeg"])
    d.quiet(6.0)
    d.assert_one_outcome("a__slow__.jpg")
    d.assert_one_outcome("a__slow__.jpeg")
    assert image_info(d.output / "a__slow___thumb.jpg")[:2] == (225, 300)
    assert image_info(d.output / "a__slow__.jpg_thumb.jpg")[:2] == \
        (300, 225)


# ---- case 2 (part): a walk short of descriptors is done again --------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_walk_short_of_descriptors_is_retried(daemons, tmp_path):
    """Descriptors run out (a low RLIMIT_NOFILE, held by idle control
    socket clients: HTTP clients can no longer take them, see
    test_security_http_limits.py) while a folder holding a file is moved
    in: the walk of that folder fails with EMFILE.  Once the clients are
    gone, the file still gets its outcome."""
    d = daemons.make(workers=1)
    d.cmd = ["prlimit", "--nofile=48:48", "--"] + d.cmd
    d.start()
    sock = str(d.root / "run" / "thumbwatch.sock")
    stage = tmp_path / "stage" / "late"
    stage.mkdir(parents=True)
    make_jpeg(stage / "x.jpg", 320, 240)
    socks = []
    try:
        for _ in range(60):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(sock)
            socks.append(s)
        time.sleep(0.5)
        os.rename(stage, d.input / "late")
        time.sleep(1.5)
        assert not [e for e in d.outcomes() if e["file"] == "late/x.jpg"], \
            "the walk was not short of descriptors: the test proves nothing"
    finally:
        for s in socks:
            s.close()
    d.wait_done("late/x.jpg", timeout=20 * SCALE)


# ---- case 1, the Redis path: an entry naming a file through a symlink -------


@pytest.fixture
def redis(tmp_path):
    from test_cluster import REDIS, Redis
    if not os.access(REDIS, os.X_OK):
        pytest.skip("redis-server is not installed")
    r = Redis(tmp_path).start()
    yield r
    r.kill()


def test_redis_entry_through_folder_symlink_refused(daemons, tmp_path,
                                                    redis):
    """A queue entry naming link/x.jpg, where link is a folder symlink
    inside the tree, is refused by the worker node like a local file."""
    from test_cluster import Cluster
    c = Cluster(tmp_path, daemons)
    os.mkdir(c.input / "real")
    make_jpeg(c.input / "real" / "x.jpg", 320, 240)
    os.symlink("real", c.input / "link")
    w = c.node("worker-a", "worker", redis.url)
    # The worker names its preset fingerprint when an entry's differs.
    redis.cli("XADD", "thumbwatch:jobs", "*", "path", "probe.jpg", "size",
              1, "mtime_ns", 1, "fp", "0" * 16, "force", "0", "by", "test")
    e = w.wait_outcome("probe.jpg")
    fp = re.search(r"this worker \(fingerprint (\w+)\)", e["error"]).group(1)
    st = os.stat(c.input / "real" / "x.jpg")
    redis.cli("XADD", "thumbwatch:jobs", "*", "path", "link/x.jpg", "size",
              st.st_size, "mtime_ns", st.st_mtime_ns, "fp", fp, "force",
              "0", "by", "test")
    e = w.wait_outcome("link/x.jpg")
    assert e["event"] == "failed" and "symbolic link" in e["error"], e
    assert not (c.output / "link").exists()


def test_same_stem_sorting_first_takes_names_without_remaking(daemons):
    """photo.png is made, then photo.jpg (sorts first) arrives: photo.png's
    thumbnail moves to photo.png_thumb.jpg before photo.jpg's is renamed
    into photo_thumb.jpg, so photo.png keeps one outcome line and no
    rename lands on a thumbnail of another file."""
    d = daemons.start()
    make_png(d.input / "photo.png", 480, 640)
    d.wait_done("photo.png")
    make_jpeg(d.input / "photo.jpg", 640, 480)
    d.wait_done("photo.jpg")
    d.quiet(1.5)
    d.assert_one_outcome("photo.png")
    d.assert_one_outcome("photo.jpg")
    assert image_info(d.output / "photo_thumb.jpg")[:2] == (300, 225)
    assert image_info(d.output / "photo.png_thumb.jpg")[:2] == (225, 300)


def test_nested_output_dir_planted_as_symlink_refused(daemons, tmp_path):
    """OUTPUT_DIR nested in INPUT_DIR, replaced by a dropper with a symlink
    while the daemon was stopped: it refuses to start rather than write
    and delete where the link points."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    inp = tmp_path / "in"
    inp.mkdir()
    os.symlink(outside, inp / "thumbs")
    make_jpeg(inp / "a.jpg", 320, 240)
    d = daemons.make(output_dir=inp / "thumbs")
    d.start(ready=False)
    try:
        rc = d.proc.wait(30 * SCALE)
    except Exception:
        rc = None
    d.stopped = True
    assert rc == 78, f"exit {rc}\n" + d.describe()
    assert b"symbolic link" in d.stderr(), d.stderr()
    assert not any(outside.iterdir()), list(outside.iterdir())
