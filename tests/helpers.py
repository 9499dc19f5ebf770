"""Helpers shared by the test modules (import as ``from tests.helpers import ...``).

Test modules never import from each other: what two of them need lives here.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np
import pytest

if TYPE_CHECKING:
    from vampires.fitslog.logger import Logger
    from vampires.fitslog.status import LoggerStatus
    from vampires.fitslog.writer import CubeJob
    from vampires.stream import Stream

T = TypeVar("T")


def wait_for(
    predicate: Callable[[], T | Literal[False] | None],
    timeout: float = 10.0,
    what: str = "condition",
    interval: float = 0.02,
) -> T:
    """Poll ``predicate`` until it returns a true value, and return that value.

    Fails the test with ``what`` in the message after ``timeout`` seconds.
    Polling (not sleeping a fixed time) keeps tests right on a busy machine.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def free_port() -> int:
    """A TCP port free right now on 127.0.0.1 (tiny race, fine for tests)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---- FITS logging (tests/fitslog): frames that tell their counter, cubes, jobs

#: Frame shape of the ``stream`` fixture of tests/fitslog.
LOG_SHAPE = (24, 20)


def frame_for(cnt0: int, shape: tuple[int, ...] = LOG_SHAPE) -> np.ndarray:
    """Deterministic frame: its pixels tell which counter it was published at."""
    return (
        ((np.arange(shape[0] * shape[1], dtype=np.int64) * 13 + cnt0 * 101) % 65536)
        .astype(np.uint16)
        .reshape(shape)
    )


def publish_lockstep(stream: Stream, log: Logger, n: int, **write_kw: Any) -> None:
    """Write n frames, each only once the logger took the previous one (no drops)."""
    from vampires.fitslog.status import LoggerState

    for _ in range(n):
        before = log.status()
        stream.write(frame_for(stream.cnt0 + 1, stream.shape), **write_kw)

        def taken(b: LoggerStatus = before) -> bool:
            now = log.status()
            return now.frames + now.dropped > b.frames + b.dropped or now.state == LoggerState.IDLE

        wait_for(taken, what="the logger to take the frame", interval=0.002)


def cubes_in(root: Path) -> list[Path]:
    """The cubes under ``root``, in the order they were started."""
    from astropy.io import fits

    return sorted(root.rglob("*.fits"), key=lambda p: fits.getheader(p)["MJD-STR"])


def check_frames_match_sidecar(
    check_cube: Callable[..., Any], path: Path, **kw: Any
) -> tuple[Any, Any, Any]:
    """Run the ``check_cube`` fixture on ``path``; each frame is the one of its sidecar row."""
    data, header, times = check_cube(path, **kw)
    shape = data.shape[1:]
    for k, cnt0 in enumerate(times.cnt0):
        assert np.array_equal(data[k], frame_for(int(cnt0), shape)), (path.name, k)
    return data, header, times


def frames_u16(n: int, shape: tuple[int, int] = (13, 17), seed: int = 0) -> np.ndarray:
    """``n`` random uint16 frames."""
    return np.random.default_rng(seed).integers(0, 65536, (n, *shape), dtype=np.uint16)


def make_job(folder: Path, frames: np.ndarray, *, t0: float | None = None, **kw: Any) -> CubeJob:
    """A cube job of ``frames`` (converted to FITS storage), 10 ms apart from ``t0``."""
    from vampires.fitslog.sidecar import FrameTimes
    from vampires.fitslog.writer import CubeJob
    from vampires.kernels import fits_format, frame_to_fits

    fmt = fits_format(frames.dtype)
    cube = np.empty(frames.shape, fmt.disk)
    for k, frame in enumerate(frames):
        frame_to_fits(frame, cube[k])
    n = len(frames)
    t0 = time.time() if t0 is None else t0
    times = FrameTimes(
        cnt0=np.arange(100, 100 + n, dtype=np.int64),
        cnt1=np.zeros(n, np.int64),
        logger_time=np.asarray(t0 + 0.01 * np.arange(n) + 1e-4, np.float64),
        acquisition_time=np.asarray(t0 + 0.01 * np.arange(n), np.float64),
    )
    return CubeJob(
        stream=kw.pop("stream", "vcam1"),
        folder=folder,
        cube=cube,
        nframes=n,
        fmt=fmt,
        times=times,
        stream_cards=(("EXPTIME", 0.01, "[s]"), ("EXTTRIG", True, ""), ("DATA-TYP", "OBJECT", "")),
        **kw,
    )
