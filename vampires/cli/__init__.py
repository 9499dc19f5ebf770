"""Thin commands: argparse, one or two library calls, one line per target.

Two helpers every console script shares:

* :func:`pipe_safe` -- ``command | head`` ends quietly (exit 141, as a C tool
  killed by SIGPIPE) instead of a ``BrokenPipeError`` traceback;
* :func:`interruptible` -- Ctrl-C / ``kill -INT`` raises ``KeyboardInterrupt``
  even when the command was started with SIGINT ignored (a background job of
  a script, ``nohup``, some supervisors), for commands whose documented stop
  is SIGINT.
"""

from __future__ import annotations

import functools
import os
import signal
import sys
import threading
from collections.abc import Callable
from typing import ParamSpec

__all__ = ["SIGPIPE_EXIT", "interruptible", "pipe_safe"]

P = ParamSpec("P")

#: Exit status after the reader of our output went away (128 + SIGPIPE, as a shell reports).
SIGPIPE_EXIT = 128 + int(signal.SIGPIPE)


def pipe_safe(main: Callable[P, int]) -> Callable[P, int]:
    """Wrap a command's ``main`` so a closed stdout ends it quietly.

    Parameters
    ----------
    main
        The command's entry point.

    Returns
    -------
    callable
        Same signature; returns :data:`SIGPIPE_EXIT` on ``BrokenPipeError``.
    """

    @functools.wraps(main)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> int:
        try:
            return main(*args, **kwargs)
        except BrokenPipeError:
            # Later writes (and the flush at exit) go nowhere instead of raising again.
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
                os.close(devnull)
            except (OSError, ValueError):  # no real stdout (tests)
                pass
            return SIGPIPE_EXIT

    return wrapper


def interruptible() -> None:
    """Make SIGINT raise ``KeyboardInterrupt`` even if this process inherited it ignored.

    Python keeps an ignored SIGINT ignored, so a command started in the
    background by a script would never stop on ``kill -INT``. Only from the
    main thread (where Python handles signals); elsewhere a no-op.
    """
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.default_int_handler)
