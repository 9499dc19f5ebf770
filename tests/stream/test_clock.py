"""Stream time stamps: CLOCK_TAI in the file, unix UTC in the API."""

from __future__ import annotations

import time

import pytest

from vampires.stream import clock


def test_offset_is_whole_seconds_and_matches_kernel():
    off = clock.tai_offset_ns()
    assert off % 1_000_000_000 == 0
    if hasattr(time, "CLOCK_TAI"):
        measured = time.clock_gettime(time.CLOCK_TAI) - time.time()
        assert off / 1e9 == pytest.approx(measured, abs=0.01)
        assert off in (0, *(s * 10**9 for s in range(10, 60)))


def test_round_trip_and_offset_applied():
    sec, nsec = clock.to_timespec(1.7e9 + 0.123456789, offset_ns=37 * 10**9)
    assert sec == 1_700_000_037
    assert nsec == pytest.approx(123456789, abs=300)  # float seconds: ~0.24 us resolution
    assert clock.to_unix(sec, nsec, offset_ns=37 * 10**9) == pytest.approx(1.7e9 + 0.123456789)
    assert clock.to_unix(0, 0) == 0.0  # unset stamp


def test_now_is_on_the_stream_clock():
    now = clock.now_ns()
    assert clock.to_unix(*divmod(now, 10**9)) == pytest.approx(time.time(), abs=0.01)
