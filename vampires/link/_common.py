"""Pieces shared by the TCP and ZMQ links: back-off, stream waits, argument checks."""

from __future__ import annotations

import logging
import math
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from vampires._checks import check_int, is_number
from vampires.errors import ConfigError, StreamError
from vampires.stream.names import check_stream_name as _check_stream_name

if TYPE_CHECKING:
    from vampires.link.status import LinkCounters
    from vampires.stream import Stream

__all__ = [
    "Backoff",
    "check_stream_name",
    "parse_count",
    "parse_host_port",
    "parse_port",
    "parse_seconds",
    "wait_for_stream",
]

logger = logging.getLogger(__name__)

#: wait_for_stream says it still waits after this many seconds, then at doubling intervals.
WAIT_REMINDER_S = 5.0


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
        Not a valid stream name (:func:`vampires.stream.check_stream_name`).
    """
    return _check_stream_name(name, what=what, error=ConfigError)


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
