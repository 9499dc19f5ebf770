"""Where the viewer's frames come from: a local stream or a ZMQ publisher.

Both sources answer :meth:`FrameSource.poll` without blocking: the newest
frame if one arrived since the last call, else None, and a one-line
:attr:`~FrameSource.state` saying what is going on (waiting for a stream that
does not exist yet, a publisher gone silent ...). There is no queue and no
catch-up: a viewer slower than the camera skips frames, it never falls behind.

:class:`LocalSource` never holds a reader semaphore: it compares ``cnt0`` with
the last frame shown and copies the newest frame with :meth:`Stream.read`
(torn copies are detected and retried there). So nothing it does can slow the
writer, and closing it (or killing the viewer) leaves no semaphore claimed.

:class:`RemoteSource` runs a :class:`~vampires.link.zmq.ZmqSubscriber` in a
thread that keeps only the newest frame; ZMQ reconnects by itself when the
publisher comes back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import numpy as np

from vampires._checks import ShmDir
from vampires.errors import ConfigError, LinkError, LinkTimeout, StreamError, TornFrameError
from vampires.link._common import check_stream_name

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from vampires.stream import Stream

__all__ = [
    "FrameSource",
    "LocalSource",
    "RemoteSource",
    "SourceFrame",
    "ViewTarget",
    "open_source",
    "parse_target",
]

logger = logging.getLogger(__name__)

_SCHEMES = ("tcp://", "ipc://")
#: A source silent this long says so in its state.
SILENT_AFTER_S = 3.0
#: Seconds a "not stale" answer of the local stream is reused.
_STALE_CHECK_S = 0.5


@attrs.frozen(kw_only=True)
class ViewTarget:
    """What to show: a local stream, or a stream published over ZMQ.

    Attributes
    ----------
    name
        Stream name.
    endpoint
        ZMQ endpoint (``tcp://host:port``) of the publisher, None for a local stream.
    """

    name: str
    endpoint: str | None = None

    @property
    def remote(self) -> bool:
        """True for a ZMQ publisher."""
        return self.endpoint is not None

    def __str__(self) -> str:
        return f"{self.endpoint}/{self.name}" if self.endpoint else self.name


def parse_target(text: object) -> ViewTarget:
    """Parse ``vcam1`` or ``tcp://HOST:PORT/vcam1`` (``ipc://PATH/vcam1``).

    Parameters
    ----------
    text
        A stream name or an endpoint followed by ``/`` and a stream name.

    Returns
    -------
    ViewTarget

    Raises
    ------
    ConfigError
        Not a valid stream name, or an endpoint without a stream name.
    """
    if not isinstance(text, str) or not text:
        msg = f"a view target is a stream name or tcp://HOST:PORT/NAME (got {text!r})"
        raise ConfigError(msg)
    if text.startswith(_SCHEMES):
        endpoint, _, name = text.rpartition("/")
        if not name or endpoint.endswith(":/") or endpoint.rstrip("/") in ("tcp:", "ipc:"):
            msg = f"{text!r}: give the stream after the endpoint, e.g. tcp://scexao5:5555/vcam1"
            raise ConfigError(msg)
        if endpoint.startswith("tcp://") and ":" not in endpoint[6:]:
            msg = f"{text!r}: a tcp endpoint needs a port, e.g. tcp://scexao5:5555/vcam1"
            raise ConfigError(msg)
        return ViewTarget(name=check_stream_name(name, "stream name"), endpoint=endpoint)
    if "://" in text:
        msg = f"{text!r}: only tcp:// and ipc:// publishers can be viewed"
        raise ConfigError(msg)
    return ViewTarget(name=check_stream_name(text, "stream name"))


@attrs.frozen(kw_only=True)
class SourceFrame:
    """One frame as the viewer got it.

    Attributes
    ----------
    data
        Pixels ``(height, width)``; owned by the source and overwritten by a
        later poll of the same source: copy to keep.
    cnt0
        The stream's frame counter.
    acquisition_time
        Unix seconds of acquisition (0 if unknown).
    keywords
        The stream keywords ``{name: value}`` (read-only).
    comments
        Their comments ``{name: comment}`` (read-only).
    """

    data: NDArray[Any] = attrs.field(eq=False, repr=lambda a: f"<{a.dtype} {a.shape}>")
    cnt0: int
    acquisition_time: float
    keywords: Mapping[str, Any] = attrs.field(eq=False, repr=False)
    comments: Mapping[str, str] = attrs.field(eq=False, repr=False, factory=dict)


class FrameSource(Protocol):
    """What the viewer reads frames from."""

    @property
    def target(self) -> ViewTarget:
        """What this source shows."""
        ...

    @property
    def state(self) -> str:
        """One line: empty when frames flow, else what is wrong and what happens."""
        ...

    def poll(self) -> SourceFrame | None:
        """Return the newest frame if one arrived since the last call, else None."""
        ...

    def close(self) -> None:
        """Release everything (idempotent)."""
        ...


class LocalSource:
    """Newest frames of a local shared-memory stream, without a semaphore.

    Parameters
    ----------
    name
        Stream name; it may not exist yet (the state says the viewer waits).
    shm_dir
        Shm folder; default ``MILK_SHM_DIR`` resolution.
    silent_after
        Seconds without a new frame after which :attr:`state` says so.
    """

    def __init__(
        self,
        name: str,
        *,
        shm_dir: ShmDir = None,
        silent_after: float = SILENT_AFTER_S,
    ) -> None:
        self._target = ViewTarget(name=check_stream_name(name, "stream name"))
        self._shm_dir = shm_dir
        self._silent_after = silent_after
        self._stream: Stream | None = None
        self._buf: NDArray[Any] | None = None
        self._last_cnt0: int | None = None
        self._last_change = time.monotonic()
        self._kw_version = -1
        self._keywords: Mapping[str, Any] = MappingProxyType({})
        self._comments: Mapping[str, str] = MappingProxyType({})
        self._state = f"waiting for stream {name}"
        self._closed = False
        self.recreated = 0

    @property
    def target(self) -> ViewTarget:
        """What this source shows."""
        return self._target

    @property
    def state(self) -> str:
        """Empty when frames flow; else why not."""
        return self._state

    def _attach(self) -> Stream | None:
        from vampires.stream import Stream

        try:
            stream = Stream.open(self._target.name, shm_dir=self._shm_dir)
        except StreamError as exc:
            self._state = f"waiting for stream {self._target.name}: {exc}"
            return None
        if stream.dtype.kind not in "uif" or len(stream.shape) not in (2, 3):
            self._state = (
                f"stream {self._target.name} has {stream.dtype} {stream.shape} pixels; "
                "the viewer shows 2-D (or the first slice of 3-D) real frames"
            )
            stream.close()
            return None
        if self._buf is not None and self._buf.shape != stream.shape:
            self.recreated += 1
            logger.info("view %s: stream re-created as %s", self._target.name, stream.shape)
        if self._buf is None or self._buf.shape != stream.shape or self._buf.dtype != stream.dtype:
            self._buf = np.empty(stream.shape, stream.dtype)
        self._stream = stream
        self._kw_version = -1
        self._last_cnt0 = None
        self._state = ""
        return stream

    def poll(self) -> SourceFrame | None:
        """Return the newest frame if the stream's counter moved, else None.

        Returns
        -------
        SourceFrame or None
            None while the stream is missing, unchanged, or being re-created.

        Raises
        ------
        StreamClosedError
            After :meth:`close`.
        """
        if self._closed:
            from vampires.errors import StreamClosedError

            msg = f"viewer source {self._target.name} is closed"
            raise StreamClosedError(msg)
        stream = self._stream
        if stream is not None and stream.is_stale(_STALE_CHECK_S):
            stream.close()
            stream = self._stream = None
            self._state = f"stream {self._target.name} was removed or re-created; re-attaching"
        if stream is None:
            stream = self._attach()
            if stream is None:
                return None
        cnt0 = stream.cnt0
        if cnt0 == 0:
            self._state = f"stream {self._target.name} exists but no frame was written yet"
            return None
        if cnt0 == self._last_cnt0:
            silent = time.monotonic() - self._last_change
            if silent > self._silent_after:
                self._state = f"no new frame of {self._target.name} for {silent:.0f} s"
            return None
        buf = self._buf
        if buf is None:  # set when the stream is attached, before any frame is read
            return None
        try:
            stream.read(out=buf)
        except TornFrameError as exc:  # writer too fast for one copy: skip this poll
            logger.debug("view %s: %s", self._target.name, exc)
            return None
        except StreamError as exc:
            self._state = f"stream {self._target.name}: {exc}"
            stream.close()
            self._stream = None
            return None
        self._last_cnt0 = cnt0
        self._last_change = time.monotonic()
        self._state = ""
        version = stream.keywords.version
        if version != self._kw_version:
            cards = stream.keywords.cards()
            self._keywords = MappingProxyType({n: v for n, v, _ in cards})
            self._comments = MappingProxyType({n: c for n, _, c in cards})
            self._kw_version = version
        data = buf if buf.ndim == 2 else buf[0]
        return SourceFrame(
            data=data,
            cnt0=cnt0,
            acquisition_time=stream.acquisition_time,
            keywords=self._keywords,
            comments=self._comments,
        )

    def close(self) -> None:
        """Unmap the stream (idempotent)."""
        self._closed = True
        if self._stream is not None:
            self._stream.close()
            self._stream = None


class RemoteSource:
    """Newest frames from a :class:`~vampires.link.zmq.ZmqPublisher`.

    A thread receives (the subscriber drops all but the newest message) and
    keeps the last frame; :meth:`poll` takes it. Compressed or not is the
    subscriber's business.

    Parameters
    ----------
    endpoint
        Publisher endpoint, ``tcp://host:port``.
    name
        Stream name (the topic).
    curve_dir
        CURVE key folder (client side), None for none.
    silent_after
        Seconds without a frame after which :attr:`state` says the publisher
        seems gone.
    """

    def __init__(
        self,
        endpoint: str,
        name: str,
        *,
        curve_dir: str | Path | None = None,
        silent_after: float = SILENT_AFTER_S,
    ) -> None:
        self._target = ViewTarget(name=check_stream_name(name, "stream name"), endpoint=endpoint)
        if not endpoint.startswith(_SCHEMES):
            msg = f"endpoint must be tcp://HOST:PORT or ipc://PATH (got {endpoint!r})"
            raise ConfigError(msg)
        self._curve_dir = curve_dir
        self._silent_after = silent_after
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._latest: SourceFrame | None = None
        self._last_arrival: float | None = None
        self._error = ""
        self._started = time.monotonic()
        self._thread = threading.Thread(target=self._run, name=f"view-{name}", daemon=True)
        self._thread.start()

    @property
    def target(self) -> ViewTarget:
        """What this source shows."""
        return self._target

    @property
    def state(self) -> str:
        """Empty when frames flow; else why not (and that it keeps trying)."""
        where = f"{self._target.endpoint}/{self._target.name}"
        if self._error:
            return f"{where}: {self._error}; retrying"
        now = time.monotonic()
        if self._last_arrival is None:
            waited = now - self._started
            return f"waiting for frames from {where} ({waited:.0f} s; is the publisher running?)"
        silent = now - self._last_arrival
        if silent > self._silent_after:
            return f"no frame from {where} for {silent:.0f} s: publisher gone? reconnecting"
        return ""

    def _run(self) -> None:
        from vampires.link.zmq import ZmqSubscriber

        while not self._stop.is_set():
            try:
                with ZmqSubscriber(
                    self._target.endpoint or "",
                    self._target.name,
                    curve_dir=self._curve_dir,
                    stop=self._stop,
                ) as sub:
                    self._receive(sub)
            except LinkError as exc:
                if self._stop.is_set():
                    return
                self._error = str(exc)
                logger.warning("view %s: %s", self._target, exc)
                self._stop.wait(1.0)

    def _receive(self, sub: Any) -> None:  # noqa: ANN401 - ZmqSubscriber (lazy import)
        while not self._stop.is_set():
            try:
                pixels, meta = sub.recv(timeout=0.5)
            except LinkTimeout:
                continue
            except LinkError:
                if self._stop.is_set():
                    return
                raise
            data = np.array(pixels)  # the message buffer dies with the next receive
            if data.ndim == 3:
                data = data[0]
            frame = SourceFrame(
                data=data,
                cnt0=int(meta.cnt0),
                acquisition_time=float(meta.acquisition_time),
                keywords=MappingProxyType({k: v[0] for k, v in meta.keywords.items()}),
                comments=MappingProxyType({k: v[1] for k, v in meta.keywords.items()}),
            )
            with self._lock:
                self._latest = frame
            self._last_arrival = time.monotonic()
            self._error = ""

    def poll(self) -> SourceFrame | None:
        """Return the newest frame received since the last call, else None."""
        with self._lock:
            frame, self._latest = self._latest, None
        return frame

    def close(self) -> None:
        """Stop the receiving thread and close its socket (idempotent)."""
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout=5.0)


def open_source(
    target: ViewTarget | str,
    *,
    shm_dir: ShmDir = None,
    curve_dir: str | Path | None = None,
) -> FrameSource:
    """Open the source for a target.

    Parameters
    ----------
    target
        A :class:`ViewTarget` or a string for :func:`parse_target`.
    shm_dir
        Shm folder of local streams.
    curve_dir
        CURVE key folder for remote ones.

    Returns
    -------
    FrameSource
    """
    parsed = parse_target(target) if isinstance(target, str) else target
    if parsed.endpoint is not None:
        return RemoteSource(parsed.endpoint, parsed.name, curve_dir=curve_dir)
    return LocalSource(parsed.name, shm_dir=shm_dir)
