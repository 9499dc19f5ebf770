"""What the TCP sender and receiver share: socket helpers, one connection, the worker thread."""

from __future__ import annotations

import contextlib
import logging
import socket
import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self

from vampires.errors import (
    LinkError,
)
from vampires.link.protocol import (
    FrameStatus,
    Hello,
    encode_trailer,
)
from vampires.link.status import LinkCounters, LinkStatus

logger = logging.getLogger(__name__)


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
