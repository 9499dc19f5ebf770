"""`BackendTests`: the conformance suite every camera backend must pass.

Subclass it in a test module and say how to build the backend::

    from vampires.testing.backend import BackendTests

    class TestDcam(BackendTests):
        camera = "vcam1"                  # table the backend is opened with
        software_trigger = True           # False if trigger() is unsupported

        def make_backend(self):
            return DcamBackend(unit=1)

The suite drives the backend exactly as :class:`~vampires.camera.camera.Camera`
does (see :mod:`vampires.camera.backends.base`) and checks the contract:
frames of the crop's shape and dtype land in the caller's array, acquisition
times and indices increase, live changes of exposure / rate / trigger work
while running, crop changes work across stop/start, triggers gate frames in
external-trigger mode, and stop/close are idempotent. It makes no timing
assertions (a shared CI machine is noisy): rates are measured in benchmarks.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import attrs
import numpy as np
import pytest

from vampires.camera.backends.base import AcquisitionSettings, Backend, FrameTiming
from vampires.camera.table import CameraTable, load_camera_table
from vampires.errors import CameraError

__all__ = ["BackendTests"]

_WAIT = 5.0  # [s] generous: only a hung backend should hit it


class BackendTests:
    """Conformance tests for a :class:`~vampires.camera.backends.base.Backend`."""

    #: camera table the backend is opened with
    camera: str = "vcam1"
    #: whether :meth:`Backend.trigger` fires a software trigger
    software_trigger: bool = True
    #: crops exercised (first one is the default)
    crops: tuple[str, ...] = ("STANDARD", "ONEARC")
    #: whether the device reports a sensor temperature (else NaN is the answer)
    has_temperature: bool = True

    def make_backend(self) -> Backend:
        """Return a new, unopened backend (override)."""
        raise NotImplementedError

    def fire_trigger(self, backend: Backend) -> None:
        """Fire one external trigger (override for a hardware line, e.g. a fake DCAM's input)."""
        backend.trigger()

    # -- fixtures -------------------------------------------------------------------------
    @pytest.fixture
    def table(self) -> CameraTable:
        """Load the camera table."""
        return load_camera_table(self.camera)

    @pytest.fixture
    def backend(self, table: CameraTable) -> Iterator[Backend]:
        """Yield an opened backend, closed after the test."""
        backend = self.make_backend()
        backend.open(table)
        try:
            yield backend
        finally:
            backend.close()

    def settings(
        self,
        table: CameraTable,
        crop: str | None = None,
        **kw: Any,  # noqa: ANN401
    ) -> AcquisitionSettings:
        """Return valid settings for ``crop`` at a modest rate."""
        mode = table.crop(crop or self.crops[0])
        readout = table.default_readout
        fps = min(100.0, table.max_fps(mode, readout))
        base = AcquisitionSettings(crop=mode, readout=readout, tint=min(1e-3, 1.0 / fps), fps=fps)
        return attrs.evolve(base, **kw)

    @staticmethod
    def grab(backend: Backend, out: np.ndarray[Any, Any], counter: int = 1) -> FrameTiming:
        """Wait for one frame and read it into ``out``."""
        timing = None
        for _ in range(int(_WAIT / 0.25)):
            timing = backend.wait_frame(0.25)
            if timing is not None:
                break
        assert timing is not None, "no frame within the timeout"  # noqa: S101
        backend.read_frame(out, counter=counter)
        return timing

    # -- tests ----------------------------------------------------------------------------
    def test_is_a_backend(self, backend: Backend) -> None:
        """The object satisfies the runtime-checkable protocol and names itself."""
        assert isinstance(backend, Backend)  # noqa: S101
        assert isinstance(backend.kind, str)  # noqa: S101
        assert backend.kind  # noqa: S101

    def test_frames_fill_the_callers_array(self, backend: Backend, table: CameraTable) -> None:
        """Frames have the crop's shape, are uint16, land in ``out``, times increase."""
        settings = self.settings(table)
        backend.configure(settings)
        backend.start()
        out = np.zeros(settings.crop.shape, dtype=np.uint16)
        timings = [self.grab(backend, out, counter=k) for k in range(1, 6)]
        backend.stop()
        assert out.any()  # noqa: S101
        times = [t.acquisition_time for t in timings]
        assert times == sorted(times)  # noqa: S101
        assert len(set(times)) == len(times)  # noqa: S101
        indices = [t.index for t in timings]
        assert indices == sorted(indices)  # noqa: S101
        assert all(abs(t - timings[-1].acquisition_time) < 3600 for t in times)  # noqa: S101

    def test_live_changes_while_running(self, backend: Backend, table: CameraTable) -> None:
        """Exposure, rate and trigger mode change without a restart."""
        settings = self.settings(table)
        backend.configure(settings)
        backend.start()
        out = np.zeros(settings.crop.shape, dtype=np.uint16)
        self.grab(backend, out)
        slower = attrs.evolve(settings, fps=settings.fps / 2, tint=settings.tint / 2)
        backend.configure(slower)
        self.grab(backend, out)
        backend.configure(attrs.evolve(slower, external_trigger=True))
        backend.configure(slower)
        self.grab(backend, out)
        backend.stop()

    def test_crop_change_across_restart(self, backend: Backend, table: CameraTable) -> None:
        """Stop, configure another crop and readout, start: frames of the new shape."""
        for crop in self.crops:
            for readout in table.readouts:
                settings = self.settings(table, crop, readout=readout)
                settings = attrs.evolve(
                    settings, fps=min(settings.fps, table.max_fps(settings.crop, readout))
                )
                backend.configure(settings)
                backend.start()
                out = np.zeros(settings.crop.shape, dtype=np.uint16)
                self.grab(backend, out)
                assert out.any()  # noqa: S101
                backend.stop()

    def test_external_trigger_gates_frames(self, backend: Backend, table: CameraTable) -> None:
        """In external-trigger mode frames come only from triggers."""
        if not self.software_trigger:
            pytest.skip("backend has no software trigger")
        settings = self.settings(table, external_trigger=True)
        backend.configure(settings)
        backend.start()
        assert backend.wait_frame(0.1) is None  # noqa: S101
        out = np.zeros(settings.crop.shape, dtype=np.uint16)
        self.fire_trigger(backend)
        timing = self.grab(backend, out)
        assert timing is not None  # noqa: S101
        assert backend.wait_frame(0.1) is None  # noqa: S101
        backend.stop()

    def test_temperature_is_plausible(self, backend: Backend) -> None:
        """Temperature in kelvin, finite (NaN for a device without a sensor reading)."""
        temperature = backend.temperature()
        assert isinstance(temperature, float)  # noqa: S101
        if not self.has_temperature:
            assert math.isnan(temperature)  # noqa: S101
            return
        assert math.isfinite(temperature)  # noqa: S101
        assert 150.0 < temperature < 350.0  # noqa: S101

    def test_stop_and_close_are_idempotent(self, table: CameraTable) -> None:
        """stop() and close() can be called twice; use after close raises CameraError."""
        backend = self.make_backend()
        backend.open(table)
        backend.configure(self.settings(table))
        backend.start()
        backend.stop()
        backend.stop()
        backend.close()
        backend.close()
        with pytest.raises(CameraError):
            backend.configure(self.settings(table))

    def test_read_frame_copies_exactly_the_crop(self, backend: Backend, table: CameraTable) -> None:
        """read_frame fills a C-contiguous slot of the crop's shape, nothing around it."""
        settings = self.settings(table)
        backend.configure(settings)
        backend.start()
        h, w = settings.crop.shape
        padded = np.full((h + 2, w), 0xABCD, dtype=np.uint16)
        self.grab(backend, padded[1:-1])
        backend.stop()
        assert (padded[0] == 0xABCD).all()  # noqa: S101
        assert (padded[-1] == 0xABCD).all()  # noqa: S101

    def test_wait_frame_after_stop_is_clean(self, backend: Backend, table: CameraTable) -> None:
        """A stopped backend answers wait_frame with None or CameraError (never hangs)."""
        backend.configure(self.settings(table))
        backend.start()
        backend.stop()
        try:
            result = backend.wait_frame(0.1)
        except CameraError:
            return
        assert result is None  # noqa: S101

    def test_start_needs_configure(self, table: CameraTable) -> None:
        """start() before configure() raises CameraError, not something else."""
        backend = self.make_backend()
        backend.open(table)
        try:
            with pytest.raises(CameraError):
                backend.start()
        finally:
            backend.close()
