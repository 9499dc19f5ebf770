"""`Camera`: the typed handle on one camera (local), and its remote twin.

A local :class:`Camera` owns a :class:`~vampires.camera.backends.base.Backend`,
the stream ``<name>`` (``$MILK_SHM_DIR/<name>.im.shm``, uint16, numpy shape
``(height, width)`` of the crop) and one acquisition thread that waits for
each frame from the backend and publishes it with ``Stream.write_with`` (the
backend fills the shared memory directly: zero copy), stamping
``_MAQTIME`` with every frame and refreshing ``MFRATE`` / ``DET-TMP`` about
twice a second. :meth:`Camera.connect` returns a :class:`RemoteCamera` with the
same API that talks to a camera daemon (``vampires camstart``).

Rules the API keeps:

- Every setter validates its argument against the camera table first and
  raises :class:`~vampires.errors.ConfigError` with nothing changed: a bad
  crop name never stops the acquisition (camstack stopped the grabber, then
  failed). If the backend itself fails while applying a valid change, the
  camera goes back to the previous settings and raises
  :class:`~vampires.errors.CameraError`.
- ``DATA-TYP`` and every user keyword (``set_keyword``) are kept in the
  camera's state file (``$MILK_SHM_DIR/vampires/camera-<name>.json``) and
  rewritten after every restart, crop change and readout change (camstack
  reset them to ``TEST``). The last crop, readout mode, exposure, frame rate
  and trigger mode are kept there too, so a restarted camera comes back as it
  was unless told otherwise.

One writer per stream: a started camera holds an exclusive ``flock`` on
``$MILK_SHM_DIR/vampires/camera-<name>.writer.lock``, so a second ``Camera``
(or a local one next to a daemon) is refused instead of interleaving frames.

How consumers notice a crop change: when the frame size changes the stream
file is re-created (new inode), so an open :class:`~vampires.stream.Stream`
reports ``is_stale()`` and must be re-opened; in every case (also for a crop
of the same size, e.g. STANDARD -> NPBS) the keyword ``_CROPGEN`` increases by
one and ``PRD-MIN1/2``, ``PRD-RNG1/2`` and ``_CROP`` describe the new crop.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import math
import os
import threading
import time
import warnings
from collections import deque
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import attrs
import numpy as np

from vampires._checks import ShmDir, check_bool
from vampires.camera.backends.base import Backend
from vampires.camera.keywords import (
    MANAGED_KEYWORDS,
    BenchState,
    KeywordValue,
    camera_keywords,
    check_keywords,
)
from vampires.camera.modes import (
    CropMode,
    ReadoutMode,
    frame_rate,
    parse_data_type,
    parse_readout_mode,
)
from vampires.camera.state import CameraState, load_state, resolve_state, save_state
from vampires.camera.status import CameraStatus
from vampires.camera.table import CameraTable, load_camera_table
from vampires.config import Config
from vampires.errors import (
    CameraError,
    CameraTimeout,
    ConfigError,
    KeywordError,
    StreamError,
)

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from vampires.camera.remote import RemoteCamera
    from vampires.stream import Stream

__all__ = ["NKEYWORDS", "Camera", "CameraStatus"]

logger = logging.getLogger(__name__)

#: Keyword slots of a camera stream: ~80 camera keywords + room for users.
NKEYWORDS = 200
_WAIT_SLICE = 0.2  # [s] longest block in the backend, so stop() is prompt
_AUX_PERIOD = 0.5  # [s] MFRATE / DET-TMP refresh
_STATE_VERSION = 1


class Camera:
    """One camera: backend, stream and acquisition thread.

    Parameters
    ----------
    name
        Camera name (``vcam1``, ``vcam2``, ``vpupcam``); also the stream name.
    backend
        The driver; default :class:`~vampires.camera.backends.simulated.SimulatedBackend`.
    table
        Camera table; default ``load_camera_table(name, config=config)``.
    config
        Settings (shm dir, site tables); default :meth:`Config.load`.
    crop, readout, tint, fps, external_trigger
        Start-up settings; each defaults to the saved state, else the table
        (default crop, its default exposure, FAST, internal trigger).
    data_type
        ``DATA-TYP``; default the saved one, else ``TEST``.
    restore
        Read the state file (default). False starts from the table defaults
        (the data type and user keywords are still restored).
    shm_dir
        Shared-memory folder of the stream and state files (overrides
        ``config.shm_dir``); default ``$MILK_SHM_DIR``.

    Raises
    ------
    ConfigError
        Unknown camera or invalid settings (nothing started).

    Examples
    --------
    >>> with Camera("vcam1", crop="MBI") as cam:
    ...     cam.set_tint(2e-3)
    ...     cam.set_data_type("OBJECT")
    ...     print(cam.status().line())
    """

    def __init__(
        self,
        name: str,
        *,
        backend: Backend | None = None,
        table: CameraTable | None = None,
        config: Config | None = None,
        crop: str | CropMode | None = None,
        readout: str | ReadoutMode | None = None,
        tint: float | None = None,
        fps: float | None = None,
        external_trigger: bool | None = None,
        data_type: str | None = None,
        restore: bool = True,
        shm_dir: ShmDir = None,
    ) -> None:
        if config is None:
            config = Config.load(shm_dir=shm_dir)
        elif shm_dir is not None:
            config = attrs.evolve(config, shm_dir=shm_dir)
        self._config = config
        self.table = table if table is not None else load_camera_table(name, config=self._config)
        self.name = name
        if backend is None:
            from vampires.camera.backends.simulated import SimulatedBackend

            backend = SimulatedBackend(shm_dir=self._config.shm_dir)
        self.backend: Backend = backend
        self._state_path = self._config.control_dir / f"camera-{name}.json"
        saved = load_state(self._state_path, name)
        self._state = resolve_state(
            self.table,
            name,
            saved if restore else None,
            saved,
            crop=crop,
            readout=readout,
            tint=tint,
            fps=fps,
            external_trigger=external_trigger,
            data_type=data_type,
        )
        self._lock = threading.RLock()  # held while writing frames or keywords
        self._control = threading.Lock()  # serialises setters
        self._stream: Stream | None = None
        self._thread: threading.Thread | None = None
        self._halt = threading.Event()
        self._opened = False
        self._closed = False
        self._error: str | None = None
        self._times: deque[float] = deque(maxlen=4096)
        self._measured = 0.0
        self._temperature = math.nan
        self._last_aux = 0.0
        self._writer_fd: int | None = None

    # -- construction helpers --------------------------------------------------------
    @staticmethod
    def connect(name: str, *, timeout: float = 5.0, shm_dir: ShmDir = None) -> RemoteCamera:
        """Return a handle on the camera daemon ``name`` (``vampires camstart``).

        Parameters
        ----------
        name
            Camera name.
        timeout
            Seconds to wait for each reply (crop changes get more).
        shm_dir
            Shm folder of the daemon; default: current resolution.

        Returns
        -------
        RemoteCamera
            Same API as :class:`Camera`; errors are the same classes.

        Raises
        ------
        CameraError
            No daemon runs for ``name`` (the message says how to start one).
        """
        from vampires.camera.remote import RemoteCamera

        remote = RemoteCamera(name, timeout=timeout, shm_dir=shm_dir)
        try:
            remote.ping()
        except BaseException:
            remote.close()
            raise
        return remote

    def _save_state(self) -> None:
        save_state(self._state_path, self._state, self.name)

    # -- life cycle ------------------------------------------------------------------
    def start(self) -> None:
        """Open the backend, create the stream and start acquiring.

        Idempotent while running.

        Raises
        ------
        CameraError
            The backend failed to start, or the camera was closed.
        """
        with self._control:
            self._check_not_closed()
            if self._thread is not None:
                return
            self._take_writer_lock()
            try:
                if not self._opened:
                    self.backend.open(self.table)
                    self._opened = True
                self.backend.configure(self._state.settings)
                self._open_stream()
                self.backend.start()
            except BaseException:
                self._release_writer_lock()
                raise
            self._save_state()
            self._start_thread()
            logger.info("camera %s: started (%s, %s, %s, %.2f Hz)", self.name,
                        self.backend.kind, self._state.crop.name,
                        self._state.readout.value, self._state.fps)  # fmt: skip

    def pause(self, timeout: float = 5.0) -> None:
        """Pause acquiring (idempotent); the stream file and settings stay, start() resumes.

        Parameters
        ----------
        timeout
            Seconds to wait for the acquisition thread.

        Raises
        ------
        CameraTimeout
            The acquisition thread did not stop in time.
        """
        with self._control:
            self._stop_thread(timeout)
            self.backend.stop()
            if self._stream is not None:
                self._stream.close()
                self._stream = None
            self._release_writer_lock()

    def stop(self, timeout: float = 5.0) -> None:
        """Pause acquiring: the deprecated name of :meth:`pause` (stop now ends a daemon).

        .. deprecated:: issue 17
           Use :meth:`pause`.
        """
        warnings.warn(
            "Camera.stop() is deprecated: use Camera.pause() (stop now means ending a daemon)",
            DeprecationWarning,
            stacklevel=2,
        )
        self.pause(timeout)

    def _take_writer_lock(self) -> None:
        """Be the only writer of the stream: flock ``camera-<name>.writer.lock``."""
        if self._writer_fd is not None:
            return
        path = self._config.control_dir / f"camera-{self.name}.writer.lock"
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            msg = f"camera {self.name}: cannot create its lock file {path}: {exc}"
            raise CameraError(msg) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            msg = (
                f"camera {self.name} is already acquiring (another Camera or a camera daemon "
                f"writes stream {self.name}); use Camera.connect({self.name!r}) or stop it first"
            )
            raise CameraError(msg) from None
        self._writer_fd = fd

    def _release_writer_lock(self) -> None:
        fd, self._writer_fd = self._writer_fd, None
        if fd is not None:
            os.close(fd)  # releases the flock

    def close(self) -> None:
        """Stop and release the backend (idempotent)."""
        if self._closed:
            return
        try:
            self.pause()
        finally:
            self.backend.close()
            self._closed = True

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def running(self) -> bool:
        """Acquisition thread alive."""
        return self._thread is not None and self._thread.is_alive()

    def _check_not_closed(self) -> None:
        if self._closed:
            msg = f"camera {self.name}: closed; create a new Camera"
            raise CameraError(msg)

    # -- thread ------------------------------------------------------------------------
    def _start_thread(self) -> None:
        self._halt.clear()
        self._error = None
        self._times.clear()
        self._thread = threading.Thread(target=self._run, name=f"camera-{self.name}", daemon=True)
        self._thread.start()

    def _stop_thread(self, timeout: float = 5.0) -> None:
        thread = self._thread
        if thread is None:
            return
        self._halt.set()
        thread.join(timeout)
        if thread.is_alive():
            msg = f"camera {self.name}: acquisition thread did not stop within {timeout:g} s"
            raise CameraTimeout(msg)
        self._thread = None

    def _run(self) -> None:
        backend, stream = self.backend, self._stream
        if stream is None:  # cannot happen: start() opens the stream before the thread
            self._error = "CameraError: no stream"
            return
        halt, lock, times = self._halt, self._lock, self._times
        try:
            while not halt.is_set():
                timing = backend.wait_frame(_WAIT_SLICE)
                now = time.monotonic()
                if timing is not None:
                    counter = stream.cnt0 + 1

                    def fill(view: NDArray[Any], counter: int = counter) -> None:
                        backend.read_frame(view, counter=counter)

                    with lock:
                        stream.write_with(
                            fill,
                            keywords={"_MAQTIME": round(timing.acquisition_time * 1e6)},
                            acquisition_time=timing.acquisition_time,
                        )
                    times.append(timing.acquisition_time)
                if now - self._last_aux >= _AUX_PERIOD:
                    self._last_aux = now
                    stream = self._aux(stream)
        except (CameraError, StreamError) as exc:
            self._error = f"{type(exc).__name__}: {exc}"
            logger.exception("camera %s: acquisition stopped", self.name)

    def _aux(self, stream: Stream) -> Stream:
        """Refresh MFRATE / DET-TMP; re-create the stream if its file was removed."""
        if stream.is_stale():  # e.g. `vampires stream rm vcam1` while running
            logger.warning("camera %s: stream file vanished or was replaced; re-creating it",
                           self.name)  # fmt: skip
            stream = self._open_stream()
        times = self._times
        if len(times) >= 2 and time.time() - times[-1] < 2.0:
            window = [t for t in times if t >= times[-1] - 2.0]
            span = window[-1] - window[0]
            self._measured = (len(window) - 1) / span if span > 0 else 0.0
        else:
            self._measured = 0.0
        temperature = self.backend.temperature()
        aux: dict[str, tuple[KeywordValue, str]] = {
            "MFRATE": (self._measured, "[Hz] Measured frame rate")
        }
        if math.isfinite(temperature):  # NaN: the device has no reading (no NaN in FITS)
            self._temperature = temperature
            aux["DET-TMP"] = (temperature, "[K] Detector temperature")
        aux.update(_backend_keywords(self.backend))
        with self._lock:
            stream.keywords.update(aux)
        return stream

    # -- stream --------------------------------------------------------------------------
    def _keywords(self, state: CameraState) -> dict[str, tuple[KeywordValue, str]]:
        temperature = self._temperature
        if not math.isfinite(temperature):
            temperature = self.backend.temperature() if self._opened else 0.0
            temperature = temperature if math.isfinite(temperature) else 0.0
            self._temperature = temperature
        return camera_keywords(
            self.table,
            crop=state.crop,
            readout=state.readout,
            tint=state.tint,
            fps=state.fps,
            external_trigger=state.external_trigger,
            data_type=state.data_type,
            temperature=temperature,
            measured_fps=self._measured,
            bench=state.bench,
            crop_generation=state.crop_generation,
            user=state.user,
        )

    def _open_stream(self) -> Stream:
        from vampires.stream import Stream, suggested_circular_buffer

        crop = self._state.crop
        old = self._stream
        # frames kept for readers that fall behind (a logger descheduled for a
        # few frame periods catches up: Stream.reader(catch_up=True))
        cbsize = suggested_circular_buffer(crop.shape, np.uint16)
        stream = Stream.create(
            self.name,
            crop.shape,
            np.uint16,
            nkeywords=NKEYWORDS,
            circular_buffer=cbsize,
            exist_ok=True,
            shm_dir=self._config.shm_dir,
        )
        if stream.nkeywords < NKEYWORDS or stream.circular_buffer != cbsize:
            stream.destroy()  # an older stream of the same shape, laid out differently
            stream = Stream.create(self.name, crop.shape, np.uint16, nkeywords=NKEYWORDS,
                                   circular_buffer=cbsize,
                                   shm_dir=self._config.shm_dir)  # fmt: skip
        with self._lock:
            stream.keywords.update(self._keywords(self._state))
            self._stream = stream
        if old is not None and old is not stream:
            old.close()
        return stream

    def _write_keywords(self) -> None:
        stream = self._stream
        if stream is None:
            return
        with self._lock:
            stream.keywords.update(self._keywords(self._state))

    # -- applying changes ----------------------------------------------------------------
    def _apply(self, new: CameraState, *, restart: bool, new_stream: bool = False) -> None:
        """Switch to ``new`` (already validated); roll back if the backend fails."""
        old = self._state
        if self._thread is None:  # stopped: remember for the next start
            self._state = new
            self._save_state()
            return
        if not restart:
            try:
                with self._lock:
                    self.backend.configure(new.settings)
                    self._state = new
                    self._write_keywords()
            except (CameraError, StreamError):
                self._state = old
                with contextlib.suppress(CameraError):
                    self.backend.configure(old.settings)
                raise
            self._save_state()
            return
        self._stop_thread()
        self.backend.stop()
        try:
            self.backend.configure(new.settings)
            self._state = new
            if new_stream:
                self._open_stream()
            else:
                self._write_keywords()
            self.backend.start()
        except (CameraError, StreamError) as exc:
            logger.error("camera %s: change failed (%s); restoring previous settings",
                         self.name, exc)  # fmt: skip
            self._state = old
            self.backend.stop()
            self.backend.configure(old.settings)
            self._open_stream()
            self.backend.start()
            self._start_thread()
            msg = f"camera {self.name}: backend refused the change ({exc}); previous settings kept"
            raise CameraError(msg) from exc
        self._save_state()
        self._start_thread()

    # -- crop ------------------------------------------------------------------------------
    @property
    def crop(self) -> CropMode:
        """Crop really read (snapped to the sensor's alignment)."""
        return self._state.crop

    def set_crop(self, crop: str | CropMode) -> CropMode:
        """Change the crop; re-creates the stream when the frame size changes.

        Parameters
        ----------
        crop
            A crop name of the camera table (case-insensitive) or a CropMode.

        Returns
        -------
        CropMode
            The crop really read.

        Raises
        ------
        ConfigError
            Unknown name or a crop that does not fit (nothing changed, the
            camera keeps running).
        CameraError
            The backend failed; previous crop restored.
        """
        with self._control:
            self._check_not_closed()
            mode = self.table.crop(crop)
            if mode == self._state.crop:
                return mode  # already there: no restart, consumers see no change
            new = self._retimed(self._state, crop=mode)
            new = attrs.evolve(new, crop_generation=self._state.crop_generation + 1)
            self._apply(new, restart=True, new_stream=True)
            logger.info("camera %s: crop %s %dx%d at (%d, %d)", self.name, mode.name,
                        mode.width, mode.height, mode.x0, mode.y0)  # fmt: skip
            return mode

    def _retimed(
        self,
        state: CameraState,
        *,
        crop: CropMode | None = None,
        readout: ReadoutMode | None = None,
        external: bool | None = None,
    ) -> CameraState:
        """Keep the exposure, recompute the rate for a new crop/readout/trigger."""
        crop = crop if crop is not None else state.crop
        readout = readout if readout is not None else state.readout
        ext = external if external is not None else state.external_trigger
        table = self.table
        if table.exposure_sets_rate:
            fps = frame_rate(state.tint, table.readout_time(crop, readout), external=ext)
            return attrs.evolve(state, crop=crop, readout=readout, external_trigger=ext, fps=fps)
        fps = min(state.fps, table.max_fps(crop, readout))
        tint = min(state.tint, 1.0 / fps)
        return attrs.evolve(
            state, crop=crop, readout=readout, external_trigger=ext, fps=fps, tint=tint
        )

    # -- exposure and rate -------------------------------------------------------------------
    @property
    def tint(self) -> float:
        """Exposure time [s]."""
        return self._state.tint

    def set_tint(self, tint: float) -> float:
        """Set the exposure time.

        On the ORCA-Quest the frame rate follows (internal trigger:
        ``1 / max(tint, readout)``); on the Flea3 the exposure must fit in the
        frame period.

        Parameters
        ----------
        tint
            Exposure [s].

        Returns
        -------
        float
            The exposure set.

        Raises
        ------
        ConfigError
            Out of the camera's range (nothing changed).
        """
        with self._control:
            self._check_not_closed()
            t = self.table.check_tint(tint)
            state = self._state
            if self.table.exposure_sets_rate:
                ro = self.table.readout_time(state.crop, state.readout)
                new = attrs.evolve(
                    state, tint=t, fps=frame_rate(t, ro, external=state.external_trigger)
                )
            else:
                if t > 1.0 / state.fps * (1 + 1e-9):
                    msg = (
                        f"camera {self.name}: exposure {t:g} s is longer than the frame period "
                        f"({1.0 / state.fps:g} s at {state.fps:g} Hz); lower the frame rate first"
                    )
                    raise ConfigError(msg)
                new = attrs.evolve(state, tint=t)
            self._apply(new, restart=False)
            return t

    @property
    def fps(self) -> float:
        """Frame rate [Hz] (``FRATE``)."""
        return self._state.fps

    @property
    def max_fps(self) -> float:
        """Highest frame rate of the current crop and readout mode [Hz]."""
        return self.table.max_fps(self._state.crop, self._state.readout)

    @property
    def measured_fps(self) -> float:
        """Measured frame rate over the last ~2 s [Hz] (``MFRATE``)."""
        return self._measured

    def set_fps(self, fps: float) -> float:
        """Set the frame rate.

        On the ORCA-Quest this sets the exposure to ``1 / fps`` (as camstack
        does); on the Flea3 the rate is set and the exposure shortened to fit.

        Parameters
        ----------
        fps
            Frame rate [Hz], at most :attr:`max_fps`.

        Returns
        -------
        float
            The frame rate now in effect (``FRATE``).

        Raises
        ------
        ConfigError
            Above the maximum of the crop (the message gives it), or not a
            positive number (nothing changed).
        """
        with self._control:
            self._check_not_closed()
            state = self._state
            f = self.table.check_fps(fps, state.crop, state.readout)
            if self.table.exposure_sets_rate:
                t = self.table.check_tint(1.0 / f)
                ro = self.table.readout_time(state.crop, state.readout)
                new = attrs.evolve(
                    state, tint=t, fps=frame_rate(t, ro, external=state.external_trigger)
                )
            else:
                new = attrs.evolve(state, fps=f, tint=min(state.tint, 1.0 / f))
            self._apply(new, restart=False)
            return new.fps

    # -- readout and trigger ----------------------------------------------------------------
    @property
    def readout_mode(self) -> ReadoutMode:
        """Readout mode (``U_DETMOD``)."""
        return self._state.readout

    def set_readout_mode(self, mode: str | ReadoutMode) -> ReadoutMode:
        """Change the readout mode (restarts acquisition; the stream is kept).

        Parameters
        ----------
        mode
            ``"FAST"`` or ``"SLOW"`` (case-insensitive).

        Returns
        -------
        ReadoutMode

        Raises
        ------
        ConfigError
            Unknown mode or one the camera does not have (nothing changed).
        """
        with self._control:
            self._check_not_closed()
            parsed = parse_readout_mode(mode)
            self.table.readout(parsed)
            self._apply(self._retimed(self._state, readout=parsed), restart=True)
            return parsed

    @property
    def external_trigger(self) -> bool:
        """External trigger on (``EXTTRIG``)."""
        return self._state.external_trigger

    def set_external_trigger(self, enable: bool) -> bool:
        """Switch external trigger on or off.

        Parameters
        ----------
        enable
            True for external trigger. Only a bool is accepted: a string such
            as ``"disable"`` is refused (camstack's truthiness bug enabled it).

        Returns
        -------
        bool

        Raises
        ------
        ConfigError
            Not a bool.
        """
        with self._control:
            self._check_not_closed()
            flag = check_bool(enable, f"camera {self.name}: external trigger")
            self._apply(self._retimed(self._state, external=flag), restart=False)
            return flag

    def trigger(self) -> None:
        """Fire one software trigger (external-trigger mode)."""
        self.backend.trigger()

    # -- keywords ------------------------------------------------------------------------------
    @property
    def data_type(self) -> str:
        """Subaru data type (``DATA-TYP``)."""
        return self._state.data_type

    def set_data_type(self, data_type: str) -> str:
        """Set ``DATA-TYP``; kept across restarts, crop and readout changes.

        Parameters
        ----------
        data_type
            One of :data:`vampires.camera.modes.DATA_TYPES` (case-insensitive).

        Returns
        -------
        str

        Raises
        ------
        ConfigError
            Not a Subaru data type (nothing changed).
        """
        with self._control:
            self._check_not_closed()
            dt = parse_data_type(data_type)
            self._apply(attrs.evolve(self._state, data_type=dt), restart=False)
            return dt

    @property
    def keywords(self) -> dict[str, KeywordValue]:
        """User keywords set with :meth:`set_keyword`."""
        return dict(self._state.user)

    def set_keyword(self, name: str, value: KeywordValue) -> None:
        """Set a user keyword in the stream; kept across restarts and changes.

        Parameters
        ----------
        name
            Keyword name (at most 15 printable ASCII characters, no spaces: the
            stream's limit), not one the camera manages (``EXPTIME`` ...: use
            the dedicated setter).
        value
            int, float, str (at most 15 characters) or bool.

        Raises
        ------
        ConfigError
            Managed name, bad name or value, or no free keyword slot.
        """
        with self._control:
            self._check_not_closed()
            if not isinstance(name, str):
                msg = f"camera {self.name}: keyword name must be a string (got {name!r})"  # type: ignore[unreachable]
                raise ConfigError(msg)
            if name == "DATA-TYP":
                msg = f"camera {self.name}: use set_data_type() for DATA-TYP"
                raise ConfigError(msg)
            if name in MANAGED_KEYWORDS:
                msg = (
                    f"camera {self.name}: keyword {name} is managed by the camera; "
                    "use its setter (set_tint, set_crop ...)"
                )
                raise ConfigError(msg)
            try:
                check_keywords({name: value})
            except KeywordError as exc:
                msg = f"camera {self.name}: {exc}"
                raise ConfigError(msg) from exc
            user = dict(self._state.user)
            user[name] = value
            total = len(self._keywords(attrs.evolve(self._state, user=user)))
            if total > NKEYWORDS:
                msg = f"camera {self.name}: no free keyword slot ({NKEYWORDS} in the stream)"
                raise ConfigError(msg)
            self._apply(attrs.evolve(self._state, user=user), restart=False)

    @property
    def bench(self) -> BenchState:
        """Simulated bench state used for ``OBS-MOD`` and the WCS rotation."""
        return self._state.bench

    def set_bench(self, bench: BenchState) -> None:
        """Replace the bench state (what redis tells the real camera).

        Raises
        ------
        ConfigError
            Not a BenchState.
        """
        with self._control:
            if not isinstance(bench, BenchState):
                msg = f"camera {self.name}: bench must be a BenchState (got {bench!r})"  # type: ignore[unreachable]
                raise ConfigError(msg)
            self._apply(attrs.evolve(self._state, bench=bench), restart=False)

    # -- status ----------------------------------------------------------------------------------
    @property
    def temperature(self) -> float:
        """Sensor temperature [K] (``DET-TMP``)."""
        if not self._opened:
            self._check_not_closed()
            self.backend.open(self.table)
            self._opened = True
        return self.backend.temperature()

    @property
    def stream(self) -> Stream:
        """The camera's stream while running (do not close it).

        Raises
        ------
        CameraError
            The camera is not started (no stream yet): call :meth:`start`.
        """
        stream = self._stream
        if stream is None:
            msg = (
                f"camera {self.name}: not started, so it has no stream; call start() "
                f"(or open the stream of a running camera with Stream.open({self.name!r}))"
            )
            raise CameraError(msg)
        return stream

    def status(self) -> CameraStatus:
        """Return a snapshot of the camera."""
        state = self._state
        stream = self._stream
        try:
            frames = stream.cnt0 if stream is not None and not stream.closed else 0
        except StreamError:  # closed by a concurrent crop change
            frames = 0
        temp = self._temperature if math.isfinite(self._temperature) else 0.0
        return CameraStatus(
            name=self.name,
            backend=self.backend.kind,
            running=self.running,
            crop=state.crop,
            readout_mode=state.readout,
            tint=state.tint,
            fps=state.fps,
            max_fps=self.max_fps,
            measured_fps=self._measured,
            external_trigger=state.external_trigger,
            data_type=state.data_type,
            temperature=temp,
            frames=frames,
            crop_generation=state.crop_generation,
            keywords=dict(state.user),
            error=self._error or getattr(self.backend, "error", None),
            dropped=int(getattr(self.backend, "skipped", 0)),
        )

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return (
            f"vampires.Camera({self.name!r}, {self.backend.kind}, {self._state.crop.name}, {state})"
        )


def _backend_keywords(backend: Backend) -> dict[str, tuple[KeywordValue, str]]:
    """Extra keywords a hardware backend reports (DCAM: cooler status), if any."""
    extra = getattr(backend, "keywords", None)
    if not callable(extra):
        return {}
    try:
        return dict(extra())
    except CameraError as exc:
        logger.warning("backend %s: keywords unavailable: %s", backend.kind, exc)
        return {}
