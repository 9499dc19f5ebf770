"""``vampires_startlog``: start saving on both cameras at once.

Sends ``on`` to the loggers of the selected cameras concurrently and prints,
per camera, the result, the logger state and the measured start skew.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from vampires.cli import pipe_safe
from vampires.cli._logcams import add_camera, add_timeout, int_arg, option_scheme, report

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vampires_startlog",
        description="Start saving FITS cubes on the VAMPIRES cameras (both by default).",
        epilog=option_scheme("zc"),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_camera(parser)
    parser.add_argument(
        "-z",
        "--cubes",
        "--ncubes",
        dest="cubes",
        type=int_arg,
        metavar="N",
        help="stop by itself after N cubes; -1 = until paused. Omitted: asked on a "
        "terminal; otherwise (and on an empty answer) the count set by vampires_preplog "
        "stands",
    )
    add_timeout(parser)
    return parser


def _ask_cubes() -> int | None:
    """Ask the cube count on a terminal; None keeps the count the logger has."""
    if not sys.stdin.isatty():
        return None
    answer = input(
        "Specify number of cubes (-1 for infinite; Enter keeps the prepared count): "
    ).strip()
    return int(answer) if answer else None


@pipe_safe
def main(argv: Sequence[str] | None = None) -> int:
    """Run ``vampires_startlog [-c CAM] [-z NCUBES]``; exit 1 if any camera failed."""
    from vampires.errors import VampiresError
    from vampires.fitslog.remote import LoggerGroup

    args = _parser().parse_args(argv)
    try:
        # an explicit -z (or answer) wins; otherwise what vampires_preplog set stands
        cubes = args.cubes if args.cubes is not None else _ask_cubes()
        if cubes is not None and (cubes == 0 or cubes < -1):
            print(f"vampires_startlog: -z must be -1 or >= 1 (got {cubes})", file=sys.stderr)
            return 2
        result = LoggerGroup(args.cameras, timeout=args.reply_timeout).on(cubes=cubes)
    except (VampiresError, ValueError, EOFError) as exc:
        print(f"vampires_startlog: {exc}", file=sys.stderr)
        return 1
    return report(result)
