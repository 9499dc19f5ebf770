"""The GenICam backend against Aravis's own fake GigE Vision camera on 127.0.0.1.

Skipped (with the reason) where Aravis 0.8 / PyGObject / aravis-tools are not
installed; CI installs them (``.ci/run``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import numpy as np
import pytest

from tests.helpers import wait_for
from vampires.camera.backends.base import AcquisitionSettings
from vampires.camera.table import load_camera_table
from vampires.errors import CameraError
from vampires.testing.backend import BackendTests
from vampires.testing.genicam import FakeGenicamCamera, fake_camera_available


def _aravis_missing() -> str | None:
    try:
        from vampires.camera.backends.genicam import load_aravis

        load_aravis()
    except CameraError as exc:
        return str(exc)
    return None


_WHY = _aravis_missing()
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(_WHY is not None, reason=f"Aravis unavailable: {_WHY}"),
]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeGenicamCamera]:
    """The fake camera, shared by the module (restarted by the tests that kill it)."""
    why = fake_camera_available()
    if why is not None:
        pytest.skip(f"GenICam fake camera unavailable: {why}")
    with FakeGenicamCamera(serial="VTEST01") as cam:
        yield cam


def _backend(fake: FakeGenicamCamera, **kw: object):
    from vampires.camera.backends.genicam import GenicamBackend

    return GenicamBackend(device=fake.device_id, trigger_source="Software", gain="max", **kw)  # type: ignore[arg-type]


class TestGenicam(BackendTests):
    camera = "vpupcam"
    crops = ("CROP_VPUP", "HALF")
    has_temperature = False  # the fake camera has no DeviceTemperature

    @pytest.fixture(autouse=True)
    def _fake(self, fake: FakeGenicamCamera) -> None:
        fake.start()  # no-op while running
        self._device = fake.device_id

    def make_backend(self):
        from vampires.camera.backends.genicam import GenicamBackend

        return GenicamBackend(device=self._device, trigger_source="Software", gain="max")


def _settings(crop: str = "CROP_VPUP", **kw: object) -> AcquisitionSettings:
    table = load_camera_table("vpupcam")
    base = dict(crop=table.crop(crop), readout=table.default_readout, tint=1e-3, fps=100.0)
    base.update(kw)
    return AcquisitionSettings(**base)  # type: ignore[arg-type]


def _grab(backend, out):
    for _ in range(40):
        timing = backend.wait_frame(0.25)
        if timing is not None:
            backend.read_frame(out, counter=1)
            return timing
    pytest.fail("no frame from the fake camera")


def test_crop_exposure_rate_reach_the_device(fake: FakeGenicamCamera) -> None:
    fake.start()
    backend = _backend(fake)
    backend.open(load_camera_table("vpupcam"))
    try:
        backend.configure(_settings("HALF", tint=2e-3, fps=50.0))
        cam = backend._cam
        assert tuple(cam.get_region()) == (332, 262, 664, 524)
        assert cam.get_exposure_time() == pytest.approx(2000.0)
        assert cam.get_frame_rate() == pytest.approx(50.0)
        assert cam.get_pixel_format_as_string() == "Mono16"
        backend.start()
        out = np.zeros((524, 664), np.uint16)
        _grab(backend, out)
        assert out.any()
        backend.configure(_settings("HALF", tint=5e-3, fps=20.0))  # live
        assert cam.get_exposure_time() == pytest.approx(5000.0)
        assert cam.get_frame_rate() == pytest.approx(20.0)
        with pytest.raises(CameraError, match="stop before"):
            backend.configure(_settings("CROP_VPUP"))
        dev = cam.get_device()
        backend.configure(_settings("HALF", tint=5e-3, fps=20.0, external_trigger=True))
        assert dev.get_string_feature_value("TriggerMode") == "On"
        assert dev.get_string_feature_value("TriggerSource") == "Software"
        backend.configure(_settings("HALF", tint=5e-3, fps=20.0))
        assert dev.get_string_feature_value("TriggerMode") == "Off"
    finally:
        backend.close()


def test_mono8_is_widened(fake: FakeGenicamCamera) -> None:
    fake.start()
    backend = _backend(fake, pixel_format="Mono8")
    backend.open(load_camera_table("vpupcam"))
    try:
        backend.configure(_settings())
        assert backend._cam.get_pixel_format_as_string() == "Mono8"
        backend.start()
        out = np.zeros((512, 512), np.uint16)
        _grab(backend, out)
        assert out.any()
        assert out.max() <= 255
    finally:
        backend.close()


def test_bad_device_and_bad_values_are_one_clear_error(fake: FakeGenicamCamera) -> None:
    from vampires.camera.backends.genicam import GenicamBackend

    fake.start()
    table = load_camera_table("vpupcam")
    with pytest.raises(CameraError, match=r"no camera matches NOPE-123.*Aravis-Fake-VTEST01"):
        GenicamBackend(device="NOPE-123").open(table)
    with pytest.raises(CameraError, match="pixel_format"):
        GenicamBackend(pixel_format="RGB8")
    backend = _backend(fake)
    backend.open(table)
    try:
        with pytest.raises(CameraError, match="exposure 20 s outside"):
            backend.configure(_settings(tint=20.0, fps=0.2))
        with pytest.raises(CameraError, match="software trigger"):
            GenicamBackend(device=fake.device_id).trigger()
    finally:
        backend.close()


def test_device_selected_by_serial_address_or_index(fake: FakeGenicamCamera) -> None:
    from vampires.camera.backends.genicam import GenicamBackend

    fake.start()
    table = load_camera_table("vpupcam")
    for device in ("VTEST01", "0", None):
        backend = GenicamBackend(device=device)
        backend.open(table)
        assert backend.label == fake.device_id
        backend.close()


def test_killed_camera_is_reported_and_reopened(fake: FakeGenicamCamera) -> None:
    """Fake camera killed mid-run: error reported, no exception, frames again when it is back."""
    fake.start()
    backend = _backend(fake)
    backend.open(load_camera_table("vpupcam"))
    out = np.zeros((512, 512), np.uint16)
    try:
        backend.configure(_settings(fps=50.0))
        backend.start()
        _grab(backend, out)
        fake.kill()
        deadline = time.monotonic() + 30
        while backend.error is None:
            assert time.monotonic() < deadline, "loss of the camera not noticed"
            backend.wait_frame(0.2)
        assert "stopped answering" in backend.error
        assert fake.device_id in backend.error
        fake.start()
        deadline = time.monotonic() + 30
        while True:
            assert time.monotonic() < deadline, "camera not re-opened"
            timing = backend.wait_frame(0.2)
            if timing is not None:
                backend.read_frame(out, counter=1)
                break
        assert backend.error is None
    finally:
        backend.close()
        fake.start()


def _wait(cond, timeout: float = 30.0) -> None:
    wait_for(cond, timeout, "condition not reached in time", 0.05)


def test_camstart_genicam_end_to_end(fake: FakeGenicamCamera, shm_dir, tmp_path, capsys) -> None:
    """camstart from the config file; crop/exposure/rate; frames into a Stream and a cube;
    camera killed: clear error, daemon alive; back: frames again."""
    from astropy.io import fits

    from vampires.camera.camera import Camera
    from vampires.cli import camctl, camstart, camstop
    from vampires.fitslog.logger import Logger
    from vampires.fitslog.policy import CubePolicy
    from vampires.stream import Stream

    fake.start()
    config = shm_dir / "no-config.toml"  # the file VAMPIRES_CONFIG points at (conftest)
    config.write_text(
        "[backends.vpupcam]\n"
        f'backend = "genicam:{fake.device_id}"\n'
        'gain = "max"\n'
        'trigger_source = "Software"\n'
    )
    assert camstart.main(["vpupcam", "--mode", "CROP_VPUP", "--fresh"]) == 0
    out = capsys.readouterr().out
    assert "vpupcam: started" in out
    assert "genicam" in out
    try:
        with Camera.connect("vpupcam") as cam:
            assert cam.status().backend == "genicam"
            assert cam.set_crop("HALF").shape == (524, 664)
            assert cam.set_fps(40.0) == pytest.approx(40.0)
            assert cam.set_tint(2e-3) == pytest.approx(2e-3)
            with Stream.open("vpupcam") as stream, stream.reader() as reader:
                frame = reader.next(10.0)
                assert frame.data.shape == (524, 664)
                assert frame.data.any()
                assert stream.keywords["EXPTIME"] == pytest.approx(2e-3)
                assert stream.keywords["_MAQTIME"] > 0
            policy = CubePolicy(frames_per_cube=5)
            with Logger("vpupcam", policy, dirname=tmp_path) as log:
                log.start()
                _wait(lambda: log.status().frames >= 5)
                log.pause()
                log.wait_idle(timeout=30)
            cubes = sorted(tmp_path.glob("vpupcam_*.fits"))
            assert cubes
            with fits.open(cubes[0]) as hdul:
                assert hdul[0].data.shape == (5, 524, 664)
                assert hdul[0].header["EXPTIME"] == pytest.approx(2e-3)
            fake.kill()
            _wait(lambda: cam.status().error is not None, timeout=60)
            status = cam.status()
            assert "stopped answering" in status.error
            assert fake.device_id in status.error
            assert camctl.get_fps(["-c", "vpupcam"]) == 1  # the operator sees it
            assert "vpupcam: FAILED: " in capsys.readouterr().out
            fake.start()
            _wait(lambda: cam.status().error is None, timeout=60)
            with Stream.open("vpupcam") as stream:
                before = stream.cnt0
                _wait(lambda: stream.cnt0 > before + 2)
            assert cam.crop.name == "HALF"
    finally:
        camstop.main(["vpupcam"])
        fake.start()


@pytest.mark.hardware
def test_real_genicam_camera() -> None:
    """On sonne: the first GenICam camera that is not Aravis's fake gives frames."""
    from vampires.camera.backends.genicam import GenicamBackend, list_devices

    real = [d for d in list_devices() if not d["id"].startswith("Aravis-")]
    if not real:
        pytest.skip("no GenICam camera answers here (only Aravis's fake, or none)")
    table = load_camera_table("vpupcam")
    backend = GenicamBackend(device=real[0]["id"])
    backend.open(table)
    try:
        backend.configure(_settings(tint=1e-3, fps=30.0))
        backend.start()
        out = np.zeros((512, 512), np.uint16)
        _grab(backend, out)
    finally:
        backend.close()
