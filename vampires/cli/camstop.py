"""``vampires camstop [vcam1 ...]``: stop camera daemons (default: every running one).

Each camera is asked to shut down (acquisition stopped, stream file kept),
all at once; the command then waits for every process to exit and prints one
line per camera.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from vampires.errors import VampiresError

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Stop camera daemons; 0 if all stopped (or were not running)."""
    parser = argparse.ArgumentParser(
        prog="vampires camstop",
        description="Stop camera daemons (default: every running one). Each camera is asked "
        "to shut down (acquisition stopped, stream file kept), all at once; the command then "
        "waits for every daemon process to exit and prints one line per camera.",
    )
    parser.add_argument("cameras", nargs="*", help="camera names (default: all running)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=10.0,
        help="seconds to wait for each camera daemon to exit (default 10)",
    )
    args = parser.parse_args(argv)
    from vampires.camera.remote import RemoteCamera
    from vampires.control import daemon_alive, discover
    from vampires.control.spawn import pid_alive

    found = discover("camera")
    pids = {d.name: d.pid for d in found if d.pid is not None}
    names = args.cameras or [d.name for d in found]
    if not names:
        print("no camera daemon is running")
        return 0
    result: dict[str, str] = {}
    for name in names:
        if not daemon_alive("camera", name):
            result[name] = "not running"
            continue
        try:
            with RemoteCamera(name, timeout=args.timeout) as cam:
                cam.shutdown()
        except VampiresError as exc:
            result[name] = f"FAILED: {exc}"
    deadline = time.monotonic() + args.timeout
    pending = [n for n in names if n not in result]

    def running(name: str) -> bool:
        # the socket closes before the process has exited: wait for the process
        pid = pids.get(name)
        return pid_alive(pid) if pid is not None else daemon_alive("camera", name)

    while pending and time.monotonic() < deadline:
        time.sleep(0.02)
        pending = [n for n in pending if running(n)]
    for name in names:
        if name not in result:
            alive = name in pending
            result[name] = f"FAILED: still running after {args.timeout:g} s" if alive else "stopped"
        print(f"{name}: {result[name]}")
    return 1 if any(r.startswith("FAILED") for r in result.values()) else 0
