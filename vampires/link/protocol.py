"""Wire format of the TCP mirror, and what the link formats share: pure encode / decode.

No sockets here. The formats are documented in ``docs/protocols.md``; this
module holds the TCP one and the pieces both use (stream names, dtypes, shapes,
keyword cards, bounded JSON); the ZMQ one is :mod:`vampires.link.zmq_protocol`.

* the **TCP mirror protocol** (version 1): a stream of messages, each starting
  with the 8-byte prefix ``magic "VMPL", version u16, kind u16``. All integers
  and floats are **little-endian** (``struct`` format ``"<"``); text is UTF-8
  JSON. The sender opens with a ``HELLO`` (stream metadata), the receiver
  answers ``ACK``; then one ``FRAME`` per frame (fixed header, keywords only
  when they changed, pixel bytes, trailer), ``HEARTBEAT`` while the stream is
  idle, a new ``HELLO`` when the stream is re-created, ``BYE`` on a clean stop.
* the **ZMQ frame message**: multipart ``[topic, metadata JSON, pixel bytes]``
  on topic ``<name>``, or, compressed, ``[topic, metadata JSON, Blosc2 chunk]``
  on topic ``~blosc2/<name>`` (a topic no older subscriber subscribes to, so
  an older subscriber never sees a compressed frame).
  No pickle anywhere: a peer can only ever make us parse JSON, copy bytes and
  decompress a size-checked chunk.

Every decoder validates what it reads and raises :class:`~vampires.errors.ProtocolError`
with a message that says what was wrong; nothing here trusts a length field
before bounding it.
"""

from __future__ import annotations

import enum
import json
import math
import struct
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Final, TypeAlias

import attrs
import numpy as np

from vampires.errors import ProtocolError
from vampires.stream.layout import KEYWORD_NAME_MAX
from vampires.stream.names import check_stream_name

__all__ = [
    "ACK_FIXED",
    "FRAME_FIXED",
    "HELLO_FIXED",
    "MAGIC",
    "MAX_FRAME_NBYTES",
    "MAX_JSON_NBYTES",
    "PREFIX",
    "PROTOCOL_VERSION",
    "SUPPORTED_DTYPES",
    "TRAILER",
    "TRAILER_MAGIC",
    "Buffer",
    "Card",
    "FrameHeader",
    "FrameStatus",
    "Hello",
    "KeywordValue",
    "MessageKind",
    "cards_from_json",
    "cards_to_json",
    "decode_ack",
    "decode_frame_header",
    "decode_hello_body",
    "decode_hello_length",
    "decode_keywords",
    "decode_prefix",
    "decode_trailer",
    "encode_ack",
    "encode_bye",
    "encode_frame_header",
    "encode_heartbeat",
    "encode_hello",
    "encode_keywords",
    "encode_trailer",
    "validate_stream_name",
    "wire_dtype",
]

#: First 4 bytes of every TCP link message.
MAGIC: Final = b"VMPL"
#: The only TCP protocol version spoken (and accepted) by this code.
PROTOCOL_VERSION: Final = 1
#: First 4 bytes of the per-frame trailer (a cheap resynchronisation check).
TRAILER_MAGIC: Final = b"VEND"

#: magic, version, kind.
PREFIX: Final = struct.Struct("<4sHH")
#: HELLO: byte length of the JSON body that follows.
HELLO_FIXED: Final = struct.Struct("<I")
#: FRAME: cnt0, cnt1, acquisition time, write time, flags, keywords length, payload length.
FRAME_FIXED: Final = struct.Struct("<QQddIIQ")
#: After the pixel bytes of every FRAME: trailer magic, status.
TRAILER: Final = struct.Struct("<4sI")
#: ACK: status (0 = accepted), byte length of the UTF-8 reason that follows.
ACK_FIXED: Final = struct.Struct("<II")

#: Upper bound of any JSON document on the wire (hello body, keywords, ZMQ metadata).
MAX_JSON_NBYTES: Final = 1 << 20
#: Upper bound of one frame's pixel bytes (a 16k x 16k float64 frame is 2 GiB).
MAX_FRAME_NBYTES: Final = 1 << 31
_MAX_NDIM: Final = 3
_FLAG_KEYWORDS: Final = 0x1
_KNOWN_FLAGS: Final = _FLAG_KEYWORDS
_U64_MAX: Final = (1 << 64) - 1

#: Pixel types an ImageStreamIO stream can hold, as numpy dtype strings.
SUPPORTED_DTYPES: Final = frozenset(
    {"|u1", "|i1", "<u2", "<i2", "<u4", "<i4", "<u8", "<i8", "<f2", "<f4", "<f8", "<c8", "<c16"}
)

KeywordValue: TypeAlias = int | float | str | bool
#: Anything a decoder accepts: received bytes, a bytearray buffer or a slice of one.
Buffer: TypeAlias = bytes | bytearray | memoryview
#: One keyword: (name, value, comment).
Card: TypeAlias = tuple[str, KeywordValue, str]


def _to_shape(obj: Iterable[int]) -> tuple[int, ...]:
    return tuple(obj)


def _to_cards(obj: Iterable[Card]) -> tuple[Card, ...]:
    return tuple(obj)


def _to_keyword_map(
    obj: Mapping[str, tuple[KeywordValue, str]],
) -> Mapping[str, tuple[KeywordValue, str]]:
    return MappingProxyType(dict(obj))


class MessageKind(enum.IntEnum):
    """The ``kind`` field of a TCP link message prefix."""

    HELLO = 1
    """Sender -> receiver: stream metadata; starts a connection or announces a re-creation."""
    ACK = 2
    """Receiver -> sender: the hello was accepted (status 0) or refused (status 1 + reason)."""
    FRAME = 3
    """Sender -> receiver: one frame (header, optional keywords, pixels, trailer)."""
    HEARTBEAT = 4
    """Sender -> receiver: the stream is idle but the sender is alive."""
    BYE = 5
    """Sender -> receiver: clean stop; the receiver waits for the next connection."""


class FrameStatus(enum.IntEnum):
    """The ``status`` field of a frame trailer."""

    VALID = 0
    """The pixel bytes are one consistent frame: publish it."""
    TORN = 1
    """The source frame was overwritten while it was sent: drop the bytes."""


def validate_stream_name(name: object, *, what: str = "stream name") -> str:
    """Check a stream name the way it travels on the wire.

    Parameters
    ----------
    name
        Candidate name.
    what
        How to call it in the error message.

    Returns
    -------
    str
        ``name``, unchanged.

    Raises
    ------
    ProtocolError
        Against the stream name rule (:func:`vampires.stream.check_stream_name`).
    """
    return check_stream_name(name, what=what, error=ProtocolError)


def _parse_shape(obj: object) -> tuple[int, ...]:
    if not isinstance(obj, list | tuple) or not 1 <= len(obj) <= _MAX_NDIM:
        msg = f"shape must be a list of 1 to {_MAX_NDIM} positive integers, got {obj!r}"
        raise ProtocolError(msg)
    dims: list[int] = []
    for dim in obj:
        if isinstance(dim, bool) or not isinstance(dim, int) or not 1 <= dim <= 1 << 20:
            msg = f"shape must be a list of 1 to {_MAX_NDIM} positive integers, got {obj!r}"
            raise ProtocolError(msg)
        dims.append(dim)
    return tuple(dims)


def _parse_dtype(obj: object) -> str:
    if not isinstance(obj, str) or obj not in SUPPORTED_DTYPES:
        msg = f"dtype must be one of {sorted(SUPPORTED_DTYPES)} (little-endian), got {obj!r}"
        raise ProtocolError(msg)
    return obj


def _parse_int(obj: object, what: str, *, low: int = 0, high: int = _U64_MAX) -> int:
    if isinstance(obj, bool) or not isinstance(obj, int) or not low <= obj <= high:
        msg = f"{what} must be an integer in [{low}, {high}], got {obj!r}"
        raise ProtocolError(msg)
    return obj


def _parse_time(obj: object, what: str) -> float:
    if isinstance(obj, bool) or not isinstance(obj, int | float) or not math.isfinite(obj):
        msg = f"{what} must be a finite number of seconds, got {obj!r}"
        raise ProtocolError(msg)
    return float(obj)


def wire_dtype(dtype: np.dtype[Any] | str) -> str:
    """Return the explicit little-endian dtype string used on the wire.

    Parameters
    ----------
    dtype
        A numpy dtype (native order is fine on little-endian hosts).

    Returns
    -------
    str
        E.g. ``"<u2"`` for ``uint16``, ``"|u1"`` for ``uint8``.

    Raises
    ------
    ProtocolError
        The dtype is not a pixel type of ImageStreamIO, or is big-endian.
    """
    dt = np.dtype(dtype)
    return _parse_dtype(dt.str)


def _parse_card(obj: object) -> Card:
    if not isinstance(obj, list | tuple) or len(obj) != 3:
        msg = f"a keyword must be [name, value, comment], got {obj!r}"
        raise ProtocolError(msg)
    name, value, comment = obj
    if not isinstance(name, str) or not 1 <= len(name) <= KEYWORD_NAME_MAX:
        msg = f"keyword name must be a string of 1-{KEYWORD_NAME_MAX} characters, got {name!r}"
        raise ProtocolError(msg)
    if not isinstance(value, bool | int | float | str):
        msg = f"keyword {name!r}: value must be int, float, str or bool, got {value!r}"
        raise ProtocolError(msg)
    if not isinstance(comment, str):
        msg = f"keyword {name!r}: comment must be a string, got {comment!r}"
        raise ProtocolError(msg)
    return (name, value, comment)


def cards_from_json(obj: object) -> tuple[Card, ...]:
    """Validate a JSON list of ``[name, value, comment]`` keyword cards.

    Parameters
    ----------
    obj
        The decoded JSON value.

    Returns
    -------
    tuple of Card

    Raises
    ------
    ProtocolError
        Not a list of well-formed cards, or a name appears twice.
    """
    if not isinstance(obj, list):
        msg = f"keywords must be a list of [name, value, comment], got {type(obj).__name__}"
        raise ProtocolError(msg)
    cards = tuple(_parse_card(item) for item in obj)
    names = [c[0] for c in cards]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        msg = f"keywords repeat the names {dup}"
        raise ProtocolError(msg)
    return cards


def cards_to_json(cards: Iterable[Card]) -> list[list[KeywordValue]]:
    """Turn keyword cards into the JSON list form (``[[name, value, comment], ...]``).

    Parameters
    ----------
    cards
        ``(name, value, comment)`` triples.

    Returns
    -------
    list
        JSON-serialisable; numpy scalars are turned into Python numbers.
    """
    out: list[list[KeywordValue]] = []
    for name, value, comment in cards:
        plain: KeywordValue
        if isinstance(value, np.generic):
            item = value.item()
            plain = item if isinstance(item, bool | int | float | str) else str(item)
        else:
            plain = value
        out.append([name, plain, comment])
    return out


def _dumps(obj: object) -> bytes:
    # allow_nan: a keyword may legitimately hold NaN (e.g. an unknown temperature);
    # Python's json reads it back.
    return json.dumps(obj, separators=(",", ":"), allow_nan=True).encode()


def _loads(data: Buffer, what: str) -> object:
    if len(data) > MAX_JSON_NBYTES:
        msg = f"{what} is {len(data)} bytes, more than the limit {MAX_JSON_NBYTES}"
        raise ProtocolError(msg)
    try:
        return json.loads(bytes(data).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        msg = f"{what} is not valid UTF-8 JSON: {exc}"
        raise ProtocolError(msg) from exc


def _prefix(kind: MessageKind) -> bytes:
    return PREFIX.pack(MAGIC, PROTOCOL_VERSION, kind)


def decode_prefix(data: Buffer) -> MessageKind:
    """Decode and check the 8-byte prefix of a TCP link message.

    Parameters
    ----------
    data
        Exactly ``PREFIX.size`` bytes.

    Returns
    -------
    MessageKind

    Raises
    ------
    ProtocolError
        Wrong size, wrong magic (not a vampires link peer, or the byte stream
        lost sync), unsupported version, or unknown kind.
    """
    if len(data) != PREFIX.size:
        msg = f"message prefix must be {PREFIX.size} bytes, got {len(data)}"
        raise ProtocolError(msg)
    magic, version, kind = PREFIX.unpack(data)
    if magic != MAGIC:
        msg = f"bad magic {bytes(magic)!r} (expected {MAGIC!r}): the peer is not a vampires link"
        raise ProtocolError(msg)
    if version != PROTOCOL_VERSION:
        msg = (
            f"peer speaks link protocol version {version}, this side only version "
            f"{PROTOCOL_VERSION}: upgrade the older side"
        )
        raise ProtocolError(msg)
    try:
        return MessageKind(kind)
    except ValueError:
        msg = f"unknown message kind {kind}"
        raise ProtocolError(msg) from None


@attrs.frozen(kw_only=True)
class Hello:
    """Stream metadata sent at the start of a connection and on every re-creation.

    Attributes
    ----------
    name
        Stream name on the sending side (the receiver may publish under another).
    shape
        Numpy-order shape: ``(height, width)`` or ``(depth, height, width)``.
    dtype
        Explicit little-endian numpy dtype string, e.g. ``"<u2"``.
    keywords
        All keyword cards of the stream at hello time.
    cnt0
        The sender stream's frame counter at hello time.
    generation
        Identifies this instance of the sender's stream (its file inode); a new
        value means the stream was re-created.
    nkeywords
        Keyword slots of the sender's stream (0 if unknown); the receiver
        creates at least as many.
    """

    name: str = attrs.field(validator=lambda _i, _a, v: validate_stream_name(v))
    shape: tuple[int, ...] = attrs.field(converter=_to_shape)
    dtype: str = attrs.field(validator=lambda _i, _a, v: _parse_dtype(v))
    keywords: tuple[Card, ...] = attrs.field(default=(), converter=_to_cards)
    cnt0: int = 0
    generation: int = 0
    nkeywords: int = 0

    def __attrs_post_init__(self) -> None:
        _parse_shape(list(self.shape))
        _parse_int(self.cnt0, "cnt0")
        _parse_int(self.generation, "generation")
        _parse_int(self.nkeywords, "nkeywords", high=65535)
        if self.nbytes > MAX_FRAME_NBYTES:
            msg = f"frame of {self.nbytes} bytes exceeds the link limit {MAX_FRAME_NBYTES}"
            raise ProtocolError(msg)

    @property
    def nbytes(self) -> int:
        """Pixel bytes of one frame."""
        return math.prod(self.shape) * np.dtype(self.dtype).itemsize


def encode_hello(hello: Hello) -> bytes:
    """Encode a complete HELLO message (prefix, length, JSON body).

    Parameters
    ----------
    hello
        The stream metadata.

    Returns
    -------
    bytes

    Raises
    ------
    ProtocolError
        The body would exceed :data:`MAX_JSON_NBYTES`.
    """
    body = _dumps(
        {
            "name": hello.name,
            "shape": list(hello.shape),
            "dtype": hello.dtype,
            "nbytes": hello.nbytes,
            "cnt0": hello.cnt0,
            "generation": hello.generation,
            "nkeywords": hello.nkeywords,
            "keywords": cards_to_json(hello.keywords),
        }
    )
    if len(body) > MAX_JSON_NBYTES:
        msg = f"hello body of {len(body)} bytes exceeds {MAX_JSON_NBYTES} (too many keywords?)"
        raise ProtocolError(msg)
    return _prefix(MessageKind.HELLO) + HELLO_FIXED.pack(len(body)) + body


def decode_hello_length(data: Buffer) -> int:
    """Decode the 4-byte body length that follows a HELLO prefix.

    Parameters
    ----------
    data
        ``HELLO_FIXED.size`` bytes.

    Returns
    -------
    int
        Body length, bounded by :data:`MAX_JSON_NBYTES`.

    Raises
    ------
    ProtocolError
        Wrong size or length out of bounds.
    """
    if len(data) != HELLO_FIXED.size:
        msg = f"hello length field must be {HELLO_FIXED.size} bytes, got {len(data)}"
        raise ProtocolError(msg)
    (length,) = HELLO_FIXED.unpack(data)
    if not 2 <= length <= MAX_JSON_NBYTES:
        msg = f"hello body length {length} is out of bounds [2, {MAX_JSON_NBYTES}]"
        raise ProtocolError(msg)
    return int(length)


def decode_hello_body(data: Buffer) -> Hello:
    """Decode and validate a HELLO JSON body.

    Parameters
    ----------
    data
        The body bytes (after prefix and length).

    Returns
    -------
    Hello

    Raises
    ------
    ProtocolError
        Not JSON, a field is missing or invalid, or ``nbytes`` disagrees with
        shape and dtype.
    """
    obj = _loads(data, "hello body")
    if not isinstance(obj, dict):
        msg = f"hello body must be a JSON object, got {type(obj).__name__}"
        raise ProtocolError(msg)
    missing = sorted({"name", "shape", "dtype", "nbytes", "keywords"} - obj.keys())
    if missing:
        msg = f"hello body lacks the fields {missing}"
        raise ProtocolError(msg)
    hello = Hello(
        name=validate_stream_name(obj["name"]),
        shape=_parse_shape(obj["shape"]),
        dtype=_parse_dtype(obj["dtype"]),
        keywords=cards_from_json(obj["keywords"]),
        cnt0=_parse_int(obj.get("cnt0", 0), "cnt0"),
        generation=_parse_int(obj.get("generation", 0), "generation"),
        nkeywords=_parse_int(obj.get("nkeywords", 0), "nkeywords", high=65535),
    )
    nbytes = _parse_int(obj["nbytes"], "nbytes", high=MAX_FRAME_NBYTES)
    if nbytes != hello.nbytes:
        msg = (
            f"hello says {nbytes} bytes per frame but shape {list(hello.shape)} "
            f"{hello.dtype} makes {hello.nbytes}"
        )
        raise ProtocolError(msg)
    return hello


def encode_ack(*, ok: bool = True, reason: str = "") -> bytes:
    """Encode an ACK message (the receiver's answer to a HELLO).

    Parameters
    ----------
    ok
        True to accept, False to refuse.
    reason
        Why it was refused (UTF-8, cut to 1000 bytes).

    Returns
    -------
    bytes
    """
    text = reason.encode("utf-8", errors="replace")[:1000]
    return _prefix(MessageKind.ACK) + ACK_FIXED.pack(0 if ok else 1, len(text)) + text


def decode_ack(fixed: Buffer) -> tuple[bool, int]:
    """Decode the fixed part of an ACK.

    Parameters
    ----------
    fixed
        ``ACK_FIXED.size`` bytes.

    Returns
    -------
    tuple of (bool, int)
        Accepted, and the length of the reason text that follows.

    Raises
    ------
    ProtocolError
        Wrong size, unknown status or reason too long.
    """
    if len(fixed) != ACK_FIXED.size:
        msg = f"ack must be {ACK_FIXED.size} bytes after the prefix, got {len(fixed)}"
        raise ProtocolError(msg)
    status, length = ACK_FIXED.unpack(fixed)
    if status not in (0, 1) or length > 1000:
        msg = f"ack has invalid status {status} or reason length {length}"
        raise ProtocolError(msg)
    return status == 0, int(length)


def encode_heartbeat() -> bytes:
    """Encode a HEARTBEAT message (prefix only).

    Returns
    -------
    bytes
    """
    return _prefix(MessageKind.HEARTBEAT)


def encode_bye() -> bytes:
    """Encode a BYE message (prefix only).

    Returns
    -------
    bytes
    """
    return _prefix(MessageKind.BYE)


@attrs.frozen(kw_only=True)
class FrameHeader:
    """The fixed per-frame header of the TCP link.

    Attributes
    ----------
    cnt0, cnt1
        The sender stream's counters for this frame; the receiver publishes
        the frame with the same values.
    acquisition_time, write_time
        Unix seconds (float64) from the sender's stream.
    keywords_nbytes
        Length of the keywords JSON that follows; 0 means "unchanged since the
        previous frame".
    payload_nbytes
        Pixel bytes that follow the keywords (must equal the hello's ``nbytes``).
    """

    cnt0: int
    cnt1: int
    acquisition_time: float
    write_time: float
    keywords_nbytes: int = 0
    payload_nbytes: int

    @property
    def keywords_changed(self) -> bool:
        """True when a keyword block follows the header."""
        return self.keywords_nbytes > 0


def encode_frame_header(header: FrameHeader) -> bytes:
    """Encode the prefix and fixed header of a FRAME.

    Parameters
    ----------
    header
        The frame header.

    Returns
    -------
    bytes
        ``PREFIX.size + FRAME_FIXED.size`` bytes.
    """
    flags = _FLAG_KEYWORDS if header.keywords_nbytes else 0
    return _prefix(MessageKind.FRAME) + FRAME_FIXED.pack(
        header.cnt0 & _U64_MAX,
        header.cnt1 & _U64_MAX,
        header.acquisition_time,
        header.write_time,
        flags,
        header.keywords_nbytes,
        header.payload_nbytes,
    )


def decode_frame_header(fixed: Buffer, *, expected_nbytes: int) -> FrameHeader:
    """Decode and check the fixed header of a FRAME (after the prefix).

    Parameters
    ----------
    fixed
        ``FRAME_FIXED.size`` bytes.
    expected_nbytes
        Pixel bytes per frame announced by the current hello.

    Returns
    -------
    FrameHeader

    Raises
    ------
    ProtocolError
        Wrong size, unknown flags, inconsistent keyword flag/length, keyword
        block too large, non-finite times, or a payload length that is not
        the hello's.
    """
    if len(fixed) != FRAME_FIXED.size:
        msg = f"frame header must be {FRAME_FIXED.size} bytes, got {len(fixed)}"
        raise ProtocolError(msg)
    cnt0, cnt1, atime, wtime, flags, kw_nbytes, payload = FRAME_FIXED.unpack(fixed)
    if flags & ~_KNOWN_FLAGS:
        msg = f"frame header has unknown flags 0x{flags:x}"
        raise ProtocolError(msg)
    if bool(flags & _FLAG_KEYWORDS) != (kw_nbytes > 0):
        msg = f"frame header: keyword flag {bool(flags & _FLAG_KEYWORDS)} but {kw_nbytes} bytes"
        raise ProtocolError(msg)
    if kw_nbytes > MAX_JSON_NBYTES:
        msg = f"frame keywords of {kw_nbytes} bytes exceed the limit {MAX_JSON_NBYTES}"
        raise ProtocolError(msg)
    if payload != expected_nbytes:
        msg = f"frame carries {payload} pixel bytes, the hello announced {expected_nbytes}"
        raise ProtocolError(msg)
    return FrameHeader(
        cnt0=cnt0,
        cnt1=cnt1,
        acquisition_time=_parse_time(atime, "acquisition time"),
        write_time=_parse_time(wtime, "write time"),
        keywords_nbytes=kw_nbytes,
        payload_nbytes=payload,
    )


def encode_keywords(cards: Iterable[Card]) -> bytes:
    """Encode the keyword block of a FRAME (full set, JSON list of cards).

    Parameters
    ----------
    cards
        Every keyword of the stream.

    Returns
    -------
    bytes
        Never empty (``b"[]"`` for no keywords), so a present block is always
        distinguishable from "unchanged".

    Raises
    ------
    ProtocolError
        The block would exceed :data:`MAX_JSON_NBYTES`.
    """
    body = _dumps(cards_to_json(cards))
    if len(body) > MAX_JSON_NBYTES:
        msg = f"keyword block of {len(body)} bytes exceeds {MAX_JSON_NBYTES}"
        raise ProtocolError(msg)
    return body


def decode_keywords(data: Buffer) -> tuple[Card, ...]:
    """Decode a FRAME keyword block.

    Parameters
    ----------
    data
        The keyword bytes.

    Returns
    -------
    tuple of Card

    Raises
    ------
    ProtocolError
        Not JSON or not a list of valid cards.
    """
    return cards_from_json(_loads(data, "frame keywords"))


def encode_trailer(status: FrameStatus) -> bytes:
    """Encode the trailer sent after a frame's pixel bytes.

    Parameters
    ----------
    status
        Whether the bytes sent are one consistent frame.

    Returns
    -------
    bytes
    """
    return TRAILER.pack(TRAILER_MAGIC, status)


def decode_trailer(data: Buffer) -> FrameStatus:
    """Decode a frame trailer.

    Parameters
    ----------
    data
        ``TRAILER.size`` bytes.

    Returns
    -------
    FrameStatus

    Raises
    ------
    ProtocolError
        Wrong size, wrong magic (the byte stream lost sync) or unknown status.
    """
    if len(data) != TRAILER.size:
        msg = f"frame trailer must be {TRAILER.size} bytes, got {len(data)}"
        raise ProtocolError(msg)
    magic, status = TRAILER.unpack(data)
    if magic != TRAILER_MAGIC:
        msg = f"bad frame trailer magic {bytes(magic)!r}: the byte stream lost sync"
        raise ProtocolError(msg)
    try:
        return FrameStatus(status)
    except ValueError:
        msg = f"unknown frame trailer status {status}"
        raise ProtocolError(msg) from None
