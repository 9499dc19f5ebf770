"""A stream file on disk: header validation (pure), creation, opening; checks of what comes in."""

from __future__ import annotations

import contextlib
import math
import mmap
import os
import stat
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np

from vampires._checks import is_number
from vampires.errors import (
    StreamError,
    StreamExistsError,
    StreamLayoutError,
    StreamNotFoundError,
    StreamVersionError,
)
from vampires.stream import clock
from vampires.stream._views import MD_SIZE
from vampires.stream.layout import (
    DATATYPE_CODES,
    DATATYPE_DTYPES,
    IMAGESTRUCT_VERSION,
    KEYWORD_DTYPE,
    MATH_DATA,
    METADATA_DTYPE,
    NB_PROCTRACE,
    PROC_TRACE_DTYPE,
    SEM_SIZE,
    WRITABLE_DTYPES,
    StreamLayout,
)
from vampires.stream.sem import Semaphore

if TYPE_CHECKING:
    from numpy.typing import NDArray


def validate_header(header: bytes, file_size: int, path: Path) -> StreamLayout:
    """Check a file's first bytes and size; return its layout. Pure."""
    if file_size < MD_SIZE or len(header) < MD_SIZE:
        msg = (
            f"{path} is not a stream or is truncated: {file_size} bytes, an ImageStreamIO "
            f"file has at least {MD_SIZE}; remove it or re-create the stream"
        )
        raise StreamLayoutError(msg)
    md = np.frombuffer(header[:MD_SIZE], dtype=METADATA_DTYPE)[0]
    version = bytes(md["version"])
    if not version.strip(b"\0"):
        msg = (
            f"{path} has no version string yet: a writer is still creating it (try again "
            "in a moment), or it is not a stream"
        )
        raise StreamVersionError(msg)
    if version != IMAGESTRUCT_VERSION.encode():
        shown = version[:16].decode("ascii", errors="replace")
        msg = (
            f"{path} is not an ImageStreamIO {IMAGESTRUCT_VERSION} stream (version field "
            f"{shown!r}); re-create it with Stream.create(...) or a milk {IMAGESTRUCT_VERSION} "
            "program"
        )
        raise StreamVersionError(msg)
    naxis = int(md["naxis"])
    size = [int(x) for x in md["size"]]
    code = int(md["datatype"])
    problems = []
    if naxis not in (1, 2, 3):
        problems.append(f"naxis {naxis} not in 1..3")
    elif any(s < 1 for s in size[:naxis]):
        problems.append(f"size {size[:naxis]} has an empty axis")
    if code not in DATATYPE_DTYPES:
        problems.append(f"datatype code {code} unknown or unsupported")
    if int(md["shared"]) != 1:
        problems.append(f"shared = {int(md['shared'])}, expected 1")
    if int(md["location"]) != -1:
        problems.append(f"location {int(md['location'])} (GPU streams are not supported)")
    if problems:
        msg = f"{path}: inconsistent stream metadata: {'; '.join(problems)}"
        raise StreamLayoutError(msg)
    nelement = math.prod(size[:naxis])
    itemsize = DATATYPE_DTYPES[code].itemsize
    if int(md["nelement"]) != nelement or int(md["imdatamemsize"]) != nelement * itemsize:
        msg = (
            f"{path}: inconsistent stream metadata: nelement {int(md['nelement'])} / "
            f"imdatamemsize {int(md['imdatamemsize'])} do not match size {size[:naxis]} of "
            f"{DATATYPE_DTYPES[code]}"
        )
        raise StreamLayoutError(msg)
    layout = StreamLayout.compute(
        imdatamemsize=nelement * itemsize,
        nkeywords=int(md["NBkw"]),
        nsemaphores=int(md["sem"]),
        nproctrace=int(md["NBproctrace"]),
        imagetype=int(md["imagetype"]),
        depth=size[2] if naxis == 3 else 0,
        cbsize=int(md["CBsize"]),
    )
    if layout.total != file_size:
        what = "truncated" if file_size < layout.total else "longer than its metadata says"
        msg = (
            f"{path} is {what}: {file_size} bytes, its metadata needs {layout.total}; "
            "re-create the stream"
        )
        raise StreamLayoutError(msg)
    return layout


def shape_of(md: np.void) -> tuple[int, ...]:
    """Numpy shape of a metadata record (``size[::-1]`` over its ``naxis`` axes)."""
    naxis = int(md["naxis"])
    return tuple(int(x) for x in md["size"][:naxis][::-1])


def check_shape(shape: object) -> tuple[int, ...]:
    """Return a stream shape as a tuple of 1 to 3 positive ints, or raise ``StreamError``."""
    items: tuple[object, ...] = ()
    if isinstance(shape, int | np.integer):
        items = (shape,)
    elif isinstance(shape, tuple | list):
        items = tuple(shape)
    dims = [
        int(d)
        for d in items
        if not isinstance(d, bool) and isinstance(d, int | np.integer) and 1 <= d < 2**32
    ]
    if not 1 <= len(items) <= 3 or len(dims) != len(items):
        msg = (
            f"stream shape must be 1 to 3 positive integers in numpy order, e.g. "
            f"(height, width) (got {shape!r})"
        )
        raise StreamError(msg)
    return tuple(dims)


def check_dtype(dtype: object) -> np.dtype[Any]:
    """Return a writable little-endian stream dtype, or raise ``StreamError``."""
    try:
        dt: np.dtype[Any] = np.dtype(dtype)  # type: ignore[call-overload]
    except TypeError as exc:
        msg = f"invalid stream dtype {dtype!r}: {exc}"
        raise StreamError(msg) from exc
    dt = dt.newbyteorder("<") if dt.byteorder == "=" else dt
    if dt not in WRITABLE_DTYPES:
        allowed = ", ".join(sorted(str(t) for t in WRITABLE_DTYPES))
        msg = f"stream dtype {dt} is not writable; use one of {allowed}"
        raise StreamError(msg)
    return dt


def check_file(fd: int, path: Path) -> StreamLayout:
    """Validate an open file: a regular file whose header and size agree; return its layout."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        msg = f"{path} is not a regular file, so not a stream"
        raise StreamLayoutError(msg)
    header = os.pread(fd, MD_SIZE, 0)
    return validate_header(header, st.st_size, path)


def initialise(
    mm: mmap.mmap,
    layout: StreamLayout,
    name: str,
    size: list[int],
    naxis: int,
    dtype: np.dtype[Any],
    inode: int,
) -> None:
    """Fill a zeroed new file like ``ImageStreamIO_createIm_gpu`` (version last)."""
    md = np.frombuffer(mm, dtype=METADATA_DTYPE, count=1)
    now = divmod(clock.now_ns(), 1_000_000_000)
    md["name"] = name.encode()
    md["naxis"] = naxis
    md["size"] = size
    md["nelement"] = math.prod(size[:naxis])
    md["datatype"] = DATATYPE_CODES[dtype]
    md["imagetype"] = MATH_DATA
    md["creationtime"] = now
    md["lastaccesstime"] = now
    md["creatorPID"] = os.getpid()
    md["ownerPID"] = 0
    md["shared"] = 1
    md["inode"] = inode
    md["location"] = -1
    md["sem"] = layout.nsemaphores
    md["NBproctrace"] = layout.nproctrace
    md["NBkw"] = layout.nkeywords
    md["CBsize"] = layout.cbsize
    md["imdatamemsize"] = layout.imdatamemsize
    base = int(np.frombuffer(mm, dtype=np.uint8, count=1).ctypes.data)
    for i in range(layout.nsemaphores):
        Semaphore(base + layout.semaphores + i * SEM_SIZE).init(0)
    # The C library leaves semlog zero-filled, which glibc treats as a
    # process-private semaphore; initialising it makes cross-process waits work.
    Semaphore(base + layout.semlog).init(0)
    nsem = layout.nsemaphores
    np.frombuffer(mm, "<i4", nsem, layout.sem_read_pid)[:] = -1
    np.frombuffer(mm, "<i4", nsem, layout.sem_write_pid)[:] = -1
    trace = np.frombuffer(mm, PROC_TRACE_DTYPE, layout.nproctrace, layout.proctrace)
    trace["trigsemindex"] = -1
    kw = np.frombuffer(mm, KEYWORD_DTYPE, layout.nkeywords, layout.keywords)
    kw["type"] = b"N"
    md["version"] = IMAGESTRUCT_VERSION.encode()
    del md, trace, kw


def publish_file(tmp: Path, path: Path, *, exist_ok: bool, name: str) -> None:
    """Move a finished temporary file into place, atomically."""
    try:
        if exist_ok:
            os.replace(tmp, path)
            return
        try:
            os.link(tmp, path)
        except FileExistsError as exc:
            msg = f"stream {name!r} was created by someone else meanwhile ({path})"
            raise StreamExistsError(msg) from exc
        except OSError:  # no hard links on this file system: best effort
            if os.path.lexists(path):
                msg = f"stream {name!r} was created by someone else meanwhile ({path})"
                raise StreamExistsError(msg) from None
            os.replace(tmp, path)
    except StreamError:
        raise
    except OSError as exc:
        msg = f"cannot create stream {name!r} at {path}: {exc.strerror}"
        raise StreamError(msg) from exc


@contextlib.contextmanager
def new_file(
    folder: Path,
    path: Path,
    name: str,
    dims: tuple[int, ...],
    dt: np.dtype[Any],
    nkw: int,
    nsem: int,
    cbsize: int,
    perms: int,
    *,
    exist_ok: bool,
) -> Iterator[int]:
    """Create, initialise and publish a stream file; yield a descriptor of it.

    The file is written as a temporary one and linked into place
    (:func:`publish_file`); the descriptor and the temporary name are gone
    when the block ends.
    """
    size = list(reversed(dims)) + [0] * (3 - len(dims))
    nelement = math.prod(dims)
    layout = StreamLayout.compute(
        imdatamemsize=nelement * dt.itemsize,
        nkeywords=nkw,
        nsemaphores=nsem,
        nproctrace=NB_PROCTRACE,
        imagetype=MATH_DATA,
        depth=size[2],
        cbsize=cbsize,
    )
    tmp = folder / f".{name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL, perms)
    except OSError as exc:
        msg = f"cannot create stream {name!r} in {folder}: {exc.strerror}"
        raise StreamError(msg) from exc
    try:
        os.fchmod(fd, perms)  # whatever the umask (the C library's 0666 by default)
        os.ftruncate(fd, layout.total)
        inode = os.fstat(fd).st_ino
        mm = mmap.mmap(fd, layout.total)
        try:
            initialise(mm, layout, name, size, len(dims), dt, inode)
        finally:
            with contextlib.suppress(BufferError):
                mm.close()
        publish_file(tmp, path, exist_ok=exist_ok, name=name)
        yield fd
    finally:
        os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


@contextlib.contextmanager
def open_file(path: Path, name: str) -> Iterator[int]:
    """Validate an existing stream file read-only, then yield a read-write descriptor of it."""
    # O_NONBLOCK: a FIFO (or device) named like a stream must not block the
    # open; check_file then refuses anything but a regular file
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError as exc:
        msg = (
            f"no stream {name!r} in {path.parent} ({path.name} not found); is its writer "
            "running and MILK_SHM_DIR the same?"
        )
        raise StreamNotFoundError(msg) from exc
    except OSError as exc:
        msg = f"cannot open stream {name!r} ({path}): {exc.strerror}"
        raise StreamError(msg) from exc
    try:
        check_file(fd, path)
    finally:
        os.close(fd)
    try:
        fd = os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        msg = (
            f"cannot open stream {name!r} ({path}) read-write: {exc.strerror}; readers "
            "need write access to the semaphores (as the C library)"
        )
        raise StreamError(msg) from exc
    try:
        yield fd
    finally:
        os.close(fd)


def check_atime(acquisition_time: object) -> tuple[int, int] | None:
    """Return a write's acquisition time as a timespec (None: the write time)."""
    if acquisition_time is None:
        return None
    if not is_number(acquisition_time):
        msg = f"acquisition_time must be float unix seconds (got {acquisition_time!r})"
        raise StreamError(msg)
    seconds = float(cast("float", acquisition_time))
    if not math.isfinite(seconds) or seconds < 0:
        msg = f"acquisition_time must be finite unix seconds >= 0 (got {acquisition_time!r})"
        raise StreamError(msg)
    return clock.to_timespec(seconds)


def coerce_frame(frame: object, dtype: np.dtype[Any], name: str) -> NDArray[Any]:
    """Accept arrays that cast safely, and Python integers that fit."""
    try:
        arr = np.asarray(frame)
    except (TypeError, ValueError) as exc:
        msg = f"frame for stream {name!r} is not an array: {exc}"
        raise StreamError(msg) from exc
    if np.can_cast(arr.dtype, dtype, casting="safe"):
        return arr
    if (
        not isinstance(frame, np.ndarray)
        and arr.dtype.kind in "iu"
        and dtype.kind in "iu"
        and arr.size
    ):
        info = np.iinfo(dtype)
        if info.min <= int(arr.min()) and int(arr.max()) <= info.max:
            return arr.astype(dtype)  # e.g. nested lists of Python ints
    msg = (
        f"frame dtype {arr.dtype} cannot be written safely into stream "
        f"{name!r} of dtype {dtype}; convert it first"
    )
    raise StreamError(msg)
