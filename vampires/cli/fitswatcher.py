"""``fitswatcher`` (also ``vampires watch``): a live panel of the FITS cubes being written.

Usage: ``fitswatcher [-n N] [--interval S] [--once] [--json] [--tonight] [--exact] PATTERN...``
e.g. ``fitswatcher -n 3 /mnt/fuuu/ARCHIVED_DATA/$(date -u +'%Y%m%d')/vcam*``.
``--json`` prints one JSON document per refresh (one per line), or one with ``--once``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Sequence

from vampires.cli import interruptible, pipe_safe
from vampires.errors import ConfigError
from vampires.watch.watcher import Watcher, snapshot_dict, tonight_pattern

__all__ = ["main"]


_EPILOG = """examples:
  fitswatcher -n 3 /mnt/fuuu/ARCHIVED_DATA/$(date -u +'%Y%m%d')/vcam*
  fitswatcher --tonight --once
  fitswatcher --json --once /mnt/fuuu/20240611/vcam1 | jq '.folders[].n_files'
"""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="fitswatcher",
        description="Live panel of the FITS cubes arriving in folders (also 'vampires watch').",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("patterns", nargs="*", metavar="PATTERN", help="folders or globs (vcam*)")
    p.add_argument("-n", type=int, default=2, help="newest files shown per folder (default 2)")
    p.add_argument("--interval", type=float, default=1.0, metavar="S", help="refresh period (1 s)")
    p.add_argument("--once", action="store_true", help="print one snapshot and exit")
    p.add_argument("--json", action="store_true", help="print the data as JSON")
    p.add_argument("--tonight", action="store_true", help="watch <archive root>/<UT date>/vcam*")
    p.add_argument("--exact", action="store_true", help="do not add vcamN siblings of folders")
    return p


@pipe_safe
def main(argv: Sequence[str] | None = None) -> int:
    """Run ``fitswatcher``.

    Parameters
    ----------
    argv
        Arguments (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 (also after Ctrl-C or ``kill -INT``, even if started with SIGINT
        ignored); 1 when ``--once`` finds a folder it cannot list; 2 for bad
        arguments; 141 when the reader of the output went away (``| head``).
    """
    interruptible()
    args = _parser().parse_args(argv)
    patterns = list(args.patterns)
    if not patterns and not args.tonight:
        print(
            "fitswatcher: give at least one PATTERN (e.g. '<night>/vcam*') or --tonight",
            file=sys.stderr,
        )
        return 2
    try:
        if args.tonight:
            patterns.append(tonight_pattern())
        watcher = Watcher(patterns, n=args.n, siblings=not args.exact)
        if args.interval <= 0 or args.interval != args.interval:
            msg = f"--interval must be > 0 seconds (got {args.interval})"
            raise ConfigError(msg)
    except ConfigError as exc:
        print(f"fitswatcher: {exc}", file=sys.stderr)
        return 2
    try:
        if args.json:
            for folders in watcher.watch(interval=args.interval):
                doc = snapshot_dict(folders, time_iso=dt.datetime.now().astimezone().isoformat())
                print(json.dumps(doc, indent=2 if args.once else None), flush=True)
                if args.once:
                    return 1 if any(f.error for f in folders) else 0
            return 0
        from vampires.watch.tui import render_panel, run_live

        if args.once:
            from rich.console import Console

            folders = watcher.scan()
            Console().print(render_panel(folders, now=dt.datetime.now()))
            return 1 if any(f.error for f in folders) else 0
        run_live(watcher, interval=args.interval)
    except KeyboardInterrupt:
        return 0
    return 0
