"""``vampires_datatype [TYPE] [-c CAM]``: set DATA-TYP on the cameras (prompts if omitted).

The value is kept by each camera across restarts, crop and readout changes.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from vampires.cli import pipe_safe

__all__ = ["main"]


def _prompt(types: Sequence[str]) -> str | None:
    for i, name in enumerate(types, 1):
        print(f"  {i:2d}. {name}")
    try:
        answer = input("Data type [OBJECT]: ").strip()
    except EOFError:
        return None
    if not answer:
        return "OBJECT"
    if answer.isdigit() and 1 <= int(answer) <= len(types):
        return types[int(answer) - 1]
    return answer


@pipe_safe
def main(argv: Sequence[str] | None = None) -> int:
    """Set DATA-TYP on each camera; 0 if all accepted it."""
    from vampires.camera.modes import DATA_TYPES, parse_data_type
    from vampires.camera.remote import CameraGroup
    from vampires.cli._logcams import CAMERA_HELP
    from vampires.cli.camctl import parse_cameras, report
    from vampires.errors import ConfigError

    parser = argparse.ArgumentParser(
        prog="vampires_datatype",
        description="Set DATA-TYP on the cameras (asked when not given). Each camera keeps "
        "the value across restarts, crop and readout changes.",
    )
    parser.add_argument("data_type", nargs="?", help=f"one of {', '.join(DATA_TYPES)}")
    parser.add_argument("-t", "--type", dest="type_option", help="same as DATA_TYPE (old spelling)")
    parser.add_argument("-c", "--camera", action="append", help=CAMERA_HELP)
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per reply")
    args = parser.parse_args(argv)
    try:
        cameras = parse_cameras(args.camera)
    except ValueError as exc:
        print(f"vampires_datatype: {exc}", file=sys.stderr)
        return 2
    value = args.data_type or args.type_option or _prompt(DATA_TYPES)
    if value is None:
        print("vampires_datatype: no data type given", file=sys.stderr)
        return 2
    try:
        data_type = parse_data_type(value)
    except ConfigError as exc:
        print(f"vampires_datatype: {exc}", file=sys.stderr)
        return 2
    if data_type == "ACQUISITION":
        print("note: vampires_dpp sorts ACQUISITION as legacy (pre-2023) data", file=sys.stderr)
    return report(CameraGroup(cameras, timeout=args.timeout).set_data_type(data_type))
