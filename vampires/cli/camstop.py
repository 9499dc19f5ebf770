"""``vampires camstop [vcam1 ...]``: stop camera daemons (default: every running one).

Each camera is asked to shut down (acquisition stopped, stream file kept),
all at once; the command then waits for every process to exit and prints one
line per camera.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

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
    from vampires.camera.remote import stop_cameras
    from vampires.cli.camctl import report

    results = stop_cameras(args.cameras, timeout=args.timeout)
    if not results:
        print("no camera daemon is running")
        return 0
    return report(results)
