"""ZMQ publish/subscribe: real sockets on 127.0.0.1, real streams, threads and processes."""

from __future__ import annotations

import itertools
import json
import pickle
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import zmq

from tests.helpers import free_port, wait_for
from tests.link.linkhelpers import LinkProcess, expected_frame, open_when_ready
from vampires.errors import ConfigError, LinkError, LinkTimeout
from vampires.link import zmq_protocol as zp
from vampires.link.zmq import ZmqPublisher, ZmqSubscriber
from vampires.stream import Stream

SHAPE = (24, 40)


class Writer:
    """Writes expected_frame(cnt0) (+ per-frame keywords, as vpupcam) at a steady rate."""

    def __init__(self, name: str, shape: tuple[int, ...], fps: float) -> None:
        self.stream = Stream.create(name, shape, np.uint16, exist_ok=True)
        self.shape = shape
        self.period = 1.0 / fps
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic()
        while not self.stop.is_set():
            cnt0 = self.stream.cnt0 + 1
            self.stream.write(
                expected_frame(cnt0, self.shape),
                keywords={"MFRATE": (float(cnt0), "frame rate"), "_MAQTIME": cnt0},
                acquisition_time=1.7e9 + cnt0,
            )
            deadline += self.period
            delay = deadline - time.monotonic()
            if delay > 0:
                self.stop.wait(delay)

    def __enter__(self) -> Writer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)
        self.stream.close()


def check(frame: np.ndarray, meta: zp.ZmqMeta) -> None:
    assert frame.shape == meta.shape
    assert np.array_equal(frame, expected_frame(meta.cnt0, meta.shape)), f"frame {meta.cnt0}"
    assert meta.acquisition_time == pytest.approx(1.7e9 + meta.cnt0)
    assert meta.keywords["_MAQTIME"][0] >= meta.cnt0 - 1


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"stream_name": "a b"}, "is invalid"),
        ({"bind": "localhost:5555"}, "ZMQ endpoint"),
        ({"max_fps": -1}, "max_fps must be >= 0"),
        ({"max_fps": "fast"}, "max_fps must be a finite number"),
        ({"every": 0}, "every must be an integer >= 1"),
        ({"every": 1.5}, "every must be an integer >= 1"),
    ],
)
def test_publisher_rejects_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"stream_name": "cam", "bind": "tcp://127.0.0.1:*"}
    args.update(kwargs)
    with pytest.raises(ConfigError, match=match):
        ZmqPublisher(**args)  # type: ignore[arg-type]


def test_subscriber_rejects_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="ZMQ endpoint"):
        ZmqSubscriber("scexao5:5555", "cam")
    with pytest.raises(ConfigError, match="is invalid"):
        ZmqSubscriber("tcp://127.0.0.1:5555", "a/b")
    with pytest.raises(ConfigError, match="timeout must be > 0"):
        ZmqSubscriber("tcp://127.0.0.1:5555", "cam", timeout=0)
    with pytest.raises(LinkError, match="needs to_stream=True"):
        ZmqSubscriber("tcp://127.0.0.1:5555", "cam").start()


def test_publisher_port_in_use_is_a_clear_error() -> None:
    with (
        ZmqPublisher("cam", bind="tcp://127.0.0.1:*") as first,
        pytest.raises(LinkError, match="cannot bind"),
    ):
        ZmqPublisher("cam", bind=first.endpoint).start()


# --------------------------------------------------------------------------- behaviour


def test_iterate_frames_with_metadata_and_keywords() -> None:
    with (
        Writer("cam", SHAPE, fps=200),
        ZmqPublisher("cam", bind="tcp://127.0.0.1:*", max_fps=50) as pub,
        ZmqSubscriber(pub.endpoint, "cam", timeout=10.0) as sub,
    ):
        metas = []
        for frame, meta in sub:
            check(frame, meta)
            assert meta.name == "cam"
            assert meta.dtype == "<u2"
            assert meta.keywords["MFRATE"][1] == "frame rate"
            metas.append(meta)
            if len(metas) == 10:
                break
        assert all(b.cnt0 > a.cnt0 for a, b in itertools.pairwise(metas))
        assert sub.status().frames == 10


def test_throttle_never_exceeds_max_fps() -> None:
    fps = 40.0
    with (
        Writer("cam", SHAPE, fps=400),
        ZmqPublisher("cam", bind="tcp://127.0.0.1:*", max_fps=fps) as pub,
        ZmqSubscriber(pub.endpoint, "cam", timeout=10.0) as sub,
    ):
        sub.recv(timeout=10.0)
        start = pub.status()
        t0 = time.monotonic()
        received = 0
        while time.monotonic() - t0 < 1.5:
            sub.recv(timeout=5.0)
            received += 1
        elapsed = time.monotonic() - t0
        end = pub.status()
    sent = end.frames - start.frames
    # the deadline schedule never sends more than one frame per period (+1 at the edges)
    assert sent <= fps * (elapsed + 0.2) + 2
    assert received >= 1
    assert end.skipped > 0  # the camera is 10x faster: the rest is counted as skipped


def test_every_nth_frame() -> None:
    with (
        Writer("cam", SHAPE, fps=150),
        ZmqPublisher("cam", bind="tcp://127.0.0.1:*", max_fps=0, every=4) as pub,
        ZmqSubscriber(pub.endpoint, "cam", timeout=10.0) as sub,
    ):
        counters = []
        for frame, meta in sub:
            check(frame, meta)
            counters.append(meta.cnt0)
            if len(counters) == 15:
                break
    steps = [b - a for a, b in itertools.pairwise(counters)]
    assert all(step >= 4 for step in steps), steps
    assert steps.count(4) >= len(steps) // 2, steps  # exactly N when nobody falls behind


def _garbage() -> list[list[bytes]]:
    meta = json.loads(
        zp.encode_zmq_meta(
            zp.ZmqMeta(
                name="cam",
                shape=SHAPE,
                dtype="<u2",
                cnt0=1,
                cnt1=0,
                acquisition_time=1.0,
                write_time=1.0,
                send_time=1.0,
            )
        )
    )
    good = np.zeros(SHAPE, np.uint16).tobytes()
    return [
        [b"cam"],  # one part
        [b"cam", b"{", good],  # bad JSON
        [b"cam", pickle.dumps({"evil": True}), good],  # what pyMilk sends: never unpickled
        [b"cam", json.dumps({**meta, "shape": [2, 2]}).encode(), good],  # wrong length
        [b"cam", json.dumps({**meta, "v": 99}).encode(), good],  # unknown version
        [b"cam", b"[]", good, b"extra"],  # four parts
    ]


def test_garbage_messages_are_counted_and_dropped() -> None:
    with zmq.Context() as ctx, ctx.socket(zmq.PUB) as raw:
        raw.linger = 0
        port = raw.bind_to_random_port("tcp://127.0.0.1")
        meta = zp.ZmqMeta(
            name="cam",
            shape=SHAPE,
            dtype="<u2",
            cnt0=7,
            cnt1=0,
            acquisition_time=1.7e9 + 7,
            write_time=1.7e9 + 7,
            send_time=time.time(),
            keywords={"_MAQTIME": (7, "")},
        )
        good = [b"cam", zp.encode_zmq_meta(meta), expected_frame(7, SHAPE).tobytes()]
        with ZmqSubscriber(f"tcp://127.0.0.1:{port}", "cam") as sub:
            # slow joiner: publish until the subscription has reached the publisher
            for _ in range(200):
                raw.send_multipart(good)
                try:
                    frame, got = sub.recv(timeout=0.05)
                    break
                except LinkTimeout:
                    continue
            else:
                pytest.fail("subscription never established")
            check(frame, got)
            garbage = _garbage()
            for message in garbage:
                raw.send_multipart(message)
                with pytest.raises(LinkTimeout):
                    sub.recv(timeout=0.2)
            # another topic sharing the prefix is ignored, not counted as malformed
            raw.send_multipart([b"cam_dark", good[1].replace(b'"cam"', b'"cam_dark"'), good[2]])
            raw.send_multipart(good)
            frame, got = sub.recv(timeout=5.0)
            check(frame, got)
            assert sub.status().malformed == len(garbage)


def test_subscriber_started_before_the_publisher() -> None:
    port = free_port()
    endpoint = f"tcp://127.0.0.1:{port}"
    with ZmqSubscriber(endpoint, "cam") as sub:
        with pytest.raises(LinkTimeout, match="no frame of cam"):
            sub.recv(timeout=0.3)
        with (
            Writer("cam", SHAPE, fps=100),
            ZmqPublisher("cam", bind=endpoint, max_fps=30),
        ):
            frame, meta = sub.recv(timeout=10.0)
            check(frame, meta)


def test_close_from_another_thread_ends_iteration() -> None:
    with (
        Writer("cam", SHAPE, fps=100),
        ZmqPublisher("cam", bind="tcp://127.0.0.1:*", max_fps=20) as pub,
    ):
        sub = ZmqSubscriber(pub.endpoint, "cam")
        got: list[int] = []

        def consume() -> None:
            for _frame, meta in sub:
                got.append(meta.cnt0)

        thread = threading.Thread(target=consume)
        thread.start()
        wait_for(lambda: len(got) >= 2, what="two frames")
        sub.close()
        thread.join(5)
        assert not thread.is_alive()


def test_stop_event_ends_iteration() -> None:
    stop = threading.Event()
    with (
        Writer("cam", SHAPE, fps=100),
        ZmqPublisher("cam", bind="tcp://127.0.0.1:*", max_fps=50) as pub,
        ZmqSubscriber(pub.endpoint, "cam", stop=stop, timeout=10.0) as sub,
    ):
        got = []
        for _frame, meta in sub:
            got.append(meta.cnt0)
            if len(got) == 3:
                stop.set()
        assert len(got) == 3


def test_publisher_follows_a_recreated_stream() -> None:
    with (
        Writer("cam", SHAPE, fps=100) as writer,
        ZmqPublisher("cam", bind="tcp://127.0.0.1:*", max_fps=0) as pub,
        ZmqSubscriber(pub.endpoint, "cam", timeout=10.0) as sub,
    ):
        frame, meta = sub.recv()
        assert frame.shape == SHAPE
        writer.stop.set()
        writer.thread.join(5)
        with Stream.create("cam", (8, 8), np.uint16, exist_ok=True) as new:
            for _ in range(200):
                cnt0 = new.cnt0 + 1
                new.write(expected_frame(cnt0, (8, 8)), acquisition_time=1.7e9 + cnt0)
                try:
                    frame, meta = sub.recv(timeout=0.05)
                except LinkTimeout:
                    continue
                if frame.shape == (8, 8):
                    break
            assert meta.shape == (8, 8)
            assert np.array_equal(frame, expected_frame(meta.cnt0, (8, 8)))
        assert pub.status().recreated >= 1


def test_curve_authentication(tmp_path: Path) -> None:
    if not zmq.has("curve"):
        pytest.skip("libzmq built without CURVE")
    from vampires.control.keys import generate_keys

    keys = generate_keys(tmp_path / "keys")
    with (
        Writer("cam", SHAPE, fps=100),
        ZmqPublisher("cam", bind="tcp://127.0.0.1:*", max_fps=30, curve_dir=keys) as pub,
    ):
        with ZmqSubscriber(pub.endpoint, "cam", curve_dir=keys) as sub:
            frame, meta = sub.recv(timeout=10.0)
            check(frame, meta)
        # without keys: the handshake fails, nothing arrives (and nothing crashes)
        with ZmqSubscriber(pub.endpoint, "cam") as plain, pytest.raises(LinkTimeout):
            plain.recv(timeout=0.5)


# --------------------------------------------------------------------------- processes


@pytest.mark.integration
def test_vpupcam_over_zmq_into_a_local_stream(link_process: Callable[..., LinkProcess]) -> None:
    """sonne -> scexao6: a 512x512 uint16 stream at 30 fps with per-frame keywords."""
    shape = (512, 512)
    port = free_port()
    with Writer("vpupcam", shape, fps=30) as writer:
        pub = link_process("zmq-pub", "vpupcam", "--bind", f"tcp://127.0.0.1:{port}", "--fps", "20")
        sub = link_process(
            "zmq-sub", f"tcp://127.0.0.1:{port}", "vpupcam", "--local-name", "vpupcam_sc6"
        )
        local = open_when_ready("vpupcam_sc6", timeout=20)
        with local, local.reader() as reader:
            counters = []
            while len(counters) < 8:
                frame = reader.next(timeout=10.0)
                # the local copy carries the publisher's counters: pixels match that frame
                assert np.array_equal(frame.data, expected_frame(frame.cnt0, shape))
                assert frame.acquisition_time == pytest.approx(1.7e9 + frame.cnt0)
                counters.append(frame.cnt0)
            assert local.keywords["_MAQTIME"] >= counters[0]
            assert local.keywords.comment("MFRATE") == "frame rate"
            assert writer.stream.cnt0 >= counters[-1]
    assert sub.stop() == 0
    assert pub.stop() == 0
    assert "publishing vpupcam into local stream vpupcam_sc6" in sub.output()
