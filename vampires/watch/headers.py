"""A minimal FITS header reader: 2880-byte blocks up to ``END``, never pixel data.

This is the fast path of :class:`~vampires.watch.Watcher`: a FITS cube of a few
GB has a header of a few blocks, so reading the blocks up to the ``END`` card
and parsing only the handful of 80-character cards we need costs microseconds
and a few kB of I/O per file. Nothing here imports astropy or numpy.

What is read, per file:

- a plain cube (``.fits``): the primary header; shape from ``NAXISn``;
- a tile-compressed cube (``.fits.fz``, or any file whose primary HDU is empty):
  the primary header, then the data of the primary HDU is *skipped* (it is
  empty for fpack output) and the first extension's header is read; a
  compressed image (``ZIMAGE = T``) takes its shape from ``ZNAXISn`` and its
  type from ``ZBITPIX``, a plain ``IMAGE`` extension from ``NAXISn``.

Shapes are in numpy order: ``NAXIS1`` is the *last* axis, so a cube is
``(NAXIS3, NAXIS2, NAXIS1)`` = (frames, height, width).
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Collection, Iterable
from typing import BinaryIO, TypeAlias

import attrs

from vampires.errors import FitsFormatError

__all__ = [
    "BLOCK_NBYTES",
    "CARD_NBYTES",
    "SUMMARY_KEYWORDS",
    "CubeHeader",
    "HeaderValue",
    "parse_card_value",
    "read_cube_header",
    "read_header",
]

#: FITS headers and data come in blocks of 2880 bytes (36 cards of 80 bytes).
BLOCK_NBYTES = 2880
CARD_NBYTES = 80
#: A header longer than this is not one of ours (or not FITS at all).
_MAX_HEADER_BLOCKS = 1000
_BITPIX = frozenset({8, 16, 32, 64, -32, -64})
_END = b"END" + b" " * 5

#: Keywords a summary needs; every other card is skipped unparsed.
SUMMARY_KEYWORDS = frozenset(
    {
        "SIMPLE",
        "XTENSION",
        "BITPIX",
        "NAXIS",
        "PCOUNT",
        "GCOUNT",
        "EXTEND",
        "ZIMAGE",
        "ZBITPIX",
        "ZNAXIS",
        "DATA-TYP",
        "OBSERVER",
        "LOGDROP",
        "LOGDRPIN",
    }
    | {f"NAXIS{i}" for i in range(1, 1000)}
    | {f"ZNAXIS{i}" for i in range(1, 1000)}
)
# the same names as they sit in the 8-byte keyword field of a card
_SUMMARY_FIELDS = frozenset(name.ljust(8).encode("ascii") for name in SUMMARY_KEYWORDS)
# the 36 keyword fields of a block, cut out in C (the set work below is C too)
_FIELDS = struct.Struct("8s72x" * (BLOCK_NBYTES // CARD_NBYTES))

HeaderValue: TypeAlias = str | int | float | bool | None


def parse_card_value(card: bytes) -> HeaderValue:
    """Parse the value of one 80-byte ``KEYWORD = value / comment`` card.

    Parameters
    ----------
    card
        The card bytes (80 of them; shorter is accepted).

    Returns
    -------
    str, int, float, bool or None
        Strings without their quotes and trailing blanks (``''`` unescaped),
        ``T``/``F`` as bool, integers, floats (``D`` exponents accepted);
        None for an undefined value, a complex value or anything unparsable.
    """
    return _parse_value(card[10:])


def _parse_value(field: bytes) -> HeaderValue:
    text = field.decode("ascii", errors="replace").lstrip()
    if text.startswith("'"):
        chars: list[str] = []
        i = 1
        while i < len(text):
            char = text[i]
            if char == "'":
                if text[i + 1 : i + 2] == "'":  # '' is an escaped quote
                    chars.append("'")
                    i += 2
                    continue
                break
            chars.append(char)
            i += 1
        return "".join(chars).rstrip()
    raw = text.split("/", 1)[0].strip()
    if raw == "T":
        return True
    if raw == "F":
        return False
    try:
        return int(raw)
    except ValueError:
        pass
    try:
        return float(raw.replace("D", "E").replace("d", "e"))
    except ValueError:
        return None


def read_header(
    fh: BinaryIO,
    *,
    keywords: Collection[str] | None = None,
    first: str = "SIMPLE",
) -> tuple[dict[str, HeaderValue], int]:
    """Read one header from the current position of ``fh``, block by block, up to ``END``.

    Parameters
    ----------
    fh
        A binary file positioned at the start of a header (ideally unbuffered,
        so no byte after the ``END`` block is read).
    keywords
        Names of the keywords to parse (e.g. :data:`SUMMARY_KEYWORDS`); other
        cards are skipped unparsed. None parses every card that has a value.
    first
        The keyword the first card must carry: ``"SIMPLE"`` for a primary
        header, ``"XTENSION"`` for an extension.

    Returns
    -------
    dict, int
        The parsed cards (first occurrence of a keyword wins) and the header
        length in bytes (a multiple of 2880, the END block included).

    Raises
    ------
    FitsFormatError
        Empty file, wrong first card, or no ``END`` card before the end of
        the file (truncated header) or within 1000 blocks.
    """
    if keywords is None:
        wanted = None
    elif keywords is SUMMARY_KEYWORDS:
        wanted = _SUMMARY_FIELDS
    else:
        wanted = frozenset(name.ljust(8).encode("ascii") for name in keywords)
    cards: dict[str, HeaderValue] = {}
    nbytes = 0
    for _ in range(_MAX_HEADER_BLOCKS):
        block = fh.read(BLOCK_NBYTES)
        if nbytes == 0:
            if not block:
                msg = "empty file" if first == "SIMPLE" else "no extension header"
                raise FitsFormatError(msg)
            if block[:8].rstrip().decode("ascii", errors="replace") != first:
                msg = "not a FITS file" if first == "SIMPLE" else f"no {first} card"
                raise FitsFormatError(msg)
        if len(block) < BLOCK_NBYTES:
            msg = f"truncated header ({nbytes + len(block)} bytes, no END card)"
            raise FitsFormatError(msg)
        nbytes += BLOCK_NBYTES
        fields: tuple[bytes, ...] = _FIELDS.unpack(block)
        ncards = fields.index(_END) if _END in fields else len(fields)
        if ncards < len(fields):
            fields = fields[:ncards]
        if wanted is None:
            hits: Iterable[bytes] = dict.fromkeys(fields)
        else:
            hits = wanted.intersection(fields)
        for field in hits:
            start = fields.index(field) * CARD_NBYTES  # first occurrence wins
            if block[start + 8 : start + 10] != b"= ":
                continue
            name = field.rstrip().decode("ascii", errors="replace")
            if name not in cards:
                cards[name] = _parse_value(block[start + 10 : start + CARD_NBYTES])
        if ncards < BLOCK_NBYTES // CARD_NBYTES:
            return cards, nbytes
    msg = f"no END card in the first {_MAX_HEADER_BLOCKS} header blocks"
    raise FitsFormatError(msg)


@attrs.frozen(kw_only=True)
class CubeHeader:
    """What a summary needs from one FITS file's header(s).

    Attributes
    ----------
    shape
        Image shape in numpy order, ``(NAXIS3, NAXIS2, NAXIS1)`` for a cube;
        ``()`` when the file holds no image.
    bitpix
        ``BITPIX`` of the image (``ZBITPIX`` when compressed).
    compressed
        True for a tile-compressed image (``ZIMAGE = T``).
    data_type, observer
        ``DATA-TYP`` and ``OBSERVER`` values, or None when absent.
    dropped
        Frames our logger reported dropped (``LOGDROP`` + ``LOGDRPIN``), 0 if absent.
    data_nbytes
        Uncompressed image size implied by the shape and ``BITPIX``.
    min_file_nbytes
        Smallest file size that holds the headers and all the data they
        announce (final padding not required); a smaller file is truncated.
    bytes_read
        Bytes actually read from the file (headers only).
    """

    shape: tuple[int, ...]
    bitpix: int
    compressed: bool = False
    data_type: str | None = None
    observer: str | None = None
    dropped: int = 0
    data_nbytes: int = 0
    min_file_nbytes: int = 0
    bytes_read: int = 0


def _int_card(cards: dict[str, HeaderValue], name: str, *, default: int | None = None) -> int:
    value = cards.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        what = "missing" if value is None else f"not a non-negative integer ({value!r})"
        msg = f"bad header: {name} {what}"
        raise FitsFormatError(msg)
    return value


def _axes(cards: dict[str, HeaderValue], prefix: str) -> tuple[int, ...]:
    naxis = _int_card(cards, prefix)
    if naxis > 999:
        msg = f"bad header: {prefix} = {naxis} (at most 999)"
        raise FitsFormatError(msg)
    return tuple(_int_card(cards, f"{prefix}{i}") for i in range(naxis, 0, -1))


def _bitpix(cards: dict[str, HeaderValue], name: str) -> int:
    value = cards.get(name)
    if isinstance(value, bool) or value not in _BITPIX or not isinstance(value, int):
        msg = f"bad header: {name} = {value!r} (expected one of 8, 16, 32, 64, -32, -64)"
        raise FitsFormatError(msg)
    return value


def _hdu_data_nbytes(cards: dict[str, HeaderValue], bitpix: int, axes: tuple[int, ...]) -> int:
    """Return the data bytes of one HDU: |BITPIX|/8 x GCOUNT x (PCOUNT + prod NAXISn)."""
    if not axes:
        return 0
    pcount = _int_card(cards, "PCOUNT", default=0)
    gcount = _int_card(cards, "GCOUNT", default=1)
    return abs(bitpix) // 8 * gcount * (pcount + math.prod(axes))


def _padded(nbytes: int) -> int:
    return -(-nbytes // BLOCK_NBYTES) * BLOCK_NBYTES


def _text(value: HeaderValue) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "T" if value else "F"
    return str(value)


def _dropped(cards: dict[str, HeaderValue]) -> int:
    total = 0
    for name in ("LOGDROP", "LOGDRPIN"):
        value = cards.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            total += value
    return total


def read_cube_header(path: str | os.PathLike[str], *, size: int | None = None) -> CubeHeader:
    """Read the header blocks of one FITS file (``.fits`` or ``.fits.fz``), never its data.

    Parameters
    ----------
    path
        The file.
    size
        The file size if already known (from a directory listing); read with
        ``fstat`` otherwise.

    Returns
    -------
    CubeHeader
        Shape, type, the keywords a summary shows, and how many bytes were read.

    Raises
    ------
    FitsFormatError
        With a short reason: the file cannot be opened, is not FITS, or has a
        truncated or invalid header. A file shorter than its header announces
        is *not* an error here: compare its size with ``min_file_nbytes``.
    """
    bytes_read = 0
    try:
        with open(path, "rb", buffering=0) as fh:  # unbuffered: no read-ahead into pixels
            if size is None:
                size = os.fstat(fh.fileno()).st_size
            primary, nbytes = read_header(fh, keywords=SUMMARY_KEYWORDS)
            bytes_read += nbytes
            bitpix = _bitpix(primary, "BITPIX")
            axes = _axes(primary, "NAXIS")
            end = nbytes + _padded(_hdu_data_nbytes(primary, bitpix, axes))
            cards = primary
            compressed = False
            if not axes and size > end:
                # Empty primary HDU (fpack output, or an image in an extension): skip the
                # (empty) primary data and read the first extension's header.
                fh.seek(end)
                ext, ext_nbytes = read_header(fh, keywords=SUMMARY_KEYWORDS, first="XTENSION")
                bytes_read += ext_nbytes
                ext_bitpix = _bitpix(ext, "BITPIX")
                ext_axes = _axes(ext, "NAXIS")
                end += ext_nbytes + _hdu_data_nbytes(ext, ext_bitpix, ext_axes)
                cards = {**primary, **ext}  # extension values win
                if ext.get("ZIMAGE") is True:
                    compressed = True
                    bitpix = _bitpix(ext, "ZBITPIX")
                    axes = _axes(ext, "ZNAXIS")
                elif ext.get("XTENSION") == "IMAGE":
                    bitpix, axes = ext_bitpix, ext_axes
            else:
                # the final padding of the data may be missing: do not count it as data
                end = nbytes + _hdu_data_nbytes(primary, bitpix, axes)
    except OSError as exc:
        msg = f"cannot read: {exc.strerror or exc}"
        raise FitsFormatError(msg) from exc
    data_nbytes = abs(bitpix) // 8 * math.prod(axes) if axes else 0
    return CubeHeader(
        shape=axes,
        bitpix=bitpix,
        compressed=compressed,
        data_type=_text(cards.get("DATA-TYP")),
        observer=_text(cards.get("OBSERVER")),
        dropped=_dropped(cards),
        data_nbytes=data_nbytes,
        min_file_nbytes=end,
        bytes_read=bytes_read,
    )
