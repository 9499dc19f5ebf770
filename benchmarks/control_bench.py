"""Control plane: command start-up and the start skew between two loggers.

Measured in one run, each against its limit measured in the same run:

- CLI start-up: ``vampires_startlog`` (real command path, two loggers
  running), ``vampires_pauselog --help`` and ``vampires logger ls`` vs a bare
  ``python -c pass`` (target: < 300 ms over the bare interpreter);
- start skew between two logger daemons (``LoggerGroup.on()``: the
  difference between the times each reader thread switched saving on) vs a
  bare ZMQ REQ/REP round trip on ipc (target: < 10 ms);
- ``group_call`` round trip to two daemons vs the same bare round trip.

Runs real logger daemons (separate processes) on two small synthetic streams
in a private shm folder on /dev/shm. The machine is shared: figures are noisy.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np


def _wall(argv: list[str], env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        subprocess.run(argv, env=env, capture_output=True, timeout=60, check=False)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _bare_rtt(folder: Path, n: int) -> float:
    import zmq

    path = folder / "bare.sock"
    with zmq.Context() as ctx, ctx.socket(zmq.REP) as rep, ctx.socket(zmq.REQ) as req:
        rep.linger = req.linger = 0
        rep.bind(f"ipc://{path}")
        req.connect(f"ipc://{path}")

        def serve() -> None:
            for _ in range(n):
                rep.send(rep.recv())

        thread = threading.Thread(target=serve)
        thread.start()
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            req.send(b'{"command":"ping"}')
            req.recv()
            times.append(time.perf_counter() - t0)
        thread.join()
    return statistics.median(times)


def run(quick: bool = False) -> list[dict]:
    from vampires.control import group_call
    from vampires.fitslog.remote import LoggerGroup, start_logger
    from vampires.stream import Stream

    runs = 3 if quick else 10
    shm = Path(tempfile.mkdtemp(prefix="vampires-ctlbench-", dir="/dev/shm"))
    data = Path(tempfile.mkdtemp(prefix="vampires-ctlbench-data-"))
    old = os.environ.get("MILK_SHM_DIR")
    os.environ["MILK_SHM_DIR"] = str(shm)
    env = dict(os.environ)
    env["VAMPIRES_CONFIG"] = str(shm / "none.toml")
    bindir = Path(sys.executable).parent
    streams = [Stream.create(n, (64, 64), np.uint16) for n in ("vcam1", "vcam2")]
    stop = threading.Event()

    def write() -> None:
        frame = np.zeros((64, 64), np.uint16)
        while not stop.is_set():
            now = time.time()
            for s in streams:
                s.write(frame, acquisition_time=now)
            stop.wait(0.002)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    rows: list[dict] = []
    group = LoggerGroup(["vcam1", "vcam2"])
    try:
        for name in ("vcam1", "vcam2"):
            start_logger(name, cube_size=500, root=data)
        (shm / "vampires").mkdir(exist_ok=True)
        bare = _wall([sys.executable, "-c", "pass"], env, runs)
        for label, argv in [
            (
                "vampires_startlog -z -1 (2 loggers)",
                [str(bindir / "vampires_startlog"), "-z", "-1"],
            ),
            ("vampires_pauselog --help", [str(bindir / "vampires_pauselog"), "--help"]),
            ("vampires logger ls (2 loggers)", [str(bindir / "vampires"), "logger", "ls"]),
        ]:
            ours = _wall(argv, env, runs)
            rows.append(
                {
                    "measure": f"CLI start-up over bare python [ms]: {label}",
                    "ours": (ours - bare) * 1e3,
                    "limit": bare * 1e3,
                    "ratio": ours / bare,
                    "target": "< 300 ms over bare",
                }
            )
            group.off()
        rtt = _bare_rtt(shm, 200 if quick else 2000)
        skews, rtts = [], []
        for _ in range(10 if quick else 50):
            t0 = time.perf_counter()
            result = group.on()
            rtts.append(time.perf_counter() - t0)
            if result.skew is not None:
                skews.append(result.skew)
            group.off()
        skews.sort()
        p50 = statistics.median(skews)
        p95 = skews[int(0.95 * (len(skews) - 1))]
        rows.append(
            {
                "measure": "start skew between 2 loggers, p50 [ms]",
                "ours": p50 * 1e3,
                "limit": rtt * 1e3,
                "ratio": p50 / rtt,
                "target": "< 10 ms",
            }
        )
        rows.append(
            {
                "measure": "start skew between 2 loggers, p95 [ms]",
                "ours": p95 * 1e3,
                "limit": rtt * 1e3,
                "ratio": p95 / rtt,
                "target": "< 10 ms",
            }
        )
        pings = []
        for _ in range(20 if quick else 200):
            t0 = time.perf_counter()
            group_call("logger", ["vcam1", "vcam2"], "ping", timeout=2.0)
            pings.append(time.perf_counter() - t0)
        ping = statistics.median(pings)
        rows.append(
            {
                "measure": "group_call ping to 2 daemons, round trip p50 [ms]",
                "ours": ping * 1e3,
                "limit": rtt * 1e3,
                "ratio": ping / rtt,
                "target": "-",
            }
        )
        rows.append(
            {
                "measure": "LoggerGroup.on() round trip p50 [ms]",
                "ours": statistics.median(rtts) * 1e3,
                "limit": rtt * 1e3,
                "ratio": statistics.median(rtts) / rtt,
                "target": "-",
            }
        )
    finally:
        group.kill()
        stop.set()
        writer.join(5)
        for s in streams:
            s.destroy()
        if old is None:
            os.environ.pop("MILK_SHM_DIR", None)
        else:
            os.environ["MILK_SHM_DIR"] = old
        time.sleep(0.5)
        shutil.rmtree(shm, ignore_errors=True)
        shutil.rmtree(data, ignore_errors=True)
    return rows


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    for row in run(quick=quick):
        print(
            f"{row['measure']}: ours {row['ours']:.2f}, limit {row['limit']:.3f}, "
            f"ratio {row['ratio']:.2f}, target {row['target']}"
        )
