"""FITS header cards and blocks for logged cubes, formatted by hand (no astropy).

A card is an ``(name, value, comment)`` tuple until :func:`format_card` turns
it into the 80 characters written to disk:

* names of at most 8 characters from ``A-Z 0-9 - _`` (lower case is upper-cased)
  are standard cards; anything else (stream keywords reach 16 characters)
  becomes a ``HIERARCH <name> = <value>`` card, as cfitsio (and so milk) writes it;
* numbers and logicals are right-justified in columns 11-30 (fixed format);
  floats use the precision of the Subaru keyword dictionary where it lists the
  keyword (``EXPTIME`` 8 decimals, ``ALTITUDE`` 5, ...), except the WCS scale
  terms (``CDELTn``, ``CDi_j``) which keep 10 significant digits instead of the
  dictionary's fixed point (2-3 significant digits at 1e-6 deg);
* strings are quoted (``'`` doubled), at least 8 characters, left-justified from
  column 11; ``True``/``False`` become the logicals ``T``/``F``; non-finite floats
  are written as strings (FITS has no NaN literal).

The header of a cube (:func:`cube_header`) is, in order: the mandatory cards
(``SIMPLE``, ``BITPIX``, ``NAXIS``, ``NAXIS1..3``, ``EXTEND``), ``BSCALE``/``BZERO``
(when the pixel type needs them; milk and astropy put them there too), the aux
header (or a header provider's cards), the stream keywords (camera values
replace aux values in place, ``_``-prefixed ones are skipped), the timing cards
of :func:`timing_cards` (``UT``... ``DATE``, ``DATE-OBS``) and the logger's
accounting cards (:data:`ACCOUNTING_KEYS`), then ``END`` and blank cards up to a
multiple of 2880 bytes.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, TypeAlias

import numpy as np

from vampires.errors import FitsFormatError

if TYPE_CHECKING:
    from vampires.kernels import FitsFormat

__all__ = [
    "ACCOUNTING_KEYS",
    "BLOCK",
    "BOOLEAN_KEYS",
    "CARD",
    "FLOAT_FORMATS",
    "STRUCTURAL_KEYS",
    "Card",
    "CardSource",
    "card_name",
    "cube_header",
    "format_card",
    "hst_string",
    "mjd",
    "normalize_cards",
    "parse_header",
    "read_header_cards",
    "read_header_file",
    "timing_cards",
    "ut_string",
]

#: One card before formatting: (name, value, comment).
Card: TypeAlias = tuple[str, object, str]
#: What a header provider may return: a mapping name -> value or (value, comment), or cards.
CardSource: TypeAlias = Mapping[str, object] | Iterable[Card | tuple[str, object]]

CARD = 80
BLOCK = 2880
_STD_NAME = re.compile(r"^[A-Z0-9_-]{1,8}$")
_COMMENTARY = frozenset({"COMMENT", "HISTORY", ""})
#: Cards the writer owns; never taken from an aux header or a stream.
STRUCTURAL_KEYS = frozenset(
    {"SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2", "NAXIS3", "NAXIS4", "EXTEND", "END"}
    | {"BZERO", "BSCALE", "BLANK", "PCOUNT", "GCOUNT", "XTENSION", "CHECKSUM", "DATASUM"}
    | {"CONTINUE"}
)
#: Keywords that must be FITS logicals whatever type the stream stored them as.
BOOLEAN_KEYS = frozenset({"EXTTRIG", "CROPPED", "U_FLCEN", "U_TRIGEN", "U_SYNC", "U_VLOG1"})

#: Logger accounting cards written in every cube (name -> meaning).
ACCOUNTING_KEYS: Mapping[str, str] = MappingProxyType(
    {
        "LOGDROP": "frames published but not logged between the previous cube and this one",
        "LOGDRPIN": "frames missed inside this cube (gaps of the stream counter)",
        "LOGCLOSE": "why this cube closed: full, timeout, stopped, next, keyword, resized, "
        "recovered",
        "LOGVERS": "version of the vampires logger that wrote the file",
        "LOGCUBE": "index of this cube in the logging run (0-based)",
        "LOGTSRC": "clock of the UT/MJD/HST cards: ACQ (frame acquisition time) or LOG",
    }
)


def _decimals(n: int) -> str:
    return f".{n}f"


_F = {
    8: ("EXPTIME", "MJD", "MJD-STR", "MJD-END", "CRVAL1", "CRVAL2", "BSCALE"),
    5: ("ALTITUDE", "AZIMUTH", "ZD"),
    3: (
        *("AIRMASS", "EQUINOX", "D_IMRANG", "D_IMRPAD", "D_IMRPAP", "FRATE", "MFRATE", "GAIN"),
        *("INST-PA", "P_RTAGL1", "P_RTAGL2", "U_QWP1", "U_QWP2", "X_POLARP", "BIAS", "FOC-VAL"),
    ),
    2: ("RET-ANG1", "RET-ANG2", "RET-POS1", "RET-POS2", "DET-TMP", "F-RATIO", "POL-ANG1"),
    6: ("DETPXSZ1", "DETPXSZ2"),
    1: ("LONPOLE",),
}
_WCS_SUFFIXES = ("", "B", "C", "D")
_F_CRPIX = {f"CRPIX{a}{s}": ".3f" for a in (1, 2) for s in _WCS_SUFFIXES}
_F_CRVAL = {f"CRVAL{a}{s}": ".8f" for a in (1, 2) for s in _WCS_SUFFIXES}
_F_SCALE = {f"CDELT{a}{s}": ".10E" for a in (1, 2) for s in _WCS_SUFFIXES} | {
    f"CD{i}_{j}{s}": ".10E" for i in (1, 2) for j in (1, 2) for s in _WCS_SUFFIXES
}
#: Python format specs for float keywords (others use the shortest exact repr).
FLOAT_FORMATS: Mapping[str, str] = MappingProxyType(
    {name: _decimals(n) for n, names in _F.items() for name in names}
    | _F_CRPIX
    | _F_CRVAL
    | _F_SCALE
)
_UNIX_MJD0 = 40587.0
_HST = dt.timezone(dt.timedelta(hours=-10), "HST")


def _printable(text: str) -> str:
    return "".join(c if " " <= c <= "~" else "?" for c in text)


def _real(name: str, value: float) -> str:
    spec = FLOAT_FORMATS.get(name)
    if spec is not None:
        return format(value, spec)
    text = repr(value).upper()
    mantissa, e, exponent = text.partition("E")
    if "." not in mantissa:
        mantissa += ".0"
    return mantissa + e + exponent


def _quote(text: str, width: int) -> str:
    body = _printable(text).replace("'", "''")
    body = body[: max(width - 2, 0)]
    if body.endswith("'") and (len(body) - len(body.rstrip("'"))) % 2:
        body = body[:-1]  # never cut a doubled quote in half
    return "'" + body.ljust(8) + "'"


def _as_bool(value: object) -> bool | None:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | np.integer) and int(value) in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().upper() in {"T", "TRUE", "#TRUE#", "1", "ON"}:
        return True
    if isinstance(value, str) and value.strip().upper() in {"F", "FALSE", "#FALSE#", "0", "OFF"}:
        return False
    return None


def _value_text(name: str, value: object, room: int) -> tuple[str, bool]:
    """Return the value text and whether it is a (left-justified) string."""
    if name in BOOLEAN_KEYS:
        flag = _as_bool(value)
        if flag is not None:
            value = flag
    if isinstance(value, bool | np.bool_):
        return ("T" if value else "F"), False
    if isinstance(value, int | np.integer):
        return str(int(value)), False
    if isinstance(value, float | np.floating):
        number = float(value)
        if math.isfinite(number):
            return _real(name, number), False
        return _quote(repr(number), room), True
    return _quote(str(value), room), True


def format_card(name: str, value: object, comment: str = "") -> str:
    """Return one 80-character header card.

    Parameters
    ----------
    name
        Keyword name (``COMMENT``/``HISTORY``/blank give commentary cards).
    value
        bool, int, float, str (anything else is written as its ``str``).
    comment
        Card comment; cut to fit the 80 columns.

    Returns
    -------
    str
        Exactly 80 printable ASCII characters.

    Raises
    ------
    FitsFormatError
        The name is empty, contains ``=`` or non-printable characters, or is
        too long even for a HIERARCH card.
    """
    raw = name.strip()
    upper = raw.upper()
    if upper in _COMMENTARY and raw == upper:
        return (f"{upper:<8}" + _printable(str(value)))[:CARD].ljust(CARD)
    if not raw or "=" in raw or _printable(raw) != raw:
        msg = f"bad FITS keyword name {name!r}: use printable ASCII without '='"
        raise FitsFormatError(msg)
    comment = _printable(comment)
    if _STD_NAME.match(upper):
        text, is_str = _value_text(upper, value, CARD - 10)
        field = text if is_str else text.rjust(20)
        card = f"{upper:<8}= {field}"
    else:
        prefix = f"HIERARCH {raw} = "
        if len(prefix) > CARD - 4:
            msg = f"keyword name {name!r} is too long for a HIERARCH card"
            raise FitsFormatError(msg)
        text, _ = _value_text(raw, value, CARD - len(prefix))
        card = prefix + text
    if len(card) > CARD:
        msg = f"value of {name!r} does not fit in one card: {value!r}"
        raise FitsFormatError(msg)
    if comment and len(card) + 3 < CARD:
        card = f"{card} / {comment}"
    return card[:CARD].ljust(CARD)


def card_name(card: str) -> str:
    """Return the keyword name of an 80-character card (HIERARCH names without the prefix)."""
    head = card[:8].rstrip()
    if head == "HIERARCH":
        return card[9:].partition("=")[0].strip()
    return head


def normalize_cards(source: CardSource | None) -> list[Card]:
    """Turn a header provider's result into a list of cards.

    Parameters
    ----------
    source
        Mapping ``name -> value`` or ``name -> (value, comment)``, or an
        iterable of ``(name, value, comment)`` / ``(name, value)`` tuples.

    Returns
    -------
    list of Card

    Raises
    ------
    FitsFormatError
        An entry is not a (name, value[, comment]) pair.
    """
    if source is None:
        return []
    cards: list[Card] = []
    items: Iterable[object]
    if isinstance(source, Mapping):
        items = ((k, *v) if isinstance(v, tuple) else (k, v, "") for k, v in source.items())
    else:
        items = source
    for item in items:
        if not isinstance(item, tuple) or len(item) not in (2, 3) or not isinstance(item[0], str):
            msg = f"header entry must be (name, value[, comment]) (got {item!r})"
            raise FitsFormatError(msg)
        comment = str(item[2]) if len(item) == 3 else ""
        cards.append((item[0], item[1], comment))
    return cards


def parse_header(data: bytes) -> list[str]:
    """Split a FITS header (up to and excluding ``END``) into 80-character cards.

    Parameters
    ----------
    data
        Bytes starting at a header's first card.

    Returns
    -------
    list of str
        Every card before ``END``.

    Raises
    ------
    FitsFormatError
        No ``END`` card, or non-ASCII bytes.
    """
    cards: list[str] = []
    for offset in range(0, len(data) - CARD + 1, CARD):
        try:
            card = data[offset : offset + CARD].decode("ascii")
        except UnicodeDecodeError as exc:
            msg = f"non-ASCII bytes in header card {offset // CARD + 1}"
            raise FitsFormatError(msg) from exc
        if card.startswith("END") and not card[3:].strip():
            return cards
        cards.append(card)
    msg = "no END card: the header is truncated or this is not FITS"
    raise FitsFormatError(msg)


def read_header_cards(path: Path, *, max_bytes: int = 100 * BLOCK) -> tuple[list[str], int]:
    """Read the primary header of a FITS file without touching its data.

    Parameters
    ----------
    path
        FITS file (or ``.tmp`` cube).
    max_bytes
        Give up after this many header bytes.

    Returns
    -------
    cards : list of str
        Cards before ``END``.
    data_offset : int
        Byte offset of the first data byte (header length rounded up to 2880).

    Raises
    ------
    FitsFormatError
        Not FITS (no ``SIMPLE`` first), truncated header, or unreadable file.
    """
    chunks: list[bytes] = []
    try:
        with path.open("rb") as fh:
            while sum(map(len, chunks)) < max_bytes:
                block = fh.read(BLOCK)
                if len(block) < BLOCK:
                    break
                chunks.append(block)
                if any(
                    block[i : i + CARD].startswith(b"END") and not block[i + 3 : i + CARD].strip()
                    for i in range(0, BLOCK, CARD)
                ):
                    break
    except OSError as exc:
        msg = f"cannot read {path}: {exc.strerror or exc}"
        raise FitsFormatError(msg) from exc
    data = b"".join(chunks)
    if not data.startswith(b"SIMPLE  ="):
        msg = f"{path} is not a FITS file (no SIMPLE card at the start)"
        raise FitsFormatError(msg)
    try:
        cards = parse_header(data)
    except FitsFormatError as exc:
        msg = f"{path}: {exc}"
        raise FitsFormatError(msg) from exc
    return cards, len(data)


def read_header_file(path: Path) -> list[str]:
    """Return the non-structural cards of an aux header file (``<stream>.aux.fits``).

    Parameters
    ----------
    path
        A FITS file whose primary header holds the instrument state.

    Returns
    -------
    list of str
        80-character cards, structural ones (``SIMPLE``, ``NAXISn``, ``BZERO``, ...) removed.

    Raises
    ------
    FitsFormatError
        The file is not a readable FITS header.
    """
    cards, _ = read_header_cards(path)
    return [c for c in cards if card_name(c).upper() not in STRUCTURAL_KEYS]


def ut_string(t: float) -> str:
    """Return ``HH:MM:SS.ssssss`` (UTC) for a unix time."""
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%H:%M:%S.%f")


def hst_string(t: float) -> str:
    """Return ``HH:MM:SS.ssssss`` in Hawaii time (UTC-10) for a unix time."""
    return dt.datetime.fromtimestamp(t, _HST).strftime("%H:%M:%S.%f")


def mjd(t: float) -> float:
    """Return the modified Julian date of a unix time (UTC, no leap seconds)."""
    return _UNIX_MJD0 + t / 86400.0


def timing_cards(t_start: float, t_end: float, *, written: float, source: str) -> list[Card]:
    """Return the logger timing cards of a cube.

    Parameters
    ----------
    t_start, t_end
        Unix times of the cube's first and last frames.
    written
        Unix time the file is written (``DATE``).
    source
        ``"acquisition"`` or ``"logger"``: which clock ``t_start``/``t_end`` come from.

    Returns
    -------
    list of Card
        ``UT``, ``UT-STR``, ``UT-END``, ``MJD`` (midpoint), ``MJD-STR``,
        ``MJD-END``, ``HST``, ``HST-STR``, ``HST-END``, ``DATE``, ``DATE-OBS``.
    """
    mid = 0.5 * (t_start + t_end)
    clock = "frame acquisition" if source == "acquisition" else "logger"
    first = dt.datetime.fromtimestamp(t_start, dt.UTC)
    return [
        ("UT", ut_string(mid), f"HH:MM:SS UTC at the cube midpoint ({clock} clock)"),
        ("UT-STR", ut_string(t_start), "HH:MM:SS UTC of the first frame"),
        ("UT-END", ut_string(t_end), "HH:MM:SS UTC of the last frame"),
        ("MJD", mjd(mid), "Modified Julian Date at the cube midpoint"),
        ("MJD-STR", mjd(t_start), "Modified Julian Date of the first frame"),
        ("MJD-END", mjd(t_end), "Modified Julian Date of the last frame"),
        ("HST", hst_string(mid), "HH:MM:SS HST at the cube midpoint"),
        ("HST-STR", hst_string(t_start), "HH:MM:SS HST of the first frame"),
        ("HST-END", hst_string(t_end), "HH:MM:SS HST of the last frame"),
        (
            "DATE",
            dt.datetime.fromtimestamp(written, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            "UTC date and time the file was written",
        ),
        ("DATE-OBS", first.strftime("%Y-%m-%d"), "UT date of the first frame (yyyy-mm-dd)"),
    ]


def cube_header(
    *,
    fmt: FitsFormat,
    frame_shape: tuple[int, int],
    nframes: int,
    aux: Sequence[str] = (),
    extra: Sequence[Card] = (),
    stream: Sequence[Card] = (),
    timing: Sequence[Card] = (),
    accounting: Sequence[Card] = (),
    on_bad_card: Callable[[str, Exception], None] | None = None,
) -> bytes:
    """Return the complete primary header of a cube, padded to 2880 bytes.

    Parameters
    ----------
    fmt
        Storage of the pixels (BITPIX, BZERO).
    frame_shape
        ``(height, width)`` of one frame (numpy order).
    nframes
        NAXIS3.
    aux
        Raw 80-character cards of the aux header, in order.
    extra
        Cards of a header provider (placed with the aux cards, after them).
    stream
        Stream keywords (``_``-prefixed ones are skipped); they replace aux values in place.
    timing, accounting
        Logger cards; they replace earlier values of the same name in place.
    on_bad_card
        Called with (name, error) for a card that cannot be formatted (it is skipped);
        by default the error is raised.

    Returns
    -------
    bytes
        ASCII header, ``END`` included, length a multiple of 2880.

    Raises
    ------
    FitsFormatError
        A card cannot be formatted and no ``on_bad_card`` was given.
    """
    height, width = frame_shape
    head = [
        format_card("SIMPLE", True, "conforms to FITS standard"),
        format_card("BITPIX", fmt.bitpix, "array data type"),
        format_card("NAXIS", 3, "number of array dimensions"),
        format_card("NAXIS1", int(width), "frame width [pixel]"),
        format_card("NAXIS2", int(height), "frame height [pixel]"),
        format_card("NAXIS3", int(nframes), "frames in this cube"),
        format_card("EXTEND", True, "extensions may follow"),
    ]
    body: dict[object, str] = {}
    for index, card in enumerate(aux):
        name = card_name(card).upper()
        if name in STRUCTURAL_KEYS:
            continue
        body[(name, index) if name in _COMMENTARY else name] = card[:CARD].ljust(CARD)

    def put(cards: Iterable[Card], *, skip_private: bool) -> None:
        for name, value, comment in cards:
            key = name.strip().upper()
            if key in STRUCTURAL_KEYS or (skip_private and key.startswith("_")):
                continue
            try:
                text = format_card(name, value, comment)
            except FitsFormatError as exc:
                if on_bad_card is None:
                    raise
                on_bad_card(name, exc)
                continue
            body[(key, len(body)) if key in _COMMENTARY else key] = text

    put(extra, skip_private=False)
    put(stream, skip_private=True)
    put(timing, skip_private=False)
    scaling: list[Card] = []
    if fmt.bzero:
        scaling = [("BSCALE", 1, "physical = BZERO + BSCALE * stored"), ("BZERO", fmt.bzero, "")]
        scaling[1] = ("BZERO", fmt.bzero, f"stores {fmt.dtype} as signed {fmt.bitpix}-bit")
    put(accounting, skip_private=False)
    cards = head + [format_card(*c) for c in scaling] + list(body.values())
    cards.append("END".ljust(CARD))
    text = "".join(cards)
    text += " " * (-len(text) % BLOCK)
    return text.encode("ascii")
