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
import gc
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from vampires._checks import ShmDir, check_int, check_seconds
from vampires.errors import (
    ConfigError,
    LoggerError,
    StreamError,
    StreamNotFoundError,
    StreamTimeout,
    TornFrameError,
)
from vampires.fitslog.buffers import BufferKey, BufferPool
from vampires.fitslog.cube import SPLIT_KEYS, FillingCube
from vampires.fitslog.directio import ALIGN
from vampires.fitslog.names import check_folder, check_stream_name, cube_filename, cube_folder
from vampires.fitslog.policy import CubePolicy
from vampires.fitslog.status import LoggerState, LoggerStatus, RunCounts
from vampires.fitslog.writer import CubeWriter, HeaderProvider, WriteChunk
from vampires.fitslog.writing import PREPARE, Jobs, WriterLoop

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from vampires.fitslog.header import Card
    from vampires.kernels import FitsFormat
    from vampires.stream import Stream, StreamReader

__all__ = ["SPLIT_KEYS", "Logger", "LoggerState", "LoggerStatus"]

logger = logging.getLogger(__name__)

_POLL = 0.01  # s: longest a command waits for the reader while saving
_IDLE_POLL = 0.25  # s: stream re-attach / staleness check period while idle
_STALE_CHECK = 0.25  # s: staleness check period while frames flow
_ACK_TIMEOUT = 10.0
_SWITCH_INTERVAL = 0.001  # s: the GIL goes back to the reader within this (default 5 ms)
_START_WAIT = 60.0  # s: start() waits this long for the buffers by default
_STUCK = 0.4  # s: a torn read that took this long waited on a stuck write flag
_BEHIND = 1.0  # s: a closed cube still being written after this: the writer is behind


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
        Default ``buffers + 2`` (at most 16); ``status().memory_bytes`` says what is used.
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
        shm_dir: ShmDir = None,
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
        buffers = check_int(buffers, f"Logger({stream_name!r}): buffers", 2, 16)
        if time_source not in ("acquisition", "logger"):
            msg = f"Logger: time_source must be 'acquisition' or 'logger' (got {time_source!r})"
            raise ConfigError(msg)
        self._clock: Callable[[], float] = clock if clock is not None else time.time
        self._shm_dir = Path(shm_dir) if shm_dir is not None else None
        spare_max = min(buffers + 2, 16) if max_buffers is None else max_buffers
        spare_max = check_int(spare_max, "Logger: max_buffers", buffers, 16)
        self._next_spare_check = 0.0
        self._time_source = time_source
        self._nice = None if nice is None else check_int(nice, "Logger: nice", -20, 19)
        self._start_wait = check_seconds(
            start_wait, "Logger: start_wait", 0.0, 3600.0, lo_open=False
        )

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
        self._jobs: Jobs = queue.Queue()
        self._pool = BufferPool(
            self._lock, size=buffers, max_size=spare_max, on_error=self._set_error
        )
        # reader-thread state
        self._stream: Stream | None = None
        self._reader: StreamReader | None = None
        self._cube: FillingCube | None = None
        self._saving = False
        self._last_cube = False
        self._cubes_closed = 0
        self._drop_carry = 0
        self._start_pending = False
        self._prepared_key: BufferKey | None = None
        self._run = 0
        self._uid = 0
        self._period: float | None = None
        self._last_frame_at: float | None = None
        self._reattach = False
        self._spec: tuple[tuple[int, int], np.dtype[Any]] | None = None
        self._spec_cards: tuple[Card, ...] = ()  # stream keywords at attach (header estimate)
        # shared counters (under _lock)
        self._counts = RunCounts()
        self._last_folder: Path | None = None
        self._started_at: float | None = None
        self._started_wall: float | None = None
        self._closed = False
        self._closing = False
        self._reader_thread = threading.Thread(
            target=self._reader_main, name=f"logger-{self._name}-reader", daemon=True
        )
        writer_loop = WriterLoop(
            self._name,
            jobs=self._jobs,
            writer=self._writer,
            pool=self._pool,
            counts=self._counts,
            changed=self._changed,
            prepare=self._prepare_buffers,
            renice=self._renice,
        )
        self._writer_thread = threading.Thread(
            target=writer_loop.run, name=f"logger-{self._name}-writer", daemon=True
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
            self._jobs.put(PREPARE)

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
        return LoggerState.FINISHING if self._counts.pending else LoggerState.IDLE

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
                frames=self._counts.frames,
                files=self._counts.files,
                dropped=self._counts.dropped,
                current_file=cube.name if cube is not None and cube.n else None,
                folder=folder,
                memory_bytes=self._pool.nbytes + self._writer.memory_bytes,
                buffers=self._pool.count,
                error=self._counts.error,
                last_file=self._counts.last_file,
                attached=stream is not None,
                frame_shape=shape,
                queued=self._counts.pending,
                written_bytes=self._counts.written_bytes,
                started=self._started_at,
                write_seconds=self._counts.write_seconds,
                on_disk_frames=self._counts.on_disk_frames if cube is not None and cube.n else 0,
                dropped_late=self._counts.causes["late"],
                dropped_no_buffer=self._counts.causes["buffer"],
                dropped_disk=self._counts.causes["disk"],
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
        progress = self._counts.progress
        while self._writer_thread.is_alive():
            self._writer_thread.join(max(0.1, min(1.0, deadline - time.monotonic())))
            if self._counts.progress != progress:
                progress = self._counts.progress
                deadline = max(deadline, time.monotonic() + timeout)
            elif time.monotonic() >= deadline:
                break
        with self._lock:
            self._pool.clear()
            self._closed = True
            self._changed.notify_all()
        if self._reader_thread.is_alive() or self._writer_thread.is_alive():
            logger.warning("logger %s: threads did not stop within %.1f s", self._name, timeout)

    # ------------------------------------------------------------------ reader thread

    def _set_error(self, text: str | None) -> None:
        with self._lock:
            if text != self._counts.error and text is not None:
                logger.warning("logger %s: %s", self._name, text)
            self._counts.error = text

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
            if self._counts.error and "stream" in self._counts.error:
                self._counts.error = None
        self._jobs.put(PREPARE)  # let the writer thread allocate and page in the buffers
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
                key = BufferKey.of(spec[0], spec[1], policy)
            except ConfigError:
                return True
            return self._prepared_key == key

    def _begin_saving(self) -> None:
        # What exists now (numpy, numba, the stream, the buffers...) leaves the cyclic
        # garbage collector for good: a full collection walked it in whatever thread
        # allocated, seen as 10-20 ms of reader CPU between two frames on a busy
        # machine, longer than a frame period of a stream with no circular buffer.
        gc.freeze()
        with self._lock:
            self._counts.new_run()
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
                    self._jobs.put(PREPARE)
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
        self, cube: FillingCube, slot: int, cnt0: int, cnt1: int, now: float, acquired: float
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
            self._counts.frames += 1
        if slot == 0:  # the writer creates its .fits.tmp and streams it from now on
            opening = cube.opening_job(self._name, self._cubes_closed, self._time_source)
            self._jobs.put(("open", cube, opening))
        if cube.n >= cube.capacity:
            self._close_cube("full")

    def _snapshot(self, stream: Stream, cube: FillingCube) -> None:
        """Take the stream keywords of the cube's first frame."""
        try:
            version = stream.keywords.version
            cards = tuple(stream.keywords.cards())
        except StreamError as exc:
            logger.warning("logger %s: cannot read keywords: %s", self._name, exc)
            cards, version = (), 0
        cube.take_keywords(cards, version)

    def _keywords_changed(self, stream: Stream, cube: FillingCube) -> bool:
        changed = cube.changed_split_keys(stream)
        if changed:
            logger.info("logger %s: %s changed; closing the cube", self._name, ", ".join(changed))
        return bool(changed)

    def _carry(self, n: int, cause: str) -> None:
        """Count ``n`` lost frames, reported in the next cube's ``LOGDROP``."""
        if n > 0:
            with self._lock:
                self._drop_carry += n
                self._counts.drop(n, cause)

    def _take_carry(self) -> int:
        with self._lock:
            carry, self._drop_carry = self._drop_carry, 0
        return carry

    def _add_dropped(self, n: int, cause: str) -> None:
        if n > 0:
            with self._lock:
                self._counts.drop(n, cause)

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

    def _new_cube(self, stream: Stream) -> FillingCube | None:
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
        buffer = self._pool.take(BufferKey(shape=shape, dtype=dtype.str, frames=capacity), fmt)
        if buffer is None:
            return None
        self._uid += 1
        return FillingCube.empty(
            uid=self._uid,
            buffer=buffer,
            fmt=fmt,
            policy=policy,
            run=self._run,
            dropped_before=self._take_carry(),
        )

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
                    key = BufferKey.of(shape, dtype, policy)
                    fmt = kernels.fits_format(dtype)
                except ConfigError:
                    return
                if not self._pool.reserve(key):
                    self._pool_done(key)
                    return
            buffer = self._pool.allocate(key, fmt)
            if buffer is None:
                with self._lock:
                    self._pool_done(key)  # out of memory: said in the status; do not wait
                return
            buffer.touch()
            self._pool.add(buffer)

    def _pool_done(self, key: BufferKey) -> None:
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
        self._pool.rephase(nbytes % ALIGN)

    def _maybe_spare(self) -> None:
        """Map one more buffer (helper thread) when a closed cube waits > 1 s and none is free."""
        now = time.monotonic()
        if now < self._next_spare_check:
            return
        self._next_spare_check = now + _STALE_CHECK
        from vampires import kernels

        with self._lock:
            behind = bool(self._counts.closed_at) and now - self._counts.closed_at[0] > _BEHIND
            if not behind or self._spec is None or self._pool.allocating:
                return
            shape, dtype = self._spec
            try:
                key = BufferKey.of(shape, dtype, self._policy)
                fmt = kernels.fits_format(dtype)
            except ConfigError:
                return
            if not self._pool.reserve_spare(key):
                return
        threading.Thread(
            target=self._add_spare,
            args=(key, fmt),
            name=f"logger-{self._name}-spare",
            daemon=True,
        ).start()

    def _add_spare(self, key: BufferKey, fmt: FitsFormat) -> None:
        added = self._pool.add_spare(key, fmt)
        if added is None:
            self._next_spare_check = time.monotonic() + 30.0  # RAM is short: not soon again
            return
        count, memory = added
        logger.info(
            "logger %s: writer behind; cube buffer added (%d buffers, %.2f GB)",
            self._name,
            count,
            memory / 1e9,
        )

    def _close_cube(self, reason: str) -> None:
        cube, self._cube = self._cube, None
        if cube is None:
            return
        if cube.n == 0:
            with self._lock:
                self._drop_carry += cube.dropped_before
            self._pool.give_back(cube.buffer)
            return
        job = cube.closing_job(self._name, self._cubes_closed, reason, self._time_source)
        with self._lock:
            self._counts.pending += 1
            self._counts.closed_at.append(time.monotonic())
            self._last_folder = cube.folder
        self._jobs.put(("close", job, cube.buffer, cube.uid, cube.run))
        self._cubes_closed += 1
        cubes = self._policy.cubes
        if self._saving and (self._last_cube or (cubes > 0 and self._cubes_closed >= cubes)):
            self._stop_saving()
        with self._changed:
            self._changed.notify_all()
