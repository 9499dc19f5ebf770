"""Simulated camera: sustained frame rate and CPU per camera, against the limits.

Measured in one run, each against its limit measured or known in the same run:

- paced rate at the crop's maximum (STANDARD 518 Hz, MBI 253 Hz, ONEARC
  1510 Hz, and both cameras in MBI at once) vs the requested rate (target:
  within 1 %);
- CPU per camera (fraction of one core) vs the memcpy-only cost of the same
  bytes (the floor: a frame has to be written once into shared memory);
- free-running rate (no pacing: how fast this machine can publish frames)
  vs numpy memcpy of the same frames, and vs the camera's maximum;
- the GenICam backend (Aravis 0.8) against Aravis's fake GigE Vision camera
  on 127.0.0.1 at the fake camera's top rate (1000 Hz requested, its
  AcquisitionFrameRate maximum; it is not a Flea3, so the vpupcam table gets
  a faster line time for this run), beside the simulated backend at the same
  crop and rate. The limit of the GenICam rows is Aravis alone on the same
  fake camera in the same run (pop and push buffers, no stream): what the
  fake camera really delivers on this machine (it falls well short of
  1000 Hz when the machine is loaded). Rows: frames/s vs that limit, CPU per
  frame of this process (Aravis's receive thread + our one copy into the
  stream) vs Aravis alone; the simulated rows compare with the requested
  rate and the memcpy of one frame. The fake camera's own CPU is printed
  apart. Skipped, with the reason, where Aravis
  or its fake camera is not installed (``pip install 'vampires[genicam]'``,
  ``apt install gir1.2-aravis-0.8 aravis-tools``).

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


def _genicam_rows(seconds: float, shm: str) -> list[dict]:
    """GenICam backend vs simulated backend, CROP_VPUP at the fake camera's top rate."""
    from pathlib import Path

    from vampires.camera.backends.genicam import GenicamBackend
    from vampires.camera.backends.simulated import SimulatedBackend
    from vampires.camera.camera import Camera
    from vampires.camera.table import load_camera_table
    from vampires.testing.genicam import FakeGenicamCamera, fake_camera_available

    why = fake_camera_available()
    if why is not None:
        print(f"GenICam rows skipped: {why}")
        return []
    site = Path(shm) / "fake-gv-vpupcam.toml"
    site.write_text("[readout.FAST]\nline_time = 1.9e-6\n")  # 512 rows -> 1028 Hz
    table = load_camera_table("vpupcam", site=site)
    rows: list[dict] = []
    with FakeGenicamCamera(serial="VBENCH01") as fake:
        probe = GenicamBackend(device=fake.device_id)
        probe.open(table)
        top = min(float(probe._cam.get_frame_rate_bounds()[1]), table.max_fps(
            table.crop("CROP_VPUP"), table.default_readout))  # fmt: skip
        probe.close()
        memcpy = _memcpy_fps((512, 512), 1.0)
        per_frame_floor = 1e3 / memcpy
        raw_rate, raw_cpu = _aravis_alone(fake.device_id, top, seconds)
        raw_ms = 1e3 * raw_cpu / raw_rate if raw_rate else float("nan")
        rows.append(
            {"measure": "vpupcam Aravis alone, fake camera [Hz]", "ours": raw_rate, "limit": top,
             "ratio": raw_rate / top, "target": "(what the fake camera delivers here)"}
        )  # fmt: skip
        for kind in ("simulated", "genicam"):
            backend = (
                SimulatedBackend()
                if kind == "simulated"
                else GenicamBackend(device=fake.device_id, gain="max")
            )
            fake_cpu0 = _proc_cpu(fake.pid)
            t0 = time.perf_counter()
            with Camera("vpupcam", backend=backend, table=table, crop="CROP_VPUP",
                        fps=top, tint=1e-4, restore=False) as cam:  # fmt: skip
                (rate,), cpu, _ = _measure([cam], seconds)
                dropped = cam.status().dropped
            fake_cpu = (_proc_cpu(fake.pid) - fake_cpu0) / (time.perf_counter() - t0)
            ms = 1e3 * cpu / rate if rate else float("nan")
            limit, floor = (top, per_frame_floor) if kind == "simulated" else (raw_rate, raw_ms)
            floor_name = "memcpy floor" if kind == "simulated" else "Aravis alone"
            rows += [
                {"measure": f"vpupcam {kind} rate [Hz]", "ours": rate, "limit": limit,
                 "ratio": rate / limit, "target": f">= 0.99 (dropped {dropped})"},
                {"measure": f"vpupcam {kind} CPU per frame [ms]", "ours": ms,
                 "limit": floor, "ratio": floor / ms if ms else float("nan"),
                 "target": f"{floor_name} / ours"},
            ]  # fmt: skip
            if kind == "genicam":
                print(f"(fake camera process: {fake_cpu:.2f} core while streaming)")
    return rows


def _aravis_alone(device: str, fps: float, seconds: float) -> tuple[float, float]:
    """Frames/s and CPU (cores) of Aravis alone on the fake camera: CROP_VPUP, Mono16."""
    from vampires.camera.backends.genicam import load_aravis

    aravis = load_aravis()
    cam = aravis.Camera.new(device)
    cam.set_pixel_format_from_string("Mono16")
    cam.set_region(444, 310, 512, 512)
    cam.set_exposure_time(100.0)
    cam.set_frame_rate(fps)
    stream = cam.create_stream(None, None)
    for _ in range(16):
        stream.push_buffer(aravis.Buffer.new_allocate(cam.get_payload()))
    cam.start_acquisition()
    time.sleep(0.5)  # settle
    n, cpu0, t0 = 0, time.process_time(), time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        buf = stream.timeout_pop_buffer(100_000)
        if buf is not None:
            n += buf.get_status() == aravis.BufferStatus.SUCCESS
            stream.push_buffer(buf)
    wall = time.perf_counter() - t0
    cpu = (time.process_time() - cpu0) / wall
    cam.stop_acquisition()
    return n / wall, cpu


def _proc_cpu(pid: int | None) -> float:
    try:
        import psutil
    except ImportError:
        return 0.0
    if pid is None:
        return 0.0
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


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
        rows += _genicam_rows(seconds, shm)
    finally:
        if old is None:
            os.environ.pop("MILK_SHM_DIR", None)
        else:
            os.environ["MILK_SHM_DIR"] = old
        shutil.rmtree(shm, ignore_errors=True)
    return rows


if __name__ == "__main__":
    import sys

    only_genicam = "--genicam" in sys.argv  # just the GenICam rows
    if only_genicam:
        shm_dir = tempfile.mkdtemp(prefix="vampires-camera-bench-", dir="/dev/shm")
        os.environ["MILK_SHM_DIR"] = shm_dir
        try:
            rows = _genicam_rows(2.0 if "--quick" in sys.argv else 6.0, shm_dir)
        finally:
            shutil.rmtree(shm_dir, ignore_errors=True)
    else:
        rows = run(quick="--quick" in sys.argv)
    for row in rows:
        print(
            f"{row['measure']:<40} ours {row['ours']:>10.4g}  limit {row['limit']:>10.4g}  "
            f"ratio {row['ratio']:>6.3f}  target {row['target']}"
        )
