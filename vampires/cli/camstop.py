"""``vampires camstop [vcam1 ...]``: stop camera daemons (default: every running one)."""

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
    failed = False
    for name in names:
        if not daemon_alive("camera", name):
            print(f"{name}: not running")
            continue
        try:
            with RemoteCamera(name, timeout=args.timeout) as cam:
                cam.shutdown()
            deadline = time.monotonic() + args.timeout
            while daemon_alive("camera", name) and time.monotonic() < deadline:
                time.sleep(0.05)
            if daemon_alive("camera", name):
                failed = True
                print(f"{name}: FAILED: still running after {args.timeout:g} s")
            else:
                print(f"{name}: stopped")
        except VampiresError as exc:
            failed = True
            print(f"{name}: FAILED: {exc}")
    return 1 if failed else 0
