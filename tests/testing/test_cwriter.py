"""The C-like writer: tags, both write orders, a real writer process."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.helpers import make_job
from vampires import Stream
from vampires.errors import StreamError
from vampires.fitslog.writer import CubeWriter
from vampires.testing.cwriter import (
    CWriterProcess,
    count_tags,
    cube_tags,
    frame_tag,
    make_base_frame,
    tag_frame,
    write_frame,
)


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int32", "float32", "float64"])
def test_tag_round_trip_and_torn_frames(dtype: str) -> None:
    frame = make_base_frame((16, 16), dtype)
    tag_frame(frame, 123456789)
    assert frame_tag(frame) == 123456789
    frame.reshape(-1).view(np.uint8)[-1] ^= 0xFF
    assert frame_tag(frame) == -1


def test_too_small_frame_refused() -> None:
    with pytest.raises(StreamError, match="at least 16 bytes"):
        tag_frame(np.zeros(3, np.uint16), 1)


def test_count_tags() -> None:
    assert count_tags([0, 1, 1, 3, -1], 5) == (2, 1, 1)


@pytest.mark.parametrize("order", ["isio", "pymilk"])
def test_write_orders_publish_the_frame(order: str, shm_dir: Path) -> None:
    with Stream.create("cw", shape=(8, 8), dtype=np.uint16) as stream:
        frame = make_base_frame(stream.shape, stream.dtype)
        tag_frame(frame, 7)
        assert write_frame(stream, frame, order) == 1  # type: ignore[arg-type]
        assert stream.cnt0 == 1
        assert frame_tag(stream.read()) == 7
        with pytest.raises(StreamError, match="unknown write order"):
            write_frame(stream, frame, "nope")  # type: ignore[arg-type]
        stream.destroy()


@pytest.mark.integration
@pytest.mark.parametrize("order", ["isio", "pymilk"])
def test_writer_process_writes_every_frame_in_place(order: str, shm_dir: Path) -> None:
    writer = CWriterProcess("cwp", (32, 32), fps=200, frames=50, order=order)  # type: ignore[arg-type]
    with writer, Stream.open("cwp") as stream:
        assert stream.circular_buffer == 0
        result = writer.wait(timeout=60)
        assert result.frames == 50
        assert stream.cnt0 == 50
        assert frame_tag(stream.read()) == 49
        stream.destroy()


def test_cube_tags_reads_the_tags_back_from_a_written_cube(tmp_path: Path) -> None:
    frames = make_base_frame((5, 8, 6), "uint16")
    for i, k in enumerate([3, 4, 9, 10, 11]):
        tag_frame(frames[i], k)
    frames[2].reshape(-1)[-1] ^= 1  # a torn frame: its tail disagrees with its head
    written = CubeWriter().write(make_job(tmp_path, frames))
    assert written.ok
    assert written.path is not None
    assert cube_tags(written.path) == [3, 4, -1, 10, 11]
