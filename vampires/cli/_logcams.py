"""Shared bits of the logging commands: camera selection and result printing.

Option letters, the same in every logging command (they keep the letters
operators know from ``vampires_preplog``; note that milk-streamFITSlog used
``-z`` for the cube size and ``-c`` for the cube count, we do not):

  -n/--frames N     frames per cube          (alias --cube-size)
  -z/--cubes N      number of cubes, -1 = until stopped   (alias --ncubes)
  -c/--camera CAM   1, 2, -1 or both (default), or a stream name such as vcam1
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from vampires.control.client import GroupResult

CAMERAS = ("vcam1", "vcam2")

#: How every command names the cameras (-c), logging and camera commands alike.
CAMERA_HELP = "camera: 1, 2, -1 or both (default both), or a stream name such as vcam1"

_SCHEME_LINES = {
    "n": "  -n/--frames N    frames per cube (alias --cube-size)",
    "z": "  -z/--cubes N     number of cubes, -1 = until stopped (alias --ncubes)",
    "c": "  -c/--camera CAM  1, 2, -1 or both, or a stream name (vcam1)",
}


def option_scheme(letters: str) -> str:
    """Return the epilog listing the option letters a logging command has.

    Parameters
    ----------
    letters
        The letters of the command's options among ``n``, ``z``, ``c``.

    Returns
    -------
    str
    """
    lines = ["option letters (the same in vampires_preplog, _startlog, _pauselog, _stoplog):"]
    lines += [_SCHEME_LINES[letter] for letter in letters]
    lines.append("  (milk-streamFITSlog's -z/-c meant cube size/cube count; ours do not)")
    return "\n".join(lines)


OPTION_SCHEME = option_scheme("nzc")


def camera_names(value: str) -> list[str]:
    """Turn a ``-c`` value into stream names: ``-1`` -> both, ``1`` -> vcam1.

    Parameters
    ----------
    value
        ``-1``, ``1``, ``2``, a stream name, or comma-separated names.

    Returns
    -------
    list of str

    Raises
    ------
    argparse.ArgumentTypeError
        Unknown camera.
    """
    from vampires.control.protocol import validate_name
    from vampires.errors import ConfigError

    value = value.strip()
    if value in {"-1", "both", "all"}:
        return list(CAMERAS)
    if value in {"1", "2"}:
        return [f"vcam{value}"]
    if value.lstrip("-").isdigit():
        msg = f"camera must be 1, 2 or -1 (both), got {value}"
        raise argparse.ArgumentTypeError(msg)
    names = [v.strip() for v in value.split(",") if v.strip()]
    try:
        return [validate_name(n) for n in names] or list(CAMERAS)
    except ConfigError as exc:
        msg = f"camera must be 1, 2, -1 (both) or a stream name: {exc}"
        raise argparse.ArgumentTypeError(msg) from exc


def add_camera(parser: argparse.ArgumentParser) -> None:
    """Add ``-c/--camera`` (default both) to ``parser``."""
    parser.add_argument(
        "-c",
        "--camera",
        dest="cameras",
        type=camera_names,
        default=list(CAMERAS),
        metavar="CAM",
        help=CAMERA_HELP,
    )


def add_timeout(parser: argparse.ArgumentParser) -> None:
    """Add ``--reply-timeout`` (seconds to wait for each logger)."""
    parser.add_argument(
        "--reply-timeout",
        type=float,
        default=5.0,
        metavar="S",
        help="seconds to wait for each logger's reply (default 5)",
    )


def report(result: GroupResult, *, file: TextIO | None = None) -> int:
    """Print one line per logger and return the exit status (1 if any failed).

    Parameters
    ----------
    result
        What the loggers answered.
    file
        Stream to print to (default stdout).

    Returns
    -------
    int
    """
    from vampires.fitslog.remote import describe

    out = sys.stdout if file is None else file
    for line in describe(result):
        print(line, file=out)
    return 0 if result.ok and len(result) > 0 else 1


def int_arg(text: str) -> int:
    """Parse an integer option with a clear message."""
    try:
        return int(text)
    except ValueError:
        msg = f"expected an integer, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
