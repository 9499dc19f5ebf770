"""Backend selection: specs, precedence (--backend > --sim > config > sim), clear errors."""

from __future__ import annotations

import pytest

from vampires.camera.backends.factory import (
    BackendSpec,
    make_backend,
    parse_backend_spec,
    resolve_backend,
)
from vampires.camera.backends.simulated import SimulatedBackend
from vampires.config import Config
from vampires.errors import CameraError, ConfigError


@pytest.mark.parametrize(
    ("text", "kind", "device"),
    [
        ("sim", "sim", None),
        ("Simulated", "sim", None),
        ("dcam", "dcam", None),
        ("dcam:1", "dcam", "1"),
        ("dcam:S/N: 000123", "dcam", "S/N: 000123"),
        (" genicam:Aravis-Fake-VTEST01 ", "genicam", "Aravis-Fake-VTEST01"),
    ],
)
def test_parse_spec(text: str, kind: str, device: str | None) -> None:
    spec = parse_backend_spec(text)
    assert (spec.kind, spec.device) == (kind, device)
    assert parse_backend_spec(str(spec)) == spec


@pytest.mark.parametrize("bad", ["", "pco", "dcam:", "sim:0", 3, None, "spinnaker:1"])
def test_bad_spec_is_a_config_error(bad: object) -> None:
    with pytest.raises(ConfigError):
        parse_backend_spec(bad)


def _config(shm_dir, text: str) -> Config:
    path = shm_dir / "vampires.toml"
    path.write_text(text)
    return Config.load(path=path)


def test_precedence(shm_dir) -> None:
    cfg = _config(
        shm_dir,
        '[backends]\nvcam1 = "dcam:1"\n[backends.vpupcam]\nbackend = "genicam:0"\ngain = "max"\n',
    )
    assert resolve_backend("vcam1", cfg) == BackendSpec(kind="dcam", device="1")
    assert resolve_backend("vcam1", cfg, sim=True).kind == "sim"
    assert resolve_backend("vcam1", cfg, backend="genicam").kind == "genicam"
    assert resolve_backend("vcam2", cfg).kind == "sim"  # no entry: simulated
    pup = resolve_backend("vpupcam", cfg)
    assert (pup.kind, pup.device, pup.options) == ("genicam", "0", {"gain": "max"})
    with pytest.raises(ConfigError, match="contradict"):
        resolve_backend("vcam1", cfg, backend="dcam", sim=True)
    assert resolve_backend("vcam1", Config.load()).kind == "sim"


def test_bad_config_entries(shm_dir) -> None:
    cfg = _config(
        shm_dir, '[backends]\nvcam1 = "pco:1"\n[backends.vcam2]\nbackend = "sim"\nx = 1\n'
    )
    with pytest.raises(ConfigError, match=r"\[backends\] vcam1"):
        resolve_backend("vcam1", cfg)
    with pytest.raises(ConfigError, match="no options"):
        resolve_backend("vcam2", cfg)
    bogus = BackendSpec(kind="genicam", options={"colour": "red"})
    with pytest.raises((ConfigError, CameraError), match=r"colour|Aravis|PyGObject"):
        make_backend(bogus)


def test_make_backend_sim_and_simulator_only_options() -> None:
    backend = make_backend(BackendSpec(kind="sim"), deterministic=True)
    assert isinstance(backend, SimulatedBackend)
    assert backend.deterministic
    with pytest.raises(ConfigError, match="simulator options"):
        make_backend(BackendSpec(kind="dcam"), deterministic=True)


@pytest.mark.integration
def test_camstart_default_is_simulated_and_says_so(capsys) -> None:
    from vampires.cli import camstart, camstop

    assert camstart.main(["vpupcam"]) == 0
    try:
        assert ", simulated)" in capsys.readouterr().out
    finally:
        camstop.main(["vpupcam"])


def test_camstart_missing_device_is_one_line(capsys) -> None:
    from vampires.cli import camstart

    assert camstart.main(["vpupcam", "--backend", "genicam:NO-SUCH-CAMERA"]) == 1
    out = capsys.readouterr().out.strip()
    assert out.startswith("vpupcam: FAILED: genicam")
    assert "\n" not in out
    assert "Traceback" not in out
    assert camstart.main(["vcam1", "--backend", "dcam:7"]) == 1
    out = capsys.readouterr().out.strip()
    assert out.startswith("vcam1: FAILED: dcam")
    assert "\n" not in out
