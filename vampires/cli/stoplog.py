"""``vampires_stoplog``: stop logging on both cameras at once.

By default (``--kill``) each logger is torn down: the cube being filled is
closed (truncated), buffers are freed and the daemon exits; run
``vampires_preplog`` to log again. ``--no-kill`` only stops saving and keeps
the loggers ready for ``vampires_startlog``.
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
        prog="vampires_stoplog",
        description="Stop logging on the VAMPIRES cameras (both by default).",
        epilog=option_scheme("c"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_camera(parser)
    kill = parser.add_mutually_exclusive_group()
    kill.add_argument(
        "-k",
        "--kill",
        dest="kill",
        action="store_true",
        default=True,
        help="tear the loggers down and free their buffers (default)",
    )
    kill.add_argument(
        "-nk",
        "--no-kill",
        dest="kill",
        action="store_false",
        help="only stop saving (cube truncated); keep the loggers for vampires_startlog",
    )
    add_timeout(parser)
    return parser


@pipe_safe
def main(argv: Sequence[str] | None = None) -> int:
    """Run ``vampires_stoplog [-c CAM] [--kill/--no-kill]``; exit 1 if any camera failed."""
    from vampires.errors import VampiresError
    from vampires.fitslog.remote import LoggerGroup

    args = _parser().parse_args(argv)
    try:
        group = LoggerGroup(args.cameras, timeout=args.reply_timeout)
        result = group.kill() if args.kill else group.off()
    except VampiresError as exc:
        print(f"vampires_stoplog: {exc}", file=sys.stderr)
        return 1
    return report(result)
