"""Shared-memory image streams, byte-compatible with milk's ImageStreamIO 2.00.

::

    from vampires.stream import Stream

    with Stream.create("vcam1", (1096, 2236), "uint16", exist_ok=True) as stream:
        stream.keywords["EXPTIME"] = (1e-3, "[s] Exposure time")
        stream.write(frame)

Shapes are in numpy order (``(height, width)``); see :mod:`vampires.stream.stream`
for the writer protocol, :mod:`vampires.stream.reader` for the reader's,
:mod:`vampires.stream.names` for the name rule and :mod:`vampires.stream.layout` for the bytes.
"""

from __future__ import annotations

from vampires.stream.keywords import KeywordValue, StreamKeywords
from vampires.stream.names import check_stream_name, list_streams, stream_path
from vampires.stream.reader import Frame, FrameInfo, StreamReader
from vampires.stream.stream import Stream, suggested_circular_buffer

__all__ = [
    "Frame",
    "FrameInfo",
    "KeywordValue",
    "Stream",
    "StreamKeywords",
    "StreamReader",
    "check_stream_name",
    "list_streams",
    "stream_path",
    "suggested_circular_buffer",
]
