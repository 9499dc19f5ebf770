"""Read the complete frames of a cube while the logger writes it (``open_partial``).

A cube being logged is ``<name>.fits.tmp``: its header (with the planned
``NAXIS3``) and the frames flushed so far (at least every ``flush_interval``).
:func:`open_partial` maps the complete frames read-only, without any lock or
write, so the logger is not disturbed::

    from vampires.fitslog import open_partial

    cube = open_partial(path)            # .fits.tmp (or a finished .fits)
    print(cube.frames, "frames so far")
    last = cube.physical(cube.frames - 1)   # uint16, as astropy returns it

``cube.data`` holds the values as stored on disk (big-endian, ``BZERO``
not applied, like ``fits.open(..., do_not_scale_image_data=True)``);
:meth:`PartialCube.physical` applies ``BZERO``/``BSCALE``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import numpy as np

from vampires.errors import FitsFormatError
from vampires.fitslog.header import card_name, read_header_cards

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["PartialCube", "open_partial"]

_STORED = {8: "u1", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}


@attrs.frozen(kw_only=True, eq=False)
class PartialCube:
    """The complete frames of a cube file, mapped read-only.

    Attributes
    ----------
    path
        The file.
    frames
        Complete frames mapped (``data.shape[0]``).
    planned
        ``NAXIS3`` in the header (the cube's planned size while it is written).
    data
        Read-only memmap ``(frames, height, width)`` of the stored values.
    bitpix, bzero, bscale
        Storage and scaling of the values.
    cards
        The header cards (80 characters each, ``END`` excluded).
    """

    path: Path
    frames: int
    planned: int
    data: NDArray[np.generic]
    bitpix: int
    bzero: float
    bscale: float
    cards: tuple[str, ...]

    def physical(self, index: int | slice) -> NDArray[np.generic]:
        """Return frame(s) ``index`` with ``BZERO``/``BSCALE`` applied (a copy, native order).

        Unsigned 16/32/64-bit and signed 8-bit cubes come back in their own
        type (``uint16`` for the cameras), as astropy returns them.
        """
        stored = np.asarray(self.data[index])
        native = stored.astype(stored.dtype.newbyteorder("="))
        if self.bscale == 1 and self.bzero == 0:
            return native
        if self.bscale == 1 and self.bitpix == 8 and self.bzero == -128:
            return (native ^ np.uint8(0x80)).view(np.int8)
        if (
            self.bscale == 1
            and self.bitpix in (16, 32, 64)
            and self.bzero == 2 ** (self.bitpix - 1)
        ):
            unsigned = np.dtype(f"u{self.bitpix // 8}")
            flipped: NDArray[np.generic] = native.view(unsigned) ^ unsigned.type(
                1 << (self.bitpix - 1)
            )
            return flipped
        scaled: NDArray[np.generic] = native * self.bscale + self.bzero
        return scaled


def _value(cards: list[str], name: str) -> str | None:
    for card in cards:
        if card_name(card) == name:
            return card[10:].partition("/")[0].strip()
    return None


def _number(cards: list[str], name: str, path: Path, default: float | None = None) -> float:
    text = _value(cards, name)
    if text is None:
        if default is None:
            msg = f"{path}: no {name} card"
            raise FitsFormatError(msg)
        return default
    return float(text)


def open_partial(path: str | os.PathLike[str]) -> PartialCube:
    """Map the complete frames of a cube being written (``.fits.tmp``) or written.

    Parameters
    ----------
    path
        A ``.fits.tmp`` (or ``.fits``) cube written by the logger.

    Returns
    -------
    PartialCube
        Frames complete on disk now (0 when none yet); map the file again
        later to see more.

    Raises
    ------
    FitsFormatError
        Missing file, not a FITS cube, or a header not complete yet.
    """
    path = Path(path)
    cards, offset = read_header_cards(path)
    try:
        bitpix = int(_number(cards, "BITPIX", path))
        naxis = [int(_number(cards, f"NAXIS{i}", path)) for i in (1, 2, 3)]
        bzero = _number(cards, "BZERO", path, 0.0)
        bscale = _number(cards, "BSCALE", path, 1.0)
    except ValueError as exc:
        msg = f"{path}: bad header value: {exc}"
        raise FitsFormatError(msg) from exc
    if bitpix not in _STORED or min(naxis) < 0:
        msg = f"{path}: not a cube this reader knows (BITPIX {bitpix}, NAXIS {naxis})"
        raise FitsFormatError(msg)
    dtype = np.dtype(_STORED[bitpix])
    frame_bytes = naxis[0] * naxis[1] * dtype.itemsize
    try:
        size = path.stat().st_size
    except OSError as exc:
        msg = f"cannot read {path}: {exc.strerror or exc}"
        raise FitsFormatError(msg) from exc
    frames = min(naxis[2], max(0, size - offset) // frame_bytes) if frame_bytes else 0
    shape = (frames, naxis[1], naxis[0])
    if frames:
        data: NDArray[np.generic] = np.memmap(path, dtype, mode="r", offset=offset, shape=shape)
    else:
        data = np.empty(shape, dtype)
        data.flags.writeable = False
    return PartialCube(
        path=path,
        frames=frames,
        planned=naxis[2],
        data=data,
        bitpix=bitpix,
        bzero=bzero,
        bscale=bscale,
        cards=tuple(cards),
    )
