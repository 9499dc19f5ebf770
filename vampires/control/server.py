"""`DaemonServer`: the REP side of the control plane, one per daemon process.

A daemon owns its loop (a logger, a camera, a link) and answers small JSON
commands on ``ipc://$MILK_SHM_DIR/vampires/<kind>-<name>.sock``. The server:

- holds ``<kind>-<name>.lock`` (``flock``) for its whole life, so two daemons
  can never serve the same target, and a socket file whose owner died is known
  to be stale, pinged once and removed at the next start;
- checks every request (envelope, command, argument schema) *before* calling a
  handler, so a malformed request can neither crash the daemon nor change its
  state; handler exceptions become error replies;
- optionally also listens on ``tcp://`` for another host, and then only with
  ZMQ CURVE keys (see :mod:`vampires.control.keys`).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import zmq

from vampires._checks import ShmDir
from vampires.config import control_dir
from vampires.config import shm_dir as default_shm_dir
from vampires.control.protocol import (
    MAX_MESSAGE_BYTES,
    Command,
    Handler,
    encode,
    lock_path,
    parse_request,
    socket_path,
    stop_hint,
    validate_args,
    validate_kind,
    validate_name,
)
from vampires.errors import (
    CommandError,
    ConfigError,
    ControlError,
    DaemonAlreadyRunning,
    VampiresError,
)

__all__ = ["BUILTIN_COMMANDS", "DaemonServer"]

logger = logging.getLogger(__name__)

#: Commands every daemon answers without a handler.
BUILTIN_COMMANDS = frozenset({"ping", "help"})

_STALE_PING_TIMEOUT = 0.3
_LOCK_RETRY_S = 0.3


def _normalise(handlers: Mapping[str, object]) -> dict[str, Command]:
    out: dict[str, Command] = {}
    for name, handler in handlers.items():
        if name in BUILTIN_COMMANDS:
            msg = f"command {name!r} is built into every daemon; choose another name"
            raise ConfigError(msg)
        if isinstance(handler, Command):
            out[name] = handler
            continue
        if not callable(handler):
            msg = f"handler for {name!r} must be callable or a Command, got {handler!r}"
            raise ConfigError(msg)
        out[name] = Command(func=handler, strict=False)
    return out


def ensure_control_dir(shm: Path) -> Path:
    """Create ``<shm>/vampires`` with mode 0700 and check it belongs to us.

    Parameters
    ----------
    shm
        The shm folder.

    Returns
    -------
    Path
        The control folder.

    Raises
    ------
    ControlError
        The folder cannot be created, or belongs to another user.
    """
    folder = control_dir(shm)
    try:
        folder.mkdir(mode=0o700, parents=False, exist_ok=True)
        info = folder.stat()
    except OSError as exc:
        msg = f"cannot create the control folder {folder}: {exc}; check that {shm} exists"
        raise ControlError(msg) from exc
    if info.st_uid != os.getuid():
        msg = (
            f"control folder {folder} belongs to uid {info.st_uid}, not to us "
            f"({os.getuid()}); run daemons as that user or use another MILK_SHM_DIR"
        )
        raise ControlError(msg)
    if info.st_mode & 0o077:
        # made by an older tool or another umask: only we may reach the sockets
        logger.warning("control folder %s was accessible to others; setting mode 0700", folder)
        folder.chmod(0o700)
    return folder


class DaemonServer:
    """Answer JSON commands for one daemon on a ZMQ REP socket.

    Parameters
    ----------
    kind
        ``"camera"``, ``"logger"``, ``"link"`` (any ``[a-z][a-z0-9_]*``).
    name
        Target name, usually the stream name (``"vcam1"``).
    handlers
        Command name -> handler ``fn(args) -> dict`` or :class:`Command` (with
        an argument schema checked before the call). A handler raises
        :class:`~vampires.errors.CommandError` for bad arguments; any other
        exception becomes an error reply and is logged.
    shm_dir
        Shm folder; defaults to ``MILK_SHM_DIR`` resolution at open time.
    state
        Optional callable giving the daemon state (``"idle"``, ``"saving"``
        ...), added as ``"state"`` to every reply.
    tcp
        Optional extra endpoint ``tcp://host:port`` for another host; needs
        ``curve_dir``.
    curve_dir
        Folder of CURVE keys (:func:`vampires.control.keys.generate_keys`).

    Examples
    --------
    >>> stop = threading.Event()
    >>> with DaemonServer("logger", "vcam1", {"on": start_saving}) as server:
    ...     server.serve(stop)
    """

    def __init__(
        self,
        kind: str,
        name: str,
        handlers: Mapping[str, Handler | Command],
        *,
        shm_dir: ShmDir = None,
        state: Callable[[], str] | None = None,
        tcp: str | None = None,
        curve_dir: Path | str | None = None,
    ) -> None:
        self.kind = validate_kind(kind)
        self.name = validate_name(name)
        self._commands = _normalise(handlers)
        self._shm_dir = Path(shm_dir) if shm_dir is not None else None
        self._state = state
        if tcp is not None and not tcp.startswith("tcp://"):
            msg = f"{kind} {name}: extra endpoint must be tcp://host:port, got {tcp!r}"
            raise ConfigError(msg)
        if tcp is not None and curve_dir is None:
            msg = (
                f"{kind} {name}: refusing to listen on {tcp} without CURVE keys (anyone "
                f"reaching the port could drive the daemon); create keys with "
                f"vampires.control.keys.generate_keys(folder) and pass curve_dir=folder"
            )
            raise ConfigError(msg)
        self._tcp = tcp
        self._curve_dir = Path(curve_dir) if curve_dir is not None else None
        self._ctx: zmq.Context[zmq.Socket[bytes]] | None = None
        self._sock: zmq.Socket[bytes] | None = None
        self._auth: Any = None
        self._lock_fd: int | None = None
        self._sock_path: Path | None = None
        self._sock_ino: int | None = None
        self._lock_file: Path | None = None
        self._stop_requested = threading.Event()
        self._closed = False
        self.tcp_endpoint: str | None = None

    # ------------------------------------------------------------------ lifecycle

    @property
    def socket_path(self) -> Path:
        """The ipc socket file (``<shm>/vampires/<kind>-<name>.sock``)."""
        return socket_path(self.kind, self.name, self._resolved_shm())

    @property
    def endpoint(self) -> str:
        """The ipc endpoint clients connect to."""
        return f"ipc://{self.socket_path}"

    @property
    def commands(self) -> list[str]:
        """All commands this daemon answers, built-ins included."""
        return sorted(set(self._commands) | BUILTIN_COMMANDS)

    def _resolved_shm(self) -> Path:
        return self._shm_dir if self._shm_dir is not None else default_shm_dir()

    def open(self) -> Self:
        """Take the lock, remove a stale socket and bind.

        Returns
        -------
        DaemonServer
            ``self``.

        Raises
        ------
        DaemonAlreadyRunning
            Another daemon serves this kind and name.
        ControlError
            The control folder or socket cannot be created.
        """
        if self._closed:
            msg = f"{self.kind} {self.name}: server closed; create a new DaemonServer"
            raise ControlError(msg)
        if self._sock is not None:
            return self
        shm = self._resolved_shm()
        ensure_control_dir(shm)
        path = socket_path(self.kind, self.name, shm)
        self._take_lock(lock_path(self.kind, self.name, shm))
        try:
            self._remove_stale(path)
            self._bind(path)
        except BaseException:
            self.close()
            raise
        logger.info("%s %s: serving on %s", self.kind, self.name, self.endpoint)
        return self

    def _take_lock(self, path: Path) -> None:
        deadline = time.monotonic() + _LOCK_RETRY_S
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if time.monotonic() > deadline:
                    pid = _read_pid(path)
                    msg = (
                        f"a {self.kind} daemon for {self.name!r} is already running"
                        f"{f' (pid {pid})' if pid else ''}; stop it first "
                        f"('{stop_hint(self.kind, self.name)}')"
                    )
                    raise DaemonAlreadyRunning(msg) from None
                time.sleep(0.02)
                continue
            # The file may have been unlinked by a daemon closing meanwhile: then
            # our lock is on a dead inode; retry on the new file.
            try:
                same = os.fstat(fd).st_ino == path.stat().st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._lock_fd = fd
        self._lock_file = path

    def _remove_stale(self, path: Path) -> None:
        if not path.exists():
            return
        # We hold the lock, so whoever bound this file is gone; ping once anyway,
        # in case a foreign program serves it.
        from vampires.control.client import ping_endpoint

        if ping_endpoint(f"ipc://{path}", timeout=_STALE_PING_TIMEOUT):
            msg = (
                f"{path} answers ping but its lock is free: another program serves it; "
                f"stop it before starting a {self.kind} daemon for {self.name!r}"
            )
            raise DaemonAlreadyRunning(msg)
        logger.warning("%s %s: removing stale socket %s (daemon died)", self.kind, self.name, path)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()

    def _bind(self, path: Path) -> None:
        self._ctx = zmq.Context()
        sock = self._ctx.socket(zmq.REP)
        self._sock = sock
        sock.linger = 0
        sock.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE_BYTES)
        sock.sndtimeo = 1000
        try:
            sock.bind(f"ipc://{path}")
        except zmq.ZMQError as exc:
            msg = f"{self.kind} {self.name}: cannot bind {path}: {exc}"
            raise ControlError(msg) from exc
        self._sock_path = path
        path.chmod(0o600)
        self._sock_ino = path.stat().st_ino
        if self._tcp is not None:
            self._bind_tcp(sock)

    def _bind_tcp(self, sock: zmq.Socket[bytes]) -> None:
        from vampires.control.keys import start_authenticator

        ctx, curve_dir, tcp = self._ctx, self._curve_dir, self._tcp
        if ctx is None or curve_dir is None or tcp is None:
            msg = f"{self.kind} {self.name}: TCP control needs a context, key folder and address"
            raise ControlError(msg)
        self._auth = start_authenticator(ctx, sock, curve_dir)
        try:
            sock.bind(tcp)
        except zmq.ZMQError as exc:
            msg = f"{self.kind} {self.name}: cannot bind {tcp}: {exc}"
            raise ControlError(msg) from exc
        self.tcp_endpoint = sock.getsockopt_string(zmq.LAST_ENDPOINT)

    def close(self) -> None:
        """Unbind, remove the socket and lock files, release the lock (idempotent)."""
        self._closed = True
        if self._sock is not None:
            self._sock.close(linger=0)
            self._sock = None
        if self._auth is not None:
            self._auth.stop()
            self._auth = None
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None
        if self._sock_path is not None:
            with contextlib.suppress(FileNotFoundError):
                if self._sock_path.stat().st_ino == self._sock_ino:
                    self._sock_path.unlink()
            self._sock_path = None
        if self._lock_fd is not None:
            if self._lock_file is not None:
                with contextlib.suppress(FileNotFoundError):
                    self._lock_file.unlink()
            os.close(self._lock_fd)
            self._lock_fd = None

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # ------------------------------------------------------------------ serving

    def request_stop(self) -> None:
        """Make :meth:`serve` return after the reply being handled (for ``kill``)."""
        self._stop_requested.set()

    def serve(self, stop: threading.Event | None = None, *, poll_interval: float = 0.1) -> None:
        """Answer requests until ``stop`` is set or a handler calls :meth:`request_stop`.

        Parameters
        ----------
        stop
            Any object with ``is_set()``; None serves until :meth:`request_stop`.
        poll_interval
            Seconds between checks of ``stop`` while idle.
        """
        self.open()
        sock = self._sock
        if sock is None:
            msg = f"{self.kind} {self.name}: control socket not bound"
            raise ControlError(msg)
        poller = zmq.Poller()
        poller.register(sock, zmq.POLLIN)
        timeout_ms = max(1, int(poll_interval * 1000))
        while not self._stop_requested.is_set() and not (stop is not None and stop.is_set()):
            if not poller.poll(timeout_ms):
                continue
            self.serve_one(sock)

    def serve_one(self, sock: zmq.Socket[bytes]) -> None:
        """Receive one request (already known to be waiting) and send its reply."""
        try:
            frames = sock.recv_multipart(zmq.NOBLOCK)
        except zmq.Again:
            return
        reply = self._reply_to(frames)
        try:
            sock.send(reply)
        except zmq.ZMQError as exc:  # peer gone: REP drops the reply and resets
            logger.warning("%s %s: could not send reply: %s", self.kind, self.name, exc)

    def handle(self, raw: bytes) -> dict[str, Any]:
        """Handle one raw request and return the reply (what :meth:`serve` sends).

        Parameters
        ----------
        raw
            Request bytes.

        Returns
        -------
        dict
            The reply; never raises for bad input.
        """
        return self._dispatch(raw)

    def _reply_to(self, frames: list[bytes]) -> bytes:
        if len(frames) != 1:
            reply = self._error(f"malformed request: expected 1 message frame, got {len(frames)}")
        else:
            reply = self._dispatch(frames[0])
        try:
            return encode(reply)
        except (TypeError, ValueError) as exc:
            logger.error("%s %s: reply not JSON-able: %r (%s)", self.kind, self.name, reply, exc)
            return encode(self._error(f"internal error: reply not JSON-able ({exc})"))

    def _current_state(self) -> str | None:
        if self._state is None:
            return None
        try:
            return str(self._state())
        except Exception:
            logger.exception("%s %s: state callback failed", self.kind, self.name)
            return "unknown"

    def _error(
        self, message: str, when: float | None = None, error_type: str | None = None
    ) -> dict[str, Any]:
        reply: dict[str, Any] = {
            "ok": False,
            "time": time.time() if when is None else when,
            "error": message,
        }
        if error_type is not None:
            reply["error_type"] = error_type
        state = self._current_state()
        if state is not None:
            reply["state"] = state
        return reply

    def _dispatch(self, raw: bytes) -> dict[str, Any]:
        when = time.time()
        try:
            command, args = parse_request(raw)
            if command in BUILTIN_COMMANDS:
                result = self._builtin(command, args)
            else:
                spec = self._commands.get(command)
                if spec is None:
                    msg = f"unknown command {command!r}; this {self.kind} daemon answers: " + (
                        ", ".join(self.commands)
                    )
                    raise CommandError(msg)
                checked = validate_args(command, spec, args)
                result = _checked_result(command, spec.func(checked))
        except VampiresError as exc:  # CommandError included
            return self._error(str(exc), when, type(exc).__name__)
        except Exception as exc:
            logger.exception("%s %s: handler failed", self.kind, self.name)
            return self._error(f"internal error: {type(exc).__name__}: {exc}", when)
        reply: dict[str, Any] = {"ok": True, "time": when}
        reply.update(result)
        reply["ok"] = True
        if "state" not in reply:
            state = self._current_state()
            if state is not None:
                reply["state"] = state
        return reply

    def _builtin(self, command: str, args: dict[str, Any]) -> dict[str, Any]:
        if args:
            msg = f"{command}: takes no arguments (got {sorted(args)})"
            raise CommandError(msg)
        if command == "ping":
            return {
                "kind": self.kind,
                "name": self.name,
                "pid": os.getpid(),
                "commands": self.commands,
            }
        return {
            "commands": {name: spec.describe() for name, spec in sorted(self._commands.items())}
        }


def _checked_result(command: str, result: object) -> dict[str, Any]:
    if not isinstance(result, dict):
        msg = f"handler of {command!r} returned {type(result).__name__}, not a dict"
        raise TypeError(msg)
    return result


def _read_pid(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None
