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
    parser = argparse.ArgumentParser(prog="vampires camstop", description=__doc__)
    parser.add_argument("cameras", nargs="*", help="camera names (default: all running)")
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for each")
    args = parser.parse_args(argv)
    from vampires.camera.camera import RemoteCamera
    from vampires.control import daemon_alive, discover

    names = args.cameras or [d.name for d in discover("camera")]
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
    while pending and time.monotonic() < deadline:
        time.sleep(0.02)
        pending = [n for n in pending if daemon_alive("camera", n)]
    for name in names:
        if name not in result:
            alive = name in pending
            result[name] = f"FAILED: still running after {args.timeout:g} s" if alive else "stopped"
        print(f"{name}: {result[name]}")
    return 1 if any(r.startswith("FAILED") for r in result.values()) else 0
