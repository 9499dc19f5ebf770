"""Shared-memory image streams byte-compatible with milk's ImageStreamIO 2.00.

A :class:`Stream` maps ``$MILK_SHM_DIR/<name>.im.shm`` (layout in
:mod:`vampires.stream.layout`) and follows the C library's protocols:

Writer (:meth:`Stream.write`, :meth:`Stream.write_with`)
    ``write = 1``; pixels copied; keywords given with the frame written; the
    fast circular-buffer slot filled when ``CBsize > 0``; ``writetime`` and
    ``atime`` stamped (``CLOCK_TAI`` as the C library, see
    :mod:`vampires.stream.clock`); ``cnt0 += 1`` (and ``cnt1`` = slice index
    for a 2-D frame written into a 3-D rolling buffer); ``write = 0``; every
    semaphore whose value is below ``SEMAPHORE_MAXVAL`` (10) posted with our
    PID stored in ``semWritePID``; ``semlog`` posted the same way.

Reader (:class:`StreamReader`)
    See :mod:`vampires.stream.reader`.

Axis order: numpy order. milk's ``size[0]`` is the fastest axis (FITS NAXIS1,
the width), so ``stream.shape == (size[1], size[0])`` for an image, and
``(size[2], size[1], size[0])`` for a cube.

Thread safety: one writer per stream; readers each own a
:class:`StreamReader`. Memory ordering relies on x86-64's total store order
(as the C library does).

Where we differ from the C library, on purpose (files stay interchangeable):

- ``semlog`` is initialised with ``sem_init(pshared=1)``; the C library leaves
  it zero-filled, which glibc treats as a process-private semaphore.
- a released reader slot is set back to 0 (the C library never releases).
- ``CBFRAMEMD`` of a circular-buffer slot is filled (cnt0, cnt1, times).
- keyword names, string values and comments keep a NUL in their fields
  (15, 15 and 79 characters at most) because milk reads them with ``strcpy``.
- streams are created in a temporary file and linked into place, so no
  reader ever sees a half-initialised file.
"""

from __future__ import annotations

import contextlib
import logging
import math
import mmap
import os
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import numpy as np

from vampires._checks import check_int
from vampires.config import stream_mode
from vampires.errors import (
    ConfigError,
    StreamClosedError,
    StreamError,
    StreamExistsError,
    StreamLayoutError,
    TornFrameError,
)
from vampires.stream import clock
from vampires.stream._file import (
    check_atime,
    check_dtype,
    check_file,
    check_shape,
    coerce_frame,
    new_file,
    open_file,
    shape_of,
)
from vampires.stream._views import (
    MAX_TORN,
    STUCK_WRITE_S,
    Views,
    build_views,
    decode_metadata,
    read_slot,
    slot_holding,
)
from vampires.stream.keywords import KeywordValue, StreamKeywords, _Card, _cards_from
from vampires.stream.layout import (
    DATATYPE_DTYPES,
    METADATA_DTYPE,
    SEMAPHORE_MAXVAL,
    WRITABLE_DTYPES,
    StreamLayout,
)
from vampires.stream.names import (
    _SUFFIX,
    _resolve_dir,
    check_stream_name,
    list_streams,
    stream_path,
)
from vampires.stream.reader import Frame, FrameInfo, StreamReader

if TYPE_CHECKING:
    from numpy.typing import DTypeLike, NDArray

    from vampires._checks import ShmDir

__all__ = [
    "Frame",
    "FrameInfo",
    "KeywordValue",
    "Stream",
    "StreamKeywords",
    "StreamReader",
    "list_streams",
    "stream_path",
    "suggested_circular_buffer",
]

_MAP_POPULATE = getattr(mmap, "MAP_POPULATE", 0)  # Linux
logger = logging.getLogger(__name__)

#: Default memory for a stream's circular buffer (see suggested_circular_buffer).
CIRCULAR_BUFFER_BYTES = 128_000_000


def suggested_circular_buffer(
    shape: tuple[int, ...], dtype: DTypeLike, *, nbytes: int = CIRCULAR_BUFFER_BYTES
) -> int:
    """Frames of circular buffer worth keeping for a stream: ``nbytes`` of them, 4..64.

    The buffer lets readers that fall behind catch up (``reader(catch_up=True)``)
    and makes every read of the newest frame consistent even while the
    writer overwrites the main pixel array.

    Parameters
    ----------
    shape, dtype
        Frame shape and pixel type.
    nbytes
        Memory budget for the buffer.

    Returns
    -------
    int
        Number of frames, at least 4 and at most 64.
    """
    frame = max(1, math.prod(shape) * np.dtype(dtype).itemsize)
    return max(4, min(64, nbytes // frame))


class Stream:
    """A shared-memory image stream (milk ImageStreamIO 2.00 file).

    Get one with :meth:`create` or :meth:`open`; use it as a context manager
    or call :meth:`close` (idempotent). See the module docstring for the
    writer and reader protocols and the axis order.
    """

    def __init__(self, path: Path, name: str, mm: mmap.mmap, layout: StreamLayout) -> None:
        """Wrap a validated mapping; use :meth:`create` or :meth:`open` instead."""
        self._path = path
        self._name = name
        self._mm: mmap.mmap | None = mm
        self._layout = layout
        md = np.frombuffer(mm, dtype=METADATA_DTYPE, count=1)[0]
        self._shape = shape_of(md)
        self._dtype: np.dtype[Any] = DATATYPE_DTYPES[int(md["datatype"])]
        del md
        self._inode = 0  # set by _attach from the mapped descriptor
        self._fresh_until = 0.0  # is_stale(max_age): last "not stale" answer valid until
        self._fd = -1  # a descriptor of the mapped file (set by _attach), for claim locks
        self._size = layout.total
        self._v: Views | None = build_views(mm, layout, self._shape, self._dtype, name)
        for sem in self._v.sems:  # waits check the file size before touching the mapping
            sem.guard = self._check_size
        self._keywords = StreamKeywords(self)
        self._readers: list[StreamReader] = []
        self._scratch: NDArray[Any] | None = None

    # ---- construction

    @classmethod
    def create(
        cls,
        name: str,
        shape: int | tuple[int, ...],
        dtype: DTypeLike,
        *,
        nkeywords: int = 50,
        nsemaphores: int = 10,
        circular_buffer: int = 0,
        exist_ok: bool = False,
        shm_dir: ShmDir = None,
        mode: int | None = None,
    ) -> Stream:
        """Create a stream file laid out exactly as the C library would.

        Parameters
        ----------
        name
            1-79 printable ASCII characters, no ``/``, no ``..``.
        shape
            Numpy order: ``(height, width)``, ``(depth, height, width)`` or ``(n,)``.
        dtype
            uint8, int16, uint16, int32, uint32, int64, uint64, float32 or float64.
        nkeywords
            Keyword slots (``NBkw``, 0-65535).
        nsemaphores
            Reader semaphores (``sem``, 1-65535); each reader holds one.
        circular_buffer
            Fast circular-buffer slots (``CBsize``); 0 for none.
        exist_ok
            If a stream of that name exists: reuse it when its shape and dtype
            match, else replace it by a new file (new inode; open users see
            :meth:`is_stale`). Without it an existing stream raises.
        shm_dir
            Folder; defaults to the C library's (``$MILK_SHM_DIR``, ``/milk/shm``, ``/tmp``).
        mode
            File permissions; default :func:`vampires.config.stream_mode`
            (``$VAMPIRES_STREAM_MODE``, else 0666 like the C library: any local
            user may attach, and so also damage the stream).

        Returns
        -------
        Stream

        Raises
        ------
        StreamExistsError
            The stream exists and ``exist_ok`` is false.
        StreamError
            Invalid argument or the folder is missing / not writable.
        """
        name = check_stream_name(name)
        dims = check_shape(shape)
        dt = check_dtype(dtype)
        nkw = check_int(nkeywords, "nkeywords", 0, 65535, error=StreamError)
        nsem = check_int(nsemaphores, "nsemaphores", 1, 65535, error=StreamError)
        cbsize = check_int(circular_buffer, "circular_buffer", 0, 2**32 - 1, error=StreamError)
        try:
            perms = stream_mode(mode)
        except ConfigError as exc:
            raise StreamError(str(exc)) from exc
        folder = _resolve_dir(shm_dir)
        path = folder / f"{name}{_SUFFIX}"
        if os.path.lexists(path):
            if not exist_ok:
                msg = (
                    f"stream {name!r} already exists ({path}); open it with Stream.open, "
                    "pass exist_ok=True or remove it first"
                )
                raise StreamExistsError(msg)
            with contextlib.suppress(StreamError):
                old = cls.open(name, shm_dir=folder)
                if old.shape == dims and old.dtype == dt:
                    return old
                old.close()
        if not folder.is_dir():
            msg = f"shm folder {folder} does not exist; create it (on a tmpfs) or set MILK_SHM_DIR"
            raise StreamError(msg)
        with new_file(
            folder, path, name, dims, dt, nkw, nsem, cbsize, perms, exist_ok=exist_ok
        ) as fd:
            return cls._attach(path, name, fd)

    @classmethod
    def open(cls, name: str, *, shm_dir: ShmDir = None) -> Stream:
        """Attach to an existing stream (C- or Python-made).

        The file is validated through a read-only descriptor first; nothing
        is modified before it passed every check.

        Parameters
        ----------
        name
            Stream name.
        shm_dir
            Folder; defaults to the C library's.

        Returns
        -------
        Stream

        Raises
        ------
        StreamNotFoundError
            No such stream.
        StreamVersionError
            Not an ImageStreamIO 2.00 file.
        StreamLayoutError
            Truncated or inconsistent file.
        StreamError
            Invalid name, or no read-write permission.
        """
        name = check_stream_name(name)
        path = _resolve_dir(shm_dir) / f"{name}{_SUFFIX}"
        with open_file(path, name) as fd:
            return cls._attach(path, name, fd)

    @classmethod
    def _attach(cls, path: Path, name: str, fd: int) -> Stream:
        layout = check_file(fd, path)
        # page tables filled now: the first pass over a freshly attached stream's pixels
        # otherwise takes a fault per 4 KiB page (1200 for an MBI frame), long enough
        # for a writer without a circular buffer to overwrite the first frames read
        mm = mmap.mmap(fd, layout.total, flags=mmap.MAP_SHARED | _MAP_POPULATE)
        stream = cls(path, name, mm, layout)
        stream._inode = os.fstat(fd).st_ino
        stream._fd = os.dup(fd)
        return stream

    @staticmethod
    def exists(name: str, *, shm_dir: ShmDir = None) -> bool:
        """Tell whether a stream file of that name exists.

        Parameters
        ----------
        name
            Stream name.
        shm_dir
            Folder; defaults to the C library's.

        Returns
        -------
        bool
        """
        return stream_path(name, shm_dir=shm_dir).is_file()

    # ---- lifetime

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Release readers and unmap; idempotent.

        Arrays returned by :meth:`view` keep the memory mapped until they are
        garbage-collected (never a dangling pointer).
        """
        if self._v is None:
            return
        for reader in list(self._readers):
            reader.close()
        self._v = None
        self._scratch = None
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)
        mm, self._mm = self._mm, None
        if mm is not None:
            with contextlib.suppress(BufferError):  # a user still holds a view
                mm.close()

    def destroy(self) -> None:
        """Remove the stream file (if it is still this stream's) and close.

        A file re-created meanwhile under the same name (other inode) is left alone.
        """
        try:
            st = os.stat(self._path)
        except FileNotFoundError:
            st = None
        if st is not None and st.st_ino == self._inode:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._path)
        self.close()

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._v is None

    def _lock_fd(self) -> int:
        """Open a new file description of the mapped inode (for flock); -1 if impossible."""
        if self._fd < 0:
            return -1
        try:  # a fresh description, so threads of this process exclude each other too
            return os.open(f"/proc/self/fd/{self._fd}", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return -1

    def _views(self) -> Views:
        v = self._v
        if v is None:
            msg = f"stream {self._name!r} is closed; open it again with Stream.open"
            raise StreamClosedError(msg)
        self._check_size()
        return v

    def _check_size(self) -> None:
        """Refuse to touch the mapping once the file is shorter than it (SIGBUS otherwise).

        Anyone who may write the file (mode 0666, as the C library) can truncate
        it; touching a mapped page past the new end kills the process with
        SIGBUS, which Python cannot catch. One ``fstat`` (~0.5 us) before every
        use of the mapping turns that into a :class:`StreamLayoutError`.
        """
        if self._fd < 0:
            return
        try:
            size = os.fstat(self._fd).st_size
        except OSError:
            return
        if size < self._size:
            msg = (
                f"stream {self._name!r}: its file shrank to {size} bytes under this process "
                f"(the mapping needs {self._size}): truncated by another process or being "
                "re-created; open the stream again"
            )
            raise StreamLayoutError(msg)

    def is_stale(self, max_age: float = 0.0) -> bool:
        """Tell whether the file vanished or was re-created (other inode or size).

        Parameters
        ----------
        max_age
            Seconds a "not stale" answer may be reused: a loop waking at every
            frame asks with e.g. 0.1 and pays the ``stat()`` system call a few
            times a second (a re-created stream stops waking the old mapping,
            so such a loop times out and asks again soon). 0: always look.

        Returns
        -------
        bool
            True when consumers should re-open the stream.
        """
        now = time.monotonic()
        if max_age > 0 and now < self._fresh_until:
            return False
        try:
            st = os.stat(self._path)
        except FileNotFoundError:
            return True
        if st.st_ino != self._inode or st.st_size != self._size:
            return True
        self._fresh_until = now + max_age
        return False

    def __repr__(self) -> str:
        state = "closed" if self._v is None else f"cnt0={self.cnt0}"
        return f"vampires.Stream({self._name!r}, shape={self._shape}, dtype={self._dtype}, {state})"

    # ---- properties

    @property
    def name(self) -> str:
        """Stream name (file ``<name>.im.shm``)."""
        return self._name

    @property
    def path(self) -> Path:
        """Path of the stream file."""
        return self._path

    @property
    def shape(self) -> tuple[int, ...]:
        """Numpy shape: ``size[::-1]`` of the C metadata."""
        return self._shape

    @property
    def dtype(self) -> np.dtype[Any]:
        """Pixel dtype."""
        return self._dtype

    @property
    def nbytes(self) -> int:
        """Bytes of one frame (``imdatamemsize``)."""
        return self._layout.imdatamemsize

    @property
    def cnt0(self) -> int:
        """Frames written so far (live)."""
        return int(self._views().cnt0[0])

    @property
    def cnt1(self) -> int:
        """Last slice written of a 3-D rolling buffer (live)."""
        return int(self._views().cnt1[0])

    @property
    def nkeywords(self) -> int:
        """Keyword slots (``NBkw``)."""
        return self._layout.nkeywords

    @property
    def nsemaphores(self) -> int:
        """Semaphores (``sem``)."""
        return self._layout.nsemaphores

    @property
    def circular_buffer(self) -> int:
        """Fast circular-buffer slots (``CBsize``)."""
        return self._layout.cbsize

    @property
    def inode(self) -> int:
        """Inode of the mapped file."""
        return self._inode

    @property
    def layout(self) -> StreamLayout:
        """Segment offsets of this file."""
        return self._layout

    @property
    def keywords(self) -> StreamKeywords:
        """The keyword table (mapping-like)."""
        self._views()
        return self._keywords

    @property
    def write_time(self) -> float:
        """Unix seconds UTC of the last write (0.0 if never written)."""
        sec, nsec = (int(x) for x in self._views().writetime)
        return clock.to_unix(sec, nsec)

    @property
    def acquisition_time(self) -> float:
        """Unix seconds UTC of the last frame's acquisition (0.0 if never written)."""
        sec, nsec = (int(x) for x in self._views().atime)
        return clock.to_unix(sec, nsec)

    def metadata(self) -> dict[str, Any]:
        """Return every metadata field plus semaphore bookkeeping, decoded.

        Returns
        -------
        dict
            Field names as in ``ImageStruct.h``; times as float unix UTC.
        """
        return decode_metadata(self._views(), self._layout.total)

    # ---- writing

    def _target(self, shape: tuple[int, ...], v: Views) -> tuple[NDArray[Any], int | None]:
        if shape == self._shape:
            return v.data, None
        if len(self._shape) == 3 and shape == self._shape[1:]:
            depth = self._shape[0]
            index = 0 if int(v.cnt0[0]) == 0 else (int(v.cnt1[0]) + 1) % depth
            return v.data[index], index
        msg = (
            f"frame shape {shape} does not fit stream {self._name!r} of shape {self._shape} "
            "(numpy order: (height, width))"
        )
        raise StreamError(msg)

    def _check_writable(self) -> None:
        if self._dtype not in WRITABLE_DTYPES:
            msg = f"stream {self._name!r}: writing {self._dtype} pixels is not supported"
            raise StreamError(msg)

    def write(
        self,
        frame: NDArray[Any],
        *,
        keywords: Mapping[str, object] | None = None,
        acquisition_time: float | None = None,
    ) -> int:
        """Publish one frame (C writer protocol, see the module docstring).

        Parameters
        ----------
        frame
            Array of the stream's shape, or of ``shape[1:]`` for a 3-D stream
            (rolling buffer: written into slice ``(cnt1 + 1) % depth``, and
            ``cnt1`` set to that slice). Any dtype that casts safely.
        keywords
            ``name -> value`` or ``name -> (value, comment)``, written with the frame.
        acquisition_time
            Unix seconds UTC; defaults to the write time.

        Returns
        -------
        int
            The new ``cnt0``.

        Raises
        ------
        StreamError
            Wrong shape or dtype; nothing written.
        KeywordError
            Bad keywords; nothing written.
        """
        v = self._views()
        self._check_writable()
        arr = coerce_frame(frame, self._dtype, self._name)
        target, index = self._target(arr.shape, v)
        plan = self._keywords._plan(_cards_from(keywords)) if keywords else []
        atime = check_atime(acquisition_time)
        v.write[0] = 1
        try:
            np.copyto(target, arr, casting="safe")
        except BaseException:
            v.write[0] = 0
            raise
        return self._publish(v, plan, atime, index)

    def write_with(
        self,
        fill: Callable[[NDArray[Any]], object],
        *,
        keywords: Mapping[str, object] | None = None,
        acquisition_time: float | None = None,
        cnt0: int | None = None,
        cnt1: int | None = None,
    ) -> int:
        """Publish a frame that ``fill`` writes straight into shared memory.

        Parameters
        ----------
        fill
            Called with the writable pixel array (stream shape); it must
            fill it completely (e.g. ``sock.recv_into``, a camera grab). If it
            raises, nothing is published (``cnt0`` unchanged) but the pixel
            memory may hold a partial frame.
        keywords, acquisition_time
            As in :meth:`write`.
        cnt0, cnt1
            Publish the frame with these counters instead of ``cnt0 + 1`` and
            the current ``cnt1`` (a mirror republishing another host's frames
            with the same counters); 0 <= value < 2**64.

        Returns
        -------
        int
            The new ``cnt0``.
        """
        v = self._views()
        self._check_writable()
        counters: tuple[tuple[object, str], ...] = ((cnt0, "cnt0"), (cnt1, "cnt1"))
        for value, what in counters:
            if value is not None:
                check_int(value, what, 0, 2**64 - 1, error=StreamError)
        plan = self._keywords._plan(_cards_from(keywords)) if keywords else []
        atime = check_atime(acquisition_time)
        v.write[0] = 1
        try:
            fill(v.data)
        except BaseException:
            # The pixel array may hold part of a frame now: put the last frame
            # back from its circular-buffer slot if we have it; otherwise keep
            # the write flag up so no reader takes the half frame for a whole
            # one (the next successful write clears it).
            slot = slot_holding(v, self._layout.cbsize, int(v.cnt0[0]))
            if slot is not None:
                np.copyto(v.data, v.cbdata[slot])
                v.write[0] = 0
            raise
        return self._publish(v, plan, atime, None, cnt0=cnt0, cnt1=cnt1)

    def _publish(
        self,
        v: Views,
        plan: list[tuple[int, bool, _Card]],
        atime: tuple[int, int] | None,
        index: int | None,
        *,
        cnt0: int | None = None,
        cnt1: int | None = None,
    ) -> int:
        try:
            if plan:
                self._keywords._write(plan)
            if cnt0 is None:
                cnt0 = int(v.cnt0[0]) + 1
            if cnt1 is None:
                cnt1 = int(v.cnt1[0]) if index is None else index
            self._stamp(v, cnt0, cnt1, atime)
        except BaseException:
            v.write[0] = 0  # never leave readers waiting on a dead write flag
            raise
        v.cnt1[0] = cnt1
        v.cnt0[0] = cnt0
        v.write[0] = 0
        pid = os.getpid()
        for i, sem in enumerate(v.sems):
            if sem.value() < SEMAPHORE_MAXVAL:
                sem.post()
                v.write_pid[i] = pid
        if v.semlog.value() < SEMAPHORE_MAXVAL:
            v.semlog.post()
        return cnt0

    def _stamp(
        self,
        v: Views,
        cnt0: int,
        cnt1: int,
        atime: tuple[int, int] | None,
    ) -> None:
        """Circular-buffer slot and time stamps of a frame being published."""
        now = clock.now_ns()
        wsec, wnsec = divmod(now, 1_000_000_000)
        asec, ansec = (wsec, wnsec) if atime is None else atime
        cbsize = self._layout.cbsize
        if cbsize:
            slot = int(v.cbindex[0]) + 1
            if slot >= cbsize:
                slot = 0
                v.cbcycle[0] += 1
            md = v.cbmd[slot : slot + 1]
            md["cnt0"] = 0  # invalid while the slot is rewritten (see read_slot)
            v.cbdata[slot] = v.data
            md["cnt0"] = cnt0
            md["cnt1"] = cnt1
            md["atime"] = (asec, ansec)
            md["writetime"] = (wsec, wnsec)
            v.cbindex[0] = slot
        v.writetime[0], v.writetime[1] = wsec, wnsec
        v.atime[0], v.atime[1] = asec, ansec
        if (
            v.cntarray is not None
            and v.atimearray is not None
            and v.writetimearray is not None
            and cnt1 < v.cntarray.shape[0]
        ):
            v.atimearray[cnt1] = (asec, ansec)
            v.writetimearray[cnt1] = (wsec, wnsec)
            v.cntarray[cnt1] = cnt0

    def slot_holds(self, slot: int, cnt0: int) -> bool:
        """Tell whether circular-buffer slot ``slot`` still holds frame ``cnt0``.

        A frame taken from its slot (``FrameInfo.slot``) stays there until the
        writer reuses the slot, ``CBsize`` frames later; the writer zeroes the
        slot's ``cnt0`` before it rewrites the pixels. A consumer that used the
        slot's pixels in place (a sender sending them) asks afterwards whether
        what it used was still that frame.

        Parameters
        ----------
        slot
            Slot index, ``0 <= slot < circular_buffer``.
        cnt0
            The frame's counter.

        Returns
        -------
        bool

        Raises
        ------
        StreamError
            ``slot`` out of range.
        StreamClosedError
            The stream is closed.
        """
        v = self._views()
        if not 0 <= slot < self._layout.cbsize:
            msg = (
                f"stream {self._name!r}: slot {slot} out of range "
                f"(circular buffer of {self._layout.cbsize})"
            )
            raise StreamError(msg)
        return int(v.cbmd[slot]["cnt0"]) == cnt0

    # ---- reading

    def view(self) -> NDArray[Any]:
        """Return a read-only zero-copy view of the pixel array.

        The writer may overwrite it at any time: a view can tear (mix two
        frames). Use :meth:`read` or :meth:`StreamReader.next_into` when that
        matters. The view keeps the mapping alive after :meth:`close`.

        Returns
        -------
        numpy.ndarray
        """
        out = self._views().data.view()
        out.flags.writeable = False
        return out

    def _read_into(self, out: NDArray[Any]) -> tuple[int, int, int, int, int, int, int]:
        """Copy a consistent frame; return (cnt0, cnt1, asec, ansec, wsec, wnsec, torn)."""
        v = self._views()
        torn = 0
        stuck_since: float | None = None
        while True:
            c0 = int(v.cnt0[0])
            if self._layout.cbsize:
                got = read_slot(v, self._layout.cbsize, out, c0)
                if got is not None:
                    return (*got, torn)
            if v.write[0]:
                now = time.monotonic()
                stuck_since = now if stuck_since is None else stuck_since
                if now - stuck_since > STUCK_WRITE_S:
                    msg = (
                        f"stream {self._name!r}: write flag set for more than "
                        f"{STUCK_WRITE_S} s at cnt0={c0} (writer died mid-frame?)"
                    )
                    raise TornFrameError(msg)
                time.sleep(0)
                continue
            self._copy_pixels(out, v.data)
            cnt1 = int(v.cnt1[0])
            asec, ansec = int(v.atime[0]), int(v.atime[1])
            wsec, wnsec = int(v.writetime[0]), int(v.writetime[1])
            if not v.write[0] and int(v.cnt0[0]) == c0:
                return c0, cnt1, asec, ansec, wsec, wnsec, torn
            torn += 1
            logger.debug("stream %r: torn copy at cnt0=%d, retrying", self._name, c0)
            if torn >= MAX_TORN:
                msg = (
                    f"stream {self._name!r}: {torn} torn copies in a row (the writer "
                    "overwrites frames faster than they can be copied)"
                )
                raise TornFrameError(msg)

    def _copy_pixels(self, out: NDArray[Any], data: NDArray[Any]) -> None:
        """Copy the main pixel buffer into ``out`` with ``preadv`` from the file.

        Same cost as a memcpy from the mapping (the kernel copies from the same
        page-cache pages), but a file truncated meanwhile gives a short read
        (:class:`StreamLayoutError`) instead of a SIGBUS that kills the process.
        """
        if self._fd < 0 or not out.flags.c_contiguous or out.nbytes != data.nbytes:
            np.copyto(out, data)
            return
        try:
            got = os.preadv(self._fd, [out.data.cast("B")], self._layout.data)
        except OSError as exc:
            msg = f"stream {self._name!r}: cannot read its pixels: {exc.strerror}"
            raise StreamLayoutError(msg) from exc
        if got != out.nbytes:
            self._check_size()
            msg = f"stream {self._name!r}: short read of its pixels ({got} of {out.nbytes} bytes)"
            raise StreamLayoutError(msg)

    def read(self, *, copy: bool = True, out: NDArray[Any] | None = None) -> NDArray[Any]:
        """Return the latest frame, consistent (never torn).

        Parameters
        ----------
        copy
            True: a new array. False: an internal buffer reused (overwritten)
            by the next ``read(copy=False)``: no allocation per call.
        out
            Array of the stream's shape and dtype to copy into (wins over ``copy``).

        Returns
        -------
        numpy.ndarray

        Raises
        ------
        TornFrameError
            The writer kept overwriting the frame during every copy attempt.
        """
        v = self._views()
        if out is not None:
            target = self._check_out(out)
        elif copy:
            target = np.empty_like(v.data)
        else:
            if self._scratch is None:
                self._scratch = np.empty_like(v.data)
            target = self._scratch
        self._read_into(target)
        return target

    def _check_out(self, out: object) -> NDArray[Any]:
        if not isinstance(out, np.ndarray) or out.shape != self._shape or out.dtype != self._dtype:
            got = f"{out.dtype} {out.shape}" if isinstance(out, np.ndarray) else type(out).__name__
            msg = f"out must be a {self._dtype} array of shape {self._shape} (got {got})"
            raise StreamError(msg)
        return out

    def reader(
        self, *, index: int | None = None, catch_up: bool = False, max_lag: int | None = None
    ) -> StreamReader:
        """Claim a semaphore and return a reader (context manager).

        Parameters
        ----------
        index
            Preferred semaphore index (taken if free), as the C library's default.
        catch_up
            Return every frame in order while the ones missed are still in the
            stream's circular buffer (a logger that was descheduled for a few
            frame periods loses nothing); otherwise (default) jump to the
            newest frame, as a viewer wants.
        max_lag
            With ``catch_up``: catch up only while at most this many frames
            behind (default ``CBsize - 1``, the whole buffer); further behind,
            jump to the newest frame. A consumer that needs time after the copy
            (a sender still reading the slot) keeps a margin this way.

        Returns
        -------
        StreamReader

        Raises
        ------
        StreamError
            Every semaphore is held by a live reader.
        """
        reader = StreamReader(self, index=index, catch_up=catch_up, max_lag=max_lag)
        self._readers.append(reader)
        return reader

    def iter_frames(self, timeout: float = 1.0) -> Iterator[Frame]:
        """Yield every new frame (with its ``missed`` count) through a private reader.

        Parameters
        ----------
        timeout
            Seconds to wait for each frame.

        Yields
        ------
        Frame

        Raises
        ------
        StreamTimeout
            No new frame within ``timeout``.
        """
        with self.reader() as reader:
            while True:
                yield reader.next(timeout)
