"""The client side of the control plane: one daemon, many daemons, discovery.

Every wait has a timeout in float seconds (converted to ms only at the zmq
call). A REQ socket whose reply timed out is in a state where it can neither
send nor receive: it is closed with linger 0 and a new one is made on the
next call.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

import attrs
import zmq

from vampires._checks import ShmDir, check_seconds
from vampires.config import control_dir
from vampires.config import shm_dir as default_shm_dir
from vampires.control.protocol import (
    MAX_MESSAGE_BYTES,
    decode_reply,
    encode,
    error_text,
    lock_path,
    parse_socket_name,
    socket_path,
    validate_kind,
    validate_name,
)
from vampires.errors import (
    CommandError,
    ConfigError,
    ControlError,
    ControlTimeout,
    DaemonNotRunning,
)

__all__ = [
    "ControlClient",
    "DaemonInfo",
    "GroupResult",
    "TargetResult",
    "daemon_alive",
    "discover",
    "group_call",
    "ping_endpoint",
]

Status = Literal["ok", "error", "timeout", "not-running"]


def _check_timeout(timeout: object) -> float:
    return check_seconds(timeout, "timeout")


def daemon_alive(kind: str, name: str, *, shm_dir: ShmDir = None) -> bool:
    """Tell whether a daemon process holds the lock of ``kind``/``name``.

    This is a cheap check that does not talk to the daemon: the lock is
    released by the kernel when the process dies, even with ``kill -9``.

    Parameters
    ----------
    kind, name
        The target.
    shm_dir
        Shm folder; defaults to ``MILK_SHM_DIR`` resolution.

    Returns
    -------
    bool
    """
    path = lock_path(kind, name, Path(shm_dir) if shm_dir is not None else None)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # also releases a shared lock we may have taken
    return False


def _request(
    ctx: zmq.Context[zmq.Socket[bytes]],
    endpoint: str,
    payload: bytes,
    timeout: float,
    curve: Mapping[str, bytes] | None = None,
) -> bytes | None:
    """Send one request on a fresh REQ socket; None on timeout."""
    with ctx.socket(zmq.REQ) as sock:
        sock.linger = 0
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        if curve is not None:
            sock.curve_secretkey = curve["secret"]
            sock.curve_publickey = curve["public"]
            sock.curve_serverkey = curve["server"]
        sock.connect(endpoint)
        sock.send(payload)
        if not sock.poll(max(1, int(timeout * 1000)), zmq.POLLIN):
            return None
        return sock.recv()


def ping_endpoint(endpoint: str, *, timeout: float = 0.5) -> bool:
    """Tell whether something answers a ``ping`` at ``endpoint`` within ``timeout``.

    Parameters
    ----------
    endpoint
        ``ipc://...`` or ``tcp://...``.
    timeout
        Seconds.

    Returns
    -------
    bool
    """
    with zmq.Context() as ctx:
        raw = _request(ctx, endpoint, encode({"command": "ping"}), _check_timeout(timeout))
    if raw is None:
        return False
    try:
        return decode_reply(raw)["ok"] is True
    except ValueError:
        return False


class ControlClient:
    """Send commands to one daemon and wait for its replies.

    Parameters
    ----------
    kind, name
        The target daemon (``"logger"``, ``"vcam1"``).
    timeout
        Seconds to wait for each reply.
    shm_dir
        Shm folder; defaults to ``MILK_SHM_DIR`` resolution.
    endpoint
        Connect here instead of the ipc socket (``tcp://host:port``); needs
        ``curve_dir`` for ``tcp://``.
    curve_dir
        Folder of CURVE keys (see :mod:`vampires.control.keys`).

    Examples
    --------
    >>> with ControlClient("logger", "vcam1") as client:
    ...     client.call("set", cube_size=250)["state"]
    'idle'
    """

    def __init__(
        self,
        kind: str,
        name: str,
        *,
        timeout: float = 2.0,
        shm_dir: ShmDir = None,
        endpoint: str | None = None,
        curve_dir: Path | str | None = None,
    ) -> None:
        self.kind = validate_kind(kind)
        self.name = validate_name(name)
        self.timeout = _check_timeout(timeout)
        self._shm_dir = Path(shm_dir) if shm_dir is not None else None
        self._curve: dict[str, bytes] | None = None
        if endpoint is not None and endpoint.startswith("tcp://"):
            if curve_dir is None:
                msg = (
                    f"{kind} {name}: tcp:// control needs CURVE keys; pass curve_dir "
                    f"(see vampires.control.keys.generate_keys)"
                )
                raise ConfigError(msg)
            from vampires.control.keys import client_keys

            self._curve = client_keys(Path(curve_dir))
        elif endpoint is not None and not endpoint.startswith("ipc://"):
            msg = f"{kind} {name}: endpoint must be ipc:// or tcp://, got {endpoint!r}"
            raise ConfigError(msg)
        self._endpoint = endpoint
        self._ctx: zmq.Context[zmq.Socket[bytes]] | None = None
        self._sock: zmq.Socket[bytes] | None = None
        self._closed = False

    @property
    def endpoint(self) -> str:
        """Where requests go."""
        if self._endpoint is not None:
            return self._endpoint
        return f"ipc://{self.socket_path}"

    @property
    def socket_path(self) -> Path:
        """The daemon's ipc socket file."""
        return socket_path(self.kind, self.name, self._shm_dir)

    def _socket(self) -> zmq.Socket[bytes]:
        if self._closed:
            msg = f"ControlClient for {self.kind} {self.name} is closed; create a new one"
            raise ControlError(msg)
        if self._ctx is None:
            self._ctx = zmq.Context()
        if self._sock is None:
            sock = self._ctx.socket(zmq.REQ)
            sock.linger = 0
            sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
            if self._curve is not None:
                sock.curve_secretkey = self._curve["secret"]
                sock.curve_publickey = self._curve["public"]
                sock.curve_serverkey = self._curve["server"]
            sock.connect(self.endpoint)
            self._sock = sock
        return self._sock

    def _drop_socket(self) -> None:
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None

    def _not_running(self, why: str) -> DaemonNotRunning:
        msg = f"no {self.kind} daemon for {self.name!r} ({why})"
        if self.kind == "logger":
            msg += ": run vampires_preplog or 'vampires logger start'"
        return DaemonNotRunning(msg)

    def call(
        self,
        command: str,
        /,
        *,
        timeout: float | None = None,
        **args: Any,  # noqa: ANN401 - any JSON-able value
    ) -> dict[str, Any]:
        """Send ``command`` with keyword ``args`` and return the reply.

        ``timeout`` is the reply timeout of this call, not a command argument:
        to send an argument called ``timeout`` use :meth:`request`.

        Parameters
        ----------
        command
            Command name.
        timeout
            Seconds to wait for this reply (default: the client's timeout).
        **args
            JSON-able arguments.

        Returns
        -------
        dict
            The reply (``ok`` is True).

        Raises
        ------
        DaemonNotRunning
            No socket file, or the daemon holding it died.
        ControlTimeout
            No reply in time (the daemon is alive but busy or hung).
        CommandError
            The daemon refused the command (reply ``ok`` false); the reply is
            in ``exc.reply``, the daemon's error class name in ``exc.remote_type``.
        ControlError
            The reply is malformed.
        """
        return self.request(command, args, timeout=timeout)

    def request(
        self,
        command: str,
        args: Mapping[str, Any] | None = None,
        *,
        timeout: float | None = None,
    ) -> dict[str, Any]:
        """Send ``command`` with ``args``, waiting ``timeout`` s (default: the client's).

        Parameters
        ----------
        command
            Command name.
        args
            JSON-able arguments.
        timeout
            Seconds to wait for this reply.

        Returns
        -------
        dict
            The reply; errors as for :meth:`call`.
        """
        args = dict(args or {})
        wait = self.timeout if timeout is None else _check_timeout(timeout)
        try:
            payload = encode({"command": command, "args": args})
        except (TypeError, ValueError) as exc:
            msg = f"{self.kind} {self.name}: {command}: arguments are not JSON-able ({exc})"
            raise CommandError(msg) from exc
        if self._endpoint is None and not self.socket_path.exists():
            why = f"no socket {self.socket_path}"
            raise self._not_running(why)
        if self._endpoint is None and not daemon_alive(self.kind, self.name, shm_dir=self._shm_dir):
            # a live daemon always holds its lock: do not wait for a dead one to answer
            why = "its process died; stale socket left behind"
            raise self._not_running(why)
        sock = self._socket()
        sock.send(payload)
        if not sock.poll(max(1, int(wait * 1000)), zmq.POLLIN):
            self._drop_socket()  # a REQ without its reply cannot send again
            if self._endpoint is None and not daemon_alive(
                self.kind, self.name, shm_dir=self._shm_dir
            ):
                why = "its process died; stale socket left behind"
                raise self._not_running(why)
            msg = f"{self.kind} {self.name}: no reply to {command!r} within {wait:g} s"
            raise ControlTimeout(msg)
        raw = sock.recv()
        try:
            reply = decode_reply(raw)
        except ValueError as exc:
            msg = f"{self.kind} {self.name}: malformed reply to {command!r}: {exc}"
            raise ControlError(msg) from exc
        if not reply["ok"]:
            msg = f"{self.kind} {self.name}: {error_text(reply, command)}"
            raise CommandError(msg, reply=reply)
        return reply

    def ping(self, *, timeout: float | None = None) -> dict[str, Any]:
        """Send ``ping``; see :meth:`call`."""
        return self.request("ping", timeout=timeout)

    def close(self) -> None:
        """Close the socket and context (idempotent)."""
        self._closed = True
        self._drop_socket()
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


@attrs.frozen(kw_only=True)
class TargetResult:
    """What one target of a :func:`group_call` answered.

    Attributes
    ----------
    name
        The target name.
    status
        ``"ok"``, ``"error"`` (the daemon refused), ``"timeout"`` or
        ``"not-running"``.
    reply
        The daemon's reply (also for ``"error"``), None otherwise.
    error
        Human-readable reason when not ok.
    time
        The daemon's reported time of effect (unix s), None without a reply.
    round_trip
        Seconds from send to reply as seen by the caller.
    """

    name: str
    status: Status
    reply: dict[str, Any] | None = attrs.field(default=None, eq=False)
    error: str | None = None
    time: float | None = None
    round_trip: float | None = None

    @property
    def ok(self) -> bool:
        """True when the daemon accepted the command."""
        return self.status == "ok"

    @property
    def state(self) -> str | None:
        """The daemon state reported in the reply, if any."""
        if self.reply is None:
            return None
        state = self.reply.get("state")
        return state if isinstance(state, str) else None


@attrs.frozen(kw_only=True)
class GroupResult:
    """One result per target of a :func:`group_call`, in the order asked.

    Attributes
    ----------
    command
        The command sent.
    results
        One :class:`TargetResult` per target.
    """

    command: str
    results: tuple[TargetResult, ...]

    @property
    def ok(self) -> bool:
        """True when every target accepted the command."""
        return all(r.ok for r in self.results)

    @property
    def skew(self) -> float | None:
        """Seconds between the first and last time of effect (None if < 2 replies)."""
        times = [r.time for r in self.results if r.ok and r.time is not None]
        if len(times) < 2:
            return None
        return max(times) - min(times)

    def __iter__(self) -> Iterator[TargetResult]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, name: str) -> TargetResult:
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(name)


def _one_target(
    ctx: zmq.Context[zmq.Socket[bytes]],
    kind: str,
    name: str,
    payload: bytes,
    timeout: float,
    shm: Path | None,
    barrier: threading.Barrier,
    out: dict[str, TargetResult],
) -> None:
    path = socket_path(kind, name, shm)
    exists = path.exists()
    dead = exists and not daemon_alive(kind, name, shm_dir=shm)
    raw: bytes | None = None
    with ctx.socket(zmq.REQ) as sock:
        sock.linger = 0
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        if exists and not dead:
            sock.connect(f"ipc://{path}")  # before the barrier: only the send is timed
        # another thread failed to arrive: send anyway, never hang
        with contextlib.suppress(threading.BrokenBarrierError):
            barrier.wait(timeout)
        if not exists:
            why = f"no {kind} daemon for {name!r} (no socket {path})"
            if kind == "logger":
                why = f"no logger for {name}: run vampires_preplog"
            out[name] = TargetResult(name=name, status="not-running", error=why)
            return
        start = time.perf_counter()
        if not dead:
            sock.send(payload)
            if sock.poll(max(1, int(timeout * 1000)), zmq.POLLIN):
                raw = sock.recv()
        rtt = time.perf_counter() - start
    if raw is None:
        if dead or not daemon_alive(kind, name, shm_dir=shm):
            why = f"{kind} daemon for {name!r} died (stale socket {path})"
            if kind == "logger":
                why = f"logger for {name} died: run vampires_preplog"
            out[name] = TargetResult(name=name, status="not-running", error=why)
        else:
            why = f"no reply from {kind} {name} within {timeout:g} s"
            out[name] = TargetResult(name=name, status="timeout", error=why, round_trip=rtt)
        return
    try:
        reply = decode_reply(raw)
    except ValueError as exc:
        out[name] = TargetResult(name=name, status="error", error=f"malformed reply: {exc}")
        return
    when = reply.get("time")
    t = float(when) if isinstance(when, int | float) and not isinstance(when, bool) else None
    if reply["ok"]:
        out[name] = TargetResult(name=name, status="ok", reply=reply, time=t, round_trip=rtt)
    else:
        out[name] = TargetResult(
            name=name,
            status="error",
            reply=reply,
            error=error_text(reply),
            time=t,
            round_trip=rtt,
        )


def group_call(
    kind: str,
    names: Sequence[str],
    command: str,
    args: Mapping[str, Any] | None = None,
    *,
    timeout: float = 2.0,
    shm_dir: ShmDir = None,
) -> GroupResult:
    """Send one command to several daemons at once and collect every answer.

    One thread and one REQ socket per target; the threads meet at a barrier
    after connecting and send together, so the skew measured between the
    daemons' times of effect is the control plane's own.

    Parameters
    ----------
    kind
        Daemon kind.
    names
        Target names (duplicates refused).
    command
        Command name.
    args
        JSON-able arguments, the same for every target.
    timeout
        Seconds to wait for each reply.
    shm_dir
        Shm folder; defaults to ``MILK_SHM_DIR`` resolution.

    Returns
    -------
    GroupResult
        One :class:`TargetResult` per name, in order, and ``skew``.

    Raises
    ------
    ConfigError
        Bad kind, name, timeout, or duplicate names.
    CommandError
        ``args`` not JSON-able.
    """
    validate_kind(kind)
    names = [validate_name(n) for n in names]
    if len(set(names)) != len(names):
        msg = f"group_call: duplicate target names in {names}"
        raise ConfigError(msg)
    wait = _check_timeout(timeout)
    try:
        payload = encode({"command": command, "args": dict(args or {})})
    except (TypeError, ValueError) as exc:
        msg = f"group_call {command}: arguments are not JSON-able ({exc})"
        raise CommandError(msg) from exc
    shm = Path(shm_dir) if shm_dir is not None else default_shm_dir()
    out: dict[str, TargetResult] = {}
    if not names:
        return GroupResult(command=command, results=())
    barrier = threading.Barrier(len(names))
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    threads = [
        threading.Thread(
            target=_one_target,
            args=(ctx, kind, name, payload, wait, shm, barrier, out),
            name=f"group-{command}-{name}",
            daemon=True,
        )
        for name in names
    ]
    try:
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 2 * wait + 1.0
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
    finally:
        if any(t.is_alive() for t in threads):
            # never hang in term() on a socket a stuck worker still holds
            ctx.destroy(linger=0)
        else:
            ctx.term()
    results = tuple(
        out.get(n, TargetResult(name=n, status="timeout", error="worker did not finish"))
        for n in names
    )
    return GroupResult(command=command, results=results)


@attrs.frozen(kw_only=True)
class DaemonInfo:
    """A daemon found by :func:`discover`.

    Attributes
    ----------
    kind, name
        The target.
    endpoint
        Its ipc endpoint.
    alive
        It answered ``ping``.
    pid
        Process id (from the ping reply, else from its lock file), if known.
    state
        The state in its ping reply, if any.
    """

    kind: str
    name: str
    endpoint: str
    alive: bool
    pid: int | None = None
    state: str | None = None


def discover(
    kind: str | None = None,
    *,
    shm_dir: ShmDir = None,
    timeout: float = 0.5,
    include_dead: bool = False,
) -> list[DaemonInfo]:
    """List the daemons whose ipc socket is in the control folder, pinging each.

    Parameters
    ----------
    kind
        Only this kind (``"logger"``); None for all.
    shm_dir
        Shm folder; defaults to ``MILK_SHM_DIR`` resolution.
    timeout
        Seconds to wait for each ping (pings run concurrently).
    include_dead
        Also return sockets nobody answers (stale, or a hung daemon).

    Returns
    -------
    list of DaemonInfo
        Sorted by kind then name.
    """
    if kind is not None:
        validate_kind(kind)
    shm = Path(shm_dir) if shm_dir is not None else default_shm_dir()
    folder = control_dir(shm)
    try:
        entries = sorted(os.listdir(folder))
    except FileNotFoundError:
        return []
    targets: dict[str, list[str]] = {}
    for entry in entries:
        parsed = parse_socket_name(entry)
        if parsed is None or (kind is not None and parsed[0] != kind):
            continue
        targets.setdefault(parsed[0], []).append(parsed[1])
    found: list[DaemonInfo] = []
    for k, names in sorted(targets.items()):
        group = group_call(k, names, "ping", timeout=timeout, shm_dir=shm)
        for result in group.results:
            pid = None
            if result.reply is not None and isinstance(result.reply.get("pid"), int):
                pid = result.reply["pid"]
            info = DaemonInfo(
                kind=k,
                name=result.name,
                endpoint=f"ipc://{socket_path(k, result.name, shm)}",
                alive=result.ok,
                pid=pid,
                state=result.state,
            )
            if info.alive or include_dead:
                found.append(info)
    return found
