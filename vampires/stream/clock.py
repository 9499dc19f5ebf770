"""Time stamps of stream files: ``struct timespec`` on the C library's clock.

The C library stamps ``creationtime``, ``writetime`` and ``atime`` with
``CLOCK_ISIO``, which is ``CLOCK_TAI`` on Linux. ``CLOCK_TAI`` runs ahead of
UTC by the kernel's TAI offset: 0 s unless something (chrony, ptp4l, ntpd)
set it, 37 s when it is set correctly. We write the same clock so C and
Python writers agree, and our API speaks float unix seconds UTC: every
conversion subtracts (or adds) the offset measured at that moment with
``time.clock_gettime(CLOCK_TAI) - time.clock_gettime(CLOCK_REALTIME)``,
rounded to whole seconds (the kernel offset is an integer). Where
``CLOCK_TAI`` does not exist the C library uses ``CLOCK_REALTIME`` and so
do we (offset 0).
"""

from __future__ import annotations

import time

__all__ = ["now_ns", "tai_offset_ns", "to_timespec", "to_unix"]

_NS = 1_000_000_000


def _clock() -> int:
    return getattr(time, "CLOCK_TAI", time.CLOCK_REALTIME)


def now_ns() -> int:
    """Return now on the stream clock (``CLOCK_TAI`` where it exists), in ns.

    Returns
    -------
    int
    """
    return time.clock_gettime_ns(_clock())


def tai_offset_ns() -> int:
    """Return the current stream-clock minus UTC offset, whole seconds in ns.

    Returns
    -------
    int
        0 when ``CLOCK_TAI`` is absent or the kernel TAI offset is unset.
    """
    clock = _clock()
    if clock == time.CLOCK_REALTIME:
        return 0
    diff = time.clock_gettime_ns(clock) - time.clock_gettime_ns(time.CLOCK_REALTIME)
    return round(diff / _NS) * _NS


def to_unix(sec: int, nsec: int, offset_ns: int | None = None) -> float:
    """Convert a ``timespec`` on the stream clock to float unix seconds UTC.

    Parameters
    ----------
    sec, nsec
        The ``tv_sec`` and ``tv_nsec`` fields.
    offset_ns
        Stream clock minus UTC; measured now when omitted.

    Returns
    -------
    float
        0.0 for an unset (all-zero) stamp.
    """
    if sec == 0 and nsec == 0:
        return 0.0
    off = tai_offset_ns() if offset_ns is None else offset_ns
    return float(int(sec) - off // _NS) + int(nsec) / _NS


def to_timespec(unix: float, offset_ns: int | None = None) -> tuple[int, int]:
    """Convert float unix seconds UTC to a ``timespec`` on the stream clock.

    Parameters
    ----------
    unix
        Seconds since 1970-01-01 UTC.
    offset_ns
        Stream clock minus UTC; measured now when omitted.

    Returns
    -------
    tuple of int
        ``(tv_sec, tv_nsec)`` with ``0 <= tv_nsec < 1e9``.
    """
    off = tai_offset_ns() if offset_ns is None else offset_ns
    total = round(unix * _NS) + off
    return divmod(total, _NS)
