"""The ``cnt0`` / ``cnt1`` option of ``Stream.write_with`` the TCP mirror relies on."""

from __future__ import annotations

import numpy as np
import pytest

from vampires.errors import StreamError
from vampires.stream import Stream


def test_write_with_explicit_counters() -> None:
    with Stream.create("mirror", (4, 6), np.uint16) as s, s.reader() as r:
        frame = np.arange(24, dtype=np.uint16).reshape(4, 6)
        assert s.write_with(lambda v: np.copyto(v, frame), cnt0=1000, cnt1=3) == 1000
        got = r.next(1.0)
        assert (got.cnt0, got.cnt1) == (1000, 3)
        assert np.array_equal(got.data, frame)
        # without the option the counter continues from the explicit value
        assert s.write_with(lambda v: np.copyto(v, frame)) == 1001
        assert s.cnt1 == 3
        # a mirror re-attached to a restarted sender may go back in time
        assert s.write_with(lambda v: np.copyto(v, frame), cnt0=5) == 5
        assert r.next(1.0).cnt0 == 5


@pytest.mark.parametrize("bad", [-1, 2**64, 1.5, "3", True])
def test_write_with_rejects_bad_counters(bad: object) -> None:
    with Stream.create("mirror", (2, 2), np.uint8) as s:
        called = []
        with pytest.raises(StreamError, match="cnt0 must be an integer"):
            s.write_with(called.append, cnt0=bad)  # type: ignore[arg-type]
        with pytest.raises(StreamError, match="cnt1 must be an integer"):
            s.write_with(called.append, cnt1=bad)  # type: ignore[arg-type]
        assert not called
        assert s.cnt0 == 0
