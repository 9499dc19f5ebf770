"""Operator camera commands with today's names, acting on both cameras by default.

``set_crop MODE``, ``get_crop``, ``set_tint SECONDS``, ``get_tint``,
``set_fps HZ``, ``get_fps``, ``set_readout_mode FAST|SLOW``,
``get_readout_mode``, ``set_trigger enable|disable``, ``get_trigger``. Each
talks to the camera daemons (``vampires camstart``) concurrently and prints
one line per camera; the exit status is 1 if any camera failed.
``-c/--camera`` picks cameras (``1``, ``2``, ``vcam1``, ``vpupcam`` ...;
repeatable; ``-1`` or ``both`` = vcam1 and vcam2, the default).
``set_trigger disable`` disables the external trigger (camstack enabled it).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from vampires.cli import pipe_safe
from vampires.cli._logcams import CAMERA_HELP
from vampires.errors import VampiresError

if TYPE_CHECKING:
    from vampires.camera.remote import RemoteCamera

__all__ = [
    "get_crop",
    "get_fps",
    "get_readout_mode",
    "get_tint",
    "get_trigger",
    "main",
    "parse_cameras",
    "run_on_cameras",
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


def run_on_cameras(
    cameras: Sequence[str], action: Callable[[RemoteCamera], str], *, timeout: float = 5.0
) -> int:
    """Run ``action`` on every camera concurrently; print one line each.

    Parameters
    ----------
    cameras
        Camera names.
    action
        Called with a connected :class:`RemoteCamera`; returns the text after
        ``"<camera>: "``. Raising a :class:`VampiresError` marks the camera failed.
    timeout
        Seconds per reply.

    Returns
    -------
    int
        0 if every camera succeeded, else 1.
    """
    from vampires.camera.remote import RemoteCamera

    def one(name: str) -> tuple[bool, str]:
        try:
            with RemoteCamera(name, timeout=timeout) as camera:
                return True, action(camera)
        except VampiresError as exc:
            return False, f"FAILED: {exc}"

    with ThreadPoolExecutor(max_workers=max(1, len(cameras))) as pool:
        results = list(pool.map(one, cameras))
    for name, (_, text) in zip(cameras, results, strict=True):
        print(f"{name}: {text}")
    return 0 if all(ok for ok, _ in results) else 1


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
    action: Callable[[argparse.Namespace], Callable[[RemoteCamera], str]],
) -> int:
    parser = _parser(prog, description)
    if add is not None:
        add(parser)
    args = parser.parse_args(argv)
    try:
        cameras = parse_cameras(args.camera)
    except ValueError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    return run_on_cameras(cameras, action(args), timeout=args.timeout)


def _crop_text(camera: RemoteCamera) -> str:
    crop = camera.crop
    return f"{crop.name} {crop.width}x{crop.height} at ({crop.x0}, {crop.y0})"


@pipe_safe
def set_crop(argv: Sequence[str] | None = None) -> int:
    """``set_crop MODE``: change the crop of the cameras."""

    def add(p: argparse.ArgumentParser) -> None:
        p.add_argument("mode", help="crop name (STANDARD, MBI, MBI_REDUCED, ...)")

    def action(args: argparse.Namespace) -> Callable[[RemoteCamera], str]:
        def go(cam: RemoteCamera) -> str:
            crop = cam.set_crop(args.mode)
            return f"crop {crop.name} {crop.width}x{crop.height} at ({crop.x0}, {crop.y0})"

        return go

    return _run(argv, "set_crop", "Change the crop of the cameras.", add, action)


@pipe_safe
def get_crop(argv: Sequence[str] | None = None) -> int:
    """``get_crop``: print the crop of the cameras."""
    return _run(argv, "get_crop", "Print the crop.", None, lambda a: _crop_text)


@pipe_safe
def set_tint(argv: Sequence[str] | None = None) -> int:
    """``set_tint SECONDS``: set the exposure time."""

    def add(p: argparse.ArgumentParser) -> None:
        p.add_argument("tint", type=float, help="exposure [s]")

    def action(args: argparse.Namespace) -> Callable[[RemoteCamera], str]:
        def go(cam: RemoteCamera) -> str:
            t = cam.set_tint(args.tint)
            return f"tint {t:.6g} s ({cam.fps:.2f} Hz)"

        return go

    return _run(argv, "set_tint", "Set the exposure time [s].", add, action)


@pipe_safe
def get_tint(argv: Sequence[str] | None = None) -> int:
    """``get_tint``: print the exposure time."""
    return _run(argv, "get_tint", "Print the exposure time.", None,
                lambda a: lambda cam: f"{cam.tint:.6g} s")  # fmt: skip


@pipe_safe
def set_fps(argv: Sequence[str] | None = None) -> int:
    """``set_fps HZ``: set the frame rate (at most the crop's maximum)."""

    def add(p: argparse.ArgumentParser) -> None:
        p.add_argument("fps", type=float, help="frame rate [Hz]")

    def action(args: argparse.Namespace) -> Callable[[RemoteCamera], str]:
        def go(cam: RemoteCamera) -> str:
            f = cam.set_fps(args.fps)
            return f"{f:.2f} Hz (tint {cam.tint:.6g} s)"

        return go

    return _run(argv, "set_fps", "Set the frame rate [Hz].", add, action)


@pipe_safe
def get_fps(argv: Sequence[str] | None = None) -> int:
    """``get_fps``: print frame rate, maximum and measured rate."""

    def go(cam: RemoteCamera) -> str:
        st = cam.status()
        text = f"{st.fps:.2f} Hz (max {st.max_fps:.2f} Hz, measured {st.measured_fps:.2f} Hz)"
        if st.error:  # acquisition stopped, or a real camera not answering
            from vampires.errors import CameraError

            msg = f"{text}; {st.error}"
            raise CameraError(msg)
        return text

    return _run(argv, "get_fps", "Print the frame rate.", None, lambda a: go)


@pipe_safe
def set_readout_mode(argv: Sequence[str] | None = None) -> int:
    """``set_readout_mode FAST|SLOW``."""

    def add(p: argparse.ArgumentParser) -> None:
        p.add_argument("mode", type=str.upper, choices=("FAST", "SLOW"), help="FAST or SLOW")

    def action(args: argparse.Namespace) -> Callable[[RemoteCamera], str]:
        def go(cam: RemoteCamera) -> str:
            mode = cam.set_readout_mode(args.mode)
            return f"readout {mode.value} ({cam.fps:.2f} Hz)"

        return go

    return _run(argv, "set_readout_mode", "Set the readout mode.", add, action)


@pipe_safe
def get_readout_mode(argv: Sequence[str] | None = None) -> int:
    """``get_readout_mode``."""
    return _run(argv, "get_readout_mode", "Print the readout mode.", None,
                lambda a: lambda cam: cam.readout_mode.value)  # fmt: skip


@pipe_safe
def set_trigger(argv: Sequence[str] | None = None) -> int:
    """``set_trigger enable|disable``: external trigger on or off."""

    def add(p: argparse.ArgumentParser) -> None:
        p.add_argument("state", type=str.lower, choices=("enable", "disable"))

    def action(args: argparse.Namespace) -> Callable[[RemoteCamera], str]:
        enable = args.state == "enable"

        def go(cam: RemoteCamera) -> str:
            on = cam.set_external_trigger(enable)
            return f"external trigger {'enabled' if on else 'disabled'}"

        return go

    return _run(argv, "set_trigger", "Enable or disable the external trigger.", add, action)


@pipe_safe
def get_trigger(argv: Sequence[str] | None = None) -> int:
    """``get_trigger``."""
    return _run(argv, "get_trigger", "Print the trigger mode.", None,
                lambda a: lambda cam: "external trigger " +
                ("enabled" if cam.external_trigger else "disabled"))  # fmt: skip


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
