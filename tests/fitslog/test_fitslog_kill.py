from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

from vampires.cli.recover import main as recover_main
from vampires.stream import Stream

SHAPE = (200, 160)

CHILD = textwrap.dedent(
    """
    import os, sys, time
    from vampires.fitslog.logger import Logger
    from vampires.fitslog.policy import CubePolicy

    def crawl(fd, data):  # a very slow disk: the cube stays a .tmp for seconds
        time.sleep(0.01)
        return os.write(fd, data[:16384])

    log = Logger("vcam1", CubePolicy(frames_per_cube=10), root=sys.argv[1], write_chunk=crawl)
    log.start()
    print("ready", flush=True)
    time.sleep(60)
    """
)


def frame_for(cnt0: int) -> np.ndarray:
    flat = (np.arange(SHAPE[0] * SHAPE[1], dtype=np.int64) * 7 + cnt0 * 331) % 65536
    return flat.astype(np.uint16).reshape(SHAPE)


@pytest.mark.integration
def test_kill_9_then_recover(tmp_path, shm_dir, check_cube, capsys) -> None:
    stream = Stream.create("vcam1", SHAPE, "uint16")
    stream.keywords.update({"EXPTIME": 0.01, "EXTTRIG": False})
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "MILK_SHM_DIR": str(shm_dir)},
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        for _ in range(14):  # one full cube (being written) and 4 frames of the next
            stream.write(frame_for(stream.cnt0 + 1))
            time.sleep(0.01)
        deadline = time.monotonic() + 20
        tmp = []
        while time.monotonic() < deadline:
            tmp = list(tmp_path.rglob("*.fits.tmp"))
            if tmp and tmp[0].stat().st_size > 2880 * 4 + 3 * SHAPE[0] * SHAPE[1] * 2:
                break
            time.sleep(0.02)
        assert tmp, "the child never started writing"
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
        child.stdout.close()
        stream.close()
    assert not list(tmp_path.rglob("*.fits"))
    assert list(tmp_path.rglob("*.txt.tmp"))
    assert recover_main([str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "frames kept" in out
    (path,) = tmp_path.rglob("*.fits")
    data, header, times = check_cube(path)
    assert 3 <= header["NAXIS3"] < 10
    assert header["LOGCLOSE"] == "recovered"
    for k, cnt0 in enumerate(times.cnt0):
        assert np.array_equal(data[k], frame_for(int(cnt0)))
    assert not list(tmp_path.rglob("*.tmp"))
    assert recover_main([str(tmp_path)]) == 0  # nothing left: idempotent
