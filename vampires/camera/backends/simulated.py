"""A simulated ORCA-Quest / Flea3: realistic or deterministic frames at an exact rate.

Content (default)
    bias + Gaussian read noise of the readout mode (``read_noise / gain`` adu)
    plus a scene scaled by the exposure time: in a crop with MBI hotspots one
    PSF per field at the hotspot, in a pupil crop (PUPIL, vpupcam) a pupil
    (disc, central obstruction, four spiders), otherwise one PSF at the
    table's ``[sim] source`` if it falls in the crop. The noise is
    precomputed once per crop and readout mode (one buffer a little larger
    than a frame; frame k is a window of it at offset ``(k mod 64) * 1009``),
    so a frame costs one vectorised add or copy straight into the stream.

Deterministic mode (``deterministic=True``)
    The frame that the stream publishes with counter ``cnt0 = c`` holds, at
    flat C-order index ``i`` of its ``(height, width)`` array,
    ``(i * 7 + c) mod 65536`` as uint16 -- i.e. ``pixel[y, x] = ((y * width
    + x) * 7 + c) % 65536``. :func:`deterministic_frame` computes it, so a
    logger, link or test can verify every byte of any frame from its cnt0
    alone.

Pacing (internal trigger)
    Frames are due at ``t0 + k / fps`` on ``time.perf_counter`` (absolute
    schedule, so the long-run rate is exact whatever the sleep jitter). Like
    a frame grabber with ``buffer_frames`` buffers, a consumer that is late
    gets the frames it missed at once (with their scheduled times) until it
    has caught up; frames older than the buffer are dropped (counted in
    :attr:`skipped`): the measured rate then falls below the target, which is
    how the machine's limit shows. ``free_run=True`` drops the pacing
    (benchmarks: the fastest this machine can produce frames).

External trigger
    Frames come only from triggers: :meth:`SimulatedBackend.trigger` in
    process, or a shared trigger stream (``trigger_stream="vtrig"``) written
    by :class:`SimulatedTrigger` -- every camera waiting on the same stream
    gets the same trigger times, so vcam1 and vcam2 frames pair up exactly
    (as with the Metro M4 hardware trigger). The frame's acquisition time is
    the trigger time. A trigger arriving before the camera is ready again
    (previous trigger + tint + readout) is ignored and counted in
    :attr:`missed_triggers`.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from typing import TYPE_CHECKING

import numpy as np

from vampires._checks import ShmDir
from vampires.camera.backends.base import AcquisitionSettings, FrameTiming
from vampires.camera.modes import CropMode
from vampires.camera.table import CameraTable
from vampires.errors import CameraError, StreamError

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from vampires.stream import Stream, StreamReader

__all__ = ["SimulatedBackend", "SimulatedTrigger", "deterministic_frame"]

logger = logging.getLogger(__name__)

_NOISE_OFFSETS = 64
_NOISE_STRIDE = 1009  # prime: successive windows look unrelated
_PSF_HALF = 48  # [px] half size of the window a PSF is drawn in
#: Defocus [stage mm] that doubles the PSF area: FWHM grows as hypot(1, defocus / this).
DEPTH_OF_FOCUS = 0.5
_TRIGGER_SHAPE = (1, 1)
#: Trigger edges kept for a camera that was descheduled (every edge is seen, in order).
_TRIGGER_BUFFER = 64


def deterministic_frame(shape: tuple[int, int], counter: int) -> NDArray[np.uint16]:
    """Return the deterministic frame published with stream counter ``counter``.

    Parameters
    ----------
    shape
        ``(height, width)``.
    counter
        The frame's ``cnt0`` in the stream.

    Returns
    -------
    numpy.ndarray
        uint16 array with ``flat[i] = (i * 7 + counter) % 65536``.
    """
    ramp = _ramp(shape)
    ramp += np.uint16(counter % 65536)
    return ramp


def _ramp(shape: tuple[int, int]) -> NDArray[np.uint16]:
    n = shape[0] * shape[1]
    return ((np.arange(n, dtype=np.uint64) * 7) % 65536).astype(np.uint16).reshape(shape)


def _psf(rate: NDArray[np.float32], x: float, y: float, peak: float, fwhm: float) -> None:
    """Add a PSF (Gaussian core + faint Moffat halo) centred at crop pixel (x, y)."""
    h, w = rate.shape
    x0, x1 = max(0, int(x) - _PSF_HALF), min(w, int(x) + _PSF_HALF + 1)
    y0, y1 = max(0, int(y) - _PSF_HALF), min(h, int(y) + _PSF_HALF + 1)
    if x0 >= x1 or y0 >= y1:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float32)
    r2 = (xx - x) ** 2 + (yy - y) ** 2
    sigma2 = (fwhm / 2.3548) ** 2
    core = np.exp(-r2 / (2 * sigma2))
    halo = 0.02 * (1 + r2 / (4 * fwhm**2)) ** -1.5
    rate[y0:y1, x0:x1] += (peak * (core + halo)).astype(np.float32)


def _pupil(rate: NDArray[np.float32], cx: float, cy: float, radius: float, level: float) -> None:
    """Add a pupil image: disc, 30 % central obstruction, four spiders."""
    h, w = rate.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    dx, dy = xx - cx, yy - cy
    r = np.hypot(dx, dy)
    inside = (r <= radius) & (r >= 0.3 * radius)
    spider = 0.015 * radius
    # spiders at +-45 deg (Subaru-like cross)
    d1 = np.abs(dx - dy) / np.sqrt(2)
    d2 = np.abs(dx + dy) / np.sqrt(2)
    inside &= (d1 > spider) & (d2 > spider)
    rate += (inside * level).astype(np.float32)


class SimulatedBackend:
    """Simulated camera backend (see the module docstring).

    Parameters
    ----------
    deterministic
        Frames are :func:`deterministic_frame` of their stream counter.
    trigger_stream
        Name of a shared trigger stream (see :class:`SimulatedTrigger`) used
        in external-trigger mode.
    free_run
        Ignore the frame rate: produce frames as fast as possible.
    seed
        Seed of the noise generator.
    buffer_frames
        Frames a late consumer may catch up on before frames are dropped
        (the grabber's buffer count).
    shm_dir
        Folder of the trigger stream (default: the config's shm dir).
    """

    def __init__(
        self,
        *,
        deterministic: bool = False,
        trigger_stream: str | None = None,
        free_run: bool = False,
        seed: int = 0,
        shm_dir: ShmDir = None,
        buffer_frames: int = 16,
    ) -> None:
        self.deterministic = deterministic
        self.trigger_stream = trigger_stream
        self.free_run = free_run
        if buffer_frames < 0:
            msg = f"simulated backend: buffer_frames must be >= 0 (got {buffer_frames})"
            raise CameraError(msg)
        self.buffer_frames = buffer_frames
        self._seed = seed
        self._shm_dir = shm_dir
        self._table: CameraTable | None = None
        self._settings: AcquisitionSettings | None = None
        self._running = False
        self._closed = False
        self._noise_key: tuple[object, ...] = ()
        self._noise: NDArray[np.uint16] = np.zeros(0, np.uint16)
        self._scene_key: tuple[object, ...] = ()
        #: distance [stage mm] from best focus (see :meth:`set_defocus`)
        self.defocus = 0.0
        self._scene: NDArray[np.uint16] | None = None
        self._ramp: NDArray[np.uint16] | None = None
        self._period = 1.0
        self._period_prev = 1.0
        self._t0 = 0.0
        self._k = 0
        self._index = 0
        self._wall_offset = 0.0
        self._last_index = 0
        self._ready_at = 0.0
        self._triggers: queue.SimpleQueue[float] = queue.SimpleQueue()
        self._trigger_source: Stream | None = None
        self._trigger_reader: StreamReader | None = None
        #: frames skipped because the consumer fell more than one period behind
        self.skipped = 0
        #: triggers ignored because they arrived before the camera was ready
        self.missed_triggers = 0

    # -- protocol --------------------------------------------------------------------
    @property
    def kind(self) -> str:
        """Backend name (``"simulated"``)."""
        return "simulated"

    def open(self, table: CameraTable) -> None:
        """Remember the camera table (no device to connect to)."""
        self._check_open()
        self._table = table

    def configure(self, settings: AcquisitionSettings) -> None:
        """Apply settings; precompute noise and scene for the crop."""
        self._check_open()
        table = self._require_table()
        old = self._settings
        if self._running and old is not None and not old.live_change_only(settings):
            msg = "simulated backend: stop before changing crop or readout mode"
            raise CameraError(msg)
        self._settings = settings
        self._prepare(table, settings)
        self._period = 1.0 / settings.fps
        if self._running:  # re-anchor the schedule at the next due frame
            self._t0 = self._t0 + self._k * self._period_prev
            self._k = 0
        self._period_prev = self._period

    def start(self) -> None:
        """Start the frame schedule."""
        self._check_open()
        settings = self._settings
        if settings is None:
            msg = "simulated backend: configure() before start()"
            raise CameraError(msg)
        now = time.perf_counter()
        self._wall_offset = time.time() - now
        self._t0 = now + self._period
        self._period_prev = self._period
        self._k = 0
        self._index = 0
        self._ready_at = 0.0
        self._running = True

    def wait_frame(self, timeout: float) -> FrameTiming | None:
        """Wait for the next frame (schedule or trigger); None on timeout."""
        if not self._running:
            msg = "simulated backend: wait_frame() while stopped"
            raise CameraError(msg)
        settings = self._settings
        if settings is None:
            msg = "simulated backend: wait_frame() before configure()"
            raise CameraError(msg)
        if settings.external_trigger:
            return self._wait_trigger(settings, timeout)
        if self.free_run:
            t = time.perf_counter()
            return self._emit(t + self._wall_offset)
        due = self._t0 + self._k * self._period
        now = time.perf_counter()
        if due - now > timeout:
            time.sleep(max(0.0, timeout))
            return None
        backlog = int((now - due) / self._period)
        if backlog > self.buffer_frames:  # grabber buffers overrun: drop the oldest
            late = backlog - self.buffer_frames
            self.skipped += late
            self._k += late
            due = self._t0 + self._k * self._period
        elif due > now:
            time.sleep(due - now)
        self._k += 1
        return self._emit(due + self._wall_offset)

    def read_frame(self, out: NDArray[np.uint16], *, counter: int) -> None:
        """Fill ``out`` (the stream's array) with the current frame."""
        if self._ramp is not None:
            np.add(self._ramp, np.uint16(counter % 65536), out=out)
            return
        n = out.size
        offset = (self._last_index % _NOISE_OFFSETS) * _NOISE_STRIDE
        noise = self._noise[offset : offset + n].reshape(out.shape)
        if self._scene_key and self._scene_key[-1] != self.defocus:
            table, settings = self._table, self._settings
            if table is not None and settings is not None:  # a focus move: redraw the PSFs
                self._scene = self._make_scene(table, settings.crop, settings.tint)
                self._scene_key = (settings.crop, settings.tint, self.defocus)
        if self._scene is None:
            np.copyto(out, noise)
        else:
            np.add(noise, self._scene, out=out)

    @property
    def scene(self) -> NDArray[np.uint16] | None:
        """The noiseless scene [adu] added to the noise (PSFs or pupil), read-only; None if empty.

        What a benchmark needs to add photon noise on top of :meth:`read_frame`
        (``benchmarks/zmq_bench.py``); set after :meth:`configure`.
        """
        if self._scene is None:
            return None
        view = self._scene.view()
        view.setflags(write=False)
        return view

    def set_defocus(self, defocus: float) -> None:
        """Move the simulated focus: PSFs widen with the distance from best focus.

        Parameters
        ----------
        defocus
            Distance from best focus [stage mm]; the FWHM becomes
            ``psf_fwhm * hypot(1, defocus / DEPTH_OF_FOCUS)`` (flux conserved).

        Raises
        ------
        CameraError
            ``defocus`` is not a finite number.
        """
        if isinstance(defocus, bool) or not isinstance(defocus, int | float):
            msg = f"simulated focus: defocus must be a number of mm (got {defocus!r})"
            raise CameraError(msg)
        if not math.isfinite(defocus):
            msg = f"simulated focus: defocus must be finite (got {defocus!r})"
            raise CameraError(msg)
        self.defocus = float(defocus)

    def trigger(self) -> None:
        """Fire one software trigger now."""
        self._triggers.put(time.time())

    def temperature(self) -> float:
        """Return the simulated sensor temperature [K] (table value, slight wobble)."""
        table = self._require_table()
        return table.sim.temperature + 0.05 * math.sin(time.time() / 60.0)

    def stop(self) -> None:
        """Stop the schedule (idempotent)."""
        self._running = False
        self._close_trigger()

    def close(self) -> None:
        """Release buffers (idempotent)."""
        self.stop()
        self._closed = True
        self._noise = np.zeros(0, np.uint16)
        self._scene = None
        self._ramp = None

    # -- helpers ---------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            msg = "simulated backend: used after close()"
            raise CameraError(msg)

    def _require_table(self) -> CameraTable:
        if self._table is None:
            msg = "simulated backend: open(table) first"
            raise CameraError(msg)
        return self._table

    def _emit(self, acquisition_time: float) -> FrameTiming:
        self._last_index = self._index
        self._index += 1
        return FrameTiming(acquisition_time=acquisition_time, index=self._last_index)

    def _wait_trigger(self, settings: AcquisitionSettings, timeout: float) -> FrameTiming | None:
        deadline = time.monotonic() + timeout
        table = self._require_table()
        busy = settings.tint + table.readout_time(settings.crop, settings.readout)
        while True:
            remaining = deadline - time.monotonic()
            when = self._next_trigger(max(0.0, remaining))
            if when is None:
                return None
            if when < self._ready_at:
                self.missed_triggers += 1
                continue
            self._ready_at = when + busy
            return self._emit(when)

    def _next_trigger(self, timeout: float) -> float | None:
        try:
            return self._triggers.get_nowait()
        except queue.Empty:
            pass
        if self.trigger_stream is None:
            try:
                return self._triggers.get(timeout=timeout)
            except queue.Empty:
                return None
        reader = self._open_trigger()
        if reader is None:
            time.sleep(min(timeout, 0.05))
            return None
        from vampires.errors import StreamTimeout

        try:
            frame = reader.next(timeout)
        except StreamTimeout:
            return None
        return float(frame.acquisition_time or frame.write_time)

    def _open_trigger(self) -> StreamReader | None:
        if self._trigger_reader is not None:
            if self._trigger_source is not None and not self._trigger_source.is_stale():
                return self._trigger_reader
            self._close_trigger()
        from vampires.stream import Stream

        name = self.trigger_stream
        if name is None:
            msg = "simulated backend: external trigger without a trigger stream"
            raise CameraError(msg)
        try:
            self._trigger_source = Stream.open(name, shm_dir=self._shm_dir)
        except StreamError:
            return None  # trigger source not started yet: wait for it
        self._trigger_reader = self._trigger_source.reader(catch_up=True)
        self._trigger_reader.__enter__()
        return self._trigger_reader

    def _close_trigger(self) -> None:
        reader, source = self._trigger_reader, self._trigger_source
        self._trigger_reader = self._trigger_source = None
        if reader is not None:
            reader.__exit__(None, None, None)
        if source is not None:
            source.close()

    def _prepare(self, table: CameraTable, settings: AcquisitionSettings) -> None:
        crop = settings.crop
        if self.deterministic:
            if self._ramp is None or self._ramp.shape != crop.shape:
                self._ramp = _ramp(crop.shape)
            return
        self._ramp = None
        spec = table.readout(settings.readout)
        sigma = (
            table.sim.read_noise_adu
            if table.sim.read_noise_adu is not None
            else spec.read_noise / spec.gain
        )
        noise_key = (crop.shape, settings.readout, sigma, table.sim.bias)
        if noise_key != self._noise_key:
            rng = np.random.default_rng(self._seed)
            n = crop.width * crop.height + _NOISE_OFFSETS * _NOISE_STRIDE
            buf = rng.standard_normal(n, dtype=np.float32)
            buf *= np.float32(sigma)
            buf += np.float32(table.sim.bias)
            np.clip(buf, 0, 65535, out=buf)
            self._noise = np.rint(buf).astype(np.uint16)
            self._noise_key = noise_key
        scene_key = (crop, settings.tint, self.defocus)
        if scene_key != self._scene_key:
            self._scene = self._make_scene(table, crop, settings.tint)
            self._scene_key = scene_key

    def _make_scene(
        self, table: CameraTable, crop: CropMode, tint: float
    ) -> NDArray[np.uint16] | None:
        sim = table.sim
        blur = math.hypot(1.0, self.defocus / DEPTH_OF_FOCUS)
        fwhm, peak = sim.psf_fwhm * blur, sim.peak_rate / blur**2
        rate = np.zeros(crop.shape, dtype=np.float32)
        pupil = crop.scene == "pupil" or sim.scene == "pupil"
        if pupil:
            cx, cy = sim.source if sim.source is not None else (
                crop.x0 + crop.width / 2, crop.y0 + crop.height / 2
            )  # fmt: skip
            _pupil(rate, cx - crop.x0, cy - crop.y0, sim.pupil_radius, sim.pupil_rate)
        elif crop.hotspots:
            for spot in crop.hotspots:
                _psf(rate, spot.x - crop.x0, spot.y - crop.y0, peak, fwhm)
        elif sim.source is not None:
            _psf(rate, sim.source[0] - crop.x0, sim.source[1] - crop.y0, peak, fwhm)
        if not rate.any():
            return None
        rate *= np.float32(tint)
        ceiling = 65535.0 - (sim.bias + 8 * 64)  # leave room for bias + noise: no wrap-around
        np.clip(rate, 0, ceiling, out=rate)
        return np.rint(rate).astype(np.uint16)


class SimulatedTrigger:
    """A shared trigger source: a tiny stream whose every write is one trigger.

    Cameras in external-trigger mode with ``SimulatedBackend(trigger_stream=name)``
    (``vampires camstart vcam1 --sim --trigger-stream NAME``) take one frame per
    write, with the write's acquisition time as the frame time, like the
    VAMPIRES trigger micro-controller firing both cameras.

    Parameters
    ----------
    name
        Stream name of the trigger source.
    rate
        Trigger rate [Hz] for :meth:`start`; 0 for manual :meth:`fire` only.
    shm_dir
        Shared-memory folder (default: the config's).
    """

    def __init__(self, name: str, *, rate: float = 0.0, shm_dir: ShmDir = None) -> None:
        from vampires.stream import Stream

        if rate < 0:
            msg = f"trigger {name}: rate must be >= 0 Hz (got {rate})"
            raise CameraError(msg)
        self.name = name
        self.rate = rate
        # a circular buffer: a camera descheduled for a moment still sees every
        # trigger edge, in order, as hardware does (its reader catches up)
        self._stream = Stream.create(
            name,
            _TRIGGER_SHAPE,
            np.uint8,
            nkeywords=4,
            circular_buffer=_TRIGGER_BUFFER,
            exist_ok=True,
            shm_dir=shm_dir,
        )
        self._pulse = np.ones(_TRIGGER_SHAPE, dtype=np.uint8)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.count = 0

    def fire(self) -> float:
        """Fire one trigger now; return its time [unix s]."""
        now = time.time()
        with self._lock:
            self._stream.write(self._pulse, acquisition_time=now)
            self.count += 1
        return now

    def start(self) -> None:
        """Fire at :attr:`rate` Hz from a background thread until :meth:`stop`."""
        if self.rate <= 0:
            msg = f"trigger {self.name}: set a rate > 0 to run it"
            raise CameraError(msg)
        if self._thread is not None:
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name=f"trigger-{self.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        period = 1.0 / self.rate
        t0 = time.perf_counter()
        k = 1
        while not self._stop.is_set():
            delay = t0 + k * period - time.perf_counter()
            if delay > 0 and self._stop.wait(delay):
                break
            self.fire()
            k += 1

    def stop(self) -> None:
        """Stop the background thread (idempotent)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def close(self, *, destroy: bool = True) -> None:
        """Stop and remove the trigger stream (idempotent)."""
        self.stop()
        if destroy:
            self._stream.destroy()
        else:
            self._stream.close()

    def __enter__(self) -> SimulatedTrigger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
