"""Throttled ZMQ publish / subscribe of a stream (viewers, autofocus, notebooks).

The publisher (an XPUB socket) sends at most ``max_fps`` frames per second and
at most ``max_mbps`` megabits per second on the wire, every ``every``-th
frame of the stream, as the multipart message ``[topic, metadata JSON,
pixels]`` documented in ``docs/protocols.md`` (:mod:`vampires.link.zmq_protocol`).
No pickle: a subscriber only parses JSON, copies bytes and decompresses a
size-checked Blosc2 chunk, so a malformed (or malicious) message is counted
and dropped.

Compression is negotiated through the topics: raw frames go on the topic
``<name>`` (the format every subscriber reads), Blosc2-compressed frames on
``~blosc2/<name>``. A subscriber that can decompress subscribes to both, and
drops the raw topic as soon as a compressed frame arrives; the publisher
reads the subscriptions (XPUB) and compresses only while someone subscribes
to the compressed topic, sends raw frames only while someone subscribes to
the raw topic. An older subscriber (raw topic only) never sees a compressed
frame; a newer subscriber of an older publisher gets raw frames.

Latest-frame semantics: ``ZMQ_CONFLATE`` cannot be used with multipart
messages, so both sides keep tiny queues instead (``SNDHWM`` / ``RCVHWM`` of
2 messages: PUB drops what a slow subscriber cannot take) and the subscriber
drains its queue on every receive and keeps only the newest frame.

The rate is paced with deadline schedules (:class:`Pacer`), not
``sleep(1 / f)``: time spent copying, compressing and sending does not slow
the rate down, and the lateness of one frame is made up by the next, so the
long-run rate is exactly ``max_fps`` (or ``max_mbps``) whenever the camera is
faster. The bandwidth cap counts the bytes actually sent (compressed sizes,
times the subscribers of each topic) and lowers the frame rate: frames the
cap does not allow are not sent (counted in ``skipped``), never queued.

CURVE (pyzmq ``zmq.auth``): off by default (loopback, trusted LAN); pass
``curve_dir`` — a key folder made by :func:`vampires.control.keys.generate_keys`
— to both sides to authenticate and encrypt between hosts.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import attrs
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
    check_stream_name,
    parse_count,
    parse_seconds,
    wait_for_stream,
)
from vampires.link.codec import (
    MAX_CHUNK_NBYTES,
    compress_frame,
    decompress_frame,
    parse_compression,
    preload,
)
from vampires.link.protocol import wire_dtype
from vampires.link.status import LinkCounters, LinkStatus
from vampires.link.zmq_protocol import (
    ZmqMeta,
    decode_zmq_message,
    encode_zmq_meta,
    zmq_topics,
)

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from vampires._checks import ShmDir
    from vampires.stream import Stream

__all__ = ["Pacer", "ZmqPublisher", "ZmqSubscriber"]

logger = logging.getLogger(__name__)

_HWM = 2
_POLL_S = 0.1
#: A subscriber that dropped the raw topic takes it again after this long without a frame
#: (the publisher may have been replaced by one that does not compress).
_RAW_FALLBACK_S = 2.0
_ENDPOINT_SCHEMES = ("tcp://", "ipc://", "inproc://")


def _check_endpoint(endpoint: object, what: str) -> str:
    if not isinstance(endpoint, str) or not endpoint.startswith(_ENDPOINT_SCHEMES):
        msg = f"{what} must be a ZMQ endpoint like tcp://host:port, got {endpoint!r}"
        raise ConfigError(msg)
    return endpoint


class Pacer:
    """When the next frame may be sent: at most ``max_fps``, at most ``max_mbps`` on the wire.

    Two deadline schedules. After each frame sent at time ``now`` the frame
    deadline moves by ``1 / max_fps`` and the byte deadline by the time the
    bytes sent take at ``max_mbps``; the next frame may go when both have
    passed. Lateness (waiting for the camera's next frame, compressing) is
    made up by the next frames, but at most one period (one message) of it:
    the long-run rate is the cap whenever the camera is faster, and an idle
    spell never causes a burst of more than one extra message.

    Pure logic with the clock passed in (tests drive it with a fake clock).

    Parameters
    ----------
    max_fps
        Most frames per second; 0 for no limit.
    max_mbps
        Most megabits (1e6 bits) per second on the wire; 0 for no limit.
    """

    def __init__(self, max_fps: float = 0.0, max_mbps: float = 0.0) -> None:
        self._period = 1.0 / max_fps if max_fps > 0 else 0.0
        self._seconds_per_byte = 8.0 / (max_mbps * 1e6) if max_mbps > 0 else 0.0
        self._next_frame = -math.inf
        self._next_byte = -math.inf

    def delay(self, now: float) -> float:
        """Return the seconds to wait before the next frame may be sent (<= 0: now).

        Parameters
        ----------
        now
            The current time (seconds, any monotonic clock).

        Returns
        -------
        float
        """
        return max(self._next_frame, self._next_byte) - now

    def sent(self, wire_nbytes: int, now: float) -> None:
        """Account for one frame sent.

        Parameters
        ----------
        wire_nbytes
            Bytes it took on the wire (0 when nobody received it).
        now
            When it was sent (the clock of :meth:`delay`).
        """
        if self._period:
            self._next_frame = max(self._next_frame, now - self._period) + self._period
        if self._seconds_per_byte and wire_nbytes > 0:
            cost = wire_nbytes * self._seconds_per_byte
            self._next_byte = max(self._next_byte, now - cost) + cost


class _Subscriptions:
    """Subscriptions an XPUB socket reported (``XPUB_VERBOSER``: every (un)subscribe)."""

    def __init__(self) -> None:
        self._counts: collections.Counter[bytes] = collections.Counter()

    def drain(self, sock: zmq.Socket[bytes]) -> None:
        while True:
            try:
                message = sock.recv(zmq.NOBLOCK)
            except zmq.Again:
                return
            if not message or message[0] not in (0, 1):
                continue
            prefix = message[1:]
            if message[0] == 1:
                self._counts[prefix] += 1
            elif self._counts[prefix] > 1:
                self._counts[prefix] -= 1
            else:
                self._counts.pop(prefix, None)

    def count(self, topic: bytes) -> int:
        """Subscriptions matching ``topic`` (ZMQ matches by prefix)."""
        return sum(n for prefix, n in self._counts.items() if topic.startswith(prefix))


class ZmqPublisher:
    """Publish a stream on a ZMQ PUB (XPUB) socket, throttled, compressed when asked.

    Parameters
    ----------
    stream_name
        Local stream to publish (waited for if it does not exist yet).
    bind
        Endpoint to bind, e.g. ``"tcp://*:5555"``; ``"tcp://127.0.0.1:*"`` picks
        a free port (read :attr:`endpoint` after :meth:`start`).
    max_fps
        Most frames per second sent; 0 for no limit.
    max_mbps
        Most megabits (1e6 bits) per second sent on the wire, all subscribers
        together (compressed sizes); the frame rate drops to stay under it.
        0 for no limit.
    compression
        Codec for subscribers that ask for compressed frames: ``"zstd"``
        (default), ``"lz4"``, or ``"off"`` (raw frames only, as before).
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
    >>> with ZmqPublisher("vcam1", bind="tcp://*:5555", max_fps=20, max_mbps=200) as pub:
    ...     stop.wait()
    """

    def __init__(
        self,
        stream_name: str,
        bind: str = "tcp://*:5555",
        *,
        max_fps: float = 20.0,
        max_mbps: float = 0.0,
        compression: str | None = "zstd",
        every: int = 1,
        shm_dir: ShmDir = None,
        curve_dir: Path | str | None = None,
        timeout: float = 0.2,
    ) -> None:
        self.stream_name = check_stream_name(stream_name, "stream name")
        self.bind = _check_endpoint(bind, "bind")
        self.max_fps = parse_seconds(max_fps, "max_fps", allow_zero=True)
        self.max_mbps = parse_seconds(max_mbps, "max_mbps", allow_zero=True)
        self.compression = parse_compression(compression)
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
        """Return the counters: frames sent, skipped (rate limits / every), rates, ratio.

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
            sock = ctx.socket(zmq.XPUB)
            try:
                sock.sndhwm = _HWM
                # every (un)subscription, disconnections included: counts subscribers per topic
                sock.setsockopt(zmq.XPUB_VERBOSER, 1)
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
        pacer = Pacer(self.max_fps, self.max_mbps)
        subscriptions = _Subscriptions()
        if self.compression:
            preload()
        last_sent: int | None = None
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
                        subscriptions.drain(sock)
                        if stream.is_stale(max_age=_POLL_S):
                            logger.info("zmq-pub: stream %s re-created, re-opening", stream.name)
                            self._counters.recreated += 1
                            last_sent = None
                            break
                        delay = pacer.delay(time.monotonic())
                        if delay > 0:
                            self._stop.wait(min(delay, _POLL_S))
                            continue
                        try:
                            frame = reader.next(timeout=self.timeout)
                        except (StreamTimeout, TornFrameError):
                            continue
                        if last_sent is not None and frame.cnt0 < last_sent + self.every:
                            continue
                        now = time.monotonic()
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
                        subscriptions.drain(sock)
                        wire, payload = self._send(sock, subscriptions, meta, pixels)
                        pacer.sent(wire, now)
                        if last_sent is not None:
                            self._counters.skipped += max(0, frame.cnt0 - last_sent - 1)
                        last_sent = frame.cnt0
                        self._counters.frame(
                            pixels.nbytes, frame.cnt0, wire_nbytes=wire, payload_nbytes=payload
                        )
            finally:
                stream.close()

    def _send(
        self,
        sock: zmq.Socket[bytes],
        subscriptions: _Subscriptions,
        meta: ZmqMeta,
        pixels: NDArray[Any],
    ) -> tuple[int, int]:
        """Send one frame compressed and/or raw, as subscribed.

        Returns the bytes on the wire (all copies) and the bytes of the encoded
        frame (compressed size when compressed; 0 when it reached nobody).

        PUB never blocks: a subscriber whose queue (HWM) is full misses this
        message, which is the latest-frame semantics we want.
        """
        raw_topic, z_topic = zmq_topics(self.stream_name)
        n_raw = subscriptions.count(raw_topic)
        n_z = subscriptions.count(z_topic)
        chunk = self._compress(pixels) if n_z else None
        if chunk is None:
            n_z = 0
        wire = 0
        payload = pixels.nbytes
        if chunk is not None:
            z_meta = encode_zmq_meta(attrs.evolve(meta, encoding="blosc2"))
            sock.send_multipart([z_topic, z_meta, chunk], copy=False)
            wire += n_z * (len(z_topic) + len(z_meta) + len(chunk))
            payload = len(chunk)
        if n_raw or not n_z:  # nobody subscribed: PUB filters it out, nothing is sent
            raw_meta = encode_zmq_meta(meta)
            sock.send_multipart([raw_topic, raw_meta, pixels.data], copy=False)
            wire += n_raw * (len(raw_topic) + len(raw_meta) + pixels.nbytes)
        return wire, payload if wire else 0

    def _compress(self, pixels: NDArray[Any]) -> bytes | None:
        """Return the Blosc2 chunk of a frame; None when not compressed (off, too big, failed)."""
        if self.compression is None or pixels.nbytes > MAX_CHUNK_NBYTES:
            return None
        try:
            return compress_frame(pixels, self.compression)
        except (RuntimeError, ValueError) as exc:  # a codec failure: this frame goes raw
            error = f"compression failed: {exc}"
            if self._counters.error != error:  # once, not at every frame
                logger.warning("zmq-pub %s: %s; sending raw frames", self.stream_name, error)
            self._counters.error = error
            return None


def _other_copy(meta: ZmqMeta, other: ZmqMeta | None) -> bool:
    """Tell whether ``meta`` is the other encoding of the frame ``other`` (raw / compressed)."""
    return (
        other is not None
        and meta.encoding != other.encoding
        and meta.cnt0 == other.cnt0
        and meta.write_time == other.write_time
    )


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
    compression
        Accept compressed frames (default): subscribe to the compressed topic
        too and decompress transparently. False receives raw frames only, as
        subscribers did before compression.
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
        shm_dir: ShmDir = None,
        curve_dir: Path | str | None = None,
        compression: bool = True,
        timeout: float | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.connect = _check_endpoint(connect, "connect")
        self.name = check_stream_name(name, "stream name")
        self.to_stream = bool(to_stream)
        self.compression = bool(compression)
        self._raw_topic, self._z_topic = zmq_topics(self.name)
        self._raw_subscribed = False
        self._last_message = 0.0
        self._last_meta: ZmqMeta | None = None
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
        """Return the counters: frames received, skipped, malformed, rates, ratio.

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
            sock.setsockopt(zmq.SUBSCRIBE, self._raw_topic)
            if self.compression:
                sock.setsockopt(zmq.SUBSCRIBE, self._z_topic)
            sock.connect(self.connect)
        except (zmq.ZMQError, ConfigError) as exc:
            sock.close(linger=0)
            ctx.term()
            msg = f"ZMQ subscriber cannot connect to {self.connect}: {exc}"
            raise LinkError(msg) from exc
        self._ctx, self._sock, self._owner = ctx, sock, threading.get_ident()
        self._raw_subscribed = True
        if self.compression:
            preload()
        self._last_message = time.monotonic()
        self._counters.connected = True
        return sock

    def _negotiate(self, sock: zmq.Socket[bytes], compressed: bool | None) -> None:
        """Drop the raw topic once compressed frames flow; take it back after a silence.

        ``compressed`` is the encoding of a message just received (None: nothing).
        """
        if not self.compression:
            return
        now = time.monotonic()
        if compressed is not None:
            self._last_message = now
        if compressed and self._raw_subscribed:
            sock.setsockopt(zmq.UNSUBSCRIBE, self._raw_topic)
            self._raw_subscribed = False
            logger.debug("zmq-sub %s: compressed frames arrive, raw topic dropped", self.name)
        elif not self._raw_subscribed and now - self._last_message > _RAW_FALLBACK_S:
            sock.setsockopt(zmq.SUBSCRIBE, self._raw_topic)
            self._raw_subscribed = True
            self._last_message = now
            logger.debug("zmq-sub %s: no frame for a while, raw topic taken again", self.name)

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
                self._negotiate(sock, None)
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
                self._negotiate(sock, meta.encoding != "raw")
                if _other_copy(meta, self._last_meta) or (
                    latest is not None and _other_copy(meta, latest[1])
                ):
                    continue  # the same frame raw and compressed (while negotiating)
                if latest is not None:
                    self._counters.skipped += 1
                latest = (parts, meta)
            if latest is None:
                continue
            parts, meta = latest
            if meta.encoding == "raw":
                pixels = np.frombuffer(parts[2].buffer, dtype=meta.dtype).reshape(meta.shape)
            else:
                try:
                    pixels = decompress_frame(parts[2].buffer, meta.shape, meta.dtype)
                except ProtocolError as exc:
                    self._counters.malformed += 1
                    logger.warning("zmq-sub %s: dropped a malformed message: %s", self.name, exc)
                    continue
            self._last_meta = meta
            self._counters.frame(
                pixels.nbytes,
                meta.cnt0,
                wire_nbytes=sum(len(part.buffer) for part in parts),
                payload_nbytes=len(parts[2].buffer),
            )
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
