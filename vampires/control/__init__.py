"""The control plane: daemons answering small JSON commands on ZMQ sockets.

A logger, a camera or a link is one long-lived process (daemon) serving a
:class:`DaemonServer` on ``ipc://$MILK_SHM_DIR/vampires/<kind>-<name>.sock``.
Commands are clients: :class:`ControlClient` for one daemon,
:func:`group_call` for many at once (with the measured skew between their
times of effect), :func:`discover` to list them, :func:`spawn_daemon` to
start one detached.

Examples
--------
>>> from vampires.control import group_call
>>> result = group_call("logger", ["vcam1", "vcam2"], "on", timeout=2.0)
>>> [(r.name, r.status) for r in result], result.skew
"""

from __future__ import annotations

from vampires.control.client import (
    ControlClient,
    DaemonInfo,
    GroupResult,
    TargetResult,
    daemon_alive,
    discover,
    group_call,
)
from vampires.control.protocol import Arg, Command
from vampires.control.server import DaemonServer
from vampires.control.spawn import spawn_daemon

__all__ = [
    "Arg",
    "Command",
    "ControlClient",
    "DaemonInfo",
    "DaemonServer",
    "GroupResult",
    "TargetResult",
    "daemon_alive",
    "discover",
    "group_call",
    "spawn_daemon",
]
