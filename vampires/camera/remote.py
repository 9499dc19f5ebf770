"""`RemoteCamera`: the handle on a camera daemon, with the API of a local camera.

Get one with :meth:`Camera.connect <vampires.camera.camera.Camera.connect>`.
Errors raised in the daemon come back as the same classes (the error table
below); a daemon that is not running raises a
:class:`~vampires.errors.CameraError` naming the fix.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Self

import attrs

from vampires._checks import ShmDir, check_bool
from vampires.camera.keywords import BenchState, KeywordValue
from vampires.camera.modes import CropMode, ReadoutMode, parse_readout_mode
from vampires.camera.status import CameraStatus
from vampires.errors import (
    CameraError,
    CameraTimeout,
    CommandError,
    ConfigError,
    ControlTimeout,
    DaemonNotRunning,
    VampiresError,
)

__all__ = [
    "CameraGroup",
    "CameraResult",
    "CameraStarted",
    "RemoteCamera",
    "camera_daemon_argv",
    "check_camera_options",
    "start_camera",
    "stop_camera",
    "stop_cameras",
]

#: Error classes a camera daemon's reply (``error_type``) is raised as again: a
#: refused keyword is a refused argument; the control plane's own refusals and
#: unexpected failures (not in this table) are raised as ConfigError.
_ERRORS: dict[str, type[Exception]] = {
    "ConfigError": ConfigError,
    "KeywordError": ConfigError,
    "CameraTimeout": CameraTimeout,
    "CameraError": CameraError,
}


class RemoteCamera:
    """Handle on a camera daemon, with the API of :class:`Camera`.

    Get one with :meth:`Camera.connect`. Errors are translated back: a
    refused argument raises :class:`~vampires.errors.ConfigError`, a camera
    failure :class:`~vampires.errors.CameraError`, a daemon that is not
    running (or died) :class:`~vampires.errors.CameraError` naming the fix.

    Parameters
    ----------
    name
        Camera name.
    timeout
        Seconds to wait for each reply (crop and readout changes get 4x).
    shm_dir
        Shm folder of the daemon.
    """

    def __init__(self, name: str, *, timeout: float = 5.0, shm_dir: ShmDir = None) -> None:
        from vampires.control import ControlClient

        self.name = name
        self.timeout = timeout
        self._shm_dir = shm_dir
        self._client = ControlClient("camera", name, timeout=timeout, shm_dir=shm_dir)

    def _not_running(self, why: str) -> CameraError:
        from vampires.camera.table import known_cameras

        known = known_cameras()
        if self.name in known:
            advice = f"start it with 'vampires camstart {self.name} --sim'"
        else:  # camstart would refuse it too: do not advise a command that fails
            advice = f"{self.name!r} is not a known camera (known: {', '.join(known)})"
        msg = f"camera {self.name}: no camera daemon is running ({why}); {advice}"
        return CameraError(msg)

    def _call(self, command: str, /, *, slow: bool = False, **args: Any) -> dict[str, Any]:  # noqa: ANN401
        from vampires.control import daemon_alive

        timeout = self.timeout * (4 if slow else 1)
        if not daemon_alive("camera", self.name, shm_dir=self._shm_dir):
            # cheap lock check: a killed daemon is reported at once, not after a timeout
            why = "no process holds its lock"
            raise self._not_running(why)
        try:
            return self._client.call(command, timeout=timeout, **args)
        except DaemonNotRunning as exc:
            raise self._not_running(str(exc)) from exc
        except ControlTimeout as exc:
            msg = (
                f"camera {self.name}: the camera daemon did not answer {command!r} in {timeout:g} s"
            )
            raise CameraTimeout(msg) from exc
        except CommandError as exc:
            cls = _ERRORS.get(exc.remote_type or "")
            text = exc.remote_message or str(exc)
            if cls is None:
                # schema errors from the control plane are bad arguments too
                msg = f"camera {self.name}: {text}"
                raise ConfigError(msg) from exc
            raise cls(text) from exc

    def ping(self) -> dict[str, Any]:
        """Check the daemon answers; return its ping reply."""
        return self._call("ping")

    def close(self) -> None:
        """Close the control socket (idempotent); the daemon keeps running."""
        self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def status(self) -> CameraStatus:
        """Return the daemon camera's :class:`CameraStatus`."""
        reply = self._call("status")
        return CameraStatus.from_dict(reply["status"])

    @property
    def crop(self) -> CropMode:
        """Crop really read."""
        return self.status().crop

    def set_crop(self, crop: str | CropMode) -> CropMode:
        """See :meth:`Camera.set_crop`."""
        if isinstance(crop, CropMode):
            reply = self._call("set_crop", slow=True, mode=crop.to_dict())
        else:
            reply = self._call("set_crop", slow=True, name=crop)
        return CropMode.from_dict(reply["crop"])

    @property
    def tint(self) -> float:
        """Exposure [s]."""
        return self.status().tint

    def set_tint(self, tint: float) -> float:
        """See :meth:`Camera.set_tint`."""
        return float(self._call("set_tint", tint=tint)["tint"])

    @property
    def fps(self) -> float:
        """Frame rate [Hz]."""
        return self.status().fps

    @property
    def max_fps(self) -> float:
        """Highest frame rate [Hz]."""
        return self.status().max_fps

    @property
    def measured_fps(self) -> float:
        """Measured frame rate [Hz]."""
        return self.status().measured_fps

    def set_fps(self, fps: float) -> float:
        """See :meth:`Camera.set_fps`."""
        return float(self._call("set_fps", fps=fps)["fps"])

    @property
    def readout_mode(self) -> ReadoutMode:
        """Readout mode."""
        return self.status().readout_mode

    def set_readout_mode(self, mode: str | ReadoutMode) -> ReadoutMode:
        """See :meth:`Camera.set_readout_mode`."""
        value = mode.value if isinstance(mode, ReadoutMode) else mode
        return parse_readout_mode(self._call("set_readout_mode", slow=True, mode=value)["mode"])

    @property
    def external_trigger(self) -> bool:
        """External trigger on."""
        return self.status().external_trigger

    def set_external_trigger(self, enable: bool) -> bool:
        """See :meth:`Camera.set_external_trigger`."""
        check_bool(enable, f"camera {self.name}: external trigger")
        return bool(self._call("set_external_trigger", enable=bool(enable))["enable"])

    def trigger(self) -> None:
        """Fire one software trigger."""
        self._call("trigger")

    @property
    def data_type(self) -> str:
        """``DATA-TYP``."""
        return self.status().data_type

    def set_data_type(self, data_type: str) -> str:
        """See :meth:`Camera.set_data_type`."""
        return str(self._call("set_data_type", data_type=data_type)["data_type"])

    @property
    def keywords(self) -> dict[str, KeywordValue]:
        """User keywords."""
        return self.status().keywords

    def set_keyword(self, name: str, value: KeywordValue) -> None:
        """See :meth:`Camera.set_keyword`."""
        self._call("set_keyword", name=name, value=value)

    @property
    def bench(self) -> BenchState:
        """Bench state of the daemon camera."""
        return BenchState(**self._call("bench")["bench"])

    def set_bench(self, bench: BenchState) -> None:
        """See :meth:`Camera.set_bench`."""
        self._call("set_bench", **attrs.asdict(bench))

    @property
    def temperature(self) -> float:
        """Sensor temperature [K]."""
        return self.status().temperature

    @property
    def running(self) -> bool:
        """Acquisition running in the daemon."""
        return self.status().running

    def start(self) -> None:
        """Resume acquisition in the daemon (after :meth:`pause`)."""
        self._call("start", slow=True)

    def pause(self) -> None:
        """Pause acquisition; the daemon keeps running and answering."""
        self._call("pause", slow=True)

    def stop(self) -> None:
        """Pause acquisition: the deprecated name of :meth:`pause` (shutdown() ends the daemon).

        .. deprecated:: issue 17
           Use :meth:`pause`.
        """
        warnings.warn(
            "RemoteCamera.stop() is deprecated: use pause() (shutdown() ends the daemon)",
            DeprecationWarning,
            stacklevel=2,
        )
        self.pause()

    def shutdown(self) -> None:
        """Ask the daemon to stop: camera paused and closed, daemon exits (``camstop``)."""
        self._call("shutdown")

    def __repr__(self) -> str:
        return f"vampires.RemoteCamera({self.name!r})"


# ----------------------------------------------------------------------------------- group
@attrs.frozen(kw_only=True)
class CameraResult:
    """What one camera of a :class:`CameraGroup` (or :func:`stop_cameras`) answered.

    Attributes
    ----------
    name
        Camera name.
    ok
        The camera did it.
    text
        What it answered (``"tint 0.002 s (250.00 Hz)"``), or ``"FAILED: <why>"``.
    """

    name: str
    ok: bool
    text: str

    def line(self) -> str:
        """One human line: ``"<camera>: <text>"``."""
        return f"{self.name}: {self.text}"


def _crop_text(crop: CropMode) -> str:
    return f"{crop.name} {crop.width}x{crop.height} at ({crop.x0}, {crop.y0})"


class CameraGroup:
    """Several camera daemons commanded together, concurrently, one result each.

    A camera that fails (refused value, daemon not running, no reply) gives
    a failed :class:`CameraResult`; the others still act.

    Parameters
    ----------
    names
        Camera names (``["vcam1", "vcam2"]``).
    timeout
        Seconds to wait for each reply.
    shm_dir
        Shm folder of the daemons; default ``$MILK_SHM_DIR``.

    Examples
    --------
    >>> results = CameraGroup(["vcam1", "vcam2"]).set_tint(2e-3)
    >>> for result in results:
    ...     print(result.line())
    """

    def __init__(
        self, names: Sequence[str], *, timeout: float = 5.0, shm_dir: ShmDir = None
    ) -> None:
        self.names = (names,) if isinstance(names, str) else tuple(names)
        self.timeout = timeout
        self._shm_dir = shm_dir

    def __repr__(self) -> str:
        return f"vampires.CameraGroup({list(self.names)!r})"

    def run(self, action: Callable[[RemoteCamera], str]) -> list[CameraResult]:
        """Run ``action`` on every camera concurrently.

        Parameters
        ----------
        action
            Called with a :class:`RemoteCamera`; returns the text of the
            result. A :class:`~vampires.errors.VampiresError` it raises marks
            that camera failed.

        Returns
        -------
        list of CameraResult
            In the order of :attr:`names`.
        """

        def one(name: str) -> CameraResult:
            try:
                with RemoteCamera(name, timeout=self.timeout, shm_dir=self._shm_dir) as camera:
                    return CameraResult(name=name, ok=True, text=action(camera))
            except VampiresError as exc:
                return CameraResult(name=name, ok=False, text=f"FAILED: {exc}")

        with ThreadPoolExecutor(max_workers=max(1, len(self.names))) as pool:
            return list(pool.map(one, self.names))

    def crop(self) -> list[CameraResult]:
        """Each camera's crop: ``"MBI 2240x1096 at (x0, y0)"``."""
        return self.run(lambda cam: _crop_text(cam.crop))

    def set_crop(self, crop: str) -> list[CameraResult]:
        """Change the crop (see :meth:`Camera.set_crop`)."""
        return self.run(lambda cam: f"crop {_crop_text(cam.set_crop(crop))}")

    def tint(self) -> list[CameraResult]:
        """Each camera's exposure."""
        return self.run(lambda cam: f"{cam.tint:.6g} s")

    def set_tint(self, tint: float) -> list[CameraResult]:
        """Set the exposure [s] (see :meth:`Camera.set_tint`)."""

        def go(cam: RemoteCamera) -> str:
            t = cam.set_tint(tint)
            return f"tint {t:.6g} s ({cam.fps:.2f} Hz)"

        return self.run(go)

    def fps(self) -> list[CameraResult]:
        """Frame rate, maximum and measured rate; a camera reporting an error fails."""

        def go(cam: RemoteCamera) -> str:
            st = cam.status()
            text = f"{st.fps:.2f} Hz (max {st.max_fps:.2f} Hz, measured {st.measured_fps:.2f} Hz)"
            if st.error:  # acquisition stopped, or a real camera not answering
                msg = f"{text}; {st.error}"
                raise CameraError(msg)
            return text

        return self.run(go)

    def set_fps(self, fps: float) -> list[CameraResult]:
        """Set the frame rate [Hz] (see :meth:`Camera.set_fps`)."""

        def go(cam: RemoteCamera) -> str:
            f = cam.set_fps(fps)
            return f"{f:.2f} Hz (tint {cam.tint:.6g} s)"

        return self.run(go)

    def readout_mode(self) -> list[CameraResult]:
        """Each camera's readout mode."""
        return self.run(lambda cam: cam.readout_mode.value)

    def set_readout_mode(self, mode: str | ReadoutMode) -> list[CameraResult]:
        """Set the readout mode (see :meth:`Camera.set_readout_mode`)."""

        def go(cam: RemoteCamera) -> str:
            done = cam.set_readout_mode(mode)
            return f"readout {done.value} ({cam.fps:.2f} Hz)"

        return self.run(go)

    def external_trigger(self) -> list[CameraResult]:
        """Each camera's trigger mode."""
        return self.run(
            lambda cam: f"external trigger {'enabled' if cam.external_trigger else 'disabled'}"
        )

    def set_external_trigger(self, enable: bool) -> list[CameraResult]:
        """Switch the external trigger (see :meth:`Camera.set_external_trigger`)."""

        def go(cam: RemoteCamera) -> str:
            on = cam.set_external_trigger(enable)
            return f"external trigger {'enabled' if on else 'disabled'}"

        return self.run(go)

    def set_data_type(self, data_type: str) -> list[CameraResult]:
        """Set ``DATA-TYP`` (see :meth:`Camera.set_data_type`)."""
        return self.run(lambda cam: f"DATA-TYP {cam.set_data_type(data_type)}")


# ------------------------------------------------------------------------- start and stop
#: ``start_camera`` options passed on to the daemon as ``--option VALUE``.
_FORWARD = ("mode", "readout", "tint", "fps", "trigger_stream", "data_type", "site", "backend")
#: ``start_camera`` options passed on as flags when true.
_FLAGS = ("sim", "external_trigger", "deterministic", "fresh")


@attrs.frozen(kw_only=True)
class CameraStarted:
    """A camera daemon :func:`start_camera` started.

    Attributes
    ----------
    name
        Camera name.
    pid
        Daemon process id.
    status
        The camera's status once it answered.
    log_path
        The daemon's log file.
    """

    name: str
    pid: int
    status: CameraStatus
    log_path: Path

    def line(self) -> str:
        """One human line: crop, readout, rate, data type and log file."""
        st = self.status
        crop = f"{st.crop.name} {st.crop.width}x{st.crop.height}"
        return (
            f"{self.name}: started (pid {self.pid}, {st.backend}) {crop} "
            f"{st.readout_mode.value} {st.fps:.2f} Hz {st.data_type}; log {self.log_path}"
        )


def check_camera_options(name: str, **options: Any) -> None:  # noqa: ANN401
    """Refuse what :func:`start_camera` can refuse before a process is started.

    Parameters
    ----------
    name
        Camera name.
    **options
        As for :func:`start_camera`.

    Raises
    ------
    ConfigError
        Unknown camera, backend not usable, or a refused setting.
    CameraError
        The backend's library or device is missing.
    """
    import logging

    from vampires.camera.backends.factory import check_backend, resolve_backend
    from vampires.camera.modes import parse_data_type
    from vampires.camera.table import load_camera_table
    from vampires.config import Config

    get = options.get
    spec = resolve_backend(name, Config.load(), backend=get("backend"), sim=bool(get("sim")))
    if spec.kind != "sim" and (get("deterministic") or get("trigger_stream") is not None):
        msg = f"--deterministic and --trigger-stream are simulator options (backend {spec})"
        raise ConfigError(msg)
    check_backend(spec)  # library installed, device seen: one line if not
    table_log = logging.getLogger("vampires.camera.table")
    level = table_log.level
    table_log.setLevel(logging.ERROR)  # table warnings (HALFARC grid) go to the daemon log
    try:
        table = load_camera_table(name, site=get("site"))
    finally:
        table_log.setLevel(level)
    mode, readout, fps = get("mode"), get("readout"), get("fps")
    if mode is not None:
        table.crop(mode)
    if readout is not None:
        table.readout(parse_readout_mode(readout))
    if get("tint") is not None:
        table.check_tint(get("tint"))
    if fps is not None:
        # the highest rate depends on the crop the camera comes back in: with
        # a mode check it fully here, otherwise against the fastest crop (the
        # lower limit and non-numbers are refused either way)
        ro = readout if readout is not None else "FAST"
        crops = [table.crop(mode)] if mode is not None else list(table.crops.values())
        fastest = max(crops, key=lambda c: table.max_fps(c, ro))
        table.check_fps(fps, fastest, ro)
    if get("data_type") is not None:
        parse_data_type(get("data_type"))


def camera_daemon_argv(name: str, **options: Any) -> list[str]:  # noqa: ANN401
    """Return the command line of a foreground camera daemon for ``name``.

    Parameters
    ----------
    name
        Camera name.
    **options
        As for :func:`start_camera` (None or False options are left out).

    Returns
    -------
    list of str
    """
    argv = [sys.executable, "-m", "vampires.camera.daemon", name]
    for key in _FORWARD:
        value = options.get(key)
        if value is not None:
            argv += [f"--{key.replace('_', '-')}", str(value)]
    argv += [f"--{key.replace('_', '-')}" for key in _FLAGS if options.get(key)]
    return argv


def start_camera(
    name: str,
    *,
    backend: str | None = None,
    sim: bool = False,
    mode: str | None = None,
    readout: str | None = None,
    tint: float | None = None,
    fps: float | None = None,
    external_trigger: bool = False,
    trigger_stream: str | None = None,
    deterministic: bool = False,
    data_type: str | None = None,
    site: str | None = None,
    fresh: bool = False,
    timeout: float = 20.0,
) -> CameraStarted:
    """Start a camera daemon (detached) and return once it answers.

    Parameters
    ----------
    name
        Camera name (``vcam1``, ``vcam2``, ``vpupcam``).
    backend
        ``sim``, ``dcam[:DEVICE]`` or ``genicam[:DEVICE]``; default: ``sim``
        if ``sim``, else the config's ``[backends]`` entry, else the simulator.
    sim
        Simulated backend.
    mode, readout, tint, fps, external_trigger, data_type
        Start-up settings (default: the last used; see :class:`Camera`).
    trigger_stream, deterministic
        Simulator options (shared trigger stream; frames with known pixels).
    site
        Site TOML overriding the camera table.
    fresh
        Ignore the saved settings.
    timeout
        Seconds to wait for the daemon to answer.

    Returns
    -------
    CameraStarted

    Raises
    ------
    ConfigError
        A refused option (checked before any process starts).
    DaemonAlreadyRunning
        A daemon already runs for ``name``.
    VampiresError
        The daemon exited during start-up (its log tail is in the message).
    """
    from vampires.control import spawn_daemon
    from vampires.control.spawn import default_log_path

    options: dict[str, Any] = {
        "backend": backend, "sim": sim, "mode": mode, "readout": readout, "tint": tint,
        "fps": fps, "external_trigger": external_trigger, "trigger_stream": trigger_stream,
        "deterministic": deterministic, "data_type": data_type, "site": site, "fresh": fresh,
    }  # fmt: skip
    check_camera_options(name, **options)
    argv = camera_daemon_argv(name, **options)
    pid = spawn_daemon(argv, kind="camera", name=name, timeout=timeout)
    with RemoteCamera(name) as cam:
        status = cam.status()
    return CameraStarted(
        name=name, pid=pid, status=status, log_path=default_log_path("camera", name)
    )


def stop_cameras(
    names: Sequence[str] | None = None, *, timeout: float = 10.0
) -> list[CameraResult]:
    """Stop camera daemons: each is asked to shut down, all at once, then awaited.

    The acquisition stops and the stream file stays. A camera whose daemon
    is not running gives ``"not running"`` (not a failure).

    Parameters
    ----------
    names
        Camera names; default every running camera daemon.
    timeout
        Seconds to wait for each daemon's reply and for the processes to exit.

    Returns
    -------
    list of CameraResult
        One per camera (``"stopped"``, ``"not running"`` or ``"FAILED: ..."``);
        empty when no name was given and none runs.
    """
    from vampires.control import daemon_alive, discover
    from vampires.control.spawn import pid_alive

    found = discover("camera")
    pids = {d.name: d.pid for d in found if d.pid is not None}
    names = list(names) if names else [d.name for d in found]
    result: dict[str, str] = {}
    for name in names:
        if not daemon_alive("camera", name):
            result[name] = "not running"
            continue
        try:
            with RemoteCamera(name, timeout=timeout) as cam:
                cam.shutdown()
        except VampiresError as exc:
            result[name] = f"FAILED: {exc}"
    deadline = time.monotonic() + timeout
    pending = [n for n in names if n not in result]

    def running(name: str) -> bool:
        # the socket closes before the process has exited: wait for the process
        pid = pids.get(name)
        return pid_alive(pid) if pid is not None else daemon_alive("camera", name)

    while pending and time.monotonic() < deadline:
        time.sleep(0.02)
        pending = [n for n in pending if running(n)]
    for name in names:
        if name not in result:
            alive = name in pending
            result[name] = f"FAILED: still running after {timeout:g} s" if alive else "stopped"
    return [
        CameraResult(name=n, ok=not result[n].startswith("FAILED"), text=result[n]) for n in names
    ]


def stop_camera(name: str, *, timeout: float = 10.0) -> CameraResult:
    """Stop one camera daemon (see :func:`stop_cameras`)."""
    return stop_cameras([name], timeout=timeout)[0]
