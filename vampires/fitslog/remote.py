"""Drive logger daemons: start one, command many at once, list them.

>>> from vampires.fitslog.remote import LoggerGroup
>>> group = LoggerGroup(["vcam1", "vcam2"])
>>> result = group.on()
>>> for line in describe(result):
...     print(line)
vcam1: on ok, state saving (skew 0.21 ms)
vcam2: on ok, state saving (skew 0.21 ms)

Every method sends to all loggers concurrently and returns a
:class:`~vampires.control.GroupResult`: one result per logger (ok, error,
timeout or not-running, with the reply and the daemon's time of effect) and
the measured ``skew`` between the loggers' times of effect.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import attrs

from vampires._checks import ShmDir
from vampires.control.client import (
    GroupResult,
    TargetResult,
    discover,
    group_call,
)
from vampires.control.protocol import validate_name
from vampires.control.spawn import default_log_path, spawn_daemon
from vampires.errors import ConfigError

__all__ = [
    "KIND",
    "LoggerGroup",
    "PrepResult",
    "check_prep",
    "describe",
    "logger_argv",
    "prepare_loggers",
    "set_data_type",
    "start_logger",
    "status_table",
    "suggest_frames",
]

KIND = "logger"


def _shm_path(shm_dir: ShmDir) -> Path | None:
    return Path(shm_dir) if shm_dir is not None else None


class LoggerGroup:
    """Several logger daemons commanded together.

    Parameters
    ----------
    names
        Stream names of the loggers (``["vcam1", "vcam2"]``).
    timeout
        Seconds to wait for each reply.
    shm_dir
        Shm folder of the control sockets; default ``MILK_SHM_DIR`` resolution.
    """

    def __init__(
        self,
        names: Sequence[str],
        *,
        timeout: float = 5.0,
        shm_dir: ShmDir = None,
    ) -> None:
        if isinstance(names, str):
            names = [names]
        self.names = tuple(validate_name(n) for n in names)
        if len(set(self.names)) != len(self.names):
            msg = f"LoggerGroup: duplicate logger names in {list(self.names)}"
            raise ConfigError(msg)
        self.timeout = timeout
        self._shm_dir = Path(shm_dir) if shm_dir is not None else None

    def __repr__(self) -> str:
        return f"LoggerGroup({list(self.names)!r})"

    @classmethod
    def discover(
        cls,
        *,
        timeout: float = 5.0,
        shm_dir: ShmDir = None,
        include_dead: bool = False,
    ) -> LoggerGroup:
        """Return a group of every logger daemon that answers ``ping``.

        Parameters
        ----------
        timeout
            Seconds for replies to later commands (pings use at most 0.5 s).
        shm_dir
            Shm folder; default ``MILK_SHM_DIR`` resolution.
        include_dead
            Also include loggers whose socket is left but whose daemon died
            or does not answer (their commands then report it).

        Returns
        -------
        LoggerGroup
        """
        found = discover(
            KIND, shm_dir=_shm_path(shm_dir), timeout=min(timeout, 0.5), include_dead=include_dead
        )
        return cls([d.name for d in found], timeout=timeout, shm_dir=shm_dir)

    def call(self, command: str, args: dict[str, Any] | None = None) -> GroupResult:
        """Send ``command`` to every logger at once.

        Parameters
        ----------
        command
            Command name (see :mod:`vampires.fitslog.daemon`).
        args
            Arguments, the same for every logger.

        Returns
        -------
        GroupResult
        """
        return group_call(
            KIND, self.names, command, args, timeout=self.timeout, shm_dir=self._shm_dir
        )

    def on(self, *, cubes: int | None = None) -> GroupResult:
        """Start saving (``cubes``: stop by itself after that many, -1 = never)."""
        return self.call("on", {} if cubes is None else {"cubes": cubes})

    def off(self) -> GroupResult:
        """Stop saving now; the cube being filled is closed truncated."""
        return self.call("off")

    def offc(self) -> GroupResult:
        """Stop saving after the cube being filled."""
        return self.call("offc")

    def next_cube(self) -> GroupResult:
        """Close the current cubes now and go on saving."""
        return self.call("next")

    def set(
        self,
        *,
        cube_size: int | None = None,
        cubes: int | None = None,
        timeout: float | None = None,
        root: str | Path | None = None,
        folder: str | Path | None = None,
        flush: float | None = None,
        sync: float | None = None,
    ) -> GroupResult:
        """Change the configuration, applied at the next cube.

        Parameters
        ----------
        cube_size
            Frames per cube.
        cubes
            Cubes per run (-1 = until stopped).
        timeout
            Seconds of silence closing a cube (0 = adaptive).
        root
            Files go to ``<root>/<UT date>/<stream>/``.
        folder
            Exact folder (``""`` = back to root mode).
        flush
            Longest seconds a frame waits in RAM before it is in its ``.fits.tmp``.
        sync
            Seconds between ``fdatasync`` calls (0 = every flush, < 0 = only at close).

        Returns
        -------
        GroupResult
        """
        args: dict[str, Any] = {}
        if flush is not None:
            args["flush"] = flush
        if sync is not None:
            args["sync"] = sync
        if cube_size is not None:
            args["cube_size"] = cube_size
        if cubes is not None:
            args["cubes"] = cubes
        if timeout is not None:
            args["timeout"] = timeout
        # relative folders are this process's, as for start_logger (the daemon
        # refuses relative ones: its cwd is not ours)
        if root is not None:
            args["root"] = os.path.abspath(root) if str(root) else ""
        if folder is not None:
            args["folder"] = os.path.abspath(folder) if str(folder) else ""
        return self.call("set", args)

    def get(self) -> GroupResult:
        """Return each logger's configuration."""
        return self.call("get")

    def status(self) -> GroupResult:
        """Return each logger's status (counters, current file, free disk)."""
        return self.call("status")

    def restart(self) -> GroupResult:
        """Re-create each logger with its current configuration (new buffers)."""
        return self.call("restart")

    def kill(self) -> GroupResult:
        """Tear the loggers down (truncating open cubes) and end their daemons."""
        return self.call("kill")


def describe(result: GroupResult) -> Iterator[str]:
    """Yield one human line per logger: name, command, result, state and skew.

    Parameters
    ----------
    result
        A :class:`~vampires.control.GroupResult`.

    Yields
    ------
    str
    """
    skew = result.skew
    tail = f" (skew {skew * 1e3:.2f} ms)" if skew is not None else ""
    for target in result.results:
        yield _line(result.command, target, tail)


def _gb(nbytes: object) -> str:
    if not isinstance(nbytes, int) or isinstance(nbytes, bool):
        return "?"
    return f"{nbytes / 1e9:.1f} GB"


def status_table(result: GroupResult) -> list[str]:
    """Format the replies to ``status`` as the ``vampires logger ls`` table.

    Parameters
    ----------
    result
        What :meth:`LoggerGroup.status` returned.

    Returns
    -------
    list of str
        A header, then one line per logger: state, pid, cube size and count,
        files, frames, drops, free disk, current file (or the logger's error);
        a dead logger says so with the fix.
    """
    lines = [
        f"{'STREAM':<10} {'STATE':<10} {'PID':>7} {'CUBE':>6} {'CUBES':>5} {'FILES':>5} "
        f"{'FRAMES':>8} {'DROP':>5} {'DISK FREE':>9}  CURRENT FILE"
    ]
    for r in result:
        if not r.ok or r.reply is None:
            label = "DEAD" if r.status == "not-running" else r.status
            lines.append(f"{r.name:<10} {label:<10} {r.error}")
            continue
        st = r.reply.get("logger") or {}
        last = st.get("current_file") or "-"
        if st.get("error"):
            last = f"ERROR: {st['error']}"
        elif r.reply.get("worker_failure"):
            last = f"RECOVERED: {r.reply['worker_failure']}"
        lines.append(
            f"{r.name:<10} {r.state or '?':<10} {r.reply.get('pid', '?'):>7} "
            f"{r.reply.get('cube_size', '?'):>6} {r.reply.get('cubes', '?'):>5} "
            f"{st.get('files', '?'):>5} {st.get('frames', '?'):>8} {st.get('dropped', '?'):>5} "
            f"{_gb(r.reply.get('disk_free')):>9}  {last}"
        )
    return lines


def _line(command: str, target: TargetResult, tail: str) -> str:
    state = f", state {target.state}" if target.state else ""
    if target.ok:
        return f"{target.name}: {command} ok{state}{tail}"
    return f"{target.name}: {command} FAILED ({target.status}): {target.error}{state}"


def logger_argv(
    stream: str,
    *,
    cube_size: int,
    cubes: int = -1,
    root: Path | str | None = None,
    dirname: Path | str | None = None,
    timeout: float | None = None,
    tcp: str | None = None,
    curve_dir: Path | str | None = None,
    flush: float | None = None,
    sync: float | None = None,
) -> list[str]:
    """Return the command line of a foreground logger daemon (``vampires logger run``).

    Parameters
    ----------
    stream, cube_size, cubes, root, dirname, timeout, tcp, curve_dir, flush, sync
        As for :func:`start_logger`.

    Returns
    -------
    list of str
    """
    argv = [sys.executable, "-m", "vampires", "logger", "run", stream]
    argv += ["--cube-size", str(cube_size), "--cubes", str(cubes)]
    if root is not None:
        argv += ["--root", str(root)]
    if dirname is not None:
        argv += ["--dir", str(dirname)]
    if timeout is not None:
        argv += ["--timeout", repr(float(timeout))]
    if flush is not None:
        argv += ["--flush", repr(float(flush))]
    if sync is not None:
        argv += ["--sync", repr(float(sync))]
    if tcp is not None:
        argv += ["--tcp", tcp]
    if curve_dir is not None:
        argv += ["--curve-dir", os.path.abspath(curve_dir)]
    return argv


def start_logger(
    stream: str,
    *,
    cube_size: int,
    cubes: int = -1,
    root: Path | str | None = None,
    dirname: Path | str | None = None,
    timeout: float | None = None,
    log_path: Path | str | None = None,
    spawn_timeout: float = 15.0,
    shm_dir: ShmDir = None,
    tcp: str | None = None,
    curve_dir: Path | str | None = None,
    flush: float | None = None,
    sync: float | None = None,
) -> int:
    """Start a logger daemon for ``stream`` in the background; return its pid.

    The arguments are checked here first (a bad cube size fails at once with a
    clear message, not in the daemon's log).

    Parameters
    ----------
    stream
        Stream name.
    cube_size
        Frames per cube.
    cubes
        Cubes per run, -1 = until stopped.
    root
        Files go to ``<root>/<UT date>/<stream>/``.
    dirname
        Exact folder (wins over ``root``).
    timeout
        Seconds of stream silence closing a cube (None = adaptive).
    log_path
        Daemon log file; default ``$MILK_SHM_DIR/vampires/logger-<stream>.log``.
    spawn_timeout
        Seconds to wait for the daemon to answer.
    shm_dir
        Shm folder; default ``MILK_SHM_DIR`` resolution.
    tcp
        Also answer on ``tcp://host:port`` for another host (needs ``curve_dir``).
    curve_dir
        CURVE key folder (:func:`vampires.control.keys.generate_keys`).
    flush
        Longest seconds a frame waits in RAM before it is in its ``.fits.tmp`` (default 1).
    sync
        Seconds between ``fdatasync`` calls of the cube being written (0 = every
        flush, the default; < 0 = only when the cube closes).

    Returns
    -------
    int
        The daemon's pid.

    Raises
    ------
    ConfigError
        Bad arguments.
    DaemonAlreadyRunning
        A logger already runs for ``stream``.
    ControlError
        The daemon failed to start (its log tail is in the message).
    """
    from vampires.fitslog.policy import CubePolicy

    validate_name(stream)
    CubePolicy(  # validates
        frames_per_cube=cube_size,
        cubes=cubes,
        timeout=timeout,
        flush_interval=1.0 if flush is None else flush,
        sync_interval=None if sync is None or sync < 0 else sync,
    )
    if root is None and dirname is None:
        msg = f"logger {stream}: give a root folder (--root) or an exact folder (--dir)"
        raise ConfigError(msg)
    if tcp is not None and curve_dir is None:
        msg = f"logger {stream}: a tcp:// control endpoint needs CURVE keys (--curve-dir)"
        raise ConfigError(msg)
    # the daemon may run from another folder: make relative paths absolute here
    root = os.path.abspath(root) if root is not None else None
    dirname = os.path.abspath(dirname) if dirname is not None else None
    _check_writable_folder(stream, dirname if dirname is not None else root)
    shm = Path(shm_dir) if shm_dir is not None else None
    log = Path(log_path) if log_path is not None else default_log_path(KIND, stream, shm)
    argv = logger_argv(
        stream,
        cube_size=cube_size,
        cubes=cubes,
        root=root,
        dirname=dirname,
        timeout=timeout,
        tcp=tcp,
        curve_dir=curve_dir,
        flush=flush,
        sync=sync,
    )
    return spawn_daemon(
        argv, kind=KIND, name=stream, log_path=log, timeout=spawn_timeout, shm_dir=shm
    )


def _check_writable_folder(stream: str, folder: str | None) -> None:
    """Refuse a folder the logger could never write to, before any daemon starts."""
    from vampires.fitslog.names import check_folder

    if folder is not None:
        check_folder(folder, f"logger {stream}")


@attrs.frozen(kw_only=True)
class PrepResult:
    """What :func:`prepare_loggers` did for one camera.

    Attributes
    ----------
    name
        Stream name.
    ok
        The logger runs with the asked configuration.
    folder
        Where tonight's files go (``<base>/<UT date>/<name>``).
    message
        What happened (started, reconfigured, or the error).
    data_type
        The DATA-TYP now in the stream, if it was set.
    data_type_via
        ``"camera daemon"``, ``"stream keyword"`` or ``""`` when not set.
    """

    name: str
    ok: bool
    folder: str
    message: str
    data_type: str | None = None
    data_type_via: str = ""

    def line(self) -> str:
        """One human line for this camera."""
        dt = f", DATA-TYP {self.data_type} ({self.data_type_via})" if self.data_type else ""
        if not self.ok:  # nothing goes anywhere: say what failed, not where files would go
            return f"{self.name}: FAILED: {self.message}{dt}"
        return f"{self.name}: ok: {self.message}; files go to {self.folder}{dt}"


def suggest_frames(
    names: Sequence[str], *, target_bytes: float = 1.2e9, shm_dir: ShmDir = None
) -> int | None:
    """Suggest frames per cube for the cameras' current crops (cubes of ~1.2 GB).

    Parameters
    ----------
    names
        Stream names; those whose stream does not exist are skipped.
    target_bytes
        Wanted cube size (operators aim for 1-2 GB).
    shm_dir
        Shm folder; default ``MILK_SHM_DIR`` resolution.

    Returns
    -------
    int or None
        The smallest suggestion over the cameras (so no camera exceeds the
        target), None when no stream exists.
    """
    from vampires.errors import StreamError
    from vampires.fitslog.policy import CubePolicy
    from vampires.stream import Stream

    frames: list[int] = []
    for name in names:
        try:
            with Stream.open(name, shm_dir=shm_dir) as stream:
                shape, dtype = tuple(stream.shape[-2:]), stream.dtype
        except StreamError:
            continue
        frames.append(CubePolicy.for_frame(shape, dtype, target_bytes).frames_per_cube)
    return min(frames) if frames else None


def set_data_type(
    name: str, data_type: str, *, timeout: float = 3.0, shm_dir: Path | str | None = None
) -> tuple[str, str]:
    """Set ``DATA-TYP`` for a camera: through its daemon if one answers, else in the stream.

    The camera daemon keeps the value across crop and readout changes; writing
    the stream keyword directly works with any camera program.

    Parameters
    ----------
    name
        Camera / stream name.
    data_type
        One of the Subaru data types (case-insensitive).
    timeout
        Seconds to wait for the camera daemon.
    shm_dir
        Shm folder; default ``MILK_SHM_DIR`` resolution.

    Returns
    -------
    tuple of str
        ``(value set, "camera daemon" | "stream keyword")``.

    Raises
    ------
    ConfigError
        Not a Subaru data type.
    CommandError
        The camera daemon refused it.
    StreamError
        No camera daemon and no stream.
    """
    from vampires.camera.modes import parse_data_type
    from vampires.control.client import ControlClient
    from vampires.errors import DaemonNotRunning

    value = parse_data_type(data_type)
    with ControlClient("camera", name, timeout=timeout, shm_dir=shm_dir) as client:
        try:
            reply = client.call("set_data_type", data_type=value)
        except DaemonNotRunning:
            pass
        else:
            return str(reply.get("data_type", value)), "camera daemon"
    from vampires.stream import Stream

    with Stream.open(name, shm_dir=shm_dir) as stream:
        stream.keywords["DATA-TYP"] = (value, "Subaru data type")
    return value, "stream keyword"


def _prepare_one(
    name: str,
    *,
    frames: int,
    cubes: int,
    base: Path,
    data_type: str | None,
    timeout: float | None,
    shm_dir: ShmDir,
) -> PrepResult:
    import datetime as dt

    from vampires.control.client import ControlClient, daemon_alive
    from vampires.errors import VampiresError

    folder = str(base / dt.datetime.now(dt.UTC).strftime("%Y%m%d") / name)
    dtype_set: str | None = None
    via = ""
    try:
        if data_type is not None:
            dtype_set, via = set_data_type(name, data_type, shm_dir=_shm_path(shm_dir))
        if daemon_alive(KIND, name, shm_dir=_shm_path(shm_dir)):
            # Re-running preplog reconfigures a running logger (next cube).
            with ControlClient(KIND, name, timeout=5.0, shm_dir=_shm_path(shm_dir)) as client:
                client.request(
                    "set",
                    {
                        "cube_size": frames,
                        "cubes": cubes,
                        "root": str(base),
                        "folder": "",
                        "timeout": float(timeout or 0.0),
                    },
                )
            message = "logger already running: reconfigured (applies from the next cube)"
        else:
            pid = start_logger(
                name, cube_size=frames, cubes=cubes, root=base, timeout=timeout, shm_dir=shm_dir
            )
            message = f"logger started (pid {pid})"
    except VampiresError as exc:
        return PrepResult(
            name=name,
            ok=False,
            folder=folder,
            message=str(exc),
            data_type=dtype_set,
            data_type_via=via,
        )
    return PrepResult(
        name=name, ok=True, folder=folder, message=message, data_type=dtype_set, data_type_via=via
    )


def check_prep(
    *, frames: int, cubes: int, data_type: str | None, timeout: float | None = None
) -> None:
    """Check what :func:`prepare_loggers` would be given, changing nothing.

    Parameters
    ----------
    frames, cubes, data_type, timeout
        As for :func:`prepare_loggers`.

    Raises
    ------
    ConfigError
        Bad frames, cubes, timeout or data type.
    """
    from vampires.camera.modes import parse_data_type
    from vampires.fitslog.policy import CubePolicy

    CubePolicy(frames_per_cube=frames, cubes=cubes, timeout=timeout)  # validates
    if data_type is not None:
        parse_data_type(data_type)


def prepare_loggers(
    names: Sequence[str],
    *,
    frames: int,
    cubes: int = -1,
    base: Path | str,
    data_type: str | None = "OBJECT",
    timeout: float | None = None,
    shm_dir: ShmDir = None,
) -> list[PrepResult]:
    """Set DATA-TYP and start (or reconfigure) a logger per camera, concurrently.

    This is what ``vampires_preplog`` does once its questions are answered.

    Parameters
    ----------
    names
        Stream names.
    frames
        Frames per cube.
    cubes
        Cubes per run, -1 = until stopped.
    base
        Files go to ``<base>/<UT date>/<name>/``.
    data_type
        Subaru data type to set, None to leave it.
    timeout
        Seconds of silence closing a cube (None = adaptive).
    shm_dir
        Shm folder; default ``MILK_SHM_DIR`` resolution.

    Returns
    -------
    list of PrepResult
        One per camera, in order.

    Raises
    ------
    ConfigError
        Bad frames, cubes or data type (checked before anything starts).
    """
    from concurrent.futures import ThreadPoolExecutor

    check_prep(frames=frames, cubes=cubes, data_type=data_type, timeout=timeout)
    names = [validate_name(n) for n in names]
    root = Path(os.path.abspath(base))
    with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
        futures = [
            pool.submit(
                _prepare_one,
                n,
                frames=frames,
                cubes=cubes,
                base=root,
                data_type=data_type,
                timeout=timeout,
                shm_dir=shm_dir,
            )
            for n in names
        ]
        return [f.result() for f in futures]
