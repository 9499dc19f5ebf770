"""Stream.is_stale(max_age): loops waking at every frame notice a re-created stream
with a stat() a few times a second."""

from __future__ import annotations

import os

import numpy as np

from tests.helpers import wait_for
from vampires.stream import Stream


def test_notices_a_recreated_stream_within_max_age() -> None:
    first = Stream.create("cam", (4, 4), np.uint16)
    assert not first.is_stale(max_age=0.2)
    first.destroy()
    try:
        with Stream.create("cam", (8, 4), np.uint16):  # a crop change re-creates it
            assert first.is_stale()  # max_age 0: always looks
            wait_for(lambda: first.is_stale(max_age=0.2), 2.0, "re-created stream noticed", 0.01)
    finally:
        first.close()


def test_looks_at_the_file_at_most_once_per_max_age(monkeypatch) -> None:
    with Stream.create("cam", (4, 4), np.uint16) as stream:
        real_stat = os.stat
        calls: list[object] = []

        def counting_stat(path, *args, **kwargs):
            calls.append(path)
            return real_stat(path, *args, **kwargs)

        monkeypatch.setattr(os, "stat", counting_stat)
        for _ in range(1000):  # a loop waking at every frame
            assert not stream.is_stale(max_age=0.5)
        assert len([p for p in calls if p == stream.path]) == 1
