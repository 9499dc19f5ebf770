"""Pixel kernels: frame -> FITS cube slot conversion, circular-buffer gather, binning.

These typed functions are the only way the rest of vampires touches numba;
numba itself is imported on the first call (never by ``import vampires`` or a
command's start-up path). Every kernel releases the GIL and is compiled once
per machine (``cache=True``); :func:`warm_up` loads or compiles all of them.

FITS stores integers big-endian and signed. The conversion done in the same
pass as the copy, per pixel type (FITS standard, "Unsigned integers"):

=========  ======  ===================  ============================
dtype      BITPIX  BZERO                stored value
=========  ======  ===================  ============================
uint8      8       (none)               x
int8       8       -128                 x ^ 0x80
uint16     16      32768                byteswap(x ^ 0x8000)
int16      16      (none)               byteswap(x)
uint32     32      2147483648           byteswap(x ^ 0x80000000)
int32      32      (none)               byteswap(x)
uint64     64      9223372036854775808  byteswap(x ^ 0x8000...0)
int64      64      (none)               byteswap(x)
float32    -32     (none)               byteswap(x)
float64    -64     (none)               byteswap(x)
=========  ======  ===================  ============================

``x ^ 0x8000`` on the unsigned bits equals ``x - 32768`` in two's complement,
so the FITS reader's ``stored + BZERO`` gives ``x`` back exactly. BSCALE is 1.
"""

from __future__ import annotations

import logging
from types import MappingProxyType
from typing import TYPE_CHECKING

import attrs
import numpy as np

from vampires._checks import check_int
from vampires.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from numpy.typing import DTypeLike, NDArray

__all__ = [
    "FITS_FORMATS",
    "FitsFormat",
    "bin_frame",
    "cube_copier",
    "fits_format",
    "frame_to_fits",
    "gather_to_fits",
    "to_fits_int16",
    "warm_up",
]

logger = logging.getLogger(__name__)


@attrs.frozen(kw_only=True)
class FitsFormat:
    """How one numpy pixel type is stored in a FITS primary array.

    Attributes
    ----------
    dtype
        The in-memory (stream) pixel type.
    bitpix
        FITS BITPIX.
    bzero
        FITS BZERO (0 when not needed; BSCALE is always 1).
    disk
        The big-endian numpy type of the stored values (e.g. ``>i2``).
    flip
        The bit pattern XORed into each pixel before the byte swap.
    """

    dtype: np.dtype[np.generic]
    bitpix: int
    bzero: int
    disk: np.dtype[np.generic]
    flip: int

    @property
    def itemsize(self) -> int:
        """Bytes per pixel."""
        return self.dtype.itemsize


def _fmt(dtype: str, bitpix: int, bzero: int, disk: str, flip: int) -> FitsFormat:
    return FitsFormat(
        dtype=np.dtype(dtype), bitpix=bitpix, bzero=bzero, disk=np.dtype(disk), flip=flip
    )


#: Supported stream pixel types and their FITS storage.
FITS_FORMATS: Mapping[np.dtype[np.generic], FitsFormat] = MappingProxyType(
    {
        f.dtype: f
        for f in (
            _fmt("uint8", 8, 0, "u1", 0),
            _fmt("int8", 8, -128, "u1", 0x80),
            _fmt("uint16", 16, 32768, ">i2", 0x8000),
            _fmt("int16", 16, 0, ">i2", 0),
            _fmt("uint32", 32, 2**31, ">i4", 0x80000000),
            _fmt("int32", 32, 0, ">i4", 0),
            _fmt("uint64", 64, 2**63, ">i8", 0x8000000000000000),
            _fmt("int64", 64, 0, ">i8", 0),
            _fmt("float32", -32, 0, ">f4", 0),
            _fmt("float64", -64, 0, ">f8", 0),
        )
    }
)
_UNSIGNED = MappingProxyType({1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64})


def fits_format(dtype: DTypeLike) -> FitsFormat:
    """Return the FITS storage of a pixel type.

    Parameters
    ----------
    dtype
        Any numpy dtype-like (native or explicit byte order).

    Returns
    -------
    FitsFormat

    Raises
    ------
    ConfigError
        The pixel type cannot be stored in a FITS primary array (complex, bool, ...).
    """
    try:
        key = np.dtype(dtype).newbyteorder("=")
    except TypeError as exc:
        msg = f"not a numpy pixel type: {dtype!r}"
        raise ConfigError(msg) from exc
    fmt = FITS_FORMATS.get(key)
    if fmt is None:
        known = sorted(map(str, FITS_FORMATS))
        msg = f"pixel type {key} cannot be logged to FITS; use one of {known}"
        raise ConfigError(msg)
    return fmt


def _flat_bits(array: NDArray[np.generic], itemsize: int) -> NDArray[np.generic]:
    """View an array as 1-D native unsigned ints of ``itemsize`` bytes (copy if not contiguous)."""
    flat = np.ascontiguousarray(array).reshape(-1)
    return flat.view(_UNSIGNED[itemsize])


def _kernel(name: str) -> object:
    from vampires import _kernels_jit  # numba only when a kernel runs

    return getattr(_kernels_jit, name)


def _check_pair(src: NDArray[np.generic], out: NDArray[np.generic], fmt: FitsFormat) -> None:
    if out.dtype.itemsize != fmt.itemsize or out.size != src.size:
        msg = (
            f"output slot has {out.size} x {out.dtype} for a {src.shape} {src.dtype} frame; "
            f"expected {src.size} items of {fmt.disk}"
        )
        raise ConfigError(msg)
    if not out.flags.c_contiguous:
        msg = "output slot must be C-contiguous (a cube slot, not a strided view)"
        raise ConfigError(msg)


def frame_to_fits(frame: NDArray[np.generic], out: NDArray[np.generic]) -> None:
    """Copy one frame into a cube slot, converting to FITS storage in the same pass.

    Parameters
    ----------
    frame
        The frame in memory (any supported pixel type, native byte order).
    out
        C-contiguous destination with as many items as ``frame`` and the same
        item size (normally ``cube[k]`` of a cube typed ``fits_format(...).disk``).

    Raises
    ------
    ConfigError
        Unsupported pixel type, or the slot does not match the frame.
    """
    fmt = fits_format(frame.dtype)
    if frame.dtype.byteorder == ">":
        frame = frame.astype(fmt.dtype)
    _check_pair(frame, out, fmt)
    src = _flat_bits(frame, fmt.itemsize)
    dst = out.reshape(-1).view(_UNSIGNED[fmt.itemsize])
    name = {1: "xor8", 2: "swap16", 4: "swap32", 8: "swap64"}[fmt.itemsize]
    _kernel(name)(src, dst, src.dtype.type(fmt.flip))  # type: ignore[operator]


def to_fits_int16(frame: NDArray[np.uint16], out: NDArray[np.int16]) -> None:
    """Copy a uint16 frame into a big-endian int16 slot (BZERO 32768), in one pass.

    Parameters
    ----------
    frame
        uint16 frame (any shape).
    out
        C-contiguous ``>i2`` slot with ``frame.size`` items.

    Raises
    ------
    ConfigError
        ``frame`` is not uint16 or ``out`` does not match.
    """
    if frame.dtype != np.uint16:
        msg = f"to_fits_int16 needs a uint16 frame (got {frame.dtype})"
        raise ConfigError(msg)
    frame_to_fits(frame, out)


def cube_copier(
    frame_dtype: DTypeLike, cube: NDArray[np.generic]
) -> Callable[[NDArray[np.generic], int], None]:
    """Return ``copy(frame, k)``: the per-frame hot path into slot ``k`` of ``cube``.

    Checks are done once here, so each call only reinterprets the frame's
    bytes and runs the kernel (no allocation, GIL released while copying).

    Parameters
    ----------
    frame_dtype
        Pixel type of the frames (native byte order).
    cube
        C-contiguous cube ``(capacity, height, width)`` typed ``fits_format(frame_dtype).disk``.

    Returns
    -------
    callable
        ``copy(frame, k)``; ``frame`` must be C-contiguous with ``height * width`` pixels.

    Raises
    ------
    ConfigError
        Unsupported pixel type or a cube of the wrong storage type.
    """
    fmt = fits_format(frame_dtype)
    if cube.dtype != fmt.disk or not cube.flags.c_contiguous or cube.ndim < 2:
        msg = f"cube must be a C-contiguous {fmt.disk} array (got {cube.dtype} {cube.shape})"
        raise ConfigError(msg)
    unsigned = _UNSIGNED[fmt.itemsize]
    slots = cube.reshape(cube.shape[0], -1).view(unsigned)
    kernel = _kernel({1: "xor8", 2: "swap16", 4: "swap32", 8: "swap64"}[fmt.itemsize])
    flip = unsigned(fmt.flip)

    def copy(frame: NDArray[np.generic], k: int) -> None:
        kernel(frame.reshape(-1).view(unsigned), slots[k], flip)  # type: ignore[operator]

    return copy


def gather_to_fits(ring: NDArray[np.generic], start: int, out: NDArray[np.generic]) -> None:
    """Copy ``len(out)`` consecutive frames of a circular buffer into cube slots.

    Parameters
    ----------
    ring
        Circular buffer ``(depth, height, width)`` (a 3-D stream's pixel array).
    start
        Slice index of the first frame; frames wrap around ``depth``.
    out
        C-contiguous destination ``(count, height, width)`` in FITS storage.

    Raises
    ------
    ConfigError
        Shapes do not match, ``start`` out of range, or unsupported pixel type.
    """
    fmt = fits_format(ring.dtype)
    if ring.ndim < 2 or out.ndim != ring.ndim or out.shape[1:] != ring.shape[1:]:
        msg = f"gather: cube {out.shape} does not match circular buffer {ring.shape}"
        raise ConfigError(msg)
    if not 0 <= start < ring.shape[0]:
        msg = f"gather: start {start} outside the circular buffer of depth {ring.shape[0]}"
        raise ConfigError(msg)
    _check_pair(ring[: min(len(out), len(ring))], out[: min(len(out), len(ring))], fmt)
    if not out.flags.c_contiguous:
        msg = "gather: output cube must be C-contiguous"
        raise ConfigError(msg)
    unsigned = _UNSIGNED[fmt.itemsize]
    src = np.ascontiguousarray(ring).reshape(ring.shape[0], -1).view(unsigned)
    dst = out.reshape(out.shape[0], -1).view(unsigned)
    name = {1: "gather_xor8", 2: "gather_swap16", 4: "gather_swap32", 8: "gather_swap64"}
    _kernel(name[fmt.itemsize])(src, np.int64(start), dst, unsigned(fmt.flip))  # type: ignore[operator]


def bin_frame(frame: NDArray[np.generic], factor: int) -> NDArray[np.float32]:
    """Return the block mean of a frame (viewer binning), dropping partial edge blocks.

    Parameters
    ----------
    frame
        2-D frame (any real pixel type).
    factor
        Block size, 2 or 3 (any integer >= 1 works).

    Returns
    -------
    ndarray of float32
        Shape ``(height // factor, width // factor)``.

    Raises
    ------
    ConfigError
        Not 2-D, factor < 1, or the frame is smaller than one block.
    """
    check_int(factor, "bin_frame: factor", 1)
    if frame.ndim != 2 or frame.shape[0] < factor or frame.shape[1] < factor:
        msg = f"bin_frame: need a 2-D frame of at least {factor}x{factor} (got {frame.shape})"
        raise ConfigError(msg)
    if frame.dtype.kind not in "uif":
        msg = f"bin_frame: unsupported pixel type {frame.dtype}"
        raise ConfigError(msg)
    out = np.empty((frame.shape[0] // factor, frame.shape[1] // factor), np.float32)
    _kernel("bin_mean")(np.ascontiguousarray(frame), np.int64(factor), out)  # type: ignore[operator]
    return out


def warm_up() -> None:
    """Load (or compile once and cache on disk) every kernel for the common pixel types.

    Cheap after the first call in a process; call it before a hot loop so the
    first frame does not pay for compilation.
    """
    for dtype in FITS_FORMATS:
        frame = np.zeros((2, 3), dtype)
        out = np.empty((2, 3), FITS_FORMATS[dtype].disk)
        frame_to_fits(frame, out)
        gather_to_fits(frame.reshape(2, 1, 3), 1, out.reshape(2, 1, 3))
        frame.flags.writeable = False  # shared-memory views are read-only: another signature
        frame_to_fits(frame, out)
        cube_copier(dtype, out)(frame[0], 1)
    for pixel in (np.uint16, np.float32):
        bin_frame(np.zeros((4, 4), pixel), 2)
    logger.debug("kernels ready")
