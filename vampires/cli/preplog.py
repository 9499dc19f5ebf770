"""``vampires_preplog``: prepare logging on the VAMPIRES cameras.

Asks, in this order (an option given on the command line skips its question):

1. frames per cube (``-n``; suggested for the current crop, cubes of ~1.2 GB)
2. number of cubes (``-z``; -1 = until stopped)
3. camera (``-c``; -1 = both)
4. archive to Gen2 (``-a`` / ``-na``): files go to ``<archive root>/<UT date>/vcam<N>``
5. data type (``-t``; Subaru list, default OBJECT)
6. save directory when not archiving (``-d``; default: config data_root)

then sets DATA-TYP on each camera and starts its logger (or reconfigures the
running one), and prints one line per camera. Start saving with
``vampires_startlog``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import TypeVar

from vampires.cli import pipe_safe
from vampires.cli._logcams import OPTION_SCHEME, camera_names, int_arg
from vampires.errors import ConfigError

__all__ = ["main"]

T = TypeVar("T")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vampires_preplog",
        description="Prepare FITS logging on the VAMPIRES cameras: set DATA-TYP and start "
        "the loggers (saving starts with vampires_startlog). Options skip their question.",
        epilog=OPTION_SCHEME,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "-n",
        "--frames",
        "--cube-size",
        dest="frames",
        type=int_arg,
        metavar="N",
        help="frames per cube",
    )
    parser.add_argument(
        "-z",
        "--cubes",
        "--ncubes",
        dest="cubes",
        type=int_arg,
        metavar="N",
        help="number of cubes, -1 = until stopped",
    )
    parser.add_argument(
        "-c",
        "--camera",
        dest="cameras",
        type=camera_names,
        metavar="CAM",
        help="camera: 1, 2, -1 or both, or a stream name such as vcam1 (asked when omitted)",
    )
    arch = parser.add_mutually_exclusive_group()
    arch.add_argument(
        "-a",
        "--archive",
        dest="archive",
        action="store_true",
        default=None,
        help="archive to Gen2: <archive root>/<UT date>/vcam<N>",
    )
    arch.add_argument(
        "-na",
        "--no-archive",
        dest="archive",
        action="store_false",
        help="do not archive: save under --dir",
    )
    parser.add_argument(
        "-t",
        "--data-type",
        dest="data_type",
        metavar="TYPE",
        help="Subaru data type (default OBJECT)",
    )
    parser.add_argument(
        "-d",
        "--dir",
        dest="directory",
        metavar="DIR",
        help="save directory when not archiving (default: config data_root)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="S",
        help="seconds of stream silence closing a cube (default: adaptive)",
    )
    return parser


def _ask(prompt: str, parse: Callable[[str], T], default: str | None) -> T:
    suffix = f" [{default}]" if default is not None else ""
    for _ in range(5):
        try:
            answer = input(f"{prompt}{suffix}: ").strip()
        except EOFError:
            msg = f"no answer to {prompt!r}; give it as an option (see --help)"
            raise ConfigError(msg) from None
        if not answer and default is not None:
            answer = default
        try:
            return parse(answer)
        except (ValueError, argparse.ArgumentTypeError) as exc:
            print(f"  invalid answer: {exc}", file=sys.stderr)
    msg = f"too many invalid answers to {prompt!r}"
    raise ConfigError(msg)


def _positive(text: str) -> int:
    from vampires._checks import check_int

    return check_int(int(text), "frames per cube", 1)


def _cubes(text: str) -> int:
    value = int(text)
    if value == 0 or value < -1:
        msg = f"must be -1 or >= 1 (got {value})"
        raise ValueError(msg)
    return value


def _yes_no(text: str) -> bool:
    if text.lower() in {"y", "yes", "true", "1"}:
        return True
    if text.lower() in {"n", "no", "false", "0"}:
        return False
    msg = f"answer y or n (got {text!r})"
    raise ValueError(msg)


@pipe_safe
def main(argv: Sequence[str] | None = None) -> int:
    """Run ``vampires_preplog``; exit 1 if any camera failed."""
    from vampires.camera.modes import DATA_TYPES, parse_data_type
    from vampires.cli._logcams import CAMERAS
    from vampires.config import Config
    from vampires.errors import VampiresError
    from vampires.fitslog.remote import check_prep, prepare_loggers, suggest_frames

    args = _parser().parse_args(argv)
    try:
        _check_options(args)  # refuse bad options before any question
        config = Config.load()
        frames = args.frames
        if frames is None:
            hint = suggest_frames(args.cameras or list(CAMERAS))
            prompt = "Specify number of frames per cube"
            if hint is not None:
                prompt += f" (~1.2 GB cubes for the current crop: {hint})"
            frames = _ask(prompt, _positive, str(hint) if hint else None)
        cubes = (
            args.cubes
            if args.cubes is not None
            else _ask("Specify number of cubes (-1 for infinite)", _cubes, "-1")
        )
        cameras = args.cameras or _ask("Specify camera, if -1 uses both", camera_names, "-1")
        archive = (
            args.archive
            if args.archive is not None
            else _ask("Archive data to Gen2 (y/n)", _yes_no, "n")
        )
        data_type = args.data_type or _ask(
            f"Data type ({', '.join(DATA_TYPES)})", parse_data_type, "OBJECT"
        )
        if archive:
            base = str(config.archive_root)
        else:
            base = args.directory or _ask("Please enter save directory", str, str(config.data_root))
        check_prep(frames=frames, cubes=cubes, data_type=data_type, timeout=args.timeout)
        print(f"Saving to {base}/<UT date>/<camera>")
        results = prepare_loggers(
            cameras,
            frames=frames,
            cubes=cubes,
            base=base,
            data_type=data_type,
            timeout=args.timeout,
        )
    except VampiresError as exc:
        print(f"vampires_preplog: {exc}", file=sys.stderr)
        return 1
    for result in results:
        print(result.line())
    ok = all(r.ok for r in results)
    if ok:
        print("Loggers ready: start saving with vampires_startlog")
    return 0 if ok else 1


def _check_options(args: argparse.Namespace) -> None:
    """Refuse bad option values at once (before questions and messages)."""
    from vampires.fitslog.remote import check_prep

    check_prep(
        frames=args.frames if args.frames is not None else 1,
        cubes=args.cubes if args.cubes is not None else -1,
        data_type=args.data_type,
        timeout=args.timeout,
    )
