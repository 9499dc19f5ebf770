from __future__ import annotations

import datetime as dt
import errno
import os
import threading
import time

import pytest
from astropy.io import fits

from tests.helpers import (
    LOG_SHAPE,
    check_frames_match_sidecar,
    cubes_in,
    frame_for,
    publish_lockstep,
    wait_for,
)
from vampires.errors import ConfigError, LoggerError
from vampires.fitslog.logger import Logger as _Logger
from vampires.fitslog.logger import LoggerState
from vampires.fitslog.policy import CubePolicy
from vampires.stream import Stream

SHAPE = LOG_SHAPE


def Logger(*args, **kwargs) -> _Logger:
    """The logger with a third buffer: these tests close tiny cubes faster than an fsync
    returns, which with milk's two buffers drops (and counts) a frame now and then."""
    kwargs.setdefault("buffers", 3)
    return _Logger(*args, **kwargs)


def test_three_cubes_byte_exact(stream, tmp_path, check_cube) -> None:
    with Logger("vcam1", CubePolicy(frames_per_cube=10, cubes=3), root=tmp_path) as log:
        assert log.status().state == LoggerState.IDLE
        log.start()
        assert log.status().state == LoggerState.SAVING
        publish_lockstep(stream, log, 30)
        assert log.wait_idle(10)
        status = log.status()
    assert status.files == 3
    assert status.frames == 30
    assert status.dropped == 0
    assert status.error is None
    files = cubes_in(tmp_path)
    assert len(files) == 3
    counters = []
    for index, path in enumerate(files):
        assert path.parent.parent.parent == tmp_path
        assert path.parent.name == "vcam1"
        _, header, times = check_frames_match_sidecar(check_cube, path)
        assert header["NAXIS3"] == 10
        assert header["LOGCLOSE"] == "full"
        assert header["LOGCUBE"] == index
        assert header["LOGDROP"] == 0
        assert header["LOGDRPIN"] == 0
        assert header["EXPTIME"] == 0.001
        assert header["EXTTRIG"] is True
        assert header["DATA-TYP"] == "OBJECT"
        counters += list(times.cnt0)
    assert counters == list(range(1, 31))
    assert status.last_file == files[-1]


def test_exptime_change_mid_cube_splits(stream, tmp_path, check_cube) -> None:
    with Logger("vcam1", CubePolicy(frames_per_cube=100), dirname=tmp_path) as log:
        log.start()
        publish_lockstep(stream, log, 4)
        publish_lockstep(stream, log, 3, keywords={"EXPTIME": 0.002})
        publish_lockstep(stream, log, 2, keywords={"DATA-TYP": "DARK"})
        log.pause()
        assert log.wait_idle(10)
    files = cubes_in(tmp_path)
    headers = [check_frames_match_sidecar(check_cube, p)[1] for p in files]
    assert [h["NAXIS3"] for h in headers] == [4, 3, 2]
    assert [h["EXPTIME"] for h in headers] == [0.001, 0.002, 0.002]
    assert [h["DATA-TYP"] for h in headers] == ["OBJECT", "OBJECT", "DARK"]
    assert [h["LOGCLOSE"] for h in headers] == ["keyword", "keyword", "stopped"]
    assert all(p.parent == tmp_path for p in files)


def test_crop_change_reattaches(stream, tmp_path, check_cube, shm_dir) -> None:
    with Logger("vcam1", CubePolicy(frames_per_cube=100), root=tmp_path) as log:
        log.start()
        publish_lockstep(stream, log, 5)
        bigger = Stream.create("vcam1", (32, 36), "uint16", exist_ok=True)  # new size
        try:
            bigger.keywords.update({"EXPTIME": 0.001, "PRD-RNG1": 36})
            wait_for(lambda: log.status().frame_shape == (32, 36))
            publish_lockstep(bigger, log, 6)
            log.pause()
            assert log.wait_idle(10)
            status = log.status()
        finally:
            bigger.close()
    assert status.dropped == 0
    files = cubes_in(tmp_path)
    data = [check_frames_match_sidecar(check_cube, p) for p in files]
    assert [d[0].shape for d in data] == [(5, 24, 20), (6, 32, 36)]
    assert [d[1]["LOGCLOSE"] for d in data] == ["resized", "stopped"]
    assert data[1][1]["PRD-RNG1"] == 36


def test_timeout_closes_cube_after_silence(stream, tmp_path, check_cube) -> None:
    policy = CubePolicy(frames_per_cube=100, timeout=0.3)
    with Logger("vcam1", policy, root=tmp_path) as log:
        log.start()
        publish_lockstep(stream, log, 3)
        wait_for(lambda: log.status().files == 1)
        publish_lockstep(stream, log, 2)
        log.pause()
        assert log.wait_idle(10)
        assert log.status().files == 2
    headers = [check_frames_match_sidecar(check_cube, p)[1] for p in cubes_in(tmp_path)]
    assert [(h["NAXIS3"], h["LOGCLOSE"]) for h in headers] == [(3, "timeout"), (2, "stopped")]


@pytest.mark.slow
def test_adaptive_timeout_keeps_slow_exposures_together(stream, tmp_path, check_cube) -> None:
    stream.keywords["EXPTIME"] = 0.6  # adaptive limit: max(2 s, 5 x 0.6 s) = 3 s
    with Logger("vcam1", CubePolicy(frames_per_cube=100), root=tmp_path) as log:
        log.start()
        publish_lockstep(stream, log, 1)
        time.sleep(2.3)  # longer than milk's fixed 2 s timeout
        publish_lockstep(stream, log, 1)
        assert log.status().files == 0
        log.pause()
        assert log.wait_idle(10)
    (path,) = cubes_in(tmp_path)
    assert check_frames_match_sidecar(check_cube, path)[1]["NAXIS3"] == 2


def test_next_cube_last_cube_and_policy_change(stream, tmp_path, check_cube) -> None:
    with Logger("vcam1", CubePolicy(frames_per_cube=4), root=tmp_path) as log:
        log.start()
        publish_lockstep(stream, log, 2)
        log.next_cube()
        log.set_policy(CubePolicy(frames_per_cube=3))
        publish_lockstep(stream, log, 4)  # cube of 3 (new policy), then 1 frame
        log.pause(wait_for_cube=True)
        assert log.status().state == LoggerState.FINISHING
        publish_lockstep(stream, log, 2)  # completes the last cube
        assert log.wait_idle(10)
        stream.write(frame_for(99))  # not saving any more
        time.sleep(0.05)
        status = log.status()
    headers = [check_frames_match_sidecar(check_cube, p)[1] for p in cubes_in(tmp_path)]
    assert [(h["NAXIS3"], h["LOGCLOSE"]) for h in headers] == [
        (2, "next"),
        (3, "full"),
        (3, "full"),
    ]
    assert status.files == 3
    assert status.frames == 8
    assert status.state == LoggerState.IDLE


def test_throttled_writer_counts_drops_and_keeps_cubes_consistent(
    stream, tmp_path, check_cube
) -> None:
    def slow_write(fd: int, data: memoryview) -> int:
        time.sleep(0.04)  # ~0.16 s per cube: far slower than the 16 ms it takes to fill
        return os.write(fd, data)

    published = 0
    with Logger(
        "vcam1", CubePolicy(frames_per_cube=8), root=tmp_path, buffers=2, write_chunk=slow_write
    ) as log:
        log.start()
        for _ in range(300):
            stream.write(frame_for(stream.cnt0 + 1))
            published += 1
            time.sleep(0.002)
        time.sleep(0.05)
        log.pause()
        assert log.wait_idle(30)
        status = log.status()
    files = cubes_in(tmp_path)
    assert status.dropped > 0, (status, published)
    in_files = 0
    seen: set[int] = set()
    names = set()
    for path in files:
        _, header, times = check_frames_match_sidecar(check_cube, path, verify=False)
        in_files += header["NAXIS3"]
        assert not seen & set(times.cnt0.tolist())
        seen |= set(times.cnt0.tolist())
        names.add(path.name)
    assert in_files == status.frames
    assert in_files + status.dropped == published
    assert len(names) == len(files) == status.files
    # every drop between cubes is written in the next cube's header
    logdrop = sum(fits.getheader(p)["LOGDROP"] + fits.getheader(p)["LOGDRPIN"] for p in files)
    assert logdrop <= status.dropped
    assert logdrop > 0


def test_disk_full_then_space_returns(stream, tmp_path, check_cube) -> None:
    full = threading.Event()

    def flaky_write(fd: int, data: memoryview) -> int:
        if full.is_set():
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return os.write(fd, data)

    with Logger(
        "vcam1", CubePolicy(frames_per_cube=5), root=tmp_path, write_chunk=flaky_write
    ) as log:
        log.start()
        publish_lockstep(stream, log, 5)
        wait_for(lambda: log.status().files == 1)
        full.set()
        publish_lockstep(stream, log, 5)
        wait_for(lambda: log.status().error is not None)
        error = log.status().error
        assert log.status().state == LoggerState.SAVING
        full.clear()
        publish_lockstep(stream, log, 5)
        wait_for(lambda: log.status().files == 2)
        status = log.status()
        log.pause()
    assert "disk full" in error
    assert status.error is None
    assert status.dropped == 5
    assert status.frames == 10
    files = cubes_in(tmp_path)
    assert len(files) == 2
    header = check_frames_match_sidecar(check_cube, files[1])[1]
    assert header["LOGDROP"] == 5
    assert not list(tmp_path.rglob("*.tmp"))


class FakeClock:
    def __init__(self, t: float) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def test_midnight_rollover_new_folder(stream, tmp_path, check_cube) -> None:
    midnight = dt.datetime(2024, 6, 12, tzinfo=dt.UTC).timestamp()
    clock = FakeClock(midnight - 0.25)
    with Logger(
        "vcam1",
        CubePolicy(frames_per_cube=3),
        root=tmp_path,
        clock=clock,
        time_source="logger",
    ) as log:
        log.start()
        for k in range(6):
            clock.t = midnight - 0.25 + 0.1 * k
            publish_lockstep(stream, log, 1)
        log.pause()
        assert log.wait_idle(10)
    first, second = cubes_in(tmp_path)
    assert first.parent == tmp_path / "20240611" / "vcam1"
    assert second.parent == tmp_path / "20240612" / "vcam1"
    assert first.name.startswith("vcam1_23:59:59.7500")
    assert second.name.startswith("vcam1_00:00:00.0")
    h1 = check_frames_match_sidecar(check_cube, first)[1]
    h2 = check_frames_match_sidecar(check_cube, second)[1]
    assert h1["DATE-OBS"] == "2024-06-11"
    assert h2["DATE-OBS"] == "2024-06-12"
    assert h1["UT-END"].startswith("23:59:59.9")
    assert h2["UT-STR"].startswith("00:00:00.0")
    assert h2["LOGTSRC"] == "LOG"


def test_acquisition_time_names_the_cube(stream, tmp_path, check_cube) -> None:
    t0 = dt.datetime(2024, 6, 11, 23, 59, 59, 900000, tzinfo=dt.UTC).timestamp()
    with Logger(
        "vcam1", CubePolicy(frames_per_cube=2), root=tmp_path, time_source="acquisition"
    ) as log:
        log.start()
        for k in range(4):
            publish_lockstep(stream, log, 1, acquisition_time=t0 + 0.1 * k)
        log.pause()
        assert log.wait_idle(10)
    first, second = cubes_in(tmp_path)
    assert first.parent.parent.name == "20240611"
    assert second.parent.parent.name == "20240612"
    assert second.name.startswith("vcam1_00:00:00.1")
    times = check_frames_match_sidecar(check_cube, second)[2]
    assert times.acquisition_time[0] == pytest.approx(t0 + 0.2, abs=1e-6)


def test_stream_appears_later_and_status(tmp_path, shm_dir) -> None:
    with Logger("late", CubePolicy(frames_per_cube=2), root=tmp_path) as log:
        wait_for(lambda: log.status().error is not None)
        assert "not found" in log.status().error
        assert not log.status().attached
        log.start()
        stream = Stream.create("late", SHAPE, "uint16")
        try:
            stream.write(frame_for(1))  # probably before the logger attaches: logged or counted
            stream.write(frame_for(2))
            wait_for(lambda: log.status().attached)
            publish_lockstep(stream, log, 2)
            wait_for(lambda: log.status().frames + log.status().dropped == 4)
            assert log.wait_idle(0.1) is False  # still saving: -1 cubes
            wait_for(lambda: log.status().files == 1)
            status = log.status()
            assert status.error is None
            assert status.memory_bytes >= 2 * 24 * 20 * 2
            assert status.frame_shape == SHAPE
            assert status.folder == status.last_file.parent
        finally:
            stream.close()


def test_bad_input(tmp_path, stream) -> None:
    policy = CubePolicy(frames_per_cube=2)
    with pytest.raises(ConfigError, match="stream name"):
        Logger("../etc", policy, root=tmp_path)
    with pytest.raises(ConfigError, match="CubePolicy"):
        Logger("vcam1", {"frames_per_cube": 2}, root=tmp_path)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="root"):
        Logger("vcam1", policy)
    with pytest.raises(ConfigError, match="buffers"):
        Logger("vcam1", policy, root=tmp_path, buffers=1)
    with pytest.raises(ConfigError, match="time_source"):
        Logger("vcam1", policy, root=tmp_path, time_source="gps")
    # issue 13 item 11: a folder it can never write to is refused at once
    for folder in ("/proc/nope", tmp_path / "file" / "sub"):
        (tmp_path / "file").write_text("x")
        with pytest.raises(ConfigError, match="cannot create the folder"):
            Logger("vcam1", policy, dirname=folder)
        with pytest.raises(ConfigError, match="cannot create the folder"):
            Logger("vcam1", policy, root=folder)
        (tmp_path / "file").unlink()
    log = Logger("vcam1", policy, root=tmp_path)
    with pytest.raises(ConfigError):
        log.set_policy(3)  # type: ignore[arg-type]
    log.close()
    log.close()  # idempotent
    with pytest.raises(LoggerError, match="closed"):
        log.start()
    assert not list(tmp_path.iterdir())


def test_close_finishes_the_cube(stream, tmp_path, check_cube) -> None:
    log = Logger("vcam1", CubePolicy(frames_per_cube=50), root=tmp_path)
    log.start()
    publish_lockstep(stream, log, 3)
    log.close(finish_cube=True, timeout=0.5)  # no more frames: truncated after the timeout
    (path,) = cubes_in(tmp_path)
    assert check_frames_match_sidecar(check_cube, path)[1]["NAXIS3"] == 3
    assert log.status().memory_bytes == 0


def test_unwritable_folder_then_fixed(stream, tmp_path, check_cube) -> None:
    blocker = tmp_path / "not-a-folder"
    with Logger("vcam1", CubePolicy(frames_per_cube=3), dirname=blocker / "sub") as log:
        # the folder is checked at construction; it goes away afterwards
        (blocker / "sub").rmdir()
        blocker.rmdir()
        blocker.write_text("x")
        log.start()
        publish_lockstep(stream, log, 3)
        wait_for(lambda: log.status().error is not None)
        assert "cannot write" in log.status().error
        assert log.status().dropped == 3
        log.set_folder(dirname=tmp_path / "ok")
        publish_lockstep(stream, log, 3)
        wait_for(lambda: log.status().files == 1)
        log.pause()
        status = log.status()
    assert status.error is None
    (path,) = (tmp_path / "ok").glob("*.fits")
    assert check_frames_match_sidecar(check_cube, path)[1]["LOGDROP"] == 3


def test_logger_import_is_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, vampires.fitslog.logger, vampires.fitslog.writer\n"
        "bad = [m for m in ('numba', 'astropy') if m in sys.modules]\n"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_rolling_buffer_stream(tmp_path, shm_dir, check_cube) -> None:
    ring = Stream.create("ring", (4, *SHAPE), "uint16")
    try:
        with Logger("ring", CubePolicy(frames_per_cube=5, cubes=1), root=tmp_path) as log:
            log.start()
            for _ in range(5):
                before = log.status().frames
                ring.write(frame_for(ring.cnt0 + 1))  # 2-D frame into slice cnt1

                def taken(b: int = before) -> bool:
                    return log.status().frames > b

                wait_for(taken)
            assert log.wait_idle(10)
    finally:
        ring.close()
    (path,) = cubes_in(tmp_path)
    data, _, times = check_frames_match_sidecar(check_cube, path, keys=False)
    assert data.shape == (5, *SHAPE)
    assert list(times.cnt1) == [0, 1, 2, 3, 0], path.with_suffix(".txt").read_text()


def test_stop_is_the_deprecated_name_of_pause(stream, tmp_path) -> None:
    with Logger("vcam1", CubePolicy(frames_per_cube=100), dirname=tmp_path) as log:
        log.start()
        with pytest.deprecated_call(match=r"Logger\.pause\(\)"):
            log.stop()
        assert log.wait_idle(10)


@pytest.mark.parametrize("buffers", [15, 16])
def test_many_buffers_without_max_buffers_grow_to_at_most_16(stream, tmp_path, buffers) -> None:
    with Logger("vcam1", CubePolicy(frames_per_cube=2), dirname=tmp_path, buffers=buffers) as log:
        assert log.status().state is not None  # made: the default max is capped at 16, not refused
    with pytest.raises(ConfigError, match="max_buffers"):
        Logger("vcam1", CubePolicy(frames_per_cube=2), dirname=tmp_path, buffers=4, max_buffers=17)


def test_saving_takes_the_objects_of_start_up_out_of_the_garbage_collector(
    stream, tmp_path
) -> None:
    """A full collection would walk them on the reader's time (frames lost at random)."""
    import gc

    gc.unfreeze()
    with Logger("vcam1", CubePolicy(frames_per_cube=4), dirname=tmp_path) as log:
        assert gc.get_freeze_count() == 0
        log.start()
        assert gc.get_freeze_count() > 0
        log.pause()
