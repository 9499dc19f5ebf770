"""numba kernels behind :mod:`vampires.kernels` (private: import that module instead).

This module imports numba at import time; :mod:`vampires.kernels` imports it
only inside its functions, so commands that never convert pixels never pay for
numba. Every kernel is ``nogil`` (the logger's reader thread copies while the
writer thread writes) and ``cache=True`` (compiled once, then loaded from
``__pycache__``).

numba cannot address big-endian arrays, so the FITS side is always viewed as
native unsigned integers of the same width and the bytes are swapped here.
"""

from __future__ import annotations

from typing import Any

import numba
import numpy as np

__all__ = [
    "bin_mean",
    "gather_swap16",
    "gather_swap32",
    "gather_swap64",
    "gather_xor8",
    "swap16",
    "swap32",
    "swap64",
    "xor8",
]

_JIT: dict[str, Any] = {"nogil": True, "cache": True, "boundscheck": False}


@numba.njit(**_JIT)  # type: ignore[untyped-decorator]
def xor8(src: Any, dst: Any, flip: Any) -> None:  # noqa: ANN401 - numba arrays
    """dst[i] = src[i] ^ flip for 1-D uint8 arrays (int8 -> FITS 8-bit with BZERO -128)."""
    for i in range(src.shape[0]):
        dst[i] = src[i] ^ flip


@numba.njit(**_JIT)  # type: ignore[untyped-decorator]
def swap16(src: Any, dst: Any, flip: Any) -> None:  # noqa: ANN401 - numba arrays
    """dst[i] = byteswap16(src[i] ^ flip) for 1-D uint16 arrays."""
    for i in range(src.shape[0]):
        v = src[i] ^ flip
        dst[i] = (v >> np.uint16(8)) | (v << np.uint16(8))


@numba.njit(**_JIT)  # type: ignore[untyped-decorator]
def swap32(src: Any, dst: Any, flip: Any) -> None:  # noqa: ANN401 - numba arrays
    """dst[i] = byteswap32(src[i] ^ flip) for 1-D uint32 arrays."""
    for i in range(src.shape[0]):
        v = src[i] ^ flip
        dst[i] = (
            ((v & np.uint32(0x000000FF)) << np.uint32(24))
            | ((v & np.uint32(0x0000FF00)) << np.uint32(8))
            | ((v & np.uint32(0x00FF0000)) >> np.uint32(8))
            | ((v & np.uint32(0xFF000000)) >> np.uint32(24))
        )


@numba.njit(**_JIT)  # type: ignore[untyped-decorator]
def swap64(src: Any, dst: Any, flip: Any) -> None:  # noqa: ANN401 - numba arrays
    """dst[i] = byteswap64(src[i] ^ flip) for 1-D uint64 arrays."""
    for i in range(src.shape[0]):
        v = src[i] ^ flip
        r = np.uint64(0)
        for _ in range(8):
            r = (r << np.uint64(8)) | (v & np.uint64(0xFF))
            v = v >> np.uint64(8)
        dst[i] = r


@numba.njit(**_JIT)  # type: ignore[untyped-decorator]
def gather_xor8(ring: Any, start: Any, out: Any, flip: Any) -> None:  # noqa: ANN401
    """out[k] = ring[(start + k) % depth] ^ flip; ring (depth, n), out (count, n) uint8."""
    depth = ring.shape[0]
    for k in range(out.shape[0]):
        xor8(ring[(start + k) % depth], out[k], flip)


@numba.njit(**_JIT)  # type: ignore[untyped-decorator]
def gather_swap16(ring: Any, start: Any, out: Any, flip: Any) -> None:  # noqa: ANN401
    """Gather frames from a circular buffer with the 16-bit FITS conversion."""
    depth = ring.shape[0]
    for k in range(out.shape[0]):
        swap16(ring[(start + k) % depth], out[k], flip)


@numba.njit(**_JIT)  # type: ignore[untyped-decorator]
def gather_swap32(ring: Any, start: Any, out: Any, flip: Any) -> None:  # noqa: ANN401
    """Gather frames from a circular buffer with the 32-bit FITS conversion."""
    depth = ring.shape[0]
    for k in range(out.shape[0]):
        swap32(ring[(start + k) % depth], out[k], flip)


@numba.njit(**_JIT)  # type: ignore[untyped-decorator]
def gather_swap64(ring: Any, start: Any, out: Any, flip: Any) -> None:  # noqa: ANN401
    """Gather frames from a circular buffer with the 64-bit FITS conversion."""
    depth = ring.shape[0]
    for k in range(out.shape[0]):
        swap64(ring[(start + k) % depth], out[k], flip)


@numba.njit(**_JIT)  # type: ignore[untyped-decorator]
def bin_mean(frame: Any, factor: Any, out: Any) -> None:  # noqa: ANN401
    """out[i, j] = mean of frame's factor x factor block (i, j); partial blocks dropped."""
    for i in range(out.shape[0]):
        for j in range(out.shape[1]):
            acc = 0.0
            for a in range(factor):
                row = frame[i * factor + a]
                for b in range(factor):
                    acc += row[j * factor + b]
            out[i, j] = acc / (factor * factor)
