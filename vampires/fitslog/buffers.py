"""The logger's cube buffers: one pool per logger, reused cube after cube.

A :class:`BufferPool` holds ``size`` :class:`CubeBuffer` (more, up to
``max_size``, while the writer is behind), all for one :class:`BufferKey`
(frame shape, stream dtype, frames per cube); a buffer of another key is freed
when the stream or the policy changes. Each buffer's cube starts at an address
*phase* (the last cube header's length mod ``ALIGN``), so the writer's
``O_DIRECT`` path reads it with no copy (:mod:`vampires.fitslog.directio`).

The pool shares its owner's lock (the logger counts its buffers and waits on
them under the same lock): methods say whether they take it or expect the
caller to hold it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
import numpy as np

from vampires.fitslog.directio import ALIGN, aligned_empty, phase_of

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from vampires.fitslog.policy import CubePolicy
    from vampires.kernels import FitsFormat

__all__ = ["BufferKey", "BufferPool", "CubeBuffer"]

_PAGE = 4096


@attrs.frozen(kw_only=True)
class BufferKey:
    """What a cube buffer is for: frames of ``shape`` and ``dtype``, ``frames`` per cube.

    Raises
    ------
    ConfigError
        From :meth:`of`: the policy gives no cube size for the frames.
    """

    shape: tuple[int, int]
    dtype: str
    frames: int

    @classmethod
    def of(cls, shape: tuple[int, int], dtype: np.dtype[Any], policy: CubePolicy) -> BufferKey:
        """Return the key of ``policy``'s cubes for frames of ``shape`` and ``dtype``."""
        return cls(shape=shape, dtype=dtype.str, frames=policy.frames_for(shape, dtype))

    @property
    def nbytes(self) -> int:
        """Bytes of the frames a buffer of this key holds (stream dtype)."""
        height, width = self.shape
        return self.frames * height * width * np.dtype(self.dtype).itemsize


@attrs.define(eq=False)
class CubeBuffer:
    """One reusable cube buffer (``cube`` is a view of ``raw`` at a chosen address phase)."""

    key: BufferKey
    cube: NDArray[np.generic]
    copy: Callable[[NDArray[np.generic], int], None]
    raw: NDArray[np.uint8]

    @classmethod
    def allocate(cls, key: BufferKey, fmt: FitsFormat, phase: int) -> CubeBuffer:
        """Allocate (no page touched) a buffer whose cube starts at ``phase`` mod ALIGN."""
        from vampires import kernels

        height, width = key.shape
        cube, raw = aligned_empty((key.frames, height, width), fmt.disk, phase=phase)
        return cls(key=key, cube=cube, copy=kernels.cube_copier(np.dtype(key.dtype), cube), raw=raw)

    def rephase(self, phase: int) -> None:
        """Move the cube view to ``phase``; its contents are not kept.

        At the phase of the cube's header length, the writer's ``O_DIRECT`` path
        reads the buffer with no copy (see :mod:`vampires.fitslog.directio`).
        """
        from vampires import kernels

        if phase_of(self.cube) == phase % ALIGN:
            return
        self.cube, self.raw = aligned_empty(
            self.cube.shape, self.cube.dtype, phase=phase, raw=self.raw
        )
        self.copy = kernels.cube_copier(np.dtype(self.key.dtype), self.cube)

    def touch(self) -> None:
        """Page in every page (numpy releases the GIL for this)."""
        self.raw[::_PAGE] = 0


def _mem_available() -> tuple[int, int] | None:
    """Return (MemAvailable, MemTotal) in bytes from /proc/meminfo (None if unknown)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            fields = {line.split(":")[0]: line.split()[1] for line in fh}
        return int(fields["MemAvailable"]) * 1024, int(fields["MemTotal"]) * 1024
    except (OSError, KeyError, ValueError, IndexError):
        return None


def _allocate_if_room(
    key: BufferKey, fmt: FitsFormat, phase: int, nbytes: int
) -> CubeBuffer | None:
    """Return a spare buffer if the machine keeps a fifth of its memory available after it."""
    memory = _mem_available()
    if memory is None or memory[0] - nbytes < memory[1] // 5:
        return None
    try:
        return CubeBuffer.allocate(key, fmt, phase)
    except MemoryError:
        return None


class BufferPool:
    """The cube buffers of one logger.

    Parameters
    ----------
    lock
        The owner's lock, guarding the pool's lists and counters.
    size
        Buffers allocated before saving starts.
    max_size
        Buffers the pool may grow to with spares while the writer is behind.
    on_error
        Called (lock not held) with a message when an allocation fails.
    """

    def __init__(
        self,
        lock: threading.Lock,
        *,
        size: int,
        max_size: int,
        on_error: Callable[[str], None],
    ) -> None:
        self.lock = lock
        self.size = size
        self.max_size = max_size
        self.free: list[CubeBuffer] = []
        self.count = 0  # places taken: buffers allocated or being allocated
        self.nbytes = 0  # bytes of the buffers allocated
        self.phase = 0  # address phase of new/free buffers: last header length mod ALIGN
        self.allocating = False  # a spare is being mapped
        self._on_error = on_error

    def take(self, key: BufferKey, fmt: FitsFormat) -> CubeBuffer | None:
        """Return a free buffer for ``key``, a new one if the pool has room, else None.

        Takes the lock (not held while a new buffer is allocated).
        """
        with self.lock:
            for i, buffer in enumerate(self.free):
                if buffer.key == key:
                    return self.free.pop(i)
            if not self.reserve(key):
                return None
        fresh = self.allocate(key, fmt)
        if fresh is not None:
            with self.lock:
                self.nbytes += fresh.cube.nbytes
        return fresh

    def reserve(self, key: BufferKey) -> bool:
        """Free the buffers of another key; take a place for one of ``key`` if there is room.

        The caller holds the lock.
        """
        self.drop_stale(key)
        if self.count >= self.size:
            return False
        self.count += 1
        return True

    def reserve_spare(self, key: BufferKey) -> bool:
        """Take a place for a spare of ``key`` unless at ``max_size`` or one is free.

        The caller holds the lock; on True, :meth:`add_spare` must follow.
        """
        if self.count >= self.max_size or any(b.key == key for b in self.free):
            return False
        self.count += 1
        self.allocating = True
        return True

    def drop_stale(self, key: BufferKey) -> None:
        """Free the pool's buffers of another shape or size (the caller holds the lock)."""
        for buffer in [b for b in self.free if b.key != key]:
            self.free.remove(buffer)
            self.count -= 1
            self.nbytes -= buffer.cube.nbytes

    def allocate(self, key: BufferKey, fmt: FitsFormat) -> CubeBuffer | None:
        """Allocate a buffer for a place already reserved (given back if it fails).

        The caller does not hold the lock.
        """
        try:
            return CubeBuffer.allocate(key, fmt, self.phase)
        except MemoryError:
            with self.lock:
                self.count -= 1
            self._on_error(f"out of memory for a {key.frames}-frame cube buffer")
            return None

    def add(self, buffer: CubeBuffer) -> None:
        """Put a newly allocated buffer in the pool (takes the lock)."""
        with self.lock:
            self.nbytes += buffer.cube.nbytes
            self.free.append(buffer)

    def add_spare(self, key: BufferKey, fmt: FitsFormat) -> tuple[int, int] | None:
        """Map the spare reserved by :meth:`reserve_spare` if memory allows.

        Takes the lock. Returns ``(buffers, bytes)`` of the pool after it, or
        None if the machine is short of memory (the place is given back).
        """
        buffer = _allocate_if_room(key, fmt, self.phase, key.nbytes)
        with self.lock:
            self.allocating = False
            if buffer is None:
                self.count -= 1
                return None
            self.nbytes += buffer.cube.nbytes
            self.free.append(buffer)
            return self.count, self.nbytes

    def rephase(self, phase: int) -> None:
        """Set the phase of new buffers and move the free ones to it (takes the lock)."""
        self.phase = phase
        with self.lock:
            for buffer in self.free:
                buffer.rephase(self.phase)

    def give_back(self, buffer: CubeBuffer, header_bytes: int = 0) -> None:
        """Return a written cube's buffer (at the phase of its header; takes the lock)."""
        if header_bytes:  # the next cube's header is most likely as long as this one's
            self.phase = header_bytes % ALIGN
            buffer.rephase(self.phase)
        with self.lock:
            self.free.append(buffer)

    def clear(self) -> None:
        """Drop the free buffers (the caller holds the lock)."""
        self.free.clear()
        self.nbytes = 0
