"""The in-mapping POSIX semaphores (ctypes on libc)."""

from __future__ import annotations

import mmap
import threading
import time

import numpy as np
import pytest

from vampires.errors import StreamError, StreamTimeout
from vampires.stream.sem import Semaphore


@pytest.fixture
def sem():
    mm = mmap.mmap(-1, 4096)
    root = np.frombuffer(mm, np.uint8)
    s = Semaphore(int(root.ctypes.data) + 64, "test semaphore")
    s.init(0)
    yield s
    del root
    mm.close()


def test_post_value_trywait_flush(sem: Semaphore):
    assert sem.value() == 0
    assert not sem.trywait()
    for _ in range(3):
        sem.post()
    assert sem.value() == 3
    assert sem.trywait()
    assert sem.flush() == 2
    assert sem.value() == 0


def test_wait_timeout_and_zero_timeout(sem: Semaphore):
    assert not sem.wait(0.0)
    assert not sem.wait(0.01)
    sem.post()
    assert sem.wait(0.0)
    with pytest.raises(StreamTimeout, match=r"within 0\.01 s"):
        sem.wait_or_raise(0.01, "test")
    for bad in (-1.0, float("nan")):
        with pytest.raises(StreamError, match="timeout must be >= 0"):
            sem.wait(bad)


def test_wait_releases_the_gil_and_wakes_on_post(sem: Semaphore):
    woke: list[bool] = []
    waiter = threading.Thread(target=lambda: woke.append(sem.wait(10.0)))
    waiter.start()
    ticks = 0
    deadline = time.monotonic() + 0.05
    while time.monotonic() < deadline:  # this thread keeps running while the other waits
        ticks += 1
    sem.post()
    waiter.join(10.0)
    assert woke == [True]
    assert ticks > 100


def test_infinite_wait_is_accepted(sem: Semaphore):
    sem.post()
    assert sem.wait(float("inf"))


def test_errno_is_translated():
    mm = mmap.mmap(-1, 4096)
    root = np.frombuffer(mm, np.uint8)
    s = Semaphore(int(root.ctypes.data), "bad")
    with pytest.raises(StreamError, match=r"sem_init failed on bad: \[errno 22\]"):
        s.init(2**32 - 1)  # above SEM_VALUE_MAX: EINVAL
    del root
    mm.close()
