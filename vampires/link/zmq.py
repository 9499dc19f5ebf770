"""Throttled ZMQ publish / subscribe of a stream (viewers, autofocus, notebooks).

The publisher (PUB) sends at most ``max_fps`` frames per second, every
``every``-th frame of the stream, as the multipart message
``[topic, metadata JSON, pixel bytes]`` documented in ``docs/protocols.md``
(:mod:`vampires.link.protocol`). No pickle: a subscriber only parses JSON and
copies bytes, so a malformed (or malicious) message is counted and dropped.

Latest-frame semantics: ``ZMQ_CONFLATE`` cannot be used with multipart
messages, so both sides keep tiny queues instead (``SNDHWM`` / ``RCVHWM`` of
2 messages: PUB drops what a slow subscriber cannot take) and the subscriber
drains its queue on every receive and keeps only the newest frame.

The rate is paced with a deadline schedule (``deadline += 1 / max_fps``), not
``sleep(1 / f)``: time spent copying and sending does not slow the rate down,
and the lateness of one frame is made up by the next, so the long-run rate is
exactly ``max_fps`` whenever the camera is faster.

CURVE (pyzmq ``zmq.auth``): off by default (loopback, trusted LAN); pass
``curve_dir`` — a key folder made by :func:`vampires.control.keys.generate_keys`
— to both sides to authenticate and encrypt between hosts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import numpy as np
import zmq

from vampires.errors import (
    ConfigError,
    LinkError,
    LinkTimeout,
    ProtocolError,
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
    parse_seconds,
    wait_for_stream,
)
from vampires.link.protocol import (
    ZmqMeta,
    decode_zmq_message,
    encode_zmq_meta,
    wire_dtype,
)

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from vampires.stream import Stream

__all__ = ["ZmqPublisher", "ZmqSubscriber"]

logger = logging.getLogger(__name__)

_HWM = 2
_POLL_S = 0.1
_ENDPOINT_SCHEMES = ("tcp://", "ipc://", "inproc://")


def _check_endpoint(endpoint: object, what: str) -> str:
    if not isinstance(endpoint, str) or not endpoint.startswith(_ENDPOINT_SCHEMES):
        msg = f"{what} must be a ZMQ endpoint like tcp://host:port, got {endpoint!r}"
        raise ConfigError(msg)
    return endpoint


class ZmqPublisher:
    """Publish a stream on a ZMQ PUB socket, throttled.

    Parameters
    ----------
    stream_name
        Local stream to publish (waited for if it does not exist yet).
    bind
        Endpoint to bind, e.g. ``"tcp://*:5555"``; ``"tcp://127.0.0.1:*"`` picks
        a free port (read :attr:`endpoint` after :meth:`start`).
    max_fps
        Most frames per second sent; 0 for no limit.
    every
        Send only every N-th frame of the stream (by counter: a frame is sent
        when its ``cnt0`` is at least N past the last one sent).
    shm_dir
        Shm folder of the stream (default: ``MILK_SHM_DIR`` resolution).
    curve_dir
        CURVE key folder (server side); None for no authentication.
    timeout
        Longest single wait on the stream, seconds (bounds the reaction to
        ``close()`` and to a re-created stream).

    Examples
    --------
    >>> with ZmqPublisher("vcam1", bind="tcp://*:5555", max_fps=20) as pub:
    ...     stop.wait()
    """

    def __init__(
        self,
        stream_name: str,
        bind: str = "tcp://*:5555",
        *,
        max_fps: float = 20.0,
        every: int = 1,
        shm_dir: Path | str | None = None,
        curve_dir: Path | str | None = None,
        timeout: float = 0.2,
    ) -> None:
        self.stream_name = check_stream_name(stream_name, "stream name")
        self.bind = _check_endpoint(bind, "bind")
        self.max_fps = parse_seconds(max_fps, "max_fps", allow_zero=True)
        self.every = parse_count(every, "every")
        self.timeout = parse_seconds(timeout, "timeout")
        self._shm_dir = Path(shm_dir) if shm_dir is not None else None
        self._curve_dir = Path(curve_dir) if curve_dir is not None else None
        self._counters = LinkCounters("zmq-pub", self.bind, self.stream_name)
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._endpoint: str | None = None

    @property
    def endpoint(self) -> str:
        """The bound endpoint with the real port (after :meth:`start`)."""
        return self._endpoint or self.bind

    def status(self) -> LinkStatus:
        """Return the counters: frames sent, skipped (rate limit / every), rate.

        Returns
        -------
        LinkStatus
        """
        return self._counters.snapshot()

    def start(self, *, timeout: float = 5.0) -> Self:
        """Bind and start publishing in a background thread.

        Parameters
        ----------
        timeout
            Seconds to wait for the socket to bind.

        Returns
        -------
        ZmqPublisher
            ``self``.

        Raises
        ------
        LinkError
            The endpoint cannot be bound (in use, bad address) or the CURVE
            keys cannot be loaded.
        """
        if self._thread is not None:
            msg = f"ZMQ publisher of {self.stream_name} is already started"
            raise LinkError(msg)
        self._thread = threading.Thread(
            target=self._thread_main, name=f"zmq-pub-{self.stream_name}", daemon=True
        )
        self._thread.start()
        if not self._ready.wait(timeout):
            self.close()
            msg = f"ZMQ publisher of {self.stream_name} did not bind {self.bind} in {timeout} s"
            raise LinkTimeout(msg)
        if self._error is not None:
            error = self._error
            self.close()
            raise error
        return self

    def run(self, stop: threading.Event) -> None:
        """Publish in the calling thread until ``stop`` is set.

        Parameters
        ----------
        stop
            Set it (e.g. from a signal handler) to return.

        Raises
        ------
        LinkError
            The endpoint cannot be bound.
        """
        self._stop = stop
        self._thread_main()
        if self._error is not None:
            raise self._error

    def close(self) -> None:
        """Stop publishing and close the socket (idempotent)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)

    def __enter__(self) -> Self:
        return self.start() if self._thread is None else self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ thread

    def _thread_main(self) -> None:
        auth: Any = None
        with zmq.Context() as ctx:
            sock = ctx.socket(zmq.PUB)
            try:
                sock.sndhwm = _HWM
                sock.linger = 1000
                if self._curve_dir is not None:
                    from vampires.control.keys import start_authenticator

                    auth = start_authenticator(ctx, sock, self._curve_dir)
                sock.bind(self.bind)
                self._endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)
                self._counters.endpoint = self._endpoint
                self._counters.connected = True
            except (zmq.ZMQError, ConfigError) as exc:
                self._error = LinkError(f"ZMQ publisher cannot bind {self.bind}: {exc}")
                self._ready.set()
                sock.close(linger=0)
                if auth is not None:
                    auth.stop()
                return
            self._ready.set()
            logger.info("zmq-pub %s bound on %s", self.stream_name, self._endpoint)
            try:
                self._publish_loop(sock)
            finally:
                self._counters.connected = False
                sock.close()
                if auth is not None:
                    auth.stop()

    def _publish_loop(self, sock: zmq.Socket[bytes]) -> None:
        period = 1.0 / self.max_fps if self.max_fps > 0 else 0.0
        deadline = time.monotonic()
        last_sent: int | None = None
        topic = self.stream_name.encode()
        while not self._stop.is_set():
            stream = wait_for_stream(
                self.stream_name,
                self._shm_dir,
                self._stop,
                self._counters,
                backoff=Backoff(0.05, 1.0),
            )
            if stream is None:
                return
            self._counters.error = None
            kw_version = -1
            keywords: dict[str, tuple[Any, str]] = {}
            dtype = wire_dtype(stream.dtype)
            try:
                with stream.reader() as reader:
                    while not self._stop.is_set():
                        if stream.is_stale(max_age=_POLL_S):
                            logger.info("zmq-pub: stream %s re-created, re-opening", stream.name)
                            self._counters.recreated += 1
                            last_sent = None
                            break
                        if period:
                            delay = deadline - time.monotonic()
                            if delay > 0:
                                self._stop.wait(delay)
                                continue
                        try:
                            frame = reader.next(timeout=self.timeout)
                        except (StreamTimeout, TornFrameError):
                            continue
                        if last_sent is not None and frame.cnt0 < last_sent + self.every:
                            continue
                        if kw_version != stream.keywords.version:
                            kw_version = stream.keywords.version
                            keywords = {n: (v, c) for n, v, c in stream.keywords.cards()}
                        meta = ZmqMeta(
                            name=self.stream_name,
                            shape=frame.data.shape,
                            dtype=dtype,
                            cnt0=frame.cnt0,
                            cnt1=frame.cnt1,
                            acquisition_time=frame.acquisition_time,
                            write_time=frame.write_time,
                            send_time=time.time(),
                            keywords=keywords,
                        )
                        pixels = np.ascontiguousarray(frame.data)
                        # PUB never blocks: a subscriber whose queue (HWM) is full misses
                        # this message, which is the latest-frame semantics we want.
                        sock.send_multipart([topic, encode_zmq_meta(meta), pixels.data], copy=False)
                        if last_sent is not None:
                            self._counters.skipped += max(0, frame.cnt0 - last_sent - 1)
                        last_sent = frame.cnt0
                        self._counters.frame(pixels.nbytes, frame.cnt0)
                        if period:
                            deadline += period
                            now = time.monotonic()
                            if deadline <= now - period:  # stalled (slow camera): no catch-up burst
                                deadline = now
            finally:
                stream.close()


class ZmqSubscriber:
    """Receive frames from a :class:`ZmqPublisher`; iterate them or mirror them into a stream.

    Parameters
    ----------
    connect
        Publisher endpoint, e.g. ``"tcp://scexao5:5555"``; the publisher may
        start later (ZMQ connects and reconnects by itself).
    name
        Stream name (the topic) to receive.
    to_stream
        True to publish every received frame into a local stream (see
        :meth:`run` / :meth:`start`); the local stream is created, or
        re-created when the shape or dtype changes.
    local_name
        Name of the local stream (default ``name``).
    shm_dir
        Shm folder of the local stream.
    curve_dir
        CURVE key folder (client side); None for no authentication.
    timeout
        Seconds iteration waits for a frame before raising
        :class:`~vampires.errors.LinkTimeout`; None waits until :meth:`close`.
    stop
        An event that ends iteration (and :meth:`run`) when set, e.g. from a
        signal handler or another thread; :meth:`close` sets it too.

    Examples
    --------
    >>> with ZmqSubscriber("tcp://scexao5:5555", "vcam1", timeout=5.0) as sub:
    ...     for frame, meta in sub:
    ...         focus = sharpness(frame)
    """

    def __init__(
        self,
        connect: str,
        name: str,
        *,
        to_stream: bool = False,
        local_name: str | None = None,
        shm_dir: Path | str | None = None,
        curve_dir: Path | str | None = None,
        timeout: float | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.connect = _check_endpoint(connect, "connect")
        self.name = check_stream_name(name, "stream name")
        self.to_stream = bool(to_stream)
        self.local_name = check_stream_name(local_name or name, "local stream name")
        self.timeout = None if timeout is None else parse_seconds(timeout, "timeout")
        self._shm_dir = Path(shm_dir) if shm_dir is not None else None
        self._curve_dir = Path(curve_dir) if curve_dir is not None else None
        self._counters = LinkCounters("zmq-sub", self.connect, self.name)
        self._stop = stop if stop is not None else threading.Event()
        self._thread: threading.Thread | None = None
        self._ctx: zmq.Context[zmq.Socket[bytes]] | None = None
        self._sock: zmq.Socket[bytes] | None = None
        self._owner: int | None = None
        self._stream: Stream | None = None
        self._keywords: dict[str, tuple[Any, str]] = {}
        self._error: BaseException | None = None

    def status(self) -> LinkStatus:
        """Return the counters: frames received, skipped, malformed, rate.

        Returns
        -------
        LinkStatus
        """
        return self._counters.snapshot()

    # ------------------------------------------------------------------ socket

    def _socket(self) -> zmq.Socket[bytes]:
        if self._sock is not None:
            if self._owner != threading.get_ident():
                msg = f"ZMQ subscriber of {self.name} is used from two threads; use one each"
                raise LinkError(msg)
            return self._sock
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        sock = ctx.socket(zmq.SUB)
        try:
            sock.rcvhwm = _HWM
            sock.linger = 0
            sock.reconnect_ivl = 100
            sock.reconnect_ivl_max = 2000
            if self._curve_dir is not None:
                from vampires.control.keys import client_keys

                keys = client_keys(self._curve_dir)
                sock.curve_secretkey = keys["secret"]
                sock.curve_publickey = keys["public"]
                sock.curve_serverkey = keys["server"]
            sock.setsockopt(zmq.SUBSCRIBE, self.name.encode())
            sock.connect(self.connect)
        except (zmq.ZMQError, ConfigError) as exc:
            sock.close(linger=0)
            ctx.term()
            msg = f"ZMQ subscriber cannot connect to {self.connect}: {exc}"
            raise LinkError(msg) from exc
        self._ctx, self._sock, self._owner = ctx, sock, threading.get_ident()
        self._counters.connected = True
        return sock

    def _close_socket(self) -> None:
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None
        self._counters.connected = False

    # ------------------------------------------------------------------ receive

    def recv(self, timeout: float | None = 1.0) -> tuple[NDArray[Any], ZmqMeta]:
        """Return the newest frame received (older queued ones are dropped).

        Parameters
        ----------
        timeout
            Seconds to wait; None waits until :meth:`close` (then LinkError).

        Returns
        -------
        tuple of (ndarray, ZmqMeta)
            The pixels (read-only array over the message buffer) and metadata.

        Raises
        ------
        LinkTimeout
            No valid frame within ``timeout``.
        LinkError
            The subscriber was closed.
        """
        sock = self._socket()
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._stop.is_set():
            wait = _POLL_S if deadline is None else min(_POLL_S, deadline - time.monotonic())
            if wait < 0:
                break
            if not sock.poll(int(wait * 1000) + 1, zmq.POLLIN):
                continue
            latest: tuple[list[zmq.Frame], ZmqMeta] | None = None
            while True:  # drain to the newest message
                try:
                    parts = sock.recv_multipart(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    break
                try:
                    meta = decode_zmq_message(parts)
                except ProtocolError as exc:
                    self._counters.malformed += 1
                    logger.warning("zmq-sub %s: dropped a malformed message: %s", self.name, exc)
                    continue
                if meta.name != self.name:  # topic prefix match only ("vcam1_dark")
                    continue
                if latest is not None:
                    self._counters.skipped += 1
                latest = (parts, meta)
            if latest is None:
                continue
            parts, meta = latest
            pixels = np.frombuffer(parts[2].buffer, dtype=meta.dtype).reshape(meta.shape)
            self._counters.frame(pixels.nbytes, meta.cnt0)
            return pixels, meta
        if self._stop.is_set():
            msg = f"ZMQ subscriber of {self.name} is closed"
            raise LinkError(msg)
        msg = f"no frame of {self.name} from {self.connect} within {timeout} s"
        raise LinkTimeout(msg)

    def __iter__(self) -> Iterator[tuple[NDArray[Any], ZmqMeta]]:
        """Yield ``(frame, meta)`` until :meth:`close` (or a timeout, see ``timeout``).

        Yields
        ------
        tuple of (ndarray, ZmqMeta)

        Raises
        ------
        LinkTimeout
            No frame within the subscriber's ``timeout`` (when not None).
        """
        if self._thread is not None:
            msg = f"ZMQ subscriber of {self.name} runs in the background; it cannot be iterated"
            raise LinkError(msg)
        try:
            while not self._stop.is_set():
                try:
                    yield self.recv(self.timeout)
                except LinkTimeout:
                    raise
                except LinkError:
                    if self._stop.is_set():
                        return
                    raise
        finally:
            if self._owner == threading.get_ident():
                self._close_socket()

    # ------------------------------------------------------------------ to stream

    def _publish(self, pixels: NDArray[Any], meta: ZmqMeta) -> None:
        from vampires.stream import Stream

        stream = self._stream
        if stream is not None and (
            stream.shape != pixels.shape or stream.dtype != pixels.dtype or stream.is_stale()
        ):
            stream.close()
            stream = self._stream = None
        if stream is None:
            nkw = max(50, len(meta.keywords) + 16)
            stream = Stream.create(
                self.local_name,
                pixels.shape,
                pixels.dtype,
                nkeywords=nkw,
                exist_ok=True,
                shm_dir=self._shm_dir,
            )
            self._stream = stream
            self._keywords = {}
            self._counters.recreated += 1
            logger.info(
                "zmq-sub: publishing %s into local stream %s %s %s",
                self.name,
                self.local_name,
                pixels.shape,
                pixels.dtype,
            )
        keywords = None
        if meta.keywords != self._keywords:
            keywords = dict(meta.keywords)
            self._keywords = keywords
        # Same counters as the publishing stream, so viewers and scripts can
        # match frames across hosts (gaps = frames not sent by the throttle).
        stream.write_with(
            lambda view: np.copyto(view, pixels),
            keywords=keywords,
            acquisition_time=meta.acquisition_time,
            cnt0=meta.cnt0,
            cnt1=meta.cnt1,
        )

    def run(self, stop: threading.Event | None = None) -> None:
        """Receive and publish into the local stream until ``stop`` (or :meth:`close`).

        Parameters
        ----------
        stop
            Set it to return.
        """
        if stop is not None:
            self._stop = stop
        try:
            while not self._stop.is_set():
                try:
                    pixels, meta = self.recv(timeout=1.0)
                except LinkTimeout:
                    continue
                except LinkError:
                    if self._stop.is_set():
                        return
                    raise
                try:
                    self._publish(pixels, meta)
                except StreamError as exc:
                    self._counters.error = str(exc)
                    logger.warning("zmq-sub %s: cannot publish locally: %s", self.name, exc)
        finally:
            self._close_socket()
            if self._stream is not None:
                self._stream.close()
                self._stream = None

    def start(self) -> Self:
        """Receive into the local stream in a background thread.

        Returns
        -------
        ZmqSubscriber
            ``self``.

        Raises
        ------
        LinkError
            Already started, or ``to_stream`` is False.
        """
        if not self.to_stream:
            msg = f"ZMQ subscriber of {self.name}: start() needs to_stream=True (else iterate it)"
            raise LinkError(msg)
        if self._thread is not None:
            msg = f"ZMQ subscriber of {self.name} is already started"
            raise LinkError(msg)
        self._thread = threading.Thread(
            target=self._run_thread, name=f"zmq-sub-{self.name}", daemon=True
        )
        self._thread.start()
        return self

    def _run_thread(self) -> None:
        try:
            self.run()
        except (LinkError, StreamError) as exc:
            self._error = exc
            self._counters.error = str(exc)
            logger.exception("zmq-sub %s stopped", self.name)

    def close(self) -> None:
        """Stop receiving and close the socket (idempotent)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)
        elif self._owner in (None, threading.get_ident()):
            self._close_socket()
            if self._stream is not None:
                self._stream.close()
                self._stream = None

    def __enter__(self) -> Self:
        if self.to_stream and self._thread is None:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
