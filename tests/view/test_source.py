"""Frame sources: local streams (no semaphore, newest frame, re-created streams) and ZMQ."""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import free_port, wait_for
from tests.view.viewhelpers import Writer, camera_cards
from vampires.errors import ConfigError, StreamClosedError
from vampires.link.zmq import ZmqPublisher
from vampires.stream import Stream
from vampires.view.source import LocalSource, RemoteSource, ViewTarget, open_source, parse_target


@pytest.mark.parametrize(
    ("text", "target"),
    [
        ("vcam1", ViewTarget(name="vcam1")),
        ("tcp://scexao5:5555/vcam1", ViewTarget(name="vcam1", endpoint="tcp://scexao5:5555")),
        (
            "tcp://127.0.0.1:7000/vcam2_dark",
            ViewTarget(name="vcam2_dark", endpoint="tcp://127.0.0.1:7000"),
        ),
        ("ipc:///tmp/x/pub.sock/vcam1", ViewTarget(name="vcam1", endpoint="ipc:///tmp/x/pub.sock")),
    ],
)
def test_parse_target(text, target):
    assert parse_target(text) == target
    assert str(parse_target(text)) == text


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "stream name or tcp"),
        ("tcp://scexao5:5555", "give the stream"),
        ("tcp://scexao5:5555/", "give the stream"),
        ("tcp://scexao5/vcam1", "needs a port"),
        ("http://scexao5:80/vcam1", "only tcp:// and ipc://"),
        ("../vcam1", "stream name"),
        ("vcam 1", "stream name"),
    ],
)
def test_parse_target_refuses_bad_input(text, match):
    with pytest.raises(ConfigError, match=match):
        parse_target(text)


def test_unknown_stream_waits_and_says_so_then_attaches():
    source = LocalSource("vcam1")
    try:
        assert source.poll() is None
        assert "waiting for stream vcam1" in source.state
        assert "not found" in source.state
        with Stream.create("vcam1", (16, 24), np.uint16) as stream:
            stream.keywords["EXPTIME"] = (0.5, "[s] exposure")
            stream.write(np.full((16, 24), 7, np.uint16), acquisition_time=1.7e9)
            frame = source.poll()
            assert frame is not None
            assert source.state == ""
            assert frame.cnt0 == 1
            assert frame.data.shape == (16, 24)
            assert (frame.data == 7).all()
            assert frame.keywords["EXPTIME"] == 0.5
            assert frame.comments["EXPTIME"] == "[s] exposure"
            assert frame.acquisition_time == pytest.approx(1.7e9)
            assert source.poll() is None  # nothing new
    finally:
        source.close()
    with pytest.raises(StreamClosedError):
        source.poll()


def test_newest_frame_only_and_no_semaphore_held():
    with Stream.create("vcam1", (8, 8), np.uint16, nsemaphores=1) as stream:
        source = LocalSource("vcam1", silent_after=0.0)
        for k in range(1, 6):
            stream.write(np.full((8, 8), k, np.uint16))
        frame = source.poll()
        assert frame is not None
        assert frame.cnt0 == 5  # no catch-up, no queue
        assert (frame.data == 5).all()
        assert source.poll() is None
        assert "no new frame of vcam1" in source.state
        # the only semaphore is still free: the viewer never claimed one
        with stream.reader() as reader:
            assert reader.index == 0
        source.close()


def test_stream_recreated_at_another_size_is_followed():
    source = LocalSource("vcam1")
    try:
        with Stream.create("vcam1", (8, 8), np.uint16) as stream:
            stream.write(np.ones((8, 8), np.uint16))
            first = source.poll()
            assert first is not None
            assert first.data.shape == (8, 8)
            stream.destroy()
        with Stream.create("vcam1", (12, 20), np.uint16) as bigger:
            bigger.write(np.full((12, 20), 3, np.uint16))
            frame = wait_for(source.poll, what="a frame of the re-created stream")
            assert frame.data.shape == (12, 20)
            assert (frame.data == 3).all()
            assert source.recreated == 1
    finally:
        source.close()


def test_cube_streams_show_their_first_slice_and_odd_types_are_explained():
    with Stream.create("cube", (3, 4, 5), np.float32) as stream:
        stream.write(np.arange(60, dtype=np.float32).reshape(3, 4, 5))
        source = LocalSource("cube")
        frame = source.poll()
        assert frame is not None
        assert frame.data.shape == (4, 5)
        source.close()
    with Stream.create("flat", (10,), np.uint16) as stream:
        stream.write(np.zeros(10, np.uint16))
        source = LocalSource("flat")
        assert source.poll() is None
        assert "2-D" in source.state
        source.close()


@pytest.mark.integration
def test_remote_source_through_a_real_publisher_reconnects():
    port = free_port()
    cards = camera_cards("vcam1", "STANDARD")
    source = RemoteSource(f"tcp://127.0.0.1:{port}", "vcam1", silent_after=0.5)
    try:
        assert "waiting for frames from tcp://127.0.0.1" in source.state
        with (
            Writer("vcam1", (32, 48), fps=50, keywords=cards),
            ZmqPublisher("vcam1", bind=f"tcp://127.0.0.1:{port}", max_fps=20),
        ):
            frame = wait_for(source.poll, what="a frame over ZMQ")
            assert frame.data.shape == (32, 48)
            assert frame.keywords["DATA-TYP"] == "OBJECT"
            assert frame.keywords["_CROP"] == "STANDARD"
            assert frame.comments["EXPTIME"]
            assert source.state == ""
        wait_for(lambda: "publisher gone? reconnecting" in source.state, what="gone state")
        with (
            Writer("vcam1", (16, 16), fps=50),
            ZmqPublisher("vcam1", bind=f"tcp://127.0.0.1:{port}", max_fps=20),
        ):
            frame = wait_for(
                lambda: (f := source.poll()) is not None and f.data.shape == (16, 16) and f,
                what="a frame from the restarted publisher",
            )
            assert source.state == ""
    finally:
        source.close()


def test_open_source_picks_the_kind():
    local = open_source("vcam1")
    assert isinstance(local, LocalSource)
    local.close()
    remote = open_source(f"tcp://127.0.0.1:{free_port()}/vcam1")
    assert isinstance(remote, RemoteSource)
    assert remote.target.remote
    remote.close()
    with pytest.raises(ConfigError):
        RemoteSource("udp://x:1", "vcam1")
