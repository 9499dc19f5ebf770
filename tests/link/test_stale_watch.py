"""StaleWatch: link loops notice a re-created stream with a stat() a few times a second."""

from __future__ import annotations

import time

import numpy as np

from vampires.link._common import StaleWatch
from vampires.stream import Stream


class _Counting:
    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.calls = 0

    def is_stale(self) -> bool:
        self.calls += 1
        return self.stream.is_stale()


def test_notices_a_recreated_stream_within_its_period() -> None:
    first = Stream.create("cam", (4, 4), np.uint16)
    counting = _Counting(first)
    stale = StaleWatch(counting, period=0.2)
    assert not stale()
    first.destroy()
    first.close()
    with Stream.create("cam", (8, 4), np.uint16):  # a crop change re-creates it
        deadline = time.monotonic() + 2.0
        while not stale():
            assert time.monotonic() < deadline, "re-created stream not noticed"
            time.sleep(0.01)


def test_asks_the_stream_at_most_once_per_period() -> None:
    with Stream.create("cam", (4, 4), np.uint16) as stream:
        counting = _Counting(stream)
        stale = StaleWatch(counting, period=0.5)
        for _ in range(1000):  # a loop waking at every frame
            assert not stale()
        assert counting.calls == 1
