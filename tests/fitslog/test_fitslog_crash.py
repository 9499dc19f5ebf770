"""Crash safety of the streaming writer: ``kill -9`` at any moment, then ``vampires recover``.

Each test runs a real logger in its own process, publishes tagged frames from
this process (noting when each was published), kills the logger and recovers
the folder. No timing is asserted: what is checked is exactness (every frame
recovered is the frame its sidecar row names, pixel for pixel, fitsverify
clean, rows = NAXIS3) and the promise that every frame published more than
``flush_interval`` before the kill (or before the writer got stuck) is kept.
"""

from __future__ import annotations

import os
import queue
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from vampires.cli.recover import main as recover_main
from vampires.fitslog import open_partial
from vampires.fitslog.recover import ASIDE_SUFFIX
from vampires.stream import Stream
from vampires.testing.cwriter import frame_tag, make_base_frame, tag_frame

FLUSH = 1.0  # s: the default flush interval

CHILD = textwrap.dedent(
    """
    import os, sys, time
    from vampires.fitslog.logger import Logger
    from vampires.fitslog.policy import CubePolicy

    root, mode, per_cube, cubes = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    real_open, real_pwrite, real_write = os.open, os.pwrite, os.write
    state = {"opened": 0, "armed": False}

    def stall(what):
        print(what, flush=True)
        time.sleep(120)

    if mode == "appear":  # stuck right after the 2nd cube file is created (0 bytes)
        def fake_open(path, flags, *a, **k):
            fd = real_open(path, flags, *a, **k)
            if str(path).endswith(".fits.tmp") and flags & os.O_CREAT:
                state["opened"] += 1
                if state["opened"] == 2:
                    stall("appeared")
            return fd
        os.open = fake_open
    if mode in ("rewrite-before", "rewrite-after"):  # the final header rewrite
        def fake_pwrite(fd, data, offset):
            if mode == "rewrite-before":
                stall("rewrite")
            n = real_pwrite(fd, data, offset)
            stall("rewrite")
            return n
        os.pwrite = fake_pwrite

    def chunk(fd, data):
        # during a flush: half of a pixel write, then stuck
        if mode == "flush" and len(data) > 100_000 and os.fstat(fd).st_size > 3_000_000:
            n = real_write(fd, data[: len(data) // 2])
            stall("flushing")
            return n
        return real_write(fd, data)

    log = Logger(
        "vcam1", CubePolicy(frames_per_cube=per_cube, cubes=cubes), root=root, write_chunk=chunk
    )
    log.start()
    print("ready", flush=True)
    time.sleep(120)
    """
)


class Child:
    """The logger process and its output lines."""

    def __init__(self, root: Path, shm_dir: Path, mode: str, per_cube: int, cubes: int = -1):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(root), mode, str(per_cube), str(cubes)],
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "MILK_SHM_DIR": str(shm_dir)},
        )
        self.lines: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.put(line.strip())

    def wait_line(self, text: str, timeout: float = 60) -> bool:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                if self.lines.get(timeout=left) == text:
                    return True
            except queue.Empty:
                break
        return False

    def saw(self, text: str) -> bool:
        try:
            while True:
                if self.lines.get_nowait() == text:
                    return True
        except queue.Empty:
            return False

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class Publisher:
    """Tagged frames (tag = cnt0) written at ``fps``, each with its publish time."""

    def __init__(self, stream: Stream, fps: float) -> None:
        self.stream = stream
        self.period = 1.0 / fps
        self.base = make_base_frame(stream.shape, stream.dtype)
        self.times: dict[int, float] = {}

    def publish(self, seconds: float, *, until: Child | None = None, marker: str = "") -> float:
        """Publish for ``seconds`` (or until the child prints ``marker``); return the stop time."""
        t0 = time.monotonic()
        i = 0
        while time.monotonic() - t0 < seconds:
            if until is not None and marker and until.saw(marker):
                return time.monotonic()
            delay = t0 + i * self.period - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            cnt0 = self.stream.cnt0 + 1
            tag_frame(self.base, cnt0)
            self.stream.write(self.base)
            self.times[cnt0] = time.monotonic()
            i += 1
        return time.monotonic()

    def frame(self, cnt0: int) -> np.ndarray:
        frame = self.base.copy()
        tag_frame(frame, cnt0)
        return frame


def recover_and_check(root: Path, pub: Publisher, check_cube, capsys) -> dict[int, Path]:
    """Run `vampires recover`; check every cube; return {cnt0: cube} of the frames kept.

    Frames the logger never took (its reader was late on this busy machine)
    are not in any cube, but they must be counted: ``LOGDROP`` = the ``cnt0``
    gap before each cube, ``LOGDRPIN`` = the gaps inside it.
    """
    assert recover_main([str(root)]) == 0, capsys.readouterr().out
    assert not [p for p in root.rglob("*.tmp")], list(root.rglob("*"))
    kept: dict[int, Path] = {}
    cubes = []
    for path in root.rglob("*.fits"):
        data, header, times = check_cube(path)  # fitsverify, rows = NAXIS3, name = UT-STR
        assert header["NAXIS3"] == len(times.cnt0) >= 1
        cubes.append((times.cnt0.tolist(), header))
        for k, cnt0 in enumerate(times.cnt0.tolist()):
            assert frame_tag(data[k]) == cnt0, (path.name, k)
            assert np.array_equal(data[k], pub.frame(cnt0)), (path.name, k)
            assert cnt0 not in kept
            kept[cnt0] = path
    previous = 0
    for cnt0, header in sorted(cubes):
        assert header["LOGDROP"] == cnt0[0] - previous - 1
        assert header["LOGDRPIN"] == cnt0[-1] - cnt0[0] + 1 - len(cnt0)
        previous = cnt0[-1]
    assert set(kept) <= set(pub.times)
    return kept


def assert_kept_up_to(kept: dict[int, Path], pub: Publisher, before: float) -> None:
    """Every frame published more than FLUSH before ``before`` is kept or counted as dropped."""
    old = [c for c, t in pub.times.items() if t < before - FLUSH]
    if old:
        assert kept, "nothing recovered"
        assert max(kept) >= max(old), (
            f"frames {max(kept) + 1}..{max(old)}, taken > {FLUSH} s before the kill, are lost"
        )


@pytest.mark.integration
@pytest.mark.parametrize(
    ("shape", "fps", "per_cube", "seconds"),
    [((128, 160), 10.0, 250, (2.2, 3.8)), ((1096, 2236), 60.0, 30, (1.3, 2.2))],
    ids=["10fps-250", "mbi-60fps"],
)
def test_kill_9_at_a_random_moment_loses_at_most_the_flush_interval(
    tmp_path, shm_dir, check_cube, capsys, shape, fps, per_cube, seconds
) -> None:
    with Stream.create("vcam1", shape, "uint16") as stream:
        stream.keywords.update({"EXPTIME": 1 / fps, "EXTTRIG": False})
        child = Child(tmp_path, shm_dir, "random", per_cube)
        try:
            assert child.wait_line("ready"), "logger did not start"
            pub = Publisher(stream, fps)
            killed = pub.publish(random.uniform(*seconds))
            child.kill()
        finally:
            child.kill()
    kept = recover_and_check(tmp_path, pub, check_cube, capsys)
    assert_kept_up_to(kept, pub, killed)


@pytest.mark.integration
def test_kill_9_during_a_flush(tmp_path, shm_dir, check_cube, capsys) -> None:
    with Stream.create("vcam1", (400, 500), "uint16") as stream:
        stream.keywords.update({"EXPTIME": 0.02, "EXTTRIG": False})
        child = Child(tmp_path, shm_dir, "flush", 500)
        try:
            assert child.wait_line("ready"), "logger did not start"
            pub = Publisher(stream, 50.0)
            stuck = pub.publish(30.0, until=child, marker="flushing")
            assert stuck - min(pub.times.values()) < 29, "the writer never flushed"
            child.kill()
        finally:
            child.kill()
    kept = recover_and_check(tmp_path, pub, check_cube, capsys)
    assert_kept_up_to(kept, pub, stuck)
    assert max(kept) < max(pub.times)  # the flush in progress was cut


@pytest.mark.integration
@pytest.mark.parametrize("when", ["rewrite-before", "rewrite-after"])
def test_kill_9_during_the_final_header_rewrite(
    tmp_path, shm_dir, check_cube, capsys, when
) -> None:
    with Stream.create("vcam1", (64, 80), "uint16") as stream:
        stream.keywords.update({"EXPTIME": 0.02, "EXTTRIG": False})
        child = Child(tmp_path, shm_dir, when, 20, cubes=1)
        try:
            assert child.wait_line("ready"), "logger did not start"
            pub = Publisher(stream, 50.0)
            pub.publish(0.5)
            assert child.wait_line("rewrite"), "the cube never closed"
            child.kill()
        finally:
            child.kill()
    (tmp,) = tmp_path.rglob("*.fits.tmp")
    kept = recover_and_check(tmp_path, pub, check_cube, capsys)
    assert len(kept) == 20  # the whole cube, nothing else (drops, if any, are counted)
    from astropy.io import fits

    header = fits.getheader(tmp.with_name(tmp.name.removesuffix(".tmp")))
    assert header["LOGCLOSE"] == "recovered"
    assert header["NAXIS3"] == 20


@pytest.mark.integration
def test_kill_9_as_the_file_appears(tmp_path, shm_dir, check_cube, capsys) -> None:
    with Stream.create("vcam1", (64, 80), "uint16") as stream:
        stream.keywords.update({"EXPTIME": 0.02, "EXTTRIG": False})
        child = Child(tmp_path, shm_dir, "appear", 10)
        try:
            assert child.wait_line("ready"), "logger did not start"
            pub = Publisher(stream, 50.0)
            pub.publish(30.0, until=child, marker="appeared")
            child.kill()
        finally:
            child.kill()
    (empty,) = tmp_path.rglob("*.fits.tmp")
    assert empty.stat().st_size == 0
    kept = recover_and_check(tmp_path, pub, check_cube, capsys)
    assert len(kept) == 10  # the first cube, whole
    out = capsys.readouterr().out
    assert "set aside" in out
    assert empty.with_name(empty.name + ASIDE_SUFFIX).exists()
    assert recover_main([str(tmp_path)]) == 0  # and every later run is clean too


@pytest.mark.integration
def test_a_reader_of_the_tmp_sees_only_complete_frames(tmp_path, shm_dir) -> None:
    """open_partial while the logger writes: every frame it maps is whole and exact."""
    with Stream.create("vcam1", (300, 420), "uint16") as stream:
        stream.keywords.update({"EXPTIME": 0.01, "EXTTRIG": False})
        child = Child(tmp_path, shm_dir, "random", 400)
        try:
            assert child.wait_line("ready"), "logger did not start"
            pub = Publisher(stream, 100.0)
            seen = 0
            looks = 0
            stop = time.monotonic() + 3.0
            while time.monotonic() < stop:
                pub.publish(0.05)
                for tmp in tmp_path.rglob("*.fits.tmp"):
                    cube = open_partial(tmp)
                    looks += 1
                    assert cube.planned == 400
                    for k in range(cube.frames):
                        frame = cube.physical(k)
                        assert frame.dtype == np.uint16
                        tag = frame_tag(frame)
                        assert tag in pub.times, (k, tag)
                        assert np.array_equal(frame, pub.frame(tag))
                    seen = max(seen, cube.frames)
            assert looks
            assert seen > 0
        finally:
            child.kill()
