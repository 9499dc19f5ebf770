"""The logger's buffer pool: keys, places, spares, phases."""

from __future__ import annotations

import threading

import attrs
import numpy as np
import pytest

from vampires.fitslog.buffers import BufferKey, BufferPool, CubeBuffer
from vampires.fitslog.directio import ALIGN, phase_of
from vampires.fitslog.policy import CubePolicy
from vampires.kernels import fits_format

FMT = fits_format(np.dtype(np.uint16))


def _key(frames: int = 3, shape: tuple[int, int] = (8, 16)) -> BufferKey:
    return BufferKey(shape=shape, dtype=np.dtype(np.uint16).str, frames=frames)


def _pool(size: int = 2, max_size: int = 4) -> tuple[BufferPool, list[str]]:
    errors: list[str] = []
    pool = BufferPool(threading.Lock(), size=size, max_size=max_size, on_error=errors.append)
    return pool, errors


def test_key_is_a_frozen_value_from_the_policy() -> None:
    key = BufferKey.of((8, 16), np.dtype(np.uint16), CubePolicy(frames_per_cube=3))
    assert key == _key()
    assert hash(key) == hash(_key())
    assert key.nbytes == 3 * 8 * 16 * 2
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        key.frames = 4  # type: ignore[misc]


def test_buffer_holds_a_cube_of_its_key_at_the_phase() -> None:
    buffer = CubeBuffer.allocate(_key(), FMT, phase=64)
    assert buffer.cube.shape == (3, 8, 16)
    assert phase_of(buffer.cube) == 64
    buffer.rephase(ALIGN + 128)
    assert phase_of(buffer.cube) == 128
    assert buffer.cube.shape == (3, 8, 16)


def test_pool_allocates_up_to_its_size_and_reuses_given_back_buffers() -> None:
    pool, errors = _pool(size=2)
    first = pool.take(_key(), FMT)
    second = pool.take(_key(), FMT)
    assert first is not None
    assert second is not None
    assert pool.take(_key(), FMT) is None  # full: the frame would be dropped
    assert (pool.count, pool.nbytes) == (2, 2 * first.cube.nbytes)
    pool.give_back(first)
    assert pool.take(_key(), FMT) is first
    assert errors == []


def test_another_key_frees_the_stale_buffers() -> None:
    pool, _ = _pool(size=2)
    old = pool.take(_key(frames=3), FMT)
    assert old is not None
    pool.give_back(old)
    new = pool.take(_key(frames=5), FMT)
    assert new is not None
    assert new.key == _key(frames=5)
    assert old not in pool.free
    assert (pool.count, pool.nbytes) == (1, new.cube.nbytes)


def test_a_spare_is_reserved_once_and_never_beyond_max_size() -> None:
    pool, _ = _pool(size=1, max_size=2)
    assert pool.take(_key(), FMT) is not None
    with pool.lock:
        assert pool.reserve_spare(_key())
        assert pool.allocating
        assert not pool.reserve_spare(_key())  # at max_size
    added = pool.add_spare(_key(), FMT)
    if added is None:  # the machine keeps a fifth of its memory: no spare then
        assert pool.count == 1
    else:
        assert added == (2, 2 * _key().nbytes)
    assert not pool.allocating


def test_a_given_back_buffer_moves_to_the_phase_of_its_header() -> None:
    pool, _ = _pool(size=1)
    buffer = pool.take(_key(), FMT)
    assert buffer is not None
    pool.give_back(buffer, header_bytes=2880 * 3)
    assert pool.phase == 2880 * 3 % ALIGN
    assert phase_of(buffer.cube) == pool.phase
    pool.rephase(0)
    assert phase_of(buffer.cube) == 0
