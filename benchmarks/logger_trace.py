"""Trace the logger on C-written streams: where the time goes when frames are missed.

The evidence behind issue 19's cause analysis. Each camera gets a C-like writer
process (in place, no circular buffer, absolute deadlines) and a logger in its
OWN process (as the logger daemons run), which samples itself every 20 ms:

- its status: frames taken, dropped by cause, cubes queued for the writer,
  cube buffers allocated, frames of the cube being filled already on disk,
  seconds spent writing;
- the CPU of each of its threads (reader, writer, the rest), from
  ``/proc/self/task/*/stat``;
- its minor/major page faults (``/proc/self/stat``).

The parent samples the disk (``/proc/diskstats`` of the folder's device: MB/s
written, requests in flight, time busy). At the end: frames missed per camera
(counted from the pixel tags of the cubes), each cube's write time, and the
samples around every drop.

    python benchmarks/logger_trace.py --fps 90 --cameras 2 --seconds 8
    python benchmarks/logger_trace.py --shape 536 --fps 1000 --cube 2000 --seconds 5
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

SHAPES = {"mbi": (1096, 2236), "536": (536, 536)}
TICK = os.sysconf("SC_CLK_TCK")
PERIOD = 0.02
WINDOW = 0.1  # s: CPU and disk figures of a trace row cover this much time
NICE = -10 if os.geteuid() == 0 else None


def _thread_cpu() -> dict[int, float]:
    """CPU seconds of each thread of this process, by native thread id."""
    out = {}
    for task in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError), open(f"/proc/self/task/{task}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
            out[int(task)] = (int(fields[11]) + int(fields[12])) / TICK
    return out


def _faults() -> tuple[int, int]:
    with open("/proc/self/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[7]), int(fields[9])


def _trace_reader_calls() -> list[tuple[float, ...]]:
    """Record each frame the logger's reader takes: when it asked, woke, returned.

    Each entry: (time of the call, wake from the semaphore wait, return, reader
    thread CPU seconds in the call, cnt0, frames missed before it, the frame's
    acquisition time, reader thread CPU clock at the call and at the return),
    unix seconds.
    """
    import vampires.stream.reader as reader_module

    calls: list[tuple[float, ...]] = []
    woke = [0.0]
    cls = reader_module.StreamReader
    await_new, next_into = cls._await_new, cls.next_into

    def traced_await(self: Any, timeout: float) -> Any:
        out = await_new(self, timeout)
        woke[0] = time.time()
        return out

    def traced_next(self: Any, func: Any, timeout: float) -> Any:
        t0, c0 = time.time(), time.thread_time()
        info = next_into(self, func, timeout)
        c1 = time.thread_time()
        calls.append((t0, woke[0], time.time(), c1 - c0, info.cnt0,
                      info.missed, info.acquisition_time, c0, c1))  # fmt: skip
        return info

    cls._await_new = traced_await  # type: ignore[method-assign]
    cls.next_into = traced_next  # type: ignore[method-assign]
    return calls


def _gaps(samples: list[dict[str, Any]], period: float) -> list[str]:
    """For each frame taken after a gap: where the reader was, in ms from that frame's write."""
    calls = next((s["calls"] for s in samples if "calls" in s), [])
    out = []
    for prev, cur in itertools.pairwise(calls):
        if cur[5] <= 0 or prev[4] <= 0:
            continue
        t = cur[6]  # the frame taken after the gap was written at t; the missed one at t - period
        out.append(
            f"cnt0 {cur[4]} (missed {cur[5]}): previous returned {1e3 * (prev[2] - t):+.1f}, "
            f"asked again {1e3 * (cur[0] - t):+.1f}, woke {1e3 * (cur[1] - t):+.1f}, "
            f"returned {1e3 * (cur[2] - t):+.1f} ms (missed frame written at "
            f"{-1e3 * period * cur[5]:+.1f}); reader CPU between the calls "
            f"{1e3 * (cur[7] - prev[8]):.1f} ms, in the call {1e3 * cur[3]:.1f} ms"
        )
    return out


def _logger_child(
    name: str, cube: int, folder: str, shm: str, trace: str, stop: Any, ready: Any
) -> None:
    from vampires.fitslog.logger import Logger
    from vampires.fitslog.policy import CubePolicy

    sys.setswitchinterval(0.001)
    samples: list[dict[str, Any]] = []
    calls = _trace_reader_calls()
    with Logger(
        name,
        CubePolicy(frames_per_cube=cube),
        dirname=Path(folder) / name,
        shm_dir=shm,
        nice=NICE,
    ) as log:
        log.start(ready_timeout=300)  # its buffers paged in: what a daemon waits for
        ready.set()
        roles: dict[int, str] = {}
        while not stop.is_set():
            for t in threading.enumerate():
                if t.native_id is not None and t.native_id not in roles:
                    kind = t.name.rsplit("-", 1)[-1] if t.name.startswith("logger-") else "other"
                    roles[t.native_id] = kind if kind in ("reader", "writer") else "other"
            st = log.status()
            cpu: dict[str, float] = {}
            for tid, sec in _thread_cpu().items():
                role = roles.get(tid, "other")
                cpu[role] = cpu.get(role, 0.0) + sec
            minflt, majflt = _faults()
            samples.append(
                {
                    "t": time.monotonic(),
                    "frames": st.frames,
                    "late": st.dropped_late,
                    "nobuf": st.dropped_no_buffer,
                    "disk": st.dropped_disk,
                    "queued": st.queued,
                    "buffers": st.buffers,
                    "on_disk": st.on_disk_frames,
                    "write_s": st.write_seconds,
                    "files": st.files,
                    "mem": st.memory_bytes,
                    "cpu": cpu,
                    "minflt": minflt,
                    "majflt": majflt,
                }
            )
            time.sleep(PERIOD)
        (log.pause if hasattr(log, "pause") else log.stop)()
        log.wait_idle(300)
        st = log.status()
        samples.append(
            {"t": time.monotonic(), "final_files": st.files, "write_s": st.write_seconds}
        )
    samples.append({"calls": calls})
    Path(trace).write_text(json.dumps(samples))


def _device_stats(folder: Path) -> Path | None:
    dev = os.stat(folder).st_dev
    path = Path(f"/sys/dev/block/{os.major(dev)}:{os.minor(dev)}/stat")
    return path if path.exists() else None


def _disk_sampler(stat: Path | None, stop: threading.Event, out: list[tuple[float, ...]]) -> None:
    """(t, sectors written, requests in flight, ms busy) every PERIOD."""
    while not stop.is_set():
        if stat is not None:
            f = stat.read_text().split()
            out.append((time.monotonic(), int(f[6]), int(f[8]), int(f[9])))
        time.sleep(PERIOD)


def _latency(folder: Path, cube: int) -> str:
    """Reader latency (logger time - acquisition time) from the sidecars, by place in the cube."""
    from vampires.fitslog.sidecar import parse_sidecar

    firsts, rest, before_gap = [], [], []
    for side in sorted(folder.glob("*.txt")):
        times = parse_sidecar(side.read_text())
        lat = (times.logger_time - times.acquisition_time) * 1e3
        n = len(lat)
        firsts += lat[: min(3, n)].tolist()
        rest += lat[3:].tolist()
        gaps = np.flatnonzero(np.diff(times.cnt0) > 1)
        before_gap += [f"{lat[g]:.1f}>{lat[g + 1]:.1f}" for g in gaps]
    if not rest:
        return "no sidecar rows"
    r = np.asarray(rest)
    return (
        f"reader latency ms: p50 {np.median(r):.2f} p99 {np.percentile(r, 99):.2f} "
        f"max {r.max():.2f}; first 3 frames of each cube max {max(firsts):.2f}; "
        f"around each gap (frame before > after): {' '.join(before_gap) or 'none'}"
    )


def _disk_at(disk: list[tuple[float, ...]], t0: float, t1: float) -> str:
    inside = [d for d in disk if t0 - PERIOD <= d[0] <= t1 + PERIOD]
    if len(inside) < 2:
        return "disk ?"
    a, b = inside[0], inside[-1]
    mbs = (b[1] - a[1]) * 512 / 1e6 / (b[0] - a[0])
    busy = (b[3] - a[3]) / 1e3 / (b[0] - a[0])
    return f"disk {mbs:5.0f} MB/s busy {busy:4.0%} inflight {max(d[2] for d in inside):3d}"


def _report(name: str, samples: list[dict[str, Any]], disk: list[tuple[float, ...]]) -> None:
    rows = [s for s in samples if "frames" in s]
    if not rows:
        print(f"{name}: no samples")
        return
    t0 = rows[0]["t"]
    cubes = [
        (b["t"] - t0, b["write_s"] - a["write_s"])
        for a, b in itertools.pairwise(rows)
        if b["files"] > a["files"]
    ]
    print(f"{name}: cube closes at (s, write seconds of the cube): "
          + ", ".join(f"{t:.1f}:{w:.2f}" for t, w in cubes))  # fmt: skip
    print(f"{name}: buffers max {max(r['buffers'] for r in rows)}, "
          f"memory {max(r['mem'] for r in rows) / 1e9:.2f} GB, queued max "
          f"{max(r['queued'] for r in rows)}, faults minor "
          f"{rows[-1]['minflt'] - rows[0]['minflt']} "
          f"major {rows[-1]['majflt'] - rows[0]['majflt']}")  # fmt: skip
    span = rows[-1]["t"] - rows[0]["t"]
    cpu = " ".join(
        f"{k} {(rows[-1]['cpu'].get(k, 0) - rows[0]['cpu'].get(k, 0)) / span:.3f}"
        for k in ("reader", "writer", "other")
    )
    print(f"{name}: CPU over the run (1 core = 1.0): {cpu}")
    shown = -1
    for i in range(1, len(rows)):
        a, b = rows[i - 1], rows[i]
        lost = sum(b[k] - a[k] for k in ("late", "nobuf", "disk"))
        if not lost or i <= shown:
            continue
        print(f"{name}: drop at t={b['t'] - t0:.2f} s")
        for j in range(max(1, i - 10), min(len(rows), i + 5)):
            q = rows[j]
            # CPU and disk over the last WINDOW (the kernel counts CPU in 10 ms ticks)
            p = next(r for r in rows[: j + 1] if r["t"] >= q["t"] - WINDOW - 1e-3)
            p = rows[max(0, rows.index(p) - 1)] if p is q else p
            dt = q["t"] - p["t"]
            cpu = " ".join(
                f"{k} {(q['cpu'].get(k, 0) - p['cpu'].get(k, 0)) / dt:4.0%}"
                for k in ("reader", "writer", "other")
            )
            print(
                f"  {q['t'] - t0:6.2f} frames {q['frames']:5d} late/nobuf/disk "
                f"{q['late']}/{q['nobuf']}/{q['disk']} queued {q['queued']} buffers "
                f"{q['buffers']} on_disk {q['on_disk']:3d} | {cpu} | minflt "
                f"{q['minflt'] - rows[j - 1]['minflt']:6d} majflt "
                f"{q['majflt'] - rows[j - 1]['majflt']} | "
                f"{_disk_at(disk, p['t'], q['t'])}"
            )
            shown = j


def main() -> None:
    from vampires.testing.cwriter import CWriterProcess, count_tags, cube_tags

    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--shape", choices=sorted(SHAPES), default="mbi")
    ap.add_argument("--fps", type=float, default=90.0)
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--cube", type=int, default=250, help="frames per cube")
    ap.add_argument("--cameras", type=int, default=1)
    args = ap.parse_args()
    shape = SHAPES[args.shape]
    frames = int(args.fps * args.seconds)
    base = Path(os.environ.get("VAMPIRES_BENCH_DIR", Path.cwd() / ".benchtmp"))
    base.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix="logger-trace-", dir=base))
    shm = Path(tempfile.mkdtemp(prefix="vampires-trace-", dir="/dev/shm"))
    names = [f"tr{i}" for i in range(args.cameras)]
    ctx = mp.get_context("spawn")
    stop, disk_stop = ctx.Event(), threading.Event()
    disk: list[tuple[float, ...]] = []
    sampler = threading.Thread(
        target=_disk_sampler, args=(_device_stats(folder), disk_stop, disk), daemon=True
    )
    try:
        readies = [ctx.Event() for _ in names]
        children = [
            ctx.Process(
                target=_logger_child,
                args=(n, args.cube, str(folder), str(shm), str(folder / f"{n}.json"), stop, r),
            )
            for n, r in zip(names, readies, strict=True)
        ]
        for c in children:
            c.start()
        for r in readies:
            r.wait(60)
        pool = 2 * args.cube * shape[0] * shape[1] * 2 * args.cameras
        delay = 3.0 + 2.0 * pool / 1e9  # the loggers page in their first buffers meanwhile
        sampler.start()
        with contextlib.ExitStack() as procs:
            writers = [
                procs.enter_context(
                    CWriterProcess(n, shape, args.fps, frames, shm_dir=shm, start_delay=delay)
                )
                for n in names
            ]
            results = [w.wait(timeout=frames / args.fps + delay + 60) for w in writers]
        time.sleep(0.2)
        stop.set()
        for c in children:
            c.join(600)
        disk_stop.set()
        for n, res in zip(names, results, strict=True):
            tags = [t for p in sorted((folder / n).glob("*.fits")) for t in cube_tags(p)]
            missed, dup, torn = count_tags(tags, frames)
            absent = sorted(set(range(frames)) - set(tags))
            print(f"{n}: {args.shape} {args.fps:g} fps, {frames} frames: missed {missed}, "
                  f"duplicated {dup}, torn {torn}; C writer late {res.late}; missed tags "
                  f"{absent[:20]}{' ...' if len(absent) > 20 else ''}")  # fmt: skip
            print(f"{n}: {_latency(folder / n, args.cube)}")
            trace = json.loads((folder / f"{n}.json").read_text())
            for line in _gaps(trace, 1.0 / args.fps):
                print(f"{n}: {line}")
            _report(n, trace, disk)
    finally:
        stop.set()
        disk_stop.set()
        shutil.rmtree(shm, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
