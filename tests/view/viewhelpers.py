"""Helpers for the viewer tests: a stream writer thread with camera keywords."""

from __future__ import annotations

import threading
import time

import numpy as np

from vampires.camera.keywords import BenchState, camera_keywords
from vampires.camera.modes import ReadoutMode
from vampires.camera.table import load_camera_table
from vampires.stream import Stream


def camera_cards(camera: str, crop_name: str, *, data_type: str = "OBJECT") -> dict:
    """The keywords a simulated camera writes for a crop, ``{name: (value, comment)}``."""
    table = load_camera_table(camera)
    crop = table.crop(crop_name)
    return camera_keywords(
        table,
        crop=crop,
        readout=ReadoutMode.SLOW,
        tint=2.5e-3,
        fps=100.0,
        external_trigger=False,
        data_type=data_type,
        temperature=238.0,
        bench=BenchState(),
    )


def scene(
    shape: tuple[int, int], cnt0: int, spots: tuple[tuple[float, float], ...] = ()
) -> np.ndarray:
    """A frame: bias + gradient + a moving bright square (by cnt0) + a PSF at each spot."""
    height, width = shape
    yy, xx = np.mgrid[0:height, 0:width]
    frame = (200 + (xx * 600) // width + (yy * 200) // height).astype(np.uint16)  # a gradient
    for x, y in spots:
        frame += (3000 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / 800.0)).astype(np.uint16)
    side = max(4, min(shape) // 8)
    x0 = (cnt0 * side) % max(1, width - side)
    frame[:side, x0 : x0 + side] = 4000
    return frame


class Writer:
    """Write ``scene`` frames into a stream at a steady rate in a thread."""

    def __init__(
        self,
        name: str,
        shape: tuple[int, int],
        fps: float = 50.0,
        *,
        keywords: dict | None = None,
        spots: tuple[tuple[float, float], ...] = (),
        nsemaphores: int = 10,
    ) -> None:
        self.stream = Stream.create(
            name, shape, np.uint16, nkeywords=200, nsemaphores=nsemaphores, exist_ok=True
        )
        if keywords:
            self.stream.keywords.update(keywords)
        self.frames = [scene(shape, k, spots) for k in range(4)]
        self.period = 1.0 / fps
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        deadline = time.monotonic()
        k = 0
        while not self.stop.is_set():
            self.stream.write(self.frames[k % len(self.frames)], acquisition_time=time.time())
            k += 1
            deadline += self.period
            delay = deadline - time.monotonic()
            if delay > 0:
                self.stop.wait(delay)

    def __enter__(self) -> Writer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)
        self.stream.close()
