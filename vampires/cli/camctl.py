"""Operator camera commands with today's names, acting on both cameras by default.

``set_crop MODE``, ``get_crop``, ``set_tint SECONDS``, ``get_tint``,
``set_fps HZ``, ``get_fps``, ``set_readout_mode FAST|SLOW``,
``get_readout_mode``, ``set_trigger enable|disable``, ``get_trigger``. Each
talks to the camera daemons (``vampires camstart``) concurrently and prints
one line per camera (:class:`vampires.camera.remote.CameraGroup` does the
work); the exit status is 1 if any camera failed.
``-c/--camera`` picks cameras (``1``, ``2``, ``vcam1``, ``vpupcam`` ...;
repeatable; ``-1`` or ``both`` = vcam1 and vcam2, the default).
``set_trigger disable`` disables the external trigger (camstack enabled it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from vampires.cli import pipe_safe
from vampires.cli._logcams import CAMERA_HELP

if TYPE_CHECKING:
    from vampires.camera.remote import CameraGroup, CameraResult

__all__ = [
    "get_crop",
    "get_fps",
    "get_readout_mode",
    "get_tint",
    "get_trigger",
    "main",
    "parse_cameras",
    "report",
    "set_crop",
    "set_fps",
    "set_readout_mode",
    "set_tint",
    "set_trigger",
]

DEFAULT_CAMERAS = ("vcam1", "vcam2")
_ALIASES = {"1": ("vcam1",), "2": ("vcam2",), "-1": DEFAULT_CAMERAS, "both": DEFAULT_CAMERAS,
            "all": DEFAULT_CAMERAS, "pup": ("vpupcam",)}  # fmt: skip


def parse_cameras(values: Sequence[str] | None) -> list[str]:
    """Turn ``-c`` values into camera names (default vcam1 and vcam2).

    Raises
    ------
    ValueError
        A value that is not a camera name.
    """
    names: list[str] = []
    for value in values or ["both"]:
        for part in value.split(","):
            key = part.strip().lower()
            found = _ALIASES.get(key, (key,) if key.replace("_", "").isalnum() else None)
            if not found:
                msg = f"invalid camera {part!r} (use 1, 2, -1 or both, or a name such as vcam1)"
                raise ValueError(msg)
            names += [n for n in found if n not in names]
    return names


def report(results: Sequence[CameraResult]) -> int:
    """Print one line per camera; return 0 if every camera succeeded, else 1."""
    for result in results:
        print(result.line())
    return 0 if all(r.ok for r in results) else 1


def _parser(prog: str, description: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument(
        "-c", "--camera", action="append",
        help=f"{CAMERA_HELP} or vpupcam; repeatable",
    )  # fmt: skip
    parser.add_argument("--timeout", type=float, default=5.0, help="seconds per reply")
    return parser


def _run(
    argv: Sequence[str] | None,
    prog: str,
    description: str,
    add: Callable[[argparse.ArgumentParser], None] | None,
    action: Callable[[CameraGroup, argparse.Namespace], list[CameraResult]],
) -> int:
    from vampires.camera.remote import CameraGroup

    parser = _parser(prog, description)
    if add is not None:
        add(parser)
    args = parser.parse_args(argv)
    try:
        cameras = parse_cameras(args.camera)
    except ValueError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    return report(action(CameraGroup(cameras, timeout=args.timeout), args))


def _arg(name: str, **kwargs: Any) -> Callable[[argparse.ArgumentParser], None]:  # noqa: ANN401
    def add(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(name, **kwargs)

    return add


@pipe_safe
def set_crop(argv: Sequence[str] | None = None) -> int:
    """``set_crop MODE``: change the crop of the cameras."""
    add = _arg("mode", help="crop name (STANDARD, MBI, MBI_REDUCED, ...)")
    return _run(argv, "set_crop", "Change the crop of the cameras.", add,
                lambda g, a: g.set_crop(a.mode))  # fmt: skip


@pipe_safe
def get_crop(argv: Sequence[str] | None = None) -> int:
    """``get_crop``: print the crop of the cameras."""
    return _run(argv, "get_crop", "Print the crop.", None, lambda g, a: g.crop())


@pipe_safe
def set_tint(argv: Sequence[str] | None = None) -> int:
    """``set_tint SECONDS``: set the exposure time."""
    add = _arg("tint", type=float, help="exposure [s]")
    return _run(argv, "set_tint", "Set the exposure time [s].", add,
                lambda g, a: g.set_tint(a.tint))  # fmt: skip


@pipe_safe
def get_tint(argv: Sequence[str] | None = None) -> int:
    """``get_tint``: print the exposure time."""
    return _run(argv, "get_tint", "Print the exposure time.", None, lambda g, a: g.tint())


@pipe_safe
def set_fps(argv: Sequence[str] | None = None) -> int:
    """``set_fps HZ``: set the frame rate (at most the crop's maximum)."""
    add = _arg("fps", type=float, help="frame rate [Hz]")
    return _run(argv, "set_fps", "Set the frame rate [Hz].", add, lambda g, a: g.set_fps(a.fps))


@pipe_safe
def get_fps(argv: Sequence[str] | None = None) -> int:
    """``get_fps``: print frame rate, maximum and measured rate."""
    return _run(argv, "get_fps", "Print the frame rate.", None, lambda g, a: g.fps())


@pipe_safe
def set_readout_mode(argv: Sequence[str] | None = None) -> int:
    """``set_readout_mode FAST|SLOW``."""
    add = _arg("mode", type=str.upper, choices=("FAST", "SLOW"), help="FAST or SLOW")
    return _run(argv, "set_readout_mode", "Set the readout mode.", add,
                lambda g, a: g.set_readout_mode(a.mode))  # fmt: skip


@pipe_safe
def get_readout_mode(argv: Sequence[str] | None = None) -> int:
    """``get_readout_mode``."""
    return _run(argv, "get_readout_mode", "Print the readout mode.", None,
                lambda g, a: g.readout_mode())  # fmt: skip


@pipe_safe
def set_trigger(argv: Sequence[str] | None = None) -> int:
    """``set_trigger enable|disable``: external trigger on or off."""
    add = _arg("state", type=str.lower, choices=("enable", "disable"))
    return _run(argv, "set_trigger", "Enable or disable the external trigger.", add,
                lambda g, a: g.set_external_trigger(a.state == "enable"))  # fmt: skip


@pipe_safe
def get_trigger(argv: Sequence[str] | None = None) -> int:
    """``get_trigger``."""
    return _run(argv, "get_trigger", "Print the trigger mode.", None,
                lambda g, a: g.external_trigger())  # fmt: skip


_COMMANDS: dict[str, Callable[[Sequence[str] | None], int]] = {
    "set_crop": set_crop, "get_crop": get_crop, "set_tint": set_tint, "get_tint": get_tint,
    "set_fps": set_fps, "get_fps": get_fps, "set_readout_mode": set_readout_mode,
    "get_readout_mode": get_readout_mode, "set_trigger": set_trigger, "get_trigger": get_trigger,
}  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``camctl <command> ...`` (the same commands under one name)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in _COMMANDS:
        print(f"usage: camctl {{{','.join(_COMMANDS)}}} ...", file=sys.stderr)
        return 2
    return _COMMANDS[args[0]](args[1:])
