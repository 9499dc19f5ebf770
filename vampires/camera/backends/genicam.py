"""GenICam cameras (USB3 Vision, GigE Vision) through Aravis 0.8: the Flea3 pupil camera.

Needs Aravis's GObject-introspection typelib and PyGObject::

    apt install gir1.2-aravis-0.8 aravis-tools      # Debian / Ubuntu
    pip install 'vampires[genicam]'                  # PyGObject

Standard GenICam features are used, so any compliant camera works:
``Width``/``Height``/``OffsetX``/``OffsetY`` (the crop), ``ExposureTime``,
``AcquisitionFrameRate``, ``PixelFormat`` (Mono16, or Mono8 widened to
uint16), ``TriggerMode``/``TriggerSource`` (external trigger on ``Line0`` by
default, rising edge). Aravis's helpers map these names to the camera's own
(``ExposureTimeAbs`` on older GigE cameras ...).

Frames are copied once: the buffers of Aravis's stream pool are numpy arrays
allocated here (Aravis writes into them), and :meth:`GenicamBackend.read_frame`
copies the popped buffer into the stream's shared memory, then gives it back
to the pool.

Acquisition time is the host time at which Aravis completed the buffer
(``arv_buffer_get_system_timestamp``), lost frames are counted from gaps in
the device's frame ids (GigE block ids) and from incomplete buffers
(:attr:`GenicamBackend.skipped`).

A camera that stops answering (cable pulled, power lost, fake camera killed)
is reported in :attr:`GenicamBackend.error` (the camera's status shows it) and
re-opened automatically as soon as it is seen again, with the same settings;
meanwhile :meth:`GenicamBackend.wait_frame` returns None, so the camera
daemon stays alive and keeps answering.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from typing import TYPE_CHECKING, Any

import numpy as np

from vampires.camera.backends.base import AcquisitionSettings, FrameTiming
from vampires.camera.table import CameraTable
from vampires.errors import CameraError

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["GenicamBackend", "find_device", "list_devices", "load_aravis"]

logger = logging.getLogger(__name__)

_INSTALL = (
    "install Aravis 0.8 and PyGObject: 'apt install gir1.2-aravis-0.8' "
    "and \"pip install 'vampires[genicam]'\""
)
_STALL = 3.0  # [s] no frame for this long in free run: check the device answers
_RETRY = 1.0  # [s] between attempts to re-open a lost device
_ZERO_KELVIN = 273.15


def load_aravis() -> Any:  # noqa: ANN401 - a GObject-introspection module
    """Import Aravis 0.8 through GObject introspection.

    Returns
    -------
    module
        ``gi.repository.Aravis``.

    Raises
    ------
    CameraError
        PyGObject or the Aravis 0.8 typelib is missing (one line: what to install).
    """
    try:
        import gi
    except ImportError as exc:
        msg = f"genicam backend: PyGObject is not installed; {_INSTALL}"
        raise CameraError(msg) from exc
    try:
        gi.require_version("Aravis", "0.8")
        from gi.repository import Aravis
    except (ValueError, ImportError) as exc:
        msg = f"genicam backend: the Aravis 0.8 typelib is not installed ({exc}); {_INSTALL}"
        raise CameraError(msg) from exc
    return Aravis


def list_devices() -> list[dict[str, str]]:
    """List the GenICam cameras Aravis sees (id, serial, address, protocol, model).

    Raises
    ------
    CameraError
        Aravis is not installed.
    """
    aravis = load_aravis()
    aravis.update_device_list()
    return [
        {
            "id": aravis.get_device_id(i) or "",
            "serial": aravis.get_device_serial_nbr(i) or "",
            "address": aravis.get_device_address(i) or "",
            "protocol": aravis.get_device_protocol(i) or "",
            "model": aravis.get_device_model(i) or "",
        }
        for i in range(aravis.get_n_devices())
    ]


def find_device(device: str | None) -> dict[str, str]:
    """Find a camera the way :class:`GenicamBackend` does, without opening it.

    Raises
    ------
    CameraError
        Aravis missing, or no camera matches (the message lists those seen).
    """
    devices = list_devices()
    dev = _pick(devices, device)
    if dev is None:
        seen = ", ".join(f"{d['id']} ({d['address']})" for d in devices) or "none"
        msg = (
            f"genicam: no camera matches {device or 'any'} (cameras seen: {seen}); "
            "check cable, power and permissions "
            "(arv-tool-0.8, in aravis-tools-cli, lists what Aravis sees)"
        )
        raise CameraError(msg)
    return dev


def _pick(devices: list[dict[str, str]], wanted: str | None) -> dict[str, str] | None:
    if not devices:
        return None
    if wanted is None:
        return devices[0]
    for dev in devices:
        if wanted in (dev["id"], dev["serial"], dev["address"]):
            return dev
    if wanted.isdigit() and int(wanted) < len(devices):
        return devices[int(wanted)]
    return None


class GenicamBackend:
    """GenICam camera backend through Aravis 0.8 (see the module docstring).

    Parameters
    ----------
    device
        Aravis device id, serial number, address or index; None: the first camera.
    pixel_format
        ``"Mono16"`` (default) or ``"Mono8"``.
    trigger_source
        GenICam ``TriggerSource`` in external-trigger mode: ``"Line0"`` (the
        trigger input, default) or ``"Software"`` (then :meth:`trigger` fires).
    buffers
        Buffers in Aravis's stream pool.
    gain
        Analog gain set when the device opens: a number [dB], ``"max"`` (what
        camstack does for the Flea3), or None to leave the camera's.
    """

    def __init__(
        self,
        device: str | None = None,
        *,
        pixel_format: str = "Mono16",
        trigger_source: str = "Line0",
        buffers: int = 16,
        gain: float | str | None = None,
    ) -> None:
        if pixel_format not in ("Mono16", "Mono8"):
            msg = f"genicam backend: pixel_format must be Mono16 or Mono8 (got {pixel_format!r})"
            raise CameraError(msg)
        if buffers < 2:
            msg = f"genicam backend: buffers must be >= 2 (got {buffers})"
            raise CameraError(msg)
        self.device = device
        self.pixel_format = pixel_format
        self.trigger_source = trigger_source
        self.buffers = buffers
        if not (gain is None or gain == "max" or isinstance(gain, int | float)):
            msg = f"genicam backend: gain must be a number of dB, 'max' or None (got {gain!r})"
            raise CameraError(msg)
        self.gain = gain
        self._aravis: Any = None
        self._cam: Any = None
        self._dev: Any = None
        self._stream: Any = None
        self._pool: dict[int, NDArray[np.uint8]] = {}
        self._buffers: list[Any] = []
        self._table: CameraTable | None = None
        self._settings: AcquisitionSettings | None = None
        self._applied: AcquisitionSettings | None = None
        self._running = False
        self._closed = False
        self._current: Any = None
        self._current_data: NDArray[np.uint8] | None = None
        self._index = 0
        self._last_id: int | None = None
        self._last_frame = 0.0
        self._last_probe = 0.0
        self._last_retry = 0.0
        self._lost = threading.Event()
        #: device label for messages (id once opened)
        self.label = device or "first GenICam camera"
        #: frames lost (frame-id gaps, incomplete buffers)
        self.skipped = 0
        #: why the device is not answering, or None
        self.error: str | None = None

    # -- protocol --------------------------------------------------------------------
    @property
    def kind(self) -> str:
        """Backend name (``"genicam"``)."""
        return "genicam"

    def open(self, table: CameraTable) -> None:
        """Find and open the device (``device`` or the first camera Aravis lists)."""
        self._check_open()
        self._table = table
        self._connect()

    def configure(self, settings: AcquisitionSettings) -> None:
        """Apply crop and pixel format (stopped), exposure, frame rate and trigger."""
        self._check_open()
        old = self._settings
        if self._running and old is not None and not old.live_change_only(settings):
            msg = f"genicam {self.label}: stop before changing crop or readout mode"
            raise CameraError(msg)
        if self._cam is None:
            if self._running:
                self._settings = settings  # applied when the device is back
                return
            self._connect()
        self._apply(settings, full=not self._running)
        self._settings = settings

    def start(self) -> None:
        """Allocate the buffer pool and start acquiring."""
        self._check_open()
        if self._settings is None:
            msg = f"genicam {self.label}: configure() before start()"
            raise CameraError(msg)
        if self._running:
            return
        if self._cam is None:
            self._connect()
            self._apply(self._settings, full=True)
        self._start_acquisition()
        self._running = True

    def wait_frame(self, timeout: float) -> FrameTiming | None:
        """Pop the next complete buffer; None after ``timeout`` (or while the device is lost)."""
        self._check_open()
        if not self._running or self._stream is None:
            if self._running and self._cam is None:
                self._try_reopen(timeout)
                return None
            time.sleep(min(timeout, 0.05))
            return None
        self._release_current()
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            buf = self._stream.timeout_pop_buffer(max(0, int(remaining * 1e6)))
            if buf is None:
                self._check_alive()
                return None
            status = buf.get_status()
            if status != self._aravis.BufferStatus.SUCCESS:
                self.skipped += 1
                self._stream.push_buffer(buf)
                if time.monotonic() >= deadline:
                    return None
                continue
            self._count_gap(int(buf.get_frame_id()))
            self._current = buf
            self._current_data = self._pool.get(hash(buf))
            self._last_frame = time.monotonic()
            index = self._index
            self._index += 1
            return FrameTiming(acquisition_time=buf.get_system_timestamp() * 1e-9, index=index)

    def read_frame(self, out: NDArray[np.uint16], *, counter: int) -> None:
        """Copy the last popped buffer into ``out`` (one copy), then recycle the buffer."""
        buf, data = self._current, self._current_data
        if buf is None:
            msg = f"genicam {self.label}: read_frame() without a frame from wait_frame()"
            raise CameraError(msg)
        h, w = out.shape
        if buf.get_image_width() != w or buf.get_image_height() != h:
            msg = (
                f"genicam {self.label}: frame is {buf.get_image_width()}x"
                f"{buf.get_image_height()}, stream expects {w}x{h}"
            )
            raise CameraError(msg)
        # a buffer not from our pool (should not happen) is read through Aravis
        raw = np.frombuffer(buf.get_data(), dtype=np.uint8) if data is None else data
        if self.pixel_format == "Mono16":
            np.copyto(out, raw[: 2 * w * h].view(np.uint16).reshape(h, w))
        else:
            np.copyto(out, raw[: w * h].reshape(h, w), casting="unsafe")
        self._release_current()

    def trigger(self) -> None:
        """Fire one software trigger (only with ``trigger_source="Software"``)."""
        self._check_open()
        if self.trigger_source != "Software":
            msg = (
                f"genicam {self.label}: external trigger comes from {self.trigger_source}; "
                "a software trigger needs GenicamBackend(trigger_source='Software')"
            )
            raise CameraError(msg)
        cam = self._require_cam()
        self._gcall("software trigger", cam.software_trigger)

    def temperature(self) -> float:
        """Sensor temperature [K] (``DeviceTemperature``), NaN if the camera has none."""
        self._check_open()
        dev = self._dev
        if dev is None:
            return math.nan
        try:
            if dev.get_feature("DeviceTemperature") is None:
                return math.nan
            return float(dev.get_float_feature_value("DeviceTemperature")) + _ZERO_KELVIN
        except Exception:  # noqa: BLE001 - GLib.Error: no reading this time
            return math.nan

    def stop(self) -> None:
        """Stop acquiring and drop the buffer pool (idempotent)."""
        self._running = False
        self._release_current()
        if self._cam is not None and self._stream is not None and not self._lost.is_set():
            try:
                self._cam.stop_acquisition()
            except Exception as exc:  # noqa: BLE001 - device gone: nothing to stop
                logger.warning("genicam %s: stop_acquisition failed: %s", self.label, exc)
        self._stream = None
        self._clear_pool()

    def close(self) -> None:
        """Stop and release the device (idempotent)."""
        if self._closed:
            return
        self.stop()
        self._disconnect()
        self._closed = True

    # -- device ----------------------------------------------------------------------
    def _connect(self) -> None:
        aravis = load_aravis()
        self._aravis = aravis
        dev = find_device(self.device)
        try:
            cam = aravis.Camera.new(dev["id"])
        except Exception as exc:
            msg = f"genicam: cannot open {dev['id']} at {dev['address']}: {exc}"
            raise CameraError(msg) from exc
        self._cam = cam
        self._dev = cam.get_device()
        self.label = dev["id"]
        self._lost.clear()
        self.error = None
        self._dev.connect("control-lost", self._on_control_lost)
        self._applied = None
        if self.gain is not None:
            low, high = self._gcall("gain bounds", cam.get_gain_bounds)
            value = high if self.gain == "max" else float(self.gain)
            if not low <= value <= high:
                msg = f"genicam {self.label}: gain {value:g} dB outside {low:g}-{high:g} dB"
                raise CameraError(msg)
            self._gcall("Gain", cam.set_gain, value)
        logger.info("genicam: opened %s (%s, %s)", dev["id"], dev["model"], dev["address"])

    def _disconnect(self) -> None:
        self._stream = None
        self._clear_pool()
        self._cam = None
        self._dev = None

    def _on_control_lost(self, device: object) -> None:  # Aravis heartbeat thread
        self._lost.set()

    def _gcall(self, what: str, func: Any, *args: Any) -> Any:  # noqa: ANN401
        try:
            return func(*args)
        except Exception as exc:  # GLib.Error from Aravis
            msg = f"genicam {self.label}: {what} failed: {exc}"
            raise CameraError(msg) from exc

    def _require_cam(self) -> Any:  # noqa: ANN401
        if self._cam is None:
            msg = f"genicam {self.label}: device not open ({self.error or 'open() first'})"
            raise CameraError(msg)
        return self._cam

    def _apply(self, settings: AcquisitionSettings, *, full: bool) -> None:
        cam = self._require_cam()
        crop = settings.crop
        if full:
            width, height = self._gcall("sensor size", cam.get_sensor_size)
            if crop.x0 + crop.width > width or crop.y0 + crop.height > height:
                msg = (
                    f"genicam {self.label}: crop {crop.name} {crop.width}x{crop.height} at "
                    f"({crop.x0}, {crop.y0}) does not fit the {width}x{height} sensor"
                )
                raise CameraError(msg)
            self._gcall(
                f"PixelFormat {self.pixel_format}",
                cam.set_pixel_format_from_string,
                self.pixel_format,
            )
            self._gcall("region", cam.set_region, crop.x0, crop.y0, crop.width, crop.height)
            region = tuple(self._gcall("region", cam.get_region))
            if region != (crop.x0, crop.y0, crop.width, crop.height):
                msg = (
                    f"genicam {self.label}: camera changed crop {crop.name} to "
                    f"{region[2]}x{region[3]} at ({region[0]}, {region[1]}); use sizes and "
                    "offsets the camera accepts (its Width/OffsetX increments)"
                )
                raise CameraError(msg)
        old = self._applied
        trigger_change = full or old is None or old.external_trigger != settings.external_trigger
        restart = trigger_change and self._running and self._stream is not None
        low, high = self._gcall("exposure bounds", cam.get_exposure_time_bounds)
        tint_us = settings.tint * 1e6
        if not low <= tint_us <= high:
            msg = (
                f"genicam {self.label}: exposure {settings.tint:g} s outside the camera's "
                f"{low * 1e-6:g}-{high * 1e-6:g} s"
            )
            raise CameraError(msg)
        fmin, fmax = self._gcall("frame rate bounds", cam.get_frame_rate_bounds)
        if not settings.external_trigger and not fmin <= settings.fps <= fmax * (1 + 1e-9):
            msg = (
                f"genicam {self.label}: frame rate {settings.fps:g} Hz outside the "
                f"camera's {fmin:g}-{fmax:g} Hz"
            )
            raise CameraError(msg)
        if restart:  # trigger features are locked while acquiring on most cameras
            self._gcall("AcquisitionStop", cam.stop_acquisition)
        if trigger_change and settings.external_trigger:
            self._gcall("TriggerSource", cam.set_trigger, self.trigger_source)
        elif trigger_change:
            self._gcall("TriggerMode Off", cam.clear_triggers)
        if not settings.external_trigger:
            self._gcall("AcquisitionFrameRate", cam.set_frame_rate, min(settings.fps, fmax))
        self._gcall("ExposureTime", cam.set_exposure_time, tint_us)
        if restart:
            self._gcall("AcquisitionStart", cam.start_acquisition)
        self._applied = settings

    def _start_acquisition(self) -> None:
        cam = self._require_cam()
        aravis = self._aravis
        payload = int(self._gcall("payload size", cam.get_payload))
        stream = self._gcall("stream", cam.create_stream, None, None)
        self._clear_pool()
        for _ in range(self.buffers):
            data = np.empty(payload, dtype=np.uint8)
            buf = aravis.Buffer.new(payload, data.ctypes.data)
            self._pool[hash(buf)] = data  # PyGObject hashes the C pointer: stable
            self._buffers.append(buf)
            stream.push_buffer(buf)
        self._stream = stream
        self._index = 0
        self._last_id = None
        self._last_frame = self._last_probe = time.monotonic()
        self._gcall("AcquisitionStart", cam.start_acquisition)

    def _clear_pool(self) -> None:
        """Forget the pool (after the Aravis stream that wrote into it was dropped)."""
        self._pool.clear()
        self._buffers.clear()

    def _release_current(self) -> None:
        buf, self._current, self._current_data = self._current, None, None
        if buf is not None and self._stream is not None:
            self._stream.push_buffer(buf)

    def _count_gap(self, frame_id: int) -> None:
        last, self._last_id = self._last_id, frame_id
        if last is None:
            return
        gap = frame_id - last - 1
        if gap < 0 and last <= 0xFFFF:  # 16-bit GigE block id wrapped (id 0 is skipped)
            gap = (frame_id + 0xFFFF - last - 1) % 0xFFFF
        if 0 < gap < 100_000:
            self.skipped += gap

    def _check_alive(self) -> None:
        """After a pop timeout: notice a device that stopped answering."""
        now = time.monotonic()
        settings = self._applied
        stalled = (
            settings is not None
            and not settings.external_trigger
            and now - self._last_frame > max(_STALL, 5.0 / settings.fps)
            and now - self._last_probe > _STALL
        )
        if stalled and not self._lost.is_set():
            self._last_probe = now
            try:
                self._cam.get_frame_rate()
            except Exception:  # noqa: BLE001 - GLib.Error: register read timed out
                self._lost.set()
        if self._lost.is_set():
            self._mark_lost("the camera stopped answering (no heartbeat / register reply)")

    def _mark_lost(self, why: str) -> None:
        self.error = (
            f"genicam {self.label}: {why}; check its cable and power: it is re-opened "
            "automatically when it answers again"
        )
        logger.error("%s", self.error)
        self._stream = None
        self._clear_pool()
        self._cam = None
        self._dev = None
        self._last_retry = time.monotonic()

    def _try_reopen(self, timeout: float) -> None:
        now = time.monotonic()
        if now - self._last_retry < _RETRY:
            time.sleep(min(timeout, _RETRY - (now - self._last_retry)))
            return
        self._last_retry = now
        settings = self._settings
        error = self.error
        try:
            self._connect()
            if settings is None:
                msg = "genicam backend: reconnecting before configure()"
                raise CameraError(msg)
            self._apply(settings, full=True)
            self._start_acquisition()
        except CameraError as exc:
            self._cam = self._dev = self._stream = None
            self._clear_pool()
            self.error = error
            logger.debug("genicam %s: not back yet: %s", self.label, exc)
            return
        logger.warning("genicam %s: device answered again; acquisition resumed", self.label)

    def _check_open(self) -> None:
        if self._closed:
            msg = f"genicam {self.label}: used after close()"
            raise CameraError(msg)
