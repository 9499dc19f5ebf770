"""``vampires recover DIR``: turn ``.tmp`` cubes left by a killed logger into FITS cubes."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vampires recover",
        description=(
            "Turn <name>.fits.tmp cubes left by a killed logger (or a full disk) into valid "
            "cubes (every complete frame with its sidecar row, LOGCLOSE = 'recovered') with "
            "their .txt sidecars. A .fits.tmp with no complete frame is set aside as "
            "<name>.fits.tmp.aside; one a running logger is writing is left alone."
        ),
    )
    parser.add_argument(
        "folders", nargs="+", type=Path, help="cube folder(s), searched recursively"
    )
    parser.add_argument("-n", "--dry-run", action="store_true", help="only say what would be done")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``vampires recover``; exit status 1 if any file could not be recovered."""
    args = _parser().parse_args(argv)
    from vampires.errors import RecoverError
    from vampires.fitslog.recover import recover_folder

    status = 0
    for folder in args.folders:
        try:
            reports = recover_folder(folder, dry_run=args.dry_run)
        except RecoverError as exc:
            print(f"FAIL {folder}: {exc}")
            status = 1
            continue
        if not reports:
            print(f"ok   {folder}: nothing to recover")
        for report in reports:
            print(report.line())
            status |= 0 if report.ok else 1
    return status
