"""What a link reports: :class:`LinkStatus`, and the counters a link thread keeps for it."""

from __future__ import annotations

import collections
import threading
import time
from typing import Any

import attrs

__all__ = ["LinkCounters", "LinkStatus"]

_RATE_WINDOW_S = 2.0
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
