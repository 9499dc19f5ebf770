"""Hamamatsu ORCA-Quest (vcam1, vcam2) through DCAM-API, with pylablib's DCAM layer.

Needs Hamamatsu's DCAM-API for Linux (``libdcamapi.so``, with the CoaXPress
frame-grabber driver) and ``pip install 'vampires[dcam]'`` (pylablib's
``pylablib.devices.DCAM``; the ``pylablib-lightweight`` distribution, the same
code without Qt). pylablib only loads ``dcamapi.dll`` by name on Windows, so
the library is loaded here (``ctypes.CDLL("libdcamapi.so")``, or the path in
``$VAMPIRES_DCAMAPI``) and handed to pylablib; tests hand it a
:class:`~vampires.testing.fake_dcam.FakeDcamApi` the same way.

What is used, all through pylablib's ``DCAMCamera`` and its ``wlib`` wrappers:

- open by index (``dcam:1``) or by serial (``dcam:S/N: 000123`` or ``dcam:000123``,
  compared with ``DCAM_IDSTR_CAMERAID``);
- readout speed: FAST = 2 (standard scan), SLOW = 1 (ultra quiet); the
  exposure range of each comes from the ``EXPOSURE TIME`` property's limits;
- subarray: ``SUBARRAY HPOS/HSIZE/VPOS/VSIZE`` (multiples of 4, checked here
  before DCAM sees them, and read back);
- exposure: ``EXPOSURE TIME`` [s]; the frame rate follows from the exposure
  and ``TIMING READOUT TIME`` (internal trigger: ``1 / max(tint, readout)``);
- trigger: ``TRIGGER SOURCE`` internal (1) or external (2), with ``TRIGGER
  ACTIVE`` edge and ``TRIGGER POLARITY`` positive; ``trigger_source="software"``
  uses DCAM's software trigger (then :meth:`DcamBackend.trigger` fires);
- frames: a ring of ``buffers`` DCAM frames (``dcambuf_alloc``), each frame
  locked with ``dcambuf_lockframe`` and copied once, straight from DCAM's
  buffer into the stream's shared memory;
- acquisition time: the frame's DCAM timestamp (``_MAQTIME``);
  lost frames: gaps in DCAM's framestamp (also those overwritten in the ring
  by a late reader), counted in :attr:`DcamBackend.skipped`;
- ``SENSOR TEMPERATURE`` (``DET-TMP`` in kelvin), and ``SENSOR COOLER`` /
  ``SENSOR COOLER STATUS`` as keywords ``U_COOLER`` / ``U_COOLST``; the
  cooler is set to MAX at open (as camstack does).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import math
import os
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from vampires.camera.backends.base import AcquisitionSettings, FrameTiming
from vampires.camera.modes import ReadoutMode
from vampires.camera.table import CameraTable
from vampires.errors import CameraError

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["DcamBackend", "find_device", "load_dcamapi", "load_pylablib_dcam"]

logger = logging.getLogger(__name__)

_INSTALL_PYLABLIB = "pip install 'vampires[dcam]'"
_INSTALL_DCAMAPI = (
    "install Hamamatsu's DCAM-API for Linux and the frame-grabber driver "
    "(or set VAMPIRES_DCAMAPI to libdcamapi.so)"
)
_ZERO_KELVIN = 273.15
_SPEED = {ReadoutMode.FAST: 2, ReadoutMode.SLOW: 1}
_SOURCE = {"internal": 1, "external": 2, "software": 3}
_FRAMEREADY = 0x0002
_TIMEOUT, _ABORT, _LOSTFRAME = (c - (1 << 32) for c in (0x80000106, 0x80000102, 0x80000301))
_ALIGN = 4
_READOUT_TOLERANCE = 0.1  # the row model is +-10 % (vampires-practice 1.2)
_TIME_SANITY = 86400.0  # [s] DCAM timestamps further than this from now are re-based

#: The library pylablib was last initialised with (one per process).
_installed: list[Any] = []


def load_pylablib_dcam() -> Any:  # noqa: ANN401 - the pylablib.devices.DCAM module
    """Import pylablib's DCAM layer.

    Raises
    ------
    CameraError
        pylablib is not installed (one line: what to install).
    """
    try:
        from pylablib.devices import DCAM
    except ImportError as exc:
        msg = f"dcam backend: pylablib is not installed ({exc}); {_INSTALL_PYLABLIB}"
        raise CameraError(msg) from exc
    return DCAM


def load_dcamapi() -> ctypes.CDLL:
    """Load Hamamatsu's ``libdcamapi.so`` (``$VAMPIRES_DCAMAPI`` or the linker's path).

    Raises
    ------
    CameraError
        Library not found (one line: what to install).
    """
    import ctypes.util

    candidates = [os.environ.get("VAMPIRES_DCAMAPI", "")]
    candidates += ["libdcamapi.so", "libdcamapi.so.4", ctypes.util.find_library("dcamapi") or ""]
    errors = []
    for name in filter(None, candidates):
        try:
            return ctypes.CDLL(name)
        except OSError as exc:
            errors.append(str(exc).split(":")[-1].strip())
    why = "; ".join(dict.fromkeys(errors))
    msg = f"dcam backend: libdcamapi.so not found ({why}); {_INSTALL_DCAMAPI}"
    raise CameraError(msg)


def _install(library: Any) -> Any:  # noqa: ANN401
    """Initialise pylablib's DCAM wrappers with ``library`` (the real one or a fake)."""
    dcam = load_pylablib_dcam()
    from pylablib.devices.DCAM import dcamapi4_lib

    wlib = dcamapi4_lib.wlib
    if _installed and _installed[0] is library and wlib._initialized:
        return dcam
    if dcam.DCAM.libctl.opened:
        msg = (
            "dcam backend: another DCAM library is in use in this process; close its cameras first"
        )
        raise CameraError(msg)
    real_loader = dcamapi4_lib.load_lib

    class _Loader:  # pylablib looks the library up by a Windows DLL name: hand it ours
        par_error_message = real_loader.par_error_message

        @staticmethod
        def load_lib(*args: object, **kwargs: object) -> Any:  # noqa: ANN401
            return library

    wlib._initialized = False
    dcamapi4_lib.load_lib = _Loader
    try:
        wlib.initlib()
    finally:
        dcamapi4_lib.load_lib = real_loader
    _installed[:] = [library]
    return dcam


@contextlib.contextmanager
def _dcam_errors(what: str) -> Iterator[None]:
    """Translate pylablib / DCAM errors into CameraError."""
    try:
        yield
    except CameraError:
        raise
    except Exception as exc:
        from pylablib.core.devio.comm_backend import DeviceError

        if isinstance(exc, DeviceError | OSError | ValueError):
            msg = f"dcam: {what}: {exc}"
            raise CameraError(msg) from exc
        raise


def _serial_key(text: str) -> str:
    return text.upper().replace("S/N:", "").strip()


def find_device(device: str | None, *, library: Any = None) -> int:  # noqa: ANN401
    """Return the DCAM index of ``device`` (index or serial) without keeping it open.

    Raises
    ------
    CameraError
        pylablib or libdcamapi missing, no camera, or none matching (one line).
    """
    dcam = _install(library if library is not None else load_dcamapi())
    with _dcam_errors("counting cameras"):
        count = int(dcam.get_cameras_number())
    if count == 0:
        msg = "dcam: DCAM-API finds no camera (frame grabber driver loaded? camera powered?)"
        raise CameraError(msg)
    if device is None:
        return 0
    if device.isdigit() and int(device) < count and len(device) <= 3:
        return int(device)
    seen = []
    for index in range(count):
        try:
            with _dcam_errors(f"opening camera {index}"):
                cam = dcam.DCAMCamera(index)
        except CameraError as exc:
            seen.append(f"{index}: busy ({exc})")
            continue
        try:
            serial = cam.get_device_info().serial_number
        finally:
            cam.close()
        if _serial_key(serial) == _serial_key(device):
            return index
        seen.append(f"{index}: {serial}")
    what = "index or serial" if device.isdigit() else "serial"
    msg = f"dcam: no camera with {what} {device!r} (DCAM-API finds {', '.join(seen)})"
    raise CameraError(msg)


class DcamBackend:
    """ORCA-Quest backend through DCAM-API (see the module docstring).

    Parameters
    ----------
    device
        Camera index (``"1"``) or serial (``"S/N: 000123"``, ``"000123"``); None: index 0.
    library
        The DCAM-API library object: None loads ``libdcamapi.so``; tests pass
        a :class:`~vampires.testing.fake_dcam.FakeDcamApi`.
    buffers
        Frames in DCAM's ring buffer.
    trigger_source
        ``"external"`` (the trigger input, edge, positive; default) or
        ``"software"`` (then :meth:`trigger` fires) in external-trigger mode.
    cooler
        ``"MAX"`` (default, as camstack), ``"ON"``, ``"OFF"``, or None to leave it.
    """

    def __init__(
        self,
        device: str | None = None,
        *,
        library: Any = None,  # noqa: ANN401
        buffers: int = 64,
        trigger_source: str = "external",
        cooler: str | None = "MAX",
    ) -> None:
        if trigger_source not in ("external", "software"):
            msg = (
                "dcam backend: trigger_source must be external or software "
                f"(got {trigger_source!r})"
            )
            raise CameraError(msg)
        if cooler is not None and cooler not in ("MAX", "ON", "OFF"):
            msg = f"dcam backend: cooler must be MAX, ON, OFF or None (got {cooler!r})"
            raise CameraError(msg)
        if isinstance(buffers, bool) or buffers < 4:
            msg = f"dcam backend: buffers must be an integer >= 4 (got {buffers!r})"
            raise CameraError(msg)
        self.device = device
        self.buffers = buffers
        self.trigger_source = trigger_source
        self.cooler = cooler
        self._library = library
        self._dcam: Any = None
        self._cam: Any = None
        self._table: CameraTable | None = None
        self._settings: AcquisitionSettings | None = None
        self._running = False
        self._closed = False
        self._next = 0
        self._last_stamp: int | None = None
        self._frame: Any = None
        self._time_offset: float | None = None
        self.label = f"camera {device}" if device is not None else "camera 0"
        #: frames lost (gaps in DCAM's framestamp, ring overruns)
        self.skipped = 0
        #: DCAM's readout time of the configured subarray [s] (TIMING READOUT TIME)
        self.readout_time = math.nan

    # -- protocol --------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        """Backend name (``"dcam"``)."""
        return "dcam"

    def open(self, table: CameraTable) -> None:
        """Find and open the camera, set cooler and trigger polarity."""
        self._check_open()
        if self._cam is not None:
            return
        library = self._library if self._library is not None else load_dcamapi()
        index = find_device(self.device, library=library)
        self._dcam = _install(library)
        with _dcam_errors(f"opening camera {index}"):
            cam = self._dcam.DCAMCamera(index)
        self._cam = cam
        self._table = table
        with _dcam_errors("device info"):
            info = cam.get_device_info()
            width, height = cam.get_detector_size()
        self.label = f"{info.model} {info.serial_number}"
        if (width, height) != (table.sensor_width, table.sensor_height):
            cam.close()
            self._cam = None
            msg = (
                f"dcam {self.label}: sensor is {width}x{height}, table {table.name} says "
                f"{table.sensor_width}x{table.sensor_height}: wrong camera for {table.name}?"
            )
            raise CameraError(msg)
        with _dcam_errors("trigger and cooler set-up"):
            cam.set_attribute_value("TRIGGER ACTIVE", 1, error_on_missing=False)  # edge
            cam.set_attribute_value("TRIGGER POLARITY", 2, error_on_missing=False)  # positive
            if self.cooler is not None:
                cooler = {"OFF": 1, "ON": 2, "MAX": 4}[self.cooler]
                cam.set_attribute_value("SENSOR COOLER", cooler, error_on_missing=False)
        logger.info("dcam: opened %s (index %d)", self.label, index)

    def configure(self, settings: AcquisitionSettings) -> None:
        """Apply readout speed and subarray (stopped), exposure and trigger (any time)."""
        self._check_open()
        cam = self._require_cam()
        old = self._settings
        if self._running and old is not None and not old.live_change_only(settings):
            msg = f"dcam {self.label}: stop before changing crop or readout mode"
            raise CameraError(msg)
        if not self._running:
            self._apply_geometry(cam, settings)
        trigger_change = old is None or old.external_trigger != settings.external_trigger
        if trigger_change:
            restart = self._running
            if restart:
                self._stop_capture()
            source = self.trigger_source if settings.external_trigger else "internal"
            with _dcam_errors("TRIGGER SOURCE"):
                cam.set_attribute_value("TRIGGER SOURCE", _SOURCE[source])
            if restart:
                self._start_capture()
        self._apply_exposure(cam, settings)
        self._settings = settings

    def start(self) -> None:
        """Allocate DCAM's ring buffer and start capturing."""
        self._check_open()
        if self._settings is None:
            msg = f"dcam {self.label}: configure() before start()"
            raise CameraError(msg)
        if self._running:
            return
        self._start_capture()
        self._running = True

    def wait_frame(self, timeout: float) -> FrameTiming | None:
        """Wait for the next frame (DCAM FRAMEREADY); None after ``timeout``."""
        self._check_open()
        if not self._running:
            time.sleep(min(timeout, 0.05))
            return None
        cam = self._require_cam()
        from pylablib.devices.DCAM.dcamapi4_lib import DCAMLibError, wlib

        deadline = time.monotonic() + timeout
        while True:
            with _dcam_errors("transfer info"):
                _, count = cam.get_transfer_info()
            if count > self._next:
                break
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            try:
                wlib.dcamwait_start(cam.dcamwait.hwait, _FRAMEREADY, max(1, int(remaining * 1000)))
            except DCAMLibError as exc:
                if exc.code in (_TIMEOUT, _ABORT):
                    return None
                if exc.code != _LOSTFRAME:
                    msg = f"dcam {self.label}: waiting for a frame failed: {exc}"
                    raise CameraError(msg) from exc
        if count - self._next >= self.buffers:  # overwritten in the ring: skip to the oldest
            self._next = count - self.buffers + 1  # safe one (gap counted from framestamps)
        with _dcam_errors("lock frame"):
            frame = cam._read_buffer(self._next % self.buffers)
        self._count_gap(int(frame.framestamp))
        self._frame = frame
        index = self._next
        self._next += 1
        return FrameTiming(acquisition_time=self._unix_time(frame.timestamp), index=index)

    def read_frame(self, out: NDArray[np.uint16], *, counter: int) -> None:
        """Copy the locked DCAM frame into ``out`` (one copy)."""
        frame = self._frame
        if frame is None:
            msg = f"dcam {self.label}: read_frame() without a frame from wait_frame()"
            raise CameraError(msg)
        h, w = out.shape
        if (frame.height, frame.width) != (h, w):
            msg = f"dcam {self.label}: frame is {frame.width}x{frame.height}, stream {w}x{h}"
            raise CameraError(msg)
        row = abs(int(frame.rowbytes)) // 2
        raw = (ctypes.c_uint16 * (row * h)).from_address(frame.buf)
        view = np.ctypeslib.as_array(raw).reshape(h, row)[:, :w]
        np.copyto(out, view)
        self._frame = None

    def trigger(self) -> None:
        """Fire DCAM's software trigger (only with ``trigger_source="software"``)."""
        cam = self._require_cam()
        if self.trigger_source != "software":
            msg = (
                f"dcam {self.label}: external trigger comes from the trigger input; a software "
                "trigger needs DcamBackend(trigger_source='software')"
            )
            raise CameraError(msg)
        with _dcam_errors("software trigger"):
            cam.send_software_trigger()

    def temperature(self) -> float:
        """Sensor temperature [K] (``SENSOR TEMPERATURE``); NaN if unreadable."""
        self._check_open()
        cam = self._cam
        if cam is None:
            return math.nan
        try:
            with _dcam_errors("SENSOR TEMPERATURE"):
                value = cam.get_attribute_value("SENSOR TEMPERATURE", default=None)
        except CameraError:
            return math.nan
        return math.nan if value is None else float(value) + _ZERO_KELVIN

    def keywords(self) -> dict[str, tuple[str, str]]:
        """Cooler mode and status as stream keywords (``U_COOLER``, ``U_COOLST``)."""
        cam = self._cam
        if cam is None:
            return {}
        out: dict[str, tuple[str, str]] = {}
        with _dcam_errors("cooler"):
            mode = cam.get_attribute_value("SENSOR COOLER", enum_as_str=True, default=None)
            status = cam.get_attribute_value("SENSOR COOLER STATUS", enum_as_str=True, default=None)
        if mode is not None:
            out["U_COOLER"] = (str(mode)[:16], "Sensor cooler mode")
        if status is not None:
            out["U_COOLST"] = (str(status)[:16], "Sensor cooler status")
        return out

    def stop(self) -> None:
        """Stop capturing (idempotent); the ring buffer is kept."""
        if self._running:
            self._stop_capture()
        self._running = False
        self._frame = None

    def close(self) -> None:
        """Stop and close the camera (idempotent)."""
        if self._closed:
            return
        try:
            self.stop()
        finally:
            cam, self._cam = self._cam, None
            self._closed = True
            if cam is not None:
                with _dcam_errors("close"):
                    cam.close()

    # -- helpers --------------------------------------------------------------------------
    def _apply_geometry(self, cam: Any, settings: AcquisitionSettings) -> None:  # noqa: ANN401
        crop = settings.crop
        if not crop.is_aligned(_ALIGN):
            msg = (
                f"dcam {self.label}: crop {crop.name} {crop.width}x{crop.height} at "
                f"({crop.x0}, {crop.y0}): DCAM subarrays need origin and size in multiples "
                f"of {_ALIGN}"
            )
            raise CameraError(msg)
        with _dcam_errors(f"READOUT SPEED {settings.readout.value}"):
            cam.set_attribute_value("READOUT SPEED", _SPEED[settings.readout])
        with _dcam_errors(f"subarray {crop.name}"):
            roi = cam.set_roi(crop.x0, crop.x0 + crop.width, crop.y0, crop.y0 + crop.height)
        want = (crop.x0, crop.x0 + crop.width, crop.y0, crop.y0 + crop.height)
        if tuple(int(v) for v in roi[:4]) != want:
            msg = f"dcam {self.label}: camera set subarray {roi[:4]} instead of {want}"
            raise CameraError(msg)
        with _dcam_errors("TIMING READOUT TIME"):
            self.readout_time = float(cam.get_frame_readout_time())
        table = self._table
        if table is not None:  # the row model of the table vs the camera's own figure
            model = table.readout_time(crop, settings.readout)
            if abs(self.readout_time - model) > _READOUT_TOLERANCE * model:
                logger.warning(
                    "dcam %s: readout time of %s in %s is %.6g s, the table's row model says "
                    "%.6g s: correct [readout.%s] line_time in a site TOML",
                    self.label, crop.name, settings.readout.value, self.readout_time, model,
                    settings.readout.value,
                )  # fmt: skip

    def _apply_exposure(self, cam: Any, settings: AcquisitionSettings) -> None:  # noqa: ANN401
        with _dcam_errors("EXPOSURE TIME limits"):
            low, high = cam.get_attribute("EXPOSURE TIME").update_limits()
        if not low <= settings.tint <= high:
            msg = (
                f"dcam {self.label}: exposure {settings.tint:g} s outside {low:g}-{high:g} s "
                f"in {settings.readout.value} readout"
            )
            raise CameraError(msg)
        try:
            with _dcam_errors("EXPOSURE TIME"):
                cam.set_exposure(settings.tint)
        except CameraError:
            if not self._running:
                raise
            # a camera that refuses the change while capturing: stop, set, restart
            self._stop_capture()
            with _dcam_errors("EXPOSURE TIME"):
                cam.set_exposure(settings.tint)
            self._start_capture()

    def _start_capture(self) -> None:
        cam = self._require_cam()
        with _dcam_errors("start capture"):
            cam.setup_acquisition(mode="sequence", nframes=self.buffers)
            cam.start_acquisition()
        self._next = 0
        self._last_stamp = None
        self._frame = None

    def _stop_capture(self) -> None:
        cam = self._cam
        if cam is None:
            return
        with _dcam_errors("stop capture"):
            cam.stop_acquisition()
            from pylablib.devices.DCAM.dcamapi4_lib import wlib

            with contextlib.suppress(self._dcam.DCAMError):
                wlib.dcamwait_abort(cam.dcamwait.hwait)

    def _count_gap(self, stamp: int) -> None:
        last, self._last_stamp = self._last_stamp, stamp
        if last is not None and stamp > last + 1:
            self.skipped += stamp - last - 1

    def _unix_time(self, timestamp: Any) -> float:  # noqa: ANN401 - pylablib's (sec, usec) tuple
        when = float(timestamp[0]) + float(timestamp[1]) * 1e-6
        now = time.time()
        if self._time_offset is None:
            self._time_offset = now - when if abs(now - when) > _TIME_SANITY else 0.0
        return when + self._time_offset

    def _require_cam(self) -> Any:  # noqa: ANN401
        if self._cam is None:
            msg = f"dcam {self.label}: not open (open() first)"
            raise CameraError(msg)
        return self._cam

    def _check_open(self) -> None:
        if self._closed:
            msg = f"dcam {self.label}: used after close()"
            raise CameraError(msg)
