"""Streaming FITS cube writer: header, pixels, padding; ``.tmp`` then rename; sidecar.

Our cubes (contract 2 of the design) are one primary HDU:

* ``BITPIX``/``BZERO`` from :func:`vampires.kernels.fits_format` (uint16 frames:
  BITPIX 16, BZERO 32768, BSCALE 1);
* ``NAXIS1`` = frame width (the *last* numpy axis), ``NAXIS2`` = height,
  ``NAXIS3`` = frames, so ``fits.getdata(path).shape == (naxis3, naxis2, naxis1)``;
* the header of :func:`vampires.fitslog.header.cube_header`.

A cube is written *while it fills* (:meth:`CubeWriter.open`, :meth:`~CubeWriter.flush`,
:meth:`~CubeWriter.finish`; :meth:`CubeWriter.write` does the three at once):

1. ``open``: ``<name>.fits.tmp`` with the header (``NAXIS3`` = the planned
   frames, ``LOGCLOSE = 'writing'``), locked while the logger writes it, then
   ``<stem>.txt.tmp`` with the sidecar's ``#`` lines;
2. ``flush``: the sidecar rows of the new frames, then their pixels: whole
   aligned blocks with ``O_DIRECT`` straight from the cube buffer (see
   :mod:`vampires.fitslog.directio`), and with ``tail`` the partial block after
   them, buffered (rewritten with ``O_DIRECT`` once full); ``fdatasync`` every
   ``sync_interval``;
3. ``finish``: the rest, zero padding to 2880, the header rewritten in place
   with the final ``NAXIS3``, end times and accounting (same length: every
   card is 80 bytes), ``fsync``, the final sidecar, then the renames to
   ``<name>.fits`` and ``<stem>.txt``.

Each cube carries its own immutable :class:`CubeJob` (name, buffer, times),
so a cube is never written under another's name. A ``*.fits`` glob never
sees a half-written cube. When the disk is full or the folder unwritable,
the ``.tmp`` is truncated in place to its complete frames (``LOGCLOSE =
'recovered'``) when possible, else kept for ``vampires recover``;
:meth:`CubeWriter.finish` reports what happened instead of raising, so the
logger keeps running.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import attrs

from vampires._checks import ShmDir, check_int
from vampires.config import shm_dir as default_shm_dir
from vampires.errors import FitsFormatError, VampiresError
from vampires.fitslog.directio import ALIGN, BounceBuffer, WriteChunk, write_all, write_direct
from vampires.fitslog.header import (
    BLOCK,
    CARD,
    Card,
    CardSource,
    card_name,
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
from vampires.fitslog.sidecar import FrameTimes, format_rows, format_sidecar, sidecar_head

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from vampires.kernels import FitsFormat

__all__ = [
    "CubeJob",
    "CubeWriter",
    "HeaderProvider",
    "OpenCube",
    "WriteChunk",
    "WrittenCube",
    "replace_cards",
]

logger = logging.getLogger(__name__)

#: A callable returning extra header cards (called once per cube, in the writer thread).
HeaderProvider = Callable[[], CardSource]
_T = TypeVar("_T")
_CHUNK = 64 * 1024 * 1024
_BOUNCE = 16 * 1024 * 1024
_DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
_WRITING = "writing"  # LOGCLOSE of a cube still being written (a .fits.tmp)


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
        Time spent writing (the streaming flushes and the close; not the time
        spent waiting for frames).
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
        shm_dir: ShmDir = None,
        fsync: bool = True,
        direct: bool = True,
        chunk_bytes: int = _CHUNK,
        write_chunk: WriteChunk | None = None,
        clock: Callable[[], float] = time.time,
        version: str = "",
    ) -> None:
        check_int(chunk_bytes, "CubeWriter: chunk_bytes", 1)  # a ConfigError is a ValueError
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

    def header(
        self,
        job: CubeJob,
        *,
        written: float | None = None,
        aux: tuple[list[str], list[Card]] | None = None,
        planned: int | None = None,
    ) -> bytes:
        """Return the header bytes of a job's cube (padded to 2880).

        Parameters
        ----------
        job
            The cube.
        written
            Unix time for ``DATE`` (default: now).
        aux
            The aux cards to use (default: read them now).
        planned
            Header of a cube being opened: ``NAXIS3 = planned``, the end times
            equal to the first frame's, ``LOGCLOSE = 'writing'``; the close
            rewrites these cards in place (same length).

        Returns
        -------
        bytes
        """
        clock = job.clock
        if aux is None:
            aux = self._aux_cards(job)
        raw, extra = aux
        nframes = job.nframes if planned is None else planned
        last = job.nframes - 1 if planned is None else 0
        reason = job.close_reason if planned is None else _WRITING
        accounting: list[Card] = [
            ("LOGDROP", int(job.dropped_before), "frames lost between previous cube and this"),
            ("LOGDRPIN", int(job.dropped_inside), "frames missed inside this cube"),
            ("LOGCLOSE", f"{reason:<10}", "why the cube closed"),
            ("LOGCUBE", int(job.index), "cube index in this logging run"),
            ("LOGTSRC", "ACQ" if job.time_source == "acquisition" else "LOG", "clock of UT/MJD"),
            ("LOGVERS", self._version, "vampires logger version"),
        ]

        def bad(name: str, exc: Exception) -> None:
            logger.warning("%s: skipping header card %s: %s", job.stream, name, exc)

        return cube_header(
            fmt=job.fmt,
            frame_shape=job.frame_shape,
            nframes=nframes,
            aux=raw,
            extra=extra,
            stream=job.stream_cards,
            timing=timing_cards(
                float(clock[0]),
                float(clock[last]),
                written=self._clock() if written is None else written,
                source=job.time_source,
            ),
            accounting=accounting,
            on_bad_card=bad,
        )

    def _aux_cards(self, job: CubeJob) -> tuple[list[str], list[Card]]:
        try:
            return self._aux(job)
        except VampiresError as exc:
            logger.warning("%s: header provider failed: %s", job.stream, exc)
            return [], []

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

    # ------------------------------------------------------------------ streaming

    def open(
        self,
        job: CubeJob,
        *,
        sync_interval: float | None = 0.0,
    ) -> OpenCube:
        """Create a cube's ``.txt.tmp`` and ``.fits.tmp`` (header with the planned NAXIS3).

        Parameters
        ----------
        job
            The cube as it opens: ``cube`` is the whole buffer, ``nframes`` the
            planned NAXIS3 (the buffer's capacity), ``times`` the live per-frame
            arrays (only frame 0 is needed now; :meth:`flush` reads the rest as
            the frames arrive), the accounting known so far.
        sync_interval
            ``fdatasync`` period of :meth:`flush` (0 = every flush, None = only at close).

        Returns
        -------
        OpenCube
            Never raises for disk or folder errors: the error is kept in the
            returned value and :meth:`finish` reports it.
        """
        oc = OpenCube(job=job, sync_interval=sync_interval)
        try:
            self._open(oc, job)
        finally:
            oc.busy += time.perf_counter() - oc.started
        return oc

    def _open(self, oc: OpenCube, job: CubeJob) -> OpenCube:
        try:
            job.folder.mkdir(parents=True, exist_ok=True)
            oc.final = self._unique_final(job)
        except OSError as exc:
            oc.fail(_describe(exc, job.folder))
            return oc
        oc.fits_tmp = tmp_path(oc.final)
        oc.side_tmp = oc.final.with_suffix(TXT_TMP_SUFFIX)
        oc.aux = self._aux_cards(job)
        oc.header = self.header(job, aux=oc.aux, planned=job.nframes)
        try:
            oc.fd = os.open(oc.fits_tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            # a running logger holds this lock; `vampires recover` leaves a locked file alone
            fcntl.flock(oc.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            write_all(oc.fd, memoryview(oc.header), self._write_chunk, self._chunk)
        except OSError as exc:
            oc.fail(_describe(exc, oc.fits_tmp))
            return oc
        head = sidecar_head(
            stream=job.stream,
            fits_name=oc.final.name,
            notes=("cube being written (accounting notes are added when it closes)",),
        )
        try:
            oc.side_fd = os.open(oc.side_tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            write_all(oc.side_fd, memoryview(head.encode("ascii")), self._write_chunk, self._chunk)
        except OSError as exc:
            oc.fail(_describe(exc, oc.side_tmp))
        return oc

    def flush(self, oc: OpenCube, nframes: int, *, tail: bool = False, sync: bool = True) -> int:
        """Write the sidecar rows and pixels of frames ``0 .. nframes-1`` not yet on disk.

        The rows go first (a frame on disk always has its row). Pixels: only
        whole aligned blocks, straight from the cube buffer with ``O_DIRECT``
        (the head up to the first aligned file offset buffered); with ``tail``
        the partial block after them too (buffered; it is written again, with
        ``O_DIRECT``, when the block fills), so every frame taken is on disk.

        Returns
        -------
        int
            Pixel bytes written (0 after an error, kept in ``oc.error``).
        """
        if oc.error is not None or oc.fd < 0:
            return 0
        started = time.perf_counter()
        try:
            return self._flush(oc, nframes, tail=tail, sync=sync)
        finally:
            oc.busy += time.perf_counter() - started

    def _flush(self, oc: OpenCube, nframes: int, *, tail: bool, sync: bool) -> int:
        job = oc.job
        nframes = min(nframes, int(job.cube.shape[0]))
        try:
            if nframes > oc.rows:
                text = format_rows(job.times, oc.rows, nframes)
                write_all(
                    oc.side_fd, memoryview(text.encode("ascii")), self._write_chunk, self._chunk
                )
                oc.rows = nframes
            written = self._flush_pixels(oc, nframes * oc.frame_bytes, tail)
            now = time.monotonic()
            if (
                sync
                and self._fsync
                and oc.sync_interval is not None
                and (written or oc.unsynced)
                and now - oc.last_sync >= oc.sync_interval
            ):
                os.fdatasync(oc.fd)
                os.fdatasync(oc.side_fd)
                oc.last_sync, oc.unsynced = now, False
            elif written and self._fsync and oc.sync_interval is not None:
                oc.unsynced = True
        except OSError as exc:
            oc.fail(_describe(exc, oc.fits_tmp or job.folder))
            return 0
        return written

    def _flush_pixels(self, oc: OpenCube, avail: int, tail: bool) -> int:
        flat = oc.flat
        hlen = len(oc.header)
        before = oc.on_disk
        if not (self._direct and oc.direct_ok):
            if avail > oc.on_disk:
                os.lseek(oc.fd, hlen + oc.on_disk, os.SEEK_SET)
                write_all(oc.fd, flat[oc.on_disk : avail].data, self._write_chunk, self._chunk)
                oc.aligned = oc.on_disk = avail
            return oc.on_disk - before
        head = min(-hlen % ALIGN, flat.nbytes)
        if avail >= head and oc.aligned < head:
            os.lseek(oc.fd, hlen + oc.aligned, os.SEEK_SET)
            write_all(oc.fd, flat[oc.aligned : head].data, self._write_chunk, self._chunk)
            oc.aligned = head
            oc.on_disk = max(oc.on_disk, head)
        if oc.aligned >= head:
            body_end = head + (avail - head) // ALIGN * ALIGN
            if body_end > oc.aligned:
                os.lseek(oc.fd, hlen + oc.aligned, os.SEEK_SET)
                body = flat[oc.aligned : body_end]
                done, copied = write_direct(
                    oc.fd, body, self._write_chunk, self._chunk, self._bounce_buffer
                )
                oc.direct_bytes += done
                oc.copied_bytes += done if copied else 0
                if done < body.nbytes:  # refused or short: buffered from here on
                    oc.direct_ok = False
                    write_all(oc.fd, body[done:].data, self._write_chunk, self._chunk)
                oc.aligned = body_end
                oc.on_disk = max(oc.on_disk, body_end)
        if (tail or not oc.direct_ok) and avail > oc.on_disk:
            os.lseek(oc.fd, hlen + oc.on_disk, os.SEEK_SET)
            write_all(oc.fd, flat[oc.on_disk : avail].data, self._write_chunk, self._chunk)
            oc.on_disk = avail
            if not oc.direct_ok:
                oc.aligned = avail
        return oc.on_disk - before

    def finish(self, oc: OpenCube, job: CubeJob) -> WrittenCube:
        """Write what is left of a cube, rewrite its header in place, rename; close its files.

        Parameters
        ----------
        oc
            From :meth:`open` (and any :meth:`flush` calls).
        job
            The cube as it closed (``nframes``, accounting, close reason).

        Returns
        -------
        WrittenCube
            What is on disk now, with an error message if not all of it.
        """
        oc.started = time.perf_counter() - oc.busy  # seconds below = time spent writing
        if job.nframes < 1 or len(job.times) != job.nframes:
            oc.close_files()
            msg = f"cube job for {job.stream} has {job.nframes} frames / {len(job.times)} times"
            return WrittenCube.nothing(msg)
        if oc.fd < 0 or oc.final is None or oc.fits_tmp is None or oc.side_tmp is None:
            oc.close_files()
            oc.remove_files()
            return WrittenCube.nothing(oc.error or "cube file not created", started=oc.started)
        self.flush(oc, job.nframes, tail=True, sync=False)  # fsync'd below
        if oc.error is not None:
            return self._salvage(oc, job)
        final, fits_tmp, side_tmp = oc.final, oc.fits_tmp, oc.side_tmp
        hlen = len(oc.header)
        end = hlen + job.nframes * oc.frame_bytes
        try:
            os.ftruncate(oc.fd, end + (-end % BLOCK))  # zero padding (sparse: needs no space)
            os.pwrite(oc.fd, self._final_header(oc, job), 0)
            if self._fsync:
                os.fsync(oc.fd)
            oc.close_files()
            notes = (
                f"frames lost before this cube: {job.dropped_before}",
                f"frames missed inside this cube: {job.dropped_inside}",
                f"cube closed because: {job.close_reason}",
            )
            text = format_sidecar(job.times, stream=job.stream, fits_name=final.name, notes=notes)
            _write_text(side_tmp, text, fsync=self._fsync)
            os.replace(fits_tmp, final)
            os.replace(side_tmp, sidecar_path(final))
            _fsync_dir(job.folder)
        except OSError as exc:
            oc.fail(_describe(exc, fits_tmp))
            return self._salvage(oc, job)
        return WrittenCube(
            path=final,
            sidecar=sidecar_path(final),
            frames=job.nframes,
            nbytes=end + (-end % BLOCK),
            seconds=time.perf_counter() - oc.started,
            header_bytes=hlen,
            direct_bytes=oc.direct_bytes,
            copied_bytes=oc.copied_bytes,
        )

    def _final_header(self, oc: OpenCube, job: CubeJob) -> bytes:
        """Return the closing header, as long as the planned one (cards replaced by name if not)."""
        header = self.header(job, aux=oc.aux)
        if len(header) == len(oc.header):
            return header
        logger.warning("%s: closing header changed length; replacing cards in place", job.stream)
        return replace_cards(oc.header, header)

    def write(self, job: CubeJob) -> WrittenCube:
        """Write one whole cube and its sidecar at once; never raises for disk or folder errors.

        Parameters
        ----------
        job
            The cube to write (``nframes >= 1``).

        Returns
        -------
        WrittenCube
            What is on disk now, with an error message if not all of it.
        """
        if job.nframes < 1 or len(job.times) != job.nframes:
            msg = f"cube job for {job.stream} has {job.nframes} frames / {len(job.times)} times"
            return WrittenCube.nothing(msg)
        return self.finish(self.open(job), job)

    @property
    def memory_bytes(self) -> int:
        """Bytes of the writer's own aligned scratch buffer (0 until first needed)."""
        return 0 if self._bounce is None else self._bounce.nbytes

    def _bounce_buffer(self) -> BounceBuffer:
        if self._bounce is None:
            self._bounce = BounceBuffer(min(self._chunk, _BOUNCE))
        return self._bounce

    def _salvage(self, oc: OpenCube, job: CubeJob) -> WrittenCube:
        """Keep the complete frames of a cube whose write failed (truncated in place)."""
        error = oc.error or "write failed"
        final, fits_tmp, side_tmp = oc.final, oc.fits_tmp, oc.side_tmp
        if final is None or fits_tmp is None or side_tmp is None:
            oc.close_files()
            return WrittenCube.nothing(error, started=oc.started)
        if final.exists() and not fits_tmp.exists():  # renamed; only the sidecar rename failed
            oc.close_files()
            with contextlib.suppress(OSError):
                _write_text(sidecar_path(final), _sidecar_text(job, final), fsync=False)
                side_tmp.unlink(missing_ok=True)
            return WrittenCube(
                path=final,
                sidecar=sidecar_path(final),
                frames=job.nframes,
                nbytes=final.stat().st_size,
                seconds=time.perf_counter() - oc.started,
                error=None,
            )
        hlen = len(oc.header)
        try:
            size = os.fstat(oc.fd).st_size if oc.fd >= 0 else 0
        except OSError:
            size = 0
        frames = min(job.nframes, max(0, size - hlen) // oc.frame_bytes) if size >= hlen else 0
        if frames == 0:
            oc.close_files()
            oc.remove_files()
            return WrittenCube.nothing(error, started=oc.started)
        kept = attrs.evolve(
            job, nframes=frames, times=job.times.truncated(frames), close_reason="recovered"
        )
        end = hlen + frames * oc.frame_bytes
        try:
            os.ftruncate(oc.fd, end)
            os.ftruncate(oc.fd, end + (-end % BLOCK))  # sparse: needs no space
            os.pwrite(oc.fd, self._final_header(oc, kept), 0)
            with contextlib.suppress(OSError):
                os.fsync(oc.fd)
            oc.close_files()
            _write_text(sidecar_path(final), _sidecar_text(kept, final), fsync=True)
            os.replace(fits_tmp, final)
            side_tmp.unlink(missing_ok=True)
        except OSError as exc:
            oc.close_files()
            logger.warning("%s: %s; keeping %s: %s", job.stream, error, fits_tmp.name, exc)
            return WrittenCube.nothing(
                f"{error}; kept {fits_tmp.name} for 'vampires recover' ({exc.strerror or exc})",
                started=oc.started,
                kept_tmp=fits_tmp if fits_tmp.exists() else None,
            )
        logger.warning("%s: %s; kept %d of %d frames", job.stream, error, frames, job.nframes)
        return WrittenCube(
            path=final,
            sidecar=sidecar_path(final),
            frames=frames,
            nbytes=final.stat().st_size,
            seconds=time.perf_counter() - oc.started,
            error=f"{error}; truncated to {frames} of {job.nframes} frames",
            header_bytes=hlen,
            direct_bytes=oc.direct_bytes,
            copied_bytes=oc.copied_bytes,
        )


def _sidecar_text(job: CubeJob, final: Path) -> str:
    notes = (
        f"frames lost before this cube: {job.dropped_before}",
        f"frames missed inside this cube: {job.dropped_inside}",
        f"cube closed because: {job.close_reason}",
    )
    return format_sidecar(job.times, stream=job.stream, fits_name=final.name, notes=notes)


def _write_text(path: Path, text: str, *, fsync: bool) -> None:
    """Write ``path`` whole or not at all (``<path>.part``, then rename over it)."""
    part = path.with_name(path.name + ".part")
    try:
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            write_all(fd, memoryview(text.encode("ascii")), os.write, _CHUNK)
            if fsync:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(part, path)
    except OSError:
        part.unlink(missing_ok=True)
        raise


def replace_cards(old: bytes, new: bytes) -> bytes:
    """Return header ``old`` with the cards that ``new`` also has replaced by ``new``'s.

    Every card is 80 bytes, so the result is as long as ``old`` (the in-place
    rewrite of a cube's header at close, and by ``vampires recover``).
    """
    fresh = {card_name(c): c for c in _cards(new)}
    keep = ("", "END", "COMMENT", "HISTORY")
    out = [c if card_name(c) in keep else fresh.get(card_name(c), c) for c in _cards(old)]
    return "".join(out).encode("ascii")


def _cards(header: bytes) -> list[str]:
    text = header.decode("ascii")
    return [text[i : i + CARD] for i in range(0, len(text), CARD)]


@attrs.define(eq=False)
class OpenCube:
    """A cube being written (writer thread only): its files and how far each one is.

    Attributes
    ----------
    job
        The cube as it opened (live buffers; ``nframes`` = planned NAXIS3).
    sync_interval
        ``fdatasync`` period (s; 0 = every flush, None = only at close).
    final
        The ``.fits`` name it gets at close.
    fits_tmp, side_tmp
        Its ``.fits.tmp`` and ``.txt.tmp``.
    header
        The header on disk (planned NAXIS3, ``LOGCLOSE = 'writing'``).
    rows
        Sidecar rows on disk.
    aligned
        Pixel bytes on disk up to the last whole aligned block.
    on_disk
        Pixel bytes on disk (the partial block included).
    error
        The first write error (the cube is then salvaged at close).
    """

    job: CubeJob
    sync_interval: float | None = 0.0
    final: Path | None = None
    fits_tmp: Path | None = None
    side_tmp: Path | None = None
    aux: tuple[list[str], list[Card]] = attrs.field(factory=lambda: ([], []))
    header: bytes = b""
    fd: int = -1
    side_fd: int = -1
    rows: int = 0
    aligned: int = 0
    on_disk: int = 0
    direct_ok: bool = True
    direct_bytes: int = 0
    copied_bytes: int = 0
    unsynced: bool = False
    pending_since: float | None = None
    error: str | None = None
    started: float = attrs.field(factory=time.perf_counter)
    busy: float = 0.0
    last_sync: float = attrs.field(factory=time.monotonic)

    @property
    def frame_bytes(self) -> int:
        """Bytes of one frame."""
        return int(self.job.cube[0].nbytes) if self.job.cube.shape[0] else 0

    @property
    def flat(self) -> NDArray[np.uint8]:
        """The cube buffer as bytes."""
        return self.job.cube.reshape(-1).view("u1")

    @property
    def frames_on_disk(self) -> int:
        """Complete frames in the ``.fits.tmp`` now."""
        fb = self.frame_bytes
        return min(self.rows, self.on_disk // fb) if fb else 0

    def fail(self, error: str) -> None:
        """Keep the first error."""
        if self.error is None:
            self.error = error

    def close_files(self) -> None:
        """Close both files (idempotent)."""
        for name in ("fd", "side_fd"):
            fd = getattr(self, name)
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
                setattr(self, name, -1)

    def remove_files(self) -> None:
        """Remove the ``.tmp`` files (nothing worth keeping)."""
        for path in (self.fits_tmp, self.side_tmp):
            if path is not None:
                with contextlib.suppress(OSError):
                    path.unlink(missing_ok=True)
