from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from vampires.camera.backends.base import AcquisitionSettings
from vampires.camera.backends.simulated import (
    SimulatedBackend,
    SimulatedTrigger,
    deterministic_frame,
)
from vampires.camera.table import load_camera_table
from vampires.errors import CameraError
from vampires.testing.backend import BackendTests


class TestSimulated(BackendTests):
    def make_backend(self):
        return SimulatedBackend()


class TestSimulatedDeterministic(BackendTests):
    crops = ("ONEARC", "HALFARC")

    def make_backend(self):
        return SimulatedBackend(deterministic=True)


class TestSimulatedPupilCam(BackendTests):
    camera = "vpupcam"
    crops = ("CROP_VPUP", "HALF")

    def make_backend(self):
        return SimulatedBackend()


def _settings(camera="vcam1", crop="STANDARD", **kw):
    table = load_camera_table(camera)
    mode = table.crop(crop)
    base = {"crop": mode, "readout": table.default_readout, "tint": 1e-3, "fps": 200.0}
    base.update(kw)
    return table, AcquisitionSettings(**base)


def test_deterministic_formula():
    frame = deterministic_frame((3, 5), 10)
    flat = frame.ravel()
    assert frame.dtype == np.uint16
    assert [int(v) for v in flat[:4]] == [10, 17, 24, 31]
    big = deterministic_frame((1096, 2236), 65530)
    i = np.arange(big.size, dtype=np.int64)
    assert np.array_equal(big.ravel(), ((i * 7 + 65530) % 65536).astype(np.uint16))


def test_deterministic_backend_matches_formula():
    table, settings = _settings(crop="ONEARC")
    backend = SimulatedBackend(deterministic=True, free_run=True)
    backend.open(table)
    backend.configure(settings)
    backend.start()
    out = np.empty(settings.crop.shape, np.uint16)
    for counter in (1, 2, 70000):
        assert backend.wait_frame(1.0) is not None
        backend.read_frame(out, counter=counter)
        assert np.array_equal(out, deterministic_frame(settings.crop.shape, counter))
    backend.close()


def test_mbi_scene_has_four_psfs_at_hotspots():
    table, settings = _settings(crop="MBI")
    backend = SimulatedBackend(free_run=True)
    backend.open(table)
    backend.configure(settings)
    backend.start()
    out = np.empty(settings.crop.shape, np.uint16)
    backend.wait_frame(1.0)
    backend.read_frame(out, counter=1)
    crop = settings.crop
    bias = float(np.median(out))
    assert 190 < bias < 210
    for spot in crop.hotspots:
        x, y = round(spot.x - crop.x0), round(spot.y - crop.y0)
        assert out[y, x] > bias + 1000, spot.field
    # noise level of FAST readout: 0.403 e- / 0.103 e-/adu ~ 3.9 adu
    assert 3.0 < float(np.std(out[:50, :50])) < 5.0
    backend.close()


def test_slow_readout_is_quieter_and_pupil_shows():
    table, fast = _settings(crop="ONEARC")
    backend = SimulatedBackend(free_run=True)
    backend.open(table)
    noise = {}
    for mode in table.readouts:
        backend.configure(AcquisitionSettings(crop=fast.crop, readout=mode, tint=1e-3, fps=10.0))
        backend.start()
        out = np.empty(fast.crop.shape, np.uint16)
        backend.wait_frame(1.0)
        backend.read_frame(out, counter=1)
        noise[mode.value] = float(np.std(out[:40, :40]))
        backend.stop()
    assert noise["SLOW"] < noise["FAST"]
    backend.close()
    vtable, vset = _settings("vpupcam", "CROP_VPUP", tint=0.03, fps=30.0)
    pup = SimulatedBackend(free_run=True)
    pup.open(vtable)
    pup.configure(vset)
    pup.start()
    out = np.empty(vset.crop.shape, np.uint16)
    pup.wait_frame(1.0)
    pup.read_frame(out, counter=1)
    assert out[256, 256] < 200  # central obstruction
    assert out[256, 256 + 150] > 1000  # illuminated annulus
    assert out[0, 0] < 200  # outside the pupil
    pup.close()


def test_crop_change_while_running_refused():
    table, settings = _settings()
    backend = SimulatedBackend()
    backend.open(table)
    backend.configure(settings)
    backend.start()
    with pytest.raises(CameraError, match="stop before"):
        backend.configure(AcquisitionSettings(
            crop=table.crop("ONEARC"), readout=settings.readout, tint=1e-3, fps=100.0))  # fmt: skip
    backend.close()
    with pytest.raises(CameraError, match="open"):
        SimulatedBackend().configure(settings)
    backend2 = SimulatedBackend()
    backend2.open(table)
    with pytest.raises(CameraError, match="while stopped"):
        backend2.wait_frame(0.1)
    backend2.close()


def test_shared_trigger_pairs_two_cameras():
    table1, set1 = _settings("vcam1", external_trigger=True)
    table2, set2 = _settings("vcam2", external_trigger=True)
    with SimulatedTrigger("vtrig") as trig:
        cams = []
        for table, settings in ((table1, set1), (table2, set2)):
            b = SimulatedBackend(trigger_stream="vtrig")
            b.open(table)
            b.configure(settings)
            b.start()
            assert b.wait_frame(0.05) is None  # no trigger yet; attaches its reader
            cams.append(b)
        times: dict[int, list[float]] = {0: [], 1: []}

        def grab(i: int) -> None:
            while len(times[i]) < 5:
                t = cams[i].wait_frame(0.5)
                if t is not None:
                    times[i].append(t.acquisition_time)

        threads = [threading.Thread(target=grab, args=(i,)) for i in (0, 1)]
        for t in threads:
            t.start()
        fired = []
        deadline = time.monotonic() + 10
        while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
            fired.append(trig.fire())
            time.sleep(0.01)
        for t in threads:
            t.join(5)
        for b in cams:
            b.close()
    assert times[0] == times[1]  # same trigger, same acquisition time on both cameras
    assert len(times[0]) == 5
    assert all(min(abs(t - f) for f in fired) < 1e-6 for t in times[0])


def test_trigger_before_ready_is_missed():
    table, settings = _settings(external_trigger=True, tint=0.2, fps=4.0)
    backend = SimulatedBackend()
    backend.open(table)
    backend.configure(settings)
    backend.start()
    backend.trigger()
    backend.trigger()  # arrives during the 0.2 s exposure of the first
    assert backend.wait_frame(0.5) is not None
    assert backend.wait_frame(0.05) is None
    assert backend.missed_triggers == 1
    backend.close()


def test_simulated_trigger_bad_rate():
    with pytest.raises(CameraError, match="rate"):
        SimulatedTrigger("vtrig2", rate=-1)
    with SimulatedTrigger("vtrig3") as trig, pytest.raises(CameraError, match="rate > 0"):
        trig.start()


def test_late_consumer_catches_up_then_drops_beyond_buffer():
    table, settings = _settings(crop="ONEARC", fps=1000.0)
    backend = SimulatedBackend(buffer_frames=16)
    backend.open(table)
    backend.configure(settings)
    backend.start()
    time.sleep(0.1)  # ~100 frames due, only 16 buffered
    first = backend.wait_frame(1.0)
    assert first is not None
    assert backend.skipped >= 50
    # buffered frames come at once, with their scheduled (1 ms apart) times
    second = backend.wait_frame(1.0)
    assert second is not None
    assert second.acquisition_time - first.acquisition_time == pytest.approx(1e-3, abs=1e-6)
    backend.close()
    with pytest.raises(CameraError, match="buffer_frames"):
        SimulatedBackend(buffer_frames=-1)
