"""The receiving end of the TCP mirror: :class:`TcpReceiver` (design: :mod:`vampires.link.tcp`)."""

from __future__ import annotations

import logging
import select
import socket
import struct
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from vampires.errors import (
    LinkError,
    LinkTimeout,
    ProtocolError,
    StreamError,
)
from vampires.link._common import (
    check_stream_name,
    parse_port,
    parse_seconds,
)
from vampires.link._tcp import (
    _IDLE_TIMEOUT_S,
    _WAIT_SLICE_S,
    _Connection,
    _inode_of,
    _set_os_timeouts,
    _Worker,
)
from vampires.link.protocol import (
    FRAME_FIXED,
    HELLO_FIXED,
    PREFIX,
    TRAILER,
    FrameHeader,
    FrameStatus,
    MessageKind,
    decode_frame_header,
    decode_hello_body,
    decode_hello_length,
    decode_keywords,
    decode_prefix,
    decode_trailer,
    encode_ack,
)
from vampires.link.status import LinkCounters

if TYPE_CHECKING:
    from vampires._checks import ShmDir
    from vampires.stream import Stream

__all__ = ["TcpReceiver"]

logger = logging.getLogger(__name__)


class _Replaced(Exception):
    """A newer sender connected while this connection was quiet: it takes over."""

    def __init__(self, conn: _Connection) -> None:
        super().__init__("a new sender replaces this connection")
        self.conn = conn


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
        shm_dir: ShmDir = None,
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
        if stream is None:
            msg = "tcp-recv: a frame arrived before the stream description (hello)"
            raise ProtocolError(msg)
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
