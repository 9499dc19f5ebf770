"""O_DIRECT cube writes: same bytes as a buffered write, no page cache, safe fallbacks."""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

import attrs
import numpy as np
import pytest
from astropy.io import fits

from tests.helpers import (
    check_frames_match_sidecar,
    cubes_in,
    frames_u16,
    make_job,
    publish_lockstep,
    wait_for,
)
from vampires.fitslog.directio import (
    ALIGN,
    BounceBuffer,
    aligned_empty,
    phase_of,
    write_cube_file,
)
from vampires.fitslog.writer import CubeWriter
from vampires.kernels import frame_to_fits


def _direct_supported(folder: Path) -> bool:
    probe = folder / "probe.bin"
    block, _ = aligned_empty((ALIGN,), np.uint8)
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_DIRECT, 0o644)
    except OSError:
        return False
    try:
        os.write(fd, block.data)
    except OSError:
        return False
    finally:
        os.close(fd)
        probe.unlink()
    return True


@pytest.fixture
def direct_dir(tmp_path: Path) -> Path:
    if not _direct_supported(tmp_path):
        pytest.skip(f"no O_DIRECT on the file system of {tmp_path}")
    return tmp_path


class _Recorder:
    """os.write that remembers (bytes, O_DIRECT on?) for each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[int, bool]] = []

    def __call__(self, fd: int, data: memoryview) -> int:
        direct = bool(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT)
        n = os.write(fd, data)
        self.calls.append((n, direct))
        return n

    @property
    def direct_bytes(self) -> int:
        return sum(n for n, direct in self.calls if direct)


def _write(path: Path, header: bytes, pixels: np.ndarray, padding: int, **kw) -> tuple[int, int]:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        kw.setdefault("write_chunk", os.write)
        kw.setdefault("chunk", 1 << 20)
        return write_cube_file(fd, header, pixels, padding, **kw)
    finally:
        os.close(fd)


def _expected(header: bytes, pixels: np.ndarray, padding: int) -> bytes:
    return header + pixels.tobytes() + bytes(padding)


@pytest.mark.parametrize("phase", [0, 64, 2880 % ALIGN, 4032])
@pytest.mark.parametrize("dtype", [">i2", ">f4", ">f8", "u1"])
def test_aligned_empty_has_the_phase(phase: int, dtype: str) -> None:
    array, raw = aligned_empty((3, 5, 7), dtype, phase=phase)
    assert array.shape == (3, 5, 7)
    assert array.dtype == np.dtype(dtype)
    assert array.flags.c_contiguous
    assert phase_of(array) == phase // array.itemsize * array.itemsize
    again, raw2 = aligned_empty(array.shape, dtype, phase=(phase + 128) % ALIGN, raw=raw)
    assert raw2 is raw  # re-phased in place: no new allocation
    assert phase_of(again) == (phase + 128) % ALIGN // again.itemsize * again.itemsize


@pytest.mark.parametrize(
    ("header_blocks", "nbytes"),
    [(1, 5 * ALIGN + 123), (2, 3 * 1024 * 1024 + 2), (3, 100), (64, 7 * ALIGN), (1, 0)],
)
@pytest.mark.parametrize("at_phase", [True, False])
def test_same_bytes_as_buffered(
    direct_dir: Path, header_blocks: int, nbytes: int, at_phase: bool
) -> None:
    header = bytes(range(256)) * (header_blocks * 2880 // 256) + b"H" * (header_blocks * 2880 % 256)
    phase = len(header) % ALIGN if at_phase else (len(header) + 2) % ALIGN
    pixels, _ = aligned_empty((nbytes,), np.uint8, phase=phase)
    pixels[:] = np.random.default_rng(nbytes).integers(0, 256, nbytes, dtype=np.uint8)
    padding = -(len(header) + nbytes) % 2880
    recorder = _Recorder()
    bounces: list[BounceBuffer] = []

    def bounce() -> BounceBuffer:
        bounces.append(BounceBuffer(2 * ALIGN))  # small: many chunks through it
        return bounces[-1]

    direct, copied = _write(
        direct_dir / "c.fits", header, pixels, padding, write_chunk=recorder, bounce=bounce
    )
    assert (direct_dir / "c.fits").read_bytes() == _expected(header, pixels, padding)
    assert direct == recorder.direct_bytes  # what it says went direct did
    body = (nbytes - min(-len(header) % ALIGN, nbytes)) // ALIGN * ALIGN
    assert direct == body  # all the aligned middle, nothing else
    assert copied == (0 if at_phase else body)
    assert len(bounces) == (1 if body and not at_phase else 0)


def test_buffered_when_asked_or_without_bounce(direct_dir: Path) -> None:
    header = b" " * 2880
    pixels, _ = aligned_empty((10 * ALIGN,), np.uint8, phase=1)
    pixels[:] = 7
    recorder = _Recorder()
    assert _write(direct_dir / "a.fits", header, pixels, 0, write_chunk=recorder, direct=False) == (
        0,
        0,
    )
    assert _write(direct_dir / "b.fits", header, pixels, 0, write_chunk=recorder) == (0, 0)
    assert recorder.direct_bytes == 0
    for name in ("a.fits", "b.fits"):
        assert (direct_dir / name).read_bytes() == header + pixels.tobytes()


def test_short_direct_write_finishes_buffered(direct_dir: Path) -> None:
    header = b"h" * 2880
    pixels, _ = aligned_empty((20 * ALIGN,), np.uint8, phase=2880)
    pixels[:] = np.arange(pixels.size) % 251
    short = [True]

    def write_chunk(fd: int, data: memoryview) -> int:
        direct = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT
        if direct and short[0] and len(data) > ALIGN:
            short[0] = False
            return os.write(fd, data[:ALIGN])  # the disk took one block only
        assert not (direct and not short[0]), "O_DIRECT kept after a short write"
        return os.write(fd, data)

    direct, _ = _write(direct_dir / "c.fits", header, pixels, 0, write_chunk=write_chunk)
    assert direct == ALIGN
    assert (direct_dir / "c.fits").read_bytes() == header + pixels.tobytes()


def test_refused_alignment_falls_back_to_buffered(direct_dir: Path) -> None:
    header = b"h" * 2880
    pixels, _ = aligned_empty((9 * ALIGN + 5,), np.uint8, phase=2880)
    pixels[:] = 3
    calls = [0]

    def write_chunk(fd: int, data: memoryview) -> int:
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            calls[0] += 1
            if calls[0] == 2:  # a disk refusing the alignment part-way
                raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        return os.write(fd, data)

    direct, _ = _write(
        direct_dir / "c.fits", header, pixels, 11, write_chunk=write_chunk, chunk=4 * ALIGN
    )
    assert direct == 4 * ALIGN
    assert (direct_dir / "c.fits").read_bytes() == header + pixels.tobytes() + bytes(11)


def test_disk_full_during_direct_write_raises(direct_dir: Path) -> None:
    header = b"h" * 2880
    pixels, _ = aligned_empty((9 * ALIGN,), np.uint8, phase=2880)

    def write_chunk(fd: int, data: memoryview) -> int:
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return os.write(fd, data)

    fd = os.open(direct_dir / "c.fits", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        with pytest.raises(OSError, match="No space") as info:
            write_cube_file(fd, header, pixels, 0, write_chunk=write_chunk, chunk=ALIGN)
        assert info.value.errno == errno.ENOSPC
        assert not fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT  # back to buffered for salvage
    finally:
        os.close(fd)


def test_cube_writer_copies_nothing_when_the_buffer_is_at_the_header_phase(
    direct_dir: Path, check_cube
) -> None:
    frames = frames_u16(6, shape=(120, 130))
    job = make_job(direct_dir, frames)
    writer = CubeWriter()
    first = writer.write(job)  # a plain numpy cube: bounced through the scratch buffer
    assert first.ok, first.error
    assert first.direct_bytes > 0
    assert first.copied_bytes == first.direct_bytes
    assert writer.memory_bytes > 0
    check_cube(first.path, frames)

    cube, _ = aligned_empty(job.cube.shape, job.cube.dtype, phase=first.header_bytes)
    for k, frame in enumerate(frames):
        frame_to_fits(frame, cube[k])
    t0 = float(job.times.acquisition_time[0]) + 10
    job2 = attrs.evolve(make_job(direct_dir, frames, t0=t0), cube=cube)
    second = writer.write(job2)
    assert second.ok, second.error
    assert second.header_bytes == first.header_bytes
    assert second.direct_bytes > 0
    assert second.copied_bytes == 0
    check_cube(second.path, frames)


def test_cube_writer_buffered_option(tmp_path: Path, check_cube) -> None:
    frames = frames_u16(4, shape=(64, 64))
    result = CubeWriter(direct=False).write(make_job(tmp_path, frames))
    assert result.ok, result.error
    assert (result.direct_bytes, result.copied_bytes) == (0, 0)
    check_cube(result.path, frames)


def test_logger_keeps_its_buffers_at_the_header_phase(
    shm_dir, direct_dir: Path, check_cube
) -> None:
    """The buffers sit at the header's phase: nothing copied before O_DIRECT."""
    from vampires.fitslog.logger import Logger
    from vampires.fitslog.policy import CubePolicy
    from vampires.stream import Stream

    shape = (64, 96)
    with Stream.create("vcam1", shape, "uint16") as stream:
        stream.keywords.update({"EXPTIME": 0.001, "DATA-TYP": "OBJECT", "EXTTRIG": True})
        with Logger("vcam1", CubePolicy(frames_per_cube=3), dirname=direct_dir, buffers=3) as log:
            log.start()
            for k in range(5):
                publish_lockstep(stream, log, 3)
                # each cube written before the next starts: on a busy machine the
                # writer may lag, and a frame with no free buffer is dropped (a
                # rate question, measured in benchmarks/, not what this test checks)

                def written(k: int = k) -> bool:
                    return log.status().files == k + 1

                wait_for(written, 30)
            log.pause()
            assert log.wait_idle(30)
            assert log.status().dropped == 0
            header_bytes = {len(fits.Header.fromfile(p).tostring()) for p in cubes_in(direct_dir)}
            (length,) = header_bytes  # same header length for every cube of the run
            free = list(log._pool.free)
            assert free
            assert all(phase_of(b.cube) == length % ALIGN for b in free)
            # phase right from the first cube (estimated at attach): no scratch buffer ever
            assert log.status().memory_bytes == 3 * (3 * shape[0] * shape[1] * 2)
    cubes = cubes_in(direct_dir)
    assert len(cubes) == 5
    for path in cubes:
        check_frames_match_sidecar(check_cube, path)
