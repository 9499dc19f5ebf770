"""The byte layout of a milk ImageStreamIO 2.00 stream file, as numpy dtypes.

Derived from ``ImageStruct.h`` and ``ImageStreamIO_image_sizing`` of
milk-org/ImageStreamIO (IMAGESTRUCT_VERSION "2.00", built without
``DAO_COMPAT`` and ``IMAGESTRUCT_WRITEHISTORY``), for x86-64 Linux / glibc
(little-endian, ``sem_t`` of 32 bytes, ``pid_t`` of 4, ``ino_t`` and
``struct timespec`` fields of 8).

A stream file ``$MILK_SHM_DIR/<name>.im.shm`` is a sequence of segments, each
rounded up to a multiple of 8 bytes (:func:`round_up_8`):

1. ``IMAGE_METADATA`` (:data:`METADATA_DTYPE`, 384 bytes)
2. pixel data, ``imdatamemsize = nelement * itemsize`` bytes
3. ``IMAGE_KEYWORD[NBkw]`` (:data:`KEYWORD_DTYPE`, 128 bytes each)
4. ``sem_t[sem]`` (32 bytes each), process-shared unnamed semaphores
5. ``semlog``: one more ``sem_t``
6. ``semReadPID``: ``pid_t[sem]``
7. ``semWritePID``: ``pid_t[sem]``
8. ``semctrl``: ``uint32[sem]``
9. ``semstatus``: ``uint32[sem]``
10. ``STREAM_PROC_TRACE[NBproctrace]`` (:data:`PROC_TRACE_DTYPE`, 64 bytes each)
11. only for temporal circular buffers (``imagetype & 0xF000F ==
    CIRCULAR_BUFFER | ZAXIS_TEMPORAL``): ``atimearray``, ``writetimearray``
    (``timespec[size[2]]``) and ``cntarray`` (``uint64[size[2]]``)
12. ``CBFRAMEMD[CBsize]`` (:data:`CBFRAMEMD_DTYPE`, 48 bytes each)
13. only if ``CBsize > 0``: ``CBsize`` copies of the pixel data

Axis order: milk's ``size[0]`` is the fastest-varying axis (FITS NAXIS1, the
image width), so a numpy array of a stream has ``shape == size[::-1]``
(``(height, width)`` or ``(depth, height, width)``), C order.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Final

import attrs
import numpy as np

__all__ = [
    "CBFRAMEMD_DTYPE",
    "CIRCULAR_BUFFER",
    "DATATYPE_CODES",
    "DATATYPE_DTYPES",
    "IMAGESTRUCT_VERSION",
    "KEYWORD_COMMENT_MAX",
    "KEYWORD_DTYPE",
    "KEYWORD_NAME_MAX",
    "KEYWORD_STRING_MAX",
    "MATH_DATA",
    "METADATA_DTYPE",
    "NAME_MAX",
    "NB_PROCTRACE",
    "PID_SIZE",
    "PROC_TRACE_DTYPE",
    "SEMAPHORE_MAXVAL",
    "SEM_SIZE",
    "TIMESPEC_DTYPE",
    "WRITABLE_DTYPES",
    "ZAXIS_TEMPORAL",
    "StreamLayout",
    "metadata_offset",
    "round_up_8",
]

#: Version string at offset 0 of every stream file.
IMAGESTRUCT_VERSION: Final = "2.00"
#: ``char name[80]`` incl. the terminating NUL: at most 79 characters.
NAME_MAX: Final = 79
#: Keyword name, string value and comment fields are C strings read with
#: ``strcpy``/``%s`` by milk, so one byte is kept for the terminating NUL.
KEYWORD_NAME_MAX: Final = 15
KEYWORD_STRING_MAX: Final = 15
KEYWORD_COMMENT_MAX: Final = 79
#: ``sem_post`` only while a semaphore's value is below this.
SEMAPHORE_MAXVAL: Final = 10
#: Default number of ``STREAM_PROC_TRACE`` entries (``IMAGE_NB_PROCTRACE``).
NB_PROCTRACE: Final = 10
#: ``sizeof(sem_t)`` on glibc x86-64 and ``sizeof(pid_t)``.
SEM_SIZE: Final = 32
PID_SIZE: Final = 4

#: ``imagetype`` bits.
CIRCULAR_BUFFER: Final = 0x0001
MATH_DATA: Final = 0x0002
ZAXIS_TEMPORAL: Final = 0x20000
_TYPE_MASK: Final = 0xF000F

TIMESPEC_DTYPE: Final = np.dtype([("tv_sec", "<i8"), ("tv_nsec", "<i8")])


def _struct(
    fields: list[tuple[str, str | np.dtype[np.void], int]], itemsize: int
) -> np.dtype[np.void]:
    return np.dtype(
        {
            "names": [f[0] for f in fields],
            "formats": [f[1] for f in fields],
            "offsets": [f[2] for f in fields],
            "itemsize": itemsize,
        }
    )


#: ``IMAGE_METADATA``: C natural alignment, 384 bytes. Unnamed padding is absent.
METADATA_DTYPE: Final = _struct(
    [
        ("version", "S32", 0),
        ("name", "S80", 32),
        ("naxis", "u1", 112),
        ("size", "(3,)<u4", 116),
        ("nelement", "<u8", 128),
        ("datatype", "u1", 136),
        ("imagetype", "<u8", 144),
        ("creationtime", TIMESPEC_DTYPE, 152),
        ("lastaccesstime", TIMESPEC_DTYPE, 168),
        ("atime", TIMESPEC_DTYPE, 184),
        ("writetime", TIMESPEC_DTYPE, 200),
        ("creatorPID", "<i4", 216),
        ("ownerPID", "<i4", 220),
        ("shared", "u1", 224),
        ("inode", "<u8", 232),
        ("location", "i1", 240),
        ("status", "u1", 241),
        ("flag", "<u8", 248),
        ("logflag", "u1", 256),
        ("sem", "<u2", 258),
        ("NBproctrace", "<u2", 260),
        ("cnt0", "<u8", 264),
        ("cnt1", "<u8", 272),
        ("cnt2", "<u8", 280),
        ("write", "u1", 288),
        ("NBkw", "<u2", 290),
        ("CBsize", "<u4", 292),
        ("CBindex", "<u4", 296),
        ("CBcycle", "<u8", 304),
        ("imdatamemsize", "<u8", 312),
        ("cudaMemHandle", "V64", 320),
    ],
    384,
)

#: ``IMAGE_KEYWORD``, 128 bytes; ``numl``/``numf``/``valstr`` overlap (C union).
KEYWORD_DTYPE: Final = _struct(
    [
        ("name", "S16", 0),
        ("type", "S1", 16),
        ("numl", "<i8", 24),
        ("numf", "<f8", 24),
        ("valstr", "S16", 24),
        ("cnt", "<u8", 40),
        ("comment", "S80", 48),
    ],
    128,
)

#: ``STREAM_PROC_TRACE``, 64 bytes.
PROC_TRACE_DTYPE: Final = _struct(
    [
        ("triggermode", "<i4", 0),
        ("procwrite_PID", "<i4", 4),
        ("trigger_inode", "<u8", 8),
        ("ts_procstart", TIMESPEC_DTYPE, 16),
        ("ts_streamupdate", TIMESPEC_DTYPE, 32),
        ("trigsemindex", "<i4", 48),
        ("triggerstatus", "<i4", 52),
        ("cnt0", "<u8", 56),
    ],
    64,
)

#: ``CBFRAMEMD``: metadata of one fast circular-buffer slot, 48 bytes.
CBFRAMEMD_DTYPE: Final = _struct(
    [
        ("cnt0", "<u8", 0),
        ("cnt1", "<u8", 8),
        ("atime", TIMESPEC_DTYPE, 16),
        ("writetime", TIMESPEC_DTYPE, 32),
    ],
    48,
)

#: ImageStreamIO datatype code -> numpy dtype (every numeric type is readable).
DATATYPE_DTYPES: Final[Mapping[int, np.dtype[Any]]] = MappingProxyType(
    {
        1: np.dtype("u1"),
        2: np.dtype("i1"),
        3: np.dtype("<u2"),
        4: np.dtype("<i2"),
        5: np.dtype("<u4"),
        6: np.dtype("<i4"),
        7: np.dtype("<u8"),
        8: np.dtype("<i8"),
        9: np.dtype("<f4"),
        10: np.dtype("<f8"),
        11: np.dtype("<c8"),
        12: np.dtype("<c16"),
        13: np.dtype("<f2"),
    }
)
#: numpy dtype -> ImageStreamIO datatype code.
DATATYPE_CODES: Final[Mapping[np.dtype[Any], int]] = MappingProxyType(
    {v: k for k, v in DATATYPE_DTYPES.items()}
)
#: dtypes :meth:`vampires.stream.Stream.create` accepts.
WRITABLE_DTYPES: Final[frozenset[np.dtype[Any]]] = frozenset(
    np.dtype(t) for t in ("u1", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8", "<f4", "<f8")
)


def metadata_offset(field: str) -> int:
    """Return the byte offset of ``field`` in ``IMAGE_METADATA`` (:data:`METADATA_DTYPE`).

    Parameters
    ----------
    field
        Field name as in ``ImageStruct.h`` (``"cnt0"``, ``"write"``, ``"CBindex"``...).

    Returns
    -------
    int

    Raises
    ------
    KeyError
        No such field.
    """
    fields = METADATA_DTYPE.fields
    if fields is None or field not in fields:
        raise KeyError(field)
    return int(fields[field][1])


def round_up_8(nbytes: int) -> int:
    """Round a byte count up to the next multiple of 8 (the C ``ROUND_UP_8``).

    Parameters
    ----------
    nbytes
        Size in bytes (>= 0).

    Returns
    -------
    int
    """
    return (nbytes + 7) // 8 * 8


@attrs.frozen(kw_only=True)
class StreamLayout:
    """Offsets and sizes of every segment of one stream file.

    Build it with :meth:`compute`; every offset is from the start of the file.
    """

    imdatamemsize: int
    nkeywords: int
    nsemaphores: int
    nproctrace: int
    temporal_cb: bool
    depth: int
    cbsize: int
    data: int
    keywords: int
    semaphores: int
    semlog: int
    sem_read_pid: int
    sem_write_pid: int
    semctrl: int
    semstatus: int
    proctrace: int
    atimearray: int
    writetimearray: int
    cntarray: int
    cbframemd: int
    cbdata: int
    total: int

    @classmethod
    def compute(
        cls,
        *,
        imdatamemsize: int,
        nkeywords: int,
        nsemaphores: int,
        nproctrace: int = NB_PROCTRACE,
        imagetype: int = MATH_DATA,
        depth: int = 0,
        cbsize: int = 0,
    ) -> StreamLayout:
        """Lay out a stream the way ``ImageStreamIO_image_sizing`` does.

        Parameters
        ----------
        imdatamemsize
            Bytes of pixel data (nelement x item size).
        nkeywords, nsemaphores, nproctrace
            ``NBkw``, ``sem`` and ``NBproctrace`` of the metadata.
        imagetype
            ``imagetype`` bits; only the temporal circular buffer bits matter.
        depth
            ``size[2]`` (used only for temporal circular buffers).
        cbsize
            ``CBsize``, number of fast circular-buffer slots.

        Returns
        -------
        StreamLayout
        """
        temporal = (imagetype & _TYPE_MASK) == (CIRCULAR_BUFFER | ZAXIS_TEMPORAL)
        pos = round_up_8(METADATA_DTYPE.itemsize)
        offsets: dict[str, int] = {}
        segments: list[tuple[str, int]] = [
            ("data", imdatamemsize),
            ("keywords", KEYWORD_DTYPE.itemsize * nkeywords),
            ("semaphores", SEM_SIZE * nsemaphores),
            ("semlog", SEM_SIZE),
            ("sem_read_pid", PID_SIZE * nsemaphores),
            ("sem_write_pid", PID_SIZE * nsemaphores),
            ("semctrl", 4 * nsemaphores),
            ("semstatus", 4 * nsemaphores),
            ("proctrace", PROC_TRACE_DTYPE.itemsize * nproctrace),
            ("atimearray", TIMESPEC_DTYPE.itemsize * depth if temporal else 0),
            ("writetimearray", TIMESPEC_DTYPE.itemsize * depth if temporal else 0),
            ("cntarray", 8 * depth if temporal else 0),
            ("cbframemd", CBFRAMEMD_DTYPE.itemsize * cbsize),
            ("cbdata", imdatamemsize * cbsize),
        ]
        for name, nbytes in segments:
            offsets[name] = pos
            pos += round_up_8(nbytes)
        return cls(
            imdatamemsize=imdatamemsize,
            nkeywords=nkeywords,
            nsemaphores=nsemaphores,
            nproctrace=nproctrace,
            temporal_cb=temporal,
            depth=depth,
            cbsize=cbsize,
            total=pos,
            **offsets,
        )
