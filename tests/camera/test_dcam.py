"""The DCAM backend: pylablib's real DCAM code against a fake DCAM-API library.

The fake (:mod:`vampires.testing.fake_dcam`) implements the libdcamapi calls
pylablib makes, as C function pointers; frames come from the simulator. The
``hardware`` test at the end runs only where a real ORCA-Quest answers.
"""

from __future__ import annotations

import importlib.util
import time
from collections.abc import Iterator

import attrs
import numpy as np
import pytest

from vampires.camera.backends.base import AcquisitionSettings
from vampires.camera.backends.simulated import deterministic_frame
from vampires.camera.modes import CropMode, ReadoutMode
from vampires.camera.table import load_camera_table
from vampires.errors import CameraError
from vampires.testing.backend import BackendTests

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("pylablib") is None,
    reason="pylablib not installed (pip install 'vampires[dcam]')",
)


@pytest.fixture(scope="module")
def api():
    """One fake DCAM-API for the module (pylablib initialises its library once)."""
    from vampires.testing.fake_dcam import FakeDcamApi, FakeOrcaQuest

    return FakeDcamApi(
        [
            FakeOrcaQuest(serial="S/N: 000456", camera="vcam2"),
            FakeOrcaQuest(serial="S/N: 000123", camera="vcam1", deterministic=True),
        ]
    )


def _backend(api, **kw):
    from vampires.camera.backends.dcam import DcamBackend

    return DcamBackend(library=api, **kw)


@pytest.fixture
def vcam1(api) -> Iterator:
    backend = _backend(api, device="000123")
    backend.open(load_camera_table("vcam1"))
    yield backend
    backend.close()


class TestDcam(BackendTests):
    camera = "vcam1"

    @pytest.fixture(autouse=True)
    def _api(self, api) -> None:
        self._fake = api

    def make_backend(self):
        return _backend(self._fake, device="S/N: 000123")

    def fire_trigger(self, backend) -> None:
        self._fake.pulse()  # a pulse on the camera's trigger input


def _settings(crop: str = "STANDARD", **kw: object) -> AcquisitionSettings:
    table = load_camera_table("vcam1")
    base = AcquisitionSettings(
        crop=table.crop(crop), readout=ReadoutMode.FAST, tint=1e-3, fps=1000.0
    )
    return attrs.evolve(base, **kw)


def _grab(backend, out):
    for _ in range(40):
        timing = backend.wait_frame(0.25)
        if timing is not None:
            frame = backend._frame
            backend.read_frame(out, counter=0)
            return timing, frame
    pytest.fail("no frame from the fake DCAM camera")


def test_open_by_index_and_serial(api) -> None:
    for device, serial in (("0", "000456"), ("1", "000123"), ("S/N: 000456", "000456"),
                           ("000123", "000123"), (None, "000456")):  # fmt: skip
        table = load_camera_table("vcam2" if serial == "000456" else "vcam1")
        backend = _backend(api, device=device)
        backend.open(table)
        try:
            assert backend.label == f"C15550-20UP S/N: {serial}"
        finally:
            backend.close()
    with pytest.raises(CameraError, match=r"no camera with index or serial '999999'.*000456"):
        _backend(api, device="999999").open(load_camera_table("vcam1"))


def test_subarray_exposure_readout_reach_the_camera(vcam1, api) -> None:
    vcam1.configure(_settings("ONEARC", tint=2e-3))
    dev = api.device(1)
    assert dev.crop().x0 == 1956
    assert (dev.crop().width, dev.crop().height) == (184, 184)
    assert dev.values[0x001F0110] == pytest.approx(2e-3)
    assert dev.values[0x00402150] == 2  # subarray mode on
    assert dev.values[0x00100220] == 2  # trigger polarity positive
    assert dev.values[0x00100120] == 1  # trigger active edge
    assert dev.values[0x00200320] == 4  # cooler MAX
    vcam1.configure(_settings("ONEARC", readout=ReadoutMode.SLOW, tint=0.05))
    assert dev.values[0x00400110] == 1  # ultra quiet
    model = load_camera_table("vcam1").readout_time(dev.crop(), ReadoutMode.SLOW)
    assert vcam1.readout_time == pytest.approx(model)  # DCAM's TIMING READOUT TIME


def test_slow_readout_limits_exposure(vcam1) -> None:
    vcam1.configure(_settings(tint=1e-5))  # fine in FAST (1H = 7.2 us)
    with pytest.raises(CameraError, match=r"outside .* in SLOW readout"):
        vcam1.configure(_settings(readout=ReadoutMode.SLOW, tint=1e-5))


def test_misaligned_subarray_is_refused(vcam1, api) -> None:
    bad = CropMode(name="HALFARC", x0=1914, y0=1018, width=268, height=268)
    with pytest.raises(CameraError, match="multiples of 4"):
        vcam1.configure(_settings(crop="STANDARD").__class__(
            crop=bad, readout=ReadoutMode.FAST, tint=1e-3, fps=100.0))  # fmt: skip
    cam = vcam1._cam
    with pytest.raises(Exception, match=r"INVALIDVALUE|OUTOFRANGE"):
        cam.set_attribute_value("SUBARRAY HPOS", 1914)  # DCAM's own rule, in the fake


def test_frames_bytes_timestamps_and_lost_frames(vcam1, api) -> None:
    vcam1.configure(_settings())
    vcam1.start()
    out = np.zeros((536, 536), np.uint16)
    timing, frame = _grab(vcam1, out)
    assert np.array_equal(out, deterministic_frame((536, 536), frame.framestamp))
    assert abs(timing.acquisition_time - time.time()) < 60
    assert timing.acquisition_time == pytest.approx(frame.timestamp[0] + frame.timestamp[1] * 1e-6)
    assert vcam1.skipped == 0
    api.lose_frames(5, index=1)
    stamps = [frame.framestamp]  # the gap may come at the very next frame
    for _ in range(1000):  # frames already in DCAM's ring come first
        stamps.append(_grab(vcam1, out)[1].framestamp)
        if vcam1.skipped:
            break
    assert vcam1.skipped >= 5  # (more only if this reader fell 64 frames behind)
    assert stamps[-1] - stamps[-2] >= 6
    assert np.array_equal(out, deterministic_frame((536, 536), stamps[-1]))
    vcam1.stop()


def test_ring_overrun_is_counted_not_fatal(api) -> None:
    backend = _backend(api, device="000123", buffers=4)
    backend.open(load_camera_table("vcam1"))
    try:
        backend.configure(_settings("ONEARC", tint=1e-4))
        backend.start()
        out = np.zeros((184, 184), np.uint16)
        _grab(backend, out)
        dev = api.device(1)
        start = dev.count
        deadline = time.monotonic() + 10
        while dev.count < start + 20:  # let the camera lap the 4-frame ring
            assert time.monotonic() < deadline
            time.sleep(0.01)
        _, frame = _grab(backend, out)
        assert backend.skipped > 0
        assert np.array_equal(out, deterministic_frame((184, 184), frame.framestamp))
    finally:
        backend.close()


def test_exposure_change_on_a_camera_busy_while_capturing() -> None:
    """A camera refusing EXPOSURE TIME while capturing: stop, set, restart; frames go on."""
    from vampires.testing.fake_dcam import FakeDcamApi, FakeOrcaQuest

    busy = FakeDcamApi([FakeOrcaQuest(serial="S/N: 000789", exposure_while_busy=False)])
    backend = _backend(busy)
    backend.open(load_camera_table("vcam1"))
    try:
        backend.configure(_settings())
        backend.start()
        out = np.zeros((536, 536), np.uint16)
        _grab(backend, out)
        backend.configure(_settings(tint=3e-3))
        assert busy.device(0).values[0x001F0110] == pytest.approx(3e-3)
        assert busy.device(0).capturing
        _grab(backend, out)
    finally:
        backend.close()


def test_trigger_modes(vcam1, api) -> None:
    vcam1.configure(_settings(external_trigger=True))
    assert api.device(1).values[0x00100110] == 2  # external
    with pytest.raises(CameraError, match="software trigger"):
        vcam1.trigger()
    soft = _backend(api, device="0", trigger_source="software")
    soft.open(load_camera_table("vcam2"))
    try:
        soft.configure(
            attrs.evolve(
                _settings(external_trigger=True), crop=load_camera_table("vcam2").crop("STANDARD")
            )
        )
        assert api.device(0).values[0x00100110] == 3  # software
        soft.start()
        assert soft.wait_frame(0.1) is None
        soft.trigger()
        out = np.zeros((536, 536), np.uint16)
        _grab(soft, out)
    finally:
        soft.close()


def test_temperature_and_cooler_keywords(vcam1) -> None:
    assert vcam1.temperature() == pytest.approx(273.15 - 35.0, abs=0.2)
    assert vcam1.keywords() == {
        "U_COOLER": ("MAX", "Sensor cooler mode"),
        "U_COOLST": ("READY", "Sensor cooler status"),
    }


def test_camera_over_dcam(api) -> None:
    """The Camera handle on the DCAM backend: stream, keywords, crop, readout, trigger."""
    from vampires.camera.camera import Camera
    from vampires.stream import Stream

    with Camera(
        "vcam1", backend=_backend(api, device="000123"), crop="STANDARD", restore=False
    ) as cam:
        with Stream.open("vcam1") as stream, stream.reader() as reader:
            frame = reader.next(10.0)
            assert frame.data.shape == (536, 536)
            deadline = time.monotonic() + 10
            while "U_COOLER" not in stream.keywords:
                assert time.monotonic() < deadline, "cooler keywords never written"
                time.sleep(0.05)
            assert stream.keywords["U_COOLST"] == "READY"
            assert stream.keywords["DET-TMP"] == pytest.approx(238.15, abs=0.2)
        assert cam.status().backend == "dcam"
        cam.set_readout_mode("SLOW")
        cam.set_crop("ONEARC")
        with Stream.open("vcam1") as stream, stream.reader() as reader:
            assert reader.next(10.0).data.shape == (184, 184)
        cam.set_external_trigger(True)
        with Stream.open("vcam1") as stream:
            before = stream.cnt0
            api.pulse()
            deadline = time.monotonic() + 10
            while stream.cnt0 == before:
                assert time.monotonic() < deadline, "no frame from the trigger pulse"
                api.pulse()
                time.sleep(0.1)


def test_missing_library_is_one_line(monkeypatch) -> None:
    from vampires.camera.backends.dcam import DcamBackend, load_dcamapi
    from vampires.camera.backends.factory import BackendSpec, check_backend

    monkeypatch.setenv("VAMPIRES_DCAMAPI", "/nonexistent/libdcamapi.so")
    try:
        load_dcamapi()
    except CameraError as exc:
        text = str(exc)
        assert "libdcamapi.so not found" in text
        assert "\n" not in text
    else:
        pytest.skip("a real libdcamapi.so is installed here")
    with pytest.raises(CameraError, match="DCAM-API for Linux"):
        DcamBackend().open(load_camera_table("vcam1"))
    with pytest.raises(CameraError, match="libdcamapi"):
        check_backend(BackendSpec(kind="dcam", device="1"))


def _real_camera() -> str | None:
    """Why no real ORCA-Quest answers here, or None when one does."""
    from vampires.camera.backends.dcam import find_device, load_dcamapi

    try:
        find_device(None, library=load_dcamapi())
    except CameraError as exc:
        return str(exc)
    return None


@pytest.mark.hardware
def test_real_orca_quest_frames() -> None:
    """On the camera computer: open camera 0, read a few STANDARD frames."""
    why = _real_camera()
    if why is not None:
        pytest.skip(f"no DCAM camera answers here: {why}")
    from vampires.camera.backends.dcam import DcamBackend

    table = load_camera_table("vcam1")
    backend = DcamBackend()
    backend.open(table)
    try:
        backend.configure(_settings())
        backend.start()
        out = np.zeros((536, 536), np.uint16)
        _grab(backend, out)
        assert 150 < backend.temperature() < 320
    finally:
        backend.close()


def test_table_row_model_checked_against_dcam_readout_time(api, tmp_path, caplog) -> None:
    """A table whose line time is off by > 10 % is reported (DCAM's figure is the truth)."""
    site = tmp_path / "site.toml"
    site.write_text("[readout.FAST]\nline_time = 9e-6\n")  # the camera's is 7.2 us
    backend = _backend(api, device="000123")
    backend.open(load_camera_table("vcam1", site=site))
    try:
        with caplog.at_level("WARNING", logger="vampires.camera.backends.dcam"):
            backend.configure(_settings())
        assert "line_time" in caplog.text
        assert backend.readout_time == pytest.approx(268 * 7.2e-6)
    finally:
        backend.close()


def test_unplugged_camera_stops_acquisition_with_a_clear_error() -> None:
    """A DCAM error while waiting: the Camera stops acquiring and reports it."""
    from vampires.camera.camera import Camera
    from vampires.testing.fake_dcam import FakeDcamApi, FakeOrcaQuest

    api = FakeDcamApi([FakeOrcaQuest(serial="S/N: 000321")])
    with Camera("vcam1", backend=_backend(api), crop="ONEARC", restore=False) as cam:
        deadline = time.monotonic() + 10
        while cam.status().frames < 3:
            assert time.monotonic() < deadline, "no frames"
            time.sleep(0.02)
        api.unplug()
        while cam.status().error is None:
            assert time.monotonic() < deadline, "the pulled cable was not reported"
            time.sleep(0.02)
        assert "waiting for a frame failed" in cam.status().error
        assert "NOCAMERA" in cam.status().error
        assert not cam.running
