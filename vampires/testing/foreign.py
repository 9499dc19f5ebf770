"""A writer from another program: maps a stream file on its own, as C code or pyMilk does.

Tests and benchmarks use it to write a stream the way :class:`vampires.Stream`
never does, through nothing but the file (``stream.path``) and its byte layout
(``stream.layout``, :mod:`vampires.stream.layout`):

- :meth:`ForeignWriter.write_pymilk`: pyMilk's ``set_data`` order, the
  semaphores posted *before* ``cnt0`` moves;
- :meth:`ForeignWriter.publish_prefilled_slot`: a camera whose frame grabber
  writes into the circular-buffer slots by DMA (no CPU copy): the next slot is
  published with its pixels as they are. The main pixel array is *not*
  updated, so this is a way to measure a reader or a link alone (as a raw
  socket is measured), not to publish frames for real readers.

::

    with ForeignWriter(stream) as writer:
        writer.publish_prefilled_slot(acquisition_time=time.time())
"""

from __future__ import annotations

import contextlib
import mmap
import os
import time
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from vampires.errors import StreamClosedError, StreamError
from vampires.stream import clock
from vampires.stream.layout import (
    CBFRAMEMD_DTYPE,
    METADATA_DTYPE,
    PID_SIZE,
    SEM_SIZE,
    SEMAPHORE_MAXVAL,
)
from vampires.stream.sem import Semaphore

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from vampires.stream import Stream

__all__ = ["ForeignWriter", "publish_prefilled_slot"]


class ForeignWriter:
    """Write a stream through a mapping of its file of its own (a context manager).

    Parameters
    ----------
    stream
        An open stream: its path, layout, shape and dtype say what to map.
    """

    def __init__(self, stream: Stream) -> None:
        layout = stream.layout
        self._name = stream.name
        self._cbsize = layout.cbsize
        fd = os.open(stream.path, os.O_RDWR | os.O_CLOEXEC)
        try:
            self._mm: mmap.mmap | None = mmap.mmap(fd, layout.total)
        finally:
            os.close(fd)
        root = np.frombuffer(self._mm, dtype=np.uint8)
        nsem = layout.nsemaphores

        def at(offset: int, nbytes: int) -> NDArray[np.uint8]:
            return root[offset : offset + nbytes]

        self._md: NDArray[np.void] = at(0, METADATA_DTYPE.itemsize).view(METADATA_DTYPE)
        self._data: NDArray[Any] = (
            at(layout.data, layout.imdatamemsize).view(stream.dtype).reshape(stream.shape)
        )
        self._cbmd: NDArray[np.void] = at(
            layout.cbframemd, CBFRAMEMD_DTYPE.itemsize * layout.cbsize
        ).view(CBFRAMEMD_DTYPE)
        self._write_pid: NDArray[np.int32] = at(layout.sem_write_pid, PID_SIZE * nsem).view("<i4")
        base = int(root.ctypes.data)
        self._sems = tuple(
            Semaphore(base + layout.semaphores + i * SEM_SIZE, f"stream {self._name!r} sem {i}")
            for i in range(nsem)
        )
        self._semlog = Semaphore(base + layout.semlog, f"stream {self._name!r} semlog")
        self._root: NDArray[np.uint8] | None = root

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Drop the mapping (idempotent)."""
        if self._root is None:
            return
        self._root = None
        # drop every view before the mapping (the semaphores are never used again)
        empty = np.zeros(0, dtype=np.uint8)
        self._md = empty.view(METADATA_DTYPE)
        self._data = empty
        self._cbmd = empty.view(CBFRAMEMD_DTYPE)
        self._write_pid = empty.view("<i4")
        mm, self._mm = self._mm, None
        if mm is not None:
            with contextlib.suppress(BufferError):
                mm.close()

    def _check_open(self) -> None:
        if self._root is None:
            msg = f"writer of stream {self._name!r} is closed"
            raise StreamClosedError(msg)

    def _post(self) -> None:
        """Post every semaphore below ``SEMAPHORE_MAXVAL`` (our PID in semWritePID), and semlog."""
        pid = os.getpid()
        for i, sem in enumerate(self._sems):
            if sem.value() < SEMAPHORE_MAXVAL:
                sem.post()
                self._write_pid[i] = pid
        if self._semlog.value() < SEMAPHORE_MAXVAL:
            self._semlog.post()

    def write_pymilk(self, frame: NDArray[Any]) -> int:
        """Publish ``frame`` in pyMilk's ``set_data`` order: pixels, semaphores, then counters.

        Returns
        -------
        int
            The new ``cnt0``.
        """
        self._check_open()
        md = self._md
        md["write"] = 1
        np.copyto(self._data, frame, casting="safe")
        md["write"] = 0
        self._post()
        now = divmod(time.time_ns(), 1_000_000_000)
        md["writetime"] = now
        md["atime"] = now
        cnt0 = int(md["cnt0"][0]) + 1
        md["cnt0"] = cnt0
        return cnt0

    def publish_prefilled_slot(self, acquisition_time: float | None = None) -> int:
        """Publish the next circular-buffer slot's pixels as they are, with no copy at all.

        ImageStreamIO's order (write flag, slot metadata and times, counters,
        write flag cleared, semaphores posted), as :meth:`vampires.Stream.write`
        does, minus the pixel copies.

        Parameters
        ----------
        acquisition_time
            Unix seconds UTC; defaults to the write time.

        Returns
        -------
        int
            The new ``cnt0``.

        Raises
        ------
        StreamError
            The stream has no circular buffer.
        """
        self._check_open()
        if not self._cbsize:
            msg = f"stream {self._name!r} has no circular buffer"
            raise StreamError(msg)
        md, cbmd = self._md, self._cbmd
        md["write"] = 1
        cnt0 = int(md["cnt0"][0]) + 1
        cnt1 = int(md["cnt1"][0])
        wsec, wnsec = divmod(clock.now_ns(), 1_000_000_000)
        atime = (
            (wsec, wnsec)
            if acquisition_time is None
            else clock.to_timespec(float(acquisition_time))
        )
        slot = int(md["CBindex"][0]) + 1
        if slot >= self._cbsize:
            slot = 0
            md["CBcycle"] += 1
        entry = cbmd[slot : slot + 1]
        entry["cnt0"] = 0  # invalid while the slot is "rewritten"
        entry["cnt0"] = cnt0
        entry["cnt1"] = cnt1
        entry["atime"] = atime
        entry["writetime"] = (wsec, wnsec)
        md["CBindex"] = slot
        md["writetime"] = (wsec, wnsec)
        md["atime"] = atime
        md["cnt1"] = cnt1
        md["cnt0"] = cnt0
        md["write"] = 0
        self._post()
        return cnt0


def publish_prefilled_slot(stream: Stream, acquisition_time: float | None = None) -> int:
    """Publish the next slot of ``stream`` as it is, once (see :class:`ForeignWriter`).

    Parameters
    ----------
    stream
        An open stream with a circular buffer.
    acquisition_time
        Unix seconds UTC; defaults to the write time.

    Returns
    -------
    int
        The new ``cnt0``.
    """
    with ForeignWriter(stream) as writer:
        return writer.publish_prefilled_slot(acquisition_time)
