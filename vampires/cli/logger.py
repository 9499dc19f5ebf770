"""``vampires logger``: start, list, command and stop FITS logger daemons.

vampires logger start vcam1 -n 250 -z -1 --root /mnt/fuuu [--dir EXACT] [--timeout S]
vampires logger ls
vampires logger on|off|offc|status vcam1 [vcam2]
vampires logger set vcam1 --cube-size 500
vampires logger stop vcam1 [vcam2]          (kill: tear down and exit)
vampires logger run vcam1 ...               (foreground daemon, used by start)
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from vampires.cli._logcams import CAMERAS, add_timeout, int_arg, report

__all__ = ["main"]


def _config_options(p: argparse.ArgumentParser, *, required: bool) -> None:
    p.add_argument(
        "-n",
        "--cube-size",
        "--frames",
        dest="cube_size",
        type=int_arg,
        required=required,
        metavar="N",
        help="frames per cube",
    )
    p.add_argument(
        "-z",
        "--cubes",
        "--ncubes",
        dest="cubes",
        type=int_arg,
        default=-1 if required else None,
        metavar="N",
        help="cubes to write when saving starts, -1 = until stopped (default)",
    )
    p.add_argument(
        "--root",
        metavar="DIR",
        help="files go to DIR/<UT date>/<stream>/ (default: config data_root)",
    )
    p.add_argument(
        "-d",
        "--dir",
        dest="dirname",
        metavar="DIR",
        help="exact folder for the files (no date or stream subfolder)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        metavar="S",
        help="seconds of stream silence closing a cube (default: adaptive)",
    )
    p.add_argument(
        "--flush",
        type=float,
        metavar="S",
        help="longest seconds a frame waits in RAM before it is in its .fits.tmp (default 1)",
    )
    p.add_argument(
        "--sync",
        type=float,
        metavar="S",
        help="seconds between fdatasyncs of the cube being written: 0 = every flush "
        "(default), < 0 = only when the cube closes",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vampires logger", description="Start, list, drive and stop FITS logger daemons."
    )
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    start = sub.add_parser("start", help="start a logger daemon in the background")
    start.add_argument("stream")
    _config_options(start, required=True)
    start.add_argument("--log", metavar="FILE", help="daemon log (default $MILK_SHM_DIR/vampires/)")
    run = sub.add_parser("run", help="run a logger daemon in the foreground")
    run.add_argument("stream")
    _config_options(run, required=True)
    for p in (start, run):
        p.add_argument(
            "--tcp",
            metavar="ENDPOINT",
            help="also answer on tcp://host:port for another host (needs --curve-dir)",
        )
        p.add_argument(
            "--curve-dir",
            metavar="DIR",
            help="CURVE keys for --tcp (create them with 'vampires logger keys DIR')",
        )
    keys = sub.add_parser("keys", help="create CURVE keys for --tcp control")
    keys.add_argument("folder")
    ls = sub.add_parser("ls", help="list running loggers")
    add_timeout(ls)
    for action, text in [
        ("on", "start saving"),
        ("off", "stop saving now (truncate the cube)"),
        ("offc", "stop saving after the current cube"),
        ("next", "close the current cube now"),
        ("status", "show each logger's status"),
        ("restart", "re-create the loggers (new buffers)"),
        ("stop", "kill the loggers: tear down, free buffers, exit"),
    ]:
        p = sub.add_parser(action, help=text)
        p.add_argument("streams", nargs="*", metavar="STREAM", help="default: vcam1 vcam2")
        add_timeout(p)
        if action == "on":
            p.add_argument("-z", "--cubes", type=int_arg, metavar="N", help="cubes, -1 = until off")
    s = sub.add_parser("set", help="change cube size, count, folder, timeout (next cube)")
    s.add_argument("streams", nargs="*", metavar="STREAM", help="default: vcam1 vcam2")
    _config_options(s, required=False)
    add_timeout(s)
    return parser


def _run(args: argparse.Namespace) -> int:
    from vampires.fitslog.daemon import run_logger_daemon

    return run_logger_daemon(
        args.stream,
        cube_size=args.cube_size,
        cubes=args.cubes,
        root=args.root,
        dirname=args.dirname,
        timeout=args.timeout,
        flush=args.flush,
        sync=args.sync,
        tcp=args.tcp,
        curve_dir=args.curve_dir,
    )


def _start(args: argparse.Namespace) -> int:
    from vampires.config import Config
    from vampires.control.client import ControlClient
    from vampires.fitslog.remote import start_logger

    root = args.root if args.root or args.dirname else str(Config.load().data_root)
    pid = start_logger(
        args.stream,
        cube_size=args.cube_size,
        cubes=args.cubes,
        root=root,
        dirname=args.dirname,
        timeout=args.timeout,
        flush=args.flush,
        sync=args.sync,
        log_path=args.log,
        tcp=args.tcp,
        curve_dir=args.curve_dir,
    )
    with ControlClient("logger", args.stream, timeout=5.0) as client:
        status = client.call("status")
    folder = (status.get("logger") or {}).get("folder") or (
        args.dirname or f"{root}/<UT date>/{args.stream}"
    )
    remote = f", also on {status['tcp']} (CURVE)" if status.get("tcp") else ""
    print(
        f"{args.stream}: logger started (pid {pid}), state {status.get('state')}, "
        f"{args.cube_size} frames per cube, cubes {args.cubes}, files go to {folder}{remote}"
    )
    return 0


def _ls(args: argparse.Namespace) -> int:
    from vampires.fitslog.remote import LoggerGroup, status_table

    group = LoggerGroup.discover(timeout=args.reply_timeout, include_dead=True)
    if not group.names:
        print("no logger running (start one with vampires_preplog or 'vampires logger start')")
        return 0
    result = group.status()
    print("\n".join(status_table(result)))
    return 0 if result.ok else 1


def _command(args: argparse.Namespace) -> int:
    from vampires.fitslog.remote import LoggerGroup

    group = LoggerGroup(args.streams or list(CAMERAS), timeout=args.reply_timeout)
    if args.action == "on":
        result = group.on(cubes=args.cubes)
    elif args.action == "set":
        result = group.set(
            cube_size=args.cube_size,
            cubes=args.cubes,
            timeout=args.timeout,
            root=args.root,
            folder=args.dirname,
            flush=args.flush,
            sync=args.sync,
        )
    elif args.action == "stop":
        result = group.kill()
    else:
        result = group.call(args.action)
    status = report(result)
    if args.action == "status":
        for r in result:
            if r.reply is not None:
                st = r.reply.get("logger") or {}
                print(f"  {r.name}: " + ", ".join(f"{k}={v}" for k, v in st.items()))
                if r.reply.get("worker_failure"):
                    print(f"  {r.name}: {r.reply['worker_failure']}")
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``vampires logger ACTION ...``; see the module docstring."""
    from vampires.errors import VampiresError

    args = _parser().parse_args(argv)
    try:
        if args.action == "run":
            return _run(args)
        if args.action == "start":
            return _start(args)
        if args.action == "ls":
            return _ls(args)
        if args.action == "keys":
            from vampires.control.keys import generate_keys

            folder = generate_keys(args.folder)
            print(
                f"CURVE keys in {folder}: give the daemon --curve-dir {folder}; copy "
                f"server.key, client.key and client.key_secret to the client host"
            )
            return 0
        return _command(args)
    except VampiresError as exc:
        print(f"vampires logger {args.action}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
