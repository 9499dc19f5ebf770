"""``vampires_pauselog``: stop saving on both cameras at once.

Without ``--wait`` the cube being filled is closed now (truncated); with
``--wait`` each logger finishes its current cube first. The loggers keep
running: ``vampires_startlog`` resumes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from vampires.cli import pipe_safe
from vampires.cli._logcams import add_camera, add_timeout, option_scheme, report

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vampires_pauselog",
        description="Pause saving on the VAMPIRES cameras (both by default).",
        epilog=option_scheme("c"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_camera(parser)
    parser.add_argument(
        "-w",
        "--wait",
        action="store_true",
        help="finish the current cube before stopping (default: stop now, truncating it)",
    )
    add_timeout(parser)
    return parser


@pipe_safe
def main(argv: Sequence[str] | None = None) -> int:
    """Run ``vampires_pauselog [-c CAM] [-w]``; exit 1 if any camera failed."""
    from vampires.errors import VampiresError
    from vampires.fitslog.remote import LoggerGroup

    args = _parser().parse_args(argv)
    try:
        group = LoggerGroup(args.cameras, timeout=args.reply_timeout)
        result = group.offc() if args.wait else group.off()
    except VampiresError as exc:
        print(f"vampires_pauselog: {exc}", file=sys.stderr)
        return 1
    return report(result)
