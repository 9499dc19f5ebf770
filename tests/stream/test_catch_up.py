"""Readers that fell behind catch up from the circular buffer (catch_up=True)."""

from __future__ import annotations

import numpy as np
import pytest

from vampires.stream import Stream
from vampires.testing.foreign import publish_prefilled_slot


def _frame(k: int) -> np.ndarray:
    return np.full((4, 6), k, dtype=np.uint16)


@pytest.fixture
def stream():
    with Stream.create("cb", (4, 6), np.uint16, circular_buffer=8) as s:
        yield s
        s.destroy()


def test_catch_up_returns_every_buffered_frame_in_order(stream: Stream) -> None:
    with stream.reader(catch_up=True) as reader:
        for k in range(1, 6):
            stream.write(_frame(k))
        got = [reader.next(timeout=1.0) for _ in range(5)]
    assert [f.cnt0 for f in got] == [1, 2, 3, 4, 5]
    assert [int(f.data[0, 0]) for f in got] == [1, 2, 3, 4, 5]
    assert all(f.missed == 0 for f in got)
    assert reader.caught_up == 4  # frames 1..4 came from their slots, 5 was the newest


def test_catch_up_with_next_into(stream: Stream) -> None:
    seen: list[int] = []
    with stream.reader(catch_up=True) as reader:
        for k in range(1, 4):
            stream.write(_frame(k), acquisition_time=1000.0 + k)
        infos = [reader.next_into(lambda v: seen.append(int(v[0, 0])), 1.0) for _ in range(3)]
    assert seen == [1, 2, 3]
    assert [i.cnt0 for i in infos] == [1, 2, 3]
    assert [round(i.acquisition_time) for i in infos] == [1001, 1002, 1003]


def test_too_far_behind_jumps_to_newest_and_counts_missed(stream: Stream) -> None:
    with stream.reader(catch_up=True) as reader:
        for k in range(1, 21):  # 20 frames > 8 slots
            stream.write(_frame(k))
        frame = reader.next(timeout=1.0)
    assert frame.cnt0 == 20
    assert frame.missed == 19
    assert int(frame.data[0, 0]) == 20


def test_default_reader_jumps_to_newest(stream: Stream) -> None:
    with stream.reader() as reader:
        for k in range(1, 4):
            stream.write(_frame(k))
        frame = reader.next(timeout=1.0)
    assert (frame.cnt0, frame.missed) == (3, 2)


def test_catch_up_without_circular_buffer_is_latest_frame() -> None:
    with Stream.create("nocb", (4, 6), np.uint16) as s:
        with s.reader(catch_up=True) as reader:
            for k in range(1, 4):
                s.write(_frame(k))
            frame = reader.next(timeout=1.0)
        s.destroy()
    assert (frame.cnt0, frame.missed) == (3, 2)


def test_slot_reused_during_copy_is_not_returned(stream: Stream) -> None:
    """A slot rewritten while the consumer copies it is detected, never returned."""
    with stream.reader(catch_up=True) as reader:
        for k in range(1, 4):
            stream.write(_frame(k))

        copies: list[int] = []

        def slow_copy(view: np.ndarray) -> None:
            copies.append(int(view[0, 0]))
            if len(copies) == 1:
                for k in range(4, 4 + 8):  # the writer laps the buffer meanwhile
                    stream.write(_frame(k))

        info = reader.next_into(slow_copy, 1.0)
    # frame 1 was overwritten during the first copy: the reader went on with the newest
    assert copies == [1, 11]
    assert (info.cnt0, info.missed) == (11, 10)


def test_slow_copy_of_the_newest_frame_reads_its_stable_slot(stream: Stream) -> None:
    """A copy slower than the frame period does not tear: the slot is stable."""
    with stream.reader() as reader:
        stream.write(_frame(1))
        copies: list[int] = []

        def slow_copy(view: np.ndarray) -> None:
            stream.write(_frame(2))  # the writer publishes the next frame meanwhile
            copies.append(int(view[0, 0]))

        info = reader.next_into(slow_copy, 1.0)
    assert (info.cnt0, copies) == (1, [1])
    assert reader.torn == 0


class _Boom(Exception):
    pass


def _half_fill(view: np.ndarray) -> None:
    view[:2] = 999  # half a frame arrived, then the sender died
    raise _Boom


def test_failed_fill_restores_the_last_frame_from_its_slot(stream: Stream) -> None:
    stream.write(_frame(7))
    with pytest.raises(_Boom):
        stream.write_with(_half_fill)
    assert stream.cnt0 == 1
    assert (stream.read() == 7).all()  # whole, not half 999
    assert (stream.view() == 7).all()
    stream.write(_frame(8))
    assert (stream.read() == 8).all()


def test_failed_fill_without_circular_buffer_keeps_readers_off_the_half_frame() -> None:
    from vampires.errors import TornFrameError

    with Stream.create("nocb2", (4, 6), np.uint16) as s:
        s.write(_frame(7))
        with pytest.raises(_Boom):
            s.write_with(_half_fill)
        with pytest.raises(TornFrameError):
            s.read()
        s.write(_frame(8))  # the next good frame clears it
        assert (s.read() == 8).all()
        s.destroy()


def test_suggested_circular_buffer_bounds() -> None:
    from vampires.stream import suggested_circular_buffer

    assert suggested_circular_buffer((1096, 2236), np.uint16) == 26
    assert suggested_circular_buffer((16, 16), np.uint16) == 64
    assert suggested_circular_buffer((2304, 4096), np.uint16) == 6
    assert suggested_circular_buffer((8000, 8000), np.float64) == 4


def test_max_lag_bounds_catch_up(stream: Stream) -> None:
    with stream.reader(catch_up=True, max_lag=2) as reader:
        for k in range(1, 4):  # frame 1 is 2 behind the newest: caught up
            stream.write(_frame(k))
        assert reader.next(timeout=1.0).cnt0 == 1
        for k in range(4, 8):  # frame 2 is now 5 behind: jump to the newest
            stream.write(_frame(k))
        frame = reader.next(timeout=1.0)
    assert (frame.cnt0, frame.missed) == (7, 5)


def test_bad_max_lag_is_refused(stream: Stream) -> None:
    from vampires.errors import StreamError

    with pytest.raises(StreamError, match="max_lag"):
        stream.reader(catch_up=True, max_lag=8)  # 8 slots: at most 7 behind


def test_prefilled_slots_published_without_copy(stream: Stream) -> None:
    """The benchmarks' zero-CPU camera: slots filled once, then published as they are."""
    for k in range(1, 9):  # one lap fills the 8 slots with frames 1..8
        stream.write(_frame(k))
    stream.write(_frame(99))  # main array and slot 0 now hold 99
    with stream.reader(catch_up=True) as reader:
        cnt0 = [publish_prefilled_slot(stream, acquisition_time=2000.0 + k) for k in range(3)]
        got = [reader.next(timeout=1.0) for _ in range(3)]
    assert cnt0 == [10, 11, 12]
    assert [f.cnt0 for f in got] == [10, 11, 12]
    # each frame is what its slot held (frames 2, 3, 4 of the first lap), not the main array
    assert [int(f.data[0, 0]) for f in got] == [2, 3, 4]
    assert [f.acquisition_time for f in got] == [2000.0, 2001.0, 2002.0]


def test_prefilled_slots_need_a_circular_buffer() -> None:
    from vampires.errors import StreamError

    with Stream.create("nocb", (2, 2), np.uint16) as s:
        with pytest.raises(StreamError, match="no circular buffer"):
            publish_prefilled_slot(s)
        s.destroy()


def test_frame_info_names_its_slot_until_the_writer_reuses_it(stream: Stream) -> None:
    from vampires.errors import StreamError

    with stream.reader() as reader:
        stream.write(_frame(1))
        info = reader.next_into(lambda view: None, timeout=1.0)
        assert info.slot is not None
        assert stream.slot_holds(info.slot, info.cnt0)
        for k in range(2, 10):  # one lap of the 8 slots reuses it
            stream.write(_frame(k))
        assert not stream.slot_holds(info.slot, info.cnt0)
        frame = reader.next(timeout=1.0)
        assert frame.slot is not None
        assert frame.info.slot == frame.slot
    with pytest.raises(StreamError, match="out of range"):
        stream.slot_holds(8, 1)


def test_a_frame_of_a_stream_without_slots_has_none() -> None:
    with Stream.create("nocb2", (2, 2), np.uint16) as s, s.reader() as reader:
        s.write(np.ones((2, 2), np.uint16))
        assert reader.next(timeout=1.0).slot is None
        s.destroy()
