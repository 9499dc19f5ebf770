"""``vampires demo``: the whole data path on simulated cameras, in one command."""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from collections.abc import Sequence
from pathlib import Path


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vampires demo",
        description="Run simulated vcam1 + vcam2 (MBI, hardware-trigger paired) and vpupcam, "
        "a TCP mirror and a 20 FPS ZMQ link of vcam1, and FITS loggers on both VCAMs; "
        "then show the fitswatcher panel and a verified summary. Uses a private shm "
        "folder, so real streams are never touched.",
    )
    p.add_argument("--duration", type=float, default=20.0, help="seconds of logging (20)")
    p.add_argument("--crop", default="MBI", help="crop of vcam1/vcam2 (MBI)")
    p.add_argument("--fps", type=float, default=20.0, help="trigger rate of the VCAMs (20)")
    p.add_argument(
        "--cube-frames",
        type=int,
        default=100,
        help="frames per cube (100; the production MBI preset is 250 = 1.2 GB)",
    )
    p.add_argument("--out", type=Path, help="folder for the cubes (kept); default a temp folder")
    p.add_argument("--keep", action="store_true", help="keep the temp folder after the run")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``vampires demo``; exit 0 when every cube verified and nothing was dropped."""
    from vampires.cli import interruptible

    interruptible()  # Ctrl-C ends the demo even if started with SIGINT ignored
    args = _parser().parse_args(argv)
    from rich.console import Console
    from rich.live import Live

    from vampires.demo import DemoOptions, discard_output, run_demo
    from vampires.demo_view import render_progress, render_summary
    from vampires.errors import VampiresError
    from vampires.watch.tui import render_panel
    from vampires.watch.watcher import Watcher

    console = Console()
    # the crop tables' off-grid notice (HALFARC) is for operators choosing crops, not the demo
    logging.getLogger("vampires.camera.table").setLevel(logging.ERROR)
    try:
        options = DemoOptions(
            duration=args.duration,
            crop=args.crop,
            fps=args.fps,
            cube_frames=args.cube_frames,
            out=args.out,
            keep=args.keep,
        )
        console.print("[bold]vampires demo[/]: starting cameras, links and loggers ...")
        with Live(console=console, refresh_per_second=4, transient=True) as live:
            summary = run_demo(options, on_progress=lambda p: live.update(render_progress(p)))
    except VampiresError as exc:
        print(f"vampires demo: {exc}", file=sys.stderr)
        return 1
    watcher = Watcher([str(summary.out / "*" / "vcam*")], n=3)
    console.print(render_panel(watcher.scan(), now=dt.datetime.now()))
    console.print(render_summary(summary))
    discard_output(summary)
    return 0 if summary.ok and not summary.interrupted else 1
