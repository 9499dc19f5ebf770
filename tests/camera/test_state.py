"""The camera state file and the pure start-up resolution."""

from __future__ import annotations

import pytest

from vampires.camera.camera import Camera
from vampires.camera.keywords import BenchState
from vampires.camera.modes import ReadoutMode
from vampires.camera.remote import RemoteCamera
from vampires.camera.state import CameraState, load_state, resolve_state, save_state
from vampires.camera.status import CameraLike
from vampires.camera.table import load_camera_table
from vampires.config import Config
from vampires.errors import ConfigError


@pytest.fixture
def table(tmp_path, monkeypatch):
    monkeypatch.setenv("MILK_SHM_DIR", str(tmp_path))
    return load_camera_table("vcam1", config=Config.load())


def test_resolve_defaults_from_table(table):
    state = resolve_state(table, "vcam1", None, {})
    assert state.crop == table.crop(table.default_crop)
    assert state.readout is ReadoutMode(table.default_readout)
    assert state.data_type == "TEST"
    assert state.external_trigger is False


def test_resolve_argument_beats_saved(table):
    saved = resolve_state(table, "vcam1", None, {}, crop="MBI", data_type="dark").to_json()
    assert saved["data_type"] == "DARK"
    again = resolve_state(table, "vcam1", saved, saved)
    assert again.crop.name == "MBI"
    other = resolve_state(table, "vcam1", saved, saved, data_type="OBJECT")
    assert other.data_type == "OBJECT"
    fresh = resolve_state(table, "vcam1", None, saved)  # restore=False keeps DATA-TYP
    assert fresh.data_type == "DARK"
    assert fresh.crop == table.crop(table.default_crop)


def test_resolve_refuses_bad_values(table):
    with pytest.raises(ConfigError, match="True or False"):
        resolve_state(table, "vcam1", None, {}, external_trigger="yes")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="data type must be one of"):
        resolve_state(table, "vcam1", None, {}, data_type="SCIENCE")


def test_save_and_load_round_trip(table, tmp_path):
    path = tmp_path / "vampires" / "camera-vcam1.json"
    assert load_state(path, "vcam1") == {}
    state = resolve_state(table, "vcam1", None, {})
    import attrs

    state = attrs.evolve(state, bench=BenchState(beamsplitter="PBS"), user={"OBSERVER": "me"})
    save_state(path, state, "vcam1")
    raw = load_state(path, "vcam1")
    assert resolve_state(table, "vcam1", raw, raw) == state
    assert isinstance(state, CameraState)
    path.write_text('{"version": 99}')
    assert load_state(path, "vcam1") == {}


def test_camera_and_remote_are_camera_like(tmp_path):
    def use(camera: CameraLike) -> str:
        return camera.name

    with Camera("vcam1", shm_dir=tmp_path) as cam:
        assert use(cam) == "vcam1"
        assert cam.stream.path.parent == tmp_path
    remote = RemoteCamera("vcam1", shm_dir=tmp_path)
    try:
        assert use(remote) == "vcam1"
    finally:
        remote.close()


def test_stop_is_the_deprecated_name_of_pause(tmp_path):
    with Camera("vcam1", shm_dir=tmp_path) as cam:
        with pytest.deprecated_call(match=r"Camera\.pause\(\)"):
            cam.stop()
        assert not cam.running
        cam.start()
        assert cam.running
        cam.pause()
        assert not cam.running
