"""The backend protocol: what a camera driver must do for :class:`~vampires.camera.camera.Camera`.

A backend owns the hardware (or the simulation) and nothing else: no stream,
no keywords, no threads the camera does not ask for. :class:`Camera` validates
every setting against the camera table before it reaches the backend, so a
backend may assume its arguments are valid for the camera it drives.

Life cycle, all calls from the camera's threads (never two at once)::

    backend.open(table)                       # once: connect to the device
    backend.configure(settings)               # while stopped: any setting
    backend.start()
    while running:
        timing = backend.wait_frame(timeout)  # None on timeout (no trigger yet)
        if timing is not None:
            backend.read_frame(view, counter=cnt0_of_this_frame)
    backend.configure(settings)               # while running: only tint, fps,
                                              # external_trigger may differ
    backend.stop()                            # then configure() for a new crop
    backend.close()                           # idempotent

Writing a driver (as :mod:`~vampires.camera.backends.dcam` for the ORCA-Quest
and :mod:`~vampires.camera.backends.genicam` for the Flea3 do): subclass
nothing, implement these methods, and run the conformance suite
:class:`vampires.testing.backend.BackendTests` against it:

- ``configure`` maps :class:`AcquisitionSettings` to device properties
  (subarray from ``crop`` -- already snapped to the alignment --, readout speed,
  exposure, trigger source). When ``exposure_sets_rate`` is true for the camera
  (ORCA-Quest) ``fps`` is informational; otherwise (Flea3) set it.
- ``wait_frame`` blocks until the next frame is complete (``dcamwait_start``
  on FRAMEREADY, an Aravis ``timeout_pop_buffer``), returning its acquisition time
  (device timestamp converted to unix seconds) and the device frame index.
- ``read_frame`` copies that frame's pixels into ``out``, which is the stream's
  shared-memory array (zero copy: lock the driver buffer and copy once, or
  attach ``out`` as the driver's buffer). ``counter`` is the stream counter the
  frame will carry; hardware ignores it (simulators use it).
- ``trigger`` fires one software trigger in external-trigger mode; a driver
  without software triggers raises :class:`~vampires.errors.CameraError`.
- Errors: translate driver errors into :class:`~vampires.errors.CameraError`
  (``raise CameraError(...) from exc``); never let a vendor exception escape.
- Optional: ``skipped`` (frames lost, shown as the camera's ``dropped``),
  ``error`` (why the device is not answering, shown as its ``error`` while
  the backend recovers by itself), ``keywords()`` (extra stream keywords,
  e.g. the DCAM cooler status), and a NaN :meth:`Backend.temperature` for a
  device without a sensor reading (``DET-TMP`` is then left alone).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, runtime_checkable

import attrs

from vampires.camera.modes import CropMode, ReadoutMode
from vampires.camera.table import CameraTable

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

__all__ = ["AcquisitionSettings", "Backend", "FrameTiming"]


@attrs.frozen(kw_only=True)
class AcquisitionSettings:
    """Everything the backend needs to acquire (validated by the camera).

    Attributes
    ----------
    crop
        The crop to read (already snapped to the sensor's alignment).
    readout
        Readout mode.
    tint
        Exposure time [s].
    fps
        Frame rate [Hz] in internal-trigger mode.
    external_trigger
        Frames only on triggers.
    """

    crop: CropMode
    readout: ReadoutMode
    tint: float
    fps: float
    external_trigger: bool = False

    def live_change_only(self, other: AcquisitionSettings) -> bool:
        """Tell whether going to ``other`` keeps crop and readout (no restart needed)."""
        return self.crop == other.crop and self.readout == other.readout


@attrs.frozen(kw_only=True)
class FrameTiming:
    """When a frame was acquired, as reported by the backend.

    Attributes
    ----------
    acquisition_time
        Acquisition time stamp [unix s] (``_MAQTIME``; for the simulator, the
        scheduled frame time, or the trigger time in external-trigger mode).
    index
        Backend frame number since :meth:`Backend.start` (0-based).
    """

    acquisition_time: float
    index: int


@runtime_checkable
class Backend(Protocol):
    """A camera driver (see the module docstring for the contract)."""

    @property
    def kind(self) -> str:
        """Short backend name for status lines (``"simulated"``, ``"dcam"`` ...)."""
        ...

    def open(self, table: CameraTable) -> None:
        """Connect to the device described by ``table``."""
        ...

    def configure(self, settings: AcquisitionSettings) -> None:
        """Apply settings (any while stopped; tint/fps/trigger while running)."""
        ...

    def start(self) -> None:
        """Start acquiring with the last configured settings."""
        ...

    def wait_frame(self, timeout: float) -> FrameTiming | None:
        """Block until the next frame is ready; None after ``timeout`` seconds."""
        ...

    def read_frame(self, out: NDArray[np.uint16], *, counter: int) -> None:
        """Copy the frame returned by the last :meth:`wait_frame` into ``out``."""
        ...

    def trigger(self) -> None:
        """Fire one software trigger (external-trigger mode)."""
        ...

    def temperature(self) -> float:
        """Sensor temperature [K]."""
        ...

    def stop(self) -> None:
        """Stop acquiring (idempotent)."""
        ...

    def close(self) -> None:
        """Release the device (idempotent)."""
        ...
