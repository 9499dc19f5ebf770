r"""`spawn_daemon`: start a daemon process that outlives the command that started it.

The daemon is started through a tiny launcher (a second, minimal Python
process) that ``posix_spawn``\ s it in a new session with stdin from
``/dev/null`` and stdout/stderr appended to a log file, then exits at once. The
daemon is therefore not our child: it survives the terminal closing, never
becomes our zombie, and we hold no ``Popen`` for it. We wait until it answers
``ping`` (or dies, in which case its log tail is in the error).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from vampires._checks import ShmDir
from vampires.config import control_dir
from vampires.config import shm_dir as default_shm_dir
from vampires.control.client import ControlClient, daemon_alive
from vampires.control.protocol import socket_path, stop_hint, validate_kind, validate_name
from vampires.control.server import ensure_control_dir
from vampires.errors import (
    CommandError,
    ConfigError,
    ControlError,
    ControlTimeout,
    DaemonAlreadyRunning,
    DaemonNotRunning,
)

__all__ = ["default_log_path", "pid_alive", "spawn_daemon"]

# Runs in the launcher: spawn argv[2:] detached, log to argv[1], print the pid.
_LAUNCHER = """
import os, sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
null = os.open(os.devnull, os.O_RDONLY)
pid = os.posix_spawn(sys.argv[2], sys.argv[2:], os.environ, setsid=True,
    file_actions=[(os.POSIX_SPAWN_DUP2, null, 0), (os.POSIX_SPAWN_DUP2, fd, 1),
                  (os.POSIX_SPAWN_DUP2, fd, 2)])
sys.stdout.write(str(pid))
"""


def default_log_path(kind: str, name: str, shm_dir: ShmDir = None) -> Path:
    """Return the default daemon log file ``<shm>/vampires/<kind>-<name>.log``.

    Parameters
    ----------
    kind, name
        The target.
    shm_dir
        Shm folder; defaults to ``MILK_SHM_DIR`` resolution.

    Returns
    -------
    Path
    """
    return (
        control_dir(Path(shm_dir) if shm_dir is not None else None)
        / f"{validate_kind(kind)}-{validate_name(name)}.log"
    )


def pid_alive(pid: int) -> bool:
    """Tell whether process ``pid`` runs (and is not a zombie).

    Parameters
    ----------
    pid
        Process id.

    Returns
    -------
    bool
    """
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rpartition(")")[2].split()[:1] != ["Z"]


def _tail(path: Path, nbytes: int = 1500, start: int = 0) -> str:
    """Return the last ``nbytes`` of ``path`` written after offset ``start`` (this run's)."""
    try:
        with path.open("rb") as fh:
            fh.seek(max(start, path.stat().st_size - nbytes))
            return fh.read().decode(errors="replace").strip()
    except OSError:
        return ""


def _reason(tail: str) -> str:
    """Return the line saying why a daemon exited: its last one (the exception)."""
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def spawn_daemon(
    argv: Sequence[str],
    *,
    kind: str,
    name: str,
    log_path: Path | str | None = None,
    timeout: float = 10.0,
    shm_dir: ShmDir = None,
    env: Mapping[str, str] | None = None,
) -> int:
    """Start a detached daemon and return its pid once it answers ``ping``.

    Parameters
    ----------
    argv
        Command line of the daemon (``[sys.executable, "-m", ...]``); it must
        serve a :class:`~vampires.control.DaemonServer` for ``kind``/``name``.
        ``argv[0]`` is resolved on ``PATH`` if it is not a path.
    kind, name
        The daemon's target, to refuse a second one and to ping it.
    log_path
        File receiving the daemon's stdout and stderr (appended); default
        ``<shm>/vampires/<kind>-<name>.log``.
    timeout
        Seconds to wait for the first ``ping`` answer.
    shm_dir
        Shm folder passed to the daemon as ``MILK_SHM_DIR``; default: current.
    env
        Environment of the daemon (default: ours).

    Returns
    -------
    int
        The daemon's pid.

    Raises
    ------
    DaemonAlreadyRunning
        A daemon already serves ``kind``/``name``.
    ControlError
        The daemon exited during start-up (its log tail is in the message).
    ControlTimeout
        It did not answer in ``timeout`` seconds (it is then terminated).
    ConfigError
        Bad arguments, or ``argv[0]`` not found.
    """
    validate_kind(kind)
    validate_name(name)
    if not argv:
        msg = "spawn_daemon: empty argv"
        raise ConfigError(msg)
    shm = Path(shm_dir) if shm_dir is not None else default_shm_dir()
    ensure_control_dir(shm)
    if daemon_alive(kind, name, shm_dir=shm):
        msg = (
            f"a {kind} daemon for {name!r} is already running; stop it first "
            f"('{stop_hint(kind, name)}')"
        )
        raise DaemonAlreadyRunning(msg)
    program = argv[0] if os.sep in argv[0] else _which(argv[0])
    log = Path(log_path) if log_path is not None else default_log_path(kind, name, shm)
    log.parent.mkdir(parents=True, exist_ok=True)
    try:
        log_start = log.stat().st_size  # earlier runs' lines are not this failure's
    except OSError:
        log_start = 0
    child_env = dict(os.environ if env is None else env)
    child_env["MILK_SHM_DIR"] = str(shm)
    try:
        launched = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _LAUNCHER, str(log), program, *argv[1:]],
            capture_output=True,
            env=child_env,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        msg = f"launcher for {kind} {name} did not return within {timeout:g} s"
        raise ControlTimeout(msg) from exc
    out = launched.stdout.decode(errors="replace").strip()
    if launched.returncode != 0 or not out.isdigit():
        err = launched.stderr.decode(errors="replace").strip().splitlines()[-1:]
        msg = f"could not start {kind} daemon for {name!r}: {' '.join(err) or 'launcher failed'}"
        raise ControlError(msg)
    pid = int(out)
    return _wait_ready(pid, kind, name, shm, log, timeout, log_start)


def _which(program: str) -> str:
    """Resolve ``program`` on ``PATH`` or raise ConfigError."""
    import shutil

    found = shutil.which(program)
    if found is None:
        msg = f"spawn_daemon: program {program!r} not found on PATH"
        raise ConfigError(msg)
    return found


def _wait_ready(
    pid: int, kind: str, name: str, shm: Path, log: Path, timeout: float, log_start: int = 0
) -> int:
    deadline = time.monotonic() + timeout
    path = socket_path(kind, name, shm)
    with ControlClient(kind, name, shm_dir=shm, timeout=0.5) as client:
        while True:
            if path.exists():
                try:
                    reply = client.ping(timeout=min(0.5, max(0.05, deadline - time.monotonic())))
                except (ControlTimeout, DaemonNotRunning, CommandError):
                    pass
                else:
                    if reply.get("pid") == pid:
                        return pid
                    msg = (
                        f"a {kind} daemon for {name!r} is already running "
                        f"(pid {reply.get('pid')}); stop it first"
                    )
                    raise DaemonAlreadyRunning(msg)
            if not pid_alive(pid):
                tail = _tail(log, start=log_start)
                if "DaemonAlreadyRunning" in tail and daemon_alive(kind, name, shm_dir=shm):
                    msg = f"a {kind} daemon for {name!r} is already running; stop it first"
                    raise DaemonAlreadyRunning(msg)
                msg = (
                    f"{kind} daemon for {name!r} exited during start-up: {_reason(tail)} "
                    f"(details in {log})"
                )
                raise ControlError(msg)
            if time.monotonic() > deadline:
                import signal

                os.kill(pid, signal.SIGTERM)
                msg = (
                    f"{kind} daemon for {name!r} (pid {pid}) did not answer ping within "
                    f"{timeout:g} s; terminated it. Last line of its log {log}: "
                    f"{_reason(_tail(log, start=log_start))}"
                )
                raise ControlTimeout(msg)
            time.sleep(0.01)
