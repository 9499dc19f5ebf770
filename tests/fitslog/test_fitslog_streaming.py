"""The streaming writer inside a logger: disk full mid-cube, SIGTERM with cubes queued."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from tests.helpers import frame_for, publish_lockstep, wait_for
from vampires.cli.recover import main as recover_main
from vampires.control.client import ControlClient
from vampires.errors import ConfigError, VampiresError
from vampires.fitslog.logger import Logger
from vampires.fitslog.policy import CubePolicy
from vampires.fitslog.recover import ASIDE_SUFFIX
from vampires.stream import Stream


class Gate:
    """os.write that fails with ENOSPC while ``full`` (a disk that fills, then frees)."""

    def __init__(self) -> None:
        self.full = False
        self.refused = 0

    def __call__(self, fd: int, data: memoryview) -> int:
        if self.full:
            self.refused += 1
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return os.write(fd, data)


def cubes_by_first_frame(folder: Path) -> list[tuple[Path, fits.Header, np.ndarray]]:
    out = []
    for path in folder.rglob("*.fits"):
        cnt0 = np.loadtxt(path.with_suffix(".txt"), comments="#", ndmin=2)[:, 1].astype(int)
        out.append((path, fits.getheader(path), cnt0))
    return sorted(out, key=lambda c: c[2][0])


def test_disk_full_during_a_streaming_write_keeps_exact_accounting(
    stream, tmp_path, check_cube
) -> None:
    gate = Gate()
    policy = CubePolicy(frames_per_cube=10, flush_interval=0.02)  # flushes inside each cube
    with Logger("vcam1", policy, dirname=tmp_path, write_chunk=gate) as log:
        log.start()
        publish_lockstep(stream, log, 25)
        wait_for(lambda: log.status().on_disk_frames > 0 or log.status().files >= 2)
        gate.full = True
        publish_lockstep(stream, log, 30)
        wait_for(lambda: "disk full" in (log.status().error or ""))
        gate.full = False
        publish_lockstep(stream, log, 35)
        log.pause()
        assert log.wait_idle(30)
        status = log.status()
    published = 90
    cubes = cubes_by_first_frame(tmp_path)
    kept = sum(len(c[2]) for c in cubes)
    assert gate.refused > 0
    assert status.frames == kept
    assert status.frames + status.dropped == published
    assert kept < published
    previous_last = 0
    for path, header, cnt0 in cubes:
        data, _header, times = check_cube(path)
        for k, c in enumerate(times.cnt0.tolist()):
            assert np.array_equal(data[k], frame_for(c, stream.shape))
        # LOGDROP of each cube = frames lost right before it (cnt0 gap), never a cube late
        assert header["LOGDROP"] == cnt0[0] - previous_last - 1, path.name
        assert header["LOGDRPIN"] == int(np.sum(np.diff(cnt0) - 1)), path.name
        previous_last = cnt0[-1]
    assert not list(tmp_path.rglob("*.tmp"))


def test_sigterm_with_cubes_queued_writes_every_frame_taken(tmp_path, shm_dir, check_cube) -> None:
    shape = (256, 256)
    with Stream.create("vcam1", shape, "uint16") as stream:
        stream.keywords.update({"EXPTIME": 0.005, "EXTTRIG": False})
        argv = ["vampires", "logger", "run", "vcam1", "--dir", str(tmp_path), "--cube-size", "4"]
        daemon = subprocess.Popen(
            [sys.executable, "-m", *argv[0:1], *argv[1:]],
            env={**os.environ, "MILK_SHM_DIR": str(shm_dir)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            with ControlClient("logger", "vcam1", timeout=5.0) as client:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:
                    try:
                        client.call("ping")
                        break
                    except VampiresError:
                        time.sleep(0.2)
                assert client.call("on")["state"] in ("saving", "preparing")
                wait_for(lambda: client.call("status")["logger"]["state"] == "saving", 60)
                for _ in range(60):  # 15 cubes as fast as we can: the writer falls behind
                    stream.write(frame_for(stream.cnt0 + 1, shape))
                    time.sleep(0.002)

                def accounted() -> bool:
                    st = client.call("status")["logger"]
                    return st["frames"] + st["dropped"] >= 60

                wait_for(accounted, 60)
                st = client.call("status")["logger"]
            daemon.send_signal(signal.SIGTERM)
            assert daemon.wait(timeout=120) == 0
        finally:
            if daemon.poll() is None:
                daemon.kill()
                daemon.wait()
    total = 0
    for path, _header, _cnt0 in cubes_by_first_frame(tmp_path):
        data, header, times = check_cube(path)
        total += header["NAXIS3"]
        for k, c in enumerate(times.cnt0.tolist()):
            assert np.array_equal(data[k], frame_for(c, shape))
    assert total == st["frames"]  # every frame taken before SIGTERM is in a file
    assert not list(tmp_path.rglob("*.tmp"))


@pytest.mark.parametrize("content", [b"", b"SIMPLE  =                    T"])
def test_recover_sets_aside_a_tmp_with_no_complete_frame(tmp_path, capsys, content) -> None:
    empty = tmp_path / "vcam1_01:02:03.000000000.fits.tmp"
    empty.write_bytes(content)
    side = tmp_path / "vcam1_01:02:03.000000000.txt.tmp"
    side.write_text("# title\n         0          7     0.000000000 1.000000000 0.000000 7 0\n")
    assert recover_main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "set aside" in out
    assert "1 frames listed in its sidecar are lost" in out
    assert (tmp_path / (empty.name + ASIDE_SUFFIX)).read_bytes() == content
    assert (tmp_path / (side.name + ASIDE_SUFFIX)).exists()
    assert recover_main([str(tmp_path)]) == 0
    assert "nothing to recover" in capsys.readouterr().out


def test_recover_leaves_a_cube_being_written_alone(stream, tmp_path) -> None:
    with Logger(
        "vcam1", CubePolicy(frames_per_cube=50, flush_interval=0.02), dirname=tmp_path
    ) as log:
        log.start()
        publish_lockstep(stream, log, 5)
        wait_for(lambda: log.status().on_disk_frames == 5)
        (tmp,) = tmp_path.glob("*.fits.tmp")
        assert recover_main([str(tmp_path)]) == 0
        assert tmp.exists()  # locked by the running logger: left alone
        log.pause()
        assert log.wait_idle(30)
    assert not list(tmp_path.glob("*.tmp"))
    assert len(list(tmp_path.glob("*.fits"))) == 1


def test_saving_begins_only_with_every_buffer_paged_in(stream, tmp_path) -> None:
    """13.2: start() returns with the pool ready; with no wait the state says 'preparing'."""
    policy = CubePolicy(frames_per_cube=400)
    cube_bytes = 400 * stream.shape[0] * stream.shape[1] * 2
    with Logger("vcam1", policy, dirname=tmp_path, start_wait=0) as log:
        log.start()
        first = log.status()
        assert first.state.value in ("preparing", "saving")
        wait_for(lambda: log.status().state.value == "saving", 60)
        assert log.status().memory_bytes >= 2 * cube_bytes
        log.pause()
        log.set_policy(CubePolicy(frames_per_cube=300))  # a new pool for the next run
        log.start(ready_timeout=60)
        status = log.status()
        assert status.state.value == "saving"
        assert status.memory_bytes == 2 * 300 * stream.shape[0] * stream.shape[1] * 2
        publish_lockstep(stream, log, 3)
        log.pause()
        assert log.wait_idle(30)
        assert log.status().frames == 3
    with pytest.raises(ConfigError, match="start_wait"):
        Logger("vcam1", policy, dirname=tmp_path, start_wait=-1)


def test_a_writer_behind_gets_a_spare_buffer_and_the_accounting_stays_exact(
    stream, tmp_path, check_cube
) -> None:
    """Issue 19: a slow disk makes the pool grow (up to max_buffers), never silently."""

    def slow(fd: int, data: memoryview) -> int:
        time.sleep(0.3)  # a disk far slower than the camera for a while
        return os.write(fd, data[:65536])

    policy = CubePolicy(frames_per_cube=4, flush_interval=10.0)
    cube_bytes = 4 * stream.shape[0] * stream.shape[1] * 2
    with Logger(
        "vcam1", policy, dirname=tmp_path, write_chunk=slow, buffers=2, max_buffers=3
    ) as log:
        log.start()
        assert log.status().buffers == 2
        deadline = time.monotonic() + 60
        published = 0
        while log.status().buffers < 3 and time.monotonic() < deadline:
            publish_lockstep(stream, log, 1)
            published += 1
            time.sleep(0.02)
        assert log.status().buffers == 3
        assert log.status().memory_bytes == 3 * cube_bytes
        publish_lockstep(stream, log, 6)
        published += 6
        log.pause()
        assert log.wait_idle(120)
        status = log.status()
    assert status.frames + status.dropped == published
    kept = 0
    for path in tmp_path.glob("*.fits"):
        data, _header, times = check_cube(path)
        kept += len(times)
        for k, c in enumerate(times.cnt0.tolist()):
            assert np.array_equal(data[k], frame_for(c, stream.shape))
    assert kept == status.frames
    with pytest.raises(ConfigError, match="max_buffers"):
        Logger("vcam1", policy, dirname=tmp_path, buffers=3, max_buffers=2)
