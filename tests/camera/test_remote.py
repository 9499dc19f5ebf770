"""CameraGroup, start_camera and stop_cameras without daemons (the daemon paths run in
tests/camera/test_daemon.py and tests/cli/test_camctl.py through the commands)."""

from __future__ import annotations

import pytest

from vampires.camera.remote import (
    CameraGroup,
    CameraResult,
    camera_daemon_argv,
    check_camera_options,
    stop_camera,
    stop_cameras,
)
from vampires.errors import ConfigError


def test_group_reports_each_camera_without_a_daemon(shm_dir):
    results = CameraGroup(["vcam1", "vcam2"], timeout=0.5).tint()
    assert [r.name for r in results] == ["vcam1", "vcam2"]
    assert not any(r.ok for r in results)
    assert results[0].line().startswith("vcam1: FAILED: camera vcam1: no camera daemon is running")


def test_result_line():
    assert CameraResult(name="vcam1", ok=True, text="tint 0.001 s").line() == "vcam1: tint 0.001 s"


def test_stop_cameras_when_none_runs(shm_dir):
    assert stop_cameras() == []
    assert stop_camera("vcam1") == CameraResult(name="vcam1", ok=True, text="not running")


def test_daemon_argv_and_prechecks(shm_dir):
    argv = camera_daemon_argv("vcam1", sim=True, mode="MBI", tint=None, fresh=False)
    assert argv[-4:] == ["vcam1", "--mode", "MBI", "--sim"]
    with pytest.raises(ConfigError):
        check_camera_options("vcam1", sim=True, mode="NOPE")
    with pytest.raises(ConfigError, match="simulator options"):
        check_camera_options("vcam1", backend="dcam", deterministic=True)
