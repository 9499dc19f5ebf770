"""A tiny daemon for tests, benchmarks and trying the control plane by hand.

``python -m vampires.control.echo NAME [--kind echo]`` serves:

- ``incr`` (``by``: int) adds to a counter, ``get`` returns it, ``echo``
  returns its arguments, ``sleep`` (``seconds``: float) blocks the loop,
  ``fail`` raises an unexpected error, ``stop`` makes the daemon exit.

Its state is ``"count=<n>"`` so tests see that bad requests change nothing.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from collections.abc import Sequence
from types import FrameType
from typing import Any

from vampires.control.protocol import Arg, Command
from vampires.control.server import DaemonServer

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the echo daemon in the foreground until ``stop`` or SIGTERM.

    Parameters
    ----------
    argv
        ``NAME [--kind KIND]``.

    Returns
    -------
    int
        0 on a clean stop.
    """
    parser = argparse.ArgumentParser(prog="python -m vampires.control.echo")
    parser.add_argument("name")
    parser.add_argument("--kind", default="echo")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    stop = threading.Event()
    count = {"n": 0}

    def incr(a: dict[str, Any]) -> dict[str, Any]:
        count["n"] += a.get("by", 1)
        return {"count": count["n"], "time": time.time()}

    def sleep(a: dict[str, Any]) -> dict[str, Any]:
        time.sleep(a["seconds"])
        return {}

    def fail(a: dict[str, Any]) -> dict[str, Any]:
        msg = "deliberate failure"
        raise RuntimeError(msg)

    def stop_handler(a: dict[str, Any]) -> dict[str, Any]:
        server.request_stop()
        return {}

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server = DaemonServer(
        args.kind,
        args.name,
        {
            "incr": Command(func=incr, args={"by": Arg(type="int", minimum=-1000, maximum=1000)}),
            "get": Command(func=lambda a: {"count": count["n"]}),
            "echo": lambda a: {"args": a},
            "sleep": Command(
                func=sleep, args={"seconds": Arg(type="float", required=True, maximum=60)}
            ),
            "fail": Command(func=fail),
            "stop": Command(func=stop_handler),
        },
        state=lambda: f"count={count['n']}",
    )
    with server:
        server.serve(stop)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
