"""SIGTERM/SIGINT: finish in-flight work, log shutdown, exit 0.
SIGHUP: reopen the log (logrotate) and reload the configuration."""

import json
import os
import signal
import time

from conftest import (SCALE, image_info, images_info, jpeg_bytes,
                      jpeg_complete, make_jpeg, parse_log, temp_leftovers,
                      tree, write_file)


def test_sigterm_idle(daemons):
    d = daemons.start()
    t0 = time.monotonic()
    d.stop()
    assert time.monotonic() - t0 < 5 * SCALE, "slow to stop when idle"
    sd = d.by_event("shutdown")
    assert len(sd) == 1, sd
    s = sd[0]
    assert s["reason"], s
    assert (s["done"], s["failed"], s["skipped"]) == (0, 0, 0), s
    assert d.events()[-1]["event"] == "shutdown", "lines after shutdown"


def test_sigterm_during_burst(daemons):
    d = daemons.start(args=["--batch-size", "4"])
    data = jpeg_bytes(640, 480)
    files = [f"s{i % 4}/f{i:03d}.jpg" for i in range(120)]
    for f in files:
        write_file(d.input / f, data)
    d.wait_for(lambda ev: len([e for e in ev if e["event"] == "done"]) >= 5,
               what="a few done lines")
    d.stop()
    ev = parse_log(d.log, d.offset, allow_partial=False)
    s = [e for e in ev if e["event"] == "shutdown"]
    assert len(s) == 1, s
    s = s[0]
    assert ev[-1] is s or ev[-1] == s, "lines after the shutdown line"
    done = [e for e in ev if e["event"] == "done"]
    failed = [e for e in ev if e["event"] == "failed"]
    assert not failed, failed
    assert s["done"] == len(done) and s["failed"] == 0, (s, len(done))
    names = [e["file"] for e in done]
    assert len(names) == len(set(names)), "a file done twice"
    for e in done:
        for o in e["outputs"]:
            p = d.output / o
            assert p.is_file(), f"{o} logged done but missing"
            assert jpeg_complete(p.read_bytes()), f"{o} truncated"
    assert not temp_leftovers(d.output), temp_leftovers(d.output)
    # every thumbnail on disk was logged (in-flight work finished and was
    # reported), and is complete
    logged = sorted(o for e in done for o in e["outputs"])
    assert sorted(tree(d.output)) == logged
    outs = [d.output / p for p in tree(d.output)]
    for p, (w, h, _, _) in images_info(outs).items():
        assert (w, h) == (300, 225), p

    # a restart finishes the rest: nothing lost
    d.start()
    rest = [f for f in files if f not in set(names)]
    d.wait_outcomes(rest, timeout=60 * SCALE)
    assert sorted(tree(d.output)) == sorted(f[:-4] + "_thumb.jpg"
                                            for f in files)


def test_sigterm_drain_is_bounded(daemons):
    """A worker stuck on an image does not hold the shutdown beyond
    DRAIN_TIMEOUT_MS."""
    d = daemons.start(hooks=True, args=["--image-timeout-ms", "60000",
                                        "--drain-timeout-ms", "1000"])
    make_jpeg(d.input / "stuck__hang__.jpg", 320, 240)
    time.sleep(1.0)
    t0 = time.monotonic()
    d.stop(timeout=15 * SCALE)
    assert time.monotonic() - t0 < 10 * SCALE


def test_sighup_reopens_log(daemons):
    d = daemons.start()
    make_jpeg(d.input / "a.jpg")
    d.wait_done("a.jpg")
    old = d.log.with_name(d.log.name + ".1")
    os.rename(d.log, old)
    d.offset = 0          # the daemon's new file starts empty
    d.send_signal(signal.SIGHUP)

    def reloaded(_ev):
        both = parse_log(old) + parse_log(d.log)
        return [e for e in both if e["event"] == "reload"]
    d.wait_for(reloaded, what="a reload line")
    d.wait_for(lambda ev: d.log.exists(), what="a new log file")
    make_jpeg(d.input / "b.jpg")
    d.wait_done("b.jpg")
    old_ev = parse_log(old, allow_partial=False)
    assert [e["file"] for e in old_ev if e["event"] == "done"] == ["a.jpg"]
    assert not [e for e in old_ev if e.get("file") == "b.jpg"]
    d.stop()
    new_ev = parse_log(d.log, allow_partial=False)
    assert new_ev[-1]["event"] == "shutdown"
    assert [e["file"] for e in new_ev if e["event"] == "done"] == ["b.jpg"]


def test_sighup_reloads_presets(daemons):
    d = daemons.start(ini="[preset small]\nwidth = 100\nheight = 100\n")
    make_jpeg(d.input / "a.jpg")
    d.wait_done("a.jpg")
    d.ini.write_text("[preset small]\nwidth = 100\nheight = 100\n\n"
                     "[preset wide]\nwidth = 200\nheight = 50\n"
                     "fit = cover\nformat = png\n")
    d.send_signal(signal.SIGHUP)
    d.wait_event("reload")
    make_jpeg(d.input / "b.jpg")
    e = d.wait_for(lambda ev: [x for x in ev if x["event"] == "done"
                               and x.get("file") == "b.jpg"],
                   what="b.jpg done")[0]
    assert sorted(e["outputs"]) == ["b_small.jpg", "b_wide.png"], e
    assert image_info(d.output / "b_wide.png")[:2] == (200, 50)


def test_sighup_bad_config_keeps_running(daemons):
    d = daemons.start()
    d.ini.write_text("[thumbwatch]\nworkers = abc\n")
    d.send_signal(signal.SIGHUP)
    d.wait_for(lambda ev: [e for e in ev if e["level"] in ("warn", "error")
                           and "WORKERS" in json.dumps(e)
                           and "abc" in json.dumps(e)],
               what="a warn/error line naming WORKERS and 'abc'")
    make_jpeg(d.input / "still.jpg")
    d.wait_done("still.jpg")
    assert len(d.live_workers()) == 2


def test_reload_names_only_the_restart_keys_that_changed(daemons):
    d = daemons.start()
    # (the test's command line sets WORKERS, which outranks the file)
    d.ini.write_text("[thumbwatch]\nimage_timeout_ms = 30000\n"
                     "batch_size = 2\n")
    d.send_signal(signal.SIGHUP)
    d.wait_event("reload")
    warn = [e for e in d.events() if e["event"] == "reload_partial"]
    assert len(warn) == 1 and warn[0]["message"] == \
        "IMAGE_TIMEOUT_MS takes effect at the next start", warn
    assert len(d.live_workers()) == 2


def test_reload_walks_only_when_presets_changed(daemons):
    d = daemons.start()
    make_jpeg(d.input / "a.jpg")
    d.wait_done("a.jpg")

    def reload_scans():
        return [e for e in d.events()
                if e["event"] == "scan" and e.get("reason") == "reload"]
    # logrotate's SIGHUP: nothing changed, nothing to walk
    d.send_signal(signal.SIGHUP)
    d.wait_event("reload")
    d.quiet(0.5)
    assert reload_scans() == []
    assert not [e for e in d.events() if e["event"] == "reload_partial"]
    # a preset changed: its thumbnails are stale, the tree is walked
    d.ini.write_text("[preset thumb]\nwidth = 120\nheight = 120\n")
    d.send_signal(signal.SIGHUP)
    d.wait_for(lambda ev: reload_scans(), what="a reload walk")
    d.wait_for(lambda ev: len([e for e in ev if e["event"] == "done"
                               and e.get("file") == "a.jpg"]) == 2,
               what="a.jpg made again")
