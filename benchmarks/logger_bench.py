"""Logger benchmark: kernels vs memcpy and astropy, logger vs raw disk, zero-drop rates.

Everything is measured in the same run on the same disk, next to milk's
C logger figures from ``shared/reference/milk-logger-measured.md``:

* cube conversion kernel vs numpy memcpy of the same bytes (target >= 0.6) and vs
  astropy ``writeto`` of the same cube (target >= 5x);
* raw sequential write + fsync of the target disk (the limit: the faster of
  buffered and ``O_DIRECT`` writes), before and after;
  our cube writer alone vs raw (same bytes, alternating), and the writer's
  throughput while a logger records a synthetic MBI stream (2236x1096 uint16)
  (target >= 0.9);
* every cube written under load verified: counters stamped in the pixels ==
  sidecar counters, name == first logger time (milk mislabels cubes under load);
* the machine's own floor at 400 fps: a bare reader thread with no logger;
* highest MBI frame rate with zero drops, one camera and two cameras, on disk
  (milk: 30 fps = 147 MB/s, loses a whole cube at 40);
* the logger's own ceiling with the disk out of the way (the writer discards
  the bytes): zero-drop MBI rate;
* two cameras at the operating page's 280 MB/s each for 60 s, null disk and this
  disk: drops (target 0) and CPU per camera;
* 536x536 at 400 fps, 2000-frame cubes: drops (milk drops 9 of 6000).

Headline rows (issue 13/14): the stream written by a C-like process
(:class:`vampires.testing.cwriter.CWriterProcess`: no circular buffer, in place,
absolute-deadline pacing, every frame tagged with its index), frames counted
from the tags in the files: 536x536 at 400 fps with 2000-frame cubes (0 lost,
cube boundaries included), MBI rates; and frames lost at a ``kill -9`` of a
logger process at 10 fps and at the MBI rate, after ``vampires recover``
(goal: at most ``flush_interval`` worth).

Frames are published by separate producer processes (real shm, real semaphores);
the loggers run in this process, so its CPU time is the loggers' cost.

Usage: ``python benchmarks/logger_bench.py [--quick] [--dir DIR]`` (DIR on the disk
to test; default ``$VAMPIRES_BENCH_DIR`` or ``./.benchtmp``). The machine is shared:
figures are noisy, ratios are what to read.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import numpy as np

if TYPE_CHECKING:
    from vampires.fitslog.writer import CubeJob

MBI = (1096, 2236)
MBI2 = (1096, 2240)
STANDARD = (536, 536)
MILK_MBI_FPS = 30.0  # zero-drop MBI rate of milk-streamFITSlog on this machine class
MILK_MBI_MBPS = 147.0
MILK_STD400_DROPS = 9
#: milk runs its logger at real-time priority; we only raise our two threads' nice value.
NICE = -10 if os.geteuid() == 0 else None

PRODUCER = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from vampires.stream import Stream, suggested_circular_buffer
    name, h, w = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    fps, duration = float(sys.argv[4]), float(sys.argv[5])
    # a circular buffer as the camera daemon's streams have (readers catch up from it)
    cb = suggested_circular_buffer((h, w), "uint16")
    s = Stream.create(name, (h, w), "uint16", circular_buffer=cb, exist_ok=True)
    s.keywords.update({"EXPTIME": 0.001, "DATA-TYP": "TEST", "EXTTRIG": True})
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 4096, (h, w), dtype=np.uint16) for _ in range(4)]
    print("ready", flush=True)
    sys.stdin.readline()
    period = 1.0 / fps if fps > 0 else 0.0
    t0 = time.perf_counter()
    n = 0
    while True:
        now = time.perf_counter()
        if now - t0 >= duration:
            break
        if period:
            target = t0 + n * period
            if target - now > 0.0005:
                time.sleep(target - now - 0.0003)
            while time.perf_counter() < target:
                pass
        frame = frames[n % 4]
        c = s.cnt0 + 1  # stamp the counter in the first 4 pixels: cubes are verifiable
        frame[0, :4] = ((c >> 48) & 0xFFFF, (c >> 32) & 0xFFFF, (c >> 16) & 0xFFFF, c & 0xFFFF)
        s.write(frame)
        n += 1
    print(n, flush=True)
    s.close()
    """
)


def _row(measure: str, ours: str, limit: str, ratio: float | str, target: str) -> dict:
    return {"measure": measure, "ours": ours, "limit": limit, "ratio": ratio, "target": target}


def _best(func, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        func()
        best = min(best, time.perf_counter() - t)
    return best


# ---------------------------------------------------------------- kernels


def _synthetic_job(cube: np.ndarray, folder: Path) -> CubeJob:
    """A vcam1 CubeJob of every frame of ``cube`` (FITS int16 storage), 100 fps time stamps."""
    from vampires import kernels
    from vampires.fitslog.sidecar import FrameTimes
    from vampires.fitslog.writer import CubeJob

    n = len(cube)
    now = time.time()
    times = FrameTimes(
        cnt0=np.arange(n, dtype=np.int64),
        cnt1=np.zeros(n, np.int64),
        logger_time=now + 0.01 * np.arange(n),
        acquisition_time=now + 0.01 * np.arange(n),
    )
    return CubeJob(
        stream="vcam1",
        folder=folder,
        cube=cube,
        nframes=n,
        fmt=kernels.fits_format(np.uint16),
        times=times,
    )


def kernel_rows(quick: bool, tmpfs: Path) -> list[dict]:
    from astropy.io import fits

    from vampires import kernels

    kernels.warm_up()
    nframes = 20 if quick else 60
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 65536, MBI, dtype=np.uint16)
    cube = np.empty((nframes, *MBI), ">i2")
    plain = np.empty((nframes, *MBI), np.uint16)
    copy = kernels.cube_copier(np.uint16, cube)
    cube.fill(0)
    plain.fill(0)  # page in both destinations

    def ours() -> None:
        for k in range(nframes):
            copy(frame, k)

    def memcpy() -> None:
        for k in range(nframes):
            np.copyto(plain[k], frame)

    repeat = 3 if quick else 5
    t_ours, t_copy = _best(ours, repeat), _best(memcpy, repeat)
    nbytes = nframes * frame.nbytes
    rows = [
        _row(
            "uint16 -> FITS int16 kernel vs memcpy (MBI frame into cube slot)",
            f"{nbytes / t_ours / 1e9:.2f} GB/s",
            f"memcpy {nbytes / t_copy / 1e9:.2f} GB/s",
            t_copy / t_ours,
            ">= 0.6",
        )
    ]
    cube_u16 = np.ascontiguousarray(np.broadcast_to(frame, (nframes, *MBI)))
    path = tmpfs / f"astropy-{uuid.uuid4().hex}.fits"

    def astropy_writeto() -> None:
        fits.PrimaryHDU(cube_u16).writeto(path, overwrite=True)

    t_astropy = _best(astropy_writeto, 2 if quick else 3)
    path.unlink(missing_ok=True)
    rows.append(
        _row(
            "cube conversion kernel vs astropy writeto (same cube, tmpfs)",
            f"{t_ours * 1e3:.0f} ms",
            f"astropy {t_astropy * 1e3:.0f} ms",
            t_astropy / t_ours,
            ">= 5",
        )
    )
    from vampires.fitslog.writer import CubeWriter

    folder = tmpfs / f"writer-{uuid.uuid4().hex}"
    writer = CubeWriter(fsync=False)
    job = _synthetic_job(cube, folder)

    def ours_full() -> None:
        ours()
        result = writer.write(job)
        assert result.ok, result.error
        shutil.rmtree(folder)

    t_full = _best(ours_full, 2 if quick else 3)
    rows.append(
        _row(
            "convert + write cube (ours, tmpfs) vs astropy writeto",
            f"{t_full * 1e3:.0f} ms",
            f"astropy {t_astropy * 1e3:.0f} ms",
            t_astropy / t_full,
            "> 1",
        )
    )
    return rows


# ---------------------------------------------------------------- disk


def raw_write(
    folder: Path, nbytes: int, chunk: int = 64 * 1024 * 1024, *, direct: bool = False
) -> float:
    """Sequential write + fsync of ``nbytes`` (files of ~1.2 GB) -> bytes/s.

    ``direct``: with ``O_DIRECT`` from an aligned buffer (what the logger's
    writer does), else buffered through the page cache (what ``dd`` does).
    """
    from vampires.fitslog.directio import aligned_empty

    block, _ = aligned_empty((chunk,), np.uint8)
    block[:] = np.random.default_rng(2).integers(0, 255, chunk, dtype=np.uint8)
    per_file = min(nbytes, 1_200_000_000) // chunk * chunk or chunk
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | (os.O_DIRECT if direct else 0)
    written = 0
    t0 = time.perf_counter()
    while written < nbytes:
        path = folder / f"raw-{uuid.uuid4().hex}.bin"
        fd = os.open(path, flags, 0o644)
        try:
            done = 0
            while done < per_file:
                done += os.write(fd, block.data[: min(chunk, per_file - done)])
            os.fsync(fd)
        finally:
            os.close(fd)
        written += done
    elapsed = time.perf_counter() - t0
    for path in folder.glob("raw-*.bin"):
        path.unlink()
    return written / elapsed


def disk_limit(folder: Path, nbytes: int) -> float:
    """The disk's sequential write limit: the faster of buffered and O_DIRECT raw writes."""
    return max(raw_write(folder, nbytes), raw_write(folder, nbytes, direct=True))


def writer_vs_raw(folder: Path, quick: bool) -> tuple[float, float]:
    """Best of alternating raw write+fsync and CubeWriter.write of the same bytes (B/s)."""
    from vampires.fitslog.directio import aligned_empty
    from vampires.fitslog.writer import CubeWriter

    n = 25 if quick else 250
    cube = np.empty((n, *MBI), ">i2")
    job = _synthetic_job(cube, folder)
    writer = CubeWriter()
    # as the logger keeps its buffers: at the phase of the header (no copy before O_DIRECT)
    phase = len(writer.header(job))
    cube, _ = aligned_empty(cube.shape, cube.dtype, phase=phase)
    cube.reshape(-1).view(np.uint8)[::4096] = 1
    job = attrs.evolve(job, cube=cube)
    best_raw = best_ours = 0.0
    for _ in range(2 if quick else 3):
        best_raw = max(best_raw, disk_limit(folder, cube.nbytes))
        result = writer.write(job)
        assert result.ok, result.error
        best_ours = max(best_ours, result.nbytes / result.seconds)
        for path in folder.glob("*.fits"):
            path.unlink()
        for path in folder.glob("*.txt"):
            path.unlink()
    return best_ours, best_raw


def streaming_vs_raw(folder: Path, quick: bool) -> tuple[list[float], float, float]:
    """The streaming writer at full speed vs raw O_DIRECT write+fsync of the same bytes.

    What the logger's writer does with a cube, as fast as it can: open (header with
    the planned NAXIS3), a flush each 64 MiB (O_DIRECT from the cube buffer, sidecar
    rows, ``fdatasync`` once a second), finish (header rewritten in place, fsync,
    rename). Each pair runs raw then ours back to back, so a disk that swings by 2x
    within minutes (a shared virtual disk) moves both; returns the ratio of each pair
    and the medians of ours and raw (B/s).
    """
    from vampires.fitslog.directio import aligned_empty
    from vampires.fitslog.writer import CubeWriter

    n = 25 if quick else 250
    writer = CubeWriter()
    job = _synthetic_job(np.empty((n, *MBI), ">i2"), folder)
    phase = len(writer.header(job))
    cube, _ = aligned_empty((n, *MBI), np.dtype(">i2"), phase=phase)
    cube.reshape(-1).view(np.uint8)[::4096] = 1
    job = attrs.evolve(job, cube=cube)
    opening = attrs.evolve(job, close_reason="writing")
    step = max(1, (64 << 20) // (MBI[0] * MBI[1] * 2))
    ratios, ours, raws = [], [], []
    for _ in range(2 if quick else 5):
        raw = raw_write(folder, cube.nbytes, direct=True)
        t0 = time.perf_counter()
        oc = writer.open(opening, sync_interval=1.0)
        for k in range(step, n, step):
            writer.flush(oc, k)
        result = writer.finish(oc, job)
        elapsed = time.perf_counter() - t0
        assert result.ok, result.error
        ours.append(result.nbytes / elapsed)
        raws.append(raw)
        ratios.append(ours[-1] / raw)
        for path in [*folder.glob("*.fits"), *folder.glob("*.txt")]:
            path.unlink()
    return ratios, float(np.median(ours)), float(np.median(raws))


# ---------------------------------------------------------------- logger runs


class _Producer:
    def __init__(self, name: str, shape: tuple[int, int], fps: float, duration: float, shm: Path):
        env = {**os.environ, "MILK_SHM_DIR": str(shm)}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", PRODUCER, name, *map(str, (*shape, fps, duration))],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().strip()
        if line != "ready":
            self.proc.kill()
            msg = f"producer {name} failed to start"
            raise RuntimeError(msg)

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()

    def published(self, timeout: float) -> int:
        assert self.proc.stdout is not None
        out = self.proc.stdout.readline().strip()
        self.proc.wait(timeout=timeout)
        self.proc.stdin.close()  # type: ignore[union-attr]
        self.proc.stdout.close()
        return int(out)


def _discard(fd: int, data: memoryview) -> int:
    """A null disk: the writer's bytes go nowhere (measures the logger, not a disk)."""
    return len(data)


def log_run(
    streams: list[tuple[str, tuple[int, int]]],
    fps: float,
    duration: float,
    folder: Path,
    frames_per_cube: int,
    *,
    fsync: bool = True,
    verify: bool = False,
    null_disk: bool = False,
) -> dict:
    """Run producers + loggers; return published, logged, dropped, bytes, cpu, wall."""
    from vampires.fitslog.logger import Logger
    from vampires.fitslog.policy import CubePolicy

    shm = Path(tempfile.mkdtemp(prefix="vampires-bench-", dir="/dev/shm"))
    producers: list[_Producer] = []
    loggers: list[Logger] = []
    try:
        for name, shape in streams:
            producers.append(_Producer(name, shape, fps, duration, shm))
        for name, _ in streams:
            log = Logger(
                name,
                CubePolicy(frames_per_cube=frames_per_cube),
                dirname=folder / name,
                shm_dir=shm,
                fsync=fsync and not null_disk,
                nice=NICE,
                write_chunk=_discard if null_disk else None,
            )
            loggers.append(log)
        # as at the telescope (preplog long before startlog): attached, buffers paged in
        want = [2 * frames_per_cube * shape[0] * shape[1] * 2 for _, shape in streams]
        deadline = time.monotonic() + 60
        while not all(
            log.status().attached and log.status().memory_bytes >= n
            for log, n in zip(loggers, want, strict=True)
        ):
            if time.monotonic() > deadline:
                msg = "loggers did not attach and prepare their buffers"
                raise RuntimeError(msg)
            time.sleep(0.01)
        cpu0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter()
        for log in loggers:
            log.start()
        for producer in producers:
            producer.go()
        published = [p.published(duration + 30) for p in producers]
        time.sleep(0.05)
        for log in loggers:
            log.pause()
        for log in loggers:
            log.wait_idle(300)
        wall = time.perf_counter() - t0
        cpu1 = resource.getrusage(resource.RUSAGE_SELF)
        statuses = [log.status() for log in loggers]
        checked, mislabelled = verify_cubes(folder) if verify else (0, 0)
    finally:
        for log in loggers:
            log.close(finish_cube=False)
        for producer in producers:
            if producer.proc.poll() is None:
                producer.proc.kill()
                producer.proc.wait(timeout=10)
        shutil.rmtree(shm, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return {
        "published": published,
        "frames": [s.frames for s in statuses],
        "dropped": [s.dropped for s in statuses],
        "bytes": sum(s.written_bytes for s in statuses),
        "write_seconds": sum(s.write_seconds for s in statuses),
        "errors": [s.error for s in statuses if s.error],
        "cpu": cpu,
        "wall": wall,
        "active": duration,
        "checked": checked,
        "mislabelled": mislabelled,
    }


def verify_cubes(folder: Path) -> tuple[int, int]:
    """Check every cube: stamped counters == sidecar counters, name == first logger time.

    Returns (cubes checked, cubes mislabelled).
    """
    from astropy.io import fits

    from vampires.fitslog.names import parse_cube_filename
    from vampires.fitslog.sidecar import parse_sidecar

    checked = bad = 0
    for path in sorted(folder.rglob("*.fits")):
        times = parse_sidecar(path.with_suffix(".txt").read_text())
        with fits.open(path, memmap=True, do_not_scale_image_data=True) as hdul:
            stamps = (np.asarray(hdul[0].data[:, 0, :4]).astype(np.int64) + 32768).astype(np.uint64)
            naxis3 = hdul[0].header["NAXIS3"]
        counters = (stamps[:, 0] << 48) | (stamps[:, 1] << 32) | (stamps[:, 2] << 16) | stamps[:, 3]
        _, h, m, sec, ns = parse_cube_filename(path.name)
        first = float(times.logger_time[0]) % 86400
        ok = (
            naxis3 == len(times)
            and np.array_equal(counters.astype(np.int64), times.cnt0)
            and abs(first - (h * 3600 + m * 60 + sec + ns * 1e-9)) < 2e-3
        )
        checked += 1
        bad += 0 if ok else 1
    return checked, bad


def bare_reader(shape: tuple[int, int], fps: float, duration: float) -> tuple[int, int]:
    """The machine's floor: a bare reader thread (kernel copy, no logger). -> (lost, published)."""
    from vampires import kernels
    from vampires.errors import StreamError
    from vampires.stream import Stream

    shm = Path(tempfile.mkdtemp(prefix="vampires-bench-", dir="/dev/shm"))
    producer = _Producer("bare", shape, fps, duration, shm)
    stream = Stream.open("bare", shm_dir=shm)
    slot = np.empty((1, *shape), ">i2")
    copy = kernels.cube_copier(np.uint16, slot)
    got = [0]
    stop = threading.Event()

    def loop() -> None:
        if NICE is not None:
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)
        with stream.reader(catch_up=True) as reader:
            while not stop.is_set():
                with contextlib.suppress(StreamError):
                    reader.next_into(lambda view: copy(view, 0), 0.05)
                    got[0] += 1

    thread = threading.Thread(target=loop)
    try:
        thread.start()
        time.sleep(0.2)
        producer.go()
        published = producer.published(duration + 30)
        time.sleep(0.1)
    finally:
        stop.set()
        thread.join(10)
        stream.close()
        if producer.proc.poll() is None:
            producer.proc.kill()
            producer.proc.wait(timeout=10)
        shutil.rmtree(shm, ignore_errors=True)
    return published - got[0], published


def zero_drop_rate(
    streams: list[tuple[str, tuple[int, int]]],
    rates: list[float],
    duration: float,
    folder: Path,
    frames_per_cube: int,
    *,
    null_disk: bool = False,
) -> tuple[float, dict | None, str]:
    """Try every rate (no early stop: one lost frame on a shared machine is noise).

    Returns the highest rate with zero drops, its run, and ``fps:dropped/published`` per rate.
    """
    best, best_run = 0.0, None
    trials: list[str] = []
    for fps in rates:
        run = log_run(streams, fps, duration, folder, frames_per_cube, null_disk=null_disk)
        print(
            f"#   {len(streams)} x {streams[0][1]} at {fps:g} fps: published {run['published']}, "
            f"dropped {run['dropped']}",
            file=sys.stderr,
            flush=True,
        )
        trials.append(f"{fps:g}:{sum(run['dropped'])}/{sum(run['published'])}")
        if not any(run["dropped"]) and not run["errors"]:
            best, best_run = fps, run
    return best, best_run, " ".join(trials)


# ---------------------------------------------------------------- C-like writer, kill -9


def cwriter_run(
    shape: tuple[int, int],
    fps: float,
    frames: int,
    folder: Path,
    frames_per_cube: int,
    *,
    cameras: int = 1,
) -> dict:
    """Loggers (this process) on C-like streams (no circular buffer) -> missed frames by tag.

    With ``cameras`` > 1, one C-like writer process and one logger process per
    camera (as the logger daemons run), all on the same disk; the counts are
    summed, ``worst`` is the largest per-camera loss.
    """
    if cameras > 1:
        return _cwriter_run_processes(shape, fps, frames, folder, frames_per_cube, cameras)
    from vampires.fitslog.logger import Logger
    from vampires.fitslog.policy import CubePolicy
    from vampires.testing.cwriter import CWriterProcess, count_tags, cube_tags

    shm = Path(tempfile.mkdtemp(prefix="vampires-bench-", dir="/dev/shm"))
    pool = 2 * frames_per_cube * shape[0] * shape[1] * 2 * cameras
    delay = 3.0 + 2.0 * pool / 1e9  # the loggers attach and page in their buffers meanwhile
    names = [f"cw{i}" for i in range(cameras)]
    try:
        with contextlib.ExitStack() as stack:
            logs = [
                stack.enter_context(
                    Logger(
                        name,
                        CubePolicy(frames_per_cube=frames_per_cube),
                        dirname=folder / name,
                        shm_dir=shm,
                        nice=NICE,
                    )
                )
                for name in names
            ]
            cpu0 = resource.getrusage(resource.RUSAGE_SELF)
            with contextlib.ExitStack() as procs:
                writers = [
                    procs.enter_context(
                        CWriterProcess(name, shape, fps, frames, shm_dir=shm, start_delay=delay)
                    )
                    for name in names
                ]
                for log in logs:
                    log.start()
                ready = [log.status().state.value for log in logs]
                results = [w.wait(timeout=frames / fps + delay + 60) for w in writers]
            time.sleep(0.1)
            for log in logs:
                log.pause()
            for log in logs:
                log.wait_idle(300)
            cpu1 = resource.getrusage(resource.RUSAGE_SELF)
            statuses = [log.status() for log in logs]
        counts = [
            count_tags(
                [t for path in sorted((folder / name).glob("*.fits")) for t in cube_tags(path)],
                frames,
            )
            for name in names
        ]
    finally:
        shutil.rmtree(shm, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    elapsed = max(r.elapsed for r in results)
    return {
        "frames": frames * cameras,
        "missed": sum(c[0] for c in counts),
        "worst": max(c[0] for c in counts),
        "duplicated": sum(c[1] for c in counts),
        "torn": sum(c[2] for c in counts),
        "late": sum(r.late for r in results),
        "dropped": sum(st.dropped for st in statuses),
        "causes": tuple(
            sum(getattr(st, f"dropped_{c}") for st in statuses)
            for c in ("late", "no_buffer", "disk")
        ),
        "ready": ready,
        "cpu": cpu / max(elapsed, 1e-9) / cameras,
        "memory": max(st.memory_bytes for st in statuses),
        "buffers": max(st.buffers for st in statuses),
    }


def _cwriter_run_processes(
    shape: tuple[int, int],
    fps: float,
    frames: int,
    folder: Path,
    frames_per_cube: int,
    cameras: int,
) -> dict:
    """:func:`cwriter_run` with each camera's logger in its own process (logger_trace's child)."""
    import json
    import multiprocessing as mp

    from logger_trace import _logger_child

    from vampires.testing.cwriter import CWriterProcess, count_tags, cube_tags

    shm = Path(tempfile.mkdtemp(prefix="vampires-bench-", dir="/dev/shm"))
    names = [f"cw{i}" for i in range(cameras)]
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    readies = [ctx.Event() for _ in names]
    delay = 3.0 + 2.0 * 2 * frames_per_cube * shape[0] * shape[1] * 2 * cameras / 1e9
    children = [
        ctx.Process(
            target=_logger_child,
            args=(n, frames_per_cube, str(folder), str(shm), str(folder / f"{n}.json"), stop, r),
        )
        for n, r in zip(names, readies, strict=True)
    ]
    try:
        with contextlib.ExitStack() as procs:
            writers = [
                procs.enter_context(
                    CWriterProcess(n, shape, fps, frames, shm_dir=shm, start_delay=delay)
                )
                for n in names
            ]
            for child in children:
                child.start()
            for ready in readies:
                ready.wait(delay)
            results = [w.wait(timeout=frames / fps + delay + 60) for w in writers]
        time.sleep(0.1)
        stop.set()
        for child in children:
            child.join(600)
        traces = [json.loads((folder / f"{n}.json").read_text()) for n in names]
        counts = [
            count_tags(
                [t for p in sorted((folder / n).glob("*.fits")) for t in cube_tags(p)], frames
            )
            for n in names
        ]
    finally:
        stop.set()
        shutil.rmtree(shm, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
    rows = [[r for r in t if "frames" in r] for t in traces]
    last = [r[-1] for r in rows]
    cpu = sum(
        (sum(r[-1]["cpu"].values()) - sum(r[0]["cpu"].values())) / (r[-1]["t"] - r[0]["t"])
        for r in rows
    )
    return {
        "frames": frames * cameras,
        "missed": sum(c[0] for c in counts),
        "worst": max(c[0] for c in counts),
        "duplicated": sum(c[1] for c in counts),
        "torn": sum(c[2] for c in counts),
        "late": sum(r.late for r in results),
        "dropped": sum(x["late"] + x["nobuf"] + x["disk"] for x in last),
        "causes": tuple(sum(x[k] for x in last) for k in ("late", "nobuf", "disk")),
        "ready": [],
        "cpu": cpu / cameras,  # per camera, over the logging (start-up left out)
        "memory": max(x["mem"] for x in last),
        "buffers": max(x["buffers"] for x in last),
    }


def cwriter_floor(shape: tuple[int, int], fps: float, frames: int) -> int:
    """The machine's floor on a C-written stream: a bare reader thread -> frames it missed."""
    from vampires import kernels
    from vampires.errors import StreamError
    from vampires.stream import Stream
    from vampires.testing.cwriter import CWriterProcess, count_tags

    shm = Path(tempfile.mkdtemp(prefix="vampires-bench-", dir="/dev/shm"))
    slot = np.empty((1, *shape), ">i2")
    copy = kernels.cube_copier(np.uint16, slot)
    tags: list[int] = []
    stop = threading.Event()
    try:
        with CWriterProcess("floor", shape, fps, frames, shm_dir=shm, start_delay=1.0) as writer:
            stream = Stream.open("floor", shm_dir=shm)

            def loop() -> None:
                if NICE is not None:
                    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)
                with stream.reader(catch_up=True) as reader:
                    while not stop.is_set():
                        with contextlib.suppress(StreamError):
                            reader.next_into(lambda view: copy(view, 0), 0.05)
                            flat = slot.reshape(-1).view(">u2")
                            ends = np.concatenate([flat[:4], flat[-4:]]) ^ np.uint16(0x8000)
                            head, tail = ends.astype("<u2").view("<u8")
                            tags.append(int(head) if head == tail else -1)

            thread = threading.Thread(target=loop)
            thread.start()
            writer.wait(timeout=frames / fps + 60)
            time.sleep(0.1)
            stop.set()
            thread.join(10)
            stream.close()
    finally:
        shutil.rmtree(shm, ignore_errors=True)
    return count_tags(tags, frames)[0]


KILL_CHILD = textwrap.dedent(
    """
    import sys, time
    from vampires.fitslog.logger import Logger
    from vampires.fitslog.policy import CubePolicy
    sync = None if sys.argv[3] == "close" else float(sys.argv[3])
    policy = CubePolicy(frames_per_cube=int(sys.argv[2]), sync_interval=sync)
    log = Logger("kl", policy, dirname=sys.argv[1])
    log.start()
    print("ready", flush=True)
    time.sleep(600)
    """
)


def kill_run(
    shape: tuple[int, int],
    fps: float,
    seconds: float,
    folder: Path,
    frames_per_cube: int,
    sync: str = "0",
) -> dict:
    """Kill -9 a logging process at a random moment, recover -> frames lost."""
    import random
    import signal

    from vampires.fitslog.recover import recover_folder
    from vampires.stream import Stream
    from vampires.testing.cwriter import cube_tags, make_base_frame, tag_frame

    shm = Path(tempfile.mkdtemp(prefix="vampires-bench-", dir="/dev/shm"))
    env = {**os.environ, "MILK_SHM_DIR": str(shm)}
    published: dict[int, float] = {}
    try:
        with Stream.create("kl", shape, "uint16", shm_dir=shm) as stream:
            stream.keywords.update({"EXPTIME": 1 / fps, "EXTTRIG": False})
            child = subprocess.Popen(
                [sys.executable, "-c", KILL_CHILD, str(folder), str(frames_per_cube), sync],
                stdout=subprocess.PIPE,
                text=True,
                env=env,
            )
            try:
                assert child.stdout is not None
                if child.stdout.readline().strip() != "ready":
                    msg = "kill -9 run: the logger process did not start"
                    raise RuntimeError(msg)
                base = make_base_frame(shape, "uint16")
                t0 = time.monotonic()
                stop_at = t0 + random.uniform(0.6, 1.0) * seconds  # noqa: S311
                i = 0
                while (now := time.monotonic()) < stop_at:
                    delay = t0 + i / fps - now
                    if delay > 0:
                        time.sleep(delay)
                    tag_frame(base, i)
                    stream.write(base)
                    published[i] = time.monotonic()
                    i += 1
                killed = time.monotonic()
                child.send_signal(signal.SIGKILL)
                child.wait(timeout=30)
            finally:
                if child.poll() is None:
                    child.kill()
                    child.wait(timeout=30)
                if child.stdout is not None:
                    child.stdout.close()
        recover_folder(folder)
        kept = {t for path in sorted(folder.glob("*.fits")) for t in cube_tags(path) if t >= 0}
    finally:
        shutil.rmtree(shm, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True, exist_ok=True)
    old = {i for i, t in published.items() if t < killed - 1.0}  # flush_interval = 1 s
    return {
        "published": len(published),
        "kept": len(kept & set(published)),
        "lost": len(set(published) - kept),
        "lost_old": len(old - kept),
    }


def headline_rows(quick: bool, disk: Path) -> list[dict]:
    """The C-written stream rows (no circular buffer) and the kill -9 rows."""
    rows = []
    seconds = 2.0 if quick else 15.0
    cube = 200 if quick else 2000
    std = cwriter_run(STANDARD, 400.0, int(400 * seconds), disk / "cw400", cube)
    floor = cwriter_floor(STANDARD, 400.0, int(400 * seconds))
    rows.append(
        _row(
            f"C-written 536x536 at 400 fps, {cube}-frame cubes, {seconds:g} s: frames missed "
            f"(by tag; dup {std['duplicated']}, torn {std['torn']}, writer late {std['late']}; "
            f"late/no-buffer/disk {std['causes']})",
            f"{std['missed']} of {std['frames']}",
            f"bare reader {floor}; milk {MILK_STD400_DROPS} of 6000",
            "",
            "0",
        )
    )
    rows.append(
        _row(
            "reader CPU per camera, C-written 536x536 at 400 fps (logger process, 1 core = 1.0)",
            f"{std['cpu']:.2f} core",
            "",
            "",
            "info",
        )
    )
    rates = [30.0, 60.0] if quick else [30.0, 60.0, 90.0, 130.0]
    mbi_frames = 30 if quick else 250
    trials = []
    best = 0.0
    memory = 0
    for fps in rates:
        n = int(fps * (2.0 if quick else 12.0))
        r = cwriter_run(MBI, fps, n, disk / "cwmbi", mbi_frames)
        trials.append(f"{fps:g}:{r['missed']}/{n}")
        memory = max(memory, r["memory"])
        print(
            f"#   C-written MBI {fps:g} fps: missed {r['missed']} of {n}, "
            f"{r['buffers']} buffers ({r['memory'] / 1e9:.1f} GB)",
            file=sys.stderr,
        )
        if r["missed"] == 0 and r["duplicated"] == 0 and r["torn"] == 0:
            best = max(best, fps)
    rows.append(
        _row(
            f"C-written MBI, {mbi_frames}-frame cubes, fps:missed/published {' '.join(trials)}; "
            f"cube buffers up to {memory / 1e9:.1f} GB per camera",
            f"0 missed up to {best:g} fps",
            f"milk {MILK_MBI_FPS:g} fps",
            best / MILK_MBI_FPS,
            ">= 2",
        )
    )
    rows += issue19_rows(quick, disk)
    for shape, fps, cube_frames, label in (
        ((536, 536), 10.0, 250, "10 fps, 250-frame cubes"),
        (MBI, 57.0, 30 if quick else 250, "MBI 57 fps (280 MB/s)"),
    ):
        k = kill_run(shape, fps, 3.0 if quick else 8.0, disk / "kill", cube_frames)
        rows.append(
            _row(
                f"kill -9 while logging {label}, then vampires recover: frames lost "
                f"(of {k['published']} published; {k['lost_old']} of them > 1 s before the kill)",
                f"{k['lost']}",
                f"flush_interval = {fps:g} frames",
                k["lost"] / fps,
                "<= 1 s worth, 0 older",
            )
        )
    return rows


def issue19_rows(quick: bool, disk: Path) -> list[dict]:
    """Issue 19: C-written MBI zero-drop rate vs the disk's O_DIRECT rate, repeated; 2 cameras."""
    frame = MBI[0] * MBI[1] * 2
    raw_bytes = int(0.3e9 if quick else 2.4e9)
    direct = raw_write(disk, raw_bytes, direct=True)
    buffered = raw_write(disk, raw_bytes)
    direct_fps = direct / frame
    runs = 1 if quick else 5
    seconds = 2.0 if quick else 5.0
    cube = 30 if quick else 250
    rates = (
        [0.25 * direct_fps, 0.5 * direct_fps]
        if quick
        else [f * direct_fps for f in (0.25, 0.4, 0.5, 0.6)]
    )
    rows = [
        _row(
            "raw write+fsync of this disk, same run: O_DIRECT / buffered",
            f"{direct / 1e6:.0f} / {buffered / 1e6:.0f} MB/s",
            f"= {direct_fps:.0f} MBI frames/s",
            "",
            "limit",
        )
    ]
    for cameras, target in ((1, 0.5), (2, 0.25)):
        best_each = []
        trials = []
        for _ in range(runs):
            best = 0.0
            for fps in rates:
                n = int(fps * seconds)
                r = cwriter_run(MBI, fps, n, disk / "c19", cube, cameras=cameras)
                trials.append(f"{fps:.0f}:{r['missed']}/{r['frames']}")
                if r["missed"] == 0 and r["duplicated"] == 0 and r["torn"] == 0:
                    best = max(best, fps)
            best_each.append(best)
        worst = min(best_each)
        rows.append(
            _row(
                f"C-written MBI, {cameras} camera(s) on one disk, {runs} run(s) x "
                f"{seconds:g} s per rate, fps:missed/published {' '.join(trials)}",
                f"0 missed up to {worst:.0f} fps each (worst run)",
                f"O_DIRECT {direct_fps:.0f} fps",
                worst / direct_fps,
                f">= {target:g}",
            )
        )
    for fps in (400.0, 1000.0):
        n = int(fps * (2.0 if quick else 10.0))
        r = cwriter_run(STANDARD, fps, n, disk / "c19s", 2000 if not quick else 400)
        rows.append(
            _row(
                f"C-written 536x536 at {fps:g} fps: missed (late/no-buffer/disk {r['causes']}; "
                f"C writer late {r['late']}), {r['buffers']} buffers {r['memory'] / 1e9:.1f} GB",
                f"{r['missed']} of {r['frames']}",
                "",
                "",
                "0",
            )
        )
    return rows


def run(quick: bool = False, folder: Path | None = None, *, only: str = "") -> list[dict]:
    base = folder or Path(os.environ.get("VAMPIRES_BENCH_DIR", Path.cwd() / ".benchtmp"))
    base.mkdir(parents=True, exist_ok=True)
    disk = Path(tempfile.mkdtemp(prefix="logger-bench-", dir=base))
    tmpfs = Path(tempfile.mkdtemp(prefix="logger-bench-", dir="/dev/shm"))
    rows: list[dict] = []
    mb = 1e6
    frame_mb = MBI[0] * MBI[1] * 2 / mb
    switch = sys.getswitchinterval()
    sys.setswitchinterval(0.001)  # as a logger daemon does: the reader gets the GIL fast
    try:
        rows += headline_rows(quick, disk)
        if only == "headline":
            return rows
        rows += kernel_rows(quick, tmpfs)
        raw_bytes = int(0.3e9 if quick else 2.4e9)
        raw_before = disk_limit(disk, raw_bytes)
        ours_w, raw_w = writer_vs_raw(disk, quick)
        rows.append(
            _row(
                "cube writer alone (header+pixels+sidecar, fsync) vs raw write+fsync",
                f"{ours_w / mb:.0f} MB/s",
                f"raw {raw_w / mb:.0f} MB/s",
                ours_w / raw_w,
                ">= 0.9",
            )
        )
        ratios, ours_s, raw_s = streaming_vs_raw(disk, quick)
        rows.append(
            _row(
                "streaming cube writer at full speed (open, flush per 64 MiB, fdatasync 1/s, "
                "finish) vs raw O_DIRECT write+fsync, back to back, median of pairs "
                f"{', '.join(f'{r:.2f}' for r in ratios)}",
                f"{ours_s / mb:.0f} MB/s",
                f"raw {raw_s / mb:.0f} MB/s",
                float(np.median(ratios)),
                ">= 0.9",
            )
        )
        # 1. the logger's writer on disk: bytes / time spent writing (fsync per cube),
        #    each run between two raw measures of the same disk (it is bursty: compare
        #    to their mean); best of 2 runs, the one least disturbed by the shared host
        cube = 25 if quick else 250
        raws = [raw_before]
        sats: list[dict] = []
        attempts: list[tuple[float, float]] = []  # (writer B/s, raw B/s around it)
        for _ in range(1 if quick else 2):
            sats.append(
                log_run(
                    [("vcam1", MBI)], 40.0, 2.0 if quick else 20.0, disk / "sat", cube, verify=True
                )
            )
            raws.append(disk_limit(disk, raw_bytes))
            attempts.append(
                (sats[-1]["bytes"] / sats[-1]["write_seconds"], 0.5 * (raws[-2] + raws[-1]))
            )
        sat_rate, raw = max(attempts, key=lambda a: a[0] / a[1])
        rows.append(
            _row(
                "raw write+fsync, best of buffered and O_DIRECT (around each logger run)",
                " / ".join(f"{r / mb:.0f}" for r in raws) + " MB/s",
                "",
                "",
                "limit",
            )
        )
        rows.append(
            _row(
                "logger writer while logging MBI 40 fps (shared CPUs) vs raw write+fsync, "
                f"best of runs {', '.join(f'{w / r:.2f}' for w, r in attempts)}",
                f"{sat_rate / mb:.0f} MB/s",
                f"raw {raw / mb:.0f} MB/s",
                sat_rate / raw,
                ">= 0.9",
            )
        )
        # 2. highest zero-drop MBI rate, one and two cameras, on disk
        rates1 = [20.0, 40.0] if quick else [30.0, 57.0, 70.0, 100.0, 130.0]
        rates2 = [10.0, 20.0] if quick else [35.0, 57.0, 70.0, 100.0]
        duration = 1.0 if quick else 20.0
        fps1, run1, trials1 = zero_drop_rate([("vcam1", MBI)], rates1, duration, disk / "z1", cube)
        rows.append(
            _row(
                f"MBI 1 camera on disk, fps:dropped/published {trials1}",
                f"0 drops up to {fps1:g} fps = {fps1 * frame_mb:.0f} MB/s",
                f"milk {MILK_MBI_FPS:g} fps",
                fps1 / MILK_MBI_FPS,
                f">= 2 (disk-bound: raw {raw / mb:.0f} MB/s)",
            )
        )
        fps2, _, trials2 = zero_drop_rate(
            [("vcam1", MBI), ("vcam2", MBI2)], rates2, duration, disk / "z2", cube
        )
        rows.append(
            _row(
                f"MBI 2 cameras on one disk, fps:dropped/published {trials2}",
                f"0 drops up to {fps2:g} fps = {2 * fps2 * frame_mb:.0f} MB/s total",
                f"raw {raw / mb:.0f} MB/s",
                2 * fps2 * frame_mb * mb / raw,
                "disk-bound",
            )
        )
        if run1 is not None:
            rows.append(
                _row(
                    f"CPU per camera at {fps1:g} fps MBI (logger threads, one core = 1.0)",
                    f"{run1['cpu'] / run1['wall']:.2f} core",
                    "",
                    "",
                    "info",
                )
            )
        # 3. without a disk (the writer discards the bytes): the logger's own ceiling
        rates_t = [57.0, 100.0] if quick else [57.0, 100.0, 160.0]
        fps_t, _, trials_t = zero_drop_rate(
            [("vcam1", MBI)], rates_t, duration, tmpfs / "zt", cube, null_disk=True
        )
        rows.append(
            _row(
                f"MBI 1 camera, null disk (logger's own limit), {trials_t}",
                f"0 drops up to {fps_t:g} fps = {fps_t * frame_mb:.0f} MB/s",
                f"milk {MILK_MBI_FPS:g} fps",
                fps_t / MILK_MBI_FPS,
                ">= 2",
            )
        )
        # two cameras at 280 MB/s each (the operating page's MBI figure), 60 s:
        # null disk (the logger alone), then this disk (more bytes than RAM: no cache to hide in)
        fps280 = 280e6 / (MBI[0] * MBI[1] * 2)
        seconds280 = 3.0 if quick else 60.0
        for where, target, null in (
            ("null disk", tmpfs / "t280", True),
            ("disk", disk / "d280", False),
        ):
            run280 = log_run(
                [("vcam1", MBI), ("vcam2", MBI2)],
                fps280,
                seconds280,
                target,
                cube,
                null_disk=null,
            )
            rows.append(
                _row(
                    f"2 cameras x 280 MB/s ({fps280:.0f} fps MBI), {where}, "
                    f"{seconds280:g} s: frames dropped",
                    f"{sum(run280['dropped'])} of {sum(run280['published'])}",
                    "milk loses a cube at 40 fps",
                    "",
                    "0",
                )
            )
            rows.append(
                _row(
                    f"CPU per camera at 280 MB/s, {where} (reader copy+convert, writer)",
                    f"{run280['cpu'] / run280['wall'] / 2:.2f} core",
                    "",
                    "",
                    "info",
                )
            )
        # 4. STANDARD 536x536 at 400 fps, 2000-frame cubes, disk
        std = log_run(
            [("vcam1", STANDARD)],
            400.0,
            2.0 if quick else 15.0,
            disk / "std",
            200 if quick else 2000,
            verify=True,
        )
        floor, floor_n = bare_reader(STANDARD, 400.0, 2.0 if quick else 15.0)
        rows.append(
            _row(
                "536x536 at 400 fps, disk: frames dropped (milk: 9 of 6000)",
                f"{sum(std['dropped'])} of {sum(std['published'])}",
                f"bare reader {floor} of {floor_n}",
                "",
                "0 (milk 9)",
            )
        )
        checked = sum(r["checked"] for r in sats) + std["checked"]
        mislabelled = sum(r["mislabelled"] for r in sats) + std["mislabelled"]
        rows.append(
            _row(
                "cubes whose pixels, sidecar and name disagree (stamped counters)",
                f"{mislabelled} of {checked}",
                "milk: one per overload chain",
                "",
                "0",
            )
        )
    finally:
        sys.setswitchinterval(switch)
        shutil.rmtree(disk, ignore_errors=True)
        shutil.rmtree(tmpfs, ignore_errors=True)
        with contextlib.suppress(OSError):
            base.rmdir()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few seconds, for CI")
    parser.add_argument("--dir", type=Path, default=None, help="folder on the disk to test")
    parser.add_argument(
        "--only", choices=["headline"], default="", help="only the C-written and kill -9 rows"
    )
    args = parser.parse_args()
    rows = run(quick=args.quick, folder=args.dir, only=args.only)
    width = max(len(r["measure"]) for r in rows)
    for r in rows:
        ratio = f"{r['ratio']:.2f}" if isinstance(r["ratio"], float) else str(r["ratio"])
        print(
            f"{r['measure']:<{width}}  {r['ours']:>24}  {r['limit']:>24}  {ratio:>6}  {r['target']}"
        )


if __name__ == "__main__":
    main()
