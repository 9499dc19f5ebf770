"""The link wire formats: round trips and every malformed case we can think of."""

from __future__ import annotations

import json
import math
import struct

import numpy as np
import pytest

from vampires.errors import LinkError, ProtocolError
from vampires.link import protocol as p
from vampires.link import zmq_protocol as zp


def _hello(**kw: object) -> p.Hello:
    args: dict[str, object] = {
        "name": "vcam1",
        "shape": (1096, 2236),
        "dtype": "<u2",
        "keywords": (("EXPTIME", 1e-3, "[s] Exposure time"), ("U_CAMERA", 1, "")),
        "cnt0": 42,
        "generation": 123456,
        "nkeywords": 200,
    }
    args.update(kw)
    return p.Hello(**args)  # type: ignore[arg-type]


def test_prefix_is_little_endian_with_magic() -> None:
    data = p.encode_heartbeat()
    assert data[:4] == b"VMPL"
    assert data[4:6] == b"\x01\x00"  # version 1, little-endian
    assert data[6:8] == b"\x04\x00"  # HEARTBEAT
    assert p.decode_prefix(data) is p.MessageKind.HEARTBEAT
    assert p.decode_prefix(p.encode_bye()) is p.MessageKind.BYE


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"VMPL\x01\x00", "must be 8 bytes"),
        (b"HTTP\x01\x00\x03\x00", "bad magic"),
        (b"VMPL\x02\x00\x03\x00", "version 2"),
        (b"VMPL\x01\x00\x63\x00", "unknown message kind 99"),
    ],
)
def test_prefix_rejects(data: bytes, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        p.decode_prefix(data)


def test_protocol_error_is_link_and_value_error() -> None:
    assert issubclass(p.ProtocolError, LinkError)  # type: ignore[attr-defined]
    assert issubclass(ProtocolError, ValueError)


def test_hello_round_trip() -> None:
    hello = _hello()
    data = p.encode_hello(hello)
    assert p.decode_prefix(data[: p.PREFIX.size]) is p.MessageKind.HELLO
    fixed = data[p.PREFIX.size : p.PREFIX.size + p.HELLO_FIXED.size]
    length = p.decode_hello_length(fixed)
    body = data[p.PREFIX.size + p.HELLO_FIXED.size :]
    assert length == len(body)
    back = p.decode_hello_body(body)
    assert back == hello
    assert back.nbytes == 2236 * 1096 * 2
    assert isinstance(back.keywords[1][1], int)
    assert isinstance(back.keywords[0][1], float)


def test_hello_keeps_value_types_and_nan() -> None:
    cards = (("B", True, "c"), ("I", 3, ""), ("F", 3.0, ""), ("S", "x y", ""), ("N", math.nan, ""))
    back = p.decode_hello_body(p.encode_hello(_hello(keywords=cards))[12:])
    assert [type(v) for _, v, _ in back.keywords] == [bool, int, float, str, float]
    assert math.isnan(float(back.keywords[4][1]))


def test_hello_numpy_keyword_values_are_plain() -> None:
    cards = (("A", np.float32(1.5), ""), ("B", np.int64(7), ""))
    back = p.decode_hello_body(p.encode_hello(_hello(keywords=cards))[12:])
    assert back.keywords == (("A", 1.5, ""), ("B", 7, ""))


def _body(**over: object) -> bytes:
    obj: dict[str, object] = {
        "name": "vcam1",
        "shape": [4, 6],
        "dtype": "<u2",
        "nbytes": 48,
        "keywords": [],
    }
    obj.update(over)
    return json.dumps({k: v for k, v in obj.items() if v is not ...}).encode()


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"\xff\xfe", "not valid UTF-8 JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b"{", "not valid UTF-8 JSON"),
        (_body(name=...), r"lacks the fields \['name'\]"),
        (_body(name="../etc/passwd"), "is invalid"),
        (_body(name=""), "non-empty string"),
        (_body(name="a" * 80), "is invalid"),
        (_body(shape=[0, 6]), "positive integers"),
        (_body(shape=[1, 2, 3, 4]), "positive integers"),
        (_body(shape="4x6"), "positive integers"),
        (_body(shape=[True, 6]), "positive integers"),
        (_body(dtype=">u2"), "dtype must be one of"),
        (_body(dtype="object"), "dtype must be one of"),
        (_body(nbytes=47), "makes 48"),
        (_body(nbytes=-1), "nbytes must be an integer"),
        (_body(keywords={"A": 1}), "keywords must be a list"),
        (_body(keywords=[["A", 1]]), r"\[name, value, comment\]"),
        (_body(keywords=[["A", [1], ""]]), "value must be int"),
        (_body(keywords=[["A" * 16, 1, ""]]), "1-15 characters"),
        (_body(keywords=[["A", 1, 3]]), "comment must be a string"),
        (_body(keywords=[["A", 1, ""], ["A", 2, ""]]), "repeat the names"),
        (_body(cnt0=-5), "cnt0 must be an integer"),
        (_body(nkeywords=70000), "nkeywords must be an integer"),
    ],
)
def test_hello_body_rejects(body: bytes, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        p.decode_hello_body(body)


def test_hello_length_bounds() -> None:
    with pytest.raises(ProtocolError, match="out of bounds"):
        p.decode_hello_length(struct.pack("<I", p.MAX_JSON_NBYTES + 1))
    with pytest.raises(ProtocolError, match="out of bounds"):
        p.decode_hello_length(struct.pack("<I", 0))
    with pytest.raises(ProtocolError, match="must be 4 bytes"):
        p.decode_hello_length(b"\x00")


def test_hello_constructor_validates() -> None:
    with pytest.raises(ProtocolError, match="is invalid"):
        _hello(name="a b")
    with pytest.raises(ProtocolError, match="dtype"):
        _hello(dtype="<U4")
    with pytest.raises(ProtocolError, match="exceeds the link limit"):
        _hello(shape=(1 << 20, 1 << 20), dtype="<f8")


def test_wire_dtype() -> None:
    assert p.wire_dtype(np.uint16) == "<u2"
    assert p.wire_dtype("uint8") == "|u1"
    assert p.wire_dtype(np.dtype("float32")) == "<f4"
    with pytest.raises(ProtocolError):
        p.wire_dtype(np.dtype(">u2"))
    with pytest.raises(ProtocolError):
        p.wire_dtype(np.dtype(object))


def test_frame_header_round_trip() -> None:
    header = p.FrameHeader(
        cnt0=2**40 + 3,
        cnt1=7,
        acquisition_time=1.7e9 + 0.25,
        write_time=1.7e9 + 0.5,
        keywords_nbytes=33,
        payload_nbytes=48,
    )
    data = p.encode_frame_header(header)
    assert len(data) == p.PREFIX.size + p.FRAME_FIXED.size == 56
    assert p.decode_prefix(data[:8]) is p.MessageKind.FRAME
    back = p.decode_frame_header(data[8:], expected_nbytes=48)
    assert back == header
    assert back.keywords_changed
    # explicit little-endian: cnt0 is the first field after the prefix
    assert int.from_bytes(data[8:16], "little") == 2**40 + 3


def _fixed(**over: float) -> bytes:
    vals: dict[str, float] = {
        "cnt0": 1,
        "cnt1": 0,
        "at": 1.0,
        "wt": 2.0,
        "flags": 0,
        "kw": 0,
        "payload": 48,
    }
    vals.update(over)
    return p.FRAME_FIXED.pack(
        int(vals["cnt0"]),
        int(vals["cnt1"]),
        vals["at"],
        vals["wt"],
        int(vals["flags"]),
        int(vals["kw"]),
        int(vals["payload"]),
    )


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (_fixed()[:-1], "must be 48 bytes"),
        (_fixed(flags=4), "unknown flags"),
        (_fixed(flags=1, kw=0), "keyword flag True but 0"),
        (_fixed(flags=0, kw=10), "keyword flag False but 10"),
        (_fixed(flags=1, kw=p.MAX_JSON_NBYTES + 1), "exceed the limit"),
        (_fixed(payload=47), "announced 48"),
        (_fixed(at=math.nan), "finite number"),
        (_fixed(wt=math.inf), "finite number"),
    ],
)
def test_frame_header_rejects(data: bytes, match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        p.decode_frame_header(data, expected_nbytes=48)


def test_keywords_block() -> None:
    cards = (("EXPTIME", 0.5, "[s]"), ("DATA-TYP", "OBJECT", "type"))
    data = p.encode_keywords(cards)
    assert p.decode_keywords(data) == cards
    assert p.encode_keywords(()) == b"[]"
    with pytest.raises(ProtocolError, match="not valid UTF-8 JSON"):
        p.decode_keywords(b"[")


def test_trailer() -> None:
    for status in p.FrameStatus:
        assert p.decode_trailer(p.encode_trailer(status)) is status
    with pytest.raises(ProtocolError, match="lost sync"):
        p.decode_trailer(b"XXXX\x00\x00\x00\x00")
    with pytest.raises(ProtocolError, match="unknown frame trailer status 9"):
        p.decode_trailer(b"VEND\x09\x00\x00\x00")
    with pytest.raises(ProtocolError, match="must be 8 bytes"):
        p.decode_trailer(b"VEND")


def test_ack() -> None:
    ok = p.encode_ack()
    assert p.decode_prefix(ok[:8]) is p.MessageKind.ACK
    assert p.decode_ack(ok[8:16]) == (True, 0)
    bad = p.encode_ack(ok=False, reason="wrong version")
    accepted, length = p.decode_ack(bad[8:16])
    assert not accepted
    assert bad[16 : 16 + length] == b"wrong version"
    with pytest.raises(ProtocolError, match="invalid status"):
        p.decode_ack(p.ACK_FIXED.pack(5, 0))
    with pytest.raises(ProtocolError, match="invalid status"):
        p.decode_ack(p.ACK_FIXED.pack(1, 5000))


def _zmq_meta(**over: object) -> zp.ZmqMeta:
    args: dict[str, object] = {
        "name": "vcam1",
        "shape": (4, 6),
        "dtype": "<u2",
        "cnt0": 10,
        "cnt1": 0,
        "acquisition_time": 1.0,
        "write_time": 2.0,
        "send_time": 3.0,
        "keywords": {"EXPTIME": (0.1, "[s]")},
    }
    args.update(over)
    return zp.ZmqMeta(**args)  # type: ignore[arg-type]


def test_zmq_round_trip() -> None:
    meta = _zmq_meta()
    pixels = np.arange(24, dtype=np.uint16).reshape(4, 6)
    parts = [b"vcam1", zp.encode_zmq_meta(meta), pixels.tobytes()]
    back = zp.decode_zmq_message(parts)
    assert back == meta
    assert back.keywords["EXPTIME"] == (0.1, "[s]")
    assert b"pickle" not in parts[1]
    assert json.loads(parts[1])["v"] == 1


def _zmq_parts(**over: object) -> list[bytes]:
    meta = json.loads(zp.encode_zmq_meta(_zmq_meta()))
    meta.update(over)
    return [b"vcam1", json.dumps(meta).encode(), bytes(48)]


@pytest.mark.parametrize(
    ("parts", "match"),
    [
        ([b"vcam1", b"{}"], "must have 3 parts"),
        ([b"vcam1", b"\x80\x04\x95", bytes(48)], "not valid UTF-8 JSON"),  # a pickle
        ([b"\xff", b"{}", b""], "topic is not ASCII"),
        ([b"vcam1", b"[]", bytes(48)], "must be a JSON object"),
        (_zmq_parts(v=2), "format version 2"),
        (_zmq_parts(name="vcam2"), "differs from the metadata name"),
        (_zmq_parts(shape=[5, 6]), "needs 60"),
        (_zmq_parts(dtype="<f8"), "needs 192"),
        (_zmq_parts(cnt0="3"), "cnt0 must be an integer"),
        (_zmq_parts(keywords=[["A", {"x": 1}, ""]]), "value must be int"),
        ([b"vcam1", b'{"v": 1, "name": "vcam1"}', bytes(48)], "lacks the fields"),
    ],
)
def test_zmq_rejects(parts: list[bytes], match: str) -> None:
    with pytest.raises(ProtocolError, match=match):
        zp.decode_zmq_message(parts)


def test_zmq_meta_too_large() -> None:
    huge = {f"K{i}": ("x" * 1000, "") for i in range(1100)}
    with pytest.raises(ProtocolError, match="exceeds"):
        zp.encode_zmq_meta(_zmq_meta(keywords=huge))
