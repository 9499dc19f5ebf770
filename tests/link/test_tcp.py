"""TCP mirror: real sockets on 127.0.0.1, real streams, sender/receiver threads and processes."""

from __future__ import annotations

import contextlib
import itertools
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.helpers import free_port, wait_for
from tests.link.linkhelpers import LinkProcess, expected_frame, open_when_ready
from vampires.control import ControlClient
from vampires.errors import ConfigError, LinkError, StreamTimeout
from vampires.link import protocol as p
from vampires.link.tcp import TcpReceiver, TcpSender
from vampires.stream import Stream
from vampires.testing.cwriter import (
    CWriterProcess,
    count_tags,
    frame_tag,
    make_base_frame,
    tag_frame,
)

SHAPE = (24, 40)


class PacedWriter:
    """Writes expected_frame(cnt0) into a stream at a steady rate from a thread."""

    def __init__(
        self, name: str, shape: tuple[int, ...], fps: float, circular_buffer: int = 0
    ) -> None:
        self.name = name
        self.shape = shape
        self.period = 1.0 / fps
        self.stop = threading.Event()
        self.cbsize = circular_buffer
        self.stream = Stream.create(
            name, shape, np.uint16, circular_buffer=circular_buffer, exist_ok=True
        )
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic()
        while not self.stop.is_set():
            cnt0 = self.stream.cnt0 + 1
            self.stream.write(
                expected_frame(cnt0, self.shape),
                keywords={"FRAMENO": cnt0 // 50},
                acquisition_time=1.7e9 + cnt0,
            )
            deadline += self.period
            delay = deadline - time.monotonic()
            if delay > 0:
                self.stop.wait(delay)

    def recreate(self, shape: tuple[int, ...]) -> None:
        """Crop change: a new file with another shape, counters restart."""
        self.stop.set()
        self.thread.join(5)
        self.stream.close()
        self.shape = shape
        self.stream = Stream.create(
            self.name, shape, np.uint16, circular_buffer=self.cbsize, exist_ok=True
        )
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def __enter__(self) -> PacedWriter:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(5)
        self.stream.close()


def check_frames(
    mirror: Stream, until: Callable[[int, int], bool], timeout: float = 20.0
) -> list[int]:
    """Read the mirror until ``until(cnt0, count)``; every frame must be byte-exact."""
    seen: list[int] = []
    deadline = time.monotonic() + timeout
    with mirror.reader() as reader:
        while time.monotonic() < deadline:
            frame = reader.next(timeout=5.0)
            assert np.array_equal(frame.data, expected_frame(frame.cnt0, frame.data.shape)), (
                f"frame {frame.cnt0} is not byte-exact"
            )
            assert frame.acquisition_time == pytest.approx(1.7e9 + frame.cnt0)
            seen.append(frame.cnt0)
            if until(frame.cnt0, len(seen)):
                return seen
    pytest.fail(f"mirror did not reach the condition in {timeout} s (last {seen[-3:]})")


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"stream_name": "../x"}, "is invalid"),
        ({"host": ""}, "host must be"),
        ({"port": 0}, "1-65535"),
        ({"port": 70000}, "0-65535"),
        ({"port": "http"}, "0-65535"),
        ({"timeout": -1}, "timeout must be > 0"),
        ({"timeout": float("nan")}, "finite"),
    ],
)
def test_sender_rejects_bad_arguments(kwargs: dict[str, object], match: str) -> None:
    args: dict[str, object] = {"stream_name": "vcam1", "host": "127.0.0.1", "port": 5001}
    args.update(kwargs)
    with pytest.raises(ConfigError, match=match):
        TcpSender(**args)  # type: ignore[arg-type]


def test_receiver_rejects_bad_arguments() -> None:
    with pytest.raises(ConfigError, match="is invalid"):
        TcpReceiver(0, name="a/b")
    with pytest.raises(ConfigError, match="idle_timeout"):
        TcpReceiver(0, idle_timeout=0)
    with TcpReceiver(0) as first, pytest.raises(LinkError, match="cannot listen"):
        TcpReceiver(first.port)


# --------------------------------------------------------------------------- in-process


@pytest.fixture
def pair() -> Iterator[tuple[TcpReceiver, Callable[..., TcpSender]]]:
    senders: list[TcpSender] = []
    receiver = TcpReceiver(0, name="mirror").start()

    def sender(name: str = "cam", **kw: object) -> TcpSender:
        s = TcpSender(name, "127.0.0.1", receiver.port, **kw).start()  # type: ignore[arg-type]
        senders.append(s)
        return s

    yield receiver, sender
    for s in senders:
        s.close()
    receiver.close()


def test_mirror_counters_keywords_and_deletions(
    pair: tuple[TcpReceiver, Callable[..., TcpSender]],
) -> None:
    receiver, sender = pair
    with Stream.create("cam", SHAPE, np.uint16, nkeywords=80) as src:
        src.write(expected_frame(1, SHAPE))  # cnt0 1 before the link starts
        src.keywords.update({"EXPTIME": (0.25, "[s] Exposure"), "OLD": ("x", "to delete")})
        tx = sender()
        mirror = open_when_ready("mirror")
        with mirror:
            wait_for(lambda: receiver.status().connected, what="connection")
            # the receiver creates the stream, then writes the hello's keywords and
            # names the stream in its status: wait for that, not just the connection
            wait_for(lambda: receiver.status().stream == "mirror", what="hello applied")
            assert mirror.nkeywords >= 80
            # (seen once in CI on a busy machine: {} right after "hello applied"; poll
            # the same exact expectation rather than read it once)
            wait_for(
                lambda: mirror.keywords.to_dict() == {"EXPTIME": 0.25, "OLD": "x"},
                what="the hello's keywords on the mirror",
            )
            with mirror.reader() as reader:
                for cnt0 in range(2, 12):
                    kw = {"FRAMENO": cnt0} if cnt0 % 3 == 0 else None
                    if cnt0 == 9:
                        del src.keywords["OLD"]
                    src.write(
                        expected_frame(cnt0, SHAPE), keywords=kw, acquisition_time=1.7e9 + cnt0
                    )
                    frame = reader.next(5.0)
                    assert frame.cnt0 == cnt0
                    assert np.array_equal(frame.data, expected_frame(cnt0, SHAPE))
                    assert frame.acquisition_time == pytest.approx(1.7e9 + cnt0)
            assert mirror.keywords.to_dict() == {"EXPTIME": 0.25, "FRAMENO": 9}
            assert mirror.keywords.comment("EXPTIME") == "[s] Exposure"
        status = wait_for(lambda: (st := receiver.status()).frames == 10 and st, what="count")
        assert status.recreated == 0  # created once, never replaced
        assert status.skipped == 0
        assert status.stream == "mirror"
        wait_for(lambda: tx.status().frames == 10, what="sender count")
        assert tx.status().connected
        assert "10 frames" in tx.status().line()
        assert status.to_dict()["role"] == "tcp-recv"


def test_bursts_are_caught_up_from_the_circular_buffer(
    pair: tuple[TcpReceiver, Callable[..., TcpSender]],
) -> None:
    """Back-to-back frames (a camera driver delivering late): none lost, all in order."""
    receiver, sender = pair
    with Stream.create("cam", SHAPE, np.uint16, circular_buffer=8) as src:
        tx = sender()
        wait_for(lambda: receiver.status().connected and tx.status().connected, what="link up")
        cnt0 = 0
        for _burst in range(20):
            for _ in range(6):
                cnt0 += 1
                src.write(expected_frame(cnt0, SHAPE), acquisition_time=1.7e9 + cnt0)
            time.sleep(0.03)
        status = wait_for(
            lambda: (st := receiver.status()).last_cnt0 == cnt0 and st, what="all frames"
        )
        assert status.frames == cnt0
        assert status.skipped == 0
        assert tx.status().skipped == 0
        with Stream.open("mirror") as mirror:
            assert np.array_equal(mirror.read(), expected_frame(cnt0, SHAPE))


def test_frames_sent_from_their_slot_are_mirrored_byte_exact(
    pair: tuple[TcpReceiver, Callable[..., TcpSender]],
) -> None:
    """A camera-like stream (circular buffer): pixels go out of shm, the mirror is exact."""
    receiver, sender = pair
    with PacedWriter("cam", SHAPE, fps=500, circular_buffer=16):
        tx = sender()
        mirror = open_when_ready("mirror")
        with mirror:
            seen = check_frames(mirror, lambda _c, n: n >= 200)
    assert all(b > a for a, b in itertools.pairwise(seen))
    status = wait_for(lambda: (st := receiver.status()).frames >= 200 and st, what="count")
    assert status.malformed == 0
    assert status.torn <= tx.status().torn


def test_frame_overwritten_during_the_send_is_never_published(
    pair: tuple[TcpReceiver, Callable[..., TcpSender]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The writer laps the slot while its pixels are on the wire: TORN, dropped, counted."""
    import vampires.link.tcp_sender as tcp

    receiver, sender = pair
    cbsize, victim = 4, 5
    done = threading.Event()
    real_sendmsg_all = tcp._sendmsg_all
    with Stream.create("cam", SHAPE, np.uint16, circular_buffer=cbsize) as src:

        def write(cnt0: int) -> None:
            src.write(expected_frame(cnt0, SHAPE), acquisition_time=1.7e9 + cnt0)

        def slow_sendmsg_all(sock: socket.socket, buffers: list[memoryview]) -> None:
            header = buffers[0]
            is_frame = len(header) == p.PREFIX.size + p.FRAME_FIXED.size
            if not is_frame or p.FRAME_FIXED.unpack_from(header, p.PREFIX.size)[0] != victim:
                real_sendmsg_all(sock, buffers)
                return
            # half the pixels leave, then the camera writes CBsize frames (it never
            # waits for the link): the slot now holds another frame
            *head, pixels = buffers
            half = len(pixels) // 2
            real_sendmsg_all(sock, [*head, pixels[:half]])
            for cnt0 in range(victim + 1, victim + 1 + cbsize):
                write(cnt0)
            real_sendmsg_all(sock, [pixels[half:]])
            done.set()

        monkeypatch.setattr(tcp, "_sendmsg_all", slow_sendmsg_all)
        tx = sender()
        mirror = open_when_ready("mirror")
        with mirror:
            wait_for(lambda: receiver.status().connected, what="connection")
            with mirror.reader() as reader:
                seen: list[int] = []
                for cnt0 in range(1, victim + 1):
                    write(cnt0)
                    if cnt0 < victim:
                        seen.append(reader.next(5.0).cnt0)
                assert done.wait(10.0), "the frame to tear was never sent"
                wait_for(lambda: receiver.status().torn == 1, what="receiver torn count")
                # the latest frame of the mirror is whole: the one before the torn
                # frame (restored) or one after it
                before = mirror.cnt0
                latest = mirror.read()
                assert any(
                    np.array_equal(latest, expected_frame(c, SHAPE))
                    for c in range(before, mirror.cnt0 + 1)
                    if c != victim
                )
                last = victim + cbsize
                # every frame sent before the slot of victim + 1 is reused: no other tear
                wait_for(lambda: tx.status().last_cnt0 == last, what="newest frame sent")
                write(last + 1)
                while not seen or seen[-1] < last + 1:
                    frame = reader.next(5.0)
                    assert np.array_equal(frame.data, expected_frame(frame.cnt0, SHAPE))
                    seen.append(frame.cnt0)
        assert victim not in seen
        assert seen[: victim - 1] == list(range(1, victim))
        status = wait_for(
            lambda: (st := receiver.status()).last_cnt0 == last + 1 and st, what="receiver"
        )
        assert status.torn == 1
        assert status.skipped >= 1  # the dropped frame shows as a counter gap
        sent = wait_for(lambda: (st := tx.status()).last_cnt0 == last + 1 and st, what="sender")
        assert sent.torn == 1
        assert sent.frames == status.frames


def test_sender_waits_for_its_stream(pair: tuple[TcpReceiver, Callable[..., TcpSender]]) -> None:
    _receiver, sender = pair
    tx = sender("late")
    wait_for(lambda: tx.status().error, what="sender error about the missing stream")
    assert "late" in str(tx.status().error)
    with Stream.create("late", SHAPE, np.uint16) as src:
        mirror = open_when_ready("mirror")
        with mirror, mirror.reader() as reader:
            src.write(expected_frame(1, SHAPE), acquisition_time=1.7e9 + 1)
            assert reader.next(5.0).cnt0 == 1


def _raw_client(port: int) -> socket.socket:
    return socket.create_connection(("127.0.0.1", port), timeout=5)


@pytest.mark.parametrize(
    "garbage",
    [
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        b"VMPL\x07\x00\x01\x00",  # protocol version 7
        p.encode_heartbeat()[:4] + b"\x01\x00\x03\x00" + bytes(48),  # frame before hello
        b"VMPL\x01\x00\x01\x00" + (10).to_bytes(4, "little") + b"{not json}",
    ],
)
def test_receiver_survives_garbage(
    pair: tuple[TcpReceiver, Callable[..., TcpSender]], garbage: bytes
) -> None:
    receiver, sender = pair
    with _raw_client(receiver.port) as raw:
        raw.sendall(garbage)
        wait_for(lambda: receiver.status().malformed >= 1, what="malformed count")
    assert "Protocol" in str(receiver.status().error)
    # a real sender still gets through afterwards
    with Stream.create("cam", SHAPE, np.uint16) as src:
        sender()
        mirror = open_when_ready("mirror")
        with mirror, mirror.reader() as reader:
            wait_for(lambda: receiver.status().connected, what="sender connected")
            src.write(expected_frame(1, SHAPE), acquisition_time=1.7e9 + 1)
            assert reader.next(5.0).cnt0 == 1


def _raw_frame(cnt0: int, shape: tuple[int, ...] = SHAPE) -> bytes:
    pixels = expected_frame(cnt0, shape).tobytes()
    header = p.encode_frame_header(
        p.FrameHeader(
            cnt0=cnt0,
            cnt1=0,
            acquisition_time=1.7e9 + cnt0,
            write_time=1.7e9 + cnt0,
            keywords_nbytes=0,
            payload_nbytes=len(pixels),
        )
    )
    return header + pixels + p.encode_trailer(p.FrameStatus.VALID)


def _raw_hello(raw: socket.socket) -> None:
    """Say HELLO for a SHAPE uint16 stream "cam" and read the ACK."""
    raw.sendall(p.encode_hello(p.Hello(name="cam", shape=SHAPE, dtype="<u2", generation=1)))
    ack = raw.recv(p.PREFIX.size + p.ACK_FIXED.size, socket.MSG_WAITALL)
    accepted, _ = p.decode_ack(ack[p.PREFIX.size :])
    assert accepted


def test_frame_without_hello_on_a_new_connection_is_refused(
    pair: tuple[TcpReceiver, Callable[..., TcpSender]],
) -> None:
    """The HELLO belongs to its connection: a new one that skips it is not published."""
    receiver, sender = pair
    with Stream.create("cam", SHAPE, np.uint16) as src:
        tx = sender()
        mirror = open_when_ready("mirror")
        with mirror, mirror.reader() as reader:
            wait_for(lambda: receiver.status().connected, what="sender connected")
            src.write(expected_frame(1, SHAPE), acquisition_time=1.7e9 + 1)
            assert reader.next(5.0).cnt0 == 1
            tx.close()  # BYE: the receiver waits for the next connection
            wait_for(lambda: not receiver.status().connected, what="sender gone")
            with _raw_client(receiver.port) as raw:
                raw.sendall(_raw_frame(99))  # a FRAME with no HELLO first
                wait_for(lambda: receiver.status().malformed >= 1, what="frame refused")
            assert "before any hello" in str(receiver.status().error)
            assert mirror.cnt0 == 1
            assert np.array_equal(mirror.read(), expected_frame(1, SHAPE))


@pytest.mark.parametrize("stuck", ["prefix", "pixels"])
def test_a_connection_stuck_mid_message_is_replaced_by_a_new_sender(stuck: str) -> None:
    """A half-open connection stalled inside a message does not hold off a real sender.

    The idle timeout is far longer than the waits here: only the replacement
    promised by the docs lets the new sender through.
    """
    with (
        TcpReceiver(0, name="mirror", idle_timeout=120) as receiver,
        _raw_client(receiver.port) as raw,
    ):
        if stuck == "prefix":
            raw.sendall(p.encode_heartbeat()[:3])  # 3 bytes of a message prefix
        else:
            _raw_hello(raw)
            partial = _raw_frame(5)
            raw.sendall(partial[: len(partial) // 2])  # header and half the pixels
        wait_for(lambda: receiver.status().connected, what="stuck connection accepted")
        time.sleep(0.3)  # the receiver is now waiting inside the message
        with (
            Stream.create("cam", SHAPE, np.uint16) as src,
            TcpSender("cam", "127.0.0.1", receiver.port),
        ):
            mirror = open_when_ready("mirror", timeout=30)
            with mirror, mirror.reader() as reader:
                got: list[int] = []
                deadline = time.monotonic() + 30
                while not got and time.monotonic() < deadline:
                    src.write(expected_frame(src.cnt0 + 1, SHAPE), acquisition_time=1.7e9)
                    with contextlib.suppress(StreamTimeout):
                        frame = reader.next(0.5)
                        assert np.array_equal(frame.data, expected_frame(frame.cnt0, SHAPE))
                        got.append(frame.cnt0)
                assert got, f"the new sender never got through ({receiver.status().line()})"
                assert 5 not in got  # the half frame of the stuck connection: never published
        raw.settimeout(5)
        with contextlib.suppress(ConnectionResetError):
            assert raw.recv(1) == b""  # the stuck connection was closed
        assert receiver.status().reconnects >= 1


def test_receiver_drops_a_silent_connection() -> None:
    with TcpReceiver(0, name="mirror", idle_timeout=0.5) as receiver:
        with _raw_client(receiver.port):  # connects, then says nothing at all
            wait_for(lambda: receiver.status().reconnects == 1, what="idle timeout")
        assert "heartbeats stopped" in str(receiver.status().error)


def test_receiver_refuses_version_with_clear_error(
    pair: tuple[TcpReceiver, Callable[..., TcpSender]],
) -> None:
    receiver, _ = pair
    with _raw_client(receiver.port) as raw:
        raw.sendall(b"VMPL\x02\x00\x01\x00")
        wait_for(lambda: receiver.status().malformed, what="malformed count")
    assert "version 2" in str(receiver.status().error)


def test_crop_change_recreates_the_mirror(
    pair: tuple[TcpReceiver, Callable[..., TcpSender]],
) -> None:
    receiver, sender = pair
    with PacedWriter("cam", SHAPE, fps=400) as writer:
        sender()
        mirror = open_when_ready("mirror")
        with mirror:
            check_frames(mirror, lambda _c, n: n >= 20)
            old_inode = mirror.inode
            writer.recreate((16, 16))
            wait_for(mirror.is_stale, what="mirror re-created")
        mirror = open_when_ready("mirror")
        with mirror:
            assert mirror.shape == (16, 16)
            assert mirror.inode != old_inode
            check_frames(mirror, lambda _c, n: n >= 20)
    assert receiver.status().recreated >= 1


@pytest.mark.parametrize("cbsize", [0, 8], ids=["copy", "from-slot"])
def test_slow_receiver_makes_the_sender_skip_not_block(cbsize: int) -> None:
    """A receiver that stops reading: the writer never waits, the sender counts skips."""
    big = (512, 512)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        with (
            Stream.create("cam", big, np.uint16, circular_buffer=cbsize) as src,
            TcpSender("cam", "127.0.0.1", port, timeout=30) as tx,
        ):
            conn, _ = listener.accept()
            with conn:
                head = conn.recv(p.PREFIX.size + p.HELLO_FIXED.size, socket.MSG_WAITALL)
                length = p.decode_hello_length(head[p.PREFIX.size :])
                conn.recv(length, socket.MSG_WAITALL)
                conn.sendall(p.encode_ack())
                wait_for(lambda: tx.status().connected, what="sender connected")
                # the socket buffers fill after a few frames; the writer never waits
                for cnt0 in range(1, 301):
                    src.write(expected_frame(cnt0, big))
                    time.sleep(0.001)
                # drain: the sender resumes at the newest frame and reports skips
                conn.settimeout(0.5)
                while True:
                    try:
                        if not conn.recv(1 << 20):
                            break
                    except TimeoutError:
                        break
                wait_for(lambda: tx.status().last_cnt0 == 300, what="newest frame sent")
                status = tx.status()
                assert status.skipped > 0
                assert status.frames + status.skipped <= 300
                assert status.last_cnt0 == 300
                if cbsize:  # the frame stuck in the socket was overwritten in its slot
                    assert status.torn >= 1


# --------------------------------------------------------------------------- processes


def _status(name: str) -> dict[str, object]:
    with ControlClient("link", name, timeout=5.0) as client:
        return client.call("status")


def _writer_script(n: int, fps: float, cbsize: int = 0) -> str:
    return f"""
import time, numpy as np
from linkhelpers import expected_frame
from vampires.stream import Stream
s = Stream.create("cam", {SHAPE!r}, np.uint16, circular_buffer={cbsize}, exist_ok=True)
period, deadline = 1.0 / {fps}, time.monotonic()
for cnt0 in range(1, {n} + 1):
    kw = {{"FRAMENO": cnt0 // 100}} if cnt0 % 100 == 0 else None
    s.write(expected_frame(cnt0, {SHAPE!r}), keywords=kw, acquisition_time=1.7e9 + cnt0)
    deadline += period
    delay = deadline - time.monotonic()
    if delay > 0:
        time.sleep(delay)
s.close()
"""


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("cbsize", [0, 16], ids=["copy", "from-slot"])
def test_10000_frames_mirrored_byte_exact_between_processes(
    link_process: Callable[..., LinkProcess], tmp_path: Path, cbsize: int
) -> None:
    n = 10_000
    port = free_port()
    with Stream.create("cam", SHAPE, np.uint16, circular_buffer=cbsize):
        pass
    rx = link_process("tcp-recv", str(port), "--name", "mirror")
    tx = link_process("tcp-send", "cam", f"127.0.0.1:{port}")
    wait_for(lambda: Stream.exists("mirror"), what="mirror stream (hello)")
    mirror = open_when_ready("mirror")
    tests_dir = str(Path(__file__).parent)
    writer = subprocess.Popen(
        [sys.executable, "-c", _writer_script(n, fps=4000, cbsize=cbsize)],
        cwd=tests_dir,
        env={**__import__("os").environ, "PYTHONPATH": tests_dir},
    )
    try:
        with mirror:
            seen = check_frames(mirror, lambda cnt0, _n: cnt0 == n, timeout=60)
            assert writer.wait(timeout=30) == 0
            assert all(b > a for a, b in itertools.pairwise(seen)), "cnt0 not increasing"
            assert mirror.cnt0 == n
            assert mirror.keywords["FRAMENO"] == 100
            recv = wait_for(
                lambda: (s := _status("mirror.tcp-recv"))["last_cnt0"] == n and s,
                what="receiver status",
            )
            sent = _status("cam.tcp-send")
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait(10)
    # every frame of the source is either mirrored or counted as skipped
    first = int(recv["last_cnt0"]) - int(recv["frames"]) - int(recv["skipped"]) + 1
    assert first >= 1
    assert int(recv["frames"]) == int(sent["frames"])
    assert int(sent["frames"]) + int(sent["skipped"]) == n - first + 1
    # frames sent from shared memory (their slot, or the live pixel array of a
    # stream without one) may be overwritten on a loaded machine: then the
    # receiver dropped them (never published, the check above saw none)
    assert int(recv["torn"]) <= int(sent["torn"])
    assert recv["malformed"] == 0
    assert tx.stop() == 0
    assert rx.stop() == 0
    assert "mirroring cam into local stream mirror" in rx.output()


@pytest.mark.integration
@pytest.mark.slow
@pytest.mark.parametrize("order", ["isio", "pymilk"])
def test_10000_frames_of_a_c_like_writer_mirrored_byte_exact(
    link_process: Callable[..., LinkProcess], order: str
) -> None:
    """A writer like C code (in place, no circular buffer), both post orders, in its own process.

    Every frame that reaches the mirror is byte-exact under the counter it was
    written with (a frame sent while being overwritten is never published,
    nor one taken before its count moved), in order; every frame not carried
    is counted by the sender.
    """
    n = 10_000
    port = free_port()
    rx = link_process("tcp-recv", str(port), "--name", "mirror")
    base = make_base_frame(SHAPE, np.uint16)
    with CWriterProcess("cam", SHAPE, fps=1000, frames=n, order=order, start_delay=1.0) as w:  # type: ignore[arg-type]
        tx = link_process("tcp-send", "cam", f"127.0.0.1:{port}")
        mirror = open_when_ready("mirror", timeout=30)
        tags: list[int] = []
        with mirror, mirror.reader(catch_up=True) as reader:
            expected = base.copy()
            while not tags or tags[-1] < n - 1:
                frame = reader.next(timeout=30.0)
                tag = frame_tag(frame.data)
                assert tag >= 0, f"torn frame published at cnt0 {frame.cnt0}"
                assert frame.cnt0 == tag + 1, f"frame {tag} published as cnt0 {frame.cnt0}"
                tag_frame(expected, tag)
                assert np.array_equal(frame.data, expected), f"frame {tag} is not byte-exact"
                tags.append(tag)
        w.wait(timeout=60)
    assert all(b > a for a, b in itertools.pairwise(tags)), "frames out of order"
    _missed, duplicated, torn = count_tags(tags, n)
    assert (duplicated, torn) == (0, 0)
    recv = wait_for(
        lambda: (s := _status("mirror.tcp-recv"))["last_cnt0"] == n and s, what="receiver"
    )
    sent = _status("cam.tcp-send")
    # every frame of the source is either mirrored or counted as skipped by the sender
    first = n - int(recv["frames"]) - int(recv["skipped"]) + 1
    assert int(sent["frames"]) + int(sent["skipped"]) == n - first + 1
    assert int(recv["torn"]) <= int(sent["torn"])
    assert recv["malformed"] == 0
    assert tx.stop() == 0
    assert rx.stop() == 0


@pytest.mark.integration
@pytest.mark.slow
def test_sender_and_receiver_restarts(link_process: Callable[..., LinkProcess]) -> None:
    port = free_port()
    with PacedWriter("cam", SHAPE, fps=300) as writer:
        rx = link_process("tcp-recv", str(port), "--name", "mirror")
        tx = link_process("tcp-send", "cam", f"127.0.0.1:{port}")
        mirror = open_when_ready("mirror")
        with mirror:
            check_frames(mirror, lambda _c, n: n >= 30)
            # the sender crashes and comes back: the receiver counts the gap
            tx.kill()
            down = writer.stream.cnt0
            wait_for(lambda: writer.stream.cnt0 > down + 10, what="frames while the sender is down")
            tx = link_process("tcp-send", "cam", f"127.0.0.1:{port}")
            before = mirror.cnt0
            check_frames(mirror, lambda c, _n: c > before + 60)
            status = wait_for(
                lambda: (st := _status("mirror.tcp-recv"))["skipped"] and st,
                timeout=5,
                what=f"receiver skips counted ({rx.output()[-2000:]})",
            )
            assert int(status["reconnects"]) >= 1
            # the receiver crashes and comes back on the same port: the sender reconnects
            rx.kill()
            down = writer.stream.cnt0
            wait_for(lambda: writer.stream.cnt0 > down + 10, what="frames while nobody listens")
            rx = link_process("tcp-recv", str(port), "--name", "mirror")
            wait_for(lambda: _status_ok("mirror.tcp-recv"), what="new receiver daemon")
        mirror = open_when_ready("mirror")  # the new receiver re-created nothing or reused it
        with mirror:
            before = mirror.cnt0
            check_frames(mirror, lambda c, _n: c > before + 60)
        sent = _status("cam.tcp-send")
        assert int(sent["reconnects"]) >= 1
        assert int(sent["skipped"]) >= 1
    assert tx.stop() == 0
    assert rx.stop() == 0
    assert "connection lost" in tx.output()


def _status_ok(name: str) -> bool:
    try:
        return bool(_status(name)["connected"])
    except Exception:  # noqa: BLE001 - not up yet
        return False
