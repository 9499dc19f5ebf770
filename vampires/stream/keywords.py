"""The keyword table of a stream: the card codec and :class:`StreamKeywords`.

The codec turns (name, value, comment) into an ``IMAGE_KEYWORD`` entry and back;
:class:`StreamKeywords` is the table of one stream as a mapping.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

import attrs
import numpy as np

from vampires.errors import (
    KeywordError,
)
from vampires.stream.layout import (
    KEYWORD_COMMENT_MAX,
    KEYWORD_NAME_MAX,
    KEYWORD_STRING_MAX,
)

if TYPE_CHECKING:
    from numpy.typing import NDArray

if TYPE_CHECKING:
    from vampires.stream.stream import Stream


KeywordValue = int | float | str | bool
_TRUE, _FALSE = "#TRUE#", "#FALSE#"
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def _decode(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("ascii", errors="replace")


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
