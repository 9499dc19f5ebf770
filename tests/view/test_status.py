"""The status line: what it says, from keywords, rates and the logger's reply."""

from __future__ import annotations

import pytest

from vampires.view.status import RateMeter, StatusLine, describe_logger


def test_status_line_takes_the_camera_keywords():
    keywords = {"EXPTIME": 0.001, "DATA-TYP": "OBJECT", "_CROP": "MBI", "U_DETMOD": "FAST"}
    line = StatusLine.from_keywords(
        "vcam1", keywords, cnt0=1234, stream_fps=253.0, shown_fps=30.0, logger="idle"
    )
    text = line.text()
    for part in ("vcam1", "#1234", "253.0 fps", "shown 30.0", "EXPTIME 1 ms", "DATA-TYP OBJECT",
                 "crop MBI", "readout FAST", "logger idle"):  # fmt: skip
        assert part in text
    assert "PAUSED" not in text
    paused = StatusLine.from_keywords("vcam1", {"EXPTIME": 2.5}, paused=True, message="stale")
    assert "EXPTIME 2.5 s" in paused.text()
    assert "crop CUSTOM" in paused.text()
    assert paused.text().endswith("PAUSED  |  stale")
    assert "no frame yet" in StatusLine.from_keywords("vcam9", {}).text()


def test_describe_logger_replies():
    assert describe_logger(None, "not-running", "no daemon") == "not running"
    assert describe_logger(None, "timeout", "no reply in 0.5 s") == "timeout (no reply in 0.5 s)"
    reply = {
        "state": "saving",
        "logger": {"current_file": "/d/vcam1_12:00:00.1.fits", "dropped": 0},
    }
    assert describe_logger(reply, "ok", None) == "saving, vcam1_12:00:00.1.fits, 0 dropped"
    assert describe_logger({"state": "idle", "logger": {}}, "ok", None) == "idle"
    bad = {"state": "idle", "logger": {"error": "disk full"}}
    assert describe_logger(bad, "ok", None) == "idle, ERROR: disk full"


def test_rate_meter():
    meter = RateMeter(window=2.0)
    assert meter.rate == 0.0
    for k in range(11):
        meter.add(100.0 + k * 0.1, 500 + k)
    assert meter.rate == pytest.approx(10.0)
    meter.add(101.1, 3)  # counter went back: a new stream
    assert meter.rate == 0.0
