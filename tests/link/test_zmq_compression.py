"""Compressed ZMQ frames: codec, negotiation with old peers, bandwidth cap, status.

Real sockets on 127.0.0.1 and real streams; the cap logic is checked on a
deterministic clock (no timing assertions), the socket-level cap with counts
over a window and generous bounds. The precise 20 s measurement is in
``benchmarks/zmq_bench.py``.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable

import numpy as np
import pytest
import zmq

from tests.helpers import free_port, wait_for
from tests.link.linkhelpers import LinkProcess, open_when_ready
from vampires.cli.link import main as link_main
from vampires.errors import ConfigError, LinkTimeout, ProtocolError
from vampires.link import protocol as p
from vampires.link import zmq as link_zmq
from vampires.link import zmq_protocol as zp
from vampires.link.codec import compress_frame, decompress_frame, parse_compression
from vampires.link.zmq import Pacer, ZmqPublisher, ZmqSubscriber
from vampires.stream import Stream
from vampires.stream.layout import WRITABLE_DTYPES

SHAPE = (24, 40)


def noisy_frame(cnt0: int, shape: tuple[int, ...] = SHAPE) -> np.ndarray:
    """A camera-like frame (bias + noise) that still depends on every pixel and cnt0."""
    rng = np.random.default_rng(cnt0)
    return (200 + rng.normal(0, 4, shape)).astype(np.uint16)


class Writer:
    """Writes noisy_frame(cnt0) at a steady rate into a new stream."""

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
            self.stream.write(noisy_frame(cnt0, self.shape), acquisition_time=1.7e9 + cnt0)
            deadline += self.period
            self.stop.wait(max(0.0, deadline - time.monotonic()))

    def __enter__(self) -> Writer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)
        self.stream.close()


def raw_sub(ctx: zmq.Context[zmq.Socket[bytes]], endpoint: str, topic: bytes) -> zmq.Socket[bytes]:
    """A bare SUB socket: what a subscriber written before compression does."""
    sock = ctx.socket(zmq.SUB)
    sock.linger = 0
    sock.setsockopt(zmq.SUBSCRIBE, topic)
    sock.connect(endpoint)
    return sock


# --------------------------------------------------------------------------- codec


def _sample(dtype: str, rng: np.random.Generator) -> np.ndarray:
    dt = np.dtype(dtype)
    shape = (17, 31)  # odd sizes: blocks do not divide evenly
    if dt.kind in "ui":
        info = np.iinfo(dt)
        data = rng.integers(info.min, info.max, size=shape, dtype=dt, endpoint=True)
        data.flat[:2] = (info.min, info.max)
        return data
    if dt.kind == "f":
        data = rng.normal(0, 1e3, shape).astype(dt)
        data.flat[:4] = (np.nan, np.inf, -np.inf, -0.0)
        return data
    data = (rng.normal(0, 1, shape) + 1j * rng.normal(0, 1, shape)).astype(dt)
    data.flat[0] = complex(np.nan, -np.inf)
    return data


@pytest.mark.parametrize("codec", ["zstd", "lz4"])
@pytest.mark.parametrize("dtype", sorted(p.SUPPORTED_DTYPES))
def test_round_trip_is_bit_exact_for_every_dtype(dtype: str, codec: str) -> None:
    rng = np.random.default_rng(1)
    for data in (_sample(dtype, rng), np.zeros((3, 5, 7), dtype), np.ones(1, dtype)):
        chunk = compress_frame(data, codec)
        back = decompress_frame(chunk, data.shape, dtype)
        assert back.dtype == np.dtype(dtype)
        assert back.tobytes() == data.tobytes()  # bit-exact, NaN payloads and -0.0 included
        assert not back.flags.writeable


def test_noisy_frames_compress() -> None:
    frame = noisy_frame(1, (256, 256))
    assert len(compress_frame(frame, "zstd")) < frame.nbytes / 2


@pytest.mark.parametrize(
    ("mangle", "match"),
    [
        (lambda c: c[:20], "shorter than a Blosc2 header"),
        (lambda c: c[:-1], "Blosc2 chunk holds"),
        (lambda c: c + b"\0", "Blosc2 chunk holds"),
        (lambda c: b"\0" * len(c), "Blosc2|decompress"),
        (lambda c: np.zeros(4096, np.uint16).tobytes(), "Blosc2|decompress"),
    ],
)
def test_bad_chunks_are_protocol_errors(mangle: Callable[[bytes], bytes], match: str) -> None:
    chunk = compress_frame(noisy_frame(3), "zstd")
    with pytest.raises(ProtocolError, match=match):
        decompress_frame(mangle(chunk), SHAPE, "<u2")


def test_chunk_must_match_the_announced_shape() -> None:
    chunk = compress_frame(noisy_frame(3), "zstd")
    with pytest.raises(ProtocolError, match="Blosc2 chunk holds"):
        decompress_frame(chunk, (24, 41), "<u2")


def test_parse_compression() -> None:
    assert parse_compression("zstd") == "zstd"
    assert parse_compression("lz4") == "lz4"
    assert parse_compression("off") is None
    assert parse_compression(None) is None
    for bad in ("gzip", "ZSTD", 1, True):
        with pytest.raises(ConfigError, match="compression must be one of"):
            parse_compression(bad)


# --------------------------------------------------------------------------- wire format


def _meta(**changes: object) -> zp.ZmqMeta:
    fields: dict[str, object] = {
        "name": "cam",
        "shape": SHAPE,
        "dtype": "<u2",
        "cnt0": 5,
        "cnt1": 0,
        "acquisition_time": 1.0,
        "write_time": 2.0,
        "send_time": 3.0,
        "keywords": {"EXPTIME": (0.1, "[s]")},
    }
    fields.update(changes)
    return zp.ZmqMeta(**fields)  # type: ignore[arg-type]


def test_raw_metadata_is_the_version_1_form() -> None:
    obj = json.loads(zp.encode_zmq_meta(_meta()))
    assert "encoding" not in obj  # byte-compatible with subscribers written before compression
    assert obj["v"] == 1


def test_compressed_message_round_trip() -> None:
    raw_topic, z_topic = zp.zmq_topics("cam")
    assert (raw_topic, z_topic) == (b"cam", b"~blosc2/cam")
    assert not z_topic.startswith(raw_topic)  # an old subscriber's prefix never matches it
    frame = noisy_frame(5)
    meta = _meta(encoding="blosc2")
    parts = [z_topic, zp.encode_zmq_meta(meta), compress_frame(frame, "lz4")]
    got = zp.decode_zmq_message(parts)
    assert got == meta
    assert np.array_equal(decompress_frame(parts[2], got.shape, got.dtype), frame)


@pytest.mark.parametrize(
    ("topic", "meta", "match"),
    [
        (b"~blosc2/cam", _meta(), "does not match the topic"),  # raw metadata, compressed topic
        (b"cam", _meta(encoding="blosc2"), "does not match the topic"),
        (b"~blosc2/other", _meta(encoding="blosc2"), "differs from the metadata name"),
    ],
)
def test_encoding_and_topic_must_agree(topic: bytes, meta: zp.ZmqMeta, match: str) -> None:
    parts = [topic, zp.encode_zmq_meta(meta), np.zeros(SHAPE, np.uint16).tobytes()]
    with pytest.raises(ProtocolError, match=match):
        zp.decode_zmq_message(parts)
    with pytest.raises(ProtocolError, match="encoding must be one of"):
        zp.encode_zmq_meta(_meta(encoding="gzip"))


# --------------------------------------------------------------------------- pacer


def _simulate(
    pacer: Pacer,
    *,
    camera_fps: float,
    seconds: float,
    size: Callable[[int], int],
) -> list[tuple[float, int]]:
    """Drive the pacer as the publisher does, on a virtual clock: returns (time, bytes) sent."""
    sent: list[tuple[float, int]] = []
    period = 1.0 / camera_fps
    k = 0
    while k * period < seconds:
        now = k * period
        if pacer.delay(now) <= 0:
            nbytes = size(k)
            pacer.sent(nbytes, now + 0.002)  # 2 ms to compress and send
            sent.append((now, nbytes))
        k += 1
    return sent


def test_pacer_holds_the_cap_and_lowers_the_frame_rate() -> None:
    rng = np.random.default_rng(0)
    sizes = rng.integers(1_500_000, 1_800_000, size=10_000)  # compressed MBI frames
    cap_mbps = 200.0
    pacer = Pacer(max_fps=20, max_mbps=cap_mbps)
    sent = _simulate(pacer, camera_fps=100, seconds=20, size=lambda k: int(sizes[k]))
    mbps = sum(n for _, n in sent) * 8 / 20 / 1e6
    assert 0.95 * cap_mbps <= mbps <= cap_mbps * 1.01  # the long-run rate is the cap
    assert len(sent) < 20 * 20  # below max_fps: the cap lowered the frame rate
    # any 1 s window: at most the cap plus one message (no bursts)
    times = np.array([t for t, _ in sent])
    nbytes = np.array([n for _, n in sent])
    for start in np.arange(0, 19, 0.25):
        inside = (times >= start) & (times < start + 1)
        assert nbytes[inside].sum() * 8 / 1e6 <= cap_mbps + sizes.max() * 8 / 1e6


def test_pacer_makes_up_for_a_slow_camera_schedule() -> None:
    # camera at 20 fps, cap worth ~15 fps: waiting for the next frame is made up for
    pacer = Pacer(max_fps=20, max_mbps=15 * 8 * 1e6 / 1e6)  # 1 MB frames -> 15 fps
    sent = _simulate(pacer, camera_fps=20, seconds=20, size=lambda _k: 1_000_000)
    assert 0.95 * 15 * 20 <= len(sent) <= 15 * 20 + 1


def test_pacer_fps_only_and_idle_spells() -> None:
    pacer = Pacer(max_fps=10)
    sent = _simulate(pacer, camera_fps=1000, seconds=10, size=lambda _k: 10**9)
    assert 99 <= len(sent) <= 101  # bytes do not count without a cap
    # at the start and after an idle spell, at most one extra message goes out at once
    pacer = Pacer(max_mbps=8.0)  # 1 MB/s
    for start in (0.0, 100.0):
        assert pacer.delay(start) < 0
        pacer.sent(1_000_000, now=start)
        assert pacer.delay(start) <= 0  # lateness credit: one message
        pacer.sent(1_000_000, now=start)
        assert pacer.delay(start) == pytest.approx(1.0)
        pacer.sent(1_000_000, now=start + 1.0)
        assert pacer.delay(start + 1.0) == pytest.approx(1.0)
    # frames that reached nobody cost nothing
    pacer = Pacer(max_mbps=8.0)
    pacer.sent(0, now=0.0)
    assert pacer.delay(0.0) < 0
    # no limits: never waits
    assert Pacer().delay(0.0) < 0


# --------------------------------------------------------------------------- sockets


def test_publisher_rejects_bad_compression_arguments() -> None:
    with pytest.raises(ConfigError, match="compression must be one of"):
        ZmqPublisher("cam", bind="tcp://127.0.0.1:*", compression="gzip")
    with pytest.raises(ConfigError, match="max_mbps must be >= 0"):
        ZmqPublisher("cam", bind="tcp://127.0.0.1:*", max_mbps=-1)
    with pytest.raises(ConfigError, match="max_mbps must be a finite number"):
        ZmqPublisher("cam", bind="tcp://127.0.0.1:*", max_mbps=float("nan"))


def test_compressed_frames_with_an_old_subscriber_alongside() -> None:
    """A new subscriber gets compressed frames; an old one, on the same publisher, raw ones."""
    with (
        zmq.Context() as ctx,
        Writer("cam", SHAPE, fps=200),
        ZmqPublisher("cam", bind="tcp://127.0.0.1:*", max_fps=50) as pub,
        ZmqSubscriber(pub.endpoint, "cam", timeout=10.0) as new,
    ):
        old = raw_sub(ctx, pub.endpoint, b"cam")
        try:
            encodings = set()
            for _ in range(8):
                frame, meta = new.recv(timeout=10.0)
                assert np.array_equal(frame, noisy_frame(meta.cnt0)), meta.cnt0
                encodings.add(meta.encoding)
            assert "blosc2" in encodings
            for _ in range(5):
                assert old.poll(10_000), "the old subscriber gets nothing"
                parts = old.recv_multipart()
                # the old subscriber's decoder (raw topic, version-1 JSON, raw bytes)
                meta = zp.decode_zmq_message(parts)
                assert parts[0] == b"cam"
                assert "encoding" not in json.loads(parts[1])
                pixels = np.frombuffer(parts[2], meta.dtype).reshape(meta.shape)
                assert np.array_equal(pixels, noisy_frame(meta.cnt0))
        finally:
            old.close()
        # the new subscriber dropped the raw topic: its frames are all compressed now
        for _ in range(5):
            _frame, meta = new.recv(timeout=10.0)
        assert meta.encoding == "blosc2"
        status = pub.status()
        assert status.ratio > 1.5
        assert status.wire_nbytes > 0
        assert "ratio" in status.line()
        assert "Mbps on the wire" in status.line()
        assert new.status().ratio > 1.5
        assert new.status().malformed == 0


def test_old_subscriber_alone_gets_raw_frames_and_nothing_is_compressed() -> None:
    with (
        zmq.Context() as ctx,
        Writer("cam", SHAPE, fps=200),
        ZmqPublisher("cam", bind="tcp://127.0.0.1:*", max_fps=50) as pub,
    ):
        old = raw_sub(ctx, pub.endpoint, b"cam")
        try:
            for _ in range(5):
                assert old.poll(10_000)
                meta = zp.decode_zmq_message(old.recv_multipart())
                assert meta.encoding == "raw"
        finally:
            old.close()
        assert pub.status().ratio == 1.0  # nobody asked for compressed frames


def test_new_subscriber_against_an_old_publisher() -> None:
    """Raw version-1 messages from a bare PUB socket (a publisher before compression)."""
    with zmq.Context() as ctx, ctx.socket(zmq.PUB) as old:
        old.linger = 0
        port = old.bind_to_random_port("tcp://127.0.0.1")
        with ZmqSubscriber(f"tcp://127.0.0.1:{port}", "cam") as sub:
            got = []
            for cnt0 in range(1, 400):
                meta = _meta(cnt0=cnt0, write_time=float(cnt0))
                old.send_multipart([b"cam", zp.encode_zmq_meta(meta), noisy_frame(cnt0).tobytes()])
                try:
                    frame, got_meta = sub.recv(timeout=0.05)
                except LinkTimeout:
                    continue
                assert np.array_equal(frame, noisy_frame(got_meta.cnt0))
                assert got_meta.encoding == "raw"
                got.append(got_meta.cnt0)
                if len(got) == 5:
                    break
            assert len(got) == 5, got
            assert sub.status().malformed == 0


def test_publisher_with_compression_off_and_a_raw_subscriber() -> None:
    with (
        Writer("cam", SHAPE, fps=200),
        ZmqPublisher("cam", bind="tcp://127.0.0.1:*", max_fps=50, compression="off") as pub,
        ZmqSubscriber(pub.endpoint, "cam", timeout=10.0) as sub,
    ):
        for _ in range(4):
            frame, meta = sub.recv()
            assert meta.encoding == "raw"
            assert np.array_equal(frame, noisy_frame(meta.cnt0))
    with (
        Writer("cam", SHAPE, fps=200),
        ZmqPublisher("cam", bind="tcp://127.0.0.1:*", max_fps=50) as pub,
        ZmqSubscriber(pub.endpoint, "cam", timeout=10.0, compression=False) as sub,
    ):
        for _ in range(4):
            frame, meta = sub.recv()
            assert meta.encoding == "raw"
        assert pub.status().ratio == 1.0


def test_subscriber_takes_the_raw_topic_back_when_the_publisher_stops_compressing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(link_zmq, "_RAW_FALLBACK_S", 0.3)
    port = free_port()
    endpoint = f"tcp://127.0.0.1:{port}"
    with Writer("cam", SHAPE, fps=100), ZmqSubscriber(endpoint, "cam", timeout=10.0) as sub:
        with ZmqPublisher("cam", bind=endpoint, max_fps=30):
            wait_for(lambda: sub.recv()[1].encoding == "blosc2", what="a compressed frame")
        # the same endpoint, now a publisher that never compresses (as an old one)
        with ZmqPublisher("cam", bind=endpoint, max_fps=30, compression="off"):

            def raw_frame() -> tuple[np.ndarray, zp.ZmqMeta] | None:
                frame, meta = sub.recv(timeout=20.0)  # frames queued from the first one first
                return (frame, meta) if meta.encoding == "raw" else None

            frame, meta = wait_for(raw_frame, timeout=30, what="a raw frame")
            assert np.array_equal(frame, noisy_frame(meta.cnt0))


@pytest.mark.parametrize("dtype", sorted(WRITABLE_DTYPES, key=str), ids=str)
def test_every_stream_dtype_through_the_sockets(dtype: np.dtype) -> None:
    rng = np.random.default_rng(2)
    data = _sample(dtype.str, rng)
    with (
        Stream.create("cam", data.shape, dtype, exist_ok=True) as stream,
        ZmqPublisher("cam", bind="tcp://127.0.0.1:*", max_fps=0) as pub,
        ZmqSubscriber(pub.endpoint, "cam") as sub,
    ):
        for _ in range(400):
            stream.write(data)
            try:
                frame, meta = sub.recv(timeout=0.05)
            except LinkTimeout:
                continue
            if meta.encoding == "blosc2":
                break
        assert meta.encoding == "blosc2"
        assert frame.dtype == dtype
        assert frame.tobytes() == data.tobytes()


def test_bandwidth_cap_counts_what_is_sent() -> None:
    """The cap lowers the frame rate: bytes received over a window stay under it (loose bounds)."""
    cap_mbps = 0.4  # 50 kB/s: ~1 kB messages -> ~50 fps allowed, camera at 400 fps
    with (
        zmq.Context() as ctx,
        Writer("cam", SHAPE, fps=400),
        ZmqPublisher("cam", bind="tcp://127.0.0.1:*", max_fps=0, max_mbps=cap_mbps) as pub,
    ):
        counter = raw_sub(ctx, pub.endpoint, b"~blosc2/cam")  # counts every message it gets
        try:
            assert counter.poll(10_000)
            counter.recv_multipart()
            start = pub.status()
            t0 = time.monotonic()
            received = largest = 0
            while time.monotonic() - t0 < 2.0:
                if counter.poll(100):
                    size = sum(len(part) for part in counter.recv_multipart())
                    received += size
                    largest = max(largest, size)
            elapsed = time.monotonic() - t0
            end = pub.status()
        finally:
            counter.close()
    bound = cap_mbps * 1e6 / 8 * (elapsed + 0.2) + 2 * largest
    assert received <= bound
    assert end.wire_nbytes - start.wire_nbytes <= bound
    assert end.skipped - start.skipped > end.frames - start.frames  # most frames not sent
    assert end.frames > start.frames


# --------------------------------------------------------------------------- command line


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["zmq-pub", "cam", "--bind", "tcp://*:5555", "--compression", "gzip"], "compression"),
        (["zmq-pub", "cam", "--bind", "tcp://*:5555", "--max-mbps", "-3"], "max_mbps must be"),
    ],
)
def test_bad_compression_options(
    argv: list[str], match: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert link_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("vampires link zmq-pub:")
    assert match in err


@pytest.mark.integration
def test_capped_compressed_link_between_processes(
    link_process: Callable[..., LinkProcess],
) -> None:
    """zmq-pub --max-mbps -> zmq-sub into a local stream: byte-exact, status shows the ratio."""
    from vampires.link.daemon import link_status

    shape = (256, 256)
    port = free_port()
    with Writer("vcam1", shape, fps=60) as writer:
        pub = link_process(
            "zmq-pub", "vcam1", "--bind", f"tcp://127.0.0.1:{port}", "--fps", "20",
            "--max-mbps", "50",
        )  # fmt: skip
        sub = link_process("zmq-sub", f"tcp://127.0.0.1:{port}", "vcam1", "--local-name", "vc1")
        local = open_when_ready("vc1", timeout=20)
        with local, local.reader() as reader:
            for _ in range(6):
                frame = reader.next(timeout=10.0)
                assert np.array_equal(frame.data, noisy_frame(frame.cnt0, shape))

        def compressed_status() -> str | None:
            line = link_status("vcam1.zmq-pub")
            return None if "ratio 1.00" in line else line

        line = wait_for(compressed_status, what="a compression ratio in the status")
        assert "Mbps on the wire" in line
        assert "fps" in line
        assert "ratio" in link_status("vc1.zmq-sub")
        assert writer.stream.cnt0 > 0
    assert sub.stop() == 0
    assert pub.stop() == 0


def test_status_line_shows_ratio_and_wire_mbps_for_zmq_links_only() -> None:
    from vampires.link.status import LinkCounters

    pub = LinkCounters("zmq-pub", "tcp://*:5555", "cam")
    pub.frame(4000, 1, wire_nbytes=2000, payload_nbytes=1000)
    pub.frame(4000, 2, wire_nbytes=0, payload_nbytes=0)  # reached nobody: not in the ratio
    status = pub.snapshot()
    assert status.ratio == pytest.approx(4.0)
    assert status.wire_nbytes == 2000
    assert "ratio 4.00" in status.line()
    assert "Mbps on the wire" in status.line()
    tcp = LinkCounters("tcp-send", "scexao6:5001", "cam")
    tcp.frame(4000, 1)
    assert tcp.snapshot().ratio == 1.0
    assert tcp.snapshot().wire_nbytes == 4000
    assert "ratio" not in tcp.snapshot().line()


def test_a_codec_failure_sends_raw_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_pixels: np.ndarray, _codec: str) -> bytes:
        msg = "codec exploded"
        raise RuntimeError(msg)

    monkeypatch.setattr(link_zmq, "compress_frame", broken)
    with (
        Writer("cam", SHAPE, fps=200),
        ZmqPublisher("cam", bind="tcp://127.0.0.1:*", max_fps=50) as pub,
        ZmqSubscriber(pub.endpoint, "cam", timeout=10.0) as sub,
    ):
        for _ in range(4):
            frame, meta = sub.recv()
            assert meta.encoding == "raw"
            assert np.array_equal(frame, noisy_frame(meta.cnt0))
        status = pub.status()
        assert status.error is not None
        assert "compression failed: codec exploded" in status.error
