"""How every daemon process runs: logging, stop signals, errors, exit code.

A camera, logger or link daemon is a foreground process (``spawn_daemon``
detaches it). Its entry point builds what it serves, then hands the serving
to :func:`run_daemon`, which

- sets up logging once (:data:`LOG_FORMAT` on stderr, which ``spawn_daemon``
  sends to the daemon's log file);
- makes each of :data:`STOP_SIGNALS` set the daemon's ``stop`` event, the same
  way for every kind: SIGTERM (``kill``, systemd), SIGINT (Ctrl-C in a
  foreground run) and SIGHUP (its terminal closed) all mean "stop cleanly",
  so the serving loop returns, the camera/logger/link is closed and the
  socket and lock files are removed. The previous handlers come back after;
  outside the main thread no handler is installed (Python allows none);
- logs a :class:`~vampires.errors.VampiresError` that ends the daemon and
  returns exit code 1 (0 after a clean stop).

The lock (one daemon per kind and name) is the
:class:`~vampires.control.server.DaemonServer`'s: taken when it binds, held
for the daemon's life.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator

from vampires.errors import VampiresError

__all__ = ["LOG_FORMAT", "STOP_SIGNALS", "run_daemon", "setup_daemon_logging", "stop_on_signals"]

logger = logging.getLogger(__name__)

#: Signals that stop a daemon cleanly (the union of what the daemons handled before).
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)

#: Format of a daemon's log lines.
LOG_FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"


def setup_daemon_logging(level: int = logging.INFO) -> None:
    """Log to stderr with :data:`LOG_FORMAT` (no-op if logging is already configured)."""
    logging.basicConfig(level=level, format=LOG_FORMAT)


@contextlib.contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """Make each of :data:`STOP_SIGNALS` set ``stop``; restore the old handlers after.

    Parameters
    ----------
    stop
        The event the daemon's serving loop watches.

    Notes
    -----
    Outside the main thread this does nothing (only the main thread may
    install signal handlers).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, _frame: object) -> None:
        logger.info("signal %d: stopping", signum)
        stop.set()

    old = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


def run_daemon(
    what: str, serve: Callable[[threading.Event], int], *, stop: threading.Event | None = None
) -> int:
    """Run a daemon's serving loop in the foreground until it stops.

    Parameters
    ----------
    what
        The daemon, for log lines (``"camera vcam1"``).
    serve
        Serves until the event it gets is set (or its own ``kill`` command);
        returns the exit code.
    stop
        The stop event; default a new one. :data:`STOP_SIGNALS` set it.

    Returns
    -------
    int
        What ``serve`` returned, or 1 if it raised a
        :class:`~vampires.errors.VampiresError` (logged).
    """
    setup_daemon_logging()
    stop = stop if stop is not None else threading.Event()
    with stop_on_signals(stop):
        try:
            return serve(stop)
        except VampiresError as exc:
            logger.error("%s: stopped on error: %s", what, exc)
            return 1
