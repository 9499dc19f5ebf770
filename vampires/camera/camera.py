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
import json
import logging
import math
import os
import threading
import time
from collections import deque
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import attrs
import numpy as np

from vampires.camera.backends.base import AcquisitionSettings, Backend
from vampires.camera.keywords import (
    MANAGED_KEYWORDS,
    BenchState,
    KeywordValue,
    camera_keywords,
    check_keywords,
)
from vampires.camera.modes import (
    CameraTable,
    CropMode,
    ReadoutMode,
    _parse_readout_mode,
    frame_rate,
    load_camera_table,
    parse_data_type,
)
from vampires.config import Config
from vampires.errors import (
    CameraError,
    CameraTimeout,
    CommandError,
    ConfigError,
    ControlTimeout,
    DaemonNotRunning,
    KeywordError,
    StreamError,
)

if TYPE_CHECKING:
    from numpy.typing import NDArray

    from vampires.stream import Stream

__all__ = ["NKEYWORDS", "Camera", "CameraStatus", "RemoteCamera"]

logger = logging.getLogger(__name__)

#: Keyword slots of a camera stream: ~80 camera keywords + room for users.
NKEYWORDS = 200
_WAIT_SLICE = 0.2  # [s] longest block in the backend, so stop() is prompt
_AUX_PERIOD = 0.5  # [s] MFRATE / DET-TMP refresh
_STATE_VERSION = 1


def _check_bool(value: object, what: str, camera: str) -> bool:
    if not isinstance(value, bool | np.bool_):
        msg = (
            f"camera {camera}: {what} must be True or False (got {value!r}); "
            "strings such as 'disable' are refused on purpose"
        )
        raise ConfigError(msg)
    return bool(value)


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
        fields["readout_mode"] = _parse_readout_mode(data["readout_mode"])
        return cls(**fields)


@attrs.frozen(kw_only=True)
class _State:
    """What survives restarts (the JSON state file)."""

    crop: CropMode
    readout: ReadoutMode
    tint: float
    fps: float
    external_trigger: bool
    data_type: str = "TEST"
    user: dict[str, KeywordValue] = attrs.field(factory=dict)
    crop_generation: int = 0
    bench: BenchState = attrs.field(factory=BenchState)

    @property
    def settings(self) -> AcquisitionSettings:
        return AcquisitionSettings(
            crop=self.crop,
            readout=self.readout,
            tint=self.tint,
            fps=self.fps,
            external_trigger=self.external_trigger,
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "version": _STATE_VERSION,
            "crop": self.crop.to_dict(),
            "readout": self.readout.value,
            "tint": self.tint,
            "fps": self.fps,
            "external_trigger": self.external_trigger,
            "data_type": self.data_type,
            "user": dict(self.user),
            "crop_generation": self.crop_generation,
            "bench": attrs.asdict(self.bench),
        }


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
    ) -> None:
        self._config = config if config is not None else Config.load()
        self.table = table if table is not None else load_camera_table(name, config=self._config)
        self.name = name
        if backend is None:
            from vampires.camera.backends.simulated import SimulatedBackend

            backend = SimulatedBackend(shm_dir=self._config.shm_dir)
        self.backend: Backend = backend
        self._state_path = self._config.control_dir / f"camera-{name}.json"
        saved = self._load_state()
        self._state = self._initial_state(
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
    def connect(
        name: str, *, timeout: float = 5.0, shm_dir: Path | str | None = None
    ) -> RemoteCamera:
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
        remote = RemoteCamera(name, timeout=timeout, shm_dir=shm_dir)
        try:
            remote.ping()
        except BaseException:
            remote.close()
            raise
        return remote

    def _load_state(self) -> dict[str, Any]:
        try:
            raw = json.loads(self._state_path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            logger.warning("camera %s: ignoring unreadable state file %s: %s",
                           self.name, self._state_path, exc)  # fmt: skip
            return {}
        if not isinstance(raw, dict) or raw.get("version") != _STATE_VERSION:
            logger.warning("camera %s: ignoring state file %s of another version",
                           self.name, self._state_path)  # fmt: skip
            return {}
        return raw

    def _initial_state(
        self,
        restored: dict[str, Any] | None,
        saved: dict[str, Any],
        *,
        crop: str | CropMode | None,
        readout: str | ReadoutMode | None,
        tint: float | None,
        fps: float | None,
        external_trigger: bool | None,
        data_type: str | None,
    ) -> _State:
        old = restored or {}
        table = self.table

        def restored_crop() -> CropMode | None:
            if "crop" not in old:
                return None
            try:
                return table.crop(CropMode.from_dict(old["crop"]))
            except ConfigError as exc:
                logger.warning("camera %s: saved crop not usable (%s); using the default",
                               self.name, exc)  # fmt: skip
                return None

        crop_mode = table.crop(crop) if crop is not None else restored_crop()
        crop_mode = crop_mode if crop_mode is not None else table.crop(table.default_crop)
        mode = _parse_readout_mode(
            readout if readout is not None else old.get("readout", table.default_readout)
        )
        table.readout(mode)
        ext = (
            external_trigger if external_trigger is not None else old.get("external_trigger", False)
        )
        ext = _check_bool(ext, "external_trigger", self.name)
        if tint is not None:
            t = table.check_tint(tint)
        elif crop is None and "tint" in old:
            t = table.check_tint(old["tint"])
        else:
            t = table.check_tint(crop_mode.tint or 1e-3)
        ro = table.readout_time(crop_mode, mode)
        if table.exposure_sets_rate:
            if fps is not None:
                t = 1.0 / table.check_fps(fps, crop_mode, mode)
            rate = frame_rate(t, ro, external=ext)
        else:
            wanted = fps if fps is not None else old.get("fps") if crop is None else None
            wanted = (
                wanted if wanted is not None else crop_mode.fps or table.max_fps(crop_mode, mode)
            )
            rate = table.check_fps(wanted, crop_mode, mode)
            if t > 1.0 / rate:
                if tint is not None:
                    msg = (
                        f"camera {self.name}: exposure {t:g} s is longer than the frame "
                        f"period 1/{rate:g} Hz; lower the frame rate"
                    )
                    raise ConfigError(msg)
                t = 1.0 / rate
        dt = parse_data_type(data_type if data_type is not None else saved.get("data_type", "TEST"))
        user = saved.get("user", {})
        user = dict(user) if isinstance(user, dict) else {}
        try:
            check_keywords(user)
        except KeywordError as exc:
            logger.warning("camera %s: dropping invalid saved user keywords (%s)", self.name, exc)
            user = {}
        bench_raw = saved.get("bench", {})
        try:
            bench = BenchState(**bench_raw) if isinstance(bench_raw, dict) else BenchState()
        except TypeError:
            bench = BenchState()
        gen = saved.get("crop_generation", 0)
        return _State(
            crop=crop_mode,
            readout=mode,
            tint=t,
            fps=rate,
            external_trigger=ext,
            data_type=dt,
            user={k: v for k, v in user.items() if k not in MANAGED_KEYWORDS},
            crop_generation=gen if isinstance(gen, int) else 0,
            bench=bench,
        )

    def _save_state(self) -> None:
        path = self._state_path
        try:
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(json.dumps(self._state.to_json(), indent=1))
            tmp.replace(path)
        except OSError as exc:
            logger.warning("camera %s: could not save state to %s: %s", self.name, path, exc)

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

    def stop(self, timeout: float = 5.0) -> None:
        """Stop acquiring (idempotent); the stream file stays.

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
            self.stop()
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
        assert stream is not None  # noqa: S101 - opened before the thread starts
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
            self._open_stream()
            assert self._stream is not None  # noqa: S101 - just opened
            stream = self._stream
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
    def _keywords(self, state: _State) -> dict[str, tuple[KeywordValue, str]]:
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

    def _open_stream(self) -> None:
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

    def _write_keywords(self) -> None:
        stream = self._stream
        if stream is None:
            return
        with self._lock:
            stream.keywords.update(self._keywords(self._state))

    # -- applying changes ----------------------------------------------------------------
    def _apply(self, new: _State, *, restart: bool, new_stream: bool = False) -> None:
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
        state: _State,
        *,
        crop: CropMode | None = None,
        readout: ReadoutMode | None = None,
        external: bool | None = None,
    ) -> _State:
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
            parsed = _parse_readout_mode(mode)
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
            flag = _check_bool(enable, "external trigger", self.name)
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


# ---------------------------------------------------------------------------------- remote
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

    def __init__(
        self, name: str, *, timeout: float = 5.0, shm_dir: Path | str | None = None
    ) -> None:
        from vampires.control import ControlClient

        self.name = name
        self.timeout = timeout
        self._shm_dir = shm_dir
        self._client = ControlClient("camera", name, timeout=timeout, shm_dir=shm_dir)

    def _not_running(self, why: str) -> CameraError:
        from vampires.camera.modes import known_cameras

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
        return _parse_readout_mode(self._call("set_readout_mode", slow=True, mode=value)["mode"])

    @property
    def external_trigger(self) -> bool:
        """External trigger on."""
        return self.status().external_trigger

    def set_external_trigger(self, enable: bool) -> bool:
        """See :meth:`Camera.set_external_trigger`."""
        _check_bool(enable, "external trigger", self.name)
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
