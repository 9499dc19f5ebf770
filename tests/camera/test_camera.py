from __future__ import annotations

import json
import time

import numpy as np
import pytest

from tests.helpers import wait_for
from vampires.camera.backends.base import AcquisitionSettings
from vampires.camera.backends.simulated import (
    SimulatedBackend,
    SimulatedTrigger,
    deterministic_frame,
)
from vampires.camera.camera import Camera
from vampires.camera.keywords import BenchState, frame_keywords
from vampires.camera.modes import CropMode, ReadoutMode
from vampires.camera.status import CameraStatus
from vampires.config import Config
from vampires.errors import CameraError, ConfigError, StreamError
from vampires.stream import Stream


def _wait_frames(stream: Stream, n: int, timeout: float = 5.0) -> int:
    start = stream.cnt0
    wait_for(lambda: stream.cnt0 >= start + n, timeout, "camera stopped producing frames", 0.005)
    return stream.cnt0


@pytest.fixture
def cam():
    camera = Camera("vcam1", crop="ONEARC", backend=SimulatedBackend(deterministic=True))
    camera.start()
    yield camera
    camera.close()


def test_start_publishes_frames_and_keywords(cam):
    with Stream.open("vcam1") as stream:
        assert stream.shape == (184, 184)
        assert stream.dtype == np.uint16
        _wait_frames(stream, 3)
        kw = stream.keywords
        assert kw["DETECTOR"] == "VCAM1 - OrcaQ"
        assert kw["U_DETMOD"] == "FAST"
        assert kw["EXTTRIG"] is False or kw["EXTTRIG"] == "#FALSE#"
        assert kw["PRD-RNG1"] == 184
        assert kw["DATA-TYP"] == "TEST"
        assert isinstance(kw["_MAQTIME"], int)
        assert kw["_CROP"] == "ONEARC"
        assert stream.nkeywords >= 150


def test_deterministic_bytes_through_the_stream(cam):
    with Stream.open("vcam1") as stream, stream.reader() as reader:
        for _ in range(5):
            frame = reader.next(2.0)
            assert np.array_equal(frame.data, deterministic_frame((184, 184), frame.cnt0))


def test_crop_change_with_reader_attached(cam):
    stream = Stream.open("vcam1")
    gen = stream.keywords["_CROPGEN"]
    with stream.reader() as reader:
        reader.next(2.0)
        crop = cam.set_crop("MBI_REDUCED")
        assert crop.shape == (540, 2232)
        assert stream.is_stale()  # consumers notice: the file was re-created
    stream.close()
    with Stream.open("vcam1") as fresh:
        assert fresh.shape == (540, 2232)
        assert fresh.keywords["_CROPGEN"] == gen + 1
        assert fresh.keywords["OBS-MOD"] == "IMAG_MBIR"
        assert fresh.keywords["WCSNAMED"] == "NA"
        _wait_frames(fresh, 2)
        with fresh.reader() as reader:
            frame = reader.next(2.0)
            assert np.array_equal(frame.data, deterministic_frame((540, 2232), frame.cnt0))


def test_same_size_crop_keeps_stream_and_bumps_generation():
    with Camera("vcam2", crop="STANDARD") as cam, Stream.open("vcam2") as stream:
        gen = stream.keywords["_CROPGEN"]
        cam.set_crop("NPBS")
        assert not stream.is_stale()
        assert stream.keywords["_CROPGEN"] == gen + 1
        assert stream.keywords["PRD-MIN1"] == 1700


def test_invalid_arguments_change_nothing(cam):
    before = cam.status()
    bad_calls = [
        (cam.set_crop, "MBI_JEWEL", ConfigError, "unknown crop"),
        (
            cam.set_crop,
            CropMode(name="BIG", x0=4000, y0=0, width=200, height=8),
            ConfigError,
            "fit",
        ),
        (cam.set_fps, 5000.0, ConfigError, "above the maximum"),
        (cam.set_fps, -3.0, ConfigError, "at least"),
        (cam.set_tint, 0.0, ConfigError, "out of range"),
        (cam.set_tint, "1ms", ConfigError, "number"),
        (cam.set_data_type, "SCIENCE", ConfigError, "data type"),
        (cam.set_readout_mode, "TURBO", ConfigError, "FAST, SLOW"),
        (cam.set_external_trigger, "disable", ConfigError, "True or False"),
        (cam.set_keyword, ("EXPTIME", 1.0), ConfigError, "managed"),
        (cam.set_keyword, ("DATA-TYP", "OBJECT"), ConfigError, "set_data_type"),
        (cam.set_keyword, ("OBJECT", "x" * 17), ConfigError, "16"),
        (cam.set_keyword, ("A" * 17, 1), ConfigError, "16"),
        (cam.set_bench, "PBS", ConfigError, "BenchState"),
    ]
    with Stream.open("vcam1") as stream:
        for func, arg, exc, match in bad_calls:
            with pytest.raises(exc, match=match):
                func(*arg) if isinstance(arg, tuple) else func(arg)
            # still running, nothing changed
            _wait_frames(stream, 1)
        assert cam.running
        after = cam.status()
        for field in ("crop", "readout_mode", "tint", "fps", "external_trigger", "data_type",
                      "keywords", "crop_generation"):  # fmt: skip
            assert getattr(after, field) == getattr(before, field), field
        assert stream.keywords["_CROP"] == "ONEARC"


def test_data_type_and_user_keywords_survive_changes_and_restarts():
    cam = Camera("vcam1", crop="ONEARC")
    cam.start()
    cam.set_data_type("object")
    cam.set_keyword("OBSERVER", "lestat")
    cam.set_keyword("U_AQTINT", 2.5)
    cam.set_readout_mode("SLOW")
    cam.set_crop("TWOARC")
    with Stream.open("vcam1") as stream:
        assert stream.keywords["DATA-TYP"] == "OBJECT"
        assert stream.keywords["OBSERVER"] == "lestat"
        assert stream.keywords["U_DETMOD"] == "SLOW"
        assert stream.keywords["GAIN"] == pytest.approx(0.105)
    cam.close()
    # a new process/camera object: restored from the state file
    with Camera("vcam1") as again, Stream.open("vcam1") as stream:
        assert again.crop.name == "TWOARC"
        assert again.readout_mode is ReadoutMode.SLOW
        assert stream.keywords["DATA-TYP"] == "OBJECT"
        assert stream.keywords["U_AQTINT"] == 2.5
        assert again.keywords == {"OBSERVER": "lestat", "U_AQTINT": 2.5}
    # a fresh start ignores the saved settings but keeps DATA-TYP and user keywords
    with Camera("vcam1", restore=False) as fresh:
        assert fresh.crop.name == "STANDARD"
        assert fresh.data_type == "OBJECT"


def test_corrupt_state_file_is_ignored(shm_dir):
    path = Config.load().control_dir / "camera-vcam2.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("{not json")
    cam = Camera("vcam2")
    assert cam.crop.name == "STANDARD"
    path.write_text(json.dumps({"version": 1, "crop": {"name": "X"}, "data_type": "DARK",
                                "user": {"BAD": [1]}}))  # fmt: skip
    cam = Camera("vcam2")
    assert cam.data_type == "DARK"
    assert cam.keywords == {}


def test_timing_model_coupled_and_external(cam):
    ro = cam.table.readout_time(cam.crop, cam.readout_mode)
    cam.set_tint(5e-3)
    assert cam.fps == pytest.approx(200.0)
    assert cam.set_fps(100.0) == pytest.approx(100.0)
    assert cam.tint == pytest.approx(0.01)
    cam.set_external_trigger(True)
    assert cam.fps == pytest.approx(1 / (0.01 + ro))
    cam.set_external_trigger(False)
    assert cam.max_fps == pytest.approx(1 / ro)
    with Stream.open("vcam1") as stream:
        assert stream.keywords["EXPTIME"] == pytest.approx(0.01)
        assert stream.keywords["FRATE"] == pytest.approx(100.0)


def test_vpupcam_rate_and_exposure_are_separate():
    with Camera("vpupcam") as cam:
        assert cam.crop.name == "CROP_VPUP"
        assert cam.fps == pytest.approx(30.0)
        assert cam.tint == pytest.approx(0.03)
        with pytest.raises(ConfigError, match="longer than the frame period"):
            cam.set_tint(0.05)
        cam.set_fps(10.0)
        cam.set_tint(0.05)
        assert cam.fps == pytest.approx(10.0)
        cam.set_fps(60.0)
        assert cam.tint == pytest.approx(1 / 60)
        with pytest.raises(ConfigError, match="not available"):
            cam.set_readout_mode("SLOW")
        with Stream.open("vpupcam") as stream:
            assert stream.keywords["DETECTOR"] == "VAMPIRES PUPCAM"
            assert "WCSNAME" not in stream.keywords


def test_external_trigger_frames_only_on_trigger(cam):
    cam.set_external_trigger(True)
    with Stream.open("vcam1") as stream:
        time.sleep(0.3)
        before = stream.cnt0
        time.sleep(0.3)
        assert stream.cnt0 == before
        for _ in range(3):
            cam.trigger()
            time.sleep(0.02)
        deadline = time.monotonic() + 5
        while stream.cnt0 < before + 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert before + 1 <= stream.cnt0 <= before + 3


def test_two_cameras_paired_by_shared_trigger():
    trig = SimulatedTrigger("vtrig", rate=50.0)
    cams = [
        Camera(
            n,
            crop="ONEARC",
            external_trigger=True,
            backend=SimulatedBackend(trigger_stream="vtrig"),
        )
        for n in ("vcam1", "vcam2")
    ]
    try:
        for c in cams:
            c.start()
        streams = [Stream.open(n) for n in ("vcam1", "vcam2")]
        time.sleep(0.3)
        trig.start()
        _wait_frames(streams[0], 5)
        _wait_frames(streams[1], 5)
        trig.stop()
        time.sleep(0.2)
        t1 = streams[0].keywords["_MAQTIME"]
        t2 = streams[1].keywords["_MAQTIME"]
        assert t1 == t2  # last frames of both cameras come from the same trigger
        for s in streams:
            s.close()
    finally:
        for c in cams:
            c.close()
        trig.close()


class _FailingBackend(SimulatedBackend):
    def configure(self, settings: AcquisitionSettings) -> None:
        if settings.crop.name == "TWOARC":
            msg = "simulated driver failure"
            raise CameraError(msg)
        super().configure(settings)


def test_backend_failure_rolls_back():
    with Camera("vcam1", crop="ONEARC", backend=_FailingBackend()) as cam:
        with pytest.raises(CameraError, match="previous settings kept"):
            cam.set_crop("TWOARC")
        assert cam.running
        assert cam.crop.name == "ONEARC"
        with Stream.open("vcam1") as stream:
            assert stream.shape == (184, 184)
            _wait_frames(stream, 2)


def test_status_roundtrip_and_lifecycle():
    cam = Camera("vcam2", crop="ONEARC")
    st = cam.status()
    assert not st.running
    assert CameraStatus.from_dict(json.loads(json.dumps(st.to_dict()))) == st
    cam.set_crop("TWOARC")  # while stopped: remembered for start()
    cam.start()
    cam.start()  # idempotent
    assert cam.status().crop.name == "TWOARC"
    assert "vcam2: running TWOARC" in cam.status().line()
    assert 200 < cam.temperature < 300
    cam.set_bench(BenchState(beamsplitter="PBS", hwp_stage=56.0))
    with Stream.open("vcam2") as stream:
        assert stream.keywords["OBS-MOD"] == "IPOL"
    cam.close()
    cam.close()
    with pytest.raises(CameraError, match="closed"):
        cam.start()
    assert "vampires.Camera('vcam2'" in repr(cam)


def test_constructor_refuses_bad_settings():
    with pytest.raises(ConfigError, match="unknown crop"):
        Camera("vcam1", crop="NOPE")
    with pytest.raises(ConfigError, match="unknown camera"):
        Camera("vcam9")
    with pytest.raises(ConfigError, match="maximum"):
        Camera("vcam1", crop="MBI", fps=1000.0)


def _inode(name: str) -> int:
    try:
        with Stream.open(name) as stream:
            return stream.inode
    except StreamError:
        return -1


def test_stream_removed_while_running_is_recreated(cam):
    with Stream.open("vcam1") as old:
        inode = old.inode
        old.destroy()
    # the camera may re-create it at once (even before this line runs): a new file
    wait_for(lambda: Stream.exists("vcam1") and _inode("vcam1") != inode, 5, "stream re-created")
    with Stream.open("vcam1") as stream:
        _wait_frames(stream, 2)
        assert stream.keywords["_CROP"] == "ONEARC"


def test_same_crop_again_is_a_no_op(cam):
    with Stream.open("vcam1") as stream:
        gen = stream.keywords["_CROPGEN"]
        assert cam.set_crop("onearc").name == "ONEARC"
        assert not stream.is_stale()
        assert stream.keywords["_CROPGEN"] == gen
        assert cam.status().dropped >= 0


def test_one_writer_per_stream(cam):
    other = Camera("vcam1", crop="ONEARC")
    with pytest.raises(CameraError, match="already acquiring"):
        other.start()
    assert not other.running
    cam.pause()
    other.start()  # free once the first one stopped
    assert other.running
    other.close()


@pytest.mark.parametrize(
    ("name", "value"),
    [("ABCDEFGHIJKLMNOP", 1), ("OBSERVER", "A" * 16), ("MY KEY", 1), ("NOTE", "caf\u00e9")],
)
def test_keyword_over_the_stream_limits_is_refused_before_anything_changes(cam, name, value):
    # issue 13 item 4: the camera checked 16/16/80, the stream allows 15/15/79
    cam.set_keyword("OBSERVER", "lestat")
    with Stream.open("vcam1") as stream:
        before = stream.keywords.to_dict()
    with pytest.raises(ConfigError, match="camera vcam1"):
        cam.set_keyword(name, value)
    assert cam.keywords == {"OBSERVER": "lestat"}
    with Stream.open("vcam1") as stream:
        after = stream.keywords.to_dict()
    assert after["OBSERVER"] == "lestat"  # unchanged (also when the bad one was OBSERVER)
    assert name == "OBSERVER" or name not in after
    # the frame keywords (_MAQTIME, MFRATE) may appear with the first frame meanwhile
    assert set(after) - set(before) <= set(frame_keywords(0.0, 0.0))
    assert cam.set_crop("TWOARC").name == "TWOARC"  # the camera is not poisoned
    with Stream.open("vcam1") as stream:
        assert stream.keywords["_CROP"] == "TWOARC"
        assert stream.keywords["OBSERVER"] == "lestat"


def test_constructing_a_camera_is_quiet_and_stream_needs_start(caplog):
    # issue 13 item 11: every Camera() warned about HALFARC, a crop nobody chose,
    # and Camera(...).stream.read() on a camera not started was AttributeError on None
    import logging

    with caplog.at_level(logging.WARNING):
        cam = Camera("vcam1", crop="ONEARC")
        Camera("vcam2")
    assert not [r for r in caplog.records if "HALFARC" in r.getMessage()]
    with pytest.raises(CameraError, match="not started, so it has no stream; call start"):
        cam.stream.read()
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        cam.set_crop("HALFARC")  # the operator chose the off-grid crop: now it is said
    assert [r for r in caplog.records if "HALFARC" in r.getMessage()]
    cam.start()
    try:
        assert cam.stream.shape == (cam.crop.height, cam.crop.width)
    finally:
        cam.close()
