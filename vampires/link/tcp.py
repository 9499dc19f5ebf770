"""Full-rate TCP mirror of a stream (scexao5 -> scexao6), one connection per link.

:class:`TcpSender` connects to a :class:`TcpReceiver`, sends a versioned
``HELLO`` with the stream metadata, then every new frame with its counters,
times and (only when they changed) its keywords; the receiver creates (or
re-creates) the local stream and publishes each frame with the *sender's*
``cnt0`` / ``cnt1``, so real-time code on the receiving host sees the same
counters as the camera host. Wire format: :mod:`vampires.link.protocol`,
``docs/protocols.md``.

Copies: none, or one when a camera writing in place is as fast as the link
---------------------------------------------------------------------------
The receiver ``recv_into`` s the pixel bytes straight into the destination
stream (``Stream.write_with``): no receive buffer, no copy.

On a stream with a circular buffer written by our ``Stream`` (camera and
mirror streams), the sender sends the pixels straight from the frame's
circular-buffer slot (``sendmsg`` on the shared memory): no copy in user
space. The writer rewrites a slot only ``CBsize`` frames later and zeroes its
``cnt0`` first; once ``sendmsg`` has returned the kernel holds every byte, and
the sender checks that the slot still holds the frame (the check of
``StreamReader.next_into``). The 8-byte trailer that follows the pixels says
``VALID`` or ``TORN``; the receiver reads it inside its ``write_with`` fill
and, on ``TORN``, raises: nothing is published, and ``write_with`` puts the
previous frame back from the mirror's own circular-buffer slot, so a
``read()`` on the receiving side never sees the torn bytes. Torn frames are
counted (``torn``, both sides) and show as a counter gap (``skipped``).

Streams without that slot metadata (no circular buffer, or written by the C
library, camstack or pyMilk: frames overwritten in place) are sent straight
from the live pixel array while a send takes under half a frame period, with
the same check after the send (write flag, ``cnt0``, and no post without its
count, for writers that post before they count); the grabber waits during
such a send. A camera about as fast as the link leaves no time for that: then
the grabber copies each frame once, through the torn-frame check of
``StreamReader.next_into``, into one of a few send buffers (``depth``), in
parallel with the previous frame's send; their trailer is always ``VALID``.

The grabber thread waits on the stream's semaphore and hands frames (slot
views or copies) to the socket thread through a small queue: one frame waits
while one is sent when sending from slots (the socket never idles, and a
frame is picked as late as possible), ``depth`` frames on the copy path. With
a circular buffer the grabber reads with ``catch_up=True``: frames it woke too
late for are taken from the buffer, in order, so a descheduled grabber or a
burst from the camera driver loses nothing while the lag stays within
three quarters of the buffer (``CBsize - max(3, CBsize // 4)`` frames: a frame
further behind would likely be overwritten before it is sent); beyond, it
jumps to the newest frame. When the link stays slower than the camera the grabber takes nothing
until there is room, then the next frame (in order, or the newest), so the
camera never waits, what is sent is at most about ``3 CBsize / 4`` (copy path:
``depth``) frames old, and the frames not sent are counted as skipped
(counter gaps). Frames go out in order, never twice.

Reconnection: either side may restart. The sender reconnects with exponential
back-off (50 ms .. 2 s) and resumes at the newest frame; the receiver keeps
listening, takes the newest connection, and counts the frames missed in
between from the counter gap. Both log every transition.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import select
import socket
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import attrs
import numpy as np

from vampires.errors import (
    ConfigError,
    LinkError,
    LinkTimeout,
    ProtocolError,
    StreamClosedError,
    StreamError,
    StreamTimeout,
    TornFrameError,
)
from vampires.link._common import (
    Backoff,
    LinkCounters,
    LinkStatus,
    check_stream_name,
    parse_count,
    parse_port,
    parse_seconds,
    wait_for_stream,
)
from vampires.link.protocol import (
    ACK_FIXED,
    FRAME_FIXED,
    HELLO_FIXED,
    PREFIX,
    TRAILER,
    FrameHeader,
    FrameStatus,
    Hello,
    MessageKind,
    decode_ack,
    decode_frame_header,
    decode_hello_body,
    decode_hello_length,
    decode_keywords,
    decode_prefix,
    decode_trailer,
    encode_ack,
    encode_bye,
    encode_frame_header,
    encode_heartbeat,
    encode_hello,
    encode_keywords,
    encode_trailer,
    wire_dtype,
)

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from vampires.stream import FrameInfo, Stream, StreamReader

__all__ = ["TcpReceiver", "TcpSender"]

logger = logging.getLogger(__name__)

#: Sender: heartbeat period while the stream is idle; receiver: idle timeout.
_HEARTBEAT_S = 1.0
_IDLE_TIMEOUT_S = 5.0
#: Longest single wait, so that close() and a re-created stream are seen quickly.
_WAIT_SLICE_S = 0.1
_VALID_TRAILER = encode_trailer(FrameStatus.VALID)
_TORN_TRAILER = encode_trailer(FrameStatus.TORN)


def _inode_of(name: str, shm_dir: Path | None) -> int:
    from vampires.stream import stream_path

    try:
        return stream_path(name, shm_dir=shm_dir).stat().st_ino
    except OSError:
        return 0


def _set_os_timeouts(sock: socket.socket, seconds: float) -> None:
    """Make ``sock`` blocking with kernel send/receive timeouts of ``seconds``.

    A blocking socket lets one ``sendmsg`` / ``recv_into(MSG_WAITALL)`` move a
    whole frame (Python's own timeouts make the socket non-blocking: a poll
    and a partial transfer per socket-buffer's worth). A stalled peer still
    ends the call after ``seconds`` (``OSError`` EAGAIN: the connection is
    dropped and re-established, as with a Python timeout).
    """
    sock.settimeout(None)
    whole = int(seconds)
    timeval = struct.pack("ll", whole, int((seconds - whole) * 1e6))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, timeval)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)


def _recv_exact(sock: socket.socket, view: memoryview) -> None:
    """Fill ``view`` from ``sock`` or raise ConnectionError at end of stream."""
    got = 0
    size = len(view)
    while got < size:
        n = sock.recv_into(view[got:], size - got, socket.MSG_WAITALL)
        if n == 0:
            msg = f"peer closed the connection ({got} of {size} bytes received)"
            raise ConnectionError(msg)
        got += n


def _sendmsg_all(sock: socket.socket, buffers: list[memoryview]) -> None:
    """``sendmsg`` every buffer completely (large sends return partial counts)."""
    pending = [b for b in buffers if len(b)]
    while pending:
        sent = sock.sendmsg(pending)
        while sent:
            first = pending[0]
            if sent >= len(first):
                sent -= len(first)
                pending.pop(0)
            else:
                pending[0] = first[sent:]
                sent = 0


class _Replaced(Exception):
    """A newer sender connected while this connection was quiet: it takes over."""

    def __init__(self, conn: _Connection) -> None:
        super().__init__("a new sender replaces this connection")
        self.conn = conn


class _Connection:
    """One accepted sender connection and what belongs to it alone.

    ``hello`` is the HELLO received on *this* connection: a FRAME before it
    is refused, never published with another connection's metadata. Reads
    wait in short slices (``SO_RCVTIMEO``); between slices without a byte
    :meth:`recv_exact` asks ``on_stall`` whether to go on, so a connection
    stuck in the middle of a message does not hold off a newer sender (it
    replaces this one at once) and goes silent for ``idle_timeout`` at most.
    """

    def __init__(self, sock: socket.socket, peer: str) -> None:
        self.sock = sock
        self.peer = peer
        self.hello: Hello | None = None
        self.last_byte = time.monotonic()
        self.on_stall: Callable[[_Connection], None] | None = None

    def recv_exact(self, view: memoryview) -> None:
        """Fill ``view``; raise ConnectionError at end of stream (``on_stall`` may raise)."""
        got = 0
        size = len(view)
        while got < size:
            try:
                n = self.sock.recv_into(view[got:], size - got, socket.MSG_WAITALL)
            except BlockingIOError:  # a slice without a byte (SO_RCVTIMEO)
                if self.on_stall is None:
                    raise
                self.on_stall(self)
                continue
            if n == 0:
                msg = f"peer closed the connection ({got} of {size} bytes received)"
                raise ConnectionError(msg)
            got += n
            self.last_byte = time.monotonic()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class _Worker:
    """Thread plumbing shared by sender and receiver."""

    _thread: threading.Thread | None
    _stop: threading.Event
    _counters: LinkCounters

    def status(self) -> LinkStatus:
        """Return the link counters (frames, skipped, reconnects, rate, bandwidth).

        Returns
        -------
        LinkStatus
        """
        return self._counters.snapshot()

    def _main(self) -> None:
        raise NotImplementedError

    def start(self) -> Self:
        """Start the link in a background thread; return ``self``."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self.start() if self._thread is None else self

    def _start_thread(self, name: str) -> None:
        if self._thread is not None:
            msg = f"{name} is already started"
            raise LinkError(msg)
        self._thread = threading.Thread(target=self._main, name=name, daemon=True)
        self._thread.start()

    def run(self, stop: threading.Event) -> None:
        """Run the link in the calling thread until ``stop`` is set.

        Parameters
        ----------
        stop
            Set it (e.g. from a signal handler) to return.
        """
        self._stop = stop
        self._main()

    def close(self) -> None:
        """Stop the link and wait for its thread (idempotent)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=10.0)
            if self._thread.is_alive():
                logger.error("%s did not stop within 10 s", self._thread.name)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@attrs.frozen(kw_only=True)
class _Queued:
    """One frame waiting in the ring to be sent.

    ``still_there`` is None when ``pixels`` is a send buffer the grabber
    copied the frame into (owned by the ring, always whole). Otherwise
    ``pixels`` views shared memory -- the frame's circular-buffer slot, or
    the stream's live pixel array (``live``) -- and ``still_there()`` tells
    whether the frame is still there (the slot's ``cnt0``; for the live
    array: write flag down, ``cnt0`` unchanged and no post since the frame
    was taken).
    """

    pixels: NDArray[Any]
    cnt0: int
    cnt1: int
    acquisition_time: float
    write_time: float
    generation: int
    kw_version: int
    kw_bytes: bytes
    still_there: Callable[[], bool] | None = None
    live: bool = False
    #: monotonic time the grabber took the frame (queue wait + send = its exposure)
    taken: float = 0.0

    def whole(self) -> bool:
        """Tell whether the frame is still whole where ``pixels`` views it."""
        return self.still_there is None or self.still_there()


class _Ring:
    """Frames between the grabber thread and the socket thread, newest-biased.

    At most ``depth`` frames wait; when the socket falls further behind, the
    grabber stops reading until there is room and then takes the next frame
    (the frames in between show as a counter gap, i.e. a skip), so the added
    latency is bounded and the camera never waits. Copy buffers are recycled:
    no allocation per frame in steady state; frames sent from their
    circular-buffer slot need no buffer at all.
    """

    def __init__(self, depth: int) -> None:
        self.depth = depth
        self._cond = threading.Condition()
        self._queue: collections.deque[_Queued] = collections.deque()
        self._free: list[NDArray[Any]] = []
        self._live = False  # a frame of the live pixel array is queued or being sent
        self.hello: Hello | None = None
        self.hello_serial = 0
        #: seconds from taking a frame to the end of its send (moving average, written by
        #: the socket thread): how long a frame sent from the live array must stay there
        self.send_s = 0.0
        #: monotonic time until which frames are copied, not sent live (after a torn live send)
        self.copy_until = 0.0

    def set_hello(self, hello: Hello) -> None:
        with self._cond:
            self.hello = hello
            self.hello_serial += 1
            self._cond.notify_all()

    def room(self, limit: int, timeout: float) -> bool:
        """Wait up to ``timeout`` until fewer than ``limit`` frames wait; tell if so.

        No room means the socket is behind: the grabber then reads nothing
        (no CPU or memory bandwidth spent on frames that would be dropped) and
        takes the next frame once there is room; the frames in between are
        skipped (counter gaps). While a frame of the live pixel array waits
        or is sent, the grabber waits too: that memory holds one frame, and
        the post-send check needs the semaphore posts left alone.
        """
        with self._cond:
            if self._live or len(self._queue) >= limit:
                self._cond.wait(timeout)
            return not self._live and len(self._queue) < limit

    def spare(self, shape: tuple[int, ...], dtype: np.dtype[Any]) -> NDArray[Any]:
        """Return a free send buffer of this shape and dtype (allocated if none)."""
        with self._cond:
            while self._free:
                buf = self._free.pop()
                if buf.shape == shape and buf.dtype == dtype:
                    return buf
        return np.empty(shape, dtype)

    def release(self, item: _Queued | NDArray[Any]) -> None:
        """Give a send buffer back (a frame sent from shared memory owns none)."""
        if isinstance(item, _Queued):
            if item.still_there is not None:
                with self._cond:
                    self._live = self._live and not item.live
                    self._cond.notify_all()
                return
            item = item.pixels
        with self._cond:
            if len(self._free) <= self.depth:
                self._free.append(item)
            self._cond.notify_all()

    def put(self, item: _Queued) -> None:
        with self._cond:
            self._live = self._live or item.live
            self._queue.append(item)
            self._cond.notify_all()

    def get(self, timeout: float, hello_serial: int) -> _Queued | None:
        """Return the oldest waiting frame, or None after ``timeout`` or on a new hello."""
        with self._cond:
            if not self._queue and self.hello_serial == hello_serial:
                self._cond.wait(timeout)
            if self.hello_serial != hello_serial or not self._queue:
                return None
            item = self._queue.popleft()
            self._cond.notify_all()
            return item

    def current(self) -> tuple[Hello | None, int]:
        """Return the latest hello and its serial, consistently."""
        with self._cond:
            return self.hello, self.hello_serial

    def flush(self) -> tuple[Hello | None, int]:
        """Drop every waiting frame; return the current hello and its serial."""
        with self._cond:
            while self._queue:
                item = self._queue.popleft()
                if item.still_there is None:
                    self._free.append(item.pixels)
            self._live = False
            del self._free[self.depth + 1 :]
            self._cond.notify_all()
            return self.hello, self.hello_serial


def _catch_up_lag(cbsize: int) -> int | None:
    """Frames the sender catches up at most: a sent frame keeps a few frame periods in its slot."""
    return max(0, cbsize - max(3, cbsize // 4)) if cbsize else None


#: A frame of the live pixel array is sent from it (no copy) while a send takes less than
#: this fraction of the frame period: the writer then leaves it alone during the send.
_LIVE_FRACTION = 0.5
#: After a torn live send, frames are copied for this long before live sends are tried again.
_LIVE_BACKOFF_S = 2.0
#: Weight of the newest sample in the moving averages of the send time and frame period.
_EWMA = 0.1


class _Source:
    """Where the grabber takes each frame from: its slot, the live pixel array, or a copy.

    A frame our writer also put in the stream's circular buffer (camera and
    mirror streams) is handed to the socket thread as a read-only view of its
    slot: no copy; the slot is rewritten only ``CBsize`` frames later, and the
    socket thread checks after sending that it still holds the frame
    (``_Queued.whole``, the check of ``StreamReader.next_into``).

    Frames without a slot (no circular buffer, or a writer that does not fill
    the slot metadata: the C library, pyMilk, camstack) live only in the
    stream's pixel array, which the writer overwrites in place. While taking a
    frame and sending it (the socket thread's wake-up and the send) takes well
    under a frame period (``send_s < _LIVE_FRACTION`` x the period measured
    from the frames' write times), the frame is sent straight from
    that array, and the grabber waits until the send is over; after the send
    the socket thread checks that the write flag stayed down, ``cnt0`` did not
    move and nothing was posted (a writer that posts before it counts), and
    the trailer says ``VALID`` or ``TORN``. Otherwise (a camera about as fast
    as the link, or after a torn live send) the frame is copied once into a
    ring buffer through the torn-frame check of ``StreamReader.next_into``,
    and the next frame can be taken while it is sent.

    The checks are the stream's public ones: :meth:`Stream.slot_holds` for a
    slot (``FrameInfo.slot``), :meth:`StreamReader.still_whole` for the live
    array (write flag, ``cnt0``, semaphore posts). The reader catches up at
    most :func:`_catch_up_lag` frames, so that a frame's slot is not reused
    before it is sent: further behind, it jumps to the newest frame.
    """

    def __init__(self, stream: Stream, reader: StreamReader, ring: _Ring) -> None:
        self._reader = reader
        self._ring = ring
        self._stream = stream
        self.cbsize = stream.circular_buffer
        self._main_ptr = int(stream.view().ctypes.data)  # the live pixel array
        #: the last frame returned is the live pixel array (sent from it)
        self.live = False
        self._period = 0.0  # moving average of the writer's frame period
        self._last: tuple[int, float] | None = None  # cnt0, write time of the last frame
        # frames sent from shared memory: one waits while one is sent (the socket
        # never idles, and a frame is picked as late as possible); copies: depth
        self.queue_limit = 1 if self.cbsize else ring.depth

    def _live_ok(self) -> bool:
        """Tell whether the next frame of the live array may be sent from it."""
        ring = self._ring
        return (
            0.0 < ring.send_s < _LIVE_FRACTION * self._period
            and time.monotonic() >= ring.copy_until
        )

    def _learn_period(self, info: FrameInfo) -> None:
        if self._last is not None:
            frames = info.cnt0 - self._last[0]
            elapsed = info.write_time - self._last[1]
            if frames > 0 and elapsed > 0:
                period = elapsed / frames
                self._period = (
                    period if not self._period else self._period + _EWMA * (period - self._period)
                )
        self._last = (info.cnt0, info.write_time)

    def next(self, timeout: float) -> tuple[NDArray[Any], Callable[[], bool] | None, FrameInfo]:
        """Wait for the next frame; return (pixels, its ``still_there`` check or None, info).

        ``still_there`` is None for a copy; it is the live array's check when
        ``pixels is`` the live array (see :attr:`live`).

        Raises
        ------
        StreamTimeout
            No new frame within ``timeout``.
        TornFrameError
            A copied frame was overwritten during the copy (not sent).
        """
        reader = self._reader
        chosen: list[NDArray[Any]] = []
        copy: list[NDArray[Any]] = []
        live = self._live_ok()
        self.live = False

        def take(view: NDArray[Any]) -> None:
            if int(view.ctypes.data) != self._main_ptr:
                chosen[:] = [view]  # a circular-buffer slot: send straight from it
                return
            if live:
                chosen[:] = [view]  # the live array: send straight from it, check after
                self.live = True
                return
            self.live = False
            if not copy:
                copy.append(self._ring.spare(view.shape, view.dtype))
            np.copyto(copy[0], view)
            chosen[:] = copy

        try:
            info = reader.next_into(take, timeout)
        except BaseException:
            if copy:
                self._ring.release(copy[0])
            raise
        self._learn_period(info)
        pixels = chosen[0]
        if copy and pixels is not copy[0]:
            self._ring.release(copy[0])
        if copy and pixels is copy[0]:
            self.queue_limit = self._ring.depth
            return pixels, None, info
        self.queue_limit = 1
        if self.live or info.slot is None:  # not a slot: only the live array is sent in place
            return pixels, self._live_check(info.cnt0), info
        return pixels, self._slot_check(info.slot, info.cnt0), info

    def _slot_check(self, slot: int, cnt0: int) -> Callable[[], bool]:
        """Return the check that ``slot`` still holds frame ``cnt0`` (False once closed)."""
        stream = self._stream

        def still_there() -> bool:
            try:
                return stream.slot_holds(slot, cnt0)
            except StreamClosedError:  # the grabber let the stream go: cannot vouch for it
                return False

        return still_there

    def _live_check(self, cnt0: int) -> Callable[[], bool]:
        """Return the check that frame ``cnt0`` is still whole in the live pixel array.

        The reader's own check (write flag, ``cnt0``, posts without a count);
        the grabber waits while a live frame is queued or sent, so the socket
        thread is then the reader's only user.
        """
        reader = self._reader
        return lambda: reader.still_whole(cnt0)


class TcpSender(_Worker):
    """Send every new frame of a local stream to a :class:`TcpReceiver`.

    Two threads: a *grabber* wakes on the stream's semaphore and takes each
    new frame, either as a view of its circular-buffer slot (camera streams:
    sent without a copy, checked after the send, ``TORN`` if the writer
    reused the slot meanwhile), as a view of the live pixel array (streams
    written in place, while a send takes under half a frame period: checked
    the same way) or as one torn-checked copy into a ring of send buffers (a
    camera writing in place about as fast as the link); the *socket* thread sends them
    in order. When the link stays slower than the camera, the grabber takes a
    frame only when there is room and then the next one (see ``catch_up``),
    so the camera never waits. Frames not sent show as counter gaps and are
    counted in ``skipped``; torn ones also in ``torn``.

    Parameters
    ----------
    stream_name
        Local stream (waited for if it does not exist yet; re-opened when it
        is re-created, e.g. on a crop change).
    host, port
        The receiver's address.
    shm_dir
        Shm folder of the stream.
    timeout
        Seconds a connect, an ACK or one frame send may take before the
        connection is dropped and re-established.
    depth
        Copies the ring holds on the copy path (latency bound when the link
        falls behind); frames sent from their slot queue one deep.
    catch_up
        When the stream has a circular buffer (camera streams do), take the
        frames the grabber woke too late for from it, in order, instead of
        jumping to the newest: a descheduled grabber loses nothing while its
        lag stays within three quarters of the buffer
        (``CBsize - max(3, CBsize // 4)`` frames); beyond, it jumps to the
        newest frame and the gap counts as skipped. False: always the newest.

    Examples
    --------
    >>> with TcpSender("vcam1", "scexao6", 5001).start() as sender:
    ...     stop.wait()
    ...     print(sender.status().line())
    """

    def __init__(
        self,
        stream_name: str,
        host: str,
        port: int,
        *,
        shm_dir: Path | str | None = None,
        timeout: float = 5.0,
        depth: int = 4,
        catch_up: bool = True,
    ) -> None:
        self.stream_name = check_stream_name(stream_name, "stream name")
        self.catch_up = bool(catch_up)
        host_value: object = host
        if not isinstance(host_value, str) or not host_value:
            msg = f"host must be a non-empty string, got {host!r}"
            raise ConfigError(msg)
        self.host = host
        self.port = parse_port(port)
        if self.port == 0:
            msg = "the receiver port must be 1-65535, got 0"
            raise ConfigError(msg)
        self.timeout = parse_seconds(timeout, "timeout")
        self.depth = parse_count(depth, "depth")
        self._shm_dir = Path(shm_dir) if shm_dir is not None else None
        self._counters = LinkCounters("tcp-send", f"{host}:{self.port}", self.stream_name)
        self._stop = threading.Event()
        self._thread = None
        self._grabber: threading.Thread | None = None
        self._ring = _Ring(self.depth)
        # Counter of the last frame sent and the stream instance it came from:
        # kept across reconnections to count the frames missed while down.
        self._last_sent: int | None = None
        self._generation: int | None = None

    def start(self) -> Self:
        """Start sending in background threads (connects by itself, with back-off).

        Returns
        -------
        TcpSender
            ``self``.
        """
        self._start_thread(f"tcp-send-{self.stream_name}")
        return self

    # ------------------------------------------------------------------ grabber

    def _grab_main(self) -> None:
        stream: Stream | None = None
        try:
            while not self._stop.is_set():
                stream = wait_for_stream(
                    self.stream_name,
                    self._shm_dir,
                    self._stop,
                    self._counters,
                    backoff=Backoff(0.02, 0.5),
                )
                if stream is None:
                    return
                try:
                    self._grab(stream)
                except StreamError as exc:
                    self._counters.error = f"stream {self.stream_name}: {exc}"
                    logger.warning("tcp-send: stream %s: %s", self.stream_name, exc)
                    self._stop.wait(0.1)
                finally:
                    stream.close()
                    stream = None
        finally:
            if stream is not None:
                stream.close()

    def _grab(self, stream: Stream) -> None:
        with stream.reader(
            catch_up=self.catch_up, max_lag=_catch_up_lag(stream.circular_buffer)
        ) as reader:
            # keywords first read here: the hello carries them
            cards = stream.keywords.cards()
            kw_version = stream.keywords.version
            kw_bytes = encode_keywords(cards)
            self._ring.set_hello(
                Hello(
                    name=self.stream_name,
                    shape=stream.shape,
                    dtype=wire_dtype(stream.dtype),
                    keywords=tuple(cards),
                    cnt0=stream.cnt0,
                    generation=stream.inode,
                    nkeywords=stream.nkeywords,
                )
            )
            generation = stream.inode
            source = _Source(stream, reader, self._ring)
            while not self._stop.is_set():
                if stream.is_stale(max_age=_WAIT_SLICE_S):
                    logger.info("tcp-send: stream %s vanished or was re-created", stream.name)
                    return
                if not self._ring.room(source.queue_limit, _WAIT_SLICE_S):
                    continue  # the socket is behind (or down): read nothing
                try:
                    got = source.next(_WAIT_SLICE_S)
                except StreamTimeout:
                    continue
                except TornFrameError as exc:
                    self._counters.torn += 1
                    logger.debug("tcp-send %s: %s", self.stream_name, exc)
                    continue
                pixels, still_there, info = got
                version = stream.keywords.version
                if version != kw_version:
                    kw_version = version
                    kw_bytes = encode_keywords(stream.keywords.cards())
                self._ring.put(
                    _Queued(
                        pixels=pixels,
                        cnt0=info.cnt0,
                        cnt1=info.cnt1,
                        acquisition_time=info.acquisition_time,
                        write_time=info.write_time,
                        generation=generation,
                        kw_version=kw_version,
                        kw_bytes=kw_bytes,
                        still_there=still_there,
                        live=source.live,
                        taken=time.monotonic(),
                    )
                )

    # ------------------------------------------------------------------ socket

    def _main(self) -> None:
        self._grabber = threading.Thread(
            target=self._grab_main, name=f"tcp-grab-{self.stream_name}", daemon=True
        )
        self._grabber.start()
        backoff = Backoff()
        try:
            while not self._stop.is_set():
                if self._ring.hello is None:  # the grabber has not found the stream yet
                    self._stop.wait(_WAIT_SLICE_S)
                    continue
                sock = self._connect()
                if sock is None:
                    if backoff.wait(self._stop):
                        return
                    continue
                try:
                    self._session(sock, backoff)
                except (OSError, LinkError) as exc:
                    self._counters.error = f"{type(exc).__name__}: {exc}"
                    self._counters.reconnects += 1
                    logger.warning(
                        "tcp-send %s -> %s:%d: connection lost (%s); reconnecting",
                        self.stream_name,
                        self.host,
                        self.port,
                        exc,
                    )
                    if backoff.wait(self._stop):
                        return
                finally:
                    self._counters.connected = False
                    self._counters.peer = None
                    with contextlib.suppress(OSError):
                        sock.close()
        finally:
            self._stop.set()
            self._grabber.join(timeout=10.0)

    def _connect(self) -> socket.socket | None:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        except OSError as exc:
            self._counters.error = f"connect {self.host}:{self.port}: {exc}"
            logger.debug("tcp-send: connect to %s:%d failed: %s", self.host, self.port, exc)
            return None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        return sock

    def _hello(self, sock: socket.socket, hello: Hello) -> None:
        sock.sendall(encode_hello(hello))
        head = bytearray(PREFIX.size + ACK_FIXED.size)
        _recv_exact(sock, memoryview(head))
        kind = decode_prefix(head[: PREFIX.size])
        if kind is not MessageKind.ACK:
            msg = f"receiver answered the hello with {kind.name}, expected ACK"
            raise ProtocolError(msg)
        accepted, length = decode_ack(head[PREFIX.size :])
        reason = bytearray(length)
        _recv_exact(sock, memoryview(reason))
        if not accepted:
            msg = f"receiver {self.host}:{self.port} refused stream {self.stream_name}: "
            msg += reason.decode(errors="replace")
            raise LinkError(msg)
        if self._generation != hello.generation:
            if self._generation is not None:
                self._counters.recreated += 1
            self._generation = hello.generation
            self._last_sent = None
        logger.info(
            "tcp-send %s -> %s:%d: hello accepted (%s %s)",
            self.stream_name,
            self.host,
            self.port,
            hello.shape,
            hello.dtype,
        )

    def _session(self, sock: socket.socket, backoff: Backoff) -> None:
        """Serve one connection until stop (raises on connection loss)."""
        _set_os_timeouts(sock, self.timeout)
        hello, serial = self._ring.flush()  # frames queued while down are stale
        assert hello is not None  # noqa: S101 - checked by _main
        self._hello(sock, hello)
        peer = sock.getpeername()
        self._counters.connected = True
        self._counters.peer = f"{peer[0]}:{peer[1]}"
        self._counters.error = None
        backoff.reset()
        sent_kw_version: int | None = None
        last_send = time.monotonic()
        while not self._stop.is_set():
            item = self._ring.get(_WAIT_SLICE_S, serial)
            if self._ring.hello_serial != serial:  # stream re-created: announce it
                if item is not None:
                    self._ring.release(item)
                hello, serial = self._ring.current()
                assert hello is not None  # noqa: S101 - set before the serial moves
                self._hello(sock, hello)
                sent_kw_version = None
                continue
            if item is None:
                if time.monotonic() - last_send >= _HEARTBEAT_S:
                    sock.sendall(encode_heartbeat())
                    last_send = time.monotonic()
                continue
            try:
                if item.generation != hello.generation:
                    continue
                if not item.whole():
                    # the writer reused its slot or rewrote the live array while it
                    # waited: nothing sent
                    self._counters.torn += 1
                    if item.live:
                        self._ring.copy_until = time.monotonic() + _LIVE_BACKOFF_S
                    continue
                sent_kw_version, valid = self._send_frame(sock, item, sent_kw_version)
            finally:
                self._ring.release(item)
            last_send = time.monotonic()
            if not valid:
                continue  # the gap shows as skipped at the next frame, as on the receiver
            if self._last_sent is not None and item.cnt0 > self._last_sent:
                self._counters.skipped += item.cnt0 - self._last_sent - 1
            self._last_sent = item.cnt0
            self._counters.frame(item.pixels.nbytes, item.cnt0)
        with contextlib.suppress(OSError):
            sock.sendall(encode_bye())

    def _send_frame(
        self, sock: socket.socket, item: _Queued, sent_kw_version: int | None
    ) -> tuple[int | None, bool]:
        """Send one FRAME; return the keyword version the receiver has, and if it was VALID.

        A copied frame goes out in one ``sendmsg`` (header, keywords, pixels,
        trailer). A frame sent from shared memory (its circular-buffer slot or
        the live pixel array) goes out straight from it; once ``sendmsg`` has
        returned, the kernel holds every byte, and the trailer says whether
        the frame was still whole then: ``TORN`` makes the receiver drop the
        bytes (never published). The time from taking a frame to the end of
        its send is averaged in ``_Ring.send_s`` (what decides between live
        sends and copies).
        """
        keywords = b""
        if item.kw_version != sent_kw_version:
            keywords = item.kw_bytes
        payload = item.pixels.data.cast("B")
        header = encode_frame_header(
            FrameHeader(
                cnt0=item.cnt0,
                cnt1=item.cnt1,
                acquisition_time=item.acquisition_time,
                write_time=item.write_time,
                keywords_nbytes=len(keywords),
                payload_nbytes=payload.nbytes,
            )
        )
        parts = [memoryview(header), memoryview(keywords), payload]
        ring = self._ring
        if item.still_there is None:
            _sendmsg_all(sock, [*parts, memoryview(_VALID_TRAILER)])
            valid = True
        else:
            _sendmsg_all(sock, parts)
            valid = item.whole()
        # how long a frame taken from the live array would have had to stay there:
        # its wait in the queue (the socket thread's wake-up) and its send
        took = time.monotonic() - item.taken
        ring.send_s = took if not ring.send_s else ring.send_s + _EWMA * (took - ring.send_s)
        if item.still_there is None:
            return item.kw_version, True
        sock.sendall(_VALID_TRAILER if valid else _TORN_TRAILER)
        if valid:
            return item.kw_version, True
        if item.live:
            ring.copy_until = time.monotonic() + _LIVE_BACKOFF_S
        self._counters.torn += 1
        logger.debug(
            "tcp-send %s: frame %d was overwritten while it was sent (torn, dropped)",
            self.stream_name,
            item.cnt0,
        )
        # the receiver drops the keyword block with the frame: send it again
        return (None if keywords else sent_kw_version), False


class TcpReceiver(_Worker):
    """Listen for a :class:`TcpSender` and mirror its stream into a local stream.

    Parameters
    ----------
    port
        TCP port to listen on; 0 picks a free one (read :attr:`port` after
        :meth:`start`).
    name
        Local stream name; default: the sender's stream name.
    bind
        Address to listen on (``"0.0.0.0"`` for every interface).
    shm_dir
        Shm folder of the local stream.
    idle_timeout
        Seconds without any message (frames or heartbeats) before the
        connection is considered dead.

    Examples
    --------
    >>> with TcpReceiver(5001, name="vcam1", bind="0.0.0.0").start() as receiver:
    ...     stop.wait()
    """

    def __init__(
        self,
        port: int,
        *,
        name: str | None = None,
        bind: str = "127.0.0.1",
        shm_dir: Path | str | None = None,
        idle_timeout: float = _IDLE_TIMEOUT_S,
    ) -> None:
        self.name = None if name is None else check_stream_name(name, "local stream name")
        self.bind = bind
        requested = parse_port(port)
        self.idle_timeout = parse_seconds(idle_timeout, "idle_timeout")
        self._shm_dir = Path(shm_dir) if shm_dir is not None else None
        self._counters = LinkCounters("tcp-recv", f"{bind}:{requested}", self.name)
        self._stop = threading.Event()
        self._thread = None
        self._listener = self._listen(bind, requested)
        self.port: int = self._listener.getsockname()[1]
        self._counters.endpoint = f"{bind}:{self.port}"
        self._stream: Stream | None = None
        self._last_cnt0: int | None = None
        self._generation: int | None = None
        self._conn: _Connection | None = None
        self._prefix = bytearray(PREFIX.size)
        self._fixed = bytearray(FRAME_FIXED.size)
        self._trailer = bytearray(TRAILER.size)
        self._closed = False

    @staticmethod
    def _listen(bind: str, port: int) -> socket.socket:
        try:
            infos = socket.getaddrinfo(bind, port, type=socket.SOCK_STREAM)
            family = infos[0][0]
            sock = socket.socket(family, socket.SOCK_STREAM)
        except OSError as exc:
            msg = f"cannot listen on {bind}:{port}: {exc}"
            raise LinkError(msg) from exc
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((bind, port))
            sock.listen(2)
        except OSError as exc:
            sock.close()
            msg = f"cannot listen on {bind}:{port}: {exc} (port in use by another receiver?)"
            raise LinkError(msg) from exc
        return sock

    def start(self) -> Self:
        """Start accepting senders in a background thread.

        Returns
        -------
        TcpReceiver
            ``self``.
        """
        self._start_thread(f"tcp-recv-{self.port}")
        return self

    def close(self) -> None:
        """Stop, close the listening socket and the local stream (idempotent)."""
        super().close()
        if not self._closed:
            self._closed = True
            self._listener.close()
            if self._stream is not None and (self._thread is None or not self._thread.is_alive()):
                self._stream.close()
                self._stream = None

    # ------------------------------------------------------------------ thread

    def _main(self) -> None:
        try:
            while not self._stop.is_set():
                if self._conn is None:
                    self._conn = self._accept(timeout=0.2)
                    if self._conn is None:
                        continue
                try:
                    self._session()
                except (OSError, LinkError) as exc:
                    if isinstance(exc, ProtocolError):
                        self._counters.malformed += 1
                    self._counters.error = f"{type(exc).__name__}: {exc}"
                    self._counters.reconnects += 1
                    logger.warning(
                        "tcp-recv :%d: connection from %s lost (%s); waiting for the sender",
                        self.port,
                        self._counters.peer,
                        exc,
                    )
                    self._drop_connection()
        finally:
            self._drop_connection()
            if self._stream is not None:
                self._stream.close()
                self._stream = None

    def _drop_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
        self._counters.connected = False
        self._counters.peer = None

    def _accept(self, timeout: float) -> _Connection | None:
        ready, _, _ = select.select([self._listener], [], [], timeout)
        if not ready:
            return None
        try:
            sock, addr = self._listener.accept()
        except OSError as exc:
            logger.warning("tcp-recv :%d: accept failed: %s", self.port, exc)
            return None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
        _set_os_timeouts(sock, self.idle_timeout)
        # reads wait in short slices: between them, a newer sender, stop and the
        # idle timeout are checked (_Connection.recv_exact, _stalled)
        whole = int(_WAIT_SLICE_S)
        slice_tv = struct.pack("ll", whole, int((_WAIT_SLICE_S - whole) * 1e6))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, slice_tv)
        conn = _Connection(sock, f"{addr[0]}:{addr[1]}")
        conn.on_stall = self._stalled
        self._counters.peer = conn.peer
        self._counters.connected = True
        logger.info("tcp-recv :%d: sender connected from %s", self.port, conn.peer)
        return conn

    def _stalled(self, conn: _Connection) -> None:
        """Between read slices without a byte: give up the connection if it must go."""
        if self._stop.is_set():
            msg = "receiver stopping"
            raise LinkError(msg)
        newer = self._newer_connection()
        if newer is not None:
            raise _Replaced(newer)
        if time.monotonic() - conn.last_byte > self.idle_timeout:
            # no frame, no heartbeat: the sender's host is gone without a FIN
            msg = f"nothing received for {self.idle_timeout:g} s (heartbeats stopped)"
            raise LinkTimeout(msg)

    def _newer_connection(self) -> _Connection | None:
        """Accept a sender waiting on the listener, if any (the newest sender wins)."""
        ready, _, _ = select.select([self._listener], [], [], 0)
        return self._accept(timeout=0) if ready else None

    def _session(self) -> None:
        """Read messages from the current connection until stop, BYE or an error.

        A newer connection replaces the current one (a sender that restarted
        while the old connection was half-open, or stuck in the middle of a
        message): everything learnt on the old connection (its HELLO) goes
        with it.
        """
        while not self._stop.is_set() and self._conn is not None:
            conn = self._conn
            try:
                self._message(conn)
            except _Replaced as replaced:
                logger.info(
                    "tcp-recv :%d: a new sender (%s) replaces %s",
                    self.port,
                    replaced.conn.peer,
                    conn.peer,
                )
                self._counters.reconnects += 1
                conn.close()
                self._conn = replaced.conn

    def _message(self, conn: _Connection) -> None:
        """Wait for and handle one message (or return after a quiet slice)."""
        ready, _, _ = select.select([conn.sock, self._listener], [], [], 0.2)
        if self._listener in ready:
            newer = self._accept(timeout=0)
            if newer is not None:
                raise _Replaced(newer)
        if conn.sock not in ready:
            self._stalled(conn)
            return
        prefix_view = memoryview(self._prefix)
        conn.recv_exact(prefix_view)
        kind = decode_prefix(prefix_view)
        if kind is MessageKind.FRAME:
            if conn.hello is None or self._stream is None:
                msg = "frame received before any hello on this connection"
                raise ProtocolError(msg)
            fixed_view = memoryview(self._fixed)
            conn.recv_exact(fixed_view)
            header = decode_frame_header(fixed_view, expected_nbytes=conn.hello.nbytes)
            self._receive_frame(conn, header)
        elif kind is MessageKind.HELLO:
            self._receive_hello(conn)
        elif kind is MessageKind.HEARTBEAT:
            return
        elif kind is MessageKind.BYE:
            logger.info("tcp-recv :%d: sender said bye", self.port)
            self._drop_connection()
        else:
            msg = f"unexpected {kind.name} message from the sender"
            raise ProtocolError(msg)

    def _receive_hello(self, conn: _Connection) -> None:
        from vampires.stream import Stream, suggested_circular_buffer

        length_buf = bytearray(HELLO_FIXED.size)
        conn.recv_exact(memoryview(length_buf))
        body = bytearray(decode_hello_length(length_buf))
        conn.recv_exact(memoryview(body))
        hello = decode_hello_body(body)
        local = self.name or hello.name
        try:
            stream = self._stream
            replaced = stream is not None and (
                stream.name != local
                or stream.shape != hello.shape
                or stream.dtype != np.dtype(hello.dtype)
                or stream.is_stale()
            )
            if stream is not None and replaced:
                stream.close()
                stream = self._stream = None
            if stream is None:
                nkw = max(hello.nkeywords, len(hello.keywords) + 8, 16)
                existed = Stream.exists(local, shm_dir=self._shm_dir)
                inode_before = _inode_of(local, self._shm_dir) if existed else 0
                # a circular buffer, as the camera's: reads of the newest frame stay
                # whole even if a sender dies in the middle of a frame
                cbsize = suggested_circular_buffer(hello.shape, hello.dtype)
                stream = Stream.create(
                    local,
                    hello.shape,
                    hello.dtype,
                    nkeywords=nkw,
                    circular_buffer=cbsize,
                    exist_ok=True,
                    shm_dir=self._shm_dir,
                )
                if stream.nkeywords < len(hello.keywords) or stream.circular_buffer != cbsize:
                    stream.destroy()
                    stream = Stream.create(
                        local,
                        hello.shape,
                        hello.dtype,
                        nkeywords=nkw,
                        circular_buffer=cbsize,
                        shm_dir=self._shm_dir,
                    )
                if replaced or (existed and stream.inode != inode_before):
                    self._counters.recreated += 1
                self._stream = stream
                logger.info(
                    "tcp-recv :%d: mirroring %s into local stream %s %s %s",
                    self.port,
                    hello.name,
                    local,
                    hello.shape,
                    hello.dtype,
                )
            self._apply_keywords(stream, hello.keywords)
        except StreamError as exc:
            conn.sock.sendall(encode_ack(ok=False, reason=str(exc)))
            msg = f"cannot create local stream {local}: {exc}"
            raise LinkError(msg) from exc
        if self._generation != hello.generation:
            self._generation = hello.generation
            self._last_cnt0 = None
        conn.hello = hello
        self._counters.stream = local
        conn.sock.sendall(encode_ack())

    @staticmethod
    def _apply_keywords(stream: Stream, cards: tuple[tuple[str, Any, str], ...]) -> None:
        wanted = {name for name, _, _ in cards}
        for name in list(stream.keywords):
            if name not in wanted:
                del stream.keywords[name]
        if cards:
            stream.keywords.update({name: (value, comment) for name, value, comment in cards})

    def _receive_frame(self, conn: _Connection, header: FrameHeader) -> None:
        stream = self._stream
        assert stream is not None  # noqa: S101 - checked by the caller
        keywords: dict[str, object] | None = None
        if header.keywords_changed:
            block = bytearray(header.keywords_nbytes)
            conn.recv_exact(memoryview(block))
            cards = decode_keywords(block)
            stale = [n for n in stream.keywords if n not in {c[0] for c in cards}]
            for name in stale:
                del stream.keywords[name]
            keywords = {name: (value, comment) for name, value, comment in cards}
        status: list[FrameStatus] = []
        trailer_view = memoryview(self._trailer)

        def fill(pixels: Any) -> None:  # noqa: ANN401 - numpy array of the stream
            conn.recv_exact(pixels.data.cast("B"))
            conn.recv_exact(trailer_view)
            status.append(decode_trailer(trailer_view))
            if status[0] is not FrameStatus.VALID:
                raise _TornOnSender

        try:
            stream.write_with(
                fill,
                keywords=keywords,
                acquisition_time=header.acquisition_time,
                cnt0=header.cnt0,
                cnt1=header.cnt1,
            )
        except _TornOnSender:
            self._counters.torn += 1
            return
        if self._last_cnt0 is not None and header.cnt0 > self._last_cnt0:
            self._counters.skipped += header.cnt0 - self._last_cnt0 - 1
        self._last_cnt0 = header.cnt0
        self._counters.frame(header.payload_nbytes, header.cnt0)


class _TornOnSender(Exception):
    """The sender flagged the frame just received as torn: do not publish it."""
