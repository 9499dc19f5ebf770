"""``vampires logctl``: the logger control screen (like ``milk-fpsCTRL``).

Honours ``FPS_FILTSTRING_NAME`` (e.g. ``streamFITSlog-vcam``) as the initial
name filter; ``--filter`` wins over it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vampires logctl",
        description="Control screen of the FITS loggers: status lights D (daemon alive), "
        "R (run loop), S (saving); keys: space save on/off, l last cube, n next cube, "
        "z cube size, c cube count, r restart, k kill, f filter, q quit.",
    )
    parser.add_argument(
        "--filter",
        metavar="TEXT",
        help="show loggers whose name (or streamFITSlog-<name>) contains TEXT "
        "(default: $FPS_FILTSTRING_NAME)",
    )
    parser.add_argument(
        "--interval",
        type=float,
        default=1.0,
        metavar="S",
        help="seconds between refreshes (default 1)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the control screen until ``q``."""
    args = _parser().parse_args(argv)
    if not args.interval > 0:
        print(f"vampires logctl: --interval must be > 0 (got {args.interval})", file=sys.stderr)
        return 2
    from vampires.fitslog.tui import run

    name_filter = args.filter if args.filter is not None else os.environ.get("FPS_FILTSTRING_NAME")
    run(name_filter, interval=args.interval)
    return 0
