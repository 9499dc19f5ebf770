"""FITS files for the watcher tests: real headers written by astropy, sparse data."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

CubeFactory = Callable[..., Path]


def write_cube(
    path: Path,
    shape: tuple[int, ...],
    *,
    data_type: str | None = "DARK",
    observer: str | None = "scexao",
    cards: Mapping[str, object] | None = None,
    mtime: float | None = None,
    bitpix: int = 16,
) -> Path:
    """Write an astropy-made header claiming ``shape``, then a sparse data section.

    The file has the exact size of the real cube (header + data + padding) but
    no data blocks on disk: ``truncate()`` extends it sparsely.
    """
    from astropy.io import fits

    header = fits.Header()
    header["SIMPLE"] = True
    header["BITPIX"] = bitpix
    header["NAXIS"] = len(shape)
    for i, n in enumerate(reversed(shape), start=1):
        header[f"NAXIS{i}"] = n
    header["EXTEND"] = True
    if bitpix == 16:
        header["BZERO"] = 32768
        header["BSCALE"] = 1
    if data_type is not None:
        header["DATA-TYP"] = data_type
    if observer is not None:
        header["OBSERVER"] = observer
    for key, value in (cards or {}).items():
        header[key] = value
    raw = header.tostring().encode("ascii")
    nbytes = abs(bitpix) // 8 * math.prod(shape) if shape else 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        fh.write(raw)
        fh.truncate(len(raw) + -(-nbytes // 2880) * 2880)
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


@pytest.fixture
def make_cube() -> CubeFactory:
    """The :func:`write_cube` helper as a fixture."""
    return write_cube
