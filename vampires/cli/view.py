"""``vampires view``: live viewer of local streams and ZMQ publishers.

Usage: ``vampires view [options] TARGET...`` with TARGET a stream (``vcam1``)
or a publisher (``tcp://HOST:PORT/vcam1``); several are shown side by side.
Needs the ``viewer`` extra (``pip install 'vampires[viewer]'``); press ``h`` in
the window for the keys.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from vampires.errors import VampiresError

__all__ = ["main"]

_STRETCHES = ("linear", "sqrt", "log", "asinh")  # checked again by RenderSettings
_EPILOG = """examples:
  vampires view vcam1 vcam2
  vampires view tcp://scexao5:5555/vcam1 --stretch log
  vampires view vcam1 --max-fps 5 --bin 3          # over ssh -X
  vampires view vcam1 --screenshot vcam1.png --exit-after 3
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vampires view",
        description="Live viewer of camera streams (local shm or ZMQ publishers).",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("targets", nargs="+", metavar="TARGET", help="vcam1 or tcp://HOST:PORT/vcam1")
    p.add_argument("--stretch", default="linear", choices=_STRETCHES, help="(default linear)")
    p.add_argument("--cmap", default="grey", help="grey, heat, viridis, inferno, cool")
    p.add_argument("--percentiles", nargs=2, type=float, default=(0.5, 99.5), metavar=("LO", "HI"))
    p.add_argument("--limits", nargs=2, type=float, metavar=("LO", "HI"), help="manual [ADU]")
    p.add_argument("--bin", type=int, default=0, help="display binning (0 = fit the window)")
    p.add_argument("--sample", action="store_true", help="decimate instead of averaging")
    p.add_argument("--saturation", type=float, metavar="ADU", help="(default: type maximum)")
    p.add_argument("--max-fps", type=float, metavar="F", help="(60; 10 over ssh -X)")
    p.add_argument("--dark", metavar="FITS", help="subtract this dark frame")
    p.add_argument("--save-dir", metavar="DIR", help="where 'w' writes frames (default .)")
    p.add_argument("--screenshot", metavar="PNG", help="write the window to PNG at exit")
    p.add_argument("--exit-after", type=float, metavar="S", help="close after S seconds")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``vampires view``.

    Returns
    -------
    int
        0 when the window was closed (or Ctrl-C); 2 for bad arguments or no display.
    """
    args = _parser().parse_args(argv)
    try:
        return _view(args)
    except KeyboardInterrupt:  # Ctrl-C before the window's own handler was installed
        return 0


def _view(args: argparse.Namespace) -> int:
    try:
        from vampires.view.window import Viewer

        viewer = Viewer(
            args.targets,
            stretch=args.stretch,
            colormap=args.cmap,
            percentiles=tuple(args.percentiles),
            limits=tuple(args.limits) if args.limits else None,
            bin=args.bin,
            sample=args.sample,
            saturation=args.saturation,
            max_fps=args.max_fps,
            dark=args.dark,
            save_dir=args.save_dir,
        )
    except VampiresError as exc:
        print(f"vampires view: {exc}", file=sys.stderr)
        return 2
    with viewer:
        if args.exit_after is None:
            print(
                f"vampires view: {' '.join(args.targets)} at <= {viewer.max_fps:g} fps "
                "(h in the window: keys; q or Ctrl-C: close)",
                file=sys.stderr,
                flush=True,
            )
            return viewer.run()
        viewer.run_for(max(args.exit_after, 0.0))
        if args.screenshot:
            viewer.save_screenshot(args.screenshot)
    return 0
