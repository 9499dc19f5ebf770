"""``vampires stream ls|info|create|rm``: inspect and manage shm streams."""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from vampires.errors import ConfigError, StreamError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vampires stream",
        description="List, inspect, create and remove shared-memory streams "
        "(milk ImageStreamIO 2.00 files in $MILK_SHM_DIR).",
    )
    parser.add_argument("--shm-dir", help="stream folder (default: as the C library)")
    sub = parser.add_subparsers(dest="action", required=True)
    ls = sub.add_parser(
        "ls", help="one line per stream: shape, dtype, cnt0, rate, keywords, live link daemons"
    )
    ls.add_argument("--interval", type=float, default=0.2, help="rate window in s (0.2)")
    info = sub.add_parser("info", help="metadata and keyword table of one stream")
    info.add_argument("name")
    create = sub.add_parser("create", help="create a stream")
    create.add_argument("name")
    create.add_argument(
        "--shape", type=int, nargs="+", required=True, metavar="N", help="numpy order: H W"
    )
    create.add_argument("--dtype", default="uint16")
    create.add_argument("--nkw", type=int, default=50, help="keyword slots (50)")
    create.add_argument("--nsem", type=int, default=10, help="semaphores (10)")
    create.add_argument("--cb", type=int, default=0, help="circular-buffer slots (0)")
    create.add_argument("--exist-ok", action="store_true", help="reuse or replace an existing one")
    create.add_argument(
        "--mode",
        metavar="OCTAL",
        help="file permissions, e.g. 0660 (default $VAMPIRES_STREAM_MODE or 0666 as milk)",
    )
    rm = sub.add_parser("rm", help="remove streams")
    rm.add_argument("names", nargs="+", metavar="NAME")
    rm.add_argument("--force", action="store_true", help="also remove files that are not streams")
    return parser


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]]
    return "\n".join(line.rstrip() for line in lines)


def _ls(shm_dir: str | None, interval: float) -> int:
    from pathlib import Path

    from vampires.config import shm_dir as default_dir
    from vampires.link.daemon import running_links
    from vampires.stream import Stream, list_streams

    folder = Path(shm_dir) if shm_dir else default_dir()
    if not folder.is_dir():
        msg = f"shm folder {folder} does not exist (check --shm-dir / MILK_SHM_DIR)"
        raise StreamError(msg)

    rows: list[list[str]] = []
    opened: list[tuple[Stream, int, float]] = []
    links = running_links(shm_dir=shm_dir)
    with contextlib.ExitStack() as stack:
        for name in list_streams(shm_dir=shm_dir):
            try:
                s = stack.enter_context(Stream.open(name, shm_dir=shm_dir))
            except StreamError as exc:
                rows.append([name, "-", "-", "-", "-", "-", "-", f"error: {exc}"])
                continue
            opened.append((s, s.cnt0, time.monotonic()))
        if opened:
            time.sleep(max(0.0, interval))
        for s, cnt0, t0 in opened:
            rate = (s.cnt0 - cnt0) / max(time.monotonic() - t0, 1e-9)
            shape = "x".join(str(n) for n in s.shape)
            roles = ",".join(links.get(s.name, [])) or "-"
            rows.append(
                [s.name, shape, str(s.dtype), str(s.cnt0), f"{rate:.1f}",
                 str(len(s.keywords)), roles, ""]
            )  # fmt: skip
    if not rows:
        print(f"no streams in {folder}")
        return 0
    rows.sort(key=lambda r: r[0])
    print(_table(["NAME", "SHAPE", "DTYPE", "CNT0", "RATE/s", "KW", "LINKS", ""], rows))
    return 0 if all(not r[7] for r in rows) else 1


def _info(name: str, shm_dir: str | None) -> int:
    from vampires.stream import Stream

    with Stream.open(name, shm_dir=shm_dir) as s:
        md = s.metadata()
        cards = s.keywords.cards()
        types = s.keywords.types()
        path = s.path
        shape, dtype = s.shape, s.dtype
    print(f"{name}: {path}")
    print(f"  shape {shape} (numpy order; milk size {md['size'][: md['naxis']]}), dtype {dtype}")
    skip = {"name", "size", "naxis", "semReadPID", "semWritePID", "semvalues"}
    for key, value in md.items():
        if key in skip:
            continue
        if key.endswith("time") and value:
            value = datetime.fromtimestamp(value, UTC).isoformat(timespec="microseconds")
        print(f"  {key:<15} {value}")
    print(f"  {'semvalues':<15} {md['semvalues']}")
    print(f"  {'semReadPID':<15} {md['semReadPID']}")
    print(f"  {'semWritePID':<15} {md['semWritePID']}")
    print(f"keywords ({len(cards)} of {md['NBkw']} slots):")
    if cards:
        rows = [[n, types[n], repr(v), c] for n, v, c in cards]
        print(_table(["  NAME", "T", "VALUE", "COMMENT"], [["  " + r[0], *r[1:]] for r in rows]))
    return 0


def _create(args: argparse.Namespace) -> int:
    from vampires.config import stream_mode
    from vampires.stream import Stream

    with Stream.create(
        args.name,
        tuple(args.shape),
        args.dtype,
        nkeywords=args.nkw,
        nsemaphores=args.nsem,
        circular_buffer=args.cb,
        exist_ok=args.exist_ok,
        shm_dir=args.shm_dir,
        mode=stream_mode(args.mode) if args.mode is not None else None,
    ) as s:
        print(
            f"{s.name}: {s.path} shape {s.shape} {s.dtype}, {s.nkeywords} keywords, cnt0 {s.cnt0}"
        )
    return 0


def _rm(names: Sequence[str], shm_dir: str | None, *, force: bool) -> int:
    from vampires.stream import Stream, stream_path

    status = 0
    for name in names:
        try:
            Stream.open(name, shm_dir=shm_dir).destroy()
            print(f"{name}: removed")
        except StreamError as exc:
            path = None
            with contextlib.suppress(StreamError):
                path = stream_path(name, shm_dir=shm_dir)
            if force and path is not None and path.is_file():
                path.unlink()
                print(f"{name}: removed {path} (not a valid stream: {exc})")
                continue
            hint = "" if path is None or not path.is_file() else " (use --force to remove it)"
            print(f"{name}: error: {exc}{hint}", file=sys.stderr)
            status = 1
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``vampires stream``.

    Parameters
    ----------
    argv
        Arguments after ``stream``.

    Returns
    -------
    int
        0 on success, 1 if any stream operation failed, 2 for bad usage.
    """
    args = _parser().parse_args(argv)
    try:
        if args.action == "ls":
            return _ls(args.shm_dir, args.interval)
        if args.action == "info":
            return _info(args.name, args.shm_dir)
        if args.action == "create":
            return _create(args)
        return _rm(args.names, args.shm_dir, force=args.force)
    except (StreamError, ConfigError) as exc:
        print(f"vampires stream {args.action}: error: {exc}", file=sys.stderr)
        return 1
