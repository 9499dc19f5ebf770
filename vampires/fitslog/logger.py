"""The FITS cube logger: a stream in, FITS cubes with sidecars out, nothing lost silently.

::

    from vampires import Logger, CubePolicy

    with Logger("vcam1", CubePolicy(frames_per_cube=250), root="/mnt/fuuu") as log:
        log.start()
        ...
        log.pause(wait_for_cube=True)  # finish the cube being filled
        log.wait_idle(timeout=60)
        print(log.status())

Threads
    A *reader* thread waits on the stream's semaphore and copies every new
    frame straight from shared memory into a slot of the current cube buffer
    with the numba kernel that also converts it to FITS storage (uint16 ->
    big-endian int16, BZERO 32768). From a cube's first frame on, a *writer*
    thread streams it to its ``.fits.tmp`` (header first, then the sidecar rows
    and pixels of the frames taken, whenever a frame has waited half of the
    policy's ``flush_interval`` or 64 MiB wait), so a killed logger loses at
    most ``flush_interval`` of frames (``vampires recover``). When a cube
    closes, the reader freezes an immutable
    :class:`~vampires.fitslog.writer.CubeJob` (its own buffer, name time,
    per-frame counters and clocks, keywords) and queues it; the writer writes
    the rest, rewrites the header in place, renames, and gives the buffer
    back. Acquisition never waits on the disk: when no buffer is free the
    frame is counted as dropped.

Buffers
    ``buffers`` cube buffers (default 2, as milk's two log buffers: one filling,
    one being written; 3 absorbs a slow cube write) are allocated once per
    (frame shape, dtype, frames per cube) and reused; ``status().memory_bytes``
    reports them. The writer thread maps them (``MAP_POPULATE``: paged in by
    the kernel, GIL released) as soon as the stream is attached (and after a
    policy change), and saving begins only once they are ready: ``start()``
    waits for it (state ``preparing`` meanwhile), so no frame pays for the
    first touch of fresh memory.

States (:class:`LoggerState`)
    ``idle`` (not saving, nothing left to write) -> ``preparing`` (start
    asked, buffers being paged in) -> ``saving`` (frames go into cubes) ->
    ``finishing`` (last cube being filled after
    ``stop(wait_for_cube=True)``, or saving stopped and cubes still being
    written) -> ``idle``.

Cube boundaries (``LOGCLOSE`` in each header)
    ``full`` (frames per cube reached), ``timeout`` (stream silent for the
    policy's timeout; adaptive by default), ``stopped`` (``stop()``),
    ``next`` (``next_cube()``), ``keyword`` (``EXPTIME``, ``DATA-TYP``,
    ``U_DETMOD`` or the crop keywords ``PRD-MIN1/2``, ``PRD-RNG1/2`` changed: each
    file is homogeneous), ``resized`` (the stream was re-created, e.g. at a new
    crop: the logger re-attaches by itself and continues).

Drops
    Frames the stream published while saving that are not in a file (writer
    slower than the camera, counter jumps, torn reads, disk errors) are
    counted in ``status().dropped``, in the next cube's ``LOGDROP`` card and
    sidecar notes; gaps inside a cube are in ``LOGDRPIN``.

Failures
    A missing stream, a full disk or an unwritable folder put a message in
    ``status().error``; the logger keeps running and resumes by itself (a new
    stream is attached as soon as it appears; each new cube tries the disk again).

Latency
    The reader must take each frame within one frame period (2.5 ms at 400 fps).
    A daemon process running loggers should give them ``nice=-10`` (or lower)
    and call ``sys.setswitchinterval(0.001)`` so the reader gets the GIL back
    quickly from the writer thread; the writer yields the GIL while it formats
    sidecars and releases it in every ``write``/``fsync``.

For the control daemon (``vampires.fitslog.daemon``): the public methods below
are thread-safe and their signatures are stable: ``start()``, ``stop(wait_for_cube)``,
``next_cube()``, ``set_policy(policy)``, ``status()``, ``wait_idle(timeout)``,
``close(finish_cube=True, timeout=60)``. ``start``/``stop``/``next_cube`` return
once the reader thread applied them, with the unix time it did.
"""

from __future__ import annotations

import collections
import contextlib
import enum
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import attrs
import numpy as np

from vampires.errors import (
    ConfigError,
    LoggerError,
    StreamError,
    StreamNotFoundError,
    StreamTimeout,
    TornFrameError,
)
from vampires.fitslog.directio import ALIGN, aligned_empty, phase_of
from vampires.fitslog.names import check_folder, check_stream_name, cube_filename, cube_folder
from vampires.fitslog.policy import CubePolicy
from vampires.fitslog.sidecar import FrameTimes
from vampires.fitslog.writer import (
    CubeJob,
    CubeWriter,
    HeaderProvider,
    OpenCube,
    WriteChunk,
    WrittenCube,
)

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from vampires.fitslog.header import Card
    from vampires.kernels import FitsFormat
    from vampires.stream import Stream, StreamReader

__all__ = ["SPLIT_KEYS", "Logger", "LoggerState", "LoggerStatus"]

logger = logging.getLogger(__name__)

#: Stream keywords whose change closes the cube (every file stays homogeneous).
SPLIT_KEYS = ("EXPTIME", "DATA-TYP", "U_DETMOD", "PRD-MIN1", "PRD-MIN2", "PRD-RNG1", "PRD-RNG2")
_POLL = 0.01  # s: longest a command waits for the reader while saving
_IDLE_POLL = 0.25  # s: stream re-attach / staleness check period while idle
_STALE_CHECK = 0.25  # s: staleness check period while frames flow
_ACK_TIMEOUT = 10.0
_PREPARE = "prepare"  # writer-queue message: fill the buffer pool for the current stream
_FLUSH_POLL = 0.1  # s: how often the writer looks at the cube being filled
_FLUSH_BYTES = 64 * 1024 * 1024  # flush the cube being filled when this much waits in RAM
_SWITCH_INTERVAL = 0.001  # s: the GIL goes back to the reader within this (default 5 ms)
_START_WAIT = 60.0  # s: start() waits this long for the buffers by default
_PAGE = 4096
_STUCK = 0.4  # s: a torn read that took this long waited on a stuck write flag
_BEHIND = 1.0  # s: a closed cube still being written after this: the writer is behind


def _mem_available() -> tuple[int, int] | None:
    """Return (MemAvailable, MemTotal) in bytes from /proc/meminfo (None if unknown)."""
    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            fields = {line.split(":")[0]: line.split()[1] for line in fh}
        return int(fields["MemAvailable"]) * 1024, int(fields["MemTotal"]) * 1024
    except (OSError, KeyError, ValueError, IndexError):
        return None


def _allocate_if_room(
    key: tuple[tuple[int, int], str, int], fmt: FitsFormat, phase: int, nbytes: int
) -> _Buffer | None:
    """Return a spare buffer if the machine keeps a fifth of its memory available after it."""
    memory = _mem_available()
    if memory is None or memory[0] - nbytes < memory[1] // 5:
        return None
    try:
        return _Buffer.allocate(key, fmt, phase)
    except MemoryError:
        return None


def _is_int_in(value: object, lo: int, hi: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi


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


@attrs.define(eq=False)
class _Buffer:
    """One reusable cube buffer (``cube`` is a view of ``raw`` at a chosen address phase)."""

    key: tuple[tuple[int, int], str, int]
    cube: NDArray[np.generic]
    copy: Callable[[NDArray[np.generic], int], None]
    raw: NDArray[np.uint8]

    @classmethod
    def allocate(
        cls, key: tuple[tuple[int, int], str, int], fmt: FitsFormat, phase: int
    ) -> _Buffer:
        """Allocate (no page touched) a buffer whose cube starts at ``phase`` mod ALIGN."""
        from vampires import kernels

        (height, width), dtype, capacity = key
        cube, raw = aligned_empty((capacity, height, width), fmt.disk, phase=phase)
        return cls(key=key, cube=cube, copy=kernels.cube_copier(np.dtype(dtype), cube), raw=raw)

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
        self.copy = kernels.cube_copier(np.dtype(self.key[1]), self.cube)


@attrs.define(eq=False)
class _Cube:
    """The cube being filled (reader thread; the writer reads its first ``n`` frames)."""

    uid: int
    buffer: _Buffer
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

    @property
    def capacity(self) -> int:
        return int(self.buffer.cube.shape[0])

    def times(self) -> FrameTimes:
        """Return the live per-frame arrays (the first ``n`` are final)."""
        return FrameTimes(
            cnt0=self.cnt0,
            cnt1=self.cnt1,
            logger_time=self.logger_time,
            acquisition_time=self.acquisition_time,
        )


class Logger:
    """Log one stream into FITS cubes (see the module docstring).

    Parameters
    ----------
    stream_name
        Stream to log (``$MILK_SHM_DIR/<name>.im.shm``); it may appear later.
    policy
        Cube size, count and timeout.
    root
        Files go to ``<root>/<YYYYMMDD UT of each cube>/<stream>/``.
    dirname
        Exact folder instead (wins over ``root``).
    header_provider
        Callable returning extra header cards per cube (instead of the aux header).
    clock
        Wall clock (unix s) for the logger time of each frame; inject one in tests.
    shm_dir
        Shared-memory folder (default: resolved ``MILK_SHM_DIR``).
    buffers
        Cube buffers (>= 2) allocated before saving starts.
    max_buffers
        Buffers the pool may grow to when the writer falls behind (a cube
        closed more than 1 s ago still being written and no buffer free): a
        spare is mapped in a helper thread if the machine's available memory
        stays above a fifth of its total after it, so a transient of the disk
        costs the frames that truly could not be held, not a cube period.
        Default ``buffers + 2``; ``status().memory_bytes`` says what is used.
    time_source
        ``"logger"`` (default, as milk): file names, UT/MJD/HST cards and the
        sidecar's column 4 all come from ``clock`` at the receipt of each frame,
        so they agree exactly (scxkw checks that they agree within a few ms);
        the camera's acquisition times are in column 5 (used for pairing).
        ``"acquisition"``: names and cards come from the acquisition times.
    write_chunk
        Replacement for ``os.write`` in the writer (throttling/faults in tests).
    fsync
        fsync each cube before its rename, and ``fdatasync`` the cube being
        written as the policy's ``sync_interval`` says (False: never).
    start_wait
        Seconds :meth:`start` waits for the cube buffers to be ready (allocated
        and paged in) before it returns; saving begins as soon as they are, in
        any case (state ``preparing`` until then).
    nice
        Nice value for the reader thread (Linux; negative values need
        CAP_SYS_NICE), so acquisition keeps up on a busy machine; the writer
        thread gets ``nice + 5`` (still above ordinary processes, since it holds
        the GIL between writes and a descheduled GIL holder delays the reader,
        but below the reader, unlike milk whose writer starves acquisition).
        None leaves both unchanged. (SCHED_FIFO for the reader was tried and
        lost more frames: an RT thread waiting for the GIL behind a normal one.)

    Raises
    ------
    ConfigError
        Bad name, policy, folder or option.
    """

    def __init__(
        self,
        stream_name: str,
        policy: CubePolicy,
        *,
        root: str | os.PathLike[str] | None = None,
        dirname: str | os.PathLike[str] | None = None,
        header_provider: HeaderProvider | None = None,
        clock: Callable[[], float] | None = None,
        shm_dir: str | os.PathLike[str] | None = None,
        buffers: int = 2,
        max_buffers: int | None = None,
        time_source: str = "logger",
        write_chunk: WriteChunk | None = None,
        fsync: bool = True,
        nice: int | None = None,
        start_wait: float = _START_WAIT,
    ) -> None:
        self._name = check_stream_name(stream_name)
        self._policy = self._check_policy(policy)
        if root is None and dirname is None:
            msg = f"Logger({stream_name!r}): give root= (dated folders) or dirname= (exact folder)"
            raise ConfigError(msg)
        folder = dirname if dirname is not None else root
        if folder is not None:  # refused at once, not frame by frame
            check_folder(os.path.abspath(folder), f"Logger({stream_name!r})")
        self._root = Path(root) if root is not None else None
        self._dirname = Path(dirname) if dirname is not None else None
        if not _is_int_in(buffers, 2, 16):
            msg = f"Logger({stream_name!r}): buffers must be an integer in 2..16 (got {buffers!r})"
            raise ConfigError(msg)
        if time_source not in ("acquisition", "logger"):
            msg = f"Logger: time_source must be 'acquisition' or 'logger' (got {time_source!r})"
            raise ConfigError(msg)
        self._clock: Callable[[], float] = clock if clock is not None else time.time
        self._shm_dir = Path(shm_dir) if shm_dir is not None else None
        self._nbuffers = buffers
        spare_max = buffers + 2 if max_buffers is None else max_buffers
        if not _is_int_in(spare_max, buffers, 16):
            msg = f"Logger: max_buffers must be an integer in {buffers}..16 (got {max_buffers!r})"
            raise ConfigError(msg)
        self._max_buffers = spare_max
        self._closed_at: collections.deque[float] = collections.deque()  # cubes being written
        self._next_spare_check = 0.0
        self._allocating = False
        self._time_source = time_source
        if nice is not None and not _is_int_in(nice, -20, 19):
            msg = f"Logger: nice must be an integer in -20..19 (got {nice!r})"
            raise ConfigError(msg)
        self._nice = nice
        try:
            wait = float(start_wait)
        except (TypeError, ValueError):
            wait = -1.0
        if not 0 <= wait <= 3600:
            msg = f"Logger: start_wait must be seconds in [0, 3600] (got {start_wait!r})"
            raise ConfigError(msg)
        self._start_wait = wait

        self._writer = CubeWriter(
            header_provider=header_provider,
            shm_dir=self._shm_dir,
            fsync=fsync,
            write_chunk=write_chunk,
            clock=self._clock,
        )
        from vampires import kernels

        kernels.warm_up()  # compile/load once, before the first frame
        # a thread holding the GIL (the writer formatting a header) hands it back
        # to the reader within 1 ms instead of 5 (2 frame periods at 400 fps)
        if sys.getswitchinterval() > _SWITCH_INTERVAL:
            sys.setswitchinterval(_SWITCH_INTERVAL)
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._commands: collections.deque[tuple[str, threading.Event, list[float]]] = (
            collections.deque()
        )
        self._jobs: queue.Queue[tuple[Any, ...] | str | None] = queue.Queue()
        self._free: list[_Buffer] = []
        self._nallocated = 0
        self._memory = 0
        self._phase = 0  # address phase of new/free buffers: last header length mod ALIGN
        # reader-thread state
        self._stream: Stream | None = None
        self._reader: StreamReader | None = None
        self._cube: _Cube | None = None
        self._saving = False
        self._last_cube = False
        self._cubes_closed = 0
        self._drop_carry = 0
        self._start_pending = False
        self._prepared_key: tuple[tuple[int, int], str, int] | None = None
        self._run = 0
        self._uid = 0
        self._progress = 0  # bytes the writer put on disk (close() waits while it moves)
        self._on_disk_frames = 0
        self._causes = dict.fromkeys(("late", "buffer", "disk"), 0)  # dropped, by cause
        self._period: float | None = None
        self._last_frame_at: float | None = None
        self._reattach = False
        self._spec: tuple[tuple[int, int], np.dtype[Any]] | None = None
        self._spec_cards: tuple[Card, ...] = ()  # stream keywords at attach (header estimate)
        # shared counters (under _lock)
        self._frames = 0
        self._files = 0
        self._dropped = 0
        self._pending = 0
        self._written_bytes = 0
        self._write_seconds = 0.0
        self._error: str | None = None
        self._last_file: Path | None = None
        self._last_folder: Path | None = None
        self._started_at: float | None = None
        self._started_wall: float | None = None
        self._closed = False
        self._closing = False
        self._reader_thread = threading.Thread(
            target=self._reader_main, name=f"logger-{self._name}-reader", daemon=True
        )
        self._writer_thread = threading.Thread(
            target=self._writer_main, name=f"logger-{self._name}-writer", daemon=True
        )
        self._reader_thread.start()
        self._writer_thread.start()

    # ------------------------------------------------------------------ public API

    @property
    def stream_name(self) -> str:
        """The logged stream's name."""
        return self._name

    @property
    def policy(self) -> CubePolicy:
        """The policy the next cube will use."""
        return self._policy

    def __repr__(self) -> str:
        return f"vampires.Logger({self._name!r}, state={self.status().state.value})"

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close(finish_cube=False)

    @staticmethod
    def _check_policy(policy: object) -> CubePolicy:
        if not isinstance(policy, CubePolicy):
            msg = f"policy must be a CubePolicy (got {type(policy).__name__})"
            raise ConfigError(msg)
        return policy

    def _request(self, command: str) -> float:
        if self._closed or self._closing:
            msg = f"logger {self._name!r} is closed; create a new Logger"
            raise LoggerError(msg)
        done = threading.Event()
        when: list[float] = []
        with self._lock:
            self._commands.append((command, done, when))
        self._wake.set()
        if not done.wait(_ACK_TIMEOUT):
            msg = f"logger {self._name!r}: reader thread did not apply {command!r} in time"
            raise LoggerError(msg)
        return when[0] if when else self._clock()

    def start(self, ready_timeout: float | None = None) -> float:
        """Start saving (resets the run's counters); no-op if already saving.

        Saving begins only when every cube buffer is allocated and paged in
        (so no frame is lost to the first touch of fresh memory): until then
        the state is ``preparing``. This waits for that, at most
        ``ready_timeout`` seconds (default: the logger's ``start_wait``).

        Returns
        -------
        float
            Unix time (logger clock) saving became effective (the time of the
            request if still preparing after ``ready_timeout``).

        Raises
        ------
        LoggerError
            The logger is closed.
        """
        wait = self._start_wait if ready_timeout is None else max(0.0, float(ready_timeout))
        when = self._request("start")
        deadline = time.monotonic() + wait
        with self._changed:
            while self._start_pending and not self._closing:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    logger.info("logger %s: still preparing its buffers", self._name)
                    return when
                self._changed.wait(min(remaining, 0.1))
            started = self._started_at
        return started if started is not None and started >= when else when

    def pause(self, wait_for_cube: bool = False) -> float:
        """Pause saving: the logger, its buffers and settings stay; :meth:`start` resumes.

        Parameters
        ----------
        wait_for_cube
            False: close the cube being filled now (truncated) and stop.
            True: keep filling the current cube (or, if it has no frame yet,
            the next one) to its end, then stop ("last cube"). Use
            :meth:`wait_idle` to wait for it to be written.

        Returns
        -------
        float
            Unix time the request took effect.
        """
        return self._request("last" if wait_for_cube else "stop")

    def stop(self, wait_for_cube: bool = False) -> float:
        """Pause saving: the deprecated name of :meth:`pause` (stop now ends a daemon).

        .. deprecated:: issue 17
           Use :meth:`pause`.
        """
        import warnings

        warnings.warn(
            "Logger.stop() is deprecated: use Logger.pause() (stop now means ending a daemon)",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.pause(wait_for_cube)

    def next_cube(self) -> float:
        """Close the cube being filled now (if any frame) and go on with a new one.

        Returns
        -------
        float
            Unix time the cube was closed.
        """
        return self._request("next")

    def set_policy(self, policy: CubePolicy) -> None:
        """Use ``policy`` from the next cube on (no restart; buffers re-sized in the background).

        Parameters
        ----------
        policy
            The new policy.

        Raises
        ------
        ConfigError
            Not a :class:`CubePolicy`.
        """
        self._policy = self._check_policy(policy)
        if not self._closing:
            self._jobs.put(_PREPARE)

    def set_folder(
        self,
        *,
        root: str | os.PathLike[str] | None = None,
        dirname: str | os.PathLike[str] | None = None,
    ) -> None:
        """Change where the next cubes go (``dirname`` wins; both None is refused).

        Raises
        ------
        ConfigError
            Neither given.
        """
        if root is None and dirname is None:
            msg = "set_folder: give root= or dirname="
            raise ConfigError(msg)
        with self._lock:
            self._root = Path(root) if root is not None else None
            self._dirname = Path(dirname) if dirname is not None else None

    def _is_saving(self) -> bool:
        return self._saving

    def _state(self) -> LoggerState:
        if self._start_pending:
            return LoggerState.PREPARING
        if self._saving:
            return LoggerState.FINISHING if self._last_cube else LoggerState.SAVING
        return LoggerState.FINISHING if self._pending else LoggerState.IDLE

    def workers_alive(self) -> bool:
        """Return True while the reader and writer threads run (the daemon watches it)."""
        return self._reader_thread.is_alive() and self._writer_thread.is_alive()

    def status(self) -> LoggerStatus:
        """Return a snapshot of the logger.

        Returns
        -------
        LoggerStatus
        """
        with self._lock:
            cube = self._cube
            stream = self._stream
            folder = cube.folder if cube is not None and cube.n else self._last_folder
            if folder is None:
                folder = self._dirname or (
                    cube_folder(self._name, self._clock(), root=self._root, dirname=None)
                    if self._root is not None
                    else None
                )
            shape = None
            if stream is not None and not stream.closed:
                shape = (int(stream.shape[-2]), int(stream.shape[-1]))
            return LoggerStatus(
                stream=self._name,
                state=self._state(),
                policy=self._policy,
                frames=self._frames,
                files=self._files,
                dropped=self._dropped,
                current_file=cube.name if cube is not None and cube.n else None,
                folder=folder,
                memory_bytes=self._memory + self._writer.memory_bytes,
                buffers=self._nallocated,
                error=self._error,
                last_file=self._last_file,
                attached=stream is not None,
                frame_shape=shape,
                queued=self._pending,
                written_bytes=self._written_bytes,
                started=self._started_at,
                write_seconds=self._write_seconds,
                on_disk_frames=self._on_disk_frames if cube is not None and cube.n else 0,
                dropped_late=self._causes["late"],
                dropped_no_buffer=self._causes["buffer"],
                dropped_disk=self._causes["disk"],
            )

    def wait_idle(self, timeout: float) -> bool:
        """Wait until the logger is idle (not saving, every cube written).

        Parameters
        ----------
        timeout
            Seconds.

        Returns
        -------
        bool
            True if idle, False on timeout.
        """
        deadline = time.monotonic() + timeout
        with self._changed:
            while self._state() is not LoggerState.IDLE:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._changed.wait(min(remaining, 0.1))
        return True

    def close(self, finish_cube: bool = True, timeout: float = 60.0) -> None:
        """Stop saving, write what is buffered, stop the threads, free the buffers.

        Idempotent. SIGTERM/SIGINT handlers of a daemon call this.

        Parameters
        ----------
        finish_cube
            True: let the cube being filled complete (at most ``timeout`` s,
            then truncate). False: truncate it now. Either way it is written.
        timeout
            Seconds to wait for the last cube and for the writer.
        """
        if self._closed:
            return
        deadline = time.monotonic() + timeout
        running = self._reader_thread.is_alive()
        if running and not self._closing:
            with contextlib.suppress(LoggerError):
                if finish_cube and self._saving:
                    self.pause(wait_for_cube=True)
                    with self._changed:
                        while self._is_saving() and time.monotonic() < deadline:
                            self._changed.wait(0.05)
                self.pause(wait_for_cube=False)
        self._closing = True
        self._wake.set()
        self._reader_thread.join(max(0.1, deadline - time.monotonic()))
        self._jobs.put(None)
        # every frame taken is written: wait for the writer as long as it makes progress
        progress = self._progress
        while self._writer_thread.is_alive():
            self._writer_thread.join(max(0.1, min(1.0, deadline - time.monotonic())))
            if self._progress != progress:
                progress = self._progress
                deadline = max(deadline, time.monotonic() + timeout)
            elif time.monotonic() >= deadline:
                break
        with self._lock:
            self._free.clear()
            self._memory = 0
            self._closed = True
            self._changed.notify_all()
        if self._reader_thread.is_alive() or self._writer_thread.is_alive():
            logger.warning("logger %s: threads did not stop within %.1f s", self._name, timeout)

    # ------------------------------------------------------------------ reader thread

    def _set_error(self, text: str | None) -> None:
        with self._lock:
            if text != self._error and text is not None:
                logger.warning("logger %s: %s", self._name, text)
            self._error = text

    def _renice(self, offset: int = 0) -> None:
        if self._nice is None:
            return
        value = min(19, self._nice + offset)
        try:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), value)
        except OSError as exc:
            logger.warning("logger %s: cannot set nice %d: %s", self._name, value, exc)

    def _reader_main(self) -> None:
        self._renice()
        while not self._closing:
            try:
                self._step()
            except Exception as exc:  # keep the logger alive; reported in status
                logger.exception("logger %s: reader error", self._name)
                self._set_error(f"reader error: {exc}")
                time.sleep(0.2)
        try:
            self._close_cube("stopped")
        finally:
            self._detach()

    def _step(self) -> None:
        self._run_commands()
        if self._start_pending and self._pool_ready():
            self._begin_saving()
        if self._stream is None and not self._attach():
            self._wake.wait(_IDLE_POLL)
            self._wake.clear()
            return
        if not self._saving:
            self._wake.wait(_IDLE_POLL)
            self._wake.clear()
            self._check_stale(force=True)
            return
        self._capture()

    def _attach(self) -> bool:
        from vampires.stream import Stream

        try:
            stream = Stream.open(self._name, shm_dir=self._shm_dir)
        except StreamNotFoundError:
            self._set_error(f"stream {self._name!r} not found; waiting for it")
            return False
        except StreamError as exc:
            self._set_error(f"cannot open stream {self._name!r}: {exc}; retrying")
            return False
        if len(stream.shape) not in (2, 3):
            stream.close()
            self._set_error(f"stream {self._name!r} has shape {stream.shape}; need 2-D frames")
            return False
        reader: StreamReader | None = None
        if self._saving:  # read before anyone sees us attached: no frame slips through
            try:
                reader = stream.reader(catch_up=True)
            except StreamError as exc:
                stream.close()
                self._set_error(f"cannot read stream {self._name!r}: {exc}; retrying")
                return False
            if self._reattach or self._created_while_saving(stream):
                self._carry(reader.last_cnt0, "late")  # published before we could see them
        with self._lock:
            self._stream = stream
            self._reader = reader
            self._spec = ((int(stream.shape[-2]), int(stream.shape[-1])), stream.dtype)
            with contextlib.suppress(StreamError):
                self._spec_cards = tuple(stream.keywords.cards())
            if self._error and "stream" in self._error:
                self._error = None
        self._jobs.put(_PREPARE)  # let the writer thread allocate and page in the buffers
        self._period = None
        self._reattach = False
        logger.info("logger %s: attached (%s %s)", self._name, stream.shape, stream.dtype)
        return True

    def _created_while_saving(self, stream: Stream) -> bool:
        try:
            created = float(stream.metadata()["creationtime"])
        except (StreamError, KeyError, TypeError, ValueError):
            return False
        return self._started_wall is not None and created >= self._started_wall

    def _detach(self) -> None:
        if self._reader is not None:
            with contextlib.suppress(StreamError):
                self._reader.close()
            self._reader = None
        with self._lock:
            stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()

    def _open_reader(self) -> None:
        if self._stream is None or self._reader is not None:
            return
        try:
            self._reader = self._stream.reader(catch_up=True)
        except StreamError as exc:
            self._set_error(f"cannot read stream {self._name!r}: {exc}")
            self._reader = None

    def _check_stale(self, *, force: bool = False) -> None:
        stream = self._stream
        if stream is None or not stream.is_stale(max_age=0.0 if force else _STALE_CHECK):
            return
        logger.info("logger %s: stream re-created or removed; re-attaching", self._name)
        self._close_cube("resized")
        self._detach()
        self._reattach = True
        self._attach()

    def _run_commands(self) -> None:
        while True:
            with self._lock:
                if not self._commands:
                    return
                command, done, when = self._commands.popleft()
            try:
                self._apply(command)
            finally:
                when.append(self._clock())
                done.set()
                with self._changed:
                    self._changed.notify_all()

    def _pool_ready(self) -> bool:
        """Tell whether the buffer pool is ready for the stream and policy (or cannot be yet)."""
        with self._lock:
            spec, policy = self._spec, self._policy
            if spec is None:
                return True  # no stream yet: nothing to prepare
            try:
                key = (spec[0], spec[1].str, policy.frames_for(spec[0], spec[1]))
            except ConfigError:
                return True
            return self._prepared_key == key

    def _begin_saving(self) -> None:
        with self._lock:
            self._frames = self._files = self._dropped = self._written_bytes = 0
            self._causes = dict.fromkeys(self._causes, 0)
            self._write_seconds = 0.0
            self._started_at = self._clock()
            self._started_wall = time.time()
            self._saving = True
            self._drop_carry = 0
            self._run += 1
        self._cubes_closed = 0
        self._period = self._last_frame_at = None
        self._open_reader()  # before start() returns: every frame published after it is taken
        with self._changed:
            self._start_pending = False
            self._changed.notify_all()

    def _apply(self, command: str) -> None:
        if command == "start":
            if self._saving and not self._last_cube:
                return
            if not self._saving:
                if not self._pool_ready():
                    with self._lock:
                        self._start_pending = True  # saving begins when the buffers are
                    self._jobs.put(_PREPARE)
                    return
                self._begin_saving()
            self._last_cube = False
        elif command == "stop":
            with self._lock:
                self._start_pending = False
            self._close_cube("stopped")
            self._stop_saving()
        elif command == "last":
            if self._saving:
                self._last_cube = True
        elif command == "next":
            self._close_cube("next")

    def _stop_saving(self) -> None:
        with self._lock:
            self._saving = False
            self._last_cube = False
        if self._reader is not None:
            with contextlib.suppress(StreamError):
                self._reader.close()
            self._reader = None

    def _capture(self) -> None:
        stream = self._stream
        if stream is None:
            return
        if self._reader is None:
            self._open_reader()
        reader = self._reader
        if reader is None:
            self._wake.wait(_IDLE_POLL)
            return
        copied: list[bool] = [False]

        def copy(view: NDArray[Any]) -> None:
            # the cube is made when its first frame is there, so a policy set
            # meanwhile applies to it; allocation is lazy (no page touched)
            cube = self._cube
            if cube is None:
                cube = self._cube = self._new_cube(stream)
                if cube is None:
                    return
            cube.buffer.copy(view[stream.cnt1] if view.ndim == 3 else view, cube.n)
            copied[0] = True

        asked = time.monotonic()
        try:
            info = reader.next_into(copy, _POLL)
        except StreamTimeout:
            self._on_silence()
            self._check_stale(force=True)
            return
        except TornFrameError as exc:
            logger.debug("logger %s: %s", self._name, exc)
            if time.monotonic() - asked > _STUCK:  # write flag stuck: writer died mid-frame
                self._set_error(str(exc))
                self._wake.wait(_IDLE_POLL)  # do not spin a core on a dead stream
                self._check_stale(force=True)
            return  # the reader counts that frame as missed with the next one
        except StreamError as exc:  # e.g. the file shrank under us: re-attach when re-created
            self._set_error(f"cannot read stream {self._name!r}: {exc}")
            self._check_stale(force=True)
            return
        now = self._clock()
        self._update_period(now)
        cube = self._cube
        if cube is None or not copied[0]:
            self._carry(1, "buffer")  # no free buffer: writer behind the camera
            self._carry(info.missed, "late")
            self._check_stale()
            self._maybe_spare()
            return
        slot = cube.n
        if slot == 0:
            self._snapshot(stream, cube)
            cube.dropped_before += info.missed
        elif self._keywords_changed(stream, cube):
            self._close_cube("keyword")
            if not self._saving:  # that was the last cube of the run
                return
            new = self._new_cube(stream)
            if new is None:
                self._carry(1, "buffer")
                self._carry(info.missed, "late")
                return
            new.buffer.cube[0] = cube.buffer.cube[slot]
            self._snapshot(stream, new)
            new.dropped_before += info.missed
            self._cube, cube, slot = new, new, 0
        else:
            cube.dropped_inside += info.missed
        self._add_dropped(info.missed, "late")
        self._record(cube, slot, info.cnt0, info.cnt1, now, info.acquisition_time)
        self._check_stale()
        self._maybe_spare()

    def _record(
        self, cube: _Cube, slot: int, cnt0: int, cnt1: int, now: float, acquired: float
    ) -> None:
        cube.cnt0[slot] = cnt0
        cube.cnt1[slot] = cnt1
        cube.logger_time[slot] = now
        cube.acquisition_time[slot] = acquired
        if slot == 0:
            t_first = acquired if self._time_source == "acquisition" and acquired > 0 else now
            with self._lock:
                root, dirname = self._root, self._dirname
            cube.folder = cube_folder(self._name, t_first, root=root, dirname=dirname)
            cube.name = cube_filename(self._name, t_first)
        with self._lock:
            cube.n = slot + 1
            self._frames += 1
        if slot == 0:  # the writer creates its .fits.tmp and streams it from now on
            self._jobs.put(("open", cube, self._opening_job(cube)))
        if cube.n >= cube.capacity:
            self._close_cube("full")

    def _snapshot(self, stream: Stream, cube: _Cube) -> None:
        """Take the stream keywords of the cube's first frame."""
        try:
            version = stream.keywords.version
            cards = tuple(stream.keywords.cards())
        except StreamError as exc:
            logger.warning("logger %s: cannot read keywords: %s", self._name, exc)
            cards, version = (), 0
        values = {c[0]: c[1] for c in cards}
        exptime = values.get("EXPTIME")
        cube.cards = cards
        cube.kw_version = version
        cube.split_values = tuple(values.get(k) for k in SPLIT_KEYS)
        cube.exptime = (
            float(exptime)
            if isinstance(exptime, int | float) and not isinstance(exptime, bool)
            else None
        )

    def _keywords_changed(self, stream: Stream, cube: _Cube) -> bool:
        try:
            version = stream.keywords.version
            if version == cube.kw_version:
                return False
            cube.kw_version = version
            values = tuple(stream.keywords.get(k) for k in SPLIT_KEYS)
        except StreamError:
            return False
        if values == cube.split_values:
            return False
        changed = [
            k for k, a, b in zip(SPLIT_KEYS, cube.split_values, values, strict=True) if a != b
        ]
        logger.info("logger %s: %s changed; closing the cube", self._name, ", ".join(changed))
        return True

    def _job_source(self, cube: _Cube) -> str:
        if self._time_source == "acquisition" and cube.acquisition_time[0] > 0:
            return "acquisition"
        return "logger"

    def _opening_job(self, cube: _Cube) -> CubeJob:
        """Return the cube as it opens: whole buffer, planned NAXIS3, live per-frame arrays."""
        return CubeJob(
            stream=self._name,
            folder=cube.folder,
            cube=cube.buffer.cube,
            nframes=cube.capacity,
            fmt=cube.fmt,
            times=cube.times(),
            stream_cards=cube.cards,
            index=self._cubes_closed,
            dropped_before=cube.dropped_before,
            close_reason="writing",
            time_source=self._job_source(cube),
        )

    def _carry(self, n: int, cause: str) -> None:
        """Count ``n`` lost frames, reported in the next cube's ``LOGDROP``."""
        if n > 0:
            with self._lock:
                self._drop_carry += n
                self._dropped += n
                self._causes[cause] += n

    def _take_carry(self) -> int:
        with self._lock:
            carry, self._drop_carry = self._drop_carry, 0
        return carry

    def _add_dropped(self, n: int, cause: str) -> None:
        if n > 0:
            with self._lock:
                self._dropped += n
                self._causes[cause] += n

    def _update_period(self, now: float) -> None:
        last, self._last_frame_at = self._last_frame_at, now
        if last is None or now <= last:
            return
        dt = now - last
        self._period = dt if self._period is None else 0.9 * self._period + 0.1 * dt

    def _on_silence(self) -> None:
        cube = self._cube
        if cube is None or cube.n == 0 or self._last_frame_at is None:
            return
        period = self._period
        if cube.exptime is not None and cube.exptime > 0:
            period = max(period or 0.0, cube.exptime)
        limit = self._policy.effective_timeout(period)
        if self._clock() - self._last_frame_at >= limit:
            self._close_cube("timeout")

    # ---- buffers and cubes

    def _new_cube(self, stream: Stream) -> _Cube | None:
        from vampires import kernels

        shape = (int(stream.shape[-2]), int(stream.shape[-1]))
        dtype = stream.dtype
        policy = self._policy
        try:
            capacity = policy.frames_for(shape, dtype)
            fmt = kernels.fits_format(dtype)
        except ConfigError as exc:
            self._set_error(f"cannot log stream {self._name!r}: {exc}")
            return None
        buffer = self._take_buffer((shape, dtype.str, capacity), fmt)
        if buffer is None:
            return None
        self._uid += 1
        return _Cube(
            uid=self._uid,
            flush_interval=policy.flush_interval,
            sync_interval=policy.sync_interval,
            run=self._run,
            buffer=buffer,
            fmt=fmt,
            folder=Path(),
            name="",
            cards=(),
            split_values=(),
            kw_version=0,
            exptime=None,
            dropped_before=self._take_carry(),
            cnt0=np.zeros(capacity, np.int64),
            cnt1=np.zeros(capacity, np.int64),
            logger_time=np.zeros(capacity, np.float64),
            acquisition_time=np.zeros(capacity, np.float64),
        )

    def _take_buffer(
        self, key: tuple[tuple[int, int], str, int], fmt: FitsFormat
    ) -> _Buffer | None:
        with self._lock:
            for i, buffer in enumerate(self._free):
                if buffer.key == key:
                    return self._free.pop(i)
            self._drop_stale(key)
            if self._nallocated >= self._nbuffers:
                return None
            self._nallocated += 1
        fresh = self._allocate(key, fmt)
        if fresh is not None:
            with self._lock:
                self._memory += fresh.cube.nbytes
        return fresh

    def _drop_stale(self, key: tuple[tuple[int, int], str, int]) -> None:
        """Free the pool's buffers of another shape or size (the caller holds the lock)."""
        for buffer in [b for b in self._free if b.key != key]:
            self._free.remove(buffer)
            self._nallocated -= 1
            self._memory -= buffer.cube.nbytes

    def _allocate(self, key: tuple[tuple[int, int], str, int], fmt: FitsFormat) -> _Buffer | None:
        """Allocate a buffer for a place already counted in the pool (given back if it fails)."""
        try:
            return _Buffer.allocate(key, fmt, self._phase)
        except MemoryError:
            with self._lock:
                self._nallocated -= 1
            self._set_error(f"out of memory for a {key[2]}-frame cube buffer")
            return None

    def _prepare_buffers(self) -> None:
        """Allocate and page in the pool for the current stream and policy (writer thread).

        First touch of fresh memory can stall for tens of ms (page zeroing,
        huge-page compaction); doing it here keeps it off the reader's hot path.
        """
        from vampires import kernels

        self._estimate_phase()
        while not self._closing:
            with self._lock:
                spec, policy = self._spec, self._policy
                if spec is None:
                    return
                shape, dtype = spec
                try:
                    key = (shape, dtype.str, policy.frames_for(shape, dtype))
                    fmt = kernels.fits_format(dtype)
                except ConfigError:
                    return
                self._drop_stale(key)
                if self._nallocated >= self._nbuffers:
                    self._pool_done(key)
                    return
                self._nallocated += 1
            buffer = self._allocate(key, fmt)
            if buffer is None:
                with self._lock:
                    self._pool_done(key)  # out of memory: said in the status; do not wait
                return
            buffer.raw[::_PAGE] = 0  # touch every page (numpy releases the GIL for this)
            with self._lock:
                self._memory += buffer.cube.nbytes
                self._free.append(buffer)

    def _pool_done(self, key: tuple[tuple[int, int], str, int]) -> None:
        """Mark the pool ready for ``key`` (the caller holds the lock); wake a pending start."""
        self._prepared_key = key
        self._changed.notify_all()
        self._wake.set()

    def _estimate_phase(self) -> None:
        """Set the buffers' address phase from the header the next cube will most likely have."""
        from vampires import kernels

        with self._lock:
            spec, cards = self._spec, self._spec_cards
        if spec is None:
            return
        try:
            nbytes = self._writer.expected_header_bytes(
                self._name, spec[0], kernels.fits_format(spec[1]), cards, self._time_source
            )
        except ConfigError:
            return
        self._phase = nbytes % ALIGN
        with self._lock:
            for buffer in self._free:
                buffer.rephase(self._phase)

    def _maybe_spare(self) -> None:
        """Map one more buffer (helper thread) when a closed cube waits > 1 s and none is free."""
        now = time.monotonic()
        if now < self._next_spare_check:
            return
        self._next_spare_check = now + _STALE_CHECK
        from vampires import kernels

        with self._lock:
            behind = bool(self._closed_at) and now - self._closed_at[0] > _BEHIND
            if not behind or self._spec is None or self._allocating:
                return
            shape, dtype = self._spec
            try:
                key = (shape, dtype.str, self._policy.frames_for(shape, dtype))
                fmt = kernels.fits_format(dtype)
            except ConfigError:
                return
            if self._nallocated >= self._max_buffers or any(b.key == key for b in self._free):
                return
            self._nallocated += 1
            self._allocating = True
        threading.Thread(
            target=self._add_spare,
            args=(key, fmt),
            name=f"logger-{self._name}-spare",
            daemon=True,
        ).start()

    def _add_spare(self, key: tuple[tuple[int, int], str, int], fmt: FitsFormat) -> None:
        nbytes = key[2] * key[0][0] * key[0][1] * np.dtype(key[1]).itemsize
        buffer = _allocate_if_room(key, fmt, self._phase, nbytes)
        with self._lock:
            self._allocating = False
            if buffer is None:
                self._nallocated -= 1
                self._next_spare_check = time.monotonic() + 30.0  # RAM is short: not soon again
                return
            self._memory += buffer.cube.nbytes
            self._free.append(buffer)
            count, memory = self._nallocated, self._memory
        logger.info(
            "logger %s: writer behind; cube buffer added (%d buffers, %.2f GB)",
            self._name,
            count,
            memory / 1e9,
        )

    def _give_back(self, buffer: _Buffer, header_bytes: int = 0) -> None:
        if header_bytes:  # the next cube's header is most likely as long as this one's
            self._phase = header_bytes % ALIGN
            buffer.rephase(self._phase)
        with self._lock:
            self._free.append(buffer)

    def _close_cube(self, reason: str) -> None:
        cube, self._cube = self._cube, None
        if cube is None:
            return
        if cube.n == 0:
            with self._lock:
                self._drop_carry += cube.dropped_before
            self._give_back(cube.buffer)
            return
        n = cube.n
        job = CubeJob(
            stream=self._name,
            folder=cube.folder,
            cube=cube.buffer.cube,
            nframes=n,
            fmt=cube.fmt,
            times=FrameTimes(
                cnt0=cube.cnt0[:n].copy(),
                cnt1=cube.cnt1[:n].copy(),
                logger_time=cube.logger_time[:n].copy(),
                acquisition_time=cube.acquisition_time[:n].copy(),
            ),
            stream_cards=cube.cards,
            index=self._cubes_closed,
            dropped_before=cube.dropped_before,
            dropped_inside=cube.dropped_inside,
            close_reason=reason,
            time_source=self._job_source(cube),
        )
        with self._lock:
            self._pending += 1
            self._closed_at.append(time.monotonic())
            self._last_folder = cube.folder
        self._jobs.put(("close", job, cube.buffer, cube.uid, cube.run))
        self._cubes_closed += 1
        cubes = self._policy.cubes
        if self._saving and (self._last_cube or (cubes > 0 and self._cubes_closed >= cubes)):
            self._stop_saving()
        with self._changed:
            self._changed.notify_all()

    # ------------------------------------------------------------------ writer thread

    def _writer_main(self) -> None:
        self._renice(5)  # below the reader: acquisition never waits on the disk (milk's inversion)
        live: tuple[_Cube, OpenCube] | None = None
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
                self._prepare_buffers()
            elif item and item[0] == "open":
                _, cube, opening = item
                # an error is reported when the cube closes, with its frames counted
                oc = self._writer.open(opening, sync_interval=cube.sync_interval)
                live = (cube, oc)
                with self._lock:
                    self._on_disk_frames = 0
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

    def _flush_live(self, live: tuple[_Cube, OpenCube], *, force: bool = False) -> None:
        """Flush the cube being filled when a frame waited half the flush interval, or 32 MiB."""
        cube, oc = live
        with self._lock:
            n = cube.n
        now = time.monotonic()
        waiting = n * oc.frame_bytes > oc.on_disk or n > oc.rows
        if waiting and oc.pending_since is None:
            oc.pending_since = now
        timed = oc.pending_since is not None and now - oc.pending_since >= cube.flush_interval / 2
        big = n * oc.frame_bytes - oc.aligned >= _FLUSH_BYTES
        if not (force or timed or big or oc.unsynced):
            return
        written = self._writer.flush(oc, n, tail=force or timed)
        if oc.on_disk >= n * oc.frame_bytes and oc.rows >= n:
            oc.pending_since = None
        elif written:
            oc.pending_since = now  # the partial block left: its frames are recent
        with self._lock:
            self._progress += written
            self._on_disk_frames = oc.frames_on_disk

    def _finish(self, job: CubeJob, buffer: _Buffer, oc: OpenCube | None) -> WrittenCube | None:
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
        self._give_back(buffer, result.header_bytes if result is not None else 0)
        lost = job.nframes - (result.frames if result is not None else 0)
        with self._lock:
            self._pending -= 1
            if self._closed_at:
                self._closed_at.popleft()
            self._progress += 1
            self._on_disk_frames = 0
            if result is not None:
                self._write_seconds += result.seconds
            if result is not None and result.path is not None:
                self._files += 1
                self._last_file = result.path
                self._written_bytes += result.nbytes
            if lost > 0:  # in no file: reported in the LOGDROP of the next cube written
                self._dropped += lost
                self._causes["disk"] += lost
                self._frames -= lost
            self._error = error
            self._changed.notify_all()
        return result
