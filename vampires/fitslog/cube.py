"""The cube being filled: frames in a buffer, their counters and clocks, its keywords.

The logger's reader thread owns a :class:`FillingCube` from its first frame
to its close; the writer thread reads its first ``n`` frames meanwhile (the
opening :class:`~vampires.fitslog.writer.CubeJob` shares its live arrays). At
its close the cube freezes into a job of its own (per-frame arrays copied).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import numpy as np

from vampires.errors import StreamError
from vampires.fitslog.sidecar import FrameTimes
from vampires.fitslog.writer import CubeJob

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from vampires.fitslog.buffers import CubeBuffer
    from vampires.fitslog.header import Card
    from vampires.fitslog.policy import CubePolicy
    from vampires.kernels import FitsFormat
    from vampires.stream import Stream

__all__ = ["SPLIT_KEYS", "FillingCube"]

#: Stream keywords whose change closes the cube (every file stays homogeneous).
SPLIT_KEYS = ("EXPTIME", "DATA-TYP", "U_DETMOD", "PRD-MIN1", "PRD-MIN2", "PRD-RNG1", "PRD-RNG2")


@attrs.define(eq=False)
class FillingCube:
    """The cube being filled (reader thread; the writer reads its first ``n`` frames)."""

    uid: int
    buffer: CubeBuffer
    fmt: FitsFormat
    folder: Path
    name: str
    cards: tuple[Card, ...]
    split_values: tuple[object, ...]
    kw_version: int
    exptime: float | None
    dropped_before: int
    cnt0: NDArray[np.int64]
    cnt1: NDArray[np.int64]
    logger_time: NDArray[np.float64]
    acquisition_time: NDArray[np.float64]
    flush_interval: float = 1.0
    sync_interval: float | None = 0.0
    run: int = 0
    n: int = 0
    dropped_inside: int = 0

    @classmethod
    def empty(
        cls,
        *,
        uid: int,
        buffer: CubeBuffer,
        fmt: FitsFormat,
        policy: CubePolicy,
        run: int,
        dropped_before: int,
    ) -> FillingCube:
        """Return a cube with no frame yet in ``buffer`` (folder and name come with frame 1)."""
        capacity = int(buffer.cube.shape[0])
        return cls(
            uid=uid,
            flush_interval=policy.flush_interval,
            sync_interval=policy.sync_interval,
            run=run,
            buffer=buffer,
            fmt=fmt,
            folder=Path(),
            name="",
            cards=(),
            split_values=(),
            kw_version=0,
            exptime=None,
            dropped_before=dropped_before,
            cnt0=np.zeros(capacity, np.int64),
            cnt1=np.zeros(capacity, np.int64),
            logger_time=np.zeros(capacity, np.float64),
            acquisition_time=np.zeros(capacity, np.float64),
        )

    @property
    def capacity(self) -> int:
        """Frames the cube holds when full."""
        return int(self.buffer.cube.shape[0])

    def times(self) -> FrameTimes:
        """Return the live per-frame arrays (the first ``n`` are final)."""
        return FrameTimes(
            cnt0=self.cnt0,
            cnt1=self.cnt1,
            logger_time=self.logger_time,
            acquisition_time=self.acquisition_time,
        )

    def take_keywords(self, cards: tuple[Card, ...], version: int) -> None:
        """Keep the stream keywords of the cube's first frame (and the values that split)."""
        values = {c[0]: c[1] for c in cards}
        exptime = values.get("EXPTIME")
        self.cards = cards
        self.kw_version = version
        self.split_values = tuple(values.get(k) for k in SPLIT_KEYS)
        self.exptime = (
            float(exptime)
            if isinstance(exptime, int | float) and not isinstance(exptime, bool)
            else None
        )

    def changed_split_keys(self, stream: Stream) -> list[str]:
        """Return the :data:`SPLIT_KEYS` whose value changed since the first frame (or [])."""
        try:
            version = stream.keywords.version
            if version == self.kw_version:
                return []
            self.kw_version = version
            values = tuple(stream.keywords.get(k) for k in SPLIT_KEYS)
        except StreamError:
            return []
        if values == self.split_values:
            return []
        return [k for k, a, b in zip(SPLIT_KEYS, self.split_values, values, strict=True) if a != b]

    def time_source(self, wanted: str) -> str:
        """Return the time source of the cube's names and cards (``wanted`` if it has one)."""
        if wanted == "acquisition" and self.acquisition_time[0] > 0:
            return "acquisition"
        return "logger"

    def opening_job(self, stream: str, index: int, time_source: str) -> CubeJob:
        """Return the cube as it opens: whole buffer, planned NAXIS3, live per-frame arrays."""
        return CubeJob(
            stream=stream,
            folder=self.folder,
            cube=self.buffer.cube,
            nframes=self.capacity,
            fmt=self.fmt,
            times=self.times(),
            stream_cards=self.cards,
            index=index,
            dropped_before=self.dropped_before,
            close_reason="writing",
            time_source=self.time_source(time_source),
        )

    def closing_job(self, stream: str, index: int, reason: str, time_source: str) -> CubeJob:
        """Return the closed cube: its ``n`` frames, per-frame arrays copied."""
        n = self.n
        return CubeJob(
            stream=stream,
            folder=self.folder,
            cube=self.buffer.cube,
            nframes=n,
            fmt=self.fmt,
            times=FrameTimes(
                cnt0=self.cnt0[:n].copy(),
                cnt1=self.cnt1[:n].copy(),
                logger_time=self.logger_time[:n].copy(),
                acquisition_time=self.acquisition_time[:n].copy(),
            ),
            stream_cards=self.cards,
            index=index,
            dropped_before=self.dropped_before,
            dropped_inside=self.dropped_inside,
            close_reason=reason,
            time_source=self.time_source(time_source),
        )
