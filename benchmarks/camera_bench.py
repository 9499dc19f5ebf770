"""Simulated camera: sustained frame rate and CPU per camera, against the limits.

Measured in one run, each against its limit measured or known in the same run:

- paced rate at the crop's maximum (STANDARD 518 Hz, MBI 253 Hz, ONEARC
  1510 Hz, and both cameras in MBI at once) vs the requested rate (target:
  within 1 %);
- CPU per camera (fraction of one core) vs the memcpy-only cost of the same
  bytes (the floor: a frame has to be written once into shared memory);
- free-running rate (no pacing: how fast this machine can publish frames)
  vs numpy memcpy of the same frames, and vs the camera's maximum.

Runs cameras in this process (threads), in a private shm folder on /dev/shm.
The machine is shared with other jobs: figures are noisy.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time

import numpy as np


def _memcpy_fps(shape: tuple[int, int], seconds: float) -> float:
    src = np.random.default_rng(0).integers(0, 65535, size=shape, dtype=np.uint16)
    dst = np.empty_like(src)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        np.copyto(dst, src)
        n += 1
    return n / (time.perf_counter() - t0)


def _measure(cams, seconds: float) -> tuple[list[float], float, float]:
    """Frames/s per camera (from stream counters) and process CPU / wall."""
    streams = [c.stream for c in cams]
    time.sleep(0.5)  # settle
    c0 = [s.cnt0 for s in streams]
    cpu0, t0 = time.process_time(), time.perf_counter()
    time.sleep(seconds)
    c1 = [s.cnt0 for s in streams]
    cpu1, t1 = time.process_time(), time.perf_counter()
    wall = t1 - t0
    return [(b - a) / wall for a, b in zip(c0, c1, strict=True)], (cpu1 - cpu0) / wall, wall


def run(quick: bool = False) -> list[dict]:
    from vampires.camera.backends.simulated import SimulatedBackend
    from vampires.camera.camera import Camera

    seconds = 2.0 if quick else 6.0
    shm = tempfile.mkdtemp(prefix="vampires-camera-bench-", dir="/dev/shm")
    old = os.environ.get("MILK_SHM_DIR")
    os.environ["MILK_SHM_DIR"] = shm
    rows: list[dict] = []
    try:
        for crop in ("STANDARD", "MBI", "ONEARC"):
            with Camera("vcam1", crop=crop, restore=False) as cam:
                target = cam.max_fps
                cam.set_fps(target)
                (rate,), cpu, _ = _measure([cam], seconds)
                mfrate = cam.measured_fps
                shape = cam.crop.shape
            memcpy = _memcpy_fps(shape, 1.0)
            floor = target / memcpy  # fraction of a core just to copy the frames
            rows += [
                {"measure": f"{crop} paced rate [Hz]", "ours": rate, "limit": target,
                 "ratio": rate / target, "target": ">= 0.99"},
                {"measure": f"{crop} MFRATE keyword [Hz]", "ours": mfrate, "limit": target,
                 "ratio": mfrate / target, "target": ">= 0.99"},
                {"measure": f"{crop} CPU per camera [core]", "ours": cpu, "limit": floor,
                 "ratio": floor / cpu if cpu else float("nan"), "target": "memcpy floor / ours"},
            ]  # fmt: skip
            if crop == "ONEARC":  # the fastest crop (1510 Hz): pacing only
                continue
            with Camera(
                "vcam1", crop=crop, restore=False, backend=SimulatedBackend(free_run=True)
            ) as cam:
                (free,), cpu, _ = _measure([cam], seconds)
            rows.append(
                {"measure": f"{crop} free-run publish [frames/s]", "ours": free, "limit": memcpy,
                 "ratio": free / memcpy, "target": f"> camera max {target:.0f} Hz"}
            )  # fmt: skip
        cams = [Camera(n, crop="MBI", restore=False) for n in ("vcam1", "vcam2")]
        try:
            for c in cams:
                c.start()
                c.set_fps(c.max_fps)
            rates, cpu, _ = _measure(cams, seconds)
            target = cams[0].max_fps
        finally:
            for c in cams:
                c.close()
        rows.append(
            {"measure": "MBI both cameras paced rate [Hz, min]", "ours": min(rates),
             "limit": target, "ratio": min(rates) / target, "target": ">= 0.99"}
        )  # fmt: skip
        rows.append(
            {"measure": "MBI both cameras CPU [core, total]", "ours": cpu, "limit": 2.0,
             "ratio": cpu / 2.0, "target": "< 1 (2 cores)"}
        )  # fmt: skip
    finally:
        if old is None:
            os.environ.pop("MILK_SHM_DIR", None)
        else:
            os.environ["MILK_SHM_DIR"] = old
        shutil.rmtree(shm, ignore_errors=True)
    return rows


if __name__ == "__main__":
    import sys

    for row in run(quick="--quick" in sys.argv):
        print(
            f"{row['measure']:<40} ours {row['ours']:>10.4g}  limit {row['limit']:>10.4g}  "
            f"ratio {row['ratio']:>6.3f}  target {row['target']}"
        )
