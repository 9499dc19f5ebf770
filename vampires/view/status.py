"""The viewer's status line: counters, rates, camera keywords and the logger's state.

:class:`StatusLine` is a value built from what the viewer knows (the last
frame's counter and keywords, measured rates, the logger's last status
reply); :meth:`StatusLine.text` is the one line shown under the image.
:class:`LoggerWatch` asks the stream's logger daemon for its status once a
second in a thread, so a slow or dead daemon never delays a frame.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from vampires._checks import ShmDir

__all__ = ["LoggerWatch", "RateMeter", "StatusLine", "describe_logger"]

logger = logging.getLogger(__name__)


class RateMeter:
    """Frames per second over a sliding window.

    Parameters
    ----------
    window
        Seconds of history.
    """

    def __init__(self, window: float = 2.0) -> None:
        self._window = window
        self._points: collections.deque[tuple[float, int]] = collections.deque()

    def add(self, t: float, count: int) -> None:
        """Record that the counter was ``count`` at time ``t`` (seconds)."""
        points = self._points
        if points and (count < points[-1][1] or t < points[-1][0]):
            points.clear()  # counter or clock went back: a new stream
        points.append((t, count))
        while len(points) > 2 and t - points[0][0] > self._window:
            points.popleft()

    @property
    def rate(self) -> float:
        """Counts per second over the window (0 with fewer than two points)."""
        if len(self._points) < 2:
            return 0.0
        (t0, c0), (t1, c1) = self._points[0], self._points[-1]
        return (c1 - c0) / (t1 - t0) if t1 > t0 else 0.0

    def clear(self) -> None:
        """Forget the history."""
        self._points.clear()


def describe_logger(reply: Mapping[str, Any] | None, status: str, error: str | None) -> str:
    """One short text for a logger's status reply.

    Parameters
    ----------
    reply
        The daemon's reply to ``status`` (None without one).
    status
        The call's status (``ok``, ``not-running``, ``timeout``, ``error``).
    error
        The call's error text.

    Returns
    -------
    str
        ``saving vcam1_12:00:00.1.fits, 0 dropped``, ``idle``, ``not running`` ...
    """
    if status == "not-running":
        return "not running"
    if reply is None:
        return status if not error else f"{status} ({error})"
    state = str(reply.get("state", "?"))
    st = reply.get("logger") or {}
    if not isinstance(st, Mapping):
        return state
    if st.get("error"):
        return f"{state}, ERROR: {st['error']}"
    parts = [state]
    current = st.get("current_file")
    if current:
        parts.append(Path(str(current)).name)
    dropped = st.get("dropped")
    if isinstance(dropped, int):
        parts.append(f"{dropped} dropped")
    return ", ".join(parts)


def _fmt_exptime(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "?"
    if value >= 1:
        return f"{value:.4g} s"
    if value >= 1e-3:
        return f"{value * 1e3:.4g} ms"
    return f"{value * 1e6:.4g} us"


@attrs.frozen(kw_only=True)
class StatusLine:
    """What the status line says about one stream.

    Attributes
    ----------
    name
        Stream (or ``endpoint/stream``) shown.
    cnt0
        Frame counter of the frame shown, None before the first.
    stream_fps
        Frame rate of the stream (counter over acquisition time) [Hz].
    shown_fps
        Frames displayed per second.
    exptime
        ``EXPTIME`` [s], None if absent.
    data_type, crop, readout
        ``DATA-TYP``, ``_CROP`` (``CUSTOM`` when absent), ``U_DETMOD``.
    logger
        The logger's state (:func:`describe_logger`).
    paused
        Display paused.
    dark
        Name of the dark subtracted, or None.
    message
        The source's state (waiting, publisher gone ...), empty when fine.
    """

    name: str
    cnt0: int | None = None
    stream_fps: float = 0.0
    shown_fps: float = 0.0
    exptime: float | None = None
    data_type: str = "?"
    crop: str = "?"
    readout: str = "?"
    logger: str = "?"
    paused: bool = False
    dark: str | None = None
    message: str = ""

    @classmethod
    def from_keywords(cls, name: str, keywords: Mapping[str, Any], **fields: Any) -> StatusLine:  # noqa: ANN401
        """Build a status line taking EXPTIME, DATA-TYP, _CROP and U_DETMOD from keywords.

        Parameters
        ----------
        name
            Stream shown.
        keywords
            The stream keywords ``{name: value}``.
        **fields
            The other attributes.

        Returns
        -------
        StatusLine
        """
        exptime = keywords.get("EXPTIME")
        ok = isinstance(exptime, int | float) and not isinstance(exptime, bool)
        return cls(
            name=name,
            exptime=float(exptime) if ok and exptime is not None else None,
            data_type=str(keywords.get("DATA-TYP", "?")),
            crop=str(keywords.get("_CROP", "CUSTOM" if keywords else "?")),
            readout=str(keywords.get("U_DETMOD", "?")),
            **fields,
        )

    def text(self, *, message: bool = True) -> str:
        """Return the line shown under the image.

        Parameters
        ----------
        message
            Append :attr:`message` (the window shows it over the image instead).

        Returns
        -------
        str
        """
        if self.cnt0 is None:
            head = f"{self.name}  no frame yet"
        else:
            head = (
                f"{self.name}  #{self.cnt0}  {self.stream_fps:.1f} fps (shown {self.shown_fps:.1f})"
            )
        parts = [
            head,
            f"EXPTIME {_fmt_exptime(self.exptime) if self.exptime is not None else '?'}",
            f"DATA-TYP {self.data_type}",
            f"crop {self.crop}",
            f"readout {self.readout}",
            f"logger {self.logger}",
        ]
        if self.dark:
            parts.append(f"dark {self.dark}")
        if self.paused:
            parts.append("PAUSED")
        if self.message and message:
            parts.append(self.message)
        return "  |  ".join(parts)


class LoggerWatch:
    """Poll a stream's logger daemon for its status in a background thread.

    Parameters
    ----------
    name
        Stream (= logger) name.
    period
        Seconds between requests.
    shm_dir
        Shm folder of the control sockets.
    """

    def __init__(self, name: str, *, period: float = 1.0, shm_dir: ShmDir = None) -> None:
        self._name = name
        self._period = period
        self._shm_dir = shm_dir
        self._stop = threading.Event()
        self.text = "?"
        self._thread = threading.Thread(target=self._run, name=f"view-log-{name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from vampires.errors import VampiresError
        from vampires.fitslog.remote import LoggerGroup

        shm_dir = Path(self._shm_dir) if self._shm_dir is not None else None
        group = LoggerGroup([self._name], timeout=0.5, shm_dir=shm_dir)
        while not self._stop.is_set():
            try:
                result = group.status().results[0]
                self.text = describe_logger(result.reply, result.status, result.error)
            except VampiresError as exc:
                self.text = f"unknown ({exc})"
            self._stop.wait(self._period)

    def close(self) -> None:
        """Stop polling (idempotent)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
