"""Pieces shared by the TCP and ZMQ links: counters, status, back-off, endpoints."""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

from vampires._checks import check_int, is_number
from vampires.errors import ConfigError, ProtocolError, StreamError
from vampires.link.protocol import validate_stream_name

if TYPE_CHECKING:
    from vampires.stream import Stream

__all__ = [
    "Backoff",
    "LinkCounters",
    "LinkStatus",
    "check_stream_name",
    "parse_count",
    "parse_host_port",
    "parse_port",
    "parse_seconds",
    "wait_for_stream",
]

logger = logging.getLogger(__name__)

_RATE_WINDOW_S = 2.0
#: wait_for_stream says it still waits after this many seconds, then at doubling intervals.
WAIT_REMINDER_S = 5.0
_SAMPLE_EVERY_S = 0.1


@attrs.frozen(kw_only=True)
class LinkStatus:
    """A snapshot of a link's counters (what ``status`` answers on the control plane).

    Attributes
    ----------
    role
        ``"tcp-send"``, ``"tcp-recv"``, ``"zmq-pub"`` or ``"zmq-sub"``.
    stream
        Stream name on this side (``None`` for a receiver before its first hello).
    endpoint
        Where it sends to, listens on or connects to.
    connected
        A peer is connected (TCP); the socket is bound/connected (ZMQ).
    peer
        ``host:port`` of the connected peer, if known.
    frames
        Frames sent (sender / publisher) or published locally (receiver / subscriber).
    nbytes
        Pixel bytes moved.
    skipped
        Frames of the source stream the link did not carry: jumped over to stay
        on the newest frame (sender), dropped by the rate limit or ``every``
        (publisher), or missing between received counters (receiver).
    torn
        Frames dropped because they were overwritten while being sent.
    reconnects
        Connections lost (and re-established, or being re-established).
    malformed
        Messages that failed validation and were dropped.
    recreated
        Times the destination (or source) stream was re-created (shape change).
    rate_fps, bandwidth_mbps
        Over the last ~2 s: frames per second and megabytes (1e6) per second.
    last_cnt0
        Counter of the last frame carried, or None.
    uptime
        Seconds since the link started.
    error
        The last error seen (cleared when the link works again).
    wire_nbytes, wire_mbps
        Bytes the frames took on the wire (ZMQ: message sizes times the
        subscribers they went to) and megabits (1e6) per second of it over
        the last ~2 s; the pixel bytes on an uncompressed link.
    ratio
        Compression ratio so far: pixel bytes / bytes of the encoded frames
        (1.0 on an uncompressed link).
    """

    role: str
    stream: str | None
    endpoint: str
    connected: bool
    peer: str | None
    frames: int
    nbytes: int
    skipped: int
    torn: int
    reconnects: int
    malformed: int
    recreated: int
    rate_fps: float
    bandwidth_mbps: float
    last_cnt0: int | None
    uptime: float
    error: str | None
    wire_nbytes: int = 0
    wire_mbps: float = 0.0
    ratio: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        """Return the snapshot as a JSON-ready dict.

        Returns
        -------
        dict
        """
        return attrs.asdict(self)

    def line(self) -> str:
        """Return a one-line human summary.

        Returns
        -------
        str
        """
        state = "connected" if self.connected else "waiting"
        return (
            f"{self.role} {self.stream or '?'} {self.endpoint} {state}"
            f"{' to ' + self.peer if self.peer else ''}: {self.frames} frames, "
            f"{self.rate_fps:.1f} fps, {self.bandwidth_mbps:.1f} MB/s, skipped {self.skipped}, "
            f"torn {self.torn}, reconnects {self.reconnects}, malformed {self.malformed}"
            f"{self._wire_summary()}{', error: ' + self.error if self.error else ''}"
        )

    def _wire_summary(self) -> str:
        if not self.role.startswith("zmq"):
            return ""
        return f", ratio {self.ratio:.2f}, {self.wire_mbps:.1f} Mbps on the wire"


class LinkCounters:
    """Counters a link thread updates and any thread snapshots.

    Parameters
    ----------
    role
        The link role (see :class:`LinkStatus`).
    endpoint
        The link's endpoint, for the status.
    stream
        Stream name on this side, if known yet.
    """

    def __init__(self, role: str, endpoint: str, stream: str | None = None) -> None:
        self.role = role
        self.endpoint = endpoint
        self.stream = stream
        self.connected = False
        self.peer: str | None = None
        self.frames = 0
        self.nbytes = 0
        self.skipped = 0
        self.torn = 0
        self.reconnects = 0
        self.malformed = 0
        self.recreated = 0
        self.last_cnt0: int | None = None
        self.error: str | None = None
        self.wire_nbytes = 0
        self._payload = 0
        self._payload_pixels = 0
        self._lock = threading.Lock()
        self._start = time.monotonic()
        self._samples: collections.deque[tuple[float, int, int, int]] = collections.deque(maxlen=64)
        self._samples.append((self._start, 0, 0, 0))

    def frame(
        self,
        nbytes: int,
        cnt0: int | None = None,
        *,
        wire_nbytes: int | None = None,
        payload_nbytes: int | None = None,
    ) -> None:
        """Count one frame carried.

        Parameters
        ----------
        nbytes
            Pixel bytes.
        cnt0
            Its counter.
        wire_nbytes
            Bytes it took on the wire (all copies); default ``nbytes``.
        payload_nbytes
            Bytes of the encoded (compressed) frame; default ``nbytes``; 0 when
            the frame reached nobody (left out of the ratio).
        """
        with self._lock:
            self.frames += 1
            self.nbytes += nbytes
            self.wire_nbytes += nbytes if wire_nbytes is None else wire_nbytes
            payload = nbytes if payload_nbytes is None else payload_nbytes
            if payload:
                self._payload += payload
                self._payload_pixels += nbytes
            self.last_cnt0 = cnt0
            now = time.monotonic()
            if now - self._samples[-1][0] >= _SAMPLE_EVERY_S:
                self._samples.append((now, self.frames, self.nbytes, self.wire_nbytes))

    def snapshot(self) -> LinkStatus:
        """Return the current counters and rates.

        Returns
        -------
        LinkStatus
        """
        with self._lock:
            now = time.monotonic()
            # oldest sample inside the window; if the link went idle, the newest one
            old = self._samples[-1]
            for sample in self._samples:
                if now - sample[0] <= _RATE_WINDOW_S:
                    old = sample
                    break
            span = now - old[0]
            rate = (self.frames - old[1]) / span if span > 0 else 0.0
            bandwidth = (self.nbytes - old[2]) / span / 1e6 if span > 0 else 0.0
            wire = (self.wire_nbytes - old[3]) * 8 / span / 1e6 if span > 0 else 0.0
            return LinkStatus(
                role=self.role,
                stream=self.stream,
                endpoint=self.endpoint,
                connected=self.connected,
                peer=self.peer,
                frames=self.frames,
                nbytes=self.nbytes,
                skipped=self.skipped,
                torn=self.torn,
                reconnects=self.reconnects,
                malformed=self.malformed,
                recreated=self.recreated,
                rate_fps=rate,
                bandwidth_mbps=bandwidth,
                last_cnt0=self.last_cnt0,
                uptime=now - self._start,
                error=self.error,
                wire_nbytes=self.wire_nbytes,
                wire_mbps=wire,
                ratio=self._payload_pixels / self._payload if self._payload else 1.0,
            )


class Backoff:
    """Exponential back-off between reconnection attempts.

    Parameters
    ----------
    initial
        First delay, seconds.
    maximum
        Longest delay, seconds.
    """

    def __init__(self, initial: float = 0.05, maximum: float = 2.0) -> None:
        self.initial = initial
        self.maximum = maximum
        self._next = initial

    def wait(self, stop: threading.Event) -> bool:
        """Sleep the current delay (or until ``stop``) and double it.

        Parameters
        ----------
        stop
            Ends the wait early.

        Returns
        -------
        bool
            True when ``stop`` is set.
        """
        delay = self._next
        self._next = min(self._next * 2, self.maximum)
        return stop.wait(delay)

    def reset(self) -> None:
        """Start again from the initial delay (after a success)."""
        self._next = self.initial


def check_stream_name(name: object, what: str) -> str:
    """Validate a stream name given to a link's constructor.

    Raises
    ------
    ConfigError
        Not a valid stream name (the wire format's rules).
    """
    try:
        return validate_stream_name(name, what=what)
    except ProtocolError as exc:
        raise ConfigError(str(exc)) from None


def wait_for_stream(
    name: str,
    shm_dir: Path | None,
    stop: threading.Event,
    counters: LinkCounters,
    *,
    backoff: Backoff,
) -> Stream | None:
    """Open stream ``name``, retrying with ``backoff`` until it exists or ``stop`` is set.

    The first failure is logged once and every failure is shown in the link's
    status (``counters.error``).

    Returns
    -------
    Stream or None
        The open stream; None when stopped first.
    """
    from vampires.stream import Stream

    started = time.monotonic()
    remind = 0.0  # log at once, then after 5, 10, 20, 40, 60, 60 ... s
    while not stop.is_set():
        try:
            return Stream.open(name, shm_dir=shm_dir)
        except StreamError as exc:
            counters.error = f"stream {name}: {exc}"
            waited = time.monotonic() - started
            if waited >= remind:
                what = "waiting" if remind == 0 else f"still waiting after {waited:.0f} s"
                logger.warning(
                    "%s: %s for stream %s (%s)",
                    counters.role,
                    what,
                    name,
                    exc,
                )
                remind = min(max(remind * 2, WAIT_REMINDER_S), remind + 60.0)
            backoff.wait(stop)
    return None


def parse_count(value: object, what: str, *, minimum: int = 1) -> int:
    """Check an integer count (e.g. ``every``).

    Parameters
    ----------
    value
        Candidate integer.
    what
        How to call it in the error message.
    minimum
        Smallest accepted value.

    Returns
    -------
    int

    Raises
    ------
    ConfigError
        Not an integer, or below ``minimum``.
    """
    return check_int(value, what, minimum)


def parse_seconds(value: object, what: str, *, allow_zero: bool = False) -> float:
    """Check a duration or rate given as a number.

    Parameters
    ----------
    value
        Candidate number.
    what
        How to call it in the error message.
    allow_zero
        Accept 0 (e.g. "no rate limit").

    Returns
    -------
    float

    Raises
    ------
    ConfigError
        Not a finite number, negative, or zero when not allowed.
    """
    if not is_number(value) or not math.isfinite(float(value)):  # type: ignore[arg-type]
        msg = f"{what} must be a finite number, got {value!r}"
        raise ConfigError(msg)
    value = float(value)  # type: ignore[arg-type]
    if value < 0 or (value == 0 and not allow_zero):
        msg = f"{what} must be {'>= 0' if allow_zero else '> 0'}, got {value!r}"
        raise ConfigError(msg)
    return float(value)


def parse_port(value: object, *, what: str = "port") -> int:
    """Check a TCP port number.

    Parameters
    ----------
    value
        An int or a decimal string.
    what
        How to call it in the error message.

    Returns
    -------
    int
        0-65535 (0 lets the system choose, for tests).

    Raises
    ------
    ConfigError
        Not an integer in range.
    """
    try:
        port = int(str(value), 10)
    except ValueError:
        port = -1
    if isinstance(value, bool) or not 0 <= port <= 65535:
        msg = f"{what} must be an integer 0-65535, got {value!r}"
        raise ConfigError(msg)
    return port


def parse_host_port(value: str) -> tuple[str, int]:
    """Split ``HOST:PORT`` (``[v6addr]:PORT`` for IPv6).

    Parameters
    ----------
    value
        E.g. ``"scexao6:5001"``, ``"127.0.0.1:5001"``, ``"[::1]:5001"``.

    Returns
    -------
    tuple of (str, int)

    Raises
    ------
    ConfigError
        No port, empty host, or bad port.
    """
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        msg = f"expected HOST:PORT (e.g. scexao6:5001), got {value!r}"
        raise ConfigError(msg)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host, parse_port(port, what=f"port of {value!r}")
