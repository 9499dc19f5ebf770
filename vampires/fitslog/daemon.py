"""The logger daemon: one :class:`~vampires.fitslog.logger.Logger` behind a control socket.

``vampires logger start vcam1 ...`` spawns ``vampires logger run vcam1 ...``,
which builds a :class:`LoggerDaemon` and serves it on
``ipc://$MILK_SHM_DIR/vampires/logger-vcam1.sock`` until ``kill`` or SIGTERM.

Commands (JSON, see :mod:`vampires.control.protocol`); every reply carries
``ok``, ``state`` and ``time`` (unix s when the change took effect):

=========  ===============================================  ==========================
command    arguments                                        effect
=========  ===============================================  ==========================
``on``     ``cubes`` (int, -1 = until stopped), optional    start saving
``off``    —                                                stop now, truncating the cube
``offc``   —                                                stop after the current cube
``next``   —                                                close the current cube now
``set``    ``cube_size``, ``cubes``, ``timeout`` (s, 0 =    applied at the next cube
           adaptive), ``root``, ``folder`` ("" = none),
           ``flush`` (s), ``sync`` (s, < 0 = at close)
``get``    —                                                the configuration
``status`` —                                                counters, current file, disk
``restart``—                                                re-create the logger (buffers)
``kill``   —                                                tear down, free buffers, exit
``ping``   —                                                built in
=========  ===============================================  ==========================

Every value is checked before anything changes: numbers against the
:class:`~vampires.fitslog.policy.CubePolicy` bounds (the policy's own
validation), folders like ``vampires logger start -d`` does (absolute,
created, writable).

A worker thread of the logger that dies (a bug, or an error nobody
foresaw) must not leave a daemon that answers but saves nothing. The daemon
checks its logger's threads every :data:`WATCH_PERIOD` seconds; when one died
it re-creates the logger with the same configuration, resumes saving if it
was saving, and reports the failure in ``status`` (``worker_failure``) and its
log. An operator mid-observation expects saving to go on, so recovering beats
exiting; but a failure that comes back at once would loop for ever, so after
:data:`MAX_RESTARTS` failures within :data:`RESTART_WINDOW` seconds the daemon
exits with the reason in its log (``vampires logger ls`` then shows it DEAD,
with the fix).
"""

from __future__ import annotations

import enum
import logging
import math
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import attrs

from vampires._checks import ShmDir
from vampires.control.protocol import Arg, Command
from vampires.control.server import DaemonServer
from vampires.errors import CommandError, ConfigError
from vampires.fitslog.policy import MAX_CUBES, MAX_FRAMES_PER_CUBE, MAX_TIMEOUT

if TYPE_CHECKING:
    from vampires.fitslog.policy import CubePolicy

__all__ = [
    "MAX_RESTARTS",
    "RESTART_WINDOW",
    "WATCH_PERIOD",
    "LoggerDaemon",
    "LoggerLike",
    "run_logger_daemon",
    "status_to_dict",
]

logger = logging.getLogger(__name__)

KIND = "logger"
#: Seconds between checks of the logger's worker threads.
WATCH_PERIOD = 0.5
#: A daemon whose logger threads die this many times within RESTART_WINDOW exits.
MAX_RESTARTS = 3
#: Seconds over which worker failures are counted.
RESTART_WINDOW = 600.0


class LoggerLike(Protocol):
    """What the daemon needs from :class:`vampires.fitslog.logger.Logger`.

    A ``workers_alive() -> bool`` method is optional (a logger without one is
    taken as alive), so it is not part of the protocol.
    """

    def start(self) -> float | None:
        """Start saving; return the unix time it took effect."""

    def pause(self, wait_for_cube: bool = False) -> float | None:
        """Pause saving now, or after the current cube; return the time of effect."""

    def next_cube(self) -> float | None:
        """Close the current cube now; return the time of effect."""

    def set_policy(self, policy: CubePolicy) -> None:
        """Use ``policy`` from the next cube on."""

    def status(self) -> Any:  # noqa: ANN401 - LoggerStatus (attrs value)
        """Return the current status."""

    def close(self, finish_cube: bool = True, timeout: float = 60.0) -> None:
        """Tear down (idempotent), truncating the cube unless ``finish_cube``."""


#: Builds a logger: (stream, policy, root, dirname) -> LoggerLike.
LoggerFactory = Callable[[str, "CubePolicy", Path | None, Path | None], LoggerLike]


#: Nice value of a logger daemon's reader thread.
_DAEMON_NICE = -10
#: Seconds ``on`` waits for the logger's buffers before it answers "preparing".
_START_WAIT = 3.0


def _default_factory(
    stream: str, policy: CubePolicy, root: Path | None, dirname: Path | None
) -> LoggerLike:
    from vampires.fitslog.logger import Logger

    # the reader above ordinary processes, the writer 5 below it (see Logger
    # "Latency"); without CAP_SYS_NICE the logger says so in the daemon log
    # `on` waits at most _START_WAIT s for the buffers (the client's timeout is 5 s);
    # the state is "preparing" until saving begins by itself
    return Logger(
        stream, policy, root=root, dirname=dirname, nice=_DAEMON_NICE, start_wait=_START_WAIT
    )


def _jsonable(value: object) -> object:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, enum.Enum):
        return _jsonable(value.value)
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_jsonable(v) for v in value]
    cls = type(value)
    if attrs.has(cls):
        return {f.name: _jsonable(getattr(value, f.name)) for f in attrs.fields(cls)}
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return _jsonable(item())
    return str(value)


def status_to_dict(status: object) -> dict[str, Any]:
    """Turn a ``LoggerStatus`` (or any attrs value) into a JSON-able dict.

    Parameters
    ----------
    status
        The logger's status value.

    Returns
    -------
    dict
        Paths as strings, enums as their values, NaN as None.
    """
    out = _jsonable(status)
    if isinstance(out, dict):
        return out
    return {"status": out}


def _state_name(status: object) -> str:
    if isinstance(status, Mapping):
        state = status.get("state", "unknown")
    else:
        state = getattr(status, "state", "unknown")
    if isinstance(state, enum.Enum):
        state = state.value
    return str(state)


def _disk_free(path: Path | None) -> int | None:
    probe = path
    while probe is not None:
        try:
            return shutil.disk_usage(probe).free
        except OSError:
            parent = probe.parent
            probe = None if parent == probe else parent
    return None


class LoggerDaemon:
    """One logger and its control commands.

    Parameters
    ----------
    stream
        Stream name (also the daemon name).
    policy
        Initial cube policy.
    root
        Files go to ``<root>/<UT date>/<stream>/`` (unless ``dirname``).
    dirname
        Exact folder for the files.
    factory
        Builds the logger; default :class:`vampires.fitslog.logger.Logger`
        (tests and demos may pass another).
    shm_dir
        Shm folder of the control socket.
    tcp
        Also answer on this ``tcp://host:port`` (another host); needs
        ``curve_dir`` (see :mod:`vampires.control.keys`).
    curve_dir
        CURVE key folder for ``tcp``.
    """

    def __init__(
        self,
        stream: str,
        policy: CubePolicy,
        *,
        root: Path | str | None = None,
        dirname: Path | str | None = None,
        factory: LoggerFactory | None = None,
        shm_dir: ShmDir = None,
        tcp: str | None = None,
        curve_dir: Path | str | None = None,
    ) -> None:
        if root is None and dirname is None:
            msg = f"logger {stream}: give a root folder or an exact folder (dirname)"
            raise ConfigError(msg)
        self.stream = stream
        self._policy = policy
        self._root = Path(root) if root is not None else None
        self._dirname = Path(dirname) if dirname is not None else None
        self._factory = factory if factory is not None else _default_factory
        self._lock = threading.RLock()
        self._started = time.time()
        self._logger: LoggerLike | None = None
        self._killed = False
        self._failures: list[float] = []  # monotonic times of worker-thread deaths
        self._failure: str | None = None  # the last one, for status
        self._thread_error: str | None = None  # last uncaught exception of a thread
        self._fatal: str | None = None
        self._server = DaemonServer(
            KIND,
            stream,
            self.commands(),
            shm_dir=Path(shm_dir) if shm_dir is not None else None,
            state=self.state,
            tcp=tcp,
            curve_dir=curve_dir,
        )

    # ------------------------------------------------------------------ helpers

    @property
    def server(self) -> DaemonServer:
        """The control server (open it, then :meth:`serve`)."""
        return self._server

    def _live(self) -> LoggerLike:
        if self._logger is None or self._killed:
            msg = f"logger {self.stream} was killed; start a new one with 'vampires logger start'"
            raise CommandError(msg)
        return self._logger

    def state(self) -> str:
        """Return the logger state (``"killed"`` after ``kill``)."""
        with self._lock:
            if self._logger is None or self._killed:
                return "killed"
            try:
                return _state_name(self._logger.status())
            except Exception:
                logger.exception("logger %s: status failed", self.stream)
                return "error"

    def _done(self, when: object = None, **extra: object) -> dict[str, Any]:
        # the logger reports when its reader thread applied the change
        effect = when if isinstance(when, float) and math.isfinite(when) else time.time()
        return {"time": effect, **extra}

    # ------------------------------------------------------------------ commands

    def commands(self) -> dict[str, Command]:
        """Return the command table served by the daemon."""
        return {
            "on": Command(
                func=self._on,
                args={
                    "cubes": Arg(
                        type="int",
                        minimum=-1,
                        maximum=MAX_CUBES,
                        help="cubes to write, -1 = until off",
                    )
                },
                help="start saving",
            ),
            "off": Command(func=self._off, help="stop saving now (the current cube is truncated)"),
            "offc": Command(func=self._offc, help="stop saving after the current cube"),
            "next": Command(func=self._next, help="close the current cube now, go on saving"),
            "set": Command(
                func=self._set,
                args={
                    "cube_size": Arg(
                        type="int", minimum=1, maximum=MAX_FRAMES_PER_CUBE, help="frames per cube"
                    ),
                    "cubes": Arg(
                        type="int",
                        minimum=-1,
                        maximum=MAX_CUBES,
                        help="cubes per run, -1 = until off",
                    ),
                    "timeout": Arg(
                        type="float",
                        minimum=0,
                        maximum=MAX_TIMEOUT,
                        help="s of silence, 0 = adaptive",
                    ),
                    "root": Arg(type="str", help="files go to <root>/<UT date>/<stream>/"),
                    "folder": Arg(type="str", help="exact folder ('' = use root)"),
                    "flush": Arg(type="float", help="s a frame may wait before it is on disk"),
                    "sync": Arg(type="float", help="s between fdatasyncs, < 0 = only at close"),
                },
                help="change the configuration (applied at the next cube)",
            ),
            "get": Command(func=self._get, help="the configuration"),
            "status": Command(func=self._status, help="counters, current file, free disk"),
            "restart": Command(func=self._restart, help="re-create the logger and its buffers"),
            "kill": Command(func=self._kill, help="tear down, free buffers and exit"),
        }

    def _on(self, args: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            log = self._live()
            cubes = args.get("cubes")
            if cubes is not None:
                if cubes == 0:
                    msg = "on: 'cubes' must be -1 (until off) or >= 1 (got 0)"
                    raise CommandError(msg)
                self._apply_policy(cubes=cubes)
            return self._done(log.start())

    def _off(self, args: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return self._done(self._live().pause(wait_for_cube=False))

    def _offc(self, args: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return self._done(self._live().pause(wait_for_cube=True))

    def _next(self, args: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return self._done(self._live().next_cube())

    def _evolve(self, **changes: Any) -> CubePolicy:  # noqa: ANN401 - CubePolicy fields
        """Return the policy with ``changes``, validated by the policy itself."""
        try:
            return attrs.evolve(self._policy, **changes)
        except (ConfigError, TypeError, ValueError) as exc:
            msg = f"set: {exc}"
            raise CommandError(msg) from exc

    def _apply_policy(self, **changes: Any) -> None:  # noqa: ANN401 - CubePolicy fields
        policy = self._evolve(**changes)
        self._live().set_policy(policy)
        self._policy = policy

    def _check_folder(self, folder: Path | None) -> None:
        from vampires.fitslog.names import check_folder

        if folder is None:
            return
        try:
            check_folder(folder, f"set: logger {self.stream}")
        except ConfigError as exc:
            raise CommandError(str(exc)) from exc

    def _set(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args:
            msg = "set: nothing to change; give cube_size, cubes, timeout, root or folder"
            raise CommandError(msg)
        with self._lock:
            self._live()
            changes: dict[str, object] = {}
            if "cube_size" in args:
                changes["frames_per_cube"] = args["cube_size"]
            if "cubes" in args:
                if args["cubes"] == 0:
                    msg = "set: 'cubes' must be -1 (until off) or >= 1 (got 0)"
                    raise CommandError(msg)
                changes["cubes"] = args["cubes"]
            if "timeout" in args:
                changes["timeout"] = args["timeout"] or None
            if "flush" in args:
                changes["flush_interval"] = args["flush"]
            if "sync" in args:
                changes["sync_interval"] = None if args["sync"] < 0 else args["sync"]
            root, dirname = self._root, self._dirname
            if "root" in args:
                root = Path(args["root"]) if args["root"] else None
            if "folder" in args:
                dirname = Path(args["folder"]) if args["folder"] else None
            if root is None and dirname is None:
                msg = "set: the logger needs a root or an exact folder; both would be empty"
                raise CommandError(msg)
            # check everything before changing anything
            if changes:
                self._evolve(**changes)
            new_folder = (root, dirname) != (self._root, self._dirname)
            if new_folder:
                self._check_folder(dirname if dirname is not None else root)
                self._set_folder(root, dirname)
            if changes:
                self._apply_policy(**changes)
            return self._done(None, **self._config())

    def _set_folder(self, root: Path | None, dirname: Path | None) -> None:
        log = self._live()
        setter = getattr(log, "set_folder", None)
        if callable(setter):
            setter(root=root, dirname=dirname)
        elif _state_name(log.status()) in {"idle", "stopped"}:
            # No live folder switch in this Logger: re-create it while idle.
            log.close(finish_cube=False)
            self._logger = None
            self._logger = self._factory(self.stream, self._policy, root, dirname)
        else:
            msg = "set: the folder can change only while not saving; run 'off' first"
            raise CommandError(msg)
        self._root, self._dirname = root, dirname

    def _config(self) -> dict[str, Any]:
        policy = self._policy
        return {
            "stream": self.stream,
            "cube_size": policy.frames_per_cube,
            "cubes": policy.cubes,
            "timeout": policy.timeout if policy.timeout is not None else 0.0,
            "root": str(self._root) if self._root is not None else "",
            "folder": str(self._dirname) if self._dirname is not None else "",
            "flush": policy.flush_interval,
            "sync": policy.sync_interval if policy.sync_interval is not None else -1.0,
        }

    def _get(self, args: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            return self._config()

    def _status(self, args: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            status = status_to_dict(self._live().status())
            folder = status.get("folder") or self._dirname or self._root
            return {
                **self._config(),
                "logger": status,
                "worker_failure": self._failure,
                "pid": os.getpid(),
                "uptime": time.time() - self._started,
                "tcp": self._server.tcp_endpoint,
                "disk_free": _disk_free(Path(str(folder))) if folder else None,
            }

    def _restart(self, args: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            old = self._live()
            old.close(finish_cube=False)
            self._logger = None
            self._logger = self._factory(self.stream, self._policy, self._root, self._dirname)
            return self._done()

    def _kill(self, args: dict[str, Any]) -> dict[str, Any]:
        # Stop saving now and reply; the truncated cube is written and the
        # buffers freed after the reply (serve() closes the logger), so a
        # large cube on a slow disk never makes the command time out.
        with self._lock:
            when = self._live().pause(wait_for_cube=False)
            self._killed = True
            self._server.request_stop()
            return self._done(when)

    # ------------------------------------------------------------------ lifecycle

    def close_logger(self) -> None:
        """Stop saving (truncating the cube) and free the logger (idempotent)."""
        with self._lock:
            if self._logger is not None:
                try:
                    self._logger.close(finish_cube=False)
                finally:
                    self._logger = None

    def open(self) -> None:
        """Take the control socket (refusing a second daemon), then build the logger.

        Raises
        ------
        DaemonAlreadyRunning
            A logger daemon already serves this stream.
        VampiresError
            The logger cannot be built (e.g. bad folder).
        """
        self._server.open()
        try:
            with self._lock:
                if self._logger is None:
                    self._logger = self._factory(
                        self.stream, self._policy, self._root, self._dirname
                    )
        except BaseException:
            self._server.close()
            raise

    @property
    def fatal(self) -> str | None:
        """Why the daemon stopped by itself (worker threads kept dying), else None."""
        return self._fatal

    def _thread_died(self, args: threading.ExceptHookArgs) -> None:
        name = args.thread.name if args.thread is not None else "a thread"
        self._thread_error = f"{name}: {args.exc_type.__name__}: {args.exc_value}"

    def check_workers(self) -> None:
        """Re-create the logger if one of its worker threads died (see the module doc).

        Called every :data:`WATCH_PERIOD` seconds while serving; after
        :data:`MAX_RESTARTS` failures within :data:`RESTART_WINDOW` seconds it
        stops serving instead, with the reason in :attr:`fatal` and the log.
        """
        with self._lock:
            log = self._logger
            if log is None or self._killed:
                return
            alive = getattr(log, "workers_alive", None)
            if not callable(alive) or alive():
                return
            what = self._thread_error or "a worker thread stopped (traceback in this log)"
            self._thread_error = None
            now = time.monotonic()
            self._failures = [t for t in self._failures if now - t < RESTART_WINDOW] + [now]
            if len(self._failures) >= MAX_RESTARTS:
                self._fatal = (
                    f"logger {self.stream}: worker thread died {len(self._failures)} times "
                    f"within {RESTART_WINDOW:g} s (last: {what}); the daemon exits. Start it "
                    "again with vampires_preplog; report the error if it comes back"
                )
                logger.critical("%s", self._fatal)
                self._killed = True
                self._server.request_stop()
                return
            saving = self.state() in {"saving", "finishing"}
            logger.error(
                "logger %s: worker thread died (%s); re-creating the logger%s",
                self.stream,
                what,
                " and resuming saving" if saving else "",
            )
            try:
                log.close(finish_cube=False, timeout=10.0)
            except Exception:
                logger.exception("logger %s: closing the broken logger failed", self.stream)
            self._logger = None
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
            self._failure = f"{stamp} UT: worker thread died ({what}); logger re-created" + (
                ", saving resumed" if saving else ""
            )
            self._logger = self._factory(self.stream, self._policy, self._root, self._dirname)
            if saving:
                self._logger.start()

    def _watch(self, done: threading.Event) -> None:
        while not done.wait(WATCH_PERIOD):
            try:
                self.check_workers()
            except Exception as exc:
                self._fatal = f"logger {self.stream}: cannot re-create the logger: {exc}"
                logger.exception("%s", self._fatal)
                self._killed = True
                self._server.request_stop()
                return

    def serve(self, stop: threading.Event | None = None) -> None:
        """Open, serve commands until ``kill`` or ``stop``, then free everything.

        Parameters
        ----------
        stop
            Set it (e.g. from a SIGTERM handler) to stop.
        """
        # hand the GIL back to the reader thread within 1 ms (default 5 ms is
        # two frame periods at 400 fps)
        sys.setswitchinterval(0.001)
        self.open()
        previous_hook = threading.excepthook

        def hook(args: threading.ExceptHookArgs) -> None:
            self._thread_died(args)
            previous_hook(args)

        threading.excepthook = hook
        done = threading.Event()
        watcher = threading.Thread(
            target=self._watch, args=(done,), name=f"logger-{self.stream}-watch", daemon=True
        )
        watcher.start()
        try:
            self._server.serve(stop)
        finally:
            done.set()
            watcher.join(5.0)
            threading.excepthook = previous_hook
            try:
                self.close_logger()
            finally:
                self._server.close()


def run_logger_daemon(
    stream: str,
    *,
    cube_size: int,
    cubes: int = -1,
    root: Path | str | None = None,
    dirname: Path | str | None = None,
    timeout: float | None = None,
    flush: float | None = None,
    sync: float | None = None,
    tcp: str | None = None,
    curve_dir: Path | str | None = None,
) -> int:
    """Run a logger daemon in the foreground (``vampires logger run``) until ``kill`` or a signal.

    Parameters
    ----------
    stream, cube_size, cubes, root, dirname, timeout, tcp, curve_dir
        As for :func:`vampires.fitslog.control.start_logger`; ``root`` defaults
        to the config's ``data_root`` unless ``dirname`` is given.
    flush
        Seconds a frame may wait in RAM (default 1).
    sync
        Seconds between fdatasyncs; None or 0 = every flush, < 0 = only at close.

    Returns
    -------
    int
        0 after a clean exit, 1 if the daemon ended on an error (logged).

    Raises
    ------
    ConfigError
        A bad setting (nothing started).
    """
    from vampires.config import Config
    from vampires.control.entry import run_daemon, setup_daemon_logging
    from vampires.fitslog.policy import CubePolicy

    setup_daemon_logging()
    if not root and not dirname:
        root = str(Config.load().data_root)
    policy = CubePolicy(
        frames_per_cube=cube_size,
        cubes=cubes,
        timeout=timeout,
        flush_interval=1.0 if flush is None else flush,
        sync_interval=None if sync is not None and sync < 0 else (sync or 0.0),
    )
    daemon = LoggerDaemon(stream, policy, root=root, dirname=dirname, tcp=tcp, curve_dir=curve_dir)

    def serve(stop: threading.Event) -> int:
        daemon.serve(stop)
        if daemon.fatal is not None:
            logger.error("%s", daemon.fatal)
            return 1
        logger.info("logger %s: exited cleanly", stream)
        return 0

    return run_daemon(f"logger {stream}", serve)
