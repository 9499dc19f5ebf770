"""Lossless compression of ZMQ frames: one Blosc2 chunk per frame.

Blosc2 (``blosc2`` package, C-Blosc2) is made for numeric arrays: a byte
*shuffle* filter groups the high bytes of all pixels together (on a camera
frame they are nearly constant), then a fast codec compresses the blocks.
Measured on simulated MBI frames (``benchmarks/zmq_bench.py``, one core):

* ``zstd`` (default, level 1): ratio about 2-4 on read-noise-limited frames,
  ~0.6-2 GB/s -- the best ratio at a speed far above the 98 MB/s of one MBI
  camera at 20 FPS;
* ``lz4`` (level 1): ~20-30 % lower ratio, ~2x faster.

Higher zstd levels gain nothing on noisy frames and are 5-30x slower, so the
level is fixed at 1; bit-shuffle gave lower ratios than byte shuffle with
zstd on these frames. A chunk is self-describing (codec, filter, type size,
sizes), so the subscriber needs no codec parameter: it only checks the
sizes in the chunk header against the metadata before decompressing into a
buffer of exactly the frame's size.

``blosc2`` is imported on first use (it takes ~0.25 s), so thin commands
that never touch ZMQ do not pay for it.
"""

from __future__ import annotations

import functools
import math
from types import ModuleType
from typing import TYPE_CHECKING, Any, Final

import numpy as np

from vampires.errors import ConfigError, ProtocolError

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = [
    "CODECS",
    "MAX_CHUNK_NBYTES",
    "compress_frame",
    "decompress_frame",
    "parse_compression",
    "preload",
]

#: Codecs the publisher can use (``compression=``); ``"off"`` sends raw frames only.
CODECS: Final = ("zstd", "lz4")
#: Largest frame one Blosc2 chunk holds (C-Blosc2's BLOSC2_MAX_BUFFERSIZE); bigger frames go raw.
MAX_CHUNK_NBYTES: Final = (1 << 31) - 1 - 32
_HEADER_NBYTES: Final = 32
_CLEVEL: Final = 1


@functools.cache
def _blosc2() -> ModuleType:
    import blosc2

    module: ModuleType = blosc2
    return module


def preload() -> None:
    """Import ``blosc2`` now (a link thread calls it before its first frame, not during it)."""
    _blosc2()


def parse_compression(value: object) -> str | None:
    """Check a ``compression`` argument.

    Parameters
    ----------
    value
        ``"zstd"``, ``"lz4"``, or ``"off"`` / ``None`` / ``False`` for no compression.

    Returns
    -------
    str or None
        The codec name, or None for raw frames only.

    Raises
    ------
    ConfigError
        Anything else.
    """
    if value is None or value is False or value == "off":
        return None
    if isinstance(value, str) and value in CODECS:
        return value
    msg = f"compression must be one of {[*CODECS, 'off']}, got {value!r}"
    raise ConfigError(msg)


def compress_frame(pixels: NDArray[Any], codec: str) -> bytes:
    """Compress one frame into a Blosc2 chunk (byte shuffle, level 1, one thread).

    Parameters
    ----------
    pixels
        C-contiguous frame (any dtype of the streams).
    codec
        ``"zstd"`` or ``"lz4"``.

    Returns
    -------
    bytes
        The chunk: header (sizes, codec, filter) and compressed blocks.

    Raises
    ------
    ConfigError
        Unknown codec, or a frame larger than :data:`MAX_CHUNK_NBYTES`.
    """
    blosc2 = _blosc2()
    codecs = {"zstd": blosc2.Codec.ZSTD, "lz4": blosc2.Codec.LZ4}
    if codec not in codecs:
        msg = f"unknown codec {codec!r}; use one of {list(codecs)}"
        raise ConfigError(msg)
    if pixels.nbytes > MAX_CHUNK_NBYTES:
        msg = f"a frame of {pixels.nbytes} bytes is too large for one Blosc2 chunk"
        raise ConfigError(msg)
    chunk: bytes = blosc2.compress2(
        np.ascontiguousarray(pixels),
        codec=codecs[codec],
        clevel=_CLEVEL,
        filters=[blosc2.Filter.SHUFFLE],
        typesize=pixels.dtype.itemsize,
        nthreads=1,
    )
    return chunk


def decompress_frame(
    payload: Any,  # noqa: ANN401 - anything with the buffer protocol (zmq.Frame, bytes)
    shape: tuple[int, ...],
    dtype: str,
) -> NDArray[Any]:
    """Decompress a Blosc2 chunk into a new read-only array, checking its sizes first.

    Parameters
    ----------
    payload
        The chunk (bytes, memoryview or ``zmq.Frame``).
    shape, dtype
        What the metadata announces.

    Returns
    -------
    ndarray
        The frame, read-only.

    Raises
    ------
    ProtocolError
        Not a Blosc2 chunk, sizes that differ from the metadata or from the
        payload length, or corrupt data.
    """
    blosc2 = _blosc2()
    data = memoryview(payload).cast("B")
    expected = math.prod(shape) * np.dtype(dtype).itemsize
    if data.nbytes < _HEADER_NBYTES:
        msg = f"compressed pixels are {data.nbytes} bytes, shorter than a Blosc2 header"
        raise ProtocolError(msg)
    try:
        nbytes, cbytes, _blocksize = blosc2.get_cbuffer_sizes(data)
    except (ValueError, RuntimeError, TypeError) as exc:
        msg = f"compressed pixels are not a Blosc2 chunk: {exc}"
        raise ProtocolError(msg) from exc
    if nbytes != expected or cbytes != data.nbytes:
        msg = (
            f"Blosc2 chunk holds {nbytes} bytes in {cbytes} but the message has "
            f"{data.nbytes} bytes for shape {list(shape)} {dtype} ({expected} bytes)"
        )
        raise ProtocolError(msg)
    out = np.empty(shape, dtype=dtype)
    try:
        blosc2.decompress2(data, dst=out, nthreads=1)
    except (ValueError, RuntimeError, TypeError) as exc:
        msg = f"compressed pixels cannot be decompressed: {exc}"
        raise ProtocolError(msg) from exc
    out.setflags(write=False)
    return out
