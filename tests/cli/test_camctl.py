"""Operator camera commands against real camera daemons."""

from __future__ import annotations

import io
import os
import signal
import time

import pytest

from vampires.camera.remote import RemoteCamera
from vampires.cli import camctl, camstart, camstop, datatype
from vampires.control.spawn import pid_alive

pytestmark = pytest.mark.integration


@pytest.fixture
def daemons(capsys):
    assert camstart.main(["vcam1", "vcam2", "--sim", "--mode", "ONEARC"]) == 0
    pids = []
    for name in ("vcam1", "vcam2"):
        with RemoteCamera(name) as cam:
            pids.append(int(cam.ping()["pid"]))
    capsys.readouterr()
    yield
    camstop.main([])
    for pid in pids:
        deadline = time.monotonic() + 5
        while pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


def _run(capsys, func, *argv):
    status = func(list(argv))
    return status, capsys.readouterr().out.splitlines()


def test_get_and_set_on_both_cameras(daemons, capsys):
    status, lines = _run(capsys, camctl.get_crop)
    assert status == 0
    assert lines == [
        "vcam1: ONEARC 184x184 at (1956, 1060)",
        "vcam2: ONEARC 184x184 at (1956, 1060)",
    ]
    status, lines = _run(capsys, camctl.set_crop, "twoarc", "-c", "2")
    assert status == 0
    assert lines == ["vcam2: crop TWOARC 360x360 at (1868, 972)"]
    status, lines = _run(capsys, camctl.set_tint, "0.002")
    assert status == 0
    assert lines[0].startswith("vcam1: tint 0.002 s (500.00 Hz)")
    status, lines = _run(capsys, camctl.get_tint, "-c", "1")
    assert lines == ["vcam1: 0.002 s"]
    status, lines = _run(capsys, camctl.set_fps, "250")
    assert status == 0
    assert lines[1].startswith("vcam2: 250.00 Hz")
    status, lines = _run(capsys, camctl.get_fps)
    assert "max 1509.66 Hz" in lines[0]
    status, lines = _run(capsys, camctl.set_readout_mode, "slow", "-c", "vcam1")
    assert lines == [lines[0]]
    assert lines[0].startswith("vcam1: readout SLOW")
    status, lines = _run(capsys, camctl.get_readout_mode)
    assert lines == ["vcam1: SLOW", "vcam2: FAST"]


def test_set_trigger_disable_disables(daemons, capsys):
    assert _run(capsys, camctl.set_trigger, "enable")[1] == [
        "vcam1: external trigger enabled", "vcam2: external trigger enabled"]  # fmt: skip
    assert _run(capsys, camctl.get_trigger)[1][1] == "vcam2: external trigger enabled"
    status, lines = _run(capsys, camctl.set_trigger, "disable")
    assert status == 0
    assert lines == ["vcam1: external trigger disabled", "vcam2: external trigger disabled"]
    with RemoteCamera("vcam1") as cam:
        assert cam.external_trigger is False


def test_failures_are_per_camera_and_exit_nonzero(daemons, capsys):
    status, lines = _run(capsys, camctl.set_crop, "MBI_JEWEL")
    assert status == 1
    assert all("FAILED" in line and "unknown crop" in line for line in lines)
    status, lines = _run(capsys, camctl.set_fps, "2000", "-c", "1")
    assert status == 1
    assert "above the maximum" in lines[0]
    status, lines = _run(capsys, camctl.get_crop, "-c", "vpupcam", "-c", "1")
    assert status == 1
    assert lines[1].startswith("vcam1: ONEARC")  # argument order kept
    assert "vpupcam: FAILED" in lines[0]
    assert "vampires camstart vpupcam" in lines[0]
    assert camctl.get_crop(["-c", "bad/name"]) == 2
    with pytest.raises(SystemExit):
        camctl.set_trigger(["maybe"])
    with pytest.raises(SystemExit):
        camctl.set_readout_mode(["TURBO"])


def test_datatype_argument_and_prompt(daemons, capsys, monkeypatch):
    status, lines = _run(capsys, datatype.main, "object")
    assert status == 0
    assert lines == ["vcam1: DATA-TYP OBJECT", "vcam2: DATA-TYP OBJECT"]
    monkeypatch.setattr("sys.stdin", io.StringIO("4\n"))
    status, lines = _run(capsys, datatype.main, "-c", "2")
    assert status == 0
    assert lines[-1].endswith("vcam2: DATA-TYP DARK")  # after the prompt
    assert "   4. DARK" in lines
    monkeypatch.setattr("sys.stdin", io.StringIO("\n"))
    assert _run(capsys, datatype.main, "-c", "1")[1][-1].endswith("vcam1: DATA-TYP OBJECT")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert datatype.main(["-c", "1"]) == 2
    assert datatype.main(["SCIENCE"]) == 2
    with RemoteCamera("vcam2") as cam:
        assert cam.data_type == "DARK"


def test_commands_without_daemons(capsys):
    status, lines = _run(capsys, camctl.get_tint)
    assert status == 1
    assert lines[0].startswith("vcam1: FAILED: camera vcam1: no camera daemon is running")
    status, lines = _run(capsys, camstop.main)
    assert status == 0
    assert lines == ["no camera daemon is running"]


def test_parse_cameras():
    assert camctl.parse_cameras(None) == ["vcam1", "vcam2"]
    assert camctl.parse_cameras(["-1"]) == ["vcam1", "vcam2"]
    assert camctl.parse_cameras(["2", "vcam1"]) == ["vcam2", "vcam1"]
    assert camctl.parse_cameras(["1,2,1"]) == ["vcam1", "vcam2"]
    with pytest.raises(ValueError, match="invalid camera"):
        camctl.parse_cameras(["../x"])


def test_command_imports_stay_light():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from vampires.cli import camctl, camstart, camstop, datatype\n"
        "camctl.get_crop(['-c', '1'])\n"
        "assert 'numba' not in sys.modules and 'astropy' not in sys.modules, 'heavy import'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr.decode()
    assert b"no camera daemon" in done.stdout


def test_camstop_says_stopped_once_the_process_is_gone(capsys):
    # issue 13 item 11: 'stopped' was printed 1.7 s before the process exited
    assert camstart.main(["vcam1", "--sim", "--mode", "ONEARC"]) == 0
    with RemoteCamera("vcam1") as cam:
        pid = int(cam.ping()["pid"])
    capsys.readouterr()
    status, lines = _run(capsys, camstop.main, "vcam1")
    assert (status, lines) == (0, ["vcam1: stopped"])
    assert not pid_alive(pid)


def test_camstart_refuses_a_bad_frame_rate_before_starting(shm_dir, capsys):
    from vampires.control.spawn import default_log_path

    log = default_log_path("camera", "vcam1")
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("an earlier run's line\n")
    for fps in ("-5", "0", "nan", "100000"):
        status, lines = _run(capsys, camstart.main, "vcam1", "--sim", "--fps", fps)
        assert status == 1
        assert len(lines) == 1, lines
        assert lines[0].startswith("vcam1: FAILED: camera vcam1: ")
        assert "frame rate" in lines[0] or "above the maximum" in lines[0]
    assert log.read_text() == "an earlier run's line\n"  # no daemon was started


def test_advice_for_an_unknown_camera_is_not_a_failing_command(capsys):
    status, lines = _run(capsys, camctl.get_crop, "-c", "vcam3")
    assert status == 1
    assert "camstart vcam3" not in lines[0]
    assert "'vcam3' is not a known camera (known: " in lines[0]
    assert "vcam1" in lines[0]
