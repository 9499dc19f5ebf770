"""Streaming FITS cube writer: header, pixels, padding; ``.tmp`` then rename; sidecar.

Our cubes (contract 2 of the design) are one primary HDU:

* ``BITPIX``/``BZERO`` from :func:`vampires.kernels.fits_format` (uint16 frames:
  BITPIX 16, BZERO 32768, BSCALE 1);
* ``NAXIS1`` = frame width (the *last* numpy axis), ``NAXIS2`` = height,
  ``NAXIS3`` = frames, so ``fits.getdata(path).shape == (naxis3, naxis2, naxis1)``;
* the header of :func:`vampires.fitslog.header.cube_header`.

A cube is written by :meth:`CubeWriter.write` from an immutable
:class:`CubeJob` (its own name, pixel buffer, per-frame times and cards, from
the moment the cube closes until the rename), in this order:

1. ``<stem>.txt.tmp``: the sidecar (small; written first so a killed logger
   leaves the frame times next to its partial cube);
2. ``<name>.fits.tmp``: header, pixels, zero padding to 2880, ``fsync``; the
   pixels go to the disk with ``O_DIRECT`` where the file system allows it
   (no page-cache copy, see :mod:`vampires.fitslog.directio`);
3. rename to ``<name>.fits``, then ``<stem>.txt.tmp`` to ``<stem>.txt``.

A ``*.fits`` glob therefore never sees a half-written cube. When the disk is
full or the folder unwritable, the partial ``.tmp`` is turned into a valid
truncated cube in place (complete frames only, see
:mod:`vampires.fitslog.recover`) when possible, else kept for ``vampires recover``;
:meth:`CubeWriter.write` reports what happened instead of raising, so the
logger keeps running.
"""

from __future__ import annotations

import errno
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import attrs

from vampires.config import shm_dir as default_shm_dir
from vampires.errors import FitsFormatError, VampiresError
from vampires.fitslog.directio import BounceBuffer, WriteChunk, write_all, write_cube_file
from vampires.fitslog.header import (
    BLOCK,
    Card,
    CardSource,
    cube_header,
    normalize_cards,
    read_header_file,
    timing_cards,
)
from vampires.fitslog.instrument import simulated_state
from vampires.fitslog.names import (
    TXT_TMP_SUFFIX,
    cube_filename,
    sidecar_path,
    tmp_path,
)
from vampires.fitslog.sidecar import FrameTimes, format_sidecar

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from vampires.kernels import FitsFormat

__all__ = ["CubeJob", "CubeWriter", "HeaderProvider", "WriteChunk", "WrittenCube"]

logger = logging.getLogger(__name__)

#: A callable returning extra header cards (called once per cube, in the writer thread).
HeaderProvider = Callable[[], CardSource]
_T = TypeVar("_T")
_CHUNK = 64 * 1024 * 1024
_BOUNCE = 16 * 1024 * 1024
_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})


@attrs.frozen(kw_only=True, eq=False)
class CubeJob:
    """Everything needed to write one cube; built when the cube closes, never shared.

    Attributes
    ----------
    stream
        Stream name.
    folder
        Folder of the cube.
    cube
        Pixel buffer in FITS storage, shape ``(capacity, height, width)``; the
        first ``nframes`` slots are written. The buffer is reused for a later
        cube only after :meth:`CubeWriter.write` returns.
    nframes
        Frames in this cube (NAXIS3).
    fmt
        Pixel storage (BITPIX/BZERO).
    times
        Counters and clocks of the ``nframes`` frames.
    stream_cards
        Stream keywords of the cube's first frame.
    index
        Cube index in the logging run (``LOGCUBE``).
    dropped_before
        Frames lost between the previous cube and this one (``LOGDROP``).
    dropped_inside
        Frames missed inside this cube (``LOGDRPIN``).
    close_reason
        Why it closed (``LOGCLOSE``).
    time_source
        ``"acquisition"`` when the frames carry camera time stamps, else ``"logger"``.
    """

    stream: str
    folder: Path
    cube: NDArray[np.generic]
    nframes: int
    fmt: FitsFormat
    times: FrameTimes
    stream_cards: tuple[Card, ...] = ()
    index: int = 0
    dropped_before: int = 0
    dropped_inside: int = 0
    close_reason: str = "full"
    time_source: str = "acquisition"

    @property
    def frame_shape(self) -> tuple[int, int]:
        """``(height, width)`` of one frame."""
        return (int(self.cube.shape[1]), int(self.cube.shape[2]))

    @property
    def clock(self) -> NDArray[np.float64]:
        """The per-frame times the name and timing cards come from."""
        if self.time_source == "acquisition":
            return self.times.acquisition_time
        return self.times.logger_time


@attrs.frozen(kw_only=True)
class WrittenCube:
    """What :meth:`CubeWriter.write` did with one job.

    Attributes
    ----------
    path
        The ``.fits`` file (None if nothing valid was produced).
    sidecar
        The ``.txt`` file (None if none).
    frames
        Frames now in ``path`` (fewer than the job's when the disk filled up).
    nbytes
        Bytes of ``path``.
    seconds
        Wall time spent writing.
    error
        Human-readable error, or None when the whole cube was written.
    kept_tmp
        A ``.tmp`` left for ``vampires recover`` (None if none).
    header_bytes
        Length of the FITS header (a cube buffer at this phase modulo
        :data:`~vampires.fitslog.directio.ALIGN` is written with no copy).
    direct_bytes
        Pixel bytes that went to the disk with ``O_DIRECT``.
    copied_bytes
        How many of those were first copied into an aligned scratch buffer
        (0 when the cube buffer was at the header's phase).
    """

    path: Path | None
    sidecar: Path | None
    frames: int
    nbytes: int
    seconds: float
    error: str | None = None
    kept_tmp: Path | None = None
    header_bytes: int = 0
    direct_bytes: int = 0
    copied_bytes: int = 0

    @property
    def ok(self) -> bool:
        """True when the whole cube is on disk."""
        return self.error is None

    @classmethod
    def nothing(
        cls, error: str, *, started: float | None = None, kept_tmp: Path | None = None
    ) -> WrittenCube:
        """No valid file produced: ``error`` says why (``started``: perf_counter at the start)."""
        seconds = 0.0 if started is None else time.perf_counter() - started
        return cls(
            path=None,
            sidecar=None,
            frames=0,
            nbytes=0,
            seconds=seconds,
            error=error,
            kept_tmp=kept_tmp,
        )


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        logger.debug("fsync of folder %s not supported", folder)
    finally:
        os.close(fd)


def _describe(exc: OSError, what: Path) -> str:
    reason = exc.strerror or str(exc)
    if exc.errno in _DISK_ERRNOS:
        return f"disk full writing {what}: {reason}"
    return f"cannot write {what}: {reason}"


class CubeWriter:
    """Writes :class:`CubeJob` s as FITS cubes with sidecars (one call per cube).

    Parameters
    ----------
    header_provider
        Callable returning extra cards (mapping or ``(name, value, comment)``
        tuples), called once per cube. When None, the aux header
        ``<shm_dir>/<stream>.aux.fits`` is used if it exists, else a simulated
        instrument state (:func:`vampires.fitslog.instrument.simulated_state`).
    shm_dir
        Where aux headers live (default: the resolved ``MILK_SHM_DIR``).
    fsync
        Flush each cube to the disk before the rename (default True).
    direct
        Write the pixels with ``O_DIRECT`` where the file system allows it
        (default True; buffered writes otherwise, same bytes).
    chunk_bytes
        Size of each ``write`` call.
    write_chunk
        Replacement for ``os.write`` (fault injection and throttling in tests).
    clock
        Wall clock for ``DATE``.
    version
        Written in ``LOGVERS``.

    Notes
    -----
    :meth:`write` is called from one thread at a time (the logger's writer thread).
    """

    def __init__(
        self,
        *,
        header_provider: HeaderProvider | None = None,
        shm_dir: Path | None = None,
        fsync: bool = True,
        direct: bool = True,
        chunk_bytes: int = _CHUNK,
        write_chunk: WriteChunk | None = None,
        clock: Callable[[], float] = time.time,
        version: str = "",
    ) -> None:
        if chunk_bytes < 1:
            msg = f"CubeWriter: chunk_bytes must be >= 1 (got {chunk_bytes})"
            raise ValueError(msg)
        self._provider = header_provider
        self._shm_dir = shm_dir
        self._fsync = fsync
        self._direct = direct
        self._bounce: BounceBuffer | None = None
        self._chunk = int(chunk_bytes)
        self._write_chunk: WriteChunk = write_chunk if write_chunk is not None else os.write
        self._clock = clock
        if not version:
            from vampires import __version__

            version = __version__
        self._version = version

    def _aux(self, job: CubeJob) -> tuple[list[str], list[Card]]:
        if self._provider is not None:
            try:
                return [], normalize_cards(self._provider())
            except Exception:  # a script's callable: never lose the cube over it
                logger.exception("%s: header provider failed; cube written without it", job.stream)
                return [], []
        folder = self._shm_dir if self._shm_dir is not None else default_shm_dir()
        aux_path = Path(folder) / f"{job.stream}.aux.fits"
        if aux_path.is_file():
            try:
                return read_header_file(aux_path), []
            except FitsFormatError as exc:
                logger.warning("%s: ignoring unreadable aux header: %s", job.stream, exc)
        return [], simulated_state(job.stream, job.frame_shape)

    def header(self, job: CubeJob, *, written: float | None = None) -> bytes:
        """Return the header bytes of a job's cube (padded to 2880).

        Parameters
        ----------
        job
            The cube.
        written
            Unix time for ``DATE`` (default: now).

        Returns
        -------
        bytes
        """
        clock = job.clock
        try:
            aux, extra = self._aux(job)
        except VampiresError as exc:
            logger.warning("%s: header provider failed: %s", job.stream, exc)
            aux, extra = [], []
        accounting: list[Card] = [
            ("LOGDROP", int(job.dropped_before), "frames lost between previous cube and this"),
            ("LOGDRPIN", int(job.dropped_inside), "frames missed inside this cube"),
            ("LOGCLOSE", f"{job.close_reason:<10}", "why the cube closed"),
            ("LOGCUBE", int(job.index), "cube index in this logging run"),
            ("LOGTSRC", "ACQ" if job.time_source == "acquisition" else "LOG", "clock of UT/MJD"),
            ("LOGVERS", self._version, "vampires logger version"),
        ]

        def bad(name: str, exc: Exception) -> None:
            logger.warning("%s: skipping header card %s: %s", job.stream, name, exc)

        return cube_header(
            fmt=job.fmt,
            frame_shape=job.frame_shape,
            nframes=job.nframes,
            aux=aux,
            extra=extra,
            stream=job.stream_cards,
            timing=timing_cards(
                float(clock[0]),
                float(clock[job.nframes - 1]),
                written=self._clock() if written is None else written,
                source=job.time_source,
            ),
            accounting=accounting,
            on_bad_card=bad,
        )

    def expected_header_bytes(
        self,
        stream: str,
        frame_shape: tuple[int, int],
        fmt: FitsFormat,
        stream_cards: tuple[Card, ...] = (),
        time_source: str = "logger",
    ) -> int:
        """Return the header length a cube of this stream would get now (a multiple of 2880).

        The logger places its cube buffers at this length's address phase so
        that their pixels go to the disk with no copy (:mod:`vampires.fitslog.directio`).
        """
        import numpy as np

        now = self._clock()
        times = FrameTimes(
            cnt0=np.zeros(1, np.int64),
            cnt1=np.zeros(1, np.int64),
            logger_time=np.full(1, now),
            acquisition_time=np.full(1, now),
        )
        job = CubeJob(
            stream=stream,
            folder=Path(),
            cube=np.empty((0, *frame_shape), fmt.disk),
            nframes=1,
            fmt=fmt,
            times=times,
            stream_cards=stream_cards,
            time_source=time_source,
        )
        return len(self.header(job, written=now))

    def _unique_final(self, job: CubeJob) -> Path:
        t_first = float(job.clock[0])
        for bump in range(1000):
            final = job.folder / cube_filename(job.stream, t_first + bump * 1e-9)
            taken = (
                final.exists()
                or tmp_path(final).exists()
                or final.with_suffix(TXT_TMP_SUFFIX).exists()
            )
            if not taken:
                return final
        msg = f"no free cube name in {job.folder} for {job.stream} at {t_first}"
        raise FileExistsError(errno.EEXIST, msg)

    def write(self, job: CubeJob) -> WrittenCube:
        """Write one cube and its sidecar; never raises for disk or folder errors.

        Parameters
        ----------
        job
            The cube to write (``nframes >= 1``).

        Returns
        -------
        WrittenCube
            What is on disk now, with an error message if not all of it.
        """
        started = time.perf_counter()
        if job.nframes < 1 or len(job.times) != job.nframes:
            msg = f"cube job for {job.stream} has {job.nframes} frames / {len(job.times)} times"
            return WrittenCube.nothing(msg)
        try:
            job.folder.mkdir(parents=True, exist_ok=True)
            final = self._unique_final(job)
        except OSError as exc:
            return WrittenCube.nothing(_describe(exc, job.folder), started=started)
        side_tmp = final.with_suffix(TXT_TMP_SUFFIX)
        fits_tmp = tmp_path(final)
        notes = (
            f"frames lost before this cube: {job.dropped_before}",
            f"frames missed inside this cube: {job.dropped_inside}",
            f"cube closed because: {job.close_reason}",
        )
        text = format_sidecar(job.times, stream=job.stream, fits_name=final.name, notes=notes)
        try:
            sidecar = memoryview(text.encode("ascii"))
            self._write_file(
                side_tmp, lambda fd: write_all(fd, sidecar, self._write_chunk, self._chunk)
            )
        except OSError as exc:
            side_tmp.unlink(missing_ok=True)
            return WrittenCube.nothing(_describe(exc, side_tmp), started=started)
        header = self.header(job)
        pixels = job.cube[: job.nframes]
        padding = -(len(header) + pixels.nbytes) % BLOCK
        try:
            direct_bytes, copied_bytes = self._write_file(
                fits_tmp,
                lambda fd: write_cube_file(
                    fd,
                    header,
                    pixels,
                    padding,
                    write_chunk=self._write_chunk,
                    chunk=self._chunk,
                    bounce=self._bounce_buffer,
                    direct=self._direct,
                ),
            )
            os.replace(fits_tmp, final)
            os.replace(side_tmp, sidecar_path(final))
            _fsync_dir(job.folder)
        except OSError as exc:
            return self._salvage(job, fits_tmp, final, exc, started)
        return WrittenCube(
            path=final,
            sidecar=sidecar_path(final),
            frames=job.nframes,
            nbytes=len(header) + pixels.nbytes + padding,
            seconds=time.perf_counter() - started,
            header_bytes=len(header),
            direct_bytes=direct_bytes,
            copied_bytes=copied_bytes,
        )

    @property
    def memory_bytes(self) -> int:
        """Bytes of the writer's own aligned scratch buffer (0 until first needed)."""
        return 0 if self._bounce is None else self._bounce.nbytes

    def _bounce_buffer(self) -> BounceBuffer:
        if self._bounce is None:
            self._bounce = BounceBuffer(min(self._chunk, _BOUNCE))
        return self._bounce

    def _write_file(self, path: Path, write: Callable[[int], _T]) -> _T:
        """Create ``path``, let ``write(fd)`` fill it, fsync; return what ``write`` returned."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            result = write(fd)
            if self._fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        return result

    def _salvage(
        self, job: CubeJob, fits_tmp: Path, final: Path, exc: OSError, started: float
    ) -> WrittenCube:
        from vampires.fitslog.recover import recover_tmp

        error = _describe(exc, fits_tmp)
        if final.exists():  # the rename happened; only the sidecar rename failed
            report = recover_tmp(final.with_suffix(TXT_TMP_SUFFIX))
            return WrittenCube(
                path=final,
                sidecar=report.sidecar,
                frames=job.nframes,
                nbytes=final.stat().st_size,
                seconds=time.perf_counter() - started,
                error=None if report.ok else f"{error}; {report.message}",
            )
        if not fits_tmp.exists():
            final.with_suffix(TXT_TMP_SUFFIX).unlink(missing_ok=True)
            return WrittenCube.nothing(error, started=started)
        report = recover_tmp(fits_tmp)
        logger.warning("%s: %s; %s", job.stream, error, report.message)
        if report.ok and report.path is not None:
            return WrittenCube(
                path=report.path,
                sidecar=report.sidecar,
                frames=report.frames,
                nbytes=report.path.stat().st_size,
                seconds=time.perf_counter() - started,
                error=f"{error}; truncated to {report.frames} of {job.nframes} frames",
            )
        return WrittenCube.nothing(
            f"{error}; kept {fits_tmp.name} ({report.message})",
            started=started,
            kept_tmp=fits_tmp if fits_tmp.exists() else None,
        )
