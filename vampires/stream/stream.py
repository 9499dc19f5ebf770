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
    Claims a semaphore index in ``semReadPID`` as
    ``ImageStreamIO_getsemwaitindex`` does (a free slot is 0, -1 or the PID of
    a dead process) but never an index already holding our own PID, so two
    readers in one process each get their own index and never steal each
    other's wake-ups; flushes it; releases it (writes 0) on close. A frame is
    copied, then checked: if the write flag was set or ``cnt0`` changed during
    the copy the copy is torn, counted, logged and retried; a torn frame is
    never returned. With a fast circular buffer (``circular_buffer > 0``)
    filled by our writer, the frame is copied from its slot instead, which
    the writer rewrites only ``CBsize`` frames later. ``Frame.missed`` counts
    frames published but skipped since the previous frame this reader returned.
    Writers that post the semaphores *before* they increment ``cnt0`` (pyMilk's
    ``set_data``) are handled: a wake that finds ``cnt0`` unchanged is followed
    by a short bounded poll for the count, the reader keeps a balance of posts
    against counts (a post whose count has not come yet means the pixels already
    hold the next frame: it waits for the count), and a frame taken from the
    pixel array of such a writer is looked at once more a moment later. (This
    order leaves a writer preempted between its pixels and its post invisible
    for as long as it is preempted: the second look bounds that window, it
    cannot close it; ImageStreamIO's order has no such window.)

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
import fcntl
import logging
import math
import mmap
import os
import stat
import time
import uuid
import zlib
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import attrs
import numpy as np

from vampires.config import shm_dir as _default_shm_dir
from vampires.config import stream_mode
from vampires.errors import (
    ConfigError,
    KeywordError,
    StreamClosedError,
    StreamError,
    StreamExistsError,
    StreamLayoutError,
    StreamNotFoundError,
    StreamTimeout,
    StreamVersionError,
    TornFrameError,
)
from vampires.stream import clock
from vampires.stream.layout import (
    CBFRAMEMD_DTYPE,
    DATATYPE_CODES,
    DATATYPE_DTYPES,
    IMAGESTRUCT_VERSION,
    KEYWORD_COMMENT_MAX,
    KEYWORD_DTYPE,
    KEYWORD_NAME_MAX,
    KEYWORD_STRING_MAX,
    MATH_DATA,
    METADATA_DTYPE,
    NAME_MAX,
    NB_PROCTRACE,
    PROC_TRACE_DTYPE,
    SEM_SIZE,
    SEMAPHORE_MAXVAL,
    WRITABLE_DTYPES,
    StreamLayout,
)
from vampires.stream.sem import Semaphore

if TYPE_CHECKING:
    from numpy.typing import DTypeLike, NDArray

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

logger = logging.getLogger(__name__)

KeywordValue = int | float | str | bool
_SUFFIX = ".im.shm"
_TRUE, _FALSE = "#TRUE#", "#FALSE#"
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
#: A write flag held longer than this means a writer died mid-frame.
_STUCK_WRITE_S = 0.5
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


#: After a wake that finds ``cnt0`` unchanged, how long a reader polls for it to move
#: (writers that post before counting, as pyMilk's ``set_data``), and its poll steps.
_POST_BEFORE_COUNT_S = 0.25
_POLL_FIRST_S = 20e-6
_POLL_MAX_S = 5e-3
#: A writer seen counting at most this long after its post is taken to post before counting.
_POST_FIRST_MAX_S = 1e-3
#: Longest second look at a frame taken from such a writer (see StreamReader._take).
_POST_FIRST_GRACE_S = 200e-6
#: Torn copies tolerated in a row before giving up on one read.
_MAX_TORN = 200
_MD_SIZE = METADATA_DTYPE.itemsize


# --------------------------------------------------------------------------- values


@attrs.frozen(kw_only=True)
class FrameInfo:
    """Counters and times of one frame (what :class:`Frame` has, without pixels).

    Attributes
    ----------
    cnt0
        Frame counter after this frame was written.
    cnt1
        Slice last written (3-D rolling buffers), else as the writer left it.
    acquisition_time
        Unix seconds UTC of acquisition (``atime``).
    write_time
        Unix seconds UTC the frame was published (``writetime``).
    missed
        Frames published but skipped since the previous one this reader returned.
    """

    cnt0: int
    cnt1: int
    acquisition_time: float
    write_time: float
    missed: int = 0


@attrs.frozen(kw_only=True)
class Frame:
    """One consistent (never torn) frame and its counters.

    Attributes
    ----------
    data
        Pixels, numpy order (``(height, width)`` or ``(depth, height, width)``).
    cnt0, cnt1, acquisition_time, write_time, missed
        As in :class:`FrameInfo`.
    """

    data: NDArray[Any] = attrs.field(eq=False, repr=lambda a: f"<{a.dtype} {a.shape}>")
    cnt0: int
    cnt1: int
    acquisition_time: float
    write_time: float
    missed: int = 0

    @property
    def info(self) -> FrameInfo:
        """The same frame without pixels."""
        return FrameInfo(
            cnt0=self.cnt0,
            cnt1=self.cnt1,
            acquisition_time=self.acquisition_time,
            write_time=self.write_time,
            missed=self.missed,
        )


# --------------------------------------------------------------------------- names & paths


def _check_name(name: object) -> str:
    if not isinstance(name, str):
        msg = f"stream name must be a str (got {type(name).__name__} {name!r})"
        raise StreamError(msg)
    problem = ""
    if not name:
        problem = "is empty"
    elif "/" in name or "\0" in name:
        problem = "contains '/' or NUL (a stream is a file in the shm folder, not a path)"
    elif ".." in name:
        problem = "contains '..'"
    elif not name.isascii() or not name.isprintable() or any(c.isspace() for c in name):
        problem = "must be printable ASCII without spaces"
    elif len(name) > NAME_MAX:
        problem = f"is {len(name)} characters long, the limit is {NAME_MAX}"
    if problem:
        msg = f"invalid stream name {name!r}: it {problem}"
        raise StreamError(msg)
    return name


def _resolve_dir(shm_dir: str | os.PathLike[str] | None) -> Path:
    return Path(shm_dir) if shm_dir is not None else _default_shm_dir()


def stream_path(name: str, *, shm_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return the file of stream ``name``: ``<shm dir>/<name>.im.shm``.

    Parameters
    ----------
    name
        Stream name (validated: no ``/``, no ``..``, 1-79 printable ASCII).
    shm_dir
        Folder; defaults to the C library's choice (:func:`vampires.config.shm_dir`).

    Returns
    -------
    Path

    Raises
    ------
    StreamError
        Invalid name.
    """
    return _resolve_dir(shm_dir) / f"{_check_name(name)}{_SUFFIX}"


def list_streams(*, shm_dir: str | os.PathLike[str] | None = None) -> list[str]:
    """Return the names of the ``*.im.shm`` files in the shm folder, sorted.

    Parameters
    ----------
    shm_dir
        Folder; defaults to the C library's choice.

    Returns
    -------
    list of str
        Names only; a listed file may still fail to open (not a stream).
    """
    folder = _resolve_dir(shm_dir)
    try:
        entries = list(os.scandir(folder))
    except FileNotFoundError:
        return []
    return sorted(
        e.name[: -len(_SUFFIX)]
        for e in entries
        if e.name.endswith(_SUFFIX) and not e.name.startswith(".") and len(e.name) > len(_SUFFIX)
    )


# --------------------------------------------------------------------------- validation


def _decode(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("ascii", errors="replace")


def _validate_header(header: bytes, file_size: int, path: Path) -> StreamLayout:
    """Check a file's first bytes and size; return its layout. Pure."""
    if file_size < _MD_SIZE or len(header) < _MD_SIZE:
        msg = (
            f"{path} is not a stream or is truncated: {file_size} bytes, an ImageStreamIO "
            f"file has at least {_MD_SIZE}; remove it or re-create the stream"
        )
        raise StreamLayoutError(msg)
    md = np.frombuffer(header[:_MD_SIZE], dtype=METADATA_DTYPE)[0]
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


def _shape_of(md: np.void) -> tuple[int, ...]:
    naxis = int(md["naxis"])
    return tuple(int(x) for x in md["size"][:naxis][::-1])


def _check_shape(shape: object) -> tuple[int, ...]:
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


def _check_dtype(dtype: object) -> np.dtype[Any]:
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


def _check_count(value: object, what: str, lo: int, hi: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not lo <= value <= hi:
        msg = f"{what} must be an integer in {lo}..{hi} (got {value!r})"
        raise StreamError(msg)
    return int(value)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.getpgid(pid)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


# --------------------------------------------------------------------------- keywords


def _check_text(text: object, what: str, limit: int, *, spaces: bool) -> bytes:
    if not isinstance(text, str):
        msg = f"{what} must be a str (got {type(text).__name__} {text!r})"
        raise KeywordError(msg)
    if not text.isascii() or not text.isprintable() or (not spaces and " " in text):
        rule = "printable ASCII" + ("" if spaces else " without spaces")
        msg = f"{what} must be {rule} (got {text!r})"
        raise KeywordError(msg)
    if len(text) > limit:
        msg = (
            f"{what} is {len(text)} characters, the limit is {limit} (a {limit + 1}-byte C "
            f"string with its NUL): {text!r}"
        )
        raise KeywordError(msg)
    return text.encode("ascii")


@attrs.frozen
class _Card:
    name: bytes
    type: bytes
    value: int | float | bytes
    comment: bytes | None


def _encode_card(name: object, value: object, comment: object) -> _Card:
    if not isinstance(name, str) or not name:
        msg = f"keyword name must be a non-empty str (got {name!r})"
        raise KeywordError(msg)
    bname = _check_text(name, f"keyword name {name!r}", KEYWORD_NAME_MAX, spaces=False)
    bcomment = (
        None
        if comment is None
        else _check_text(comment, f"comment of keyword {name!r}", KEYWORD_COMMENT_MAX, spaces=True)
    )
    if isinstance(value, bool | np.bool_):
        return _Card(bname, b"S", (_TRUE if value else _FALSE).encode(), bcomment)
    if isinstance(value, int | np.integer):
        if not _INT64_MIN <= int(value) <= _INT64_MAX:
            msg = f"keyword {name!r}: integer {value} does not fit in int64 (type L)"
            raise KeywordError(msg)
        return _Card(bname, b"L", int(value), bcomment)
    if isinstance(value, float | np.floating):
        return _Card(bname, b"D", float(value), bcomment)
    if isinstance(value, str):
        what = f"string value of keyword {name!r}"
        return _Card(
            bname, b"S", _check_text(value, what, KEYWORD_STRING_MAX, spaces=True), bcomment
        )
    msg = (
        f"keyword {name!r}: value must be int, float, str or bool "
        f"(got {type(value).__name__} {value!r})"
    )
    raise KeywordError(msg)


def _cards_from(items: object) -> list[_Card]:
    if not isinstance(items, Mapping):
        msg = f"keywords must be a mapping name -> value or (value, comment) (got {items!r})"
        raise KeywordError(msg)
    cards = []
    for name, item in items.items():
        if isinstance(item, tuple):
            if len(item) != 2:
                msg = f"keyword {name!r}: expected value or (value, comment) (got {item!r})"
                raise KeywordError(msg)
            cards.append(_encode_card(name, item[0], item[1]))
        else:
            cards.append(_encode_card(name, item, None))
    return cards


class StreamKeywords:
    """The keyword table of a stream, as a mapping ``name -> value``.

    Types: ``int`` <-> L (int64), ``float`` <-> D (double), ``str`` <-> S
    (at most 15 characters), ``bool`` <-> S ``#TRUE#`` / ``#FALSE#`` (read
    back as bool, so those two strings cannot be stored as text). Names: 1-15
    printable ASCII characters, no spaces;
    comments: at most 79 printable ASCII characters (each field keeps a NUL
    for C readers that use ``strcpy``). Bad input raises
    :class:`~vampires.errors.KeywordError` and writes nothing; so does a full
    table. Like ``astropy.io.fits.Header``: ``kw["EXPTIME"] = (1e-3, "[s]")``
    sets value and comment, ``kw["EXPTIME"] = 2e-3`` keeps the comment.
    ``del kw["X"]`` moves the keywords after ``X`` up one slot: the table has
    no hole, since milk and pyMilk stop reading at the first empty entry.
    """

    __slots__ = ("_stream",)

    def __init__(self, stream: Stream) -> None:
        self._stream = stream

    @property
    def _table(self) -> NDArray[np.void]:
        return self._stream._views().kw

    def _index(self, name: object) -> int | None:
        table = self._table
        if not isinstance(name, str) or not name.isascii():
            return None
        live = table["type"] != b"N"
        hits = np.flatnonzero((table["name"] == name.encode()) & live)
        if hits.size:
            return int(hits[0])
        # C writers strcpy names over older, longer ones: bytes after the NUL are garbage
        for i in np.flatnonzero(live):
            if _decode(bytes(table[i]["name"])) == name:
                return int(i)
        return None

    @staticmethod
    def _value(entry: np.void) -> KeywordValue:
        kind = bytes(entry["type"])
        if kind == b"L":
            return int(entry["numl"])
        if kind == b"D":
            return float(entry["numf"])
        text = _decode(bytes(entry["valstr"]))
        if text == _TRUE:
            return True
        if text == _FALSE:
            return False
        return text

    def _live(self) -> list[int]:
        types = self._table["type"]
        return [int(i) for i in np.flatnonzero(np.isin(types, (b"L", b"D", b"S")))]

    def __getitem__(self, name: str) -> KeywordValue:
        idx = self._index(name)
        if idx is None:
            raise KeyError(name)
        return self._value(self._table[idx])

    def __setitem__(self, name: str, value: object) -> None:
        if isinstance(value, tuple):
            self.update({name: value})
        else:
            self.set(name, value)

    def __delitem__(self, name: str) -> None:
        idx = self._index(name)
        if idx is None:
            raise KeyError(name)
        # Compact: milk and pyMilk stop reading at the first 'N' entry (and pyMilk
        # writes its next keyword there), so the keywords after ``name`` move up
        # one slot and the table never has a hole.
        table = self._table
        keep = [i for i in self._live() if i != idx]
        end = max(idx, *keep) + 1 if keep else idx + 1
        moved = table[keep].copy()
        moved["cnt"] += 1
        n = len(keep)
        table[:n] = moved
        tail = table[n:end]
        tail["type"] = b"N"
        tail["name"] = b""
        tail["valstr"] = b""
        tail["comment"] = b""
        tail["cnt"] += 1

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._index(name) is not None

    def __iter__(self) -> Iterator[str]:
        table = self._table
        return iter([_decode(bytes(table[i]["name"])) for i in self._live()])

    def __len__(self) -> int:
        return len(self._live())

    def keys(self) -> list[str]:
        """Return the keyword names in table order (``dict(stream.keywords)`` works).

        Returns
        -------
        list of str
        """
        return list(self)

    def values(self) -> list[KeywordValue]:
        """Return the keyword values in table order.

        Returns
        -------
        list
        """
        return list(self.to_dict().values())

    def items(self) -> list[tuple[str, KeywordValue]]:
        """Return ``(name, value)`` pairs in table order.

        Returns
        -------
        list of tuple
        """
        return list(self.to_dict().items())

    def __repr__(self) -> str:
        return f"StreamKeywords({self.to_dict()!r})"

    def get(self, name: str, default: KeywordValue | None = None) -> KeywordValue | None:
        """Return the value of ``name``, or ``default`` when absent.

        Parameters
        ----------
        name
            Keyword name.
        default
            Returned when the keyword does not exist.

        Returns
        -------
        int, float, str, bool or default
        """
        idx = self._index(name)
        return default if idx is None else self._value(self._table[idx])

    def comment(self, name: str) -> str:
        """Return the comment of ``name``.

        Parameters
        ----------
        name
            Keyword name.

        Returns
        -------
        str

        Raises
        ------
        KeyError
            No such keyword.
        """
        idx = self._index(name)
        if idx is None:
            raise KeyError(name)
        return _decode(bytes(self._table[idx]["comment"]))

    def set(self, name: str, value: object, comment: str | None = None) -> None:
        """Write one keyword.

        Parameters
        ----------
        name
            1-15 printable ASCII characters, no spaces.
        value
            int, float, str (<= 15 chars) or bool.
        comment
            <= 79 characters; None keeps the current comment ("" for a new one).

        Raises
        ------
        KeywordError
            Bad name, value or comment, or the table is full; nothing written.
        """
        self._apply([_encode_card(name, value, comment)])

    def update(self, items: Mapping[str, object]) -> None:
        """Write several keywords: all or nothing.

        Parameters
        ----------
        items
            ``name -> value`` or ``name -> (value, comment)``.

        Raises
        ------
        KeywordError
            Any bad item, or not enough free slots; nothing written.
        """
        self._apply(_cards_from(items))

    def to_dict(self) -> dict[str, KeywordValue]:
        """Return ``{name: value}`` in table order.

        Returns
        -------
        dict
        """
        table = self._table
        return {_decode(bytes(table[i]["name"])): self._value(table[i]) for i in self._live()}

    def cards(self) -> list[tuple[str, KeywordValue, str]]:
        """Return ``[(name, value, comment), ...]`` in table order.

        Returns
        -------
        list of tuple
        """
        table = self._table
        return [
            (
                _decode(bytes(table[i]["name"])),
                self._value(table[i]),
                _decode(bytes(table[i]["comment"])),
            )
            for i in self._live()
        ]

    def types(self) -> dict[str, str]:
        """Return ``{name: 'L' | 'D' | 'S'}`` (the C type letters).

        Returns
        -------
        dict
        """
        table = self._table
        return {
            _decode(bytes(table[i]["name"])): bytes(table[i]["type"]).decode() for i in self._live()
        }

    @property
    def version(self) -> int:
        """A number that changes whenever any keyword is written (CRC of the table)."""
        return zlib.crc32(self._stream._views().kw_bytes.data)

    @property
    def capacity(self) -> int:
        """Number of keyword slots (``NBkw``)."""
        return int(self._table.shape[0])

    @staticmethod
    def check(items: Mapping[str, object]) -> None:
        """Check keywords as :meth:`update` would, writing nothing (no stream needed).

        The limits are the layout's (``KEYWORD_NAME_MAX``, ``KEYWORD_STRING_MAX``,
        ``KEYWORD_COMMENT_MAX``); free slots are not checked.

        Parameters
        ----------
        items
            ``name -> value`` or ``name -> (value, comment)``.

        Raises
        ------
        KeywordError
            Any bad name, value or comment.
        """
        _cards_from(items)

    def _apply(self, cards: list[_Card]) -> None:
        self._write(self._plan(cards))

    def _plan(self, cards: list[_Card]) -> list[tuple[int, bool, _Card]]:
        """Choose a slot for every card, or raise before anything is written."""
        table = self._table
        names = [c.name for c in cards]
        if len(set(names)) != len(names):
            msg = f"keywords given twice in one update: {names}"
            raise KeywordError(msg)
        free = [int(i) for i in np.flatnonzero(~np.isin(table["type"], (b"L", b"D", b"S")))]
        slots = []
        for card in cards:
            idx = self._index(card.name.decode())
            if idx is None:
                if not free:
                    msg = (
                        f"keyword table of stream {self._stream.name!r} is full "
                        f"({table.shape[0]} slots) while adding {card.name.decode()!r}; "
                        "re-create the stream with a larger nkeywords"
                    )
                    raise KeywordError(msg)
                idx = free.pop(0)
                slots.append((idx, True, card))
            else:
                slots.append((idx, False, card))
        return slots

    def _write(self, slots: list[tuple[int, bool, _Card]]) -> None:
        table = self._table
        for idx, new, card in slots:
            entry = table[idx : idx + 1]
            if new:
                entry["type"] = b"N"  # invisible until complete
                entry["name"] = card.name
                entry["comment"] = b""
            entry["valstr"] = b""
            if card.type == b"L":
                entry["numl"] = card.value
            elif card.type == b"D":
                entry["numf"] = card.value
            else:
                entry["valstr"] = card.value
            if card.comment is not None:
                entry["comment"] = card.comment
            entry["cnt"] += 1
            entry["type"] = card.type


# --------------------------------------------------------------------------- stream


@attrs.frozen
class _Views:
    """Numpy views into one live mapping (dropped together on close)."""

    md: NDArray[np.void]
    data: NDArray[Any]
    kw: NDArray[np.void]
    kw_bytes: NDArray[np.uint8]
    cnt0: NDArray[np.uint64]
    cnt1: NDArray[np.uint64]
    write: NDArray[np.uint8]
    atime: NDArray[np.int64]
    writetime: NDArray[np.int64]
    cbindex: NDArray[np.uint32]
    cbcycle: NDArray[np.uint64]
    read_pid: NDArray[np.int32]
    write_pid: NDArray[np.int32]
    semctrl: NDArray[np.uint32]
    semstatus: NDArray[np.uint32]
    proctrace: NDArray[np.void]
    cbmd: NDArray[np.void]
    cbdata: NDArray[Any]
    atimearray: NDArray[np.int64] | None
    writetimearray: NDArray[np.int64] | None
    cntarray: NDArray[np.uint64] | None
    sems: tuple[Semaphore, ...]
    semlog: Semaphore


def _build_views(
    mm: mmap.mmap, layout: StreamLayout, shape: tuple[int, ...], dtype: np.dtype[Any], name: str
) -> _Views:
    # One root array holding a buffer export: mm.close() then refuses (BufferError)
    # while any view derived from it is alive, so no view can ever dangle.
    root = np.frombuffer(mm, dtype=np.uint8)

    def at(offset: int, dt: DTypeLike, count: int | tuple[int, ...]) -> NDArray[Any]:
        dtype_ = np.dtype(dt)
        shape = count if isinstance(count, tuple) else (count,)
        nbytes = math.prod(shape) * dtype_.itemsize
        return root[offset : offset + nbytes].view(dtype_).reshape(shape)

    md = at(0, METADATA_DTYPE, 1)
    base = int(root.ctypes.data)
    nsem = layout.nsemaphores
    depth = layout.depth
    kw = at(layout.keywords, KEYWORD_DTYPE, layout.nkeywords)
    return _Views(
        md=md,
        data=at(layout.data, dtype, shape),
        kw=kw,
        kw_bytes=at(layout.keywords, np.uint8, layout.nkeywords * KEYWORD_DTYPE.itemsize),
        cnt0=at(264, "<u8", 1),
        cnt1=at(272, "<u8", 1),
        write=at(288, "u1", 1),
        atime=at(184, "<i8", 2),
        writetime=at(200, "<i8", 2),
        cbindex=at(296, "<u4", 1),
        cbcycle=at(304, "<u8", 1),
        read_pid=at(layout.sem_read_pid, "<i4", nsem),
        write_pid=at(layout.sem_write_pid, "<i4", nsem),
        semctrl=at(layout.semctrl, "<u4", nsem),
        semstatus=at(layout.semstatus, "<u4", nsem),
        proctrace=at(layout.proctrace, PROC_TRACE_DTYPE, layout.nproctrace),
        cbmd=at(layout.cbframemd, CBFRAMEMD_DTYPE, layout.cbsize),
        cbdata=at(layout.cbdata, dtype, (layout.cbsize, *shape)),
        atimearray=at(layout.atimearray, "<i8", (depth, 2)) if layout.temporal_cb else None,
        writetimearray=at(layout.writetimearray, "<i8", (depth, 2)) if layout.temporal_cb else None,
        cntarray=at(layout.cntarray, "<u8", depth) if layout.temporal_cb else None,
        sems=tuple(
            Semaphore(base + layout.semaphores + i * SEM_SIZE, f"stream {name!r} semaphore {i}")
            for i in range(nsem)
        ),
        semlog=Semaphore(base + layout.semlog, f"stream {name!r} semlog"),
    )


def _slot_holding(v: _Views, cbsize: int, cnt0: int) -> int | None:
    """Circular-buffer slot that holds frame ``cnt0`` (filled by our writer), or None.

    Slots advance by one per write, so frame ``cnt0`` sits ``cnt0(latest) - cnt0``
    slots behind ``CBindex``; its ``CBFRAMEMD`` must still say ``cnt0`` (the
    writer zeroes it before rewriting a slot; C writers never fill it).
    """
    lag = int(v.cnt0[0]) - cnt0
    if cnt0 <= 0 or not 0 <= lag < cbsize:
        return None
    slot = (int(v.cbindex[0]) - lag) % cbsize
    return slot if int(v.cbmd[slot]["cnt0"]) == cnt0 else None


def _slot_times(md: np.void) -> tuple[int, int, int, int]:
    """(atime s, ns, writetime s, ns) of a ``CBFRAMEMD`` entry."""
    return (
        int(md["atime"]["tv_sec"]),
        int(md["atime"]["tv_nsec"]),
        int(md["writetime"]["tv_sec"]),
        int(md["writetime"]["tv_nsec"]),
    )


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
        self._shape = _shape_of(md)
        self._dtype: np.dtype[Any] = DATATYPE_DTYPES[int(md["datatype"])]
        del md
        self._inode = 0  # set by _attach from the mapped descriptor
        self._fresh_until = 0.0  # is_stale(max_age): last "not stale" answer valid until
        self._fd = -1  # a descriptor of the mapped file (set by _attach), for claim locks
        self._size = layout.total
        self._v: _Views | None = _build_views(mm, layout, self._shape, self._dtype, name)
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
        shm_dir: str | os.PathLike[str] | None = None,
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
        name = _check_name(name)
        dims = _check_shape(shape)
        dt = _check_dtype(dtype)
        nkw = _check_count(nkeywords, "nkeywords", 0, 65535)
        nsem = _check_count(nsemaphores, "nsemaphores", 1, 65535)
        cbsize = _check_count(circular_buffer, "circular_buffer", 0, 2**32 - 1)
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
                _initialise(mm, layout, name, size, len(dims), dt, inode)
            finally:
                with contextlib.suppress(BufferError):
                    mm.close()
            _publish_file(tmp, path, exist_ok=exist_ok, name=name)
            return cls._attach(path, name, fd)
        finally:
            os.close(fd)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    @classmethod
    def open(cls, name: str, *, shm_dir: str | os.PathLike[str] | None = None) -> Stream:
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
        name = _check_name(name)
        path = _resolve_dir(shm_dir) / f"{name}{_SUFFIX}"
        # O_NONBLOCK: a FIFO (or device) named like a stream must not block the
        # open; _check_file then refuses anything but a regular file
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
            _check_file(fd, path)
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
            return cls._attach(path, name, fd)
        finally:
            os.close(fd)

    @classmethod
    def _attach(cls, path: Path, name: str, fd: int) -> Stream:
        layout = _check_file(fd, path)
        mm = mmap.mmap(fd, layout.total)
        stream = cls(path, name, mm, layout)
        stream._inode = os.fstat(fd).st_ino
        stream._fd = os.dup(fd)
        return stream

    @staticmethod
    def exists(name: str, *, shm_dir: str | os.PathLike[str] | None = None) -> bool:
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

    def _views(self) -> _Views:
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
        v = self._views()
        md = v.md[0]
        off = clock.tai_offset_ns()
        out: dict[str, Any] = {}
        for field in METADATA_DTYPE.names or ():
            value = md[field]
            if field in ("version", "name"):
                out[field] = _decode(bytes(value))
            elif field == "size":
                out[field] = [int(x) for x in value]
            elif field.endswith("time"):
                out[field] = clock.to_unix(int(value["tv_sec"]), int(value["tv_nsec"]), off)
            elif field == "cudaMemHandle":
                continue
            else:
                out[field] = int(value)
        out["semReadPID"] = [int(x) for x in v.read_pid]
        out["semWritePID"] = [int(x) for x in v.write_pid]
        out["semvalues"] = [s.value() for s in v.sems]
        out["semlog"] = v.semlog.value()
        out["file_size"] = self._layout.total
        return out

    # ---- writing

    def _target(self, shape: tuple[int, ...], v: _Views) -> tuple[NDArray[Any], int | None]:
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

    @staticmethod
    def _atime(acquisition_time: object) -> tuple[int, int] | None:
        if acquisition_time is None:
            return None
        if isinstance(acquisition_time, bool) or not isinstance(
            acquisition_time, int | float | np.floating | np.integer
        ):
            msg = f"acquisition_time must be float unix seconds (got {acquisition_time!r})"
            raise StreamError(msg)
        if not math.isfinite(float(acquisition_time)) or acquisition_time < 0:
            msg = f"acquisition_time must be finite unix seconds >= 0 (got {acquisition_time!r})"
            raise StreamError(msg)
        return clock.to_timespec(float(acquisition_time))

    def _coerce(self, frame: object) -> NDArray[Any]:
        """Accept arrays that cast safely, and Python integers that fit."""
        try:
            arr = np.asarray(frame)
        except (TypeError, ValueError) as exc:
            msg = f"frame for stream {self._name!r} is not an array: {exc}"
            raise StreamError(msg) from exc
        if np.can_cast(arr.dtype, self._dtype, casting="safe"):
            return arr
        if (
            not isinstance(frame, np.ndarray)
            and arr.dtype.kind in "iu"
            and self._dtype.kind in "iu"
            and arr.size
        ):
            info = np.iinfo(self._dtype)
            if info.min <= int(arr.min()) and int(arr.max()) <= info.max:
                return arr.astype(self._dtype)  # e.g. nested lists of Python ints
        msg = (
            f"frame dtype {arr.dtype} cannot be written safely into stream "
            f"{self._name!r} of dtype {self._dtype}; convert it first"
        )
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
        arr = self._coerce(frame)
        target, index = self._target(arr.shape, v)
        plan = self._keywords._plan(_cards_from(keywords)) if keywords else []
        atime = self._atime(acquisition_time)
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
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**64
            ):
                msg = f"{what} must be an integer in [0, 2**64) or None (got {value!r})"
                raise StreamError(msg)
        plan = self._keywords._plan(_cards_from(keywords)) if keywords else []
        atime = self._atime(acquisition_time)
        v.write[0] = 1
        try:
            fill(v.data)
        except BaseException:
            # The pixel array may hold part of a frame now: put the last frame
            # back from its circular-buffer slot if we have it; otherwise keep
            # the write flag up so no reader takes the half frame for a whole
            # one (the next successful write clears it).
            slot = _slot_holding(v, self._layout.cbsize, int(v.cnt0[0]))
            if slot is not None:
                np.copyto(v.data, v.cbdata[slot])
                v.write[0] = 0
            raise
        return self._publish(v, plan, atime, None, cnt0=cnt0, cnt1=cnt1)

    def _publish(
        self,
        v: _Views,
        plan: list[tuple[int, bool, _Card]],
        atime: tuple[int, int] | None,
        index: int | None,
        *,
        cnt0: int | None = None,
        cnt1: int | None = None,
        copy_to_slot: bool = True,
    ) -> int:
        try:
            if plan:
                self._keywords._write(plan)
            if cnt0 is None:
                cnt0 = int(v.cnt0[0]) + 1
            if cnt1 is None:
                cnt1 = int(v.cnt1[0]) if index is None else index
            self._stamp(v, cnt0, cnt1, atime, copy_to_slot=copy_to_slot)
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

    def _publish_prefilled_slot(self, acquisition_time: float | None = None) -> int:
        """Publish the next circular-buffer slot's pixels as they are, with no copy at all.

        Emulates a camera whose frame grabber writes into the slots by DMA (no
        CPU): the benchmarks use it to measure a reader or link alone, as a
        raw socket is measured. The main pixel array is *not* updated, so this
        is not a way to publish frames for real readers.
        """
        v = self._views()
        self._check_writable()
        if not self._layout.cbsize:
            msg = f"stream {self.name!r} has no circular buffer"
            raise StreamError(msg)
        v.write[0] = 1
        return self._publish(v, [], self._atime(acquisition_time), None, copy_to_slot=False)

    def _stamp(
        self,
        v: _Views,
        cnt0: int,
        cnt1: int,
        atime: tuple[int, int] | None,
        *,
        copy_to_slot: bool = True,
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
            md["cnt0"] = 0  # invalid while the slot is rewritten (see _read_slot)
            if copy_to_slot:
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
                got = self._read_slot(v, self._layout.cbsize, out, c0)
                if got is not None:
                    return (*got, torn)
            if v.write[0]:
                now = time.monotonic()
                stuck_since = now if stuck_since is None else stuck_since
                if now - stuck_since > _STUCK_WRITE_S:
                    msg = (
                        f"stream {self._name!r}: write flag set for more than "
                        f"{_STUCK_WRITE_S} s at cnt0={c0} (writer died mid-frame?)"
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
            if torn >= _MAX_TORN:
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

    @staticmethod
    def _read_slot(
        v: _Views, cbsize: int, out: NDArray[Any], c0: int
    ) -> tuple[int, int, int, int, int, int] | None:
        """Copy frame ``c0`` from its circular-buffer slot, if our writer filled it.

        The slot is rewritten only ``CBsize`` frames later (and its ``cnt0`` is
        zeroed first), so this copy is consistent even while the writer is
        overwriting the main pixel buffer. C writers leave ``CBFRAMEMD`` empty:
        then this returns None and the caller copies the main buffer.
        """
        slot = _slot_holding(v, cbsize, c0)
        if slot is None:
            return None
        md = v.cbmd[slot]
        np.copyto(out, v.cbdata[slot])
        cnt1 = int(md["cnt1"])
        times = _slot_times(md)
        if int(md["cnt0"]) != c0:
            return None
        return (c0, cnt1, *times)

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


def _check_file(fd: int, path: Path) -> StreamLayout:
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        msg = f"{path} is not a regular file, so not a stream"
        raise StreamLayoutError(msg)
    header = os.pread(fd, _MD_SIZE, 0)
    return _validate_header(header, st.st_size, path)


def _initialise(
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


def _publish_file(tmp: Path, path: Path, *, exist_ok: bool, name: str) -> None:
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


# --------------------------------------------------------------------------- reader


class StreamReader:
    """A consumer of a stream holding its own semaphore index.

    Create with :meth:`Stream.reader`; close (or use ``with``) to release the
    index. One reader per consuming thread; :meth:`close` may come from any
    thread and wakes the consumer.

    Attributes
    ----------
    torn
        Torn copies detected (and retried, or raised by :meth:`next_into`).
    missed
        Frames skipped in total (sum of ``Frame.missed``).
    caught_up
        Frames returned from the circular buffer after the reader fell behind
        (``catch_up=True``): late, but not lost.

    With ``catch_up=True`` a reader that fell behind returns the frame right
    after the last one it returned, taken from its circular-buffer slot, as
    long as our writer filled that slot and has not reused it (it zeroes a
    slot's ``cnt0`` before rewriting it, so the check after the copy is
    exact). Streams written by the C library leave ``CBFRAMEMD`` empty: the
    reader then jumps to the newest frame and counts the gap as missed.
    """

    def __init__(
        self,
        stream: Stream,
        *,
        index: int | None = None,
        catch_up: bool = False,
        max_lag: int | None = None,
    ) -> None:
        self._stream = stream
        self._catch_up = bool(catch_up) and stream._layout.cbsize > 0
        cbsize = stream._layout.cbsize
        self._max_lag = (
            cbsize - 1
            if max_lag is None
            else _check_count(max_lag, "max_lag", 0, max(cbsize - 1, 0))
        )
        self.caught_up = 0
        v = stream._views()
        self._index = self._claim(stream, v, index)
        self._sem: Semaphore | None = v.sems[self._index]
        try:
            self._sem.flush()  # bounded: a damaged semaphore raises
        except StreamError:
            if int(v.read_pid[self._index]) == os.getpid():
                v.read_pid[self._index] = 0
            raise
        self._last = int(v.cnt0[0])
        # posts consumed minus counts seen since then (see _ahead)
        self._posts = 0
        self._counted = self._last
        # how long after its post the writer counts, if it posts first (pyMilk), else 0
        self._post_first_s = 0.0
        self.torn = 0
        self.missed = 0

    @staticmethod
    def _claim(stream: Stream, v: _Views, preferred: int | None) -> int:
        nsem = len(v.sems)
        if preferred is not None:
            _check_count(preferred, "semaphore index", 0, nsem - 1)
        pid = os.getpid()
        # flock on a private descriptor serialises claims between our readers
        # (threads and processes); C readers do not lock, as in the C library.
        fd = stream._lock_fd()
        try:
            if fd >= 0:
                fcntl.flock(fd, fcntl.LOCK_EX)
            pids = v.read_pid

            def free(i: int) -> bool:
                holder = int(pids[i])
                return holder != pid and (holder in (0, -1) or not _pid_alive(holder))

            order = ([preferred] if preferred is not None else []) + list(range(nsem))
            for i in order:
                if free(i):
                    pids[i] = pid
                    return i
        finally:
            if fd >= 0:
                os.close(fd)
        msg = (
            f"stream {stream.name!r}: all {nsem} semaphores are held by live readers "
            f"(semReadPID {[int(p) for p in v.read_pid]}); close a reader or re-create the "
            "stream with more nsemaphores"
        )
        raise StreamError(msg)

    @property
    def index(self) -> int:
        """The semaphore index this reader holds."""
        return self._index

    @property
    def last_cnt0(self) -> int:
        """``cnt0`` of the last frame returned (at creation: the stream's cnt0)."""
        return self._last

    def _live(self) -> Semaphore:
        if self._sem is None:
            msg = f"reader of stream {self._stream.name!r} is closed"
            raise StreamClosedError(msg)
        self._stream._views()
        return self._sem

    def close(self) -> None:
        """Release the semaphore index (idempotent).

        A thread blocked in :meth:`wait` or :meth:`next` on this reader wakes
        at once with :class:`~vampires.errors.StreamClosedError`.
        """
        sem, self._sem = self._sem, None
        if sem is None:
            return
        with contextlib.suppress(StreamError):  # closed, or the file shrank: leave it
            self._stream._views()
            sem.post()  # wake our own waiter, if any (the next claimer flushes)
            pids = self._stream._views().read_pid
            if int(pids[self._index]) == os.getpid():
                pids[self._index] = 0
        with contextlib.suppress(ValueError):
            self._stream._readers.remove(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def wait(self, timeout: float) -> int:
        """Block until the writer posts this reader's semaphore.

        Parameters
        ----------
        timeout
            Seconds.

        Returns
        -------
        int
            ``cnt0`` after the wake.

        Raises
        ------
        StreamTimeout
            Nothing posted within ``timeout``.
        """
        self._live().wait_or_raise(timeout, f"stream {self._stream.name!r}")
        self._live()  # closed while waiting
        self._posts += 1
        return self._stream.cnt0

    def _await_new(self, timeout: float) -> None:
        """Return once ``cnt0`` differs from the last frame returned.

        A wake that finds ``cnt0`` unchanged is either a post left over from a
        frame already read or a writer that posts its semaphores *before* it
        increments ``cnt0`` (pyMilk's ``set_data``). For the latter the count
        moves microseconds later and no other post will come until the next
        frame: so after such a wake the reader polls ``cnt0`` for a short,
        bounded time (:data:`_POST_BEFORE_COUNT_S`), sleeping on the
        semaphore between polls with growing steps (a new post ends the step
        at once), instead of sleeping until the next frame or its timeout.
        """
        sem = self._live()
        v = self._stream._views()
        if not timeout >= 0:
            msg = f"timeout must be >= 0 s (got {timeout!r})"
            raise StreamError(msg)
        cnt0 = v.cnt0
        last = self._last
        if int(cnt0[0]) != last:
            return
        deadline = time.monotonic() + timeout
        poll_until = -math.inf
        step = _POLL_FIRST_S
        while True:
            now = time.monotonic()
            remaining = deadline - now
            polling = now < poll_until
            if polling:
                slice_s = min(step, remaining, poll_until - now)
                step = min(step * 2, _POLL_MAX_S)
            else:
                slice_s = remaining
            woke = slice_s > 0 and sem.wait(slice_s)
            self._live()  # closed while waiting
            self._posts += woke
            if int(cnt0[0]) != last:
                if polling and not woke:  # counted after its post: a writer that posts first
                    self._learn_post_first(time.monotonic() + _POST_BEFORE_COUNT_S - poll_until)
                return
            if woke:  # posted before counted, or a post left over: poll a while
                poll_until = time.monotonic() + _POST_BEFORE_COUNT_S
                step = _POLL_FIRST_S
            elif time.monotonic() >= deadline:
                if not polling:
                    self._resync()  # quiet for the whole timeout: the stream is at rest
                msg = f"stream {self._stream.name!r}: no new frame within {timeout:g} s"
                raise StreamTimeout(msg)

    def _learn_post_first(self, delay: float) -> None:
        """Note how long after its post a writer counted (a writer that posts first)."""
        if delay < _POST_FIRST_MAX_S:
            delay = max(delay, _POLL_FIRST_S)
            known = self._post_first_s
            self._post_first_s = delay if not known else known + 0.1 * (delay - known)

    def _ahead(self, sem: Semaphore) -> int:
        """Consume the pending posts; return posts seen minus counts seen.

        A writer posts once per frame (while the semaphore is below
        ``SEMAPHORE_MAXVAL``). ImageStreamIO counts before it posts, so this
        is <= 0; a positive value is a post whose count has not come yet (a
        writer that posts before it counts, pyMilk's ``set_data``): the pixel
        array already holds a frame ``cnt0`` does not show. Posts the writer
        skipped while the semaphore was full would make the balance drift: it
        starts again from here after such a drain.
        """
        drained = sem.flush()
        cnt0 = int(self._stream._views().cnt0[0])
        self._posts += drained - (cnt0 - self._counted)
        self._counted = cnt0
        if drained >= SEMAPHORE_MAXVAL - 1:
            # the writer may have skipped posts (semaphore full): forget the counts they
            # would have matched. (A count whose post is still to come then shows as a
            # post ahead once: a short settle, resynchronised if no count follows.)
            self._posts = max(self._posts, 0)
        return self._posts

    def _resync(self) -> None:
        """Start the post balance again: the stream is at rest (or the balance proved wrong)."""
        if self._sem is not None:
            self._sem.flush()
        self._posts = 0
        self._counted = int(self._stream._views().cnt0[0])

    def _settle(self, cnt0: int) -> bool:
        """Wait (bounded, sleeping) until ``cnt0`` moves past a frame a writer is replacing.

        Returns whether it moved.
        """
        v = self._stream._views()
        end = time.monotonic() + _POST_BEFORE_COUNT_S
        step = _POLL_FIRST_S
        while int(v.cnt0[0]) == cnt0:
            if time.monotonic() >= end:
                return False
            time.sleep(step)
            step = min(step * 2, _POLL_MAX_S)
        return True

    def _info(self, cnt0: int, cnt1: int, times: tuple[int, int, int, int]) -> FrameInfo:
        missed = max(0, cnt0 - self._last - 1)
        self.missed += missed
        self._last = cnt0
        off = clock.tai_offset_ns()
        return FrameInfo(
            cnt0=cnt0,
            cnt1=cnt1,
            acquisition_time=clock.to_unix(times[0], times[1], off),
            write_time=clock.to_unix(times[2], times[3], off),
            missed=missed,
        )

    def _behind_slot(self, v: _Views) -> tuple[int, int] | None:
        """(slot, cnt0) of the frame after the last returned, if behind and still buffered."""
        if not self._catch_up:
            return None
        want = self._last + 1
        lag = int(v.cnt0[0]) - want
        if lag <= 0 or lag > self._max_lag:
            return None
        slot = _slot_holding(v, self._stream._layout.cbsize, want)
        return None if slot is None else (slot, want)

    def _from_slot(
        self, v: _Views, slot: int, want: int, func: Callable[[NDArray[Any]], object]
    ) -> FrameInfo | None:
        """Let ``func`` copy frame ``want`` from its slot; None if it was reused meanwhile."""
        md = v.cbmd[slot]
        view = v.cbdata[slot].view()
        view.flags.writeable = False
        func(view)
        cnt1 = int(md["cnt1"])
        times = _slot_times(md)
        if int(md["cnt0"]) != want:
            return None
        if want != int(v.cnt0[0]):
            self.caught_up += 1
        return self._info(want, cnt1, times)

    def _latest_slot(self, v: _Views) -> tuple[int, int] | None:
        """(slot, cnt0) of the newest frame if our writer also put it in its slot."""
        c0 = int(v.cnt0[0])
        slot = _slot_holding(v, self._stream._layout.cbsize, c0)
        return None if slot is None else (slot, c0)

    def next(self, timeout: float, *, out: NDArray[Any] | None = None) -> Frame:
        """Return the next frame newer than the last one returned.

        Returns at once if one was already published; torn copies are
        retried (counted in :attr:`torn`), never returned.

        Parameters
        ----------
        timeout
            Seconds to wait for a new frame.
        out
            Optional array (stream shape and dtype) to copy into; no allocation.

        Returns
        -------
        Frame
            ``missed`` = frames skipped since the previous one returned.

        Raises
        ------
        StreamTimeout
            No new frame within ``timeout``.
        TornFrameError
            The writer overwrote the frame during every copy attempt.
        """
        self._await_new(timeout)
        stream = self._stream
        data = stream._check_out(out) if out is not None else np.empty_like(stream._views().data)

        def copy(view: NDArray[Any]) -> None:
            np.copyto(data, view)

        for _ in range(_MAX_TORN):
            info = self._take(copy)
            if info is not None:
                return Frame(
                    data=data,
                    cnt0=info.cnt0,
                    cnt1=info.cnt1,
                    acquisition_time=info.acquisition_time,
                    write_time=info.write_time,
                    missed=info.missed,
                )
            logger.debug("stream %r: torn copy, retrying", stream.name)
        msg = (
            f"stream {stream.name!r}: {_MAX_TORN} torn copies in a row (the writer "
            "overwrites frames faster than they can be copied)"
        )
        raise TornFrameError(msg)

    def next_into(self, func: Callable[[NDArray[Any]], object], timeout: float) -> FrameInfo:
        """Wait for a new frame and let ``func`` copy it from the zero-copy view.

        Parameters
        ----------
        func
            Called with a read-only view of the pixels; must copy what it needs.
        timeout
            Seconds to wait for a new frame.

        Returns
        -------
        FrameInfo

        Raises
        ------
        StreamTimeout
            No new frame within ``timeout``.
        TornFrameError
            The frame changed while ``func`` ran: what it copied is not one
            frame. The frame counts as missed at the next call.
        """
        self._await_new(timeout)
        info = self._take(func)
        if info is None:
            msg = (
                f"stream {self._stream.name!r}: frame {self._stream.cnt0} was overwritten while "
                "it was being copied (torn); skip it"
            )
            raise TornFrameError(msg)
        return info

    def _take(self, func: Callable[[NDArray[Any]], object]) -> FrameInfo | None:
        """Let ``func`` copy the next frame (from its slot if buffered); None if torn.

        Raises
        ------
        TornFrameError
            The write flag stayed up (writer died mid-frame).
        """
        v = self._stream._views()
        behind = self._behind_slot(v)
        if behind is not None:
            info = self._from_slot(v, *behind, func)
            if info is not None:
                return info
            # reused while func copied it: that frame is lost; go on with the newest
        latest = self._latest_slot(v)
        if latest is not None:
            # the slot is rewritten only CBsize frames later: a slow copy does not tear
            info = self._from_slot(v, *latest, func)
            if info is not None:
                return info
        sem = self._live()
        if self._ahead(sem) > 0:
            # a post whose count has not come yet: the writer posts before it counts
            # (pyMilk) and the pixels already hold the next frame: wait for its count
            if self._settle(int(v.cnt0[0])):
                if self._ahead(sem) > 0:
                    # still ahead once the count came: the balance was off by a post
                    # (a resync fell between a count and its post); without this the
                    # reader would wait one frame at every call and lose every other one
                    self._posts = 0
            else:
                self._resync()  # no count came: the balance was wrong
        start = time.monotonic()
        while v.write[0]:
            if time.monotonic() - start > _STUCK_WRITE_S:
                msg = f"stream {self._stream.name!r}: write flag stuck (writer died mid-frame?)"
                raise TornFrameError(msg)
            time.sleep(0)
        c0 = int(v.cnt0[0])
        view = v.data.view()
        view.flags.writeable = False
        func(view)
        cnt1 = int(v.cnt1[0])
        times = (int(v.atime[0]), int(v.atime[1]), int(v.writetime[0]), int(v.writetime[1]))
        whole = self._still_whole(c0)
        if whole and self._post_first_s:
            # A writer that posts before it counts rewrites the pixels, lowers the write
            # flag and only then posts: a frame replaced just before the check above shows
            # no sign of it yet. Its post follows within about the post-to-count delay
            # seen at the wakes: look again after twice that (decaying, for a writer
            # wrongly taken for one).
            time.sleep(min(2 * self._post_first_s, _POST_FIRST_GRACE_S))
            self._post_first_s *= 0.99
            whole = self._still_whole(c0)
        if not whole:
            self.torn += 1
            if int(v.cnt0[0]) == c0 and not self._settle(c0):
                self._resync()  # no count came after the post: the balance was wrong
            return None
        return self._info(c0, cnt1, times)

    def _still_whole(self, cnt0: int) -> bool:
        """Tell whether frame ``cnt0`` taken from the pixel array is still whole there.

        The write flag is down, ``cnt0`` did not move, and no post came
        without its count (a writer that posts before it counts, pyMilk,
        replaced the pixels; see :meth:`_ahead`). A sender that sends the
        frame straight from the pixel array calls it after the send, while no
        other thread uses this reader.
        """
        v = self._stream._views()
        sem = self._live()
        return not v.write[0] and int(v.cnt0[0]) == cnt0 and self._ahead(sem) <= 0
