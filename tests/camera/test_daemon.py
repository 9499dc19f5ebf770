"""Camera daemons for real: detached processes, control sockets, streams."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
import pytest

from tests.helpers import wait_for
from vampires.camera.backends.simulated import deterministic_frame
from vampires.camera.camera import Camera
from vampires.camera.remote import RemoteCamera
from vampires.cli import camstart, camstop
from vampires.control import daemon_alive
from vampires.control.spawn import pid_alive
from vampires.errors import CameraError, ConfigError
from vampires.stream import Stream

pytestmark = pytest.mark.integration


def _pid(name: str) -> int:
    with RemoteCamera(name) as cam:
        return int(cam.ping()["pid"])


@pytest.fixture
def cameras(capsys):
    """vcam1 and vcam2 daemons in MBI (deterministic), stopped after the test."""
    names = ["vcam1", "vcam2"]
    assert camstart.main([*names, "--sim", "--mode", "MBI", "--deterministic"]) == 0
    out = capsys.readouterr().out
    assert "vcam1: started" in out
    assert "MBI 2240x1096" in out
    pids = [_pid(n) for n in names]
    yield names
    camstop.main(names)
    for pid in pids:  # processes we started: make sure none survives the test
        deadline = time.monotonic() + 5
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def _wait_frames(stream: Stream, n: int, timeout: float = 10.0) -> None:
    target = stream.cnt0 + n
    wait_for(lambda: stream.cnt0 >= target, timeout, "no frames", 0.01)


def test_two_cameras_crop_change_reader_notices(cameras):
    with Camera.connect("vcam1") as cam1, Camera.connect("vcam2") as cam2:
        assert cam1.crop.name == "MBI"
        assert cam2.crop.shape == (1096, 2240)
        stream = Stream.open("vcam1")
        with stream.reader() as reader:
            frame = reader.next(5.0)
            assert frame.data.shape == (1096, 2236)
            assert np.array_equal(frame.data, deterministic_frame(frame.data.shape, frame.cnt0))
            cam1.set_crop("STANDARD")
            wait_for(stream.is_stale, 5, "the reader's stream to go stale", 0.01)
        stream.close()
        with Stream.open("vcam1") as fresh, fresh.reader() as reader:
            frame = reader.next(5.0)
            assert frame.data.shape == (536, 536)
            assert np.array_equal(frame.data, deterministic_frame((536, 536), frame.cnt0))
            assert fresh.keywords["_CROP"] == "STANDARD"
        assert cam2.crop.name == "MBI"  # the other camera is untouched


def test_data_type_persists_across_readout_change_and_restart(cameras):
    with Camera.connect("vcam2") as cam:
        assert cam.set_data_type("dark") == "DARK"
        cam.set_keyword("OBSERVER", "lestat")
        cam.set_readout_mode("SLOW")
        st = cam.status()
        assert st.readout_mode.value == "SLOW"
        assert st.data_type == "DARK"
        with Stream.open("vcam2") as stream:
            assert stream.keywords["DATA-TYP"] == "DARK"
            assert stream.keywords["U_DETMOD"] == "SLOW"
            assert stream.keywords["OBSERVER"] == "lestat"
    assert camstop.main(["vcam2"]) == 0
    assert camstart.main(["vcam2", "--sim"]) == 0
    with Camera.connect("vcam2") as cam, Stream.open("vcam2") as stream:
        assert cam.data_type == "DARK"
        assert cam.readout_mode.value == "SLOW"
        assert cam.crop.name == "MBI"
        assert stream.keywords["DATA-TYP"] == "DARK"
        assert stream.keywords["OBSERVER"] == "lestat"


def test_invalid_requests_refused_nothing_changed(cameras):
    with Camera.connect("vcam1") as cam, Stream.open("vcam1") as stream:
        before = cam.status()
        with pytest.raises(ConfigError, match="unknown crop 'MBI_JEWEL'"):
            cam.set_crop("MBI_JEWEL")
        with pytest.raises(ConfigError, match="above the maximum"):
            cam.set_fps(1000.0)
        with pytest.raises(ConfigError, match="out of range"):
            cam.set_tint(1e9)
        with pytest.raises(ConfigError, match="data type"):
            cam.set_data_type("SCIENCE")
        with pytest.raises(ConfigError, match="FAST, SLOW"):
            cam.set_readout_mode("TURBO")
        with pytest.raises(ConfigError, match="True or False"):
            cam.set_external_trigger("disable")  # type: ignore[arg-type]
        with pytest.raises(ConfigError):
            cam.set_tint("fast")  # type: ignore[arg-type]
        with pytest.raises(ConfigError, match="managed"):
            cam.set_keyword("EXPTIME", 3.0)
        after = cam.status()
        assert after.running
        for field in ("crop", "readout_mode", "tint", "fps", "data_type", "crop_generation"):
            assert getattr(after, field) == getattr(before, field)
        _wait_frames(stream, 3)  # still acquiring


def test_killed_daemon_clear_error_and_camstart_recovers(cameras, capsys):
    pid = _pid("vcam1")
    cam = Camera.connect("vcam1", timeout=1.0)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not daemon_alive("camera", "vcam1"), 5, "the killed daemon's lock", 0.05)
    with pytest.raises(CameraError, match=r"no camera daemon is running.*vampires camstart vcam1"):
        cam.status()
    with pytest.raises(CameraError, match="camstart"):
        cam.set_crop("STANDARD")
    cam.close()
    with pytest.raises(CameraError, match="no camera daemon"):
        Camera.connect("vcam1")
    capsys.readouterr()
    assert camstart.main(["vcam1", "--sim"]) == 0
    assert "vcam1: started" in capsys.readouterr().out
    with Camera.connect("vcam1") as again, Stream.open("vcam1") as stream:
        assert again.running
        assert again.crop.name == "MBI"
        _wait_frames(stream, 2)


def test_camstart_twice_and_bad_options(cameras, capsys):
    local = Camera("vcam1")
    with pytest.raises(CameraError, match="already acquiring"):
        local.start()  # the daemon owns the stream: a second writer is refused
    local.close()
    capsys.readouterr()
    assert camstart.main(["vcam1", "--sim"]) == 1
    assert "already running" in capsys.readouterr().out
    assert camstart.main(["vpupcam", "--sim", "--mode", "NOPE"]) == 1
    out = capsys.readouterr().out
    assert "vpupcam: FAILED" in out
    assert camstart.main(["vpupcam", "--backend", "nope"]) == 1  # unknown backend
    assert "sim, dcam[:DEVICE], genicam[:DEVICE]" in capsys.readouterr().out
    assert camstart.main(["vpupcam", "--sim", "--backend", "dcam"]) == 1
    assert "contradict" in capsys.readouterr().out
    assert camstop.main(["vpupcam"]) == 0
    assert "not running" in capsys.readouterr().out


def test_garbage_commands_get_errors_and_change_nothing(cameras):
    from vampires.control import ControlClient
    from vampires.errors import CommandError

    bad = [
        ("set_crop", {}),
        ("set_crop", {"name": 5}),
        ("set_crop", {"name": "MBI", "mode": {}}),
        ("set_crop", {"mode": {"name": "X", "x0": "a"}}),
        ("set_crop", {"mode": [1, 2]}),
        ("set_tint", {"tint": "x"}),
        ("set_tint", {}),
        ("set_fps", {"fps": None}),
        ("set_readout_mode", {"mode": 3}),
        ("set_external_trigger", {"enable": "disable"}),
        ("set_keyword", {"name": "OBJECT"}),
        ("set_keyword", {"name": "OBJECT", "value": [1, 2]}),
        ("set_keyword", {"name": 7, "value": 1}),
        ("set_bench", {"hwp_stage": "up"}),
        ("set_bench", {"nope": 1}),
        ("reboot", {}),
    ]
    with Camera.connect("vcam1") as cam:
        before = cam.status()
    with ControlClient("camera", "vcam1", timeout=5.0) as client:
        for command, args in bad:
            with pytest.raises(CommandError):
                client.call(command, **args)
        assert client.call("help")["ok"]
    with Camera.connect("vcam1") as cam:
        after = cam.status()
        assert after.running
        assert after.crop == before.crop
        assert after.tint == before.tint
        assert after.keywords == before.keywords


def test_remote_stop_start_and_bench(cameras):
    with Camera.connect("vcam1") as cam, Stream.open("vcam1") as stream:
        cam.pause()
        assert not cam.running
        count = stream.cnt0
        time.sleep(0.2)
        assert stream.cnt0 == count
        cam.start()
        assert cam.running
        _wait_frames(stream, 2)
        from vampires.camera.keywords import BenchState

        cam.set_bench(BenchState(beamsplitter="PBS", scexao_polarizer="IN"))
        assert stream.keywords["OBS-MOD"] == "IPOL_MBI"
        assert cam.bench == BenchState(beamsplitter="PBS", scexao_polarizer="IN")
        assert cam.set_external_trigger(True) is True
        cam.trigger()
        assert cam.measured_fps >= 0.0


def test_daemons_paired_by_shared_trigger_stream(capsys):
    from vampires.camera.backends.simulated import SimulatedTrigger

    names = ["vcam1", "vcam2"]
    with SimulatedTrigger("vtrig") as trig:
        assert camstart.main([*names, "--sim", "--mode", "ONEARC", "--external-trigger",
                              "--trigger-stream", "vtrig"]) == 0  # fmt: skip
        pids = [_pid(n) for n in names]
        try:
            streams = [Stream.open(n) for n in names]
            readers = [s.reader() for s in streams]
            for r in readers:
                r.__enter__()
            time.sleep(0.3)  # both backends attached to the trigger stream
            fired: list[float] = []
            got: list[list[float]] = [[], []]
            for _ in range(5):  # one trigger, then one frame from each camera
                time.sleep(0.01)  # a trigger during exposure + readout is ignored, as on the ORCA
                fired.append(trig.fire())
                for i, r in enumerate(readers):
                    got[i].append(r.next(5.0).acquisition_time)
            assert got[0] == got[1]
            assert got[0] == pytest.approx(fired, abs=1e-6)
            for r in readers:
                r.__exit__(None, None, None)
            for s in streams:
                s.close()
        finally:
            camstop.main(names)
            for pid in pids:
                deadline = time.monotonic() + 5
                while pid_alive(pid) and time.monotonic() < deadline:
                    time.sleep(0.02)
                if pid_alive(pid):
                    os.kill(pid, signal.SIGKILL)
