"""What every camera handle offers: a :class:`CameraStatus` and the :class:`CameraLike` API.

A local :class:`~vampires.camera.camera.Camera` and a
:class:`~vampires.camera.remote.RemoteCamera` (a camera daemon) both satisfy
:class:`CameraLike`, so code that drives "a camera" (the commands, the demo,
:class:`~vampires.camera.group.CameraGroup`) takes either.
"""

from __future__ import annotations

from typing import Any, Protocol

import attrs

from vampires.camera.keywords import BenchState, KeywordValue
from vampires.camera.modes import CropMode, ReadoutMode, parse_readout_mode

__all__ = ["CameraLike", "CameraStatus"]


@attrs.frozen(kw_only=True)
class CameraStatus:
    """A snapshot of a camera, as :meth:`Camera.status` returns it.

    Attributes
    ----------
    name
        Camera (and stream) name.
    backend
        Backend kind (``"simulated"`` ...).
    running
        Acquisition thread running.
    crop
        Crop really read.
    readout_mode
        Readout mode.
    tint
        Exposure [s].
    fps
        Frame rate [Hz] (``FRATE``).
    max_fps
        Highest frame rate of the crop and readout mode [Hz].
    measured_fps
        Measured frame rate [Hz] (``MFRATE``).
    external_trigger
        External trigger on.
    data_type
        ``DATA-TYP``.
    temperature
        Sensor temperature [K].
    frames
        Stream counter (``cnt0``) of the last frame.
    crop_generation
        ``_CROPGEN``.
    keywords
        User keywords.
    error
        Last acquisition error, or None.
    dropped
        Frames the backend dropped because the acquisition fell behind.
    """

    name: str
    backend: str
    running: bool
    crop: CropMode
    readout_mode: ReadoutMode
    tint: float
    fps: float
    max_fps: float
    measured_fps: float
    external_trigger: bool
    data_type: str
    temperature: float
    frames: int
    crop_generation: int
    keywords: dict[str, KeywordValue] = attrs.field(factory=dict)
    error: str | None = None
    dropped: int = 0

    def line(self) -> str:
        """One human line (for commands)."""
        state = "running" if self.running else "stopped"
        trig = "ext" if self.external_trigger else "int"
        return (
            f"{self.name}: {state} {self.crop.name} {self.crop.width}x{self.crop.height} "
            f"{self.readout_mode.value} tint={self.tint:.6g}s fps={self.fps:.2f} "
            f"(max {self.max_fps:.2f}, measured {self.measured_fps:.2f}) trig={trig} "
            f"{self.data_type} T={self.temperature:.1f}K frames={self.frames}"
        )

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict (inverse of :meth:`from_dict`)."""
        out = attrs.asdict(self, recurse=False)
        out["crop"] = self.crop.to_dict()
        out["readout_mode"] = self.readout_mode.value
        out["keywords"] = dict(self.keywords)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CameraStatus:
        """Rebuild from :meth:`to_dict` output."""
        fields = {k: data[k] for k in attrs.fields_dict(cls) if k in data}
        fields["crop"] = CropMode.from_dict(data["crop"])
        fields["readout_mode"] = parse_readout_mode(data["readout_mode"])
        return cls(**fields)


class CameraLike(Protocol):
    """The API shared by a local :class:`~vampires.camera.camera.Camera` and a daemon's.

    :class:`~vampires.camera.remote.RemoteCamera` talks to a camera daemon.

    Setters validate first and raise :class:`~vampires.errors.ConfigError`
    with nothing changed; camera failures raise
    :class:`~vampires.errors.CameraError`.
    """

    name: str

    def status(self) -> CameraStatus:
        """Return a snapshot of the camera."""
        ...

    @property
    def running(self) -> bool:
        """Acquisition running."""
        ...

    def start(self) -> None:
        """Start (or resume) acquisition."""
        ...

    def pause(self) -> None:
        """Pause acquisition; the stream file and settings stay, start() resumes."""
        ...

    def close(self) -> None:
        """Release the handle (a local camera stops; a daemon keeps running)."""
        ...

    @property
    def crop(self) -> CropMode:
        """Crop really read."""
        ...

    def set_crop(self, crop: str | CropMode) -> CropMode:
        """Change the crop."""
        ...

    @property
    def tint(self) -> float:
        """Exposure [s]."""
        ...

    def set_tint(self, tint: float) -> float:
        """Change the exposure [s]."""
        ...

    @property
    def fps(self) -> float:
        """Frame rate [Hz]."""
        ...

    @property
    def max_fps(self) -> float:
        """Highest frame rate of the crop and readout mode [Hz]."""
        ...

    @property
    def measured_fps(self) -> float:
        """Measured frame rate [Hz]."""
        ...

    def set_fps(self, fps: float) -> float:
        """Change the frame rate [Hz]."""
        ...

    @property
    def readout_mode(self) -> ReadoutMode:
        """Readout mode."""
        ...

    def set_readout_mode(self, mode: str | ReadoutMode) -> ReadoutMode:
        """Change the readout mode."""
        ...

    @property
    def external_trigger(self) -> bool:
        """External trigger on."""
        ...

    def set_external_trigger(self, enable: bool) -> bool:
        """Switch the external trigger."""
        ...

    def trigger(self) -> None:
        """Fire one software trigger."""
        ...

    @property
    def data_type(self) -> str:
        """``DATA-TYP``."""
        ...

    def set_data_type(self, data_type: str) -> str:
        """Change ``DATA-TYP``."""
        ...

    @property
    def keywords(self) -> dict[str, KeywordValue]:
        """User keywords."""
        ...

    def set_keyword(self, name: str, value: KeywordValue) -> None:
        """Set one user keyword."""
        ...

    @property
    def bench(self) -> BenchState:
        """Bench state (``OBS-MOD``, WCS rotation)."""
        ...

    def set_bench(self, bench: BenchState) -> None:
        """Replace the bench state."""
        ...

    @property
    def temperature(self) -> float:
        """Sensor temperature [K]."""
        ...
