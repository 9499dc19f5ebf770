"""What a logger reports: its state, a status snapshot, and the counters behind them."""

from __future__ import annotations

import collections
import enum
from pathlib import Path
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from vampires.fitslog.policy import CubePolicy
    from vampires.fitslog.writer import WrittenCube

__all__ = ["LoggerState", "LoggerStatus", "RunCounts"]

#: Causes of dropped frames, as ``LoggerStatus.dropped_*`` reports them.
_CAUSES = ("late", "buffer", "disk")


class LoggerState(enum.StrEnum):
    """Observable state of a :class:`Logger`."""

    IDLE = "idle"
    PREPARING = "preparing"
    SAVING = "saving"
    FINISHING = "finishing"


@attrs.frozen(kw_only=True)
class LoggerStatus:
    """A snapshot of a logger (counters are for the current run, reset by ``start()``).

    Attributes
    ----------
    stream
        Stream name.
    state
        ``idle``, ``saving`` or ``finishing``.
    policy
        The policy used for the next cube.
    frames
        Frames copied into cubes in this run.
    files
        Cubes written in this run.
    dropped
        Frames published while saving that are in no file.
    current_file
        Name the cube being filled will get (None if none).
    folder
        Folder of the cube being filled, else of the last one written, else
        where the next one would go (None if not known yet).
    memory_bytes
        Bytes held by cube buffers.
    error
        The last problem (missing stream, disk full, ...), None when all is well.
    last_file
        The last cube written.
    attached
        True while the stream is mapped.
    frame_shape
        ``(height, width)`` of the frames, when attached.
    queued
        Cubes closed but not yet written.
    written_bytes
        Bytes written in this run.
    started
        Unix time saving was last switched on (None if never).
    write_seconds
        Time the writer spent writing cubes in this run (``written_bytes /
        write_seconds`` is the disk throughput while busy).
    on_disk_frames
        Frames of the cube being filled already in its ``.fits.tmp``.
    buffers
        Cube buffers in the pool (``buffers``, more while the writer was behind).
    dropped_late, dropped_no_buffer, dropped_disk
        ``dropped`` by cause: published while the reader thread was held up
        longer than the stream keeps a frame (counter gaps: a busy machine),
        arrived with every cube buffer still being written (the disk slower than
        the camera), or could not be written (disk full, folder unwritable).
    """

    stream: str
    state: LoggerState
    policy: CubePolicy
    frames: int = 0
    files: int = 0
    dropped: int = 0
    current_file: str | None = None
    folder: Path | None = None
    memory_bytes: int = 0
    error: str | None = None
    last_file: Path | None = None
    attached: bool = False
    frame_shape: tuple[int, int] | None = None
    queued: int = 0
    written_bytes: int = 0
    started: float | None = None
    write_seconds: float = 0.0
    on_disk_frames: int = 0
    buffers: int = 0
    dropped_late: int = 0
    dropped_no_buffer: int = 0
    dropped_disk: int = 0


@attrs.define(kw_only=True)
class RunCounts:
    """The counters a logger's reader and writer threads share (under the logger's lock).

    ``frames``, ``files``, ``dropped`` (and by cause), ``written_bytes`` and
    ``write_seconds`` are for the current run (:meth:`new_run`); the others
    follow the cubes in flight.
    """

    frames: int = 0
    files: int = 0
    dropped: int = 0
    causes: dict[str, int] = attrs.field(factory=lambda: dict.fromkeys(_CAUSES, 0))
    pending: int = 0  # cubes closed, not yet written
    closed_at: collections.deque[float] = attrs.field(factory=collections.deque)  # their times
    written_bytes: int = 0
    write_seconds: float = 0.0
    error: str | None = None
    last_file: Path | None = None
    progress: int = 0  # bytes the writer put on disk (close() waits while it moves)
    on_disk_frames: int = 0

    def new_run(self) -> None:
        """Reset the counters of a run (saving switched on)."""
        self.frames = self.files = self.dropped = self.written_bytes = 0
        self.causes = dict.fromkeys(self.causes, 0)
        self.write_seconds = 0.0

    def drop(self, n: int, cause: str) -> None:
        """Count ``n`` frames in no file, for ``cause`` (``late``, ``buffer`` or ``disk``)."""
        self.dropped += n
        self.causes[cause] += n

    def cube_done(self, result: WrittenCube | None, lost: int, error: str | None) -> None:
        """Account for a closed cube the writer finished (``lost`` of its frames in no file)."""
        self.pending -= 1
        if self.closed_at:
            self.closed_at.popleft()
        self.progress += 1
        self.on_disk_frames = 0
        if result is not None:
            self.write_seconds += result.seconds
        if result is not None and result.path is not None:
            self.files += 1
            self.last_file = result.path
            self.written_bytes += result.nbytes
        if lost > 0:  # in no file: reported in the LOGDROP of the next cube written
            self.drop(lost, "disk")
            self.frames -= lost
        self.error = error
