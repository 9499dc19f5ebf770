"""The logger catches up from the stream's circular buffer: bursts lose nothing."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from astropy.io import fits

from tests.helpers import wait_for
from vampires.fitslog.logger import Logger
from vampires.fitslog.policy import CubePolicy
from vampires.stream import Stream


def test_bursts_faster_than_the_reader_are_all_logged(tmp_path: Path) -> None:
    with Stream.create("burst", (16, 24), np.uint16, circular_buffer=16) as stream:
        stream.write(np.zeros((16, 24), np.uint16))
        with Logger("burst", CubePolicy(frames_per_cube=25), dirname=tmp_path) as log:
            log.start()
            wait_for(lambda: log.status().attached, 30, "the logger to attach")
            k = 0
            for _ in range(5):  # 10 frames back to back, far faster than a wake-up
                for _ in range(10):
                    k += 1
                    stream.write(np.full((16, 24), k, np.uint16))
                time.sleep(0.2)
            wait_for(lambda: log.status().frames == 50, 30, "50 frames logged")
            log.pause()  # both cubes are full: nothing to truncate
            log.wait_idle(timeout=30)
            status = log.status()
        stream.destroy()
    assert status.dropped == 0
    cubes = sorted(tmp_path.glob("burst_*.fits"))
    assert len(cubes) == 2
    values = np.concatenate([fits.getdata(p)[:, 0, 0] for p in cubes])
    assert values.tolist() == list(range(1, 51))
