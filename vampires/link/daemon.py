"""Run a link as a daemon on the control plane (``vampires link ...``).

A link daemon is one process: the link runs in its own thread, the main
thread answers control commands on
``ipc://$MILK_SHM_DIR/vampires/link-<name>.sock``:

``status``
    the counters of :class:`~vampires.link.status.LinkStatus` (frames,
    skipped, torn, reconnects, malformed, rate, bandwidth, peer) plus
    ``role`` and ``stream``;
``stop``
    close the link and exit.

Daemon names are ``<stream>.<role>`` (``vcam1.tcp-send``, ``vcam1.tcp-recv``,
``vcam1.zmq-pub``, ``vcam1.zmq-sub``; a receiver without a stream name is
``<port>.tcp-recv``), so ``vampires stream ls`` can tell which stream each
link daemon serves.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Self

import attrs

from vampires.link.status import LinkStatus

if TYPE_CHECKING:
    from vampires._checks import ShmDir

__all__ = [
    "ROLES",
    "Link",
    "daemon_name",
    "link_status",
    "running_links",
    "serve_link",
    "set_realtime",
]

logger = logging.getLogger(__name__)

#: The four link roles, as used in daemon names and statuses.
ROLES = ("tcp-send", "tcp-recv", "zmq-pub", "zmq-sub")


class Link(Protocol):
    """What a daemon needs from a link (all four link classes satisfy it)."""

    def start(self) -> Self:
        """Start the link thread."""
        ...

    def close(self) -> None:
        """Stop the link (idempotent)."""
        ...

    def status(self) -> LinkStatus:
        """Return the counters."""
        ...


def _as_path(shm_dir: ShmDir) -> Path | None:
    return None if shm_dir is None else Path(shm_dir)


def running_links(*, shm_dir: ShmDir = None) -> dict[str, list[str]]:
    """Return the roles of the running link daemons, per stream name.

    A daemon counts as running while its process holds its lock
    (:func:`vampires.control.daemon_alive`: no message is exchanged, so a
    busy daemon is listed too); zmq is imported only when link sockets exist.

    Parameters
    ----------
    shm_dir
        Shm folder; defaults to ``MILK_SHM_DIR`` resolution.

    Returns
    -------
    dict
        ``{"vcam1": ["tcp-send", "zmq-pub"], ...}`` from the daemon names
        ``<stream>.<role>``, in socket file name order.
    """
    import os

    from vampires.config import control_dir
    from vampires.control.protocol import parse_socket_name

    shm = Path(shm_dir) if shm_dir else None
    try:
        entries = sorted(os.listdir(control_dir(shm)))
    except FileNotFoundError:
        return {}
    names = [p[1] for p in map(parse_socket_name, entries) if p is not None and p[0] == "link"]
    if not names:
        return {}
    from vampires.control import daemon_alive  # imports zmq: only when links exist

    out: dict[str, list[str]] = {}
    for name in names:
        stream, _, role = name.rpartition(".")
        if stream and daemon_alive("link", name, shm_dir=shm):
            out.setdefault(stream, []).append(role)
    return out


def daemon_name(role: str, target: str | int) -> str:
    """Return the control-plane name of a link daemon.

    Parameters
    ----------
    role
        One of :data:`ROLES`.
    target
        The stream name (or, for a receiver without one, its port).

    Returns
    -------
    str
        ``"<target>.<role>"``.

    Raises
    ------
    ConfigError
        Unknown role or a name the control plane refuses.
    """
    from vampires.control.protocol import validate_name
    from vampires.errors import ConfigError

    if role not in ROLES:
        msg = f"link role must be one of {ROLES}, got {role!r}"
        raise ConfigError(msg)
    return validate_name(f"{target}.{role}")


def set_realtime(priority: int | None = None, cpus: Iterable[int] | None = None) -> None:
    """Pin this process to CPUs and give it a real-time priority (as production does).

    Call it before starting the link: threads created afterwards inherit the
    scheduling policy. On scexao5 the TCP transmitter runs SCHED_FIFO 45 on
    its own CPU set, so the kernel wakes it at once when the camera posts.

    Parameters
    ----------
    priority
        SCHED_FIFO priority 1-99; None keeps the normal scheduler.
    cpus
        CPU numbers to run on; None keeps the current affinity.

    Raises
    ------
    ConfigError
        Bad values, or the system refuses (no CAP_SYS_NICE / rtprio limit).
    """
    import os

    from vampires.errors import ConfigError

    if cpus is not None:
        wanted = set(cpus)
        try:
            os.sched_setaffinity(0, wanted)
        except (OSError, ValueError) as exc:
            msg = f"cannot pin the link to CPUs {sorted(wanted)}: {exc}"
            raise ConfigError(msg) from exc
    if priority is not None:
        value: object = priority
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 99:
            msg = f"real-time priority must be an integer 1-99, got {priority!r}"
            raise ConfigError(msg)
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        except OSError as exc:
            msg = (
                f"cannot set SCHED_FIFO priority {priority}: {exc} (needs CAP_SYS_NICE or an "
                "rtprio limit in /etc/security/limits.conf)"
            )
            raise ConfigError(msg) from exc


def serve_link(
    link: Link,
    *,
    role: str,
    name: str,
    stop: threading.Event | None = None,
    shm_dir: ShmDir = None,
) -> LinkStatus:
    """Run ``link`` and answer control commands until ``stop``, ``stop`` command or Ctrl-C.

    Parameters
    ----------
    link
        A :class:`~vampires.link.tcp.TcpSender`, :class:`~vampires.link.tcp.TcpReceiver`,
        :class:`~vampires.link.zmq.ZmqPublisher` or :class:`~vampires.link.zmq.ZmqSubscriber`
        (with ``to_stream=True``), not started yet.
    role
        One of :data:`ROLES`.
    name
        Daemon name (see :func:`daemon_name`).
    stop
        Set it to return; SIGTERM, SIGINT and SIGHUP set it too (in the main thread,
        see :mod:`vampires.control.entry`).
    shm_dir
        Shm folder of the control socket.

    Returns
    -------
    LinkStatus
        The final counters.

    Raises
    ------
    DaemonAlreadyRunning
        Another daemon serves that name.
    LinkError
        The link cannot start (port in use, bad endpoint).
    """
    from vampires.control import Command, DaemonServer
    from vampires.control.entry import stop_on_signals

    stop = stop if stop is not None else threading.Event()

    def status(_args: dict[str, Any]) -> dict[str, Any]:
        return {"role": role, **link.status().to_dict()}

    def stop_command(_args: dict[str, Any]) -> dict[str, Any]:
        stop.set()
        return {"stopping": True}

    handlers = {
        "status": Command(func=status, help="link counters: frames, skipped, rate, bandwidth"),
        "stop": Command(func=stop_command, help="close the link and exit"),
    }

    def state() -> str:
        return "connected" if link.status().connected else "waiting"

    with (
        stop_on_signals(stop),
        DaemonServer("link", name, handlers, shm_dir=_as_path(shm_dir), state=state) as server,
    ):
        link.start()
        try:
            logger.info("link daemon %s serving on %s", name, server.endpoint)
            server.serve(stop)
        finally:
            link.close()
    final = link.status()
    logger.info("link daemon %s stopped: %s", name, final.line())
    return final


def link_status(name: str, *, timeout: float = 2.0, shm_dir: ShmDir = None) -> str:
    """Ask a link daemon for its status and return one line.

    Parameters
    ----------
    name
        Daemon name (``vcam1.tcp-send``).
    timeout
        Seconds to wait for the reply.
    shm_dir
        Shm folder of the control socket.

    Returns
    -------
    str

    Raises
    ------
    DaemonNotRunning, ControlTimeout, CommandError
        As :meth:`vampires.control.ControlClient.call`.
    """
    from vampires.control import ControlClient

    with ControlClient("link", name, timeout=timeout, shm_dir=_as_path(shm_dir)) as client:
        reply = client.call("status")
    known = {field.name for field in attrs.fields(LinkStatus)}
    return LinkStatus(**{k: v for k, v in reply.items() if k in known}).line()
