"""``vampires link``: TCP mirror and ZMQ publish/subscribe daemons.

::

    vampires link tcp-recv 5001 --name vcam1 --bind 0.0.0.0     # on scexao6
    vampires link tcp-send vcam1 scexao6:5001                   # on scexao5
    vampires link zmq-pub vcam1 --bind 'tcp://*:5555' --fps 20 --max-mbps 200  # on scexao5
    vampires link zmq-sub tcp://scexao5:5555 vcam1              # on sonne
    vampires link status [NAME ...]                             # any host
    vampires link stop vcam1.tcp-send

Links run in the foreground (Ctrl-C stops them cleanly) unless ``--daemon``
detaches them; either way they answer ``status`` on the control plane.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

from vampires.errors import VampiresError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vampires link",
        description="TCP mirror and ZMQ publish/subscribe daemons. Links run in the foreground "
        "(Ctrl-C stops them cleanly) unless --daemon detaches them; either way they answer "
        "'status' on the control plane.",
    )
    sub = parser.add_subparsers(dest="role", required=True, metavar="COMMAND")

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--daemon", action="store_true", help="detach (log to --log)")
        p.add_argument("--log", help="log file of a --daemon (default under the shm folder)")
        p.add_argument("--control-name", help="control-plane name (default <stream>.<role>)")
        p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
        p.add_argument(
            "--rt-priority",
            type=int,
            help="SCHED_FIFO priority 1-99 (e.g. 45; with --cpus on cores of its own)",
        )
        p.add_argument("--cpus", help="CPU numbers to pin to, e.g. 2,3")

    p = sub.add_parser("tcp-send", help="send a stream to a tcp-recv at full rate")
    p.add_argument("stream", help="local stream to send (e.g. vcam1)")
    p.add_argument("address", metavar="HOST:PORT", help="the receiver (e.g. scexao6:5001)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds per send/connect")
    p.add_argument("--depth", type=int, default=4, help="frames queued at most (latency bound)")
    p.add_argument(
        "--no-catch-up",
        action="store_true",
        help="always jump to the newest frame, even when the stream's circular buffer "
        "still holds the ones missed",
    )
    common(p)
    p = sub.add_parser("tcp-recv", help="receive a tcp-send into a local stream")
    p.add_argument("port", type=int, help="TCP port to listen on")
    p.add_argument("--name", help="local stream name (default: the sender's)")
    p.add_argument("--bind", default="127.0.0.1", help="listen address (0.0.0.0: all)")
    common(p)
    p = sub.add_parser("zmq-pub", help="publish a stream on ZMQ, throttled")
    p.add_argument("stream", help="local stream to publish")
    p.add_argument("--bind", required=True, help="endpoint, e.g. 'tcp://*:5555'")
    p.add_argument("--fps", type=float, default=20.0, help="max frames per second (0: no cap)")
    p.add_argument(
        "--max-mbps",
        type=float,
        default=0.0,
        help="max megabits per second on the wire, all subscribers together; the frame "
        "rate drops to stay under it (0: no cap)",
    )
    p.add_argument(
        "--compression",
        default="zstd",
        help="codec for subscribers that accept compressed frames: zstd, lz4 or off",
    )
    p.add_argument("--every", type=int, default=1, help="send every N-th frame")
    p.add_argument("--curve-dir", help="CURVE key folder (server side)")
    common(p)
    p = sub.add_parser("zmq-sub", help="subscribe to a zmq-pub into a local stream")
    p.add_argument("connect", help="publisher endpoint, e.g. tcp://scexao5:5555")
    p.add_argument("stream", help="stream name (the topic)")
    p.add_argument("--local-name", help="local stream name (default: the same)")
    p.add_argument(
        "--raw", action="store_true", help="receive uncompressed frames only (no Blosc2)"
    )
    p.add_argument("--curve-dir", help="CURVE key folder (client side)")
    common(p)
    p = sub.add_parser("status", help="one line per running link daemon")
    p.add_argument("names", nargs="*", help="daemon names (default: all)")
    p = sub.add_parser("stop", help="stop link daemons")
    p.add_argument("names", nargs="+", help="daemon names, e.g. vcam1.tcp-send")
    return parser


def _build(args: argparse.Namespace) -> tuple[Any, str]:
    from vampires.link._common import parse_host_port
    from vampires.link.daemon import daemon_name

    if args.role == "tcp-send":
        from vampires.link.tcp import TcpSender

        host, port = parse_host_port(args.address)
        link: Any = TcpSender(
            args.stream,
            host,
            port,
            timeout=args.timeout,
            depth=args.depth,
            catch_up=not args.no_catch_up,
        )
        target: str | int = args.stream
    elif args.role == "tcp-recv":
        from vampires.link.tcp import TcpReceiver

        link = TcpReceiver(args.port, name=args.name, bind=args.bind)
        target = args.name or args.port
    elif args.role == "zmq-pub":
        from vampires.link.zmq import ZmqPublisher

        link = ZmqPublisher(
            args.stream,
            args.bind,
            max_fps=args.fps,
            max_mbps=args.max_mbps,
            compression=args.compression,
            every=args.every,
            curve_dir=args.curve_dir,
        )
        target = args.stream
    else:
        from vampires.link.zmq import ZmqSubscriber

        link = ZmqSubscriber(
            args.connect,
            args.stream,
            to_stream=True,
            local_name=args.local_name,
            curve_dir=args.curve_dir,
            compression=not args.raw,
        )
        target = args.local_name or args.stream
    return link, args.control_name or daemon_name(args.role, target)


def _control(args: argparse.Namespace) -> int:
    from vampires.control import ControlClient, discover
    from vampires.link.daemon import link_status

    names = args.names or [d.name for d in discover("link") if d.alive]
    if not names:
        print("no link daemon running")
        return 0
    failed = 0
    for name in names:
        try:
            if args.role == "status":
                print(f"{name}: {link_status(name)}")
            else:
                with ControlClient("link", name) as client:
                    client.call("stop")
                print(f"{name}: stopping")
        except VampiresError as exc:
            print(f"{name}: {exc}")
            failed += 1
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``vampires link ...``.

    Parameters
    ----------
    argv
        Arguments after ``vampires link``.

    Returns
    -------
    int
        0 on a clean stop, 1 on failure, 2 on bad arguments.
    """
    args = _parser().parse_args(argv)
    if args.role in ("status", "stop"):
        return _control(args)
    try:
        link, name = _build(args)
    except VampiresError as exc:
        print(f"vampires link {args.role}: {exc}", file=sys.stderr)
        return 2
    if args.daemon:
        from vampires.control import spawn_daemon

        link.close()  # the detached process builds its own
        argv_child = [a for a in (argv if argv is not None else sys.argv[2:]) if a != "--daemon"]
        try:
            pid = spawn_daemon(
                [sys.executable, "-m", "vampires", "link", *argv_child],
                kind="link",
                name=name,
                log_path=args.log,
            )
        except VampiresError as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            return 1
        print(f"{name}: started (pid {pid})")
        return 0
    from vampires.link.daemon import serve_link, set_realtime

    try:
        cpus = None if args.cpus is None else [int(c) for c in args.cpus.split(",")]
        set_realtime(args.rt_priority, cpus)
    except (ValueError, VampiresError) as exc:
        link.close()
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        final = serve_link(link, role=args.role, name=name)
    except VampiresError as exc:
        link.close()
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    print(f"{name}: {final.line()}")
    return 0
