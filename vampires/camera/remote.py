"""`RemoteCamera`: the handle on a camera daemon, with the API of a local camera.

Get one with :meth:`Camera.connect <vampires.camera.camera.Camera.connect>`.
Errors raised in the daemon come back as the same classes (the error table
below); a daemon that is not running raises a
:class:`~vampires.errors.CameraError` naming the fix.
"""

from __future__ import annotations

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
)

__all__ = ["RemoteCamera"]

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
            text = str(exc)
            prefix = f"camera {self.name}: "
            text = text[len(prefix) :] if text.startswith(prefix) else text
            kind, sep, rest = text.partition(": ")
            cls = _ERRORS.get(kind) if sep else None
            if cls is None:
                # schema errors from the control plane are bad arguments too
                msg = f"camera {self.name}: {text}"
                raise ConfigError(msg) from exc
            raise cls(rest) from exc

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
        """Resume acquisition in the daemon (after :meth:`stop`)."""
        self._call("start", slow=True)

    def stop(self) -> None:
        """Pause acquisition; the daemon keeps running and answering."""
        self._call("stop", slow=True)

    def shutdown(self) -> None:
        """Ask the daemon to stop the camera and exit."""
        self._call("shutdown")

    def __repr__(self) -> str:
        return f"vampires.RemoteCamera({self.name!r})"
