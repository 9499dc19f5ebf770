"""The writer thread of a logger: cubes from the reader thread to disk.

The reader thread (:class:`~vampires.fitslog.logger.Logger`) puts messages on
a queue; :class:`WriterLoop` takes them one by one:

``("open", cube, job)``
    A cube got its first frame: create its ``.fits.tmp`` and stream the
    frames taken to it as they come (every ``flush_interval / 2`` or 64 MiB).
``("close", job, buffer, uid, run)``
    A cube closed: write the rest, rewrite the header, rename, give the
    buffer back to the pool, count what is in no file.
``"prepare"`` (:data:`PREPARE`)
    Fill the buffer pool for the current stream and policy.
``None``
    Stop (after flushing the cube being filled, if the reader left one open).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeAlias

import attrs

if TYPE_CHECKING:
    from vampires.fitslog.buffers import BufferPool, CubeBuffer
    from vampires.fitslog.cube import FillingCube
    from vampires.fitslog.status import RunCounts
    from vampires.fitslog.writer import CubeJob, CubeWriter, OpenCube, WrittenCube

__all__ = ["PREPARE", "Jobs", "WriterLoop"]

logger = logging.getLogger(__name__)

#: Writer-queue message: fill the buffer pool for the current stream.
PREPARE = "prepare"
#: The writer queue (messages in the module docstring).
Jobs: TypeAlias = "queue.Queue[tuple[Any, ...] | str | None]"

_FLUSH_POLL = 0.1  # s: how often the writer looks at the cube being filled
_FLUSH_BYTES = 64 * 1024 * 1024  # flush the cube being filled when this much waits in RAM


class WriterLoop:
    """The writer-thread side of a logger (its :meth:`run` is the thread's target).

    Parameters
    ----------
    name
        Stream name (for log messages).
    jobs
        The queue the reader thread fills.
    writer
        Writes the cubes.
    pool
        Where written cubes' buffers go back.
    counts
        Shared counters, guarded by ``changed``'s lock (notified when a cube is done).
    changed
        The logger's condition.
    prepare
        Fills the buffer pool (on :data:`PREPARE`).
    renice
        Sets this thread's nice value relative to the logger's (called with 5).
    """

    def __init__(
        self,
        name: str,
        *,
        jobs: Jobs,
        writer: CubeWriter,
        pool: BufferPool,
        counts: RunCounts,
        changed: threading.Condition,
        prepare: Callable[[], None],
        renice: Callable[[int], None],
    ) -> None:
        self._name = name
        self._jobs = jobs
        self._writer = writer
        self._pool = pool
        self._counts = counts
        self._changed = changed
        self._prepare = prepare
        self._renice = renice

    def run(self) -> None:
        """Take messages until ``None`` (the thread's body)."""
        self._renice(5)  # below the reader: acquisition never waits on the disk (milk's inversion)
        live: tuple[FillingCube, OpenCube] | None = None
        carry, run = 0, 0  # frames of failed writes, for the LOGDROP of the next cube written
        while True:
            try:
                item = self._jobs.get(timeout=_FLUSH_POLL if live is not None else None)
            except queue.Empty:
                item = ()
            if item is None:
                if live is not None:  # the reader did not close it (close() timed out)
                    self._flush_live(live, force=True)
                    live[1].close_files()
                return
            if isinstance(item, str):
                self._prepare()
            elif item and item[0] == "open":
                _, cube, opening = item
                # an error is reported when the cube closes, with its frames counted
                oc = self._writer.open(opening, sync_interval=cube.sync_interval)
                live = (cube, oc)
                with self._changed:
                    self._counts.on_disk_frames = 0
            elif item and item[0] == "close":
                _, job, buffer, uid, job_run = item
                if job_run != run:
                    carry, run = 0, job_run
                oc = None
                if live is not None and live[0].uid == uid:
                    oc, live = live[1], None
                if carry:
                    job = attrs.evolve(job, dropped_before=job.dropped_before + carry)
                written = self._finish(job, buffer, oc)
                kept = written.frames if written is not None else 0
                carry = job.nframes - kept  # frames of this cube in no file
                if written is None or written.path is None:  # its LOGDROP landed nowhere
                    carry += job.dropped_before
            if live is not None:
                self._flush_live(live)

    def _flush_live(self, live: tuple[FillingCube, OpenCube], *, force: bool = False) -> None:
        """Flush the cube being filled when a frame waited half the flush interval, or 64 MiB."""
        cube, oc = live
        with self._changed:
            n = cube.n
        now = time.monotonic()
        waiting = n * oc.frame_bytes > oc.on_disk or n > oc.rows
        if waiting and oc.pending_since is None:
            oc.pending_since = now
        timed = oc.pending_since is not None and now - oc.pending_since >= cube.flush_interval / 2
        big = n * oc.frame_bytes - oc.aligned >= _FLUSH_BYTES
        # written but not yet fdatasync'ed: flush (and sync) once the sync period is over,
        # not at every poll (that made small writes every 0.1 s, 0.54 x the disk's rate)
        sync_due = (
            oc.unsynced and oc.sync_interval is not None and now - oc.last_sync >= oc.sync_interval
        )
        if not (force or timed or big or sync_due):
            return
        written = self._writer.flush(oc, n, tail=force or timed)
        if oc.on_disk >= n * oc.frame_bytes and oc.rows >= n:
            oc.pending_since = None
        elif written:
            oc.pending_since = now  # the partial block left: its frames are recent
        with self._changed:
            self._counts.progress += written
            self._counts.on_disk_frames = oc.frames_on_disk

    def _finish(self, job: CubeJob, buffer: CubeBuffer, oc: OpenCube | None) -> WrittenCube | None:
        result: WrittenCube | None = None
        try:
            # never opened (should not happen): written at once
            result = self._writer.write(job) if oc is None else self._writer.finish(oc, job)
            error = result.error
        except Exception as exc:
            logger.exception("logger %s: writer error", self._name)
            error = f"writer error: {exc}"
            if oc is not None:
                oc.close_files()
        self._pool.give_back(buffer, result.header_bytes if result is not None else 0)
        lost = job.nframes - (result.frames if result is not None else 0)
        with self._changed:
            self._counts.cube_done(result, lost, error)
            self._changed.notify_all()
        return result
