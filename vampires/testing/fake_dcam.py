"""A fake Hamamatsu DCAM-API library: the calls pylablib makes, as real C function pointers.

:class:`FakeDcamApi` stands in for ``libdcamapi.so``: each attribute
(``dcamapi_init``, ``dcamdev_open``, ``dcamprop_getattr``, ``dcambuf_lockframe``
...) is a ctypes function pointer (``CFUNCTYPE``) whose implementation is
Python, so pylablib's real DCAM code -- its ctypes prototypes, structure
marshalling, error checks, attribute tables, ROI and acquisition logic -- runs
unchanged against it. :class:`~vampires.camera.backends.dcam.DcamBackend`
takes it as ``library=``::

    api = FakeDcamApi([FakeOrcaQuest(serial="S/N: 000123")])
    backend = DcamBackend(device="000123", library=api)

What it implements (DCAM-API 4 semantics, as far as an ORCA-Quest shows them):

- ``dcamapi_init`` / ``uninit`` (device count), ``dcamdev_open`` / ``close``,
  ``dcamdev_getstring`` (vendor, model, ``S/N: ...`` camera id, versions);
- properties with ranges, steps, attributes and value texts, walked by
  ``dcamprop_getnextid`` and read by ``dcamprop_getattr`` / ``getvalue`` /
  ``setgetvalue`` / ``getvaluetext`` / ``getname``: exposure time (its minimum
  is the line time of the readout speed), readout speed (1 = ultra quiet,
  2 = standard), trigger source / active / polarity / delay, subarray
  position and size (multiples of 4, inside the sensor, ``OUTOFRANGE``
  otherwise), subarray mode, binning, image width / height / row bytes,
  pixel type, bits per channel, readout time (rows / 2 line times), sensor
  temperature, cooler mode and cooler status, defect correction;
- ``dcambuf_alloc`` / ``release`` (a ring of frames), ``dcambuf_lockframe``
  (pointer, row bytes, size, position, timestamp, framestamp);
- ``dcamcap_start`` / ``stop`` / ``status`` / ``transferinfo`` /
  ``firetrigger`` (software trigger source only);
- ``dcamwait_open`` / ``close`` / ``start`` (FRAMEREADY, STOPPED; TIMEOUT,
  ABORT) / ``abort``.

Frames come from :class:`~vampires.camera.backends.simulated.SimulatedBackend`
(its pacing, its content -- deterministic frames keyed by the DCAM
framestamp when ``deterministic=True`` -- and its external-trigger handling):
:meth:`FakeDcamApi.pulse` is a pulse on the camera's trigger input, and
:meth:`FakeDcamApi.lose_frames` makes the camera skip framestamps (frames
lost on the link), which a backend must count, and :meth:`FakeDcamApi.unplug`
makes every wait fail as with a pulled cable.
"""

from __future__ import annotations

import ctypes
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs
import numpy as np

from vampires.camera.backends.base import AcquisitionSettings
from vampires.camera.backends.simulated import SimulatedBackend
from vampires.camera.modes import CropMode, ReadoutMode, frame_rate
from vampires.camera.table import CameraTable, load_camera_table

__all__ = ["FakeDcamApi", "FakeOrcaQuest"]

logger = logging.getLogger(__name__)

# DCAM-API 4 codes (dcamapi4.h), as signed 32-bit integers
_OK = 1
_ERR = {
    "BUSY": 0x80000101,
    "NOTREADY": 0x80000103,
    "ABORT": 0x80000102,
    "TIMEOUT": 0x80000106,
    "NOCAMERA": 0x80000206,
    "INVALIDHANDLE": 0x80000807,
    "INVALIDPARAM": 0x80000808,
    "INVALIDVALUE": 0x80000821,
    "OUTOFRANGE": 0x80000822,
    "NOTWRITABLE": 0x80000823,
    "NOTREADABLE": 0x80000824,
    "INVALIDPROPERTYID": 0x80000825,
    "NOPROPERTY": 0x80000828,
    "INVALIDFRAMEINDEX": 0x80000833,
    "NOTSUPPORT": 0x80000F03,
    "NOBUFFER": 0x80000203,  # "no buffer allocated"
}
_ERR = {k: v - (1 << 32) for k, v in _ERR.items()}

_FRAMEREADY, _STOPPED = 0x0002, 0x0010
_CAP_BUSY, _CAP_READY, _CAP_STABLE = 1, 2, 3
_PIXELTYPE_MONO16 = 2
_ATTR_READABLE, _ATTR_WRITABLE = 0x00010000, 0x00020000
_ATTR_HASRANGE, _ATTR_HASSTEP, _ATTR_HASDEFAULT, _ATTR_HASVALUETEXT = (
    0x80000000,
    0x40000000,
    0x20000000,
    0x10000000,
)
_TYPE_MODE, _TYPE_LONG, _TYPE_REAL = 1, 2, 3
_OPTION_NEXT, _OPTION_PRIOR = 0x01000000, 0xFF000000 - (1 << 32)
_IDSTR = {0x04000102: "camera_id", 0x04000103: "vendor", 0x04000104: "model",
          0x04000105: "version", 0x04000106: "driver", 0x04000108: "api"}  # fmt: skip


@attrs.frozen(kw_only=True)
class FakeOrcaQuest:
    """One fake camera behind the fake DCAM-API.

    Attributes
    ----------
    serial
        DCAM camera id string (``DCAM_IDSTR_CAMERAID``), e.g. ``"S/N: 000123"``.
    camera
        Camera table that gives sensor size, line times and exposure limits.
    temperature
        Sensor temperature [deg C] with the cooler at MAX.
    deterministic
        Frames are the simulator's deterministic frames of their framestamp.
    exposure_while_busy
        The exposure can change while capturing (else DCAM answers BUSY).
    """

    serial: str = "S/N: 000001"
    camera: str = "vcam1"
    temperature: float = -35.0
    deterministic: bool = False
    exposure_while_busy: bool = True


@attrs.define
class _Prop:
    name: str
    kind: int
    lo: float
    hi: float
    step: float = 0.0
    default: float = 0.0
    writable: bool = True
    texts: dict[int, str] = attrs.field(factory=dict)


def _props(table: CameraTable) -> dict[int, _Prop]:
    w, h = table.sensor_width, table.sensor_height
    return {
        0x001F0110: _Prop("EXPOSURE TIME", _TYPE_REAL, table.min_tint, table.max_tint, 0, 0.01),
        0x00400110: _Prop("READOUT SPEED", _TYPE_MODE, 1, 2, 1, 2,
                          texts={1: "ULTRA QUIET", 2: "STANDARD"}),
        0x00100110: _Prop("TRIGGER SOURCE", _TYPE_MODE, 1, 4, 1, 1,
                          texts={1: "INTERNAL", 2: "EXTERNAL", 3: "SOFTWARE", 4: "MASTER PULSE"}),
        0x00100120: _Prop("TRIGGER ACTIVE", _TYPE_MODE, 1, 3, 1, 1,
                          texts={1: "EDGE", 2: "LEVEL", 3: "SYNCREADOUT"}),
        0x00100220: _Prop("TRIGGER POLARITY", _TYPE_MODE, 1, 2, 1, 1,
                          texts={1: "NEGATIVE", 2: "POSITIVE"}),
        0x00100260: _Prop("TRIGGER DELAY", _TYPE_REAL, 0.0, 10.0, 0, 0.0),
        0x00200310: _Prop("SENSOR TEMPERATURE", _TYPE_REAL, -100.0, 100.0, writable=False),
        0x00200320: _Prop("SENSOR COOLER", _TYPE_MODE, 1, 4, 1, 2,
                          texts={1: "OFF", 2: "ON", 4: "MAX"}),
        0x00200340: _Prop("SENSOR COOLER STATUS", _TYPE_MODE, -1, 4, 1, 2, writable=False,
                          texts={-1: "ERROR1", 0: "NONE", 1: "OFF", 2: "READY", 3: "BUSY",
                                 4: "ALWAYS"}),
        0x00401110: _Prop("BINNING", _TYPE_MODE, 1, 1, 1, 1, texts={1: "1X1"}),
        0x00402110: _Prop("SUBARRAY HPOS", _TYPE_LONG, 0, w - 4, 4, 0),
        0x00402120: _Prop("SUBARRAY HSIZE", _TYPE_LONG, 4, w, 4, w),
        0x00402130: _Prop("SUBARRAY VPOS", _TYPE_LONG, 0, h - 4, 4, 0),
        0x00402140: _Prop("SUBARRAY VSIZE", _TYPE_LONG, 4, h, 4, h),
        0x00402150: _Prop("SUBARRAY MODE", _TYPE_MODE, 1, 2, 1, 1, texts={1: "OFF", 2: "ON"}),
        0x00403010: _Prop("TIMING READOUT TIME", _TYPE_REAL, 0.0, 10.0, writable=False),
        0x00420130: _Prop("BIT PER CHANNEL", _TYPE_LONG, 16, 16, 0, 16, writable=False),
        0x00420210: _Prop("IMAGE WIDTH", _TYPE_LONG, 4, w, 0, w, writable=False),
        0x00420220: _Prop("IMAGE HEIGHT", _TYPE_LONG, 4, h, 0, h, writable=False),
        0x00420230: _Prop("IMAGE ROWBYTES", _TYPE_LONG, 8, 2 * w, 0, 2 * w, writable=False),
        0x00420270: _Prop("IMAGE PIXELTYPE", _TYPE_MODE, 2, 2, 1, 2, writable=False,
                          texts={2: "MONO16"}),
        0x00470010: _Prop("DEFECT CORRECT MODE", _TYPE_MODE, 1, 2, 1, 2,
                          texts={1: "OFF", 2: "ON"}),
    }  # fmt: skip


class _Device:
    """State of one opened fake camera."""

    def __init__(self, model: FakeOrcaQuest) -> None:
        self.model = model
        self.table = load_camera_table(model.camera)
        self.props = _props(self.table)
        self.values = {pid: p.default for pid, p in self.props.items()}
        self.cond = threading.Condition()
        self.ring: np.ndarray[Any, np.dtype[np.uint16]] | None = None
        self.stamps: list[tuple[float, int]] = []
        self.count = 0
        self.newest = -1
        self.framestamp = 0
        self.lose = 0
        self.capturing = False
        self.aborts = 0
        self.events = 0  # bumped on every FRAMEREADY / STOPPED
        self.stopped_events = 0
        self.thread: threading.Thread | None = None
        self.sim: SimulatedBackend | None = None
        self.snap_frames = 0
        self.unplugged = False

    # -- derived properties --------------------------------------------------------------
    def value(self, pid: int) -> float:
        name = self.props[pid].name
        if name == "SENSOR TEMPERATURE":
            return self.model.temperature + 0.05 * math.sin(time.time())
        if name == "SENSOR COOLER STATUS":
            return 2.0 if self.values[0x00200320] != 1 else 1.0
        if name in ("IMAGE WIDTH", "IMAGE HEIGHT", "IMAGE ROWBYTES"):
            crop = self.crop()
            return {"IMAGE WIDTH": crop.width, "IMAGE HEIGHT": crop.height,
                    "IMAGE ROWBYTES": 2 * crop.width}[name]  # fmt: skip
        if name == "TIMING READOUT TIME":
            return self.table.readout_time(self.crop(), self.readout())
        return self.values[pid]

    def readout(self) -> ReadoutMode:
        return ReadoutMode.FAST if self.values[0x00400110] == 2 else ReadoutMode.SLOW

    def crop(self) -> CropMode:
        if self.values[0x00402150] != 2:
            return self.table.crop("FULL")
        v = self.values
        return CropMode(name="DCAM", x0=int(v[0x00402110]), y0=int(v[0x00402130]),
                        width=int(v[0x00402120]), height=int(v[0x00402140]))  # fmt: skip

    def tint_min(self) -> float:
        return self.table.readout(self.readout()).line_time

    def settings(self) -> AcquisitionSettings:
        crop = self.crop()
        tint = float(self.values[0x001F0110])
        external = self.values[0x00100110] != 1
        ro = self.table.readout_time(crop, self.readout())
        return AcquisitionSettings(crop=crop, readout=self.readout(), tint=tint,
                                   fps=frame_rate(tint, ro), external_trigger=external)  # fmt: skip

    def set(self, pid: int, value: float) -> int:
        prop = self.props.get(pid)
        if prop is None:
            return _ERR["INVALIDPROPERTYID"]
        if not prop.writable:
            return _ERR["NOTWRITABLE"]
        live: tuple[str, ...] = ("TRIGGER DELAY", "SENSOR COOLER")
        live += ("EXPOSURE TIME",) if self.model.exposure_while_busy else ()
        if self.capturing and prop.name not in live:
            return _ERR["BUSY"]
        lo = self.tint_min() if prop.name == "EXPOSURE TIME" else prop.lo
        if not lo <= value <= prop.hi:
            return _ERR["OUTOFRANGE"]
        if prop.kind != _TYPE_REAL:
            if value != int(value) or (prop.texts and int(value) not in prop.texts):
                return _ERR["INVALIDVALUE"]
            if prop.step > 1 and int(value) % int(prop.step):
                return _ERR["INVALIDVALUE"]  # subarray: multiples of 4
        v = self.values
        pos_size = {0x00402110: (0x00402120, self.table.sensor_width),
                    0x00402120: (0x00402110, self.table.sensor_width),
                    0x00402130: (0x00402140, self.table.sensor_height),
                    0x00402140: (0x00402130, self.table.sensor_height)}  # fmt: skip
        if pid in pos_size:
            other, limit = pos_size[pid]
            if value + v[other] > limit:
                return _ERR["OUTOFRANGE"]
        v[pid] = float(value)
        if prop.name == "READOUT SPEED" and v[0x001F0110] < self.tint_min():
            v[0x001F0110] = self.tint_min()
        if self.capturing and self.sim is not None:
            self.sim.configure(self.settings())
        return _OK

    # -- capture -------------------------------------------------------------------------------
    def start(self, mode: int) -> int:
        if self.ring is None:
            return _ERR["NOBUFFER"]
        if self.capturing:
            return _ERR["BUSY"]
        crop = self.crop()
        if self.ring.shape[1:] != crop.shape:
            return _ERR["INVALIDPARAM"]  # buffer allocated for another subarray
        sim = SimulatedBackend(deterministic=self.model.deterministic, buffer_frames=0)
        sim.open(self.table)
        sim.configure(self.settings())
        sim.start()
        self.sim = sim
        with self.cond:
            self.count, self.newest, self.framestamp = 0, -1, 0
            self.stamps = [(0.0, 0)] * self.ring.shape[0]
            self.snap_frames = self.ring.shape[0] if mode == 0 else 0
            self.capturing = True
        self.thread = threading.Thread(target=self._run, name="fake-dcam", daemon=True)
        self.thread.start()
        return _OK

    def _run(self) -> None:
        sim, ring = self.sim, self.ring
        if sim is None or ring is None:  # start() sets both before it starts this thread
            return
        while self.capturing:
            timing = sim.wait_frame(0.02)
            if timing is None or not self.capturing:
                continue
            with self.cond:
                slot = self.count % ring.shape[0]
                self.framestamp += self.lose
                self.lose = 0
                sim.read_frame(ring[slot], counter=self.framestamp)
                self.stamps[slot] = (timing.acquisition_time, self.framestamp)
                self.framestamp += 1
                self.count += 1
                self.newest = slot
                self.events += 1
                self.cond.notify_all()
                if self.snap_frames and self.count >= self.snap_frames:
                    self.capturing = False
        with self.cond:
            self.stopped_events += 1
            self.cond.notify_all()

    def stop(self) -> None:
        if not self.capturing and self.thread is None:
            return
        self.capturing = False
        thread, self.thread = self.thread, None
        if thread is not None:
            thread.join(timeout=5.0)
        if self.sim is not None:
            self.sim.close()
            self.sim = None

    def wait(self, mask: int, timeout_ms: int) -> tuple[int, int]:
        deadline = time.monotonic() + max(0, timeout_ms) / 1000.0
        with self.cond:
            events, stopped, aborts = self.events, self.stopped_events, self.aborts
            while True:
                if self.unplugged:
                    return _ERR["NOCAMERA"], 0
                if self.aborts != aborts:
                    return _ERR["ABORT"], 0
                if mask & _FRAMEREADY and self.events != events:
                    return _OK, _FRAMEREADY
                if mask & _STOPPED and self.stopped_events != stopped:
                    return _OK, _STOPPED
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return _ERR["TIMEOUT"], 0
                self.cond.wait(remaining)


# each function: argument C types (pointers as void*), all return int32
_P, _I = ctypes.c_void_p, ctypes.c_int32
_SIGNATURES: dict[str, tuple[Any, ...]] = {
    "dcamapi_init": (_P,), "dcamapi_uninit": (), "dcamdev_open": (_P,), "dcamdev_close": (_P,),
    "dcamdev_showpanel": (_P, _I), "dcamdev_getcapability": (_P, _P), "dcamdev_getstring": (_P, _P),
    "dcamdev_setdata": (_P, _P), "dcamdev_getdata": (_P, _P), "dcamprop_getattr": (_P, _P),
    "dcamprop_getvalue": (_P, _I, _P), "dcamprop_setvalue": (_P, _I, ctypes.c_double),
    "dcamprop_setgetvalue": (_P, _I, _P, _I), "dcamprop_queryvalue": (_P, _I, _P, _I),
    "dcamprop_getnextid": (_P, _P, _I), "dcamprop_getname": (_P, _I, _P, _I),
    "dcamprop_getvaluetext": (_P, _P), "dcamcap_start": (_P, _I), "dcamcap_stop": (_P,),
    "dcamcap_status": (_P, _P), "dcamcap_transferinfo": (_P, _P), "dcamcap_firetrigger": (_P, _I),
    "dcamwait_open": (_P,), "dcamwait_close": (_P,), "dcamwait_start": (_P, _P),
    "dcamwait_abort": (_P,), "dcambuf_alloc": (_P, _I), "dcambuf_release": (_P, _I),
    "dcambuf_lockframe": (_P, _P),
}  # fmt: skip
_HANDLE_BASE = 0x5DCA0000
_WAIT_BASE = 0x5EA70000


def _structs() -> Any:  # noqa: ANN401 - pylablib's ctypes declarations of dcamapi4.h
    from pylablib.devices.DCAM import dcamapi4_defs

    return dcamapi4_defs


def _write_text(address: int | None, size: int, text: str) -> int:
    if not address or size <= 0:
        return _ERR["INVALIDPARAM"]
    data = text.encode()[: size - 1] + b"\0"
    ctypes.memmove(address, data, len(data))
    return _OK


def _text_pointer(struct: ctypes.Structure) -> int | None:
    """Address held by a ``char*`` field named ``text`` (without copying it out)."""
    offset = type(struct).text.offset
    return ctypes.c_void_p.from_address(ctypes.addressof(struct) + offset).value


class FakeDcamApi:
    """A DCAM-API library object for pylablib (see the module docstring).

    Parameters
    ----------
    cameras
        The cameras the fake API finds, in index order.
    """

    def __init__(self, cameras: Sequence[FakeOrcaQuest] = (FakeOrcaQuest(),)) -> None:
        self.cameras = list(cameras)
        self.initialized = 0
        self.calls: dict[str, int] = {}
        self._open: dict[int, _Device] = {}
        self._lock = threading.Lock()
        self._keep: list[Any] = []
        for name, argtypes in _SIGNATURES.items():
            impl = getattr(self, f"_{name}")
            proto = ctypes.CFUNCTYPE(ctypes.c_int32, *argtypes)
            func = proto(self._guard(name, impl))
            func.__name__ = name  # type: ignore[attr-defined]  # as a ctypes.CDLL function has
            self._keep.append(func)
            setattr(self, name, func)

    # -- test controls ----------------------------------------------------------------------
    def device(self, index: int = 0) -> _Device:
        """Return the opened device ``index`` (for tests)."""
        return self._open[_HANDLE_BASE + index]

    def pulse(self) -> None:
        """One rising edge on the trigger input of every opened camera."""
        for dev in list(self._open.values()):
            if dev.sim is not None and dev.values[0x00100110] == 2:
                dev.sim.trigger()

    def unplug(self, index: int = 0) -> None:
        """Pull camera ``index``'s cable: waits fail with DCAMERR_NOCAMERA from now on."""
        dev = self.device(index)
        with dev.cond:
            dev.unplugged = True
            dev.cond.notify_all()

    def lose_frames(self, n: int, index: int = 0) -> None:
        """Make camera ``index`` skip ``n`` framestamps before its next frame."""
        dev = self.device(index)
        with dev.cond:
            dev.lose += n

    # -- plumbing ------------------------------------------------------------------------------
    def _guard(self, name: str, impl: Callable[..., int]) -> Callable[..., int]:
        def call(*args: Any) -> int:  # noqa: ANN401
            self.calls[name] = self.calls.get(name, 0) + 1
            try:
                return int(impl(*args))
            except Exception:  # a bug in the fake must not pass for success
                logger.exception("fake DCAM-API: %s failed", name)
                return _ERR["INVALIDPARAM"]

        return call

    def _dev(self, handle: int | None) -> _Device | None:
        return self._open.get(handle or 0)

    def _struct(self, name: str, address: int | None) -> Any:  # noqa: ANN401
        cls = getattr(_structs(), name)
        struct = cls.from_address(address)
        size_field = "cbSize" if hasattr(struct, "cbSize") else "size"
        if getattr(struct, size_field) != ctypes.sizeof(cls):
            got, want = getattr(struct, size_field), ctypes.sizeof(cls)
            msg = f"{name}.{size_field} = {got}, expected {want}"
            raise ValueError(msg)
        return struct

    # -- api / device -----------------------------------------------------------------------------
    def _dcamapi_init(self, param: int) -> int:
        self._struct("DCAMAPI_INIT", param).iDeviceCount = len(self.cameras)
        self.initialized += 1
        return _OK if self.cameras else _ERR["NOCAMERA"]

    def _dcamapi_uninit(self) -> int:
        for dev in self._open.values():
            dev.stop()
        self._open.clear()
        self.initialized = 0
        return _OK

    def _dcamdev_open(self, param: int) -> int:
        struct = self._struct("DCAMDEV_OPEN", param)
        index = struct.index
        if not self.initialized:
            return _ERR["NOTREADY"]
        if not 0 <= index < len(self.cameras):
            return _ERR["INVALIDPARAM"]
        handle = _HANDLE_BASE + index
        with self._lock:
            if handle in self._open:
                return _ERR["BUSY"]  # one process owns a camera
            self._open[handle] = _Device(self.cameras[index])
        struct.hdcam = handle
        return _OK

    def _dcamdev_close(self, handle: int) -> int:
        dev = self._open.pop(handle or 0, None)
        if dev is None:
            return _ERR["INVALIDHANDLE"]
        dev.stop()
        return _OK

    def _dcamdev_showpanel(self, handle: int, kind: int) -> int:
        return _ERR["NOTSUPPORT"]

    def _dcamdev_getcapability(self, handle: int, param: int) -> int:
        return _ERR["NOTSUPPORT"]

    def _dcamdev_setdata(self, handle: int, param: int) -> int:
        return _ERR["NOTSUPPORT"]

    def _dcamdev_getdata(self, handle: int, param: int) -> int:
        return _ERR["NOTSUPPORT"]

    def _dcamdev_getstring(self, handle: int, param: int) -> int:
        dev = self._dev(handle)
        if dev is None:
            return _ERR["INVALIDHANDLE"]
        struct = self._struct("DCAMDEV_STRING", param)
        key = _IDSTR.get(struct.iString)
        if key is None:
            return _ERR["INVALIDPARAM"]
        texts = {"camera_id": dev.model.serial, "vendor": "Hamamatsu", "model": "C15550-20UP",
                 "version": "fake", "driver": "fake", "api": "4.0"}  # fmt: skip
        return _write_text(_text_pointer(struct), struct.textbytes, texts[key])

    # -- properties ----------------------------------------------------------------------------
    def _dcamprop_getattr(self, handle: int, param: int) -> int:
        dev = self._dev(handle)
        if dev is None:
            return _ERR["INVALIDHANDLE"]
        attr = self._struct("DCAMPROP_ATTR", param)
        prop = dev.props.get(attr.iProp)
        if prop is None:
            return _ERR["INVALIDPROPERTYID"]
        flags = prop.kind | _ATTR_READABLE | _ATTR_HASRANGE | _ATTR_HASDEFAULT
        flags |= _ATTR_WRITABLE if prop.writable else 0
        flags |= _ATTR_HASSTEP if prop.step else 0
        flags |= _ATTR_HASVALUETEXT if prop.texts else 0
        attr.attribute = flags - (1 << 32) if flags >= 1 << 31 else flags
        attr.iUnit = 1 if prop.kind == _TYPE_REAL else 0
        lo = dev.tint_min() if prop.name == "EXPOSURE TIME" else prop.lo
        attr.valuemin, attr.valuemax = lo, prop.hi
        attr.valuestep, attr.valuedefault = prop.step, prop.default
        return _OK

    def _dcamprop_getvalue(self, handle: int, pid: int, value: int) -> int:
        dev = self._dev(handle)
        if dev is None:
            return _ERR["INVALIDHANDLE"]
        if pid not in dev.props:
            return _ERR["INVALIDPROPERTYID"]
        ctypes.c_double.from_address(value).value = dev.value(pid)
        return _OK

    def _dcamprop_setvalue(self, handle: int, pid: int, value: float) -> int:
        dev = self._dev(handle)
        return _ERR["INVALIDHANDLE"] if dev is None else dev.set(pid, value)

    def _dcamprop_setgetvalue(self, handle: int, pid: int, value: int, option: int) -> int:
        dev = self._dev(handle)
        if dev is None:
            return _ERR["INVALIDHANDLE"]
        cell = ctypes.c_double.from_address(value)
        code = dev.set(pid, cell.value)
        if code == _OK:
            cell.value = dev.value(pid)
        return code

    def _dcamprop_queryvalue(self, handle: int, pid: int, value: int, option: int) -> int:
        dev = self._dev(handle)
        if dev is None:
            return _ERR["INVALIDHANDLE"]
        prop = dev.props.get(pid)
        if prop is None:
            return _ERR["INVALIDPROPERTYID"]
        cell = ctypes.c_double.from_address(value)
        values = sorted(prop.texts) if prop.texts else None
        if values is None:
            return _ERR["NOTSUPPORT"]
        if option == _OPTION_NEXT:
            later = [v for v in values if v > cell.value]
        elif option == _OPTION_PRIOR:
            later = [v for v in reversed(values) if v < cell.value]
        else:
            later = [v for v in values if v == cell.value]
        if not later:
            return _ERR["OUTOFRANGE"]
        cell.value = later[0]
        return _OK

    def _dcamprop_getnextid(self, handle: int, pprop: int, option: int) -> int:
        dev = self._dev(handle)
        if dev is None:
            return _ERR["INVALIDHANDLE"]
        cell = ctypes.c_int32.from_address(pprop)
        later = [pid for pid in sorted(dev.props) if pid > cell.value]
        if not later:
            return _ERR["NOPROPERTY"]
        cell.value = later[0]
        return _OK

    def _dcamprop_getname(self, handle: int, pid: int, text: int, size: int) -> int:
        dev = self._dev(handle)
        if dev is None:
            return _ERR["INVALIDHANDLE"]
        prop = dev.props.get(pid)
        if prop is None:
            return _ERR["INVALIDPROPERTYID"]
        return _write_text(text, size, prop.name)

    def _dcamprop_getvaluetext(self, handle: int, param: int) -> int:
        dev = self._dev(handle)
        if dev is None:
            return _ERR["INVALIDHANDLE"]
        struct = self._struct("DCAMPROP_VALUETEXT", param)
        prop = dev.props.get(struct.iProp)
        if prop is None:
            return _ERR["INVALIDPROPERTYID"]
        text = prop.texts.get(int(struct.value)) if struct.value == int(struct.value) else None
        if text is None:
            return _ERR["INVALIDVALUE"]
        return _write_text(_text_pointer(struct), struct.textbytes, text)

    # -- capture -------------------------------------------------------------------------------
    def _dcamcap_start(self, handle: int, mode: int) -> int:
        dev = self._dev(handle)
        return _ERR["INVALIDHANDLE"] if dev is None else dev.start(mode)

    def _dcamcap_stop(self, handle: int) -> int:
        dev = self._dev(handle)
        if dev is None:
            return _ERR["INVALIDHANDLE"]
        dev.stop()
        return _OK

    def _dcamcap_status(self, handle: int, status: int) -> int:
        dev = self._dev(handle)
        if dev is None:
            return _ERR["INVALIDHANDLE"]
        value = _CAP_BUSY if dev.capturing else _CAP_READY if dev.ring is not None else _CAP_STABLE
        ctypes.c_int32.from_address(status).value = value
        return _OK

    def _dcamcap_transferinfo(self, handle: int, param: int) -> int:
        dev = self._dev(handle)
        if dev is None:
            return _ERR["INVALIDHANDLE"]
        info = self._struct("DCAMCAP_TRANSFERINFO", param)
        with dev.cond:
            info.nNewestFrameIndex = dev.newest
            info.nFrameCount = dev.count
        return _OK

    def _dcamcap_firetrigger(self, handle: int, kind: int) -> int:
        dev = self._dev(handle)
        if dev is None:
            return _ERR["INVALIDHANDLE"]
        if dev.values[0x00100110] != 3 or dev.sim is None:
            return _ERR["NOTREADY"]  # software trigger only in SOFTWARE trigger source
        dev.sim.trigger()
        return _OK

    # -- wait ----------------------------------------------------------------------------------
    def _dcamwait_open(self, param: int) -> int:
        struct = self._struct("DCAMWAIT_OPEN", param)
        if self._dev(struct.hdcam) is None:
            return _ERR["INVALIDHANDLE"]
        struct.hwait = _WAIT_BASE + (struct.hdcam - _HANDLE_BASE)
        struct.supportevent = _FRAMEREADY | _STOPPED
        return _OK

    def _wait_dev(self, hwait: int | None) -> _Device | None:
        return self._open.get(_HANDLE_BASE + ((hwait or 0) - _WAIT_BASE))

    def _dcamwait_close(self, hwait: int) -> int:
        return _OK if self._wait_dev(hwait) is not None else _ERR["INVALIDHANDLE"]

    def _dcamwait_start(self, hwait: int, param: int) -> int:
        dev = self._wait_dev(hwait)
        if dev is None:
            return _ERR["INVALIDHANDLE"]
        struct = self._struct("DCAMWAIT_START", param)
        code, event = dev.wait(struct.eventmask, struct.timeout)
        struct.eventhappened = event
        return code

    def _dcamwait_abort(self, hwait: int) -> int:
        dev = self._wait_dev(hwait)
        if dev is None:
            return _ERR["INVALIDHANDLE"]
        with dev.cond:
            dev.aborts += 1
            dev.cond.notify_all()
        return _OK

    # -- buffers -------------------------------------------------------------------------------
    def _dcambuf_alloc(self, handle: int, count: int) -> int:
        dev = self._dev(handle)
        if dev is None:
            return _ERR["INVALIDHANDLE"]
        if dev.capturing:
            return _ERR["BUSY"]
        if count < 1:
            return _ERR["INVALIDPARAM"]
        dev.ring = np.zeros((count, *dev.crop().shape), dtype=np.uint16)
        return _OK

    def _dcambuf_release(self, handle: int, kind: int) -> int:
        dev = self._dev(handle)
        if dev is None:
            return _ERR["INVALIDHANDLE"]
        if dev.capturing:
            return _ERR["BUSY"]
        dev.ring = None
        return _OK

    def _dcambuf_lockframe(self, handle: int, param: int) -> int:
        dev = self._dev(handle)
        if dev is None:
            return _ERR["INVALIDHANDLE"]
        frame = self._struct("DCAMBUF_FRAME", param)
        ring = dev.ring
        if ring is None:
            return _ERR["NOBUFFER"]
        with dev.cond:
            index = dev.newest if frame.iFrame == -1 else frame.iFrame
            if not 0 <= index < ring.shape[0] or index >= dev.count:
                return _ERR["INVALIDFRAMEINDEX"]
            when, stamp = dev.stamps[index]
        crop = dev.crop()
        frame.buf = ring[index].ctypes.data
        frame.rowbytes = ring.shape[2] * 2
        frame.type = _PIXELTYPE_MONO16
        frame.width, frame.height = ring.shape[2], ring.shape[1]
        frame.left, frame.top = crop.x0, crop.y0
        sec = math.floor(when)
        frame.timestamp.sec = sec
        frame.timestamp.microsec = round((when - sec) * 1e6)
        frame.framestamp = stamp
        frame.camerastamp = stamp
        return _OK
