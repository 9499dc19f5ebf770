"""Wire format of the ZMQ frame messages: pure encode / decode, no sockets.

A frame message is multipart ``[topic, metadata JSON, pixel bytes]`` on topic
``<name>``, or, compressed, ``[topic, metadata JSON, Blosc2 chunk]`` on topic
``~blosc2/<name>`` (a topic no older subscriber subscribes to, so an older
subscriber never sees a compressed frame; ``~`` is never in a stream name).
No pickle: a peer can only ever make us parse JSON, copy bytes and decompress a
size-checked chunk. Documented in ``docs/protocols.md``; the pieces shared
with the TCP format (names, dtypes, shapes, keyword cards, bounded JSON) are in
:mod:`vampires.link.protocol`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Final

import attrs
import numpy as np

from vampires.errors import ProtocolError
from vampires.link.protocol import (
    MAX_JSON_NBYTES,
    KeywordValue,
    _dumps,
    _loads,
    _parse_dtype,
    _parse_int,
    _parse_shape,
    _parse_time,
    _to_keyword_map,
    _to_shape,
    cards_from_json,
    cards_to_json,
    validate_stream_name,
)

__all__ = [
    "ZMQ_COMPRESSED_PREFIX",
    "ZMQ_FORMAT_VERSION",
    "ZmqMeta",
    "decode_zmq_message",
    "encode_zmq_meta",
    "zmq_topics",
]

#: Version field of the ZMQ metadata JSON (``"v"``).
ZMQ_FORMAT_VERSION: Final = 1
#: Topic prefix of compressed ZMQ frames; stream names never start with ``~``.
ZMQ_COMPRESSED_PREFIX: Final = "~blosc2/"
#: ``encoding`` of compressed ZMQ frames (one Blosc2 chunk); raw frames omit the field.
_ZMQ_ENCODING_BLOSC2: Final = "blosc2"
_ZMQ_ENCODINGS: Final = ("raw", _ZMQ_ENCODING_BLOSC2)


@attrs.frozen(kw_only=True)
class ZmqMeta:
    """Metadata of one frame published over ZMQ (the second message part).

    Attributes
    ----------
    name
        Stream name (equals the topic).
    shape, dtype
        Numpy shape and explicit little-endian dtype string of the pixels.
    cnt0, cnt1
        The publishing stream's counters.
    acquisition_time, write_time
        Unix seconds from the publishing stream.
    send_time
        Unix seconds when the publisher sent the message (latency measurement).
    keywords
        The stream keywords as ``{name: (value, comment)}``, read-only.
    encoding
        ``"raw"`` (pixel bytes) or ``"blosc2"`` (one compressed Blosc2 chunk,
        sent on the topic ``~blosc2/<name>``).
    """

    name: str
    shape: tuple[int, ...] = attrs.field(converter=_to_shape)
    dtype: str
    cnt0: int
    cnt1: int
    acquisition_time: float
    write_time: float
    send_time: float
    keywords: Mapping[str, tuple[KeywordValue, str]] = attrs.field(
        factory=dict, converter=_to_keyword_map
    )
    encoding: str = "raw"

    @property
    def nbytes(self) -> int:
        """Pixel bytes of the frame."""
        return math.prod(self.shape) * np.dtype(self.dtype).itemsize


def zmq_topics(name: str) -> tuple[bytes, bytes]:
    """Return the raw and the compressed ZMQ topic of a stream.

    Parameters
    ----------
    name
        Stream name.

    Returns
    -------
    tuple of bytes
        ``(b"<name>", b"~blosc2/<name>")``.
    """
    return name.encode(), (ZMQ_COMPRESSED_PREFIX + name).encode()


def encode_zmq_meta(meta: ZmqMeta) -> bytes:
    """Encode the JSON metadata part of a ZMQ frame message.

    A raw frame's JSON is exactly the version-1 form (no ``encoding`` field),
    so subscribers written before compression read it unchanged.

    Parameters
    ----------
    meta
        The frame metadata.

    Returns
    -------
    bytes

    Raises
    ------
    ProtocolError
        The JSON exceeds :data:`MAX_JSON_NBYTES`, or an unknown encoding.
    """
    if meta.encoding not in _ZMQ_ENCODINGS:
        msg = f"ZMQ encoding must be one of {list(_ZMQ_ENCODINGS)}, got {meta.encoding!r}"
        raise ProtocolError(msg)
    extra = {} if meta.encoding == "raw" else {"encoding": meta.encoding}
    body = _dumps(
        {
            "v": ZMQ_FORMAT_VERSION,
            "name": meta.name,
            "shape": list(meta.shape),
            "dtype": meta.dtype,
            "cnt0": meta.cnt0,
            "cnt1": meta.cnt1,
            "acquisition_time": meta.acquisition_time,
            "write_time": meta.write_time,
            "send_time": meta.send_time,
            "keywords": cards_to_json((k, v, c) for k, (v, c) in meta.keywords.items()),
            **extra,
        }
    )
    if len(body) > MAX_JSON_NBYTES:
        msg = f"ZMQ metadata of {len(body)} bytes exceeds {MAX_JSON_NBYTES}"
        raise ProtocolError(msg)
    return body


def decode_zmq_message(parts: list[bytes] | list[memoryview] | list[Any]) -> ZmqMeta:
    """Validate a received ZMQ frame message ``[topic, metadata, pixels]``.

    A message on a topic ``~blosc2/<name>`` must carry ``"encoding": "blosc2"``
    and its third part is a Blosc2 chunk (checked and decompressed by
    :func:`vampires.link.codec.decompress_frame`); any other message is raw
    and its third part must hold exactly the frame's bytes.

    Parameters
    ----------
    parts
        The message parts (bytes, memoryviews or ``zmq.Frame``; anything with
        the buffer protocol).

    Returns
    -------
    ZmqMeta
        The metadata; the caller takes the pixels from ``parts[2]``
        (decompressing them when ``meta.encoding == "blosc2"``).

    Raises
    ------
    ProtocolError
        Not three parts, topic differs from the metadata name, bad JSON or
        fields, unknown format version or encoding, or raw pixel bytes of the
        wrong length.
    """
    if len(parts) != 3:
        msg = f"ZMQ frame message must have 3 parts (topic, metadata, pixels), got {len(parts)}"
        raise ProtocolError(msg)
    topic_buf, meta_buf, pixels = (memoryview(p) for p in parts)
    try:
        topic = bytes(topic_buf).decode("ascii")
    except UnicodeDecodeError:
        msg = "ZMQ topic is not ASCII"
        raise ProtocolError(msg) from None
    obj = _loads(meta_buf, "ZMQ metadata")
    if not isinstance(obj, dict):
        msg = f"ZMQ metadata must be a JSON object, got {type(obj).__name__}"
        raise ProtocolError(msg)
    if obj.get("v") != ZMQ_FORMAT_VERSION:
        msg = f"ZMQ metadata format version {obj.get('v')!r}, expected {ZMQ_FORMAT_VERSION}"
        raise ProtocolError(msg)
    required = {"name", "shape", "dtype", "cnt0", "cnt1", "acquisition_time", "write_time"}
    missing = sorted(required - obj.keys())
    if missing:
        msg = f"ZMQ metadata lacks the fields {missing}"
        raise ProtocolError(msg)
    name = validate_stream_name(obj["name"])
    compressed = topic.startswith(ZMQ_COMPRESSED_PREFIX)
    if compressed:
        topic = topic[len(ZMQ_COMPRESSED_PREFIX) :]
    if name != topic:
        msg = f"ZMQ topic {topic!r} differs from the metadata name {name!r}"
        raise ProtocolError(msg)
    encoding = obj.get("encoding", "raw")
    if encoding != (_ZMQ_ENCODING_BLOSC2 if compressed else "raw"):
        msg = (
            f"ZMQ encoding {encoding!r} does not match the topic "
            f"({'compressed' if compressed else 'raw'} frames)"
        )
        raise ProtocolError(msg)
    cards = cards_from_json(obj.get("keywords", []))
    meta = ZmqMeta(
        name=name,
        shape=_parse_shape(obj["shape"]),
        dtype=_parse_dtype(obj["dtype"]),
        cnt0=_parse_int(obj["cnt0"], "cnt0"),
        cnt1=_parse_int(obj["cnt1"], "cnt1"),
        acquisition_time=_parse_time(obj["acquisition_time"], "acquisition_time"),
        write_time=_parse_time(obj["write_time"], "write_time"),
        send_time=_parse_time(obj.get("send_time", obj["write_time"]), "send_time"),
        keywords={k: (v, c) for k, v, c in cards},
        encoding=encoding,
    )
    if not compressed and pixels.nbytes != meta.nbytes:
        msg = (
            f"ZMQ pixels are {pixels.nbytes} bytes but shape {list(meta.shape)} "
            f"{meta.dtype} needs {meta.nbytes}"
        )
        raise ProtocolError(msg)
    return meta
