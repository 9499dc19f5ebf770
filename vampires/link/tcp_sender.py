"""The sending end of the TCP mirror: :class:`TcpSender` (design: :mod:`vampires.link.tcp`)."""

from __future__ import annotations

import collections
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import attrs
import numpy as np

from vampires.errors import (
    ConfigError,
    LinkError,
    ProtocolError,
    StreamClosedError,
    StreamError,
    StreamTimeout,
    TornFrameError,
)
from vampires.link._common import (
    Backoff,
    check_stream_name,
    parse_count,
    parse_port,
    parse_seconds,
    wait_for_stream,
)
from vampires.link._tcp import (
    _HEARTBEAT_S,
    _TORN_TRAILER,
    _VALID_TRAILER,
    _WAIT_SLICE_S,
    _recv_exact,
    _sendmsg_all,
    _set_os_timeouts,
    _Worker,
)
from vampires.link.protocol import (
    ACK_FIXED,
    PREFIX,
    FrameHeader,
    Hello,
    MessageKind,
    decode_ack,
    decode_prefix,
    encode_bye,
    encode_frame_header,
    encode_heartbeat,
    encode_hello,
    encode_keywords,
    wire_dtype,
)
from vampires.link.status import LinkCounters

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from vampires._checks import ShmDir
    from vampires.stream import FrameInfo, Stream, StreamReader

__all__ = ["TcpSender"]

logger = logging.getLogger(__name__)


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
        shm_dir: ShmDir = None,
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
        if hello is None:
            msg = f"tcp-send {self.stream_name}: no stream to announce"
            raise LinkError(msg)
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
                if hello is None:
                    msg = f"tcp-send {self.stream_name}: stream re-created without a description"
                    raise LinkError(msg)
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
